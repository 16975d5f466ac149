//! Cases, verdicts and the evidence that backs them.
//!
//! A [`Case`] is one rule of the spec: an id (`REG-001`), the section it
//! comes from, its level (the spec's keyword) and a one-line statement. A
//! [`Verdict`] is what one run concluded about one case, with the wire
//! [`Evidence`] that shows why.

use std::fmt;

use serde::Serialize;

/// The strength of a rule: the RFC 2119 keyword the spec uses for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Level {
    /// MUST / MUST NOT: a failure makes the implementation non-compliant.
    Must,
    /// SHOULD / SHOULD NOT: a failure is reported but does not fail the run.
    Should,
    /// MAY: optional behaviour, reported for information.
    May,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Level::Must => "MUST",
            Level::Should => "SHOULD",
            Level::May => "MAY",
        })
    }
}

/// One rule of the spec that the suite can observe on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Case {
    /// Stable identifier, e.g. `STR-001`.
    pub id: &'static str,
    /// The spec section, e.g. `§6.4`.
    pub section: &'static str,
    /// The rule's level.
    pub level: Level,
    /// The rule, in one line.
    pub rule: &'static str,
}

/// What a run concluded about one case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The rule held on everything observed.
    Pass,
    /// The rule was broken; the evidence shows where.
    Fail,
    /// The rule could not be observed (not applicable, or a prerequisite failed).
    Skip,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "FAIL",
            Outcome::Skip => "skip",
        })
    }
}

/// One message as seen on the wire.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WireMessage {
    /// The subject it was published to.
    pub subject: String,
    /// Its reply subject, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply: Option<String>,
    /// Its header block: `None` when it had none, `Some` (maybe empty) when it had one.
    pub headers: Option<Vec<(String, String)>>,
    /// The body as UTF-8 text (lossy when it is not).
    pub body: String,
    /// The body size in bytes.
    pub size: usize,
    /// Milliseconds since the exchange began (the request was published).
    pub at_ms: u64,
}

impl WireMessage {
    /// A message built from its parts.
    pub fn new(
        subject: impl Into<String>,
        reply: Option<String>,
        headers: Option<Vec<(String, String)>>,
        body: &[u8],
        at_ms: u64,
    ) -> Self {
        WireMessage {
            subject: subject.into(),
            reply,
            headers,
            body: String::from_utf8_lossy(body).into_owned(),
            size: body.len(),
            at_ms,
        }
    }

    /// Whether this is the §6.5 terminator: zero bytes and no header block.
    pub fn is_terminator(&self) -> bool {
        self.size == 0 && self.headers.is_none()
    }

    /// A one-line rendering: `[headers] body`, for reasons and tables.
    pub fn short(&self) -> String {
        let mut out = String::new();
        if let Some(h) = &self.headers {
            let hs: Vec<String> = h.iter().map(|(k, v)| format!("{k}: {v}")).collect();
            out.push_str(&format!("[{}] ", hs.join("; ")));
        }
        if self.size == 0 {
            out.push_str("(0 bytes)");
        } else {
            let mut body = self.body.clone();
            if body.chars().count() > 120 {
                body = body.chars().take(117).collect::<String>() + "...";
            }
            out.push_str(&body);
        }
        out
    }
}

/// Wire evidence behind a verdict: what was sent and what came back.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evidence {
    /// What this exchange was (e.g. `request: zero-byte payload`).
    pub label: String,
    /// The messages, the probe's own first.
    pub messages: Vec<WireMessage>,
    /// Free-form notes (e.g. a caller's exit status and output).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl Evidence {
    /// Evidence made of messages.
    pub fn messages(label: impl Into<String>, messages: Vec<WireMessage>) -> Self {
        Evidence {
            label: label.into(),
            messages,
            notes: Vec::new(),
        }
    }

    /// Evidence made of notes only.
    pub fn notes(label: impl Into<String>, notes: Vec<String>) -> Self {
        Evidence {
            label: label.into(),
            messages: Vec::new(),
            notes,
        }
    }
}

/// The verdict on one case.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    /// The case judged.
    #[serde(flatten)]
    pub case: Case,
    /// The outcome.
    pub outcome: Outcome,
    /// Why, in one short line.
    pub reason: String,
    /// The wire evidence.
    pub evidence: Vec<Evidence>,
}

impl Verdict {
    /// Whether this verdict fails the run: a failed MUST.
    pub fn is_must_failure(&self) -> bool {
        self.outcome == Outcome::Fail && self.case.level == Level::Must
    }
}
