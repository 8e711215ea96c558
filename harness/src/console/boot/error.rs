//! How a boot that reached no shell is told: the phase it stopped in, what
//! stopped it, and the console lines that show it.

use super::phase::Phase;
use super::signs::{failure_lines, uefi_boot_lines, NO_BOOTABLE_DEVICE};
use crate::console::login::LoginError;
use crate::console::serial::{ConsoleError, SerialConsole};

#[derive(Debug, thiserror::Error)]
pub enum BootError {
    /// The console ended the boot (a timeout, a sign that ends it, QEMU
    /// gone). The console's error is what this one says first, so it is
    /// written out here (with its own causes), not kept as a cause too.
    #[error("{}; last phase reached: {reached}", crate::error::chain(error))]
    Console { reached: Phase, error: ConsoleError },
    #[error("login prompt on the serial console, no autologin: `{login_line}` asked for a password when the harness typed")]
    NoAutologin {
        login_line: String,
        evidence: Vec<String>,
    },
    /// Something logged in, but the line that starts isotest's /bin/sh got no
    /// answer: the login shell could not run it, or nothing reads the console.
    #[error(
        "the serial console logged in, but isotest could not start /bin/sh from the login shell: \
         no answer to `/bin/sh -c ...` typed {tries} time(s) in {waited} s (the console's last lines show what the login shell said)"
    )]
    NoPosixShell {
        tries: u32,
        waited: u64,
        lines: Vec<String>,
    },
    /// The scenario's console credentials did not log in.
    #[error("console login as `{user}` failed: {answer}")]
    LoginFailed {
        user: String,
        answer: String,
        login_line: String,
        evidence: Vec<String>,
    },
}

impl BootError {
    pub fn phase_reached(&self) -> Phase {
        match self {
            BootError::Console { reached, .. } => *reached,
            BootError::NoAutologin { .. }
            | BootError::NoPosixShell { .. }
            | BootError::LoginFailed { .. } => Phase::LoginPrompt,
        }
    }

    /// Whether the serial console closed under the boot: QEMU exited.
    pub fn console_closed(&self) -> bool {
        matches!(
            self,
            BootError::Console {
                error: ConsoleError::Closed { .. },
                ..
            }
        )
    }

    /// Console lines that show what went wrong.
    pub fn evidence(&self) -> &[String] {
        match self {
            BootError::Console { error, .. } => error.lines(),
            BootError::NoAutologin { evidence, .. } => evidence,
            BootError::NoPosixShell { lines, .. } => lines,
            BootError::LoginFailed { evidence, .. } => evidence,
        }
    }

    /// A boot that died of a sign on the console (emergency mode, say) is
    /// explained by what failed before it, which may be far above the sign:
    /// systemd's `[FAILED]`, `[DEPEND]` and `[ TIME ]` status lines, put before
    /// the lines around the sign. One that found nothing to boot, by edk2's
    /// lines about each boot option.
    pub(super) fn explained(self, console: &SerialConsole) -> BootError {
        let BootError::Console {
            reached,
            error: ConsoleError::Fatal { reason, context },
        } = self
        else {
            return self;
        };
        let text = console.text_between(0, usize::MAX);
        let (reason, context) = if reason == NO_BOOTABLE_DEVICE {
            uefi_boot_lines(&text, context)
        } else {
            (reason, with_failures_before(&text, context))
        };
        BootError::Console {
            reached,
            error: ConsoleError::Fatal { reason, context },
        }
    }
}

/// How many of systemd's failure lines a boot that died shows.
const FAILURE_LINES: usize = 10;

/// The last of systemd's failure lines in `text` that `context` lacks, then `context`.
fn with_failures_before(text: &str, context: Vec<String>) -> Vec<String> {
    let failures: Vec<String> = failure_lines(text)
        .into_iter()
        .filter(|l| !context.contains(l))
        .collect();
    failures[failures.len().saturating_sub(FAILURE_LINES)..]
        .iter()
        .cloned()
        .chain(context)
        .collect()
}

/// Why a stage stopped the boot. The console's errors get the phase the boot
/// had reached in one place (`at`); the login's come with theirs.
pub(super) enum Stop {
    Console(ConsoleError),
    AtLogin(BootError),
}

impl From<ConsoleError> for Stop {
    fn from(e: ConsoleError) -> Self {
        Stop::Console(e)
    }
}

impl Stop {
    /// The login at getty's `login_line` failed.
    pub(super) fn login(e: LoginError, login_line: String, console: &SerialConsole) -> Stop {
        let answer = e.to_string();
        Stop::AtLogin(match e {
            LoginError::PasswordAsked { at } => BootError::NoAutologin {
                login_line,
                evidence: console.lines_around(at),
            },
            LoginError::Refused { user, evidence }
            | LoginError::NoPasswordPrompt { user, evidence } => BootError::LoginFailed {
                user,
                answer,
                login_line,
                evidence,
            },
            LoginError::NoPosixShell {
                tries,
                waited,
                lines,
            } => BootError::NoPosixShell {
                tries,
                waited,
                lines,
            },
            LoginError::Console(e) => return Stop::Console(e),
        })
    }

    /// The boot's error, with `reached` the last phase the boot had reached.
    pub(super) fn at(self, reached: Phase) -> BootError {
        match self {
            Stop::Console(error) => BootError::Console { reached, error },
            Stop::AtLogin(e) => e,
        }
    }
}
