//! The `Agent` trait a nap host serves, independent of NATS.
//!
//! An agent gets one [`Request`] (the decoded envelope, §5, the identity of
//! the instance serving it, any unknown envelope fields, §5.6, and the
//! sender as the host classified it, §13.7) and a
//! [`Responder`] through which it streams chunks (§6): text, responses
//! with attachments, status tokens, and mid-stream questions to the caller
//! (§7). Returning an [`AgentError`] ends the stream with a §9.2 code.
//!
//! Transports (such as `nap-nats`) implement [`Transport`]; tests and
//! in-process callers can use [`Responder::collector`].
//!
//! ```
//! use nap_agent::{Agent, AgentError, Request, Responder, agent_fn};
//!
//! // A closure agent that streams the prompt back in upper case.
//! let shout = agent_fn(|req: Request, out: Responder| async move {
//!     out.text(req.prompt().to_uppercase()).await?;
//!     Ok::<_, AgentError>(())
//! });
//!
//! # tokio_test_block_on(async {
//! let (out, collected) = Responder::collector();
//! shout.prompt(Request::text("hello"), out).await.unwrap();
//! assert_eq!(collected.text(), "HELLO");
//! # });
//! # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
//! # }
//! ```

mod agent;
pub mod echo;
mod error;
mod request;
mod responder;

pub use agent::{Agent, FnAgent, agent_fn};
pub use error::{AgentError, QueryError, SendError, TransportError};
pub use request::{Instance, Request};
pub use responder::{Collected, Responder, Transport};

pub use nap_proto;
