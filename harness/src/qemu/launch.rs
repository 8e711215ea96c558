//! Starting a trial's machine, in two steps. `Launcher::prepare` gets what the
//! host must have before anything runs: a private (0700) directory for the
//! sockets and the UEFI variables, the UEFI flash copies, the QEMU binary.
//! `Launcher::start` then writes the VGA-to-serial mirror, decides the
//! accelerator (the KVM probe boots the same ISO on the same machine), and
//! starts QEMU with a free port forwarded to the guest's SSH port.

use super::accel::{resolve_accel, AccelDecision, ProbeTarget};
use super::args::{command_line, MachineSpec, Pflash, SERCON_TTYS0};
use super::binary::{find_qemu, version};
use super::error::QemuError;
use super::flash;
use super::machine::{Machine, MachineLogs};
use super::private::PrivateDir;
use super::snapshot::StateKey;
use crate::platform::{AccelChoice, Arch, Firmware};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The serial console argument of a Linux kernel on this architecture: the
/// port QEMU connects to the serial socket.
pub fn kernel_console(arch: Arch) -> &'static str {
    match arch {
        Arch::X86_64 => "console=ttyS0,115200n8",
        Arch::Aarch64 => "console=ttyAMA0,115200n8",
    }
}

/// A machine whose host-side files are ready and whose QEMU is found.
pub struct Launcher {
    arch: Arch,
    firmware: Firmware,
    binary: PathBuf,
    private: PrivateDir,
    uefi: Option<Pflash>,
}

/// How a prepared machine is started.
pub struct Launch<'a> {
    pub iso: &'a Path,
    /// `--accel`, else the scenario's `accel:`.
    pub accel: AccelChoice,
    pub memory_mib: u64,
    pub cpus: u32,
    /// The boot loader draws on VGA only: SeaBIOS mirrors it to the serial
    /// port, for the KVM probe as for the machine.
    pub vga_to_serial: bool,
    /// Where QEMU's pid file, stderr and QMP log go.
    pub artifacts: &'a Path,
    /// The guest's SSH port, forwarded from a free port on 127.0.0.1.
    pub guest_ssh_port: u16,
    /// Start waiting for a saved state (`Qmp::restore_state`) instead of booting.
    pub incoming: bool,
    /// A machine whose state is saved for others, or that is restored from
    /// one: on x86_64 it has a VM generation ID (`MachineSpec::vmgenid`).
    pub cloned: bool,
}

/// A start that got as far as QEMU's command line, whether or not QEMU then
/// started: a start that failed is when the command line matters most.
pub struct Launched {
    pub accel: AccelDecision,
    pub binary: PathBuf,
    /// The first line of `--version`, if it answered.
    pub version: Option<String>,
    pub command_line: Vec<OsString>,
    pub running: Result<Running, QemuError>,
}

/// A started machine and what is its own.
pub struct Running {
    pub machine: Machine,
    /// Its sockets and UEFI variables; removed when dropped.
    pub private: PrivateDir,
    /// The host port forwarded to the guest's SSH port.
    pub forward: Option<(u16, u16)>,
    /// What a state saved from this machine may be restored into.
    pub state_key: StateKey,
}

impl Launcher {
    /// The private directory, the UEFI flash (`uefi_files`: the scenario's
    /// own, else the system's) and the QEMU binary of a machine of `arch`
    /// booting with `firmware`.
    pub fn prepare(
        arch: Arch,
        firmware: Firmware,
        uefi_files: Option<(&Path, &Path)>,
    ) -> Result<Launcher, QemuError> {
        let private = PrivateDir::new().map_err(QemuError::PrivateDir)?;
        let uefi = flash::uefi_flash(arch, firmware, uefi_files, private.path())?;
        let binary = find_qemu(arch)?;
        Ok(Launcher {
            arch,
            firmware,
            binary,
            private,
            uefi,
        })
    }

    /// Starts QEMU as `launch` says. An error before the command line exists
    /// (the mirror's file, KVM refused under `--accel kvm`) is the outer one.
    pub fn start(self, launch: &Launch<'_>) -> Result<Launched, QemuError> {
        let vga = self.mirror(launch.vga_to_serial)?;
        let target = ProbeTarget {
            binary: &self.binary,
            arch: self.arch,
            firmware: self.firmware,
            iso: launch.iso,
            uefi: self.uefi.as_ref(),
            vga_to_serial: vga.as_deref(),
        };
        let accel = resolve_accel(launch.accel, &target)?;
        if let Some(note) = &accel.note {
            tracing::info!("{note}");
        }
        let mut spec = MachineSpec {
            arch: self.arch,
            firmware: self.firmware,
            accel: accel.accel,
            memory_mib: launch.memory_mib,
            cpus: launch.cpus,
            iso: launch.iso.to_owned(),
            uefi: self.uefi,
            serial_socket: self.private.path().join("serial.sock"),
            qmp_socket: self.private.path().join("qmp.sock"),
            pidfile: launch.artifacts.join("qemu.pid"),
            forward: None,
            vga_to_serial: vga,
            paused: false,
            incoming: launch.incoming,
            vmgenid: launch.cloned,
        };
        let doing = if launch.incoming {
            "restoring a machine of"
        } else {
            "booting"
        };
        tracing::info!("{doing} {} ({})", spec.iso.display(), accel.accel.as_str());
        let logs = MachineLogs::in_dir(launch.artifacts);
        let machine =
            Machine::start_forwarded(&self.binary, &mut spec, launch.guest_ssh_port, &logs);
        let private = self.private;
        let version = version(&self.binary);
        let state_key = StateKey::of(&self.binary, version.as_deref(), &spec);
        Ok(Launched {
            accel,
            version,
            command_line: command_line(&spec),
            binary: self.binary,
            running: machine.map(|machine| Running {
                machine,
                private,
                forward: spec.forward,
                state_key,
            }),
        })
    }

    /// SeaBIOS's VGA-to-serial file, in the private directory, when `wanted`.
    fn mirror(&self, wanted: bool) -> Result<Option<PathBuf>, QemuError> {
        if !wanted {
            return Ok(None);
        }
        let path = self.private.path().join("sercon-port");
        std::fs::write(&path, SERCON_TTYS0).map_err(|source| QemuError::Mirror {
            path: path.clone(),
            source,
        })?;
        Ok(Some(path))
    }
}
