//! The heartbeat builder shared by the beacon (§8.1-8.3) and the `status`
//! endpoint (§8.7.1: "the same builder").

use std::time::Duration;

use nap_proto::{Heartbeat, IntervalSecs};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Builds fresh heartbeat payloads for one instance.
#[derive(Debug, Clone)]
pub(crate) struct HeartbeatBuilder {
    pub(crate) agent: String,
    pub(crate) owner: String,
    pub(crate) session: Option<String>,
    pub(crate) instance_id: String,
    pub(crate) interval: IntervalSecs,
}

/// Why a payload could not be built (§8.7.1 asks for a 500 then).
#[derive(Debug, thiserror::Error)]
#[error("could not format the heartbeat timestamp: {0}")]
pub(crate) struct BuildError(#[from] time::error::Format);

impl HeartbeatBuilder {
    /// A payload stamped now (§8.3: UTC ISO 8601).
    pub(crate) fn build(&self) -> Result<Heartbeat, BuildError> {
        let now = OffsetDateTime::now_utc();
        let now = now.replace_nanosecond(0).unwrap_or(now);
        Ok(Heartbeat {
            agent: self.agent.clone(),
            owner: self.owner.clone(),
            session: self.session.clone(),
            instance_id: self.instance_id.clone(),
            ts: now.format(&Rfc3339)?,
            interval_s: self.interval,
            extra: Default::default(),
        })
    }

    pub(crate) fn period(&self) -> Duration {
        self.interval.as_duration()
    }
}
