//! The discovery collector and the liveness tracker, driven with explicit time.
#![allow(clippy::unwrap_used, missing_docs)]

use std::time::{Duration, Instant};

use nap_proto::FilterMiss;
use nap_proto::{
    Discovery, DiscoveryConfig, DiscoveryFilter, DoneReason, Heartbeat, Liveness, Presence,
    ReplyOutcome, Transition,
};

fn info(id: &str, agent: &str, owner: &str, name: &str, version: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "name": "agents", "id": id, "version": "1.0.0", "description": "",
        "metadata": {"agent": agent, "owner": owner, "protocol_version": version},
        "endpoints": [
            {"name": "prompt", "subject": format!("agents.prompt.{agent}.{owner}.{name}"), "queue_group": "agents",
             "metadata": {"max_payload": "1MB", "attachments_ok": "true"}},
            {"name": "status", "subject": format!("agents.status.{agent}.{owner}.{name}"), "queue_group": "agents"}
        ]
    }))
    .unwrap()
}

const MS: Duration = Duration::from_millis(1);

/// Where a round stands at `now`: over, or waiting until an instant.
#[derive(Debug, PartialEq)]
enum Poll {
    Done(DoneReason),
    Pending { until: Instant },
}

fn poll(d: &mut Discovery, now: Instant) -> Poll {
    d.handle_timeout(now);
    match d.poll() {
        Some(reason) => Poll::Done(reason),
        None => Poll::Pending {
            until: d.poll_timeout().unwrap(),
        },
    }
}

/// One heartbeat in, the transition it caused out.
fn observe(l: &mut Liveness, now: Instant, hb: Heartbeat) -> Option<Transition> {
    l.handle_heartbeat(now, hb);
    l.poll()
}

/// Time passes; the transitions it caused.
fn expire(l: &mut Liveness, now: Instant) -> Vec<Transition> {
    l.handle_timeout(now);
    std::iter::from_fn(|| l.poll()).collect()
}

#[test]
fn stalls_after_the_last_reply() {
    let t0 = Instant::now();
    let mut d = Discovery::new(t0, DiscoveryConfig::default(), DiscoveryFilter::any());
    assert_eq!(
        poll(&mut d, t0),
        Poll::Pending {
            until: t0 + 2000 * MS
        }
    );
    assert!(matches!(
        d.handle_reply(t0 + 10 * MS, &info("A", "echo", "me", "a", "0.3")),
        ReplyOutcome::Matched
    ));
    assert_eq!(
        poll(&mut d, t0 + 10 * MS),
        Poll::Pending {
            until: t0 + 760 * MS
        }
    );
    assert!(matches!(
        d.handle_reply(t0 + 500 * MS, &info("B", "echo", "me", "b", "0.3")),
        ReplyOutcome::Matched
    ));
    assert_eq!(
        poll(&mut d, t0 + 760 * MS),
        Poll::Pending {
            until: t0 + 1250 * MS
        }
    );
    assert_eq!(
        poll(&mut d, t0 + 1250 * MS),
        Poll::Done(DoneReason::Stalled)
    );
    assert!(matches!(
        d.handle_reply(t0 + 1300 * MS, &info("C", "echo", "me", "c", "0.3")),
        ReplyOutcome::Late
    ));
    let ids: Vec<_> = d.into_agents().into_iter().map(|a| a.id).collect();
    assert_eq!(ids, ["A", "B"]);
}

#[test]
fn deadline_bounds_a_steady_trickle() {
    let t0 = Instant::now();
    let mut d = Discovery::new(t0, DiscoveryConfig::default(), DiscoveryFilter::any());
    for i in 0..10u32 {
        d.handle_reply(
            t0 + 300 * i * MS,
            &info(&format!("I{i}"), "echo", "me", "n", "0.3"),
        );
    }
    assert_eq!(
        poll(&mut d, t0 + 2000 * MS),
        Poll::Done(DoneReason::Deadline)
    );
    // Nothing at all: done at the deadline.
    let mut d = Discovery::new(t0, DiscoveryConfig::default(), DiscoveryFilter::any());
    assert!(matches!(poll(&mut d, t0 + 1999 * MS), Poll::Pending { .. }));
    assert_eq!(
        poll(&mut d, t0 + 2000 * MS),
        Poll::Done(DoneReason::Deadline)
    );
}

#[test]
fn first_match_fast_path_and_filters() {
    let t0 = Instant::now();
    let cfg = DiscoveryConfig {
        stop_at_first_match: true,
        ..DiscoveryConfig::default()
    };
    let filter = DiscoveryFilter {
        owner: Some("alice".into()),
        name: Some("w1".into()),
        ..DiscoveryFilter::any()
    };
    let mut d = Discovery::new(t0, cfg, filter);
    assert!(matches!(
        d.handle_reply(t0, &info("X", "echo", "bob", "w1", "0.3")),
        ReplyOutcome::Filtered(FilterMiss::Mismatch { field: "owner", .. })
    ));
    assert!(matches!(
        d.handle_reply(t0, &info("Y", "echo", "alice", "w2", "0.3")),
        ReplyOutcome::Filtered(FilterMiss::Mismatch { field: "name", .. })
    ));
    assert!(matches!(
        d.handle_reply(t0, &info("Z", "echo", "alice", "w1", "0.2")),
        ReplyOutcome::Filtered(FilterMiss::Incompatible { .. })
    ));
    assert!(matches!(
        d.handle_reply(t0, br#"{"name":"billing","id":"q","version":"1"}"#),
        ReplyOutcome::Rejected(_)
    ));
    assert!(matches!(poll(&mut d, t0 + MS), Poll::Pending { .. }));
    assert!(matches!(
        d.handle_reply(t0 + MS, &info("OK", "echo", "alice", "w1", "0.3.1")),
        ReplyOutcome::Matched
    ));
    assert_eq!(poll(&mut d, t0 + MS), Poll::Done(DoneReason::FirstMatch));
}

#[test]
fn duplicates_are_collected_once() {
    let t0 = Instant::now();
    let mut d = Discovery::new(t0, DiscoveryConfig::default(), DiscoveryFilter::any());
    d.handle_reply(t0, &info("A", "echo", "me", "a", "0.3"));
    assert!(matches!(
        d.handle_reply(t0, &info("A", "echo", "me", "a", "0.3")),
        ReplyOutcome::Duplicate
    ));
    assert_eq!(d.agents().len(), 1);
}

#[test]
fn agent_filter_matches_metadata_or_subject_abbreviation() {
    let t0 = Instant::now();
    let record = serde_json::to_vec(&serde_json::json!({
        "name": "agents", "id": "CC", "version": "1", "metadata": {"agent": "claude-code", "owner": "o", "protocol_version": "0.3"},
        "endpoints": [{"name": "prompt", "subject": "agents.prompt.cc.o.s", "queue_group": "agents", "metadata": {"max_payload": "1MB", "attachments_ok": true}}]
    }))
    .unwrap();
    for wanted in ["cc", "claude-code"] {
        let filter = DiscoveryFilter {
            agent: Some(wanted.into()),
            ..DiscoveryFilter::any()
        };
        let mut d = Discovery::new(t0, DiscoveryConfig::default(), filter);
        assert!(
            matches!(d.handle_reply(t0, &record), ReplyOutcome::Matched),
            "{wanted}"
        );
    }
}

fn beat(id: &str, interval: u32) -> Heartbeat {
    Heartbeat::decode(
        format!(r#"{{"agent":"echo","owner":"me","instance_id":"{id}","ts":"2026-01-01T00:00:00Z","interval_s":{interval},"extra":true}}"#)
            .as_bytes(),
    )
    .unwrap()
}

#[test]
fn online_while_younger_than_three_intervals() {
    let t0 = Instant::now();
    let s = Duration::from_secs(1);
    let mut l = Liveness::new();
    let t = observe(&mut l, t0, beat("A", 10)).unwrap();
    assert_eq!(t.presence, Presence::Online);
    assert!(
        observe(&mut l, t0 + 5 * s, beat("A", 10)).is_none(),
        "still online: no transition"
    );
    assert_eq!(l.poll_timeout(), Some(t0 + 35 * s));
    assert!(l.is_online("A", t0 + 34 * s));
    assert!(expire(&mut l, t0 + 34 * s).is_empty());
    let gone = expire(&mut l, t0 + 35 * s);
    assert_eq!(gone.len(), 1);
    assert_eq!(
        (gone[0].instance_id.as_str(), gone[0].presence),
        ("A", Presence::Offline)
    );
    assert!(
        expire(&mut l, t0 + 40 * s).is_empty(),
        "one transition only"
    );
    assert_eq!(l.presence("A", t0 + 40 * s), Some(Presence::Offline));
    // Back again.
    assert_eq!(
        observe(&mut l, t0 + 41 * s, beat("A", 10))
            .unwrap()
            .presence,
        Presence::Online
    );
    assert_eq!(l.presence("nobody", t0), None);
}

#[test]
fn instances_are_tracked_separately() {
    let t0 = Instant::now();
    let s = Duration::from_secs(1);
    let mut l = Liveness::new();
    observe(&mut l, t0, beat("A", 1));
    observe(&mut l, t0, beat("B", 30));
    let gone = expire(&mut l, t0 + 3 * s);
    assert_eq!(
        gone.iter()
            .map(|t| t.instance_id.as_str())
            .collect::<Vec<_>>(),
        ["A"]
    );
    assert!(l.is_online("B", t0 + 3 * s));
    assert_eq!(l.instances(t0 + 3 * s).len(), 2);
    assert!(l.forget("A"));
    assert_eq!(l.last_heartbeat("B").unwrap().extra["extra"], true);
}

#[test]
fn done_at_the_expected_count_without_waiting_for_the_stall() {
    let t0 = Instant::now();
    let cfg = DiscoveryConfig {
        expect: Some(2),
        ..DiscoveryConfig::default()
    };
    let mut d = Discovery::new(t0, cfg, DiscoveryFilter::any());
    d.handle_reply(t0, &info("A", "echo", "me", "a", "0.3"));
    assert!(matches!(poll(&mut d, t0), Poll::Pending { .. }));
    // A duplicate does not count.
    d.handle_reply(t0, &info("A", "echo", "me", "a", "0.3"));
    assert!(matches!(poll(&mut d, t0), Poll::Pending { .. }));
    d.handle_reply(t0 + MS, &info("B", "echo", "me", "b", "0.3"));
    assert_eq!(poll(&mut d, t0 + MS), Poll::Done(DoneReason::Expected));
    assert_eq!(d.poll_timeout(), None);
}
