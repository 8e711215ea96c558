//! A check's result as reports hold it, and the builder a check uses to
//! reach one (`Check`, `Found`).

use super::probe::NoEvidence;
use super::units::{unsettled_problem, Unsettled};
use crate::check_id::CheckId;
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Pass,
    Fail,
    /// The check could not run because something it depends on failed (no
    /// shell, a failed `sshd` check before the SSH logins); `message` says why.
    NotRun,
    /// The check could not get its evidence: a console command it relies on
    /// timed out, its tool is missing (exit status 127) or it failed. Never a
    /// pass: a trial with a broken check fails like one with a failed check.
    Broken,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckResult {
    /// Written as the check's name (`user nixos`).
    pub name: CheckId,
    pub outcome: Outcome,
    pub expected: String,
    pub actual: String,
    /// One line: what happened, phrased for the report.
    pub message: String,
    /// Console lines or command outputs that back the verdict.
    pub evidence: Vec<String>,
    /// How long the check took.
    pub secs: f64,
}

impl CheckResult {
    pub fn passed(&self) -> bool {
        self.outcome == Outcome::Pass
    }

    pub fn not_run(name: CheckId, expected: &str, why: &str) -> CheckResult {
        CheckResult {
            name,
            outcome: Outcome::NotRun,
            expected: expected.into(),
            actual: String::new(),
            message: format!("not run: {why}"),
            evidence: Vec::new(),
            secs: 0.0,
        }
    }

    /// A check that could not get its evidence (see `Outcome::Broken`).
    pub fn broken(
        name: CheckId,
        expected: &str,
        message: &str,
        evidence: Vec<String>,
    ) -> CheckResult {
        CheckResult {
            name,
            outcome: Outcome::Broken,
            expected: expected.into(),
            actual: String::new(),
            message: message.into(),
            evidence,
            secs: 0.0,
        }
    }

    /// What the guest showed, as reports write it: `-` for nothing.
    pub fn actual_or_dash(&self) -> &str {
        if self.actual.is_empty() {
            "-"
        } else {
            &self.actual
        }
    }

    /// Runs a check and records how long it took.
    pub fn timed(check: impl FnOnce() -> CheckResult) -> CheckResult {
        let start = std::time::Instant::now();
        let mut result = check();
        result.secs = start.elapsed().as_secs_f64();
        result
    }
}

/// A check under way: what it is and what it expects, for each way it can end.
pub(super) struct Check {
    pub(super) name: CheckId,
    pub(super) expected: String,
}

/// What a check found: what the guest is, the evidence, and what is wrong
/// (nothing: a pass, said as `pass`).
#[derive(Default)]
pub(super) struct Found {
    pub(super) actual: String,
    pub(super) evidence: Vec<String>,
    pub(super) problems: Vec<String>,
    pub(super) pass: String,
}

impl Check {
    pub(super) fn new(name: CheckId, expected: String) -> Check {
        Check { name, expected }
    }

    /// The verdict on what was found: a pass without problems, else a failure
    /// naming them all.
    pub(super) fn verdict(&self, found: Found) -> CheckResult {
        let (outcome, message) = if found.problems.is_empty() {
            (Outcome::Pass, found.pass)
        } else {
            (Outcome::Fail, found.problems.join("; "))
        };
        CheckResult {
            name: self.name.clone(),
            outcome,
            expected: self.expected.clone(),
            actual: found.actual,
            message,
            evidence: found.evidence,
            secs: 0.0,
        }
    }

    /// A failure for units whose start job never finished (`settle_units`).
    pub(super) fn still_starting(&self, pending: &[Unsettled], limit: Duration) -> CheckResult {
        self.verdict(Found {
            actual: "still starting".into(),
            problems: vec![unsettled_problem(pending, limit)],
            ..Found::default()
        })
    }

    /// The check could not finish: a console command gave no answer.
    pub(super) fn broken(&self, e: NoEvidence) -> CheckResult {
        CheckResult::broken(self.name.clone(), &self.expected, &e.message, e.lines)
    }

    /// The check depends on a user that does not exist.
    pub(super) fn no_such_user(&self, user: &str) -> CheckResult {
        CheckResult::not_run(
            self.name.clone(),
            &self.expected,
            &format!("user `{user}` does not exist"),
        )
    }
}
