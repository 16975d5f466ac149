//! The secret of one `nap ui` run, as Jupyter does it: 32 bytes from the
//! operating system's CSPRNG, printed in the URL (`/?token=…`); the page
//! trades it for an `HttpOnly`, `SameSite=Strict` cookie and a redirect
//! to `/`, so the token leaves the address bar and no script can read it.
//! Tokens are compared in constant time.
//!
//! There is no way to turn it off: other users of the machine, and any
//! local program, reach loopback too, and clicking the printed URL costs
//! nothing.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cookie::{Cookie, SameSite};
use serde::Deserialize;
use subtle::ConstantTimeEq as _;

use super::guard::Guard;

/// How many random bytes a token holds.
const TOKEN_BYTES: usize = 32;

/// The page, embedded in the binary.
const PAGE: &str = include_str!("page.html");

/// This run's token and the cookie that carries it.
pub struct Token {
    secret: String,
    cookie_name: String,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("cookie_name", &self.cookie_name)
            .finish_non_exhaustive()
    }
}

impl Token {
    /// A fresh token for the server on `port` (cookies do not tell ports
    /// apart, so the port is in the cookie's name: two `nap ui` on one
    /// machine keep their own).
    pub fn generate(port: u16) -> Result<Self, getrandom::Error> {
        let mut bytes = [0u8; TOKEN_BYTES];
        getrandom::fill(&mut bytes)?;
        Ok(Token {
            secret: URL_SAFE_NO_PAD.encode(bytes),
            cookie_name: format!("nap-ui-{port}"),
        })
    }

    /// The token, for the printed URL.
    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// Whether `candidate` is the token, in constant time.
    fn matches(&self, candidate: &str) -> bool {
        self.secret.as_bytes().ct_eq(candidate.as_bytes()).into()
    }

    /// Whether one of the request's cookies carries the token.
    pub fn carried_by(&self, headers: &HeaderMap) -> bool {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(Cookie::split_parse)
            .filter_map(Result::ok)
            .any(|cookie| cookie.name() == self.cookie_name && self.matches(cookie.value()))
    }

    /// The `Set-Cookie` value that hands the page the token.
    fn set_cookie(&self) -> String {
        Cookie::build((self.cookie_name.as_str(), self.secret.as_str()))
            .path("/")
            .http_only(true)
            .same_site(SameSite::Strict)
            .build()
            .to_string()
    }
}

/// The query of `/`.
#[derive(Debug, Deserialize)]
pub struct PageQuery {
    token: Option<String>,
}

/// Headers on every page: never framed (clickjacking), never a referrer.
const PAGE_HEADERS: [(header::HeaderName, &str); 4] = [
    (header::X_FRAME_OPTIONS, "DENY"),
    (header::CONTENT_SECURITY_POLICY, "frame-ancestors 'none'"),
    (header::REFERRER_POLICY, "no-referrer"),
    (header::CACHE_CONTROL, "no-store"),
];

/// `/`: with the right `?token=`, the cookie and a redirect to `/`; with
/// the cookie, the page; otherwise a 401 page that asks for the token.
pub async fn page(
    State(guard): State<Arc<Guard>>,
    Query(query): Query<PageQuery>,
    headers: HeaderMap,
) -> Response {
    let token = guard.token();
    if let Some(candidate) = query.token {
        if !token.matches(&candidate) {
            return login("That is not this run's token.");
        }
        return (
            StatusCode::SEE_OTHER,
            PAGE_HEADERS,
            [
                (header::SET_COOKIE, token.set_cookie()),
                (header::LOCATION, "/".to_owned()),
            ],
        )
            .into_response();
    }
    if token.carried_by(&headers) {
        (PAGE_HEADERS, Html(PAGE)).into_response()
    } else {
        login("")
    }
}

/// The 401 page: where the token comes from, and a field to paste it in.
fn login(problem: &str) -> Response {
    let page = LOGIN.replace("{problem}", problem);
    (StatusCode::UNAUTHORIZED, PAGE_HEADERS, Html(page)).into_response()
}

/// The login page; `{problem}` is replaced by what went wrong, if anything.
const LOGIN: &str = r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>nap ui: token</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body { font-family: system-ui, sans-serif; max-width: 34em; margin: 10vh auto; padding: 0 16px; color: #1d2430; }
input { width: 100%; padding: 6px; box-sizing: border-box; } .problem { color: #b01c1c; }</style></head>
<body>
<h1>nap ui</h1>
<p class="problem" data-testid="problem">{problem}</p>
<p>Open the URL <code>nap ui</code> printed when it started (it ends in <code>?token=…</code>),
or paste its token here. Each run has its own.</p>
<form method="get" action="/"><input name="token" autocomplete="off" placeholder="token" autofocus></form>
</body>
</html>
"#;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn a_token_is_random_and_only_its_own_cookie_carries_it() {
        let token = Token::generate(7474).unwrap();
        let other = Token::generate(7474).unwrap();
        assert_ne!(token.secret(), other.secret());
        assert_eq!(token.secret().len(), 43, "32 bytes in unpadded base64url");

        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::COOKIE, HeaderValue::from_str(value).unwrap());
            headers
        };
        let good = format!("theme=dark; nap-ui-7474={}", token.secret());
        assert!(token.carried_by(&with(&good)));
        assert!(!other.carried_by(&with(&good)));
        assert!(!token.carried_by(&with(&format!("nap-ui-7475={}", token.secret()))));
        assert!(!token.carried_by(&with("nap-ui-7474=")));
        assert!(!token.carried_by(&HeaderMap::new()));

        let set = token.set_cookie();
        for part in ["HttpOnly", "SameSite=Strict", "Path=/"] {
            assert!(set.contains(part), "{set}");
        }
    }
}
