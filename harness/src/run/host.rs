//! What this host must have for a trial, checked before QEMU starts: room for
//! the artifacts, and memory for the guest. A lack is the host's, not the ISO's.

use std::path::{Path, PathBuf};

/// What a trial's artifacts need at most: transcripts of a long boot, the
/// screendump, QEMU's logs. Checked before QEMU starts, because a full disk
/// otherwise shows as QEMU failing to write its pid file, or as a transcript
/// cut short.
const ARTIFACTS_SPACE_MIB: u64 = 16;

/// Why this host cannot run a trial (before anything about the ISO is known).
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("create {}", dir.display())]
    CreateDir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    PathWithNul(#[from] std::ffi::NulError),
    #[error("cannot see the free space in {}", dir.display())]
    FreeSpace {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no disk space for artifacts: {} has {free_mib} MiB free, a trial needs {ARTIFACTS_SPACE_MIB} MiB (transcripts, screendump, QEMU's logs)", dir.display())]
    NoSpace { dir: PathBuf, free_mib: u64 },
    #[error(
        "the guest needs {guest_mib} MiB (`memory:`), and this host has {host_mib} MiB in all"
    )]
    NoMemory { guest_mib: u64, host_mib: u64 },
    /// The scenario's console login names a password this run does not have.
    #[error(transparent)]
    Credentials(crate::checks::PasswordUnset),
    #[error("attach the serial console")]
    AttachConsole(#[source] std::io::Error),
    /// The machine saved for a shared boot would not run again.
    #[error("resume the machine after saving it for the other trials")]
    Resume(#[source] crate::qemu::QemuError),
}

/// An empty `dir` for a trial's artifacts: a transcript from an earlier run
/// must not be mistaken for this one's.
pub(super) fn fresh_dir(dir: &Path) -> Result<(), HostError> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).map_err(|source| HostError::CreateDir {
        dir: dir.to_owned(),
        source,
    })
}

/// Room for a trial's artifacts in `dir`.
pub(super) fn enough_space(dir: &Path) -> Result<(), HostError> {
    let free_mib = free_mib(dir)?;
    if free_mib < ARTIFACTS_SPACE_MIB {
        return Err(HostError::NoSpace {
            dir: dir.to_owned(),
            free_mib,
        });
    }
    Ok(())
}

/// The space left for this user in `dir`'s file system, in MiB.
pub(super) fn free_mib(dir: &Path) -> Result<u64, HostError> {
    let c_dir = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes())?;
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a NUL-terminated path and a statvfs to fill.
    if unsafe { libc::statvfs(c_dir.as_ptr(), &mut stat) } != 0 {
        return Err(HostError::FreeSpace {
            dir: dir.to_owned(),
            source: std::io::Error::last_os_error(),
        });
    }
    Ok((stat.f_bavail as u64).saturating_mul(stat.f_frsize as u64) / (1024 * 1024))
}

/// This host's memory in MiB (`MemTotal` in /proc/meminfo), if it can be read.
pub fn host_memory_mib() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find_map(|l| l.strip_prefix("MemTotal:"))?;
    Some(line.trim().strip_suffix("kB")?.trim().parse::<u64>().ok()? / 1024)
}

/// A guest bigger than the host's whole memory cannot run here. (Less than the
/// memory available now is fine: QEMU maps guest memory as the guest uses it.)
pub(super) fn enough_memory(guest_mib: u64, host_mib: Option<u64>) -> Result<(), HostError> {
    match host_mib {
        Some(host_mib) if guest_mib > host_mib => Err(HostError::NoMemory {
            guest_mib,
            host_mib,
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_guest_bigger_than_the_host_could_not_test() {
        assert!(enough_memory(1024, Some(2048)).is_ok());
        assert!(enough_memory(1024, None).is_ok());
        let e = enough_memory(4096, Some(2048)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the guest needs 4096 MiB (`memory:`), and this host has 2048 MiB in all"
        );
        assert!(
            host_memory_mib().is_some_and(|m| m > 0),
            "MemTotal unreadable"
        );
    }
}
