//! `nap conformance agent|caller|topologies`: the conformance suite
//! (`nap-conformance`) in the `nap` binary, over nap's connection flags, so
//! that authors of agents in any language need nothing but `nap`.

use clap::{Args, Subcommand};
use nap_conformance::agent::Auth;
use nap_conformance::cli::{self, AgentArgs, CallerArgs, Compliance, TopologiesArgs};

use crate::connect::{self, ConnectArgs};
use crate::failure::{Failure, Status};

/// Arguments of `nap conformance`.
#[derive(Debug, Args)]
#[command(
    after_help = "Exit status: 0 compliant (no MUST case failed), 1 a MUST case failed, \
2 the run could not happen (no agent, an ambiguous one, a bad template), 3 no connection."
)]
pub struct ConformanceArgs {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// Test a live agent on the NATS server the connection flags name; with
    /// --nkey or --creds the §13 cases sign with that key.
    Agent(AgentArgs),
    /// Test a caller program against demanding scenario agents, hosted on
    /// --server when given, else on a private nats-server.
    Caller(CallerArgs),
    /// Test an agent command on the three identity topologies of §13, each
    /// on a private server (nats-server 2.10 or later).
    Topologies(TopologiesArgs),
}

/// Runs `nap conformance`.
pub async fn run(connect: &ConnectArgs, args: ConformanceArgs) -> Result<(), Failure> {
    let outcome = match args.mode {
        Mode::Agent(args) => {
            let settings = connect.config().resolve().map_err(connect::failure)?;
            let auth = match (&settings.nkey, &settings.creds) {
                (Some(path), _) => Auth::Nkey(path.clone()),
                (_, Some(path)) => Auth::Creds(path.clone()),
                _ => Auth::None,
            };
            cli::run_agent(&settings.url, &auth, &args).await
        }
        Mode::Caller(args) => cli::run_caller(connect.config().servers, &args).await,
        Mode::Topologies(args) => cli::run_topologies(&args).await,
    };
    match outcome {
        Ok(Compliance::Compliant) => Ok(()),
        Ok(Compliance::NotCompliant) => Err(Failure {
            status: Status::Agent,
            error: anyhow::anyhow!("not compliant: a MUST case failed"),
            quiet: false,
        }),
        Err(nap_conformance::Error::Connect { url, source }) => Err(Failure::new(
            Status::Connection,
            anyhow::Error::new(source).context(format!("cannot connect to {url}")),
        )),
        Err(error) => Err(Failure::new(Status::Usage, error)),
    }
}
