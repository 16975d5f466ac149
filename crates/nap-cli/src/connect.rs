//! Connection flags in the NATS tools' conventions, contexts (§10.2) and
//! authentication, turned into an `async_nats` connection.
//!
//! Precedence: an explicit flag (or its environment variable) wins over the
//! context; the context is `--context`/`NATS_CONTEXT`, else the one selected
//! in `context.txt`; the server defaults to `nats://127.0.0.1:4222`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use async_nats::ConnectOptions;
use clap::Args;
use nap_nats::identity::SenderKey;

use crate::context::{self, Context};
use crate::failure::{Failure, Status};

/// The server used when neither a flag nor a context names one.
pub const DEFAULT_SERVER: &str = "nats://127.0.0.1:4222";

/// Connection flags shared by every command.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Connection")]
pub struct ConnectArgs {
    /// NATS server URL(s), comma separated [env: NATS_URL] [default: the context's, else nats://127.0.0.1:4222]
    #[arg(long, short = 's', global = true, value_name = "URL")]
    pub server: Option<String>,
    /// NATS CLI context to use (~/.config/nats/context/NAME.json) [env: NATS_CONTEXT] [default: the selected one]
    #[arg(long, global = true, value_name = "NAME")]
    pub context: Option<String>,
    /// User credentials file (JWT and seed) [env: NATS_CREDS]
    #[arg(long, global = true, value_name = "FILE")]
    pub creds: Option<PathBuf>,
    /// File holding an NKEY seed [env: NATS_NKEY]
    #[arg(long, global = true, value_name = "FILE")]
    pub nkey: Option<PathBuf>,
    /// User name [env: NATS_USER]
    #[arg(long, global = true)]
    pub user: Option<String>,
    /// Password [env: NATS_PASSWORD]
    #[arg(long, global = true)]
    pub password: Option<String>,
    /// Authentication token [env: NATS_TOKEN]
    #[arg(long, global = true)]
    pub token: Option<String>,
    /// TLS client certificate [env: NATS_CERT]
    #[arg(long, global = true, value_name = "FILE")]
    pub tlscert: Option<PathBuf>,
    /// TLS client certificate key [env: NATS_KEY]
    #[arg(long, global = true, value_name = "FILE")]
    pub tlskey: Option<PathBuf>,
    /// TLS CA certificate to verify the server with [env: NATS_CA]
    #[arg(long, global = true, value_name = "FILE")]
    pub tlsca: Option<PathBuf>,
    /// Seconds to wait for the connection
    #[arg(long, global = true, default_value_t = 5.0, value_name = "SECS")]
    pub connect_timeout: f64,
}

impl ConnectArgs {
    /// These flags with the NATS tools' environment variables filling what
    /// was not given on the command line (`NATS_URL`, `NATS_CONTEXT`,
    /// `NATS_CREDS`, …). Read here rather than by clap, so that a value from
    /// the environment never shows in a usage line as if it had been typed.
    pub fn with_env(&self) -> ConnectArgs {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let path = |name: &str| var(name).map(PathBuf::from);
        ConnectArgs {
            server: self.server.clone().or_else(|| var("NATS_URL")),
            context: self.context.clone().or_else(|| var("NATS_CONTEXT")),
            creds: self.creds.clone().or_else(|| path("NATS_CREDS")),
            nkey: self.nkey.clone().or_else(|| path("NATS_NKEY")),
            user: self.user.clone().or_else(|| var("NATS_USER")),
            password: self.password.clone().or_else(|| var("NATS_PASSWORD")),
            token: self.token.clone().or_else(|| var("NATS_TOKEN")),
            tlscert: self.tlscert.clone().or_else(|| path("NATS_CERT")),
            tlskey: self.tlskey.clone().or_else(|| path("NATS_KEY")),
            tlsca: self.tlsca.clone().or_else(|| path("NATS_CA")),
            connect_timeout: self.connect_timeout,
        }
    }
}

/// The URL schemes a NATS client connects with.
const SCHEMES: [&str; 4] = ["nats", "tls", "ws", "wss"];

/// Where and how to connect, once flags and context are merged.
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

fn set_path(s: &str) -> Option<PathBuf> {
    set(s).map(|s| context::expand_home(&s))
}

impl Settings {
    /// Merges the flags over a context.
    pub fn merge(args: &ConnectArgs, context: Option<(String, Context)>) -> Settings {
        let (name, ctx) = match context {
            Some((name, ctx)) => (Some(name), ctx),
            None => (None, Context::default()),
        };
        Settings {
            context: name,
            url: args
                .server
                .clone()
                .filter(|s| !s.is_empty())
                .or_else(|| set(&ctx.url))
                .unwrap_or_else(|| DEFAULT_SERVER.to_owned()),
            creds: args.creds.clone().or_else(|| set_path(&ctx.creds)),
            nkey: args.nkey.clone().or_else(|| set_path(&ctx.nkey)),
            user: args.user.clone().or_else(|| set(&ctx.user)),
            password: args.password.clone().or_else(|| set(&ctx.password)),
            token: args.token.clone().or_else(|| set(&ctx.token)),
            cert: args.tlscert.clone().or_else(|| set_path(&ctx.cert)),
            key: args.tlskey.clone().or_else(|| set_path(&ctx.key)),
            ca: args.tlsca.clone().or_else(|| set_path(&ctx.ca)),
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

    /// The user key of `--creds` or `--nkey` (flags or context), which
    /// authenticates the connection and signs requests (§13.2.1, §13.6).
    pub fn sender_key(&self) -> anyhow::Result<Option<SenderKey>> {
        if let Some(creds) = &self.creds {
            let key = SenderKey::from_creds_file(creds)
                .with_context(|| format!("cannot use credentials file {}", creds.display()))?;
            return Ok(Some(key));
        }
        if let Some(path) = &self.nkey {
            let key = SenderKey::from_seed(&read_seed(path)?)
                .with_context(|| format!("cannot use NKEY seed file {}", path.display()))?;
            return Ok(Some(key));
        }
        Ok(None)
    }

    /// The `async_nats` options for these settings, and the user key they
    /// authenticate with, if any.
    pub async fn options(
        &self,
        timeout: Duration,
    ) -> anyhow::Result<(ConnectOptions, Option<SenderKey>)> {
        let mut options = nap_nats::connect_options()
            .name("nap")
            .connection_timeout(timeout);
        let key = self.sender_key()?;
        if let Some(key) = &key {
            // The key the connection authenticates with is the one that signs.
            options = key.apply(options)?;
        }
        if let Some(user) = &self.user {
            options =
                options.user_and_password(user.clone(), self.password.clone().unwrap_or_default());
        }
        if let Some(token) = &self.token {
            options = options.token(token.clone());
        }
        if let Some(ca) = &self.ca {
            options = options.add_root_certificates(ca.clone()).require_tls(true);
        }
        match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => {
                options = options
                    .add_client_certificate(cert.clone(), key.clone())
                    .require_tls(true);
            }
            (None, None) => {}
            _ => anyhow::bail!("a TLS client certificate needs both --tlscert and --tlskey"),
        }
        if let Some(prefix) = &self.inbox_prefix {
            options = options.custom_inbox_prefix(prefix);
        }
        Ok((options, key))
    }
}

/// The NKEY seed in a seed file: its first word starting with `S`, as the
/// `nats` CLI and `nk` write them.
fn read_seed(path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read NKEY seed file {}", path.display()))?;
    text.split_whitespace()
        .find(|word| word.starts_with('S') && word.len() > 2)
        .map(str::to_owned)
        .with_context(|| {
            format!(
                "{} holds no NKEY seed (a word starting with S)",
                path.display()
            )
        })
}

/// A connection and the user key it authenticated with, which signs
/// requests when present (§13).
#[derive(Debug, Clone)]
pub struct Connection {
    /// The NATS connection.
    pub nats: async_nats::Client,
    /// The `--creds`/`--nkey` key, if any.
    pub key: Option<SenderKey>,
}

/// Connects as the flags, environment and context say. Every failure is
/// [`Status::Connection`] and names the server.
pub async fn connect(args: &ConnectArgs) -> Result<Connection, Failure> {
    let args = &args.with_env();
    let context = context::resolve(args.context.as_deref())
        .map_err(|e| Failure::new(Status::Connection, e))?;
    let settings = Settings::merge(args, context);
    let timeout = Duration::try_from_secs_f64(args.connect_timeout)
        .ok()
        .filter(|t| !t.is_zero())
        .ok_or_else(|| Failure::usage("--connect-timeout must be a positive number of seconds"))?;
    let where_to = settings.describe();
    let (options, key) = settings.options(timeout).await.map_err(|e| {
        Failure::new(
            Status::Connection,
            e.context(format!("cannot connect to {where_to}")),
        )
    })?;
    tracing::debug!(server = %where_to, "connecting");
    let servers: Vec<&str> = settings.url.split(',').map(str::trim).collect();
    // A URL of another protocol is a usage error, not a connection failure.
    if let Some(other) = servers.iter().find(|s| {
        s.split_once("://")
            .is_some_and(|(scheme, _)| !SCHEMES.contains(&scheme.to_ascii_lowercase().as_str()))
    }) {
        return Err(Failure::usage(format!(
            "{other} is not a NATS server URL: use nats://, tls://, ws:// or wss://"
        )));
    }
    let parsed: Result<Vec<async_nats::ServerAddr>, _> = servers
        .iter()
        .map(|s| s.parse::<async_nats::ServerAddr>())
        .collect();
    let parsed = parsed.map_err(|e| {
        Failure::new(
            Status::Connection,
            anyhow::anyhow!("cannot connect to {where_to}: invalid server URL: {e}"),
        )
    })?;
    let nats = options.connect(parsed).await.map_err(|e| {
        Failure::new(
            Status::Connection,
            anyhow::anyhow!("cannot connect to {where_to}: {e}"),
        )
    })?;
    Ok(Connection { nats, key })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> (String, Context) {
        (
            "dev".to_owned(),
            Context {
                url: "nats://ctx:4222".into(),
                user: "cu".into(),
                password: "cp".into(),
                ..Context::default()
            },
        )
    }

    #[test]
    fn flags_win_over_the_context() {
        let args = ConnectArgs {
            server: Some("nats://flag:4222".into()),
            user: Some("fu".into()),
            ..ConnectArgs::default()
        };
        let s = Settings::merge(&args, Some(ctx()));
        assert_eq!(s.url, "nats://flag:4222");
        assert_eq!(s.user.as_deref(), Some("fu"));
        assert_eq!(s.password.as_deref(), Some("cp"));
        assert_eq!(s.describe(), "nats://flag:4222 (context \"dev\")");
    }

    #[test]
    fn the_context_fills_what_flags_leave_out() {
        let s = Settings::merge(&ConnectArgs::default(), Some(ctx()));
        assert_eq!(s.url, "nats://ctx:4222");
        assert_eq!(s.user.as_deref(), Some("cu"));
        assert_eq!(s.token, None);
        let s = Settings::merge(&ConnectArgs::default(), None);
        assert_eq!(s.url, DEFAULT_SERVER);
    }

    #[test]
    fn seed_files_are_read_by_their_seed_word() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("user.nk");
        std::fs::write(&path, "SUAEXAMPLE\n").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(read_seed(&path).ok().as_deref(), Some("SUAEXAMPLE"));
        std::fs::write(&path, "nothing here").unwrap_or_else(|e| panic!("{e}"));
        assert!(read_seed(&path).is_err());
    }
}
