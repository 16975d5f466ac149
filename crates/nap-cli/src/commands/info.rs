//! `nap info TARGET`: one agent's full record and endpoints (§3).

use std::fmt::Write as _;

use clap::Args;

use super::{client, print_json, probe_online, stdout_failed};
use crate::connect::Connection;
use crate::failure::Failure;
use crate::table;
use crate::target::{self, Purpose};

/// Arguments of `nap info`.
#[derive(Debug, Args)]
pub struct InfoArgs {
    /// A name, agent/owner/name, owner/name or an instance id
    target: String,
    /// Print the full $SRV.INFO record as JSON, unknown metadata kept, with
    /// nap's reading of its registered identity added as `nap_identity` (§13.10)
    #[arg(long)]
    json: bool,
}

/// Runs `nap info`.
pub async fn run(conn: Connection, args: InfoArgs) -> Result<(), Failure> {
    let client = client(&conn).await?;
    let agent = target::resolve(&client, &args.target, Purpose::Instance).await?;
    let info = agent.info();
    if args.json {
        return print_json(&table::record_json(&agent));
    }
    let online = probe_online(&client, std::slice::from_ref(&agent)).await[0];
    let mut out = String::new();
    let mut line = |key: &str, value: &str| {
        let _infallible = writeln!(out, "{:<13} {value}", format!("{key}:"));
    };
    line("Agent", &target::label(&agent));
    line("Instance", agent.id());
    line("Description", &table::or_dash(Some(&info.description)));
    line("Version", &info.version);
    line("Protocol", &agent.protocol_version().to_string());
    line("Session", &table::or_dash(agent.session()));
    let online_text = match client.last_heartbeat(agent.id()) {
        Some(hb) if online => format!(
            "yes (last heartbeat {}, every {}s)",
            hb.ts,
            hb.interval_s.secs()
        ),
        _ => table::yes_no(online).to_owned(),
    };
    line("Online", &online_text);
    line("Prompt", &info.prompt.subject);
    line("Max payload", &agent.max_payload().to_string());
    line("Attachments", table::yes_no(agent.attachments_ok()));
    // §13.12: the trust class beside the ID, so a claim never reads as proof.
    line("Identity", &agent.identity().to_string());
    let trust = match info.prompt.min_sender_trust {
        Some(trust) => trust.to_string(),
        None => "any (not declared)".to_owned(),
    };
    line("Sender trust", &trust);
    line("Metadata", &table::metadata(&info.metadata.extra));
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    write!(stdout, "{out}").map_err(stdout_failed)?;
    writeln!(stdout, "{}", table::endpoints(&info.endpoints)).map_err(stdout_failed)
}
