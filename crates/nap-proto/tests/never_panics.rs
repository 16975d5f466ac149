//! Property tests: decoders fed arbitrary bytes return errors, never panic;
//! what the encoders write, the decoders read back unchanged.
#![allow(clippy::unwrap_used, missing_docs)]

use nap_proto::{AgentInfo, Attachment, Chunk, Envelope, Heartbeat, ResponseData};
use proptest::prelude::*;

const CASES: u32 = 10_000;

/// Bytes that often look like the inputs: JSON objects with protocol keys.
fn jsonish() -> impl Strategy<Value = Vec<u8>> {
    let key = prop_oneof![
        Just("prompt"),
        Just("attachments"),
        Just("filename"),
        Just("content"),
        Just("type"),
        Just("data"),
        Just("text"),
        Just("name"),
        Just("metadata"),
        Just("endpoints"),
        Just("max_payload"),
        Just("attachments_ok"),
    ];
    let value = prop_oneof![
        Just("\"agents\"".to_owned()),
        Just("null".to_owned()),
        Just("[]".to_owned()),
        Just("{}".to_owned()),
        Just("\"1MB\"".to_owned()),
        Just("\"aGk=\"".to_owned()),
        Just("true".to_owned()),
        any::<i64>().prop_map(|n| n.to_string()),
        "\"[ -~]{0,12}\"",
    ];
    prop::collection::vec((key, value), 0..6).prop_map(|kvs| {
        let body: Vec<String> = kvs.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
        format!("{{{}}}", body.join(",")).into_bytes()
    })
}

fn input() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![prop::collection::vec(any::<u8>(), 0..256), jsonish()]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn envelope_decoder_never_panics(bytes in input()) {
        if let Ok(env) = Envelope::decode(&bytes) {
            // Whatever decodes re-encodes to something that decodes the same.
            prop_assert_eq!(Envelope::decode(&env.encode()).unwrap(), env);
        }
    }

    #[test]
    fn chunk_decoder_never_panics(bytes in input()) {
        if let Ok(chunk) = Chunk::decode(&bytes) {
            prop_assert_eq!(Chunk::decode(&chunk.encode()).unwrap(), chunk);
        }
    }

    #[test]
    fn info_parser_never_panics(bytes in input()) {
        let _ = AgentInfo::parse(&bytes);
        let _ = Heartbeat::decode(&bytes);
    }

    #[test]
    fn envelopes_roundtrip(
        prompt in "\\PC{1,40}",
        files in prop::collection::vec(("[a-z.]{1,12}", prop::collection::vec(any::<u8>(), 0..64)), 0..3),
    ) {
        let mut env = Envelope::text(prompt);
        for (name, content) in files {
            env = env.with_attachment(Attachment::new(name, content));
        }
        prop_assert_eq!(Envelope::decode(&env.encode()).unwrap(), env.clone());
        prop_assert_eq!(Envelope::decode(&env.encode_shortest()).unwrap(), env);
    }

    #[test]
    fn response_chunks_roundtrip(text in "\\PC{0,40}") {
        let chunk = Chunk::Response(ResponseData::Text(text));
        prop_assert_eq!(Chunk::decode(&chunk.encode()).unwrap(), chunk);
    }
}
