//! Error signals (§9): status codes, the two headers, and the optional JSON body.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Header carrying the numeric status code as a string (§9.1).
pub const ERROR_CODE_HEADER: &str = "Nats-Service-Error-Code";

/// Header carrying the short human-readable description (§9.1).
pub const ERROR_HEADER: &str = "Nats-Service-Error";

/// The status codes of §9.2, and only those: agents MUST use codes from
/// this table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StatusCode {
    /// 400: malformed request (invalid envelope, empty payload, invalid
    /// base64, attachments when not accepted, oversize).
    BadRequest,
    /// 401: authentication required.
    Unauthorized,
    /// 403: authenticated but not authorised.
    Forbidden,
    /// 404: not found.
    NotFound,
    /// 409: conflicts with the agent's current state.
    Conflict,
    /// 429: rate limited.
    TooManyRequests,
    /// 500: internal error.
    Internal,
}

impl StatusCode {
    /// Every code of §9.2, in table order.
    pub const ALL: [StatusCode; 7] = [
        StatusCode::BadRequest,
        StatusCode::Unauthorized,
        StatusCode::Forbidden,
        StatusCode::NotFound,
        StatusCode::Conflict,
        StatusCode::TooManyRequests,
        StatusCode::Internal,
    ];

    /// The numeric code.
    pub const fn as_u16(self) -> u16 {
        match self {
            StatusCode::BadRequest => 400,
            StatusCode::Unauthorized => 401,
            StatusCode::Forbidden => 403,
            StatusCode::NotFound => 404,
            StatusCode::Conflict => 409,
            StatusCode::TooManyRequests => 429,
            StatusCode::Internal => 500,
        }
    }

    /// The code for a number, if §9.2 lists it.
    pub fn from_u16(code: u16) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_u16() == code)
    }

    /// The error class of §9.2, as a short phrase.
    pub const fn class(self) -> &'static str {
        match self {
            StatusCode::BadRequest => "malformed request",
            StatusCode::Unauthorized => "authentication required",
            StatusCode::Forbidden => "forbidden",
            StatusCode::NotFound => "not found",
            StatusCode::Conflict => "conflict",
            StatusCode::TooManyRequests => "rate limited",
            StatusCode::Internal => "internal error",
        }
    }
}

impl fmt::Display for StatusCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.as_u16())
    }
}

/// The optional JSON error body (§9.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Stable machine-readable code, lowercase snake_case recommended.
    pub error: String,
    /// Human-readable detail; absent means "use the header".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Any further fields, kept in order (§9.1 "callers MUST tolerate unknown fields").
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ErrorBody {
    /// A body with a code and a message.
    pub fn new(error: impl Into<String>, message: impl Into<String>) -> Self {
        ErrorBody {
            error: error.into(),
            message: Some(message.into()),
            extra: Map::new(),
        }
    }

    /// Adds a further field.
    pub fn with_field(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.extra.insert(key.into(), value.into());
        self
    }
}

/// An error an agent sends (§9.3): the two headers and an optional JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceError {
    /// The status code (§9.2).
    pub code: StatusCode,
    /// The `Nats-Service-Error` description.
    pub description: String,
    /// The optional JSON body (§9.1).
    pub body: Option<ErrorBody>,
}

impl ServiceError {
    /// An error with no body.
    pub fn new(code: StatusCode, description: impl Into<String>) -> Self {
        ServiceError {
            code,
            description: description.into(),
            body: None,
        }
    }

    /// Attaches a JSON body.
    pub fn with_body(mut self, body: ErrorBody) -> Self {
        self.body = Some(body);
        self
    }

    /// The two header pairs, in the order §9.1 lists them. The description
    /// is flattened to one line, since header values cannot carry CR or LF.
    pub fn headers(&self) -> [(&'static str, String); 2] {
        [
            (ERROR_CODE_HEADER, self.code.as_u16().to_string()),
            (ERROR_HEADER, header_safe(&self.description)),
        ]
    }

    /// The body bytes: the JSON body, or nothing.
    pub fn body_bytes(&self) -> Vec<u8> {
        self.body
            .as_ref()
            // ok: a struct of strings and JSON values always serialises.
            .map(|b| serde_json::to_vec(b).unwrap_or_default())
            .unwrap_or_default()
    }
}

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code, self.description)
    }
}

impl std::error::Error for ServiceError {}

fn header_safe(s: &str) -> String {
    s.chars()
        .map(|c| if c == '\r' || c == '\n' { ' ' } else { c })
        .collect()
}

/// A code as received in `Nats-Service-Error-Code`: listed in §9.2 or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorCode {
    /// A §9.2 code.
    Listed(StatusCode),
    /// A number §9.2 does not list (a protocol violation by the agent, but
    /// still an error for the caller).
    Unlisted(u16),
    /// A header value that is not a number, or no code header at all.
    Malformed(String),
}

impl ErrorCode {
    /// Reads the header value.
    pub fn parse(value: Option<&str>) -> Self {
        let Some(value) = value else {
            return ErrorCode::Malformed(String::new());
        };
        match value.trim().parse::<u16>() {
            Ok(n) => StatusCode::from_u16(n).map_or(ErrorCode::Unlisted(n), ErrorCode::Listed),
            Err(_) => ErrorCode::Malformed(value.to_owned()),
        }
    }

    /// The §9.2 code, when listed.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            ErrorCode::Listed(c) => Some(*c),
            _ => None,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorCode::Listed(c) => write!(f, "{c}"),
            ErrorCode::Unlisted(n) => write!(f, "{n}"),
            ErrorCode::Malformed(s) => write!(f, "{s:?}"),
        }
    }
}

/// An error as a caller receives it (§9.1, §9.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteError {
    /// The code header.
    pub code: ErrorCode,
    /// The `Nats-Service-Error` header (empty if absent).
    pub description: String,
    /// The JSON body, when the body is a valid §9.1 object.
    pub body: Option<ErrorBody>,
    /// The raw body bytes, whatever they were.
    pub raw_body: Vec<u8>,
}

impl RemoteError {
    /// Reads an error from its two header values and body (§9.1).
    pub fn from_parts(code: Option<&str>, description: Option<&str>, body: &[u8]) -> Self {
        RemoteError {
            code: ErrorCode::parse(code),
            description: description.unwrap_or_default().to_owned(),
            body: serde_json::from_slice(body).ok(),
            raw_body: body.to_vec(),
        }
    }

    /// The best human-readable message: the body's `message`, else the
    /// header description (§9.1).
    pub fn message(&self) -> &str {
        self.body
            .as_ref()
            .and_then(|b| b.message.as_deref())
            .unwrap_or(&self.description)
    }
}

impl fmt::Display for RemoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code, self.message())
    }
}

impl std::error::Error for RemoteError {}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn codes_are_exactly_the_table() {
        let nums: Vec<u16> = StatusCode::ALL.iter().map(|c| c.as_u16()).collect();
        assert_eq!(nums, [400, 401, 403, 404, 409, 429, 500]);
        assert_eq!(StatusCode::from_u16(418), None);
    }

    #[test]
    fn received_codes() {
        assert_eq!(
            ErrorCode::parse(Some("429")),
            ErrorCode::Listed(StatusCode::TooManyRequests)
        );
        assert_eq!(ErrorCode::parse(Some("503")), ErrorCode::Unlisted(503));
        assert_eq!(
            ErrorCode::parse(Some("oops")),
            ErrorCode::Malformed("oops".into())
        );
        assert_eq!(ErrorCode::parse(None), ErrorCode::Malformed(String::new()));
    }

    #[test]
    fn message_falls_back_to_header() {
        let e = RemoteError::from_parts(Some("500"), Some("boom"), b"not json");
        assert_eq!(e.message(), "boom");
        assert!(e.body.is_none());
        let e = RemoteError::from_parts(
            Some("500"),
            Some("boom"),
            br#"{"error":"x","message":"detail"}"#,
        );
        assert_eq!(e.message(), "detail");
        let e = RemoteError::from_parts(Some("500"), Some("boom"), br#"{"error":"x"}"#);
        assert_eq!(e.message(), "boom");
    }

    #[test]
    fn headers_are_single_line() {
        let e = ServiceError::new(StatusCode::BadRequest, "bad\r\nthing");
        assert_eq!(e.headers()[1].1, "bad  thing");
        assert_eq!(e.headers()[0], (ERROR_CODE_HEADER, "400".to_owned()));
    }
}
