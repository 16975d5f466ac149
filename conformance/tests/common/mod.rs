//! Helpers shared by the conformance suite's own tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::Duration;

use nap_conformance::agent::{AgentOptions, Target};

/// The interop venv's python (`nap_testkit::find_python`); panics, naming
/// `cargo xtask setup`, when there is none. Interop tests never skip.
pub fn python() -> PathBuf {
    nap_testkit::find_python().unwrap_or_else(|e| panic!("{e}"))
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

/// The Python identity peers' key flags for `user`: `--creds FILE` in
/// operator mode, `--seed-file FILE` otherwise.
pub fn credentials(
    server: &nap_testkit::IdentityServer,
    user: &nap_testkit::TestUser,
) -> [String; 2] {
    match &user.creds {
        Some(creds) => ["--creds".to_owned(), creds.display().to_string()],
        None => [
            "--seed-file".to_owned(),
            server.seed_file(user).unwrap().display().to_string(),
        ],
    }
}

pub mod junit;
