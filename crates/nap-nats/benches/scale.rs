//! Scale figures (issue 15): memory per agent and registration time for a
//! fleet and for one micro service per agent, discovery time and
//! completeness, heartbeat traffic, at 1,000 and 10,000 agents.
//!
//! Each hosting is measured in a fresh child process (this same binary,
//! re-run with `NAP_SCALE_CHILD` set), so that one measurement's memory
//! cannot hide in another's: the child reports its resident memory before
//! and after registering, then keeps serving while the parent discovers
//! the agents and counts their heartbeats.

#![allow(clippy::unwrap_used, missing_docs)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use nap_agent::{Agent, AgentError, Request, Responder, agent_fn};
use nap_nats::Fleet;
use nap_nats::{AgentService, Client, RunningAgent};
use nap_proto::DiscoveryConfig;
use nap_proto::DiscoveryFilter;

/// The heartbeat interval of the hosted agents; the traffic figure is
/// also given for the 30 s default.
const BEAT: Duration = Duration::from_secs(5);
/// Registrations under way at once, in both modes.
const AT_ONCE: usize = 512;
/// The targets of issue 15, for a fleet of 10,000.
const TARGET_KIB: f64 = 20.0;
const TARGET_REGISTER: Duration = Duration::from_secs(1);

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Fleet,
    Services,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Fleet => "fleet",
            Mode::Services => "service per agent",
        }
    }

    fn arg(self) -> &'static str {
        match self {
            Mode::Fleet => "fleet",
            Mode::Services => "services",
        }
    }
}

/// Resident memory of this process, in bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn nop() -> Arc<dyn Agent> {
    Arc::new(agent_fn(|_req: Request, _out: Responder| async move {
        Ok::<_, AgentError>(())
    }))
}

/// The child: registers `n` agents, reports, serves until stdin closes.
async fn child(mode: Mode, url: &str, n: usize) {
    let nats = nap_nats::connect_options().connect(url).await.unwrap();
    let fleet = match mode {
        Mode::Fleet => Some(Fleet::start(nats.clone()).await.unwrap()),
        Mode::Services => None,
    };
    let agent = nop();
    // Settle the runtime and the connection before the baseline.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = rss();
    let t = Instant::now();
    let builders = (0..n).map(|i| {
        AgentService::builder("scale", mode.arg(), format!("a{i}")).heartbeat_interval(BEAT)
    });
    let running: Vec<RunningAgent> = futures::stream::iter(builders)
        .map(|builder| {
            let (nats, fleet, agent) = (nats.clone(), fleet.clone(), agent.clone());
            async move {
                match fleet {
                    Some(fleet) => fleet.add(builder, agent).await,
                    None => builder.start(nats, agent).await,
                }
            }
        })
        .buffered(AT_ONCE)
        .map(Result::unwrap)
        .collect()
        .await;
    let took = t.elapsed();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after = rss();
    println!("{} {} {}", took.as_micros(), before, after.max(before));
    let _ = std::io::stdout().flush();
    // Serve until the parent closes stdin.
    tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
    })
    .await
    .unwrap();
    drop(running);
}

/// What one hosting measured.
struct Figures {
    register: Duration,
    per_agent_kib: f64,
    discovery: Duration,
    found: usize,
    beats_per_s: f64,
    beat_bytes_per_s: f64,
}

/// Starts the child for `mode` and `n`, waits for its report, then
/// discovers its agents and counts their heartbeats.
async fn measure(url: &str, mode: Mode, n: usize) -> Figures {
    let client = Client::new(nap_nats::connect_options().connect(url).await.unwrap())
        .await
        .unwrap();
    let mut beats = client
        .nats()
        .subscribe(nap_proto::Wildcard::heartbeats())
        .await
        .unwrap();
    let mut child: Child = Command::new(std::env::current_exe().unwrap())
        .env("NAP_SCALE_CHILD", format!("{} {url} {n}", mode.arg()))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        line
    })
    .await
    .unwrap();
    let numbers: Vec<u64> = line
        .split_whitespace()
        .map(|v| v.parse().unwrap())
        .collect();
    let (register, before, after) = (Duration::from_micros(numbers[0]), numbers[1], numbers[2]);

    // Discovery of every instance, with the bench's usual stall window.
    let filter = DiscoveryFilter {
        owner: Some(mode.arg().to_owned()),
        ..DiscoveryFilter::any()
    };
    let config = DiscoveryConfig {
        stall: Duration::from_millis(300),
        deadline: Duration::from_secs(30),
        ..DiscoveryConfig::default()
    };
    let t = Instant::now();
    let found = client.discover_with(filter, config).await.unwrap().len();
    let discovery = t.elapsed();

    // Heartbeats over one interval, once the registration burst is over.
    while tokio::time::timeout(Duration::from_millis(1), beats.next())
        .await
        .is_ok()
    {}
    let (mut count, mut bytes) = (0u64, 0u64);
    let window = tokio::time::Instant::now() + BEAT;
    while let Ok(Some(msg)) = tokio::time::timeout_at(window, beats.next()).await {
        count += 1;
        bytes += msg.payload.len() as u64 + msg.subject.len() as u64;
    }
    drop(child.stdin.take());
    let _ = child.wait();
    Figures {
        register,
        per_agent_kib: (after - before) as f64 / n as f64 / 1024.0,
        discovery,
        found,
        beats_per_s: count as f64 / BEAT.as_secs_f64(),
        beat_bytes_per_s: bytes as f64 / BEAT.as_secs_f64(),
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    if let Ok(spec) = std::env::var("NAP_SCALE_CHILD") {
        let mut parts = spec.split(' ');
        let mode = match parts.next() {
            Some("fleet") => Mode::Fleet,
            _ => Mode::Services,
        };
        let url = parts.next().unwrap().to_owned();
        let n: usize = parts.next().unwrap().parse().unwrap();
        runtime.block_on(child(mode, &url, n));
        return;
    }
    runtime.block_on(async {
        let server = nap_testkit::NatsServer::start().unwrap();
        let url = server.url();
        println!(
            "nap scale bench: one private server on loopback, {} cores, agents beat every {} s",
            std::thread::available_parallelism().map_or(1, |n| n.get()),
            BEAT.as_secs()
        );
        println!(
            "{:<34}{:>11}{:>12}{:>13}{:>13}{:>22}",
            "hosting", "KiB/agent", "register", "discovery", "found", "beats/s"
        );
        let mut fleet_10k = None;
        for n in [1_000, 10_000] {
            for mode in [Mode::Fleet, Mode::Services] {
                let f = measure(&url, mode, n).await;
                println!(
                    "  {:<32}{:>11.1}{:>12}{:>13}{:>13}{:>22}",
                    format!("{n} agents, {}", mode.name()),
                    f.per_agent_kib,
                    format!("{} ms", f.register.as_millis()),
                    format!("{} ms", f.discovery.as_millis()),
                    format!("{}/{n}", f.found),
                    format!(
                        "{:.0} ({:.0} KB/s)",
                        f.beats_per_s,
                        f.beat_bytes_per_s / 1000.0
                    ),
                );
                if n == 10_000 && mode == Mode::Fleet {
                    fleet_10k = Some(f);
                }
            }
        }
        println!("  (discovery includes its 300 ms stall window; beats/s measured over one {} s interval)", BEAT.as_secs());
        if let Some(f) = fleet_10k {
            let scale = BEAT.as_secs_f64() / nap_proto::DEFAULT_HEARTBEAT_INTERVAL.as_secs_f64();
            println!(
                "  heartbeats of 10,000 agents at the default 30 s interval: {:.0} msg/s, {:.0} KB/s",
                f.beats_per_s * scale,
                f.beat_bytes_per_s * scale / 1000.0
            );
            println!();
            println!("targets (fleet of 10,000)");
            println!(
                "  memory per agent ≤ {TARGET_KIB} KiB: {:.1} KiB, {}",
                f.per_agent_kib,
                if f.per_agent_kib <= TARGET_KIB { "met" } else { "not met" }
            );
            println!(
                "  registration ≤ {} s: {} ms, {}",
                TARGET_REGISTER.as_secs(),
                f.register.as_millis(),
                if f.register <= TARGET_REGISTER { "met" } else { "not met" }
            );
        }
    });
}
