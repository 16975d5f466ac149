//! The `Agent` trait and the closure-based agent.

use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;

use crate::{AgentError, Request, Responder};

/// Something that answers prompts.
///
/// The host sends the `ack` (§6.4) before calling [`Agent::prompt`] and the
/// terminator (§6.5) after it returns; the agent only streams content
/// through the [`Responder`]. Returning `Err` sends the error signal (§9.3).
#[async_trait]
pub trait Agent: Send + Sync + 'static {
    /// Answers one prompt.
    async fn prompt(&self, request: Request, responder: Responder) -> Result<(), AgentError>;
}

#[async_trait]
impl<A: Agent + ?Sized> Agent for Arc<A> {
    async fn prompt(&self, request: Request, responder: Responder) -> Result<(), AgentError> {
        (**self).prompt(request, responder).await
    }
}

#[async_trait]
impl<A: Agent + ?Sized> Agent for Box<A> {
    async fn prompt(&self, request: Request, responder: Responder) -> Result<(), AgentError> {
        (**self).prompt(request, responder).await
    }
}

/// An agent made from an async closure; see [`agent_fn`].
#[derive(Clone)]
pub struct FnAgent<F>(F);

/// Turns `f(request, responder)` into an [`Agent`].
pub fn agent_fn<F, Fut>(f: F) -> FnAgent<F>
where
    F: Fn(Request, Responder) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), AgentError>> + Send + 'static,
{
    FnAgent(f)
}

#[async_trait]
impl<F, Fut> Agent for FnAgent<F>
where
    F: Fn(Request, Responder) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), AgentError>> + Send + 'static,
{
    async fn prompt(&self, request: Request, responder: Responder) -> Result<(), AgentError> {
        (self.0)(request, responder).await
    }
}
