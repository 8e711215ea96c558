//! Checks: small functions from (what the guest shows, what the scenario expects)
//! to a `CheckResult` with expected, actual and evidence. Never a bare bool: a
//! failing check must say why.

mod autologin;
mod hostname;
mod steps;

pub use autologin::{at_login_prompt, autologin};
pub use hostname::hostname;
pub use steps::steps;

use serde::Serialize;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Pass,
    Fail,
    /// The check could not run (e.g. no shell); `message` says why.
    NotRun,
}

#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    pub name: String,
    pub outcome: Outcome,
    pub expected: String,
    pub actual: String,
    /// One line: what happened, phrased for the report.
    pub message: String,
    /// Console lines or command outputs that back the verdict.
    pub evidence: Vec<String>,
}

impl CheckResult {
    pub fn passed(&self) -> bool {
        self.outcome == Outcome::Pass
    }

    pub fn not_run(name: &str, expected: &str, why: &str) -> CheckResult {
        CheckResult {
            name: name.into(),
            outcome: Outcome::NotRun,
            expected: expected.into(),
            actual: String::new(),
            message: format!("not run: {why}"),
            evidence: Vec::new(),
        }
    }
}

/// How long one check's command may take on KVM (scaled under TCG by the shell).
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(15);

/// The first line of command output, trimmed: what most checks compare.
fn first_line(output: &str) -> String {
    output.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("").to_owned()
}
