//! The suite's command-line arguments and runs, shared by the
//! `nap-conformance` binary and `nap conformance`: each binary adds its own
//! connection flags and calls these.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use clap::Args;

use crate::agent::{self, AgentOptions, Auth, Target};
use crate::caller::{self, CallerOptions};
use crate::export::RunInfo;
use crate::{Error, Report, Result, broken};

/// Which agent to test and how (`agent` mode), without connection flags.
#[derive(Debug, Clone, Args)]
pub struct AgentArgs {
    /// The instance whose prompt subject ends in this name (or whose metadata.session is it).
    #[arg(long, conflicts_with_all = ["instance", "subject"])]
    pub name: Option<String>,
    /// The instance with this service id.
    #[arg(long, conflicts_with = "subject")]
    pub instance: Option<String>,
    /// The instance with an endpoint on this subject.
    #[arg(long)]
    pub subject: Option<String>,
    /// The prompt for accepted-request cases (for agents that need a real question).
    #[arg(long)]
    pub prompt: Option<String>,
    /// The answer to mid-stream queries.
    #[arg(long, default_value = agent::DEFAULT_ANSWER)]
    pub answer: String,
    /// Seconds of silence after which a stream counts as lost.
    #[arg(long, default_value_t = 30.0)]
    pub inactivity: f64,
    /// Time budget in seconds: bounds each stream and the heartbeat watch.
    #[arg(long, default_value_t = 90.0)]
    pub budget: f64,
    /// How the report is printed and which report files are written.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// The report's forms: on stdout a table or JSON; optionally a JUnit XML
/// file and a Markdown summary for CI.
#[derive(Debug, Clone, Default, Args)]
pub struct OutputArgs {
    /// Print the report as JSON, with the evidence.
    #[arg(long)]
    pub json: bool,
    /// Also write the report as JUnit XML to FILE (one testcase per case;
    /// failures carry the evidence).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Also write a Markdown summary to FILE (for a pull request comment or
    /// $GITHUB_STEP_SUMMARY; appended to when FILE exists).
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
}

impl AgentArgs {
    /// The run's options.
    pub fn options(&self) -> AgentOptions {
        let target = match (&self.name, &self.instance, &self.subject) {
            (Some(n), _, _) => Target::Name(n.clone()),
            (_, Some(i), _) => Target::Instance(i.clone()),
            (_, _, Some(s)) => Target::Subject(s.clone()),
            _ => Target::Any,
        };
        let mut options = AgentOptions::new(target);
        if let Some(p) = &self.prompt {
            options.prompt = p.clone();
        }
        options.answer = self.answer.clone();
        options.inactivity = secs(self.inactivity);
        options.budget = secs(self.budget);
        options
    }
}

/// The caller under test and how (`caller` mode), without the server.
#[derive(Debug, Clone, Args)]
pub struct CallerArgs {
    /// The command template: {subject} {prompt} {server} {agent} {owner} {name} {timeout} {answer}.
    #[arg(long = "run")]
    pub command: String,
    /// The inactivity timeout the caller is told to apply, in seconds.
    #[arg(long, default_value_t = 3.0)]
    pub timeout: f64,
    /// The text the caller must answer queries with.
    #[arg(long, default_value = agent::DEFAULT_ANSWER)]
    pub answer: String,
    /// Only these cases (repeatable), e.g. --only CALL-005.
    #[arg(long)]
    pub only: Vec<String>,
    /// How the report is printed and which report files are written.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// An agent command tested on the three identity topologies of §13.
#[derive(Debug, Clone, Args)]
pub struct TopologiesArgs {
    /// The agent command, run with `sh -c`: {server} {name}; it gets
    /// NATS_URL and the host user's NATS_NKEY (seed file) or NATS_CREDS.
    #[arg(long = "run")]
    pub command: String,
    /// The instance name the command registers.
    #[arg(long)]
    pub name: String,
    /// Print the reports as JSON, with the evidence.
    #[arg(long)]
    pub json: bool,
}

/// How a run ended, for the exit status: 0 compliant, 1 a MUST case
/// failed (2, the run could not happen, is an `Err`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compliance {
    /// No MUST case failed.
    Compliant,
    /// At least one MUST case failed.
    NotCompliant,
}

impl Compliance {
    /// The exit code: 0 or 1.
    pub fn code(self) -> u8 {
        match self {
            Compliance::Compliant => 0,
            Compliance::NotCompliant => 1,
        }
    }
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.max(0.1))
}

/// Prints `report` (a table, or JSON with the evidence) and judges it.
pub fn finish(report: &Report, json: bool) -> Compliance {
    if json {
        println!("{}", report.json());
    } else {
        print!("{}", report.table());
    }
    if report.is_compliant() {
        Compliance::Compliant
    } else {
        Compliance::NotCompliant
    }
}

/// Prints `report` as `output` asks, writes its report files, and judges
/// it.
pub fn finish_with(report: &Report, run: &RunInfo, output: &OutputArgs) -> Result<Compliance> {
    if let Some(path) = &output.junit {
        std::fs::write(path, report.junit(run)).map_err(|source| Error::WriteReport {
            path: path.clone(),
            source,
        })?;
    }
    if let Some(path) = &output.markdown {
        append(path, &report.markdown(run)).map_err(|source| Error::WriteReport {
            path: path.clone(),
            source,
        })?;
    }
    Ok(finish(report, output.json))
}

/// Appends `text` to `path`, creating it: `$GITHUB_STEP_SUMMARY` is
/// shared by every step of a job.
fn append(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    file.write_all(text.as_bytes())
}

/// Tests the agent `args` names on the server at `url`, connecting as
/// `auth` (whose seed signs the §13 cases).
pub async fn run_agent(url: &str, auth: &Auth, args: &AgentArgs) -> Result<Compliance> {
    let (started, clock) = (SystemTime::now(), Instant::now());
    let report = agent::run_as(url, auth, &args.options()).await?;
    let run = RunInfo::new("agent", started, clock.elapsed());
    finish_with(&report, &run, &args.output)
}

/// Tests the caller `args` describes, hosting the scenarios on `server`
/// (a private server when `None`).
pub async fn run_caller(server: Option<String>, args: &CallerArgs) -> Result<Compliance> {
    let mut options = CallerOptions::new(args.command.clone());
    options.server = server;
    options.inactivity = secs(args.timeout);
    options.answer = args.answer.clone();
    options.only = args.only.clone();
    let (started, clock) = (SystemTime::now(), Instant::now());
    let report = caller::run(&options).await?;
    let run = RunInfo::new("caller", started, clock.elapsed());
    finish_with(&report, &run, &args.output)
}

/// Tests the agent command on every identity topology (§13), each on a
/// private server.
pub async fn run_topologies(args: &TopologiesArgs) -> Result<Compliance> {
    let mut options = AgentOptions::new(Target::Name(args.name.clone()));
    options.inactivity = secs(10.0);
    options.budget = secs(40.0);
    let runs = crate::topologies::run_agent(
        &args.command,
        &args.name,
        &nap_testkit::Topology::ALL,
        &options,
    )
    .await?;
    let mut verdict = Compliance::Compliant;
    for run in runs {
        println!(
            "== {} (agent runs as {}, tested as {})",
            run.topology, run.host, run.caller
        );
        if finish(&run.report, args.json) == Compliance::NotCompliant {
            verdict = Compliance::NotCompliant;
        }
    }
    Ok(verdict)
}

/// Serves one deliberately broken agent on `server` until Ctrl-C; `list`
/// (or an unknown flaw) prints the flaws instead. `false` for an unknown
/// flaw.
pub async fn serve_broken(server: &str, flaw: &str) -> Result<bool> {
    let Some(found) = broken::Flaw::ALL.into_iter().find(|f| f.name() == flaw) else {
        for f in broken::Flaw::ALL {
            println!("{:<28} fails {:?}", f.name(), f.expected_failures());
        }
        return Ok(flaw == "list");
    };
    let probe = agent::Probe::connect(server).await?;
    let running = broken::start(probe.client().clone(), found).await?;
    println!(
        "broken agent {} ready: instance {} on {}",
        found.name(),
        running.id(),
        running.prompt_subject()
    );
    let _ = tokio::signal::ctrl_c().await;
    Ok(true)
}

/// A deliberately broken caller (`broken-caller`), for the suite's teeth.
#[derive(Debug, Clone, Args)]
pub struct BrokenCallerArgs {
    /// The flaw, by name (e.g. ack-only-timer); `list` lists them.
    #[arg(long)]
    pub flaw: String,
    /// The NATS server URL.
    #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub server: String,
    /// The prompt subject.
    #[arg(long, default_value = "")]
    pub subject: String,
    /// The inactivity timeout it is told to apply, in seconds.
    #[arg(long, default_value_t = 60.0)]
    pub timeout: f64,
    /// The reply to every query.
    #[arg(long, default_value = agent::DEFAULT_ANSWER)]
    pub answer: String,
    /// The prompt.
    #[arg(default_value = "")]
    pub prompt: String,
}

/// Runs one broken caller; returns its exit code (2 for an unknown flaw,
/// after listing the flaws; `list` lists them and exits 0).
pub async fn run_broken_caller(args: &BrokenCallerArgs) -> Result<u8> {
    use crate::broken_caller::{self, Call, CallerFlaw};
    let Some(flaw) = CallerFlaw::by_name(&args.flaw) else {
        for f in CallerFlaw::ALL {
            println!("{:<30} fails {:?}", f.name(), f.expected_failures());
        }
        return Ok(if args.flaw == "list" { 0 } else { 2 });
    };
    let call = Call {
        server: args.server.clone(),
        subject: args.subject.clone(),
        timeout: secs(args.timeout),
        answer: args.answer.clone(),
        prompt: args.prompt.clone(),
    };
    Ok(broken_caller::call(flaw, &call).await?.code())
}
