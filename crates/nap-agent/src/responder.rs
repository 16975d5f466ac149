//! The responder: how an agent streams chunks back (§6) and asks the caller
//! questions (§7).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use nap_proto::{Attachment, Chunk, Envelope, ResponseData, StatusToken};

use crate::{QueryError, SendError};

/// What a transport provides to carry one response stream.
#[async_trait]
pub trait Transport: Send + Sync {
    /// Publishes one chunk on the reply subject, in order.
    async fn send(&self, chunk: Chunk) -> Result<(), SendError>;

    /// Publishes a query chunk (§7.1) and waits up to `timeout` for the
    /// caller's one reply (§7.2).
    async fn ask(
        &self,
        prompt: String,
        attachments: Vec<Attachment>,
        timeout: Duration,
    ) -> Result<Envelope, QueryError>;
}

/// The handle an agent streams its answer through. Cheap to clone; every
/// clone writes to the same stream.
#[derive(Clone)]
pub struct Responder {
    transport: Arc<dyn Transport>,
}

impl std::fmt::Debug for Responder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Responder").finish_non_exhaustive()
    }
}

impl Responder {
    /// A responder over a transport.
    pub fn new(transport: Arc<dyn Transport>) -> Self {
        Responder { transport }
    }

    /// Streams a piece of response text (§6.3). Call it as often as the text
    /// arrives; callers concatenate the pieces in order.
    pub async fn text(&self, text: impl Into<String>) -> Result<(), SendError> {
        self.transport.send(Chunk::text(text)).await
    }

    /// Sends a response chunk with attachments (§6.3, object form).
    pub async fn response(
        &self,
        text: impl Into<String>,
        attachments: Vec<Attachment>,
    ) -> Result<(), SendError> {
        self.transport
            .send(Chunk::Response(ResponseData::Object {
                text: text.into(),
                attachments,
                extra: Default::default(),
            }))
            .await
    }

    /// Sends a status token (§6.4). The host already sent the leading `ack`.
    pub async fn status(&self, token: impl Into<String>) -> Result<(), SendError> {
        let token: String = token.into();
        self.transport
            .send(Chunk::Status(StatusToken::from(token)))
            .await
    }

    /// Sends any chunk as is.
    pub async fn chunk(&self, chunk: Chunk) -> Result<(), SendError> {
        self.transport.send(chunk).await
    }

    /// Asks the caller a question mid-stream (§7) and waits up to `timeout`
    /// for the answer.
    pub async fn ask(
        &self,
        question: impl Into<String>,
        timeout: Duration,
    ) -> Result<Envelope, QueryError> {
        self.transport
            .ask(question.into(), Vec::new(), timeout)
            .await
    }

    /// Like [`Responder::ask`], with attachments on the question.
    pub async fn ask_with_attachments(
        &self,
        question: impl Into<String>,
        attachments: Vec<Attachment>,
        timeout: Duration,
    ) -> Result<Envelope, QueryError> {
        self.transport
            .ask(question.into(), attachments, timeout)
            .await
    }

    /// A responder that keeps every chunk in memory, for tests and
    /// in-process use. Questions are answered from [`Collected::answer_with`].
    pub fn collector() -> (Responder, Collected) {
        let collected = Collected::default();
        (Responder::new(Arc::new(collected.clone())), collected)
    }
}

/// The chunks a [`Responder::collector`] received.
#[derive(Clone, Default, Debug)]
pub struct Collected {
    inner: Arc<Mutex<CollectedInner>>,
}

#[derive(Default, Debug)]
struct CollectedInner {
    chunks: Vec<Chunk>,
    answers: Vec<Envelope>,
    questions: Vec<String>,
}

impl Collected {
    fn lock(&self) -> std::sync::MutexGuard<'_, CollectedInner> {
        // A poisoned lock only means a panicking test; the data is still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every chunk received, in order.
    pub fn chunks(&self) -> Vec<Chunk> {
        self.lock().chunks.clone()
    }

    /// The concatenated response text (§6.3).
    pub fn text(&self) -> String {
        self.lock()
            .chunks
            .iter()
            .filter_map(|c| match c {
                Chunk::Response(d) => Some(d.text().to_owned()),
                _ => None,
            })
            .collect()
    }

    /// The questions asked so far.
    pub fn questions(&self) -> Vec<String> {
        self.lock().questions.clone()
    }

    /// Queues an answer for the next question.
    pub fn answer_with(&self, answer: Envelope) {
        self.lock().answers.push(answer);
    }
}

#[async_trait]
impl Transport for Collected {
    async fn send(&self, chunk: Chunk) -> Result<(), SendError> {
        self.lock().chunks.push(chunk);
        Ok(())
    }

    async fn ask(
        &self,
        prompt: String,
        _attachments: Vec<Attachment>,
        timeout: Duration,
    ) -> Result<Envelope, QueryError> {
        let mut inner = self.lock();
        inner.questions.push(prompt);
        if inner.answers.is_empty() {
            Err(QueryError::TimedOut { timeout })
        } else {
            Ok(inner.answers.remove(0))
        }
    }
}
