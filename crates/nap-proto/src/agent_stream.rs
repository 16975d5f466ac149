//! The agent's half of a response stream (§6, §9.3), sans IO.
//!
//! One [`AgentStream`] per request. The host hands it the request as it
//! arrived, with what it knows about the sender and itself
//! ([`AgentStream::handle_arrival`], which decides whether the request is
//! served), the chunks the agent produces ([`AgentStream::handle_chunk`]),
//! the passing of time ([`AgentStream::handle_timeout`], for keep-alives),
//! an interrupted connection ([`AgentStream::handle_interruption`]) and how
//! the turn ended ([`AgentStream::end_turn`]); it takes the messages to
//! publish, in order, from [`AgentStream::poll`]. The machine enforces the
//! rules of the agent's side: the `ack` first, before any work and before a
//! rejection (§6.4); the order of the admission checks (sender §13.7, then
//! the envelope §5.3/§5.4, then the host's own state); `400` for a
//! malformed or unwanted request; at most one error signal, always followed
//! by the terminator (§9.3); nothing after the terminator (§6.5).
//!
//! A query's answer (§7.2) is checked by [`accept_answer`] with the same
//! rules as a prompt's envelope.
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
use crate::envelope::{Envelope, EnvelopeError};
use crate::error::{ServiceError, StatusCode};
use crate::file_name::{FileNameError, check_file_name};
use crate::identity::{Sender, SenderRejection};
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

/// A request as it reached the host, with what the host knows when it
/// decides about it: the input of [`AgentStream::handle_arrival`].
#[derive(Debug)]
pub struct Arrival<'a, R> {
    /// The request payload, as received.
    pub payload: &'a [u8],
    /// The `prompt` endpoint's declared limits (§2.1).
    pub limits: PromptLimits,
    /// The sender as classified and accepted (§13.7, §13.9, §13.7.3), or
    /// why it is refused.
    pub sender: Result<Sender, SenderRejection>,
    /// Whether the instance is shutting down.
    pub stopping: bool,
    /// Takes one of the instance's places for a prompt, or says there is
    /// none; asked last, and only for a request that passed every check.
    pub reserve: R,
}

/// What [`AgentStream::handle_arrival`] decided.
// Built once per request and taken apart at once: boxing the envelope
// would cost an allocation per prompt for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Admission<P> {
    /// Serve the request: the `ack` is queued, the agent may start.
    Serve {
        /// Who sent it (§13.7).
        sender: Sender,
        /// The request, decoded (§5.3).
        envelope: Envelope,
        /// The place [`Arrival::reserve`] took.
        place: P,
    },
    /// Refused: the `ack`, the error signal and the terminator are queued.
    Refused(Refusal),
}

/// Why a request was refused, in the order the checks run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The sender (§13.7: `400` malformed, `401` failing or required
    /// signature, `403`/`401` not accepted).
    #[error(transparent)]
    Sender(SenderRejection),
    /// The request itself (§5.3, §5.4: `400`).
    #[error(transparent)]
    Request(RequestError),
    /// The instance is shutting down (`429`).
    #[error("the instance is shutting down")]
    Stopping,
    /// Every place for a prompt is taken (`429`).
    #[error("the instance runs as many prompts as it allows")]
    Busy,
}

impl Refusal {
    /// The error signal the refusal is answered with (§9.3).
    pub fn service_error(&self) -> ServiceError {
        match self {
            Refusal::Sender(rejection) => rejection.to_service_error(),
            Refusal::Request(error) => error.to_service_error(),
            Refusal::Stopping => ServiceError::stopping(),
            Refusal::Busy => ServiceError::busy(),
        }
    }
}

/// How a turn ended, as the host saw it: the input of
/// [`AgentStream::end_turn`], which maps it to the stream's end.
#[derive(Debug, Clone, PartialEq)]
pub enum TurnEnd {
    /// The agent returned without an error.
    Answered,
    /// The agent returned this error (§9.2 code, description, optional body).
    Failed(ServiceError),
    /// Host code around the agent (an interceptor) refused the request
    /// with this error before the agent saw it.
    Refused(ServiceError),
    /// The agent, or code around it, panicked (`500`; the details stay in
    /// the host's logs).
    Panicked,
    /// The instance stopped before the agent finished (`500`).
    Abandoned,
}

impl TurnEnd {
    /// The error signal this end is answered with (§9.3), `None` for a
    /// clean end; on an interrupted stream [`AgentStream::end_turn`] answers
    /// a clean end with `500` instead.
    pub fn service_error(&self) -> Option<ServiceError> {
        match self {
            TurnEnd::Answered => None,
            TurnEnd::Failed(error) | TurnEnd::Refused(error) => Some(error.clone()),
            TurnEnd::Panicked => Some(ServiceError::agent_failed()),
            TurnEnd::Abandoned => Some(ServiceError::shut_down()),
        }
    }
}

/// Why a query's answer (§7.2) is refused: the rules of a prompt's
/// envelope (§5.3, §5.2).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AnswerError {
    /// The answer is not a valid envelope.
    #[error("the answer is not a valid envelope: {0} (§7.2)")]
    Envelope(#[from] EnvelopeError),
    /// An attachment's `filename` cannot be one file name.
    #[error(
        "attachment {index} of the answer has an unsafe filename {filename:?}: it {error} (§7.2, §5.2)"
    )]
    UnsafeFileName {
        /// The attachment's position, from 0.
        index: usize,
        /// The name as sent.
        filename: String,
        /// What is wrong with it.
        error: FileNameError,
    },
}

/// Reads a query's answer (§7.2): plain text or an envelope, with the same
/// file-name rule as a prompt's attachments.
pub fn accept_answer(payload: &[u8]) -> Result<Envelope, AnswerError> {
    let answer = Envelope::decode(payload)?;
    for (index, attachment) in answer.attachments.iter().enumerate() {
        check_file_name(&attachment.filename).map_err(|error| AnswerError::UnsafeFileName {
            index,
            filename: attachment.filename.clone(),
            error,
        })?;
    }
    Ok(answer)
}

/// The agent's half of one response stream.
#[derive(Debug)]
pub struct AgentStream {
    state: State,
    keepalive: Option<Duration>,
    last_sent: Instant,
    outgoing: VecDeque<Outgoing>,
    /// The error signal the stream ended with, once it has.
    error: Option<ServiceError>,
    /// The connection was interrupted while the stream was open.
    interrupted: bool,
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
            interrupted: false,
        }
    }

    /// Decides about a request that arrived at `now` and queues what to
    /// publish. The `ack` comes first whatever the decision (§6.4: it
    /// confirms the request was received, refusals included); then the
    /// checks run in this order, the first failure being the answer:
    ///
    /// 1. the sender (§13.7: `400` for a malformed `Agent-Sender`, `401`
    ///    for a failing signature or, on a `signed` endpoint, none (§13.9);
    ///    `403`/`401` when the acceptance hook refuses, §13.7.3);
    /// 2. the request (§5.3, §5.4: `400`);
    /// 3. the instance shutting down (`429`);
    /// 4. a place for the prompt (`429`), taken only now.
    pub fn handle_arrival<P>(
        &mut self,
        now: Instant,
        arrival: Arrival<'_, impl FnOnce() -> Option<P>>,
    ) -> Admission<P> {
        self.open(now);
        let decided = match arrival.sender {
            Err(rejection) => Err(Refusal::Sender(rejection)),
            Ok(sender) => match request::accept(arrival.payload, arrival.limits) {
                Err(error) => Err(Refusal::Request(error)),
                Ok(_) if arrival.stopping => Err(Refusal::Stopping),
                Ok(envelope) => match (arrival.reserve)() {
                    None => Err(Refusal::Busy),
                    Some(place) => Ok(Admission::Serve {
                        sender,
                        envelope,
                        place,
                    }),
                },
            },
        };
        decided.unwrap_or_else(|refusal| {
            self.finish(now, Some(refusal.service_error()));
            Admission::Refused(refusal)
        })
    }

    /// The connection carrying the stream was interrupted (lost and
    /// re-established) while the stream was open: messages published
    /// meanwhile may be lost, so a turn that ends well is answered with
    /// `500` instead of a clean end.
    pub fn handle_interruption(&mut self) {
        if self.state != State::Finished {
            self.interrupted = true;
        }
    }

    /// Ends the turn (§9.3, §6.5): a clean end, or the error signal its
    /// end maps to, then the terminator. A turn that answered on an
    /// interrupted stream ends with `500` ([`ServiceError::interrupted`]).
    pub fn end_turn(&mut self, now: Instant, end: TurnEnd) {
        let error = match end {
            TurnEnd::Answered if self.interrupted => Some(ServiceError::interrupted()),
            end => end.service_error(),
        };
        self.finish(now, error);
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
            self.error = Some(error.clone());
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

    /// The error signal the stream ended with, if it did.
    pub fn error(&self) -> Option<&ServiceError> {
        self.error.as_ref()
    }

    /// The status the stream ended with: 200 for a clean end, else the
    /// error signal's code; `None` while it is open.
    pub fn status(&self) -> Option<u16> {
        (self.state == State::Finished)
            .then(|| self.error.as_ref().map_or(200, |e| e.code.as_u16()))
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
