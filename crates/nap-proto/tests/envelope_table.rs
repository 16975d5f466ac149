//! The §5.3 discrimination rule and the §5.2/§5.4 checks, one row each.
#![allow(clippy::unwrap_used, missing_docs)]

use nap_proto::AttachmentsError;
use nap_proto::{AttachmentError, Base64Error, ByteSize, Envelope, EnvelopeError, StatusCode};
use nap_proto::{FieldError, JsonKind};
use nap_proto::{PromptLimits, RequestError, accept_request, prepare_request};

/// What a row expects.
enum Expect {
    /// Accepted, with this prompt and attachment count.
    Ok(&'static str, usize),
    /// Rejected with an error matching this predicate.
    Err(fn(&RequestError) -> bool),
}

fn att(content: &str) -> String {
    format!(r#"{{"prompt":"p","attachments":[{{"filename":"f.bin","content":"{content}"}}]}}"#)
}

fn env_err(e: &RequestError) -> &EnvelopeError {
    match e {
        RequestError::Envelope(e) => e,
        other => panic!("expected an envelope error, got {other}"),
    }
}

fn base64_err(e: &RequestError) -> Base64Error {
    match env_err(e) {
        EnvelopeError::Attachments(AttachmentsError::At {
            index: 0,
            error: AttachmentError::Content(b),
        }) => b.clone(),
        other => panic!("expected a base64 error, got {other}"),
    }
}

#[test]
fn discrimination_and_validation_table() {
    let limits = PromptLimits {
        max_payload: ByteSize::kib(1),
        attachments_ok: true,
    };
    let rows: Vec<(&str, Vec<u8>, Expect)> = vec![
        // §5.3 step 3: plain text is promoted to {"prompt": <payload>}.
        ("plain text", b"hello".to_vec(), Expect::Ok("hello", 0)),
        (
            "plain text keeps its leading whitespace",
            b"  hi".to_vec(),
            Expect::Ok("  hi", 0),
        ),
        (
            "JSON array is plain text (no leading '{')",
            b"[1,2]".to_vec(),
            Expect::Ok("[1,2]", 0),
        ),
        (
            "whitespace-only text is a non-empty prompt",
            b" ".to_vec(),
            Expect::Ok(" ", 0),
        ),
        // §5.3 step 1-2: leading whitespace, then '{' means JSON.
        ("JSON", br#"{"prompt":"x"}"#.to_vec(), Expect::Ok("x", 0)),
        (
            "leading whitespace before '{'",
            b" \t\r\n{\"prompt\":\"x\"}".to_vec(),
            Expect::Ok("x", 0),
        ),
        (
            "unknown fields tolerated (§5.6)",
            br#"{"prompt":"x","future":{"a":1}}"#.to_vec(),
            Expect::Ok("x", 0),
        ),
        (
            "valid attachment",
            att("aGVsbG8=").into_bytes(),
            Expect::Ok("p", 1),
        ),
        (
            "empty attachment list",
            br#"{"prompt":"x","attachments":[]}"#.to_vec(),
            Expect::Ok("x", 0),
        ),
        // §5.3: every malformed case is a 400.
        (
            "zero-byte payload",
            Vec::new(),
            Expect::Err(|e| matches!(env_err(e), EnvelopeError::Empty)),
        ),
        (
            "whitespace then '{' then invalid JSON",
            b"  {prompt: x}".to_vec(),
            Expect::Err(|e| matches!(env_err(e), EnvelopeError::InvalidJson { .. })),
        ),
        (
            "'{' followed by invalid JSON",
            b"{".to_vec(),
            Expect::Err(|e| matches!(env_err(e), EnvelopeError::InvalidJson { .. })),
        ),
        (
            "JSON with trailing garbage",
            br#"{"prompt":"x"} and more"#.to_vec(),
            Expect::Err(|e| matches!(env_err(e), EnvelopeError::InvalidJson { .. })),
        ),
        (
            "JSON without prompt",
            br#"{"text":"x"}"#.to_vec(),
            Expect::Err(|e| {
                matches!(
                    env_err(e),
                    EnvelopeError::Prompt(FieldError::Missing { field: "prompt" })
                )
            }),
        ),
        (
            "prompt not a string",
            br#"{"prompt":42}"#.to_vec(),
            Expect::Err(|e| {
                matches!(
                    env_err(e),
                    EnvelopeError::Prompt(FieldError::WrongType {
                        found: JsonKind::Number,
                        ..
                    })
                )
            }),
        ),
        (
            "prompt null",
            br#"{"prompt":null}"#.to_vec(),
            Expect::Err(|e| {
                matches!(
                    env_err(e),
                    EnvelopeError::Prompt(FieldError::WrongType {
                        found: JsonKind::Null,
                        ..
                    })
                )
            }),
        ),
        (
            "empty prompt",
            br#"{"prompt":""}"#.to_vec(),
            Expect::Err(|e| matches!(env_err(e), EnvelopeError::EmptyPrompt)),
        ),
        (
            "plain text that is not UTF-8",
            vec![0xff, 0xfe, b'a'],
            Expect::Err(|e| matches!(env_err(e), EnvelopeError::NotUtf8 { valid_up_to: 0 })),
        ),
        (
            "attachments not an array",
            br#"{"prompt":"x","attachments":{}}"#.to_vec(),
            Expect::Err(|e| {
                matches!(
                    env_err(e),
                    EnvelopeError::Attachments(AttachmentsError::NotAnArray { .. })
                )
            }),
        ),
        (
            "attachment not an object",
            br#"{"prompt":"x","attachments":["a"]}"#.to_vec(),
            Expect::Err(|e| {
                matches!(
                    env_err(e),
                    EnvelopeError::Attachments(AttachmentsError::At {
                        error: AttachmentError::NotAnObject { .. },
                        ..
                    })
                )
            }),
        ),
        (
            "attachment without filename",
            br#"{"prompt":"x","attachments":[{"content":"aGk="}]}"#.to_vec(),
            Expect::Err(|e| {
                matches!(
                    env_err(e),
                    EnvelopeError::Attachments(AttachmentsError::At {
                        error: AttachmentError::Field(FieldError::Missing { field: "filename" }),
                        ..
                    })
                )
            }),
        ),
        (
            "attachment without content",
            br#"{"prompt":"x","attachments":[{"filename":"a"}]}"#.to_vec(),
            Expect::Err(|e| {
                matches!(
                    env_err(e),
                    EnvelopeError::Attachments(AttachmentsError::At {
                        error: AttachmentError::Field(FieldError::Missing { field: "content" }),
                        ..
                    })
                )
            }),
        ),
        // §5.2: standard alphabet, padded, no whitespace.
        (
            "URL-safe base64",
            att("-_-_").into_bytes(),
            Expect::Err(|e| matches!(base64_err(e), Base64Error::UrlSafe { .. })),
        ),
        (
            "base64 with whitespace",
            att("aGVs bG8=").into_bytes(),
            Expect::Err(|e| matches!(base64_err(e), Base64Error::Whitespace { offset: 4 })),
        ),
        (
            "base64 with an escaped newline",
            att("aGVs\\nbG8=").into_bytes(),
            Expect::Err(|e| matches!(base64_err(e), Base64Error::Whitespace { offset: 4 })),
        ),
        (
            "unpadded base64",
            att("aGVsbG8").into_bytes(),
            Expect::Err(|e| matches!(base64_err(e), Base64Error::Unpadded { len: 7 })),
        ),
        (
            "base64 with a foreign character",
            att("aGVs*G8=").into_bytes(),
            Expect::Err(|e| matches!(base64_err(e), Base64Error::Invalid { .. })),
        ),
        // §5.4 enforced server-side.
        (
            "over max_payload",
            vec![b'a'; 1025],
            Expect::Err(|e| matches!(e, RequestError::TooLarge { size: 1025, .. })),
        ),
    ];

    for (name, payload, expect) in rows {
        let got = accept_request(&payload, limits);
        match (expect, got) {
            (Expect::Ok(prompt, n), Ok(env)) => {
                assert_eq!(env.prompt, prompt, "{name}");
                assert_eq!(env.attachments.len(), n, "{name}");
            }
            (Expect::Err(check), Err(e)) => {
                assert!(check(&e), "{name}: unexpected error {e}");
                assert_eq!(e.status(), StatusCode::BadRequest, "{name}");
                let signal = e.to_service_error();
                assert_eq!(signal.code.as_u16(), 400, "{name}");
                assert!(
                    signal.description.contains('§'),
                    "{name}: description cites its rule: {}",
                    signal.description
                );
            }
            (Expect::Ok(..), Err(e)) => panic!("{name}: expected success, got {e}"),
            (Expect::Err(_), Ok(env)) => panic!("{name}: expected an error, got {env:?}"),
        }
    }
}

#[test]
fn attachments_refused_when_not_ok() {
    let limits = PromptLimits {
        max_payload: ByteSize::mib(1),
        attachments_ok: false,
    };
    let err = accept_request(att("aGk=").as_bytes(), limits).unwrap_err();
    assert!(matches!(
        err,
        RequestError::AttachmentsNotAccepted { count: 1 }
    ));
    assert_eq!(err.status(), StatusCode::BadRequest);
    // An empty list is not "attachments present" (§2.1).
    assert!(accept_request(br#"{"prompt":"x","attachments":[]}"#, limits).is_ok());
}

#[test]
fn unknown_fields_survive_a_relay() {
    let wire = br#"{"prompt":"x","attachments":[{"filename":"a","content":"aGk=","mime":"text/plain"}],"trace":{"id":7}}"#;
    let env = Envelope::decode(wire).unwrap();
    assert_eq!(env.extra["trace"]["id"], 7);
    assert_eq!(env.attachments[0].extra["mime"], "text/plain");
    assert_eq!(env.encode(), wire);
}

#[test]
fn caller_checks_before_publishing() {
    let small = PromptLimits {
        max_payload: ByteSize::new(30),
        attachments_ok: false,
    };
    let env = Envelope::text("hello");
    assert_eq!(
        prepare_request(&env, small, None, 0).unwrap(),
        br#"{"prompt":"hello"}"#
    );
    // Overhead (headers) counts against the limit.
    assert!(matches!(
        prepare_request(&env, small, None, 20),
        Err(RequestError::TooLarge { size: 38, .. })
    ));
    // The server's own max_payload applies when it is smaller.
    let err = prepare_request(&env, PromptLimits::DEFAULT, Some(10), 0).unwrap_err();
    assert!(matches!(err, RequestError::TooLarge { limit, .. } if limit.bytes() == 10));
    // Attachments are refused locally.
    let with = env
        .clone()
        .with_attachment(nap_proto::Attachment::new("a", b"x".to_vec()));
    assert!(matches!(
        prepare_request(&with, small, None, 0),
        Err(RequestError::AttachmentsNotAccepted { count: 1 })
    ));
    // An empty prompt is never sent.
    assert!(prepare_request(&Envelope::text(""), PromptLimits::DEFAULT, None, 0).is_err());
}

#[test]
fn shortest_encoding_never_changes_meaning() {
    for prompt in ["hi", " {not json", "{\"prompt\":\"y\"}", "  {", "\n{x"] {
        let env = Envelope::text(prompt);
        assert_eq!(
            Envelope::decode(&env.encode_shortest()).unwrap(),
            env,
            "{prompt:?}"
        );
    }
}

#[test]
fn unsafe_attachment_names_are_refused_with_400() {
    use nap_proto::FileNameError;
    let named = |name: &str| {
        let filename = serde_json::to_string(name).unwrap();
        format!(
            r#"{{"prompt":"p","attachments":[{{"filename":"a.txt","content":"aGk="}},{{"filename":{filename},"content":"aGk="}}]}}"#
        )
    };
    for (name, expected) in [
        (
            "../x",
            FileNameError::Separator {
                found: '/',
                offset: 2,
            },
        ),
        (
            "a\\b",
            FileNameError::Separator {
                found: '\\',
                offset: 1,
            },
        ),
        (
            "x\0y",
            FileNameError::Control {
                found: '\0',
                offset: 1,
            },
        ),
        ("..", FileNameError::DotName("..".into())),
        ("", FileNameError::Empty),
    ] {
        let err = accept_request(named(name).as_bytes(), PromptLimits::DEFAULT).unwrap_err();
        match &err {
            RequestError::UnsafeFileName {
                index: 1,
                filename,
                error,
            } => {
                assert_eq!(filename, name);
                assert_eq!(error, &expected);
            }
            other => panic!("{name:?}: {other:?}"),
        }
        assert_eq!(err.status(), StatusCode::BadRequest);
    }
    // Awkward on Windows, but one component: accepted as sent.
    let env = accept_request(named("CON").as_bytes(), PromptLimits::DEFAULT).unwrap();
    assert_eq!(env.attachments[1].filename, "CON");
}
