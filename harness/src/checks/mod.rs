//! Checks: small functions from (what the guest shows, what the scenario expects)
//! to a `CheckResult` with expected, actual and evidence. Never a bare bool: a
//! failing check must say why.

mod autologin;
mod home_manager;
mod hostname;
mod id;
mod ssh_login;
mod sshd;
mod steps;
mod units;
mod users;

pub use autologin::{at_login_prompt, autologin, console_login, console_login_failed};
pub use home_manager::home_manager;
pub use hostname::hostname;
pub use id::{report_order, CheckId, LoginMethod};
pub use ssh_login::{
    finish_ssh_login, host_key_fingerprints, login_check_id, password_of, prepare_ssh_login,
    ssh_login_without_console, PasswordUnset, SshAttempt, SshLoginStage, SshTarget,
};
pub use sshd::{sshd, sshd_units, SshdReach, SshdUnits};
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

/// Why a check has no evidence: what went wrong, and the console lines
/// behind it. The message is the check's report text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct NoEvidence {
    pub message: String,
    pub lines: Vec<String>,
}

impl NoEvidence {
    fn new(message: String) -> NoEvidence {
        NoEvidence {
            message,
            lines: Vec::new(),
        }
    }

    /// The console did not run a command (a timeout, a dead console): its
    /// error as the console words it, and the console lines it saw.
    fn of_console(e: &crate::console::ShellError) -> NoEvidence {
        NoEvidence {
            message: crate::error::chain(e),
            lines: e.source.lines().to_vec(),
        }
    }
}

/// Runs a console command for a check; a console failure (a timeout, a dead
/// console) is the check's missing evidence.
fn run(shell: &mut Shell<'_>, command: &str) -> Result<crate::console::CommandOutput, NoEvidence> {
    shell
        .run(command, COMMAND_TIMEOUT)
        .map_err(|e| NoEvidence::of_console(&e))
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
    NoEvidence {
        message,
        lines: said,
    }
}

/// A check under way: what it is and what it expects, for each way it can end.
struct Check {
    name: CheckId,
    expected: String,
}

/// What a check found: what the guest is, the evidence, and what is wrong
/// (nothing: a pass, said as `pass`).
#[derive(Default)]
struct Found {
    actual: String,
    evidence: Vec<String>,
    problems: Vec<String>,
    pass: String,
}

impl Check {
    fn new(name: CheckId, expected: String) -> Check {
        Check { name, expected }
    }

    /// The verdict on what was found: a pass without problems, else a failure
    /// naming them all.
    fn verdict(&self, found: Found) -> CheckResult {
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
    fn still_starting(&self, pending: &[Unsettled], limit: Duration) -> CheckResult {
        self.verdict(Found {
            actual: "still starting".into(),
            problems: vec![unsettled_problem(pending, limit)],
            ..Found::default()
        })
    }

    /// The check could not finish: a console command gave no answer.
    fn broken(&self, e: NoEvidence) -> CheckResult {
        CheckResult::broken(self.name.clone(), &self.expected, &e.message, e.lines)
    }

    /// The check depends on a user that does not exist.
    fn no_such_user(&self, user: &str) -> CheckResult {
        CheckResult::not_run(
            self.name.clone(),
            &self.expected,
            &format!("user `{user}` does not exist"),
        )
    }
}
