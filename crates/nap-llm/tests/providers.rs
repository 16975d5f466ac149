//! The network providers against a local server replaying documented
//! stream shapes: real HTTP, real SSE framing, no network.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use futures::StreamExt;
use nap_agent::{Agent, Request, Responder};
use nap_llm::{
    Anthropic, ChatRequest, FinishReason, HttpOptions, Llm, LlmAgent, LlmError, Message, OpenAi,
    RetryPolicy, StreamEvent, ToolSpec, Usage, complete, tools,
};
use nap_proto::StatusCode;
use serde_json::{Value, json};
use support::{Part, Reply, Server, sse};

fn fast_http() -> HttpOptions {
    HttpOptions {
        connect_timeout: Duration::from_secs(5),
        read_timeout: Duration::from_secs(5),
        retry: RetryPolicy {
            max_retries: 2,
            min_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(50),
            max_retry_after: Duration::from_secs(5),
            jitter: false,
        },
    }
}

fn openai(server: &Server) -> OpenAi {
    OpenAi::compatible(format!("{}/v1", server.base), "gpt-test")
        .with_api_key("sk-test")
        .with_http(fast_http())
        .connect()
        .unwrap()
}

fn anthropic(server: &Server) -> Anthropic {
    Anthropic::new("ant-test", "claude-test")
        .with_base_url(&server.base)
        .with_http(fast_http())
        .connect()
        .unwrap()
}

fn ask(text: &str) -> ChatRequest {
    ChatRequest::new(vec![Message::system("be brief"), Message::user(text)])
}

fn weather_tool() -> ToolSpec {
    ToolSpec {
        name: "get_weather".into(),
        description: "The weather in a city".into(),
        parameters: json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
    }
}

/// Collects a stream: the text deltas, the tool-call deltas, and the end.
async fn drain(
    llm: &dyn Llm,
    request: ChatRequest,
) -> (Vec<String>, usize, Result<nap_llm::Completion, LlmError>) {
    let mut stream = llm.chat(request);
    let mut texts = Vec::new();
    let mut tool_deltas = 0;
    while let Some(event) = stream.next().await {
        match event {
            Ok(StreamEvent::Text(t)) => texts.push(t),
            Ok(StreamEvent::ToolCall(_)) => tool_deltas += 1,
            Ok(StreamEvent::Done(c)) => return (texts, tool_deltas, Ok(c)),
            Err(e) => return (texts, tool_deltas, Err(e)),
        }
    }
    (
        texts,
        tool_deltas,
        Err(LlmError::StreamInterrupted {
            reason: "no Done".into(),
        }),
    )
}

// ---- OpenAI Chat Completions -------------------------------------------------

fn oa_chunk(delta: Value, finish: Option<&str>) -> String {
    sse(
        None,
        &json!({
            "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-test-2024",
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
            "usage": null,
        }),
    )
}

fn oa_usage(input: u64, output: u64) -> String {
    sse(
        None,
        &json!({
            "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-test-2024",
            "choices": [],
            "usage": {"prompt_tokens": input, "completion_tokens": output, "total_tokens": input + output},
        }),
    )
}

const DONE: &str = "data: [DONE]\n\n";

fn oa_text(pieces: &[&str]) -> Vec<String> {
    let mut blocks = vec![oa_chunk(json!({"role": "assistant", "content": ""}), None)];
    blocks.extend(pieces.iter().map(|p| oa_chunk(json!({"content": p}), None)));
    blocks.push(oa_chunk(json!({}), Some("stop")));
    blocks.push(oa_usage(12, pieces.len() as u64));
    blocks.push(DONE.into());
    blocks
}

#[tokio::test]
async fn openai_streams_text_deltas_and_usage() {
    let server = Server::start(vec![Reply::sse(oa_text(&["Hel", "lo", " there"]))]).await;
    let llm = openai(&server);
    let (texts, _, done) = drain(&llm, ask("hi")).await;
    assert_eq!(texts, ["Hel", "lo", " there"]);
    let c = done.unwrap();
    assert_eq!(c.message.text(), "Hello there");
    assert_eq!(
        c.usage,
        Usage {
            input_tokens: 12,
            output_tokens: 3
        }
    );
    assert_eq!(c.model, "gpt-test-2024");
    assert_eq!(c.finish_reason, FinishReason::Stop);

    let req = &server.requests()[0];
    assert_eq!(req.path, "/v1/chat/completions");
    assert_eq!(req.headers["authorization"], "Bearer sk-test");
    assert_eq!(req.body["model"], "gpt-test");
    assert_eq!(req.body["stream"], true);
    assert_eq!(req.body["stream_options"]["include_usage"], true);
    assert_eq!(
        req.body["messages"][0],
        json!({"role": "system", "content": "be brief"})
    );
    assert_eq!(
        req.body["messages"][1],
        json!({"role": "user", "content": "hi"})
    );
    assert_eq!(server.cancelled(), 0);
}

#[tokio::test]
async fn openai_assembles_tool_calls_split_across_events() {
    let blocks = vec![
        oa_chunk(
            json!({"role": "assistant", "content": null, "tool_calls": [
                {"index": 0, "id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": ""}}
            ]}),
            None,
        ),
        oa_chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"ci"}}]}),
            None,
        ),
        oa_chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "ty\": \"Paris\"}"}}]}),
            None,
        ),
        oa_chunk(
            json!({"tool_calls": [
                {"index": 1, "id": "call_b", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":"}}
            ]}),
            None,
        ),
        oa_chunk(
            json!({"tool_calls": [{"index": 1, "function": {"arguments": " \"Oslo\"}"}}]}),
            None,
        ),
        oa_chunk(json!({}), Some("tool_calls")),
        oa_usage(40, 30),
        DONE.into(),
    ];
    let server = Server::start(vec![Reply::sse(blocks)]).await;
    let llm = openai(&server);
    let (texts, deltas, done) = drain(&llm, ask("weather?").with_tools(vec![weather_tool()])).await;
    assert!(texts.is_empty());
    assert_eq!(deltas, 5);
    let c = done.unwrap();
    assert_eq!(c.finish_reason, FinishReason::ToolCalls);
    let calls: Vec<_> = c.message.tool_calls().cloned().collect();
    assert_eq!(calls.len(), 2);
    assert_eq!(
        (calls[0].id.as_str(), calls[0].name.as_str()),
        ("call_a", "get_weather")
    );
    assert_eq!(calls[0].arguments, json!({"city": "Paris"}));
    assert_eq!(calls[1].arguments, json!({"city": "Oslo"}));
    let body = &server.requests()[0].body;
    assert_eq!(body["tools"][0]["type"], "function");
    assert_eq!(body["tools"][0]["function"]["name"], "get_weather");
    assert_eq!(
        body["tools"][0]["function"]["parameters"]["required"],
        json!(["city"])
    );
}

#[tokio::test]
async fn openai_error_body_is_reported_and_not_retried() {
    let server = Server::start(vec![Reply::error(
        400,
        json!({"error": {"message": "Invalid 'messages[1].content'", "type": "invalid_request_error", "param": null, "code": null}}),
    )])
    .await;
    let err = complete(&openai(&server), ask("hi")).await.unwrap_err();
    match &err {
        LlmError::Http { status: 400, body } => {
            assert!(body.contains("Invalid 'messages[1].content'"), "{body}")
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(err.status_code(), StatusCode::BadRequest);
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn openai_honours_retry_after_on_429() {
    let server = Server::start(vec![
        Reply::error(
            429,
            json!({"error": {"message": "Rate limit reached", "type": "requests"}}),
        )
        .header("retry-after", "1"),
        Reply::sse(oa_text(&["ok"])),
    ])
    .await;
    let started = Instant::now();
    let c = complete(&openai(&server), ask("hi")).await.unwrap();
    assert_eq!(c.message.text(), "ok");
    assert_eq!(server.requests().len(), 2);
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "waited {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn openai_gives_up_after_the_retries() {
    let limited = || {
        Reply::error(
            429,
            json!({"error": {"message": "Rate limit reached", "type": "requests"}}),
        )
        .header("retry-after", "0")
    };
    let server = Server::start(vec![limited(), limited(), limited(), limited()]).await;
    let err = complete(&openai(&server), ask("hi")).await.unwrap_err();
    assert_eq!(
        err,
        LlmError::RateLimited {
            retry_after: Some(Duration::ZERO),
            body: "requests: Rate limit reached".into()
        }
    );
    assert_eq!(err.status_code(), StatusCode::TooManyRequests);
    assert_eq!(server.requests().len(), 3, "one attempt and two retries");
}

#[tokio::test]
async fn openai_retries_5xx_with_backoff() {
    let server = Server::start(vec![
        Reply::error(
            503,
            json!({"error": {"message": "overloaded", "type": "server_error"}}),
        ),
        Reply::sse(oa_text(&["fine"])),
    ])
    .await;
    let c = complete(&openai(&server), ask("hi")).await.unwrap();
    assert_eq!(c.message.text(), "fine");
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn openai_dropped_connection_mid_stream_is_an_error() {
    let mut blocks = oa_text(&["partial", "never"]);
    blocks.truncate(2);
    let reply = Reply::sse(blocks).then(Part::Abort);
    let server = Server::start(vec![reply]).await;
    let (texts, _, done) = drain(&openai(&server), ask("hi")).await;
    assert_eq!(texts, ["partial"]);
    assert!(
        matches!(done, Err(LlmError::StreamInterrupted { .. })),
        "{done:?}"
    );
}

#[tokio::test]
async fn openai_stream_cut_short_without_done_is_an_error() {
    let mut blocks = oa_text(&["a", "b"]);
    blocks.truncate(2);
    let server = Server::start(vec![Reply::sse(blocks)]).await;
    let (_, _, done) = drain(&openai(&server), ask("hi")).await;
    assert!(
        matches!(done, Err(LlmError::StreamInterrupted { .. })),
        "{done:?}"
    );
}

#[tokio::test]
async fn openai_error_event_mid_stream() {
    let blocks = vec![
        oa_chunk(json!({"content": "x"}), None),
        sse(
            None,
            &json!({"error": {"message": "The server had an error", "type": "server_error"}}),
        ),
    ];
    let server = Server::start(vec![Reply::sse(blocks)]).await;
    let (_, _, done) = drain(&openai(&server), ask("hi")).await;
    assert_eq!(
        done.unwrap_err(),
        LlmError::ProviderStreamError {
            kind: "server_error".into(),
            message: "The server had an error".into()
        }
    );
}

#[tokio::test]
async fn dropping_the_stream_closes_the_connection() {
    let reply = Reply::sse(vec![oa_chunk(json!({"content": "first"}), None)])
        .then(Part::Pause(Duration::from_secs(30)))
        .then(Part::Bytes(DONE.into()));
    let server = Server::start(vec![reply]).await;
    let llm = openai(&server);
    let mut stream = llm.chat(ask("hi"));
    assert_eq!(
        stream.next().await.unwrap().unwrap(),
        StreamEvent::Text("first".into())
    );
    drop(stream);
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.cancelled() == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(server.cancelled(), 1, "the server saw the client go away");
}

#[tokio::test]
async fn unreachable_server_names_the_url() {
    // Bind and drop a listener to get a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let llm = OpenAi::compatible(format!("http://127.0.0.1:{port}/v1"), "m")
        .with_http(fast_http())
        .connect()
        .unwrap();
    let err = complete(&llm, ask("hi")).await.unwrap_err();
    assert!(
        matches!(&err, LlmError::Unreachable { url, .. } if url.contains(&port.to_string())),
        "{err:?}"
    );
    assert_eq!(err.status_code(), StatusCode::Internal);
}

#[tokio::test]
async fn llm_agent_runs_a_tool_round_over_http() {
    let round1 = vec![
        oa_chunk(
            json!({"role": "assistant", "tool_calls": [
                {"index": 0, "id": "call_1", "type": "function", "function": {"name": "calculator", "arguments": "{\"expression\":"}}
            ]}),
            None,
        ),
        oa_chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": " \"6*7\"}"}}]}),
            None,
        ),
        oa_chunk(json!({}), Some("tool_calls")),
        DONE.into(),
    ];
    let server = Server::start(vec![
        Reply::sse(round1),
        Reply::sse(oa_text(&["It is ", "42."])),
    ])
    .await;
    let agent = LlmAgent::builder(openai(&server))
        .tool(tools::calculator())
        .build();
    let (out, collected) = Responder::collector();
    agent
        .prompt(Request::text("what is 6*7?"), out)
        .await
        .unwrap();
    assert_eq!(collected.text(), "It is 42.");
    let second = &server.requests()[1].body["messages"];
    assert_eq!(
        second[2]["tool_calls"][0]["function"]["arguments"],
        "{\"expression\":\"6*7\"}"
    );
    assert_eq!(
        second[3],
        json!({"role": "tool", "tool_call_id": "call_1", "content": "42"})
    );
}

// ---- Anthropic Messages ------------------------------------------------------

fn an(event: &str, data: Value) -> String {
    sse(Some(event), &data)
}

fn an_start(input_tokens: u64) -> String {
    an(
        "message_start",
        json!({"type": "message_start", "message": {
            "id": "msg_1", "type": "message", "role": "assistant", "content": [], "model": "claude-test-2025",
            "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": input_tokens, "output_tokens": 1},
        }}),
    )
}

fn an_end(stop_reason: &str, output_tokens: u64) -> Vec<String> {
    vec![
        an(
            "message_delta",
            json!({"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": null}, "usage": {"output_tokens": output_tokens}}),
        ),
        an("message_stop", json!({"type": "message_stop"})),
    ]
}

fn an_text_block(index: u64, pieces: &[&str]) -> Vec<String> {
    let mut out = vec![an(
        "content_block_start",
        json!({"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}}),
    )];
    out.extend(pieces.iter().map(|p| {
        an(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": p}}),
        )
    }));
    out.push(an(
        "content_block_stop",
        json!({"type": "content_block_stop", "index": index}),
    ));
    out
}

#[tokio::test]
async fn anthropic_streams_text_deltas_and_usage() {
    let mut blocks = vec![an_start(25), an("ping", json!({"type": "ping"}))];
    blocks.extend(an_text_block(0, &["Hello", "!"]));
    blocks.extend(an_end("end_turn", 15));
    let server = Server::start(vec![Reply::sse(blocks)]).await;
    let llm = anthropic(&server);
    let (texts, _, done) = drain(&llm, ask("hi")).await;
    assert_eq!(texts, ["Hello", "!"]);
    let c = done.unwrap();
    assert_eq!(
        c.usage,
        Usage {
            input_tokens: 25,
            output_tokens: 15
        }
    );
    assert_eq!(c.model, "claude-test-2025");
    assert_eq!(c.finish_reason, FinishReason::Stop);

    let req = &server.requests()[0];
    assert_eq!(req.path, "/v1/messages");
    assert_eq!(req.headers["x-api-key"], "ant-test");
    assert_eq!(req.headers["anthropic-version"], "2023-06-01");
    assert_eq!(req.body["system"], "be brief");
    assert_eq!(req.body["stream"], true);
    assert_eq!(req.body["max_tokens"], 4096);
    assert_eq!(
        req.body["messages"],
        json!([{"role": "user", "content": [{"type": "text", "text": "hi"}]}])
    );
}

#[tokio::test]
async fn anthropic_assembles_tool_use_split_across_events() {
    let mut blocks = vec![an_start(400)];
    blocks.extend(an_text_block(0, &["Let me check."]));
    blocks.push(an(
        "content_block_start",
        json!({"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {}}}),
    ));
    for piece in ["", "{\"city\": ", "\"Par", "is\"}"] {
        blocks.push(an(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": piece}}),
        ));
    }
    blocks.push(an(
        "content_block_stop",
        json!({"type": "content_block_stop", "index": 1}),
    ));
    blocks.extend(an_end("tool_use", 89));
    let server = Server::start(vec![Reply::sse(blocks)]).await;
    let (texts, _, done) = drain(
        &anthropic(&server),
        ask("weather?").with_tools(vec![weather_tool()]),
    )
    .await;
    assert_eq!(texts, ["Let me check."]);
    let c = done.unwrap();
    assert_eq!(c.finish_reason, FinishReason::ToolCalls);
    let calls: Vec<_> = c.message.tool_calls().cloned().collect();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].id, "toolu_01");
    assert_eq!(calls[0].arguments, json!({"city": "Paris"}));
    let body = &server.requests()[0].body;
    assert_eq!(body["tools"][0]["name"], "get_weather");
    assert_eq!(
        body["tools"][0]["input_schema"]["required"],
        json!(["city"])
    );
}

#[tokio::test]
async fn anthropic_sends_tool_results_in_a_user_turn() {
    let mut blocks = vec![an_start(10)];
    blocks.extend(an_text_block(0, &["Sunny."]));
    blocks.extend(an_end("end_turn", 3));
    let server = Server::start(vec![Reply::sse(blocks)]).await;
    let request = ChatRequest::new(vec![
        Message::user("weather?"),
        Message::assistant_with_tool_calls(
            "",
            vec![nap_llm::ToolCall {
                id: "toolu_01".into(),
                name: "get_weather".into(),
                arguments: json!({"city": "Paris"}),
            }],
        ),
        Message::tool_results(vec![nap_llm::ToolResult {
            call_id: "toolu_01".into(),
            name: "get_weather".into(),
            content: "no such city".into(),
            is_error: true,
        }]),
    ]);
    complete(&anthropic(&server), request).await.unwrap();
    let messages = &server.requests()[0].body["messages"];
    assert_eq!(
        messages[1],
        json!({"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris"}}]})
    );
    assert_eq!(
        messages[2],
        json!({"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01", "content": "no such city", "is_error": true}]})
    );
}

#[tokio::test]
async fn anthropic_error_event_mid_stream() {
    let mut blocks = vec![an_start(5)];
    blocks.extend(an_text_block(0, &["Hi"]));
    blocks.push(an(
        "error",
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
    ));
    let server = Server::start(vec![Reply::sse(blocks)]).await;
    let (_, _, done) = drain(&anthropic(&server), ask("hi")).await;
    assert_eq!(
        done.unwrap_err(),
        LlmError::ProviderStreamError {
            kind: "overloaded_error".into(),
            message: "Overloaded".into()
        }
    );
}

#[tokio::test]
async fn anthropic_error_bodies_map_to_status_codes() {
    let server = Server::start(vec![Reply::error(
        400,
        json!({"type": "error", "error": {"type": "invalid_request_error", "message": "max_tokens: Field required"}}),
    )])
    .await;
    let err = complete(&anthropic(&server), ask("hi")).await.unwrap_err();
    assert_eq!(
        err,
        LlmError::Http {
            status: 400,
            body: "invalid_request_error: max_tokens: Field required".into()
        }
    );
    let agent_error: nap_agent::AgentError = err.into();
    assert_eq!(agent_error.code(), StatusCode::BadRequest);
}

#[tokio::test]
async fn anthropic_dropped_connection_mid_stream_is_an_error() {
    let mut blocks = vec![an_start(5)];
    blocks.extend(an_text_block(0, &["Hi"]));
    let server = Server::start(vec![Reply::sse(blocks).then(Part::Abort)]).await;
    let (texts, _, done) = drain(&anthropic(&server), ask("hi")).await;
    assert_eq!(texts, ["Hi"]);
    assert!(
        matches!(done, Err(LlmError::StreamInterrupted { .. })),
        "{done:?}"
    );
}

#[tokio::test]
async fn anthropic_retries_overloaded_529() {
    let mut blocks = vec![an_start(5)];
    blocks.extend(an_text_block(0, &["ok"]));
    blocks.extend(an_end("end_turn", 1));
    let server = Server::start(vec![
        Reply::error(529, json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})),
        Reply::sse(blocks),
    ])
    .await;
    let c = complete(&anthropic(&server), ask("hi")).await.unwrap();
    assert_eq!(c.message.text(), "ok");
    assert_eq!(server.requests().len(), 2);
}
