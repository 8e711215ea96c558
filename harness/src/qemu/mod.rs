//! QEMU: finding the binary, choosing the accelerator, building the command line,
//! and owning the process. A `Machine` is one running QEMU; dropping it kills it.
//! `Launcher` starts a trial's machine: its private directory, the UEFI flash
//! copies, the VGA-to-serial mirror, the KVM probe and a free port for SSH.

mod accel;
mod args;
mod binary;
mod exit;
mod firmware;
mod flash;
mod launch;
mod machine;
mod port;
mod private;
mod qmp;
mod screendump;

pub use accel::{resolve_accel, AccelDecision, KvmUnfit, ProbeKey, ProbeTarget};
pub use args::{command_line, MachineSpec, Pflash, FIRMWARE_LOG, SERCON_TTYS0};
pub use binary::{find_qemu, version};
pub use exit::QemuExit;
pub use firmware::{FirmwareError, FirmwareSearch, UefiFirmware};
pub use flash::FlashError;
pub use launch::{kernel_console, Launch, Launched, Launcher, Running};
pub use machine::{kill_all_machines, stopping, wait_if_stopping, Machine, MachineLogs};
pub use private::{remove_private_dirs, PrivateDir};
pub use qmp::{DumpFormat, Qmp};
pub use screendump::{is_blank, read_screen, save_as_png, ScreenError};

use std::path::PathBuf;

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
    #[error("QMP: {0}")]
    Qmp(String),
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
}
