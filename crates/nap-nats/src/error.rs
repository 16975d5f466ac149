//! The one error type of this crate.

use std::time::Duration;

use nap_proto::{
    HeartbeatError, InfoError, RemoteError, RequestError, StreamViolation, SubjectError,
};

/// Everything that can go wrong hosting or calling an agent over NATS.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The agent identity is not valid subject tokens (§2.2).
    #[error("invalid agent identity: {0}")]
    Identity(#[from] SubjectError),
    /// A configuration value is out of range.
    #[error("invalid configuration: {what}")]
    Config {
        /// What is wrong.
        what: &'static str,
    },
    /// The server did not confirm an agent's registration; the agent was
    /// not started.
    #[error("could not register the agent: {source}")]
    Register {
        /// Why the registration was not confirmed.
        #[source]
        source: crate::RoundTripError,
    },
    /// Subscribing failed.
    #[error("could not subscribe to {subject}: {source}")]
    Subscribe {
        /// The subject.
        subject: String,
        /// What async-nats reported.
        #[source]
        source: async_nats::SubscribeError,
    },
    /// Publishing failed.
    #[error("could not publish to {subject}: {source}")]
    Publish {
        /// The subject.
        subject: String,
        /// What async-nats reported.
        #[source]
        source: async_nats::PublishError,
    },
    /// A request/reply round trip failed.
    #[error("request to {subject} failed: {source}")]
    Request {
        /// The subject.
        subject: String,
        /// What async-nats reported.
        #[source]
        source: async_nats::RequestError,
    },
    /// The request failed the local checks of §5.4; nothing was published.
    #[error("request refused locally, nothing was sent: {0}")]
    Refused(#[from] RequestError),
    /// The agent's `prompt` endpoint accepts only signed requests
    /// (`min_sender_trust: signed`, §13.9) and this connection cannot sign;
    /// nothing was published.
    #[error(
        "{subject} accepts only signed requests (min_sender_trust: signed, §13.9) and this \
         connection cannot sign: {reason}. Connect as an NKEY user with its seed, or with a \
         credentials file, to sign (§13.4); nothing was sent"
    )]
    SignatureRequired {
        /// The prompt subject.
        subject: String,
        /// Why the connection cannot sign.
        reason: crate::identity::CannotSign,
    },
    /// The `Agent-Sender` header could not be signed (§13.6); nothing was
    /// published.
    #[error("could not sign the request to {subject}: {source}")]
    Signing {
        /// The subject.
        subject: String,
        /// What failed.
        #[source]
        source: crate::identity::RequestSignError,
    },
    /// A prompt interceptor stopped the prompt; nothing was published.
    #[error(transparent)]
    Intercepted(#[from] crate::client::InterceptError),
    /// The agent answered with an error signal (§9).
    #[error("the agent answered with error {0}")]
    Remote(Box<RemoteError>),
    /// No message arrived within the inactivity timeout (§6.6).
    #[error("no message from the agent for {}: the stream timed out (§6.6)", crate::readable::Secs(*.idle))]
    InactivityTimeout {
        /// How long the stream was silent.
        idle: Duration,
    },
    /// The prompt's overall deadline passed before the reply was complete.
    #[error("the reply was not complete {} after the prompt: deadline exceeded", crate::readable::Secs(*.after))]
    DeadlineExceeded {
        /// How long the stream had been open.
        after: Duration,
    },
    /// Part of the reply may have been lost in transit (NATS core delivers
    /// at most once): the reply is incomplete, and says so.
    #[error("the reply is incomplete: {0}")]
    Lost(nap_proto::Loss),
    /// Replies to a discovery or ping round may have been lost in transit
    /// (the connection was re-established during the round): the list of
    /// agents could be incomplete, so none is returned.
    #[error("discovery may be incomplete: {0}")]
    DiscoveryLost(nap_proto::Loss),
    /// Nobody listens on the subject.
    #[error("no agent is listening on {subject}")]
    NoResponders {
        /// The subject.
        subject: String,
    },
    /// The agent broke a stream rule (§6, §9).
    #[error("the agent broke the protocol: {0}")]
    Protocol(#[from] StreamViolation),
    /// A `$SRV.INFO` record is not a usable agent record.
    #[error("unusable agent record: {0}")]
    Info(#[from] InfoError),
    /// A heartbeat or status reply is malformed (§8.3).
    #[error(transparent)]
    Heartbeat(#[from] HeartbeatError),
    /// No agent matched.
    #[error("no agent matched {filter}")]
    NotFound {
        /// The filter, described.
        filter: String,
    },
    /// A query was already answered, or its stream is gone (§7.2: exactly one reply).
    #[error("this query was already answered")]
    AlreadyAnswered,
    /// The service was stopped.
    #[error("the agent service is stopped")]
    Stopped,
    /// The NATS connection ended a subscription the caller was reading
    /// (the client was closed or drained) before the exchange was over.
    #[error("the NATS subscription on {subject} closed before the exchange ended")]
    SubscriptionClosed {
        /// The subscribed subject.
        subject: String,
    },
    /// The agent asked a mid-stream query (§7) and the caller gave no way to
    /// answer it; use an `*_with_answers` helper or read the stream's events.
    #[error("the agent asked {prompt:?} (query {id}) and no answer was provided (§7.2)")]
    QueryNotAnswered {
        /// The query's correlation id.
        id: String,
        /// The question.
        prompt: String,
    },
    /// The agent's record has no `status` endpoint, which every agent MUST
    /// register (§8.7).
    #[error("agent {instance_id} registers no status endpoint (§8.7)")]
    NoStatusEndpoint {
        /// The instance.
        instance_id: String,
    },
    /// An agent looked up by id cannot be used: its protocol version is
    /// incompatible with the caller's (§11.2).
    #[error("agent {instance_id} cannot be used: {miss}")]
    Incompatible {
        /// The instance.
        instance_id: String,
        /// Why it was refused.
        #[source]
        miss: nap_proto::FilterMiss,
    },
}

/// This crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
