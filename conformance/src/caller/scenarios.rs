//! The scenario agents of caller mode: legal but demanding streams.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use nap_proto::{Chunk, Query, ResponseData, StatusToken};
use serde_json::json;

use crate::case::Case;
use crate::catalogue::*;
use crate::scripted::{Out, Script, ScriptedConfig};

/// What the caller under test printed and how it ended.
#[derive(Debug, Clone, Default)]
pub struct Run {
    /// Its exit code; `None` when it was killed (it hung) or died by signal.
    pub exit: Option<i32>,
    /// True when the runner had to kill it.
    pub killed: bool,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
    /// How long it ran, in seconds.
    pub secs: f64,
}

impl Run {
    fn ok(&self) -> bool {
        self.exit == Some(0)
    }

    fn failed_cleanly(&self) -> bool {
        !self.killed && self.exit.is_some_and(|c| c != 0)
    }
}

/// Messages a scenario agent received from the caller (query replies).
pub type Received = Arc<Mutex<Vec<String>>>;

/// A scenario's verdict on a run: pass or the reason it failed.
pub type Judge = fn(&Run, &[String], &str) -> Result<String, String>;

/// One caller scenario.
pub struct Scenario {
    /// The primary case judged.
    pub case: Case,
    /// Further cases judged from the same run (with their own judges).
    pub also: Vec<(Case, Judge)>,
    /// The instance name of its agent.
    pub name: &'static str,
    /// Whether its prompt subject departs from the default pattern.
    pub custom_subject: bool,
    /// The script its agent runs.
    pub script: Box<dyn Fn(Duration, Received) -> Box<dyn Script>>,
    /// The judge of the primary case.
    pub judge: Judge,
}

impl std::fmt::Debug for Scenario {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scenario")
            .field("case", &self.case.id)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Scenario {
    /// The scenario agent's registration.
    pub fn config(&self) -> ScriptedConfig {
        let mut c = ScriptedConfig::new("conformance", "caller", self.name);
        c.heartbeat = Some(Duration::from_secs(5));
        if self.custom_subject {
            c.prompt_subject = Some(format!("conformance.custom.{}.prompt", self.name));
            c.session = Some(self.name.to_owned());
        }
        c
    }
}

/// A script given as a closure over the reply side.
struct Steps<F>(F);

#[async_trait]
impl<F, Fut> Script for Steps<F>
where
    F: Fn(Out) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    async fn answer(&self, _payload: Bytes, out: Out) {
        (self.0)(out).await;
    }
}

fn steps<F, Fut>(f: F) -> Box<dyn Script>
where
    F: Fn(Out) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    Box::new(Steps(f))
}

fn expect_success(run: &Run, want: &str) -> Result<String, String> {
    if run.killed {
        return Err(format!("hung: killed after {:.1} s", run.secs));
    }
    if !run.ok() {
        return Err(format!(
            "exit {:?}; stderr: {}",
            run.exit,
            run.stderr.trim()
        ));
    }
    if !run.stdout.contains(want) {
        return Err(format!("stdout {:?} does not contain {want:?}", run.stdout));
    }
    Ok(format!("exit 0, printed {want:?}"))
}

fn expect_failure(run: &Run, shows: &[&str]) -> Result<String, String> {
    if run.killed {
        return Err(format!("hung: killed after {:.1} s", run.secs));
    }
    if !run.failed_cleanly() {
        return Err(format!("exit {:?}: the failure was not reported", run.exit));
    }
    match shows.iter().find(|s| run.stderr.contains(**s)) {
        Some(s) => Ok(format!("exit {:?}, stderr shows {s:?}", run.exit)),
        None if shows.is_empty() => Ok(format!("exit {:?} after {:.1} s", run.exit, run.secs)),
        None => Err(format!(
            "exit {:?} but stderr {:?} shows none of {shows:?}",
            run.exit,
            run.stderr.trim()
        )),
    }
}

/// The text of the JSON-bodied error (CALL-006, CALL-010).
pub const BODY_MESSAGE: &str = "slow down, conformance";
/// The header description of the JSON-bodied error.
pub const RATE_LIMITED: &str = "rate limited";
/// The header description of the body-less error (CALL-007).
pub const INTERNAL: &str = "conformance internal failure";

/// Every scenario, in case order; `t` is the caller's inactivity timeout.
pub fn all() -> Vec<Scenario> {
    vec![
        Scenario {
            case: CALL_001,
            also: vec![],
            name: "call-001",
            custom_subject: false,
            script: Box::new(|_, _| {
                steps(|out: Out| async move {
                    out.ack().await;
                    let mut extra = serde_json::Map::new();
                    extra.insert("x_extra".into(), json!(1));
                    out.raw(
                        Chunk::Response(ResponseData::Object {
                            text: "Hello, ".into(),
                            attachments: Vec::new(),
                            extra,
                        })
                        .encode(),
                    )
                    .await;
                    out.text("world.").await;
                    out.end().await;
                })
            }),
            judge: |run, _, _| expect_success(run, "Hello, world."),
        },
        Scenario {
            case: CALL_002,
            also: vec![],
            name: "call-002",
            custom_subject: false,
            script: Box::new(|_, _| {
                steps(|out: Out| async move {
                    out.ack().await;
                    out.text("alpha").await;
                    out.raw(
                        Chunk::Unknown {
                            kind: "x-conformance-future".into(),
                            data: json!({"k": 1}),
                        }
                        .encode(),
                    )
                    .await;
                    out.raw(Chunk::Status(StatusToken::Other("thinking".into())).encode())
                        .await;
                    out.text("beta").await;
                    out.end().await;
                })
            }),
            judge: |run, _, _| expect_success(run, "alphabeta"),
        },
        Scenario {
            case: CALL_003,
            also: vec![],
            name: "call-003",
            custom_subject: false,
            script: Box::new(|t, _| {
                steps(move |out: Out| async move {
                    out.ack().await;
                    let step = t.mul_f64(0.4);
                    for _ in 0..5 {
                        tokio::time::sleep(step).await;
                        out.ack().await;
                    }
                    out.text("kept alive").await;
                    out.end().await;
                })
            }),
            judge: |run, _, _| expect_success(run, "kept alive"),
        },
        Scenario {
            case: CALL_004,
            also: vec![],
            name: "call-004",
            custom_subject: false,
            script: Box::new(|t, _| {
                steps(move |out: Out| async move {
                    out.ack().await;
                    out.text("before ").await;
                    tokio::time::sleep(t.mul_f64(0.6)).await;
                    out.text("after").await;
                    out.end().await;
                })
            }),
            judge: |run, _, _| expect_success(run, "before after"),
        },
        Scenario {
            case: CALL_005,
            also: vec![],
            name: "call-005",
            custom_subject: false,
            script: Box::new(|_, _| {
                steps(|out: Out| async move {
                    out.ack().await;
                    out.text("partial").await;
                    // The terminator is "lost".
                })
            }),
            judge: |run, _, _| expect_failure(run, &[]),
        },
        Scenario {
            case: CALL_006,
            also: vec![(CALL_010, |run, _, _| expect_failure(run, &[BODY_MESSAGE]))],
            name: "call-006",
            custom_subject: false,
            script: Box::new(|_, _| {
                steps(|out: Out| async move {
                    out.ack().await;
                    let body = json!({"error": "rate_limited", "message": BODY_MESSAGE, "retry_after_s": 1});
                    out.error(
                        "429",
                        Some(RATE_LIMITED),
                        serde_json::to_vec(&body).unwrap_or_default(),
                    ) // ok: literal JSON
                    .await;
                    out.end().await;
                })
            }),
            judge: |run, _, _| expect_failure(run, &["429", RATE_LIMITED, BODY_MESSAGE]),
        },
        Scenario {
            case: CALL_007,
            also: vec![],
            name: "call-007",
            custom_subject: false,
            script: Box::new(|_, _| {
                steps(|out: Out| async move {
                    out.ack().await;
                    out.error("500", Some(INTERNAL), Bytes::new()).await;
                    out.end().await;
                })
            }),
            judge: |run, _, _| expect_failure(run, &[INTERNAL]),
        },
        Scenario {
            case: CALL_008,
            also: vec![],
            name: "call-008",
            custom_subject: false,
            script: Box::new(|t, received| {
                steps(move |out: Out| {
                    let received = received.clone();
                    async move { ask(out, t, received).await }
                })
            }),
            judge: |run, replies, answer| {
                let want = format!("you answered: {answer}");
                let verdict = expect_success(run, &want)?;
                if replies.len() != 1 {
                    return Err(format!(
                        "{} replies on the query's reply subject: {replies:?}",
                        replies.len()
                    ));
                }
                Ok(verdict)
            },
        },
        Scenario {
            case: CALL_009,
            also: vec![],
            name: "call-009",
            custom_subject: true,
            script: Box::new(|_, _| {
                steps(|out: Out| async move {
                    out.ack().await;
                    out.text("custom subject ok").await;
                    out.end().await;
                })
            }),
            judge: |run, _, _| expect_success(run, "custom subject ok"),
        },
    ]
}

/// CALL-008: asks "continue?" and streams back the answer.
async fn ask(out: Out, t: Duration, received: Received) {
    out.ack().await;
    let inbox = out.client().new_inbox();
    let Ok(mut sub) = out.client().subscribe(inbox.clone()).await else {
        out.error("500", Some("cannot subscribe"), Bytes::new())
            .await;
        out.end().await;
        return;
    };
    let _ = out.client().flush().await;
    let query = Chunk::Query(Query {
        id: nuid::next().to_string(),
        reply_subject: inbox,
        prompt: "continue? (conformance query)".to_owned(),
        attachments: Vec::new(),
        extra: serde_json::Map::new(),
    });
    out.chunk(&query).await;
    let first = tokio::time::timeout(t.mul_f64(2.0), sub.next()).await;
    let Ok(Some(msg)) = first else {
        out.error("500", Some("no answer to the query"), Bytes::new())
            .await;
        out.end().await;
        return;
    };
    // §7.2: the reply is plain text or a JSON envelope.
    let answer = nap_proto::Envelope::decode(&msg.payload)
        .map(|e| e.prompt)
        .unwrap_or_else(|_| String::from_utf8_lossy(&msg.payload).into_owned());
    if let Ok(mut r) = received.lock() {
        r.push(answer.clone());
    }
    // Count any further replies (§7.2: exactly one).
    let extra_window = tokio::time::sleep(Duration::from_millis(300));
    tokio::pin!(extra_window);
    loop {
        tokio::select! {
            _ = &mut extra_window => break,
            m = sub.next() => match m {
                Some(m) => if let Ok(mut r) = received.lock() {
                    r.push(String::from_utf8_lossy(&m.payload).into_owned());
                },
                None => break,
            },
        }
    }
    out.text(&format!("you answered: {}", answer.trim())).await;
    out.end().await;
}
