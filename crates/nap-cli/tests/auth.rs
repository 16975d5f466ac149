//! Connection settings against servers that require authentication: NATS
//! CLI context files (§10.2) selected by flag, environment and
//! `context.txt`, user/password, token, an NKEY user, and a credentials file
//! on an operator-mode server.
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use std::path::Path;

use nap_testkit::NatsServer;
use nap_testkit::identity::{account_claims, creds_text, jwt, user_claims};
use serde_json::json;
use support::{assert_exit, output, stderr, stdout};

/// Writes context `name` under `config/nats/context/` and returns the
/// `nats` directory.
fn write_context(config: &Path, name: &str, context: serde_json::Value) {
    let dir = config.join("nats").join("context");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{name}.json")), context.to_string()).unwrap();
}

fn user_password_server() -> NatsServer {
    NatsServer::builder()
        .extra_config("authorization { user: a, password: b }")
        .start()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn context_files_are_read_from_flag_env_and_selection() {
    let server = user_password_server();
    let url = server.url();
    let home = tempfile::tempdir().unwrap();
    let config = home.path().join(".config");
    write_context(
        &config,
        "dev",
        json!({"description": "test", "url": url, "user": "a", "password": "b", "token": "", "creds": "", "nkey": "", "cert": "", "key": "", "ca": "", "jetstream_domain": ""}),
    );
    write_context(
        &config,
        "wrong",
        json!({"url": url, "user": "a", "password": "nope"}),
    );

    // The agent itself is served through the context too.
    let mut serve = support::nap([
        "--context",
        "dev",
        "serve",
        "echo",
        "--owner",
        "ctx",
        "--name",
        "demo",
    ]);
    serve.env("HOME", home.path());
    let mut serve = support::Running::spawn(serve);
    serve
        .line_where("the ready line", |l| l.starts_with("serving "))
        .await;

    // --context NAME
    let mut cmd = support::nap(["--context", "dev", "prompt", "ctx/demo", "via flag"]);
    cmd.env("HOME", home.path());
    let out = output(cmd, "").await;
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), "via flag\n");

    // NATS_CONTEXT
    let mut cmd = support::nap(["prompt", "ctx/demo", "via env"]);
    cmd.env("HOME", home.path()).env("NATS_CONTEXT", "dev");
    let out = output(cmd, "").await;
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), "via env\n");

    // The selected context, context.txt; XDG_CONFIG_HOME replaces ~/.config.
    let xdg = tempfile::tempdir().unwrap();
    write_context(
        xdg.path(),
        "dev",
        json!({"url": url, "user": "a", "password": "b"}),
    );
    std::fs::write(xdg.path().join("nats/context.txt"), "dev\n").unwrap();
    let mut cmd = support::nap(["prompt", "ctx/demo", "via selection"]);
    cmd.env("XDG_CONFIG_HOME", xdg.path());
    let out = output(cmd, "").await;
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), "via selection\n");

    // A flag wins over the context.
    let mut cmd = support::nap([
        "--context",
        "wrong",
        "--password",
        "b",
        "prompt",
        "ctx/demo",
        "flag wins",
    ]);
    cmd.env("HOME", home.path());
    let out = output(cmd, "").await;
    assert_exit(&out, 0);

    // Bad credentials in a context: status 3, naming server, context and why.
    let mut cmd = support::nap(["--context", "wrong", "discover"]);
    cmd.env("HOME", home.path());
    let out = output(cmd, "").await;
    assert_exit(&out, 3);
    let err = stderr(&out);
    assert!(
        err.contains(&url) && err.contains("context \"wrong\""),
        "{err}"
    );
    assert!(err.contains("authorization violation"), "{err}");

    // An unknown context: status 3, saying where it was looked for.
    let mut cmd = support::nap(["--context", "nope", "discover"]);
    cmd.env("HOME", home.path());
    let out = output(cmd, "").await;
    assert_exit(&out, 3);
    assert!(stderr(&out).contains("nope.json"), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_password_and_token_flags() {
    let server = user_password_server();
    let url = server.url();
    let out = support::run(&url, &["--user", "a", "--password", "b", "discover"]).await;
    assert_exit(&out, 0);
    let out = support::run(&url, &["--user", "a", "--password", "x", "discover"]).await;
    assert_exit(&out, 3);
    let out = support::run(&url, &["discover"]).await;
    assert_exit(&out, 3);

    let server = NatsServer::builder()
        .extra_config("authorization { token: s3cret }")
        .start()
        .unwrap();
    let url = server.url();
    let out = support::run(&url, &["--token", "s3cret", "discover"]).await;
    assert_exit(&out, 0);
    let out = support::run(&url, &["--token", "wrong", "discover"]).await;
    assert_exit(&out, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nkey_user_from_a_seed_file() {
    let user = nkeys::KeyPair::new_user();
    let server = NatsServer::builder()
        .extra_config(format!(
            "authorization {{ users: [ {{ nkey: {} }} ] }}",
            user.public_key()
        ))
        .start()
        .unwrap();
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let seed = dir.path().join("user.nk");
    std::fs::write(&seed, format!("{}\n", user.seed().unwrap())).unwrap();
    let seed = seed.to_str().unwrap();

    let (_serve, id) = support::serve(
        &url,
        &["--nkey", seed, "echo", "--owner", "nk", "--name", "demo"],
    )
    .await;
    let out = support::run(&url, &["--nkey", seed, "prompt", "nk/demo", "signed in"]).await;
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), "signed in\n");
    let out = support::run(&url, &["--nkey", seed, "info", &id]).await;
    assert_exit(&out, 0);

    let out = support::run(&url, &["discover"]).await;
    assert_exit(&out, 3);
    let other = dir.path().join("other.nk");
    std::fs::write(&other, nkeys::KeyPair::new_user().seed().unwrap()).unwrap();
    let out = support::run(&url, &["--nkey", other.to_str().unwrap(), "discover"]).await;
    assert_exit(&out, 3);
}

/// A signed JWT: `claims` for `subject`, issued by `issuer` (§13.2: the
/// server's own format, ed25519-nkey).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_file_on_an_operator_mode_server() {
    let operator = nkeys::KeyPair::new_operator();
    let account = nkeys::KeyPair::new_account();
    let user = nkeys::KeyPair::new_user();
    let operator_jwt = jwt(
        &operator,
        &operator.public_key(),
        "op",
        json!({"type": "operator", "version": 2}),
    )
    .unwrap();
    let account_jwt = jwt(
        &operator,
        &account.public_key(),
        "acc",
        account_claims(json!([]), json!([])),
    )
    .unwrap();
    let user_jwt = jwt(&account, &user.public_key(), "usr", user_claims()).unwrap();
    let server = NatsServer::builder()
        .extra_config(format!(
            "operator: {operator_jwt}\nresolver: MEMORY\nresolver_preload: {{ {}: {account_jwt} }}",
            account.public_key()
        ))
        .start()
        .unwrap();
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("user.creds");
    std::fs::write(&creds, creds_text(&user_jwt, &user.seed().unwrap())).unwrap();
    let creds = creds.to_str().unwrap();

    // The context names the creds file.
    let home = tempfile::tempdir().unwrap();
    write_context(
        &home.path().join(".config"),
        "op",
        json!({"url": url, "creds": creds}),
    );

    let (_serve, _id) = support::serve(
        &url,
        &["--creds", creds, "echo", "--owner", "op", "--name", "demo"],
    )
    .await;
    let mut cmd = support::nap(["--context", "op", "prompt", "op/demo", "with creds"]);
    cmd.env("HOME", home.path());
    let out = output(cmd, "").await;
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), "with creds\n");

    let out = support::run(&url, &["discover"]).await;
    assert_exit(&out, 3);
    let out = support::run(&url, &["--creds", "/nonexistent/user.creds", "discover"]).await;
    assert_exit(&out, 3);
    assert!(
        stderr(&out).contains("/nonexistent/user.creds"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_nats_url_is_a_usage_error() {
    let out = support::run("http://127.0.0.1:4222", &["discover"]).await;
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("http"), "{}", stderr(&out));
    let mut cmd = support::nap(["discover"]);
    cmd.env("NATS_URL", "https://127.0.0.1:4222");
    let out = support::output(cmd, "").await;
    assert_exit(&out, 2);
}
