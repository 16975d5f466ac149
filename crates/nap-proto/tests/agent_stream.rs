//! The agent's half of the response stream (§5.3, §5.4, §6, §9.3), fed by
//! hand with explicit times, and read back by the caller's half.
#![allow(clippy::unwrap_used, missing_docs)]

use std::time::{Duration, Instant, SystemTime};

use nap_proto::ACK_JSON;
use nap_proto::{AgentStream, Outgoing, StreamClosed};
use nap_proto::{
    Beacon, ByteSize, Chunk, IntervalSecs, Loss, PromptLimits, Received, RequestError,
    ResponseStream, ServiceError, StatusCode, StreamEvent,
};

const KEEPALIVE: Duration = Duration::from_secs(15);

fn drain(s: &mut AgentStream) -> Vec<Outgoing> {
    std::iter::from_fn(|| s.poll()).collect()
}

fn ack() -> Outgoing {
    Outgoing::Chunk(ACK_JSON.into())
}

#[test]
fn ack_bytes_are_the_encoded_ack_chunk() {
    // §6.4: one home for the ack's bytes, equal to the generic encoder's output.
    assert_eq!(serde_json::to_vec(&Chunk::ACK).unwrap(), ACK_JSON);
    assert_eq!(Chunk::ACK.encode(), ACK_JSON);
    assert_eq!(ACK_JSON, br#"{"type":"status","data":"ack"}"#);
}

#[test]
fn accepted_request_acks_first_then_chunks_then_terminator() {
    let t0 = Instant::now();
    let mut s = AgentStream::new(t0, Some(KEEPALIVE));
    let env = s
        .handle_request(t0, br#"{"prompt":"hi","x":1}"#, PromptLimits::DEFAULT)
        .unwrap();
    assert_eq!(env.prompt, "hi");
    // §6.4: the ack is queued before any work.
    assert_eq!(drain(&mut s), [ack()]);
    s.handle_chunk(t0, &Chunk::text("a")).unwrap();
    s.handle_chunk(t0, &Chunk::text("b")).unwrap();
    s.finish(t0, None);
    assert_eq!(
        drain(&mut s),
        [
            Outgoing::Chunk(br#"{"type":"response","data":"a"}"#.to_vec().into()),
            Outgoing::Chunk(br#"{"type":"response","data":"b"}"#.to_vec().into()),
            Outgoing::Terminator,
        ]
    );
    assert!(s.is_finished());
    assert_eq!(s.error(), None);
}

#[test]
fn rejected_request_is_ack_400_terminator() {
    let t0 = Instant::now();
    let cases: [(&[u8], PromptLimits); 4] = [
        (b"", PromptLimits::DEFAULT),
        (br#"{"prompt":1}"#, PromptLimits::DEFAULT),
        (
            b"0123456789",
            PromptLimits {
                max_payload: ByteSize::new(4),
                attachments_ok: true,
            },
        ),
        (
            br#"{"prompt":"p","attachments":[{"filename":"a","content":"aGk="}]}"#,
            PromptLimits {
                max_payload: ByteSize::new(1 << 20),
                attachments_ok: false,
            },
        ),
    ];
    for (payload, limits) in cases {
        let mut s = AgentStream::new(t0, Some(KEEPALIVE));
        let err: RequestError = s.handle_request(t0, payload, limits).unwrap_err();
        let out = drain(&mut s);
        assert_eq!(out.len(), 3, "{payload:?}: {out:?}");
        assert_eq!(out[0], ack());
        let Outgoing::Error(e) = &out[1] else {
            panic!("{out:?}")
        };
        // §9.2: every malformed request is a 400.
        assert_eq!(e.code, StatusCode::BadRequest);
        assert_eq!(e, &err.to_service_error());
        assert_eq!(out[2], Outgoing::Terminator);
        assert_eq!(s.error().map(|e| e.code), Some(StatusCode::BadRequest));
        // §6.5: nothing after the terminator.
        assert_eq!(s.handle_chunk(t0, &Chunk::text("late")), Err(StreamClosed));
        assert!(drain(&mut s).is_empty());
    }
}

#[test]
fn busy_refusal_after_accept_is_ack_429_terminator() {
    let t0 = Instant::now();
    let mut s = AgentStream::new(t0, None);
    s.handle_request(t0, b"hello", PromptLimits::DEFAULT)
        .unwrap();
    s.finish(t0, Some(ServiceError::busy()));
    let out = drain(&mut s);
    assert_eq!(out[0], ack());
    assert!(matches!(&out[1], Outgoing::Error(e) if e.code == StatusCode::TooManyRequests));
    assert_eq!(out[2], Outgoing::Terminator);
}

#[test]
fn error_then_terminator_and_finish_is_once() {
    let t0 = Instant::now();
    let mut s = AgentStream::new(t0, None);
    s.open(t0);
    s.handle_chunk(t0, &Chunk::text("partial")).unwrap();
    s.finish(t0, Some(ServiceError::agent_failed()));
    s.finish(t0, None);
    s.finish(t0, Some(ServiceError::busy()));
    let out = drain(&mut s);
    assert_eq!(out.len(), 4, "{out:?}");
    assert!(matches!(&out[2], Outgoing::Error(e) if e.code == StatusCode::Internal));
    assert_eq!(out[3], Outgoing::Terminator);
    assert_eq!(out[3].body().len(), 0);
}

#[test]
fn first_chunk_without_open_is_still_preceded_by_the_ack() {
    let t0 = Instant::now();
    let mut s = AgentStream::new(t0, None);
    s.handle_chunk(t0, &Chunk::text("x")).unwrap();
    let out = drain(&mut s);
    assert_eq!(out[0], ack());
    assert_eq!(out.len(), 2);
}

#[test]
fn keepalive_after_each_silence_and_never_after_the_end() {
    let t0 = Instant::now();
    let s15 = KEEPALIVE;
    let mut s = AgentStream::new(t0, Some(s15));
    assert_eq!(s.poll_timeout(), None, "nothing before the request");
    s.handle_request(t0, b"p", PromptLimits::DEFAULT).unwrap();
    drain(&mut s);
    assert_eq!(s.poll_timeout(), Some(t0 + s15));
    // Early wake-up: nothing.
    s.handle_timeout(t0 + s15 - Duration::from_millis(1));
    assert!(drain(&mut s).is_empty());
    // A chunk pushes the deadline back.
    let t1 = t0 + Duration::from_secs(10);
    s.handle_chunk(t1, &Chunk::text("x")).unwrap();
    drain(&mut s);
    assert_eq!(s.poll_timeout(), Some(t1 + s15));
    s.handle_timeout(t0 + s15);
    assert!(drain(&mut s).is_empty());
    // Silence: one ack, and the next one 15 s later.
    s.handle_timeout(t1 + s15);
    assert_eq!(drain(&mut s), [ack()]);
    assert_eq!(s.poll_timeout(), Some(t1 + 2 * s15));
    s.finish(t1 + s15, None);
    assert_eq!(s.poll_timeout(), None);
    s.handle_timeout(t1 + 10 * s15);
    assert_eq!(drain(&mut s), [Outgoing::Terminator]);
}

#[test]
fn without_keepalive_there_is_no_deadline() {
    let t0 = Instant::now();
    let mut s = AgentStream::new(t0, None);
    s.open(t0);
    assert_eq!(s.poll_timeout(), None);
    let mut zero = AgentStream::new(t0, Some(Duration::ZERO));
    zero.open(t0);
    assert_eq!(zero.poll_timeout(), None, "a zero interval means none");
}

/// What the agent's half writes, the caller's half reads back as the same
/// events: the two halves agree on every rule.
#[test]
fn the_two_halves_agree() {
    let t0 = Instant::now();
    let mut agent = AgentStream::new(t0, Some(KEEPALIVE));
    agent
        .handle_request(t0, b"hello", PromptLimits::DEFAULT)
        .unwrap();
    agent.handle_chunk(t0, &Chunk::text("he")).unwrap();
    agent.handle_timeout(t0 + KEEPALIVE);
    agent.handle_chunk(t0, &Chunk::text("llo")).unwrap();
    agent.finish(
        t0,
        Some(ServiceError::new(StatusCode::Conflict, "busy\nnow")),
    );

    let mut caller = ResponseStream::new(t0, Duration::from_secs(60));
    let mut events = Vec::new();
    while let Some(out) = agent.poll() {
        match &out {
            Outgoing::Chunk(body) => caller.handle_message(t0, Received::body(body)),
            Outgoing::Error(e) => {
                let headers: Vec<(String, String)> = e
                    .headers()
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v))
                    .collect();
                caller.handle_message(t0, Received::with_headers(&headers, &out.body()))
            }
            Outgoing::Terminator => caller.handle_message(t0, Received::body(b"")),
        }
        events.extend(caller.poll());
    }
    assert_eq!(events.len(), 6, "{events:?}");
    assert_eq!(events[0], StreamEvent::Ack);
    assert!(matches!(&events[1], StreamEvent::Response(d) if d.text() == "he"));
    assert_eq!(events[2], StreamEvent::Ack);
    assert!(matches!(&events[3], StreamEvent::Response(d) if d.text() == "llo"));
    let StreamEvent::Error(remote) = &events[4] else {
        panic!("{events:?}")
    };
    assert_eq!(remote.code.status(), Some(StatusCode::Conflict));
    assert_eq!(remote.message(), "busy now");
    assert_eq!(events[5], StreamEvent::End);
    assert_eq!(caller.first_was_ack(), Some(true));
}

#[test]
fn caller_loss_ends_an_open_stream_but_not_a_complete_one() {
    let t0 = Instant::now();
    let mut s = ResponseStream::new(t0, Duration::from_secs(60));
    s.handle_message(t0, Received::body(ACK_JSON));
    assert_eq!(s.poll(), Some(StreamEvent::Ack));
    s.handle_loss(Loss::Reconnected);
    assert_eq!(s.poll(), Some(StreamEvent::Lost(Loss::Reconnected)));
    assert!(s.is_ended());
    assert_eq!(s.poll_timeout(), None);

    let mut done = ResponseStream::new(t0, Duration::from_secs(60));
    done.handle_message(t0, Received::body(b""));
    assert_eq!(done.poll(), Some(StreamEvent::End));
    done.handle_loss(Loss::SlowConsumer);
    assert_eq!(done.poll(), None, "a complete stream stays complete");
}

#[test]
fn overall_deadline_ends_a_stream_of_endless_keepalives() {
    let t0 = Instant::now();
    let sec = Duration::from_secs(1);
    let mut s = ResponseStream::new(t0, 60 * sec).with_deadline(100 * sec);
    let mut t = t0;
    for _ in 0..9 {
        t += 10 * sec;
        s.handle_message(t, Received::body(ACK_JSON));
        assert_eq!(s.poll(), Some(StreamEvent::Ack));
        s.handle_timeout(t);
        assert_eq!(s.poll(), None);
    }
    assert_eq!(
        s.poll_timeout(),
        Some(t0 + 100 * sec),
        "the deadline is first"
    );
    s.handle_timeout(t0 + 100 * sec);
    assert_eq!(
        s.poll(),
        Some(StreamEvent::DeadlineExceeded { after: 100 * sec })
    );
    assert!(s.is_ended());
}

#[test]
fn beacon_stamps_whole_seconds_in_utc() {
    let beacon = Beacon {
        agent: "echo".into(),
        owner: "alice".into(),
        session: None,
        instance_id: "ID".into(),
        interval: IntervalSecs::new(30.0).unwrap(),
        declared: None,
    };
    let at = SystemTime::UNIX_EPOCH + Duration::from_millis(1_776_779_985_123);
    let beat = beacon.beat(at).unwrap();
    // §8.3: UTC ISO 8601.
    assert_eq!(beat.ts, "2026-04-21T13:59:45Z");
    assert_eq!(
        String::from_utf8(beat.encode()).unwrap(),
        r#"{"agent":"echo","owner":"alice","instance_id":"ID","ts":"2026-04-21T13:59:45Z","interval_s":30}"#
    );
}

/// The admission inputs of one request, every check passing unless changed.
fn arrival<'a>(
    payload: &'a [u8],
    sender: Result<nap_proto::identity::Sender, nap_proto::identity::SenderRejection>,
    stopping: bool,
    capacity: bool,
    asked: &'a std::cell::Cell<bool>,
) -> nap_proto::Arrival<'a, impl FnOnce() -> Option<u8> + 'a> {
    nap_proto::Arrival {
        payload,
        limits: PromptLimits::DEFAULT,
        sender,
        stopping,
        reserve: move || {
            asked.set(true);
            capacity.then_some(7)
        },
    }
}

#[test]
fn admission_checks_the_sender_then_the_request_then_stopping_then_capacity() {
    use nap_proto::identity::{MalformedSender, Sender, SenderRejection, TrustClass};
    use nap_proto::{Admission, Refusal};
    let malformed = || Err(SenderRejection::Malformed(MalformedSender::NotJson));
    let required = || Err(SenderRejection::SignatureRequired(TrustClass::Absent));
    let fine = || Ok(Sender::Absent);
    // (payload, sender, stopping, capacity) → the code answered, and
    // whether a place was asked for (only when every other check passed).
    let cases: Vec<(&[u8], _, bool, bool, u16, bool)> = vec![
        (b"", malformed(), true, false, 400, false),
        (b"hi", required(), true, false, 401, false),
        (b"", fine(), true, false, 400, false),
        (b"{not json", fine(), false, true, 400, false),
        (b"hi", fine(), true, false, 429, false),
        (b"hi", fine(), false, false, 429, true),
        (b"hi", fine(), false, true, 200, true),
    ];
    for (i, (payload, sender, stopping, capacity, code, reserved)) in cases.into_iter().enumerate()
    {
        let t0 = Instant::now();
        let asked = std::cell::Cell::new(false);
        let mut s = AgentStream::new(t0, None);
        let decision = s.handle_arrival(t0, arrival(payload, sender, stopping, capacity, &asked));
        assert_eq!(asked.get(), reserved, "case {i}: place asked for");
        let out = drain(&mut s);
        // §6.4: the ack first, refusals included.
        assert_eq!(out.first(), Some(&ack()), "case {i}");
        match decision {
            Admission::Serve {
                place, envelope, ..
            } => {
                assert_eq!((code, place, envelope.prompt.as_str()), (200, 7, "hi"));
                assert_eq!(
                    out.len(),
                    1,
                    "case {i}: only the ack before the agent works"
                );
                assert_eq!(s.status(), None);
            }
            Admission::Refused(refusal) => {
                // §9.3: ack, error signal, terminator.
                assert_eq!(out.len(), 3, "case {i}");
                let Outgoing::Error(error) = &out[1] else {
                    panic!("case {i}: {out:?}")
                };
                assert_eq!(error.code.as_u16(), code, "case {i}: {refusal}");
                assert_eq!(refusal.service_error(), *error);
                assert_eq!(out[2], Outgoing::Terminator);
                assert_eq!(s.status(), Some(code));
                let expected_kind = match code {
                    429 if stopping => matches!(refusal, Refusal::Stopping),
                    429 => matches!(refusal, Refusal::Busy),
                    400 if payload.is_empty() && i == 0 => matches!(refusal, Refusal::Sender(_)),
                    400 => matches!(refusal, Refusal::Request(_)),
                    _ => matches!(refusal, Refusal::Sender(_)),
                };
                assert!(expected_kind, "case {i}: {refusal:?}");
            }
        }
    }
}

#[test]
fn every_turn_end_maps_to_its_signal_and_an_interruption_spoils_a_clean_end() {
    use nap_proto::TurnEnd;
    let failed = ServiceError::new(StatusCode::Conflict, "busy elsewhere");
    let cases = [
        (TurnEnd::Answered, false, None),
        (TurnEnd::Answered, true, Some(ServiceError::interrupted())),
        (TurnEnd::Failed(failed.clone()), false, Some(failed.clone())),
        (TurnEnd::Failed(failed.clone()), true, Some(failed.clone())),
        (
            TurnEnd::Refused(failed.clone()),
            false,
            Some(failed.clone()),
        ),
        (TurnEnd::Panicked, false, Some(ServiceError::agent_failed())),
        (TurnEnd::Abandoned, false, Some(ServiceError::shut_down())),
    ];
    for (end, interrupted, expected) in cases {
        let t0 = Instant::now();
        let mut s = AgentStream::new(t0, None);
        s.open(t0);
        if interrupted {
            s.handle_interruption();
        }
        s.end_turn(t0, end.clone());
        let mut out = drain(&mut s);
        assert_eq!(out.pop(), Some(Outgoing::Terminator), "{end:?}");
        let signal = match out.pop() {
            Some(Outgoing::Error(e)) => Some(e),
            _ => None,
        };
        assert_eq!(signal, expected, "{end:?}");
        assert_eq!(s.error(), expected.as_ref());
        // A stream ends once: a second end changes nothing.
        s.end_turn(t0, TurnEnd::Panicked);
        assert!(drain(&mut s).is_empty());
    }
}

#[test]
fn an_answer_is_read_like_a_prompt_with_its_file_names_checked() {
    use nap_proto::{AnswerError, accept_answer};
    assert_eq!(accept_answer(b"yes").unwrap().prompt, "yes");
    assert!(matches!(accept_answer(b""), Err(AnswerError::Envelope(_))));
    let unsafe_name = br#"{"prompt":"here","attachments":[{"filename":"../x","content":"aGk="}]}"#;
    match accept_answer(unsafe_name) {
        Err(AnswerError::UnsafeFileName {
            index, filename, ..
        }) => {
            assert_eq!((index, filename.as_str()), (0, "../x"))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_caller_queues_what_it_learns_until_polled() {
    // Messages fed before a poll are all kept, in order (nothing is
    // overwritten by the next input).
    let t0 = Instant::now();
    let mut caller = ResponseStream::new(t0, Duration::from_secs(60));
    let text = Chunk::text("hi").encode();
    caller.handle_message(t0, Received::body(ACK_JSON));
    caller.handle_message(t0, Received::body(&text));
    caller.handle_message(t0, Received::body(b""));
    caller.handle_message(t0, Received::body(&text));
    let events: Vec<StreamEvent> = std::iter::from_fn(|| caller.poll()).collect();
    assert_eq!(events.len(), 4, "{events:?}");
    assert_eq!(events[0], StreamEvent::Ack);
    assert!(matches!(&events[1], StreamEvent::Response(d) if d.text() == "hi"));
    assert_eq!(events[2], StreamEvent::End);
    assert!(matches!(events[3], StreamEvent::Violation(_)));
}
