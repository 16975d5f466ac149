//! Attachments: `{ "filename": ..., "content": <base64> }` (§5.2).
//!
//! Content is held decoded; the strict base64 rule of §5.2 is checked on
//! the way in, and the canonical encoding is written on the way out, so a
//! decode/encode round trip gives the same bytes.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value};

use crate::json::{FieldError, JsonKind, take_string};

/// One attachment (§5.2), as carried by requests, response chunks and queries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// The authoritative file name (§5.2).
    pub filename: String,
    /// The decoded bytes.
    pub content: Vec<u8>,
    /// Unknown fields, preserved when relaying (§5.6).
    pub extra: Map<String, Value>,
}

/// Why a base64 string breaks §5.2 (standard alphabet, padded, no whitespace).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Base64Error {
    /// Contains whitespace (§5.2 MUST NOT).
    #[error("contains whitespace at byte {offset}")]
    Whitespace {
        /// Byte offset of the first whitespace.
        offset: usize,
    },
    /// Uses the URL-safe alphabet (`-` or `_`, §5.2 MUST NOT).
    #[error("uses the URL-safe alphabet ({found:?} at byte {offset})")]
    UrlSafe {
        /// The URL-safe character.
        found: char,
        /// Its byte offset.
        offset: usize,
    },
    /// Length is not a multiple of four: padding is missing.
    #[error("is not padded (length {len} is not a multiple of 4)")]
    Unpadded {
        /// The string's length.
        len: usize,
    },
    /// Any other character outside the standard alphabet, misplaced
    /// padding, or non-canonical trailing bits.
    #[error("is not valid standard base64 ({detail})")]
    Invalid {
        /// What the decoder reported.
        detail: String,
    },
}

/// Why an attachment object is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AttachmentError {
    /// The attachment is not a JSON object.
    #[error("must be an object, found {found}")]
    NotAnObject {
        /// What was sent.
        found: JsonKind,
    },
    /// `filename` or `content` is missing or not a string.
    #[error(transparent)]
    Field(#[from] FieldError),
    /// `content` is not strict base64 (§5.2).
    #[error("`content` {0} (§5.2)")]
    Content(#[from] Base64Error),
}

/// Decodes strict base64 (§5.2): standard alphabet, padded, no whitespace.
pub fn decode_base64(text: &str) -> Result<Vec<u8>, Base64Error> {
    for (offset, b) in text.bytes().enumerate() {
        match b {
            b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c => {
                return Err(Base64Error::Whitespace { offset });
            }
            b'-' | b'_' => {
                return Err(Base64Error::UrlSafe {
                    found: char::from(b),
                    offset,
                });
            }
            _ => {}
        }
    }
    if !text.len().is_multiple_of(4) {
        return Err(Base64Error::Unpadded { len: text.len() });
    }
    STANDARD.decode(text).map_err(|e| Base64Error::Invalid {
        detail: e.to_string(),
    })
}

/// Encodes bytes as standard, padded base64 (§5.2).
pub fn encode_base64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

impl Attachment {
    /// An attachment with no unknown fields.
    pub fn new(filename: impl Into<String>, content: impl Into<Vec<u8>>) -> Self {
        Attachment {
            filename: filename.into(),
            content: content.into(),
            extra: Map::new(),
        }
    }

    /// Reads one attachment object from JSON.
    pub fn from_json(value: Value) -> Result<Self, AttachmentError> {
        let Value::Object(mut obj) = value else {
            return Err(AttachmentError::NotAnObject {
                found: JsonKind::of(&value),
            });
        };
        let filename = take_string(&mut obj, "filename")?;
        let content = decode_base64(&take_string(&mut obj, "content")?)?;
        Ok(Attachment {
            filename,
            content,
            extra: obj,
        })
    }
}

impl Serialize for Attachment {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(2 + self.extra.len()))?;
        map.serialize_entry("filename", &self.filename)?;
        map.serialize_entry("content", &encode_base64(&self.content))?;
        for (k, v) in &self.extra {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// Error at one index of an `attachments` array.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AttachmentsError {
    /// `attachments` is not an array.
    #[error("`attachments` must be an array, found {found}")]
    NotAnArray {
        /// What was sent.
        found: JsonKind,
    },
    /// One element is invalid.
    #[error("attachment {index}: {error}")]
    At {
        /// Zero-based index in the array.
        index: usize,
        /// What is wrong with it.
        error: AttachmentError,
    },
}

/// Reads an optional `attachments` array; absent means none.
pub(crate) fn take_attachments(
    obj: &mut Map<String, Value>,
) -> Result<Vec<Attachment>, AttachmentsError> {
    match obj.shift_remove("attachments") {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .into_iter()
            .enumerate()
            .map(|(index, item)| {
                Attachment::from_json(item).map_err(|error| AttachmentsError::At { index, error })
            })
            .collect(),
        Some(other) => Err(AttachmentsError::NotAnArray {
            found: JsonKind::of(&other),
        }),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn strict_base64() {
        assert_eq!(decode_base64("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(decode_base64("").unwrap(), b"");
        assert_eq!(
            decode_base64("aGVs bG8=").unwrap_err(),
            Base64Error::Whitespace { offset: 4 }
        );
        assert_eq!(
            decode_base64("aGVsbG8=\n").unwrap_err(),
            Base64Error::Whitespace { offset: 8 }
        );
        assert_eq!(
            decode_base64("-_8=").unwrap_err(),
            Base64Error::UrlSafe {
                found: '-',
                offset: 0
            }
        );
        assert_eq!(
            decode_base64("aGVsbG8").unwrap_err(),
            Base64Error::Unpadded { len: 7 }
        );
        assert!(matches!(
            decode_base64("aGVsbG8*").unwrap_err(),
            Base64Error::Invalid { .. }
        ));
        assert!(
            matches!(
                decode_base64("aGVsbG9=").unwrap_err(),
                Base64Error::Invalid { .. }
            ),
            "non-canonical trailing bits"
        );
        assert!(matches!(
            decode_base64("a===").unwrap_err(),
            Base64Error::Invalid { .. }
        ));
    }

    #[test]
    fn roundtrip_preserves_unknown_fields() {
        let json = r#"{"filename":"a.txt","content":"aGk=","mime":"text/plain"}"#;
        let a = Attachment::from_json(serde_json::from_str(json).unwrap()).unwrap();
        assert_eq!(a.content, b"hi");
        assert_eq!(serde_json::to_string(&a).unwrap(), json);
    }
}
