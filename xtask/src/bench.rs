//! `cargo xtask bench`: the performance figures, beside raw async-nats.

use anyhow::{Context, Result};

use crate::{cmd, setup};

/// Builds the benchmark in release mode and runs it; it prints its figures.
pub fn run() -> Result<()> {
    let tools = setup::run().context("setup failed")?;
    let mut bench = cmd::cargo();
    bench
        .current_dir(cmd::workspace_root())
        .args(["bench", "-p", "nap-nats", "--bench", "protocol"])
        .env("NAP_NATS_SERVER", &tools.nats_server);
    cmd::run(&mut bench)
}
