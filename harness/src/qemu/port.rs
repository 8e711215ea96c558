//! A free host port for the guest's SSH forward. Another process can take the
//! port between the probe and QEMU's bind; QEMU then fails to start, and
//! another port is tried.

use super::args::MachineSpec;
use super::error::QemuError;
use super::machine::{Machine, MachineLogs};
use std::path::Path;

/// How many ports are tried before the host is said to have none to give.
const ATTEMPTS: u32 = 3;

impl Machine {
    /// Starts QEMU for `spec` as `Machine::start` does, with the guest's port
    /// `guest` forwarded from a free port on 127.0.0.1, which `spec.forward`
    /// names once it started.
    pub fn start_forwarded(
        binary: &Path,
        spec: &mut MachineSpec,
        guest: u16,
        logs: &MachineLogs,
    ) -> Result<Machine, QemuError> {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let port = crate::ssh::free_port().map_err(QemuError::NoFreePort)?;
            spec.forward = Some((port, guest));
            match Machine::start(binary, spec, logs) {
                Err(QemuError::StartFailed { stderr, .. }) if stderr.contains("hostfwd") => {
                    if attempts == ATTEMPTS {
                        return Err(QemuError::PortsTaken { attempts, stderr });
                    }
                }
                other => return other,
            }
        }
    }
}
