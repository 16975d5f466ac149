//! A connection's sender identity (§13.4): the key that signs, and the
//! agent ID the connection has, learned once per connection.
//!
//! A [`SenderKey`] holds the user seed (from an NKEY seed or a credentials
//! file) and puts it on the connection too, so that the identity nap signs
//! with is the one the server authenticated. A [`ConnectionIdentity`]
//! learns the agent ID: from the credentials JWT when there is one (the
//! JWT cannot be raced), else from `$SYS.REQ.USER.INFO` (nats-server 2.10
//! and later). An unknown identity is asked for again after a short
//! interval, and again after every reconnect.
//!
//! # What identity does not give you (§13.12)
//!
//! - **It trusts the server.** Connecting signs a nonce the server picks
//!   with the same seed that signs `Agent-Sender`; a server you should not
//!   trust (or anyone between you and it, without TLS) can pick a signed
//!   input of its choosing and get back a signature good for the replay
//!   window. Use identity only over TLS to a server whose certificate the
//!   client verifies (`tls_required`, a CA, `--tlsca`).
//! - **It proves the caller, not the responder.** `id_sig` proves who
//!   registered an agent; any connection of that account allowed to
//!   subscribe to the prompt subject can join the `agents` queue group and
//!   answer. Account isolation and subject permissions remain the defence.
//! - **It is not confidentiality.** Payloads are protected by TLS and
//!   account isolation, not by signatures.
//! - **Only `user` is proven** (§13.7.2): `account` is the signer's word.
//!   Grant nothing on it without evidence from elsewhere.
//! - **Nonces are per instance.** Instances behind one queue group do not
//!   share their nonce sets, and a restart empties one; the replay window
//!   (30 s by default) bounds both.
//! - **Show the class.** Wherever an identity reaches a person, print its
//!   trust class beside it (`verified`, `claimed`), as nap's CLI does.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use nap_nats::identity::{ConnectionIdentity, SenderKey};
//!
//! let key = SenderKey::from_creds_file("alice.creds")?;
//! let nats = key.apply(nap_nats::connect_options())?.connect("nats://127.0.0.1:4222").await?;
//! let identity = ConnectionIdentity::new(nats.clone(), Some(key));
//! println!("connected as {}", identity.resolve().await);
//! # Ok(()) }
//! ```

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use nap_proto::identity::{
    AgentId, Credentials, CredentialsError, JwtError, Nonce, OwnIdentity, SeedError, SenderSigner,
    SenderTime, USER_INFO_SUBJECT, UnknownIdentity, UserKey, from_user_info, identity_from_jwt,
};
use nap_proto::identity::{UNKNOWN_RETRY_AFTER, USER_INFO_TIMEOUT};
use tokio::sync::Notify;

/// Why a key or credentials cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// A file could not be read.
    #[error("could not read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
    /// The seed is not a user seed.
    #[error("{0}")]
    Seed(#[from] SeedError),
    /// The credentials file is not one.
    #[error("{0}")]
    Credentials(#[from] CredentialsError),
    /// The credentials' JWT names no usable identity.
    #[error("the credentials' JWT: {0}")]
    Jwt(#[from] JwtError),
    /// The JWT is for another user than the seed.
    #[error("the credentials' JWT is for {jwt_user}, the seed is {seed_user}")]
    Mismatch {
        /// The JWT's `sub`.
        jwt_user: UserKey,
        /// The seed's public key.
        seed_user: UserKey,
    },
    /// async-nats could not take the credentials.
    #[error("the NATS client refused the credentials: {0}")]
    Client(#[source] std::io::Error),
}

/// Watches the connection's server errors for the permissions violation a
/// `$SYS.REQ.USER.INFO` request draws when the user may not publish it.
#[derive(Debug, Default)]
struct DenialWatch {
    count: AtomicU64,
    notify: Notify,
}

/// The seed a connection authenticates and signs with (§13.2.1), and the
/// user JWT when it came from a credentials file. `Debug` never shows the
/// seed.
#[derive(Clone)]
pub struct SenderKey {
    seed: String,
    jwt: Option<String>,
    user: UserKey,
    jwt_id: Option<AgentId>,
    denials: Arc<DenialWatch>,
}

impl fmt::Debug for SenderKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SenderKey")
            .field("user", &self.user)
            .field("jwt", &self.jwt_id)
            .finish_non_exhaustive()
    }
}

fn read(path: &Path) -> Result<String, KeyError> {
    std::fs::read_to_string(path).map_err(|source| KeyError::Read {
        path: path.to_owned(),
        source,
    })
}

fn user_of(seed: &str) -> Result<UserKey, KeyError> {
    // The account does not matter for the public key; `$G` is a placeholder.
    let account = nap_proto::identity::Account::new(nap_proto::identity::GLOBAL_ACCOUNT)
        .map_err(|_| KeyError::Seed(SeedError::Invalid))?;
    Ok(SenderSigner::new(seed, account)?.agent_id().user().clone())
}

impl SenderKey {
    /// A key from a user seed (`SU…`), for an NKEY user on a
    /// configuration-file server.
    pub fn from_seed(seed: &str) -> Result<SenderKey, KeyError> {
        let seed = seed.trim().to_owned();
        let user = user_of(&seed)?;
        Ok(SenderKey {
            seed,
            jwt: None,
            user,
            jwt_id: None,
            denials: Arc::default(),
        })
    }

    /// A key from a file holding a user seed (what `nats --nkey` reads).
    pub fn from_seed_file(path: impl AsRef<Path>) -> Result<SenderKey, KeyError> {
        let text = read(path.as_ref())?;
        // The file may hold the public key on another line; take the seed.
        let seed = text
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with('S'))
            .unwrap_or(text.trim());
        SenderKey::from_seed(seed)
    }

    /// A key from the text of a credentials file: the user JWT and seed.
    /// The JWT must be for the seed's user.
    pub fn from_creds(text: &str) -> Result<SenderKey, KeyError> {
        let creds = Credentials::parse(text)?;
        let user = user_of(&creds.seed)?;
        let jwt_id = identity_from_jwt(&creds.jwt)?;
        if jwt_id.user() != &user {
            return Err(KeyError::Mismatch {
                jwt_user: jwt_id.user().clone(),
                seed_user: user,
            });
        }
        Ok(SenderKey {
            seed: creds.seed,
            jwt: Some(creds.jwt),
            user,
            jwt_id: Some(jwt_id),
            denials: Arc::default(),
        })
    }

    /// A key from a credentials file.
    pub fn from_creds_file(path: impl AsRef<Path>) -> Result<SenderKey, KeyError> {
        SenderKey::from_creds(&read(path.as_ref())?)
    }

    /// The user public NKEY.
    pub fn user(&self) -> &UserKey {
        &self.user
    }

    /// The agent ID the credentials JWT states, when the key came from one.
    pub fn jwt_identity(&self) -> Option<&AgentId> {
        self.jwt_id.as_ref()
    }

    /// Connection options that authenticate with this key (the NKEY, or
    /// the JWT and seed) and report a denied `$SYS.REQ.USER.INFO` to the
    /// identity lookup at once, logging the other connection events as
    /// [`connect_options`](crate::connect_options) does. Replaces any event
    /// callback already set.
    pub fn apply(
        &self,
        options: async_nats::ConnectOptions,
    ) -> Result<async_nats::ConnectOptions, KeyError> {
        let options = match &self.jwt {
            Some(jwt) => {
                let creds = format!(
                    "-----BEGIN NATS USER JWT-----\n{jwt}\n------END NATS USER JWT------\n\n-----BEGIN USER NKEY SEED-----\n{}\n------END USER NKEY SEED------\n",
                    self.seed
                );
                options.credentials(&creds).map_err(KeyError::Client)?
            }
            None => options.nkey(self.seed.clone()),
        };
        let denials = self.denials.clone();
        Ok(options.event_callback(move |event| {
            let denials = denials.clone();
            async move {
                if let async_nats::Event::ServerError(async_nats::ServerError::Other(text)) = &event
                    && is_user_info_denial(text)
                {
                    denials.count.fetch_add(1, Ordering::SeqCst);
                    denials.notify.notify_waiters();
                }
                crate::log_event(&event);
            }
        }))
    }

    fn signer(&self, id: &AgentId) -> Result<SenderSigner, SeedError> {
        SenderSigner::new(&self.seed, id.account().clone())
    }
}

/// Whether a server error is the permissions violation for publishing to
/// `$SYS.REQ.USER.INFO` (§13.4).
fn is_user_info_denial(text: &str) -> bool {
    let text = text.to_ascii_lowercase();
    text.contains("permissions violation for publish")
        && text.contains(&USER_INFO_SUBJECT.to_ascii_lowercase())
}

/// Why a connection cannot sign.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CannotSign {
    /// No seed was given: connect with an NKEY user or a credentials file.
    #[error("this connection holds no user seed")]
    NoKey,
    /// The connection has no identity, or nap does not know it (§13.4).
    #[error("this connection's identity is {0}")]
    Identity(Box<OwnIdentity>),
    /// The connection authenticated as another user than the key's, so the
    /// key's signatures would name someone the server did not authenticate.
    #[error("the connection is {connection}, but the key is user {key}")]
    NotTheConnectionsKey {
        /// The identity the connection has.
        connection: Box<AgentId>,
        /// The key's user.
        key: UserKey,
    },
}

/// Why a request could not be signed (§13.6). Practically never: the clock
/// would have to be outside years 0–9999, or the NKEY library fail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestSignError {
    /// The clock cannot be written as a `ts`.
    #[error("the system clock cannot be stamped: {0}")]
    Clock(#[from] nap_proto::identity::TimestampError),
    /// The fresh nonce was refused.
    #[error("the nonce: {0}")]
    Nonce(#[from] nap_proto::identity::NonceError),
    /// The signature could not be made.
    #[error(transparent)]
    Sign(#[from] nap_proto::identity::SigningError),
}

/// A fresh nonce: a NUID, 22 characters, as §13.5 recommends.
pub fn fresh_nonce() -> Result<Nonce, nap_proto::identity::NonceError> {
    Nonce::new(nuid::next().to_string())
}

/// Signs one message now (§13.6): `ts` is the system clock at second
/// precision, the nonce a fresh NUID, `sub` the subject to sign
/// (§13.6.2), `payload` the bytes exactly as they will be published.
/// Returns the `Agent-Sender` header value.
pub fn sign_now(
    signer: &SenderSigner,
    sub: &str,
    payload: &[u8],
) -> Result<String, RequestSignError> {
    let ts = SenderTime::from_system_time(std::time::SystemTime::now())?;
    Ok(signer.sign(sub, ts, fresh_nonce()?, payload)?.encode())
}

#[derive(Debug)]
struct Cached {
    /// The connect count the answer belongs to.
    connects: u64,
    identity: OwnIdentity,
    signer: Option<Arc<SenderSigner>>,
    at: Instant,
}

/// The identity of one connection, learned once per connection (§13.4).
/// Cheap to clone.
#[derive(Debug, Clone)]
pub struct ConnectionIdentity {
    inner: Arc<IdentityInner>,
}

#[derive(Debug)]
struct IdentityInner {
    nats: async_nats::Client,
    key: Option<SenderKey>,
    cached: std::sync::Mutex<Option<Cached>>,
    /// Serialises lookups, so concurrent callers share one.
    lookup: tokio::sync::Mutex<()>,
}

impl ConnectionIdentity {
    /// The identity of `nats`, which signs with `key` when given. `key`
    /// must be the one the connection authenticated with ([`SenderKey::apply`]).
    pub fn new(nats: async_nats::Client, key: Option<SenderKey>) -> ConnectionIdentity {
        ConnectionIdentity {
            inner: Arc::new(IdentityInner {
                nats,
                key,
                cached: std::sync::Mutex::new(None),
                lookup: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// The key, if any.
    pub fn key(&self) -> Option<&SenderKey> {
        self.inner.key.as_ref()
    }

    fn connects(&self) -> u64 {
        self.inner
            .nats
            .statistics()
            .connects
            .load(Ordering::Relaxed)
    }

    fn fresh(&self) -> Option<(OwnIdentity, Option<Arc<SenderSigner>>)> {
        let cached = self
            .inner
            .cached
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let c = cached.as_ref()?;
        if c.connects != self.connects() {
            return None;
        }
        if matches!(c.identity, OwnIdentity::Unknown(_)) && c.at.elapsed() >= UNKNOWN_RETRY_AFTER {
            return None;
        }
        Some((c.identity.clone(), c.signer.clone()))
    }

    /// The connection's identity: known, none or unknown (§13.4). Asked
    /// once per connection; an unknown answer is asked again after a short
    /// interval.
    pub async fn resolve(&self) -> OwnIdentity {
        self.resolve_with_signer().await.0
    }

    /// Forgets the answer, so the next call asks again.
    pub fn refresh(&self) {
        *self
            .inner
            .cached
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }

    /// The signer of this connection, or why there is none.
    pub async fn signer(&self) -> Result<Arc<SenderSigner>, CannotSign> {
        if self.inner.key.is_none() {
            return Err(CannotSign::NoKey);
        }
        match self.resolve_with_signer().await {
            (_, Some(signer)) => Ok(signer),
            (OwnIdentity::Known(connection), None) => {
                match self.inner.key.as_ref().map(SenderKey::user) {
                    Some(key) if key != connection.user() => {
                        Err(CannotSign::NotTheConnectionsKey {
                            key: key.clone(),
                            connection: Box::new(connection),
                        })
                    }
                    _ => Err(CannotSign::Identity(Box::new(OwnIdentity::Known(
                        connection,
                    )))),
                }
            }
            (identity, None) => Err(CannotSign::Identity(Box::new(identity))),
        }
    }

    async fn resolve_with_signer(&self) -> (OwnIdentity, Option<Arc<SenderSigner>>) {
        if let Some(hit) = self.fresh() {
            return hit;
        }
        let _one_at_a_time = self.inner.lookup.lock().await;
        if let Some(hit) = self.fresh() {
            return hit;
        }
        let connects = self.connects();
        let identity = self.learn().await;
        let signer = match (&identity, &self.inner.key) {
            (OwnIdentity::Known(id), Some(key)) if id.user() == key.user() => {
                match key.signer(id) {
                    Ok(signer) => Some(Arc::new(signer)),
                    Err(e) => {
                        tracing::warn!(error = %e, "the user seed cannot sign");
                        None
                    }
                }
            }
            (OwnIdentity::Known(id), Some(key)) => {
                tracing::warn!(server = %id, seed = %key.user(), "the connection's user is not the seed's; not signing");
                None
            }
            _ => None,
        };
        if let OwnIdentity::Unknown(why) = &identity {
            tracing::info!(%why, "this connection's identity is unknown; asking again later");
        }
        *self
            .inner
            .cached
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Cached {
            connects,
            identity: identity.clone(),
            signer: signer.clone(),
            at: Instant::now(),
        });
        (identity, signer)
    }

    /// §13.4: the JWT when there is one, else the server.
    async fn learn(&self) -> OwnIdentity {
        if let Some(id) = self.inner.key.as_ref().and_then(SenderKey::jwt_identity) {
            return OwnIdentity::Known(id.clone());
        }
        self.ask_server().await
    }

    async fn ask_server(&self) -> OwnIdentity {
        let nats = &self.inner.nats;
        if nats.connection_state() != async_nats::connection::State::Connected {
            return OwnIdentity::Unknown(UnknownIdentity::Disconnected);
        }
        let denials = self.inner.key.as_ref().map(|k| k.denials.clone());
        let denied_before = denials
            .as_ref()
            .map_or(0, |d| d.count.load(Ordering::SeqCst));
        let denied = async {
            match &denials {
                Some(d) => loop {
                    let notified = d.notify.notified();
                    if d.count.load(Ordering::SeqCst) != denied_before {
                        return;
                    }
                    notified.await;
                },
                None => std::future::pending().await,
            }
        };
        let request = nats.request(USER_INFO_SUBJECT, bytes::Bytes::new());
        tokio::select! {
            () = denied => OwnIdentity::Unknown(UnknownIdentity::PermissionDenied),
            reply = tokio::time::timeout(USER_INFO_TIMEOUT, request) => match reply {
                Err(_) => OwnIdentity::Unknown(UnknownIdentity::NoReply),
                Ok(Err(e)) if e.kind() == async_nats::RequestErrorKind::NoResponders => {
                    OwnIdentity::Unknown(UnknownIdentity::NoResponders)
                }
                Ok(Err(e)) if e.kind() == async_nats::RequestErrorKind::TimedOut => {
                    OwnIdentity::Unknown(UnknownIdentity::NoReply)
                }
                Ok(Err(e)) => OwnIdentity::Unknown(UnknownIdentity::BadReply(e.to_string())),
                Ok(Ok(msg)) => from_user_info(&msg.payload),
            },
        }
    }
}
