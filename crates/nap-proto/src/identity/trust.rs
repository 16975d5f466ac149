//! Trust classes (§13.1) and what a `prompt` endpoint requires of a sender
//! (§13.9).

use std::fmt;

use serde_json::Value;

use super::agent_id::AgentId;
use super::sender_header::{DisplayName, SenderClaim, SignedSender};

/// The `prompt` endpoint metadata key that declares the requirement (§13.9).
pub const MIN_SENDER_TRUST_KEY: &str = "min_sender_trust";

/// What a `prompt` endpoint requires of the sender before it serves a
/// request (§13.9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MinSenderTrust {
    /// Every request is served, with whatever sender it carries: the
    /// default, and what an endpoint without the key implies.
    #[default]
    Any,
    /// Only verified requests are served; others get `401`.
    Signed,
}

impl MinSenderTrust {
    /// The wire value: `any` or `signed`.
    pub const fn as_str(self) -> &'static str {
        match self {
            MinSenderTrust::Any => "any",
            MinSenderTrust::Signed => "signed",
        }
    }

    /// Reads the declared value as a caller must (§13.9): `any` and
    /// `signed` as written, anything else, of any JSON type, as `signed`,
    /// the strictest level a caller can meet by itself.
    pub fn from_declared(value: &Value) -> MinSenderTrust {
        match value {
            Value::String(s) if s == "any" => MinSenderTrust::Any,
            _ => MinSenderTrust::Signed,
        }
    }

    /// Reads an endpoint's metadata value as an agent configures it: only
    /// the two defined words.
    pub fn parse(text: &str) -> Option<MinSenderTrust> {
        match text {
            "any" => Some(MinSenderTrust::Any),
            "signed" => Some(MinSenderTrust::Signed),
            _ => None,
        }
    }

    /// Whether a sender of class `class` meets this requirement.
    pub fn admits(self, class: TrustClass) -> bool {
        match self {
            MinSenderTrust::Any => true,
            MinSenderTrust::Signed => class == TrustClass::Verified,
        }
    }
}

impl fmt::Display for MinSenderTrust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for MinSenderTrust {
    type Err = UnknownTrust;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        MinSenderTrust::parse(s).ok_or_else(|| UnknownTrust(s.to_owned()))
    }
}

/// A `min_sender_trust` value other than `any` or `signed`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a min_sender_trust value (any, signed)")]
pub struct UnknownTrust(pub String);

/// The three trust classes of §13.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrustClass {
    /// A valid signature by the sender's user NKEY: proof.
    Verified,
    /// An identity without proof: for display only.
    Claimed,
    /// No sender at all.
    Absent,
}

impl TrustClass {
    /// `verified`, `claimed` or `absent`.
    pub const fn as_str(self) -> &'static str {
        match self {
            TrustClass::Verified => "verified",
            TrustClass::Claimed => "claimed",
            TrustClass::Absent => "absent",
        }
    }
}

impl fmt::Display for TrustClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A sender whose header passed every check of §13.7 step 3.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedSender {
    /// The header as received; its `id.user()` is proven, its `id.account()`
    /// is the signer's word (§13.7.2).
    pub header: SignedSender,
}

impl VerifiedSender {
    /// The verified agent ID.
    pub fn id(&self) -> &AgentId {
        &self.header.id
    }

    /// The display name, outside the signature (§13.5).
    pub fn name(&self) -> Option<&DisplayName> {
        self.header.name.as_ref()
    }
}

/// Who sent a request, as the receiver classified it (§13.7): what a host
/// hands its agent.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Sender {
    /// Verified by signature (§13.7 step 3).
    Verified(VerifiedSender),
    /// A well-formed header without a signature (§13.7 step 4).
    Claimed(SenderClaim),
    /// No header, or an unknown version (§13.7 step 1).
    #[default]
    Absent,
}

impl Sender {
    /// The trust class.
    pub fn class(&self) -> TrustClass {
        match self {
            Sender::Verified(_) => TrustClass::Verified,
            Sender::Claimed(_) => TrustClass::Claimed,
            Sender::Absent => TrustClass::Absent,
        }
    }

    /// The agent ID the sender proved, if any. Never a claim.
    pub fn verified_id(&self) -> Option<&AgentId> {
        match self {
            Sender::Verified(v) => Some(v.id()),
            Sender::Claimed(_) | Sender::Absent => None,
        }
    }

    /// The agent ID the header names, proven or claimed: for display and
    /// logs, next to [`Sender::class`] (§13.12).
    pub fn shown_id(&self) -> Option<&AgentId> {
        match self {
            Sender::Verified(v) => Some(v.id()),
            Sender::Claimed(c) => Some(&c.id),
            Sender::Absent => None,
        }
    }

    /// The display name the header carries, if any.
    pub fn name(&self) -> Option<&DisplayName> {
        match self {
            Sender::Verified(v) => v.name(),
            Sender::Claimed(c) => c.name.as_ref(),
            Sender::Absent => None,
        }
    }
}

/// `verified {account}.{user}`, `claimed {account}.{user}` or `absent`: the
/// class always beside the ID, so that a claim never reads as proof (§13.12).
impl fmt::Display for Sender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.shown_id() {
            Some(id) => write!(f, "{} {id}", self.class()),
            None => f.write_str(self.class().as_str()),
        }
    }
}
