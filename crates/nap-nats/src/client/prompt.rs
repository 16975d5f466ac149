//! Prompting an agent (§5) and reading its response stream (§6, §7, §9).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::{Stream, StreamExt};
use nap_proto::request::{self, PromptLimits};
use nap_proto::stream::DEFAULT_INACTIVITY;
use nap_proto::{Attachment, Envelope, Query, ResponseData, ResponseStream, StreamEvent};

use super::{AgentHandle, Client, PendingQuery, is_no_responders, now};
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

/// How one prompt is streamed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PromptOptions {
    /// The stream ends with [`Error::InactivityTimeout`] when no message
    /// arrives for this long (§6.6). Default: 60 s.
    pub inactivity_timeout: Duration,
}

impl Default for PromptOptions {
    fn default() -> Self {
        PromptOptions {
            inactivity_timeout: DEFAULT_INACTIVITY,
        }
    }
}

impl PromptOptions {
    /// The default options with another inactivity timeout.
    pub fn inactivity_timeout(timeout: Duration) -> Self {
        PromptOptions {
            inactivity_timeout: timeout,
        }
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
/// (§6.6). An error signal from the agent (§9.3) is yielded as
/// [`Error::Remote`], a silence longer than the inactivity timeout (§6.6)
/// as [`Error::InactivityTimeout`], and the stream ends after either. A
/// message that breaks the stream rules is yielded as [`Error::Protocol`]
/// and the stream goes on. After [`Event::End`] the stream yields `None`.
///
/// Dropping the stream cancels the prompt: the reply subscription is
/// dropped and no signal is sent to the agent (§6.7).
#[derive(Debug)]
pub struct PromptStream {
    nats: async_nats::Client,
    /// The prompt subject, for errors and logs.
    subject: String,
    /// The reply inbox, for errors and logs.
    inbox: String,
    /// `None` once the stream is over: dropping it unsubscribes.
    replies: Option<async_nats::Subscriber>,
    decoder: ResponseStream,
    timer: Pin<Box<tokio::time::Sleep>>,
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
    /// The request is checked against the agent's declared `max_payload`
    /// and `attachments_ok`, and the server's own `max_payload`, before
    /// anything is published; a failure is [`Error::Refused`] (§5.4). It is
    /// then published to the prompt subject from the agent's record,
    /// verbatim (§4.3), with a fresh inbox as reply subject (§6.1).
    /// [`Error::NoResponders`] comes from the stream when nobody listens.
    pub async fn prompt_with(
        &self,
        agent: &AgentHandle,
        envelope: impl IntoEnvelope,
        options: PromptOptions,
    ) -> Result<PromptStream> {
        let envelope = envelope.into_envelope();
        let nats = self.nats();
        // §5.4: local checks before publishing; the server's limit counts too.
        let server_max = Some(nats.server_info().max_payload as u64).filter(|&m| m > 0);
        let limits = PromptLimits::from(&agent.info().prompt);
        let payload = request::prepare(&envelope, limits, server_max, 0)?;

        // §4.3, §6.1: the subject comes from the record, never from identity.
        let subject = agent.prompt_subject().to_owned();
        let inbox = nats.new_inbox();
        // Subscribe first, so no chunk can arrive before anyone listens.
        let replies = nats
            .subscribe(inbox.clone())
            .await
            .map_err(|source| Error::Subscribe {
                subject: inbox.clone(),
                source,
            })?;
        nats.publish_with_reply(subject.clone(), inbox.clone(), payload.into())
            .await
            .map_err(|source| Error::Publish {
                subject: subject.clone(),
                source,
            })?;
        let started = now();
        tracing::debug!(%subject, %inbox, agent = %agent.id(), "prompt sent");
        // §6.6: the inactivity clock starts at publication.
        let decoder = ResponseStream::new(started, options.inactivity_timeout);
        let deadline = started + options.inactivity_timeout;
        Ok(PromptStream {
            nats: nats.clone(),
            subject,
            inbox,
            replies: Some(replies),
            decoder,
            timer: Box::pin(super::sleep_until(deadline)),
        })
    }
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
                Event::Response(data) => reply.push(data),
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
                Event::Response(data) => reply.push(data),
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

    /// Ends the stream: drops the reply subscription (§6.7).
    fn finish(&mut self) {
        self.replies = None;
    }

    /// Reads one message from the reply subject.
    fn on_message(&mut self, msg: &async_nats::Message) -> Option<Result<Event>> {
        if is_no_responders(msg) {
            self.finish();
            return Some(Err(Error::NoResponders {
                subject: self.subject.clone(),
            }));
        }
        let at = now();
        // §12: headers are inspected before the body, on every message.
        let decoded = with_received(msg, |received| self.decoder.handle(at, received));
        match decoded {
            // §6.6: unknown chunk types are silently skipped.
            Ok(None) => None,
            Ok(Some(event)) => Some(self.on_event(event)),
            Err(violation) => {
                tracing::debug!(subject = %self.subject, %violation, "agent broke the stream rules");
                Some(Err(Error::Protocol(violation)))
            }
        }
    }

    fn on_event(&mut self, event: StreamEvent) -> Result<Event> {
        match event {
            StreamEvent::Ack => Ok(Event::Ack),
            StreamEvent::Status(token) => Ok(Event::Status(token)),
            StreamEvent::Response(data) => Ok(Event::Response(data)),
            StreamEvent::Query(query) => {
                Ok(Event::Query(PendingQuery::new(self.nats.clone(), query)))
            }
            StreamEvent::End => {
                self.finish();
                Ok(Event::End)
            }
            // §9.3: the error is the outcome; the terminator that should
            // follow is not waited for.
            StreamEvent::Error(remote) => {
                self.finish();
                Err(Error::Remote(Box::new(remote)))
            }
            StreamEvent::TimedOut { idle } => {
                self.finish();
                Err(Error::InactivityTimeout { idle })
            }
        }
    }
}

impl Stream for PromptStream {
    type Item = Result<Event>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            let Some(replies) = this.replies.as_mut() else {
                return Poll::Ready(None);
            };
            match replies.poll_next_unpin(cx) {
                Poll::Ready(Some(msg)) => {
                    let item = this.on_message(&msg);
                    // §6.6: every message resets the inactivity clock.
                    if let Some(deadline) = this.decoder.deadline() {
                        this.timer
                            .as_mut()
                            .reset(tokio::time::Instant::from_std(deadline));
                    }
                    match item {
                        Some(item) => return Poll::Ready(Some(item)),
                        None => continue,
                    }
                }
                Poll::Ready(None) => {
                    this.finish();
                    return Poll::Ready(Some(Err(Error::SubscriptionClosed {
                        subject: this.inbox.clone(),
                    })));
                }
                Poll::Pending => {}
            }
            // Nothing to read: wait for the inactivity deadline (§6.6).
            let Some(deadline) = this.decoder.deadline() else {
                this.finish();
                return Poll::Ready(None);
            };
            if this.timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            match this.decoder.handle_timeout(now()) {
                Some(event) => return Poll::Ready(Some(this.on_event(event))),
                // Woken a little early: sleep again until the deadline.
                None => this
                    .timer
                    .as_mut()
                    .reset(tokio::time::Instant::from_std(deadline)),
            }
        }
    }
}
