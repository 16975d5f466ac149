//! Protocol versions and the compatibility verdict (§11).

use std::fmt;
use std::str::FromStr;

/// A protocol version as `metadata.protocol_version` declares it (§11.1).
///
/// Only `MAJOR.MINOR` carries meaning; a patch or pre-release suffix is
/// kept for display but ignored in comparisons.
#[derive(Debug, Clone)]
pub struct ProtocolVersion {
    major: u64,
    minor: u64,
    text: String,
}

/// The version this crate implements: `0.3`.
pub const CURRENT: ProtocolVersion = ProtocolVersion::new(0, 3);

/// Why a version string does not parse (§11.1).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a MAJOR.MINOR protocol version (§11.1)")]
pub struct VersionError {
    /// The text as given.
    pub text: String,
}

/// How a caller should treat an agent of some version (§11.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compatibility {
    /// Same MAJOR.MINOR: full interoperability.
    Full,
    /// Same MAJOR (at least 1), different MINOR: compatible for the older
    /// feature set, relying on forward-compat rules (§5.6, §6.6).
    MinorDiffers,
    /// Different MAJOR, or a different MINOR within the unstable 0.x line,
    /// where callers pin an exact MAJOR.MINOR.
    Incompatible,
}

impl Compatibility {
    /// Whether a caller may talk to the agent at all.
    pub fn is_usable(self) -> bool {
        !matches!(self, Compatibility::Incompatible)
    }
}

impl ProtocolVersion {
    /// A version from its numbers.
    pub const fn new(major: u64, minor: u64) -> Self {
        ProtocolVersion {
            major,
            minor,
            text: String::new(),
        }
    }

    /// Parses `MAJOR.MINOR` with an optional suffix starting with `.`, `-`
    /// or `+` (`0.3`, `0.3.1`, `1.0-rc1`).
    pub fn parse(text: &str) -> Result<Self, VersionError> {
        let err = || VersionError {
            text: text.to_owned(),
        };
        let (major, rest) = split_number(text).ok_or_else(err)?;
        let rest = rest.strip_prefix('.').ok_or_else(err)?;
        let (minor, rest) = split_number(rest).ok_or_else(err)?;
        if !(rest.is_empty() || rest.starts_with(['.', '-', '+'])) {
            return Err(err());
        }
        Ok(ProtocolVersion {
            major,
            minor,
            text: text.to_owned(),
        })
    }

    /// The MAJOR number.
    pub fn major(&self) -> u64 {
        self.major
    }

    /// The MINOR number.
    pub fn minor(&self) -> u64 {
        self.minor
    }

    /// The §11.2 verdict for a caller speaking `self` and an agent speaking `agent`.
    pub fn compatibility_with(&self, agent: &ProtocolVersion) -> Compatibility {
        if self.major != agent.major {
            Compatibility::Incompatible
        } else if self.minor == agent.minor {
            Compatibility::Full
        } else if self.major == 0 {
            // §11.2: MINOR bumps within 0.x MAY break; pin MAJOR.MINOR until 1.0.
            Compatibility::Incompatible
        } else {
            Compatibility::MinorDiffers
        }
    }
}

fn split_number(s: &str) -> Option<(u64, &str)> {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let (n, rest) = s.split_at(digits);
    Some((n.parse().ok()?, rest))
}

impl PartialEq for ProtocolVersion {
    /// Compares MAJOR.MINOR only (§11.1).
    fn eq(&self, other: &Self) -> bool {
        (self.major, self.minor) == (other.major, other.minor)
    }
}

impl Eq for ProtocolVersion {}

impl fmt::Display for ProtocolVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.text.is_empty() {
            write!(f, "{}.{}", self.major, self.minor)
        } else {
            f.write_str(&self.text)
        }
    }
}

impl FromStr for ProtocolVersion {
    type Err = VersionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ProtocolVersion::parse(s)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_major_minor_and_ignores_suffixes() {
        for (text, major, minor) in [
            ("0.3", 0, 3),
            ("0.3.0", 0, 3),
            ("1.0-rc1", 1, 0),
            ("12.34+build", 12, 34),
        ] {
            let v = ProtocolVersion::parse(text).unwrap();
            assert_eq!((v.major(), v.minor()), (major, minor));
            assert_eq!(v.to_string(), text);
        }
        assert_eq!(ProtocolVersion::parse("0.3.9").unwrap(), CURRENT);
    }

    #[test]
    fn rejects_non_versions() {
        for text in ["", "3", "0.", ".3", "v0.3", "0.3x", "0,3", " 0.3"] {
            assert!(ProtocolVersion::parse(text).is_err(), "{text:?}");
        }
    }

    #[test]
    fn compatibility_follows_section_11_2() {
        let v = |s| ProtocolVersion::parse(s).unwrap();
        assert_eq!(CURRENT.compatibility_with(&v("0.3")), Compatibility::Full);
        assert_eq!(CURRENT.compatibility_with(&v("0.3.7")), Compatibility::Full);
        assert_eq!(
            CURRENT.compatibility_with(&v("0.2")),
            Compatibility::Incompatible
        );
        assert_eq!(
            CURRENT.compatibility_with(&v("0.4")),
            Compatibility::Incompatible
        );
        assert_eq!(
            CURRENT.compatibility_with(&v("1.3")),
            Compatibility::Incompatible
        );
        assert_eq!(
            v("1.2").compatibility_with(&v("1.4")),
            Compatibility::MinorDiffers
        );
        assert_eq!(
            v("1.2").compatibility_with(&v("2.2")),
            Compatibility::Incompatible
        );
        assert!(Compatibility::MinorDiffers.is_usable());
    }
}
