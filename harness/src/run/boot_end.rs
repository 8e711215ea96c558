//! How a boot that reached no shell ends: the checks its end still decides
//! (a login prompt is a verdict on autologin), those that need no console
//! shell, those reported as not run, and the trial's error with QEMU's view of
//! it (its exit, the screen, its stderr, SeaBIOS's log).

use super::classify::{self, Ended};
use super::order::{without_console_shell, NoShell};
use crate::checks::{self, CheckResult};
use crate::console::BootError;
use crate::qemu::{self, Machine};
use crate::report::TrialError;
use std::path::{Path, PathBuf};

/// The screendump of a failed boot, in the trial's artifacts.
const SCREENDUMP: &str = "screen.png";

/// What a boot without a shell leaves for the report besides its checks.
#[derive(Default)]
pub(super) struct BootEnd {
    pub error: Option<TrialError>,
    /// The display's picture, a file in the artifacts.
    pub screendump: Option<PathBuf>,
}

/// The end of a boot that failed with `e`; its checks go into `results`.
pub(super) fn boot_failed(
    e: BootError,
    machine: &mut Machine,
    no_shell: &NoShell<'_>,
    artifacts: &Path,
    results: &mut Vec<CheckResult>,
) -> BootEnd {
    let expected = no_shell.expect.autologin.as_ref();
    match e {
        BootError::NoAutologin {
            login_line,
            evidence,
        } => {
            // A login prompt is a verdict on autologin, and leaves no shell for the rest.
            if let Some(expected) = expected {
                results.push(checks::at_login_prompt(expected, &login_line, evidence));
            }
            let why = "no shell on the serial console (it stopped at a login prompt)";
            without_console_shell(no_shell, why, results);
            BootEnd::default()
        }
        BootError::LoginFailed {
            user,
            answer,
            login_line,
            evidence,
        } => {
            // No autologin (or the scenario would not have logged in), and the
            // scenario's credentials did not work: two verdicts, no shell.
            if let Some(expected) = expected {
                results.push(checks::at_login_prompt(
                    expected,
                    &login_line,
                    evidence.clone(),
                ));
            }
            results.push(checks::console_login_failed(&user, &answer, evidence));
            let why = "no shell on the serial console (the console login failed)";
            without_console_shell(no_shell, why, results);
            BootEnd::default()
        }
        e @ BootError::NoPosixShell { .. } => {
            // Something logged in, but gave isotest no shell: the trial fails
            // with the console's last lines, and the SSH logins still run.
            let why = "no shell on the serial console (isotest could not start /bin/sh there)";
            without_console_shell(no_shell, why, results);
            BootEnd {
                error: Some(e.into()),
                screendump: None,
            }
        }
        e if e.console_closed() => BootEnd {
            error: Some(qemu_gone(e, machine, artifacts)),
            screendump: None,
        },
        e => died(e, machine, artifacts),
    }
}

/// QEMU is gone, and with it the display: its last QMP events and exit status
/// say why (a reboot under -no-reboot, a power-off, a crash or a signal).
fn qemu_gone(e: BootError, machine: &mut Machine, artifacts: &Path) -> TrialError {
    let exit = machine.why_exited();
    let phase = Some(e.phase_reached().to_string());
    let mut evidence = e.evidence().to_vec();
    // SeaBIOS resets at once when nothing boots (qemu/args.rs); its log says so.
    let firmware = nothing_to_boot(&artifacts.join(qemu::FIRMWARE_LOG));
    if let Some(lines) = &firmware {
        evidence.extend(lines.iter().map(|l| format!("(firmware) {l}")));
    }
    let ended = Ended::QemuExited {
        boot: e,
        exit: exit.describe(),
        nothing_to_boot: firmware.is_some(),
    };
    TrialError {
        phase,
        evidence,
        ..classify::qemu_exited(ended, &exit, false)
    }
}

/// A boot that died under a live QEMU: what the display shows tells what the
/// serial console may not (a firmware error, a menu or kernel on VGA only, a
/// black screen), and QEMU's state and stderr may say more.
fn died(e: BootError, machine: &mut Machine, artifacts: &Path) -> BootEnd {
    let mut error = TrialError::from(e);
    let mut screendump = None;
    match machine.screendump(&artifacts.join(SCREENDUMP)) {
        Ok(()) => screendump = Some(SCREENDUMP.into()),
        Err(e) => error.evidence.push(format!(
            "(QEMU: no screendump: {})",
            crate::error::chain(&e)
        )),
    }
    if let Ok(state) = machine.qmp().run_state() {
        error
            .evidence
            .push(format!("(QEMU: guest state `{state}`)"));
    }
    let stderr = machine.stderr();
    error
        .evidence
        .extend(stderr.lines().map(|l| format!("(QEMU stderr) {l}")));
    BootEnd {
        error: Some(error),
        screendump,
    }
}

/// SeaBIOS's lines about what it tried to boot, if its log (`firmware.log`)
/// says it found nothing bootable.
fn nothing_to_boot(log: &Path) -> Option<Vec<String>> {
    let text = String::from_utf8_lossy(&std::fs::read(log).ok()?).into_owned();
    let boot_lines = |l: &&str| {
        ["Booting from", "Boot failed", "No bootable device"]
            .iter()
            .any(|p| l.starts_with(p))
    };
    let lines: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(boot_lines)
        .map(str::to_owned)
        .collect();
    lines
        .iter()
        .any(|l| l.starts_with("No bootable device"))
        .then_some(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_firmware_log_without_a_bootable_device_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("firmware.log");
        // SeaBIOS 1.16 (Debian 12) on an ISO without an El Torito boot record, shortened (the
        // efi-only-boot-record fixture gives code 0009, then tries the hard disk and floppy too).
        std::fs::write(&log, "Searching bootorder for: /pci@i0cf8/*@1f,2/drive@0/disk@0\nBooting from DVD/CD...\nBoot failed: Could not read from CDROM (code 0004)\nenter handle_18:\n  NULL\nNo bootable device.  Retrying in 0 seconds.\nRebooting.\n").unwrap();
        assert_eq!(
            nothing_to_boot(&log).unwrap(),
            [
                "Booting from DVD/CD...",
                "Boot failed: Could not read from CDROM (code 0004)",
                "No bootable device.  Retrying in 0 seconds."
            ]
        );
        std::fs::write(&log, "Booting from DVD/CD...\nBooting from 0000:7c00\n").unwrap();
        assert_eq!(nothing_to_boot(&log), None);
        assert_eq!(nothing_to_boot(&dir.path().join("none.log")), None);
    }
}
