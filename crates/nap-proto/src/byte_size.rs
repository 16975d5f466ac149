//! Payload sizes as the `max_payload` endpoint metadata writes them (§2.1):
//! a positive integer followed by `B`, `KB`, `MB` or `GB`.

use std::fmt;
use std::str::FromStr;

/// A size in bytes, parsed from and written as `max_payload` text (§2.1).
///
/// Units are base 1024 and case-insensitive (`1MB` = `1mb` = 1 048 576
/// bytes), which is how NATS itself counts `max_payload`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(u64);

/// Why a `max_payload` value does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ByteSizeError {
    /// No digits before the unit.
    #[error("{text:?} does not start with a number")]
    NoNumber {
        /// The text as given.
        text: String,
    },
    /// The unit is not one of `B`, `KB`, `MB`, `GB`.
    #[error("{text:?} has unit {unit:?}; expected B, KB, MB or GB")]
    BadUnit {
        /// The text as given.
        text: String,
        /// The unit found (may be empty).
        unit: String,
    },
    /// The number is zero; §2.1 asks for a positive integer.
    #[error("{text:?} is zero; max_payload must be positive")]
    Zero {
        /// The text as given.
        text: String,
    },
    /// The size does not fit in 64 bits.
    #[error("{text:?} is too large")]
    Overflow {
        /// The text as given.
        text: String,
    },
}

const KIB: u64 = 1024;
const UNITS: [(&str, u64); 4] = [
    ("GB", KIB * KIB * KIB),
    ("MB", KIB * KIB),
    ("KB", KIB),
    ("B", 1),
];

impl ByteSize {
    /// A size of exactly `bytes` bytes.
    pub const fn new(bytes: u64) -> Self {
        ByteSize(bytes)
    }

    /// `n` KiB.
    pub const fn kib(n: u64) -> Self {
        ByteSize(n * KIB)
    }

    /// `n` MiB.
    pub const fn mib(n: u64) -> Self {
        ByteSize(n * KIB * KIB)
    }

    /// The size in bytes.
    pub const fn bytes(self) -> u64 {
        self.0
    }

    /// Parses `max_payload` text (§2.1). Strict: no whitespace, no sign, no
    /// fraction, a unit is required.
    pub fn parse(text: &str) -> Result<Self, ByteSizeError> {
        let digits = text.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(ByteSizeError::NoNumber {
                text: text.to_owned(),
            });
        }
        let (number, unit) = text.split_at(digits);
        let multiplier = UNITS
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(unit))
            .map(|(_, m)| *m)
            .ok_or_else(|| ByteSizeError::BadUnit {
                text: text.to_owned(),
                unit: unit.to_owned(),
            })?;
        let overflow = || ByteSizeError::Overflow {
            text: text.to_owned(),
        };
        let n: u64 = number.parse().map_err(|_| overflow())?;
        if n == 0 {
            return Err(ByteSizeError::Zero {
                text: text.to_owned(),
            });
        }
        n.checked_mul(multiplier).map(ByteSize).ok_or_else(overflow)
    }
}

impl fmt::Display for ByteSize {
    /// Writes the largest unit that divides the size exactly: `1MB`, `1536KB`, `7B`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (unit, m) = UNITS
            .iter()
            .find(|(_, m)| self.0 >= *m && self.0.is_multiple_of(*m))
            .copied()
            .unwrap_or(("B", 1));
        write!(f, "{}{unit}", self.0 / m)
    }
}

impl FromStr for ByteSize {
    type Err = ByteSizeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ByteSize::parse(s)
    }
}

impl From<ByteSize> for u64 {
    fn from(size: ByteSize) -> u64 {
        size.0
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_units_base_1024_case_insensitive() {
        for (text, bytes) in [
            ("1B", 1),
            ("512KB", 512 * 1024),
            ("1MB", 1 << 20),
            ("1mb", 1 << 20),
            ("4Mb", 4 << 20),
            ("2GB", 2 << 30),
            ("64kb", 64 * 1024),
        ] {
            assert_eq!(ByteSize::parse(text).unwrap().bytes(), bytes, "{text}");
        }
    }

    #[test]
    fn rejects_malformed_values() {
        assert!(matches!(
            ByteSize::parse(""),
            Err(ByteSizeError::NoNumber { .. })
        ));
        assert!(matches!(
            ByteSize::parse("MB"),
            Err(ByteSizeError::NoNumber { .. })
        ));
        assert!(matches!(
            ByteSize::parse("-1MB"),
            Err(ByteSizeError::NoNumber { .. })
        ));
        assert!(matches!(
            ByteSize::parse("1 MB"),
            Err(ByteSizeError::BadUnit { .. })
        ));
        assert!(matches!(
            ByteSize::parse("1"),
            Err(ByteSizeError::BadUnit { .. })
        ));
        assert!(matches!(
            ByteSize::parse("1.5MB"),
            Err(ByteSizeError::BadUnit { .. })
        ));
        assert!(matches!(
            ByteSize::parse("1TB"),
            Err(ByteSizeError::BadUnit { .. })
        ));
        assert!(matches!(
            ByteSize::parse("0KB"),
            Err(ByteSizeError::Zero { .. })
        ));
        assert!(matches!(
            ByteSize::parse("99999999999999999999GB"),
            Err(ByteSizeError::Overflow { .. })
        ));
        assert!(matches!(
            ByteSize::parse("17179869184GB"),
            Err(ByteSizeError::Overflow { .. })
        ));
    }

    #[test]
    fn displays_largest_exact_unit() {
        assert_eq!(ByteSize::mib(1).to_string(), "1MB");
        assert_eq!(ByteSize::kib(1536).to_string(), "1536KB");
        assert_eq!(ByteSize::new(7).to_string(), "7B");
        assert_eq!(ByteSize::new(0).to_string(), "0B");
        for text in ["1MB", "512KB", "3GB", "1000B"] {
            assert_eq!(ByteSize::parse(text).unwrap().to_string(), text);
        }
    }
}
