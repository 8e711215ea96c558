//! QEMU: finding the binary, choosing the accelerator, building the command line,
//! and owning the process. A `Machine` is one running QEMU; dropping it kills it.
//! `Launcher` starts a trial's machine: its private directory, the UEFI flash
//! copies, the VGA-to-serial mirror, the KVM probe and a free port for SSH.

mod accel;
mod args;
mod binary;
mod error;
mod exit;
mod firmware;
mod flash;
mod launch;
mod machine;
mod port;
mod private;
mod qmp;
mod screendump;
mod snapshot;

pub use accel::AccelDecision;
pub use args::{command_line, MachineSpec, Pflash, FIRMWARE_LOG};
pub use binary::{find_qemu, version};
pub use error::{FlashError, KvmUnfit, QemuError, QmpError};
pub use exit::QemuExit;
pub use firmware::{FirmwareError, FirmwareSearch, UefiFirmware};
pub use launch::{kernel_console, Launch, Launched, Launcher, Running};
pub use machine::{kill_all_machines, stopping, wait_if_stopping, Machine, MachineLogs};
pub use private::{remove_private_dirs, PrivateDir};
pub use qmp::{DumpFormat, Qmp};
pub use screendump::{is_blank, read_screen, save_as_png, ScreenError};
pub use snapshot::{can_save_state, qemu_can_save, SavedState, StateKey};
