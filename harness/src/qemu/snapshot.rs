//! A running machine's state saved to a file, and a new machine started from
//! it (QEMU's migration to a `file:` URI, docs/devel/migration in QEMU's tree).
//! The saving machine is stopped first, so the file holds one instant; the
//! new machine must have the same command line but for its host-side paths
//! and ports (sockets, pidfile, the UEFI variables' copy, the forwarded port),
//! is started with `MachineSpec::incoming`, and stays paused after the restore
//! until `resume`: its serial console can be attached before the guest runs.
//!
//! `mapped-ram` puts each RAM page at a fixed offset in the file, so the file
//! is written as fast as the disk takes it and holds no page twice; QEMU's
//! default bandwidth cap (128 MiB/s, for live migration over a network) is
//! lifted, since nothing else shares the file.

use super::args::{command_line, MachineSpec};
use super::error::{QemuError, QmpError};
use super::machine::Machine;
use super::qmp::{qapi_name, Qmp};
use qapi::qmp;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What a saved state may be restored into: the QEMU (binary and version)
/// and the command line, but for its host-side paths and the forwarded port
/// (slirp's host forwards are not part of the state), which each machine has
/// its own. The ISO counts by its size only: its path is one of the host's
/// and its content is for the caller to compare (`run`'s shared boots hash
/// it), since QEMU checks nothing of a CD-ROM's content. QEMU checks little
/// of the rest itself: under mapped-ram it restores a state into a machine
/// with twice the memory and reports success.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateKey(Vec<String>);

impl StateKey {
    pub fn of(binary: &Path, version: Option<&str>, spec: &MachineSpec) -> StateKey {
        let mut same = spec.clone();
        same.iso = "ISO".into();
        same.serial_socket = "SERIAL".into();
        same.qmp_socket = "QMP".into();
        same.pidfile = "PIDFILE".into();
        same.forward = spec.forward.map(|_| (0, 0));
        same.vga_to_serial = spec.vga_to_serial.as_ref().map(|_| "SERCON".into());
        same.paused = false;
        same.incoming = false;
        if let Some(uefi) = &mut same.uefi {
            uefi.vars = "VARS".into();
        }
        let iso = std::fs::metadata(&spec.iso)
            .map(|m| format!("an ISO of {} bytes", m.len()))
            .unwrap_or_else(|e| format!("an unreadable ISO: {e}"));
        let mut key = vec![
            binary.display().to_string(),
            version.unwrap_or("unknown version").to_owned(),
            iso,
        ];
        key.extend(
            command_line(&same)
                .iter()
                .map(|a| a.to_string_lossy().into_owned()),
        );
        StateKey(key)
    }

    /// The first way `other` differs from this key, if any.
    fn difference(&self, other: &StateKey) -> Option<String> {
        if self == other {
            return None;
        }
        let at = self.0.iter().zip(&other.0).position(|(a, b)| a != b);
        Some(match at {
            Some(i) => format!("`{}` where it was `{}`", other.0[i], self.0[i]),
            None => "another number of arguments".into(),
        })
    }
}

/// Whether a QEMU (`--version`'s first line) can save and restore states as
/// this module does: a `file:` migration (8.2), `mapped-ram` (9.0) and
/// `exit-on-error` on `migrate-incoming` (9.1). Debian 12's own QEMU, 7.2,
/// cannot; bookworm-backports' 10.0 can.
pub fn can_save_state(version: Option<&str>) -> bool {
    let Some(number) = version.and_then(|v| v.split_whitespace().nth(3)) else {
        return false;
    };
    let mut parts = number.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major, minor) >= (9, 1)
}

/// Whether this host's QEMU for `arch` (`find_qemu`) can save and restore
/// a machine's state (`can_save_state`).
pub fn qemu_can_save(arch: crate::platform::Arch) -> bool {
    use super::binary::{find_qemu, version};
    find_qemu(arch).is_ok_and(|q| can_save_state(version(&q).as_deref()))
}

/// A machine's state in a file, and the machine it may be restored into.
#[derive(Debug, Clone)]
pub struct SavedState {
    pub file: PathBuf,
    pub key: StateKey,
}

impl Machine {
    /// Stops the guest and saves its state to `file` (see `Qmp::save_state`);
    /// `key` is this machine's.
    pub fn save_state(
        &mut self,
        key: StateKey,
        file: &Path,
        within: Duration,
    ) -> Result<SavedState, QemuError> {
        self.qmp().save_state(file, within)?;
        Ok(SavedState {
            file: file.to_owned(),
            key,
        })
    }

    /// Loads `saved` into this machine, started with `MachineSpec::incoming`,
    /// whose key is `key`; a state of another machine is refused before QEMU
    /// sees it. The guest is left paused (`Qmp::resume`).
    pub fn restore_state(
        &mut self,
        key: &StateKey,
        saved: &SavedState,
        within: Duration,
    ) -> Result<(), QemuError> {
        if let Some(differs) = saved.key.difference(key) {
            return Err(QemuError::OtherMachine { differs });
        }
        self.qmp().restore_state(&saved.file, within)
    }
}

/// How often a save or restore's status is asked for.
const POLL: Duration = Duration::from_millis(50);

impl Qmp {
    /// Stops the guest and writes its whole state to `file`, within `within`.
    /// The guest stays stopped; the machine can be dropped once this returns.
    pub fn save_state(&mut self, file: &Path, within: Duration) -> Result<(), QemuError> {
        const STEP: &str = "save the machine's state";
        self.prepare_migration(STEP)?;
        self.execute(&qmp::stop {})
            .map_err(|e| QmpError::of(STEP, e))?;
        self.execute(&qmp::migrate {
            uri: Some(file_uri(file)),
            channels: None,
            detach: None,
            resume: None,
        })
        .map_err(|e| QmpError::of(STEP, e))?;
        if let Err(e) = self.wait_for_migration(STEP, within) {
            // A migration left running would pause the guest when it ends,
            // under whatever runs on it by then.
            self.cancel_migration();
            return Err(e.into());
        }
        // The run state leaves `finish-migrate` for `postmigrate` just after the
        // status says completed; a quit meanwhile races QEMU's own transition.
        let started = Instant::now();
        while self.run_state()? == "finish-migrate" && started.elapsed() < within {
            std::thread::sleep(POLL);
        }
        Ok(())
    }

    /// Loads the state `save_state` wrote into this machine, started with
    /// `MachineSpec::incoming`, within `within`. The guest is left paused.
    pub fn restore_state(&mut self, file: &Path, within: Duration) -> Result<(), QemuError> {
        const STEP: &str = "restore the machine's state";
        self.prepare_migration(STEP)?;
        self.execute(&qmp::migrate_incoming {
            uri: Some(file_uri(file)),
            channels: None,
            // A state that does not fit is an error to report, not QEMU's exit.
            exit_on_error: Some(false),
        })
        .map_err(|e| QmpError::of(STEP, e))?;
        Ok(self.wait_for_migration(STEP, within)?)
    }

    /// Cancels an outgoing migration and waits (10 s at most) until it has
    /// stopped. Best effort: the save's own error is what is reported.
    fn cancel_migration(&mut self) {
        if let Err(e) = self.execute(&qmp::migrate_cancel {}) {
            tracing::warn!("cancelling the save: {e}");
            return;
        }
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(10) {
            let status = self
                .execute(&qmp::query_migrate {})
                .ok()
                .and_then(|info| info.status.as_ref().and_then(qapi_name));
            if !matches!(
                status.as_deref(),
                Some("setup" | "active" | "cancelling" | "device" | "pre-switchover")
            ) {
                return;
            }
            std::thread::sleep(POLL);
        }
    }

    /// Lets a stopped or restored guest run.
    pub fn resume(&mut self) -> Result<(), QemuError> {
        self.execute(&qmp::cont {})
            .map_err(|e| QmpError::of("resume the guest", e))?;
        Ok(())
    }

    /// The same capabilities on both ends: a file with each page in its place,
    /// at the disk's speed.
    fn prepare_migration(&mut self, step: &'static str) -> Result<(), QmpError> {
        let capabilities = vec![qmp::MigrationCapabilityStatus {
            capability: qmp::MigrationCapability::mapped_ram,
            state: true,
        }];
        self.execute(&qmp::migrate_set_capabilities { capabilities })
            .map_err(|e| QmpError::of(step, e))?;
        let parameters = qmp::MigrateSetParameters {
            max_bandwidth: Some(u64::MAX >> 1),
            ..Default::default()
        };
        self.execute(&qmp::migrate_set_parameters(parameters))
            .map_err(|e| QmpError::of(step, e))?;
        Ok(())
    }

    /// Polls the migration until it completes, fails, or `within` passes. No
    /// status yet (`none`, `setup`) is "not begun", never "done".
    fn wait_for_migration(&mut self, step: &'static str, within: Duration) -> Result<(), QmpError> {
        let started = Instant::now();
        loop {
            let info = self
                .execute(&qmp::query_migrate {})
                .map_err(|e| QmpError::of(step, e))?;
            let status = info
                .status
                .as_ref()
                .and_then(qapi_name)
                .unwrap_or_else(|| "none".into());
            match status.as_str() {
                "completed" => return Ok(()),
                "failed" | "cancelled" => {
                    return Err(QmpError::Migration {
                        step,
                        status,
                        reason: info.error_desc,
                    })
                }
                _ if started.elapsed() >= within => {
                    return Err(QmpError::MigrationTimedOut {
                        step,
                        secs: within.as_secs(),
                        status,
                    })
                }
                _ => std::thread::sleep(POLL),
            }
        }
    }
}

/// QEMU's `file:` URI; the path is the machine's private directory's, which
/// has no commas or colons that QEMU would read otherwise.
fn file_uri(file: &Path) -> String {
    format!("file:{}", file.display())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::qemu::args::tests::spec;
    use crate::qemu::args::Pflash;

    fn key(spec: &MachineSpec) -> StateKey {
        StateKey::of(
            Path::new("/usr/bin/qemu-system-x86_64"),
            Some("QEMU 10.0.2"),
            spec,
        )
    }

    #[test]
    fn states_need_qemu_9_1() {
        let says = |v: &str| can_save_state(Some(v));
        assert!(says(
            "QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2+deb13u1~bpo12+1)"
        ));
        assert!(says("QEMU emulator version 9.1.0"));
        assert!(!says("QEMU emulator version 9.0.2"));
        assert!(!says(
            "QEMU emulator version 7.2.15 (Debian 1:7.2+dfsg-7+deb12u12)"
        ));
        assert!(!says("something else"));
        assert!(!can_save_state(None));
    }

    #[test]
    fn a_machine_differs_from_the_saved_one_in_its_own_paths_and_port_only() {
        let uefi = |vars: &str| Pflash {
            code: "/usr/share/OVMF/OVMF_CODE_4M.fd".into(),
            vars: vars.into(),
            format: "raw".into(),
        };
        let saved = MachineSpec {
            uefi: Some(uefi("/run/a/vars.fd")),
            ..spec()
        };
        let restored = MachineSpec {
            // Another name of the same file: its content is the caller's to compare.
            iso: "/tmp/other-name.iso".into(),
            serial_socket: "/run/b/serial.sock".into(),
            qmp_socket: "/run/b/qmp.sock".into(),
            pidfile: "/art/b/qemu.pid".into(),
            forward: Some((40999, 22)),
            uefi: Some(uefi("/run/b/vars.fd")),
            incoming: true,
            ..saved.clone()
        };
        assert_eq!(key(&saved).difference(&key(&restored)), None);
    }

    #[test]
    fn another_memory_size_cpu_count_accelerator_or_qemu_is_another_machine() {
        let saved = key(&spec());
        let more_memory = key(&MachineSpec {
            memory_mib: 2048,
            ..spec()
        });
        assert_eq!(
            saved.difference(&more_memory).unwrap(),
            "`2048M` where it was `1024M`"
        );
        let more_cpus = key(&MachineSpec { cpus: 4, ..spec() });
        assert!(saved.difference(&more_cpus).is_some());
        let kvm = key(&MachineSpec {
            accel: crate::platform::Accel::Kvm,
            ..spec()
        });
        assert!(saved.difference(&kvm).is_some());
        let other_qemu = StateKey::of(
            Path::new("/usr/bin/qemu-system-x86_64"),
            Some("QEMU 7.2.0"),
            &spec(),
        );
        assert_eq!(
            saved.difference(&other_qemu).unwrap(),
            "`QEMU 7.2.0` where it was `QEMU 10.0.2`"
        );
        // The forwards are the host's (slirp's), not the machine's.
        let guest_port = key(&MachineSpec {
            forward: Some((40022, 2222)),
            ..spec()
        });
        assert_eq!(saved.difference(&guest_port), None);
    }
}
