//! `LlmAgent`: a nap [`Agent`] answering with a model, tools and memory.

use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt;
use futures::future::join_all;
use nap_agent::{Agent, AgentError, Request, Responder};
use serde_json::Value;
use tracing::Instrument;

use crate::LlmError;
use crate::llm::{ChatRequest, Llm, StreamEvent};
use crate::memory::{InMemory, Memory};
use crate::message::Message;
use crate::tool::{Tool, ToolCall, ToolSet};
use crate::trace::{traced_chat, traced_tool_call};

/// The system prompt when none is set.
pub const DEFAULT_SYSTEM_PROMPT: &str =
    "You are a helpful assistant answering over the NATS Agent Protocol. Be concise.";

/// The number of tool rounds when none is set.
pub const DEFAULT_MAX_ROUNDS: usize = 8;

/// An agent backed by a model: it streams the model's answer token by
/// token as response chunks (§6.3), runs the tools the model asks for
/// (several at once when it asks for several), sends a `tool:NAME` status
/// (§6.4) for each call, and remembers each session's conversation.
///
/// One prompt is one *turn*: the model is called, its tool calls are run and
/// their results sent back, up to `max_rounds` times, until it answers
/// without tools. If it still asks for tools after `max_rounds` rounds, the
/// prompt fails with `500` and error `too_many_tool_rounds`.
///
/// Conversations are kept per caller ([`session_key`]): per verified
/// sender (§13.7) when the request carries one, else per the envelope's
/// `session` field (§5.6) when the caller sets one, and otherwise not at
/// all, so that one caller never reads another's conversation.
#[derive(Clone)]
pub struct LlmAgent {
    llm: Arc<dyn Llm>,
    system: Option<String>,
    tools: ToolSet,
    max_rounds: usize,
    max_tokens: Option<u32>,
    temperature: Option<f32>,
    memory: Arc<dyn Memory>,
}

impl std::fmt::Debug for LlmAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmAgent")
            .field("model", &self.llm.model())
            .field("tools", &self.tools)
            .field("max_rounds", &self.max_rounds)
            .finish_non_exhaustive()
    }
}

/// Builds an [`LlmAgent`]; see [`LlmAgent::builder`].
#[must_use]
pub struct LlmAgentBuilder {
    agent: LlmAgent,
}

impl std::fmt::Debug for LlmAgentBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.agent.fmt(f)
    }
}

impl LlmAgent {
    /// A builder around a model, with the default system prompt, no tools,
    /// [`DEFAULT_MAX_ROUNDS`] and an [`InMemory`] memory.
    pub fn builder(llm: impl Llm) -> LlmAgentBuilder {
        Self::builder_arc(Arc::new(llm))
    }

    /// Like [`LlmAgent::builder`], for a shared model.
    pub fn builder_arc(llm: Arc<dyn Llm>) -> LlmAgentBuilder {
        LlmAgentBuilder {
            agent: LlmAgent {
                llm,
                system: Some(DEFAULT_SYSTEM_PROMPT.to_owned()),
                tools: ToolSet::new(),
                max_rounds: DEFAULT_MAX_ROUNDS,
                max_tokens: None,
                temperature: None,
                memory: Arc::new(InMemory::default()),
            },
        }
    }

    /// A builder around the model the environment configures (see
    /// [`LlmConfig::from_env`](crate::LlmConfig::from_env)); the offline model when `NAP_LLM` is unset.
    pub fn builder_from_env() -> Result<LlmAgentBuilder, LlmError> {
        Ok(Self::builder_arc(crate::config::from_env()?))
    }

    /// An agent with the model the environment configures, the default
    /// system prompt and no tools.
    pub fn from_env() -> Result<LlmAgent, LlmError> {
        Ok(Self::builder_from_env()?.build())
    }

    /// The model.
    pub fn llm(&self) -> &Arc<dyn Llm> {
        &self.llm
    }

    /// The tools.
    pub fn tools(&self) -> &ToolSet {
        &self.tools
    }
}

impl LlmAgentBuilder {
    /// The system prompt.
    pub fn system(mut self, prompt: impl Into<String>) -> Self {
        self.agent.system = Some(prompt.into());
        self
    }

    /// No system prompt at all.
    pub fn no_system(mut self) -> Self {
        self.agent.system = None;
        self
    }

    /// Adds a tool.
    pub fn tool(mut self, tool: impl Tool) -> Self {
        self.agent.tools.insert(tool);
        self
    }

    /// Adds a shared tool.
    pub fn tool_arc(mut self, tool: Arc<dyn Tool>) -> Self {
        self.agent.tools.insert_arc(tool);
        self
    }

    /// The most tool rounds per prompt.
    pub fn max_rounds(mut self, rounds: usize) -> Self {
        self.agent.max_rounds = rounds;
        self
    }

    /// The most tokens per model call.
    pub fn max_tokens(mut self, tokens: u32) -> Self {
        self.agent.max_tokens = Some(tokens);
        self
    }

    /// The sampling temperature.
    pub fn temperature(mut self, temperature: f32) -> Self {
        self.agent.temperature = Some(temperature);
        self
    }

    /// Where conversations are kept.
    pub fn memory(mut self, memory: impl Memory) -> Self {
        self.agent.memory = Arc::new(memory);
        self
    }

    /// Where conversations are kept, shared.
    pub fn memory_arc(mut self, memory: Arc<dyn Memory>) -> Self {
        self.agent.memory = memory;
        self
    }

    /// The agent.
    pub fn build(self) -> LlmAgent {
        self.agent
    }
}

/// The envelope field (§5.6) a caller sets to continue a conversation
/// across prompts when it has no verified identity.
pub const SESSION_FIELD: &str = "session";

/// The conversation a request belongs to, `None` for none:
///
/// 1. a verified sender (§13.7) has its own: `verified:{agent id}`, or
///    `verified:{agent id}/{session}` when it also sets the `session` field,
///    so one caller can keep several;
/// 2. otherwise the envelope's `session` field (§5.6), when set: `session:{value}`.
///    The field is only a name, so anyone who knows it continues that
///    conversation; callers that need privacy should sign;
/// 3. otherwise none: the prompt is answered without memory, and nothing is
///    kept. The serving instance is never the key, since every caller of
///    one instance would then share one conversation.
pub fn session_key(request: &Request) -> Option<String> {
    let field = match request.envelope.extra.get(SESSION_FIELD) {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::Null) | Some(Value::String(_)) | None => None,
        Some(other) => Some(other.to_string()),
    };
    match (request.sender().verified_id(), field) {
        (Some(id), Some(field)) => Some(format!("verified:{id}/{field}")),
        (Some(id), None) => Some(format!("verified:{id}")),
        (None, Some(field)) => Some(format!("session:{field}")),
        (None, None) => None,
    }
}

/// A failure of one prompt: the model's or the responder's.
enum TurnError {
    Llm(LlmError),
    Agent(AgentError),
}

impl From<LlmError> for TurnError {
    fn from(e: LlmError) -> Self {
        TurnError::Llm(e)
    }
}

impl From<nap_agent::SendError> for TurnError {
    fn from(e: nap_agent::SendError) -> Self {
        TurnError::Agent(e.into())
    }
}

impl LlmAgent {
    async fn turn(
        &self,
        request: &Request,
        responder: &Responder,
        session: Option<&str>,
    ) -> Result<(), TurnError> {
        let history = match session {
            Some(session) => self.memory.load(session).await?,
            None => Vec::new(),
        };
        let mut turn = vec![Message::user_with_attachments(
            request.prompt(),
            request.attachments(),
        )];
        let tools = self.tools.specs();
        for round in 1.. {
            let mut messages = Vec::with_capacity(history.len() + turn.len() + 1);
            messages.extend(self.system.as_deref().map(Message::system));
            messages.extend(history.iter().cloned());
            messages.extend(turn.iter().cloned());
            let chat = ChatRequest {
                messages,
                tools: tools.clone(),
                max_tokens: self.max_tokens,
                temperature: self.temperature,
            };
            let mut stream = traced_chat(self.llm.as_ref(), chat, round);
            let mut completion = None;
            while let Some(event) = stream.next().await {
                match event? {
                    StreamEvent::Text(text) if !text.is_empty() => responder.text(text).await?,
                    StreamEvent::Done(c) => {
                        completion = Some(c);
                        break;
                    }
                    _ => {}
                }
            }
            drop(stream);
            let completion = completion.ok_or_else(|| LlmError::StreamInterrupted {
                reason: "the model's stream ended without a final message".into(),
            })?;
            let calls: Vec<ToolCall> = completion.message.tool_calls().cloned().collect();
            turn.push(completion.message);
            if calls.is_empty() {
                if let Some(session) = session {
                    self.memory.append(session, turn).await?;
                }
                return Ok(());
            }
            if round > self.max_rounds {
                return Err(LlmError::TooManyToolRounds {
                    rounds: self.max_rounds,
                }
                .into());
            }
            // §6.4: tell the caller what is happening while the tools run.
            for call in &calls {
                responder
                    .status(nap_proto::Progress::Started(call.name.clone()).token())
                    .await?;
            }
            let results = join_all(calls.iter().map(|c| traced_tool_call(&self.tools, c))).await;
            turn.push(Message::tool_results(results));
        }
        Ok(())
    }
}

#[async_trait]
impl Agent for LlmAgent {
    async fn prompt(&self, request: Request, responder: Responder) -> Result<(), AgentError> {
        let session = session_key(&request);
        let span = tracing::info_span!(
            "llm.agent",
            model = self.llm.model(),
            session = session.as_deref().unwrap_or("-"),
            tools = self.tools.len(),
        );
        match self
            .turn(&request, &responder, session.as_deref())
            .instrument(span)
            .await
        {
            Ok(()) => Ok(()),
            Err(TurnError::Llm(e)) => Err(e.into()),
            Err(TurnError::Agent(e)) => Err(e),
        }
    }
}
