//! Mid-stream queries (§7) from the agents an orchestrator calls, and the
//! caller scope through which they reach whoever prompts the orchestrator.
//!
//! When an orchestrator is itself served on NATS (a [`Supervisor`] or a
//! [`PipelineAgent`]), it runs each prompt inside [`with_caller`], which
//! makes the prompt's [`Responder`] the *current caller* of that task. A
//! remote agent's question can then be forwarded to that caller
//! ([`QueryPolicy::Forward`]), and remote calls report `done:NAME` and
//! `failed:NAME` status tokens (§6.4) to it.
//!
//! [`Supervisor`]: crate::Supervisor
//! [`PipelineAgent`]: crate::PipelineAgent

use std::future::Future;
use std::time::Duration;

use nap_agent::Responder;

tokio::task_local! {
    static CALLER: Responder;
}

/// How long a forwarded question waits for the caller's answer by default.
pub const DEFAULT_FORWARD_TIMEOUT: Duration = Duration::from_secs(120);

/// What to do when a remote agent asks a question mid-stream (§7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryPolicy {
    /// Do not answer: the call ends with an error that quotes the question,
    /// so the model (or the program) can rephrase the prompt.
    Refuse,
    /// Answer every question with this text.
    Answer(String),
    /// Ask whoever is prompting the orchestrator (the current caller, see
    /// [`with_caller`]) and relay their answer; wait for it up to `timeout`.
    /// Without a current caller this behaves like [`QueryPolicy::Refuse`],
    /// with an error saying so.
    Forward {
        /// How long to wait for the caller's answer.
        timeout: Duration,
    },
}

impl Default for QueryPolicy {
    /// [`QueryPolicy::forward`].
    fn default() -> Self {
        QueryPolicy::forward()
    }
}

impl QueryPolicy {
    /// [`QueryPolicy::Forward`] with [`DEFAULT_FORWARD_TIMEOUT`]; the default.
    pub fn forward() -> Self {
        QueryPolicy::Forward {
            timeout: DEFAULT_FORWARD_TIMEOUT,
        }
    }
}

/// Runs `fut` with `responder` as the current caller of the task: remote
/// calls made inside it (also from futures joined within it, but not from
/// tasks it spawns) forward questions to it and report progress to it.
pub async fn with_caller<F: Future>(responder: Responder, fut: F) -> F::Output {
    CALLER.scope(responder, fut).await
}

/// The current caller, when running inside [`with_caller`].
pub fn current_caller() -> Option<Responder> {
    CALLER.try_with(Responder::clone).ok()
}

/// Sends a status token to the current caller, if any; failures are only
/// logged, since progress is best effort.
pub(crate) async fn report(token: String) {
    if let Some(caller) = current_caller()
        && let Err(error) = caller.status(token.clone()).await
    {
        tracing::debug!(%token, %error, "progress status not delivered");
    }
}
