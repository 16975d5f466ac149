//! Pipelines over real agents on a real nats-server: sequence, fan-out
//! and gather, bounded map, step timeout, step retry, and a pipeline
//! served as an agent.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt;
use nap_agent::{Agent, AgentError, Request, Responder, agent_fn};
use nap_nats::{AgentHandle, Client, Event};
use nap_orchestrator::{Error, Pipeline, PipelineAgent, Progress, Step, map_inputs};
use nap_proto::DiscoveryFilter;
use support::{Bus, within};
use tokio::sync::mpsc;

async fn find(client: &Client, name: &str) -> AgentHandle {
    client
        .find(DiscoveryFilter {
            owner: Some("pipe".into()),
            name: Some(name.into()),
            ..DiscoveryFilter::any()
        })
        .await
        .unwrap()
}

/// Serves a closure agent as `fn`/`pipe`/`name`.
async fn serve<F, Fut>(bus: &Bus, name: &str, f: F) -> nap_nats::RunningAgent
where
    F: Fn(Request, Responder) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(), AgentError>> + Send + 'static,
{
    bus.serve("fn", "pipe", name, agent_fn(f)).await
}

/// `upper` streams the prompt in upper case, in two chunks.
async fn upper(bus: &Bus) -> nap_nats::RunningAgent {
    serve(bus, "upper", |req: Request, out: Responder| async move {
        let text = req.prompt().to_uppercase();
        let (a, b) = text.split_at(text.len() / 2);
        out.text(a.to_owned()).await?;
        out.text(b.to_owned()).await?;
        Ok(())
    })
    .await
}

/// `shout` appends `!`.
async fn shout(bus: &Bus) -> nap_nats::RunningAgent {
    serve(bus, "shout", |req: Request, out: Responder| async move {
        out.text(format!("{}!", req.prompt())).await?;
        Ok(())
    })
    .await
}

/// `reverse` reverses the prompt.
async fn reverse(bus: &Bus) -> nap_nats::RunningAgent {
    serve(bus, "reverse", |req: Request, out: Responder| async move {
        out.text(req.prompt().chars().rev().collect::<String>())
            .await?;
        Ok(())
    })
    .await
}

fn drain(mut events: mpsc::UnboundedReceiver<Progress>) -> Vec<Progress> {
    let mut all = Vec::new();
    while let Ok(e) = events.try_recv() {
        all.push(e);
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sequence_feeds_each_answer_to_the_next_step_through_its_template() {
    let bus = Bus::start().await;
    let (_u, _s) = (upper(&bus).await, shout(&bus).await);
    let client = bus.client().await;
    let pipeline = Pipeline::sequence([
        Step::new("upper", find(&client, "upper").await).template("topic: {input}"),
        Step::new("shout", find(&client, "shout").await)
            .template("{input} / was {prompt} / {upper}"),
    ]);
    let (tx, rx) = mpsc::unbounded_channel();
    let out = within(20, "the sequence", pipeline.run_with_progress("nats", tx))
        .await
        .unwrap();
    assert_eq!(out, "TOPIC: NATS / was nats / TOPIC: NATS!");
    assert_eq!(pipeline.name(), "shout");

    let events = drain(rx);
    let kinds: Vec<String> = events
        .iter()
        .map(|e| match e {
            Progress::StepStarted { step, attempt } => format!("start {step} {attempt}"),
            Progress::Chunk {
                step, is_output, ..
            } => format!("chunk {step} {is_output}"),
            Progress::StepFinished { step, .. } => format!("done {step}"),
            Progress::StepFailed { step, .. } => format!("failed {step}"),
            _ => "other".to_owned(),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "start upper 1",
            "chunk upper false",
            "chunk upper false",
            "done upper",
            "start shout 1",
            "chunk shout true",
            "done shout"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fan_out_runs_branches_on_one_input_and_gathers_them() {
    let bus = Bus::start().await;
    let (_u, _r, _s) = (upper(&bus).await, reverse(&bus).await, shout(&bus).await);
    let client = bus.client().await;
    let (up, rev) = (find(&client, "upper").await, find(&client, "reverse").await);

    let gathered = Pipeline::fan_out([
        Step::new("upper", up.clone()),
        Step::new("reverse", rev.clone()),
    ])
    .gather(Step::new("shout", find(&client, "shout").await).template("{upper}+{reverse}"));
    let out = within(20, "the fan-out", gathered.run("abc"))
        .await
        .unwrap();
    assert_eq!(out, "ABC+cba!");

    // Without a gather step: every branch under its heading, in order.
    let plain = Pipeline::fan_out([Step::new("upper", up), Step::new("reverse", rev)]);
    let out = within(20, "the plain fan-out", plain.run("abc"))
        .await
        .unwrap();
    assert_eq!(out, "## upper\n\nABC\n\n## reverse\n\ncba");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_map_runs_every_input_with_bounded_concurrency_in_input_order() {
    let bus = Bus::start().await;
    let in_flight = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let _slowish = {
        let (in_flight, peak) = (in_flight.clone(), peak.clone());
        serve(&bus, "square", move |req: Request, out: Responder| {
            let (in_flight, peak) = (in_flight.clone(), peak.clone());
            async move {
                let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(100)).await;
                let n: i64 = req
                    .prompt()
                    .trim()
                    .parse()
                    .map_err(|_| AgentError::bad_request("not a number"))?;
                in_flight.fetch_sub(1, Ordering::SeqCst);
                out.text((n * n).to_string()).await?;
                Ok(())
            }
        })
        .await
    };
    let client = bus.client().await;
    let step = Step::new("square", find(&client, "square").await);

    let inputs: Vec<String> = (1..=9).map(|i| i.to_string()).collect();
    let (tx, rx) = mpsc::unbounded_channel();
    let answers = within(30, "the map", map_inputs(&step, inputs, 3, Some(tx))).await;
    let answers: Vec<String> = answers.into_iter().map(Result::unwrap).collect();
    assert_eq!(answers, ["1", "4", "9", "16", "25", "36", "49", "64", "81"]);
    assert!(
        peak.load(Ordering::SeqCst) <= 3,
        "peak {}",
        peak.load(Ordering::SeqCst)
    );
    let started: Vec<String> = drain(rx)
        .into_iter()
        .filter_map(|e| match e {
            Progress::StepStarted { step, .. } => Some(step),
            _ => None,
        })
        .collect();
    assert_eq!(started.len(), 9);
    assert!(started.contains(&"square[8]".to_owned()), "{started:?}");

    // As a pipeline node: one item per line, answers joined in order.
    peak.store(0, Ordering::SeqCst);
    let map = Pipeline::map(step, 2);
    let out = within(30, "the map node", map.run("2\n\n3\n4\n"))
        .await
        .unwrap();
    assert_eq!(out, "4\n\n9\n\n16");
    assert!(peak.load(Ordering::SeqCst) <= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_that_takes_too_long_fails_with_its_timeout() {
    let bus = Bus::start().await;
    let _slow = serve(&bus, "slow", |_req: Request, out: Responder| async move {
        tokio::time::sleep(Duration::from_secs(30)).await;
        out.text("too late").await?;
        Ok(())
    })
    .await;
    let client = bus.client().await;
    let pipeline = Pipeline::from(
        Step::new("slow", find(&client, "slow").await).timeout(Duration::from_millis(300)),
    );
    let (tx, rx) = mpsc::unbounded_channel();
    let err = within(
        10,
        "the timed-out step",
        pipeline.run_with_progress("x", tx),
    )
    .await
    .unwrap_err();
    match &err {
        Error::StepFailed {
            step,
            attempts,
            source,
        } => {
            assert_eq!(step, "slow");
            assert_eq!(*attempts, 1);
            assert!(matches!(**source, Error::StepTimedOut { .. }), "{source:?}");
        }
        other => panic!("unexpected error {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        "step slow failed after 1 attempt(s): step slow did not finish within 300ms"
    );
    assert!(drain(rx).iter().any(|e| matches!(
        e,
        Progress::StepFailed {
            will_retry: false,
            ..
        }
    )));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_that_fails_once_is_retried_and_a_rejection_is_not() {
    let bus = Bus::start().await;
    let calls = Arc::new(AtomicUsize::new(0));
    let _flaky = {
        let calls = calls.clone();
        serve(&bus, "flaky", move |req: Request, out: Responder| {
            let calls = calls.clone();
            async move {
                if req.prompt() == "bad" {
                    return Err(AgentError::bad_request("never"));
                }
                if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                    return Err(AgentError::internal("first call fails"));
                }
                out.text("second time lucky").await?;
                Ok(())
            }
        })
        .await
    };
    let client = bus.client().await;
    let step =
        Step::new("flaky", find(&client, "flaky").await).retries(3, Duration::from_millis(20));
    let (tx, rx) = mpsc::unbounded_channel();
    let out = within(
        20,
        "the retried step",
        Pipeline::from(step.clone()).run_with_progress("go", tx),
    )
    .await
    .unwrap();
    assert_eq!(out, "second time lucky");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    let events = drain(rx);
    assert!(
        events.contains(&Progress::StepFailed {
            step: "flaky".into(),
            attempt: 1,
            error: "agent flaky answered error 500: first call fails".into(),
            will_retry: true,
        }),
        "{events:?}"
    );
    assert!(events.contains(&Progress::StepStarted {
        step: "flaky".into(),
        attempt: 2
    }));

    // A 400 cannot get better: one attempt only.
    let err = within(20, "the rejected step", Pipeline::from(step).run("bad"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::StepFailed { attempts: 1, .. }),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipeline_served_as_an_agent_streams_progress_and_its_answer() {
    let bus = Bus::start().await;
    let (_u, _s) = (upper(&bus).await, shout(&bus).await);
    let client = bus.client().await;
    let pipeline = Pipeline::sequence([
        Step::new("upper", find(&client, "upper").await),
        Step::new("shout", find(&client, "shout").await),
    ]);
    let _served = bus
        .serve("pipeline", "pipe", "articles", PipelineAgent::new(pipeline))
        .await;
    let served = find(&client, "articles").await;
    let mut stream = client.prompt(&served, "hi there").await.unwrap();
    let (mut status, mut text) = (Vec::new(), String::new());
    within(20, "the served pipeline", async {
        while let Some(event) = stream.next().await {
            match event.unwrap() {
                Event::Status(s) => status.push(s),
                Event::Response(d) => text.push_str(d.text()),
                Event::End => break,
                _ => {}
            }
        }
    })
    .await;
    assert_eq!(text, "HI THERE!");
    assert_eq!(
        status,
        [
            "step:upper:started",
            "step:upper:finished",
            "step:shout:started",
            "step:shout:finished"
        ]
    );

    // In process, a failing run is an error signal with the step's error.
    let failing = PipelineAgent::new(Pipeline::sequence(Vec::<Pipeline>::new()));
    let (out, _) = Responder::collector();
    let err = failing.prompt(Request::text("x"), out).await.unwrap_err();
    assert!(
        err.to_string().contains("the pipeline sequence is empty"),
        "{err}"
    );
}
