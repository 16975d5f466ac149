//! The demo's researcher agent: given a topic, returns notes. Serves until
//! Ctrl-C; the model comes from the environment (offline without one).
//!
//! ```sh
//! cargo run -p nap-examples --bin researcher -- --server nats://127.0.0.1:4222
//! ```

use clap::Parser;
use nap_examples::demo::{Role, WorkerArgs, worker_main};

#[tokio::main]
async fn main() -> Result<(), nap_examples::demo::DemoError> {
    let _traces = nap_examples::init_logging();
    worker_main(
        Role::Researcher,
        WorkerArgs::parse(),
        &mut std::io::stdout(),
    )
    .await
}
