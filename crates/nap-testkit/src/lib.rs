//! Real `nats-server` processes for nap's tests and benchmarks.
//!
//! Every server listens on a free port of 127.0.0.1 (nothing assumes 4222),
//! has its own temporary directory for its config, log and JetStream store,
//! and is killed and reaped when its handle is dropped. The API is
//! synchronous: call it from any test, async or not.
//!
//! ```no_run
//! use nap_testkit::{Cluster, NatsServer};
//!
//! # fn main() -> Result<(), nap_testkit::TestkitError> {
//! // One server with default options.
//! let server = NatsServer::start()?;
//! let url = server.url(); // "nats://127.0.0.1:PORT"
//!
//! // One with authentication and a small max_payload.
//! let secured = NatsServer::builder()
//!     .max_payload(1024)
//!     .extra_config(r#"authorization { user: "alice", password: "s3cr3t" }"#)
//!     .start()?;
//!
//! // A 3-node cluster, ready once routes form a full mesh.
//! let cluster = Cluster::start(3)?;
//! let urls: Vec<String> = cluster.urls();
//! # let _ = (url, secured, urls);
//! # Ok(()) }
//! ```
//!
//! The `nats-server` binary is found through env `NAP_NATS_SERVER`, then
//! `PATH`, then the copy `cargo xtask setup` installs (see
//! [`BinaryLookup`]). Run `cargo xtask setup` when none is found.
//!
//! Feature `workspace-tools` (default): also look where the nap workspace
//! this crate was compiled in keeps its tools. Turn it off in a binary that
//! is installed elsewhere (as the `nap` binary does through
//! `nap-conformance`): then only `NAP_NATS_SERVER`, `PATH` and
//! `NAP_TOOLS_DIR` count.

mod binary;
mod cluster;
mod error;
mod federation;
pub mod identity;
mod probe;
mod python;
mod server;
mod version;

pub use binary::{
    BinaryLookup, DEBIAN_NATS_SERVER, NATS_SERVER_ENV, NATS_SERVER_VENV, TOOLS_DIR_ENV,
    WORKSPACE_TOOLS, find_nats_server, setup_nats_server, setup_tools_dir, setup_tools_dir_from,
    tools_dir, tools_dir_from, tools_nats_server, workspace_root,
};
pub use cluster::Cluster;
pub use error::TestkitError;
pub use federation::{GatewayPair, LeafHub};
pub use identity::{IdentityServer, TestUser, Topology, current_nats_server};
pub use python::{PYTHON_ENV, find_python, python_from, python_peer};
pub use server::{DEFAULT_READY_TIMEOUT, NatsServer, NatsServerBuilder};
pub use version::ServerVersion;
