//! `nap mcp` driven by an MCP host nap did not write: the official Python
//! `mcp` SDK's stdio client (`tests/support/python/mcp_client.py`). It
//! lists the six agent tools, discovers a running echo agent, prompts it
//! blocking and detached, collects with `wait_agent`, answers the echo
//! agent's `ask:` question with `answer_agent`, and cancels a slow call.
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use nap_testkit::NatsServer;
use serde_json::Value;
use support::{NAP, Running, python, script, serve};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mcp_client_drives_the_agent_tools() {
    let server = NatsServer::start().unwrap();
    let url = server.url();
    let (_echo, _) = serve(&url, &["echo", "--owner", "mcp", "--name", "echo"]).await;
    let (_slow, _) = serve(
        &url,
        &[
            "exec", "--owner", "mcp", "--name", "slow", "--", "sleep", "60",
        ],
    )
    .await;

    let mut cmd = tokio::process::Command::new(python());
    cmd.arg(script("mcp_client.py"))
        .args([NAP, &url, "mcp", "echo", "mcp", "slow"])
        .env("RUST_LOG", "warn");
    let mut client = Running::spawn(cmd);
    let mut steps = std::collections::HashMap::new();
    while steps.len() < 11 {
        let line = client.line_where("a step", |l| l.starts_with('{')).await;
        let v: Value = serde_json::from_str(&line).unwrap();
        steps.insert(v["step"].as_str().unwrap().to_owned(), v["result"].clone());
    }
    let step = |name: &str| {
        steps
            .get(name)
            .unwrap_or_else(|| panic!("no step {name}: {steps:#?}"))
    };

    assert_eq!(
        step("list_tools"),
        &serde_json::json!([
            "answer_agent",
            "cancel_agent",
            "discover_agents",
            "list_agent_calls",
            "prompt_agent",
            "wait_agent"
        ])
    );
    let blocking = step("prompt_blocking");
    assert_eq!(blocking["state"], "completed", "{blocking}");
    assert!(
        blocking.to_string().contains("hello over MCP"),
        "{blocking}"
    );

    assert_eq!(step("prompt_detached")["state"], "running");
    let waited = step("wait_detached").to_string();
    assert!(
        waited.contains("detached hello") && waited.contains("completed"),
        "{waited}"
    );

    let question = step("wait_question").to_string();
    assert!(
        question.contains("input_required") && question.contains("favourite colour?"),
        "{question}"
    );
    let answered = step("answer").to_string();
    assert!(answered.contains("you answered: blue"), "{answered}");

    let cancelled = step("cancel").to_string();
    assert!(cancelled.contains("cancelled"), "{cancelled}");
    assert!(step("list").to_string().contains("cancelled"));
}
