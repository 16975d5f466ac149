//! The signed input and ed25519 signing and signature checking with NKEYs (§13.6).
//!
//! Nothing here reads a clock or draws randomness: the signer passes the
//! request time and the nonce in. The signature check covers only the
//! cryptography of §13.7 step 3; the arrival-subject, replay-window and
//! nonce-set checks belong to the receiver's verification policy.

use std::fmt;

use sha2::{Digest, Sha256};

use super::agent_id::{Account, AgentId, NkeyError, UserKey};
use super::sender_header::{
    DisplayName, Nonce, SIGNATURE_LEN, SenderClaim, SenderTime, Signature, SignedSender,
};

/// The first line of the signed input, which names its format (§13.6.1).
pub const SENDER_SIGNED_INPUT_TAG: &str = "AGENT-SENDER-V1";

/// The exact bytes an `Agent-Sender` signature covers (§13.6.1). Never sent;
/// both ends rebuild it from the header fields and the payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedInput(Vec<u8>);

impl SignedInput {
    /// Builds the seven LF-terminated lines: the tag, `account`, `user`,
    /// `subject`, `ts`, `nonce`, and the lowercase hex SHA-256 of `payload`
    /// (§13.6.1). An empty payload hashes the empty string.
    pub fn new(
        id: &AgentId,
        subject: &str,
        ts: &SenderTime,
        nonce: &Nonce,
        payload: &[u8],
    ) -> Self {
        let digest = Sha256::digest(payload);
        let mut hex = String::with_capacity(64);
        for byte in digest {
            // §13.6.1: lowercase hex.
            hex.push(char::from(HEX[usize::from(byte >> 4)]));
            hex.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
        // §13.6.1: every line, the last included, ends with one LF.
        let lines = [
            SENDER_SIGNED_INPUT_TAG,
            id.account().as_str(),
            id.user().as_str(),
            subject,
            ts.as_str(),
            nonce.as_str(),
            &hex,
        ];
        let mut bytes = Vec::with_capacity(lines.iter().map(|l| l.len() + 1).sum());
        for line in lines {
            bytes.extend_from_slice(line.as_bytes());
            bytes.push(b'\n');
        }
        SignedInput(bytes)
    }

    /// The input rebuilt from a received signed header and the payload that
    /// arrived with it (§13.7 step 3).
    pub fn of_header(header: &SignedSender, payload: &[u8]) -> Self {
        SignedInput::new(&header.id, &header.sub, &header.ts, &header.nonce, payload)
    }

    /// The bytes to sign or verify.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Why a seed cannot sign `Agent-Sender` headers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SeedError {
    /// The text is not a decodable NKEY seed.
    #[error("not a valid NKEY seed")]
    Invalid,
    /// The seed is valid but not a user seed (`SU…`); only a user seed signs (§13.2.1).
    #[error("the seed is not a user seed (`SU…`)")]
    NotUser,
}

/// Why signing failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SigningError {
    /// The NKEY library refused to sign.
    #[error("the NKEY library could not sign")]
    Sign,
    /// The library returned a signature of the wrong size.
    #[error("an ed25519 signature has {SIGNATURE_LEN} bytes, the library returned {0}")]
    SignatureLength(usize),
}

/// Why a signature does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The user key passed its NKEY check but is not a usable ed25519 key.
    #[error("the user NKEY is not a usable ed25519 public key")]
    UnusableKey,
    /// The signature does not match the signed input and the user key.
    #[error("the signature does not match the signed input")]
    BadSignature,
}

/// A caller's identity with the user seed that proves it (§13.2.1, §13.4):
/// the one value that signs `Agent-Sender` headers.
///
/// The seed never leaves this value; `Debug` shows only the agent ID.
pub struct SenderSigner {
    key_pair: nkeys::KeyPair,
    id: AgentId,
    name: Option<DisplayName>,
}

impl SenderSigner {
    /// Builds a signer from a user seed (`SU…`) and the connection's account
    /// as the server reports it (§13.4). The user half of the agent ID is
    /// the seed's public key.
    pub fn new(seed: &str, account: Account) -> Result<Self, SeedError> {
        let key_pair = nkeys::KeyPair::from_seed(seed).map_err(|_| SeedError::Invalid)?;
        if key_pair.key_pair_type() != nkeys::KeyPairType::User {
            return Err(SeedError::NotUser);
        }
        let user =
            UserKey::new(key_pair.public_key()).map_err(|_: NkeyError| SeedError::NotUser)?;
        Ok(SenderSigner {
            key_pair,
            id: AgentId::new(account, user),
            name: None,
        })
    }

    /// The same signer with a display name for every header it writes.
    pub fn with_name(mut self, name: DisplayName) -> Self {
        self.name = Some(name);
        self
    }

    /// The agent ID this signer proves.
    pub fn agent_id(&self) -> &AgentId {
        &self.id
    }

    /// Signs raw bytes with the user seed (the NKEY `Sign` operation, ed25519).
    pub fn sign_bytes(&self, input: &[u8]) -> Result<Signature, SigningError> {
        let sig = self.key_pair.sign(input).map_err(|_| SigningError::Sign)?;
        let len = sig.len();
        let sig: [u8; SIGNATURE_LEN] = sig
            .try_into()
            .map_err(|_| SigningError::SignatureLength(len))?;
        Ok(Signature::from_bytes(sig))
    }

    /// A signed header for one message (§13.6): `sub` is the subject to sign
    /// (§13.6.2), `ts` and `nonce` come from the caller, `payload` is the
    /// message body exactly as it will be published.
    pub fn sign(
        &self,
        sub: impl Into<String>,
        ts: SenderTime,
        nonce: Nonce,
        payload: &[u8],
    ) -> Result<SignedSender, SigningError> {
        let sub = sub.into();
        let input = SignedInput::new(&self.id, &sub, &ts, &nonce, payload);
        let sig = self.sign_bytes(input.as_bytes())?;
        Ok(SignedSender {
            id: self.id.clone(),
            name: self.name.clone(),
            sub,
            ts,
            nonce,
            sig,
        })
    }

    /// An unsigned header naming this signer's identity (§13.5: a claim).
    pub fn claim(&self) -> SenderClaim {
        SenderClaim {
            id: self.id.clone(),
            name: self.name.clone(),
        }
    }
}

impl fmt::Debug for SenderSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SenderSigner")
            .field("id", &self.id)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Checks an ed25519 signature over `input` against a user public NKEY.
pub fn verify_bytes(user: &UserKey, input: &[u8], sig: &Signature) -> Result<(), VerifyError> {
    let key =
        nkeys::KeyPair::from_public_key(user.as_str()).map_err(|_| VerifyError::UnusableKey)?;
    key.verify(input, sig.as_bytes())
        .map_err(|_| VerifyError::BadSignature)
}

impl SignedSender {
    /// Checks `sig` against `user` over the input rebuilt from this header
    /// and the received `payload` (§13.6.1, §13.7 step 3, first check).
    ///
    /// A pass proves only that the holder of `user`'s seed signed these
    /// fields and this payload; whether `sub`, `ts` and `nonce` are
    /// acceptable is the receiver's policy, checked separately.
    pub fn verify_signature(&self, payload: &[u8]) -> Result<(), VerifyError> {
        let input = SignedInput::of_header(self, payload);
        verify_bytes(self.id.user(), input.as_bytes(), &self.sig)
    }
}
