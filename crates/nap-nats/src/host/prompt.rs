//! Serving the `prompt` endpoint: read each request with the sans-IO
//! [`AgentStream`] (§5.3, §5.4, §6.4), refuse at once what cannot be served
//! (`400`, `401`/`403` on identity grounds, §13.7, `429`), and run the
//! request interceptors and the agent for the rest, with keep-alives, until
//! the error signal (§9.3) and the terminator (§6.5).
//!
//! No request is ever dropped unanswered. The NATS client drops messages
//! of a subscription that is not read fast enough (a slow consumer), so
//! the loop reading the endpoint never waits: an accepted request becomes
//! a task at once, and a refusal (`400`, `429`: three publishes) goes to a
//! second task through a queue bounded in bytes. When a burst outgrows
//! that queue, the reader publishes refusals itself.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::{FutureExt, StreamExt};
use nap_agent::{Agent, AgentError, Instance, Request, Responder, Transport};
use nap_proto::identity::SenderRejection;
use nap_proto::{AgentStream, PromptLimits, ServiceError};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::admission::{Admission, header_pairs};
use super::intercept::{Decision, RequestInterceptor, TurnOutcome, amend};
use super::transport::{Completion, ReplyStream};
use crate::client::{now, sleep_until};

pub(super) struct PromptLoop {
    pub(super) client: async_nats::Client,
    pub(super) agent: Arc<dyn Agent>,
    pub(super) instance: Arc<Instance>,
    pub(super) limits: PromptLimits,
    pub(super) keepalive: Option<Duration>,
    pub(super) permits: Arc<Semaphore>,
    /// Cancelled when the instance stops: requests still arriving are
    /// refused with `429` until the endpoint's subscription is closed.
    pub(super) stopping: CancellationToken,
    /// Cancelled when the shutdown timeout passes: prompts still running
    /// end with a `500` (and the terminator) instead of being cut off.
    pub(super) abandon: CancellationToken,
    pub(super) tracker: TaskTracker,
    /// The identity gate (§13.7, §13.9, §13.7.3), shared with `status`.
    pub(super) admission: Arc<Admission>,
    /// Run around every admitted prompt, in order.
    pub(super) interceptors: Arc<[Arc<dyn RequestInterceptor>]>,
}

/// The queue of refused requests (`400`, `429`: three publishes each)
/// waiting for the task that publishes them, bounded in bytes: past the
/// bound, whoever reads requests publishes its refusals itself.
pub(super) struct Refusals {
    tx: tokio::sync::mpsc::UnboundedSender<Arc<ReplyStream>>,
    backlog: Arc<AtomicU64>,
    limit: u64,
}

impl Refusals {
    /// Starts the publishing task; it ends once every handle to the queue
    /// is dropped and the refusals still queued are out.
    pub(super) fn start(limit: u64) -> (Refusals, tokio::task::JoinHandle<()>) {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Arc<ReplyStream>>();
        let backlog = Arc::new(AtomicU64::new(0));
        let task = {
            let backlog = backlog.clone();
            tokio::spawn(async move {
                while let Some(stream) = rx.recv().await {
                    backlog.fetch_sub(stream.request_size(), Ordering::Relaxed);
                    if let Err(e) = stream.flush().await {
                        tracing::debug!(error = %e, "refusal not published");
                    }
                }
            })
        };
        (Refusals { tx, backlog, limit }, task)
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

impl PromptLoop {
    /// Serves requests until the endpoint's subscription ends (after the
    /// service is stopped, every request already delivered is answered).
    ///
    /// The reader never waits: an accepted request becomes a task at once;
    /// a refusal is queued for a second task, in a queue bounded by
    /// `backlog_limit` bytes, past which the reader publishes the refusal
    /// itself.
    pub(super) async fn run(
        self: Arc<Self>,
        mut endpoint: async_nats::service::endpoint::Endpoint,
        backlog_limit: u64,
    ) {
        let this = self;
        let (refusals, refusing) = Refusals::start(backlog_limit);
        while let Some(request) = endpoint.next().await {
            this.handle(Completion::Service(request), &refusals).await;
        }
        // Dropping the queue lets the refusals still queued go out.
        drop(refusals);
        let _ = refusing.await;
        tracing::debug!("prompt endpoint closed");
    }

    /// Starts serving one request, or queues its refusal; waits only when
    /// the refusal queue is full.
    pub(super) async fn handle(self: &Arc<Self>, request: Completion, refusals: &Refusals) {
        if let Some(refused) = self.accept(request) {
            refusals.push(refused).await;
        }
    }

    /// Reads one request (§5.3, §5.4, §6.4) and starts serving it, or
    /// returns the stream of a refused request (ack, error and terminator
    /// queued) for the caller to publish. Never waits.
    ///
    /// The order of the checks: the `ack` (§6.4: first, rejections
    /// included); the sender (§13.7: `400` for a malformed header, `401`
    /// for a failing signature, or when the endpoint requires `signed`,
    /// §13.9, and `403`/`401` when the acceptance hook refuses, §13.7.3);
    /// the envelope (§5.3, §5.4: `400`); then capacity (`429`).
    fn accept(self: &Arc<Self>, service_request: Completion) -> Option<Arc<ReplyStream>> {
        let message = service_request.message();
        let Some(reply) = message.reply.clone() else {
            tracing::debug!(subject = %message.subject, "prompt without a reply subject ignored");
            return None;
        };
        let at = now();
        let mut machine = AgentStream::new(at, self.keepalive);
        let subject = message.subject.to_string();
        let headers = header_pairs(message.headers.as_ref());
        // §6.4: the ack first, before a rejection too.
        machine.open(at);
        let accepted = match self
            .admission
            .admit_prompt(&subject, &headers, &message.payload)
        {
            Err(rejection) => {
                match &rejection {
                    SenderRejection::Failed(_) => {
                        tracing::warn!(%rejection, %subject, "prompt refused: Agent-Sender verification failed")
                    }
                    _ => {
                        tracing::debug!(%rejection, %subject, "prompt refused on identity grounds")
                    }
                }
                machine.finish(at, Some(rejection.to_service_error()));
                None
            }
            // §5.3, §5.4: the machine queues 400 for a bad request.
            Ok(sender) => match machine.handle_request(at, &message.payload, self.limits) {
                Err(e) => {
                    tracing::debug!(error = %e, "prompt rejected");
                    None
                }
                Ok(envelope) => Some((sender, envelope)),
            },
        };
        let permit = match &accepted {
            None => None,
            Some(_) if self.stopping.is_cancelled() => {
                machine.finish(at, Some(ServiceError::stopping()));
                None
            }
            Some(_) => match self.permits.clone().try_acquire_owned() {
                Ok(permit) => Some(permit),
                Err(_) => {
                    machine.finish(at, Some(ServiceError::busy()));
                    None
                }
            },
        };
        let (Some((sender, envelope)), Some(permit)) = (accepted, permit) else {
            tracing::info!(
                target: SERVED,
                %subject,
                instance = %self.instance.instance_id,
                code = machine.error().map_or(0, |c| c.as_u16()),
                bytes_in = message.payload.len(),
                "prompt refused"
            );
            return Some(ReplyStream::new(
                self.client.clone(),
                service_request,
                reply,
                machine,
            ));
        };
        let stream = ReplyStream::new(self.client.clone(), service_request, reply, machine);
        let request = Request {
            envelope,
            instance: self.instance.clone(),
            subject,
            headers,
            sender,
        };
        let this = self.clone();
        self.tracker
            .spawn(async move { this.serve(request, stream, permit, at).await });
        None
    }

    async fn serve(
        &self,
        request: Request,
        stream: Arc<ReplyStream>,
        _permit: OwnedSemaphorePermit,
        accepted_at: Instant,
    ) {
        // §6.4: the ack before any work.
        if let Err(e) = stream.flush().await {
            tracing::debug!(error = %e, "ack not published");
        }
        // For the one log line per served prompt.
        let subject = request.subject.clone();
        let sender = request.sender().to_string();
        // The trace the request carries continues in the turn.
        let headers = request.headers.clone();
        let responder = Responder::new(stream.clone() as Arc<dyn Transport>);
        let agent = self.agent.clone();
        let interceptors = &self.interceptors[..];
        // What the interceptors' `after` hooks see, and how many `before`
        // hooks ran; both outlive the turn's future.
        let mut seen: Option<Request> = None;
        let mut ran = 0usize;
        // The turn's future lives in this block only: when it is abandoned
        // it is dropped here, releasing the stream if the agent was
        // suspended in the middle of a send, before the stream is finished
        // below.
        let outcome = {
            let seen = &mut seen;
            let ran = &mut ran;
            let work = async move {
                let mut request = request;
                for interceptor in interceptors {
                    *ran += 1;
                    match AssertUnwindSafe(interceptor.before(&request))
                        .catch_unwind()
                        .await
                    {
                        Ok(Decision::Pass) => {}
                        Ok(Decision::Amend(fields)) => amend(&mut request, fields),
                        Ok(Decision::Refuse(error)) => {
                            *seen = Some(request);
                            return Turn::Refused(error);
                        }
                        Err(panic) => {
                            tracing::error!(panic = %panic_text(&*panic), "request interceptor panicked");
                            *seen = Some(request);
                            return Turn::Refused(ServiceError::agent_failed());
                        }
                    }
                }
                if !interceptors.is_empty() {
                    *seen = Some(request.clone());
                }
                match AssertUnwindSafe(agent.prompt(request, responder))
                    .catch_unwind()
                    .await
                {
                    Ok(result) => Turn::Answered(result),
                    Err(panic) => Turn::Panicked(panic_text(&*panic)),
                }
            };
            let work = crate::trace::in_turn(&headers, &subject, &self.instance.instance_id, work);
            tokio::pin!(work);
            loop {
                let due = stream.keepalive_due();
                tokio::select! {
                    // The agent first: one that answers at once never arms a timer.
                    biased;
                    outcome = &mut work => break Some(outcome),
                    () = self.abandon.cancelled() => break None,
                    () = keepalive(due) => stream.tick().await,
                }
            }
        };
        let agent_ran = !matches!(outcome, Some(Turn::Refused(_)));
        let error = match outcome {
            Some(Turn::Answered(Ok(()))) => None,
            Some(Turn::Answered(Err(e))) => Some(e.service_error().clone()),
            Some(Turn::Refused(error)) => {
                tracing::debug!(
                    code = error.code.as_u16(),
                    "prompt refused by an interceptor"
                );
                Some(error)
            }
            Some(Turn::Panicked(what)) => {
                tracing::error!(panic = %what, "agent panicked");
                Some(ServiceError::agent_failed())
            }
            None => {
                tracing::warn!("shutdown timeout: ending a prompt still running with 500");
                Some(ServiceError::shut_down())
            }
        };
        if let Some(request) = &seen {
            let outcome = TurnOutcome {
                error: error.clone(),
                agent_ran,
                elapsed: now().saturating_duration_since(accepted_at),
            };
            for interceptor in interceptors[..ran].iter().rev() {
                if let Err(panic) = AssertUnwindSafe(interceptor.after(request, &outcome))
                    .catch_unwind()
                    .await
                {
                    tracing::error!(panic = %panic_text(&*panic), "request interceptor panicked after the turn");
                }
            }
        }
        let code = stream.finish(error).await;
        tracing::info!(
            target: SERVED,
            %subject,
            instance = %self.instance.instance_id,
            %sender,
            code,
            duration_ms = now().saturating_duration_since(accepted_at).as_millis() as u64,
            bytes_in = stream.request_size(),
            bytes_out = stream.bytes_out(),
            "prompt served"
        );
    }
}

/// The `tracing` target of the one line logged per prompt, served or
/// refused: filter on it (`RUST_LOG=nap::prompt=info`) for an access log.
pub const SERVED: &str = "nap::prompt";

/// How the interceptors and the agent ended a turn.
enum Turn {
    /// The agent returned.
    Answered(Result<(), AgentError>),
    /// An interceptor refused the request before the agent saw it.
    Refused(ServiceError),
    /// The agent panicked, with this message.
    Panicked(String),
}

/// The message of a caught panic.
fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned())
}

/// Sleeps until the keep-alive is due, or forever without one.
async fn keepalive(due: Option<std::time::Instant>) {
    match due {
        Some(due) => sleep_until(due).await,
        None => std::future::pending().await,
    }
}
