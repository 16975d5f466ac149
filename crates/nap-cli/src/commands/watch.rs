//! `nap watch [filters]`: agents coming online and going offline as their
//! heartbeats say (§8), and the heartbeat feed shared with `nap status --follow`.
//!
//! The heartbeat wildcard is subscribed before anything else (§8.5). The
//! instances already running are found by discovery and asked for a fresh
//! heartbeat on their `status` endpoint (§8.7), so they show up at once
//! instead of after their next beat. Heartbeats then feed the sans-IO
//! liveness tracker: an instance is offline after 3 × its `interval_s`
//! without a beat (§8.2).
//!
//! Silence is evidence only while the watcher itself is connected: while
//! its connection is down, no instance is declared offline (a
//! `disconnected` line says that presence is unknown), and once it is back
//! (a `reconnected` line) every instance it knew gets a fresh 3 ×
//! `interval_s` from that moment.

use std::collections::{HashMap, HashSet};
use std::io::Write as _;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use clap::Args;
use futures::StreamExt;
use nap_nats::{AgentHandle, Client};
use nap_proto::{AgentSubject, Heartbeat, Liveness, Presence, Wildcard};
use serde_json::json;

use super::{PROBE_TIMEOUT, client, now_rfc3339, stdout_failed};
use crate::connect::Connection;
use crate::failure::{Failure, Status};
use crate::filter::FilterArgs;

/// Arguments of `nap watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    #[command(flatten)]
    filter: FilterArgs,
    /// Also print every heartbeat, not only online/offline changes
    #[arg(long)]
    beats: bool,
    /// Print one JSON object per line
    #[arg(long)]
    json: bool,
}

/// Runs `nap watch` until Ctrl-C.
pub async fn run(conn: Connection, args: WatchArgs) -> Result<(), Failure> {
    let client = client(&conn).await?;
    let feed = Feed::subscribe(&conn.nats, args.filter.clone()).await?;
    if !args.json {
        eprintln!(
            "watching agent heartbeats on {}; Ctrl-C stops",
            Wildcard::heartbeats()
        );
    }
    let agents = client.discover(args.filter.discovery()).await?;
    feed.run(&client, agents, args.beats, args.json).await
}

/// What the feed saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// A heartbeat (or a status reply, §8.7).
    Beat,
    /// The instance is online: a first beat, or one after being offline.
    Online,
    /// No beat for 3 × `interval_s` (§8.2).
    Offline,
    /// The watcher lost its connection: presence is unknown until it is back.
    Disconnected,
    /// The watcher's connection is back: silence counts again from now.
    Reconnected,
}

impl Seen {
    fn as_str(self) -> &'static str {
        match self {
            Seen::Beat => "beat",
            Seen::Online => "online",
            Seen::Offline => "offline",
            Seen::Disconnected => "disconnected",
            Seen::Reconnected => "reconnected",
        }
    }
}

/// Heartbeats matching a filter, fed into a liveness tracker.
pub struct Feed {
    nats: async_nats::Client,
    /// The connection's connect count when last looked at, and whether it
    /// was down then.
    link: (u64, bool),
    beats: async_nats::Subscriber,
    filter: FilterArgs,
    liveness: Liveness,
    /// Instance id → instance name (from the heartbeat subject, §8.1).
    names: HashMap<String, Option<String>>,
    /// The instances last reported online.
    online: HashSet<String>,
}

impl Feed {
    /// Subscribes to every heartbeat (§8.5: before discovery).
    pub async fn subscribe(nats: &async_nats::Client, filter: FilterArgs) -> Result<Feed, Failure> {
        let subject = Wildcard::heartbeats();
        let beats = nats
            .subscribe(subject.clone())
            .await
            .map_err(|source| nap_nats::Error::Subscribe { subject, source })?;
        Ok(Feed {
            link: (connects(nats), false),
            nats: nats.clone(),
            beats,
            filter,
            liveness: Liveness::new(),
            names: HashMap::new(),
            online: HashSet::new(),
        })
    }

    /// Prints what happens until Ctrl-C: first the `agents` found running
    /// (probed with `status`, §8.7), then every change, and every beat when
    /// `beats` is set.
    pub async fn run(
        mut self,
        client: &Client,
        agents: Vec<AgentHandle>,
        beats: bool,
        json: bool,
    ) -> Result<(), Failure> {
        // One Ctrl-C listener for the whole run: a signal arriving between
        // two turns of the loop below must not be missed.
        let interrupted = tokio::signal::ctrl_c();
        tokio::pin!(interrupted);
        let probes = agents.iter().map(|agent| async move {
            let reply = tokio::time::timeout(PROBE_TIMEOUT, client.status(agent)).await;
            (agent.name().map(str::to_owned), reply)
        });
        for (name, reply) in futures::future::join_all(probes).await {
            if let Ok(Ok(heartbeat)) = reply {
                self.observe(heartbeat, name, beats, json)?;
            }
        }
        let mut link_check = tokio::time::interval(LINK_CHECK);
        loop {
            // While the watcher is disconnected nothing expires.
            let deadline = if self.link.1 {
                None
            } else {
                self.liveness.poll_timeout()
            };
            let expiry = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                msg = self.beats.next() => {
                    let Some(msg) = msg else {
                        return Err(Failure::new(
                            Status::Stream,
                            anyhow::anyhow!("the heartbeat subscription ended"),
                        ));
                    };
                    let heartbeat = match Heartbeat::decode(&msg.payload) {
                        Ok(heartbeat) => heartbeat,
                        Err(error) => {
                            tracing::debug!(subject = %msg.subject, %error, "dropping heartbeat");
                            continue;
                        }
                    };
                    // §8.1: the name is the subject's last token.
                    let name = AgentSubject::parse(&msg.subject)
                        .ok()
                        .map(|s| s.identity.name.as_str().to_owned());
                    if self.filter.matches_beat(&heartbeat, name.as_deref()) {
                        self.observe(heartbeat, name, beats, json)?;
                    }
                }
                _ = link_check.tick() => self.check_link(json)?,
                () = expiry => {
                    // A reconnection not noticed yet must rebase first.
                    self.check_link(json)?;
                    if self.link.1 {
                        continue;
                    }
                    self.liveness.handle_timeout(Instant::now());
                    while let Some(transition) = self.liveness.poll() {
                        debug_assert_eq!(transition.presence, Presence::Offline);
                        self.online.remove(&transition.instance_id);
                        let name = self.names.get(&transition.instance_id).cloned().flatten();
                        print(Seen::Offline, &transition.heartbeat, name.as_deref(), json)?;
                    }
                }
                // Ctrl-C: exit 130, as `nap --help` documents.
                _ = &mut interrupted => return Err(Failure::interrupted()),
            }
        }
    }

    /// Notices the watcher's own connection going down and coming back.
    /// Back, each instance it knew online gets a fresh 3 × `interval_s`:
    /// beats sent while it was away never reached it.
    fn check_link(&mut self, json: bool) -> Result<(), Failure> {
        let up = matches!(
            self.nats.connection_state(),
            async_nats::connection::State::Connected
        );
        let count = connects(&self.nats);
        let (known, was_down) = self.link;
        let reconnected = count != known;
        if !up && !was_down {
            print_link(Seen::Disconnected, json)?;
        }
        if up && (was_down || reconnected) {
            let now = Instant::now();
            let known: Vec<Heartbeat> = self
                .online
                .iter()
                .filter_map(|id| self.liveness.last_heartbeat(id).cloned())
                .collect();
            for heartbeat in known {
                self.liveness.handle_heartbeat(now, heartbeat);
            }
            // Re-feeding a beat never changes an online instance's presence.
            while self.liveness.poll().is_some() {}
            if !was_down {
                // Down and back between two looks: say both.
                print_link(Seen::Disconnected, json)?;
            }
            print_link(Seen::Reconnected, json)?;
        }
        self.link = (count, !up);
        Ok(())
    }

    fn observe(
        &mut self,
        heartbeat: Heartbeat,
        name: Option<String>,
        beats: bool,
        json: bool,
    ) -> Result<(), Failure> {
        self.names
            .insert(heartbeat.instance_id.clone(), name.clone());
        self.liveness
            .handle_heartbeat(Instant::now(), heartbeat.clone());
        // One line per heartbeat: the one that brings an instance online is
        // its `online` line, with the beat's details.
        if let Some(transition) = self.liveness.poll() {
            self.online.insert(transition.instance_id.clone());
            print(Seen::Online, &transition.heartbeat, name.as_deref(), json)
        } else if beats {
            print(Seen::Beat, &heartbeat, name.as_deref(), json)
        } else {
            Ok(())
        }
    }
}

/// How often the watcher looks at its own connection.
const LINK_CHECK: Duration = Duration::from_millis(250);

/// How many times the connection was established.
fn connects(nats: &async_nats::Client) -> u64 {
    nats.statistics().connects.load(Ordering::Relaxed)
}

/// One line about the watcher's own connection.
fn print_link(seen: Seen, json: bool) -> Result<(), Failure> {
    let at = now_rfc3339();
    let line = if json {
        json!({ "event": seen.as_str(), "at": at }).to_string()
    } else {
        let what = match seen {
            Seen::Disconnected => {
                "lost the connection to the server: presence unknown until it is back"
            }
            _ => "connected again: an agent silent for 3 heartbeat intervals from now is offline",
        };
        format!("{at}  {:<7}  {what}", seen.as_str())
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .map_err(stdout_failed)
}

/// One line: what was seen, when, about which instance.
fn print(seen: Seen, heartbeat: &Heartbeat, name: Option<&str>, json: bool) -> Result<(), Failure> {
    let at = now_rfc3339();
    let line = if json {
        json!({
            "event": seen.as_str(),
            "at": at,
            "instance_id": heartbeat.instance_id,
            "name": name,
            "heartbeat": heartbeat,
        })
        .to_string()
    } else {
        let session = heartbeat
            .session
            .as_deref()
            .map(|s| format!("  session {s}"))
            .unwrap_or_default();
        let detail = match seen {
            Seen::Beat | Seen::Online => format!(
                "  ts {} every {}s",
                heartbeat.ts,
                heartbeat.interval_s.secs()
            ),
            _ => String::new(),
        };
        format!(
            "{at}  {:<7}  {}/{}/{}  instance {}{session}{detail}",
            seen.as_str(),
            heartbeat.agent,
            heartbeat.owner,
            name.unwrap_or("-"),
            heartbeat.instance_id,
        )
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .map_err(stdout_failed)
}
