//! The Synadia Agent Protocol v0.3 over NATS, on async-nats.
//!
//! - [`AgentService`] hosts any [`nap_agent::Agent`]: it registers the
//!   `agents` micro service (§3), validates requests (§5), streams chunks
//!   and the terminator (§6), reports errors (§9), beats (§8) and answers
//!   `status` (§8.7).
//! - [`Client`] discovers agents (§4), prompts them at their advertised
//!   subject (§4.3), streams typed events (§6, §7) and tracks liveness (§8).
//!
//! The wire rules live in `nap-proto`, whose sans-IO machines
//! (`AgentStream`, `ResponseStream`, `Discovery`, `Liveness`) this crate
//! drives; it only moves bytes and reads clocks.
//!
//! Nothing is lost quietly: NATS core delivers at most once, so a stream
//! whose messages may have been dropped (a reconnect, a full buffer) ends
//! with [`Error::Lost`], the host answers every request it receives
//! (refusing with `429` what it cannot serve), and
//! [`RunningAgent::stop`] returns once every terminator is on the server.
//! Connect with [`connect_options`] so that the NATS client itself keeps
//! bursts instead of dropping them.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use nap_agent::{AgentError, Request, Responder, agent_fn};
//! use nap_nats::{AgentService, Client};
//! use nap_proto::DiscoveryFilter;
//!
//! let nats = nap_nats::connect_options().connect("nats://127.0.0.1:4222").await?;
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

// The caller and the host are private modules re-exported here, so every
// type has one path; the concepts with a vocabulary of their own stay
// namespaces (`identity`, `attachments`, `connect`, `logging`, `trace`,
// `readable`).
pub mod attachments;
mod client;
pub mod connect;
mod error;
mod host;
pub mod identity;
#[cfg(feature = "logging")]
pub mod logging;
mod random;
pub mod readable;
pub mod trace;
mod wire;

pub use client::{
    AgentHandle, Client, ClientBuilder, DEFAULT_MAX_BYTES, Event, InterceptError, IntoEnvelope,
    OutgoingPrompt, PendingQuery, PromptInterceptor, PromptOptions, PromptStream, Reply,
    SENDER_INDEX_TTL, StreamEnd, StreamInfo, Watch,
};
pub use error::{Error, Result};
pub use wire::RoundTripError;

/// How many messages a subscription of a connection made with
/// [`connect_options`] holds before the NATS client drops them: 2^20.
///
/// The client keeps each subscription's unread messages in a queue of this
/// length and drops what arrives while it is full, telling nobody but an
/// optional event callback. async-nats's default is 65,536 messages, which
/// a burst of prompts passes in a fraction of a second. The queue only
/// takes memory for the messages actually waiting, so a long one costs
/// nothing while nap keeps up.
pub const SUBSCRIPTION_CAPACITY: usize = 1 << 20;

/// Connection options for hosting and calling agents: async-nats's
/// defaults with [`SUBSCRIPTION_CAPACITY`], so that bursts of prompts or
/// chunks wait in memory (bounded by nap's own budgets) instead of being
/// dropped by the client, and with the connection's events logged: a
/// warning when the connection to the server is lost, an info line when it
/// is back, a warning when the client drops messages (slow consumer). Add
/// credentials, TLS and the rest as usual.
///
/// ```no_run
/// # async fn run() -> Result<(), async_nats::ConnectError> {
/// let nats = nap_nats::connect_options()
///     .name("my-agent")
///     .connect("nats://127.0.0.1:4222")
///     .await?;
/// # Ok(()) }
/// ```
pub fn connect_options() -> async_nats::ConnectOptions {
    async_nats::ConnectOptions::new()
        .subscription_capacity(SUBSCRIPTION_CAPACITY)
        .event_callback(|event| async move { log_event(&event) })
}

/// Logs a connection event at the level an operator needs it.
pub(crate) fn log_event(event: &async_nats::Event) {
    match event {
        async_nats::Event::Disconnected => {
            tracing::warn!("lost the connection to the NATS server; reconnecting")
        }
        async_nats::Event::Connected => tracing::info!("connected to the NATS server"),
        async_nats::Event::SlowConsumer(sid) => {
            tracing::warn!(
                sid,
                "the NATS client dropped messages of a subscription (slow consumer)"
            )
        }
        other => tracing::debug!(event = ?other, "NATS connection event"),
    }
}
pub use host::{
    AgentService, AgentServiceBuilder, Decision, Fleet, PROMPT_LOG_TARGET, RequestInterceptor,
    RunningAgent, TurnOutcome, shutdown_signal,
};

pub use nap_agent;
pub use nap_proto;
