//! The receiver's half of §13: classification and its codes (§13.7), the
//! acceptable-`sub` forms (§13.7.1), replay window and nonce set, stored
//! messages (§13.8), the endpoint requirement (§13.9), registration
//! signatures (§13.10), signed heartbeats (§13.11), and a connection's own
//! identity as read from the server or a JWT (§13.4).
#![allow(clippy::unwrap_used)]

use std::num::NonZeroUsize;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use nap_proto::identity::*;
use nap_proto::{AgentInfo, StatusCode};
use serde_json::json;

const SEED: &str = "SUAEJ6GDK6FSSB54LD45Q7W25AW7NUT7MVLBABIR5MIPFUTBW7ZNPK2KYE";
const ACCOUNT: &str = "AABYLMBR6Q2CDXTLGRQCFA2GP76BGCDF7NZF2OVHH4RQ7L3Y3TZWJDRL";
const OTHER_USER: &str = "UAWW24XPLGOX3R3JF4OZEZZ6RUXMB55DSWJCEFFSUDFBCKJD4MSCMQYI";
const SUBJECT: &str = "agents.prompt.echo.alice.demo";

fn t0() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

fn signer() -> SenderSigner {
    SenderSigner::new(SEED, Account::new(ACCOUNT).unwrap()).unwrap()
}

fn sign(sub: &str, at: SystemTime, nonce: &str, payload: &[u8]) -> String {
    signer()
        .sign(
            sub,
            SenderTime::from_system_time(at).unwrap(),
            Nonce::new(nonce).unwrap(),
            payload,
        )
        .unwrap()
        .encode()
}

fn code(r: &SenderRejection) -> u16 {
    r.status().as_u16()
}

#[test]
fn the_three_classes_of_13_7() {
    let mut v = SenderVerifier::default();
    // Step 1: no header, or an unknown `v`: absent.
    assert_eq!(v.classify(t0(), SUBJECT, [], b"x").unwrap(), Sender::Absent);
    let unknown = r#"{"v":2,"whatever":true}"#;
    assert_eq!(
        v.classify(t0(), SUBJECT, [unknown], b"x").unwrap(),
        Sender::Absent
    );
    // Step 2: malformed: 400.
    for bad in [
        "not json",
        r#"{"v":"1","account":"ACME","user":"UAWW24XPLGOX3R3JF4OZEZZ6RUXMB55DSWJCEFFSUDFBCKJD4MSCMQYI"}"#,
        r#"{"v":1,"account":"ACME"}"#,
    ] {
        let err = v.classify(t0(), SUBJECT, [bad], b"x").unwrap_err();
        assert_eq!(code(&err), 400, "{bad}");
        assert_eq!(err.description(), MALFORMED_DESCRIPTION_TEXT);
    }
    // Two headers are malformed too.
    let claim = SenderClaim::new(AgentId::from_parts("ACME", OTHER_USER).unwrap()).encode();
    let err = v
        .classify(t0(), SUBJECT, [claim.as_str(), claim.as_str()], b"x")
        .unwrap_err();
    assert_eq!(code(&err), 400);
    // Step 4: well formed without sig: claimed.
    let sender = v.classify(t0(), SUBJECT, [claim.as_str()], b"x").unwrap();
    assert_eq!(sender.class(), TrustClass::Claimed);
    assert_eq!(sender.verified_id(), None);
    assert_eq!(sender.to_string(), format!("claimed ACME.{OTHER_USER}"));
    // Step 3: signed and valid: verified.
    let header = sign(SUBJECT, t0(), "n-1", b"x");
    let sender = v.classify(t0(), SUBJECT, [header.as_str()], b"x").unwrap();
    assert_eq!(sender.class(), TrustClass::Verified);
    assert_eq!(sender.verified_id(), Some(signer().agent_id()));
    assert_eq!(
        sender.to_string(),
        format!("verified {}", signer().agent_id())
    );
}

const MALFORMED_DESCRIPTION_TEXT: &str = "malformed Agent-Sender header";

#[test]
fn every_failing_check_is_401_whatever_the_requirement() {
    let payload = br#"{"prompt":"hi"}"#;
    let cases: Vec<(&str, String, &str, &[u8], SystemTime)> = vec![
        // A different payload under the same header.
        (
            "payload",
            sign(SUBJECT, t0(), "a", payload),
            SUBJECT,
            b"{\"prompt\":\"other\"}",
            t0(),
        ),
        // Transplanted onto another agent's subject.
        (
            "transplant",
            sign(SUBJECT, t0(), "b", payload),
            "agents.prompt.echo.alice.other",
            payload,
            t0(),
        ),
        // Too old and too far ahead.
        (
            "stale",
            sign(SUBJECT, t0(), "c", payload),
            SUBJECT,
            payload,
            t0() + Duration::from_secs(31),
        ),
        (
            "ahead",
            sign(SUBJECT, t0() + Duration::from_secs(31), "d", payload),
            SUBJECT,
            payload,
            t0(),
        ),
    ];
    for (what, header, arrival, body, now) in cases {
        for requirement in [MinSenderTrust::Any, MinSenderTrust::Signed] {
            let mut v = SenderVerifier::default();
            let err = v
                .admit(now, arrival, [header.as_str()], body, requirement)
                .unwrap_err();
            assert_eq!(code(&err), 401, "{what} {requirement}");
            assert!(matches!(err, SenderRejection::Failed(_)), "{what}: {err}");
            assert_eq!(err.description(), "sender rejected");
        }
    }
    // A tampered signature byte.
    let header = sign(SUBJECT, t0(), "e", payload);
    let mut json: serde_json::Value = serde_json::from_str(&header).unwrap();
    let sig = json["sig"].as_str().unwrap().to_owned();
    let mut bytes = URL_SAFE_NO_PAD.decode(&sig).unwrap();
    bytes[0] ^= 1;
    json["sig"] = URL_SAFE_NO_PAD.encode(bytes).into();
    let tampered = json.to_string();
    let err = SenderVerifier::default()
        .classify(t0(), SUBJECT, [tampered.as_str()], payload)
        .unwrap_err();
    assert!(matches!(
        err,
        SenderRejection::Failed(VerificationFailure::Signature(VerifyError::BadSignature))
    ));
    // A swapped user under a valid signature.
    json = serde_json::from_str(&header).unwrap();
    json["user"] = OTHER_USER.into();
    let swapped = json.to_string();
    let err = SenderVerifier::default()
        .classify(t0(), SUBJECT, [swapped.as_str()], payload)
        .unwrap_err();
    assert_eq!(code(&err), 401);
    // The window's edge passes: exactly 30 s either way.
    let header = sign(SUBJECT, t0(), "f", payload);
    SenderVerifier::default()
        .classify(
            t0() + Duration::from_secs(30),
            SUBJECT,
            [header.as_str()],
            payload,
        )
        .unwrap();
}

#[test]
fn replays_are_refused_by_user_and_nonce() {
    let mut v = SenderVerifier::default();
    let h1 = sign(SUBJECT, t0(), "same", b"one");
    v.classify(t0(), SUBJECT, [h1.as_str()], b"one").unwrap();
    // The same header again.
    let err = v
        .classify(t0(), SUBJECT, [h1.as_str()], b"one")
        .unwrap_err();
    assert!(matches!(
        err,
        SenderRejection::Failed(VerificationFailure::Replayed { .. })
    ));
    // The same nonce on a fresh signature over another payload: still a replay.
    let h2 = sign(SUBJECT, t0(), "same", b"two");
    assert_eq!(
        code(
            &v.classify(t0(), SUBJECT, [h2.as_str()], b"two")
                .unwrap_err()
        ),
        401
    );
    // Another user may use the same nonce.
    let other = SenderSigner::new(
        &String::from_utf8(nkeys::KeyPair::new_user().seed().unwrap().into_bytes()).unwrap(),
        Account::new("ACME").unwrap(),
    )
    .unwrap();
    let h3 = other
        .sign(
            SUBJECT,
            SenderTime::from_system_time(t0()).unwrap(),
            Nonce::new("same").unwrap(),
            b"x",
        )
        .unwrap()
        .encode();
    v.classify(t0(), SUBJECT, [h3.as_str()], b"x").unwrap();
    // A forged header does not use up the nonce of a genuine one.
    let mut forged: serde_json::Value =
        serde_json::from_str(&sign(SUBJECT, t0(), "fresh", b"p")).unwrap();
    forged["sig"] = URL_SAFE_NO_PAD.encode([7u8; 64]).into();
    let forged = forged.to_string();
    assert!(v.classify(t0(), SUBJECT, [forged.as_str()], b"p").is_err());
    let genuine = sign(SUBJECT, t0(), "fresh", b"p");
    v.classify(t0(), SUBJECT, [genuine.as_str()], b"p").unwrap();
    // An entry lives until ts + window: a header stamped 29 s ahead is
    // still caught 31 s after it first arrived.
    let ahead = sign(SUBJECT, t0() + Duration::from_secs(29), "ahead", b"p");
    v.classify(t0(), SUBJECT, [ahead.as_str()], b"p").unwrap();
    assert!(
        v.classify(
            t0() + Duration::from_secs(31),
            SUBJECT,
            [ahead.as_str()],
            b"p"
        )
        .is_err()
    );
}

#[test]
fn the_nonce_set_is_bounded_and_counts_evictions() {
    let mut set = NonceSet::new(3);
    let exp = |s| t0() + Duration::from_secs(s);
    assert!(set.insert(t0(), "U1", "a", exp(10)));
    assert!(set.insert(t0(), "U1", "b", exp(20)));
    assert!(set.insert(t0(), "U1", "c", exp(30)));
    assert!(!set.insert(t0(), "U1", "a", exp(10)));
    assert!(set.insert(t0(), "U1", "d", exp(40)));
    assert_eq!(set.len(), 3);
    assert_eq!(set.evicted(), 1);
    // The earliest-expiring entry went.
    assert!(!set.contains(t0(), "U1", "a"));
    assert!(set.contains(t0(), "U1", "b"));
    // Expired entries leave without eviction.
    assert!(!set.contains(exp(25), "U1", "b"));
    assert_eq!(set.len(), 2);
    assert_eq!(set.evicted(), 1);
}

#[test]
fn acceptable_sub_forms_of_13_7_1() {
    let acct = Account::new("CALLERS").unwrap();
    // (a) equality only, by default.
    let policy = SubjectPolicy::default();
    policy.check(SUBJECT, SUBJECT, &acct).unwrap();
    assert!(
        policy
            .check(SUBJECT, "agents.prompt.echo.alice.*", &acct)
            .is_err()
    );
    assert!(
        policy
            .check("agents.prompt.echo.alice", SUBJECT, &acct)
            .is_err()
    );

    // (b) an export that inserts the caller's account at token 3.
    let policy = SubjectPolicy {
        account_token_position: NonZeroUsize::new(3),
        ..SubjectPolicy::default()
    };
    let arrival = "agents.prompt.CALLERS.echo.alice.demo";
    policy.check(SUBJECT, arrival, &acct).unwrap();
    policy.check(arrival, arrival, &acct).unwrap();
    // The inserted token must be the header's account, in every form.
    let other = Account::new("OTHERS").unwrap();
    assert!(matches!(
        policy.check(arrival, arrival, &other),
        Err(SubjectMismatch::AccountToken { position: 3, .. })
    ));
    // A position past the end fails.
    let far = SubjectPolicy {
        account_token_position: NonZeroUsize::new(9),
        ..SubjectPolicy::default()
    };
    assert!(matches!(
        far.check(SUBJECT, SUBJECT, &acct),
        Err(SubjectMismatch::PositionBeyondSubject {
            position: 9,
            tokens: 5
        })
    ));

    // (c) an import that renamed `agents.hb` to `remote.hb`: the receiver
    // rebuilds the published subject and compares for equality.
    let policy = SubjectPolicy {
        renames: vec![SubjectRename::new("remote.hb", "agents.hb").unwrap()],
        ..SubjectPolicy::default()
    };
    policy
        .check(
            "agents.hb.echo.alice.demo",
            "remote.hb.echo.alice.demo",
            &acct,
        )
        .unwrap();
    // Same tail, another verb: not acceptable.
    assert!(
        policy
            .check(
                "agents.prompt.echo.alice.demo",
                "remote.hb.echo.alice.demo",
                &acct
            )
            .is_err()
    );
    assert!(SubjectRename::new("remote.*", "agents.hb").is_none());
}

#[test]
fn the_requirement_of_13_9() {
    assert_eq!(
        MinSenderTrust::from_declared(&json!("any")),
        MinSenderTrust::Any
    );
    assert_eq!(
        MinSenderTrust::from_declared(&json!("signed")),
        MinSenderTrust::Signed
    );
    // Unknown values, of any type, are `signed`.
    for unknown in [
        json!("verified"),
        json!("ANY"),
        json!(true),
        json!(null),
        json!(1),
    ] {
        assert_eq!(
            MinSenderTrust::from_declared(&unknown),
            MinSenderTrust::Signed,
            "{unknown}"
        );
    }
    assert!("verified".parse::<MinSenderTrust>().is_err());

    let mut v = SenderVerifier::default();
    let claim = SenderClaim::new(AgentId::from_parts("ACME", OTHER_USER).unwrap()).encode();
    for values in [vec![], vec![claim.as_str()]] {
        let err = v
            .admit(t0(), SUBJECT, values, b"x", MinSenderTrust::Signed)
            .unwrap_err();
        assert_eq!(code(&err), 401);
        assert_eq!(err.description(), "signature required");
        assert_eq!(err.to_service_error().code.as_u16(), 401);
    }
    // Acceptance refusals: 403 for a verified sender, 401 otherwise (§13.7.3).
    assert_eq!(
        SenderRejection::NotAccepted(TrustClass::Verified).status(),
        StatusCode::Forbidden
    );
    assert_eq!(
        SenderRejection::NotAccepted(TrustClass::Claimed).status(),
        StatusCode::Unauthorized
    );
    assert_eq!(
        SenderRejection::NotAccepted(TrustClass::Absent).status(),
        StatusCode::Unauthorized
    );
}

#[test]
fn stored_messages_of_13_8_skip_window_and_nonces() {
    let header = sign("orders.new", t0(), "n", b"record");
    let policy = SubjectPolicy::default();
    // Years later, twice: authorship still verifies.
    for _ in 0..2 {
        let v = verify_stored("orders.new", [header.as_str()], b"record", &policy).unwrap();
        assert_eq!(v.id(), signer().agent_id());
    }
    assert!(matches!(
        verify_stored("orders.other", [header.as_str()], b"record", &policy),
        Err(StoredError::Subject(_))
    ));
    assert!(matches!(
        verify_stored("orders.new", [header.as_str()], b"changed", &policy),
        Err(StoredError::Signature(_))
    ));
    assert!(matches!(
        verify_stored("orders.new", [], b"record", &policy),
        Err(StoredError::NotSigned(TrustClass::Absent))
    ));
}

fn info_record(metadata: serde_json::Value, subject: &str) -> AgentInfo {
    AgentInfo::from_value(json!({
        "name": "agents", "id": "ID1", "version": "1.0.0",
        "metadata": metadata,
        "endpoints": [{"name": "prompt", "subject": subject, "queue_group": "agents",
                       "metadata": {"max_payload": "1MB", "attachments_ok": "true", "min_sender_trust": "signed"}}]
    }))
    .unwrap()
}

#[test]
fn registration_signature_of_13_10() {
    let reg = RegistrationIdentity::sign(&signer(), "echo", "alice", SUBJECT).unwrap();
    // The input: six LF-terminated lines.
    let input = id_sig_input(signer().agent_id(), "echo", "alice", SUBJECT);
    assert_eq!(
        String::from_utf8(input).unwrap(),
        format!(
            "AGENT-ID-V1\n{}\n{ACCOUNT}\necho\nalice\n{SUBJECT}\n",
            signer().agent_id().user()
        )
    );
    let mut metadata = json!({"agent": "echo", "owner": "alice", "protocol_version": "0.3"});
    for (k, val) in reg.metadata() {
        metadata[k] = val.into();
    }
    let info = info_record(metadata.clone(), SUBJECT);
    assert_eq!(
        info.identity,
        RegisteredIdentity::Verified(signer().agent_id().clone())
    );
    assert_eq!(info.prompt.min_sender_trust, Some(MinSenderTrust::Signed));
    assert_eq!(
        info.identity.to_string(),
        format!("verified {}", signer().agent_id())
    );

    // Another prompt subject, owner or agent: the same id_sig is a claim.
    let moved = info_record(metadata.clone(), "agents.prompt.echo.alice.elsewhere");
    assert!(matches!(
        moved.identity,
        RegisteredIdentity::Claimed {
            reason: ClaimReason::BadSignature(_),
            ..
        }
    ));
    let mut other_owner = metadata.clone();
    other_owner["owner"] = "mallory".into();
    assert!(
        info_record(other_owner, SUBJECT)
            .identity
            .verified()
            .is_none()
    );
    // No id_sig: claimed; nothing: undeclared; half: malformed.
    let mut unsigned = metadata.clone();
    unsigned.as_object_mut().unwrap().remove("id_sig");
    let unsigned = info_record(unsigned, SUBJECT);
    assert!(matches!(
        unsigned.identity,
        RegisteredIdentity::Claimed {
            reason: ClaimReason::Unsigned,
            ..
        }
    ));
    assert_eq!(unsigned.identity.class(), TrustClass::Claimed);
    let bare = info_record(
        json!({"agent": "echo", "owner": "alice", "protocol_version": "0.3"}),
        SUBJECT,
    );
    assert_eq!(bare.identity, RegisteredIdentity::Undeclared);
    let mut half = metadata;
    half.as_object_mut().unwrap().remove("account");
    assert!(matches!(
        info_record(half, SUBJECT).identity,
        RegisteredIdentity::Malformed(IdentityMetadataError::Missing("account"))
    ));
    // An id_sig never passes as an Agent-Sender sig, nor the reverse: the tags differ.
    assert_ne!(ID_SIG_TAG, SENDER_SIGNED_INPUT_TAG);
}

#[test]
fn signed_heartbeats_of_13_11() {
    let subject = "agents.hb.echo.alice.demo";
    let beacon = nap_proto::Beacon {
        agent: "echo".into(),
        owner: "alice".into(),
        session: None,
        instance_id: "INST".into(),
        interval: nap_proto::IntervalSecs::new(30.0).unwrap(),
        declared: None,
    };
    let beat = beacon.beat(t0()).unwrap();
    let payload = beat.encode();
    let header = sign_heartbeat(
        &signer(),
        subject,
        &beat,
        &payload,
        Nonce::new("hb1").unwrap(),
    )
    .unwrap();
    // ts is the beat's own.
    assert_eq!(header.ts.as_str(), beat.ts);
    let value = header.encode();
    let mut v = SenderVerifier::default();
    let sender = v
        .classify(t0(), subject, [value.as_str()], &payload)
        .unwrap();
    assert_eq!(sender.verified_id(), Some(signer().agent_id()));
    // A heartbeat signature never verifies as a prompt.
    assert!(
        SenderVerifier::default()
            .classify(
                t0(),
                "agents.prompt.echo.alice.demo",
                [value.as_str()],
                &payload
            )
            .is_err()
    );
}

#[test]
fn own_identity_from_the_server_of_13_4() {
    let reply = |user: &str, account: &str| {
        json!({"data": {"user": user, "account": account, "permissions": {}}, "server": {"name": "x"}})
            .to_string()
    };
    assert_eq!(
        from_user_info(reply(OTHER_USER, "$G").as_bytes()),
        OwnIdentity::Known(AgentId::from_parts("$G", OTHER_USER).unwrap())
    );
    assert_eq!(
        from_user_info(reply(OTHER_USER, ACCOUNT).as_bytes())
            .agent_id()
            .unwrap()
            .to_string(),
        format!("{ACCOUNT}.{OTHER_USER}")
    );
    assert_eq!(
        from_user_info(reply("", "$G").as_bytes()),
        OwnIdentity::None(NoIdentity::Anonymous)
    );
    assert_eq!(
        from_user_info(reply("alice", "$G").as_bytes()),
        OwnIdentity::None(NoIdentity::NotNkeyUser("alice".into()))
    );
    assert_eq!(
        from_user_info(reply("[REDACTED]", "$G").as_bytes()),
        OwnIdentity::None(NoIdentity::NotNkeyUser("[REDACTED]".into()))
    );
    assert_eq!(
        from_user_info(reply(OTHER_USER, "acme corp").as_bytes()),
        OwnIdentity::None(NoIdentity::UnrepresentableAccount("acme corp".into()))
    );
    assert!(matches!(
        from_user_info(b"{\"error\":{\"code\":503,\"description\":\"nope\"}}"),
        OwnIdentity::Unknown(UnknownIdentity::BadReply(_))
    ));
    assert!(matches!(
        from_user_info(b"garbage"),
        OwnIdentity::Unknown(_)
    ));
}

fn fake_jwt(claims: serde_json::Value) -> String {
    let part = |v: serde_json::Value| URL_SAFE_NO_PAD.encode(v.to_string());
    format!(
        "{}.{}.{}",
        part(json!({"typ": "JWT", "alg": "ed25519-nkey"})),
        part(claims),
        "c2ln"
    )
}

#[test]
fn own_identity_from_a_jwt_of_13_4() {
    let signing_key = "ADQ4TWUMKFSZ3MVWUVVNVQ2NGV6UR2CDSE4ETNP2DEQCNXXKANWJOFAU";
    // `iss` is the account...
    let jwt = fake_jwt(json!({"sub": OTHER_USER, "iss": ACCOUNT, "nats": {"type": "user"}}));
    assert_eq!(
        identity_from_jwt(&jwt).unwrap().to_string(),
        format!("{ACCOUNT}.{OTHER_USER}")
    );
    // ... unless a signing key issued it.
    let jwt = fake_jwt(
        json!({"sub": OTHER_USER, "iss": signing_key, "nats": {"issuer_account": ACCOUNT}}),
    );
    assert_eq!(identity_from_jwt(&jwt).unwrap().account().as_str(), ACCOUNT);
    assert!(identity_from_jwt("a.b").is_err());
    assert!(matches!(
        identity_from_jwt(&fake_jwt(json!({"iss": ACCOUNT}))),
        Err(JwtError::NoSubject)
    ));

    let creds = format!(
        "-----BEGIN NATS USER JWT-----\n{jwt}\n------END NATS USER JWT------\n\n************************* IMPORTANT *************************\nNKEY Seed printed below.\n\n-----BEGIN USER NKEY SEED-----\n{SEED}\n------END USER NKEY SEED------\n"
    );
    let parsed = Credentials::parse(&creds).unwrap();
    assert_eq!(parsed.jwt, jwt);
    assert_eq!(parsed.seed, SEED);
    assert!(!format!("{parsed:?}").contains(SEED));
    assert_eq!(Credentials::parse("nothing"), Err(CredentialsError::NoJwt));
}

#[test]
fn header_bytes_count_toward_max_payload() {
    // Appendix B.13: a 373-byte value makes a 401-byte header block.
    let value = "x".repeat(373);
    assert_eq!(header_wire_len(&value), 401);
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1_000))]

        /// Arbitrary bytes, read as the text a header value or subject
        /// token would carry, never make a reader panic.
        #[test]
        fn readers_never_panic_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let text = String::from_utf8_lossy(&bytes);
            let _ = AgentId::parse(&text);
            let _ = SenderHeader::decode(&text);
            let _ = from_user_info(&bytes);
            let _ = identity_from_jwt(&text);
            let _ = Credentials::parse(&text);
            let mut verifier = SenderVerifier::default();
            let _ = verifier.classify(t0(), SUBJECT, [text.as_ref()], &bytes);
            let _ = verify_stored(SUBJECT, [text.as_ref()], &bytes, &SubjectPolicy::default());
            let metadata = json!({"user_nkey": text, "account": text, "id_sig": text});
            let _ = RegisteredIdentity::read(metadata.as_object().unwrap(), "a", "o", SUBJECT);
        }
    }
}
