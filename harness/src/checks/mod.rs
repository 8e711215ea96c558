//! Checks: small functions from (what the guest shows, what the scenario expects)
//! to a `CheckResult` with expected, actual and evidence. Never a bare bool: a
//! failing check must say why.

mod autologin;
mod home_manager;
mod hostname;
mod sshd;
mod steps;
mod units;
mod users;

pub use autologin::{
    at_login_prompt, autologin, console_login, console_login_failed, console_login_name,
};
pub use home_manager::home_manager;
pub use hostname::hostname;
pub use sshd::{
    finish_ssh_login, host_key_fingerprints, login_check_name, password_of, prepare_ssh_login,
    ssh_login_without_console, sshd, sshd_units, SshAttempt, SshLoginStage, SshTarget, SshdReach,
    SshdUnits,
};
pub use steps::{steps, steps_not_run};
pub use units::{settle_units, unsettled_problem, Settled, Unsettled, UNIT_TIMEOUT};
pub use users::{user, user_exists};

use crate::console::Shell;

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

    /// A check that could not get its evidence (see `Outcome::Broken`).
    pub fn broken(name: &str, expected: &str, message: &str, evidence: Vec<String>) -> CheckResult {
        CheckResult {
            name: name.into(),
            outcome: Outcome::Broken,
            expected: expected.into(),
            actual: String::new(),
            message: message.into(),
            evidence,
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

/// Where a check stands in a report, by its name: autologin, hostname, sshd,
/// the SSH logins, users, Home Manager, then the steps, whatever order they
/// ran in (the logins run beside the users' checks, and when sshd is still
/// starting the users are checked first). A stable sort by it keeps each
/// kind's own order.
pub fn report_order(name: &str) -> u8 {
    match name {
        "autologin" => 0,
        _ if name.starts_with("console login ") => 0,
        "hostname" => 1,
        "sshd" => 2,
        _ if name.starts_with("ssh login ") => 3,
        _ if name.starts_with("user ") => 4,
        _ if name.starts_with("home-manager ") => 5,
        _ => 6,
    }
}

/// How long one check's command may take on KVM (scaled under TCG by the shell).
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(15);

/// The first line of command output, trimmed: what most checks compare.
fn first_line(output: &str) -> String {
    output
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
        .to_owned()
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

/// `command` as `user`, in a POSIX login shell of theirs: `su -s /bin/sh -`
/// reads /etc/profile and ~/.profile as any login does, so PATH is the
/// user's, but the command is not given to their own login shell (fish,
/// elvish or nushell would not parse it). Through `as_root`: only root may
/// choose the shell of a user whose shell is not in /etc/shells.
pub fn as_user(is_root: bool, user: &str, command: &str) -> String {
    use crate::console::sh_quote;
    as_root(
        is_root,
        &format!(
            "su -s /bin/sh - {} -c {}",
            sh_quote(user),
            sh_quote(command)
        ),
    )
}

/// Why a check has no evidence: the message and the console lines behind it.
type NoEvidence = (String, Vec<String>);

/// Runs a console command for a check; a console failure (a timeout, a dead
/// console) is the check's missing evidence.
fn run(shell: &mut Shell<'_>, command: &str) -> Result<crate::console::CommandOutput, NoEvidence> {
    shell
        .run(command, COMMAND_TIMEOUT)
        .map_err(|e| (crate::error::chain(&e), e.source.lines().to_vec()))
}

/// Runs a console command whose answer a check relies on: only exit status 0
/// is an answer. 127 means the tool is not on the guest; any other status
/// means it could not answer. Either way the check has no evidence.
fn answer(
    shell: &mut Shell<'_>,
    command: &str,
) -> Result<crate::console::CommandOutput, NoEvidence> {
    let out = run(shell, command)?;
    if out.status == 0 {
        return Ok(out);
    }
    Err(no_answer(command, &out))
}

/// The message for a command that gave no answer (see `answer`).
fn no_answer(command: &str, out: &crate::console::CommandOutput) -> NoEvidence {
    let said: Vec<String> = out
        .output
        .lines()
        .map(str::to_owned)
        .filter(|l| !l.trim().is_empty())
        .collect();
    let first = said
        .first()
        .map(|l| format!(": {}", l.trim()))
        .unwrap_or_default();
    let message = if out.status == 127 {
        format!("`{command}`: a tool is missing on the guest (exit status 127){first}")
    } else {
        format!("`{command}` failed with exit status {}{first}", out.status)
    };
    (message, said)
}

/// A check's verdict from a list of problems: none is a pass.
fn verdict(
    name: String,
    expected: String,
    actual: String,
    problems: Vec<String>,
    pass: String,
    evidence: Vec<String>,
) -> CheckResult {
    let (outcome, message) = if problems.is_empty() {
        (Outcome::Pass, pass)
    } else {
        (Outcome::Fail, problems.join("; "))
    };
    CheckResult {
        name,
        outcome,
        expected,
        actual,
        message,
        evidence,
        secs: 0.0,
    }
}

/// A check that could not finish because a console command gave no answer.
fn broken(name: String, expected: String, (message, evidence): NoEvidence) -> CheckResult {
    CheckResult::broken(&name, &expected, &message, evidence)
}

#[cfg(test)]
mod tests {
    #[test]
    fn checks_are_reported_in_one_order_whatever_order_they_ran_in() {
        let ran = [
            "autologin",
            "hostname",
            "user nixos",
            "home-manager nixos",
            "sshd",
            "ssh login root (key)",
            "user root",
            "step 1: run `true`",
            "ssh login nixos (password)",
        ];
        let mut names = ran.to_vec();
        names.sort_by_key(|n| super::report_order(n));
        assert_eq!(
            names,
            [
                "autologin",
                "hostname",
                "sshd",
                "ssh login root (key)",
                "ssh login nixos (password)",
                "user nixos",
                "user root",
                "home-manager nixos",
                "step 1: run `true`"
            ]
        );
    }
}
