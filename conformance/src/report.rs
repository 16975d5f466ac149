//! Collecting verdicts and printing them: a table for people, JSON for tools.

use std::fmt::Write as _;

use serde::Serialize;

use crate::case::{Case, Evidence, Level, Outcome, Verdict};

/// Verdicts accumulated while a run observes the wire.
///
/// A case may be judged several times (say, once per stream); the verdicts
/// merge: any failure fails the case, a pass beats a skip, and the evidence
/// of every judgement is kept.
#[derive(Debug, Default)]
pub struct Findings {
    verdicts: Vec<Verdict>,
}

impl Findings {
    /// No verdicts yet.
    pub fn new() -> Self {
        Findings::default()
    }

    /// Records one judgement of `case`.
    pub fn record(
        &mut self,
        case: Case,
        outcome: Outcome,
        reason: impl Into<String>,
        evidence: Vec<Evidence>,
    ) {
        let reason = reason.into();
        tracing::debug!(case = case.id, %outcome, %reason, "judged");
        if let Some(v) = self.verdicts.iter_mut().find(|v| v.case.id == case.id) {
            let rank = |o: Outcome| match o {
                Outcome::Fail => 2,
                Outcome::Pass => 1,
                Outcome::Skip => 0,
            };
            if rank(outcome) > rank(v.outcome) {
                v.outcome = outcome;
                v.reason = reason;
            }
            for e in evidence {
                if !v.evidence.contains(&e) {
                    v.evidence.push(e);
                }
            }
        } else {
            self.verdicts.push(Verdict {
                case,
                outcome,
                reason,
                evidence,
            });
        }
    }

    /// Records a pass.
    pub fn pass(&mut self, case: Case, reason: impl Into<String>, evidence: Vec<Evidence>) {
        self.record(case, Outcome::Pass, reason, evidence);
    }

    /// Records a failure.
    pub fn fail(&mut self, case: Case, reason: impl Into<String>, evidence: Vec<Evidence>) {
        self.record(case, Outcome::Fail, reason, evidence);
    }

    /// Records a skip.
    pub fn skip(&mut self, case: Case, reason: impl Into<String>) {
        self.record(case, Outcome::Skip, reason, Vec::new());
    }

    /// Records pass or fail from a condition.
    pub fn check(
        &mut self,
        case: Case,
        ok: bool,
        pass_reason: impl Into<String>,
        fail_reason: impl Into<String>,
        evidence: Vec<Evidence>,
    ) {
        if ok {
            self.pass(case, pass_reason, evidence);
        } else {
            self.fail(case, fail_reason, evidence);
        }
    }

    /// The verdict on `id`, if judged.
    pub fn get(&self, id: &str) -> Option<&Verdict> {
        self.verdicts.iter().find(|v| v.case.id == id)
    }

    /// Closes the run: every case of `catalogue` gets a verdict, in catalogue
    /// order; a case never judged is a skip saying so.
    pub fn finish(mut self, target: impl Into<String>, catalogue: &[Case]) -> Report {
        let mut verdicts = Vec::with_capacity(catalogue.len());
        for case in catalogue {
            match self.verdicts.iter().position(|v| v.case.id == case.id) {
                Some(i) => verdicts.push(self.verdicts.swap_remove(i)),
                None => verdicts.push(Verdict {
                    case: *case,
                    outcome: Outcome::Skip,
                    reason: "not observed in this run".to_owned(),
                    evidence: Vec::new(),
                }),
            }
        }
        Report {
            target: target.into(),
            verdicts,
        }
    }
}

/// Counts of outcomes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Cases passed.
    pub pass: usize,
    /// Cases failed, all levels.
    pub fail: usize,
    /// MUST cases failed.
    pub must_fail: usize,
    /// Cases skipped.
    pub skip: usize,
}

/// The result of one run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// What was tested (an agent's prompt subject, a caller command).
    pub target: String,
    /// One verdict per case, in catalogue order.
    pub verdicts: Vec<Verdict>,
}

impl Report {
    /// The counts.
    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for v in &self.verdicts {
            match v.outcome {
                Outcome::Pass => s.pass += 1,
                Outcome::Skip => s.skip += 1,
                Outcome::Fail => {
                    s.fail += 1;
                    if v.case.level == Level::Must {
                        s.must_fail += 1;
                    }
                }
            }
        }
        s
    }

    /// True when no MUST case failed: the exit status is zero.
    pub fn is_compliant(&self) -> bool {
        self.summary().must_fail == 0
    }

    /// The ids of the failed cases, in order.
    pub fn failed_ids(&self) -> Vec<&'static str> {
        self.verdicts
            .iter()
            .filter(|v| v.outcome == Outcome::Fail)
            .map(|v| v.case.id)
            .collect()
    }

    /// The verdict on `id`.
    pub fn get(&self, id: &str) -> Option<&Verdict> {
        self.verdicts.iter().find(|v| v.case.id == id)
    }

    /// The readable table: rule, section, level, outcome and a short reason.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "conformance: {}", self.target);
        let _ = writeln!(
            out,
            "{:<9} {:<17} {:<6} {:<6} REASON",
            "CASE", "SECTION", "LEVEL", "RESULT"
        );
        for v in &self.verdicts {
            let _ = writeln!(
                out,
                "{:<9} {:<17} {:<6} {:<6} {}",
                v.case.id, v.case.section, v.case.level, v.outcome, v.reason
            );
        }
        let s = self.summary();
        let _ = writeln!(
            out,
            "{} passed, {} failed ({} MUST), {} skipped: {}",
            s.pass,
            s.fail,
            s.must_fail,
            s.skip,
            if s.must_fail == 0 {
                "compliant"
            } else {
                "NOT compliant"
            }
        );
        out
    }

    /// The report with its evidence, as pretty JSON.
    pub fn json(&self) -> String {
        #[derive(Serialize)]
        struct Out<'a> {
            target: &'a str,
            compliant: bool,
            summary: Summary,
            verdicts: &'a [Verdict],
        }
        serde_json::to_string_pretty(&Out {
            target: &self.target,
            compliant: self.is_compliant(),
            summary: self.summary(),
            verdicts: &self.verdicts,
        })
        .unwrap_or_default() // ok: plain data always serialises
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::{AGENT_CASES, HB_001, STR_011};

    #[test]
    fn fail_beats_pass_beats_skip_and_levels_decide_compliance() {
        let mut f = Findings::new();
        f.skip(HB_001, "later");
        f.pass(HB_001, "seen", vec![]);
        f.pass(STR_011, "first stream", vec![]);
        f.fail(STR_011, "second stream", vec![]);
        f.pass(STR_011, "third stream", vec![]);
        let report = f.finish("t", AGENT_CASES);
        assert_eq!(report.verdicts.len(), AGENT_CASES.len());
        assert_eq!(report.get("HB-001").map(|v| v.outcome), Some(Outcome::Pass));
        assert_eq!(
            report.get("STR-011").map(|v| v.reason.as_str()),
            Some("second stream")
        );
        assert_eq!(report.failed_ids(), ["STR-011"]);
        // STR-011 is a SHOULD: still compliant.
        assert!(report.is_compliant());
        assert!(!report.table().contains("NOT compliant"));
        assert!(report.json().contains("\"compliant\": true"));
    }
}
