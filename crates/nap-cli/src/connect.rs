//! Connection flags in the NATS tools' conventions, contexts (§10.2) and
//! authentication, turned into an `async_nats` connection.
//!
//! Precedence: an explicit flag (or its environment variable) wins over the
//! context; the context is `--context`/`NATS_CONTEXT`, else the one selected
//! in `context.txt`; the server defaults to `nats://127.0.0.1:4222`.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use nap_nats::connect::{ConnectError, ConnectionConfig};

use crate::failure::{Failure, Status};

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

pub use nap_nats::connect::Connection;

impl ConnectArgs {
    /// The library configuration these flags describe, the NATS tools'
    /// environment variables (`NATS_URL`, `NATS_CONTEXT`, …) filling what
    /// was not given. The variables are read by the library, not by clap, so
    /// that a value from the environment never shows in a usage line as if
    /// it had been typed.
    pub fn config(&self) -> ConnectionConfig {
        // The environment first (`NATS_*`, `XDG_CONFIG_HOME`, `HOME`), then
        // every flag given on top of it.
        let env = ConnectionConfig::from_env();
        let text = |flag: &Option<String>, env: Option<String>| {
            flag.clone().filter(|s| !s.is_empty()).or(env)
        };
        let path = |flag: &Option<PathBuf>, env: Option<PathBuf>| flag.clone().or(env);
        ConnectionConfig {
            servers: text(&self.server, env.servers),
            context: text(&self.context, env.context),
            config_dir: env.config_dir,
            home: env.home,
            creds: path(&self.creds, env.creds),
            nkey: path(&self.nkey, env.nkey),
            user: text(&self.user, env.user),
            password: text(&self.password, env.password),
            token: text(&self.token, env.token),
            tls_cert: path(&self.tlscert, env.tls_cert),
            tls_key: path(&self.tlskey, env.tls_key),
            tls_ca: path(&self.tlsca, env.tls_ca),
            connect_timeout: None,
            name: Some("nap".to_owned()),
        }
    }
}

/// The exit status of a connection setup failure: a URL that is not a
/// NATS URL is a usage error, everything else a connection failure.
pub fn failure(error: ConnectError) -> Failure {
    let status = match &error {
        ConnectError::UnsupportedScheme { .. } | ConnectError::InvalidUrl { .. } => Status::Usage,
        _ => Status::Connection,
    };
    Failure::new(status, error)
}

/// Connects as the flags, environment and context say. A non-NATS URL is
/// [`Status::Usage`]; every other failure is [`Status::Connection`] and
/// names the server.
pub async fn connect(args: &ConnectArgs) -> Result<Connection, Failure> {
    let timeout = Duration::try_from_secs_f64(args.connect_timeout)
        .ok()
        .filter(|t| !t.is_zero())
        .ok_or_else(|| Failure::usage("--connect-timeout must be a positive number of seconds"))?;
    let mut config = args.config();
    // Named in the CLI's own words: the library cannot know the flags.
    if config.tls_cert.is_some() != config.tls_key.is_some() {
        return Err(Failure::usage(
            "--tlscert and --tlskey (NATS_CERT, NATS_KEY) go together: give both or neither",
        ));
    }
    config.connect_timeout = Some(timeout);
    config.connect().await.map_err(failure)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_become_the_library_config() {
        let args = ConnectArgs {
            server: Some("nats://flag:4222".into()),
            user: Some("fu".into()),
            ..ConnectArgs::default()
        };
        let config = args.config();
        assert_eq!(config.servers.as_deref(), Some("nats://flag:4222"));
        assert_eq!(config.user.as_deref(), Some("fu"));
        assert_eq!(config.name.as_deref(), Some("nap"));
    }

    #[test]
    fn a_non_nats_url_is_a_usage_error() {
        let error = ConnectError::UnsupportedScheme {
            url: "http://a".into(),
            scheme: "http".into(),
        };
        assert_eq!(failure(error).status, Status::Usage);
    }
}
