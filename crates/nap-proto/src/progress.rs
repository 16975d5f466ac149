//! nap's progress tokens: `status` chunks (§6.4) that say which tool an
//! agent is running.
//!
//! §6.4 lets an agent send any status token besides `ack`, and callers
//! that do not know a token ignore it. nap's tool-calling agents use three,
//! `tool:NAME` when a tool starts, `done:NAME` and `failed:NAME` when it
//! ends, so that a user interface can show who is working. This module is
//! their one definition, for those who send them and those who show them.
//!
//! ```
//! use nap_proto::Progress;
//!
//! let token = Progress::Started("writer".into()).token();
//! assert_eq!(token, "tool:writer");
//! assert_eq!(Progress::parse(&token), Some(Progress::Started("writer".into())));
//! assert_eq!(Progress::parse("thinking"), None);
//! ```

use crate::chunk::{Chunk, StatusToken};

/// A step of a tool call, as a status token.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Progress {
    /// The named tool started (`tool:NAME`).
    Started(String),
    /// The named tool finished (`done:NAME`).
    Done(String),
    /// The named tool failed (`failed:NAME`).
    Failed(String),
}

const STARTED: &str = "tool:";
const DONE: &str = "done:";
const FAILED: &str = "failed:";

impl Progress {
    /// The status token, e.g. `tool:writer`.
    pub fn token(&self) -> String {
        match self {
            Progress::Started(name) => format!("{STARTED}{name}"),
            Progress::Done(name) => format!("{DONE}{name}"),
            Progress::Failed(name) => format!("{FAILED}{name}"),
        }
    }

    /// The status chunk carrying this token.
    pub fn chunk(&self) -> Chunk {
        Chunk::Status(StatusToken::Other(self.token()))
    }

    /// Reads a status token; `None` when it is not one of nap's progress
    /// tokens (callers ignore it then, §6.4).
    pub fn parse(token: &str) -> Option<Progress> {
        if let Some(name) = token.strip_prefix(STARTED) {
            Some(Progress::Started(name.to_owned()))
        } else if let Some(name) = token.strip_prefix(DONE) {
            Some(Progress::Done(name.to_owned()))
        } else {
            token
                .strip_prefix(FAILED)
                .map(|name| Progress::Failed(name.to_owned()))
        }
    }

    /// The tool's name.
    pub fn tool(&self) -> &str {
        match self {
            Progress::Started(name) | Progress::Done(name) | Progress::Failed(name) => name,
        }
    }
}
