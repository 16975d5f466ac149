//! The caller's liveness view (§8): heartbeats, the offline threshold,
//! transitions as they happen, and the `status` endpoint (§8.7).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/scenario.rs"]
mod scenario;

use futures::StreamExt;
use nap_nats::Error;
use nap_nats::Watch;
use nap_proto::{AgentInfo, ErrorCode, Presence, StatusCode, Transition};
use scenario::{ScenarioAgent, Spec, StatusReply, caller, connect, record, server, soon, sync};

async fn idle(_x: scenario::Exchange) {}

/// The next transition of `instance_id`, skipping other instances'.
async fn next_for(watch: &mut Watch, instance_id: &str) -> Transition {
    soon(async {
        loop {
            let transition = watch.next().await.expect("the watch ended");
            if transition.instance_id == instance_id {
                return transition;
            }
        }
    })
    .await
}

#[tokio::test]
async fn heartbeats_bring_an_instance_online_and_silence_takes_it_offline() {
    let server = server();
    let nc = connect(&server).await;
    let client = caller(&server).await;
    let mut watch = client.watch();
    let spec = Spec::new("beater", "alice", "one").session("s1");
    let mut agent = ScenarioAgent::start(&nc, spec, idle).await;
    assert!(!client.is_online(agent.id()));
    assert_eq!(client.presence(agent.id()), None);

    agent.start_heartbeats(1);
    let online = next_for(&mut watch, agent.id()).await;
    assert_eq!(online.presence, Presence::Online);
    assert_eq!(online.heartbeat.agent, "beater");
    assert_eq!(online.heartbeat.session.as_deref(), Some("s1"));
    assert!(client.is_online(agent.id()));
    let instances = client.instances();
    assert_eq!(instances.len(), 1);
    assert_eq!(instances[0].0.instance_id, agent.id());
    assert_eq!(instances[0].1, Presence::Online);
    assert_eq!(
        client.last_heartbeat(agent.id()).unwrap().interval_s.secs(),
        1.0
    );

    // §8.2: 3 × interval_s without a beat (3 s here) is offline.
    agent.stop_heartbeats();
    let offline = next_for(&mut watch, agent.id()).await;
    assert_eq!(offline.presence, Presence::Offline);
    assert!(!client.is_online(agent.id()));
    assert_eq!(client.presence(agent.id()), Some(Presence::Offline));

    // Beats again: online again.
    agent.start_heartbeats(1);
    let back = next_for(&mut watch, agent.id()).await;
    assert_eq!(back.presence, Presence::Online);
}

#[tokio::test]
async fn status_replies_feed_the_tracker() {
    let server = server();
    let nc = connect(&server).await;
    let client = caller(&server).await;
    let mut watch = client.watch();
    // No periodic beats: only the status reply can bring it online.
    let agent = ScenarioAgent::start(&nc, Spec::new("quiet", "alice", "one"), idle).await;
    let handle = client.lookup(agent.id()).await.unwrap();
    assert!(!handle.is_online());

    let heartbeat = handle.status().await.unwrap();
    assert_eq!(heartbeat.instance_id, agent.id());
    assert_eq!(heartbeat.agent, "quiet");
    assert_eq!(heartbeat.owner, "alice");
    assert!(
        handle.is_online(),
        "§8.7: a status reply counts as a heartbeat"
    );
    let online = next_for(&mut watch, agent.id()).await;
    assert_eq!(online.presence, Presence::Online);

    // And it goes offline like any silent instance (interval_s 1).
    let offline = next_for(&mut watch, agent.id()).await;
    assert_eq!(offline.presence, Presence::Offline);
}

#[tokio::test]
async fn a_status_error_is_a_remote_error() {
    let server = server();
    let nc = connect(&server).await;
    let client = caller(&server).await;
    let spec = Spec::new("broken", "alice", "one").status(StatusReply::Error);
    let agent = ScenarioAgent::start(&nc, spec, idle).await;
    let handle = client.lookup(agent.id()).await.unwrap();

    let err = handle.status().await.unwrap_err();
    let Error::Remote(remote) = err else {
        panic!("expected a remote error: {err:?}");
    };
    assert_eq!(remote.code, ErrorCode::Listed(StatusCode::Internal));
    assert_eq!(remote.message(), "could not build the status");
    assert!(!handle.is_online());
}

#[tokio::test]
async fn status_needs_a_status_endpoint_and_a_listener() {
    let server = server();
    let client = caller(&server).await;

    let mut without = record("NOSTATUS", "old", "alice", "one");
    without["endpoints"].as_array_mut().unwrap().truncate(1);
    let handle = client.handle(AgentInfo::from_value(without).unwrap());
    let err = handle.status().await.unwrap_err();
    assert!(
        matches!(&err, Error::NoStatusEndpoint { instance_id } if instance_id == "NOSTATUS"),
        "{err:?}"
    );

    let gone =
        client.handle(AgentInfo::from_value(record("GONE", "ghost", "alice", "one")).unwrap());
    let err = gone.status().await.unwrap_err();
    assert!(
        matches!(&err, Error::NoResponders { subject } if subject == "agents.status.ghost.alice.one"),
        "{err:?}"
    );
}

#[tokio::test]
async fn malformed_heartbeats_are_ignored() {
    let server = server();
    let nc = connect(&server).await;
    let client = caller(&server).await;
    let mut watch = client.watch();
    // The caller's heartbeat subscription is on the server before the beats.
    sync(client.nats()).await;

    nc.publish("agents.hb.bad.alice.one", "not json".into())
        .await
        .unwrap();
    nc.publish(
        "agents.hb.bad.alice.one",
        r#"{"agent":"bad","owner":"alice","instance_id":"X","ts":"t","interval_s":0}"#.into(),
    )
    .await
    .unwrap();
    let good =
        r#"{"agent":"good","owner":"alice","instance_id":"G","ts":"t","interval_s":30,"extra":1}"#;
    nc.publish("agents.hb.good.alice.one", good.into())
        .await
        .unwrap();

    // Beats arrive in order: the first transition is the good one's.
    let first = soon(watch.next()).await.unwrap();
    assert_eq!(first.instance_id, "G");
    assert_eq!(
        first.heartbeat.extra["extra"], 1,
        "unknown fields tolerated (§8.3)"
    );
    assert_eq!(client.instances().len(), 1);
}

#[tokio::test]
async fn the_watch_ends_when_the_last_client_clone_is_dropped() {
    let server = server();
    let client = caller(&server).await;
    let clone = client.clone();
    let mut watch = client.watch();
    drop(client);
    drop(clone);
    assert!(soon(watch.next()).await.is_none());
}
