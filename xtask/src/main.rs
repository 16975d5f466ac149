//! `cargo xtask`: the project's tasks, in Rust.
//!
//! - `cargo xtask setup`: install what the tests need (nats-server 2.9 and
//!   the current 2.x, the Python peers in a project-local venv); quick when
//!   all is present.
//! - `cargo xtask test [--server 2.9|current|both]`: setup, fmt, clippy, the
//!   test suite on each selected nats-server (default both), the doc tests.
//! - `cargo xtask bench`: nap's host and caller beside raw async-nats.
//! - `cargo xtask conformance agent|caller ...`: the conformance suite.
//! - `cargo xtask dist`: the `nap` binary for this machine as a PyPI wheel
//!   and npm packages, with SHA256SUMS, in target/dist/.
//! - `cargo xtask install-test`: dist, then the packages installed offline
//!   into fresh environments and the installed `nap` tested.
//! - `cargo xtask demo [--topic TEXT]`: the end-to-end multi-agent demo.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bench;
mod cmd;
mod conformance;
mod demo;
mod dist;
mod install;
mod publish;
mod setup;
mod test;

/// The project's tasks.
#[derive(Debug, Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "nap project tasks"
)]
struct Cli {
    #[command(subcommand)]
    command: Task,
}

/// One task.
#[derive(Debug, Subcommand)]
enum Task {
    /// Install what the tests need when missing: nats-server 2.9 (Debian)
    /// and the current 2.x (PyPI wheel), and a Python venv with the
    /// protocol's Python peers under target/nap-tools/.
    Setup,
    /// Run setup, then fmt, clippy, the test suite on each selected
    /// nats-server and the doc tests; stop at the first failing step (the
    /// suite still runs on every selected server).
    Test {
        /// The nats-server(s) the suite runs on: `2.9` (Debian), `current`
        /// (the pinned PyPI wheel) or `both`, one after the other.
        #[arg(long, value_enum, default_value = "both")]
        server: test::ServerChoice,
        /// Extra arguments for the test runner (cargo nextest run, or cargo
        /// test), given after `--`.
        #[arg(last = true)]
        runner_args: Vec<String>,
    },
    /// Print nap's performance figures beside a raw async-nats baseline
    /// measured in the same run (release build, private nats-server).
    Bench,
    /// Run the conformance suite: `agent --server URL [--name N | --instance
    /// ID | --subject S]` or `caller --run 'COMMAND {subject} {prompt}'`
    /// (see conformance/README.md); exits non-zero when a MUST fails.
    Conformance {
        /// Arguments for `nap-conformance` (`agent ...` or `caller ...`).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Package the `nap` binary for this machine into target/dist/: a PyPI
    /// wheel (maturin, bin bindings), the npm launcher and platform
    /// packages, SHA256SUMS; reproducible (SOURCE_DATE_EPOCH).
    Dist,
    /// Setup, `dist`, then install the packages offline into fresh
    /// environments and test the installed `nap` (what `cargo xtask test`
    /// runs last).
    InstallTest,
    /// Run the end-to-end multi-agent demo: researcher, writer and editor
    /// agents coordinated by a supervisor (`--topic TEXT`, `--server URL`).
    Demo {
        /// Arguments for the demo binary.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

/// Setup, dist, and the install checks.
fn install_test() -> anyhow::Result<()> {
    let tools = setup::run()?;
    let artifacts = dist::run()?;
    install::run(&tools, &artifacts)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Task::Setup => setup::run().map(|_| ExitCode::SUCCESS),
        Task::Test {
            server,
            runner_args,
        } => test::run(server, &runner_args).map(|()| ExitCode::SUCCESS),
        Task::Bench => bench::run().map(|()| ExitCode::SUCCESS),
        Task::Dist => dist::run().map(|_| ExitCode::SUCCESS),
        Task::InstallTest => install_test().map(|()| ExitCode::SUCCESS),
        Task::Conformance { args } => conformance::run(&args),
        Task::Demo { args } => Ok(demo::run_with(&args)),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
