//! HTTP machinery shared by the network providers: the client, retries
//! with backoff (`backon`), `Retry-After`, error bodies and SSE framing
//! (`eventsource-stream`).

use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use eventsource_stream::{Event, EventStreamError, Eventsource};
use futures::{Stream, StreamExt};
use reqwest::header::{HeaderMap, RETRY_AFTER};
use serde_json::Value;

use crate::LlmError;
use crate::config::{HttpOptions, RetryPolicy};

/// The longest provider error body kept in an error.
const MAX_ERROR_BODY: usize = 2_000;

/// A client with the options' timeouts.
pub(crate) fn client(options: &HttpOptions) -> Result<reqwest::Client, LlmError> {
    reqwest::Client::builder()
        .connect_timeout(options.connect_timeout)
        .read_timeout(options.read_timeout)
        .build()
        .map_err(|e| LlmError::HttpClient {
            reason: error_chain(&e),
        })
}

/// `base` joined with `path`, checked.
pub(crate) fn endpoint(base: &str, path: &str) -> Result<String, LlmError> {
    let url = format!(
        "{}/{}",
        base.trim_end_matches('/'),
        path.trim_start_matches('/')
    );
    match reqwest::Url::parse(&url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(url),
        Ok(u) => Err(LlmError::InvalidBaseUrl {
            url: base.to_owned(),
            reason: format!("the scheme {:?} is not http or https", u.scheme()),
        }),
        Err(e) => Err(LlmError::InvalidBaseUrl {
            url: base.to_owned(),
            reason: e.to_string(),
        }),
    }
}

/// POSTs `body` as JSON, retrying 429 and 5xx per the policy, and returns
/// the successful response with its body still unread.
pub(crate) async fn post_json(
    client: &reqwest::Client,
    url: &str,
    headers: &HeaderMap,
    body: &Value,
    options: &HttpOptions,
) -> Result<reqwest::Response, LlmError> {
    let attempt = || async {
        let response = client
            .post(url)
            .headers(headers.clone())
            .json(body)
            .send()
            .await
            .map_err(|e| transport_error(e, url, options))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let retry_after = retry_after(response.headers());
        let text = response.text().await.unwrap_or_default();
        let body = error_message(&text);
        if status.as_u16() == 429 {
            Err(LlmError::RateLimited { retry_after, body })
        } else {
            Err(LlmError::Http {
                status: status.as_u16(),
                body,
            })
        }
    };
    let policy = &options.retry;
    attempt
        .retry(backoff(policy))
        .sleep(tokio::time::sleep)
        .when(LlmError::is_retryable)
        .adjust(|err, next| honour_retry_after(policy, err, next))
        .notify(|err, delay| {
            tracing::warn!(%url, error = %err, delay_ms = delay.as_millis() as u64, "retrying the model request");
        })
        .await
}

fn backoff(policy: &RetryPolicy) -> ExponentialBuilder {
    let b = ExponentialBuilder::default()
        .with_min_delay(policy.min_delay)
        .with_max_delay(policy.max_delay)
        .with_max_times(policy.max_retries);
    if policy.jitter { b.with_jitter() } else { b }
}

/// The next delay: the provider's `Retry-After` when it sent one (and it is
/// not longer than the policy allows), the backoff's otherwise; `None`
/// stops retrying.
fn honour_retry_after(
    policy: &RetryPolicy,
    err: &LlmError,
    next: Option<Duration>,
) -> Option<Duration> {
    let next = next?;
    match err.retry_after() {
        Some(wait) if wait > policy.max_retry_after => None,
        Some(wait) => Some(wait),
        None => Some(next),
    }
}

/// Parses `Retry-After`: delay-seconds or an HTTP date (RFC 9110 §10.2.3).
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let when =
        time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc2822).ok()?;
    let wait = when - time::OffsetDateTime::now_utc();
    Some(Duration::try_from(wait).unwrap_or(Duration::ZERO))
}

/// The message of a JSON error body (`{"error": {"message": …}}`, as both
/// OpenAI and Anthropic send), or the body itself, shortened.
pub(crate) fn error_message(body: &str) -> String {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    let message = parsed.as_ref().and_then(|v| {
        let e = v.get("error")?;
        match e {
            Value::String(s) => Some(s.clone()),
            _ => {
                let msg = e.get("message")?.as_str()?;
                Some(match e.get("type").and_then(Value::as_str) {
                    Some(kind) => format!("{kind}: {msg}"),
                    None => msg.to_owned(),
                })
            }
        }
    });
    let text = message.unwrap_or_else(|| body.trim().to_owned());
    if text.len() > MAX_ERROR_BODY {
        let mut cut = MAX_ERROR_BODY;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        format!("{}…", &text[..cut])
    } else {
        text
    }
}

fn transport_error(e: reqwest::Error, url: &str, options: &HttpOptions) -> LlmError {
    if e.is_timeout() {
        LlmError::TimedOut {
            after: options.read_timeout,
        }
    } else {
        LlmError::Unreachable {
            url: url.to_owned(),
            reason: error_chain(&e),
        }
    }
}

/// An error and its sources, joined, since reqwest's top-level messages are terse.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// The server-sent events of a response body.
pub(crate) fn events(
    response: reqwest::Response,
    options: &HttpOptions,
) -> impl Stream<Item = Result<Event, LlmError>> + Send + 'static {
    let read_timeout = options.read_timeout;
    response
        .bytes_stream()
        .eventsource()
        .map(move |item| match item {
            Ok(event) => Ok(event),
            Err(EventStreamError::Transport(e)) if e.is_timeout() => Err(LlmError::TimedOut {
                after: read_timeout,
            }),
            Err(EventStreamError::Transport(e)) => Err(LlmError::StreamInterrupted {
                reason: error_chain(&e),
            }),
            Err(EventStreamError::Utf8(e)) => Err(LlmError::MalformedEvent {
                reason: format!("the event stream is not UTF-8: {e}"),
            }),
            Err(EventStreamError::Parser(e)) => Err(LlmError::MalformedEvent {
                reason: format!("the event stream is not valid SSE: {e}"),
            }),
        })
}

/// Parses an event's JSON data.
pub(crate) fn json(event: &Event) -> Result<Value, LlmError> {
    serde_json::from_str(&event.data).map_err(|e| LlmError::MalformedEvent {
        reason: format!("event data is not JSON ({e}): {}", shorten(&event.data)),
    })
}

fn shorten(s: &str) -> &str {
    let mut end = s.len().min(200);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn retry_after_forms() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("3"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
        h.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn error_bodies() {
        assert_eq!(
            error_message(r#"{"error":{"message":"bad model","type":"invalid_request_error"}}"#),
            "invalid_request_error: bad model"
        );
        assert_eq!(
            error_message(
                r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#
            ),
            "overloaded_error: Overloaded"
        );
        assert_eq!(error_message("plain text\n"), "plain text");
    }

    #[test]
    fn long_retry_after_stops_retrying() {
        let policy = RetryPolicy::default();
        let err = LlmError::RateLimited {
            retry_after: Some(Duration::from_secs(3600)),
            body: String::new(),
        };
        assert_eq!(
            honour_retry_after(&policy, &err, Some(Duration::from_millis(1))),
            None
        );
        let err = LlmError::RateLimited {
            retry_after: Some(Duration::from_secs(2)),
            body: String::new(),
        };
        assert_eq!(
            honour_retry_after(&policy, &err, Some(Duration::from_millis(1))),
            Some(Duration::from_secs(2))
        );
    }

    #[test]
    fn endpoints_are_checked() {
        assert_eq!(
            endpoint("http://localhost:1/v1/", "/chat/completions").unwrap(),
            "http://localhost:1/v1/chat/completions"
        );
        assert!(matches!(
            endpoint("ftp://x", "a"),
            Err(LlmError::InvalidBaseUrl { .. })
        ));
        assert!(matches!(
            endpoint("not a url", "a"),
            Err(LlmError::InvalidBaseUrl { .. })
        ));
    }
}
