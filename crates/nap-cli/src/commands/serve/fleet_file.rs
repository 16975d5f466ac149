//! The file `nap serve fleet FILE` reads: a JSON list of agents to host
//! in one fleet.
//!
//! Each entry takes the options of `nap serve echo|exec|llm` under the
//! same names (`kind` picks which); unknown keys are refused, so that a
//! typo is an error instead of a default.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use nap_agent::Agent;
use nap_nats::AgentServiceBuilder;
use nap_nats::identity::SenderKey;
use nap_proto::ByteSize;
use nap_proto::identity::{AgentId, MinSenderTrust};
use serde::Deserialize;

use super::HostArgs;
use crate::failure::Failure;

/// What `nap serve fleet --example` prints.
pub const EXAMPLE: &str = r#"{
  "agents": [
    { "kind": "echo", "name": "echo", "count": 3 },
    { "kind": "echo", "name": "support", "owner": "alice", "session": "s-42",
      "metadata": { "team": "blue" }, "heartbeat": 10 },
    { "kind": "exec", "name": "date", "command": ["date", "-u"] },
    { "kind": "llm", "name": "helper", "system": "Answer in one sentence." }
  ]
}"#;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FleetFile {
    agents: Vec<Entry>,
}

/// One entry: an agent, or `count` agents named `name-0` … `name-(count-1)`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    kind: Kind,
    name: Option<String>,
    agent: Option<String>,
    #[serde(default = "default_owner")]
    owner: String,
    session: Option<String>,
    description: Option<String>,
    #[serde(default = "default_heartbeat")]
    heartbeat: f64,
    max_payload: Option<String>,
    #[serde(default = "yes")]
    attachments: bool,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
    min_sender_trust: Option<String>,
    #[serde(default)]
    accept_senders: Vec<String>,
    count: Option<u32>,
    /// `exec`: the command and its arguments.
    #[serde(default)]
    command: Vec<String>,
    /// `exec`: lines of stderr kept for the error description.
    stderr_tail: Option<usize>,
    /// `llm`: the system prompt.
    system: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Kind {
    Echo,
    Exec,
    Llm,
}

fn default_owner() -> String {
    "nap".to_owned()
}

fn default_heartbeat() -> f64 {
    30.0
}

fn yes() -> bool {
    true
}

/// The agents of one entry: their builders with labels, and the agent
/// they all serve.
pub type Hosted = (Vec<(AgentServiceBuilder, String)>, Arc<dyn Agent>);

/// Reads `path` into the agents to host; every error names the file and,
/// where it has one, the entry.
pub fn load(path: &Path, key: Option<&SenderKey>) -> Result<Vec<Hosted>, Failure> {
    let shown = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::usage(format!("cannot read {shown}: {e}")))?;
    let file: FleetFile =
        serde_json::from_str(&text).map_err(|e| Failure::usage(format!("{shown}: {e}")))?;
    if file.agents.is_empty() {
        return Err(Failure::usage(format!("{shown}: \"agents\" is empty")));
    }
    file.agents
        .into_iter()
        .enumerate()
        .map(|(i, entry)| {
            entry.hosted(key).map_err(|mut failure| {
                failure.error = failure.error.context(format!("{shown}: agents[{i}]"));
                failure
            })
        })
        .collect()
}

impl Entry {
    fn hosted(self, key: Option<&SenderKey>) -> Result<Hosted, Failure> {
        let max_payload = match &self.max_payload {
            None => ByteSize::new(1 << 20),
            Some(text) => text
                .parse()
                .map_err(|e| Failure::usage(format!("max_payload {text:?}: {e}")))?,
        };
        let min_sender_trust = self
            .min_sender_trust
            .as_deref()
            .map(|text| {
                text.parse::<MinSenderTrust>()
                    .map_err(|e| Failure::usage(format!("min_sender_trust {text:?}: {e}")))
            })
            .transpose()?;
        let accept_sender = self
            .accept_senders
            .iter()
            .map(|text| {
                text.parse::<AgentId>()
                    .map_err(|e| Failure::usage(format!("accept_senders {text:?}: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if self.count == Some(0) {
            return Err(Failure::usage("count must be at least 1"));
        }
        let host = HostArgs {
            agent: self.agent,
            owner: self.owner,
            name: self.name,
            session: self.session,
            description: self.description,
            heartbeat: self.heartbeat,
            max_payload,
            no_attachments: !self.attachments,
            metadata: self.metadata.into_iter().collect(),
            min_sender_trust,
            accept_sender,
            count: self.count,
        };
        let only = |what: &str, kind: &str, set: bool| {
            if set {
                Err(Failure::usage(format!(
                    "{what} applies to kind {kind:?} only"
                )))
            } else {
                Ok(())
            }
        };
        match self.kind {
            Kind::Echo => {
                only("command", "exec", !self.command.is_empty())?;
                only("system", "llm", self.system.is_some())?;
                host.echo(key)
            }
            Kind::Exec => {
                only("system", "llm", self.system.is_some())?;
                if self.command.is_empty() {
                    return Err(Failure::usage("kind \"exec\" needs a \"command\""));
                }
                host.exec(&self.command, self.stderr_tail.unwrap_or(5), key)
            }
            Kind::Llm => {
                only("command", "exec", !self.command.is_empty())?;
                host.llm(self.system, key)
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn write(text: &str) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut file, text.as_bytes()).unwrap();
        file
    }

    fn error(text: &str) -> String {
        let file = write(text);
        match load(file.path(), None) {
            Ok(_) => panic!("{text} was accepted"),
            Err(failure) => format!("{:#}", failure.error),
        }
    }

    #[test]
    fn the_example_loads() {
        let file = write(EXAMPLE);
        let hosted = load(file.path(), None).unwrap();
        let labels: Vec<String> = hosted
            .iter()
            .flat_map(|(b, _)| b.iter().map(|(_, l)| l.clone()))
            .collect();
        assert_eq!(
            labels,
            [
                "echo/nap/echo-0",
                "echo/nap/echo-1",
                "echo/nap/echo-2",
                "echo/alice/support",
                "exec/nap/date",
                "llm/nap/helper"
            ]
        );
    }

    #[test]
    fn mistakes_are_named() {
        assert!(
            error(r#"{"agents":[{"kind":"echo","nmae":"x"}]}"#).contains("unknown field `nmae`")
        );
        assert!(error(r#"{"agents":[{"kind":"robot"}]}"#).contains("unknown variant `robot`"));
        assert!(error(r#"{"agents":[]}"#).contains("empty"));
        let e = error(r#"{"agents":[{"kind":"echo"},{"kind":"exec"}]}"#);
        assert!(
            e.contains("agents[1]") && e.contains("needs a \"command\""),
            "{e}"
        );
        let e = error(r#"{"agents":[{"kind":"echo","max_payload":"lots"}]}"#);
        assert!(e.contains("agents[0]") && e.contains("max_payload"), "{e}");
        let e = error(r#"{"agents":[{"kind":"echo","command":["ls"]}]}"#);
        assert!(e.contains("command applies to kind \"exec\" only"), "{e}");
        assert!(error("{").contains("EOF"));
    }
}
