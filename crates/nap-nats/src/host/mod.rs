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

mod heartbeat;
mod prompt;
mod transport;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_nats::service::ServiceExt;
use futures::StreamExt;
use nap_agent::{Agent, Instance};
use nap_proto::service_info::{QUEUE_GROUP, SERVICE_NAME, keys};
use nap_proto::{ByteSize, IntervalSecs, PROTOCOL_VERSION, PromptLimits, Verb};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;

use crate::{Error, Result};
use heartbeat::HeartbeatBuilder;
use prompt::PromptLoop;

/// Entry point for hosting an agent; see [`AgentService::builder`].
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
        let mut metadata = self.metadata.clone();
        metadata.insert(keys::AGENT.into(), self.agent.clone());
        metadata.insert(keys::OWNER.into(), self.owner.clone());
        metadata.insert(keys::PROTOCOL_VERSION.into(), PROTOCOL_VERSION.to_string());
        match &self.session {
            Some(s) => metadata.insert(keys::SESSION.into(), s.clone()),
            None => metadata.remove(keys::SESSION),
        };
        let description = self
            .description
            .clone()
            .unwrap_or_else(|| format!("{} agent {}/{}", self.agent, self.owner, self.name));
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
            .metadata(HashMap::from([
                (keys::MAX_PAYLOAD.to_owned(), limits.max_payload.to_string()),
                (
                    keys::ATTACHMENTS_OK.to_owned(),
                    limits.attachments_ok.to_string(),
                ),
            ]))
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
        let beats = HeartbeatBuilder {
            agent: self.agent.clone(),
            owner: self.owner.clone(),
            session: self.session.clone(),
            instance_id: id.clone(),
            interval,
        };
        let (stop_tx, stop_rx) = watch::channel(false);
        let (dropped_tx, dropped) = watch::channel(());
        let permits = Arc::new(Semaphore::new(self.max_concurrent));

        let prompts = tokio::spawn(
            PromptLoop {
                client: nats.clone(),
                agent: Arc::new(agent),
                instance,
                limits,
                keepalive: self.keepalive,
                permits: permits.clone(),
                dropped,
            }
            .run(prompt_endpoint, stop_rx.clone()),
        );
        let status = tokio::spawn(serve_status(
            status_endpoint,
            beats.clone(),
            stop_rx.clone(),
        ));
        let heartbeat_subject = identity.subject(Verb::Hb).to_string();
        let heartbeats = tokio::spawn(publish_heartbeats(
            nats.clone(),
            heartbeat_subject.clone(),
            beats,
            stop_rx,
        ));
        tracing::info!(%id, subject = %prompt_subject, "agent registered");

        Ok(RunningAgent {
            id,
            prompt_subject,
            status_subject,
            heartbeat_subject,
            service: Some(service),
            stop_tx,
            _dropped: dropped_tx,
            tasks: vec![prompts, status, heartbeats],
            permits,
            max_concurrent: self.max_concurrent,
            shutdown_timeout: self.shutdown_timeout,
        })
    }
}

/// A registered, serving agent instance. Dropping it stops serving at
/// once; [`RunningAgent::stop`] stops gracefully.
#[derive(Debug)]
pub struct RunningAgent {
    id: String,
    prompt_subject: String,
    status_subject: String,
    heartbeat_subject: String,
    service: Option<async_nats::service::Service>,
    stop_tx: watch::Sender<bool>,
    // Never sent on; dropping it abandons prompts still running.
    _dropped: watch::Sender<()>,
    tasks: Vec<JoinHandle<()>>,
    permits: Arc<Semaphore>,
    max_concurrent: usize,
    shutdown_timeout: Duration,
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

    /// Stops gracefully: no new prompts, in-flight prompts finish (up to the
    /// shutdown timeout), then the service unregisters.
    pub async fn stop(mut self) {
        let _ = self.stop_tx.send(true);
        let max = u32::try_from(self.max_concurrent).unwrap_or(u32::MAX);
        let drained =
            tokio::time::timeout(self.shutdown_timeout, self.permits.acquire_many(max)).await;
        if drained.is_err() {
            tracing::warn!(id = %self.id, in_flight = self.in_flight(), "shutdown timeout: abandoning in-flight prompts");
        }
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
        if let Some(service) = self.service.take() {
            if let Err(e) = service.stop().await {
                tracing::warn!(id = %self.id, error = %e, "could not unregister the service cleanly");
            }
        }
        tracing::info!(id = %self.id, "agent stopped");
    }
}

impl Drop for RunningAgent {
    fn drop(&mut self) {
        let _ = self.stop_tx.send(true);
        for task in &self.tasks {
            task.abort();
        }
    }
}

async fn stopped(mut stop: watch::Receiver<bool>) {
    // Returns when stop is signalled or the sender is gone.
    let _ = stop.wait_for(|s| *s).await;
}

/// §8.7: a fresh heartbeat-shaped reply per request; the body is ignored.
async fn serve_status(
    mut endpoint: async_nats::service::endpoint::Endpoint,
    beats: HeartbeatBuilder,
    stop: watch::Receiver<bool>,
) {
    let requests = (&mut endpoint).take_until(stopped(stop));
    tokio::pin!(requests);
    while let Some(request) = requests.next().await {
        let reply = match beats.build() {
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
    let _ = endpoint.stop().await;
}

/// §8.1-8.3: beats on the fixed subject, the first one right away.
async fn publish_heartbeats(
    nats: async_nats::Client,
    subject: String,
    beats: HeartbeatBuilder,
    stop: watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(beats.period());
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let stop = stopped(stop);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = &mut stop => break,
        }
        match beats.build() {
            Ok(hb) => {
                if let Err(e) = nats.publish(subject.clone(), hb.encode().into()).await {
                    tracing::warn!(%subject, error = %e, "heartbeat not published");
                }
            }
            Err(e) => tracing::warn!(%subject, error = %e, "heartbeat not built"),
        }
    }
}
