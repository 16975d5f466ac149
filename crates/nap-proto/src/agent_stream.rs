//! The agent's half of a response stream (§6, §9.3), sans IO.
//!
//! One [`AgentStream`] per request. The host hands it the request bytes
//! ([`AgentStream::handle_request`]), the chunks the agent produces
//! ([`AgentStream::handle_chunk`]), the passing of time
//! ([`AgentStream::handle_timeout`], for keep-alives) and the end
//! ([`AgentStream::finish`]); it takes the messages to publish, in order,
//! from [`AgentStream::poll`]. The machine enforces the rules of the
//! agent's side: the `ack` first, before any work and before a rejection
//! (§6.4); `400` for a malformed or unwanted request (§5.3, §5.4); at most
//! one error signal, always followed by the terminator (§9.3); nothing
//! after the terminator (§6.5).
//!
//! ```
//! use std::time::{Duration, Instant};
//! use nap_proto::{AgentStream, Outgoing};
//! use nap_proto::{Chunk, PromptLimits};
//!
//! let t0 = Instant::now();
//! let mut stream = AgentStream::new(t0, Some(Duration::from_secs(15)));
//! let envelope = stream.handle_request(t0, b"hello", PromptLimits::DEFAULT).unwrap();
//! assert_eq!(envelope.prompt, "hello");
//! stream.handle_chunk(t0, &Chunk::text("hi")).unwrap();
//! stream.finish(t0, None);
//! let sent: Vec<Outgoing> = std::iter::from_fn(|| stream.poll()).collect();
//! assert_eq!(sent.len(), 3); // ack, the chunk, the terminator
//! assert_eq!(sent[2], Outgoing::Terminator);
//! ```

use std::borrow::Cow;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::chunk::{ACK_JSON, Chunk};
use crate::envelope::Envelope;
use crate::error::{ServiceError, StatusCode};
use crate::request::{self, PromptLimits, RequestError};

/// One message for the agent to publish on the reply subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outgoing {
    /// A chunk (§6.2): this JSON body, published without headers.
    Chunk(Cow<'static, [u8]>),
    /// The error signal (§9.1, §9.3): the error headers and the optional
    /// JSON body. The terminator always follows.
    Error(ServiceError),
    /// The terminator (§6.5): zero bytes and no headers.
    Terminator,
}

impl Outgoing {
    /// The bytes of the message body.
    pub fn body(&self) -> Cow<'_, [u8]> {
        match self {
            Outgoing::Chunk(bytes) => Cow::Borrowed(bytes.as_ref()),
            Outgoing::Error(error) => Cow::Owned(error.body_bytes()),
            Outgoing::Terminator => Cow::Borrowed(&[]),
        }
    }
}

/// A chunk handed to a stream that is already over (§6.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the response stream is over: nothing may follow the terminator (§6.5)")]
pub struct StreamClosed;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// No request read yet: nothing has been sent.
    Waiting,
    /// Acked; chunks may flow.
    Open,
    /// The terminator is queued; nothing more may be sent.
    Finished,
}

/// The agent's half of one response stream.
#[derive(Debug)]
pub struct AgentStream {
    state: State,
    keepalive: Option<Duration>,
    last_sent: Instant,
    outgoing: VecDeque<Outgoing>,
    error: Option<StatusCode>,
}

impl AgentStream {
    /// A stream for a request that arrived at `now`. With `keepalive`, an
    /// `ack` is sent whenever the agent has been silent that long, so the
    /// caller's inactivity timer (§6.6) does not fire during long work.
    pub fn new(now: Instant, keepalive: Option<Duration>) -> Self {
        AgentStream {
            state: State::Waiting,
            keepalive: keepalive.filter(|k| !k.is_zero()),
            last_sent: now,
            outgoing: VecDeque::with_capacity(3),
            error: None,
        }
    }

    /// Reads the request (§5): queues the `ack` (§6.4: first, before any
    /// work, rejections included, since it confirms the request was
    /// received) and returns the envelope to work on. A malformed,
    /// oversize or unwanted request (§5.3, §5.4) is answered with `400`
    /// and the terminator, and its reason returned.
    pub fn handle_request(
        &mut self,
        now: Instant,
        payload: &[u8],
        limits: PromptLimits,
    ) -> Result<Envelope, RequestError> {
        self.open(now);
        match request::accept(payload, limits) {
            Ok(envelope) => Ok(envelope),
            Err(e) => {
                self.finish(now, Some(e.to_service_error()));
                Err(e)
            }
        }
    }

    /// Acknowledges a request whose body this side does not interpret (the
    /// `status` endpoint, or a transport that decodes for itself).
    pub fn open(&mut self, now: Instant) {
        if self.state == State::Waiting {
            self.state = State::Open;
            self.push(now, Outgoing::Chunk(Cow::Borrowed(ACK_JSON)));
        }
    }

    /// Queues one chunk of the answer (§6.2, in publication order).
    pub fn handle_chunk(&mut self, now: Instant, chunk: &Chunk) -> Result<(), StreamClosed> {
        match self.state {
            State::Finished => Err(StreamClosed),
            State::Waiting | State::Open => {
                // §6.4: the ack comes first, whatever the agent sends.
                self.open(now);
                self.push(now, Outgoing::Chunk(Cow::Owned(chunk.encode())));
                Ok(())
            }
        }
    }

    /// Ends the stream: the error signal if any (§9.3), then the terminator
    /// (§6.5). A stream ends once; later calls change nothing.
    pub fn finish(&mut self, now: Instant, error: Option<ServiceError>) {
        if self.state == State::Finished {
            return;
        }
        self.open(now);
        self.state = State::Finished;
        if let Some(error) = error {
            self.error = Some(error.code);
            self.push(now, Outgoing::Error(error));
        }
        self.push(now, Outgoing::Terminator);
    }

    /// When the next keep-alive is due; `None` without keep-alives or once
    /// the stream is over.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Open => self.keepalive.map(|every| self.last_sent + every),
            State::Waiting | State::Finished => None,
        }
    }

    /// Queues a keep-alive `ack` (§6.4, §6.6) if the stream has been silent
    /// for the keep-alive interval at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.poll_timeout().is_some_and(|due| now >= due) {
            self.push(now, Outgoing::Chunk(Cow::Borrowed(ACK_JSON)));
        }
    }

    /// The next message to publish, in order.
    pub fn poll(&mut self) -> Option<Outgoing> {
        self.outgoing.pop_front()
    }

    /// Whether the terminator has been queued.
    pub fn is_finished(&self) -> bool {
        self.state == State::Finished
    }

    /// The keep-alive interval, if any.
    pub fn keepalive(&self) -> Option<Duration> {
        self.keepalive
    }

    /// The code of the error the stream ended with, if it did.
    pub fn error(&self) -> Option<StatusCode> {
        self.error
    }

    fn push(&mut self, now: Instant, message: Outgoing) {
        self.last_sent = now;
        self.outgoing.push_back(message);
    }
}

impl ServiceError {
    /// `429`: the instance already runs as many prompts as it allows (§9.2).
    pub fn busy() -> Self {
        ServiceError::new(
            StatusCode::TooManyRequests,
            "too many concurrent prompts for this agent instance",
        )
    }

    /// `429`: the instance is shutting down and takes no new prompts; the
    /// caller may try another instance (§9.2 has no closer code).
    pub fn stopping() -> Self {
        ServiceError::new(
            StatusCode::TooManyRequests,
            "this agent instance is shutting down; try again",
        )
    }

    /// `500`: the agent failed while answering (a panic, a crash of its
    /// task); the details stay in the agent's logs (§9.2).
    pub fn agent_failed() -> Self {
        ServiceError::new(StatusCode::Internal, "the agent failed while answering")
    }

    /// `500`: the instance stopped (its shutdown timeout passed) before the
    /// agent finished this answer.
    pub fn shut_down() -> Self {
        ServiceError::new(
            StatusCode::Internal,
            "the agent instance stopped before finishing this answer",
        )
    }

    /// `500`: the agent's connection to NATS was interrupted while it was
    /// streaming, so part of the answer may never have reached the caller.
    pub fn interrupted() -> Self {
        ServiceError::new(
            StatusCode::Internal,
            "the agent's connection to NATS was interrupted while streaming; part of the reply may be lost",
        )
    }
}
