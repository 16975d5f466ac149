//! `cargo xtask bench`: nap's host and caller beside raw async-nats, in one run,
//! on a private nats-server. Prints figures; asserts nothing.
#![allow(clippy::unwrap_used, missing_docs)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use nap_agent::{AgentError, Request, Responder, agent_fn};
use nap_nats::{AgentService, Client, RunningAgent};
use nap_proto::{DiscoveryConfig, DiscoveryFilter};

const ROUND_TRIPS: usize = 5_000;
const THROUGHPUT_WINDOW: Duration = Duration::from_secs(3);
const STREAM_BYTES: usize = 1 << 20;
const STREAM_CHUNK: usize = 4 << 10;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn p50_p99(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    (percentile(&samples, 0.50), percentile(&samples, 0.99))
}

fn us(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

async fn connect(url: &str) -> async_nats::Client {
    async_nats::ConnectOptions::new()
        .subscription_capacity(1 << 16)
        .client_capacity(1 << 14)
        .connect(url)
        .await
        .unwrap()
}

/// Returns once the server has processed everything `nats` sent before
/// (`flush` only empties the local buffer): a message to our own fresh
/// inbox comes back only after the earlier SUBs are in place.
async fn sync(nats: &async_nats::Client) {
    let inbox = nats.new_inbox();
    let mut echo = nats.subscribe(inbox.clone()).await.unwrap();
    nats.publish(inbox, Bytes::new()).await.unwrap();
    echo.next().await.unwrap();
}

/// Raw request/reply: a plain subscriber answering each request with its payload.
async fn raw_request_reply(url: &str) -> Vec<Duration> {
    let responder = connect(url).await;
    let mut sub = responder.subscribe("bench.raw").await.unwrap();
    let r = responder.clone();
    let task = tokio::spawn(async move {
        while let Some(msg) = sub.next().await {
            if let Some(reply) = msg.reply {
                let _ = r.publish(reply, msg.payload).await;
            }
        }
    });
    sync(&responder).await;
    let caller = connect(url).await;
    let mut samples = Vec::with_capacity(ROUND_TRIPS);
    for _ in 0..ROUND_TRIPS {
        let t = Instant::now();
        caller
            .request("bench.raw", Bytes::from_static(b"x"))
            .await
            .unwrap();
        samples.push(t.elapsed());
    }
    task.abort();
    samples
}

async fn echo_host(url: &str, name: &str) -> RunningAgent {
    let echo = agent_fn(|req: Request, out: Responder| async move {
        out.text(req.envelope.prompt).await?;
        Ok::<_, AgentError>(())
    });
    AgentService::builder("bench", "nap", name)
        .max_concurrent(4096)
        .start(connect(url).await, echo)
        .await
        .unwrap()
}

/// One prompt: request, ack, one chunk, terminator.
async fn prompt_once(client: &Client, handle: &nap_nats::AgentHandle) {
    let text = client
        .prompt(handle, "x")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    debug_assert_eq!(text, "x");
}

async fn nap_round_trip(client: &Client, handle: &nap_nats::AgentHandle) -> Vec<Duration> {
    let mut samples = Vec::with_capacity(ROUND_TRIPS);
    for _ in 0..ROUND_TRIPS {
        let t = Instant::now();
        prompt_once(client, handle).await;
        samples.push(t.elapsed());
    }
    samples
}

async fn prompts_per_second(
    client: &Client,
    handle: &nap_nats::AgentHandle,
    callers: usize,
) -> f64 {
    let start = Instant::now();
    let deadline = start + THROUGHPUT_WINDOW;
    let mut tasks = Vec::new();
    for _ in 0..callers {
        let client = client.clone();
        let handle = handle.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline {
                prompt_once(&client, &handle).await;
                n += 1;
            }
            n
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    total as f64 / start.elapsed().as_secs_f64()
}

/// 1 MiB streamed as 4 KiB response chunks, request to terminator.
async fn nap_stream(url: &str) -> f64 {
    let piece = "y".repeat(STREAM_CHUNK);
    let agent = agent_fn(move |_req: Request, out: Responder| {
        let piece = piece.clone();
        async move {
            for _ in 0..STREAM_BYTES / STREAM_CHUNK {
                out.text(piece.clone()).await?;
            }
            Ok::<_, AgentError>(())
        }
    });
    let _host = AgentService::builder("bench", "nap", "stream")
        .start(connect(url).await, agent)
        .await
        .unwrap();
    let client = Client::new(connect(url).await).await.unwrap();
    let handle = client
        .find(DiscoveryFilter {
            name: Some("stream".into()),
            ..DiscoveryFilter::any()
        })
        .await
        .unwrap();
    let mut best = f64::MAX;
    for _ in 0..10 {
        let t = Instant::now();
        let text = client
            .prompt(&handle, "go")
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(text.len(), STREAM_BYTES);
        best = best.min(t.elapsed().as_secs_f64());
    }
    STREAM_BYTES as f64 / (1 << 20) as f64 / best
}

/// The same bytes as raw publishes to a subscriber, plus an empty end marker.
async fn raw_stream(url: &str) -> f64 {
    let publisher = connect(url).await;
    let receiver = connect(url).await;
    let payload = Bytes::from("y".repeat(STREAM_CHUNK));
    let mut best = f64::MAX;
    for i in 0..10 {
        let subject = format!("bench.stream.{i}");
        let mut sub = receiver.subscribe(subject.clone()).await.unwrap();
        sync(&receiver).await;
        let t = Instant::now();
        for _ in 0..STREAM_BYTES / STREAM_CHUNK {
            publisher
                .publish(subject.clone(), payload.clone())
                .await
                .unwrap();
        }
        publisher
            .publish(subject.clone(), Bytes::new())
            .await
            .unwrap();
        let mut got = 0;
        while let Some(msg) = sub.next().await {
            if msg.payload.is_empty() {
                break;
            }
            got += msg.payload.len();
        }
        assert_eq!(got, STREAM_BYTES);
        best = best.min(t.elapsed().as_secs_f64());
    }
    STREAM_BYTES as f64 / (1 << 20) as f64 / best
}

/// Registers `n` instances, then times one discovery of all of them.
async fn discovery(url: &str, n: usize) -> (Duration, Duration, usize) {
    let nop = || agent_fn(|_req: Request, _out: Responder| async move { Ok::<_, AgentError>(()) });
    let conns: Vec<_> = futures::future::join_all((0..8).map(|_| connect(url))).await;
    let mut hosts = Vec::with_capacity(n);
    for i in 0..n {
        let host = AgentService::builder("disc", format!("n{n}"), format!("i{i}"))
            .start(conns[i % conns.len()].clone(), nop())
            .await
            .unwrap();
        hosts.push(host);
    }
    for c in &conns {
        sync(c).await;
    }
    let client = Client::new(connect(url).await).await.unwrap();
    let filter = DiscoveryFilter {
        owner: Some(format!("n{n}")),
        ..DiscoveryFilter::any()
    };
    let config = DiscoveryConfig {
        stall: Duration::from_millis(300),
        deadline: Duration::from_secs(10),
        stop_at_first_match: false,
    };
    let t = Instant::now();
    let found = client.discover_with(filter, config).await.unwrap();
    let total = t.elapsed();
    drop(hosts);
    // The stall window is idle waiting, not work: report it separately.
    (total, total.saturating_sub(config.stall), found.len())
}

#[tokio::main]
async fn main() {
    let server = nap_testkit::NatsServer::start().unwrap();
    let url = server.url();
    let version = std::process::Command::new(server.binary())
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    println!(
        "nap bench: {version}, {} cores, one private server on loopback",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!();

    let (raw50, raw99) = p50_p99(raw_request_reply(&url).await);
    let _host = echo_host(&url, "echo").await;
    let client = Client::new(connect(&url).await).await.unwrap();
    let handle = client
        .find(DiscoveryFilter {
            name: Some("echo".into()),
            ..DiscoveryFilter::any()
        })
        .await
        .unwrap();
    for _ in 0..500 {
        prompt_once(&client, &handle).await; // warm up
    }
    let (nap50, nap99) = p50_p99(nap_round_trip(&client, &handle).await);
    println!(
        "{:<44}{:>12}{:>12}",
        "round trip (sequential, 5000 samples)", "p50", "p99"
    );
    println!(
        "{:<44}{:>12}{:>12}",
        "raw async-nats request/reply",
        us(raw50),
        us(raw99)
    );
    println!(
        "{:<44}{:>12}{:>12}",
        "nap prompt (request, ack, chunk, end)",
        us(nap50),
        us(nap99)
    );
    println!(
        "  nap p50 / raw p50 = {:.2} (target <= 1.50)",
        nap50.as_secs_f64() / raw50.as_secs_f64()
    );
    println!();

    let one = prompts_per_second(&client, &handle, 1).await;
    let many = prompts_per_second(&client, &handle, 64).await;
    println!("{:<44}{:>12.0}", "prompts/s, 1 caller", one);
    println!(
        "{:<44}{:>12.0}  (target >= 20000)",
        "prompts/s, 64 concurrent callers", many
    );
    println!();

    let nap_mib = nap_stream(&url).await;
    let raw_mib = raw_stream(&url).await;
    println!(
        "{:<44}{:>9.0} MiB/s",
        "stream 1 MiB in 4 KiB chunks: nap", nap_mib
    );
    println!("{:<44}{:>9.0} MiB/s", "same bytes, raw publish", raw_mib);
    println!();

    println!(
        "{:<44}{:>12}{:>12}{:>11}",
        "discovery", "total", "w/o stall", "found"
    );
    for n in [1, 100, 1000] {
        let (total, work, found) = discovery(&url, n).await;
        println!(
            "{:<44}{:>12}{:>12}{:>11}",
            format!("{n} registered instance(s)"),
            format!("{} ms", total.as_millis()),
            format!("{} ms", work.as_millis()),
            format!("{found}/{n}")
        );
    }
}
