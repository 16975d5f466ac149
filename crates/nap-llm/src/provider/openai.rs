//! OpenAI Chat Completions with streaming and tool calls, for OpenAI itself
//! and every server that speaks the same API (Ollama, vLLM, llama.cpp
//! server, LM Studio) by base URL.

use std::sync::Arc;

use base64::Engine;
use futures::StreamExt;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use serde_json::{Map, Value, json};

use super::http;
use crate::LlmError;
use crate::config::{HttpOptions, Provider};
use crate::llm::{
    ChatRequest, ChatStream, CompletionBuilder, FinishReason, Llm, StreamEvent, ToolCallDelta,
};
use crate::message::{ContentPart, Message, Role};

/// Settings of an OpenAI-compatible model; [`OpenAiBuilder::connect`] makes the model.
#[derive(Debug, Clone)]
pub struct OpenAiBuilder {
    base_url: String,
    model: String,
    api_key: Option<String>,
    http: HttpOptions,
}

/// A model behind an OpenAI-compatible Chat Completions endpoint.
#[derive(Clone)]
pub struct OpenAi {
    inner: Arc<Inner>,
}

struct Inner {
    url: String,
    model: String,
    headers: HeaderMap,
    client: reqwest::Client,
    http: HttpOptions,
}

impl std::fmt::Debug for OpenAi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAi")
            .field("url", &self.inner.url)
            .field("model", &self.inner.model)
            .finish_non_exhaustive()
    }
}

impl OpenAi {
    /// OpenAI itself, with a key.
    #[allow(clippy::new_ret_no_self)]
    pub fn new(api_key: impl Into<String>, model: impl Into<String>) -> OpenAiBuilder {
        Self::compatible(Provider::OpenAi.default_base_url(), model).with_api_key(api_key)
    }

    /// Any OpenAI-compatible server at `base_url` (the URL before
    /// `/chat/completions`, such as `http://localhost:8000/v1`), without a key.
    pub fn compatible(base_url: impl Into<String>, model: impl Into<String>) -> OpenAiBuilder {
        OpenAiBuilder {
            base_url: base_url.into(),
            model: model.into(),
            api_key: None,
            http: HttpOptions::default(),
        }
    }

    /// A local Ollama server at its default address.
    pub fn ollama(model: impl Into<String>) -> OpenAiBuilder {
        Self::compatible(Provider::Ollama.default_base_url(), model)
    }
}

impl OpenAiBuilder {
    /// Sends `Authorization: Bearer <key>`.
    pub fn with_api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// Another base URL.
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
    pub fn connect(self) -> Result<OpenAi, LlmError> {
        let url = http::endpoint(&self.base_url, "chat/completions")?;
        let mut headers = HeaderMap::new();
        if let Some(key) = &self.api_key {
            let mut value = HeaderValue::from_str(&format!("Bearer {key}")).map_err(|_| {
                LlmError::InvalidApiKey {
                    variable: crate::config::ENV_OPENAI_KEY,
                }
            })?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        Ok(OpenAi {
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

impl Llm for OpenAi {
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
                if event.data.trim() == "[DONE]" {
                    state.done = true;
                    break;
                }
                for out in state.on_chunk(&http::json(&event)?)? {
                    yield out;
                }
            }
            yield StreamEvent::Done(state.finish()?);
        })
    }
}

/// The JSON body of a streaming Chat Completions request.
pub(crate) fn request_body(model: &str, request: &ChatRequest) -> Value {
    let mut messages = Vec::new();
    if let Some(system) = request.system_text() {
        messages.push(json!({"role": "system", "content": system}));
    }
    for m in request.messages.iter().filter(|m| m.role != Role::System) {
        encode_message(m, &mut messages);
    }
    let mut body = json!({
        "model": model,
        "messages": messages,
        "stream": true,
        "stream_options": {"include_usage": true},
    });
    if !request.tools.is_empty() {
        body["tools"] = request
            .tools
            .iter()
            .map(|t| {
                json!({"type": "function", "function": {
                    "name": t.name, "description": t.description, "parameters": t.parameters,
                }})
            })
            .collect();
    }
    if let Some(n) = request.max_tokens {
        body["max_tokens"] = n.into();
    }
    if let Some(t) = request.temperature {
        body["temperature"] = t.into();
    }
    body
}

fn data_url(media_type: &str, data: &[u8]) -> String {
    format!(
        "data:{media_type};base64,{}",
        base64::engine::general_purpose::STANDARD.encode(data)
    )
}

fn encode_message(m: &Message, out: &mut Vec<Value>) {
    match m.role {
        Role::System => out.push(json!({"role": "system", "content": m.text()})),
        Role::User => {
            let only_text = m
                .content
                .iter()
                .all(|p| matches!(p, ContentPart::Text { .. }));
            let content = if only_text {
                Value::String(m.text())
            } else {
                m.content
                    .iter()
                    .filter_map(|p| match p {
                        ContentPart::Text { text } => Some(json!({"type": "text", "text": text})),
                        ContentPart::Image { media_type, data } => Some(json!({
                            "type": "image_url", "image_url": {"url": data_url(media_type, data)},
                        })),
                        ContentPart::File {
                            filename,
                            media_type,
                            data,
                        } => Some(json!({"type": "file", "file": {
                            "filename": filename, "file_data": data_url(media_type, data),
                        }})),
                        _ => None,
                    })
                    .collect()
            };
            out.push(json!({"role": "user", "content": content}));
        }
        Role::Assistant => {
            let text = m.text();
            let mut msg = Map::new();
            msg.insert("role".into(), "assistant".into());
            msg.insert(
                "content".into(),
                if text.is_empty() {
                    Value::Null
                } else {
                    text.into()
                },
            );
            let calls: Vec<Value> = m
                .tool_calls()
                .map(|c| {
                    json!({"id": c.id, "type": "function", "function": {
                        "name": c.name, "arguments": c.arguments.to_string(),
                    }})
                })
                .collect();
            if !calls.is_empty() {
                msg.insert("tool_calls".into(), calls.into());
            }
            out.push(Value::Object(msg));
        }
        Role::Tool => {
            for r in m.tool_results_iter() {
                let content = if r.is_error {
                    format!("error: {}", r.content)
                } else {
                    r.content.clone()
                };
                out.push(json!({"role": "tool", "tool_call_id": r.call_id, "content": content}));
            }
        }
    }
}

/// What a stream has said so far.
struct StreamState {
    builder: CompletionBuilder,
    done: bool,
}

impl StreamState {
    fn new(model: &str) -> Self {
        StreamState {
            builder: CompletionBuilder::new(model),
            done: false,
        }
    }

    /// The deltas of one `chat.completion.chunk`.
    fn on_chunk(&mut self, chunk: &Value) -> Result<Vec<StreamEvent>, LlmError> {
        if let Some(error) = chunk.get("error") {
            return Err(LlmError::ProviderStreamError {
                kind: error
                    .get("type")
                    .or_else(|| error.get("code"))
                    .and_then(Value::as_str)
                    .unwrap_or("error")
                    .to_owned(),
                message: error
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
            });
        }
        if let Some(model) = chunk.get("model").and_then(Value::as_str) {
            model.clone_into(&mut self.builder.model);
        }
        if let Some(usage) = chunk.get("usage").filter(|u| !u.is_null()) {
            let n = |k: &str| usage.get(k).and_then(Value::as_u64).unwrap_or(0);
            self.builder.usage.input_tokens = n("prompt_tokens");
            self.builder.usage.output_tokens = n("completion_tokens");
        }
        let mut out = Vec::new();
        let choices = chunk.get("choices").and_then(Value::as_array);
        for choice in choices.into_iter().flatten() {
            if choice.get("index").and_then(Value::as_u64).unwrap_or(0) != 0 {
                continue;
            }
            let delta = choice.get("delta");
            if let Some(text) = delta.and_then(|d| d.get("content")).and_then(Value::as_str)
                && !text.is_empty()
            {
                out.push(StreamEvent::Text(text.to_owned()));
            }
            let calls = delta
                .and_then(|d| d.get("tool_calls"))
                .and_then(Value::as_array);
            for call in calls.into_iter().flatten() {
                let index = call.get("index").and_then(Value::as_u64).ok_or_else(|| {
                    LlmError::MalformedEvent {
                        reason: format!("a tool call delta has no index: {call}"),
                    }
                })?;
                let function = call.get("function");
                let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
                out.push(StreamEvent::ToolCall(ToolCallDelta {
                    index: index as usize,
                    id: text(call.get("id")),
                    name: text(function.and_then(|f| f.get("name"))),
                    arguments: text(function.and_then(|f| f.get("arguments"))).unwrap_or_default(),
                }));
            }
            if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
                self.builder.finish_reason = Some(match reason {
                    "stop" => FinishReason::Stop,
                    "length" => FinishReason::Length,
                    "tool_calls" | "function_call" => FinishReason::ToolCalls,
                    "content_filter" => FinishReason::ContentFilter,
                    other => FinishReason::Other(other.to_owned()),
                });
            }
        }
        for e in &out {
            self.builder.push(e);
        }
        Ok(out)
    }

    /// The completion, if the stream reached its end.
    fn finish(self) -> Result<crate::Completion, LlmError> {
        // Some compatible servers omit `[DONE]`; a finish reason is enough.
        if !self.done && self.builder.finish_reason.is_none() {
            return Err(LlmError::StreamInterrupted {
                reason: "the stream ended before `[DONE]` or a finish_reason".into(),
            });
        }
        self.builder.finish()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::tool::{ToolCall, ToolResult, ToolSpec};

    #[test]
    fn body_has_the_documented_shape() {
        let request = ChatRequest {
            messages: vec![
                Message::system("be brief"),
                Message::user("hi"),
                Message::assistant_with_tool_calls(
                    "",
                    vec![ToolCall {
                        id: "c1".into(),
                        name: "now".into(),
                        arguments: json!({}),
                    }],
                ),
                Message::tool_results(vec![ToolResult {
                    call_id: "c1".into(),
                    name: "now".into(),
                    content: "noon".into(),
                    is_error: false,
                }]),
            ],
            tools: vec![ToolSpec {
                name: "now".into(),
                description: "the time".into(),
                parameters: json!({"type": "object", "properties": {}}),
            }],
            max_tokens: Some(10),
            temperature: None,
        };
        let body = request_body("m", &request);
        assert_eq!(
            body,
            json!({
                "model": "m",
                "messages": [
                    {"role": "system", "content": "be brief"},
                    {"role": "user", "content": "hi"},
                    {"role": "assistant", "content": null, "tool_calls": [
                        {"id": "c1", "type": "function", "function": {"name": "now", "arguments": "{}"}}
                    ]},
                    {"role": "tool", "tool_call_id": "c1", "content": "noon"},
                ],
                "stream": true,
                "stream_options": {"include_usage": true},
                "tools": [{"type": "function", "function": {
                    "name": "now", "description": "the time",
                    "parameters": {"type": "object", "properties": {}},
                }}],
                "max_tokens": 10,
            })
        );
    }
}
