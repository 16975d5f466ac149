//! A fleet: many agents in one process, on one connection, each still its
//! own registration.
//!
//! A fleet is the host core ([`super::core`]) with many agents: it answers
//! the micro-service API (`$SRV.PING`, `$SRV.INFO`, `$SRV.STATS`, §3, §4)
//! for every agent it holds, from five shared subscriptions
//! ([`FLEET_SUBJECTS`](nap_proto::micro::FLEET_SUBJECTS)), with the replies
//! built by [`nap_proto::micro`]; each agent keeps only its two
//! queue subscriptions (`prompt` and `status` must stay per agent: a
//! wildcard queue subscription would take other processes' prompts). The
//! heartbeats of all agents come from one task with one timer queue, and
//! the registration round trip (§8.2: beat only once the server has the
//! registration) is shared by the agents registering at the same time.
//!
//! An [`AgentService`](super::AgentService) is the same machinery with one
//! agent, so on the wire a fleet agent is indistinguishable from one: its
//! own service id, metadata, endpoints, counters, heartbeats and `status`.
//! It is configured with the same [`AgentServiceBuilder`] and stopped
//! through the same [`RunningAgent`].
//!
//! One trade-off: the `$SRV.{VERB}.agents.{id}` requests of every `agents`
//! instance reach every fleet (one wildcard subscription instead of three
//! per agent); a fleet answers only its own. `docs/scale.md` weighs it.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use nap_agent::echo::EchoAgent;
//! use nap_nats::{AgentService, Fleet};
//!
//! let nats = nap_nats::connect_options().connect("nats://127.0.0.1:4222").await?;
//! let fleet = Fleet::start(nats).await?;
//! let mut agents = Vec::new();
//! for i in 0..100 {
//!     let builder = AgentService::builder("echo", "alice", format!("echo-{i}"));
//!     agents.push(fleet.add(builder, EchoAgent::default()).await?);
//! }
//! println!("{} agents registered", fleet.len());
//! for agent in agents {
//!     agent.stop().await;
//! }
//! # Ok(()) }
//! ```

use std::sync::Arc;

use async_nats::Client;
use nap_agent::Agent;

use super::core::HostCore;
use super::{AgentServiceBuilder, RunningAgent};
use crate::Result;

/// Many agents on one connection; see the [module docs](self).
///
/// Cloning gives another handle to the same fleet. The fleet's shared
/// tasks run while a handle or one of its agents is alive.
#[derive(Clone)]
pub struct Fleet {
    core: HostCore,
}

impl std::fmt::Debug for Fleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fleet")
            .field("agents", &self.len())
            .finish()
    }
}

/// The most bytes of refused requests the fleet queues for publishing,
/// across its agents, before readers publish refusals themselves.
const FLEET_BACKLOG: u64 = 64 << 20;

impl Fleet {
    /// Subscribes the micro-service API subjects on `nats` and starts the
    /// fleet's shared tasks. Connect with [`crate::connect_options`].
    pub async fn start(nats: Client) -> Result<Fleet> {
        Ok(Fleet {
            core: HostCore::start(nats, FLEET_BACKLOG, false).await?,
        })
    }

    /// Registers `agent`, configured by `builder` exactly as
    /// [`AgentServiceBuilder::start`] would, and starts serving it. Returns
    /// once the server has the registration; adds made concurrently share
    /// one round trip to the server.
    pub async fn add(
        &self,
        builder: AgentServiceBuilder,
        agent: impl Agent,
    ) -> Result<RunningAgent> {
        self.core.add(builder, Arc::new(agent)).await
    }

    /// How many agents are registered.
    pub fn len(&self) -> usize {
        self.core.len()
    }

    /// Whether no agent is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The service ids of the registered agents, in no particular order.
    pub fn ids(&self) -> Vec<String> {
        self.core.ids()
    }
}
