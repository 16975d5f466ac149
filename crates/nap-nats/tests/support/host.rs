//! Raw-wire helpers for the host tests: they read what the host publishes
//! with plain async-nats, without nap's own caller in the way.
#![allow(dead_code, clippy::unwrap_used)]

use std::time::Duration;

use async_nats::Message;
use futures::StreamExt;
use nap_testkit::NatsServer;

pub fn server() -> NatsServer {
    NatsServer::start().unwrap()
}

pub async fn connect(server: &NatsServer) -> async_nats::Client {
    async_nats::connect(server.url()).await.unwrap()
}

/// Publishes `payload` to `subject` and returns every message on the reply
/// inbox up to and including the terminator (zero bytes, no headers).
pub async fn exchange(
    nc: &async_nats::Client,
    subject: &str,
    payload: impl Into<bytes::Bytes>,
) -> Vec<Message> {
    let inbox = nc.new_inbox();
    let mut sub = nc.subscribe(inbox.clone()).await.unwrap();
    nc.publish_with_reply(subject.to_owned(), inbox, payload.into())
        .await
        .unwrap();
    let mut out = Vec::new();
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), sub.next())
            .await
            .expect("the stream ended without a terminator")
            .unwrap();
        let end = is_terminator(&msg);
        out.push(msg);
        if end {
            return out;
        }
    }
}

pub fn is_terminator(msg: &Message) -> bool {
    msg.payload.is_empty() && msg.headers.is_none()
}

pub fn body(msg: &Message) -> &str {
    std::str::from_utf8(&msg.payload).unwrap()
}

pub fn error_code(msg: &Message) -> Option<String> {
    msg.headers
        .as_ref()
        .and_then(|h| h.get("Nats-Service-Error-Code"))
        .map(|v| v.to_string())
}

/// Asserts `msgs` is exactly: the ack (§6.4), an error signal with
/// `code`, then the terminator (§9.3); returns the description.
pub fn assert_error_stream(msgs: &[Message], code: &str) -> String {
    let bodies: Vec<&str> = msgs.iter().map(body).collect();
    assert_eq!(msgs.len(), 3, "ack, error, terminator; got {bodies:?}");
    assert_eq!(body(&msgs[0]), r#"{"type":"status","data":"ack"}"#);
    assert_eq!(error_code(&msgs[1]).as_deref(), Some(code));
    assert!(is_terminator(&msgs[2]));
    msgs[1]
        .headers
        .as_ref()
        .unwrap()
        .get("Nats-Service-Error")
        .unwrap()
        .to_string()
}

/// Requests `$SRV.INFO.agents` and returns the records that answer: stops
/// at the `expected`-th record, at the server's no-responders status (no
/// `agents` service at all), or after `patience`, whichever comes first.
/// Never decides by a quiet interval, so a slow machine cannot make it miss
/// a record that is on its way.
pub async fn infos_until(
    nc: &async_nats::Client,
    expected: usize,
    patience: Duration,
) -> Vec<serde_json::Value> {
    let inbox = nc.new_inbox();
    let mut sub = nc.subscribe(inbox.clone()).await.unwrap();
    nc.publish_with_reply("$SRV.INFO.agents", inbox, "".into())
        .await
        .unwrap();
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + patience;
    while out.len() < expected || expected == 0 {
        match tokio::time::timeout_at(deadline, sub.next()).await {
            Ok(Some(msg)) if msg.status.is_some() => break, // no responders
            Ok(Some(msg)) => out.push(serde_json::from_slice(&msg.payload).unwrap()),
            Ok(None) | Err(_) => break,
        }
    }
    out
}

/// Requests `$SRV.INFO.agents` and returns exactly `expected` records,
/// failing the test when fewer arrive within 10 s, or when one more arrives
/// within a short look after them. (That look can only miss an extra
/// record, never fail a correct host.) With `expected == 0` the answer must be
/// the server's no-responders status.
pub async fn infos(nc: &async_nats::Client, expected: usize) -> Vec<serde_json::Value> {
    let inbox = nc.new_inbox();
    let mut sub = nc.subscribe(inbox.clone()).await.unwrap();
    nc.publish_with_reply("$SRV.INFO.agents", inbox, "".into())
        .await
        .unwrap();
    let mut out: Vec<serde_json::Value> = Vec::new();
    if expected == 0 {
        // No `agents` service: the server answers with its no-responders
        // status (a caller treats it as an empty list, §4.1).
        let msg = tokio::time::timeout(Duration::from_secs(10), sub.next())
            .await
            .expect("neither a record nor the no-responders status")
            .unwrap();
        assert!(
            msg.status.is_some(),
            "a record although none was expected: {}",
            String::from_utf8_lossy(&msg.payload)
        );
        return out;
    }
    while out.len() < expected {
        let msg = tokio::time::timeout(Duration::from_secs(10), sub.next())
            .await
            .unwrap_or_else(|_| panic!("{} of {expected} $SRV.INFO records: {out:?}", out.len()))
            .unwrap();
        assert!(
            msg.status.is_none(),
            "no responders after {} of {expected} records",
            out.len()
        );
        out.push(serde_json::from_slice(&msg.payload).unwrap());
    }
    let extra = tokio::time::timeout(Duration::from_millis(250), sub.next()).await;
    if let Ok(Some(msg)) = extra {
        panic!(
            "an unexpected record after {expected}: {}",
            String::from_utf8_lossy(&msg.payload)
        );
    }
    out
}
