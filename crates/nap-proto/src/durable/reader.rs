//! The reader's half of a durable run, sans IO (durable D10): stored reply
//! records in stream order in, the events a core caller gets out (§6, §9),
//! one attempt at a time.
//!
//! Before reading, the transport reads the run's prompt record (its
//! sequence is the generation) and the last record on its reply subject,
//! and makes the reader with [`RunReader::from_latest`], so that a replay
//! shows only the latest attempt. It then hands every record an ordered
//! consumer delivers to [`RunReader::handle_record`] and takes the events
//! from [`RunReader::poll`]. [`ReadEvent::Attempt`] marks where an attempt's
//! output begins: anything shown before it belongs to an earlier attempt
//! and is void.
//!
//! ```
//! use nap_proto::durable::{ReadEvent, RunReader, StoredRecord};
//! use nap_proto::StreamEvent;
//!
//! let record = |attempt: &'static str, index: &'static str, event: &'static str| {
//!     [("Nap-Event", event), ("Nap-Attempt", attempt), ("Nap-Index", index), ("Nap-Prompt-Seq", "41")]
//! };
//! let mut reader = RunReader::new(41);
//! let ack = record("1", "0", "chunk");
//! reader.handle_record(&StoredRecord { seq: 57, headers: &ack, body: br#"{"type":"status","data":"ack"}"# });
//! assert_eq!(reader.poll(), Some(ReadEvent::Attempt(1)));
//! assert_eq!(reader.poll(), Some(ReadEvent::Stream(StreamEvent::Ack)));
//! // Attempt 1 crashed; attempt 2 starts over.
//! let ack2 = record("2", "0", "chunk");
//! reader.handle_record(&StoredRecord { seq: 60, headers: &ack2, body: br#"{"type":"status","data":"ack"}"# });
//! assert_eq!(reader.poll(), Some(ReadEvent::Attempt(2)));
//! assert_eq!(reader.poll(), Some(ReadEvent::Stream(StreamEvent::Ack)));
//! let end = record("2", "1", "end");
//! reader.handle_record(&StoredRecord { seq: 61, headers: &end, body: b"" });
//! assert_eq!(reader.poll(), Some(ReadEvent::Stream(StreamEvent::End)));
//! assert!(reader.is_ended());
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::str::FromStr;

use super::headers::{LastRecord, RecordError, RecordKind, RecordMeta, StoredRecord};
use crate::stream::{StreamEvent, chunk_event};

/// What a reader learns from a run's records (D10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadEvent {
    /// The output of this attempt begins here. When an earlier attempt was
    /// shown, everything shown of it is void: a later attempt superseded it
    /// (D10.2).
    Attempt(u32),
    /// One event of the current attempt, as a core caller gets it from the
    /// same message (D10.3). [`StreamEvent::Error`] (an `error` or
    /// `exhausted` record) and [`StreamEvent::End`] are final.
    Stream(StreamEvent),
    /// The run was cancelled (D13). Final.
    Cancelled {
        /// The attempt it interrupted, `0` when it was queued.
        attempt: u32,
    },
    /// Records of the current attempt are missing (D10.3): the reply is
    /// incomplete. Final.
    Incomplete {
        /// The attempt.
        attempt: u32,
        /// The index the reader expected next.
        expected: u32,
        /// The index it found.
        found: u32,
    },
    /// A record that breaks the rules of durable records; skipped, nothing
    /// else changes (D10.3).
    Violation(RecordViolation),
}

impl ReadEvent {
    /// Whether the reading is over after this event.
    pub fn is_final(&self) -> bool {
        match self {
            ReadEvent::Stream(event) => matches!(event, StreamEvent::Error(_) | StreamEvent::End),
            ReadEvent::Cancelled { .. } | ReadEvent::Incomplete { .. } => true,
            ReadEvent::Attempt(_) | ReadEvent::Violation(_) => false,
        }
    }
}

/// A record that breaks the rules of durable records (D10.3).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordViolation {
    /// Its `Nap-*` headers are unusable.
    #[error("a reply record with unusable headers at sequence {seq}: {error}")]
    Headers {
        /// The record's stream sequence.
        seq: u64,
        /// What is wrong.
        error: RecordError,
    },
    /// A record of the run after its final record (§6.5, D8.1).
    #[error("a reply record at sequence {seq} after the run's final record (D8.1)")]
    AfterEnd {
        /// The record's stream sequence.
        seq: u64,
    },
    /// An index of the current attempt that was read already.
    #[error("attempt {attempt} stored index {index} twice (sequence {seq})")]
    Repeated {
        /// The attempt.
        attempt: u32,
        /// The repeated index.
        index: u32,
        /// The record's stream sequence.
        seq: u64,
    },
}

/// Where a reader stands: the last stream sequence it read, and the attempt
/// and index it expects next. A new reading resumes from a cursor without
/// repeating or losing a record.
///
/// Its text form is `{seq}.{attempt}.{next_index}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Cursor {
    /// The last stream sequence read (`0`: none).
    pub seq: u64,
    /// The attempt being read (`0`: none yet).
    pub attempt: u32,
    /// The index expected next within it.
    pub next_index: u32,
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.seq, self.attempt, self.next_index)
    }
}

/// A string that is not a [`Cursor`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a cursor is `{{seq}}.{{attempt}}.{{index}}`, three decimal numbers; not {0:?}")]
pub struct CursorError(pub String);

impl FromStr for Cursor {
    type Err = CursorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || CursorError(s.to_owned());
        let mut parts = s.split('.');
        let mut next = || -> Result<&str, CursorError> {
            parts
                .next()
                .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(bad)
        };
        let cursor = Cursor {
            seq: next()?.parse().map_err(|_| bad())?,
            attempt: next()?.parse().map_err(|_| bad())?,
            next_index: next()?.parse().map_err(|_| bad())?,
        };
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(cursor)
    }
}

/// The reader of one run (D10).
#[derive(Debug)]
pub struct RunReader {
    prompt_seq: u64,
    /// Attempts below this are superseded (D10.2).
    floor: u32,
    attempt: u32,
    next_index: u32,
    last_seq: u64,
    ended: bool,
    events: VecDeque<ReadEvent>,
}

impl RunReader {
    /// A reader of generation `prompt_seq` from its first record, showing
    /// every attempt it meets.
    pub fn new(prompt_seq: u64) -> RunReader {
        RunReader {
            prompt_seq,
            floor: 0,
            attempt: 0,
            next_index: 0,
            last_seq: 0,
            ended: false,
            events: VecDeque::new(),
        }
    }

    /// A reader of generation `prompt_seq` from its first record that skips
    /// the attempts before the one of `last`, the last record on the reply
    /// subject read just before (D10.1, D10.2): a replay shows only the
    /// latest attempt.
    pub fn from_latest(prompt_seq: u64, last: Option<&LastRecord>) -> RunReader {
        let mut reader = RunReader::new(prompt_seq);
        reader.floor = last
            .and_then(|l| l.of_generation(prompt_seq))
            .map_or(0, |m| m.attempt);
        reader
    }

    /// A reader of generation `prompt_seq` resuming after `cursor`: records
    /// up to `cursor.seq` were read and are not shown again.
    pub fn resume(prompt_seq: u64, cursor: Cursor) -> RunReader {
        let mut reader = RunReader::new(prompt_seq);
        reader.floor = cursor.attempt;
        reader.attempt = cursor.attempt;
        reader.next_index = cursor.next_index;
        reader.last_seq = cursor.seq;
        reader
    }

    /// Reads the next record of the run's reply subject, in stream order.
    /// A record at or before the last sequence read is ignored (a transport
    /// that delivered it again).
    pub fn handle_record(&mut self, record: &StoredRecord<'_>) {
        if record.seq <= self.last_seq {
            return;
        }
        self.last_seq = record.seq;
        let meta = match RecordMeta::parse(record.headers) {
            Ok(meta) => meta,
            Err(error) => {
                if !self.ended {
                    self.violation(RecordViolation::Headers {
                        seq: record.seq,
                        error,
                    });
                }
                return;
            }
        };
        // D10.2: another generation's records are set aside.
        if meta.prompt_seq != self.prompt_seq {
            return;
        }
        if self.ended {
            self.violation(RecordViolation::AfterEnd { seq: record.seq });
            return;
        }
        if meta.kind == RecordKind::Cancel {
            self.end(ReadEvent::Cancelled {
                attempt: meta.attempt,
            });
            return;
        }
        // D10.2: superseded attempts are skipped.
        if meta.attempt < self.floor.max(self.attempt) {
            return;
        }
        if meta.attempt > self.attempt {
            self.attempt = meta.attempt;
            self.next_index = 0;
            self.events.push_back(ReadEvent::Attempt(meta.attempt));
        }
        let index = meta.index.unwrap_or_default();
        if index < self.next_index {
            self.violation(RecordViolation::Repeated {
                attempt: self.attempt,
                index,
                seq: record.seq,
            });
            return;
        }
        if index > self.next_index {
            // D10.3: a gap is never read as complete.
            self.end(ReadEvent::Incomplete {
                attempt: self.attempt,
                expected: self.next_index,
                found: index,
            });
            return;
        }
        self.next_index += 1;
        match meta.kind {
            RecordKind::Chunk => {
                if let Some(event) = chunk_event(record.body) {
                    self.events.push_back(ReadEvent::Stream(event));
                }
            }
            RecordKind::Error | RecordKind::Exhausted => {
                self.end(ReadEvent::Stream(StreamEvent::Error(record.error())));
            }
            RecordKind::End => self.end(ReadEvent::Stream(StreamEvent::End)),
            // D8.1: unknown kinds are skipped, their index counted.
            RecordKind::Unknown(_) => {}
            RecordKind::Cancel => {}
        }
    }

    fn end(&mut self, event: ReadEvent) {
        self.ended = true;
        self.events.push_back(event);
    }

    fn violation(&mut self, violation: RecordViolation) {
        self.events.push_back(ReadEvent::Violation(violation));
    }

    /// The next event, in order.
    pub fn poll(&mut self) -> Option<ReadEvent> {
        self.events.pop_front()
    }

    /// Where the reader stands, to resume from.
    pub fn cursor(&self) -> Cursor {
        Cursor {
            seq: self.last_seq,
            attempt: self.attempt,
            next_index: self.next_index,
        }
    }

    /// The last stream sequence read (`0`: none): a consumer resumes after it.
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// The generation read.
    pub fn prompt_seq(&self) -> u64 {
        self.prompt_seq
    }

    /// The attempt being shown (`0`: none yet).
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Whether the run's final record was read (or the reply is incomplete).
    pub fn is_ended(&self) -> bool {
        self.ended
    }
}
