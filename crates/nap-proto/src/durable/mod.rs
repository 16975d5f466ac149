//! Durable runs on JetStream: nap's extension for the pattern §1 and §6.6
//! defer, specified in `docs/durable.md` (sections `Dn`), sans IO.
//!
//! A durable prompt is stored in a stream before anyone works on it; one
//! instance of the agent at a time claims it through a shared consumer;
//! its reply is stored record by record, each §6 body unchanged, tagged
//! with the attempt that produced it. Everything here is bytes and rules:
//!
//! - the streams and the worker consumer as plain data, and the checks an
//!   existing one must pass ([`Streams`], [`WorkerPolicy`], D2, D9.1);
//! - the subjects ([`DurableSubjects`], D3), the `$SRV.INFO` advert
//!   ([`DurableAdvert`], D4) and run ids ([`RunId`], D5);
//! - the caller's records: prompts and query answers ([`prompt_record`],
//!   [`answer_record_for`], D6, D12) and cancellation ([`cancel_record`],
//!   D13); the sender of a stored prompt ([`admit_stored_prompt`], D7);
//! - the worker's state machine ([`AttemptWriter`], D8, D9) and the
//!   reader's ([`RunReader`], D10), with the vocabulary of the core
//!   machines: inputs and `now` in, events from `poll`;
//! - a run's state from its last records ([`RunState`], D11).
//!
//! ```
//! use std::time::Instant;
//! use nap_proto::{AgentStream, Chunk, Identity, PromptLimits, StreamEvent};
//! use nap_proto::durable::{
//!     AttemptWriter, Claim, ClaimDecision, DurableSubjects, IdempotencyKey, ReadEvent, RunId,
//!     RunReader, StoredRecord, WorkerPolicy,
//! };
//!
//! let t0 = Instant::now();
//! let subjects = DurableSubjects::for_identity(&Identity::new("echo", "alice", "demo").unwrap());
//! // The caller names the run from its key (D5); its prompt is stored at sequence 41.
//! let run = RunId::from_key(subjects.prompt_prefix(), &IdempotencyKey::new("job-1").unwrap());
//!
//! // A worker claims it and stores the agent's reply (D9).
//! let claim = Claim { prompt_seq: 41, delivered: 1 };
//! let ClaimDecision::Work(mut writer) =
//!     AttemptWriter::claim(t0, &subjects, &run, claim, None, WorkerPolicy::default())
//! else {
//!     unreachable!()
//! };
//! let mut agent = AgentStream::new(t0, None);
//! agent.handle_request(t0, b"hello", PromptLimits::DEFAULT).unwrap();
//! agent.handle_chunk(t0, &Chunk::text("hi")).unwrap();
//! agent.finish(t0, None);
//! while let Some(out) = agent.poll() {
//!     writer.handle_outgoing(t0, &out).unwrap();
//! }
//! let mut stored = Vec::new();
//! while let Some(record) = writer.poll_transmit() {
//!     let seq = 100 + stored.len() as u64;
//!     stored.push((seq, record));
//!     writer.handle_stored(t0, seq);
//! }
//!
//! // A reader, any time later, gets the events of a core prompt (D10).
//! let mut reader = RunReader::new(41);
//! let mut events = Vec::new();
//! for (seq, record) in &stored {
//!     reader.handle_record(&StoredRecord { seq: *seq, headers: record, body: &record.body });
//!     events.extend(std::iter::from_fn(|| reader.poll()));
//! }
//! assert_eq!(events[0], ReadEvent::Attempt(1));
//! assert_eq!(events[1], ReadEvent::Stream(StreamEvent::Ack));
//! let ReadEvent::Stream(StreamEvent::Response(text)) = &events[2] else { unreachable!() };
//! assert_eq!(text.text(), "hi");
//! assert_eq!(events[3], ReadEvent::Stream(StreamEvent::End));
//! ```

mod advert;
mod attempt;
mod cancel;
mod config;
mod headers;
mod prompt;
mod reader;
mod run_id;
mod sender;
mod state;
mod subjects;

pub use advert::{AdvertError, DurableAdvert, VERSION, keys};
pub use attempt::{
    AttemptWriter, Claim, ClaimDecision, EXHAUSTED_DESCRIPTION, EXHAUSTED_ERROR, WorkerAction,
};
pub use cancel::{RunSettled, cancel_record};
pub use config::{
    AckPolicy, ConsumerMismatch, ConsumerSettings, DEFAULT_CLAIM_TIMEOUT, DEFAULT_DUPLICATE_WINDOW,
    DEFAULT_MAX_AGE, DEFAULT_MAX_ATTEMPTS, Discard, REPLIES_STREAM, RUNS_STREAM, Retention,
    Storage, StreamMismatch, StreamSettings, Streams, WorkerPolicy,
};
pub use headers::{
    ATTEMPT_HEADER, Append, EVENT_HEADER, EXPECTED_LAST_SUBJECT_SEQUENCE_HEADER, INDEX_HEADER,
    KEY_HEADER, LastRecord, MAX_MESSAGES_PER_SUBJECT, MSG_ID_HEADER, PROMPT_SEQ_HEADER,
    RecordError, RecordKind, RecordMeta, StoredRecord, WRONG_LAST_SEQUENCE,
};
pub use prompt::{Submission, answer_record, answer_record_for, prompt_record};
pub use reader::{Cursor, CursorError, ReadEvent, RecordViolation, RunReader};
pub use run_id::{IdempotencyKey, KeyError, MAX_KEY_LEN, RUN_ID_TAG, RunId, RunIdError};
pub use sender::admit_stored_prompt;
pub use state::RunState;
pub use subjects::{
    ANSWER_TOKEN, DurableSubjects, MAX_READABLE_WORKER_NAME, PROMPT_TOKEN, PrefixRole, REPLY_TOKEN,
    ROOT_PREFIX, SubjectsError, WORKER_NAME_TAG, subject_matches,
};
