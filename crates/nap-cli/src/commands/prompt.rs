//! `nap prompt TARGET TEXT`: one prompt, the reply streamed to stdout as it
//! arrives (§5, §6), queries asked on the terminal (§7), errors on stderr
//! with their code (§9).
//!
//! The streaming part ([`stream_reply`], [`Render`], [`Asker`]) is shared
//! with `nap chat`.

use std::io::{IsTerminal, Read as _, Write as _};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Args;
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use nap_nats::attachments::AttachmentSaver;
use nap_nats::{Error, Event, PromptOptions, PromptStream};
use nap_proto::{Attachment, Chunk, Envelope, ResponseData, StatusToken};
use rustyline::DefaultEditor;
use rustyline::error::ReadlineError;
use serde_json::json;

use super::{client, stdout_failed};
use crate::connect::Connection;
use crate::failure::{Failure, Status};
use crate::target::{self, Purpose};

/// Arguments of `nap prompt`.
#[derive(Debug, Args)]
pub struct PromptArgs {
    /// A name, agent/owner/name, owner/name or an instance id
    target: String,
    /// The prompt; `-` reads it from stdin
    text: String,
    /// Send FILE as an attachment (§5.2); repeat for more
    #[arg(long, short = 'a', value_name = "FILE")]
    attach: Vec<PathBuf>,
    /// Print every chunk as one JSON line ({"type":..,"data":..}, §6.2), then {"type":"end"}
    #[arg(long)]
    json: bool,
    /// Answer every query (§7) with TEXT instead of asking on the terminal
    #[arg(long, value_name = "TEXT")]
    answer: Option<String>,
    /// Give up when the agent is silent this long, in seconds (§6.6)
    #[arg(long, default_value_t = 60.0, value_name = "SECS")]
    timeout: f64,
    /// Save attachments of the reply (and of its questions) into DIR
    /// (created owner-only when missing, refused when DIR itself is a link;
    /// files 0600, names made safe; never overwrites or writes through a
    /// link: a taken name gets ` (1)`; at most 64 MiB in all)
    #[arg(long, value_name = "DIR")]
    save_attachments: Option<PathBuf>,
}

/// Runs `nap prompt`.
pub async fn run(conn: Connection, args: PromptArgs) -> Result<(), Failure> {
    let from_stdin = args.text == "-";
    let text = if from_stdin {
        read_stdin().await?
    } else {
        args.text.clone()
    };
    if text.is_empty() {
        return Err(Failure::usage("the prompt is empty (§5.1)"));
    }
    let envelope = envelope(text, &args.attach)?;
    let options = PromptOptions::inactivity_timeout(seconds(args.timeout, "--timeout")?);
    let asker = match &args.answer {
        Some(answer) => Asker::Fixed(answer.clone()),
        None if !from_stdin && std::io::stdin().is_terminal() => Asker::Terminal,
        None if from_stdin => Asker::Refuse("stdin carried the prompt"),
        None => Asker::Refuse("stdin is not a terminal"),
    };

    // Checked before anything is sent: a directory that cannot be used
    // (a link, a file) fails the command at once.
    let saver = match &args.save_attachments {
        Some(dir) => Some(
            AttachmentSaver::new(dir)
                .map_err(|e| Failure::new(Status::Usage, anyhow::Error::new(e)))?,
        ),
        None => None,
    };
    let mut render = Render::new(args.json, saver);
    render.spin(format!("looking for {}", args.target));
    let client = client(&conn).await?;
    let agent = target::resolve(&client, &args.target, Purpose::Prompt)
        .await
        .inspect_err(|_| render.stop_spinner())?;
    render.spin(format!("waiting for {}", target::label(&agent)));
    let stream = client
        .prompt_with(&agent, envelope, options)
        .await
        .inspect_err(|_| render.stop_spinner())?;
    match stream_reply(stream, &mut render, &asker).await? {
        Outcome::Done => Ok(()),
        Outcome::Cancelled => Err(Failure::interrupted()),
    }
}

/// A positive duration from a number of seconds.
pub fn seconds(secs: f64, flag: &str) -> Result<Duration, Failure> {
    Duration::try_from_secs_f64(secs)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| Failure::usage(format!("{flag} must be a positive number of seconds")))
}

/// The whole of stdin, trailing line breaks removed.
async fn read_stdin() -> Result<String, Failure> {
    let read = tokio::task::spawn_blocking(|| {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).map(|_| text)
    })
    .await
    .map_err(|e| Failure::new(Status::Usage, e))?;
    let text = read.map_err(|e| {
        Failure::new(
            Status::Usage,
            anyhow::Error::new(e).context("cannot read the prompt from stdin"),
        )
    })?;
    Ok(text.trim_end_matches(['\n', '\r']).to_owned())
}

/// The request envelope (§5.1): the text and each file as an attachment
/// named after its file name (§5.2).
fn envelope(text: String, files: &[PathBuf]) -> Result<Envelope, Failure> {
    let mut envelope = Envelope::text(text);
    for path in files {
        let content = std::fs::read(path).map_err(|e| {
            Failure::new(
                Status::Usage,
                anyhow::Error::new(e).context(format!("cannot read attachment {}", path.display())),
            )
        })?;
        let filename = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string());
        envelope = envelope.with_attachment(Attachment::new(filename, content));
    }
    Ok(envelope)
}

/// How a reply stream ended, when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The terminator arrived (§6.5).
    Done,
    /// The user cancelled it (Ctrl-C); the stream was dropped (§6.7).
    Cancelled,
}

/// Where answers to the agent's queries (§7) come from.
#[derive(Debug)]
pub enum Asker {
    /// The same answer for every query.
    Fixed(String),
    /// A line read from the terminal.
    Terminal,
    /// A line read with the chat's line editor.
    Editor(Arc<Mutex<DefaultEditor>>),
    /// No way to answer: the query is refused, for this reason.
    Refuse(&'static str),
}

impl Asker {
    /// The answer to `question`; `None` when the user cancelled.
    async fn ask(&self, id: &str, question: &str) -> Result<Option<String>, Failure> {
        match self {
            Asker::Fixed(answer) => Ok(Some(answer.clone())),
            Asker::Refuse(reason) => Err(Failure::usage(format!(
                "the agent asked {question:?} (query {id}) and {reason}, so it cannot be \
                 answered here; pass --answer TEXT to answer it (§7)"
            ))),
            Asker::Terminal => {
                let question = question.to_owned();
                let line =
                    tokio::task::spawn_blocking(move || -> std::io::Result<Option<String>> {
                        loop {
                            let mut stderr = std::io::stderr().lock();
                            write!(stderr, "? {question} ")?;
                            stderr.flush()?;
                            let mut line = String::new();
                            if std::io::stdin().read_line(&mut line)? == 0 {
                                return Ok(None);
                            }
                            let line = line.trim_end_matches(['\n', '\r']);
                            if !line.is_empty() {
                                return Ok(Some(line.to_owned()));
                            }
                        }
                    })
                    .await
                    .map_err(|e| Failure::new(Status::Usage, e))?
                    .map_err(|e| Failure::new(Status::Usage, e))?;
                Ok(line)
            }
            Asker::Editor(editor) => {
                let editor = editor.clone();
                let prompt = format!("? {question} ");
                let line = tokio::task::spawn_blocking(move || {
                    let mut editor = editor.lock().unwrap_or_else(|p| p.into_inner());
                    loop {
                        match editor.readline(&prompt) {
                            Ok(line) if line.trim().is_empty() => continue,
                            Ok(line) => return Ok(Some(line)),
                            Err(ReadlineError::Interrupted | ReadlineError::Eof) => {
                                return Ok(None);
                            }
                            Err(e) => return Err(e),
                        }
                    }
                })
                .await
                .map_err(|e| Failure::new(Status::Usage, e))?
                .map_err(|e| Failure::new(Status::Usage, e))?;
                Ok(line)
            }
        }
    }
}

/// Writes a reply to the terminal: text to stdout as it arrives, a spinner
/// on stderr until the first chunk (when stderr is a terminal), notes about
/// attachments on stderr; or, with `--json`, one JSON line per chunk.
#[derive(Debug)]
pub struct Render {
    json: bool,
    saver: Option<AttachmentSaver>,
    spinner: Option<ProgressBar>,
    /// Whether the last text written ended a line (or nothing was written).
    at_line_start: bool,
}

impl Render {
    /// A renderer; `json` for JSON lines, `saver` to save attachments.
    pub fn new(json: bool, saver: Option<AttachmentSaver>) -> Self {
        Render {
            json,
            saver,
            spinner: None,
            at_line_start: true,
        }
    }

    /// Shows (or updates) the spinner with `message`, when stderr is a
    /// terminal and the output is not JSON.
    pub fn spin(&mut self, message: String) {
        if self.json || !std::io::stderr().is_terminal() {
            return;
        }
        let spinner = self.spinner.get_or_insert_with(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(ProgressStyle::default_spinner());
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        });
        spinner.set_message(message);
    }

    /// Removes the spinner.
    pub fn stop_spinner(&mut self) {
        if let Some(spinner) = self.spinner.take() {
            spinner.finish_and_clear();
        }
    }

    fn json_line(&self, value: &[u8]) -> Result<(), Failure> {
        let mut out = std::io::stdout().lock();
        out.write_all(value)
            .and_then(|()| out.write_all(b"\n"))
            .and_then(|()| out.flush())
            .map_err(stdout_failed)
    }

    fn text(&mut self, text: &str) -> Result<(), Failure> {
        if text.is_empty() {
            return Ok(());
        }
        let mut out = std::io::stdout().lock();
        out.write_all(text.as_bytes())
            .and_then(|()| out.flush())
            .map_err(stdout_failed)?;
        self.at_line_start = text.ends_with('\n');
        Ok(())
    }

    /// Ends the current line of text, if one is open.
    pub fn end_line(&mut self) -> Result<(), Failure> {
        if !self.at_line_start && !self.json {
            self.text("\n")?;
        }
        Ok(())
    }

    fn response(&mut self, data: ResponseData) -> Result<(), Failure> {
        self.stop_spinner();
        if self.json {
            self.json_line(&Chunk::Response(data.clone()).encode())?;
            // JSON lines carry the files; save them too when asked.
            if self.saver.is_some() {
                for attachment in data.attachments() {
                    self.attachment(attachment)?;
                }
            }
            return Ok(());
        }
        self.text(data.text())?;
        for attachment in data.attachments() {
            self.attachment(attachment)?;
        }
        Ok(())
    }

    /// The files a question (§7.1) carries: listed, and saved when asked.
    fn query_attachments(&mut self, attachments: &[Attachment]) -> Result<(), Failure> {
        if self.json && self.saver.is_none() {
            return Ok(());
        }
        for attachment in attachments {
            self.attachment(attachment)?;
        }
        Ok(())
    }

    fn attachment(&mut self, attachment: &Attachment) -> Result<(), Failure> {
        let saved = match &mut self.saver {
            Some(saver) => {
                let path = saver
                    .save(attachment)
                    .map_err(|e| Failure::new(Status::Usage, anyhow::Error::new(e)))?;
                format!(", saved as {}", path.display())
            }
            None => String::new(),
        };
        self.end_line()?;
        eprintln!(
            "[attachment {} ({} bytes){saved}]",
            attachment.filename,
            attachment.content.len()
        );
        Ok(())
    }

    fn status(&mut self, token: StatusToken) -> Result<(), Failure> {
        if self.json {
            return self.json_line(&Chunk::Status(token).encode());
        }
        tracing::debug!(status = token.as_str(), "status chunk");
        Ok(())
    }

    fn error(&mut self, error: &Error) -> Result<(), Failure> {
        self.stop_spinner();
        self.end_line()?;
        if let (true, Error::Remote(remote)) = (self.json, error) {
            let line = json!({
                "type": "error",
                "code": remote.code.to_string(),
                "description": remote.description,
                "message": remote.message(),
            });
            return self.json_line(line.to_string().as_bytes());
        }
        Ok(())
    }

    fn end(&mut self) -> Result<(), Failure> {
        self.stop_spinner();
        if self.json {
            return self.json_line(br#"{"type":"end"}"#);
        }
        self.end_line()
    }
}

/// However a reply ends (an error, Ctrl-C, a panic unwinding), no spinner
/// line is left on the terminal.
impl Drop for Render {
    fn drop(&mut self) {
        self.stop_spinner();
    }
}

/// Reads a reply to its end, rendering each event and answering queries.
/// Ctrl-C cancels: the stream is dropped (§6.7).
pub async fn stream_reply(
    mut stream: PromptStream,
    render: &mut Render,
    asker: &Asker,
) -> Result<Outcome, Failure> {
    loop {
        let event = tokio::select! {
            event = stream.next() => event,
            _ = tokio::signal::ctrl_c() => {
                render.stop_spinner();
                render.end_line()?;
                return Ok(Outcome::Cancelled);
            }
        };
        match event {
            None => {
                render.end()?;
                return Ok(Outcome::Done);
            }
            Some(Ok(Event::Ack)) => render.status(StatusToken::Ack)?,
            Some(Ok(Event::Status(token))) => render.status(StatusToken::Other(token))?,
            Some(Ok(Event::Response(data))) => render.response(data)?,
            Some(Ok(Event::Query(query))) => {
                render.stop_spinner();
                if render.json {
                    render.json_line(&Chunk::Query(query.query().clone()).encode())?;
                }
                render.end_line()?;
                render.query_attachments(query.attachments())?;
                match asker.ask(query.id(), query.prompt()).await? {
                    Some(answer) => query.answer(answer).await?,
                    None => return Ok(Outcome::Cancelled),
                }
            }
            Some(Ok(Event::End)) => {
                render.end()?;
                return Ok(Outcome::Done);
            }
            // A broken rule makes the reply untrustworthy: stop, exit 4.
            Some(Ok(Event::Violation(violation))) => {
                let error = Error::Protocol(violation);
                render.error(&error)?;
                return Err(error.into());
            }
            Some(Err(error)) => {
                render.error(&error)?;
                return Err(error.into());
            }
        }
    }
}
