//! The heartbeat payload (§8.3), also the `status` endpoint's reply (§8.7).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// The recommended heartbeat interval (§8.2).
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);

/// How many missed intervals make an instance offline (§8.2).
pub const OFFLINE_AFTER_INTERVALS: u32 = 3;

/// The largest share of the interval by which [`IntervalSecs::jittered`]
/// shortens a wait between beats.
pub const JITTER: f64 = 0.1;

/// A heartbeat interval in seconds: a positive, finite number (§8.3).
///
/// Written as an integer when whole (`30`, as in B.11), else as a decimal.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct IntervalSecs(f64);

/// Why an interval is not valid (§8.3: "> 0").
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[error("interval_s must be a positive finite number of seconds, found {0}")]
pub struct IntervalError(pub f64);

impl IntervalSecs {
    /// Validates `secs`.
    pub fn new(secs: f64) -> Result<Self, IntervalError> {
        if secs.is_finite() && secs > 0.0 {
            Ok(IntervalSecs(secs))
        } else {
            Err(IntervalError(secs))
        }
    }

    /// From a non-zero duration.
    pub fn from_duration(d: Duration) -> Result<Self, IntervalError> {
        Self::new(d.as_secs_f64())
    }

    /// The interval in seconds.
    pub fn secs(self) -> f64 {
        self.0
    }

    /// The interval as a duration.
    pub fn as_duration(self) -> Duration {
        Duration::from_secs_f64(self.0)
    }

    /// The wait before the next beat, shortened by up to [`JITTER`] of
    /// the interval: `draw` is a uniformly random number the caller picks
    /// (this crate has no randomness), `0` for no shortening, `u32::MAX`
    /// for the most.
    ///
    /// Instances started together (a fleet, a restarted deployment) would
    /// otherwise beat in the same instant forever; with every wait drawn
    /// anew their beats spread over the interval within a few periods. A
    /// beat is only ever early, never late, so no caller counts an
    /// instance offline because of it (§8.2).
    pub fn jittered(self, draw: u32) -> Duration {
        let shortening = JITTER * f64::from(draw) / f64::from(u32::MAX);
        Duration::from_secs_f64(self.0 * (1.0 - shortening))
    }
}

impl Serialize for IntervalSecs {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let whole = self.0.fract() == 0.0 && self.0 <= u64::MAX as f64;
        if whole {
            // ok: checked above that the value is a whole number in range.
            s.serialize_u64(self.0 as u64)
        } else {
            s.serialize_f64(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for IntervalSecs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let secs = f64::deserialize(d)?;
        IntervalSecs::new(secs).map_err(serde::de::Error::custom)
    }
}

/// A heartbeat (§8.3) or `status` reply (§8.7).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// Matches `metadata.agent`.
    pub agent: String,
    /// Matches `metadata.owner`.
    pub owner: String,
    /// Matches `metadata.session`; present iff that is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// The service id of the instance.
    pub instance_id: String,
    /// UTC ISO 8601 publication time, as text (this crate has no clock).
    pub ts: String,
    /// The instance's cadence.
    pub interval_s: IntervalSecs,
    /// The protocol version the instance implements (§3.2), declared in the
    /// beat so a listener can prompt it without `$SRV.INFO`. Not a §8.3
    /// field: the Python and TypeScript SDKs add it, and a listener reads
    /// it when present. An empty or non-string value is dropped on decode.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_version"
    )]
    pub protocol_version: Option<String>,
    /// The endpoints the instance declares by name (the SDKs declare
    /// `prompt`): where to send a request and the endpoint's §2.1 metadata,
    /// as its `$SRV.INFO` record has them. A malformed declaration (not an
    /// object, an empty subject, a non-string metadata value) is dropped as
    /// a whole on decode, never an error.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_endpoints"
    )]
    pub endpoints: Option<BTreeMap<String, DeclaredEndpoint>>,
    /// Unknown fields: tolerated (§8.3), kept for relaying.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One endpoint a heartbeat declares: its subject and metadata, copied from
/// the instance's registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeclaredEndpoint {
    /// The endpoint's subject, never empty.
    pub subject: String,
    /// The endpoint's metadata (§2.1 for `prompt`), string values as the
    /// micro-service record carries them.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

/// What a heartbeat declares about the instance beside the §8.3 fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declaration {
    /// The protocol version (§3.2), as registered.
    pub protocol_version: String,
    /// The declared endpoints by name.
    pub endpoints: BTreeMap<String, DeclaredEndpoint>,
}

fn lenient_version<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let value = Value::deserialize(d)?;
    Ok(match value {
        Value::String(s) if !s.is_empty() => Some(s),
        _ => None,
    })
}

fn lenient_endpoints<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<BTreeMap<String, DeclaredEndpoint>>, D::Error> {
    let value = Value::deserialize(d)?;
    let Value::Object(entries) = value else {
        return Ok(None);
    };
    let mut endpoints = BTreeMap::new();
    for (name, entry) in entries {
        let Ok(endpoint) = serde_json::from_value::<DeclaredEndpoint>(entry) else {
            return Ok(None);
        };
        if endpoint.subject.is_empty() {
            return Ok(None);
        }
        endpoints.insert(name, endpoint);
    }
    Ok(Some(endpoints))
}

/// Why a heartbeat payload is invalid.
#[derive(Debug, thiserror::Error)]
#[error("invalid heartbeat payload: {source} (§8.3)")]
pub struct HeartbeatError {
    #[source]
    source: serde_json::Error,
}

impl Heartbeat {
    /// Decodes a heartbeat or status reply.
    pub fn decode(payload: &[u8]) -> Result<Self, HeartbeatError> {
        serde_json::from_slice(payload).map_err(|source| HeartbeatError { source })
    }

    /// The compact JSON wire form, fields in §8.3 order.
    pub fn encode(&self) -> Vec<u8> {
        // ok: a struct of strings, numbers and JSON values always serialises.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// How long after this beat the instance counts as offline (§8.2).
    pub fn offline_after(&self) -> Duration {
        self.interval_s.as_duration() * OFFLINE_AFTER_INTERVALS
    }
}

/// Why a heartbeat timestamp could not be written.
#[derive(Debug, thiserror::Error)]
#[error("could not write the heartbeat timestamp: {source}")]
pub struct TimestampError {
    #[source]
    source: time::error::Format,
}

/// The §8.3 `ts` of a beat published at `at`: UTC, ISO 8601 (RFC 3339),
/// whole seconds, e.g. `2026-04-21T13:59:45Z`.
pub fn timestamp(at: SystemTime) -> Result<String, TimestampError> {
    let at = time::OffsetDateTime::from(at);
    let at = at.replace_nanosecond(0).unwrap_or(at);
    at.format(&time::format_description::well_known::Rfc3339)
        .map_err(|source| TimestampError { source })
}

/// Whether `ts` is what §8.3 asks for: an ISO 8601 (RFC 3339) time in UTC.
pub fn is_utc_timestamp(ts: &str) -> bool {
    time::OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339)
        .is_ok_and(|t| t.offset().is_utc())
}

/// Builds the heartbeats of one instance: the periodic beat (§8.1-8.3) and
/// the `status` reply (§8.7) come from the same builder (§8.7.1), so the
/// two always agree.
#[derive(Debug, Clone, PartialEq)]
pub struct Beacon {
    /// `metadata.agent` of the instance.
    pub agent: String,
    /// `metadata.owner` of the instance.
    pub owner: String,
    /// `metadata.session`, when the instance is session-aware.
    pub session: Option<String>,
    /// The service id of the instance.
    pub instance_id: String,
    /// The instance's cadence.
    pub interval: IntervalSecs,
    /// What every beat declares beside the §8.3 fields, if anything.
    pub declared: Option<Declaration>,
}

impl Beacon {
    /// The beat of time `at` (the caller reads the clock; this crate does not).
    pub fn beat(&self, at: SystemTime) -> Result<Heartbeat, TimestampError> {
        Ok(Heartbeat {
            agent: self.agent.clone(),
            owner: self.owner.clone(),
            session: self.session.clone(),
            instance_id: self.instance_id.clone(),
            ts: timestamp(at)?,
            interval_s: self.interval,
            protocol_version: self.declared.as_ref().map(|d| d.protocol_version.clone()),
            endpoints: self.declared.as_ref().map(|d| d.endpoints.clone()),
            extra: Map::new(),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod declaration_tests {
    use super::*;

    const SDK_BEAT: &str = r#"{"agent":"echo","owner":"alice","session":"default","instance_id":"X1","ts":"2026-04-28T14:23:01Z","interval_s":30,"protocol_version":"0.3","endpoints":{"prompt":{"subject":"agents.prompt.echo.alice.demo","metadata":{"max_payload":"1MB","attachments_ok":"true"}}}}"#;

    #[test]
    fn the_sdks_declarations_are_read_and_written_back_unchanged() {
        let beat = Heartbeat::decode(SDK_BEAT.as_bytes()).unwrap();
        assert_eq!(beat.protocol_version.as_deref(), Some("0.3"));
        let prompt = &beat.endpoints.as_ref().unwrap()["prompt"];
        assert_eq!(prompt.subject, "agents.prompt.echo.alice.demo");
        assert_eq!(prompt.metadata["max_payload"], "1MB");
        assert!(beat.extra.is_empty());
        // The same JSON value comes back (object keys may be reordered).
        let again: Value = serde_json::from_slice(&beat.encode()).unwrap();
        let sent: Value = serde_json::from_str(SDK_BEAT).unwrap();
        assert_eq!(again, sent);
    }

    #[test]
    fn a_malformed_declaration_is_dropped_and_the_beat_kept() {
        let cases = [
            r#""endpoints":{"prompt":{"subject":"","metadata":{}}}"#,
            r#""endpoints":{"prompt":{"subject":"a.b","metadata":{"max_payload":1}}}"#,
            r#""endpoints":["prompt"]"#,
            r#""endpoints":{"prompt":"agents.prompt.x.y.z"}"#,
            r#""protocol_version":"""#,
            r#""protocol_version":3"#,
        ];
        for case in cases {
            let text = format!(
                r#"{{"agent":"a","owner":"o","instance_id":"I","ts":"2026-04-28T14:23:01Z","interval_s":5,{case}}}"#
            );
            let beat = Heartbeat::decode(text.as_bytes()).unwrap();
            assert_eq!(beat.endpoints, None, "{case}");
            assert_eq!(beat.protocol_version, None, "{case}");
            assert!(beat.extra.is_empty(), "{case}");
        }
    }

    #[test]
    fn a_beacon_with_a_declaration_declares_it_in_every_beat() {
        let beacon = Beacon {
            agent: "a".into(),
            owner: "o".into(),
            session: None,
            instance_id: "I".into(),
            interval: IntervalSecs::new(5.0).unwrap(),
            declared: Some(Declaration {
                protocol_version: "0.3".into(),
                endpoints: BTreeMap::from([(
                    "prompt".to_owned(),
                    DeclaredEndpoint {
                        subject: "agents.prompt.a.o.n".into(),
                        metadata: BTreeMap::from([("max_payload".into(), "1MB".into())]),
                    },
                )]),
            }),
        };
        let beat = beacon.beat(SystemTime::UNIX_EPOCH).unwrap();
        let text = String::from_utf8(beat.encode()).unwrap();
        assert!(
            text.ends_with(r#""interval_s":5,"protocol_version":"0.3","endpoints":{"prompt":{"subject":"agents.prompt.a.o.n","metadata":{"max_payload":"1MB"}}}}"#),
            "{text}"
        );
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod jitter_tests {
    use super::*;

    #[test]
    fn a_jittered_wait_is_never_longer_than_the_interval_nor_shorter_than_the_jitter() {
        let interval = IntervalSecs::new(30.0).unwrap();
        assert_eq!(interval.jittered(0), Duration::from_secs(30));
        assert_eq!(interval.jittered(u32::MAX), Duration::from_secs(27));
        let mid = interval.jittered(u32::MAX / 2);
        assert!(mid > Duration::from_secs(28) && mid < Duration::from_secs(29));
    }
}
