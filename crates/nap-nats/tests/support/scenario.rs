//! Hand-written scenario agents for the caller tests.
//!
//! Each scenario agent is a real NATS micro service named `agents`, built
//! with plain async-nats (not nap's host), whose prompt handler is a closure
//! that writes raw chunks, error signals and terminators: exactly the bytes
//! a test wants the caller to read, including broken ones.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_nats::service::ServiceExt;
use async_nats::{Client, HeaderMap};
use bytes::Bytes;
use futures::StreamExt;
use nap_testkit::NatsServer;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

/// Generous bound for anything that should happen "soon"; never a speed
/// assertion, only a guard against hanging forever.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// A fresh nats-server for one test.
pub fn server() -> NatsServer {
    NatsServer::start().expect("start nats-server (run `cargo xtask setup` if it is missing)")
}

/// A plain async-nats connection.
pub async fn connect(server: &NatsServer) -> Client {
    async_nats::connect(server.url()).await.unwrap()
}

/// A nap caller on its own connection.
pub async fn caller(server: &NatsServer) -> nap_nats::Client {
    nap_nats::Client::new(connect(server).await).await.unwrap()
}

/// Returns once the server has processed everything `nc` sent before
/// (subscriptions included): a message to itself makes the round trip, and
/// the server handles one connection's operations in order. (`flush` only
/// empties the socket buffer.)
pub async fn sync(nc: &Client) {
    let inbox = nc.new_inbox();
    let mut probe = nc.subscribe(inbox.clone()).await.unwrap();
    nc.publish(inbox, Bytes::new()).await.unwrap();
    soon(probe.next()).await.unwrap();
}

/// Awaits `fut`, failing the test if it takes longer than [`PATIENCE`].
pub async fn soon<T>(fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(PATIENCE, fut)
        .await
        .expect("timed out waiting")
}

/// How a scenario agent registers.
#[derive(Debug, Clone)]
pub struct Spec {
    pub agent: String,
    pub owner: String,
    pub name: String,
    pub session: Option<String>,
    pub protocol_version: String,
    pub max_payload: String,
    pub attachments_ok: bool,
    /// Overrides the default `agents.prompt.{agent}.{owner}.{name}`.
    pub prompt_subject: Option<String>,
    /// Register a `status` endpoint answering heartbeat payloads.
    pub status: StatusReply,
}

/// What the `status` endpoint does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusReply {
    /// No status endpoint at all.
    None,
    /// A §8.3 heartbeat payload.
    Heartbeat,
    /// A §9 error: 500 with headers.
    Error,
}

impl Spec {
    pub fn new(agent: &str, owner: &str, name: &str) -> Self {
        Spec {
            agent: agent.into(),
            owner: owner.into(),
            name: name.into(),
            session: None,
            protocol_version: "0.3".into(),
            max_payload: "1MB".into(),
            attachments_ok: true,
            prompt_subject: None,
            status: StatusReply::Heartbeat,
        }
    }

    pub fn session(mut self, session: &str) -> Self {
        self.session = Some(session.into());
        self
    }

    pub fn protocol_version(mut self, version: &str) -> Self {
        self.protocol_version = version.into();
        self
    }

    pub fn max_payload(mut self, max_payload: &str) -> Self {
        self.max_payload = max_payload.into();
        self
    }

    pub fn attachments_ok(mut self, ok: bool) -> Self {
        self.attachments_ok = ok;
        self
    }

    pub fn prompt_subject(mut self, subject: &str) -> Self {
        self.prompt_subject = Some(subject.into());
        self
    }

    pub fn status(mut self, status: StatusReply) -> Self {
        self.status = status;
        self
    }

    fn default_subject(&self, verb: &str) -> String {
        format!("agents.{verb}.{}.{}.{}", self.agent, self.owner, self.name)
    }
}

/// One prompt request as the scenario agent sees it, with helpers to
/// answer on its reply subject.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub nc: Client,
    pub reply: String,
    pub payload: Bytes,
}

impl Exchange {
    /// The request payload as text.
    pub fn request_text(&self) -> String {
        String::from_utf8(self.payload.to_vec()).unwrap()
    }

    /// The prompt, read by the §5.3 rule.
    pub fn prompt(&self) -> String {
        nap_proto::Envelope::decode(&self.payload).unwrap().prompt
    }

    /// Publishes raw bytes on the reply subject.
    pub async fn raw(&self, body: impl Into<Bytes>) {
        self.nc
            .publish(self.reply.clone(), body.into())
            .await
            .unwrap();
    }

    /// Publishes one JSON chunk.
    pub async fn chunk(&self, chunk: Value) {
        self.raw(serde_json::to_vec(&chunk).unwrap()).await;
    }

    /// `{"type":"status","data":"ack"}` (§6.4).
    pub async fn ack(&self) {
        self.chunk(json!({"type": "status", "data": "ack"})).await;
    }

    /// A string-form response chunk (§6.3).
    pub async fn text(&self, text: &str) {
        self.chunk(json!({"type": "response", "data": text})).await;
    }

    /// An error signal (§9.1): the two headers and a body.
    pub async fn error(&self, code: u16, description: &str, body: &[u8]) {
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Service-Error-Code", code.to_string().as_str());
        headers.insert("Nats-Service-Error", description);
        self.nc
            .publish_with_headers(self.reply.clone(), headers, Bytes::copy_from_slice(body))
            .await
            .unwrap();
    }

    /// The terminator: zero bytes, no headers (§6.5).
    pub async fn end(&self) {
        self.nc
            .publish(self.reply.clone(), Bytes::new())
            .await
            .unwrap();
        self.nc.flush().await.unwrap();
    }

    /// Asks the caller a query (§7) and returns the raw answer payload.
    pub async fn ask(&self, question: &str) -> Bytes {
        let inbox = self.nc.new_inbox();
        let mut answers = self.nc.subscribe(inbox.clone()).await.unwrap();
        self.chunk(json!({
            "type": "query",
            "data": {"id": "q-1", "reply_subject": inbox, "prompt": question}
        }))
        .await;
        soon(answers.next()).await.unwrap().payload
    }
}

/// A running scenario agent.
pub struct ScenarioAgent {
    nc: Client,
    spec: Spec,
    id: String,
    service: Option<async_nats::service::Service>,
    tasks: Vec<JoinHandle<()>>,
    heartbeats: Option<JoinHandle<()>>,
}

impl ScenarioAgent {
    /// Registers the agent; each prompt request runs `behaviour` in a task.
    pub async fn start<F, Fut>(nc: &Client, spec: Spec, behaviour: F) -> ScenarioAgent
    where
        F: Fn(Exchange) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let mut metadata = HashMap::from([
            ("agent".to_owned(), spec.agent.clone()),
            ("owner".to_owned(), spec.owner.clone()),
            ("protocol_version".to_owned(), spec.protocol_version.clone()),
        ]);
        if let Some(session) = &spec.session {
            metadata.insert("session".to_owned(), session.clone());
        }
        let service = nc
            .service_builder()
            .description("scenario agent")
            .metadata(metadata)
            .start("agents", "1.0.0")
            .await
            .unwrap();
        let id = service.info().await.id;

        let prompt_subject = spec
            .prompt_subject
            .clone()
            .unwrap_or_else(|| spec.default_subject("prompt"));
        let mut prompt = service
            .endpoint_builder()
            .name("prompt")
            .queue_group("agents")
            .metadata(HashMap::from([
                ("max_payload".to_owned(), spec.max_payload.clone()),
                ("attachments_ok".to_owned(), spec.attachments_ok.to_string()),
            ]))
            .add(prompt_subject)
            .await
            .unwrap();
        let behaviour = Arc::new(behaviour);
        let client = nc.clone();
        let mut tasks = vec![tokio::spawn(async move {
            while let Some(request) = prompt.next().await {
                let Some(reply) = request.message.reply.clone() else {
                    continue;
                };
                let exchange = Exchange {
                    nc: client.clone(),
                    reply: reply.to_string(),
                    payload: request.message.payload.clone(),
                };
                tokio::spawn(behaviour(exchange));
            }
        })];

        if spec.status != StatusReply::None {
            let mut status = service
                .endpoint_builder()
                .name("status")
                .queue_group("agents")
                .add(spec.default_subject("status"))
                .await
                .unwrap();
            let (spec, id) = (spec.clone(), id.clone());
            tasks.push(tokio::spawn(async move {
                while let Some(request) = status.next().await {
                    let answer = match spec.status {
                        StatusReply::Error => Err(async_nats::service::error::Error {
                            status: "could not build the status".into(),
                            code: 500,
                        }),
                        _ => Ok(heartbeat(&spec, &id, 1)),
                    };
                    let _ = request.respond(answer).await;
                }
            }));
        }

        // Registered on the server before anyone looks for it.
        sync(nc).await;
        ScenarioAgent {
            nc: nc.clone(),
            spec,
            id,
            service: Some(service),
            tasks,
            heartbeats: None,
        }
    }

    /// The service id (the heartbeat's `instance_id`).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The subject its prompt endpoint listens on.
    pub fn prompt_subject(&self) -> String {
        self.spec
            .prompt_subject
            .clone()
            .unwrap_or_else(|| self.spec.default_subject("prompt"))
    }

    /// Starts beating every `interval_s` seconds on the protocol-fixed subject.
    pub fn start_heartbeats(&mut self, interval_s: u64) {
        let (nc, spec, id) = (self.nc.clone(), self.spec.clone(), self.id.clone());
        self.heartbeats = Some(tokio::spawn(async move {
            loop {
                let subject = spec.default_subject("hb");
                nc.publish(subject, heartbeat(&spec, &id, interval_s))
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_secs(interval_s)).await;
            }
        }));
    }

    /// Stops beating (the instance goes silent, §8.6).
    pub fn stop_heartbeats(&mut self) {
        if let Some(task) = self.heartbeats.take() {
            task.abort();
        }
    }

    /// Unregisters the service.
    pub async fn stop(mut self) {
        self.stop_heartbeats();
        if let Some(service) = self.service.take() {
            service.stop().await.unwrap();
        }
    }
}

impl Drop for ScenarioAgent {
    fn drop(&mut self) {
        self.stop_heartbeats();
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// A §8.3 heartbeat payload for a scenario agent.
pub fn heartbeat(spec: &Spec, id: &str, interval_s: u64) -> Bytes {
    let ts = nap_proto::utc_timestamp(std::time::SystemTime::now()).unwrap();
    let mut beat = json!({
        "agent": spec.agent,
        "owner": spec.owner,
        "instance_id": id,
        "ts": ts,
        "interval_s": interval_s,
    });
    if let Some(session) = &spec.session {
        beat["session"] = session.as_str().into();
    }
    serde_json::to_vec(&beat).unwrap().into()
}

/// A `$SRV.INFO` agent record as a micro-service framework writes it.
pub fn record(id: &str, agent: &str, owner: &str, name: &str) -> Value {
    json!({
        "type": "io.nats.micro.v1.info_response",
        "name": "agents",
        "id": id,
        "version": "1.0.0",
        "description": "hand-written record",
        "metadata": {"agent": agent, "owner": owner, "protocol_version": "0.3"},
        "endpoints": [
            {"name": "prompt", "subject": format!("agents.prompt.{agent}.{owner}.{name}"),
             "queue_group": "agents",
             "metadata": {"max_payload": "1MB", "attachments_ok": "true"}},
            {"name": "status", "subject": format!("agents.status.{agent}.{owner}.{name}"),
             "queue_group": "agents", "metadata": null}
        ]
    })
}

/// Answers every request on `subject` with each of `replies`, from a task.
pub async fn raw_responder(nc: &Client, subject: &str, replies: Vec<Value>) -> JoinHandle<()> {
    let mut requests = nc.subscribe(subject.to_owned()).await.unwrap();
    sync(nc).await;
    let nc = nc.clone();
    tokio::spawn(async move {
        while let Some(request) = requests.next().await {
            let Some(reply) = request.reply else { continue };
            for body in &replies {
                nc.publish(reply.clone(), serde_json::to_vec(body).unwrap().into())
                    .await
                    .unwrap();
            }
            nc.flush().await.unwrap();
        }
    })
}

/// A subscriber that proves nothing was published on `subject` (a
/// wildcard): see [`Silence::assert_silent`].
pub struct Silence {
    messages: async_nats::Subscriber,
}

/// The subject the silence sentinel is published to.
pub const SENTINEL: &str = "agents.prompt.sentinel.none.none";

impl Silence {
    /// Starts listening on `subject`, registered on the server on return.
    pub async fn listen(nc: &Client, subject: &str) -> Silence {
        let messages = nc.subscribe(subject.to_owned()).await.unwrap();
        sync(nc).await;
        Silence { messages }
    }

    /// Publishes a sentinel from `from` (the connection that must not have
    /// published) and checks it is the first message seen: anything that
    /// connection published before would have arrived first.
    pub async fn assert_silent(mut self, from: &Client) {
        from.publish(SENTINEL, Bytes::from_static(b"sentinel"))
            .await
            .unwrap();
        from.flush().await.unwrap();
        let first = soon(self.messages.next()).await.unwrap();
        assert_eq!(
            first.subject.as_str(),
            SENTINEL,
            "something was published before the sentinel: {first:?}"
        );
    }
}
