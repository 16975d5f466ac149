//! The records a caller stores in the prompt stream: a run's prompt
//! (durable D6) and a query's answer (D12).

use super::headers::{
    Append, EXPECTED_LAST_SUBJECT_SEQUENCE_HEADER, KEY_HEADER, MAX_MESSAGES_PER_SUBJECT,
    MSG_ID_HEADER, WRONG_LAST_SEQUENCE,
};
use super::run_id::{IdempotencyKey, RunId};
use super::subjects::DurableSubjects;

/// The prompt record of a run (D6.1): subject and headers around the §5
/// request body, unchanged. Further headers (`Agent-Sender`,
/// `traceparent`, an interceptor's) are the caller's to add.
///
/// ```
/// use nap_proto::Identity;
/// use nap_proto::durable::{DurableSubjects, IdempotencyKey, RunId, prompt_record};
///
/// let subjects = DurableSubjects::for_identity(&Identity::new("echo", "alice", "demo").unwrap());
/// let key = IdempotencyKey::new("nightly-report").unwrap();
/// let run = RunId::from_key(subjects.prompt_prefix(), &key);
/// let record = prompt_record(&subjects, &run, Some(&key), br#"{"prompt":"hi"}"#.to_vec());
/// assert_eq!(record.subject, "agents.durable.prompt.echo.alice.demo.fsgqpzk3ew22q6ltdnwy7m775a");
/// assert_eq!(record.header("Nats-Msg-Id"), Some(run.as_str()));
/// assert_eq!(record.header("Nats-Expected-Last-Subject-Sequence"), Some("0"));
/// assert_eq!(record.header("Nap-Idempotency-Key"), Some("nightly-report"));
/// ```
pub fn prompt_record(
    subjects: &DurableSubjects,
    run: &RunId,
    key: Option<&IdempotencyKey>,
    payload: Vec<u8>,
) -> Append {
    let mut headers = vec![
        (MSG_ID_HEADER, run.to_string()),
        // D6.1: the subject must hold nothing yet.
        (EXPECTED_LAST_SUBJECT_SEQUENCE_HEADER, "0".to_owned()),
    ];
    if let Some(key) = key {
        headers.push((KEY_HEADER, key.to_string()));
    }
    Append {
        subject: subjects.prompt(run),
        headers,
        body: payload,
    }
}

/// The answer record of query `query` of `attempt` (D12): the §5.1 answer
/// payload, stored once on its subject.
pub fn answer_record(
    subjects: &DurableSubjects,
    run: &RunId,
    attempt: u32,
    query: u32,
    payload: Vec<u8>,
) -> Append {
    answer_record_at(
        subjects.answer(run, attempt, query),
        run,
        attempt,
        query,
        payload,
    )
}

/// The answer record for a query whose `reply_subject` was read from its
/// chunk (D12); its `Nats-Msg-Id` is the subject's last three tokens.
pub fn answer_record_for(reply_subject: &str, payload: Vec<u8>) -> Append {
    let tail: Vec<&str> = reply_subject.rsplitn(4, '.').take(3).collect();
    let msg_id = tail.into_iter().rev().collect::<Vec<_>>().join(".");
    Append {
        subject: reply_subject.to_owned(),
        headers: vec![
            (MSG_ID_HEADER, msg_id),
            (EXPECTED_LAST_SUBJECT_SEQUENCE_HEADER, "0".to_owned()),
        ],
        body: payload,
    }
}

fn answer_record_at(
    subject: String,
    run: &RunId,
    attempt: u32,
    query: u32,
    payload: Vec<u8>,
) -> Append {
    Append {
        subject,
        headers: vec![
            (MSG_ID_HEADER, format!("{run}.{attempt}.{query}")),
            (EXPECTED_LAST_SUBJECT_SEQUENCE_HEADER, "0".to_owned()),
        ],
        body: payload,
    }
}

/// What the answer to a prompt record's publication says (D6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Submission {
    /// The prompt was stored now, at this stream sequence.
    Created {
        /// The prompt record's sequence: the run's generation.
        seq: u64,
    },
    /// The run exists. The sequence is known when the server answered with
    /// a duplicate PubAck; otherwise read the prompt record for it.
    Exists {
        /// The prompt record's sequence, when the answer carried it.
        seq: Option<u64>,
    },
}

impl Submission {
    /// Reads a PubAck (D6.3).
    pub fn from_ack(seq: u64, duplicate: bool) -> Submission {
        if duplicate {
            Submission::Exists { seq: Some(seq) }
        } else {
            Submission::Created { seq }
        }
    }

    /// Reads a JetStream error code (D6.3): `10071` and `10077` mean the run
    /// exists; any other code is a failure, `None`.
    pub fn from_error_code(code: u64) -> Option<Submission> {
        matches!(code, WRONG_LAST_SEQUENCE | MAX_MESSAGES_PER_SUBJECT)
            .then_some(Submission::Exists { seq: None })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn answers_carry_their_tail_as_msg_id() {
        let id = crate::Identity::new("echo", "alice", "demo").unwrap();
        let subjects = DurableSubjects::for_identity(&id);
        let run = RunId::from_random([7; 16]);
        let made = answer_record(&subjects, &run, 2, 1, b"yes".to_vec());
        let read = answer_record_for(&made.subject, b"yes".to_vec());
        assert_eq!(made, read);
        assert_eq!(
            made.header(MSG_ID_HEADER),
            Some(format!("{run}.2.1").as_str())
        );
    }

    #[test]
    fn submission_outcomes() {
        assert_eq!(
            Submission::from_ack(4, false),
            Submission::Created { seq: 4 }
        );
        assert_eq!(
            Submission::from_ack(4, true),
            Submission::Exists { seq: Some(4) }
        );
        assert_eq!(
            Submission::from_error_code(10071),
            Some(Submission::Exists { seq: None })
        );
        assert_eq!(
            Submission::from_error_code(10077),
            Some(Submission::Exists { seq: None })
        );
        assert_eq!(Submission::from_error_code(10059), None);
    }
}
