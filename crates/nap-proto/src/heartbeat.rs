//! The heartbeat payload (§8.3), also the `status` endpoint's reply (§8.7).

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
    /// Unknown fields: tolerated (§8.3), kept for relaying.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
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
            extra: Map::new(),
        })
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
