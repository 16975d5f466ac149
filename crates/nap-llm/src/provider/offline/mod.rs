//! `offline`: a deterministic local model for demos and tests, without
//! network or keys. It streams its answer in several deltas. Offered the
//! agent tools, it works through agents one after the other ([`plan`]);
//! offered other tools, it first calls every one of them (up to four, in
//! parallel) with arguments that fit their schemas, built from the user's
//! message, and then answers with their results. Its answers say plainly
//! that it is the offline model.

mod plan;

use std::time::Duration;

use serde_json::{Map, Value};

use crate::llm::{
    ChatRequest, ChatStream, CompletionBuilder, FinishReason, Llm, StreamEvent, ToolCallDelta,
    Usage,
};
use crate::message::{ContentPart, Message, Role};

/// The most tools the offline model calls in one round.
const MAX_OFFLINE_CALLS: usize = 4;

/// The offline model: deterministic, local, without network or keys, for
/// demos and tests.
///
/// It streams its answer in several deltas (one per word).
///
/// Offered the agent tools of the agent-tools contract (`discover_agents`
/// and `prompt_agent`, with `wait_agent` and `answer_agent` when offered),
/// it plans from them: it discovers the agents, picks those its system
/// prompt and the user's message name, in the order they are named (all of
/// them when none is), and prompts them one after the other, the first with
/// the user's message and each next one with the previous one's reply,
/// detached and collected with `wait_agent` when it can. It answers their
/// questions by leaving the choice to them, stops at the first failure,
/// and ends with the last agent's reply.
///
/// Offered other tools, when the last message is the user's, it first calls every tool
/// (up to four, in one round) with arguments that fit their schemas, built
/// from the user's message: strings get the message (or the arithmetic in
/// it, for expression-like names), numbers the first number in it. Then it
/// answers with the tools' results. Its answers start with
/// `[offline model]` and say how to configure a real one.
#[derive(Debug, Clone, Default)]
pub struct Offline {
    delay: Duration,
}

impl Offline {
    /// The model's name.
    pub const MODEL: &'static str = "offline";

    /// An offline model that streams as fast as it is read.
    pub fn new() -> Self {
        Self::default()
    }

    /// Waits `delay` before each delta, to look like a real model in demos.
    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

impl Llm for Offline {
    fn model(&self) -> &str {
        Self::MODEL
    }

    fn chat(&self, request: ChatRequest) -> ChatStream {
        let events = script(&request);
        let delay = self.delay;
        Box::pin(async_stream::stream! {
            for event in events {
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                } else {
                    tokio::task::yield_now().await;
                }
                yield Ok(event);
            }
        })
    }
}

/// The whole answer to `request`, as stream events.
fn script(request: &ChatRequest) -> Vec<StreamEvent> {
    let user_text = request
        .messages
        .iter()
        .rev()
        .find(|m| m.role == Role::User)
        .map(Message::text)
        .unwrap_or_default();
    let last_role = request.messages.last().map(|m| m.role);
    let mut events = Vec::new();
    let mut finish = FinishReason::Stop;

    if let Some(step) = plan::next(request, &user_text) {
        match step {
            plan::Step::Call { name, arguments } => {
                finish = FinishReason::ToolCalls;
                push_call(&mut events, 0, name, &arguments.to_string());
            }
            plan::Step::Answer(text) => push_words(&mut events, &text),
        }
    } else if last_role == Some(Role::User) && !request.tools.is_empty() {
        finish = FinishReason::ToolCalls;
        for (index, spec) in request.tools.iter().take(MAX_OFFLINE_CALLS).enumerate() {
            let arguments = value_for(&spec.parameters, "", &user_text).to_string();
            push_call(&mut events, index, &spec.name, &arguments);
        }
    } else {
        push_words(&mut events, &answer(request, &user_text));
    }

    let mut builder = CompletionBuilder::new(Offline::MODEL);
    for e in &events {
        builder.push(e);
    }
    builder.usage = Usage {
        input_tokens: request.messages.iter().map(|m| words(&m.text())).sum(),
        output_tokens: events.len() as u64,
    };
    builder.finish_reason = Some(finish);
    // The arguments were written by `serde_json` above, so they always parse.
    if let Ok(completion) = builder.finish() {
        events.push(StreamEvent::Done(completion));
    }
    events
}

/// A tool call as two deltas of its arguments, as real providers stream them.
fn push_call(events: &mut Vec<StreamEvent>, index: usize, name: &str, arguments: &str) {
    let cut = arguments
        .char_indices()
        .map(|(i, _)| i)
        .nth(arguments.chars().count() / 2)
        .unwrap_or(0);
    let (head, tail) = arguments.split_at(cut);
    events.push(StreamEvent::ToolCall(ToolCallDelta {
        index,
        id: Some(format!("offline_call_{index}")),
        name: Some(name.to_owned()),
        arguments: head.to_owned(),
    }));
    events.push(StreamEvent::ToolCall(ToolCallDelta {
        index,
        id: None,
        name: None,
        arguments: tail.to_owned(),
    }));
}

/// Text as one word and the space after it per delta.
fn push_words(events: &mut Vec<StreamEvent>, text: &str) {
    events.extend(
        text.split_inclusive(' ')
            .map(|w| StreamEvent::Text(w.to_owned())),
    );
}

fn words(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

/// The text answer: tool results if the last message carries them, an echo otherwise.
fn answer(request: &ChatRequest, user_text: &str) -> String {
    let mut out = String::from("[offline model] ");
    // Who the system prompt says it is, so that the answers of differently
    // instructed agents differ.
    if let Some(role) = request
        .messages
        .iter()
        .find(|m| m.role == Role::System)
        .map(|m| first_sentence(&m.text()))
        .filter(|s| !s.is_empty())
    {
        out.push_str(&format!("({role}) "));
    }
    let results: Vec<_> = match request.messages.last() {
        Some(m) if m.role == Role::Tool => m.tool_results_iter().collect(),
        _ => Vec::new(),
    };
    if results.is_empty() {
        out.push_str(&format!("You said: \"{user_text}\"."));
    } else {
        out.push_str(&format!(
            "To answer \"{user_text}\" I called {} tool(s).",
            results.len()
        ));
        for r in results {
            if r.is_error {
                out.push_str(&format!(" {} failed: {}.", r.name, r.content));
            } else {
                out.push_str(&format!(" {} returned: {}.", r.name, r.content));
            }
        }
    }
    let attachments: Vec<String> = request
        .messages
        .last()
        .filter(|m| m.role == Role::User)
        .map(|m| {
            m.content
                .iter()
                .skip(1)
                .map(|p| match p {
                    ContentPart::Image { media_type, data } => {
                        format!("an image ({media_type}, {} bytes)", data.len())
                    }
                    ContentPart::File { filename, data, .. } => {
                        format!("{filename} ({} bytes)", data.len())
                    }
                    _ => "a text file".to_owned(),
                })
                .collect()
        })
        .unwrap_or_default();
    if !attachments.is_empty() {
        out.push_str(&format!(" You attached {}.", attachments.join(", ")));
    }
    let earlier: Vec<String> = request
        .messages
        .iter()
        .filter(|m| m.role == Role::User)
        .map(Message::text)
        .collect();
    if earlier.len() > 1 {
        out.push_str(&format!(
            " Earlier in this conversation you said: \"{}\".",
            earlier[..earlier.len() - 1].join("\", \"")
        ));
    }
    // Said once: not again when the input is itself an offline answer.
    if !user_text.contains(HINT) {
        out.push(' ');
        out.push_str(HINT);
    }
    out
}

/// What the offline model says about itself, once per answer chain.
const HINT: &str = "This is nap's deterministic offline model; set NAP_LLM to openai, anthropic or ollama for a real one.";

/// The first sentence of `text`, at most 80 characters.
fn first_sentence(text: &str) -> String {
    let text = text.trim();
    let end = text
        .char_indices()
        .find(|&(i, c)| {
            matches!(c, '.' | '!' | '?')
                && text[i + c.len_utf8()..]
                    .chars()
                    .next()
                    .is_none_or(char::is_whitespace)
        })
        .map_or(text.len(), |(i, c)| i + c.len_utf8());
    let sentence = &text[..end];
    if sentence.chars().count() <= 80 {
        sentence.to_owned()
    } else {
        let cut: String = sentence.chars().take(79).collect();
        format!("{cut}…")
    }
}

/// A value that fits `schema`, built from the user's message: strings get
/// the message (or the arithmetic in it, for expression-like names),
/// numbers the first number in it, objects their required properties.
pub(crate) fn value_for(schema: &Value, name: &str, text: &str) -> Value {
    for key in ["const", "default"] {
        if let Some(v) = schema.get(key) {
            return v.clone();
        }
    }
    if let Some(first) = schema
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
    {
        return first.clone();
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(variants) = schema.get(key).and_then(Value::as_array) {
            let pick = variants
                .iter()
                .find(|v| v.get("type") != Some(&Value::from("null")))
                .or(variants.first());
            if let Some(v) = pick {
                return value_for(v, name, text);
            }
        }
    }
    let ty = match schema.get("type") {
        Some(Value::String(t)) => t.as_str(),
        Some(Value::Array(types)) => types
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("null"),
        _ if schema.get("properties").is_some() => "object",
        _ => "string",
    };
    match ty {
        "object" => {
            let mut out = Map::new();
            let properties = schema.get("properties").and_then(Value::as_object);
            let required = schema.get("required").and_then(Value::as_array);
            if let (Some(properties), Some(required)) = (properties, required) {
                for key in required.iter().filter_map(Value::as_str) {
                    if let Some(sub) = properties.get(key) {
                        out.insert(key.to_owned(), value_for(sub, key, text));
                    }
                }
            }
            Value::Object(out)
        }
        "array" => {
            let min = schema.get("minItems").and_then(Value::as_u64).unwrap_or(0);
            let item = schema.get("items").cloned().unwrap_or(Value::Null);
            Value::Array((0..min).map(|_| value_for(&item, name, text)).collect())
        }
        "integer" => first_number(text)
            .map(|n| Value::from(n.trunc() as i64))
            .unwrap_or_else(|| Value::from(0)),
        "number" => first_number(text)
            .and_then(|n| serde_json::Number::from_f64(n).map(Value::Number))
            .unwrap_or_else(|| Value::from(0)),
        "boolean" => Value::Bool(true),
        "null" => Value::Null,
        _ => {
            let lower = name.to_ascii_lowercase();
            let wants_math = ["expr", "formula", "math", "calc"]
                .iter()
                .any(|k| lower.contains(k));
            match wants_math.then(|| arithmetic_in(text)).flatten() {
                Some(expr) => Value::String(expr),
                None => Value::String(text.to_owned()),
            }
        }
    }
}

/// The first number written in `text`.
fn first_number(text: &str) -> Option<f64> {
    text.split(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-'))
        .filter_map(|w| w.trim_matches('.').parse::<f64>().ok())
        .next()
}

/// The longest run of arithmetic in `text` that has a digit and an operator.
fn arithmetic_in(text: &str) -> Option<String> {
    let is_math = |c: char| c.is_ascii_digit() || " .+-*/^%()".contains(c);
    let mut best: Option<&str> = None;
    let mut start = None;
    for (i, c) in text
        .char_indices()
        .chain(std::iter::once((text.len(), '\0')))
    {
        match (is_math(c) && c != '\0', start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                let run = text[s..i].trim();
                let has_digit = run.chars().any(|c| c.is_ascii_digit());
                let has_op = run.chars().any(|c| "+-*/^%".contains(c));
                if has_digit && has_op && best.is_none_or(|b| run.len() > b.len()) {
                    best = Some(run);
                }
                start = None;
            }
            _ => {}
        }
    }
    best.map(|b| {
        b.trim_end_matches(['+', '-', '*', '/', '^', '%', ' '])
            .to_owned()
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_fit_schemas() {
        let schema = json!({
            "type": "object",
            "properties": {
                "expression": {"type": "string"},
                "count": {"type": "integer"},
                "unit": {"enum": ["c", "f"]},
                "note": {"type": ["string", "null"]},
            },
            "required": ["expression", "count", "unit"]
        });
        let v = value_for(&schema, "", "what is 2 + 3 * 4?");
        assert_eq!(
            v,
            json!({"expression": "2 + 3 * 4", "count": 2, "unit": "c"})
        );
    }

    #[test]
    fn arithmetic_is_found() {
        assert_eq!(
            arithmetic_in("compute (1+2)*3 please").as_deref(),
            Some("(1+2)*3")
        );
        assert_eq!(arithmetic_in("no math here"), None);
        assert_eq!(arithmetic_in("in 2024 we"), None);
    }
}
