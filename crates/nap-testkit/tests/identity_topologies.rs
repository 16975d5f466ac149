//! The identity topologies of `nap_testkit::identity`, checked against a
//! real nats-server with plain async-nats clients: every user connects and
//! is who `$SYS.REQ.USER.INFO` says, and the imports carry discovery,
//! streamed prompts, status, heartbeats and the renamed prompt subject from
//! the callers' account to the agents' account.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::Duration;

use async_nats::{Client, ConnectOptions, HeaderMap, Message, Subject};
use futures::StreamExt as _;
use nap_testkit::identity::{
    AGENTS_ACCOUNT, CALLER_USER, CALLERS_ACCOUNT, RENAMED_LOCAL_SUBJECT, RENAMED_PROMPT_SUBJECT,
    USER_INFO_SUBJECT,
};
use nap_testkit::{DEBIAN_NATS_SERVER, IdentityServer, ServerVersion, TestUser, Topology};
use serde_json::Value;

/// Generous bound on any single wait; a healthy run answers in milliseconds.
const WAIT: Duration = Duration::from_secs(5);

/// The Nats-Request-Info header a `share: true` import adds.
const REQUEST_INFO: &str = "Nats-Request-Info";

/// Waits until the server has handled everything `client` sent so far (its
/// SUBs in particular): `flush` only empties the client's buffer, a message
/// to our own fresh inbox comes back only after the server got there.
async fn round_trip(client: &Client) {
    let inbox = client.new_inbox();
    let mut echo = client.subscribe(inbox.clone()).await.unwrap();
    client.publish(inbox, "".into()).await.unwrap();
    tokio::time::timeout(WAIT, echo.next())
        .await
        .expect("no echo from the server")
        .unwrap();
}

async fn connect(server: &IdentityServer, user: &TestUser) -> Client {
    let options = match &user.creds {
        Some(creds) => ConnectOptions::with_credentials_file(creds).await.unwrap(),
        None => ConnectOptions::with_nkey(user.seed.clone()),
    };
    options
        .name(user.name.clone())
        .connect(server.url())
        .await
        .unwrap_or_else(|e| panic!("{} cannot connect: {e}", user.name))
}

/// `$SYS.REQ.USER.INFO` as `client` sees it: the whole reply.
async fn user_info(client: &Client) -> Value {
    let reply = tokio::time::timeout(WAIT, client.request(USER_INFO_SUBJECT, "".into()))
        .await
        .expect("USER.INFO timed out")
        .expect("USER.INFO failed");
    serde_json::from_slice(&reply.payload).unwrap()
}

/// One streamed exchange: a responder on `host` listens on `listen`,
/// answers the first request with "one", "two" and the empty terminator; a
/// requester on `caller` publishes to `publish` with its own inbox. The
/// request as the responder saw it, and the three replies.
async fn streamed_exchange(
    host: &Client,
    caller: &Client,
    listen: &str,
    publish: &str,
) -> (Message, Vec<Message>) {
    let mut requests = host.subscribe(listen.to_owned()).await.unwrap();
    round_trip(host).await;
    let responder = {
        let host = host.clone();
        tokio::spawn(async move {
            let request = requests.next().await.unwrap();
            let reply = request.reply.clone().unwrap();
            for body in ["one", "two", ""] {
                host.publish(reply.clone(), body.into()).await.unwrap();
            }
            host.flush().await.unwrap();
            request
        })
    };
    let inbox = caller.new_inbox();
    let mut replies = caller.subscribe(inbox.clone()).await.unwrap();
    caller
        .publish_with_reply(publish.to_owned(), inbox, "hello".into())
        .await
        .unwrap();
    caller.flush().await.unwrap();
    let mut got: Vec<Message> = Vec::new();
    while got.len() < 3 {
        let msg = tokio::time::timeout(WAIT, replies.next())
            .await
            .unwrap_or_else(|_| panic!("only {:?} via {publish}", bodies(&got)))
            .unwrap();
        got.push(msg);
    }
    let request = tokio::time::timeout(WAIT, responder)
        .await
        .unwrap()
        .unwrap();
    (request, got)
}

fn bodies(replies: &[Message]) -> Vec<String> {
    replies
        .iter()
        .map(|m| String::from_utf8_lossy(&m.payload).into_owned())
        .collect()
}

fn request_info(headers: Option<&HeaderMap>) -> Option<Value> {
    let value = headers?.get(REQUEST_INFO)?;
    Some(serde_json::from_str(value.as_str()).unwrap())
}

async fn users_are_who_user_info_says(topology: Topology) {
    let server = IdentityServer::start(topology).unwrap();
    assert!(server.server.version().at_least(2, 10));
    for user in server.users() {
        let client = connect(&server, user).await;
        let info = user_info(&client).await;
        // The reply (seen on 2.15.1):
        //   {"server": {"name", "id", "ver", ...},
        //    "data": {"user": "U…", "account": <as below>,
        //             "account_name": <config name / JWT name>,   (not for $G)
        //             "user_name": <user JWT name>}}              (operator mode)
        // with no "error" for a connected user.
        assert!(info.get("error").is_none(), "{info}");
        assert!(info["server"]["ver"].is_string(), "{info}");
        let data = &info["data"];
        assert_eq!(data["user"], user.public_key.as_str(), "{info}");
        assert_eq!(data["account"], user.account.as_str(), "{info}");
        match topology {
            Topology::NkeyUsers => {}
            Topology::NamedAccounts => assert_eq!(data["account_name"], data["account"]),
            Topology::OperatorMode => {
                let name = if user.name == CALLER_USER {
                    CALLERS_ACCOUNT
                } else {
                    AGENTS_ACCOUNT
                };
                assert_eq!(data["account_name"], name, "{info}");
                assert_eq!(data["user_name"], user.name.as_str(), "{info}");
            }
        }
    }
    match topology {
        Topology::NkeyUsers => {
            for user in server.users() {
                assert_eq!(user.account, "$G");
            }
        }
        Topology::NamedAccounts => {
            assert_eq!(server.host().account, AGENTS_ACCOUNT);
            assert_eq!(server.same_account_caller().account, AGENTS_ACCOUNT);
            assert_eq!(server.caller().account, CALLERS_ACCOUNT);
        }
        Topology::OperatorMode => {
            for user in server.users() {
                assert!(user.creds.as_deref().is_some_and(Path::is_file));
                assert!(user.account.starts_with('A') && user.account.len() == 56);
            }
            assert_eq!(server.host().account, server.same_account_caller().account);
            assert_ne!(server.host().account, server.caller().account);
        }
    }
}

#[tokio::test]
async fn nkey_users_report_the_global_account() {
    users_are_who_user_info_says(Topology::NkeyUsers).await;
}

#[tokio::test]
async fn named_accounts_report_their_names() {
    users_are_who_user_info_says(Topology::NamedAccounts).await;
}

#[tokio::test]
async fn operator_mode_users_report_account_keys() {
    users_are_who_user_info_says(Topology::OperatorMode).await;
}

/// The streamed prompt exchange from `caller` and the same-account caller
/// to the host; cross-account exchanges carry Nats-Request-Info naming the
/// caller's account and user.
async fn prompts_reach_the_host(topology: Topology) {
    let server = IdentityServer::start(topology).unwrap();
    let host = connect(&server, server.host()).await;
    let subject = "agents.prompt.echo.alice.demo";
    for user in [server.caller(), server.same_account_caller()] {
        let client = connect(&server, user).await;
        let (request, replies) = streamed_exchange(&host, &client, subject, subject).await;
        assert_eq!(bodies(&replies), ["one", "two", ""]);
        assert_eq!(request.subject.as_str(), subject);
        let stamped = request_info(request.headers.as_ref());
        if user.account == server.host().account {
            assert!(stamped.is_none(), "same account: {stamped:?}");
        } else {
            // `share: true`: the server tells the exporter who asked.
            let stamped = stamped.expect("a shared import stamps Nats-Request-Info");
            assert_eq!(stamped["acc"], user.account.as_str(), "{stamped}");
        }
    }
}

#[tokio::test]
async fn nkey_users_stream_prompts() {
    prompts_reach_the_host(Topology::NkeyUsers).await;
}

#[tokio::test]
async fn named_accounts_stream_prompts_across_the_import() {
    prompts_reach_the_host(Topology::NamedAccounts).await;
}

#[tokio::test]
async fn operator_mode_streams_prompts_across_the_import() {
    prompts_reach_the_host(Topology::OperatorMode).await;
}

/// Discovery (two responders, both answers arrive), status, heartbeats and
/// the renamed prompt subject, from the callers' account.
async fn imports_carry_everything(topology: Topology) {
    let server = IdentityServer::start(topology).unwrap();
    let host = connect(&server, server.host()).await;
    let peer = connect(&server, server.same_account_caller()).await;
    let caller = connect(&server, server.caller()).await;

    // The renamed import: published to the local name, arrives on the
    // exporter's subject.
    let (local, exported) = server.renamed_prompt_subject().unwrap();
    assert_eq!(
        (local, exported),
        (RENAMED_LOCAL_SUBJECT, RENAMED_PROMPT_SUBJECT)
    );
    let (request, replies) = streamed_exchange(&host, &caller, exported, local).await;
    assert_eq!(bodies(&replies), ["one", "two", ""]);
    assert_eq!(request.subject.as_str(), exported);
    let stamped = request_info(request.headers.as_ref()).expect("renamed import is shared");
    assert_eq!(stamped["acc"], server.caller().account.as_str());
    // The exporter's subject itself is reachable too (`agents.prompt.>`).
    let (request, _) = streamed_exchange(&host, &caller, exported, exported).await;
    assert_eq!(request.subject.as_str(), exported);

    // Discovery: every agent of the host's account answers one request.
    for subject in [
        "$SRV.INFO.agents",
        "$SRV.PING.agents",
        "$SRV.INFO.agents.ID1",
    ] {
        for (client, name) in [(&host, "a"), (&peer, "b")] {
            let mut sub = client.subscribe(subject.to_owned()).await.unwrap();
            round_trip(client).await;
            let client = client.clone();
            tokio::spawn(async move {
                let request = sub.next().await.unwrap();
                client
                    .publish(request.reply.unwrap(), name.into())
                    .await
                    .unwrap();
                client.flush().await.unwrap();
            });
        }
        let inbox = caller.new_inbox();
        let mut replies = caller.subscribe(inbox.clone()).await.unwrap();
        caller
            .publish_with_reply(subject.to_owned(), inbox, "".into())
            .await
            .unwrap();
        let mut got = Vec::new();
        while got.len() < 2 {
            let msg = tokio::time::timeout(WAIT, replies.next())
                .await
                .unwrap_or_else(|_| panic!("{subject}: only {got:?}"))
                .unwrap();
            got.push(String::from_utf8_lossy(&msg.payload).into_owned());
        }
        got.sort();
        assert_eq!(got, ["a", "b"], "{subject}");
    }

    // Status: one reply, through a plain request.
    let status = "agents.status.echo.alice.demo";
    let mut sub = host.subscribe(status).await.unwrap();
    round_trip(&host).await;
    let responder = host.clone();
    tokio::spawn(async move {
        let request = sub.next().await.unwrap();
        responder
            .publish(request.reply.unwrap(), "alive".into())
            .await
            .unwrap();
    });
    let reply = tokio::time::timeout(WAIT, caller.request(status, "".into()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&reply.payload[..], b"alive");

    // Heartbeats: a stream import, published in the host's account, seen in
    // the caller's.
    let mut beats = caller.subscribe("agents.hb.>").await.unwrap();
    round_trip(&caller).await;
    let beat: Subject = "agents.hb.echo.alice.demo".into();
    host.publish(beat.clone(), "beat".into()).await.unwrap();
    host.flush().await.unwrap();
    let msg = tokio::time::timeout(WAIT, beats.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(msg.subject, beat);
}

#[tokio::test]
async fn named_accounts_import_discovery_status_heartbeats_and_a_rename() {
    imports_carry_everything(Topology::NamedAccounts).await;
}

#[tokio::test]
async fn operator_mode_imports_discovery_status_heartbeats_and_a_rename() {
    imports_carry_everything(Topology::OperatorMode).await;
}

#[tokio::test]
async fn nkey_users_have_no_renamed_import() {
    let server = IdentityServer::start(Topology::NkeyUsers).unwrap();
    assert_eq!(server.renamed_prompt_subject(), None);
    let seed = std::fs::read_to_string(server.seed_file(server.caller()).unwrap()).unwrap();
    assert_eq!(seed.trim(), server.caller().seed);
}

/// The Debian 2.9 server runs the topologies, but nothing answers
/// `$SYS.REQ.USER.INFO` there: the request fails with no responders.
#[tokio::test]
async fn debian_server_does_not_answer_user_info() {
    let debian = Path::new(DEBIAN_NATS_SERVER);
    // Never a silent pass: without the old server this test cannot run,
    // and says so by failing (`cargo xtask setup` installs it).
    assert!(
        debian.is_file(),
        "no {DEBIAN_NATS_SERVER}: this test needs the Debian 2.9 server; run `cargo xtask setup`"
    );
    let version = ServerVersion::of_binary(debian).unwrap();
    assert!(
        !version.at_least(2, 10),
        "{DEBIAN_NATS_SERVER} is {version}, not the old server this test is about"
    );
    for topology in Topology::ALL {
        let server = IdentityServer::start_with_binary(topology, debian).unwrap();
        let caller = connect(&server, server.caller()).await;
        let err = tokio::time::timeout(WAIT, caller.request(USER_INFO_SUBJECT, "".into()))
            .await
            .expect("a 2.9 server answers no-responders at once")
            .unwrap_err();
        assert_eq!(
            err.kind(),
            async_nats::RequestErrorKind::NoResponders,
            "{topology}: {err}"
        );
        // Everything else works on 2.9.
        let host = connect(&server, server.host()).await;
        let subject = "agents.prompt.echo.alice.demo";
        let (_, replies) = streamed_exchange(&host, &caller, subject, subject).await;
        assert_eq!(bodies(&replies), ["one", "two", ""], "{topology}");
    }
}
