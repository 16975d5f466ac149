//! A remote agent as a tool, on a real nats-server: answers, error texts
//! the model reads, and the query policies.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::time::Duration;

use nap_agent::{AgentError, Request, Responder, agent_fn};
use nap_llm::{LlmAgent, Offline, Tool};
use nap_nats::AgentHandle;
use nap_orchestrator::{AgentHandleExt, QueryPolicy, with_caller};
use nap_proto::{DiscoveryFilter, Envelope};
use serde_json::json;
use support::{Bus, within};

async fn handle(bus: &Bus, name: &str) -> AgentHandle {
    bus.client()
        .await
        .find(DiscoveryFilter {
            name: Some(name.into()),
            ..DiscoveryFilter::any()
        })
        .await
        .unwrap()
}

/// Answers `fail` with a 500, `reject` with a 400, `ask` with a question,
/// `hang` with silence (no keep-alives), anything else with `got: PROMPT`
/// and the attachments' names.
async fn start_agent(bus: &Bus) -> nap_nats::RunningAgent {
    nap_nats::AgentService::builder("worker", "tools", "remote")
        .keepalive(None)
        .shutdown_timeout(Duration::from_millis(200))
        .start(
            bus.nats.clone(),
            agent_fn(|req: Request, out: Responder| async move {
                match req.prompt() {
                    "fail" => return Err(AgentError::internal("the disk is full")),
                    "reject" => return Err(AgentError::bad_request("no thanks")),
                    "ask" => {
                        let answer = out.ask("which colour?", Duration::from_secs(5)).await?;
                        out.text(format!("colour {}", answer.prompt)).await?;
                    }
                    "hang" => tokio::time::sleep(Duration::from_secs(60)).await,
                    prompt => {
                        out.text(format!("got: {prompt}")).await?;
                        for a in req.attachments() {
                            out.text(format!(
                                " +{}={}",
                                a.filename,
                                String::from_utf8_lossy(&a.content)
                            ))
                            .await?;
                        }
                    }
                }
                Ok::<_, AgentError>(())
            }),
        )
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_agent_answers_as_a_tool_and_its_errors_read_well() {
    let bus = Bus::start().await;
    let running = start_agent(&bus).await;
    let tool = handle(&bus, "remote")
        .await
        .as_tool("remote", "A test agent")
        .inactivity_timeout(Duration::from_secs(1));
    assert_eq!(tool.name(), "remote");
    assert_eq!(tool.schema()["required"], json!(["prompt"]));
    assert_eq!(tool.instances(), [running.id().to_owned()]);

    let ok = tool
        .call(json!({
            "prompt": "hi",
            "attachments": [{ "filename": "a.txt", "content": "alpha" }]
        }))
        .await
        .unwrap();
    assert_eq!(ok, "got: hi +a.txt=alpha");

    let err = tool.call(json!({ "prompt": "fail" })).await.unwrap_err();
    assert_eq!(
        err.message,
        "agent remote answered error 500: the disk is full"
    );
    let err = tool.call(json!({ "prompt": "reject" })).await.unwrap_err();
    assert!(
        err.message.starts_with("agent remote answered error 400"),
        "{err}"
    );
    let err = within(10, "a silent agent", tool.call(json!({ "prompt": "hang" })))
        .await
        .unwrap_err();
    assert!(
        err.message.starts_with("agent remote went silent for 1s"),
        "{err}"
    );
    let err = tool.call(json!({ "wrong": 1 })).await.unwrap_err();
    assert!(err.message.contains("invalid arguments"), "{err}");

    running.stop().await;
    let err = within(10, "a gone agent", tool.call(json!({ "prompt": "hi" })))
        .await
        .unwrap_err();
    assert!(
        err.message
            .starts_with("agent remote is gone (no responders"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn questions_follow_the_query_policy() {
    let bus = Bus::start().await;
    let _running = start_agent(&bus).await;
    let handle = handle(&bus, "remote").await;
    let ask = json!({ "prompt": "ask" });

    let refuse = handle
        .as_tool("remote", "")
        .query_policy(QueryPolicy::Refuse);
    let err = refuse.call(ask.clone()).await.unwrap_err();
    assert!(
        err.message
            .starts_with("agent remote asked \"which colour?\" and got no answer"),
        "{err}"
    );

    let answer = handle
        .as_tool("remote", "")
        .query_policy(QueryPolicy::Answer("blue".into()));
    assert_eq!(answer.call(ask.clone()).await.unwrap(), "colour blue");

    // Forward, with nobody to forward to.
    let forward = handle.as_tool("remote", "");
    let err = forward.call(ask.clone()).await.unwrap_err();
    assert!(
        err.message
            .contains("nobody is prompting this orchestrator"),
        "{err}"
    );

    // Forward, inside a caller's scope: the caller is asked.
    let (caller, collected) = Responder::collector();
    collected.answer_with(Envelope::text("green"));
    let text = with_caller(caller, forward.call(ask.clone()))
        .await
        .unwrap();
    assert_eq!(text, "colour green");
    assert_eq!(collected.questions(), ["remote asks: which colour?"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_llm_agent_calls_the_remote_tool_and_reports_progress() {
    let bus = Bus::start().await;
    let _running = start_agent(&bus).await;
    let tool = handle(&bus, "remote")
        .await
        .as_tool("remote", "A test agent");
    let agent = LlmAgent::builder(Offline::new()).tool(tool).build();
    let (out, collected) = Responder::collector();
    with_caller(
        out.clone(),
        nap_agent::Agent::prompt(&agent, Request::text("hello"), out),
    )
    .await
    .unwrap();
    assert!(
        collected.text().contains("remote returned: got: hello"),
        "{}",
        collected.text()
    );
    let status: Vec<String> = collected
        .chunks()
        .iter()
        .filter_map(|c| match c {
            nap_proto::Chunk::Status(nap_proto::StatusToken::Other(t)) => Some(t.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(status, ["tool:remote", "done:remote"]);
}
