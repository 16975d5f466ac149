//! Response streams (§6, §7, §9): each recorded exchange decoded with
//! nap-proto's [`ResponseStream`] and judged message by message.

use std::time::{Duration, Instant};

use nap_proto::{
    ErrorCode, Query, Received, RemoteError, ResponseStream, StreamEvent, StreamViolation,
};

use super::probe::Exchange;
use crate::catalogue::*;
use crate::report::Findings;

/// One exchange read the way a compliant caller reads it.
#[derive(Debug, Default)]
pub struct Analysis {
    /// Index of the first `ack` status chunk.
    pub ack: Option<usize>,
    /// Index of the first response or query chunk.
    pub first_content: Option<usize>,
    /// The first error signal and its index.
    pub error: Option<(usize, RemoteError)>,
    /// Index of the terminator.
    pub terminator: Option<usize>,
    /// Indexes of messages after the terminator.
    pub after_terminator: Vec<usize>,
    /// Messages that are not well-formed chunks: index and why.
    pub malformed: Vec<(usize, String)>,
    /// Zero-byte messages with headers (not terminators).
    pub headers_on_empty: Vec<usize>,
    /// Messages other than the terminator after an error signal.
    pub after_error: Vec<usize>,
    /// Every error-headered message: index and decoded error.
    pub errors: Vec<(usize, RemoteError)>,
    /// Queries received.
    pub queries: Vec<Query>,
    /// Whether the first message was an ack.
    pub first_is_ack: bool,
}

impl Analysis {
    /// Decodes `x`.
    pub fn of(x: &Exchange) -> Self {
        let t0 = Instant::now();
        let mut stream = ResponseStream::new(t0, Duration::from_secs(3600));
        let mut a = Analysis::default();
        for (i, r) in x.replies.iter().enumerate() {
            if a.terminator.is_some() {
                a.after_terminator.push(i);
                continue;
            }
            let headers = r.headers().cloned();
            let received = match &headers {
                Some(h) => Received::with_headers(h, &r.body),
                None => Received::body(&r.body),
            };
            stream.handle_message(t0, received);
            match stream.poll() {
                Some(StreamEvent::Ack) => {
                    a.ack.get_or_insert(i);
                    if i == 0 {
                        a.first_is_ack = true;
                    }
                }
                Some(StreamEvent::Response(_)) => {
                    a.first_content.get_or_insert(i);
                }
                Some(StreamEvent::Query(q)) => {
                    a.first_content.get_or_insert(i);
                    a.queries.push(q);
                }
                Some(StreamEvent::Error(e)) => {
                    if a.error.is_none() {
                        a.error = Some((i, e.clone()));
                    }
                    a.errors.push((i, e));
                }
                Some(StreamEvent::End) => a.terminator = Some(i),
                Some(StreamEvent::Violation(StreamViolation::HeadersOnEmpty)) => {
                    a.headers_on_empty.push(i)
                }
                Some(StreamEvent::Violation(StreamViolation::AfterError)) => a.after_error.push(i),
                Some(StreamEvent::Violation(StreamViolation::AfterEnd)) => {
                    a.after_terminator.push(i)
                }
                Some(StreamEvent::Violation(StreamViolation::Malformed(e))) => {
                    a.malformed.push((i, e.to_string()))
                }
                // Unknown chunk types (§6.6), and anything a newer core adds.
                _ => {}
            }
        }
        a
    }

    /// Whether the agent accepted the request (no error signal).
    pub fn accepted(&self) -> bool {
        self.error.is_none()
    }
}

/// Judges the stream rules (STR-001..011) over every exchange.
pub fn judge(exchanges: &[Exchange], f: &mut Findings) {
    for x in exchanges {
        let a = Analysis::of(x);
        let ev = || vec![x.evidence()];
        let label = &x.label;
        let replied = !x.replies.is_empty();

        if a.accepted() && replied {
            // STR-001 / STR-002: on accepted streams.
            match a.ack {
                None => f.fail(STR_001, format!("{label}: no ack on the stream"), ev()),
                Some(_) => f.pass(STR_001, "ack present on every accepted stream", ev()),
            }
            match a.ack {
                None => f.skip(STR_002, "no ack (see STR-001)"),
                Some(i) if a.first_content.is_some_and(|c| c < i) => f.fail(
                    STR_002,
                    format!("{label}: a response/query chunk came before the ack"),
                    ev(),
                ),
                Some(_) if !a.first_is_ack => f.fail(
                    STR_002,
                    format!("{label}: the first message is not the ack"),
                    ev(),
                ),
                Some(_) => f.pass(STR_002, "the ack is the first message", ev()),
            }
        } else if let Some((_, e)) = &a.error
            && e.code.status().map(|s| s.as_u16()) == Some(400)
        {
            f.check(
                STR_011,
                a.first_is_ack,
                "400 rejections start with the ack",
                format!("{label}: rejected with 400 without an ack first"),
                ev(),
            );
        }

        match a.malformed.first() {
            Some((i, why)) => f.fail(STR_003, format!("{label}: message {}: {why}", i + 1), ev()),
            None if replied => f.pass(STR_003, "every chunk well-formed", ev()),
            None => {}
        }

        if !a.headers_on_empty.is_empty() && a.terminator.is_none() {
            f.fail(
                STR_004,
                format!("{label}: the zero-byte end message carries headers"),
                ev(),
            );
        } else if a.terminator.is_none() {
            f.fail(
                STR_004,
                format!("{label}: no terminator (stream silent for the inactivity window)"),
                ev(),
            );
        } else if !a.headers_on_empty.is_empty() {
            f.fail(
                STR_004,
                format!("{label}: a zero-byte message carried headers"),
                ev(),
            );
        } else {
            f.pass(
                STR_004,
                "every stream ended with a header-less zero-byte message",
                ev(),
            );
        }

        match (a.terminator, a.after_terminator.first()) {
            (Some(_), Some(i)) => f.fail(
                STR_005,
                format!("{label}: message {} arrived after the terminator", i + 1),
                ev(),
            ),
            (Some(_), None) => f.pass(STR_005, "nothing after the terminator", ev()),
            _ => {}
        }

        if a.error.is_some() {
            match a.after_error.first() {
                Some(i) => f.fail(
                    STR_006,
                    format!(
                        "{label}: message {} came between the error and the terminator",
                        i + 1
                    ),
                    ev(),
                ),
                None if a.terminator.is_some() => {
                    f.pass(STR_006, "errors are followed by the terminator", ev())
                }
                None => {}
            }
        }

        for (i, e) in &a.errors {
            let r = &x.replies[*i];
            let code_header = r
                .headers()
                .and_then(|h| h.iter().find(|(k, _)| k == nap_proto::ERROR_CODE_HEADER));
            let desc_header = r
                .headers()
                .and_then(|h| h.iter().find(|(k, _)| k == nap_proto::ERROR_HEADER));
            match &e.code {
                ErrorCode::Listed(c) => {
                    f.pass(STR_007, format!("codes from §9.2 (e.g. {c})"), ev())
                }
                other => f.fail(
                    STR_007,
                    format!(
                        "{label}: {} {other} is not in §9.2",
                        nap_proto::ERROR_CODE_HEADER
                    ),
                    ev(),
                ),
            }
            f.check(
                STR_008,
                code_header.is_some() && desc_header.is_some(),
                "errors carry both headers",
                format!(
                    "{label}: missing {}",
                    if code_header.is_none() {
                        nap_proto::ERROR_CODE_HEADER
                    } else {
                        nap_proto::ERROR_HEADER
                    }
                ),
                ev(),
            );
            let json: Option<serde_json::Value> = serde_json::from_slice(&r.body).ok();
            match json {
                None => f.pass(
                    STR_009,
                    "error bodies empty or not JSON (header is the description)",
                    ev(),
                ),
                Some(v) => f.check(
                    STR_009,
                    v.get("error").is_some_and(serde_json::Value::is_string),
                    "JSON error bodies carry a string \"error\"",
                    format!("{label}: JSON error body without a string \"error\""),
                    ev(),
                ),
            }
        }

        if a.queries.len() > 1 {
            let mut subjects: Vec<&str> =
                a.queries.iter().map(|q| q.reply_subject.as_str()).collect();
            subjects.sort_unstable();
            let before = subjects.len();
            subjects.dedup();
            f.check(
                STR_010,
                subjects.len() == before,
                "distinct query reply subjects",
                format!("{label}: two queries share a reply subject"),
                ev(),
            );
        } else if !a.queries.is_empty() {
            f.pass(STR_010, "one query per stream", ev());
        }
    }
    if f.get(STR_010.id).is_none() {
        f.skip(STR_010, "the agent asked no query");
    }
    if f.get(STR_011.id).is_none() {
        f.skip(STR_011, "no 400 rejection observed");
    }
    for case in [STR_006, STR_007, STR_008, STR_009] {
        if f.get(case.id).is_none() {
            f.skip(case, "no error signal observed");
        }
    }
}
