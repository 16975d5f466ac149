//! The `echo-agent` example, sent SIGTERM after its NATS server is gone
//! with nothing in flight, exits at once.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

/// Far below the 30 s shutdown timeout: a stop that waits for the server
/// (or for its timeout) fails.
const AT_ONCE: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_agent_stops_at_once_without_its_server() {
    let mut server = nap_testkit::NatsServer::start().unwrap();
    let url = server.url();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_echo-agent"))
        .args(["--server", &url, "--owner", "stop", "--name", "e"])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let ready = tokio::time::timeout(Duration::from_secs(30), stdout.next_line())
        .await
        .expect("no ready line")
        .unwrap()
        .unwrap_or_default();
    assert!(ready.starts_with("echo-agent ready"), "{ready}");
    server.stop().unwrap();
    let noticed = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = stderr.next_line().await.unwrap() {
            if line.contains("lost the connection") {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(noticed, Ok(true), "the agent did not notice its server go");
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().unwrap().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(AT_ONCE, child.wait())
        .await
        .expect("echo-agent still running after SIGTERM without a server")
        .unwrap();
    assert!(status.success(), "{status:?}");
}
