//! Checks: small functions from (what the guest shows, what the scenario expects)
//! to a `CheckResult` with expected, actual and evidence. Never a bare bool: a
//! failing check must say why.

mod autologin;
mod home_manager;
mod hostname;
mod sshd;
mod steps;
mod users;

pub use autologin::{at_login_prompt, autologin};
pub use home_manager::home_manager;
pub use hostname::hostname;
pub use sshd::{host_key_fingerprints, login_check_name, ssh_login, sshd, SshTarget};
pub use steps::{steps, steps_not_run};
pub use users::{user, user_exists};

use crate::console::Shell;

use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Pass,
    Fail,
    /// The check could not run (e.g. no shell); `message` says why.
    NotRun,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckResult {
    pub name: String,
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

    pub fn not_run(name: &str, expected: &str, why: &str) -> CheckResult {
        CheckResult {
            name: name.into(),
            outcome: Outcome::NotRun,
            expected: expected.into(),
            actual: String::new(),
            message: format!("not run: {why}"),
            evidence: Vec::new(),
            secs: 0.0,
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

/// How long one check's command may take on KVM (scaled under TCG by the shell).
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(15);

/// The first line of command output, trimmed: what most checks compare.
fn first_line(output: &str) -> String {
    output.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("").to_owned()
}

/// `command` with root rights: as it is in a root shell, else through `sudo -n`
/// (the NixOS installer's `nixos` user has passwordless sudo).
pub fn as_root(is_root: bool, command: &str) -> String {
    if is_root {
        command.to_owned()
    } else {
        format!("sudo -n sh -c {}", crate::console::sh_quote(command))
    }
}

/// Runs a console command for a check; a console failure becomes the check's
/// failure message and evidence.
fn run(shell: &mut Shell<'_>, command: &str) -> Result<crate::console::CommandOutput, (String, Vec<String>)> {
    shell.run(command, COMMAND_TIMEOUT).map_err(|e| (e.to_string(), e.source.lines().to_vec()))
}

/// A check's verdict from a list of problems: none is a pass.
fn verdict(name: String, expected: String, actual: String, problems: Vec<String>, pass: String, evidence: Vec<String>) -> CheckResult {
    let (outcome, message) = if problems.is_empty() { (Outcome::Pass, pass) } else { (Outcome::Fail, problems.join("; ")) };
    CheckResult { name, outcome, expected, actual, message, evidence, secs: 0.0 }
}

/// A check that could not finish because a console command failed.
fn broken(name: String, expected: String, (message, evidence): (String, Vec<String>)) -> CheckResult {
    CheckResult { name, outcome: Outcome::Fail, expected, actual: String::new(), message, evidence, secs: 0.0 }
}
