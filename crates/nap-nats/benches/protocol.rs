//! `cargo xtask bench`: nap's host and caller beside raw async-nats and a
//! hand-written exchange of the same bytes, in one run, on a private
//! nats-server. Prints figures and the ratios nap's targets are stated in;
//! asserts nothing about speed.
//!
//! Latency on a shared machine drifts between levels from run to run (and
//! within a run), so kinds measured one after the other are not comparable.
//! Every comparison here is interleaved so the kinds share the machine's
//! state:
//!
//! - latency: sample by sample, the order rotating each iteration;
//! - throughput: short rounds of each kind in rotating order, each round at
//!   the same concurrency, ratios taken round against neighbouring round;
//! - streaming: side-by-side pairs, the order alternating each pair.
//!
//! Only nap-nats's public API is used (`AgentService::builder(..).start`,
//! `Client::new`, `find`/`discover_with`, `prompt`, `PromptStream::text`).
#![allow(clippy::unwrap_used, missing_docs)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use nap_agent::{AgentError, Request, Responder, agent_fn};
use nap_nats::{AgentHandle, AgentService, Client, RunningAgent};
use nap_proto::{Chunk, DiscoveryConfig, DiscoveryFilter, Envelope};

/// Interleaved sequential samples per latency kind.
const LATENCY_SAMPLES: usize = 6_000;
/// Discarded sequential samples per kind before measuring.
const LATENCY_WARMUP: usize = 300;
/// Concurrent callers in the throughput rounds.
const CALLERS: usize = 64;
/// Rounds per throughput kind (kinds alternate round by round).
const THROUGHPUT_ROUNDS: usize = 20;
/// Length of one throughput round.
const ROUND_WINDOW: Duration = Duration::from_millis(250);
/// Side-by-side streaming pairs (nap, raw).
const STREAM_PAIRS: usize = 100;
const STREAM_BYTES: usize = 1 << 20;
const STREAM_CHUNK: usize = 4 << 10;
const STREAM_CHUNKS: usize = STREAM_BYTES / STREAM_CHUNK;

/// The subject the raw request/reply responder listens on.
const RAW_SUBJECT: &str = "bench.raw";
/// The subject the hand-written responder listens on, shaped like a
/// prompt subject (§2).
const HAND_SUBJECT: &str = "agents.prompt.handwritten.bench.echo";
/// The queue group every prompt endpoint uses (§3).
const HAND_QUEUE: &str = "agents";
/// The prompt every round trip sends.
const PROMPT: &str = "x";

fn percentile<T: Copy + PartialOrd>(samples: &[T], p: f64) -> T {
    let mut sorted = samples.to_vec();
    sorted.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn median(samples: &[f64]) -> f64 {
    percentile(samples, 0.5)
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

/// Raw request/reply responder: a plain subscriber answering each request
/// with one message, its payload.
async fn raw_responder(url: &str) -> tokio::task::JoinHandle<()> {
    let nats = connect(url).await;
    let mut sub = nats.subscribe(RAW_SUBJECT).await.unwrap();
    sync(&nats).await;
    tokio::spawn(async move {
        while let Some(msg) = sub.next().await {
            if let Some(reply) = msg.reply {
                let _ = nats.publish(reply, msg.payload).await;
            }
        }
    })
}

/// The hand-written protocol responder on raw async-nats: a queue
/// subscriber that answers each prompt with ack, one response chunk and
/// the terminator, the bytes coming from nap-proto's encoders.
async fn hand_responder(url: &str) -> tokio::task::JoinHandle<()> {
    let nats = connect(url).await;
    let mut sub = nats
        .queue_subscribe(HAND_SUBJECT, HAND_QUEUE.into())
        .await
        .unwrap();
    sync(&nats).await;
    let ack = Bytes::from(Chunk::ACK.encode());
    tokio::spawn(async move {
        while let Some(msg) = sub.next().await {
            let Some(reply) = msg.reply else { continue };
            let Ok(envelope) = Envelope::decode(&msg.payload) else {
                continue;
            };
            // §6.4: ack first.
            let _ = nats.publish(reply.clone(), ack.clone()).await;
            // §6.3: the reply text as a string-form response chunk.
            let chunk = Chunk::text(envelope.prompt).encode();
            let _ = nats.publish(reply.clone(), chunk.into()).await;
            // §6.5: the terminator, zero bytes and no headers.
            let _ = nats.publish(reply, Bytes::new()).await;
        }
    })
}

/// nap's echo agent: the prompt back as one response chunk.
async fn echo_host(url: &str) -> RunningAgent {
    let echo = agent_fn(|req: Request, out: Responder| async move {
        out.text(req.prompt().to_owned()).await?;
        Ok::<_, AgentError>(())
    });
    AgentService::builder("bench", "nap", "echo")
        .start(connect(url).await, echo)
        .await
        .unwrap()
}

/// nap's streaming agent: 1 MiB as 256 text chunks of 4 KiB.
async fn stream_host(url: &str) -> RunningAgent {
    let piece = "y".repeat(STREAM_CHUNK);
    let agent = agent_fn(move |_req: Request, out: Responder| {
        let piece = piece.clone();
        async move {
            for _ in 0..STREAM_CHUNKS {
                out.text(piece.clone()).await?;
            }
            Ok::<_, AgentError>(())
        }
    });
    AgentService::builder("bench", "nap", "stream")
        .start(connect(url).await, agent)
        .await
        .unwrap()
}

async fn find(client: &Client, name: &str) -> AgentHandle {
    client
        .find(DiscoveryFilter {
            name: Some(name.into()),
            ..DiscoveryFilter::any()
        })
        .await
        .unwrap()
}

/// The round-trip kinds, in the order they are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Raw,
    Hand,
    Nap,
}

const KINDS: [Kind; 3] = [Kind::Raw, Kind::Hand, Kind::Nap];

impl Kind {
    fn index(self) -> usize {
        self as usize
    }

    fn label(self) -> &'static str {
        match self {
            Kind::Raw => "raw async-nats request/reply",
            Kind::Hand => "hand-written exchange (ack, chunk, end)",
            Kind::Nap => "nap prompt (ack, chunk, end)",
        }
    }
}

/// The callers of every round-trip kind, each on its own connection.
#[derive(Clone)]
struct Callers {
    raw: async_nats::Client,
    hand: async_nats::Client,
    nap: Client,
    echo: AgentHandle,
    /// The request body nap's caller sends for [`PROMPT`] (§5.1).
    request: Bytes,
    ack: Bytes,
    response: Bytes,
}

impl Callers {
    async fn once(&self, kind: Kind) {
        match kind {
            Kind::Raw => {
                self.raw
                    .request(RAW_SUBJECT, self.request.clone())
                    .await
                    .unwrap();
            }
            Kind::Hand => self.hand_exchange().await,
            Kind::Nap => {
                let text = self
                    .nap
                    .prompt(&self.echo, PROMPT)
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap();
                assert_eq!(text, PROMPT);
            }
        }
    }

    /// One prompt by hand: fresh inbox, publish with that reply subject,
    /// then ack, one response chunk and the terminator.
    async fn hand_exchange(&self) {
        let nats = &self.hand;
        let inbox = nats.new_inbox();
        // §6.1: subscribe the reply subject before publishing.
        let mut replies = nats.subscribe(inbox.clone()).await.unwrap();
        nats.publish_with_reply(HAND_SUBJECT, inbox, self.request.clone())
            .await
            .unwrap();
        // §6.4: ack first.
        assert_eq!(replies.next().await.unwrap().payload, self.ack);
        // §6.3: one response chunk.
        assert_eq!(replies.next().await.unwrap().payload, self.response);
        // §6.5: the zero-byte terminator.
        assert!(replies.next().await.unwrap().payload.is_empty());
    }
}

/// Sequential round trips, the kinds interleaved sample by sample in
/// rotating order. Returns the samples of each kind.
async fn latency(callers: &Callers) -> [Vec<Duration>; 3] {
    for i in 0..LATENCY_WARMUP * KINDS.len() {
        callers.once(KINDS[i % KINDS.len()]).await;
    }
    let mut samples: [Vec<Duration>; 3] =
        std::array::from_fn(|_| Vec::with_capacity(LATENCY_SAMPLES));
    for i in 0..LATENCY_SAMPLES {
        for j in 0..KINDS.len() {
            let kind = KINDS[(i + j) % KINDS.len()];
            let t = Instant::now();
            callers.once(kind).await;
            samples[kind.index()].push(t.elapsed());
        }
    }
    samples
}

/// One throughput round: `CALLERS` tasks prompting back to back until the
/// window closes; prompts/s counts every prompt up to the last to finish.
async fn round(callers: &Callers, kind: Kind) -> (f64, Vec<Duration>) {
    let start = Instant::now();
    let deadline = start + ROUND_WINDOW;
    let tasks: Vec<_> = (0..CALLERS)
        .map(|_| {
            let callers = callers.clone();
            tokio::spawn(async move {
                let mut lat = Vec::new();
                while Instant::now() < deadline {
                    let t = Instant::now();
                    callers.once(kind).await;
                    lat.push(t.elapsed());
                }
                lat
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    (all.len() as f64 / start.elapsed().as_secs_f64(), all)
}

struct Throughput {
    /// Prompts/s of each round, per kind.
    rates: [Vec<f64>; 3],
    /// Per-prompt latency under load, per kind.
    latencies: [Vec<Duration>; 3],
}

/// Alternating short rounds at `CALLERS` concurrency, rotating order.
async fn throughput(callers: &Callers) -> Throughput {
    for kind in KINDS {
        round(callers, kind).await; // warm up
    }
    let mut out = Throughput {
        rates: Default::default(),
        latencies: Default::default(),
    };
    for r in 0..THROUGHPUT_ROUNDS {
        for j in 0..KINDS.len() {
            let kind = KINDS[(r + j) % KINDS.len()];
            let (rate, lat) = round(callers, kind).await;
            out.rates[kind.index()].push(rate);
            out.latencies[kind.index()].extend(lat);
        }
    }
    out
}

/// Both sides of the streaming comparison.
struct Streams {
    client: Client,
    handle: AgentHandle,
    publisher: async_nats::Client,
    receiver: async_nats::Client,
    /// The wire bytes of one of nap's 4 KiB response chunks.
    chunk: Bytes,
}

impl Streams {
    /// nap: prompt to terminator, 256 response chunks of 4 KiB.
    async fn nap(&self) -> Duration {
        let t = Instant::now();
        let text = self
            .client
            .prompt(&self.handle, "go")
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let elapsed = t.elapsed();
        assert_eq!(text.len(), STREAM_BYTES);
        elapsed
    }

    /// Raw: the same 256 wire chunks and an empty end marker published to
    /// a subscriber on another connection, timed until the marker arrives.
    async fn raw(&self, i: usize) -> Duration {
        let subject = format!("bench.stream.{i}");
        let mut sub = self.receiver.subscribe(subject.clone()).await.unwrap();
        sync(&self.receiver).await;
        let t = Instant::now();
        for _ in 0..STREAM_CHUNKS {
            self.publisher
                .publish(subject.clone(), self.chunk.clone())
                .await
                .unwrap();
        }
        self.publisher
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
        let elapsed = t.elapsed();
        assert_eq!(got, STREAM_CHUNKS * self.chunk.len());
        elapsed
    }
}

/// Side-by-side pairs, the order alternating; returns (nap, raw) times.
async fn streaming(streams: &Streams) -> (Vec<Duration>, Vec<Duration>) {
    for i in 0..5 {
        streams.nap().await; // warm up
        streams.raw(i).await;
    }
    let mut nap = Vec::with_capacity(STREAM_PAIRS);
    let mut raw = Vec::with_capacity(STREAM_PAIRS);
    for i in 0..STREAM_PAIRS {
        if i % 2 == 0 {
            nap.push(streams.nap().await);
            raw.push(streams.raw(i).await);
        } else {
            raw.push(streams.raw(i).await);
            nap.push(streams.nap().await);
        }
    }
    (nap, raw)
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
        ..DiscoveryConfig::default()
    };
    let t = Instant::now();
    let found = client.discover_with(filter, config).await.unwrap();
    let total = t.elapsed();
    drop(hosts);
    // The stall window is idle waiting, not work: report it separately.
    (total, total.saturating_sub(config.stall), found.len())
}

/// The median, 10th and 90th percentile of paired ratios `a[i] / b[i]`.
fn paired_ratio(a: &[f64], b: &[f64]) -> (f64, f64, f64) {
    let ratios: Vec<f64> = a.iter().zip(b).map(|(a, b)| a / b).collect();
    (
        median(&ratios),
        percentile(&ratios, 0.1),
        percentile(&ratios, 0.9),
    )
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "not met" }
}

const W: usize = 46;

#[tokio::main]
async fn main() {
    let run_start = Instant::now();
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
    println!(
        "kinds interleaved in one run: latency sample by sample, throughput in alternating \
         rounds, streaming in alternating pairs"
    );
    println!();

    let _raw = raw_responder(&url).await;
    let _hand = hand_responder(&url).await;
    let _echo = echo_host(&url).await;
    let _stream = stream_host(&url).await;
    let nap = Client::new(connect(&url).await).await.unwrap();
    let echo = find(&nap, "echo").await;
    let callers = Callers {
        raw: connect(&url).await,
        hand: connect(&url).await,
        nap: nap.clone(),
        echo,
        request: Bytes::from(Envelope::text(PROMPT).encode()),
        ack: Bytes::from(Chunk::ACK.encode()),
        response: Bytes::from(Chunk::text(PROMPT).encode()),
    };

    // Latency, one caller.
    let lat = latency(&callers).await;
    let p50 = |k: Kind| percentile(&lat[k.index()], 0.5);
    println!(
        "{:<W$}{:>10}{:>10}{:>12}",
        format!("1 caller, {LATENCY_SAMPLES} interleaved samples each"),
        "p50",
        "p99",
        "prompts/s"
    );
    for kind in KINDS {
        let s = &lat[kind.index()];
        let total: Duration = s.iter().sum();
        println!(
            "  {:<w$}{:>10}{:>10}{:>12.0}",
            kind.label(),
            us(p50(kind)),
            us(percentile(s, 0.99)),
            s.len() as f64 / total.as_secs_f64(),
            w = W - 2
        );
    }
    println!();

    // Throughput, CALLERS concurrent callers.
    let tp = throughput(&callers).await;
    println!(
        "{:<W$}{:>10}{:>10}{:>12}",
        format!(
            "{CALLERS} callers, {THROUGHPUT_ROUNDS} rounds of {} ms each",
            ROUND_WINDOW.as_millis()
        ),
        "p50",
        "p99",
        "prompts/s"
    );
    for kind in KINDS {
        let l = &tp.latencies[kind.index()];
        println!(
            "  {:<w$}{:>10}{:>10}{:>12.0}",
            kind.label(),
            us(percentile(l, 0.5)),
            us(percentile(l, 0.99)),
            median(&tp.rates[kind.index()]),
            w = W - 2
        );
    }
    println!("  (prompts/s: median over rounds; p50/p99: every prompt of every round)");
    println!();

    // Streaming.
    let streams = Streams {
        handle: find(&nap, "stream").await,
        client: Client::new(connect(&url).await).await.unwrap(),
        publisher: connect(&url).await,
        receiver: connect(&url).await,
        chunk: Bytes::from(Chunk::text("y".repeat(STREAM_CHUNK)).encode()),
    };
    let (nap_times, raw_times) = streaming(&streams).await;
    let mib = |d: &Duration| STREAM_BYTES as f64 / (1 << 20) as f64 / d.as_secs_f64();
    let nap_mibs: Vec<f64> = nap_times.iter().map(mib).collect();
    let raw_mibs: Vec<f64> = raw_times.iter().map(mib).collect();
    println!(
        "{:<W$}{:>10}{:>10}{:>12}",
        format!("1 MiB in 4 KiB chunks, {STREAM_PAIRS} pairs"),
        "p50",
        "p90",
        "MiB/s"
    );
    for (label, times, mibs) in [
        (
            "raw publish of the same 256 wire chunks",
            &raw_times,
            &raw_mibs,
        ),
        ("nap (agent sends 256 text chunks)", &nap_times, &nap_mibs),
    ] {
        println!(
            "  {:<w$}{:>10}{:>10}{:>12.0}",
            label,
            format!("{:.1} ms", percentile(times, 0.5).as_secs_f64() * 1e3),
            format!("{:.1} ms", percentile(times, 0.9).as_secs_f64() * 1e3),
            median(mibs),
            w = W - 2
        );
    }
    println!();

    // Discovery.
    println!(
        "{:<W$}{:>10}{:>10}{:>12}",
        "discovery", "total", "w/o stall", "found"
    );
    for n in [1, 100, 1000] {
        let (total, work, found) = discovery(&url, n).await;
        println!(
            "  {:<w$}{:>10}{:>10}{:>12}",
            format!("{n} registered instance(s)"),
            format!("{} ms", total.as_millis()),
            format!("{} ms", work.as_millis()),
            format!("{found}/{n}"),
            w = W - 2
        );
    }
    println!();

    // Ratios, as the targets are stated.
    println!("ratios (paired: median [p10-p90] of round-by-round / pair-by-pair ratios)");
    let (tp_ratio, tp_lo, tp_hi) =
        paired_ratio(&tp.rates[Kind::Nap.index()], &tp.rates[Kind::Hand.index()]);
    println!(
        "  {:<w$}{:>6.2} [{:.2}-{:.2}]  target >= 1.0  {}",
        format!("prompts/s, {CALLERS} callers: nap / hand-written"),
        tp_ratio,
        tp_lo,
        tp_hi,
        verdict(tp_ratio >= 1.0),
        w = W - 2
    );
    let (st_ratio, st_lo, st_hi) = paired_ratio(&nap_mibs, &raw_mibs);
    println!(
        "  {:<w$}{:>6.2} [{:.2}-{:.2}]  target >= 0.8  {}",
        "1 MiB in 4 KiB chunks: nap / raw publish",
        st_ratio,
        st_lo,
        st_hi,
        verdict(st_ratio >= 0.8),
        w = W - 2
    );
    let ratio = |a: Kind, b: Kind| p50(a).as_secs_f64() / p50(b).as_secs_f64();
    let rt_raw = ratio(Kind::Nap, Kind::Raw);
    println!(
        "  {:<w$}{:>6.2}{:>13}  target <= 1.1  {}",
        "p50 round trip: nap / raw request-reply",
        rt_raw,
        "",
        verdict(rt_raw <= 1.1),
        w = W - 2
    );
    println!(
        "  {:<w$}{:>6.2}{:>13}  (no target)",
        "p50 round trip: nap / hand-written exchange",
        ratio(Kind::Nap, Kind::Hand),
        "",
        w = W - 2
    );
    println!(
        "  {:<w$}{:>6.2}{:>13}  (no target)",
        "p50 round trip: hand-written / raw req-reply",
        ratio(Kind::Hand, Kind::Raw),
        "",
        w = W - 2
    );
    println!();
    println!("bench run time: {:.1} s", run_start.elapsed().as_secs_f64());
}
