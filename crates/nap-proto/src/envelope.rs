//! The request envelope (§5.1) and the discrimination rule that reads it (§5.3).
//!
//! The same shape answers a mid-stream query (§7.2).

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value};

use crate::attachment::{Attachment, AttachmentsError, take_attachments};
use crate::json::{FieldError, take_string};

/// The envelope's own top-level field names (§5.1); every other name is an
/// unknown field kept in [`Envelope::extra`] (§5.6).
pub mod keys {
    /// The prompt text.
    pub const PROMPT: &str = "prompt";
    /// The attachments (§5.2).
    pub const ATTACHMENTS: &str = "attachments";
}

/// The top-level fields the envelope itself defines (§5.1); every other
/// field is an extra, kept and passed on (§5.6).
pub const ENVELOPE_FIELDS: [&str; 2] = [keys::PROMPT, keys::ATTACHMENTS];

/// A request: a prompt, optional attachments, and any unknown top-level
/// fields, which are kept and written back out (§5.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The prompt text; never empty once decoded (§5.1).
    pub prompt: String,
    /// Attachments (§5.2), possibly none.
    pub attachments: Vec<Attachment>,
    /// Unknown top-level fields in their original order (§5.6).
    pub extra: Map<String, Value>,
}

/// How a payload was recognised by the discrimination rule (§5.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadForm {
    /// Plain UTF-8 text, promoted to `{"prompt": <payload>}`.
    PlainText,
    /// A JSON envelope.
    Json,
}

/// Why a request payload is not a valid envelope. Every variant is a
/// malformed request: status `400` (§9.2).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// The payload has zero bytes (§5.3).
    #[error("the request payload is empty (§5.3)")]
    Empty,
    /// Not JSON (no leading `{`) and not valid UTF-8 text (§5.3).
    #[error(
        "the request is neither JSON nor valid UTF-8 text (invalid byte at {valid_up_to}) (§5.3)"
    )]
    NotUtf8 {
        /// Length of the valid UTF-8 prefix.
        valid_up_to: usize,
    },
    /// Starts with `{` but is not valid JSON (§5.3).
    #[error("the request starts with '{{' but is not valid JSON: {source} (§5.3)")]
    InvalidJson {
        /// The JSON parser's report.
        #[source]
        source: serde_json::Error,
    },
    /// `prompt` is missing or not a string (§5.3).
    #[error("{0} (§5.1)")]
    Prompt(FieldError),
    /// `prompt` is the empty string (§5.1).
    #[error("field `prompt` must not be empty (§5.1)")]
    EmptyPrompt,
    /// `attachments` is malformed (§5.2).
    #[error("{0} (§5.2)")]
    Attachments(#[from] AttachmentsError),
}

/// §5.3 step 1: the whitespace skipped before looking for `{`.
fn is_envelope_whitespace(b: u8) -> bool {
    matches!(b, 0x09 | 0x0A | 0x0D | 0x20)
}

/// Applies the §5.3 discrimination rule to a payload without decoding it.
///
/// Returns `None` for a zero-byte payload, which is invalid.
pub fn classify(payload: &[u8]) -> Option<PayloadForm> {
    if payload.is_empty() {
        return None;
    }
    match payload.iter().find(|b| !is_envelope_whitespace(**b)) {
        Some(b'{') => Some(PayloadForm::Json),
        _ => Some(PayloadForm::PlainText),
    }
}

impl Envelope {
    /// An envelope with just a prompt.
    pub fn text(prompt: impl Into<String>) -> Self {
        Envelope {
            prompt: prompt.into(),
            attachments: Vec::new(),
            extra: Map::new(),
        }
    }

    /// Adds an attachment.
    pub fn with_attachment(mut self, attachment: Attachment) -> Self {
        self.attachments.push(attachment);
        self
    }

    /// Decodes a request payload by the discrimination rule (§5.3).
    pub fn decode(payload: &[u8]) -> Result<Self, EnvelopeError> {
        Self::decode_with_form(payload).map(|(env, _)| env)
    }

    /// Like [`Envelope::decode`], also saying which form the payload had.
    pub fn decode_with_form(payload: &[u8]) -> Result<(Self, PayloadForm), EnvelopeError> {
        match classify(payload) {
            None => Err(EnvelopeError::Empty),
            Some(PayloadForm::PlainText) => {
                // §5.3 step 3: the original payload, whitespace included, is the prompt.
                let prompt = std::str::from_utf8(payload).map_err(|e| EnvelopeError::NotUtf8 {
                    valid_up_to: e.valid_up_to(),
                })?;
                Ok((Envelope::text(prompt), PayloadForm::PlainText))
            }
            Some(PayloadForm::Json) => {
                // §5.3 step 2: serde_json skips the same leading whitespace.
                let obj: Map<String, Value> = serde_json::from_slice(payload)
                    .map_err(|source| EnvelopeError::InvalidJson { source })?;
                Ok((Self::from_object(obj)?, PayloadForm::Json))
            }
        }
    }

    /// Reads an envelope from an already-parsed JSON object (§5.1).
    pub fn from_object(mut obj: Map<String, Value>) -> Result<Self, EnvelopeError> {
        let prompt = take_string(&mut obj, keys::PROMPT).map_err(EnvelopeError::Prompt)?;
        if prompt.is_empty() {
            return Err(EnvelopeError::EmptyPrompt);
        }
        let attachments = take_attachments(&mut obj)?;
        Ok(Envelope {
            prompt,
            attachments,
            extra: obj,
        })
    }

    /// The compact JSON wire form (§5.1): `prompt`, then `attachments` when
    /// there are any, then unknown fields in their original order.
    pub fn encode(&self) -> Vec<u8> {
        // ok: serialising strings, byte vectors and JSON values to a Vec cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The shortest faithful wire form: the plain-text shorthand when it
    /// reads back as the same envelope (§5.3), otherwise JSON.
    pub fn encode_shortest(&self) -> Vec<u8> {
        let plain_ok = self.attachments.is_empty()
            && self.extra.is_empty()
            && classify(self.prompt.as_bytes()) == Some(PayloadForm::PlainText);
        if plain_ok {
            self.prompt.clone().into_bytes()
        } else {
            self.encode()
        }
    }

    /// Whether any attachment is present.
    pub fn has_attachments(&self) -> bool {
        !self.attachments.is_empty()
    }
}

impl Serialize for Envelope {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let has_attachments = !self.attachments.is_empty();
        let mut map =
            serializer.serialize_map(Some(1 + usize::from(has_attachments) + self.extra.len()))?;
        map.serialize_entry(keys::PROMPT, &self.prompt)?;
        if has_attachments {
            map.serialize_entry(keys::ATTACHMENTS, &self.attachments)?;
        }
        for (k, v) in &self.extra {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl EnvelopeError {
    /// The §9.2 status code for this error: always `400`.
    pub fn status(&self) -> crate::StatusCode {
        crate::StatusCode::BadRequest
    }
}
