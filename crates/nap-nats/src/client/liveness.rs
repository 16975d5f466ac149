//! Liveness (§8): heartbeats and `status` replies fed into the sans-IO
//! [`Liveness`] tracker, presence changes broadcast to watchers.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::SystemTime;

use async_nats::HeaderMap;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use nap_proto::identity::{AgentId, SENDER_HEADER, SenderVerifier, VerifierConfig};
use nap_proto::{Heartbeat, Liveness, Presence, Transition};
use tokio::sync::{Notify, broadcast, oneshot};

use super::{AgentHandle, Client, now, sleep_until};
use crate::identity::sign_now;
use crate::{Error, Result};

/// How many transitions a slow watcher may fall behind before it skips some.
const WATCH_BUFFER: usize = 1024;

/// The shared liveness view of one [`Client`].
#[derive(Debug)]
pub(super) struct Tracker {
    state: Mutex<Liveness>,
    transitions: broadcast::Sender<Transition>,
    /// Wakes the timer task when a beat arrives from elsewhere (`status`).
    changed: Notify,
    /// Verifies signed heartbeats (§13.11), with its own nonce set.
    verifier: Mutex<SenderVerifier>,
    /// The verified sender of each instance's last heartbeat (§13.11),
    /// `None` for an unsigned one.
    senders: Mutex<HashMap<String, Option<AgentId>>>,
}

impl Tracker {
    pub(super) fn new(verifier: VerifierConfig) -> Self {
        Tracker {
            state: Mutex::new(Liveness::new()),
            transitions: broadcast::channel(WATCH_BUFFER).0,
            changed: Notify::new(),
            verifier: Mutex::new(SenderVerifier::new(verifier)),
            senders: Mutex::new(HashMap::new()),
        }
    }

    /// Reads one message from the heartbeat subject (§8.3), verifying its
    /// `Agent-Sender` when it carries one (§13.11): a header that fails is
    /// the end of the beat, never a weaker claim; no header is a beat as
    /// in 0.3.
    fn on_heartbeat(&self, msg: &async_nats::Message) {
        let heartbeat = match Heartbeat::decode(&msg.payload) {
            Ok(heartbeat) => heartbeat,
            Err(error) => {
                tracing::debug!(subject = %msg.subject, %error, "dropping heartbeat");
                return;
            }
        };
        let values: Vec<&str> = msg
            .headers
            .as_ref()
            .map(|h| h.get_all(SENDER_HEADER).map(|v| v.as_str()).collect())
            .unwrap_or_default();
        let sender = if values.is_empty() {
            None
        } else {
            let classified = self
                .verifier
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .classify(SystemTime::now(), &msg.subject, values, &msg.payload);
            match classified {
                Ok(sender) => sender.verified_id().cloned(),
                Err(rejection) => {
                    tracing::debug!(
                        subject = %msg.subject,
                        %rejection,
                        "dropping heartbeat: its Agent-Sender does not verify (§13.11)"
                    );
                    return;
                }
            }
        };
        self.senders
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(heartbeat.instance_id.clone(), sender);
        self.observe(heartbeat);
    }

    fn state(&self) -> MutexGuard<'_, Liveness> {
        // A panic while holding the lock leaves a consistent tracker: every
        // mutation is a single call into `Liveness`.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records a heartbeat or status reply (§8.7: the same thing).
    fn observe(&self, heartbeat: Heartbeat) {
        let transition = {
            let mut state = self.state();
            state.handle_heartbeat(now(), heartbeat);
            state.poll()
        };
        if let Some(transition) = transition {
            self.publish(transition);
        }
    }

    /// Marks silent instances offline (§8.2).
    fn poll(&self) {
        let gone: Vec<Transition> = {
            let mut state = self.state();
            state.handle_timeout(now());
            std::iter::from_fn(|| state.poll()).collect()
        };
        for transition in gone {
            self.publish(transition);
        }
    }

    fn publish(&self, transition: Transition) {
        tracing::debug!(
            instance_id = %transition.instance_id,
            presence = ?transition.presence,
            "liveness changed"
        );
        // No watcher is fine: the tracker state is the source of truth.
        let _no_watchers = self.transitions.send(transition);
    }
}

/// The heartbeat task: feeds every beat on `agents.hb.*.*.*` into the
/// tracker and marks instances offline when their beats stop (§8.2). Ends
/// when the last [`Client`] clone drops `stop`, or the subscription ends.
pub(super) async fn run(
    tracker: std::sync::Arc<Tracker>,
    mut heartbeats: async_nats::Subscriber,
    mut stop: oneshot::Receiver<()>,
) {
    loop {
        let next = tracker.state().poll_timeout();
        let timer = async {
            match next {
                Some(deadline) => sleep_until(deadline).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = &mut stop => break,
            msg = heartbeats.next() => match msg {
                Some(msg) => tracker.on_heartbeat(&msg),
                None => break,
            },
            () = timer => tracker.poll(),
            () = tracker.changed.notified() => {}
        }
    }
    tracing::debug!("heartbeat tracking stopped");
}

/// Presence changes as they happen; see [`Client::watch`].
///
/// Ends when the [`Client`] and all its clones are dropped. A watcher that
/// falls more than 1024 transitions behind skips the oldest ones (logged
/// at warn level); [`Client::instances`] always has the current view.
pub struct Watch {
    inner: BoxStream<'static, Transition>,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch").finish_non_exhaustive()
    }
}

impl Stream for Watch {
    type Item = Transition;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Transition>> {
        self.inner.poll_next_unpin(cx)
    }
}

impl Client {
    /// Asks an agent's `status` endpoint for a fresh heartbeat (§8.7).
    ///
    /// The request goes to the `status` subject from the record (under its
    /// local name for a renamed import, §13.6.2), with an empty body,
    /// signed when the connection can sign (§13.5: `status` requests carry
    /// `Agent-Sender` too; a status endpoint never requires it, §13.9). The
    /// reply is fed into the liveness tracker like a heartbeat. Uses the
    /// connection's request timeout.
    pub async fn status(&self, agent: &AgentHandle) -> Result<Heartbeat> {
        let advertised = agent
            .status_subject()
            .ok_or_else(|| Error::NoStatusEndpoint {
                instance_id: agent.id().to_owned(),
            })?;
        let addressing = self.addressing(advertised);
        let mut headers = HeaderMap::new();
        match self.signer().await {
            Ok(signer) => {
                let value =
                    sign_now(&signer, &addressing.sub, &[]).map_err(|source| Error::Signing {
                        subject: addressing.sub.clone(),
                        source,
                    })?;
                headers.insert(SENDER_HEADER, value.as_str());
            }
            Err(reason) => tracing::trace!(%reason, "status request sent without Agent-Sender"),
        }
        let subject = addressing.publish;
        let request = async_nats::Request::new().payload(Bytes::new());
        let request = if headers.is_empty() {
            request
        } else {
            request.headers(headers)
        };
        let msg = match self.nats().send_request(subject.clone(), request).await {
            Ok(msg) => msg,
            Err(e) if e.kind() == async_nats::RequestErrorKind::NoResponders => {
                return Err(Error::NoResponders { subject });
            }
            Err(source) => return Err(Error::Request { subject, source }),
        };
        // §8.7.1, §9: a failure to build the payload comes back as an error.
        if let Some(error) = crate::wire::with_received(&msg, |r| r.error()) {
            return Err(Error::Remote(Box::new(error)));
        }
        let heartbeat = Heartbeat::decode(&msg.payload)?;
        // §8.7: a status reply counts as a just-arrived heartbeat.
        self.tracker().observe(heartbeat.clone());
        self.tracker().changed.notify_one();
        Ok(heartbeat)
    }

    /// Whether an instance is online: its last heartbeat is younger than
    /// 3 × its `interval_s` (§8.2). `false` for instances never seen.
    pub fn is_online(&self, instance_id: &str) -> bool {
        self.tracker().state().is_online(instance_id, now())
    }

    /// The presence of one instance, `None` if it never beat (§8.2).
    pub fn presence(&self, instance_id: &str) -> Option<Presence> {
        self.tracker().state().presence(instance_id, now())
    }

    /// The agent ID that signed the last heartbeat of one instance, as
    /// verified (§13.11); `None` when its last beat was unsigned or it was
    /// never seen. A heartbeat whose signature fails is dropped, so it never
    /// shows here or anywhere else. `status` replies are never signed and do
    /// not change it.
    pub fn heartbeat_sender(&self, instance_id: &str) -> Option<AgentId> {
        self.tracker()
            .senders
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(instance_id)
            .cloned()
            .flatten()
    }

    /// The last heartbeat (or status reply) of one instance.
    pub fn last_heartbeat(&self, instance_id: &str) -> Option<Heartbeat> {
        self.tracker().state().last_heartbeat(instance_id).cloned()
    }

    /// Every instance seen beating, with its presence now, by instance id.
    pub fn instances(&self) -> Vec<(Heartbeat, Presence)> {
        self.tracker()
            .state()
            .instances(now())
            .into_iter()
            .map(|(heartbeat, presence)| (heartbeat.clone(), presence))
            .collect()
    }

    /// Presence changes from now on, as they happen: an instance coming
    /// online (first beat, or a beat after being offline) or going offline
    /// (3 × `interval_s` without a beat, §8.2).
    pub fn watch(&self) -> Watch {
        let receiver = self.tracker().transitions.subscribe();
        let inner = futures::stream::unfold(receiver, |mut receiver| async move {
            loop {
                match receiver.recv().await {
                    Ok(transition) => return Some((transition, receiver)),
                    Err(broadcast::error::RecvError::Lagged(skipped)) => {
                        tracing::warn!(skipped, "liveness watcher fell behind");
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        });
        Watch {
            inner: inner.boxed(),
        }
    }
}
