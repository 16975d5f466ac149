//! The echo agent: the reference agent of nap's examples, command line and
//! conformance tests.

use std::time::Duration;

use async_trait::async_trait;

use crate::{Agent, AgentError, Request, Responder};

/// The prefix that makes the echo agent ask the caller a question (§7).
pub const ASK_PREFIX: &str = "ask: ";

/// The prompt that makes the echo agent answer with its sender as the host
/// classified it (§13.7): `verified {account}.{user}`, `claimed
/// {account}.{user}` or `absent`.
pub const WHOAMI: &str = "whoami";

/// Streams the prompt back, in pieces of at most this many characters.
pub const CHUNK_CHARS: usize = 64;

/// The echo agent of the examples (`metadata.agent = "echo"`):
///
/// - streams the prompt back, in several chunks when it is long;
/// - lists the attachments it received, with their sizes;
/// - on `ask: QUESTION`, asks the caller QUESTION mid-stream (§7) and
///   streams the answer back;
/// - on [`WHOAMI`], answers with the request's sender (§13.7) instead.
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
            if request.prompt() == WHOAMI {
                out.text(request.sender().to_string()).await?;
                return Ok(());
            }
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
