#![allow(clippy::unwrap_used)]
//! A single `nats-server`: start, connect, restart, options.

use std::time::Duration;

use futures::StreamExt;
use nap_testkit::NatsServer;

const WAIT: Duration = Duration::from_secs(10);

async fn round_trip(client: &async_nats::Client, subject: &str) {
    let mut sub = client.subscribe(subject.to_owned()).await.unwrap();
    client.flush().await.unwrap();
    client
        .publish(subject.to_owned(), "ping".into())
        .await
        .unwrap();
    let msg = tokio::time::timeout(WAIT, sub.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&msg.payload[..], b"ping");
}

#[tokio::test]
async fn start_and_round_trip() {
    let server = NatsServer::start().unwrap();
    assert_eq!(server.url(), format!("nats://127.0.0.1:{}", server.port()));
    assert!(server.pid().is_some());

    let client = async_nats::connect(server.url()).await.unwrap();
    round_trip(&client, "nap.testkit.hello").await;
}

#[test]
fn two_servers_get_different_ports() {
    let a = NatsServer::start().unwrap();
    let b = NatsServer::start().unwrap();
    assert_ne!(a.port(), b.port());
    assert_ne!(a.monitoring_port(), b.monitoring_port());
    assert_ne!(a.dir(), b.dir());
}

#[tokio::test]
async fn restart_keeps_the_port_and_clients_reconnect() {
    let mut server = NatsServer::start().unwrap();
    let url = server.url();
    let old_pid = server.pid();

    let client = async_nats::connect(&url).await.unwrap();
    let mut sub = client.subscribe("nap.testkit.restart").await.unwrap();
    client.flush().await.unwrap();

    server.restart().unwrap();
    assert_eq!(server.url(), url);
    assert_ne!(server.pid(), old_pid);

    // A fresh connection to the same URL works ...
    let fresh = async_nats::connect(&url).await.unwrap();
    round_trip(&fresh, "nap.testkit.fresh").await;

    // ... and the old client reconnects and resubscribes: publish until its
    // subscription sees a message.
    let received = tokio::time::timeout(WAIT, async {
        loop {
            fresh
                .publish("nap.testkit.restart", "again".into())
                .await
                .unwrap();
            fresh.flush().await.unwrap();
            if let Ok(Some(msg)) =
                tokio::time::timeout(Duration::from_millis(100), sub.next()).await
            {
                return msg;
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(&received.payload[..], b"again");
}

#[test]
fn stop_kills_the_process_and_is_idempotent() {
    let mut server = NatsServer::start().unwrap();
    let port = server.port();
    server.stop().unwrap();
    assert!(server.pid().is_none());
    server.stop().unwrap();
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
}

#[tokio::test]
async fn max_payload_is_applied() {
    let server = NatsServer::builder().max_payload(4096).start().unwrap();
    let client = async_nats::connect(server.url()).await.unwrap();
    assert_eq!(client.server_info().max_payload, 4096);
}

#[tokio::test]
async fn extra_config_enables_authentication() {
    let server = NatsServer::builder()
        .extra_config(r#"authorization { token: "s3cr3t" }"#)
        .start()
        .unwrap();

    let denied = async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .max_reconnects(Some(1))
        .connect(server.url());
    // Without the token the server refuses us: either the connect fails or
    // the client never gets to a working connection.
    let denied = tokio::time::timeout(Duration::from_secs(2), async {
        let client = denied.await.ok()?;
        client.flush().await.ok()
    })
    .await;
    assert!(!matches!(denied, Ok(Some(()))), "connected without a token");

    let client = async_nats::ConnectOptions::with_token("s3cr3t".into())
        .connect(server.url())
        .await
        .unwrap();
    round_trip(&client, "nap.testkit.auth").await;
}

#[tokio::test]
async fn jetstream_can_be_turned_on() {
    let server = NatsServer::builder().jetstream(true).start().unwrap();
    let client = async_nats::connect(server.url()).await.unwrap();
    assert!(client.server_info().jetstream);

    let plain = NatsServer::start().unwrap();
    let client = async_nats::connect(plain.url()).await.unwrap();
    assert!(!client.server_info().jetstream);
}

#[test]
fn a_bad_config_reports_the_server_output() {
    let err = NatsServer::builder()
        .extra_config("this is { not valid")
        .start()
        .unwrap_err();
    match &err {
        nap_testkit::TestkitError::ExitedEarly { stderr_tail, .. } => {
            assert!(!stderr_tail.is_empty(), "{err}");
        }
        other => panic!("expected ExitedEarly, got {other:?}"),
    }
}

#[test]
fn a_server_not_ready_in_time_is_an_error() {
    let err = NatsServer::builder()
        .ready_timeout(Duration::ZERO)
        .start()
        .unwrap_err();
    assert!(
        matches!(err, nap_testkit::TestkitError::NotReady { .. }),
        "{err:?}"
    );
}

#[test]
fn the_version_in_info_is_the_binarys_version() {
    let server = NatsServer::start().unwrap();
    let announced = server.version();
    let printed = nap_testkit::ServerVersion::of_binary(server.binary()).unwrap();
    assert_eq!(announced, printed);
    assert_eq!(announced.major, 2, "nap tests run on nats-server 2.x");
}
