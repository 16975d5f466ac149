//! A discovered agent instance (§4.3).

use std::sync::Arc;

use nap_proto::identity::{MinSenderTrust, RegisteredIdentity};
use nap_proto::{AgentInfo, ByteSize, Heartbeat, ProtocolVersion};

use super::{Client, IntoEnvelope, PromptOptions, PromptStream};
use crate::Result;

/// One agent instance as its `$SRV.INFO` record describes it, ready to
/// prompt.
///
/// Cheap to clone. A handle holds a [`Client`] clone, so it keeps the
/// connection's heartbeat tracking alive while it exists.
#[derive(Debug, Clone)]
pub struct AgentHandle {
    client: Client,
    info: Arc<AgentInfo>,
}

impl AgentHandle {
    pub(crate) fn new(client: Client, info: AgentInfo) -> Self {
        AgentHandle {
            client,
            info: Arc::new(info),
        }
    }

    pub(crate) fn from_shared(client: Client, info: Arc<AgentInfo>) -> Self {
        AgentHandle { client, info }
    }

    /// The full record (§3, §4.3), unknown metadata included.
    pub fn info(&self) -> &AgentInfo {
        &self.info
    }

    /// The service id: per instance, also the heartbeat's `instance_id` (§3.4).
    pub fn id(&self) -> &str {
        &self.info.id
    }

    /// `metadata.agent`: the harness (§3.2).
    pub fn agent(&self) -> &str {
        &self.info.metadata.agent
    }

    /// `metadata.owner` (§3.2).
    pub fn owner(&self) -> &str {
        &self.info.metadata.owner
    }

    /// The instance name (§4.3 step 3): the name token of the prompt subject
    /// when it follows the default pattern, else `metadata.session`.
    pub fn name(&self) -> Option<&str> {
        self.info.instance_name()
    }

    /// `metadata.session`, when the harness is session-aware (§3.2).
    pub fn session(&self) -> Option<&str> {
        self.info.metadata.session.as_deref()
    }

    /// `metadata.protocol_version` (§3.2, §11).
    pub fn protocol_version(&self) -> &ProtocolVersion {
        &self.info.metadata.protocol_version
    }

    /// The subject prompts are published to, verbatim from the record (§4.3).
    pub fn prompt_subject(&self) -> &str {
        &self.info.prompt.subject
    }

    /// The `status` endpoint subject from the record, if registered (§8.7).
    pub fn status_subject(&self) -> Option<&str> {
        self.info.status.as_ref().map(|e| e.subject.as_str())
    }

    /// The largest request the agent accepts (§2.1).
    pub fn max_payload(&self) -> ByteSize {
        self.info.prompt.max_payload
    }

    /// Whether the agent accepts attachments (§2.1).
    pub fn attachments_ok(&self) -> bool {
        self.info.prompt.attachments_ok
    }

    /// The identity the agent registered (§13.10): verified when its
    /// `id_sig` checks out, otherwise a claim, or none. Show it with its
    /// class (its `Display` does), so a claim never reads as proof (§13.12).
    pub fn identity(&self) -> &RegisteredIdentity {
        &self.info.identity
    }

    /// What the `prompt` endpoint requires of the sender (§13.9): `any`
    /// when it declares nothing, `signed` for any value but `any`.
    pub fn min_sender_trust(&self) -> MinSenderTrust {
        self.info.prompt.required_trust()
    }

    /// The client this handle prompts through.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Prompts this agent; see [`Client::prompt`].
    pub async fn prompt(&self, envelope: impl IntoEnvelope) -> Result<PromptStream> {
        self.client.prompt(self, envelope).await
    }

    /// Prompts this agent with options; see [`Client::prompt_with`].
    pub async fn prompt_with(
        &self,
        envelope: impl IntoEnvelope,
        options: PromptOptions,
    ) -> Result<PromptStream> {
        self.client.prompt_with(self, envelope, options).await
    }

    /// Asks this agent's `status` endpoint; see [`Client::status`].
    pub async fn status(&self) -> Result<Heartbeat> {
        self.client.status(self).await
    }

    /// Whether this instance is online by its heartbeats (§8.2).
    pub fn is_online(&self) -> bool {
        self.client.is_online(self.id())
    }
}
