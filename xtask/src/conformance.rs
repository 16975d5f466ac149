//! `cargo xtask conformance agent|caller ...`: setup, then the conformance
//! suite's runner (`cargo run -q -p nap-conformance -- ...`) with the tools
//! exported, its exit status passed through.

use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::cmd;
use crate::setup;

/// Runs the suite with `args` (everything after `conformance`).
pub fn run(args: &[String]) -> Result<ExitCode> {
    let tools = setup::run().context("setup failed")?;
    let mut cargo = cmd::cargo();
    cargo
        .current_dir(cmd::workspace_root())
        .args(["run", "-q", "-p", "nap-conformance", "--"])
        .args(args)
        .env("NAP_NATS_SERVER", &tools.nats_server)
        .env("NAP_PYTHON", &tools.python);
    let line = cmd::display(&cargo);
    let status = cargo
        .status()
        .with_context(|| format!("could not run `{line}`"))?;
    Ok(match status.code() {
        Some(0) => ExitCode::SUCCESS,
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        None => ExitCode::FAILURE,
    })
}
