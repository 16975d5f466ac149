//! Sans-IO core of the Synadia Agent Protocol for NATS, v0.3.
//!
//! Everything the spec says about bytes lives here, one module per concept,
//! each rule tagged with its section: subjects (§2), request envelopes
//! (§5), chunks (§6, §7), error signals (§9), heartbeats (§8), `$SRV.INFO`
//! records (§3, §4) and versions (§11). Protocol behaviour is written as
//! state machines that take input and time as arguments and never touch a
//! socket or a clock, all with one vocabulary (`handle_*(now, input)`,
//! `poll_timeout()`, `handle_timeout(now)`, `poll()`): both halves of a
//! response stream ([`AgentStream`] for the agent, [`ResponseStream`] for
//! the caller), [`Discovery`] and [`Liveness`]. Durable runs on JetStream,
//! nap's extension for what §1 and §6.6 defer, are the [`durable`]
//! namespace.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use nap_proto::{Chunk, Envelope, Identity, Received, ResponseStream, StreamEvent, Verb};
//!
//! // A caller addresses an agent and encodes a request (§2, §5).
//! let id = Identity::new("echo", "alice", "demo").unwrap();
//! assert_eq!(id.subject(Verb::Prompt).to_string(), "agents.prompt.echo.alice.demo");
//! let request = Envelope::text("hello").encode();
//! assert_eq!(request, br#"{"prompt":"hello"}"#);
//!
//! // The agent reads it by the discrimination rule (§5.3) ...
//! assert_eq!(Envelope::decode(b"hello").unwrap().prompt, "hello");
//!
//! // ... and answers with chunks; the caller decodes the stream (§6).
//! let t0 = Instant::now();
//! let mut stream = ResponseStream::new(t0, Duration::from_secs(60));
//! let ack = Chunk::ACK.encode();
//! let text = Chunk::text("hi").encode();
//! stream.handle_message(t0, Received::body(&ack));
//! assert_eq!(stream.poll(), Some(StreamEvent::Ack));
//! stream.handle_message(t0, Received::body(&text));
//! let Some(StreamEvent::Response(data)) = stream.poll() else {
//!     panic!("expected a response chunk")
//! };
//! assert_eq!(data.text(), "hi");
//! stream.handle_message(t0, Received::body(b""));
//! assert_eq!(stream.poll(), Some(StreamEvent::End));
//! ```

// Each concept is a private module; its types are re-exported here, so every
// type has exactly one path. Four concepts with a vocabulary of their own
// stay namespaces: `identity` (§13), `micro` (the `$SRV` API a host
// answers), `trace` (W3C trace context) and `durable` (nap's extension for
// durable runs on JetStream, `docs/durable.md`).
mod agent_stream;
mod attachment;
mod byte_size;
mod chunk;
mod discovery;
pub mod durable;
mod envelope;
mod error;
mod file_name;
mod heartbeat;
pub mod identity;
mod json;
mod liveness;
pub mod micro;
mod progress;
mod request;
mod service_info;
mod service_stats;
mod stream;
mod subject;
pub mod trace;
mod version;

pub use agent_stream::{
    Admission, AgentStream, AnswerError, Arrival, Outgoing, Refusal, StreamClosed, TurnEnd,
    accept_answer,
};
pub use attachment::{
    Attachment, AttachmentError, AttachmentsError, Base64Error, decode_base64, encode_base64,
};
pub use byte_size::{ByteSize, ByteSizeError};
pub use chunk::{ACK_JSON, Chunk, ChunkError, Query, ResponseData, StatusToken};
pub use discovery::{
    Discovery, DiscoveryConfig, DiscoveryFilter, DoneReason, FilterMiss, ReplyOutcome,
};
pub use envelope::{
    ENVELOPE_FIELDS, Envelope, EnvelopeError, PayloadForm, classify as classify_payload,
};
pub use error::{
    ERROR_CODE_HEADER, ERROR_HEADER, ErrorBody, ErrorCode, RemoteError, ServiceError, StatusCode,
};
pub use file_name::{
    FALLBACK_NAME as FALLBACK_FILE_NAME, FileNameError, MAX_NAME_BYTES as MAX_FILE_NAME_BYTES,
    check_file_name, numbered as numbered_file_name, safe_file_name,
};
pub use heartbeat::{
    Beacon, DEFAULT_INTERVAL as DEFAULT_HEARTBEAT_INTERVAL, Declaration, DeclaredEndpoint,
    Heartbeat, HeartbeatError, IntervalError, IntervalSecs, JITTER as HEARTBEAT_JITTER,
    OFFLINE_AFTER_INTERVALS, TimestampError, is_utc_timestamp, timestamp as utc_timestamp,
};
pub use json::{FieldError, JsonKind};
pub use liveness::{Liveness, Presence, Transition};
pub use progress::Progress;
pub use request::{
    PromptLimits, RequestError, accept as accept_request, check_size as check_request_size,
    encode_checked as encode_request, header_block_len, header_is_valid,
    prepare as prepare_request,
};
pub use service_info::{
    AgentInfo, AgentMetadata, Endpoint, INFO_SUBJECT, InfoError, PING_SUBJECT, PingRecord,
    PromptEndpoint, QUEUE_GROUP, Registration, SERVICE_NAME, info_subject_for,
    keys as metadata_keys,
};
pub use service_stats::{EndpointStats, STATS_SUBJECT, ServiceStats};
pub use stream::{
    DEFAULT_INACTIVITY, Headers, Loss, Received, ResponseStream, StreamEvent, StreamViolation,
};
pub use subject::{
    AgentSubject, Identity, RECOMMENDED_SUBJECT_LEN, RECOMMENDED_TOKEN_LEN, ROOT as SUBJECT_ROOT,
    SubjectError, Token, TokenAdvice, TokenError, TokenRole, Verb, Wildcard,
};
pub use version::{CURRENT as PROTOCOL_VERSION, Compatibility, ProtocolVersion, VersionError};
