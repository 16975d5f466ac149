//! The Rust caller against the Python host `synadia-ai-agent-service`
//! (`AgentService`), run as a subprocess from the interop venv.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/python.rs"]
mod python;
#[path = "support/scenario.rs"]
mod scenario;

use futures::StreamExt;
use nap_nats::Error;
use nap_nats::{AgentHandle, Client, Event};
use nap_proto::{Attachment, DiscoveryFilter, ErrorCode, Presence, StatusCode};
use nap_testkit::NatsServer;
use python::PythonAgent;
use scenario::{caller, server, soon};

/// A server, a caller and a Python agent `pyagent.interop.{name}` on it.
struct Setup {
    _agent: PythonAgent,
    client: Client,
    handle: AgentHandle,
    _server: NatsServer,
}

async fn setup(name: &str) -> Setup {
    let server = server();
    let client = caller(&server).await;
    let agent = PythonAgent::start("agent.py", &[&server.url(), "interop", name]).await;
    let handle = client
        .find(DiscoveryFilter {
            agent: Some("pyagent".into()),
            owner: Some("interop".into()),
            name: Some(name.into()),
            ..DiscoveryFilter::any()
        })
        .await
        .unwrap();
    assert_eq!(handle.id(), agent.instance_id);
    Setup {
        _agent: agent,
        client,
        handle,
        _server: server,
    }
}

#[tokio::test]
async fn discovers_the_python_agent_record() {
    let s = setup("record").await;
    let h = &s.handle;
    assert_eq!(h.agent(), "pyagent");
    assert_eq!(h.owner(), "interop");
    assert_eq!(h.name(), Some("record"));
    assert_eq!(h.prompt_subject(), "agents.prompt.pyagent.interop.record");
    assert_eq!(
        h.status_subject(),
        Some("agents.status.pyagent.interop.record")
    );
    assert_eq!(h.info().prompt.queue_group.as_deref(), Some("agents"));
    assert_eq!(h.protocol_version().to_string(), "0.3");

    let lookup = s.client.lookup(h.id()).await.unwrap();
    assert_eq!(lookup.prompt_subject(), h.prompt_subject());
    let pinged = s.client.ping().await.unwrap();
    assert!(pinged.iter().any(|r| r.id == h.id()), "{pinged:?}");
}

#[tokio::test]
async fn a_streamed_multi_chunk_reply() {
    let s = setup("stream").await;

    let mut stream = s.handle.prompt("stream").await.unwrap();
    let mut events = Vec::new();
    while let Some(event) = soon(stream.next()).await {
        events.push(event.unwrap());
    }
    assert!(
        matches!(events[0], Event::Ack),
        "§6.4 ack first: {events:?}"
    );
    let texts: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::Response(data) => Some(data.text()),
            _ => None,
        })
        .collect();
    assert_eq!(texts, ["one ", "two ", "three"]);
    assert!(matches!(events.last(), Some(Event::End)));

    let text = soon(s.handle.prompt("hi there").await.unwrap().text()).await;
    assert_eq!(text.unwrap(), "echo: hi there");

    let reply = soon(s.handle.prompt("files").await.unwrap().collect())
        .await
        .unwrap();
    assert_eq!(reply.text, "a file");
    assert_eq!(
        reply.attachments,
        [Attachment::new("hello.txt", "hello from python")]
    );
}

#[tokio::test]
async fn an_error_reply() {
    let s = setup("errors").await;

    let err = soon(s.handle.prompt("reject").await.unwrap().text())
        .await
        .unwrap_err();
    let Error::Remote(remote) = err else {
        panic!("expected a remote error: {err:?}");
    };
    assert_eq!(remote.code, ErrorCode::Listed(StatusCode::Conflict));
    assert_eq!(remote.message(), "conflict from python");

    let err = soon(s.handle.prompt("crash").await.unwrap().text())
        .await
        .unwrap_err();
    let Error::Remote(remote) = err else {
        panic!("expected a remote error: {err:?}");
    };
    assert_eq!(remote.code, ErrorCode::Listed(StatusCode::Internal));

    // The agent keeps serving after errors.
    let text = soon(s.handle.prompt("still there?").await.unwrap().text()).await;
    assert_eq!(text.unwrap(), "echo: still there?");
}

#[tokio::test]
async fn a_query_answered_by_the_caller() {
    let s = setup("query").await;

    let mut stream = s.handle.prompt("ask").await.unwrap();
    let mut text = String::new();
    let mut asked = Vec::new();
    while let Some(event) = soon(stream.next()).await {
        match event.unwrap() {
            Event::Query(query) => {
                asked.push(query.prompt().to_owned());
                query.answer("nap").await.unwrap();
            }
            Event::Response(data) => text.push_str(data.text()),
            Event::Violation(v) => panic!("{v}"),
            _ => {}
        }
    }
    assert_eq!(asked, ["what is your name?"]);
    assert_eq!(text, "hello nap");

    let text = soon(
        s.handle
            .prompt("ask")
            .await
            .unwrap()
            .text_with_answers(|_query| async { "rust" }),
    )
    .await;
    assert_eq!(text.unwrap(), "hello rust");
}

#[tokio::test]
async fn heartbeats_and_status_of_the_python_agent() {
    let server = server();
    let client = caller(&server).await;
    // Watching before the agent starts: its first beats bring it online.
    let mut watch = client.watch();
    let agent = PythonAgent::start("agent.py", &[&server.url(), "interop", "liveness"]).await;
    let online = soon(async {
        loop {
            let t = watch.next().await.unwrap();
            if t.instance_id == agent.instance_id {
                return t;
            }
        }
    })
    .await;
    assert_eq!(online.presence, Presence::Online);
    assert_eq!(online.heartbeat.agent, "pyagent");
    assert_eq!(online.heartbeat.interval_s.secs(), 1.0);
    assert!(client.is_online(&agent.instance_id));

    let handle = client.lookup(&agent.instance_id).await.unwrap();
    let heartbeat = handle.status().await.unwrap();
    assert_eq!(heartbeat.instance_id, agent.instance_id);
    assert_eq!(heartbeat.agent, "pyagent");
    assert_eq!(heartbeat.owner, "interop");
    assert!(handle.is_online());
}
