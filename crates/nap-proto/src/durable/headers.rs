//! The headers of durable records (durable D6.1, D8.2) and the views of a
//! record that the rules read and write.

use std::fmt;

use crate::error::{ERROR_CODE_HEADER, ERROR_HEADER, RemoteError};
use crate::stream::Headers;

/// `Nap-Event`: what a reply record is (D8.1).
pub const EVENT_HEADER: &str = "Nap-Event";
/// `Nap-Attempt`: the attempt that stored a reply record (D8.2).
pub const ATTEMPT_HEADER: &str = "Nap-Attempt";
/// `Nap-Index`: a reply record's position within its attempt, from 0 (D8.2).
pub const INDEX_HEADER: &str = "Nap-Index";
/// `Nap-Prompt-Seq`: the stream sequence of the prompt record a reply
/// record answers, the run's generation (D8.2).
pub const PROMPT_SEQ_HEADER: &str = "Nap-Prompt-Seq";
/// `Nap-Idempotency-Key`: the key a run id was derived from (D6.1).
pub const KEY_HEADER: &str = "Nap-Idempotency-Key";
/// `Nats-Msg-Id`: JetStream's duplicate detection (D6.1, D8.2).
pub const MSG_ID_HEADER: &str = "Nats-Msg-Id";
/// `Nats-Expected-Last-Subject-Sequence`: JetStream stores the message only
/// when the subject's last message has this sequence (`0`: none). The fence
/// of D9.4.
pub const EXPECTED_LAST_SUBJECT_SEQUENCE_HEADER: &str = "Nats-Expected-Last-Subject-Sequence";

/// JetStream's error code for a refused `Nats-Expected-Last-Subject-Sequence`.
pub const WRONG_LAST_SEQUENCE: u64 = 10071;
/// JetStream's error code for a subject that holds its
/// `max_msgs_per_subject` already, with `discard_new_per_subject` (D2.1).
pub const MAX_MESSAGES_PER_SUBJECT: u64 = 10077;

/// The kind of a reply record, its `Nap-Event` (D8.1).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RecordKind {
    /// `chunk`: a §6.2 chunk, body unchanged.
    Chunk,
    /// `error`: the agent's error signal (§9.3) and the end of the run.
    Error,
    /// `end`: the §6.5 terminator of a successful reply.
    End,
    /// `exhausted`: every attempt failed (D9.7).
    Exhausted,
    /// `cancel`: the run was cancelled (D13).
    Cancel,
    /// A kind this version does not know; readers skip it (D8.1).
    Unknown(String),
}

impl RecordKind {
    /// The header value.
    pub fn as_str(&self) -> &str {
        match self {
            RecordKind::Chunk => "chunk",
            RecordKind::Error => "error",
            RecordKind::End => "end",
            RecordKind::Exhausted => "exhausted",
            RecordKind::Cancel => "cancel",
            RecordKind::Unknown(other) => other,
        }
    }

    /// Reads a header value.
    pub fn parse(value: &str) -> RecordKind {
        match value {
            "chunk" => RecordKind::Chunk,
            "error" => RecordKind::Error,
            "end" => RecordKind::End,
            "exhausted" => RecordKind::Exhausted,
            "cancel" => RecordKind::Cancel,
            other => RecordKind::Unknown(other.to_owned()),
        }
    }

    /// Whether nothing may follow a record of this kind (D8.1).
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            RecordKind::Error | RecordKind::End | RecordKind::Exhausted | RecordKind::Cancel
        )
    }
}

impl fmt::Display for RecordKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a reply record's headers are unusable (D10.3).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// A required header is absent.
    #[error("the record has no {header} header (D8.2)")]
    Missing {
        /// The header's name.
        header: &'static str,
    },
    /// A numeric header does not hold a number (or `Nap-Attempt` is `0`
    /// outside a `cancel` record).
    #[error("the record's {header} header is {value:?}, not a valid number (D8.2)")]
    NotANumber {
        /// The header's name.
        header: &'static str,
        /// Its value.
        value: String,
    },
}

/// What the `Nap-*` headers of one reply record say (D8.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMeta {
    /// `Nap-Event`.
    pub kind: RecordKind,
    /// `Nap-Attempt`: ≥ 1, or `0` on a `cancel` record before any attempt.
    pub attempt: u32,
    /// `Nap-Index`; `None` on a `cancel` record.
    pub index: Option<u32>,
    /// `Nap-Prompt-Seq`: the generation (D1.1).
    pub prompt_seq: u64,
}

impl RecordMeta {
    /// Reads the headers of a reply record.
    pub fn parse(headers: &dyn Headers) -> Result<RecordMeta, RecordError> {
        let kind = RecordKind::parse(required(headers, EVENT_HEADER)?);
        let attempt: u32 = number(headers, ATTEMPT_HEADER)?;
        if attempt == 0 && kind != RecordKind::Cancel {
            return Err(RecordError::NotANumber {
                header: ATTEMPT_HEADER,
                value: "0".into(),
            });
        }
        let index = match kind {
            RecordKind::Cancel => None,
            _ => Some(number(headers, INDEX_HEADER)?),
        };
        let prompt_seq = number(headers, PROMPT_SEQ_HEADER)?;
        Ok(RecordMeta {
            kind,
            attempt,
            index,
            prompt_seq,
        })
    }

    /// The `Nats-Msg-Id` of this record of run `run` (D8.2).
    pub fn msg_id(&self, run: &super::RunId) -> String {
        match self.index {
            Some(index) => format!("{run}.{}.{}.{index}", self.prompt_seq, self.attempt),
            None => format!("{run}.{}.cancel", self.prompt_seq),
        }
    }

    /// The headers nap writes, in its order (D8.2), given the sequence the
    /// record expects to follow.
    pub(crate) fn headers(&self, run: &super::RunId, expected: u64) -> Vec<(&'static str, String)> {
        let mut headers = Vec::with_capacity(8);
        headers.push((EVENT_HEADER, self.kind.as_str().to_owned()));
        headers.push((ATTEMPT_HEADER, self.attempt.to_string()));
        if let Some(index) = self.index {
            headers.push((INDEX_HEADER, index.to_string()));
        }
        headers.push((PROMPT_SEQ_HEADER, self.prompt_seq.to_string()));
        headers.push((MSG_ID_HEADER, self.msg_id(run)));
        headers.push((EXPECTED_LAST_SUBJECT_SEQUENCE_HEADER, expected.to_string()));
        headers
    }
}

fn required<'a>(headers: &'a dyn Headers, header: &'static str) -> Result<&'a str, RecordError> {
    headers.get(header).ok_or(RecordError::Missing { header })
}

fn number<T: std::str::FromStr>(
    headers: &dyn Headers,
    header: &'static str,
) -> Result<T, RecordError> {
    let value = required(headers, header)?;
    // Decimal digits only: no sign, no space, no `+`.
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(RecordError::NotANumber {
            header,
            value: value.to_owned(),
        });
    }
    value.parse().map_err(|_| RecordError::NotANumber {
        header,
        value: value.to_owned(),
    })
}

/// One record as read back from a stream: its stream sequence, headers and
/// body. What transports hand the durable machines.
#[derive(Clone, Copy)]
pub struct StoredRecord<'a> {
    /// The record's stream sequence.
    pub seq: u64,
    /// Its headers.
    pub headers: &'a dyn Headers,
    /// Its body.
    pub body: &'a [u8],
}

impl fmt::Debug for StoredRecord<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredRecord")
            .field("seq", &self.seq)
            .field("body_len", &self.body.len())
            .finish_non_exhaustive()
    }
}

impl StoredRecord<'_> {
    /// The §9.1 error an `error` or `exhausted` record carries.
    pub fn error(&self) -> RemoteError {
        RemoteError::from_parts(
            self.headers.get(ERROR_CODE_HEADER),
            self.headers.get(ERROR_HEADER),
            self.body,
        )
    }
}

/// The last record on a run's reply subject, as the worker's claim decision
/// (D9.3), fencing (D9.4), cancellation (D13) and run state (D11) read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastRecord {
    /// Its stream sequence: what the next record must expect (D9.4).
    pub seq: u64,
    /// Its `Nap-*` headers; `None` when they are unusable (a record this
    /// extension did not write), which counts as another generation's.
    pub meta: Option<RecordMeta>,
    /// The error of an `error` or `exhausted` record.
    pub error: Option<RemoteError>,
}

impl LastRecord {
    /// Reads a record fetched as the last on its subject.
    pub fn read(record: &StoredRecord<'_>) -> LastRecord {
        let meta = RecordMeta::parse(record.headers).ok();
        let error = meta
            .as_ref()
            .filter(|m| matches!(m.kind, RecordKind::Error | RecordKind::Exhausted))
            .map(|_| record.error());
        LastRecord {
            seq: record.seq,
            meta,
            error,
        }
    }

    /// Its headers, when it belongs to generation `prompt_seq`.
    pub fn of_generation(&self, prompt_seq: u64) -> Option<&RecordMeta> {
        self.meta.as_ref().filter(|m| m.prompt_seq == prompt_seq)
    }
}

/// One record to store: the subject, the headers in order (the fence
/// included) and the body. The transport publishes it through JetStream
/// and reports the outcome to the machine that made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Append {
    /// The subject to publish to.
    pub subject: String,
    /// The headers, in the order nap writes them.
    pub headers: Vec<(&'static str, String)>,
    /// The body, unchanged from the §6 message it stores.
    pub body: Vec<u8>,
}

impl Append {
    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The sequence the record expects the subject's last record to have
    /// (D9.4).
    pub fn expected_last_subject_sequence(&self) -> Option<u64> {
        self.header(EXPECTED_LAST_SUBJECT_SEQUENCE_HEADER)?
            .parse()
            .ok()
    }
}

impl Headers for Append {
    fn get(&self, name: &str) -> Option<&str> {
        self.header(name)
    }
}
