//! The boot sequence from power-on to a shell on the serial console: power-on
//! → boot menu → kernel → userspace → login prompt → shell. `driver` runs the
//! stages; `phase` records the phases reached; `signs` reads the console's
//! text (milestones, and the signs that end a boot at once); `loader`,
//! `drawn` and `editor` drive the boot loaders' menus; `error` says how a boot
//! that reached no shell ended.

mod drawn;
mod driver;
mod editor;
mod error;
mod loader;
mod phase;
mod signs;
#[cfg(test)]
mod testing;

pub use driver::{boot_to_shell, BootOutcome, BootTimeouts};
pub use error::BootError;
pub use phase::{Phase, PhaseObserver};
pub use signs::{fatal_signs, NO_BOOTABLE_DEVICE};
