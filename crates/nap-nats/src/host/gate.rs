//! Who sent a request (§13.7): one [`SenderVerifier`] per instance,
//! shared by the `prompt` and `status` endpoints, so that a nonce seen on
//! either is not accepted again on either.
//!
//! Classification is synchronous and cheap (one SHA-256 of the payload and
//! one ed25519 verification for a signed request), so it runs on the
//! endpoint's reader, under a plain mutex that is never held across an
//! await.

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use nap_proto::identity::{
    MinSenderTrust, SENDER_HEADER, Sender, SenderRejection, SenderVerifier, VerifierConfig,
};

/// The acceptance hook of §13.7.3: whether the instance serves a sender.
pub(super) type AcceptHook = Arc<dyn Fn(&Sender) -> bool + Send + Sync + 'static>;

/// The identity gate of one instance.
pub(super) struct SenderGate {
    verifier: Mutex<SenderVerifier>,
    requirement: MinSenderTrust,
    accept: Option<AcceptHook>,
}

/// The values of a message's `Agent-Sender` headers; the name is matched
/// case-sensitively (§13.5.1).
fn sender_values(headers: &[(String, String)]) -> impl Iterator<Item = &str> {
    headers
        .iter()
        .filter(|(name, _)| name == SENDER_HEADER)
        .map(|(_, value)| value.as_str())
}

impl SenderGate {
    pub(super) fn new(
        config: VerifierConfig,
        requirement: MinSenderTrust,
        accept: Option<AcceptHook>,
    ) -> SenderGate {
        SenderGate {
            verifier: Mutex::new(SenderVerifier::new(config)),
            requirement,
            accept,
        }
    }

    fn classify(
        &self,
        arrival: &str,
        headers: &[(String, String)],
        payload: &[u8],
        requirement: MinSenderTrust,
    ) -> Result<Sender, SenderRejection> {
        // A panic while classifying leaves only a nonce set behind, which
        // stays consistent: keep using it.
        let mut verifier = self.verifier.lock().unwrap_or_else(PoisonError::into_inner);
        let before = verifier.nonces().evicted();
        let result = verifier.admit(
            SystemTime::now(),
            arrival,
            sender_values(headers),
            payload,
            requirement,
        );
        let evicted = verifier.nonces().evicted();
        if evicted != before {
            if before == 0 {
                tracing::warn!(
                    "the nonce set is full: nonces still within the replay window are being dropped, so their requests could be replayed (§13.7); raise VerifierConfig::nonce_capacity"
                );
            } else {
                tracing::debug!(evicted, "nonce set full: unexpired nonces dropped");
            }
        }
        result
    }

    /// The gate of a `prompt` request: classification (§13.7), the
    /// endpoint's requirement (§13.9), then the acceptance hook
    /// (§13.7.3). The rejection carries the code to answer with.
    pub(super) fn admit_prompt(
        &self,
        arrival: &str,
        headers: &[(String, String)],
        payload: &[u8],
    ) -> Result<Sender, SenderRejection> {
        let sender = self.classify(arrival, headers, payload, self.requirement)?;
        if let Some(accept) = &self.accept {
            // A panicking hook refuses; it must not take the endpoint's
            // reader down with it.
            let accepted = std::panic::catch_unwind(AssertUnwindSafe(|| accept(&sender)))
                .unwrap_or_else(|_| {
                    tracing::error!(%sender, "the acceptance hook panicked; sender refused");
                    false
                });
            if !accepted {
                return Err(SenderRejection::NotAccepted(sender.class()));
            }
        }
        Ok(sender)
    }

    /// The sender of a `status` request. Never a reason to refuse it
    /// (§13.9): a failure is logged and the probe is answered anyway.
    pub(super) fn classify_status(
        &self,
        arrival: &str,
        headers: &[(String, String)],
        payload: &[u8],
    ) -> Sender {
        match self.classify(arrival, headers, payload, MinSenderTrust::Any) {
            Ok(sender) => {
                tracing::debug!(%sender, subject = arrival, "status request");
                sender
            }
            Err(rejection) => {
                match &rejection {
                    SenderRejection::Failed(_) => {
                        tracing::warn!(%rejection, subject = arrival, "status request with a failing Agent-Sender; answered anyway")
                    }
                    _ => {
                        tracing::debug!(%rejection, subject = arrival, "status request with an unusable Agent-Sender; answered anyway")
                    }
                }
                Sender::Absent
            }
        }
    }
}

/// A message's headers as `(name, value)` pairs, one per value.
pub(super) fn header_pairs(headers: Option<&async_nats::HeaderMap>) -> Vec<(String, String)> {
    headers
        .map(|h| {
            h.iter()
                .flat_map(|(k, vs)| vs.iter().map(move |v| (k.to_string(), v.to_string())))
                .collect()
        })
        .unwrap_or_default()
}
