//! Durable runs (docs/durable.md), sans IO: the byte examples of the
//! document, the worker's claim decision and fencing, the reader's attempt
//! boundaries, run state, adverts and stored senders. No network, no clock
//! but the `Instant`s the tests make.
#![allow(clippy::unwrap_used, missing_docs)]

use std::time::{Duration, Instant, SystemTime};

use nap_proto::durable::{
    AttemptWriter, Claim, ClaimDecision, Cursor, DurableAdvert, DurableSubjects, IdempotencyKey,
    LastRecord, ReadEvent, RecordKind, RecordViolation, RunId, RunReader, RunState, StoredRecord,
    Streams, Submission, WorkerAction, WorkerPolicy, admit_stored_prompt, cancel_record,
    prompt_record,
};
use nap_proto::identity::{
    Account, MinSenderTrust, Nonce, SenderRejection, SenderSigner, SenderTime, TrustClass,
    VerificationFailure, VerifierConfig,
};
use nap_proto::{
    AgentInfo, AgentStream, Chunk, Envelope, ErrorBody, Identity, Outgoing, PromptLimits, Received,
    ResponseStream, ServiceError, StatusCode, StreamEvent,
};

const DOC: &str = include_str!("../../../docs/durable.md");
const SEED: &str = "SUAEJ6GDK6FSSB54LD45Q7W25AW7NUT7MVLBABIR5MIPFUTBW7ZNPK2KYE";

fn subjects() -> DurableSubjects {
    DurableSubjects::for_identity(&Identity::new("echo", "alice", "demo").unwrap())
}

/// The run of the document's examples.
fn doc_run() -> RunId {
    RunId::from_key(
        subjects().prompt_prefix(),
        &IdempotencyKey::new("nightly-report").unwrap(),
    )
}

fn policy() -> WorkerPolicy {
    WorkerPolicy::default()
}

/// A record as the document shows it: the header block without CRs, a blank
/// line, the body.
fn shown(record: &nap_proto::durable::Append) -> String {
    let mut text = String::from("NATS/1.0\n");
    for (name, value) in &record.headers {
        text.push_str(&format!("{name}: {value}\n"));
    }
    text.push('\n');
    text.push_str(std::str::from_utf8(&record.body).unwrap());
    text
}

fn work(t0: Instant, prompt_seq: u64, delivered: u32, last: Option<&LastRecord>) -> AttemptWriter {
    match AttemptWriter::claim(
        t0,
        &subjects(),
        &doc_run(),
        Claim {
            prompt_seq,
            delivered,
        },
        last,
        policy(),
    ) {
        ClaimDecision::Work(writer) => writer,
        other => panic!("expected Work, got {other:?}"),
    }
}

/// The messages an agent stream sends for `chunks` and an optional error.
fn agent_messages(t0: Instant, chunks: &[Chunk], error: Option<ServiceError>) -> Vec<Outgoing> {
    let mut agent = AgentStream::new(t0, None);
    agent
        .handle_request(t0, b"hello", PromptLimits::DEFAULT)
        .unwrap();
    for chunk in chunks {
        agent.handle_chunk(t0, chunk).unwrap();
    }
    agent.finish(t0, error);
    std::iter::from_fn(|| agent.poll()).collect()
}

/// A little stream: stores appends at consecutive sequences, one subject.
#[derive(Default)]
struct Subject {
    records: Vec<(u64, nap_proto::durable::Append)>,
    next_seq: u64,
}

impl Subject {
    fn starting_at(seq: u64) -> Subject {
        Subject {
            records: Vec::new(),
            next_seq: seq,
        }
    }

    fn last_seq(&self) -> u64 {
        self.records.last().map_or(0, |(s, _)| *s)
    }

    /// Stores `append` if its fence holds, as JetStream does.
    fn publish(&mut self, append: nap_proto::durable::Append) -> Result<u64, ()> {
        if append.expected_last_subject_sequence() != Some(self.last_seq()) {
            return Err(());
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.records.push((seq, append));
        Ok(seq)
    }

    fn last(&self) -> Option<LastRecord> {
        self.records.last().map(|(seq, a)| {
            LastRecord::read(&StoredRecord {
                seq: *seq,
                headers: a,
                body: &a.body,
            })
        })
    }

    /// Runs a writer until it has nothing to publish.
    fn drain(&mut self, t: Instant, writer: &mut AttemptWriter) -> Vec<WorkerAction> {
        let mut actions = Vec::new();
        loop {
            while let Some(action) = writer.poll() {
                if action == WorkerAction::ReadLast {
                    let last = self.last();
                    writer.handle_last(t, last.as_ref());
                } else {
                    actions.push(action);
                }
            }
            let Some(append) = writer.poll_transmit() else {
                if writer.poll().is_none() {
                    return actions;
                }
                continue;
            };
            match self.publish(append) {
                Ok(seq) => writer.handle_stored(t, seq),
                Err(()) => writer.handle_unconfirmed(t),
            }
        }
    }

    fn read(&self, reader: &mut RunReader) -> Vec<ReadEvent> {
        let mut events = Vec::new();
        for (seq, a) in &self.records {
            reader.handle_record(&StoredRecord {
                seq: *seq,
                headers: a,
                body: &a.body,
            });
            events.extend(std::iter::from_fn(|| reader.poll()));
        }
        events
    }
}

// ---------------------------------------------------------------------------
// D5, D6: run ids and prompt records, byte for byte.

#[test]
fn run_id_known_answer_is_in_the_document() {
    let run = doc_run();
    assert_eq!(run.as_str(), "fsgqpzk3ew22q6ltdnwy7m775a");
    assert!(DOC.contains("run_id         = fsgqpzk3ew22q6ltdnwy7m775a"));
    // A different target or key is a different run.
    let other = DurableSubjects::for_identity(&Identity::new("echo", "alice", "demo2").unwrap());
    assert_ne!(
        RunId::from_key(
            other.prompt_prefix(),
            &IdempotencyKey::new("nightly-report").unwrap()
        ),
        run
    );
}

#[test]
fn prompt_record_is_the_documents() {
    let key = IdempotencyKey::new("nightly-report").unwrap();
    let payload = Envelope::text("summarize last night's builds").encode();
    let record = prompt_record(&subjects(), &doc_run(), Some(&key), payload);
    assert_eq!(
        record.subject,
        "agents.durable.prompt.echo.alice.demo.fsgqpzk3ew22q6ltdnwy7m775a"
    );
    let text = shown(&record);
    assert!(DOC.contains(&text), "D6.1 should show\n{text}");
}

#[test]
fn submission_answers() {
    assert_eq!(
        Submission::from_ack(41, false),
        Submission::Created { seq: 41 }
    );
    assert_eq!(
        Submission::from_ack(41, true),
        Submission::Exists { seq: Some(41) }
    );
    assert_eq!(
        Submission::from_error_code(10071),
        Some(Submission::Exists { seq: None })
    );
}

// ---------------------------------------------------------------------------
// D8: reply records, byte for byte.

#[test]
fn reply_records_are_the_documents() {
    let t0 = Instant::now();
    let mut writer = work(t0, 41, 1, None);
    for out in agent_messages(t0, &[Chunk::text("Hello")], None) {
        writer.handle_outgoing(t0, &out).unwrap();
    }
    let mut subject = Subject::starting_at(57);
    let actions = subject.drain(t0, &mut writer);
    assert_eq!(actions, [WorkerAction::Ack]);
    assert_eq!(subject.records.len(), 3);
    for (_, record) in &subject.records {
        assert_eq!(
            record.subject,
            "agents.durable.reply.echo.alice.demo.fsgqpzk3ew22q6ltdnwy7m775a"
        );
        let text = shown(record);
        assert!(DOC.contains(&text), "D8.4 should show\n{text}");
    }
}

#[test]
fn error_record_is_the_documents_and_ends_the_run() {
    let t0 = Instant::now();
    let mut writer = work(t0, 41, 1, None);
    let error = ServiceError::new(StatusCode::TooManyRequests, "rate limited").with_body(
        ErrorBody::new("rate_limited", "Too many concurrent requests")
            .with_field("retry_after_s", 30),
    );
    // The agent stream sends the error, then the terminator: one record.
    for out in agent_messages(t0, &[Chunk::text("Hello")], Some(error)) {
        writer.handle_outgoing(t0, &out).unwrap();
    }
    assert_eq!(
        writer.handle_outgoing(t0, &Outgoing::Terminator),
        Err(nap_proto::StreamClosed)
    );
    let mut subject = Subject::starting_at(57);
    assert_eq!(subject.drain(t0, &mut writer), [WorkerAction::Ack]);
    assert_eq!(subject.records.len(), 3);
    let text = shown(&subject.records[2].1);
    assert!(DOC.contains(&text), "D8.4 should show\n{text}");
    let last = subject.last().unwrap();
    assert!(matches!(
        RunState::derive(Some(41), Some(&last)),
        Some(RunState::Failed { attempt: 1, .. })
    ));
}

#[test]
fn exhausted_record_is_the_documents() {
    let t0 = Instant::now();
    // Attempt 3 stores three records (61 to 63) and dies.
    let mut subject = Subject::starting_at(61);
    let mut third = work(t0, 41, 3, None);
    for out in agent_messages(t0, &[Chunk::text("a"), Chunk::text("b")], None)
        .iter()
        .take(3)
    {
        third.handle_outgoing(t0, out).unwrap();
    }
    assert!(subject.drain(t0, &mut third).is_empty());
    third.abandon(t0);
    assert_eq!(third.poll(), Some(WorkerAction::Nak));
    assert_eq!(subject.last_seq(), 63);
    // The fourth delivery of a three-attempt run stores the failure.
    let last = subject.last();
    let ClaimDecision::Exhausted(mut writer) = AttemptWriter::claim(
        t0,
        &subjects(),
        &doc_run(),
        Claim {
            prompt_seq: 41,
            delivered: 4,
        },
        last.as_ref(),
        policy(),
    ) else {
        panic!("the fourth delivery of a three-attempt run is exhausted")
    };
    assert_eq!(
        writer.handle_outgoing(t0, &Outgoing::Terminator),
        Err(nap_proto::StreamClosed),
        "an exhausted claim runs nothing"
    );
    let append = writer.poll_transmit().unwrap();
    let text = shown(&append);
    assert!(DOC.contains(&text), "D8.4 should show\n{text}");
    writer.handle_stored(t0, subject.publish(append).unwrap());
    assert_eq!(writer.poll(), Some(WorkerAction::Term));
    assert!(matches!(
        RunState::derive(Some(41), subject.last().as_ref()),
        Some(RunState::Exhausted { .. })
    ));
}

// ---------------------------------------------------------------------------
// D8.3: what is stored of an attempt.

#[test]
fn keep_alives_are_not_stored() {
    let t0 = Instant::now();
    let mut agent = AgentStream::new(t0, Some(Duration::from_secs(1)));
    agent
        .handle_request(t0, b"hello", PromptLimits::DEFAULT)
        .unwrap();
    agent.handle_timeout(t0 + Duration::from_secs(2)); // a keep-alive ack
    agent
        .handle_chunk(t0 + Duration::from_secs(2), &Chunk::text("x"))
        .unwrap();
    agent.finish(t0 + Duration::from_secs(2), None);
    let sent: Vec<Outgoing> = std::iter::from_fn(|| agent.poll()).collect();
    assert_eq!(sent.len(), 4);
    let mut writer = work(t0, 41, 1, None);
    for out in &sent {
        writer.handle_outgoing(t0, out).unwrap();
    }
    let mut subject = Subject::starting_at(1);
    subject.drain(t0, &mut writer);
    let kinds: Vec<_> = subject
        .records
        .iter()
        .map(|(_, a)| (a.header("Nap-Event").unwrap().to_owned(), a.body.clone()))
        .collect();
    assert_eq!(
        kinds,
        [
            (
                "chunk".to_owned(),
                br#"{"type":"status","data":"ack"}"#.to_vec()
            ),
            (
                "chunk".to_owned(),
                br#"{"type":"response","data":"x"}"#.to_vec()
            ),
            ("end".to_owned(), Vec::new()),
        ]
    );
}

// ---------------------------------------------------------------------------
// D9.3: the claim decision.

fn record_meta(kind: &str, attempt: u32, index: u32, prompt_seq: u64, seq: u64) -> LastRecord {
    let headers = vec![
        ("Nap-Event".to_owned(), kind.to_owned()),
        ("Nap-Attempt".to_owned(), attempt.to_string()),
        ("Nap-Index".to_owned(), index.to_string()),
        ("Nap-Prompt-Seq".to_owned(), prompt_seq.to_string()),
    ];
    LastRecord::read(&StoredRecord {
        seq,
        headers: &headers,
        body: b"",
    })
}

#[test]
fn claim_decisions_follow_the_table() {
    let t0 = Instant::now();
    let decide = |delivered, last: Option<LastRecord>| {
        AttemptWriter::claim(
            t0,
            &subjects(),
            &doc_run(),
            Claim {
                prompt_seq: 41,
                delivered,
            },
            last.as_ref(),
            policy(),
        )
    };
    // Settled: a final record of this generation.
    assert!(matches!(
        decide(2, Some(record_meta("end", 1, 3, 41, 9))),
        ClaimDecision::Settled(RunState::Complete { attempt: 1 })
    ));
    assert!(matches!(
        decide(1, Some(record_meta("cancel", 0, 0, 41, 9))),
        ClaimDecision::Settled(RunState::Cancelled { attempt: 0 })
    ));
    // Stale: a later claim wrote already.
    assert!(matches!(
        decide(2, Some(record_meta("chunk", 3, 0, 41, 9))),
        ClaimDecision::Stale { holder: 3 }
    ));
    assert!(matches!(
        decide(2, Some(record_meta("chunk", 2, 0, 41, 9))),
        ClaimDecision::Stale { holder: 2 }
    ));
    // Work: nothing, another generation, an older attempt.
    assert!(matches!(decide(1, None), ClaimDecision::Work(_)));
    assert!(matches!(
        decide(1, Some(record_meta("end", 1, 3, 7, 9))),
        ClaimDecision::Work(_)
    ));
    let ClaimDecision::Work(mut w) = decide(3, Some(record_meta("chunk", 2, 5, 41, 9))) else {
        panic!()
    };
    assert_eq!(w.attempt(), 3);
    w.handle_outgoing(t0, &Outgoing::Chunk(Chunk::ACK.encode().into()))
        .unwrap();
    assert_eq!(
        w.poll_transmit().unwrap().expected_last_subject_sequence(),
        Some(9)
    );
    // Exhausted: past the last attempt.
    assert!(matches!(
        decide(4, Some(record_meta("chunk", 3, 5, 41, 9))),
        ClaimDecision::Exhausted(_)
    ));
    assert!(matches!(decide(4, None), ClaimDecision::Exhausted(_)));
}

// ---------------------------------------------------------------------------
// D9.4: fencing.

#[test]
fn a_stale_attempt_cannot_write_after_a_takeover() {
    let t0 = Instant::now();
    let mut subject = Subject::starting_at(10);
    // Attempt 1 writes its ack and one chunk, then stalls.
    let mut first = work(t0, 41, 1, None);
    let messages = agent_messages(t0, &[Chunk::text("one-a"), Chunk::text("one-b")], None);
    for out in &messages[..2] {
        first.handle_outgoing(t0, out).unwrap();
    }
    subject.drain(t0, &mut first);
    assert_eq!(subject.records.len(), 2);
    // Its claim lapses; attempt 2 claims and takes the subject.
    let last = subject.last();
    let mut second = work(t0, 41, 2, last.as_ref());
    second
        .handle_outgoing(t0, &Outgoing::Chunk(Chunk::ACK.encode().into()))
        .unwrap();
    subject.drain(t0, &mut second);
    assert_eq!(subject.records.len(), 3);
    // Attempt 1 wakes up: its next record is refused, and it stops.
    for out in &messages[2..] {
        first.handle_outgoing(t0, out).unwrap();
    }
    let actions = subject.drain(t0, &mut first);
    assert_eq!(actions, [WorkerAction::Superseded]);
    assert_eq!(subject.records.len(), 3);
    assert!(first.is_over());
}

#[test]
fn a_late_first_record_of_a_stale_attempt_is_refused() {
    let t0 = Instant::now();
    let mut subject = Subject::starting_at(10);
    // Both claims read "no record"; attempt 2 writes first.
    let mut stale = work(t0, 41, 1, None);
    let mut fresh = work(t0, 41, 2, None);
    fresh
        .handle_outgoing(t0, &Outgoing::Chunk(Chunk::ACK.encode().into()))
        .unwrap();
    subject.drain(t0, &mut fresh);
    stale
        .handle_outgoing(t0, &Outgoing::Chunk(Chunk::ACK.encode().into()))
        .unwrap();
    assert_eq!(subject.drain(t0, &mut stale), [WorkerAction::Superseded]);
    assert_eq!(subject.records.len(), 1);
}

#[test]
fn a_newer_first_record_takes_over_from_a_stale_writer() {
    let t0 = Instant::now();
    let mut subject = Subject::starting_at(10);
    // Both claims read "no record"; the stale attempt 1 writes first.
    let mut stale = work(t0, 41, 1, None);
    let mut fresh = work(t0, 41, 2, None);
    stale
        .handle_outgoing(t0, &Outgoing::Chunk(Chunk::ACK.encode().into()))
        .unwrap();
    subject.drain(t0, &mut stale);
    fresh
        .handle_outgoing(t0, &Outgoing::Chunk(Chunk::ACK.encode().into()))
        .unwrap();
    assert!(subject.drain(t0, &mut fresh).is_empty());
    assert_eq!(subject.records.len(), 2);
    assert_eq!(subject.records[1].1.header("Nap-Attempt"), Some("2"));
    assert_eq!(
        subject.records[1].1.expected_last_subject_sequence(),
        Some(10)
    );
}

#[test]
fn a_lost_pub_ack_is_reconciled() {
    let t0 = Instant::now();
    let mut subject = Subject::starting_at(10);
    let mut writer = work(t0, 41, 1, None);
    for out in agent_messages(t0, &[Chunk::text("x")], None) {
        writer.handle_outgoing(t0, &out).unwrap();
    }
    // The ack is stored, but its PubAck is lost.
    let ack = writer.poll_transmit().unwrap();
    subject.publish(ack).unwrap();
    writer.handle_unconfirmed(t0);
    assert_eq!(writer.poll(), Some(WorkerAction::ReadLast));
    assert!(
        writer.poll_transmit().is_none(),
        "nothing while reconciling"
    );
    writer.handle_last(t0, subject.last().as_ref());
    // The next record expects the ack's sequence.
    let chunk = writer.poll_transmit().unwrap();
    assert_eq!(chunk.header("Nap-Index"), Some("1"));
    assert_eq!(chunk.expected_last_subject_sequence(), Some(10));
    // This one never reached the server: published again, unchanged.
    writer.handle_unconfirmed(t0);
    assert_eq!(writer.poll(), Some(WorkerAction::ReadLast));
    writer.handle_last(t0, subject.last().as_ref());
    assert_eq!(writer.poll_transmit().unwrap(), chunk);
    writer.handle_stored(t0, subject.publish(chunk).unwrap());
    assert_eq!(subject.drain(t0, &mut writer), [WorkerAction::Ack]);
    assert_eq!(subject.records.len(), 3);
}

#[test]
fn progress_acknowledgements_and_cancellation() {
    let t0 = Instant::now();
    let mut subject = Subject::starting_at(10);
    let mut writer = work(t0, 41, 1, None);
    writer
        .handle_outgoing(t0, &Outgoing::Chunk(Chunk::ACK.encode().into()))
        .unwrap();
    subject.drain(t0, &mut writer);
    // D9.2: a third of the claim timeout.
    let due = writer.poll_timeout().unwrap();
    assert_eq!(due, t0 + Duration::from_secs(10));
    writer.handle_timeout(due - Duration::from_millis(1));
    assert_eq!(writer.poll(), None);
    writer.handle_timeout(due);
    assert_eq!(writer.poll(), Some(WorkerAction::Progress));
    assert_eq!(writer.poll(), Some(WorkerAction::ReadLast));
    writer.handle_last(due, subject.last().as_ref());
    assert_eq!(writer.poll(), None, "its own record: keep going");
    assert_eq!(writer.poll_timeout(), Some(due + Duration::from_secs(10)));

    // D13: a cancel stored meanwhile stops the agent at the next check.
    let cancel = cancel_record(&subjects(), &doc_run(), 41, subject.last().as_ref()).unwrap();
    assert_eq!(cancel.header("Nap-Attempt"), Some("1"));
    assert_eq!(cancel.expected_last_subject_sequence(), Some(10));
    subject.publish(cancel).unwrap();
    let later = due + Duration::from_secs(10);
    writer.handle_timeout(later);
    assert_eq!(writer.poll(), Some(WorkerAction::Progress));
    assert_eq!(writer.poll(), Some(WorkerAction::ReadLast));
    writer.handle_last(later, subject.last().as_ref());
    assert_eq!(writer.poll(), Some(WorkerAction::Cancelled));
    assert_eq!(writer.poll(), Some(WorkerAction::Ack));
    assert!(writer.is_over());
    assert_eq!(writer.poll_timeout(), None);
    assert_eq!(
        writer.handle_outgoing(later, &Outgoing::Terminator),
        Err(nap_proto::StreamClosed)
    );
}

#[test]
fn a_cancel_fences_the_next_record() {
    let t0 = Instant::now();
    let mut subject = Subject::starting_at(10);
    let mut writer = work(t0, 41, 1, None);
    writer
        .handle_outgoing(t0, &Outgoing::Chunk(Chunk::ACK.encode().into()))
        .unwrap();
    subject.drain(t0, &mut writer);
    subject
        .publish(cancel_record(&subjects(), &doc_run(), 41, subject.last().as_ref()).unwrap())
        .unwrap();
    writer.handle_outgoing(t0, &Outgoing::Terminator).unwrap();
    assert_eq!(
        subject.drain(t0, &mut writer),
        [WorkerAction::Cancelled, WorkerAction::Ack]
    );
    assert_eq!(
        subject.last().unwrap().meta.unwrap().kind,
        RecordKind::Cancel
    );
    // A cancel after the end is refused: the run is over.
    let mut done = Subject::starting_at(1);
    let mut w = work(t0, 41, 1, None);
    for out in agent_messages(t0, &[], None) {
        w.handle_outgoing(t0, &out).unwrap();
    }
    done.drain(t0, &mut w);
    assert_eq!(
        *cancel_record(&subjects(), &doc_run(), 41, done.last().as_ref())
            .unwrap_err()
            .state,
        RunState::Complete { attempt: 1 }
    );
}

#[test]
fn abandoning_naks_and_stores_nothing_more() {
    let t0 = Instant::now();
    let mut writer = work(t0, 41, 1, None);
    writer
        .handle_outgoing(t0, &Outgoing::Chunk(Chunk::ACK.encode().into()))
        .unwrap();
    writer.abandon(t0);
    assert_eq!(writer.poll(), Some(WorkerAction::Nak));
    assert!(writer.poll_transmit().is_none());
    assert!(writer.is_over());
}

#[test]
fn answer_subjects_count_queries_per_attempt() {
    let t0 = Instant::now();
    let mut writer = work(t0, 41, 2, None);
    assert_eq!(
        writer.answer_subject(),
        "agents.durable.answer.echo.alice.demo.fsgqpzk3ew22q6ltdnwy7m775a.2.1"
    );
    assert!(writer.answer_subject().ends_with(".2.2"));
}

// ---------------------------------------------------------------------------
// D10: readers.

/// Three attempts: 1 and 2 fail part-way, 3 answers.
fn three_attempts(t0: Instant) -> Subject {
    let mut subject = Subject::starting_at(100);
    for (attempt, text, complete) in [
        (1, "first", false),
        (2, "second", false),
        (3, "third", true),
    ] {
        let last = subject.last();
        let mut writer = work(t0, 41, attempt, last.as_ref());
        let messages = agent_messages(t0, &[Chunk::text(text), Chunk::text("!")], None);
        let upto = if complete { messages.len() } else { 2 };
        for out in &messages[..upto] {
            writer.handle_outgoing(t0, out).unwrap();
        }
        subject.drain(t0, &mut writer);
        if !complete {
            writer.abandon(t0);
        }
    }
    subject
}

fn texts(events: &[ReadEvent]) -> Vec<String> {
    events
        .iter()
        .map(|e| match e {
            ReadEvent::Attempt(n) => format!("attempt {n}"),
            ReadEvent::Stream(StreamEvent::Ack) => "ack".into(),
            ReadEvent::Stream(StreamEvent::Response(d)) => d.text().to_owned(),
            ReadEvent::Stream(StreamEvent::End) => "end".into(),
            other => format!("{other:?}"),
        })
        .collect()
}

#[test]
fn a_replay_shows_only_the_latest_attempt() {
    let t0 = Instant::now();
    let subject = three_attempts(t0);
    let mut reader = RunReader::from_latest(41, subject.last().as_ref());
    let events = subject.read(&mut reader);
    assert_eq!(texts(&events), ["attempt 3", "ack", "third", "!", "end"]);
    assert!(reader.is_ended());
}

#[test]
fn a_live_reader_marks_every_restart() {
    let t0 = Instant::now();
    let subject = three_attempts(t0);
    let mut reader = RunReader::new(41);
    let events = subject.read(&mut reader);
    assert_eq!(
        texts(&events),
        [
            "attempt 1",
            "ack",
            "first",
            "attempt 2",
            "ack",
            "second",
            "attempt 3",
            "ack",
            "third",
            "!",
            "end"
        ]
    );
}

#[test]
fn a_reader_resumes_from_its_cursor() {
    let t0 = Instant::now();
    let subject = three_attempts(t0);
    let mut whole = RunReader::new(41);
    let all = subject.read(&mut whole);
    // Stop after the eighth record, resume from the cursor's text form.
    let mut first = RunReader::new(41);
    let mut seen = Vec::new();
    for (seq, a) in &subject.records[..8] {
        first.handle_record(&StoredRecord {
            seq: *seq,
            headers: a,
            body: &a.body,
        });
        seen.extend(std::iter::from_fn(|| first.poll()));
    }
    let cursor: Cursor = first.cursor().to_string().parse().unwrap();
    assert_eq!(cursor, first.cursor());
    let mut resumed = RunReader::resume(41, cursor);
    // Records before the cursor delivered again are not shown again.
    seen.extend(subject.read(&mut resumed));
    assert_eq!(seen, all);
}

#[test]
fn readers_set_other_generations_aside() {
    let t0 = Instant::now();
    // Generation 7 finished long ago; generation 41 is the run now.
    let mut subject = Subject::starting_at(1);
    let mut old = work(t0, 7, 1, None);
    for out in agent_messages(t0, &[Chunk::text("old")], None) {
        old.handle_outgoing(t0, &out).unwrap();
    }
    subject.drain(t0, &mut old);
    assert_eq!(
        RunState::derive(Some(41), subject.last().as_ref()),
        Some(RunState::Queued)
    );
    let last = subject.last();
    let mut new = work(t0, 41, 1, last.as_ref());
    for out in agent_messages(t0, &[Chunk::text("new")], None) {
        new.handle_outgoing(t0, &out).unwrap();
    }
    subject.drain(t0, &mut new);
    let mut reader = RunReader::from_latest(41, subject.last().as_ref());
    let events = subject.read(&mut reader);
    assert_eq!(texts(&events), ["attempt 1", "ack", "new", "end"]);
}

#[test]
fn the_reader_gives_the_events_of_a_core_caller() {
    let t0 = Instant::now();
    let query = Chunk::Query(nap_proto::Query {
        id: "q1".into(),
        reply_subject: "agents.durable.answer.echo.alice.demo.fsgqpzk3ew22q6ltdnwy7m775a.1.1"
            .into(),
        prompt: "sure?".into(),
        attachments: Vec::new(),
        extra: Default::default(),
    });
    let chunks = [
        Chunk::text("a"),
        Chunk::Status(nap_proto::StatusToken::Other("thinking".into())),
        Chunk::Unknown {
            kind: "future".into(),
            data: serde_json::json!({"x": 1}),
        },
        query,
        Chunk::text("b"),
    ];
    let error = ServiceError::new(StatusCode::Conflict, "busy");
    for error in [None, Some(error)] {
        let messages = agent_messages(t0, &chunks, error);
        // A core caller reading the same messages live.
        let mut core = ResponseStream::new(t0, Duration::from_secs(60));
        let mut core_events = Vec::new();
        for out in &messages {
            let headers: Vec<(String, String)> = match out {
                Outgoing::Error(e) => e.headers().map(|(k, v)| (k.to_owned(), v)).to_vec(),
                _ => Vec::new(),
            };
            let body = out.body();
            let received = match out {
                Outgoing::Error(_) => Received::with_headers(&headers, &body),
                _ => Received::body(&body),
            };
            core.handle_message(t0, received);
            core_events.extend(core.poll());
            // A core caller stops at the first final event (§9.3: the error
            // is the outcome, the terminator is not waited for).
            if core_events.last().is_some_and(StreamEvent::is_final) {
                break;
            }
        }
        // A durable reader of the stored records.
        let mut writer = work(t0, 41, 1, None);
        for out in &messages {
            writer.handle_outgoing(t0, out).unwrap();
        }
        let mut subject = Subject::starting_at(1);
        subject.drain(t0, &mut writer);
        let mut reader = RunReader::new(41);
        let durable: Vec<StreamEvent> = subject
            .read(&mut reader)
            .into_iter()
            .filter_map(|e| match e {
                ReadEvent::Stream(s) => Some(s),
                ReadEvent::Attempt(1) => None,
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(durable, core_events);
    }
}

#[test]
fn gaps_violations_and_unknown_kinds() {
    let headers = |kind: &str, attempt: &str, index: &str| {
        vec![
            ("Nap-Event".to_owned(), kind.to_owned()),
            ("Nap-Attempt".to_owned(), attempt.to_owned()),
            ("Nap-Index".to_owned(), index.to_owned()),
            ("Nap-Prompt-Seq".to_owned(), "41".to_owned()),
        ]
    };
    let ack = br#"{"type":"status","data":"ack"}"#;
    let feed = |reader: &mut RunReader, seq, h: &Vec<(String, String)>, body: &[u8]| {
        reader.handle_record(&StoredRecord {
            seq,
            headers: h,
            body,
        });
        std::iter::from_fn(|| reader.poll()).collect::<Vec<_>>()
    };
    let mut reader = RunReader::new(41);
    assert_eq!(
        feed(&mut reader, 1, &headers("chunk", "1", "0"), ack),
        [ReadEvent::Attempt(1), ReadEvent::Stream(StreamEvent::Ack)]
    );
    // An unknown kind is skipped, its index counted.
    assert_eq!(
        feed(&mut reader, 2, &headers("progress", "1", "1"), b"{}"),
        []
    );
    // Unusable headers: a violation, skipped.
    assert!(matches!(
        feed(&mut reader, 3, &headers("chunk", "x", "2"), ack)[..],
        [ReadEvent::Violation(RecordViolation::Headers {
            seq: 3,
            ..
        })]
    ));
    // A repeated index: a violation.
    assert!(matches!(
        feed(&mut reader, 4, &headers("chunk", "1", "1"), ack)[..],
        [ReadEvent::Violation(RecordViolation::Repeated {
            index: 1,
            ..
        })]
    ));
    // A delivery again of a record already read: ignored.
    assert_eq!(feed(&mut reader, 4, &headers("chunk", "1", "2"), ack), []);
    // A gap: incomplete, final.
    assert_eq!(
        feed(&mut reader, 5, &headers("chunk", "1", "3"), ack),
        [ReadEvent::Incomplete {
            attempt: 1,
            expected: 2,
            found: 3
        }]
    );
    assert!(reader.is_ended());
    assert!(matches!(
        feed(&mut reader, 6, &headers("end", "1", "4"), b"")[..],
        [ReadEvent::Violation(RecordViolation::AfterEnd { seq: 6 })]
    ));
}

// ---------------------------------------------------------------------------
// D11: run state.

#[test]
fn run_state_table() {
    let last = |kind: &str, attempt| Some(record_meta(kind, attempt, 0, 41, 9));
    assert_eq!(RunState::derive(None, None), None);
    assert_eq!(
        RunState::derive(None, last("chunk", 1).as_ref()),
        Some(RunState::Expired)
    );
    assert_eq!(RunState::derive(Some(41), None), Some(RunState::Queued));
    assert_eq!(
        RunState::derive(Some(41), Some(&record_meta("end", 1, 0, 7, 9))),
        Some(RunState::Queued)
    );
    assert_eq!(
        RunState::derive(Some(41), last("chunk", 2).as_ref()),
        Some(RunState::Running { attempt: 2 })
    );
    assert_eq!(
        RunState::derive(Some(41), last("end", 2).as_ref()),
        Some(RunState::Complete { attempt: 2 })
    );
    assert!(matches!(
        RunState::derive(Some(41), last("exhausted", 4).as_ref()),
        Some(RunState::Exhausted { .. })
    ));
    assert!(matches!(
        RunState::derive(Some(41), last("error", 1).as_ref()),
        Some(RunState::Failed { attempt: 1, .. })
    ));
    let cancel = vec![
        ("Nap-Event".to_owned(), "cancel".to_owned()),
        ("Nap-Attempt".to_owned(), "0".to_owned()),
        ("Nap-Prompt-Seq".to_owned(), "41".to_owned()),
    ];
    let cancel = LastRecord::read(&StoredRecord {
        seq: 3,
        headers: &cancel,
        body: b"",
    });
    assert_eq!(
        RunState::derive(Some(41), Some(&cancel)),
        Some(RunState::Cancelled { attempt: 0 })
    );
    assert_eq!(
        RunState::Running { attempt: 2 }.to_string(),
        "running (attempt 2)"
    );
}

// ---------------------------------------------------------------------------
// D2, D4: streams and adverts as the document shows them.

#[test]
fn default_streams_are_the_documents() {
    let streams = Streams::default();
    assert_eq!(
        streams.runs.subjects,
        ["agents.durable.prompt.>", "agents.durable.answer.>"]
    );
    assert_eq!(streams.replies.subjects, ["agents.durable.reply.>"]);
    assert_eq!(streams.runs.max_msgs_per_subject, 1);
    assert!(streams.runs.discard_new_per_subject);
    assert_eq!(streams.runs.max_age, Duration::from_secs(7 * 24 * 3600));
    assert!(
        streams
            .check_replies(&streams.replies, streams.runs.max_age)
            .is_ok()
    );
    // Custom prefixes are captured once.
    let custom = DurableSubjects::new("jobs.p.x", "jobs.r.x", "jobs.a.x").unwrap();
    let s = Streams::default().capturing(&custom).capturing(&custom);
    assert_eq!(s.runs.subjects.len(), 4);
    assert_eq!(s.replies.subjects, ["agents.durable.reply.>", "jobs.r.x.*"]);
}

#[test]
fn the_documents_info_record_advertises_durable_runs() {
    let start = DOC.find("```json\n{\n  \"name\": \"agents\"").unwrap() + "```json\n".len();
    let end = start + DOC[start..].find("```").unwrap();
    let info = AgentInfo::parse(&DOC.as_bytes()[start..end]).unwrap();
    let advert = DurableAdvert::read(&info.prompt.metadata).unwrap().unwrap();
    let identity = Identity::new("echo", "alice", "demo").unwrap();
    assert_eq!(
        advert,
        DurableAdvert::new(&identity, WorkerPolicy::default())
    );
    // What nap writes reads back the same, and is what the record shows.
    for (key, value) in advert.metadata() {
        assert_eq!(info.prompt.metadata[&key], value.as_str(), "{key}");
    }
}

// ---------------------------------------------------------------------------
// D7: senders of stored prompts.

#[test]
fn stored_prompt_senders() {
    let stored_at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let signer = SenderSigner::new(SEED, Account::new("ACME").unwrap()).unwrap();
    let run = doc_run();
    let subject = subjects().prompt(&run);
    let payload = br#"{"prompt":"hi"}"#;
    let sign = |sub: &str, at: SystemTime| {
        signer
            .sign(
                sub,
                SenderTime::from_system_time(at).unwrap(),
                Nonce::new("n1").unwrap(),
                payload,
            )
            .unwrap()
            .encode()
    };
    let config = VerifierConfig::default();
    let admit = |header: &str, requirement| {
        admit_stored_prompt(&config, &subject, stored_at, [header], payload, requirement)
    };
    // Verified, however often it is claimed.
    let good = sign(&subject, stored_at - Duration::from_secs(5));
    for _ in 0..3 {
        assert_eq!(
            admit(&good, MinSenderTrust::Signed).unwrap().class(),
            TrustClass::Verified
        );
    }
    // Signed long before it was stored: a replay (401).
    let old = sign(&subject, stored_at - Duration::from_secs(3600));
    let err = admit(&old, MinSenderTrust::Any).unwrap_err();
    assert!(matches!(
        err,
        SenderRejection::Failed(VerificationFailure::OutsideWindow { .. })
    ));
    assert_eq!(err.status(), StatusCode::Unauthorized);
    // Signed for another run: the subject binds it (401).
    let other = subjects().prompt(&RunId::from_random([9; 16]));
    let moved = sign(&other, stored_at);
    assert!(matches!(
        admit(&moved, MinSenderTrust::Any).unwrap_err(),
        SenderRejection::Failed(VerificationFailure::Subject(_))
    ));
    // No header: absent, refused by a signed endpoint.
    let absent = admit_stored_prompt(
        &config,
        &subject,
        stored_at,
        std::iter::empty(),
        payload,
        MinSenderTrust::Signed,
    )
    .unwrap_err();
    assert_eq!(
        absent,
        SenderRejection::SignatureRequired(TrustClass::Absent)
    );
    // Malformed: 400.
    assert_eq!(
        admit("{", MinSenderTrust::Any).unwrap_err().status(),
        StatusCode::BadRequest
    );
}
