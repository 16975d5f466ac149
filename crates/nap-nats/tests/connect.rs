//! `nap_nats::connect` against real servers, one per way of
//! authenticating: URL only, user and password, token, NKEY seed file,
//! credentials file (operator mode), TLS with a CA, a NATS CLI context
//! (selected or named) and the `NATS_*` variables, given as an explicit
//! map so that no test touches the process environment.
#![allow(clippy::unwrap_used, missing_docs)]

use std::collections::HashMap;
use std::path::Path;

use nap_nats::connect::{ConnectError, Connection, ConnectionConfig};
use nap_testkit::NatsServer;
use nap_testkit::identity::{IdentityServer, Topology};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};

fn vars(pairs: &[(&str, &str)]) -> ConnectionConfig {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    ConnectionConfig::from_vars(move |name| map.get(name).cloned())
}

/// The connection works: a request to a subscription on it is answered.
async fn round_trip(connection: &Connection) {
    use futures::StreamExt;
    let nats = &connection.nats;
    let subject = nats.new_inbox();
    let mut sub = nats.subscribe(subject.clone()).await.unwrap();
    let responder = nats.clone();
    tokio::spawn(async move {
        if let Some(msg) = sub.next().await
            && let Some(reply) = msg.reply
        {
            responder.publish(reply, "pong".into()).await.unwrap();
        }
    });
    let answer = nats.request(subject, "ping".into()).await.unwrap();
    assert_eq!(&answer.payload[..], b"pong");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn url_only_and_unreachable_servers() {
    let mut server = NatsServer::start().unwrap();
    let url = server.url();
    let connection = vars(&[("NATS_URL", &url)]).connect().await.unwrap();
    assert!(connection.key.is_none());
    round_trip(&connection).await;
    drop(connection);

    server.stop().unwrap();
    let err = vars(&[("NATS_URL", &url)]).connect().await.unwrap_err();
    assert!(matches!(err, ConnectError::Unreachable { .. }), "{err:?}");
    assert!(err.to_string().contains(&url), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_and_password() {
    let server = NatsServer::builder()
        .extra_config("authorization { user: a, password: b }")
        .start()
        .unwrap();
    let url = server.url();
    let ok = vars(&[
        ("NATS_URL", &url),
        ("NATS_USER", "a"),
        ("NATS_PASSWORD", "b"),
    ]);
    round_trip(&ok.connect().await.unwrap()).await;
    let bad = vars(&[
        ("NATS_URL", &url),
        ("NATS_USER", "a"),
        ("NATS_PASSWORD", "x"),
    ]);
    let err = bad.connect().await.unwrap_err();
    assert!(matches!(err, ConnectError::Auth { .. }), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token() {
    let server = NatsServer::builder()
        .extra_config("authorization { token: s3cret }")
        .start()
        .unwrap();
    let url = server.url();
    let ok = vars(&[("NATS_URL", &url), ("NATS_TOKEN", "s3cret")]);
    round_trip(&ok.connect().await.unwrap()).await;
    let err = vars(&[("NATS_URL", &url), ("NATS_TOKEN", "wrong")])
        .connect()
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectError::Auth { .. }), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nkey_seed_file_authenticates_and_signs() {
    let user = nkeys::KeyPair::new_user();
    let server = NatsServer::builder()
        .extra_config(format!(
            "authorization {{ users: [ {{ nkey: {} }} ] }}",
            user.public_key()
        ))
        .start()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let seed = dir.path().join("user.nk");
    std::fs::write(&seed, format!("{}\n", user.seed().unwrap())).unwrap();
    let url = server.url();
    let connection = vars(&[("NATS_URL", &url), ("NATS_NKEY", seed.to_str().unwrap())])
        .connect()
        .await
        .unwrap();
    round_trip(&connection).await;
    let key = connection.key.as_ref().unwrap();
    assert_eq!(key.user().to_string(), user.public_key());

    std::fs::write(&seed, "no seed here").unwrap();
    let err = vars(&[("NATS_URL", &url), ("NATS_NKEY", seed.to_str().unwrap())])
        .connect()
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectError::Nkey { .. }), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creds_file_in_operator_mode() {
    let server = IdentityServer::start(Topology::OperatorMode).unwrap();
    let user = server.caller();
    let creds = user.creds.clone().unwrap();
    let connection = vars(&[
        ("NATS_URL", &server.url()),
        ("NATS_CREDS", creds.to_str().unwrap()),
    ])
    .connect()
    .await
    .unwrap();
    round_trip(&connection).await;
    let key = connection.key.as_ref().unwrap();
    assert_eq!(key.user().to_string(), user.public_key);
    assert!(key.jwt_identity().is_some());

    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.creds");
    let err = vars(&[
        ("NATS_URL", &server.url()),
        ("NATS_CREDS", missing.to_str().unwrap()),
    ])
    .connect()
    .await
    .unwrap_err();
    assert!(matches!(err, ConnectError::Creds { .. }), "{err:?}");
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_a_ca() {
    let dir = tempfile::tempdir().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let ca_file = write(dir.path(), "ca.pem", &ca.pem());
    let server = NatsServer::builder()
        .extra_config(format!(
            "tls {{ cert_file: \"{}\", key_file: \"{}\", timeout: 5 }}",
            write(dir.path(), "server.pem", &cert.pem()),
            write(dir.path(), "server-key.pem", &key.serialize_pem()),
        ))
        .start()
        .unwrap();
    let url = server.url().replace("nats://", "tls://");
    let connection = vars(&[("NATS_URL", &url), ("NATS_CA", &ca_file)])
        .connect()
        .await
        .unwrap();
    round_trip(&connection).await;

    let missing = dir.path().join("nope.pem");
    let err = vars(&[("NATS_URL", &url), ("NATS_CA", missing.to_str().unwrap())])
        .connect()
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectError::TlsFile { .. }), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contexts_selected_named_and_overridden() {
    let server = NatsServer::builder()
        .extra_config("authorization { user: a, password: b }")
        .start()
        .unwrap();
    let xdg = tempfile::tempdir().unwrap();
    let dir = xdg.path().join("nats/context");
    std::fs::create_dir_all(&dir).unwrap();
    let context = |url: &str, password: &str| {
        format!(
            r#"{{"description":"","url":"{url}","user":"a","password":"{password}","token":"","creds":"","nkey":"","cert":"","key":"","ca":"","nsc":"","jetstream_domain":""}}"#
        )
    };
    std::fs::write(dir.join("good.json"), context(&server.url(), "b")).unwrap();
    std::fs::write(dir.join("bad.json"), context(&server.url(), "x")).unwrap();
    std::fs::write(
        dir.join("elsewhere.json"),
        context("nats://127.0.0.1:1", "b"),
    )
    .unwrap();
    let xdg_dir = xdg.path().to_str().unwrap();

    // The selected context (context.txt) is used when none is named.
    std::fs::write(xdg.path().join("nats/context.txt"), "good\n").unwrap();
    let config = vars(&[("XDG_CONFIG_HOME", xdg_dir)]);
    let settings = config.resolve().unwrap();
    assert_eq!(settings.context.as_deref(), Some("good"));
    round_trip(&config.connect().await.unwrap()).await;

    // NATS_CONTEXT names another one.
    let config = vars(&[("XDG_CONFIG_HOME", xdg_dir), ("NATS_CONTEXT", "bad")]);
    let err = config.connect().await.unwrap_err();
    assert!(matches!(err, ConnectError::Auth { .. }), "{err:?}");
    assert!(err.to_string().contains("context \"bad\""), "{err}");

    // NATS_URL and NATS_PASSWORD win over the context's.
    let config = vars(&[
        ("XDG_CONFIG_HOME", xdg_dir),
        ("NATS_CONTEXT", "elsewhere"),
        ("NATS_URL", &server.url()),
    ]);
    round_trip(&config.connect().await.unwrap()).await;
    let config = vars(&[
        ("XDG_CONFIG_HOME", xdg_dir),
        ("NATS_CONTEXT", "bad"),
        ("NATS_PASSWORD", "b"),
    ]);
    round_trip(&config.connect().await.unwrap()).await;

    // A missing or broken context file is its own error.
    let err = vars(&[("XDG_CONFIG_HOME", xdg_dir), ("NATS_CONTEXT", "nope")])
        .connect()
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectError::Context(_)), "{err:?}");
    std::fs::write(dir.join("broken.json"), "{not json").unwrap();
    let err = vars(&[("XDG_CONFIG_HOME", xdg_dir), ("NATS_CONTEXT", "broken")])
        .connect()
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectError::Context(_)), "{err:?}");
}

#[tokio::test]
async fn a_non_nats_scheme_is_refused_before_connecting() {
    let err = vars(&[("NATS_URL", "http://127.0.0.1:4222")])
        .connect()
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ConnectError::UnsupportedScheme { scheme, .. } if scheme == "http"),
        "{err:?}"
    );
}
