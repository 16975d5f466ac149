//! Interop: the Python SDK caller (`synadia_ai.agents.Agents`) against a
//! Rust host serving the echo agent.
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use nap_examples::EchoAgent;
use nap_nats::AgentService;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_caller_discovers_prompts_answers_and_reads_status() {
    let server = nap_testkit::NatsServer::start().unwrap();
    let nc = async_nats::connect(server.url()).await.unwrap();
    let running = AgentService::builder("echo", "py", "rust-host")
        .start(nc, EchoAgent::default())
        .await
        .unwrap();

    let out = tokio::process::Command::new(support::python())
        .arg(support::script("caller.py"))
        .args([server.url().as_str(), "py", "rust-host"])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "python caller failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value = serde_json::from_slice(&out.stdout).unwrap();

    assert_eq!(seen["instance_id"], running.id());
    assert_eq!(seen["prompt_subject"], "agents.prompt.echo.py.rust-host");
    assert_eq!(seen["protocol_version"], "0.3");
    assert_eq!(seen["text"]["text"], "hello from python");
    assert_eq!(
        seen["attachment"]["text"],
        "see attached\nattachments: data.bin (3 bytes)"
    );
    assert_eq!(seen["query"]["queries"][0], "favourite colour?");
    assert_eq!(seen["query"]["text"], "you answered: blue");
    assert_eq!(seen["status_instance_id"], running.id());
    assert_eq!(seen["status_agent"], "echo");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_caller_against_the_echo_agent_binary() {
    let server = nap_testkit::NatsServer::start().unwrap();
    let url = server.url();
    let (_agent, ready) = support::spawn_ready(
        env!("CARGO_BIN_EXE_echo-agent"),
        &["--server", &url, "--owner", "py", "--name", "binary"],
    )
    .await;
    assert!(ready.starts_with("echo-agent ready: instance "), "{ready}");
    let out = tokio::process::Command::new(support::python())
        .arg(support::script("caller.py"))
        .args([url.as_str(), "py", "binary"])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "python caller failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(ready.contains(seen["instance_id"].as_str().unwrap()));
    assert_eq!(seen["query"]["text"], "you answered: blue");
}
