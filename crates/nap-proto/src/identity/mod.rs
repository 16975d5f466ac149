//! Sender identity (§13), the parts that need no IO: the agent ID and its
//! text form (§13.2, §13.3), a connection's own identity (§13.4, [`own`]),
//! the `Agent-Sender` header (§13.5), the signed input with NKEY signing
//! (§13.6), the receiver's classification with its acceptable-`sub` rule,
//! replay window and nonce set (§13.7, [`verify`]), stored messages
//! (§13.8), the endpoint requirement and trust classes (§13.9, [`trust`]),
//! registration signatures (§13.10, [`registration`]) and signed
//! heartbeats (§13.11, [`sign_heartbeat`]).
//!
//! Nothing here reads a clock or draws a nonce: both come in as arguments.
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use nap_proto::identity::{Account, Nonce, SenderHeader, SenderSigner, SenderTime};
//!
//! // A caller with a user seed signs a request (§13.6) ...
//! let account = Account::new("ACME").unwrap();
//! let signer = SenderSigner::new(
//!     "SUAEJ6GDK6FSSB54LD45Q7W25AW7NUT7MVLBABIR5MIPFUTBW7ZNPK2KYE", // test-only seed
//!     account,
//! )
//! .unwrap();
//! let ts = SenderTime::from_system_time(SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)).unwrap();
//! let nonce = Nonce::new("n1").unwrap();
//! let payload = br#"{"prompt":"hello"}"#;
//! let header = signer.sign("agents.prompt.echo.alice.demo", ts, nonce, payload).unwrap();
//! let value = header.encode();
//!
//! // ... and the receiver decodes the header and checks the signature (§13.5, §13.7 step 3).
//! let SenderHeader::Signed(received) = SenderHeader::decode(&value).unwrap() else {
//!     panic!("expected a signed header")
//! };
//! assert_eq!(received.id.to_string(), signer.agent_id().to_string());
//! assert!(received.verify_signature(payload).is_ok());
//! assert!(received.verify_signature(b"another payload").is_err());
//! ```

pub(crate) mod agent_id;
pub(crate) mod caller;
pub(crate) mod own;
pub(crate) mod registration;
pub(crate) mod sender_header;
pub(crate) mod signing;
pub(crate) mod trust;
pub(crate) mod verify;

pub use agent_id::{
    Account, AccountError, AccountForm, AgentId, AgentIdError, GLOBAL_ACCOUNT, NKEY_AGENT_ID_LEN,
    NKEY_LEN, NkeyError, NkeyKind, UserKey,
};
pub use caller::{Addressing, ImportRename, SendPlan};
pub use own::{
    Credentials, CredentialsError, JwtError, NoIdentity, OwnIdentity, UNKNOWN_RETRY_AFTER,
    USER_INFO_SUBJECT, USER_INFO_TIMEOUT, UnknownIdentity, from_user_info, identity_from_jwt,
};
pub use registration::{
    ClaimReason, ID_SIG_TAG, IdentityMetadataError, RegisteredIdentity, RegistrationIdentity,
    id_sig_input,
};
pub use sender_header::{
    DisplayName, MAX_NAME_UTF16, MAX_NONCE_LEN, MalformedSender, NameError, Nonce, NonceError,
    SENDER_HEADER, SENDER_HEADER_FRAMING, SENDER_HEADER_VERSION, SIGNATURE_LEN, SenderClaim,
    SenderHeader, SenderTime, Signature, SignatureError, SignedSender, TimestampError,
};
pub use signing::{
    SENDER_SIGNED_INPUT_TAG, SeedError, SenderSigner, SignedInput, SigningError, VerifyError,
    verify_bytes,
};
pub use trust::{
    MIN_SENDER_TRUST_KEY, MinSenderTrust, Sender, TrustClass, UnknownTrust, VerifiedSender,
};
pub use verify::{
    DEFAULT_NONCE_CAPACITY, DEFAULT_REPLAY_WINDOW, MALFORMED_DESCRIPTION, NonceSet,
    SENDER_REJECTED_DESCRIPTION, SIGNATURE_REQUIRED_DESCRIPTION, SenderRejection, SenderVerifier,
    StoredError, SubjectMismatch, SubjectPolicy, SubjectRename, VerificationFailure,
    VerifierConfig, verify_stored,
};

/// The bytes one `Agent-Sender` header with `value` adds to a message when
/// it is the only header: the `NATS/1.0` line, the header line and the
/// blank line (§13.5.1: they count toward `max_payload`).
pub fn header_wire_len(value: &str) -> usize {
    SENDER_HEADER_FRAMING + value.len()
}

/// Why a heartbeat cannot be signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeartbeatSignError {
    /// The heartbeat's `ts` is not a time a header can carry.
    #[error("heartbeat ts: {0}")]
    Timestamp(#[from] TimestampError),
    /// The signature could not be made.
    #[error(transparent)]
    Signing(#[from] SigningError),
}

/// Signs a heartbeat as published (§13.11): `sub` is the heartbeat
/// subject, `ts` the beat's own `ts`, `nonce` fresh per beat, and the
/// signature covers `payload`, the beat's bytes exactly as published.
pub fn sign_heartbeat(
    signer: &SenderSigner,
    subject: &str,
    beat: &crate::heartbeat::Heartbeat,
    payload: &[u8],
    nonce: Nonce,
) -> Result<SignedSender, HeartbeatSignError> {
    let ts = SenderTime::parse(&beat.ts)?;
    Ok(signer.sign(subject, ts, nonce, payload)?)
}
