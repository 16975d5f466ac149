//! Subjects: `agents.{verb}.{agent}.{owner}.{name}` (§2).
//!
//! A [`Token`] is one validated subject token (§2.2); an [`AgentSubject`] is
//! the five-token address of one endpoint of one agent identity. The
//! wildcards of §2.4 are constructors on [`Wildcard`].

use std::fmt;
use std::str::FromStr;

/// The fixed first token of every protocol subject (§2).
pub const ROOT: &str = "agents";

/// The recommended maximum length of one token (§2.2, SHOULD).
pub const RECOMMENDED_TOKEN_LEN: usize = 63;

/// The recommended maximum length of a whole subject (§2.2, SHOULD).
pub const RECOMMENDED_SUBJECT_LEN: usize = 256;

/// The endpoint discriminator in the second position of a subject (§2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Verb {
    /// `prompt`: the request endpoint (§5, §6).
    Prompt,
    /// `hb`: the heartbeat beacon, the only protocol-fixed subject (§8.1).
    Hb,
    /// `status`: the on-demand status request/reply endpoint (§8.7).
    Status,
    /// `attachments`: reserved for the future upload endpoint (§5.5).
    Attachments,
}

impl Verb {
    /// All four reserved verbs, in the order of §2's table.
    pub const ALL: [Verb; 4] = [Verb::Prompt, Verb::Hb, Verb::Status, Verb::Attachments];

    /// The token as it appears on the wire; also the endpoint name in
    /// `$SRV.INFO` for the verbs that are endpoints (§2).
    pub const fn as_str(self) -> &'static str {
        match self {
            Verb::Prompt => "prompt",
            Verb::Hb => "hb",
            Verb::Status => "status",
            Verb::Attachments => "attachments",
        }
    }
}

impl fmt::Display for Verb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Verb {
    type Err = SubjectError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Verb::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| SubjectError::UnknownVerb { verb: s.to_owned() })
    }
}

/// Which identity token of a subject an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenRole {
    /// The third token, the harness identifier (`metadata.agent` or its abbreviation).
    Agent,
    /// The fourth token, the operator or account label (`metadata.owner`).
    Owner,
    /// The fifth token, the instance name.
    Name,
}

impl fmt::Display for TokenRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TokenRole::Agent => "agent",
            TokenRole::Owner => "owner",
            TokenRole::Name => "name",
        })
    }
}

/// Why a token breaks a MUST of §2.2 (NATS subject naming rules).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The token is empty; NATS subjects have no empty tokens.
    #[error("is empty")]
    Empty,
    /// The token starts with `$`, which §2.2 forbids.
    #[error("starts with '$'")]
    LeadingDollar,
    /// The token contains a character NATS does not allow inside a token.
    #[error("contains {found:?}, which a NATS subject token cannot hold")]
    ForbiddenChar {
        /// The offending character.
        found: char,
    },
}

/// Advice on a token that is legal but breaks a SHOULD of §2.2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenAdvice {
    /// Uses characters outside `a`–`z`, `0`–`9`, `-`, `_`.
    NotRecommendedChars,
    /// Longer than [`RECOMMENDED_TOKEN_LEN`] characters.
    TooLong {
        /// The token's length in characters.
        len: usize,
    },
}

/// One validated subject token (§2.2): non-empty, no `$` at the start, no
/// whitespace, `.`, `*` or `>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Token(String);

impl Token {
    /// Validates `token` against the MUST rules of §2.2.
    pub fn new(token: impl Into<String>) -> Result<Self, TokenError> {
        let token = token.into();
        check_token(&token)?;
        Ok(Token(token))
    }

    /// The token's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// SHOULD-level advice (§2.2) about this token, empty when it follows
    /// every recommendation.
    pub fn advice(&self) -> Vec<TokenAdvice> {
        let mut advice = Vec::new();
        if !self
            .0
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        {
            advice.push(TokenAdvice::NotRecommendedChars);
        }
        let len = self.0.chars().count();
        if len > RECOMMENDED_TOKEN_LEN {
            advice.push(TokenAdvice::TooLong { len });
        }
        advice
    }
}

fn check_token(token: &str) -> Result<(), TokenError> {
    if token.is_empty() {
        return Err(TokenError::Empty);
    }
    if token.starts_with('$') {
        return Err(TokenError::LeadingDollar);
    }
    if let Some(found) = token
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || matches!(c, '.' | '*' | '>'))
    {
        return Err(TokenError::ForbiddenChar { found });
    }
    Ok(())
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Token {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl FromStr for Token {
    type Err = TokenError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Token::new(s)
    }
}

impl TryFrom<&str> for Token {
    type Error = TokenError;

    fn try_from(s: &str) -> Result<Self, Self::Error> {
        Token::new(s)
    }
}

impl TryFrom<String> for Token {
    type Error = TokenError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        Token::new(s)
    }
}

/// Why a string is not a protocol subject, or an identity is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SubjectError {
    /// One identity token breaks §2.2.
    #[error("the {role} token {token:?} {reason} (§2.2)")]
    BadToken {
        /// Which token.
        role: TokenRole,
        /// The token as given.
        token: String,
        /// What is wrong with it.
        reason: TokenError,
    },
    /// The subject does not have exactly five tokens.
    #[error("a protocol subject has 5 tokens (agents.verb.agent.owner.name), this one has {found}")]
    WrongTokenCount {
        /// How many tokens were found.
        found: usize,
    },
    /// The first token is not `agents`.
    #[error("a protocol subject starts with 'agents.', this one starts with {found:?}")]
    NotAgentsRoot {
        /// The first token found.
        found: String,
    },
    /// The second token is not one of the four verbs.
    #[error("{verb:?} is not a protocol verb (prompt, hb, status, attachments)")]
    UnknownVerb {
        /// The token found.
        verb: String,
    },
}

/// An agent identity: the `{agent}.{owner}.{name}` tail shared by all of an
/// instance's subjects (§2).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Identity {
    /// Harness identifier, the third token.
    pub agent: Token,
    /// Owner, the fourth token.
    pub owner: Token,
    /// Instance name, the fifth token.
    pub name: Token,
}

impl Identity {
    /// Validates the three tokens; the error names the first bad one.
    pub fn new(agent: &str, owner: &str, name: &str) -> Result<Self, SubjectError> {
        let token = |role, value: &str| {
            Token::new(value).map_err(|reason| SubjectError::BadToken {
                role,
                token: value.to_owned(),
                reason,
            })
        };
        Ok(Identity {
            agent: token(TokenRole::Agent, agent)?,
            owner: token(TokenRole::Owner, owner)?,
            name: token(TokenRole::Name, name)?,
        })
    }

    /// The subject of `verb` for this identity: the default subject of the
    /// endpoints, and the fixed heartbeat subject (§2).
    pub fn subject(&self, verb: Verb) -> AgentSubject {
        AgentSubject {
            verb,
            identity: self.clone(),
        }
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.agent, self.owner, self.name)
    }
}

/// A parsed protocol subject `agents.{verb}.{agent}.{owner}.{name}` (§2).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AgentSubject {
    /// The verb token.
    pub verb: Verb,
    /// The identity tokens.
    pub identity: Identity,
}

impl AgentSubject {
    /// Parses a full subject; the error says which token is wrong and why.
    pub fn parse(subject: &str) -> Result<Self, SubjectError> {
        let tokens: Vec<&str> = subject.split('.').collect();
        let [root, verb, agent, owner, name] = tokens[..] else {
            return Err(SubjectError::WrongTokenCount {
                found: tokens.len(),
            });
        };
        if root != ROOT {
            return Err(SubjectError::NotAgentsRoot {
                found: root.to_owned(),
            });
        }
        Ok(AgentSubject {
            verb: verb.parse()?,
            identity: Identity::new(agent, owner, name)?,
        })
    }
}

impl fmt::Display for AgentSubject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Identity { agent, owner, name } = &self.identity;
        write!(f, "{ROOT}.{}.{agent}.{owner}.{name}", self.verb)
    }
}

impl FromStr for AgentSubject {
    type Err = SubjectError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AgentSubject::parse(s)
    }
}

/// Wildcard subjects for subscribing and filtering (§2.4).
///
/// Each constructor returns the subject text, ready to subscribe to.
#[derive(Debug, Clone, Copy)]
pub struct Wildcard;

impl Wildcard {
    /// `agents.>`: every protocol subject.
    pub fn all() -> String {
        format!("{ROOT}.>")
    }

    /// `agents.{verb}.>`: every subject of one verb.
    pub fn verb(verb: Verb) -> String {
        format!("{ROOT}.{verb}.>")
    }

    /// `agents.hb.*.*.*`: every heartbeat (§8.5).
    pub fn heartbeats() -> String {
        format!("{ROOT}.{}.*.*.*", Verb::Hb)
    }

    /// `agents.{verb}.{agent}.>`: every subject of one verb for one harness.
    pub fn agent(verb: Verb, agent: &Token) -> String {
        format!("{ROOT}.{verb}.{agent}.>")
    }

    /// `agents.{verb}.*.{owner}.>`: every subject of one verb for one owner.
    pub fn owner(verb: Verb, owner: &Token) -> String {
        format!("{ROOT}.{verb}.*.{owner}.>")
    }

    /// `agents.{verb}.*.*.{name}`: every subject of one verb with one instance name.
    pub fn name(verb: Verb, name: &Token) -> String {
        format!("{ROOT}.{verb}.*.*.{name}")
    }

    /// The narrowest wildcard of `verb` matching the given identity parts;
    /// `None` stands for "any".
    pub fn matching(
        verb: Verb,
        agent: Option<&Token>,
        owner: Option<&Token>,
        name: Option<&Token>,
    ) -> String {
        let part = |t: Option<&Token>| t.map_or("*", Token::as_str).to_owned();
        format!(
            "{ROOT}.{verb}.{}.{}.{}",
            part(agent),
            part(owner),
            part(name)
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn builds_and_parses_every_verb() {
        let id = Identity::new("claude-code", "aconnolly", "synadia-com-2").unwrap();
        for verb in Verb::ALL {
            let s = id.subject(verb).to_string();
            assert_eq!(
                s,
                format!("agents.{verb}.claude-code.aconnolly.synadia-com-2")
            );
            assert_eq!(AgentSubject::parse(&s).unwrap(), id.subject(verb));
        }
    }

    #[test]
    fn spec_examples_parse() {
        // §2.3
        for s in [
            "agents.prompt.claude-code.aconnolly.synadia-com-2",
            "agents.prompt.cc.aconnolly.synadia-com-2",
            "agents.hb.cc.aconnolly.synadia-com-2",
            "agents.status.cc.aconnolly.synadia-com-2",
            "agents.prompt.openclaw.rene.default",
            "agents.prompt.pi.mario.workspace-1",
            "agents.prompt.hermes.ops.summarizer",
        ] {
            assert_eq!(AgentSubject::parse(s).unwrap().to_string(), s);
        }
    }

    #[test]
    fn errors_name_the_token_and_reason() {
        let err = Identity::new("echo", "$me", "n").unwrap_err();
        assert_eq!(
            err,
            SubjectError::BadToken {
                role: TokenRole::Owner,
                token: "$me".into(),
                reason: TokenError::LeadingDollar
            }
        );
        assert_eq!(
            err.to_string(),
            "the owner token \"$me\" starts with '$' (§2.2)"
        );
        for (bad, found) in [
            ("a.b", '.'),
            ("a*", '*'),
            ("a>", '>'),
            ("a b", ' '),
            ("a\tb", '\t'),
        ] {
            assert_eq!(
                Token::new(bad).unwrap_err(),
                TokenError::ForbiddenChar { found },
                "{bad:?}"
            );
        }
        assert_eq!(Token::new("").unwrap_err(), TokenError::Empty);
        assert!(matches!(
            Identity::new("a", "b", "").unwrap_err(),
            SubjectError::BadToken {
                role: TokenRole::Name,
                reason: TokenError::Empty,
                ..
            }
        ));
    }

    #[test]
    fn parse_rejects_non_protocol_subjects() {
        assert_eq!(
            AgentSubject::parse("agents.prompt.a.b").unwrap_err(),
            SubjectError::WrongTokenCount { found: 4 }
        );
        assert_eq!(
            AgentSubject::parse("agent.prompt.a.b.c").unwrap_err(),
            SubjectError::NotAgentsRoot {
                found: "agent".into()
            }
        );
        assert_eq!(
            AgentSubject::parse("agents.heartbeat.a.b.c").unwrap_err(),
            SubjectError::UnknownVerb {
                verb: "heartbeat".into()
            }
        );
        assert!(AgentSubject::parse("agents.prompt..b.c").is_err());
    }

    #[test]
    fn advice_for_should_rules() {
        assert!(Token::new("synadia-com_2").unwrap().advice().is_empty());
        assert_eq!(
            Token::new("Upper").unwrap().advice(),
            vec![TokenAdvice::NotRecommendedChars]
        );
        assert_eq!(
            Token::new("x".repeat(64)).unwrap().advice(),
            vec![TokenAdvice::TooLong { len: 64 }]
        );
    }

    #[test]
    fn wildcards_match_section_2_4() {
        let t = |s: &str| Token::new(s).unwrap();
        assert_eq!(Wildcard::all(), "agents.>");
        assert_eq!(Wildcard::verb(Verb::Prompt), "agents.prompt.>");
        assert_eq!(Wildcard::verb(Verb::Hb), "agents.hb.>");
        assert_eq!(Wildcard::verb(Verb::Status), "agents.status.>");
        assert_eq!(Wildcard::heartbeats(), "agents.hb.*.*.*");
        assert_eq!(
            Wildcard::agent(Verb::Prompt, &t("cc")),
            "agents.prompt.cc.>"
        );
        assert_eq!(
            Wildcard::owner(Verb::Prompt, &t("aconnolly")),
            "agents.prompt.*.aconnolly.>"
        );
        assert_eq!(
            Wildcard::name(Verb::Prompt, &t("summarizer")),
            "agents.prompt.*.*.summarizer"
        );
        assert_eq!(
            Wildcard::matching(Verb::Hb, None, Some(&t("o")), None),
            "agents.hb.*.o.*"
        );
    }
}
