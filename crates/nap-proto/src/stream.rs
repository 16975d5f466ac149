//! The caller's half of a response stream (§6, §7, §9.3), sans IO.
//!
//! Feed every message received on the reply subject to
//! [`ResponseStream::handle_message`] with the time it arrived, then take
//! what it learned from [`ResponseStream::poll`]. Events are queued: each
//! input adds at most one, and `poll` returns them in the order of the
//! inputs that produced them, so a driver may feed several messages before
//! it polls and loses nothing. Once a final event (see
//! [`StreamEvent::is_final`]) is queued, later inputs queue only
//! violations (a message after the end) and nothing else. Ask
//! [`ResponseStream::poll_timeout`] when the stream would expire and call
//! [`ResponseStream::handle_timeout`] then. When the transport knows that
//! messages may have been lost, it says so with
//! [`ResponseStream::handle_loss`], and the stream ends with an error
//! instead of pretending to be complete. The machine never reads a clock.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::chunk::{Chunk, ChunkError, Query, ResponseData, StatusToken};
use crate::error::{ERROR_CODE_HEADER, ERROR_HEADER, RemoteError};

/// The recommended inactivity timeout (§6.6).
pub const DEFAULT_INACTIVITY: Duration = Duration::from_secs(60);

/// Read access to a message's NATS headers, implemented by transports.
pub trait Headers {
    /// The first value of header `name`, if present.
    fn get(&self, name: &str) -> Option<&str>;
}

impl Headers for [(&str, &str)] {
    fn get(&self, name: &str) -> Option<&str> {
        self.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
    }
}

impl<const N: usize> Headers for [(&str, &str); N] {
    fn get(&self, name: &str) -> Option<&str> {
        Headers::get(self.as_slice(), name)
    }
}

impl Headers for Vec<(String, String)> {
    fn get(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One message as received: its header block (if it had one) and body.
#[derive(Clone, Copy)]
pub struct Received<'a> {
    /// `Some` when the message carried a NATS header block, even an empty one.
    pub headers: Option<&'a dyn Headers>,
    /// The payload.
    pub body: &'a [u8],
}

impl<'a> Received<'a> {
    /// A message without headers.
    pub fn body(body: &'a [u8]) -> Self {
        Received {
            headers: None,
            body,
        }
    }

    /// A message with a header block.
    pub fn with_headers(headers: &'a dyn Headers, body: &'a [u8]) -> Self {
        Received {
            headers: Some(headers),
            body,
        }
    }

    /// The §6.5 terminator: zero bytes and no headers.
    pub fn is_terminator(&self) -> bool {
        self.headers.is_none() && self.body.is_empty()
    }

    /// The §9.1 error signal carried by this message, if it is one: §12
    /// asks callers to look at the error headers of every message before
    /// its body.
    pub fn error(&self) -> Option<RemoteError> {
        let headers = self.headers?;
        let code = headers.get(ERROR_CODE_HEADER);
        let description = headers.get(ERROR_HEADER);
        (code.is_some() || description.is_some())
            .then(|| RemoteError::from_parts(code, description, self.body))
    }
}

/// Why the messages of a stream may be incomplete although no rule of the
/// protocol was broken: NATS core is at-most-once, and the transport tells
/// the stream when it may have dropped something.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Loss {
    /// The connection to the NATS server was lost and re-established while
    /// the stream was open: whatever was published meanwhile is gone.
    #[error(
        "the connection to NATS was interrupted while the reply was streaming; messages may have been lost"
    )]
    Reconnected,
    /// The NATS client dropped messages of this stream's subscription
    /// because they were not read fast enough (a slow consumer).
    #[error("the NATS client dropped messages of this reply (slow consumer)")]
    SlowConsumer,
    /// The reply outgrew the memory the caller allowed a stream to buffer.
    #[error(
        "the reply needed more than {limit} bytes of buffer; read it faster or raise the limit"
    )]
    BufferFull {
        /// The budget, in bytes.
        limit: u64,
    },
    /// The subscription carrying the reply ended before the terminator.
    #[error("the reply subscription closed before the terminator")]
    SubscriptionClosed,
}

/// What a caller learns from the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEvent {
    /// The `ack` status (§6.4).
    Ack,
    /// Another status token; callers ignore it (§6.4).
    Status(String),
    /// Response content (§6.3).
    Response(ResponseData),
    /// A mid-stream query to answer (§7).
    Query(Query),
    /// A message that broke a rule of the stream. The stream goes on: the
    /// message is skipped and nothing else changes.
    Violation(StreamViolation),
    /// An error signal (§9.3): the stream is over with this outcome (the
    /// terminator that should follow is not waited for).
    Error(RemoteError),
    /// The terminator (§6.5): the stream is over and complete.
    End,
    /// No message for longer than the inactivity timeout (§6.6): the stream
    /// is over with a transport error.
    TimedOut {
        /// How long the stream was silent.
        idle: Duration,
    },
    /// The overall deadline the caller set passed before the terminator: the
    /// stream is over (a stream of endless keep-alives would never end).
    DeadlineExceeded {
        /// How long the stream had been open.
        after: Duration,
    },
    /// Messages may have been lost: the stream is over and incomplete.
    Lost(Loss),
}

impl StreamEvent {
    /// Whether the stream is over after this event.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            StreamEvent::Error(_)
                | StreamEvent::End
                | StreamEvent::TimedOut { .. }
                | StreamEvent::DeadlineExceeded { .. }
                | StreamEvent::Lost(_)
        )
    }
}

/// A message that breaks the stream rules; the stream state is unchanged.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StreamViolation {
    /// A message arrived after the terminator (§6.5 MUST NOT).
    #[error("message received after the terminator (§6.5)")]
    AfterEnd,
    /// A message other than the terminator followed an error signal (§9.3).
    #[error("message received after an error signal; only the terminator may follow (§9.3)")]
    AfterError,
    /// A zero-byte message carrying headers but no error: not a terminator (§6.5).
    #[error("zero-byte message with headers is not a terminator (§6.5)")]
    HeadersOnEmpty,
    /// The body is not a well-formed chunk.
    #[error(transparent)]
    Malformed(Arc<ChunkError>),
}

impl From<ChunkError> for StreamViolation {
    fn from(e: ChunkError) -> Self {
        StreamViolation::Malformed(Arc::new(e))
    }
}

/// Two violations are equal when they break the same rule the same way
/// (malformed chunks compare by their description).
impl PartialEq for StreamViolation {
    fn eq(&self, other: &Self) -> bool {
        use StreamViolation::*;
        match (self, other) {
            (AfterEnd, AfterEnd) | (AfterError, AfterError) | (HeadersOnEmpty, HeadersOnEmpty) => {
                true
            }
            (Malformed(a), Malformed(b)) => a.to_string() == b.to_string(),
            _ => false,
        }
    }
}

impl Eq for StreamViolation {}

/// What a caller learns from one chunk body (§6.2–§6.4, §7.1): the event,
/// or nothing for an unknown chunk type, which callers skip (§6.6). Shared
/// by the live stream and the durable reader, which stores chunk bodies
/// unchanged.
pub(crate) fn chunk_event(body: &[u8]) -> Option<StreamEvent> {
    match Chunk::decode(body) {
        Ok(Chunk::Status(StatusToken::Ack)) => Some(StreamEvent::Ack),
        Ok(Chunk::Status(StatusToken::Other(s))) => Some(StreamEvent::Status(s)),
        Ok(Chunk::Response(data)) => Some(StreamEvent::Response(data)),
        Ok(Chunk::Query(q)) => Some(StreamEvent::Query(q)),
        // §6.6: unknown chunk types are silently ignored.
        Ok(Chunk::Unknown { .. }) => None,
        Err(e) => Some(StreamEvent::Violation(e.into())),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    /// An error signal arrived: only the terminator may follow (§9.3).
    ErrorSeen,
    Ended,
}

/// The caller's half of one response stream.
#[derive(Debug)]
pub struct ResponseStream {
    state: State,
    inactivity: Duration,
    started: Instant,
    deadline: Option<Instant>,
    last_activity: Instant,
    messages: u64,
    first_was_ack: Option<bool>,
    /// What was learned and not yet taken by [`ResponseStream::poll`], in order.
    pending: VecDeque<StreamEvent>,
}

impl ResponseStream {
    /// A stream whose request was published at `now` (§6.6: the inactivity
    /// clock starts at publication).
    pub fn new(now: Instant, inactivity: Duration) -> Self {
        ResponseStream {
            state: State::Open,
            inactivity,
            started: now,
            deadline: None,
            last_activity: now,
            messages: 0,
            first_was_ack: None,
            pending: VecDeque::new(),
        }
    }

    /// Ends the stream with [`StreamEvent::DeadlineExceeded`] if it is still
    /// open `after` its publication, however active it is.
    pub fn with_deadline(mut self, after: Duration) -> Self {
        self.deadline = self.started.checked_add(after);
        self
    }

    /// Reads one received message (§6.5, §9.3): headers first, then body.
    pub fn handle_message(&mut self, now: Instant, msg: Received<'_>) {
        if let Some(event) = self.read(now, msg) {
            self.pending.push_back(event);
        }
    }

    fn read(&mut self, now: Instant, msg: Received<'_>) -> Option<StreamEvent> {
        match self.state {
            // §6.5: nothing may follow the terminator.
            State::Ended => return Some(StreamEvent::Violation(StreamViolation::AfterEnd)),
            State::Open | State::ErrorSeen => {}
        }
        // §6.6: every message resets the inactivity clock.
        self.last_activity = now;
        self.messages += 1;
        let first = self.messages == 1;

        // §6.5: zero bytes and no header block end the stream.
        if msg.is_terminator() {
            self.state = State::Ended;
            self.note_first(first, false);
            return Some(StreamEvent::End);
        }
        if self.state == State::ErrorSeen {
            return Some(StreamEvent::Violation(StreamViolation::AfterError));
        }
        // §12: error headers are inspected on every message before the body.
        if let Some(error) = msg.error() {
            // §9.3: the error is the outcome; the terminator is not waited for.
            self.state = State::ErrorSeen;
            self.note_first(first, false);
            return Some(StreamEvent::Error(error));
        }
        if msg.headers.is_some() && msg.body.is_empty() {
            self.note_first(first, false);
            return Some(StreamEvent::Violation(StreamViolation::HeadersOnEmpty));
        }
        let event = chunk_event(msg.body);
        self.note_first(first, event == Some(StreamEvent::Ack));
        event
    }

    fn note_first(&mut self, first: bool, was_ack: bool) {
        if first {
            self.first_was_ack = Some(was_ack);
        }
    }

    /// The transport may have lost messages of this stream: an open stream
    /// ends with [`StreamEvent::Lost`]. A stream that is already over is
    /// left as it is (what it delivered was complete).
    pub fn handle_loss(&mut self, loss: Loss) {
        // An error signal (§9.3) or the terminator already settled the outcome.
        if self.state != State::Open {
            return;
        }
        self.state = State::Ended;
        self.pending.push_back(StreamEvent::Lost(loss));
    }

    /// The next thing learned, if any, oldest first.
    pub fn poll(&mut self) -> Option<StreamEvent> {
        self.pending.pop_front()
    }

    /// When the stream expires if nothing arrives (§6.6), or at its
    /// overall deadline, whichever is first; `None` once it is over.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.state == State::Ended {
            return None;
        }
        let idle = self.last_activity + self.inactivity;
        Some(match self.deadline {
            Some(deadline) => idle.min(deadline),
            None => idle,
        })
    }

    /// Ends the stream if `now` is past its inactivity timeout (§6.6) or its
    /// overall deadline; earlier calls change nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.state == State::Ended {
            return;
        }
        if self.deadline.is_some_and(|d| now >= d) {
            self.state = State::Ended;
            self.pending.push_back(StreamEvent::DeadlineExceeded {
                after: now.saturating_duration_since(self.started),
            });
        } else if now >= self.last_activity + self.inactivity {
            self.state = State::Ended;
            self.pending.push_back(StreamEvent::TimedOut {
                idle: now.saturating_duration_since(self.last_activity),
            });
        }
    }

    /// Whether the stream is over (terminator, error, timeout or loss).
    pub fn is_ended(&self) -> bool {
        self.state == State::Ended
    }

    /// Whether the first message was the `ack` (§6.4); `None` before any message.
    pub fn first_was_ack(&self) -> Option<bool> {
        self.first_was_ack
    }

    /// How many messages were handled.
    pub fn messages(&self) -> u64 {
        self.messages
    }
}
