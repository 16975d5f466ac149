//! Reading the suite's JUnit reports back: schema validation with
//! `xmllint` against the vendored Jenkins xUnit schema, and the test cases
//! parsed with quick-xml.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use quick_xml::Reader;
use quick_xml::events::Event;

/// One `testcase` of a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JunitCase {
    /// The case id, the name's first word.
    pub id: String,
    /// The whole name.
    pub name: String,
    /// `pass`, `fail` or `skip`.
    pub outcome: String,
    /// The failure's text (the evidence), or the skip's message.
    pub detail: String,
}

/// The vendored schema (see `tests/fixtures/README.md`).
pub fn schema() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/junit-10.xsd")
}

/// Validates `path` against the schema with `xmllint` (panicking, naming
/// `cargo xtask setup`, when xmllint is missing: this test never skips)
/// and returns its test cases.
pub fn check(path: &Path) -> Vec<JunitCase> {
    let out = std::process::Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(schema())
        .arg(path)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run xmllint ({e}); `cargo xtask setup` installs it (apt: libxml2-utils)")
        });
    assert!(
        out.status.success(),
        "{} does not validate against junit-10.xsd: {}\n{}",
        path.display(),
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(path).unwrap_or_default()
    );
    parse(&std::fs::read_to_string(path).unwrap())
}

/// The test cases of a JUnit document, in order; asserts there is exactly
/// one testsuite.
pub fn parse(xml: &str) -> Vec<JunitCase> {
    let mut reader = Reader::from_str(xml);
    let mut cases: Vec<JunitCase> = Vec::new();
    let mut suites = 0;
    let mut in_failure = false;
    loop {
        match reader.read_event().unwrap() {
            Event::Start(e) | Event::Empty(e) if e.name().as_ref() == "testsuite" => suites += 1,
            ev @ (Event::Start(_) | Event::Empty(_)) => {
                let (e, is_start) = match &ev {
                    Event::Start(e) => (e.clone(), true),
                    Event::Empty(e) => (e.clone(), false),
                    _ => unreachable!(),
                };
                let attr = |name: &str| {
                    e.try_get_attribute(name)
                        .unwrap()
                        .map(|a| {
                            a.normalized_value(quick_xml::XmlVersion::Explicit1_0)
                                .unwrap()
                                .into_owned()
                        })
                        .unwrap_or_default()
                };
                match e.name().as_ref() {
                    "testcase" => {
                        let name = attr("name");
                        cases.push(JunitCase {
                            id: name
                                .split_whitespace()
                                .next()
                                .unwrap_or_default()
                                .to_owned(),
                            name,
                            outcome: "pass".to_owned(),
                            detail: String::new(),
                        });
                    }
                    "failure" => {
                        let case = cases.last_mut().expect("failure outside a testcase");
                        case.outcome = "fail".to_owned();
                        in_failure = is_start;
                    }
                    "skipped" => {
                        let case = cases.last_mut().expect("skipped outside a testcase");
                        case.outcome = "skip".to_owned();
                        case.detail = attr("message");
                    }
                    _ => {}
                }
            }
            Event::Text(t) if in_failure => {
                let case = cases.last_mut().unwrap();
                case.detail.push_str(&t.xml10_content());
            }
            Event::GeneralRef(r) if in_failure => {
                let case = cases.last_mut().unwrap();
                if let Some(c) = r.resolve_char_ref().unwrap() {
                    case.detail.push(c);
                    continue;
                }
                let name = r.xml10_content();
                case.detail.push_str(match name.as_ref() {
                    "lt" => "<",
                    "gt" => ">",
                    "amp" => "&",
                    "quot" => "\"",
                    "apos" => "'",
                    other => panic!("unexpected entity &{other};"),
                });
            }
            Event::End(e) if e.name().as_ref() == "failure" => in_failure = false,
            Event::Eof => break,
            _ => {}
        }
    }
    assert_eq!(suites, 1, "one testsuite per run");
    cases
}

/// Each testcase agrees with the same run's JSON report: same ids in the
/// same order, same outcome; a failure's text carries the reason and the
/// evidence's labels, a skip's message is the reason.
pub fn assert_matches_json(cases: &[JunitCase], report: &serde_json::Value) {
    let verdicts = report["verdicts"].as_array().unwrap();
    assert_eq!(cases.len(), verdicts.len());
    for (case, v) in cases.iter().zip(verdicts) {
        assert_eq!(case.id, v["id"].as_str().unwrap());
        let section = v["section"].as_str().unwrap();
        let level = v["level"].as_str().unwrap();
        assert!(
            case.name.contains(section) && case.name.contains(level),
            "{}: the name carries section and level",
            case.name
        );
        assert_eq!(case.outcome, v["outcome"].as_str().unwrap(), "{}", case.id);
        let reason = v["reason"].as_str().unwrap();
        match case.outcome.as_str() {
            "fail" => {
                assert!(case.detail.contains(reason), "{}: {}", case.id, case.detail);
                for e in v["evidence"].as_array().unwrap() {
                    let label = e["label"].as_str().unwrap();
                    assert!(case.detail.contains(label), "{}: evidence {label}", case.id);
                }
            }
            "skip" => assert_eq!(case.detail, reason, "{}", case.id),
            _ => {}
        }
    }
}
