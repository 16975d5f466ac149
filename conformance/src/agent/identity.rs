//! Sender identity (§13), agent side: the SID cases.
//!
//! §13 is optional; an agent implements it exactly when its prompt
//! endpoint declares `min_sender_trust` (§13.13), and only then do these
//! cases run. The suite signs with a key of its own: a receiver verifies
//! the signature against the header's `user` and nothing else (§13.7.2),
//! so no particular NATS user is needed to prove an agent verifies.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_nats::HeaderMap;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use nap_proto::identity::{
    Account, MIN_SENDER_TRUST_KEY, MinSenderTrust, Nonce, RegisteredIdentity, SENDER_HEADER,
    SenderSigner, SenderTime, SubjectPolicy, verify_stored,
};
use serde_json::{Value, json};

use super::liveness::Watcher;
use super::probe::{Exchange, ExchangeOptions, Probe, Reply, signed_header};
use super::registration::Subject;
use super::requests::{judge_accepted, judge_rejected};
use crate::case::{Case, Evidence};
use crate::catalogue::*;
use crate::error::Result;
use crate::report::Findings;

/// Every SID case, for skipping them together.
const SID_CASES: &[Case] = &[
    SID_001, SID_002, SID_003, SID_004, SID_005, SID_006, SID_007, SID_008, SID_009, SID_010,
    SID_011, SID_012, SID_013,
];

/// The account the suite's own key claims (§13.3.1 name form). A
/// receiver grants nothing on an account (§13.7.2), so any name does.
pub const SUITE_ACCOUNT: &str = "conformance";

/// A fresh signer for the suite: a new user key, never reused.
pub fn suite_signer() -> Option<Arc<SenderSigner>> {
    let seed = nkeys::KeyPair::new_user().seed().ok()?;
    let account = Account::new(SUITE_ACCOUNT).ok()?;
    SenderSigner::new(&seed, account).ok().map(Arc::new)
}

/// What the record declares about §13.
#[derive(Debug, Clone, PartialEq)]
pub enum Declared {
    /// No `min_sender_trust`: the agent does not implement §13.
    Nothing,
    /// A value: the agent implements §13.
    Value(Value),
}

/// Reads `min_sender_trust` from the record's prompt endpoint.
pub fn declared(s: &Subject) -> Declared {
    let metadata = s
        .raw
        .get("endpoints")
        .and_then(Value::as_array)
        .and_then(|eps| {
            eps.iter()
                .find(|e| e.get("name").and_then(Value::as_str) == Some("prompt"))
        })
        .and_then(|e| e.get("metadata"));
    match metadata.and_then(|m| m.get(MIN_SENDER_TRUST_KEY)) {
        Some(v) => Declared::Value(v.clone()),
        None => Declared::Nothing,
    }
}

fn header(value: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(SENDER_HEADER, value);
    headers
}

fn sign_at(signer: &SenderSigner, subject: &str, at: SystemTime, payload: &[u8]) -> Option<String> {
    let ts = SenderTime::from_system_time(at).ok()?;
    let nonce = Nonce::new(nuid::next().to_string()).ok()?;
    Some(signer.sign(subject, ts, nonce, payload).ok()?.encode())
}

/// Flips one bit of the signature of a signed header value.
fn tamper(value: &str) -> Option<String> {
    let mut json: Value = serde_json::from_str(value).ok()?;
    let mut sig = URL_SAFE_NO_PAD.decode(json.get("sig")?.as_str()?).ok()?;
    *sig.first_mut()? ^= 0x01;
    json["sig"] = URL_SAFE_NO_PAD.encode(sig).into();
    Some(json.to_string())
}

/// Runs SID-001…010 and SID-013 (the heartbeat case comes later, with
/// the heartbeats); returns the exchanges for the stream rules.
pub async fn run(
    probe: &Probe,
    s: &Subject,
    prompt: &str,
    options: &ExchangeOptions,
    f: &mut Findings,
) -> Result<Vec<Exchange>> {
    let mut exchanges = Vec::new();
    let value = match declared(s) {
        Declared::Nothing => {
            for c in SID_CASES {
                f.skip(
                    *c,
                    "the agent does not implement §13 (no min_sender_trust declared)",
                );
            }
            return Ok(exchanges);
        }
        Declared::Value(v) => v,
    };
    let record = vec![Evidence::notes(
        "prompt endpoint metadata",
        vec![format!("{MIN_SENDER_TRUST_KEY}: {value}")],
    )];
    let requirement = match value.as_str().and_then(MinSenderTrust::parse) {
        Some(r) => {
            f.pass(SID_001, format!("declares {r}"), record);
            r
        }
        None => {
            f.fail(
                SID_001,
                format!("declares {value}, which is neither \"any\" nor \"signed\""),
                record,
            );
            // A caller reads an unknown value as `signed` (§13.9).
            MinSenderTrust::Signed
        }
    };
    judge_registration(s, f);
    let (Some(subject), Some(signer)) = (s.prompt_subject.as_deref(), probe.signer().cloned())
    else {
        for c in [
            SID_002, SID_003, SID_004, SID_005, SID_006, SID_007, SID_008, SID_009,
        ] {
            f.skip(c, "no prompt endpoint, or the suite could not make a key");
        }
        judge_status(probe, s, f, &[]).await?;
        return Ok(exchanges);
    };
    let payload = Bytes::from(serde_json::to_vec(&json!({ "prompt": prompt })).unwrap_or_default());
    let now = SystemTime::now;

    // SID-002: two malformed headers.
    let mut malformed_pass = true;
    let mut evidence = Vec::new();
    for (label, value) in [
        ("Agent-Sender not JSON", "not json".to_owned()),
        (
            "Agent-Sender without user",
            json!({"v": 1, "account": SUITE_ACCOUNT}).to_string(),
        ),
    ] {
        let x = probe
            .exchange_with_headers(
                label,
                subject,
                Some(header(&value)),
                payload.clone(),
                options,
            )
            .await?;
        let mut one = Findings::new();
        judge_rejected(SID_002, 400, &x, &mut one);
        if one.get(SID_002.id).is_some_and(|v| v.is_must_failure()) {
            malformed_pass = false;
        }
        evidence.push(x.evidence());
        exchanges.push(x);
    }
    if malformed_pass {
        f.pass(SID_002, "400, then the terminator", evidence);
    } else {
        f.fail(
            SID_002,
            "a malformed header was not refused with 400",
            evidence,
        );
    }

    // SID-008 and SID-004: a valid signed request, then the same again.
    let valid = signed_header(&signer, subject, &payload).unwrap_or_default();
    let first = probe
        .exchange_with_headers(
            "validly signed",
            subject,
            Some(header(&valid)),
            payload.clone(),
            options,
        )
        .await?;
    judge_accepted(SID_008, &first, f);
    let again = probe
        .exchange_with_headers(
            "the same signed request again",
            subject,
            Some(header(&valid)),
            payload.clone(),
            options,
        )
        .await?;
    judge_rejected(SID_004, 401, &again, f);
    exchanges.extend([first, again]);

    // SID-003: one flipped signature bit.
    let tampered = signed_header(&signer, subject, &payload)
        .and_then(|v| tamper(&v))
        .unwrap_or_default();
    let x = probe
        .exchange_with_headers(
            "signature with one bit flipped",
            subject,
            Some(header(&tampered)),
            payload.clone(),
            options,
        )
        .await?;
    judge_rejected(SID_003, 401, &x, f);
    exchanges.push(x);

    // SID-005: a fresh header signed for another subject.
    let elsewhere = format!("{subject}.elsewhere");
    let transplanted = signed_header(&signer, &elsewhere, &payload).unwrap_or_default();
    let x = probe
        .exchange_with_headers(
            "header signed for another subject",
            subject,
            Some(header(&transplanted)),
            payload.clone(),
            options,
        )
        .await?;
    judge_rejected(SID_005, 401, &x, f);
    exchanges.push(x);

    // SID-006: signed two minutes ago.
    let stale =
        sign_at(&signer, subject, now() - Duration::from_secs(120), &payload).unwrap_or_default();
    let x = probe
        .exchange_with_headers(
            "signed 120 s ago",
            subject,
            Some(header(&stale)),
            payload.clone(),
            options,
        )
        .await?;
    judge_rejected(SID_006, 401, &x, f);
    exchanges.push(x);

    // SID-007: no header on a `signed` endpoint.
    if requirement == MinSenderTrust::Signed {
        let x = probe
            .exchange_with_headers("unsigned", subject, None, payload.clone(), options)
            .await?;
        judge_rejected(SID_007, 401, &x, f);
        exchanges.push(x);
    } else {
        f.skip(SID_007, "the endpoint declares any");
    }

    // SID-009: an unknown version is an absent sender.
    let v2 = json!({"v": 2, "account": SUITE_ACCOUNT, "future": true}).to_string();
    let x = probe
        .exchange_with_headers(
            "Agent-Sender with v 2",
            subject,
            Some(header(&v2)),
            payload.clone(),
            options,
        )
        .await?;
    match requirement {
        MinSenderTrust::Any => judge_accepted(SID_009, &x, f),
        MinSenderTrust::Signed => judge_rejected(SID_009, 401, &x, f),
    }
    exchanges.push(x);

    judge_status(probe, s, f, &exchanges).await?;
    Ok(exchanges)
}

/// SID-011: the registered identity verifies.
fn judge_registration(s: &Subject, f: &mut Findings) {
    let identity = registered(s);
    let ev = vec![Evidence::messages(
        "$SRV.INFO record",
        vec![s.info.wire.clone()],
    )];
    match identity {
        RegisteredIdentity::Undeclared => f.skip(
            SID_011,
            "no user_nkey/account registered (an agent without its seed registers none)",
        ),
        RegisteredIdentity::Verified(id) => {
            f.pass(SID_011, format!("id_sig verifies for {id}"), ev)
        }
        other => f.fail(SID_011, other.to_string(), ev),
    }
}

fn registered(s: &Subject) -> RegisteredIdentity {
    let metadata = s
        .raw
        .get("metadata")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    RegisteredIdentity::read(
        &metadata,
        s.agent.as_deref().unwrap_or_default(),
        s.owner.as_deref().unwrap_or_default(),
        s.prompt_subject.as_deref().unwrap_or_default(),
    )
}

fn has_sender_header(r: &Reply) -> bool {
    r.headers()
        .is_some_and(|h| h.iter().any(|(k, _)| k == SENDER_HEADER))
}

/// SID-010 and SID-013: status answers whatever the header; no reply is signed.
async fn judge_status(
    probe: &Probe,
    s: &Subject,
    f: &mut Findings,
    exchanges: &[Exchange],
) -> Result<()> {
    let mut signed_replies: Vec<Evidence> = exchanges
        .iter()
        .filter(|x| x.replies.iter().any(has_sender_header))
        .map(Exchange::evidence)
        .collect();
    let Some(subject) = s.status_subject.as_deref() else {
        f.skip(SID_010, "no status endpoint");
        if signed_replies.is_empty() {
            f.pass(SID_013, "no stream message carries Agent-Sender", vec![]);
        } else {
            f.fail(
                SID_013,
                "a stream message carries Agent-Sender",
                signed_replies,
            );
        }
        return Ok(());
    };
    let mut failures = Vec::new();
    let mut evidence = Vec::new();
    let bad_sig = probe
        .signer()
        .and_then(|signer| signed_header(signer, subject, b""))
        .and_then(|v| tamper(&v))
        .unwrap_or_default();
    for (label, value) in [
        ("malformed", "not json".to_owned()),
        ("failing signature", bad_sig),
    ] {
        let (request, reply) = probe
            .request_one_with_headers(
                subject,
                Some(header(&value)),
                Bytes::new(),
                Duration::from_secs(3),
            )
            .await?;
        let mut messages = vec![request];
        if let Some(r) = &reply {
            messages.push(r.wire.clone());
        }
        let ev = Evidence::messages(format!("status with a {label} Agent-Sender"), messages);
        match &reply {
            None => failures.push(format!("{label}: no reply")),
            Some(r) if nap_proto::Heartbeat::decode(&r.body).is_err() => {
                failures.push(format!("{label}: the reply is not heartbeat-shaped"))
            }
            Some(r) if has_sender_header(r) => signed_replies.push(ev.clone()),
            Some(_) => {}
        }
        evidence.push(ev);
    }
    if failures.is_empty() {
        f.pass(
            SID_010,
            "answered with a heartbeat-shaped reply both times",
            evidence,
        );
    } else {
        f.fail(SID_010, failures.join("; "), evidence);
    }
    if signed_replies.is_empty() {
        f.pass(SID_013, "no reply carries Agent-Sender", vec![]);
    } else {
        f.fail(SID_013, "a reply carries Agent-Sender", signed_replies);
    }
    Ok(())
}

/// SID-012: every heartbeat of the instance is signed by its registered
/// user, over the heartbeat subject, with the beat's own `ts` and a nonce
/// of its own. Runs after the heartbeat watch.
pub fn judge_heartbeats(watcher: &Watcher, s: &Subject, f: &mut Findings) {
    if declared(s) == Declared::Nothing {
        return; // skipped with the others
    }
    let RegisteredIdentity::Verified(id) = registered(s) else {
        f.skip(
            SID_012,
            "no verified registered identity (an agent without its seed beats unsigned)",
        );
        return;
    };
    let beats: Vec<_> = watcher
        .beats()
        .into_iter()
        .filter(|b| {
            serde_json::from_slice::<Value>(&b.reply.body)
                .ok()
                .and_then(|v| v.get("instance_id")?.as_str().map(|i| i == s.id))
                .unwrap_or(false)
        })
        .collect();
    if beats.is_empty() {
        f.skip(SID_012, "no heartbeat of this instance was seen");
        return;
    }
    let policy = SubjectPolicy::default();
    let mut nonces = HashSet::new();
    let mut problems = Vec::new();
    for b in &beats {
        let values: Vec<&str> = b
            .reply
            .headers()
            .map(|h| {
                h.iter()
                    .filter(|(k, _)| k == SENDER_HEADER)
                    .map(|(_, v)| v.as_str())
                    .collect()
            })
            .unwrap_or_default();
        let at = b.reply.wire.at_ms;
        match verify_stored(&b.reply.wire.subject, values, &b.reply.body, &policy) {
            Err(e) => problems.push(format!("beat at {at} ms: {e}")),
            Ok(v) => {
                let body_ts = serde_json::from_slice::<Value>(&b.reply.body)
                    .ok()
                    .and_then(|v| v.get("ts")?.as_str().map(str::to_owned));
                if v.id().user() != id.user() {
                    problems.push(format!(
                        "beat at {at} ms: signed by {}, registered {}",
                        v.id(),
                        id
                    ));
                }
                if body_ts.as_deref() != Some(v.header.ts.as_str()) {
                    problems.push(format!(
                        "beat at {at} ms: header ts {} is not the beat's ts",
                        v.header.ts
                    ));
                }
                if !nonces.insert(v.header.nonce.to_string()) {
                    problems.push(format!("beat at {at} ms: nonce {} reused", v.header.nonce));
                }
            }
        }
    }
    let ev = vec![Evidence::messages(
        "heartbeats",
        beats.iter().map(|b| b.reply.wire.clone()).collect(),
    )];
    if problems.is_empty() {
        f.pass(
            SID_012,
            format!("{} heartbeat(s), each signed by {id}", beats.len()),
            ev,
        );
    } else {
        f.fail(SID_012, problems.join("; "), ev);
    }
}
