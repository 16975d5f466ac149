//! What can go wrong talking to a model, and how it reaches a nap caller (§9.2).

use std::time::Duration;

use nap_agent::AgentError;
use nap_proto::{ErrorBody, StatusCode};

/// Everything that can fail in this crate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LlmError {
    /// A provider needs an API key and the environment variable holding it is unset or empty.
    #[error("no API key: set the environment variable {variable}")]
    MissingApiKey {
        /// The variable to set, such as `OPENAI_API_KEY`.
        variable: &'static str,
    },
    /// The API key cannot be sent in an HTTP header (it has control or non-ASCII characters).
    #[error("the API key from {variable} has characters that cannot be sent in an HTTP header")]
    InvalidApiKey {
        /// The variable the key usually comes from.
        variable: &'static str,
    },
    /// `NAP_LLM` names no known provider.
    #[error(
        "unknown LLM provider {value:?} in {variable}: expected openai, anthropic, ollama or offline"
    )]
    UnknownProvider {
        /// The variable that was read.
        variable: &'static str,
        /// Its value.
        value: String,
    },
    /// The provider exists but this build left out its cargo feature.
    #[error(
        "the {provider} provider is not compiled in: enable the cargo feature {feature:?} of nap-llm"
    )]
    ProviderNotCompiled {
        /// The provider asked for.
        provider: &'static str,
        /// The feature that enables it.
        feature: &'static str,
    },
    /// A base URL could not be used.
    #[error("invalid base URL {url:?}: {reason}")]
    InvalidBaseUrl {
        /// The URL given.
        url: String,
        /// Why it is unusable.
        reason: String,
    },
    /// The HTTP client could not be set up (for example its TLS roots).
    #[error("could not set up the HTTP client: {reason}")]
    HttpClient {
        /// What the HTTP client reported.
        reason: String,
    },
    /// The provider answered `429 Too Many Requests`, also after the retries.
    #[error("the provider is rate limiting requests (HTTP 429){}: {body}", retry_hint(*retry_after))]
    RateLimited {
        /// The provider's `Retry-After`, if it sent one.
        retry_after: Option<Duration>,
        /// The provider's error body.
        body: String,
    },
    /// The provider answered with an HTTP error status.
    #[error("the provider answered HTTP {status}: {body}")]
    Http {
        /// The HTTP status code.
        status: u16,
        /// The provider's error body (its message when it is JSON).
        body: String,
    },
    /// The provider could not be reached, or the connection failed before an answer.
    #[error("could not reach the provider at {url}: {reason}")]
    Unreachable {
        /// The endpoint.
        url: String,
        /// What the HTTP client reported.
        reason: String,
    },
    /// The provider did not answer in time.
    #[error("the provider did not answer within {after:?}")]
    TimedOut {
        /// The timeout that passed.
        after: Duration,
    },
    /// The answer stream broke off before the model finished.
    #[error("the provider's stream broke off before the answer was complete: {reason}")]
    StreamInterrupted {
        /// What the HTTP client or the event parser reported.
        reason: String,
    },
    /// An event in the answer stream is not in the provider's documented shape.
    #[error("unexpected event from the provider: {reason}")]
    MalformedEvent {
        /// What did not fit.
        reason: String,
    },
    /// The provider reported an error inside the stream (for example `overloaded_error`).
    #[error("the provider reported an error mid-stream ({kind}): {message}")]
    ProviderStreamError {
        /// The provider's error type.
        kind: String,
        /// The provider's message.
        message: String,
    },
    /// A conversation memory store failed.
    #[error("the conversation memory is unavailable: {reason}")]
    MemoryUnavailable {
        /// What the store reported.
        reason: String,
    },
    /// The model kept asking for tools beyond the configured number of rounds.
    #[error("the model still asked for tools after {rounds} rounds (the agent's max_rounds)")]
    TooManyToolRounds {
        /// The bound that was reached.
        rounds: usize,
    },
}

fn retry_hint(retry_after: Option<Duration>) -> String {
    match retry_after {
        Some(d) => format!(", retry after {}s", d.as_secs_f64().ceil()),
        None => String::new(),
    }
}

impl LlmError {
    /// The §9.2 status a nap caller sees for this error: a provider's 429 is
    /// `429`, a request the provider rejects as malformed is `400`, the rest `500`.
    pub fn status_code(&self) -> StatusCode {
        match self {
            LlmError::RateLimited { .. } => StatusCode::TooManyRequests,
            LlmError::Http { status, .. } => match status {
                429 => StatusCode::TooManyRequests,
                400 | 413 | 422 => StatusCode::BadRequest,
                _ => StatusCode::Internal,
            },
            _ => StatusCode::Internal,
        }
    }

    /// A stable snake_case code for the §9.1 error body.
    pub fn error_code(&self) -> &'static str {
        match self {
            LlmError::MissingApiKey { .. } => "missing_api_key",
            LlmError::InvalidApiKey { .. } => "invalid_api_key",
            LlmError::UnknownProvider { .. } => "unknown_provider",
            LlmError::ProviderNotCompiled { .. } => "provider_not_compiled",
            LlmError::InvalidBaseUrl { .. } => "invalid_base_url",
            LlmError::HttpClient { .. } => "http_client_failed",
            LlmError::RateLimited { .. } => "rate_limited",
            LlmError::Http { status, .. } => match status {
                400 | 413 | 422 => "model_rejected_request",
                401 | 403 => "model_auth_failed",
                _ => "model_http_error",
            },
            LlmError::Unreachable { .. } => "model_unreachable",
            LlmError::TimedOut { .. } => "model_timeout",
            LlmError::StreamInterrupted { .. } => "model_stream_interrupted",
            LlmError::MalformedEvent { .. } => "model_malformed_event",
            LlmError::ProviderStreamError { .. } => "model_stream_error",
            LlmError::MemoryUnavailable { .. } => "memory_unavailable",
            LlmError::TooManyToolRounds { .. } => "too_many_tool_rounds",
        }
    }

    /// Whether retrying the same request may succeed (429 and 5xx).
    pub fn is_retryable(&self) -> bool {
        match self {
            LlmError::RateLimited { .. } => true,
            LlmError::Http { status, .. } => *status >= 500,
            _ => false,
        }
    }

    /// The delay the provider asked for, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            LlmError::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

impl LlmError {
    /// What a remote caller is told: a short description that names the
    /// kind of failure and nothing internal (no provider URL, key name,
    /// provider body or memory store detail). The full error is for the
    /// agent's own log.
    pub fn caller_description(&self) -> String {
        match self {
            LlmError::MissingApiKey { .. }
            | LlmError::InvalidApiKey { .. }
            | LlmError::UnknownProvider { .. }
            | LlmError::ProviderNotCompiled { .. }
            | LlmError::InvalidBaseUrl { .. }
            | LlmError::HttpClient { .. } => "the agent's model is not configured correctly".into(),
            LlmError::RateLimited { retry_after, .. } => format!(
                "the agent's model provider is rate limiting{}",
                retry_hint(*retry_after)
            ),
            LlmError::Http { status, .. } => match status {
                400 | 413 | 422 => "the agent's model provider rejected the request".into(),
                401 | 403 => "the agent's model provider refused its credentials".into(),
                _ => format!("the agent's model provider failed (HTTP {status})"),
            },
            LlmError::Unreachable { .. } => {
                "the agent's model provider could not be reached".into()
            }
            LlmError::TimedOut { .. } => "the agent's model provider did not answer in time".into(),
            LlmError::StreamInterrupted { .. }
            | LlmError::MalformedEvent { .. }
            | LlmError::ProviderStreamError { .. } => {
                "the agent's model provider broke off its answer".into()
            }
            LlmError::MemoryUnavailable { .. } => {
                "the agent's conversation memory is unavailable".into()
            }
            // Nothing internal in it: the bound is the agent's own setting.
            LlmError::TooManyToolRounds { .. } => self.to_string(),
        }
    }
}

/// The caller gets [`LlmError::caller_description`] and the stable code;
/// the full error is logged here, once, at `error` level.
impl From<LlmError> for AgentError {
    fn from(e: LlmError) -> Self {
        tracing::error!(error = %e, code = e.error_code(), "the model failed");
        let mut body = ErrorBody::new(e.error_code(), e.caller_description());
        if let Some(after) = e.retry_after() {
            body.extra
                .insert("retry_after_ms".into(), (after.as_millis() as u64).into());
        }
        if let LlmError::Http { status, .. } = &e {
            body.extra
                .insert("provider_status".into(), (*status).into());
        }
        AgentError::new(e.status_code(), e.caller_description()).with_body(body)
    }
}
