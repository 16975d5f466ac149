//! Sender identity (§13) from the command line, on a current nats-server
//! with NKEY users: `--nkey` signs `prompt` and `status` requests, a
//! signed-only agent without a key exits 5 with one line naming §13, and
//! `discover`/`info` show each registered identity with its trust class.
//!
//! The agents here are hand-written: a `$SRV.INFO.agents` responder with
//! chosen records and a subscriber on the prompt subject, so the test sees
//! the raw request.
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use std::time::SystemTime;

use futures::StreamExt;
use nap_proto::identity::{
    Account, AgentId, MinSenderTrust, RegistrationIdentity, SENDER_HEADER, SenderSigner,
    SenderVerifier, TrustClass,
};
use nap_testkit::NatsServer;
use serde_json::{Value, json};
use support::{assert_exit, stderr, stdout};
use tokio::task::JoinHandle;

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

/// A current server with NKEY users `caller` and `agent` and a password
/// user `plain` (no accounts: the account is `$G`).
fn server(caller: &User, agent: &User) -> NatsServer {
    NatsServer::builder()
        .binary(nap_testkit::tools_nats_server(&nap_testkit::tools_dir()))
        .extra_config(format!(
            "authorization {{ users: [ {{nkey: {}}}, {{nkey: {}}}, {{user: plain, password: secret}} ] }}",
            caller.public, agent.public
        ))
        .start()
        .unwrap()
}

/// A `$SRV.INFO.agents` record of `fake/test/{name}`, its prompt endpoint
/// declaring `trust`, its identity signed by `signer` when given.
fn record(name: &str, trust: Option<&str>, signer: Option<&SenderSigner>) -> Value {
    let prompt = format!("agents.prompt.fake.test.{name}");
    let mut metadata = json!({"agent": "fake", "owner": "test", "protocol_version": "0.3"});
    if let Some(signer) = signer {
        let registration = RegistrationIdentity::sign(signer, "fake", "test", &prompt).unwrap();
        for (k, v) in registration.metadata() {
            metadata[k] = Value::String(v);
        }
    }
    let mut prompt_meta = json!({"max_payload": "1MB", "attachments_ok": "true"});
    if let Some(trust) = trust {
        prompt_meta["min_sender_trust"] = json!(trust);
    }
    json!({
        "type": "io.nats.micro.v1.info_response",
        "name": "agents",
        "id": format!("ID{}", name.to_uppercase()),
        "version": "1.0.0",
        "description": "hand-written",
        "metadata": metadata,
        "endpoints": [
            {"name": "prompt", "subject": prompt, "queue_group": "agents", "metadata": prompt_meta},
            {"name": "status", "subject": format!("agents.status.fake.test.{name}"), "queue_group": "agents", "metadata": null}
        ]
    })
}

/// Answers `$SRV.INFO.agents` with `records`, each prompt with an ack and
/// the terminator, and each status request with a heartbeat; every request
/// received is sent to the returned channel.
async fn fake_agents(
    nats: &async_nats::Client,
    records: Vec<Value>,
) -> (
    JoinHandle<()>,
    tokio::sync::mpsc::UnboundedReceiver<async_nats::Message>,
) {
    let mut info = nats.subscribe("$SRV.INFO.agents").await.unwrap();
    let mut requests = nats.subscribe("agents.*.fake.test.*").await.unwrap();
    nats.flush().await.unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let nats = nats.clone();
    let task = tokio::spawn(async move {
        loop {
            tokio::select! {
                Some(msg) = info.next() => {
                    for record in &records {
                        nats.publish(msg.reply.clone().unwrap(), record.to_string().into()).await.unwrap();
                    }
                }
                Some(msg) = requests.next() => {
                    let reply = msg.reply.clone().unwrap();
                    if msg.subject.starts_with("agents.status.") {
                        let name = msg.subject.rsplit('.').next().unwrap().to_owned();
                        let beat = json!({"agent": "fake", "owner": "test", "instance_id": format!("ID{}", name.to_uppercase()),
                            "ts": nap_proto::utc_timestamp(SystemTime::now()).unwrap(), "interval_s": 30});
                        nats.publish(reply, beat.to_string().into()).await.unwrap();
                    } else {
                        nats.publish(reply.clone(), bytes_of(br#"{"type":"status","data":"ack"}"#).into()).await.unwrap();
                        nats.publish(reply.clone(), bytes_of(br#"{"type":"response","data":"ok"}"#).into()).await.unwrap();
                        nats.publish(reply, Vec::new().into()).await.unwrap();
                    }
                    nats.flush().await.unwrap();
                    let _ = tx.send(msg);
                }
                else => break,
            }
        }
    });
    (task, rx)
}

fn seed_file(dir: &std::path::Path, user: &User) -> String {
    let path = dir.join("user.nk");
    std::fs::write(&path, format!("{}\n", user.seed)).unwrap();
    path.to_str().unwrap().to_owned()
}

fn global(user: &User) -> AgentId {
    AgentId::from_parts("$G", &user.public).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nkey_callers_sign_and_signed_only_agents_refuse_the_others() {
    let caller = new_user();
    let agent = new_user();
    let server = server(&caller, &agent);
    let url = server.url();
    let agent_nats = async_nats::ConnectOptions::with_nkey(agent.seed.clone())
        .connect(&url)
        .await
        .unwrap();
    let (_task, mut requests) =
        fake_agents(&agent_nats, vec![record("strict", Some("signed"), None)]).await;
    let dir = tempfile::tempdir().unwrap();
    let seed = seed_file(dir.path(), &caller);
    let mut verifier = SenderVerifier::default();

    // With --nkey: the prompt and the status request are signed (§13.5).
    let out = support::run(&url, &["--nkey", &seed, "prompt", "fake/test/strict", "hi"]).await;
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), "ok\n");
    let out = support::run(&url, &["--nkey", &seed, "status", "fake/test/strict"]).await;
    assert_exit(&out, 0);
    for verb in ["prompt", "status"] {
        let msg = requests.recv().await.unwrap();
        assert!(
            msg.subject.starts_with(&format!("agents.{verb}.")),
            "{}",
            msg.subject
        );
        let values: Vec<String> = msg
            .headers
            .as_ref()
            .unwrap()
            .get_all(SENDER_HEADER)
            .map(|v| v.as_str().to_owned())
            .collect();
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
        assert_eq!(sender.verified_id(), Some(&global(&caller)));
    }

    // A password user cannot sign: exit 5, one line naming §13 and the remedy,
    // nothing sent.
    let out = support::run(
        &url,
        &[
            "--user",
            "plain",
            "--password",
            "secret",
            "prompt",
            "fake/test/strict",
            "hi",
        ],
    )
    .await;
    assert_exit(&out, 5);
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("§13") && err.contains("--nkey") && err.contains("--creds"),
        "{err}"
    );
    // Its status request is still answered, unsigned (§13.9).
    let out = support::run(
        &url,
        &[
            "--user",
            "plain",
            "--password",
            "secret",
            "status",
            "fake/test/strict",
        ],
    )
    .await;
    assert_exit(&out, 0);
    let msg = requests.recv().await.unwrap();
    assert!(
        msg.subject.starts_with("agents.status."),
        "the prompt was never sent: {}",
        msg.subject
    );
    assert!(msg.headers.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discover_and_info_show_identities_with_their_trust_class() {
    let caller = new_user();
    let agent = new_user();
    let server = server(&caller, &agent);
    let url = server.url();
    let agent_nats = async_nats::ConnectOptions::with_nkey(agent.seed.clone())
        .connect(&url)
        .await
        .unwrap();
    let signer = SenderSigner::new(&agent.seed, Account::new("$G").unwrap()).unwrap();
    let mut claimed = record("claimed", None, None);
    claimed["metadata"]["user_nkey"] = json!(caller.public);
    claimed["metadata"]["account"] = json!("$G");
    let records = vec![
        record("verified", Some("signed"), Some(&signer)),
        claimed,
        record("anonymous", None, None),
    ];
    let (_task, _requests) = fake_agents(&agent_nats, records).await;
    let dir = tempfile::tempdir().unwrap();
    let seed = seed_file(dir.path(), &caller);

    let out = support::run(&url, &["--nkey", &seed, "discover"]).await;
    assert_exit(&out, 0);
    let table = stdout(&out);
    assert!(table.contains("Identity"), "{table}");
    // A 59-character ID may wrap in the table; its class may not.
    assert!(table.contains("verified"), "{table}");
    assert!(table.contains("claimed"), "{table}");
    assert!(table.contains("none"), "{table}");

    let out = support::run(&url, &["--nkey", &seed, "discover", "--json"]).await;
    assert_exit(&out, 0);
    let records: Value = serde_json::from_slice(&out.stdout).unwrap();
    let by_name = |name: &str| -> Value {
        records
            .as_array()
            .unwrap()
            .iter()
            .find(|r| {
                r["endpoints"][0]["subject"]
                    .as_str()
                    .unwrap()
                    .ends_with(name)
            })
            .unwrap()["nap_identity"]
            .clone()
    };
    assert_eq!(
        by_name("verified"),
        json!({"class": "verified", "id": global(&agent).to_string()})
    );
    assert_eq!(
        by_name("claimed"),
        json!({"class": "claimed", "id": global(&caller).to_string(), "reason": "no id_sig"})
    );
    assert_eq!(by_name("anonymous"), json!({"class": "none"}));

    let out = support::run(&url, &["--nkey", &seed, "info", "fake/test/verified"]).await;
    assert_exit(&out, 0);
    let text = stdout(&out);
    assert!(
        text.contains(&format!("Identity:     verified {}", global(&agent))),
        "{text}"
    );
    assert!(text.contains("Sender trust: signed"), "{text}");
}

fn bytes_of(b: &'static [u8]) -> Vec<u8> {
    b.to_vec()
}
