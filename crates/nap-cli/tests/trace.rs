//! One trace from `nap prompt` through a supervisor to a remote agent
//! (issue 13): the CLI starts the trace, the supervisor's turn continues
//! it, its prompt to the worker carries it on, and the worker's turn
//! continues it again. Read from the spans an in-process exporter
//! collected from both hosts, and from the request headers on the wire.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use nap_llm::Offline;
use nap_nats::{AgentService, Client};
use nap_orchestrator::Supervisor;
use nap_proto::DiscoveryFilter;
use nap_proto::trace::{TRACEPARENT_HEADER, TraceParent};
use nap_testkit::NatsServer;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use support::{assert_exit, run, stdout};
use tracing_subscriber::layer::SubscriberExt as _;

/// The `traceparent` of the next request on `spy`.
async fn traceparent(spy: &mut async_nats::Subscriber) -> TraceParent {
    let msg = tokio::time::timeout(Duration::from_secs(20), spy.next())
        .await
        .expect("a request")
        .unwrap();
    let value = msg
        .headers
        .as_ref()
        .and_then(|h| h.get(TRACEPARENT_HEADER))
        .expect("a traceparent header")
        .to_string();
    TraceParent::parse(&value).unwrap()
}

/// The finished turn span of the prompt subject `subject`.
async fn turn(exporter: &InMemorySpanExporter, subject: &str) -> SpanData {
    let name = format!("prompt {subject}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let spans = exporter.get_finished_spans().unwrap();
        if let Some(span) = spans.into_iter().find(|s| s.name == name) {
            return span;
        }
        assert!(tokio::time::Instant::now() < deadline, "no span {name}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_from_nap_prompt_through_a_supervisor_to_a_remote_agent() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    tracing::subscriber::set_global_default(
        tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test"))),
    )
    .unwrap();

    let server = NatsServer::start().unwrap();
    let url = server.url();
    let nats = async_nats::connect(&url).await.unwrap();
    let worker = AgentService::builder("echo", "trace", "worker")
        .start(nats.clone(), nap_agent::echo::EchoAgent::default())
        .await
        .unwrap();
    let supervisor = Supervisor::builder(
        Client::new(nats.clone()).await.unwrap(),
        Arc::new(Offline::new()),
    )
    .filter(DiscoveryFilter {
        owner: Some("trace".into()),
        ..DiscoveryFilter::any()
    })
    .system("Ask the worker.")
    .build()
    .unwrap();
    let boss = AgentService::builder("supervisor", "trace", "boss")
        .start(nats.clone(), supervisor)
        .await
        .unwrap();
    // Plain subscribers see each request beside the queue group.
    let mut to_boss = nats
        .subscribe(boss.prompt_subject().to_owned())
        .await
        .unwrap();
    let mut to_worker = nats
        .subscribe(worker.prompt_subject().to_owned())
        .await
        .unwrap();
    nats.flush().await.unwrap();

    let out = run(&url, &["prompt", "supervisor/trace/boss", "fusion"]).await;
    assert_exit(&out, 0);
    assert!(stdout(&out).contains("fusion"), "{}", stdout(&out));

    // The CLI started the trace; the supervisor passed it to the worker.
    let from_cli = traceparent(&mut to_boss).await;
    let from_boss = traceparent(&mut to_worker).await;
    assert_eq!(
        from_boss.trace_id, from_cli.trace_id,
        "one trace id on the wire"
    );

    let boss_turn = turn(&exporter, boss.prompt_subject()).await;
    let worker_turn = turn(&exporter, worker.prompt_subject()).await;
    let trace = from_cli.trace_id;
    assert_eq!(boss_turn.span_context.trace_id().to_bytes(), trace);
    assert_eq!(boss_turn.parent_span_id.to_bytes(), from_cli.span_id);
    assert_eq!(worker_turn.span_context.trace_id().to_bytes(), trace);
    assert_eq!(worker_turn.parent_span_id.to_bytes(), from_boss.span_id);
    // The worker's parent is a span the supervisor recorded in that trace:
    // its turn, or a span inside it.
    let spans = exporter.get_finished_spans().unwrap();
    let parent = spans
        .iter()
        .find(|s| s.span_context.span_id().to_bytes() == from_boss.span_id)
        .expect("the supervisor recorded the span it prompted the worker from");
    assert_eq!(parent.span_context.trace_id().to_bytes(), trace);
    boss.stop().await;
    worker.stop().await;
}

/// With `OTEL_EXPORTER_OTLP_ENDPOINT` set, `nap serve` exports its turn
/// spans over OTLP/HTTP; the last ones are sent when it stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nap_serve_exports_its_spans_over_otlp() {
    use axum::body::Bytes;
    let received: Arc<std::sync::Mutex<Vec<(String, Bytes)>>> = Arc::default();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post({
            let received = received.clone();
            move |headers: axum::http::HeaderMap, body: Bytes| async move {
                let kind = headers
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                received.lock().unwrap().push((kind, body));
                ""
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let server = NatsServer::start().unwrap();
    let url = server.url();
    let mut serve = support::nap(["--server", &url, "serve", "echo", "--owner", "otlp"]);
    serve.env("OTEL_EXPORTER_OTLP_ENDPOINT", &collector);
    let mut serving = support::Running::spawn(serve);
    serving
        .line_where("the ready line", |l| l.starts_with("serving "))
        .await;
    let nats = async_nats::connect(&url).await.unwrap();
    let mut spy = nats
        .subscribe("agents.prompt.echo.otlp.echo")
        .await
        .unwrap();
    nats.flush().await.unwrap();
    let out = run(&url, &["prompt", "echo/otlp/echo", "exported"]).await;
    assert_exit(&out, 0);
    let sent = traceparent(&mut spy).await;
    assert!(serving.terminate().await.success());

    let batches = received.lock().unwrap().clone();
    assert!(!batches.is_empty(), "nothing was exported");
    assert!(
        batches
            .iter()
            .all(|(kind, _)| kind == "application/x-protobuf")
    );
    // The protobuf carries the trace id as its 16 raw bytes.
    let found = batches
        .iter()
        .any(|(_, body)| body.windows(16).any(|w| w == sent.trace_id));
    assert!(found, "no exported span in the prompt's trace");
}
