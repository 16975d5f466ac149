//! `nap discover`: every agent matching the filters (§4.1).

use clap::Args;
use nap_proto::DiscoveryConfig;

use super::{client, print_json, probe_online, stdout_failed};
use crate::connect::Connection;
use crate::failure::Failure;
use crate::filter::FilterArgs;
use crate::table;

/// Arguments of `nap discover`.
#[derive(Debug, Args)]
pub struct DiscoverArgs {
    #[command(flatten)]
    filter: FilterArgs,
    /// Print the full $SRV.INFO records as a JSON array, unknown metadata kept,
    /// with nap's reading of each registered identity added as `nap_identity` (§13.10)
    #[arg(long, help_heading = "Output")]
    json: bool,
    /// Show every column (session, version, protocol, full instance id,
    /// limits, identity ID) instead of the ones that fit 80 columns, where
    /// the instance id is cut to its last 8 characters (enough as a TARGET)
    #[arg(long, help_heading = "Output")]
    wide: bool,
    /// Longest wait for replies, in seconds (§4.1)
    #[arg(
        long,
        default_value_t = 2.0,
        value_name = "SECS",
        help_heading = "Output"
    )]
    timeout: f64,
}

/// Runs `nap discover`.
pub async fn run(conn: Connection, args: DiscoverArgs) -> Result<(), Failure> {
    let deadline = std::time::Duration::try_from_secs_f64(args.timeout)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| Failure::usage("--timeout must be a positive number of seconds"))?;
    let config = DiscoveryConfig {
        deadline,
        ..DiscoveryConfig::default()
    };
    let client = client(&conn).await?;
    let agents = client
        .discover_with(args.filter.discovery(), config)
        .await?;
    if args.json {
        // §3.2: the records as received, unknown keys included, and the
        // identity's trust class beside them (§13.12).
        let records: Vec<serde_json::Value> = agents.iter().map(table::record_json).collect();
        return print_json(&serde_json::Value::Array(records));
    }
    if agents.is_empty() {
        eprintln!("no agents found");
        return Ok(());
    }
    // Rows in a stable order: agent, owner, name, then instance id.
    let mut agents = agents;
    agents.sort_by(|a, b| {
        (a.agent(), a.owner(), a.name(), a.id()).cmp(&(b.agent(), b.owner(), b.name(), b.id()))
    });
    let online = probe_online(&client, &agents).await;
    let rows: Vec<_> = agents
        .into_iter()
        .zip(online)
        .map(|(agent, online)| (agent, Some(online)))
        .collect();
    let table = if args.wide {
        table::agents(&rows)
    } else {
        table::agents_narrow(&rows)
    };
    use std::io::Write as _;
    writeln!(std::io::stdout().lock(), "{table}").map_err(stdout_failed)
}
