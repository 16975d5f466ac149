//! Connection setup in the NATS tools' conventions: server URLs, NATS CLI
//! contexts (§10.2), credentials files, NKEY seeds, user and password,
//! tokens and TLS, turned into an `async_nats` connection and the user key
//! that signs requests (§13.2.1).
//!
//! Precedence, as in the `nats` CLI and `nap`: a value set in the
//! [`ConnectionConfig`] (from flags or the `NATS_*` environment) wins over
//! the context; the context is the one named in the config (`NATS_CONTEXT`),
//! else the one selected in `context.txt`; the server defaults to
//! [`DEFAULT_SERVER`].
//!
//! Building a configuration needs no server:
//!
//! ```
//! use nap_nats::connect::{ConnectError, ConnectionConfig, DEFAULT_SERVER};
//!
//! // Variables as a process would see them; `from_env()` reads the real ones.
//! let config = ConnectionConfig::from_vars(|name| match name {
//!     "NATS_URL" => Some("nats://a:4222,nats://b:4222".to_owned()),
//!     "NATS_USER" => Some("alice".to_owned()),
//!     _ => None,
//! });
//! let settings = config.resolve()?;
//! assert_eq!(settings.url, "nats://a:4222,nats://b:4222");
//! assert_eq!(settings.user.as_deref(), Some("alice"));
//!
//! // Nothing set: the default server.
//! let settings = ConnectionConfig::from_vars(|_| None).resolve()?;
//! assert_eq!(settings.url, DEFAULT_SERVER);
//!
//! // Only NATS URL schemes are accepted.
//! let config = ConnectionConfig { servers: Some("http://a:4222".into()), ..Default::default() };
//! assert!(matches!(config.resolve(), Err(ConnectError::UnsupportedScheme { .. })));
//! # Ok::<(), ConnectError>(())
//! ```
//!
//! Connecting:
//!
//! ```no_run
//! # async fn run() -> Result<(), nap_nats::connect::ConnectError> {
//! let connection = nap_nats::connect::ConnectionConfig::from_env().connect().await?;
//! let client = nap_nats::Client::builder(connection.nats.clone());
//! # let _ = (client, connection.key); Ok(()) }
//! ```

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_nats::{ConnectErrorKind, ConnectOptions, ServerAddr};
use serde::Deserialize;

use crate::identity::{KeyError, SenderKey};

/// The server used when neither the configuration nor a context names one.
pub const DEFAULT_SERVER: &str = "nats://127.0.0.1:4222";

/// How long [`ConnectionConfig::connect`] waits by default: 5 s.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// URL schemes a NATS server address may have.
pub const NATS_SCHEMES: [&str; 4] = ["nats", "tls", "ws", "wss"];

/// The connection part of a `nats` CLI context file. Other keys
/// (`jetstream_domain`, `color_scheme`, ...) are ignored; empty strings mean
/// "not set", as the `nats` CLI writes them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Context {
    /// Free text.
    pub description: String,
    /// Server URL(s), comma separated.
    pub url: String,
    /// User name.
    pub user: String,
    /// Password.
    pub password: String,
    /// Authentication token.
    pub token: String,
    /// Path of a credentials file (JWT and seed).
    pub creds: String,
    /// Path of a file holding an NKEY seed.
    pub nkey: String,
    /// Path of a TLS client certificate.
    pub cert: String,
    /// Path of the TLS client certificate's key.
    pub key: String,
    /// Path of a TLS CA certificate.
    pub ca: String,
    /// Custom inbox prefix.
    pub inbox_prefix: String,
}

/// Reading a context failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ContextError {
    /// Neither `XDG_CONFIG_HOME` nor `HOME` is set.
    #[error("context {name:?} cannot be found: neither XDG_CONFIG_HOME nor HOME is set")]
    NoConfigDir {
        /// The context asked for.
        name: String,
    },
    /// A name that would leave the context directory.
    #[error("invalid context name {name:?}: a context name is a file name, without / or \\")]
    InvalidName {
        /// The name.
        name: String,
    },
    /// The context file does not exist.
    #[error("unknown context {name:?}: {} does not exist", path.display())]
    NotFound {
        /// The context asked for.
        name: String,
        /// Where it was looked for.
        path: PathBuf,
    },
    /// The context file or `context.txt` cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The context file is not the JSON the `nats` CLI writes.
    #[error("context file {} is not valid: {source}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
}

/// The `nats` configuration directory: `$XDG_CONFIG_HOME/nats`, else
/// `$HOME/.config/nats`.
pub fn config_dir_from(
    xdg_config_home: Option<OsString>,
    home: Option<OsString>,
) -> Option<PathBuf> {
    if let Some(xdg) = xdg_config_home.filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(xdg).join("nats"));
    }
    home.filter(|v| !v.is_empty())
        .map(|home| PathBuf::from(home).join(".config").join("nats"))
}

/// [`config_dir_from`] this process's environment.
pub fn config_dir() -> Option<PathBuf> {
    config_dir_from(
        std::env::var_os("XDG_CONFIG_HOME"),
        std::env::var_os("HOME"),
    )
}

/// The selected context's name, from `dir/context.txt`, if any.
pub fn selected(dir: &Path) -> Result<Option<String>, ContextError> {
    let path = dir.join("context.txt");
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Some(text.trim().to_owned()).filter(|name| !name.is_empty())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ContextError::Read { path, source }),
    }
}

/// Reads context `name` from `dir/context/name.json`.
pub fn load(dir: &Path, name: &str) -> Result<Context, ContextError> {
    let invalid = name.is_empty()
        || name.contains(['/', '\\'])
        || name == "."
        || name == ".."
        || name.contains('\0');
    if invalid {
        return Err(ContextError::InvalidName {
            name: name.to_owned(),
        });
    }
    let path = dir.join("context").join(format!("{name}.json"));
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ContextError::NotFound {
                name: name.to_owned(),
                path,
            });
        }
        Err(source) => return Err(ContextError::Read { path, source }),
    };
    serde_json::from_str(&text).map_err(|source| ContextError::Parse { path, source })
}

/// The context to use, looked up in the configuration directory `dir`:
/// `explicit` when given, else the selected one, else none. Returns its
/// name and contents.
pub fn resolve_in(
    dir: Option<&Path>,
    explicit: Option<&str>,
) -> Result<Option<(String, Context)>, ContextError> {
    match (explicit, dir) {
        (Some(name), Some(dir)) => Ok(Some((name.to_owned(), load(dir, name)?))),
        (Some(name), None) => Err(ContextError::NoConfigDir {
            name: name.to_owned(),
        }),
        (None, Some(dir)) => match selected(dir)? {
            Some(name) => {
                let context = load(dir, &name)?;
                Ok(Some((name, context)))
            }
            None => Ok(None),
        },
        (None, None) => Ok(None),
    }
}

/// [`resolve_in`] the [`config_dir`] of this process.
pub fn resolve(explicit: Option<&str>) -> Result<Option<(String, Context)>, ContextError> {
    resolve_in(config_dir().as_deref(), explicit)
}

/// Expands a leading `~/` with `home`, as the `nats` CLI does for paths in
/// context files.
pub fn expand_home_with(path: &str, home: Option<&Path>) -> PathBuf {
    match (path.strip_prefix("~/"), home) {
        (Some(rest), Some(home)) => home.join(rest),
        _ => PathBuf::from(path),
    }
}

/// [`expand_home_with`] this process's `HOME`.
pub fn expand_home(path: &str) -> PathBuf {
    expand_home_with(path, std::env::var_os("HOME").map(PathBuf::from).as_deref())
}

/// Why a connection could not be set up. Each variant says which file or
/// server it is about.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// A server URL has a scheme NATS does not speak (`http://`, ...): a
    /// usage error, not a connection failure.
    #[error("invalid server URL {url:?}: the scheme {scheme:?} is not one of nats, tls, ws, wss")]
    UnsupportedScheme {
        /// The URL.
        url: String,
        /// Its scheme.
        scheme: String,
    },
    /// A server URL cannot be parsed.
    #[error("invalid server URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The context cannot be read.
    #[error(transparent)]
    Context(#[from] ContextError),
    /// The credentials file cannot be used.
    #[error("cannot use credentials file {}: {source}", path.display())]
    Creds {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: KeyError,
    },
    /// The NKEY seed file cannot be used.
    #[error("cannot use NKEY seed file {}: {reason}", path.display())]
    Nkey {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A TLS file cannot be read, or a client certificate lacks its key.
    #[error("TLS: {reason}")]
    TlsFile {
        /// Why.
        reason: String,
    },
    /// The server refused the credentials.
    #[error("cannot connect to {server}: authentication failed: {source}")]
    Auth {
        /// The server(s) and context.
        server: String,
        /// The client's error.
        #[source]
        source: async_nats::ConnectError,
    },
    /// The TLS handshake failed.
    #[error("cannot connect to {server}: TLS: {source}")]
    Tls {
        /// The server(s) and context.
        server: String,
        /// The client's error.
        #[source]
        source: async_nats::ConnectError,
    },
    /// No server could be reached in time.
    #[error("cannot connect to {server}: {source}")]
    Unreachable {
        /// The server(s) and context.
        server: String,
        /// The client's error.
        #[source]
        source: async_nats::ConnectError,
    },
}

/// Where and how to connect, before the context is merged in. Every field
/// left `None` falls back to the context, then to the default.
#[derive(Debug, Clone, Default)]
pub struct ConnectionConfig {
    /// Server URL(s), comma separated (`NATS_URL`).
    pub servers: Option<String>,
    /// The context to use (`NATS_CONTEXT`); `None` uses the selected one.
    pub context: Option<String>,
    /// The `nats` configuration directory holding `context/` and
    /// `context.txt`; `None` means no contexts at all.
    pub config_dir: Option<PathBuf>,
    /// The home directory that `~/` in context paths expands to.
    pub home: Option<PathBuf>,
    /// Credentials file, JWT and seed (`NATS_CREDS`).
    pub creds: Option<PathBuf>,
    /// File holding an NKEY seed (`NATS_NKEY`).
    pub nkey: Option<PathBuf>,
    /// User name (`NATS_USER`).
    pub user: Option<String>,
    /// Password (`NATS_PASSWORD`).
    pub password: Option<String>,
    /// Token (`NATS_TOKEN`).
    pub token: Option<String>,
    /// TLS client certificate (`NATS_CERT`).
    pub tls_cert: Option<PathBuf>,
    /// TLS client certificate key (`NATS_KEY`).
    pub tls_key: Option<PathBuf>,
    /// TLS CA certificate to verify the server with (`NATS_CA`).
    pub tls_ca: Option<PathBuf>,
    /// How long to wait for the connection; `None` is
    /// [`DEFAULT_CONNECT_TIMEOUT`].
    pub connect_timeout: Option<Duration>,
    /// The connection name servers show; `None` leaves it unset.
    pub name: Option<String>,
}

impl ConnectionConfig {
    /// The configuration this process's environment gives: `NATS_URL`,
    /// `NATS_CONTEXT`, `NATS_CREDS`, `NATS_NKEY`, `NATS_USER`,
    /// `NATS_PASSWORD`, `NATS_TOKEN`, `NATS_CERT`, `NATS_KEY`, `NATS_CA`,
    /// and the configuration directory from `XDG_CONFIG_HOME` or `HOME`.
    pub fn from_env() -> ConnectionConfig {
        ConnectionConfig::from_vars(|name| std::env::var(name).ok())
    }

    /// [`ConnectionConfig::from_env`] with the variables looked up by
    /// `var` instead of in the process environment (for tests, or a
    /// program's own configuration). Empty values count as unset.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> ConnectionConfig {
        let get = |name: &str| var(name).filter(|v| !v.is_empty());
        let path = |name: &str| get(name).map(PathBuf::from);
        ConnectionConfig {
            servers: get("NATS_URL"),
            context: get("NATS_CONTEXT"),
            config_dir: config_dir_from(
                get("XDG_CONFIG_HOME").map(OsString::from),
                get("HOME").map(OsString::from),
            ),
            home: path("HOME"),
            creds: path("NATS_CREDS"),
            nkey: path("NATS_NKEY"),
            user: get("NATS_USER"),
            password: get("NATS_PASSWORD"),
            token: get("NATS_TOKEN"),
            tls_cert: path("NATS_CERT"),
            tls_key: path("NATS_KEY"),
            tls_ca: path("NATS_CA"),
            connect_timeout: None,
            name: None,
        }
    }

    /// Reads the context and merges it under this configuration, checking
    /// the server URLs' schemes.
    pub fn resolve(&self) -> Result<Settings, ConnectError> {
        let context = resolve_in(self.config_dir.as_deref(), self.context.as_deref())?;
        let settings = Settings::merge(self, context);
        settings.server_addrs()?;
        Ok(settings)
    }

    /// Resolves and connects. See [`Settings::connect`].
    pub async fn connect(&self) -> Result<Connection, ConnectError> {
        self.resolve()?
            .connect(
                self.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT),
                self.name.as_deref(),
            )
            .await
    }
}

/// Where and how to connect, once configuration and context are merged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    /// The context used, if any.
    pub context: Option<String>,
    /// Server URL(s), comma separated.
    pub url: String,
    /// Credentials file.
    pub creds: Option<PathBuf>,
    /// NKEY seed file.
    pub nkey: Option<PathBuf>,
    /// User name.
    pub user: Option<String>,
    /// Password.
    pub password: Option<String>,
    /// Token.
    pub token: Option<String>,
    /// TLS client certificate.
    pub cert: Option<PathBuf>,
    /// TLS client key.
    pub key: Option<PathBuf>,
    /// TLS CA.
    pub ca: Option<PathBuf>,
    /// Custom inbox prefix.
    pub inbox_prefix: Option<String>,
}

fn set(s: &str) -> Option<String> {
    Some(s.to_owned()).filter(|s| !s.is_empty())
}

impl Settings {
    /// Merges `config` over a context (name and contents).
    pub fn merge(config: &ConnectionConfig, context: Option<(String, Context)>) -> Settings {
        let (name, ctx) = match context {
            Some((name, ctx)) => (Some(name), ctx),
            None => (None, Context::default()),
        };
        let home = config.home.as_deref();
        let path = |s: &str| set(s).map(|s| expand_home_with(&s, home));
        Settings {
            context: name,
            url: config
                .servers
                .clone()
                .filter(|s| !s.is_empty())
                .or_else(|| set(&ctx.url))
                .unwrap_or_else(|| DEFAULT_SERVER.to_owned()),
            creds: config.creds.clone().or_else(|| path(&ctx.creds)),
            nkey: config.nkey.clone().or_else(|| path(&ctx.nkey)),
            user: config.user.clone().or_else(|| set(&ctx.user)),
            password: config.password.clone().or_else(|| set(&ctx.password)),
            token: config.token.clone().or_else(|| set(&ctx.token)),
            cert: config.tls_cert.clone().or_else(|| path(&ctx.cert)),
            key: config.tls_key.clone().or_else(|| path(&ctx.key)),
            ca: config.tls_ca.clone().or_else(|| path(&ctx.ca)),
            inbox_prefix: set(&ctx.inbox_prefix),
        }
    }

    /// Where the connection goes, for messages: the URL and the context.
    pub fn describe(&self) -> String {
        match &self.context {
            Some(name) => format!("{} (context {name:?})", self.url),
            None => self.url.clone(),
        }
    }

    /// The server addresses in [`Settings::url`], checked: a scheme, when
    /// present, must be one of [`NATS_SCHEMES`].
    pub fn server_addrs(&self) -> Result<Vec<ServerAddr>, ConnectError> {
        self.url
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|url| {
                if let Some((scheme, _)) = url.split_once("://")
                    && !NATS_SCHEMES.contains(&scheme.to_ascii_lowercase().as_str())
                {
                    return Err(ConnectError::UnsupportedScheme {
                        url: url.to_owned(),
                        scheme: scheme.to_owned(),
                    });
                }
                url.parse::<ServerAddr>()
                    .map_err(|e| ConnectError::InvalidUrl {
                        url: url.to_owned(),
                        reason: e.to_string(),
                    })
            })
            .collect()
    }

    /// The user key of the credentials or NKEY seed file, which
    /// authenticates the connection and signs requests (§13.2.1, §13.6).
    pub fn sender_key(&self) -> Result<Option<SenderKey>, ConnectError> {
        if let Some(creds) = &self.creds {
            let key = SenderKey::from_creds_file(creds).map_err(|source| ConnectError::Creds {
                path: creds.clone(),
                source,
            })?;
            return Ok(Some(key));
        }
        if let Some(path) = &self.nkey {
            let nkey_error = |reason: String| ConnectError::Nkey {
                path: path.clone(),
                reason,
            };
            let seed = read_seed(path).map_err(nkey_error)?;
            let key = SenderKey::from_seed(&seed).map_err(|e| nkey_error(e.to_string()))?;
            return Ok(Some(key));
        }
        Ok(None)
    }

    /// The `async_nats` options for these settings (on top of
    /// [`crate::connect_options`]), and the user key they authenticate
    /// with, if any.
    pub fn options(
        &self,
        timeout: Duration,
    ) -> Result<(ConnectOptions, Option<SenderKey>), ConnectError> {
        let mut options = crate::connect_options().connection_timeout(timeout);
        let key = self.sender_key()?;
        if let Some(key) = &key {
            // The key the connection authenticates with is the one that signs.
            options = key.apply(options).map_err(|source| match &self.creds {
                Some(path) => ConnectError::Creds {
                    path: path.clone(),
                    source,
                },
                None => ConnectError::Nkey {
                    path: self.nkey.clone().unwrap_or_default(),
                    reason: source.to_string(),
                },
            })?;
        }
        if let Some(user) = &self.user {
            options =
                options.user_and_password(user.clone(), self.password.clone().unwrap_or_default());
        }
        if let Some(token) = &self.token {
            options = options.token(token.clone());
        }
        if let Some(ca) = &self.ca {
            readable(ca, "CA certificate")?;
            options = options.add_root_certificates(ca.clone()).require_tls(true);
        }
        match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => {
                readable(cert, "client certificate")?;
                readable(key, "client key")?;
                options = options
                    .add_client_certificate(cert.clone(), key.clone())
                    .require_tls(true);
            }
            (None, None) => {}
            _ => {
                return Err(ConnectError::TlsFile {
                    reason: "a TLS client certificate needs both the certificate and its key"
                        .to_owned(),
                });
            }
        }
        if let Some(prefix) = &self.inbox_prefix {
            options = options.custom_inbox_prefix(prefix);
        }
        Ok((options, key))
    }

    /// Connects, waiting at most `timeout`, under the connection `name`
    /// when given. Failures name the server and the context.
    pub async fn connect(
        &self,
        timeout: Duration,
        name: Option<&str>,
    ) -> Result<Connection, ConnectError> {
        let addrs = self.server_addrs()?;
        let (mut options, key) = self.options(timeout)?;
        if let Some(name) = name {
            options = options.name(name);
        }
        let server = self.describe();
        tracing::debug!(server = %server, "connecting");
        let nats = options.connect(addrs).await.map_err(|source| {
            let server = server.clone();
            match source.kind() {
                ConnectErrorKind::Authentication | ConnectErrorKind::AuthorizationViolation => {
                    ConnectError::Auth { server, source }
                }
                ConnectErrorKind::Tls => ConnectError::Tls { server, source },
                _ => ConnectError::Unreachable { server, source },
            }
        })?;
        Ok(Connection { nats, key })
    }
}

fn readable(path: &Path, what: &str) -> Result<(), ConnectError> {
    std::fs::metadata(path)
        .map(|_| ())
        .map_err(|e| ConnectError::TlsFile {
            reason: format!("cannot read the {what} {}: {e}", path.display()),
        })
}

/// The NKEY seed in a seed file: its first word starting with `S`, as the
/// `nats` CLI and `nk` write them.
fn read_seed(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read it: {e}"))?;
    text.split_whitespace()
        .find(|word| word.starts_with('S') && word.len() > 2)
        .map(str::to_owned)
        .ok_or_else(|| "it holds no NKEY seed (a word starting with S)".to_owned())
}

/// A connection and the user key it authenticated with, which signs
/// requests when present (§13).
#[derive(Debug, Clone)]
pub struct Connection {
    /// The NATS connection.
    pub nats: async_nats::Client,
    /// The credentials' or NKEY seed's key, if any.
    pub key: Option<SenderKey>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ctx() -> (String, Context) {
        (
            "dev".to_owned(),
            Context {
                url: "nats://ctx:4222".into(),
                user: "cu".into(),
                password: "cp".into(),
                creds: "~/x.creds".into(),
                ..Context::default()
            },
        )
    }

    #[test]
    fn config_wins_over_the_context() {
        let config = ConnectionConfig {
            servers: Some("nats://flag:4222".into()),
            user: Some("fu".into()),
            home: Some("/h".into()),
            ..ConnectionConfig::default()
        };
        let s = Settings::merge(&config, Some(ctx()));
        assert_eq!(s.url, "nats://flag:4222");
        assert_eq!(s.user.as_deref(), Some("fu"));
        assert_eq!(s.password.as_deref(), Some("cp"));
        assert_eq!(s.creds, Some(PathBuf::from("/h/x.creds")));
        assert_eq!(s.describe(), "nats://flag:4222 (context \"dev\")");
    }

    #[test]
    fn the_context_fills_what_the_config_leaves_out() {
        let s = Settings::merge(&ConnectionConfig::default(), Some(ctx()));
        assert_eq!(s.url, "nats://ctx:4222");
        assert_eq!(s.user.as_deref(), Some("cu"));
        assert_eq!(s.token, None);
        let s = Settings::merge(&ConnectionConfig::default(), None);
        assert_eq!(s.url, DEFAULT_SERVER);
    }

    #[test]
    fn schemes_are_checked() {
        let s = |url: &str| Settings {
            url: url.to_owned(),
            ..Settings::default()
        };
        assert!(
            s("nats://a:1, tls://b:2,ws://c:3,wss://d:4,e:5")
                .server_addrs()
                .is_ok()
        );
        assert!(matches!(
            s("nats://a:1,http://b:2").server_addrs(),
            Err(ConnectError::UnsupportedScheme { scheme, .. }) if scheme == "http"
        ));
    }

    #[test]
    fn seed_files_are_read_by_their_seed_word() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("user.nk");
        std::fs::write(&path, "SUAEXAMPLE\n").unwrap();
        assert_eq!(read_seed(&path).ok().as_deref(), Some("SUAEXAMPLE"));
        std::fs::write(&path, "nothing here").unwrap();
        assert!(read_seed(&path).is_err());
    }

    #[test]
    fn config_dir_prefers_xdg() {
        assert_eq!(
            config_dir_from(Some("/x".into()), Some("/h".into())),
            Some(PathBuf::from("/x/nats"))
        );
        assert_eq!(
            config_dir_from(Some("".into()), Some("/h".into())),
            Some(PathBuf::from("/h/.config/nats"))
        );
        assert_eq!(config_dir_from(None, None), None);
    }

    #[test]
    fn reads_a_nats_cli_context_and_ignores_unknown_keys() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("context")).unwrap();
        std::fs::write(
            dir.path().join("context/dev.json"),
            r#"{"description":"dev","url":"nats://h:4333","token":"","user":"a",
                "password":"b","creds":"","nkey":"","cert":"","key":"","ca":"",
                "nsc":"","jetstream_domain":"","color_scheme":"","tls_first":false}"#,
        )
        .unwrap();
        let ctx = load(dir.path(), "dev").unwrap();
        assert_eq!(ctx.url, "nats://h:4333");
        assert_eq!((ctx.user.as_str(), ctx.password.as_str()), ("a", "b"));
        assert!(ctx.token.is_empty());

        assert_eq!(selected(dir.path()).unwrap(), None);
        std::fs::write(dir.path().join("context.txt"), "dev\n").unwrap();
        assert_eq!(selected(dir.path()).unwrap().as_deref(), Some("dev"));
    }

    #[test]
    fn refuses_names_that_leave_the_directory_and_says_where_it_looked() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            load(dir.path(), "../etc/passwd"),
            Err(ContextError::InvalidName { .. })
        ));
        let err = load(dir.path(), "nope").unwrap_err();
        assert!(err.to_string().contains("nope.json"), "{err}");
    }
}
