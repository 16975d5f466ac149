//! NATS CLI contexts (§10.2): `~/.config/nats/context/NAME.json`, and the
//! selected one named in `~/.config/nats/context.txt`, as the `nats` CLI
//! writes them. `XDG_CONFIG_HOME` replaces `~/.config` when set.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde::Deserialize;

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

/// The selected context's name, from `context.txt`, if any.
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

/// The context to use: `explicit` (from `--context` or `NATS_CONTEXT`),
/// else the selected one, else none. Returns its name and contents.
pub fn resolve(explicit: Option<&str>) -> Result<Option<(String, Context)>, ContextError> {
    let dir = config_dir();
    match (explicit, dir) {
        (Some(name), Some(dir)) => Ok(Some((name.to_owned(), load(&dir, name)?))),
        (Some(name), None) => Err(ContextError::NoConfigDir {
            name: name.to_owned(),
        }),
        (None, Some(dir)) => match selected(&dir)? {
            Some(name) => {
                let context = load(&dir, &name)?;
                Ok(Some((name, context)))
            }
            None => Ok(None),
        },
        (None, None) => Ok(None),
    }
}

/// Expands a leading `~/` with `HOME`, as the `nats` CLI does for paths
/// in context files.
pub fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(path),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

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
