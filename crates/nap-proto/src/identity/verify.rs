//! The receiver's side of §13: classifying a request (§13.7), with the
//! acceptable-`sub` rule (§13.7.1), the replay window and the nonce set,
//! and the authorship check for stored messages (§13.8).
//!
//! [`SenderVerifier`] is a sans-IO state machine: the caller passes the
//! time of arrival in; the only state is the nonce set.

use std::collections::{BTreeMap, HashMap};
use std::num::NonZeroUsize;
use std::time::{Duration, SystemTime};

use crate::error::{ServiceError, StatusCode};

use super::agent_id::Account;
use super::sender_header::{MalformedSender, SenderHeader, SignedSender};
use super::signing::VerifyError;
use super::trust::{MinSenderTrust, Sender, TrustClass, VerifiedSender};

/// The default replay window: a signed `ts` may be this far from the
/// receiver's clock, either way (§13.7 step 3).
pub const DEFAULT_REPLAY_WINDOW: Duration = Duration::from_secs(30);

/// The default bound of the nonce set, in entries.
pub const DEFAULT_NONCE_CAPACITY: usize = 100_000;

/// The `Nats-Service-Error` text of a `400` for a malformed header.
pub const MALFORMED_DESCRIPTION: &str = "malformed Agent-Sender header";
/// The `Nats-Service-Error` text of a `401` when a signature is needed.
pub const SIGNATURE_REQUIRED_DESCRIPTION: &str = "signature required";
/// The `Nats-Service-Error` text of a `401` for a failing signature and of
/// a `403` for a refused verified sender.
pub const SENDER_REJECTED_DESCRIPTION: &str = "sender rejected";

/// An import that renamed subjects on their way to the receiver, which
/// the receiver knows about (§13.7.1 (c)): an arrival subject starting
/// with the tokens of `seen` was published, in the signer's own account,
/// with those tokens replaced by `published`.
///
/// Only whole leading tokens are mapped, which covers a `to:` /
/// `local_subject` rename of a `prefix.>` import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectRename {
    seen: Vec<String>,
    published: Vec<String>,
}

impl SubjectRename {
    /// A rename of the leading tokens `seen` (as the receiver sees them)
    /// back to `published` (as the signer published them). Both are
    /// literal subjects without wildcards.
    pub fn new(seen: &str, published: &str) -> Option<SubjectRename> {
        let split = |s: &str| -> Option<Vec<String>> {
            let tokens: Vec<String> = s.split('.').map(str::to_owned).collect();
            tokens
                .iter()
                .all(|t| !t.is_empty() && t != "*" && t != ">")
                .then_some(tokens)
        };
        Some(SubjectRename {
            seen: split(seen)?,
            published: split(published)?,
        })
    }

    /// The subject the signer published, rebuilt from the arrival subject;
    /// `None` when this rename does not apply to it.
    pub fn published_subject(&self, arrival: &str) -> Option<String> {
        let tokens: Vec<&str> = arrival.split('.').collect();
        if tokens.len() < self.seen.len()
            || tokens.iter().zip(&self.seen).any(|(a, b)| *a != b.as_str())
        {
            return None;
        }
        let rest = &tokens[self.seen.len()..];
        let mut out: Vec<&str> = self.published.iter().map(String::as_str).collect();
        out.extend_from_slice(rest);
        Some(out.join("."))
    }
}

/// How a receiver relates the signed `sub` to the subject a message
/// arrived on (§13.7.1). The default accepts only equality, form (a).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SubjectPolicy {
    /// The 1-based position of the account token an export inserts
    /// (form (b)); when set, that token must equal the header's `account`.
    pub account_token_position: Option<NonZeroUsize>,
    /// Renames by imports the receiver knows (form (c)).
    pub renames: Vec<SubjectRename>,
}

/// Why a signed `sub` is not acceptable for the arrival subject (§13.7.1).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SubjectMismatch {
    /// The configured account token position is past the subject's end.
    #[error("account token position {position} is beyond the {tokens}-token arrival subject")]
    PositionBeyondSubject {
        /// The configured 1-based position.
        position: usize,
        /// The arrival subject's token count.
        tokens: usize,
    },
    /// The token at the account position is not the header's `account`.
    #[error("the arrival subject's token {position} is {found:?}, not the sender's account")]
    AccountToken {
        /// The configured 1-based position.
        position: usize,
        /// The token found there.
        found: String,
    },
    /// None of the acceptable forms gives `sub`.
    #[error("sub {sub:?} does not match the arrival subject {arrival:?}")]
    Differs {
        /// The signed subject.
        sub: String,
        /// The subject the message arrived on.
        arrival: String,
    },
}

impl SubjectPolicy {
    /// Checks `sub` against `arrival` for a sender claiming `account`
    /// (§13.7.1): (a) equality, (b) equality after removing the inserted
    /// account token, (c) equality with a subject rebuilt through a known
    /// rename. Never a pattern match.
    pub fn check(
        &self,
        sub: &str,
        arrival: &str,
        account: &Account,
    ) -> Result<(), SubjectMismatch> {
        let mut candidates: Vec<String> = vec![arrival.to_owned()];
        if let Some(position) = self.account_token_position {
            let position = position.get();
            let tokens: Vec<&str> = arrival.split('.').collect();
            let Some(found) = tokens.get(position - 1) else {
                return Err(SubjectMismatch::PositionBeyondSubject {
                    position,
                    tokens: tokens.len(),
                });
            };
            // §13.7.1: in every form, the inserted token is the header's account.
            if *found != account.as_str() {
                return Err(SubjectMismatch::AccountToken {
                    position,
                    found: (*found).to_owned(),
                });
            }
            let mut stripped = tokens.clone();
            stripped.remove(position - 1);
            candidates.push(stripped.join("."));
        }
        candidates.extend(
            self.renames
                .iter()
                .filter_map(|rename| rename.published_subject(arrival)),
        );
        if candidates.iter().any(|c| c == sub) {
            Ok(())
        } else {
            Err(SubjectMismatch::Differs {
                sub: sub.to_owned(),
                arrival: arrival.to_owned(),
            })
        }
    }
}

/// Why a signed header failed verification (§13.7 step 3). Each is a `401`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerificationFailure {
    /// The signature does not verify.
    #[error(transparent)]
    Signature(#[from] VerifyError),
    /// `sub` is not acceptable for the arrival subject.
    #[error(transparent)]
    Subject(#[from] SubjectMismatch),
    /// `ts` is outside the replay window.
    #[error("ts {ts} is outside the {window:?} replay window")]
    OutsideWindow {
        /// The signed time.
        ts: String,
        /// The window in force.
        window: Duration,
    },
    /// The `(user, nonce)` pair was seen within the window.
    #[error("nonce {nonce:?} was already used by this sender")]
    Replayed {
        /// The repeated nonce.
        nonce: String,
    },
}

/// Why a receiver refuses a request on identity grounds (§13.7, §13.9,
/// §13.7.3), with the §9.2 code each maps to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SenderRejection {
    /// `400`: the header is malformed (§13.5.1).
    #[error("malformed Agent-Sender header: {0}")]
    Malformed(#[from] MalformedSender),
    /// `401`: a signature is present and fails, whatever the endpoint requires.
    #[error("Agent-Sender verification failed: {0}")]
    Failed(#[from] VerificationFailure),
    /// `401`: the endpoint requires `signed` and the sender is not verified (§13.9).
    #[error("the endpoint requires a signed sender, the request's is {0}")]
    SignatureRequired(TrustClass),
    /// `403` for a verified sender, `401` for a claimed or absent one: the
    /// receiver's acceptance refused it (§13.7.3).
    #[error("sender not accepted ({0})")]
    NotAccepted(TrustClass),
}

impl SenderRejection {
    /// The §9.2 code (table of §13.7).
    pub fn status(&self) -> StatusCode {
        match self {
            SenderRejection::Malformed(_) => StatusCode::BadRequest,
            SenderRejection::Failed(_) | SenderRejection::SignatureRequired(_) => {
                StatusCode::Unauthorized
            }
            SenderRejection::NotAccepted(TrustClass::Verified) => StatusCode::Forbidden,
            SenderRejection::NotAccepted(_) => StatusCode::Unauthorized,
        }
    }

    /// The short, generic description sent on the wire; the detail stays
    /// in the receiver's logs ([`SenderRejection`]'s `Display`).
    pub fn description(&self) -> &'static str {
        match self {
            SenderRejection::Malformed(_) => MALFORMED_DESCRIPTION,
            SenderRejection::SignatureRequired(_)
            | SenderRejection::NotAccepted(TrustClass::Claimed | TrustClass::Absent) => {
                SIGNATURE_REQUIRED_DESCRIPTION
            }
            SenderRejection::Failed(_) | SenderRejection::NotAccepted(TrustClass::Verified) => {
                SENDER_REJECTED_DESCRIPTION
            }
        }
    }

    /// The error signal to answer with (§9, §13.7).
    pub fn to_service_error(&self) -> ServiceError {
        ServiceError::new(self.status(), self.description())
    }
}

/// The receiver's memory of `(user, nonce)` pairs (§13.7 step 3), bounded
/// in entries. An entry lives until its signed `ts` plus the window, so a
/// header stamped ahead of the receiver's clock is still caught when it
/// comes back. When full, the entries that expire first are dropped, and
/// [`NonceSet::evicted`] counts them: each could be replayed within its
/// window, which an operator should hear about.
#[derive(Debug, Clone)]
pub struct NonceSet {
    capacity: usize,
    expiry: HashMap<(String, String), (SystemTime, u64)>,
    order: BTreeMap<(SystemTime, u64), (String, String)>,
    seq: u64,
    evicted: u64,
}

impl NonceSet {
    /// An empty set holding at most `capacity` entries (at least one).
    pub fn new(capacity: usize) -> NonceSet {
        NonceSet {
            capacity: capacity.max(1),
            expiry: HashMap::new(),
            order: BTreeMap::new(),
            seq: 0,
            evicted: 0,
        }
    }

    /// How many pairs are remembered.
    pub fn len(&self) -> usize {
        self.expiry.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.expiry.is_empty()
    }

    /// How many unexpired pairs were dropped because the set was full.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    fn sweep(&mut self, now: SystemTime) {
        while let Some(entry) = self.order.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let key = entry.remove();
            self.expiry.remove(&key);
        }
    }

    /// Whether `(user, nonce)` is remembered and unexpired at `now`.
    pub fn contains(&mut self, now: SystemTime, user: &str, nonce: &str) -> bool {
        self.sweep(now);
        self.expiry
            .contains_key(&(user.to_owned(), nonce.to_owned()))
    }

    /// Remembers `(user, nonce)` until `expires`; false (and nothing
    /// changes) when it is already remembered. A pair that has already
    /// expired is not stored.
    pub fn insert(
        &mut self,
        now: SystemTime,
        user: &str,
        nonce: &str,
        expires: SystemTime,
    ) -> bool {
        self.sweep(now);
        let key = (user.to_owned(), nonce.to_owned());
        if self.expiry.contains_key(&key) {
            return false;
        }
        if expires <= now {
            return true;
        }
        while self.expiry.len() >= self.capacity {
            let Some((_, oldest)) = self.order.pop_first() else {
                break;
            };
            self.expiry.remove(&oldest);
            self.evicted += 1;
        }
        self.seq += 1;
        self.order.insert((expires, self.seq), key.clone());
        self.expiry.insert(key, (expires, self.seq));
        true
    }
}

/// The receiver's configuration (§13.7): how `sub` relates to the arrival
/// subject, the replay window and the nonce set's bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierConfig {
    /// The acceptable-`sub` rule (§13.7.1).
    pub subjects: SubjectPolicy,
    /// How far `ts` may be from the receiver's clock (default 30 s).
    pub replay_window: Duration,
    /// The nonce set's bound in entries.
    pub nonce_capacity: usize,
}

impl Default for VerifierConfig {
    fn default() -> Self {
        VerifierConfig {
            subjects: SubjectPolicy::default(),
            replay_window: DEFAULT_REPLAY_WINDOW,
            nonce_capacity: DEFAULT_NONCE_CAPACITY,
        }
    }
}

/// Classifies received messages (§13.7) and remembers nonces.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use nap_proto::identity::{Account, MinSenderTrust, Nonce, SenderSigner, SenderTime, SenderVerifier, TrustClass};
///
/// let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
/// let signer = SenderSigner::new("SUAEJ6GDK6FSSB54LD45Q7W25AW7NUT7MVLBABIR5MIPFUTBW7ZNPK2KYE", Account::new("ACME").unwrap()).unwrap();
/// let subject = "agents.prompt.echo.alice.demo";
/// let header = signer.sign(subject, SenderTime::from_system_time(now).unwrap(), Nonce::new("n1").unwrap(), b"hi").unwrap().encode();
///
/// let mut verifier = SenderVerifier::default();
/// let sender = verifier.admit(now, subject, [header.as_str()], b"hi", MinSenderTrust::Signed).unwrap();
/// assert_eq!(sender.class(), TrustClass::Verified);
/// // The same header again is a replay: 401.
/// let replay = verifier.admit(now, subject, [header.as_str()], b"hi", MinSenderTrust::Any).unwrap_err();
/// assert_eq!(replay.status().as_u16(), 401);
/// ```
#[derive(Debug, Clone)]
pub struct SenderVerifier {
    config: VerifierConfig,
    nonces: NonceSet,
}

impl Default for SenderVerifier {
    fn default() -> Self {
        SenderVerifier::new(VerifierConfig::default())
    }
}

impl SenderVerifier {
    /// A verifier with an empty nonce set.
    pub fn new(config: VerifierConfig) -> SenderVerifier {
        let nonces = NonceSet::new(config.nonce_capacity);
        SenderVerifier { config, nonces }
    }

    /// The configuration in force.
    pub fn config(&self) -> &VerifierConfig {
        &self.config
    }

    /// The nonce set (for its size and eviction count).
    pub fn nonces(&self) -> &NonceSet {
        &self.nonces
    }

    /// Classifies one message (§13.7): `values` are its `Agent-Sender`
    /// header values, `arrival` the subject it arrived on, `payload` its
    /// body, `now` the receiver's clock. A verified sender's nonce is
    /// remembered, so the same header is refused the second time.
    pub fn classify<'a>(
        &mut self,
        now: SystemTime,
        arrival: &str,
        values: impl IntoIterator<Item = &'a str>,
        payload: &[u8],
    ) -> Result<Sender, SenderRejection> {
        match SenderHeader::from_values(values)? {
            SenderHeader::Absent | SenderHeader::UnknownVersion => Ok(Sender::Absent),
            SenderHeader::Claimed(claim) => Ok(Sender::Claimed(claim)),
            SenderHeader::Signed(header) => {
                self.verify_live(now, arrival, &header, payload)?;
                Ok(Sender::Verified(VerifiedSender { header }))
            }
        }
    }

    /// [`SenderVerifier::classify`] followed by the endpoint's requirement
    /// (§13.9): what a `prompt` endpoint runs before its agent sees the
    /// request.
    pub fn admit<'a>(
        &mut self,
        now: SystemTime,
        arrival: &str,
        values: impl IntoIterator<Item = &'a str>,
        payload: &[u8],
        requirement: MinSenderTrust,
    ) -> Result<Sender, SenderRejection> {
        let sender = self.classify(now, arrival, values, payload)?;
        if !requirement.admits(sender.class()) {
            return Err(SenderRejection::SignatureRequired(sender.class()));
        }
        Ok(sender)
    }

    fn verify_live(
        &mut self,
        now: SystemTime,
        arrival: &str,
        header: &SignedSender,
        payload: &[u8],
    ) -> Result<(), VerificationFailure> {
        // The cheap checks first (§13.7 step 3 allows any order).
        self.config
            .subjects
            .check(&header.sub, arrival, header.id.account())?;
        let ts = header.ts.system_time();
        let window = self.config.replay_window;
        let skew = match now.duration_since(ts) {
            Ok(behind) => behind,
            Err(ahead) => ahead.duration(),
        };
        if skew > window {
            return Err(VerificationFailure::OutsideWindow {
                ts: header.ts.to_string(),
                window,
            });
        }
        let user = header.id.user().as_str();
        let nonce = header.nonce.as_str();
        if self.nonces.contains(now, user, nonce) {
            return Err(VerificationFailure::Replayed {
                nonce: nonce.to_owned(),
            });
        }
        header.verify_signature(payload)?;
        // Only a header that passed everything is remembered, so a forged
        // one cannot use up a genuine sender's nonce.
        let expires = ts.checked_add(window).unwrap_or(ts);
        if !self.nonces.insert(now, user, nonce, expires) {
            return Err(VerificationFailure::Replayed {
                nonce: nonce.to_owned(),
            });
        }
        Ok(())
    }
}

/// Why a stored message's authorship does not verify (§13.8).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoredError {
    /// The header is malformed.
    #[error(transparent)]
    Malformed(#[from] MalformedSender),
    /// The message carries no signed header.
    #[error("the message carries no signed Agent-Sender header ({0})")]
    NotSigned(TrustClass),
    /// `sub` is not acceptable for the stored subject.
    #[error(transparent)]
    Subject(#[from] SubjectMismatch),
    /// The signature does not verify.
    #[error(transparent)]
    Signature(#[from] VerifyError),
}

/// Verifies the authorship of a stored message (§13.8): the signature and
/// `sub` against the stored subject, under the same subject policy as live
/// traffic, without a replay window or nonce set. Consumers that need
/// uniqueness deduplicate on `(user, nonce)` themselves.
pub fn verify_stored<'a>(
    subject: &str,
    values: impl IntoIterator<Item = &'a str>,
    payload: &[u8],
    policy: &SubjectPolicy,
) -> Result<VerifiedSender, StoredError> {
    let header = match SenderHeader::from_values(values)? {
        SenderHeader::Signed(header) => header,
        SenderHeader::Claimed(_) => return Err(StoredError::NotSigned(TrustClass::Claimed)),
        SenderHeader::Absent | SenderHeader::UnknownVersion => {
            return Err(StoredError::NotSigned(TrustClass::Absent));
        }
    };
    policy.check(&header.sub, subject, header.id.account())?;
    header.verify_signature(payload)?;
    Ok(VerifiedSender { header })
}
