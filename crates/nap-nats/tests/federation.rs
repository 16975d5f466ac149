//! Agents past one cluster: a hub cluster with a leaf node, and two
//! clusters joined by a gateway (nap-testkit's `LeafHub`, `GatewayPair`).
//! In each, in both directions: discovery (§4), prompting (§5, §6),
//! liveness from heartbeats (§8), queue-group load sharing (§3.3) across
//! instances on different nodes, and failover when a node or an instance
//! is lost.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use nap_agent::{AgentError, Request, Responder, agent_fn};
use nap_nats::{AgentService, RunningAgent};
use nap_nats::{Client, PromptOptions};
use nap_proto::{DiscoveryFilter, Presence};
use nap_testkit::{GatewayPair, LeafHub};

/// Generous bound for what must happen eventually; never asserted on as a time.
const PATIENCE: Duration = Duration::from_secs(30);

async fn connect(url: &str) -> async_nats::Client {
    async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .connect(url)
        .await
        .unwrap()
}

/// Answers `{instance id}: {prompt}`, counting prompts per instance.
async fn counting_echo(
    url: &str,
    owner: &str,
    counts: Arc<Mutex<HashMap<String, usize>>>,
) -> RunningAgent {
    AgentService::builder("echo", owner, "fed")
        .heartbeat_interval(Duration::from_secs(1))
        .start(
            connect(url).await,
            agent_fn(move |req: Request, out: Responder| {
                let counts = counts.clone();
                async move {
                    let id = req.instance.instance_id.clone();
                    *counts.lock().unwrap().entry(id.clone()).or_default() += 1;
                    out.text(format!("{id}: {}", req.prompt())).await?;
                    Ok::<_, AgentError>(())
                }
            }),
        )
        .await
        .unwrap()
}

fn owner(owner: &str) -> DiscoveryFilter {
    DiscoveryFilter {
        owner: Some(owner.into()),
        ..DiscoveryFilter::any()
    }
}

/// Discovers until `n` instances of `owner` answer.
async fn discover_n(client: &Client, who: &str, n: usize) -> Vec<nap_nats::AgentHandle> {
    let found = tokio::time::timeout(PATIENCE, async {
        loop {
            let found = client.discover(owner(who)).await.unwrap();
            if found.len() >= n {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    found.unwrap_or_else(|_| panic!("{n} instance(s) of {who} never discovered"))
}

async fn ask(handle: &nap_nats::AgentHandle, text: &str) -> Result<String, nap_nats::Error> {
    let options = PromptOptions::inactivity_timeout(Duration::from_secs(5));
    handle.prompt_with(text, options).await?.text().await
}

/// Discovery, a prompt, and liveness (online, then offline when the agent
/// stops) from a caller on `caller_url` to an agent on `agent_url`.
async fn reachable_and_alive(agent_url: &str, caller_url: &str, who: &str) {
    let client = Client::new(connect(caller_url).await).await.unwrap();
    let mut changes = client.watch();
    let counts = Arc::default();
    let agent = counting_echo(agent_url, who, counts).await;
    let id = agent.id().to_owned();
    let handle = discover_n(&client, who, 1).await.remove(0);
    assert_eq!(handle.id(), id);
    let reply = ask(&handle, "across").await.unwrap();
    assert_eq!(reply, format!("{id}: across"));
    // §8: its heartbeats cross too: online, then offline once it stops.
    let seen = |presence: Presence| {
        let id = id.clone();
        move |t: &nap_proto::Transition| t.instance_id == id && t.presence == presence
    };
    tokio::time::timeout(PATIENCE, async {
        while let Some(t) = changes.next().await {
            if seen(Presence::Online)(&t) {
                return;
            }
        }
    })
    .await
    .expect("never seen online");
    agent.stop().await;
    tokio::time::timeout(PATIENCE, async {
        while let Some(t) = changes.next().await {
            if seen(Presence::Offline)(&t) {
                return;
            }
        }
    })
    .await
    .expect("never seen offline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_on_a_leaf_is_reached_from_the_hub_and_the_reverse() {
    let topology = LeafHub::start().unwrap();
    let hub = topology.hub()[1].url();
    let leaf = topology.leaf().url();
    reachable_and_alive(&leaf, &hub, "leaf-agent").await;
    reachable_and_alive(&hub, &leaf, "hub-agent").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_in_one_cluster_is_reached_through_a_gateway_both_ways() {
    let pair = GatewayPair::start().unwrap();
    reachable_and_alive(&pair.a().url(), &pair.b().url(), "in-a").await;
    reachable_and_alive(&pair.b().url(), &pair.a().url(), "in-b").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_on_two_hub_nodes_share_the_prompts_of_a_caller_on_the_leaf() {
    let topology = LeafHub::start().unwrap();
    let counts: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let one = counting_echo(&topology.hub()[0].url(), "shared", counts.clone()).await;
    let two = counting_echo(&topology.hub()[1].url(), "shared", counts.clone()).await;
    let client = Client::new(connect(&topology.leaf().url()).await)
        .await
        .unwrap();
    let handle = discover_n(&client, "shared", 2).await.remove(0);
    for i in 0..40 {
        ask(&handle, &format!("p{i}")).await.unwrap();
    }
    let counts = counts.lock().unwrap().clone();
    assert_eq!(counts.values().sum::<usize>(), 40, "{counts:?}");
    // One queue group (§3.3) spans the hub's nodes: both instances answer.
    assert!(
        counts.get(one.id()).copied().unwrap_or(0) > 0
            && counts.get(two.id()).copied().unwrap_or(0) > 0,
        "{counts:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompts_to_a_leaf_agent_survive_the_loss_of_a_hub_node() {
    let mut topology = LeafHub::start().unwrap();
    let counts = Arc::default();
    let _agent = counting_echo(&topology.leaf().url(), "edge", counts).await;
    // The caller sits on the node the leaf is not connected to.
    let linked = topology.connected_hub().unwrap();
    let other = 1 - linked;
    let client = Client::new(connect(&topology.hub()[other].url()).await)
        .await
        .unwrap();
    let handle = discover_n(&client, "edge", 1).await.remove(0);
    assert!(ask(&handle, "before").await.is_ok());
    // The node the leaf is connected to goes away; the leaf reconnects to
    // the other one, and prompts are answered again.
    topology.hub_mut()[linked].stop().unwrap();
    topology.wait_for_leaf().unwrap();
    assert_eq!(topology.connected_hub(), Some(other));
    let answered = tokio::time::timeout(PATIENCE, async {
        loop {
            match ask(&handle, "after").await {
                Ok(text) => return text,
                Err(e) => {
                    tracing::debug!(%e, "not yet");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    })
    .await
    .expect("no answer after the hub node was lost");
    assert!(answered.ends_with(": after"), "{answered}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_prefers_the_local_instance_and_fails_over_to_the_remote_one() {
    let pair = GatewayPair::start().unwrap();
    let counts: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let remote = counting_echo(&pair.a().url(), "geo", counts.clone()).await;
    let local = counting_echo(&pair.b().url(), "geo", counts.clone()).await;
    let client = Client::new(connect(&pair.b().url()).await).await.unwrap();
    let handle = discover_n(&client, "geo", 2).await.remove(0);
    for i in 0..10 {
        ask(&handle, &format!("p{i}")).await.unwrap();
    }
    // NATS gives a queue group's messages to members in the publisher's own
    // cluster when there are any.
    assert_eq!(
        counts.lock().unwrap().get(local.id()).copied(),
        Some(10),
        "{:?}",
        counts.lock().unwrap()
    );
    let local_id = local.id().to_owned();
    local.stop().await;
    let answered = tokio::time::timeout(PATIENCE, async {
        loop {
            if let Ok(text) = ask(&handle, "failover").await {
                return text;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .expect("the remote instance never answered");
    assert_eq!(answered, format!("{}: failover", remote.id()));
    assert_ne!(remote.id(), local_id);
}
