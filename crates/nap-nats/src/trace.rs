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
use tracing::Instrument as _;

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
    #[cfg(feature = "otel")]
    if let Some(current) = otel::current() {
        return current;
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

/// The trace an admitted prompt's turn belongs to: the `nap.turn` span,
/// continuing the context the request carries, if any.
pub(crate) struct TurnContext {
    span: tracing::Span,
    arrived: Option<RemoteContext>,
}

/// The ids the host's log line of a turn carries, so that an operator can
/// go from the line to its trace: the trace id (the caller's, or the new
/// one an exported turn span started), and the turn span's id when spans
/// are exported (else the caller's span, the turn's parent).
#[derive(Debug, Clone, Default)]
pub(crate) struct TurnTrace {
    pub(crate) trace_id: Option<String>,
    pub(crate) span_id: Option<String>,
}

impl TurnContext {
    /// The turn span of a prompt that arrived on `subject` with `headers`.
    pub(crate) fn new(headers: &[(String, String)], subject: &str, instance_id: &str) -> Self {
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
        #[cfg(feature = "otel")]
        if let Some(arrived) = &arrived {
            otel::link(&span, arrived);
        }
        TurnContext { span, arrived }
    }

    /// The ids to log the turn with.
    pub(crate) fn ids(&self) -> TurnTrace {
        #[cfg(feature = "otel")]
        if let Some(ids) = otel::recorded(&self.span) {
            return ids;
        }
        match &self.arrived {
            Some(arrived) => TurnTrace {
                trace_id: Some(arrived.parent.trace_id_hex()),
                span_id: Some(arrived.parent.span_id_hex()),
            },
            None => TurnTrace::default(),
        }
    }

    /// Runs `turn` (the interceptors and the agent) in the span, with the
    /// arrived context passed on to prompts the agent sends.
    pub(crate) async fn run<F: Future>(self, turn: F) -> F::Output {
        TURN.scope(self.arrived, turn.instrument(self.span)).await
    }
}

/// The OpenTelemetry side of the trace context, for programs that install
/// a `tracing-opentelemetry` layer.
#[cfg(feature = "otel")]
mod otel {
    use nap_proto::trace::{RemoteContext, TraceParent};
    use opentelemetry::trace::{
        SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState,
    };
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;

    use super::TurnTrace;

    /// Makes the arrived context the span's remote parent.
    pub(super) fn link(span: &tracing::Span, arrived: &RemoteContext) {
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

    /// The ids of a span an OpenTelemetry layer records.
    pub(super) fn recorded(span: &tracing::Span) -> Option<TurnTrace> {
        let context = span.context();
        let recorded = context.span().span_context().clone();
        recorded.is_valid().then(|| TurnTrace {
            trace_id: Some(recorded.trace_id().to_string()),
            span_id: Some(recorded.span_id().to_string()),
        })
    }

    /// The current span's context, when a layer records it.
    pub(super) fn current() -> Option<RemoteContext> {
        let current = tracing::Span::current().context();
        let span = current.span();
        let recorded = span.span_context();
        if !recorded.is_valid() {
            return None;
        }
        let parent = TraceParent::new(
            recorded.trace_id().to_bytes(),
            recorded.span_id().to_bytes(),
            recorded.trace_flags().to_u8(),
        )?;
        let state = recorded.trace_state().header();
        Some(RemoteContext {
            parent,
            state: (!state.is_empty()).then_some(state),
        })
    }
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
        let context = TurnContext::new(&headers, "agents.prompt.a.b.c", "ID");
        let ids = context.ids();
        assert_eq!(
            ids.trace_id.as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        let seen = context.run(async { outgoing() }).await;
        assert_eq!(
            seen.parent.to_string(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        );
        assert_eq!(seen.state.as_deref(), Some("v=1"));
    }
}
