//! Runs the caller under test once per scenario and judges what it shows.

use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;

use super::scenarios::{self, Observed, Run, SETTLE, Scenario, Scene};
use crate::agent::Probe;
use crate::case::{Evidence, Outcome};
use crate::catalogue::CALLER_CASES;
use crate::error::{Error, Result};
use crate::report::{Findings, Report};
use crate::scripted;

/// How to test a caller.
#[derive(Debug, Clone)]
pub struct CallerOptions {
    /// The command template, run with `sh -c` after substitution (see
    /// [`substitute`]).
    pub command: String,
    /// The NATS server to host the scenarios on; `None` starts a private one.
    pub server: Option<String>,
    /// The inactivity timeout the caller is told to apply (`{timeout}`).
    pub inactivity: Duration,
    /// The text the caller must answer queries with (`{answer}`).
    pub answer: String,
    /// Only these case ids (empty: all).
    pub only: Vec<String>,
}

impl CallerOptions {
    /// Defaults for `command`: private server, 3 s inactivity, answer `yes`.
    pub fn new(command: impl Into<String>) -> Self {
        CallerOptions {
            command: command.into(),
            server: None,
            inactivity: Duration::from_secs(3),
            answer: crate::agent::DEFAULT_ANSWER.to_owned(),
            only: Vec::new(),
        }
    }
}

/// Quotes `s` for `sh`.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Values for the placeholders of a command template.
#[derive(Debug, Clone)]
pub struct Placeholders {
    /// `{subject}`: the prompt subject as advertised.
    pub subject: String,
    /// `{prompt}`: the prompt text.
    pub prompt: String,
    /// `{server}`: the NATS URL.
    pub server: String,
    /// `{agent}`, `{owner}`, `{name}`: the scenario agent's identity.
    pub agent: String,
    /// See `agent`.
    pub owner: String,
    /// See `agent`.
    pub name: String,
    /// `{timeout}`: the inactivity timeout in seconds.
    pub timeout: String,
    /// `{answer}`: the text to answer queries with.
    pub answer: String,
}

/// Replaces each `{placeholder}` of `template` with its shell-quoted value.
pub fn substitute(template: &str, p: &Placeholders) -> Result<String> {
    if !template.contains("{prompt}") {
        return Err(Error::Template(
            "the template must contain {prompt} (and {subject} or {name} to find the agent)"
                .to_owned(),
        ));
    }
    Ok(template
        .replace("{subject}", &quote(&p.subject))
        .replace("{prompt}", &quote(&p.prompt))
        .replace("{server}", &quote(&p.server))
        .replace("{agent}", &quote(&p.agent))
        .replace("{owner}", &quote(&p.owner))
        .replace("{name}", &quote(&p.name))
        .replace("{timeout}", &quote(&p.timeout))
        .replace("{answer}", &quote(&p.answer)))
}

async fn run_command(line: &str, server: &str, deadline: Duration) -> Result<Run> {
    run_command_with(line, server, None, deadline).await
}

/// Runs `line` with `NATS_URL` set, and `NATS_NKEY` set to `nkey` when
/// given (unset otherwise); kills it whole after `deadline`.
pub(crate) async fn run_command_with(
    line: &str,
    server: &str,
    nkey: Option<&std::path::Path>,
    deadline: Duration,
) -> Result<Run> {
    let mut cmd = tokio::process::Command::new("sh");
    match nkey {
        Some(path) => cmd.env("NATS_NKEY", path),
        None => cmd.env_remove("NATS_NKEY"),
    };
    cmd.env_remove("NATS_CREDS");
    cmd.arg("-c")
        .arg(line)
        .env("NATS_URL", server)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let started = Instant::now();
    let mut child = cmd.spawn().map_err(|source| Error::Spawn {
        command: line.to_owned(),
        source,
    })?;
    let mut out = child.stdout.take();
    let mut err = child.stderr.take();
    let read_out = tokio::spawn(async move {
        let mut s = Vec::new();
        if let Some(o) = out.as_mut() {
            let _ = o.read_to_end(&mut s).await;
        }
        String::from_utf8_lossy(&s).into_owned()
    });
    let read_err = tokio::spawn(async move {
        let mut s = Vec::new();
        if let Some(e) = err.as_mut() {
            let _ = e.read_to_end(&mut s).await;
        }
        String::from_utf8_lossy(&s).into_owned()
    });
    let mut killed = false;
    let status = match tokio::time::timeout(deadline, child.wait()).await {
        Ok(status) => status.ok(),
        Err(_) => {
            killed = true;
            if let Some(pid) = child.id() {
                // The command runs in its own process group: end it whole.
                let _ = std::process::Command::new("kill")
                    .args(["-KILL", "--", &format!("-{pid}")])
                    .status();
            }
            let _ = child.kill().await;
            child.wait().await.ok()
        }
    };
    let ended = Instant::now();
    let secs = ended.duration_since(started).as_secs_f64();
    Ok(Run {
        exit: if killed {
            None
        } else {
            status.and_then(|s| s.code())
        },
        killed,
        stdout: read_out.await.unwrap_or_default(),
        stderr: read_err.await.unwrap_or_default(),
        secs,
        ended: Some(ended),
    })
}

/// Runs every scenario against the caller command.
pub async fn run(options: &CallerOptions) -> Result<Report> {
    // A private server lives as long as this run.
    let (_server, url) = match &options.server {
        Some(url) => (None, url.clone()),
        None => {
            let server = tokio::task::spawn_blocking(nap_testkit::NatsServer::start)
                .await
                .map_err(|e| Error::Host {
                    what: "nats-server".to_owned(),
                    message: e.to_string(),
                })??;
            let url = server.url();
            (Some(server), url)
        }
    };
    let probe = Probe::connect(&url).await?;
    let mut f = Findings::new();
    let t = options.inactivity;
    let deadline = t.mul_f64(3.0) + Duration::from_secs(15);
    for scenario in scenarios::all() {
        if !options.only.is_empty() && !options.only.iter().any(|id| id == scenario.case.id) {
            continue;
        }
        run_scenario(&scenario, options, &probe, &url, deadline, &mut f).await?;
    }
    super::identity::run(options, &mut f).await?;
    Ok(f.finish(format!("caller `{}`", options.command), CALLER_CASES))
}

async fn run_scenario(
    scenario: &Scenario,
    options: &CallerOptions,
    probe: &Probe,
    url: &str,
    deadline: Duration,
    f: &mut Findings,
) -> Result<()> {
    let scene = Scene::default();
    let config = scenario.config();
    let agent = scripted::start(
        probe.client().clone(),
        config.clone(),
        ScriptBox((scenario.script)(options.inactivity, scene.clone())),
    )
    .await?;
    let placeholders = Placeholders {
        subject: agent.prompt_subject().to_owned(),
        prompt: format!("conformance {}", scenario.case.id),
        server: url.to_owned(),
        agent: config.agent.clone(),
        owner: config.owner.clone(),
        name: config.name.clone(),
        timeout: format!("{}", options.inactivity.as_secs_f64()),
        answer: options.answer.clone(),
    };
    let line = substitute(&options.command, &placeholders)?;
    tracing::info!(case = scenario.case.id, %line, "running caller");
    let run = run_command(&line, url, deadline).await?;
    settle(probe, &scene).await;
    drop(agent);
    let last_sent = scene.last_sent.lock().ok().and_then(|at| *at);
    let seen = Observed {
        replies: scene.replies.lock().map(|r| r.clone()).unwrap_or_default(),
        silence: match (last_sent, run.ended) {
            (Some(sent), Some(ended)) => Some(ended.saturating_duration_since(sent)),
            _ => None,
        },
        timeout: options.inactivity,
    };
    let replies = &seen.replies;
    let evidence = vec![Evidence::notes(
        format!("caller run: {}", scenario.name),
        vec![
            format!("command: {line}"),
            format!(
                "exit: {:?}{}",
                run.exit,
                if run.killed { " (killed: hung)" } else { "" }
            ),
            format!("seconds: {:.2}", run.secs),
            format!("stdout: {:?}", run.stdout),
            format!("stderr: {:?}", run.stderr),
            format!("query replies received: {replies:?}"),
            match seen.silence {
                Some(s) => format!(
                    "caller exited {:.2} s after the agent last published",
                    s.as_secs_f64()
                ),
                None => "the agent's last publication was not timed".to_owned(),
            },
        ],
    )];
    let mut judge = |case, verdict: std::result::Result<String, String>| match verdict {
        Ok(why) => f.record(case, Outcome::Pass, why, evidence.clone()),
        Err(why) => f.record(case, Outcome::Fail, why, evidence.clone()),
    };
    judge(
        scenario.case,
        (scenario.judge)(&run, &seen, &options.answer),
    );
    for (case, j) in &scenario.also {
        judge(*case, j(&run, &seen, &options.answer));
    }
    Ok(())
}

/// Once the caller has exited, tells each agent still listening on a query
/// reply subject that every reply has been delivered: the settle message
/// is published after the caller's connection is gone, so it comes after
/// anything the caller sent there. Waits at most 5 s for each agent to see
/// it.
async fn settle(probe: &Probe, scene: &Scene) {
    let listening: Vec<_> = scene
        .listening
        .lock()
        .map(|mut l| l.drain(..).collect())
        .unwrap_or_default();
    for (inbox, seen) in listening {
        if let Err(e) = probe
            .client()
            .publish(inbox, bytes::Bytes::from_static(SETTLE))
            .await
        {
            tracing::warn!(error = %e, "cannot settle a query reply subject");
            continue;
        }
        let _ = probe.client().flush().await;
        // An agent that stopped listening dropped its sender: no wait.
        let _ = tokio::time::timeout(Duration::from_secs(5), seen).await;
    }
}

/// Adapts a boxed script to the `Script` bound of [`scripted::start`].
struct ScriptBox(Box<dyn scripted::Script>);

#[async_trait::async_trait]
impl scripted::Script for ScriptBox {
    async fn answer(&self, payload: bytes::Bytes, out: scripted::Out) {
        self.0.answer(payload, out).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> Placeholders {
        Placeholders {
            subject: "agents.prompt.a.o.n".into(),
            prompt: "it's here".into(),
            server: "nats://127.0.0.1:1".into(),
            agent: "a".into(),
            owner: "o".into(),
            name: "n".into(),
            timeout: "3".into(),
            answer: "yes".into(),
        }
    }

    #[test]
    fn placeholders_are_shell_quoted() {
        let line = substitute("ask {subject} {prompt} -t {timeout}", &p());
        assert_eq!(
            line.ok().as_deref(),
            Some(r"ask 'agents.prompt.a.o.n' 'it'\''s here' -t '3'")
        );
    }

    #[test]
    fn a_template_without_prompt_is_refused() {
        assert!(matches!(
            substitute("ask {subject}", &p()),
            Err(Error::Template(_))
        ));
    }
}
