//! The caller's discovery (§4): filters, what is dropped and why not,
//! the first-match fast path, direct lookup, ping, and scale.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/scenario.rs"]
mod scenario;

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use async_nats::service::ServiceExt;
use nap_nats::Error;
use nap_nats::{AgentHandle, Client};
use nap_proto::{DiscoveryConfig, DiscoveryFilter, FilterMiss, InfoError};
use scenario::{ScenarioAgent, Spec, caller, connect, raw_responder, record, server, sync};
use serde_json::json;

fn ids(handles: &[AgentHandle]) -> BTreeSet<String> {
    handles.iter().map(|h| h.id().to_owned()).collect()
}

fn set<const N: usize>(ids: [&str; N]) -> BTreeSet<String> {
    ids.iter().map(|s| (*s).to_owned()).collect()
}

fn filter() -> DiscoveryFilter {
    DiscoveryFilter::any()
}

/// Discovery timing these tests control. The default (§4.1: done 750 ms
/// after the last reply, 2 s after the request) is a caller's trade-off
/// between latency and completeness; on a loaded 2-core CI machine a burst
/// of 1,000 replies can take longer than 2 s to be read, and a pause of
/// 750 ms between two replies is possible, so a test that counts what
/// arrived in that window fails by chance. Here the quiet interval is far
/// longer than any scheduling pause, and the deadline only guards against
/// hanging: a test fails only when a record really is missing.
fn patient() -> DiscoveryConfig {
    DiscoveryConfig {
        stall: Duration::from_secs(2),
        deadline: Duration::from_secs(60),
        ..DiscoveryConfig::default()
    }
}

/// Done the moment `n` records are in: no window to lose a reply in.
fn expecting(n: usize) -> DiscoveryConfig {
    DiscoveryConfig {
        expect: Some(n),
        ..patient()
    }
}

/// `client.discover` with [`patient`] timing.
async fn discover(client: &Client, filter: DiscoveryFilter) -> Vec<AgentHandle> {
    client.discover_with(filter, patient()).await.unwrap()
}

async fn idle(_x: scenario::Exchange) {}

/// The population of the filter tests.
struct Population {
    alpha_alice: ScenarioAgent,
    alpha_bob: ScenarioAgent,
    beta_alice: ScenarioAgent,
    old: ScenarioAgent,
    malformed_id: String,
    _malformed: async_nats::service::Service,
    _billing: async_nats::service::Service,
    _impostor: tokio::task::JoinHandle<()>,
}

async fn population(nc: &async_nats::Client) -> Population {
    let alpha_alice =
        ScenarioAgent::start(nc, Spec::new("alpha", "alice", "one").session("s1"), idle).await;
    let alpha_bob = ScenarioAgent::start(nc, Spec::new("alpha", "bob", "two"), idle).await;
    let beta_alice =
        ScenarioAgent::start(nc, Spec::new("beta", "alice", "three").session("s3"), idle).await;
    // §11.2: a 0.2 agent cannot be talked to.
    let old = ScenarioAgent::start(
        nc,
        Spec::new("alpha", "alice", "old").protocol_version("0.2"),
        idle,
    )
    .await;
    // An `agents` service without the §3.2 metadata.
    let malformed = nc
        .service_builder()
        .metadata(HashMap::from([("agent".to_owned(), "alpha".to_owned())]))
        .start("agents", "1.0.0")
        .await
        .unwrap();
    let malformed_id = malformed.info().await.id;
    // A micro service that is not an agent; it never answers `$SRV.INFO.agents`.
    let billing = nc
        .service_builder()
        .start("billing", "1.0.0")
        .await
        .unwrap();
    // ... and one that answers `$SRV.INFO.agents` with a non-agent record.
    let mut not_agent = record("IMPOSTOR", "alpha", "alice", "fake");
    not_agent["name"] = json!("billing");
    let impostor = raw_responder(nc, "$SRV.INFO.agents", vec![not_agent]).await;
    sync(nc).await;
    Population {
        alpha_alice,
        alpha_bob,
        beta_alice,
        old,
        malformed_id,
        _malformed: malformed,
        _billing: billing,
        _impostor: impostor,
    }
}

#[tokio::test]
async fn discovery_filters_and_drops_what_it_cannot_use() {
    let server = server();
    let nc = connect(&server).await;
    let client = caller(&server).await;
    let p = population(&nc).await;
    let (a1, b2, c3) = (p.alpha_alice.id(), p.alpha_bob.id(), p.beta_alice.id());

    // Independent rounds (each its own inbox), run at once so that the
    // patient quiet interval is waited for once, not seven times.
    let (all, alpha, alice, two, s3, alpha_alice, every_version) = tokio::join!(
        discover(&client, filter()),
        discover(
            &client,
            DiscoveryFilter {
                agent: Some("alpha".into()),
                ..filter()
            }
        ),
        discover(
            &client,
            DiscoveryFilter {
                owner: Some("alice".into()),
                ..filter()
            }
        ),
        discover(
            &client,
            DiscoveryFilter {
                name: Some("two".into()),
                ..filter()
            }
        ),
        discover(
            &client,
            DiscoveryFilter {
                session: Some("s3".into()),
                ..filter()
            }
        ),
        discover(
            &client,
            DiscoveryFilter {
                agent: Some("alpha".into()),
                owner: Some("alice".into()),
                ..filter()
            }
        ),
        // Without a protocol filter the 0.2 agent is listed too.
        discover(
            &client,
            DiscoveryFilter {
                protocol: None,
                ..filter()
            }
        ),
    );
    assert_eq!(
        ids(&all),
        set([a1, b2, c3]),
        "the 0.2 agent, the malformed record and the non-agent are dropped"
    );
    assert_eq!(ids(&alpha), set([a1, b2]));
    assert_eq!(ids(&alice), set([a1, c3]));
    assert_eq!(ids(&two), set([b2]));
    assert_eq!(ids(&s3), set([c3]));
    assert_eq!(ids(&alpha_alice), set([a1]));
    assert_eq!(ids(&every_version), set([a1, b2, c3, p.old.id()]));
    let handle = &alpha_alice[0];
    assert_eq!(handle.agent(), "alpha");
    assert_eq!(handle.owner(), "alice");
    assert_eq!(handle.name(), Some("one"));
    assert_eq!(handle.session(), Some("s1"));
    assert_eq!(handle.prompt_subject(), "agents.prompt.alpha.alice.one");
    assert_eq!(
        handle.status_subject(),
        Some("agents.status.alpha.alice.one")
    );
    assert_eq!(handle.max_payload().bytes(), 1024 * 1024);
    assert!(handle.attachments_ok());
    assert_eq!(handle.protocol_version().to_string(), "0.3");
}

#[tokio::test]
async fn find_takes_the_first_match() {
    let server = server();
    let nc = connect(&server).await;
    let client = caller(&server).await;
    let p = population(&nc).await;

    let beta = client
        .find(DiscoveryFilter {
            agent: Some("beta".into()),
            ..filter()
        })
        .await
        .unwrap();
    assert_eq!(beta.id(), p.beta_alice.id());

    let err = client
        .find(DiscoveryFilter {
            agent: Some("gamma".into()),
            owner: Some("carol".into()),
            ..filter()
        })
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::NotFound { filter } if filter == "agent=gamma owner=carol"),
        "{err:?}"
    );
}

#[tokio::test]
async fn lookup_by_instance_id() {
    let server = server();
    let nc = connect(&server).await;
    let client = caller(&server).await;
    let p = population(&nc).await;

    let handle = client.lookup(p.alpha_bob.id()).await.unwrap();
    assert_eq!(handle.id(), p.alpha_bob.id());
    assert_eq!(handle.owner(), "bob");

    let err = client.lookup("NO_SUCH_INSTANCE").await.unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");

    let err = client.lookup(p.old.id()).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Incompatible {
                miss: FilterMiss::Incompatible { .. },
                ..
            }
        ),
        "{err:?}"
    );

    let err = client.lookup(&p.malformed_id).await.unwrap_err();
    assert!(
        matches!(err, Error::Info(InfoError::Metadata(_))),
        "{err:?}"
    );
}

#[tokio::test]
async fn ping_lists_every_reachable_agents_instance() {
    let server = server();
    let nc = connect(&server).await;
    let client = caller(&server).await;
    let p = population(&nc).await;

    let records = client.ping().await.unwrap();
    let ids: BTreeSet<String> = records.iter().map(|r| r.id.clone()).collect();
    assert_eq!(
        ids,
        set([
            p.alpha_alice.id(),
            p.alpha_bob.id(),
            p.beta_alice.id(),
            p.old.id(),
            &p.malformed_id,
        ])
    );
    let a1 = records.iter().find(|r| r.id == p.alpha_alice.id()).unwrap();
    assert_eq!(a1.agent(), Some("alpha"));
    assert_eq!(a1.owner(), Some("alice"));
    assert_eq!(a1.protocol_version().unwrap().to_string(), "0.3");
}

#[tokio::test]
async fn nothing_running_is_an_empty_list() {
    let server = server();
    let client = caller(&server).await;
    assert!(client.discover(filter()).await.unwrap().is_empty());
    assert!(client.ping().await.unwrap().is_empty());
    let err = client.find(filter()).await.unwrap_err();
    assert!(
        matches!(&err, Error::NotFound { filter } if filter == "any agent"),
        "{err:?}"
    );
}

#[tokio::test]
async fn discovery_collects_a_thousand_instances() {
    let server = server();
    let nc = connect(&server).await;
    let client: Client = caller(&server).await;
    // One responder answering for 1,000 instances, in one burst: the
    // caller's inbox must keep up with all of them.
    let records: Vec<_> = (0..1000)
        .map(|i| record(&format!("ID{i:04}"), "swarm", "alice", &format!("n{i}")))
        .collect();
    let _responder = raw_responder(&nc, "$SRV.INFO.agents", records).await;

    let found = client
        .discover_with(filter(), expecting(1000))
        .await
        .unwrap();
    assert_eq!(found.len(), 1000);
    assert_eq!(ids(&found).len(), 1000);
}

#[tokio::test]
async fn discovery_finds_a_thousand_real_services() {
    let server = server();
    let nc = connect(&server).await;
    let client = caller(&server).await;
    let mut services = Vec::new();
    for i in 0..1000 {
        let service = nc
            .service_builder()
            .metadata(HashMap::from([
                ("agent".to_owned(), "swarm".to_owned()),
                ("owner".to_owned(), "alice".to_owned()),
                ("protocol_version".to_owned(), "0.3".to_owned()),
            ]))
            .start("agents", "1.0.0")
            .await
            .unwrap();
        let endpoint = service
            .endpoint_builder()
            .name("prompt")
            .queue_group("agents")
            .metadata(HashMap::from([
                ("max_payload".to_owned(), "1MB".to_owned()),
                ("attachments_ok".to_owned(), "true".to_owned()),
            ]))
            .add(format!("agents.prompt.swarm.alice.n{i}"))
            .await
            .unwrap();
        services.push((service, endpoint));
    }
    // Every registration is on the server before the request.
    sync(&nc).await;

    let found = client
        .discover_with(filter(), expecting(1000))
        .await
        .unwrap();
    assert_eq!(ids(&found).len(), 1000);
}
