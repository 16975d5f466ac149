//! One `nats-server` process.

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::probe;
use crate::{ServerVersion, TestkitError, find_nats_server};

/// How long [`NatsServer::start`] waits for the server by default.
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(10);

/// How often readiness is polled.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// Lines of server output quoted in errors.
const TAIL_LINES: usize = 30;

/// Configures a [`NatsServer`] before starting it.
///
/// ```no_run
/// # fn main() -> Result<(), nap_testkit::TestkitError> {
/// let server = nap_testkit::NatsServer::builder()
///     .max_payload(64 * 1024)
///     .extra_config(r#"authorization { token: "s3cr3t" }"#)
///     .start()?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct NatsServerBuilder {
    binary: Option<PathBuf>,
    extra_config: String,
    max_payload: Option<u64>,
    jetstream: bool,
    ready_timeout: Duration,
}

impl Default for NatsServerBuilder {
    fn default() -> Self {
        Self {
            binary: None,
            extra_config: String::new(),
            max_payload: None,
            jetstream: false,
            ready_timeout: DEFAULT_READY_TIMEOUT,
        }
    }
}

impl NatsServerBuilder {
    /// A builder with the defaults: binary from [`find_nats_server`], no
    /// extra config, the server's own `max_payload`, JetStream off, a 10 s
    /// ready timeout.
    pub fn new() -> Self {
        Self::default()
    }

    /// Use this `nats-server` binary instead of looking one up.
    pub fn binary(mut self, path: impl Into<PathBuf>) -> Self {
        self.binary = Some(path.into());
        self
    }

    /// Append raw nats-server configuration text (users, tokens, nkeys,
    /// accounts, ...) to the generated config file. May be called more than
    /// once; the pieces are appended in order.
    pub fn extra_config(mut self, text: impl AsRef<str>) -> Self {
        self.extra_config.push_str(text.as_ref());
        self.extra_config.push('\n');
        self
    }

    /// Set the server's `max_payload` in bytes.
    pub fn max_payload(mut self, bytes: u64) -> Self {
        self.max_payload = Some(bytes);
        self
    }

    /// Turn JetStream on (stored in the server's temporary directory) or off.
    /// Off by default.
    pub fn jetstream(mut self, enabled: bool) -> Self {
        self.jetstream = enabled;
        self
    }

    /// How long to wait for the server to accept connections (default 10 s).
    pub fn ready_timeout(mut self, timeout: Duration) -> Self {
        self.ready_timeout = timeout;
        self
    }

    /// Start the server and wait until it accepts connections.
    pub fn start(&self) -> Result<NatsServer, TestkitError> {
        NatsServer::launch(self.clone(), None)
    }

    pub(crate) fn start_cluster_node(&self, role: ClusterRole) -> Result<NatsServer, TestkitError> {
        NatsServer::launch(self.clone(), Some(role))
    }

    pub(crate) fn ready_timeout_value(&self) -> Duration {
        self.ready_timeout
    }
}

/// What a cluster node needs on top of a single server's config.
#[derive(Debug, Clone)]
pub(crate) struct ClusterRole {
    /// The cluster's name.
    pub(crate) cluster_name: String,
    /// This node's `server_name`.
    pub(crate) server_name: String,
    /// Cluster (route) ports of the peers to solicit.
    pub(crate) routes: Vec<u16>,
}

/// The ports a running server listens on, all on 127.0.0.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ports {
    client: u16,
    monitoring: u16,
    cluster: Option<u16>,
}

/// A `nats-server` process listening on a free port of 127.0.0.1, with its
/// own temporary directory. Killed (and reaped) on [`stop`](Self::stop) and
/// on drop.
///
/// ```no_run
/// # fn main() -> Result<(), nap_testkit::TestkitError> {
/// let mut server = nap_testkit::NatsServer::start()?;
/// let url = server.url(); // nats://127.0.0.1:PORT
/// server.restart()?; // same port
/// assert_eq!(server.url(), url);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct NatsServer {
    binary: PathBuf,
    options: NatsServerBuilder,
    role: Option<ClusterRole>,
    ports: Ports,
    /// As announced in the `INFO` greeting of the last (re)start.
    version: ServerVersion,
    child: Option<Child>,
    config_path: PathBuf,
    log_path: PathBuf,
    ports_dir: PathBuf,
    // Dropped last: the process is gone before its directory is removed.
    dir: TempDir,
}

impl NatsServer {
    /// Start a server with the default options (see [`NatsServerBuilder::new`]).
    pub fn start() -> Result<NatsServer, TestkitError> {
        NatsServerBuilder::new().start()
    }

    /// A builder for a server with extra config, `max_payload`, JetStream ...
    pub fn builder() -> NatsServerBuilder {
        NatsServerBuilder::new()
    }

    /// The client URL, `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.ports.client)
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.ports.client
    }

    /// The HTTP monitoring URL, `http://127.0.0.1:PORT` (`/varz`, `/connz`, ...).
    pub fn monitoring_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.ports.monitoring)
    }

    /// The HTTP monitoring port.
    pub fn monitoring_port(&self) -> u16 {
        self.ports.monitoring
    }

    /// The route port, for a cluster node.
    pub fn cluster_port(&self) -> Option<u16> {
        self.ports.cluster
    }

    /// The process id while the server runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The server's version, as it announced it in its `INFO` greeting:
    /// lets a test skip a feature the server under test lacks (see
    /// [`ServerVersion::at_least`]).
    pub fn version(&self) -> ServerVersion {
        self.version
    }

    /// The binary that runs this server.
    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// The generated config file.
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// The file that receives the server's stdout and stderr (appended to
    /// across restarts).
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The server's temporary directory (config, log, JetStream store).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The last `lines` lines of the server's output.
    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.log_path, lines)
    }

    /// Kill the server and reap the process. Does nothing when it is not
    /// running. The ports stay reserved for [`restart`](Self::restart) only
    /// as long as nobody else takes them.
    pub fn stop(&mut self) -> Result<(), TestkitError> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let pid = child.id();
        tracing::debug!(pid, port = self.ports.client, "stopping nats-server");
        if let Err(source) = child.kill() {
            // Already exited: reaping below is all that is left to do.
            if source.kind() != std::io::ErrorKind::InvalidInput {
                return Err(TestkitError::Stop { pid, source });
            }
        }
        child
            .wait()
            .map(|_| ())
            .map_err(|source| TestkitError::Stop { pid, source })
    }

    /// Stop the server and start it again with the same config and the same
    /// ports, then wait until it accepts connections.
    pub fn restart(&mut self) -> Result<(), TestkitError> {
        self.stop()?;
        self.spawn_until_ready(true)
    }

    /// Replace the routes a cluster node solicits on its next (re)start.
    pub(crate) fn set_routes(&mut self, routes: Vec<u16>) {
        if let Some(role) = &mut self.role {
            role.routes = routes;
        }
    }

    fn launch(options: NatsServerBuilder, role: Option<ClusterRole>) -> Result<Self, TestkitError> {
        let binary = match &options.binary {
            Some(path) => path.clone(),
            None => find_nats_server()?,
        };
        let dir = tempfile::Builder::new()
            .prefix("nap-nats-")
            .tempdir()
            .map_err(|source| TestkitError::TempDir { source })?;
        let ports_dir = dir.path().join("ports");
        std::fs::create_dir_all(&ports_dir).map_err(|source| TestkitError::WriteFile {
            path: ports_dir.clone(),
            source,
        })?;
        let mut server = NatsServer {
            binary,
            options,
            ports: Ports {
                client: 0,
                monitoring: 0,
                cluster: role.as_ref().map(|_| 0),
            },
            role,
            // Replaced by the version the server announces once it is ready.
            version: ServerVersion::new(0, 0, 0),
            child: None,
            config_path: dir.path().join("nats-server.conf"),
            log_path: dir.path().join("nats-server.log"),
            ports_dir,
            dir,
        };
        server.spawn_until_ready(false)?;
        Ok(server)
    }

    /// Write the config, spawn, wait until ready. With `fixed_ports`, the
    /// ports of the previous run are reused, and a spawn that loses a port
    /// race is retried until the ready timeout.
    fn spawn_until_ready(&mut self, fixed_ports: bool) -> Result<(), TestkitError> {
        let config = self.render_config(fixed_ports);
        std::fs::write(&self.config_path, config).map_err(|source| TestkitError::WriteFile {
            path: self.config_path.clone(),
            source,
        })?;

        let timeout = self.options.ready_timeout;
        let started = Instant::now();
        loop {
            self.spawn()?;
            match self.wait_ready(started, timeout) {
                Ok((ports, version)) => {
                    if fixed_ports && ports != self.ports {
                        tracing::warn!(?ports, expected = ?self.ports, "restart changed ports");
                    }
                    self.ports = ports;
                    self.version = version;
                    tracing::debug!(url = %self.url(), pid = ?self.pid(), "nats-server ready");
                    return Ok(());
                }
                Err(err @ TestkitError::ExitedEarly { .. })
                    if fixed_ports
                        && started.elapsed() < timeout
                        && self.log_tail(TAIL_LINES).contains("address already in use") =>
                {
                    tracing::debug!(%err, "port still busy, retrying restart");
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(err) => {
                    // Never leave a half-started process behind.
                    let _ = self.stop();
                    return Err(err);
                }
            }
        }
    }

    fn spawn(&mut self) -> Result<(), TestkitError> {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .map_err(|source| TestkitError::WriteFile {
                path: self.log_path.clone(),
                source,
            })?;
        let log_err = log.try_clone().map_err(|source| TestkitError::WriteFile {
            path: self.log_path.clone(),
            source,
        })?;
        let child = Command::new(&self.binary)
            .arg("-c")
            .arg(&self.config_path)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            .spawn()
            .map_err(|source| TestkitError::Spawn {
                binary: self.binary.clone(),
                source,
            })?;
        tracing::debug!(pid = child.id(), binary = %self.binary.display(), "spawned nats-server");
        self.child = Some(child);
        Ok(())
    }

    /// Poll until the server reported its ports and answers with `INFO` on
    /// its client port; the ports and the version that `INFO` announces.
    fn wait_ready(
        &mut self,
        started: Instant,
        timeout: Duration,
    ) -> Result<(Ports, ServerVersion), TestkitError> {
        let mut reported: Option<Ports> = None;
        loop {
            let Some(child) = self.child.as_mut() else {
                return Err(self.not_ready(reported, started));
            };
            let pid = child.id();
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Err(TestkitError::ExitedEarly {
                    status,
                    stderr_tail: self.log_tail(TAIL_LINES),
                });
            }
            if reported.is_none() {
                reported = read_ports_file(&self.ports_dir, pid);
            }
            if let Some(ports) = reported
                && let Some(info) = probe::read_info(ports.client)
            {
                let version = ServerVersion::from_info(&info).ok_or_else(|| {
                    TestkitError::VersionUnknown {
                        source_of_version: format!("the INFO greeting on port {}", ports.client),
                        text: info
                            .get("version")
                            .map(ToString::to_string)
                            .unwrap_or_default(),
                    }
                })?;
                return Ok((ports, version));
            }
            if started.elapsed() >= timeout {
                return Err(self.not_ready(reported, started));
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    fn not_ready(&self, reported: Option<Ports>, started: Instant) -> TestkitError {
        TestkitError::NotReady {
            url: match reported {
                Some(p) => format!("nats://127.0.0.1:{}", p.client),
                None => "nats://127.0.0.1 (port never reported)".to_owned(),
            },
            waited: started.elapsed(),
            stderr_tail: self.log_tail(TAIL_LINES),
        }
    }

    fn render_config(&self, fixed_ports: bool) -> String {
        let port = |p: u16| -> String {
            if fixed_ports {
                p.to_string()
            } else {
                "-1".to_owned() // nats-server picks a free port and reports it
            }
        };
        let mut c = String::from("# generated by nap-testkit\n");
        // `write!` into a String cannot fail.
        let _ = writeln!(c, "listen: \"127.0.0.1:{}\"", port(self.ports.client));
        let _ = writeln!(c, "http: \"127.0.0.1:{}\"", port(self.ports.monitoring));
        let _ = writeln!(
            c,
            "ports_file_dir: {}",
            quote(&self.ports_dir.to_string_lossy())
        );
        if let Some(max) = self.options.max_payload {
            let _ = writeln!(c, "max_payload: {max}");
        }
        if let Some(role) = &self.role {
            let _ = writeln!(c, "server_name: {}", quote(&role.server_name));
        }
        if self.options.jetstream {
            let store = self.dir.path().join("jetstream");
            let _ = writeln!(
                c,
                "jetstream {{ store_dir: {} }}",
                quote(&store.to_string_lossy())
            );
        }
        if let Some(role) = &self.role {
            let routes = role
                .routes
                .iter()
                .map(|p| format!("\"nats-route://127.0.0.1:{p}\""))
                .collect::<Vec<_>>()
                .join(", ");
            let _ = writeln!(
                c,
                "cluster {{\n  name: {}\n  listen: \"127.0.0.1:{}\"\n  routes: [{routes}]\n}}",
                quote(&role.cluster_name),
                port(self.ports.cluster.unwrap_or(0)),
            );
        }
        if !self.options.extra_config.is_empty() {
            c.push_str("\n# extra config\n");
            c.push_str(&self.options.extra_config);
        }
        c
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        if let Err(err) = self.stop() {
            tracing::warn!(%err, "could not stop nats-server on drop");
        }
    }
}

/// A double-quoted nats-server config string.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for ch in s.chars() {
        if ch == '"' || ch == '\\' {
            out.push('\\');
        }
        out.push(ch);
    }
    out.push('"');
    out
}

/// nats-server writes `<exe>_<pid>.ports` into `ports_file_dir` once all its
/// listeners are up: `{"nats":["nats://127.0.0.1:P"],"monitoring":[...],"cluster":[...]}`.
fn read_ports_file(dir: &Path, pid: u32) -> Option<Ports> {
    let suffix = format!("_{pid}.ports");
    let entry = std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .find(|e| e.file_name().to_string_lossy().ends_with(&suffix))?;
    let text = std::fs::read_to_string(entry.path()).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    let first_port = |key: &str| -> Option<u16> {
        let url = json.get(key)?.as_array()?.first()?.as_str()?;
        url.rsplit(':').next()?.parse().ok()
    };
    Some(Ports {
        client: first_port("nats")?,
        monitoring: first_port("monitoring")?,
        cluster: first_port("cluster"),
    })
}

/// The last `lines` lines of a file, or a note why there are none.
fn tail(path: &Path, lines: usize) -> String {
    let mut text = String::new();
    if let Err(err) = File::open(path).and_then(|mut f| {
        use std::io::Read as _;
        f.read_to_string(&mut text)
    }) {
        return format!("(no output: {err})");
    }
    let all: Vec<&str> = text.lines().collect();
    let start = all.len().saturating_sub(lines);
    let out = all[start..].join("\n");
    if out.is_empty() {
        "(no output)".to_owned()
    } else {
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn quote_escapes() {
        assert_eq!(quote(r#"a"b\c"#), r#""a\"b\\c""#);
    }

    #[test]
    fn ports_file_is_parsed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("nats-server_42.ports"),
            r#"{"nats":["nats://127.0.0.1:4242"],"monitoring":["http://127.0.0.1:8282"],"cluster":["nats://127.0.0.1:6262"]}"#,
        )
        .unwrap();
        assert_eq!(
            read_ports_file(dir.path(), 42),
            Some(Ports {
                client: 4242,
                monitoring: 8282,
                cluster: Some(6262)
            })
        );
        assert_eq!(read_ports_file(dir.path(), 43), None);
    }
}
