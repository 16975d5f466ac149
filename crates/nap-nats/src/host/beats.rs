//! Heartbeats (§8.1-8.3, §13.11): one scheduler per host beats for every
//! agent it holds, from one timer queue.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant, SystemTime};

use async_nats::Client;
use nap_proto::Beacon;
use nap_proto::identity::{Nonce, SENDER_HEADER, SenderSigner, sign_heartbeat};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// What one instance beats with (§8.1-8.3).
#[derive(Debug)]
pub(super) struct BeatSource {
    pub(super) subject: async_nats::Subject,
    pub(super) beacon: Beacon,
    pub(super) signer: Option<Arc<SenderSigner>>,
}

impl BeatSource {
    /// Publishes one beat on the fixed subject; with a signer it carries
    /// a signed `Agent-Sender` header (§13.11).
    async fn beat(&self, nats: &async_nats::Client) {
        let subject = &self.subject;
        let hb = match self.beacon.beat(SystemTime::now()) {
            Ok(hb) => hb,
            Err(e) => {
                tracing::warn!(%subject, error = %e, "heartbeat not built");
                return;
            }
        };
        let payload = bytes::Bytes::from(hb.encode());
        let sent = match self
            .signer
            .as_deref()
            .map(|s| signed_beat(s, subject, &hb, &payload))
        {
            Some(Ok(headers)) => {
                nats.publish_with_headers(subject.clone(), headers, payload)
                    .await
            }
            Some(Err(e)) => {
                tracing::warn!(%subject, error = %e, "heartbeat not signed; published without Agent-Sender");
                nats.publish(subject.clone(), payload).await
            }
            None => nats.publish(subject.clone(), payload).await,
        };
        if let Err(e) = sent {
            tracing::warn!(%subject, error = %e, "heartbeat not published");
        }
    }

    /// The wait before the next beat: the interval, shortened by a random
    /// jitter so that instances started together drift apart.
    fn next_wait(&self) -> Duration {
        self.beacon.interval.jittered(jitter_draw())
    }
}

/// A random number for the heartbeat jitter.
fn jitter_draw() -> u32 {
    (crate::random::u64() >> 32) as u32
}

/// Where new heartbeat sources go: the scheduler beats each right away,
/// then once per jittered interval while its agent is registered.
pub(super) type Beats = mpsc::UnboundedSender<Weak<BeatSource>>;

/// Starts the scheduler of one host; it ends with `done`.
pub(super) fn start(nats: Client, done: CancellationToken) -> Beats {
    let (beats, arrivals) = mpsc::unbounded_channel();
    tokio::spawn(beat_all(nats, arrivals, done));
    beats
}

/// Beats for every member from one timer queue: each source right away
/// when it arrives, then once per jittered interval, until its agent is
/// unregistered (the weak handle no longer upgrades).
async fn beat_all(
    nats: Client,
    mut arrivals: mpsc::UnboundedReceiver<Weak<BeatSource>>,
    done: CancellationToken,
) {
    /// A due time, with a sequence number to order equal times.
    type Due = Reverse<(Instant, u64)>;
    let mut queue: BinaryHeap<Due> = BinaryHeap::new();
    let mut sources: HashMap<u64, Weak<BeatSource>> = HashMap::new();
    let mut next_key = 0u64;
    loop {
        let next = queue.peek().map(|Reverse((at, _))| *at);
        tokio::select! {
            () = done.cancelled() => break,
            arrival = arrivals.recv() => match arrival {
                Some(source) => {
                    sources.insert(next_key, source);
                    queue.push(Reverse((Instant::now(), next_key)));
                    next_key += 1;
                }
                None => break,
            },
            () = sleep_until(next) => {
                let now = Instant::now();
                while let Some(Reverse((at, key))) = queue.peek().copied() {
                    if at > now {
                        break;
                    }
                    queue.pop();
                    let Some(source) = sources.get(&key).and_then(Weak::upgrade) else {
                        sources.remove(&key);
                        continue;
                    };
                    source.beat(&nats).await;
                    queue.push(Reverse((now + source.next_wait(), key)));
                }
            }
        }
    }
}

/// Sleeps until `at`, or forever without one.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// The `Agent-Sender` header of one heartbeat (§13.11): `sub` the
/// heartbeat subject, `ts` the beat's own, a fresh nonce, the signature
/// over the payload as published.
fn signed_beat(
    signer: &SenderSigner,
    subject: &str,
    hb: &nap_proto::Heartbeat,
    payload: &[u8],
) -> std::result::Result<async_nats::HeaderMap, BeatNotSigned> {
    // A NUID is 22 characters of [0-9A-Za-z], always a valid nonce.
    let nonce = Nonce::new(nuid::next().to_string())?;
    let header = sign_heartbeat(signer, subject, hb, payload, nonce)?;
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(SENDER_HEADER, header.encode().as_str());
    Ok(headers)
}

/// Why a heartbeat went out without its header.
#[derive(Debug, thiserror::Error)]
enum BeatNotSigned {
    #[error("nonce: {0}")]
    Nonce(#[from] nap_proto::identity::NonceError),
    #[error(transparent)]
    Sign(#[from] nap_proto::identity::HeartbeatSignError),
}
