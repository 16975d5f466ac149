//! One response stream on a reply subject, driven by the sans-IO
//! [`AgentStream`]: this file publishes what the machine queues, in order,
//! tells the machine when the connection was interrupted, and counts the
//! request in its endpoint's `$SRV.STATS` once, when the terminator goes
//! out, with the error the stream ended with (bodies included).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex as SyncMutex, PoisonError};
use std::time::{Duration, Instant};

use async_nats::{Client, Subject};
use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use nap_agent::{QueryError, SendError, Transport};
use nap_proto::micro::EndpointCounters;
use nap_proto::{AgentStream, Attachment, Chunk, Envelope, Outgoing, Query, TurnEnd};
use tokio::sync::Mutex;

use crate::client::now;
use crate::wire::error_headers;

/// The state of one stream behind its lock: the protocol machine and the
/// connect count at the last publish (a change means the connection was
/// re-established, and earlier messages may be lost).
struct Driver {
    machine: AgentStream,
    connects: u64,
}

/// Publishes one stream's messages to its reply subject.
pub(super) struct ReplyStream {
    client: Client,
    reply: Subject,
    request_size: u64,
    arrived: Instant,
    counters: Arc<SyncMutex<EndpointCounters>>,
    /// Payload bytes published so far (chunks and error bodies).
    bytes_out: AtomicU64,
    keepalive: Option<Duration>,
    // One lock orders every publish of this stream and guards the machine,
    // so a chunk from a lingering responder clone can never follow the
    // terminator (the machine refuses it).
    driver: Mutex<Driver>,
}

impl ReplyStream {
    /// A stream whose machine has decided about its request (the `ack`,
    /// and for a refusal the error and terminator, are queued); nothing is
    /// published yet.
    pub(super) fn new(
        client: Client,
        reply: Subject,
        request_size: u64,
        arrived: Instant,
        counters: Arc<SyncMutex<EndpointCounters>>,
        machine: AgentStream,
    ) -> Arc<Self> {
        Arc::new(ReplyStream {
            reply,
            request_size,
            arrived,
            counters,
            bytes_out: AtomicU64::new(0),
            keepalive: machine.keepalive(),
            driver: Mutex::new(Driver {
                machine,
                connects: connects(&client),
            }),
            client,
        })
    }

    /// Payload bytes published on this stream so far.
    pub(super) fn bytes_out(&self) -> u64 {
        self.bytes_out.load(Ordering::Relaxed)
    }

    /// The bytes of the request this stream answers, for backlog budgets.
    pub(super) fn request_size(&self) -> u64 {
        self.request_size
    }

    /// Publishes whatever the machine has queued.
    pub(super) async fn flush(&self) -> Result<(), SendError> {
        let mut driver = self.driver.lock().await;
        self.publish_queued(&mut driver).await
    }

    /// When the next keep-alive is due.
    ///
    /// Never waits: while a send is under way the stream is not idle, so
    /// the answer is one interval from now.
    pub(super) fn keepalive_due(&self) -> Option<Instant> {
        match self.driver.try_lock() {
            Ok(driver) => driver.machine.poll_timeout(),
            Err(_) => self.keepalive.map(|every| now() + every),
        }
    }

    /// Lets time pass: a keep-alive `ack` if the stream was silent (§6.4, §6.6).
    ///
    /// Does nothing while a send is under way: that send is what keeps the
    /// stream alive, and waiting for its lock here could wait forever, as
    /// the sending agent is not polled while this runs.
    pub(super) async fn tick(&self) {
        let Ok(mut driver) = self.driver.try_lock() else {
            return;
        };
        driver.machine.handle_timeout(now());
        let _ = self.publish_queued(&mut driver).await;
    }

    /// Ends the stream as the turn ended ([`AgentStream::end_turn`]): the
    /// error signal it maps to, if any, then the terminator. Later sends
    /// fail. Returns the status the stream ended with.
    pub(super) async fn end(&self, end: TurnEnd) -> u16 {
        let mut driver = self.driver.lock().await;
        self.notice_interruption(&mut driver);
        driver.machine.end_turn(now(), end);
        if let Err(e) = self.publish_queued(&mut driver).await {
            tracing::warn!(reply = %self.reply, error = %e, "could not end the response stream");
        }
        driver.machine.status().unwrap_or(500)
    }

    /// Tells the machine when the connection was re-established since the
    /// last publish.
    fn notice_interruption(&self, driver: &mut Driver) {
        let connects = connects(&self.client);
        if connects != driver.connects {
            driver.connects = connects;
            driver.machine.handle_interruption();
        }
    }

    async fn publish_queued(&self, driver: &mut Driver) -> Result<(), SendError> {
        while let Some(message) = driver.machine.poll() {
            self.notice_interruption(driver);
            if matches!(message, Outgoing::Terminator) {
                self.count(&driver.machine);
            }
            self.publish(message).await?;
        }
        Ok(())
    }

    /// Counts the request in `$SRV.STATS` with the error its stream ended
    /// with (§3.3: `num_errors`, `last_error`), whether or not it had a body.
    fn count(&self, machine: &AgentStream) {
        let error = machine
            .error()
            .map(|e| (e.code.as_u16(), e.headers()[1].1.clone()));
        self.counters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .record(
                self.arrived.elapsed(),
                error.as_ref().map(|(code, text)| (*code, text.as_str())),
            );
    }

    async fn publish(&self, message: Outgoing) -> Result<(), SendError> {
        let reply = self.reply.clone();
        let sent = match message {
            Outgoing::Chunk(body) => {
                let body = match body {
                    std::borrow::Cow::Borrowed(b) => Bytes::from_static(b),
                    std::borrow::Cow::Owned(v) => Bytes::from(v),
                };
                self.bytes_out
                    .fetch_add(body.len() as u64, Ordering::Relaxed);
                self.client.publish(reply, body).await
            }
            // §9.1: the two headers, and the JSON body if there is one.
            Outgoing::Error(error) => {
                let body = Bytes::from(error.body_bytes());
                self.bytes_out
                    .fetch_add(body.len() as u64, Ordering::Relaxed);
                self.client
                    .publish_with_headers(reply, error_headers(&error), body)
                    .await
            }
            // §6.5: zero bytes, no headers.
            Outgoing::Terminator => self.client.publish(reply, Bytes::new()).await,
        };
        sent.map_err(SendError::transport)
    }
}

fn connects(client: &Client) -> u64 {
    client.statistics().connects.load(Ordering::Relaxed)
}

#[async_trait]
impl Transport for ReplyStream {
    async fn send(&self, chunk: Chunk) -> Result<(), SendError> {
        let mut driver = self.driver.lock().await;
        driver
            .machine
            .handle_chunk(now(), &chunk)
            .map_err(|_| SendError::Closed)?;
        self.publish_queued(&mut driver).await
    }

    async fn ask(
        &self,
        prompt: String,
        attachments: Vec<Attachment>,
        timeout: Duration,
    ) -> Result<Envelope, QueryError> {
        // §7.1: a fresh reply subject per query, subscribed before the query is sent.
        let reply_subject = self.client.new_inbox();
        let mut answers = self
            .client
            .subscribe(reply_subject.clone())
            .await
            .map_err(SendError::transport)?;
        let query = Chunk::Query(Query {
            id: nuid::next().to_string(),
            reply_subject,
            prompt,
            attachments,
            extra: Default::default(),
        });
        self.send(query).await?;
        // §7.2: exactly one reply, plain text or an envelope.
        let answer = tokio::time::timeout(timeout, answers.next()).await;
        let _ = answers.unsubscribe().await;
        match answer {
            Ok(Some(msg)) => nap_proto::accept_answer(&msg.payload).map_err(QueryError::from),
            Ok(None) => Err(QueryError::Send(SendError::Closed)),
            Err(_) => Err(QueryError::TimedOut { timeout }),
        }
    }
}
