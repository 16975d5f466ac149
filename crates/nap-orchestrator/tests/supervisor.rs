//! The supervisor end to end on a real nats-server: discovery, calls,
//! withdrawal, load sharing, a Python agent among Rust ones, and itself
//! served as an agent.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use nap_agent::{Agent, AgentError, Request, Responder, agent_fn};
use nap_llm::Offline;
use nap_nats::Event;
use nap_orchestrator::{SupervisedAgent, Supervisor};
use nap_proto::{Chunk, DiscoveryFilter, StatusToken};
use serde_json::json;
use support::{Bus, within};

fn owner(owner: &str) -> DiscoveryFilter {
    DiscoveryFilter {
        owner: Some(owner.into()),
        ..DiscoveryFilter::any()
    }
}

fn tools(agents: &[SupervisedAgent]) -> Vec<String> {
    agents.iter().map(|a| a.tool.clone()).collect()
}

fn statuses(chunks: &[Chunk]) -> Vec<String> {
    chunks
        .iter()
        .filter_map(|c| match c {
            Chunk::Status(StatusToken::Other(t)) => Some(t.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn supervisor_discovers_three_workers_calls_each_and_skips_itself() {
    let bus = Bus::start().await;
    let _researcher = bus.llm_worker("team", "researcher").await;
    let _writer = bus.llm_worker("team", "writer").await;
    let client = bus.client().await;
    let supervisor = Supervisor::builder(client.clone(), Arc::new(Offline::new()))
        .filter(owner("team"))
        .start()
        .await
        .unwrap();
    assert_eq!(tools(&supervisor.agents()), ["researcher", "writer"]);

    // An agent that appears later becomes a tool, from its heartbeat.
    let _editor = bus.llm_worker("team", "editor").await;
    assert!(
        supervisor
            .wait_for(|a| a.len() == 3, Duration::from_secs(10))
            .await,
        "the editor was not added: {:?}",
        supervisor.agents()
    );
    assert_eq!(
        tools(&supervisor.agents()),
        ["editor", "researcher", "writer"]
    );

    // Served on NATS under the same owner: it must not call itself.
    let served = bus
        .serve("supervisor", "team", "boss", supervisor.clone())
        .await;
    let boss = client
        .find(DiscoveryFilter {
            agent: Some("supervisor".into()),
            ..DiscoveryFilter::any()
        })
        .await
        .unwrap();
    let mut stream = client.prompt(&boss, "quantum computing").await.unwrap();
    let (mut status, mut text) = (Vec::new(), String::new());
    within(30, "the supervisor's answer", async {
        while let Some(event) = stream.next().await {
            match event.unwrap() {
                Event::Status(token) => status.push(token),
                Event::Response(data) => text.push_str(data.text()),
                Event::End => break,
                Event::Violation(v) => panic!("{v}"),
                _ => {}
            }
        }
    })
    .await;
    for name in ["researcher", "writer", "editor"] {
        assert!(status.contains(&format!("tool:{name}")), "{status:?}");
        assert!(status.contains(&format!("done:{name}")), "{status:?}");
        assert!(
            text.contains(&format!("{name} returned: [offline model]")),
            "{text}"
        );
    }
    assert!(!status.iter().any(|s| s.contains("boss")), "{status:?}");
    assert!(text.contains("I called 3 tool(s)"), "{text}");
    assert_eq!(supervisor.agents().len(), 3, "{:?}", supervisor.agents());
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_that_stops_mid_run_is_reported_and_withdrawn() {
    let bus = Bus::start().await;
    let _researcher = bus.llm_worker("crew", "researcher").await;
    // A writer that never answers, without keep-alives: it only acks, and
    // says when it got the prompt.
    let (got_prompt, prompted) = tokio::sync::mpsc::unbounded_channel::<()>();
    let writer = nap_nats::AgentService::builder("worker", "crew", "writer")
        .heartbeat_interval(Duration::from_secs(1))
        .keepalive(None)
        .start(
            bus.nats.clone(),
            agent_fn(move |_req: Request, _out: Responder| {
                let got_prompt = got_prompt.clone();
                async move {
                    let _ = got_prompt.send(());
                    tokio::time::sleep(Duration::from_secs(120)).await;
                    Ok::<_, AgentError>(())
                }
            }),
        )
        .await
        .unwrap();
    let supervisor = Supervisor::builder(bus.client().await, Arc::new(Offline::new()))
        .filter(owner("crew"))
        .inactivity_timeout(Duration::from_secs(2))
        .start()
        .await
        .unwrap();
    assert_eq!(tools(&supervisor.agents()), ["researcher", "writer"]);

    let (out, collected) = Responder::collector();
    let run = {
        let supervisor = supervisor.clone();
        tokio::spawn(async move { supervisor.prompt(Request::text("fusion"), out).await })
    };
    // The writer is working on it; now it dies.
    let mut prompted = prompted;
    within(20, "the writer's prompt", prompted.recv())
        .await
        .unwrap();
    drop(writer);

    within(20, "the run with a dead worker", run)
        .await
        .unwrap()
        .unwrap();
    let text = collected.text();
    assert!(text.contains("researcher returned"), "{text}");
    assert!(
        text.contains("writer failed: agent writer went silent"),
        "the failure is reported: {text}"
    );
    let status = statuses(&collected.chunks());
    assert!(status.contains(&"failed:writer".to_owned()), "{status:?}");

    // Its heartbeats stopped: it is withdrawn, the researcher stays.
    assert!(
        supervisor
            .wait_for(|a| tools(a) == ["researcher"], Duration::from_secs(15))
            .await,
        "the writer was not withdrawn: {:?}",
        supervisor.agents()
    );
    assert!(supervisor.llm_agent().tools().get("writer").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_of_one_worker_are_one_tool_and_share_the_load() {
    let bus = Bus::start().await;
    let calls: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let counting = |calls: Arc<Mutex<HashMap<String, usize>>>| {
        agent_fn(move |req: Request, out: Responder| {
            let calls = calls.clone();
            async move {
                *calls
                    .lock()
                    .unwrap()
                    .entry(req.instance.instance_id.clone())
                    .or_default() += 1;
                out.text(format!("counted {}", req.prompt())).await?;
                Ok::<_, AgentError>(())
            }
        })
    };
    let a = bus
        .serve("worker", "pool", "counter", counting(calls.clone()))
        .await;
    let b = bus
        .serve("worker", "pool", "counter", counting(calls.clone()))
        .await;
    let supervisor = Supervisor::builder(bus.client().await, Arc::new(Offline::new()))
        .filter(owner("pool"))
        .start()
        .await
        .unwrap();
    let agents = supervisor.agents();
    assert_eq!(tools(&agents), ["counter"]);
    let mut instances = agents[0].instances.clone();
    instances.sort();
    let mut expected = vec![a.id().to_owned(), b.id().to_owned()];
    expected.sort();
    assert_eq!(instances, expected);

    let agent = supervisor.llm_agent();
    let tool = agent.tools().get("counter").unwrap().clone();
    let answers = within(
        30,
        "40 calls",
        futures::future::join_all(
            (0..40).map(|i| tool.call(json!({ "prompt": format!("call {i}") }))),
        ),
    )
    .await;
    for (i, answer) in answers.into_iter().enumerate() {
        assert_eq!(answer.unwrap(), format!("counted call {i}"));
    }
    let calls = calls.lock().unwrap().clone();
    assert_eq!(calls.values().sum::<usize>(), 40, "{calls:?}");
    assert_eq!(calls.len(), 2, "both instances answered: {calls:?}");

    // One instance goes: the tool stays, with one instance.
    a.stop().await;
    assert!(
        supervisor
            .wait_for(
                |a| a.len() == 1 && a[0].instances.len() == 1,
                Duration::from_secs(15)
            )
            .await,
        "{:?}",
        supervisor.agents()
    );
    assert_eq!(
        tool.call(json!({ "prompt": "after" })).await.unwrap(),
        "counted after"
    );
    drop(b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_agent_is_a_tool_next_to_rust_agents() {
    let bus = Bus::start().await;
    let (_python, python_id) = support::python_agent(&bus.server.url(), "mixed", "pyworker").await;
    let _rust = bus.llm_worker("mixed", "rustworker").await;
    let supervisor = Supervisor::builder(bus.client().await, Arc::new(Offline::new()))
        .filter(owner("mixed"))
        .start()
        .await
        .unwrap();
    let agents = supervisor.agents();
    assert_eq!(tools(&agents), ["pyworker", "rustworker"]);
    assert_eq!(agents[0].agent, "pyagent");
    assert_eq!(agents[0].instances, [python_id]);

    let (out, collected) = Responder::collector();
    within(
        30,
        "the mixed run",
        supervisor.prompt(Request::text("hello there"), out),
    )
    .await
    .unwrap();
    let text = collected.text();
    assert!(
        text.contains("pyworker returned: echo: hello there"),
        "{text}"
    );
    assert!(
        text.contains("rustworker returned: [offline model]"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_served_supervisor_forwards_a_workers_question_to_its_caller() {
    let bus = Bus::start().await;
    let _asker = bus
        .serve(
            "worker",
            "ask",
            "asker",
            agent_fn(|_req: Request, out: Responder| async move {
                let answer = out
                    .ask("what is your name?", Duration::from_secs(10))
                    .await?;
                out.text(format!("hello {}", answer.prompt)).await?;
                Ok::<_, AgentError>(())
            }),
        )
        .await;
    let client = bus.client().await;
    let supervisor = Supervisor::builder(client.clone(), Arc::new(Offline::new()))
        .filter(DiscoveryFilter {
            agent: Some("worker".into()),
            ..owner("ask")
        })
        .start()
        .await
        .unwrap();
    let _served = bus.serve("supervisor", "ask", "boss", supervisor).await;
    let boss = client
        .find(DiscoveryFilter {
            agent: Some("supervisor".into()),
            ..DiscoveryFilter::any()
        })
        .await
        .unwrap();
    let mut stream = client.prompt(&boss, "greet me").await.unwrap();
    let mut text = String::new();
    let mut questions = Vec::new();
    within(30, "the forwarded question", async {
        while let Some(event) = stream.next().await {
            match event.unwrap() {
                Event::Query(query) => {
                    questions.push(query.prompt().to_owned());
                    query.answer("Ada").await.unwrap();
                }
                Event::Response(data) => text.push_str(data.text()),
                Event::End => break,
                Event::Violation(v) => panic!("{v}"),
                _ => {}
            }
        }
    })
    .await;
    assert_eq!(questions, ["asker asks: what is your name?"]);
    assert!(text.contains("asker returned: hello Ada"), "{text}");
}
