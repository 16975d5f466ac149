//! Python peers for the interop tests, run with the venv `cargo xtask setup`
//! builds. These tests never skip: without a Python they fail and say how
//! to get one.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// How long a Python agent may take to start (imports included).
const START_PATIENCE: Duration = Duration::from_secs(60);

/// The interop venv's python (`nap_testkit::find_python`); panics, naming
/// `cargo xtask setup`, when there is none. Interop tests never skip.
pub fn python() -> PathBuf {
    nap_testkit::find_python().unwrap_or_else(|e| panic!("{e}"))
}

/// A running Python agent; killed when dropped.
pub struct PythonAgent {
    child: Child,
    /// The instance id it printed on its ready line.
    pub instance_id: String,
}

impl PythonAgent {
    /// Runs `script` with `args` and waits for its `READY <instance_id>` line.
    pub async fn start(script_name: &str, args: &[&str]) -> PythonAgent {
        let python = python();
        let mut child = Command::new(&python)
            .arg(nap_testkit::python_peer(script_name))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("could not run {}: {e}", python.display()));
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(START_PATIENCE, async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(id) = line.strip_prefix("READY ") {
                    return id.trim().to_owned();
                }
            }
            panic!("{script_name} exited before its ready line (see its stderr above)");
        })
        .await
        .unwrap_or_else(|_| panic!("{script_name} printed no ready line in {START_PATIENCE:?}"));
        // Keep draining stdout so the agent never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        PythonAgent {
            child,
            instance_id: ready,
        }
    }
}

impl Drop for PythonAgent {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}
