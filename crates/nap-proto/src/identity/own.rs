//! A connection's own identity (§13.4): read from the user JWT of a
//! credentials file, or from the server's `$SYS.REQ.USER.INFO` answer.
//!
//! Only the reading lives here; asking the server, timing out and retrying
//! are the transport's.

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

use super::agent_id::{Account, AccountError, AgentId, NkeyError, UserKey};

/// The subject that answers a connection's own user and account (§13.4);
/// nats-server 2.10 and later answer it.
pub const USER_INFO_SUBJECT: &str = "$SYS.REQ.USER.INFO";

/// How long to wait for the answer before the identity is unknown (§13.4).
pub const USER_INFO_TIMEOUT: Duration = Duration::from_secs(2);

/// How long an unknown identity is kept before asking again (§13.4: never
/// for the connection's lifetime).
pub const UNKNOWN_RETRY_AFTER: Duration = Duration::from_secs(5);

/// What a connection knows about its own agent ID (§13.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnIdentity {
    /// The connection is an NKEY user with a representable account.
    Known(AgentId),
    /// The server answered: the connection has no identity.
    None(NoIdentity),
    /// The implementation does not know; ask again later.
    Unknown(UnknownIdentity),
}

impl OwnIdentity {
    /// The agent ID, when known.
    pub fn agent_id(&self) -> Option<&AgentId> {
        match self {
            OwnIdentity::Known(id) => Some(id),
            OwnIdentity::None(_) | OwnIdentity::Unknown(_) => None,
        }
    }
}

impl fmt::Display for OwnIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OwnIdentity::Known(id) => write!(f, "{id}"),
            OwnIdentity::None(why) => write!(f, "none ({why})"),
            OwnIdentity::Unknown(why) => write!(f, "unknown ({why})"),
        }
    }
}

/// Why the server says a connection has no identity (§13.4 table).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NoIdentity {
    /// No authentication: the server reports no user.
    #[error("the connection is not authenticated")]
    Anonymous,
    /// A password or token user: no NKEY.
    #[error("user {0:?} is not an NKEY user")]
    NotNkeyUser(String),
    /// The account name cannot appear in an agent ID (§13.3.1).
    #[error("account {0:?} cannot be written as an agent ID account")]
    UnrepresentableAccount(String),
}

/// Why a connection does not know its identity (§13.4).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UnknownIdentity {
    /// No answer within the timeout (a server before 2.10 never answers).
    #[error("no answer from {USER_INFO_SUBJECT} (nats-server 2.10 or later answers it)")]
    NoReply,
    /// Nobody answers the subject.
    #[error("no responders on {USER_INFO_SUBJECT} (nats-server 2.10 or later answers it)")]
    NoResponders,
    /// A permission forbids publishing to the subject.
    #[error("permission denied to publish to {USER_INFO_SUBJECT}")]
    PermissionDenied,
    /// The server's answer cannot be read.
    #[error("unreadable answer from {USER_INFO_SUBJECT}: {0}")]
    BadReply(String),
    /// Two sources gave different identities.
    #[error("the credentials say {jwt}, the server says {server}")]
    Mismatch {
        /// The identity in the JWT.
        jwt: AgentId,
        /// The identity the server reported.
        server: AgentId,
    },
    /// The connection is not up.
    #[error("not connected")]
    Disconnected,
}

/// Reads a `$SYS.REQ.USER.INFO` answer (§13.4). The answer looks like
/// `{"data":{"user":"U…","account":"…",…},"server":{…}}`, or carries an
/// `error` object instead of `data`.
pub fn from_user_info(reply: &[u8]) -> OwnIdentity {
    let unknown = |why: &str| OwnIdentity::Unknown(UnknownIdentity::BadReply(why.to_owned()));
    let Ok(value) = serde_json::from_slice::<Value>(reply) else {
        return unknown("not JSON");
    };
    if let Some(error) = value.get("error") {
        let description = error
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or("an error");
        return unknown(description);
    }
    let Some(data) = value.get("data") else {
        return unknown("no `data`");
    };
    let user = data.get("user").and_then(Value::as_str).unwrap_or_default();
    let account = data
        .get("account")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if user.is_empty() {
        return OwnIdentity::None(NoIdentity::Anonymous);
    }
    let Ok(user_key) = UserKey::new(user) else {
        return OwnIdentity::None(NoIdentity::NotNkeyUser(user.to_owned()));
    };
    match Account::new(account) {
        Ok(account) => OwnIdentity::Known(AgentId::new(account, user_key)),
        Err(_) => OwnIdentity::None(NoIdentity::UnrepresentableAccount(account.to_owned())),
    }
}

/// Why a user JWT does not give an agent ID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwtError {
    /// Not three base64url parts with a JSON claims object in the middle.
    #[error("not a JWT")]
    NotAJwt,
    /// `sub` is missing or not a user NKEY.
    #[error("the JWT's sub is not a user NKEY: {0}")]
    Subject(NkeyError),
    /// `sub` is missing.
    #[error("the JWT has no sub")]
    NoSubject,
    /// Neither `nats.issuer_account` nor `iss` is an account NKEY.
    #[error("the JWT names no account: {0}")]
    Account(AccountError),
}

/// The agent ID a user JWT states (§13.4 step 1): `sub` is the user,
/// `nats.issuer_account` the account when a signing key issued the JWT,
/// otherwise `iss`. The JWT's own signature is the server's business.
pub fn identity_from_jwt(jwt: &str) -> Result<AgentId, JwtError> {
    let mut parts = jwt.trim().split('.');
    let (Some(_), Some(claims), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::NotAJwt);
    };
    let claims = URL_SAFE_NO_PAD
        .decode(claims.trim_end_matches('='))
        .map_err(|_| JwtError::NotAJwt)?;
    let claims: Value = serde_json::from_slice(&claims).map_err(|_| JwtError::NotAJwt)?;
    let sub = claims
        .get("sub")
        .and_then(Value::as_str)
        .ok_or(JwtError::NoSubject)?;
    let user = UserKey::new(sub).map_err(JwtError::Subject)?;
    let issuer_account = claims
        .get("nats")
        .and_then(|n| n.get("issuer_account"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty());
    let account = issuer_account
        .or_else(|| claims.get("iss").and_then(Value::as_str))
        .unwrap_or_default();
    let account = Account::new(account).map_err(JwtError::Account)?;
    Ok(AgentId::new(account, user))
}

/// The two parts of a NATS credentials file: the user JWT and the seed.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user JWT (public).
    pub jwt: String,
    /// The user seed (secret).
    pub seed: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("jwt", &self.jwt)
            .finish_non_exhaustive()
    }
}

/// Why a credentials file cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialsError {
    /// No `-----BEGIN NATS USER JWT-----` block.
    #[error("no user JWT block in the credentials")]
    NoJwt,
    /// No `-----BEGIN USER NKEY SEED-----` block.
    #[error("no user seed block in the credentials")]
    NoSeed,
}

impl Credentials {
    /// Reads the text of a `.creds` file: the first non-empty line after
    /// each `-----BEGIN …-----` marker of the JWT and the seed.
    pub fn parse(text: &str) -> Result<Credentials, CredentialsError> {
        let block = |marker: &str| -> Option<String> {
            let mut lines = text.lines().map(str::trim);
            lines.find(|l| l.starts_with("-----BEGIN") && l.contains(marker))?;
            lines
                .find(|l| !l.is_empty())
                .filter(|l| !l.starts_with("-----"))
                .map(str::to_owned)
        };
        Ok(Credentials {
            jwt: block("JWT").ok_or(CredentialsError::NoJwt)?,
            seed: block("SEED").ok_or(CredentialsError::NoSeed)?,
        })
    }
}
