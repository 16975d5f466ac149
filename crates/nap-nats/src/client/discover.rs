//! Discovery (§4): `$SRV.INFO.agents`, `$SRV.INFO.agents.{id}` and
//! `$SRV.PING.agents`, collected by the sans-IO [`Discovery`] machine.

use std::collections::HashSet;

use bytes::Bytes;
use futures::StreamExt;
use nap_proto::{AgentInfo, Discovery, DiscoveryConfig, DiscoveryFilter, ReplyOutcome};
use nap_proto::{INFO_SUBJECT, PING_SUBJECT, info_subject_for};
use nap_proto::{STATS_SUBJECT, ServiceStats};

use super::{AgentHandle, Client, is_no_responders, now, sleep_until};
use crate::{Error, Result};

pub use nap_proto::PingRecord;

impl Client {
    /// Every agent matching `filter`, with the default timing: done 750 ms
    /// after the last reply, or 2 s after the request (§4.1).
    ///
    /// Non-agent services, malformed records and agents of an incompatible
    /// protocol version (§11.2) are dropped, each logged at debug level with
    /// the reason.
    pub async fn discover(&self, filter: DiscoveryFilter) -> Result<Vec<AgentHandle>> {
        self.discover_with(filter, DiscoveryConfig::default()).await
    }

    /// Like [`discover`](Self::discover), with explicit timing.
    pub async fn discover_with(
        &self,
        filter: DiscoveryFilter,
        config: DiscoveryConfig,
    ) -> Result<Vec<AgentHandle>> {
        // §4.1: one `$SRV.INFO.agents` request, every instance replies.
        let discovery = self
            .round(
                INFO_SUBJECT,
                config,
                filter,
                |discovery, at, payload| match discovery.handle_reply(at, payload) {
                    ReplyOutcome::Matched => {}
                    outcome => log_dropped(&outcome),
                },
            )
            .await?;
        let agents: Vec<AgentHandle> = discovery
            .into_agents()
            .into_iter()
            .map(|info| AgentHandle::new(self.clone(), info))
            .collect();
        tracing::debug!(found = agents.len(), "discovery done");
        Ok(agents)
    }

    /// The first agent matching `filter`: discovery stops at the first
    /// match instead of waiting for the stall (§4.1).
    ///
    /// [`Error::NotFound`] when none answers before the deadline.
    pub async fn find(&self, filter: DiscoveryFilter) -> Result<AgentHandle> {
        let config = DiscoveryConfig {
            stop_at_first_match: true,
            ..DiscoveryConfig::default()
        };
        let described = describe(&filter);
        self.discover_with(filter, config)
            .await?
            .into_iter()
            .next()
            .ok_or(Error::NotFound { filter: described })
    }

    /// One instance by its service id, via `$SRV.INFO.agents.{id}` (§4.2).
    ///
    /// [`Error::NotFound`] when no instance has that id,
    /// [`Error::Info`] when its record is not a usable agent record, and
    /// [`Error::Incompatible`] when its protocol version is (§11.2).
    pub async fn lookup(&self, instance_id: &str) -> Result<AgentHandle> {
        // §4.2: direct lookup.
        let subject = info_subject_for(instance_id);
        let request = async_nats::Request::new()
            .payload(Bytes::new())
            .timeout(Some(DiscoveryConfig::default().deadline));
        let msg = match self.nats().send_request(subject.clone(), request).await {
            Ok(msg) => msg,
            Err(e) if e.kind() == async_nats::RequestErrorKind::NoResponders => {
                return Err(Error::NotFound {
                    filter: format!("instance_id={instance_id}"),
                });
            }
            Err(source) => return Err(Error::Request { subject, source }),
        };
        let info = AgentInfo::parse(&msg.payload)?;
        // §11.2: the caller applies the compatibility rules to every record.
        let filter = DiscoveryFilter {
            instance_id: Some(instance_id.to_owned()),
            ..DiscoveryFilter::any()
        };
        filter.check(&info).map_err(|miss| Error::Incompatible {
            instance_id: instance_id.to_owned(),
            miss,
        })?;
        Ok(AgentHandle::new(self.clone(), info))
    }

    /// Every instance reachable now, via `$SRV.PING.agents` (§4.1, §8.4),
    /// collected with the discovery timing. Replies that are not `agents`
    /// service records are dropped; one record per instance id.
    pub async fn ping(&self) -> Result<Vec<PingRecord>> {
        let mut seen = HashSet::new();
        let mut records = Vec::new();
        // The discovery machine only keeps time here (stall, deadline): ping
        // records are not full agent records, so its outcome is ignored.
        self.round(
            PING_SUBJECT,
            DiscoveryConfig::default(),
            DiscoveryFilter::any(),
            |discovery, at, payload| {
                let _timing_only = discovery.handle_reply(at, payload);
                match PingRecord::parse(payload) {
                    Some(record) if seen.insert(record.id.clone()) => records.push(record),
                    Some(record) => tracing::debug!(id = %record.id, "duplicate ping reply"),
                    None => tracing::debug!(
                        reply = %String::from_utf8_lossy(payload),
                        "dropping ping reply: not an agents service record (§3.1)"
                    ),
                }
            },
        )
        .await?;
        Ok(records)
    }

    /// The request counters of every agent instance reachable now, via
    /// `$SRV.STATS.agents`, collected with the discovery timing; one entry
    /// per instance id, in the order they answered. Replies that are not an
    /// `agents` service's stats are dropped.
    pub async fn stats(&self) -> Result<Vec<ServiceStats>> {
        let mut seen = HashSet::new();
        let mut all = Vec::new();
        self.round(
            STATS_SUBJECT,
            DiscoveryConfig::default(),
            DiscoveryFilter::any(),
            |discovery, at, payload| {
                let _timing_only = discovery.handle_reply(at, payload);
                match ServiceStats::parse(payload) {
                    Some(stats) if seen.insert(stats.id.clone()) => all.push(stats),
                    Some(stats) => tracing::debug!(id = %stats.id, "duplicate stats reply"),
                    None => tracing::debug!(
                        reply = %String::from_utf8_lossy(payload),
                        "dropping stats reply: not an agents service's stats (§3.1)"
                    ),
                }
            },
        )
        .await?;
        Ok(all)
    }

    /// Sends one request to `subject` with a fresh inbox and feeds every
    /// reply to `on_reply` until the discovery machine says done.
    async fn round(
        &self,
        subject: &str,
        config: DiscoveryConfig,
        filter: DiscoveryFilter,
        mut on_reply: impl FnMut(&mut Discovery, std::time::Instant, &[u8]),
    ) -> Result<Discovery> {
        let nats = self.nats();
        let inbox = nats.new_inbox();
        // The inbox subscription exists before the request is published, so
        // no reply can arrive unheard.
        let mut replies =
            nats.subscribe(inbox.clone())
                .await
                .map_err(|source| Error::Subscribe {
                    subject: inbox.clone(),
                    source,
                })?;
        nats.publish_with_reply(subject.to_owned(), inbox.clone(), Bytes::new())
            .await
            .map_err(|source| Error::Publish {
                subject: subject.to_owned(),
                source,
            })?;
        // A reconnect during the round loses the replies sent meanwhile (a
        // server that cut a slow consumer off, a network blip): the list
        // could be incomplete, so the round fails instead of saying less.
        let connects = super::prompt::connects(nats);
        let mut discovery = Discovery::new(now(), config, filter);
        loop {
            discovery.handle_timeout(now());
            if let Some(reason) = discovery.poll() {
                tracing::debug!(%subject, ?reason, "collection done");
                break;
            }
            let Some(until) = discovery.poll_timeout() else {
                break;
            };
            tokio::select! {
                // Replies first: the inbox is drained as fast as it fills.
                biased;
                msg = replies.next() => match msg {
                    Some(msg) if is_no_responders(&msg) => {
                        tracing::debug!(%subject, "no agent is running (no responders)");
                        break;
                    }
                    Some(msg) => on_reply(&mut discovery, now(), &msg.payload),
                    None => return Err(Error::SubscriptionClosed { subject: inbox }),
                },
                () = sleep_until(until) => {}
            }
        }
        // A first connection made during the round (a client still
        // connecting in the background) loses nothing: the request waited
        // for it. Only a connection established again does.
        if connects > 0 && super::prompt::connects(nats) != connects {
            return Err(Error::DiscoveryLost(nap_proto::Loss::Reconnected));
        }
        Ok(discovery)
    }
}

/// Logs why a `$SRV.INFO` reply was not kept.
fn log_dropped(outcome: &ReplyOutcome) {
    match outcome {
        ReplyOutcome::Matched => {}
        ReplyOutcome::Filtered(miss) => tracing::debug!(%miss, "agent filtered out"),
        ReplyOutcome::Rejected(error) => {
            tracing::debug!(%error, "dropping $SRV.INFO reply: not a usable agent record")
        }
        ReplyOutcome::Duplicate => tracing::debug!("dropping duplicate $SRV.INFO reply"),
        ReplyOutcome::Late => tracing::debug!("dropping $SRV.INFO reply after collection ended"),
    }
}

/// A filter in words, for [`Error::NotFound`].
fn describe(filter: &DiscoveryFilter) -> String {
    let parts: Vec<String> = [
        ("agent", &filter.agent),
        ("owner", &filter.owner),
        ("name", &filter.name),
        ("session", &filter.session),
        ("instance_id", &filter.instance_id),
    ]
    .into_iter()
    .filter_map(|(field, value)| value.as_ref().map(|v| format!("{field}={v}")))
    .collect();
    if parts.is_empty() {
        "any agent".to_owned()
    } else {
        parts.join(" ")
    }
}
