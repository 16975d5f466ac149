//! Spans per model call and per tool call. Its own test binary, so no
//! other test's thread shares the callsites while a scoped subscriber is set.

#![allow(clippy::unwrap_used)]

use nap_agent::{Agent, Request, Responder};
use nap_llm::{LlmAgent, Offline, ToolError, tool_fn};
use schemars::JsonSchema;
use serde::Deserialize;

#[derive(Deserialize, JsonSchema)]
struct Args {
    text: String,
}

mod capture {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU64, Ordering};

    use tracing::field::{Field, Visit};
    use tracing::span::{Attributes, Id, Record};
    use tracing::{Event, Metadata, Subscriber};

    /// A span's name and its fields, in the order they were recorded.
    pub type SpanRecord = (String, Vec<(String, String)>);

    /// Spans by name with their fields, as recorded.
    #[derive(Default)]
    pub struct Capture {
        pub spans: Mutex<Vec<SpanRecord>>,
        next: AtomicU64,
    }

    struct Fields<'a>(&'a mut Vec<(String, String)>);

    impl Visit for Fields<'_> {
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            self.0.push((field.name().to_owned(), format!("{value:?}")));
        }

        fn record_str(&mut self, field: &Field, value: &str) {
            self.0.push((field.name().to_owned(), value.to_owned()));
        }
    }

    impl Subscriber for &'static Capture {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }

        fn new_span(&self, span: &Attributes<'_>) -> Id {
            let mut fields = Vec::new();
            span.record(&mut Fields(&mut fields));
            let mut spans = self.spans.lock().unwrap();
            spans.push((span.metadata().name().to_owned(), fields));
            self.next.store(spans.len() as u64, Ordering::SeqCst);
            Id::from_u64(spans.len() as u64)
        }

        fn record(&self, span: &Id, values: &Record<'_>) {
            let mut spans = self.spans.lock().unwrap();
            let index = span.into_u64() as usize - 1;
            values.record(&mut Fields(&mut spans[index].1));
        }

        fn record_follows_from(&self, _: &Id, _: &Id) {}

        fn event(&self, _: &Event<'_>) {}

        fn enter(&self, _: &Id) {}

        fn exit(&self, _: &Id) {}
    }
}

#[tokio::test]
async fn spans_carry_model_tokens_latency_and_outcome() {
    let capture: &'static capture::Capture = Box::leak(Box::default());
    let _guard = tracing::subscriber::set_default(capture);
    let failing = tool_fn("fail", "Always fails", |_: Args| async move {
        Err::<String, _>(ToolError::new("no"))
    });
    let echo = tool_fn("echo", "Echoes", |a: Args| async move { Ok(a.text) });
    let agent = LlmAgent::builder(Offline::new())
        .tool(echo)
        .tool(failing)
        .build();
    let (out, _) = Responder::collector();
    agent.prompt(Request::text("hi"), out).await.unwrap();

    let spans = capture.spans.lock().unwrap().clone();
    let field = |span: &capture::SpanRecord, name: &str| {
        span.1
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let calls: Vec<_> = spans.iter().filter(|s| s.0 == "llm.call").collect();
    assert_eq!(calls.len(), 2, "{spans:?}");
    for call in &calls {
        assert_eq!(field(call, "model").as_deref(), Some("offline"));
        assert!(field(call, "input_tokens").is_some());
        assert!(field(call, "output_tokens").is_some());
        assert!(field(call, "latency_ms").is_some());
        assert_eq!(field(call, "outcome").as_deref(), Some("ok"));
    }
    assert_eq!(field(calls[0], "round").as_deref(), Some("1"));
    assert_eq!(
        field(calls[0], "finish_reason").as_deref(),
        Some("tool_calls")
    );
    assert_eq!(field(calls[1], "finish_reason").as_deref(), Some("stop"));
    let tools: Vec<_> = spans.iter().filter(|s| s.0 == "tool.call").collect();
    assert_eq!(tools.len(), 2);
    assert_eq!(field(tools[0], "tool").as_deref(), Some("echo"));
    assert_eq!(field(tools[0], "outcome").as_deref(), Some("ok"));
    assert_eq!(field(tools[1], "tool").as_deref(), Some("fail"));
    assert_eq!(field(tools[1], "outcome").as_deref(), Some("error"));
    assert!(spans.iter().any(|s| s.0 == "llm.agent"));
}
