//! The response-stream decoder (§6, §7, §9.3), fed by hand.
#![allow(clippy::unwrap_used, missing_docs)]

use std::time::{Duration, Instant};

use nap_proto::{ErrorCode, Received, ResponseStream, StatusCode, StreamEvent, StreamViolation};

/// The pre-idiom shape of one step, so that each test reads as a table:
/// feed one input, get what it produced (a violation as `Err`).
trait Step {
    fn handle(
        &mut self,
        t: Instant,
        msg: Received<'_>,
    ) -> Result<Option<StreamEvent>, StreamViolation>;
    fn timeout(&mut self, t: Instant) -> Option<StreamEvent>;
}

impl Step for ResponseStream {
    fn handle(
        &mut self,
        t: Instant,
        msg: Received<'_>,
    ) -> Result<Option<StreamEvent>, StreamViolation> {
        self.handle_message(t, msg);
        match self.poll() {
            Some(StreamEvent::Violation(v)) => Err(v),
            other => Ok(other),
        }
    }

    fn timeout(&mut self, t: Instant) -> Option<StreamEvent> {
        self.handle_timeout(t);
        self.poll()
    }
}

fn stream() -> (ResponseStream, Instant) {
    let t0 = Instant::now();
    (ResponseStream::new(t0, Duration::from_secs(60)), t0)
}

fn body(
    s: &mut ResponseStream,
    t: Instant,
    b: &[u8],
) -> Result<Option<StreamEvent>, StreamViolation> {
    s.handle(t, Received::body(b))
}

#[test]
fn ack_then_chunks_then_end() {
    let (mut s, t) = stream();
    assert_eq!(
        body(&mut s, t, br#"{"type":"status","data":"ack"}"#).unwrap(),
        Some(StreamEvent::Ack)
    );
    let mut text = String::new();
    for part in ["Hel", "lo"] {
        match body(
            &mut s,
            t,
            format!(r#"{{"type":"response","data":"{part}"}}"#).as_bytes(),
        )
        .unwrap()
        {
            Some(StreamEvent::Response(d)) => text.push_str(d.text()),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(text, "Hello");
    assert_eq!(body(&mut s, t, b"").unwrap(), Some(StreamEvent::End));
    assert!(s.is_ended());
    assert_eq!(s.first_was_ack(), Some(true));
    assert_eq!(s.poll_timeout(), None);
}

#[test]
fn object_form_response() {
    let (mut s, t) = stream();
    let ev = body(&mut s, t, br#"{"type":"response","data":{"text":"hi","attachments":[{"filename":"a.txt","content":"aGk="}],"future":1}}"#).unwrap();
    let Some(StreamEvent::Response(d)) = ev else {
        panic!("{ev:?}")
    };
    assert_eq!(d.text(), "hi");
    assert_eq!(d.attachments()[0].content, b"hi");
}

#[test]
fn unknown_chunk_type_is_skipped() {
    let (mut s, t) = stream();
    body(&mut s, t, br#"{"type":"status","data":"ack"}"#).unwrap();
    assert_eq!(
        body(
            &mut s,
            t,
            br#"{"type":"thinking","data":{"anything":[1,2]}}"#
        )
        .unwrap(),
        None
    );
    assert_eq!(
        body(&mut s, t, br#"{"type":"status","data":"warming-up"}"#).unwrap(),
        Some(StreamEvent::Status("warming-up".into()))
    );
    assert!(matches!(
        body(&mut s, t, br#"{"type":"response","data":"x"}"#).unwrap(),
        Some(StreamEvent::Response(_))
    ));
    assert_eq!(body(&mut s, t, b"").unwrap(), Some(StreamEvent::End));
}

#[test]
fn error_then_terminator_is_one_error_then_end() {
    let (mut s, t) = stream();
    body(&mut s, t, br#"{"type":"status","data":"ack"}"#).unwrap();
    let h = [
        ("Nats-Service-Error-Code", "500"),
        ("Nats-Service-Error", "boom"),
    ];
    let ev = s.handle(t, Received::with_headers(&h, b"")).unwrap();
    let Some(StreamEvent::Error(e)) = ev else {
        panic!("{ev:?}")
    };
    assert_eq!(e.code, ErrorCode::Listed(StatusCode::Internal));
    assert_eq!(e.message(), "boom");
    assert!(
        !s.is_ended(),
        "after an error, only the terminator may come"
    );
    assert_eq!(body(&mut s, t, b"").unwrap(), Some(StreamEvent::End));
    assert!(s.is_ended());
}

#[test]
fn a_chunk_after_an_error_is_a_violation() {
    let (mut s, t) = stream();
    let h = [
        ("Nats-Service-Error-Code", "400"),
        ("Nats-Service-Error", "bad"),
    ];
    s.handle(t, Received::with_headers(&h, b"")).unwrap();
    assert!(matches!(
        body(&mut s, t, br#"{"type":"response","data":"x"}"#),
        Err(StreamViolation::AfterError)
    ));
    assert!(matches!(
        s.handle(t, Received::with_headers(&h, b"")),
        Err(StreamViolation::AfterError)
    ));
    assert_eq!(body(&mut s, t, b"").unwrap(), Some(StreamEvent::End));
}

#[test]
fn a_message_after_the_terminator_is_reported_not_merged() {
    let (mut s, t) = stream();
    body(&mut s, t, br#"{"type":"response","data":"x"}"#).unwrap();
    body(&mut s, t, b"").unwrap();
    assert!(matches!(
        body(&mut s, t, br#"{"type":"response","data":"late"}"#),
        Err(StreamViolation::AfterEnd)
    ));
    assert!(matches!(
        body(&mut s, t, b""),
        Err(StreamViolation::AfterEnd)
    ));
    assert!(s.is_ended());
}

#[test]
fn empty_message_with_headers_is_not_a_terminator() {
    let (mut s, t) = stream();
    let h = [("X-Trace", "1")];
    assert!(matches!(
        s.handle(t, Received::with_headers(&h, b"")),
        Err(StreamViolation::HeadersOnEmpty)
    ));
    assert!(!s.is_ended());
    // A header block with no headers at all is still a header block.
    let none: [(&str, &str); 0] = [];
    assert!(matches!(
        s.handle(t, Received::with_headers(&none, b"")),
        Err(StreamViolation::HeadersOnEmpty)
    ));
    assert!(!s.is_ended());
    // Headers on a chunk with a body do not matter.
    assert!(matches!(
        s.handle(
            t,
            Received::with_headers(&h, br#"{"type":"response","data":"x"}"#)
        )
        .unwrap(),
        Some(StreamEvent::Response(_))
    ));
    assert_eq!(body(&mut s, t, b"").unwrap(), Some(StreamEvent::End));
}

#[test]
fn error_with_unlisted_or_malformed_code_is_still_an_error() {
    let (mut s, t) = stream();
    let h = [
        ("Nats-Service-Error-Code", "503"),
        ("Nats-Service-Error", "unavailable"),
    ];
    let Some(StreamEvent::Error(e)) = s.handle(t, Received::with_headers(&h, b"")).unwrap() else {
        panic!()
    };
    assert_eq!(e.code, ErrorCode::Unlisted(503));
    let (mut s, t) = stream();
    let h = [("Nats-Service-Error", "no code")];
    let Some(StreamEvent::Error(e)) = s.handle(t, Received::with_headers(&h, b"")).unwrap() else {
        panic!()
    };
    assert_eq!(e.code, ErrorCode::Malformed(String::new()));
}

#[test]
fn malformed_chunks_are_violations_and_the_stream_goes_on() {
    let (mut s, t) = stream();
    for bad in [
        &b"plain text"[..],
        br#"{"data":"x"}"#,
        br#"{"type":"response"}"#,
        br#"{"type":"response","data":5}"#,
        br#"{"type":"status","data":{}}"#,
        br#"{"type":"query","data":{"id":"1"}}"#,
    ] {
        assert!(
            matches!(body(&mut s, t, bad), Err(StreamViolation::Malformed(_))),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
    assert_eq!(s.first_was_ack(), Some(false));
    assert!(!s.is_ended());
    assert_eq!(body(&mut s, t, b"").unwrap(), Some(StreamEvent::End));
}

#[test]
fn query_event() {
    let (mut s, t) = stream();
    let ev = body(
        &mut s,
        t,
        br#"{"type":"query","data":{"id":"q1","reply_subject":"_INBOX.r","prompt":"ok?"}}"#,
    )
    .unwrap();
    let Some(StreamEvent::Query(q)) = ev else {
        panic!("{ev:?}")
    };
    assert_eq!(
        (q.id.as_str(), q.reply_subject.as_str(), q.prompt.as_str()),
        ("q1", "_INBOX.r", "ok?")
    );
}

#[test]
fn inactivity_expires_from_the_last_message() {
    let (mut s, t0) = stream();
    assert_eq!(s.poll_timeout(), Some(t0 + Duration::from_secs(60)));
    assert_eq!(s.timeout(t0 + Duration::from_secs(59)), None);
    // Every chunk, acks included, resets the clock (§6.4, §6.6).
    let t1 = t0 + Duration::from_secs(50);
    body(&mut s, t1, br#"{"type":"status","data":"ack"}"#).unwrap();
    assert_eq!(s.poll_timeout(), Some(t1 + Duration::from_secs(60)));
    assert_eq!(s.timeout(t0 + Duration::from_secs(100)), None);
    let late = t1 + Duration::from_secs(61);
    assert_eq!(
        s.timeout(late),
        Some(StreamEvent::TimedOut {
            idle: Duration::from_secs(61)
        })
    );
    assert!(s.is_ended());
    assert_eq!(s.timeout(late), None);
    assert!(matches!(
        body(&mut s, late, b""),
        Err(StreamViolation::AfterEnd)
    ));
}
