//! LLM-backed agents for nap: the [`Llm`] and [`Tool`] traits, providers
//! (OpenAI-compatible, Anthropic, and a deterministic [`Offline`] model),
//! conversation [`Memory`], and [`LlmAgent`], a nap [`Agent`](nap_agent::Agent)
//! with a tool-calling loop and token streaming.
//!
//! ```
//! use nap_agent::{Agent, Request, Responder};
//! use nap_llm::{LlmAgent, Offline, tools};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let agent = LlmAgent::builder(Offline::new())
//!     .system("You are a helpful assistant.")
//!     .tool(tools::calculator())
//!     .max_rounds(4)
//!     .build();
//!
//! let (out, collected) = Responder::collector();
//! agent.prompt(Request::text("what is 6 * 7?"), out).await.unwrap();
//! assert!(collected.text().contains("calculator returned: 42"));
//! assert!(collected.text().contains("offline model"));
//! # });
//! ```
//!
//! **Conversations are per caller** ([`session_key`]): a prompt from a
//! verified sender (§13.7) continues that sender's conversation; otherwise
//! the envelope field `session` ([`SESSION_FIELD`], an unknown field in the
//! sense of §5.6) names one, which anyone who knows the value may continue;
//! otherwise the prompt is answered without memory and nothing is kept.
//! The serving instance is never the key, so two callers of one served
//! agent never share a conversation.
//!
//! Programs pick their model from the environment with
//! [`LlmAgent::from_env`] or [`from_env`]: `NAP_LLM` (`openai`,
//! `anthropic`, `ollama`, `offline`; offline when unset), `NAP_MODEL`,
//! `NAP_LLM_BASE_URL`, `OPENAI_API_KEY`, `ANTHROPIC_API_KEY`.
//!
//! Cargo features: `openai` (OpenAI and compatible servers such as Ollama,
//! vLLM, llama.cpp and LM Studio) and `anthropic`, both on by default.

mod agent;
mod config;
mod error;
mod llm;
mod memory;
mod message;
pub mod provider;
mod tool;
pub mod tools;
mod trace;

pub use agent::{
    DEFAULT_MAX_ROUNDS, DEFAULT_SYSTEM_PROMPT, LlmAgent, LlmAgentBuilder, SESSION_FIELD,
    session_key,
};
pub use config::{
    ENV_ANTHROPIC_KEY, ENV_BASE_URL, ENV_MODEL, ENV_OPENAI_KEY, ENV_PROVIDER, HttpOptions,
    LlmConfig, Provider, RetryPolicy, from_env,
};
pub use error::LlmError;
pub use llm::{
    ChatRequest, ChatStream, Completion, CompletionBuilder, FinishReason, Llm, StreamEvent,
    ToolCallDelta, Usage, complete,
};
pub use memory::{InMemory, Memory, NoMemory};
pub use message::{ContentPart, Message, Role, media_type_for};
#[cfg(feature = "anthropic")]
pub use provider::Anthropic;
pub use provider::Offline;
#[cfg(feature = "openai")]
pub use provider::OpenAi;
pub use tool::{
    FnTool, Tool, ToolCall, ToolError, ToolResult, ToolSet, ToolSpec, schema_for, tool_fn,
};
pub use trace::{traced_chat, traced_tool_call};

pub use schemars;
