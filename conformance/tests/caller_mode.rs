//! Caller mode passes nap's `ask` example and the Python SDK's caller.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;

use nap_conformance::Outcome;
use nap_conformance::caller::{self, CallerOptions};

/// The `ask` binary of nap-examples, built when missing.
fn ask() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|d| d.parent()).unwrap().to_path_buf();
    let ask = dir.join("ask");
    if !ask.exists() {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = std::process::Command::new(cargo)
            .args(["build", "-q", "-p", "nap-examples", "--bin", "ask"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .unwrap();
        assert!(status.success(), "cannot build the ask example");
    }
    ask
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nap_ask_is_a_compliant_caller() {
    let command = format!(
        "{} --server {{server}} --owner {{owner}} --name {{name}} --timeout {{timeout}} --answer {{answer}} {{prompt}}",
        ask().display()
    );
    let report = caller::run(&CallerOptions::new(command)).await.unwrap();
    let failed = common::failed(&report);
    assert!(failed.is_empty(), "{}", report.json());
    // `ask` takes no key: it does not implement §13, and the CID cases say so.
    assert_identity_cases(&report, Outcome::Skip);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_caller_result_is_pinned() {
    let command = format!(
        "{} {} --server {{server}} --subject {{subject}} --timeout {{timeout}} --answer {{answer}} {{prompt}}",
        common::python().display(),
        common::script("caller.py").display()
    );
    let report = caller::run(&CallerOptions::new(command)).await.unwrap();
    let failed = common::failed(&report);
    // The Python caller shows the Nats-Service-Error header, not the JSON
    // body's message (SHOULD, §9.1).
    assert_eq!(failed, ["CALL-010"], "{}", report.json());
    assert!(report.is_compliant());
    // It implements §13: with a seed it signs, and it refuses what it cannot sign.
    assert_identity_cases(&report, Outcome::Pass);
}

/// The CID cases all have `outcome` when the machine has an
/// identity-capable server, and are skipped otherwise.
fn assert_identity_cases(report: &nap_conformance::Report, outcome: Outcome) {
    let expected = if caller::identity::identity_capable_server().is_some() {
        outcome
    } else {
        Outcome::Skip
    };
    for id in ["CID-001", "CID-002", "CID-003", "CID-004"] {
        let verdict = report.get(id).unwrap();
        assert_eq!(verdict.outcome, expected, "{id}: {}", verdict.reason);
    }
}
