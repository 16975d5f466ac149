//! Shared pieces of the orchestrator's end-to-end tests: a private
//! nats-server, workers on it, the Python interop agent.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::Duration;

use nap_agent::Agent;
use nap_llm::{LlmAgent, Offline};
use nap_nats::{AgentService, Client, RunningAgent};

/// A private server and a connection to it.
pub struct Bus {
    pub server: nap_testkit::NatsServer,
    pub nats: async_nats::Client,
}

impl Bus {
    pub async fn start() -> Bus {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "warn".into()),
            )
            .with_test_writer()
            .try_init();
        let server = nap_testkit::NatsServer::start().unwrap();
        let nats = async_nats::connect(server.url()).await.unwrap();
        Bus { server, nats }
    }

    pub async fn client(&self) -> Client {
        Client::new(self.nats.clone()).await.unwrap()
    }

    /// Serves `agent` as `agent`/`owner`/`name`, beating every second.
    pub async fn serve(&self, agent: &str, owner: &str, name: &str, a: impl Agent) -> RunningAgent {
        AgentService::builder(agent, owner, name)
            .description(format!("test agent {name}"))
            .heartbeat_interval(Duration::from_secs(1))
            .start(self.nats.clone(), a)
            .await
            .unwrap()
    }

    /// Serves an offline `LlmAgent` worker named `name`.
    pub async fn llm_worker(&self, owner: &str, name: &str) -> RunningAgent {
        let agent = LlmAgent::builder(Offline::new())
            .system(format!("You are the {name}."))
            .build();
        self.serve("worker", owner, name, agent).await
    }
}

/// The interop venv's python (`nap_testkit::find_python`); panics, naming
/// `cargo xtask setup`, when there is none. Interop tests never skip.
pub fn python() -> PathBuf {
    nap_testkit::find_python().unwrap_or_else(|e| panic!("{e}"))
}

/// The Python agent of nap-nats's interop tests: `anything` → `echo: anything`.
pub fn python_agent_script() -> PathBuf {
    nap_testkit::python_peer("agent.py")
}

/// A child process killed when dropped.
pub struct Child(pub tokio::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.start_kill();
    }
}

/// Starts the Python agent as `pyagent`/`owner`/`name`; returns it with
/// its instance id once it printed `READY <id>`.
pub async fn python_agent(url: &str, owner: &str, name: &str) -> (Child, String) {
    use tokio::io::AsyncBufReadExt;
    let mut child = tokio::process::Command::new(python())
        .arg(python_agent_script())
        .args([url, owner, name])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("the Python agent did not start within 30 s")
        .unwrap()
        .unwrap_or_default();
    let id = line
        .strip_prefix("READY ")
        .unwrap_or_else(|| panic!("unexpected first line from the Python agent: {line:?}"))
        .to_owned();
    (Child(child), id)
}

/// Fails the test instead of hanging.
pub async fn within<F: std::future::Future>(secs: u64, what: &str, f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(secs), f)
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within {secs} s"))
}
