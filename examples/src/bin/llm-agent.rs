//! Serves an LLM-backed agent with two small real tools (UTC time,
//! arithmetic) until Ctrl-C. The model comes from the environment
//! (`NAP_LLM`, `NAP_MODEL`, `NAP_LLM_BASE_URL`, `OPENAI_API_KEY`,
//! `ANTHROPIC_API_KEY`); without one, the deterministic offline model.
//!
//! ```sh
//! cargo run -p nap-examples --bin llm-agent -- --owner alice --name helper
//! ```

use clap::Parser;
use nap_examples::init_logging;
use nap_llm::{LlmAgent, tools};
use nap_nats::AgentService;

/// Serve an LLM agent (metadata.agent = "llm") with a clock and a calculator.
#[derive(Debug, Parser)]
struct Args {
    /// NATS server URL [default: $NATS_URL, then nats://127.0.0.1:4222]
    #[arg(long)]
    server: Option<String>,
    /// The owner token (§2).
    #[arg(long, default_value = "nap")]
    owner: String,
    /// The instance name token (§2).
    #[arg(long, default_value = "llm")]
    name: String,
    /// The system prompt.
    #[arg(long)]
    system: Option<String>,
    /// metadata.session (§3.2).
    #[arg(long)]
    session: Option<String>,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let _traces = init_logging();
    let args = Args::parse();
    let mut agent = LlmAgent::builder_from_env()?
        .tool(tools::utc_now())
        .tool(tools::calculator());
    if let Some(system) = &args.system {
        agent = agent.system(system.clone());
    }
    let agent = agent.build();
    let model = agent.llm().model().to_owned();

    let nats = nap_examples::connect(args.server, None, None)
        .await
        .map_err(|e| e.to_string())?
        .nats;
    let mut builder = AgentService::builder("llm", &args.owner, &args.name)
        .description(format!(
            "nap LLM agent ({model}) with clock and calculator tools"
        ))
        .metadata("model", model.clone());
    if let Some(session) = args.session {
        builder = builder.session(session);
    }
    let running = builder.start(nats, agent).await?;
    println!(
        "llm-agent ready: instance {} on {} (model {model})",
        running.id(),
        running.prompt_subject()
    );
    // SIGTERM or Ctrl-C: finish what is in flight, then leave.
    nap_nats::shutdown_signal().await?;
    running.stop().await;
    Ok(())
}
