//! The `Agent-Sender` header (§13.5): its name, its value types, and the
//! encoder and decoder of its compact JSON value (§13.5.1).
//!
//! Decoding sorts a received value into the classes of §13.7 steps 1, 2 and
//! 4 that need no keys: absent, unknown version, malformed (an error),
//! claimed, and signed. A [`SenderHeader::Signed`] value is *not yet
//! verified*: its signature is checked by
//! [`SignedSender::verify_signature`](super::SignedSender::verify_signature),
//! and the rest of §13.7 (arrival subject, replay window, nonce set) is
//! the receiver's verification policy, which lives elsewhere.

use std::fmt;
use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::agent_id::{AgentId, AgentIdError};
use crate::json::JsonKind;

/// The header name, matched case-sensitively (§13.5.1).
pub const SENDER_HEADER: &str = "Agent-Sender";

/// The header format version this crate reads and writes, the JSON number `1` (§13.5).
pub const SENDER_HEADER_VERSION: u64 = 1;

/// Bytes the NATS header framing adds around one `Agent-Sender` value in a
/// message that has no other header: `NATS/1.0\r\n`, `Agent-Sender: `,
/// and `\r\n\r\n` (Appendix B.13: a 373-byte value makes a 401-byte block).
/// The server counts them against `max_payload` (§13.5.1).
pub const SENDER_HEADER_FRAMING: usize = 28;

/// Longest display name, in UTF-16 code units, the peer SDKs accept.
pub const MAX_NAME_UTF16: usize = 64;

/// Longest nonce (§13.5).
pub const MAX_NONCE_LEN: usize = 64;

/// Size of an ed25519 signature in bytes (§13.6.1).
pub const SIGNATURE_LEN: usize = 64;

/// Why a display name cannot travel in the header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// The name is longer than [`MAX_NAME_UTF16`] UTF-16 code units.
    #[error("the display name is longer than {MAX_NAME_UTF16} UTF-16 code units")]
    TooLong,
    /// The name contains a control character or a line/paragraph separator.
    #[error("the display name contains a control character")]
    ControlCharacter,
}

/// A display name for the `name` field (§13.5): shown to people, never an
/// identity and never signed.
///
/// The spec leaves the content open; this type applies the limits the
/// Python and TypeScript SDKs enforce on both ends (at most 64 UTF-16 code
/// units, no control characters, no U+2028/U+2029), so a name this crate
/// sends is never refused by them as malformed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct DisplayName(String);

impl DisplayName {
    /// Validates a display name.
    pub fn new(name: impl Into<String>) -> Result<Self, NameError> {
        let name = name.into();
        if name.encode_utf16().count() > MAX_NAME_UTF16 {
            return Err(NameError::TooLong);
        }
        if name
            .chars()
            .any(|c| c.is_control() || c == '\u{2028}' || c == '\u{2029}')
        {
            return Err(NameError::ControlCharacter);
        }
        Ok(DisplayName(name))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DisplayName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a nonce is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NonceError {
    /// The nonce is empty or longer than [`MAX_NONCE_LEN`] characters.
    #[error("a nonce has 1 to {MAX_NONCE_LEN} characters, this one has {0}")]
    Length(usize),
    /// The nonce has a character outside `[A-Za-z0-9_-]`.
    #[error("a nonce may only use `A-Z`, `a-z`, `0-9`, `_` and `-`")]
    Alphabet,
}

/// A per-request nonce (§13.5): 1–64 characters of `[A-Za-z0-9_-]`.
///
/// This crate has no randomness; the caller brings the nonce (a NUID is
/// the recommended choice).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Nonce(String);

impl Nonce {
    /// Validates a nonce by the §13.5 alphabet and length.
    pub fn new(nonce: impl Into<String>) -> Result<Self, NonceError> {
        let nonce = nonce.into();
        // §13.5: 1–64 characters from `[A-Za-z0-9_-]`.
        if nonce.is_empty() || nonce.len() > MAX_NONCE_LEN {
            return Err(NonceError::Length(nonce.len()));
        }
        if !nonce
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(NonceError::Alphabet);
        }
        Ok(Nonce(nonce))
    }

    /// The nonce as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Nonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a `ts` value is not an acceptable request time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TimestampError {
    /// The text is not `YYYY-MM-DDTHH:MM:SS[.fraction]Z`.
    #[error("a sender timestamp is RFC 3339 UTC: `YYYY-MM-DDTHH:MM:SS[.fraction]Z`")]
    Shape,
    /// The text has the right shape but names no real instant (month 13, …).
    #[error("the sender timestamp names no real date and time")]
    OutOfRange,
}

/// The request time `ts` of a signed header (§13.5).
///
/// Keeps the text exactly as written, because the signed input carries it
/// byte for byte (§13.6.1), next to the instant it names. This crate reads
/// no clock: a signer passes the time in.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SenderTime {
    text: String,
    at: OffsetDateTime,
}

impl SenderTime {
    /// Parses a received `ts`: RFC 3339 in UTC with the `Z` suffix, with or
    /// without fractional seconds (§13.5: verifiers accept fractions).
    pub fn parse(text: &str) -> Result<Self, TimestampError> {
        if !has_timestamp_shape(text.as_bytes()) {
            return Err(TimestampError::Shape);
        }
        let at = OffsetDateTime::parse(text, &Rfc3339).map_err(|_| TimestampError::OutOfRange)?;
        Ok(SenderTime {
            text: text.to_owned(),
            at,
        })
    }

    /// The time a signer stamps for `now`: second precision with the `Z`
    /// suffix, as §13.5 recommends; the sub-second part is dropped.
    pub fn from_system_time(now: SystemTime) -> Result<Self, TimestampError> {
        let at = OffsetDateTime::from(now)
            .replace_nanosecond(0)
            .map_err(|_| TimestampError::OutOfRange)?;
        if !(0..=9999).contains(&at.year()) {
            return Err(TimestampError::OutOfRange);
        }
        let text = format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            at.year(),
            u8::from(at.month()),
            at.day(),
            at.hour(),
            at.minute(),
            at.second()
        );
        Ok(SenderTime { text, at })
    }

    /// The text exactly as it travels in `ts`.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The instant the text names.
    pub fn instant(&self) -> OffsetDateTime {
        self.at
    }

    /// The instant as a [`SystemTime`], to compare with a receiver's clock.
    pub fn system_time(&self) -> SystemTime {
        SystemTime::from(self.at)
    }
}

impl fmt::Display for SenderTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// `YYYY-MM-DDTHH:MM:SS`, then `Z` or `.` with at least one digit and `Z`.
fn has_timestamp_shape(b: &[u8]) -> bool {
    const HEAD: &[u8; 19] = b"0000-00-00T00:00:00";
    if b.len() < 20 || b[b.len() - 1] != b'Z' {
        return false;
    }
    let head_ok = HEAD.iter().zip(b).all(|(&want, &got)| {
        if want == b'0' {
            got.is_ascii_digit()
        } else {
            got == want
        }
    });
    let tail = &b[19..b.len() - 1];
    let tail_ok = match tail.split_first() {
        None => true,
        Some((b'.', digits)) => !digits.is_empty() && digits.iter().all(u8::is_ascii_digit),
        Some(_) => false,
    };
    head_ok && tail_ok
}

/// Why a `sig` value is not a signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// The text is not unpadded base64url.
    #[error("the signature is not unpadded base64url")]
    NotBase64Url,
    /// The decoded signature does not have 64 bytes.
    #[error("an ed25519 signature has {SIGNATURE_LEN} bytes, this one has {0}")]
    Length(usize),
}

/// An ed25519 signature, carried as unpadded base64url (86 characters) in `sig` (§13.5, §13.6.1).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature([u8; SIGNATURE_LEN]);

impl Signature {
    /// Wraps raw signature bytes.
    pub fn from_bytes(bytes: [u8; SIGNATURE_LEN]) -> Self {
        Signature(bytes)
    }

    /// Decodes the `sig` text form: unpadded, canonical base64url of 64 bytes.
    pub fn from_base64url(text: &str) -> Result<Self, SignatureError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| SignatureError::NotBase64Url)?;
        let len = bytes.len();
        let bytes: [u8; SIGNATURE_LEN] =
            bytes.try_into().map_err(|_| SignatureError::Length(len))?;
        Ok(Signature(bytes))
    }

    /// The raw signature bytes.
    pub fn as_bytes(&self) -> &[u8; SIGNATURE_LEN] {
        &self.0
    }

    /// The `sig` text form.
    pub fn to_base64url(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Signature")
            .field(&self.to_base64url())
            .finish()
    }
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base64url())
    }
}

/// A header without a signature: a claim, shown to people and never
/// trusted (§13.1, §13.7 step 4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderClaim {
    /// The agent ID the sender claims (§13.2).
    pub id: AgentId,
    /// An optional display name (§13.5).
    pub name: Option<DisplayName>,
}

impl SenderClaim {
    /// A claim of `id`, without a display name.
    pub fn new(id: AgentId) -> Self {
        SenderClaim { id, name: None }
    }

    /// The same claim with a display name.
    pub fn with_name(mut self, name: DisplayName) -> Self {
        self.name = Some(name);
        self
    }

    /// The header value: compact JSON with `v`, `account`, `user` and, when
    /// set, `name`, in that order (§13.5.1).
    pub fn encode(&self) -> String {
        encode_value(&WireHeader {
            v: SENDER_HEADER_VERSION,
            account: self.id.account().as_str(),
            user: self.id.user().as_str(),
            name: self.name.as_ref(),
            sub: None,
            ts: None,
            nonce: None,
            sig: None,
        })
    }
}

/// A header with a signature (§13.5, §13.6): what a signer sends, and what a
/// receiver decodes before it has verified anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedSender {
    /// The agent ID the signature binds (§13.2).
    pub id: AgentId,
    /// An optional display name, outside the signature (§13.5).
    pub name: Option<DisplayName>,
    /// The signed subject, byte for byte (§13.6.2).
    pub sub: String,
    /// The request time (§13.5).
    pub ts: SenderTime,
    /// The per-request nonce (§13.5).
    pub nonce: Nonce,
    /// The ed25519 signature over the signed input (§13.6.1).
    pub sig: Signature,
}

impl SignedSender {
    /// The header value: compact JSON with the fields in the order `v`,
    /// `account`, `user`, `name` (when set), `sub`, `ts`, `nonce`, `sig`
    /// (§13.5.1, Appendix B.13).
    pub fn encode(&self) -> String {
        let sig = self.sig.to_base64url();
        encode_value(&WireHeader {
            v: SENDER_HEADER_VERSION,
            account: self.id.account().as_str(),
            user: self.id.user().as_str(),
            name: self.name.as_ref(),
            sub: Some(&self.sub),
            ts: Some(self.ts.as_str()),
            nonce: Some(self.nonce.as_str()),
            sig: Some(&sig),
        })
    }

    /// The same header without its signature fields, as a claim.
    pub fn to_claim(&self) -> SenderClaim {
        SenderClaim {
            id: self.id.clone(),
            name: self.name.clone(),
        }
    }
}

/// The wire field order of §13.5 / Appendix B.13; absent fields are left out.
#[derive(Serialize)]
struct WireHeader<'a> {
    v: u64,
    account: &'a str,
    user: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a DisplayName>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sub: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ts: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sig: Option<&'a str>,
}

fn encode_value(header: &WireHeader<'_>) -> String {
    // §13.5.1: compact JSON on one line. serde_json writes no whitespace,
    // keeps non-ASCII raw and escapes control characters, so no CR or LF
    // can reach the header value.
    match serde_json::to_string(header) {
        Ok(json) => json,
        // Serialising borrowed strings and an integer into a String cannot fail.
        Err(_) => unreachable!("serialising a header of strings cannot fail"),
    }
}

/// What a receiver found in the `Agent-Sender` slot of a message (§13.5.1,
/// §13.7 steps 1, 2 and 4).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SenderHeader {
    /// No header: the message has no sender (§13.7 step 1).
    Absent,
    /// A JSON object whose `v` is a number other than 1; treated as absent
    /// (§13.5.1), but kept distinct so a receiver can log it.
    UnknownVersion,
    /// A well-formed header without `sig` (§13.7 step 4).
    Claimed(SenderClaim),
    /// A well-formed header with `sig`, not yet verified (§13.7 step 3).
    Signed(SignedSender),
}

impl SenderHeader {
    /// Classifies the values of the header in one message: none is absent,
    /// one is decoded, more than one is malformed (§13.5 asks for one header).
    pub fn from_values<'a>(
        values: impl IntoIterator<Item = &'a str>,
    ) -> Result<Self, MalformedSender> {
        // §13.5: a caller sets one `Agent-Sender` header; §13.7 step 1: none is absent.
        let mut values = values.into_iter();
        match (values.next(), values.next()) {
            (None, _) => Ok(SenderHeader::Absent),
            (Some(value), None) => SenderHeader::decode(value),
            (Some(_), Some(_)) => Err(MalformedSender::Repeated),
        }
    }

    /// Decodes one header value (§13.5.1).
    ///
    /// An unknown `v` is checked before the other fields, because a later
    /// version may shape them differently. Fields this version does not
    /// know are ignored. `sub`, `ts` and `nonce` without `sig` are checked
    /// for shape and then dropped: a claim carries no proof.
    pub fn decode(value: &str) -> Result<Self, MalformedSender> {
        // The JSON parser rejects invalid UTF-8 escapes and lone surrogates as not JSON.
        // §13.5.1: not valid JSON is malformed.
        let parsed: Value = serde_json::from_str(value).map_err(|_| MalformedSender::NotJson)?;
        let Value::Object(mut obj) = parsed else {
            return Err(MalformedSender::NotAnObject(JsonKind::of(&parsed)));
        };
        // §13.5.1: `v` is required and is a JSON number; an unknown one means absent.
        match obj.shift_remove("v") {
            None => return Err(MalformedSender::Missing("v")),
            Some(Value::Number(n)) => {
                let is_one = n.as_u64() == Some(SENDER_HEADER_VERSION)
                    || n.as_f64() == Some(SENDER_HEADER_VERSION as f64);
                if !is_one {
                    return Ok(SenderHeader::UnknownVersion);
                }
            }
            Some(other) => return Err(wrong_type("v", JsonKind::Number, &other)),
        }
        // §13.5: `account` and `user` are required and form a valid agent ID (§13.3).
        let account = required_string(&mut obj, "account")?;
        let user = required_string(&mut obj, "user")?;
        let id = AgentId::from_parts(&account, &user).map_err(MalformedSender::AgentId)?;
        // §13.5: `name` is an optional display string, never identity.
        let name = optional_string(&mut obj, "name")?
            .map(DisplayName::new)
            .transpose()
            .map_err(MalformedSender::Name)?;
        // §13.5: `sub` is the subject the caller published to.
        let sub = optional_string(&mut obj, "sub")?;
        if let Some(sub) = &sub
            && !is_subject(sub)
        {
            return Err(MalformedSender::Subject);
        }
        // §13.5: `ts` is RFC 3339 UTC; fractional seconds are accepted.
        let ts = optional_string(&mut obj, "ts")?
            .map(|ts| SenderTime::parse(&ts))
            .transpose()
            .map_err(MalformedSender::Timestamp)?;
        // §13.5: `nonce` is 1–64 characters of `[A-Za-z0-9_-]`.
        let nonce = optional_string(&mut obj, "nonce")?
            .map(Nonce::new)
            .transpose()
            .map_err(MalformedSender::Nonce)?;
        // §13.5, §13.6.1: `sig` is unpadded base64url of a 64-byte ed25519 signature.
        let sig = optional_string(&mut obj, "sig")?
            .map(|sig| Signature::from_base64url(&sig))
            .transpose()
            .map_err(MalformedSender::Signature)?;
        // §13.5: a header without `sig` is a claim.
        let Some(sig) = sig else {
            return Ok(SenderHeader::Claimed(SenderClaim { id, name }));
        };
        // §13.5.1: `sig` without all of `sub`, `ts` and `nonce` is malformed.
        let sub = sub.ok_or(MalformedSender::SignedWithout("sub"))?;
        let ts = ts.ok_or(MalformedSender::SignedWithout("ts"))?;
        let nonce = nonce.ok_or(MalformedSender::SignedWithout("nonce"))?;
        Ok(SenderHeader::Signed(SignedSender {
            id,
            name,
            sub,
            ts,
            nonce,
            sig,
        }))
    }

    /// True when the message counts as having no sender: no header or an
    /// unknown version (§13.1 "absent").
    pub fn is_absent(&self) -> bool {
        matches!(self, SenderHeader::Absent | SenderHeader::UnknownVersion)
    }

    /// The agent ID the header names, claimed or to be verified.
    pub fn agent_id(&self) -> Option<&AgentId> {
        match self {
            SenderHeader::Claimed(claim) => Some(&claim.id),
            SenderHeader::Signed(signed) => Some(&signed.id),
            SenderHeader::Absent | SenderHeader::UnknownVersion => None,
        }
    }
}

/// A subject as published: non-empty `.`-separated tokens without
/// whitespace or control characters.
fn is_subject(s: &str) -> bool {
    !s.is_empty()
        && s.split('.')
            .all(|t| !t.is_empty() && !t.chars().any(|c| c.is_whitespace() || c.is_control()))
}

fn wrong_type(field: &'static str, expected: JsonKind, found: &Value) -> MalformedSender {
    MalformedSender::WrongType {
        field,
        expected,
        found: JsonKind::of(found),
    }
}

fn required_string(
    obj: &mut Map<String, Value>,
    field: &'static str,
) -> Result<String, MalformedSender> {
    optional_string(obj, field)?.ok_or(MalformedSender::Missing(field))
}

fn optional_string(
    obj: &mut Map<String, Value>,
    field: &'static str,
) -> Result<Option<String>, MalformedSender> {
    match obj.shift_remove(field) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(wrong_type(field, JsonKind::String, &other)),
    }
}

/// Why an `Agent-Sender` header is malformed (§13.5.1). A receiver answers
/// any of these with `400` (§13.7 step 2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MalformedSender {
    /// The message carries more than one `Agent-Sender` header.
    #[error("more than one Agent-Sender header")]
    Repeated,
    /// The value is not valid JSON.
    #[error("the Agent-Sender value is not valid JSON")]
    NotJson,
    /// The value is JSON but not an object.
    #[error("the Agent-Sender value must be a JSON object, found {0}")]
    NotAnObject(JsonKind),
    /// A required field (`v`, `account` or `user`) is absent.
    #[error("the Agent-Sender field `{0}` is missing")]
    Missing(&'static str),
    /// A field has the wrong JSON type (`v` as the string `"1"`, …).
    #[error("the Agent-Sender field `{field}` must be {expected}, found {found}")]
    WrongType {
        /// The field's name.
        field: &'static str,
        /// The type the spec requires.
        expected: JsonKind,
        /// The type that was sent.
        found: JsonKind,
    },
    /// `account` and `user` do not form a valid agent ID (§13.3).
    #[error("the Agent-Sender agent ID is invalid: {0}")]
    AgentId(#[source] AgentIdError),
    /// `name` is not an acceptable display name.
    #[error("the Agent-Sender name is invalid: {0}")]
    Name(#[source] NameError),
    /// `sub` is not a subject.
    #[error("the Agent-Sender `sub` is not a NATS subject")]
    Subject,
    /// `ts` is not an RFC 3339 UTC time.
    #[error("the Agent-Sender `ts` is invalid: {0}")]
    Timestamp(#[source] TimestampError),
    /// `nonce` breaks the nonce rule.
    #[error("the Agent-Sender `nonce` is invalid: {0}")]
    Nonce(#[source] NonceError),
    /// `sig` is not a base64url ed25519 signature.
    #[error("the Agent-Sender `sig` is invalid: {0}")]
    Signature(#[source] SignatureError),
    /// `sig` is present without one of `sub`, `ts`, `nonce`.
    #[error("the Agent-Sender header has `sig` but no `{0}`")]
    SignedWithout(&'static str),
}
