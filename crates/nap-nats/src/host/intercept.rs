//! Request interceptors: host-side code around every admitted prompt; see
//! [`RequestInterceptor`].

use std::time::Duration;

use async_trait::async_trait;
use nap_agent::Request;
use nap_proto::ServiceError;
use serde_json::{Map, Value};

/// What an interceptor decides about one request.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Decision {
    /// Let the request through unchanged.
    Pass,
    /// Let it through with these fields added to `envelope.extra` (§5.6),
    /// replacing fields of the same name. `prompt` and `attachments` are
    /// the envelope's own fields and are never set this way.
    Amend(Map<String, Value>),
    /// Refuse it with this §9.2 error; the agent never sees it.
    Refuse(ServiceError),
}

impl Decision {
    /// [`Decision::Amend`] from `(name, value)` pairs.
    pub fn amend<K: Into<String>>(fields: impl IntoIterator<Item = (K, Value)>) -> Decision {
        Decision::Amend(fields.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }
}

/// How a turn that an interceptor let through ended.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct TurnOutcome {
    /// The error signal the stream ended with (§9.3), or `None` for a
    /// clean end.
    pub error: Option<ServiceError>,
    /// Whether the agent ran: `false` when an interceptor refused the request.
    pub agent_ran: bool,
    /// From the moment the host accepted the request to the end of the turn.
    pub elapsed: Duration,
}

/// Host-side code around every prompt the agent is given.
///
/// An interceptor runs inside the host, after the request was read (§5),
/// its sender classified and admitted (§13.7, §13.9) and the acceptance
/// hook passed (§13.7.3), and after the `ack` went out (§6.4). It can let
/// the request through, add envelope fields the agent will find in
/// `envelope.extra` (§5.6), or refuse it with a §9.2 error, which ends the
/// stream like any refusal: the error signal, then the terminator (§9.3).
/// Once the turn is over it hears how it ended, so one interceptor can
/// trace or meter a whole turn.
///
/// Requests the host refuses before any interceptor runs (`400` for a bad
/// envelope or header, `401`/`403` on identity grounds, `429` when busy or
/// stopping) are never shown to interceptors. `status` requests never are.
///
/// ```
/// use async_trait::async_trait;
/// use nap_agent::Request;
/// use nap_nats::{Decision, TurnOutcome, RequestInterceptor};
/// use nap_proto::ServiceError;
///
/// /// Refuses prompts from senders that did not sign, and tags the rest.
/// struct Gate;
///
/// #[async_trait]
/// impl RequestInterceptor for Gate {
///     async fn before(&self, request: &Request) -> Decision {
///         match request.sender().verified_id() {
///             None => Decision::Refuse(ServiceError::new(
///                 nap_proto::StatusCode::Unauthorized,
///                 "sign your prompts",
///             )),
///             Some(id) => Decision::amend([("caller", id.to_string().into())]),
///         }
///     }
///
///     async fn after(&self, request: &Request, outcome: &TurnOutcome) {
///         println!("{} for {}: {:?}", request.subject, request.sender(), outcome.error);
///     }
/// }
/// ```
///
/// Interceptors run in the order they were added: `before` of each, in
/// order, until one refuses; then the agent; then `after` of every
/// interceptor whose `before` ran, in reverse order. An interceptor sees
/// the amendments of the ones before it. Both hooks run on the prompt's
/// own task, so a slow one delays only its own request (and holds one of
/// the instance's `max_concurrent` slots meanwhile); keep-alives (§6.6)
/// keep flowing while `before` works. With at least one interceptor, the
/// host keeps a copy of each request (attachments included) for `after`.
/// A panicking `before` ends the turn with `500`.
#[async_trait]
pub trait RequestInterceptor: Send + Sync + 'static {
    /// Decides about a request before the agent sees it. The default lets
    /// everything through.
    async fn before(&self, request: &Request) -> Decision {
        let _ = request;
        Decision::Pass
    }

    /// Hears how a turn ended: after the agent returned (or was abandoned
    /// at shutdown), or after an interceptor refused the request. The
    /// error signal and terminator are published after this returns. The
    /// default does nothing.
    async fn after(&self, request: &Request, outcome: &TurnOutcome) {
        let _ = (request, outcome);
    }
}

/// Applies an amendment to the request's envelope, skipping the
/// envelope's own fields.
pub(super) fn amend(request: &mut Request, fields: Map<String, Value>) {
    for (key, value) in fields {
        if nap_proto::ENVELOPE_FIELDS.contains(&key.as_str()) {
            tracing::warn!(field = %key, "an interceptor cannot amend the envelope's own fields; ignored");
            continue;
        }
        request.envelope.extra.insert(key, value);
    }
}
