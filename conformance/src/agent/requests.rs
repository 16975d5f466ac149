//! Requests (§5): the forms an agent must accept and the malformed ones it
//! must reject with `400`.

use bytes::Bytes;
use serde_json::json;

use super::probe::{Exchange, ExchangeOptions, Probe};
use super::registration::Subject;
use super::streams::Analysis;
use crate::case::Case;
use crate::catalogue::*;
use crate::error::Result;
use crate::report::Findings;

/// What a request case expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Accept,
    Reject400,
}

/// When a request case applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Applies {
    Always,
    AttachmentsOk,
    AttachmentsRefused,
}

struct RequestCase {
    case: Case,
    label: &'static str,
    applies: Applies,
    expect: Expect,
    payload: fn(&str) -> Vec<u8>,
}

fn json_bytes(v: serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(&v).unwrap_or_default() // ok: a literal JSON value serialises
}

fn attach(text: &str, attachment: serde_json::Value) -> Vec<u8> {
    json_bytes(json!({"prompt": text, "attachments": [attachment]}))
}

const CASES: &[RequestCase] = &[
    RequestCase {
        case: REQ_001,
        label: "plain text",
        applies: Applies::Always,
        expect: Expect::Accept,
        payload: |t| t.as_bytes().to_vec(),
    },
    RequestCase {
        case: REQ_002,
        label: "JSON envelope",
        applies: Applies::Always,
        expect: Expect::Accept,
        payload: |t| json_bytes(json!({ "prompt": t })),
    },
    RequestCase {
        case: REQ_003,
        label: "JSON after leading whitespace",
        applies: Applies::Always,
        expect: Expect::Accept,
        payload: |t| {
            let mut v = b"\t\r\n ".to_vec();
            v.extend(json_bytes(json!({ "prompt": t })));
            v
        },
    },
    RequestCase {
        case: REQ_004,
        label: "unknown envelope fields",
        applies: Applies::Always,
        expect: Expect::Accept,
        payload: |t| {
            json_bytes(json!({"prompt": t, "x_conformance": {"nested": [1, 2]}, "x_flag": true}))
        },
    },
    RequestCase {
        case: REQ_005,
        label: "unknown attachment fields",
        applies: Applies::AttachmentsOk,
        expect: Expect::Accept,
        payload: |t| {
            attach(
                t,
                json!({"filename": "note.txt", "content": "aGVsbG8=", "x_conformance": "kept"}),
            )
        },
    },
    RequestCase {
        case: REQ_006,
        label: "zero-byte payload",
        applies: Applies::Always,
        expect: Expect::Reject400,
        payload: |_| Vec::new(),
    },
    RequestCase {
        case: REQ_007,
        label: "{ but not JSON",
        applies: Applies::Always,
        expect: Expect::Reject400,
        payload: |_| b"{not json".to_vec(),
    },
    RequestCase {
        case: REQ_008,
        label: "JSON without prompt",
        applies: Applies::Always,
        expect: Expect::Reject400,
        payload: |t| json_bytes(json!({ "text": t })),
    },
    RequestCase {
        case: REQ_009,
        label: "prompt not a string",
        applies: Applies::Always,
        expect: Expect::Reject400,
        payload: |_| json_bytes(json!({ "prompt": 42 })),
    },
    RequestCase {
        case: REQ_010,
        label: "empty prompt",
        applies: Applies::Always,
        expect: Expect::Reject400,
        payload: |_| json_bytes(json!({ "prompt": "" })),
    },
    RequestCase {
        case: REQ_011,
        label: "attachment content not base64",
        applies: Applies::AttachmentsOk,
        expect: Expect::Reject400,
        payload: |t| attach(t, json!({"filename": "a.bin", "content": "not base64!"})),
    },
    RequestCase {
        case: REQ_012,
        label: "URL-safe base64",
        applies: Applies::AttachmentsOk,
        expect: Expect::Reject400,
        payload: |t| attach(t, json!({"filename": "a.bin", "content": "-_8="})),
    },
    RequestCase {
        case: REQ_013,
        label: "base64 with whitespace",
        applies: Applies::AttachmentsOk,
        expect: Expect::Reject400,
        payload: |t| attach(t, json!({"filename": "a.bin", "content": "aGVs bG8="})),
    },
    RequestCase {
        case: REQ_014,
        label: "attachment without filename",
        applies: Applies::AttachmentsOk,
        expect: Expect::Reject400,
        payload: |t| attach(t, json!({"content": "aGVsbG8="})),
    },
    RequestCase {
        case: REQ_015,
        label: "attachments not an array",
        applies: Applies::Always,
        expect: Expect::Reject400,
        payload: |t| json_bytes(json!({"prompt": t, "attachments": "aGVsbG8="})),
    },
    RequestCase {
        case: REQ_017,
        label: "attachments when attachments_ok is false",
        applies: Applies::AttachmentsRefused,
        expect: Expect::Reject400,
        payload: |t| attach(t, json!({"filename": "note.txt", "content": "aGVsbG8="})),
    },
];

/// Sends every request case to the prompt endpoint, judges REQ-001..017,
/// and returns the exchanges for the stream rules.
pub async fn run(
    probe: &Probe,
    s: &Subject,
    prompt: &str,
    options: &ExchangeOptions,
    f: &mut Findings,
) -> Result<Vec<Exchange>> {
    let mut exchanges = Vec::new();
    let Some(subject) = s.prompt_subject.as_deref() else {
        for c in CASES {
            f.skip(c.case, "no prompt endpoint");
        }
        f.skip(REQ_016, "no prompt endpoint");
        return Ok(exchanges);
    };
    for c in CASES {
        let applies = match (c.applies, s.attachments_ok) {
            (Applies::Always, _) => true,
            (Applies::AttachmentsOk, ok) => ok == Some(true),
            (Applies::AttachmentsRefused, ok) => ok == Some(false),
        };
        if !applies {
            f.skip(
                c.case,
                match c.applies {
                    Applies::AttachmentsOk => "the agent declares attachments_ok: false",
                    _ => "the agent declares attachments_ok: true",
                },
            );
            continue;
        }
        let x = probe
            .exchange(c.label, subject, Bytes::from((c.payload)(prompt)), options)
            .await?;
        judge_one(c.case, c.expect, &x, f);
        exchanges.push(x);
    }

    // REQ-016: only when the server lets an oversize request through.
    let server_max = u64::try_from(probe.client().server_info().max_payload).unwrap_or(u64::MAX);
    match s.max_payload {
        Some(limit) if limit + 1 < server_max => {
            let size = usize::try_from(limit + 1).unwrap_or(usize::MAX);
            let x = probe
                .exchange(
                    "oversize request",
                    subject,
                    Bytes::from(vec![b'a'; size]),
                    options,
                )
                .await?;
            judge_one(REQ_016, Expect::Reject400, &x, f);
            exchanges.push(x);
        }
        Some(limit) => f.skip(
            REQ_016,
            format!("max_payload {limit} B is not below the server's {server_max} B"),
        ),
        None => f.skip(REQ_016, "max_payload unreadable"),
    }
    Ok(exchanges)
}

fn judge_one(case: Case, expect: Expect, x: &Exchange, f: &mut Findings) {
    match expect {
        Expect::Accept => judge_accepted(case, x, f),
        Expect::Reject400 => judge_rejected(case, 400, x, f),
    }
}

/// Judges that `x` was served: replies, and no error signal.
pub(crate) fn judge_accepted(case: Case, x: &Exchange, f: &mut Findings) {
    let a = Analysis::of(x);
    let ev = vec![x.evidence()];
    if x.replies.is_empty() {
        f.fail(case, "no reply at all", ev);
    } else if let Some((_, e)) = &a.error {
        f.fail(case, format!("rejected: {} {}", e.code, e.message()), ev);
    } else {
        f.pass(case, "accepted", ev);
    }
}

/// Judges that `x` was refused with `code` before any content, and that a
/// terminator followed.
pub(crate) fn judge_rejected(case: Case, code: u16, x: &Exchange, f: &mut Findings) {
    let a = Analysis::of(x);
    let ev = vec![x.evidence()];
    let got_code = a.error.as_ref().map(|(_, e)| e.code.to_string());
    let before_content = match (&a.error, a.first_content) {
        (Some((i, _)), Some(c)) => *i < c,
        (Some(_), None) => true,
        _ => false,
    };
    let want = code.to_string();
    if x.replies.is_empty() {
        f.fail(case, "no reply at all", ev);
    } else if got_code.as_deref() != Some(want.as_str()) {
        let got = match got_code {
            Some(c) => format!("error {c}"),
            None if a.first_content.is_some() => "content (a 200-style answer)".to_owned(),
            None => "no error signal".to_owned(),
        };
        f.fail(case, format!("expected {want}, got {got}"), ev);
    } else if !before_content {
        f.fail(case, format!("content was streamed before the {want}"), ev);
    } else if a.terminator.is_none() {
        f.fail(case, format!("{want} without a terminator after it"), ev);
    } else {
        f.pass(case, format!("{want}, then the terminator"), ev);
    }
}
