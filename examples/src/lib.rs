//! Shared pieces of the example programs: the echo agent and the
//! connection flags every example takes.
//!
//! ```
//! use nap_agent::{Agent, Request, Responder};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let (out, got) = Responder::collector();
//! nap_examples::EchoAgent::default().prompt(Request::text("hello"), out).await.unwrap();
//! assert_eq!(got.text(), "hello");
//! # });
//! ```

use std::time::Duration;

use async_trait::async_trait;
use nap_agent::{Agent, AgentError, Request, Responder};

pub mod demo;

/// The prefix that makes the echo agent ask the caller a question (§7).
pub const ASK_PREFIX: &str = "ask: ";

/// Streams the prompt back, in pieces of at most this many characters.
pub const CHUNK_CHARS: usize = 64;

/// The echo agent of the examples (`metadata.agent = "echo"`):
///
/// - streams the prompt back, in several chunks when it is long;
/// - lists the attachments it received, with their sizes;
/// - on `ask: QUESTION`, asks the caller QUESTION mid-stream (§7) and
///   streams the answer back.
#[derive(Debug, Clone)]
pub struct EchoAgent {
    /// How long to wait for the answer to a question.
    pub query_timeout: Duration,
}

impl Default for EchoAgent {
    fn default() -> Self {
        EchoAgent {
            query_timeout: Duration::from_secs(60),
        }
    }
}

#[async_trait]
impl Agent for EchoAgent {
    async fn prompt(&self, request: Request, out: Responder) -> Result<(), AgentError> {
        {
            if let Some(question) = request.prompt().strip_prefix(ASK_PREFIX) {
                let answer = out.ask(question.to_owned(), self.query_timeout).await?;
                out.text(format!("you answered: {}", answer.prompt)).await?;
                return Ok(());
            }
            for piece in pieces(request.prompt(), CHUNK_CHARS) {
                out.text(piece).await?;
            }
            if !request.attachments().is_empty() {
                let list: Vec<String> = request
                    .attachments()
                    .iter()
                    .map(|a| format!("{} ({} bytes)", a.filename, a.content.len()))
                    .collect();
                out.text(format!("\nattachments: {}", list.join(", ")))
                    .await?;
            }
            Ok(())
        }
    }
}

/// Splits `text` into pieces of at most `max` characters, on char boundaries.
pub fn pieces(text: &str, max: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    chars
        .chunks(max.max(1))
        .map(|c| c.iter().collect())
        .collect()
}

/// The NATS server URL: `--server`, else `$NATS_URL`, else the local default.
pub fn server_url(flag: Option<String>) -> String {
    flag.or_else(|| std::env::var("NATS_URL").ok())
        .unwrap_or_else(|| "nats://127.0.0.1:4222".to_owned())
}

/// Logs to stderr, filtered by `RUST_LOG` (default `warn`).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
