//! The suite's one error type.

/// What stopped a conformance run before it could judge the cases.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The NATS server cannot be reached.
    #[error("cannot connect to NATS at {url}: {source}")]
    Connect {
        /// The server URL.
        url: String,
        /// The client's report.
        #[source]
        source: async_nats::ConnectError,
    },
    /// A subscribe, publish or flush failed.
    #[error("NATS {what} failed: {message}")]
    Nats {
        /// The operation.
        what: &'static str,
        /// The client's report.
        message: String,
    },
    /// No agent on `$SRV.INFO.agents` matched the target.
    #[error("no agent matched {target} on $SRV.INFO.agents (saw {seen} agent record(s))")]
    NoAgent {
        /// The target as given.
        target: String,
        /// How many records were seen.
        seen: usize,
    },
    /// Several instances matched the target: the suite tests one, named
    /// without doubt.
    #[error(
        "{target} is ambiguous on $SRV.INFO.agents; it matches {}; name one with --instance ID",
        candidates.join(", ")
    )]
    Ambiguous {
        /// The target as given.
        target: String,
        /// Each match, as `agent/owner/name (instance ID)`.
        candidates: Vec<String>,
    },
    /// A scenario or broken agent could not be started.
    #[error("cannot start the {what} agent: {message}")]
    Host {
        /// Which agent.
        what: String,
        /// Why.
        message: String,
    },
    /// The private nats-server could not be started.
    #[error(transparent)]
    Server(#[from] nap_testkit::TestkitError),
    /// The caller command could not be run.
    #[error("cannot run the caller command `{command}`: {source}")]
    Spawn {
        /// The command line.
        command: String,
        /// The OS's report.
        #[source]
        source: std::io::Error,
    },
    /// A report file (`--junit`, `--markdown`) could not be written.
    #[error("cannot write the report to {}: {source}", path.display())]
    WriteReport {
        /// The file.
        path: std::path::PathBuf,
        /// The OS's report.
        #[source]
        source: std::io::Error,
    },
    /// The command template is unusable.
    #[error("bad caller command template: {0}")]
    Template(String),
}

impl Error {
    /// A NATS operation failure.
    pub fn nats(what: &'static str, err: impl std::fmt::Display) -> Self {
        Error::Nats {
            what,
            message: err.to_string(),
        }
    }
}

/// Results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
