//! The reliability suite: the ways NATS core can lose data (slow readers,
//! reconnects, bursts, shutdown, a lost node), each against real
//! nats-server processes. Every scenario ends in one of two ways: complete,
//! or a typed error that says what was lost. None of them is a timed
//! assertion; the timeouts only keep a broken build from hanging.
#![allow(clippy::unwrap_used, missing_docs)]

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt;
use nap_agent::{AgentError, Request, Responder, agent_fn};
use nap_nats::{AgentService, Error};
use nap_nats::{Client, Event, PromptOptions};
use nap_proto::{Chunk, DiscoveryFilter, Loss, Received, ResponseStream, StatusCode, StreamEvent};
use nap_testkit::{Cluster, NatsServer};
use tokio::sync::Notify;

const CHUNKS: usize = 100_000;

async fn connect(url: &str) -> async_nats::Client {
    async_nats::connect(url).await.unwrap()
}

async fn find(client: &Client, agent: &str) -> nap_nats::AgentHandle {
    client
        .find(DiscoveryFilter {
            agent: Some(agent.into()),
            ..DiscoveryFilter::any()
        })
        .await
        .unwrap()
}

/// An agent that streams `n` one-character chunks as fast as it can, then
/// says so on `sent`.
fn firehose(n: usize, sent: Arc<Notify>) -> impl nap_agent::Agent {
    agent_fn(move |_req: Request, out: Responder| {
        let sent = sent.clone();
        async move {
            for _ in 0..n {
                out.text("x").await?;
            }
            sent.notify_one();
            Ok::<_, AgentError>(())
        }
    })
}

/// Waits until the caller's connection has received `n` messages: the
/// reply is then entirely in the caller's process, unread.
async fn received_by(nats: &async_nats::Client, n: u64) {
    tokio::time::timeout(Duration::from_secs(120), async {
        while nats.statistics().in_messages.load(Ordering::Relaxed) < n {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the reply never reached the caller");
}

/// Prompts a [`firehose`] of [`CHUNKS`] chunks and returns its stream,
/// unread, once the whole reply (ack, chunks, terminator) has reached the
/// caller's process.
async fn unread_long_reply(
    server: &NatsServer,
    options: PromptOptions,
) -> (nap_nats::PromptStream, nap_nats::RunningAgent) {
    let sent = Arc::new(Notify::new());
    let agent = AgentService::builder("hose", "rel", "a")
        .start(connect(&server.url()).await, firehose(CHUNKS, sent.clone()))
        .await
        .unwrap();
    let nats = connect(&server.url()).await;
    let client = Client::new(nats.clone()).await.unwrap();
    let hose = find(&client, "hose").await;
    let before = nats.statistics().in_messages.load(Ordering::Relaxed);
    let stream = hose.prompt_with("go", options).await.unwrap();
    sent.notified().await;
    received_by(&nats, before + CHUNKS as u64 + 2).await;
    (stream, agent)
}

/// A caller that reads nothing until the whole long reply has arrived
/// still gets every chunk: the NATS client's per-subscription buffer
/// (65,536 messages) would have dropped a third of them silently.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_far_behind_gets_every_chunk() {
    let server = NatsServer::start().unwrap();
    let (mut stream, _agent) = unread_long_reply(&server, PromptOptions::default()).await;
    let mut chunks = 0;
    let end = loop {
        match stream.next().await {
            Some(Ok(Event::Response(_))) => chunks += 1,
            Some(Ok(Event::End)) => break Ok(()),
            Some(Ok(_)) => {}
            Some(Err(e)) => break Err(e),
            None => panic!("the stream ended without an outcome"),
        }
    };
    end.unwrap();
    assert_eq!(chunks, CHUNKS, "chunks lost");
}

/// The same reader with a small memory budget: the stream ends with a
/// typed error instead of growing without bound, and never claims success.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_over_its_memory_budget_gets_a_typed_error() {
    let server = NatsServer::start().unwrap();
    let options = PromptOptions::default().with_max_bytes(1 << 20);
    let (mut stream, _agent) = unread_long_reply(&server, options).await;
    let mut outcome = None;
    while let Some(item) = stream.next().await {
        match item {
            Ok(Event::End) => panic!("a truncated reply ended as complete"),
            Ok(_) => {}
            Err(e) => outcome = Some(e),
        }
    }
    assert!(
        matches!(
            outcome,
            Some(Error::Lost(Loss::BufferFull { limit: 1_048_576 }))
        ),
        "{outcome:?}"
    );
}

/// The server restarts while a reply streams, and the caller reconnects
/// later than the agent: lines published in between are gone. The caller
/// must not report the rest as a complete reply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restart_mid_stream_is_an_error_never_a_short_reply() {
    let mut server = NatsServer::start().unwrap();
    // Long enough that the agent is still streaming when the caller is back.
    let lines = 300;
    let halfway = Arc::new(Notify::new());
    let h = halfway.clone();
    let agent = agent_fn(move |_req: Request, out: Responder| {
        let h = h.clone();
        async move {
            for i in 0..lines {
                if i == 30 {
                    h.notify_one();
                }
                // A publish error is a lost line: keep going, as a
                // careless agent would, and let the caller judge.
                let _ = out.text(format!("line {i}\n")).await;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Ok::<_, AgentError>(())
        }
    });
    let _agent = AgentService::builder("lines", "rel", "c")
        .start(connect(&server.url()).await, agent)
        .await
        .unwrap();
    // The caller comes back 1.5 s after the agent does.
    let caller_nats = async_nats::ConnectOptions::new()
        .reconnect_delay_callback(|_| Duration::from_millis(1500))
        .connect(server.url())
        .await
        .unwrap();
    let client = Client::new(caller_nats).await.unwrap();
    let handle = find(&client, "lines").await;
    let options = PromptOptions::inactivity_timeout(Duration::from_secs(10));
    let mut stream = handle.prompt_with("go", options).await.unwrap();
    let reader = tokio::spawn(async move {
        let mut text = String::new();
        loop {
            match stream.next().await {
                Some(Ok(Event::Response(d))) => text.push_str(d.text()),
                Some(Ok(Event::End)) => return Ok(text),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err((e, text)),
                None => panic!("no outcome"),
            }
        }
    });
    halfway.notified().await;
    server.restart().unwrap();
    match tokio::time::timeout(Duration::from_secs(60), reader)
        .await
        .unwrap()
        .unwrap()
    {
        Ok(text) => assert_eq!(
            text.lines().count(),
            lines,
            "a short reply ended as complete"
        ),
        Err((e, _)) => assert!(
            matches!(
                e,
                Error::Lost(Loss::Reconnected) | Error::InactivityTimeout { .. }
            ),
            "{e:?}"
        ),
    }
}

/// How one burst stream ended.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    answered: bool,
    refused: bool,
    ended: bool,
}

/// A burst far past the agent's concurrency limit: every prompt is
/// answered or refused with 429, none is dropped unanswered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_100000_prompts_is_answered_or_refused_in_full() {
    const PROMPTS: usize = 100_000;
    let server = NatsServer::start().unwrap();
    let agent_nats = nap_nats::connect_options()
        .connect(server.url())
        .await
        .unwrap();
    let _agent = AgentService::builder("echo", "rel", "d")
        .start(agent_nats.clone(), nap_agent::echo::EchoAgent::default())
        .await
        .unwrap();
    // The test's own reader must not be the one dropping replies.
    let nc = async_nats::ConnectOptions::new()
        .subscription_capacity(1 << 21)
        .connect(server.url())
        .await
        .unwrap();
    let mut replies = nc.subscribe("burst.*").await.unwrap();
    nc.flush().await.unwrap();
    let ended = Arc::new(AtomicUsize::new(0));
    let counter = ended.clone();
    let reader = tokio::spawn(async move {
        let mut streams: HashMap<usize, (ResponseStream, Tally)> = HashMap::new();
        let t0 = std::time::Instant::now();
        while counter.load(Ordering::Relaxed) < PROMPTS {
            let Some(msg) = replies.next().await else {
                break;
            };
            let i: usize = msg.subject.rsplit('.').next().unwrap().parse().unwrap();
            let (decoder, tally) = streams.entry(i).or_insert_with(|| {
                (
                    ResponseStream::new(t0, Duration::from_secs(3600)),
                    Tally::default(),
                )
            });
            match &msg.headers {
                Some(h) => {
                    let h: Vec<(String, String)> = h
                        .iter()
                        .flat_map(|(k, vs)| vs.iter().map(move |v| (k.to_string(), v.to_string())))
                        .collect();
                    decoder.handle_message(t0, Received::with_headers(&h, &msg.payload));
                }
                None => decoder.handle_message(t0, Received::body(&msg.payload)),
            }
            match decoder.poll() {
                Some(StreamEvent::Response(_)) => tally.answered = true,
                Some(StreamEvent::Error(e)) => {
                    assert_eq!(e.code.status(), Some(StatusCode::TooManyRequests), "{e}");
                    tally.refused = true;
                }
                Some(StreamEvent::End) => {
                    tally.ended = true;
                    counter.fetch_add(1, Ordering::Relaxed);
                }
                Some(StreamEvent::Ack) | None => {}
                Some(other) => panic!("stream {i}: {other:?}"),
            }
        }
        streams
    });
    for i in 0..PROMPTS {
        nc.publish_with_reply(
            "agents.prompt.echo.rel.d",
            format!("burst.{i}"),
            "hi".into(),
        )
        .await
        .unwrap();
    }
    nc.flush().await.unwrap();
    let outcome = tokio::time::timeout(Duration::from_secs(90), reader).await;
    let done = ended.load(Ordering::Relaxed);
    let streams = outcome
        .unwrap_or_else(|_| {
            panic!(
                "only {done} of {PROMPTS} streams ended; agent connection {:?}; caller {:?}",
                agent_nats.statistics(),
                nc.statistics()
            )
        })
        .unwrap();
    assert_eq!(streams.len(), PROMPTS);
    let refused = streams.values().filter(|(_, t)| t.refused).count();
    for (i, (_, t)) in &streams {
        assert!(t.ended && (t.answered ^ t.refused), "stream {i}: {t:?}");
    }
    eprintln!(
        "{PROMPTS} prompts: {} answered, {refused} refused",
        PROMPTS - refused
    );
}

/// `stop` with prompts in flight: each finishes, and every terminator is
/// on the server when `stop` returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_with_prompts_in_flight_ends_every_stream() {
    let server = NatsServer::start().unwrap();
    let started = Arc::new(AtomicUsize::new(0));
    let s = started.clone();
    let agent = agent_fn(move |req: Request, out: Responder| {
        let s = s.clone();
        async move {
            s.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(300)).await;
            out.text(req.prompt().to_owned()).await?;
            Ok::<_, AgentError>(())
        }
    });
    let running = AgentService::builder("slow", "rel", "e")
        .start(connect(&server.url()).await, agent)
        .await
        .unwrap();
    let nc = connect(&server.url()).await;
    let mut subs = Vec::new();
    for i in 0..5 {
        let inbox = nc.new_inbox();
        let sub = nc.subscribe(inbox.clone()).await.unwrap();
        nc.publish_with_reply("agents.prompt.slow.rel.e", inbox, format!("p{i}").into())
            .await
            .unwrap();
        subs.push(sub);
    }
    while started.load(Ordering::SeqCst) < 5 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    running.stop().await;
    for (i, mut sub) in subs.into_iter().enumerate() {
        let mut got = Vec::new();
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(10), sub.next())
                .await
                .unwrap_or_else(|_| panic!("prompt {i}: no terminator after stop"))
                .unwrap();
            if msg.payload.is_empty() && msg.headers.is_none() {
                break;
            }
            got.push(Chunk::decode(&msg.payload).unwrap());
        }
        assert_eq!(got, [Chunk::ACK, Chunk::text(format!("p{i}"))]);
    }
}

/// A 3-node cluster loses the node one of two instances is connected to,
/// with prompts in flight on both. Each of them is answered completely or
/// fails with a typed error, and prompts are answered again afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_losing_the_agents_node_fails_over() {
    let mut cluster = Cluster::start(3).unwrap();
    let urls = cluster.urls();
    let slow_echo = || {
        agent_fn(|req: Request, out: Responder| async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            out.text(req.prompt().to_owned()).await?;
            Ok::<_, AgentError>(())
        })
    };
    let _a = AgentService::builder("echo", "rel", "f")
        .start(connect(&urls[0]).await, slow_echo())
        .await
        .unwrap();
    let _b = AgentService::builder("echo", "rel", "f")
        .start(connect(&urls[1]).await, slow_echo())
        .await
        .unwrap();
    let client = Client::new(connect(&urls[2]).await).await.unwrap();
    let handle = find(&client, "echo").await;
    let options = PromptOptions::inactivity_timeout(Duration::from_secs(5));
    let ask = move |i: usize| {
        let handle = handle.clone();
        let options = options.clone();
        async move {
            let text = format!("prompt {i}");
            match handle.prompt_with(text.as_str(), options).await {
                Ok(stream) => stream.text().await.map(|t| (t, text)),
                Err(e) => Err(e),
            }
        }
    };
    let judge = |outcome: Result<(String, String), Error>| match outcome {
        Ok((got, sent)) => {
            assert_eq!(got, sent, "an answer was cut short");
            true
        }
        // The instance whose node went away may reconnect to another node
        // mid-stream: it then ends the stream with 500 (part of it may be
        // lost) rather than a clean end.
        Err(Error::Remote(e)) => {
            assert_eq!(e.code.status(), Some(StatusCode::Internal), "{e}");
            false
        }
        Err(e) => {
            assert!(
                matches!(
                    e,
                    Error::InactivityTimeout { .. } | Error::Lost(_) | Error::NoResponders { .. }
                ),
                "{e:?}"
            );
            false
        }
    };
    // Ten prompts in flight, spread over both instances by the queue group.
    let in_flight: Vec<_> = (0..10).map(|i| tokio::spawn(ask(i))).collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    cluster.nodes_mut()[0].stop().unwrap();
    for task in in_flight {
        judge(task.await.unwrap());
    }
    let mut answered_after = 0;
    for i in 10..200 {
        if judge(ask(i).await) {
            answered_after += 1;
        }
        if answered_after >= 10 {
            break;
        }
    }
    assert!(
        answered_after >= 10,
        "prompts were not answered again after the node was lost"
    );
}

/// The keep-alive timer fires while the agent is blocked in a send (the
/// NATS client's command queue is full while the server is away). The
/// prompt must still finish once the server is back: the keep-alive must
/// not wait for the stream the blocked agent holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keepalive_during_a_blocked_send_does_not_hang_the_prompt() {
    let mut server = NatsServer::start().unwrap();
    let go = Arc::new(Notify::new());
    let g = go.clone();
    let agent = agent_fn(move |_req: Request, out: Responder| {
        let g = g.clone();
        async move {
            g.notified().await;
            // More than the client's command queue holds (2,048 by default).
            for _ in 0..5_000 {
                let _ = out.text("x").await;
            }
            Ok::<_, AgentError>(())
        }
    });
    let running = AgentService::builder("blocked", "rel", "g")
        .keepalive(Some(Duration::from_millis(50)))
        .start(connect(&server.url()).await, agent)
        .await
        .unwrap();
    let nc = connect(&server.url()).await;
    let inbox = nc.new_inbox();
    let mut sub = nc.subscribe(inbox.clone()).await.unwrap();
    nc.publish_with_reply("agents.prompt.blocked.rel.g", inbox, "go".into())
        .await
        .unwrap();
    // The ack: the prompt is in flight.
    tokio::time::timeout(Duration::from_secs(10), sub.next())
        .await
        .unwrap()
        .unwrap();
    server.stop().unwrap();
    go.notify_one();
    // Several keep-alive intervals pass with the agent stuck in a send.
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.restart().unwrap();
    tokio::time::timeout(Duration::from_secs(60), async {
        while running.in_flight() > 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the prompt never finished: its keep-alive waited on the blocked agent");
}

/// A prompt still running when the shutdown timeout passes is not cut off
/// silently: it ends with 500 and its terminator before `stop` returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_past_its_timeout_ends_the_stragglers_with_500() {
    let server = NatsServer::start().unwrap();
    let started = Arc::new(Notify::new());
    let s = started.clone();
    let agent = agent_fn(move |_req: Request, out: Responder| {
        let s = s.clone();
        async move {
            out.text("partial ").await?;
            s.notify_one();
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok::<_, AgentError>(())
        }
    });
    let running = AgentService::builder("forever", "rel", "h")
        .shutdown_timeout(Duration::from_millis(200))
        .start(connect(&server.url()).await, agent)
        .await
        .unwrap();
    let nc = connect(&server.url()).await;
    let inbox = nc.new_inbox();
    let mut sub = nc.subscribe(inbox.clone()).await.unwrap();
    nc.publish_with_reply("agents.prompt.forever.rel.h", inbox, "go".into())
        .await
        .unwrap();
    started.notified().await;
    running.stop().await;
    let mut seen = Vec::new();
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), sub.next())
            .await
            .expect("no terminator after stop")
            .unwrap();
        let end = msg.payload.is_empty() && msg.headers.is_none();
        seen.push(msg);
        if end {
            break;
        }
    }
    assert_eq!(seen.len(), 4, "ack, text, error, terminator: {seen:?}");
    let error = seen[2].headers.as_ref().expect("an error signal");
    assert_eq!(
        error.get(nap_proto::ERROR_CODE_HEADER).map(|v| v.as_str()),
        Some("500")
    );
}

/// The server restarts while a discovery round collects replies: the
/// connection is re-established, replies published meanwhile are gone, so
/// the round fails with a typed error instead of returning a list that may
/// be short.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnect_during_discovery_is_reported_not_a_short_list() {
    let mut server = NatsServer::start().unwrap();
    let url = server.url();
    let _agent = AgentService::builder("echo", "rel", "d")
        .start(
            async_nats::ConnectOptions::new()
                .retry_on_initial_connect()
                .connect(&url)
                .await
                .unwrap(),
            nap_agent::echo::EchoAgent::default(),
        )
        .await
        .unwrap();
    let client = Client::new(connect(&url).await).await.unwrap();
    let patient = nap_proto::DiscoveryConfig {
        stall: Duration::from_secs(4),
        deadline: Duration::from_secs(8),
        ..nap_proto::DiscoveryConfig::default()
    };
    // The round's request, seen on the server: the round is under way.
    let observer = connect(&url).await;
    let mut requests = observer.subscribe("$SRV.INFO.agents").await.unwrap();
    observer.flush().await.unwrap();
    let round = tokio::spawn({
        let client = client.clone();
        async move { client.discover_with(DiscoveryFilter::any(), patient).await }
    });
    requests.next().await.unwrap();
    server.restart().unwrap();
    let outcome = tokio::time::timeout(Duration::from_secs(30), round)
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(outcome, Err(Error::DiscoveryLost(Loss::Reconnected))),
        "{outcome:?}"
    );
    // Once reconnected, discovery works again.
    let found = client.discover(DiscoveryFilter::any()).await;
    assert!(found.is_ok(), "{found:?}");
}
