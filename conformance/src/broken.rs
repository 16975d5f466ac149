//! Deliberately broken agents: each breaks exactly one rule, so the suite
//! can be shown to catch it (and nothing else). [`Flaw::None`] is the
//! scripted agent with no flaw, which must pass every case it can observe.

use async_nats::Client;
use async_trait::async_trait;
use bytes::Bytes;
use nap_proto::{Envelope, StatusCode};
use serde_json::{Map, Value};

use crate::error::Result;
use crate::scripted::{self, Out, Script, Scripted, ScriptedConfig};

/// The one rule a broken agent breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flaw {
    /// No flaw: the compliant baseline.
    None,
    /// No ack on accepted streams (§6.4).
    NoAck,
    /// The ack comes after the first response chunk (§6.4).
    LateAck,
    /// Response text sent as plain text, not a `{type, data}` chunk (§6.2).
    PlainTextChunk,
    /// The terminator of accepted streams carries a header (§6.5).
    HeadersOnTerminator,
    /// A chunk is published after the terminator (§6.5).
    ChunkAfterTerminator,
    /// A chunk between the error signal and the terminator (§9.3).
    ChunkAfterError,
    /// Errors carry no description header ([`nap_proto::ERROR_HEADER`], §9.1).
    MissingErrorDescription,
    /// A zero-byte request is answered with 200-style text instead of 400 (§5.3).
    TextInsteadOf400,
    /// Attachments accepted although `attachments_ok` is false (§5.1).
    AcceptsAttachments,
    /// The prompt endpoint's queue group is not `agents` (§3.3).
    WrongQueueGroup,
    /// `protocol_version` is `0.2` (§3.2).
    WrongProtocolVersion,
    /// No `max_payload` on the prompt endpoint (§2.1).
    MissingMaxPayload,
    /// No `status` endpoint (§8.7).
    NoStatusEndpoint,
    /// The status reply carries another instance id (§8.7).
    StatusWrongInstance,
    /// No heartbeats (§8).
    NoHeartbeat,
    /// Heartbeats lack `ts` (§8.3).
    HeartbeatMissingField,
    /// Heartbeats carry another instance id (§8.3).
    HeartbeatWrongInstance,
    /// Declares `min_sender_trust` (so implements §13) but never looks at
    /// `Agent-Sender`: malformed, forged, replayed, transplanted and stale
    /// headers are all served (§13.7).
    IgnoresSender,
}

impl Flaw {
    /// Every flaw, the baseline first.
    pub const ALL: [Flaw; 19] = [
        Flaw::None,
        Flaw::NoAck,
        Flaw::LateAck,
        Flaw::PlainTextChunk,
        Flaw::HeadersOnTerminator,
        Flaw::ChunkAfterTerminator,
        Flaw::ChunkAfterError,
        Flaw::MissingErrorDescription,
        Flaw::TextInsteadOf400,
        Flaw::AcceptsAttachments,
        Flaw::WrongQueueGroup,
        Flaw::WrongProtocolVersion,
        Flaw::MissingMaxPayload,
        Flaw::NoStatusEndpoint,
        Flaw::StatusWrongInstance,
        Flaw::NoHeartbeat,
        Flaw::HeartbeatMissingField,
        Flaw::HeartbeatWrongInstance,
        Flaw::IgnoresSender,
    ];

    /// The cases the suite must fail on this agent, and no others.
    pub fn expected_failures(self) -> &'static [&'static str] {
        match self {
            Flaw::None => &[],
            Flaw::NoAck => &["STR-001"],
            Flaw::LateAck => &["STR-002"],
            Flaw::PlainTextChunk => &["STR-003"],
            Flaw::HeadersOnTerminator => &["STR-004"],
            Flaw::ChunkAfterTerminator => &["STR-005"],
            Flaw::ChunkAfterError => &["STR-006"],
            Flaw::MissingErrorDescription => &["STR-008"],
            Flaw::TextInsteadOf400 => &["REQ-006"],
            Flaw::AcceptsAttachments => &["REQ-017"],
            Flaw::WrongQueueGroup => &["REG-010"],
            Flaw::WrongProtocolVersion => &["REG-006"],
            Flaw::MissingMaxPayload => &["REG-012"],
            Flaw::NoStatusEndpoint => &["REG-009"],
            Flaw::StatusWrongInstance => &["HB-008"],
            Flaw::NoHeartbeat => &["HB-001"],
            Flaw::HeartbeatMissingField => &["HB-002"],
            // The foreign id is also not on $SRV.INFO (a SHOULD).
            Flaw::HeartbeatWrongInstance => &["HB-004", "HB-006"],
            Flaw::IgnoresSender => &["SID-002", "SID-003", "SID-004", "SID-005", "SID-006"],
        }
    }

    /// A token-safe name for this flaw (the agent's instance name).
    pub fn name(self) -> &'static str {
        match self {
            Flaw::None => "compliant",
            Flaw::NoAck => "no-ack",
            Flaw::LateAck => "late-ack",
            Flaw::PlainTextChunk => "plain-text-chunk",
            Flaw::HeadersOnTerminator => "headers-on-terminator",
            Flaw::ChunkAfterTerminator => "chunk-after-terminator",
            Flaw::ChunkAfterError => "chunk-after-error",
            Flaw::MissingErrorDescription => "missing-error-description",
            Flaw::TextInsteadOf400 => "text-instead-of-400",
            Flaw::AcceptsAttachments => "accepts-attachments",
            Flaw::WrongQueueGroup => "wrong-queue-group",
            Flaw::WrongProtocolVersion => "wrong-protocol-version",
            Flaw::MissingMaxPayload => "missing-max-payload",
            Flaw::NoStatusEndpoint => "no-status-endpoint",
            Flaw::StatusWrongInstance => "status-wrong-instance",
            Flaw::NoHeartbeat => "no-heartbeat",
            Flaw::HeartbeatMissingField => "heartbeat-missing-field",
            Flaw::HeartbeatWrongInstance => "heartbeat-wrong-instance",
            Flaw::IgnoresSender => "ignores-sender",
        }
    }

    fn config(self) -> ScriptedConfig {
        let mut c = ScriptedConfig::new("broken", "conformance", self.name());
        match self {
            Flaw::WrongQueueGroup => c.prompt_queue_group = "q".to_owned(),
            Flaw::WrongProtocolVersion => c.protocol_version = "0.2".to_owned(),
            Flaw::MissingMaxPayload => {
                c.prompt_metadata
                    .remove(nap_proto::metadata_keys::MAX_PAYLOAD);
            }
            Flaw::NoStatusEndpoint => c.status_endpoint = false,
            Flaw::StatusWrongInstance => c.patch_status = foreign_instance,
            Flaw::NoHeartbeat => c.heartbeat = None,
            Flaw::HeartbeatMissingField => c.patch_heartbeat = drop_ts,
            Flaw::HeartbeatWrongInstance => c.patch_heartbeat = foreign_instance,
            Flaw::IgnoresSender => {
                c.prompt_metadata.insert(
                    nap_proto::metadata_keys::MIN_SENDER_TRUST.to_owned(),
                    "any".to_owned(),
                );
            }
            _ => {}
        }
        c
    }
}

fn foreign_instance(m: &mut Map<String, Value>) {
    m.insert("instance_id".into(), Value::from("NOTTHISINSTANCE0000000"));
}

fn drop_ts(m: &mut Map<String, Value>) {
    m.shift_remove("ts");
}

/// The max_payload every broken agent advertises, in bytes (64KB).
const MAX_PAYLOAD: usize = 64 * 1024;

struct Broken(Flaw);

#[async_trait]
impl Script for Broken {
    async fn answer(&self, payload: Bytes, out: Out) {
        let flaw = self.0;
        let decoded = if payload.len() > MAX_PAYLOAD {
            Err("request exceeds max_payload 64KB".to_owned())
        } else {
            match Envelope::decode(&payload) {
                Ok(env) if env.has_attachments() && flaw != Flaw::AcceptsAttachments => {
                    Err("attachments are not accepted".to_owned())
                }
                Ok(env) => Ok(env),
                Err(e) => Err(e.to_string()),
            }
        };
        match decoded {
            Err(_) if flaw == Flaw::TextInsteadOf400 && payload.is_empty() => {
                out.ack().await;
                out.text("(you sent nothing)").await;
                out.end().await;
            }
            Err(why) => {
                out.ack().await;
                let code = StatusCode::BadRequest.to_string();
                let description = (flaw != Flaw::MissingErrorDescription).then_some(why.as_str());
                out.error(&code, description, Bytes::new()).await;
                if flaw == Flaw::ChunkAfterError {
                    out.text("one more thing").await;
                }
                out.end().await;
            }
            Ok(env) => {
                let text = format!("echo: {}", env.prompt);
                match flaw {
                    Flaw::NoAck => out.text(&text).await,
                    Flaw::LateAck => {
                        out.text(&text).await;
                        out.ack().await;
                    }
                    Flaw::PlainTextChunk => {
                        out.ack().await;
                        out.raw(text.into_bytes()).await;
                    }
                    _ => {
                        out.ack().await;
                        out.text(&text).await;
                    }
                }
                if flaw == Flaw::HeadersOnTerminator {
                    out.with_headers(&[("X-Conformance", "broken")], Bytes::new())
                        .await;
                } else {
                    out.end().await;
                }
                if flaw == Flaw::ChunkAfterTerminator {
                    out.text("after the end").await;
                }
            }
        }
    }
}

/// Starts the agent with `flaw` on `client`; its instance name is
/// [`Flaw::name`], owner `conformance`, agent `broken`.
pub async fn start(client: Client, flaw: Flaw) -> Result<Scripted> {
    scripted::start(client, flaw.config(), Broken(flaw)).await
}
