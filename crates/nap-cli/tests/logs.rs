//! Logs for operators: `-v` and `--log-format json` on `nap serve`, one
//! line per served prompt with its fields, no colour codes when stderr is
//! not a terminal, a warning when the NATS server goes away, and internal
//! errors logged in full while the caller gets a short description.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::time::Duration;

use nap_testkit::NatsServer;
use serde_json::Value;
use support::{assert_exit, nap, run, stderr};

/// `nap ARGS` with `env`, its stderr (the logs) read line by line.
fn logged(args: &[&str], env: &[(&str, &str)]) -> support::Running {
    let mut cmd = nap(args);
    cmd.env_remove("RUST_LOG").envs(env.iter().copied());
    support::Running::spawn_stderr(cmd)
}

/// Whether `target` answers `nap info` within a few seconds.
async fn registered(url: &str, target: &str) -> bool {
    for _ in 0..50 {
        if run(url, &["info", target]).await.status.success() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_served_prompt_is_one_json_line_and_losing_the_server_is_a_warning() {
    let mut server = NatsServer::start().unwrap();
    let url = server.url();
    let mut serve = logged(
        &[
            "--server",
            &url,
            "-v",
            "--log-format",
            "json",
            "serve",
            "echo",
            "--owner",
            "ops",
            "--name",
            "logged",
        ],
        &[],
    );
    serve
        .line_where("the connect line", |l| {
            l.contains("connected to the NATS server")
        })
        .await;
    // Wait for the registration before prompting.
    assert!(registered(&url, "ops/logged").await, "{:#?}", serve.seen);
    assert_exit(&run(&url, &["prompt", "ops/logged", "hello logs"]).await, 0);
    let line = serve
        .line_where("the served-prompt line", |l| l.contains("prompt served"))
        .await;
    let entry: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert_eq!(entry["level"], "INFO", "{entry}");
    assert_eq!(entry["target"], nap_nats::PROMPT_LOG_TARGET, "{entry}");
    let fields = &entry["fields"];
    assert_eq!(
        fields["subject"], "agents.prompt.echo.ops.logged",
        "{entry}"
    );
    assert_eq!(fields["code"], 200, "{entry}");
    assert_eq!(fields["sender"], "absent", "{entry}");
    assert!(
        fields["instance"].as_str().is_some_and(|i| !i.is_empty()),
        "{entry}"
    );
    assert!(fields["bytes_in"].as_u64().unwrap() > 0, "{entry}");
    assert!(
        fields["bytes_out"].as_u64().unwrap() >= "hello logs".len() as u64,
        "{entry}"
    );
    assert!(fields["duration_ms"].as_u64().is_some(), "{entry}");
    // Every line is JSON, none carries a colour code.
    for line in &serve.seen {
        assert!(
            !line.contains('\u{1b}'),
            "colour in a log that is not a terminal: {line}"
        );
        assert!(
            serde_json::from_str::<Value>(line).is_ok(),
            "not JSON: {line}"
        );
    }

    // The server goes away: the host says so.
    server.stop().unwrap();
    let warning = serve
        .line_where("the disconnect warning", |l| {
            l.contains("lost the connection")
        })
        .await;
    let entry: Value = serde_json::from_str(&warning).unwrap();
    assert_eq!(entry["level"], "WARN", "{entry}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_failure_is_logged_in_full_and_told_to_the_caller_without_internals() {
    let server = NatsServer::start().unwrap();
    let url = server.url();
    // An OpenAI-compatible provider at an address where nothing listens.
    let provider = "http://127.0.0.1:1/v1";
    let mut serve = logged(
        &[
            "--server", &url, "serve", "llm", "--owner", "ops", "--name", "model",
        ],
        &[
            ("NAP_LLM", "openai"),
            ("NAP_LLM_BASE_URL", provider),
            ("OPENAI_API_KEY", "sk-test"),
            ("NAP_MODEL", "gpt-test"),
        ],
    );
    assert!(registered(&url, "ops/model").await, "{:#?}", serve.seen);
    let out = run(&url, &["prompt", "ops/model", "hello"]).await;
    assert_exit(&out, 1);
    let told = stderr(&out);
    assert!(told.contains("500"), "{told}");
    assert!(told.contains("could not be reached"), "{told}");
    assert!(
        !told.contains("127.0.0.1:1"),
        "the provider's address reached the caller: {told}"
    );
    // The operator's log has the whole story.
    serve
        .line_where("the full error, at error level", |l| {
            l.contains("ERROR") && l.contains("127.0.0.1:1")
        })
        .await;
}

#[test]
fn text_logs_have_no_colour_when_stderr_is_not_a_terminal() {
    // A connection failure is logged at debug level with -vv.
    let out = std::process::Command::new(support::NAP)
        .env("HOME", support::EMPTY_HOME)
        .env_remove("RUST_LOG")
        .env_remove("NATS_URL")
        .args(["--server", "nats://127.0.0.1:1", "-vv", "discover"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("DEBUG"), "{err}");
    assert!(!err.contains('\u{1b}'), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_served_prompt_is_logged_with_the_trace_it_arrived_with() {
    use futures::StreamExt as _;
    let server = NatsServer::start().unwrap();
    let url = server.url();
    let mut serve = logged(
        &[
            "--server",
            &url,
            "--log-format",
            "json",
            "serve",
            "echo",
            "--owner",
            "ops",
            "--name",
            "traced",
        ],
        &[("RUST_LOG", "nap::prompt=info,nap_nats=info")],
    );
    serve
        .line_where("the registration", |l| l.contains("agent registered"))
        .await;
    let nc = async_nats::connect(&url).await.unwrap();
    let inbox = nc.new_inbox();
    let mut replies = nc.subscribe(inbox.clone()).await.unwrap();
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(
        "traceparent",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    );
    nc.publish_with_reply_and_headers(
        "agents.prompt.echo.ops.traced",
        inbox,
        headers,
        "hello traces".into(),
    )
    .await
    .unwrap();
    // The stream's terminator: the prompt was served.
    while let Some(reply) = replies.next().await {
        if reply.payload.is_empty() && reply.headers.is_none() {
            break;
        }
    }
    let line = serve
        .line_where("the served-prompt line", |l| l.contains("prompt served"))
        .await;
    let entry: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    let fields = &entry["fields"];
    assert_eq!(
        fields["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736",
        "{entry}"
    );
    // Without an exporter the turn has no span of its own: the line names
    // the caller's span, the turn's parent.
    assert_eq!(fields["span_id"], "00f067aa0ba902b7", "{entry}");
}
