//! A serving instance's handle, and its stop.
//!
//! A stop is bounded by the instance's shutdown timeout whatever the
//! server does: the instance unregisters at once (§8.6), its endpoints are
//! drained ([`super::reader`]), prompts in flight get most of the timeout
//! to finish and are then ended with `500`, and what was published is
//! confirmed by the server only while the connection is up. With nothing
//! in flight and no server, a stop ends at once.

use std::sync::Arc;
use std::time::Duration;

use nap_proto::identity::AgentId;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::core::{Membership, Shared};

/// The share of the shutdown timeout prompts in flight get to finish; the
/// rest is for ending the stragglers and confirming with the server.
const FINISH_SHARE: f64 = 0.8;

/// The subjects an instance serves and beats on.
#[derive(Debug)]
pub(super) struct Subjects {
    pub(super) identity: Option<AgentId>,
    pub(super) prompt: String,
    pub(super) status: String,
    pub(super) heartbeat: String,
}

/// A registered, serving agent instance.
///
/// [`RunningAgent::stop`] stops it gracefully, within its shutdown timeout
/// whatever the server does. Dropping it starts the same stop in the
/// background (on the current Tokio runtime): an instance is never left
/// registered and discoverable while serving nothing.
#[derive(Debug)]
#[must_use = "dropping a RunningAgent stops serving; keep it, or call stop().await"]
pub struct RunningAgent {
    id: String,
    subjects: Subjects,
    permits: Arc<Semaphore>,
    max_concurrent: usize,
    /// `None` once stopped.
    shutdown: Option<Shutdown>,
}

/// Everything a stop needs, taken out of the [`RunningAgent`] once.
pub(super) struct Shutdown {
    pub(super) id: String,
    pub(super) shared: Arc<Shared>,
    pub(super) membership: Membership,
    pub(super) stopping: CancellationToken,
    pub(super) abandon: CancellationToken,
    pub(super) tracker: TaskTracker,
    pub(super) timeout: Duration,
}

impl std::fmt::Debug for Shutdown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shutdown")
            .field("id", &self.id)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Shutdown {
    /// Unregisters (§8.6), drains the endpoints (requests already
    /// delivered are refused with `429`), lets prompts in flight finish
    /// for most of the timeout and ends the rest with `500`, then has the
    /// server confirm every terminator, when there is a server.
    async fn run(self) {
        let deadline = Instant::now() + self.timeout;
        self.stopping.cancel();
        drop(self.membership);
        let _ = tokio::time::timeout_at(deadline, self.shared.close_if_solo()).await;
        self.tracker.close();
        let finish_by = Instant::now() + self.timeout.mul_f64(FINISH_SHARE);
        if tokio::time::timeout_at(finish_by, self.tracker.wait())
            .await
            .is_err()
        {
            self.abandon.cancel();
            // The abandoned prompts now end with 500 and their terminator.
            if tokio::time::timeout_at(deadline, self.tracker.wait())
                .await
                .is_err()
            {
                tracing::error!(id = %self.id, "prompts still running after the shutdown timeout; their callers will time out");
            }
        }
        confirm(&self.id, &self.shared, deadline).await;
    }
}

/// Gets everything published to the server and waits until it has
/// processed it, by the deadline; without a connection there is nothing
/// to wait for.
async fn confirm(id: &str, shared: &Shared, deadline: Instant) {
    let nats = &shared.nats;
    if !crate::wire::connected(nats) {
        tracing::warn!(id = %id, "stopped without a connection to the NATS server: messages still buffered are lost");
        return;
    }
    let confirmed = async { nats.flush().await.is_ok() && shared.confirmed().await };
    match tokio::time::timeout_at(deadline, confirmed).await {
        Ok(true) => tracing::info!(id = %id, "agent stopped"),
        Ok(false) | Err(_) => {
            tracing::warn!(id = %id, "the server did not confirm the last messages on stop")
        }
    }
}

impl RunningAgent {
    pub(super) fn new(
        id: String,
        subjects: Subjects,
        permits: Arc<Semaphore>,
        max_concurrent: usize,
        shutdown: Shutdown,
    ) -> RunningAgent {
        RunningAgent {
            id,
            subjects,
            permits,
            max_concurrent,
            shutdown: Some(shutdown),
        }
    }

    /// The service id: this instance's `instance_id` (§3.4, §8.3).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The agent ID this instance registered and signs its heartbeats with
    /// (§13.10, §13.11); `None` when it has no key, or its key could not
    /// sign at start.
    pub fn identity(&self) -> Option<&AgentId> {
        self.subjects.identity.as_ref()
    }

    /// The subject prompts arrive on.
    pub fn prompt_subject(&self) -> &str {
        &self.subjects.prompt
    }

    /// The subject of the `status` endpoint.
    pub fn status_subject(&self) -> &str {
        &self.subjects.status
    }

    /// The heartbeat subject (§8.1).
    pub fn heartbeat_subject(&self) -> &str {
        &self.subjects.heartbeat
    }

    /// How many prompts are being answered right now.
    pub fn in_flight(&self) -> usize {
        self.max_concurrent - self.permits.available_permits()
    }

    /// Stops gracefully, within the shutdown timeout whatever the server
    /// does: the instance unregisters at once, requests already delivered
    /// to it are refused with `429`, in-flight prompts finish (for most of
    /// the timeout, after which they end with `500`), and, while the
    /// connection is up, the call returns once the server has every
    /// message this instance sent, every terminator included.
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            shutdown.run().await;
        }
    }
}

impl Drop for RunningAgent {
    fn drop(&mut self) {
        let Some(shutdown) = self.shutdown.take() else {
            return;
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(shutdown.run());
            }
            Err(_) => {
                // No runtime to finish on: at least stop accepting and
                // unregister, so the instance is not left discoverable.
                shutdown.stopping.cancel();
                shutdown.abandon.cancel();
                drop(shutdown.membership);
            }
        }
    }
}
