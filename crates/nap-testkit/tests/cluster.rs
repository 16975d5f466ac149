#![allow(clippy::unwrap_used)]
//! A 3-node cluster routed over loopback.

use std::time::Duration;

use futures::StreamExt;
use nap_testkit::{Cluster, TestkitError};

#[tokio::test]
async fn message_published_on_a_reaches_subscriber_on_c() {
    let cluster = Cluster::start(3).unwrap();
    let urls = cluster.urls();
    assert_eq!(urls.len(), 3);
    assert_eq!(cluster.len(), 3);
    let mut ports: Vec<u16> = cluster.nodes().iter().map(|n| n.port()).collect();
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(ports.len(), 3);

    let a = async_nats::connect(&urls[0]).await.unwrap();
    let c = async_nats::connect(&urls[2]).await.unwrap();
    assert_ne!(a.server_info().server_id, c.server_info().server_id);

    let mut sub = c.subscribe("nap.testkit.cluster").await.unwrap();
    c.flush().await.unwrap();

    // Interest propagates over the routes asynchronously: publish until the
    // subscriber on C sees a message from A.
    let msg = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            a.publish("nap.testkit.cluster", "from-a".into())
                .await
                .unwrap();
            a.flush().await.unwrap();
            if let Ok(Some(msg)) =
                tokio::time::timeout(Duration::from_millis(100), sub.next()).await
            {
                return msg;
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(&msg.payload[..], b"from-a");
}

#[test]
fn a_restarted_node_rejoins_the_mesh() {
    let mut cluster = Cluster::start(3).unwrap();
    let url = cluster.nodes()[0].url();
    cluster.nodes_mut()[0].restart().unwrap();
    assert_eq!(cluster.nodes()[0].url(), url);
    cluster.wait_for_routes().unwrap();
}

#[test]
fn zero_nodes_is_an_error() {
    assert!(matches!(
        Cluster::start(0),
        Err(TestkitError::InvalidClusterSize { size: 0 })
    ));
}
