//! Shared pieces of the `nap` binary tests: a real nats-server per test,
//! the `nap` binary run with an isolated environment, hosted agents,
//! long-running children killed on drop, and the Python SDK peers.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use nap_nats::{AgentService, RunningAgent};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout};

/// How long any awaited line or process may take; generous, never asserted on.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// The `nap` binary under test.
pub const NAP: &str = env!("CARGO_BIN_EXE_nap");

/// A home with no NATS contexts in it, so the developer's own never leak in.
pub const EMPTY_HOME: &str = "/nonexistent/nap-test-home";

/// Environment variables of the NATS tools that must not leak into tests.
pub const NATS_VARS: &[&str] = &[
    "NATS_URL",
    "NATS_CONTEXT",
    "NATS_CREDS",
    "NATS_NKEY",
    "NATS_USER",
    "NATS_PASSWORD",
    "NATS_TOKEN",
    "NATS_CERT",
    "NATS_KEY",
    "NATS_CA",
    "XDG_CONFIG_HOME",
];

/// A `nap` command with an isolated environment (no NATS variables, an
/// empty HOME) and its output piped.
pub fn nap<I, S>(args: I) -> tokio::process::Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let mut cmd = tokio::process::Command::new(NAP);
    for var in NATS_VARS {
        cmd.env_remove(var);
    }
    cmd.env("HOME", EMPTY_HOME)
        .env("RUST_LOG", "warn")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// Runs a `nap` command to its end, with `stdin` as its input.
pub async fn output(mut cmd: tokio::process::Command, stdin: &str) -> Output {
    cmd.stdin(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).await.unwrap();
    drop(input);
    tokio::time::timeout(PATIENCE, child.wait_with_output())
        .await
        .expect("nap did not finish in time")
        .unwrap()
}

/// Runs `nap ARGS` against `url`, stdin empty.
pub async fn run(url: &str, args: &[&str]) -> Output {
    let mut all = vec!["--server", url];
    all.extend_from_slice(args);
    output(nap(all), "").await
}

/// Stdout as text.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Stderr as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts the exit code, showing both streams when it differs.
pub fn assert_exit(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "exit status\n--- stdout\n{}\n--- stderr\n{}",
        stdout(out),
        stderr(out)
    );
}

/// The examples' echo agent (`nap_examples::EchoAgent`), hosted in this
/// process as `echo/{owner}/{name}`, beating every second.
pub async fn host_echo(url: &str, owner: &str, name: &str) -> RunningAgent {
    let nats = async_nats::connect(url).await.unwrap();
    AgentService::builder("echo", owner, name)
        .heartbeat_interval(Duration::from_secs(1))
        .metadata("x-team", "blue")
        .start(nats, nap_examples::EchoAgent::default())
        .await
        .unwrap()
}

/// One output stream of a child, read line by line.
type OutputLines = Lines<BufReader<std::pin::Pin<Box<dyn tokio::io::AsyncRead + Send>>>>;

/// A long-running child (`nap serve`, `nap watch`, a Python agent) whose
/// stdout (or, with [`Running::spawn_stderr`], stderr) is read line by
/// line; killed when dropped.
pub struct Running {
    pub child: Child,
    lines: OutputLines,
    /// Every line read so far.
    pub seen: Vec<String>,
}

impl Running {
    /// Spawns `cmd` with stdout piped (stderr inherited, for diagnosis).
    pub fn spawn(mut cmd: tokio::process::Command) -> Running {
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .stdin(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().unwrap();
        let stdout: ChildStdout = child.stdout.take().unwrap();
        let lines = BufReader::new(Box::pin(stdout) as std::pin::Pin<Box<_>>).lines();
        Running {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Spawns `cmd` with stderr piped and read instead (stdout discarded),
    /// for the logs.
    pub fn spawn_stderr(mut cmd: tokio::process::Command) -> Running {
        cmd.stdout(Stdio::null())
            .stderr(Stdio::piped())
            .stdin(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let lines = BufReader::new(Box::pin(stderr) as std::pin::Pin<Box<_>>).lines();
        Running {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Reads stdout until a line satisfies `pred`, and returns it.
    pub async fn line_where(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let found = tokio::time::timeout(PATIENCE, async {
            while let Some(line) = self.lines.next_line().await.unwrap() {
                self.seen.push(line.clone());
                if pred(&line) {
                    return Some(line);
                }
            }
            None
        })
        .await;
        match found {
            Ok(Some(line)) => line,
            Ok(None) => panic!("stdout ended before {what}; saw {:#?}", self.seen),
            Err(_) => panic!("no {what} within {PATIENCE:?}; saw {:#?}", self.seen),
        }
    }

    /// Reads stdout to its end (the process has exited or is exiting).
    pub async fn rest(&mut self) -> Vec<String> {
        let mut rest = Vec::new();
        let read = tokio::time::timeout(PATIENCE, async {
            while let Ok(Some(line)) = self.lines.next_line().await {
                rest.push(line);
            }
        });
        read.await.expect("stdout did not end");
        rest
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id().unwrap()
    }

    /// Sends SIGTERM and waits for the exit status.
    pub async fn terminate(mut self) -> std::process::ExitStatus {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        tokio::time::timeout(PATIENCE, self.child.wait())
            .await
            .expect("no exit after SIGTERM")
            .unwrap()
    }
}

/// `nap serve ARGS` against `url`, once its ready line is out; returns the
/// child and the instance id.
pub async fn serve(url: &str, args: &[&str]) -> (Running, String) {
    let mut all = vec!["--server", url, "serve"];
    all.extend_from_slice(args);
    let mut running = Running::spawn(nap(all));
    let ready = running
        .line_where("the ready line", |l| l.starts_with("serving "))
        .await;
    let id = ready
        .split(" as instance ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .unwrap()
        .to_owned();
    (running, id)
}

/// The interop venv's python (`nap_testkit::find_python`); panics, naming
/// `cargo xtask setup`, when there is none. Interop tests never skip.
pub fn python() -> PathBuf {
    nap_testkit::find_python().unwrap_or_else(|e| panic!("{e}"))
}

/// A script of `tests/support/python/`.
pub fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/support/python")
        .join(name)
}

/// The Python SDK agent of nap-testkit's `python/agent.py`, once it printed `READY <id>`.
pub async fn python_agent(url: &str, owner: &str, name: &str) -> (Running, String) {
    let mut cmd = tokio::process::Command::new(python());
    cmd.arg(nap_testkit::python_peer("agent.py"))
        .args([url, owner, name]);
    let mut running = Running::spawn(cmd);
    let ready = running
        .line_where("READY from the Python agent", |l| l.starts_with("READY "))
        .await;
    let id = ready.trim_start_matches("READY ").trim().to_owned();
    (running, id)
}

/// `nap ui` against `url` with `args` (say `--listen 127.0.0.1:0`), once
/// it printed its address; returns the child and the URL it printed,
/// token included (`http://127.0.0.1:PORT/?token=…`).
pub async fn ui(url: &str, args: &[&str]) -> (Running, String) {
    let mut all = vec!["--server", url, "ui"];
    all.extend_from_slice(args);
    let mut running = Running::spawn(nap(all));
    let ready = running
        .line_where("the ui's address", |l| l.starts_with("nap ui on http://"))
        .await;
    let address = ready.split_whitespace().nth(3).unwrap().to_owned();
    (running, address)
}

/// A URL `nap ui` printed, in parts: `http://HOST:PORT` and the token.
pub fn ui_parts(printed: &str) -> (String, String) {
    let (base, token) = printed.split_once("/?token=").unwrap();
    (base.to_owned(), token.to_owned())
}
