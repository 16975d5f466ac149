//! A remote agent as a `nap-llm` [`Tool`]: the model writes a prompt, the
//! agent answers over NATS, the streamed text is the tool's result.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use nap_llm::{Tool, ToolError, schema_for};
use nap_nats::{AgentHandle, Event, PendingQuery, PromptOptions};
use nap_proto::Progress;
use nap_proto::{Attachment, Envelope, ResponseData};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use crate::query::{self, QueryPolicy, current_caller};
use crate::{Error, Result};

/// The inactivity timeout of a remote call when none is set: a minute
/// without any message, keep-alives included (§6.6).
pub const DEFAULT_INACTIVITY_TIMEOUT: Duration = Duration::from_secs(60);

/// The arguments a model passes to a [`RemoteAgentTool`].
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct RemoteToolArgs {
    /// The prompt for the agent: a complete, self-contained instruction,
    /// with everything it needs to know (it does not see this conversation).
    pub prompt: String,
    /// Files to send along with the prompt (optional).
    #[serde(default)]
    pub attachments: Vec<ToolAttachment>,
}

/// A text file a model sends to a remote agent.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct ToolAttachment {
    /// The file name, such as `notes.md`.
    pub filename: String,
    /// The file's text content.
    pub content: String,
}

/// How remote agents are called.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallOptions {
    /// Give up when the agent sends nothing (not even a keep-alive) for
    /// this long (§6.6). Default [`DEFAULT_INACTIVITY_TIMEOUT`].
    pub inactivity_timeout: Duration,
    /// What to do with the agent's questions (§7). Default: forward them
    /// to the current caller.
    pub query_policy: QueryPolicy,
}

impl Default for CallOptions {
    fn default() -> Self {
        CallOptions {
            inactivity_timeout: DEFAULT_INACTIVITY_TIMEOUT,
            query_policy: QueryPolicy::default(),
        }
    }
}

/// What a remote agent answered: its text and attachments (§6.3).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Answer {
    /// Every response chunk's text, in order.
    pub text: String,
    /// Every response chunk's attachments, in order.
    pub attachments: Vec<Attachment>,
}

impl Answer {
    /// The answer as a model reads it: the text, then a line naming the
    /// attachments, if any.
    pub fn to_tool_text(&self) -> String {
        if self.attachments.is_empty() {
            return self.text.clone();
        }
        let files: Vec<String> = self
            .attachments
            .iter()
            .map(|a| format!("{} ({} bytes)", a.filename, a.content.len()))
            .collect();
        format!("{}\n[attachments: {}]", self.text, files.join(", "))
    }
}

/// The instances behind one logical agent. They share its prompt subject
/// and the `agents` queue group, so NATS balances prompts between them;
/// the pool only needs one to publish to.
#[derive(Debug, Default)]
pub(crate) struct Pool {
    handles: Mutex<Vec<AgentHandle>>,
    next: AtomicUsize,
}

impl Pool {
    pub(crate) fn new(handles: Vec<AgentHandle>) -> Self {
        Pool {
            handles: Mutex::new(handles),
            next: AtomicUsize::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<AgentHandle>> {
        // Every mutation is a single push or retain: a poisoned lock still
        // holds a consistent list.
        self.handles
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// One instance, in turn.
    pub(crate) fn pick(&self) -> Option<AgentHandle> {
        let handles = self.lock();
        if handles.is_empty() {
            return None;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % handles.len();
        Some(handles[i].clone())
    }

    /// The instance ids.
    pub(crate) fn ids(&self) -> Vec<String> {
        self.lock().iter().map(|h| h.id().to_owned()).collect()
    }
}

/// A remote agent as a [`Tool`] a model can call.
///
/// Its argument is [`RemoteToolArgs`]: the prompt, and optional text files.
/// A call prompts the agent at its advertised subject (§4.3), collects the
/// streamed text (§6.3) and returns it. An error signal (§9), an inactivity
/// timeout (§6.6) and a vanished agent become tool errors the model reads,
/// such as `agent researcher went silent for 10s and was given up on`.
/// Questions from the agent (§7) follow the [`QueryPolicy`].
///
/// Inside [`with_caller`](crate::with_caller) the tool also reports
/// `done:NAME` or `failed:NAME` status tokens (§6.4) to the caller when
/// the call ends (the `LlmAgent` already reports `tool:NAME` when it starts).
///
/// ```no_run
/// # async fn run(client: nap_nats::Client) -> Result<(), Box<dyn std::error::Error>> {
/// use nap_orchestrator::AgentHandleExt;
/// use nap_proto::DiscoveryFilter;
///
/// let handle = client
///     .find(DiscoveryFilter { name: Some("researcher".into()), ..DiscoveryFilter::any() })
///     .await?;
/// let tool = handle.as_tool("researcher", "Finds facts about a topic");
/// let agent = nap_llm::LlmAgent::builder(nap_llm::Offline::new()).tool(tool).build();
/// # let _ = agent; Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct RemoteAgentTool {
    name: String,
    description: String,
    pool: Arc<Pool>,
    options: CallOptions,
}

impl RemoteAgentTool {
    /// A tool called `name` that prompts the agent `handle` designates.
    pub fn new(
        handle: AgentHandle,
        name: impl Into<String>,
        description: impl Into<String>,
    ) -> Self {
        Self::from_pool(
            name.into(),
            description.into(),
            Arc::new(Pool::new(vec![handle])),
            CallOptions::default(),
        )
    }

    pub(crate) fn from_pool(
        name: String,
        description: String,
        pool: Arc<Pool>,
        options: CallOptions,
    ) -> Self {
        RemoteAgentTool {
            name,
            description,
            pool,
            options,
        }
    }

    /// Gives up on a call after this long without any message (§6.6).
    pub fn inactivity_timeout(mut self, timeout: Duration) -> Self {
        self.options.inactivity_timeout = timeout;
        self
    }

    /// What to do with the agent's questions (§7).
    pub fn query_policy(mut self, policy: QueryPolicy) -> Self {
        self.options.query_policy = policy;
        self
    }

    /// All call options at once.
    pub fn options(mut self, options: CallOptions) -> Self {
        self.options = options;
        self
    }

    /// The instance ids this tool prompts (several when the agent runs as
    /// several instances that share its subject).
    pub fn instances(&self) -> Vec<String> {
        self.pool.ids()
    }

    /// Prompts the agent and collects its answer; `on_text` sees each piece
    /// of text as it arrives.
    pub async fn prompt(
        &self,
        envelope: Envelope,
        on_text: impl FnMut(&str) + Send,
    ) -> Result<Answer> {
        let handle = self.pool.pick().ok_or_else(|| Error::Gone {
            agent: self.name.clone(),
            why: "no instance of it is online any more".to_owned(),
        })?;
        call_agent(&self.name, &handle, envelope, &self.options, on_text).await
    }
}

#[async_trait]
impl Tool for RemoteAgentTool {
    fn name(&self) -> &str {
        &self.name
    }

    fn description(&self) -> &str {
        &self.description
    }

    fn schema(&self) -> Value {
        schema_for::<RemoteToolArgs>()
    }

    async fn call(&self, arguments: Value) -> Result<String, ToolError> {
        let args: RemoteToolArgs = serde_json::from_value(arguments).map_err(|e| {
            ToolError::new(format!(
                "invalid arguments for agent tool `{}`: {e}; pass {{\"prompt\": \"...\"}}",
                self.name
            ))
        })?;
        let mut envelope = Envelope::text(args.prompt);
        for file in args.attachments {
            envelope = envelope.with_attachment(Attachment::new(file.filename, file.content));
        }
        let outcome = self.prompt(envelope, |_| {}).await;
        match outcome {
            Ok(answer) => {
                query::report(Progress::Done(self.name.clone()).token()).await;
                Ok(answer.to_tool_text())
            }
            Err(error) => {
                tracing::warn!(tool = %self.name, %error, "remote agent call failed");
                query::report(Progress::Failed(self.name.clone()).token()).await;
                Err(ToolError::new(error))
            }
        }
    }
}

/// Adds [`as_tool`](AgentHandleExt::as_tool) to [`AgentHandle`].
pub trait AgentHandleExt {
    /// This agent as a [`RemoteAgentTool`] called `name`.
    fn as_tool(&self, name: impl Into<String>, description: impl Into<String>) -> RemoteAgentTool;
}

impl AgentHandleExt for AgentHandle {
    fn as_tool(&self, name: impl Into<String>, description: impl Into<String>) -> RemoteAgentTool {
        RemoteAgentTool::new(self.clone(), name, description)
    }
}

/// Prompts `handle` (known as `label` in errors), streams the text to
/// `on_text`, answers its questions by `options.query_policy`.
pub(crate) async fn call_agent(
    label: &str,
    handle: &AgentHandle,
    envelope: Envelope,
    options: &CallOptions,
    mut on_text: impl FnMut(&str) + Send,
) -> Result<Answer> {
    let prompt_options = PromptOptions::inactivity_timeout(options.inactivity_timeout);
    let mut stream = handle
        .prompt_with(envelope, prompt_options)
        .await
        .map_err(|e| Error::from_call(label, e))?;
    tracing::debug!(agent = %label, instance = %handle.id(), "remote call started");
    let mut answer = Answer::default();
    while let Some(event) = stream.next().await {
        let event = event.map_err(|e| Error::from_call(label, e))?;
        match event {
            Event::Response(ResponseData::Text(text)) => {
                on_text(&text);
                answer.text.push_str(&text);
            }
            Event::Response(ResponseData::Object {
                text, attachments, ..
            }) => {
                on_text(&text);
                answer.text.push_str(&text);
                answer.attachments.extend(attachments);
            }
            Event::Query(pending) => answer_query(label, pending, &options.query_policy).await?,
            // A broken message makes the answer untrustworthy: the call
            // fails, as every nap consumer of a stream does.
            Event::Violation(violation) => {
                tracing::warn!(agent = %label, %violation, "agent broke the stream rules");
                return Err(Error::from_call(
                    label,
                    nap_nats::Error::Protocol(violation),
                ));
            }
            Event::End => break,
            _ => {}
        }
    }
    Ok(answer)
}

/// Answers one question (§7) by `policy`, or fails the call.
async fn answer_query(label: &str, pending: PendingQuery, policy: &QueryPolicy) -> Result<()> {
    let question = pending.prompt().to_owned();
    let refused = |reason: String| Error::QueryRefused {
        agent: label.to_owned(),
        question: question.clone(),
        reason,
    };
    let reply = match policy {
        QueryPolicy::Refuse => {
            return Err(refused(
                "this orchestrator does not answer questions; put everything the agent needs in the prompt".to_owned(),
            ));
        }
        QueryPolicy::Answer(text) => Envelope::text(text.clone()),
        QueryPolicy::Forward { timeout } => {
            let Some(caller) = current_caller() else {
                return Err(refused(
                    "nobody is prompting this orchestrator over NATS to forward it to; put everything the agent needs in the prompt".to_owned(),
                ));
            };
            tracing::debug!(agent = %label, %question, "forwarding a question to the caller");
            let attachments = pending.query().attachments.clone();
            caller
                .ask_with_attachments(format!("{label} asks: {question}"), attachments, *timeout)
                .await
                .map_err(|e| refused(format!("forwarding it to the caller failed: {e}")))?
        }
    };
    pending
        .answer(reply)
        .await
        .map_err(|e| Error::from_call(label, e))
}
