//! Every case of the suite, as data.
//!
//! Agent cases: `REG` registration and discovery (§2–§4), `REQ` requests
//! (§5), `STR` response streams and errors (§6, §7, §9), `HB` heartbeats and
//! the `status` endpoint (§8), `SID` sender identity (§13, when the agent
//! implements it). Caller cases: `CALL` (§4.3, §6, §7, §9), `CID` sender
//! identity (§13, when the caller implements it).

use crate::case::{Case, Level};

const fn case(id: &'static str, section: &'static str, level: Level, rule: &'static str) -> Case {
    Case {
        id,
        section,
        level,
        rule,
    }
}

use Level::{May, Must, Should};

/// The record's `name` is `agents`.
pub const REG_001: Case = case(
    "REG-001",
    "§3.1",
    Must,
    "registers a micro service named \"agents\"",
);
/// `version` is a non-empty string.
pub const REG_002: Case = case(
    "REG-002",
    "§3.1",
    Must,
    "service version is set (semver of the harness)",
);
/// `description` is a non-empty string.
pub const REG_003: Case = case("REG-003", "§3.1", Must, "service description is set");
/// `metadata.agent` is a non-empty string.
pub const REG_004: Case = case(
    "REG-004",
    "§3.2",
    Must,
    "metadata.agent is a non-empty string",
);
/// `metadata.owner` is a non-empty string.
pub const REG_005: Case = case(
    "REG-005",
    "§3.2",
    Must,
    "metadata.owner is a non-empty string",
);
/// `metadata.protocol_version` is `0.3`.
pub const REG_006: Case = case(
    "REG-006",
    "§3.2, §11",
    Must,
    "metadata.protocol_version is \"0.3\" (MAJOR.MINOR)",
);
/// `metadata.session` for session-aware harnesses.
pub const REG_007: Case = case(
    "REG-007",
    "§3.2",
    Must,
    "metadata.session is a string, and set for session-aware harnesses (Appendix C)",
);
/// An endpoint named `prompt`.
pub const REG_008: Case = case(
    "REG-008",
    "§2",
    Must,
    "registers an endpoint named \"prompt\"",
);
/// An endpoint named `status`.
pub const REG_009: Case = case(
    "REG-009",
    "§2, §8.7",
    Must,
    "registers an endpoint named \"status\"",
);
/// `prompt` queue group.
pub const REG_010: Case = case(
    "REG-010",
    "§3.3",
    Must,
    "the prompt endpoint's queue group is \"agents\"",
);
/// `status` queue group.
pub const REG_011: Case = case(
    "REG-011",
    "§8.7",
    Must,
    "the status endpoint's queue group is \"agents\"",
);
/// `max_payload` metadata.
pub const REG_012: Case = case(
    "REG-012",
    "§2.1",
    Must,
    "prompt metadata max_payload is a size string (N followed by B, KB, MB or GB)",
);
/// `attachments_ok` metadata.
pub const REG_013: Case = case(
    "REG-013",
    "§2.1",
    Must,
    "prompt metadata attachments_ok is a boolean",
);
/// `$SRV.PING.agents`.
pub const REG_014: Case = case(
    "REG-014",
    "§4.1",
    Must,
    "the instance answers $SRV.PING.agents",
);
/// `$SRV.INFO.agents.{id}`.
pub const REG_015: Case = case(
    "REG-015",
    "§4.2",
    Must,
    "the instance answers $SRV.INFO.agents.{id} with its record",
);
/// Subject tokens.
pub const REG_016: Case = case(
    "REG-016",
    "§2.2",
    Must,
    "endpoint subject tokens do not begin with $",
);
/// Owner token.
pub const REG_017: Case = case(
    "REG-017",
    "§2",
    Should,
    "a default-pattern prompt subject's owner token matches metadata.owner",
);

/// Plain text.
pub const REQ_001: Case = case(
    "REQ-001",
    "§5.1, §5.3",
    Must,
    "a plain-text prompt is accepted",
);
/// JSON envelope.
pub const REQ_002: Case = case("REQ-002", "§5.1", Must, "a JSON envelope is accepted");
/// Leading whitespace.
pub const REQ_003: Case = case(
    "REQ-003",
    "§5.3",
    Must,
    "a JSON envelope after leading whitespace (\\t \\n \\r space) is accepted",
);
/// Unknown envelope fields.
pub const REQ_004: Case = case(
    "REQ-004",
    "§5.6",
    Must,
    "unknown top-level envelope fields are tolerated",
);
/// Unknown attachment fields.
pub const REQ_005: Case = case(
    "REQ-005",
    "§5.6",
    Must,
    "unknown fields inside attachment objects are tolerated (attachments_ok: true)",
);
/// Zero bytes.
pub const REQ_006: Case = case(
    "REQ-006",
    "§5.3",
    Must,
    "a zero-byte request is rejected with 400, then the terminator",
);
/// Invalid JSON.
pub const REQ_007: Case = case(
    "REQ-007",
    "§5.3",
    Must,
    "a payload starting with { that is not JSON is rejected with 400, then the terminator",
);
/// No prompt.
pub const REQ_008: Case = case(
    "REQ-008",
    "§5.3",
    Must,
    "a JSON object without prompt is rejected with 400, then the terminator",
);
/// Prompt not a string.
pub const REQ_009: Case = case(
    "REQ-009",
    "§5.3",
    Must,
    "a JSON prompt that is not a string is rejected with 400, then the terminator",
);
/// Empty prompt.
pub const REQ_010: Case = case(
    "REQ-010",
    "§5.1",
    Must,
    "an empty prompt string is rejected with 400, then the terminator",
);
/// Invalid base64.
pub const REQ_011: Case = case(
    "REQ-011",
    "§5.2",
    Must,
    "attachment content that is not base64 is rejected with 400 (attachments_ok: true)",
);
/// URL-safe base64.
pub const REQ_012: Case = case(
    "REQ-012",
    "§5.2",
    Must,
    "URL-safe base64 content is rejected with 400 (attachments_ok: true)",
);
/// Whitespace in base64.
pub const REQ_013: Case = case(
    "REQ-013",
    "§5.2",
    Must,
    "base64 content containing whitespace is rejected with 400 (attachments_ok: true)",
);
/// Attachment without filename.
pub const REQ_014: Case = case(
    "REQ-014",
    "§5.2",
    Must,
    "an attachment without filename is rejected with 400 (attachments_ok: true)",
);
/// Attachments not an array.
pub const REQ_015: Case = case(
    "REQ-015",
    "§5.1",
    Must,
    "attachments that is not an array is rejected with 400",
);
/// Oversize.
pub const REQ_016: Case = case(
    "REQ-016",
    "§5.4, §9.2",
    May,
    "a request larger than max_payload is rejected with 400 (only when the server lets it through)",
);
/// Attachments when not accepted.
pub const REQ_017: Case = case(
    "REQ-017",
    "§5.1, §9.2",
    Must,
    "attachments sent to an agent with attachments_ok: false are rejected with 400",
);

/// Ack present.
pub const STR_001: Case = case(
    "STR-001",
    "§6.4",
    Must,
    "every accepted stream carries a {\"type\":\"status\",\"data\":\"ack\"} chunk",
);
/// Ack first.
pub const STR_002: Case = case(
    "STR-002",
    "§6.4",
    Must,
    "the ack is the first message, before any response or query chunk",
);
/// Well-formed chunks.
pub const STR_003: Case = case(
    "STR-003",
    "§6.2, §6.3, §7.1",
    Must,
    "every non-terminating message is a well-formed {type, data} JSON chunk",
);
/// Terminator.
pub const STR_004: Case = case(
    "STR-004",
    "§6.5",
    Must,
    "every stream ends with a zero-byte message carrying no headers",
);
/// Nothing after the terminator.
pub const STR_005: Case = case(
    "STR-005",
    "§6.5, §9.3",
    Must,
    "nothing is published on the reply subject after the terminator",
);
/// Error then terminator.
pub const STR_006: Case = case(
    "STR-006",
    "§9.3",
    Must,
    "an error-headered message is followed by the terminator and nothing else",
);
/// Codes from the table.
pub const STR_007: Case = case(
    "STR-007",
    "§9.2",
    Must,
    "Nats-Service-Error-Code is a code from the §9.2 table",
);
/// Both headers.
pub const STR_008: Case = case(
    "STR-008",
    "§9.1",
    Must,
    "an error carries both Nats-Service-Error-Code and Nats-Service-Error",
);
/// JSON error body.
pub const STR_009: Case = case(
    "STR-009",
    "§9.1",
    Must,
    "a JSON error body is an object with a string \"error\"",
);
/// Distinct query reply subjects.
pub const STR_010: Case = case(
    "STR-010",
    "§7.3",
    Must,
    "queries in one stream use distinct reply subjects",
);
/// Ack before a rejection.
pub const STR_011: Case = case(
    "STR-011",
    "§6.4",
    Should,
    "the ack is also the first message of a rejected (400) stream",
);

/// Heartbeat subject.
pub const HB_001: Case = case(
    "HB-001",
    "§8.1",
    Must,
    "heartbeats are published on agents.hb.{agent}.{owner}.{name}",
);
/// Heartbeat fields.
pub const HB_002: Case = case(
    "HB-002",
    "§8.3",
    Must,
    "every heartbeat has agent, owner, instance_id, ts (UTC ISO 8601) and interval_s > 0",
);
/// Heartbeat identity.
pub const HB_003: Case = case(
    "HB-003",
    "§8.3",
    Must,
    "heartbeat agent/owner match the metadata; session present iff metadata.session is",
);
/// Heartbeat instance id.
pub const HB_004: Case = case(
    "HB-004",
    "§8.3, §3.4",
    Must,
    "heartbeat instance_id is the service id",
);
/// Cadence.
pub const HB_005: Case = case(
    "HB-005",
    "§8.2",
    Must,
    "heartbeats come at the advertised interval_s (tolerance: 50% + 1 s)",
);
/// After registration.
pub const HB_006: Case = case(
    "HB-006",
    "§8.2",
    Should,
    "a heartbeat's instance is visible on $SRV.INFO.agents.{instance_id}",
);
/// Status reply shape.
pub const HB_007: Case = case(
    "HB-007",
    "§8.7",
    Must,
    "the status endpoint replies with a §8.3 heartbeat-shaped payload",
);
/// Status identity.
pub const HB_008: Case = case(
    "HB-008",
    "§8.7",
    Must,
    "the status reply's instance_id is the service id and agent/owner match the metadata",
);
/// Status ignores body.
pub const HB_009: Case = case(
    "HB-009",
    "§8.7",
    Must,
    "the status endpoint ignores the request body",
);

/// Every agent-mode case, in report order.
pub const AGENT_CASES: &[Case] = &[
    REG_001, REG_002, REG_003, REG_004, REG_005, REG_006, REG_007, REG_008, REG_009, REG_010,
    REG_011, REG_012, REG_013, REG_014, REG_015, REG_016, REG_017, REQ_001, REQ_002, REQ_003,
    REQ_004, REQ_005, REQ_006, REQ_007, REQ_008, REQ_009, REQ_010, REQ_011, REQ_012, REQ_013,
    REQ_014, REQ_015, REQ_016, REQ_017, STR_001, STR_002, STR_003, STR_004, STR_005, STR_006,
    STR_007, STR_008, STR_009, STR_010, STR_011, HB_001, HB_002, HB_003, HB_004, HB_005, HB_006,
    HB_007, HB_008, HB_009, SID_001, SID_002, SID_003, SID_004, SID_005, SID_006, SID_007, SID_008,
    SID_009, SID_010, SID_011, SID_012, SID_013,
];

// Sender identity (§13), an optional extension: an agent implements it if
// and only if its prompt endpoint declares `min_sender_trust` (§13.13); the
// SID cases run only then.

/// The requirement is declared with a defined value.
pub const SID_001: Case = case(
    "SID-001",
    "§13.9",
    Must,
    "the prompt endpoint declares min_sender_trust as \"any\" or \"signed\"",
);
/// Malformed header.
pub const SID_002: Case = case(
    "SID-002",
    "§13.5.1, §13.7",
    Must,
    "a malformed Agent-Sender header is refused with 400, then the terminator",
);
/// Failing signature.
pub const SID_003: Case = case(
    "SID-003",
    "§13.7",
    Must,
    "a signature that does not verify is refused with 401, whatever min_sender_trust",
);
/// Replay.
pub const SID_004: Case = case(
    "SID-004",
    "§13.7",
    Must,
    "the same signed request sent twice is refused with 401 the second time",
);
/// Transplant.
pub const SID_005: Case = case(
    "SID-005",
    "§13.7.1",
    Must,
    "a header signed for another subject is refused with 401",
);
/// Replay window.
pub const SID_006: Case = case(
    "SID-006",
    "§13.7",
    Must,
    "a signed ts outside the replay window (default 30 s) is refused with 401",
);
/// `signed` endpoint.
pub const SID_007: Case = case(
    "SID-007",
    "§13.9",
    Must,
    "an endpoint declaring signed refuses an unsigned request with 401",
);
/// Valid signature served.
pub const SID_008: Case = case(
    "SID-008",
    "§13.7",
    Must,
    "a validly signed request is served",
);
/// Unknown version.
pub const SID_009: Case = case(
    "SID-009",
    "§13.5.1",
    Must,
    "a header with an unknown v counts as absent (served on any, 401 on signed)",
);
/// Status never refused.
pub const SID_010: Case = case(
    "SID-010",
    "§13.9",
    Must,
    "status is answered whatever Agent-Sender it carries (malformed, failing)",
);
/// id_sig.
pub const SID_011: Case = case(
    "SID-011",
    "§13.10",
    Must,
    "registered user_nkey/account come with an id_sig that verifies over the record",
);
/// Signed heartbeats.
pub const SID_012: Case = case(
    "SID-012",
    "§13.11",
    Must,
    "heartbeats carry a verifying Agent-Sender: heartbeat sub, the beat's ts, fresh nonce, the registered user",
);
/// Replies unsigned.
pub const SID_013: Case = case(
    "SID-013",
    "§13.11",
    Must,
    "replies (stream messages, status replies) carry no Agent-Sender",
);

/// Object-form response data.
pub const CALL_001: Case = case(
    "CALL-001",
    "§6.3",
    Must,
    "accepts string and object response data and concatenates text in order",
);
/// Unknown chunk types.
pub const CALL_002: Case = case(
    "CALL-002",
    "§6.2, §6.4, §6.6",
    Must,
    "silently ignores unknown chunk types and unknown status values",
);
/// Keep-alive acks.
pub const CALL_003: Case = case(
    "CALL-003",
    "§6.4, §6.6",
    Must,
    "keep-alive acks reset the inactivity timeout",
);
/// Long pause.
pub const CALL_004: Case = case(
    "CALL-004",
    "§6.6",
    Must,
    "a pause shorter than the inactivity window does not end the stream",
);
/// Lost terminator.
pub const CALL_005: Case = case(
    "CALL-005",
    "§6.6",
    Must,
    "a lost terminator ends in an inactivity timeout: non-zero exit, no hang",
);
/// Error with JSON body.
pub const CALL_006: Case = case(
    "CALL-006",
    "§9.1, §9.3",
    Must,
    "an error with a JSON body fails the call and shows the body's message",
);
/// Error without body.
pub const CALL_007: Case = case(
    "CALL-007",
    "§9.1, §9.3",
    Must,
    "an error without a body fails the call and shows the Nats-Service-Error header",
);
/// Query.
pub const CALL_008: Case = case(
    "CALL-008",
    "§7",
    Must,
    "answers a mid-stream query with exactly one reply and keeps consuming the stream",
);
/// Advertised subject.
pub const CALL_009: Case = case(
    "CALL-009",
    "§4.3",
    Must,
    "prompts an agent whose advertised prompt subject is not the default pattern",
);
/// Body message preferred.
pub const CALL_010: Case = case(
    "CALL-010",
    "§9.1",
    Should,
    "shows the JSON error body's message (the header is the fallback)",
);
/// Every chunk resets the timer.
pub const CALL_011: Case = case(
    "CALL-011",
    "§6.6",
    Must,
    "every chunk resets the inactivity timeout, not only acks: responses spaced under the window, with no ack between them, complete the stream",
);
/// The clock starts at publication.
pub const CALL_012: Case = case(
    "CALL-012",
    "§6.6",
    Must,
    "the inactivity clock starts when the request is published: an agent that never answers ends in a timeout (non-zero exit, no hang)",
);
/// The timeout given is the timeout applied.
pub const CALL_013: Case = case(
    "CALL-013",
    "§6.6",
    Must,
    "applies the inactivity timeout it is given: gives up about that long after the last chunk, not sooner and not much later",
);
/// A query is answered once, ever.
pub const CALL_014: Case = case(
    "CALL-014",
    "§7.2, §7.3",
    Must,
    "replies to a query exactly once: no second reply on its reply subject, not even after the stream has ended",
);

/// Signs with a fresh nonce and the right sub.
pub const CID_001: Case = case(
    "CID-001",
    "§13.5, §13.6",
    Must,
    "with a user seed, every prompt carries a signed Agent-Sender that verifies: sub is the subject published to, a fresh nonce each time",
);
/// Header bytes counted.
pub const CID_002: Case = case(
    "CID-002",
    "§13.5.1, §5.4",
    Must,
    "counts the Agent-Sender bytes toward max_payload: a request that fits only without the header is refused locally",
);
/// Signed endpoint without a seed.
pub const CID_003: Case = case(
    "CID-003",
    "§13.4, §13.9",
    Must,
    "without a seed, a prompt to a signed endpoint fails locally: non-zero exit, nothing published",
);
/// Unknown requirement.
pub const CID_004: Case = case(
    "CID-004",
    "§13.9",
    Must,
    "an unknown min_sender_trust value is treated as signed",
);

/// Every caller-mode case, in report order.
pub const CALLER_CASES: &[Case] = &[
    CALL_001, CALL_002, CALL_003, CALL_004, CALL_005, CALL_006, CALL_007, CALL_008, CALL_009,
    CALL_010, CALL_011, CALL_012, CALL_013, CALL_014, CID_001, CID_002, CID_003, CID_004,
];

/// Looks a case up by id.
pub fn by_id(id: &str) -> Option<Case> {
    AGENT_CASES
        .iter()
        .chain(CALLER_CASES)
        .find(|c| c.id == id)
        .copied()
}
