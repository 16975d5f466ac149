//! Reliability: a request whose NATS header block is malformed must not
//! disconnect the agent that receives it.
//!
//! nats-server checks the framing of `HPUB` (the two lengths) but not what
//! the header block says, so anyone allowed to publish on a prompt subject
//! can send one. Unpatched async-nats 0.51 treats such a block as a broken
//! connection and reconnects, losing the prompts that arrive meanwhile; nap
//! carries a patched copy (`patches/async-nats/PATCH.md`) that delivers the
//! message without headers and reports a client error instead.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/scenario.rs"]
mod scenario;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use async_nats::{ClientError, Message};
use futures::StreamExt;
use futures::future::join_all;
use nap_agent::echo::EchoAgent;
use nap_nats::AgentService;
use nap_nats::{AgentHandle, Event};
use nap_proto::{Chunk, DiscoveryFilter, StatusToken};
use scenario::{PATIENCE, caller, connect, server, soon, sync};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// Normal prompts sent through nap's caller.
const PROMPTS: usize = 200;
/// One raw `HPUB` request is published before every this many prompts.
const RAW_EVERY: usize = 10;

/// Header blocks the server forwards unchanged and async-nats 0.51 cannot
/// parse. (A zero-length header block is not among them: the server
/// delivers that as a plain `MSG`.)
const MALFORMED: &[(&str, &[u8])] = &[
    ("empty version line", b"\r\n\r\n"),
    ("wrong version", b"NATS/2.0\r\n\r\n"),
    ("not a NATS version line", b"HTTP/1.1 200 OK\r\n\r\n"),
    ("status is not a number", b"NATS/1.0 abc\r\n\r\n"),
    ("status out of range", b"NATS/1.0 99999 Too Big\r\n\r\n"),
    (
        "header line without a colon",
        b"NATS/1.0\r\nNoColon\r\n\r\n",
    ),
    (
        "header name with a space",
        b"NATS/1.0\r\nBad Name: v\r\n\r\n",
    ),
    (
        "header name not ASCII",
        "NATS/1.0\r\nN\u{e4}me: v\r\n\r\n".as_bytes(),
    ),
    (
        "header value not UTF-8",
        b"NATS/1.0\r\nX-Bin: \xff\xfe\r\n\r\n",
    ),
];

/// A well-formed header block, sent the same raw way as a control.
const VALID: (&str, &[u8]) = ("valid", b"NATS/1.0\r\nX-Test: ok\r\n\r\n");

/// A plain TCP connection to the server that speaks the client protocol by
/// hand, so it can publish header blocks no client library would build.
struct RawPublisher {
    reader: BufReader<tokio::net::tcp::OwnedReadHalf>,
    writer: tokio::net::tcp::OwnedWriteHalf,
}

impl RawPublisher {
    async fn connect(port: u16) -> RawPublisher {
        let stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let (read, writer) = stream.into_split();
        let mut raw = RawPublisher {
            reader: BufReader::new(read),
            writer,
        };
        let info = raw.line().await;
        assert!(info.starts_with("INFO "), "{info}");
        raw.writer
            .write_all(
                b"CONNECT {\"verbose\":false,\"pedantic\":false,\"headers\":true,\
                  \"no_responders\":true,\"protocol\":1}\r\n",
            )
            .await
            .unwrap();
        raw.ping().await;
        raw
    }

    async fn line(&mut self) -> String {
        let mut line = String::new();
        let n = soon(self.reader.read_line(&mut line)).await.unwrap();
        assert!(n > 0, "the server closed the raw connection");
        line
    }

    /// Sends PING and reads up to the PONG: the server has then processed
    /// everything sent before, and rejected none of it.
    async fn ping(&mut self) {
        self.writer.write_all(b"PING\r\n").await.unwrap();
        loop {
            let line = self.line().await;
            match line.trim_end() {
                "PONG" => return,
                "PING" => self.writer.write_all(b"PONG\r\n").await.unwrap(),
                // Newer servers send an updated INFO after CONNECT.
                info if info.starts_with("INFO ") => {}
                other => panic!("the server answered the raw publisher with {other:?}"),
            }
        }
    }

    /// `HPUB subject reply <header bytes> <total bytes>`, header block and
    /// payload as given.
    async fn hpub(&mut self, subject: &str, reply: &str, header: &[u8], payload: &[u8]) {
        let mut op = format!(
            "HPUB {subject} {reply} {} {}\r\n",
            header.len(),
            header.len() + payload.len()
        )
        .into_bytes();
        op.extend_from_slice(header);
        op.extend_from_slice(payload);
        op.extend_from_slice(b"\r\n");
        self.writer.write_all(&op).await.unwrap();
    }
}

/// One normal prompt through nap's caller: the events it saw, in order.
async fn prompt(handle: &AgentHandle, text: String) -> Result<Vec<String>, String> {
    let mut stream = handle.prompt(text).await.map_err(|e| e.to_string())?;
    let mut seen = Vec::new();
    loop {
        let Ok(next) = tokio::time::timeout(PATIENCE, stream.next()).await else {
            return Err(format!("no reply for {PATIENCE:?} after {seen:?}"));
        };
        let Some(event) = next else { break };
        match event.map_err(|e| format!("{e} after {seen:?}"))? {
            Event::Ack => seen.push("ack".to_owned()),
            Event::Response(data) => seen.push(format!("text:{}", data.text())),
            Event::End => seen.push("end".to_owned()),
            other => seen.push(format!("{other:?}")),
        }
    }
    Ok(seen)
}

/// Whether `msgs` is one complete reply stream: the ack first (§6.4), the
/// response chunks, the terminator last (§6.5); returns the text.
fn complete_text(msgs: &[Message]) -> Result<String, String> {
    let describe = || {
        msgs.iter()
            .map(|m| String::from_utf8_lossy(&m.payload).into_owned())
            .collect::<Vec<_>>()
    };
    let (first, last) = match (msgs.first(), msgs.last()) {
        (Some(first), Some(last)) if msgs.len() >= 2 => (first, last),
        _ => return Err(format!("incomplete stream {:?}", describe())),
    };
    if !matches!(
        Chunk::decode(&first.payload),
        Ok(Chunk::Status(StatusToken::Ack))
    ) {
        return Err(format!("no ack first: {:?}", describe()));
    }
    // §6.5: zero bytes, no headers.
    if !(last.payload.is_empty() && last.headers.is_none()) {
        return Err(format!("no terminator last: {:?}", describe()));
    }
    let mut text = String::new();
    for msg in &msgs[1..msgs.len() - 1] {
        match Chunk::decode(&msg.payload) {
            Ok(Chunk::Response(data)) => text.push_str(data.text()),
            other => return Err(format!("unexpected chunk {other:?} in {:?}", describe())),
        }
    }
    Ok(text)
}

#[tokio::test]
async fn malformed_header_blocks_neither_disconnect_the_agent_nor_lose_prompts() {
    let server = server();

    // The agent's own connection, with its client errors collected.
    let (errors_tx, mut errors_rx) = mpsc::unbounded_channel();
    let agent_nc = async_nats::ConnectOptions::new()
        .event_callback(move |event| {
            let errors_tx = errors_tx.clone();
            async move {
                if let async_nats::Event::ClientError(error) = event {
                    errors_tx.send(error).ok();
                }
            }
        })
        .connect(server.url())
        .await
        .unwrap();
    let _running = AgentService::builder("echo", "reliability", "headers")
        .start(agent_nc.clone(), EchoAgent::default())
        .await
        .unwrap();
    let subject = "agents.prompt.echo.reliability.headers";

    let client = caller(&server).await;
    let handle = client
        .find(DiscoveryFilter {
            agent: Some("echo".into()),
            owner: Some("reliability".into()),
            name: Some("headers".into()),
            ..DiscoveryFilter::any()
        })
        .await
        .unwrap();

    // The replies to the raw requests, read with plain async-nats.
    let observer = connect(&server).await;
    let mut replies = observer.subscribe("raw.reply.>").await.unwrap();
    sync(&observer).await;

    let mut raw = RawPublisher::connect(server.port()).await;
    let kinds: Vec<(&str, &[u8])> = MALFORMED.iter().copied().chain([VALID]).collect();
    let mut sent = BTreeMap::new(); // reply subject -> (kind, payload)
    let mut lost = Vec::new();
    for batch in 0..PROMPTS / RAW_EVERY {
        let (kind, header) = kinds[batch % kinds.len()];
        let reply = format!("raw.reply.{batch}");
        let payload = format!("raw request {batch} ({kind})");
        raw.hpub(subject, &reply, header, payload.as_bytes()).await;
        sent.insert(reply, (kind, payload));

        // Prompts right behind it, all in flight at once.
        let prompts = (0..RAW_EVERY).map(|i| {
            let text = format!("prompt {}", batch * RAW_EVERY + i);
            let handle = &handle;
            async move { (text.clone(), prompt(handle, text).await) }
        });
        for (text, seen) in join_all(prompts).await {
            let complete = seen.as_ref().is_ok_and(|seen| {
                seen.first().map(String::as_str) == Some("ack")
                    && seen.last().map(String::as_str) == Some("end")
                    && seen
                        .iter()
                        .filter_map(|s| s.strip_prefix("text:"))
                        .collect::<String>()
                        == text
            });
            if !complete {
                lost.push(format!("{text} (after {kind}): {seen:?}"));
            }
        }
    }
    // The server took every raw request (no -ERR, connection still open).
    raw.ping().await;

    // The replies to the raw requests, up to one terminator each.
    let mut streams: BTreeMap<String, Vec<Message>> = BTreeMap::new();
    let mut ended = 0;
    while ended < sent.len() {
        let Ok(Some(msg)) = tokio::time::timeout(PATIENCE, replies.next()).await else {
            break; // some never end: reported below
        };
        if msg.payload.is_empty() && msg.headers.is_none() {
            ended += 1;
        }
        streams
            .entry(msg.subject.to_string())
            .or_default()
            .push(msg);
    }
    let mut unanswered = Vec::new();
    for (reply, (kind, payload)) in &sent {
        let msgs = streams.get(reply).map(Vec::as_slice).unwrap_or_default();
        match complete_text(msgs) {
            Ok(text) if &text == payload => {}
            Ok(text) => unanswered.push(format!("{kind}: echoed {text:?}, sent {payload:?}")),
            Err(why) => unanswered.push(format!("{kind}: {why}")),
        }
    }
    let connects = agent_nc.statistics().connects.load(Ordering::Relaxed);
    let summary = format!(
        "agent connects: {connects}; {} of {PROMPTS} prompts not fully answered: {lost:#?}; \
         {} of {} raw requests without a complete reply: {unanswered:#?}",
        lost.len(),
        unanswered.len(),
        sent.len()
    );

    // (a) The agent's connection never dropped.
    assert_eq!(connects, 1, "the agent reconnected; {summary}");
    // (b) Every normal prompt was fully answered (ack, text, terminator).
    assert!(lost.is_empty(), "{summary}");
    // (c) Every raw request, malformed or not, was delivered to the agent
    // and answered in full: the agent saw its payload as the prompt.
    assert!(unanswered.is_empty(), "{summary}");

    // Each malformed header block was reported as a client error.
    let malformed = sent.values().filter(|(kind, _)| *kind != VALID.0).count();
    for _ in 0..malformed {
        let error = soon(errors_rx.recv()).await.unwrap();
        assert!(
            matches!(&error, ClientError::Other(text) if text.contains("malformed header block")),
            "{error:?}"
        );
    }
}
