//! Multi-agent orchestration over the NATS Agent Protocol: specialised
//! agents, each its own NATS service in any language, coordinated by an
//! orchestrator that discovers them and calls them.
//!
//! - [`RemoteAgentTool`] ([`AgentHandleExt::as_tool`]): a discovered agent
//!   as a `nap-llm` tool. The model writes a prompt, the agent answers over
//!   NATS, its errors, silences and disappearance become tool errors the
//!   model reads, its questions follow a [`QueryPolicy`].
//! - [`AgentTools`]: the six agent tools of the agent-tools contract
//!   (discover, prompt, wait, answer, cancel, list) for any model.
//! - [`Supervisor`]: an LLM agent that works through other agents with
//!   the agent tools, its calls scoped to the prompt it serves.
//! - [`Pipeline`]: sequences, fan-outs with a gather step, and bounded maps
//!   without an LLM router, with per-step [`StepPolicy`] (timeout, retries)
//!   and [`Progress`] events.
//! - Agents all the way down: a [`Supervisor`] is an `Agent`, and
//!   [`PipelineAgent`] makes a pipeline one, so either can be served on NATS
//!   with `nap_nats::AgentService`, streaming progress and the answer.
//!
//! ## The agent tools
//!
//! [`AgentTools`] implements the agent-tools contract of the
//! synadia-agents SDKs (`docs/agent-tools.md` there): six tools,
//! `discover_agents`, `prompt_agent`, `wait_agent`, `answer_agent`,
//! `cancel_agent` and `list_agent_calls`, with the same names, parameters
//! and results as the TypeScript and Python helpers. A model prompts
//! agents by address (§3.4), blocking by default or detached with
//! `wait: false`, answers their questions (§7) itself, and cancels by
//! dropping the stream (§6.7). Hand [`AgentTools::definitions`] to any
//! model and run its calls with [`AgentTools::call`], or give
//! [`AgentTools::llm_tools`] to a `nap-llm` agent; add
//! [`AgentTools::request_interceptor`] to the host that serves it so the
//! calls of a served prompt end with it.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use nap_nats::Client;
//! use nap_orchestrator::AgentTools;
//! use serde_json::json;
//!
//! let nats = async_nats::connect("nats://127.0.0.1:4222").await?;
//! let tools = AgentTools::builder(Client::new(nats).await?)
//!     .self_address("agents.prompt.planner.demo.main")
//!     .build()?;
//! let found = tools.call("discover_agents", json!({"agent": "echo"})).await;
//! if let Some(address) = found["agents"][0]["address"].as_str() {
//!     let result = tools
//!         .call("prompt_agent", json!({"address": address, "prompt": "hello"}))
//!         .await;
//!     match result["state"].as_str() {
//!         Some("completed") => println!("{}", result["reply"]),
//!         Some("input_required") => println!("it asks: {}", result["question"]),
//!         _ => println!("{result}"),
//!     }
//! }
//!
//! // The same tools for an LLM agent.
//! let mut agent = nap_llm::LlmAgent::builder(nap_llm::from_env()?);
//! for tool in tools.llm_tools() {
//!     agent = agent.tool_arc(tool);
//! }
//! let _agent = agent.build();
//! # Ok(()) }
//! ```
//!
//! ## A supervisor
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//!
//! use nap_nats::{AgentService, Client};
//! use nap_orchestrator::Supervisor;
//! use nap_proto::DiscoveryFilter;
//!
//! let nats = async_nats::connect("nats://127.0.0.1:4222").await?;
//! let client = Client::new(nats.clone()).await?;
//!
//! // Its model discovers and prompts the agents of owner "demo" through the
//! // six agent tools.
//! let supervisor = Supervisor::builder(client.clone(), nap_llm::from_env()?)
//!     .filter(DiscoveryFilter { owner: Some("demo".into()), ..DiscoveryFilter::any() })
//!     .inactivity_timeout(Duration::from_secs(30))
//!     .build()?;
//! println!("its tools: {:?}", supervisor.tools().offered());
//!
//! // Served on NATS, it is an agent like any other.
//! let running = AgentService::builder("supervisor", "demo", "boss")
//!     .start(nats, supervisor)
//!     .await?;
//! let boss = client
//!     .find(DiscoveryFilter { agent: Some("supervisor".into()), ..DiscoveryFilter::any() })
//!     .await?;
//! println!("{}", boss.prompt("Write an article about NATS").await?.text().await?);
//! running.stop().await;
//! # Ok(()) }
//! ```

pub mod agent_tools;
mod error;
mod pipeline;
mod query;
mod remote_tool;
mod serve;
mod supervisor;

pub use agent_tools::{
    AgentTool, AgentTools, AgentToolsBuilder, AgentToolsError, Scope, ScopeInterceptor,
};
pub use error::{Error, Result};
pub use pipeline::{INPUT, PROMPT, Pipeline, Progress, Step, StepPolicy, map_inputs};
pub use query::{DEFAULT_FORWARD_TIMEOUT, QueryPolicy, current_caller, with_caller};
pub use remote_tool::{
    AgentHandleExt, Answer, CallOptions, DEFAULT_INACTIVITY_TIMEOUT, RemoteAgentTool,
    RemoteToolArgs, ToolAttachment,
};
pub use serve::PipelineAgent;
pub use supervisor::{DEFAULT_SUPERVISOR_PROMPT, Supervisor, SupervisorBuilder};
