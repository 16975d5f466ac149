//! TLS flags against a server that requires TLS and verifies client
//! certificates: a CA, a server and a client certificate are made in the
//! test with `rcgen`.
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use std::path::Path;

use nap_testkit::NatsServer;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use support::{assert_exit, output, stderr, stdout};

struct Pki {
    ca: String,
    server_cert: String,
    server_key: String,
    client_cert: String,
    client_key: String,
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn pki(dir: &Path) -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let leaf = |names: Vec<String>| {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    };
    let (server_cert, server_key) = leaf(vec!["127.0.0.1".into(), "localhost".into()]);
    let (client_cert, client_key) = leaf(vec!["nap-client".into()]);
    Pki {
        ca: write(dir, "ca.pem", &ca.pem()),
        server_cert: write(dir, "server.pem", &server_cert),
        server_key: write(dir, "server-key.pem", &server_key),
        client_cert: write(dir, "client.pem", &client_cert),
        client_key: write(dir, "client-key.pem", &client_key),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_flags_connect_with_a_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    let server = NatsServer::builder()
        .extra_config(format!(
            "tls {{ cert_file: \"{}\", key_file: \"{}\", ca_file: \"{}\", verify: true, timeout: 5 }}",
            pki.server_cert, pki.server_key, pki.ca
        ))
        .start()
        .unwrap();
    let url = server.url().replace("nats://", "tls://");

    let ok = output(
        support::nap([
            "--server",
            &url,
            "--tlsca",
            &pki.ca,
            "--tlscert",
            &pki.client_cert,
            "--tlskey",
            &pki.client_key,
            "discover",
        ]),
        "",
    )
    .await;
    assert_exit(&ok, 0);
    let said = format!("{}{}", stdout(&ok), stderr(&ok));
    assert!(said.contains("no agents found"), "{said}");

    // Without the client certificate the server refuses the handshake.
    let refused = output(
        support::nap(["--server", &url, "--tlsca", &pki.ca, "discover"]),
        "",
    )
    .await;
    assert_exit(&refused, 3);
    assert!(stderr(&refused).contains(&url), "{}", stderr(&refused));

    // A key without its certificate is a usage error said plainly.
    let half = output(
        support::nap([
            "--server",
            &url,
            "--tlsca",
            &pki.ca,
            "--tlskey",
            &pki.client_key,
            "discover",
        ]),
        "",
    )
    .await;
    assert!(!half.status.success());
    assert!(stderr(&half).contains("--tlscert"), "{}", stderr(&half));
}
