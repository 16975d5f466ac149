//! One response stream on a reply subject: chunks in order, nothing after
//! the terminator (§6.5), queries with their own reply inbox (§7).

use std::sync::Arc;
use std::time::Duration;

use async_nats::Client;
use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use nap_agent::{QueryError, SendError, Transport};
use nap_proto::{Attachment, Chunk, Envelope, Query, ServiceError};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::wire::error_headers;

struct State {
    closed: bool,
    last_sent: Instant,
}

/// Publishes one stream's chunks to its reply subject.
pub(crate) struct ReplyStream {
    client: Client,
    reply: async_nats::Subject,
    // One lock orders every publish of this stream and guards `closed`, so a
    // chunk from a lingering responder clone can never follow the terminator.
    state: Mutex<State>,
}

impl ReplyStream {
    pub(crate) fn new(client: Client, reply: async_nats::Subject) -> Arc<Self> {
        Arc::new(ReplyStream {
            client,
            reply,
            state: Mutex::new(State {
                closed: false,
                last_sent: Instant::now(),
            }),
        })
    }

    /// When the last message went out.
    pub(crate) async fn last_sent(&self) -> Instant {
        self.state.lock().await.last_sent
    }

    async fn publish(&self, payload: Bytes) -> Result<(), SendError> {
        let mut state = self.state.lock().await;
        if state.closed {
            return Err(SendError::Closed);
        }
        self.client
            .publish(self.reply.clone(), payload)
            .await
            .map_err(|e| SendError::Transport {
                reason: e.to_string(),
            })?;
        state.last_sent = Instant::now();
        Ok(())
    }

    /// Ends the stream: the optional error signal (§9.3), then the
    /// zero-byte, header-less terminator (§6.5). Later sends fail.
    pub(crate) async fn finish(&self, error: Option<&ServiceError>) {
        let mut state = self.state.lock().await;
        if state.closed {
            return;
        }
        state.closed = true;
        if let Some(error) = error {
            let sent = self
                .client
                .publish_with_headers(
                    self.reply.clone(),
                    error_headers(error),
                    Bytes::from(error.body_bytes()),
                )
                .await;
            if let Err(e) = sent {
                tracing::warn!(reply = %self.reply, error = %e, "could not publish the error signal");
            }
        }
        // §6.5: zero bytes, no headers.
        if let Err(e) = self.client.publish(self.reply.clone(), Bytes::new()).await {
            tracing::warn!(reply = %self.reply, error = %e, "could not publish the terminator");
        }
    }
}

#[async_trait]
impl Transport for ReplyStream {
    async fn send(&self, chunk: Chunk) -> Result<(), SendError> {
        self.publish(Bytes::from(chunk.encode())).await
    }

    async fn ask(
        &self,
        prompt: String,
        attachments: Vec<Attachment>,
        timeout: Duration,
    ) -> Result<Envelope, QueryError> {
        // §7.1: a fresh reply subject per query, subscribed before the query is sent.
        let reply_subject = self.client.new_inbox();
        let mut answers = self
            .client
            .subscribe(reply_subject.clone())
            .await
            .map_err(|e| SendError::Transport {
                reason: e.to_string(),
            })?;
        let query = Chunk::Query(Query {
            id: nuid::next().to_string(),
            reply_subject,
            prompt,
            attachments,
            extra: Default::default(),
        });
        self.send(query).await?;
        // §7.2: exactly one reply, plain text or an envelope.
        let answer = tokio::time::timeout(timeout, answers.next()).await;
        let _ = answers.unsubscribe().await;
        match answer {
            Ok(Some(msg)) => Envelope::decode(&msg.payload).map_err(|e| QueryError::BadReply {
                reason: e.to_string(),
            }),
            Ok(None) => Err(QueryError::Send(SendError::Closed)),
            Err(_) => Err(QueryError::TimedOut { timeout }),
        }
    }
}
