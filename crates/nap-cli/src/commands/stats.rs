//! `nap stats [filters]`: the request counters of every agent instance, as
//! their micro services report them on `$SRV.STATS.agents`.

use std::io::Write as _;
use std::time::Duration;

use clap::Args;
use nap_nats::readable::Secs;
use nap_proto::ServiceStats;
use nap_proto::{AgentSubject, Verb};

use super::{client, print_json, stdout_failed};
use crate::connect::Connection;
use crate::failure::{Failure, Status};
use crate::filter::FilterArgs;
use crate::table;

/// Arguments of `nap stats`.
#[derive(Debug, Args)]
pub struct StatsArgs {
    #[command(flatten)]
    filter: FilterArgs,
    /// Print the stats replies as a JSON array
    #[arg(long, help_heading = "Output")]
    json: bool,
}

/// The endpoint whose counters the table shows: `prompt` (§2).
const PROMPT: &str = Verb::Prompt.as_str();

/// Runs `nap stats`.
pub async fn run(conn: Connection, args: StatsArgs) -> Result<(), Failure> {
    let client = client(&conn).await?;
    let mut rows: Vec<(Option<AgentSubject>, ServiceStats)> = client
        .stats()
        .await?
        .into_iter()
        .map(|stats| (identity_of(&stats), stats))
        .filter(|(subject, stats)| matches(&args.filter, subject.as_ref(), stats))
        .collect();
    rows.sort_by(|(a, x), (b, y)| {
        let key = |s: &Option<AgentSubject>| s.as_ref().map(ToString::to_string);
        (key(a), &x.id).cmp(&(key(b), &y.id))
    });
    if args.json {
        let all: Vec<&ServiceStats> = rows.iter().map(|(_, s)| s).collect();
        let value = serde_json::to_value(all).map_err(|e| Failure::new(Status::Stream, e))?;
        return print_json(&value);
    }
    if rows.is_empty() {
        eprintln!("no agents answered $SRV.STATS");
        return Ok(());
    }
    let mut out = table::new(&[
        "Agent",
        "Owner",
        "Name",
        "Instance",
        "Prompts",
        "Errors",
        "Avg time",
        "Last error",
    ]);
    for (subject, stats) in &rows {
        let token = |pick: fn(&AgentSubject) -> &str| subject.as_ref().map_or("-", pick).to_owned();
        let prompt = stats.endpoint(PROMPT);
        out.add_row(vec![
            token(|s| s.identity.agent.as_str()),
            token(|s| s.identity.owner.as_str()),
            token(|s| s.identity.name.as_str()),
            table::short_id(&stats.id),
            prompt.map_or(0, |p| p.num_requests).to_string(),
            prompt.map_or(0, |p| p.num_errors).to_string(),
            prompt.map_or("-".to_owned(), |p| {
                Secs(Duration::from_nanos(p.average_processing_time)).to_string()
            }),
            table::or_dash(prompt.map(|p| p.last_error.as_str())),
        ]);
    }
    writeln!(std::io::stdout().lock(), "{out}").map_err(stdout_failed)
}

/// The identity tokens of the instance, read from its prompt endpoint's
/// subject when that is the default one (§2).
fn identity_of(stats: &ServiceStats) -> Option<AgentSubject> {
    let subject = AgentSubject::parse(&stats.endpoint(PROMPT)?.subject).ok()?;
    (subject.verb == Verb::Prompt).then_some(subject)
}

/// Whether the instance passes the filter flags (the session is not in
/// stats replies: `--session` matches nothing).
fn matches(filter: &FilterArgs, subject: Option<&AgentSubject>, stats: &ServiceStats) -> bool {
    let token = |wanted: &Option<String>, found: Option<&str>| {
        wanted.as_deref().is_none_or(|w| Some(w) == found)
    };
    token(&filter.agent, subject.map(|s| s.identity.agent.as_str()))
        && token(&filter.owner, subject.map(|s| s.identity.owner.as_str()))
        && token(&filter.name, subject.map(|s| s.identity.name.as_str()))
        && filter.session.is_none()
        && token(&filter.instance, Some(stats.id.as_str()))
}
