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

use super::error::{QemuError, QmpError};
use super::qmp::Qmp;
use qapi::qmp;
use std::path::Path;
use std::time::{Duration, Instant};

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
        self.wait_for_migration(STEP, within)?;
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
                .and_then(|s| serde_json::to_value(s).ok())
                .and_then(|v| v.as_str().map(str::to_owned))
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
