//! The serial console: a transcript-keeping reader with event-driven `expect`
//! (`serial`), the boot menus (`menu`), the boot sequence from power-on to a shell
//! (`boot`), and a command runner on that shell (`shell`).

mod ansi;
pub mod boot;
pub mod grub;
pub mod menu;
pub mod screen;
mod serial;
pub mod shell;

pub use boot::{boot_to_shell, BootError, BootOutcome, Phase};
pub use serial::{ConsoleError, Match, SerialConsole};
pub use shell::{sh_quote, CommandOutput, Shell, ShellError};
