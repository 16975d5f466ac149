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

/// Requests `$SRV.INFO.agents` and returns the records that answer within 1 s.
pub async fn infos(nc: &async_nats::Client) -> Vec<serde_json::Value> {
    let inbox = nc.new_inbox();
    let mut sub = nc.subscribe(inbox.clone()).await.unwrap();
    nc.publish_with_reply("$SRV.INFO.agents", inbox, "".into())
        .await
        .unwrap();
    let mut out = Vec::new();
    while let Ok(Some(msg)) = tokio::time::timeout(Duration::from_millis(750), sub.next()).await {
        if msg.status.is_some() {
            break; // no responders
        }
        out.push(serde_json::from_slice(&msg.payload).unwrap());
    }
    out
}
