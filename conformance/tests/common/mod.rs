//! Helpers shared by the conformance suite's own tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::Duration;

use nap_conformance::agent::{AgentOptions, Target};

/// The Python interpreter with the protocol's Python SDKs: `$NAP_PYTHON`,
/// else the venv `cargo xtask setup` makes. Panics (never skips) when absent.
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("NAP_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = nap_testkit::workspace_root().join("target/nap-tools/venv/bin/python");
    assert!(
        venv.exists(),
        "no Python with the protocol SDKs: set NAP_PYTHON or run `cargo xtask setup` (looked for {})",
        venv.display()
    );
    venv
}

/// A Python script of `tests/python/`.
pub fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/python")
        .join(name)
}

/// Quick agent-mode options for agents that beat every second.
pub fn quick(target: Target) -> AgentOptions {
    let mut o = AgentOptions::new(target);
    o.inactivity = Duration::from_secs(3);
    o.budget = Duration::from_secs(12);
    o
}

/// Prints the report (visible with --nocapture) and returns the failed ids.
pub fn failed(report: &nap_conformance::Report) -> Vec<&'static str> {
    println!("{}", report.table());
    report.failed_ids()
}
