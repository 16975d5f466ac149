//! Finding the Python peers' interpreter for interop tests.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::PathBuf;

/// The interop venv's python (`nap_testkit::find_python`); panics, naming
/// `cargo xtask setup`, when there is none. Interop tests never skip.
pub fn python() -> PathBuf {
    nap_testkit::find_python().unwrap_or_else(|e| panic!("{e}"))
}

/// The Python agent of nap-nats's interop tests (see its docstring).
pub fn python_agent_script() -> PathBuf {
    nap_testkit::python_peer("agent.py")
}

/// A script of this test directory.
pub fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/python")
        .join(name)
}

/// A child process killed when dropped.
pub struct Child(pub tokio::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.start_kill();
    }
}

/// Starts an example binary and waits for its first stdout line (its ready line).
pub async fn spawn_ready(bin: &str, args: &[&str]) -> (Child, String) {
    spawn_ready_env(bin, args, &[]).await
}

/// Like [`spawn_ready`], with extra environment variables for the child.
pub async fn spawn_ready_env(bin: &str, args: &[&str], env: &[(&str, &str)]) -> (Child, String) {
    use tokio::io::AsyncBufReadExt;
    let mut child = tokio::process::Command::new(bin)
        .args(args)
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(std::time::Duration::from_secs(30), lines.next_line())
        .await
        .expect("no ready line within 30 s")
        .unwrap()
        .unwrap_or_default();
    (Child(child), line)
}
