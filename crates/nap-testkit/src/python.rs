//! The Python peers of the interop tests: the interpreter of the venv that
//! `cargo xtask setup` builds (with `synadia-ai-agents` and
//! `synadia-ai-agent-service`), and the Python peer scripts shipped here.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::TestkitError;

/// Env var naming the Python interpreter of the interop venv.
pub const PYTHON_ENV: &str = "NAP_PYTHON";

/// The interop venv's python: env `NAP_PYTHON` when set, else
/// `<tools dir>/venv/bin/python`. Interop tests never skip: when there is
/// none, the error names `cargo xtask setup`.
pub fn find_python() -> Result<PathBuf, TestkitError> {
    python_from(std::env::var_os(PYTHON_ENV), &crate::tools_dir())
}

/// [`find_python`] with its inputs explicit.
pub fn python_from(env_value: Option<OsString>, tools_dir: &Path) -> Result<PathBuf, TestkitError> {
    if let Some(path) = env_value.filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    let venv = tools_dir.join("venv").join("bin").join("python");
    if venv.exists() {
        Ok(venv)
    } else {
        Err(TestkitError::PythonNotFound { searched: venv })
    }
}

/// A Python peer script shipped with this crate (`python/NAME`), such as
/// `agent.py`, a `synadia_ai.agent_service.AgentService` agent (see its
/// docstring for what it answers).
pub fn python_peer(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("python")
        .join(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_wins_and_absence_names_setup() {
        let dir = Path::new("/nonexistent-nap-tools");
        assert_eq!(
            python_from(Some("/x/python".into()), dir).ok(),
            Some(PathBuf::from("/x/python"))
        );
        let err = python_from(None, dir)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("cargo xtask setup"), "{err}");
        assert!(python_peer("agent.py").exists());
    }
}
