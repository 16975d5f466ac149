//! Reports for CI: JUnit XML for test-report views, Markdown for a pull
//! request comment or `$GITHUB_STEP_SUMMARY`.
//!
//! A run is one JUnit `testsuite` (inside `testsuites`), each case one
//! `testcase` named `ID §SECTION LEVEL: rule`; a failed case (any level)
//! carries a `failure` whose text is the wire evidence, a skipped one a
//! `skipped` with its reason. The XML is what the Jenkins xUnit plugin's
//! `junit-10.xsd` accepts, the schema GitLab, GitHub test-report actions
//! and Jenkins read (the suite's tests validate it against that schema).

use std::fmt::Write as _;
use std::io;
use std::time::{Duration, SystemTime};

use quick_xml::Writer;
use quick_xml::escape::partial_escape;
use quick_xml::events::{BytesDecl, BytesText, Event};

use crate::case::{Evidence, Outcome, Verdict};
use crate::report::Report;

/// What the report files describe besides the verdicts.
#[derive(Debug, Clone)]
pub struct RunInfo {
    /// The mode: `agent` or `caller` (the suite's and class names).
    pub mode: &'static str,
    /// How long the run took.
    pub duration: Duration,
    /// When it started.
    pub started: SystemTime,
}

impl RunInfo {
    /// A run of `mode` that started at `started` and took `duration`.
    pub fn new(mode: &'static str, started: SystemTime, duration: Duration) -> Self {
        RunInfo {
            mode,
            duration,
            started,
        }
    }
}

/// Replaces the characters XML 1.0 cannot carry (controls other than tab,
/// newline and carriage return) with `\u{..}` escapes, so any wire body
/// can be quoted as evidence.
fn xml_safe(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let allowed = matches!(c, '\t' | '\n' | '\r')
            || ('\u{20}'..='\u{D7FF}').contains(&c)
            || ('\u{E000}'..='\u{FFFD}').contains(&c)
            || c >= '\u{10000}';
        if allowed {
            out.push(c);
        } else {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        }
    }
    out
}

/// The evidence of one verdict as plain text: each exchange's label, its
/// messages with their times, its notes.
pub fn evidence_text(evidence: &[Evidence]) -> String {
    let mut out = String::new();
    for e in evidence {
        let _ = writeln!(out, "{}", e.label);
        for m in &e.messages {
            let _ = writeln!(out, "  {:>6} ms  {}  {}", m.at_ms, m.subject, m.short());
        }
        for n in &e.notes {
            let _ = writeln!(out, "  {n}");
        }
    }
    out
}

/// The test case name: id, section, level and rule.
fn case_name(v: &Verdict) -> String {
    format!(
        "{} {} {}: {}",
        v.case.id, v.case.section, v.case.level, v.case.rule
    )
}

impl Report {
    /// The report as a JUnit XML document: one `testsuite`, one
    /// `testcase` per case.
    pub fn junit(&self, run: &RunInfo) -> String {
        // Writing to a Vec cannot fail.
        let bytes = self.write_junit(run).unwrap_or_default();
        String::from_utf8(bytes).unwrap_or_default() // ok: quick-xml writes the UTF-8 it is given
    }

    fn write_junit(&self, run: &RunInfo) -> io::Result<Vec<u8>> {
        let s = self.summary();
        let suite = format!("nap-conformance {}", run.mode);
        let classname = format!("nap-conformance.{}", run.mode);
        let time = format!("{:.3}", run.duration.as_secs_f64());
        let tests = self.verdicts.len().to_string();
        let failures = s.fail.to_string();
        let skipped = s.skip.to_string();
        let timestamp = nap_proto::utc_timestamp(run.started).unwrap_or_default();
        let target = xml_safe(&self.target);
        let compliant = self.is_compliant().to_string();
        let must_fail = s.must_fail.to_string();

        let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
        w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
        w.create_element("testsuites")
            .with_attributes([
                ("name", "nap-conformance"),
                ("tests", tests.as_str()),
                ("failures", failures.as_str()),
                ("errors", "0"),
                ("time", time.as_str()),
            ])
            .write_inner_content(|w| {
                w.create_element("testsuite")
                    .with_attributes([
                        ("name", suite.as_str()),
                        ("tests", tests.as_str()),
                        ("failures", failures.as_str()),
                        ("errors", "0"),
                        ("skipped", skipped.as_str()),
                        ("time", time.as_str()),
                        ("timestamp", timestamp.as_str()),
                    ])
                    .write_inner_content(|w| {
                        w.create_element("properties").write_inner_content(|w| {
                            for (name, value) in [
                                ("target", target.as_str()),
                                ("compliant", compliant.as_str()),
                                ("must_failures", must_fail.as_str()),
                                ("protocol_version", "0.3"),
                            ] {
                                w.create_element("property")
                                    .with_attributes([("name", name), ("value", value)])
                                    .write_empty()?;
                            }
                            Ok(())
                        })?;
                        for v in &self.verdicts {
                            write_case(w, v, &classname)?;
                        }
                        Ok(())
                    })?;
                Ok(())
            })?;
        let mut bytes = w.into_inner();
        bytes.push(b'\n');
        Ok(bytes)
    }

    /// The report as Markdown: a verdict line, the counts, the table of
    /// cases, and the evidence of each failed case folded away.
    pub fn markdown(&self, run: &RunInfo) -> String {
        let s = self.summary();
        let mut out = String::new();
        let verdict = if self.is_compliant() {
            "✅ compliant"
        } else {
            "❌ NOT compliant"
        };
        let _ = writeln!(out, "### nap conformance ({}): {verdict}", run.mode);
        let _ = writeln!(out);
        let _ = writeln!(out, "Target: `{}`", md_code(&self.target));
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "**{} passed, {} failed ({} MUST), {} skipped** in {:.1} s",
            s.pass,
            s.fail,
            s.must_fail,
            s.skip,
            run.duration.as_secs_f64()
        );
        let _ = writeln!(out);
        let _ = writeln!(out, "| Case | § | Level | Result | Reason |");
        let _ = writeln!(out, "|------|---|-------|--------|--------|");
        for v in &self.verdicts {
            let result = match v.outcome {
                Outcome::Pass => "pass",
                Outcome::Fail => "**FAIL**",
                Outcome::Skip => "skip",
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {result} | {} |",
                v.case.id,
                md_cell(v.case.section.trim_start_matches('§')),
                v.case.level,
                md_cell(&v.reason)
            );
        }
        let failed: Vec<&Verdict> = self
            .verdicts
            .iter()
            .filter(|v| v.outcome == Outcome::Fail)
            .collect();
        for v in failed {
            let _ = writeln!(out);
            let _ = writeln!(
                out,
                "<details><summary>{} ({} {}): {}</summary>",
                v.case.id,
                v.case.section,
                v.case.level,
                html_text(v.case.rule)
            );
            let _ = writeln!(out);
            let _ = writeln!(out, "{}", md_cell(&v.reason));
            let _ = writeln!(out);
            let _ = writeln!(out, "```");
            let _ = write!(out, "{}", evidence_text(&v.evidence).replace("```", "'''"));
            let _ = writeln!(out, "```");
            let _ = writeln!(out);
            let _ = writeln!(out, "</details>");
        }
        out
    }
}

fn write_case(w: &mut Writer<Vec<u8>>, v: &Verdict, classname: &str) -> io::Result<()> {
    let name = xml_safe(&case_name(v));
    let case = w
        .create_element("testcase")
        .with_attributes([("name", name.as_str()), ("classname", classname)]);
    let reason = xml_safe(&v.reason);
    match v.outcome {
        Outcome::Pass => {
            case.write_empty()?;
        }
        Outcome::Skip => {
            case.write_inner_content(|w| {
                w.create_element("skipped")
                    .with_attribute(("message", reason.as_str()))
                    .write_empty()?;
                Ok(())
            })?;
        }
        Outcome::Fail => {
            let level = v.case.level.to_string();
            let text = xml_safe(&format!(
                "{} ({} {}): {}\n{}\n\n{}",
                v.case.id,
                v.case.section,
                v.case.level,
                v.case.rule,
                v.reason,
                evidence_text(&v.evidence)
            ));
            case.write_inner_content(|w| {
                w.create_element("failure")
                    .with_attributes([("message", reason.as_str()), ("type", level.as_str())])
                    .write_text_content(BytesText::from_escaped(partial_escape(&text)))?;
                Ok(())
            })?;
        }
    }
    Ok(())
}

/// Text for a Markdown table cell: one line, pipes escaped.
fn md_cell(text: &str) -> String {
    html_text(&text.replace(['\n', '\r'], " ")).replace('|', "\\|")
}

/// Text inside backticks: no backticks of its own.
fn md_code(text: &str) -> String {
    text.replace('`', "'")
}

/// Text safe between HTML tags (`<details>` content is HTML).
fn html_text(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::case::WireMessage;
    use crate::catalogue::{AGENT_CASES, HB_001, REQ_006, STR_001};
    use crate::report::Findings;

    fn report() -> Report {
        let mut f = Findings::new();
        f.pass(HB_001, "beats", vec![]);
        f.fail(
            STR_001,
            "no ack <in> the \"stream\" | twice",
            vec![Evidence::messages(
                "request: plain text",
                vec![WireMessage::new(
                    "agents.prompt.a.o.n",
                    None,
                    None,
                    b"hi\x01there",
                    0,
                )],
            )],
        );
        f.skip(REQ_006, "not applicable");
        f.finish("agents.prompt.a.o.n", AGENT_CASES)
    }

    fn run() -> RunInfo {
        RunInfo::new(
            "agent",
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
            Duration::from_millis(1234),
        )
    }

    #[test]
    fn junit_has_one_case_per_verdict_and_escapes_what_it_quotes() {
        let xml = report().junit(&run());
        assert_eq!(xml.matches("<testcase ").count(), AGENT_CASES.len());
        assert_eq!(xml.matches("<testsuite ").count(), 1);
        assert_eq!(xml.matches("<failure ").count(), 1);
        assert!(
            xml.contains("STR-001 §6.4 MUST: every accepted stream"),
            "{xml}"
        );
        assert!(xml.contains("hi\\u{1}there"), "{xml}");
        assert!(
            xml.contains("no ack &lt;in&gt; the &quot;stream&quot;"),
            "{xml}"
        );
        assert!(xml.contains(r#"time="1.234""#), "{xml}");
        assert!(!xml.contains('\u{1}'));
    }

    #[test]
    fn markdown_tables_every_case_and_folds_the_evidence_of_failures() {
        let md = report().markdown(&run());
        assert!(
            md.starts_with("### nap conformance (agent): ❌ NOT compliant"),
            "{md}"
        );
        assert!(
            md.contains(
                "| STR-001 | 6.4 | MUST | **FAIL** | no ack &lt;in&gt; the \"stream\" \\| twice |"
            ),
            "{md}"
        );
        assert_eq!(md.matches("<details>").count(), 1);
        assert_eq!(
            md.lines().filter(|l| l.starts_with("| ")).count(),
            AGENT_CASES.len() + 1
        );
    }
}
