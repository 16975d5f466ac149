//! The nap conformance suite for the Synadia Agent Protocol v0.3.
//!
//! Ask "is this compliant?" of any agent or caller, in any language, and get
//! a verdict per rule with the wire evidence that proves it. Every rule is a
//! [`Case`] (id, spec section, level, one-line statement) in the
//! [`catalogue`]; a run turns them into [`Verdict`]s collected in a
//! [`Report`], printed as a table or as JSON with the evidence.
//!
//! - [`agent`]: test a live agent instance (registration, requests, streams,
//!   liveness).
//! - [`caller`]: host demanding scenario agents and run a caller program
//!   against each (see the caller contract there).
//! - [`export`]: the report as JUnit XML and Markdown, for CI.
//! - [`broken`]: agents that each break one rule, to prove the suite
//!   catches it; [`broken_caller`]: the same for callers.
//!
//! ```no_run
//! use nap_conformance::agent::{self, AgentOptions, Target};
//!
//! # async fn demo() -> Result<(), nap_conformance::Error> {
//! let options = AgentOptions::new(Target::Name("demo".to_owned()));
//! let report = agent::run("nats://127.0.0.1:4222", &options).await?;
//! print!("{}", report.table());
//! assert!(report.is_compliant(), "failed: {:?}", report.failed_ids());
//! # Ok(()) }
//! ```

pub mod agent;
pub mod broken;
pub mod broken_caller;
pub mod caller;
pub mod case;
pub mod catalogue;
pub mod cli;
mod error;
pub mod export;
pub mod report;
pub mod scripted;
pub mod topologies;

pub use case::{Case, Evidence, Level, Outcome, Verdict, WireMessage};
pub use error::{Error, Result};
pub use report::{Findings, Report, Summary};
