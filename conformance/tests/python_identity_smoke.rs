//! The Python sender-identity peers (`tests/python/identity_host.py`,
//! `identity_caller.py`) against each other on every identity topology of
//! `nap_testkit::identity`: they are the reference the Rust side is later
//! interop-tested against, so they are checked to work first (§13).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::credentials;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use nap_testkit::identity::{RENAMED_AGENT, RENAMED_NAME, RENAMED_OWNER};
use nap_testkit::{IdentityServer, TestUser, Topology};

/// A running `identity_host.py`, killed on drop.
struct PyHost(Child);

impl Drop for PyHost {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the host as `server.host()` on the subject the callers' account
/// imports under another name, and waits for its ready line.
fn start_host(server: &IdentityServer, min_trust: &str) -> PyHost {
    let mut child = Command::new(common::python())
        .arg(common::script("identity_host.py"))
        .args(credentials(server, server.host()))
        .args(["--server", &server.url(), "--min-trust", min_trust])
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
    assert!(
        line.starts_with("ready "),
        "identity_host.py did not start: {line:?}"
    );
    host
}

/// Runs `identity_caller.py` as `user` with `extra` arguments; its stdout
/// lines (it must exit 0).
fn call(server: &IdentityServer, user: &TestUser, extra: &[&str]) -> Vec<String> {
    let out = Command::new(common::python())
        .arg(common::script("identity_caller.py"))
        .args(credentials(server, user))
        .args(["--server", &server.url()])
        .args(["--owner", RENAMED_OWNER, "--name", RENAMED_NAME])
        .args(extra)
        .arg("who am I")
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

/// A `signed` Python host: a signing caller is verified (directly and, across
/// accounts, through the renamed import), the host's registration and
/// heartbeats verify at the caller, and an unsigned caller gets 401 — from
/// its own SDK before sending, and from the host when it sends anyway.
fn signed_host(topology: Topology) {
    let server = IdentityServer::start(topology).unwrap();
    let _host = start_host(&server, "signed");
    let host_id = server.host().agent_id();
    let caller = server.caller();

    let lines = call(&server, caller, &["--report-target"]);
    assert_eq!(
        lines,
        [
            format!("target {host_id} id_sig verified"),
            format!("heartbeat verified {host_id}"),
            format!("verified {}", caller.agent_id()),
        ],
        "{topology}"
    );

    let peer = server.same_account_caller();
    assert_eq!(
        call(&server, peer, &[]),
        [format!("verified {}", peer.agent_id())],
        "{topology}"
    );

    if let Some((local, exported)) = server.renamed_prompt_subject() {
        assert_eq!(
            call(&server, caller, &["--subject", local, "--sub", exported]),
            [format!("verified {}", caller.agent_id())],
            "{topology}: through the renamed import"
        );
        // Signing the local name instead fails: the host sees the
        // exporter's subject (§13.7.1), so the rename did happen.
        let lines = call(&server, caller, &["--subject", local]);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].starts_with("error 401: "), "{topology}: {lines:?}");
    }

    assert_eq!(
        call(&server, caller, &["--identity", "none"]),
        ["error 401: signature required"],
        "{topology}: refused by the caller's SDK"
    );
    assert_eq!(
        call(&server, caller, &["--identity", "none", "--raw"]),
        ["error 401: signature required"],
        "{topology}: refused by the host"
    );
}

#[test]
fn signed_python_host_on_nkey_users() {
    signed_host(Topology::NkeyUsers);
}

#[test]
fn signed_python_host_on_named_accounts() {
    signed_host(Topology::NamedAccounts);
}

#[test]
fn signed_python_host_on_operator_mode() {
    signed_host(Topology::OperatorMode);
}

/// An `any` Python host without its own identity: it serves every sender
/// and tells them apart — verified, claimed, absent — and registers no
/// identity of its own.
#[test]
fn any_python_host_classifies_every_sender() {
    let server = IdentityServer::start(Topology::NamedAccounts).unwrap();
    let mut host = Command::new(common::python());
    host.arg(common::script("identity_host.py"))
        .args(credentials(&server, server.host()))
        .args(["--server", &server.url(), "--no-identity"])
        .args(["--owner", RENAMED_OWNER, "--name", RENAMED_NAME]);
    let mut child = host.stdout(Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _host = PyHost(child);
    assert!(line.starts_with("ready "), "{line:?}");

    let caller = server.caller();
    assert_eq!(
        call(&server, caller, &[]),
        [format!("verified {}", caller.agent_id())]
    );
    assert_eq!(
        call(&server, caller, &["--identity", "claim"]),
        [format!("claimed {}", caller.agent_id())]
    );
    assert_eq!(call(&server, caller, &["--identity", "none"]), ["absent"]);
    let lines = call(&server, caller, &["--identity", "none", "--report-target"]);
    assert_eq!(
        lines[..2],
        ["target none id_sig unverified", "heartbeat absent"]
    );
}
