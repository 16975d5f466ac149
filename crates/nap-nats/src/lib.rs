//! The Synadia Agent Protocol v0.3 over NATS, on async-nats.
//!
//! - [`AgentService`] hosts any [`nap_agent::Agent`]: it registers the
//!   `agents` micro service (§3), validates requests (§5), streams chunks
//!   and the terminator (§6), reports errors (§9), beats (§8) and answers
//!   `status` (§8.7).
//! - [`Client`] discovers agents (§4), prompts them at their advertised
//!   subject (§4.3), streams typed events (§6, §7) and tracks liveness (§8).
//!
//! The wire rules live in `nap-proto`; this crate moves bytes.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use nap_agent::{AgentError, Request, Responder, agent_fn};
//! use nap_nats::{AgentService, Client};
//! use nap_proto::DiscoveryFilter;
//!
//! let nats = async_nats::connect("nats://127.0.0.1:4222").await?;
//!
//! // Host: an agent that streams the prompt back.
//! let echo = agent_fn(|req: Request, out: Responder| async move {
//!     out.text(req.prompt().to_owned()).await?;
//!     Ok::<_, AgentError>(())
//! });
//! let running = AgentService::builder("echo", "alice", "demo").start(nats.clone(), echo).await?;
//!
//! // Caller: discover it and prompt it.
//! let client = Client::new(nats).await?;
//! let agent = client.find(DiscoveryFilter { owner: Some("alice".into()), ..DiscoveryFilter::any() }).await?;
//! assert_eq!(client.prompt(&agent, "hello").await?.text().await?, "hello");
//! running.stop().await;
//! # Ok(()) }
//! ```

pub mod client;
mod error;
pub mod host;
mod wire;

pub use client::{AgentHandle, Client, Event, PendingQuery, PromptOptions, PromptStream};
pub use error::{Error, Result};
pub use host::{AgentService, AgentServiceBuilder, RunningAgent};

pub use nap_agent;
pub use nap_proto;
