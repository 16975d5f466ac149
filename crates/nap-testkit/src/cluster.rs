//! A cluster of `nats-server` nodes routed over loopback.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::probe;
use crate::server::ClusterRole;
use crate::{NatsServer, NatsServerBuilder, TestkitError};

/// Makes cluster names unique within a process (the pid does across processes).
static CLUSTER_SEQ: AtomicUsize = AtomicUsize::new(0);

/// A full-mesh cluster of [`NatsServer`] nodes on 127.0.0.1.
///
/// Ready only once every node has a route to every other node. Each node is
/// a [`NatsServer`] with its own client URL, and can be stopped or restarted
/// on its own (call [`wait_for_routes`](Self::wait_for_routes) after a
/// restart to wait for the mesh again).
///
/// ```no_run
/// # fn main() -> Result<(), nap_testkit::TestkitError> {
/// let cluster = nap_testkit::Cluster::start(3)?;
/// let [a, _b, c] = cluster.nodes() else { unreachable!() };
/// println!("publish on {}, subscribe on {}", a.url(), c.url());
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Cluster {
    name: String,
    nodes: Vec<NatsServer>,
    ready_timeout: Duration,
}

impl Cluster {
    /// Start `size` nodes with default options and wait for the full mesh.
    pub fn start(size: usize) -> Result<Cluster, TestkitError> {
        Self::start_with(size, &NatsServerBuilder::new())
    }

    /// Start `size` nodes, each configured like `options` (extra config,
    /// `max_payload`, JetStream ...), and wait for the full mesh.
    ///
    /// The first node listens for routes on a port it picks itself; the
    /// others solicit a route to it and find each other by gossip. Every
    /// node is then configured with routes to all its peers, so that any of
    /// them can be restarted.
    pub fn start_with(size: usize, options: &NatsServerBuilder) -> Result<Cluster, TestkitError> {
        if size == 0 {
            return Err(TestkitError::InvalidClusterSize { size });
        }
        let name = format!(
            "nap-{}-{}",
            std::process::id(),
            CLUSTER_SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let role = |index: usize, routes: Vec<u16>| ClusterRole {
            cluster_name: name.clone(),
            server_name: format!("{name}-n{index}"),
            routes,
        };

        let seed = options.start_cluster_node(role(0, Vec::new()))?;
        let seed_port = seed.cluster_port().into_iter().collect::<Vec<_>>();
        let mut nodes = vec![seed];
        for index in 1..size {
            nodes.push(options.start_cluster_node(role(index, seed_port.clone()))?);
        }

        let all: Vec<u16> = nodes.iter().filter_map(NatsServer::cluster_port).collect();
        for node in &mut nodes {
            let own = node.cluster_port();
            node.set_routes(all.iter().copied().filter(|p| Some(*p) != own).collect());
        }

        let cluster = Cluster {
            name,
            nodes,
            ready_timeout: options.ready_timeout_value(),
        };
        cluster.wait_for_routes()?;
        tracing::debug!(name = %cluster.name, urls = ?cluster.urls(), "nats cluster ready");
        Ok(cluster)
    }

    /// The cluster's name (unique per cluster).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The client URLs of all nodes, in node order.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(NatsServer::url).collect()
    }

    /// The nodes, in start order.
    pub fn nodes(&self) -> &[NatsServer] {
        &self.nodes
    }

    /// The nodes, mutably (to stop or restart one).
    pub fn nodes_mut(&mut self) -> &mut [NatsServer] {
        &mut self.nodes
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Always false: a cluster has at least one node.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Wait (up to the ready timeout) until every node has routes to every
    /// other node, checked on each node's `/routez`.
    pub fn wait_for_routes(&self) -> Result<(), TestkitError> {
        let expected = self.nodes.len().saturating_sub(1);
        let started = Instant::now();
        loop {
            let seen: Vec<usize> = self.nodes.iter().map(route_peers).collect();
            if seen.iter().all(|&n| n >= expected) {
                return Ok(());
            }
            if started.elapsed() >= self.ready_timeout {
                return Err(TestkitError::RoutesNotEstablished {
                    expected,
                    seen,
                    waited: started.elapsed(),
                });
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Stop every node.
    pub fn stop(&mut self) -> Result<(), TestkitError> {
        let mut first_err = None;
        for node in &mut self.nodes {
            if let Err(err) = node.stop() {
                first_err.get_or_insert(err);
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

/// Distinct peers a node has routes to (since nats-server 2.10 one peer may
/// have several pooled route connections). Zero when the node is down.
fn route_peers(node: &NatsServer) -> usize {
    let Some(body) = probe::http_get(node.monitoring_port(), "/routez") else {
        return 0;
    };
    let Ok(json) = serde_json::from_str::<serde_json::Value>(&body) else {
        return 0;
    };
    json.get("routes")
        .and_then(serde_json::Value::as_array)
        .map(|routes| {
            routes
                .iter()
                .filter_map(|r| r.get("remote_id").and_then(serde_json::Value::as_str))
                .collect::<HashSet<_>>()
                .len()
        })
        .unwrap_or(0)
}
