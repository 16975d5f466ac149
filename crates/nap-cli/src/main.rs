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
mod failure;
mod filter;
mod table;
mod target;

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

use crate::connect::ConnectArgs;
use crate::failure::{Failure, Status};

/// The exit statuses, as `nap --help` documents them.
const EXIT_STATUSES: &str = "\
Exit status:
  0    success
  1    the agent answered with an error (§9); its code and description are on stderr;
       for `nap conformance`, a MUST case failed
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

    /// More log output on stderr: -v info (one line per served prompt), -vv debug, -vvv trace; RUST_LOG wins when set
    #[arg(short, long, action = clap::ArgAction::Count, global = true, help_heading = "Logging")]
    verbose: u8,

    /// Log lines as text (coloured on a terminal only) or one JSON object per line
    #[arg(
        long,
        global = true,
        default_value = "text",
        value_name = "FORMAT",
        help_heading = "Logging"
    )]
    log_format: nap_nats::logging::LogFormat,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    #[command(flatten)]
    Connected(Connected),
    /// Test an agent, or a caller, against the protocol, with evidence.
    Conformance(commands::conformance::ConformanceArgs),
    /// Print a shell completion script: bash, zsh, fish, elvish or powershell.
    Completions(commands::docs::CompletionsArgs),
    /// Print the man page, or write one per command into a directory.
    Man(commands::docs::ManArgs),
}

/// The commands that work over the connection the flags describe.
#[derive(Debug, Subcommand)]
enum Connected {
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
    /// Request counters of every agent instance ($SRV.STATS.agents).
    Stats(commands::stats::StatsArgs),
    /// Host an agent from the terminal: echo, exec -- CMD, or llm.
    Serve(commands::serve::ServeArgs),
    /// Serve the agent tools (discover, prompt, wait, answer, cancel, list) to an MCP host over stdio.
    Mcp(commands::mcp::McpArgs),
    /// A local web page: the agents live, a chat with any of them, the conformance suite.
    Ui(commands::ui::UiArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Kept to the end of main: dropping it sends the last traces.
    let _traces = nap_nats::logging::Logging::new()
        .verbosity(cli.verbose)
        .format(cli.log_format)
        .service_name("nap")
        .init();
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
    let command = match cli.command {
        Command::Connected(command) => command,
        Command::Conformance(args) => return commands::conformance::run(&cli.connect, args).await,
        Command::Completions(args) => return commands::docs::completions(Cli::command(), args),
        Command::Man(args) => return commands::docs::man(Cli::command(), args),
    };
    let nats = connect::connect(&cli.connect).await?;
    match command {
        Connected::Discover(args) => commands::discover::run(nats, args).await,
        Connected::Info(args) => commands::info::run(nats, args).await,
        Connected::Prompt(args) => commands::prompt::run(nats, args).await,
        Connected::Chat(args) => commands::chat::run(nats, args).await,
        Connected::Status(args) => commands::status::run(nats, args).await,
        Connected::Watch(args) => commands::watch::run(nats, args).await,
        Connected::Stats(args) => commands::stats::run(nats, args).await,
        Connected::Serve(args) => commands::serve::run(nats, args).await,
        Connected::Mcp(args) => commands::mcp::run(nats, args).await,
        Connected::Ui(args) => commands::ui::run(nats, args).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_tree_is_consistent() {
        Cli::command().debug_assert();
    }
}
