//! One trace across agents: W3C trace context in prompt request headers.
//!
//! The caller side is [`TraceContext`], a [`PromptInterceptor`] every
//! [`Client`](crate::Client) runs unless built with
//! [`ClientBuilder::trace_context(false)`](crate::client::ClientBuilder::trace_context).
//! It puts `traceparent` (and `tracestate`, when there is vendor state) on
//! every prompt:
//!
//! 1. from the current `tracing` span, when an OpenTelemetry layer
//!    (`tracing-opentelemetry`) records it: the prompt continues the
//!    caller's trace, its parent the caller's span;
//! 2. else, inside an agent's turn on a nap host, from the context the
//!    turn's own prompt arrived with, passed on unchanged: a supervisor
//!    without an exporter still keeps its callers and its agents in one
//!    trace;
//! 3. else from a new trace, sampled, so that agents downstream that do
//!    export record it.
//!
//! The host side: each admitted prompt's turn (interceptors and agent)
//! runs inside a `nap.turn` span (target `nap::turn`, level `info`) whose
//! OpenTelemetry parent is the remote context of the request, when it
//! carries a valid one (an invalid one is ignored, as W3C asks; the prompt
//! is served all the same). Everything the agent does in that span
//! (including prompting other agents through a nap `Client`) belongs to
//! the caller's trace.
//!
//! Spans are exported when the program installs an OpenTelemetry layer;
//! the nap binaries do so from `OTEL_EXPORTER_OTLP_ENDPOINT` (see
//! [`crate::logging`]). The header names and the value format live in
//! [`nap_proto::trace`].
//!
//! ```
//! // Every client runs the trace-context interceptor; opting out:
//! # async fn run(nats: async_nats::Client) -> nap_nats::Result<()> {
//! let client = nap_nats::Client::builder(nats).trace_context(false).build().await?;
//! # Ok(()) }
//! ```

use std::future::Future;

use nap_proto::trace::{
    RemoteContext, SAMPLED, TRACEPARENT_HEADER, TRACESTATE_HEADER, TraceParent,
};
use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState,
};
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::client::{InterceptError, OutgoingPrompt, PromptInterceptor};

/// The `tracing` target of the turn spans.
pub const TURN_TARGET: &str = "nap::turn";

tokio::task_local! {
    /// The trace context the current turn's prompt arrived with.
    static TURN: Option<RemoteContext>;
}

/// The caller half: puts the trace context on every prompt; see the
/// [module docs](self).
#[derive(Debug, Clone, Copy, Default)]
pub struct TraceContext;

#[async_trait::async_trait]
impl PromptInterceptor for TraceContext {
    async fn before_prompt(&self, prompt: &mut OutgoingPrompt<'_>) -> Result<(), InterceptError> {
        let context = outgoing();
        prompt.insert_header(TRACEPARENT_HEADER, &context.parent.to_string())?;
        if let Some(state) = &context.state {
            prompt.insert_header(TRACESTATE_HEADER, state)?;
        }
        Ok(())
    }
}

/// The context a prompt sent now carries.
pub fn outgoing() -> RemoteContext {
    let current = tracing::Span::current().context();
    let span = current.span();
    let recorded = span.span_context();
    if recorded.is_valid()
        && let Some(parent) = TraceParent::new(
            recorded.trace_id().to_bytes(),
            recorded.span_id().to_bytes(),
            recorded.trace_flags().to_u8(),
        )
    {
        let state = recorded.trace_state().header();
        return RemoteContext {
            parent,
            state: (!state.is_empty()).then_some(state),
        };
    }
    if let Ok(Some(arrived)) = TURN.try_with(Clone::clone) {
        return arrived;
    }
    new_trace()
}

/// A new, sampled trace.
fn new_trace() -> RemoteContext {
    loop {
        let trace = u128::from(crate::random::u64()) << 64 | u128::from(crate::random::u64());
        if let Some(parent) = TraceParent::new(
            trace.to_be_bytes(),
            crate::random::u64().to_be_bytes(),
            SAMPLED,
        ) {
            return RemoteContext {
                parent,
                state: None,
            };
        }
    }
}

/// Runs `turn` (an admitted prompt's interceptors and agent) as the
/// continuation of the trace its request carries, if any.
pub(crate) async fn in_turn<F: Future>(
    headers: &[(String, String)],
    subject: &str,
    instance_id: &str,
    turn: F,
) -> F::Output {
    let arrived =
        RemoteContext::from_headers(headers.iter().map(|(n, v)| (n.as_str(), v.as_str())));
    let span = tracing::info_span!(
        target: TURN_TARGET,
        "nap.turn",
        otel.name = %format_args!("prompt {subject}"),
        otel.kind = "server",
        messaging.system = "nats",
        messaging.destination.name = %subject,
        nap.instance_id = %instance_id,
    );
    if let Some(arrived) = &arrived {
        let p = arrived.parent;
        let state = arrived
            .state
            .as_deref()
            .and_then(|s| s.parse::<TraceState>().ok())
            .unwrap_or_default();
        let remote = SpanContext::new(
            TraceId::from_bytes(p.trace_id),
            SpanId::from_bytes(p.span_id),
            TraceFlags::new(p.flags),
            true,
            state,
        );
        let parent = opentelemetry::Context::new().with_remote_span_context(remote);
        if let Err(e) = span.set_parent(parent) {
            tracing::debug!(error = %e, "turn span not linked to the caller's trace");
        }
    }
    TURN.scope(arrived, turn.instrument(span)).await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn without_a_span_or_a_turn_each_prompt_starts_its_own_sampled_trace() {
        let a = outgoing();
        let b = outgoing();
        assert_ne!(a.parent.trace_id, b.parent.trace_id);
        assert!(a.parent.sampled() && a.state.is_none());
    }

    #[tokio::test]
    async fn inside_a_turn_the_arrived_context_is_passed_on() {
        let headers = vec![
            (
                "traceparent".to_owned(),
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned(),
            ),
            ("tracestate".to_owned(), "v=1".to_owned()),
        ];
        let seen = in_turn(&headers, "agents.prompt.a.b.c", "ID", async { outgoing() }).await;
        assert_eq!(
            seen.parent.to_string(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        );
        assert_eq!(seen.state.as_deref(), Some("v=1"));
    }
}
