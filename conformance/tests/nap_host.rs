//! nap's own host passes: the `EchoAgent` of the examples, served in-process
//! by `nap_nats::AgentService`, with no failure at any level, and the
//! tool-calling `LlmAgent` (offline model) likewise.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use nap_conformance::agent::{self, Target};
use nap_nats::AgentService;
use nap_testkit::NatsServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_agent_on_nap_host_is_compliant() {
    let server = NatsServer::start().unwrap();
    let nats = async_nats::connect(server.url()).await.unwrap();
    let running = AgentService::builder("echo", "conformance", "nap-echo")
        .heartbeat_interval(Duration::from_secs(1))
        .start(nats, nap_examples::EchoAgent::default())
        .await
        .unwrap();
    let mut options = common::quick(Target::Name("nap-echo".to_owned()));
    // A prompt that makes the echo agent ask a question (§7) too.
    options.prompt = format!("{}continue?", nap_examples::ASK_PREFIX);
    let report = agent::run(&server.url(), &options).await.unwrap();
    let failed = common::failed(&report);
    assert!(report.is_compliant(), "MUST failures: {failed:?}");
    // nap's host acks every stream first, rejections included (§6.4).
    assert!(failed.is_empty(), "{}", report.json());
    assert_eq!(
        report.get("STR-010").unwrap().outcome,
        nap_conformance::Outcome::Pass
    );
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nap_host_refuses_attachments_when_it_says_so() {
    let server = NatsServer::start().unwrap();
    let nats = async_nats::connect(server.url()).await.unwrap();
    let running = AgentService::builder("echo", "conformance", "nap-noatt")
        .heartbeat_interval(Duration::from_secs(1))
        .attachments_ok(false)
        .start(nats, nap_examples::EchoAgent::default())
        .await
        .unwrap();
    let report = agent::run(
        &server.url(),
        &common::quick(Target::Name("nap-noatt".to_owned())),
    )
    .await
    .unwrap();
    let failed = common::failed(&report);
    assert!(failed.is_empty(), "{}", report.json());
    assert_eq!(
        report.get("REQ-017").unwrap().outcome,
        nap_conformance::Outcome::Pass
    );
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llm_agent_on_nap_host_is_compliant() {
    let server = NatsServer::start().unwrap();
    let nats = async_nats::connect(server.url()).await.unwrap();
    let agent = nap_llm::LlmAgent::builder(nap_llm::Offline::new())
        .tool(nap_llm::tools::calculator())
        .tool(nap_llm::tools::utc_now())
        .build();
    let running = AgentService::builder("llm", "conformance", "nap-llm")
        .heartbeat_interval(Duration::from_secs(1))
        .start(nats, agent)
        .await
        .unwrap();
    let report = agent::run(
        &server.url(),
        &common::quick(Target::Name("nap-llm".to_owned())),
    )
    .await
    .unwrap();
    let failed = common::failed(&report);
    assert!(report.is_compliant(), "MUST failures: {failed:?}");
    assert!(failed.is_empty(), "{}", report.json());
    running.stop().await;
}

/// Agents of a fleet (one connection, shared `$SRV` answers, one heartbeat
/// task) pass the suite like any other agent, with other agents of the same
/// fleet beside them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_agents_of_a_fleet_are_compliant() {
    let server = NatsServer::start().unwrap();
    let nats = async_nats::connect(server.url()).await.unwrap();
    let fleet = nap_nats::Fleet::start(nats).await.unwrap();
    let mut running = Vec::new();
    for i in 0..3 {
        let builder = AgentService::builder("echo", "conformance", format!("fleet-{i}"))
            .heartbeat_interval(Duration::from_secs(1));
        running.push(
            fleet
                .add(builder, nap_examples::EchoAgent::default())
                .await
                .unwrap(),
        );
    }
    let mut options = common::quick(Target::Name("fleet-1".to_owned()));
    options.prompt = format!("{}continue?", nap_examples::ASK_PREFIX);
    let report = agent::run(&server.url(), &options).await.unwrap();
    let failed = common::failed(&report);
    assert!(report.is_compliant(), "MUST failures: {failed:?}");
    assert!(failed.is_empty(), "{}", report.json());
    for agent in running {
        agent.stop().await;
    }
}
