//! The CLI defects reported from outside, one test each, and the commands
//! added with them: the narrow `discover` table, TARGET resolution,
//! readable durations, single refusal lines, Ctrl-C exit statuses, usage
//! lines, `nap stats`, `nap conformance`, completions and man pages.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::time::Duration;

use futures::StreamExt;
use nap_testkit::NatsServer;
use serde_json::Value;
use support::{assert_exit, nap, output, run, serve, stderr, stdout};

/// Sends SIGINT to a running child and returns its exit code.
async fn interrupt(mut running: support::Running) -> Option<i32> {
    let pid = running.pid();
    interrupt_pid(pid, &mut running.child).await
}

/// Sends SIGINT to `pid` and waits for `child`'s exit code.
async fn interrupt_pid(pid: u32, child: &mut tokio::process::Child) -> Option<i32> {
    let status = std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    tokio::time::timeout(support::PATIENCE, child.wait())
        .await
        .expect("no exit after SIGINT")
        .unwrap()
        .code()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discover_fits_80_columns_sorts_its_rows_and_shows_all_with_wide() {
    let server = NatsServer::start().unwrap();
    let url = server.url();
    // Started out of order: the table is sorted anyway.
    let zed = support::host_echo(&url, "zed", "research-assistant").await;
    let amy = support::host_echo(&url, "amy", "writer").await;

    let out = run(&url, &["discover"]).await;
    assert_exit(&out, 0);
    let table = stdout(&out);
    for line in table.lines() {
        assert!(
            line.chars().count() <= 80,
            "wider than 80: {line:?}\n{table}"
        );
    }
    for column in ["Agent", "Owner", "Name", "Instance", "Online", "Identity"] {
        assert!(table.contains(column), "{column} missing:\n{table}");
    }
    let short = |id: &str| id[id.len() - 8..].to_owned();
    let at = |needle: &str| {
        table
            .find(needle)
            .unwrap_or_else(|| panic!("{needle}:\n{table}"))
    };
    assert!(at(&short(amy.id())) < at(&short(zed.id())), "{table}");
    assert!(
        !table.contains(amy.id()),
        "the narrow table shortens ids:\n{table}"
    );

    let out = run(&url, &["discover", "--wide"]).await;
    assert_exit(&out, 0);
    let wide = stdout(&out);
    for column in [
        "Session",
        "Version",
        "Protocol",
        "Max payload",
        "Attachments",
    ] {
        assert!(wide.contains(column), "{column} missing:\n{wide}");
    }
    assert!(wide.contains(amy.id()) && wide.contains(zed.id()), "{wide}");

    // The shown end of an id is a TARGET.
    let out = run(&url, &["info", &short(zed.id())]).await;
    assert_exit(&out, 0);
    assert!(stdout(&out).contains(zed.id()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discover_help_keeps_output_flags_out_of_the_filters() {
    let out = output(nap(["discover", "--help"]), "").await;
    assert_exit(&out, 0);
    let help = stdout(&out);
    let filters = help.find("Filters:").unwrap();
    let json = help.find("--json").unwrap();
    let output_heading = help.find("Output:").unwrap();
    assert!(
        json < filters || json > output_heading && output_heading > filters,
        "--json must not be listed under Filters:\n{help}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_id_target_is_asked_for_directly() {
    let server = NatsServer::start().unwrap();
    let url = server.url();
    let echo = support::host_echo(&url, "alice", "demo").await;
    // Every direct $SRV.INFO.agents.{id} request the command makes.
    let spy = async_nats::connect(&url).await.unwrap();
    let mut requests = spy
        .subscribe(format!("{}.>", nap_proto::INFO_SUBJECT))
        .await
        .unwrap();
    let mut wildcard = spy.subscribe(nap_proto::INFO_SUBJECT).await.unwrap();
    spy.flush().await.unwrap();

    let out = run(&url, &["info", echo.id()]).await;
    assert_exit(&out, 0);
    let direct = tokio::time::timeout(support::PATIENCE, requests.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        direct.subject.as_str(),
        nap_proto::info_subject_for(echo.id())
    );
    // Nothing was asked of every agent.
    spy.flush().await.unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(200), wildcard.next())
            .await
            .is_err(),
        "a discovery round was made for an instance id"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_reads_as_people_write_it() {
    let server = NatsServer::start().unwrap();
    let url = server.url();
    let (_slow, _) = serve(
        &url,
        &[
            "exec",
            "--owner",
            "t",
            "--name",
            "slow",
            "--heartbeat",
            "1",
            "--",
            "sleep",
            "30",
        ],
    )
    .await;
    let out = run(&url, &["prompt", "t/slow", "hi", "--timeout", "0.3"]).await;
    assert_exit(&out, 4);
    // Whole milliseconds (the silence measured, 300 ms or a little more),
    // not `300.476292ms`.
    let err = stderr(&out);
    let after = err.split("for ").nth(1).unwrap_or_default();
    let (number, rest) = after.split_at(after.find(|c: char| !c.is_ascii_digit()).unwrap_or(0));
    let ms: u64 = number.parse().unwrap_or_else(|_| panic!("{err}"));
    assert!((300..1000).contains(&ms), "{err}");
    assert!(rest.starts_with("ms: "), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_refusal_is_said_once() {
    let server = NatsServer::start().unwrap();
    let url = server.url();
    let (_agent, _) = serve(
        &url,
        &[
            "echo",
            "--owner",
            "t",
            "--name",
            "plain",
            "--no-attachments",
        ],
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("notes.txt");
    std::fs::write(&file, "hello").unwrap();
    let out = run(
        &url,
        &[
            "prompt",
            "t/plain",
            "hi",
            "--attach",
            file.to_str().unwrap(),
        ],
    )
    .await;
    assert_exit(&out, 2);
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert_eq!(err.matches("attachments_ok=false").count(), 1, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_and_status_follow_exit_130_on_ctrl_c_and_a_heartbeat_makes_one_line() {
    let server = NatsServer::start().unwrap();
    let url = server.url();
    let echo = support::host_echo(&url, "alice", "demo").await;

    let mut watch = support::Running::spawn(nap(["--server", &url, "watch"]));
    watch
        .line_where("the agent online", |l| l.contains(" online "))
        .await;
    assert_eq!(interrupt(watch).await, Some(130));

    // An agent beating every 30 s: the status reply is the only heartbeat
    // in the next seconds, and it makes one line.
    let (_slow, slow_id) = serve(&url, &["echo", "--owner", "bob", "--name", "calm"]).await;
    let mut follow =
        support::Running::spawn(nap(["--server", &url, "status", "bob/calm", "--follow"]));
    follow
        .line_where("online", |l| l.contains(" online ") && l.contains(&slow_id))
        .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut follow = follow;
    let pid = follow.pid();
    assert_eq!(interrupt_pid(pid, &mut follow.child).await, Some(130));
    let rest = follow.rest().await;
    let about: Vec<&String> = follow
        .seen
        .iter()
        .chain(&rest)
        .filter(|l| l.contains(&slow_id))
        .collect();
    assert_eq!(
        about.len(),
        1,
        "the first heartbeat makes one line: {about:#?}"
    );
    let _ = echo;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_usage_line_does_not_show_a_server_set_by_nats_url() {
    let mut cmd = nap(["prompt"]);
    cmd.env("NATS_URL", "nats://127.0.0.1:1");
    let out = output(cmd, "").await;
    assert_exit(&out, 2);
    let err = stderr(&out);
    assert!(err.contains("Usage: nap prompt"), "{err}");
    assert!(!err.contains("--server"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_shows_the_request_counters_of_each_agent() {
    let server = NatsServer::start().unwrap();
    let url = server.url();
    let echo = support::host_echo(&url, "alice", "demo").await;
    for text in ["one", "two"] {
        assert_exit(&run(&url, &["prompt", "alice/demo", text]).await, 0);
    }
    let out = run(&url, &["stats", "--json"]).await;
    assert_exit(&out, 0);
    let all: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mine = all
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == echo.id())
        .unwrap();
    let prompt = mine["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "prompt")
        .unwrap();
    assert_eq!(prompt["num_requests"], 2, "{mine}");

    let out = run(&url, &["stats", "--owner", "alice"]).await;
    assert_exit(&out, 0);
    let table = stdout(&out);
    let row = table.lines().find(|l| l.contains("demo")).unwrap();
    assert!(row.contains("echo") && row.contains(" 2 "), "{table}");
    let out = run(&url, &["stats", "--owner", "bob"]).await;
    assert_exit(&out, 0);
    assert!(stdout(&out).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nap_conformance_tests_an_agent_and_refuses_an_ambiguous_name() {
    let server = NatsServer::start().unwrap();
    let url = server.url();
    let (_one, _) = serve(
        &url,
        &[
            "echo",
            "--owner",
            "alice",
            "--name",
            "demo",
            "--heartbeat",
            "1",
        ],
    )
    .await;
    let out = run(
        &url,
        &["conformance", "agent", "--name", "demo", "--budget", "20"],
    )
    .await;
    assert_exit(&out, 0);
    assert!(stdout(&out).contains("REG-001"), "{}", stdout(&out));

    // A second agent named demo: which one to test is not guessed.
    let (_two, _) = serve(&url, &["echo", "--owner", "bob", "--name", "demo"]).await;
    let out = run(&url, &["conformance", "agent", "--name", "demo"]).await;
    assert_exit(&out, 2);
    let err = stderr(&out);
    assert!(err.contains("ambiguous"), "{err}");
    assert!(
        err.contains("echo/alice/demo") && err.contains("echo/bob/demo"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completions_and_man_pages_cover_the_commands() {
    for (shell, marker) in [
        ("bash", "_nap()"),
        ("zsh", "#compdef nap"),
        ("fish", "complete -c nap"),
    ] {
        let out = output(nap(["completions", shell]), "").await;
        assert_exit(&out, 0);
        let script = stdout(&out);
        assert!(script.contains(marker), "{shell}: {script}");
        assert!(script.contains("conformance"), "{shell}");
    }
    let out = output(nap(["completions", "tcsh"]), "").await;
    assert_exit(&out, 2);

    let out = output(nap(["man"]), "").await;
    assert_exit(&out, 0);
    let page = stdout(&out);
    assert!(page.contains(".TH nap"), "{page}");
    assert!(page.contains("discover"), "{page}");

    let dir = tempfile::tempdir().unwrap();
    let out = output(nap(["man", "--dir", dir.path().to_str().unwrap()]), "").await;
    assert_exit(&out, 0);
    for page in ["nap.1", "nap-prompt.1", "nap-conformance.1"] {
        assert!(dir.path().join(page).exists(), "{page} missing");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_url_of_another_protocol_is_a_usage_error() {
    let out = output(nap(["--server", "http://127.0.0.1:4222", "discover"]), "").await;
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("is not one of nats, tls, ws, wss"),
        "{}",
        stderr(&out)
    );
}

/// The watcher losing the server is not the agents going offline: while
/// its connection is down no agent is declared offline, and once it is
/// back an agent that beats again stays online (issue 13).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_does_not_blame_the_agents_for_its_own_lost_connection() {
    let mut server = NatsServer::start().unwrap();
    let url = server.url();
    let agent = support::host_echo(&url, "alice", "steady").await;
    let mut watch = support::Running::spawn(nap([
        "--server", &url, "watch", "--owner", "alice", "--beats",
    ]));
    watch
        .line_where("the agent online", |l| {
            l.contains(" online ") && l.contains(agent.id())
        })
        .await;
    // Down for longer than 3 heartbeat intervals (1 s each).
    server.stop().unwrap();
    watch
        .line_where("the disconnected line", |l| l.contains(" disconnected "))
        .await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    server.restart().unwrap();
    watch
        .line_where("the reconnected line", |l| l.contains(" reconnected "))
        .await;
    // Four beats after the reconnection: more than 3 intervals have passed.
    for _ in 0..4 {
        watch
            .line_where("a beat after the reconnection", |l| {
                l.contains(" beat ") && l.contains(agent.id())
            })
            .await;
    }
    assert!(
        !watch.seen.iter().any(|l| l.contains(" offline ")),
        "{:#?}",
        watch.seen
    );
    // Silence after the reconnection is evidence again.
    let id = agent.id().to_owned();
    drop(agent);
    watch
        .line_where("the agent offline", |l| {
            l.contains(" offline ") && l.contains(&id)
        })
        .await;
}
