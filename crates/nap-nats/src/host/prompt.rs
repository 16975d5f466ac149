//! Serving the `prompt` endpoint: validate (§5.3, §5.4), ack (§6.4), run
//! the agent, keep alive, then error signal (§9.3) and terminator (§6.5).

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use async_nats::service::Request as ServiceRequest;
use bytes::Bytes;
use futures::{FutureExt, StreamExt};
use nap_agent::{Agent, Instance, Request, Responder, Transport};
use nap_proto::{Chunk, PromptLimits, ServiceError, StatusCode, request};
use tokio::sync::{Semaphore, watch};

use super::stopped;
use super::transport::ReplyStream;

pub(super) struct PromptLoop {
    pub(super) client: async_nats::Client,
    pub(super) agent: Arc<dyn Agent>,
    pub(super) instance: Arc<Instance>,
    pub(super) limits: PromptLimits,
    pub(super) keepalive: Option<Duration>,
    pub(super) permits: Arc<Semaphore>,
    /// Closed when the [`super::RunningAgent`] is dropped: prompts still
    /// running are abandoned then, as if the process had gone.
    pub(super) dropped: watch::Receiver<()>,
}

impl PromptLoop {
    pub(super) async fn run(
        self,
        mut endpoint: async_nats::service::endpoint::Endpoint,
        stop: watch::Receiver<bool>,
    ) {
        let this = Arc::new(self);
        let requests = (&mut endpoint).take_until(stopped(stop));
        tokio::pin!(requests);
        while let Some(request) = requests.next().await {
            this.accept(request).await;
        }
        // Stop accepting: later requests go to other instances (§3.4).
        let _ = endpoint.stop().await;
    }

    async fn accept(self: &Arc<Self>, service_request: ServiceRequest) {
        let Some(reply) = service_request.message.reply.clone() else {
            tracing::debug!(subject = %service_request.message.subject, "prompt without a reply subject ignored");
            return;
        };
        let stream = ReplyStream::new(self.client.clone(), reply);
        // §6.4: the ack is the first message of every stream, before any
        // work, rejections included ("confirms the request was received").
        if let Err(e) = service_request.respond(Ok(Bytes::from_static(ACK))).await {
            tracing::debug!(error = %e, "ack not published; caller gone");
        }
        // §5.3, §5.4: malformed, oversize, or unwanted attachments → 400.
        let envelope = match request::accept(&service_request.message.payload, self.limits) {
            Ok(envelope) => envelope,
            Err(e) => {
                tracing::debug!(error = %e, "prompt rejected");
                stream.finish(Some(&e.to_service_error())).await;
                return;
            }
        };
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            let busy = ServiceError::new(
                StatusCode::TooManyRequests,
                "too many concurrent prompts for this agent instance",
            );
            stream.finish(Some(&busy)).await;
            return;
        };
        let headers = service_request
            .message
            .headers
            .as_ref()
            .map(|h| {
                h.iter()
                    .flat_map(|(k, vs)| vs.iter().map(move |v| (k.to_string(), v.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        let request = Request {
            envelope,
            instance: self.instance.clone(),
            subject: service_request.message.subject.to_string(),
            headers,
        };
        let this = self.clone();
        let mut dropped = self.dropped.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = this.run_agent(request, stream) => {}
                _ = dropped.changed() => tracing::debug!("prompt abandoned: the agent was dropped"),
            }
            drop(permit);
        });
    }

    async fn run_agent(&self, request: Request, stream: Arc<ReplyStream>) {
        let responder = Responder::new(stream.clone() as Arc<dyn Transport>);
        let agent = self.agent.clone();
        let work =
            AssertUnwindSafe(async move { agent.prompt(request, responder).await }).catch_unwind();
        tokio::pin!(work);
        let outcome = match self.keepalive {
            None => work.await,
            Some(every) => loop {
                let due = stream.last_sent().await + every;
                tokio::select! {
                    outcome = &mut work => break outcome,
                    _ = tokio::time::sleep_until(due) => {
                        // Keep-alive: an ack after `every` of silence (§6.4, §6.6).
                        if stream.last_sent().await + every <= tokio::time::Instant::now() {
                            let _ = stream.send(Chunk::ACK).await;
                        }
                    }
                }
            },
        };
        let error = match outcome {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e.service_error().clone()),
            Err(panic) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".to_owned());
                tracing::error!(panic = %what, "agent panicked");
                Some(ServiceError::new(
                    StatusCode::Internal,
                    "the agent failed while answering",
                ))
            }
        };
        stream.finish(error.as_ref()).await;
    }
}

const ACK: &[u8] = br#"{"type":"status","data":"ack"}"#;
