//! The host: puts any [`Agent`] on NATS as an `agents` micro service.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use nap_agent::{AgentError, Request, Responder, agent_fn};
//! use nap_nats::AgentService;
//!
//! let nats = async_nats::connect("nats://127.0.0.1:4222").await?;
//! let echo = agent_fn(|req: Request, out: Responder| async move {
//!     out.text(req.prompt().to_owned()).await?;
//!     Ok::<_, AgentError>(())
//! });
//! let running = AgentService::builder("echo", "alice", "demo").start(nats, echo).await?;
//! println!("serving as instance {}", running.id());
//! running.stop().await;
//! # Ok(()) }
//! ```
//!
//! Sender identity (§13): the host classifies the sender of every `prompt`
//! and `status` request before anything else sees it (§13.7) and hands the
//! result to the agent as [`nap_agent::Request::sender`]. A prompt with a
//! malformed `Agent-Sender` is refused with `400`, one with a failing
//! signature (tampered, replayed, transplanted, stale) with `401`; an
//! endpoint declared [`MinSenderTrust::Signed`] refuses every unverified
//! prompt with `401` (§13.9); an acceptance hook
//! ([`AgentServiceBuilder::accept_sender`]) refuses with `403` or `401`
//! (§13.7.3). A `status` request is always answered (§13.9). With
//! [`AgentServiceBuilder::sender_key`], the instance registers its own
//! signed identity (§13.10) and signs its heartbeats (§13.11). What this
//! does and does not prove is listed in [`crate::identity`] (§13.12).
//! [`RequestInterceptor`]s run around each admitted prompt.
//!
//! How it is built, for a newcomer: [`builder`] holds the configuration
//! and works out what an instance registers; [`core`] is the host every
//! agent stands on (one `$SRV` responder, [`srv`]; one heartbeat
//! scheduler, [`beats`]; shared round trips and refusals); each agent has
//! a reader ([`reader`]) that hands prompts to [`admit`], where the
//! sans-IO [`AgentStream`](nap_proto::AgentStream) decides; an admitted
//! prompt is served by [`turn`] on a [`reply`] stream; [`stop`] ends it
//! all within the shutdown timeout. A single agent and a [`Fleet`] are the
//! same machinery.

mod admit;
mod beats;
mod builder;
mod core;
mod fleet;
mod gate;
mod intercept;
mod reader;
mod reply;
mod srv;
mod status;
mod stop;
mod turn;

pub use builder::AgentServiceBuilder;
pub use fleet::Fleet;
pub use intercept::{Decision, RequestInterceptor, TurnOutcome};
pub use stop::RunningAgent;
pub use turn::PROMPT_LOG_TARGET;

/// Entry point for hosting an agent; see [`AgentService::builder`].
///
/// Connect with [`crate::connect_options`] (or set a large
/// `subscription_capacity` yourself): the NATS client drops requests that
/// arrive while a subscription's queue is full, and nap can answer only the
/// requests it receives. With the defaults a burst of about 65,000 prompts
/// arriving faster than they are read is enough to lose some.
#[derive(Debug, Clone, Copy)]
pub struct AgentService;

impl AgentService {
    /// Starts configuring an agent with identity `agent`/`owner`/`name`
    /// (§2: the subject tokens; `agent` is also `metadata.agent`).
    pub fn builder(
        agent: impl Into<String>,
        owner: impl Into<String>,
        name: impl Into<String>,
    ) -> AgentServiceBuilder {
        AgentServiceBuilder::new(agent.into(), owner.into(), name.into())
    }
}

/// Waits for the signal that asks a server process to stop: SIGTERM or
/// SIGINT (Ctrl-C) on Unix, Ctrl-C elsewhere. Binaries that host agents
/// wait on it and then call [`RunningAgent::stop`], so that prompts in
/// flight finish and every terminator reaches the server.
pub async fn shutdown_signal() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        Ok(())
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await
    }
}
