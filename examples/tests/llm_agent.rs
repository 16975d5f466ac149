//! End to end: the `llm-agent` binary (offline model) on a real
//! nats-server, prompted from the Rust caller and from the Python caller.
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use futures::StreamExt;
use nap_nats::{Client, Event};
use nap_proto::DiscoveryFilter;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llm_agent_streams_tool_results_to_rust_and_python_callers() {
    let server = nap_testkit::NatsServer::start().unwrap();
    let url = server.url();
    let (_agent, ready) = support::spawn_ready_env(
        env!("CARGO_BIN_EXE_llm-agent"),
        &["--server", &url, "--owner", "e2e", "--name", "helper"],
        &[("NAP_LLM", "offline")],
    )
    .await;
    assert!(ready.starts_with("llm-agent ready"), "{ready}");

    // Rust caller.
    let client = Client::new(async_nats::connect(&url).await.unwrap())
        .await
        .unwrap();
    let handle = client
        .find(DiscoveryFilter {
            agent: Some("llm".into()),
            owner: Some("e2e".into()),
            ..DiscoveryFilter::any()
        })
        .await
        .unwrap();
    let mut stream = client.prompt(&handle, "what is 12 * 7?").await.unwrap();
    let (mut chunks, mut text) = (0, String::new());
    while let Some(event) = stream.next().await {
        match event.unwrap() {
            Event::Response(d) => {
                chunks += 1;
                text.push_str(d.text());
            }
            Event::End => break,
            _ => {}
        }
    }
    assert!(
        chunks > 1,
        "the reply streams in several chunks, got {chunks}"
    );
    assert!(text.contains("offline model"), "{text}");
    assert!(
        text.contains("84"),
        "the calculator's result is used: {text}"
    );

    // Python caller.
    let out = tokio::process::Command::new(support::python())
        .arg(support::script("prompt.py"))
        .args([url.as_str(), "llm", "e2e", "what is 6 * 7?"])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "python caller failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(seen["chunks"].as_u64().unwrap() > 1, "{seen}");
    let text = seen["text"].as_str().unwrap();
    assert!(
        text.contains("42") && text.contains("offline model"),
        "{text}"
    );
}
