//! Caller mode: host scenario agents and run the caller under test against
//! each, judging its output and exit status.
//!
//! # The caller contract
//!
//! A caller program is testable when it can be started from one command
//! line (a template, run with `sh -c`) and:
//!
//! 1. prompts the agent named by the placeholders (`{subject}` is the
//!    advertised prompt subject; `{server}`, `{agent}`, `{owner}`, `{name}`
//!    identify it for discovery) with the text `{prompt}`;
//! 2. prints the concatenated response text to stdout;
//! 3. answers every mid-stream query with the text `{answer}`;
//! 4. applies an inactivity timeout of `{timeout}` seconds (§6.6);
//! 5. exits 0 when the stream ends normally, and non-zero with the error on
//!    stderr on a service error (§9) or an inactivity timeout.
//!
//! `NATS_URL` is also set to the server. Values are shell-quoted.

pub mod identity;
pub mod runner;
pub mod scenarios;

pub use runner::{CallerOptions, Placeholders, run, substitute};
