//! Teeth: every broken agent (and every broken caller) is caught on
//! exactly the rule it breaks, and the flawless one passes everything it
//! can be judged on.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use nap_conformance::Outcome;
use nap_conformance::agent::{self, Probe, Target};
use nap_conformance::broken::{self, Flaw};
use nap_conformance::broken_caller::CallerFlaw;
use nap_conformance::caller::{self, CallerOptions};
use nap_testkit::NatsServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_broken_agent_fails_exactly_its_rule() {
    let server = NatsServer::start().unwrap();
    let host = async_nats::connect(server.url()).await.unwrap();
    let mut running = Vec::new();
    for flaw in Flaw::ALL {
        running.push(broken::start(host.clone(), flaw).await.unwrap());
    }
    let runs = Flaw::ALL.map(|flaw| {
        let url = server.url();
        async move {
            let probe = Probe::connect(&url).await.unwrap();
            let options = common::quick(Target::Name(flaw.name().to_owned()));
            let report = agent::run_with(&probe, &options).await.unwrap();
            (flaw, report)
        }
    });
    let mut wrong = Vec::new();
    for (flaw, report) in futures::future::join_all(runs).await {
        let failed = common::failed(&report);
        if failed != flaw.expected_failures() {
            wrong.push(format!(
                "{}: expected {:?}, failed {:?}",
                flaw.name(),
                flaw.expected_failures(),
                failed
            ));
        }
        // A broken agent whose broken rule is a MUST makes the run fail.
        let must = flaw.expected_failures().iter().any(|id| {
            nap_conformance::catalogue::by_id(id).unwrap().level == nap_conformance::Level::Must
        });
        assert_eq!(report.is_compliant(), !must, "{}", flaw.name());
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    drop(running);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_broken_caller_fails_exactly_its_rule() {
    let bin = env!("CARGO_BIN_EXE_nap-conformance");
    let runs = CallerFlaw::ALL.map(|flaw| async move {
        let command = format!(
            "{bin} broken-caller --flaw {} --server {{server}} --subject {{subject}} --timeout {{timeout}} --answer {{answer}} {{prompt}}",
            flaw.name()
        );
        let report = caller::run(&CallerOptions::new(command)).await.unwrap();
        (flaw, report)
    });
    let mut wrong = Vec::new();
    for (flaw, report) in futures::future::join_all(runs).await {
        let failed = common::failed(&report);
        if failed != flaw.expected_failures() {
            wrong.push(format!(
                "{}: expected {:?}, failed {:?}\n{}",
                flaw.name(),
                flaw.expected_failures(),
                failed,
                report.json()
            ));
        }
        // Every flaw breaks a MUST; the baseline is compliant.
        assert_eq!(
            report.is_compliant(),
            flaw == CallerFlaw::None,
            "{}",
            flaw.name()
        );
        // None of them implements §13: the CID cases are skipped, not failed.
        for id in ["CID-001", "CID-002", "CID-003", "CID-004"] {
            let v = report.get(id).unwrap();
            assert_eq!(
                v.outcome,
                Outcome::Skip,
                "{}: {id}: {}",
                flaw.name(),
                v.reason
            );
        }
        // The evidence names the rule broken.
        for id in flaw.expected_failures() {
            let v = report.get(id).unwrap();
            assert!(
                v.reason.contains('§'),
                "{}: {id}: the reason names no section: {}",
                flaw.name(),
                v.reason
            );
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
