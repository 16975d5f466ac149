//! Every wire example of the spec's Appendix B, decoded and re-encoded,
//! with the exact bytes pinned by insta snapshots.
#![allow(clippy::unwrap_used, missing_docs)]

use std::time::{Duration, Instant};

use insta::assert_snapshot;
use nap_proto::{
    AgentInfo, Attachment, Chunk, Envelope, EnvelopeError, ErrorBody, ErrorCode, Heartbeat,
    PayloadForm, Received, ResponseData, ResponseStream, ServiceError, StatusCode, StreamEvent,
};

/// The pre-idiom shape of one step, so that each test reads as a table:
/// feed one input, get what it produced (a violation as `Err`).
trait Step {
    fn handle(
        &mut self,
        t: Instant,
        msg: Received<'_>,
    ) -> Result<Option<StreamEvent>, nap_proto::StreamViolation>;
}

impl Step for ResponseStream {
    fn handle(
        &mut self,
        t: Instant,
        msg: Received<'_>,
    ) -> Result<Option<StreamEvent>, nap_proto::StreamViolation> {
        self.handle_message(t, msg);
        match self.poll() {
            Some(StreamEvent::Violation(v)) => Err(v),
            other => Ok(other),
        }
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

fn compact(pretty: &str) -> String {
    serde_json::to_string(&serde_json::from_str::<serde_json::Value>(pretty).unwrap()).unwrap()
}

#[test]
fn b1_plain_text_request() {
    let wire = b"summarize the attached report";
    let (env, form) = Envelope::decode_with_form(wire).unwrap();
    assert_eq!(form, PayloadForm::PlainText);
    assert_eq!(env.prompt, "summarize the attached report");
    // "Parsed as" the JSON form.
    assert_snapshot!(text(&env.encode()), @r#"{"prompt":"summarize the attached report"}"#);
    // Re-encoded in its own (shortest) form, byte for byte.
    assert_eq!(env.encode_shortest(), wire);
}

#[test]
fn b2_json_request_text_only() {
    let wire = br#"{"prompt":"summarize the attached report"}"#;
    let (env, form) = Envelope::decode_with_form(wire).unwrap();
    assert_eq!(form, PayloadForm::Json);
    assert_snapshot!(text(&env.encode()), @r#"{"prompt":"summarize the attached report"}"#);
    assert_eq!(env.encode(), wire);
}

#[test]
fn b3_json_request_with_attachment() {
    // The spec elides the content ("JVBERi0xLjQKJe..."), which is not valid
    // base64 as printed; a strict decoder (§5.2) must refuse it with 400.
    let as_printed = br#"{"prompt":"summarize","attachments":[{"filename":"report.pdf","content":"JVBERi0xLjQKJe..."}]}"#;
    let err = Envelope::decode(as_printed).unwrap_err();
    assert!(matches!(err, EnvelopeError::Attachments(_)), "{err}");
    assert_eq!(err.status(), StatusCode::BadRequest);

    // The same example with the elided content completed ("%PDF-1.4\n%âãÏÓ\n").
    let wire = br#"{"prompt":"summarize","attachments":[{"filename":"report.pdf","content":"JVBERi0xLjQKJeLjz9MK"}]}"#;
    let env = Envelope::decode(wire).unwrap();
    assert_eq!(env.attachments[0].filename, "report.pdf");
    assert_eq!(env.attachments[0].content, b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n");
    assert_snapshot!(text(&env.encode()), @r#"{"prompt":"summarize","attachments":[{"filename":"report.pdf","content":"JVBERi0xLjQKJeLjz9MK"}]}"#);
    assert_eq!(env.encode(), wire);

    // Built from parts, a caller produces the same bytes.
    let built = Envelope::text("summarize").with_attachment(Attachment::new(
        "report.pdf",
        b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec(),
    ));
    assert_eq!(built.encode(), wire);
}

#[test]
fn b4_response_chunk_string() {
    let wire = br#"{"type":"response","data":"Hello, world."}"#;
    let chunk = Chunk::decode(wire).unwrap();
    assert_eq!(chunk, Chunk::text("Hello, world."));
    assert_snapshot!(text(&chunk.encode()), @r#"{"type":"response","data":"Hello, world."}"#);
}

#[test]
fn b5_response_chunk_object() {
    let wire = br#"{"type":"response","data":{"text":"Hello, world."}}"#;
    let chunk = Chunk::decode(wire).unwrap();
    let Chunk::Response(data @ ResponseData::Object { .. }) = &chunk else {
        panic!("expected object form, got {chunk:?}")
    };
    assert_eq!(data.text(), "Hello, world.");
    assert_snapshot!(text(&chunk.encode()), @r#"{"type":"response","data":{"text":"Hello, world."}}"#);
}

#[test]
fn b6_status_ack() {
    let wire = br#"{"type":"status","data":"ack"}"#;
    assert_eq!(Chunk::decode(wire).unwrap(), Chunk::ACK);
    assert_snapshot!(text(&Chunk::ACK.encode()), @r#"{"type":"status","data":"ack"}"#);
}

#[test]
fn b7_query_chunk() {
    let wire = br#"{"type":"query","data":{"id":"a8f1c2e4-9b63-4d7e-aaaa-112233445566","reply_subject":"_INBOX.Xj7k9Q2pA","prompt":"Confirm? (yes/no)"}}"#;
    let chunk = Chunk::decode(wire).unwrap();
    let Chunk::Query(q) = &chunk else {
        panic!("expected query")
    };
    assert_eq!(q.id, "a8f1c2e4-9b63-4d7e-aaaa-112233445566");
    assert_eq!(q.reply_subject, "_INBOX.Xj7k9Q2pA");
    assert_eq!(q.prompt, "Confirm? (yes/no)");
    assert_snapshot!(text(&chunk.encode()), @r#"{"type":"query","data":{"id":"a8f1c2e4-9b63-4d7e-aaaa-112233445566","reply_subject":"_INBOX.Xj7k9Q2pA","prompt":"Confirm? (yes/no)"}}"#);
}

#[test]
fn b8_query_reply_plain_text() {
    let env = Envelope::decode(b"yes").unwrap();
    assert_eq!(env, Envelope::text("yes"));
    assert_snapshot!(text(&env.encode_shortest()), @"yes");
}

#[test]
fn b9_terminator() {
    let t = Instant::now();
    let msg = Received::body(b"");
    assert!(msg.is_terminator());
    let mut s = ResponseStream::new(t, Duration::from_secs(60));
    assert_eq!(s.handle(t, msg).unwrap(), Some(StreamEvent::End));
}

#[test]
fn b10_error_signal_then_terminator() {
    let body =
        br#"{"error":"rate_limited","message":"Too many concurrent requests","retry_after_s":30}"#;
    let sent = ServiceError::new(StatusCode::TooManyRequests, "rate limited").with_body(
        ErrorBody::new("rate_limited", "Too many concurrent requests")
            .with_field("retry_after_s", 30),
    );
    let headers = sent.headers();
    assert_snapshot!(
        headers.iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>().join("\n"),
        @r"
    Nats-Service-Error-Code: 429
    Nats-Service-Error: rate limited
    "
    );
    assert_snapshot!(text(&sent.body_bytes()), @r#"{"error":"rate_limited","message":"Too many concurrent requests","retry_after_s":30}"#);
    assert_eq!(sent.body_bytes(), body);

    let t = Instant::now();
    let mut s = ResponseStream::new(t, Duration::from_secs(60));
    let wire_headers = [
        ("Nats-Service-Error-Code", "429"),
        ("Nats-Service-Error", "rate limited"),
    ];
    let Some(StreamEvent::Error(err)) = s
        .handle(t, Received::with_headers(&wire_headers, body))
        .unwrap()
    else {
        panic!("expected an error")
    };
    assert_eq!(err.code, ErrorCode::Listed(StatusCode::TooManyRequests));
    assert_eq!(err.message(), "Too many concurrent requests");
    assert_eq!(err.body.as_ref().unwrap().extra["retry_after_s"], 30);
    assert_eq!(
        s.handle(t, Received::body(b"")).unwrap(),
        Some(StreamEvent::End)
    );
}

const B11: &str = r#"{"agent":"claude-code","owner":"aconnolly","session":"synadia-com-2","instance_id":"VMKS6MHK71PCPWGY38A7N5","ts":"2026-04-28T14:23:01Z","interval_s":30}"#;

#[test]
fn b11_heartbeat() {
    let hb = Heartbeat::decode(B11.as_bytes()).unwrap();
    assert_eq!(hb.interval_s.secs(), 30.0);
    assert_eq!(hb.session.as_deref(), Some("synadia-com-2"));
    assert_snapshot!(text(&hb.encode()), @r#"{"agent":"claude-code","owner":"aconnolly","session":"synadia-com-2","instance_id":"VMKS6MHK71PCPWGY38A7N5","ts":"2026-04-28T14:23:01Z","interval_s":30}"#);
}

#[test]
fn b11a_status_reply_has_heartbeat_shape() {
    // Request: empty body. Reply: exactly the B.11 shape.
    let reply = Heartbeat::decode(B11.as_bytes()).unwrap();
    assert_eq!(text(&reply.encode()), B11);
}

const B12: &str = r#"{
  "name": "agents",
  "id": "VMKS6MHK71PCPWGY38A7N5",
  "version": "0.3.0",
  "description": "Claude Code — synadia-com-2",
  "metadata": {
    "agent": "claude-code",
    "owner": "aconnolly",
    "session": "synadia-com-2",
    "protocol_version": "0.3"
  },
  "endpoints": [
    {
      "name": "prompt",
      "subject": "agents.prompt.claude-code.aconnolly.synadia-com-2",
      "queue_group": "agents",
      "metadata": {
        "max_payload": "1MB",
        "attachments_ok": true
      }
    },
    {
      "name": "status",
      "subject": "agents.status.claude-code.aconnolly.synadia-com-2",
      "queue_group": "agents"
    }
  ]
}"#;

#[test]
fn b12_service_info() {
    let info = AgentInfo::parse(B12.as_bytes()).unwrap();
    assert_eq!(info.id, "VMKS6MHK71PCPWGY38A7N5");
    assert_eq!(info.metadata.agent, "claude-code");
    assert_eq!(info.metadata.session.as_deref(), Some("synadia-com-2"));
    assert_eq!(info.metadata.protocol_version, nap_proto::PROTOCOL_VERSION);
    assert_eq!(
        info.prompt.subject,
        "agents.prompt.claude-code.aconnolly.synadia-com-2"
    );
    assert_eq!(info.prompt.queue_group.as_deref(), Some("agents"));
    assert_eq!(info.prompt.max_payload.bytes(), 1 << 20);
    assert!(info.prompt.attachments_ok);
    assert_eq!(info.instance_name(), Some("synadia-com-2"));
    assert_eq!(
        info.status.as_ref().unwrap().queue_group.as_deref(),
        Some("agents")
    );
    // Re-encoded unchanged for relaying (§3.2), compact on the wire.
    assert_eq!(text(&info.encode()), compact(B12));
    assert_snapshot!(text(&info.encode()), @r#"{"name":"agents","id":"VMKS6MHK71PCPWGY38A7N5","version":"0.3.0","description":"Claude Code — synadia-com-2","metadata":{"agent":"claude-code","owner":"aconnolly","session":"synadia-com-2","protocol_version":"0.3"},"endpoints":[{"name":"prompt","subject":"agents.prompt.claude-code.aconnolly.synadia-com-2","queue_group":"agents","metadata":{"max_payload":"1MB","attachments_ok":true}},{"name":"status","subject":"agents.status.claude-code.aconnolly.synadia-com-2","queue_group":"agents"}]}"#);
}
