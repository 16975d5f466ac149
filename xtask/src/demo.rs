//! `cargo xtask demo [--topic TEXT]`: the end-to-end multi-agent demo.
//!
//! Makes sure a `nats-server` can be found (installing only it when none is),
//! then runs the `demo` binary of `nap-examples`, which uses the server at
//! `$NATS_URL` if one answers and otherwise starts a private one. Runs fully
//! offline with the deterministic model; `NAP_LLM` and a key select a real
//! one. The topic can also come from `NAP_DEMO_TOPIC`.

use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::{cmd, setup};

/// Runs the demo; `args` go to the demo binary (`--topic TEXT`, `--server URL`).
pub fn run_with(args: &[String]) -> ExitCode {
    match demo(args) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn demo(args: &[String]) -> Result<ExitCode> {
    // Only nats-server is needed: installed when missing, and nothing else
    // (the browser and the Python peers are for the tests).
    let nats_server = match nap_testkit::find_nats_server() {
        Ok(path) => path,
        Err(_) => {
            println!("==> installing nats-server (none found)");
            setup::nats_server_only().context("could not install nats-server")?
        }
    };
    let mut cargo = cmd::cargo();
    cargo
        .current_dir(cmd::workspace_root())
        .args(["run", "-q", "-p", "nap-examples", "--bin", "demo", "--"])
        .args(args)
        .env("NAP_NATS_SERVER", &nats_server);
    let line = cmd::display(&cargo);
    let extra: String = args.iter().map(|a| format!(" {a}")).collect();
    println!(
        "==> cargo run -q -p nap-examples --bin demo --{extra} (the first build takes a few minutes)"
    );
    let status = cargo
        .status()
        .with_context(|| format!("could not run `{line}`"))?;
    Ok(match status.code() {
        Some(0) => ExitCode::SUCCESS,
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        None => ExitCode::FAILURE,
    })
}
