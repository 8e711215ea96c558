//! The private directory of a trial (or a KVM probe): QEMU's serial and QMP
//! sockets, the UEFI variable store copy and the throwaway SSH key live there.
//! Mode 0700 whatever the umask, so no other local user can connect to the
//! console, read the key or the firmware's variables. Removed when dropped, and
//! by `remove_private_dirs` from the Ctrl-C/SIGTERM handler, which exits without
//! running destructors.
//!
//! A harness killed outright (SIGKILL, an abort, a power cut of its container)
//! runs neither: its QEMU dies with it (`PR_SET_PDEATHSIG`), its directory
//! stays. So each directory holds an owner record (pid, the process's start
//! time and the boot it ran in), and the first private directory a process
//! makes sweeps `$TMPDIR` of the ones whose owner is provably gone.

use std::collections::HashSet;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, Once};

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

/// The name prefix of every private directory.
const PREFIX: &str = "isotest-";

/// The owner record's file name inside a private directory.
const OWNER_FILE: &str = "owner";

impl PrivateDir {
    pub fn new() -> std::io::Result<PrivateDir> {
        static SWEPT: Once = Once::new();
        // Before this process makes its own: what a killed run left goes.
        SWEPT.call_once(|| {
            sweep_abandoned(&std::env::temp_dir());
        });
        let owner_only = std::fs::Permissions::from_mode(0o700);
        // Created 0700 (minus the umask), so there is no moment when others may
        // enter; then set to 0700 exactly, in case the umask took the owner's bits.
        let dir = tempfile::Builder::new()
            .prefix(PREFIX)
            .permissions(owner_only.clone())
            .tempdir()?;
        std::fs::set_permissions(dir.path(), owner_only)?;
        // Registered before anything can fail, so the signal handler removes it.
        live()
            .get_or_insert_with(HashSet::new)
            .insert(dir.path().to_owned());
        let private = PrivateDir { dir };
        Owner::me()?.write(private.path())?;
        Ok(private)
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

/// Who made a private directory: enough to tell, after the fact, whether that
/// very process still runs. A pid alone is not: pids are recycled, and a
/// directory whose owner died must not be kept forever because an unrelated
/// process got its pid, nor a live one removed. The pid with the process's
/// start time (clock ticks after boot, /proc/<pid>/stat field 22) names one
/// process of one boot; the boot id tells boots apart (/tmp may survive one).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Owner {
    pid: u32,
    start: u64,
    boot: String,
}

/// The first line of an owner record: says what the file is to a reader.
const OWNER_HEADER: &str = "isotest private directory; owner:";

impl Owner {
    fn me() -> std::io::Result<Owner> {
        let pid = std::process::id();
        let start = start_time(pid).ok_or_else(|| {
            std::io::Error::other("cannot read this process's start time in /proc/self/stat")
        })?;
        Ok(Owner {
            pid,
            start,
            boot: boot_id()?,
        })
    }

    fn render(&self) -> String {
        format!(
            "{OWNER_HEADER}\npid {}\nstart {}\nboot {}\n",
            self.pid, self.start, self.boot
        )
    }

    /// `None` for anything but a whole record: a torn or foreign file proves
    /// nothing. Whole means up to the final newline: a torn boot id is a
    /// different boot id.
    fn parse(text: &str) -> Option<Owner> {
        if !text.ends_with('\n') {
            return None;
        }
        let mut lines = text.lines();
        if lines.next()? != OWNER_HEADER {
            return None;
        }
        let mut field = |key: &str| {
            lines
                .next()?
                .strip_prefix(key)?
                .strip_prefix(' ')
                .map(str::to_owned)
        };
        let pid = field("pid")?.parse().ok()?;
        let start = field("start")?.parse().ok()?;
        let boot = field("boot")?;
        (!boot.is_empty()).then_some(Owner { pid, start, boot })
    }

    /// Written once, into a directory only we can enter.
    fn write(&self, dir: &Path) -> std::io::Result<()> {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(dir.join(OWNER_FILE))?;
        file.write_all(self.render().as_bytes())
    }

    /// Whether the owner may still run: same boot, and its pid is taken by a
    /// process that started when it did.
    fn alive(&self, this_boot: &str, start_of: impl Fn(u32) -> Option<u64>) -> bool {
        self.boot == this_boot && start_of(self.pid) == Some(self.start)
    }
}

/// A process's start time in clock ticks after boot (field 22 of
/// /proc/<pid>/stat), or `None` when there is no such process. The command name
/// (field 2) may hold spaces and parentheses, so fields count after its last `)`.
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_start_time(&stat)
}

fn parse_start_time(stat: &str) -> Option<u64> {
    let (_, after_name) = stat.rsplit_once(')')?;
    // Fields 3 (state) onwards; field 22 is the 20th of them.
    after_name.split_whitespace().nth(19)?.parse().ok()
}

/// This boot's id (a random UUID the kernel picks at boot).
fn boot_id() -> std::io::Result<String> {
    Ok(std::fs::read_to_string("/proc/sys/kernel/random/boot_id")?
        .trim()
        .to_owned())
}

/// Why a directory in `$TMPDIR` is left alone by the sweep; `None`: it was one
/// of ours, and its owner is gone.
fn keep_reason(
    dir: &Path,
    me: u32,
    this_boot: &str,
    start_of: &dyn Fn(u32) -> Option<u64>,
) -> Option<String> {
    // Not followed: a symlink named like ours is not ours, wherever it points.
    let meta = match dir.symlink_metadata() {
        Ok(meta) => meta,
        Err(e) => return Some(format!("cannot stat: {e}")),
    };
    if !meta.file_type().is_dir() {
        return Some("not a directory".into());
    }
    if meta.uid() != me {
        return Some(format!("owned by uid {}", meta.uid()));
    }
    if meta.mode() & 0o7777 != 0o700 {
        return Some(format!(
            "mode {:o}, not a private directory's 0700",
            meta.mode() & 0o7777
        ));
    }
    let record = match read_no_follow(&dir.join(OWNER_FILE)) {
        Ok(text) => text,
        // No record: being made right now, or by a version that wrote none.
        Err(e) => return Some(format!("no owner record: {e}")),
    };
    let Some(owner) = Owner::parse(&record) else {
        return Some("the owner record is not one".into());
    };
    if owner.alive(this_boot, start_of) {
        return Some(format!("its owner (pid {}) runs", owner.pid));
    }
    None
}

/// A regular file's text, refusing a symlink in its place.
fn read_no_follow(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let mut text = String::new();
    // An owner record is a few lines; a bigger file is not one.
    file.by_ref().take(4096).read_to_string(&mut text)?;
    Ok(text)
}

/// Removes the private directories in `tmp` that a killed harness left: ours
/// by name, type, owner, mode and owner record, whose owner no longer runs.
/// Anything else is left alone. Returns what was removed.
pub fn sweep_abandoned(tmp: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return Vec::new();
    };
    let Ok(this_boot) = boot_id() else {
        return Vec::new();
    };
    // SAFETY: geteuid(2) cannot fail.
    let me = unsafe { libc::geteuid() };
    let mut removed = Vec::new();
    for dir in entries.filter_map(|e| e.ok()).map(|e| e.path()) {
        if !dir
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with(PREFIX))
        {
            continue;
        }
        if let Some(why) = keep_reason(&dir, me, &this_boot, &start_time) {
            tracing::debug!("kept {}: {why}", dir.display());
            continue;
        }
        // remove_dir_all does not follow symlinks inside the directory.
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {
                tracing::info!("removed {}, left by a killed isotest", dir.display());
                removed.push(dir);
            }
            Err(e) => tracing::warn!(
                "cannot remove {}, left by a killed isotest: {e}",
                dir.display()
            ),
        }
    }
    removed
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
        assert!(dir
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("isotest-"));
        let record = std::fs::read_to_string(dir.path().join(OWNER_FILE)).unwrap();
        let owner = Owner::parse(&record).expect("a whole owner record");
        assert_eq!(owner, Owner::me().unwrap());
        assert!(owner.alive(&boot_id().unwrap(), start_time), "{record}");
    }

    #[test]
    fn an_owner_record_round_trips_and_a_torn_one_proves_nothing() {
        let owner = Owner {
            pid: 4242,
            start: 123456,
            boot: "b1f0".into(),
        };
        let text = owner.render();
        assert_eq!(Owner::parse(&text), Some(owner));
        for cut in 0..text.len() {
            let torn = &text[..cut];
            assert_eq!(Owner::parse(torn), None, "{torn:?}");
        }
        assert_eq!(
            Owner::parse("isotest private directory; owner:\npid x\nstart 1\nboot b\n"),
            None
        );
        assert_eq!(Owner::parse("pid 1\nstart 1\nboot b\n"), None);
    }

    #[test]
    fn the_start_time_is_field_22_whatever_the_command_name() {
        // A command name with spaces and parentheses (as `comm` may be).
        let stat = "77 (a) b (c)) S 1 77 77 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 1 0 987654 1000 50";
        assert_eq!(parse_start_time(stat), Some(987654));
        assert_eq!(parse_start_time("77 (x) S 1"), None);
        let mine = start_time(std::process::id()).expect("our own start time");
        assert_eq!(
            start_time(std::process::id()),
            Some(mine),
            "a start time does not change"
        );
        assert_eq!(start_time(u32::MAX), None, "no such process");
    }

    #[test]
    fn an_owner_is_alive_only_as_the_same_process_of_the_same_boot() {
        let owner = Owner {
            pid: 10,
            start: 500,
            boot: "this".into(),
        };
        assert!(owner.alive("this", |pid| (pid == 10).then_some(500)));
        assert!(!owner.alive("this", |_| None), "no process with that pid");
        assert!(!owner.alive("this", |_| Some(501)), "the pid was recycled");
        assert!(
            !owner.alive("another", |_| Some(500)),
            "a record from an earlier boot"
        );
    }

    /// A pid that no process has now: a child that exited and was reaped.
    fn dead_pid() -> u32 {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        child.wait().unwrap();
        child.id()
    }

    /// `tmp/name`, mode `mode`, with `record` as its owner record (if any).
    fn private_like(tmp: &Path, name: &str, mode: u32, record: Option<&Owner>) -> PathBuf {
        let dir = tmp.join(name);
        std::fs::create_dir(&dir).unwrap();
        if let Some(owner) = record {
            owner.write(&dir).unwrap();
        }
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode)).unwrap();
        dir
    }

    #[test]
    fn the_sweep_removes_only_private_directories_whose_owner_is_gone() {
        let tmp = tempfile::tempdir().unwrap();
        let t = tmp.path();
        let me = Owner::me().unwrap();
        let dead = Owner {
            pid: dead_pid(),
            start: 1,
            boot: me.boot.clone(),
        };
        let recycled = Owner {
            start: me.start + 1,
            ..me.clone()
        };
        let earlier_boot = Owner {
            boot: format!("{}-before", me.boot),
            ..me.clone()
        };

        let gone = [
            private_like(t, "isotest-dead", 0o700, Some(&dead)),
            private_like(t, "isotest-recycled", 0o700, Some(&recycled)),
            private_like(t, "isotest-earlier-boot", 0o700, Some(&earlier_boot)),
        ];
        // What a removed directory points to is not followed.
        let outside = private_like(t, "outside", 0o755, None);
        std::fs::write(outside.join("precious"), "").unwrap();
        std::os::unix::fs::symlink(&outside, gone[0].join("link")).unwrap();
        std::fs::write(gone[0].join("serial.sock"), "").unwrap();

        let kept = [
            private_like(t, "isotest-live", 0o700, Some(&me)),
            private_like(t, "isotest-no-record", 0o700, None),
            private_like(t, "isotest-open", 0o755, Some(&dead)),
            private_like(t, "other-dead", 0o700, Some(&dead)),
        ];
        let torn = private_like(t, "isotest-torn", 0o700, None);
        std::fs::write(torn.join(OWNER_FILE), &dead.render()[..40]).unwrap();
        // A record that is a symlink, and a symlink in place of the directory.
        let linked_record = private_like(t, "isotest-linked-record", 0o700, None);
        std::fs::write(outside.join("record"), dead.render()).unwrap();
        std::os::unix::fs::symlink(outside.join("record"), linked_record.join(OWNER_FILE)).unwrap();
        let target = private_like(t, "target", 0o700, Some(&dead));
        std::os::unix::fs::symlink(&target, t.join("isotest-symlink")).unwrap();
        std::fs::write(t.join("isotest-file"), dead.render()).unwrap();

        let mut removed = sweep_abandoned(t);
        removed.sort();
        let mut expected = gone.to_vec();
        expected.sort();
        assert_eq!(removed, expected);
        for path in kept.iter().chain([
            &torn,
            &linked_record,
            &target,
            &t.join("isotest-symlink"),
            &t.join("isotest-file"),
        ]) {
            assert!(
                path.symlink_metadata().is_ok(),
                "{} was removed",
                path.display()
            );
        }
        assert!(
            outside.join("precious").exists(),
            "the sweep followed a symlink"
        );
        assert!(
            target.join(OWNER_FILE).exists(),
            "the sweep followed the directory's symlink"
        );
    }

    #[test]
    fn the_sweep_leaves_another_users_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let dead = Owner {
            pid: dead_pid(),
            start: 1,
            boot: boot_id().unwrap(),
        };
        let dir = private_like(tmp.path(), "isotest-theirs", 0o700, Some(&dead));
        // SAFETY: geteuid(2) cannot fail.
        let me = unsafe { libc::geteuid() };
        let why = keep_reason(&dir, me.wrapping_add(1), &dead.boot, &start_time);
        assert_eq!(why, Some(format!("owned by uid {me}")));
        assert_eq!(
            keep_reason(&dir, me, &dead.boot, &start_time),
            None,
            "ours, with a dead owner"
        );
    }

    #[test]
    fn removed_when_dropped_and_by_the_signal_handler() {
        let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
        let dropped = PrivateDir::new().unwrap();
        let path = dropped.path().to_owned();
        drop(dropped);
        assert!(!path.exists());
        assert!(
            !live().iter().flatten().any(|p| *p == path),
            "a dropped directory stays registered"
        );

        let kept = PrivateDir::new().unwrap();
        std::fs::write(kept.path().join("serial.sock"), b"").unwrap();
        remove_private_dirs();
        assert!(
            !kept.path().exists(),
            "{} survived the handler",
            kept.path().display()
        );
    }
}
