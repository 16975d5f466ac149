//! Anthropic's Messages API with streaming and tool use.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine;
use futures::StreamExt;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Value, json};

use super::http;
use crate::LlmError;
use crate::config::{ENV_ANTHROPIC_KEY, HttpOptions, Provider};
use crate::llm::{
    ChatRequest, ChatStream, Completion, CompletionBuilder, FinishReason, Llm, StreamEvent,
    ToolCallDelta,
};
use crate::message::{ContentPart, Message, Role};

/// The API version sent in `anthropic-version`.
pub const API_VERSION: &str = "2023-06-01";

/// `max_tokens` when the request names none; the API requires one.
pub const DEFAULT_MAX_TOKENS: u32 = 4096;

/// Settings of an Anthropic model; [`AnthropicBuilder::connect`] makes the model.
#[derive(Debug, Clone)]
pub struct AnthropicBuilder {
    base_url: String,
    model: String,
    api_key: String,
    http: HttpOptions,
}

/// A Claude model behind the Messages API.
#[derive(Clone)]
pub struct Anthropic {
    inner: Arc<Inner>,
}

struct Inner {
    url: String,
    model: String,
    headers: HeaderMap,
    client: reqwest::Client,
    http: HttpOptions,
}

impl std::fmt::Debug for Anthropic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Anthropic")
            .field("url", &self.inner.url)
            .field("model", &self.inner.model)
            .finish_non_exhaustive()
    }
}

impl Anthropic {
    /// A model with a key, at Anthropic's URL.
    #[allow(clippy::new_ret_no_self)]
    pub fn new(api_key: impl Into<String>, model: impl Into<String>) -> AnthropicBuilder {
        AnthropicBuilder {
            base_url: Provider::Anthropic.default_base_url().to_owned(),
            model: model.into(),
            api_key: api_key.into(),
            http: HttpOptions::default(),
        }
    }
}

impl AnthropicBuilder {
    /// Another base URL (the URL before `/v1/messages`).
    pub fn with_base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = base_url.into();
        self
    }

    /// Timeouts and retries.
    pub fn with_http(mut self, http: HttpOptions) -> Self {
        self.http = http;
        self
    }

    /// Checks the settings and makes the model.
    pub fn connect(self) -> Result<Anthropic, LlmError> {
        if self.api_key.trim().is_empty() {
            return Err(LlmError::MissingApiKey {
                variable: ENV_ANTHROPIC_KEY,
            });
        }
        let url = http::endpoint(&self.base_url, "v1/messages")?;
        let mut headers = HeaderMap::new();
        let mut key =
            HeaderValue::from_str(&self.api_key).map_err(|_| LlmError::InvalidApiKey {
                variable: ENV_ANTHROPIC_KEY,
            })?;
        key.set_sensitive(true);
        headers.insert(HeaderName::from_static("x-api-key"), key);
        headers.insert(
            HeaderName::from_static("anthropic-version"),
            HeaderValue::from_static(API_VERSION),
        );
        Ok(Anthropic {
            inner: Arc::new(Inner {
                url,
                model: self.model,
                headers,
                client: http::client(&self.http)?,
                http: self.http,
            }),
        })
    }
}

impl Llm for Anthropic {
    fn model(&self) -> &str {
        &self.inner.model
    }

    fn chat(&self, request: ChatRequest) -> ChatStream {
        let inner = self.inner.clone();
        Box::pin(async_stream::try_stream! {
            let body = request_body(&inner.model, &request);
            let response = http::post_json(&inner.client, &inner.url, &inner.headers, &body, &inner.http).await?;
            let mut events = Box::pin(http::events(response, &inner.http));
            let mut state = StreamState::new(&inner.model);
            while let Some(event) = events.next().await {
                let event = event?;
                for out in state.on_event(&event.event, &http::json(&event)?)? {
                    yield out;
                }
                if state.stopped {
                    break;
                }
            }
            yield StreamEvent::Done(state.finish()?);
        })
    }
}

/// The JSON body of a streaming Messages request.
pub(crate) fn request_body(model: &str, request: &ChatRequest) -> Value {
    let messages: Vec<Value> = request
        .messages
        .iter()
        .filter(|m| m.role != Role::System)
        .map(encode_message)
        .collect();
    let mut body = json!({
        "model": model,
        "max_tokens": request.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
        "messages": messages,
        "stream": true,
    });
    if let Some(system) = request.system_text() {
        body["system"] = system.into();
    }
    if !request.tools.is_empty() {
        body["tools"] = request
            .tools
            .iter()
            .map(|t| json!({"name": t.name, "description": t.description, "input_schema": t.parameters}))
            .collect();
    }
    if let Some(t) = request.temperature {
        body["temperature"] = t.into();
    }
    body
}

fn base64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

fn encode_message(m: &Message) -> Value {
    let role = match m.role {
        Role::Assistant => "assistant",
        // Tool results travel in a user turn.
        _ => "user",
    };
    let content: Vec<Value> = m
        .content
        .iter()
        .filter_map(|p| match p {
            ContentPart::Text { text } if text.is_empty() => None,
            ContentPart::Text { text } => Some(json!({"type": "text", "text": text})),
            ContentPart::Image { media_type, data } => Some(json!({
                "type": "image",
                "source": {"type": "base64", "media_type": media_type, "data": base64(data)},
            })),
            ContentPart::File {
                media_type, data, ..
            } if media_type == "application/pdf" => Some(json!({
                "type": "document",
                "source": {"type": "base64", "media_type": media_type, "data": base64(data)},
            })),
            ContentPart::File {
                filename,
                media_type,
                data,
            } => Some(json!({"type": "text", "text": format!(
                "[attachment `{filename}` ({media_type}, {} bytes) cannot be shown to this model]",
                data.len()
            )})),
            ContentPart::ToolCall(c) => Some(json!({
                "type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments,
            })),
            ContentPart::ToolResult(r) => Some(json!({
                "type": "tool_result", "tool_use_id": r.call_id, "content": r.content,
                "is_error": r.is_error,
            })),
        })
        .collect();
    json!({"role": role, "content": content})
}

/// What a stream has said so far.
struct StreamState {
    builder: CompletionBuilder,
    /// Content block index → tool call index.
    tool_blocks: HashMap<u64, usize>,
    stopped: bool,
}

impl StreamState {
    fn new(model: &str) -> Self {
        StreamState {
            builder: CompletionBuilder::new(model),
            tool_blocks: HashMap::new(),
            stopped: false,
        }
    }

    /// The deltas of one event.
    fn on_event(&mut self, name: &str, data: &Value) -> Result<Vec<StreamEvent>, LlmError> {
        let kind = data
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or(name)
            .to_owned();
        let index = data.get("index").and_then(Value::as_u64);
        let mut out = Vec::new();
        match kind.as_str() {
            "message_start" => {
                let message = data.get("message");
                if let Some(model) = message.and_then(|m| m.get("model")).and_then(Value::as_str) {
                    model.clone_into(&mut self.builder.model);
                }
                if let Some(usage) = message.and_then(|m| m.get("usage")) {
                    self.read_usage(usage);
                }
            }
            "content_block_start" => {
                let block = data.get("content_block");
                match block.and_then(|b| b.get("type")).and_then(Value::as_str) {
                    Some("tool_use") => {
                        let block_index =
                            index.ok_or_else(|| malformed("content_block_start", data))?;
                        let call = self.tool_blocks.len();
                        self.tool_blocks.insert(block_index, call);
                        let text = |k: &str| {
                            block
                                .and_then(|b| b.get(k))
                                .and_then(Value::as_str)
                                .map(str::to_owned)
                        };
                        out.push(StreamEvent::ToolCall(ToolCallDelta {
                            index: call,
                            id: text("id"),
                            name: text("name"),
                            arguments: String::new(),
                        }));
                    }
                    Some("text") => {
                        let text = block
                            .and_then(|b| b.get("text"))
                            .and_then(Value::as_str)
                            .unwrap_or_default();
                        if !text.is_empty() {
                            out.push(StreamEvent::Text(text.to_owned()));
                        }
                    }
                    _ => {}
                }
            }
            "content_block_delta" => {
                let delta = data
                    .get("delta")
                    .ok_or_else(|| malformed("content_block_delta", data))?;
                match delta.get("type").and_then(Value::as_str) {
                    Some("text_delta") => {
                        let text = delta
                            .get("text")
                            .and_then(Value::as_str)
                            .unwrap_or_default();
                        out.push(StreamEvent::Text(text.to_owned()));
                    }
                    Some("input_json_delta") => {
                        let call = index
                            .and_then(|i| self.tool_blocks.get(&i))
                            .copied()
                            .ok_or_else(|| malformed("input_json_delta", data))?;
                        out.push(StreamEvent::ToolCall(ToolCallDelta {
                            index: call,
                            id: None,
                            name: None,
                            arguments: delta
                                .get("partial_json")
                                .and_then(Value::as_str)
                                .unwrap_or_default()
                                .to_owned(),
                        }));
                    }
                    // thinking, signature and citations deltas are not part of the answer.
                    _ => {}
                }
            }
            "message_delta" => {
                if let Some(reason) = data
                    .get("delta")
                    .and_then(|d| d.get("stop_reason"))
                    .and_then(Value::as_str)
                {
                    self.builder.finish_reason = Some(match reason {
                        "end_turn" | "stop_sequence" => FinishReason::Stop,
                        "max_tokens" => FinishReason::Length,
                        "tool_use" => FinishReason::ToolCalls,
                        "refusal" => FinishReason::ContentFilter,
                        other => FinishReason::Other(other.to_owned()),
                    });
                }
                if let Some(usage) = data.get("usage") {
                    self.read_usage(usage);
                }
            }
            "message_stop" => self.stopped = true,
            "error" => {
                let error = data.get("error");
                let text = |k: &str| {
                    error
                        .and_then(|e| e.get(k))
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned()
                };
                return Err(LlmError::ProviderStreamError {
                    kind: text("type"),
                    message: text("message"),
                });
            }
            // ping, content_block_stop and future event types.
            _ => {}
        }
        for e in &out {
            self.builder.push(e);
        }
        Ok(out)
    }

    fn read_usage(&mut self, usage: &Value) {
        if let Some(n) = usage.get("input_tokens").and_then(Value::as_u64) {
            self.builder.usage.input_tokens = n;
        }
        if let Some(n) = usage.get("output_tokens").and_then(Value::as_u64) {
            self.builder.usage.output_tokens = n;
        }
    }

    fn finish(self) -> Result<Completion, LlmError> {
        if !self.stopped {
            return Err(LlmError::StreamInterrupted {
                reason: "the stream ended before `message_stop`".into(),
            });
        }
        self.builder.finish()
    }
}

fn malformed(what: &str, data: &Value) -> LlmError {
    LlmError::MalformedEvent {
        reason: format!("{what} without the fields the Messages API documents: {data}"),
    }
}
