//! The demo of `cargo xtask demo`: three specialised agents (researcher,
//! writer, editor), each its own NATS service, and a supervisor whose model
//! discovers them and prompts them through the agent tools, passing each
//! one's output on to the next.
//!
//! The binaries `researcher`, `writer`, `editor`, `supervisor` and `demo`
//! are thin wrappers around this module; they print, this module writes to
//! the writer it is given.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use nap_llm::{Llm, LlmAgent, Offline};
use nap_nats::{AgentHandle, AgentService, Client, Event, PromptOptions, RunningAgent};
use nap_nats::{OutgoingPrompt, PromptInterceptor, StreamEnd, StreamInfo};
use nap_orchestrator::Supervisor;
use nap_proto::DiscoveryFilter;
use tokio::sync::mpsc;

/// The boxed error of the demo functions.
pub type DemoError = Box<dyn std::error::Error + Send + Sync>;

/// The owner token of the demo's agents (§2).
pub const OWNER: &str = "demo";

/// `metadata.agent` of the three workers.
pub const WORKER_AGENT: &str = "worker";

/// `metadata.agent` of the supervisor.
pub const SUPERVISOR_AGENT: &str = "supervisor";

/// The topic when none is given.
pub const DEFAULT_TOPIC: &str = "quantum computing";

/// The supervisor's system prompt.
pub const SUPERVISOR_PROMPT: &str = "You are the editor-in-chief of a small newsroom of \
agents on NATS, reached through the agent tools. Find them with discover_agents: a \
researcher, a writer and an editor. For the user's topic: first prompt the researcher for \
notes on the topic; then the writer with the topic and the complete notes; then the editor \
with the complete draft. Each step needs the one before, so run one call at a time; start \
each detached (wait: false) and collect it with wait_agent. Pass outputs on in full: the \
agents do not see this conversation. If an agent asks a question, answer it with \
answer_agent. Finally answer with the editor's article only, without comments. If an agent \
fails, say which one and why.";

/// One of the demo's three specialised agents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Collects facts about a topic.
    Researcher,
    /// Turns notes into an article.
    Writer,
    /// Polishes an article.
    Editor,
}

impl Role {
    /// All three, in the order the supervisor should call them.
    pub const ALL: [Role; 3] = [Role::Researcher, Role::Writer, Role::Editor];

    /// The instance name token (§2), also the supervisor's tool name.
    pub fn name(self) -> &'static str {
        match self {
            Role::Researcher => "researcher",
            Role::Writer => "writer",
            Role::Editor => "editor",
        }
    }

    /// The service description (§3.1) the supervisor's model reads.
    pub fn description(self) -> &'static str {
        match self {
            Role::Researcher => {
                "Researcher: given a topic, returns concise notes (key facts, recent developments, open questions)."
            }
            Role::Writer => {
                "Writer: given a topic and research notes, returns a clear article of about 300 words with a title."
            }
            Role::Editor => {
                "Editor: given a draft article, returns the corrected, tightened final article in Markdown."
            }
        }
    }

    /// The agent's system prompt.
    pub fn system_prompt(self) -> &'static str {
        match self {
            Role::Researcher => {
                "You are a meticulous researcher. Given a topic, list the key facts, recent \
                 developments and open questions as concise bullet points. No prose, no article."
            }
            Role::Writer => {
                "You are a science writer. Given a topic and research notes, write a clear, \
                 engaging article of about 300 words with a title, using only the facts in the notes."
            }
            Role::Editor => {
                "You are a demanding editor. Given a draft article, fix errors, tighten the prose, \
                 keep the facts, and return only the final article in Markdown."
            }
        }
    }
}

/// The model of the demo's agents: `nap_llm::from_env()`. The offline
/// model streams with a short pause per word, so that the demo can be
/// watched.
pub fn model() -> Result<Arc<dyn Llm>, DemoError> {
    let llm = nap_llm::from_env()?;
    if llm.model() == Offline::MODEL {
        return Ok(Arc::new(
            Offline::new().with_delay(Duration::from_millis(12)),
        ));
    }
    Ok(llm)
}

/// Serves `role` as `worker`/`owner`/`name` on `nats`.
pub async fn start_worker(
    nats: async_nats::Client,
    llm: Arc<dyn Llm>,
    role: Role,
    owner: &str,
    name: &str,
) -> Result<RunningAgent, DemoError> {
    let model = llm.model().to_owned();
    let agent = LlmAgent::builder_arc(llm)
        .system(role.system_prompt())
        .build();
    let running = AgentService::builder(WORKER_AGENT, owner, name)
        .description(role.description())
        .metadata("model", model)
        .heartbeat_interval(Duration::from_secs(5))
        .start(nats, agent)
        .await?;
    Ok(running)
}

/// The workers of `owner`, as the supervisor may discover them.
pub fn workers(owner: &str) -> DiscoveryFilter {
    DiscoveryFilter {
        agent: Some(WORKER_AGENT.into()),
        owner: Some(owner.into()),
        ..DiscoveryFilter::any()
    }
}

/// A supervisor whose model reaches the workers of `owner` through the
/// agent tools of `client`.
pub fn start_supervisor(
    client: Client,
    llm: Arc<dyn Llm>,
    owner: &str,
) -> Result<Supervisor, DemoError> {
    let supervisor = Supervisor::builder(client, llm)
        .filter(workers(owner))
        .system(SUPERVISOR_PROMPT)
        .build()?;
    Ok(supervisor)
}

/// The names of the workers of `owner` that answer discovery, sorted.
pub async fn discover_workers(client: &Client, owner: &str) -> Result<Vec<String>, DemoError> {
    let mut names: Vec<String> = client
        .discover(workers(owner))
        .await?
        .iter()
        .map(|h| h.name().unwrap_or(h.agent()).to_owned())
        .collect();
    names.sort();
    names.dedup();
    Ok(names)
}

/// Waits up to `timeout` until every role has a worker of `owner`; the
/// names found last.
pub async fn wait_for_workers(
    client: &Client,
    owner: &str,
    timeout: Duration,
) -> Result<Vec<String>, DemoError> {
    let deadline = Instant::now() + timeout;
    loop {
        let names = discover_workers(client, owner).await?;
        let all = Role::ALL
            .iter()
            .all(|r| names.iter().any(|n| n == r.name()));
        if all || Instant::now() >= deadline {
            return Ok(names);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// One agent's turn, as the supervisor's client saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Turn {
    /// The supervisor prompted `agent` with `prompt`.
    Prompted {
        /// The agent's instance name.
        agent: String,
        /// The prompt's text.
        prompt: String,
    },
    /// `agent`'s reply ended.
    Replied {
        /// The agent's instance name.
        agent: String,
        /// The reply's text.
        reply: String,
        /// Why it ended early, when it did.
        failure: Option<String>,
    },
}

/// A prompt interceptor for the supervisor's client that reports every
/// turn of the agents it prompts, with their input and their output.
#[derive(Debug)]
pub struct TurnLog {
    turns: mpsc::UnboundedSender<Turn>,
    /// Reply text so far, by reply inbox.
    open: Mutex<HashMap<String, (String, String)>>,
}

impl TurnLog {
    /// A log and the receiver of its turns.
    pub fn new() -> (TurnLog, mpsc::UnboundedReceiver<Turn>) {
        let (turns, rx) = mpsc::unbounded_channel();
        let log = TurnLog {
            turns,
            open: Mutex::new(HashMap::new()),
        };
        (log, rx)
    }

    fn open(&self) -> std::sync::MutexGuard<'_, HashMap<String, (String, String)>> {
        self.open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait::async_trait]
impl PromptInterceptor for TurnLog {
    async fn before_prompt(
        &self,
        prompt: &mut OutgoingPrompt<'_>,
    ) -> Result<(), nap_nats::InterceptError> {
        let agent = prompt
            .agent()
            .name()
            .unwrap_or(prompt.agent().agent())
            .to_owned();
        self.open().insert(
            prompt.stream().inbox().to_owned(),
            (agent.clone(), String::new()),
        );
        let _ = self.turns.send(Turn::Prompted {
            agent,
            prompt: prompt.envelope().prompt.clone(),
        });
        Ok(())
    }

    fn on_event(&self, stream: &StreamInfo, event: &Event) {
        if let Event::Response(data) = event
            && let Some((_, text)) = self.open().get_mut(stream.inbox())
        {
            text.push_str(data.text());
        }
    }

    fn on_end(&self, stream: &StreamInfo, end: StreamEnd<'_>) {
        let Some((agent, reply)) = self.open().remove(stream.inbox()) else {
            return;
        };
        let failure = match end {
            StreamEnd::Complete => None,
            StreamEnd::Failed(error) => Some(error.to_string()),
            StreamEnd::Dropped => Some("cancelled".to_owned()),
            _ => Some("ended".to_owned()),
        };
        let _ = self.turns.send(Turn::Replied {
            agent,
            reply,
            failure,
        });
    }
}

/// `text` on one line, at most `max` characters.
pub fn one_line(text: &str, max: usize) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max {
        return flat;
    }
    let cut: String = flat.chars().take(max.saturating_sub(1)).collect();
    format!("{cut}…")
}

/// Serves `supervisor` as `supervisor`/`owner`/`name`.
pub async fn serve_supervisor(
    nats: async_nats::Client,
    supervisor: Supervisor,
    owner: &str,
    name: &str,
) -> Result<RunningAgent, DemoError> {
    let running = AgentService::builder(SUPERVISOR_AGENT, owner, name)
        .description("Supervisor: writes an article on a topic with the researcher, writer and editor agents.")
        .heartbeat_interval(Duration::from_secs(5))
        .start(nats, supervisor)
        .await?;
    Ok(running)
}

/// How one article run went.
#[derive(Debug, Clone, Default)]
pub struct RunReport {
    /// The agents that started working, in order.
    pub started: Vec<String>,
    /// The agents that failed.
    pub failed: Vec<String>,
    /// The final text.
    pub text: String,
}

/// How much of a prompt or a reply a turn line shows.
const SHOWN: usize = 150;

/// Prompts the served supervisor with `topic` and writes, as it happens,
/// each agent's turn (what it was given and what it gave back, from
/// `turns`) and the answer streaming in.
pub async fn write_article(
    supervisor: &AgentHandle,
    topic: &str,
    turns: &mut mpsc::UnboundedReceiver<Turn>,
    out: &mut impl Write,
) -> Result<RunReport, DemoError> {
    let prompt = format!("Write a short article about {topic}.");
    writeln!(out, "→ supervisor is working on {prompt:?}")?;
    out.flush()?;
    let options = PromptOptions::inactivity_timeout(Duration::from_secs(120));
    let mut stream = supervisor.prompt_with(prompt, options).await?;
    let mut report = RunReport::default();
    let mut in_text = false;
    loop {
        tokio::select! {
            // Turns first: they all happen before the supervisor answers.
            biased;
            Some(turn) = turns.recv() => {
                if in_text {
                    writeln!(out)?;
                    in_text = false;
                }
                match turn {
                    Turn::Prompted { agent, prompt } => {
                        writeln!(out, "→ {agent} is working")?;
                        writeln!(out, "    given:    {}", one_line(&prompt, SHOWN))?;
                        report.started.push(agent);
                    }
                    Turn::Replied { agent, reply, failure: None } => {
                        writeln!(out, "✓ {agent} finished")?;
                        writeln!(out, "    answered: {}", one_line(&reply, SHOWN))?;
                    }
                    Turn::Replied { agent, failure: Some(why), .. } => {
                        writeln!(out, "✗ {agent} failed: {why}")?;
                        report.failed.push(agent);
                    }
                }
            }
            event = stream.next() => {
                let Some(event) = event else { break };
                match event? {
                    Event::Response(data) => {
                        if !in_text {
                            writeln!(out, "\n── supervisor ──")?;
                            in_text = true;
                        }
                        write!(out, "{}", data.text())?;
                        report.text.push_str(data.text());
                    }
                    Event::Query(query) => {
                        // The demo runs unattended: say so, and let the agent decide.
                        writeln!(out, "? {} (answered: decide yourself)", query.prompt())?;
                        query
                            .answer("Decide yourself; nobody is at the keyboard.")
                            .await?;
                    }
                    Event::Violation(violation) => {
                        return Err(nap_nats::Error::Protocol(violation).into());
                    }
                    Event::End => break,
                    _ => {}
                }
            }
        }
        out.flush()?;
    }
    if in_text {
        writeln!(out, "\n────────────────")?;
    }
    Ok(report)
}

/// Connects to `url` if a server answers within two seconds.
pub async fn try_connect(url: &str) -> Option<async_nats::Client> {
    let connect = async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(2))
        .connect(url);
    match tokio::time::timeout(Duration::from_secs(3), connect).await {
        Ok(Ok(nats)) => Some(nats),
        Ok(Err(error)) => {
            tracing::debug!(%url, %error, "no NATS server answered");
            None
        }
        Err(_) => None,
    }
}

/// The demo's options.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// The NATS server to use; must answer. `None`: `$NATS_URL` if it
    /// answers, else a private server.
    pub server: Option<String>,
    /// The topic of the article.
    pub topic: String,
}

/// Closes the demo's connection before its server stops, so that the
/// server going away is not a lost connection: drains it (everything
/// published goes out, then the client closes) and waits, briefly, until
/// it is closed.
async fn close(nats: async_nats::Client) {
    if nats.drain().await.is_err() {
        return;
    }
    let closed = async {
        // Once the connection is closed, the client accepts no more commands.
        while nats.flush().await.is_ok() {
            tokio::task::yield_now().await;
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), closed).await;
}

/// Runs the whole demo, writing what happens to `out`; cleans up what it
/// started. Fails when the supervisor could not write the article.
pub async fn run(options: DemoOptions, out: &mut impl Write) -> Result<RunReport, DemoError> {
    let started_at = Instant::now();
    writeln!(out, "nap demo: an article on {:?}", options.topic)?;

    // The server: the one given, else $NATS_URL if it answers, else our own.
    let mut private = None;
    let (nats, where_) = match &options.server {
        Some(url) => match try_connect(url).await {
            Some(nats) => (nats, format!("{url} (given)")),
            None => return Err(format!("no NATS server answers at {url}").into()),
        },
        None => {
            let shared = match std::env::var("NATS_URL") {
                Ok(url) if !url.is_empty() => try_connect(&url).await.map(|n| (n, url)),
                _ => None,
            };
            match shared {
                Some((nats, url)) => (nats, format!("{url} ($NATS_URL)")),
                None => {
                    let server = tokio::task::spawn_blocking(nap_testkit::NatsServer::start)
                        .await?
                        .map_err(|e| {
                            format!(
                                "cannot start a private nats-server ({e}); run `cargo xtask setup`"
                            )
                        })?;
                    let url = server.url();
                    private = Some(server);
                    let nats = nap_nats::connect_options().connect(&url).await?;
                    (
                        nats,
                        format!("{url} (private nats-server, stopped at the end)"),
                    )
                }
            }
        }
    };
    let llm = model()?;
    writeln!(out, "  NATS:  {where_}")?;
    let hint = if llm.model() == Offline::MODEL {
        " (deterministic, no network; set NAP_LLM and a key for a real model)"
    } else {
        ""
    };
    writeln!(out, "  model: {}{hint}", llm.model())?;

    // Three specialised agents, each its own NATS service.
    let mut agents = Vec::new();
    for role in Role::ALL {
        let running = start_worker(nats.clone(), llm.clone(), role, OWNER, role.name()).await?;
        writeln!(
            out,
            "  agent {:<10} instance {} on {}",
            role.name(),
            running.id(),
            running.prompt_subject()
        )?;
        agents.push(running);
    }

    // The supervisor reaches them through the agent tools of a client
    // whose turns the demo shows; it is served as an agent itself.
    let client = Client::new(nats.clone()).await?;
    let (log, mut turns) = TurnLog::new();
    let tools_client = Client::builder(nats.clone())
        .interceptor(log)
        .build()
        .await?;
    let supervisor = start_supervisor(tools_client, llm, OWNER)?;
    let found = wait_for_workers(&client, OWNER, Duration::from_secs(10)).await?;
    writeln!(out, "  workers on NATS: {}", found.join(", "))?;
    let name = format!("supervisor-{}", std::process::id());
    let served = serve_supervisor(nats.clone(), supervisor.clone(), OWNER, &name).await?;
    let handle = client.lookup(served.id()).await?;
    writeln!(out)?;
    out.flush()?;

    let outcome = write_article(&handle, &options.topic, &mut turns, out).await;

    // Clean up what we started, whatever happened.
    served.stop().await;
    for running in agents {
        running.stop().await;
    }
    drop(supervisor);
    drop(client);
    close(nats).await;
    let had_private = private.is_some();
    drop(private);
    let report = outcome?;
    writeln!(
        out,
        "done in {:.1}s: {} agent turn(s), {} failure(s); stopped 4 agents{}.",
        started_at.elapsed().as_secs_f64(),
        report.started.len(),
        report.failed.len(),
        if had_private {
            " and the private nats-server"
        } else {
            ""
        }
    )?;
    if report.text.trim().is_empty() {
        return Err("the supervisor answered no text".into());
    }
    Ok(report)
}

/// The flags of the `researcher`, `writer` and `editor` binaries.
#[derive(Debug, clap::Parser)]
pub struct WorkerArgs {
    /// NATS server URL [default: $NATS_URL, then nats://127.0.0.1:4222]
    #[arg(long)]
    pub server: Option<String>,
    /// The owner token (§2); the supervisor looks for workers of this owner.
    #[arg(long, default_value = OWNER)]
    pub owner: String,
    /// The instance name token (§2) [default: the role's name]. Instances
    /// with the same name share the load.
    #[arg(long)]
    pub name: Option<String>,
}

/// The body of the worker binaries: serves `role` until Ctrl-C, after a
/// ready line on `out`.
pub async fn worker_main(
    role: Role,
    args: WorkerArgs,
    out: &mut impl Write,
) -> Result<(), DemoError> {
    let url = crate::server_url(args.server);
    let nats = nap_nats::connect_options()
        .connect(&url)
        .await
        .map_err(|e| format!("cannot connect to {url}: {e}"))?;
    let llm = model()?;
    let model_name = llm.model().to_owned();
    let name = args.name.unwrap_or_else(|| role.name().to_owned());
    let running = start_worker(nats, llm, role, &args.owner, &name).await?;
    writeln!(
        out,
        "{} ready: instance {} on {} (model {model_name})",
        role.name(),
        running.id(),
        running.prompt_subject()
    )?;
    out.flush()?;
    // SIGTERM or Ctrl-C: finish what is in flight, then leave.
    nap_nats::shutdown_signal().await?;
    running.stop().await;
    Ok(())
}
