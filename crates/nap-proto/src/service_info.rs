//! `$SRV.INFO` records read as agent descriptions (§3, §4.3).

use serde_json::{Map, Value};

use crate::byte_size::{ByteSize, ByteSizeError};
use crate::json::{FieldError, JsonKind};
use crate::subject::{AgentSubject, Verb};
use crate::version::{ProtocolVersion, VersionError};

/// The service name every agent registers under (§3.1).
pub const SERVICE_NAME: &str = "agents";

/// The queue group of the `prompt` and `status` endpoints (§3.3, §8.7).
pub const QUEUE_GROUP: &str = "agents";

/// The `$SRV.INFO` subject for all agents (§4).
pub const INFO_SUBJECT: &str = "$SRV.INFO.agents";

/// The `$SRV.PING` subject for all agents (§4).
pub const PING_SUBJECT: &str = "$SRV.PING.agents";

/// Service metadata keys (§3.2).
pub mod keys {
    /// `metadata.agent`.
    pub const AGENT: &str = "agent";
    /// `metadata.owner`.
    pub const OWNER: &str = "owner";
    /// `metadata.session`.
    pub const SESSION: &str = "session";
    /// `metadata.protocol_version`.
    pub const PROTOCOL_VERSION: &str = "protocol_version";
    /// `prompt` endpoint metadata `max_payload` (§2.1).
    pub const MAX_PAYLOAD: &str = "max_payload";
    /// `prompt` endpoint metadata `attachments_ok` (§2.1).
    pub const ATTACHMENTS_OK: &str = "attachments_ok";
    /// `prompt` endpoint metadata `min_sender_trust` (§13.9).
    pub const MIN_SENDER_TRUST: &str = crate::identity::MIN_SENDER_TRUST_KEY;
    /// Service metadata `user_nkey` (§13.10).
    pub const USER_NKEY: &str = crate::identity::registration::keys::USER_NKEY;
    /// Service metadata `account` (§13.10).
    pub const ACCOUNT: &str = crate::identity::registration::keys::ACCOUNT;
    /// Service metadata `id_sig` (§13.10).
    pub const ID_SIG: &str = crate::identity::registration::keys::ID_SIG;
}

/// The `$SRV.INFO.agents.{id}` subject for one instance (§4.2).
pub fn info_subject_for(instance_id: &str) -> String {
    format!("{INFO_SUBJECT}.{instance_id}")
}

/// What an agent registers (§3): the service metadata and the `prompt`
/// endpoint's capability metadata, as the string maps micro-service
/// frameworks carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// `metadata.agent` (§3.2).
    pub agent: String,
    /// `metadata.owner` (§3.2).
    pub owner: String,
    /// `metadata.session`, for session-aware harnesses (§3.2).
    pub session: Option<String>,
    /// The `prompt` endpoint's limits (§2.1).
    pub limits: crate::request::PromptLimits,
    /// What the `prompt` endpoint requires of senders (§13.9); nap always
    /// declares it, since it implements §13.
    pub min_sender_trust: crate::identity::MinSenderTrust,
    /// The agent's signed identity (§13.10), when it holds its seed.
    pub identity: Option<crate::identity::RegistrationIdentity>,
}

impl Registration {
    /// The service metadata: `extra` (additional keys, §3.2) overlaid with
    /// the protocol's own keys, which cannot be overridden.
    pub fn service_metadata(
        &self,
        extra: &std::collections::HashMap<String, String>,
    ) -> std::collections::HashMap<String, String> {
        let mut metadata = extra.clone();
        metadata.insert(keys::AGENT.into(), self.agent.clone());
        metadata.insert(keys::OWNER.into(), self.owner.clone());
        metadata.insert(
            keys::PROTOCOL_VERSION.into(),
            crate::version::CURRENT.to_string(),
        );
        match &self.session {
            Some(s) => metadata.insert(keys::SESSION.into(), s.clone()),
            None => metadata.remove(keys::SESSION),
        };
        // §13.10: the identity keys are the agent's own, or absent; never
        // taken from `extra`, where they would be an unsigned claim.
        for key in [keys::USER_NKEY, keys::ACCOUNT, keys::ID_SIG] {
            metadata.remove(key);
        }
        if let Some(identity) = &self.identity {
            metadata.extend(identity.metadata());
        }
        metadata
    }

    /// The `prompt` endpoint metadata (§2.1, §3.3): `max_payload` in its
    /// unit form and `attachments_ok` as `"true"`/`"false"`.
    pub fn prompt_metadata(&self) -> std::collections::HashMap<String, String> {
        std::collections::HashMap::from([
            (
                keys::MAX_PAYLOAD.to_owned(),
                self.limits.max_payload.to_string(),
            ),
            (
                keys::ATTACHMENTS_OK.to_owned(),
                self.limits.attachments_ok.to_string(),
            ),
            (
                keys::MIN_SENDER_TRUST.to_owned(),
                self.min_sender_trust.as_str().to_owned(),
            ),
        ])
    }

    /// What this registration's heartbeats declare (the SDKs' heartbeat
    /// declarations): the protocol version and the `prompt` endpoint at
    /// `prompt_subject` with the same metadata as its `$SRV.INFO` record.
    pub fn declaration(&self, prompt_subject: &str) -> crate::heartbeat::Declaration {
        crate::heartbeat::Declaration {
            protocol_version: crate::version::CURRENT.to_string(),
            endpoints: std::collections::BTreeMap::from([(
                crate::subject::Verb::Prompt.as_str().to_owned(),
                crate::heartbeat::DeclaredEndpoint {
                    subject: prompt_subject.to_owned(),
                    metadata: self.prompt_metadata().into_iter().collect(),
                },
            )]),
        }
    }

    /// The default description (§3.1): `"{agent} agent {owner}/{name}"`.
    pub fn default_description(&self, name: &str) -> String {
        format!("{} agent {}/{}", self.agent, self.owner, name)
    }
}

/// One `$SRV.PING.agents` reply: an instance that is reachable now (§4.1, §8.4).
#[derive(Debug, Clone, PartialEq)]
pub struct PingRecord {
    /// The service id, which heartbeats carry as `instance_id` (§3.4).
    pub id: String,
    /// The harness version (§3.1).
    pub version: String,
    /// The service metadata, unknown keys included (§3.2).
    pub metadata: Map<String, Value>,
    /// The whole reply, for relaying unchanged (§3.2).
    pub raw: Value,
}

impl PingRecord {
    /// Reads a ping reply; `None` when it is not an `agents` service record.
    pub fn parse(payload: &[u8]) -> Option<PingRecord> {
        let raw: Value = serde_json::from_slice(payload).ok()?;
        let obj = raw.as_object()?;
        // §3.1: only services named `agents` are agents.
        if obj.get("name")?.as_str()? != SERVICE_NAME {
            return None;
        }
        let id = obj.get("id")?.as_str()?.to_owned();
        let version = obj
            .get("version")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let metadata = obj
            .get("metadata")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        Some(PingRecord {
            id,
            version,
            metadata,
            raw,
        })
    }

    /// `metadata.agent` (§3.2).
    pub fn agent(&self) -> Option<&str> {
        self.metadata.get(keys::AGENT).and_then(Value::as_str)
    }

    /// `metadata.owner` (§3.2).
    pub fn owner(&self) -> Option<&str> {
        self.metadata.get(keys::OWNER).and_then(Value::as_str)
    }

    /// `metadata.protocol_version`, when present and MAJOR.MINOR (§11.1).
    pub fn protocol_version(&self) -> Option<ProtocolVersion> {
        let text = self.metadata.get(keys::PROTOCOL_VERSION)?.as_str()?;
        ProtocolVersion::parse(text).ok()
    }
}

/// An agent instance as described by its `$SRV.INFO` record.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentInfo {
    /// The service id: per instance, also the heartbeat's `instance_id` (§3.4).
    pub id: String,
    /// Harness implementation version (§3.1).
    pub version: String,
    /// Human-readable description (§3.1); empty when the record has none.
    pub description: String,
    /// The required service metadata (§3.2).
    pub metadata: AgentMetadata,
    /// The `prompt` endpoint (§2.1, §4.3).
    pub prompt: PromptEndpoint,
    /// The `status` endpoint (§8.7), if registered.
    pub status: Option<Endpoint>,
    /// Every endpoint as registered, unknown ones included.
    pub endpoints: Vec<Endpoint>,
    /// The agent's registered identity (§13.10), verified only when its
    /// `id_sig` checks out against this record's own fields.
    pub identity: crate::identity::RegisteredIdentity,
    /// The whole record, for relaying unchanged (§3.2).
    pub raw: Value,
}

/// The service metadata of §3.2.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentMetadata {
    /// Canonical harness identifier.
    pub agent: String,
    /// Operator or account.
    pub owner: String,
    /// Session label, when session-aware.
    pub session: Option<String>,
    /// The protocol version implemented.
    pub protocol_version: ProtocolVersion,
    /// Additional keys, preserved (§3.2).
    pub extra: Map<String, Value>,
}

/// One endpoint of a service record.
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    /// The endpoint name (`prompt`, `status`, ...).
    pub name: String,
    /// The subject to publish to, verbatim (§4.3).
    pub subject: String,
    /// The queue group, as the framework reports it.
    pub queue_group: Option<String>,
    /// Endpoint metadata.
    pub metadata: Map<String, Value>,
}

/// The `prompt` endpoint with its §2.1 metadata read.
#[derive(Debug, Clone, PartialEq)]
pub struct PromptEndpoint {
    /// The subject to publish requests to (§4.3).
    pub subject: String,
    /// The queue group the framework reports (should be `agents`, §3.3).
    pub queue_group: Option<String>,
    /// The largest request the agent accepts (§2.1).
    pub max_payload: ByteSize,
    /// Whether attachments are accepted (§2.1).
    pub attachments_ok: bool,
    /// The declared sender requirement (§13.9): `None` when the endpoint
    /// declares none (an agent without §13, which serves any sender); an
    /// unknown value reads as `signed`.
    pub min_sender_trust: Option<crate::identity::MinSenderTrust>,
    /// All endpoint metadata, unknown keys included.
    pub metadata: Map<String, Value>,
}

impl PromptEndpoint {
    /// The requirement a caller acts on: the declared one, else `any` (§13.9).
    pub fn required_trust(&self) -> crate::identity::MinSenderTrust {
        self.min_sender_trust.unwrap_or_default()
    }
}

/// Why a `$SRV.INFO` reply is not a usable agent record.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InfoError {
    /// Not a JSON object.
    #[error("not a JSON object: {source}")]
    NotJson {
        /// The JSON parser's report.
        #[source]
        source: serde_json::Error,
    },
    /// A service, but not named `agents` (§3.1).
    #[error("service {name:?} is not an agent (name must be \"agents\", §3.1)")]
    NotAgents {
        /// The service name found.
        name: String,
    },
    /// A top-level field (`name`, `id`, `version`, `endpoints`) is missing or mistyped.
    #[error("record {0} (§3.1)")]
    Field(FieldError),
    /// A required metadata key is missing or not a string (§3.2).
    #[error("metadata {0} (§3.2)")]
    Metadata(FieldError),
    /// `protocol_version` is not MAJOR.MINOR (§11.1).
    #[error(transparent)]
    ProtocolVersion(#[from] VersionError),
    /// An endpoint entry is malformed.
    #[error("endpoint {index}: {error}")]
    Endpoint {
        /// Index in `endpoints`.
        index: usize,
        /// What is wrong.
        error: FieldError,
    },
    /// No endpoint named `prompt` (§2).
    #[error("no endpoint named \"prompt\" (§2)")]
    NoPromptEndpoint,
    /// The `prompt` endpoint lacks a §2.1 metadata key.
    #[error("prompt endpoint metadata `{key}` is missing (§2.1)")]
    PromptMetadataMissing {
        /// The missing key.
        key: &'static str,
    },
    /// `max_payload` does not parse (§2.1).
    #[error("prompt endpoint metadata `max_payload`: {0} (§2.1)")]
    MaxPayload(#[from] ByteSizeError),
    /// `attachments_ok` is not a boolean nor `"true"`/`"false"` (§2.1).
    #[error(
        "prompt endpoint metadata `attachments_ok` must be true or false, found {found} (§2.1)"
    )]
    AttachmentsOk {
        /// The value found.
        found: Value,
    },
}

fn field_str(obj: &Map<String, Value>, field: &'static str) -> Result<String, FieldError> {
    match obj.get(field) {
        None | Some(Value::Null) => Err(FieldError::Missing { field }),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(FieldError::WrongType {
            field,
            expected: JsonKind::String,
            found: JsonKind::of(other),
        }),
    }
}

fn field_opt_str(
    obj: &Map<String, Value>,
    field: &'static str,
) -> Result<Option<String>, FieldError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(_) => field_str(obj, field).map(Some),
    }
}

fn field_object(
    obj: &Map<String, Value>,
    field: &'static str,
) -> Result<Map<String, Value>, FieldError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(m)) => Ok(m.clone()),
        Some(other) => Err(FieldError::WrongType {
            field,
            expected: JsonKind::Object,
            found: JsonKind::of(other),
        }),
    }
}

impl Endpoint {
    fn from_json(value: &Value) -> Result<Self, FieldError> {
        let Value::Object(obj) = value else {
            return Err(FieldError::WrongType {
                field: "endpoints[]",
                expected: JsonKind::Object,
                found: JsonKind::of(value),
            });
        };
        Ok(Endpoint {
            name: field_str(obj, "name")?,
            subject: field_str(obj, "subject")?,
            queue_group: field_opt_str(obj, "queue_group")?,
            metadata: field_object(obj, "metadata")?,
        })
    }
}

/// Reads a metadata boolean such as `attachments_ok`: a JSON boolean or the strings `"true"`/`"false"`
/// (micro-service frameworks carry endpoint metadata as strings).
pub fn read_bool(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s == "true" => Some(true),
        Value::String(s) if s == "false" => Some(false),
        _ => None,
    }
}

impl PromptEndpoint {
    fn from_endpoint(ep: &Endpoint) -> Result<Self, InfoError> {
        let max_payload = match ep.metadata.get(keys::MAX_PAYLOAD) {
            None => {
                return Err(InfoError::PromptMetadataMissing {
                    key: keys::MAX_PAYLOAD,
                });
            }
            Some(Value::String(s)) => ByteSize::parse(s)?,
            Some(other) => {
                return Err(InfoError::MaxPayload(ByteSizeError::NoNumber {
                    text: other.to_string(),
                }));
            }
        };
        let attachments_ok = match ep.metadata.get(keys::ATTACHMENTS_OK) {
            None => {
                return Err(InfoError::PromptMetadataMissing {
                    key: keys::ATTACHMENTS_OK,
                });
            }
            Some(v) => read_bool(v).ok_or_else(|| InfoError::AttachmentsOk { found: v.clone() })?,
        };
        let min_sender_trust = ep
            .metadata
            .get(keys::MIN_SENDER_TRUST)
            .map(crate::identity::MinSenderTrust::from_declared);
        Ok(PromptEndpoint {
            subject: ep.subject.clone(),
            queue_group: ep.queue_group.clone(),
            max_payload,
            attachments_ok,
            min_sender_trust,
            metadata: ep.metadata.clone(),
        })
    }
}

impl AgentInfo {
    /// Parses one `$SRV.INFO` reply.
    pub fn parse(payload: &[u8]) -> Result<Self, InfoError> {
        let raw: Value =
            serde_json::from_slice(payload).map_err(|source| InfoError::NotJson { source })?;
        Self::from_value(raw)
    }

    /// Reads an already-parsed record.
    pub fn from_value(raw: Value) -> Result<Self, InfoError> {
        let Value::Object(obj) = &raw else {
            return Err(InfoError::Field(FieldError::WrongType {
                field: "(record)",
                expected: JsonKind::Object,
                found: JsonKind::of(&raw),
            }));
        };
        let name = field_str(obj, "name").map_err(InfoError::Field)?;
        if name != SERVICE_NAME {
            return Err(InfoError::NotAgents { name });
        }
        let id = field_str(obj, "id").map_err(InfoError::Field)?;
        let version = field_str(obj, "version").map_err(InfoError::Field)?;
        let description = field_opt_str(obj, "description")
            .map_err(InfoError::Field)?
            .unwrap_or_default();

        let mut extra = field_object(obj, "metadata").map_err(InfoError::Field)?;
        let mut take = |key: &'static str| -> Result<Option<String>, FieldError> {
            match extra.shift_remove(key) {
                None => Ok(None),
                Some(Value::String(s)) => Ok(Some(s)),
                Some(other) => Err(FieldError::WrongType {
                    field: key,
                    expected: JsonKind::String,
                    found: JsonKind::of(&other),
                }),
            }
        };
        let required = |v: Option<String>, field| v.ok_or(FieldError::Missing { field });
        let agent = required(take(keys::AGENT).map_err(InfoError::Metadata)?, keys::AGENT)
            .map_err(InfoError::Metadata)?;
        let owner = required(take(keys::OWNER).map_err(InfoError::Metadata)?, keys::OWNER)
            .map_err(InfoError::Metadata)?;
        let session = take(keys::SESSION).map_err(InfoError::Metadata)?;
        let protocol_version = required(
            take(keys::PROTOCOL_VERSION).map_err(InfoError::Metadata)?,
            keys::PROTOCOL_VERSION,
        )
        .map_err(InfoError::Metadata)?;
        let protocol_version = ProtocolVersion::parse(&protocol_version)?;

        let endpoints = match obj.get("endpoints") {
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(index, v)| {
                    Endpoint::from_json(v).map_err(|error| InfoError::Endpoint { index, error })
                })
                .collect::<Result<Vec<_>, _>>()?,
            None | Some(Value::Null) => Vec::new(),
            Some(other) => {
                return Err(InfoError::Field(FieldError::WrongType {
                    field: "endpoints",
                    expected: JsonKind::Array,
                    found: JsonKind::of(other),
                }));
            }
        };
        let find = |name: &str| endpoints.iter().find(|e| e.name == name);
        let prompt = PromptEndpoint::from_endpoint(
            find(Verb::Prompt.as_str()).ok_or(InfoError::NoPromptEndpoint)?,
        )?;
        let status = find(Verb::Status.as_str()).cloned();
        let identity =
            crate::identity::RegisteredIdentity::read(&extra, &agent, &owner, &prompt.subject);

        Ok(AgentInfo {
            id,
            version,
            description,
            metadata: AgentMetadata {
                agent,
                owner,
                session,
                protocol_version,
                extra,
            },
            prompt,
            status,
            endpoints,
            identity,
            raw,
        })
    }

    /// The record as compact JSON, unchanged (relays preserve unknown
    /// metadata, §3.2).
    pub fn encode(&self) -> Vec<u8> {
        // ok: a JSON value always serialises.
        serde_json::to_vec(&self.raw).unwrap_or_default()
    }

    /// The instance name (§4.3 step 3): the name token of the prompt subject
    /// when it follows the default pattern, else `metadata.session`.
    pub fn instance_name(&self) -> Option<&str> {
        match AgentSubject::parse(&self.prompt.subject) {
            Ok(s) if s.verb == Verb::Prompt => {
                let name_start = self.prompt.subject.len() - s.identity.name.as_str().len();
                Some(&self.prompt.subject[name_start..])
            }
            _ => self.metadata.session.as_deref(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn record(patch: impl FnOnce(&mut Value)) -> Vec<u8> {
        let mut v = serde_json::json!({
            "name": "agents", "id": "ID1", "version": "1.0.0", "description": "d",
            "metadata": {"agent": "echo", "owner": "me", "protocol_version": "0.3", "x-extra": "kept"},
            "endpoints": [
                {"name": "prompt", "subject": "agents.prompt.echo.me.n1", "queue_group": "agents",
                 "metadata": {"max_payload": "512KB", "attachments_ok": "false"}},
                {"name": "status", "subject": "agents.status.echo.me.n1", "queue_group": "agents", "metadata": null}
            ]
        });
        patch(&mut v);
        serde_json::to_vec(&v).unwrap()
    }

    #[test]
    fn reads_a_framework_record() {
        let info = AgentInfo::parse(&record(|_| {})).unwrap();
        assert_eq!(info.prompt.max_payload, ByteSize::kib(512));
        assert!(!info.prompt.attachments_ok);
        assert_eq!(info.instance_name(), Some("n1"));
        assert_eq!(info.metadata.extra["x-extra"], "kept");
        assert_eq!(info.status.unwrap().subject, "agents.status.echo.me.n1");
    }

    #[test]
    fn attachments_ok_as_bool_or_string() {
        for (v, expected) in [
            (Value::Bool(true), true),
            (Value::Bool(false), false),
            (Value::from("true"), true),
            (Value::from("false"), false),
        ] {
            let info = AgentInfo::parse(&record(|r| {
                r["endpoints"][0]["metadata"]["attachments_ok"] = v
            }))
            .unwrap();
            assert_eq!(info.prompt.attachments_ok, expected);
        }
        let err = AgentInfo::parse(&record(|r| {
            r["endpoints"][0]["metadata"]["attachments_ok"] = "yes".into()
        }));
        assert!(matches!(err, Err(InfoError::AttachmentsOk { .. })));
    }

    #[test]
    fn rejections_say_why() {
        type Patch = Box<dyn Fn(&mut Value)>;
        let cases: Vec<(Patch, &str)> = vec![
            (Box::new(|r| r["name"] = "billing".into()), "not an agent"),
            (
                Box::new(|r| r["metadata"].as_object_mut().unwrap().clear()),
                "`agent` is missing",
            ),
            (
                Box::new(|r| {
                    r["metadata"].as_object_mut().unwrap().shift_remove("owner");
                }),
                "`owner` is missing",
            ),
            (
                Box::new(|r| {
                    r["metadata"]
                        .as_object_mut()
                        .unwrap()
                        .shift_remove("protocol_version");
                }),
                "`protocol_version` is missing",
            ),
            (
                Box::new(|r| r["metadata"]["protocol_version"] = "three".into()),
                "not a MAJOR.MINOR",
            ),
            (
                Box::new(|r| r["metadata"]["agent"] = 7.into()),
                "must be a string, found a number",
            ),
            (
                Box::new(|r| r["endpoints"] = serde_json::json!([])),
                "no endpoint named \"prompt\"",
            ),
            (
                Box::new(|r| {
                    r["endpoints"][0]["metadata"]
                        .as_object_mut()
                        .unwrap()
                        .shift_remove("max_payload");
                }),
                "`max_payload` is missing",
            ),
            (
                Box::new(|r| r["endpoints"][0]["metadata"]["max_payload"] = "1 MB".into()),
                "expected B, KB, MB or GB",
            ),
            (
                Box::new(|r| r["endpoints"][0]["subject"] = Value::Null),
                "endpoint 0: field `subject` is missing",
            ),
        ];
        for (patch, expected) in cases {
            let err = AgentInfo::parse(&record(patch)).unwrap_err().to_string();
            assert!(
                err.contains(expected),
                "{err:?} should contain {expected:?}"
            );
        }
    }

    #[test]
    fn instance_name_falls_back_to_session() {
        let info = AgentInfo::parse(&record(|r| {
            r["endpoints"][0]["subject"] = "custom.subject".into();
            r["metadata"]["session"] = "s1".into();
        }))
        .unwrap();
        assert_eq!(info.instance_name(), Some("s1"));
    }
}
