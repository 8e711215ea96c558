//! Boot menus: from the ISO's files to the entry to boot and what to type.
//! The files import one way, each from those above it:
//!
//! - `iso` (what a firmware can boot: ISO 9660, El Torito) and `iso_files`
//!   (files read off the ISO through xorriso), with `error`;
//! - `console_arg` (a kernel command line's serial console);
//! - the parsers: `isolinux` (BIOS) and `grub` (grub.cfg);
//! - GRUB read off the screen: `screen` (the drawn menu and editor) and
//!   `drawn` (what to pick in them);
//! - `choice`: which menu the firmware meets, and the entry to boot in it.

pub mod choice;
pub mod console_arg;
pub mod drawn;
pub mod error;
pub mod grub;
pub mod iso;
pub mod iso_files;
pub mod isolinux;
pub mod screen;

#[cfg(test)]
mod proptests;

pub use choice::BootChoice;
pub use console_arg::has_console;
pub use drawn::DrawnChoice;
pub use error::{HostError, MenuError};
pub use isolinux::{IsolinuxChoice, IsolinuxMenu, MenuEntry};
