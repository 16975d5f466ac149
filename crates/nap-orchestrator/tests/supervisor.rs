//! The supervisor end to end on a real nats-server: its model works
//! through the agent tools (discover, prompt detached, wait, answer),
//! reports the agents at work, skips itself, reports failures, answers
//! the workers' questions, and reaches a Python agent among Rust ones.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use nap_agent::{Agent, AgentError, Request, Responder, agent_fn};
use nap_llm::Offline;
use nap_nats::Event;
use nap_orchestrator::Supervisor;
use nap_orchestrator::agent_tools::{ANSWER_AGENT, DISCOVER_AGENTS, PROMPT_AGENT};
use nap_proto::{Chunk, DiscoveryFilter, StatusToken};
use support::{Bus, within};

fn owner(owner: &str) -> DiscoveryFilter {
    DiscoveryFilter {
        owner: Some(owner.into()),
        ..DiscoveryFilter::any()
    }
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

/// The statuses that name agents (nap's progress tokens for agents, not
/// for the agent tools themselves).
fn agent_progress(statuses: &[String]) -> Vec<String> {
    statuses
        .iter()
        .filter(|s| !s.ends_with("_agent") && !s.ends_with("_agents") && !s.ends_with("_calls"))
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_served_supervisor_prompts_the_workers_in_the_order_it_is_told_and_never_itself() {
    let bus = Bus::start().await;
    let _editor = bus.llm_worker("team", "editor").await;
    let _researcher = bus.llm_worker("team", "researcher").await;
    let _writer = bus.llm_worker("team", "writer").await;
    let client = bus.client().await;
    // Its filter matches itself too: the own-address guard keeps it out.
    let supervisor = Supervisor::builder(client.clone(), Arc::new(Offline::new()))
        .filter(owner("team"))
        .system("Ask the researcher first, then the writer, then the editor. And the boss.")
        .build()
        .unwrap();
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
    assert_eq!(
        agent_progress(&status),
        [
            "tool:researcher",
            "done:researcher",
            "tool:writer",
            "done:writer",
            "tool:editor",
            "done:editor"
        ],
        "{status:?}"
    );
    // The agent tools ran: discovery once, detached prompts collected.
    assert!(status.contains(&"tool:discover_agents".to_owned()));
    assert!(status.contains(&"tool:wait_agent".to_owned()));
    assert!(
        text.contains("I called researcher, then writer, then editor"),
        "{text}"
    );
    // Each worker built on the one before.
    assert!(
        text.contains(
            "(You are the editor.) You said: \"[offline model] (You are the writer.) You said: \"[offline model] (You are the researcher.) You said: \"quantum computing\""
        ),
        "{text}"
    );
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_goes_silent_is_reported_failed_and_ends_the_plan() {
    let bus = Bus::start().await;
    let _researcher = bus.llm_worker("crew", "researcher").await;
    // A writer that never answers, without keep-alives.
    let _writer = nap_nats::AgentService::builder("worker", "crew", "writer")
        .heartbeat_interval(Duration::from_secs(1))
        .keepalive(None)
        .start(
            bus.nats.clone(),
            agent_fn(|_req: Request, _out: Responder| async move {
                tokio::time::sleep(Duration::from_secs(120)).await;
                Ok::<_, AgentError>(())
            }),
        )
        .await
        .unwrap();
    let _editor = bus.llm_worker("crew", "editor").await;
    let supervisor = Supervisor::builder(bus.client().await, Arc::new(Offline::new()))
        .filter(owner("crew"))
        .system("The researcher, then the writer, then the editor.")
        .inactivity_timeout(Duration::from_secs(2))
        .build()
        .unwrap();

    let (out, collected) = Responder::collector();
    within(
        30,
        "the run with a silent worker",
        supervisor.prompt(Request::text("fusion"), out),
    )
    .await
    .unwrap();
    let text = collected.text();
    assert!(text.contains("writer failed:"), "{text}");
    let status = statuses(&collected.chunks());
    assert_eq!(
        agent_progress(&status),
        [
            "tool:researcher",
            "done:researcher",
            "tool:writer",
            "failed:writer"
        ],
        "the editor is never prompted: {status:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocking_only_supervisor_offers_three_tools_and_waits_for_each_call() {
    let bus = Bus::start().await;
    let _a = bus.llm_worker("slim", "first").await;
    let _b = bus.llm_worker("slim", "second").await;
    let supervisor = Supervisor::builder(bus.client().await, Arc::new(Offline::new()))
        .filter(owner("slim"))
        .blocking_only()
        .system("first, then second")
        .build()
        .unwrap();
    assert_eq!(
        supervisor.tools().offered(),
        [DISCOVER_AGENTS, PROMPT_AGENT, ANSWER_AGENT]
    );
    let (out, collected) = Responder::collector();
    within(
        30,
        "the blocking run",
        supervisor.prompt(Request::text("hello"), out),
    )
    .await
    .unwrap();
    let status = statuses(&collected.chunks());
    assert!(
        !status.contains(&"tool:wait_agent".to_owned()),
        "{status:?}"
    );
    assert_eq!(
        agent_progress(&status),
        ["tool:first", "done:first", "tool:second", "done:second"],
        "{status:?}"
    );
    assert!(
        collected
            .text()
            .contains("I called first, then second, each with the previous one's reply"),
        "{}",
        collected.text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_agent_is_reached_next_to_a_rust_agent() {
    let bus = Bus::start().await;
    let (_python, _) = support::python_agent(&bus.server.url(), "mixed", "pyworker").await;
    let _rust = bus.llm_worker("mixed", "rustworker").await;
    let supervisor = Supervisor::builder(bus.client().await, Arc::new(Offline::new()))
        .filter(owner("mixed"))
        .system("pyworker, then rustworker")
        .build()
        .unwrap();
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
        text.contains("I called pyworker, then rustworker"),
        "{text}"
    );
    // The Rust agent was given the Python agent's reply.
    assert!(
        text.contains("rustworker answered: [offline model] (You are the rustworker.) You said: \"echo: hello there\""),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workers_question_is_answered_by_the_supervisors_model() {
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
        .filter(owner("ask"))
        .build()
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
    let mut questions = 0;
    within(30, "the answered question", async {
        while let Some(event) = stream.next().await {
            match event.unwrap() {
                Event::Query(query) => {
                    questions += 1;
                    query.answer("nobody asked me").await.unwrap();
                }
                Event::Response(data) => text.push_str(data.text()),
                Event::End => break,
                Event::Violation(v) => panic!("{v}"),
                _ => {}
            }
        }
    })
    .await;
    assert_eq!(
        questions, 0,
        "the question went to the model, not the caller"
    );
    assert!(
        text.contains("asker answered: hello Nobody here can tell you more"),
        "{text}"
    );
}
