//! Who may talk to `nap ui`, checked before any handler runs:
//!
//! - every request must name, in its `Host`, the listen address, a
//!   loopback name (`localhost`, `127.0.0.1`, `[::1]`, with the port) or a
//!   name given with `--allow-host`: a page on another site that rebinds
//!   its DNS name to this address gets a 403 (DNS rebinding);
//! - every API request must carry this run's token in its cookie
//!   ([`Token`]), or get a 401;
//! - every request that changes something (a prompt, an answer, a
//!   conformance run; a cancel is the prompt's response being dropped) and
//!   the event stream must come from the page's own origin: an `Origin`
//!   whose host and port are the request's `Host`, or, without `Origin`,
//!   `Sec-Fetch-Site: same-origin`; anything else gets a 403 (cross-site
//!   request forgery).
//!
//! No CORS header is ever sent, so no other origin can read a response.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::uri::Authority;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::token::Token;

/// A name a request's `Host` may give besides the listen address and the
/// loopback names: `NAME` (any port, as a reverse proxy forwards it) or
/// `NAME:PORT` (that port only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHost {
    /// The host, lower case; an IPv6 address keeps its brackets.
    host: String,
    /// The port it must come with, or `None` for any (or none).
    port: Option<u16>,
}

/// Why an `--allow-host` value is not a host name.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AllowHostError {
    /// Not `NAME` or `NAME:PORT` (a scheme, a path, a user, spaces …).
    #[error("{0:?} is not a host name: give NAME or NAME:PORT, without a scheme or a path")]
    NotAHost(String),
}

impl FromStr for AllowedHost {
    type Err = AllowHostError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let not_a_host = || AllowHostError::NotAHost(value.to_owned());
        // `Authority` also takes `user@host`; a Host header never does.
        if value.contains('@') {
            return Err(not_a_host());
        }
        let authority = Authority::from_str(value).map_err(|_| not_a_host())?;
        if authority.host().is_empty() || value.ends_with(':') {
            return Err(not_a_host());
        }
        Ok(AllowedHost {
            host: authority.host().to_ascii_lowercase(),
            port: authority.port_u16(),
        })
    }
}

impl AllowedHost {
    /// `host` with exactly `port`.
    fn with_port(host: &str, port: u16) -> Self {
        AllowedHost {
            host: host.to_owned(),
            port: Some(port),
        }
    }

    /// Whether a `Host` of `host` (lower case) and `port` (`None`: the
    /// scheme's default) is this name.
    fn admits(&self, host: &str, port: Option<u16>) -> bool {
        self.host == host
            && match self.port {
                None => true,
                // A Host without a port names the default HTTP port.
                Some(wanted) => port.unwrap_or(80) == wanted,
            }
    }
}

/// The host part of `ip` as a `Host` header writes it.
fn host_of(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

/// The names one server answers to.
#[derive(Debug)]
pub struct Hosts {
    allowed: Vec<AllowedHost>,
}

impl Hosts {
    /// The listen address `bound` (unless it is unspecified, `0.0.0.0` or
    /// `[::]`, which no browser names), the loopback names with its port,
    /// and `extra`.
    pub fn new(bound: SocketAddr, extra: Vec<AllowedHost>) -> Self {
        let port = bound.port();
        let mut allowed = vec![
            AllowedHost::with_port("localhost", port),
            AllowedHost::with_port("127.0.0.1", port),
            AllowedHost::with_port("[::1]", port),
        ];
        if !bound.ip().is_unspecified() && !bound.ip().is_loopback() {
            allowed.push(AllowedHost::with_port(&host_of(bound.ip()), port));
        }
        allowed.extend(extra);
        Hosts { allowed }
    }

    /// Whether a request with `headers` names one of these hosts.
    fn admit(&self, headers: &HeaderMap) -> bool {
        let Some(authority) = headers
            .get(header::HOST)
            .and_then(|value| value.to_str().ok())
            .filter(|value| !value.contains('@'))
            .and_then(|value| Authority::from_str(value).ok())
        else {
            return false;
        };
        let host = authority.host().to_ascii_lowercase();
        let port = authority.port_u16();
        self.allowed.iter().any(|name| name.admits(&host, port))
    }
}

/// What the middleware checks against: the names and the token.
#[derive(Debug)]
pub struct Guard {
    hosts: Hosts,
    token: Token,
}

impl Guard {
    /// A guard for `hosts` and `token`.
    pub fn new(hosts: Hosts, token: Token) -> Self {
        Guard { hosts, token }
    }

    /// This run's token.
    pub fn token(&self) -> &Token {
        &self.token
    }
}

/// A refusal, as JSON with its status.
fn refuse(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

/// Whether `headers` say the request comes from the page's own origin: an
/// `Origin` of `http://` or `https://` and exactly the request's `Host`
/// (a reverse proxy must keep the `Host` header), or, when there is no
/// `Origin`, `Sec-Fetch-Site: same-origin`.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return headers.get("sec-fetch-site").map(HeaderValue::as_bytes) == Some(b"same-origin");
    };
    let (Ok(origin), Some(Ok(host))) = (
        origin.to_str(),
        headers.get(header::HOST).map(HeaderValue::to_str),
    ) else {
        return false;
    };
    let Some(authority) = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
    else {
        // `null` (a sandboxed frame, a redirect) or another scheme.
        return false;
    };
    authority.eq_ignore_ascii_case(host)
}

/// Every request: 403 unless its `Host` is one this server answers to.
pub async fn host(State(guard): State<Arc<Guard>>, request: Request, next: Next) -> Response {
    if !guard.hosts.admit(request.headers()) {
        return refuse(
            StatusCode::FORBIDDEN,
            "this Host is not one nap ui answers to: use the address it printed, or name this \
             host with --allow-host",
        );
    }
    next.run(request).await
}

/// The API's reads: 401 without this run's token.
pub async fn reader(State(guard): State<Arc<Guard>>, request: Request, next: Next) -> Response {
    if !guard.token.carried_by(request.headers()) {
        return unauthorised();
    }
    next.run(request).await
}

/// The API's writes and the event stream: 403 from anywhere but the
/// page's own origin, then 401 without this run's token.
pub async fn writer(State(guard): State<Arc<Guard>>, request: Request, next: Next) -> Response {
    if !same_origin(request.headers()) {
        return refuse(
            StatusCode::FORBIDDEN,
            "this request does not come from nap ui's own page (Origin)",
        );
    }
    if !guard.token.carried_by(request.headers()) {
        return unauthorised();
    }
    next.run(request).await
}

/// The 401 of an API request without the token.
fn unauthorised() -> Response {
    refuse(
        StatusCode::UNAUTHORIZED,
        "no valid nap ui token: open the URL nap ui printed (it ends in ?token=…)",
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn hosts(bound: &str, extra: &[&str]) -> Hosts {
        Hosts::new(
            bound.parse().unwrap(),
            extra.iter().map(|e| e.parse().unwrap()).collect(),
        )
    }

    #[test]
    fn loopback_names_and_the_listen_address_are_admitted_with_the_port() {
        let on_loopback = hosts("127.0.0.1:7474", &[]);
        for host in [
            "127.0.0.1:7474",
            "localhost:7474",
            "LocalHost:7474",
            "[::1]:7474",
        ] {
            assert!(on_loopback.admit(&headers(&[("host", host)])), "{host}");
        }
        for host in [
            "127.0.0.1:7475",
            "127.0.0.1",
            "evil.example:7474",
            "user@127.0.0.1:7474",
            "",
        ] {
            assert!(!on_loopback.admit(&headers(&[("host", host)])), "{host}");
        }
        assert!(!on_loopback.admit(&HeaderMap::new()), "no Host at all");

        let on_lan = hosts("192.168.1.5:80", &[]);
        assert!(on_lan.admit(&headers(&[("host", "192.168.1.5")])));
        assert!(on_lan.admit(&headers(&[("host", "192.168.1.5:80")])));
        assert!(!hosts("0.0.0.0:7474", &[]).admit(&headers(&[("host", "0.0.0.0:7474")])));
    }

    #[test]
    fn allowed_hosts_take_any_port_unless_they_name_one() {
        let proxied = hosts("127.0.0.1:7474", &["Nap.Example", "other.example:8443"]);
        for host in [
            "nap.example",
            "nap.example:443",
            "NAP.example:7474",
            "other.example:8443",
        ] {
            assert!(proxied.admit(&headers(&[("host", host)])), "{host}");
        }
        for host in ["other.example", "other.example:443", "sub.nap.example"] {
            assert!(!proxied.admit(&headers(&[("host", host)])), "{host}");
        }
        for bad in [
            "http://nap.example",
            "nap.example/ui",
            "a b",
            "",
            "u@nap.example",
            ":80",
        ] {
            assert!(bad.parse::<AllowedHost>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_origin_must_be_the_host() {
        let host = ("host", "127.0.0.1:7474");
        for good in [
            headers(&[host, ("origin", "http://127.0.0.1:7474")]),
            headers(&[host, ("origin", "https://127.0.0.1:7474")]),
            headers(&[host, ("sec-fetch-site", "same-origin")]),
        ] {
            assert!(same_origin(&good), "{good:?}");
        }
        for bad in [
            headers(&[host]),
            headers(&[host, ("origin", "http://evil.example")]),
            headers(&[host, ("origin", "http://127.0.0.1:7475")]),
            headers(&[host, ("origin", "null")]),
            headers(&[host, ("origin", "ftp://127.0.0.1:7474")]),
            headers(&[host, ("sec-fetch-site", "cross-site")]),
            headers(&[host, ("sec-fetch-site", "same-site")]),
            // An Origin that differs wins over a claim of same-origin.
            headers(&[
                host,
                ("origin", "http://evil.example"),
                ("sec-fetch-site", "same-origin"),
            ]),
            headers(&[("origin", "http://127.0.0.1:7474")]),
        ] {
            assert!(!same_origin(&bad), "{bad:?}");
        }
    }
}
