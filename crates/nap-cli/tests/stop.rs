//! Stops are bounded: `nap serve` (one agent, `--count`, a fleet file)
//! sent SIGTERM after its NATS server is gone, with nothing in flight,
//! exits at once instead of waiting for a server that will not come back.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::time::Duration;

use nap_testkit::NatsServer;

/// The most a stop with nothing in flight and no server may take: far
/// below the 30 s shutdown timeout, so a stop that waits for the server
/// (or for its timeout) fails.
const AT_ONCE: Duration = Duration::from_secs(10);

/// `nap -v serve ARGS`, registered (`registrations` "agent registered"
/// lines seen), then its server stopped and the loss noticed, then
/// SIGTERM: the exit must come within [`AT_ONCE`].
async fn stops_without_its_server(args: &[&str], registrations: usize) {
    let mut server = NatsServer::start().unwrap();
    let url = server.url();
    let mut all = vec!["--server", url.as_str(), "-v", "serve"];
    all.extend_from_slice(args);
    let mut cmd = support::nap(all);
    cmd.env("RUST_LOG", "info");
    let mut serving = support::Running::spawn_stderr(cmd);
    for _ in 0..registrations {
        serving
            .line_where("a registration", |l| l.contains("agent registered"))
            .await;
    }
    server.stop().unwrap();
    serving
        .line_where("the disconnect warning", |l| {
            l.contains("lost the connection")
        })
        .await;
    let pid = serving.pid().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let exited = tokio::time::timeout(AT_ONCE, serving.child.wait()).await;
    let status = exited
        .unwrap_or_else(|_| panic!("`nap serve {args:?}` still running {AT_ONCE:?} after SIGTERM without a server; saw {:#?}", serving.seen))
        .unwrap();
    assert!(status.success(), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_echo_stops_at_once_without_its_server() {
    stops_without_its_server(&["echo", "--owner", "stop", "--name", "one"], 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_echo_count_stops_at_once_without_its_server() {
    stops_without_its_server(
        &["echo", "--owner", "stop", "--name", "many", "--count", "50"],
        50,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_fleet_stops_at_once_without_its_server() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("fleet.json");
    std::fs::write(
        &file,
        r#"{"agents": [
            {"kind": "echo", "name": "a", "owner": "stop", "count": 3},
            {"kind": "exec", "name": "date", "owner": "stop", "command": ["date", "-u"]}
        ]}"#,
    )
    .unwrap();
    stops_without_its_server(&["fleet", file.to_str().unwrap()], 4).await;
}
