//! The demo's supervisor: its model discovers the researcher, writer and
//! editor agents (owner `demo`) and prompts them through the agent tools.
//!
//! Without `--topic` it serves itself as agent `supervisor` until Ctrl-C,
//! printing each agent's turn as it happens; prompt it with
//! `ask --agent supervisor "Write about NATS"`. With `--topic` it writes
//! one article, showing each agent's turn, and exits.
//!
//! ```sh
//! cargo run -p nap-examples --bin supervisor -- --topic "quantum computing"
//! ```

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use nap_examples::demo::{
    self, DemoError, OWNER, Role, Turn, TurnLog, one_line, serve_supervisor, start_supervisor,
    wait_for_workers, write_article,
};
use nap_examples::init_logging;
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
    let _traces = init_logging();
    match run(Args::parse()).await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("supervisor: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<ExitCode, DemoError> {
    let nats = nap_examples::connect(args.server, None, None)
        .await
        .map_err(|e| e.to_string())?
        .nats;
    let client = Client::new(nats.clone()).await?;
    let (log, mut turns) = TurnLog::new();
    let tools_client = Client::builder(nats.clone())
        .interceptor(log)
        .build()
        .await?;
    let llm = demo::model()?;
    let model = llm.model().to_owned();
    let supervisor = start_supervisor(tools_client, llm, &args.owner)?;
    let mut out = std::io::stdout();

    let Some(topic) = args.topic else {
        let served = serve_supervisor(nats, supervisor.clone(), &args.owner, &args.name).await?;
        let found = wait_for_workers(&client, &args.owner, Duration::ZERO).await?;
        writeln!(
            out,
            "supervisor ready: instance {} on {} (model {model}); workers on NATS: {}",
            served.id(),
            served.prompt_subject(),
            found.join(", ")
        )?;
        out.flush()?;
        loop {
            tokio::select! {
                turn = turns.recv() => {
                    let Some(turn) = turn else { break };
                    match turn {
                        Turn::Prompted { agent, prompt } => {
                            writeln!(out, "→ {agent} given: {}", one_line(&prompt, 100))?;
                        }
                        Turn::Replied { agent, reply, failure: None } => {
                            writeln!(out, "✓ {agent} answered: {}", one_line(&reply, 100))?;
                        }
                        Turn::Replied { agent, failure: Some(why), .. } => {
                            writeln!(out, "✗ {agent} failed: {why}")?;
                        }
                    }
                    out.flush()?;
                }
                _ = nap_nats::shutdown_signal() => break,
            }
        }
        served.stop().await;
        return Ok(ExitCode::SUCCESS);
    };

    let wait = Duration::from_secs_f64(args.wait.max(0.0));
    let found = wait_for_workers(&client, &args.owner, wait).await?;
    if !Role::ALL
        .iter()
        .all(|r| found.iter().any(|n| n == r.name()))
    {
        eprintln!(
            "supervisor: not all three agents are running (found: {}); going on anyway",
            found.join(", ")
        );
    }
    writeln!(
        out,
        "supervisor (model {model}); workers on NATS: {}",
        found.join(", ")
    )?;
    let served = serve_supervisor(nats, supervisor, &args.owner, &args.name).await?;
    let handle = client.lookup(served.id()).await?;
    let outcome = write_article(&handle, &topic, &mut turns, &mut out).await;
    served.stop().await;
    let report = outcome?;
    Ok(if report.text.trim().is_empty() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
