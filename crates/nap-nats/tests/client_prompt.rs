//! The caller's prompt path against hand-written scenario agents: response
//! streams (§6), errors (§9), queries (§7) and local checks (§5.4).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/scenario.rs"]
mod scenario;

use std::time::Duration;

use futures::StreamExt;
use nap_nats::{AgentHandle, Client, Event, PromptOptions, PromptStream};
use nap_nats::{Error, Result};
use nap_proto::{
    AgentInfo, Attachment, DiscoveryFilter, Envelope, EnvelopeError, ErrorCode, RequestError,
    ResponseData, StatusCode, StreamViolation,
};
use scenario::{Exchange, ScenarioAgent, Silence, Spec, caller, connect, record, server, soon};
use serde_json::json;

/// Starts a scenario agent `scenario.test.{name}` and finds it.
async fn agent_with<F, Fut>(
    client: &Client,
    nc: &async_nats::Client,
    spec: Spec,
    behaviour: F,
) -> (ScenarioAgent, AgentHandle)
where
    F: Fn(Exchange) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let agent = ScenarioAgent::start(nc, spec, behaviour).await;
    let handle = client.lookup(agent.id()).await.unwrap();
    (agent, handle)
}

/// Reads a stream to its end, keeping every item.
async fn drain(mut stream: PromptStream) -> Vec<Result<Event>> {
    let mut items = Vec::new();
    while let Some(item) = soon(stream.next()).await {
        items.push(item);
    }
    items
}

fn response_text(item: &Result<Event>) -> Option<&str> {
    match item {
        Ok(Event::Response(data)) => Some(data.text()),
        _ => None,
    }
}

#[tokio::test]
async fn ack_chunks_and_terminator_give_the_text() {
    let server = server();
    let nc = connect(&server).await;
    let client = caller(&server).await;
    let (_agent, handle) = agent_with(
        &client,
        &nc,
        Spec::new("echo", "alice", "one"),
        |x| async move {
            x.ack().await;
            x.text("Hel").await;
            x.text("lo, ").await;
            x.text(&x.prompt()).await;
            x.end().await;
        },
    )
    .await;

    let text = soon(handle.prompt("world").await.unwrap().text())
        .await
        .unwrap();
    assert_eq!(text, "Hello, world");

    let stream = client.prompt(&handle, "again").await.unwrap();
    let items = drain(stream).await;
    assert!(matches!(items[0], Ok(Event::Ack)), "{items:?}");
    let texts: Vec<_> = items.iter().filter_map(response_text).collect();
    assert_eq!(texts, ["Hel", "lo, ", "again"]);
    assert!(matches!(items.last(), Some(Ok(Event::End))), "{items:?}");
    assert_eq!(items.len(), 5);
}

#[tokio::test]
async fn the_request_goes_to_the_advertised_subject_as_a_json_envelope() {
    let server = server();
    let nc = connect(&server).await;
    let client = caller(&server).await;
    // §4.3: a subject that does not follow the default pattern.
    let spec = Spec::new("echo", "alice", "custom").prompt_subject("custom.prompts.here");
    let (_agent, handle) = agent_with(&client, &nc, spec, |x| async move {
        x.ack().await;
        x.text(&x.request_text()).await;
        x.end().await;
    })
    .await;
    assert_eq!(handle.prompt_subject(), "custom.prompts.here");
    assert_eq!(handle.name(), None);

    let text = soon(handle.prompt("hi").await.unwrap().text())
        .await
        .unwrap();
    assert_eq!(text, r#"{"prompt":"hi"}"#);
}

#[tokio::test]
async fn object_form_responses_carry_attachments() {
    let server = server();
    let nc = connect(&server).await;
    let client = caller(&server).await;
    let (_agent, handle) = agent_with(
        &client,
        &nc,
        Spec::new("files", "alice", "one"),
        |x| async move {
            x.ack().await;
            x.chunk(json!({"type": "response", "data": {
                "text": "here: ",
                "attachments": [{"filename": "a.txt", "content": "aGk="}],
                "x-extra": 1
            }}))
            .await;
            x.text("done").await;
            x.end().await;
        },
    )
    .await;

    let reply = soon(handle.prompt("files please").await.unwrap().collect())
        .await
        .unwrap();
    assert_eq!(reply.text, "here: done");
    assert_eq!(reply.attachments, [Attachment::new("a.txt", "hi")]);

    let items = drain(handle.prompt("again").await.unwrap()).await;
    let Ok(Event::Response(ResponseData::Object { extra, .. })) = &items[1] else {
        panic!("expected an object response: {items:?}");
    };
    assert_eq!(extra["x-extra"], 1, "unknown fields are kept (§6.6)");
}

#[tokio::test]
async fn unknown_chunk_types_and_status_tokens_are_skipped() {
    let server = server();
    let nc = connect(&server).await;
    let client = caller(&server).await;
    let (_agent, handle) = agent_with(
        &client,
        &nc,
        Spec::new("future", "alice", "one"),
        |x| async move {
            x.ack().await;
            x.chunk(json!({"type": "thinking", "data": {"step": 1}}))
                .await;
            x.chunk(json!({"type": "status", "data": "working"})).await;
            x.text("ok").await;
            x.end().await;
        },
    )
    .await;

    let items = drain(handle.prompt("go").await.unwrap()).await;
    assert!(matches!(items[0], Ok(Event::Ack)), "{items:?}");
    assert!(
        matches!(&items[1], Ok(Event::Status(s)) if s == "working"),
        "{items:?}"
    );
    assert_eq!(response_text(&items[2]), Some("ok"));
    assert!(matches!(items[3], Ok(Event::End)), "{items:?}");
    assert_eq!(
        items.len(),
        4,
        "the unknown chunk yields nothing: {items:?}"
    );

    let text = soon(handle.prompt("go").await.unwrap().text())
        .await
        .unwrap();
    assert_eq!(text, "ok");
}

#[tokio::test]
async fn an_error_signal_ends_the_stream_with_a_remote_error() {
    let server = server();
    let nc = connect(&server).await;
    let client = caller(&server).await;
    let (_agent, handle) = agent_with(&client, &nc, Spec::new("busy", "alice", "one"), |x| async move {
        x.ack().await;
        x.text("partial").await;
        x.error(
            429,
            "slow down",
            br#"{"error":"rate_limited","message":"Too many concurrent requests","retry_after_s":30}"#,
        )
        .await;
        x.end().await;
    })
    .await;

    let items = drain(handle.prompt("hi").await.unwrap()).await;
    assert_eq!(items.len(), 3, "{items:?}");
    assert!(matches!(items[0], Ok(Event::Ack)));
    assert_eq!(response_text(&items[1]), Some("partial"));
    let Err(Error::Remote(remote)) = &items[2] else {
        panic!("expected a remote error: {items:?}");
    };
    assert_eq!(remote.code, ErrorCode::Listed(StatusCode::TooManyRequests));
    assert_eq!(remote.description, "slow down");
    assert_eq!(remote.message(), "Too many concurrent requests");
    let body = remote.body.as_ref().unwrap();
    assert_eq!(body.error, "rate_limited");
    assert_eq!(body.extra["retry_after_s"], 30);

    let err = soon(handle.prompt("hi").await.unwrap().text())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Remote(_)), "{err:?}");
}

#[tokio::test]
async fn an_error_without_terminator_still_ends_the_stream() {
    let server = server();
    let nc = connect(&server).await;
    let client = caller(&server).await;
    let (_agent, handle) = agent_with(
        &client,
        &nc,
        Spec::new("rude", "alice", "one"),
        |x| async move {
            x.ack().await;
            x.error(500, "boom", b"").await;
            // No terminator: the caller must not wait for it (§9.3).
        },
    )
    .await;

    // A long inactivity timeout: ending here is the error's doing.
    let options = PromptOptions::inactivity_timeout(Duration::from_secs(3600));
    let items = drain(handle.prompt_with("hi", options).await.unwrap()).await;
    assert_eq!(items.len(), 2, "{items:?}");
    let Err(Error::Remote(remote)) = &items[1] else {
        panic!("expected a remote error: {items:?}");
    };
    assert_eq!(remote.code, ErrorCode::Listed(StatusCode::Internal));
    assert_eq!(
        remote.message(),
        "boom",
        "empty body: the header describes (§9.1)"
    );
}

#[tokio::test]
async fn a_lost_terminator_times_out() {
    let server = server();
    let nc = connect(&server).await;
    let client = caller(&server).await;
    let (_agent, handle) = agent_with(
        &client,
        &nc,
        Spec::new("lossy", "alice", "one"),
        |x| async move {
            x.ack().await;
            x.text("partial").await;
            // The terminator is "lost".
        },
    )
    .await;

    let options = PromptOptions::inactivity_timeout(Duration::from_millis(300));
    let items = drain(handle.prompt_with("hi", options).await.unwrap()).await;
    assert_eq!(items.len(), 3, "{items:?}");
    assert!(matches!(items[0], Ok(Event::Ack)));
    assert_eq!(response_text(&items[1]), Some("partial"));
    assert!(
        matches!(items[2], Err(Error::InactivityTimeout { .. })),
        "{items:?}"
    );
}

#[tokio::test]
async fn a_silent_agent_times_out_from_publication() {
    let server = server();
    let nc = connect(&server).await;
    let client = caller(&server).await;
    let (_agent, handle) = agent_with(
        &client,
        &nc,
        Spec::new("mute", "alice", "one"),
        |_x| async move {},
    )
    .await;

    let options = PromptOptions::inactivity_timeout(Duration::from_millis(300));
    let items = drain(handle.prompt_with("hi", options).await.unwrap()).await;
    assert!(
        matches!(items.as_slice(), [Err(Error::InactivityTimeout { .. })]),
        "{items:?}"
    );
}

#[tokio::test]
async fn keep_alive_acks_hold_a_stream_open_past_the_timeout() {
    let server = server();
    let nc = connect(&server).await;
    let client = caller(&server).await;
    let (_agent, handle) = agent_with(
        &client,
        &nc,
        Spec::new("slow", "alice", "one"),
        |x| async move {
            x.ack().await;
            // Ten gaps of 100 ms: a whole that outlasts the 600 ms timeout, each
            // gap well inside it.
            for _ in 0..10 {
                tokio::time::sleep(Duration::from_millis(100)).await;
                x.ack().await;
            }
            x.text("done").await;
            x.end().await;
        },
    )
    .await;

    let options = PromptOptions::inactivity_timeout(Duration::from_millis(600));
    let items = drain(handle.prompt_with("hi", options).await.unwrap()).await;
    let acks = items.iter().filter(|i| matches!(i, Ok(Event::Ack))).count();
    assert_eq!(acks, 11, "{items:?}");
    assert_eq!(
        items.iter().filter_map(response_text).collect::<String>(),
        "done"
    );
    assert!(matches!(items.last(), Some(Ok(Event::End))), "{items:?}");
}

#[tokio::test]
async fn a_query_is_answered_and_the_answer_streamed_back() {
    let server = server();
    let nc = connect(&server).await;
    let client = caller(&server).await;
    let (_agent, handle) = agent_with(
        &client,
        &nc,
        Spec::new("asker", "alice", "one"),
        |x| async move {
            x.ack().await;
            let answer = x.ask("what is your name?").await;
            x.text(&format!("hello {}", String::from_utf8_lossy(&answer)))
                .await;
            x.end().await;
        },
    )
    .await;

    // Event by event.
    let mut stream = handle.prompt("greet me").await.unwrap();
    assert!(matches!(soon(stream.next()).await, Some(Ok(Event::Ack))));
    let Some(Ok(Event::Query(query))) = soon(stream.next()).await else {
        panic!("expected a query");
    };
    assert_eq!(query.prompt(), "what is your name?");
    assert_eq!(query.id(), "q-1");
    assert!(query.attachments().is_empty());
    query.answer("nap").await.unwrap();
    let Some(Ok(Event::Response(data))) = soon(stream.next()).await else {
        panic!("expected the answer streamed back");
    };
    assert_eq!(
        data.text(),
        "hello nap",
        "plain text goes out as the shorthand"
    );
    assert!(matches!(soon(stream.next()).await, Some(Ok(Event::End))));
    assert!(soon(stream.next()).await.is_none());

    // With an answer policy.
    let text = soon(
        handle
            .prompt("greet me")
            .await
            .unwrap()
            .text_with_answers(|q| async move {
                assert_eq!(q.prompt, "what is your name?");
                Envelope::text("rust").with_attachment(Attachment::new("id.txt", "x"))
            }),
    )
    .await
    .unwrap();
    assert_eq!(
        text,
        r#"hello {"prompt":"rust","attachments":[{"filename":"id.txt","content":"eA=="}]}"#
    );
}

#[tokio::test]
async fn text_refuses_an_unanswerable_query() {
    let server = server();
    let nc = connect(&server).await;
    let client = caller(&server).await;
    let (_agent, handle) = agent_with(
        &client,
        &nc,
        Spec::new("asker", "alice", "one"),
        |x| async move {
            x.ack().await;
            let _ = x.ask("proceed?").await;
            x.end().await;
        },
    )
    .await;

    let err = soon(handle.prompt("go").await.unwrap().text())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::QueryNotAnswered { prompt, .. } if prompt == "proceed?"),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_malformed_chunk_is_reported_and_the_stream_goes_on() {
    let server = server();
    let nc = connect(&server).await;
    let client = caller(&server).await;
    let (_agent, handle) = agent_with(
        &client,
        &nc,
        Spec::new("sloppy", "alice", "one"),
        |x| async move {
            x.ack().await;
            x.raw("plain text is not a chunk").await;
            x.text("ok").await;
            x.end().await;
        },
    )
    .await;

    let items = drain(handle.prompt("go").await.unwrap()).await;
    assert_eq!(items.len(), 4, "{items:?}");
    assert!(matches!(
        items[1],
        Ok(Event::Violation(StreamViolation::Malformed(_)))
    ));
    assert_eq!(response_text(&items[2]), Some("ok"));
    assert!(matches!(items[3], Ok(Event::End)));
}

#[tokio::test]
async fn nobody_listening_is_no_responders() {
    let server = server();
    let client = caller(&server).await;
    let info = AgentInfo::from_value(record("GONE", "ghost", "alice", "one")).unwrap();
    let handle = client.handle(info);

    let mut stream = handle.prompt("anyone?").await.unwrap();
    let first = soon(stream.next()).await;
    assert!(
        matches!(&first, Some(Err(Error::NoResponders { subject })) if subject == "agents.prompt.ghost.alice.one"),
        "{first:?}"
    );
    assert!(soon(stream.next()).await.is_none());
}

#[tokio::test]
async fn an_oversize_prompt_is_refused_and_nothing_published() {
    let server = server();
    let nc = connect(&server).await;
    let client = caller(&server).await;
    let spec = Spec::new("tiny", "alice", "one").max_payload("1KB");
    let (_agent, handle) = agent_with(&client, &nc, spec, |x| async move {
        x.ack().await;
        x.end().await;
    })
    .await;
    let silence = Silence::listen(&nc, "agents.prompt.>").await;

    let err = handle.prompt("a".repeat(2000)).await.unwrap_err();
    assert!(
        matches!(err, Error::Refused(RequestError::TooLarge { size, .. }) if size > 1024),
        "{err:?}"
    );
    silence.assert_silent(client.nats()).await;

    // Just under the limit goes through (the ~80 bytes of the trace
    // context header count too).
    let text = soon(handle.prompt("a".repeat(900)).await.unwrap().text()).await;
    assert_eq!(text.unwrap(), "");
}

#[tokio::test]
async fn attachments_are_refused_when_the_agent_declines_them() {
    let server = server();
    let nc = connect(&server).await;
    let client = caller(&server).await;
    let spec = Spec::new("textonly", "alice", "one").attachments_ok(false);
    let (_agent, handle) = agent_with(&client, &nc, spec, |x| async move {
        x.ack().await;
        x.end().await;
    })
    .await;
    assert!(!handle.attachments_ok());
    let silence = Silence::listen(&nc, "agents.prompt.>").await;

    let envelope = Envelope::text("see file").with_attachment(Attachment::new("a.txt", "hi"));
    let err = handle.prompt(envelope).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Refused(RequestError::AttachmentsNotAccepted { count: 1 })
        ),
        "{err:?}"
    );
    let err = handle.prompt("").await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Refused(RequestError::Envelope(EnvelopeError::EmptyPrompt))
        ),
        "{err:?}"
    );
    silence.assert_silent(client.nats()).await;
}

#[tokio::test]
async fn the_servers_max_payload_is_enforced_too() {
    let server = nap_testkit::NatsServer::builder()
        .max_payload(1024)
        .start()
        .unwrap();
    let nc = connect(&server).await;
    let client = caller(&server).await;
    // The agent over-advertises 1MB; the server's 1 KiB governs (§5.4).
    let (_agent, handle) = agent_with(
        &client,
        &nc,
        Spec::new("big", "alice", "one"),
        |x| async move {
            x.ack().await;
            x.end().await;
        },
    )
    .await;
    let silence = Silence::listen(&nc, "agents.prompt.>").await;

    let err = handle.prompt("a".repeat(2000)).await.unwrap_err();
    assert!(
        matches!(&err, Error::Refused(RequestError::TooLarge { limit, .. }) if limit.bytes() == 1024),
        "{err:?}"
    );
    silence.assert_silent(client.nats()).await;
}

#[tokio::test]
async fn dropping_the_stream_cancels_quietly() {
    let server = server();
    let nc = connect(&server).await;
    let client = caller(&server).await;
    let (_agent, handle) = agent_with(
        &client,
        &nc,
        Spec::new("chatty", "alice", "one"),
        |x| async move {
            x.ack().await;
            for i in 0..50 {
                x.text(&format!("{i} ")).await;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            x.end().await;
        },
    )
    .await;

    let mut stream = handle.prompt("talk").await.unwrap();
    assert!(matches!(soon(stream.next()).await, Some(Ok(Event::Ack))));
    drop(stream); // §6.7: no wire signal, just no more interest.

    // The client is unaffected.
    let found = client
        .find(DiscoveryFilter {
            agent: Some("chatty".into()),
            ..DiscoveryFilter::any()
        })
        .await
        .unwrap();
    assert_eq!(found.id(), handle.id());
}
