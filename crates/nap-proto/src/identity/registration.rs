//! An agent's identity in its registration (§13.10): the `user_nkey`,
//! `account` and `id_sig` service metadata, and how a reader tells a
//! verified registration from a claim.

use std::collections::HashMap;
use std::fmt;

use serde_json::{Map, Value};

use super::agent_id::{AgentId, AgentIdError};
use super::sender_header::{Signature, SignatureError};
use super::signing::{SenderSigner, SigningError, VerifyError, verify_bytes};

/// The first line of the registration signature's input (§13.10).
pub const ID_SIG_TAG: &str = "AGENT-ID-V1";

/// Service metadata keys of §13.10.
pub mod keys {
    /// The agent's user public NKEY.
    pub const USER_NKEY: &str = "user_nkey";
    /// The agent's account (§13.3).
    pub const ACCOUNT: &str = "account";
    /// The signature over the identity fields.
    pub const ID_SIG: &str = "id_sig";
}

/// The bytes `id_sig` covers (§13.10): five LF-terminated lines after the
/// tag. Never sent.
pub fn id_sig_input(id: &AgentId, agent: &str, owner: &str, prompt_subject: &str) -> Vec<u8> {
    let lines = [
        ID_SIG_TAG,
        id.user().as_str(),
        id.account().as_str(),
        agent,
        owner,
        prompt_subject,
    ];
    let mut bytes = Vec::with_capacity(lines.iter().map(|l| l.len() + 1).sum());
    for line in lines {
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
    }
    bytes
}

/// The identity an agent registers (§13.10): its agent ID and `id_sig`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationIdentity {
    /// The agent ID the agent signs with.
    pub id: AgentId,
    /// The signature over the identity fields and the prompt subject.
    pub id_sig: Signature,
}

impl RegistrationIdentity {
    /// Signs the registration of `agent`/`owner` serving prompts on
    /// `prompt_subject` (the advertised subject, §13.10).
    pub fn sign(
        signer: &SenderSigner,
        agent: &str,
        owner: &str,
        prompt_subject: &str,
    ) -> Result<RegistrationIdentity, SigningError> {
        let input = id_sig_input(signer.agent_id(), agent, owner, prompt_subject);
        Ok(RegistrationIdentity {
            id: signer.agent_id().clone(),
            id_sig: signer.sign_bytes(&input)?,
        })
    }

    /// The three service metadata entries (§13.10).
    pub fn metadata(&self) -> HashMap<String, String> {
        HashMap::from([
            (keys::USER_NKEY.to_owned(), self.id.user().to_string()),
            (keys::ACCOUNT.to_owned(), self.id.account().to_string()),
            (keys::ID_SIG.to_owned(), self.id_sig.to_base64url()),
        ])
    }
}

/// Why registered identity metadata is only a claim.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClaimReason {
    /// There is no `id_sig`.
    #[error("no id_sig")]
    Unsigned,
    /// `id_sig` is not a base64url ed25519 signature.
    #[error("id_sig is not a signature: {0}")]
    BadEncoding(#[from] SignatureError),
    /// `id_sig` does not verify against `user_nkey`.
    #[error("id_sig does not verify: {0}")]
    BadSignature(#[from] VerifyError),
}

/// What a discovery record says about its agent's identity (§13.10), read
/// so that a claim is never shown as proof.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RegisteredIdentity {
    /// The record declares no identity.
    Undeclared,
    /// `id_sig` verifies: the registrant holds the seed of `user_nkey` and
    /// vouches for this prompt subject.
    Verified(AgentId),
    /// An identity without a valid `id_sig`.
    Claimed {
        /// The agent ID the metadata names.
        id: AgentId,
        /// Why it is not verified.
        reason: ClaimReason,
    },
    /// `user_nkey`/`account` are present but do not form an agent ID, or
    /// only one of them is present.
    Malformed(IdentityMetadataError),
}

/// Why registered `user_nkey`/`account` metadata is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityMetadataError {
    /// One of `user_nkey` and `account` is present without the other.
    #[error("metadata `{0}` is missing")]
    Missing(&'static str),
    /// A value is not a string.
    #[error("metadata `{0}` is not a string")]
    NotAString(&'static str),
    /// The pair is not a valid agent ID (§13.3).
    #[error("not a valid agent ID: {0}")]
    AgentId(#[from] AgentIdError),
}

impl RegisteredIdentity {
    /// Reads the identity of one record from its service `metadata`, the
    /// advertised prompt subject and the record's own `agent`/`owner`
    /// (§13.10: all from the same `$SRV.INFO` record).
    pub fn read(
        metadata: &Map<String, Value>,
        agent: &str,
        owner: &str,
        prompt_subject: &str,
    ) -> RegisteredIdentity {
        let get = |key: &'static str| -> Result<Option<&str>, IdentityMetadataError> {
            match metadata.get(key) {
                None => Ok(None),
                Some(Value::String(s)) => Ok(Some(s)),
                Some(_) => Err(IdentityMetadataError::NotAString(key)),
            }
        };
        let fields = (|| {
            Ok::<_, IdentityMetadataError>((
                get(keys::USER_NKEY)?,
                get(keys::ACCOUNT)?,
                get(keys::ID_SIG)?,
            ))
        })();
        let (user, account, sig) = match fields {
            Ok(fields) => fields,
            Err(e) => return RegisteredIdentity::Malformed(e),
        };
        let id = match (user, account) {
            (None, None) => return RegisteredIdentity::Undeclared,
            (Some(_), None) => {
                return RegisteredIdentity::Malformed(IdentityMetadataError::Missing(
                    keys::ACCOUNT,
                ));
            }
            (None, Some(_)) => {
                return RegisteredIdentity::Malformed(IdentityMetadataError::Missing(
                    keys::USER_NKEY,
                ));
            }
            (Some(user), Some(account)) => match AgentId::from_parts(account, user) {
                Ok(id) => id,
                Err(e) => return RegisteredIdentity::Malformed(e.into()),
            },
        };
        let Some(sig) = sig else {
            return RegisteredIdentity::Claimed {
                id,
                reason: ClaimReason::Unsigned,
            };
        };
        let sig = match Signature::from_base64url(sig) {
            Ok(sig) => sig,
            Err(e) => {
                return RegisteredIdentity::Claimed {
                    id,
                    reason: e.into(),
                };
            }
        };
        let input = id_sig_input(&id, agent, owner, prompt_subject);
        match verify_bytes(id.user(), &input, &sig) {
            Ok(()) => RegisteredIdentity::Verified(id),
            Err(e) => RegisteredIdentity::Claimed {
                id,
                reason: e.into(),
            },
        }
    }

    /// The agent ID, when `id_sig` verified.
    pub fn verified(&self) -> Option<&AgentId> {
        match self {
            RegisteredIdentity::Verified(id) => Some(id),
            _ => None,
        }
    }

    /// The agent ID the record names, verified or not: for display beside
    /// [`RegisteredIdentity::class`].
    pub fn shown_id(&self) -> Option<&AgentId> {
        match self {
            RegisteredIdentity::Verified(id) | RegisteredIdentity::Claimed { id, .. } => Some(id),
            RegisteredIdentity::Undeclared | RegisteredIdentity::Malformed(_) => None,
        }
    }

    /// The trust class of the registration (§13.1 vocabulary).
    pub fn class(&self) -> super::trust::TrustClass {
        use super::trust::TrustClass;
        match self {
            RegisteredIdentity::Verified(_) => TrustClass::Verified,
            RegisteredIdentity::Claimed { .. } => TrustClass::Claimed,
            RegisteredIdentity::Undeclared | RegisteredIdentity::Malformed(_) => TrustClass::Absent,
        }
    }
}

/// `verified A….U…`, `claimed A….U… (no id_sig)`, `none`, or
/// `malformed (…)`.
impl fmt::Display for RegisteredIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegisteredIdentity::Undeclared => f.write_str("none"),
            RegisteredIdentity::Verified(id) => write!(f, "verified {id}"),
            RegisteredIdentity::Claimed { id, reason } => write!(f, "claimed {id} ({reason})"),
            RegisteredIdentity::Malformed(e) => write!(f, "malformed ({e})"),
        }
    }
}
