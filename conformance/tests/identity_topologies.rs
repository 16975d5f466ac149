//! The agent cases, §13 included, on the three identity topologies the
//! suite starts itself, against nap's host (`nap serve echo` with the
//! host user's key, `--min-sender-trust signed`) and the Python SDK's host
//! with the sender-identity extension on (`tests/python/identity_host.py`,
//! a `signed` endpoint). Both register their identity and sign their
//! heartbeats. The suite tests as a caller user that, on the two account
//! topologies, is in another account. Results pinned in README.md.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;

use nap_conformance::agent::Target;
use nap_conformance::topologies;
use nap_testkit::Topology;

/// The Python host's pinned §1–§12 failures (as on a plain server); it
/// passes every SID case.
const PINNED: &[&str] = &["REQ-010", "REQ-011", "REQ-012", "REQ-013", "STR-011"];

const SID: [&str; 13] = [
    "SID-001", "SID-002", "SID-003", "SID-004", "SID-005", "SID-006", "SID-007", "SID-008",
    "SID-009", "SID-010", "SID-011", "SID-012", "SID-013",
];

/// The `nap` binary, built first.
fn nap() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|d| d.parent()).unwrap().to_path_buf();
    let nap = dir.join("nap");
    // Always built: cargo makes it a no-op when it is fresh, and a stale
    // binary would test old code.
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = std::process::Command::new(cargo)
        .args(["build", "-q", "-p", "nap-cli", "--bin", "nap"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .unwrap();
    assert!(status.success(), "cannot build nap");
    nap
}

fn assert_all_sid_pass(topology: Topology, report: &nap_conformance::Report) {
    for id in SID {
        let v = report.get(id).unwrap();
        assert_eq!(
            v.outcome,
            nap_conformance::Outcome::Pass,
            "{topology} {id}: {}",
            v.reason
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nap_host_on_every_topology() {
    // `nap` reads the key from NATS_NKEY / NATS_CREDS, as the NATS tools do.
    let command = format!(
        "exec {} serve echo --owner conformance --name {{name}} --min-sender-trust signed --heartbeat 1",
        nap().display()
    );
    let options = common::quick(Target::Any);
    let runs = topologies::run_agent(&command, "nap-identity", &Topology::ALL, &options)
        .await
        .unwrap();
    assert_eq!(runs.len(), 3);
    for run in runs {
        let failed = common::failed(&run.report);
        assert!(failed.is_empty(), "{}: {}", run.topology, run.report.json());
        assert_all_sid_pass(run.topology, &run.report);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_identity_host_on_every_topology() {
    let command = format!(
        "exec {} {} --server {{server}} --name {{name}} --owner conformance --agent pyid --min-trust signed --heartbeat 1 ${{NATS_NKEY:+--seed-file \"$NATS_NKEY\"}} ${{NATS_CREDS:+--creds \"$NATS_CREDS\"}}",
        common::python().display(),
        common::script("identity_host.py").display()
    );
    let options = common::quick(Target::Any);
    let runs = topologies::run_agent(&command, "py-identity", &Topology::ALL, &options)
        .await
        .unwrap();
    assert_eq!(runs.len(), 3);
    for run in runs {
        let failed = common::failed(&run.report);
        assert_eq!(failed, PINNED, "{}: {}", run.topology, run.report.json());
        for id in [
            "SID-001", "SID-002", "SID-003", "SID-004", "SID-005", "SID-006", "SID-007", "SID-008",
            "SID-009", "SID-010", "SID-011", "SID-012", "SID-013",
        ] {
            let v = run.report.get(id).unwrap();
            assert_eq!(
                v.outcome,
                nap_conformance::Outcome::Pass,
                "{} {id}: {}",
                run.topology,
                v.reason
            );
        }
    }
}
