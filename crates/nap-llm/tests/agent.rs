//! `LlmAgent` with a scripted model and with the offline model.

#![allow(clippy::unwrap_used)]

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nap_agent::{Agent, Instance, Request, Responder};
use nap_llm::{
    ChatRequest, ChatStream, CompletionBuilder, ContentPart, FinishReason, Llm, LlmAgent, LlmError,
    Message, NoMemory, Offline, Role, StreamEvent, ToolCallDelta, ToolError, Usage, session_key,
    tool_fn, tools,
};
use nap_proto::identity::{Account, Nonce, Sender, SenderSigner, SenderTime, VerifiedSender};
use nap_proto::{Attachment, Chunk, Envelope, StatusCode, StatusToken};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

/// One scripted model answer.
enum Round {
    Text(Vec<&'static str>),
    Tools(Vec<(&'static str, &'static str, Value)>),
    Fail(LlmError),
    /// One text delta, then nothing, forever.
    Hang,
}

/// A model that replays rounds and records what it was asked.
#[derive(Clone, Default)]
struct Scripted {
    rounds: Arc<Mutex<VecDeque<Round>>>,
    seen: Arc<Mutex<Vec<ChatRequest>>>,
    dropped: Arc<AtomicBool>,
    /// Repeat the last tool round forever.
    always_tools: bool,
}

impl Scripted {
    fn new(rounds: Vec<Round>) -> Self {
        Scripted {
            rounds: Arc::new(Mutex::new(rounds.into())),
            ..Default::default()
        }
    }

    fn seen(&self) -> Vec<ChatRequest> {
        self.seen.lock().unwrap().clone()
    }
}

struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

impl Llm for Scripted {
    fn model(&self) -> &str {
        "scripted"
    }

    fn chat(&self, request: ChatRequest) -> ChatStream {
        self.seen.lock().unwrap().push(request);
        let round = if self.always_tools {
            Round::Tools(vec![("again", "echo", json!({"text": "x"}))])
        } else {
            self.rounds
                .lock()
                .unwrap()
                .pop_front()
                .unwrap_or(Round::Text(vec!["(no more script)"]))
        };
        let flag = DropFlag(self.dropped.clone());
        Box::pin(async_stream::stream! {
            let _flag = flag;
            let mut builder = CompletionBuilder::new("scripted");
            let events: Vec<StreamEvent> = match round {
                Round::Text(pieces) => pieces.into_iter().map(|p| StreamEvent::Text(p.into())).collect(),
                Round::Tools(calls) => calls
                    .into_iter()
                    .enumerate()
                    .map(|(index, (id, name, args))| StreamEvent::ToolCall(ToolCallDelta {
                        index,
                        id: Some(id.into()),
                        name: Some(name.into()),
                        arguments: args.to_string(),
                    }))
                    .collect(),
                Round::Fail(e) => {
                    yield Err(e);
                    return;
                }
                Round::Hang => {
                    yield Ok(StreamEvent::Text("thinking".into()));
                    futures::future::pending::<()>().await;
                    return;
                }
            };
            for e in events {
                builder.push(&e);
                tokio::task::yield_now().await;
                yield Ok(e);
            }
            builder.usage = Usage { input_tokens: 1, output_tokens: 1 };
            yield Ok(StreamEvent::Done(builder.finish().unwrap()));
        })
    }
}

#[derive(Deserialize, JsonSchema)]
struct EchoArgs {
    text: String,
}

fn echo() -> impl nap_llm::Tool {
    tool_fn("echo", "Echoes its text", |a: EchoArgs| async move {
        Ok(format!("echo: {}", a.text))
    })
}

fn statuses(chunks: &[Chunk]) -> Vec<String> {
    chunks
        .iter()
        .filter_map(|c| match c {
            Chunk::Status(StatusToken::Other(s)) => Some(s.clone()),
            _ => None,
        })
        .collect()
}

fn tool_results(request: &ChatRequest) -> Vec<nap_llm::ToolResult> {
    request
        .messages
        .iter()
        .flat_map(|m| m.tool_results_iter().cloned().collect::<Vec<_>>())
        .collect()
}

#[tokio::test]
async fn two_round_tool_loop_streams_the_answer() {
    let llm = Scripted::new(vec![
        Round::Tools(vec![("c1", "echo", json!({"text": "hi"}))]),
        Round::Text(vec!["The ", "tool ", "said hi."]),
    ]);
    let agent = LlmAgent::builder(llm.clone())
        .system("sys")
        .tool(echo())
        .build();
    let (out, collected) = Responder::collector();
    agent.prompt(Request::text("say hi"), out).await.unwrap();

    assert_eq!(collected.text(), "The tool said hi.");
    let chunks = collected.chunks();
    assert_eq!(statuses(&chunks), ["tool:echo"]);
    assert_eq!(
        chunks
            .iter()
            .filter(|c| matches!(c, Chunk::Response(_)))
            .count(),
        3,
        "one chunk per delta"
    );

    let seen = llm.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].messages[0], Message::system("sys"));
    assert_eq!(seen[0].tools[0].name, "echo");
    assert_eq!(
        seen[0].tools[0].parameters["properties"]["text"]["type"],
        "string"
    );
    let roles: Vec<Role> = seen[1].messages.iter().map(|m| m.role).collect();
    assert_eq!(
        roles,
        [Role::System, Role::User, Role::Assistant, Role::Tool]
    );
    let results = tool_results(&seen[1]);
    assert_eq!(results[0].call_id, "c1");
    assert_eq!(results[0].content, "echo: hi");
    assert!(!results[0].is_error);
}

#[derive(Deserialize, JsonSchema)]
struct SleepArgs {
    ms: u64,
}

#[tokio::test]
async fn parallel_tool_calls_run_at_once() {
    let in_flight = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (f, p) = (in_flight.clone(), peak.clone());
    let sleepy = tool_fn("sleep", "Sleeps", move |a: SleepArgs| {
        let (f, p) = (f.clone(), p.clone());
        async move {
            let now = f.fetch_add(1, Ordering::SeqCst) + 1;
            p.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(a.ms)).await;
            f.fetch_sub(1, Ordering::SeqCst);
            Ok(format!("slept {}", a.ms))
        }
    });
    let llm = Scripted::new(vec![
        Round::Tools(vec![
            ("a", "sleep", json!({"ms": 150})),
            ("b", "sleep", json!({"ms": 150})),
            ("c", "echo", json!({"text": "x"})),
        ]),
        Round::Text(vec!["done"]),
    ]);
    let agent = LlmAgent::builder(llm.clone())
        .tool(sleepy)
        .tool(echo())
        .build();
    let (out, collected) = Responder::collector();
    agent.prompt(Request::text("go"), out).await.unwrap();
    assert_eq!(
        peak.load(Ordering::SeqCst),
        2,
        "both sleeps ran at the same time"
    );
    assert_eq!(
        statuses(&collected.chunks()),
        ["tool:sleep", "tool:sleep", "tool:echo"]
    );
    let results = tool_results(&llm.seen()[1]);
    let ids: Vec<_> = results.iter().map(|r| r.call_id.as_str()).collect();
    assert_eq!(ids, ["a", "b", "c"], "results keep the calls' order");
}

#[tokio::test]
async fn a_failing_tool_is_seen_by_the_model() {
    let failing = tool_fn("lookup", "Looks up", |_: EchoArgs| async move {
        Err::<String, _>(ToolError::new("the database is down"))
    });
    let llm = Scripted::new(vec![
        Round::Tools(vec![
            ("c1", "lookup", json!({"text": "x"})),
            ("c2", "missing_tool", json!({})),
            ("c3", "echo", json!({"wrong": 1})),
        ]),
        Round::Text(vec!["Sorry, the lookup failed."]),
    ]);
    let agent = LlmAgent::builder(llm.clone())
        .tool(failing)
        .tool(echo())
        .build();
    let (out, collected) = Responder::collector();
    agent.prompt(Request::text("find x"), out).await.unwrap();
    assert_eq!(collected.text(), "Sorry, the lookup failed.");
    let results = tool_results(&llm.seen()[1]);
    assert!(results.iter().all(|r| r.is_error));
    assert_eq!(results[0].content, "the database is down");
    assert!(
        results[1].content.contains("no tool named `missing_tool`"),
        "{}",
        results[1].content
    );
    assert!(
        results[2].content.contains("invalid arguments"),
        "{}",
        results[2].content
    );
}

#[tokio::test]
async fn the_round_bound_stops_a_looping_model() {
    let llm = Scripted {
        always_tools: true,
        ..Default::default()
    };
    let agent = LlmAgent::builder(llm.clone())
        .tool(echo())
        .max_rounds(2)
        .build();
    let (out, collected) = Responder::collector();
    let err = agent.prompt(Request::text("loop"), out).await.unwrap_err();
    assert_eq!(err.code(), StatusCode::Internal);
    assert!(err.to_string().contains("after 2 rounds"), "{err}");
    let body = err.service_error().body.clone().unwrap();
    assert_eq!(body.error, "too_many_tool_rounds");
    assert_eq!(
        llm.seen().len(),
        3,
        "two tool rounds, then the model must answer"
    );
    assert_eq!(statuses(&collected.chunks()).len(), 2);
}

fn in_session(prompt: &str, session: Option<&str>) -> Request {
    let mut envelope = Envelope::text(prompt);
    if let Some(s) = session {
        envelope.extra.insert("session".into(), s.into());
    }
    Request::new(envelope)
}

#[tokio::test]
async fn memory_spans_prompts_of_one_session_only() {
    let llm = Scripted::new(vec![
        Round::Text(vec!["Nice to meet you, Ada."]),
        Round::Text(vec!["You are Ada."]),
        Round::Text(vec!["I don't know."]),
    ]);
    let agent = LlmAgent::builder(llm.clone()).no_system().build();
    for (prompt, session) in [("I am Ada", "s1"), ("Who am I?", "s1"), ("Who am I?", "s2")] {
        let (out, _) = Responder::collector();
        agent
            .prompt(in_session(prompt, Some(session)), out)
            .await
            .unwrap();
    }
    let seen = llm.seen();
    let texts = |r: &ChatRequest| r.messages.iter().map(Message::text).collect::<Vec<_>>();
    assert_eq!(
        texts(&seen[1]),
        ["I am Ada", "Nice to meet you, Ada.", "Who am I?"]
    );
    assert_eq!(
        texts(&seen[2]),
        ["Who am I?"],
        "another session starts afresh"
    );
}

#[tokio::test]
async fn no_memory_forgets() {
    let llm = Scripted::new(vec![Round::Text(vec!["a"]), Round::Text(vec!["b"])]);
    let agent = LlmAgent::builder(llm.clone())
        .no_system()
        .memory(NoMemory)
        .build();
    for p in ["one", "two"] {
        let (out, _) = Responder::collector();
        agent.prompt(Request::text(p), out).await.unwrap();
    }
    assert_eq!(llm.seen()[1].messages.len(), 1);
}

fn verified(seed_of: &nkeys::KeyPair) -> Sender {
    let signer =
        SenderSigner::new(&seed_of.seed().unwrap(), Account::new("ACME").unwrap()).unwrap();
    let header = signer
        .sign(
            "agents.prompt.llm.o.n",
            SenderTime::from_system_time(std::time::SystemTime::now()).unwrap(),
            Nonce::new("n").unwrap(),
            b"x",
        )
        .unwrap();
    Sender::Verified(VerifiedSender { header })
}

#[test]
fn the_conversation_is_the_callers_never_the_instances() {
    // No sender, no field: no conversation, whatever the instance.
    let mut request = in_session("x", None);
    request.instance = Arc::new(Instance {
        name: "inst".into(),
        session: Some("meta".into()),
        ..Default::default()
    });
    assert_eq!(session_key(&request), None);
    // The envelope field names one (a claim, so it is namespaced).
    assert_eq!(
        session_key(&in_session("x", Some("env"))).as_deref(),
        Some("session:env")
    );
    request.envelope.extra.insert("session".into(), json!(42));
    assert_eq!(session_key(&request).as_deref(), Some("session:42"));
    // A verified sender has its own, and may keep several.
    let alice = nkeys::KeyPair::new_user();
    let sender = verified(&alice);
    let id = sender.verified_id().unwrap().to_string();
    let request = in_session("x", None).with_sender(sender.clone());
    assert_eq!(session_key(&request), Some(format!("verified:{id}")));
    let request = in_session("x", Some("work")).with_sender(sender);
    assert_eq!(session_key(&request), Some(format!("verified:{id}/work")));
}

#[tokio::test]
async fn each_verified_caller_has_its_own_conversation() {
    let llm = Scripted::new(vec![
        Round::Text(vec!["Hello Ada."]),
        Round::Text(vec!["Hello Bob."]),
        Round::Text(vec!["You are Ada."]),
        Round::Text(vec!["You are Bob."]),
        Round::Text(vec!["I don't know you."]),
    ]);
    let agent = LlmAgent::builder(llm.clone()).no_system().build();
    let (ada, bob) = (nkeys::KeyPair::new_user(), nkeys::KeyPair::new_user());
    let prompts = [
        ("I am Ada", Some(&ada)),
        ("I am Bob", Some(&bob)),
        ("Who am I?", Some(&ada)),
        ("Who am I?", Some(&bob)),
        ("Who am I?", None),
    ];
    for (prompt, who) in prompts {
        let mut request = Request::text(prompt);
        if let Some(kp) = who {
            request = request.with_sender(verified(kp));
        }
        let (out, _) = Responder::collector();
        agent.prompt(request, out).await.unwrap();
    }
    let seen = llm.seen();
    let texts = |r: &ChatRequest| r.messages.iter().map(Message::text).collect::<Vec<_>>();
    assert_eq!(texts(&seen[2]), ["I am Ada", "Hello Ada.", "Who am I?"]);
    assert_eq!(texts(&seen[3]), ["I am Bob", "Hello Bob.", "Who am I?"]);
    assert_eq!(
        texts(&seen[4]),
        ["Who am I?"],
        "a caller without identity or session field gets no memory"
    );
}

#[tokio::test]
async fn dropping_the_prompt_stops_the_model_stream() {
    let llm = Scripted::new(vec![Round::Hang]);
    let agent = LlmAgent::builder(llm.clone()).build();
    let (out, collected) = Responder::collector();
    let prompt = agent.prompt(Request::text("think forever"), out);
    let timed_out = tokio::time::timeout(Duration::from_millis(200), prompt).await;
    assert!(timed_out.is_err(), "the prompt was still running");
    assert_eq!(collected.text(), "thinking");
    assert!(
        llm.dropped.load(Ordering::SeqCst),
        "the model stream was dropped with the prompt"
    );
}

#[tokio::test]
async fn model_errors_map_to_protocol_codes() {
    let cases = [
        (
            LlmError::RateLimited {
                retry_after: Some(Duration::from_secs(7)),
                body: "slow down".into(),
            },
            StatusCode::TooManyRequests,
        ),
        (
            LlmError::Http {
                status: 400,
                body: "context too long".into(),
            },
            StatusCode::BadRequest,
        ),
        (
            LlmError::Http {
                status: 401,
                body: "bad key".into(),
            },
            StatusCode::Internal,
        ),
        (
            LlmError::StreamInterrupted {
                reason: "reset".into(),
            },
            StatusCode::Internal,
        ),
    ];
    for (error, code) in cases {
        let llm = Scripted::new(vec![Round::Fail(error.clone())]);
        let agent = LlmAgent::builder(llm).build();
        let (out, _) = Responder::collector();
        let err = agent.prompt(Request::text("hi"), out).await.unwrap_err();
        assert_eq!(err.code(), code, "{error}");
        // The caller is told the short description, never the details.
        assert!(
            err.to_string().contains(&error.caller_description()),
            "{err}"
        );
    }
    let llm = Scripted::new(vec![Round::Fail(LlmError::RateLimited {
        retry_after: Some(Duration::from_secs(7)),
        body: "slow down".into(),
    })]);
    let (out, _) = Responder::collector();
    let err = LlmAgent::builder(llm)
        .build()
        .prompt(Request::text("hi"), out)
        .await
        .unwrap_err();
    let body = err.service_error().body.clone().unwrap();
    assert_eq!(body.error, "rate_limited");
    assert_eq!(body.extra["retry_after_ms"], 7000);
}

#[tokio::test]
async fn attachments_reach_the_model_as_content_parts() {
    let llm = Scripted::new(vec![Round::Text(vec!["a cat"])]);
    let agent = LlmAgent::builder(llm.clone()).build();
    let mut envelope = Envelope::text("what is this?");
    envelope.attachments.push(Attachment {
        filename: "cat.png".into(),
        content: vec![0x89, b'P', b'N', b'G'],
        extra: Default::default(),
    });
    let (out, _) = Responder::collector();
    agent.prompt(Request::new(envelope), out).await.unwrap();
    let user = &llm.seen()[0].messages[1];
    assert_eq!(
        user.content[1],
        ContentPart::Image {
            media_type: "image/png".into(),
            data: vec![0x89, b'P', b'N', b'G']
        }
    );
}

// ---- the offline model ---------------------------------------------------------

#[derive(Deserialize, JsonSchema)]
struct RepeatArgs {
    /// What to repeat.
    word: String,
    /// How often.
    times: u32,
}

#[tokio::test]
async fn offline_model_calls_tools_then_answers_with_their_results() {
    let repeat = tool_fn("repeat", "Repeats a word", |a: RepeatArgs| async move {
        Ok(vec![a.word.as_str(); a.times as usize].join(" "))
    });
    let agent = LlmAgent::builder(Offline::new())
        .tool(tools::calculator())
        .tool(repeat)
        .tool(tools::utc_now())
        .build();
    let (out, collected) = Responder::collector();
    agent
        .prompt(Request::text("compute 3 * (4 + 1) for me"), out)
        .await
        .unwrap();
    let text = collected.text();
    assert!(text.starts_with("[offline model]"), "{text}");
    assert!(text.contains("calculator returned: 15."), "{text}");
    assert!(text.contains("repeat returned:"), "{text}");
    assert!(text.contains("utc_now returned: 20"), "{text}");
    let chunks = collected.chunks();
    assert!(
        chunks
            .iter()
            .filter(|c| matches!(c, Chunk::Response(_)))
            .count()
            > 5,
        "streamed in several deltas"
    );
    assert_eq!(statuses(&chunks).len(), 3);
}

#[tokio::test]
async fn offline_model_reports_tool_errors_and_remembers() {
    let agent = LlmAgent::builder(Offline::new())
        .tool(tools::calculator())
        .build();
    let (out, collected) = Responder::collector();
    agent
        .prompt(in_session("no numbers here", Some("s")), out)
        .await
        .unwrap();
    assert!(
        collected
            .text()
            .contains("calculator failed: cannot evaluate"),
        "{}",
        collected.text()
    );

    let agent = LlmAgent::builder(Offline::new()).build();
    for p in ["first", "second"] {
        let (out, collected) = Responder::collector();
        agent.prompt(in_session(p, Some("s")), out).await.unwrap();
        if p == "second" {
            let text = collected.text();
            assert!(text.contains("You said: \"second\""), "{text}");
            assert!(
                text.contains("Earlier in this conversation you said: \"first\""),
                "{text}"
            );
        }
    }
}

#[tokio::test]
async fn offline_completion_has_usage_and_reason() {
    let c = nap_llm::complete(
        &Offline::new(),
        ChatRequest::new(vec![Message::user("one two three")]),
    )
    .await
    .unwrap();
    assert_eq!(c.finish_reason, FinishReason::Stop);
    assert_eq!(c.usage.input_tokens, 3);
    assert!(c.usage.output_tokens > 3);
    assert_eq!(c.model, "offline");
}

#[tokio::test]
async fn from_env_serves_a_prompt() {
    // The test environment may set NAP_LLM; only run the offline path when it does not.
    if std::env::var("NAP_LLM").is_ok() {
        return;
    }
    let agent = LlmAgent::from_env().unwrap();
    assert_eq!(agent.llm().model(), "offline");
    let (out, collected) = Responder::collector();
    agent.prompt(Request::text("hello"), out).await.unwrap();
    assert!(collected.text().contains("offline model"));
}

#[tokio::test]
async fn the_offline_model_remembers_per_caller() {
    // The offline model quotes the conversation's earlier prompt, so the
    // reply shows whose memory it was given.
    let agent = LlmAgent::builder(Offline::new()).build();
    let (ada, bob) = (nkeys::KeyPair::new_user(), nkeys::KeyPair::new_user());
    let ask = |request: Request| {
        let agent = agent.clone();
        async move {
            let (out, collected) = Responder::collector();
            agent.prompt(request, out).await.unwrap();
            collected.text()
        }
    };
    ask(Request::text("I am Ada").with_sender(verified(&ada))).await;
    ask(Request::text("I am Bob").with_sender(verified(&bob))).await;
    let ada_again = ask(Request::text("who?").with_sender(verified(&ada))).await;
    assert!(
        ada_again.contains("Earlier in this conversation you said: \"I am Ada\""),
        "{ada_again}"
    );
    assert!(!ada_again.contains("Bob"), "{ada_again}");
    let bob_again = ask(Request::text("who?").with_sender(verified(&bob))).await;
    assert!(bob_again.contains("\"I am Bob\""), "{bob_again}");
    assert!(!bob_again.contains("Ada"), "{bob_again}");
    // No sender, no field: nothing remembered, nothing kept.
    let anonymous = ask(Request::text("who?")).await;
    assert!(!anonymous.contains("Earlier"), "{anonymous}");
    let anonymous = ask(Request::text("again?")).await;
    assert!(!anonymous.contains("Earlier"), "{anonymous}");
    // The explicit field, without a sender, names a conversation.
    ask(in_session("I am Cy", Some("c"))).await;
    let cy = ask(in_session("who?", Some("c"))).await;
    assert!(cy.contains("\"I am Cy\""), "{cy}");
    assert!(!cy.contains("Ada") && !cy.contains("Bob"), "{cy}");
}
