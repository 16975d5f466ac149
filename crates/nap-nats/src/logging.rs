//! Logs for operators: one setup for every nap binary and for programs
//! built on nap.
//!
//! `RUST_LOG` wins when set; otherwise a verbosity picks the level (0:
//! warnings, 1: info, 2: debug, 3 or more: trace). Text logs are coloured
//! only when stderr is a terminal, so a log redirected to a file holds no
//! escape codes; JSON logs are one object per line. The host logs one
//! `info` line per prompt under the target [`LOG_TARGET`](crate::host::LOG_TARGET),
//! with the subject, instance, sender and its trust class (§13.12), the
//! outcome code, the duration and the bytes in and out.
//!
//! ```
//! use nap_nats::logging::{LogFormat, Logging};
//!
//! let format: LogFormat = "json".parse().unwrap();
//! // In main: `-v` once, JSON lines on stderr.
//! Logging::new().verbosity(1).format(format).init();
//! ```

use std::io::IsTerminal as _;
use std::str::FromStr;

use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines, coloured on a terminal.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// A log format that is neither `text` nor `json`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown log format {0:?}: use text or json")]
pub struct UnknownLogFormat(String);

impl FromStr for LogFormat {
    type Err = UnknownLogFormat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(UnknownLogFormat(other.to_owned())),
        }
    }
}

/// The log setup of a program; see the module docs.
#[derive(Debug, Clone, Copy, Default)]
#[must_use]
pub struct Logging {
    verbosity: u8,
    format: LogFormat,
}

impl Logging {
    /// Warnings only, as text.
    pub fn new() -> Self {
        Logging::default()
    }

    /// How many `-v` were given.
    pub fn verbosity(mut self, verbosity: u8) -> Self {
        self.verbosity = verbosity;
        self
    }

    /// Text or JSON.
    pub fn format(mut self, format: LogFormat) -> Self {
        self.format = format;
        self
    }

    /// The filter: `RUST_LOG` when set, else the verbosity's level.
    fn filter(&self) -> EnvFilter {
        EnvFilter::try_from_default_env().unwrap_or_else(|_| {
            EnvFilter::new(match self.verbosity {
                0 => "warn",
                1 => "info",
                2 => "debug",
                _ => "trace",
            })
        })
    }

    /// Installs the subscriber, logging to stderr; does nothing when one is
    /// installed already.
    pub fn init(self) {
        let builder = tracing_subscriber::fmt()
            .with_env_filter(self.filter())
            .with_writer(std::io::stderr);
        let _already = match self.format {
            LogFormat::Json => builder.json().with_ansi(false).try_init(),
            LogFormat::Text => builder
                .with_ansi(std::io::stderr().is_terminal())
                .try_init(),
        };
    }
}
