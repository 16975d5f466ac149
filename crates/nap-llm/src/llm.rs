//! The `Llm` trait: a streaming chat completion.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::StreamExt;
use futures::stream::BoxStream;
use serde_json::Value;

use crate::LlmError;
use crate::message::{ContentPart, Message, Role};
use crate::tool::{ToolCall, ToolSpec};

/// One chat completion request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChatRequest {
    /// The conversation, oldest first; system messages may appear anywhere
    /// but providers send them as one leading instruction.
    pub messages: Vec<Message>,
    /// The tools the model may call.
    pub tools: Vec<ToolSpec>,
    /// The most tokens to generate; the provider's default when `None`.
    pub max_tokens: Option<u32>,
    /// Sampling temperature; the provider's default when `None`.
    pub temperature: Option<f32>,
}

impl ChatRequest {
    /// A request for a conversation, without tools.
    pub fn new(messages: Vec<Message>) -> Self {
        ChatRequest {
            messages,
            ..Default::default()
        }
    }

    /// Offers tools to the model.
    pub fn with_tools(mut self, tools: Vec<ToolSpec>) -> Self {
        self.tools = tools;
        self
    }

    /// The system messages' text, joined by blank lines.
    pub fn system_text(&self) -> Option<String> {
        let parts: Vec<String> = self
            .messages
            .iter()
            .filter(|m| m.role == Role::System)
            .map(Message::text)
            .collect();
        (!parts.is_empty()).then(|| parts.join("\n\n"))
    }
}

/// A piece of a tool call, as it streams.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolCallDelta {
    /// Which call of this answer the piece belongs to (0, 1, …).
    pub index: usize,
    /// The call's id, in the first piece.
    pub id: Option<String>,
    /// The tool's name, in the first piece.
    pub name: Option<String>,
    /// A fragment of the JSON arguments.
    pub arguments: String,
}

/// Token counts of one model call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Tokens read (the prompt).
    pub input_tokens: u64,
    /// Tokens written (the answer).
    pub output_tokens: u64,
}

/// Why the model stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FinishReason {
    /// It finished its answer.
    Stop,
    /// It hit the token limit.
    Length,
    /// It asked for tools.
    ToolCalls,
    /// The provider filtered the content.
    ContentFilter,
    /// Something else, as the provider named it.
    Other(String),
}

impl FinishReason {
    /// The reason's name, for logs.
    pub fn as_str(&self) -> &str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
            FinishReason::ToolCalls => "tool_calls",
            FinishReason::ContentFilter => "content_filter",
            FinishReason::Other(s) => s,
        }
    }
}

/// The end of a model call: the whole message and its accounting.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    /// The assistant message: its text and tool calls.
    pub message: Message,
    /// Token counts.
    pub usage: Usage,
    /// The model that answered, as the provider named it.
    pub model: String,
    /// Why it stopped.
    pub finish_reason: FinishReason,
}

/// One event of a streaming completion: deltas, then exactly one `Done`.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// A piece of the answer's text.
    Text(String),
    /// A piece of a tool call.
    ToolCall(ToolCallDelta),
    /// The final message with usage; the last event.
    Done(Completion),
}

/// A streaming completion. Dropping it cancels the model call.
pub type ChatStream = BoxStream<'static, Result<StreamEvent, LlmError>>;

/// A chat model that streams.
pub trait Llm: Send + Sync + 'static {
    /// The model's name, for logs and spans.
    fn model(&self) -> &str;

    /// Starts a completion. The stream yields text and tool-call deltas and
    /// ends with [`StreamEvent::Done`]; an `Err` item ends it early.
    /// Dropping the stream cancels the call.
    fn chat(&self, request: ChatRequest) -> ChatStream;
}

impl<L: Llm + ?Sized> Llm for Arc<L> {
    fn model(&self) -> &str {
        (**self).model()
    }

    fn chat(&self, request: ChatRequest) -> ChatStream {
        (**self).chat(request)
    }
}

impl<L: Llm + ?Sized> Llm for Box<L> {
    fn model(&self) -> &str {
        (**self).model()
    }

    fn chat(&self, request: ChatRequest) -> ChatStream {
        (**self).chat(request)
    }
}

/// Runs a completion to its end and returns the final message.
pub async fn complete(llm: &dyn Llm, request: ChatRequest) -> Result<Completion, LlmError> {
    let mut stream = llm.chat(request);
    while let Some(event) = stream.next().await {
        if let StreamEvent::Done(completion) = event? {
            return Ok(completion);
        }
    }
    Err(LlmError::StreamInterrupted {
        reason: "the stream ended without a final message".into(),
    })
}

/// Builds the final [`Completion`] from the deltas of a stream. Providers
/// feed it every delta they emit; custom [`Llm`]s can use it too.
#[derive(Debug, Default)]
pub struct CompletionBuilder {
    text: String,
    calls: BTreeMap<usize, (String, String, String)>,
    /// Token counts so far.
    pub usage: Usage,
    /// The model, once known.
    pub model: String,
    /// The finish reason, once known.
    pub finish_reason: Option<FinishReason>,
}

impl CompletionBuilder {
    /// A builder for a model.
    pub fn new(model: impl Into<String>) -> Self {
        CompletionBuilder {
            model: model.into(),
            ..Default::default()
        }
    }

    /// Records a delta.
    pub fn push(&mut self, event: &StreamEvent) {
        match event {
            StreamEvent::Text(t) => self.text.push_str(t),
            StreamEvent::ToolCall(d) => {
                let entry = self.calls.entry(d.index).or_default();
                if let Some(id) = &d.id {
                    entry.0.push_str(id);
                }
                if let Some(name) = &d.name {
                    entry.1.push_str(name);
                }
                entry.2.push_str(&d.arguments);
            }
            StreamEvent::Done(_) => {}
        }
    }

    /// Whether any tool call was seen.
    pub fn has_tool_calls(&self) -> bool {
        !self.calls.is_empty()
    }

    /// The final completion. Tool-call arguments that are not valid JSON
    /// are an error.
    pub fn finish(self) -> Result<Completion, LlmError> {
        let mut calls = Vec::with_capacity(self.calls.len());
        for (index, (id, name, args)) in self.calls {
            let arguments = if args.trim().is_empty() {
                Value::Object(Default::default())
            } else {
                serde_json::from_str(&args).map_err(|e| LlmError::MalformedEvent {
                    reason: format!(
                        "tool call {index} ({name}) has arguments that are not JSON: {e}"
                    ),
                })?
            };
            let id = if id.is_empty() {
                format!("call_{index}")
            } else {
                id
            };
            calls.push(ToolCall {
                id,
                name,
                arguments,
            });
        }
        let finish_reason = self.finish_reason.unwrap_or(if calls.is_empty() {
            FinishReason::Stop
        } else {
            FinishReason::ToolCalls
        });
        let message = if calls.is_empty() {
            Message {
                role: Role::Assistant,
                content: vec![ContentPart::Text { text: self.text }],
            }
        } else {
            Message::assistant_with_tool_calls(self.text, calls)
        };
        Ok(Completion {
            message,
            usage: self.usage,
            model: self.model,
            finish_reason,
        })
    }
}
