//! Mid-stream queries (§7): the agent asks, the caller answers once.

use nap_proto::PromptLimits;
use nap_proto::{Attachment, ByteSize, Query};

use super::IntoEnvelope;
use crate::{Error, Result};

/// A question the agent asked mid-stream (§7.1), waiting for its one answer.
///
/// [`answer`](Self::answer) consumes the query, so it can be answered at
/// most once (§7.2). Dropping it unanswered leaves the agent to its own
/// timeout (§7.3).
#[derive(Debug)]
pub struct PendingQuery {
    nats: async_nats::Client,
    query: Query,
}

impl PendingQuery {
    pub(crate) fn new(nats: async_nats::Client, query: Query) -> Self {
        PendingQuery { nats, query }
    }

    /// The opaque correlation id (§7.1).
    pub fn id(&self) -> &str {
        &self.query.id
    }

    /// The question text (§7.1).
    pub fn prompt(&self) -> &str {
        &self.query.prompt
    }

    /// Attachments sent with the question (§7.1).
    pub fn attachments(&self) -> &[Attachment] {
        &self.query.attachments
    }

    /// Where the answer goes (§7.2).
    pub fn reply_subject(&self) -> &str {
        &self.query.reply_subject
    }

    /// The whole query chunk, unknown fields included.
    pub fn query(&self) -> &Query {
        &self.query
    }

    /// Publishes the one answer to the query's reply subject (§7.2).
    ///
    /// The answer follows §5.1: text goes out as the plain-text shorthand
    /// when that reads back the same (§5.3), anything else as a JSON
    /// envelope. An empty answer or one larger than the server's
    /// `max_payload` is [`Error::Refused`] and nothing is published.
    pub async fn answer(self, answer: impl IntoEnvelope) -> Result<()> {
        let envelope = answer.into_envelope();
        // §7.2 → §5.1: the answer is an envelope; check it like a request,
        // against the only limit known for a reply subject, the server's.
        let server_max = self.nats.server_info().max_payload as u64;
        let limits = PromptLimits {
            max_payload: if server_max > 0 {
                ByteSize::new(server_max)
            } else {
                PromptLimits::DEFAULT.max_payload
            },
            attachments_ok: true,
        };
        nap_proto::prepare_request(&envelope, limits, None, 0)?;
        let payload = envelope.encode_shortest();
        let subject = self.query.reply_subject;
        tracing::debug!(id = %self.query.id, %subject, "answering query");
        self.nats
            .publish(subject.clone(), payload.into())
            .await
            .map_err(|source| Error::Publish { subject, source })
    }
}
