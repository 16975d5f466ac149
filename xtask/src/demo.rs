//! `cargo xtask demo`.

use std::process::ExitCode;

/// There is no demo yet; say so and fail, rather than pretend.
pub fn run() -> ExitCode {
    eprintln!(
        "cargo xtask demo: not available yet; the demo arrives with the orchestrator issue \
         (crate `nap-orchestrator`)."
    );
    ExitCode::from(2)
}
