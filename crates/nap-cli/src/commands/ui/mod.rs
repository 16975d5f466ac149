//! `nap ui`: a local web page to see the agents on a NATS system, talk to
//! them and run the conformance suite against one.
//!
//! The server holds the NATS connection (the CLI's flags and identity);
//! the page, embedded in the binary, talks to it over plain HTTP:
//!
//! - `GET /?token=…`: trades the printed token for a cookie; `GET /`: the
//!   page itself;
//! - `GET /api/agents`: every agent (§4.1) with its presence (§8);
//! - `POST /api/events`: server-sent events, one per presence change, so
//!   the grid follows agents coming and going without a reload;
//! - `POST /api/prompt`: prompts one instance (§5) and answers with the
//!   reply as server-sent events (ack, status, text, question, error, end);
//!   `POST /api/answer` answers a question (§7); closing the response
//!   cancels the prompt (§6.7);
//! - `POST /api/conformance`: runs the agent suite against one instance and
//!   returns its report with the evidence.
//!
//! Nothing reaches a handler unless it names this server in its `Host`
//! (or a name given with `--allow-host`), and nothing reaches the API
//! without this run's token, printed in the URL and traded by the page for
//! a cookie; what changes something, and the event stream, must come from
//! the page's own origin ([`guard`], [`token`]). It listens on loopback
//! unless told otherwise, and sends the page no secret: no credentials, no
//! seeds.

mod api;
mod guard;
mod token;

use std::net::SocketAddr;
use std::sync::Arc;

use clap::Args;

use super::client;
use crate::connect::Connection;
use crate::failure::{Failure, Status};

/// Arguments of `nap ui`.
#[derive(Debug, Args)]
#[command(
    after_help = "Security: nap ui prints its URL with a token made for this run \
(http://127.0.0.1:7474/?token=…); the page trades it for a cookie, and API requests without it \
get 401. Requests whose Host is neither the listen address nor localhost, 127.0.0.1 or [::1] \
(with the port) nor an --allow-host name get 403, and so do prompts, answers, conformance \
runs and the event stream from any origin but the page's own. The token cannot be turned off. \
Off loopback the token travels in clear: put TLS in front (a reverse proxy that keeps the \
Host header, named with --allow-host)."
)]
pub struct UiArgs {
    /// Address to listen on; anything but loopback makes the page (and the
    /// agents it reaches) available to whoever has the token and reaches
    /// the address
    #[arg(long, default_value = "127.0.0.1:7474", value_name = "ADDR")]
    listen: SocketAddr,
    /// Also answer to requests whose Host is NAME (any port) or NAME:PORT,
    /// as behind a reverse proxy or on a LAN name; repeatable
    #[arg(long = "allow-host", value_name = "NAME")]
    allow_hosts: Vec<guard::AllowedHost>,
}

/// Runs `nap ui` until Ctrl-C.
pub async fn run(conn: Connection, args: UiArgs) -> Result<(), Failure> {
    let client = client(&conn).await?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| {
            Failure::new(
                Status::Usage,
                anyhow::Error::new(e).context(format!("cannot listen on {}", args.listen)),
            )
        })?;
    let bound = listener
        .local_addr()
        .map_err(|e| Failure::new(Status::Usage, e))?;
    let token = token::Token::generate(bound.port()).map_err(|e| {
        Failure::new(
            Status::Usage,
            anyhow::Error::new(e).context("cannot draw a token from the system's random source"),
        )
    })?;
    let url = format!("http://{}/?token={}", browsable(bound), token.secret());
    let guard = Arc::new(guard::Guard::new(
        guard::Hosts::new(bound, args.allow_hosts),
        token,
    ));
    let app = api::router(api::State::new(client, conn.nats.clone()), guard);
    if bound.ip().is_loopback() {
        println!("nap ui on {url} (loopback only); Ctrl-C stops");
    } else {
        println!(
            "nap ui on {url} — NOT loopback ({bound}): whoever reaches it with the token can \
             prompt your agents, and plain HTTP carries the token in clear: put TLS in front \
             (a reverse proxy that keeps the Host header, its name given with --allow-host); \
             Ctrl-C stops"
        );
    }
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| Failure::new(Status::Stream, e))?;
    Ok(())
}

/// The address a browser on this machine opens: `bound` itself, or
/// loopback when `bound` is unspecified (`0.0.0.0`, `[::]`).
fn browsable(bound: SocketAddr) -> SocketAddr {
    match bound.ip() {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, bound.port()))
        }
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, bound.port()))
        }
        _ => bound,
    }
}
