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

pub mod client;
mod error;
pub mod host;
mod wire;

pub use client::{AgentHandle, Client, Event, PendingQuery, PromptOptions, PromptStream};
pub use error::{Error, Result};
pub use host::{AgentService, AgentServiceBuilder, RunningAgent};

pub use nap_agent;
pub use nap_proto;
