//! Serves the echo agent on NATS until SIGTERM or Ctrl-C, then stops
//! gracefully (prompts in flight finish).
//!
//! ```sh
//! cargo run -p nap-examples --bin echo-agent -- --owner alice --name demo
//! ```

use std::time::Duration;

use clap::Parser;
use nap_examples::{EchoAgent, init_logging};
use nap_nats::AgentService;
use nap_proto::ByteSize;

/// Serve an echo agent (metadata.agent = "echo") on NATS.
#[derive(Debug, Parser)]
struct Args {
    /// NATS server URL [default: $NATS_URL, then nats://127.0.0.1:4222]
    #[arg(long)]
    server: Option<String>,
    /// The owner token (§2).
    #[arg(long, default_value = "nap")]
    owner: String,
    /// The instance name token (§2).
    #[arg(long, default_value = "echo")]
    name: String,
    /// metadata.session (§3.2), for session-aware use.
    #[arg(long)]
    session: Option<String>,
    /// Heartbeat interval in seconds (§8.2).
    #[arg(long, default_value_t = 30.0)]
    heartbeat: f64,
    /// Largest request accepted, e.g. 512KB or 1MB (§2.1).
    #[arg(long, default_value = "1MB")]
    max_payload: ByteSize,
    /// Refuse attachments (§2.1 attachments_ok=false).
    #[arg(long)]
    no_attachments: bool,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let _traces = init_logging();
    let args = Args::parse();
    let nats = nap_examples::connect(args.server, None, None)
        .await
        .map_err(|e| e.to_string())?
        .nats;
    let mut builder = AgentService::builder("echo", &args.owner, &args.name)
        .description("nap echo agent: streams the prompt back")
        .heartbeat_interval(Duration::from_secs_f64(args.heartbeat))
        .max_payload(args.max_payload)
        .attachments_ok(!args.no_attachments);
    if let Some(session) = args.session {
        builder = builder.session(session);
    }
    let running = builder.start(nats, EchoAgent::default()).await?;
    println!(
        "echo-agent ready: instance {} on {}",
        running.id(),
        running.prompt_subject()
    );
    // SIGTERM or Ctrl-C: finish what is in flight, then leave.
    nap_nats::shutdown_signal().await?;
    running.stop().await;
    Ok(())
}
