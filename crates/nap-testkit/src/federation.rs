//! Topologies past one cluster: a hub cluster with a leaf node, and two
//! clusters joined by a gateway, all on loopback.
//!
//! Leaf nodes and gateways are how NATS systems outgrow one machine or one
//! site: an edge server (a leaf) extends a hub's subjects to local clients,
//! and gateways join whole clusters. Agents must be discoverable, promptable
//! and visible (heartbeats) across both, in either direction.
//!
//! ```no_run
//! # fn main() -> Result<(), nap_testkit::TestkitError> {
//! let leaf = nap_testkit::LeafHub::start()?;
//! println!("agents on {}, callers on {}", leaf.leaf().url(), leaf.hub()[1].url());
//! let pair = nap_testkit::GatewayPair::start()?;
//! println!("cluster A {}, cluster B {}", pair.a().url(), pair.b().url());
//! # Ok(()) }
//! ```

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::probe;
use crate::{Cluster, NatsServer, NatsServerBuilder, TestkitError};

/// How long a leaf or gateway link may take to come up.
const LINK_TIMEOUT: Duration = Duration::from_secs(15);

/// A two-node hub cluster accepting leaf nodes, and one leaf server
/// connected to it (its remote lists both hub nodes, so it reconnects to
/// the other when one is lost).
#[derive(Debug)]
pub struct LeafHub {
    hub: Cluster,
    leaf: NatsServer,
}

impl LeafHub {
    /// Starts the hub, then the leaf, and waits until the leaf is connected.
    pub fn start() -> Result<LeafHub, TestkitError> {
        let hub = Cluster::start_with(
            2,
            &NatsServerBuilder::new().extra_config("leafnodes { listen: \"127.0.0.1:-1\" }"),
        )?;
        let mut urls = Vec::new();
        for node in hub.nodes() {
            let port = listen_port(node, "leaf", "the hub's leaf node port")?;
            urls.push(format!("\"nats-leaf://127.0.0.1:{port}\""));
        }
        let leaf = NatsServerBuilder::new()
            .extra_config(format!(
                "leafnodes {{ reconnect: 1, remotes: [ {{ urls: [{}] }} ] }}",
                urls.join(", ")
            ))
            .start()?;
        let topology = LeafHub { hub, leaf };
        topology.wait_for_leaf()?;
        Ok(topology)
    }

    /// The hub's nodes.
    pub fn hub(&self) -> &[NatsServer] {
        self.hub.nodes()
    }

    /// The hub's nodes, mutably (to stop one).
    pub fn hub_mut(&mut self) -> &mut [NatsServer] {
        self.hub.nodes_mut()
    }

    /// The leaf server.
    pub fn leaf(&self) -> &NatsServer {
        &self.leaf
    }

    /// The index of the hub node the leaf is connected to now, if any.
    pub fn connected_hub(&self) -> Option<usize> {
        self.hub
            .nodes()
            .iter()
            .position(|node| link_count(node, "/leafz", "leafnodes") >= 1)
    }

    /// Waits until the leaf is connected to a hub node that is up, as both
    /// sides report it.
    pub fn wait_for_leaf(&self) -> Result<(), TestkitError> {
        wait_until("the leaf node's connection to the hub", || {
            link_count(&self.leaf, "/leafz", "leafnodes") >= 1 && self.connected_hub().is_some()
        })
    }
}

/// Two single-node clusters, `A` and `B`, joined by a gateway.
#[derive(Debug)]
pub struct GatewayPair {
    a: NatsServer,
    b: NatsServer,
}

impl GatewayPair {
    /// Starts `A`, then `B` with a gateway to `A`, and waits until both
    /// have an outbound gateway connection to the other.
    pub fn start() -> Result<GatewayPair, TestkitError> {
        let a = NatsServerBuilder::new()
            .extra_config("gateway { name: \"A\", listen: \"127.0.0.1:-1\" }")
            .start()?;
        let port = listen_port(&a, "gateway", "cluster A's gateway port")?;
        let b = NatsServerBuilder::new()
            .extra_config(format!(
                "gateway {{ name: \"B\", listen: \"127.0.0.1:-1\", gateways: [ {{ name: \"A\", urls: [\"nats://127.0.0.1:{port}\"] }} ] }}"
            ))
            .start()?;
        let pair = GatewayPair { a, b };
        for (server, name) in [(&pair.a, "A"), (&pair.b, "B")] {
            wait_until(&format!("cluster {name}'s outbound gateway"), || {
                outbound_gateways(server) >= 1
            })?;
        }
        Ok(pair)
    }

    /// Cluster `A`'s server.
    pub fn a(&self) -> &NatsServer {
        &self.a
    }

    /// Cluster `B`'s server.
    pub fn b(&self) -> &NatsServer {
        &self.b
    }
}

/// The port a server reports for `section` (`leaf`, `gateway`) in `/varz`.
fn listen_port(server: &NatsServer, section: &str, what: &str) -> Result<u16, TestkitError> {
    let mut port = None;
    wait_until(what, || {
        port = varz(server)
            .and_then(|v| v.get(section)?.get("port")?.as_u64())
            .and_then(|p| u16::try_from(p).ok())
            .filter(|p| *p != 0);
        port.is_some()
    })?;
    port.ok_or_else(|| TestkitError::LinkNotEstablished {
        what: what.to_owned(),
        waited: Duration::ZERO,
    })
}

fn varz(server: &NatsServer) -> Option<Value> {
    let body = probe::http_get(server.monitoring_port(), "/varz")?;
    serde_json::from_str(&body).ok()
}

/// A count from a monitoring endpoint, e.g. `/leafz`'s `leafnodes`.
fn link_count(server: &NatsServer, path: &str, key: &str) -> u64 {
    probe::http_get(server.monitoring_port(), path)
        .and_then(|body| serde_json::from_str::<Value>(&body).ok())
        .and_then(|v| v.get(key)?.as_u64())
        .unwrap_or(0)
}

fn outbound_gateways(server: &NatsServer) -> usize {
    probe::http_get(server.monitoring_port(), "/gatewayz")
        .and_then(|body| serde_json::from_str::<Value>(&body).ok())
        .and_then(|v| v.get("outbound_gateways")?.as_object().map(|o| o.len()))
        .unwrap_or(0)
}

fn wait_until(what: &str, mut ready: impl FnMut() -> bool) -> Result<(), TestkitError> {
    let started = Instant::now();
    loop {
        if ready() {
            return Ok(());
        }
        if started.elapsed() >= LINK_TIMEOUT {
            return Err(TestkitError::LinkNotEstablished {
                what: what.to_owned(),
                waited: started.elapsed(),
            });
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}
