//! `nap-conformance`: the conformance suite's command line.
//!
//! ```sh
//! nap-conformance agent --server nats://127.0.0.1:4222 --name demo
//! nap-conformance caller --run 'ask --server {server} --name {name} --timeout {timeout} --answer {answer} {prompt}'
//! ```
//!
//! Exit status: 0 when no MUST case failed, 1 when one did, 2 when the run
//! could not happen (no agent, no server, bad template).

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use nap_conformance::agent::{self, AgentOptions, Target};
use nap_conformance::caller::{self, CallerOptions};
use nap_conformance::{Report, broken};

/// Conformance suite for the Synadia Agent Protocol v0.3.
#[derive(Debug, Parser)]
#[command(name = "nap-conformance", version)]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// Test a live agent on a NATS server.
    Agent {
        /// The NATS server URL.
        #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
        server: String,
        /// The instance whose prompt subject ends in this name (or whose metadata.session is it).
        #[arg(long, conflicts_with_all = ["instance", "subject"])]
        name: Option<String>,
        /// The instance with this service id.
        #[arg(long, conflicts_with = "subject")]
        instance: Option<String>,
        /// The instance with an endpoint on this subject.
        #[arg(long)]
        subject: Option<String>,
        /// The prompt for accepted-request cases (for agents that need a real question).
        #[arg(long)]
        prompt: Option<String>,
        /// The answer to mid-stream queries.
        #[arg(long, default_value = agent::DEFAULT_ANSWER)]
        answer: String,
        /// Seconds of silence after which a stream counts as lost.
        #[arg(long, default_value_t = 30.0)]
        inactivity: f64,
        /// Time budget in seconds: bounds each stream and the heartbeat watch.
        #[arg(long, default_value_t = 90.0)]
        budget: f64,
        /// Connect with this NKEY seed file, and sign §13 requests with it.
        #[arg(long, env = "NATS_NKEY", conflicts_with = "creds", value_name = "FILE")]
        nkey: Option<std::path::PathBuf>,
        /// Connect with this credentials file, and sign §13 requests with its seed.
        #[arg(long, env = "NATS_CREDS", value_name = "FILE")]
        creds: Option<std::path::PathBuf>,
        /// Print the report as JSON, with the evidence.
        #[arg(long)]
        json: bool,
    },
    /// Test a caller program against demanding scenario agents.
    Caller {
        /// The command template: {subject} {prompt} {server} {agent} {owner} {name} {timeout} {answer}.
        #[arg(long = "run")]
        command: String,
        /// The NATS server to host the scenarios on (default: a private one).
        #[arg(long)]
        server: Option<String>,
        /// The inactivity timeout the caller is told to apply, in seconds.
        #[arg(long, default_value_t = 3.0)]
        timeout: f64,
        /// The text the caller must answer queries with.
        #[arg(long, default_value = agent::DEFAULT_ANSWER)]
        answer: String,
        /// Only these cases (repeatable), e.g. --only CALL-005.
        #[arg(long)]
        only: Vec<String>,
        /// Print the report as JSON, with the evidence.
        #[arg(long)]
        json: bool,
    },
    /// Test an agent command on the three identity topologies of §13, each
    /// on a private server the suite starts (nats-server 2.10 or later).
    Topologies {
        /// The agent command, run with `sh -c`: {server} {name}; it gets
        /// NATS_URL and the host user's NATS_NKEY (seed file) or NATS_CREDS.
        #[arg(long = "run")]
        command: String,
        /// The instance name the command registers.
        #[arg(long)]
        name: String,
        /// Print the reports as JSON, with the evidence.
        #[arg(long)]
        json: bool,
    },
    /// Serve one deliberately broken agent until interrupted (for demos).
    Broken {
        /// The NATS server URL.
        #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
        server: String,
        /// The flaw, by name (e.g. no-ack, late-ack); `list` lists them.
        flaw: String,
    },
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.max(0.1))
}

fn finish(report: &Report, json: bool) -> ExitCode {
    if json {
        println!("{}", report.json());
    } else {
        print!("{}", report.table());
    }
    if report.is_compliant() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    let cli = Cli::parse();
    let result = match cli.mode {
        Mode::Agent {
            server,
            name,
            instance,
            subject,
            prompt,
            answer,
            inactivity,
            budget,
            nkey,
            creds,
            json,
        } => {
            let target = match (name, instance, subject) {
                (Some(n), _, _) => Target::Name(n),
                (_, Some(i), _) => Target::Instance(i),
                (_, _, Some(s)) => Target::Subject(s),
                _ => Target::Any,
            };
            let mut options = AgentOptions::new(target);
            if let Some(p) = prompt {
                options.prompt = p;
            }
            options.answer = answer;
            options.inactivity = secs(inactivity);
            options.budget = secs(budget);
            let auth = match (nkey, creds) {
                (Some(path), _) => agent::Auth::Nkey(path),
                (_, Some(path)) => agent::Auth::Creds(path),
                _ => agent::Auth::None,
            };
            agent::run_as(&server, &auth, &options)
                .await
                .map(|r| finish(&r, json))
        }
        Mode::Caller {
            command,
            server,
            timeout,
            answer,
            only,
            json,
        } => {
            let mut options = CallerOptions::new(command);
            options.server = server;
            options.inactivity = secs(timeout);
            options.answer = answer;
            options.only = only;
            caller::run(&options).await.map(|r| finish(&r, json))
        }
        Mode::Topologies {
            command,
            name,
            json,
        } => {
            let mut options = AgentOptions::new(Target::Name(name.clone()));
            options.inactivity = secs(10.0);
            options.budget = secs(40.0);
            nap_conformance::topologies::run_agent(
                &command,
                &name,
                &nap_testkit::Topology::ALL,
                &options,
            )
            .await
            .map(|runs| {
                let mut code = ExitCode::SUCCESS;
                for run in runs {
                    println!(
                        "== {} (agent runs as {}, tested as {})",
                        run.topology, run.host, run.caller
                    );
                    if finish(&run.report, json) != ExitCode::SUCCESS {
                        code = ExitCode::from(1);
                    }
                }
                code
            })
        }
        Mode::Broken { server, flaw } => serve_broken(&server, &flaw).await,
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

async fn serve_broken(server: &str, flaw: &str) -> nap_conformance::Result<ExitCode> {
    let Some(flaw) = broken::Flaw::ALL.into_iter().find(|f| f.name() == flaw) else {
        for f in broken::Flaw::ALL {
            println!("{:<28} fails {:?}", f.name(), f.expected_failures());
        }
        return Ok(ExitCode::from(if flaw == "list" { 0 } else { 2 }));
    };
    let probe = agent::Probe::connect(server).await?;
    let running = broken::start(probe.client().clone(), flaw).await?;
    println!(
        "broken agent {} ready: instance {} on {}",
        flaw.name(),
        running.id(),
        running.prompt_subject()
    );
    let _ = tokio::signal::ctrl_c().await;
    Ok(ExitCode::SUCCESS)
}
