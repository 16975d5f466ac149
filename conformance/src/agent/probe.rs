//! The raw-wire recorder: publishes requests and records every message
//! that comes back, headers and bytes, with its arrival time.

use std::time::{Duration, Instant};

use std::sync::Arc;

use async_nats::{Client, HeaderMap, Message};
use bytes::Bytes;
use futures::StreamExt;
use nap_proto::Chunk;
use nap_proto::identity::{Nonce, SENDER_HEADER, SenderSigner, SenderTime};

use crate::case::{Evidence, WireMessage};
use crate::error::{Error, Result};

/// How long to keep listening after a terminator, to catch anything an
/// agent publishes after it (§6.5).
pub const AFTER_TERMINATOR: Duration = Duration::from_millis(400);

/// One message received, as evidence and as raw bytes.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The message as evidence.
    pub wire: WireMessage,
    /// The raw body.
    pub body: Bytes,
}

impl Reply {
    /// Header pairs, when the message had a header block.
    pub fn headers(&self) -> Option<&Vec<(String, String)>> {
        self.wire.headers.as_ref()
    }
}

/// One request and every message seen on its reply subject.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// What the request was for (e.g. `zero-byte payload`).
    pub label: String,
    /// The request as published.
    pub request: WireMessage,
    /// The replies, in arrival order (including any after the terminator).
    pub replies: Vec<Reply>,
    /// Answers the probe published to mid-stream queries.
    pub answers: Vec<WireMessage>,
    /// True when the stream went silent for the whole inactivity window
    /// (or the overall budget ran out) before a terminator.
    pub timed_out: bool,
}

impl Exchange {
    /// The index of the first terminator, if one arrived.
    pub fn terminator_index(&self) -> Option<usize> {
        self.replies.iter().position(|r| r.wire.is_terminator())
    }

    /// The exchange as evidence: the request, the answers, then the replies.
    pub fn evidence(&self) -> Evidence {
        let mut messages = vec![self.request.clone()];
        messages.extend(self.answers.iter().cloned());
        messages.extend(self.replies.iter().map(|r| r.wire.clone()));
        messages.sort_by_key(|m| m.at_ms);
        let mut e = Evidence::messages(format!("request: {}", self.label), messages);
        if self.timed_out {
            e.notes
                .push("stream went silent before a terminator".to_owned());
        }
        e
    }
}

/// How to run one exchange.
#[derive(Debug, Clone)]
pub struct ExchangeOptions {
    /// Silence after which the stream is given up (§6.6).
    pub inactivity: Duration,
    /// The longest the whole exchange may take.
    pub budget: Duration,
    /// The text to answer mid-stream queries with, if any.
    pub answer: Option<String>,
}

/// A connection that records raw wire traffic.
///
/// With a signer ([`Probe::with_signer`]) every request it sends carries a
/// freshly signed `Agent-Sender` header, as a §13 caller's would; requests
/// sent with explicit headers carry exactly those.
#[derive(Debug, Clone)]
pub struct Probe {
    client: Client,
    signer: Option<Arc<SenderSigner>>,
}

/// A signed `Agent-Sender` value for `payload` on `subject`, stamped now
/// with a fresh NUID nonce (§13.5, §13.6).
pub fn signed_header(signer: &SenderSigner, subject: &str, payload: &[u8]) -> Option<String> {
    let ts = SenderTime::from_system_time(std::time::SystemTime::now()).ok()?;
    let nonce = Nonce::new(nuid::next().to_string()).ok()?;
    Some(signer.sign(subject, ts, nonce, payload).ok()?.encode())
}

/// Header pairs of a header map, in order.
pub fn header_pairs(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .flat_map(|(k, vs)| vs.iter().map(move |v| (k.to_string(), v.to_string())))
        .collect()
}

fn millis(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// A received NATS message as evidence, timed from `t0`.
pub fn wire_of(msg: &Message, t0: Instant) -> WireMessage {
    WireMessage::new(
        msg.subject.to_string(),
        msg.reply.as_ref().map(|r| r.to_string()),
        msg.headers.as_ref().map(header_pairs),
        &msg.payload,
        millis(t0),
    )
}

/// How the probe authenticates: nothing, an NKEY seed file, or a
/// credentials file. A seed also becomes the key the suite signs with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Auth {
    /// No credentials.
    #[default]
    None,
    /// A file holding a user seed (`SU…`).
    Nkey(std::path::PathBuf),
    /// A credentials file (user JWT and seed).
    Creds(std::path::PathBuf),
}

fn auth_error(path: &std::path::Path, message: impl std::fmt::Display) -> Error {
    Error::Host {
        what: path.display().to_string(),
        message: message.to_string(),
    }
}

impl Probe {
    /// Connects to `url` as `auth`; with a seed, the probe signs with it
    /// (its account read from the JWT, else from `$SYS.REQ.USER.INFO`).
    pub async fn connect_as(url: &str, auth: &Auth) -> Result<Self> {
        use nap_proto::identity::{Account, Credentials, OwnIdentity, USER_INFO_SUBJECT};
        let connect_err = |source| Error::Connect {
            url: url.to_owned(),
            source,
        };
        let (options, seed, account) = match auth {
            Auth::None => return Probe::connect(url).await,
            Auth::Nkey(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| auth_error(path, e))?;
                let seed = text.trim().to_owned();
                (
                    async_nats::ConnectOptions::new().nkey(seed.clone()),
                    seed,
                    None,
                )
            }
            Auth::Creds(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| auth_error(path, e))?;
                let creds = Credentials::parse(&text).map_err(|e| auth_error(path, e))?;
                let id = nap_proto::identity::identity_from_jwt(&creds.jwt)
                    .map_err(|e| auth_error(path, e))?;
                let options = async_nats::ConnectOptions::new()
                    .credentials(&text)
                    .map_err(|e| auth_error(path, e))?;
                (options, creds.seed, Some(id.account().clone()))
            }
        };
        let client = options.connect(url).await.map_err(connect_err)?;
        let account = match account {
            Some(a) => Some(a),
            None => {
                let asked = tokio::time::timeout(
                    nap_proto::identity::USER_INFO_TIMEOUT,
                    client.request(USER_INFO_SUBJECT, Bytes::new()),
                )
                .await;
                match asked {
                    Ok(Ok(msg)) => match nap_proto::identity::from_user_info(&msg.payload) {
                        OwnIdentity::Known(id) => Some(id.account().clone()),
                        _ => None,
                    },
                    _ => None,
                }
            }
        };
        let account = match account {
            Some(a) => a,
            None => Account::new(crate::agent::identity::SUITE_ACCOUNT)
                .map_err(|e| auth_error(std::path::Path::new("account"), e))?,
        };
        let signer = SenderSigner::new(&seed, account)
            .map_err(|e| auth_error(std::path::Path::new("seed"), e))?;
        Ok(Probe::new(client).with_signer(Arc::new(signer)))
    }

    /// Connects to `url`.
    pub async fn connect(url: &str) -> Result<Self> {
        let client = async_nats::connect(url)
            .await
            .map_err(|source| Error::Connect {
                url: url.to_owned(),
                source,
            })?;
        Ok(Probe {
            client,
            signer: None,
        })
    }

    /// Wraps an existing connection.
    pub fn new(client: Client) -> Self {
        Probe {
            client,
            signer: None,
        }
    }

    /// The same probe, signing every request it sends without explicit headers.
    pub fn with_signer(mut self, signer: Arc<SenderSigner>) -> Self {
        self.signer = Some(signer);
        self
    }

    /// The signer, if the probe signs.
    pub fn signer(&self) -> Option<&Arc<SenderSigner>> {
        self.signer.as_ref()
    }

    /// The underlying connection.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Subscribes a fresh inbox, then publishes the request with it as the
    /// reply subject (the subscription is in place first, §6.1).
    async fn send(&self, subject: &str, payload: Bytes) -> Result<Sent> {
        let headers = self.signer.as_ref().and_then(|signer| {
            let value = signed_header(signer, subject, &payload)?;
            let mut headers = HeaderMap::new();
            headers.insert(SENDER_HEADER, value.as_str());
            Some(headers)
        });
        self.send_with(subject, headers, payload).await
    }

    /// Like `send`, with exactly `headers` (none when `None`).
    async fn send_with(
        &self,
        subject: &str,
        headers: Option<HeaderMap>,
        payload: Bytes,
    ) -> Result<Sent> {
        let inbox = self.client.new_inbox();
        let sub = self
            .client
            .subscribe(inbox.clone())
            .await
            .map_err(|e| Error::nats("subscribe", e))?;
        self.client
            .flush()
            .await
            .map_err(|e| Error::nats("flush", e))?;
        let t0 = Instant::now();
        let request = WireMessage::new(
            subject,
            Some(inbox.clone()),
            headers.as_ref().map(header_pairs),
            &payload,
            0,
        );
        match headers {
            Some(headers) => self
                .client
                .publish_with_reply_and_headers(subject.to_owned(), inbox, headers, payload)
                .await
                .map_err(|e| Error::nats("publish", e))?,
            None => self
                .client
                .publish_with_reply(subject.to_owned(), inbox, payload)
                .await
                .map_err(|e| Error::nats("publish", e))?,
        }
        Ok(Sent { sub, request, t0 })
    }

    /// Publishes `payload` (and `headers`, if any) to `subject` with a fresh
    /// reply subject and records the stream that comes back.
    pub async fn exchange(
        &self,
        label: impl Into<String>,
        subject: &str,
        payload: Bytes,
        options: &ExchangeOptions,
    ) -> Result<Exchange> {
        let sent = self.send(subject, payload).await?;
        self.record(label.into(), sent, options).await
    }

    /// Like [`Probe::exchange`], with exactly `headers` on the request
    /// (none when `None`), whether or not the probe signs.
    pub async fn exchange_with_headers(
        &self,
        label: impl Into<String>,
        subject: &str,
        headers: Option<HeaderMap>,
        payload: Bytes,
        options: &ExchangeOptions,
    ) -> Result<Exchange> {
        let sent = self.send_with(subject, headers, payload).await?;
        self.record(label.into(), sent, options).await
    }

    /// Records the stream of a sent request.
    async fn record(
        &self,
        label: String,
        sent: Sent,
        options: &ExchangeOptions,
    ) -> Result<Exchange> {
        let Sent {
            mut sub,
            request,
            t0,
        } = sent;
        let mut exchange = Exchange {
            label,
            request,
            replies: Vec::new(),
            answers: Vec::new(),
            timed_out: false,
        };
        let hard_end = t0 + options.budget;
        let mut wait_until = (t0 + options.inactivity).min(hard_end);
        let mut ended = false;
        loop {
            let next = tokio::time::timeout_at(wait_until.into(), sub.next()).await;
            let msg = match next {
                Ok(Some(msg)) => msg,
                Ok(None) => break,
                Err(_) => {
                    exchange.timed_out = !ended;
                    break;
                }
            };
            let reply = Reply {
                wire: wire_of(&msg, t0),
                body: msg.payload.clone(),
            };
            if reply.wire.is_terminator() && !ended {
                ended = true;
                wait_until = Instant::now() + AFTER_TERMINATOR;
            } else if !ended {
                wait_until = (Instant::now() + options.inactivity).min(hard_end);
            }
            if let (Some(answer), Ok(Chunk::Query(q)), false) = (
                &options.answer,
                Chunk::decode(&reply.body),
                reply.wire.headers.is_some(),
            ) {
                let text = Bytes::from(answer.clone().into_bytes());
                exchange.answers.push(WireMessage::new(
                    q.reply_subject.clone(),
                    None,
                    None,
                    &text,
                    millis(t0),
                ));
                self.client
                    .publish(q.reply_subject.clone(), text)
                    .await
                    .map_err(|e| Error::nats("publish", e))?;
            }
            exchange.replies.push(reply);
        }
        let _ = sub.unsubscribe().await;
        Ok(exchange)
    }

    /// Publishes a request and collects every reply for `wait` (for
    /// `$SRV.PING` / `$SRV.INFO`, which many instances answer).
    pub async fn gather(
        &self,
        subject: &str,
        payload: Bytes,
        wait: Duration,
    ) -> Result<Vec<Reply>> {
        let Sent { mut sub, t0, .. } = self.send_with(subject, None, payload).await?;
        let mut replies = Vec::new();
        let end = t0 + wait;
        while let Ok(Some(msg)) = tokio::time::timeout_at(end.into(), sub.next()).await {
            if msg
                .status
                .is_some_and(|s| s.is_server_error() || s.as_u16() == 503)
            {
                continue; // no responders
            }
            replies.push(Reply {
                wire: wire_of(&msg, t0),
                body: msg.payload.clone(),
            });
        }
        let _ = sub.unsubscribe().await;
        Ok(replies)
    }

    /// Publishes a request and waits up to `timeout` for the first reply.
    pub async fn request_one(
        &self,
        subject: &str,
        payload: Bytes,
        timeout: Duration,
    ) -> Result<(WireMessage, Option<Reply>)> {
        let sent = self.send(subject, payload).await?;
        Self::first_reply(sent, timeout).await
    }

    /// Like [`Probe::request_one`], with exactly `headers` on the request.
    pub async fn request_one_with_headers(
        &self,
        subject: &str,
        headers: Option<HeaderMap>,
        payload: Bytes,
        timeout: Duration,
    ) -> Result<(WireMessage, Option<Reply>)> {
        let sent = self.send_with(subject, headers, payload).await?;
        Self::first_reply(sent, timeout).await
    }

    async fn first_reply(sent: Sent, timeout: Duration) -> Result<(WireMessage, Option<Reply>)> {
        let Sent {
            mut sub,
            request,
            t0,
        } = sent;
        let reply = match tokio::time::timeout(timeout, sub.next()).await {
            Ok(Some(msg)) if msg.status.is_none_or(|s| s.as_u16() != 503) => Some(Reply {
                wire: wire_of(&msg, t0),
                body: msg.payload.clone(),
            }),
            _ => None,
        };
        let _ = sub.unsubscribe().await;
        Ok((request, reply))
    }
}

/// A request on the wire: its reply subscription, what was sent, and when.
struct Sent {
    sub: async_nats::Subscriber,
    request: WireMessage,
    t0: Instant,
}
