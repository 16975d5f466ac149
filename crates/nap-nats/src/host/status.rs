//! The `status` endpoint (§8.7): a fresh heartbeat-shaped reply per request.

use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use nap_proto::{Beacon, ServiceError, StatusCode, TimestampError};

use super::gate::{SenderGate, header_pairs};

/// Answers one instance's `status` requests.
pub(super) struct StatusResponder {
    pub(super) beacon: Beacon,
    pub(super) gate: Arc<SenderGate>,
}

impl StatusResponder {
    /// §8.7: the reply to one request; the body is ignored. The sender is
    /// classified (§13.7) but never a reason to refuse (§13.9), and the
    /// reply is never signed (§13.11). A reply that cannot be built is a
    /// `500` (§8.7.1).
    // The error is built at most once per failed request, then published.
    #[allow(clippy::result_large_err)]
    pub(super) fn reply(&self, message: &async_nats::Message) -> Result<Bytes, ServiceError> {
        let headers = header_pairs(message.headers.as_ref());
        self.gate
            .classify_status(message.subject.as_str(), &headers, &message.payload);
        self.beacon
            .beat(SystemTime::now())
            .map(|hb| Bytes::from(hb.encode()))
            .map_err(|e: TimestampError| ServiceError::new(StatusCode::Internal, e.to_string()))
    }
}
