//! `nap ui` in a real browser: headless Chromium, driven through
//! chromedriver (Debian's `chromium` and `chromium-driver`, which
//! `cargo xtask setup` installs), against a real nats-server with a nap
//! echo agent and a Python SDK agent. The grid shows both, a prompt streams
//! its reply, a question is answered inline, and an agent that stops goes
//! offline without a reload. The page opens through the URL `nap ui`
//! prints (its token traded for a cookie), and at 1280×800 and 1920×1080
//! nothing on it scrolls sideways; screenshots at both sizes land in
//! `target/nap-ui-screenshots/` (the README's are copies, under `docs/img/`).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use nap_testkit::NatsServer;
use serde_json::json;
use support::{host_echo, serve, ui};

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
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,800"]
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

/// Sizes the window so that the page's viewport is `width`×`height`.
async fn viewport(page: &Client, width: u32, height: u32) {
    page.set_window_size(width, height).await.unwrap();
    let inner = page
        .execute("return [window.innerWidth, window.innerHeight];", vec![])
        .await
        .unwrap();
    let (w, h) = (
        inner[0].as_u64().unwrap() as u32,
        inner[1].as_u64().unwrap() as u32,
    );
    if (w, h) != (width, height) {
        page.set_window_size(
            width + (width - w.min(width)),
            height + (height - h.min(height)),
        )
        .await
        .unwrap();
    }
    let inner = page
        .execute("return [window.innerWidth, window.innerHeight];", vec![])
        .await
        .unwrap();
    assert_eq!(inner, json!([width, height]), "the viewport");
}

/// Asserts that neither the document nor any panel scrolls sideways.
async fn no_sideways_scroll(page: &Client, when: &str) {
    let wide = page
        .execute(
            r#"const wide = [];
            for (const e of [document.documentElement, document.body,
                             ...document.querySelectorAll("header, section, #grid, #details, #log, #prompt-form, #report, #report table")]) {
              if (e.scrollWidth > e.clientWidth) wide.push((e.id || e.tagName) + ": " + e.scrollWidth + " > " + e.clientWidth);
            }
            return wide;"#,
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(wide, json!([]), "something scrolls sideways {when}");
}

/// The prompt box's height in pixels.
async fn prompt_height(page: &Client) -> f64 {
    page.execute(
        "return document.querySelector('[data-testid=prompt]').getBoundingClientRect().height;",
        vec![],
    )
    .await
    .unwrap()
    .as_f64()
    .unwrap()
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
    // Long names must be cut, not widen the list.
    let _long = host_echo(
        &url,
        "platform-infrastructure-team",
        "release-notes-summariser-eu-west-1",
    )
    .await;

    let (ui, printed) = ui(&url, &["--listen", "127.0.0.1:0"]).await;
    let ready = ui.seen.last().unwrap();
    assert!(ready.contains("loopback only"), "{ready}");
    assert!(printed.contains("/?token="), "{printed}");

    let driver = driver().await;
    let page = browser(&driver).await;
    viewport(&page, 1280, 800).await;
    // The printed URL: the token becomes a cookie and leaves the address bar.
    page.goto(&printed).await.unwrap();
    let now = page.current_url().await.unwrap();
    assert_eq!((now.path(), now.query()), ("/", None), "{now}");

    // The list: every agent, online, at a glance.
    wait_online(&page, "demo", true).await;
    wait_online(&page, "helper", true).await;
    wait_online(&page, "release-notes-summariser-eu-west-1", true).await;
    wait_text(&page, "#grid", "echo/alice").await;
    wait_text(&page, "#grid", "pyagent/bob").await;
    wait_text(&page, "tr[data-name=demo]", "online").await;
    no_sideways_scroll(&page, "with the list at 1280x800").await;

    // The rest of the record, on selection.
    click(&page, "tr[data-name=demo]").await;
    wait_text(&page, "[data-testid=details]", "Max payload").await;
    wait_text(
        &page,
        "[data-testid=details]",
        "agents.prompt.echo.alice.demo",
    )
    .await;

    // A prompt, its reply streamed in.
    let input = page
        .find(Locator::Css("[data-testid=prompt]"))
        .await
        .unwrap();
    input.send_keys("hello from the browser").await.unwrap();
    click(&page, "[data-testid=send]").await;
    wait_text(&page, "[data-testid=reply]", "hello from the browser").await;

    // The prompt box grows with a prompt of several lines, which goes whole.
    let one_line = prompt_height(&page).await;
    input
        .send_keys("first line\nsecond line\nthird line\nfourth line")
        .await
        .unwrap();
    let four_lines = prompt_height(&page).await;
    assert!(
        four_lines > one_line * 2.0,
        "the prompt box grew from {one_line} to {four_lines}"
    );
    click(&page, "[data-testid=send]").await;
    wait_text(&page, "[data-testid=reply]", "third line\nfourth line").await;
    assert!(
        prompt_height(&page).await < four_lines,
        "the prompt box shrinks once sent"
    );

    // A question (§7), sent with Ctrl+Enter, answered inline.
    input
        .send_keys(&format!(
            "ask: favourite colour?{}{}",
            char::from(Key::Control),
            char::from(Key::Enter)
        ))
        .await
        .unwrap();
    wait_text(&page, "[data-testid=question]", "favourite colour?").await;
    page.find(Locator::Css("[data-testid=answer]"))
        .await
        .unwrap()
        .send_keys("blue")
        .await
        .unwrap();
    click(&page, "[data-testid=answer-send]").await;
    wait_text(&page, "[data-testid=reply]", "you answered: blue").await;
    no_sideways_scroll(&page, "with a chat at 1280x800").await;

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
    no_sideways_scroll(&page, "with a conformance report at 1280x800").await;
    let shots = screenshots();
    std::fs::write(
        shots.join("nap-ui-1280x800.png"),
        page.screenshot().await.unwrap(),
    )
    .unwrap();

    viewport(&page, 1920, 1080).await;
    no_sideways_scroll(&page, "at 1920x1080").await;
    std::fs::write(
        shots.join("nap-ui-1920x1080.png"),
        page.screenshot().await.unwrap(),
    )
    .unwrap();

    // The Python agent stops: its row goes offline, without a reload.
    drop(python);
    wait_online(&page, "helper", false).await;
    wait_online(&page, "demo", true).await;

    page.close().await.unwrap();
}
