//! A failed trial's machine kept running (`--keep-on-failure`) for a look.

use crate::console::SerialConsole;
use crate::qemu::{self, Machine, PrivateDir};
use std::path::{Path, PathBuf};

/// A failed trial's QEMU left running: its console is served on `socket` to one
/// client at a time (`isotest console --attach`, socat), and the private
/// directory stays until the machine is dropped.
pub struct KeptMachine {
    machine: Machine,
    private: PrivateDir,
    /// Keeps reading: the transcript goes on, and the socket's clients are fed from it.
    _console: SerialConsole,
    /// Where the serial console is served.
    pub socket: PathBuf,
}

impl KeptMachine {
    pub(super) fn new(
        machine: Machine,
        private: PrivateDir,
        console: SerialConsole,
    ) -> Result<KeptMachine, std::io::Error> {
        let socket = private.path().join("console.sock");
        console.serve(&socket)?;
        Ok(KeptMachine {
            machine,
            private,
            _console: console,
            socket,
        })
    }

    pub fn pid(&self) -> u32 {
        self.machine.pid()
    }

    /// The private directory (sockets, UEFI variables), removed with the machine.
    pub fn private_dir(&self) -> &Path {
        self.private.path()
    }

    /// Blocks until QEMU exits (the guest powered off, or the user's Ctrl-C
    /// handler killed it); the console's transcript keeps growing meanwhile.
    pub fn wait(mut self) {
        let status = self.machine.wait();
        qemu::wait_if_stopping();
        tracing::info!(
            "the kept QEMU (pid {}) exited: {status:?}",
            self.machine.pid()
        );
    }
}
