//! GRUB menus as the ISO declares them (UEFI boots): the menu tree of grub.cfg,
//! and the way through it to an entry with a serial console. NixOS nests its
//! serial entries ("HiDPI, Quirks and Accessibility" → "Serial console=ttyS0,...");
//! without such an entry, the chosen entry is edited (`e`) to add the console.
//!
//! The tree holds what GRUB draws and counts, because the arrow keys move over
//! exactly that: `submenu "" {return}` separators (nixpkgs' HiDPI submenu) are
//! drawn as blank lines and counted; `hiddenentry` blocks (nixpkgs' GRUB patch
//! pkgs/tools/misc/grub/add-hidden-menu-entries.patch: "not accessible in the grub
//! menu", not counted in the menu's size) are neither, and only their hotkey is
//! kept, e.g. nixpkgs' `hiddenentry 'Text mode' --hotkey 't'`.

mod parse;
mod plan;
#[cfg(test)]
mod tests;
mod tree;
mod words;

pub use plan::{GrubEdit, GrubPlan, GrubStep};
pub use tree::{GrubItem, GrubMenu, DEFAULT_TEXT_MODE_KEY};
pub use words::linux_command;
