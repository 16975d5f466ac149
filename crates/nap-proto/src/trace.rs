//! W3C trace context carried in prompt request headers (issue 13).
//!
//! A caller puts a `traceparent` header (and a `tracestate` header when it
//! has vendor state) on every prompt so that the host can continue the
//! caller's trace for the agent's turn. This module holds the header names
//! and a validating, sans-IO parser/formatter for the `traceparent` value
//! (W3C Trace Context, version `00`). Anything malformed parses to `None`;
//! nothing here panics on input.

use std::fmt;

/// Request header carrying the W3C `traceparent` value.
pub const TRACEPARENT_HEADER: &str = "traceparent";

/// Request header carrying the W3C `tracestate` value (vendor state).
pub const TRACESTATE_HEADER: &str = "tracestate";

/// A parsed, valid `traceparent` value (version `00`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceParent {
    /// 16-byte trace id; never all zero.
    pub trace_id: [u8; 16],
    /// 8-byte id of the parent span; never all zero.
    pub span_id: [u8; 8],
    /// Trace flags byte (bit 0 is "sampled").
    pub flags: u8,
}

impl TraceParent {
    /// Builds a trace parent, or `None` when either id is all zero.
    pub fn new(trace_id: [u8; 16], span_id: [u8; 8], flags: u8) -> Option<Self> {
        if trace_id.iter().all(|b| *b == 0) || span_id.iter().all(|b| *b == 0) {
            return None;
        }
        Some(Self {
            trace_id,
            span_id,
            flags,
        })
    }

    /// Whether the sampled flag (bit 0) is set.
    pub fn sampled(&self) -> bool {
        self.flags & 0x01 != 0
    }

    /// Parses a `traceparent` header value: `00-<32 hex>-<16 hex>-<2 hex>`,
    /// lowercase hex, no all-zero ids. Returns `None` for anything else.
    pub fn parse(value: &str) -> Option<Self> {
        let value = value.trim();
        let mut parts = value.split('-');
        let version = parts.next()?;
        let trace = parts.next()?;
        let span = parts.next()?;
        let flags = parts.next()?;
        if parts.next().is_some() || version != "00" {
            return None;
        }
        let mut trace_id = [0u8; 16];
        let mut span_id = [0u8; 8];
        let mut flag = [0u8; 1];
        decode_hex(trace, &mut trace_id)?;
        decode_hex(span, &mut span_id)?;
        decode_hex(flags, &mut flag)?;
        Self::new(trace_id, span_id, flag[0])
    }

    /// The trace id as 32 lowercase hex digits.
    pub fn trace_id_hex(&self) -> String {
        hex(&self.trace_id)
    }

    /// The span id as 16 lowercase hex digits.
    pub fn span_id_hex(&self) -> String {
        hex(&self.span_id)
    }
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{}-{}-{:02x}",
            self.trace_id_hex(),
            self.span_id_hex(),
            self.flags
        )
    }
}

/// The `sampled` trace flag (bit 0).
pub const SAMPLED: u8 = 0x01;

/// The most characters of `tracestate` carried on (W3C: at least 512 must
/// be propagated; longer values may be dropped).
pub const TRACESTATE_MAX_LEN: usize = 512;

/// The most list members of a `tracestate` value (W3C).
pub const TRACESTATE_MAX_MEMBERS: usize = 32;

/// The trace context a request carries: its parent and vendor state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteContext {
    /// The caller's `traceparent`.
    pub parent: TraceParent,
    /// The caller's `tracestate`, when it sent a usable one.
    pub state: Option<String>,
}

impl RemoteContext {
    /// Reads the trace context from a request's headers, by the W3C
    /// rules: header names in any case; exactly one valid `traceparent`,
    /// else there is no context (several is as good as none); `tracestate`
    /// values joined with commas, dropped (the parent kept) when longer
    /// than [`TRACESTATE_MAX_LEN`], with more than
    /// [`TRACESTATE_MAX_MEMBERS`] members, or holding a line break.
    pub fn from_headers<'a>(
        headers: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Option<RemoteContext> {
        let mut parent = None;
        let mut parents = 0usize;
        let mut states: Vec<&str> = Vec::new();
        for (name, value) in headers {
            if name.eq_ignore_ascii_case(TRACEPARENT_HEADER) {
                parents += 1;
                parent = TraceParent::parse(value);
            } else if name.eq_ignore_ascii_case(TRACESTATE_HEADER) {
                states.push(value.trim());
            }
        }
        let parent = parent.filter(|_| parents == 1)?;
        let state = states.join(",");
        let members = state.split(',').filter(|m| !m.trim().is_empty()).count();
        let usable = !state.is_empty()
            && state.len() <= TRACESTATE_MAX_LEN
            && members <= TRACESTATE_MAX_MEMBERS
            && !state.contains(['\r', '\n']);
        Some(RemoteContext {
            parent,
            state: usable.then_some(state),
        })
    }
}

fn hex(bytes: &[u8]) -> String {
    use fmt::Write;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

fn decode_hex(text: &str, out: &mut [u8]) -> Option<()> {
    let raw = text.as_bytes();
    if raw.len() != out.len() * 2 {
        return None;
    }
    for (slot, pair) in out.iter_mut().zip(raw.chunks_exact(2)) {
        *slot = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(())
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const GOOD: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn the_context_is_read_by_the_w3c_rules() {
        let ctx = RemoteContext::from_headers([
            ("TraceParent", GOOD),
            ("tracestate", "a=1"),
            ("tracestate", "b=2"),
        ])
        .unwrap();
        assert_eq!(ctx.parent.to_string(), GOOD);
        assert_eq!(ctx.state.as_deref(), Some("a=1,b=2"));
        assert!(
            RemoteContext::from_headers([("traceparent", GOOD), ("traceparent", GOOD)]).is_none()
        );
        assert!(RemoteContext::from_headers([("traceparent", "00-zz")]).is_none());
        assert!(RemoteContext::from_headers([("other", GOOD)]).is_none());
        let long = "k=".to_owned() + &"v".repeat(TRACESTATE_MAX_LEN);
        let ctx =
            RemoteContext::from_headers([("traceparent", GOOD), ("tracestate", &long)]).unwrap();
        assert_eq!(
            ctx.state, None,
            "an unusable tracestate is dropped, the parent kept"
        );
        let many: Vec<String> = (0..=TRACESTATE_MAX_MEMBERS)
            .map(|i| format!("k{i}=v"))
            .collect();
        let many = many.join(",");
        let ctx =
            RemoteContext::from_headers([("traceparent", GOOD), ("tracestate", &many)]).unwrap();
        assert_eq!(ctx.state, None);
    }

    #[test]
    fn parses_and_formats_round_trip() {
        let tp = TraceParent::parse(GOOD).unwrap();
        assert_eq!(tp.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(tp.span_id_hex(), "00f067aa0ba902b7");
        assert_eq!(tp.flags, 1);
        assert!(tp.sampled());
        assert_eq!(tp.to_string(), GOOD);
    }

    #[test]
    fn rejects_malformed_values() {
        for bad in [
            "",
            "00",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-xx",
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba9é2b7-01",
        ] {
            assert_eq!(TraceParent::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn new_rejects_zero_ids() {
        assert!(TraceParent::new([0; 16], [1; 8], 0).is_none());
        assert!(TraceParent::new([1; 16], [0; 8], 0).is_none());
        assert!(TraceParent::new([1; 16], [1; 8], 0).is_some());
    }
}
