//! `nap`: the command line for agents speaking the Synadia Agent Protocol
//! for NATS (v0.3).
//!
//! What `nats micro` is for services, `nap` is for agents: it discovers
//! them (§4), shows their records (§3), prompts them and streams the reply
//! (§5–§7), watches their heartbeats (§8) and hosts simple agents from the
//! terminal. Connection flags follow the `nats` CLI, contexts included
//! (§10.2).

mod commands;
mod connect;
mod context;
mod failure;
mod filter;
mod table;
mod target;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::connect::ConnectArgs;
use crate::failure::{Failure, Status};

/// The exit statuses, as `nap --help` documents them.
const EXIT_STATUSES: &str = "\
Exit status:
  0    success
  1    the agent answered with an error (§9); its code and description are on stderr
  2    usage: bad arguments, TARGET not found or ambiguous, a request refused
       locally (§5.4), a query that cannot be answered (stdin is not a terminal)
  3    could not connect to NATS: unreachable server, authentication, context or
       credentials files
  4    the exchange failed: no reply in time (§6.6), nobody listening, a reply
       that broke a stream rule (§6, §9) or lost messages in transit (a
       reconnect, a full buffer), another NATS error
  5    the agent accepts only signed requests (§13.9) and this connection
       cannot sign: connect with an NKEY user (--nkey) or credentials (--creds)
  130  interrupted (Ctrl-C)";

/// Discover, inspect, prompt, watch and serve agents on NATS
/// (Synadia Agent Protocol v0.3).
#[derive(Debug, Parser)]
#[command(name = "nap", version, after_help = EXIT_STATUSES, max_term_width = 100)]
struct Cli {
    #[command(flatten)]
    connect: ConnectArgs,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List agents ($SRV.INFO.agents, §4.1) as a table, or their full records with --json.
    Discover(commands::discover::DiscoverArgs),
    /// One agent's full record and endpoints (§3).
    Info(commands::info::InfoArgs),
    /// Prompt an agent and stream its reply to stdout (§5, §6, §7).
    Prompt(commands::prompt::PromptArgs),
    /// Talk to an agent, one prompt per line, with history and line editing.
    Chat(commands::chat::ChatArgs),
    /// Ask an agent's status endpoint for a fresh heartbeat (§8.7); --follow for a live view.
    Status(commands::status::StatusArgs),
    /// Watch agents come online and go offline as their heartbeats say (§8).
    Watch(commands::watch::WatchArgs),
    /// Host an agent from the terminal: echo, exec -- CMD, or llm.
    Serve(commands::serve::ServeArgs),
    /// Serve the agent tools (discover, prompt, wait, answer, cancel, list) to an MCP host over stdio.
    Mcp(commands::mcp::McpArgs),
}

fn main() -> ExitCode {
    init_logging();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("nap: cannot start the async runtime: {e}");
            return ExitCode::from(Status::Stream.code());
        }
    };
    let result = runtime.block_on(run(cli));
    // Background tasks (heartbeat trackers, reconnects) must not hold the exit.
    runtime.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            failure.report();
            ExitCode::from(failure.status.code())
        }
    }
}

async fn run(cli: Cli) -> Result<(), Failure> {
    let nats = connect::connect(&cli.connect).await?;
    match cli.command {
        Command::Discover(args) => commands::discover::run(nats, args).await,
        Command::Info(args) => commands::info::run(nats, args).await,
        Command::Prompt(args) => commands::prompt::run(nats, args).await,
        Command::Chat(args) => commands::chat::run(nats, args).await,
        Command::Status(args) => commands::status::run(nats, args).await,
        Command::Watch(args) => commands::watch::run(nats, args).await,
        Command::Serve(args) => commands::serve::run(nats, args).await,
        Command::Mcp(args) => commands::mcp::run(nats, args).await,
    }
}

/// Logs to stderr, filtered by `RUST_LOG` (default: warnings only).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _already_set = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_tree_is_consistent() {
        Cli::command().debug_assert();
    }
}
