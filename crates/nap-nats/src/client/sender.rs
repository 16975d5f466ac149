//! Reverse lookup (§13.10): from a verified sender's agent ID back to the
//! agent that registered it, through the verified registrations in
//! `$SRV.INFO.agents`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use nap_proto::identity::AgentId;
use nap_proto::{AgentInfo, DiscoveryFilter};

use super::{AgentHandle, Client};
use crate::Result;

/// How long the reverse-lookup index is reused before `$SRV.INFO.agents`
/// is asked again (§13.10: cache it briefly rather than enumerate per
/// message).
pub const SENDER_INDEX_TTL: Duration = Duration::from_secs(10);

/// Verified registrations by agent ID, in discovery order.
type Index = HashMap<AgentId, Vec<Arc<AgentInfo>>>;

/// The cached index and when it was built.
#[derive(Debug, Default)]
pub(super) struct SenderIndex {
    cached: Mutex<Option<(Instant, Arc<Index>)>>,
    /// One rebuild at a time; concurrent lookups share it.
    rebuild: tokio::sync::Mutex<()>,
}

impl SenderIndex {
    fn fresh(&self) -> Option<Arc<Index>> {
        let cached = self.cached.lock().unwrap_or_else(PoisonError::into_inner);
        cached
            .as_ref()
            .filter(|(at, _)| at.elapsed() < SENDER_INDEX_TTL)
            .map(|(_, index)| index.clone())
    }
}

/// Indexes records by their verified registered identity; claims,
/// undeclared and malformed identities are left out (§13.10).
fn index(records: impl IntoIterator<Item = AgentInfo>) -> Index {
    let mut index = Index::new();
    for info in records {
        if let Some(id) = info.identity.verified().cloned() {
            index.entry(id).or_default().push(Arc::new(info));
        }
    }
    index
}

impl Client {
    /// The agent a verified sender is (§13.10 reverse lookup): an instance
    /// in `$SRV.INFO.agents` whose registration names `id` and whose
    /// `id_sig` verifies. `None` when there is none: the sender is a human,
    /// a plain service, or an agent that is offline or outside this
    /// account's view (§4).
    ///
    /// Pass only an ID that was verified (a [`Sender::verified_id`]): the
    /// lookup identifies, it never authorizes. The index is cached for
    /// [`SENDER_INDEX_TTL`]; when several instances share the ID, the first
    /// to answer discovery is returned.
    ///
    /// [`Sender::verified_id`]: nap_proto::identity::Sender::verified_id
    pub async fn resolve_sender(&self, id: &AgentId) -> Result<Option<AgentHandle>> {
        let index = self.sender_index().await?;
        Ok(index
            .get(id)
            .and_then(|infos| infos.first())
            .map(|info| AgentHandle::from_shared(self.clone(), info.clone())))
    }

    /// Forgets the reverse-lookup index, so the next lookup asks again.
    pub fn refresh_senders(&self) {
        *self
            .inner
            .senders
            .cached
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
    }

    async fn sender_index(&self) -> Result<Arc<Index>> {
        let senders = &self.inner.senders;
        if let Some(index) = senders.fresh() {
            return Ok(index);
        }
        let _one_at_a_time = senders.rebuild.lock().await;
        if let Some(index) = senders.fresh() {
            return Ok(index);
        }
        let agents = self.discover(DiscoveryFilter::any()).await?;
        let built = Arc::new(index(agents.iter().map(|a| a.info().clone())));
        tracing::debug!(verified = built.len(), "reverse-lookup index built");
        *senders
            .cached
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some((Instant::now(), built.clone()));
        Ok(built)
    }
}
