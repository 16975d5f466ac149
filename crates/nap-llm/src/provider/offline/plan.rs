//! How the offline model works through agents when it is offered the agent
//! tools of the synadia-agents agent-tools contract (`discover_agents`,
//! `prompt_agent`, and `wait_agent` / `answer_agent` when offered).
//!
//! The plan is read afresh from the conversation on every model call, so
//! the model keeps no state of its own and stays deterministic:
//!
//! 1. It discovers the agents.
//! 2. It picks the ones its instructions name (the system prompt and the
//!    user's message), in the order they are first named; when none is
//!    named, every agent found, by address.
//! 3. It prompts them one after the other: the first with the user's
//!    message, each next one with the previous one's reply, in full.
//!    With `wait_agent` offered a call is detached (`wait: false`) and then
//!    collected; without it, every call blocks.
//! 4. A question (§7) gets an answer that leaves the choice to the agent;
//!    a failure or a refusal ends the plan and is reported.
//! 5. It answers with the last agent's reply.

use serde_json::{Value, json};

use crate::llm::ChatRequest;
use crate::message::{Message, Role};

/// The contract's tool names the plan uses.
const DISCOVER_AGENTS: &str = "discover_agents";
const PROMPT_AGENT: &str = "prompt_agent";
const WAIT_AGENT: &str = "wait_agent";
const ANSWER_AGENT: &str = "answer_agent";

/// What the offline model does next with the agent tools.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Step {
    /// Call this tool with these arguments.
    Call {
        name: &'static str,
        arguments: Value,
    },
    /// Answer the user with this text.
    Answer(String),
}

/// One agent the plan may prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    address: String,
    /// The instance name, else the agent's harness name.
    name: String,
}

/// The next step, or `None` when the agent tools are not offered (the
/// model then behaves as without them).
pub(super) fn next(request: &ChatRequest, user_text: &str) -> Option<Step> {
    let offered = |tool: &str| request.tools.iter().any(|t| t.name == tool);
    if !offered(DISCOVER_AGENTS) || !offered(PROMPT_AGENT) {
        return None;
    }
    let detach = offered(WAIT_AGENT);
    // This turn's tool results, oldest first.
    let turn_start = request
        .messages
        .iter()
        .rposition(|m| m.role == Role::User)
        .map_or(0, |i| i + 1);
    let results: Vec<(String, Value)> = request.messages[turn_start..]
        .iter()
        .flat_map(Message::tool_results_iter)
        .map(|r| {
            let value = serde_json::from_str(&r.content)
                .unwrap_or_else(|_| json!({"error": r.content.clone()}));
            (r.name.clone(), value)
        })
        .collect();

    let Some((_, found)) = results.iter().find(|(name, _)| name == DISCOVER_AGENTS) else {
        return Some(Step::Call {
            name: DISCOVER_AGENTS,
            arguments: json!({}),
        });
    };
    if let Some(error) = found.get("error").and_then(Value::as_str) {
        return Some(answer(format!("I could not discover the agents: {error}.")));
    }
    let instructions = instructions(request, user_text);
    let plan = plan(found, &instructions);
    if plan.is_empty() {
        return Some(answer(format!(
            "I found no agent to work on \"{user_text}\"."
        )));
    }

    // Replies in the order they completed; the last result decides.
    let replies: Vec<(&str, &str)> = results
        .iter()
        .filter(|(_, v)| state(v) == Some("completed"))
        .map(|(_, v)| {
            (
                call_id(v),
                v.get("reply").and_then(Value::as_str).unwrap_or(""),
            )
        })
        .collect();
    let (last_tool, last) = results.last()?;
    if last_tool != DISCOVER_AGENTS {
        // A refusal is `{"error": …}` without a call state.
        if let (None, Some(error)) = (state(last), last.get("error").and_then(Value::as_str)) {
            return Some(answer(format!("{last_tool} was refused: {error}")));
        }
        match state(last) {
            Some("running") if detach => {
                return Some(Step::Call {
                    name: WAIT_AGENT,
                    arguments: json!({"call_ids": [call_id(last)]}),
                });
            }
            Some("input_required") => {
                return Some(Step::Call {
                    name: ANSWER_AGENT,
                    arguments: json!({
                        "call_id": call_id(last),
                        "answer": "Nobody here can tell you more: use your best judgement.",
                    }),
                });
            }
            Some(failed @ ("failed" | "expired" | "cancelled")) => {
                let done = replies.len();
                let who = plan.get(done).map_or("an agent", |t| t.name.as_str());
                let why = last.get("error").and_then(Value::as_str).unwrap_or(failed);
                return Some(answer(format!("{who} {failed}: {why}.")));
            }
            _ => {}
        }
    }
    match plan.get(replies.len()) {
        Some(target) => {
            let prompt = replies.last().map_or(user_text, |(_, reply)| reply);
            let mut arguments = json!({"address": target.address, "prompt": prompt});
            if detach {
                arguments["wait"] = Value::Bool(false);
            }
            Some(Step::Call {
                name: PROMPT_AGENT,
                arguments,
            })
        }
        None => {
            let names: Vec<&str> = plan.iter().map(|t| t.name.as_str()).collect();
            let last_name = names.last().copied().unwrap_or_default();
            let reply = replies.last().map_or("", |(_, reply)| reply);
            Some(answer(format!(
                "I called {}, each with the previous one's reply. {last_name} answered: {reply}",
                names.join(", then ")
            )))
        }
    }
}

fn answer(text: String) -> Step {
    Step::Answer(format!("[offline model] {text}"))
}

fn state(result: &Value) -> Option<&str> {
    result.get("state").and_then(Value::as_str)
}

fn call_id(result: &Value) -> &str {
    result.get("call_id").and_then(Value::as_str).unwrap_or("")
}

/// The text the plan reads agent names from: the system prompt, then the
/// user's message, lower-cased.
fn instructions(request: &ChatRequest, user_text: &str) -> String {
    let mut text: String = request
        .messages
        .iter()
        .filter(|m| m.role == Role::System)
        .map(Message::text)
        .collect::<Vec<_>>()
        .join("\n");
    text.push('\n');
    text.push_str(user_text);
    text.to_lowercase()
}

/// The agents to prompt, in order: those the instructions name, by where
/// they are first named; else all of them, by address.
fn plan(found: &Value, instructions: &str) -> Vec<Target> {
    let mut targets: Vec<Target> = found
        .get("agents")
        .and_then(Value::as_array)
        .map(|agents| {
            agents
                .iter()
                .filter_map(|a| {
                    let address = a.get("address")?.as_str()?.to_owned();
                    let name = a
                        .get("name")
                        .and_then(Value::as_str)
                        .or_else(|| a.get("agent").and_then(Value::as_str))?
                        .to_owned();
                    Some(Target { address, name })
                })
                .collect()
        })
        .unwrap_or_default();
    targets.sort_by(|a, b| a.address.cmp(&b.address));
    let mut named: Vec<(usize, Target)> = targets
        .iter()
        .filter_map(|t| {
            first_mention(instructions, &t.name.to_lowercase()).map(|at| (at, t.clone()))
        })
        .collect();
    if named.is_empty() {
        return targets;
    }
    named.sort_by_key(|(at, _)| *at);
    named.into_iter().map(|(_, t)| t).collect()
}

/// Where `word` first stands as a whole word in `text`.
fn first_mention(text: &str, word: &str) -> Option<usize> {
    if word.is_empty() {
        return None;
    }
    let is_word = |c: char| c.is_alphanumeric() || c == '_' || c == '-';
    text.match_indices(word).map(|(at, _)| at).find(|&at| {
        let before = text[..at].chars().next_back();
        let after = text[at + word.len()..].chars().next();
        !before.is_some_and(is_word) && !after.is_some_and(is_word)
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::tool::{ToolCall, ToolResult, ToolSpec};

    fn tools(names: &[&str]) -> Vec<ToolSpec> {
        names
            .iter()
            .map(|n| ToolSpec {
                name: (*n).to_owned(),
                description: String::new(),
                parameters: json!({"type": "object"}),
            })
            .collect()
    }

    fn result(name: &str, content: Value) -> Vec<Message> {
        let call = ToolCall {
            id: format!("c-{name}"),
            name: name.to_owned(),
            arguments: json!({}),
        };
        vec![
            Message::assistant_with_tool_calls("", vec![call.clone()]),
            Message::tool_results(vec![ToolResult {
                call_id: call.id,
                name: name.to_owned(),
                content: content.to_string(),
                is_error: false,
            }]),
        ]
    }

    const FOUND: &str = r#"{"agents": [
        {"address": "agents.prompt.w.o.editor", "agent": "w", "name": "editor"},
        {"address": "agents.prompt.w.o.researcher", "agent": "w", "name": "researcher"},
        {"address": "agents.prompt.w.o.writer", "agent": "w", "name": "writer"}
    ]}"#;

    fn request(system: &str, after: Vec<Vec<Message>>, offered: &[&str]) -> ChatRequest {
        let mut messages = vec![Message::system(system), Message::user("a topic")];
        messages.extend(after.into_iter().flatten());
        ChatRequest {
            messages,
            tools: tools(offered),
            max_tokens: None,
            temperature: None,
        }
    }

    const ALL: [&str; 4] = [DISCOVER_AGENTS, PROMPT_AGENT, WAIT_AGENT, ANSWER_AGENT];

    fn call(step: Option<Step>) -> (&'static str, Value) {
        match step {
            Some(Step::Call { name, arguments }) => (name, arguments),
            other => panic!("not a call: {other:?}"),
        }
    }

    #[test]
    fn discovers_first_then_follows_the_order_the_instructions_name() {
        let system = "First the researcher, then the writer, last the editor.";
        let r = request(system, vec![], &ALL);
        assert_eq!(call(next(&r, "a topic")).0, DISCOVER_AGENTS);

        let found: Value = serde_json::from_str(FOUND).unwrap();
        let r = request(system, vec![result(DISCOVER_AGENTS, found.clone())], &ALL);
        let (name, args) = call(next(&r, "a topic"));
        assert_eq!(name, PROMPT_AGENT);
        assert_eq!(
            args,
            json!({"address": "agents.prompt.w.o.researcher", "prompt": "a topic", "wait": false})
        );

        let r = request(
            system,
            vec![
                result(DISCOVER_AGENTS, found.clone()),
                result(PROMPT_AGENT, json!({"call_id": "1", "state": "running"})),
            ],
            &ALL,
        );
        assert_eq!(
            call(next(&r, "a topic")),
            (WAIT_AGENT, json!({"call_ids": ["1"]}))
        );

        let r = request(
            system,
            vec![
                result(DISCOVER_AGENTS, found.clone()),
                result(PROMPT_AGENT, json!({"call_id": "1", "state": "running"})),
                result(
                    WAIT_AGENT,
                    json!({"call_id": "1", "state": "completed", "reply": "notes"}),
                ),
            ],
            &ALL,
        );
        let (name, args) = call(next(&r, "a topic"));
        assert_eq!(name, PROMPT_AGENT);
        assert_eq!(args["address"], "agents.prompt.w.o.writer");
        assert_eq!(args["prompt"], "notes");

        let r = request(
            system,
            vec![
                result(DISCOVER_AGENTS, found),
                result(
                    WAIT_AGENT,
                    json!({"call_id": "1", "state": "completed", "reply": "notes"}),
                ),
                result(
                    WAIT_AGENT,
                    json!({"call_id": "2", "state": "completed", "reply": "draft"}),
                ),
                result(
                    WAIT_AGENT,
                    json!({"call_id": "3", "state": "completed", "reply": "final"}),
                ),
            ],
            &ALL,
        );
        match next(&r, "a topic") {
            Some(Step::Answer(text)) => {
                assert!(
                    text.contains("researcher, then writer, then editor"),
                    "{text}"
                );
                assert!(text.ends_with("editor answered: final"), "{text}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn without_names_every_agent_by_address_and_blocking_without_wait_agent() {
        let found: Value = serde_json::from_str(FOUND).unwrap();
        let r = request(
            "Be helpful.",
            vec![result(DISCOVER_AGENTS, found)],
            &[DISCOVER_AGENTS, PROMPT_AGENT, ANSWER_AGENT],
        );
        let (_, args) = call(next(&r, "a topic"));
        assert_eq!(
            args,
            json!({"address": "agents.prompt.w.o.editor", "prompt": "a topic"})
        );
    }

    #[test]
    fn questions_are_answered_and_failures_end_the_plan() {
        let found: Value = serde_json::from_str(FOUND).unwrap();
        let r = request(
            "researcher",
            vec![
                result(DISCOVER_AGENTS, found.clone()),
                result(
                    PROMPT_AGENT,
                    json!({"call_id": "1", "state": "input_required", "question": "?"}),
                ),
            ],
            &ALL,
        );
        let (name, args) = call(next(&r, "a topic"));
        assert_eq!(name, ANSWER_AGENT);
        assert_eq!(args["call_id"], "1");

        let r = request(
            "researcher",
            vec![
                result(DISCOVER_AGENTS, found),
                result(
                    WAIT_AGENT,
                    json!({"call_id": "1", "state": "failed", "error": "boom"}),
                ),
            ],
            &ALL,
        );
        assert_eq!(
            next(&r, "a topic"),
            Some(Step::Answer(
                "[offline model] researcher failed: boom.".into()
            ))
        );
    }

    #[test]
    fn not_offered_means_no_plan_and_names_are_whole_words() {
        let r = request("x", vec![], &["calculator"]);
        assert_eq!(next(&r, "a topic"), None);
        assert_eq!(first_mention("the rewriter", "writer"), None);
        assert_eq!(first_mention("a writer.", "writer"), Some(2));
    }
}
