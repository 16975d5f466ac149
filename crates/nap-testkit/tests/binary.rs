#![allow(clippy::unwrap_used)]
//! Finding the `nats-server` binary.

use std::path::PathBuf;

use nap_testkit::{BinaryLookup, NatsServer, TestkitError};

#[test]
fn missing_binary_names_cargo_xtask_setup() {
    let missing = PathBuf::from("/nonexistent/nap-testkit/nats-server");
    let lookup = BinaryLookup {
        nats_server: Some(missing.clone().into()),
        ..BinaryLookup::from_env()
    };
    let err = lookup.find().unwrap_err();
    match &err {
        TestkitError::BinaryNotFound { searched } => assert_eq!(searched, &vec![missing]),
        other => panic!("expected BinaryNotFound, got {other:?}"),
    }
    let message = err.to_string();
    assert!(message.contains("cargo xtask setup"), "{message}");
    assert!(
        message.contains("/nonexistent/nap-testkit/nats-server"),
        "{message}"
    );
}

#[test]
fn nothing_on_path_nor_in_tools_dir_is_not_found() {
    let empty = tempfile::tempdir().unwrap();
    let lookup = BinaryLookup {
        nats_server: None,
        path: Some(empty.path().as_os_str().to_owned()),
        well_known: vec![empty.path().join("sbin").join("nats-server")],
        tools_dir: Some(empty.path().join("tools")),
    };
    let err = lookup.find().unwrap_err();
    assert!(matches!(&err, TestkitError::BinaryNotFound { searched } if searched.len() == 3));
    assert!(err.to_string().contains("cargo xtask setup"));
}

#[test]
fn an_explicit_binary_that_cannot_run_is_a_spawn_error() {
    let err = NatsServer::builder()
        .binary("/nonexistent/nap-testkit/nats-server")
        .start()
        .unwrap_err();
    assert!(matches!(err, TestkitError::Spawn { .. }), "{err:?}");
}

#[test]
fn the_lookup_finds_an_executable() {
    let found = nap_testkit::find_nats_server().unwrap();
    assert!(found.is_absolute());
    assert!(found.is_file());
}
