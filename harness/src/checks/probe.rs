//! Running a check's console commands: what counts as an answer, and the
//! evidence a check lacks when there is none.

use crate::console::{CommandOutput, Shell};
use std::time::Duration;

/// How long one check's command may take on KVM (scaled under TCG by the shell).
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(15);

/// The first line of command output, trimmed: what most checks compare.
pub(super) fn first_line(output: &str) -> String {
    output
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
        .to_owned()
}

/// What `is_root` runs.
pub const IS_ROOT: &str = "id -u";

/// Whether the shell is root's (`id -u` says 0).
pub fn is_root(shell: &mut crate::console::Shell<'_>) -> Result<bool, crate::console::ShellError> {
    Ok(shell.run(IS_ROOT, COMMAND_TIMEOUT)?.output.trim() == "0")
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
    pub(super) fn new(message: String) -> NoEvidence {
        NoEvidence {
            message,
            lines: Vec::new(),
        }
    }

    /// The console did not run a command (a timeout, a dead console): its
    /// error as the console words it, and the console lines it saw.
    pub(super) fn of_console(e: &crate::console::ShellError) -> NoEvidence {
        NoEvidence {
            message: crate::error::chain(e),
            lines: e.source.lines().to_vec(),
        }
    }
}

/// Runs a console command for a check; a console failure (a timeout, a dead
/// console) is the check's missing evidence.
pub(super) fn run(shell: &mut Shell<'_>, command: &str) -> Result<CommandOutput, NoEvidence> {
    shell
        .run(command, COMMAND_TIMEOUT)
        .map_err(|e| NoEvidence::of_console(&e))
}

/// Runs a console command whose answer a check relies on: only exit status 0
/// is an answer. 127 means the tool is not on the guest; any other status
/// means it could not answer. Either way the check has no evidence.
pub(super) fn answer(shell: &mut Shell<'_>, command: &str) -> Result<CommandOutput, NoEvidence> {
    let out = run(shell, command)?;
    if out.status == 0 {
        return Ok(out);
    }
    Err(no_answer(command, &out))
}

/// The message for a command that gave no answer (see `answer`).
pub(super) fn no_answer(command: &str, out: &CommandOutput) -> NoEvidence {
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
