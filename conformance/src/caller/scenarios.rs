//! The scenario agents of caller mode: legal but demanding streams.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use nap_proto::{Chunk, Query, ResponseData, StatusToken};
use serde_json::json;
use tokio::sync::oneshot;

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
    /// When it ended (exited or was killed).
    pub ended: Option<Instant>,
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

/// The payload the runner publishes on a query's reply subject once the
/// caller has exited, so that the agent still listening there knows that
/// every reply the caller sent has been counted (NATS delivers one
/// subscription's messages in order).
pub const SETTLE: &[u8] = b"nap-conformance: settle";

/// A query reply subject an agent still listens on, and the signal it
/// gives once it has seen [`SETTLE`] there.
pub type Listening = (String, oneshot::Receiver<()>);

/// What a scenario agent shares with the runner: the replies it received,
/// when it last published, and the reply subjects it still listens on.
#[derive(Debug, Clone, Default)]
pub struct Scene {
    /// Query replies received, in order.
    pub replies: Received,
    /// When the agent last published on the reply subject.
    pub last_sent: Arc<Mutex<Option<Instant>>>,
    /// Reply subjects still listened on, each with the signal the agent
    /// gives once it has seen [`SETTLE`] there.
    pub listening: Arc<Mutex<Vec<Listening>>>,
}

impl Scene {
    fn sent_now(&self) {
        if let Ok(mut at) = self.last_sent.lock() {
            *at = Some(Instant::now());
        }
    }

    fn record(&self, reply: String) {
        if let Ok(mut r) = self.replies.lock() {
            r.push(reply);
        }
    }
}

/// What the runner saw of one run, agent side, for the judges.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// Every reply received on the scenario's query reply subjects,
    /// including those that came after the stream ended.
    pub replies: Vec<String>,
    /// From the agent's last publication to the caller's exit.
    pub silence: Option<Duration>,
    /// The inactivity timeout the caller was given.
    pub timeout: Duration,
}

/// A scenario's verdict on a run: pass or the reason it failed.
pub type Judge = fn(&Run, &Observed, &str) -> Result<String, String>;

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
    /// The script its agent runs, given the caller's timeout.
    pub script: Box<dyn Fn(Duration, Scene) -> Box<dyn Script>>,
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
            script: Box::new(|t, scene| {
                steps(move |out: Out| {
                    let received = scene.replies.clone();
                    async move { ask(out, t, received).await }
                })
            }),
            judge: |run, seen, answer| {
                let replies = &seen.replies;
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
        Scenario {
            case: CALL_011,
            also: vec![],
            name: "call-011",
            custom_subject: false,
            // One ack, then responses 0.6 t apart: the stream lasts 2.4 t
            // with no ack after the first message, and no gap reaches t.
            script: Box::new(|t, _| {
                steps(move |out: Out| async move {
                    out.ack().await;
                    for word in ["one ", "two ", "three ", "four"] {
                        tokio::time::sleep(t.mul_f64(0.6)).await;
                        out.text(word).await;
                    }
                    out.end().await;
                })
            }),
            judge: |run, _, _| {
                expect_success(run, "one two three four").map_err(|why| {
                    format!("{why} (§6.6: the timeout runs from the last observed chunk, whatever its type)")
                })
            },
        },
        Scenario {
            case: CALL_012,
            also: vec![],
            name: "call-012",
            custom_subject: false,
            // Takes the request and never publishes anything.
            script: Box::new(|_, _| steps(|_out: Out| async move {})),
            judge: |run, _, _| {
                expect_failure(run, &[]).map_err(|why| {
                    format!("{why} (§6.6: with no chunk ever observed, the timeout runs from the request's publication)")
                })
            },
        },
        Scenario {
            case: CALL_013,
            also: vec![],
            name: "call-013",
            custom_subject: false,
            // An ack and some text, then silence; the agent notes when it
            // last published.
            script: Box::new(|_, scene| {
                steps(move |out: Out| {
                    let scene = scene.clone();
                    async move {
                        out.ack().await;
                        out.text("partial").await;
                        scene.sent_now();
                    }
                })
            }),
            judge: judge_timeout_applied,
        },
        Scenario {
            case: CALL_014,
            also: vec![],
            name: "call-014",
            custom_subject: false,
            script: Box::new(|t, scene| {
                steps(move |out: Out| {
                    let scene = scene.clone();
                    async move { ask_then_listen(out, t, scene).await }
                })
            }),
            judge: |run, seen, answer| {
                let want = format!("you answered: {answer}");
                let verdict = expect_success(run, &want)?;
                match seen.replies.len() {
                    1 => Ok(format!("{verdict}, one reply to the query")),
                    0 => Err("no reply to the query was received".to_owned()),
                    n => Err(format!(
                        "{n} replies on the query's reply subject, {} after the terminator: {:?} (§7.2: the caller publishes exactly one reply)",
                        n - 1,
                        seen.replies
                    )),
                }
            },
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

/// CALL-013: the caller gave up on a silent stream about `timeout` after
/// the agent's last chunk: not before 0.9 × timeout, not after timeout +
/// max(2 s, timeout / 2) (process exit and a loaded machine).
fn judge_timeout_applied(run: &Run, seen: &Observed, _: &str) -> Result<String, String> {
    expect_failure(run, &[])?;
    let Some(silence) = seen.silence else {
        return Err("the agent never published: cannot time the caller".to_owned());
    };
    let t = seen.timeout;
    let earliest = t.mul_f64(0.9);
    let latest = t + (t / 2).max(Duration::from_secs(2));
    let s = silence.as_secs_f64();
    if silence < earliest {
        return Err(format!(
            "gave up {s:.2} s after the last chunk, before the {:.1} s timeout it was given (§6.6)",
            t.as_secs_f64()
        ));
    }
    if silence > latest {
        return Err(format!(
            "gave up {s:.2} s after the last chunk, well past the {:.1} s timeout it was given (§6.6): it applies a timeout of its own",
            t.as_secs_f64()
        ));
    }
    Ok(format!(
        "exit {:?} {s:.2} s after the last chunk (timeout {:.1} s)",
        run.exit,
        t.as_secs_f64()
    ))
}

/// CALL-014: asks once, answers with what it got, ends the stream, and
/// keeps listening on the query's reply subject until the runner settles
/// it, recording every reply.
async fn ask_then_listen(out: Out, t: Duration, scene: Scene) {
    out.ack().await;
    let inbox = out.client().new_inbox();
    let Ok(mut sub) = out.client().subscribe(inbox.clone()).await else {
        out.error("500", Some("cannot subscribe"), Bytes::new())
            .await;
        out.end().await;
        return;
    };
    let _ = out.client().flush().await;
    let (settled, settle) = oneshot::channel();
    if let Ok(mut l) = scene.listening.lock() {
        l.push((inbox.clone(), settle));
    }
    let query = Chunk::Query(Query {
        id: nuid::next().to_string(),
        reply_subject: inbox,
        prompt: "continue? (conformance query)".to_owned(),
        attachments: Vec::new(),
        extra: serde_json::Map::new(),
    });
    out.chunk(&query).await;
    let Ok(Some(msg)) = tokio::time::timeout(t.mul_f64(2.0), sub.next()).await else {
        out.error("500", Some("no answer to the query"), Bytes::new())
            .await;
        out.end().await;
        return;
    };
    let answer = nap_proto::Envelope::decode(&msg.payload)
        .map(|e| e.prompt)
        .unwrap_or_else(|_| String::from_utf8_lossy(&msg.payload).into_owned());
    scene.record(answer.clone());
    out.text(&format!("you answered: {}", answer.trim())).await;
    out.end().await;
    // After the terminator: anything but the runner's settle is a second
    // reply.
    while let Some(m) = sub.next().await {
        if m.payload.as_ref() == SETTLE {
            let _ = settled.send(());
            return;
        }
        scene.record(String::from_utf8_lossy(&m.payload).into_owned());
    }
}
