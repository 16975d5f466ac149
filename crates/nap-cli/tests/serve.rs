//! `nap serve`: exec with a shell command, echo prompted by the Python SDK
//! caller, llm with the offline model, and a graceful stop on SIGTERM.
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use nap_testkit::NatsServer;
use serde_json::Value;
use support::{assert_exit, output, run, stderr, stdout};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_exec_streams_a_shell_command_and_reports_its_failures() {
    let server = NatsServer::start().unwrap();
    let url = server.url();
    let (_upper, _) = support::serve(
        &url,
        &[
            "exec",
            "--owner",
            "sh",
            "--name",
            "upper",
            "--",
            "sh",
            "-c",
            "tr a-z A-Z; echo; echo \"from $NAP_AGENT/$NAP_OWNER/$NAP_NAME\"",
        ],
    )
    .await;
    let out = run(&url, &["prompt", "sh/upper", "hello exec"]).await;
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), "HELLO EXEC\nfrom exec/sh/upper\n");

    // Attachments land in $NAP_ATTACHMENTS.
    let (_ls, _) = support::serve(
        &url,
        &[
            "exec",
            "--owner",
            "sh",
            "--name",
            "files",
            "--",
            "sh",
            "-c",
            "cat \"$NAP_ATTACHMENTS\"/*",
        ],
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("in.txt");
    std::fs::write(&file, "attached content\n").unwrap();
    let out = run(
        &url,
        &[
            "prompt",
            "sh/files",
            "x",
            "--attach",
            file.to_str().unwrap(),
        ],
    )
    .await;
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), "attached content\n");

    // A non-zero exit is a 500 carrying the stderr tail (§9.2).
    let (_failing, _) = support::serve(
        &url,
        &[
            "exec",
            "--owner",
            "sh",
            "--name",
            "failing",
            "--",
            "sh",
            "-c",
            "echo partial; echo 'no such thing' >&2; exit 3",
        ],
    )
    .await;
    let out = run(&url, &["prompt", "sh/failing", "anything"]).await;
    assert_exit(&out, 1);
    assert_eq!(stdout(&out), "partial\n");
    let err = stderr(&out);
    assert!(
        err.contains("500") && err.contains("no such thing") && err.contains("exit status: 3"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_echo_is_prompted_by_the_python_caller() {
    let server = NatsServer::start().unwrap();
    let url = server.url();
    let (_echo, id) = support::serve(
        &url,
        &[
            "echo",
            "--owner",
            "py",
            "--name",
            "nap-serve",
            "--heartbeat",
            "1",
        ],
    )
    .await;
    let out = tokio::process::Command::new(support::python())
        .arg(support::script("caller.py"))
        .args([url.as_str(), "py", "nap-serve"])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "python caller failed:\n{}",
        stderr(&out)
    );
    let seen: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(seen["instance_id"], id.as_str());
    assert_eq!(seen["prompt_subject"], "agents.prompt.echo.py.nap-serve");
    assert_eq!(seen["text"]["text"], "hello from python");
    assert_eq!(
        seen["attachment"]["text"],
        "see attached\nattachments: data.bin (3 bytes)"
    );
    assert_eq!(seen["query"]["queries"][0], "favourite colour?");
    assert_eq!(seen["query"]["text"], "you answered: blue");
    assert_eq!(seen["status_instance_id"], id.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_sets_identity_and_limits_and_stops_gracefully_on_sigterm() {
    let server = NatsServer::start().unwrap();
    let url = server.url();
    let (serve, id) = support::serve(
        &url,
        &[
            "echo",
            "--agent",
            "parrot",
            "--owner",
            "o",
            "--name",
            "n",
            "--session",
            "s1",
            "--max-payload",
            "2KB",
            "--no-attachments",
            "--metadata",
            "team=blue",
        ],
    )
    .await;
    let out = run(&url, &["discover", "--json"]).await;
    let records: Value = serde_json::from_slice(&out.stdout).unwrap();
    let record = &records[0];
    assert_eq!(record["id"], id.as_str());
    assert_eq!(record["metadata"]["agent"], "parrot");
    assert_eq!(record["metadata"]["session"], "s1");
    assert_eq!(record["metadata"]["team"], "blue");
    let prompt = record["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "prompt")
        .unwrap();
    assert_eq!(prompt["subject"], "agents.prompt.parrot.o.n");
    assert_eq!(prompt["metadata"]["max_payload"], "2KB");
    assert_eq!(prompt["metadata"]["attachments_ok"], "false");

    let status = serve.terminate().await;
    assert!(status.success(), "{status:?}");
    let out = run(&url, &["discover", "--json"]).await;
    assert_eq!(
        serde_json::from_slice::<Value>(&out.stdout).unwrap(),
        Value::Array(vec![])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_llm_with_the_offline_model() {
    let server = NatsServer::start().unwrap();
    let url = server.url();
    let mut cmd = support::nap([
        "--server", &url, "serve", "llm", "--owner", "o", "--name", "helper",
    ]);
    for var in [
        "NAP_LLM",
        "NAP_MODEL",
        "NAP_LLM_BASE_URL",
        "OPENAI_API_KEY",
        "ANTHROPIC_API_KEY",
    ] {
        cmd.env_remove(var);
    }
    let mut llm = support::Running::spawn(cmd);
    let ready = llm
        .line_where("the ready line", |l| l.starts_with("serving "))
        .await;
    assert!(
        ready.starts_with("serving llm/o/helper as instance "),
        "{ready}"
    );
    let out = run(&url, &["prompt", "o/helper", "hello model"]).await;
    assert_exit(&out, 0);
    assert!(stdout(&out).contains("offline model"), "{}", stdout(&out));
}

/// SIGTERM with five prompts in flight: `nap serve exec` finishes each of
/// them and every stream ends with its terminator before the process exits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_prompts_in_flight_ends_every_stream() {
    use futures::StreamExt;
    let server = NatsServer::start().unwrap();
    let url = server.url();
    let (serve, _) = support::serve(
        &url,
        &[
            "exec",
            "--owner",
            "sh",
            "--name",
            "slow",
            "--",
            "sh",
            "-c",
            "sleep 1; cat",
        ],
    )
    .await;
    let nc = async_nats::connect(&url).await.unwrap();
    let mut subs = Vec::new();
    for i in 0..5 {
        let inbox = nc.new_inbox();
        let mut sub = nc.subscribe(inbox.clone()).await.unwrap();
        nc.publish_with_reply("agents.prompt.exec.sh.slow", inbox, format!("p{i}").into())
            .await
            .unwrap();
        // The ack says the prompt is in flight (§6.4).
        let ack = tokio::time::timeout(std::time::Duration::from_secs(10), sub.next())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            nap_proto::Chunk::decode(&ack.payload).unwrap(),
            nap_proto::Chunk::ACK
        );
        subs.push(sub);
    }
    let status = serve.terminate().await;
    assert!(status.success(), "{status:?}");
    for (i, mut sub) in subs.into_iter().enumerate() {
        let mut text = String::new();
        loop {
            let msg = tokio::time::timeout(std::time::Duration::from_secs(10), sub.next())
                .await
                .unwrap_or_else(|_| panic!("prompt {i}: no terminator"))
                .unwrap();
            if msg.payload.is_empty() && msg.headers.is_none() {
                break;
            }
            assert!(msg.headers.is_none(), "prompt {i}: error {:?}", msg.headers);
            if let nap_proto::Chunk::Response(data) =
                nap_proto::Chunk::decode(&msg.payload).unwrap()
            {
                text.push_str(data.text());
            }
        }
        assert_eq!(text.trim_end(), format!("p{i}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_llm_agent_keeps_one_conversation_per_chat_not_per_agent() {
    // The offline model repeats what the conversation said earlier, so the
    // reply shows whose memory it was given.
    let server = NatsServer::start().unwrap();
    let url = server.url();
    let (_llm, _) = support::serve(&url, &["llm", "--owner", "mem", "--name", "bot"]).await;
    let first = output(
        support::nap(["--server", &url, "chat", "mem/bot"]),
        "my name is Ada\nwhat is my name?\n",
    )
    .await;
    assert_exit(&first, 0);
    assert!(
        stdout(&first).contains("Earlier in this conversation you said: \"my name is Ada\""),
        "the second line continues the first: {}",
        stdout(&first)
    );
    // Another caller's chat starts afresh, and so does a plain prompt.
    let second = output(
        support::nap(["--server", &url, "chat", "mem/bot"]),
        "what is my name?\n",
    )
    .await;
    assert_exit(&second, 0);
    assert!(!stdout(&second).contains("Ada"), "{}", stdout(&second));
    let prompt = output(
        support::nap(["--server", &url, "prompt", "mem/bot", "what is my name?"]),
        "",
    )
    .await;
    assert_exit(&prompt, 0);
    assert!(!stdout(&prompt).contains("Ada"), "{}", stdout(&prompt));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_keeps_every_attachment_under_a_safe_name() {
    // Two files of one name are both kept; neither leaves the directory.
    let server = NatsServer::start().unwrap();
    let url = server.url();
    let (_exec, _) = support::serve(
        &url,
        &[
            "exec",
            "--owner",
            "o",
            "--name",
            "files",
            "--",
            "sh",
            "-c",
            "cd \"$NAP_ATTACHMENTS\" && ls -1",
        ],
    )
    .await;
    let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    std::fs::write(one.path().join("a.txt"), "one").unwrap();
    std::fs::write(two.path().join("a.txt"), "two").unwrap();
    let first = one.path().join("a.txt");
    let second = two.path().join("a.txt");
    let out = run(
        &url,
        &[
            "prompt",
            "o/files",
            "list",
            "--attach",
            first.to_str().unwrap(),
            "--attach",
            second.to_str().unwrap(),
        ],
    )
    .await;
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), "a (1).txt\na.txt\n", "{}", stderr(&out));
}

/// `nap serve echo --count N` and `nap serve fleet FILE`: many agents from
/// one process, each discoverable and prompted on its own, all stopped
/// gracefully by one SIGTERM.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_hosts_a_fleet_from_a_count_and_from_a_file() {
    let server = NatsServer::start().unwrap();
    let url = server.url();
    let mut counted = support::Running::spawn(support::nap([
        "--server", &url, "serve", "echo", "--owner", "many", "--name", "e", "--count", "25",
    ]));
    let ready = counted
        .line_where("the ready line", |l| l.starts_with("serving "))
        .await;
    assert_eq!(
        ready,
        "serving 25 agents in one fleet: echo/many/e-0 … echo/many/e-24"
    );

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("fleet.json");
    std::fs::write(
        &file,
        r#"{"agents": [
            {"kind": "echo", "owner": "file", "name": "a"},
            {"kind": "exec", "owner": "file", "name": "up", "command": ["tr", "a-z", "A-Z"]}
        ]}"#,
    )
    .unwrap();
    let mut listed = support::Running::spawn(support::nap([
        "--server",
        &url,
        "serve",
        "fleet",
        file.to_str().unwrap(),
    ]));
    let ready = listed
        .line_where("the ready line", |l| l.starts_with("serving "))
        .await;
    assert_eq!(
        ready,
        "serving 2 agents in one fleet: echo/file/a … exec/file/up"
    );

    let out = run(&url, &["discover", "--owner", "many", "--json"]).await;
    assert_exit(&out, 0);
    let found: Vec<Value> = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(found.len(), 25, "{}", stdout(&out));
    let mut ids: Vec<String> = found.iter().map(|r| r["id"].to_string()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 25, "one service id per agent");

    let out = run(&url, &["prompt", "echo/many/e-17", "seventeen"]).await;
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), "seventeen\n");
    let out = run(&url, &["prompt", "exec/file/up", "shout"]).await;
    assert_exit(&out, 0);
    assert_eq!(stdout(&out).trim_end(), "SHOUT");

    assert!(counted.terminate().await.success());
    assert!(listed.terminate().await.success());
    let out = run(&url, &["discover", "--json"]).await;
    let left: Vec<Value> = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(left.is_empty(), "every fleet agent unregistered: {left:?}");

    // A bad file is a usage error that names the entry.
    std::fs::write(&file, r#"{"agents": [{"kind": "echo", "nmae": "x"}]}"#).unwrap();
    let out = run(&url, &["serve", "fleet", file.to_str().unwrap()]).await;
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("unknown field `nmae`"),
        "{}",
        stderr(&out)
    );
}
