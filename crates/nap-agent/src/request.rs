//! A prompt as an agent receives it.

use std::sync::Arc;

use nap_proto::identity::Sender;
use nap_proto::{Attachment, Envelope};

/// The instance serving a request: its identity (§2, §3.2) and service id (§3.4).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Instance {
    /// `metadata.agent`.
    pub agent: String,
    /// `metadata.owner`.
    pub owner: String,
    /// The instance name (subject token).
    pub name: String,
    /// `metadata.session`, when set.
    pub session: Option<String>,
    /// The service id, also the heartbeat's `instance_id`.
    pub instance_id: String,
}

/// One prompt (§5): the decoded envelope, who is serving it, where it arrived.
#[derive(Debug, Clone)]
pub struct Request {
    /// The envelope; `envelope.extra` holds unknown top-level fields (§5.6).
    pub envelope: Envelope,
    /// The instance serving the request.
    pub instance: Arc<Instance>,
    /// The subject the request arrived on.
    pub subject: String,
    /// The request's NATS headers, if any (name, value).
    pub headers: Vec<(String, String)>,
    /// Who sent the request, as the host classified it before the agent
    /// saw it (§13.7): verified, claimed or absent. A claimed sender is for
    /// display only; grant nothing on it (§13.1).
    pub sender: Sender,
}

impl Request {
    /// A request carrying just `prompt`, served by an anonymous instance (for tests).
    pub fn text(prompt: impl Into<String>) -> Self {
        Self::new(Envelope::text(prompt))
    }

    /// A request for an envelope, served by an anonymous instance.
    pub fn new(envelope: Envelope) -> Self {
        Request {
            envelope,
            instance: Arc::new(Instance::default()),
            subject: String::new(),
            headers: Vec::new(),
            sender: Sender::Absent,
        }
    }

    /// The same request from `sender` (for tests and in-process callers).
    pub fn with_sender(mut self, sender: Sender) -> Self {
        self.sender = sender;
        self
    }

    /// The prompt text.
    pub fn prompt(&self) -> &str {
        &self.envelope.prompt
    }

    /// The attachments (§5.2).
    pub fn attachments(&self) -> &[Attachment] {
        &self.envelope.attachments
    }

    /// Who sent the request (§13.7); [`Sender::Absent`] when the request
    /// carried no `Agent-Sender` header.
    pub fn sender(&self) -> &Sender {
        &self.sender
    }

    /// The session label of the serving instance, if any.
    pub fn session(&self) -> Option<&str> {
        self.instance.session.as_deref()
    }
}
