//! The discovery filter flags shared by `discover` and `watch` (§4.1).

use clap::Args;
use nap_proto::{DiscoveryFilter, Heartbeat};

/// Which agents a command is about; every flag given must match.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Filters")]
pub struct FilterArgs {
    /// Only agents with this metadata.agent (harness), e.g. echo
    #[arg(long)]
    pub agent: Option<String>,
    /// Only agents of this owner
    #[arg(long)]
    pub owner: Option<String>,
    /// Only instances with this name
    #[arg(long)]
    pub name: Option<String>,
    /// Only instances with this metadata.session
    #[arg(long)]
    pub session: Option<String>,
    /// Only the instance with this id
    #[arg(long, value_name = "ID")]
    pub instance: Option<String>,
}

impl FilterArgs {
    /// The discovery filter, protocol-compatible agents only (§11.2).
    pub fn discovery(&self) -> DiscoveryFilter {
        DiscoveryFilter {
            agent: self.agent.clone(),
            owner: self.owner.clone(),
            name: self.name.clone(),
            session: self.session.clone(),
            instance_id: self.instance.clone(),
            ..DiscoveryFilter::any()
        }
    }

    /// Whether a heartbeat, seen on a subject whose name token is `name`,
    /// matches (§8.1, §8.3).
    pub fn matches_beat(&self, heartbeat: &Heartbeat, name: Option<&str>) -> bool {
        let want = |wanted: &Option<String>, found: Option<&str>| {
            wanted.as_deref().is_none_or(|w| Some(w) == found)
        };
        want(&self.agent, Some(&heartbeat.agent))
            && want(&self.owner, Some(&heartbeat.owner))
            && want(&self.name, name)
            && want(&self.session, heartbeat.session.as_deref())
            && want(&self.instance, Some(&heartbeat.instance_id))
    }
}
