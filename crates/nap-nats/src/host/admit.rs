//! Admitting prompts: each request of the `prompt` endpoint goes through
//! [`AgentStream::handle_arrival`], which decides (§6.4 ack first, then
//! §13.7 sender, §5.3/§5.4 envelope, shutdown, capacity); this file only
//! gathers its inputs and carries out the decision: a task for a served
//! prompt ([`super::turn`]), a queued refusal otherwise.
//!
//! No request is ever dropped unanswered. The NATS client drops messages
//! of a subscription that is not read fast enough (a slow consumer), so
//! the reader never waits: an admitted request becomes a task at once, and
//! a refusal (three publishes) goes to a task of the host through a queue
//! bounded in bytes. When a burst outgrows that queue, the reader publishes
//! refusals itself.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::Message;
use nap_agent::{Agent, Instance, Request};
use nap_proto::identity::SenderRejection;
use nap_proto::micro::EndpointCounters;
use nap_proto::{Admission, AgentStream, Arrival, PromptLimits, Refusal};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::gate::{SenderGate, header_pairs};
use super::intercept::RequestInterceptor;
use super::reply::ReplyStream;
use super::turn::PROMPT_LOG_TARGET;
use crate::client::now;

/// Everything one agent's `prompt` endpoint needs to admit and serve.
pub(super) struct Prompts {
    pub(super) client: async_nats::Client,
    pub(super) agent: Arc<dyn Agent>,
    pub(super) instance: Arc<Instance>,
    pub(super) limits: PromptLimits,
    pub(super) keepalive: Option<Duration>,
    /// One per prompt being served (§ capacity, `429` when none is left).
    pub(super) permits: Arc<Semaphore>,
    /// Cancelled when the instance stops: requests still arriving are
    /// refused with `429` until the endpoint's subscription is closed.
    pub(super) stopping: CancellationToken,
    /// Cancelled when the shutdown timeout passes: prompts still running
    /// end with a `500` (and the terminator) instead of being cut off.
    pub(super) abandon: CancellationToken,
    pub(super) tracker: TaskTracker,
    /// The identity gate (§13.7, §13.9, §13.7.3), shared with `status`.
    pub(super) gate: Arc<SenderGate>,
    /// Run around every admitted prompt, in order.
    pub(super) interceptors: Arc<[Arc<dyn RequestInterceptor>]>,
    /// The `prompt` endpoint's `$SRV.STATS` counters.
    pub(super) counters: Arc<Mutex<EndpointCounters>>,
}

impl Prompts {
    /// Reads one request and starts serving it, or returns the stream of
    /// a refused request (ack, error and terminator queued) for the caller
    /// to publish. Never waits.
    pub(super) fn accept(self: &Arc<Self>, message: Message) -> Option<Arc<ReplyStream>> {
        let Some(reply) = message.reply.clone() else {
            tracing::debug!(subject = %message.subject, "prompt without a reply subject ignored");
            return None;
        };
        let at = now();
        let subject = message.subject.to_string();
        let headers = header_pairs(message.headers.as_ref());
        let mut machine = AgentStream::new(at, self.keepalive);
        let decision = machine.handle_arrival(
            at,
            Arrival {
                payload: &message.payload,
                limits: self.limits,
                sender: self.gate.admit_prompt(&subject, &headers, &message.payload),
                stopping: self.stopping.is_cancelled(),
                reserve: || self.permits.clone().try_acquire_owned().ok(),
            },
        );
        let size = message.length as u64;
        let stream = ReplyStream::new(
            self.client.clone(),
            reply,
            size,
            at,
            self.counters.clone(),
            machine,
        );
        match decision {
            Admission::Refused(refusal) => {
                self.log_refusal(&refusal, &subject, size);
                Some(stream)
            }
            Admission::Serve {
                sender,
                envelope,
                place,
            } => {
                let request = Request {
                    envelope,
                    instance: self.instance.clone(),
                    subject,
                    headers,
                    sender,
                };
                let this = self.clone();
                self.tracker.spawn(async move {
                    super::turn::serve(&this, request, stream, place, at).await;
                });
                None
            }
        }
    }

    /// The one log line of a refused prompt, and a warning for a failing
    /// signature (§13.7: a forgery or a replay is worth an operator's eye).
    fn log_refusal(&self, refusal: &Refusal, subject: &str, bytes_in: u64) {
        match refusal {
            Refusal::Sender(SenderRejection::Failed(_)) => {
                tracing::warn!(%refusal, %subject, "prompt refused: Agent-Sender verification failed")
            }
            _ => tracing::debug!(%refusal, %subject, "prompt refused"),
        }
        tracing::info!(
            target: PROMPT_LOG_TARGET,
            %subject,
            instance = %self.instance.instance_id,
            code = refusal.service_error().code.as_u16(),
            bytes_in,
            "prompt refused"
        );
    }
}

/// The queue of refused requests (`400`, `401`, `403`, `429`: three
/// publishes each) waiting for the host's task that publishes them,
/// bounded in bytes: past the bound, whoever reads requests publishes its
/// refusals itself.
pub(super) struct Refusals {
    tx: mpsc::UnboundedSender<Arc<ReplyStream>>,
    backlog: Arc<AtomicU64>,
    limit: u64,
}

impl Refusals {
    /// Starts the publishing task; it ends once every handle to the queue
    /// is dropped and the refusals still queued are out.
    pub(super) fn start(limit: u64) -> Refusals {
        let (tx, mut rx) = mpsc::unbounded_channel::<Arc<ReplyStream>>();
        let backlog = Arc::new(AtomicU64::new(0));
        let draining = backlog.clone();
        tokio::spawn(async move {
            while let Some(stream) = rx.recv().await {
                draining.fetch_sub(stream.request_size(), Ordering::Relaxed);
                if let Err(e) = stream.flush().await {
                    tracing::debug!(error = %e, "refusal not published");
                }
            }
        });
        Refusals { tx, backlog, limit }
    }

    /// Queues a refusal, or publishes it here when the queue is full.
    pub(super) async fn push(&self, refused: Arc<ReplyStream>) {
        let size = refused.request_size();
        if self.backlog.load(Ordering::Relaxed) + size > self.limit {
            tracing::warn!(limit = self.limit, "refusal backlog full: refusing inline");
            let _ = refused.flush().await;
            return;
        }
        self.backlog.fetch_add(size, Ordering::Relaxed);
        if let Err(unsent) = self.tx.send(refused) {
            let _ = unsent.0.flush().await;
        }
    }
}
