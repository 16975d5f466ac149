//! What can go wrong while answering a prompt.

use std::time::Duration;

use nap_proto::{ErrorBody, ServiceError, StatusCode};

/// An agent's failure, sent to the caller as a §9 error signal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AgentError(pub ServiceError);

impl AgentError {
    /// An error with a §9.2 code and a description.
    pub fn new(code: StatusCode, description: impl Into<String>) -> Self {
        AgentError(ServiceError::new(code, description))
    }

    /// `400`: the request is malformed.
    pub fn bad_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BadRequest, description)
    }

    /// `404`: something the request names does not exist.
    pub fn not_found(description: impl Into<String>) -> Self {
        Self::new(StatusCode::NotFound, description)
    }

    /// `409`: the request conflicts with the agent's state.
    pub fn conflict(description: impl Into<String>) -> Self {
        Self::new(StatusCode::Conflict, description)
    }

    /// `429`: rate limited.
    pub fn rate_limited(description: impl Into<String>) -> Self {
        Self::new(StatusCode::TooManyRequests, description)
    }

    /// `500`: the agent failed.
    pub fn internal(description: impl Into<String>) -> Self {
        Self::new(StatusCode::Internal, description)
    }

    /// Adds the optional JSON body of §9.1.
    pub fn with_body(self, body: ErrorBody) -> Self {
        AgentError(self.0.with_body(body))
    }

    /// The status code.
    pub fn code(&self) -> StatusCode {
        self.0.code
    }

    /// The wire error signal.
    pub fn service_error(&self) -> &ServiceError {
        &self.0
    }
}

impl From<ServiceError> for AgentError {
    fn from(e: ServiceError) -> Self {
        AgentError(e)
    }
}

/// The error a transport reported, shared so that errors stay `Clone`.
pub type TransportError = std::sync::Arc<dyn std::error::Error + Send + Sync + 'static>;

/// A chunk could not be sent.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The stream is already terminated; nothing may follow the terminator (§6.5).
    #[error("the response stream is already closed (§6.5)")]
    Closed,
    /// The transport failed to publish.
    #[error("could not publish the chunk: {source}")]
    Transport {
        /// What the transport reported.
        #[source]
        source: TransportError,
    },
}

impl SendError {
    /// A transport failure, keeping the transport's own error as the source.
    pub fn transport(error: impl std::error::Error + Send + Sync + 'static) -> SendError {
        SendError::Transport {
            source: std::sync::Arc::new(error),
        }
    }
}

/// Two send errors are equal when they are the same kind with the same
/// message (a transport's error has no equality of its own).
impl PartialEq for SendError {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (SendError::Closed, SendError::Closed) => true,
            (SendError::Transport { source: a }, SendError::Transport { source: b }) => {
                a.to_string() == b.to_string()
            }
            _ => false,
        }
    }
}

impl From<SendError> for AgentError {
    fn from(e: SendError) -> Self {
        AgentError::internal(e.to_string())
    }
}

/// A mid-stream query (§7) got no usable answer.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// The caller did not reply within the agent's timeout (§7.3).
    #[error("the caller did not answer within {timeout:?} (§7.3)")]
    TimedOut {
        /// The timeout that passed.
        timeout: Duration,
    },
    /// The caller's reply is not a valid answer (§7.2).
    #[error("the caller's answer is refused: {source}")]
    BadReply {
        /// Why.
        #[source]
        source: std::sync::Arc<nap_proto::AnswerError>,
    },
    /// An attachment of the caller's answer has a `filename` that cannot be
    /// one file name (a path separator, a control character, `.`/`..`,
    /// empty): refused as the host refuses such a prompt
    /// ([`nap_proto::check_file_name`]).
    #[error(
        "the caller's answer carries attachment {index} with an unsafe filename {filename:?}: it {error} (§7.2, §5.2)"
    )]
    UnsafeFileName {
        /// The attachment's position, from 0.
        index: usize,
        /// The name as sent.
        filename: String,
        /// What is wrong with it.
        error: nap_proto::FileNameError,
    },
    /// The query could not be sent.
    #[error(transparent)]
    Send(#[from] SendError),
    /// This responder cannot ask questions (for example a collector without answers).
    #[error("this responder cannot ask the caller questions")]
    Unsupported,
}

/// Two query errors are equal when they are the same kind with the same
/// message.
impl PartialEq for QueryError {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (QueryError::TimedOut { timeout: a }, QueryError::TimedOut { timeout: b }) => a == b,
            (QueryError::BadReply { source: a }, QueryError::BadReply { source: b }) => {
                a.to_string() == b.to_string()
            }
            (
                QueryError::UnsafeFileName {
                    index: a,
                    filename: fa,
                    error: ea,
                },
                QueryError::UnsafeFileName {
                    index: b,
                    filename: fb,
                    error: eb,
                },
            ) => a == b && fa == fb && ea == eb,
            (QueryError::Send(a), QueryError::Send(b)) => a == b,
            (QueryError::Unsupported, QueryError::Unsupported) => true,
            _ => false,
        }
    }
}

/// How the host's check of an answer ([`nap_proto::accept_answer`]) reads
/// to the agent.
impl From<nap_proto::AnswerError> for QueryError {
    fn from(e: nap_proto::AnswerError) -> Self {
        match e {
            nap_proto::AnswerError::UnsafeFileName {
                index,
                filename,
                error,
            } => QueryError::UnsafeFileName {
                index,
                filename,
                error,
            },
            other => QueryError::BadReply {
                source: std::sync::Arc::new(other),
            },
        }
    }
}

impl From<QueryError> for AgentError {
    fn from(e: QueryError) -> Self {
        match e {
            QueryError::TimedOut { .. } => AgentError::new(StatusCode::Conflict, e.to_string()),
            _ => AgentError::internal(e.to_string()),
        }
    }
}
