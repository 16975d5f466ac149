//! Response-stream chunks: `{ "type": ..., "data": ... }` (§6.2).
//!
//! Three types are defined: `response` (§6.3), `status` (§6.4) and `query`
//! (§7.1). Any other type decodes to [`Chunk::Unknown`], which callers skip
//! (§6.2, §6.6).

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value};

use crate::attachment::{Attachment, AttachmentsError, take_attachments};
use crate::json::{FieldError, JsonKind, take_string};

/// One non-terminating message of a response stream (§6.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chunk {
    /// Content from the agent (§6.3).
    Response(ResponseData),
    /// A lifecycle signal (§6.4).
    Status(StatusToken),
    /// A mid-stream question to the caller (§7.1).
    Query(Query),
    /// A type this version does not define; callers MUST ignore it (§6.6).
    Unknown {
        /// The `type` value.
        kind: String,
        /// The `data` value, untouched.
        data: Value,
    },
}

/// The `data` of a `response` chunk: a bare string or an object (§6.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseData {
    /// `"data": "text"`.
    Text(String),
    /// `"data": { "text": ..., "attachments": [...] }`.
    Object {
        /// The response text.
        text: String,
        /// Attachments from the agent, possibly none.
        attachments: Vec<Attachment>,
        /// Unknown fields, preserved when relaying (§6.6).
        extra: Map<String, Value>,
    },
}

impl ResponseData {
    /// The text, whichever form carried it.
    pub fn text(&self) -> &str {
        match self {
            ResponseData::Text(t) | ResponseData::Object { text: t, .. } => t,
        }
    }

    /// The attachments (none in the string form).
    pub fn attachments(&self) -> &[Attachment] {
        match self {
            ResponseData::Text(_) => &[],
            ResponseData::Object { attachments, .. } => attachments,
        }
    }
}

/// The token of a `status` chunk (§6.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusToken {
    /// `ack`: request accepted; resets the caller's inactivity timeout.
    Ack,
    /// Any other value; callers MUST silently ignore it (§6.4).
    Other(String),
}

impl From<String> for StatusToken {
    /// Reads a token: `ack` is [`StatusToken::Ack`], anything else is kept.
    fn from(token: String) -> Self {
        if token == StatusToken::Ack.as_str() {
            StatusToken::Ack
        } else {
            StatusToken::Other(token)
        }
    }
}

impl StatusToken {
    /// The token text.
    pub fn as_str(&self) -> &str {
        match self {
            StatusToken::Ack => "ack",
            StatusToken::Other(s) => s,
        }
    }
}

/// A mid-stream query (§7.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// Opaque correlation id, SHOULD be a UUID.
    pub id: String,
    /// Where the caller publishes its one reply (§7.2).
    pub reply_subject: String,
    /// The question.
    pub prompt: String,
    /// Optional attachments (§5.2 shape).
    pub attachments: Vec<Attachment>,
    /// Unknown fields, preserved when relaying.
    pub extra: Map<String, Value>,
}

/// Why a message is not a well-formed chunk (§6.2).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChunkError {
    /// The body is not JSON (plain-text shorthand is not accepted on the response side, §6.2).
    #[error("chunk is not a JSON object: {source} (§6.2)")]
    NotJson {
        /// The JSON parser's report.
        #[source]
        source: serde_json::Error,
    },
    /// `type` or `data` is missing or `type` is not a string.
    #[error("chunk {0} (§6.2)")]
    Wrapper(FieldError),
    /// `response` data is neither a string nor an object with a string `text`.
    #[error(
        "response chunk: `data` must be a string or an object with `text`, found {found} (§6.3)"
    )]
    ResponseData {
        /// What `data` was.
        found: JsonKind,
    },
    /// `response` object data has a bad `text`.
    #[error("response chunk: {0} (§6.3)")]
    ResponseText(FieldError),
    /// `status` data is not a string.
    #[error("status chunk: `data` must be a string, found {found} (§6.4)")]
    StatusData {
        /// What `data` was.
        found: JsonKind,
    },
    /// `query` data is not an object.
    #[error("query chunk: `data` must be an object, found {found} (§7.1)")]
    QueryData {
        /// What `data` was.
        found: JsonKind,
    },
    /// A required `query` field is missing or mistyped.
    #[error("query chunk: {0} (§7.1)")]
    QueryField(FieldError),
    /// Attachments in a response or query are malformed.
    #[error("{0} (§5.2)")]
    Attachments(#[from] AttachmentsError),
}

/// The exact bytes of the `ack` status chunk (§6.4), the first message of
/// every response stream and the keep-alive.
pub const ACK_JSON: &[u8] = br#"{"type":"status","data":"ack"}"#;

impl Chunk {
    /// The `ack` status chunk (§6.4).
    pub const ACK: Chunk = Chunk::Status(StatusToken::Ack);

    /// A string-form response chunk (§6.3).
    pub fn text(text: impl Into<String>) -> Self {
        Chunk::Response(ResponseData::Text(text.into()))
    }

    /// The `type` discriminator of this chunk.
    pub fn kind(&self) -> &str {
        match self {
            Chunk::Response(_) => "response",
            Chunk::Status(_) => "status",
            Chunk::Query(_) => "query",
            Chunk::Unknown { kind, .. } => kind,
        }
    }

    /// Decodes one chunk from a message body.
    pub fn decode(body: &[u8]) -> Result<Self, ChunkError> {
        if let Some(chunk) = Self::decode_plain(body) {
            return Ok(chunk);
        }
        let mut obj: Map<String, Value> =
            serde_json::from_slice(body).map_err(|source| ChunkError::NotJson { source })?;
        let kind = take_string(&mut obj, "type").map_err(ChunkError::Wrapper)?;
        let data = obj
            .shift_remove("data")
            .ok_or(ChunkError::Wrapper(FieldError::Missing { field: "data" }))?;
        match kind.as_str() {
            "response" => decode_response(data).map(Chunk::Response),
            "status" => match data {
                Value::String(s) if s == "ack" => Ok(Chunk::ACK),
                Value::String(s) => Ok(Chunk::Status(StatusToken::Other(s))),
                other => Err(ChunkError::StatusData {
                    found: JsonKind::of(&other),
                }),
            },
            "query" => decode_query(data).map(Chunk::Query),
            _ => Ok(Chunk::Unknown { kind, data }),
        }
    }

    /// The compact JSON wire form, e.g. `{"type":"status","data":"ack"}`.
    pub fn encode(&self) -> Vec<u8> {
        if matches!(self, Chunk::Status(StatusToken::Ack)) {
            return ACK_JSON.to_vec();
        }
        let mut out = Vec::with_capacity(self.size_hint());
        // ok: serialising strings and JSON values to a Vec cannot fail.
        let _ = serde_json::to_writer(&mut out, self);
        out
    }

    /// A guess of the encoded size, so that encoding allocates once.
    fn size_hint(&self) -> usize {
        const WRAPPER: usize = 48;
        let text = match self {
            Chunk::Response(data) => data.text().len(),
            Chunk::Status(token) => token.as_str().len(),
            Chunk::Query(q) => q.prompt.len() + q.reply_subject.len() + q.id.len() + 64,
            Chunk::Unknown { .. } => 64,
        };
        // Room for a little escaping on top of the raw text.
        WRAPPER + text + text / 16
    }
}

/// The shape of nearly every chunk on the wire: a type and a string.
#[derive(serde::Deserialize)]
struct PlainChunk<'a> {
    #[serde(rename = "type", borrow)]
    kind: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    data: std::borrow::Cow<'a, str>,
}

impl Chunk {
    /// The fast path of [`Chunk::decode`]: a `response` or `status` chunk
    /// whose `data` is a string, read without building a JSON tree. Any
    /// other shape (or a duplicate key, or anything unusual) returns `None`
    /// and goes through the general reader, which gives precise errors.
    fn decode_plain(body: &[u8]) -> Option<Chunk> {
        let plain: PlainChunk<'_> = serde_json::from_slice(body).ok()?;
        match plain.kind.as_ref() {
            "response" => Some(Chunk::Response(ResponseData::Text(plain.data.into_owned()))),
            "status" => Some(Chunk::Status(plain.data.into_owned().into())),
            _ => None,
        }
    }
}

fn decode_response(data: Value) -> Result<ResponseData, ChunkError> {
    match data {
        Value::String(s) => Ok(ResponseData::Text(s)),
        Value::Object(mut obj) => {
            let text = take_string(&mut obj, "text").map_err(ChunkError::ResponseText)?;
            let attachments = take_attachments(&mut obj)?;
            Ok(ResponseData::Object {
                text,
                attachments,
                extra: obj,
            })
        }
        other => Err(ChunkError::ResponseData {
            found: JsonKind::of(&other),
        }),
    }
}

fn decode_query(data: Value) -> Result<Query, ChunkError> {
    let Value::Object(mut obj) = data else {
        return Err(ChunkError::QueryData {
            found: JsonKind::of(&data),
        });
    };
    let id = take_string(&mut obj, "id").map_err(ChunkError::QueryField)?;
    let reply_subject = take_string(&mut obj, "reply_subject").map_err(ChunkError::QueryField)?;
    let prompt = take_string(&mut obj, "prompt").map_err(ChunkError::QueryField)?;
    let attachments = take_attachments(&mut obj)?;
    Ok(Query {
        id,
        reply_subject,
        prompt,
        attachments,
        extra: obj,
    })
}

struct DataRef<'a>(&'a Chunk);

impl Serialize for DataRef<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Chunk::Response(ResponseData::Text(t)) => serializer.serialize_str(t),
            Chunk::Response(ResponseData::Object {
                text,
                attachments,
                extra,
            }) => {
                let mut map = serializer.serialize_map(None)?;
                map.serialize_entry("text", text)?;
                if !attachments.is_empty() {
                    map.serialize_entry("attachments", attachments)?;
                }
                for (k, v) in extra {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
            Chunk::Status(token) => serializer.serialize_str(token.as_str()),
            Chunk::Query(q) => {
                let mut map = serializer.serialize_map(None)?;
                map.serialize_entry("id", &q.id)?;
                map.serialize_entry("reply_subject", &q.reply_subject)?;
                map.serialize_entry("prompt", &q.prompt)?;
                if !q.attachments.is_empty() {
                    map.serialize_entry("attachments", &q.attachments)?;
                }
                for (k, v) in &q.extra {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
            Chunk::Unknown { data, .. } => data.serialize(serializer),
        }
    }
}

impl Serialize for Chunk {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("type", self.kind())?;
        map.serialize_entry("data", &DataRef(self))?;
        map.end()
    }
}
