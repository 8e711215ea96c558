//! The serial console: a transcript-keeping reader with event-driven `expect`
//! (`serial`, with `ansi` and `kmsg` making its text plain), the boot sequence from power-on to a shell
//! (`boot`), a command runner on that shell (`shell`), and the user's terminal
//! on the console (`attach`).

mod ansi;
pub mod attach;
pub mod boot;
mod kmsg;
#[cfg(test)]
pub(crate) mod local;
pub mod login;
mod serial;
pub mod shell;

pub use boot::{
    boot_to_shell, fatal_signs, BootError, BootOutcome, Phase, PhaseObserver, NO_BOOTABLE_DEVICE,
};
pub use login::{Credentials, LoggedIn};
pub use serial::{ConsoleError, Match, SerialConsole, COMMAND_LOG};
pub use shell::{sh_quote, CommandOutput, Shell, ShellError};

#[cfg(test)]
pub(crate) mod proptests;
