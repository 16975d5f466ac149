//! Agent mode: test a live agent instance on a NATS server.
//!
//! The run subscribes to heartbeats first (§8.5), finds the instance on
//! `$SRV.INFO.agents`, judges its record and discovery, sends the request
//! cases, judges every recorded stream, asks `status`, then waits (within
//! the budget) for enough heartbeats to judge them.

pub mod identity;
pub mod liveness;
pub mod probe;
pub mod registration;
pub mod requests;
pub mod streams;

use std::time::{Duration, Instant};

pub use probe::{Auth, Exchange, ExchangeOptions, Probe};
pub use registration::Target;

use crate::catalogue::AGENT_CASES;
use crate::error::Result;
use crate::report::{Findings, Report};

/// The default prompt of the accepted-request cases.
pub const DEFAULT_PROMPT: &str = "conformance probe: please answer briefly";

/// The default answer to mid-stream queries.
pub const DEFAULT_ANSWER: &str = "yes";

/// How to test an agent.
#[derive(Debug, Clone)]
pub struct AgentOptions {
    /// Which instance.
    pub target: Target,
    /// The prompt text for the accepted-request cases (agents that need a
    /// real question get one with `--prompt`).
    pub prompt: String,
    /// The answer to mid-stream queries.
    pub answer: String,
    /// The silence after which a stream counts as lost (§6.6).
    pub inactivity: Duration,
    /// The time budget of the run: bounds each exchange and the heartbeat
    /// observation window.
    pub budget: Duration,
    /// How long to collect `$SRV.INFO.agents` replies.
    pub discovery_wait: Duration,
    /// The key the suite signs with when the agent implements §13; a
    /// fresh one when `None`.
    pub signer: Option<std::sync::Arc<nap_proto::identity::SenderSigner>>,
}

impl AgentOptions {
    /// Defaults for `target`: 30 s inactivity, 90 s budget.
    pub fn new(target: Target) -> Self {
        AgentOptions {
            target,
            prompt: DEFAULT_PROMPT.to_owned(),
            answer: DEFAULT_ANSWER.to_owned(),
            inactivity: Duration::from_secs(30),
            budget: Duration::from_secs(90),
            discovery_wait: Duration::from_millis(1000),
            signer: None,
        }
    }
}

/// Connects to `url` and tests the agent.
pub async fn run(url: &str, options: &AgentOptions) -> Result<Report> {
    let probe = Probe::connect(url).await?;
    run_with(&probe, options).await
}

/// Connects to `url` as `auth` and tests the agent; with a seed, the §13
/// cases sign with it instead of a fresh key.
pub async fn run_as(url: &str, auth: &Auth, options: &AgentOptions) -> Result<Report> {
    let probe = Probe::connect_as(url, auth).await?;
    let mut options = options.clone();
    if let Some(signer) = probe.signer() {
        options.signer = Some(signer.clone());
    }
    run_with(&Probe::new(probe.client().clone()), &options).await
}

/// Tests the agent over an existing connection.
pub async fn run_with(probe: &Probe, options: &AgentOptions) -> Result<Report> {
    let started = Instant::now();
    let watcher = liveness::Watcher::start(probe).await?;
    let subject = registration::find(probe, &options.target, options.discovery_wait).await?;
    tracing::info!(id = %subject.id, prompt = ?subject.prompt_subject, "testing agent");
    let mut f = Findings::new();
    registration::judge_record(&subject, &mut f);
    registration::judge_discovery(probe, &subject, &mut f).await?;

    let exchange = ExchangeOptions {
        inactivity: options.inactivity,
        budget: options.budget,
        answer: Some(options.answer.clone()),
    };
    // §13.13: an agent that declares min_sender_trust implements §13, and
    // every request to it is signed, as a §13 caller's would be.
    let signing;
    let probe = match identity::declared(&subject) {
        identity::Declared::Nothing => probe,
        identity::Declared::Value(_) => {
            match options.signer.clone().or_else(identity::suite_signer) {
                Some(signer) => {
                    signing = probe.clone().with_signer(signer);
                    &signing
                }
                None => probe,
            }
        }
    };
    let mut exchanges = requests::run(probe, &subject, &options.prompt, &exchange, &mut f).await?;
    exchanges.extend(identity::run(probe, &subject, &options.prompt, &exchange, &mut f).await?);
    streams::judge(&exchanges, &mut f);

    let interval = liveness::judge_status(probe, &subject, &mut f).await?;
    liveness::judge_heartbeats(
        &watcher,
        &subject,
        interval,
        started,
        options.budget,
        &mut f,
    )
    .await;
    identity::judge_heartbeats(&watcher, &subject, &mut f);

    let target = format!(
        "agent {} ({})",
        subject
            .prompt_subject
            .as_deref()
            .unwrap_or("(no prompt endpoint)"),
        subject.id
    );
    Ok(f.finish(target, AGENT_CASES))
}
