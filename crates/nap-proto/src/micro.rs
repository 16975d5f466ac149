//! The NATS micro-service discovery API, answered rather than read: the
//! `$SRV.PING`, `$SRV.INFO` and `$SRV.STATS` requests an agent registered
//! as a micro service must answer (§3, §4), and the replies it gives.
//!
//! A host with one micro service per agent gets these answers from its
//! NATS client's service framework. A host with thousands of agents on one
//! connection (a fleet) answers them itself, for every agent it holds,
//! from a few shared subscriptions; this module is what it needs to do so
//! byte-compatibly: which request a subject is ([`SrvRequest::parse`]),
//! the subjects to subscribe ([`FLEET_SUBJECTS`]), and the three reply
//! bodies ([`ServiceRecord`]), with the same fields, names and order as
//! the micro-service framework writes them.
//!
//! ```
//! use std::collections::HashMap;
//! use nap_proto::micro::{EndpointCounters, EndpointRecord, ServiceRecord, SrvRequest, SrvScope, SrvVerb};
//!
//! let request = SrvRequest::parse("$SRV.INFO.agents.X1").unwrap();
//! assert_eq!(request.verb, SrvVerb::Info);
//! assert_eq!(request.scope, SrvScope::Instance("X1"));
//!
//! let record = ServiceRecord {
//!     id: "X1".into(),
//!     version: "1.0.0".into(),
//!     description: "echo agent alice/demo".into(),
//!     metadata: HashMap::from([
//!         ("agent".to_owned(), "echo".to_owned()),
//!         ("owner".to_owned(), "alice".to_owned()),
//!         ("protocol_version".to_owned(), "0.3.0".to_owned()),
//!     ]),
//!     started: "2026-11-22T10:00:00Z".into(),
//!     endpoints: vec![EndpointRecord {
//!         name: "prompt".into(),
//!         subject: "agents.prompt.echo.alice.demo".into(),
//!         queue_group: "agents".into(),
//!         metadata: HashMap::from([
//!             ("max_payload".to_owned(), "1MB".to_owned()),
//!             ("attachments_ok".to_owned(), "true".to_owned()),
//!         ]),
//!     }],
//! };
//! assert!(record.answers(&request));
//! let info = nap_proto::AgentInfo::parse(&record.info()).unwrap();
//! assert_eq!(info.id, "X1");
//! let mut counters = EndpointCounters::default();
//! counters.record(std::time::Duration::from_millis(2), None);
//! let stats = nap_proto::ServiceStats::parse(&record.stats(&[counters])).unwrap();
//! assert_eq!(stats.endpoint("prompt").unwrap().num_requests, 1);
//! ```

use std::collections::HashMap;
use std::time::Duration;

use serde::Serialize;

use crate::service_info::SERVICE_NAME;

/// The first token of every micro-service API subject.
pub const SRV_PREFIX: &str = "$SRV";

/// The `type` of a `$SRV.PING` reply.
pub const PING_RESPONSE_TYPE: &str = "io.nats.micro.v1.ping_response";
/// The `type` of a `$SRV.INFO` reply.
pub const INFO_RESPONSE_TYPE: &str = "io.nats.micro.v1.info_response";
/// The `type` of a `$SRV.STATS` reply.
pub const STATS_RESPONSE_TYPE: &str = "io.nats.micro.v1.stats_response";

/// What a host answering for many `agents` services subscribes to: the
/// three verbs addressed to every service, to every service named
/// `agents`, and to one `agents` instance. Five subscriptions, however
/// many agents the host holds; requests for instances it does not hold
/// arrive too and are left unanswered.
pub const FLEET_SUBJECTS: [&str; 5] = [
    "$SRV.PING",
    "$SRV.INFO",
    "$SRV.STATS",
    "$SRV.*.agents",
    "$SRV.*.agents.*",
];

/// The three questions of the micro-service API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SrvVerb {
    /// Who is there (§4.1).
    Ping,
    /// Describe yourself (§4.2, §4.3).
    Info,
    /// Your request counters.
    Stats,
}

impl SrvVerb {
    /// The verb's subject token.
    pub fn as_str(self) -> &'static str {
        match self {
            SrvVerb::Ping => "PING",
            SrvVerb::Info => "INFO",
            SrvVerb::Stats => "STATS",
        }
    }

    fn parse(token: &str) -> Option<SrvVerb> {
        match token {
            "PING" => Some(SrvVerb::Ping),
            "INFO" => Some(SrvVerb::Info),
            "STATS" => Some(SrvVerb::Stats),
            _ => None,
        }
    }
}

/// Whom a micro-service API request addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SrvScope<'a> {
    /// Every service (`$SRV.INFO`).
    All,
    /// Every service named `agents` (`$SRV.INFO.agents`).
    Agents,
    /// One `agents` instance, by service id (`$SRV.INFO.agents.{id}`).
    Instance(&'a str),
}

/// A micro-service API request an `agents` service answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SrvRequest<'a> {
    /// What is asked.
    pub verb: SrvVerb,
    /// Of whom.
    pub scope: SrvScope<'a>,
}

impl<'a> SrvRequest<'a> {
    /// Reads a request subject; `None` when it is not a micro-service API
    /// request an `agents` service answers (another service's name, an
    /// unknown verb, extra tokens).
    pub fn parse(subject: &'a str) -> Option<SrvRequest<'a>> {
        let mut tokens = subject.split('.');
        if tokens.next()? != SRV_PREFIX {
            return None;
        }
        let verb = SrvVerb::parse(tokens.next()?)?;
        let scope = match (tokens.next(), tokens.next()) {
            (None, _) => SrvScope::All,
            (Some(SERVICE_NAME), None) => SrvScope::Agents,
            (Some(SERVICE_NAME), Some(id)) if !id.is_empty() => SrvScope::Instance(id),
            _ => return None,
        };
        if tokens.next().is_some() {
            return None;
        }
        Some(SrvRequest { verb, scope })
    }

    /// The subject of this request.
    pub fn subject(&self) -> String {
        let verb = self.verb.as_str();
        match self.scope {
            SrvScope::All => format!("{SRV_PREFIX}.{verb}"),
            SrvScope::Agents => format!("{SRV_PREFIX}.{verb}.{SERVICE_NAME}"),
            SrvScope::Instance(id) => format!("{SRV_PREFIX}.{verb}.{SERVICE_NAME}.{id}"),
        }
    }
}

/// What one `agents` instance says about itself on the micro-service API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceRecord {
    /// The service id, unique per instance (§3.4).
    pub id: String,
    /// The harness version (§3.1), semver.
    pub version: String,
    /// The service description (§3.1).
    pub description: String,
    /// The service metadata (§3.2), as built by
    /// [`crate::Registration::service_metadata`].
    pub metadata: HashMap<String, String>,
    /// When the instance started, RFC 3339 in UTC
    /// ([`crate::heartbeat::timestamp`]).
    pub started: String,
    /// The endpoints, in the order the stats reply lists them.
    pub endpoints: Vec<EndpointRecord>,
}

/// One endpoint of a [`ServiceRecord`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EndpointRecord {
    /// The endpoint name (`prompt`, `status`).
    pub name: String,
    /// The subject it is subscribed on.
    pub subject: String,
    /// Its queue group (§3.3: `agents`).
    pub queue_group: String,
    /// Its metadata (§2.1 for `prompt`).
    pub metadata: HashMap<String, String>,
}

/// One endpoint's request counters, kept the way the micro-service
/// framework keeps them: a request counts when its reply is complete,
/// an error when it ended with one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointCounters {
    /// Requests answered.
    pub requests: u64,
    /// Requests answered with an error.
    pub errors: u64,
    /// The last error, as `(code, description)`.
    pub last_error: Option<(u16, String)>,
    /// Time spent from arrival to the complete reply, summed.
    pub processing: Duration,
}

impl EndpointCounters {
    /// Counts one answered request that took `elapsed`, with the error
    /// it ended with, if any.
    pub fn record(&mut self, elapsed: Duration, error: Option<(u16, &str)>) {
        self.requests += 1;
        self.processing = self.processing.saturating_add(elapsed);
        if let Some((code, description)) = error {
            self.errors += 1;
            self.last_error = Some((code, description.to_owned()));
        }
    }

    fn average(&self) -> Duration {
        match u32::try_from(self.requests) {
            Ok(0) => Duration::ZERO,
            Ok(n) => self.processing / n,
            Err(_) => Duration::from_secs_f64(self.processing.as_secs_f64() / self.requests as f64),
        }
    }
}

impl ServiceRecord {
    /// Whether this instance answers `request`.
    pub fn answers(&self, request: &SrvRequest<'_>) -> bool {
        match request.scope {
            SrvScope::All | SrvScope::Agents => true,
            SrvScope::Instance(id) => id == self.id,
        }
    }

    /// The reply to `request`'s verb; `stats` holds one counter per
    /// endpoint, in order, and is read only for `STATS`.
    pub fn reply(&self, verb: SrvVerb, stats: &[EndpointCounters]) -> Vec<u8> {
        match verb {
            SrvVerb::Ping => self.ping(),
            SrvVerb::Info => self.info(),
            SrvVerb::Stats => self.stats(stats),
        }
    }

    /// The `$SRV.PING` reply body.
    pub fn ping(&self) -> Vec<u8> {
        #[derive(Serialize)]
        struct Ping<'a> {
            #[serde(rename = "type")]
            kind: &'static str,
            name: &'static str,
            id: &'a str,
            version: &'a str,
            metadata: &'a HashMap<String, String>,
        }
        encode(&Ping {
            kind: PING_RESPONSE_TYPE,
            name: SERVICE_NAME,
            id: &self.id,
            version: &self.version,
            metadata: &self.metadata,
        })
    }

    /// The `$SRV.INFO` reply body (§4.3 reads it).
    pub fn info(&self) -> Vec<u8> {
        #[derive(Serialize)]
        struct Info<'a> {
            #[serde(rename = "type")]
            kind: &'static str,
            name: &'static str,
            id: &'a str,
            description: &'a str,
            version: &'a str,
            metadata: &'a HashMap<String, String>,
            endpoints: &'a [EndpointRecord],
        }
        encode(&Info {
            kind: INFO_RESPONSE_TYPE,
            name: SERVICE_NAME,
            id: &self.id,
            description: &self.description,
            version: &self.version,
            metadata: &self.metadata,
            endpoints: &self.endpoints,
        })
    }

    /// The `$SRV.STATS` reply body, with `counters[i]` for the `i`th
    /// endpoint (missing counters read as zero).
    pub fn stats(&self, counters: &[EndpointCounters]) -> Vec<u8> {
        #[derive(Serialize)]
        struct Stats<'a> {
            #[serde(rename = "type")]
            kind: &'static str,
            name: &'static str,
            id: &'a str,
            version: &'a str,
            started: &'a str,
            endpoints: Vec<EndpointStats<'a>>,
        }
        #[derive(Serialize)]
        struct EndpointStats<'a> {
            name: &'a str,
            subject: &'a str,
            num_requests: u64,
            num_errors: u64,
            processing_time: u128,
            average_processing_time: u128,
            last_error: String,
            queue_group: &'a str,
        }
        let zero = EndpointCounters::default();
        let endpoints = self
            .endpoints
            .iter()
            .enumerate()
            .map(|(i, endpoint)| {
                let c = counters.get(i).unwrap_or(&zero);
                EndpointStats {
                    name: &endpoint.name,
                    subject: &endpoint.subject,
                    num_requests: c.requests,
                    num_errors: c.errors,
                    processing_time: c.processing.as_nanos(),
                    average_processing_time: c.average().as_nanos(),
                    last_error: c
                        .last_error
                        .as_ref()
                        .map(|(code, text)| format!("{code}:{text}"))
                        .unwrap_or_default(),
                    queue_group: &endpoint.queue_group,
                }
            })
            .collect();
        encode(&Stats {
            kind: STATS_RESPONSE_TYPE,
            name: SERVICE_NAME,
            id: &self.id,
            version: &self.version,
            started: &self.started,
            endpoints,
        })
    }
}

/// Serializes a reply. The replies hold only strings, string maps and
/// integers, which always serialize.
fn encode(value: &impl Serialize) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::service_info::{PingRecord, QUEUE_GROUP};

    fn record() -> ServiceRecord {
        ServiceRecord {
            id: "ID1".into(),
            version: "0.1.0".into(),
            description: "echo agent alice/demo".into(),
            metadata: HashMap::from([
                ("agent".into(), "echo".into()),
                ("owner".into(), "alice".into()),
                ("protocol_version".into(), "0.3.0".into()),
            ]),
            started: "2026-11-22T10:00:00.5Z".into(),
            endpoints: vec![
                EndpointRecord {
                    name: "prompt".into(),
                    subject: "agents.prompt.echo.alice.demo".into(),
                    queue_group: QUEUE_GROUP.into(),
                    metadata: HashMap::from([
                        ("max_payload".into(), "1MB".into()),
                        ("attachments_ok".into(), "true".into()),
                    ]),
                },
                EndpointRecord {
                    name: "status".into(),
                    subject: "agents.status.echo.alice.demo".into(),
                    queue_group: QUEUE_GROUP.into(),
                    metadata: HashMap::new(),
                },
            ],
        }
    }

    #[test]
    fn subjects_parse_into_verb_and_scope() {
        let cases = [
            ("$SRV.PING", Some((SrvVerb::Ping, SrvScope::All))),
            ("$SRV.INFO.agents", Some((SrvVerb::Info, SrvScope::Agents))),
            (
                "$SRV.STATS.agents.ABC",
                Some((SrvVerb::Stats, SrvScope::Instance("ABC"))),
            ),
            ("$SRV.INFO.other", None),
            ("$SRV.INFO.other.ABC", None),
            ("$SRV.INFO.agents.ABC.x", None),
            ("$SRV.INFO.agents.", None),
            ("$SRV.HELLO.agents", None),
            ("SRV.INFO.agents", None),
            ("", None),
        ];
        for (subject, expected) in cases {
            let parsed = SrvRequest::parse(subject).map(|r| (r.verb, r.scope));
            assert_eq!(parsed, expected, "{subject}");
            if let Some(request) = SrvRequest::parse(subject) {
                assert_eq!(request.subject(), subject);
            }
        }
    }

    #[test]
    fn every_answered_subject_is_covered_by_the_fleet_subscriptions() {
        fn matches(pattern: &str, subject: &str) -> bool {
            let p: Vec<&str> = pattern.split('.').collect();
            let s: Vec<&str> = subject.split('.').collect();
            p.len() == s.len() && p.iter().zip(&s).all(|(p, s)| *p == "*" || p == s)
        }
        for verb in [SrvVerb::Ping, SrvVerb::Info, SrvVerb::Stats] {
            for scope in [SrvScope::All, SrvScope::Agents, SrvScope::Instance("X")] {
                let subject = SrvRequest { verb, scope }.subject();
                let covering = FLEET_SUBJECTS
                    .iter()
                    .filter(|p| matches(p, &subject))
                    .count();
                assert_eq!(covering, 1, "{subject}");
            }
        }
    }

    #[test]
    fn only_the_addressed_instance_answers_by_id() {
        let record = record();
        assert!(record.answers(&SrvRequest::parse("$SRV.PING").unwrap()));
        assert!(record.answers(&SrvRequest::parse("$SRV.PING.agents.ID1").unwrap()));
        assert!(!record.answers(&SrvRequest::parse("$SRV.PING.agents.ID2").unwrap()));
    }

    #[test]
    fn replies_have_the_framework_fields_in_its_order() {
        let record = record();
        let ping = String::from_utf8(record.ping()).unwrap();
        assert!(
            ping.starts_with(r#"{"type":"io.nats.micro.v1.ping_response","name":"agents","id":"ID1","version":"0.1.0","metadata":{"#),
            "{ping}"
        );
        let parsed = PingRecord::parse(ping.as_bytes()).unwrap();
        assert_eq!(parsed.agent(), Some("echo"));

        let info = String::from_utf8(record.info()).unwrap();
        assert!(
            info.starts_with(r#"{"type":"io.nats.micro.v1.info_response","name":"agents","id":"ID1","description":"echo agent alice/demo","version":"0.1.0","metadata":{"#),
            "{info}"
        );
        let parsed = crate::AgentInfo::parse(info.as_bytes()).unwrap();
        assert_eq!(parsed.prompt.subject, "agents.prompt.echo.alice.demo");
        assert_eq!(parsed.prompt.max_payload.bytes(), 1 << 20);
    }

    #[test]
    fn stats_count_like_the_framework() {
        let record = record();
        let mut prompt = EndpointCounters::default();
        prompt.record(Duration::from_millis(3), None);
        prompt.record(Duration::from_millis(1), Some((500, "boom")));
        let body = record.stats(&[prompt]);
        let text = String::from_utf8(body.clone()).unwrap();
        assert!(
            text.contains(r#"{"name":"prompt","subject":"agents.prompt.echo.alice.demo","num_requests":2,"num_errors":1,"processing_time":4000000,"average_processing_time":2000000,"last_error":"500:boom","queue_group":"agents"}"#),
            "{text}"
        );
        let stats = crate::service_stats::ServiceStats::parse(&body).unwrap();
        assert_eq!(stats.started.as_deref(), Some("2026-11-22T10:00:00.5Z"));
        let status = stats.endpoint("status").unwrap();
        assert_eq!((status.num_requests, status.last_error.as_str()), (0, ""));
    }
}
