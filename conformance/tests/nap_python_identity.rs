//! Sender identity (§13) interop, both ways, on each identity topology:
//! nap's host and caller against the Python SDKs' (`identity_host.py`,
//! `identity_caller.py`).
//!
//! - A Python caller holding its seed prompts a nap host declaring
//!   `signed`: nap's agent sees it verified, with the caller's agent ID;
//!   the Python SDK verifies nap's `id_sig` and signed heartbeats; a Python
//!   caller without identity gets 401 (from its SDK, and from nap's host
//!   when it sends anyway).
//! - nap's caller prompts a Python host declaring `signed`: the Python host
//!   sees it verified; nap verifies the Python host's `id_sig` and signed
//!   heartbeats; without a key nap fails locally, before publishing.
//!
//! Tampered, replayed and transplanted headers against both hosts are the
//! SID cases of `identity_topologies.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::credentials;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nap_agent::echo::EchoAgent;
use nap_nats::identity::SenderKey;
use nap_nats::{AgentService, Client};
use nap_proto::DiscoveryFilter;
use nap_proto::identity::{MinSenderTrust, RegisteredIdentity};
use nap_testkit::identity::{RENAMED_AGENT, RENAMED_NAME, RENAMED_OWNER};
use nap_testkit::{IdentityServer, TestUser, Topology};

fn key_of(server: &IdentityServer, user: &TestUser) -> SenderKey {
    match &user.creds {
        Some(creds) => SenderKey::from_creds_file(creds).unwrap(),
        None => SenderKey::from_seed_file(server.seed_file(user).unwrap()).unwrap(),
    }
}

async fn connect(server: &IdentityServer, user: &TestUser) -> (async_nats::Client, SenderKey) {
    let key = key_of(server, user);
    let nats = key
        .apply(nap_nats::connect_options())
        .unwrap()
        .connect(server.url())
        .await
        .unwrap();
    (nats, key)
}

/// Runs `identity_caller.py` as `user`; its stdout lines (it must exit 0).
fn python_call(server: &IdentityServer, user: &TestUser, extra: &[&str]) -> Vec<String> {
    let out = Command::new(common::python())
        .arg(common::script("identity_caller.py"))
        .args(credentials(server, user))
        .args(["--server", &server.url()])
        .args(["--owner", RENAMED_OWNER, "--name", RENAMED_NAME])
        .args(extra)
        .arg("whoami")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "identity_caller.py {extra:?} failed ({}): {stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout.lines().map(str::to_owned).collect()
}

async fn python_caller_to_nap_host(topology: Topology) {
    let server = IdentityServer::start(topology).unwrap();
    let (nats, key) = connect(&server, server.host()).await;
    let running = AgentService::builder(RENAMED_AGENT, RENAMED_OWNER, RENAMED_NAME)
        .sender_key(key)
        .min_sender_trust(MinSenderTrust::Signed)
        .heartbeat_interval(Duration::from_secs(1))
        .start(nats, EchoAgent::default())
        .await
        .unwrap();
    let host_id = server.host().agent_id();
    let caller = server.caller();
    let lines = tokio::task::block_in_place(|| python_call(&server, caller, &["--report-target"]));
    assert_eq!(
        lines,
        [
            format!("target {host_id} id_sig verified"),
            format!("heartbeat verified {host_id}"),
            format!("verified {}", caller.agent_id()),
        ],
        "{topology}: the Python SDK verifies nap's registration and heartbeats, nap's host verifies the Python caller"
    );
    if let Some((local, exported)) = server.renamed_prompt_subject() {
        let lines = tokio::task::block_in_place(|| {
            python_call(&server, caller, &["--subject", local, "--sub", exported])
        });
        assert_eq!(
            lines,
            [format!("verified {}", caller.agent_id())],
            "{topology}: through the renamed import"
        );
    }
    let lines = tokio::task::block_in_place(|| {
        python_call(&server, caller, &["--identity", "none", "--raw"])
    });
    assert_eq!(
        lines,
        ["error 401: signature required"],
        "{topology}: an unsigned prompt, refused by nap's host"
    );
    running.stop().await;
}

/// A running `identity_host.py`, killed on drop.
struct PyHost(Child);

impl Drop for PyHost {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_python_host(server: &IdentityServer) -> PyHost {
    let mut child = Command::new(common::python())
        .arg(common::script("identity_host.py"))
        .args(credentials(server, server.host()))
        .args(["--server", &server.url(), "--min-trust", "signed"])
        .args(["--agent", RENAMED_AGENT, "--owner", RENAMED_OWNER])
        .args(["--name", RENAMED_NAME, "--heartbeat", "1"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let host = PyHost(child);
    assert!(line.starts_with("ready "), "identity_host.py: {line:?}");
    host
}

async fn nap_caller_to_python_host(topology: Topology) {
    let server = IdentityServer::start(topology).unwrap();
    let _host = start_python_host(&server);
    let host_id = server.host().agent_id();
    let caller = server.caller();
    let (nats, key) = connect(&server, caller).await;
    let mut builder = Client::builder(nats).sender_key(key);
    if let Some((local, exported)) = server.renamed_prompt_subject() {
        builder = builder.signed_subject(local, exported);
    }
    let client = builder.build().await.unwrap();
    let filter = DiscoveryFilter {
        owner: Some(RENAMED_OWNER.into()),
        ..DiscoveryFilter::any()
    };
    let agent = client.find(filter.clone()).await.unwrap();
    // nap verifies the Python host's id_sig ...
    assert_eq!(
        agent.identity(),
        &RegisteredIdentity::Verified(host_id.parse().unwrap()),
        "{topology}"
    );
    assert_eq!(agent.min_sender_trust(), MinSenderTrust::Signed);
    // ... the Python host verifies nap's signature (through the renamed
    // import on the account topologies) ...
    let text = agent.prompt("whoami").await.unwrap().text().await.unwrap();
    assert_eq!(
        text,
        format!("verified {}", caller.agent_id()),
        "{topology}"
    );
    // ... and nap verifies the Python host's signed heartbeats.
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(sender) = client.heartbeat_sender(agent.id()) {
            assert_eq!(sender.to_string(), host_id, "{topology}");
            break;
        }
        assert!(Instant::now() < until, "{topology}: no verified heartbeat");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Without a key, nap fails before publishing (§13.9).
    let plain = async_nats::ConnectOptions::new().nkey(server.caller().seed.clone());
    let plain = match &caller.creds {
        Some(creds) => async_nats::ConnectOptions::with_credentials_file(creds.clone())
            .await
            .unwrap(),
        None => plain,
    }
    .connect(server.url())
    .await
    .unwrap();
    let unsigned = Client::new(plain).await.unwrap();
    let agent = unsigned.find(filter).await.unwrap();
    let Err(err) = agent.prompt("whoami").await else {
        panic!("{topology}: an unsigned prompt must fail locally");
    };
    assert!(
        matches!(err, nap_nats::Error::SignatureRequired { .. }),
        "{topology}: {err}"
    );
    assert!(err.to_string().contains("§13"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_caller_to_nap_host_on_nkey_users() {
    python_caller_to_nap_host(Topology::NkeyUsers).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_caller_to_nap_host_on_named_accounts() {
    python_caller_to_nap_host(Topology::NamedAccounts).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_caller_to_nap_host_on_operator_mode() {
    python_caller_to_nap_host(Topology::OperatorMode).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nap_caller_to_python_host_on_nkey_users() {
    nap_caller_to_python_host(Topology::NkeyUsers).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nap_caller_to_python_host_on_named_accounts() {
    nap_caller_to_python_host(Topology::NamedAccounts).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nap_caller_to_python_host_on_operator_mode() {
    nap_caller_to_python_host(Topology::OperatorMode).await;
}
