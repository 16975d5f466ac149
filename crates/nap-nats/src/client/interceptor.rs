//! A caller-side hook around each prompt: before it is published it may add
//! headers and extra envelope fields (§5.6), and it sees the reply stream's
//! events and how the stream ended.
//!
//! Interceptors run in the order they were added to the
//! [`ClientBuilder`](super::ClientBuilder). The fields and headers they add
//! are opaque to nap; a receiver keeps unknown envelope fields (§5.6) and
//! may read them back. The envelope's own fields (`prompt`, `attachments`)
//! and the `Agent-Sender` header (§13.5) belong to nap and are refused.
//!
//! ```
//! use nap_nats::{Event, OutgoingPrompt, PromptInterceptor, StreamEnd, StreamInfo};
//! use nap_nats::InterceptError;
//!
//! /// Tags every prompt with a trace id and counts the reply's events.
//! #[derive(Default)]
//! struct Tracing(std::sync::atomic::AtomicUsize);
//!
//! #[async_trait::async_trait]
//! impl PromptInterceptor for Tracing {
//!     async fn before_prompt(&self, prompt: &mut OutgoingPrompt<'_>) -> Result<(), InterceptError> {
//!         prompt.insert_header("Trace-Id", "abc123")?;
//!         prompt.insert_field("trace_id", "abc123".into())
//!     }
//!
//!     fn on_event(&self, _stream: &StreamInfo, _event: &Event) {
//!         self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
//!     }
//!
//!     fn on_end(&self, stream: &StreamInfo, end: StreamEnd<'_>) {
//!         println!("{} ended: {end:?}", stream.inbox());
//!     }
//! }
//! ```

use std::sync::Arc;

use async_nats::HeaderMap;
use nap_proto::ENVELOPE_FIELDS;
use nap_proto::Envelope;
use nap_proto::identity::SENDER_HEADER;
use serde_json::{Map, Value};

use super::{AgentHandle, Event};
use crate::Error;

/// Why an interceptor stopped a prompt; nothing was published.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InterceptError {
    /// The header belongs to nap (`Agent-Sender`, §13.5).
    #[error("the {0} header is set by nap, not by an interceptor")]
    ReservedHeader(String),
    /// The header name or value cannot travel in a NATS header.
    #[error("{name:?} is not a valid NATS header name, or its value holds a line break")]
    InvalidHeader {
        /// The header name.
        name: String,
    },
    /// The field is one the envelope defines (§5.1), not an extra (§5.6).
    #[error("the envelope field {0:?} is not an extra field")]
    ReservedField(String),
    /// The interceptor's own failure.
    #[error("prompt interceptor failed: {0}")]
    Failed(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// What the stream is, for the observing hooks: the subject the prompt was
/// published to, the reply inbox (unique per prompt, so it tells prompts
/// apart) and the instance prompted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamInfo {
    subject: String,
    inbox: String,
    instance_id: String,
}

impl StreamInfo {
    pub(crate) fn new(subject: String, inbox: String, instance_id: String) -> Self {
        StreamInfo {
            subject,
            inbox,
            instance_id,
        }
    }

    /// The subject the prompt was published to.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The reply subject of this prompt (§6.1).
    pub fn inbox(&self) -> &str {
        &self.inbox
    }

    /// The prompted instance's service id (§3.4).
    pub fn instance_id(&self) -> &str {
        &self.instance_id
    }
}

/// How a stream ended, as [`PromptInterceptor::on_end`] sees it.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum StreamEnd<'a> {
    /// The terminator arrived: the reply is complete (§6.5).
    Complete,
    /// The stream ended with this error (§9, §6.6, a loss).
    Failed(&'a Error),
    /// The stream was dropped before its end: the prompt was cancelled (§6.7).
    Dropped,
}

/// A prompt about to be published, as an interceptor may change it.
#[derive(Debug)]
pub struct OutgoingPrompt<'a> {
    agent: &'a AgentHandle,
    envelope: &'a mut Envelope,
    headers: &'a mut HeaderMap,
    stream: &'a StreamInfo,
    context: &'a Map<String, Value>,
}

impl<'a> OutgoingPrompt<'a> {
    pub(crate) fn new(
        agent: &'a AgentHandle,
        envelope: &'a mut Envelope,
        headers: &'a mut HeaderMap,
        stream: &'a StreamInfo,
        context: &'a Map<String, Value>,
    ) -> Self {
        OutgoingPrompt {
            agent,
            envelope,
            headers,
            stream,
            context,
        }
    }

    /// The caller-local values the prompt was sent with
    /// ([`PromptOptions::context`](super::PromptOptions::context)); never
    /// sent.
    pub fn context(&self) -> &Map<String, Value> {
        self.context
    }

    /// The agent prompted.
    pub fn agent(&self) -> &AgentHandle {
        self.agent
    }

    /// The envelope as it stands, with the extras added so far.
    pub fn envelope(&self) -> &Envelope {
        self.envelope
    }

    /// Where the prompt goes and where its reply comes back.
    pub fn stream(&self) -> &StreamInfo {
        self.stream
    }

    /// Sets a message header, replacing one of the same name an earlier
    /// interceptor set. The header bytes count toward `max_payload`
    /// (§13.5.1). `Agent-Sender` is refused.
    pub fn insert_header(&mut self, name: &str, value: &str) -> Result<(), InterceptError> {
        if name.eq_ignore_ascii_case(SENDER_HEADER) {
            return Err(InterceptError::ReservedHeader(name.to_owned()));
        }
        if !nap_proto::header_is_valid(name, value) {
            return Err(InterceptError::InvalidHeader {
                name: name.to_owned(),
            });
        }
        self.headers.insert(name, value);
        Ok(())
    }

    /// Sets an extra top-level envelope field (§5.6), replacing one of the
    /// same name. `prompt` and `attachments` are refused.
    pub fn insert_field(&mut self, name: &str, value: Value) -> Result<(), InterceptError> {
        if ENVELOPE_FIELDS.contains(&name) {
            return Err(InterceptError::ReservedField(name.to_owned()));
        }
        self.envelope.extra.insert(name.to_owned(), value);
        Ok(())
    }
}

/// A caller-side hook around every prompt of a [`Client`](super::Client).
///
/// `before_prompt` runs once per prompt, before the local checks (§5.4,
/// §13.9) and before signing (§13.6), so what it adds is signed and
/// counted. An error fails the prompt with [`Error::Intercepted`], and
/// nothing is published. `on_event` sees every event the stream yields,
/// `on_end` how it ended, exactly once per published prompt. The observing
/// hooks run inside the stream's poll: keep them short and never block.
#[async_trait::async_trait]
pub trait PromptInterceptor: Send + Sync + 'static {
    /// Adds headers and extra envelope fields before publication.
    async fn before_prompt(&self, prompt: &mut OutgoingPrompt<'_>) -> Result<(), InterceptError> {
        let _ = prompt;
        Ok(())
    }

    /// One event of the reply stream, as the caller receives it.
    fn on_event(&self, stream: &StreamInfo, event: &Event) {
        let _ = (stream, event);
    }

    /// The end of the reply stream.
    fn on_end(&self, stream: &StreamInfo, end: StreamEnd<'_>) {
        let _ = (stream, end);
    }
}

/// The interceptors of one client, shared by its streams.
pub(crate) type Interceptors = Arc<[Arc<dyn PromptInterceptor>]>;
