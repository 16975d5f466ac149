//! `cargo xtask bench`: the performance figures, beside raw async-nats.

use anyhow::{Context, Result};

use crate::{cmd, setup};

/// Builds the benchmarks in release mode and runs them; they print their
/// figures: `protocol` (latency, throughput, streaming, discovery, beside
/// raw async-nats and a hand-written exchange) and `scale` (fleets of
/// 1,000 and 10,000 agents beside one micro service per agent).
pub fn run() -> Result<()> {
    let tools = setup::run().context("setup failed")?;
    for bench_name in ["protocol", "scale"] {
        let mut bench = cmd::cargo();
        bench
            .current_dir(cmd::workspace_root())
            .args(["bench", "-p", "nap-nats", "--bench", bench_name])
            .env("NAP_NATS_SERVER", &tools.nats_server);
        cmd::run(&mut bench)?;
    }
    Ok(())
}
