//! The host's side of sender identity (§13) on a real nats-server with
//! NKEY users: classification of prompts and status requests (§13.7), the
//! endpoint requirement (§13.9), acceptance (§13.7.3), the registered
//! identity (§13.10), signed heartbeats (§13.11) and request interceptors.
//! Requests are signed with nap-proto's `SenderSigner` and published with
//! plain async-nats, so that nothing of nap's caller is in the way.
#![allow(clippy::unwrap_used, missing_docs)]

#[path = "support/host.rs"]
mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_nats::{HeaderMap, Message};
use async_trait::async_trait;
use futures::StreamExt;
use nap_agent::echo::{EchoAgent, WHOAMI};
use nap_agent::{AgentError, Request, Responder, agent_fn};
use nap_nats::AgentService;
use nap_nats::identity::SenderKey;
use nap_nats::{Decision, RequestInterceptor, TurnOutcome};
use nap_proto::identity::{
    Account, AgentId, MinSenderTrust, Nonce, RegisteredIdentity, SENDER_HEADER, Sender,
    SenderHeader, SenderSigner, SenderTime, SenderVerifier, TrustClass,
};
use nap_proto::{AgentInfo, Chunk, Heartbeat, ServiceError, StatusCode};
use nap_testkit::{NatsServer, NatsServerBuilder};
use support::{assert_error_stream, body, error_code, infos, is_terminator};

/// Three NKEY users on a configuration-file server without accounts: the
/// agent and two callers. Their account is `$G` (§13.3.1).
struct Users {
    host: nkeys::KeyPair,
    alice: nkeys::KeyPair,
    bob: nkeys::KeyPair,
}

impl Users {
    fn new() -> Users {
        Users {
            host: nkeys::KeyPair::new_user(),
            alice: nkeys::KeyPair::new_user(),
            bob: nkeys::KeyPair::new_user(),
        }
    }

    fn config(&self) -> String {
        format!(
            "authorization {{ users: [ {{nkey: {}}}, {{nkey: {}}}, {{nkey: {}}} ] }}",
            self.host.public_key(),
            self.alice.public_key(),
            self.bob.public_key()
        )
    }

    /// The server of this run (Debian's 2.9 or the current one).
    fn server(&self) -> NatsServer {
        NatsServerBuilder::new()
            .extra_config(self.config())
            .start()
            .unwrap()
    }

    /// A server of this run where the host user may not publish to `$SYS.>`,
    /// so that it cannot learn who it is on any version (§13.4: unknown).
    fn server_hiding_identity(&self) -> NatsServer {
        let config = format!(
            "authorization {{ users: [ {{nkey: {}, permissions: {{ publish: {{ deny: [\"$SYS.>\"] }} }} }}, {{nkey: {}}}, {{nkey: {}}} ] }}",
            self.host.public_key(),
            self.alice.public_key(),
            self.bob.public_key()
        );
        NatsServerBuilder::new()
            .extra_config(config)
            .start()
            .unwrap()
    }

    /// The current server, which tells a connection who it is (§13.4).
    fn current_server(&self) -> NatsServer {
        let binary = nap_testkit::tools_nats_server(&nap_testkit::tools_dir());
        assert!(
            binary.exists(),
            "{} is missing: run `cargo xtask setup`, or set NAP_TOOLS_DIR",
            binary.display()
        );
        NatsServerBuilder::new()
            .binary(binary)
            .extra_config(self.config())
            .start()
            .unwrap()
    }
}

fn seed(kp: &nkeys::KeyPair) -> String {
    kp.seed().unwrap()
}

async fn connect_as(server: &NatsServer, kp: &nkeys::KeyPair) -> async_nats::Client {
    nap_nats::connect_options()
        .nkey(seed(kp))
        .connect(server.url())
        .await
        .unwrap()
}

/// The host's connection, made with its `SenderKey`.
async fn connect_host(server: &NatsServer, key: &SenderKey) -> async_nats::Client {
    key.apply(nap_nats::connect_options())
        .unwrap()
        .connect(server.url())
        .await
        .unwrap()
}

fn signer(kp: &nkeys::KeyPair) -> SenderSigner {
    SenderSigner::new(&seed(kp), Account::new("$G").unwrap()).unwrap()
}

fn agent_id(kp: &nkeys::KeyPair) -> AgentId {
    AgentId::from_parts("$G", &kp.public_key()).unwrap()
}

/// A signed `Agent-Sender` value for `payload` published to `subject` now.
fn signed(signer: &SenderSigner, subject: &str, payload: &[u8]) -> String {
    let ts = SenderTime::from_system_time(SystemTime::now()).unwrap();
    let nonce = Nonce::new(nuid::next().to_string()).unwrap();
    signer.sign(subject, ts, nonce, payload).unwrap().encode()
}

fn sender_headers(value: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(SENDER_HEADER, value);
    headers
}

/// Publishes `payload` with `headers` and returns the reply stream up to
/// and including the terminator.
async fn exchange_with(
    nc: &async_nats::Client,
    subject: &str,
    headers: HeaderMap,
    payload: &'static [u8],
) -> Vec<Message> {
    let inbox = nc.new_inbox();
    let mut sub = nc.subscribe(inbox.clone()).await.unwrap();
    nc.publish_with_reply_and_headers(subject.to_owned(), inbox, headers, payload.into())
        .await
        .unwrap();
    let mut out = Vec::new();
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), sub.next())
            .await
            .expect("the stream ended without a terminator")
            .unwrap();
        let end = is_terminator(&msg);
        out.push(msg);
        if end {
            return out;
        }
    }
}

/// The response text of a successful stream: ack, chunks, terminator.
fn answer(msgs: &[Message]) -> String {
    assert!(
        msgs.iter().all(|m| error_code(m).is_none()),
        "unexpected error: {:?}",
        msgs.iter().map(error_code).collect::<Vec<_>>()
    );
    assert_eq!(body(&msgs[0]), r#"{"type":"status","data":"ack"}"#);
    msgs[1..msgs.len() - 1]
        .iter()
        .map(|m| match Chunk::decode(&m.payload).unwrap() {
            Chunk::Response(d) => d.text().to_owned(),
            other => panic!("unexpected chunk {other:?}"),
        })
        .collect()
}

/// `whoami` from `nc`, with an optional `Agent-Sender` value.
async fn whoami(nc: &async_nats::Client, subject: &str, header: Option<&str>) -> Vec<Message> {
    let headers = header.map(sender_headers).unwrap_or_default();
    exchange_with(nc, subject, headers, WHOAMI.as_bytes()).await
}

#[tokio::test]
async fn signed_claimed_and_absent_senders_reach_the_agent_classified() {
    let users = Users::new();
    let server = users.server();
    let host = connect_as(&server, &users.host).await;
    let caller = connect_as(&server, &users.alice).await;
    let running = AgentService::builder("echo", "ops", "demo")
        .start(host, EchoAgent::default())
        .await
        .unwrap();
    let subject = running.prompt_subject().to_owned();
    let alice = signer(&users.alice);

    // §13.7 step 3: a valid signature makes the sender verified.
    let header = signed(&alice, &subject, WHOAMI.as_bytes());
    let msgs = whoami(&caller, &subject, Some(&header)).await;
    assert_eq!(
        answer(&msgs),
        format!("verified {}", agent_id(&users.alice))
    );

    // Step 4: a well-formed header without `sig` is a claim.
    let claim = alice.claim().encode();
    let msgs = whoami(&caller, &subject, Some(&claim)).await;
    assert_eq!(answer(&msgs), format!("claimed {}", agent_id(&users.alice)));

    // Step 1: no header, or an unknown `v`, is absent.
    assert_eq!(answer(&whoami(&caller, &subject, None).await), "absent");
    let future = claim.replacen(r#""v":1"#, r#""v":2"#, 1);
    assert_ne!(future, claim);
    let msgs = whoami(&caller, &subject, Some(&future)).await;
    assert_eq!(answer(&msgs), "absent");

    // The endpoint declares its requirement, `any` by default (§13.9).
    let info = AgentInfo::from_value(infos(&caller, 1).await.remove(0)).unwrap();
    assert_eq!(info.prompt.min_sender_trust, Some(MinSenderTrust::Any));
    running.stop().await;
}

#[tokio::test]
async fn a_signed_endpoint_refuses_what_is_not_verified_with_401() {
    let users = Users::new();
    let server = users.server();
    let host = connect_as(&server, &users.host).await;
    let caller = connect_as(&server, &users.alice).await;
    let running = AgentService::builder("echo", "ops", "demo")
        .min_sender_trust(MinSenderTrust::Signed)
        .start(host, EchoAgent::default())
        .await
        .unwrap();
    let subject = running.prompt_subject().to_owned();
    let alice = signer(&users.alice);

    let info = AgentInfo::from_value(infos(&caller, 1).await.remove(0)).unwrap();
    assert_eq!(info.prompt.required_trust(), MinSenderTrust::Signed);

    let unsigned = whoami(&caller, &subject, None).await;
    assert_eq!(assert_error_stream(&unsigned, "401"), "signature required");
    let claimed = whoami(&caller, &subject, Some(&alice.claim().encode())).await;
    assert_eq!(assert_error_stream(&claimed, "401"), "signature required");

    let header = signed(&alice, &subject, WHOAMI.as_bytes());
    let msgs = whoami(&caller, &subject, Some(&header)).await;
    assert_eq!(
        answer(&msgs),
        format!("verified {}", agent_id(&users.alice))
    );
    running.stop().await;
}

#[tokio::test]
async fn a_malformed_header_is_a_400_and_the_agent_keeps_serving() {
    let users = Users::new();
    let server = users.server();
    let host = connect_as(&server, &users.host).await;
    let caller = connect_as(&server, &users.alice).await;
    let running = AgentService::builder("echo", "ops", "demo")
        .start(host, EchoAgent::default())
        .await
        .unwrap();
    let subject = running.prompt_subject().to_owned();

    // §13.5.1: not JSON, `v` as a string, a `sig` without `sub`/`ts`/`nonce`.
    let user = users.alice.public_key();
    for bad in [
        "{not json".to_owned(),
        format!(r#"{{"v":"1","account":"$G","user":"{user}"}}"#),
        format!(r#"{{"v":1,"account":"$G","user":"{user}","sig":"AAAA"}}"#),
    ] {
        let msgs = whoami(&caller, &subject, Some(&bad)).await;
        assert_eq!(
            assert_error_stream(&msgs, "400"),
            "malformed Agent-Sender header",
            "{bad}"
        );
    }
    assert_eq!(answer(&whoami(&caller, &subject, None).await), "absent");
    running.stop().await;
}

#[tokio::test]
async fn failing_signatures_are_401_on_an_any_endpoint() {
    let users = Users::new();
    let server = users.server();
    let host = connect_as(&server, &users.host).await;
    let caller = connect_as(&server, &users.alice).await;
    let running = AgentService::builder("echo", "ops", "demo")
        .start(host, EchoAgent::default())
        .await
        .unwrap();
    let subject = running.prompt_subject().to_owned();
    let alice = signer(&users.alice);

    // Tampered: the signature covers another payload.
    let header = signed(&alice, &subject, b"something else");
    let msgs = whoami(&caller, &subject, Some(&header)).await;
    assert_eq!(assert_error_stream(&msgs, "401"), "sender rejected");

    // Tampered: another user's key under alice's signature.
    let header = signed(&alice, &subject, WHOAMI.as_bytes())
        .replace(&users.alice.public_key(), &users.bob.public_key());
    let msgs = whoami(&caller, &subject, Some(&header)).await;
    assert_eq!(assert_error_stream(&msgs, "401"), "sender rejected");

    // Transplanted: a valid header signed for another agent's subject.
    let elsewhere = "agents.prompt.echo.ops.other";
    let header = signed(&alice, elsewhere, WHOAMI.as_bytes());
    let msgs = whoami(&caller, &subject, Some(&header)).await;
    assert_eq!(assert_error_stream(&msgs, "401"), "sender rejected");

    // Replayed: the same header and payload twice.
    let header = signed(&alice, &subject, WHOAMI.as_bytes());
    let first = whoami(&caller, &subject, Some(&header)).await;
    assert_eq!(
        answer(&first),
        format!("verified {}", agent_id(&users.alice))
    );
    let again = whoami(&caller, &subject, Some(&header)).await;
    assert_eq!(assert_error_stream(&again, "401"), "sender rejected");

    // Stale: outside the replay window.
    let old = SenderTime::from_system_time(SystemTime::now() - Duration::from_secs(300)).unwrap();
    let header = alice
        .sign(
            subject.as_str(),
            old,
            Nonce::new("stale").unwrap(),
            WHOAMI.as_bytes(),
        )
        .unwrap()
        .encode();
    let msgs = whoami(&caller, &subject, Some(&header)).await;
    assert_eq!(assert_error_stream(&msgs, "401"), "sender rejected");

    // Refusals are counted like every other error ($SRV.STATS).
    let stats = caller
        .request(format!("$SRV.STATS.agents.{}", running.id()), "".into())
        .await
        .unwrap();
    let stats: serde_json::Value = serde_json::from_slice(&stats.payload).unwrap();
    let prompt = stats["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "prompt")
        .unwrap();
    assert_eq!(prompt["num_errors"], 5);
    assert_eq!(prompt["num_requests"], 6);
    running.stop().await;
}

#[tokio::test]
async fn status_requests_are_answered_whatever_their_sender() {
    let users = Users::new();
    let server = users.server();
    let host = connect_as(&server, &users.host).await;
    let caller = connect_as(&server, &users.alice).await;
    let running = AgentService::builder("echo", "ops", "demo")
        .min_sender_trust(MinSenderTrust::Signed)
        .accept_senders([agent_id(&users.bob)])
        .start(host, EchoAgent::default())
        .await
        .unwrap();
    let subject = running.status_subject().to_owned();
    let alice = signer(&users.alice);
    let good = signed(&alice, &subject, b"");
    let tampered = signed(&alice, &subject, b"another payload");
    let elsewhere = signed(&alice, running.prompt_subject(), b"");

    for header in [
        None,
        Some("{not json"),
        Some(tampered.as_str()),
        Some(elsewhere.as_str()),
        Some(good.as_str()),
        // The same header again: a replay, still answered.
        Some(good.as_str()),
    ] {
        let headers = header.map(sender_headers).unwrap_or_default();
        let reply = caller
            .request_with_headers(subject.clone(), headers, "".into())
            .await
            .unwrap();
        assert!(error_code(&reply).is_none(), "{header:?}");
        // §13.11: a status reply is never signed.
        assert!(
            reply
                .headers
                .as_ref()
                .is_none_or(|h| h.get(SENDER_HEADER).is_none())
        );
        let hb = Heartbeat::decode(&reply.payload).unwrap();
        assert_eq!(hb.instance_id, running.id());
    }
    running.stop().await;
}

#[tokio::test]
async fn the_acceptance_hook_refuses_with_403_or_401() {
    let users = Users::new();
    let server = users.server();
    let host = connect_as(&server, &users.host).await;
    let caller = connect_as(&server, &users.alice).await;
    let running = AgentService::builder("echo", "ops", "demo")
        .accept_senders([agent_id(&users.alice)])
        .start(host, EchoAgent::default())
        .await
        .unwrap();
    let subject = running.prompt_subject().to_owned();
    let alice = signer(&users.alice);
    let bob = signer(&users.bob);

    // §13.7.3: a verified sender not accepted is 403.
    let header = signed(&bob, &subject, WHOAMI.as_bytes());
    let msgs = whoami(&caller, &subject, Some(&header)).await;
    assert_eq!(assert_error_stream(&msgs, "403"), "sender rejected");
    // A refused sender that is only claimed, or absent, is 401: nothing
    // was authenticated. Even when the claim names an accepted ID.
    let msgs = whoami(&caller, &subject, Some(&alice.claim().encode())).await;
    assert_error_stream(&msgs, "401");
    assert_error_stream(&whoami(&caller, &subject, None).await, "401");

    let header = signed(&alice, &subject, WHOAMI.as_bytes());
    let msgs = whoami(&caller, &subject, Some(&header)).await;
    assert_eq!(
        answer(&msgs),
        format!("verified {}", agent_id(&users.alice))
    );
    running.stop().await;
}

#[tokio::test]
async fn a_closure_hook_sees_the_classified_sender() {
    let users = Users::new();
    let server = users.server();
    let host = connect_as(&server, &users.host).await;
    let caller = connect_as(&server, &users.alice).await;
    let seen: Arc<Mutex<Vec<TrustClass>>> = Arc::default();
    let running = AgentService::builder("echo", "ops", "demo")
        .accept_sender({
            let seen = seen.clone();
            move |sender: &Sender| {
                seen.lock().unwrap().push(sender.class());
                sender.class() != TrustClass::Claimed
            }
        })
        .start(host, EchoAgent::default())
        .await
        .unwrap();
    let subject = running.prompt_subject().to_owned();
    let alice = signer(&users.alice);

    assert_eq!(answer(&whoami(&caller, &subject, None).await), "absent");
    let msgs = whoami(&caller, &subject, Some(&alice.claim().encode())).await;
    assert_eq!(assert_error_stream(&msgs, "401"), "signature required");
    let header = signed(&alice, &subject, WHOAMI.as_bytes());
    answer(&whoami(&caller, &subject, Some(&header)).await);
    // A malformed header never reaches the hook.
    assert_error_stream(&whoami(&caller, &subject, Some("{")).await, "400");
    assert_eq!(
        *seen.lock().unwrap(),
        [
            TrustClass::Absent,
            TrustClass::Claimed,
            TrustClass::Verified
        ]
    );
    running.stop().await;
}

/// The first heartbeat on `subject`, which the host publishes right away.
async fn first_beat(sub: &mut async_nats::Subscriber) -> Message {
    tokio::time::timeout(Duration::from_secs(10), sub.next())
        .await
        .expect("no heartbeat")
        .unwrap()
}

#[tokio::test]
async fn an_agent_with_its_seed_registers_a_verifiable_identity_and_signs_heartbeats() {
    let users = Users::new();
    let server = users.current_server();
    let key = SenderKey::from_seed(&seed(&users.host)).unwrap();
    let host = connect_host(&server, &key).await;
    let caller = connect_as(&server, &users.alice).await;
    let mut beats = caller.subscribe("agents.hb.>").await.unwrap();
    caller.flush().await.unwrap();
    let running = AgentService::builder("echo", "ops", "demo")
        .sender_key(key)
        .start(host, EchoAgent::default())
        .await
        .unwrap();
    let me = agent_id(&users.host);
    assert_eq!(running.identity(), Some(&me));

    // §13.10: user_nkey, account and an id_sig over the advertised subject.
    let raw = infos(&caller, 1).await.remove(0);
    assert_eq!(raw["metadata"]["user_nkey"], users.host.public_key());
    assert_eq!(raw["metadata"]["account"], "$G");
    assert!(raw["metadata"]["id_sig"].is_string());
    let info = AgentInfo::from_value(raw).unwrap();
    assert_eq!(info.identity, RegisteredIdentity::Verified(me.clone()));

    // §13.11: every heartbeat carries a valid signed header, `sub` the
    // heartbeat subject and `ts` the beat's own.
    let beat = first_beat(&mut beats).await;
    assert_eq!(beat.subject.as_str(), running.heartbeat_subject());
    let values: Vec<String> = beat
        .headers
        .as_ref()
        .expect("a signed heartbeat has headers")
        .get_all(SENDER_HEADER)
        .map(|v| v.to_string())
        .collect();
    assert_eq!(values.len(), 1);
    let sender = SenderVerifier::default()
        .classify(
            SystemTime::now(),
            beat.subject.as_str(),
            values.iter().map(String::as_str),
            &beat.payload,
        )
        .unwrap();
    assert_eq!(sender.verified_id(), Some(&me));
    let SenderHeader::Signed(header) = SenderHeader::decode(&values[0]).unwrap() else {
        panic!("not signed")
    };
    let hb = Heartbeat::decode(&beat.payload).unwrap();
    assert_eq!(header.ts.as_str(), hb.ts);
    assert_eq!(header.sub, running.heartbeat_subject());

    // Replies are never signed (§13.11), prompt streams included.
    let header = signed(
        &signer(&users.alice),
        running.prompt_subject(),
        WHOAMI.as_bytes(),
    );
    let msgs = whoami(&caller, running.prompt_subject(), Some(&header)).await;
    assert!(msgs.iter().all(|m| {
        m.headers
            .as_ref()
            .is_none_or(|h| h.get(SENDER_HEADER).is_none())
    }));
    running.stop().await;
}

#[tokio::test]
async fn heartbeats_get_a_fresh_nonce_each() {
    let users = Users::new();
    let server = users.current_server();
    let key = SenderKey::from_seed(&seed(&users.host)).unwrap();
    let host = connect_host(&server, &key).await;
    let caller = connect_as(&server, &users.alice).await;
    let mut beats = caller.subscribe("agents.hb.>").await.unwrap();
    caller.flush().await.unwrap();
    let running = AgentService::builder("echo", "ops", "demo")
        .sender_key(key)
        .heartbeat_interval(Duration::from_secs(1))
        .start(host, EchoAgent::default())
        .await
        .unwrap();
    let mut verifier = SenderVerifier::default();
    let mut nonces = std::collections::HashSet::new();
    for _ in 0..3 {
        let beat = first_beat(&mut beats).await;
        let value = beat.headers.as_ref().unwrap().get(SENDER_HEADER).unwrap();
        // The verifier's nonce set refuses a repeated nonce.
        let sender = verifier
            .classify(
                SystemTime::now(),
                beat.subject.as_str(),
                [value.as_str()],
                &beat.payload,
            )
            .unwrap();
        assert_eq!(sender.verified_id(), Some(&agent_id(&users.host)));
        let SenderHeader::Signed(header) = SenderHeader::decode(value.as_str()).unwrap() else {
            panic!("not signed")
        };
        assert!(nonces.insert(header.nonce.as_str().to_owned()));
    }
    running.stop().await;
}

#[tokio::test]
async fn without_a_known_identity_the_agent_serves_unsigned_and_still_verifies() {
    // The host may not ask `$SYS.REQ.USER.INFO` (nor could it on 2.9): its
    // identity is unknown (§13.4), so there is nothing to register or sign with.
    let users = Users::new();
    let server = users.server_hiding_identity();
    let key = SenderKey::from_seed(&seed(&users.host)).unwrap();
    let host = connect_host(&server, &key).await;
    let caller = connect_as(&server, &users.alice).await;
    let mut beats = caller.subscribe("agents.hb.>").await.unwrap();
    caller.flush().await.unwrap();
    let running = AgentService::builder("echo", "ops", "demo")
        .sender_key(key)
        .min_sender_trust(MinSenderTrust::Signed)
        .start(host, EchoAgent::default())
        .await
        .unwrap();
    assert_eq!(running.identity(), None);
    let raw = infos(&caller, 1).await.remove(0);
    assert!(raw["metadata"].get("user_nkey").is_none());
    assert!(raw["metadata"].get("id_sig").is_none());
    let info = AgentInfo::from_value(raw).unwrap();
    assert_eq!(info.identity, RegisteredIdentity::Undeclared);
    let beat = first_beat(&mut beats).await;
    assert!(
        beat.headers
            .as_ref()
            .is_none_or(|h| h.get(SENDER_HEADER).is_none())
    );

    // Verification needs no identity of the agent's own (§13.9).
    let subject = running.prompt_subject().to_owned();
    let header = signed(&signer(&users.alice), &subject, WHOAMI.as_bytes());
    let msgs = whoami(&caller, &subject, Some(&header)).await;
    assert_eq!(
        answer(&msgs),
        format!("verified {}", agent_id(&users.alice))
    );
    assert_error_stream(&whoami(&caller, &subject, None).await, "401");
    running.stop().await;
}

/// Records what an interceptor saw, with a label.
#[derive(Clone, Default)]
struct Journal(Arc<Mutex<Vec<String>>>);

impl Journal {
    fn push(&self, line: String) {
        self.0.lock().unwrap().push(line);
    }
    fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

struct Tagger {
    journal: Journal,
}

#[async_trait]
impl RequestInterceptor for Tagger {
    async fn before(&self, request: &Request) -> Decision {
        self.journal
            .push(format!("tagger before {}", request.sender()));
        match request.sender().verified_id() {
            Some(id) => Decision::amend([("caller", serde_json::Value::from(id.to_string()))]),
            None => Decision::Pass,
        }
    }

    async fn after(&self, request: &Request, outcome: &TurnOutcome) {
        self.journal.push(format!(
            "tagger after {} caller={} error={:?} ran={}",
            request.prompt(),
            request.envelope.extra.get("caller").is_some(),
            outcome.error.as_ref().map(|e| e.code.as_u16()),
            outcome.agent_ran
        ));
    }
}

struct Bouncer {
    journal: Journal,
}

#[async_trait]
impl RequestInterceptor for Bouncer {
    async fn before(&self, request: &Request) -> Decision {
        self.journal.push("bouncer before".to_owned());
        if request.prompt() == "forbidden" {
            Decision::Refuse(ServiceError::new(StatusCode::Forbidden, "not today"))
        } else {
            Decision::Pass
        }
    }

    async fn after(&self, _request: &Request, outcome: &TurnOutcome) {
        self.journal.push(format!(
            "bouncer after error={:?}",
            outcome.error.as_ref().map(|e| e.code.as_u16())
        ));
    }
}

#[tokio::test]
async fn interceptors_amend_refuse_and_see_the_end_of_each_turn() {
    let users = Users::new();
    let server = users.server();
    let host = connect_as(&server, &users.host).await;
    let caller = connect_as(&server, &users.alice).await;
    let journal = Journal::default();
    // Answers with the `caller` field the interceptor added (§5.6), fails on "fail".
    let agent = agent_fn(|req: Request, out: Responder| async move {
        if req.prompt() == "fail" {
            return Err(AgentError::conflict("failed on purpose"));
        }
        let caller = req
            .envelope
            .extra
            .get("caller")
            .and_then(|v| v.as_str())
            .unwrap_or("nobody")
            .to_owned();
        out.text(format!("{} from {caller}", req.prompt())).await?;
        Ok::<_, AgentError>(())
    });
    let running = AgentService::builder("echo", "ops", "demo")
        .interceptor(Tagger {
            journal: journal.clone(),
        })
        .interceptor(Bouncer {
            journal: journal.clone(),
        })
        .start(host, agent)
        .await
        .unwrap();
    let subject = running.prompt_subject().to_owned();
    let alice = signer(&users.alice);
    let me = agent_id(&users.alice);

    // Amend: the agent finds the field in `envelope.extra`.
    let header = signed(&alice, &subject, b"hello");
    let msgs = exchange_with(&caller, &subject, sender_headers(&header), b"hello").await;
    assert_eq!(answer(&msgs), format!("hello from {me}"));
    let msgs = exchange_with(&caller, &subject, HeaderMap::new(), b"hello").await;
    assert_eq!(answer(&msgs), "hello from nobody");

    // Refuse: ack, the interceptor's error, terminator; the agent never runs.
    let msgs = exchange_with(&caller, &subject, HeaderMap::new(), b"forbidden").await;
    assert_eq!(assert_error_stream(&msgs, "403"), "not today");

    // The end of a failing turn is observed too.
    let msgs = exchange_with(&caller, &subject, HeaderMap::new(), b"fail").await;
    assert_eq!(assert_error_stream(&msgs, "409"), "failed on purpose");

    // A request refused before the interceptors (400) is never shown to them.
    let msgs = exchange_with(&caller, &subject, sender_headers("{"), b"hello").await;
    assert_error_stream(&msgs, "400");

    // The stream ends after the `after` hooks, so the journal is complete.
    assert_eq!(
        journal.lines(),
        [
            format!("tagger before verified {me}"),
            "bouncer before".to_owned(),
            "bouncer after error=None".to_owned(),
            "tagger after hello caller=true error=None ran=true".to_owned(),
            "tagger before absent".to_owned(),
            "bouncer before".to_owned(),
            "bouncer after error=None".to_owned(),
            "tagger after hello caller=false error=None ran=true".to_owned(),
            "tagger before absent".to_owned(),
            "bouncer before".to_owned(),
            "bouncer after error=Some(403)".to_owned(),
            "tagger after forbidden caller=false error=Some(403) ran=false".to_owned(),
            "tagger before absent".to_owned(),
            "bouncer before".to_owned(),
            "bouncer after error=Some(409)".to_owned(),
            "tagger after fail caller=false error=Some(409) ran=true".to_owned(),
        ]
    );
    running.stop().await;
}
