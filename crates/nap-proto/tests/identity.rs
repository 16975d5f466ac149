//! Sender identity (§13): the agent ID parse table of §13.3.3, the
//! `Agent-Sender` header classes of §13.5.1, and the known-answer signing
//! vectors of Appendix B.13 and the SDKs' shared fixtures, byte for byte.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, SystemTime};

use nap_proto::JsonKind;
use nap_proto::identity::{
    Account, AccountError, AccountForm, AgentId, AgentIdError, DisplayName, MalformedSender,
    NameError, NkeyError, NkeyKind, Nonce, NonceError, SENDER_HEADER, SENDER_HEADER_FRAMING,
    SenderHeader, SenderSigner, SenderTime, SignatureError, SignedInput, SignedSender,
    TimestampError, UserKey, VerifyError,
};

const ACCOUNT: &str = "AABYLMBR6Q2CDXTLGRQCFA2GP76BGCDF7NZF2OVHH4RQ7L3Y3TZWJDRL";
const USER: &str = "UAWW24XPLGOX3R3JF4OZEZZ6RUXMB55DSWJCEFFSUDFBCKJD4MSCMQYI";

/// The result a row of the parse table expects.
#[derive(Debug)]
enum Expect {
    Valid(AccountForm),
    Invalid(AgentIdError),
}

// §13.3.3, row by row and in order, then the extra rows of the SDKs'
// `agent-id-fixtures.json`.
fn parse_table() -> Vec<(String, Expect)> {
    use Expect::*;
    vec![
        // valid, NKEY account
        (format!("{ACCOUNT}.{USER}"), Valid(AccountForm::Nkey)),
        // valid, account name
        (format!("ACME.{USER}"), Valid(AccountForm::Name)),
        // valid, global account
        (format!("$G.{USER}"), Valid(AccountForm::Global)),
        // invalid: tokens swapped (the user key reads as an account name; the
        // account key fails as a user key)
        (
            format!("{USER}.{ACCOUNT}"),
            Invalid(AgentIdError::User(NkeyError::WrongLetter {
                kind: NkeyKind::User,
            })),
        ),
        // invalid: separator
        (
            format!("{ACCOUNT}:{USER}"),
            Invalid(AgentIdError::MissingSeparator),
        ),
        // invalid: case changed
        (
            format!("{ACCOUNT}.{USER}").to_lowercase(),
            Invalid(AgentIdError::User(NkeyError::WrongLetter {
                kind: NkeyKind::User,
            })),
        ),
        // invalid: user NKEY truncated
        (
            format!("{ACCOUNT}.{}", &USER[..55]),
            Invalid(AgentIdError::User(NkeyError::WrongLength {
                kind: NkeyKind::User,
                found: 55,
            })),
        ),
        // invalid: three tokens
        (
            format!("{ACCOUNT}.{USER}.extra"),
            Invalid(AgentIdError::TooManyTokens),
        ),
        // invalid: a user NKEY alone is not an agent ID
        (USER.to_owned(), Invalid(AgentIdError::MissingSeparator)),
        // invalid: account name with a space
        (
            format!("acme corp.{USER}"),
            Invalid(AgentIdError::Account(AccountError::InvalidName)),
        ),
        // invalid: account has the NKEY shape but fails the CRC
        (
            format!("{}M.{USER}", &ACCOUNT[..55]),
            Invalid(AgentIdError::Account(AccountError::Nkey(
                NkeyError::Checksum,
            ))),
        ),
        // fixtures: empty string
        (String::new(), Invalid(AgentIdError::MissingSeparator)),
        // fixtures: empty account token
        (
            format!(".{USER}"),
            Invalid(AgentIdError::Account(AccountError::Empty)),
        ),
        // fixtures: empty user token
        (
            format!("{ACCOUNT}."),
            Invalid(AgentIdError::User(NkeyError::WrongLength {
                kind: NkeyKind::User,
                found: 0,
            })),
        ),
        // fixtures: an account name with `.` reads as three tokens
        (format!("a.b.{USER}"), Invalid(AgentIdError::TooManyTokens)),
        // fixtures: same account, other user: valid and a distinct ID
        (
            format!("{ACCOUNT}.UBLDXJ5RTBM2WVPRKJ7TTWDLRTPCH7O3VMDSZPU55VWZVEW2PGHJBAEB"),
            Valid(AccountForm::Nkey),
        ),
    ]
}

#[test]
fn parse_table_of_13_3_3() {
    for (input, expect) in parse_table() {
        let got = AgentId::parse(&input);
        match (&got, &expect) {
            (Ok(id), Expect::Valid(form)) => {
                assert_eq!(id.account().form(), *form, "{input}");
                // §13.3: the text form round-trips byte for byte.
                assert_eq!(id.to_string(), input);
                assert_eq!(input.parse::<AgentId>().unwrap(), *id);
            }
            (Err(err), Expect::Invalid(want)) => assert_eq!(err, want, "{input}"),
            _ => panic!("{input:?}: expected {expect:?}, got {got:?}"),
        }
    }
}

#[test]
fn operator_form_is_113_characters_and_ids_compare_by_bytes() {
    // §13.3: with an NKEY account the form has 113 characters.
    let a = AgentId::parse(&format!("{ACCOUNT}.{USER}")).unwrap();
    assert_eq!(a.to_string().len(), 113);
    let b = AgentId::parse(&format!(
        "{ACCOUNT}.UBLDXJ5RTBM2WVPRKJ7TTWDLRTPCH7O3VMDSZPU55VWZVEW2PGHJBAEB"
    ))
    .unwrap();
    // §13.3: equal iff the text forms are byte-equal.
    assert_ne!(a, b);
    assert_eq!(a, AgentId::from_parts(ACCOUNT, USER).unwrap());
}

#[test]
fn two_argument_constructor_rows() {
    // The `new` rows of the SDKs' fixtures.
    assert_eq!(
        AgentId::from_parts(ACCOUNT, USER).unwrap().to_string(),
        format!("{ACCOUNT}.{USER}")
    );
    assert_eq!(
        AgentId::from_parts("$G", USER).unwrap().to_string(),
        format!("$G.{USER}")
    );
    assert_eq!(
        AgentId::from_parts("", USER),
        Err(AgentIdError::Account(AccountError::Empty))
    );
    assert!(matches!(
        AgentId::from_parts(ACCOUNT, ""),
        Err(AgentIdError::User(NkeyError::WrongLength { found: 0, .. }))
    ));
    assert_eq!(
        AgentId::from_parts("acme corp", USER),
        Err(AgentIdError::Account(AccountError::InvalidName))
    );
    assert_eq!(
        AgentId::from_parts("a.b", USER),
        Err(AgentIdError::Account(AccountError::InvalidName))
    );
    assert_eq!(
        AgentId::from_parts(&format!("{}M", &ACCOUNT[..55]), USER),
        Err(AgentIdError::Account(AccountError::Nkey(
            NkeyError::Checksum
        )))
    );
    assert!(matches!(
        AgentId::from_parts(ACCOUNT, &USER[..55]),
        Err(AgentIdError::User(NkeyError::WrongLength { found: 55, .. }))
    ));
}

#[test]
fn account_forms_of_13_3_1() {
    // §13.3.1: `$G`, and names of `[A-Za-z0-9_-]+`; `$` elsewhere is not a name.
    assert_eq!(Account::new("$G").unwrap().form(), AccountForm::Global);
    assert_eq!(Account::new("my_acct-2").unwrap().form(), AccountForm::Name);
    assert_eq!(Account::new("$SYS"), Err(AccountError::InvalidName));
    assert_eq!(Account::new("a*b"), Err(AccountError::InvalidName));
    // §13.3: a 56-character `A…` account is held to the NKEY check, never
    // taken as a name, even when it is not base32.
    let lower = format!("A{}", "a".repeat(55));
    assert_eq!(
        Account::new(lower),
        Err(AccountError::Nkey(NkeyError::NotBase32))
    );
    // The user half must be a user key, not an account key of the right length.
    assert_eq!(
        UserKey::new(ACCOUNT),
        Err(NkeyError::WrongLetter {
            kind: NkeyKind::User
        })
    );
    // A `U` key whose CRC fails.
    assert_eq!(
        UserKey::new(format!("{}J", &USER[..55])),
        Err(NkeyError::Checksum)
    );
}

// Appendix B.13: the `operator-account-signed` known-answer vector.
const SEED: &str = "SUAEJ6GDK6FSSB54LD45Q7W25AW7NUT7MVLBABIR5MIPFUTBW7ZNPK2KYE"; // test only
const B13_USER: &str = "UCDUW5V44EBDBIK2FL4CTNDBQFNGBEZVJHSZGQVKRHASN4AV4IWPB5NT";
const B13_SUBJECT: &str = "agents.prompt.demo-agent.alice.example";
const B13_PAYLOAD: &[u8] = br#"{"prompt":"hello"}"#;
const B13_TS: &str = "2026-08-28T12:00:00Z";
const B13_NONCE: &str = "nonce-operator-account-signed";
const B13_SIGNED_INPUT: &str = "AGENT-SENDER-V1\n\
    AABYLMBR6Q2CDXTLGRQCFA2GP76BGCDF7NZF2OVHH4RQ7L3Y3TZWJDRL\n\
    UCDUW5V44EBDBIK2FL4CTNDBQFNGBEZVJHSZGQVKRHASN4AV4IWPB5NT\n\
    agents.prompt.demo-agent.alice.example\n\
    2026-08-28T12:00:00Z\n\
    nonce-operator-account-signed\n\
    8a44725210b9dcd4fefd9f0eca07b70ae45e69274a3105fb25eb426a2cf8bbf4\n";
const B13_SIG: &str =
    "EPGc0tNF0ZQeBqXUduwUp3zdi33k1AKIXOX-PUPSeY9QtS4V3d2EZLq-fHuPuYkw6Cc3HdVn_jVI58Y_3YBZBw";
const B13_HEADER: &str = r#"{"v":1,"account":"AABYLMBR6Q2CDXTLGRQCFA2GP76BGCDF7NZF2OVHH4RQ7L3Y3TZWJDRL","user":"UCDUW5V44EBDBIK2FL4CTNDBQFNGBEZVJHSZGQVKRHASN4AV4IWPB5NT","name":"claude-code","sub":"agents.prompt.demo-agent.alice.example","ts":"2026-08-28T12:00:00Z","nonce":"nonce-operator-account-signed","sig":"EPGc0tNF0ZQeBqXUduwUp3zdi33k1AKIXOX-PUPSeY9QtS4V3d2EZLq-fHuPuYkw6Cc3HdVn_jVI58Y_3YBZBw"}"#;

fn b13_signer() -> SenderSigner {
    SenderSigner::new(SEED, Account::new(ACCOUNT).unwrap())
        .unwrap()
        .with_name(DisplayName::new("claude-code").unwrap())
}

#[test]
fn appendix_b13_known_answer_vector() {
    let signer = b13_signer();
    // The agent ID: 113 characters.
    let id = signer.agent_id();
    assert_eq!(id.user().as_str(), B13_USER);
    assert_eq!(
        id.to_string(),
        format!("{ACCOUNT}.{B13_USER}"),
        "agent ID of B.13"
    );
    assert_eq!(id.to_string().len(), 113);

    let ts = SenderTime::parse(B13_TS).unwrap();
    let nonce = Nonce::new(B13_NONCE).unwrap();
    // The signed input: seven LF-terminated lines (§13.6.1).
    let input = SignedInput::new(id, B13_SUBJECT, &ts, &nonce, B13_PAYLOAD);
    assert_eq!(input.as_bytes(), B13_SIGNED_INPUT.as_bytes());
    assert_eq!(B13_PAYLOAD.len(), 18);

    // The signature and the header value.
    let header = signer.sign(B13_SUBJECT, ts, nonce, B13_PAYLOAD).unwrap();
    assert_eq!(header.sig.to_base64url(), B13_SIG);
    assert_eq!(header.sig.to_base64url().len(), 86);
    let value = header.encode();
    assert_eq!(value, B13_HEADER);
    assert_eq!(value.len(), 373);
    // The header block `NATS/1.0␍␊Agent-Sender: …␍␊␍␊` is 401 bytes.
    let block = format!("NATS/1.0\r\n{SENDER_HEADER}: {value}\r\n\r\n");
    assert_eq!(block.len(), 401);
    assert_eq!(value.len() + SENDER_HEADER_FRAMING, 401);

    // The receiver decodes the same fields and the signature checks out.
    let SenderHeader::Signed(received) = SenderHeader::decode(B13_HEADER).unwrap() else {
        panic!("B.13 is a signed header")
    };
    assert_eq!(received, header);
    assert_eq!(
        SignedInput::of_header(&received, B13_PAYLOAD).as_bytes(),
        B13_SIGNED_INPUT.as_bytes()
    );
    received.verify_signature(B13_PAYLOAD).unwrap();
}

/// More vectors of the SDKs' `sender-vectors.json`: account, subject, payload,
/// nonce, name, expected `sig`, expected header value.
#[test]
fn shared_sender_vectors() {
    struct Vector {
        seed: &'static str,
        account: &'static str,
        subject: &'static str,
        payload: &'static [u8],
        nonce: &'static str,
        name: Option<&'static str>,
        sig: &'static str,
        header_bytes: usize,
    }
    const SEED_2: &str = "SUAA37BA6WVMWPX27LE3AREHH5ELK2K5OYDECALTSZBJ7CDMW4AOC3GNAI";
    let hello: &[u8] = br#"{"prompt":"hello"}"#;
    let vectors = [
        // global-account-signed
        Vector {
            seed: SEED,
            account: "$G",
            subject: "agents.prompt.demo-agent.alice.example",
            payload: hello,
            nonce: "nonce-global-account-signed",
            name: None,
            sig: "NlnxA8iJk5QpVhPXXIpupBplgKpqeGKuHZVqlKMn-koXrvdnE-Er_qUMX1jkOYLEmRPR9DuthxlxZRAVFueEDw",
            header_bytes: 296,
        },
        // named-account-signed
        Vector {
            seed: SEED,
            account: "ACME",
            subject: "agents.prompt.demo-agent.alice.example",
            payload: hello,
            nonce: "nonce-named-account-signed",
            name: Some("claude-code"),
            sig: "mnC5G9UMTeicJ5F5gQ3kVGUUraiGKs-ugwqz7nruKIdmnrWpBlVNhgBUdlIKTGgy9bt24XHZc7XpY5wXBKRXCA",
            header_bytes: 318,
        },
        // empty-payload-status
        Vector {
            seed: SEED,
            account: "$G",
            subject: "agents.status.demo-agent.alice.example",
            payload: b"",
            nonce: "nonce-empty-payload-status",
            name: None,
            sig: "Z4Dv8YE7z_cMMFRwD6qRgdhAVw2iD2JbtjYr6iOB9GkD7oXYQMHuu58_lQTQxv2P8sv8KLHIFpSq6u9s3VioAg",
            header_bytes: 295,
        },
        // non-ascii-name: the name is written raw, without \u escapes
        Vector {
            seed: SEED_2,
            account: "APP",
            subject: "agents.prompt.demo-agent.alice.example",
            payload: hello,
            nonce: "nonce-non-ascii-name",
            name: Some("Bob · 日本語 🤖"),
            sig: "zdNrRoWiGhOI0l2aH8bZxkbuUlPdMZnWWtVNOsQq-T-0a3XhB8fVSmnj13ONTkCpL-SOG_hEPNrBUTERJ_TBCg",
            header_bytes: 321,
        },
        // max-nonce
        Vector {
            seed: SEED,
            account: "$G",
            subject: "agents.prompt.demo-agent.alice.example",
            payload: hello,
            nonce: "NNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNN",
            name: None,
            sig: "OVZ_tQw4GlXGg2X9zn1AIyNA6BGEAlJceQQIvYnzDAQLOO_ZbXT8PvVXtTsq4MWC3rOuTo1wO6TDxTm41x6FCw",
            header_bytes: 333,
        },
        // non-ascii-payload: the hash is over the raw bytes
        Vector {
            seed: SEED,
            account: "$G",
            subject: "agents.prompt.demo-agent.alice.example",
            payload: "{\"prompt\":\"grüße 🌍\"}".as_bytes(),
            nonce: "nonce-non-ascii-payload",
            name: None,
            sig: "91ZhWlzEUh-_fvePmp65078hme4BsSiTMDZHKm9RasgORvdPaBbt75trkc1OShmlXIISUiHeRexZKqkcmsNXBQ",
            header_bytes: 292,
        },
    ];
    for v in vectors {
        let mut signer = SenderSigner::new(v.seed, Account::new(v.account).unwrap()).unwrap();
        if let Some(name) = v.name {
            signer = signer.with_name(DisplayName::new(name).unwrap());
        }
        let ts = SenderTime::parse(B13_TS).unwrap();
        let nonce = Nonce::new(v.nonce).unwrap();
        let header = signer.sign(v.subject, ts, nonce, v.payload).unwrap();
        assert_eq!(header.sig.to_base64url(), v.sig, "{}", v.nonce);
        let value = header.encode();
        assert_eq!(value.len(), v.header_bytes, "{}", v.nonce);
        let expected = match v.name {
            Some(name) => format!(
                r#"{{"v":1,"account":"{}","user":"{}","name":"{name}","sub":"{}","ts":"{B13_TS}","nonce":"{}","sig":"{}"}}"#,
                v.account,
                signer.agent_id().user(),
                v.subject,
                v.nonce,
                v.sig
            ),
            None => format!(
                r#"{{"v":1,"account":"{}","user":"{}","sub":"{}","ts":"{B13_TS}","nonce":"{}","sig":"{}"}}"#,
                v.account,
                signer.agent_id().user(),
                v.subject,
                v.nonce,
                v.sig
            ),
        };
        assert_eq!(value, expected);
        let SenderHeader::Signed(received) = SenderHeader::decode(&value).unwrap() else {
            panic!("{}: expected a signed header", v.nonce)
        };
        received.verify_signature(v.payload).unwrap();
    }
}

#[test]
fn unsigned_claim_vectors() {
    // `unsigned-claim` and `unsigned-claim-no-name`: exactly v, account, user (, name).
    let with_name = SenderSigner::new(SEED, Account::new("$G").unwrap())
        .unwrap()
        .with_name(DisplayName::new("claude-code").unwrap())
        .claim()
        .encode();
    assert_eq!(
        with_name,
        r#"{"v":1,"account":"$G","user":"UCDUW5V44EBDBIK2FL4CTNDBQFNGBEZVJHSZGQVKRHASN4AV4IWPB5NT","name":"claude-code"}"#
    );
    assert_eq!(with_name.len(), 109);
    let without = SenderSigner::new(SEED, Account::new("ACME").unwrap())
        .unwrap()
        .claim()
        .encode();
    assert_eq!(
        without,
        r#"{"v":1,"account":"ACME","user":"UCDUW5V44EBDBIK2FL4CTNDBQFNGBEZVJHSZGQVKRHASN4AV4IWPB5NT"}"#
    );
    assert_eq!(without.len(), 90);
    let SenderHeader::Claimed(claim) = SenderHeader::decode(&with_name).unwrap() else {
        panic!("expected a claim")
    };
    assert_eq!(claim.encode(), with_name);
}

#[test]
fn header_classes_of_13_5_1() {
    let claim = format!(r#"{{"v":1,"account":"ACME","user":"{USER}"}}"#);
    // Absent: no header at all (§13.7 step 1).
    assert_eq!(SenderHeader::from_values([]), Ok(SenderHeader::Absent));
    assert!(SenderHeader::Absent.is_absent());
    // One header: decoded; two: malformed.
    assert!(matches!(
        SenderHeader::from_values([claim.as_str()]),
        Ok(SenderHeader::Claimed(_))
    ));
    assert_eq!(
        SenderHeader::from_values([claim.as_str(), claim.as_str()]),
        Err(MalformedSender::Repeated)
    );
    // Unknown `v`: treated as absent, whatever the other fields say.
    let v2 = SenderHeader::decode(r#"{"v":2,"who":"someone"}"#).unwrap();
    assert_eq!(v2, SenderHeader::UnknownVersion);
    assert!(v2.is_absent());
    assert_eq!(v2.agent_id(), None);
    // Unknown fields are ignored.
    let extra = format!(r#"{{"v":1,"account":"ACME","user":"{USER}","future":[1,2]}}"#);
    let SenderHeader::Claimed(c) = SenderHeader::decode(&extra).unwrap() else {
        panic!("expected a claim")
    };
    assert_eq!(c.id.to_string(), format!("ACME.{USER}"));
    // `sub`, `ts`, `nonce` without `sig`: still a claim.
    let partial = format!(
        r#"{{"v":1,"account":"ACME","user":"{USER}","sub":"a.b","ts":"{B13_TS}","nonce":"n"}}"#
    );
    assert!(matches!(
        SenderHeader::decode(&partial),
        Ok(SenderHeader::Claimed(_))
    ));
    // Fractional seconds are accepted (§13.5).
    let frac = B13_HEADER.replace(B13_TS, "2026-08-28T12:00:00.250Z");
    let SenderHeader::Signed(s) = SenderHeader::decode(&frac).unwrap() else {
        panic!("expected a signed header")
    };
    assert_eq!(s.ts.as_str(), "2026-08-28T12:00:00.250Z");
}

#[test]
fn malformed_headers_of_13_5_1() {
    use MalformedSender as M;
    let sig = B13_SIG;
    let cases: Vec<(String, MalformedSender)> = vec![
        ("not json".into(), M::NotJson),
        ("[1]".into(), M::NotAnObject(JsonKind::Array)),
        (
            format!(r#"{{"account":"ACME","user":"{USER}"}}"#),
            M::Missing("v"),
        ),
        (
            format!(r#"{{"v":"1","account":"ACME","user":"{USER}"}}"#),
            M::WrongType {
                field: "v",
                expected: JsonKind::Number,
                found: JsonKind::String,
            },
        ),
        (
            format!(r#"{{"v":1,"user":"{USER}"}}"#),
            M::Missing("account"),
        ),
        (r#"{"v":1,"account":"ACME"}"#.into(), M::Missing("user")),
        (
            format!(r#"{{"v":1,"account":7,"user":"{USER}"}}"#),
            M::WrongType {
                field: "account",
                expected: JsonKind::String,
                found: JsonKind::Number,
            },
        ),
        (
            format!(r#"{{"v":1,"account":"","user":"{USER}"}}"#),
            M::AgentId(AgentIdError::Account(AccountError::Empty)),
        ),
        (
            format!(r#"{{"v":1,"account":"ACME","user":"{USER}","name":"a\nb"}}"#),
            M::Name(NameError::ControlCharacter),
        ),
        (
            format!(r#"{{"v":1,"account":"ACME","user":"{USER}","sub":"a..b"}}"#),
            M::Subject,
        ),
        (
            format!(
                r#"{{"v":1,"account":"ACME","user":"{USER}","ts":"2026-08-28T12:00:00+00:00"}}"#
            ),
            M::Timestamp(TimestampError::Shape),
        ),
        (
            format!(r#"{{"v":1,"account":"ACME","user":"{USER}","ts":"2026-13-28T12:00:00Z"}}"#),
            M::Timestamp(TimestampError::OutOfRange),
        ),
        (
            format!(r#"{{"v":1,"account":"ACME","user":"{USER}","nonce":"a b"}}"#),
            M::Nonce(NonceError::Alphabet),
        ),
        (
            format!(r#"{{"v":1,"account":"ACME","user":"{USER}","nonce":""}}"#),
            M::Nonce(NonceError::Length(0)),
        ),
        (
            format!(r#"{{"v":1,"account":"ACME","user":"{USER}","sig":"AAAA"}}"#),
            M::Signature(SignatureError::Length(3)),
        ),
        (
            format!(r#"{{"v":1,"account":"ACME","user":"{USER}","sig":"{sig}=="}}"#),
            M::Signature(SignatureError::NotBase64Url),
        ),
        (
            format!(
                r#"{{"v":1,"account":"ACME","user":"{USER}","ts":"{B13_TS}","nonce":"n","sig":"{sig}"}}"#
            ),
            M::SignedWithout("sub"),
        ),
        (
            format!(
                r#"{{"v":1,"account":"ACME","user":"{USER}","sub":"a.b","nonce":"n","sig":"{sig}"}}"#
            ),
            M::SignedWithout("ts"),
        ),
        (
            format!(
                r#"{{"v":1,"account":"ACME","user":"{USER}","sub":"a.b","ts":"{B13_TS}","sig":"{sig}"}}"#
            ),
            M::SignedWithout("nonce"),
        ),
    ];
    for (value, want) in cases {
        assert_eq!(SenderHeader::decode(&value), Err(want), "{value}");
    }
}

#[test]
fn signature_binds_every_signed_field_but_not_name() {
    let SenderHeader::Signed(good) = SenderHeader::decode(B13_HEADER).unwrap() else {
        panic!("B.13 is a signed header")
    };
    good.verify_signature(B13_PAYLOAD).unwrap();

    // §13.6.1: each bound field, changed, breaks the signature.
    type Tamper = Box<dyn Fn(&mut SignedSender)>;
    let tamper: Vec<(&str, Tamper)> = vec![
        (
            "account",
            Box::new(|h| h.id = AgentId::from_parts("ACME", B13_USER).unwrap()),
        ),
        (
            "user",
            Box::new(|h| h.id = AgentId::from_parts(ACCOUNT, USER).unwrap()),
        ),
        (
            "sub",
            Box::new(|h| h.sub = "agents.prompt.other.alice.example".into()),
        ),
        (
            "ts",
            Box::new(|h| h.ts = SenderTime::parse("2026-08-28T12:00:01Z").unwrap()),
        ),
        (
            "nonce",
            Box::new(|h| h.nonce = Nonce::new("other").unwrap()),
        ),
    ];
    for (field, change) in tamper {
        let mut h = good.clone();
        change(&mut h);
        assert_eq!(
            h.verify_signature(B13_PAYLOAD),
            Err(VerifyError::BadSignature),
            "{field}"
        );
    }
    // The payload hash is bound too.
    assert_eq!(
        good.verify_signature(br#"{"prompt":"hellO"}"#),
        Err(VerifyError::BadSignature)
    );
    // §13.5: `name` is outside the signature.
    let mut renamed = good.clone();
    renamed.name = Some(DisplayName::new("someone else").unwrap());
    renamed.verify_signature(B13_PAYLOAD).unwrap();
    renamed.name = None;
    renamed.verify_signature(B13_PAYLOAD).unwrap();
}

#[test]
fn signer_stamps_second_precision_utc() {
    // 2026-08-28T12:00:00Z is 1_787_918_400 s after the epoch; the fraction is dropped.
    let now = SystemTime::UNIX_EPOCH + Duration::from_millis(1_787_918_400_750);
    let ts = SenderTime::from_system_time(now).unwrap();
    assert_eq!(ts.as_str(), B13_TS);
    assert_eq!(
        ts.system_time(),
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_787_918_400)
    );
    assert_eq!(SenderTime::parse(ts.as_str()).unwrap(), ts);
}

#[test]
fn only_user_seeds_sign() {
    // An account seed is a valid seed, but not one that may sign (§13.2.1).
    let account_seed = nkeys::KeyPair::new_from_raw(nkeys::KeyPairType::Account, [7; 32])
        .unwrap()
        .seed()
        .unwrap();
    assert!(matches!(
        SenderSigner::new(&account_seed, Account::new("$G").unwrap()),
        Err(nap_proto::identity::SeedError::NotUser)
    ));
    assert!(matches!(
        SenderSigner::new("SUnot-a-seed", Account::new("$G").unwrap()),
        Err(nap_proto::identity::SeedError::Invalid)
    ));
    // Debug never shows the seed.
    let debug = format!("{:?}", b13_signer());
    assert!(!debug.contains(SEED));
}

#[test]
fn display_name_and_nonce_limits() {
    assert!(DisplayName::new("x".repeat(64)).is_ok());
    assert_eq!(DisplayName::new("x".repeat(65)), Err(NameError::TooLong));
    // An emoji counts as two UTF-16 code units.
    assert_eq!(DisplayName::new("🤖".repeat(33)), Err(NameError::TooLong));
    assert!(Nonce::new("N".repeat(64)).is_ok());
    assert_eq!(Nonce::new("N".repeat(65)), Err(NonceError::Length(65)));
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    /// JSON objects made of the header's own keys with plausible and
    /// implausible values, so the decoder's field rules get exercised.
    fn headerish() -> impl Strategy<Value = String> {
        let key = prop_oneof![
            Just("v"),
            Just("account"),
            Just("user"),
            Just("name"),
            Just("sub"),
            Just("ts"),
            Just("nonce"),
            Just("sig"),
        ];
        let value = prop_oneof![
            Just("1".to_owned()),
            Just("2".to_owned()),
            Just("\"1\"".to_owned()),
            Just("null".to_owned()),
            Just(format!("\"{ACCOUNT}\"")),
            Just(format!("\"{USER}\"")),
            Just("\"$G\"".to_owned()),
            Just(format!("\"{B13_TS}\"")),
            Just(format!("\"{B13_SIG}\"")),
            Just(format!("\"{B13_SUBJECT}\"")),
            "\"[ -~]{0,70}\"",
        ];
        prop::collection::vec((key, value), 0..9).prop_map(|kvs| {
            let body: Vec<String> = kvs.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
            format!("{{{}}}", body.join(","))
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        #[test]
        fn decoders_never_panic(s in any::<String>(), h in headerish()) {
            let _ = AgentId::parse(&s);
            let _ = SenderHeader::decode(&s);
            // Whatever decodes re-encodes to a value that decodes the same way.
            match SenderHeader::decode(&h) {
                Ok(SenderHeader::Signed(signed)) => {
                    prop_assert_eq!(
                        SenderHeader::decode(&signed.encode()),
                        Ok(SenderHeader::Signed(signed.clone()))
                    );
                }
                Ok(SenderHeader::Claimed(claim)) => {
                    prop_assert_eq!(
                        SenderHeader::decode(&claim.encode()),
                        Ok(SenderHeader::Claimed(claim.clone()))
                    );
                }
                _ => {}
            }
        }

    }

    proptest! {
        // ed25519 in a debug build is slow; a few dozen keys' worth of inputs suffice.
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn signed_headers_round_trip_and_verify(
            nonce in "[A-Za-z0-9_-]{1,64}",
            name in proptest::option::of("[^\\p{Cc}\u{2028}\u{2029}]{0,20}"),
            secs in 0u64..253_402_300_799,
            sub in "[a-z0-9_-]{1,10}(\\.[a-z0-9*>_-]{1,10}){0,5}",
            payload in prop::collection::vec(any::<u8>(), 0..256),
        ) {
            let mut signer = SenderSigner::new(SEED, Account::new("$G").unwrap()).unwrap();
            if let Some(name) = name {
                signer = signer.with_name(DisplayName::new(name).unwrap());
            }
            let ts = SenderTime::from_system_time(SystemTime::UNIX_EPOCH + Duration::from_secs(secs)).unwrap();
            let header = signer.sign(sub, ts, Nonce::new(nonce).unwrap(), &payload).unwrap();
            let value = header.encode();
            // §13.5.1: one line, no whitespace between tokens.
            prop_assert!(!value.contains('\n') && !value.contains('\r'));
            let decoded = SenderHeader::decode(&value).unwrap();
            prop_assert_eq!(&decoded, &SenderHeader::Signed(header.clone()));
            prop_assert!(header.verify_signature(&payload).is_ok());
        }
    }
}
