//! One module per command.

pub mod chat;
pub mod conformance;
pub mod discover;
pub mod docs;
pub mod info;
pub mod mcp;
pub mod prompt;
pub mod serve;
pub mod stats;
pub mod status;
pub mod ui;
pub mod watch;

use std::io::Write as _;
use std::time::Duration;

use nap_nats::{AgentHandle, Client};

use crate::connect::Connection;
use crate::failure::{Failure, Status};

/// How long a `status` probe may take before the instance counts as silent.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// A caller on the connection, signing every `prompt` and `status`
/// request with the connection's key when it has one (§13.5, §13.6).
pub async fn client(conn: &Connection) -> Result<Client, Failure> {
    let mut builder = Client::builder(conn.nats.clone());
    if let Some(key) = &conn.key {
        builder = builder.sender_key(key.clone());
    }
    Ok(builder.build().await?)
}

/// Whether each agent is online: its `status` endpoint answers with a fresh
/// heartbeat (§8.7), or it beat recently (§8.2). Probes run concurrently.
pub async fn probe_online(client: &Client, agents: &[AgentHandle]) -> Vec<bool> {
    let probes = agents.iter().map(|agent| async move {
        match tokio::time::timeout(PROBE_TIMEOUT, client.status(agent)).await {
            Ok(Ok(_)) => true,
            Ok(Err(error)) => {
                tracing::debug!(id = %agent.id(), %error, "status probe failed");
                client.is_online(agent.id())
            }
            Err(_) => client.is_online(agent.id()),
        }
    });
    futures::future::join_all(probes).await
}

/// Prints a JSON value on stdout, pretty, with a newline.
pub fn print_json(value: &serde_json::Value) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(value).map_err(|e| Failure::new(Status::Stream, e))?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}").map_err(stdout_failed)
}

/// Writing to stdout failed (a closed pipe, say).
pub fn stdout_failed(error: std::io::Error) -> Failure {
    Failure::new(
        Status::Stream,
        anyhow::Error::new(error).context("cannot write to stdout"),
    )
}

/// The current UTC time, RFC 3339, to the second.
pub fn now_rfc3339() -> String {
    nap_proto::utc_timestamp(std::time::SystemTime::now()).unwrap_or_default()
}
