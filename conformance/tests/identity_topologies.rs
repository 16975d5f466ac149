//! The agent cases, §13 included, on the three identity topologies the
//! suite starts itself, against the Python SDK's host with the
//! sender-identity extension on (`tests/python/identity_host.py`, a
//! `signed` endpoint, its own identity registered and its heartbeats
//! signed). The suite tests as a caller user that, on the two account
//! topologies, is in another account. Results pinned in README.md.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use nap_conformance::agent::Target;
use nap_conformance::topologies;
use nap_testkit::Topology;

/// The Python host's pinned §1–§12 failures (as on a plain server); it
/// passes every SID case.
const PINNED: &[&str] = &["REQ-010", "REQ-011", "REQ-012", "REQ-013", "STR-011"];

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
