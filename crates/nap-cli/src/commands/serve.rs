//! `nap serve echo|exec|llm|fleet`: host agents from the terminal.
//!
//! Prints one ready line on stdout,
//! `serving {agent}/{owner}/{name} as instance {id} on {subject}`, then
//! serves until Ctrl-C or SIGTERM and stops gracefully: no new prompts,
//! in-flight ones finish, the service unregisters. A second signal stops
//! at once.
//!
//! With `--count N`, or `nap serve fleet FILE`, many agents share one
//! process and one connection as a [`Fleet`]; the ready line is then
//! `serving {n} agents in one fleet: {first label} … {last label}`.

use std::collections::VecDeque;
use std::io::Write as _;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;

use async_trait::async_trait;
use clap::{Args, Subcommand};
use nap_agent::{Agent, AgentError, Request, Responder};
use nap_nats::Fleet;
use nap_nats::attachments::AttachmentSaver;
use nap_nats::{AgentService, AgentServiceBuilder, RunningAgent};
use nap_proto::ByteSize;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use nap_nats::identity::SenderKey;
use nap_proto::identity::{AgentId, MinSenderTrust};

use super::stdout_failed;

mod fleet_file;
use crate::connect::Connection;
use crate::failure::{Failure, Status};

/// Arguments of `nap serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(subcommand)]
    kind: ServeKind,
}

#[derive(Debug, Subcommand)]
enum ServeKind {
    /// Stream each prompt back; `ask: QUESTION` asks the caller QUESTION (§7)
    Echo {
        #[command(flatten)]
        host: HostArgs,
    },
    /// Run a command per prompt, the prompt on its stdin, its stdout streamed
    /// back line by line; a non-zero exit is a 500 carrying its stderr tail
    Exec {
        #[command(flatten)]
        host: HostArgs,
        /// Lines of stderr kept for the error description
        #[arg(long, default_value_t = 5, value_name = "LINES")]
        stderr_tail: usize,
        /// The command and its arguments, after `--`
        #[arg(last = true, required = true, value_name = "CMD")]
        command: Vec<String>,
    },
    /// An LLM agent, the provider from the environment (NAP_LLM, NAP_MODEL,
    /// NAP_LLM_BASE_URL, OPENAI_API_KEY, ANTHROPIC_API_KEY; none: the offline model)
    Llm {
        #[command(flatten)]
        host: HostArgs,
        /// The system prompt
        #[arg(long)]
        system: Option<String>,
    },
    /// Host the agents listed in a JSON file as one fleet: one process, one
    /// connection; `nap serve fleet --example` prints a file to start from
    Fleet {
        /// The JSON file: {"agents": [{"kind": "echo", "name": "a"}, ...]}
        #[arg(required_unless_present = "example", value_name = "FILE")]
        file: Option<std::path::PathBuf>,
        /// Print an example file and exit
        #[arg(long)]
        example: bool,
    },
}

/// Identity and limits of the hosted agent (§2, §3).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Agent")]
struct HostArgs {
    /// metadata.agent, the harness [default: echo, exec or llm]
    #[arg(long)]
    agent: Option<String>,
    /// The owner token (§2)
    #[arg(long, default_value = "nap")]
    owner: String,
    /// The instance name token (§2) [default: the kind, echo, exec or llm]
    #[arg(long)]
    name: Option<String>,
    /// metadata.session (§3.2)
    #[arg(long)]
    session: Option<String>,
    /// The service description (§3.1)
    #[arg(long)]
    description: Option<String>,
    /// Heartbeat interval in seconds (§8.2)
    #[arg(long, default_value_t = 30.0, value_name = "SECS")]
    heartbeat: f64,
    /// Largest request accepted, e.g. 512KB or 1MB (§2.1)
    #[arg(long, default_value = "1MB", value_name = "SIZE")]
    max_payload: ByteSize,
    /// Refuse attachments (attachments_ok=false, §2.1)
    #[arg(long)]
    no_attachments: bool,
    /// Extra service metadata KEY=VALUE (§3.2); repeat for more
    #[arg(long, value_name = "KEY=VALUE", value_parser = key_value)]
    metadata: Vec<(String, String)>,
    /// What the prompt endpoint requires of a sender (§13.9): any, or signed
    /// (only requests with a verified Agent-Sender are served)
    #[arg(long, value_name = "any|signed")]
    min_sender_trust: Option<MinSenderTrust>,
    /// Serve only this verified sender, an agent ID ACCOUNT.USER (§13.3,
    /// §13.7.3); repeat for more
    #[arg(long, value_name = "ID")]
    accept_sender: Vec<AgentId>,
    /// Host N agents named NAME-0 … NAME-(N-1) in one fleet, on one
    /// connection
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    count: Option<u32>,
}

fn key_value(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("{text:?} is not KEY=VALUE"))
}

impl HostArgs {
    /// The builders of the agents to host (one, or `--count` of them),
    /// with their labels.
    fn builders(
        &self,
        kind: &str,
        description: String,
        key: Option<&SenderKey>,
    ) -> Result<Vec<(AgentServiceBuilder, String)>, Failure> {
        let name = self.name.as_deref().unwrap_or(kind);
        let names: Vec<String> = match self.count {
            None => vec![name.to_owned()],
            Some(n) => (0..n).map(|i| format!("{name}-{i}")).collect(),
        };
        names
            .into_iter()
            .map(|name| {
                let builder = self.builder(kind, &name, description.clone(), key)?;
                let label = format!(
                    "{}/{}/{}",
                    self.agent.as_deref().unwrap_or(kind),
                    self.owner,
                    name
                );
                Ok((builder, label))
            })
            .collect()
    }

    /// Echo agents.
    fn echo(&self, key: Option<&SenderKey>) -> Result<fleet_file::Hosted, Failure> {
        let builders = self.builders(
            "echo",
            "nap echo agent: streams the prompt back".into(),
            key,
        )?;
        Ok((builders, Arc::new(nap_agent::echo::EchoAgent::default())))
    }

    /// Agents running `command` per prompt.
    fn exec(
        &self,
        command: &[String],
        stderr_tail: usize,
        key: Option<&SenderKey>,
    ) -> Result<fleet_file::Hosted, Failure> {
        let Some((program, rest)) = command.split_first() else {
            return Err(Failure::usage("serve exec needs a command after --"));
        };
        let agent = ExecAgent {
            program: program.clone(),
            args: rest.to_vec(),
            stderr_tail: stderr_tail.max(1),
        };
        let builders = self.builders(
            "exec",
            format!("nap exec agent: {}", command.join(" ")),
            key,
        )?;
        Ok((builders, Arc::new(agent)))
    }

    /// LLM agents, the provider from the environment.
    fn llm(
        &self,
        system: Option<String>,
        key: Option<&SenderKey>,
    ) -> Result<fleet_file::Hosted, Failure> {
        let mut agent = nap_llm::LlmAgent::builder_from_env()
            .map_err(|e| Failure::usage(format!("cannot configure the LLM: {e}")))?;
        if let Some(system) = system {
            agent = agent.system(system);
        }
        let agent = agent.build();
        let model = agent.llm().model().to_owned();
        let builders = self
            .builders("llm", format!("nap LLM agent ({model})"), key)?
            .into_iter()
            .map(|(b, label)| (b.metadata("model", model.clone()), label))
            .collect();
        Ok((builders, Arc::new(agent)))
    }

    fn builder(
        &self,
        kind: &str,
        name: &str,
        description: String,
        key: Option<&SenderKey>,
    ) -> Result<AgentServiceBuilder, Failure> {
        let heartbeat = super::prompt::seconds(self.heartbeat, "--heartbeat")?;
        let agent = self.agent.as_deref().unwrap_or(kind);
        let mut builder = AgentService::builder(agent, &self.owner, name)
            .description(self.description.clone().unwrap_or(description))
            .heartbeat_interval(heartbeat)
            .max_payload(self.max_payload)
            .attachments_ok(!self.no_attachments);
        if let Some(session) = &self.session {
            builder = builder.session(session);
        }
        for (name, value) in &self.metadata {
            builder = builder.metadata(name, value);
        }
        // §13: with a key the agent registers its identity and signs its
        // heartbeats; verification needs no key.
        if let Some(key) = key {
            builder = builder.sender_key(key.clone());
        }
        if let Some(trust) = self.min_sender_trust {
            builder = builder.min_sender_trust(trust);
        }
        if !self.accept_sender.is_empty() {
            builder = builder.accept_senders(self.accept_sender.clone());
        }
        Ok(builder)
    }
}

/// Runs `nap serve`. With `--creds`/`--nkey` the agent signs with that key.
pub async fn run(conn: Connection, args: ServeArgs) -> Result<(), Failure> {
    let Connection { nats, key } = conn;
    let key = key.as_ref();
    let (count, hosted) = match args.kind {
        ServeKind::Echo { host } => (host.count, vec![host.echo(key)?]),
        ServeKind::Exec {
            host,
            stderr_tail,
            command,
        } => (host.count, vec![host.exec(&command, stderr_tail, key)?]),
        ServeKind::Llm { host, system } => (host.count, vec![host.llm(system, key)?]),
        ServeKind::Fleet { example: true, .. } => {
            let mut out = std::io::stdout().lock();
            return writeln!(out, "{}", fleet_file::EXAMPLE).map_err(stdout_failed);
        }
        ServeKind::Fleet { file, .. } => {
            let Some(file) = file else {
                return Err(Failure::usage("serve fleet needs a FILE"));
            };
            let hosted = fleet_file::load(&file, key)?;
            (
                Some(hosted.iter().map(|(b, _)| b.len() as u32).sum()),
                hosted,
            )
        }
    };
    if count.is_none() {
        if let Some((mut builders, agent)) = hosted.into_iter().next()
            && let Some((builder, label)) = builders.pop()
        {
            return serve(nats, builder, label, agent).await;
        }
        return Err(Failure::usage("nothing to serve"));
    }
    serve_fleet(nats, hosted).await
}

async fn serve(
    nats: async_nats::Client,
    builder: AgentServiceBuilder,
    label: String,
    agent: impl Agent,
) -> Result<(), Failure> {
    let running = builder.start(nats, agent).await.map_err(start_failure)?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "serving {label} as instance {} on {}",
            running.id(),
            running.prompt_subject()
        )
        .and_then(|()| out.flush())
        .map_err(stdout_failed)?;
    }
    stop_signal().await?;
    eprintln!("stopping {label}: finishing prompts in flight (Ctrl-C again to stop at once)");
    tokio::select! {
        () = running.stop() => {}
        // A second signal stops at once: in-flight prompts are abandoned.
        stopped = stop_signal() => stopped?,
    }
    Ok(())
}

/// How many registrations are under way at once in a fleet: enough for
/// them to share round trips to the server.
const REGISTERING_AT_ONCE: usize = 512;

/// Hosts every agent of `hosted` in one fleet on `nats`.
async fn serve_fleet(
    nats: async_nats::Client,
    hosted: Vec<fleet_file::Hosted>,
) -> Result<(), Failure> {
    use futures::StreamExt as _;
    let fleet = Fleet::start(nats).await.map_err(start_failure)?;
    let labels: Vec<String> = hosted
        .iter()
        .flat_map(|(builders, _)| builders.iter().map(|(_, label)| label.clone()))
        .collect();
    let adds = hosted.into_iter().flat_map(|(builders, agent)| {
        builders
            .into_iter()
            .map(move |(builder, _)| (builder, agent.clone()))
    });
    let started: Vec<Result<RunningAgent, nap_nats::Error>> = futures::stream::iter(adds)
        .map(|(builder, agent)| fleet.add(builder, agent))
        .buffered(REGISTERING_AT_ONCE)
        .collect()
        .await;
    let mut running = Vec::with_capacity(started.len());
    for (result, label) in started.into_iter().zip(&labels) {
        match result {
            Ok(agent) => running.push(agent),
            Err(e) => {
                stop_all(running).await;
                let mut failure = start_failure(e);
                failure.error = failure.error.context(format!("could not register {label}"));
                return Err(failure);
            }
        }
    }
    {
        let mut out = std::io::stdout().lock();
        let first = labels.first().map(String::as_str).unwrap_or_default();
        let last = labels.last().map(String::as_str).unwrap_or_default();
        let span = if labels.len() > 1 {
            format!("{first} … {last}")
        } else {
            first.to_owned()
        };
        writeln!(out, "serving {} agents in one fleet: {span}", running.len())
            .and_then(|()| out.flush())
            .map_err(stdout_failed)?;
    }
    stop_signal().await?;
    eprintln!(
        "stopping {} agents: finishing prompts in flight (Ctrl-C again to stop at once)",
        running.len()
    );
    tokio::select! {
        () = stop_all(running) => {}
        stopped = stop_signal() => stopped?,
    }
    Ok(())
}

/// Stops agents concurrently.
async fn stop_all(running: Vec<RunningAgent>) {
    futures::future::join_all(running.into_iter().map(RunningAgent::stop)).await;
}

/// The failure of a registration: a usage error for a bad identity or
/// configuration, a stream error for the rest.
fn start_failure(e: nap_nats::Error) -> Failure {
    let status = match e {
        nap_nats::Error::Identity(_) | nap_nats::Error::Config { .. } => Status::Usage,
        _ => Status::Stream,
    };
    Failure::new(status, e)
}

/// Waits for Ctrl-C or SIGTERM.
async fn stop_signal() -> Result<(), Failure> {
    nap_nats::shutdown_signal()
        .await
        .map_err(|e| Failure::new(Status::Stream, e))
}

/// Runs a command per prompt: the prompt on its stdin, its stdout streamed
/// back a line at a time as response chunks (§6.3). The agent's identity is
/// in its environment (`NAP_AGENT`, `NAP_OWNER`, `NAP_NAME`,
/// `NAP_INSTANCE_ID`, `NAP_SESSION`); attachments (§5.2) are written to a
/// temporary directory named by `NAP_ATTACHMENTS`. A non-zero exit is a 500
/// (§9.2) carrying the last lines of its stderr.
#[derive(Debug, Clone)]
struct ExecAgent {
    program: String,
    args: Vec<String>,
    stderr_tail: usize,
}

impl ExecAgent {
    fn command_line(&self) -> String {
        std::iter::once(self.program.as_str())
            .chain(self.args.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

fn internal(what: &str, error: impl std::fmt::Display) -> AgentError {
    AgentError::internal(format!("{what}: {error}"))
}

/// Writes the attachments into `dir` with nap-nats's saver: names safe on
/// every OS that cannot leave `dir`, and two files of one name both kept
/// (`a.txt`, `a (1).txt`). The request's size is already bounded by
/// `max_payload` (§5.4), so the saver's own total is lifted.
fn write_attachments(
    dir: &Path,
    request: &Request,
) -> Result<(), nap_nats::attachments::SaveError> {
    let mut saver = AttachmentSaver::new(dir)?.with_limit(u64::MAX);
    for attachment in request.attachments() {
        saver.save(attachment)?;
    }
    Ok(())
}

#[async_trait]
impl Agent for ExecAgent {
    async fn prompt(&self, request: Request, out: Responder) -> Result<(), AgentError> {
        let mut command = tokio::process::Command::new(&self.program);
        command
            .args(&self.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .env("NAP_AGENT", &request.instance.agent)
            .env("NAP_OWNER", &request.instance.owner)
            .env("NAP_NAME", &request.instance.name)
            .env("NAP_INSTANCE_ID", &request.instance.instance_id)
            .env("NAP_SESSION", request.session().unwrap_or_default());
        // Kept until the command is done; removed on drop.
        let attachments = if request.attachments().is_empty() {
            None
        } else {
            let dir = tempfile::tempdir().map_err(|e| internal("cannot store attachments", e))?;
            write_attachments(dir.path(), &request)
                .map_err(|e| internal("cannot store attachments", e))?;
            command.env("NAP_ATTACHMENTS", dir.path());
            Some(dir)
        };
        let mut child = command
            .spawn()
            .map_err(|e| internal(&format!("cannot run {}", self.program), e))?;

        // The prompt on stdin, then end of file. A command that does not
        // read its stdin is fine: the broken pipe is ignored.
        let stdin = child.stdin.take();
        let prompt = request.prompt().to_owned();
        let feed = tokio::spawn(async move {
            if let Some(mut stdin) = stdin {
                let _ignored = stdin.write_all(prompt.as_bytes()).await;
                let _ignored = stdin.shutdown().await;
            }
        });
        // The stderr tail, for the error description.
        let keep = self.stderr_tail;
        let stderr = child.stderr.take();
        let tail = tokio::spawn(async move {
            let mut tail = VecDeque::new();
            if let Some(stderr) = stderr {
                let mut lines = BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if tail.len() == keep {
                        tail.pop_front();
                    }
                    tail.push_back(line);
                }
            }
            tail.into_iter().collect::<Vec<_>>()
        });
        // Stdout, a line at a time, as it arrives (§6.3).
        if let Some(stdout) = child.stdout.take() {
            let mut reader = BufReader::new(stdout);
            let mut line = Vec::new();
            loop {
                line.clear();
                let read = reader
                    .read_until(b'\n', &mut line)
                    .await
                    .map_err(|e| internal("cannot read the command's output", e))?;
                if read == 0 {
                    break;
                }
                out.text(String::from_utf8_lossy(&line).into_owned())
                    .await?;
            }
        }
        let status = child
            .wait()
            .await
            .map_err(|e| internal("cannot wait for the command", e))?;
        let _fed = feed.await;
        let tail = tail.await.unwrap_or_default();
        drop(attachments);
        if status.success() {
            return Ok(());
        }
        // §9.2: the command failed, an internal error of this agent.
        let mut description = format!("{} failed ({status})", self.command_line());
        if !tail.is_empty() {
            description.push_str(": ");
            description.push_str(&tail.join(" | "));
        }
        Err(AgentError::internal(description))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn exec_streams_stdout_and_reports_failures_with_the_stderr_tail() {
        let agent = ExecAgent {
            program: "sh".into(),
            args: vec!["-c".into(), "tr a-z A-Z; echo second".into()],
            stderr_tail: 2,
        };
        let (out, got) = Responder::collector();
        agent.prompt(Request::text("hello\n"), out).await.unwrap();
        assert_eq!(got.text(), "HELLO\nsecond\n");

        let failing = ExecAgent {
            program: "sh".into(),
            args: vec![
                "-c".into(),
                "echo one >&2; echo two >&2; echo three >&2; exit 3".into(),
            ],
            stderr_tail: 2,
        };
        let (out, _) = Responder::collector();
        let err = failing.prompt(Request::text("x"), out).await.unwrap_err();
        assert_eq!(err.code(), nap_proto::StatusCode::Internal);
        let text = err.service_error().description.clone();
        assert!(text.contains("two | three"), "{text}");
        assert!(text.ends_with("(exit status: 3): two | three"), "{text}");
    }

    #[tokio::test]
    async fn echo_streams_back_and_lists_attachments() {
        let (out, got) = Responder::collector();
        let request = Request::new(
            nap_proto::Envelope::text("hi")
                .with_attachment(nap_proto::Attachment::new("a.bin", vec![1, 2])),
        );
        nap_agent::echo::EchoAgent::default()
            .prompt(request, out)
            .await
            .unwrap();
        assert_eq!(got.text(), "hi\nattachments: a.bin (2 bytes)");
    }
}
