//! Liveness (§8): heartbeats on `agents.hb.>` and the `status` endpoint.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use nap_proto::info_subject_for;
use nap_proto::{Heartbeat, Verb, Wildcard};

use super::probe::{Probe, Reply, wire_of};
use super::registration::Subject;
use crate::case::{Evidence, WireMessage};
use crate::catalogue::*;
use crate::error::{Error, Result};
use crate::report::Findings;

/// One heartbeat as received.
#[derive(Debug, Clone)]
pub struct Beat {
    /// When it arrived.
    pub at: Instant,
    /// The message.
    pub reply: Reply,
}

#[derive(Debug, Default)]
struct Seen {
    beats: Vec<Beat>,
    /// First-sight `$SRV.INFO.agents.{instance_id}` lookups: the reply, if any.
    lookups: HashMap<String, Option<WireMessage>>,
    /// Instances whose lookup was started.
    asked: std::collections::HashSet<String>,
}

/// Records every heartbeat from the moment it is started, and looks each
/// new instance up on `$SRV.INFO` as soon as its first beat arrives (§8.2).
#[derive(Debug)]
pub struct Watcher {
    seen: Arc<Mutex<Seen>>,
    task: tokio::task::JoinHandle<()>,
}

impl Watcher {
    /// Subscribes to `agents.hb.>`.
    pub async fn start(probe: &Probe) -> Result<Self> {
        let mut sub = probe
            .client()
            .subscribe(Wildcard::verb(Verb::Hb))
            .await
            .map_err(|e| Error::nats("subscribe", e))?;
        probe
            .client()
            .flush()
            .await
            .map_err(|e| Error::nats("flush", e))?;
        let seen = Arc::new(Mutex::new(Seen::default()));
        let t0 = Instant::now();
        let probe = probe.clone();
        let shared = seen.clone();
        let task = tokio::spawn(async move {
            while let Some(msg) = sub.next().await {
                let reply = Reply {
                    wire: wire_of(&msg, t0),
                    body: msg.payload.clone(),
                };
                let id = serde_json::from_slice::<serde_json::Value>(&msg.payload)
                    .ok()
                    .and_then(|v| v.get("instance_id")?.as_str().map(str::to_owned));
                let first_sight = {
                    let Ok(mut s) = shared.lock() else { return };
                    s.beats.push(Beat {
                        at: Instant::now(),
                        reply,
                    });
                    match &id {
                        Some(id) => s.asked.insert(id.clone()),
                        _ => false,
                    }
                };
                if let (true, Some(id)) = (first_sight, id) {
                    let probe = probe.clone();
                    let shared = shared.clone();
                    tokio::spawn(async move {
                        let subject = info_subject_for(&id);
                        let got = probe
                            .request_one_with_headers(
                                &subject,
                                None,
                                Bytes::new(),
                                Duration::from_secs(1),
                            )
                            .await
                            .ok()
                            .and_then(|(_, r)| r.map(|r| r.wire));
                        if let Ok(mut s) = shared.lock() {
                            s.lookups.insert(id, got);
                        }
                    });
                }
            }
        });
        Ok(Watcher { seen, task })
    }

    pub(crate) fn beats(&self) -> Vec<Beat> {
        self.seen
            .lock()
            .map(|s| s.beats.clone())
            .unwrap_or_default()
    }

    fn lookups(&self) -> HashMap<String, Option<WireMessage>> {
        self.seen
            .lock()
            .map(|s| s.lookups.clone())
            .unwrap_or_default()
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn instance_of(b: &Beat) -> Option<String> {
    serde_json::from_slice::<serde_json::Value>(&b.reply.body)
        .ok()
        .and_then(|v| v.get("instance_id")?.as_str().map(str::to_owned))
}

/// The beats that belong to the instance under test.
fn mine(s: &Subject, beats: &[Beat]) -> Vec<Beat> {
    let expected = s.heartbeat_subject();
    let on_subject: Vec<Beat> = beats
        .iter()
        .filter(|b| match &expected {
            Some(subject) => &b.reply.wire.subject == subject,
            None => instance_of(b).as_deref() == Some(s.id.as_str()),
        })
        .cloned()
        .collect();
    if on_subject
        .iter()
        .any(|b| instance_of(b).as_deref() == Some(s.id.as_str()))
    {
        on_subject
            .into_iter()
            .filter(|b| instance_of(b).is_none_or(|i| i == s.id))
            .collect()
    } else {
        on_subject
    }
}

fn ts_is_utc(ts: &str) -> bool {
    nap_proto::is_utc_timestamp(ts)
}

/// Checks a heartbeat-shaped payload: fields (HB-002 / HB-007) and identity
/// (HB-003 / HB-008); returns the decoded beat or why not.
fn shape(body: &[u8]) -> std::result::Result<Heartbeat, String> {
    let hb = Heartbeat::decode(body).map_err(|e| e.to_string())?;
    if !ts_is_utc(&hb.ts) {
        return Err(format!("ts {:?} is not a UTC ISO 8601 timestamp", hb.ts));
    }
    Ok(hb)
}

fn identity_mismatch(s: &Subject, hb: &Heartbeat) -> Option<String> {
    if s.agent.as_deref() != Some(hb.agent.as_str()) {
        return Some(format!("agent {:?} vs metadata {:?}", hb.agent, s.agent));
    }
    if s.owner.as_deref() != Some(hb.owner.as_str()) {
        return Some(format!("owner {:?} vs metadata {:?}", hb.owner, s.owner));
    }
    if s.session != hb.session {
        return Some(format!(
            "session {:?} vs metadata {:?}",
            hb.session, s.session
        ));
    }
    None
}

/// Judges the status endpoint (HB-007..009); returns the advertised interval.
pub async fn judge_status(probe: &Probe, s: &Subject, f: &mut Findings) -> Result<Option<f64>> {
    let Some(subject) = s.status_subject.as_deref() else {
        for c in [HB_007, HB_008, HB_009] {
            f.skip(c, "no status endpoint");
        }
        return Ok(None);
    };
    let mut interval = None;
    for (body, label) in [
        (Bytes::new(), "empty body"),
        (
            Bytes::from_static(br#"{"x_conformance":true}"#),
            "non-empty body",
        ),
    ] {
        let (request, reply) = probe
            .request_one(subject, body.clone(), Duration::from_secs(3))
            .await?;
        let mut messages = vec![request];
        if let Some(r) = &reply {
            messages.push(r.wire.clone());
        }
        let ev = vec![Evidence::messages(
            format!("status request ({label})"),
            messages,
        )];
        let decoded = match &reply {
            None => Err("no reply".to_owned()),
            Some(r)
                if r.headers().is_some_and(|h| {
                    nap_proto::Received::with_headers(h, &r.body)
                        .error()
                        .is_some()
                }) =>
            {
                Err("replied with an error".to_owned())
            }
            Some(r) => shape(&r.body),
        };
        if body.is_empty() {
            match &decoded {
                Ok(hb) => {
                    interval = Some(hb.interval_s.secs());
                    f.pass(
                        HB_007,
                        "status replies with a heartbeat-shaped payload",
                        ev.clone(),
                    );
                    let id_problem = (hb.instance_id != s.id)
                        .then(|| {
                            format!("instance_id {:?} vs service id {:?}", hb.instance_id, s.id)
                        })
                        .or_else(|| identity_mismatch(s, hb));
                    match id_problem {
                        Some(why) => f.fail(HB_008, why, ev),
                        None => f.pass(HB_008, "instance_id is the service id", ev),
                    }
                }
                Err(why) => {
                    f.fail(HB_007, why.clone(), ev);
                    f.skip(HB_008, "no valid status reply");
                }
            }
        } else {
            match decoded {
                Ok(_) => f.pass(HB_009, "a request body does not change the reply", ev),
                Err(why) => f.fail(HB_009, format!("with a body: {why}"), ev),
            }
        }
    }
    Ok(interval)
}

/// Waits for heartbeats (up to `deadline`), then judges HB-001..006.
pub async fn judge_heartbeats(
    watcher: &Watcher,
    s: &Subject,
    interval_hint: Option<f64>,
    started: Instant,
    budget: Duration,
    f: &mut Findings,
) {
    // Wait for three beats of ours, or 2.5 intervals (+1 s), or the budget.
    loop {
        let got = mine(s, &watcher.beats());
        let interval = got
            .iter()
            .find_map(|b| Heartbeat::decode(&b.reply.body).ok())
            .map(|h| h.interval_s.secs())
            .or(interval_hint)
            .unwrap_or(30.0);
        let window = Duration::from_secs_f64(interval * 2.5 + 1.0).min(budget);
        if got.len() >= 3 || started.elapsed() >= window {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let all = watcher.beats();
    let beats = mine(s, &all);
    let waited = started.elapsed().as_secs_f64();
    let ev = || {
        vec![Evidence::messages(
            "heartbeats",
            beats.iter().map(|b| b.reply.wire.clone()).collect(),
        )]
    };
    if beats.is_empty() {
        let elsewhere: Vec<WireMessage> = all
            .iter()
            .filter(|b| instance_of(b).as_deref() == Some(s.id.as_str()))
            .map(|b| b.reply.wire.clone())
            .collect();
        let why = if elsewhere.is_empty() {
            format!(
                "no heartbeat on {} within {waited:.1} s",
                s.heartbeat_subject()
                    .unwrap_or_else(|| "agents.hb.>".to_owned())
            )
        } else {
            format!(
                "heartbeats for this instance on the wrong subject {}",
                elsewhere[0].subject
            )
        };
        f.fail(
            HB_001,
            why,
            vec![Evidence::messages("heartbeats", elsewhere)],
        );
        for c in [HB_002, HB_003, HB_004, HB_005, HB_006] {
            f.skip(c, "no heartbeat observed");
        }
        return;
    }
    f.pass(
        HB_001,
        format!(
            "{} heartbeat(s) on {}",
            beats.len(),
            beats[0].reply.wire.subject
        ),
        ev(),
    );

    let decoded: Vec<std::result::Result<Heartbeat, String>> =
        beats.iter().map(|b| shape(&b.reply.body)).collect();
    match decoded.iter().find_map(|d| d.as_ref().err()) {
        Some(why) => f.fail(HB_002, why.clone(), ev()),
        None => f.pass(HB_002, "every §8.3 field present and well-typed", ev()),
    }
    let good: Vec<&Heartbeat> = decoded.iter().filter_map(|d| d.as_ref().ok()).collect();
    if good.is_empty() {
        for c in [HB_003, HB_004, HB_005] {
            f.skip(c, "no well-formed heartbeat");
        }
    } else {
        match good.iter().find_map(|h| identity_mismatch(s, h)) {
            Some(why) => f.fail(HB_003, why, ev()),
            None => f.pass(HB_003, "agent/owner/session match the metadata", ev()),
        }
        match good.iter().find(|h| h.instance_id != s.id) {
            Some(h) => f.fail(
                HB_004,
                format!("instance_id {:?} vs service id {:?}", h.instance_id, s.id),
                ev(),
            ),
            None => f.pass(HB_004, "instance_id is the service id", ev()),
        }
        // Cadence between consecutive beats.
        let pairs: Vec<(f64, f64)> = beats
            .windows(2)
            .zip(decoded.windows(2))
            .filter_map(|(b, d)| match (&d[0], &d[1]) {
                (Ok(h), Ok(_)) => Some(((b[1].at - b[0].at).as_secs_f64(), h.interval_s.secs())),
                _ => None,
            })
            .collect();
        if pairs.is_empty() {
            f.skip(
                HB_005,
                format!("one heartbeat in {waited:.1} s: cadence not measurable"),
            );
        } else {
            let bad = pairs
                .iter()
                .find(|(gap, iv)| *gap > iv * 1.5 + 1.0 || *gap < iv * 0.5 - 1.0);
            match bad {
                Some((gap, iv)) => f.fail(
                    HB_005,
                    format!("a gap of {gap:.2} s for interval_s {iv}"),
                    ev(),
                ),
                None => f.pass(
                    HB_005,
                    format!(
                        "{} gap(s) within tolerance of interval_s {}",
                        pairs.len(),
                        pairs[0].1
                    ),
                    ev(),
                ),
            }
        }
    }
    let lookups = watcher.lookups();
    let ids: Vec<String> = beats.iter().filter_map(instance_of).collect();
    let missing: Vec<&String> = ids
        .iter()
        .filter(|id| lookups.get(*id).is_some_and(Option::is_none))
        .collect();
    let lookup_ev: Vec<WireMessage> = ids
        .iter()
        .filter_map(|id| lookups.get(id).cloned().flatten())
        .collect();
    if ids.is_empty() {
        f.skip(HB_006, "no instance_id in the heartbeats");
    } else {
        f.check(
            HB_006,
            missing.is_empty(),
            "each heartbeating instance was on $SRV.INFO at its first beat",
            format!(
                "no $SRV.INFO.agents.{} reply at the first heartbeat",
                missing.first().map(|s| s.as_str()).unwrap_or_default()
            ),
            vec![Evidence::messages(
                "$SRV.INFO lookups at first heartbeat",
                lookup_ev,
            )],
        );
    }
}
