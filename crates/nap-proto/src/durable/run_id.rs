//! Run ids and idempotency keys (durable D5).

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

/// The tag that starts the input of a keyed run id (D5).
pub const RUN_ID_TAG: &str = "NAP-RUN-ID-V1";

/// The most bytes an idempotency key may have (D5).
pub const MAX_KEY_LEN: usize = 256;

/// The lower-case RFC 4648 base32 alphabet.
const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// The name of one run: 26 characters of lower-case base32, the encoding
/// of 128 bits (D5). One §2.2 token.
///
/// ```
/// use nap_proto::durable::{IdempotencyKey, RunId};
///
/// let key = IdempotencyKey::new("nightly-report").unwrap();
/// let run = RunId::from_key("agents.durable.prompt.echo.alice.demo", &key);
/// assert_eq!(run.as_str(), "fsgqpzk3ew22q6ltdnwy7m775a");
/// assert_eq!("fsgqpzk3ew22q6ltdnwy7m775a".parse::<RunId>().unwrap(), run);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RunId(String);

/// Why a string is not a run id (D5).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RunIdError {
    /// Not 26 characters long.
    #[error("a run id has {expected} characters, this one has {found} (D5)", expected = RunId::LEN)]
    Length {
        /// How many characters it has.
        found: usize,
    },
    /// A character outside `a`–`z`, `2`–`7`.
    #[error("a run id uses only a-z and 2-7, found {found:?} (D5)")]
    Character {
        /// The offending character.
        found: char,
    },
    /// The last character's two padding bits are not zero: not the one text
    /// form of its 128 bits.
    #[error("a run id ends in one of a, e, i, m, q, u, y, 4 (its padding bits are zero, D5)")]
    Padding,
}

impl RunId {
    /// The length of every run id, in characters.
    pub const LEN: usize = 26;

    /// Reads a run id (D5): exactly `^[a-z2-7]{25}[aeimquy4]$`.
    pub fn parse(text: &str) -> Result<RunId, RunIdError> {
        let found = text.chars().count();
        if found != Self::LEN {
            return Err(RunIdError::Length { found });
        }
        if let Some(found) = text
            .chars()
            .find(|c| !c.is_ascii() || !ALPHABET.contains(&(*c as u8)))
        {
            return Err(RunIdError::Character { found });
        }
        // Every character is ASCII now, so the last byte is the last character.
        let last = text.as_bytes()[Self::LEN - 1];
        let value = ALPHABET.iter().position(|&c| c == last).unwrap_or_default();
        if value & 0b11 != 0 {
            return Err(RunIdError::Padding);
        }
        Ok(RunId(text.to_owned()))
    }

    /// The run id of a submission with an idempotency key (D5): the first 16
    /// bytes of SHA-256(`"NAP-RUN-ID-V1\n" + prompt_prefix + "\n" + key +
    /// "\n"`), in base32. `prompt_prefix` is the advertised
    /// `durable_prompt_subject`, byte for byte.
    pub fn from_key(prompt_prefix: &str, key: &IdempotencyKey) -> RunId {
        RunId::from_bytes(hash_lines(&[RUN_ID_TAG, prompt_prefix, key.as_str()]))
    }

    /// The run id of a submission without a key (D5): 16 bytes the caller
    /// drew from a cryptographically secure source.
    pub fn from_random(bytes: [u8; 16]) -> RunId {
        RunId::from_bytes(bytes)
    }

    fn from_bytes(bytes: [u8; 16]) -> RunId {
        RunId(base32_lower(&bytes))
    }

    /// The id's text, one subject token.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for RunId {
    type Err = RunIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RunId::parse(s)
    }
}

impl AsRef<str> for RunId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// The first 16 bytes of SHA-256 over `lines`, each followed by one LF
/// (the derivations of D5 and D9.1).
fn hash_lines(lines: &[&str]) -> [u8; 16] {
    let mut hash = Sha256::new();
    for line in lines {
        hash.update(line.as_bytes());
        hash.update(b"\n");
    }
    let digest = hash.finalize();
    let mut out = [0u8; 16];
    out.copy_from_slice(&digest[..16]);
    out
}

/// Lower-case RFC 4648 base32 without padding.
pub(crate) fn base32_lower(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let mut buffer: u32 = 0;
    let mut bits = 0u32;
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// [`hash_lines`] in base32.
pub(crate) fn hashed_name(lines: &[&str]) -> String {
    base32_lower(&hash_lines(lines))
}

/// A caller's idempotency key (D5): 1 to 256 bytes of UTF-8, no control
/// character, no leading or trailing space. It travels in the
/// `Nap-Idempotency-Key` header.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

/// Why a string cannot be an idempotency key (D5).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The key is empty.
    #[error("an idempotency key cannot be empty (D5)")]
    Empty,
    /// The key is longer than [`MAX_KEY_LEN`] bytes.
    #[error("an idempotency key has at most {MAX_KEY_LEN} bytes, this one has {len} (D5)")]
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// The key holds a control character (a header value cannot carry one).
    #[error("an idempotency key cannot hold the control character {found:?} (D5)")]
    Control {
        /// The character.
        found: char,
    },
    /// The key starts or ends with white space (header values are trimmed).
    #[error("an idempotency key cannot start or end with white space (D5)")]
    Padded,
}

impl IdempotencyKey {
    /// Validates a key (D5).
    pub fn new(key: impl Into<String>) -> Result<IdempotencyKey, KeyError> {
        let key = key.into();
        if key.is_empty() {
            return Err(KeyError::Empty);
        }
        if key.len() > MAX_KEY_LEN {
            return Err(KeyError::TooLong { len: key.len() });
        }
        if let Some(found) = key.chars().find(|c| c.is_control()) {
            return Err(KeyError::Control { found });
        }
        if key.trim() != key {
            return Err(KeyError::Padded);
        }
        Ok(IdempotencyKey(key))
    }

    /// The key's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for IdempotencyKey {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        IdempotencyKey::new(s)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn base32_matches_rfc_4648_vectors() {
        // RFC 4648 §10, lower-cased, without padding.
        for (input, output) in [
            ("", ""),
            ("f", "my"),
            ("fo", "mzxq"),
            ("foo", "mzxw6"),
            ("foob", "mzxw6yq"),
            ("fooba", "mzxw6ytb"),
            ("foobar", "mzxw6ytboi"),
        ] {
            assert_eq!(base32_lower(input.as_bytes()), output);
        }
    }

    #[test]
    fn random_ids_parse_back() {
        for seed in 0u8..=255 {
            let id = RunId::from_random([seed; 16]);
            assert_eq!(RunId::parse(id.as_str()).unwrap(), id);
        }
    }

    #[test]
    fn parse_rejects_other_forms() {
        let good = "fsgqpzk3ew22q6ltdnwy7m775a";
        assert!(RunId::parse(good).is_ok());
        assert_eq!(
            RunId::parse("fsgqpzk3ew22q6ltdnwy7m775"),
            Err(RunIdError::Length { found: 25 })
        );
        assert_eq!(
            RunId::parse("Fsgqpzk3ew22q6ltdnwy7m775a"),
            Err(RunIdError::Character { found: 'F' })
        );
        assert_eq!(
            RunId::parse("fsgqpzk3ew22q6ltdnwy7m7751"),
            Err(RunIdError::Character { found: '1' })
        );
        assert_eq!(
            RunId::parse("fsgqpzk3ew22q6ltdnwy7m775b"),
            Err(RunIdError::Padding)
        );
        assert!(matches!(
            RunId::parse("fsgqpzk3ew22q6ltdnwy7m775é"),
            Err(RunIdError::Character { .. })
        ));
    }

    #[test]
    fn keys() {
        assert!(IdempotencyKey::new("order 42").is_ok());
        assert_eq!(IdempotencyKey::new(""), Err(KeyError::Empty));
        assert_eq!(IdempotencyKey::new(" a"), Err(KeyError::Padded));
        assert_eq!(
            IdempotencyKey::new("a\r\nb"),
            Err(KeyError::Control { found: '\r' })
        );
        assert_eq!(
            IdempotencyKey::new("x".repeat(257)),
            Err(KeyError::TooLong { len: 257 })
        );
    }
}
