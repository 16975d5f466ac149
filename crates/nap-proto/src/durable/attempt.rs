//! The worker's half of a durable run, sans IO (durable D8, D9): the claim
//! decision, and the writer that turns an attempt's §6 messages into fenced
//! reply records and says when to acknowledge.
//!
//! One [`AttemptWriter`] per claim. The worker reads the last record on the
//! run's reply subject and hands it, with the delivery, to
//! [`AttemptWriter::claim`]. On [`ClaimDecision::Work`] it runs the agent
//! behind an [`AgentStream`](crate::AgentStream) without keep-alives and
//! passes every [`Outgoing`] to [`AttemptWriter::handle_outgoing`]. It
//! publishes what [`AttemptWriter::poll_transmit`] returns, one record at a
//! time, through JetStream, and reports the PubAck
//! ([`AttemptWriter::handle_stored`]) or its absence
//! ([`AttemptWriter::handle_unconfirmed`]). It does what
//! [`AttemptWriter::poll`] says: progress acknowledgements, reads of the
//! last record, the final acknowledgement, or stopping the agent. Time
//! comes in as arguments; the writer never reads a clock.
//!
//! ```
//! use std::time::Instant;
//! use nap_proto::{AgentStream, Chunk, Identity, PromptLimits};
//! use nap_proto::durable::{AttemptWriter, Claim, ClaimDecision, DurableSubjects, RunId, WorkerAction, WorkerPolicy};
//!
//! let t0 = Instant::now();
//! let subjects = DurableSubjects::for_identity(&Identity::new("echo", "alice", "demo").unwrap());
//! let run = RunId::from_random([3; 16]);
//! let claim = Claim { prompt_seq: 41, delivered: 1 };
//! let ClaimDecision::Work(mut writer) =
//!     AttemptWriter::claim(t0, &subjects, &run, claim, None, WorkerPolicy::default())
//! else {
//!     panic!("a fresh run is worked on")
//! };
//!
//! // The agent's side, as for a live prompt, without keep-alives.
//! let mut agent = AgentStream::new(t0, None);
//! agent.handle_request(t0, b"hello", PromptLimits::DEFAULT).unwrap();
//! agent.handle_chunk(t0, &Chunk::text("hi")).unwrap();
//! agent.finish(t0, None);
//! while let Some(out) = agent.poll() {
//!     writer.handle_outgoing(t0, &out).unwrap();
//! }
//!
//! // One record at a time, each fenced on the one before.
//! let mut seq = 56;
//! while let Some(record) = writer.poll_transmit() {
//!     assert_eq!(record.expected_last_subject_sequence(), Some(if seq == 56 { 0 } else { seq }));
//!     seq += 1;
//!     writer.handle_stored(t0, seq);
//! }
//! assert_eq!(writer.poll(), Some(WorkerAction::Ack));
//! ```

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::config::WorkerPolicy;
use super::headers::{Append, LastRecord, RecordKind, RecordMeta};
use super::run_id::RunId;
use super::state::RunState;
use super::subjects::DurableSubjects;
use crate::agent_stream::{Outgoing, StreamClosed};
use crate::chunk::ACK_JSON;
use crate::error::{ErrorBody, ServiceError, StatusCode};

/// The `error` code of the `exhausted` record's body (D9.7).
pub const EXHAUSTED_ERROR: &str = "attempts_exhausted";
/// The description of the `exhausted` record (D8.4).
pub const EXHAUSTED_DESCRIPTION: &str = "the run failed on every attempt";

/// One delivery of a prompt record to a worker: a claim on the run (D9.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim {
    /// The prompt record's stream sequence: the run's generation.
    pub prompt_seq: u64,
    /// The delivery count the server reports (`num_delivered`, from 1): the
    /// attempt number (D9.3).
    pub delivered: u32,
}

/// What to do with a claim (D9.3).
#[derive(Debug)]
pub enum ClaimDecision {
    /// Run the agent as attempt `delivered`; store its output through the
    /// writer.
    Work(AttemptWriter),
    /// Every attempt is used: publish the writer's one record (`exhausted`),
    /// then terminate the delivery as it says. Run nothing.
    Exhausted(AttemptWriter),
    /// The run is over already: acknowledge the delivery, do nothing else.
    Settled(RunState),
    /// A later claim holds the run: do nothing, not even acknowledge.
    Stale {
        /// The attempt that holds it.
        holder: u32,
    },
}

/// What the worker must do next, in order (D9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerAction {
    /// Send a progress acknowledgement (`+WPI`) for the delivery (D9.2).
    Progress,
    /// Read the last record on the reply subject and pass it to
    /// [`AttemptWriter::handle_last`] (D9.2, D9.4).
    ReadLast,
    /// Acknowledge the delivery (`+ACK`): the final record is stored (D9.5),
    /// or the run was cancelled (D13).
    Ack,
    /// Terminate the delivery (`+TERM`): the `exhausted` record is stored
    /// (D9.7).
    Term,
    /// NAK the delivery: the attempt was abandoned and the run is retried
    /// (D9.6).
    Nak,
    /// Stop the agent: the run was cancelled (D13). [`WorkerAction::Ack`]
    /// follows.
    Cancelled,
    /// Stop the agent and send nothing: a later attempt holds the run
    /// (D9.4).
    Superseded,
}

/// One record queued or in flight.
#[derive(Debug, Clone)]
struct Pending {
    kind: RecordKind,
    index: u32,
    body: Vec<u8>,
    error: Option<[(&'static str, String); 2]>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Records may be queued and published.
    Writing,
    /// The final record is stored.
    Done,
    /// The attempt was abandoned, cancelled or superseded.
    Stopped,
}

/// The writer of one attempt's reply records (D8, D9.4, D9.5).
#[derive(Debug)]
pub struct AttemptWriter {
    subject: String,
    run: RunId,
    answers: DurableSubjects,
    prompt_seq: u64,
    attempt: u32,
    exhausted: bool,
    progress_every: Duration,
    next_progress: Instant,
    /// The sequence the next record expects: the last record read at the
    /// claim, then each stored record's.
    last_seq: u64,
    /// Whether a record of this attempt is stored.
    wrote: bool,
    next_index: u32,
    queries: u32,
    queue: VecDeque<Pending>,
    in_flight: Option<Pending>,
    /// An error record is queued: the terminator that follows it is part
    /// of it (D8.1).
    error_queued: bool,
    final_queued: bool,
    /// A [`WorkerAction::ReadLast`] was asked for after a publication whose
    /// outcome is unknown.
    reconciling: bool,
    state: State,
    actions: VecDeque<WorkerAction>,
}

impl AttemptWriter {
    /// Decides a claim (D9.3) from the delivery and the last record on the
    /// run's reply subject (`None`: there is none).
    pub fn claim(
        now: Instant,
        subjects: &DurableSubjects,
        run: &RunId,
        claim: Claim,
        last: Option<&LastRecord>,
        policy: WorkerPolicy,
    ) -> ClaimDecision {
        if let Some(meta) = last.and_then(|l| l.of_generation(claim.prompt_seq)) {
            if meta.kind.is_final() {
                let state =
                    RunState::derive(Some(claim.prompt_seq), last).unwrap_or(RunState::Queued);
                return ClaimDecision::Settled(state);
            }
            if meta.attempt >= claim.delivered {
                return ClaimDecision::Stale {
                    holder: meta.attempt,
                };
            }
        }
        let progress_every = policy.progress_interval();
        let mut writer = AttemptWriter {
            subject: subjects.reply(run),
            run: run.clone(),
            answers: subjects.clone(),
            prompt_seq: claim.prompt_seq,
            attempt: claim.delivered,
            exhausted: false,
            progress_every,
            next_progress: now + progress_every,
            last_seq: last.map_or(0, |l| l.seq),
            wrote: false,
            next_index: 0,
            queries: 0,
            queue: VecDeque::new(),
            in_flight: None,
            error_queued: false,
            final_queued: false,
            reconciling: false,
            state: State::Writing,
            actions: VecDeque::new(),
        };
        if claim.delivered > policy.max_attempts {
            // D9.7: the extra delivery stores the failure and runs nothing.
            writer.exhausted = true;
            let error = ServiceError::new(StatusCode::Internal, EXHAUSTED_DESCRIPTION).with_body(
                ErrorBody::new(EXHAUSTED_ERROR, EXHAUSTED_DESCRIPTION)
                    .with_field("attempts", policy.max_attempts),
            );
            writer.push(RecordKind::Exhausted, &error);
            return ClaimDecision::Exhausted(writer);
        }
        ClaimDecision::Work(writer)
    }

    /// The attempt number (D9.3).
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The generation: the prompt record's stream sequence.
    pub fn prompt_seq(&self) -> u64 {
        self.prompt_seq
    }

    /// The reply subject the records go to.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// Queues the record for one message of the attempt (D8.1, D8.3): the
    /// attempt's first `ack` and every other chunk unchanged, later `ack`
    /// keep-alives not at all; an error signal as the final `error` record
    /// (the terminator after it is part of it); the terminator as the final
    /// `end` record. Nothing may follow the final record.
    pub fn handle_outgoing(
        &mut self,
        _now: Instant,
        message: &Outgoing,
    ) -> Result<(), StreamClosed> {
        if self.state != State::Writing {
            return Err(StreamClosed);
        }
        match message {
            // §9.3 → D8.1: the error record already ends the run; the one
            // terminator that follows it is part of it.
            Outgoing::Terminator if self.error_queued => {
                self.error_queued = false;
                return Ok(());
            }
            _ if self.final_queued => return Err(StreamClosed),
            // D8.3: keep-alives are not stored.
            Outgoing::Chunk(body) if body.as_ref() == ACK_JSON && self.next_index > 0 => {}
            Outgoing::Chunk(body) => self.queue_record(RecordKind::Chunk, body.to_vec(), None),
            Outgoing::Error(error) => {
                self.error_queued = true;
                self.push(RecordKind::Error, error);
            }
            Outgoing::Terminator => self.queue_record(RecordKind::End, Vec::new(), None),
        }
        Ok(())
    }

    fn push(&mut self, kind: RecordKind, error: &ServiceError) {
        self.queue_record(kind, error.body_bytes(), Some(error.headers()));
    }

    fn queue_record(
        &mut self,
        kind: RecordKind,
        body: Vec<u8>,
        error: Option<[(&'static str, String); 2]>,
    ) {
        self.final_queued |= kind.is_final();
        self.queue.push_back(Pending {
            kind,
            index: self.next_index,
            body,
            error,
        });
        self.next_index += 1;
    }

    /// The `reply_subject` for the attempt's next query (D12): answers are
    /// stored on it, once.
    pub fn answer_subject(&mut self) -> String {
        self.queries += 1;
        self.answers.answer(&self.run, self.attempt, self.queries)
    }

    /// The next record to publish, fenced on the one before it (D9.4); none
    /// while one is in flight, while the last record must be read, or once
    /// the attempt is over.
    pub fn poll_transmit(&mut self) -> Option<Append> {
        if self.state != State::Writing || self.in_flight.is_some() || self.reconciling {
            return None;
        }
        let pending = self.queue.pop_front()?;
        let append = self.append(&pending);
        self.in_flight = Some(pending);
        Some(append)
    }

    fn append(&self, pending: &Pending) -> Append {
        let meta = RecordMeta {
            kind: pending.kind.clone(),
            attempt: self.attempt,
            index: Some(pending.index),
            prompt_seq: self.prompt_seq,
        };
        let mut headers = meta.headers(&self.run, self.last_seq);
        if let Some(error) = &pending.error {
            headers.extend(error.iter().cloned());
        }
        Append {
            subject: self.subject.clone(),
            headers,
            body: pending.body.clone(),
        }
    }

    /// The record in flight is stored at `seq` (its PubAck, duplicate or
    /// not).
    pub fn handle_stored(&mut self, now: Instant, seq: u64) {
        let _ = now;
        let Some(pending) = self.in_flight.take() else {
            return;
        };
        self.reconciling = false;
        self.last_seq = seq;
        self.wrote = true;
        if pending.kind.is_final() && self.state == State::Writing {
            self.state = State::Done;
            // D9.5: acknowledged only now; D9.7: the failure terminates.
            self.actions.push_back(if self.exhausted {
                WorkerAction::Term
            } else {
                WorkerAction::Ack
            });
        }
    }

    /// The record in flight was refused (`10071`, wrong last sequence) or
    /// its outcome is unknown (no PubAck): the last record on the subject
    /// must be read (D9.4).
    pub fn handle_unconfirmed(&mut self, now: Instant) {
        let _ = now;
        if self.in_flight.is_some() && self.state == State::Writing && !self.reconciling {
            self.reconciling = true;
            self.actions.push_back(WorkerAction::ReadLast);
        }
    }

    /// The last record on the reply subject, read after
    /// [`WorkerAction::ReadLast`] (D9.4) or at a progress acknowledgement
    /// (D9.2).
    pub fn handle_last(&mut self, now: Instant, last: Option<&LastRecord>) {
        if self.state != State::Writing {
            return;
        }
        let ours = last.and_then(|l| l.of_generation(self.prompt_seq));
        if self.reconciling
            && let Some(pending) = self.in_flight.as_ref()
        {
            self.reconciling = false;
            let last_seq = last.map_or(0, |l| l.seq);
            if ours.is_some_and(|m| m.attempt == self.attempt && m.index == Some(pending.index)) {
                // It was stored; the PubAck was lost.
                self.handle_stored(now, last_seq);
            } else if last_seq == self.last_seq {
                // Nothing was added: publish it again.
                self.requeue();
            } else if ours.is_some_and(|m| m.kind == RecordKind::Cancel) {
                self.stop(WorkerAction::Cancelled);
            } else if !self.wrote && pending.index == 0 && may_take_over(ours, self.attempt) {
                // D9.4: a stale attempt wrote in between; take the subject.
                self.last_seq = last_seq;
                self.requeue();
            } else {
                self.stop(WorkerAction::Superseded);
            }
            return;
        }
        // A check at a progress acknowledgement (D9.2).
        match ours {
            Some(m) if m.kind == RecordKind::Cancel => self.stop(WorkerAction::Cancelled),
            Some(m) if m.attempt > self.attempt => self.stop(WorkerAction::Superseded),
            Some(m) if m.attempt < self.attempt && m.kind.is_final() => {
                self.stop(WorkerAction::Superseded)
            }
            // Ours, an older attempt's (our first record takes over), or
            // another generation's.
            _ => {}
        }
    }

    fn requeue(&mut self) {
        if let Some(pending) = self.in_flight.take() {
            self.queue.push_front(pending);
        }
    }

    fn stop(&mut self, action: WorkerAction) {
        self.state = State::Stopped;
        self.queue.clear();
        self.in_flight = None;
        self.reconciling = false;
        self.actions.push_back(action);
        if action == WorkerAction::Cancelled {
            // D13: a cancelled run is settled.
            self.actions.push_back(WorkerAction::Ack);
        }
    }

    /// Abandons the attempt (the agent failed without answering, or the
    /// worker stops): nothing more is stored, and the delivery is NAKed so
    /// the run is retried (D9.6). Does nothing once the attempt is over.
    pub fn abandon(&mut self, now: Instant) {
        let _ = now;
        if self.state == State::Writing {
            self.stop(WorkerAction::Nak);
        }
    }

    /// When the next progress acknowledgement is due (D9.2); `None` once
    /// the attempt is over.
    pub fn poll_timeout(&self) -> Option<Instant> {
        (self.state == State::Writing).then_some(self.next_progress)
    }

    /// Queues a progress acknowledgement, and a read of the last record (a
    /// cancel, a later attempt), when one is due at `now` (D9.2).
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.state != State::Writing || now < self.next_progress {
            return;
        }
        self.next_progress = now + self.progress_every;
        self.actions.push_back(WorkerAction::Progress);
        if !self.reconciling {
            self.actions.push_back(WorkerAction::ReadLast);
        }
    }

    /// The next thing to do, in order.
    pub fn poll(&mut self) -> Option<WorkerAction> {
        self.actions.pop_front()
    }

    /// Whether the attempt is over: its final record is stored, or it was
    /// abandoned, cancelled or superseded.
    pub fn is_over(&self) -> bool {
        self.state != State::Writing
    }

    /// How many records wait to be published, the one in flight included:
    /// a worker applies back-pressure to its agent on this.
    pub fn backlog(&self) -> usize {
        self.queue.len() + usize::from(self.in_flight.is_some())
    }
}

/// Whether a first record may take the subject over from the writer of
/// `ours` (D9.4): a record of another generation (`None`), or a non-final
/// record of an older attempt.
fn may_take_over(ours: Option<&RecordMeta>, attempt: u32) -> bool {
    ours.is_none_or(|m| !m.kind.is_final() && m.attempt < attempt)
}
