//! A fleet: many agents in one process, on one connection, each still its
//! own registration.
//!
//! An [`AgentService`](super::AgentService) registers one async-nats micro
//! service per agent: nine `$SRV` subscriptions and two endpoint
//! subscriptions, each with its own message queue, and a task per
//! subscription set. That is about 70 KiB per agent, and registering
//! thousands takes seconds. A [`Fleet`] answers the micro-service API
//! (`$SRV.PING`, `$SRV.INFO`, `$SRV.STATS`, §3, §4) itself, for every agent
//! it holds, from five shared subscriptions ([`FLEET_SUBJECTS`]), with the
//! replies built by [`nap_proto::micro`]; each agent keeps only its two
//! queue subscriptions (`prompt` and `status` must stay per agent: a
//! wildcard queue subscription would take other processes' prompts). The
//! heartbeats of all agents come from one task with one timer queue, and
//! the registration round trip (§8.2: beat only once the server has the
//! registration) is shared by the agents registering at the same time.
//!
//! On the wire a fleet agent is indistinguishable from an `AgentService`:
//! its own service id, metadata, endpoints, counters, heartbeats and
//! `status`. It is configured with the same [`AgentServiceBuilder`] and
//! stopped through the same [`RunningAgent`].
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

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};
use std::time::{Instant, SystemTime};

use async_nats::{Client, Subscriber};
use bytes::Bytes;
use futures::StreamExt;
use nap_agent::Agent;
use nap_proto::QUEUE_GROUP;
use nap_proto::Verb;
use nap_proto::micro::{
    EndpointCounters, EndpointRecord, FLEET_SUBJECTS, ServiceRecord, SrvRequest, SrvScope, SrvVerb,
};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::prompt::Refusals;
use super::transport::Completion;
use super::{AgentServiceBuilder, BeatSource, Registered, RunningAgent, StatusResponder};
use crate::{Error, Result};

/// Many agents on one connection; see the [module docs](self).
///
/// Cloning gives another handle to the same fleet. The fleet's shared
/// tasks run while a handle or one of its agents is alive.
#[derive(Clone, Debug)]
pub struct Fleet {
    shared: Arc<Shared>,
}

/// What every agent of a fleet shares.
struct Shared {
    nats: Client,
    /// The registered agents, by service id: what `$SRV` requests are
    /// answered from.
    members: RwLock<HashMap<String, Arc<Member>>>,
    /// New heartbeat sources, for the heartbeat task.
    beats: mpsc::UnboundedSender<Weak<BeatSource>>,
    /// Registrations waiting for a round trip to the server.
    barrier: mpsc::UnboundedSender<oneshot::Sender<bool>>,
    /// Refused prompts of every agent, published off the readers.
    refusals: Refusals,
    /// Stops the shared tasks when the last handle goes.
    done: CancellationToken,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("members", &self.len())
            .finish_non_exhaustive()
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.done.cancel();
    }
}

impl Shared {
    fn len(&self) -> usize {
        self.members
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// One registered agent, as the `$SRV` responder sees it.
struct Member {
    /// What the replies are built from, on each request: kept built,
    /// the `$SRV.INFO` reply would cost about 0.7 KiB per agent.
    record: ServiceRecord,
    /// The counters of `prompt` and `status`, in the record's order.
    counters: [Arc<Mutex<EndpointCounters>>; 2],
    /// Held here so that the heartbeat task's weak handle lives exactly
    /// as long as the registration.
    _beat: Arc<BeatSource>,
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

/// A fleet agent's registration; dropping it unregisters the agent.
pub(super) struct Membership {
    shared: Arc<Shared>,
    id: String,
}

impl std::fmt::Debug for Membership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Membership").field("id", &self.id).finish()
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.shared
            .members
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.id);
    }
}

/// The most bytes of refused requests the fleet queues for publishing,
/// across its agents, before readers publish refusals themselves.
const FLEET_BACKLOG: u64 = 64 << 20;

impl Fleet {
    /// Subscribes the micro-service API subjects on `nats` and starts the
    /// fleet's shared tasks. Connect with [`crate::connect_options`].
    pub async fn start(nats: Client) -> Result<Fleet> {
        let mut subscriptions = Vec::with_capacity(FLEET_SUBJECTS.len());
        for subject in FLEET_SUBJECTS {
            let subscription =
                nats.subscribe(subject)
                    .await
                    .map_err(|source| Error::Subscribe {
                        subject: subject.to_owned(),
                        source,
                    })?;
            subscriptions.push(subscription);
        }
        let (beats, beat_queue) = mpsc::unbounded_channel();
        let (barrier, waiting) = mpsc::unbounded_channel();
        let (refusals, _refusing) = Refusals::start(FLEET_BACKLOG);
        let done = CancellationToken::new();
        let shared = Arc::new(Shared {
            nats: nats.clone(),
            members: RwLock::new(HashMap::new()),
            beats,
            barrier,
            refusals,
            done: done.clone(),
        });
        tokio::spawn(answer_srv(
            nats.clone(),
            futures::stream::select_all(subscriptions),
            Arc::downgrade(&shared),
            done.clone(),
        ));
        tokio::spawn(beat_all(nats.clone(), beat_queue, done.clone()));
        tokio::spawn(round_trips(nats, waiting, done));
        Ok(Fleet { shared })
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
        let shared = &self.shared;
        let nats = &shared.nats;
        let plan = builder.plan(nats).await?;
        let id = nuid::next().to_string();
        let subscribe = |subject: &str| {
            let subject = subject.to_owned();
            async move {
                nats.queue_subscribe(subject.clone(), QUEUE_GROUP.to_owned())
                    .await
                    .map_err(|source| Error::Subscribe { subject, source })
            }
        };
        // §2.1, §3.3, §8.7: both endpoints in queue group "agents".
        let prompts = subscribe(&plan.prompt_subject).await?;
        let statuses = subscribe(&plan.status_subject).await?;

        let serving = builder.serving(&plan, &id, nats, Arc::new(agent));
        let record = ServiceRecord {
            id: id.clone(),
            version: builder.version.clone(),
            description: plan.description.clone(),
            metadata: plan.metadata.clone(),
            started: nap_proto::utc_timestamp(SystemTime::now()).unwrap_or_default(),
            endpoints: vec![
                EndpointRecord {
                    name: Verb::Prompt.as_str().to_owned(),
                    subject: plan.prompt_subject.clone(),
                    queue_group: QUEUE_GROUP.to_owned(),
                    metadata: plan.registration.prompt_metadata(),
                },
                EndpointRecord {
                    name: Verb::Status.as_str().to_owned(),
                    subject: plan.status_subject.clone(),
                    queue_group: QUEUE_GROUP.to_owned(),
                    metadata: HashMap::new(),
                },
            ],
        };
        let counters: [Arc<Mutex<EndpointCounters>>; 2] = Default::default();
        let member = Arc::new(Member {
            record,
            counters: counters.clone(),
            _beat: serving.beat.clone(),
        });
        shared
            .members
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id.clone(), member);
        let membership = Membership {
            shared: shared.clone(),
            id: id.clone(),
        };
        serving.tracker.spawn(read(
            Reader {
                shared: shared.clone(),
                prompts: serving.prompts.clone(),
                status: serving.status.clone(),
                counters,
                stopping: serving.stopping.clone(),
            },
            prompts,
            statuses,
        ));

        // §8.2: the first beat once the server has the subscriptions, so
        // that whoever sees it can also discover the instance.
        let (confirmed, confirmation) = oneshot::channel();
        let _ = shared.barrier.send(confirmed);
        if !confirmation.await.unwrap_or(false) {
            // Unregistered (the membership drops here) and not serving:
            // the reader unsubscribes and refuses what it already holds.
            serving.stopping.cancel();
            return Err(Error::Register {
                source: crate::wire::RoundTripError::NoEcho.into(),
            });
        }
        let _ = shared.beats.send(Arc::downgrade(&serving.beat));
        Ok(serving.running(
            id,
            plan,
            nats.clone(),
            Registered::Fleet(membership),
            builder.shutdown_timeout,
        ))
    }

    /// How many agents are registered.
    pub fn len(&self) -> usize {
        self.shared.len()
    }

    /// Whether no agent is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The service ids of the registered agents, in no particular order.
    pub fn ids(&self) -> Vec<String> {
        self.shared
            .members
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .cloned()
            .collect()
    }
}

/// What one agent's reader needs.
struct Reader {
    shared: Arc<Shared>,
    prompts: Arc<super::prompt::PromptLoop>,
    status: Arc<StatusResponder>,
    counters: [Arc<Mutex<EndpointCounters>>; 2],
    stopping: CancellationToken,
}

/// Reads one agent's `prompt` and `status` subscriptions until the agent
/// stops; then unsubscribes and answers what was already delivered (the
/// prompt loop refuses it with `429`).
async fn read(reader: Reader, mut prompts: Subscriber, mut statuses: Subscriber) {
    let [prompt_counters, status_counters] = reader.counters;
    let nats = &reader.shared.nats;
    let (mut prompts_open, mut statuses_open, mut subscribed) = (true, true, true);
    while prompts_open || statuses_open {
        tokio::select! {
            () = reader.stopping.cancelled(), if subscribed => {
                subscribed = false;
                let _ = prompts.unsubscribe().await;
                let _ = statuses.unsubscribe().await;
            }
            message = prompts.next(), if prompts_open => match message {
                Some(message) => {
                    let request = Completion::Counted {
                        message,
                        counters: prompt_counters.clone(),
                        issued: Instant::now(),
                    };
                    reader.prompts.handle(request, &reader.shared.refusals).await;
                }
                None => prompts_open = false,
            },
            message = statuses.next(), if statuses_open => match message {
                Some(message) => {
                    let issued = Instant::now();
                    let Some(reply) = message.reply.clone() else { continue };
                    let answer = reader.status.reply(&message);
                    let request = Completion::Counted {
                        message,
                        counters: status_counters.clone(),
                        issued,
                    };
                    let sent = match answer {
                        // The heartbeat-shaped body is the whole reply.
                        Ok(body) => {
                            let sent = nats.publish(reply, body).await;
                            request.count(None);
                            sent
                        }
                        Err(error) => {
                            let error = super::status_failure(&error);
                            request.complete(nats, reply, Some(&error)).await
                        }
                    };
                    if let Err(e) = sent {
                        // §8.7.1: best effort.
                        tracing::debug!(error = %e, "status reply not delivered");
                    }
                }
                None => statuses_open = false,
            },
        }
    }
}

/// Answers the micro-service API for every member, until the fleet is gone.
async fn answer_srv(
    nats: Client,
    mut requests: futures::stream::SelectAll<Subscriber>,
    shared: Weak<Shared>,
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
        let Some(shared) = shared.upgrade() else {
            break;
        };
        let members: Vec<Arc<Member>> = {
            let members = shared
                .members
                .read()
                .unwrap_or_else(PoisonError::into_inner);
            match request.scope {
                SrvScope::Instance(id) => members.get(id).cloned().into_iter().collect(),
                SrvScope::All | SrvScope::Agents => members.values().cloned().collect(),
            }
        };
        drop(shared);
        for member in members {
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
}

/// Beats for every member from one timer queue: each source right away
/// when it arrives, then once per jittered interval, until its agent is
/// unregistered (the weak handle no longer upgrades).
async fn beat_all(
    nats: Client,
    mut arrivals: mpsc::UnboundedReceiver<Weak<BeatSource>>,
    done: CancellationToken,
) {
    /// A due time, with a sequence number to order equal times.
    type Due = Reverse<(Instant, u64)>;
    let mut queue: BinaryHeap<Due> = BinaryHeap::new();
    let mut sources: HashMap<u64, Weak<BeatSource>> = HashMap::new();
    let mut next_key = 0u64;
    loop {
        let next = queue.peek().map(|Reverse((at, _))| *at);
        tokio::select! {
            () = done.cancelled() => break,
            arrival = arrivals.recv() => match arrival {
                Some(source) => {
                    sources.insert(next_key, source);
                    queue.push(Reverse((Instant::now(), next_key)));
                    next_key += 1;
                }
                None => break,
            },
            () = sleep_until(next) => {
                let now = Instant::now();
                while let Some(Reverse((at, key))) = queue.peek().copied() {
                    if at > now {
                        break;
                    }
                    queue.pop();
                    let Some(source) = sources.get(&key).and_then(Weak::upgrade) else {
                        sources.remove(&key);
                        continue;
                    };
                    source.beat(&nats).await;
                    queue.push(Reverse((now + source.next_wait(), key)));
                }
            }
        }
    }
}

/// Sleeps until `at`, or forever without one.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// Confirms registrations in batches: one round trip to the server for
/// every registration waiting when the previous one returned.
async fn round_trips(
    nats: Client,
    mut waiting: mpsc::UnboundedReceiver<oneshot::Sender<bool>>,
    done: CancellationToken,
) {
    loop {
        let first = tokio::select! {
            first = waiting.recv() => first,
            () = done.cancelled() => None,
        };
        let Some(first) = first else { break };
        let mut batch = vec![first];
        while let Ok(next) = waiting.try_recv() {
            batch.push(next);
        }
        let confirmed = match crate::wire::round_trip(&nats).await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, "the server did not confirm fleet registrations");
                false
            }
        };
        for waiter in batch {
            let _ = waiter.send(confirmed);
        }
    }
}
