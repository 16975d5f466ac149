//! The Agent trait, closure agents and the in-memory responder.
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use nap_agent::{Agent, AgentError, QueryError, Request, Responder, agent_fn};
use nap_proto::{Attachment, Chunk, Envelope, ErrorBody, StatusCode, StatusToken};

#[tokio::test]
async fn closure_agent_streams_through_the_responder() {
    let agent = agent_fn(|req: Request, out: Responder| async move {
        out.status("thinking").await?;
        for part in req.prompt().split_inclusive(' ') {
            out.text(part).await?;
        }
        let sizes: Vec<String> = req
            .attachments()
            .iter()
            .map(|a| format!("{}={}", a.filename, a.content.len()))
            .collect();
        out.response(
            sizes.join(","),
            vec![Attachment::new("r.txt", b"ok".to_vec())],
        )
        .await?;
        Ok::<_, AgentError>(())
    });
    let (out, got) = Responder::collector();
    let req =
        Request::new(Envelope::text("a b c").with_attachment(Attachment::new("f.bin", vec![0; 3])));
    agent.prompt(req, out).await.unwrap();
    assert_eq!(got.text(), "a b cf.bin=3");
    let chunks = got.chunks();
    assert_eq!(
        chunks[0],
        Chunk::Status(StatusToken::Other("thinking".into()))
    );
    assert_eq!(chunks.len(), 5);
}

#[tokio::test]
async fn agents_ask_and_get_answers_or_time_out() {
    let agent = Arc::new(agent_fn(|_req: Request, out: Responder| async move {
        let answer = out.ask("sure?", Duration::from_millis(10)).await?;
        out.text(answer.prompt).await?;
        Ok::<_, AgentError>(())
    }));
    let (out, got) = Responder::collector();
    got.answer_with(Envelope::text("yes"));
    agent.prompt(Request::text("x"), out).await.unwrap();
    assert_eq!(got.text(), "yes");
    assert_eq!(got.questions(), ["sure?"]);

    let (out, _got) = Responder::collector();
    let err = agent.prompt(Request::text("x"), out).await.unwrap_err();
    assert_eq!(
        err.code(),
        StatusCode::Conflict,
        "an unanswered question ends the prompt: {err}"
    );
}

#[test]
fn errors_map_to_section_9_codes() {
    assert_eq!(AgentError::bad_request("x").code(), StatusCode::BadRequest);
    assert_eq!(
        AgentError::rate_limited("x").code(),
        StatusCode::TooManyRequests
    );
    assert_eq!(AgentError::internal("x").code(), StatusCode::Internal);
    let e =
        AgentError::not_found("no such file").with_body(ErrorBody::new("missing", "no such file"));
    assert_eq!(e.service_error().body.as_ref().unwrap().error, "missing");
    let from_query: AgentError = QueryError::Unsupported.into();
    assert_eq!(from_query.code(), StatusCode::Internal);
}

#[tokio::test]
async fn echo_whoami_answers_with_the_classified_sender() {
    use nap_agent::echo::{EchoAgent, WHOAMI};
    use nap_proto::identity::{AgentId, Sender, SenderClaim};

    let echo = EchoAgent::default();
    let (out, collected) = Responder::collector();
    echo.prompt(Request::text(WHOAMI), out).await.unwrap();
    assert_eq!(collected.text(), "absent");

    let id =
        AgentId::parse("ACME.UAWW24XPLGOX3R3JF4OZEZZ6RUXMB55DSWJCEFFSUDFBCKJD4MSCMQYI").unwrap();
    let (out, collected) = Responder::collector();
    let request = Request::text(WHOAMI).with_sender(Sender::Claimed(SenderClaim::new(id)));
    echo.prompt(request, out).await.unwrap();
    assert_eq!(
        collected.text(),
        "claimed ACME.UAWW24XPLGOX3R3JF4OZEZZ6RUXMB55DSWJCEFFSUDFBCKJD4MSCMQYI"
    );

    // Any other prompt is still echoed.
    let (out, collected) = Responder::collector();
    echo.prompt(Request::text("whoami?"), out).await.unwrap();
    assert_eq!(collected.text(), "whoami?");
}
