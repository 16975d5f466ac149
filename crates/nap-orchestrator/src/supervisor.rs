//! The supervisor: an `LlmAgent` whose tools are the agents a discovery
//! filter finds, kept current as they come and go.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use futures::future::join_all;
use nap_agent::{Agent, AgentError, Request, Responder};
use nap_llm::{InMemory, Llm, LlmAgent, Memory};
use nap_nats::{AgentHandle, Client};
use nap_proto::{DiscoveryFilter, Presence, Transition};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::query::{QueryPolicy, with_caller};
use crate::remote_tool::{CallOptions, Pool, RemoteAgentTool};
use crate::{Error, Result};

/// The supervisor's system prompt when none is set.
pub const DEFAULT_SUPERVISOR_PROMPT: &str = "You are a supervisor coordinating specialised \
agents. Each agent is a tool that takes a prompt and returns its answer. Break the user's \
request into steps, call the agents that fit each step with complete, self-contained prompts \
(they do not see this conversation), pass each agent's output on to the agent that needs it \
next, and answer with the final result only. If an agent fails, say which one and why.";

/// How often the supervisor re-discovers agents when not set otherwise.
pub const DEFAULT_REDISCOVERY: Duration = Duration::from_secs(30);

/// How often instances never seen beating are looked up again.
const VERIFY_UNSEEN: Duration = Duration::from_secs(3);

/// One logical agent the supervisor offers its model as a tool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupervisedAgent {
    /// The tool name the model calls it by.
    pub tool: String,
    /// `metadata.agent` (§3.2).
    pub agent: String,
    /// `metadata.owner` (§3.2).
    pub owner: String,
    /// The instance name (§4.3), when the record has one.
    pub name: Option<String>,
    /// The prompt subject its instances share (§4.3).
    pub subject: String,
    /// The ids of its instances; NATS balances prompts between them
    /// through the `agents` queue group (§3.3).
    pub instances: Vec<String>,
}

type Accept = Arc<dyn Fn(&AgentHandle) -> bool + Send + Sync>;

/// Configures a [`Supervisor`]; see [`Supervisor::builder`].
#[must_use]
pub struct SupervisorBuilder {
    client: Client,
    llm: Arc<dyn Llm>,
    filter: DiscoveryFilter,
    system: String,
    max_rounds: usize,
    memory: Arc<dyn Memory>,
    options: CallOptions,
    rediscover_every: Duration,
    accept: Option<Accept>,
}

impl std::fmt::Debug for SupervisorBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SupervisorBuilder")
            .field("model", &self.llm.model())
            .field("filter", &self.filter)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl SupervisorBuilder {
    /// Only agents matching `filter` become tools. Default: every agent.
    pub fn filter(mut self, filter: DiscoveryFilter) -> Self {
        self.filter = filter;
        self
    }

    /// Only agents for which `accept` returns `true` become tools (on top
    /// of the filter), for rules a [`DiscoveryFilter`] cannot express.
    pub fn accept(mut self, accept: impl Fn(&AgentHandle) -> bool + Send + Sync + 'static) -> Self {
        self.accept = Some(Arc::new(accept));
        self
    }

    /// The model's system prompt. Default [`DEFAULT_SUPERVISOR_PROMPT`].
    pub fn system(mut self, prompt: impl Into<String>) -> Self {
        self.system = prompt.into();
        self
    }

    /// The most tool rounds per prompt. Default [`nap_llm::DEFAULT_MAX_ROUNDS`].
    pub fn max_rounds(mut self, rounds: usize) -> Self {
        self.max_rounds = rounds;
        self
    }

    /// Where conversations are kept, shared by every prompt. Default: in memory.
    pub fn memory_arc(mut self, memory: Arc<dyn Memory>) -> Self {
        self.memory = memory;
        self
    }

    /// How the agents are called (inactivity timeout, questions).
    pub fn call_options(mut self, options: CallOptions) -> Self {
        self.options = options;
        self
    }

    /// Gives up on an agent after this long without any message from it (§6.6).
    pub fn inactivity_timeout(mut self, timeout: Duration) -> Self {
        self.options.inactivity_timeout = timeout;
        self
    }

    /// What to do with the agents' questions (§7). Default: forward them to
    /// whoever prompts the supervisor, when it is served on NATS.
    pub fn query_policy(mut self, policy: QueryPolicy) -> Self {
        self.options.query_policy = policy;
        self
    }

    /// How often to re-discover, besides following heartbeats. Default
    /// [`DEFAULT_REDISCOVERY`].
    pub fn rediscover_every(mut self, every: Duration) -> Self {
        self.rediscover_every = every;
        self
    }

    /// Discovers the agents, then keeps following them in the background
    /// until the last clone of the supervisor is dropped.
    pub async fn start(self) -> Result<Supervisor> {
        let (updates, _) = watch::channel(Vec::new());
        let state = Arc::new(State {
            client: self.client,
            filter: self.filter,
            accept: self.accept,
            options: self.options,
            roster: Mutex::new(Roster::default()),
            updates,
        });
        // Watch before discovering, so no change falls in between (§8.5).
        let changes = state.client.watch();
        state.rediscover().await?;
        let task = tokio::spawn(follow(state.clone(), changes, self.rediscover_every));
        Ok(Supervisor {
            state,
            llm: self.llm,
            system: self.system,
            max_rounds: self.max_rounds,
            memory: self.memory,
            _task: Arc::new(TaskGuard(task)),
        })
    }
}

/// An LLM agent whose tools are the agents a [`DiscoveryFilter`] finds.
///
/// It discovers them at start, then follows heartbeats (§8): an instance
/// that comes online and matches becomes a tool, one that goes offline is
/// withdrawn. An instance not yet seen beating is looked up directly (§4.2)
/// every 3 s and withdrawn when it is gone, and a periodic re-discovery
/// catches the rest. The instances of
/// one logical agent (the same prompt subject) are one tool; NATS balances
/// calls between them through the `agents` queue group (§3.3). The tool
/// name is the instance name (`researcher`), or `owner_name` when two
/// agents share a name.
///
/// A `Supervisor` is an [`Agent`]: serve it with `AgentService` and it
/// streams its model's answer, a `tool:NAME` status when it calls an agent
/// and `done:NAME` / `failed:NAME` when the call ends (§6.4); questions of
/// the agents it calls are forwarded to its caller ([`QueryPolicy`]). It
/// never calls its own instance.
///
/// Clones share the roster and the background task.
#[derive(Clone)]
pub struct Supervisor {
    state: Arc<State>,
    llm: Arc<dyn Llm>,
    system: String,
    max_rounds: usize,
    memory: Arc<dyn Memory>,
    _task: Arc<TaskGuard>,
}

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor")
            .field("model", &self.llm.model())
            .field("agents", &self.agents())
            .finish_non_exhaustive()
    }
}

impl Supervisor {
    /// Starts configuring a supervisor that calls agents through `client`
    /// and thinks with `llm`.
    pub fn builder(client: Client, llm: Arc<dyn Llm>) -> SupervisorBuilder {
        SupervisorBuilder {
            client,
            llm,
            filter: DiscoveryFilter::any(),
            system: DEFAULT_SUPERVISOR_PROMPT.to_owned(),
            max_rounds: nap_llm::DEFAULT_MAX_ROUNDS,
            memory: Arc::new(InMemory::default()),
            options: CallOptions::default(),
            rediscover_every: DEFAULT_REDISCOVERY,
            accept: None,
        }
    }

    /// The agents offered as tools right now, by tool name.
    pub fn agents(&self) -> Vec<SupervisedAgent> {
        self.state.snapshot()
    }

    /// The roster, updated whenever an agent or an instance comes or goes.
    pub fn updates(&self) -> watch::Receiver<Vec<SupervisedAgent>> {
        self.state.updates.subscribe()
    }

    /// Waits up to `timeout` until `ready` holds for the roster; whether it did.
    pub async fn wait_for(
        &self,
        ready: impl Fn(&[SupervisedAgent]) -> bool,
        timeout: Duration,
    ) -> bool {
        let mut updates = self.updates();
        let wait = updates.wait_for(|agents| ready(agents));
        matches!(tokio::time::timeout(timeout, wait).await, Ok(Ok(_)))
    }

    /// Discovers again now, adding new agents and withdrawing instances
    /// that neither answer discovery nor beat.
    pub async fn refresh(&self) -> Result<()> {
        self.state.rediscover().await
    }

    /// The `LlmAgent` a prompt runs with: the current tools, the shared
    /// memory.
    pub fn llm_agent(&self) -> LlmAgent {
        let mut builder = LlmAgent::builder_arc(self.llm.clone())
            .system(self.system.clone())
            .max_rounds(self.max_rounds)
            .memory_arc(self.memory.clone());
        for tool in self.state.tools() {
            builder = builder.tool_arc(tool);
        }
        builder.build()
    }
}

#[async_trait]
impl Agent for Supervisor {
    async fn prompt(&self, request: Request, responder: Responder) -> Result<(), AgentError> {
        // Never call ourselves, whatever the filter says.
        let own = &request.instance.instance_id;
        if !own.is_empty() {
            self.state.ignore(own);
        }
        let agent = self.llm_agent();
        if agent.tools().is_empty() {
            tracing::warn!("the supervisor has no agents to call");
        }
        with_caller(responder.clone(), agent.prompt(request, responder)).await
    }
}

/// Aborts the background task when the last supervisor clone goes.
struct TaskGuard(JoinHandle<()>);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One logical agent: the instances behind one prompt subject.
struct Slot {
    tool_name: String,
    agent: String,
    owner: String,
    name: Option<String>,
    pool: Arc<Pool>,
    tool: Arc<RemoteAgentTool>,
}

#[derive(Default)]
struct Roster {
    /// By prompt subject.
    slots: BTreeMap<String, Slot>,
    /// Instances never to offer (the supervisor's own).
    ignored: HashSet<String>,
}

impl Roster {
    fn knows(&self, instance_id: &str) -> bool {
        self.slots
            .values()
            .any(|s| s.pool.ids().iter().any(|id| id == instance_id))
    }

    /// A tool name for `handle` no other slot uses.
    fn tool_name_for(&self, handle: &AgentHandle) -> String {
        let name = handle.name().unwrap_or(handle.agent());
        let candidates = [
            sanitize(name),
            sanitize(&format!("{}_{name}", handle.owner())),
            sanitize(&format!("{}_{}_{name}", handle.agent(), handle.owner())),
        ];
        let taken = |n: &str| self.slots.values().any(|s| s.tool_name == n);
        if let Some(free) = candidates.iter().find(|c| !taken(c)) {
            return free.clone();
        }
        let base = &candidates[2];
        (2..)
            .map(|i| format!("{base}_{i}"))
            .find(|c| !taken(c))
            .unwrap_or_else(|| base.clone()) // ok: the range is unbounded
    }
}

/// A tool name from any text: letters, digits, `_` and `-`, at most 64.
fn sanitize(text: &str) -> String {
    let mut out: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    if out.is_empty() {
        out.push_str("agent");
    }
    out
}

struct State {
    client: Client,
    filter: DiscoveryFilter,
    accept: Option<Accept>,
    options: CallOptions,
    roster: Mutex<Roster>,
    updates: watch::Sender<Vec<SupervisedAgent>>,
}

impl State {
    fn roster(&self) -> MutexGuard<'_, Roster> {
        // Every change is made without awaiting and leaves the roster whole.
        self.roster
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn snapshot_of(roster: &Roster) -> Vec<SupervisedAgent> {
        let mut agents: Vec<SupervisedAgent> = roster
            .slots
            .iter()
            .map(|(subject, slot)| SupervisedAgent {
                tool: slot.tool_name.clone(),
                agent: slot.agent.clone(),
                owner: slot.owner.clone(),
                name: slot.name.clone(),
                subject: subject.clone(),
                instances: slot.pool.ids(),
            })
            .collect();
        agents.sort_by(|a, b| a.tool.cmp(&b.tool));
        agents
    }

    fn snapshot(&self) -> Vec<SupervisedAgent> {
        Self::snapshot_of(&self.roster())
    }

    fn publish(&self, roster: &Roster) {
        self.updates.send_replace(Self::snapshot_of(roster));
    }

    fn tools(&self) -> Vec<Arc<RemoteAgentTool>> {
        self.roster()
            .slots
            .values()
            .filter(|s| !s.pool.is_empty())
            .map(|s| s.tool.clone())
            .collect()
    }

    fn accepts(&self, handle: &AgentHandle) -> bool {
        self.accept.as_ref().is_none_or(|accept| accept(handle))
    }

    /// Adds an instance: to its agent's tool, or as a new tool.
    fn add(&self, handle: AgentHandle) {
        let mut roster = self.roster();
        if roster.ignored.contains(handle.id()) || !self.accepts(&handle) {
            return;
        }
        let subject = handle.prompt_subject().to_owned();
        if let Some(slot) = roster.slots.get(&subject) {
            if slot.pool.insert(handle.clone()) {
                tracing::info!(tool = %slot.tool_name, instance = %handle.id(), "another instance of an agent joined");
                self.publish(&roster);
            }
            return;
        }
        let tool_name = roster.tool_name_for(&handle);
        let description = describe(&handle);
        let pool = Arc::new(Pool::new(vec![handle.clone()]));
        let tool = Arc::new(RemoteAgentTool::from_pool(
            tool_name.clone(),
            description,
            pool.clone(),
            self.options.clone(),
        ));
        tracing::info!(tool = %tool_name, instance = %handle.id(), %subject, "agent added as a tool");
        roster.slots.insert(
            subject,
            Slot {
                tool_name,
                agent: handle.agent().to_owned(),
                owner: handle.owner().to_owned(),
                name: handle.name().map(str::to_owned),
                pool,
                tool,
            },
        );
        self.publish(&roster);
    }

    /// Removes an instance; its tool goes with its last instance.
    fn remove(&self, instance_id: &str) {
        let mut roster = self.roster();
        let mut changed = false;
        roster.slots.retain(|_, slot| {
            if slot.pool.remove(instance_id) {
                changed = true;
                tracing::info!(tool = %slot.tool_name, instance = %instance_id, "agent instance withdrawn");
            }
            !slot.pool.is_empty()
        });
        if changed {
            self.publish(&roster);
        }
    }

    fn ignore(&self, instance_id: &str) {
        let newly = self.roster().ignored.insert(instance_id.to_owned());
        if newly {
            self.remove(instance_id);
        }
    }

    async fn rediscover(&self) -> Result<()> {
        let found = self
            .client
            .discover(self.filter.clone())
            .await
            .map_err(Error::Discovery)?;
        let found_ids: HashSet<String> = found.iter().map(|h| h.id().to_owned()).collect();
        for handle in found {
            if self.client.presence(handle.id()) != Some(Presence::Offline) {
                self.add(handle);
            }
        }
        // Known instances that neither answered nor beat are gone.
        let known: Vec<String> = self
            .roster()
            .slots
            .values()
            .flat_map(|s| s.pool.ids())
            .collect();
        for id in known {
            if !found_ids.contains(&id) && !self.client.is_online(&id) {
                self.remove(&id);
            }
        }
        Ok(())
    }

    /// Checks the instances never seen beating (their last beat came before
    /// we listened, and they may stop before the next one): one that no
    /// longer answers its direct lookup (§4.2) is withdrawn.
    async fn verify_unseen(&self) {
        let unseen: Vec<String> = self
            .roster()
            .slots
            .values()
            .flat_map(|s| s.pool.ids())
            .filter(|id| self.client.presence(id).is_none())
            .collect();
        let lookups = join_all(unseen.iter().map(|id| self.client.lookup(id))).await;
        for (id, lookup) in unseen.iter().zip(lookups) {
            if let Err(nap_nats::Error::NotFound { .. }) = lookup {
                self.remove(id);
            }
        }
    }

    async fn on_transition(&self, transition: Transition) {
        let id = &transition.instance_id;
        match transition.presence {
            Presence::Offline => self.remove(id),
            Presence::Online => {
                if self.roster().knows(id) || !self.may_match(&transition) {
                    return;
                }
                match self.client.lookup(id).await {
                    Ok(handle) if self.filter.check(handle.info()).is_ok() => self.add(handle),
                    Ok(_) => tracing::debug!(instance = %id, "new agent does not match the filter"),
                    Err(error) => {
                        tracing::debug!(instance = %id, %error, "new agent could not be looked up")
                    }
                }
            }
        }
    }

    /// Whether the beat can come from a matching instance (saves a lookup).
    fn may_match(&self, transition: &Transition) -> bool {
        let hb = &transition.heartbeat;
        self.filter.owner.as_ref().is_none_or(|o| *o == hb.owner)
            && self
                .filter
                .session
                .as_ref()
                .is_none_or(|s| hb.session.as_ref() == Some(s))
            && self
                .filter
                .instance_id
                .as_ref()
                .is_none_or(|i| *i == hb.instance_id)
    }
}

/// What the model reads about an agent.
fn describe(handle: &AgentHandle) -> String {
    let description = handle.info().description.trim();
    let name = handle.name().unwrap_or("-");
    let who = format!(
        "(agent `{}`, owner `{}`, name `{name}`)",
        handle.agent(),
        handle.owner()
    );
    if description.is_empty() {
        format!("A remote agent {who}. Send it a complete, self-contained prompt.")
    } else {
        format!("{description} {who}. Send it a complete, self-contained prompt.")
    }
}

/// Follows presence changes, checks instances never seen beating, and
/// re-discovers periodically.
async fn follow(state: Arc<State>, mut changes: nap_nats::client::Watch, every: Duration) {
    let start = tokio::time::Instant::now();
    let mut rediscovery = tokio::time::interval_at(start + every, every);
    rediscovery.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut verification = tokio::time::interval_at(start + VERIFY_UNSEEN, VERIFY_UNSEEN);
    verification.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            change = changes.next() => match change {
                Some(transition) => state.on_transition(transition).await,
                None => break,
            },
            _ = verification.tick() => state.verify_unseen().await,
            _ = rediscovery.tick() => {
                if let Err(error) = state.rediscover().await {
                    tracing::warn!(%error, "re-discovery failed");
                }
            }
        }
    }
    tracing::debug!("supervisor stopped following agents");
}
