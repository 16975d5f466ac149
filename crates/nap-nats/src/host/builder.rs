//! How one agent instance is configured, and what it registers.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use nap_agent::Agent;
use nap_proto::identity::{
    AgentId, MinSenderTrust, RegistrationIdentity, Sender, SenderSigner, VerifierConfig,
};
use nap_proto::{ByteSize, IntervalSecs, PromptLimits, Registration, Verb};

use super::core::HostCore;
use super::gate::AcceptHook;
use super::{RequestInterceptor, RunningAgent};
use crate::identity::{ConnectionIdentity, SenderKey};
use crate::{Error, Result};

/// Configuration of one hosted agent instance.
#[derive(Debug, Clone)]
pub struct AgentServiceBuilder {
    pub(super) agent: String,
    pub(super) agent_token: Option<String>,
    pub(super) owner: String,
    pub(super) name: String,
    pub(super) session: Option<String>,
    pub(super) version: String,
    pub(super) description: Option<String>,
    pub(super) metadata: HashMap<String, String>,
    pub(super) limits: PromptLimits,
    pub(super) heartbeat_interval: Duration,
    pub(super) keepalive: Option<Duration>,
    pub(super) max_concurrent: usize,
    pub(super) prompt_subject: Option<String>,
    pub(super) status_subject: Option<String>,
    pub(super) shutdown_timeout: Duration,
    pub(super) max_backlog: ByteSize,
    pub(super) min_sender_trust: MinSenderTrust,
    pub(super) sender_key: Option<SenderKey>,
    pub(super) verifier: VerifierConfig,
    pub(super) hooks: Hooks,
}

/// The builder's closures and interceptors, which have no `Debug`.
#[derive(Clone, Default)]
pub(super) struct Hooks {
    pub(super) accept: Option<AcceptHook>,
    pub(super) interceptors: Vec<Arc<dyn RequestInterceptor>>,
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
    pub(super) fn new(agent: String, owner: String, name: String) -> Self {
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

    /// Registers the agent and starts serving it on `nats`, as the only
    /// agent of a host of its own (a [`Fleet`](super::Fleet) of one, with
    /// this builder's refusal backlog). Returns once the server has the
    /// registration (§8.2: the first heartbeat follows it).
    pub async fn start(self, nats: async_nats::Client, agent: impl Agent) -> Result<RunningAgent> {
        let core = HostCore::start(nats, self.max_backlog.bytes(), true).await?;
        core.add(self, Arc::new(agent)).await
    }

    /// Checks the configuration and works out what the instance registers.
    pub(super) async fn plan(&self, nats: &async_nats::Client) -> Result<Plan> {
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
}

/// What an instance registers, worked out from its builder.
pub(super) struct Plan {
    pub(super) prompt_subject: String,
    pub(super) status_subject: String,
    pub(super) heartbeat_subject: String,
    pub(super) interval: IntervalSecs,
    pub(super) signer: Option<Arc<SenderSigner>>,
    pub(super) registration: Registration,
    pub(super) metadata: HashMap<String, String>,
    pub(super) description: String,
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
