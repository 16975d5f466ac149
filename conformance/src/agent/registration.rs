//! Registration and discovery (§2–§4): the `$SRV.INFO` record, `$SRV.PING`
//! and the direct `$SRV.INFO.agents.{id}` lookup.

use std::time::Duration;

use bytes::Bytes;
use nap_proto::info_subject_for;
use nap_proto::{AgentSubject, ByteSize, ProtocolVersion, Verb};
use nap_proto::{INFO_SUBJECT, PING_SUBJECT, QUEUE_GROUP, SERVICE_NAME, metadata_keys as keys};
use serde_json::{Map, Value};

use super::probe::{Probe, Reply};
use crate::case::Evidence;
use crate::catalogue::*;
use crate::error::{Error, Result};
use crate::report::Findings;

/// Which agent instance to test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The instance whose prompt subject's name token (or `metadata.session`) is this.
    Name(String),
    /// The instance with this service id.
    Instance(String),
    /// The instance with an endpoint on this subject.
    Subject(String),
    /// The first agent that answers (useful when only one runs).
    Any,
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Name(n) => write!(f, "name {n:?}"),
            Target::Instance(i) => write!(f, "instance {i:?}"),
            Target::Subject(s) => write!(f, "subject {s:?}"),
            Target::Any => f.write_str("any agent"),
        }
    }
}

/// What the suite learned about the instance under test.
#[derive(Debug, Clone)]
pub struct Subject {
    /// The `$SRV.INFO` reply it was found by.
    pub info: Reply,
    /// The record.
    pub raw: Value,
    /// The service id.
    pub id: String,
    /// `metadata.agent`, if a string.
    pub agent: Option<String>,
    /// `metadata.owner`, if a string.
    pub owner: Option<String>,
    /// `metadata.session`, if a string.
    pub session: Option<String>,
    /// The `prompt` endpoint's subject.
    pub prompt_subject: Option<String>,
    /// The `status` endpoint's subject.
    pub status_subject: Option<String>,
    /// `attachments_ok`, if readable.
    pub attachments_ok: Option<bool>,
    /// `max_payload` in bytes, if readable.
    pub max_payload: Option<u64>,
}

impl Subject {
    /// The heartbeat subject this instance must use (§8.1), derived from
    /// a default-pattern prompt subject.
    pub fn heartbeat_subject(&self) -> Option<String> {
        let prompt = self.prompt_subject.as_deref()?;
        let parsed = AgentSubject::parse(prompt).ok()?;
        (parsed.verb == Verb::Prompt).then(|| parsed.identity.subject(Verb::Hb).to_string())
    }
}

fn endpoint<'a>(raw: &'a Value, name: &str) -> Option<&'a Map<String, Value>> {
    raw.get("endpoints")?
        .as_array()?
        .iter()
        .filter_map(Value::as_object)
        .find(|e| e.get("name").and_then(Value::as_str) == Some(name))
}

fn str_at<'a>(obj: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut v = obj;
    for p in path {
        v = v.get(p)?;
    }
    v.as_str()
}

fn matches(raw: &Value, target: &Target) -> bool {
    let subjects = || {
        raw.get("endpoints")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|e| e.get("subject").and_then(Value::as_str))
    };
    match target {
        Target::Any => true,
        Target::Instance(id) => str_at(raw, &["id"]) == Some(id),
        Target::Subject(s) => subjects().any(|x| x == s),
        Target::Name(n) => {
            let prompt = endpoint(raw, "prompt").and_then(|e| e.get("subject")?.as_str());
            prompt.is_some_and(|p| p.rsplit('.').next() == Some(n.as_str()))
                || str_at(raw, &["metadata", keys::SESSION]) == Some(n)
        }
    }
}

/// Finds the instance under test on `$SRV.INFO.agents`.
pub async fn find(probe: &Probe, target: &Target, wait: Duration) -> Result<Subject> {
    let replies = probe.gather(INFO_SUBJECT, Bytes::new(), wait).await?;
    let seen = replies.len();
    let mut found: Vec<_> = replies
        .into_iter()
        .filter_map(|r| {
            let raw: Value = serde_json::from_slice(&r.body).ok()?;
            matches(&raw, target).then_some((r, raw))
        })
        .collect();
    if found.len() > 1 {
        let candidates = found
            .iter()
            .map(|(_, raw)| {
                let token = |k: &str| str_at(raw, &["metadata", k]).unwrap_or("-").to_owned();
                let name = endpoint(raw, "prompt")
                    .and_then(|e| e.get("subject")?.as_str())
                    .and_then(|p| p.rsplit('.').next())
                    .unwrap_or("-");
                format!(
                    "{}/{}/{name} (instance {})",
                    token(keys::AGENT),
                    token(keys::OWNER),
                    str_at(raw, &["id"]).unwrap_or("-")
                )
            })
            .collect();
        return Err(Error::Ambiguous {
            target: target.to_string(),
            candidates,
        });
    }
    let Some((info, raw)) = found.pop() else {
        return Err(Error::NoAgent {
            target: target.to_string(),
            seen,
        });
    };
    let prompt = endpoint(&raw, "prompt");
    let meta = |k: &str| str_at(&raw, &["metadata", k]).map(str::to_owned);
    let prompt_meta = |k: &str| prompt.and_then(|p| p.get("metadata")?.get(k).cloned());
    Ok(Subject {
        id: str_at(&raw, &["id"]).unwrap_or_default().to_owned(),
        agent: meta(keys::AGENT),
        owner: meta(keys::OWNER),
        session: meta(keys::SESSION),
        prompt_subject: prompt.and_then(|p| p.get("subject")?.as_str().map(str::to_owned)),
        status_subject: endpoint(&raw, "status")
            .and_then(|p| p.get("subject")?.as_str().map(str::to_owned)),
        attachments_ok: prompt_meta(keys::ATTACHMENTS_OK).and_then(|v| read_bool(&v)),
        max_payload: prompt_meta(keys::MAX_PAYLOAD)
            .and_then(|v| ByteSize::parse(v.as_str()?).ok())
            .map(|b| b.bytes()),
        info,
        raw,
    })
}

fn read_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s == "true" => Some(true),
        Value::String(s) if s == "false" => Some(false),
        _ => None,
    }
}

/// Harnesses Appendix C lists as session-aware.
const SESSION_AWARE: &[&str] = &["claude-code", "cc", "pi", "hermes", "dspy"];

/// Judges the record (REG-001..013, REG-016, REG-017).
pub fn judge_record(s: &Subject, f: &mut Findings) {
    let ev = || {
        vec![Evidence::messages(
            "$SRV.INFO.agents reply",
            vec![s.info.wire.clone()],
        )]
    };
    let raw = &s.raw;
    let name = str_at(raw, &["name"]);
    f.check(
        REG_001,
        name == Some(SERVICE_NAME),
        "name is \"agents\"",
        format!("name is {name:?}"),
        ev(),
    );
    let non_empty = |v: Option<&str>| v.is_some_and(|v| !v.trim().is_empty());
    let version = str_at(raw, &["version"]);
    f.check(
        REG_002,
        non_empty(version),
        format!("version {:?}", version.unwrap_or_default()),
        format!("version is {version:?}"),
        ev(),
    );
    let description = str_at(raw, &["description"]);
    f.check(
        REG_003,
        non_empty(description),
        "description is set",
        format!("description is {description:?}"),
        ev(),
    );
    f.check(
        REG_004,
        non_empty(s.agent.as_deref()),
        format!("agent {:?}", s.agent.as_deref().unwrap_or_default()),
        format!(
            "metadata.agent is {:?}",
            raw.get("metadata").and_then(|m| m.get(keys::AGENT))
        ),
        ev(),
    );
    f.check(
        REG_005,
        non_empty(s.owner.as_deref()),
        format!("owner {:?}", s.owner.as_deref().unwrap_or_default()),
        format!(
            "metadata.owner is {:?}",
            raw.get("metadata").and_then(|m| m.get(keys::OWNER))
        ),
        ev(),
    );
    let pv = str_at(raw, &["metadata", keys::PROTOCOL_VERSION]);
    let pv_ok = pv
        .and_then(|v| ProtocolVersion::parse(v).ok())
        .is_some_and(|v| v.major() == 0 && v.minor() == 3);
    f.check(
        REG_006,
        pv_ok,
        format!("protocol_version {:?}", pv.unwrap_or_default()),
        format!("protocol_version is {pv:?}, expected \"0.3\""),
        ev(),
    );
    let session_raw = raw.get("metadata").and_then(|m| m.get(keys::SESSION));
    let session_aware = s
        .agent
        .as_deref()
        .is_some_and(|a| SESSION_AWARE.contains(&a));
    if session_raw.is_some_and(|v| !v.is_string()) {
        f.fail(
            REG_007,
            format!("metadata.session is {session_raw:?}, not a string"),
            ev(),
        );
    } else if session_aware && s.session.is_none() {
        f.fail(
            REG_007,
            "session-aware harness (Appendix C) without metadata.session",
            ev(),
        );
    } else {
        f.pass(
            REG_007,
            match &s.session {
                Some(x) => format!("session {x:?}"),
                None => "no session (not a session-aware harness)".to_owned(),
            },
            ev(),
        );
    }
    let prompt = endpoint(raw, "prompt");
    let status = endpoint(raw, "status");
    f.check(
        REG_008,
        prompt.is_some(),
        "prompt endpoint present",
        "no endpoint named \"prompt\"",
        ev(),
    );
    f.check(
        REG_009,
        status.is_some(),
        "status endpoint present",
        "no endpoint named \"status\"",
        ev(),
    );
    for (case, ep, what) in [(REG_010, prompt, "prompt"), (REG_011, status, "status")] {
        match ep {
            None => f.skip(case, format!("no {what} endpoint")),
            Some(ep) => {
                let qg = ep.get("queue_group").and_then(Value::as_str);
                f.check(
                    case,
                    qg == Some(QUEUE_GROUP),
                    "queue_group \"agents\"",
                    format!("{what} queue_group is {qg:?}"),
                    ev(),
                );
            }
        }
    }
    match prompt {
        None => {
            f.skip(REG_012, "no prompt endpoint");
            f.skip(REG_013, "no prompt endpoint");
        }
        Some(ep) => {
            let meta = ep.get("metadata");
            let mp = meta.and_then(|m| m.get(keys::MAX_PAYLOAD));
            match mp.and_then(Value::as_str).map(ByteSize::parse) {
                Some(Ok(size)) => f.pass(REG_012, format!("max_payload {size}"), ev()),
                Some(Err(e)) => f.fail(REG_012, format!("max_payload: {e}"), ev()),
                None => f.fail(REG_012, format!("max_payload is {mp:?}"), ev()),
            }
            let ao = meta.and_then(|m| m.get(keys::ATTACHMENTS_OK));
            f.check(
                REG_013,
                ao.and_then(read_bool).is_some(),
                format!(
                    "attachments_ok {}",
                    ao.map(Value::to_string).unwrap_or_default()
                ),
                format!("attachments_ok is {ao:?}"),
                ev(),
            );
        }
    }
    let subjects: Vec<&str> = raw
        .get("endpoints")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| e.get("subject").and_then(Value::as_str))
        .collect();
    let bad: Vec<&&str> = subjects
        .iter()
        .filter(|s| s.split('.').any(|t| t.starts_with('$') || t.is_empty()))
        .collect();
    f.check(
        REG_016,
        bad.is_empty(),
        format!("{} endpoint subject(s) valid", subjects.len()),
        format!("invalid subject token in {bad:?}"),
        ev(),
    );
    match s.prompt_subject.as_deref().map(AgentSubject::parse) {
        Some(Ok(p)) if p.verb == Verb::Prompt => {
            let token = p.identity.owner.as_str().to_owned();
            f.check(
                REG_017,
                s.owner.as_deref() == Some(token.as_str()),
                "owner token matches metadata.owner",
                format!("owner token {token:?} vs metadata.owner {:?}", s.owner),
                ev(),
            );
        }
        _ => f.skip(
            REG_017,
            "prompt subject does not follow the default pattern",
        ),
    }
}

/// Judges discovery (REG-014, REG-015).
pub async fn judge_discovery(probe: &Probe, s: &Subject, f: &mut Findings) -> Result<()> {
    let pings = probe
        .gather(PING_SUBJECT, Bytes::new(), Duration::from_millis(800))
        .await?;
    let mine: Vec<&Reply> = pings
        .iter()
        .filter(|r| {
            serde_json::from_slice::<Value>(&r.body)
                .ok()
                .is_some_and(|v| str_at(&v, &["id"]) == Some(s.id.as_str()))
        })
        .collect();
    let ev = vec![Evidence::messages(
        "$SRV.PING.agents replies",
        pings.iter().map(|r| r.wire.clone()).collect(),
    )];
    f.check(
        REG_014,
        mine.len() == 1,
        "answered $SRV.PING.agents once",
        format!("{} PING replies carry id {:?}", mine.len(), s.id),
        ev,
    );
    let subject = info_subject_for(&s.id);
    let (request, reply) = probe
        .request_one(&subject, Bytes::new(), Duration::from_secs(2))
        .await?;
    let mut messages = vec![request];
    let ok = match &reply {
        Some(r) => {
            messages.push(r.wire.clone());
            serde_json::from_slice::<Value>(&r.body)
                .ok()
                .is_some_and(|v| {
                    str_at(&v, &["id"]) == Some(s.id.as_str()) && v.get("endpoints").is_some()
                })
        }
        None => false,
    };
    f.check(
        REG_015,
        ok,
        format!("answered {subject}"),
        match reply {
            None => format!("no reply on {subject}"),
            Some(_) => format!("reply on {subject} is not this instance's record"),
        },
        vec![Evidence::messages("direct lookup", messages)],
    );
    Ok(())
}
