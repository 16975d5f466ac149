//! The micro-service API (`$SRV.PING`, `$SRV.INFO`, `$SRV.STATS`, §3,
//! §4), answered by the host for every agent it holds, from five shared
//! subscriptions ([`FLEET_SUBJECTS`]), with the replies built by
//! [`nap_proto::micro`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};

use async_nats::{Client, Subscriber};
use bytes::Bytes;
use futures::StreamExt;
use nap_proto::micro::{
    EndpointCounters, FLEET_SUBJECTS, ServiceRecord, SrvRequest, SrvScope, SrvVerb,
};
use tokio_util::sync::CancellationToken;

use super::beats::BeatSource;
use crate::{Error, Result};

/// The registered agents of a host, by service id.
pub(super) type Members = RwLock<HashMap<String, Arc<Member>>>;

/// One registered agent, as the `$SRV` responder sees it.
pub(super) struct Member {
    /// What the replies are built from, on each request: kept built,
    /// the `$SRV.INFO` reply would cost about 0.7 KiB per agent.
    pub(super) record: ServiceRecord,
    /// The counters of `prompt` and `status`, in the record's order.
    pub(super) counters: [Arc<Mutex<EndpointCounters>>; 2],
    /// Held here so that the heartbeat task's weak handle lives exactly
    /// as long as the registration.
    pub(super) _beat: Arc<BeatSource>,
}

impl Member {
    fn reply(&self, verb: SrvVerb) -> Bytes {
        match verb {
            SrvVerb::Info => Bytes::from(self.record.info()),
            SrvVerb::Ping => Bytes::from(self.record.ping()),
            SrvVerb::Stats => {
                let counters = self
                    .counters
                    .each_ref()
                    .map(|c| c.lock().unwrap_or_else(PoisonError::into_inner).clone());
                Bytes::from(self.record.stats(&counters))
            }
        }
    }
}

/// Subscribes the micro-service API subjects and starts answering them
/// from `members`, until `done`; the task unsubscribes before it ends.
pub(super) async fn start(
    nats: &Client,
    members: Weak<Members>,
    done: CancellationToken,
) -> Result<tokio::task::JoinHandle<()>> {
    let mut subscriptions = Vec::with_capacity(FLEET_SUBJECTS.len());
    for subject in FLEET_SUBJECTS {
        let subscription = nats
            .subscribe(subject)
            .await
            .map_err(|source| Error::Subscribe {
                subject: subject.to_owned(),
                source,
            })?;
        subscriptions.push(subscription);
    }
    Ok(tokio::spawn(answer_srv(
        nats.clone(),
        futures::stream::select_all(subscriptions),
        members,
        done,
    )))
}

/// Answers the micro-service API for every member, until the fleet is gone.
async fn answer_srv(
    nats: Client,
    mut requests: futures::stream::SelectAll<Subscriber>,
    members: Weak<Members>,
    done: CancellationToken,
) {
    loop {
        let message = tokio::select! {
            message = requests.next() => message,
            () = done.cancelled() => None,
        };
        let Some(message) = message else { break };
        let Some(reply) = message.reply else { continue };
        let Some(request) = SrvRequest::parse(message.subject.as_str()) else {
            continue;
        };
        let Some(all) = members.upgrade() else {
            break;
        };
        let answering: Vec<Arc<Member>> = {
            let members = all.read().unwrap_or_else(PoisonError::into_inner);
            match request.scope {
                SrvScope::Instance(id) => members.get(id).cloned().into_iter().collect(),
                SrvScope::All | SrvScope::Agents => members.values().cloned().collect(),
            }
        };
        drop(all);
        for member in answering {
            if let Err(e) = nats
                .publish(reply.clone(), member.reply(request.verb))
                .await
            {
                // The caller's discovery round may come up short.
                tracing::warn!(error = %e, verb = ?request.verb, "micro-service API replies not published");
                break;
            }
        }
    }
    for mut subscription in requests {
        let _ = subscription.unsubscribe().await;
    }
}
