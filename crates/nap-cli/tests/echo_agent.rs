//! `nap` against the examples' echo agent, hosted in the test process on a
//! real nats-server: discover, info, prompt, chat, status, watch, and the
//! exit statuses.
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use nap_agent::{AgentError, Request, Responder, agent_fn};
use nap_nats::AgentService;
use nap_testkit::NatsServer;
use serde_json::Value;
use support::{assert_exit, output, run, stderr, stdout};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discover_lists_agents_as_a_table_and_as_full_records() {
    let server = NatsServer::start().unwrap();
    let url = server.url();
    let echo = support::host_echo(&url, "alice", "demo").await;

    let out = run(&url, &["discover", "--wide"]).await;
    assert_exit(&out, 0);
    let table = stdout(&out);
    for column in [
        "Agent",
        "Owner",
        "Name",
        "Session",
        "Version",
        "Protocol",
        "Instance",
        "Online",
        "Max payload",
        "Attachments",
    ] {
        assert!(table.contains(column), "{column} missing:\n{table}");
    }
    let row = table.lines().find(|l| l.contains(echo.id())).unwrap();
    for cell in ["echo", "alice", "demo", "0.3", "yes", "1MB"] {
        assert!(row.contains(cell), "{cell} missing: {row}");
    }

    // --json: the records as received, unknown metadata kept (§3.2).
    let out = run(&url, &["discover", "--json"]).await;
    assert_exit(&out, 0);
    let records: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(records[0]["id"], echo.id());
    assert_eq!(records[0]["metadata"]["x-team"], "blue");
    assert_eq!(records[0]["endpoints"].as_array().unwrap().len(), 2);

    // Filters.
    let out = run(&url, &["discover", "--owner", "bob", "--json"]).await;
    assert_exit(&out, 0);
    assert_eq!(
        serde_json::from_slice::<Value>(&out.stdout).unwrap(),
        Value::Array(vec![])
    );
    let out = run(
        &url,
        &["discover", "--wide", "--agent", "echo", "--name", "demo"],
    )
    .await;
    assert!(stdout(&out).contains(echo.id()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_resolves_names_paths_and_ids_and_lists_ambiguous_candidates() {
    let server = NatsServer::start().unwrap();
    let url = server.url();
    let alice = support::host_echo(&url, "alice", "demo").await;
    let bob = support::host_echo(&url, "bob", "demo").await;

    for target in ["echo/alice/demo", "alice/demo", alice.id()] {
        let out = run(&url, &["info", target]).await;
        assert_exit(&out, 0);
        let text = stdout(&out);
        assert!(text.contains(alice.id()), "{target}: {text}");
        assert!(text.contains("agents.prompt.echo.alice.demo"), "{text}");
        assert!(text.contains("agents.status.echo.alice.demo"), "{text}");
        assert!(text.contains("x-team=blue"), "{text}");
    }
    let out = run(&url, &["info", "--json", "bob/demo"]).await;
    assert_exit(&out, 0);
    let record: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(record["id"], bob.id());
    assert_eq!(record["metadata"]["x-team"], "blue");

    let out = run(&url, &["info", "demo"]).await;
    assert_exit(&out, 2);
    let err = stderr(&out);
    assert!(err.contains("ambiguous"), "{err}");
    assert!(err.contains(alice.id()) && err.contains(bob.id()), "{err}");
    assert!(
        err.contains("echo/alice/demo") && err.contains("echo/bob/demo"),
        "{err}"
    );

    let out = run(&url, &["info", "nobody"]).await;
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("no agent matches"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompt_streams_text_attachments_stdin_and_json() {
    let server = NatsServer::start().unwrap();
    let url = server.url();
    let _echo = support::host_echo(&url, "alice", "demo").await;

    let out = run(&url, &["prompt", "demo", "hello there"]).await;
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), "hello there\n");

    // A long prompt comes back in several chunks, concatenated.
    let long = "x".repeat(200);
    let out = run(&url, &["prompt", "echo/alice/demo", &long]).await;
    assert_eq!(stdout(&out), format!("{long}\n"));

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("notes.txt");
    std::fs::write(&file, "twelve bytes").unwrap();
    let out = run(
        &url,
        &[
            "prompt",
            "demo",
            "see attached",
            "--attach",
            file.to_str().unwrap(),
        ],
    )
    .await;
    assert_exit(&out, 0);
    assert_eq!(
        stdout(&out),
        "see attached\nattachments: notes.txt (12 bytes)\n"
    );

    let out = output(
        support::nap(["--server", &url, "prompt", "demo", "-"]),
        "from stdin\n",
    )
    .await;
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), "from stdin\n");

    let out = run(&url, &["prompt", "demo", "as json", "--json"]).await;
    assert_exit(&out, 0);
    let lines: Vec<Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines[0],
        serde_json::json!({"type": "status", "data": "ack"})
    );
    assert_eq!(
        lines[1],
        serde_json::json!({"type": "response", "data": "as json"})
    );
    assert_eq!(lines.last().unwrap(), &serde_json::json!({"type": "end"}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_are_answered_with_answer_and_refused_without_a_terminal() {
    let server = NatsServer::start().unwrap();
    let url = server.url();
    let _echo = support::host_echo(&url, "alice", "demo").await;

    let out = run(
        &url,
        &[
            "prompt",
            "demo",
            "ask: favourite colour?",
            "--answer",
            "blue",
        ],
    )
    .await;
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), "you answered: blue\n");

    // stdin is not a terminal here: refused, clearly, with status 2.
    let out = run(&url, &["prompt", "demo", "ask: favourite colour?"]).await;
    assert_exit(&out, 2);
    let err = stderr(&out);
    assert!(err.contains("favourite colour?"), "{err}");
    assert!(err.contains("--answer"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_errors_exit_1_with_code_and_description_on_stderr() {
    let server = NatsServer::start().unwrap();
    let url = server.url();
    let nats = async_nats::connect(url.as_str()).await.unwrap();
    let busy = agent_fn(|_req: Request, out: Responder| async move {
        out.text("partial ").await?;
        Err::<(), _>(AgentError::conflict("the agent is busy"))
    });
    let _agent = AgentService::builder("busy", "alice", "busy")
        .max_payload(nap_proto::ByteSize::new(1024))
        .start(nats, busy)
        .await
        .unwrap();

    let out = run(&url, &["prompt", "busy", "hi"]).await;
    assert_exit(&out, 1);
    assert_eq!(stdout(&out), "partial \n");
    let err = stderr(&out);
    assert!(
        err.contains("409") && err.contains("the agent is busy"),
        "{err}"
    );

    let out = run(&url, &["prompt", "busy", "hi", "--json"]).await;
    assert_exit(&out, 1);
    let last: Value = serde_json::from_str(stdout(&out).lines().last().unwrap()).unwrap();
    assert_eq!(last["type"], "error");
    assert_eq!(last["code"], "409");

    // Larger than the agent's max_payload: refused before sending (§5.4).
    let out = run(&url, &["prompt", "busy", &"y".repeat(2000)]).await;
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("refused"), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_keeps_talking_to_one_agent_and_answers_queries_from_its_input() {
    let server = NatsServer::start().unwrap();
    let url = server.url();
    let _echo = support::host_echo(&url, "alice", "demo").await;

    let out = output(
        support::nap(["--server", &url, "chat", "alice/demo"]),
        "first line\n\nask: colour?\nblue\nsecond line\n",
    )
    .await;
    assert_exit(&out, 0);
    assert_eq!(
        stdout(&out),
        "first line\nyou answered: blue\nsecond line\n"
    );
    assert!(
        stderr(&out).contains("chatting with echo/alice/demo"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_reports_a_fresh_heartbeat() {
    let server = NatsServer::start().unwrap();
    let url = server.url();
    let echo = support::host_echo(&url, "alice", "demo").await;

    let out = run(&url, &["status", "demo"]).await;
    assert_exit(&out, 0);
    let text = stdout(&out);
    assert!(
        text.contains(echo.id()) && text.contains("Online:     yes"),
        "{text}"
    );

    let out = run(&url, &["status", "echo/alice/demo", "--json"]).await;
    assert_exit(&out, 0);
    let hb: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(hb["instance_id"], echo.id());
    assert_eq!(hb["agent"], "echo");
    assert_eq!(hb["interval_s"], 1);

    // --follow: the status reply, then live beats.
    let mut follow = support::Running::spawn(support::nap([
        "--server", &url, "status", "demo", "--follow",
    ]));
    follow
        .line_where("online, with the reply's beat", |l| {
            l.contains(" online ") && l.contains(echo.id()) && l.contains(" ts ")
        })
        .await;
    follow
        .line_where("a live beat", |l| l.contains(" beat "))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_shows_agents_coming_online_and_going_offline() {
    let server = NatsServer::start().unwrap();
    let url = server.url();
    let before = support::host_echo(&url, "alice", "before").await;
    let _other = support::host_echo(&url, "carol", "other").await;

    let mut watch = support::Running::spawn(support::nap([
        "--server", &url, "watch", "--owner", "alice",
    ]));
    // Already running: found by discovery and a status probe (§8.7).
    watch
        .line_where("the running agent online", |l| {
            l.contains("online") && l.contains(before.id())
        })
        .await;
    // Started later: seen by its first heartbeat.
    let after = support::host_echo(&url, "alice", "after").await;
    let line = watch
        .line_where("the new agent online", |l| {
            l.contains("online") && l.contains(after.id())
        })
        .await;
    assert!(line.contains("echo/alice/after"), "{line}");
    // Dropped without unregistering: its beats stop, offline after 3 s (§8.2).
    let gone = after.id().to_owned();
    drop(after);
    watch
        .line_where("the agent offline", |l| {
            l.contains("offline") && l.contains(&gone)
        })
        .await;
    assert!(
        !watch.seen.iter().any(|l| l.contains("carol")),
        "{:?}",
        watch.seen
    );

    // JSON lines.
    let mut json = support::Running::spawn(support::nap([
        "--server", &url, "watch", "--json", "--name", "before",
    ]));
    let line = json.line_where("a JSON line", |l| l.starts_with('{')).await;
    let event: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(event["event"], "online");
    assert_eq!(event["instance_id"], before.id());
    assert_eq!(event["name"], "before");
}

#[test]
fn connection_failures_name_the_server_and_exit_3() {
    let out = assert_cmd::Command::cargo_bin("nap")
        .unwrap()
        .env("HOME", support::EMPTY_HOME)
        .env_remove("NATS_URL")
        .env_remove("NATS_CONTEXT")
        .args(["--server", "nats://127.0.0.1:1", "discover"])
        .output()
        .unwrap();
    assert_exit(&out, 3);
    let err = stderr(&out);
    assert!(
        err.contains("cannot connect to nats://127.0.0.1:1"),
        "{err}"
    );
    assert!(err.to_lowercase().contains("refused"), "{err}");
}

#[test]
fn help_documents_the_exit_statuses() {
    let out = assert_cmd::Command::cargo_bin("nap")
        .unwrap()
        .arg("--help")
        .output()
        .unwrap();
    assert_exit(&out, 0);
    let help = stdout(&out);
    for line in [
        "Exit status:",
        "0    success",
        "1    the agent answered",
        "2    usage",
        "3    could not connect",
        "4    the exchange failed",
        "130  interrupted",
    ] {
        assert!(help.contains(line), "{line} missing:\n{help}");
    }
    for flag in [
        "--server",
        "--context",
        "--creds",
        "--nkey",
        "--user",
        "--password",
        "--token",
        "--tlscert",
        "--tlskey",
        "--tlsca",
    ] {
        assert!(help.contains(flag), "{flag} missing");
    }
}

/// A reply that breaks a stream rule is not a success: one line on stderr
/// naming the rule, exit 4, whatever came before it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_protocol_violation_exits_4_with_one_line() {
    let server = NatsServer::start().unwrap();
    let url = server.url();
    let sloppy = agent_fn(|_req: Request, out: Responder| async move {
        out.text("before ").await?;
        // A response chunk whose data is a number (§6.3: string or object).
        out.chunk(nap_proto::Chunk::Unknown {
            kind: "response".into(),
            data: serde_json::json!(5),
        })
        .await?;
        out.text("after").await?;
        Ok::<_, AgentError>(())
    });
    let nats = async_nats::connect(&url).await.unwrap();
    let _running = AgentService::builder("sloppy", "alice", "bad")
        .start(nats, sloppy)
        .await
        .unwrap();
    let out = run(&url, &["prompt", "alice/bad", "hi"]).await;
    assert_exit(&out, 4);
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("broke the protocol"), "{err}");
}
