//! Sender identity (§13), caller side: the CID cases.
//!
//! They need a server where the caller can be an NKEY user and learn its
//! own identity, which takes `$SYS.REQ.USER.INFO` (nats-server 2.10 and
//! later), so they run on a private server of their own: two NKEY users
//! (the caller's, whose seed file the command gets as `NATS_NKEY`, and the
//! scenario agents'), plus a password user that connections without
//! credentials become (`no_auth_user`), who has no identity (§13.4).
//!
//! A caller that, holding a seed, sends a request without `Agent-Sender`
//! does not implement §13, which is optional: the CID cases are then
//! skipped.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use nap_proto::identity::{MIN_SENDER_TRUST_KEY, SENDER_HEADER, SenderVerifier};
use nap_proto::metadata_keys as keys;

use super::runner::{CallerOptions, Placeholders, run_command_with, substitute};
use super::scenarios::Run;
use crate::agent::Probe;
use crate::case::{Evidence, Outcome};
use crate::catalogue::*;
use crate::error::{Error, Result};
use crate::report::Findings;
use crate::scripted::{self, Out, Script, ScriptedConfig};

/// One request a scenario agent received.
#[derive(Debug, Clone)]
struct Seen {
    subject: String,
    sender: Vec<String>,
    payload: Bytes,
}

type Log = Arc<Mutex<Vec<Seen>>>;

/// Records each request, then answers `ok`.
struct Recorder(Log);

#[async_trait]
impl Script for Recorder {
    async fn answer(&self, payload: Bytes, out: Out) {
        let sender = out
            .request_headers()
            .and_then(|h| {
                h.get_all(SENDER_HEADER)
                    .map(|v| v.to_string())
                    .collect::<Vec<_>>()
                    .into()
            })
            .unwrap_or_default();
        if let Ok(mut log) = self.0.lock() {
            log.push(Seen {
                subject: out.request_subject().to_owned(),
                sender,
                payload,
            });
        }
        out.ack().await;
        out.text("ok").await;
        out.end().await;
    }
}

/// The private server and keys of the identity scenarios.
struct Setup {
    _server: nap_testkit::NatsServer,
    _dir: PathBuf,
    url: String,
    caller_seed_file: PathBuf,
    agent_seed: String,
}

fn start_server() -> Result<Setup> {
    let host_err = |message: String| Error::Host {
        what: "identity server".to_owned(),
        message,
    };
    let binary = identity_capable_server().ok_or_else(|| {
        host_err("needs nats-server 2.10 or later ($SYS.REQ.USER.INFO); `cargo xtask setup` installs one".to_owned())
    })?;
    let caller = nkeys::KeyPair::new_user();
    let agent = nkeys::KeyPair::new_user();
    let config = format!(
        "authorization {{ users: [ {{ nkey: {} }}, {{ nkey: {} }}, {{ user: anonymous, password: anonymous }} ] }}\nno_auth_user: anonymous",
        caller.public_key(),
        agent.public_key()
    );
    let server = nap_testkit::NatsServer::builder()
        .binary(binary)
        .extra_config(config)
        .start()
        .map_err(|e| host_err(e.to_string()))?;
    let dir = server.dir().to_owned();
    let caller_seed_file = dir.join("caller.nk");
    let seed = caller.seed().map_err(|e| host_err(e.to_string()))?;
    std::fs::write(&caller_seed_file, format!("{seed}\n")).map_err(|e| host_err(e.to_string()))?;
    Ok(Setup {
        url: server.url(),
        _server: server,
        _dir: dir,
        caller_seed_file,
        agent_seed: agent.seed().map_err(|e| host_err(e.to_string()))?,
    })
}

/// A nats-server that answers `$SYS.REQ.USER.INFO` (2.10 or later): the
/// one `cargo xtask setup` installs (when this build has a tools dir, see
/// [`nap_testkit::setup_tools_dir`]), else the one found on `PATH` if it is
/// new enough.
pub fn identity_capable_server() -> Option<PathBuf> {
    [
        nap_testkit::setup_nats_server(),
        nap_testkit::find_nats_server().ok(),
    ]
    .into_iter()
    .flatten()
    .find(|p| nap_testkit::ServerVersion::of_binary(p).is_ok_and(|v| v.at_least(2, 10)))
}

/// One scenario: the endpoint's metadata and whether the caller holds a seed.
struct Scenario {
    name: &'static str,
    min_sender_trust: &'static str,
    max_payload: Option<String>,
    with_seed: bool,
    runs: usize,
}

/// Runs the CID cases (unless `options.only` excludes them all) into `f`.
pub async fn run(options: &CallerOptions, f: &mut Findings) -> Result<()> {
    const CASES: [crate::case::Case; 4] = [CID_001, CID_002, CID_003, CID_004];
    if !options.only.is_empty()
        && !CASES
            .iter()
            .any(|c| options.only.iter().any(|id| id == c.id))
    {
        return Ok(());
    }
    if options.server.is_some() {
        for c in CASES {
            f.skip(
                c,
                "needs a private server with NKEY users (run without --server)",
            );
        }
        return Ok(());
    }
    let setup = match tokio::task::spawn_blocking(start_server).await {
        Ok(Ok(setup)) => setup,
        Ok(Err(e)) => {
            for c in CASES {
                f.skip(c, format!("no identity-capable nats-server: {e}"));
            }
            return Ok(());
        }
        Err(e) => {
            return Err(Error::Host {
                what: "identity server".into(),
                message: e.to_string(),
            });
        }
    };
    let nats = async_nats::ConnectOptions::new()
        .nkey(setup.agent_seed.clone())
        .connect(&setup.url)
        .await
        .map_err(|source| Error::Connect {
            url: setup.url.clone(),
            source,
        })?;
    let probe = Probe::new(nats);
    let deadline = options.inactivity.mul_f64(3.0) + Duration::from_secs(15);

    // The prompt is `conformance CID-002`, 32 bytes as a JSON envelope
    // (less as plain text); 120 bytes leave room for it, never for a
    // signed header (about 300 bytes with a `$G` account).
    let scenarios = [
        (
            CID_001,
            Scenario {
                name: "cid-signs",
                min_sender_trust: "signed",
                max_payload: None,
                with_seed: true,
                runs: 2,
            },
        ),
        (
            CID_002,
            Scenario {
                name: "cid-size",
                min_sender_trust: "any",
                max_payload: Some("120B".into()),
                with_seed: true,
                runs: 1,
            },
        ),
        (
            CID_003,
            Scenario {
                name: "cid-noseed",
                min_sender_trust: "signed",
                max_payload: None,
                with_seed: false,
                runs: 1,
            },
        ),
        (
            CID_004,
            Scenario {
                name: "cid-unknown",
                min_sender_trust: "verified-only",
                max_payload: None,
                with_seed: false,
                runs: 1,
            },
        ),
    ];
    // A caller that holds a seed and still sends a request without
    // `Agent-Sender` does not implement §13 (§13.13: a caller implements it
    // if and only if it sends the header).
    let mut implements = true;
    let mut verdicts = Vec::new();
    for (case, scenario) in scenarios {
        let log: Log = Arc::default();
        let mut config = ScriptedConfig::new("conformance", "caller", scenario.name);
        config.heartbeat = Some(Duration::from_secs(5));
        config.prompt_metadata.insert(
            MIN_SENDER_TRUST_KEY.to_owned(),
            scenario.min_sender_trust.to_owned(),
        );
        if let Some(size) = &scenario.max_payload {
            config
                .prompt_metadata
                .insert(keys::MAX_PAYLOAD.to_owned(), size.clone());
        }
        let agent = scripted::start(
            probe.client().clone(),
            config.clone(),
            Recorder(log.clone()),
        )
        .await?;
        let placeholders = Placeholders {
            subject: agent.prompt_subject().to_owned(),
            prompt: format!("conformance {}", case.id),
            server: setup.url.clone(),
            agent: config.agent.clone(),
            owner: config.owner.clone(),
            name: config.name.clone(),
            timeout: format!("{}", options.inactivity.as_secs_f64()),
            answer: options.answer.clone(),
        };
        let line = substitute(&options.command, &placeholders)?;
        let seed = scenario
            .with_seed
            .then_some(setup.caller_seed_file.as_path());
        let mut runs = Vec::new();
        for _ in 0..scenario.runs {
            runs.push(run_command_with(&line, &setup.url, seed, deadline).await?);
        }
        // Let the last request reach the agent before judging.
        let _ = probe.client().flush().await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        drop(agent);
        let seen = log.lock().map(|l| l.clone()).unwrap_or_default();
        let mut notes = vec![
            format!("command: {line}"),
            format!(
                "NATS_NKEY: {}",
                seed.map_or("(unset)".to_owned(), |p| p.display().to_string())
            ),
        ];
        for (i, r) in runs.iter().enumerate() {
            notes.push(format!(
                "run {}: exit {:?}{}, stdout {:?}, stderr {:?}",
                i + 1,
                r.exit,
                if r.killed { " (killed: hung)" } else { "" },
                r.stdout,
                r.stderr
            ));
        }
        for s in &seen {
            notes.push(format!(
                "received on {}: Agent-Sender {:?}, {} payload bytes",
                s.subject,
                s.sender,
                s.payload.len()
            ));
        }
        let evidence = vec![Evidence::notes(
            format!("caller run: {}", scenario.name),
            notes,
        )];
        if scenario.with_seed && seen.iter().any(|s| s.sender.is_empty()) {
            implements = false;
        }
        let verdict = match case.id {
            "CID-001" => judge_signed(&runs, &seen),
            "CID-002" => {
                judge_local_failure(&runs, &seen, "the request only fits without its header")
            }
            _ => judge_local_failure(
                &runs,
                &seen,
                "the endpoint requires a signature the caller cannot make",
            ),
        };
        verdicts.push((case, verdict, evidence));
    }
    if !implements {
        for c in CASES {
            f.skip(
                c,
                "holding a seed, the caller sent a request without Agent-Sender: it does not implement §13",
            );
        }
        return Ok(());
    }
    for (case, verdict, evidence) in verdicts {
        match verdict {
            Ok(why) => f.record(case, Outcome::Pass, why, evidence),
            Err(why) => f.record(case, Outcome::Fail, why, evidence),
        }
    }
    Ok(())
}

fn judge_signed(runs: &[Run], seen: &[Seen]) -> std::result::Result<String, String> {
    if let Some(r) = runs.iter().find(|r| r.exit != Some(0)) {
        return Err(format!(
            "a run failed: exit {:?}, stderr {}",
            r.exit,
            r.stderr.trim()
        ));
    }
    if seen.len() != runs.len() {
        return Err(format!(
            "{} run(s), {} request(s) received",
            runs.len(),
            seen.len()
        ));
    }
    // One verifier for both: a repeated nonce fails the second.
    let mut verifier = SenderVerifier::default();
    for s in seen {
        match verifier.classify(
            SystemTime::now(),
            &s.subject,
            s.sender.iter().map(String::as_str),
            &s.payload,
        ) {
            Ok(sender) if sender.verified_id().is_some() => {}
            Ok(sender) => return Err(format!("the request's sender is {sender}, not signed")),
            Err(e) => return Err(format!("the header does not verify: {e}")),
        }
    }
    Ok(format!(
        "{} signed requests, each verified, distinct nonces",
        seen.len()
    ))
}

fn judge_local_failure(
    runs: &[Run],
    seen: &[Seen],
    why: &str,
) -> std::result::Result<String, String> {
    let Some(r) = runs.first() else {
        return Err("the caller was not run".to_owned());
    };
    if r.killed {
        return Err(format!("hung: killed after {:.1} s", r.secs));
    }
    if !seen.is_empty() {
        return Err(format!(
            "published anyway ({why}): the agent received {} request(s)",
            seen.len()
        ));
    }
    if r.exit == Some(0) || r.exit.is_none() {
        return Err(format!("exit {:?}: the failure was not reported", r.exit));
    }
    Ok(format!(
        "failed locally (exit {:?}), nothing published",
        r.exit
    ))
}
