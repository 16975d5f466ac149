//! Tables for the terminal.

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{ContentArrangement, Table};
use nap_nats::AgentHandle;
use nap_proto::Endpoint;
use nap_proto::identity::RegisteredIdentity;
use serde_json::{Map, Value};

/// A table in nap's style, with `header`.
pub fn new(header: &[&str]) -> Table {
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.iter().copied());
    table
}

/// `-` for nothing.
pub fn or_dash(value: Option<&str>) -> String {
    value.filter(|v| !v.is_empty()).unwrap_or("-").to_owned()
}

/// `yes` or `no`.
pub fn yes_no(value: bool) -> &'static str {
    if value { "yes" } else { "no" }
}

/// One row per agent instance (§3, §4.3); `online` says, per instance,
/// whether it is online (§8), `None` when unknown.
pub fn agents(agents: &[(AgentHandle, Option<bool>)]) -> Table {
    let mut table = new(&[
        "Agent",
        "Owner",
        "Name",
        "Session",
        "Version",
        "Protocol",
        "Instance",
        "Online",
        "Max payload",
        "Attachments",
        "Identity",
    ]);
    for (agent, online) in agents {
        let info = agent.info();
        table.add_row(vec![
            agent.agent().to_owned(),
            agent.owner().to_owned(),
            or_dash(agent.name()),
            or_dash(agent.session()),
            info.version.clone(),
            agent.protocol_version().to_string(),
            agent.id().to_owned(),
            online.map_or("?", yes_no).to_owned(),
            agent.max_payload().to_string(),
            yes_no(agent.attachments_ok()).to_owned(),
            agent.identity().to_string(),
        ]);
    }
    table
}

/// How many characters of an instance id the narrow table shows: its
/// last ones, since ids made by one process share their beginning (NUIDs
/// are a per-process prefix and a sequence). A unique ending of at least
/// four characters is accepted as a TARGET.
pub const SHORT_ID: usize = 8;

/// The last [`SHORT_ID`] characters of an instance id.
pub fn short_id(id: &str) -> String {
    let skip = id.chars().count().saturating_sub(SHORT_ID);
    id.chars().skip(skip).collect()
}

/// One row per agent instance in the columns that fit 80 columns: the
/// three identity tokens, the instance id shortened to its last
/// [`SHORT_ID`] characters, whether it is online, and its identity's trust class.
/// `nap discover --wide` shows [`agents`] instead.
pub fn agents_narrow(agents: &[(AgentHandle, Option<bool>)]) -> Table {
    let mut table = new(&["Agent", "Owner", "Name", "Instance", "Online", "Identity"]);
    for (agent, online) in agents {
        table.add_row(vec![
            agent.agent().to_owned(),
            agent.owner().to_owned(),
            or_dash(agent.name()),
            short_id(agent.id()),
            online.map_or("?", yes_no).to_owned(),
            trust_class(agent.identity()).to_owned(),
        ]);
    }
    table
}

/// A registered identity's trust class (§13.10, §13.12): `verified`,
/// `claimed`, `none` or `malformed`.
pub fn trust_class(identity: &RegisteredIdentity) -> &'static str {
    match identity {
        RegisteredIdentity::Verified(_) => "verified",
        RegisteredIdentity::Claimed { .. } => "claimed",
        RegisteredIdentity::Malformed(_) => "malformed",
        _ => "none",
    }
}

/// Endpoint metadata as `key=value` pairs.
pub fn metadata(metadata: &Map<String, Value>) -> String {
    if metadata.is_empty() {
        return "-".to_owned();
    }
    metadata
        .iter()
        .map(|(k, v)| match v {
            Value::String(s) => format!("{k}={s}"),
            other => format!("{k}={other}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// One row per endpoint (§2.1, §3.3, §8.7).
pub fn endpoints(endpoints: &[Endpoint]) -> Table {
    let mut table = new(&["Endpoint", "Subject", "Queue group", "Metadata"]);
    for endpoint in endpoints {
        table.add_row(vec![
            endpoint.name.clone(),
            endpoint.subject.clone(),
            or_dash(endpoint.queue_group.as_deref()),
            metadata(&endpoint.metadata),
        ]);
    }
    table
}

/// The key under which `--json` output adds nap's reading of a record's
/// registered identity (§13.10), next to the record's own fields.
pub const IDENTITY_JSON_KEY: &str = "nap_identity";

/// A registered identity (§13.10) as JSON: its trust class (`verified`,
/// `claimed`, `none` or `malformed`), the agent ID it names, and why it
/// is not verified. The class always travels with the ID (§13.12).
pub fn identity_json(identity: &RegisteredIdentity) -> Value {
    let class = trust_class(identity);
    let reason = match identity {
        RegisteredIdentity::Claimed { reason, .. } => Some(reason.to_string()),
        RegisteredIdentity::Malformed(e) => Some(e.to_string()),
        _ => None,
    };
    let mut out = Map::new();
    out.insert("class".into(), Value::from(class));
    if let Some(id) = identity.shown_id() {
        out.insert("id".into(), Value::from(id.to_string()));
    }
    if let Some(reason) = reason {
        out.insert("reason".into(), Value::from(reason));
    }
    Value::Object(out)
}

/// A record as received (§3.2) with [`identity_json`] added under
/// [`IDENTITY_JSON_KEY`].
pub fn record_json(agent: &AgentHandle) -> Value {
    let mut record = agent.info().raw.clone();
    if let Value::Object(fields) = &mut record {
        fields.insert(IDENTITY_JSON_KEY.into(), identity_json(agent.identity()));
    }
    record
}
