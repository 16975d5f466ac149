//! The version of a `nats-server`: what `nats-server --version` prints, and
//! what a running server announces in its `INFO` greeting.
//!
//! Tests that exercise a feature an older server lacks can ask
//! [`NatsServer::version`](crate::NatsServer::version) and skip:
//!
//! ```no_run
//! # fn main() -> Result<(), nap_testkit::TestkitError> {
//! let server = nap_testkit::NatsServer::start()?;
//! if !server.version().at_least(2, 10) {
//!     eprintln!("skipped: needs nats-server 2.10, runs {}", server.version());
//!     return Ok(());
//! }
//! # Ok(()) }
//! ```

use std::fmt;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::TestkitError;

/// A nats-server release number, `MAJOR.MINOR.PATCH` (a pre-release or
/// build suffix such as `-beta.1` is dropped).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServerVersion {
    /// The major number (2 for every server nap supports).
    pub major: u32,
    /// The minor number (9 for Debian's 2.9.x).
    pub minor: u32,
    /// The patch number.
    pub patch: u32,
}

impl ServerVersion {
    /// A version from its three numbers.
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        ServerVersion {
            major,
            minor,
            patch,
        }
    }

    /// Reads `nats-server: v2.9.10`, `v2.15.1`, `2.10.0-beta.1` and the like:
    /// the first word that looks like `[v]MAJOR.MINOR[.PATCH]`. `None` when
    /// there is none.
    pub fn parse(text: &str) -> Option<Self> {
        text.split_whitespace().find_map(Self::parse_word)
    }

    fn parse_word(word: &str) -> Option<Self> {
        let word = word.strip_prefix('v').unwrap_or(word);
        // Drop a pre-release or build suffix: `2.10.0-beta.1`, `2.9.10+abc`.
        let core = word.split(['-', '+']).next()?;
        let mut numbers = core.split('.').map(str::parse::<u32>);
        let major = numbers.next()?.ok()?;
        let minor = numbers.next()?.ok()?;
        let patch = match numbers.next() {
            Some(patch) => patch.ok()?,
            None => 0,
        };
        if numbers.next().is_some() {
            return None;
        }
        Some(ServerVersion::new(major, minor, patch))
    }

    /// True when this version is `major.minor` or newer.
    pub fn at_least(&self, major: u32, minor: u32) -> bool {
        (self.major, self.minor) >= (major, minor)
    }

    /// Runs `binary --version` and reads its answer.
    pub fn of_binary(binary: &Path) -> Result<Self, TestkitError> {
        let out = Command::new(binary)
            .arg("--version")
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .map_err(|source| TestkitError::Spawn {
                binary: binary.to_path_buf(),
                source,
            })?;
        let text = String::from_utf8_lossy(&out.stdout);
        Self::parse(&text)
            .filter(|_| out.status.success())
            .ok_or_else(|| TestkitError::VersionUnknown {
                source_of_version: format!("`{} --version`", binary.display()),
                text: text.trim().to_owned(),
            })
    }

    /// Reads the `version` field of a server's `INFO {...}` greeting (the
    /// JSON after `INFO `).
    pub(crate) fn from_info(info: &serde_json::Value) -> Option<Self> {
        Self::parse_word(info.get("version")?.as_str()?)
    }
}

impl fmt::Display for ServerVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_servers_print() {
        assert_eq!(
            ServerVersion::parse("nats-server: v2.9.10"),
            Some(ServerVersion::new(2, 9, 10))
        );
        assert_eq!(
            ServerVersion::parse("nats-server: v2.15.1\n"),
            Some(ServerVersion::new(2, 15, 1))
        );
        assert_eq!(
            ServerVersion::parse("2.10.0-beta.1"),
            Some(ServerVersion::new(2, 10, 0))
        );
        assert_eq!(
            ServerVersion::parse("v2.11"),
            Some(ServerVersion::new(2, 11, 0))
        );
        assert_eq!(ServerVersion::parse("nats-server: unknown"), None);
        assert_eq!(ServerVersion::parse("1.2.3.4"), None);
        assert_eq!(ServerVersion::parse(""), None);
    }

    #[test]
    fn reads_the_info_greeting() {
        let info = serde_json::json!({"server_id": "X", "version": "2.15.1", "proto": 1});
        assert_eq!(
            ServerVersion::from_info(&info),
            Some(ServerVersion::new(2, 15, 1))
        );
        assert_eq!(ServerVersion::from_info(&serde_json::json!({})), None);
    }

    #[test]
    fn orders_and_compares() {
        let old = ServerVersion::new(2, 9, 10);
        let new = ServerVersion::new(2, 15, 1);
        assert!(old < new);
        assert!(new.at_least(2, 10));
        assert!(new.at_least(2, 15));
        assert!(!new.at_least(2, 16));
        assert!(!old.at_least(2, 10));
        assert!(old.at_least(2, 9));
        assert_eq!(old.to_string(), "2.9.10");
    }
}
