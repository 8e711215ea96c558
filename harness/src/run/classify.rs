//! The one place that decides whose doing the end of a trial was: the guest's
//! (a verdict on the ISO: the trial fails) or the host's ("could not test":
//! nothing was learnt about the ISO). Each error a stage returns becomes a
//! `TrialError` by one of these conversions.

use super::host::HostError;
use crate::checks::{self, CheckResult};
use crate::console::BootError;
use crate::flake::FlakeError;
use crate::menu::MenuError;
use crate::qemu::{QemuError, QemuExit};
use crate::report::{ErrorKind, TrialError, TrialMessage};

/// How a trial ended that the errors of the stages do not say themselves.
#[derive(Debug, thiserror::Error)]
pub enum Ended {
    /// The serial console closed under the boot: QEMU exited, for `exit`.
    #[error("{}{}: {exit}", nothing_before(*.nothing_to_boot), crate::error::chain(.boot))]
    QemuExited {
        boot: BootError,
        exit: String,
        /// SeaBIOS's log says it found nothing to boot.
        nothing_to_boot: bool,
    },
    #[error("QEMU exited during the checks: {exit}")]
    ExitedDuringChecks { exit: String },
    #[error(
        "isotest panicked during this trial (a bug in isotest, not a verdict on the ISO): {what}"
    )]
    Panicked { what: String },
}

/// Said first when the firmware found nothing to boot: the rest follows from it.
fn nothing_before(nothing_to_boot: bool) -> String {
    if nothing_to_boot {
        format!("{}; ", crate::console::NO_BOOTABLE_DEVICE)
    } else {
        String::new()
    }
}

fn failed(e: impl std::error::Error + Send + Sync + 'static) -> TrialError {
    TrialError::new(ErrorKind::Failed, TrialMessage::of(e))
}

fn could_not_test(e: impl std::error::Error + Send + Sync + 'static) -> TrialError {
    TrialError::new(ErrorKind::CouldNotTest, TrialMessage::of(e))
}

/// A QEMU error before the guest ran is the host's: a missing or unstartable
/// binary, firmware or its flash copy, KVM refused under `--accel kvm`, a file
/// or socket that cannot be made, no free port, QEMU refusing its arguments or
/// a firmware file (it exits at start-up, before the ISO is read), or a QEMU
/// that never connects. A missing ISO, or QMP failing under a running guest,
/// fails the trial.
impl From<QemuError> for TrialError {
    fn from(e: QemuError) -> TrialError {
        match e {
            QemuError::Missing { .. }
            | QemuError::KvmUnusable { .. }
            | QemuError::Spawn { .. }
            | QemuError::Io { .. }
            | QemuError::StartFailed { .. }
            | QemuError::NoConnection { .. }
            | QemuError::PrivateDir(_)
            | QemuError::Firmware(_)
            | QemuError::Flash(_)
            | QemuError::Mirror { .. }
            | QemuError::NoFreePort(_)
            | QemuError::PortsTaken { .. }
            // A saved state offered to the wrong machine is isotest's mistake.
            | QemuError::OtherMachine { .. } => could_not_test(e),
            QemuError::Qmp(_) | QemuError::NoImage(_) | QemuError::Screen(_) => failed(e),
        }
    }
}

/// No `nix`, or a system this host cannot build, is the host's lack; the rest
/// (evaluation, build, a flake without the host) is the flake's.
impl From<FlakeError> for TrialError {
    fn from(e: FlakeError) -> TrialError {
        match e {
            FlakeError::NixMissing { .. } | FlakeError::Unsupported { .. } => could_not_test(e),
            _ => failed(e),
        }
    }
}

impl From<HostError> for TrialError {
    fn from(e: HostError) -> TrialError {
        could_not_test(e)
    }
}

/// An image no firmware could boot from a CD-ROM fails before QEMU starts.
impl From<crate::iso::IsoError> for TrialError {
    fn from(e: crate::iso::IsoError) -> TrialError {
        failed(e)
    }
}

/// A boot menu that the ISO lacks or that has no such entry fails the trial;
/// this host unable to read the ISO's files could not test it.
impl From<MenuError> for TrialError {
    fn from(e: MenuError) -> TrialError {
        if e.is_host_fault() {
            could_not_test(e)
        } else {
            failed(e)
        }
    }
}

/// A boot that ended without a shell, on a live console: the guest's.
impl From<BootError> for TrialError {
    fn from(e: BootError) -> TrialError {
        TrialError {
            phase: Some(e.phase_reached().to_string()),
            evidence: e.evidence().to_vec(),
            ..failed(e)
        }
    }
}

/// QEMU exited under the boot or the checks: the guest's doing (a reboot under
/// `-no-reboot`, a power-off) fails the trial; the host's (a crash, a signal)
/// means nothing was learnt, unless `a_check_failed` before it.
pub(super) fn qemu_exited(ended: Ended, exit: &QemuExit, a_check_failed: bool) -> TrialError {
    if exit.by_guest() || a_check_failed {
        failed(ended)
    } else {
        could_not_test(ended)
    }
}

/// The error of a trial in which isotest panicked: nothing more was learnt
/// about the ISO ("could not test"), unless a check had already failed.
pub(super) fn panicked(payload: &(dyn std::any::Any + Send), checks: &[CheckResult]) -> TrialError {
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into());
    let ended = Ended::Panicked { what };
    if a_check_failed(checks) {
        failed(ended)
    } else {
        could_not_test(ended)
    }
}

/// Whether a check failed: a failure that the host's fault or isotest's, met
/// later, does not turn into "could not test". A broken check is left out: it
/// may be that same fault's doing (when QEMU dies, the checks it interrupted
/// break; a panic may follow them), so it proves nothing about the ISO there.
pub(super) fn a_check_failed(checks: &[CheckResult]) -> bool {
    checks.iter().any(|c| c.outcome == checks::Outcome::Fail)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check_id::CheckId;
    use crate::console::{ConsoleError, Phase};

    #[test]
    fn a_host_lack_or_a_qemu_refusing_to_start_is_could_not_test() {
        let missing = QemuError::Missing {
            binary: "qemu-system-x86_64".into(),
            hint: "apt-get install qemu-system-x86".into(),
        };
        assert_eq!(TrialError::from(missing).kind, ErrorKind::CouldNotTest);
        let refused = QemuError::StartFailed {
            status: "exit status: 1".into(),
            stderr: "boom".into(),
        };
        assert_eq!(TrialError::from(refused).kind, ErrorKind::CouldNotTest);
        assert_eq!(
            TrialError::from(QemuError::NoImage("/no.iso".into())).kind,
            ErrorKind::Failed
        );
        assert_eq!(
            TrialError::from(FlakeError::NixMissing {
                purpose: "x".into()
            })
            .kind,
            ErrorKind::CouldNotTest
        );
        assert_eq!(
            TrialError::from(FlakeError::Build {
                attr: "a".into(),
                log: "l".into()
            })
            .kind,
            ErrorKind::Failed
        );
    }

    #[test]
    fn a_panic_is_could_not_test_unless_a_check_had_failed() {
        let payload: Box<dyn std::any::Any + Send> = Box::new(String::from("index out of bounds"));
        let e = panicked(
            payload.as_ref(),
            &[CheckResult::not_run(CheckId::Sshd, "", "x")],
        );
        assert_eq!(e.kind, ErrorKind::CouldNotTest);
        assert_eq!(e.message, "isotest panicked during this trial (a bug in isotest, not a verdict on the ISO): index out of bounds");
        let failing = CheckResult {
            outcome: checks::Outcome::Fail,
            ..CheckResult::not_run(CheckId::Hostname, "rescue", "x")
        };
        let payload: Box<dyn std::any::Any + Send> = Box::new("static message");
        let e = panicked(payload.as_ref(), &[failing]);
        assert_eq!(
            (e.kind, e.message.ends_with(": static message")),
            (ErrorKind::Failed, true)
        );
        let payload: Box<dyn std::any::Any + Send> = Box::new("static message");
        let e = panicked(
            payload.as_ref(),
            &[CheckResult::broken(
                CheckId::Sshd,
                "running",
                "the console closed",
                vec![],
            )],
        );
        assert_eq!(
            e.kind,
            ErrorKind::CouldNotTest,
            "a broken check may be the same fault's doing"
        );
    }

    #[test]
    fn a_boot_that_died_on_the_console_says_it_once_with_its_phase() {
        let died = |console| BootError::Console {
            reached: Phase::Kernel,
            error: console,
        };
        let fatal = || ConsoleError::Fatal {
            reason: "kernel panic".into(),
            context: vec!["Kernel panic - not syncing".into()],
        };
        let e = TrialError::from(died(fatal()));
        assert_eq!(
            (e.kind, e.message.as_str(), e.phase.as_deref()),
            (
                ErrorKind::Failed,
                "kernel panic; last phase reached: kernel and initrd",
                Some("kernel and initrd")
            )
        );
        let gone = Ended::QemuExited {
            boot: died(fatal()),
            exit: "the guest rebooted".into(),
            nothing_to_boot: true,
        };
        assert_eq!(
            crate::error::chain(&gone),
            format!(
                "{}; kernel panic; last phase reached: kernel and initrd: the guest rebooted",
                crate::console::NO_BOOTABLE_DEVICE
            )
        );
    }
}
