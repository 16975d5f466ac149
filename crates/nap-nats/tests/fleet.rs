//! A fleet host: many agents on one connection, each its own registration,
//! indistinguishable on the wire from an `AgentService` (issue 15).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "support/host.rs"]
mod support;

use std::time::Duration;

use futures::StreamExt;
use nap_nats::Fleet;
use nap_nats::{AgentService, Client};
use nap_proto::DiscoveryFilter;
use nap_proto::INFO_SUBJECT;
use nap_proto::ServiceStats;
use nap_proto::micro::{SrvRequest, SrvScope, SrvVerb};
use nap_proto::{Heartbeat, Verb, Wildcard};
use serde_json::Value;
use support::{assert_error_stream, body, connect, exchange, infos, infos_until, server};

fn echo() -> nap_agent::echo::EchoAgent {
    nap_agent::echo::EchoAgent::default()
}

fn named(name: &str) -> DiscoveryFilter {
    DiscoveryFilter {
        name: Some(name.to_owned()),
        ..DiscoveryFilter::any()
    }
}

/// The micro-service API subject of `verb` for one instance.
fn addressed(verb: SrvVerb, id: &str) -> String {
    SrvRequest {
        verb,
        scope: SrvScope::Instance(id),
    }
    .subject()
}

/// Sends a micro-service API request and returns the one reply's JSON.
async fn srv(nc: &async_nats::Client, subject: &str) -> Value {
    let reply = tokio::time::timeout(
        Duration::from_secs(10),
        nc.request(subject.to_owned(), "".into()),
    )
    .await
    .unwrap()
    .unwrap();
    serde_json::from_slice(&reply.payload).unwrap()
}

/// The shape of a record: its keys, recursively, with the values that
/// differ between two instances (id, started, timings) left out.
fn shape(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = match k.as_str() {
                        "id"
                        | "started"
                        | "num_requests"
                        | "processing_time"
                        | "average_processing_time" => Value::Null,
                        _ => shape(v),
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => {
            let mut items: Vec<Value> = items.iter().map(shape).collect();
            items.sort_by_key(|v| v.to_string());
            Value::Array(items)
        }
        other => other.clone(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_agents_are_separate_registrations_that_serve() {
    let server = server();
    let nc = connect(&server).await;
    let fleet_owner = nap_proto::Token::new("fleet").unwrap();
    let mut beats = nc
        .subscribe(Wildcard::owner(Verb::Hb, &fleet_owner))
        .await
        .unwrap();
    nc.flush().await.unwrap();
    let fleet = Fleet::start(connect(&server).await).await.unwrap();
    let mut running = Vec::new();
    for i in 0..3 {
        let builder = AgentService::builder("echo", "fleet", format!("e-{i}"))
            .heartbeat_interval(Duration::from_millis(300));
        running.push(fleet.add(builder, echo()).await.unwrap());
    }
    assert_eq!(fleet.len(), 3);

    // Discovery: three records, three ids, one per name.
    let records = infos(&nc, 3).await;
    let mut ids: Vec<&str> = records.iter().map(|r| r["id"].as_str().unwrap()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3);
    let client = Client::new(nc.clone()).await.unwrap();
    for (i, agent) in running.iter().enumerate() {
        let handle = client.find(named(&format!("e-{i}"))).await.unwrap();
        assert_eq!(handle.id(), agent.id());
        let text = handle
            .prompt(format!("hello {i}"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(text, format!("hello {i}"));
        // §8.7: status answers for this instance.
        assert_eq!(handle.status().await.unwrap().instance_id, agent.id());
    }

    // Addressed requests reach only their instance.
    let id = running[1].id().to_owned();
    let ping = srv(&nc, &addressed(SrvVerb::Ping, &id)).await;
    assert_eq!(ping["id"], id.as_str());
    let reply = srv(&nc, &addressed(SrvVerb::Stats, &id)).await;
    let stats = ServiceStats::parse(reply.to_string().as_bytes()).unwrap();
    for endpoint in ["prompt", "status"] {
        let counters = stats.endpoint(endpoint).unwrap();
        assert_eq!(counters.num_requests, 1, "{endpoint}: {reply}");
    }

    // Every agent beats, on its own subject, as itself.
    let mut beaten = std::collections::HashSet::new();
    while beaten.len() < 3 {
        let msg = tokio::time::timeout(Duration::from_secs(5), beats.next())
            .await
            .expect("a heartbeat of every fleet agent")
            .unwrap();
        let hb = Heartbeat::decode(&msg.payload).unwrap();
        let agent = running.iter().find(|a| a.id() == hb.instance_id).unwrap();
        assert_eq!(msg.subject.as_str(), agent.heartbeat_subject());
        beaten.insert(hb.instance_id);
    }

    // A malformed prompt gets its 400 and the agent keeps serving.
    let msgs = exchange(&nc, running[0].prompt_subject(), "{not json").await;
    assert_error_stream(&msgs, "400");
    let msgs = exchange(&nc, running[0].prompt_subject(), "still here").await;
    assert!(msgs.iter().any(|m| body(m).contains("still here")));

    // Removing one at run time: it is gone from discovery and its subject
    // has no responder; the others still serve; a new one can be added.
    let gone = running.remove(0);
    let gone_subject = gone.prompt_subject().to_owned();
    gone.stop().await;
    assert_eq!(fleet.len(), 2);
    infos(&nc, 2).await;
    let reply = nc.request(gone_subject, "x".into()).await;
    assert!(
        matches!(&reply, Err(e) if e.kind() == async_nats::RequestErrorKind::NoResponders),
        "{reply:?}"
    );
    let added = fleet
        .add(AgentService::builder("echo", "fleet", "late"), echo())
        .await
        .unwrap();
    infos(&nc, 3).await;
    let handle = client.find(named("late")).await.unwrap();
    assert_eq!(handle.id(), added.id());
    for agent in running {
        agent.stop().await;
    }
    added.stop().await;
    assert!(fleet.is_empty());
    // An empty fleet still holds the micro-service API subjects, and
    // answers nothing.
    assert!(
        infos_until(&nc, 1, Duration::from_millis(500))
            .await
            .is_empty()
    );
    // Once the last handle goes, so do its subscriptions: the server says
    // no one is there.
    drop(fleet);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        // A request that raced the unsubscription reaches a subscription
        // nobody reads and waits in vain: ask again, briefly each time.
        let reply = tokio::time::timeout(
            Duration::from_millis(500),
            nc.request(INFO_SUBJECT, "".into()),
        )
        .await;
        if matches!(&reply, Ok(Err(e)) if e.kind() == async_nats::RequestErrorKind::NoResponders) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{reply:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_agent_looks_like_an_agent_service_on_the_wire() {
    let server = server();
    let nc = connect(&server).await;
    let builder = || {
        AgentService::builder("echo", "wire", "twin")
            .description("the same agent twice")
            .metadata("team", "blue")
            .version("1.2.3")
    };
    let service = builder()
        .start(connect(&server).await, echo())
        .await
        .unwrap();
    let fleet = Fleet::start(connect(&server).await).await.unwrap();
    let member = fleet.add(builder(), echo()).await.unwrap();
    // One prompt to each, so that the counters have something to show.
    for subject in [service.prompt_subject(), member.prompt_subject()] {
        let _ = exchange(&nc, subject, "x").await;
    }
    // The queue group sends a prompt to either; ask each by id instead.
    for verb in [SrvVerb::Ping, SrvVerb::Info, SrvVerb::Stats] {
        let a = srv(&nc, &addressed(verb, service.id())).await;
        let b = srv(&nc, &addressed(verb, member.id())).await;
        assert_eq!(a["id"], service.id());
        assert_eq!(b["id"], member.id());
        assert_eq!(shape(&a), shape(&b), "{verb:?}: {a} vs {b}");
    }
    service.stop().await;
    member.stop().await;
}
