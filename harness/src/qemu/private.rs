//! The private directory of a trial (or a KVM probe): QEMU's serial and QMP
//! sockets, the UEFI variable store copy and the throwaway SSH key live there.
//! Mode 0700 whatever the umask, so no other local user can connect to the
//! console, read the key or the firmware's variables. Removed when dropped, and
//! by `remove_private_dirs` from the Ctrl-C/SIGTERM handler, which exits without
//! running destructors.

use std::collections::HashSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Every private directory that exists now.
static LIVE: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);

fn live() -> std::sync::MutexGuard<'static, Option<HashSet<PathBuf>>> {
    LIVE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Removes every private directory of this process; for Ctrl-C and SIGTERM
/// handlers (after `kill_all_machines`, so no QEMU still writes there).
pub fn remove_private_dirs() {
    for dir in live().iter().flatten() {
        if let Err(e) = std::fs::remove_dir_all(dir) {
            tracing::warn!("cannot remove {}: {e}", dir.display());
        }
    }
}

/// A directory in `$TMPDIR` (default /tmp) only its owner can enter.
#[derive(Debug)]
pub struct PrivateDir {
    dir: tempfile::TempDir,
}

impl PrivateDir {
    pub fn new() -> std::io::Result<PrivateDir> {
        let owner_only = std::fs::Permissions::from_mode(0o700);
        // Created 0700 (minus the umask), so there is no moment when others may
        // enter; then set to 0700 exactly, in case the umask took the owner's bits.
        let dir = tempfile::Builder::new().prefix("isotest-").permissions(owner_only.clone()).tempdir()?;
        std::fs::set_permissions(dir.path(), owner_only)?;
        live().get_or_insert_with(HashSet::new).insert(dir.path().to_owned());
        Ok(PrivateDir { dir })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        // The TempDir removes the directory itself right after this.
        if let Some(set) = live().as_mut() {
            set.remove(self.dir.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `remove_private_dirs` removes every registered directory: the tests here
    /// take turns. (The umask is process-wide and other tests write files, so a
    /// umask that would widen or narrow the mode is set in tests/cli.rs, in the
    /// `isotest` child only.)
    static TURN: Mutex<()> = Mutex::new(());

    #[test]
    fn owner_only() {
        let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
        let dir = PrivateDir::new().unwrap();
        let mode = dir.path().metadata().unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o700, "{mode:o}");
        assert!(dir.path().file_name().unwrap().to_string_lossy().starts_with("isotest-"));
    }

    #[test]
    fn removed_when_dropped_and_by_the_signal_handler() {
        let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
        let dropped = PrivateDir::new().unwrap();
        let path = dropped.path().to_owned();
        drop(dropped);
        assert!(!path.exists());
        assert!(!live().iter().flatten().any(|p| *p == path), "a dropped directory stays registered");

        let kept = PrivateDir::new().unwrap();
        std::fs::write(kept.path().join("serial.sock"), b"").unwrap();
        remove_private_dirs();
        assert!(!kept.path().exists(), "{} survived the handler", kept.path().display());
    }
}
