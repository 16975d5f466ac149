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
//! use nap_nats::client::{Client, Event};
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
mod liveness;
mod prompt;
mod query;
mod replies;

use std::sync::Arc;

use nap_proto::Wildcard;
use tokio::sync::oneshot;

use crate::{Error, Result};
use liveness::Tracker;

pub use discover::PingRecord;
pub use handle::AgentHandle;
pub use liveness::Watch;
pub use prompt::{DEFAULT_MAX_BYTES, Event, IntoEnvelope, PromptOptions, PromptStream, Reply};
pub use query::PendingQuery;

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
    /// Dropped with the last clone: tells the heartbeat task to stop.
    _stop: oneshot::Sender<()>,
}

impl Client {
    /// A caller on `nats`.
    ///
    /// Subscribes to the heartbeat wildcard `agents.hb.*.*.*` first, before
    /// any discovery can be sent (§8.5), and starts the task that feeds
    /// heartbeats into the liveness tracker (§8.2). Must run inside a Tokio
    /// runtime.
    pub async fn new(nats: async_nats::Client) -> Result<Client> {
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
        let tracker = Arc::new(Tracker::new());
        let (stop, stopped) = oneshot::channel();
        tokio::spawn(liveness::run(tracker.clone(), heartbeats, stopped));
        tracing::debug!(%subject, "caller tracking heartbeats");
        Ok(Client {
            inner: Arc::new(Inner {
                server_max: std::sync::Mutex::new((0, u64::MAX)),
                nats,
                tracker,
                replies,
                _stop: stop,
            }),
        })
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
