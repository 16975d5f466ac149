//! The JetStream settings of durable runs as plain data (durable D2, D9.1):
//! what the streams and the worker consumer are created with, and the
//! checks an existing stream or consumer must pass. Transports convert
//! them to and from their client's types.

use std::fmt;
use std::time::Duration;

use super::subjects::{ANSWER_TOKEN, DurableSubjects, PROMPT_TOKEN, REPLY_TOKEN, ROOT_PREFIX};

/// The default name of the stream of prompts and answers (D2.1).
pub const RUNS_STREAM: &str = "NAP_RUNS";
/// The default name of the stream of reply records (D2.2).
pub const REPLIES_STREAM: &str = "NAP_REPLIES";
/// The default `max_age` of both streams: 7 days (D2).
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);
/// The default duplicate window: 2 minutes, the server's own (D2).
pub const DEFAULT_DUPLICATE_WINDOW: Duration = Duration::from_secs(120);
/// The default claim timeout: 30 s (D4, D9.2).
pub const DEFAULT_CLAIM_TIMEOUT: Duration = Duration::from_secs(30);
/// The default number of attempts a run gets (D4, D9.7).
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;

/// A stream's retention policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Retention {
    /// `limits`: messages stay until a limit removes them.
    Limits,
    /// `interest`.
    Interest,
    /// `workqueue`.
    WorkQueue,
}

/// Where a stream keeps its messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Storage {
    /// On disk: survives a restart.
    File,
    /// In memory.
    Memory,
}

/// What a full stream (or subject) does with a new message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Discard {
    /// Drops the oldest messages.
    Old,
    /// Refuses the new message.
    New,
}

/// The settings of one stream, as created or as found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSettings {
    /// The stream's name.
    pub name: String,
    /// The subjects it captures.
    pub subjects: Vec<String>,
    /// Its retention policy.
    pub retention: Retention,
    /// Its storage.
    pub storage: Storage,
    /// How long a message lives; zero for ever.
    pub max_age: Duration,
    /// How many messages a subject keeps; `-1` (or `0`) for no limit.
    pub max_msgs_per_subject: i64,
    /// What a full stream or subject does.
    pub discard: Discard,
    /// Whether `discard: new` applies per subject.
    pub discard_new_per_subject: bool,
    /// The duplicate window of `Nats-Msg-Id`.
    pub duplicate_window: Duration,
    /// Replicas in a cluster.
    pub replicas: usize,
    /// The stream's message limit; `-1` for none.
    pub max_msgs: i64,
    /// The stream's byte limit; `-1` for none.
    pub max_bytes: i64,
    /// Whether direct gets are allowed.
    pub allow_direct: bool,
    /// Whether the stream changes subjects on the way in or copies another
    /// stream (a subject transform, a mirror or sources). Never set by nap.
    pub transforms_subjects: bool,
}

/// The two streams of durable runs (D2), as an implementation creates them.
///
/// ```
/// use std::time::Duration;
/// use nap_proto::durable::Streams;
///
/// let streams = Streams::default().with_max_age(Duration::from_secs(24 * 3600));
/// assert_eq!(streams.runs.name, "NAP_RUNS");
/// assert_eq!(streams.runs.max_msgs_per_subject, 1);
/// assert!(streams.check_runs(&streams.runs).is_ok());
/// let mut workqueue = streams.runs.clone();
/// workqueue.retention = nap_proto::durable::Retention::WorkQueue;
/// assert!(streams.check_runs(&workqueue).is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Streams {
    /// `NAP_RUNS`: prompts and answers (D2.1).
    pub runs: StreamSettings,
    /// `NAP_REPLIES`: reply records (D2.2).
    pub replies: StreamSettings,
}

impl Default for Streams {
    fn default() -> Self {
        let wildcard = |verb: &str| format!("{ROOT_PREFIX}.{verb}.>");
        let base = |name: &str, subjects: Vec<String>| StreamSettings {
            name: name.to_owned(),
            subjects,
            retention: Retention::Limits,
            storage: Storage::File,
            max_age: DEFAULT_MAX_AGE,
            max_msgs_per_subject: -1,
            discard: Discard::New,
            discard_new_per_subject: false,
            duplicate_window: DEFAULT_DUPLICATE_WINDOW,
            replicas: 1,
            max_msgs: -1,
            max_bytes: -1,
            allow_direct: true,
            transforms_subjects: false,
        };
        let mut runs = base(
            RUNS_STREAM,
            vec![wildcard(PROMPT_TOKEN), wildcard(ANSWER_TOKEN)],
        );
        // D2.1: one message per subject, a second one refused.
        runs.max_msgs_per_subject = 1;
        runs.discard_new_per_subject = true;
        let replies = base(REPLIES_STREAM, vec![wildcard(REPLY_TOKEN)]);
        Streams { runs, replies }
    }
}

/// A stream setting that breaks a rule of durable runs (D2.3).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("stream {stream}: {setting} is {found}, durable runs need {expected} (D2.3)")]
pub struct StreamMismatch {
    /// The stream.
    pub stream: String,
    /// The setting.
    pub setting: &'static str,
    /// What the rules need.
    pub expected: String,
    /// What the stream has.
    pub found: String,
}

impl Streams {
    /// Both streams with another `max_age` (zero: for ever).
    pub fn with_max_age(mut self, max_age: Duration) -> Self {
        self.runs.max_age = max_age;
        self.replies.max_age = max_age;
        self
    }

    /// Both streams with `replicas` replicas.
    pub fn with_replicas(mut self, replicas: usize) -> Self {
        self.runs.replicas = replicas;
        self.replies.replicas = replicas;
        self
    }

    /// The streams for agents whose advertised subjects (D4) are not the
    /// defaults: each stream also captures the given prefixes.
    pub fn capturing(mut self, subjects: &DurableSubjects) -> Self {
        let capture = |stream: &mut StreamSettings, filter: String| {
            if !stream.subjects.iter().any(|s| covers(s, &filter)) {
                stream.subjects.push(filter);
            }
        };
        capture(&mut self.runs, subjects.prompt_filter());
        capture(&mut self.runs, subjects.answer_filter());
        capture(&mut self.replies, subjects.reply_filter());
        self
    }

    /// Checks an existing `NAP_RUNS` (D2.3).
    pub fn check_runs(&self, found: &StreamSettings) -> Result<(), StreamMismatch> {
        let wanted = &self.runs;
        common(wanted, found)?;
        if found.max_msgs_per_subject != 1 {
            return Err(mismatch(
                found,
                "max_msgs_per_subject",
                "1",
                found.max_msgs_per_subject,
            ));
        }
        if found.discard != Discard::New || !found.discard_new_per_subject {
            return Err(mismatch(
                found,
                "discard",
                "new, per subject",
                format_args!(
                    "{:?}{}",
                    found.discard,
                    if found.discard_new_per_subject {
                        ", per subject"
                    } else {
                        ""
                    }
                ),
            ));
        }
        Ok(())
    }

    /// Checks an existing `NAP_REPLIES` (D2.3), `runs_max_age` being the
    /// `max_age` of the `NAP_RUNS` in use.
    pub fn check_replies(
        &self,
        found: &StreamSettings,
        runs_max_age: Duration,
    ) -> Result<(), StreamMismatch> {
        common(&self.replies, found)?;
        if found.max_msgs_per_subject > 0 {
            return Err(mismatch(
                found,
                "max_msgs_per_subject",
                "no limit",
                found.max_msgs_per_subject,
            ));
        }
        let outlives =
            found.max_age.is_zero() || (!runs_max_age.is_zero() && found.max_age >= runs_max_age);
        if !outlives {
            return Err(mismatch(
                found,
                "max_age",
                format_args!("at least {runs_max_age:?}, the prompt stream's"),
                format_args!("{:?}", found.max_age),
            ));
        }
        Ok(())
    }
}

fn common(wanted: &StreamSettings, found: &StreamSettings) -> Result<(), StreamMismatch> {
    if let Some(missing) = wanted
        .subjects
        .iter()
        .find(|w| !found.subjects.iter().any(|f| covers(f, w)))
    {
        return Err(mismatch(
            found,
            "subjects",
            format_args!("a subject covering {missing}"),
            found.subjects.join(", "),
        ));
    }
    if found.retention != Retention::Limits {
        return Err(mismatch(
            found,
            "retention",
            "limits",
            format_args!("{:?}", found.retention),
        ));
    }
    if found.transforms_subjects {
        return Err(mismatch(
            found,
            "subject transform",
            "none (§13.8)",
            "a transform, mirror or sources",
        ));
    }
    Ok(())
}

fn mismatch(
    found: &StreamSettings,
    setting: &'static str,
    expected: impl fmt::Display,
    value: impl fmt::Display,
) -> StreamMismatch {
    StreamMismatch {
        stream: found.name.clone(),
        setting,
        expected: expected.to_string(),
        found: value.to_string(),
    }
}

/// Whether every subject matching filter `inner` also matches `outer`.
pub(crate) fn covers(outer: &str, inner: &str) -> bool {
    let mut o = outer.split('.').peekable();
    let mut i = inner.split('.');
    while let Some(ot) = o.next() {
        if ot == ">" && o.peek().is_none() {
            return i.next().is_some();
        }
        match i.next() {
            Some(">") | None => return false,
            Some(it) if ot == "*" || ot == it => {}
            Some(_) => return false,
        }
    }
    i.next().is_none()
}

/// A worker's policy (D4, D9): the claim timeout and the attempts a run
/// gets, both advertised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerPolicy {
    /// How long a claim lasts without a progress acknowledgement (D9.2):
    /// the consumer's `ack_wait`. Whole seconds, at least one.
    pub claim_timeout: Duration,
    /// How many attempts a run gets (D9.7).
    pub max_attempts: u32,
}

impl Default for WorkerPolicy {
    fn default() -> Self {
        WorkerPolicy {
            claim_timeout: DEFAULT_CLAIM_TIMEOUT,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
        }
    }
}

impl WorkerPolicy {
    /// How often a worker sends a progress acknowledgement at least: a third
    /// of the claim timeout (D9.2).
    pub fn progress_interval(&self) -> Duration {
        self.claim_timeout / 3
    }

    /// The consumer every instance of the agent shares (D9.1), taking at
    /// most `max_ack_pending` runs at once.
    pub fn consumer(&self, subjects: &DurableSubjects, max_ack_pending: i64) -> ConsumerSettings {
        ConsumerSettings {
            name: subjects.worker_name(),
            filter_subject: subjects.prompt_filter(),
            ack_policy: AckPolicy::Explicit,
            ack_wait: self.claim_timeout,
            // D9.7: one delivery more than attempts, to store the failure.
            max_deliver: i64::from(self.max_attempts) + 1,
            max_ack_pending,
        }
    }
}

/// A consumer's acknowledgement policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AckPolicy {
    /// Every message acknowledged on its own.
    Explicit,
    /// Acknowledging one acknowledges those before it.
    All,
    /// No acknowledgements.
    None,
}

/// The settings of the worker consumer (D9.1), as created or as found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerSettings {
    /// The durable name.
    pub name: String,
    /// The filter subject.
    pub filter_subject: String,
    /// The acknowledgement policy.
    pub ack_policy: AckPolicy,
    /// The claim timeout.
    pub ack_wait: Duration,
    /// Attempts plus one.
    pub max_deliver: i64,
    /// How many runs may be claimed at once.
    pub max_ack_pending: i64,
}

/// A consumer setting that differs from the advertised one (D9.1).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("consumer {consumer}: {setting} is {found}, the advertised policy needs {expected} (D9.1)")]
pub struct ConsumerMismatch {
    /// The consumer.
    pub consumer: String,
    /// The setting.
    pub setting: &'static str,
    /// What the policy needs.
    pub expected: String,
    /// What the consumer has.
    pub found: String,
}

impl ConsumerSettings {
    /// Checks an existing consumer (D9.1): filter, acknowledgement policy,
    /// `ack_wait` and `max_deliver` must be these; `max_ack_pending` is
    /// each deployment's.
    pub fn check(&self, found: &ConsumerSettings) -> Result<(), ConsumerMismatch> {
        let differs = |setting, expected: String, value: String| ConsumerMismatch {
            consumer: found.name.clone(),
            setting,
            expected,
            found: value,
        };
        if found.filter_subject != self.filter_subject {
            return Err(differs(
                "filter_subject",
                self.filter_subject.clone(),
                found.filter_subject.clone(),
            ));
        }
        if found.ack_policy != self.ack_policy {
            return Err(differs(
                "ack_policy",
                format!("{:?}", self.ack_policy),
                format!("{:?}", found.ack_policy),
            ));
        }
        if found.ack_wait != self.ack_wait {
            return Err(differs(
                "ack_wait",
                format!("{:?}", self.ack_wait),
                format!("{:?}", found.ack_wait),
            ));
        }
        if found.max_deliver != self.max_deliver {
            return Err(differs(
                "max_deliver",
                self.max_deliver.to_string(),
                found.max_deliver.to_string(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn coverage() {
        assert!(covers(
            "agents.durable.prompt.>",
            "agents.durable.prompt.a.b.c.*"
        ));
        assert!(covers("agents.durable.prompt.>", "agents.durable.prompt.>"));
        assert!(!covers(
            "agents.durable.prompt.*",
            "agents.durable.prompt.>"
        ));
        assert!(covers("a.*.c", "a.b.c"));
        assert!(covers("a.*.c", "a.*.c"));
        assert!(!covers("a.b.c", "a.*.c"));
        assert!(!covers("a.>", "a"));
    }

    #[test]
    fn replies_must_outlive_prompts() {
        let streams = Streams::default();
        assert!(
            streams
                .check_replies(&streams.replies, streams.runs.max_age)
                .is_ok()
        );
        let mut short = streams.replies.clone();
        short.max_age = Duration::from_secs(60);
        let err = streams
            .check_replies(&short, streams.runs.max_age)
            .unwrap_err();
        assert_eq!(err.setting, "max_age");
        let mut forever = streams.replies.clone();
        forever.max_age = Duration::ZERO;
        assert!(streams.check_replies(&forever, Duration::ZERO).is_ok());
        assert!(streams.check_replies(&short, Duration::ZERO).is_err());
    }

    #[test]
    fn runs_need_one_message_per_subject() {
        let streams = Streams::default();
        let mut found = streams.runs.clone();
        found.discard_new_per_subject = false;
        assert_eq!(streams.check_runs(&found).unwrap_err().setting, "discard");
        let mut found = streams.runs.clone();
        found.subjects = vec!["agents.durable.prompt.>".into()];
        assert_eq!(streams.check_runs(&found).unwrap_err().setting, "subjects");
        let mut found = streams.runs.clone();
        found.subjects = vec!["agents.>".into()];
        assert!(streams.check_runs(&found).is_ok());
    }

    #[test]
    fn consumer_follows_the_policy() {
        let id = crate::Identity::new("echo", "alice", "demo").unwrap();
        let subjects = DurableSubjects::for_identity(&id);
        let wanted = WorkerPolicy::default().consumer(&subjects, 16);
        assert_eq!(
            wanted.filter_subject,
            "agents.durable.prompt.echo.alice.demo.*"
        );
        assert_eq!(wanted.max_deliver, 4);
        assert_eq!(wanted.ack_wait, Duration::from_secs(30));
        let mut found = wanted.clone();
        found.max_ack_pending = 1;
        assert!(wanted.check(&found).is_ok());
        found.max_deliver = 10;
        assert_eq!(wanted.check(&found).unwrap_err().setting, "max_deliver");
    }
}
