//! The end-to-end demo (`cargo xtask demo`): starts a researcher, a writer
//! and an editor agent, each its own NATS service, and a supervisor that
//! discovers them and calls each as a tool; prints which agent is working
//! and the article streaming in; then stops everything it started.
//!
//! Uses the NATS server at `--server`, else at `$NATS_URL` if one answers,
//! else starts a private one. The model comes from the environment
//! (`NAP_LLM` and a key); without one, the deterministic offline model.
//!
//! ```sh
//! cargo run -p nap-examples --bin demo -- --topic "the history of NATS"
//! ```

use std::process::ExitCode;

use clap::Parser;
use nap_examples::demo::{self, DEFAULT_TOPIC, DemoOptions};

/// Run nap's multi-agent demo.
#[derive(Debug, Parser)]
struct Args {
    /// The article's topic.
    #[arg(long, env = "NAP_DEMO_TOPIC", default_value = DEFAULT_TOPIC)]
    topic: String,
    /// NATS server URL; must answer [default: $NATS_URL if it answers, else
    /// a private nats-server]
    #[arg(long)]
    server: Option<String>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let _traces = nap_examples::init_logging();
    let args = Args::parse();
    let options = DemoOptions {
        server: args.server,
        topic: args.topic,
    };
    match demo::run(options, &mut std::io::stdout()).await {
        Ok(_) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("demo failed: {error}");
            ExitCode::FAILURE
        }
    }
}
