//! Caller mode passes nap's `ask` example and the Python SDK's caller.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;

use nap_conformance::Outcome;
use nap_conformance::caller::{self, CallerOptions};

/// The `ask` binary of nap-examples, built first.
fn ask() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|d| d.parent()).unwrap().to_path_buf();
    let ask = dir.join("ask");
    // Always built: cargo makes it a no-op when it is fresh, and a stale
    // binary would test old code.
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = std::process::Command::new(cargo)
        .args(["build", "-q", "-p", "nap-examples", "--bin", "ask"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .unwrap();
    assert!(status.success(), "cannot build ask");
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
    // With NATS_NKEY it signs, and it refuses what it cannot sign.
    assert_identity_cases(&report, Outcome::Pass);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_that_ignores_its_seed_does_not_implement_identity() {
    // The Python caller with NATS_NKEY removed: it connects without a key
    // and sends no Agent-Sender, so the CID cases are skipped, not failed.
    let command = format!(
        "env -u NATS_NKEY {} {} --server {{server}} --subject {{subject}} --timeout {{timeout}} --answer {{answer}} {{prompt}}",
        common::python().display(),
        common::script("caller.py").display()
    );
    let mut options = CallerOptions::new(command);
    options.only = ["CID-001", "CID-002", "CID-003", "CID-004"]
        .map(str::to_owned)
        .to_vec();
    let report = caller::run(&options).await.unwrap();
    assert_identity_cases(&report, Outcome::Skip);
    if caller::identity::identity_capable_server().is_some() {
        assert!(
            report
                .get("CID-001")
                .unwrap()
                .reason
                .contains("does not implement §13"),
            "{}",
            report.json()
        );
    }
}
