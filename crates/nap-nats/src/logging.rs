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
//! Traces: with the `otlp` feature (on in the nap binaries) and
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`)
//! set, spans are also exported over OTLP/HTTP (protobuf), configured by
//! the standard `OTEL_*` variables (`OTEL_SERVICE_NAME`, headers, timeout);
//! the service name defaults to the program's. Export has its own level,
//! `info`, whatever the log level, so that the turn spans of
//! [`crate::trace`] are recorded. Keep the [`LogGuard`] that
//! [`Logging::init`] returns until the program ends: dropping it sends the
//! spans still buffered.
//!
//! ```
//! use nap_nats::logging::{LogFormat, Logging};
//!
//! let format: LogFormat = "json".parse().unwrap();
//! // In main: `-v` once, JSON lines on stderr.
//! let _guard = Logging::new().verbosity(1).format(format).init();
//! ```

use std::io::IsTerminal as _;
use std::str::FromStr;

use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer, Registry};

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
    service: Option<&'static str>,
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

    /// The service name exported traces carry when `OTEL_SERVICE_NAME` is
    /// not set. Default: the program's file name.
    pub fn service_name(mut self, name: &'static str) -> Self {
        self.service = Some(name);
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

    /// Installs the subscriber, logging to stderr (and exporting traces,
    /// see the module docs); does nothing when one is installed already.
    pub fn init(self) -> LogGuard {
        let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
        let logs: Box<dyn Layer<Registry> + Send + Sync> = match self.format {
            LogFormat::Json => fmt
                .json()
                .with_ansi(false)
                .with_filter(self.filter())
                .boxed(),
            LogFormat::Text => fmt
                .with_ansi(std::io::stderr().is_terminal())
                .with_filter(self.filter())
                .boxed(),
        };
        let (traces, guard) = self.traces();
        let layers: Vec<Box<dyn Layer<Registry> + Send + Sync>> =
            std::iter::once(logs).chain(traces).collect();
        let _already = tracing_subscriber::registry().with(layers).try_init();
        guard
    }

    #[cfg(feature = "otlp")]
    fn traces(&self) -> (Option<Box<dyn Layer<Registry> + Send + Sync>>, LogGuard) {
        match otlp::start(self.service) {
            Some((layer, provider)) => (
                Some(layer),
                LogGuard {
                    provider: Some(provider),
                },
            ),
            None => (None, LogGuard::default()),
        }
    }

    #[cfg(not(feature = "otlp"))]
    fn traces(&self) -> (Option<Box<dyn Layer<Registry> + Send + Sync>>, LogGuard) {
        (None, LogGuard::default())
    }
}

/// Keeps trace export running; dropping it sends the spans still
/// buffered and stops export. Holds nothing without export.
#[derive(Debug, Default)]
#[must_use = "dropping the guard stops trace export: keep it until the program ends"]
pub struct LogGuard {
    #[cfg(feature = "otlp")]
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        #[cfg(feature = "otlp")]
        if let Some(provider) = self.provider.take()
            && let Err(e) = provider.shutdown()
        {
            eprintln!("could not send the last traces: {e}");
        }
    }
}

#[cfg(feature = "otlp")]
mod otlp {
    //! The OTLP/HTTP exporter, from the standard `OTEL_*` variables.

    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_sdk::Resource;
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use tracing_subscriber::{EnvFilter, Layer, Registry};

    /// The variables that turn export on.
    const ENDPOINTS: [&str; 2] = [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ];

    /// The export layer and its provider, when an endpoint is set and the
    /// exporter can be built (else a line on stderr says why not).
    pub(super) fn start(
        service: Option<&'static str>,
    ) -> Option<(Box<dyn Layer<Registry> + Send + Sync>, SdkTracerProvider)> {
        let set = ENDPOINTS
            .iter()
            .any(|v| std::env::var(v).is_ok_and(|value| !value.trim().is_empty()));
        if !set {
            return None;
        }
        let exporter = match opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .build()
        {
            Ok(exporter) => exporter,
            Err(e) => {
                eprintln!("traces are not exported: {e}");
                return None;
            }
        };
        let mut resource = Resource::builder();
        if std::env::var("OTEL_SERVICE_NAME").is_err() {
            let program = std::env::args()
                .next()
                .and_then(|p| {
                    std::path::Path::new(&p)
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                })
                .unwrap_or_else(|| "nap".to_owned());
            resource = resource.with_service_name(service.map_or(program, str::to_owned));
        }
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource.build())
            .build();
        let layer = tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("nap"))
            .with_filter(EnvFilter::new("info"))
            .boxed();
        Some((layer, provider))
    }
}
