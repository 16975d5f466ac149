//! The one error type of this crate.

use std::time::Duration;

use nap_nats::readable::Secs;

use nap_proto::{ErrorCode, RemoteError};

/// Everything that can go wrong orchestrating agents.
///
/// The messages are written for a model as much as for a person: a
/// [`RemoteAgentTool`](crate::RemoteAgentTool) hands them to the model as
/// the tool's error text.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The remote agent answered with an error signal (§9).
    #[error("agent {agent} answered error {}: {}", .error.code, .error.message())]
    Remote {
        /// The agent's tool or step name.
        agent: String,
        /// The error signal.
        error: Box<RemoteError>,
    },
    /// The remote agent sent nothing for longer than the inactivity timeout
    /// (§6.6): it is overloaded, stuck, or gone.
    #[error("agent {agent} went silent for {} and was given up on", Secs(*.idle))]
    Silent {
        /// The agent's tool or step name.
        agent: String,
        /// How long it was silent.
        idle: Duration,
    },
    /// Nobody serves the agent any more: no responders on its subject, or
    /// no instance left online.
    #[error("agent {agent} is gone ({why})")]
    Gone {
        /// The agent's tool or step name.
        agent: String,
        /// What showed it.
        why: String,
    },
    /// The remote agent asked a question (§7) this orchestrator would not
    /// answer.
    #[error("agent {agent} asked {question:?} and got no answer: {reason}")]
    QueryRefused {
        /// The agent's tool or step name.
        agent: String,
        /// The question.
        question: String,
        /// Why it was not answered.
        reason: String,
    },
    /// Calling the remote agent failed for another reason (the request was
    /// refused locally, the connection failed, the agent broke the protocol).
    #[error("calling agent {agent} failed: {source}")]
    Call {
        /// The agent's tool or step name.
        agent: String,
        /// What the transport reported.
        #[source]
        source: nap_nats::Error,
    },
    /// A pipeline step did not finish within its timeout.
    #[error("step {step} did not finish within {}", Secs(*.timeout))]
    StepTimedOut {
        /// The step.
        step: String,
        /// Its timeout.
        timeout: Duration,
    },
    /// A pipeline step failed, after all its attempts.
    #[error("step {step} failed after {attempts} attempt(s): {source}")]
    StepFailed {
        /// The step.
        step: String,
        /// How many attempts were made.
        attempts: u32,
        /// The last attempt's failure.
        #[source]
        source: Box<Error>,
    },
    /// Discovering agents failed.
    #[error("discovering agents failed: {0}")]
    Discovery(#[source] nap_nats::Error),
    /// A pipeline has nothing to run (an empty sequence or fan-out).
    #[error("the pipeline {what} is empty")]
    EmptyPipeline {
        /// Which part is empty.
        what: &'static str,
    },
}

impl Error {
    /// Maps a caller error for the agent called `agent`.
    pub(crate) fn from_call(agent: &str, error: nap_nats::Error) -> Self {
        let agent = agent.to_owned();
        match error {
            nap_nats::Error::Remote(error) => Error::Remote { agent, error },
            nap_nats::Error::InactivityTimeout { idle } => Error::Silent { agent, idle },
            nap_nats::Error::NoResponders { subject } => Error::Gone {
                agent,
                why: format!("no responders on {subject}"),
            },
            source => Error::Call { agent, source },
        }
    }

    /// Whether trying again may help: not when the agent rejected the
    /// request as such (a `4xx` other than 408 and 429), when the request was
    /// refused locally, when the agent's question was refused, or when the
    /// pipeline is malformed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Remote { error, .. } => match &error.code {
                ErrorCode::Listed(code) => {
                    let code = code.as_u16();
                    !(400..500).contains(&code) || code == 408 || code == 429
                }
                ErrorCode::Unlisted(_) | ErrorCode::Malformed(_) => true,
            },
            Error::Call { source, .. } => !matches!(source, nap_nats::Error::Refused(_)),
            Error::StepFailed { source, .. } => source.is_retryable(),
            // The same question would be refused again.
            Error::EmptyPipeline { .. } | Error::QueryRefused { .. } => false,
            Error::Silent { .. }
            | Error::Gone { .. }
            | Error::StepTimedOut { .. }
            | Error::Discovery(_) => true,
        }
    }
}

/// This crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
