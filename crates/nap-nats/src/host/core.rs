//! The host core: what every agent of one host (one connection) shares,
//! and how an agent joins it.
//!
//! A host answers the micro-service API for all its agents ([`super::srv`]),
//! beats for all of them from one scheduler ([`super::beats`]), confirms
//! registrations in shared round trips to the server, and publishes
//! refusals from one queue. Each agent adds two queue subscriptions
//! (`prompt` and `status`) and one reader task ([`super::reader`]). A
//! single [`AgentService`](super::AgentService) is a host with one agent; a
//! [`Fleet`](super::Fleet) is a host with many.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::SystemTime;

use async_nats::{Client, Subscriber};
use nap_agent::{Agent, Instance};
use nap_proto::micro::{EndpointCounters, EndpointRecord, ServiceRecord};
use nap_proto::{Beacon, QUEUE_GROUP, Verb};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::admit::{Prompts, Refusals};
use super::beats::{BeatSource, Beats};
use super::builder::{AgentServiceBuilder, Plan};
use super::gate::SenderGate;
use super::reader::Reader;
use super::srv::{Member, Members};
use super::status::StatusResponder;
use super::stop::{RunningAgent, Shutdown, Subjects};
use crate::{Error, Result};

/// One host: a connection and the agents registered on it. Cheap to clone.
#[derive(Clone)]
pub(super) struct HostCore {
    shared: Arc<Shared>,
}

/// What the agents of a host share; its tasks end when the last handle
/// (the host's or one of its agents') is dropped.
pub(super) struct Shared {
    pub(super) nats: Client,
    /// The registered agents, by service id: what `$SRV` requests are
    /// answered from.
    members: Arc<Members>,
    beats: Beats,
    /// Registrations and stops waiting for a round trip to the server.
    barrier: mpsc::UnboundedSender<oneshot::Sender<bool>>,
    /// Refused prompts of every agent, published off the readers.
    pub(super) refusals: Refusals,
    /// Ends the `$SRV` responder, which unsubscribes as it ends.
    srv_done: CancellationToken,
    srv: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Whether the host exists for one agent only, and closes with it.
    solo: bool,
    done: CancellationToken,
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.srv_done.cancel();
        self.done.cancel();
    }
}

impl Shared {
    /// Waits until the server has processed everything sent before,
    /// sharing the round trip with whoever waits at the same time; `false`
    /// when the server did not confirm (or the host is going away).
    pub(super) async fn confirmed(&self) -> bool {
        let (confirmed, confirmation) = oneshot::channel();
        if self.barrier.send(confirmed).is_err() {
            return false;
        }
        confirmation.await.unwrap_or(false)
    }

    /// For a host of one agent, once that agent is unregistered: stops
    /// answering `$SRV` requests and unsubscribes, so that a discovery
    /// round finds no `agents` service here (no responders) instead of
    /// an answer from nobody.
    pub(super) async fn close_if_solo(&self) {
        if !self.solo {
            return;
        }
        self.srv_done.cancel();
        let task = self
            .srv
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

/// An agent's registration; dropping it unregisters the agent (§8.6: its
/// `$SRV` replies and heartbeats stop).
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

impl HostCore {
    /// Subscribes the micro-service API on `nats` and starts the shared
    /// tasks; refusals queue up to `backlog` bytes before readers publish
    /// them themselves. A `solo` host serves one agent and closes its
    /// `$SRV` responder when that agent stops.
    pub(super) async fn start(nats: Client, backlog: u64, solo: bool) -> Result<HostCore> {
        let done = CancellationToken::new();
        let srv_done = CancellationToken::new();
        let members: Arc<Members> = Arc::new(RwLock::new(HashMap::new()));
        let srv = super::srv::start(&nats, Arc::downgrade(&members), srv_done.clone()).await?;
        let (barrier, waiting) = mpsc::unbounded_channel();
        tokio::spawn(round_trips(nats.clone(), waiting, done.clone()));
        let shared = Arc::new(Shared {
            beats: super::beats::start(nats.clone(), done.clone()),
            refusals: Refusals::start(backlog),
            nats,
            members,
            barrier,
            srv_done,
            srv: Mutex::new(Some(srv)),
            solo,
            done,
        });
        Ok(HostCore { shared })
    }

    /// How many agents are registered.
    pub(super) fn len(&self) -> usize {
        self.members().len()
    }

    /// The service ids of the registered agents.
    pub(super) fn ids(&self) -> Vec<String> {
        self.members().keys().cloned().collect()
    }

    fn members(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<Member>>> {
        self.shared
            .members
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers `agent` as configured by `builder` and starts serving it;
    /// returns once the server has the registration (§8.2: the first beat
    /// follows it, so whoever sees a beat can discover the instance).
    pub(super) async fn add(
        &self,
        builder: AgentServiceBuilder,
        agent: Arc<dyn Agent>,
    ) -> Result<RunningAgent> {
        let nats = &self.shared.nats;
        let plan = builder.plan(nats).await?;
        let id = nuid::next().to_string();
        // §2.1, §3.3, §8.7: both endpoints in queue group "agents".
        let prompts = queue_subscribe(nats, &plan.prompt_subject).await?;
        let statuses = queue_subscribe(nats, &plan.status_subject).await?;
        let agent = Parts::new(&builder, &plan, &id, nats, agent);
        let membership = self.register(&builder, &plan, &id, &agent);
        agent.tracker.spawn(super::reader::read(
            Reader {
                shared: self.shared.clone(),
                prompts: agent.prompts.clone(),
                status: agent.status.clone(),
                status_counters: agent.counters[1].clone(),
                stopping: agent.prompts.stopping.clone(),
            },
            prompts,
            statuses,
        ));
        if !self.shared.confirmed().await {
            // Unregistered (the membership drops here) and not serving:
            // the reader unsubscribes and refuses what it already holds.
            agent.prompts.stopping.cancel();
            let source = if crate::wire::connected(nats) {
                crate::RoundTripError::NoEcho
            } else {
                crate::RoundTripError::Disconnected
            };
            return Err(Error::Register { source });
        }
        let _ = self.shared.beats.send(Arc::downgrade(&agent.beat));
        tracing::info!(%id, subject = %plan.prompt_subject, "agent registered");
        Ok(agent.running(
            id,
            plan,
            self.shared.clone(),
            membership,
            builder.shutdown_timeout,
        ))
    }

    /// Enters the agent in the `$SRV` table.
    fn register(
        &self,
        builder: &AgentServiceBuilder,
        plan: &Plan,
        id: &str,
        agent: &Parts,
    ) -> Membership {
        let member = Arc::new(Member {
            record: service_record(builder, plan, id),
            counters: agent.counters.clone(),
            _beat: agent.beat.clone(),
        });
        self.shared
            .members
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id.to_owned(), member);
        Membership {
            shared: self.shared.clone(),
            id: id.to_owned(),
        }
    }
}

/// A queue subscription in group `agents` (§3.3).
async fn queue_subscribe(nats: &Client, subject: &str) -> Result<Subscriber> {
    nats.queue_subscribe(subject.to_owned(), QUEUE_GROUP.to_owned())
        .await
        .map_err(|source| Error::Subscribe {
            subject: subject.to_owned(),
            source,
        })
}

/// What the `$SRV` replies of one agent are built from (§3.1-3.3, §2.1).
fn service_record(builder: &AgentServiceBuilder, plan: &Plan, id: &str) -> ServiceRecord {
    ServiceRecord {
        id: id.to_owned(),
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
    }
}

/// The serving parts of one agent, before it is registered.
struct Parts {
    prompts: Arc<Prompts>,
    status: Arc<StatusResponder>,
    beat: Arc<BeatSource>,
    counters: [Arc<Mutex<EndpointCounters>>; 2],
    permits: Arc<Semaphore>,
    max_concurrent: usize,
    abandon: CancellationToken,
    tracker: TaskTracker,
}

impl Parts {
    fn new(
        builder: &AgentServiceBuilder,
        plan: &Plan,
        id: &str,
        nats: &Client,
        agent: Arc<dyn Agent>,
    ) -> Parts {
        let instance = Arc::new(Instance {
            agent: builder.agent.clone(),
            owner: builder.owner.clone(),
            name: builder.name.clone(),
            session: builder.session.clone(),
            instance_id: id.to_owned(),
        });
        let beacon = Beacon {
            agent: builder.agent.clone(),
            owner: builder.owner.clone(),
            session: builder.session.clone(),
            instance_id: id.to_owned(),
            interval: plan.interval,
            declared: Some(plan.registration.declaration(&plan.prompt_subject)),
        };
        let gate = Arc::new(SenderGate::new(
            builder.verifier.clone(),
            builder.min_sender_trust,
            builder.hooks.accept.clone(),
        ));
        let counters: [Arc<Mutex<EndpointCounters>>; 2] = Default::default();
        let permits = Arc::new(Semaphore::new(builder.max_concurrent));
        let abandon = CancellationToken::new();
        let tracker = TaskTracker::new();
        let prompts = Arc::new(Prompts {
            client: nats.clone(),
            agent,
            instance,
            limits: plan.registration.limits,
            keepalive: builder.keepalive,
            permits: permits.clone(),
            stopping: CancellationToken::new(),
            abandon: abandon.clone(),
            tracker: tracker.clone(),
            gate: gate.clone(),
            interceptors: builder.hooks.interceptors.clone().into(),
            counters: counters[0].clone(),
        });
        Parts {
            prompts,
            status: Arc::new(StatusResponder {
                beacon: beacon.clone(),
                gate,
            }),
            beat: Arc::new(BeatSource {
                subject: async_nats::Subject::from(plan.heartbeat_subject.clone()),
                beacon,
                signer: plan.signer.clone(),
            }),
            counters,
            permits,
            max_concurrent: builder.max_concurrent,
            abandon,
            tracker,
        }
    }

    /// The handle of the registered, serving agent.
    fn running(
        self,
        id: String,
        plan: Plan,
        shared: Arc<Shared>,
        membership: Membership,
        timeout: std::time::Duration,
    ) -> RunningAgent {
        let subjects = Subjects {
            identity: plan.registration.identity.map(|r| r.id),
            prompt: plan.prompt_subject,
            status: plan.status_subject,
            heartbeat: plan.heartbeat_subject,
        };
        let shutdown = Shutdown {
            id: id.clone(),
            shared,
            membership,
            stopping: self.prompts.stopping.clone(),
            abandon: self.abandon,
            tracker: self.tracker,
            timeout,
        };
        RunningAgent::new(id, subjects, self.permits, self.max_concurrent, shutdown)
    }
}

/// Confirms registrations (and stops) in batches: one round trip to the
/// server for every waiter that arrived while the previous one ran (a
/// round trip waits up to 10 s for a connection being made; a stop asks
/// only while the connection is up, within its own deadline).
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
                tracing::warn!(error = %e, "the server did not confirm a round trip");
                false
            }
        };
        for waiter in batch {
            let _ = waiter.send(confirmed);
        }
    }
}
