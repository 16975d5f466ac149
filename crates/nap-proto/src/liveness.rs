//! The liveness tracker (§8), sans IO.
//!
//! Feed heartbeats and `status` replies (§8.7) with the time they arrived;
//! an instance is online while the age of its last beat is under
//! 3 × `interval_s` (§8.2), tracked per `instance_id`.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use crate::heartbeat::Heartbeat;

/// Online or offline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// A beat arrived within 3 × `interval_s`.
    Online,
    /// No beat for 3 × `interval_s` or more.
    Offline,
}

/// A change of presence of one instance.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    /// The instance.
    pub instance_id: String,
    /// Its new presence.
    pub presence: Presence,
    /// Its last heartbeat.
    pub heartbeat: Heartbeat,
}

#[derive(Debug, Clone)]
struct Entry {
    last_seen: Instant,
    heartbeat: Heartbeat,
    presence: Presence,
}

impl Entry {
    fn expires(&self) -> Instant {
        self.last_seen + self.heartbeat.offline_after()
    }
}

/// Tracks every instance seen.
#[derive(Debug, Default)]
pub struct Liveness {
    entries: HashMap<String, Entry>,
    /// Transitions not yet taken by [`Liveness::poll`], oldest first.
    transitions: VecDeque<Transition>,
}

impl Liveness {
    /// An empty tracker.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a heartbeat or status reply received at `now`; an instance
    /// that is new or was offline comes online.
    pub fn handle_heartbeat(&mut self, now: Instant, heartbeat: Heartbeat) {
        let id = heartbeat.instance_id.clone();
        let was = self.entries.get(&id).map(|e| e.presence);
        if was != Some(Presence::Online) {
            self.transitions.push_back(Transition {
                instance_id: id.clone(),
                presence: Presence::Online,
                heartbeat: heartbeat.clone(),
            });
        }
        self.entries.insert(
            id,
            Entry {
                last_seen: now,
                heartbeat,
                presence: Presence::Online,
            },
        );
    }

    /// Marks instances whose beats stopped by `now` as offline (§8.2: no
    /// beat for 3 × `interval_s`), in `instance_id` order.
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut gone = Vec::new();
        for (id, entry) in &mut self.entries {
            if entry.presence == Presence::Online && now >= entry.expires() {
                entry.presence = Presence::Offline;
                gone.push(Transition {
                    instance_id: id.clone(),
                    presence: Presence::Offline,
                    heartbeat: entry.heartbeat.clone(),
                });
            }
        }
        gone.sort_by(|a, b| a.instance_id.cmp(&b.instance_id));
        self.transitions.extend(gone);
    }

    /// The next change of presence, oldest first.
    pub fn poll(&mut self) -> Option<Transition> {
        self.transitions.pop_front()
    }

    /// The next instant at which an online instance would go offline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.entries
            .values()
            .filter(|e| e.presence == Presence::Online)
            .map(Entry::expires)
            .min()
    }

    /// The presence of one instance at `now`, `None` if never seen.
    pub fn presence(&self, instance_id: &str, now: Instant) -> Option<Presence> {
        self.entries.get(instance_id).map(|e| {
            if now < e.expires() {
                Presence::Online
            } else {
                Presence::Offline
            }
        })
    }

    /// Whether an instance is online at `now`.
    pub fn is_online(&self, instance_id: &str, now: Instant) -> bool {
        self.presence(instance_id, now) == Some(Presence::Online)
    }

    /// The last heartbeat of an instance.
    pub fn last_heartbeat(&self, instance_id: &str) -> Option<&Heartbeat> {
        self.entries.get(instance_id).map(|e| &e.heartbeat)
    }

    /// Every instance seen with its presence at `now`.
    pub fn instances(&self, now: Instant) -> Vec<(&Heartbeat, Presence)> {
        let mut all: Vec<_> = self
            .entries
            .values()
            .map(|e| {
                let p = if now < e.expires() {
                    Presence::Online
                } else {
                    Presence::Offline
                };
                (&e.heartbeat, p)
            })
            .collect();
        all.sort_by(|a, b| a.0.instance_id.cmp(&b.0.instance_id));
        all
    }

    /// Stops tracking an instance.
    pub fn forget(&mut self, instance_id: &str) -> bool {
        self.entries.remove(instance_id).is_some()
    }
}
