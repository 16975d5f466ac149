//! The caller's side of sender identity (§13) against real nats-servers with
//! NKEY users: a connection's own identity (§13.4), signed `prompt` and
//! `status` requests (§13.5, §13.6), the local `signed` check (§13.9), header
//! bytes in the size check (§13.5.1), signed heartbeats (§13.11), the
//! reverse lookup (§13.10) and prompt interceptors.
//!
//! Identity needs `$SYS.REQ.USER.INFO`, which nats-server answers from 2.10
//! on: these tests use the current server from the tools directory, except
//! the one that shows what happens on Debian's 2.9.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/scenario.rs"]
mod scenario;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::StreamExt;
use nap_nats::identity::{CannotSign, ConnectionIdentity, SenderKey};
use nap_nats::{
    Client, Event, InterceptError, OutgoingPrompt, PromptInterceptor, StreamEnd, StreamInfo,
};
use nap_nats::{Error, nap_proto};
use nap_proto::identity::{
    Account, AgentId, MinSenderTrust, NoIdentity, OwnIdentity, RegistrationIdentity, SENDER_HEADER,
    SenderHeader, SenderSigner, SenderVerifier, TrustClass, UnknownIdentity, sign_heartbeat,
};
use nap_proto::{AgentInfo, Heartbeat, IntervalSecs, RequestError};
use nap_testkit::{NatsServer, NatsServerBuilder};
use scenario::{Silence, record, soon, sync};
use serde_json::{Value, json};

/// A user NKEY and its seed.
struct User {
    seed: String,
    public: String,
}

fn new_user() -> User {
    let kp = nkeys::KeyPair::new_user();
    User {
        seed: kp.seed().unwrap(),
        public: kp.public_key(),
    }
}

fn current_server() -> NatsServerBuilder {
    NatsServerBuilder::new().binary(nap_testkit::tools_nats_server(&nap_testkit::tools_dir()))
}

/// A current server where `caller` and `agent` are NKEY users (no
/// accounts: the account is `$G`), `plain` a user/password one, and
/// `denied` an NKEY user that may not publish to `$SYS.>`.
fn nkey_server(builder: NatsServerBuilder, users: &Users) -> NatsServer {
    builder
        .extra_config(format!(
            r#"authorization {{ users: [
                {{nkey: {}}},
                {{nkey: {}}},
                {{user: plain, password: secret}},
                {{nkey: {}, permissions: {{ publish: {{ deny: ["$SYS.>"] }} }} }}
            ] }}"#,
            users.caller.public, users.agent.public, users.denied.public
        ))
        .start()
        .expect("start nats-server")
}

struct Users {
    caller: User,
    agent: User,
    denied: User,
}

fn users() -> Users {
    Users {
        caller: new_user(),
        agent: new_user(),
        denied: new_user(),
    }
}

/// Connects as the NKEY user with `seed`, the key applied.
async fn connect_as(server: &NatsServer, seed: &str) -> (async_nats::Client, SenderKey) {
    let key = SenderKey::from_seed(seed).unwrap();
    let nats = key
        .apply(nap_nats::connect_options())
        .unwrap()
        .connect(server.url())
        .await
        .unwrap();
    (nats, key)
}

/// A caller signing as `seed`.
async fn signing_caller(server: &NatsServer, seed: &str) -> (Client, async_nats::Client) {
    let (nats, key) = connect_as(server, seed).await;
    let client = Client::builder(nats.clone())
        .sender_key(key)
        .build()
        .await
        .unwrap();
    (client, nats)
}

fn global_id(user: &User) -> AgentId {
    AgentId::from_parts("$G", &user.public).unwrap()
}

/// A hand-written record whose prompt endpoint declares `trust` and
/// `max_payload`.
fn info_with(name: &str, trust: Option<&str>, max_payload: &str) -> AgentInfo {
    let mut value = record(&format!("ID{name}"), "fake", "test", name);
    let meta = &mut value["endpoints"][0]["metadata"];
    meta["max_payload"] = json!(max_payload);
    if let Some(trust) = trust {
        meta["min_sender_trust"] = json!(trust);
    }
    AgentInfo::from_value(value).unwrap()
}

/// The `Agent-Sender` values of a message.
fn sender_values(msg: &async_nats::Message) -> Vec<String> {
    msg.headers
        .as_ref()
        .map(|h| {
            h.get_all(SENDER_HEADER)
                .map(|v| v.as_str().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Captures the next message on `subject` (as a fake agent would receive
/// it) and answers it with an ack and the terminator.
async fn capture_one(
    nats: &async_nats::Client,
    subject: &str,
) -> tokio::task::JoinHandle<async_nats::Message> {
    let mut sub = nats.subscribe(subject.to_owned()).await.unwrap();
    sync(nats).await;
    let nats = nats.clone();
    tokio::spawn(async move {
        let msg = soon(sub.next()).await.unwrap();
        if let Some(reply) = &msg.reply {
            nats.publish(
                reply.clone(),
                Bytes::from_static(br#"{"type":"status","data":"ack"}"#),
            )
            .await
            .unwrap();
            nats.publish(reply.clone(), Bytes::new()).await.unwrap();
            nats.flush().await.unwrap();
        }
        msg
    })
}

#[tokio::test]
async fn a_connection_learns_its_own_identity() {
    let users = users();
    let server = nkey_server(current_server(), &users);

    // NKEY user, no accounts: `$G.U…` (§13.4 table).
    let (nats, key) = connect_as(&server, &users.caller.seed).await;
    let identity = ConnectionIdentity::new(nats, Some(key));
    assert_eq!(
        identity.resolve().await,
        OwnIdentity::Known(global_id(&users.caller))
    );
    assert!(identity.signer().await.is_ok());

    // Password user: none.
    let nats = async_nats::ConnectOptions::with_user_and_password("plain".into(), "secret".into())
        .connect(server.url())
        .await
        .unwrap();
    let identity = ConnectionIdentity::new(nats, None);
    assert!(matches!(
        identity.resolve().await,
        OwnIdentity::None(NoIdentity::NotNkeyUser(_))
    ));
    assert_eq!(identity.signer().await.unwrap_err(), CannotSign::NoKey);

    // A user that may not publish `$SYS.>`: unknown, from the permissions
    // violation the request draws.
    let (nats, key) = connect_as(&server, &users.denied.seed).await;
    let identity = ConnectionIdentity::new(nats, Some(key));
    assert_eq!(
        identity.resolve().await,
        OwnIdentity::Unknown(UnknownIdentity::PermissionDenied)
    );
    match identity.signer().await {
        Err(CannotSign::Identity(why)) => {
            assert!(matches!(*why, OwnIdentity::Unknown(_)), "{why:?}")
        }
        other => panic!("expected an unknown identity, got {other:?}"),
    }
}

#[tokio::test]
async fn an_anonymous_connection_has_no_identity() {
    let server = current_server().start().unwrap();
    let nats = async_nats::connect(server.url()).await.unwrap();
    let identity = ConnectionIdentity::new(nats, None);
    assert_eq!(
        identity.resolve().await,
        OwnIdentity::None(NoIdentity::Anonymous)
    );
}

#[tokio::test]
async fn prompts_and_status_requests_carry_a_signed_header_with_fresh_nonces() {
    let users = users();
    let server = nkey_server(current_server(), &users);
    let (client, _) = signing_caller(&server, &users.caller.seed).await;
    let (agent_nats, _) = connect_as(&server, &users.agent.seed).await;
    let handle = client.handle(info_with("signed", None, "1MB"));
    let subject = handle.prompt_subject().to_owned();
    let mut verifier = SenderVerifier::default();

    let mut nonces = Vec::new();
    for text in ["first", "second"] {
        let captured = capture_one(&agent_nats, &subject).await;
        let reply = client.prompt(&handle, text).await.unwrap();
        assert_eq!(soon(reply.collect()).await.unwrap().text, "");
        let msg = captured.await.unwrap();
        let values = sender_values(&msg);
        assert_eq!(values.len(), 1, "exactly one Agent-Sender header");
        // §13.7: verified with sub = the arrival subject, the payload as received.
        let sender = verifier
            .admit(
                SystemTime::now(),
                msg.subject.as_str(),
                values.iter().map(String::as_str),
                &msg.payload,
                MinSenderTrust::Signed,
            )
            .unwrap();
        assert_eq!(sender.class(), TrustClass::Verified);
        assert_eq!(sender.verified_id(), Some(&global_id(&users.caller)));
        let SenderHeader::Signed(header) = SenderHeader::decode(&values[0]).unwrap() else {
            panic!("not signed")
        };
        assert_eq!(header.sub, subject);
        nonces.push(header.nonce.as_str().to_owned());
    }
    assert_ne!(nonces[0], nonces[1], "every request has a fresh nonce");

    // §13.5: a status request is signed too, over the empty payload.
    let status_subject = handle.status_subject().unwrap().to_owned();
    let mut requests = agent_nats.subscribe(status_subject.clone()).await.unwrap();
    sync(&agent_nats).await;
    let answer = {
        let agent_nats = agent_nats.clone();
        tokio::spawn(async move {
            let msg = soon(requests.next()).await.unwrap();
            let beat = Heartbeat {
                agent: "fake".into(),
                owner: "test".into(),
                session: None,
                instance_id: "IDsigned".into(),
                ts: nap_proto::utc_timestamp(SystemTime::now()).unwrap(),
                interval_s: IntervalSecs::new(30.0).unwrap(),
                protocol_version: None,
                endpoints: None,
                extra: Default::default(),
            };
            agent_nats
                .publish(msg.reply.clone().unwrap(), beat.encode().into())
                .await
                .unwrap();
            msg
        })
    };
    soon(client.status(&handle)).await.unwrap();
    let msg = answer.await.unwrap();
    assert!(msg.payload.is_empty());
    let values = sender_values(&msg);
    let sender = verifier
        .classify(
            SystemTime::now(),
            msg.subject.as_str(),
            values.iter().map(String::as_str),
            &msg.payload,
        )
        .unwrap();
    assert_eq!(sender.verified_id(), Some(&global_id(&users.caller)));
}

#[tokio::test]
async fn a_signed_only_agent_fails_locally_without_a_key() {
    let users = users();
    let server = nkey_server(current_server(), &users);
    // Connected as an NKEY user, but the client was given no key.
    let (nats, _key) = connect_as(&server, &users.caller.seed).await;
    let client = Client::new(nats.clone()).await.unwrap();
    let (agent_nats, _) = connect_as(&server, &users.agent.seed).await;
    for trust in ["signed", "some-future-level"] {
        let handle = client.handle(info_with("strict", Some(trust), "1MB"));
        let silence = Silence::listen(&agent_nats, "agents.prompt.>").await;
        let error = client.prompt(&handle, "hello").await.unwrap_err();
        match &error {
            Error::SignatureRequired { subject, reason } => {
                assert_eq!(subject, handle.prompt_subject());
                assert_eq!(reason, &CannotSign::NoKey);
            }
            other => panic!("expected SignatureRequired, got {other:?}"),
        }
        assert!(error.to_string().contains("§13"), "{error}");
        silence.assert_silent(&nats).await;
    }

    // An endpoint that accepts anyone gets the prompt, without a sender
    // header (its only header is the trace context).
    let handle = client.handle(info_with("open", Some("any"), "1MB"));
    let captured = capture_one(&agent_nats, handle.prompt_subject()).await;
    soon(client.prompt(&handle, "hello").await.unwrap().collect())
        .await
        .unwrap();
    let msg = captured.await.unwrap();
    let headers: Vec<String> = msg
        .headers
        .iter()
        .flat_map(|h| h.iter().map(|(name, _)| name.to_string()))
        .collect();
    assert_eq!(
        headers,
        ["traceparent"],
        "no Agent-Sender, no claim: {msg:?}"
    );
}

#[tokio::test]
async fn header_bytes_count_toward_max_payload() {
    let users = users();
    let server = nkey_server(current_server(), &users);
    let (signing, _) = signing_caller(&server, &users.caller.seed).await;
    let (nats, _key) = connect_as(&server, &users.caller.seed).await;
    // Without the trace context too: no header at all, so the payload
    // and its few bytes of framing are all that must fit.
    let plain = Client::builder(nats)
        .trace_context(false)
        .build()
        .await
        .unwrap();
    let (agent_nats, _) = connect_as(&server, &users.agent.seed).await;

    let text = "x".repeat(100);
    let payload_len = nap_proto::Envelope::text(text.as_str()).encode().len();
    // Room for the payload and a few bytes, not for a ~300-byte header.
    let limit = format!("{}B", payload_len + 16);
    let info = info_with("tight", None, &limit);

    let handle = signing.handle(info.clone());
    let silence = Silence::listen(&agent_nats, "agents.prompt.>").await;
    match signing.prompt(&handle, text.as_str()).await.unwrap_err() {
        Error::Refused(RequestError::TooLarge { size, .. }) => {
            assert!(
                size > payload_len as u64 + 16,
                "size {size} counts the header"
            );
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    silence.assert_silent(signing.nats()).await;

    let handle = plain.handle(info);
    let captured = capture_one(&agent_nats, handle.prompt_subject()).await;
    soon(
        plain
            .prompt(&handle, text.as_str())
            .await
            .unwrap()
            .collect(),
    )
    .await
    .unwrap();
    assert_eq!(captured.await.unwrap().payload.len(), payload_len);
}

#[tokio::test]
async fn on_a_server_before_2_10_the_identity_is_unknown_and_nothing_is_signed() {
    let users = users();
    let server = nkey_server(
        NatsServerBuilder::new().binary("/usr/sbin/nats-server"),
        &users,
    );
    let (client, nats) = signing_caller(&server, &users.caller.seed).await;
    let identity = client.identity().unwrap().resolve().await;
    assert!(
        matches!(identity, OwnIdentity::Unknown(_)),
        "{identity:?} on nats-server {:?}",
        server.version()
    );
    let (agent_nats, _) = connect_as(&server, &users.agent.seed).await;

    // No Agent-Sender on an open endpoint (the trace context only).
    let handle = client.handle(info_with("old", None, "1MB"));
    let captured = capture_one(&agent_nats, handle.prompt_subject()).await;
    soon(client.prompt(&handle, "hello").await.unwrap().collect())
        .await
        .unwrap();
    let msg = captured.await.unwrap();
    assert!(
        msg.headers
            .as_ref()
            .is_none_or(|h| h.get(nap_proto::identity::SENDER_HEADER).is_none()),
        "{msg:?}"
    );

    // A signed-only endpoint fails locally, naming the unknown identity.
    let handle = client.handle(info_with("old-strict", Some("signed"), "1MB"));
    let silence = Silence::listen(&agent_nats, "agents.prompt.>").await;
    match client.prompt(&handle, "hello").await.unwrap_err() {
        Error::SignatureRequired {
            reason: CannotSign::Identity(why),
            ..
        } => assert!(matches!(*why, OwnIdentity::Unknown(_)), "{why:?}"),
        other => panic!("expected SignatureRequired(unknown), got {other:?}"),
    }
    silence.assert_silent(&nats).await;
}

/// Publishes one heartbeat of instance `id` on its subject, signed by
/// `signer` when given, its signature broken when `tamper`.
async fn beat(nats: &async_nats::Client, id: &str, signer: Option<&SenderSigner>, tamper: bool) {
    let subject = format!("agents.hb.fake.test.{id}");
    let heartbeat = Heartbeat {
        agent: "fake".into(),
        owner: "test".into(),
        session: None,
        instance_id: id.into(),
        ts: nap_proto::utc_timestamp(SystemTime::now()).unwrap(),
        interval_s: IntervalSecs::new(30.0).unwrap(),
        protocol_version: None,
        endpoints: None,
        extra: Default::default(),
    };
    let payload = heartbeat.encode();
    match signer {
        Some(signer) => {
            let nonce = nap_nats::identity::fresh_nonce().unwrap();
            let signed = sign_heartbeat(signer, &subject, &heartbeat, &payload, nonce).unwrap();
            let mut headers = async_nats::HeaderMap::new();
            headers.insert(SENDER_HEADER, signed.encode().as_str());
            let mut payload = payload;
            if tamper {
                // The signature no longer covers the bytes.
                payload.push(b' ');
            }
            nats.publish_with_headers(subject, headers, payload.into())
                .await
                .unwrap();
        }
        None => nats.publish(subject, payload.into()).await.unwrap(),
    }
    nats.flush().await.unwrap();
}

/// Waits until `client` has seen instance `id` beat.
async fn seen(client: &Client, id: &str) {
    soon(async {
        while client.last_heartbeat(id).is_none() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn signed_heartbeats_are_verified_and_forged_ones_dropped() {
    let users = users();
    let server = nkey_server(current_server(), &users);
    let (client, _) = signing_caller(&server, &users.caller.seed).await;
    let (agent_nats, _) = connect_as(&server, &users.agent.seed).await;
    let signer = SenderSigner::new(&users.agent.seed, Account::new("$G").unwrap()).unwrap();
    sync(client.nats()).await;

    // A forged beat (its payload changed after signing) is dropped, then
    // an unsigned beat of another instance is accepted as in 0.3, which
    // shows the forged one had its chance to arrive first.
    beat(&agent_nats, "forged", Some(&signer), true).await;
    beat(&agent_nats, "plain", None, false).await;
    seen(&client, "plain").await;
    assert!(
        client.last_heartbeat("forged").is_none(),
        "a failing beat is never a claim"
    );
    assert_eq!(client.heartbeat_sender("plain"), None);

    // A signed beat is accepted with its verified sender.
    beat(&agent_nats, "signed", Some(&signer), false).await;
    seen(&client, "signed").await;
    assert_eq!(
        client.heartbeat_sender("signed"),
        Some(global_id(&users.agent))
    );
    assert!(client.is_online("signed"));
}

#[tokio::test]
async fn a_verified_sender_resolves_to_its_registered_agent() {
    let users = users();
    let server = nkey_server(current_server(), &users);
    let (client, _) = signing_caller(&server, &users.caller.seed).await;
    let (agent_nats, _) = connect_as(&server, &users.agent.seed).await;
    let signer = SenderSigner::new(&users.agent.seed, Account::new("$G").unwrap()).unwrap();

    // One record with a valid id_sig, one claiming the caller's ID unsigned.
    let mut verified = record("VERIFIED", "fake", "test", "verified");
    let registration = RegistrationIdentity::sign(
        &signer,
        "fake",
        "test",
        verified["endpoints"][0]["subject"].as_str().unwrap(),
    )
    .unwrap();
    for (k, v) in registration.metadata() {
        verified["metadata"][k] = Value::String(v);
    }
    let mut claimed = record("CLAIMED", "fake", "test", "claimed");
    claimed["metadata"]["user_nkey"] = json!(users.caller.public);
    claimed["metadata"]["account"] = json!("$G");
    let _responder = scenario::raw_responder(
        &agent_nats,
        nap_proto::INFO_SUBJECT,
        vec![verified, claimed],
    )
    .await;

    let found = soon(client.resolve_sender(&global_id(&users.agent)))
        .await
        .unwrap()
        .expect("the verified registration");
    assert_eq!(found.id(), "VERIFIED");
    assert_eq!(found.identity().verified(), Some(&global_id(&users.agent)));
    assert_eq!(
        found.identity().to_string(),
        format!("verified {}", global_id(&users.agent))
    );
    // A claim is never indexed.
    assert!(
        soon(client.resolve_sender(&global_id(&users.caller)))
            .await
            .unwrap()
            .is_none()
    );
}

/// Records what it saw; adds a header and an extra field.
#[derive(Default)]
struct Recorder {
    events: Mutex<Vec<String>>,
}

#[async_trait::async_trait]
impl PromptInterceptor for Recorder {
    async fn before_prompt(&self, prompt: &mut OutgoingPrompt<'_>) -> Result<(), InterceptError> {
        assert!(matches!(
            prompt.insert_header(SENDER_HEADER, "forged"),
            Err(InterceptError::ReservedHeader(_))
        ));
        assert!(matches!(
            prompt.insert_field("prompt", json!("x")),
            Err(InterceptError::ReservedField(_))
        ));
        prompt.insert_header("Trace-Id", "t-1")?;
        prompt.insert_field("trace_id", json!("t-1"))
    }

    fn on_event(&self, _stream: &StreamInfo, event: &Event) {
        let name = match event {
            Event::Ack => "ack",
            Event::End => "end",
            _ => "other",
        };
        self.events.lock().unwrap().push(name.to_owned());
    }

    fn on_end(&self, _stream: &StreamInfo, end: StreamEnd<'_>) {
        self.events.lock().unwrap().push(format!("{end:?}"));
    }
}

#[tokio::test]
async fn interceptors_add_signed_headers_and_fields_and_observe_the_stream() {
    let users = users();
    let server = nkey_server(current_server(), &users);
    let (nats, key) = connect_as(&server, &users.caller.seed).await;
    let recorder = Arc::new(Recorder::default());
    struct Shared(Arc<Recorder>);
    #[async_trait::async_trait]
    impl PromptInterceptor for Shared {
        async fn before_prompt(&self, p: &mut OutgoingPrompt<'_>) -> Result<(), InterceptError> {
            self.0.before_prompt(p).await
        }
        fn on_event(&self, s: &StreamInfo, e: &Event) {
            self.0.on_event(s, e)
        }
        fn on_end(&self, s: &StreamInfo, e: StreamEnd<'_>) {
            self.0.on_end(s, e)
        }
    }
    let client = Client::builder(nats)
        .sender_key(key)
        .interceptor(Shared(recorder.clone()))
        .build()
        .await
        .unwrap();
    let (agent_nats, _) = connect_as(&server, &users.agent.seed).await;
    let handle = client.handle(info_with("intercepted", None, "1MB"));
    let captured = capture_one(&agent_nats, handle.prompt_subject()).await;
    soon(client.prompt(&handle, "hello").await.unwrap().collect())
        .await
        .unwrap();
    let msg = captured.await.unwrap();
    let headers = msg.headers.as_ref().unwrap();
    assert_eq!(headers.get("Trace-Id").unwrap().as_str(), "t-1");
    let body: Value = serde_json::from_slice(&msg.payload).unwrap();
    assert_eq!(body, json!({"prompt": "hello", "trace_id": "t-1"}));
    // The signature covers the payload with the interceptor's field.
    let values = sender_values(&msg);
    SenderVerifier::default()
        .admit(
            SystemTime::now(),
            msg.subject.as_str(),
            values.iter().map(String::as_str),
            &msg.payload,
            MinSenderTrust::Signed,
        )
        .unwrap();
    assert_eq!(
        *recorder.events.lock().unwrap(),
        vec!["ack", "end", "Complete"]
    );
}

#[tokio::test]
async fn a_renamed_import_publishes_locally_and_signs_the_exporters_subject() {
    let users = users();
    let server = nkey_server(current_server(), &users);
    let (nats, key) = connect_as(&server, &users.caller.seed).await;
    let client = Client::builder(nats)
        .sender_key(key)
        .signed_subject("partner.agents", "agents")
        .build()
        .await
        .unwrap();
    let (agent_nats, _) = connect_as(&server, &users.agent.seed).await;
    let handle = client.handle(info_with("imported", None, "1MB"));
    let advertised = handle.prompt_subject().to_owned();
    let local = format!("partner.{advertised}");
    let captured = capture_one(&agent_nats, &local).await;
    soon(client.prompt(&handle, "hello").await.unwrap().collect())
        .await
        .unwrap();
    let msg = captured.await.unwrap();
    assert_eq!(msg.subject.as_str(), local);
    let values = sender_values(&msg);
    let SenderHeader::Signed(header) = SenderHeader::decode(&values[0]).unwrap() else {
        panic!("not signed")
    };
    // §13.6.2: the exporter's subject, which the receiver sees.
    assert_eq!(header.sub, advertised);
    assert!(header.verify_signature(&msg.payload).is_ok());
}
