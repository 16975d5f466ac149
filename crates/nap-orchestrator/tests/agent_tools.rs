//! The agent tools (synadia-agents' agent-tools contract) over real agents
//! on a real nats-server: definitions against the Python SDK's copy,
//! results against the contract's result schemas, every call state,
//! questions, cancelling, the limits, refusals and scopes.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use nap_agent::echo::EchoAgent;
use nap_agent::{AgentError, Request, Responder, agent_fn};
use nap_orchestrator::agent_tools::{AgentTools, AgentToolsError};
use nap_proto::Attachment;
use serde_json::{Value, json};
use support::{Bus, within};
use tokio::sync::{Semaphore, mpsc};

const ECHO: &str = "agents.prompt.echo.t.main";
const GATE: &str = "agents.prompt.gate.t.main";
const FAIL: &str = "agents.prompt.fail.t.main";
const TWO: &str = "agents.prompt.two.t.main";
const FILES: &str = "agents.prompt.files.t.main";

/// The test agents and what they report.
struct World {
    bus: Bus,
    _agents: Vec<nap_nats::RunningAgent>,
    /// Lets one `gate` prompt finish per permit.
    gate: Arc<Semaphore>,
    /// The answers the `gate` agent's questions got.
    answers: mpsc::UnboundedReceiver<String>,
}

/// Serves the test agents, all of owner `t`, name `main`:
/// - `echo`: nap's `EchoAgent` (`ask: Q` asks Q);
/// - `gate`: sends `partial`, then waits for a permit and replies `done`;
///   `gate ask` first asks `proceed?` and reports the answer;
/// - `fail`: sends `partial`, then fails with a `500`;
/// - `two`: asks `first?` and `second?` at once and replies both answers;
/// - `files`: replies with a 5-byte file `out.txt`.
async fn world() -> World {
    let bus = Bus::start().await;
    let gate = Arc::new(Semaphore::new(0));
    let (tx, answers) = mpsc::unbounded_channel();
    let mut agents = vec![bus.serve("echo", "t", "main", EchoAgent::default()).await];
    let g = gate.clone();
    agents.push(
        bus.serve(
            "gate",
            "t",
            "main",
            agent_fn(move |req: Request, out: Responder| {
                let g = g.clone();
                let tx = tx.clone();
                async move {
                    out.text("partial").await?;
                    if req.prompt() == "gate ask" {
                        let answer = out.ask("proceed?", Duration::from_secs(60)).await?;
                        let _ = tx.send(answer.prompt);
                    }
                    g.acquire().await.unwrap().forget();
                    out.text(" done").await?;
                    Ok(())
                }
            }),
        )
        .await,
    );
    agents.push(
        bus.serve(
            "fail",
            "t",
            "main",
            agent_fn(|_req: Request, out: Responder| async move {
                out.text("partial").await?;
                Err(AgentError::internal("it broke"))
            }),
        )
        .await,
    );
    agents.push(
        bus.serve(
            "two",
            "t",
            "main",
            agent_fn(|_req: Request, out: Responder| async move {
                let (a, b) = tokio::join!(
                    out.ask("first?", Duration::from_secs(60)),
                    out.ask("second?", Duration::from_secs(60))
                );
                out.text(format!("{} {}", a?.prompt, b?.prompt)).await?;
                Ok(())
            }),
        )
        .await,
    );
    agents.push(
        bus.serve(
            "files",
            "t",
            "main",
            agent_fn(|_req: Request, out: Responder| async move {
                out.response("here", vec![Attachment::new("out.txt", b"hello".to_vec())])
                    .await?;
                Ok(())
            }),
        )
        .await,
    );
    World {
        bus,
        _agents: agents,
        gate,
        answers,
    }
}

impl World {
    async fn tools(&self) -> AgentTools {
        AgentTools::new(self.bus.client().await).unwrap()
    }
}

fn fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/agent-tools")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Validates `result` against the contract's schema of `tool`'s result.
fn check(tool: &str, result: &Value) {
    let prompt = fixture("prompt_agent.result.json");
    let schema = match tool {
        "discover_agents" => fixture("discover_agents.result.json"),
        "cancel_agent" => fixture("cancel_agent.result.json"),
        "list_agent_calls" => fixture("list_agent_calls.result.json"),
        _ => prompt.clone(),
    };
    let registry = jsonschema::Registry::new()
        .add("https://nap.test/prompt_agent.result.json", prompt.clone())
        .unwrap()
        .prepare()
        .unwrap();
    let mut schema = schema;
    schema["$id"] = json!(format!("https://nap.test/{tool}.result.json"));
    let validator = jsonschema::draft202012::options()
        .should_validate_formats(true)
        .with_registry(&registry)
        .build(&schema)
        .unwrap();
    let errors: Vec<String> = validator
        .iter_errors(result)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{tool} result {result} breaks the schema: {errors:?}"
    );
    // Only fields the contract defines.
    if !matches!(
        tool,
        "discover_agents" | "cancel_agent" | "list_agent_calls"
    ) {
        let known = prompt["properties"].as_object().unwrap();
        for key in result.as_object().unwrap().keys() {
            assert!(known.contains_key(key), "{tool}: unknown field {key}");
        }
    }
}

/// Runs a tool and checks its result against the schema.
async fn call(tools: &AgentTools, name: &str, args: Value) -> Value {
    let result = within(30, name, tools.call(name, args)).await;
    check(name, &result);
    result
}

fn is_refusal(v: &Value) -> bool {
    v.get("error").is_some() && v.get("call_id").is_none() && v.get("state").is_none()
}

// ---------------------------------------------------------------- definitions

/// The Python SDK's tools directory in the interop venv.
fn python_tools_dir() -> PathBuf {
    let lib = nap_testkit::tools_dir().join("venv").join("lib");
    let entries = std::fs::read_dir(&lib).unwrap_or_else(|e| {
        panic!(
            "no interop venv at {} ({e}): run `cargo xtask setup` first",
            lib.display()
        )
    });
    for entry in entries {
        let dir = entry
            .unwrap()
            .path()
            .join("site-packages/synadia_ai/agents/tools");
        if dir.join("definitions.json").is_file() {
            return dir;
        }
    }
    panic!(
        "the venv under {} has no synadia-ai-agents tools: run `cargo xtask setup`",
        lib.display()
    );
}

/// A schema without its descriptions.
fn strip(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| k.as_str() != "description")
                .map(|(k, v)| (k.clone(), strip(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip).collect()),
        other => other.clone(),
    }
}

#[tokio::test]
async fn the_definitions_match_the_python_sdk() {
    let dir = python_tools_dir();
    let python: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("definitions.json")).unwrap())
            .unwrap();
    let blocking: serde_json::Map<String, Value> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("blocking.json")).unwrap()).unwrap();
    let bus = Bus::start().await;
    let tools = AgentTools::new(bus.client().await).unwrap();
    let ours = tools.definitions();
    let names: Vec<&str> = ours.iter().map(|d| d.name.as_str()).collect();
    let theirs: Vec<&str> = python.iter().map(|d| d["name"].as_str().unwrap()).collect();
    assert_eq!(names, theirs);
    for (def, py) in ours.iter().zip(&python) {
        assert_eq!(
            strip(&def.parameters),
            strip(&py["parameters"]),
            "parameters of {}",
            def.name
        );
        assert!(!def.description.is_empty());
        assert_ne!(def.description, py["description"].as_str().unwrap());
        // Every parameter is described.
        for (param, schema) in def.parameters["properties"].as_object().unwrap() {
            assert!(schema["description"].is_string(), "{}.{param}", def.name);
        }
    }

    // The blocking-only derivation: no `wait`, and a new description
    // exactly where the Python SDK has one.
    let reduced = AgentTools::builder(bus.client().await)
        .tools(["discover_agents", "prompt_agent", "answer_agent"])
        .build()
        .unwrap();
    let reduced_defs = reduced.definitions();
    let names: Vec<&str> = reduced_defs.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["discover_agents", "prompt_agent", "answer_agent"]);
    for def in &reduced_defs {
        let full = ours.iter().find(|d| d.name == def.name).unwrap();
        let py = python.iter().find(|d| d["name"] == def.name).unwrap();
        let mut expected = strip(&py["parameters"]);
        expected["properties"]
            .as_object_mut()
            .unwrap()
            .remove("wait");
        assert_eq!(strip(&def.parameters), expected, "{}", def.name);
        assert_eq!(
            def.description != full.description,
            blocking.contains_key(&def.name),
            "blocking description of {}",
            def.name
        );
        assert!(!def.description.contains("wait_agent"), "{}", def.name);
    }
    assert!(blocking.keys().all(|k| names.contains(&k.as_str())));
}

#[tokio::test]
async fn senseless_tool_sets_are_refused_when_built() {
    let bus = Bus::start().await;
    let client = bus.client().await;
    let build = |tools: &[&str]| {
        AgentTools::builder(client.clone())
            .tools(tools.iter().copied())
            .build()
    };
    assert!(matches!(build(&[]), Err(AgentToolsError::NoTools)));
    assert!(matches!(
        build(&["wait_agent", "discover_agents"]),
        Err(AgentToolsError::NeedsPrompt(t)) if t == "wait_agent"
    ));
    assert!(matches!(
        build(&["prompt_agent"]),
        Err(AgentToolsError::NeedsAnswer)
    ));
    assert!(matches!(
        build(&["prompt_agent", "answer_agent", "shout"]),
        Err(AgentToolsError::UnknownTool(t)) if t == "shout"
    ));
    assert!(build(&["discover_agents"]).is_ok());
    let tools = build(&["answer_agent", "prompt_agent"]).unwrap();
    assert_eq!(tools.offered(), ["prompt_agent", "answer_agent"]);
    // A tool not offered is refused in words.
    let r = tools.call("wait_agent", json!({"call_ids": ["x"]})).await;
    assert!(is_refusal(&r), "{r}");
    assert!(r["error"].as_str().unwrap().contains("prompt_agent"));
}

// ---------------------------------------------------------------- discovery

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_lists_one_entry_per_address_without_its_own() {
    let w = world().await;
    let _second = w.bus.serve("echo", "t", "main", EchoAgent::default()).await;
    let tools = AgentTools::builder(w.bus.client().await)
        .self_address(GATE)
        .build()
        .unwrap();
    let r = call(&tools, "discover_agents", json!({})).await;
    let agents = r["agents"].as_array().unwrap();
    let addresses: Vec<&str> = agents
        .iter()
        .map(|a| a["address"].as_str().unwrap())
        .collect();
    assert!(!addresses.contains(&GATE), "{addresses:?}");
    for a in [ECHO, FAIL, TWO, FILES] {
        assert_eq!(addresses.iter().filter(|x| **x == a).count(), 1, "{a}");
    }
    let echo = agents.iter().find(|a| a["address"] == ECHO).unwrap();
    assert_eq!(echo["instances"], 2);
    assert_eq!(echo["agent"], "echo");
    assert_eq!(echo["owner"], "t");
    assert_eq!(echo["name"], "main");
    assert_eq!(echo["identity"], Value::Null);
    assert_eq!(echo["identity_verified"], false);

    let r = call(&tools, "discover_agents", json!({"agent": "fail"})).await;
    assert_eq!(r["agents"].as_array().unwrap().len(), 1);
    assert_eq!(r["agents"][0]["address"], FAIL);
    let r = call(&tools, "discover_agents", json!({"agent": "nobody"})).await;
    assert_eq!(r["agents"], json!([]));
    // A refusal (the discovery result schema has no room for one).
    let r = tools.call("discover_agents", json!({"agent": 3})).await;
    assert!(is_refusal(&r), "{r}");
}

// ---------------------------------------------------------------- blocking calls

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocking_prompt_completes_and_is_listed() {
    let w = world().await;
    let tools = w.tools().await;
    let r = call(
        &tools,
        "prompt_agent",
        json!({"address": ECHO, "prompt": "hello there", "label": "greeting"}),
    )
    .await;
    assert_eq!(r["state"], "completed", "{r}");
    assert_eq!(r["reply"], "hello there");
    assert_eq!(r["label"], "greeting");
    assert_eq!(r["attachments"], json!([]));
    assert!(r.get("open_calls").is_none());
    let id = r["call_id"].as_str().unwrap();

    // Arguments as JSON text work too.
    let text = json!({"address": ECHO, "prompt": "again"}).to_string();
    let r2 = call(&tools, "prompt_agent", Value::String(text)).await;
    assert_eq!(r2["reply"], "again");

    let list = call(&tools, "list_agent_calls", json!({})).await;
    let calls = list["calls"].as_array().unwrap();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0]["call_id"], id);
    assert_eq!(calls[0]["label"], "greeting");
    assert_eq!(calls[0]["address"], ECHO);
    assert_eq!(calls[0]["state"], "completed");
    assert!(calls[0]["ended_at"].is_string());
    assert!(calls[1].get("label").is_none());

    // A finished call's result is the same every time.
    let again = call(&tools, "wait_agent", json!({"call_ids": [id]})).await;
    assert_eq!(again["reply"], "hello there");
    assert_eq!(again["remaining"], json!([]));
    let again2 = call(&tools, "wait_agent", json!({"call_ids": [id]})).await;
    assert_eq!(again, again2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_call_carries_its_error_and_partial_reply() {
    let w = world().await;
    let tools = w.tools().await;
    let r = call(
        &tools,
        "prompt_agent",
        json!({"address": FAIL, "prompt": "x"}),
    )
    .await;
    assert_eq!(r["state"], "failed", "{r}");
    assert!(r["error"].as_str().unwrap().contains("it broke"), "{r}");
    assert_eq!(r["partial_reply"], "partial");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_past_its_runtime_limit_expires() {
    let w = world().await;
    let tools = AgentTools::builder(w.bus.client().await)
        .runtime_limit(Duration::from_millis(300))
        .build()
        .unwrap();
    let r = call(
        &tools,
        "prompt_agent",
        json!({"address": GATE, "prompt": "x"}),
    )
    .await;
    assert_eq!(r["state"], "expired", "{r}");
    assert!(
        r["error"].as_str().unwrap().contains("runtime limit"),
        "{r}"
    );
    assert_eq!(r["partial_reply"], "partial");
    let list = call(&tools, "list_agent_calls", json!({})).await;
    assert_eq!(list["calls"][0]["state"], "expired");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_blocking_tool_call_cancels_its_call() {
    let mut w = world().await;
    let tools = w.tools().await;
    let r = call(
        &tools,
        "prompt_agent",
        json!({"address": GATE, "prompt": "gate ask"}),
    )
    .await;
    assert_eq!(r["state"], "input_required", "{r}");
    // Abort a blocking answer_agent while the gate holds the reply: the
    // call is cancelled (the contract's 3.10).
    let id = r["call_id"].as_str().unwrap().to_owned();
    let aborted = tokio::time::timeout(
        Duration::from_millis(300),
        tools.call("answer_agent", json!({"call_id": id, "answer": "yes"})),
    )
    .await;
    assert!(aborted.is_err(), "the gate is held, so the answer waits");
    assert_eq!(within(10, "answer", w.answers.recv()).await.unwrap(), "yes");
    let list = call(&tools, "list_agent_calls", json!({})).await;
    assert_eq!(list["calls"][0]["state"], "cancelled", "{list}");
    assert!(list.get("open_calls").is_none());
    w.gate.add_permits(1);
}

// ---------------------------------------------------------------- questions

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_question_reaches_the_model_and_is_answered_with_answer_agent() {
    let w = world().await;
    let tools = w.tools().await;
    let r = call(
        &tools,
        "prompt_agent",
        json!({"address": ECHO, "prompt": "ask: favourite colour?"}),
    )
    .await;
    assert_eq!(r["state"], "input_required", "{r}");
    assert_eq!(r["question"], "favourite colour?");
    assert_eq!(r["attachments"], json!([]));
    assert_eq!(r["open_calls"], 1);
    assert!(
        r["open_calls_note"]
            .as_str()
            .unwrap()
            .contains("wait_agent")
    );
    let id = r["call_id"].as_str().unwrap();
    let list = call(&tools, "list_agent_calls", json!({})).await;
    assert_eq!(list["calls"][0]["state"], "input_required");
    assert!(list["calls"][0].get("ended_at").is_none());

    let r = call(
        &tools,
        "answer_agent",
        json!({"call_id": id, "answer": "blue"}),
    )
    .await;
    assert_eq!(r["state"], "completed", "{r}");
    assert_eq!(r["reply"], "you answered: blue");
    // No question is open any more.
    let r = call(
        &tools,
        "answer_agent",
        json!({"call_id": id, "answer": "x"}),
    )
    .await;
    assert!(is_refusal(&r), "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_questions_come_one_at_a_time_oldest_first() {
    let w = world().await;
    let tools = w.tools().await;
    let r = call(
        &tools,
        "prompt_agent",
        json!({"address": TWO, "prompt": "go"}),
    )
    .await;
    assert_eq!(r["state"], "input_required", "{r}");
    let id = r["call_id"].as_str().unwrap();
    let first = r["question"].as_str().unwrap().to_owned();
    assert!(first == "first?" || first == "second?");
    let r = call(
        &tools,
        "answer_agent",
        json!({"call_id": id, "answer": "A"}),
    )
    .await;
    assert_eq!(r["state"], "input_required", "{r}");
    let second = r["question"].as_str().unwrap().to_owned();
    assert_ne!(first, second);
    let r = call(
        &tools,
        "answer_agent",
        json!({"call_id": id, "answer": "B"}),
    )
    .await;
    assert_eq!(r["state"], "completed", "{r}");
    let expected = if first == "first?" { "A B" } else { "B A" };
    assert_eq!(r["reply"], expected);
}

// ---------------------------------------------------------------- detached calls

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detached_calls_are_collected_with_wait_agent() {
    let w = world().await;
    let tools = w.tools().await;
    let a = call(
        &tools,
        "prompt_agent",
        json!({"address": GATE, "prompt": "x", "wait": false, "label": "a"}),
    )
    .await;
    assert_eq!(a["state"], "running", "{a}");
    assert_eq!(a["open_calls"], 1);
    let b = call(
        &tools,
        "prompt_agent",
        json!({"address": ECHO, "prompt": "quick", "wait": false}),
    )
    .await;
    let (a, b) = (
        a["call_id"].as_str().unwrap().to_owned(),
        b["call_id"].as_str().unwrap().to_owned(),
    );
    // The echo finishes first; the gate stays open.
    let r = call(&tools, "wait_agent", json!({"call_ids": [&a, &b]})).await;
    assert_eq!(r["call_id"], b.as_str(), "{r}");
    assert_eq!(r["state"], "completed");
    assert_eq!(r["reply"], "quick");
    assert_eq!(r["remaining"], json!([&a]));
    assert_eq!(r["open_calls"], 1);

    // Polling the gate: still running.
    let r = call(
        &tools,
        "wait_agent",
        json!({"call_ids": [&a], "timeout_ms": 0}),
    )
    .await;
    assert_eq!(
        r,
        json!({"state": "running", "call_ids": [&a], "open_calls": 1, "open_calls_note": r["open_calls_note"]})
    );

    w.gate.add_permits(1);
    let r = call(&tools, "wait_agent", json!({"call_ids": [&a]})).await;
    assert_eq!(r["state"], "completed", "{r}");
    assert_eq!(r["reply"], "partial done");
    assert_eq!(r["label"], "a");
    assert!(r.get("open_calls").is_none());

    // Unknown ids are refused; bad arguments too.
    let r = call(&tools, "wait_agent", json!({"call_ids": [&a, "nope"]})).await;
    assert!(is_refusal(&r), "{r}");
    let r = call(&tools, "wait_agent", json!({"call_ids": []})).await;
    assert!(is_refusal(&r), "{r}");
    let r = call(
        &tools,
        "wait_agent",
        json!({"call_ids": [&a], "timeout_ms": -1}),
    )
    .await;
    assert!(is_refusal(&r), "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_agent_timeout_is_capped_by_configuration() {
    let w = world().await;
    let tools = AgentTools::builder(w.bus.client().await)
        .max_wait_agent(Duration::from_millis(200))
        .build()
        .unwrap();
    let a = call(
        &tools,
        "prompt_agent",
        json!({"address": GATE, "prompt": "x", "wait": false}),
    )
    .await;
    let id = a["call_id"].as_str().unwrap();
    // An hour asked, the cap applies: `call` fails the test after 30 s.
    let r = call(
        &tools,
        "wait_agent",
        json!({"call_ids": [id], "timeout_ms": 3_600_000}),
    )
    .await;
    assert_eq!(r["state"], "running");
    assert_eq!(r["call_ids"], json!([id]));
    // No timeout given: the cap is the default.
    let r = call(&tools, "wait_agent", json!({"call_ids": [id]})).await;
    assert_eq!(r["state"], "running");
    assert!(r.get("call_id").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_detached_question_is_collected_and_answered_without_waiting() {
    let mut w = world().await;
    let tools = w.tools().await;
    let a = call(
        &tools,
        "prompt_agent",
        json!({"address": GATE, "prompt": "gate ask", "wait": false}),
    )
    .await;
    let id = a["call_id"].as_str().unwrap();
    let r = call(&tools, "wait_agent", json!({"call_ids": [id]})).await;
    assert_eq!(r["state"], "input_required", "{r}");
    assert_eq!(r["question"], "proceed?");
    // Detached: answer_agent returns at once.
    let r = call(
        &tools,
        "answer_agent",
        json!({"call_id": id, "answer": "yes"}),
    )
    .await;
    assert_eq!(r["state"], "running", "{r}");
    assert_eq!(within(10, "answer", w.answers.recv()).await.unwrap(), "yes");
    w.gate.add_permits(1);
    let r = call(&tools, "wait_agent", json!({"call_ids": [id]})).await;
    assert_eq!(r["state"], "completed", "{r}");
}

// ---------------------------------------------------------------- cancel

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_a_call_refuses_its_question_and_keeps_finished_results() {
    let mut w = world().await;
    let tools = w.tools().await;
    let r = call(
        &tools,
        "prompt_agent",
        json!({"address": GATE, "prompt": "gate ask"}),
    )
    .await;
    assert_eq!(r["state"], "input_required", "{r}");
    let open = r["call_id"].as_str().unwrap().to_owned();
    let done = call(
        &tools,
        "prompt_agent",
        json!({"address": ECHO, "prompt": "hi"}),
    )
    .await;
    let done = done["call_id"].as_str().unwrap().to_owned();

    let r = call(
        &tools,
        "cancel_agent",
        json!({"call_ids": [&open, &done, "nope"]}),
    )
    .await;
    let calls = r["calls"].as_array().unwrap();
    assert_eq!(calls[0]["state"], "cancelled", "{r}");
    assert_eq!(calls[0]["partial_reply"], "partial");
    assert_eq!(calls[1]["state"], "completed");
    assert_eq!(calls[1]["reply"], "hi");
    assert_eq!(calls[2]["call_id"], "nope");
    assert!(calls[2]["error"].is_string());
    assert!(r.get("open_calls").is_none());

    // The question was refused: the asking agent got a `no`.
    let answer = within(10, "refusal", w.answers.recv()).await.unwrap();
    assert!(answer.starts_with("no"), "{answer}");
    // The agent goes on, but whatever it sends is discarded.
    w.gate.add_permits(1);
    let again = call(&tools, "cancel_agent", json!({"call_ids": [&open]})).await;
    assert_eq!(again["calls"][0], calls[0]);
    let r = call(
        &tools,
        "answer_agent",
        json!({"call_id": &open, "answer": "x"}),
    )
    .await;
    assert!(is_refusal(&r), "{r}");
}

// ---------------------------------------------------------------- refusals

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_errors_alone() {
    let w = world().await;
    let client = w.bus.client().await;
    let tools = AgentTools::builder(client.clone())
        .self_address(ECHO)
        .build()
        .unwrap();
    for (name, args) in [
        ("prompt_agent", json!({"address": ECHO, "prompt": "me"})),
        (
            "prompt_agent",
            json!({"address": "agents.prompt.no.body.here", "prompt": "x"}),
        ),
        (
            "prompt_agent",
            json!({"address": "elsewhere", "prompt": "x"}),
        ),
        ("prompt_agent", json!({"address": GATE})),
        ("prompt_agent", json!({"address": GATE, "prompt": ""})),
        (
            "prompt_agent",
            json!({"address": GATE, "prompt": "x", "colour": "red"}),
        ),
        (
            "prompt_agent",
            json!({"address": GATE, "prompt": "x", "wait": "no"}),
        ),
        ("prompt_agent", json!("not json")),
        ("prompt_agent", json!([1, 2])),
        ("answer_agent", json!({"call_id": "nope", "answer": "x"})),
        ("wait_agent", json!({"call_ids": ["nope"]})),
        ("list_agent_calls", json!({"x": 1})),
        ("shout", json!({})),
    ] {
        let r = within(30, name, tools.call(name, args.clone())).await;
        assert!(is_refusal(&r), "{name} {args}: {r}");
        if name != "shout" && name != "list_agent_calls" {
            check(name, &r);
        }
    }
    let r = tools
        .call("prompt_agent", json!({"address": ECHO, "prompt": "me"}))
        .await;
    assert!(r["error"].as_str().unwrap().contains("own address"), "{r}");
    // Nothing was tracked.
    let list = call(&tools, "list_agent_calls", json!(null)).await;
    assert_eq!(list["calls"], json!([]));

    // Blocking-only: `wait: false` is refused.
    let reduced = AgentTools::builder(client)
        .tools(["discover_agents", "prompt_agent", "answer_agent"])
        .build()
        .unwrap();
    let r = reduced
        .call(
            "prompt_agent",
            json!({"address": GATE, "prompt": "x", "wait": false}),
        )
        .await;
    assert!(is_refusal(&r), "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attachments_are_sent_from_the_roots_only_and_returned_files_saved() {
    let w = world().await;
    let root = std::env::temp_dir().join(format!("nap-at-root-{}", std::process::id()));
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("note.txt"), "12345").unwrap();
    let outside = std::env::temp_dir().join(format!("nap-at-out-{}.txt", std::process::id()));
    std::fs::write(&outside, "secret").unwrap();
    let tools = AgentTools::builder(w.bus.client().await)
        .attachment_root(&root)
        .build()
        .unwrap();
    let r = call(
        &tools,
        "prompt_agent",
        json!({"address": ECHO, "prompt": "files", "attachments": [root.join("note.txt")]}),
    )
    .await;
    assert_eq!(r["state"], "completed", "{r}");
    assert!(
        r["reply"].as_str().unwrap().contains("note.txt (5 bytes)"),
        "{r}"
    );
    let r = call(
        &tools,
        "prompt_agent",
        json!({"address": ECHO, "prompt": "files", "attachments": [outside]}),
    )
    .await;
    assert!(is_refusal(&r), "{r}");

    // Refused before sending: an agent that takes no attachments, and a
    // message over the target's max_payload (§5.4).
    let _closed = nap_nats::AgentService::builder("closed", "t", "main")
        .attachments_ok(false)
        .max_payload(nap_proto::ByteSize::new(2048))
        .start(w.bus.nats.clone(), EchoAgent::default())
        .await
        .unwrap();
    let closed = "agents.prompt.closed.t.main";
    let r = call(
        &tools,
        "prompt_agent",
        json!({"address": closed, "prompt": "files", "attachments": [root.join("note.txt")]}),
    )
    .await;
    assert!(is_refusal(&r), "{r}");
    let r = call(
        &tools,
        "prompt_agent",
        json!({"address": closed, "prompt": "x".repeat(4096)}),
    )
    .await;
    assert!(is_refusal(&r), "{r}");
    let list = call(&tools, "list_agent_calls", json!({})).await;
    assert_eq!(
        list["calls"].as_array().unwrap().len(),
        1,
        "nothing tracked: {list}"
    );

    let r = call(
        &tools,
        "prompt_agent",
        json!({"address": FILES, "prompt": "x"}),
    )
    .await;
    assert_eq!(r["state"], "completed", "{r}");
    let file = &r["attachments"][0];
    assert_eq!(file["filename"], "out.txt");
    assert_eq!(file["size_bytes"], 5);
    let path = PathBuf::from(file["path"].as_str().unwrap());
    assert!(path.starts_with(tools.staging_dir()));
    assert_eq!(std::fs::read(&path).unwrap(), b"hello");
    // A returned file may be sent on: the staging directory is a root.
    let r = call(
        &tools,
        "prompt_agent",
        json!({"address": ECHO, "prompt": "fwd", "attachments": [path]}),
    )
    .await;
    assert_eq!(r["state"], "completed", "{r}");

    // Over the total per call: listed, not saved.
    let small = AgentTools::builder(w.bus.client().await)
        .max_saved_bytes_per_call(2)
        .build()
        .unwrap();
    let r = call(
        &small,
        "prompt_agent",
        json!({"address": FILES, "prompt": "x"}),
    )
    .await;
    assert_eq!(r["attachments"][0]["path"], Value::Null, "{r}");
    assert_eq!(r["attachments"][0]["skipped"], "over_limit");
    let staging = small.staging_dir().to_owned();
    drop(small);
    assert!(
        !staging.exists(),
        "the default staging directory is removed"
    );
    let _ = std::fs::remove_dir_all(&root);
    let _ = std::fs::remove_file(&outside);
}

// ---------------------------------------------------------------- limits and scopes

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_scope_drops_the_oldest_finished_call_and_refuses_when_all_are_open() {
    let w = world().await;
    let tools = AgentTools::builder(w.bus.client().await)
        .max_calls(2)
        .build()
        .unwrap();
    let start = |address: &'static str, wait: bool| {
        let tools = tools.clone();
        async move {
            let r = call(
                &tools,
                "prompt_agent",
                json!({"address": address, "prompt": "x", "wait": wait}),
            )
            .await;
            r["call_id"].as_str().map(str::to_owned).unwrap_or_else(|| {
                assert!(is_refusal(&r), "{r}");
                String::new()
            })
        }
    };
    let a = start(ECHO, true).await;
    let b = start(GATE, false).await;
    let c = start(ECHO, true).await;
    let ids = |list: &Value| -> Vec<String> {
        list["calls"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["call_id"].as_str().unwrap().to_owned())
            .collect()
    };
    let list = call(&tools, "list_agent_calls", json!({})).await;
    assert_eq!(ids(&list), [b.clone(), c.clone()], "{a} was dropped");
    let d = start(GATE, false).await;
    let list = call(&tools, "list_agent_calls", json!({})).await;
    assert_eq!(ids(&list), [b.clone(), d.clone()]);
    assert_eq!(list["open_calls"], 2);
    let e = start(ECHO, true).await;
    assert!(e.is_empty(), "refused: every tracked call is open");
    let r = call(&tools, "wait_agent", json!({"call_ids": [&a]})).await;
    assert!(is_refusal(&r), "a dropped call is unknown: {r}");
    w.gate.add_permits(2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompts_started_at_once_never_overshoot_the_limit_nor_reach_the_agent() {
    let w = world().await;
    // An agent that counts the prompts it receives and holds them.
    let received = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = received.clone();
    let _held = w
        .bus
        .serve(
            "held",
            "t",
            "main",
            agent_fn(move |_req: Request, out: Responder| {
                let counter = counter.clone();
                async move {
                    counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    out.text("holding").await?;
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    Ok(())
                }
            }),
        )
        .await;
    let tools = AgentTools::builder(w.bus.client().await)
        .max_calls(2)
        .build()
        .unwrap();
    let results = within(
        30,
        "four prompts at once",
        futures::future::join_all((0..4).map(|i| {
            tools.call(
                "prompt_agent",
                json!({"address": "agents.prompt.held.t.main", "prompt": format!("p{i}"), "wait": false}),
            )
        })),
    )
    .await;
    let started = results.iter().filter(|r| r["state"] == "running").count();
    let refused = results.iter().filter(|r| is_refusal(r)).count();
    assert_eq!((started, refused), (2, 2), "{results:#?}");
    // Give any stray prompt time to arrive: none may.
    let list = call(&tools, "list_agent_calls", json!({})).await;
    assert_eq!(list["calls"].as_array().unwrap().len(), 2, "{list}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        received.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "a refused call must not have been sent"
    );
    tools.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_outside_a_served_prompt_are_reported_to_on_settled() {
    let w = world().await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let tools = AgentTools::builder(w.bus.client().await)
        .on_settled(move |result, waited| {
            let _ = tx.send((result.clone(), waited));
        })
        .build()
        .unwrap();
    let r = call(
        &tools,
        "prompt_agent",
        json!({"address": ECHO, "prompt": "a"}),
    )
    .await;
    let (settled, waited) = within(10, "settled", rx.recv()).await.unwrap();
    assert_eq!(settled["call_id"], r["call_id"]);
    assert_eq!(settled["reply"], "a");
    assert!(waited, "the blocking call waited for it");
    let d = call(
        &tools,
        "prompt_agent",
        json!({"address": ECHO, "prompt": "b", "wait": false}),
    )
    .await;
    let (settled, waited) = within(10, "settled", rx.recv()).await.unwrap();
    assert_eq!(settled["call_id"], d["call_id"]);
    assert_eq!(settled["state"], "completed");
    assert!(!waited);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_served_prompt_scope_keeps_its_calls_and_ends_them_with_it() {
    let mut w = world().await;
    let tools = w.tools().await;
    let scope = tools.scope(None);
    let r = scope
        .run(async {
            call(
                &tools,
                "prompt_agent",
                json!({"address": GATE, "prompt": "gate ask", "wait": false}),
            )
            .await
        })
        .await;
    // Detached: running, unless the question already came in.
    assert!(
        r["state"] == "running" || r["state"] == "input_required",
        "{r}"
    );
    assert!(
        r["open_calls_note"]
            .as_str()
            .unwrap()
            .contains("prompt you are answering"),
        "{r}"
    );
    let id = r["call_id"].as_str().unwrap().to_owned();
    let r = scope.call("wait_agent", json!({"call_ids": [&id]})).await;
    assert_eq!(r["state"], "input_required", "{r}");
    // The shared scope does not see it.
    let list = call(&tools, "list_agent_calls", json!({})).await;
    assert_eq!(list["calls"], json!([]));
    let r = call(&tools, "wait_agent", json!({"call_ids": [&id]})).await;
    assert!(is_refusal(&r), "{r}");
    // The prompt ends: its open question is refused.
    scope.close();
    let answer = within(10, "refusal", w.answers.recv()).await.unwrap();
    assert!(answer.starts_with("no"), "{answer}");
    w.gate.add_permits(1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_interceptor_opens_a_scope_per_served_prompt() {
    let w = world().await;
    let tools = w.tools().await;
    let inner = tools.clone();
    // A front agent whose handler prompts the gate detached and reports
    // what it saw; its scope closes when the handler returns.
    let front = nap_nats::AgentService::builder("front", "t", "main")
        .interceptor(tools.request_interceptor())
        .start(
            w.bus.nats.clone(),
            agent_fn(move |_req: Request, out: Responder| {
                let tools = inner.clone();
                async move {
                    let r = tools
                        .call(
                            "prompt_agent",
                            json!({"address": GATE, "prompt": "x", "wait": false}),
                        )
                        .await;
                    let list = tools.call("list_agent_calls", json!({})).await;
                    out.text(json!({"started": r, "list": list}).to_string())
                        .await?;
                    Ok(())
                }
            }),
        )
        .await
        .unwrap();
    let r = call(
        &tools,
        "prompt_agent",
        json!({"address": "agents.prompt.front.t.main", "prompt": "go"}),
    )
    .await;
    assert_eq!(r["state"], "completed", "{r}");
    let seen: Value = serde_json::from_str(r["reply"].as_str().unwrap()).unwrap();
    assert_eq!(seen["started"]["state"], "running", "{seen}");
    assert!(
        seen["started"]["open_calls_note"]
            .as_str()
            .unwrap()
            .contains("prompt you are answering"),
        "{seen}"
    );
    let calls = seen["list"]["calls"].as_array().unwrap();
    assert_eq!(calls.len(), 1, "only the served prompt's own call: {seen}");
    assert_eq!(calls[0]["address"], GATE);
    // The shared scope holds only the call to the front agent.
    let list = call(&tools, "list_agent_calls", json!({})).await;
    assert_eq!(list["calls"].as_array().unwrap().len(), 1);
    assert_eq!(list["calls"][0]["address"], "agents.prompt.front.t.main");
    w.gate.add_permits(1);
    front.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tools_work_as_nap_llm_tools() {
    let w = world().await;
    let tools = w.tools().await;
    let llm = tools.llm_tools();
    let defs = tools.definitions();
    assert_eq!(llm.len(), 6);
    for (tool, def) in llm.iter().zip(&defs) {
        assert_eq!(tool.spec(), *def);
    }
    let prompt = llm.iter().find(|t| t.name() == "prompt_agent").unwrap();
    let text = prompt
        .call(json!({"address": ECHO, "prompt": "via llm"}))
        .await
        .unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["reply"], "via llm");
    // A refusal is a result the model reads, not a tool error.
    let text = prompt.call(json!({"address": ECHO})).await.unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    assert!(is_refusal(&v));
}

// ---------------------------------------------------------------- the caller guard

async fn connect_with(
    server: &nap_testkit::NatsServer,
    key: &nap_nats::identity::SenderKey,
) -> async_nats::Client {
    key.apply(nap_nats::connect_options())
        .unwrap()
        .connect(server.url())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_served_prompt_cannot_prompt_back_its_verified_sender() {
    use nap_nats::identity::SenderKey;
    let (b, f) = (nkeys::KeyPair::new_user(), nkeys::KeyPair::new_user());
    // The current server tells a connection who it is (§13.4).
    let binary = nap_testkit::tools_nats_server(&nap_testkit::tools_dir());
    assert!(
        binary.exists(),
        "{} is missing: run `cargo xtask setup`, or set NAP_TOOLS_DIR",
        binary.display()
    );
    let server = nap_testkit::NatsServerBuilder::new()
        .binary(binary)
        .extra_config(format!(
            "authorization {{ users: [ {{nkey: {}}}, {{nkey: {}}} ] }}",
            b.public_key(),
            f.public_key()
        ))
        .start()
        .unwrap();
    let b_key = SenderKey::from_seed(&b.seed().unwrap()).unwrap();
    let f_key = SenderKey::from_seed(&f.seed().unwrap()).unwrap();
    // B: an echo agent with a verified registration, and a signing caller.
    let b_nats = connect_with(&server, &b_key).await;
    let _b_agent = nap_nats::AgentService::builder("echo", "t", "b")
        .sender_key(b_key.clone())
        .start(b_nats.clone(), EchoAgent::default())
        .await
        .unwrap();
    let b_client = nap_nats::Client::builder(b_nats)
        .sender_key(b_key)
        .build()
        .await
        .unwrap();
    // F: served with the tools' interceptor; its handler prompts B.
    let f_nats = connect_with(&server, &f_key).await;
    let tools = AgentTools::new(nap_nats::Client::new(f_nats.clone()).await.unwrap()).unwrap();
    let inner = tools.clone();
    let _front = nap_nats::AgentService::builder("front", "t", "f")
        .interceptor(tools.request_interceptor())
        .start(
            f_nats,
            agent_fn(move |_req: Request, out: Responder| {
                let tools = inner.clone();
                async move {
                    let r = tools
                        .call(
                            "prompt_agent",
                            json!({"address": "agents.prompt.echo.t.b", "prompt": "hi"}),
                        )
                        .await;
                    out.text(r.to_string()).await?;
                    Ok(())
                }
            }),
        )
        .await
        .unwrap();

    // Outside a served prompt, F may prompt B, and discovery shows B's
    // verified identity.
    let r = call(&tools, "discover_agents", json!({"name": "b"})).await;
    assert_eq!(r["agents"][0]["identity_verified"], true, "{r}");
    let r = call(
        &tools,
        "prompt_agent",
        json!({"address": "agents.prompt.echo.t.b", "prompt": "hi"}),
    )
    .await;
    assert_eq!(r["reply"], "hi", "{r}");

    // B prompts F with a signed prompt: F's model may not prompt B back.
    let front = b_client
        .find(nap_proto::DiscoveryFilter {
            agent: Some("front".into()),
            ..nap_proto::DiscoveryFilter::any()
        })
        .await
        .unwrap();
    let text = within(30, "front", async {
        front.prompt("go").await.unwrap().text().await.unwrap()
    })
    .await;
    let seen: Value = serde_json::from_str(&text).unwrap();
    assert!(is_refusal(&seen), "{seen}");
    assert!(
        seen["error"].as_str().unwrap().contains("prompted you")
            || seen["error"].as_str().unwrap().contains("sent the prompt"),
        "{seen}"
    );
}

// ---------------------------------------------------------------- extensions

struct Tag {
    seen_tool_call_ids: Arc<std::sync::Mutex<Vec<Option<String>>>>,
}

#[async_trait::async_trait]
impl nap_orchestrator::agent_tools::Extension for Tag {
    async fn discovery_fields(
        &self,
        agent: &nap_nats::AgentHandle,
    ) -> serde_json::Map<String, Value> {
        let mut m = serde_json::Map::new();
        m.insert("team".into(), json!(format!("team-{}", agent.agent())));
        m
    }

    async fn before_prompt(
        &self,
        ctx: &nap_orchestrator::agent_tools::PromptContext<'_>,
    ) -> nap_orchestrator::agent_tools::PromptRewrite {
        use nap_orchestrator::agent_tools::PromptRewrite;
        self.seen_tool_call_ids
            .lock()
            .unwrap()
            .push(ctx.tool_call_id.map(str::to_owned));
        if ctx.prompt.contains("forbidden") {
            return PromptRewrite::refuse("that prompt is not allowed");
        }
        PromptRewrite::prompt(ctx.prompt.to_uppercase()).with_field("trace", json!(ctx.call_id))
    }

    async fn after_reply(
        &self,
        ctx: &nap_orchestrator::agent_tools::ReplyContext<'_>,
    ) -> Result<serde_json::Map<String, Value>, nap_orchestrator::agent_tools::ExtensionError> {
        let mut m = serde_json::Map::new();
        if ctx.text.contains("BREAK") {
            m.insert("reply".into(), json!("replaced"));
        } else {
            m.insert("chars".into(), json!(ctx.text.len()));
        }
        Ok(m)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extensions_add_fields_rewrite_and_refuse_prompts() {
    let w = world().await;
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let tools = AgentTools::builder(w.bus.client().await)
        .extension(Tag {
            seen_tool_call_ids: seen.clone(),
        })
        .build()
        .unwrap();
    let r = tools
        .call("discover_agents", json!({"agent": "echo"}))
        .await;
    assert_eq!(r["agents"][0]["team"], "team-echo", "{r}");

    let r = within(
        30,
        "prompt",
        tools.call_with_id(
            "prompt_agent",
            json!({"address": ECHO, "prompt": "quiet"}),
            Some("tc-1"),
        ),
    )
    .await;
    check(
        "prompt_agent",
        &json!({"call_id": r["call_id"], "state": r["state"], "reply": r["reply"]}),
    );
    assert_eq!(r["reply"], "QUIET", "{r}");
    assert_eq!(r["trace"], r["call_id"]);
    assert_eq!(r["chars"], 5);
    assert_eq!(seen.lock().unwrap().as_slice(), [Some("tc-1".to_owned())]);

    let r = tools
        .call(
            "prompt_agent",
            json!({"address": ECHO, "prompt": "forbidden"}),
        )
        .await;
    assert_eq!(r, json!({"error": "that prompt is not allowed"}));

    // A reply look that sets a contract field fails the call.
    let r = tools
        .call("prompt_agent", json!({"address": ECHO, "prompt": "break"}))
        .await;
    assert_eq!(r["state"], "failed", "{r}");
    assert!(r["error"].as_str().unwrap().contains("extension"), "{r}");
    assert_eq!(r["partial_reply"], "BREAK");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expiring_call_refuses_its_open_question() {
    let mut w = world().await;
    let tools = AgentTools::builder(w.bus.client().await)
        .runtime_limit(Duration::from_millis(500))
        .build()
        .unwrap();
    let r = call(
        &tools,
        "prompt_agent",
        json!({"address": GATE, "prompt": "gate ask", "wait": false}),
    )
    .await;
    let id = r["call_id"].as_str().unwrap().to_owned();
    // Wait until it is past the question: either it comes back as
    // `input_required` first, or straight as `expired`.
    let mut r = call(&tools, "wait_agent", json!({"call_ids": [&id]})).await;
    if r["state"] == "input_required" {
        assert_eq!(r["question"], "proceed?");
        // Its end is the next change; wait for it by polling the list.
        within(30, "expiry", async {
            loop {
                let list = call(&tools, "list_agent_calls", json!({})).await;
                if list["calls"][0]["state"] != "input_required" {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
        r = call(&tools, "wait_agent", json!({"call_ids": [&id]})).await;
    }
    assert_eq!(r["state"], "expired", "{r}");
    assert_eq!(r["partial_reply"], "partial");
    let answer = within(10, "refusal", w.answers.recv()).await.unwrap();
    assert!(answer.starts_with("no"), "{answer}");
    w.gate.add_permits(1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocking_only_set_points_the_model_to_answer_agent() {
    let w = world().await;
    let tools = AgentTools::builder(w.bus.client().await)
        .tools(["discover_agents", "prompt_agent", "answer_agent"])
        .build()
        .unwrap();
    let r = call(
        &tools,
        "prompt_agent",
        json!({"address": ECHO, "prompt": "ask: sure?", "wait": true}),
    )
    .await;
    assert_eq!(r["state"], "input_required", "{r}");
    let note = r["open_calls_note"].as_str().unwrap();
    assert!(note.contains("answer_agent"), "{note}");
    assert!(
        !note.contains("wait_agent") && !note.contains("cancel_agent"),
        "{note}"
    );
    let r = call(
        &tools,
        "answer_agent",
        json!({"call_id": r["call_id"], "answer": "yes"}),
    )
    .await;
    assert_eq!(r["reply"], "you answered: yes", "{r}");
    let r = tools.call("list_agent_calls", json!({})).await;
    assert!(is_refusal(&r), "not offered: {r}");
}

/// Records the `tool_call_id` each prompt's context carried, and whether
/// the prompt as sent holds it anywhere.
struct SeesContext(Arc<std::sync::Mutex<Vec<Seen>>>);

/// The context's `tool_call_id`, and whether the sent envelope holds it.
type Seen = (Option<Value>, bool);

#[async_trait::async_trait]
impl nap_nats::PromptInterceptor for SeesContext {
    async fn before_prompt(
        &self,
        prompt: &mut nap_nats::OutgoingPrompt<'_>,
    ) -> Result<(), nap_nats::InterceptError> {
        let id = prompt
            .context()
            .get(nap_orchestrator::agent_tools::TOOL_CALL_ID)
            .cloned();
        let sent = serde_json::to_string(prompt.envelope()).unwrap();
        self.0.lock().unwrap().push((id, sent.contains("tc-ctx")));
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tool_call_id_reaches_prompt_interceptors_and_is_never_sent() {
    let w = world().await;
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let client = nap_nats::Client::builder(w.bus.nats.clone())
        .interceptor(SeesContext(seen.clone()))
        .build()
        .await
        .unwrap();
    let tools = AgentTools::new(client).unwrap();
    let r = within(
        30,
        "prompt",
        tools.call_with_id(
            "prompt_agent",
            json!({"address": ECHO, "prompt": "hi"}),
            Some("tc-ctx"),
        ),
    )
    .await;
    assert_eq!(r["reply"], "hi", "{r}");
    let r = within(
        30,
        "prompt",
        tools.call("prompt_agent", json!({"address": ECHO, "prompt": "again"})),
    )
    .await;
    assert_eq!(r["reply"], "again", "{r}");
    assert_eq!(
        seen.lock().unwrap().as_slice(),
        [(Some(json!("tc-ctx")), false), (None, false)]
    );
}
