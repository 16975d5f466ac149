//! Serving one admitted prompt: the request interceptors, then the agent,
//! with keep-alives while it works (§6.4, §6.6), until the turn ends; the
//! stream's end is the core's mapping of how it ended
//! ([`AgentStream::end_turn`](nap_proto::AgentStream::end_turn)).

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;

use futures::FutureExt;
use nap_agent::{Request, Responder, Transport};
use nap_proto::{ServiceError, TurnEnd};
use tokio::sync::OwnedSemaphorePermit;

use super::admit::Prompts;
use super::intercept::{Decision, RequestInterceptor, TurnOutcome, amend};
use super::reply::ReplyStream;
use crate::client::{now, sleep_until};

/// The `tracing` target of the one line logged per prompt, served or
/// refused: filter on it (`RUST_LOG=nap::prompt=info`) for an access log.
/// A served prompt's line carries the `trace_id` of its turn (and its
/// `span_id` when spans are exported).
pub const PROMPT_LOG_TARGET: &str = "nap::prompt";

/// Serves one admitted request on `stream`, holding `_place` (one of the
/// instance's `max_concurrent`) until the terminator is out.
pub(super) async fn serve(
    prompts: &Prompts,
    request: Request,
    stream: Arc<ReplyStream>,
    _place: OwnedSemaphorePermit,
    accepted_at: Instant,
) {
    // §6.4: the ack before any work.
    if let Err(e) = stream.flush().await {
        tracing::debug!(error = %e, "ack not published");
    }
    let subject = request.subject.clone();
    let sender = request.sender().to_string();
    let headers = request.headers.clone();
    let mut turn = Turn {
        interceptors: &prompts.interceptors,
        seen: None,
        ran: 0,
    };
    let context = crate::trace::TurnContext::new(&headers, &subject, &prompts.instance.instance_id);
    let trace = context.ids();
    let end = {
        let work = context.run(turn.run(prompts, request, stream.clone()));
        with_keepalive(prompts, &stream, work).await
    };
    log_end(&end);
    turn.after(&end, accepted_at).await;
    let code = stream.end(end).await;
    tracing::info!(
        target: PROMPT_LOG_TARGET,
        %subject,
        instance = %prompts.instance.instance_id,
        %sender,
        code,
        duration_ms = now().saturating_duration_since(accepted_at).as_millis() as u64,
        bytes_in = stream.request_size(),
        bytes_out = stream.bytes_out(),
        trace_id = trace.trace_id.as_deref(),
        span_id = trace.span_id.as_deref(),
        "prompt served"
    );
}

/// Drives the turn's future, publishing keep-alives while it is silent,
/// until it ends or the instance abandons it at shutdown. The future is
/// dropped here, releasing the stream if the agent was suspended in the
/// middle of a send, before the stream is ended.
async fn with_keepalive(
    prompts: &Prompts,
    stream: &ReplyStream,
    work: impl Future<Output = TurnEnd>,
) -> TurnEnd {
    tokio::pin!(work);
    loop {
        let due = stream.keepalive_due();
        tokio::select! {
            // The agent first: one that answers at once never arms a timer.
            biased;
            ended = &mut work => return ended,
            () = prompts.abandon.cancelled() => return TurnEnd::Abandoned,
            () = keepalive(due) => stream.tick().await,
        }
    }
}

/// The interceptors of one turn, and what their `after` hooks need.
struct Turn<'a> {
    interceptors: &'a [Arc<dyn RequestInterceptor>],
    /// The request as the interceptors last saw it (kept only when there
    /// are interceptors).
    seen: Option<Request>,
    /// How many `before` hooks ran.
    ran: usize,
}

impl Turn<'_> {
    /// The interceptors' `before` hooks, in order, then the agent.
    async fn run(
        &mut self,
        prompts: &Prompts,
        request: Request,
        stream: Arc<ReplyStream>,
    ) -> TurnEnd {
        let request = match self.before(request).await {
            Ok(request) => request,
            Err(refused) => return refused,
        };
        let responder = Responder::new(stream as Arc<dyn Transport>);
        match AssertUnwindSafe(prompts.agent.prompt(request, responder))
            .catch_unwind()
            .await
        {
            Ok(Ok(())) => TurnEnd::Answered,
            Ok(Err(e)) => TurnEnd::Failed(e.service_error().clone()),
            Err(panic) => {
                tracing::error!(panic = %panic_text(&*panic), "agent panicked");
                TurnEnd::Panicked
            }
        }
    }

    /// Runs the `before` hooks until one refuses (or panics: `500`).
    async fn before(&mut self, mut request: Request) -> Result<Request, TurnEnd> {
        for interceptor in self.interceptors {
            self.ran += 1;
            let refused = match AssertUnwindSafe(interceptor.before(&request))
                .catch_unwind()
                .await
            {
                Ok(Decision::Pass) => continue,
                Ok(Decision::Amend(fields)) => {
                    amend(&mut request, fields);
                    continue;
                }
                Ok(Decision::Refuse(error)) => TurnEnd::Refused(error),
                Err(panic) => {
                    tracing::error!(panic = %panic_text(&*panic), "request interceptor panicked");
                    TurnEnd::Refused(ServiceError::agent_failed())
                }
            };
            self.seen = Some(request);
            return Err(refused);
        }
        if !self.interceptors.is_empty() {
            self.seen = Some(request.clone());
        }
        Ok(request)
    }

    /// Runs the `after` hooks of the interceptors whose `before` ran, in
    /// reverse order.
    async fn after(&self, end: &TurnEnd, accepted_at: Instant) {
        let Some(request) = &self.seen else { return };
        let outcome = TurnOutcome {
            error: end.service_error(),
            agent_ran: !matches!(end, TurnEnd::Refused(_)),
            elapsed: now().saturating_duration_since(accepted_at),
        };
        for interceptor in self.interceptors[..self.ran].iter().rev() {
            if let Err(panic) = AssertUnwindSafe(interceptor.after(request, &outcome))
                .catch_unwind()
                .await
            {
                tracing::error!(panic = %panic_text(&*panic), "request interceptor panicked after the turn");
            }
        }
    }
}

/// What the host's own log says about how a turn ended badly.
fn log_end(end: &TurnEnd) {
    match end {
        TurnEnd::Answered | TurnEnd::Failed(_) | TurnEnd::Panicked => {}
        TurnEnd::Refused(error) => {
            tracing::debug!(
                code = error.code.as_u16(),
                "prompt refused by an interceptor"
            )
        }
        TurnEnd::Abandoned => {
            tracing::warn!("shutdown timeout: ending a prompt still running with 500")
        }
    }
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
async fn keepalive(due: Option<Instant>) {
    match due {
        Some(due) => sleep_until(due).await,
        None => std::future::pending().await,
    }
}
