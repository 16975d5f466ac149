//! Extension hooks (the contract's section 6.3): code that adds to the
//! tools' results, or rewrites and refuses prompts, without changing the
//! tools themselves.

use std::path::PathBuf;

use async_trait::async_trait;
use nap_nats::AgentHandle;
use nap_proto::identity::AgentId;
use serde_json::{Map, Value};

/// The fields of a call's result the contract defines; an extension may
/// not set them.
pub(super) const CALL_FIELDS: [&str; 12] = [
    "call_id",
    "state",
    "label",
    "reply",
    "question",
    "error",
    "partial_reply",
    "attachments",
    "remaining",
    "call_ids",
    "open_calls",
    "open_calls_note",
];

/// The fields of a `discover_agents` entry the contract defines.
pub(super) const DISCOVERY_FIELDS: [&str; 10] = [
    "address",
    "agent",
    "owner",
    "name",
    "description",
    "identity",
    "identity_verified",
    "requires_signed_prompts",
    "accepts_attachments",
    "instances",
];

/// What a prompt rewrite sees, after the loop guards passed.
#[derive(Debug)]
#[non_exhaustive]
pub struct PromptContext<'a> {
    /// The address the prompt goes to.
    pub address: &'a str,
    /// The prompt text, as the extensions before this one left it.
    pub prompt: &'a str,
    /// The attachments' paths, resolved and checked against the roots.
    pub attachments: &'a [PathBuf],
    /// The agent the prompt goes to.
    pub target: &'a AgentHandle,
    /// The call's id, as the model will see it.
    pub call_id: &'a str,
    /// The call's label, if any.
    pub label: Option<&'a str>,
    /// The model's tool-call id, when the host passed one
    /// ([`AgentTools::call_with_id`](super::AgentTools::call_with_id)).
    pub tool_call_id: Option<&'a str>,
    /// The served prompt's verified sender (§13.7), if any.
    pub caller: Option<&'a AgentId>,
}

/// What a prompt rewrite may do; every field is optional.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct PromptRewrite {
    /// The prompt's new text.
    pub prompt: Option<String>,
    /// Fields added to every result of the call.
    pub fields: Map<String, Value>,
    /// Refuse the prompt with this error in words: nothing is sent.
    pub refuse: Option<String>,
}

impl PromptRewrite {
    /// A rewrite that changes the text.
    pub fn prompt(text: impl Into<String>) -> Self {
        PromptRewrite {
            prompt: Some(text.into()),
            ..Self::default()
        }
    }

    /// A rewrite that refuses the prompt.
    pub fn refuse(error: impl Into<String>) -> Self {
        PromptRewrite {
            refuse: Some(error.into()),
            ..Self::default()
        }
    }

    /// This rewrite, adding a field to every result of the call.
    pub fn with_field(mut self, name: impl Into<String>, value: Value) -> Self {
        self.fields.insert(name.into(), value);
        self
    }
}

/// What came back: a completed reply, or a question as it arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReplyKind {
    /// The whole reply of a completed call.
    Reply,
    /// A question (§7).
    Question,
}

/// What a reply look sees.
#[derive(Debug)]
#[non_exhaustive]
pub struct ReplyContext<'a> {
    /// The call's id.
    pub call_id: &'a str,
    /// The address the call went to.
    pub address: &'a str,
    /// A reply or a question.
    pub kind: ReplyKind,
    /// The whole reply, or the question.
    pub text: &'a str,
    /// The files that came with it, as the result lists them.
    pub attachments: &'a [Value],
}

/// A failing reply look; the call fails with an error naming an
/// extension bug.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ExtensionError(pub String);

/// An extension of the agent tools: override any of the three hooks.
/// Several extensions run in the order given to
/// [`AgentToolsBuilder::extension`](super::AgentToolsBuilder::extension).
///
/// A hook may not set a field the contract defines. One that does is a
/// bug: from the discovery and prompt hooks the tool call is refused with
/// an error saying so; from a reply look the call fails.
#[async_trait]
pub trait Extension: Send + Sync + 'static {
    /// Extra fields for one `discover_agents` entry.
    async fn discovery_fields(&self, agent: &AgentHandle) -> Map<String, Value> {
        let _ = agent;
        Map::new()
    }

    /// A rewrite of a prompt before `prompt_agent` sends it.
    async fn before_prompt(&self, ctx: &PromptContext<'_>) -> PromptRewrite {
        let _ = ctx;
        PromptRewrite::default()
    }

    /// A look at a completed reply or an arriving question: fields to add
    /// to that result. An error fails the call.
    async fn after_reply(
        &self,
        ctx: &ReplyContext<'_>,
    ) -> Result<Map<String, Value>, ExtensionError> {
        let _ = ctx;
        Ok(Map::new())
    }
}

/// The first field of `fields` that the contract defines, if any.
pub(super) fn reserved<'a>(fields: &'a Map<String, Value>, defined: &[&str]) -> Option<&'a str> {
    fields
        .keys()
        .map(String::as_str)
        .find(|k| defined.contains(k))
}
