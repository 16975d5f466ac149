//! Spans per model call and per tool call, with model, token counts,
//! latency and outcome as fields.

use std::time::Instant;

use futures::StreamExt;
use tracing::{Instrument, Span, field};

use crate::llm::{ChatRequest, ChatStream, Llm, StreamEvent};
use crate::tool::{ToolCall, ToolResult, ToolSet};

/// Records the outcome of a span when dropped before it finished: the
/// caller went away.
struct Pending {
    span: Span,
    started: Instant,
    finished: bool,
}

impl Drop for Pending {
    fn drop(&mut self) {
        if !self.finished {
            self.span.record("outcome", "cancelled");
            self.span
                .record("latency_ms", self.started.elapsed().as_millis() as u64);
        }
    }
}

/// [`Llm::chat`] inside an `llm.call` span with the fields `model`,
/// `round`, `input_tokens`, `output_tokens`, `finish_reason`, `latency_ms`
/// and `outcome` (`ok`, `error` or `cancelled`).
pub fn traced_chat(llm: &dyn Llm, request: ChatRequest, round: usize) -> ChatStream {
    let span = tracing::info_span!(
        "llm.call",
        model = llm.model(),
        round,
        messages = request.messages.len(),
        tools = request.tools.len(),
        input_tokens = field::Empty,
        output_tokens = field::Empty,
        finish_reason = field::Empty,
        latency_ms = field::Empty,
        outcome = field::Empty,
    );
    let mut inner = span.in_scope(|| llm.chat(request));
    Box::pin(async_stream::stream! {
        let mut pending = Pending { span: span.clone(), started: Instant::now(), finished: false };
        while let Some(item) = inner.next().instrument(span.clone()).await {
            match &item {
                Ok(StreamEvent::Done(c)) => {
                    pending.finished = true;
                    span.record("input_tokens", c.usage.input_tokens);
                    span.record("output_tokens", c.usage.output_tokens);
                    span.record("finish_reason", c.finish_reason.as_str());
                    span.record("latency_ms", pending.started.elapsed().as_millis() as u64);
                    span.record("outcome", "ok");
                    span.in_scope(|| tracing::debug!(model = %c.model, "model call finished"));
                }
                Err(e) => {
                    pending.finished = true;
                    span.record("latency_ms", pending.started.elapsed().as_millis() as u64);
                    span.record("outcome", "error");
                    span.in_scope(|| tracing::warn!(error = %e, "model call failed"));
                }
                Ok(_) => {}
            }
            let last = pending.finished;
            yield item;
            if last {
                break;
            }
        }
    })
}

/// [`ToolSet::call`] inside a `tool.call` span with the fields `tool`,
/// `call_id`, `latency_ms` and `outcome` (`ok` or `error`).
pub async fn traced_tool_call(tools: &ToolSet, call: &ToolCall) -> ToolResult {
    let span = tracing::info_span!(
        "tool.call",
        tool = %call.name,
        call_id = %call.id,
        latency_ms = field::Empty,
        outcome = field::Empty,
    );
    let started = Instant::now();
    let result = tools.call(call).instrument(span.clone()).await;
    span.record("latency_ms", started.elapsed().as_millis() as u64);
    span.record("outcome", if result.is_error { "error" } else { "ok" });
    if result.is_error {
        span.in_scope(
            || tracing::info!(error = %result.content, "tool failed; the model sees the error"),
        );
    }
    result
}
