//! The agent tools (synadia-agents' `docs/agent-tools.md`): six tools a
//! model uses to discover the agents on its NATS system, prompt them, wait
//! for them, answer their questions (§7), cancel them and list its calls.
//!
//! They add nothing to the wire: discovery (§4), a prompt (§5), its
//! response stream (§6), mid-stream questions (§7) and dropping the
//! subscription to cancel (§6.7). See [`AgentTools`].

mod calls;
mod definitions;
mod extension;
mod refusal;

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use nap_nats::attachments::{AttachmentReader, AttachmentSaver, ReadError, SaveError};
use nap_nats::{AgentHandle, Client, Event, PromptOptions, PromptStream};
use nap_nats::{Decision, RequestInterceptor, TurnOutcome};
use nap_proto::identity::{AgentId, MinSenderTrust, RegisteredIdentity};
use nap_proto::{AgentSubject, Attachment, DiscoveryConfig, DiscoveryFilter, Envelope, Verb};
use serde_json::{Map, Value, json};

use calls::{Call, End, Reservation, ScopeState, Waiting, refuse};
pub use definitions::{
    ALL_TOOLS, ANSWER_AGENT, BLOCKING_TOOLS, CANCEL_AGENT, DISCOVER_AGENTS, LIST_AGENT_CALLS,
    PROMPT_AGENT, WAIT_AGENT,
};
pub use extension::{
    Extension, ExtensionError, PromptContext, PromptRewrite, ReplyContext, ReplyKind,
};
use refusal::Refusal;

/// A tool's definition: name, description and JSON-Schema parameters.
pub type ToolDefinition = nap_llm::ToolSpec;

/// Told of every call that finishes outside a served prompt: its result,
/// and whether a tool call was waiting for it then (the contract's 3.4).
pub type OnSettled = Arc<dyn Fn(&Value, bool) + Send + Sync>;

/// The key under which the model's tool-call id reaches the client's
/// prompt interceptors, in [`PromptOptions::context`].
pub const TOOL_CALL_ID: &str = "tool_call_id";

/// The runtime limit of a call by default: 10 minutes.
pub const DEFAULT_RUNTIME_LIMIT: Duration = Duration::from_secs(600);
/// How many calls one scope tracks by default.
pub const DEFAULT_MAX_CALLS: usize = 256;
/// The total of returned files saved per call by default: 64 MiB.
pub const DEFAULT_MAX_SAVED_BYTES_PER_CALL: u64 = 64 << 20;

/// Why [`AgentToolsBuilder::build`] refused a configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentToolsError {
    /// The tool set is empty.
    #[error("no agent tool offered")]
    NoTools,
    /// A name that is not one of the six tools.
    #[error("`{0}` is not an agent tool")]
    UnknownTool(String),
    /// A tool that works on calls, without `prompt_agent` to start them.
    #[error("`{0}` needs `prompt_agent`, which starts the calls it works on")]
    NeedsPrompt(String),
    /// `prompt_agent` without `answer_agent`: questions could not be answered.
    #[error(
        "`prompt_agent` needs `answer_agent`: a prompted agent's question would reach a model that cannot answer it"
    )]
    NeedsAnswer,
    /// The staging directory or an attachment root is unusable.
    #[error("cannot use the directory {path}: {source}")]
    Directory {
        /// The directory.
        path: PathBuf,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
}

/// Configures [`AgentTools`]; see [`AgentTools::builder`].
pub struct AgentToolsBuilder {
    client: Client,
    tools: Option<Vec<String>>,
    self_address: Option<String>,
    filter: DiscoveryFilter,
    discovery: DiscoveryConfig,
    runtime_limit: Duration,
    max_wait_agent: Option<Duration>,
    inactivity_timeout: Duration,
    max_calls: usize,
    roots: Vec<PathBuf>,
    staging_dir: Option<PathBuf>,
    max_saved_bytes_per_call: u64,
    on_settled: Option<OnSettled>,
    extensions: Vec<Arc<dyn Extension>>,
}

impl std::fmt::Debug for AgentToolsBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentToolsBuilder")
            .field("tools", &self.tools)
            .field("self_address", &self.self_address)
            .finish_non_exhaustive()
    }
}

impl AgentToolsBuilder {
    /// Offers only these tools (the contract's section 5). Without
    /// `wait_agent` every call blocks.
    pub fn tools<S: Into<String>>(mut self, tools: impl IntoIterator<Item = S>) -> Self {
        self.tools = Some(tools.into_iter().map(Into::into).collect());
        self
    }

    /// Only agents matching `filter` are discovered and may be prompted;
    /// the model's `discover_agents` arguments narrow it, never widen it.
    /// Default: every agent.
    pub fn filter(mut self, filter: DiscoveryFilter) -> Self {
        self.filter = filter;
        self
    }

    /// The agent's own prompt subject: left out of discovery and refused
    /// by `prompt_agent` (the contract's section 3.8).
    pub fn self_address(mut self, address: impl Into<String>) -> Self {
        self.self_address = Some(address.into());
        self
    }

    /// The timing of one discovery (§4.1).
    pub fn discovery(mut self, config: DiscoveryConfig) -> Self {
        self.discovery = config;
        self
    }

    /// The runtime limit of a call; past it the call is `expired`.
    /// Default [`DEFAULT_RUNTIME_LIMIT`].
    pub fn runtime_limit(mut self, limit: Duration) -> Self {
        self.runtime_limit = limit;
        self
    }

    /// The cap on `wait_agent`'s `timeout_ms`, also its default. Default:
    /// the runtime limit.
    pub fn max_wait_agent(mut self, cap: Duration) -> Self {
        self.max_wait_agent = Some(cap);
        self
    }

    /// How long a call's stream may stay silent, keep-alives included
    /// (§6.6). Default 60 s.
    pub fn inactivity_timeout(mut self, timeout: Duration) -> Self {
        self.inactivity_timeout = timeout;
        self
    }

    /// How many calls one scope tracks. Default [`DEFAULT_MAX_CALLS`].
    pub fn max_calls(mut self, max: usize) -> Self {
        self.max_calls = max.max(1);
        self
    }

    /// A directory files may be sent from, besides the staging directory.
    pub fn attachment_root(mut self, root: impl Into<PathBuf>) -> Self {
        self.roots.push(root.into());
        self
    }

    /// Where returned files are saved, one directory per call. Default: a
    /// new private directory under the system's temporary directory,
    /// removed when the last clone of the tools is dropped.
    pub fn staging_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.staging_dir = Some(dir.into());
        self
    }

    /// The total of returned files saved per call.
    pub fn max_saved_bytes_per_call(mut self, max: u64) -> Self {
        self.max_saved_bytes_per_call = max;
        self
    }

    /// Told of every call that finishes outside a served prompt.
    pub fn on_settled(mut self, f: impl Fn(&Value, bool) + Send + Sync + 'static) -> Self {
        self.on_settled = Some(Arc::new(f));
        self
    }

    /// Adds an extension (the contract's 6.3); extensions run in the order
    /// added.
    pub fn extension(mut self, extension: impl Extension) -> Self {
        self.extensions.push(Arc::new(extension));
        self
    }

    /// The tools, or why this configuration makes no sense (the contract's
    /// section 5).
    pub fn build(self) -> Result<AgentTools, AgentToolsError> {
        let offered = offered(self.tools.as_deref())?;
        let directory = |path: &Path| {
            let path = path.to_owned();
            move |source| AgentToolsError::Directory { path, source }
        };
        let (staging, owned) = match &self.staging_dir {
            Some(dir) => (dir.clone(), false),
            None => (
                std::env::temp_dir().join(format!("nap-agent-tools-{}", nuid::next())),
                true,
            ),
        };
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt as _;
            builder.mode(0o700);
        }
        builder.create(&staging).map_err(directory(&staging))?;
        let staging = staging.canonicalize().map_err(directory(&staging))?;
        let mut roots = vec![staging.clone()];
        for root in &self.roots {
            roots.push(root.canonicalize().map_err(directory(root))?);
        }
        Ok(AgentTools {
            inner: Arc::new(Inner {
                client: self.client,
                blocking_only: !offered.contains(&WAIT_AGENT),
                offered,
                self_address: self.self_address,
                filter: self.filter,
                discovery: self.discovery,
                runtime_limit: self.runtime_limit,
                max_wait_agent: self.max_wait_agent.unwrap_or(self.runtime_limit),
                inactivity_timeout: self.inactivity_timeout,
                max_calls: self.max_calls,
                roots,
                staging,
                staging_owned: owned,
                max_saved_bytes_per_call: self.max_saved_bytes_per_call,
                on_settled: self.on_settled,
                extensions: Arc::new(self.extensions),
                shared: ScopeState::new(None, None, false),
                served: Mutex::new(HashMap::new()),
            }),
        })
    }
}

/// The tools offered, in the contract's order, or why the set is refused.
fn offered(names: Option<&[String]>) -> Result<Vec<&'static str>, AgentToolsError> {
    let Some(names) = names else {
        return Ok(ALL_TOOLS.to_vec());
    };
    if let Some(unknown) = names.iter().find(|n| !ALL_TOOLS.contains(&n.as_str())) {
        return Err(AgentToolsError::UnknownTool(unknown.clone()));
    }
    let offered: Vec<&'static str> = ALL_TOOLS
        .into_iter()
        .filter(|t| names.iter().any(|n| n == t))
        .collect();
    if offered.is_empty() {
        return Err(AgentToolsError::NoTools);
    }
    let has = |t: &str| offered.contains(&t);
    if !has(PROMPT_AGENT) {
        if let Some(t) = [ANSWER_AGENT, WAIT_AGENT, CANCEL_AGENT, LIST_AGENT_CALLS]
            .into_iter()
            .find(|t| has(t))
        {
            return Err(AgentToolsError::NeedsPrompt(t.to_owned()));
        }
    } else if !has(ANSWER_AGENT) {
        return Err(AgentToolsError::NeedsAnswer);
    }
    Ok(offered)
}

struct Inner {
    client: Client,
    offered: Vec<&'static str>,
    blocking_only: bool,
    self_address: Option<String>,
    filter: DiscoveryFilter,
    discovery: DiscoveryConfig,
    runtime_limit: Duration,
    max_wait_agent: Duration,
    inactivity_timeout: Duration,
    max_calls: usize,
    roots: Vec<PathBuf>,
    staging: PathBuf,
    staging_owned: bool,
    max_saved_bytes_per_call: u64,
    on_settled: Option<OnSettled>,
    extensions: Arc<Vec<Arc<dyn Extension>>>,
    /// The scope outside any served prompt.
    shared: Arc<ScopeState>,
    /// Scopes opened by the request interceptor, by the task serving them.
    served: Mutex<HashMap<tokio::task::Id, Arc<ScopeState>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        refuse(self.shared.close());
        if self.staging_owned {
            let _ = std::fs::remove_dir_all(&self.staging);
        }
    }
}

tokio::task_local! {
    static SCOPE: Arc<ScopeState>;
}

/// The six agent tools over a [`Client`]: definitions to show a model, and
/// [`call`](Self::call) to run what it asks. Cheap to clone; clones share
/// their calls.
///
/// Calls belong to a scope (the contract's 3.3, 3.4): inside
/// [`Scope::run`] or a prompt served with
/// [`request_interceptor`](Self::request_interceptor), that prompt's scope, whose calls end with
/// it; elsewhere one shared scope, reported to
/// [`on_settled`](AgentToolsBuilder::on_settled).
///
/// Files an agent returns are saved under the staging directory with
/// `nap_nats::attachments::AttachmentSaver`; a file past the per-call total
/// is listed with `skipped: "over_limit"`. The contract's other skip
/// reason, `invalid_content`, never occurs here: nap decodes attachments
/// as it reads each chunk (§6.3), and a chunk whose content does not decode
/// breaks the stream rules, so the call fails with that error (and its
/// partial reply) instead of going on without the file.
#[derive(Clone)]
pub struct AgentTools {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for AgentTools {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentTools")
            .field("offered", &self.inner.offered)
            .finish_non_exhaustive()
    }
}

/// A refusal: the tool did nothing (the contract's section 2).
fn refusal(message: impl Into<String>) -> Value {
    json!({"error": message.into()})
}

impl AgentTools {
    /// A builder with the contract's defaults: all six tools.
    pub fn builder(client: Client) -> AgentToolsBuilder {
        AgentToolsBuilder {
            client,
            tools: None,
            self_address: None,
            filter: DiscoveryFilter::any(),
            discovery: DiscoveryConfig::default(),
            runtime_limit: DEFAULT_RUNTIME_LIMIT,
            max_wait_agent: None,
            inactivity_timeout: nap_proto::DEFAULT_INACTIVITY,
            max_calls: DEFAULT_MAX_CALLS,
            roots: Vec::new(),
            staging_dir: None,
            max_saved_bytes_per_call: DEFAULT_MAX_SAVED_BYTES_PER_CALL,
            on_settled: None,
            extensions: Vec::new(),
        }
    }

    /// The six tools with every default.
    pub fn new(client: Client) -> Result<AgentTools, AgentToolsError> {
        Self::builder(client).build()
    }

    /// The names of the tools offered, in the contract's order.
    pub fn offered(&self) -> &[&'static str] {
        &self.inner.offered
    }

    /// The directory returned files are saved in.
    pub fn staging_dir(&self) -> &Path {
        &self.inner.staging
    }

    /// The definitions of the tools offered, in the contract's order;
    /// without `wait_agent`, the blocking-only ones.
    pub fn definitions(&self) -> Vec<ToolDefinition> {
        self.inner
            .offered
            .iter()
            .filter_map(|name| {
                if self.inner.blocking_only {
                    definitions::blocking(name)
                } else {
                    definitions::full(name)
                }
            })
            .collect()
    }

    /// Opens a scope for one served prompt whose verified sender is
    /// `caller` (§13.7), for the caller guard. Its calls end when it is
    /// closed or dropped.
    pub fn scope(&self, caller: Option<AgentId>) -> Scope {
        Scope {
            tools: self.clone(),
            state: ScopeState::new(caller, None, true),
        }
    }

    /// Opens the scope of one served prompt: its verified sender (§13.7)
    /// for the caller guard, and the subject it arrived on as an own
    /// address, refused and left out of discovery like
    /// [`AgentToolsBuilder::self_address`]. Its calls end when it is
    /// closed or dropped.
    pub fn scope_for(&self, request: &nap_agent::Request) -> Scope {
        Scope {
            tools: self.clone(),
            state: scope_of(request),
        }
    }

    /// A host interceptor that opens a scope for every prompt the host
    /// serves and closes it when the prompt ends (the contract's 6.2). Tool
    /// calls made on the task serving the prompt use it.
    pub fn request_interceptor(&self) -> ScopeInterceptor {
        ScopeInterceptor {
            tools: self.clone(),
        }
    }

    /// The six tools as `nap-llm` tools, for an `LlmAgent`.
    pub fn llm_tools(&self) -> Vec<Arc<dyn nap_llm::Tool>> {
        self.definitions()
            .into_iter()
            .map(|definition| {
                Arc::new(AgentTool {
                    tools: self.clone(),
                    definition,
                }) as Arc<dyn nap_llm::Tool>
            })
            .collect()
    }

    /// Cancels every open call of the shared scope.
    pub fn close(&self) {
        refuse(self.inner.shared.close());
    }

    fn current(&self) -> Arc<ScopeState> {
        if let Ok(scope) = SCOPE.try_with(Arc::clone) {
            return scope;
        }
        if let Some(id) = tokio::task::try_id() {
            let served = self
                .inner
                .served
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(scope) = served.get(&id) {
                return scope.clone();
            }
        }
        self.inner.shared.clone()
    }

    /// Runs one tool call in the current scope. `args` is an object or the
    /// JSON text of one. The result is JSON for the model: a refusal is
    /// `{"error": ...}`; nothing here panics on the model's input.
    pub async fn call(&self, name: &str, args: Value) -> Value {
        self.call_with_id(name, args, None).await
    }

    /// Like [`call`](Self::call), with the model's tool-call id, which
    /// prompt rewrites see (the contract's 3.11). It is never sent.
    pub async fn call_with_id(&self, name: &str, args: Value, tool_call_id: Option<&str>) -> Value {
        let scope = self.current();
        self.call_in(&scope, name, args, tool_call_id).await
    }

    async fn call_in(
        &self,
        scope: &Arc<ScopeState>,
        name: &str,
        args: Value,
        tool_call_id: Option<&str>,
    ) -> Value {
        let mut result = match self.dispatch(scope, name, args, tool_call_id).await {
            Ok(value) => value,
            Err(refused) => refused.into_result(),
        };
        self.add_open_calls(scope, &mut result);
        result
    }

    fn has(&self, tool: &str) -> bool {
        self.inner.offered.contains(&tool)
    }

    async fn dispatch(
        &self,
        scope: &Arc<ScopeState>,
        name: &str,
        args: Value,
        tool_call_id: Option<&str>,
    ) -> Result<Value, Refusal> {
        if !ALL_TOOLS.contains(&name) || !self.has(name) {
            let offered = self.inner.offered.join(", ");
            return Err(format!(
                "there is no tool `{name}` here; the agent tools offered are: {offered}"
            )
            .into());
        }
        let args = Args::parse(name, args)?;
        match name {
            DISCOVER_AGENTS => {
                args.only(&["agent", "owner", "name"])?;
                self.discover(
                    scope,
                    args.string("agent")?,
                    args.string("owner")?,
                    args.string("name")?,
                )
                .await
            }
            PROMPT_AGENT => {
                args.only(&["address", "prompt", "attachments", "label", "wait"])?;
                let wait = self.wait_arg(&args)?.unwrap_or(true);
                let call = PromptArgs {
                    address: args.required("address")?,
                    prompt: args.required("prompt")?,
                    attachments: args.strings("attachments")?.unwrap_or_default(),
                    label: args.string("label")?,
                    wait,
                };
                self.prompt(scope, call, tool_call_id).await
            }
            WAIT_AGENT => {
                args.only(&["call_ids", "timeout_ms"])?;
                let ids = args.ids("call_ids")?;
                let cap = self.inner.max_wait_agent;
                let timeout = match args.integer("timeout_ms")? {
                    Some(ms) => Duration::from_millis(ms).min(cap),
                    None => cap,
                };
                self.wait_agent(scope, ids, timeout).await
            }
            ANSWER_AGENT => {
                args.only(&["call_id", "answer", "wait"])?;
                let wait = self.wait_arg(&args)?;
                self.answer(
                    scope,
                    args.required("call_id")?,
                    args.required("answer")?,
                    wait,
                )
                .await
            }
            CANCEL_AGENT => {
                args.only(&["call_ids"])?;
                Ok(self.cancel(scope, args.ids("call_ids")?))
            }
            _ => {
                args.only(&[])?;
                let calls = scope.lock();
                let list: Vec<Value> = calls.list.iter().map(Call::listing).collect();
                Ok(json!({ "calls": list }))
            }
        }
    }

    /// `wait`, refused as `false` when nothing may be detached.
    fn wait_arg(&self, args: &Args) -> Result<Option<bool>, Refusal> {
        let wait = args.boolean("wait")?;
        if self.inner.blocking_only && wait == Some(false) {
            return Err(
                "`wait: false` is not available here: without wait_agent every call waits".into(),
            );
        }
        Ok(wait)
    }

    fn add_open_calls(&self, scope: &ScopeState, result: &mut Value) {
        let open = scope.lock().open();
        let Value::Object(map) = result else { return };
        if open == 0 {
            return;
        }
        let what = if open == 1 {
            "1 call is still open".to_owned()
        } else {
            format!("{open} calls are still open")
        };
        let collect = if self.has(WAIT_AGENT) {
            "collect their results with wait_agent"
        } else {
            "answer their questions with answer_agent"
        };
        let stop = if self.has(CANCEL_AGENT) {
            " or stop them with cancel_agent"
        } else {
            ""
        };
        let note = if scope.served {
            format!(
                "{what}; they end when the prompt you are answering ends, so {collect}{stop} before you answer."
            )
        } else {
            format!("{what}; {collect}{stop}.")
        };
        map.insert("open_calls".into(), open.into());
        map.insert("open_calls_note".into(), note.into());
    }

    /// Whether `address` is the serving agent's own (the contract's 3.8).
    fn is_own(&self, scope: &ScopeState, address: &str) -> bool {
        self.inner.self_address.as_deref() == Some(address)
            || scope.own_address.as_deref() == Some(address)
    }

    async fn discover(
        &self,
        scope: &ScopeState,
        agent: Option<String>,
        owner: Option<String>,
        name: Option<String>,
    ) -> Result<Value, Refusal> {
        // The model narrows the configured filter; it never widens it.
        let configured = &self.inner.filter;
        let filter = DiscoveryFilter {
            agent: agent.or_else(|| configured.agent.clone()),
            owner: owner.or_else(|| configured.owner.clone()),
            name: name.or_else(|| configured.name.clone()),
            ..configured.clone()
        };
        let handles = self
            .inner
            .client
            .discover_with(filter, self.inner.discovery)
            .await
            .map_err(|e| format!("discovery failed: {e}"))?;
        let mut entries: Vec<(String, Map<String, Value>)> = Vec::new();
        for handle in &handles {
            let address = handle.prompt_subject();
            if self.is_own(scope, address) || self.inner.filter.check(handle.info()).is_err() {
                continue;
            }
            if let Some((_, entry)) = entries.iter_mut().find(|(a, _)| a == address) {
                let n = entry.get("instances").and_then(Value::as_u64).unwrap_or(1);
                entry.insert("instances".into(), (n + 1).into());
                continue;
            }
            let mut fields = entry(handle);
            for extension in self.inner.extensions.iter() {
                let extra = extension.discovery_fields(handle).await;
                if let Some(field) = extension::reserved(&extra, &extension::DISCOVERY_FIELDS) {
                    tracing::error!(%field, "an agent-tools extension sets a discovery field the contract defines");
                    return Err(format!(
                        "an extension of these tools has a bug: it sets `{field}`, a field the contract defines"
                    ).into());
                }
                fields.extend(extra);
            }
            entries.push((address.to_owned(), fields));
        }
        let agents: Vec<Value> = entries.into_iter().map(|(_, e)| Value::Object(e)).collect();
        Ok(json!({ "agents": agents }))
    }

    async fn resolve(&self, address: &str) -> Result<AgentHandle, Refusal> {
        let unknown = || {
            let hint = if self.has(DISCOVER_AGENTS) {
                "; discover_agents lists the agents there are"
            } else {
                ""
            };
            format!("no agent answers at `{address}`{hint}")
        };
        // A default prompt subject (§2) narrows the lookup; any other is
        // looked for among every agent, as records may name their own (§4.3).
        let filter = match AgentSubject::parse(address) {
            Ok(subject) if subject.verb == Verb::Prompt => DiscoveryFilter {
                agent: Some(subject.identity.agent.as_str().to_owned()),
                owner: Some(subject.identity.owner.as_str().to_owned()),
                name: Some(subject.identity.name.as_str().to_owned()),
                ..DiscoveryFilter::any()
            },
            _ => DiscoveryFilter::any(),
        };
        let handles = self
            .inner
            .client
            .discover_with(filter, self.inner.discovery)
            .await
            .map_err(|e| format!("discovery failed: {e}"))?;
        handles
            .into_iter()
            .find(|h| h.prompt_subject() == address)
            .filter(|h| self.inner.filter.check(h.info()).is_ok())
            .ok_or_else(|| unknown().into())
    }

    /// The files the model wants to send, read from under the roots
    /// (the contract's 3.9) with their resolved paths.
    fn read_attachments(
        &self,
        paths: &[String],
    ) -> Result<(Vec<PathBuf>, Vec<Attachment>), Refusal> {
        let mut reader = AttachmentReader::new(&self.inner.roots)
            .map_err(|e| format!("attachments cannot be sent: {e}"))?;
        let mut resolved = Vec::new();
        let mut files = Vec::new();
        for path in paths {
            let refused = |e: ReadError| format!("the attachment `{path}` is refused: {e}");
            resolved.push(reader.resolve(path).map_err(refused)?);
            files.push(reader.read(path).map_err(refused)?);
        }
        Ok((resolved, files))
    }

    async fn prompt(
        &self,
        scope: &Arc<ScopeState>,
        args: PromptArgs,
        tool_call_id: Option<&str>,
    ) -> Result<Value, Refusal> {
        let PromptArgs {
            address,
            prompt,
            attachments,
            label,
            wait,
        } = args;
        // §3.8 of the contract: the two loop guards.
        if self.is_own(scope, &address) {
            return Err("that is your own address: an agent does not prompt itself".into());
        }
        let reservation = self.room(scope)?;
        let handle = self.resolve(&address).await?;
        if let (Some(caller), Some(target)) = (&scope.caller, handle.identity().verified())
            && caller == target
        {
            return Err(
                    "that agent sent the prompt you are answering: answer it instead of prompting it back"
                        .into(),
                );
        }
        let (paths, files) = self.read_attachments(&attachments)?;
        let id = nuid::next().to_string();
        let mut prompt = prompt;
        let mut fields = Map::new();
        for extension in self.inner.extensions.iter() {
            let ctx = PromptContext {
                address: &address,
                prompt: &prompt,
                attachments: &paths,
                target: &handle,
                call_id: &id,
                label: label.as_deref(),
                tool_call_id,
                caller: scope.caller.as_ref(),
            };
            let rewrite = extension.before_prompt(&ctx).await;
            if let Some(error) = rewrite.refuse {
                return Err(error.into());
            }
            if let Some(field) = extension::reserved(&rewrite.fields, &extension::CALL_FIELDS) {
                tracing::error!(%field, "an agent-tools extension sets a result field the contract defines");
                return Err(format!(
                    "an extension of these tools has a bug: it sets `{field}`, a field the contract defines"
                ).into());
            }
            if let Some(text) = rewrite.prompt {
                prompt = text;
            }
            fields.extend(rewrite.fields);
        }
        let mut envelope = Envelope::text(prompt);
        envelope.attachments = files;
        let mut options = PromptOptions::inactivity_timeout(self.inner.inactivity_timeout)
            .with_deadline(self.inner.runtime_limit);
        if let Some(id) = tool_call_id {
            // Never sent: for the client's prompt interceptors only.
            options = options.with_context(TOOL_CALL_ID, id);
        }
        let stream = self
            .inner
            .client
            .prompt_with(&handle, envelope, options)
            .await
            .map_err(|e| format!("the prompt was not sent: {e}"))?;
        {
            let mut calls = scope.lock();
            if calls.closed {
                return Err(closed(scope).into());
            }
            // The reserved place becomes this call's.
            reservation.claim(&mut calls);
            if !calls.make_room(self.inner.max_calls) {
                return Err(self.full_message().into());
            }
            let mut call = Call::new(id.clone(), label, address.clone(), !wait);
            call.fields = fields;
            calls.list.push(call);
        }
        let saver = AttachmentSaver::new(self.inner.staging.join(&id))
            .map(|s| s.with_limit(self.inner.max_saved_bytes_per_call));
        let reader = tokio::spawn(read(
            scope.clone(),
            id.clone(),
            address,
            self.inner.extensions.clone(),
            stream,
            saver,
            (!scope.served)
                .then(|| self.inner.on_settled.clone())
                .flatten(),
        ));
        if let Some(call) = scope.lock().get_mut(&id) {
            if call.is_open() {
                call.reader = Some(reader.abort_handle());
            } else {
                reader.abort();
            }
        }
        if wait {
            Ok(self.block(scope, &id).await)
        } else {
            let calls = scope.lock();
            Ok(calls
                .get(&id)
                .map(|c| Value::Object(c.result()))
                .unwrap_or_else(|| refusal("the call was dropped")))
        }
    }

    fn full_message(&self) -> String {
        let mut advice = Vec::new();
        if self.has(WAIT_AGENT) {
            advice.push("collect some with wait_agent");
        }
        if self.has(CANCEL_AGENT) {
            advice.push("stop some with cancel_agent");
        }
        let advice = if advice.is_empty() {
            String::new()
        } else {
            format!("; {}", advice.join(" or "))
        };
        format!(
            "too many open calls: {} are tracked and none has finished{advice}",
            self.inner.max_calls
        )
    }

    /// Refuses when the scope is full of open calls.
    /// A place for one more call, or why there is none: the scope is
    /// closed, or `max_calls` calls are open or being started.
    fn room(&self, scope: &Arc<ScopeState>) -> Result<Reservation, Refusal> {
        if scope.lock().closed {
            return Err(closed(scope).into());
        }
        Reservation::take(scope, self.inner.max_calls).ok_or_else(|| self.full_message().into())
    }

    /// Waits for a call to leave `running`; if the tool call is dropped
    /// meanwhile, the call is cancelled (the contract's 3.10).
    async fn block(&self, scope: &Arc<ScopeState>, id: &str) -> Value {
        let guard = CancelOnDrop {
            tools: self.clone(),
            scope: scope.clone(),
            id: id.to_owned(),
            armed: true,
        };
        let outcome = wait_ready(scope, std::slice::from_ref(&id.to_owned()), None).await;
        let mut guard = guard;
        guard.armed = false;
        match outcome {
            Some((result, _)) => Value::Object(result),
            None => refusal("the call was dropped"),
        }
    }

    async fn wait_agent(
        &self,
        scope: &Arc<ScopeState>,
        ids: Vec<String>,
        timeout: Duration,
    ) -> Result<Value, Refusal> {
        self.known(scope, &ids)?;
        match wait_ready(scope, &ids, Some(timeout)).await {
            Some((mut result, remaining)) => {
                result.insert("remaining".into(), json!(remaining));
                Ok(Value::Object(result))
            }
            None => Ok(json!({"state": "running", "call_ids": ids})),
        }
    }

    fn known(&self, scope: &ScopeState, ids: &[String]) -> Result<(), Refusal> {
        let calls = scope.lock();
        if let Some(id) = ids.iter().find(|id| calls.get(id).is_none()) {
            return Err(self.unknown_call(id).into());
        }
        Ok(())
    }

    fn unknown_call(&self, id: &str) -> String {
        let hint = if self.has(LIST_AGENT_CALLS) {
            "; list_agent_calls shows the calls there are"
        } else {
            ""
        };
        format!("no call `{id}` here{hint}")
    }

    async fn answer(
        &self,
        scope: &Arc<ScopeState>,
        id: String,
        answer: String,
        wait: Option<bool>,
    ) -> Result<Value, Refusal> {
        let (question, detached) = {
            let mut calls = scope.lock();
            let Some(call) = calls.get_mut(&id) else {
                return Err(self.unknown_call(&id).into());
            };
            if call.end.is_some() || call.questions.is_empty() {
                return Err(
                    format!("call `{id}` has no open question: it is {}", call.state()).into(),
                );
            }
            let question = call.questions.pop_front();
            (question, call.detached)
        };
        scope.notify();
        if let Some(question) = question
            && let Err(e) = question.query.answer(answer).await
        {
            return Err(format!("the answer was not sent: {e}").into());
        }
        if wait.unwrap_or(!detached) {
            Ok(self.block(scope, &id).await)
        } else {
            let calls = scope.lock();
            Ok(calls
                .get(&id)
                .map(|c| Value::Object(c.result()))
                .unwrap_or_else(|| refusal("the call was dropped")))
        }
    }

    fn cancel(&self, scope: &Arc<ScopeState>, ids: Vec<String>) -> Value {
        let mut out = Vec::new();
        for id in ids {
            if let Some(finished) = scope.finish(&id, End::Cancelled) {
                refuse(finished.refuse);
                self.settled(scope, &finished.result, finished.waited);
            }
            let calls = scope.lock();
            out.push(match calls.get(&id) {
                Some(call) => Value::Object(call.result()),
                None => json!({"call_id": id, "error": self.unknown_call(&id)}),
            });
        }
        json!({ "calls": out })
    }

    fn settled(&self, scope: &ScopeState, result: &Map<String, Value>, waited: bool) {
        if scope.served {
            return;
        }
        if let Some(f) = &self.inner.on_settled {
            f(&Value::Object(result.clone()), waited);
        }
    }
}

/// Why a closed scope starts no call.
fn closed(scope: &ScopeState) -> String {
    if scope.served {
        "the prompt you were answering has ended".into()
    } else {
        "these agent tools were closed".into()
    }
}

/// `prompt_agent`'s arguments, checked.
struct PromptArgs {
    address: String,
    prompt: String,
    attachments: Vec<String>,
    label: Option<String>,
    wait: bool,
}

/// One `discover_agents` entry.
fn entry(handle: &AgentHandle) -> Map<String, Value> {
    let (identity, verified) = match handle.identity() {
        RegisteredIdentity::Verified(id) => (Value::from(id.to_string()), true),
        RegisteredIdentity::Claimed { id, .. } => (Value::from(id.to_string()), false),
        _ => (Value::Null, false),
    };
    let mut map = Map::new();
    map.insert("address".into(), handle.prompt_subject().into());
    map.insert("agent".into(), handle.agent().into());
    map.insert("owner".into(), handle.owner().into());
    map.insert("name".into(), handle.name().unwrap_or_default().into());
    map.insert(
        "description".into(),
        handle.info().description.clone().into(),
    );
    map.insert("identity".into(), identity);
    map.insert("identity_verified".into(), verified.into());
    map.insert(
        "requires_signed_prompts".into(),
        (handle.min_sender_trust() == MinSenderTrust::Signed).into(),
    );
    map.insert("accepts_attachments".into(), handle.attachments_ok().into());
    map.insert("instances".into(), 1.into());
    map
}

/// Waits until one of `ids` is ready; its result and the other given ids
/// still open, or `None` on timeout.
async fn wait_ready(
    scope: &Arc<ScopeState>,
    ids: &[String],
    timeout: Option<Duration>,
) -> Option<(Map<String, Value>, Vec<String>)> {
    let _waiting = Waiting::new(scope.clone(), ids.to_vec());
    let mut changes = scope.subscribe();
    let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
    loop {
        changes.borrow_and_update();
        {
            let calls = scope.lock();
            let ready = ids
                .iter()
                .filter_map(|id| calls.get(id))
                .filter(|c| c.is_ready())
                .min_by_key(|c| c.ready_seq);
            if let Some(call) = ready {
                let remaining: Vec<String> = ids
                    .iter()
                    .filter(|id| **id != call.id)
                    .filter(|id| calls.get(id).is_some_and(Call::is_open))
                    .cloned()
                    .collect();
                return Some((call.result(), remaining));
            }
            if ids.iter().all(|id| calls.get(id).is_none()) {
                return None;
            }
        }
        let changed = changes.changed();
        match deadline {
            Some(at) => match tokio::time::timeout_at(at, changed).await {
                Ok(Ok(())) => {}
                _ => return None,
            },
            None => {
                if changed.await.is_err() {
                    return None;
                }
            }
        }
    }
}

/// Cancels a blocking call whose tool call was dropped.
struct CancelOnDrop {
    tools: AgentTools,
    scope: Arc<ScopeState>,
    id: String,
    armed: bool,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if self.armed
            && let Some(finished) = self.scope.finish(&self.id, End::Cancelled)
        {
            refuse(finished.refuse);
            self.tools
                .settled(&self.scope, &finished.result, finished.waited);
        }
    }
}

/// Lists (and saves) the files of a reply or a question.
fn save_all(
    saver: &mut Result<AttachmentSaver, SaveError>,
    files: &[Attachment],
) -> Result<Vec<Value>, Refusal> {
    let mut out = Vec::new();
    for file in files {
        let size = file.content.len() as u64;
        let saver = saver
            .as_mut()
            .map_err(|e| format!("the files the agent sent could not be saved: {e}"))?;
        match saver.save(file) {
            Ok(path) => out.push(calls::saved(&file.filename, size, &path)),
            Err(SaveError::OverBudget { .. }) => {
                out.push(calls::skipped(&file.filename, size, "over_limit"));
            }
            Err(e) => return Err(format!("a file the agent sent could not be saved: {e}").into()),
        }
    }
    Ok(out)
}

/// Reads one call's stream in the background until it ends.
async fn read(
    scope: Arc<ScopeState>,
    id: String,
    address: String,
    extensions: Arc<Vec<Arc<dyn Extension>>>,
    mut stream: PromptStream,
    mut saver: Result<AttachmentSaver, SaveError>,
    on_settled: Option<OnSettled>,
) {
    let end = loop {
        match stream.next().await {
            Some(Ok(Event::Response(data))) => {
                let files = match save_all(&mut saver, data.attachments()) {
                    Ok(files) => files,
                    Err(e) => break End::Failed(e.to_string()),
                };
                let mut calls = scope.lock();
                if let Some(call) = calls.get_mut(&id) {
                    call.text.push_str(data.text());
                    call.files.extend(files);
                }
            }
            Some(Ok(Event::Query(query))) => {
                let files = match save_all(&mut saver, query.attachments()) {
                    Ok(files) => files,
                    Err(e) => {
                        refuse(vec![query]);
                        break End::Failed(e.to_string());
                    }
                };
                let ctx = ReplyContext {
                    call_id: &id,
                    address: &address,
                    kind: ReplyKind::Question,
                    text: query.prompt(),
                    attachments: &files,
                };
                let fields = match look(&extensions, &ctx).await {
                    Ok(fields) => fields,
                    Err(e) => {
                        refuse(vec![query]);
                        break End::Failed(e.to_string());
                    }
                };
                {
                    let mut calls = scope.lock();
                    calls.seq += 1;
                    let seq = calls.seq;
                    match calls.get_mut(&id) {
                        Some(call) if call.is_open() => {
                            if call.questions.is_empty() {
                                call.ready_seq = seq;
                            }
                            call.questions.push_back(calls::Question {
                                query,
                                files,
                                fields,
                            });
                        }
                        _ => {
                            drop(calls);
                            refuse(vec![query]);
                            return;
                        }
                    }
                }
                scope.notify();
            }
            Some(Ok(Event::Violation(violation))) => {
                break End::Failed(format!("the agent broke the protocol: {violation}"));
            }
            Some(Ok(Event::End)) | None => {
                if extensions.is_empty() {
                    break End::Completed;
                }
                let (text, files) = match scope.lock().get(&id) {
                    Some(call) => (call.text.clone(), call.files.clone()),
                    None => return,
                };
                let ctx = ReplyContext {
                    call_id: &id,
                    address: &address,
                    kind: ReplyKind::Reply,
                    text: &text,
                    attachments: &files,
                };
                match look(&extensions, &ctx).await {
                    Ok(fields) => {
                        if let Some(call) = scope.lock().get_mut(&id) {
                            call.reply_fields = fields;
                        }
                        break End::Completed;
                    }
                    Err(e) => break End::Failed(e.to_string()),
                }
            }
            Some(Ok(_)) => {}
            Some(Err(nap_nats::Error::DeadlineExceeded { after })) => {
                break End::Expired(format!(
                    "the call ran past its runtime limit of {} s",
                    after.as_secs()
                ));
            }
            Some(Err(error)) => break End::Failed(error.to_string()),
        }
    };
    // Drop the subscription before refusing questions (the contract's 3.10).
    drop(stream);
    // This task ends here: nothing is left to abort.
    if let Some(call) = scope.lock().get_mut(&id) {
        call.reader = None;
    }
    if let Some(finished) = scope.finish(&id, end) {
        refuse(finished.refuse);
        if let Some(f) = on_settled {
            f(&Value::Object(finished.result), finished.waited);
        }
    }
}

/// Runs the reply looks of every extension, in order.
async fn look(
    extensions: &[Arc<dyn Extension>],
    ctx: &ReplyContext<'_>,
) -> Result<Map<String, Value>, Refusal> {
    let mut fields = Map::new();
    for extension in extensions {
        let bug = |what: String| {
            tracing::error!(call = %ctx.call_id, %what, "an agent-tools extension failed a call");
            format!("an extension of these tools has a bug, not the prompted agent: {what}")
        };
        let extra = extension
            .after_reply(ctx)
            .await
            .map_err(|e| bug(e.to_string()))?;
        if let Some(field) = extension::reserved(&extra, &extension::CALL_FIELDS) {
            return Err(bug(format!("it sets `{field}`, a field the contract defines")).into());
        }
        fields.extend(extra);
    }
    Ok(fields)
}

/// A scope bound to one served prompt (the contract's 3.3): calls started
/// in it are seen only in it, and every open one is cancelled, its open
/// questions refused, when the scope is closed or dropped.
#[derive(Debug)]
pub struct Scope {
    tools: AgentTools,
    state: Arc<ScopeState>,
}

impl Scope {
    /// Runs `fut` with this scope current: [`AgentTools::call`] inside it
    /// (not in tasks it spawns) uses this scope.
    pub async fn run<F: Future>(&self, fut: F) -> F::Output {
        SCOPE.scope(self.state.clone(), fut).await
    }

    /// Runs one tool call in this scope.
    pub async fn call(&self, name: &str, args: Value) -> Value {
        self.tools.call_in(&self.state, name, args, None).await
    }

    /// Closes the scope: every open call becomes `cancelled`.
    pub fn close(self) {
        drop(self);
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        refuse(self.state.close());
    }
}

/// The scope state of a served prompt.
fn scope_of(request: &nap_agent::Request) -> Arc<ScopeState> {
    let own = (!request.subject.is_empty()).then(|| request.subject.clone());
    ScopeState::new(request.sender().verified_id().cloned(), own, true)
}

/// The host interceptor of [`AgentTools::request_interceptor`]: a scope
/// per served prompt, keyed by the task serving it, with the prompt's
/// verified sender (§13.7) as the caller the loop guard compares.
#[derive(Debug, Clone)]
pub struct ScopeInterceptor {
    tools: AgentTools,
}

#[async_trait]
impl RequestInterceptor for ScopeInterceptor {
    async fn before(&self, request: &nap_agent::Request) -> Decision {
        if let Some(task) = tokio::task::try_id() {
            let scope = scope_of(request);
            self.tools
                .inner
                .served
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(task, scope);
        }
        Decision::Pass
    }

    async fn after(&self, _request: &nap_agent::Request, _outcome: &TurnOutcome) {
        let Some(task) = tokio::task::try_id() else {
            return;
        };
        let scope = self
            .tools
            .inner
            .served
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&task);
        if let Some(scope) = scope {
            refuse(scope.close());
        }
    }
}

/// One agent tool as a `nap-llm` [`Tool`](nap_llm::Tool): its result,
/// refusals included, is the JSON text the model reads.
#[derive(Debug, Clone)]
pub struct AgentTool {
    tools: AgentTools,
    definition: ToolDefinition,
}

#[async_trait]
impl nap_llm::Tool for AgentTool {
    fn name(&self) -> &str {
        &self.definition.name
    }

    fn description(&self) -> &str {
        &self.definition.description
    }

    fn schema(&self) -> Value {
        self.definition.parameters.clone()
    }

    async fn call(&self, arguments: Value) -> Result<String, nap_llm::ToolError> {
        let result = self.tools.call(&self.definition.name, arguments).await;
        Ok(result.to_string())
    }
}

/// A tool call's arguments, checked against the definitions by hand so a
/// bad one is a refusal in words.
struct Args {
    tool: String,
    map: Map<String, Value>,
}

impl Args {
    fn parse(tool: &str, args: Value) -> Result<Args, Refusal> {
        let args = match args {
            Value::String(text) => serde_json::from_str(&text)
                .map_err(|e| format!("the arguments of {tool} are not JSON: {e}"))?,
            Value::Null => Value::Object(Map::new()),
            other => other,
        };
        match args {
            Value::Object(map) => Ok(Args {
                tool: tool.to_owned(),
                map,
            }),
            _ => Err(format!("the arguments of {tool} must be an object").into()),
        }
    }

    fn only(&self, known: &[&str]) -> Result<(), Refusal> {
        match self.map.keys().find(|k| !known.contains(&k.as_str())) {
            Some(k) => Err(format!("{} takes no argument `{k}`", self.tool).into()),
            None => Ok(()),
        }
    }

    fn string(&self, key: &str) -> Result<Option<String>, Refusal> {
        match self.map.get(key) {
            None => Ok(None),
            Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
            Some(_) => Err(format!("`{key}` must be a non-empty string").into()),
        }
    }

    fn required(&self, key: &str) -> Result<String, Refusal> {
        self.string(key)?
            .ok_or_else(|| format!("{} needs `{key}`", self.tool).into())
    }

    fn boolean(&self, key: &str) -> Result<Option<bool>, Refusal> {
        match self.map.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(format!("`{key}` must be true or false").into()),
        }
    }

    fn integer(&self, key: &str) -> Result<Option<u64>, Refusal> {
        match self.map.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .map(Some)
                .ok_or_else(|| format!("`{key}` must be a whole number, 0 or more").into()),
        }
    }

    fn strings(&self, key: &str) -> Result<Option<Vec<String>>, Refusal> {
        let bad = || Refusal::from(format!("`{key}` must be a list of non-empty strings"));
        match self.map.get(key) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    Value::String(s) if !s.is_empty() => Ok(s.clone()),
                    _ => Err(bad()),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(bad()),
        }
    }

    fn ids(&self, key: &str) -> Result<Vec<String>, Refusal> {
        match self.strings(key)? {
            Some(ids) if !ids.is_empty() => Ok(ids),
            _ => Err(format!("{} needs `{key}`, one call_id or more", self.tool).into()),
        }
    }
}
