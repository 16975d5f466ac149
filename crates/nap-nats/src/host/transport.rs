//! One response stream on a reply subject, driven by the sans-IO
//! [`AgentStream`]: this file only publishes what the machine says, in
//! order, and completes the request once (its [`Completion`]) so that the
//! service statistics count whole streams.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use async_nats::service::Request as ServiceRequest;
use async_nats::{Client, Message, Subject};
use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use nap_agent::{QueryError, SendError, Transport};
use nap_proto::micro::EndpointCounters;
use nap_proto::{AgentStream, Attachment, Chunk, Envelope, Outgoing, Query, ServiceError};
use tokio::sync::Mutex;

use crate::client::now;
use crate::wire::error_headers;

/// A request as it arrived, with the way its answer is counted in the
/// `$SRV.STATS` of its endpoint: a request counts once, when its stream's
/// first error signal or its terminator is published.
pub(crate) enum Completion {
    /// A request to an async-nats micro-service endpoint, whose `respond`
    /// counts it.
    Service(ServiceRequest),
    /// A request to a fleet agent's endpoint, counted in its own counters.
    Counted {
        /// The request.
        message: Message,
        /// The endpoint's counters.
        counters: Arc<std::sync::Mutex<EndpointCounters>>,
        /// When it arrived.
        issued: std::time::Instant,
    },
}

impl Completion {
    /// The request message.
    pub(crate) fn message(&self) -> &Message {
        match self {
            Completion::Service(request) => &request.message,
            Completion::Counted { message, .. } => message,
        }
    }

    /// Publishes the request's counted answer to `reply`: an empty body,
    /// or the body-less §9.1 error signal.
    pub(crate) async fn complete(
        &self,
        client: &Client,
        reply: Subject,
        error: Option<&ServiceError>,
    ) -> Result<(), async_nats::PublishError> {
        match self {
            Completion::Service(request) => match error {
                None => request.respond(Ok(Bytes::new())).await,
                Some(error) => {
                    let [_, (_, description)] = error.headers();
                    let code = usize::from(error.code.as_u16());
                    request
                        .respond(Err(async_nats::service::error::Error {
                            status: description,
                            code,
                        }))
                        .await
                }
            },
            Completion::Counted { .. } => {
                let sent = match error {
                    None => client.publish(reply, Bytes::new()).await,
                    Some(error) => {
                        client
                            .publish_with_headers(reply, error_headers(error), Bytes::new())
                            .await
                    }
                };
                self.count(error);
                sent
            }
        }
    }

    /// Counts the request as answered, with `error` if it ended with one,
    /// without publishing anything (the framework counts its own).
    pub(crate) fn count(&self, error: Option<&ServiceError>) {
        if let Completion::Counted {
            counters, issued, ..
        } = self
        {
            let described = error.map(|e| (e.code.as_u16(), e.headers()[1].1.clone()));
            counters
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .record(
                    issued.elapsed(),
                    described.as_ref().map(|(c, d)| (*c, d.as_str())),
                );
        }
    }
}

/// The state of one stream: the protocol machine and what the transport
/// needs to publish its output.
struct Driver {
    machine: AgentStream,
    request: Completion,
    reply: Subject,
    /// Whether the request's `respond` was used (once per stream).
    responded: bool,
    /// The connection's connect count at the last publish: a change means
    /// the connection was re-established and earlier messages may be lost.
    connects: u64,
    interrupted: bool,
}

/// Publishes one stream's messages to its reply subject.
pub(crate) struct ReplyStream {
    client: Client,
    request_size: u64,
    /// Payload bytes published so far (chunks and error bodies).
    bytes_out: std::sync::atomic::AtomicU64,
    keepalive: Option<Duration>,
    // One lock orders every publish of this stream and guards the machine,
    // so a chunk from a lingering responder clone can never follow the
    // terminator (the machine refuses it).
    driver: Mutex<Driver>,
}

impl ReplyStream {
    /// A stream whose machine has read the request; nothing is published yet.
    pub(crate) fn new(
        client: Client,
        request: Completion,
        reply: Subject,
        machine: AgentStream,
    ) -> Arc<Self> {
        let connects = connects(&client);
        let request_size = request.message().length as u64;
        Arc::new(ReplyStream {
            request_size,
            bytes_out: std::sync::atomic::AtomicU64::new(0),
            keepalive: machine.keepalive(),
            driver: Mutex::new(Driver {
                machine,
                request,
                reply,
                responded: false,
                connects,
                interrupted: false,
            }),
            client,
        })
    }

    /// Payload bytes published on this stream so far.
    pub(crate) fn bytes_out(&self) -> u64 {
        self.bytes_out.load(Ordering::Relaxed)
    }

    /// The bytes of the request this stream answers, for backlog budgets.
    pub(crate) fn request_size(&self) -> u64 {
        self.request_size
    }

    /// Publishes whatever the machine has queued.
    pub(crate) async fn flush(&self) -> Result<(), SendError> {
        let mut driver = self.driver.lock().await;
        self.publish_queued(&mut driver).await
    }

    /// When the next keep-alive is due.
    ///
    /// Never waits: while a send is under way the stream is not idle, so
    /// the answer is one interval from now.
    pub(crate) fn keepalive_due(&self) -> Option<std::time::Instant> {
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
    pub(crate) async fn tick(&self) {
        let Ok(mut driver) = self.driver.try_lock() else {
            return;
        };
        driver.machine.handle_timeout(now());
        let _ = self.publish_queued(&mut driver).await;
    }

    /// Ends the stream: the optional error signal (§9.3), then the
    /// zero-byte, header-less terminator (§6.5). A stream whose connection
    /// was interrupted while it streamed ends with a `500` instead of a
    /// clean end, since part of it may be lost. Later sends fail.
    ///
    /// Returns the status the stream ended with: 200 for a clean end, else
    /// the error signal's code.
    pub(crate) async fn finish(&self, error: Option<ServiceError>) -> u16 {
        let mut driver = self.driver.lock().await;
        let error = match error {
            None if driver.interrupted || connects(&self.client) != driver.connects => {
                Some(ServiceError::interrupted())
            }
            other => other,
        };
        let code = error.as_ref().map_or(200, |e| e.code.as_u16());
        driver.machine.finish(now(), error);
        if let Err(e) = self.publish_queued(&mut driver).await {
            tracing::warn!(reply = %driver.reply, error = %e, "could not end the response stream");
        }
        code
    }

    async fn publish_queued(&self, driver: &mut Driver) -> Result<(), SendError> {
        while let Some(message) = driver.machine.poll() {
            let connects = connects(&self.client);
            if connects != driver.connects {
                driver.connects = connects;
                driver.interrupted = true;
            }
            self.publish(driver, message).await?;
        }
        Ok(())
    }

    async fn publish(&self, driver: &mut Driver, message: Outgoing) -> Result<(), SendError> {
        let reply = driver.reply.clone();
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
            // §9.1: a body-less error completes the request, which counts
            // it in `$SRV.STATS`; one with a JSON body is published as is
            // (the framework's respond drops bodies).
            Outgoing::Error(error) if error.body.is_none() && !driver.responded => {
                driver.responded = true;
                driver
                    .request
                    .complete(&self.client, reply, Some(&error))
                    .await
            }
            Outgoing::Error(error) => {
                self.client
                    .publish_with_headers(
                        reply,
                        error_headers(&error),
                        Bytes::from(error.body_bytes()),
                    )
                    .await
            }
            // §6.5: zero bytes, no headers; the request's completion, so
            // the statistics time the whole stream.
            Outgoing::Terminator if !driver.responded => {
                driver.responded = true;
                driver.request.complete(&self.client, reply, None).await
            }
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
            Ok(Some(msg)) => {
                let answer = Envelope::decode(&msg.payload).map_err(|e| QueryError::BadReply {
                    source: std::sync::Arc::new(e),
                })?;
                // The same name rule as for a prompt (nap_proto::accept_request).
                for (index, attachment) in answer.attachments.iter().enumerate() {
                    nap_proto::check_file_name(&attachment.filename).map_err(|error| {
                        QueryError::UnsafeFileName {
                            index,
                            filename: attachment.filename.clone(),
                            error,
                        }
                    })?;
                }
                Ok(answer)
            }
            Ok(None) => Err(QueryError::Send(SendError::Closed)),
            Err(_) => Err(QueryError::TimedOut { timeout }),
        }
    }
}
