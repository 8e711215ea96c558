//! The errors of starting and talking to QEMU.

use super::firmware::FirmwareError;
use super::screendump::ScreenError;
use crate::platform::Arch;
use std::path::PathBuf;
use std::sync::Arc;

/// Why a machine could not be started, or failed under the guest.
#[derive(Debug, thiserror::Error)]
pub enum QemuError {
    #[error("{binary} not found on PATH; install it: {hint}")]
    Missing { binary: String, hint: String },
    #[error("--accel kvm: KVM cannot run {arch} guests here")]
    KvmUnusable {
        arch: String,
        #[source]
        reason: KvmUnfit,
    },
    #[error("cannot start {binary}")]
    Spawn {
        binary: String,
        #[source]
        source: std::io::Error,
    },
    #[error("QEMU exited during start-up ({status}): {stderr}")]
    StartFailed { status: String, stderr: String },
    #[error("QEMU did not connect its {what} socket within {secs} s")]
    NoConnection { what: &'static str, secs: u64 },
    /// Talking to QEMU's monitor failed.
    #[error("QMP")]
    Qmp(#[from] QmpError),
    #[error("{context}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("ISO image not found: {0}")]
    NoImage(PathBuf),
    #[error(transparent)]
    Screen(ScreenError),
    /// The machine's private directory (sockets, UEFI variables).
    #[error("create a private temp dir")]
    PrivateDir(#[source] std::io::Error),
    /// The UEFI firmware the trial needs is not installed.
    #[error(transparent)]
    Firmware(#[from] FirmwareError),
    #[error(transparent)]
    Flash(#[from] FlashError),
    /// SeaBIOS's VGA-to-serial file.
    #[error("write {}", path.display())]
    Mirror {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no free TCP port on 127.0.0.1 for the guest's SSH forward")]
    NoFreePort(#[source] std::io::Error),
    /// Other processes took every port picked for the forward before QEMU bound it.
    #[error(
        "no port on 127.0.0.1 could be forwarded to the guest in {attempts} attempts: {stderr}"
    )]
    PortsTaken { attempts: u32, stderr: String },
    /// A saved state offered to a machine unlike the one it was saved from
    /// (QEMU itself takes some such states: another memory size, say).
    #[error("the saved state is of another machine: {differs}")]
    OtherMachine { differs: String },
}

/// What went wrong in one exchange with QEMU's QMP monitor; `step` is the
/// exchange: `greeting`, `handshake`, or the command (`query-status`, ...).
#[derive(Debug, thiserror::Error)]
pub enum QmpError {
    /// Reading or writing the socket failed, or QEMU closed it.
    #[error("{step}")]
    Io {
        step: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// What QEMU sent is not JSON.
    #[error("{step}: QEMU's answer is not JSON")]
    Json {
        step: &'static str,
        #[source]
        source: serde_json::Error,
    },
    /// QEMU's answer is JSON, but not the message that was expected.
    #[error("{step}: unexpected answer from QEMU")]
    Unexpected {
        step: &'static str,
        #[source]
        source: serde_json::Error,
    },
    /// QEMU answered with an error: its class (`GenericError`, ...) and description.
    #[error("{step}: QEMU answered {class}: {desc}")]
    Refused {
        step: &'static str,
        class: String,
        desc: String,
    },
    /// A save or restore of the machine's state ended without completing:
    /// the migration's last status, and QEMU's reason when it gave one.
    #[error("{step}: the migration ended `{status}`{}", reason.as_ref().map(|r| format!(": {r}")).unwrap_or_default())]
    Migration {
        step: &'static str,
        status: String,
        reason: Option<String>,
    },
    /// A save or restore still ran when its time was up.
    #[error("{step}: not done within {secs} s (last status `{status}`)")]
    MigrationTimedOut {
        step: &'static str,
        secs: u64,
        status: String,
    },
}

/// Why KVM cannot run a guest on this host. A verdict is kept for the rest of
/// the process, so it is shared (`Arc`) and cloned.
#[derive(Debug, Clone, thiserror::Error)]
pub enum KvmUnfit {
    #[error("the host is not {0}")]
    OtherArch(Arch),
    /// `/dev/kvm` does not open; `hint` says what to do.
    #[error("/dev/kvm: {error}{hint}")]
    Device {
        error: Arc<std::io::Error>,
        hint: &'static str,
    },
    #[error("create a private temp dir")]
    PrivateDir(#[source] Arc<std::io::Error>),
    #[error("copy {}", vars.display())]
    CopyVars {
        vars: PathBuf,
        #[source]
        source: Arc<std::io::Error>,
    },
    #[error("cannot start {}", binary.display())]
    Spawn {
        binary: PathBuf,
        #[source]
        source: Arc<std::io::Error>,
    },
    /// QEMU said on stderr that the guest died under KVM.
    #[error("the ISO died under KVM: {}", stderr.join(" "))]
    Died { stderr: Vec<String> },
    #[error("QEMU exited under KVM: {}", stderr.join(" "))]
    Exited { stderr: Vec<String> },
    #[error("the ISO printed nothing on serial within {secs} s under KVM")]
    Silent { secs: u64 },
}

/// Why a flash image could not be copied.
#[derive(Debug, thiserror::Error)]
pub enum FlashError {
    #[error("copy {} to {}", from.display(), to.display())]
    Copy {
        from: PathBuf,
        to: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("open {}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The copy's size, or the firmware code's, could not be read.
    #[error("{}", path.display())]
    Size {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("pad {}", path.display())]
    Pad {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}
