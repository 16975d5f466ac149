//! Prompting an agent (§5) and reading its response stream (§6, §7, §9).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::{Stream, StreamExt};
use nap_proto::DEFAULT_INACTIVITY;
use nap_proto::PromptLimits;
use nap_proto::{
    Attachment, Envelope, Loss, Query, ResponseData, ResponseStream, StreamEvent, StreamViolation,
};
use serde_json::{Map, Value};

use async_nats::HeaderMap;
use nap_proto::identity::{SENDER_HEADER, SendPlan};

use super::interceptor::{Interceptors, OutgoingPrompt, StreamEnd, StreamInfo};
use super::replies::{Delivery, Route};
use super::{AgentHandle, Client, PendingQuery, is_no_responders, now};
use crate::identity::sign_now;
use crate::wire::with_received;
use crate::{Error, Result};

/// Anything that can be sent as a request or a query answer (§5.1):
/// text (the plain-text shorthand) or a full [`Envelope`].
pub trait IntoEnvelope {
    /// The envelope to send.
    fn into_envelope(self) -> Envelope;
}

impl IntoEnvelope for Envelope {
    fn into_envelope(self) -> Envelope {
        self
    }
}

impl IntoEnvelope for &Envelope {
    fn into_envelope(self) -> Envelope {
        self.clone()
    }
}

impl IntoEnvelope for &str {
    fn into_envelope(self) -> Envelope {
        Envelope::text(self)
    }
}

impl IntoEnvelope for String {
    fn into_envelope(self) -> Envelope {
        Envelope::text(self)
    }
}

impl IntoEnvelope for &String {
    fn into_envelope(self) -> Envelope {
        Envelope::text(self.as_str())
    }
}

/// The default memory budget of one stream: 64 MiB.
pub const DEFAULT_MAX_BYTES: u64 = 64 << 20;

/// How one prompt is streamed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PromptOptions {
    /// The stream ends with [`Error::InactivityTimeout`] when no message
    /// arrives for this long (§6.6). Default: 60 s.
    pub inactivity_timeout: Duration,
    /// The stream ends with [`Error::DeadlineExceeded`] when it is still
    /// open this long after the prompt was sent, however active it is (an
    /// agent sending keep-alives forever never trips the inactivity
    /// timeout). Default: none.
    pub deadline: Option<Duration>,
    /// The most bytes of reply this stream holds in memory: messages that
    /// arrived and were not read yet, and the reply gathered by
    /// [`PromptStream::collect`] and [`PromptStream::text`]. Beyond it the
    /// stream ends with [`Error::Lost`] ([`Loss::BufferFull`]). Default:
    /// [`DEFAULT_MAX_BYTES`].
    pub max_bytes: u64,
    /// Values for the client's [`PromptInterceptor`](super::PromptInterceptor)s
    /// about this one prompt, read with
    /// [`OutgoingPrompt::context`](super::OutgoingPrompt::context). They
    /// stay on this side: nothing of them is sent. The agent tools put the
    /// model's tool-call id here (`tool_call_id`). Default: empty.
    pub context: Map<String, Value>,
}

impl Default for PromptOptions {
    fn default() -> Self {
        PromptOptions {
            inactivity_timeout: DEFAULT_INACTIVITY,
            deadline: None,
            max_bytes: DEFAULT_MAX_BYTES,
            context: Map::new(),
        }
    }
}

impl PromptOptions {
    /// The default options with another inactivity timeout.
    pub fn inactivity_timeout(timeout: Duration) -> Self {
        PromptOptions {
            inactivity_timeout: timeout,
            ..PromptOptions::default()
        }
    }

    /// These options with an overall deadline.
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// These options with another memory budget.
    pub fn with_max_bytes(mut self, max_bytes: u64) -> Self {
        self.max_bytes = max_bytes;
        self
    }

    /// These options with one more caller-local context value for the
    /// interceptors (see [`PromptOptions::context`]).
    pub fn with_context(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.context.insert(key.into(), value.into());
        self
    }
}

/// One thing that happened on a response stream.
#[derive(Debug)]
pub enum Event {
    /// The agent accepted the request (`status: ack`, §6.4); also sent as a
    /// keep-alive.
    Ack,
    /// Another status token; callers may ignore it (§6.4).
    Status(String),
    /// Response content (§6.3), string or object form.
    Response(ResponseData),
    /// The agent asks the caller something and waits for one answer (§7).
    Query(PendingQuery),
    /// A message that broke a stream rule (§6, §9.3) and was skipped; the
    /// stream goes on. The reply can no longer be trusted to be what the
    /// agent meant: the gathering helpers fail on it with
    /// [`Error::Protocol`], and so should any caller that needs a complete
    /// answer.
    Violation(StreamViolation),
    /// The terminator (§6.5): the reply is complete. The stream yields
    /// nothing after it.
    End,
}

/// Everything an agent answered, gathered by [`PromptStream::collect`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reply {
    /// The `text` of every response chunk, concatenated in order (§6.3).
    pub text: String,
    /// The attachments of every response chunk, in order (§6.3).
    pub attachments: Vec<Attachment>,
}

impl Reply {
    /// The bytes this reply holds: text and attachment contents.
    pub fn size(&self) -> u64 {
        let attachments: usize = self.attachments.iter().map(|a| a.content.len()).sum();
        (self.text.len() + attachments) as u64
    }

    fn push(&mut self, data: ResponseData) {
        match data {
            ResponseData::Text(text) => self.text.push_str(&text),
            ResponseData::Object {
                text, attachments, ..
            } => {
                self.text.push_str(&text);
                self.attachments.extend(attachments);
            }
        }
    }
}

/// The reply to one prompt, as a stream of [`Event`]s.
///
/// Yields `Ok(event)` for each chunk; unknown chunk types are skipped
/// (§6.6), and a message that breaks a stream rule is yielded as
/// [`Event::Violation`] and skipped. The stream ends with `Ok(Event::End)`
/// when the reply is complete, or with one error: the agent's error signal
/// (§9.3) as [`Error::Remote`], a silence longer than the inactivity timeout
/// (§6.6) as [`Error::InactivityTimeout`], the overall deadline as
/// [`Error::DeadlineExceeded`], and messages that may have been lost (a
/// reconnect, a full buffer) as [`Error::Lost`]. A stream never ends
/// quietly with part of the reply missing. After the end it yields `None`.
///
/// Dropping the stream cancels the prompt: its route is removed and no
/// signal is sent to the agent (§6.7).
#[derive(Debug)]
pub struct PromptStream {
    nats: async_nats::Client,
    /// The prompt subject, for errors and logs.
    subject: String,
    /// `None` once the stream is over: dropping it removes the route.
    route: Option<Route>,
    /// The reply subject (§6.1).
    inbox: String,
    decoder: ResponseStream,
    timer: Pin<Box<tokio::time::Sleep>>,
    /// When the timer is armed for: never later than the stream's deadline
    /// once the timer has fired, so the stream cannot outlive it.
    timer_at: Option<std::time::Instant>,
    /// The connection's connect count when the prompt was sent.
    connects: u64,
    max_bytes: u64,
    /// The server answered "no responders" (NATS 503) instead of an agent.
    no_responders: bool,
    /// The client's interceptors, told of every event and of the end.
    interceptors: Interceptors,
    /// What the interceptors are told about this stream.
    info: StreamInfo,
    /// Whether the interceptors were told of the end.
    ended: bool,
}

impl Client {
    /// Prompts an agent with the default options; see
    /// [`prompt_with`](Self::prompt_with).
    pub async fn prompt(
        &self,
        agent: &AgentHandle,
        envelope: impl IntoEnvelope,
    ) -> Result<PromptStream> {
        self.prompt_with(agent, envelope, PromptOptions::default())
            .await
    }

    /// Prompts an agent and returns its response stream.
    ///
    /// Before anything is published: the endpoint's `min_sender_trust` is
    /// read, and a connection that cannot sign fails a `signed` endpoint
    /// with [`Error::SignatureRequired`] (§13.9); the interceptors add
    /// their headers and fields; the request is signed when the connection
    /// can sign (§13.6) and otherwise carries no `Agent-Sender` at all
    /// (§13.4); and it is checked, headers included (§13.5.1), against the
    /// agent's declared `max_payload` and `attachments_ok` and the server's
    /// own `max_payload`, a failure being [`Error::Refused`] (§5.4). It is
    /// then published to the prompt subject from the agent's record,
    /// verbatim (§4.3) or under its local name for a renamed import
    /// (§13.6.2), with a fresh inbox as reply subject (§6.1).
    /// [`Error::NoResponders`] comes from the stream when nobody listens.
    pub async fn prompt_with(
        &self,
        agent: &AgentHandle,
        envelope: impl IntoEnvelope,
        options: PromptOptions,
    ) -> Result<PromptStream> {
        let mut envelope = envelope.into_envelope();
        let nats = self.nats();
        // §4.3, §6.1: the subject comes from the record, never from
        // identity; §13.6.2: a renamed import publishes under its local name.
        let addressing = self.addressing(agent.prompt_subject());
        // §13.9: the requirement is read before anything is sent.
        let signer = match (self.signer().await, agent.min_sender_trust()) {
            (Ok(signer), _) => Some(signer),
            (Err(reason), required) => match SendPlan::decide(required, false) {
                SendPlan::Refuse => {
                    return Err(Error::SignatureRequired {
                        subject: addressing.sub,
                        reason,
                    });
                }
                _ => {
                    tracing::trace!(%reason, "prompt sent without Agent-Sender");
                    None
                }
            },
        };
        // The client's reply inbox is subscribed already, so no chunk can
        // arrive before anyone listens.
        let route = self.replies().open(options.max_bytes);
        let inbox = route.subject().to_owned();
        let info = StreamInfo::new(
            addressing.publish.clone(),
            inbox.clone(),
            agent.id().to_owned(),
        );
        let mut headers = HeaderMap::new();
        for interceptor in self.inner.interceptors.iter() {
            let mut outgoing =
                OutgoingPrompt::new(agent, &mut envelope, &mut headers, &info, &options.context);
            interceptor.before_prompt(&mut outgoing).await?;
        }
        // §5.4: local checks before publishing; the server's limit counts too.
        let limits = PromptLimits::from(&agent.info().prompt);
        let payload = nap_proto::encode_request(&envelope, limits)?;
        if let Some(signer) = &signer {
            // §13.6: the signature covers the payload exactly as published.
            let value =
                sign_now(signer, &addressing.sub, &payload).map_err(|source| Error::Signing {
                    subject: addressing.sub.clone(),
                    source,
                })?;
            headers.insert(SENDER_HEADER, value.as_str());
        }
        // §13.5.1: header bytes count toward max_payload.
        nap_proto::check_request_size(
            payload.len(),
            headers_len(&headers),
            limits,
            self.server_max_payload(),
        )?;

        let subject = addressing.publish;
        let connects = connects(nats);
        let published = if headers.is_empty() {
            nats.publish_with_reply(subject.clone(), inbox.clone(), payload.into())
                .await
        } else {
            nats.publish_with_reply_and_headers(
                subject.clone(),
                inbox.clone(),
                headers,
                payload.into(),
            )
            .await
        };
        published.map_err(|source| Error::Publish {
            subject: subject.clone(),
            source,
        })?;
        let started = now();
        tracing::debug!(%subject, %inbox, agent = %agent.id(), signed = signer.is_some(), "prompt sent");
        // §6.6: the inactivity clock starts at publication.
        let mut decoder = ResponseStream::new(started, options.inactivity_timeout);
        if let Some(deadline) = options.deadline {
            decoder = decoder.with_deadline(deadline);
        }
        let first = decoder.poll_timeout().unwrap_or(started);
        Ok(PromptStream {
            nats: nats.clone(),
            subject,
            route: Some(route),
            inbox,
            decoder,
            timer: Box::pin(super::sleep_until(first)),
            timer_at: Some(first),
            connects,
            max_bytes: options.max_bytes,
            no_responders: false,
            interceptors: self.inner.interceptors.clone(),
            info,
            ended: false,
        })
    }
}

/// The bytes a header map adds to a message (§13.5.1), by nap-proto's rule.
pub(crate) fn headers_len(headers: &HeaderMap) -> u64 {
    let pairs: Vec<(&str, &str)> = headers
        .iter()
        .flat_map(|(name, values)| {
            let name: &str = name.as_ref();
            values.iter().map(move |v| (name, v.as_str()))
        })
        .collect();
    nap_proto::header_block_len(pairs)
}

pub(super) fn connects(nats: &async_nats::Client) -> u64 {
    nats.statistics().connects.load(Ordering::Relaxed)
}

impl PromptStream {
    /// The subject the prompt was published to.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The reply subject chunks arrive on (§6.1).
    pub fn inbox(&self) -> &str {
        &self.inbox
    }

    /// Whether the first message was the `ack` the agent MUST send first
    /// (§6.4); `None` before any message.
    pub fn first_was_ack(&self) -> Option<bool> {
        self.decoder.first_was_ack()
    }

    /// The whole reply text; see [`collect`](Self::collect). A query from
    /// the agent fails with [`Error::QueryNotAnswered`]; use
    /// [`text_with_answers`](Self::text_with_answers) to answer queries.
    pub async fn text(self) -> Result<String> {
        self.collect().await.map(|reply| reply.text)
    }

    /// The whole reply text, answering each query (§7) with `answer`.
    pub async fn text_with_answers<F, Fut, A>(self, answer: F) -> Result<String>
    where
        F: FnMut(Query) -> Fut,
        Fut: Future<Output = A>,
        A: IntoEnvelope,
    {
        self.collect_with_answers(answer)
            .await
            .map(|reply| reply.text)
    }

    /// Reads the stream to its end and gathers the response text and
    /// attachments (§6.3). Status chunks are skipped; the first error ends
    /// the collection. A query from the agent fails with
    /// [`Error::QueryNotAnswered`], since it must be answered (§7.2).
    pub async fn collect(mut self) -> Result<Reply> {
        let mut reply = Reply::default();
        while let Some(event) = self.next().await {
            match event? {
                Event::Response(data) => self.gather(&mut reply, data)?,
                Event::Violation(violation) => return Err(Error::Protocol(violation)),
                Event::Query(query) => {
                    return Err(Error::QueryNotAnswered {
                        id: query.id().to_owned(),
                        prompt: query.prompt().to_owned(),
                    });
                }
                Event::Ack | Event::Status(_) => {}
                Event::End => break,
            }
        }
        Ok(reply)
    }

    /// Like [`collect`](Self::collect), answering each query (§7) with
    /// what `answer` returns for it, published once to its reply subject.
    pub async fn collect_with_answers<F, Fut, A>(mut self, mut answer: F) -> Result<Reply>
    where
        F: FnMut(Query) -> Fut,
        Fut: Future<Output = A>,
        A: IntoEnvelope,
    {
        let mut reply = Reply::default();
        while let Some(event) = self.next().await {
            match event? {
                Event::Response(data) => self.gather(&mut reply, data)?,
                Event::Violation(violation) => return Err(Error::Protocol(violation)),
                Event::Query(query) => {
                    let response = answer(query.query().clone()).await;
                    query.answer(response).await?;
                }
                Event::Ack | Event::Status(_) => {}
                Event::End => break,
            }
        }
        Ok(reply)
    }

    /// Sets the timer for `at`.
    fn arm(&mut self, at: std::time::Instant) {
        self.timer
            .as_mut()
            .reset(tokio::time::Instant::from_std(at));
        self.timer_at = Some(at);
    }

    /// Adds a response to a gathered reply, within the memory budget.
    fn gather(&mut self, reply: &mut Reply, data: ResponseData) -> Result<()> {
        reply.push(data);
        if reply.size() > self.max_bytes {
            self.finish();
            return Err(Error::Lost(Loss::BufferFull {
                limit: self.max_bytes,
            }));
        }
        Ok(())
    }

    /// Ends the stream: removes its route (§6.7).
    fn finish(&mut self) {
        self.route = None;
    }

    /// Reads one message from the reply subject.
    fn on_message(&mut self, msg: &async_nats::Message) {
        if is_no_responders(msg) {
            self.finish();
            self.no_responders = true;
            return;
        }
        // §12: headers are inspected before the body, on every message.
        let at = now();
        with_received(msg, |received| self.decoder.handle_message(at, received));
    }

    /// What the protocol machine learned, as this stream's item.
    fn on_event(&mut self, event: StreamEvent) -> Option<Result<Event>> {
        let item = match event {
            StreamEvent::Ack => Ok(Event::Ack),
            StreamEvent::Status(token) => Ok(Event::Status(token)),
            StreamEvent::Response(data) => Ok(Event::Response(data)),
            StreamEvent::Query(query) => {
                Ok(Event::Query(PendingQuery::new(self.nats.clone(), query)))
            }
            StreamEvent::Violation(violation) => {
                tracing::debug!(subject = %self.subject, %violation, "agent broke the stream rules");
                Ok(Event::Violation(violation))
            }
            StreamEvent::End => Ok(Event::End),
            // §9.3: the error is the outcome; the terminator that should
            // follow is not waited for.
            StreamEvent::Error(remote) => Err(Error::Remote(Box::new(remote))),
            StreamEvent::TimedOut { idle } => Err(Error::InactivityTimeout { idle }),
            StreamEvent::DeadlineExceeded { after } => Err(Error::DeadlineExceeded { after }),
            StreamEvent::Lost(loss) => Err(Error::Lost(loss)),
        };
        if item.as_ref().map_or(true, |e| matches!(e, Event::End)) {
            self.finish();
        }
        Some(item)
    }
}

impl Stream for PromptStream {
    type Item = Result<Event>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let item = std::task::ready!(this.poll_inner(cx));
        this.tell_interceptors(item.as_ref());
        Poll::Ready(item)
    }
}

impl Drop for PromptStream {
    fn drop(&mut self) {
        if !self.ended {
            self.ended = true;
            for interceptor in self.interceptors.iter() {
                interceptor.on_end(&self.info, StreamEnd::Dropped);
            }
        }
    }
}

impl PromptStream {
    /// Tells the interceptors what the stream yields (§6, §9).
    fn tell_interceptors(&mut self, item: Option<&Result<Event>>) {
        if self.ended || self.interceptors.is_empty() {
            return;
        }
        let end = match item {
            Some(Ok(event)) => {
                for interceptor in self.interceptors.iter() {
                    interceptor.on_event(&self.info, event);
                }
                matches!(event, Event::End).then_some(StreamEnd::Complete)
            }
            Some(Err(error)) => Some(StreamEnd::Failed(error)),
            // Nothing after the end was reported; a quiet end is not complete.
            None => Some(StreamEnd::Dropped),
        };
        if let Some(end) = end {
            self.ended = true;
            for interceptor in self.interceptors.iter() {
                interceptor.on_end(&self.info, end);
            }
        }
    }

    fn poll_inner(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Event>>> {
        let this = self;
        loop {
            // What the machine already knows comes first.
            if let Some(event) = this.decoder.poll() {
                match this.on_event(event) {
                    Some(item) => return Poll::Ready(Some(item)),
                    None => continue,
                }
            }
            if this.no_responders {
                this.no_responders = false;
                return Poll::Ready(Some(Err(Error::NoResponders {
                    subject: this.subject.clone(),
                })));
            }
            let Some(route) = this.route.as_ref() else {
                return Poll::Ready(None);
            };
            // A reconnect while the stream was open: whatever was published
            // meanwhile is gone, so the stream cannot end complete.
            if connects(&this.nats) != this.connects {
                this.decoder.handle_loss(Loss::Reconnected);
                continue;
            }
            match route.poll_next(cx) {
                Poll::Ready(Delivery::Message(msg)) => {
                    this.on_message(&msg);
                    continue;
                }
                Poll::Ready(Delivery::Lost(loss)) => {
                    this.decoder.handle_loss(loss);
                    continue;
                }
                Poll::Pending => {}
            }
            // Nothing to read: wait for the next deadline (§6.6). Every
            // message moves the inactivity deadline later; the timer is not
            // reset for that (it would be, once per message), only moved
            // earlier when needed, and re-armed when it fires early.
            let Some(deadline) = this.decoder.poll_timeout() else {
                this.finish();
                return Poll::Ready(None);
            };
            if this.timer_at.is_none_or(|armed| deadline < armed) {
                this.arm(deadline);
            }
            if this.timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            let at = now();
            this.decoder.handle_timeout(at);
            if let Some(next) = this.decoder.poll_timeout() {
                // Not expired: activity moved the deadline since the timer
                // was armed. Sleep until the new one.
                this.arm(next.max(at + Duration::from_millis(1)));
            }
        }
    }
}
