//! Request checks on both sides of the wire: what an agent accepts (§5.3,
//! §5.4, §9.2) and what a caller verifies before publishing (§5.4).

use crate::byte_size::ByteSize;
use crate::envelope::{Envelope, EnvelopeError};
use crate::error::{ServiceError, StatusCode};
use crate::file_name::{FileNameError, check_file_name};
use crate::service_info::PromptEndpoint;

/// The capabilities a `prompt` endpoint declares (§2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PromptLimits {
    /// The largest request accepted.
    pub max_payload: ByteSize,
    /// Whether attachments are accepted.
    pub attachments_ok: bool,
}

impl PromptLimits {
    /// The recommended defaults: `1MB`, attachments accepted.
    pub const DEFAULT: PromptLimits = PromptLimits {
        max_payload: ByteSize::mib(1),
        attachments_ok: true,
    };
}

impl Default for PromptLimits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl From<&PromptEndpoint> for PromptLimits {
    fn from(ep: &PromptEndpoint) -> Self {
        PromptLimits {
            max_payload: ep.max_payload,
            attachments_ok: ep.attachments_ok,
        }
    }
}

/// Why a request is refused. On the agent side every variant is a `400`
/// (§9.2); on the caller side it means nothing was published (§5.4).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// The payload is larger than `max_payload` (§5.4).
    #[error("request is {size} bytes, more than max_payload {limit} ({} bytes) (§5.4)", limit.bytes())]
    TooLarge {
        /// The limit in force.
        limit: ByteSize,
        /// The payload size in bytes.
        size: u64,
    },
    /// Attachments were sent to an endpoint with `attachments_ok: false` (§2.1).
    #[error("{count} attachment(s) sent, but this agent declares attachments_ok=false (§2.1)")]
    AttachmentsNotAccepted {
        /// How many attachments were present.
        count: usize,
    },
    /// An attachment's `filename` cannot be one file name (path separator,
    /// control character, `.`/`..`, empty): the agent side refuses it
    /// rather than rewriting it (see [`crate::file_name`]).
    #[error("attachment {index} has an unsafe filename {filename:?}: it {error} (§5.2)")]
    UnsafeFileName {
        /// The attachment's position in `attachments`, from 0.
        index: usize,
        /// The name as sent.
        filename: String,
        /// What is wrong with it.
        error: FileNameError,
    },
    /// The envelope is malformed (§5.3, §5.2).
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
}

impl RequestError {
    /// The §9.2 code: always `400`.
    pub fn status(&self) -> StatusCode {
        StatusCode::BadRequest
    }

    /// The error signal an agent answers with (§9.3).
    pub fn to_service_error(&self) -> ServiceError {
        ServiceError::new(self.status(), self.to_string())
    }
}

/// Agent side: checks a received payload against the endpoint's limits and
/// decodes it (§5.3, §5.4, §12 "rejects ... with status 400"). An
/// attachment whose `filename` fails [`check_file_name`] (a path
/// separator, a control character such as NUL, `.`/`..`, empty) is refused
/// too, so that no handler is ever handed a name that reaches outside a
/// directory.
pub fn accept(payload: &[u8], limits: PromptLimits) -> Result<Envelope, RequestError> {
    let size = payload.len() as u64;
    if size > limits.max_payload.bytes() {
        return Err(RequestError::TooLarge {
            limit: limits.max_payload,
            size,
        });
    }
    let envelope = Envelope::decode(payload)?;
    if !limits.attachments_ok && envelope.has_attachments() {
        return Err(RequestError::AttachmentsNotAccepted {
            count: envelope.attachments.len(),
        });
    }
    for (index, attachment) in envelope.attachments.iter().enumerate() {
        check_file_name(&attachment.filename).map_err(|error| RequestError::UnsafeFileName {
            index,
            filename: attachment.filename.clone(),
            error,
        })?;
    }
    Ok(envelope)
}

/// Caller side: encodes `envelope` and checks it against the endpoint's
/// declared limits and the server's own `max_payload` before anything is
/// published (§5.4). Returns the bytes to publish.
///
/// `overhead` counts bytes that travel with the payload and share the
/// server's limit, such as headers (§13.5.1). When a header depends on the
/// payload (a signed `Agent-Sender`, §13.6), use [`encode_checked`], build
/// the headers, then [`check_size`].
pub fn prepare(
    envelope: &Envelope,
    limits: PromptLimits,
    server_max_payload: Option<u64>,
    overhead: u64,
) -> Result<Vec<u8>, RequestError> {
    let payload = encode_checked(envelope, limits)?;
    check_size(payload.len(), overhead, limits, server_max_payload)?;
    Ok(payload)
}

/// Caller side, first half of [`prepare`]: the checks that do not depend on
/// size (a prompt is never empty, §5.1; attachments only where accepted,
/// §2.1), then the wire bytes.
pub fn encode_checked(envelope: &Envelope, limits: PromptLimits) -> Result<Vec<u8>, RequestError> {
    if envelope.prompt.is_empty() {
        return Err(EnvelopeError::EmptyPrompt.into());
    }
    if !limits.attachments_ok && envelope.has_attachments() {
        return Err(RequestError::AttachmentsNotAccepted {
            count: envelope.attachments.len(),
        });
    }
    Ok(envelope.encode())
}

/// Caller side, second half of [`prepare`]: whether `payload_len` bytes of
/// payload plus `overhead` bytes of headers fit both the endpoint's
/// `max_payload` and the server's (§5.4; headers count, §13.5.1).
pub fn check_size(
    payload_len: usize,
    overhead: u64,
    limits: PromptLimits,
    server_max_payload: Option<u64>,
) -> Result<(), RequestError> {
    let size = payload_len as u64 + overhead;
    let limit = match server_max_payload {
        Some(server) if server < limits.max_payload.bytes() => ByteSize::new(server),
        _ => limits.max_payload,
    };
    if size > limit.bytes() {
        return Err(RequestError::TooLarge { limit, size });
    }
    Ok(())
}

/// The bytes a NATS header block with `headers` adds to a message, which
/// the server counts against `max_payload` together with the payload
/// (§13.5.1): the `NATS/1.0` line, one `Name: value` line per value, and
/// the blank line. No headers at all add nothing.
///
/// ```
/// use nap_proto::header_block_len;
/// // Appendix B.13: a 373-byte Agent-Sender value makes a 401-byte block.
/// let value = "x".repeat(373);
/// assert_eq!(header_block_len([("Agent-Sender", value.as_str())]), 401);
/// assert_eq!(header_block_len(std::iter::empty::<(&str, &str)>()), 0);
/// ```
pub fn header_block_len<'a>(headers: impl IntoIterator<Item = (&'a str, &'a str)>) -> u64 {
    // `NATS/1.0\r\n` and the closing `\r\n`.
    const FRAME: u64 = 10 + 2;
    let mut lines = 0u64;
    let mut any = false;
    for (name, value) in headers {
        any = true;
        // `Name: value\r\n`
        lines += (name.len() + 2 + value.len() + 2) as u64;
    }
    if any { FRAME + lines } else { 0 }
}

/// Whether a header can travel in a NATS header block: a non-empty name of
/// visible ASCII without `:`, and a value without CR or LF (a line break
/// would end the header line early).
pub fn header_is_valid(name: &str, value: &str) -> bool {
    !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_graphic() && b != b':')
        && !value.bytes().any(|b| b == b'\r' || b == b'\n')
}
