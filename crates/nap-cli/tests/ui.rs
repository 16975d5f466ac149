//! `nap ui` in a real browser: headless Chromium, driven through
//! chromedriver (Debian's `chromium` and `chromium-driver`, which
//! `cargo xtask setup` installs), against a real nats-server with a nap
//! echo agent and a Python SDK agent. The grid shows both, a prompt streams
//! its reply, a question is answered inline, and an agent that stops goes
//! offline without a reload. Screenshots of the grid and of the chat land
//! in `target/nap-ui-screenshots/`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use nap_testkit::NatsServer;
use serde_json::json;
use support::serve;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// How long the page may take to show something; generous, never asserted on.
const PAGE_PATIENCE: Duration = Duration::from_secs(30);

/// chromedriver on a free port, killed on drop.
struct Driver {
    _child: tokio::process::Child,
    url: String,
}

async fn driver() -> Driver {
    for path in [CHROMIUM, CHROMEDRIVER] {
        assert!(
            Path::new(path).exists(),
            "{path} is missing: run `cargo xtask setup` (it installs chromium and chromium-driver)"
        );
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = tokio::process::Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Driver { _child: child, url };
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not listen on {url}");
}

async fn browser(driver: &Driver) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1500,900"]
        }),
    );
    // Plain HTTP to the local chromedriver.
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .unwrap()
}

/// Waits until `css` matches an element whose text contains `text`.
async fn wait_text(page: &Client, css: &str, text: &str) {
    let deadline = tokio::time::Instant::now() + PAGE_PATIENCE;
    loop {
        for element in page.find_all(Locator::Css(css)).await.unwrap() {
            if element.text().await.unwrap_or_default().contains(text) {
                return;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no {css} containing {text:?}; page: {}",
            page.source().await.unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the row of the agent named `name` says `online`.
async fn wait_online(page: &Client, name: &str, online: bool) {
    let css = format!("tr[data-testid=agent-row][data-name={name}][data-online={online}]");
    page.wait()
        .at_most(PAGE_PATIENCE)
        .for_element(Locator::Css(&css))
        .await
        .unwrap_or_else(|e| panic!("{name} never shown online={online}: {e}"));
}

/// Clicks the element `css` matches.
async fn click(page: &Client, css: &str) {
    page.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"))
        .click()
        .await
        .unwrap();
}

fn screenshots() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/nap-ui-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_shows_agents_streams_a_reply_takes_an_answer_and_sees_an_agent_go() {
    let server = NatsServer::start().unwrap();
    let url = server.url();
    let (_echo, _) = serve(
        &url,
        &[
            "echo",
            "--owner",
            "alice",
            "--name",
            "demo",
            "--heartbeat",
            "1",
        ],
    )
    .await;
    let (python, _) = support::python_agent(&url, "bob", "helper").await;

    let (ui, printed) = support::ui(&url, &["--listen", "127.0.0.1:0"]).await;
    let ready = ui.seen.last().unwrap();
    assert!(ready.contains("loopback only"), "{ready}");

    let driver = driver().await;
    let page = browser(&driver).await;
    // The printed URL: the token becomes a cookie and leaves the address bar.
    page.goto(&printed).await.unwrap();
    let now = page.current_url().await.unwrap();
    assert_eq!((now.path(), now.query()), ("/", None), "{now}");

    // The grid: both agents, online.
    wait_online(&page, "demo", true).await;
    wait_online(&page, "helper", true).await;
    wait_text(&page, "#grid", "echo/alice").await;
    wait_text(&page, "#grid", "pyagent/bob").await;
    let shots = screenshots();
    std::fs::write(shots.join("grid.png"), page.screenshot().await.unwrap()).unwrap();

    // A prompt, its reply streamed in.
    click(&page, "tr[data-name=demo]").await;
    let input = page
        .find(Locator::Css("[data-testid=prompt]"))
        .await
        .unwrap();
    input.send_keys("hello from the browser").await.unwrap();
    click(&page, "[data-testid=send]").await;
    wait_text(&page, "[data-testid=reply]", "hello from the browser").await;

    // A question (§7), answered inline.
    input.send_keys("ask: favourite colour?").await.unwrap();
    click(&page, "[data-testid=send]").await;
    wait_text(&page, "[data-testid=question]", "favourite colour?").await;
    page.find(Locator::Css("[data-testid=answer]"))
        .await
        .unwrap()
        .send_keys("blue")
        .await
        .unwrap();
    click(&page, "[data-testid=answer-send]").await;
    wait_text(&page, "[data-testid=reply]", "you answered: blue").await;
    std::fs::write(shots.join("chat.png"), page.screenshot().await.unwrap()).unwrap();

    // The conformance suite against the selected agent, its cases listed.
    click(&page, "[data-testid=conformance]").await;
    page.wait()
        .at_most(Duration::from_secs(90))
        .for_element(Locator::Css("[data-testid=verdict]"))
        .await
        .unwrap();
    let verdict = page
        .find(Locator::Css("[data-testid=verdict]"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(verdict, "compliant", "nap's echo agent passes every MUST");
    wait_text(&page, "[data-testid=case]", "REG-001").await;

    // The Python agent stops: its row goes offline, without a reload.
    drop(python);
    wait_online(&page, "helper", false).await;
    wait_online(&page, "demo", true).await;

    page.close().await.unwrap();
}
