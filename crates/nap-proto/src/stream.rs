//! The caller's response-stream decoder (§6, §7, §9.3), sans IO.
//!
//! Feed every message received on the reply subject to
//! [`ResponseStream::handle`] together with the time it arrived; ask
//! [`ResponseStream::deadline`] when the stream would expire and call
//! [`ResponseStream::handle_timeout`] then. The decoder never reads a clock.

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
}

/// What a caller learns from one message.
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
    /// An error signal (§9.3); the terminator should follow.
    Error(RemoteError),
    /// The terminator (§6.5): the stream is over.
    End,
    /// No message for longer than the inactivity timeout (§6.6): the stream
    /// is over with a transport error.
    TimedOut {
        /// How long the stream was silent.
        idle: Duration,
    },
}

/// A message that breaks the stream rules; the stream state is unchanged.
#[derive(Debug, thiserror::Error)]
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
    Malformed(#[from] ChunkError),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Open,
    ErrorSeen,
    Ended,
}

/// Decodes one response stream (caller side).
#[derive(Debug)]
pub struct ResponseStream {
    state: State,
    inactivity: Duration,
    last_activity: Instant,
    messages: u64,
    first_was_ack: Option<bool>,
}

impl ResponseStream {
    /// A stream whose request was published at `now`.
    pub fn new(now: Instant, inactivity: Duration) -> Self {
        ResponseStream {
            state: State::Open,
            inactivity,
            last_activity: now,
            messages: 0,
            first_was_ack: None,
        }
    }

    /// Reads one received message (§6.5, §9.3): headers first, then body.
    pub fn handle(
        &mut self,
        now: Instant,
        msg: Received<'_>,
    ) -> Result<Option<StreamEvent>, StreamViolation> {
        if self.state == State::Ended {
            return Err(StreamViolation::AfterEnd);
        }
        self.last_activity = now;
        self.messages += 1;
        let first = self.messages == 1;

        if msg.is_terminator() {
            self.state = State::Ended;
            self.note_first(first, false);
            return Ok(Some(StreamEvent::End));
        }
        if self.state == State::ErrorSeen {
            return Err(StreamViolation::AfterError);
        }
        // §12: inspect Nats-Service-Error-Code on every message before the body.
        if let Some(headers) = msg.headers {
            let code = headers.get(ERROR_CODE_HEADER);
            let description = headers.get(ERROR_HEADER);
            if code.is_some() || description.is_some() {
                self.state = State::ErrorSeen;
                self.note_first(first, false);
                return Ok(Some(StreamEvent::Error(RemoteError::from_parts(
                    code,
                    description,
                    msg.body,
                ))));
            }
            if msg.body.is_empty() {
                self.note_first(first, false);
                return Err(StreamViolation::HeadersOnEmpty);
            }
        }
        let chunk = Chunk::decode(msg.body);
        self.note_first(first, matches!(chunk, Ok(Chunk::Status(StatusToken::Ack))));
        Ok(match chunk? {
            Chunk::Status(StatusToken::Ack) => Some(StreamEvent::Ack),
            Chunk::Status(StatusToken::Other(s)) => Some(StreamEvent::Status(s)),
            Chunk::Response(data) => Some(StreamEvent::Response(data)),
            Chunk::Query(q) => Some(StreamEvent::Query(q)),
            // §6.6: unknown chunk types are silently ignored.
            Chunk::Unknown { .. } => None,
        })
    }

    fn note_first(&mut self, first: bool, was_ack: bool) {
        if first {
            self.first_was_ack = Some(was_ack);
        }
    }

    /// When the stream expires if nothing arrives (§6.6); `None` once ended.
    pub fn deadline(&self) -> Option<Instant> {
        (self.state != State::Ended).then(|| self.last_activity + self.inactivity)
    }

    /// Ends the stream with [`StreamEvent::TimedOut`] if `now` is past the deadline.
    pub fn handle_timeout(&mut self, now: Instant) -> Option<StreamEvent> {
        let deadline = self.deadline()?;
        if now < deadline {
            return None;
        }
        self.state = State::Ended;
        Some(StreamEvent::TimedOut {
            idle: now.saturating_duration_since(self.last_activity),
        })
    }

    /// Whether the stream is over (terminator or timeout).
    pub fn is_ended(&self) -> bool {
        self.state == State::Ended
    }

    /// Whether an error signal was received.
    pub fn saw_error(&self) -> bool {
        self.state == State::ErrorSeen
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
