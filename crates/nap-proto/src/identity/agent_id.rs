//! The agent ID (§13.2) and its canonical text form `{account}.{user}` (§13.3).
//!
//! Two validated halves, [`Account`] and [`UserKey`], make an [`AgentId`].
//! Every constructor runs the full §13.3 parse rule: the shape check and,
//! where the spec asks for it, the NKEY check (prefix byte and CRC-16).
//! Values are kept exactly as they were given, so equality, ordering and
//! hashing are byte equality of the text form.

use std::fmt;
use std::str::FromStr;

/// Length of a public NKEY in text form: a type letter and 55 base32 characters.
pub const NKEY_LEN: usize = 56;

/// Text length of an agent ID whose account is an NKEY (§13.3: 56 + 1 + 56).
pub const NKEY_AGENT_ID_LEN: usize = NKEY_LEN * 2 + 1;

/// The literal that stands for the global account of a server without accounts (§13.3.1).
pub const GLOBAL_ACCOUNT: &str = "$G";

/// The separator between the two halves of the text form (§13.3).
pub const SEPARATOR: char = '.';

/// The kinds of public NKEY an agent ID carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NkeyKind {
    /// An account key, text form starting with `A`.
    Account,
    /// A user key, text form starting with `U`.
    User,
}

impl NkeyKind {
    /// The letter every text key of this kind starts with.
    pub const fn letter(self) -> char {
        match self {
            NkeyKind::Account => 'A',
            NkeyKind::User => 'U',
        }
    }

    /// The prefix byte that heads the decoded key (the NKEY type tag).
    const fn prefix_byte(self) -> u8 {
        match self {
            NkeyKind::Account => 0,    // 'A' = base32 index 0, shifted by 3
            NkeyKind::User => 20 << 3, // 'U' = base32 index 20, shifted by 3
        }
    }
}

impl fmt::Display for NkeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NkeyKind::Account => "account",
            NkeyKind::User => "user",
        })
    }
}

/// Why a string is not a public NKEY of the expected kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NkeyError {
    /// The key is not 56 characters long.
    #[error("a public {kind} NKEY has {NKEY_LEN} characters, this one has {found}")]
    WrongLength {
        /// The kind that was expected.
        kind: NkeyKind,
        /// How many bytes the input had.
        found: usize,
    },
    /// The key does not start with its kind's letter.
    #[error("a public {kind} NKEY starts with `{}`", kind.letter())]
    WrongLetter {
        /// The kind that was expected.
        kind: NkeyKind,
    },
    /// A character is outside the upper-case base32 alphabet (`A`–`Z`, `2`–`7`).
    #[error("a public NKEY uses only `A`-`Z` and `2`-`7`")]
    NotBase32,
    /// The decoded prefix byte is not the one of the expected kind.
    #[error("the decoded NKEY prefix byte is not that of a {kind} key")]
    WrongPrefixByte {
        /// The kind that was expected.
        kind: NkeyKind,
    },
    /// The trailing CRC-16 does not match the key bytes.
    #[error("the NKEY checksum does not match")]
    Checksum,
}

/// Shape check plus NKEY check of one public key (§13.3: prefix byte and CRC-16).
fn check_nkey(text: &str, kind: NkeyKind) -> Result<(), NkeyError> {
    // §13.3: `{letter}` and 55 base32 characters, upper case as issued.
    if text.len() != NKEY_LEN {
        return Err(NkeyError::WrongLength {
            kind,
            found: text.len(),
        });
    }
    if !text.starts_with(kind.letter()) {
        return Err(NkeyError::WrongLetter { kind });
    }
    if !text
        .bytes()
        .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
    {
        return Err(NkeyError::NotBase32);
    }
    // §13.3: the NKEY check, i.e. the prefix byte and the CRC-16 over the decoded bytes.
    match nkeys::from_public_key(text) {
        Ok((prefix, _)) if prefix == kind.prefix_byte() => Ok(()),
        Ok(_) => Err(NkeyError::WrongPrefixByte { kind }),
        Err(e) if e.kind() == nkeys::error::ErrorKind::ChecksumFailure => Err(NkeyError::Checksum),
        // The shape is already checked, so what is left is a prefix byte nkeys does not know.
        Err(_) => Err(NkeyError::WrongPrefixByte { kind }),
    }
}

/// A user public NKEY (`U…`), the half of an agent ID that a signature proves (§13.2, §13.7.2).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UserKey(String);

impl UserKey {
    /// Validates `text` as a user public NKEY: shape, prefix byte and CRC-16 (§13.3).
    pub fn new(text: impl Into<String>) -> Result<Self, NkeyError> {
        let text = text.into();
        check_nkey(&text, NkeyKind::User)?;
        Ok(UserKey(text))
    }

    /// The key in its NATS text form.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for UserKey {
    type Err = NkeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        UserKey::new(s)
    }
}

/// Which of the account forms of §13.3 / §13.3.1 an [`Account`] has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum AccountForm {
    /// An account public NKEY (`A…`), as on an operator-mode server (§13.3).
    Nkey,
    /// A configured account name matching `[A-Za-z0-9_-]+`, as on a server
    /// without operator mode (§13.3.1).
    Name,
    /// The global account `$G` of a server without accounts (§13.3.1); valid,
    /// but it names a different account on every server.
    Global,
}

/// Why a string is not an account half of an agent ID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AccountError {
    /// The account is the empty string (§13.3: there is no zero agent ID).
    #[error("the account is empty")]
    Empty,
    /// The account has the NKEY shape (`A`, 56 characters) and fails the NKEY check.
    #[error("the account looks like an NKEY and is not a valid one: {0}")]
    Nkey(#[source] NkeyError),
    /// The account is a name with a character outside `[A-Za-z0-9_-]` (§13.3.1).
    #[error("the account name may only use `A-Z`, `a-z`, `0-9`, `_` and `-`")]
    InvalidName,
}

/// The account half of an agent ID (§13.2): an account NKEY, a configured
/// account name, or `$G`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Account {
    // `form` follows from `text`, so the derived comparisons are those of the text.
    text: String,
    form: AccountForm,
}

impl Account {
    /// Validates `text` as an account by the rule of §13.3 and §13.3.1.
    pub fn new(text: impl Into<String>) -> Result<Self, AccountError> {
        let text = text.into();
        let form = Self::form_of(&text)?;
        Ok(Account { text, form })
    }

    fn form_of(text: &str) -> Result<AccountForm, AccountError> {
        // §13.3: neither token may be empty.
        if text.is_empty() {
            return Err(AccountError::Empty);
        }
        // §13.3.1: the global account of a server without accounts.
        if text == GLOBAL_ACCOUNT {
            return Ok(AccountForm::Global);
        }
        // §13.3: the NKEY check runs whenever the account starts with `A` and
        // is 56 characters long; it, not the regex, tells a key from a name.
        if text.len() == NKEY_LEN && text.starts_with(NkeyKind::Account.letter()) {
            check_nkey(text, NkeyKind::Account).map_err(AccountError::Nkey)?;
            return Ok(AccountForm::Nkey);
        }
        // §13.3.1: a configured name is one token of `[A-Za-z0-9_-]+`.
        if text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            Ok(AccountForm::Name)
        } else {
            Err(AccountError::InvalidName)
        }
    }

    /// Which form this account has.
    pub fn form(&self) -> AccountForm {
        self.form
    }

    /// The account exactly as the server reports it.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for Account {
    type Err = AccountError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Account::new(s)
    }
}

/// Why a string is not an agent ID in canonical text form (§13.3).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AgentIdError {
    /// There is no `.` between account and user.
    #[error("an agent ID is `{{account}}.{{user}}`; the `.` separator is missing")]
    MissingSeparator,
    /// There is more than one `.`, so more than two tokens.
    #[error("an agent ID has exactly two `.`-separated tokens")]
    TooManyTokens,
    /// The account half is not valid.
    #[error("invalid account: {0}")]
    Account(#[source] AccountError),
    /// The user half is not a valid user public NKEY.
    #[error("invalid user: {0}")]
    User(#[source] NkeyError),
}

/// The identity NATS gives an authenticated connection, `(account, user)` (§13.2).
///
/// Ordering, equality and hashing follow the canonical text form byte for
/// byte (§13.3): account first, then user.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AgentId {
    account: Account,
    user: UserKey,
}

impl AgentId {
    /// Joins two validated halves.
    pub fn new(account: Account, user: UserKey) -> Self {
        AgentId { account, user }
    }

    /// Validates both halves given as text, as they come from a server or a header.
    pub fn from_parts(account: &str, user: &str) -> Result<Self, AgentIdError> {
        Ok(AgentId {
            account: Account::new(account).map_err(AgentIdError::Account)?,
            user: UserKey::new(user).map_err(AgentIdError::User)?,
        })
    }

    /// Parses the canonical text form `{account}.{user}` (§13.3).
    pub fn parse(text: &str) -> Result<Self, AgentIdError> {
        // §13.3: exactly one separator; neither half may contain one (§13.3.1).
        let Some((account, user)) = text.split_once(SEPARATOR) else {
            return Err(AgentIdError::MissingSeparator);
        };
        if user.contains(SEPARATOR) {
            return Err(AgentIdError::TooManyTokens);
        }
        AgentId::from_parts(account, user)
    }

    /// The account half.
    pub fn account(&self) -> &Account {
        &self.account
    }

    /// The user half, the part a signature proves (§13.7.2).
    pub fn user(&self) -> &UserKey {
        &self.user
    }
}

impl fmt::Display for AgentId {
    /// The canonical text form `{account}.{user}` (§13.3).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{SEPARATOR}{}", self.account, self.user)
    }
}

impl FromStr for AgentId {
    type Err = AgentIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AgentId::parse(s)
    }
}
