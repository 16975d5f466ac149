//! The supervisor: an `LlmAgent` whose tools are the agent tools
//! ([`AgentTools`]): it discovers the agents there are when its model asks,
//! prompts them blocking or detached, answers their questions and cancels
//! what it no longer needs, all within the prompt it is serving.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use nap_agent::{Agent, AgentError, Request, Responder};
use nap_llm::{InMemory, Llm, LlmAgent, Memory, Tool, ToolError};
use nap_nats::Client;
use nap_proto::Progress;
use nap_proto::{AgentSubject, DiscoveryFilter};
use serde_json::Value;

use crate::agent_tools::{
    ANSWER_AGENT, AgentTools, AgentToolsBuilder, AgentToolsError, BLOCKING_TOOLS, CANCEL_AGENT,
    DISCOVER_AGENTS, PROMPT_AGENT, WAIT_AGENT,
};

/// The supervisor's system prompt when none is set.
pub const DEFAULT_SUPERVISOR_PROMPT: &str = "You coordinate specialised agents on a NATS \
system. Find them with discover_agents and read their descriptions. Break the user's request \
into steps and give each step to the agent that fits it, with prompt_agent and a complete, \
self-contained prompt: the agents do not see this conversation. Pass each agent's output on \
in full to the agent that needs it next. Steps that do not depend on each other may run at \
once as detached calls (wait: false), collected with wait_agent. When an agent asks a \
question, answer it with answer_agent. Answer the user with the final result only; if an \
agent fails, say which one and why.";

/// Configures a [`Supervisor`]; see [`Supervisor::builder`].
#[must_use]
pub struct SupervisorBuilder {
    tools: AgentToolsBuilder,
    llm: Arc<dyn Llm>,
    system: String,
    max_rounds: usize,
    memory: Arc<dyn Memory>,
}

impl std::fmt::Debug for SupervisorBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SupervisorBuilder")
            .field("model", &self.llm.model())
            .field("tools", &self.tools)
            .finish_non_exhaustive()
    }
}

impl SupervisorBuilder {
    /// Only agents matching `filter` can be discovered and prompted.
    /// Default: every agent.
    pub fn filter(mut self, filter: DiscoveryFilter) -> Self {
        self.tools = self.tools.filter(filter);
        self
    }

    /// Offers the model only the blocking tools ([`BLOCKING_TOOLS`]):
    /// fewer definitions to read on every model call, every call waited for.
    pub fn blocking_only(mut self) -> Self {
        self.tools = self.tools.tools(BLOCKING_TOOLS);
        self
    }

    /// Gives up on an agent after this long without any message from it
    /// (§6.6).
    pub fn inactivity_timeout(mut self, timeout: Duration) -> Self {
        self.tools = self.tools.inactivity_timeout(timeout);
        self
    }

    /// Any other setting of the agent tools (limits, attachment roots,
    /// extensions, …).
    pub fn agent_tools(
        mut self,
        configure: impl FnOnce(AgentToolsBuilder) -> AgentToolsBuilder,
    ) -> Self {
        self.tools = configure(self.tools);
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

    /// Where conversations are kept. Default: in memory. A conversation is
    /// per caller ([`nap_llm::session_key`]).
    pub fn memory_arc(mut self, memory: Arc<dyn Memory>) -> Self {
        self.memory = memory;
        self
    }

    /// The supervisor, or why its agent tools cannot be configured so.
    pub fn build(self) -> Result<Supervisor, AgentToolsError> {
        Ok(Supervisor {
            tools: self.tools.build()?,
            llm: self.llm,
            system: self.system,
            max_rounds: self.max_rounds,
            memory: self.memory,
        })
    }
}

/// An LLM agent that works through other agents, with the six agent tools
/// of the agent-tools contract (or the three blocking ones).
///
/// Served on NATS it is an agent like any other. Each prompt it serves
/// opens its own scope of calls ([`AgentTools::scope_for`]): the calls its
/// model starts end with that prompt, its own address is neither
/// discovered nor prompted, and the agent that sent the prompt (verified,
/// §13.7) is not prompted back. It streams its model's answer, and
/// progress statuses (§6.4) naming the agents at work: `tool:NAME` when a
/// call starts, `done:NAME` or `failed:NAME` when it ends, where NAME is
/// the agent's instance name. Questions of the agents it calls (§7) go to
/// its model, which answers them with `answer_agent`.
///
/// Clones share the agent tools.
#[derive(Clone)]
pub struct Supervisor {
    tools: AgentTools,
    llm: Arc<dyn Llm>,
    system: String,
    max_rounds: usize,
    memory: Arc<dyn Memory>,
}

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor")
            .field("model", &self.llm.model())
            .field("tools", &self.tools.offered())
            .finish_non_exhaustive()
    }
}

impl Supervisor {
    /// Starts configuring a supervisor that calls agents through `client`
    /// and thinks with `llm`.
    pub fn builder(client: Client, llm: Arc<dyn Llm>) -> SupervisorBuilder {
        SupervisorBuilder {
            tools: AgentTools::builder(client),
            llm,
            system: DEFAULT_SUPERVISOR_PROMPT.to_owned(),
            max_rounds: nap_llm::DEFAULT_MAX_ROUNDS,
            memory: Arc::new(InMemory::default()),
        }
    }

    /// The agent tools its model uses.
    pub fn tools(&self) -> &AgentTools {
        &self.tools
    }

    /// The `LlmAgent` one prompt runs with: the agent tools, reporting
    /// progress to `responder`.
    fn llm_agent(&self, responder: &Responder) -> LlmAgent {
        let progress = Arc::new(ProgressLog::default());
        let mut builder = LlmAgent::builder_arc(self.llm.clone())
            .system(self.system.clone())
            .max_rounds(self.max_rounds)
            .memory_arc(self.memory.clone());
        for tool in self.tools.llm_tools() {
            builder = builder.tool_arc(Arc::new(Reporting {
                tool,
                responder: responder.clone(),
                progress: progress.clone(),
            }));
        }
        builder.build()
    }
}

#[async_trait]
impl Agent for Supervisor {
    async fn prompt(&self, request: Request, responder: Responder) -> Result<(), AgentError> {
        // The contract's 6.2: the calls of this prompt end with it.
        let scope = self.tools.scope_for(&request);
        let agent = self.llm_agent(&responder);
        scope.run(agent.prompt(request, responder)).await
    }
}

/// What one prompt's progress reports know: the names of the agents
/// discovered and of the calls started, and which calls were reported
/// ended.
#[derive(Default)]
struct ProgressLog {
    state: Mutex<ProgressState>,
}

#[derive(Default)]
struct ProgressState {
    /// Address → the name shown for it.
    names: HashMap<String, String>,
    /// Call id → the name shown for it.
    calls: HashMap<String, String>,
    /// Calls whose end was reported.
    ended: HashSet<String>,
}

impl ProgressLog {
    fn lock(&self) -> std::sync::MutexGuard<'_, ProgressState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The name shown for an address: the discovered instance name, else
    /// the subject's name token, else the address.
    fn name_of(&self, address: &str) -> String {
        if let Some(name) = self.lock().names.get(address) {
            return name.clone();
        }
        AgentSubject::parse(address)
            .map(|s| s.identity.name.as_str().to_owned())
            .unwrap_or_else(|_| address.to_owned())
    }

    /// Learns names from a `discover_agents` result.
    fn learn(&self, result: &Value) {
        let Some(agents) = result.get("agents").and_then(Value::as_array) else {
            return;
        };
        let mut state = self.lock();
        for agent in agents {
            let name = agent
                .get("name")
                .and_then(Value::as_str)
                .or_else(|| agent.get("agent").and_then(Value::as_str));
            if let (Some(address), Some(name)) =
                (agent.get("address").and_then(Value::as_str), name)
            {
                state.names.insert(address.to_owned(), name.to_owned());
            }
        }
    }

    /// The progress a call result reports: the ends of calls not reported
    /// yet.
    fn ends(&self, result: &Value) -> Vec<Progress> {
        let single = std::slice::from_ref(result);
        let calls = match result.get("calls").and_then(Value::as_array) {
            Some(calls) => calls.as_slice(),
            None => single,
        };
        let mut state = self.lock();
        let mut out = Vec::new();
        for call in calls {
            let (Some(id), Some(status)) = (
                call.get("call_id").and_then(Value::as_str),
                call.get("state").and_then(Value::as_str),
            ) else {
                continue;
            };
            let Some(name) = state.calls.get(id).cloned() else {
                continue;
            };
            let progress = match status {
                "completed" => Progress::Done(name),
                "failed" | "expired" | "cancelled" => Progress::Failed(name),
                _ => continue,
            };
            if state.ended.insert(id.to_owned()) {
                out.push(progress);
            }
        }
        out
    }
}

/// An agent tool that reports the agents at work as progress statuses.
struct Reporting {
    tool: Arc<dyn Tool>,
    responder: Responder,
    progress: Arc<ProgressLog>,
}

impl Reporting {
    async fn status(&self, progress: Progress) {
        if let Err(error) = self.responder.status(progress.token()).await {
            tracing::debug!(%error, "a progress status was not sent");
        }
    }
}

#[async_trait]
impl Tool for Reporting {
    fn name(&self) -> &str {
        self.tool.name()
    }

    fn description(&self) -> &str {
        self.tool.description()
    }

    fn schema(&self) -> Value {
        self.tool.schema()
    }

    async fn call(&self, arguments: Value) -> Result<String, ToolError> {
        let name = self.tool.name().to_owned();
        let started = match name.as_str() {
            PROMPT_AGENT => arguments
                .get("address")
                .and_then(Value::as_str)
                .map(|address| self.progress.name_of(address)),
            _ => None,
        };
        if let Some(agent) = &started {
            self.status(Progress::Started(agent.clone())).await;
        }
        let text = self.tool.call(arguments).await?;
        let result: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        match name.as_str() {
            DISCOVER_AGENTS => self.progress.learn(&result),
            PROMPT_AGENT => match (started, result.get("call_id").and_then(Value::as_str)) {
                (Some(agent), Some(id)) => {
                    self.progress.lock().calls.insert(id.to_owned(), agent);
                }
                // Refused before anything was sent.
                (Some(agent), None) => self.status(Progress::Failed(agent)).await,
                _ => {}
            },
            _ => {}
        }
        if matches!(
            name.as_str(),
            PROMPT_AGENT | WAIT_AGENT | ANSWER_AGENT | CANCEL_AGENT
        ) {
            for end in self.progress.ends(&result) {
                self.status(end).await;
            }
        }
        Ok(text)
    }
}
