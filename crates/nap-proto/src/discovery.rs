//! The discovery collector (§4), sans IO.
//!
//! A caller sends one `$SRV.INFO.agents` request, then feeds each reply to
//! [`Discovery::handle_reply`] with the time it arrived, lets time pass with
//! [`Discovery::handle_timeout`] at [`Discovery::poll_timeout`], and asks
//! [`Discovery::poll`] whether collection is done. Collection ends at the
//! first match or the expected count (when asked to), once replies have
//! stalled, or at the absolute deadline.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use crate::service_info::{AgentInfo, InfoError};
use crate::subject::AgentSubject;
use crate::version::{CURRENT, ProtocolVersion};

/// Timing of one discovery round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiscoveryConfig {
    /// Done when no reply arrived for this long after the last one.
    pub stall: Duration,
    /// Done at this long after the request, whatever happens.
    pub deadline: Duration,
    /// Done as soon as one record matches the filter.
    pub stop_at_first_match: bool,
    /// Done as soon as this many records match the filter: a caller that
    /// knows how many instances it waits for need not wait for the stall.
    pub expect: Option<usize>,
}

impl Default for DiscoveryConfig {
    fn default() -> Self {
        DiscoveryConfig {
            stall: Duration::from_millis(750),
            deadline: Duration::from_secs(2),
            stop_at_first_match: false,
            expect: None,
        }
    }
}

/// Which agents a caller wants; `None` fields match anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveryFilter {
    /// `metadata.agent`, or the agent token of the prompt subject (abbreviations, §2).
    pub agent: Option<String>,
    /// `metadata.owner`.
    pub owner: Option<String>,
    /// The instance name (§4.3 step 3).
    pub name: Option<String>,
    /// `metadata.session`.
    pub session: Option<String>,
    /// The service id.
    pub instance_id: Option<String>,
    /// The caller's protocol version: agents it cannot talk to are dropped
    /// (§11.2). `None` keeps every version.
    pub protocol: Option<ProtocolVersion>,
}

impl Default for DiscoveryFilter {
    fn default() -> Self {
        DiscoveryFilter {
            agent: None,
            owner: None,
            name: None,
            session: None,
            instance_id: None,
            protocol: Some(CURRENT),
        }
    }
}

/// Why a valid agent record did not match a filter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FilterMiss {
    /// A field differs from the filter.
    #[error("{field} is {found:?}, filter wants {wanted:?}")]
    Mismatch {
        /// Which field.
        field: &'static str,
        /// Its value in the record (empty when absent).
        found: String,
        /// The filter's value.
        wanted: String,
    },
    /// The agent's protocol version is incompatible (§11.2).
    #[error("protocol_version {found} is incompatible with {ours} (§11.2)")]
    Incompatible {
        /// The agent's version.
        found: String,
        /// The caller's version.
        ours: String,
    },
}

impl DiscoveryFilter {
    /// Matches any compatible agent.
    pub fn any() -> Self {
        Self::default()
    }

    /// Checks one record.
    pub fn check(&self, info: &AgentInfo) -> Result<(), FilterMiss> {
        fn want(
            field: &'static str,
            wanted: &Option<String>,
            found: Option<&str>,
        ) -> Result<(), FilterMiss> {
            match wanted {
                Some(w) if Some(w.as_str()) != found => Err(FilterMiss::Mismatch {
                    field,
                    found: found.unwrap_or_default().to_owned(),
                    wanted: w.clone(),
                }),
                _ => Ok(()),
            }
        }
        if let Some(agent) = &self.agent {
            let token = AgentSubject::parse(&info.prompt.subject).ok();
            let token_matches = token.is_some_and(|s| s.identity.agent.as_str() == agent);
            if !token_matches {
                want("agent", &self.agent, Some(&info.metadata.agent))?;
            }
        }
        want("owner", &self.owner, Some(&info.metadata.owner))?;
        want("name", &self.name, info.instance_name())?;
        want("session", &self.session, info.metadata.session.as_deref())?;
        want("instance_id", &self.instance_id, Some(&info.id))?;
        if let Some(ours) = &self.protocol
            && !ours
                .compatibility_with(&info.metadata.protocol_version)
                .is_usable()
        {
            return Err(FilterMiss::Incompatible {
                found: info.metadata.protocol_version.to_string(),
                ours: ours.to_string(),
            });
        }
        Ok(())
    }
}

/// What became of one reply.
#[derive(Debug)]
pub enum ReplyOutcome {
    /// A new matching agent, now in [`Discovery::agents`].
    Matched,
    /// A valid agent that the filter excludes.
    Filtered(FilterMiss),
    /// Not a usable agent record.
    Rejected(InfoError),
    /// An instance already collected.
    Duplicate,
    /// Arrived after collection was done; ignored.
    Late,
}

/// Why collection is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DoneReason {
    /// The first match arrived and the config asked to stop there.
    FirstMatch,
    /// As many records matched as the config expected.
    Expected,
    /// No reply for the stall interval after the last one.
    Stalled,
    /// The absolute deadline passed.
    Deadline,
}

/// One discovery round.
#[derive(Debug)]
pub struct Discovery {
    config: DiscoveryConfig,
    filter: DiscoveryFilter,
    started: Instant,
    last_reply: Option<Instant>,
    seen: HashSet<String>,
    agents: Vec<AgentInfo>,
    done: Option<DoneReason>,
}

impl Discovery {
    /// A round whose request was sent at `now`.
    pub fn new(now: Instant, config: DiscoveryConfig, filter: DiscoveryFilter) -> Self {
        Discovery {
            config,
            filter,
            started: now,
            last_reply: None,
            seen: HashSet::new(),
            agents: Vec::new(),
            done: None,
        }
    }

    /// Reads one `$SRV.INFO` reply received at `now`.
    pub fn handle_reply(&mut self, now: Instant, payload: &[u8]) -> ReplyOutcome {
        if self.done.is_some() {
            return ReplyOutcome::Late;
        }
        self.last_reply = Some(now);
        let info = match AgentInfo::parse(payload) {
            Ok(info) => info,
            Err(e) => return ReplyOutcome::Rejected(e),
        };
        if let Err(miss) = self.filter.check(&info) {
            return ReplyOutcome::Filtered(miss);
        }
        if !self.seen.insert(info.id.clone()) {
            return ReplyOutcome::Duplicate;
        }
        self.agents.push(info);
        if self.config.stop_at_first_match {
            self.done = Some(DoneReason::FirstMatch);
        } else if self.config.expect.is_some_and(|n| self.agents.len() >= n) {
            self.done = Some(DoneReason::Expected);
        }
        ReplyOutcome::Matched
    }

    /// When the round may end without another reply: the stall interval
    /// after the last reply, or the absolute deadline; `None` once done.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.done.is_some() {
            return None;
        }
        let deadline = self.started + self.config.deadline;
        Some(match self.last_reply {
            Some(last) => (last + self.config.stall).min(deadline),
            None => deadline,
        })
    }

    /// Ends the round if `now` is past its deadline or its stall interval.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.done.is_some() {
            return;
        }
        if now >= self.started + self.config.deadline {
            self.done = Some(DoneReason::Deadline);
        } else if self
            .last_reply
            .is_some_and(|last| now >= last + self.config.stall)
        {
            self.done = Some(DoneReason::Stalled);
        }
    }

    /// Why the round is over, once it is.
    pub fn poll(&self) -> Option<DoneReason> {
        self.done
    }

    /// The matching agents collected so far, in arrival order.
    pub fn agents(&self) -> &[AgentInfo] {
        &self.agents
    }

    /// Ends the round, returning the matching agents.
    pub fn into_agents(self) -> Vec<AgentInfo> {
        self.agents
    }
}
