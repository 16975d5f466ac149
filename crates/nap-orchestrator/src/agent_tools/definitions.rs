//! The six tool definitions: names, descriptions (nap's own words, saying
//! what the contract's say) and JSON-Schema parameters, and the
//! blocking-only derivation offered when `wait_agent` is not.

use serde_json::{Value, json};

use super::ToolDefinition;

/// `discover_agents`: lists the agents that can be prompted.
pub const DISCOVER_AGENTS: &str = "discover_agents";
/// `prompt_agent`: prompts one agent.
pub const PROMPT_AGENT: &str = "prompt_agent";
/// `wait_agent`: waits for the first of some calls to be ready.
pub const WAIT_AGENT: &str = "wait_agent";
/// `answer_agent`: answers a call's open question.
pub const ANSWER_AGENT: &str = "answer_agent";
/// `cancel_agent`: stops calls.
pub const CANCEL_AGENT: &str = "cancel_agent";
/// `list_agent_calls`: lists the calls of the current scope.
pub const LIST_AGENT_CALLS: &str = "list_agent_calls";

/// The six tools, in the contract's order (its section 1).
pub const ALL_TOOLS: [&str; 6] = [
    DISCOVER_AGENTS,
    PROMPT_AGENT,
    WAIT_AGENT,
    ANSWER_AGENT,
    CANCEL_AGENT,
    LIST_AGENT_CALLS,
];

/// The blocking-only set (the contract's section 5): discover, prompt and
/// answer, with no `wait` parameter anywhere; every call blocks until it
/// settles or asks a question.
pub const BLOCKING_TOOLS: [&str; 3] = [DISCOVER_AGENTS, PROMPT_AGENT, ANSWER_AGENT];

fn string(description: &str) -> Value {
    json!({"type": "string", "minLength": 1, "description": description})
}

fn ids(description: &str) -> Value {
    json!({
        "type": "array",
        "items": {"type": "string", "minLength": 1},
        "minItems": 1,
        "description": description,
    })
}

fn definition(name: &str, description: &str, parameters: Value) -> ToolDefinition {
    ToolDefinition {
        name: name.to_owned(),
        description: description.to_owned(),
        parameters,
    }
}

/// The full definition of one of the six tools.
pub(super) fn full(name: &str) -> Option<ToolDefinition> {
    Some(match name {
        DISCOVER_AGENTS => definition(
            DISCOVER_AGENTS,
            "Lists the agents you may prompt, one entry per address. An entry has the address \
             prompt_agent takes, the agent's kind, owner and name, its own description, the \
             identity it registered and whether that identity was verified, whether it only takes \
             signed prompts, whether it takes attachments, and how many running instances share \
             the address. The optional filters match the tokens of the address \
             `agents.prompt.<agent>.<owner>.<name>` exactly and combine; to find an agent by what \
             it does, filter on `agent` (its kind or role) or list everything without filters. \
             Use this first when you have no address yet.",
            json!({
                "type": "object",
                "properties": {
                    "agent": string("Keep only agents whose first address token after `agents.prompt` is this: their kind or role exactly as registered, such as `researcher` or `claude-code`."),
                    "owner": string("Keep only agents whose second address token after `agents.prompt` is this: their owner exactly as registered."),
                    "name": string("Keep only agents whose last address token is this: their instance name, often `main`. It is not what the agent does or what a task calls it."),
                },
                "additionalProperties": false,
            }),
        ),
        PROMPT_AGENT => definition(
            PROMPT_AGENT,
            "Sends one agent a prompt and returns its reply. Take the address from \
             discover_agents. Make the prompt complete on its own: the other agent cannot see \
             your conversation. Never prompt the agent that prompted you; answer it instead. \
             Normally this waits for the whole reply. When the other agent asks a question while \
             working, you get that question and a call_id instead; reply to it with answer_agent. \
             With wait false it returns a call_id at once while the other agent works, and you \
             fetch the result later with wait_agent, which lets several agents work at the same \
             time. Calls started while you answer a prompt end when that prompt ends, so gather \
             their results before answering. The other agent is on another machine: never write a \
             local file path into the prompt, attach the file (small files, and only for an agent \
             that takes attachments). Files sent back are saved on this machine and the result \
             lists their paths.",
            json!({
                "type": "object",
                "properties": {
                    "address": string("The agent's address, exactly as discover_agents gave it."),
                    "prompt": string("The task for the other agent, complete on its own."),
                    "attachments": {
                        "type": "array",
                        "items": {"type": "string", "minLength": 1},
                        "description": "Optional local file paths to send along, only from the directories you are allowed to send from and only to an agent that takes attachments (see discover_agents). The files travel inside the message: keep them small.",
                    },
                    "label": string("Optional short name for the call, shown in its results; never sent to the other agent."),
                    "wait": {
                        "type": "boolean",
                        "description": "true (default): wait for the reply or a question. false: return a call_id at once and collect the result with wait_agent.",
                    },
                },
                "required": ["address", "prompt"],
                "additionalProperties": false,
            }),
        ),
        WAIT_AGENT => definition(
            WAIT_AGENT,
            "Waits for calls started with prompt_agent. Returns the first of the given calls that \
             finished or asked a question (the earliest when several did), with remaining: the \
             other given calls still open. A finished call's result can be fetched again, \
             unchanged, until list_agent_calls no longer shows it. When none is ready within \
             timeout_ms, returns state running with the call_ids still running. Reply to a \
             question with answer_agent.",
            json!({
                "type": "object",
                "properties": {
                    "call_ids": ids("The calls to wait for, by the call_id prompt_agent returned."),
                    "timeout_ms": {
                        "type": "integer",
                        "minimum": 0,
                        "description": "How long to wait in milliseconds; 0 only checks. Longer than the configured limit is cut to it; the limit is also the default.",
                    },
                },
                "required": ["call_ids"],
                "additionalProperties": false,
            }),
        ),
        ANSWER_AGENT => definition(
            ANSWER_AGENT,
            "Answers the question an agent asked while working on your call, by the call_id that \
             came with the question. Afterwards it continues the way the call was started unless \
             told otherwise: a call started with wait true waits for the reply or the next \
             question; a call started with wait false returns at once and you collect it with \
             wait_agent. A permission question asks you to allow or refuse something the other \
             agent wants to do: allow it only when your task needs it, and refuse when in doubt. \
             Answer quickly: the asking agent waits only for a while, and a question still open \
             when the prompt you are answering ends gets refused.",
            json!({
                "type": "object",
                "properties": {
                    "call_id": string("The call_id that came with the question."),
                    "answer": string("Your answer, in the form the question wants (`yes` or `no` for a permission question)."),
                    "wait": {
                        "type": "boolean",
                        "description": "true: wait for the reply or the next question. false: return at once. By default, as the call was started.",
                    },
                },
                "required": ["call_id", "answer"],
                "additionalProperties": false,
            }),
        ),
        CANCEL_AGENT => definition(
            CANCEL_AGENT,
            "Stops calls you started. Every open one becomes cancelled and its open question is \
             refused. The result gives each call's state and the reply text received until then. \
             The other agent is not told and may go on working; anything it still sends is \
             thrown away. A call that had already finished keeps its result.",
            json!({
                "type": "object",
                "properties": {
                    "call_ids": ids("The calls to stop, by the call_id prompt_agent returned."),
                },
                "required": ["call_ids"],
                "additionalProperties": false,
            }),
        ),
        LIST_AGENT_CALLS => definition(
            LIST_AGENT_CALLS,
            "Lists the calls you started that are still tracked, oldest first, each with its \
             call_id, label, address, state and times. Open calls are running, or input_required \
             when a question waits for answer_agent. Finished calls are completed, failed, \
             cancelled or expired; when the list is full, the one that finished longest ago is \
             dropped.",
            json!({"type": "object", "properties": {}, "additionalProperties": false}),
        ),
        _ => return None,
    })
}

/// The blocking-only description of a tool whose full description mentions
/// `wait_agent` (the contract's `blocking.json`).
fn blocking_description(name: &str) -> Option<&'static str> {
    match name {
        PROMPT_AGENT => Some(
            "Sends one agent a prompt and returns its reply. Take the address from \
             discover_agents. Make the prompt complete on its own: the other agent cannot see \
             your conversation. Never prompt the agent that prompted you; answer it instead. \
             This waits for the whole reply. When the other agent asks a question while working, \
             you get that question and a call_id instead; reply to it with answer_agent. Calls \
             started while you answer a prompt end when that prompt ends, so answer their \
             questions before answering. The other agent is on another machine: never write a \
             local file path into the prompt, attach the file (small files, and only for an agent \
             that takes attachments). Files sent back are saved on this machine and the result \
             lists their paths.",
        ),
        ANSWER_AGENT => Some(
            "Answers the question an agent asked while working on your call, by the call_id that \
             came with the question, then waits for the reply or the agent's next question. A \
             permission question asks you to allow or refuse something the other agent wants to \
             do: allow it only when your task needs it, and refuse when in doubt. Answer quickly: \
             the asking agent waits only for a while, and a question still open when the prompt \
             you are answering ends gets refused.",
        ),
        _ => None,
    }
}

/// The definition offered when `wait_agent` is not: no `wait` parameter,
/// and the blocking-only description where the full one mentions
/// `wait_agent` (the contract's section 5).
pub(super) fn blocking(name: &str) -> Option<ToolDefinition> {
    let mut def = full(name)?;
    if let Some(props) = def
        .parameters
        .get_mut("properties")
        .and_then(Value::as_object_mut)
    {
        props.remove("wait");
    }
    if let Some(text) = blocking_description(name) {
        def.description = text.to_owned();
    }
    Some(def)
}
