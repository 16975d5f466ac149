//! The host (`AgentService`) on a real nats-server, observed on the raw wire.
#![allow(clippy::unwrap_used, missing_docs)]

#[path = "support/host.rs"]
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt;
use nap_agent::{AgentError, Request, Responder, agent_fn};
use nap_nats::AgentService;
use nap_proto::{AgentInfo, ByteSize, Chunk, ErrorBody, Heartbeat, ResponseData, StatusToken};
use support::*;
use tokio::sync::Notify;

fn echo() -> impl nap_agent::Agent {
    agent_fn(|req: Request, out: Responder| async move {
        out.text(req.prompt().to_owned()).await?;
        Ok::<_, AgentError>(())
    })
}

fn chunk(msg: &async_nats::Message) -> Chunk {
    Chunk::decode(&msg.payload).unwrap()
}

#[tokio::test]
async fn registers_as_an_agents_micro_service() {
    let server = server();
    let nc = connect(&server).await;
    let running = AgentService::builder("echo", "alice", "demo")
        .session("s1")
        .version("2.1.0")
        .description("an echo")
        .metadata("team", "blue")
        .max_payload(ByteSize::kib(512))
        .attachments_ok(false)
        .start(nc.clone(), echo())
        .await
        .unwrap();

    let records = infos(&nc, 1).await;
    assert_eq!(records.len(), 1);
    let raw = &records[0];
    assert_eq!(raw["name"], "agents");
    assert_eq!(raw["version"], "2.1.0");
    assert_eq!(raw["description"], "an echo");
    assert_eq!(raw["metadata"]["team"], "blue");
    let info = AgentInfo::from_value(raw.clone()).unwrap();
    assert_eq!(info.id, running.id());
    assert_eq!(info.metadata.agent, "echo");
    assert_eq!(info.metadata.owner, "alice");
    assert_eq!(info.metadata.session.as_deref(), Some("s1"));
    assert_eq!(info.metadata.protocol_version.to_string(), "0.3");
    assert_eq!(info.prompt.subject, "agents.prompt.echo.alice.demo");
    assert_eq!(info.prompt.queue_group.as_deref(), Some("agents"));
    assert_eq!(info.prompt.max_payload, ByteSize::kib(512));
    assert!(!info.prompt.attachments_ok);
    let status = info.status.unwrap();
    assert_eq!(status.subject, "agents.status.echo.alice.demo");
    assert_eq!(status.queue_group.as_deref(), Some("agents"));

    // The direct lookup and the ping answer too (§4).
    let direct = nc
        .request(format!("$SRV.INFO.agents.{}", running.id()), "".into())
        .await
        .unwrap();
    assert_eq!(AgentInfo::parse(&direct.payload).unwrap().id, running.id());
    let ping = nc.request("$SRV.PING.agents", "".into()).await.unwrap();
    let ping: serde_json::Value = serde_json::from_slice(&ping.payload).unwrap();
    assert_eq!(ping["id"], running.id());
}

#[tokio::test]
async fn streams_ack_then_chunks_then_terminator() {
    let server = server();
    let nc = connect(&server).await;
    let agent = agent_fn(|req: Request, out: Responder| async move {
        for word in req.prompt().split(' ') {
            out.text(format!("{word} ")).await?;
        }
        out.response(
            "done",
            vec![nap_proto::Attachment::new("n.txt", b"42".to_vec())],
        )
        .await?;
        Ok::<_, AgentError>(())
    });
    let _running = AgentService::builder("words", "o", "n")
        .start(nc.clone(), agent)
        .await
        .unwrap();

    let msgs = exchange(&nc, "agents.prompt.words.o.n", "one two three").await;
    assert_eq!(
        body(&msgs[0]),
        r#"{"type":"status","data":"ack"}"#,
        "§6.4: ack first"
    );
    let texts: Vec<String> = msgs[1..4]
        .iter()
        .map(|m| match chunk(m) {
            Chunk::Response(d) => d.text().to_owned(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(texts, ["one ", "two ", "three "]);
    let Chunk::Response(ResponseData::Object {
        text, attachments, ..
    }) = chunk(&msgs[4])
    else {
        panic!()
    };
    assert_eq!(
        (text.as_str(), attachments[0].content.as_slice()),
        ("done", &b"42"[..])
    );
    assert!(is_terminator(&msgs[5]));
    assert_eq!(msgs.len(), 6);
}

#[tokio::test]
async fn every_malformed_request_gets_ack_then_400_then_the_terminator_and_serving_goes_on() {
    let server = server();
    let nc = connect(&server).await;
    let _running = AgentService::builder("echo", "o", "strict")
        .max_payload(ByteSize::kib(1))
        .attachments_ok(false)
        .start(nc.clone(), echo())
        .await
        .unwrap();
    let subject = "agents.prompt.echo.o.strict";
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("zero bytes", vec![], "empty"),
        ("invalid JSON", b"  {oops".to_vec(), "not valid JSON"),
        (
            "no prompt",
            br#"{"text":"x"}"#.to_vec(),
            "`prompt` is missing",
        ),
        (
            "prompt not a string",
            br#"{"prompt":1}"#.to_vec(),
            "must be a string",
        ),
        (
            "empty prompt",
            br#"{"prompt":""}"#.to_vec(),
            "must not be empty",
        ),
        (
            "URL-safe base64",
            br#"{"prompt":"x","attachments":[{"filename":"a","content":"-_-_"}]}"#.to_vec(),
            "URL-safe",
        ),
        ("oversize", vec![b'a'; 2048], "more than max_payload"),
        (
            "attachments not accepted",
            br#"{"prompt":"x","attachments":[{"filename":"a","content":"aGk="}]}"#.to_vec(),
            "attachments_ok=false",
        ),
    ];
    for (name, payload, needle) in cases {
        let msgs = exchange(&nc, subject, payload).await;
        let description = assert_error_stream(&msgs, "400");
        assert!(description.contains(needle), "{name}: {description}");
    }
    let msgs = exchange(&nc, subject, "still here").await;
    assert_eq!(body(&msgs[1]), r#"{"type":"response","data":"still here"}"#);
}

#[tokio::test]
async fn an_attachment_name_that_is_not_one_file_name_gets_400_before_the_handler() {
    let server = server();
    let nc = connect(&server).await;
    let _running = AgentService::builder("echo", "o", "files")
        .start(nc.clone(), echo())
        .await
        .unwrap();
    let subject = "agents.prompt.echo.o.files";
    let with_name = |name: &str| {
        let name = serde_json::to_string(name).unwrap();
        format!(r#"{{"prompt":"x","attachments":[{{"filename":{name},"content":"aGk="}}]}}"#)
            .into_bytes()
    };
    for (name, needle) in [
        ("../../etc/passwd", "path separator '/'"),
        ("a\\b", "path separator '\\\\'"),
        ("x\0y", "control character U+0000"),
        ("..", "\"..\", not a file name"),
    ] {
        let msgs = exchange(&nc, subject, with_name(name)).await;
        let description = assert_error_stream(&msgs, "400");
        assert!(
            description.contains("unsafe filename") && description.contains(needle),
            "{name:?}: {description}"
        );
    }
    // One component, even one Windows reserves, reaches the handler as sent.
    let msgs = exchange(&nc, subject, with_name("CON")).await;
    assert_eq!(body(&msgs[1]), r#"{"type":"response","data":"x"}"#);
}

#[tokio::test]
async fn beyond_the_concurrency_limit_gets_429() {
    let server = server();
    let nc = connect(&server).await;
    let release = Arc::new(Notify::new());
    let r = release.clone();
    let agent = agent_fn(move |_req: Request, out: Responder| {
        let r = r.clone();
        async move {
            r.notified().await;
            out.text("released").await?;
            Ok::<_, AgentError>(())
        }
    });
    let running = AgentService::builder("slow", "o", "n")
        .max_concurrent(1)
        .start(nc.clone(), agent)
        .await
        .unwrap();
    let nc2 = nc.clone();
    let first =
        tokio::spawn(async move { exchange(&nc2, "agents.prompt.slow.o.n", "first").await });
    while running.in_flight() == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let msgs = exchange(&nc, "agents.prompt.slow.o.n", "second").await;
    assert_error_stream(&msgs, "429");
    release.notify_one();
    let msgs = first.await.unwrap();
    assert_eq!(body(&msgs[1]), r#"{"type":"response","data":"released"}"#);
}

#[tokio::test]
async fn a_panicking_agent_yields_500_and_the_service_keeps_serving() {
    let server = server();
    let nc = connect(&server).await;
    let agent = agent_fn(|req: Request, out: Responder| async move {
        if req.prompt() == "panic" {
            panic!("boom");
        }
        out.text("fine").await?;
        Ok::<_, AgentError>(())
    });
    let _running = AgentService::builder("p", "o", "n")
        .start(nc.clone(), agent)
        .await
        .unwrap();
    let msgs = exchange(&nc, "agents.prompt.p.o.n", "panic").await;
    assert_error_stream(&msgs, "500");
    let msgs = exchange(&nc, "agents.prompt.p.o.n", "again").await;
    assert_eq!(body(&msgs[1]), r#"{"type":"response","data":"fine"}"#);
}

#[tokio::test]
async fn agent_errors_carry_headers_and_json_body() {
    let server = server();
    let nc = connect(&server).await;
    let agent = agent_fn(|_req: Request, out: Responder| async move {
        out.text("partial").await?;
        Err(AgentError::conflict("busy with another task")
            .with_body(ErrorBody::new("busy", "try later").with_field("retry_after_s", 5)))
    });
    let _running = AgentService::builder("e", "o", "n")
        .start(nc.clone(), agent)
        .await
        .unwrap();
    let msgs = exchange(&nc, "agents.prompt.e.o.n", "x").await;
    assert_eq!(msgs.len(), 4);
    assert_eq!(body(&msgs[1]), r#"{"type":"response","data":"partial"}"#);
    let description =
        assert_error_stream(&[msgs[0].clone(), msgs[2].clone(), msgs[3].clone()], "409");
    assert_eq!(description, "busy with another task");
    assert_eq!(
        body(&msgs[2]),
        r#"{"error":"busy","message":"try later","retry_after_s":5}"#
    );
}

#[tokio::test]
async fn keepalive_acks_while_the_agent_is_silent() {
    let server = server();
    let nc = connect(&server).await;
    let agent = agent_fn(|_req: Request, out: Responder| async move {
        tokio::time::sleep(Duration::from_millis(1000)).await;
        out.text("late").await?;
        Ok::<_, AgentError>(())
    });
    let _running = AgentService::builder("k", "o", "n")
        .keepalive(Some(Duration::from_millis(100)))
        .start(nc.clone(), agent)
        .await
        .unwrap();
    let msgs = exchange(&nc, "agents.prompt.k.o.n", "x").await;
    let acks = msgs
        .iter()
        .filter(|m| !is_terminator(m) && chunk(m) == Chunk::ACK)
        .count();
    assert!(acks >= 3, "leading ack plus keep-alives, got {acks}");
    assert_eq!(
        body(&msgs[msgs.len() - 2]),
        r#"{"type":"response","data":"late"}"#
    );
}

#[tokio::test]
async fn heartbeats_and_status_share_one_shape() {
    let server = server();
    let nc = connect(&server).await;
    let mut beats = nc.subscribe("agents.hb.*.*.*").await.unwrap();
    nc.flush().await.unwrap();
    let running = AgentService::builder("hb", "o", "n")
        .session("sess")
        .heartbeat_interval(Duration::from_millis(200))
        .start(nc.clone(), echo())
        .await
        .unwrap();
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let msg = tokio::time::timeout(Duration::from_secs(5), beats.next())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(msg.subject.as_str(), "agents.hb.hb.o.n");
        let raw: serde_json::Value = serde_json::from_slice(&msg.payload).unwrap();
        for field in [
            "agent",
            "owner",
            "session",
            "instance_id",
            "ts",
            "interval_s",
        ] {
            assert!(
                raw.get(field).is_some(),
                "§8.3 field {field} missing in {raw}"
            );
        }
        seen.push(Heartbeat::decode(&msg.payload).unwrap());
    }
    let hb = &seen[0];
    assert_eq!(
        (hb.agent.as_str(), hb.owner.as_str(), hb.session.as_deref()),
        ("hb", "o", Some("sess"))
    );
    assert_eq!(hb.instance_id, running.id());
    assert_eq!(hb.interval_s.secs(), 0.2);
    assert!(
        hb.ts.ends_with('Z') && hb.ts.len() == 20,
        "UTC ISO 8601: {}",
        hb.ts
    );

    let reply = nc
        .request("agents.status.hb.o.n", "ignored body".into())
        .await
        .unwrap();
    let status = Heartbeat::decode(&reply.payload).unwrap();
    assert_eq!(status.instance_id, running.id());
    assert_eq!(
        (
            status.agent,
            status.owner,
            status.session,
            status.interval_s
        ),
        (
            hb.agent.clone(),
            hb.owner.clone(),
            hb.session.clone(),
            hb.interval_s
        )
    );
}

#[tokio::test]
async fn graceful_stop_finishes_in_flight_prompts_then_unregisters() {
    let server = server();
    let nc = connect(&server).await;
    let started = Arc::new(Notify::new());
    let s = started.clone();
    let agent = agent_fn(move |_req: Request, out: Responder| {
        let s = s.clone();
        async move {
            s.notify_one();
            tokio::time::sleep(Duration::from_millis(400)).await;
            out.text("finished").await?;
            Ok::<_, AgentError>(())
        }
    });
    let running = AgentService::builder("g", "o", "n")
        .start(nc.clone(), agent)
        .await
        .unwrap();
    let nc2 = nc.clone();
    let in_flight = tokio::spawn(async move { exchange(&nc2, "agents.prompt.g.o.n", "x").await });
    started.notified().await;
    running.stop().await;
    let msgs = in_flight.await.unwrap();
    assert_eq!(body(&msgs[1]), r#"{"type":"response","data":"finished"}"#);
    assert!(is_terminator(&msgs[2]));
    assert!(infos(&nc, 0).await.is_empty(), "unregistered");
    let err = nc
        .request("agents.prompt.g.o.n", "x".into())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), async_nats::RequestErrorKind::NoResponders);
}

#[tokio::test]
async fn a_mid_stream_query_is_answered_by_the_caller() {
    let server = server();
    let nc = connect(&server).await;
    let agent = agent_fn(|req: Request, out: Responder| async move {
        let answer = out
            .ask(req.prompt().to_owned(), Duration::from_secs(5))
            .await?;
        out.text(format!("you said {}", answer.prompt)).await?;
        Ok::<_, AgentError>(())
    });
    let _running = AgentService::builder("q", "o", "n")
        .start(nc.clone(), agent)
        .await
        .unwrap();
    let inbox = nc.new_inbox();
    let mut sub = nc.subscribe(inbox.clone()).await.unwrap();
    nc.publish_with_reply("agents.prompt.q.o.n", inbox, "proceed?".into())
        .await
        .unwrap();
    assert_eq!(chunk(&sub.next().await.unwrap()), Chunk::ACK);
    let Chunk::Query(q) = chunk(&sub.next().await.unwrap()) else {
        panic!("expected a query")
    };
    assert_eq!(q.prompt, "proceed?");
    assert!(!q.id.is_empty());
    nc.publish(q.reply_subject, "yes".into()).await.unwrap();
    assert_eq!(
        body(&sub.next().await.unwrap()),
        r#"{"type":"response","data":"you said yes"}"#
    );
    assert!(is_terminator(&sub.next().await.unwrap()));
}

#[tokio::test]
async fn an_answer_with_an_unsafe_attachment_name_is_refused_to_the_handler() {
    let server = server();
    let nc = connect(&server).await;
    let agent = agent_fn(|_req: Request, out: Responder| async move {
        match out.ask("send a file", Duration::from_secs(5)).await {
            Err(nap_nats::nap_agent::QueryError::UnsafeFileName {
                index: 0, filename, ..
            }) => out.text(format!("refused {filename}")).await?,
            other => out.text(format!("unexpected {other:?}")).await?,
        }
        Ok::<_, AgentError>(())
    });
    let _running = AgentService::builder("qf", "o", "n")
        .start(nc.clone(), agent)
        .await
        .unwrap();
    let inbox = nc.new_inbox();
    let mut sub = nc.subscribe(inbox.clone()).await.unwrap();
    nc.publish_with_reply("agents.prompt.qf.o.n", inbox, "go".into())
        .await
        .unwrap();
    assert_eq!(chunk(&sub.next().await.unwrap()), Chunk::ACK);
    let Chunk::Query(q) = chunk(&sub.next().await.unwrap()) else {
        panic!("expected a query")
    };
    let answer = r#"{"prompt":"here","attachments":[{"filename":"../../.ssh/authorized_keys","content":"aGk="}]}"#;
    nc.publish(q.reply_subject, answer.into()).await.unwrap();
    assert_eq!(
        body(&sub.next().await.unwrap()),
        r#"{"type":"response","data":"refused ../../.ssh/authorized_keys"}"#
    );
    assert!(is_terminator(&sub.next().await.unwrap()));
}

#[tokio::test]
async fn nothing_is_published_after_the_terminator() {
    let server = server();
    let nc = connect(&server).await;
    let late_result = Arc::new(std::sync::Mutex::new(None));
    let lr = late_result.clone();
    let agent = agent_fn(move |_req: Request, out: Responder| {
        let lr = lr.clone();
        async move {
            out.text("on time").await?;
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(100)).await;
                *lr.lock().unwrap() = Some(out.text("too late").await);
            });
            Ok::<_, AgentError>(())
        }
    });
    let _running = AgentService::builder("t", "o", "n")
        .start(nc.clone(), agent)
        .await
        .unwrap();
    let inbox = nc.new_inbox();
    let mut sub = nc.subscribe(inbox.clone()).await.unwrap();
    nc.publish_with_reply("agents.prompt.t.o.n", inbox, "x".into())
        .await
        .unwrap();
    for _ in 0..3 {
        sub.next().await.unwrap();
    }
    let extra = tokio::time::timeout(Duration::from_millis(400), sub.next()).await;
    assert!(extra.is_err(), "a message followed the terminator");
    assert_eq!(
        *late_result.lock().unwrap(),
        Some(Err(nap_agent::SendError::Closed))
    );
}

#[tokio::test]
async fn many_agents_share_one_connection() {
    let server = server();
    let nc = connect(&server).await;
    let mut running = Vec::new();
    for i in 0..5 {
        running.push(
            AgentService::builder("echo", "o", format!("n{i}"))
                .start(nc.clone(), echo())
                .await
                .unwrap(),
        );
    }
    assert_eq!(infos(&nc, 5).await.len(), 5);
    for i in 0..5 {
        let msgs = exchange(
            &nc,
            &format!("agents.prompt.echo.o.n{i}"),
            format!("hi {i}"),
        )
        .await;
        assert_eq!(
            body(&msgs[1]),
            format!(r#"{{"type":"response","data":"hi {i}"}}"#)
        );
    }
}

#[tokio::test]
async fn survives_a_server_restart() {
    let mut server = server();
    let nc = async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .connect(server.url())
        .await
        .unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let agent = agent_fn(move |req: Request, out: Responder| {
        c.fetch_add(1, Ordering::SeqCst);
        async move {
            out.text(req.prompt().to_owned()).await?;
            Ok::<_, AgentError>(())
        }
    });
    let _running = AgentService::builder("r", "o", "n")
        .start(nc, agent)
        .await
        .unwrap();
    server.restart().unwrap();

    let caller = connect(&server).await;
    // Once the agent's connection is back, it is discoverable and serves again.
    let mut ok = false;
    for _ in 0..100 {
        if infos_until(&caller, 1, Duration::from_secs(1)).await.len() == 1 {
            let msgs = exchange(&caller, "agents.prompt.r.o.n", "back").await;
            assert_eq!(body(&msgs[1]), r#"{"type":"response","data":"back"}"#);
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ok, "agent did not come back after the restart");
    assert!(calls.load(Ordering::SeqCst) >= 1);
}

#[test]
fn ack_constant_matches_the_protocol_core() {
    assert_eq!(
        Chunk::Status(StatusToken::Ack).encode(),
        br#"{"type":"status","data":"ack"}"#
    );
}

#[tokio::test]
async fn dropping_the_agent_stops_it_gracefully() {
    let server = server();
    let nc = connect(&server).await;
    let started = Arc::new(Notify::new());
    let s = started.clone();
    let agent = agent_fn(move |_req: Request, out: Responder| {
        let s = s.clone();
        async move {
            s.notify_one();
            tokio::time::sleep(Duration::from_millis(500)).await;
            out.text("finished anyway").await?;
            Ok::<_, AgentError>(())
        }
    });
    let running = AgentService::builder("d", "o", "n")
        .start(nc.clone(), agent)
        .await
        .unwrap();
    let inbox = nc.new_inbox();
    let mut sub = nc.subscribe(inbox.clone()).await.unwrap();
    nc.publish_with_reply("agents.prompt.d.o.n", inbox, "x".into())
        .await
        .unwrap();
    assert_eq!(chunk(&sub.next().await.unwrap()), Chunk::ACK);
    started.notified().await;
    drop(running);
    // The prompt in flight still completes: its text, then the terminator.
    let text = tokio::time::timeout(Duration::from_secs(10), sub.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(chunk(&text), Chunk::text("finished anyway"));
    let end = tokio::time::timeout(Duration::from_secs(10), sub.next())
        .await
        .unwrap()
        .unwrap();
    assert!(end.payload.is_empty() && end.headers.is_none());
    // And the instance is no longer registered (§8.6: it is gone).
    let mut gone = false;
    for _ in 0..50 {
        if nc
            .request("$SRV.PING.agents", "".into())
            .await
            .is_err_and(|e| e.kind() == async_nats::RequestErrorKind::NoResponders)
        {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(gone, "the dropped instance still answers $SRV.PING");
}

/// `$SRV.STATS` counts whole streams: every request, every error (400,
/// 429, 500 alike) and the time from request to terminator.
#[tokio::test]
async fn service_stats_count_whole_streams_and_their_errors() {
    let server = server();
    let nc = connect(&server).await;
    let agent = agent_fn(|req: Request, out: Responder| async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        if req.prompt() == "fail" {
            return Err(AgentError::internal("it went wrong"));
        }
        if req.prompt() == "fail with a body" {
            // An error with a JSON body (§9.1), as an LLM agent whose
            // provider is down answers.
            return Err(AgentError::internal("provider down")
                .with_body(ErrorBody::new("provider_unavailable", "try later")));
        }
        out.text("ok").await?;
        Ok::<_, AgentError>(())
    });
    let _running = AgentService::builder("stats", "o", "n")
        .start(nc.clone(), agent)
        .await
        .unwrap();
    for payload in ["fine", "fail", "", "fail with a body"] {
        exchange(&nc, "agents.prompt.stats.o.n", payload).await;
    }
    let reply = nc.request("$SRV.STATS.agents", "".into()).await.unwrap();
    let stats: serde_json::Value = serde_json::from_slice(&reply.payload).unwrap();
    let prompt = stats["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "prompt")
        .unwrap();
    assert_eq!(prompt["num_requests"], 4, "{prompt}");
    // The 500, the 400 of the empty prompt (§5.3) and the 500 with a body.
    assert_eq!(prompt["num_errors"], 3, "{prompt}");
    assert_eq!(prompt["last_error"], "500:provider down", "{prompt}");
    // Three streams of 300 ms of work each, timed to their terminators.
    let nanos = prompt["processing_time"].as_u64().unwrap();
    assert!(nanos >= 900_000_000, "{prompt}");
}

/// A connection that tells the test when it has lost its server.
async fn watched_connection(url: &str) -> (async_nats::Client, Arc<Notify>) {
    let lost = Arc::new(Notify::new());
    let told = lost.clone();
    let nc = async_nats::ConnectOptions::new()
        .event_callback(move |event| {
            let told = told.clone();
            async move {
                if matches!(event, async_nats::Event::Disconnected) {
                    told.notify_one();
                }
            }
        })
        .connect(url)
        .await
        .unwrap();
    (nc, lost)
}

/// Far below the shutdown timeouts below: a stop that waits for a server
/// that is gone, or for its whole timeout, fails.
const AT_ONCE: Duration = Duration::from_secs(10);

#[tokio::test]
async fn a_stop_without_a_server_and_nothing_in_flight_ends_at_once() {
    let mut server = server();
    let (nc, lost) = watched_connection(&server.url()).await;
    let running = AgentService::builder("gone", "o", "n")
        .shutdown_timeout(Duration::from_secs(120))
        .start(nc, nap_agent::echo::EchoAgent::default())
        .await
        .unwrap();
    server.stop().unwrap();
    lost.notified().await;
    tokio::time::timeout(AT_ONCE, running.stop())
        .await
        .expect("stop() waited for a server that is gone");
}

#[tokio::test]
async fn a_stop_with_a_prompt_in_flight_and_no_server_ends_within_its_timeout() {
    let mut server = server();
    let (nc, lost) = watched_connection(&server.url()).await;
    let started = Arc::new(Notify::new());
    let s = started.clone();
    let agent = agent_fn(move |_req: Request, _out: Responder| {
        let s = s.clone();
        async move {
            s.notify_one();
            std::future::pending::<()>().await;
            Ok::<_, AgentError>(())
        }
    });
    let running = AgentService::builder("stuck", "o", "n")
        .shutdown_timeout(Duration::from_secs(2))
        .start(nc.clone(), agent)
        .await
        .unwrap();
    nc.publish_with_reply("agents.prompt.stuck.o.n", nc.new_inbox(), "x".into())
        .await
        .unwrap();
    started.notified().await;
    server.stop().unwrap();
    lost.notified().await;
    tokio::time::timeout(AT_ONCE, running.stop())
        .await
        .expect("stop() outlived its shutdown timeout without a server");
}

#[tokio::test]
async fn a_fleet_agent_stops_at_once_without_a_server() {
    let mut server = server();
    let (nc, lost) = watched_connection(&server.url()).await;
    let fleet = nap_nats::Fleet::start(nc).await.unwrap();
    let mut agents = Vec::new();
    for i in 0..5 {
        let builder = AgentService::builder("fl", "o", format!("n{i}"))
            .shutdown_timeout(Duration::from_secs(120));
        agents.push(
            fleet
                .add(builder, nap_agent::echo::EchoAgent::default())
                .await
                .unwrap(),
        );
    }
    server.stop().unwrap();
    lost.notified().await;
    let all = futures::future::join_all(agents.into_iter().map(|a| a.stop()));
    tokio::time::timeout(AT_ONCE, all)
        .await
        .expect("a fleet's stops waited for a server that is gone");
}
