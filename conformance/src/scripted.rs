//! Scripted agents on raw async-nats micro services: every byte they send is
//! chosen by a script, so they can be compliant but demanding (the caller
//! scenarios) or break exactly one rule (the broken agents).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_nats::service::ServiceExt;
use async_nats::{Client, HeaderMap, Subject};
use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use nap_proto::{Chunk, Identity, Verb};
use nap_proto::{QUEUE_GROUP, SERVICE_NAME, metadata_keys as keys};
use serde_json::{Map, Value, json};
use tokio::task::JoinHandle;

use crate::error::{Error, Result};

/// The reply side of one request: publishes raw messages to its reply subject.
#[derive(Debug, Clone)]
pub struct Out {
    client: Client,
    reply: Subject,
    subject: Subject,
    headers: Option<HeaderMap>,
}

impl Out {
    /// The subject the request arrived on.
    pub fn request_subject(&self) -> &str {
        self.subject.as_str()
    }

    /// The request's headers, if it had any.
    pub fn request_headers(&self) -> Option<&HeaderMap> {
        self.headers.as_ref()
    }

    /// The connection, for scripts that need more (a query inbox).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Publishes a raw body without headers.
    pub async fn raw(&self, body: impl Into<Bytes>) {
        if let Err(e) = self.client.publish(self.reply.clone(), body.into()).await {
            tracing::debug!(error = %e, "scripted publish failed");
        }
        let _ = self.client.flush().await;
    }

    /// Publishes a chunk (§6.2).
    pub async fn chunk(&self, chunk: &Chunk) {
        self.raw(chunk.encode()).await;
    }

    /// Publishes the ack (§6.4).
    pub async fn ack(&self) {
        self.chunk(&Chunk::ACK).await;
    }

    /// Publishes a string-form response chunk (§6.3).
    pub async fn text(&self, text: &str) {
        self.chunk(&Chunk::text(text)).await;
    }

    /// Publishes a body with the given headers.
    pub async fn with_headers(&self, headers: &[(&str, &str)], body: impl Into<Bytes>) {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.insert(*k, *v);
        }
        if let Err(e) = self
            .client
            .publish_with_headers(self.reply.clone(), map, body.into())
            .await
        {
            tracing::debug!(error = %e, "scripted publish failed");
        }
        let _ = self.client.flush().await;
    }

    /// Publishes an error signal (§9.1): code, description (if any), body.
    pub async fn error(&self, code: &str, description: Option<&str>, body: impl Into<Bytes>) {
        let mut headers = vec![(nap_proto::ERROR_CODE_HEADER, code)];
        if let Some(d) = description {
            headers.push((nap_proto::ERROR_HEADER, d));
        }
        self.with_headers(&headers, body).await;
    }

    /// Publishes the terminator (§6.5).
    pub async fn end(&self) {
        self.raw(Bytes::new()).await;
    }
}

/// What a scripted agent does with one prompt request.
#[async_trait]
pub trait Script: Send + Sync + 'static {
    /// Answers `payload` through `out`.
    async fn answer(&self, payload: Bytes, out: Out);
}

/// How a scripted agent registers and beats.
#[derive(Debug, Clone)]
pub struct ScriptedConfig {
    /// `metadata.agent` and the subject's agent token.
    pub agent: String,
    /// `metadata.owner`.
    pub owner: String,
    /// The instance name.
    pub name: String,
    /// `metadata.session`.
    pub session: Option<String>,
    /// `metadata.protocol_version`.
    pub protocol_version: String,
    /// The prompt subject; default `agents.prompt.{agent}.{owner}.{name}`.
    pub prompt_subject: Option<String>,
    /// The prompt endpoint's queue group.
    pub prompt_queue_group: String,
    /// Whether to register the `status` endpoint.
    pub status_endpoint: bool,
    /// The prompt endpoint's metadata.
    pub prompt_metadata: HashMap<String, String>,
    /// The heartbeat interval; `None` for no heartbeats.
    pub heartbeat: Option<Duration>,
    /// Applied to every heartbeat payload before it is published.
    pub patch_heartbeat: fn(&mut Map<String, Value>),
    /// Applied to every status reply before it is sent.
    pub patch_status: fn(&mut Map<String, Value>),
}

fn no_patch(_: &mut Map<String, Value>) {}

impl ScriptedConfig {
    /// A compliant registration for `agent`/`owner`/`name`: `max_payload`
    /// 64KB, `attachments_ok: false`, 1 s heartbeats.
    pub fn new(agent: &str, owner: &str, name: &str) -> Self {
        ScriptedConfig {
            agent: agent.to_owned(),
            owner: owner.to_owned(),
            name: name.to_owned(),
            session: None,
            protocol_version: "0.3".to_owned(),
            prompt_subject: None,
            prompt_queue_group: QUEUE_GROUP.to_owned(),
            status_endpoint: true,
            prompt_metadata: HashMap::from([
                (keys::MAX_PAYLOAD.to_owned(), "64KB".to_owned()),
                (keys::ATTACHMENTS_OK.to_owned(), "false".to_owned()),
            ]),
            heartbeat: Some(Duration::from_secs(1)),
            patch_heartbeat: no_patch,
            patch_status: no_patch,
        }
    }

    fn subject(&self, verb: Verb) -> Result<String> {
        let id = Identity::new(&self.agent, &self.owner, &self.name).map_err(|e| Error::Host {
            what: self.name.clone(),
            message: e.to_string(),
        })?;
        Ok(id.subject(verb).to_string())
    }
}

/// A running scripted agent; stops when dropped.
#[derive(Debug)]
pub struct Scripted {
    id: String,
    prompt_subject: String,
    tasks: Vec<JoinHandle<()>>,
}

impl Scripted {
    /// The service id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The advertised prompt subject.
    pub fn prompt_subject(&self) -> &str {
        &self.prompt_subject
    }
}

impl Drop for Scripted {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

fn beat(config: &ScriptedConfig, id: &str, interval: f64) -> Map<String, Value> {
    let ts = nap_proto::utc_timestamp(std::time::SystemTime::now()).unwrap_or_default();
    let mut m = Map::new();
    m.insert("agent".into(), json!(config.agent));
    m.insert("owner".into(), json!(config.owner));
    if let Some(s) = &config.session {
        m.insert("session".into(), json!(s));
    }
    m.insert("instance_id".into(), json!(id));
    m.insert("ts".into(), json!(ts));
    m.insert("interval_s".into(), json!(interval));
    m
}

fn to_bytes(m: &Map<String, Value>) -> Bytes {
    Bytes::from(serde_json::to_vec(m).unwrap_or_default()) // ok: a JSON map serialises
}

/// Registers `config` on `client` and answers prompts with `script`.
pub async fn start(
    client: Client,
    config: ScriptedConfig,
    script: impl Script,
) -> Result<Scripted> {
    let host_err = |e: async_nats::Error| Error::Host {
        what: config.name.clone(),
        message: e.to_string(),
    };
    let mut metadata = HashMap::from([
        (keys::AGENT.to_owned(), config.agent.clone()),
        (keys::OWNER.to_owned(), config.owner.clone()),
        (
            keys::PROTOCOL_VERSION.to_owned(),
            config.protocol_version.clone(),
        ),
    ]);
    if let Some(s) = &config.session {
        metadata.insert(keys::SESSION.to_owned(), s.clone());
    }
    let service = client
        .service_builder()
        .description(format!("scripted conformance agent {}", config.name))
        .metadata(metadata)
        .start(SERVICE_NAME, "0.1.0")
        .await
        .map_err(host_err)?;
    let prompt_subject = match &config.prompt_subject {
        Some(s) => s.clone(),
        None => config.subject(Verb::Prompt)?,
    };
    let mut prompt = service
        .endpoint_builder()
        .name("prompt")
        .queue_group(&config.prompt_queue_group)
        .metadata(config.prompt_metadata.clone())
        .add(prompt_subject.clone())
        .await
        .map_err(host_err)?;
    let id = service.info().await.id;
    let interval = config.heartbeat.map_or(30.0, |d| d.as_secs_f64());
    let mut tasks = Vec::new();

    if config.status_endpoint {
        let mut status = service
            .endpoint_builder()
            .name(Verb::Status.as_str())
            .queue_group(QUEUE_GROUP)
            .add(config.subject(Verb::Status)?)
            .await
            .map_err(host_err)?;
        let (client, config, id) = (client.clone(), config.clone(), id.clone());
        tasks.push(tokio::spawn(async move {
            while let Some(req) = status.next().await {
                if let Some(reply) = req.message.reply.clone() {
                    let mut m = beat(&config, &id, interval);
                    (config.patch_status)(&mut m);
                    let _ = client.publish(reply, to_bytes(&m)).await;
                }
            }
        }));
    }

    let script = Arc::new(script);
    {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            // Keep the service (and its $SRV handlers) alive with the task.
            let _service = service;
            while let Some(req) = prompt.next().await {
                let Some(reply) = req.message.reply.clone() else {
                    continue;
                };
                let out = Out {
                    client: client.clone(),
                    reply,
                    subject: req.message.subject.clone(),
                    headers: req.message.headers.clone(),
                };
                let script = script.clone();
                let payload = req.message.payload.clone();
                tokio::spawn(async move { script.answer(payload, out).await });
            }
        }));
    }

    if let Some(every) = config.heartbeat {
        let subject = config.subject(Verb::Hb)?;
        let (client, config, id) = (client.clone(), config.clone(), id.clone());
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                let mut m = beat(&config, &id, interval);
                (config.patch_heartbeat)(&mut m);
                let _ = client.publish(subject.clone(), to_bytes(&m)).await;
            }
        }));
    }
    let _ = client.flush().await;
    Ok(Scripted {
        id,
        prompt_subject,
        tasks,
    })
}
