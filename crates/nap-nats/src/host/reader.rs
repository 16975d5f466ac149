//! One agent's reader: its `prompt` and `status` subscriptions, read
//! without ever waiting on the work they start, until the agent stops.
//!
//! On stop the subscriptions are drained: the server is told to send no
//! more, and what it sent before is still read and refused with `429`, so
//! no request delivered to this instance goes unanswered. A drain ends
//! when the server confirms it; with the connection down (or the server
//! silent for [`DRAIN_BOUND`]) it ends with what the client already holds,
//! so a stop never waits for a server that is gone.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::{Message, Subscriber};
use futures::{FutureExt, StreamExt};
use nap_proto::micro::EndpointCounters;
use tokio_util::sync::CancellationToken;

use super::admit::Prompts;
use super::core::Shared;
use super::status::StatusResponder;

/// The longest a stopping reader waits for the server to confirm a drain.
pub(super) const DRAIN_BOUND: Duration = Duration::from_secs(2);

/// What one agent's reader needs.
pub(super) struct Reader {
    pub(super) shared: Arc<Shared>,
    pub(super) prompts: Arc<Prompts>,
    pub(super) status: Arc<StatusResponder>,
    pub(super) status_counters: Arc<Mutex<EndpointCounters>>,
    pub(super) stopping: CancellationToken,
}

/// Reads until the agent stops, then drains both subscriptions.
pub(super) async fn read(reader: Reader, mut prompts: Subscriber, mut statuses: Subscriber) {
    let (mut prompts_open, mut statuses_open) = (true, true);
    while prompts_open || statuses_open {
        tokio::select! {
            () = reader.stopping.cancelled() => break,
            message = prompts.next(), if prompts_open => match message {
                Some(message) => reader.prompt(message).await,
                None => prompts_open = false,
            },
            message = statuses.next(), if statuses_open => match message {
                Some(message) => reader.status(message).await,
                None => statuses_open = false,
            },
        }
    }
    if prompts_open {
        reader.drain(&mut prompts, true).await;
    }
    if statuses_open {
        reader.drain(&mut statuses, false).await;
    }
    tracing::debug!("agent endpoints closed");
}

impl Reader {
    /// Admits one prompt; only a full refusal queue makes this wait.
    async fn prompt(&self, message: Message) {
        if let Some(refused) = self.prompts.accept(message) {
            self.shared.refusals.push(refused).await;
        }
    }

    /// Answers one `status` request (§8.7); best effort (§8.7.1).
    async fn status(&self, message: Message) {
        let arrived = Instant::now();
        let Some(reply) = message.reply.clone() else {
            return;
        };
        let nats = &self.shared.nats;
        let (sent, error) = match self.status.reply(&message) {
            // The heartbeat-shaped body is the whole reply.
            Ok(body) => (nats.publish(reply, body).await, None),
            Err(error) => {
                let headers = crate::wire::error_headers(&error);
                let sent = nats
                    .publish_with_headers(reply, headers, bytes::Bytes::new())
                    .await;
                (sent, Some(error))
            }
        };
        let error = error.map(|e| (e.code.as_u16(), e.headers()[1].1.clone()));
        self.status_counters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .record(
                arrived.elapsed(),
                error.as_ref().map(|(code, text)| (*code, text.as_str())),
            );
        if let Err(e) = sent {
            tracing::debug!(error = %e, "status reply not delivered");
        }
    }

    /// Stops the subscription's deliveries and answers what was delivered
    /// before (prompts are refused with `429`: the instance is stopping).
    async fn drain(&self, subscription: &mut Subscriber, prompts: bool) {
        let until = tokio::time::Instant::now() + DRAIN_BOUND;
        let confirmable = crate::wire::connected(&self.shared.nats)
            && matches!(
                tokio::time::timeout_at(until, subscription.drain()).await,
                Ok(Ok(()))
            );
        loop {
            let next = if confirmable {
                tokio::select! {
                    next = subscription.next() => next,
                    () = tokio::time::sleep_until(until) => subscription.next().now_or_never().flatten(),
                }
            } else {
                subscription.next().now_or_never().flatten()
            };
            let Some(message) = next else { break };
            if prompts {
                self.prompt(message).await;
            } else {
                self.status(message).await;
            }
        }
    }
}
