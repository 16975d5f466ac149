//! `nap status TARGET`: a fresh heartbeat from the agent's `status`
//! endpoint (§8.7); with `--follow`, every heartbeat and online/offline
//! change of that instance as it happens (§8.2).

use std::io::Write as _;

use clap::Args;

use super::watch::Feed;
use super::{client, print_json, stdout_failed};
use crate::connect::Connection;
use crate::failure::Failure;
use crate::filter::FilterArgs;
use crate::target::{self, Purpose};

/// Arguments of `nap status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// A name, agent/owner/name, owner/name or an instance id
    target: String,
    /// Print the status reply (a §8.3 heartbeat) as JSON
    #[arg(long)]
    json: bool,
    /// Keep watching: print every heartbeat and online/offline change until Ctrl-C
    #[arg(long, short = 'f')]
    follow: bool,
}

/// Runs `nap status`.
pub async fn run(conn: Connection, args: StatusArgs) -> Result<(), Failure> {
    let client = client(&conn).await?;
    let agent = target::resolve(&client, &args.target, Purpose::Instance).await?;
    let filter = FilterArgs {
        instance: Some(agent.id().to_owned()),
        ..FilterArgs::default()
    };
    // §8.5: listen for beats before asking, so none is missed in between.
    let feed = if args.follow {
        Some(Feed::subscribe(&conn.nats, filter).await?)
    } else {
        None
    };
    if let Some(feed) = feed {
        // The status reply is printed as the first beat of the feed.
        return feed.run(&client, vec![agent], true, args.json).await;
    }
    let heartbeat = client.status(&agent).await?;
    if args.json {
        let value = serde_json::to_value(&heartbeat)
            .map_err(|e| Failure::new(crate::failure::Status::Stream, e))?;
        return print_json(&value);
    }
    let text = format!(
        "Agent:      {}\nInstance:   {}\nSession:    {}\nOnline:     yes\nHeartbeat:  {} (every {}s)\n",
        target::label(&agent),
        heartbeat.instance_id,
        heartbeat.session.as_deref().unwrap_or("-"),
        heartbeat.ts,
        heartbeat.interval_s.secs(),
    );
    std::io::stdout()
        .lock()
        .write_all(text.as_bytes())
        .map_err(stdout_failed)
}
