//! The agent cases on the three identity topologies of §13 (a
//! configuration-file server with NKEY users, named accounts with service
//! imports, an operator-mode server with credentials files), each started
//! by the suite itself.
//!
//! The agent under test is a command: it runs with `NATS_URL` and the host
//! user's key, `NATS_NKEY` (a seed file) or `NATS_CREDS` (a credentials
//! file, operator mode), and `{server}` / `{name}` substituted. The suite
//! then tests it as the *caller* user, which on the two account topologies
//! lives in another account and reaches the agent through imports
//! (`share: true` on the prompt import), signing with that user's key.

use std::process::Stdio;
use std::time::{Duration, Instant};

use nap_testkit::identity::{IdentityServer, TestUser, Topology};

use crate::agent::{self, AgentOptions, Auth, Probe, Target};
use crate::error::{Error, Result};
use crate::report::Report;

/// How long the agent command may take to register.
pub const REGISTER_WITHIN: Duration = Duration::from_secs(20);

/// One topology's run.
#[derive(Debug)]
pub struct TopologyReport {
    /// The topology.
    pub topology: Topology,
    /// The agent ID of the host user the agent ran as.
    pub host: String,
    /// The agent ID of the caller user the suite tested as.
    pub caller: String,
    /// The report.
    pub report: Report,
}

fn host_error(what: &str, message: impl std::fmt::Display) -> Error {
    Error::Host {
        what: what.to_owned(),
        message: message.to_string(),
    }
}

fn auth_of(server: &IdentityServer, user: &TestUser) -> Result<Auth> {
    Ok(match &user.creds {
        Some(creds) => Auth::Creds(creds.clone()),
        None => Auth::Nkey(
            server
                .seed_file(user)
                .map_err(|e| host_error("seed file", e))?,
        ),
    })
}

/// Runs the agent `command` (see the module docs) on each topology of
/// `topologies` and tests it, as instance `name`, with `options`.
pub async fn run_agent(
    command: &str,
    name: &str,
    topologies: &[Topology],
    options: &AgentOptions,
) -> Result<Vec<TopologyReport>> {
    let mut out = Vec::new();
    for &topology in topologies {
        let server = tokio::task::spawn_blocking(move || IdentityServer::start(topology))
            .await
            .map_err(|e| host_error("identity server", e))?
            .map_err(|e| host_error("identity server", e))?;
        let url = server.url();
        let line = command
            .replace("{server}", &format!("'{url}'"))
            .replace("{name}", &format!("'{name}'"));
        let mut cmd = tokio::process::Command::new("sh");
        cmd.arg("-c")
            .arg(&line)
            .env("NATS_URL", &url)
            .env_remove("NATS_NKEY")
            .env_remove("NATS_CREDS")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .process_group(0);
        match auth_of(&server, server.host())? {
            Auth::Nkey(path) => cmd.env("NATS_NKEY", path),
            Auth::Creds(path) => cmd.env("NATS_CREDS", path),
            Auth::None => &mut cmd,
        };
        let mut child = cmd.spawn().map_err(|source| Error::Spawn {
            command: line.clone(),
            source,
        })?;
        let result = test_on(&server, name, options).await;
        if let Some(pid) = child.id() {
            // The command runs in its own process group: end it whole.
            let _ = std::process::Command::new("kill")
                .args(["-TERM", "--", &format!("-{pid}")])
                .status();
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
        let _ = child.kill().await;
        out.push(TopologyReport {
            topology,
            host: server.host().agent_id(),
            caller: server.caller().agent_id(),
            report: result?,
        });
    }
    Ok(out)
}

async fn test_on(server: &IdentityServer, name: &str, options: &AgentOptions) -> Result<Report> {
    let auth = auth_of(server, server.caller())?;
    let probe = Probe::connect_as(&server.url(), &auth).await?;
    // Wait for the agent to register, as seen from the caller's account.
    let started = Instant::now();
    let target = Target::Name(name.to_owned());
    loop {
        match agent::registration::find(
            &Probe::new(probe.client().clone()),
            &target,
            Duration::from_millis(500),
        )
        .await
        {
            Ok(_) => break,
            Err(e) if started.elapsed() > REGISTER_WITHIN => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
    let mut options = options.clone();
    options.target = target;
    options.signer = probe.signer().cloned();
    agent::run_with(&Probe::new(probe.client().clone()), &options).await
}
