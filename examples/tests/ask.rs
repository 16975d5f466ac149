//! The `ask` example against the `echo-agent` example and against a Python
//! SDK agent (`synadia_ai.agent_service.AgentService`).
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use std::process::Output;

async fn ask(url: &str, args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_ask"))
        .args(["--server", url])
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ask_and_echo_agent_work_together() {
    let server = nap_testkit::NatsServer::start().unwrap();
    let url = server.url();
    let (_agent, ready) = support::spawn_ready(
        env!("CARGO_BIN_EXE_echo-agent"),
        &["--server", &url, "--owner", "ex", "--name", "e1"],
    )
    .await;
    assert!(ready.starts_with("echo-agent ready"), "{ready}");

    let long = "a fairly long prompt that the echo agent streams back in more than one chunk, since it is longer than sixty-four characters";
    let out = ask(&url, &["--owner", "ex", "--name", "e1", long]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("{long}\n"));

    let out = ask(
        &url,
        &[
            "--owner",
            "ex",
            "--answer",
            "blue",
            "ask: favourite colour?",
        ],
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "you answered: blue\n");

    // A question with no way to answer it: a clear error, not a hang.
    let out = ask(&url, &["--owner", "ex", "--timeout", "5", "ask: anyone?"]).await;
    assert!(!out.status.success());
    assert!(stderr(&out).contains("pass --answer"), "{}", stderr(&out));

    let out = ask(&url, &["--owner", "nobody", "hi"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no agent matched"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ask_against_a_python_sdk_agent() {
    let server = nap_testkit::NatsServer::start().unwrap();
    let url = server.url();
    let script = support::python_agent_script();
    let (_agent, ready) = support::spawn_ready(
        support::python().to_str().unwrap(),
        &[script.to_str().unwrap(), &url, "pyowner", "py1"],
    )
    .await;
    assert!(ready.starts_with("READY "), "{ready}");

    let out = ask(&url, &["--agent", "pyagent", "stream"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "one two three\n");

    let out = ask(&url, &["--agent", "pyagent", "--answer", "nap", "ask"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "hello nap\n");

    let out = ask(&url, &["--agent", "pyagent", "reject"]).await;
    assert_eq!(out.status.code(), Some(1), "service error exits 1");
    assert!(stderr(&out).contains("error 409"), "{}", stderr(&out));
}
