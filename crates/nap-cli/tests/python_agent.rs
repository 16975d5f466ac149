//! `nap` against an agent of the Python SDK (synadia-ai-agent-service):
//! discover, info, prompt (streaming, attachments, a query, an error),
//! status and watch.
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use nap_testkit::NatsServer;
use serde_json::Value;
use support::{assert_exit, run, stderr, stdout};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nap_discovers_inspects_and_prompts_a_python_agent() {
    let server = NatsServer::start().unwrap();
    let url = server.url();
    let (_py, id) = support::python_agent(&url, "pyowner", "pyname").await;

    let out = run(&url, &["discover", "--wide"]).await;
    assert_exit(&out, 0);
    let row = stdout(&out)
        .lines()
        .find(|l| l.contains(&id))
        .map(str::to_owned)
        .unwrap();
    for cell in ["pyagent", "pyowner", "pyname", "0.3", "yes"] {
        assert!(row.contains(cell), "{cell} missing: {row}");
    }
    let out = run(&url, &["discover", "--agent", "pyagent", "--json"]).await;
    let records: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(records[0]["id"], id.as_str());

    let out = run(&url, &["info", "pyname"]).await;
    assert_exit(&out, 0);
    assert!(
        stdout(&out).contains("agents.prompt.pyagent.pyowner.pyname"),
        "{}",
        stdout(&out)
    );

    let out = run(&url, &["prompt", "pyagent/pyowner/pyname", "stream"]).await;
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), "one two three\n");

    let out = run(&url, &["prompt", "pyname", "ask", "--answer", "Bob"]).await;
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), "hello Bob\n");

    let dir = tempfile::tempdir().unwrap();
    let out = run(
        &url,
        &[
            "prompt",
            "pyname",
            "files",
            "--save-attachments",
            dir.path().to_str().unwrap(),
        ],
    )
    .await;
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), "a file\n");
    assert!(
        stderr(&out).contains("hello.txt (17 bytes)"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read(dir.path().join("hello.txt")).unwrap(),
        b"hello from python"
    );

    // Saved again: no file is overwritten, and a link planted under the
    // next name is not written through.
    std::fs::write(dir.path().join("hello.txt"), "mine").unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let victim = elsewhere.path().join("victim");
    std::fs::write(&victim, "untouched").unwrap();
    std::os::unix::fs::symlink(&victim, dir.path().join("hello (1).txt")).unwrap();
    let save = [
        "prompt",
        "pyname",
        "files",
        "--save-attachments",
        dir.path().to_str().unwrap(),
    ];
    let out = run(&url, &save).await;
    assert_exit(&out, 0);
    assert!(stderr(&out).contains("hello (2).txt"), "{}", stderr(&out));
    assert_eq!(
        std::fs::read(dir.path().join("hello.txt")).unwrap(),
        b"mine"
    );
    assert_eq!(std::fs::read(&victim).unwrap(), b"untouched");
    assert_eq!(
        std::fs::read(dir.path().join("hello (2).txt")).unwrap(),
        b"hello from python"
    );
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(dir.path().join("hello (2).txt"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "saved files are owner-only");

    // A directory given as a link is refused before anything is sent, and
    // nothing is written where it points.
    let linked = elsewhere.path().join("linked");
    std::os::unix::fs::symlink(dir.path(), &linked).unwrap();
    let before = std::fs::read_dir(dir.path()).unwrap().count();
    let out = run(
        &url,
        &[
            "prompt",
            "pyname",
            "files",
            "--save-attachments",
            linked.to_str().unwrap(),
        ],
    )
    .await;
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("symbolic link"), "{}", stderr(&out));
    assert_eq!(stdout(&out), "", "the prompt was not sent");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), before);

    // With --json, the files are saved too (the JSON lines carry them).
    let json_dir = tempfile::tempdir().unwrap();
    let out = run(
        &url,
        &[
            "prompt",
            "pyname",
            "files",
            "--json",
            "--save-attachments",
            json_dir.path().to_str().unwrap(),
        ],
    )
    .await;
    assert_exit(&out, 0);
    assert_eq!(
        std::fs::read(json_dir.path().join("hello.txt")).unwrap(),
        b"hello from python"
    );

    let file = dir.path().join("up.txt");
    std::fs::write(&file, "data").unwrap();
    let out = run(
        &url,
        &[
            "prompt",
            "pyname",
            "with a file",
            "--attach",
            file.to_str().unwrap(),
        ],
    )
    .await;
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), "echo: with a file\n");

    let out = run(&url, &["prompt", "pyname", "reject"]).await;
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("409") && stderr(&out).contains("conflict from python"),
        "{}",
        stderr(&out)
    );

    let out = run(&url, &["status", &id, "--json"]).await;
    assert_exit(&out, 0);
    let hb: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(hb["instance_id"], id.as_str());
    assert_eq!(hb["agent"], "pyagent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nap_watch_sees_a_python_agent_come_and_go() {
    let server = NatsServer::start().unwrap();
    let url = server.url();
    let mut watch = support::Running::spawn(support::nap([
        "--server", &url, "watch", "--agent", "pyagent",
    ]));
    // Give the watcher its subscription before the agent starts: the agent
    // must then show up through its heartbeats.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let (py, id) = support::python_agent(&url, "pyowner", "watched").await;
    let line = watch
        .line_where("online", |l| l.contains("online") && l.contains(&id))
        .await;
    assert!(line.contains("pyagent/pyowner/watched"), "{line}");
    drop(py);
    watch
        .line_where("offline", |l| l.contains("offline") && l.contains(&id))
        .await;
}
