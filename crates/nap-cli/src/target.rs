//! TARGET: which agent a command talks to.
//!
//! A TARGET is `agent/owner/name`, `owner/name`, an instance id (§3.4), a
//! unique ending of one (as `nap discover` shows them), or an instance name
//! (§4.3 step 3). Each form costs only what it needs:
//!
//! - an instance id is asked for directly, `$SRV.INFO.agents.{id}` (§4.2);
//! - `agent/owner/name` names one logical agent: discovery stops at the
//!   first instance that answers;
//! - `owner/name`, a bare name or an id ending may match several agents:
//!   discovery waits for every answer, and an ambiguous TARGET is an error
//!   that lists the candidates.

use std::fmt::Write as _;

use nap_nats::{AgentHandle, Client};
use nap_proto::{DiscoveryConfig, DiscoveryFilter};

use crate::failure::Failure;

/// A TARGET as typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `agent/owner/name` or `owner/name`.
    Path {
        /// The agent (harness), when given.
        agent: Option<String>,
        /// The owner.
        owner: String,
        /// The instance name.
        name: String,
    },
    /// One word: an instance id or an instance name.
    Word(String),
}

impl Target {
    /// Reads a TARGET; `None` when it has an empty part or more than three.
    pub fn parse(text: &str) -> Option<Target> {
        let parts: Vec<&str> = text.split('/').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return None;
        }
        match parts.as_slice() {
            [word] => Some(Target::Word((*word).to_owned())),
            [owner, name] => Some(Target::Path {
                agent: None,
                owner: (*owner).to_owned(),
                name: (*name).to_owned(),
            }),
            [agent, owner, name] => Some(Target::Path {
                agent: Some((*agent).to_owned()),
                owner: (*owner).to_owned(),
                name: (*name).to_owned(),
            }),
            _ => None,
        }
    }
}

/// What the resolved agent is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Prompting: instances sharing one prompt subject are one agent, since
    /// its queue group picks one of them anyway (§3.3, §3.4).
    Prompt,
    /// One instance's record or status: instances must be told apart.
    Instance,
}

/// The shortest instance-id ending accepted as a TARGET.
const MIN_ID_END: usize = 4;

/// Whether `word` can be asked for as an instance id: one subject token
/// (§2) of letters and digits.
fn could_be_instance_id(word: &str) -> bool {
    !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric())
}

/// `agent/owner/name` of an instance.
pub fn label(agent: &AgentHandle) -> String {
    format!(
        "{}/{}/{}",
        agent.agent(),
        agent.owner(),
        agent.name().unwrap_or("-")
    )
}

/// Resolves `text` to one agent, by discovery.
pub async fn resolve(
    client: &Client,
    text: &str,
    purpose: Purpose,
) -> Result<AgentHandle, Failure> {
    let target = Target::parse(text).ok_or_else(|| {
        Failure::usage(format!(
            "invalid TARGET {text:?}: use a name, agent/owner/name, owner/name or an instance id"
        ))
    })?;
    // An instance id: one direct request (§4.2).
    if let Target::Word(word) = &target
        && could_be_instance_id(word)
    {
        match client.lookup(word).await {
            Ok(handle) => return Ok(handle),
            Err(nap_nats::Error::NotFound { .. }) => {}
            Err(e @ nap_nats::Error::Incompatible { .. }) => return Err(e.into()),
            Err(error) => tracing::debug!(%word, %error, "direct lookup failed"),
        }
    }
    let mut candidates = match &target {
        // All three tokens name one logical agent: the first answer will do.
        Target::Path {
            agent: Some(agent),
            owner,
            name,
        } => {
            let filter = DiscoveryFilter {
                agent: Some(agent.clone()),
                owner: Some(owner.clone()),
                name: Some(name.clone()),
                ..DiscoveryFilter::any()
            };
            let first = DiscoveryConfig {
                stop_at_first_match: true,
                ..DiscoveryConfig::default()
            };
            client.discover_with(filter, first).await?
        }
        Target::Path { agent, owner, name } => {
            client
                .discover(DiscoveryFilter {
                    agent: agent.clone(),
                    owner: Some(owner.clone()),
                    name: Some(name.clone()),
                    ..DiscoveryFilter::any()
                })
                .await?
        }
        Target::Word(word) => {
            let all = client.discover(DiscoveryFilter::any()).await?;
            let by_id: Vec<AgentHandle> = all.iter().filter(|a| a.id() == word).cloned().collect();
            let by_name: Vec<AgentHandle> = all
                .iter()
                .filter(|a| a.name() == Some(word.as_str()))
                .cloned()
                .collect();
            if !by_id.is_empty() {
                by_id
            } else if !by_name.is_empty() {
                by_name
            } else {
                // The end of an instance id, as the narrow table shows them.
                all.into_iter()
                    .filter(|a| word.len() >= MIN_ID_END && a.id().ends_with(word.as_str()))
                    .collect()
            }
        }
    };
    if candidates.is_empty() {
        if let Target::Word(word) = &target {
            // Says why an instance that exists cannot be used (§11.2).
            if let Err(e @ nap_nats::Error::Incompatible { .. }) = client.lookup(word).await {
                return Err(e.into());
            }
        }
        return Err(Failure::usage(format!(
            "no agent matches TARGET {text:?} (`nap discover` lists them)"
        )));
    }
    if purpose == Purpose::Prompt {
        let mut seen = std::collections::HashSet::new();
        candidates.retain(|a| seen.insert(a.prompt_subject().to_owned()));
    }
    if candidates.len() == 1 {
        return Ok(candidates.remove(0));
    }
    let mut message = format!("TARGET {text:?} is ambiguous; it matches:");
    for agent in &candidates {
        let _infallible = write!(
            message,
            "\n  {}  instance {}{}",
            label(agent),
            agent.id(),
            agent
                .session()
                .map(|s| format!("  session {s}"))
                .unwrap_or_default()
        );
    }
    message.push_str("\nname one of them with agent/owner/name or its instance id");
    Err(Failure::usage(message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_read_as_documented() {
        assert_eq!(Target::parse("demo"), Some(Target::Word("demo".into())));
        assert_eq!(
            Target::parse("alice/demo"),
            Some(Target::Path {
                agent: None,
                owner: "alice".into(),
                name: "demo".into()
            })
        );
        assert_eq!(
            Target::parse("echo/alice/demo"),
            Some(Target::Path {
                agent: Some("echo".into()),
                owner: "alice".into(),
                name: "demo".into()
            })
        );
        assert_eq!(Target::parse("a//b"), None);
        assert_eq!(Target::parse("a/b/c/d"), None);
        assert_eq!(Target::parse(""), None);
    }
}
