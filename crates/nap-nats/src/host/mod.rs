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

mod admission;
mod fleet;
mod intercept;
mod prompt;
mod transport;

pub use fleet::Fleet;
pub use intercept::{Decision, RequestInterceptor, TurnOutcome};
pub use prompt::SERVED as PROMPT_LOG_TARGET;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_nats::service::ServiceExt;
use futures::StreamExt;
use nap_agent::{Agent, Instance};
use nap_proto::identity::{
    AgentId, MinSenderTrust, Nonce, RegistrationIdentity, SENDER_HEADER, Sender, SenderSigner,
    VerifierConfig, sign_heartbeat,
};
use nap_proto::{Beacon, ByteSize, IntervalSecs, PromptLimits, Registration, ServiceError, Verb};
use nap_proto::{QUEUE_GROUP, SERVICE_NAME};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::identity::{ConnectionIdentity, SenderKey};
use crate::{Error, Result};
use admission::{AcceptHook, Admission, header_pairs};
use prompt::PromptLoop;

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

/// Configuration of one hosted agent instance.
#[derive(Debug, Clone)]
pub struct AgentServiceBuilder {
    agent: String,
    agent_token: Option<String>,
    owner: String,
    name: String,
    session: Option<String>,
    version: String,
    description: Option<String>,
    metadata: HashMap<String, String>,
    limits: PromptLimits,
    heartbeat_interval: Duration,
    keepalive: Option<Duration>,
    max_concurrent: usize,
    prompt_subject: Option<String>,
    status_subject: Option<String>,
    shutdown_timeout: Duration,
    max_backlog: ByteSize,
    min_sender_trust: MinSenderTrust,
    sender_key: Option<SenderKey>,
    verifier: VerifierConfig,
    hooks: Hooks,
}

/// The builder's closures and interceptors, which have no `Debug`.
#[derive(Clone, Default)]
struct Hooks {
    accept: Option<AcceptHook>,
    interceptors: Vec<Arc<dyn RequestInterceptor>>,
}

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooks")
            .field("accept", &self.accept.is_some())
            .field("interceptors", &self.interceptors.len())
            .finish()
    }
}

impl AgentServiceBuilder {
    fn new(agent: String, owner: String, name: String) -> Self {
        AgentServiceBuilder {
            agent,
            agent_token: None,
            owner,
            name,
            session: None,
            version: env!("CARGO_PKG_VERSION").to_owned(),
            description: None,
            metadata: HashMap::new(),
            limits: PromptLimits::DEFAULT,
            heartbeat_interval: nap_proto::DEFAULT_HEARTBEAT_INTERVAL,
            keepalive: Some(Duration::from_secs(15)),
            max_concurrent: 1024,
            prompt_subject: None,
            status_subject: None,
            shutdown_timeout: Duration::from_secs(30),
            max_backlog: ByteSize::new(64 << 20),
            min_sender_trust: MinSenderTrust::Any,
            sender_key: None,
            verifier: VerifierConfig::default(),
            hooks: Hooks::default(),
        }
    }

    /// Uses `token` as the subject's agent token, an abbreviation of
    /// `metadata.agent` (§2, Appendix C: `cc` for `claude-code`).
    pub fn agent_token(mut self, token: impl Into<String>) -> Self {
        self.agent_token = Some(token.into());
        self
    }

    /// Sets `metadata.session` (§3.2), for session-aware harnesses.
    pub fn session(mut self, session: impl Into<String>) -> Self {
        self.session = Some(session.into());
        self
    }

    /// The harness version (§3.1), semver. Default: this crate's version.
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.version = version.into();
        self
    }

    /// The service description (§3.1). Default: `"{agent} agent {owner}/{name}"`.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// Adds a service metadata key (§3.2 allows additional keys). The
    /// protocol's own keys cannot be overridden this way.
    pub fn metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }

    /// The largest request accepted (§2.1). Default `1MB`; clamped to the
    /// server's own `max_payload` at start.
    pub fn max_payload(mut self, size: ByteSize) -> Self {
        self.limits.max_payload = size;
        self
    }

    /// Whether attachments are accepted (§2.1). Default `true`.
    pub fn attachments_ok(mut self, ok: bool) -> Self {
        self.limits.attachments_ok = ok;
        self
    }

    /// The heartbeat cadence (§8.2). Default 30 s.
    pub fn heartbeat_interval(mut self, interval: Duration) -> Self {
        self.heartbeat_interval = interval;
        self
    }

    /// Sends an `ack` status whenever the agent has been silent this long,
    /// keeping the caller's inactivity timer (§6.6) from firing. Default
    /// 15 s; `None` disables it.
    pub fn keepalive(mut self, interval: Option<Duration>) -> Self {
        self.keepalive = interval;
        self
    }

    /// How many prompts run at once; beyond it, requests get `429`. Default 1024.
    pub fn max_concurrent(mut self, n: usize) -> Self {
        self.max_concurrent = n;
        self
    }

    /// Overrides the `prompt` subject (§2: default `agents.prompt.{agent}.{owner}.{name}`).
    pub fn prompt_subject(mut self, subject: impl Into<String>) -> Self {
        self.prompt_subject = Some(subject.into());
        self
    }

    /// Overrides the `status` subject (§8.7: default `agents.status.{agent}.{owner}.{name}`).
    pub fn status_subject(mut self, subject: impl Into<String>) -> Self {
        self.status_subject = Some(subject.into());
        self
    }

    /// The most bytes of refused requests (`400`, `429`) waiting for their
    /// refusal to be published by the task that does so. Past it, the
    /// endpoint's reader publishes refusals itself, which slows it down
    /// (requests then wait in the NATS client's queue, see
    /// [`crate::connect_options`]). Default 64 MiB.
    pub fn max_backlog(mut self, size: ByteSize) -> Self {
        self.max_backlog = size;
        self
    }

    /// How long [`RunningAgent::stop`] waits for in-flight prompts. Default 30 s.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// What the `prompt` endpoint requires of a sender (§13.9), declared
    /// in its metadata as `min_sender_trust`. With
    /// [`MinSenderTrust::Signed`], every prompt that is not verified
    /// (§13.7) is refused with `401` before the agent sees it. Default
    /// [`MinSenderTrust::Any`]. Verifying needs no identity of the
    /// agent's own.
    pub fn min_sender_trust(mut self, trust: MinSenderTrust) -> Self {
        self.min_sender_trust = trust;
        self
    }

    /// The key the agent's connection authenticates with (§13.2.1); the
    /// connection passed to [`AgentServiceBuilder::start`] must have been
    /// made with it ([`SenderKey::apply`]).
    ///
    /// At start the host learns the connection's agent ID (§13.4). When it
    /// can sign, it registers `user_nkey`, `account` and `id_sig` over the
    /// advertised prompt subject (§13.10) and signs every heartbeat
    /// (§13.11); replies are never signed. When it cannot (no identity, or
    /// the server did not say), it logs a warning and serves without a
    /// registered identity and with unsigned heartbeats.
    pub fn sender_key(mut self, key: SenderKey) -> Self {
        self.sender_key = Some(key);
        self
    }

    /// Sets the acceptance hook (§13.7.3), replacing any earlier one (and
    /// any [`AgentServiceBuilder::accept_senders`] list). It runs for every
    /// prompt after classification and the `min_sender_trust` check, and
    /// before the envelope is read; a `false` refuses the prompt with `403`
    /// when the sender is verified, `401` when it is claimed or absent.
    /// Never run for `status` requests, which are always answered (§13.9).
    /// It runs on the endpoint's reader, so keep it quick and never block
    /// in it; a hook that panics refuses the sender.
    ///
    /// Grant on [`Sender::verified_id`], never on a claim (§13.1).
    pub fn accept_sender(
        mut self,
        accept: impl Fn(&Sender) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.hooks.accept = Some(Arc::new(accept));
        self
    }

    /// An allow-list acceptance hook: only verified senders (§13.7) whose
    /// agent ID is listed are served; everyone else is refused (`403` for
    /// a verified sender, `401` otherwise). Replaces any earlier hook; see
    /// [`AgentServiceBuilder::accept_sender`].
    pub fn accept_senders(self, ids: impl IntoIterator<Item = AgentId>) -> Self {
        let allowed: std::collections::HashSet<AgentId> = ids.into_iter().collect();
        self.accept_sender(move |sender: &Sender| {
            sender.verified_id().is_some_and(|id| allowed.contains(id))
        })
    }

    /// How senders are verified (§13.7): the account token position and
    /// import renames the deployment puts between callers and this agent
    /// (§13.7.1), the replay window and the nonce set's bound. Default:
    /// arrival subject equality, 30 s window.
    pub fn verifier(mut self, config: VerifierConfig) -> Self {
        self.verifier = config;
        self
    }

    /// Adds a request interceptor; several run in the order they were
    /// added. See [`RequestInterceptor`].
    pub fn interceptor(mut self, interceptor: impl RequestInterceptor) -> Self {
        self.hooks.interceptors.push(Arc::new(interceptor));
        self
    }

    /// Registers the service and starts serving `agent` on `nats`.
    pub async fn start(self, nats: async_nats::Client, agent: impl Agent) -> Result<RunningAgent> {
        let plan = self.plan(&nats).await?;
        let service = nats
            .service_builder()
            .description(plan.description.clone())
            .metadata(plan.metadata.clone())
            .start(SERVICE_NAME, self.version.clone())
            .await
            .map_err(|source| Error::Register { source })?;

        // §2.1, §3.3, §13.9: `prompt` in queue group "agents" with its
        // capability metadata and sender requirement.
        let prompt_endpoint = service
            .endpoint_builder()
            .name(Verb::Prompt.as_str())
            .queue_group(QUEUE_GROUP)
            .metadata(plan.registration.prompt_metadata())
            .add(plan.prompt_subject.clone())
            .await
            .map_err(|source| Error::Register { source })?;
        // §8.7: `status` in the same queue group.
        let status_endpoint = service
            .endpoint_builder()
            .name(Verb::Status.as_str())
            .queue_group(QUEUE_GROUP)
            .add(plan.status_subject.clone())
            .await
            .map_err(|source| Error::Register { source })?;
        let id = service.info().await.id;

        // §8.2: heartbeats only once the server has the registration, so
        // that whoever sees a beat can also discover the instance.
        crate::wire::round_trip(&nats)
            .await
            .map_err(|e| Error::Register { source: e.into() })?;

        let serving = self.serving(&plan, &id, &nats, Arc::new(agent));
        let tracker = serving.tracker.clone();
        tracker.spawn(
            serving
                .prompts
                .clone()
                .run(prompt_endpoint, self.max_backlog.bytes()),
        );
        tracker.spawn(serve_status(status_endpoint, serving.status.clone()));
        tracker.spawn(publish_heartbeats(
            nats.clone(),
            serving.beat.clone(),
            serving.stopping.clone(),
        ));
        Ok(serving.running(
            id,
            plan,
            nats,
            Registered::Service(Box::new(service)),
            self.shutdown_timeout,
        ))
    }

    /// Checks the configuration and works out what the instance registers.
    async fn plan(&self, nats: &async_nats::Client) -> Result<Plan> {
        let identity = nap_proto::Identity::new(
            self.agent_token.as_deref().unwrap_or(&self.agent),
            &self.owner,
            &self.name,
        )?;
        if self.agent.is_empty() {
            return Err(Error::Config {
                what: "metadata.agent must not be empty",
            });
        }
        if self.max_concurrent == 0 {
            return Err(Error::Config {
                what: "max_concurrent must be at least 1",
            });
        }
        let interval =
            IntervalSecs::from_duration(self.heartbeat_interval).map_err(|_| Error::Config {
                what: "heartbeat_interval must be positive",
            })?;
        if self.keepalive.is_some_and(|k| k.is_zero()) {
            return Err(Error::Config {
                what: "keepalive must be positive",
            });
        }

        // §2.1: never advertise more than the server itself carries.
        let mut limits = self.limits;
        let server_max = nats.server_info().max_payload as u64;
        if server_max > 0 && server_max < limits.max_payload.bytes() {
            tracing::warn!(configured = %limits.max_payload, server = server_max, "max_payload clamped to the server's limit");
            limits.max_payload = ByteSize::new(server_max);
        }

        let prompt_subject = self
            .prompt_subject
            .clone()
            .unwrap_or_else(|| identity.subject(Verb::Prompt).to_string());
        let status_subject = self
            .status_subject
            .clone()
            .unwrap_or_else(|| identity.subject(Verb::Status).to_string());

        // §13.4, §13.10: the agent's own identity, when its key can sign.
        let (signer, registered) = match &self.sender_key {
            None => (None, None),
            Some(key) => own_identity(nats, key, &self.agent, &self.owner, &prompt_subject).await,
        };

        // §3.1, §3.2: name, version, description, required metadata.
        let registration = Registration {
            agent: self.agent.clone(),
            owner: self.owner.clone(),
            session: self.session.clone(),
            limits,
            min_sender_trust: self.min_sender_trust,
            identity: registered,
        };
        let metadata = registration.service_metadata(&self.metadata);
        let description = self
            .description
            .clone()
            .unwrap_or_else(|| registration.default_description(&self.name));
        Ok(Plan {
            heartbeat_subject: identity.subject(Verb::Hb).to_string(),
            prompt_subject,
            status_subject,
            interval,
            signer,
            registration,
            metadata,
            description,
        })
    }

    /// The serving half of an instance registered as `id`: the prompt
    /// loop, the status responder and the heartbeat source, with the
    /// tokens and tracker that stop them.
    fn serving(
        &self,
        plan: &Plan,
        id: &str,
        nats: &async_nats::Client,
        agent: Arc<dyn Agent>,
    ) -> Serving {
        let instance = Arc::new(Instance {
            agent: self.agent.clone(),
            owner: self.owner.clone(),
            name: self.name.clone(),
            session: self.session.clone(),
            instance_id: id.to_owned(),
        });
        let beacon = Beacon {
            agent: self.agent.clone(),
            owner: self.owner.clone(),
            session: self.session.clone(),
            instance_id: id.to_owned(),
            interval: plan.interval,
            declared: Some(plan.registration.declaration(&plan.prompt_subject)),
        };
        let stopping = CancellationToken::new();
        let abandon = CancellationToken::new();
        let tracker = TaskTracker::new();
        let permits = Arc::new(Semaphore::new(self.max_concurrent));
        let admission = Arc::new(Admission::new(
            self.verifier.clone(),
            self.min_sender_trust,
            self.hooks.accept.clone(),
        ));
        let prompts = Arc::new(PromptLoop {
            client: nats.clone(),
            agent,
            instance,
            limits: plan.registration.limits,
            keepalive: self.keepalive,
            permits: permits.clone(),
            stopping: stopping.clone(),
            abandon: abandon.clone(),
            tracker: tracker.clone(),
            admission: admission.clone(),
            interceptors: self.hooks.interceptors.clone().into(),
        });
        Serving {
            prompts,
            status: Arc::new(StatusResponder {
                beacon: beacon.clone(),
                admission,
            }),
            beat: Arc::new(BeatSource {
                subject: async_nats::Subject::from(plan.heartbeat_subject.clone()),
                beacon,
                signer: plan.signer.clone(),
            }),
            permits,
            max_concurrent: self.max_concurrent,
            stopping,
            abandon,
            tracker,
        }
    }
}

/// What an instance registers, worked out from its builder.
struct Plan {
    prompt_subject: String,
    status_subject: String,
    heartbeat_subject: String,
    interval: IntervalSecs,
    signer: Option<Arc<SenderSigner>>,
    registration: Registration,
    metadata: HashMap<String, String>,
    description: String,
}

/// The serving half of one instance, before its tasks are spawned.
struct Serving {
    prompts: Arc<PromptLoop>,
    status: Arc<StatusResponder>,
    beat: Arc<BeatSource>,
    permits: Arc<Semaphore>,
    max_concurrent: usize,
    stopping: CancellationToken,
    abandon: CancellationToken,
    tracker: TaskTracker,
}

impl Serving {
    /// The handle of the running instance.
    fn running(
        self,
        id: String,
        plan: Plan,
        nats: async_nats::Client,
        registered: Registered,
        timeout: Duration,
    ) -> RunningAgent {
        tracing::info!(%id, subject = %plan.prompt_subject, "agent registered");
        RunningAgent {
            id: id.clone(),
            identity: plan.registration.identity.map(|r| r.id),
            prompt_subject: plan.prompt_subject,
            status_subject: plan.status_subject,
            heartbeat_subject: plan.heartbeat_subject,
            permits: self.permits,
            max_concurrent: self.max_concurrent,
            shutdown: Some(Shutdown {
                id,
                nats,
                registered,
                stopping: self.stopping,
                abandon: self.abandon,
                tracker: self.tracker,
                timeout,
            }),
        }
    }
}

/// How an instance is registered, and so how it unregisters.
#[derive(Debug)]
enum Registered {
    /// As its own async-nats micro service.
    Service(Box<async_nats::service::Service>),
    /// As a member of a [`Fleet`].
    Fleet(fleet::Membership),
}

impl Registered {
    /// Unregisters: callers no longer discover the instance (§8.6).
    async fn unregister(self, id: &str) {
        match self {
            Registered::Service(service) => {
                if let Err(e) = service.stop().await {
                    tracing::warn!(%id, error = %e, "could not unregister the service cleanly");
                }
            }
            Registered::Fleet(membership) => drop(membership),
        }
    }
}

/// A registered, serving agent instance.
///
/// [`RunningAgent::stop`] stops it gracefully and returns when everything
/// it sent has reached the server. Dropping it starts the same graceful
/// stop in the background (on the current Tokio runtime): an instance is
/// never left registered and discoverable while serving nothing.
#[derive(Debug)]
#[must_use = "dropping a RunningAgent stops serving; keep it, or call stop().await"]
pub struct RunningAgent {
    id: String,
    identity: Option<AgentId>,
    prompt_subject: String,
    status_subject: String,
    heartbeat_subject: String,
    permits: Arc<Semaphore>,
    max_concurrent: usize,
    /// `None` once stopped.
    shutdown: Option<Shutdown>,
}

/// Everything a stop needs, taken out of the [`RunningAgent`] once.
#[derive(Debug)]
struct Shutdown {
    id: String,
    nats: async_nats::Client,
    registered: Registered,
    stopping: CancellationToken,
    abandon: CancellationToken,
    tracker: TaskTracker,
    timeout: Duration,
}

impl Shutdown {
    /// Stops gracefully: unregister (§8.6: callers see the instance go),
    /// refuse what is still buffered, let in-flight prompts finish (up to
    /// the timeout, then end them with `500`), and make sure the server
    /// has every terminator.
    async fn run(self) {
        // Unregistering closes the `$SRV` handlers and unsubscribes the
        // endpoints; their loops answer what is already buffered, then end.
        self.stopping.cancel();
        self.registered.unregister(&self.id).await;
        self.tracker.close();
        if tokio::time::timeout(self.timeout, self.tracker.wait())
            .await
            .is_err()
        {
            self.abandon.cancel();
            // The abandoned prompts now end with 500 and their terminator.
            if tokio::time::timeout(Duration::from_secs(5), self.tracker.wait())
                .await
                .is_err()
            {
                tracing::error!(id = %self.id, "prompts still running after the shutdown timeout; their callers will time out");
            }
        }
        // Everything published is in the client's buffer: get it to the
        // server, and wait until the server has processed it.
        if let Err(e) = self.nats.flush().await {
            tracing::warn!(id = %self.id, error = %e, "could not flush the connection on stop");
        }
        if let Err(e) = crate::wire::round_trip(&self.nats).await {
            tracing::warn!(id = %self.id, error = %e, "the server did not confirm the last messages on stop");
        }
        tracing::info!(id = %self.id, "agent stopped");
    }
}

impl RunningAgent {
    /// The service id: this instance's `instance_id` (§3.4, §8.3).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The agent ID this instance registered and signs its heartbeats with
    /// (§13.10, §13.11); `None` when it has no key, or its key could not
    /// sign at start.
    pub fn identity(&self) -> Option<&AgentId> {
        self.identity.as_ref()
    }

    /// The subject prompts arrive on.
    pub fn prompt_subject(&self) -> &str {
        &self.prompt_subject
    }

    /// The subject of the `status` endpoint.
    pub fn status_subject(&self) -> &str {
        &self.status_subject
    }

    /// The heartbeat subject (§8.1).
    pub fn heartbeat_subject(&self) -> &str {
        &self.heartbeat_subject
    }

    /// How many prompts are being answered right now.
    pub fn in_flight(&self) -> usize {
        self.max_concurrent - self.permits.available_permits()
    }

    /// Stops gracefully: the instance unregisters at once, requests already
    /// delivered to it are refused with `429`, in-flight prompts finish (up
    /// to the shutdown timeout, after which they end with `500`), and the
    /// call returns once the server has every message this instance sent,
    /// every terminator included.
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
                drop(shutdown.registered);
            }
        }
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

/// Answers an instance's `status` requests (§8.7).
struct StatusResponder {
    beacon: Beacon,
    admission: Arc<Admission>,
}

impl StatusResponder {
    /// §8.7: a fresh heartbeat-shaped reply per request; the body is
    /// ignored. The sender is classified (§13.7) but never a reason to
    /// refuse (§13.9), and the reply is never signed (§13.11).
    fn reply(
        &self,
        message: &async_nats::Message,
    ) -> std::result::Result<bytes::Bytes, nap_proto::TimestampError> {
        let headers = header_pairs(message.headers.as_ref());
        self.admission
            .classify_status(message.subject.as_str(), &headers, &message.payload);
        self.beacon
            .beat(SystemTime::now())
            .map(|hb| bytes::Bytes::from(hb.encode()))
    }
}

/// §8.7.1: a `status` reply that could not be built is a `500`.
fn status_failure(error: &nap_proto::TimestampError) -> ServiceError {
    ServiceError::new(nap_proto::StatusCode::Internal, error.to_string())
}

/// Serves the `status` endpoint of a micro service.
async fn serve_status(
    mut endpoint: async_nats::service::endpoint::Endpoint,
    status: Arc<StatusResponder>,
) {
    while let Some(request) = endpoint.next().await {
        let reply = status.reply(&request.message).map_err(|e| {
            let e = status_failure(&e);
            let [_, (_, description)] = e.headers();
            async_nats::service::error::Error {
                status: description,
                code: usize::from(e.code.as_u16()),
            }
        });
        if let Err(e) = request.respond(reply).await {
            // §8.7.1: best effort.
            tracing::debug!(error = %e, "status reply not delivered");
        }
    }
}

/// §13.4, §13.10: learns the connection's agent ID and signs the
/// registration over the advertised prompt subject. Without a usable
/// identity the agent serves anyway, without one.
async fn own_identity(
    nats: &async_nats::Client,
    key: &SenderKey,
    agent: &str,
    owner: &str,
    prompt_subject: &str,
) -> (Option<Arc<SenderSigner>>, Option<RegistrationIdentity>) {
    let connection = ConnectionIdentity::new(nats.clone(), Some(key.clone()));
    let signer = match connection.signer().await {
        Ok(signer) => signer,
        Err(why) => {
            tracing::warn!(%why, user = %key.user(), "cannot sign as this agent: serving without a registered identity (no id_sig) and with unsigned heartbeats");
            return (None, None);
        }
    };
    match RegistrationIdentity::sign(&signer, agent, owner, prompt_subject) {
        Ok(registered) => {
            tracing::info!(id = %registered.id, "registering a signed identity (§13.10)");
            (Some(signer), Some(registered))
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not sign the registration: serving without a registered identity");
            (None, None)
        }
    }
}

/// What one instance beats with (§8.1-8.3).
#[derive(Debug)]
struct BeatSource {
    subject: async_nats::Subject,
    beacon: Beacon,
    signer: Option<Arc<SenderSigner>>,
}

impl BeatSource {
    /// Publishes one beat on the fixed subject; with a signer it carries
    /// a signed `Agent-Sender` header (§13.11).
    async fn beat(&self, nats: &async_nats::Client) {
        let subject = &self.subject;
        let hb = match self.beacon.beat(SystemTime::now()) {
            Ok(hb) => hb,
            Err(e) => {
                tracing::warn!(%subject, error = %e, "heartbeat not built");
                return;
            }
        };
        let payload = bytes::Bytes::from(hb.encode());
        let sent = match self
            .signer
            .as_deref()
            .map(|s| signed_beat(s, subject, &hb, &payload))
        {
            Some(Ok(headers)) => {
                nats.publish_with_headers(subject.clone(), headers, payload)
                    .await
            }
            Some(Err(e)) => {
                tracing::warn!(%subject, error = %e, "heartbeat not signed; published without Agent-Sender");
                nats.publish(subject.clone(), payload).await
            }
            None => nats.publish(subject.clone(), payload).await,
        };
        if let Err(e) = sent {
            tracing::warn!(%subject, error = %e, "heartbeat not published");
        }
    }

    /// The wait before the next beat: the interval, shortened by a random
    /// jitter so that instances started together drift apart.
    fn next_wait(&self) -> Duration {
        self.beacon.interval.jittered(jitter_draw())
    }
}

/// A random number for the heartbeat jitter.
fn jitter_draw() -> u32 {
    (crate::random::u64() >> 32) as u32
}

/// §8.1-8.3: beats the first time right away, then once per (jittered)
/// interval until the instance stops.
async fn publish_heartbeats(
    nats: async_nats::Client,
    source: Arc<BeatSource>,
    stopping: CancellationToken,
) {
    loop {
        source.beat(&nats).await;
        tokio::select! {
            () = tokio::time::sleep(source.next_wait()) => {}
            () = stopping.cancelled() => break,
        }
    }
}

/// The `Agent-Sender` header of one heartbeat (§13.11): `sub` the
/// heartbeat subject, `ts` the beat's own, a fresh nonce, the signature
/// over the payload as published.
fn signed_beat(
    signer: &SenderSigner,
    subject: &str,
    hb: &nap_proto::Heartbeat,
    payload: &[u8],
) -> std::result::Result<async_nats::HeaderMap, BeatNotSigned> {
    // A NUID is 22 characters of [0-9A-Za-z], always a valid nonce.
    let nonce = Nonce::new(nuid::next().to_string())?;
    let header = sign_heartbeat(signer, subject, hb, payload, nonce)?;
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(SENDER_HEADER, header.encode().as_str());
    Ok(headers)
}

/// Why a heartbeat went out without its header.
#[derive(Debug, thiserror::Error)]
enum BeatNotSigned {
    #[error("nonce: {0}")]
    Nonce(#[from] nap_proto::identity::NonceError),
    #[error(transparent)]
    Sign(#[from] nap_proto::identity::HeartbeatSignError),
}
