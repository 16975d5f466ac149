//! `nap-conformance`: the conformance suite's command line (also available
//! as `nap conformance`).
//!
//! ```sh
//! nap-conformance agent --server nats://127.0.0.1:4222 --name demo
//! nap-conformance caller --run 'ask --server {server} --name {name} --timeout {timeout} --answer {answer} {prompt}'
//! ```
//!
//! Exit status: 0 when no MUST case failed, 1 when one did, 2 when the run
//! could not happen (no agent, an ambiguous one, no server, bad template).

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use nap_conformance::agent::Auth;
use nap_conformance::cli::{self, AgentArgs, BrokenCallerArgs, CallerArgs, TopologiesArgs};

/// Conformance suite for the Synadia Agent Protocol v0.3.
#[derive(Debug, Parser)]
#[command(name = "nap-conformance", version)]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
    /// More log output on stderr: -v info, -vv debug, -vvv trace; RUST_LOG wins when set
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// Log lines as text (coloured on a terminal only) or one JSON object per line
    #[arg(long, global = true, default_value = "text", value_name = "FORMAT")]
    log_format: nap_nats::logging::LogFormat,
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// Test a live agent on a NATS server.
    Agent {
        /// The NATS server URL.
        #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
        server: String,
        /// Connect with this NKEY seed file, and sign §13 requests with it.
        #[arg(long, env = "NATS_NKEY", conflicts_with = "creds", value_name = "FILE")]
        nkey: Option<std::path::PathBuf>,
        /// Connect with this credentials file, and sign §13 requests with its seed.
        #[arg(long, env = "NATS_CREDS", value_name = "FILE")]
        creds: Option<std::path::PathBuf>,
        #[command(flatten)]
        args: AgentArgs,
    },
    /// Test a caller program against demanding scenario agents.
    Caller {
        /// The NATS server to host the scenarios on (default: a private one).
        #[arg(long)]
        server: Option<String>,
        #[command(flatten)]
        args: CallerArgs,
    },
    /// Test an agent command on the three identity topologies of §13, each
    /// on a private server the suite starts (nats-server 2.10 or later).
    Topologies(TopologiesArgs),
    /// Serve one deliberately broken agent until interrupted (for demos).
    Broken {
        /// The NATS server URL.
        #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
        server: String,
        /// The flaw, by name (e.g. no-ack, late-ack); `list` lists them.
        flaw: String,
    },
    /// Make one call as a deliberately broken caller (for the caller
    /// suite's teeth): `--flaw NAME --subject S --timeout SECS --answer A PROMPT`.
    BrokenCaller(BrokenCallerArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let _traces = nap_nats::logging::Logging::new()
        .verbosity(cli.verbose)
        .format(cli.log_format)
        .service_name("nap-conformance")
        .init();
    let verdict = match cli.mode {
        Mode::BrokenCaller(args) => {
            return match cli::run_broken_caller(&args).await {
                Ok(code) => ExitCode::from(code),
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(2)
                }
            };
        }
        Mode::Agent {
            server,
            nkey,
            creds,
            args,
        } => {
            let auth = match (nkey, creds) {
                (Some(path), _) => Auth::Nkey(path),
                (_, Some(path)) => Auth::Creds(path),
                _ => Auth::None,
            };
            cli::run_agent(&server, &auth, &args).await
        }
        Mode::Caller { server, args } => cli::run_caller(server, &args).await,
        Mode::Topologies(args) => cli::run_topologies(&args).await,
        Mode::Broken { server, flaw } => {
            return match cli::serve_broken(&server, &flaw).await {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::from(2),
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(2)
                }
            };
        }
    };
    match verdict {
        Ok(compliance) => ExitCode::from(compliance.code()),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
