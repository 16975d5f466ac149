//! The report files for CI: `--junit FILE` is JUnit XML that the Jenkins
//! xUnit schema accepts (checked with `xmllint --schema`), one testcase per
//! case, a failure per failed case and a skip per skipped one, matching the
//! JSON report of the same run; `--markdown FILE` is the summary a pull
//! request comment shows. Run through the `nap-conformance` binary, as CI
//! would, against a compliant and a broken agent.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use nap_conformance::broken::{self, Flaw};
use nap_conformance::catalogue::AGENT_CASES;
use nap_testkit::NatsServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn junit_and_markdown_reports_of_agent_runs() {
    let server = NatsServer::start().unwrap();
    let host = async_nats::connect(server.url()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut running = Vec::new();
    for flaw in [Flaw::None, Flaw::NoAck] {
        running.push(broken::start(host.clone(), flaw).await.unwrap());
    }
    for (flaw, code) in [(Flaw::None, 0), (Flaw::NoAck, 1)] {
        let junit = dir.path().join(format!("{}.xml", flaw.name()));
        let markdown = dir.path().join(format!("{}.md", flaw.name()));
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_nap-conformance"))
            .args(["agent", "--server", &server.url(), "--name", flaw.name()])
            .args(["--inactivity", "3", "--budget", "12", "--json"])
            .arg("--junit")
            .arg(&junit)
            .arg("--markdown")
            .arg(&markdown)
            .output()
            .await
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(code),
            "{}: {}",
            flaw.name(),
            String::from_utf8_lossy(&out.stderr)
        );
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let cases = common::junit::check(&junit);
        assert_eq!(cases.len(), AGENT_CASES.len(), "one testcase per case");
        common::junit::assert_matches_json(&cases, &report);
        let failed: Vec<&str> = cases
            .iter()
            .filter(|c| c.outcome == "fail")
            .map(|c| c.id.as_str())
            .collect();
        assert_eq!(failed, flaw.expected_failures(), "{}", flaw.name());

        let md = std::fs::read_to_string(&markdown).unwrap();
        let verdict = if code == 0 {
            "✅ compliant"
        } else {
            "❌ NOT compliant"
        };
        assert!(md.contains(verdict), "{md}");
        assert_eq!(
            md.matches("<details>").count(),
            failed.len(),
            "one folded evidence block per failure: {md}"
        );
        for case in AGENT_CASES {
            assert!(
                md.contains(&format!("| {} |", case.id)),
                "{}: {md}",
                case.id
            );
        }
    }
    // --markdown appends, as $GITHUB_STEP_SUMMARY is shared by a job's steps.
    let shared = dir.path().join("summary.md");
    for _ in 0..2 {
        let status = tokio::process::Command::new(env!("CARGO_BIN_EXE_nap-conformance"))
            .args(["agent", "--server", &server.url(), "--name", "compliant"])
            .args(["--inactivity", "3", "--budget", "12", "--markdown"])
            .arg(&shared)
            .stdout(std::process::Stdio::null())
            .status()
            .await
            .unwrap();
        assert!(status.success());
    }
    let md = std::fs::read_to_string(&shared).unwrap();
    assert_eq!(md.matches("### nap conformance (agent)").count(), 2);
    drop(running);
}

#[test]
fn an_unwritable_report_file_is_a_usage_error_not_a_verdict() {
    // No server is needed to find out that the file cannot be written, but
    // the run comes first: the error names the file after the suite ran, so
    // it is exercised through the library's writer directly.
    let report = nap_conformance::report::Findings::new().finish("t", AGENT_CASES);
    let args = nap_conformance::cli::OutputArgs {
        junit: Some(Path::new("/nonexistent-dir/report.xml").to_path_buf()),
        ..Default::default()
    };
    let run = nap_conformance::export::RunInfo::new(
        "agent",
        std::time::SystemTime::now(),
        std::time::Duration::ZERO,
    );
    let err = nap_conformance::cli::finish_with(&report, &run, &args).unwrap_err();
    assert!(
        matches!(err, nap_conformance::Error::WriteReport { .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains("/nonexistent-dir/report.xml"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn junit_report_of_a_caller_run() {
    let bin = env!("CARGO_BIN_EXE_nap-conformance");
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("caller.xml");
    let command = format!(
        "{bin} broken-caller --flaw ack-only-timer --server {{server}} --subject {{subject}} --timeout {{timeout}} --answer {{answer}} {{prompt}}"
    );
    let out = tokio::process::Command::new(bin)
        .args(["caller", "--run", &command, "--json"])
        .args(["--only", "CALL-001", "--only", "CALL-011"])
        .arg("--junit")
        .arg(&junit)
        .output()
        .await
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let cases = common::junit::check(&junit);
    assert_eq!(cases.len(), nap_conformance::catalogue::CALLER_CASES.len());
    common::junit::assert_matches_json(&cases, &report);
    let outcome = |id: &str| cases.iter().find(|c| c.id == id).unwrap().outcome.clone();
    assert_eq!(outcome("CALL-001"), "pass");
    assert_eq!(outcome("CALL-011"), "fail");
    assert_eq!(outcome("CALL-002"), "skip");
    let failure = &cases.iter().find(|c| c.id == "CALL-011").unwrap().detail;
    assert!(failure.contains("§6.6"), "{failure}");
    assert!(
        failure.contains("broken-caller"),
        "the evidence names the command: {failure}"
    );
}
