//! The three NATS identity topologies the sender-identity tests (§13) run
//! on, each a real `nats-server` on a free loopback port.
//!
//! | [`Topology`]                   | How users authenticate              | Account the server reports (§13.3.1) |
//! |--------------------------------|-------------------------------------|--------------------------------------|
//! | [`NkeyUsers`](Topology::NkeyUsers)         | NKEY users in `authorization {}`    | `$G` for everyone                    |
//! | [`NamedAccounts`](Topology::NamedAccounts) | NKEY users in config-file accounts  | `AGENTS` / `CALLERS`                 |
//! | [`OperatorMode`](Topology::OperatorMode)   | user JWTs (`.creds` files)          | the account public key, `A…`         |
//!
//! Every topology has three users: the [`host`](IdentityServer::host) an
//! agent host connects as, a
//! [`same_account_caller`](IdentityServer::same_account_caller) in the
//! host's account, and a [`caller`](IdentityServer::caller). In
//! `NamedAccounts` and `OperatorMode` the caller lives in a second account
//! that imports the agents' services from the host's account:
//!
//! - discovery: `$SRV.PING.agents[.>]` and `$SRV.INFO.agents[.>]`, with
//!   `response_type: stream` because every agent answers (§4);
//! - `agents.prompt.>`, streamed replies (§6), imported with `share: true`
//!   so the server stamps `Nats-Request-Info` on the way in (§13.1);
//! - `agents.status.>` (§8.7), one reply;
//! - the heartbeats, `agents.hb.>` (§8.1), as a stream import;
//! - one import renamed by the caller's account (§13.6.2): the exporter's
//!   [`RENAMED_PROMPT_SUBJECT`] is reachable in the caller's account as
//!   [`RENAMED_LOCAL_SUBJECT`] (`to:` in a config file, `local_subject` in
//!   an account JWT).
//!
//! `$SYS.REQ.USER.INFO` tells a connection its own user and account only on
//! nats-server 2.10 or newer, so [`IdentityServer::start`] runs the
//! [`current_nats_server`]. The Debian 2.9 server has no responder for it.
//!
//! ```no_run
//! use nap_testkit::identity::{IdentityServer, Topology};
//!
//! # fn main() -> Result<(), nap_testkit::TestkitError> {
//! let server = IdentityServer::start(Topology::NamedAccounts)?;
//! let host = server.host(); // in account "AGENTS"
//! let caller = server.caller(); // in account "CALLERS"
//! let seed_file = server.seed_file(caller)?; // for `nap --nkey FILE`
//! # let _ = (host, seed_file, server.url());
//! # Ok(()) }
//! ```
//!
//! [`jwt`] and [`creds_text`] mint the operator-mode credentials; tests that
//! need their own operator-mode server use them directly.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use nap_proto::identity::GLOBAL_ACCOUNT;
use nap_proto::{INFO_SUBJECT, PING_SUBJECT};
use nap_proto::{SUBJECT_ROOT as ROOT, Verb, Wildcard};
use nkeys::KeyPair;
use serde_json::{Value, json};

use crate::{NatsServer, NatsServerBuilder, ServerVersion, TestkitError};

/// The subject on which a nats-server (2.10 and newer) tells a connection
/// its own user and account (§13.4); nap-proto's constant.
pub use nap_proto::identity::USER_INFO_SUBJECT;

/// The account of the host and the same-account caller in
/// [`Topology::NamedAccounts`]; also the `name` of that account's JWT in
/// [`Topology::OperatorMode`].
pub const AGENTS_ACCOUNT: &str = "AGENTS";

/// The account of the caller in [`Topology::NamedAccounts`]; also the
/// `name` of that account's JWT in [`Topology::OperatorMode`].
pub const CALLERS_ACCOUNT: &str = "CALLERS";

/// The agent token of the prompt subject the caller's account imports
/// under another name ([`RENAMED_PROMPT_SUBJECT`]).
pub const RENAMED_AGENT: &str = "echo";

/// The owner token of [`RENAMED_PROMPT_SUBJECT`].
pub const RENAMED_OWNER: &str = "alice";

/// The instance-name token of [`RENAMED_PROMPT_SUBJECT`].
pub const RENAMED_NAME: &str = "renamed";

/// The exporter's prompt subject behind the renamed import:
/// `agents.prompt.echo.alice.renamed`. An agent serving it is reachable by
/// the caller as [`RENAMED_LOCAL_SUBJECT`].
pub const RENAMED_PROMPT_SUBJECT: &str = "agents.prompt.echo.alice.renamed";

/// The caller account's local name for [`RENAMED_PROMPT_SUBJECT`].
pub const RENAMED_LOCAL_SUBJECT: &str = "local.echo.renamed";

/// The user name of [`IdentityServer::host`] (also its JWT `name`).
pub const HOST_USER: &str = "host";

/// The user name of [`IdentityServer::caller`].
pub const CALLER_USER: &str = "caller";

/// The user name of [`IdentityServer::same_account_caller`].
pub const SAME_ACCOUNT_CALLER_USER: &str = "same-account-caller";

/// The lowest nats-server version [`current_nats_server`] accepts.
const CURRENT_MIN: (u32, u32) = (2, 10);

/// The JWT header every NATS JWT carries.
const JWT_HEADER: &str = r#"{"typ":"JWT","alg":"ed25519-nkey"}"#;

/// Which identity topology a server runs (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Topology {
    /// NKEY users in `authorization { users: [...] }`, no accounts: every
    /// connection is in the global account `$G`.
    NkeyUsers,
    /// NKEY users in two config-file accounts, [`AGENTS_ACCOUNT`] and
    /// [`CALLERS_ACCOUNT`], with the agents' services exported and
    /// imported.
    NamedAccounts,
    /// An operator with a system account and two accounts, all as JWTs
    /// preloaded into a `MEMORY` resolver; users connect with `.creds`
    /// files. The exports and imports are those of `NamedAccounts`.
    OperatorMode,
}

impl Topology {
    /// All three topologies.
    pub const ALL: [Topology; 3] = [
        Topology::NkeyUsers,
        Topology::NamedAccounts,
        Topology::OperatorMode,
    ];

    /// True when the caller is in another account than the host.
    pub fn cross_account(self) -> bool {
        !matches!(self, Topology::NkeyUsers)
    }
}

impl fmt::Display for Topology {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Topology::NkeyUsers => "nkey-users",
            Topology::NamedAccounts => "named-accounts",
            Topology::OperatorMode => "operator-mode",
        })
    }
}

/// One user of an [`IdentityServer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestUser {
    /// A label for the user ([`HOST_USER`], [`CALLER_USER`],
    /// [`SAME_ACCOUNT_CALLER_USER`]); the JWT `name` in operator mode.
    pub name: String,
    /// The user's NKEY seed, `SU…`: the secret it authenticates and signs
    /// with.
    pub seed: String,
    /// The user's public NKEY, `U…`: what `$SYS.REQ.USER.INFO` reports as
    /// `user`.
    pub public_key: String,
    /// The account as the server reports it (§13.3): `$G`, an account name,
    /// or the account public key `A…`.
    pub account: String,
    /// Operator mode only: the user's credentials file (JWT and seed), in
    /// the server's directory.
    pub creds: Option<PathBuf>,
}

impl TestUser {
    /// The agent ID in its canonical text form, `{account}.{user}` (§13.3).
    pub fn agent_id(&self) -> String {
        format!("{}.{}", self.account, self.public_key)
    }
}

/// A running `nats-server` in one [`Topology`] with its three users. The
/// server stops when this is dropped.
#[derive(Debug)]
pub struct IdentityServer {
    /// The server process.
    pub server: NatsServer,
    /// The topology it runs.
    pub topology: Topology,
    host: TestUser,
    caller: TestUser,
    same_account_caller: TestUser,
}

impl IdentityServer {
    /// Start `topology` on the [`current_nats_server`].
    pub fn start(topology: Topology) -> Result<IdentityServer, TestkitError> {
        Self::start_with_binary(topology, &current_nats_server()?)
    }

    /// Start `topology` on the given `nats-server` binary. On a server older
    /// than 2.10 everything but `$SYS.REQ.USER.INFO` works.
    pub fn start_with_binary(
        topology: Topology,
        binary: &Path,
    ) -> Result<IdentityServer, TestkitError> {
        let builder = NatsServerBuilder::new().binary(binary);
        match topology {
            Topology::NkeyUsers => start_nkey_users(builder),
            Topology::NamedAccounts => start_named_accounts(builder),
            Topology::OperatorMode => start_operator_mode(builder),
        }
    }

    /// The user an agent host connects as.
    pub fn host(&self) -> &TestUser {
        &self.host
    }

    /// A user a caller connects as: in `NamedAccounts` and `OperatorMode`
    /// in another account than the host, one that imports the agents'
    /// services; in `NkeyUsers` in `$G` like everyone.
    pub fn caller(&self) -> &TestUser {
        &self.caller
    }

    /// A second user in the host's account.
    pub fn same_account_caller(&self) -> &TestUser {
        &self.same_account_caller
    }

    /// All three users: host, same-account caller, caller.
    pub fn users(&self) -> [&TestUser; 3] {
        [&self.host, &self.same_account_caller, &self.caller]
    }

    /// The client URL, `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// Write `user`'s seed to `<server dir>/<name>.nk` (one line, as `nsc`
    /// writes seed files) for `nap --nkey FILE` or a Python peer; the path.
    pub fn seed_file(&self, user: &TestUser) -> Result<PathBuf, TestkitError> {
        let path = self.server.dir().join(format!("{}.nk", user.name));
        write_file(&path, &format!("{}\n", user.seed))?;
        Ok(path)
    }

    /// `NamedAccounts` and `OperatorMode`: the renamed import, as
    /// `(local subject in the caller's account, exporter's subject)`, i.e.
    /// ([`RENAMED_LOCAL_SUBJECT`], [`RENAMED_PROMPT_SUBJECT`]). `None` in
    /// `NkeyUsers`, which has no imports.
    pub fn renamed_prompt_subject(&self) -> Option<(&'static str, &'static str)> {
        self.topology
            .cross_account()
            .then_some((RENAMED_LOCAL_SUBJECT, RENAMED_PROMPT_SUBJECT))
    }
}

/// The current `nats-server` (2.10 or newer): the one `cargo xtask setup`
/// installs in the tools dir when it is there, else the one
/// [`find_nats_server`](crate::find_nats_server) finds if its version is
/// at least 2.10; else [`TestkitError::NoCurrentServer`].
pub fn current_nats_server() -> Result<PathBuf, TestkitError> {
    let tools = crate::setup_nats_server();
    if let Some(tools) = tools.as_ref().filter(|t| is_executable(t)) {
        return Ok(tools.clone());
    }
    let found = crate::find_nats_server().map_err(|err| TestkitError::NoCurrentServer {
        found: err.to_string(),
    })?;
    let version = ServerVersion::of_binary(&found)?;
    if version.at_least(CURRENT_MIN.0, CURRENT_MIN.1) {
        Ok(found)
    } else {
        Err(TestkitError::NoCurrentServer {
            found: match &tools {
                Some(tools) => format!(
                    "{} is {version}, and {} does not exist",
                    found.display(),
                    tools.display()
                ),
                None => format!("{} is {version}", found.display()),
            },
        })
    }
}

/// A NATS JWT (`header.claims.signature`, base64url without padding) for
/// `subject`, signed by `issuer`: `name` and the `nats` claims are the
/// caller's, `iss`, `iat` and `jti` are filled in. The `nats` value decides
/// the kind: `{"type": "operator"|"account"|"user", "version": 2, ...}`.
pub fn jwt(
    issuer: &KeyPair,
    subject: &str,
    name: &str,
    nats: Value,
) -> Result<String, TestkitError> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let claims = json!({
        // Unique enough for a test: the subject and the minting time.
        "jti": format!("{subject}{:X}", now.as_nanos()),
        "iat": now.as_secs(),
        "iss": issuer.public_key(),
        "name": name,
        "sub": subject,
        "nats": nats,
    });
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(JWT_HEADER),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = issuer
        .sign(input.as_bytes())
        .map_err(|source| TestkitError::Nkeys {
            action: "sign a JWT",
            source,
        })?;
    Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature)))
}

/// The text of a `.creds` file: the user JWT and the user's seed in the
/// `-----BEGIN NATS USER JWT-----` / `-----BEGIN USER NKEY SEED-----`
/// blocks that `nsc` writes and NATS clients read.
pub fn creds_text(user_jwt: &str, seed: &str) -> String {
    format!(
        "-----BEGIN NATS USER JWT-----\n{user_jwt}\n------END NATS USER JWT------\n\n\
         ************************* IMPORTANT *************************\n\
         NKEY Seed printed below can be used to sign and prove identity.\n\
         NKEYs are sensitive and should be treated as secrets.\n\n\
         -----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n\n\
         *************************************************************\n"
    )
}

/// The `nats` claims of a user JWT with no limits and no permissions.
pub fn user_claims() -> Value {
    json!({"type": "user", "version": 2, "pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1})
}

/// The `nats` claims of an account JWT with no limits, and the given
/// `exports` and `imports` (JWT v2 shapes).
pub fn account_claims(exports: Value, imports: Value) -> Value {
    json!({
        "type": "account",
        "version": 2,
        "limits": {
            "subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
            "wildcards": true, "conn": -1, "leaf": -1
        },
        "exports": exports,
        "imports": imports,
    })
}

/// What the host's account exports: `(subject, service response type)`,
/// `None` for a stream export.
fn exports() -> Vec<(String, Option<ResponseType>)> {
    let stream = Some(ResponseType::Stream);
    vec![
        (PING_SUBJECT.to_owned(), stream),
        (format!("{PING_SUBJECT}.>"), stream),
        (INFO_SUBJECT.to_owned(), stream),
        (format!("{INFO_SUBJECT}.>"), stream),
        (Wildcard::verb(Verb::Prompt), stream),
        (Wildcard::verb(Verb::Status), Some(ResponseType::Singleton)),
        (Wildcard::verb(Verb::Hb), None),
    ]
}

/// A service export's response type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ResponseType {
    /// One reply per request.
    Singleton,
    /// Any number of replies (discovery, streamed prompts).
    Stream,
}

/// One import of the caller's account: the exporter's subject, the local
/// name when renamed, a stream or a service, and whether it shares the
/// requester's identity (`Nats-Request-Info`).
struct Import {
    subject: String,
    local: Option<&'static str>,
    service: bool,
    share: bool,
}

fn imports() -> Vec<Import> {
    let mut out: Vec<Import> = exports()
        .into_iter()
        .map(|(subject, response)| Import {
            share: subject.starts_with(&format!("{ROOT}.{}.", Verb::Prompt)),
            subject,
            local: None,
            service: response.is_some(),
        })
        .collect();
    out.push(Import {
        subject: RENAMED_PROMPT_SUBJECT.to_owned(),
        local: Some(RENAMED_LOCAL_SUBJECT),
        service: true,
        share: true,
    });
    out
}

/// A fresh user key's seed and public key.
struct Minted {
    seed: String,
    public_key: String,
}

fn mint(pair: KeyPair) -> Result<Minted, TestkitError> {
    let seed = pair.seed().map_err(|source| TestkitError::Nkeys {
        action: "read a seed",
        source,
    })?;
    Ok(Minted {
        public_key: pair.public_key(),
        seed,
    })
}

fn user(minted: &Minted, name: &str, account: &str) -> TestUser {
    TestUser {
        name: name.to_owned(),
        seed: minted.seed.clone(),
        public_key: minted.public_key.clone(),
        account: account.to_owned(),
        creds: None,
    }
}

fn start_nkey_users(builder: NatsServerBuilder) -> Result<IdentityServer, TestkitError> {
    let host = mint(KeyPair::new_user())?;
    let same = mint(KeyPair::new_user())?;
    let caller = mint(KeyPair::new_user())?;
    let server = builder
        .extra_config(format!(
            "authorization {{\n  users: [\n    {{nkey: {}}}\n    {{nkey: {}}}\n    {{nkey: {}}}\n  ]\n}}",
            host.public_key, same.public_key, caller.public_key
        ))
        .start()?;
    Ok(IdentityServer {
        server,
        topology: Topology::NkeyUsers,
        host: user(&host, HOST_USER, GLOBAL_ACCOUNT),
        same_account_caller: user(&same, SAME_ACCOUNT_CALLER_USER, GLOBAL_ACCOUNT),
        caller: user(&caller, CALLER_USER, GLOBAL_ACCOUNT),
    })
}

/// The `accounts {}` block of [`Topology::NamedAccounts`].
fn named_accounts_config(host: &str, same: &str, caller: &str) -> String {
    let mut exports_text = String::new();
    for (subject, response) in exports() {
        exports_text.push_str(&match response {
            Some(kind) => format!(
                "      {{service: \"{subject}\", response_type: {}}}\n",
                match kind {
                    ResponseType::Singleton => "singleton",
                    ResponseType::Stream => "stream",
                }
            ),
            None => format!("      {{stream: \"{subject}\"}}\n"),
        });
    }
    let mut imports_text = String::new();
    for import in imports() {
        let kind = if import.service { "service" } else { "stream" };
        let mut line = format!(
            "      {{{kind}: {{account: {AGENTS_ACCOUNT}, subject: \"{}\"}}",
            import.subject
        );
        if let Some(local) = import.local {
            line.push_str(&format!(", to: \"{local}\""));
        }
        if import.share {
            line.push_str(", share: true");
        }
        line.push_str("}\n");
        imports_text.push_str(&line);
    }
    format!(
        "accounts {{\n  {AGENTS_ACCOUNT} {{\n    users: [\n      {{nkey: {host}}}\n      {{nkey: {same}}}\n    ]\n    \
         exports: [\n{exports_text}    ]\n  }}\n  {CALLERS_ACCOUNT} {{\n    users: [\n      {{nkey: {caller}}}\n    ]\n    \
         imports: [\n{imports_text}    ]\n  }}\n}}"
    )
}

fn start_named_accounts(builder: NatsServerBuilder) -> Result<IdentityServer, TestkitError> {
    let host = mint(KeyPair::new_user())?;
    let same = mint(KeyPair::new_user())?;
    let caller = mint(KeyPair::new_user())?;
    let server = builder
        .extra_config(named_accounts_config(
            &host.public_key,
            &same.public_key,
            &caller.public_key,
        ))
        .start()?;
    Ok(IdentityServer {
        server,
        topology: Topology::NamedAccounts,
        host: user(&host, HOST_USER, AGENTS_ACCOUNT),
        same_account_caller: user(&same, SAME_ACCOUNT_CALLER_USER, AGENTS_ACCOUNT),
        caller: user(&caller, CALLER_USER, CALLERS_ACCOUNT),
    })
}

/// The JWT v2 `exports` of the agents' account.
fn jwt_exports() -> Value {
    Value::Array(
        exports()
            .into_iter()
            .map(|(subject, response)| match response {
                Some(kind) => json!({
                    "name": subject,
                    "subject": subject,
                    "type": "service",
                    "response_type": match kind {
                        ResponseType::Singleton => "Singleton",
                        ResponseType::Stream => "Stream",
                    },
                }),
                None => json!({"name": subject, "subject": subject, "type": "stream"}),
            })
            .collect(),
    )
}

/// The JWT v2 `imports` of the callers' account, from `agents`.
fn jwt_imports(agents: &str) -> Value {
    Value::Array(
        imports()
            .into_iter()
            .map(|import| {
                let mut claim = json!({
                    "name": import.local.unwrap_or(&import.subject),
                    "subject": import.subject,
                    "account": agents,
                    "type": if import.service { "service" } else { "stream" },
                });
                if let Some(local) = import.local {
                    claim["local_subject"] = json!(local);
                }
                if import.share {
                    claim["share"] = json!(true);
                }
                claim
            })
            .collect(),
    )
}

fn start_operator_mode(builder: NatsServerBuilder) -> Result<IdentityServer, TestkitError> {
    let operator = KeyPair::new_operator();
    let system = KeyPair::new_account();
    let agents = KeyPair::new_account();
    let callers = KeyPair::new_account();
    let operator_jwt = jwt(
        &operator,
        &operator.public_key(),
        "nap-test-operator",
        json!({"type": "operator", "version": 2, "system_account": system.public_key()}),
    )?;
    let system_jwt = jwt(
        &operator,
        &system.public_key(),
        "SYS",
        account_claims(json!([]), json!([])),
    )?;
    let agents_jwt = jwt(
        &operator,
        &agents.public_key(),
        AGENTS_ACCOUNT,
        account_claims(jwt_exports(), json!([])),
    )?;
    let callers_jwt = jwt(
        &operator,
        &callers.public_key(),
        CALLERS_ACCOUNT,
        account_claims(json!([]), jwt_imports(&agents.public_key())),
    )?;
    let server = builder
        .extra_config(format!(
            "operator: {operator_jwt}\nsystem_account: {sys}\nresolver: MEMORY\n\
             resolver_preload: {{\n  {sys}: {system_jwt}\n  {agents_pub}: {agents_jwt}\n  \
             {callers_pub}: {callers_jwt}\n}}",
            sys = system.public_key(),
            agents_pub = agents.public_key(),
            callers_pub = callers.public_key(),
        ))
        .start()?;

    let creds_user = |name: &str, account: &KeyPair| -> Result<TestUser, TestkitError> {
        let minted = mint(KeyPair::new_user())?;
        let user_jwt = jwt(account, &minted.public_key, name, user_claims())?;
        let path = server.dir().join(format!("{name}.creds"));
        write_file(&path, &creds_text(&user_jwt, &minted.seed))?;
        let mut test_user = user(&minted, name, &account.public_key());
        test_user.creds = Some(path);
        Ok(test_user)
    };
    let host = creds_user(HOST_USER, &agents)?;
    let same_account_caller = creds_user(SAME_ACCOUNT_CALLER_USER, &agents)?;
    let caller = creds_user(CALLER_USER, &callers)?;
    Ok(IdentityServer {
        server,
        topology: Topology::OperatorMode,
        host,
        same_account_caller,
        caller,
    })
}

fn write_file(path: &Path, text: &str) -> Result<(), TestkitError> {
    std::fs::write(path, text).map_err(|source| TestkitError::WriteFile {
        path: path.to_path_buf(),
        source,
    })
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
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn jwt_has_three_parts_and_verifies() {
        let account = KeyPair::new_account();
        let user = KeyPair::new_user();
        let token = jwt(&account, &user.public_key(), "u", user_claims()).unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let claims: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(claims["iss"], json!(account.public_key()));
        assert_eq!(claims["sub"], json!(user.public_key()));
        assert_eq!(claims["nats"]["type"], json!("user"));
        let signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        let input = format!("{}.{}", parts[0], parts[1]);
        account.verify(input.as_bytes(), &signature).unwrap();
    }

    #[test]
    fn creds_text_has_both_blocks() {
        let text = creds_text("a.b.c", "SUXYZ");
        let lines: Vec<&str> = text.lines().collect();
        let jwt_at = lines
            .iter()
            .position(|l| *l == "-----BEGIN NATS USER JWT-----")
            .unwrap();
        assert_eq!(lines[jwt_at + 1], "a.b.c");
        let seed_at = lines
            .iter()
            .position(|l| *l == "-----BEGIN USER NKEY SEED-----")
            .unwrap();
        assert_eq!(lines[seed_at + 1], "SUXYZ");
    }

    #[test]
    fn renamed_subject_is_an_agent_prompt_subject() {
        assert_eq!(
            RENAMED_PROMPT_SUBJECT,
            format!(
                "{ROOT}.{}.{RENAMED_AGENT}.{RENAMED_OWNER}.{RENAMED_NAME}",
                Verb::Prompt
            )
        );
        let imports = imports();
        let renamed = imports.iter().find(|i| i.local.is_some()).unwrap();
        assert!(renamed.service && renamed.share);
        assert!(
            imports
                .iter()
                .any(|i| i.subject == Wildcard::verb(Verb::Prompt) && i.share)
        );
        assert!(
            imports
                .iter()
                .any(|i| i.subject == Wildcard::verb(Verb::Hb) && !i.service)
        );
    }
}
