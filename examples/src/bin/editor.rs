//! The demo's editor agent: given a draft, returns the final article. Serves until
//! Ctrl-C; the model comes from the environment (offline without one).
//!
//! ```sh
//! cargo run -p nap-examples --bin editor -- --server nats://127.0.0.1:4222
//! ```

use clap::Parser;
use nap_examples::demo::{Role, WorkerArgs, worker_main};

#[tokio::main]
async fn main() -> Result<(), nap_examples::demo::DemoError> {
    let _traces = nap_examples::init_logging();
    worker_main(Role::Editor, WorkerArgs::parse(), &mut std::io::stdout()).await
}
