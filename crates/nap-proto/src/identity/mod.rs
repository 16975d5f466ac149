//! Sender identity (§13), the parts that need no IO: the agent ID and its
//! text form (§13.2, §13.3), the `Agent-Sender` header (§13.5), and the
//! signed input with NKEY signing and signature checks (§13.6).
//!
//! Verification policy (§13.7: acceptable `sub`, replay window, nonce set),
//! registration signatures (`id_sig`, §13.10) and signed heartbeats
//! (§13.11) build on these types and are not here yet.
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

pub mod agent_id;
pub mod sender_header;
pub mod signing;

pub use agent_id::{
    Account, AccountError, AccountForm, AgentId, AgentIdError, GLOBAL_ACCOUNT, NkeyError, NkeyKind,
    UserKey,
};
pub use sender_header::{
    DisplayName, MalformedSender, NameError, Nonce, NonceError, SENDER_HEADER,
    SENDER_HEADER_FRAMING, SENDER_HEADER_VERSION, SenderClaim, SenderHeader, SenderTime, Signature,
    SignatureError, SignedSender, TimestampError,
};
pub use signing::{
    SENDER_SIGNED_INPUT_TAG, SeedError, SenderSigner, SignedInput, SigningError, VerifyError,
    verify_bytes,
};
