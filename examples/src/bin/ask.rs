//! Discovers an agent, prompts it, and prints the streamed reply as it arrives.
//!
//! ```sh
//! cargo run -p nap-examples --bin ask -- --owner alice --name demo "hello"
//! ```
//!
//! With `--nkey FILE` (`NATS_NKEY`) or `--creds FILE` (`NATS_CREDS`) it
//! connects as that user and signs every request (§13.6).
//!
//! Exit status: 0 on success; 1 when the agent answered with an error (code
//! and description on stderr); 2 when no agent matched or NATS is
//! unreachable; 3 when the stream broke (timeout, protocol violation).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use futures::StreamExt;
use nap_examples::init_logging;
use nap_nats::{Client, Error, Event};
use nap_proto::{Attachment, DiscoveryFilter, Envelope};

/// Prompt an agent and stream its reply to stdout.
#[derive(Debug, Parser)]
struct Args {
    /// NATS server URL [default: $NATS_URL, then nats://127.0.0.1:4222]
    #[arg(long)]
    server: Option<String>,
    /// Only agents with this metadata.agent (or subject agent token).
    #[arg(long)]
    agent: Option<String>,
    /// Only agents with this owner.
    #[arg(long)]
    owner: Option<String>,
    /// Only the instance with this name.
    #[arg(long)]
    name: Option<String>,
    /// Only agents in this session.
    #[arg(long)]
    session: Option<String>,
    /// Seconds of silence before the stream counts as lost (§6.6).
    #[arg(long, default_value_t = 60.0)]
    timeout: f64,
    /// Answer every mid-stream question with this text instead of asking on stdin (§7).
    #[arg(long)]
    answer: Option<String>,
    /// Attach a file (repeatable).
    #[arg(long = "attach")]
    attachments: Vec<PathBuf>,
    /// Connect as the NKEY user of this seed file, and sign with it (§13).
    #[arg(long, env = "NATS_NKEY", conflicts_with = "creds")]
    nkey: Option<PathBuf>,
    /// Connect with this credentials file, and sign with its seed (§13).
    #[arg(long, env = "NATS_CREDS")]
    creds: Option<PathBuf>,
    /// The prompt.
    text: String,
}

#[tokio::main]
async fn main() -> ExitCode {
    let _traces = init_logging();
    let args = Args::parse();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err((code, message)) => {
            eprintln!("{message}");
            ExitCode::from(code)
        }
    }
}

async fn run(args: Args) -> Result<(), (u8, String)> {
    let connection =
        nap_examples::connect(args.server.clone(), args.nkey.clone(), args.creds.clone())
            .await
            .map_err(|e| (2, e.to_string()))?;
    let (nats, key) = (connection.nats, connection.key);
    let mut builder = Client::builder(nats);
    if let Some(key) = key {
        builder = builder.sender_key(key);
    }
    let client = builder.build().await.map_err(|e| (2, e.to_string()))?;
    let filter = DiscoveryFilter {
        agent: args.agent.clone(),
        owner: args.owner.clone(),
        name: args.name.clone(),
        session: args.session.clone(),
        ..DiscoveryFilter::any()
    };
    let handle = client.find(filter).await.map_err(|e| (2, e.to_string()))?;

    let mut envelope = Envelope::text(args.text.clone());
    for path in &args.attachments {
        let content =
            std::fs::read(path).map_err(|e| (2, format!("cannot read {}: {e}", path.display())))?;
        let filename = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        envelope = envelope.with_attachment(Attachment::new(filename, content));
    }
    let options =
        nap_nats::PromptOptions::inactivity_timeout(Duration::from_secs_f64(args.timeout));
    let mut stream = client
        .prompt_with(&handle, envelope, options)
        .await
        .map_err(|e| (exit_code(&e), e.to_string()))?;
    let mut stdout = std::io::stdout();
    while let Some(event) = stream.next().await {
        match event {
            Ok(Event::Response(data)) => {
                let _ = write!(stdout, "{}", data.text());
                let _ = stdout.flush();
            }
            Ok(Event::Query(query)) => {
                let answer = match &args.answer {
                    Some(a) => a.clone(),
                    None => ask_on_terminal(query.prompt()).map_err(|e| (3, e))?,
                };
                query.answer(answer).await.map_err(|e| (3, e.to_string()))?;
            }
            Ok(Event::Violation(violation)) => {
                let e = Error::Protocol(violation);
                return Err((exit_code(&e), format_error(&e)));
            }
            Ok(Event::End) => break,
            Ok(_) => {}
            Err(e) => return Err((exit_code(&e), format_error(&e))),
        }
    }
    let _ = writeln!(stdout);
    Ok(())
}

fn ask_on_terminal(question: &str) -> Result<String, String> {
    eprint!("{question} ");
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| format!("cannot read the answer: {e}"))?;
    if line.is_empty() {
        return Err(format!(
            "the agent asked {question:?} and stdin is closed; pass --answer"
        ));
    }
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

fn format_error(e: &Error) -> String {
    match e {
        Error::Remote(remote) => format!("error {}: {}", remote.code, remote.message()),
        other => other.to_string(),
    }
}

fn exit_code(e: &Error) -> u8 {
    match e {
        Error::Remote(_) => 1,
        Error::NotFound { .. } | Error::NoResponders { .. } | Error::Refused(_) => 2,
        _ => 3,
    }
}
