//! `nap ui`'s guard, from outside: the real binary against a real
//! nats-server, spoken to over HTTP with the headers a hostile page (or a
//! DNS-rebound name, or another local program) would send. A foreign
//! `Host`, a foreign `Origin`, a missing or wrong token and a cross-site
//! form post are each refused, and no prompt reaches the agent: a
//! subscriber on the prompt subjects sees, first, the legitimate prompt
//! sent after them all (one connection publishes them in order, so a
//! refused prompt that got through would arrive before it).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use reqwest::header::{self, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::{PATIENCE, host_echo, ui, ui_parts};

/// An HTTP client that shows redirects instead of following them and
/// keeps no cookies of its own: every request says exactly what it sends.
fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// One request: method, URL, headers, and a JSON or raw body.
async fn send(
    http: &reqwest::Client,
    method: Method,
    url: &str,
    headers: &[(&str, String)],
    body: Option<Body>,
) -> reqwest::Response {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    let mut request = http.request(method, url).headers(map);
    match body {
        Some(Body::Json(value)) => request = request.json(&value),
        Some(Body::Form(text)) => {
            request = request
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(text)
        }
        None => {}
    }
    tokio::time::timeout(PATIENCE, request.send())
        .await
        .expect("nap ui did not answer in time")
        .unwrap()
}

enum Body {
    Json(Value),
    Form(String),
}

/// A request that must be refused: what it is, method, path, headers,
/// body, and the status it must get.
type Refusal<'a> = (
    &'a str,
    Method,
    &'a str,
    Vec<(&'a str, String)>,
    Option<Body>,
    StatusCode,
);

/// Asserts no CORS header is in `response`.
fn assert_no_cors(response: &reqwest::Response, what: &str) {
    for name in response.headers().keys() {
        assert!(
            !name.as_str().starts_with("access-control-"),
            "{what}: CORS header {name} sent"
        );
    }
}

/// Trades the printed URL for the cookie, as the page does; returns the
/// `Cookie` header value.
async fn log_in(http: &reqwest::Client, printed: &str) -> String {
    let response = send(http, Method::GET, printed, &[], None).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[header::LOCATION], "/");
    let set = response.headers()[header::SET_COOKIE].to_str().unwrap();
    for part in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(part), "{set}");
    }
    set.split(';').next().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_requests_reach_no_agent_and_the_page_works() {
    let server = nap_testkit::NatsServer::start().unwrap();
    let url = server.url();
    let _echo = host_echo(&url, "alice", "demo").await;
    let (_ui, printed) = ui(&url, &["--listen", "127.0.0.1:0"]).await;
    let (base, token) = ui_parts(&printed);
    let authority = base.trim_start_matches("http://").to_owned();
    let port = authority.rsplit_once(':').unwrap().1.to_owned();
    let http = http();

    // The printed URL: a cookie named after the port, holding the token.
    let cookie = log_in(&http, &printed).await;
    assert_eq!(cookie, format!("nap-ui-{port}={token}"));
    let page = send(
        &http,
        Method::GET,
        &format!("{base}/"),
        &[("cookie", cookie.clone())],
        None,
    )
    .await;
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(page.headers()[header::X_FRAME_OPTIONS], "DENY");
    assert!(page.text().await.unwrap().contains("id=\"prompt-form\""));
    for (what, url, headers) in [
        ("no cookie", format!("{base}/"), vec![]),
        (
            "a wrong token",
            format!("{base}/?token=not-{token}"),
            vec![],
        ),
        (
            "a cookie of another run",
            format!("{base}/"),
            vec![("cookie", format!("nap-ui-{port}=x{token}"))],
        ),
    ] {
        let response = send(&http, Method::GET, &url, &headers, None).await;
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "the page with {what}"
        );
        assert!(response.text().await.unwrap().contains("?token="), "{what}");
    }

    // The agent, as the page lists it.
    let listed = send(
        &http,
        Method::GET,
        &format!("{base}/api/agents"),
        &[("cookie", cookie.clone())],
        None,
    )
    .await;
    assert_eq!(listed.status(), StatusCode::OK);
    let listed: Value = listed.json().await.unwrap();
    let instance = listed[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(listed[0]["name"], "demo");

    // Whatever nap ui sends any agent, from here on.
    let nats = async_nats::connect(&url).await.unwrap();
    let mut prompts = nats.subscribe("agents.prompt.>").await.unwrap();
    nats.flush().await.unwrap();

    let own = ("origin", base.clone());
    let ours = ("cookie", cookie.clone());
    let evil = ("origin", "http://evil.example".to_owned());
    let in_query = format!("/api/prompt?token={token}");
    let prompt = |marker: &str| Body::Json(json!({"instance_id": instance, "prompt": marker}));
    let refusals: Vec<Refusal> = vec![
        (
            "a foreign Host (DNS rebinding), with the right cookie",
            Method::POST,
            "/api/prompt",
            vec![
                ("host", format!("evil.example:{port}")),
                ("origin", format!("http://evil.example:{port}")),
                ours.clone(),
            ],
            Some(prompt("refused: foreign host")),
            StatusCode::FORBIDDEN,
        ),
        (
            "a foreign Host asking for the page with the token",
            Method::GET,
            &printed[base.len()..],
            vec![("host", format!("evil.example:{port}"))],
            None,
            StatusCode::FORBIDDEN,
        ),
        (
            "a foreign Host on a path that does not exist",
            Method::GET,
            "/nothing",
            vec![("host", "evil.example".to_owned())],
            None,
            StatusCode::FORBIDDEN,
        ),
        (
            "a loopback name on another port",
            Method::POST,
            "/api/prompt",
            vec![
                ("host", "localhost:1".to_owned()),
                ("origin", "http://localhost:1".to_owned()),
                ours.clone(),
            ],
            Some(prompt("refused: other port")),
            StatusCode::FORBIDDEN,
        ),
        (
            "a foreign Origin, with the right cookie",
            Method::POST,
            "/api/prompt",
            vec![evil.clone(), ours.clone()],
            Some(prompt("refused: foreign origin")),
            StatusCode::FORBIDDEN,
        ),
        (
            "Origin: null",
            Method::POST,
            "/api/prompt",
            vec![("origin", "null".to_owned()), ours.clone()],
            Some(prompt("refused: null origin")),
            StatusCode::FORBIDDEN,
        ),
        (
            "no Origin and no Sec-Fetch-Site",
            Method::POST,
            "/api/prompt",
            vec![ours.clone()],
            Some(prompt("refused: no origin")),
            StatusCode::FORBIDDEN,
        ),
        (
            "Sec-Fetch-Site: cross-site",
            Method::POST,
            "/api/prompt",
            vec![("sec-fetch-site", "cross-site".to_owned()), ours.clone()],
            Some(prompt("refused: cross-site fetch")),
            StatusCode::FORBIDDEN,
        ),
        (
            "a cross-site form post",
            Method::POST,
            "/api/prompt",
            vec![evil.clone(), ("sec-fetch-site", "cross-site".to_owned())],
            Some(Body::Form(format!(
                "instance_id={instance}&prompt=refused%3A+form+post"
            ))),
            StatusCode::FORBIDDEN,
        ),
        (
            "a cross-site form post with the cookie (a browser ignoring SameSite)",
            Method::POST,
            "/api/prompt",
            vec![
                evil.clone(),
                ("sec-fetch-site", "cross-site".to_owned()),
                ours.clone(),
            ],
            Some(Body::Form(format!(
                "instance_id={instance}&prompt=refused%3A+form+post+2"
            ))),
            StatusCode::FORBIDDEN,
        ),
        (
            "no token",
            Method::POST,
            "/api/prompt",
            vec![own.clone()],
            Some(prompt("refused: no token")),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "a wrong token",
            Method::POST,
            "/api/prompt",
            vec![
                own.clone(),
                ("cookie", format!("nap-ui-{port}=wrong{token}")),
            ],
            Some(prompt("refused: wrong token")),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "the token in the query instead of the cookie",
            Method::POST,
            &in_query,
            vec![own.clone()],
            Some(prompt("refused: token in the query")),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "a conformance run from a foreign Origin",
            Method::POST,
            "/api/conformance",
            vec![evil.clone(), ours.clone()],
            Some(Body::Json(json!({"instance_id": instance}))),
            StatusCode::FORBIDDEN,
        ),
        (
            "a conformance run without the token",
            Method::POST,
            "/api/conformance",
            vec![own.clone()],
            Some(Body::Json(json!({"instance_id": instance}))),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "an answer from a foreign Origin (403, not the handler's 404)",
            Method::POST,
            "/api/answer",
            vec![evil.clone(), ours.clone()],
            Some(Body::Json(json!({"query_id": "q", "answer": "a"}))),
            StatusCode::FORBIDDEN,
        ),
        (
            "the event stream from a foreign Origin",
            Method::POST,
            "/api/events",
            vec![evil.clone(), ours.clone()],
            None,
            StatusCode::FORBIDDEN,
        ),
        (
            "the event stream without the token",
            Method::POST,
            "/api/events",
            vec![own.clone()],
            None,
            StatusCode::UNAUTHORIZED,
        ),
        (
            "the agent list without the token",
            Method::GET,
            "/api/agents",
            vec![],
            None,
            StatusCode::UNAUTHORIZED,
        ),
    ];
    for (what, method, path, headers, body, status) in refusals {
        let response = send(&http, method, &format!("{base}{path}"), &headers, body).await;
        assert_eq!(response.status(), status, "{what}");
        assert_no_cors(&response, what);
        let body: Value = response.json().await.unwrap();
        assert!(body["error"].is_string(), "{what}: {body}");
    }

    // A CORS preflight learns nothing either.
    let preflight = send(
        &http,
        Method::OPTIONS,
        &format!("{base}/api/prompt"),
        &[
            evil.clone(),
            ("access-control-request-method", "POST".to_owned()),
        ],
        None,
    )
    .await;
    assert!(!preflight.status().is_success(), "{}", preflight.status());
    assert_no_cors(&preflight, "a preflight");

    // The page's own requests: with Origin, and (a browser in a secure
    // context) with Sec-Fetch-Site alone. Each reply is the echo.
    for (marker, from) in [
        ("legit: the page's origin", own.clone()),
        (
            "legit: same-origin fetch",
            ("sec-fetch-site", "same-origin".to_owned()),
        ),
    ] {
        let reply = send(
            &http,
            Method::POST,
            &format!("{base}/api/prompt"),
            &[from, ours.clone()],
            Some(prompt(marker)),
        )
        .await;
        assert_eq!(reply.status(), StatusCode::OK, "{marker}");
        assert_no_cors(&reply, marker);
        let events = tokio::time::timeout(PATIENCE, reply.text())
            .await
            .unwrap()
            .unwrap();
        assert!(events.contains(marker), "{events}");
        assert!(events.contains("event: end"), "{events}");

        // The first prompt the agent's subject carries since the refusals
        // is this one: none of them was sent.
        let seen = tokio::time::timeout(PATIENCE, futures::StreamExt::next(&mut prompts))
            .await
            .expect("the legitimate prompt never reached the subject")
            .unwrap();
        let payload = String::from_utf8_lossy(&seen.payload);
        assert!(
            payload.contains(marker),
            "a refused prompt reached the agent: {payload}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_host_admits_a_reverse_proxy_name_and_its_https_origin() {
    let server = nap_testkit::NatsServer::start().unwrap();
    let url = server.url();
    let (_ui, printed) = ui(
        &url,
        &["--listen", "127.0.0.1:0", "--allow-host", "nap.example"],
    )
    .await;
    let (base, token) = ui_parts(&printed);
    let http = http();

    // The proxy forwards the browser's Host: nap.example, any port.
    let login = send(
        &http,
        Method::GET,
        &format!("{base}/?token={token}"),
        &[("host", "nap.example".to_owned())],
        None,
    )
    .await;
    assert_eq!(login.status(), StatusCode::SEE_OTHER);
    let cookie = login.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    // Past every guard, the handler's own 404: no such question.
    let answer = send(
        &http,
        Method::POST,
        &format!("{base}/api/answer"),
        &[
            ("host", "nap.example:443".to_owned()),
            ("origin", "https://nap.example:443".to_owned()),
            ("cookie", cookie.clone()),
        ],
        Some(Body::Json(json!({"query_id": "q", "answer": "a"}))),
    )
    .await;
    assert_eq!(answer.status(), StatusCode::NOT_FOUND);
    // Another name still gets 403.
    let other = send(
        &http,
        Method::GET,
        &format!("{base}/api/agents"),
        &[("host", "other.example".to_owned()), ("cookie", cookie)],
        None,
    )
    .await;
    assert_eq!(other.status(), StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn off_loopback_it_says_tls_belongs_in_front_and_keeps_the_token() {
    let server = nap_testkit::NatsServer::start().unwrap();
    let url = server.url();
    let (ui, printed) = ui(&url, &["--listen", "0.0.0.0:0"]).await;
    let line = ui.seen.last().unwrap().clone();
    assert!(line.contains("NOT loopback"), "{line}");
    assert!(line.contains("TLS"), "{line}");
    // The URL opens on this machine, token and all.
    assert!(printed.starts_with("http://127.0.0.1:"), "{printed}");
    let (base, _) = ui_parts(&printed);
    let http = http();
    let cookie = log_in(&http, &printed).await;
    let listed = send(
        &http,
        Method::GET,
        &format!("{base}/api/agents"),
        &[("cookie", cookie)],
        None,
    )
    .await;
    assert_eq!(listed.status(), StatusCode::OK);
    let without = send(&http, Method::GET, &format!("{base}/api/agents"), &[], None).await;
    assert_eq!(without.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_allow_host_that_is_not_a_host_is_a_usage_error() {
    let out = support::run(
        "nats://127.0.0.1:1",
        &["ui", "--allow-host", "http://nap.example/"],
    )
    .await;
    support::assert_exit(&out, 2);
    assert!(
        support::stderr(&out).contains("is not a host name"),
        "{}",
        support::stderr(&out)
    );
}
