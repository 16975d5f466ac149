//! Small wire helpers over async-nats: headers for the protocol core, error headers, and a server round trip.

use async_nats::HeaderMap;
use nap_proto::{Received, ServiceError};

/// A borrowed async-nats header map, readable by the protocol core.
pub(crate) struct NatsHeaders<'a>(pub &'a HeaderMap);

impl nap_proto::Headers for NatsHeaders<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(|v| v.as_str())
    }
}

/// Runs `f` with the message as the protocol core sees it (§6.5: a header
/// block, even an empty one, makes a message not a terminator).
pub(crate) fn with_received<R>(msg: &async_nats::Message, f: impl FnOnce(Received<'_>) -> R) -> R {
    match &msg.headers {
        Some(h) => {
            let h = NatsHeaders(h);
            f(Received::with_headers(&h, &msg.payload))
        }
        None => f(Received::body(&msg.payload)),
    }
}

/// The §9.1 error headers as an async-nats header map.
pub(crate) fn error_headers(error: &ServiceError) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in error.headers() {
        headers.insert(name, value.as_str());
    }
    headers
}

/// Waits until the server has processed everything this connection sent
/// before: a message to a fresh inbox of our own comes back only after the
/// server has handled the earlier SUBs. (`flush` only empties our buffer.)
pub(crate) async fn round_trip(nats: &async_nats::Client) -> Result<(), RoundTripError> {
    use futures::StreamExt;
    let inbox = nats.new_inbox();
    let mut echo = nats.subscribe(inbox.clone()).await?;
    nats.publish(inbox, bytes::Bytes::new()).await?;
    match tokio::time::timeout(std::time::Duration::from_secs(10), echo.next()).await {
        Ok(Some(_)) => Ok(()),
        _ => Err(RoundTripError::NoEcho),
    }
}

/// Why the server did not confirm a round trip (everything sent before
/// it processed).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RoundTripError {
    /// The echo subscription could not be made.
    #[error(transparent)]
    Subscribe(#[from] async_nats::SubscribeError),
    /// The echo could not be published.
    #[error(transparent)]
    Publish(#[from] async_nats::PublishError),
    /// The server did not echo a message within 10 s.
    #[error("the server did not echo a message within 10 s")]
    NoEcho,
    /// The connection to the server is down.
    #[error("the connection to the NATS server is down")]
    Disconnected,
}

/// Whether the connection is up right now (a client reconnecting holds
/// what it is given until it is back).
pub(crate) fn connected(nats: &async_nats::Client) -> bool {
    nats.connection_state() == async_nats::connection::State::Connected
}
