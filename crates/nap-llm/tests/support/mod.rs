//! A scripted HTTP server on 127.0.0.1 port 0 that replays provider
//! answers with real HTTP and real SSE framing.

#![allow(dead_code, clippy::unwrap_used)]

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use bytes::Bytes;
use serde_json::Value;

/// One piece of a scripted body.
#[derive(Debug, Clone)]
pub enum Part {
    /// Bytes sent as they are.
    Bytes(String),
    /// A wait before the next piece.
    Pause(Duration),
    /// Flushes what was sent, then breaks the connection (the chunked
    /// body never ends properly).
    Abort,
}

/// One scripted answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub parts: Vec<Part>,
}

impl Reply {
    /// `200` with an event stream of these SSE blocks.
    pub fn sse(blocks: Vec<String>) -> Self {
        Reply {
            status: 200,
            headers: vec![("content-type", "text/event-stream".into())],
            parts: blocks.into_iter().map(Part::Bytes).collect(),
        }
    }

    /// An error status with a JSON body.
    pub fn error(status: u16, body: Value) -> Self {
        Reply {
            status,
            headers: vec![("content-type", "application/json".into())],
            parts: vec![Part::Bytes(body.to_string())],
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// Inserts a piece before the last one.
    pub fn then(mut self, part: Part) -> Self {
        self.parts.push(part);
        self
    }
}

/// An SSE block: `event:` (when named) and `data:` lines, then a blank line.
pub fn sse(event: Option<&str>, data: &Value) -> String {
    match event {
        Some(e) => format!("event: {e}\ndata: {data}\n\n"),
        None => format!("data: {data}\n\n"),
    }
}

/// A request the server received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: Method,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Value,
}

#[derive(Default)]
struct Shared {
    replies: Mutex<VecDeque<Reply>>,
    requests: Mutex<Vec<Recorded>>,
    /// Bodies dropped before they were fully sent (the client went away).
    cancelled: AtomicUsize,
}

/// The running server.
#[derive(Clone)]
pub struct Server {
    pub base: String,
    shared: Arc<Shared>,
}

impl Server {
    /// Starts a server replaying `replies` in order.
    pub async fn start(replies: Vec<Reply>) -> Server {
        let shared = Arc::new(Shared::default());
        shared.replies.lock().unwrap().extend(replies);
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Server {
            base: format!("http://{addr}"),
            shared,
        }
    }

    /// The requests received so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// How many bodies the client abandoned.
    pub fn cancelled(&self) -> usize {
        self.shared.cancelled.load(Ordering::SeqCst)
    }
}

struct Guard {
    shared: Arc<Shared>,
    done: bool,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if !self.done {
            self.shared.cancelled.fetch_add(1, Ordering::SeqCst);
        }
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    shared.requests.lock().unwrap().push(Recorded {
        method,
        path: uri.path().to_owned(),
        headers,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    });
    let reply = shared.replies.lock().unwrap().pop_front();
    let Some(reply) = reply else {
        return Response::builder()
            .status(500)
            .body(Body::from("no scripted reply left"))
            .unwrap();
    };
    let guard = Guard {
        shared: shared.clone(),
        done: false,
    };
    let parts = reply.parts;
    let stream = async_stream::stream! {
        // Move the whole guard in, so it drops with the body.
        let mut guard = guard;
        for part in parts {
            match part {
                Part::Bytes(b) => yield Ok::<Bytes, std::io::Error>(Bytes::from(b)),
                Part::Pause(d) => tokio::time::sleep(d).await,
                Part::Abort => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    guard.done = true;
                    yield Err(std::io::Error::other("scripted abort"));
                    return;
                }
            }
        }
        guard.done = true;
    };
    let mut response = Response::builder().status(StatusCode::from_u16(reply.status).unwrap());
    for (name, value) in reply.headers {
        response = response.header(name, value);
    }
    response.body(Body::from_stream(stream)).unwrap()
}
