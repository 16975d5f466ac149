//! Shared pieces of the example programs: the echo agent and the
//! connection flags every example takes.
//!
//! ```
//! use nap_agent::{Agent, Request, Responder};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let (out, got) = Responder::collector();
//! nap_examples::EchoAgent::default().prompt(Request::text("hello"), out).await.unwrap();
//! assert_eq!(got.text(), "hello");
//! # });
//! ```

pub mod demo;

pub use nap_agent::echo::{ASK_PREFIX, CHUNK_CHARS, EchoAgent, pieces};

/// The NATS server URL: `--server`, else `$NATS_URL`, else the local default.
pub fn server_url(flag: Option<String>) -> String {
    flag.or_else(|| std::env::var("NATS_URL").ok())
        .unwrap_or_else(|| "nats://127.0.0.1:4222".to_owned())
}

/// Connects the way `nap` does (see [`nap_nats::connect`]): the flags
/// given (`--server`, `--nkey`, `--creds`) over the `NATS_*` environment
/// and the selected NATS CLI context, else `nats://127.0.0.1:4222`.
pub async fn connect(
    server: Option<String>,
    nkey: Option<std::path::PathBuf>,
    creds: Option<std::path::PathBuf>,
) -> Result<nap_nats::connect::Connection, nap_nats::connect::ConnectError> {
    let mut config = nap_nats::connect::ConnectionConfig::from_env();
    if server.is_some() {
        config.servers = server;
    }
    if nkey.is_some() {
        config.nkey = nkey;
        config.creds = None;
    }
    if creds.is_some() {
        config.creds = creds;
        config.nkey = None;
    }
    config.connect().await
}

/// Logs to stderr as every nap binary does (`nap_nats::logging`): `RUST_LOG`
/// when set, else `NAP_LOG_VERBOSITY` (0 warnings, 1 info, 2 debug); text
/// (coloured on a terminal only) or JSON lines with `NAP_LOG_FORMAT=json`.
/// Traces are exported when `OTEL_EXPORTER_OTLP_ENDPOINT` is set; keep
/// the guard until the program ends.
pub fn init_logging() -> nap_nats::logging::LogGuard {
    let format = std::env::var("NAP_LOG_FORMAT")
        .ok()
        .and_then(|f| f.parse().ok())
        .unwrap_or_default();
    let verbosity = std::env::var("NAP_LOG_VERBOSITY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    nap_nats::logging::Logging::new()
        .verbosity(verbosity)
        .format(format)
        .init()
}
