//! `$SRV.STATS` replies: the request counters every NATS micro service
//! keeps per endpoint, read for agents (§3.1: services named `agents`).
//!
//! The protocol does not define these counters; they come with the micro
//! service an agent registers as (§3), so every conformant agent answers.
//!
//! ```
//! use nap_proto::ServiceStats;
//!
//! let reply = br#"{"type":"io.nats.micro.v1.stats_response","name":"agents","id":"X1",
//!   "version":"1.0.0","started":"2026-11-22T10:00:00Z","endpoints":[{"name":"prompt",
//!   "subject":"agents.prompt.echo.alice.demo","num_requests":3,"num_errors":1,
//!   "last_error":"500:boom","processing_time":3000000,"average_processing_time":1000000}]}"#;
//! let stats = ServiceStats::parse(reply).unwrap();
//! assert_eq!(stats.endpoint("prompt").unwrap().num_requests, 3);
//! ```

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::service_info::SERVICE_NAME;

/// The `$SRV.STATS` subject for all agents.
pub const STATS_SUBJECT: &str = "$SRV.STATS.agents";

/// One agent instance's counters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceStats {
    /// The service id, which heartbeats carry as `instance_id` (§3.4).
    pub id: String,
    /// The harness version (§3.1).
    #[serde(default)]
    pub version: String,
    /// When the service started, as it says (RFC 3339).
    #[serde(default)]
    pub started: Option<String>,
    /// One entry per endpoint.
    #[serde(default)]
    pub endpoints: Vec<EndpointStats>,
}

/// One endpoint's counters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointStats {
    /// The endpoint name (`prompt`, `status`).
    pub name: String,
    /// The subject it serves.
    #[serde(default)]
    pub subject: String,
    /// Requests received.
    #[serde(default)]
    pub num_requests: u64,
    /// Requests answered with an error.
    #[serde(default)]
    pub num_errors: u64,
    /// The last error, as the service recorded it (empty when none).
    #[serde(default)]
    pub last_error: String,
    /// Total processing time, in nanoseconds.
    #[serde(default)]
    pub processing_time: u64,
    /// Mean processing time per request, in nanoseconds.
    #[serde(default)]
    pub average_processing_time: u64,
}

impl ServiceStats {
    /// Reads a `$SRV.STATS` reply; `None` when it is not an `agents`
    /// service's stats (§3.1) or not stats at all.
    pub fn parse(payload: &[u8]) -> Option<ServiceStats> {
        let raw: Value = serde_json::from_slice(payload).ok()?;
        if raw.get("name")?.as_str()? != SERVICE_NAME {
            return None;
        }
        serde_json::from_value(raw).ok()
    }

    /// The counters of the endpoint named `name`.
    pub fn endpoint(&self, name: &str) -> Option<&EndpointStats> {
        self.endpoints.iter().find(|e| e.name == name)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn other_services_and_garbage_are_not_agent_stats() {
        assert!(ServiceStats::parse(br#"{"name":"other","id":"x","endpoints":[]}"#).is_none());
        assert!(ServiceStats::parse(b"not json").is_none());
        assert!(ServiceStats::parse(br#"{"name":"agents"}"#).is_none());
        let bare = ServiceStats::parse(br#"{"name":"agents","id":"x"}"#).unwrap();
        assert!(bare.endpoints.is_empty());
    }
}
