//! The subjects of durable runs (durable D3) and the worker consumer's
//! name (D9.1).

use std::fmt;

use super::run_id::{RunId, hashed_name};
use crate::subject::{Identity, ROOT, Token, TokenError, Verb};

/// The root of every durable subject: `agents.durable` (D3). Its second
/// token keeps durable subjects out of every core subject (§2).
pub const ROOT_PREFIX: &str = "agents.durable";

/// The default prompt prefix's verb token, `prompt` (D3).
pub const PROMPT_TOKEN: &str = "prompt";
/// The default reply prefix's verb token, `reply` (D3).
pub const REPLY_TOKEN: &str = "reply";
/// The default answer prefix's verb token, `answer` (D3).
pub const ANSWER_TOKEN: &str = "answer";

/// The tag that starts the hashed worker consumer name (D9.1).
pub const WORKER_NAME_TAG: &str = "NAP-WORKER-V1";

/// The longest readable worker consumer name (D9.1).
pub const MAX_READABLE_WORKER_NAME: usize = 200;

/// The three subject prefixes of one durable agent (D3, D4): prompts,
/// reply records and query answers. A run's subjects are a prefix, `.`, the
/// run id (and, for answers, the attempt and query number).
///
/// ```
/// use nap_proto::Identity;
/// use nap_proto::durable::{DurableSubjects, RunId};
///
/// let subjects = DurableSubjects::for_identity(&Identity::new("echo", "alice", "demo").unwrap());
/// let run: RunId = "fsgqpzk3ew22q6ltdnwy7m775a".parse().unwrap();
/// assert_eq!(subjects.prompt(&run), "agents.durable.prompt.echo.alice.demo.fsgqpzk3ew22q6ltdnwy7m775a");
/// assert_eq!(subjects.reply(&run), "agents.durable.reply.echo.alice.demo.fsgqpzk3ew22q6ltdnwy7m775a");
/// assert_eq!(subjects.answer(&run, 2, 1), "agents.durable.answer.echo.alice.demo.fsgqpzk3ew22q6ltdnwy7m775a.2.1");
/// assert_eq!(subjects.worker_name(), "echo_alice_demo");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DurableSubjects {
    prompt: String,
    reply: String,
    answer: String,
}

/// Which of the three prefixes an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PrefixRole {
    /// `durable_prompt_subject`.
    Prompt,
    /// `durable_reply_subject`.
    Reply,
    /// `durable_answer_subject`.
    Answer,
}

impl fmt::Display for PrefixRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PrefixRole::Prompt => "prompt",
            PrefixRole::Reply => "reply",
            PrefixRole::Answer => "answer",
        })
    }
}

/// Why three prefixes cannot be an agent's durable subjects (D3).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SubjectsError {
    /// A token of a prefix breaks §2.2, or is a wildcard.
    #[error("the durable {role} subject {prefix:?} has a bad token: {reason} (D3)")]
    BadToken {
        /// Which prefix.
        role: PrefixRole,
        /// The prefix as given.
        prefix: String,
        /// What is wrong with the token.
        reason: TokenError,
    },
    /// A wildcard token.
    #[error(
        "the durable {role} subject {prefix:?} is a wildcard; it must be a literal subject (D3)"
    )]
    Wildcard {
        /// Which prefix.
        role: PrefixRole,
        /// The prefix as given.
        prefix: String,
    },
    /// A prefix lies in a core verb's namespace (§2).
    #[error(
        "the durable {role} subject {prefix:?} lies under agents.{verb}., a core endpoint's namespace (D3)"
    )]
    CoreNamespace {
        /// Which prefix.
        role: PrefixRole,
        /// The prefix as given.
        prefix: String,
        /// The core verb.
        verb: Verb,
    },
    /// One prefix equals another or begins with it.
    #[error(
        "the durable {a} and {b} subjects overlap: one equals the other or begins with it (D3)"
    )]
    Overlap {
        /// One prefix.
        a: PrefixRole,
        /// The other.
        b: PrefixRole,
    },
}

impl DurableSubjects {
    /// The default subjects of an agent (D3):
    /// `agents.durable.{prompt,reply,answer}.{agent}.{owner}.{name}`.
    pub fn for_identity(identity: &Identity) -> DurableSubjects {
        let Identity { agent, owner, name } = identity;
        let prefix = |verb: &str| format!("{ROOT_PREFIX}.{verb}.{agent}.{owner}.{name}");
        DurableSubjects {
            prompt: prefix(PROMPT_TOKEN),
            reply: prefix(REPLY_TOKEN),
            answer: prefix(ANSWER_TOKEN),
        }
    }

    /// Three advertised prefixes (D4), checked against D3: literal
    /// subjects of valid tokens, outside the core verbs' namespaces, none
    /// equal to or beginning with another.
    pub fn new(
        prompt: impl Into<String>,
        reply: impl Into<String>,
        answer: impl Into<String>,
    ) -> Result<DurableSubjects, SubjectsError> {
        let subjects = DurableSubjects {
            prompt: prompt.into(),
            reply: reply.into(),
            answer: answer.into(),
        };
        let all = [
            (PrefixRole::Prompt, &subjects.prompt),
            (PrefixRole::Reply, &subjects.reply),
            (PrefixRole::Answer, &subjects.answer),
        ];
        for (role, prefix) in all {
            check_prefix(role, prefix)?;
        }
        for (i, (a, pa)) in all.iter().enumerate() {
            for (b, pb) in &all[i + 1..] {
                if leads(pa, pb) || leads(pb, pa) {
                    return Err(SubjectsError::Overlap { a: *a, b: *b });
                }
            }
        }
        Ok(subjects)
    }

    /// The prompt prefix, `durable_prompt_subject` (D4).
    pub fn prompt_prefix(&self) -> &str {
        &self.prompt
    }

    /// The reply prefix, `durable_reply_subject` (D4).
    pub fn reply_prefix(&self) -> &str {
        &self.reply
    }

    /// The answer prefix, `durable_answer_subject` (D4).
    pub fn answer_prefix(&self) -> &str {
        &self.answer
    }

    /// The subject of a run's prompt record (D3, D6.1).
    pub fn prompt(&self, run: &RunId) -> String {
        format!("{}.{run}", self.prompt)
    }

    /// The subject of a run's reply records (D3, D8).
    pub fn reply(&self, run: &RunId) -> String {
        format!("{}.{run}", self.reply)
    }

    /// The subject of the answer to query `query` (from 1) of `attempt` (D12).
    pub fn answer(&self, run: &RunId, attempt: u32, query: u32) -> String {
        format!("{}.{run}.{attempt}.{query}", self.answer)
    }

    /// Every run's prompt subject: the worker consumer's filter (D9.1).
    pub fn prompt_filter(&self) -> String {
        format!("{}.*", self.prompt)
    }

    /// Every run's reply subject (D3).
    pub fn reply_filter(&self) -> String {
        format!("{}.*", self.reply)
    }

    /// Every answer subject (D3).
    pub fn answer_filter(&self) -> String {
        format!("{}.>", self.answer)
    }

    /// The run a prompt subject names, when it is one of this agent's.
    pub fn run_of_prompt(&self, subject: &str) -> Option<RunId> {
        run_after(&self.prompt, subject)
    }

    /// The run a reply subject names, when it is one of this agent's.
    pub fn run_of_reply(&self, subject: &str) -> Option<RunId> {
        run_after(&self.reply, subject)
    }

    /// The name of the durable consumer every instance of the agent shares
    /// (D9.1): `{agent}_{owner}_{name}` for a default prompt prefix whose
    /// tokens use only `a`–`z`, `0`–`9`, `-`; otherwise `nap_` and a hash
    /// of the prefix.
    pub fn worker_name(&self) -> String {
        let default_tail = self
            .prompt
            .strip_prefix(ROOT_PREFIX)
            .and_then(|rest| rest.strip_prefix('.'))
            .and_then(|rest| rest.strip_prefix(PROMPT_TOKEN))
            .and_then(|rest| rest.strip_prefix('.'));
        if let Some(tail) = default_tail {
            let tokens: Vec<&str> = tail.split('.').collect();
            let readable = tokens.len() == 3
                && tokens.iter().all(|t| {
                    !t.is_empty()
                        && t.bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                });
            let name = tokens.join("_");
            if readable && name.len() <= MAX_READABLE_WORKER_NAME {
                return name;
            }
        }
        format!("nap_{}", hashed_name(&[WORKER_NAME_TAG, &self.prompt]))
    }
}

fn check_prefix(role: PrefixRole, prefix: &str) -> Result<(), SubjectsError> {
    let mut tokens = prefix.split('.');
    for token in prefix.split('.') {
        if token == "*" || token == ">" {
            return Err(SubjectsError::Wildcard {
                role,
                prefix: prefix.to_owned(),
            });
        }
        Token::new(token).map_err(|reason| SubjectsError::BadToken {
            role,
            prefix: prefix.to_owned(),
            reason,
        })?;
    }
    if tokens.next() == Some(ROOT)
        && let Some(verb) = tokens.next().and_then(|t| t.parse::<Verb>().ok())
    {
        return Err(SubjectsError::CoreNamespace {
            role,
            prefix: prefix.to_owned(),
            verb,
        });
    }
    Ok(())
}

/// Whether `whole` is `lead` or begins with `lead`'s tokens.
fn leads(lead: &str, whole: &str) -> bool {
    whole == lead
        || whole
            .strip_prefix(lead)
            .is_some_and(|rest| rest.starts_with('.'))
}

fn run_after(prefix: &str, subject: &str) -> Option<RunId> {
    let rest = subject.strip_prefix(prefix)?.strip_prefix('.')?;
    RunId::parse(rest).ok()
}

/// Whether NATS delivers `subject` to a subscription on `filter` (`*`
/// matches one token, a final `>` one or more).
pub fn subject_matches(filter: &str, subject: &str) -> bool {
    let mut subject_tokens = subject.split('.');
    let mut filter_tokens = filter.split('.').peekable();
    while let Some(f) = filter_tokens.next() {
        if f == ">" && filter_tokens.peek().is_none() {
            return subject_tokens.next().is_some();
        }
        match subject_tokens.next() {
            Some(s) if f == "*" || f == s => {}
            _ => return false,
        }
    }
    subject_tokens.next().is_none()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn matching() {
        assert!(subject_matches(
            "agents.durable.prompt.>",
            "agents.durable.prompt.a.b.c.r"
        ));
        assert!(!subject_matches(
            "agents.durable.prompt.>",
            "agents.durable.prompt"
        ));
        assert!(subject_matches("a.*.c", "a.b.c"));
        assert!(!subject_matches("a.*.c", "a.b.c.d"));
        assert!(!subject_matches("a.*", "a"));
        assert!(subject_matches("a.b", "a.b"));
        // Core subjects never reach durable filters, nor the reverse.
        assert!(!subject_matches(
            "agents.prompt.>",
            "agents.durable.prompt.a.b.c.r"
        ));
        assert!(!subject_matches("agents.durable.>", "agents.prompt.a.b.c"));
    }

    #[test]
    fn prefixes_are_checked() {
        let ok = DurableSubjects::new("jobs.p", "jobs.r", "jobs.a").unwrap();
        assert_eq!(ok.worker_name().len(), 4 + 26);
        assert!(ok.worker_name().starts_with("nap_"));
        assert!(matches!(
            DurableSubjects::new("agents.prompt.x", "r", "a"),
            Err(SubjectsError::CoreNamespace {
                verb: Verb::Prompt,
                ..
            })
        ));
        assert!(matches!(
            DurableSubjects::new("p.*", "r", "a"),
            Err(SubjectsError::Wildcard { .. })
        ));
        assert!(matches!(
            DurableSubjects::new("p", "p.r", "a"),
            Err(SubjectsError::Overlap {
                a: PrefixRole::Prompt,
                b: PrefixRole::Reply
            })
        ));
        assert!(matches!(
            DurableSubjects::new("p..x", "r", "a"),
            Err(SubjectsError::BadToken {
                reason: TokenError::Empty,
                ..
            })
        ));
        // `agents.durable.…` is not a core namespace.
        let id = Identity::new("echo", "alice", "demo").unwrap();
        let d = DurableSubjects::for_identity(&id);
        assert_eq!(
            DurableSubjects::new(d.prompt_prefix(), d.reply_prefix(), d.answer_prefix()),
            Ok(d)
        );
    }

    #[test]
    fn worker_names() {
        let name =
            |a, o, n| DurableSubjects::for_identity(&Identity::new(a, o, n).unwrap()).worker_name();
        assert_eq!(name("echo", "alice", "demo"), "echo_alice_demo");
        // `_` or upper case in a token could collide: hashed instead.
        assert!(name("a_b", "c", "d").starts_with("nap_"));
        assert!(name("A", "c", "d").starts_with("nap_"));
        assert_ne!(name("a_b", "c", "d"), name("a", "b_c", "d"));
    }
}
