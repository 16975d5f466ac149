//! The caller: discover, prompt, stream, liveness (§4, §5.4, §6, §7, §8).
//!
//! A [`Client`] wraps an `async_nats::Client`. It subscribes to every
//! heartbeat as soon as it is created (§8.5), finds agents with
//! `$SRV.INFO.agents` (§4), prompts them at the subject their record
//! advertises (§4.3) and streams their reply as typed [`Event`]s (§6, §7).
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use futures::StreamExt;
//! use nap_nats::{Client, Event};
//! use nap_proto::DiscoveryFilter;
//!
//! let nats = nap_nats::connect_options().connect("nats://127.0.0.1:4222").await?;
//! let client = Client::new(nats).await?;
//! let echo = client
//!     .find(DiscoveryFilter { agent: Some("echo".into()), ..DiscoveryFilter::any() })
//!     .await?;
//!
//! // The simple path: the whole reply as text.
//! let text = echo.prompt("hello").await?.text().await?;
//! println!("{text}");
//!
//! // The streaming path: every event as it arrives.
//! let mut stream = client.prompt(&echo, "hello again").await?;
//! while let Some(event) = stream.next().await {
//!     match event? {
//!         Event::Response(data) => print!("{}", data.text()),
//!         Event::Query(query) => query.answer("yes").await?,
//!         // A broken message: the reply cannot be trusted.
//!         Event::Violation(v) => return Err(nap_nats::Error::Protocol(v).into()),
//!         _ => {}
//!     }
//! }
//!
//! // Liveness: who is online, and changes as they happen (§8).
//! let mut changes = client.watch();
//! while let Some(change) = changes.next().await {
//!     println!("{} is {:?}", change.instance_id, change.presence);
//! }
//! # Ok(()) }
//! ```

mod discover;
mod handle;
mod interceptor;
mod liveness;
mod prompt;
mod query;
mod replies;
mod sender;

use std::sync::Arc;

use nap_proto::Wildcard;
use nap_proto::identity::{Addressing, ImportRename, SenderSigner, SubjectPolicy, VerifierConfig};
use tokio::sync::oneshot;

use crate::identity::{CannotSign, ConnectionIdentity, SenderKey};
use crate::{Error, Result};
use liveness::Tracker;

pub use handle::AgentHandle;
pub use interceptor::{InterceptError, OutgoingPrompt, PromptInterceptor, StreamEnd, StreamInfo};
pub use liveness::Watch;
pub use prompt::{DEFAULT_MAX_BYTES, Event, IntoEnvelope, PromptOptions, PromptStream, Reply};
pub use query::PendingQuery;
pub use sender::SENDER_INDEX_TTL;

/// A caller of agents over one NATS connection.
///
/// Cheap to clone: clones share the connection and the liveness view. The
/// background heartbeat task stops when the last clone (including the
/// [`AgentHandle`]s it returned, which hold one) is dropped.
#[derive(Debug, Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    nats: async_nats::Client,
    tracker: Arc<Tracker>,
    /// The one wildcard inbox every response stream arrives on.
    replies: Arc<replies::Replies>,
    /// The server's `max_payload` and the connect count it was read at
    /// (read again after a reconnect, which may land on another server).
    server_max: std::sync::Mutex<(u64, u64)>,
    /// The connection's identity, when it may sign (§13.4).
    identity: Option<ConnectionIdentity>,
    /// Imports the caller's account renamed (§13.6.2).
    renames: Vec<ImportRename>,
    /// Prompt interceptors, in order.
    interceptors: interceptor::Interceptors,
    /// The reverse-lookup index of verified registrations (§13.10).
    senders: sender::SenderIndex,
    /// Dropped with the last clone: tells the heartbeat task to stop.
    _stop: oneshot::Sender<()>,
}

/// Builds a [`Client`] with a sender identity (§13), renamed imports
/// (§13.6.2) and prompt interceptors; see [`Client::builder`].
#[derive(Debug)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct ClientBuilder {
    nats: async_nats::Client,
    identity: Option<ConnectionIdentity>,
    renames: Vec<ImportRename>,
    invalid_rename: bool,
    interceptors: Vec<Arc<dyn PromptInterceptor>>,
    trace_context: bool,
}

impl std::fmt::Debug for dyn PromptInterceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PromptInterceptor")
    }
}

impl ClientBuilder {
    /// Signs with `key`, which must be the key the connection authenticated
    /// with ([`SenderKey::apply`]). Every `prompt` and `status` request then
    /// carries a signed `Agent-Sender` header (§13.5, §13.6) whenever the
    /// connection's identity is known (§13.4).
    pub fn sender_key(mut self, key: SenderKey) -> Self {
        self.identity = Some(ConnectionIdentity::new(self.nats.clone(), Some(key)));
        self
    }

    /// Signs with an identity already made for this connection (shared with
    /// a host on the same connection, say). An identity without a key signs
    /// nothing.
    pub fn identity(mut self, identity: ConnectionIdentity) -> Self {
        self.identity = Some(identity);
        self
    }

    /// Declares an import the caller's account renamed (§13.6.2): an
    /// endpoint subject advertised under `exporter_prefix` is published to
    /// under `local_prefix` instead, and signed as advertised. Heartbeats
    /// that arrive under `local_prefix` are verified as published under
    /// `exporter_prefix` (§13.7.1 (c)). Prefixes are whole literal tokens;
    /// a wildcard makes [`build`](Self::build) fail with [`Error::Config`].
    pub fn signed_subject(mut self, local_prefix: &str, exporter_prefix: &str) -> Self {
        match ImportRename::new(local_prefix, exporter_prefix) {
            Some(rename) => self.renames.push(rename),
            None => self.invalid_rename = true,
        }
        self
    }

    /// Whether every prompt carries the W3C trace context
    /// ([`crate::trace::TraceContext`], which runs before the interceptors
    /// added here). Default `true`.
    pub fn trace_context(mut self, on: bool) -> Self {
        self.trace_context = on;
        self
    }

    /// Adds a prompt interceptor; they run in the order added.
    pub fn interceptor(mut self, interceptor: impl PromptInterceptor) -> Self {
        self.interceptors.push(Arc::new(interceptor));
        self
    }

    /// The client; see [`Client::new`] for what starting it does.
    pub async fn build(self) -> Result<Client> {
        if self.invalid_rename {
            return Err(Error::Config {
                what: "signed_subject prefixes must be literal subjects without wildcards",
            });
        }
        let nats = self.nats;
        // §8.5: subscribe-before-discover.
        let subject = Wildcard::heartbeats();
        let heartbeats =
            nats.subscribe(subject.clone())
                .await
                .map_err(|source| Error::Subscribe {
                    subject: subject.clone(),
                    source,
                })?;
        let replies = replies::Replies::start(&nats).await?;
        // §13.11: heartbeats are verified like requests; a renamed import
        // is form (c) of §13.7.1.
        let verifier = VerifierConfig {
            subjects: SubjectPolicy {
                renames: self
                    .renames
                    .iter()
                    .map(ImportRename::arrival_rename)
                    .collect(),
                ..SubjectPolicy::default()
            },
            ..VerifierConfig::default()
        };
        let tracker = Arc::new(Tracker::new(verifier));
        let (stop, stopped) = oneshot::channel();
        tokio::spawn(liveness::run(tracker.clone(), heartbeats, stopped));
        tracing::debug!(%subject, "caller tracking heartbeats");
        Ok(Client {
            inner: Arc::new(Inner {
                server_max: std::sync::Mutex::new((0, u64::MAX)),
                nats,
                tracker,
                replies,
                identity: self.identity,
                renames: self.renames,
                interceptors: self
                    .trace_context
                    .then(|| Arc::new(crate::trace::TraceContext) as Arc<dyn PromptInterceptor>)
                    .into_iter()
                    .chain(self.interceptors)
                    .collect::<Vec<_>>()
                    .into(),
                senders: sender::SenderIndex::default(),
                _stop: stop,
            }),
        })
    }
}

impl Client {
    /// A caller on `nats`.
    ///
    /// Subscribes to the heartbeat wildcard `agents.hb.*.*.*` first, before
    /// any discovery can be sent (§8.5), and starts the task that feeds
    /// heartbeats into the liveness tracker (§8.2). Must run inside a Tokio
    /// runtime.
    ///
    /// A client made this way has no sender identity: its requests carry no
    /// `Agent-Sender` header, and an agent whose `prompt` endpoint requires
    /// `signed` fails locally with [`Error::SignatureRequired`] (§13.9).
    /// Use [`Client::builder`] to sign.
    pub async fn new(nats: async_nats::Client) -> Result<Client> {
        Client::builder(nats).build().await
    }

    /// A builder for a caller on `nats` with a sender identity (§13),
    /// renamed imports or prompt interceptors.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// use nap_nats::identity::SenderKey;
    ///
    /// let key = SenderKey::from_seed_file("alice.nk")?;
    /// let nats = key.apply(nap_nats::connect_options())?.connect("nats://127.0.0.1:4222").await?;
    /// let client = nap_nats::Client::builder(nats).sender_key(key).build().await?;
    /// # Ok(()) }
    /// ```
    pub fn builder(nats: async_nats::Client) -> ClientBuilder {
        ClientBuilder {
            nats,
            identity: None,
            renames: Vec::new(),
            invalid_rename: false,
            interceptors: Vec::new(),
            trace_context: true,
        }
    }

    /// The connection's sender identity, when the client was given one.
    pub fn identity(&self) -> Option<&ConnectionIdentity> {
        self.inner.identity.as_ref()
    }

    /// The signer for this connection, or why it cannot sign (§13.4).
    pub async fn signer(&self) -> std::result::Result<Arc<SenderSigner>, CannotSign> {
        match &self.inner.identity {
            Some(identity) => identity.signer().await,
            None => Err(CannotSign::NoKey),
        }
    }

    /// Where a request to the `advertised` subject is published and what
    /// it signs (§13.6.2).
    pub fn addressing(&self, advertised: &str) -> Addressing {
        Addressing::of(advertised, &self.inner.renames)
    }

    /// The underlying NATS connection.
    pub fn nats(&self) -> &async_nats::Client {
        &self.inner.nats
    }

    /// A handle on an agent whose record the caller already holds (from an
    /// earlier discovery, say).
    pub fn handle(&self, info: nap_proto::AgentInfo) -> AgentHandle {
        AgentHandle::new(self.clone(), info)
    }

    fn replies(&self) -> &Arc<replies::Replies> {
        &self.inner.replies
    }

    /// The server's `max_payload` (§5.4 counts it), `None` when unknown.
    /// Read once per connection rather than once per prompt.
    fn server_max_payload(&self) -> Option<u64> {
        use std::sync::atomic::Ordering;
        let connects = self
            .inner
            .nats
            .statistics()
            .connects
            .load(Ordering::Relaxed);
        let mut cached = self
            .inner
            .server_max
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if cached.1 != connects {
            *cached = (self.inner.nats.server_info().max_payload as u64, connects);
        }
        Some(cached.0).filter(|&m| m > 0)
    }

    fn tracker(&self) -> &Tracker {
        &self.inner.tracker
    }
}

/// The current time on Tokio's clock, as the sans-IO machines take it.
pub(crate) fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

/// A sleep until a sans-IO deadline.
pub(crate) fn sleep_until(deadline: std::time::Instant) -> tokio::time::Sleep {
    tokio::time::sleep_until(tokio::time::Instant::from_std(deadline))
}

/// Whether a message is the server's "no responders" status (NATS 503).
fn is_no_responders(msg: &async_nats::Message) -> bool {
    msg.status == Some(async_nats::StatusCode::NO_RESPONDERS)
}
