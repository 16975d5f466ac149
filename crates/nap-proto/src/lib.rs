//! Sans-IO core of the Synadia Agent Protocol for NATS, v0.3.
//!
//! Everything the spec says about bytes lives here, one module per concept,
//! each rule tagged with its section: subjects (§2), request envelopes
//! (§5), chunks (§6, §7), error signals (§9), heartbeats (§8), `$SRV.INFO`
//! records (§3, §4) and versions (§11). Protocol behaviour is written as
//! state machines that take input and time as arguments and never touch a
//! socket or a clock, all with one vocabulary (`handle_*(now, input)`,
//! `poll_timeout()`, `handle_timeout(now)`, `poll()`): both halves of a
//! response stream ([`AgentStream`] for the agent, [`ResponseStream`] for
//! the caller), [`Discovery`] and [`Liveness`].
//!
//! ```
//! use std::time::{Duration, Instant};
//! use nap_proto::{Chunk, Envelope, Identity, Received, ResponseStream, StreamEvent, Verb};
//!
//! // A caller addresses an agent and encodes a request (§2, §5).
//! let id = Identity::new("echo", "alice", "demo").unwrap();
//! assert_eq!(id.subject(Verb::Prompt).to_string(), "agents.prompt.echo.alice.demo");
//! let request = Envelope::text("hello").encode();
//! assert_eq!(request, br#"{"prompt":"hello"}"#);
//!
//! // The agent reads it by the discrimination rule (§5.3) ...
//! assert_eq!(Envelope::decode(b"hello").unwrap().prompt, "hello");
//!
//! // ... and answers with chunks; the caller decodes the stream (§6).
//! let t0 = Instant::now();
//! let mut stream = ResponseStream::new(t0, Duration::from_secs(60));
//! let ack = Chunk::ACK.encode();
//! let text = Chunk::text("hi").encode();
//! stream.handle_message(t0, Received::body(&ack));
//! assert_eq!(stream.poll(), Some(StreamEvent::Ack));
//! stream.handle_message(t0, Received::body(&text));
//! let Some(StreamEvent::Response(data)) = stream.poll() else {
//!     panic!("expected a response chunk")
//! };
//! assert_eq!(data.text(), "hi");
//! stream.handle_message(t0, Received::body(b""));
//! assert_eq!(stream.poll(), Some(StreamEvent::End));
//! ```

pub mod agent_stream;
pub mod attachment;
pub mod byte_size;
pub mod chunk;
pub mod discovery;
pub mod envelope;
pub mod error;
pub mod file_name;
pub mod heartbeat;
pub mod identity;
pub mod json;
pub mod liveness;
pub mod micro;
pub mod progress;
pub mod request;
pub mod service_info;
pub mod service_stats;
pub mod stream;
pub mod subject;
pub mod trace;
pub mod version;

pub use agent_stream::{AgentStream, Outgoing, StreamClosed};
pub use attachment::{Attachment, AttachmentError, Base64Error};
pub use byte_size::{ByteSize, ByteSizeError};
pub use chunk::{Chunk, ChunkError, Query, ResponseData, StatusToken};
pub use discovery::{
    Discovery, DiscoveryConfig, DiscoveryFilter, DoneReason, FilterMiss, ReplyOutcome,
};
pub use envelope::{Envelope, EnvelopeError, PayloadForm};
pub use error::{
    ERROR_CODE_HEADER, ERROR_HEADER, ErrorBody, ErrorCode, RemoteError, ServiceError, StatusCode,
};
pub use heartbeat::{Beacon, Heartbeat, HeartbeatError, IntervalSecs};
pub use liveness::{Liveness, Presence, Transition};
pub use request::{PromptLimits, RequestError};
pub use service_info::{
    AgentInfo, AgentMetadata, Endpoint, InfoError, PingRecord, PromptEndpoint, Registration,
};
pub use stream::{Headers, Loss, Received, ResponseStream, StreamEvent, StreamViolation};
pub use subject::{AgentSubject, Identity, SubjectError, Token, TokenError, Verb, Wildcard};
pub use version::{CURRENT as PROTOCOL_VERSION, Compatibility, ProtocolVersion, VersionError};
