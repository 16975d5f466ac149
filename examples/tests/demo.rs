//! The demo end to end: the `demo` binary on a private server and on a
//! shared one, and the four-terminal walk-through with the `researcher`,
//! `writer`, `editor` and `supervisor` binaries.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::time::Duration;

/// Runs a binary to its end (at most two minutes: it must not hang).
async fn run(bin: &str, args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let mut cmd = tokio::process::Command::new(bin);
    cmd.args(args)
        .env_remove("NATS_URL")
        .env_remove("RUST_LOG")
        .env_remove("NAP_DEMO_TOPIC")
        .env("NAP_LLM", "offline")
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .expect("did not end within two minutes")
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The three turns are shown in order, each agent given what the one
/// before answered, and the final text is the editor's.
fn assert_turns_and_text(stdout: &str, topic: &str) {
    let at = |needle: &str| {
        stdout
            .find(needle)
            .unwrap_or_else(|| panic!("no {needle:?} in:\n{stdout}"))
    };
    let order = ["researcher", "writer", "editor"].map(|a| at(&format!("→ {a} is working")));
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    let after = |prefix: &str, label: &str| -> String {
        let i = lines
            .iter()
            .position(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} in:\n{stdout}"));
        lines[i + 1]
            .trim()
            .strip_prefix(label)
            .unwrap_or_else(|| panic!("no {label:?} after {prefix:?}:\n{stdout}"))
            .trim()
            .trim_end_matches('…')
            .to_owned()
    };
    let given = |a: &str| after(&format!("→ {a} is working"), "given:");
    let answered = |a: &str| after(&format!("✓ {a} finished"), "answered:");
    assert!(given("researcher").contains(topic), "{stdout}");
    // Each agent is given the previous answer, and its answer is built on it.
    for (before, next) in [("researcher", "writer"), ("writer", "editor")] {
        let passed = answered(before);
        let shown = passed.chars().count().min(given(next).chars().count());
        let head = |s: &str| s.chars().take(shown).collect::<String>();
        assert_eq!(head(&given(next)), head(&passed), "{stdout}");
        assert!(
            answered(next).contains("You said: \"[offline model]"),
            "{stdout}"
        );
    }
    let text = stdout
        .split("── supervisor ──")
        .nth(1)
        .unwrap_or_else(|| panic!("no final text: {stdout}"));
    assert!(text.contains("[offline model]"), "{text}");
    assert!(text.contains(topic), "{text}");
    assert!(
        text.contains("I called researcher, then writer, then editor"),
        "{text}"
    );
    assert!(
        text.contains("editor answered: [offline model] (You are a demanding editor.)"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_runs_on_a_private_server_when_nats_url_does_not_answer() {
    // Nothing listens on port 1: the demo starts its own server.
    let (ok, stdout, stderr) = run(
        env!("CARGO_BIN_EXE_demo"),
        &[],
        &[("NATS_URL", "nats://127.0.0.1:1")],
    )
    .await;
    assert!(ok, "stdout:\n{stdout}\nstderr:\n{stderr}");
    // A clean run stops its clients before its server: no warning.
    assert!(
        !stderr.contains("WARN") && !stderr.contains("ERROR"),
        "a clean run warned:\n{stderr}"
    );
    assert!(
        stdout.starts_with("nap demo: an article on \"quantum computing\""),
        "{stdout}"
    );
    assert!(stdout.contains("private nats-server"), "{stdout}");
    assert!(
        stdout.contains("workers on NATS: editor, researcher, writer"),
        "{stdout}"
    );
    assert_turns_and_text(&stdout, "quantum computing");
    assert!(
        stdout.contains("stopped 4 agents and the private nats-server"),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_uses_the_server_at_nats_url_and_leaves_it_clean() {
    let server = nap_testkit::NatsServer::start().unwrap();
    let url = server.url();
    let (ok, stdout, stderr) = run(
        env!("CARGO_BIN_EXE_demo"),
        &["--topic", "sourdough bread"],
        &[("NATS_URL", &url)],
    )
    .await;
    assert!(ok, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains(&format!("{url} ($NATS_URL)")), "{stdout}");
    assert_turns_and_text(&stdout, "sourdough bread");

    // Everything it started is gone from the shared server.
    let client = nap_nats::Client::new(async_nats::connect(&url).await.unwrap())
        .await
        .unwrap();
    let left = client
        .discover(nap_proto::DiscoveryFilter::any())
        .await
        .unwrap();
    assert!(left.is_empty(), "agents left behind: {left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_four_terminal_walk_through_works_with_the_example_binaries() {
    let server = nap_testkit::NatsServer::start().unwrap();
    let url = server.url();
    let offline = [("NAP_LLM", "offline")];
    let mut workers = Vec::new();
    for (bin, name) in [
        (env!("CARGO_BIN_EXE_researcher"), "researcher"),
        (env!("CARGO_BIN_EXE_writer"), "writer"),
        (env!("CARGO_BIN_EXE_editor"), "editor"),
    ] {
        let (child, ready) = support::spawn_ready_env(bin, &["--server", &url], &offline).await;
        assert!(
            ready.starts_with(&format!("{name} ready: instance ")),
            "{ready}"
        );
        assert!(
            ready.contains(&format!("agents.prompt.worker.demo.{name}")),
            "{ready}"
        );
        workers.push(child);
    }
    let (ok, stdout, stderr) = run(
        env!("CARGO_BIN_EXE_supervisor"),
        &["--server", &url, "--topic", "tide pools"],
        &[],
    )
    .await;
    assert!(ok, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(
        stdout.contains("workers on NATS: editor, researcher, writer"),
        "{stdout}"
    );
    assert_turns_and_text(&stdout, "tide pools");
}
