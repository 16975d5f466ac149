//! `cargo xtask test`: setup, fmt, clippy, tests, doc tests.

use anyhow::{Context, Result, bail};

use crate::cmd;
use crate::setup::{self, Tools};

/// Run every step in order; the first failure stops the run and is named in
/// the error.
pub fn run(runner_args: &[String]) -> Result<()> {
    header("setup");
    let tools = setup::run().context("step `setup` failed")?;

    step("fmt", &tools, &["fmt", "--all", "--", "--check"], &[])?;
    step(
        "clippy",
        &tools,
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
        &[],
    )?;
    if has_nextest() {
        step(
            "nextest",
            &tools,
            &["nextest", "run", "--workspace", "--no-fail-fast"],
            runner_args,
        )?;
    } else {
        println!("(cargo-nextest is not installed: using cargo test)");
        step("test", &tools, &["test", "--workspace"], runner_args)?;
    }
    step("doctest", &tools, &["test", "--workspace", "--doc"], &[])?;

    println!("==> all steps passed");
    Ok(())
}

fn header(name: &str) {
    println!("==> {name}");
}

/// One cargo invocation, from the workspace root, with the tools exported.
fn step(name: &str, tools: &Tools, args: &[&str], extra: &[String]) -> Result<()> {
    header(name);
    let mut cargo = cmd::cargo();
    cargo
        .current_dir(cmd::workspace_root())
        .args(args)
        .args(extra)
        .env("NAP_NATS_SERVER", &tools.nats_server)
        .env("NAP_PYTHON", &tools.python);
    let line = cmd::display(&cargo);
    let status = cargo
        .status()
        .with_context(|| format!("step `{name}` failed: could not run `{line}`"))?;
    if !status.success() {
        bail!("step `{name}` failed ({status}): `{line}`");
    }
    Ok(())
}

fn has_nextest() -> bool {
    cmd::succeeds(cmd::cargo().args(["nextest", "--version"]))
}
