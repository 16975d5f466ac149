//! `nap chat TARGET`: a line-editing conversation with one agent.
//!
//! TARGET is resolved once; every line goes to that agent's prompt subject
//! (§4.3), so the conversation stays with the same agent, instance name and
//! session for its whole length. Every prompt carries the envelope field
//! `session` (§5.6) with one fresh value per chat, so that an agent that
//! keeps conversations (nap's `LlmAgent` does, per verified sender or
//! per this field) continues this one and no other. History and line
//! editing come from
//! rustyline; Ctrl-C cancels the reply being streamed (the stream is
//! dropped, §6.7) or clears the line being typed; Ctrl-D exits.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use clap::Args;
use nap_nats::PromptOptions;
use rustyline::DefaultEditor;
use rustyline::error::ReadlineError;

use super::client;
use super::prompt::{Asker, Outcome, Render, seconds, stream_reply};
use crate::connect::Connection;
use crate::failure::{Failure, Status};
use crate::target::{self, Purpose};

/// Arguments of `nap chat`.
#[derive(Debug, Args)]
pub struct ChatArgs {
    /// A name, agent/owner/name, owner/name or an instance id
    target: String,
    /// Keep the line history in FILE across sessions
    #[arg(long, value_name = "FILE")]
    history: Option<PathBuf>,
    /// Give up on a reply when the agent is silent this long, in seconds (§6.6)
    #[arg(long, default_value_t = 60.0, value_name = "SECS")]
    timeout: f64,
}

/// One line read from the user.
enum Line {
    Text(String),
    Interrupted,
    Eof,
}

async fn read_line(
    editor: Arc<Mutex<DefaultEditor>>,
    prompt: &'static str,
) -> Result<Line, Failure> {
    tokio::task::spawn_blocking(move || {
        let mut editor = editor.lock().unwrap_or_else(|p| p.into_inner());
        match editor.readline(prompt) {
            Ok(line) => Ok(Line::Text(line)),
            Err(ReadlineError::Interrupted) => Ok(Line::Interrupted),
            Err(ReadlineError::Eof) => Ok(Line::Eof),
            Err(e) => Err(e),
        }
    })
    .await
    .map_err(|e| Failure::new(Status::Usage, e))?
    .map_err(|e| {
        Failure::new(
            Status::Usage,
            anyhow::Error::new(e).context("cannot read input"),
        )
    })
}

/// Runs `nap chat`.
pub async fn run(conn: Connection, args: ChatArgs) -> Result<(), Failure> {
    let options = PromptOptions::inactivity_timeout(seconds(args.timeout, "--timeout")?);
    let client = client(&conn).await?;
    let agent = target::resolve(&client, &args.target, Purpose::Prompt).await?;
    let mut editor = DefaultEditor::new().map_err(|e| {
        Failure::new(
            Status::Usage,
            anyhow::Error::new(e).context("cannot start the line editor"),
        )
    })?;
    if let Some(path) = &args.history
        && let Err(error) = editor.load_history(path)
    {
        tracing::debug!(path = %path.display(), %error, "no history loaded");
    }
    let editor = Arc::new(Mutex::new(editor));
    let interactive = std::io::stdin().is_terminal();
    eprintln!(
        "chatting with {} (instance {}{}) on {}; Ctrl-C cancels a reply, Ctrl-D exits",
        target::label(&agent),
        agent.id(),
        agent
            .session()
            .map(|s| format!(", session {s}"))
            .unwrap_or_default(),
        agent.prompt_subject()
    );
    let prompt = if interactive { "> " } else { "" };
    // One conversation per chat (§5.6 extra field; see nap_llm::session_key).
    let conversation = serde_json::Value::String(nuid::next().to_string());
    loop {
        let text = match read_line(editor.clone(), prompt).await? {
            Line::Text(text) => text,
            Line::Interrupted => continue,
            Line::Eof => break,
        };
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        if text == "/exit" || text == "/quit" {
            break;
        }
        {
            let mut editor = editor.lock().unwrap_or_else(|p| p.into_inner());
            let _added = editor.add_history_entry(text);
        }
        let mut render = Render::new(false, None);
        render.spin(format!("waiting for {}", target::label(&agent)));
        let mut envelope = nap_proto::Envelope::text(text);
        envelope
            .extra
            .insert(nap_llm::SESSION_FIELD.to_owned(), conversation.clone());
        let stream = match client.prompt_with(&agent, envelope, options.clone()).await {
            Ok(stream) => stream,
            Err(error) => {
                render.stop_spinner();
                Failure::from(error).report();
                continue;
            }
        };
        match stream_reply(stream, &mut render, &Asker::Editor(editor.clone())).await {
            Ok(Outcome::Done) => {}
            Ok(Outcome::Cancelled) => eprintln!("[reply cancelled]"),
            // The conversation goes on after an error.
            Err(failure) => failure.report(),
        }
    }
    if let Some(path) = &args.history {
        let mut editor = editor.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(error) = editor.save_history(path) {
            eprintln!("nap: cannot save history to {}: {error}", path.display());
        }
    }
    Ok(())
}
