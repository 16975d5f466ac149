//! The demo's supervisor: discovers the researcher, writer and editor
//! agents (owner `demo`) and calls each one as a tool of its model.
//!
//! Without `--topic` it serves itself as agent `supervisor` until Ctrl-C,
//! printing the agents it can call as they come and go; prompt it with
//! `ask --agent supervisor "Write about NATS"`. With `--topic` it writes
//! one article, showing which agent is working, and exits.
//!
//! ```sh
//! cargo run -p nap-examples --bin supervisor -- --topic "quantum computing"
//! ```

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use nap_examples::demo::{
    self, DemoError, OWNER, Role, serve_supervisor, start_supervisor, tool_names, write_article,
};
use nap_examples::{init_logging, server_url};
use nap_nats::Client;

/// Serve the demo's supervisor, or write one article with it.
#[derive(Debug, Parser)]
struct Args {
    /// NATS server URL [default: $NATS_URL, then nats://127.0.0.1:4222]
    #[arg(long)]
    server: Option<String>,
    /// The owner token (§2) of the supervisor and of the workers it calls.
    #[arg(long, default_value = OWNER)]
    owner: String,
    /// The supervisor's instance name token (§2).
    #[arg(long, default_value = "supervisor")]
    name: String,
    /// Write one article on this topic and exit, instead of serving.
    #[arg(long)]
    topic: Option<String>,
    /// With --topic: how long to wait for all three agents, in seconds.
    #[arg(long, default_value_t = 10.0)]
    wait: f64,
}

#[tokio::main]
async fn main() -> ExitCode {
    init_logging();
    match run(Args::parse()).await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("supervisor: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<ExitCode, DemoError> {
    let url = server_url(args.server);
    let nats = nap_nats::connect_options()
        .connect(&url)
        .await
        .map_err(|e| format!("cannot connect to {url}: {e}"))?;
    let client = Client::new(nats.clone()).await?;
    let llm = demo::model()?;
    let model = llm.model().to_owned();
    let supervisor = start_supervisor(client.clone(), llm, &args.owner).await?;
    let mut out = std::io::stdout();

    let Some(topic) = args.topic else {
        let served = serve_supervisor(nats, supervisor.clone(), &args.owner, &args.name).await?;
        writeln!(
            out,
            "supervisor ready: instance {} on {} (model {model}); agents: {}",
            served.id(),
            served.prompt_subject(),
            tool_names(&supervisor.agents())
        )?;
        out.flush()?;
        let mut updates = supervisor.updates();
        loop {
            tokio::select! {
                changed = updates.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    let agents = updates.borrow_and_update().clone();
                    writeln!(out, "agents: {}", tool_names(&agents))?;
                    out.flush()?;
                }
                _ = nap_nats::shutdown_signal() => break,
            }
        }
        served.stop().await;
        return Ok(ExitCode::SUCCESS);
    };

    let all_there = |a: &[nap_orchestrator::SupervisedAgent]| {
        Role::ALL
            .iter()
            .all(|r| a.iter().any(|s| s.tool == r.name()))
    };
    let wait = Duration::from_secs_f64(args.wait.max(0.0));
    if !supervisor.wait_for(all_there, wait).await {
        eprintln!(
            "supervisor: not all three agents are running (found: {}); going on anyway",
            tool_names(&supervisor.agents())
        );
    }
    writeln!(
        out,
        "supervisor (model {model}) discovered: {}",
        tool_names(&supervisor.agents())
    )?;
    let served = serve_supervisor(nats, supervisor, &args.owner, &args.name).await?;
    let handle = client.lookup(served.id()).await?;
    let outcome = write_article(&handle, &topic, &mut out).await;
    served.stop().await;
    let report = outcome?;
    Ok(if report.text.trim().is_empty() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
