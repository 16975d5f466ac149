//! W3C trace context on prompts (issue 13): what the caller puts in the
//! request headers, read raw off the wire, and how the host continues it,
//! read from the spans an in-process exporter collected.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "support/host.rs"]
mod support;

use std::time::Duration;

use futures::StreamExt;
use nap_nats::{AgentService, Client};
use nap_proto::trace::{TRACEPARENT_HEADER, TRACESTATE_HEADER, TraceParent};
use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use support::{body, connect, exchange, server};
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::layer::SubscriberExt as _;

fn echo() -> nap_agent::echo::EchoAgent {
    nap_agent::echo::EchoAgent::default()
}

/// A subscriber recording spans into `exporter`, for this thread.
fn recording(exporter: &InMemorySpanExporter) -> tracing::subscriber::DefaultGuard {
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
    tracing::subscriber::set_default(subscriber)
}

/// The `traceparent` of the next request on `spy`.
async fn next_traceparent(spy: &mut async_nats::Subscriber) -> Option<String> {
    let msg = tokio::time::timeout(Duration::from_secs(10), spy.next())
        .await
        .unwrap()
        .unwrap();
    msg.headers
        .as_ref()
        .and_then(|h| h.get(TRACEPARENT_HEADER))
        .map(|v| v.to_string())
}

/// Sends a request with `headers` and returns the bodies of its reply
/// stream, up to the terminator.
async fn exchange_with(
    nc: &async_nats::Client,
    subject: &str,
    headers: async_nats::HeaderMap,
    payload: &'static str,
) -> Vec<String> {
    let inbox = nc.new_inbox();
    let mut replies = nc.subscribe(inbox.clone()).await.unwrap();
    nc.publish_with_reply_and_headers(subject.to_owned(), inbox, headers, payload.into())
        .await
        .unwrap();
    let mut texts = Vec::new();
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), replies.next())
            .await
            .unwrap()
            .unwrap();
        if support::is_terminator(&msg) {
            return texts;
        }
        texts.push(body(&msg).to_owned());
    }
}

fn turn_spans(exporter: &InMemorySpanExporter) -> Vec<SpanData> {
    exporter
        .get_finished_spans()
        .unwrap()
        .into_iter()
        .filter(|s| s.name.starts_with("prompt agents.prompt."))
        .collect()
}

// Current-thread runtime: the thread's default subscriber sees the host's
// tasks too.
#[tokio::test]
async fn a_caller_sends_its_trace_and_starts_one_without() {
    let server = server();
    let nc = connect(&server).await;
    let running = AgentService::builder("echo", "trace", "raw")
        .start(connect(&server).await, echo())
        .await
        .unwrap();
    let mut spy = nc
        .subscribe(running.prompt_subject().to_owned())
        .await
        .unwrap();
    nc.flush().await.unwrap();
    let client = Client::new(connect(&server).await).await.unwrap();
    let agent = client.lookup(running.id()).await.unwrap();

    // No trace around: each prompt starts its own, sampled.
    let mut ids = Vec::new();
    for _ in 0..2 {
        agent.prompt("x").await.unwrap().text().await.unwrap();
        let header = next_traceparent(&mut spy).await.expect("a traceparent");
        let parent = TraceParent::parse(&header).unwrap();
        assert!(parent.sampled(), "{header}");
        ids.push(parent.trace_id);
    }
    assert_ne!(ids[0], ids[1]);

    // Inside a recorded span: the prompt continues it.
    let exporter = InMemorySpanExporter::default();
    let _recording = recording(&exporter);
    let span = tracing::info_span!("caller");
    let context = span.context().span().span_context().clone();
    agent
        .prompt("y")
        .instrument(span.clone())
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let header = next_traceparent(&mut spy).await.unwrap();
    let parent = TraceParent::parse(&header).unwrap();
    assert_eq!(parent.trace_id, context.trace_id().to_bytes());
    assert_eq!(parent.span_id, context.span_id().to_bytes());

    // Opted out: no header.
    let quiet = Client::builder(connect(&server).await)
        .trace_context(false)
        .build()
        .await
        .unwrap();
    let agent = quiet.lookup(running.id()).await.unwrap();
    agent.prompt("z").await.unwrap().text().await.unwrap();
    assert_eq!(next_traceparent(&mut spy).await, None);
}

#[tokio::test]
async fn the_host_continues_the_callers_trace_and_ignores_a_broken_one() {
    let exporter = InMemorySpanExporter::default();
    let _recording = recording(&exporter);
    let server = server();
    let nc = connect(&server).await;
    let running = AgentService::builder("echo", "trace", "host")
        .start(connect(&server).await, echo())
        .await
        .unwrap();

    let sent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(TRACEPARENT_HEADER, sent);
    headers.insert(TRACESTATE_HEADER, "vendor=1");
    let texts = exchange_with(&nc, running.prompt_subject(), headers, "traced").await;
    assert!(texts.iter().any(|t| t.contains("traced")), "{texts:?}");

    // A malformed traceparent: served all the same, in a trace of its own.
    let mut bad = async_nats::HeaderMap::new();
    bad.insert(TRACEPARENT_HEADER, "00-not-a-trace-01");
    let texts = exchange_with(&nc, running.prompt_subject(), bad, "still served").await;
    assert!(
        texts.iter().any(|t| t.contains("still served")),
        "{texts:?}"
    );
    // And a plain exchange for good measure.
    let msgs = exchange(&nc, running.prompt_subject(), "plain").await;
    assert!(msgs.iter().any(|m| body(m).contains("plain")));

    let expected = TraceParent::parse(sent).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let spans = loop {
        let spans = turn_spans(&exporter);
        if spans.len() >= 3 || tokio::time::Instant::now() > deadline {
            break spans;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(spans.len(), 3, "{spans:#?}");
    let traced: Vec<&SpanData> = spans
        .iter()
        .filter(|s| s.span_context.trace_id().to_bytes() == expected.trace_id)
        .collect();
    assert_eq!(
        traced.len(),
        1,
        "only the traced prompt continues the trace"
    );
    assert_eq!(traced[0].parent_span_id.to_bytes(), expected.span_id);
    assert!(traced[0].parent_span_is_remote);
    assert_eq!(traced[0].span_context.trace_state().header(), "vendor=1");
    assert_eq!(
        traced[0].name,
        format!("prompt {}", running.prompt_subject())
    );
}
