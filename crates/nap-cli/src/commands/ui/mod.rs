//! `nap ui`: a local web page to see the agents on a NATS system, talk to
//! them and run the conformance suite against one.
//!
//! The server holds the NATS connection (the CLI's flags and identity);
//! the page, embedded in the binary, talks to it over plain HTTP:
//!
//! - `GET /api/agents`: every agent (§4.1) with its presence (§8);
//! - `GET /api/events`: server-sent events, one per presence change, so
//!   the grid follows agents coming and going without a reload;
//! - `POST /api/prompt`: prompts one instance (§5) and answers with the
//!   reply as server-sent events (ack, status, text, question, error, end);
//!   `POST /api/answer` answers a question (§7); closing the response
//!   cancels the prompt (§6.7);
//! - `POST /api/conformance`: runs the agent suite against one instance and
//!   returns its report with the evidence.
//!
//! It listens on loopback unless told otherwise, and sends the page no
//! secret: no credentials, no seeds.

mod api;

use std::net::SocketAddr;

use clap::Args;

use super::client;
use crate::connect::Connection;
use crate::failure::{Failure, Status};

/// Arguments of `nap ui`.
#[derive(Debug, Args)]
pub struct UiArgs {
    /// Address to listen on; anything but loopback makes the page (and the
    /// agents it reaches) available to the network
    #[arg(long, default_value = "127.0.0.1:7474", value_name = "ADDR")]
    listen: SocketAddr,
}

/// Runs `nap ui` until Ctrl-C.
pub async fn run(conn: Connection, args: UiArgs) -> Result<(), Failure> {
    let client = client(&conn).await?;
    let app = api::router(api::State::new(client, conn.nats.clone()));
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
    if bound.ip().is_loopback() {
        println!("nap ui on http://{bound}/ (loopback only); Ctrl-C stops");
    } else {
        println!(
            "nap ui on http://{bound}/ — NOT loopback: anyone who reaches this address can prompt your agents; Ctrl-C stops"
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
