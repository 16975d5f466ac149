//! Orchestrators served as agents: a [`Pipeline`] behind the `Agent` trait.
//!
//! A [`Supervisor`](crate::Supervisor) is an [`Agent`] itself; a pipeline
//! becomes one through [`PipelineAgent`].

use std::sync::Arc;

use async_trait::async_trait;
use nap_agent::{Agent, AgentError, Request, Responder};
use nap_proto::StatusCode;
use tokio::sync::mpsc;

use crate::Error;
use crate::pipeline::{Pipeline, Progress};
use crate::query::with_caller;

/// A [`Pipeline`] as an [`Agent`]: each prompt runs the pipeline on the
/// prompt text.
///
/// It streams its progress as status tokens (§6.4): `step:NAME:started`,
/// `step:NAME:finished`, `step:NAME:retrying` and `step:NAME:failed`; the
/// answer of the step whose answer is the pipeline's streams as response
/// chunks as it arrives (§6.3), and a pipeline whose answer is assembled
/// (a fan-out without a gather step, a map) sends it whole at the end.
/// Questions of the agents it calls are forwarded to its caller by
/// default. A failed run ends with an error signal (§9): `500` with the
/// failed step's error.
///
/// ```no_run
/// # async fn run(nats: async_nats::Client, pipeline: nap_orchestrator::Pipeline)
/// #     -> Result<(), Box<dyn std::error::Error>> {
/// use nap_nats::AgentService;
/// use nap_orchestrator::PipelineAgent;
///
/// let running = AgentService::builder("pipeline", "alice", "articles")
///     .start(nats, PipelineAgent::new(pipeline))
///     .await?;
/// # let _ = running; Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct PipelineAgent {
    pipeline: Arc<Pipeline>,
}

impl PipelineAgent {
    /// Serves `pipeline`.
    pub fn new(pipeline: Pipeline) -> Self {
        PipelineAgent {
            pipeline: Arc::new(pipeline),
        }
    }

    /// The pipeline.
    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }
}

#[async_trait]
impl Agent for PipelineAgent {
    async fn prompt(&self, request: Request, responder: Responder) -> Result<(), AgentError> {
        let (progress, mut events) = mpsc::unbounded_channel();
        let prompt = request.prompt().to_owned();
        let run = with_caller(
            responder.clone(),
            self.pipeline.run_with_progress(prompt, progress),
        );
        tokio::pin!(run);
        let mut streamed = false;
        let outcome = loop {
            tokio::select! {
                // Progress first, so that it is sent in order before the end.
                biased;
                Some(event) = events.recv() => forward(&responder, event, &mut streamed).await?,
                outcome = &mut run => break outcome,
            }
        };
        while let Ok(event) = events.try_recv() {
            forward(&responder, event, &mut streamed).await?;
        }
        match outcome {
            Ok(answer) => {
                if !streamed {
                    responder.text(answer).await?;
                }
                Ok(())
            }
            Err(error) => Err(agent_error(&error)),
        }
    }
}

/// Sends one progress event to the caller.
async fn forward(
    responder: &Responder,
    event: Progress,
    streamed: &mut bool,
) -> Result<(), AgentError> {
    match event {
        Progress::StepStarted { step, .. } => {
            responder.status(format!("step:{step}:started")).await?
        }
        Progress::StepFinished { step, .. } => {
            responder.status(format!("step:{step}:finished")).await?
        }
        Progress::StepFailed {
            step, will_retry, ..
        } => {
            let what = if will_retry { "retrying" } else { "failed" };
            responder.status(format!("step:{step}:{what}")).await?
        }
        Progress::Chunk {
            text, is_output, ..
        } => {
            if is_output && !text.is_empty() {
                *streamed = true;
                responder.text(text).await?;
            }
        }
    }
    Ok(())
}

/// The error signal (§9.2) for a failed run.
fn agent_error(error: &Error) -> AgentError {
    let code = match error {
        Error::EmptyPipeline { .. } => StatusCode::Internal,
        Error::StepFailed { source, .. } => match source.as_ref() {
            Error::QueryRefused { .. } => StatusCode::Conflict,
            _ => StatusCode::Internal,
        },
        _ => StatusCode::Internal,
    };
    AgentError::new(code, error.to_string())
}
