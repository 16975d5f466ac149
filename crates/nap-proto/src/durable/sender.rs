//! The sender of a stored prompt (durable D7, §13.8).

use std::time::SystemTime;

use crate::identity::{
    MinSenderTrust, Sender, SenderHeader, SenderRejection, VerificationFailure, VerifiedSender,
    VerifierConfig,
};

/// Classifies the sender of a claimed prompt record and applies the
/// endpoint's requirement (D7): §13.7 with the record's stored subject as
/// the arrival subject, the replay window measured from the record's
/// stored time (`stored_at`, its JetStream timestamp) instead of the
/// worker's clock, and no nonce set (the stream stores a run's subject
/// once). `values` are the record's `Agent-Sender` header values.
///
/// A refusal is the run's answer (D7): store it as an `error` record.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use nap_proto::durable::admit_stored_prompt;
/// use nap_proto::identity::{Account, MinSenderTrust, Nonce, SenderSigner, SenderTime, TrustClass, VerifierConfig};
///
/// let stored_at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
/// let signer = SenderSigner::new("SUAEJ6GDK6FSSB54LD45Q7W25AW7NUT7MVLBABIR5MIPFUTBW7ZNPK2KYE", Account::new("ACME").unwrap()).unwrap();
/// let subject = "agents.durable.prompt.echo.alice.demo.fsgqpzk3ew22q6ltdnwy7m775a";
/// let header = signer
///     .sign(subject, SenderTime::from_system_time(stored_at).unwrap(), Nonce::new("n1").unwrap(), b"hi")
///     .unwrap()
///     .encode();
/// let config = VerifierConfig::default();
/// // Claimed days later: still verified, and again on a redelivery.
/// for _ in 0..2 {
///     let sender = admit_stored_prompt(&config, subject, stored_at, [header.as_str()], b"hi", MinSenderTrust::Signed).unwrap();
///     assert_eq!(sender.class(), TrustClass::Verified);
/// }
/// ```
pub fn admit_stored_prompt<'a>(
    config: &VerifierConfig,
    stored_subject: &str,
    stored_at: SystemTime,
    values: impl IntoIterator<Item = &'a str>,
    payload: &[u8],
    requirement: MinSenderTrust,
) -> Result<Sender, SenderRejection> {
    let sender = match SenderHeader::from_values(values)? {
        SenderHeader::Absent | SenderHeader::UnknownVersion => Sender::Absent,
        SenderHeader::Claimed(claim) => Sender::Claimed(claim),
        SenderHeader::Signed(header) => {
            // §13.8: the stored subject is the arrival subject.
            config
                .subjects
                .check(&header.sub, stored_subject, header.id.account())
                .map_err(VerificationFailure::from)?;
            // D7: the signature was made when the prompt was stored.
            let ts = header.ts.system_time();
            let window = config.replay_window;
            let skew = match stored_at.duration_since(ts) {
                Ok(behind) => behind,
                Err(ahead) => ahead.duration(),
            };
            if skew > window {
                return Err(VerificationFailure::OutsideWindow {
                    ts: header.ts.to_string(),
                    window,
                }
                .into());
            }
            header
                .verify_signature(payload)
                .map_err(VerificationFailure::from)?;
            Sender::Verified(VerifiedSender { header })
        }
    };
    // §13.9: the endpoint's requirement, as live.
    if !requirement.admits(sender.class()) {
        return Err(SenderRejection::SignatureRequired(sender.class()));
    }
    Ok(sender)
}
