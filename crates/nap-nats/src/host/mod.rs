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

mod prompt;
mod transport;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_nats::service::ServiceExt;
use futures::StreamExt;
use nap_agent::{Agent, Instance};
use nap_proto::service_info::{QUEUE_GROUP, SERVICE_NAME};
use nap_proto::{Beacon, ByteSize, IntervalSecs, PromptLimits, Registration, Verb};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::{Error, Result};
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
            heartbeat_interval: nap_proto::heartbeat::DEFAULT_INTERVAL,
            keepalive: Some(Duration::from_secs(15)),
            max_concurrent: 1024,
            prompt_subject: None,
            status_subject: None,
            shutdown_timeout: Duration::from_secs(30),
            max_backlog: ByteSize::new(64 << 20),
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

    /// Registers the service and starts serving `agent` on `nats`.
    pub async fn start(self, nats: async_nats::Client, agent: impl Agent) -> Result<RunningAgent> {
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

        // §3.1, §3.2: name, version, description, required metadata.
        let registration = Registration {
            agent: self.agent.clone(),
            owner: self.owner.clone(),
            session: self.session.clone(),
            limits,
            min_sender_trust: nap_proto::identity::MinSenderTrust::Any,
            identity: None,
        };
        let metadata = registration.service_metadata(&self.metadata);
        let description = self
            .description
            .clone()
            .unwrap_or_else(|| registration.default_description(&self.name));
        let service = nats
            .service_builder()
            .description(description)
            .metadata(metadata)
            .start(SERVICE_NAME, self.version.clone())
            .await
            .map_err(|source| Error::Register { source })?;

        // §2.1, §3.3: `prompt` in queue group "agents" with its capability metadata.
        let prompt_subject = self
            .prompt_subject
            .clone()
            .unwrap_or_else(|| identity.subject(Verb::Prompt).to_string());
        let prompt_endpoint = service
            .endpoint_builder()
            .name(Verb::Prompt.as_str())
            .queue_group(QUEUE_GROUP)
            .metadata(registration.prompt_metadata())
            .add(prompt_subject.clone())
            .await
            .map_err(|source| Error::Register { source })?;
        // §8.7: `status` in the same queue group.
        let status_subject = self
            .status_subject
            .clone()
            .unwrap_or_else(|| identity.subject(Verb::Status).to_string());
        let status_endpoint = service
            .endpoint_builder()
            .name(Verb::Status.as_str())
            .queue_group(QUEUE_GROUP)
            .add(status_subject.clone())
            .await
            .map_err(|source| Error::Register { source })?;
        let id = service.info().await.id;

        // §8.2: heartbeats only once the server has the registration, so
        // that whoever sees a beat can also discover the instance.
        crate::wire::round_trip(&nats)
            .await
            .map_err(|e| Error::Register { source: e.into() })?;

        let instance = Arc::new(Instance {
            agent: self.agent.clone(),
            owner: self.owner.clone(),
            name: self.name.clone(),
            session: self.session.clone(),
            instance_id: id.clone(),
        });
        let beacon = Beacon {
            agent: self.agent.clone(),
            owner: self.owner.clone(),
            session: self.session.clone(),
            instance_id: id.clone(),
            interval,
        };
        let stopping = CancellationToken::new();
        let abandon = CancellationToken::new();
        let tracker = TaskTracker::new();
        let permits = Arc::new(Semaphore::new(self.max_concurrent));

        tracker.spawn(
            PromptLoop {
                client: nats.clone(),
                agent: Arc::new(agent),
                instance,
                limits,
                keepalive: self.keepalive,
                permits: permits.clone(),
                stopping: stopping.clone(),
                abandon: abandon.clone(),
                tracker: tracker.clone(),
            }
            .run(prompt_endpoint, self.max_backlog.bytes()),
        );
        tracker.spawn(serve_status(status_endpoint, beacon.clone()));
        let heartbeat_subject = identity.subject(Verb::Hb).to_string();
        tracker.spawn(publish_heartbeats(
            nats.clone(),
            heartbeat_subject.clone(),
            beacon,
            stopping.clone(),
        ));
        tracing::info!(%id, subject = %prompt_subject, "agent registered");

        Ok(RunningAgent {
            id: id.clone(),
            prompt_subject,
            status_subject,
            heartbeat_subject,
            permits,
            max_concurrent: self.max_concurrent,
            shutdown: Some(Shutdown {
                id,
                nats,
                service,
                stopping,
                abandon,
                tracker,
                timeout: self.shutdown_timeout,
            }),
        })
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
    service: async_nats::service::Service,
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
        if let Err(e) = self.service.stop().await {
            tracing::warn!(id = %self.id, error = %e, "could not unregister the service cleanly");
        }
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
                drop(shutdown.service);
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

/// §8.7: a fresh heartbeat-shaped reply per request; the body is ignored.
async fn serve_status(mut endpoint: async_nats::service::endpoint::Endpoint, beacon: Beacon) {
    while let Some(request) = endpoint.next().await {
        let reply = match beacon.beat(SystemTime::now()) {
            Ok(hb) => Ok(bytes::Bytes::from(hb.encode())),
            // §8.7.1: a failure building the payload is a 500.
            Err(e) => Err(async_nats::service::error::Error {
                status: e.to_string(),
                code: 500,
            }),
        };
        if let Err(e) = request.respond(reply).await {
            // §8.7.1: best effort.
            tracing::debug!(error = %e, "status reply not delivered");
        }
    }
}

/// §8.1-8.3: beats on the fixed subject, the first one right away.
async fn publish_heartbeats(
    nats: async_nats::Client,
    subject: String,
    beacon: Beacon,
    stopping: CancellationToken,
) {
    let mut ticker = tokio::time::interval(beacon.interval.as_duration());
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let subject = async_nats::Subject::from(subject);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            () = stopping.cancelled() => break,
        }
        match beacon.beat(SystemTime::now()) {
            Ok(hb) => {
                if let Err(e) = nats.publish(subject.clone(), hb.encode().into()).await {
                    tracing::warn!(%subject, error = %e, "heartbeat not published");
                }
            }
            Err(e) => tracing::warn!(%subject, error = %e, "heartbeat not built"),
        }
    }
}
