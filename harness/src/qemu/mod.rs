//! QEMU: finding the binary, choosing the accelerator, building the command line,
//! and owning the process. A `Machine` is one running QEMU; dropping it kills it.

mod accel;
mod args;
mod binary;
mod exit;
mod firmware;
mod machine;
mod private;
mod qmp;
mod screendump;

pub use accel::{resolve_accel, AccelDecision, ProbeKey, ProbeTarget};
pub use args::{command_line, MachineSpec, Pflash, FIRMWARE_LOG, SERCON_TTYS0};
pub use binary::{find_qemu, version};
pub use exit::QemuExit;
pub use firmware::{FirmwareError, FirmwareSearch, UefiFirmware};
pub use machine::{kill_all_machines, stopping, wait_if_stopping, Machine, MachineLogs};
pub use private::{remove_private_dirs, PrivateDir};
pub use qmp::{DumpFormat, Qmp};
pub use screendump::{is_blank, read_screen, save_as_png, ScreenError};

use std::path::PathBuf;

/// Why a machine could not be started.
#[derive(Debug, thiserror::Error)]
pub enum QemuError {
    #[error("{binary} not found on PATH; install it: {hint}")]
    Missing { binary: String, hint: String },
    #[error("--accel kvm: KVM cannot run {arch} guests here: {reason}")]
    KvmUnusable { arch: String, reason: String },
    #[error("cannot start {binary}: {source}")]
    Spawn {
        binary: String,
        source: std::io::Error,
    },
    #[error("QEMU exited during start-up ({status}): {stderr}")]
    StartFailed { status: String, stderr: String },
    #[error("QEMU did not connect its {what} socket within {secs} s")]
    NoConnection { what: &'static str, secs: u64 },
    #[error("QMP: {0}")]
    Qmp(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("ISO image not found: {0}")]
    NoImage(PathBuf),
    #[error("{0}")]
    Screen(ScreenError),
}
