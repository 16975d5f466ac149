//! The HTTP side of `nap ui`: the routes, each behind its guard, and the
//! JSON and server-sent-event endpoints.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::Router;
use axum::extract::State as Shared;
use axum::http::StatusCode;
use axum::middleware::from_fn_with_state;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use futures::{Stream, StreamExt};
use nap_nats::{AgentHandle, Client, Error, Event, PendingQuery, PromptOptions};
use nap_proto::{Attachment, DiscoveryFilter, Envelope, Presence};
use serde::Deserialize;
use serde_json::{Value, json};

use super::guard::{self, Guard};
use super::token;
use crate::table;

/// What the handlers share: the caller, the raw connection (for the
/// conformance probe) and the questions waiting for an answer.
pub struct State {
    client: Client,
    nats: async_nats::Client,
    questions: Mutex<HashMap<String, PendingQuery>>,
}

impl State {
    /// The state of one server.
    pub fn new(client: Client, nats: async_nats::Client) -> Self {
        State {
            client,
            nats,
            questions: Mutex::new(HashMap::new()),
        }
    }

    fn questions(&self) -> std::sync::MutexGuard<'_, HashMap<String, PendingQuery>> {
        self.questions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The routes: every one behind the `Host` check; the API's reads behind
/// the token, its writes and the event stream behind the origin check and
/// the token (see [`guard`]). The event stream is a `POST` so that
/// browsers always send `Origin` with it.
pub fn router(state: State, guard: Arc<Guard>) -> Router {
    let reads = Router::new()
        .route("/api/agents", get(agents))
        .route_layer(from_fn_with_state(guard.clone(), guard::reader));
    let writes = Router::new()
        .route("/api/events", post(events))
        .route("/api/prompt", post(prompt))
        .route("/api/answer", post(answer))
        .route("/api/conformance", post(conformance))
        .route_layer(from_fn_with_state(guard.clone(), guard::writer));
    Router::new()
        .route("/", get(token::page).with_state(guard.clone()))
        .merge(reads)
        .merge(writes)
        .fallback(not_found)
        .with_state(Arc::new(state))
        .layer(from_fn_with_state(guard, guard::host))
}

async fn not_found() -> Response {
    failed(StatusCode::NOT_FOUND, "no such page")
}

/// An error as JSON with an HTTP status.
fn failed(status: StatusCode, message: impl std::fmt::Display) -> Response {
    (status, Json(json!({"error": message.to_string()}))).into_response()
}

/// One instance as the grid shows it.
fn describe(client: &Client, agent: &AgentHandle) -> Value {
    let info = agent.info();
    let identity = agent.identity();
    json!({
        "id": agent.id(),
        "agent": agent.agent(),
        "owner": agent.owner(),
        "name": agent.name(),
        "session": agent.session(),
        "description": info.description,
        "version": info.version,
        "protocol": agent.protocol_version().to_string(),
        "online": client.presence(agent.id()) != Some(Presence::Offline),
        "max_payload": agent.max_payload().to_string(),
        "max_payload_bytes": agent.max_payload().bytes(),
        "attachments_ok": agent.attachments_ok(),
        "identity": {
            "class": table::trust_class(identity),
            "id": identity.shown_id().map(|id| id.to_string()),
        },
        "prompt_subject": agent.prompt_subject(),
    })
}

/// Every agent on the system (§4.1), with its presence (§8).
async fn agents(Shared(state): Shared<Arc<State>>) -> Response {
    match state.client.discover(DiscoveryFilter::any()).await {
        Ok(found) => {
            let all: Vec<Value> = found.iter().map(|a| describe(&state.client, a)).collect();
            Json(Value::Array(all)).into_response()
        }
        Err(e) => failed(StatusCode::BAD_GATEWAY, e),
    }
}

/// Presence changes as they happen (§8.2), one event each.
async fn events(
    Shared(state): Shared<Arc<State>>,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let changes = state.client.watch().map(|transition| {
        let data = json!({
            "instance_id": transition.instance_id,
            "online": transition.presence == Presence::Online,
        });
        Ok(SseEvent::default().event("presence").data(data.to_string()))
    });
    Sse::new(changes).keep_alive(KeepAlive::default())
}

/// A file the page sends, its content in base64.
#[derive(Debug, Deserialize)]
struct FileIn {
    filename: String,
    content: String,
}

/// A prompt from the page.
#[derive(Debug, Deserialize)]
struct PromptIn {
    instance_id: String,
    prompt: String,
    #[serde(default)]
    attachments: Vec<FileIn>,
}

/// A server-sent event named `name` with JSON `data`.
fn sse(name: &str, data: Value) -> Result<SseEvent, Infallible> {
    Ok(SseEvent::default().event(name).data(data.to_string()))
}

/// An error as the page shows it: the agent's code and description (§9),
/// or nap's reading of what went wrong.
fn error_event(error: &Error) -> Result<SseEvent, Infallible> {
    match error {
        Error::Remote(remote) => sse(
            "failure",
            json!({"code": remote.code.to_string(), "description": remote.message()}),
        ),
        Error::Refused(refusal) => sse(
            "failure",
            json!({"code": "refused", "description": refusal.to_string()}),
        ),
        other => sse(
            "failure",
            json!({"code": "error", "description": other.to_string()}),
        ),
    }
}

/// Prompts one instance and streams its reply as events; a response that
/// is dropped (the page cancels or goes away) drops the stream (§6.7).
async fn prompt(Shared(state): Shared<Arc<State>>, Json(body): Json<PromptIn>) -> Response {
    let agent = match state.client.lookup(&body.instance_id).await {
        Ok(agent) => agent,
        Err(e) => return failed(StatusCode::NOT_FOUND, e),
    };
    let mut envelope = Envelope::text(body.prompt);
    for file in body.attachments {
        match BASE64.decode(file.content.as_bytes()) {
            Ok(bytes) => envelope
                .attachments
                .push(Attachment::new(file.filename, bytes)),
            Err(e) => {
                return failed(
                    StatusCode::BAD_REQUEST,
                    format!("{} is not base64: {e}", file.filename),
                );
            }
        }
    }
    let opened = state
        .client
        .prompt_with(&agent, envelope, PromptOptions::default())
        .await;
    let stream = async_stream::stream! {
        let mut reply = match opened {
            Ok(reply) => reply,
            Err(error) => {
                yield error_event(&error);
                yield sse("end", json!({}));
                return;
            }
        };
        while let Some(event) = reply.next().await {
            match event {
                Ok(Event::Ack) => yield sse("status", json!({"token": "ack"})),
                Ok(Event::Status(token)) => yield sse("status", json!({"token": token})),
                Ok(Event::Response(data)) => {
                    let files: Vec<Value> = data
                        .attachments()
                        .iter()
                        .map(|a| json!({"filename": a.filename, "content": BASE64.encode(&a.content)}))
                        .collect();
                    yield sse("text", json!({"text": data.text(), "attachments": files}));
                }
                Ok(Event::Query(query)) => {
                    let data = json!({"id": query.id(), "prompt": query.prompt()});
                    state.questions().insert(query.id().to_owned(), query);
                    yield sse("question", data);
                }
                Ok(Event::Violation(violation)) => {
                    yield error_event(&Error::Protocol(violation));
                    break;
                }
                Ok(Event::End) => break,
                Err(error) => {
                    yield error_event(&error);
                    break;
                }
            }
        }
        yield sse("end", json!({}));
    };
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// The page's answer to a question (§7).
#[derive(Debug, Deserialize)]
struct AnswerIn {
    query_id: String,
    answer: String,
}

/// Answers a question once; a second answer, or one to no question, is a 404.
async fn answer(Shared(state): Shared<Arc<State>>, Json(body): Json<AnswerIn>) -> Response {
    let Some(query) = state.questions().remove(&body.query_id) else {
        return failed(StatusCode::NOT_FOUND, "no question waits for that answer");
    };
    match query.answer(body.answer).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => failed(StatusCode::BAD_GATEWAY, e),
    }
}

/// Which instance to test.
#[derive(Debug, Deserialize)]
struct ConformanceIn {
    instance_id: String,
}

/// Runs the agent suite against one instance: its report, evidence
/// included, as `nap conformance agent --json` prints it.
async fn conformance(
    Shared(state): Shared<Arc<State>>,
    Json(body): Json<ConformanceIn>,
) -> Response {
    use nap_conformance::agent::{self, AgentOptions, Probe, Target};
    let mut options = AgentOptions::new(Target::Instance(body.instance_id));
    options.budget = std::time::Duration::from_secs(30);
    options.inactivity = std::time::Duration::from_secs(10);
    match agent::run_with(&Probe::new(state.nats.clone()), &options).await {
        Ok(report) => match serde_json::from_str::<Value>(&report.json()) {
            Ok(value) => Json(value).into_response(),
            Err(e) => failed(StatusCode::INTERNAL_SERVER_ERROR, e),
        },
        Err(e) => failed(StatusCode::BAD_GATEWAY, e),
    }
}
