//! How a durable agent says so in its `$SRV.INFO` record (durable D4).

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Map, Value};

use super::config::{REPLIES_STREAM, RUNS_STREAM, WorkerPolicy};
use super::subjects::{DurableSubjects, SubjectsError};
use crate::subject::Identity;

/// The version of this extension, the value of the `durable` key (D4).
pub const VERSION: &str = "1";

/// The `prompt` endpoint metadata keys of D4.
pub mod keys {
    /// `durable`: the extension version.
    pub const DURABLE: &str = "durable";
    /// `durable_prompt_subject`.
    pub const PROMPT_SUBJECT: &str = "durable_prompt_subject";
    /// `durable_reply_subject`.
    pub const REPLY_SUBJECT: &str = "durable_reply_subject";
    /// `durable_answer_subject`.
    pub const ANSWER_SUBJECT: &str = "durable_answer_subject";
    /// `durable_prompt_stream` (optional).
    pub const PROMPT_STREAM: &str = "durable_prompt_stream";
    /// `durable_reply_stream` (optional).
    pub const REPLY_STREAM: &str = "durable_reply_stream";
    /// `durable_claim_timeout_s`.
    pub const CLAIM_TIMEOUT_S: &str = "durable_claim_timeout_s";
    /// `durable_max_attempts`.
    pub const MAX_ATTEMPTS: &str = "durable_max_attempts";
}

/// What a durable agent advertises (D4): its subjects, the streams that
/// hold them, and its worker policy.
///
/// ```
/// use nap_proto::Identity;
/// use nap_proto::durable::{DurableAdvert, WorkerPolicy};
///
/// let advert = DurableAdvert::new(&Identity::new("echo", "alice", "demo").unwrap(), WorkerPolicy::default());
/// let metadata: serde_json::Map<String, serde_json::Value> = advert
///     .metadata()
///     .into_iter()
///     .map(|(k, v)| (k, v.into()))
///     .collect();
/// assert_eq!(metadata["durable"], "1");
/// assert_eq!(DurableAdvert::read(&metadata).unwrap(), Some(advert));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurableAdvert {
    /// The three subject prefixes (D3).
    pub subjects: DurableSubjects,
    /// The stream of prompts and answers (default `NAP_RUNS`).
    pub prompt_stream: String,
    /// The stream of reply records (default `NAP_REPLIES`).
    pub reply_stream: String,
    /// The claim timeout and the attempts a run gets.
    pub policy: WorkerPolicy,
}

/// Why an endpoint's durable metadata is unusable (D4). A caller treats
/// such an agent as not durable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AdvertError {
    /// `durable` names a version this implementation does not know.
    #[error(
        "the agent advertises durable runs version {found:?}; this implementation knows {VERSION:?} (D4)"
    )]
    Version {
        /// The value found.
        found: String,
    },
    /// A required key is absent or not a string.
    #[error("the durable metadata key {key} is missing or not a string (D4)")]
    Missing {
        /// The key.
        key: &'static str,
    },
    /// A number is malformed or out of range.
    #[error("the durable metadata key {key} is {found:?}, not a whole number of at least 1 (D4)")]
    Number {
        /// The key.
        key: &'static str,
        /// The value found.
        found: String,
    },
    /// A stream name is empty or not a valid stream name.
    #[error("the durable metadata key {key} is {found:?}, not a stream name (D4)")]
    StreamName {
        /// The key.
        key: &'static str,
        /// The value found.
        found: String,
    },
    /// The subjects break D3.
    #[error(transparent)]
    Subjects(#[from] SubjectsError),
}

impl DurableAdvert {
    /// The advert of an agent with the default subjects and streams (D3,
    /// D2) and `policy`.
    pub fn new(identity: &Identity, policy: WorkerPolicy) -> DurableAdvert {
        DurableAdvert {
            subjects: DurableSubjects::for_identity(identity),
            prompt_stream: RUNS_STREAM.to_owned(),
            reply_stream: REPLIES_STREAM.to_owned(),
            policy,
        }
    }

    /// The keys to add to the `prompt` endpoint metadata (D4). The stream
    /// keys are written only when they are not the defaults; the claim
    /// timeout in whole seconds, rounded up.
    pub fn metadata(&self) -> HashMap<String, String> {
        let timeout = self.policy.claim_timeout;
        let seconds = timeout.as_secs() + u64::from(timeout.subsec_nanos() > 0);
        let mut metadata = HashMap::from([
            (keys::DURABLE.to_owned(), VERSION.to_owned()),
            (
                keys::PROMPT_SUBJECT.to_owned(),
                self.subjects.prompt_prefix().to_owned(),
            ),
            (
                keys::REPLY_SUBJECT.to_owned(),
                self.subjects.reply_prefix().to_owned(),
            ),
            (
                keys::ANSWER_SUBJECT.to_owned(),
                self.subjects.answer_prefix().to_owned(),
            ),
            (keys::CLAIM_TIMEOUT_S.to_owned(), seconds.max(1).to_string()),
            (
                keys::MAX_ATTEMPTS.to_owned(),
                self.policy.max_attempts.to_string(),
            ),
        ]);
        if self.prompt_stream != RUNS_STREAM {
            metadata.insert(keys::PROMPT_STREAM.to_owned(), self.prompt_stream.clone());
        }
        if self.reply_stream != REPLIES_STREAM {
            metadata.insert(keys::REPLY_STREAM.to_owned(), self.reply_stream.clone());
        }
        metadata
    }

    /// Reads a `prompt` endpoint's metadata (D4): `None` when the endpoint
    /// does not advertise durable runs, an error when it advertises another
    /// version or malformed values.
    pub fn read(metadata: &Map<String, Value>) -> Result<Option<DurableAdvert>, AdvertError> {
        let Some(version) = metadata.get(keys::DURABLE) else {
            return Ok(None);
        };
        match version.as_str() {
            Some(VERSION) => {}
            Some(other) => {
                return Err(AdvertError::Version {
                    found: other.to_owned(),
                });
            }
            None => {
                return Err(AdvertError::Version {
                    found: version.to_string(),
                });
            }
        }
        let text = |key: &'static str| {
            metadata
                .get(key)
                .and_then(Value::as_str)
                .ok_or(AdvertError::Missing { key })
        };
        let number = |key: &'static str| -> Result<u32, AdvertError> {
            let value = text(key)?;
            value
                .parse::<u32>()
                .ok()
                .filter(|n| *n >= 1 && value.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| AdvertError::Number {
                    key,
                    found: value.to_owned(),
                })
        };
        let stream = |key: &'static str, default: &str| -> Result<String, AdvertError> {
            match metadata.get(key) {
                None => Ok(default.to_owned()),
                Some(value) => value
                    .as_str()
                    .filter(|s| is_stream_name(s))
                    .map(str::to_owned)
                    .ok_or_else(|| AdvertError::StreamName {
                        key,
                        found: value
                            .as_str()
                            .map_or_else(|| value.to_string(), str::to_owned),
                    }),
            }
        };
        let subjects = DurableSubjects::new(
            text(keys::PROMPT_SUBJECT)?,
            text(keys::REPLY_SUBJECT)?,
            text(keys::ANSWER_SUBJECT)?,
        )?;
        Ok(Some(DurableAdvert {
            subjects,
            prompt_stream: stream(keys::PROMPT_STREAM, RUNS_STREAM)?,
            reply_stream: stream(keys::REPLY_STREAM, REPLIES_STREAM)?,
            policy: WorkerPolicy {
                claim_timeout: Duration::from_secs(u64::from(number(keys::CLAIM_TIMEOUT_S)?)),
                max_attempts: number(keys::MAX_ATTEMPTS)?,
            },
        }))
    }
}

/// A JetStream stream name: non-empty, printable ASCII without space, `.`,
/// `*`, `>`, path separators.
fn is_stream_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'.' | b'*' | b'>' | b'/' | b'\\'))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn metadata(patch: impl FnOnce(&mut Map<String, Value>)) -> Map<String, Value> {
        let advert = DurableAdvert::new(
            &Identity::new("echo", "alice", "demo").unwrap(),
            WorkerPolicy::default(),
        );
        let mut map: Map<String, Value> = advert
            .metadata()
            .into_iter()
            .map(|(k, v)| (k, Value::from(v)))
            .collect();
        patch(&mut map);
        map
    }

    #[test]
    fn absent_unknown_and_malformed() {
        assert_eq!(DurableAdvert::read(&Map::new()), Ok(None));
        assert_eq!(
            DurableAdvert::read(&metadata(|m| {
                m.insert("durable".into(), "2".into());
            })),
            Err(AdvertError::Version { found: "2".into() })
        );
        assert_eq!(
            DurableAdvert::read(&metadata(|m| {
                m.shift_remove("durable_reply_subject");
            })),
            Err(AdvertError::Missing {
                key: "durable_reply_subject"
            })
        );
        for bad in ["0", "-1", "+3", "3s", ""] {
            assert!(matches!(
                DurableAdvert::read(&metadata(|m| {
                    m.insert("durable_max_attempts".into(), bad.into());
                })),
                Err(AdvertError::Number { .. })
            ));
        }
        assert!(matches!(
            DurableAdvert::read(&metadata(|m| {
                m.insert("durable_prompt_stream".into(), "a.b".into());
            })),
            Err(AdvertError::StreamName { .. })
        ));
        assert!(matches!(
            DurableAdvert::read(&metadata(|m| {
                m.insert(
                    "durable_prompt_subject".into(),
                    "agents.prompt.echo.alice.demo".into(),
                );
            })),
            Err(AdvertError::Subjects(_))
        ));
        // Unknown durable_* keys are ignored.
        assert!(
            DurableAdvert::read(&metadata(|m| {
                m.insert("durable_future".into(), "x".into());
            }))
            .unwrap()
            .is_some()
        );
    }

    #[test]
    fn custom_streams_round_trip() {
        let mut advert = DurableAdvert::new(
            &Identity::new("echo", "alice", "demo").unwrap(),
            WorkerPolicy {
                claim_timeout: Duration::from_millis(1500),
                max_attempts: 5,
            },
        );
        advert.prompt_stream = "TENANT_RUNS".into();
        let map: Map<String, Value> = advert
            .metadata()
            .into_iter()
            .map(|(k, v)| (k, Value::from(v)))
            .collect();
        assert_eq!(map["durable_claim_timeout_s"], "2");
        let read = DurableAdvert::read(&map).unwrap().unwrap();
        assert_eq!(read.prompt_stream, "TENANT_RUNS");
        assert_eq!(read.reply_stream, "NAP_REPLIES");
        assert_eq!(read.policy.claim_timeout, Duration::from_secs(2));
        assert_eq!(read.policy.max_attempts, 5);
    }
}
