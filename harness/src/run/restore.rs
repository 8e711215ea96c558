//! A shared boot's two ends: the leader saves its machine at the shell, and
//! each follower starts a QEMU of its own from that state. A follower's
//! machine then must not live at the saved instant nor share its random
//! state: the clock is set from the host, and the kernel's random generator
//! reseeded (by the VM generation ID on x86_64, and from the host through
//! the console). Its SSH host keys and boot id stay the saved machine's;
//! its forwarded port and its UEFI variables' copy are its own. (The leader's
//! own clock falls behind by the save's time, under a second.)

use super::share::{image_hash, Leader, SavedBoot};
use super::start::{self, How, Start, StartFrom, Started};
use crate::checks;
use crate::console::{BootOutcome, CommandOutput, SerialConsole, Shell, ShellError};
use crate::qemu::{Machine, QemuError, StateKey};
use crate::report::{SharedBoot, SharedRole, TrialPhase};
use std::path::Path;
use std::time::{Duration, Instant};

/// How long a save or a restore of a guest of `memory_mib` may take: a
/// second or so per GiB under TCG here, given a minute per GiB.
fn state_within(memory_mib: u64) -> Duration {
    Duration::from_secs(60 * memory_mib.div_ceil(1024).max(1))
}

/// The follower's copy of the shared boot's console, up to the save.
pub(super) const SHARED_TRANSCRIPT: &str = "shared-boot.log";

/// What the leader's machine was when it was saved.
pub(super) struct AtShell<'a> {
    pub trial: &'a str,
    pub image: &'a Path,
    pub key: &'a StateKey,
    pub outcome: &'a BootOutcome,
    pub phases: &'a [(TrialPhase, f64)],
    pub transcript: &'a Path,
    pub memory_mib: u64,
    /// Its read-only probes' answers, read just before the save.
    pub answers: Vec<(String, CommandOutput)>,
}

/// Saves the leader's machine for its followers, and lets it run on. A save
/// that fails lets them boot afresh, and this trial goes on as if alone; a
/// machine that cannot be resumed is a fault of this host, never of the ISO.
pub(super) fn save(
    leader: &mut Leader<'_>,
    machine: &mut Machine,
    at: AtShell<'_>,
) -> Result<SharedBoot, QemuError> {
    let started = Instant::now();
    let trial = at.trial;
    let saved = save_state(leader, machine, at);
    let save_secs = started.elapsed().as_secs_f64();
    // The followers first: a good state stays good whatever happens here next.
    let role = match saved {
        Ok(saved) => {
            tracing::info!(
                trial,
                "machine saved at its shell in {save_secs:.1} s for {} other trial(s)",
                leader.clones
            );
            leader.publish(Ok(saved));
            SharedRole::Saved {
                clones: leader.clones,
                save_secs,
            }
        }
        Err(reason) => {
            tracing::warn!(trial, "the other trials boot afresh: {reason}");
            leader.publish(Err(reason.clone()));
            SharedRole::Unsaved { reason }
        }
    };
    // Stopped for the save whether or not it completed.
    machine.qmp().resume()?;
    Ok(SharedBoot {
        booted_by: trial.to_owned(),
        role,
    })
}

/// Room for a state of a guest of `memory_mib` (at most its memory: pages
/// it never used are holes in the file) beside the others.
fn room_for_state(dir: &Path, memory_mib: u64) -> Result<(), String> {
    let free = super::host::free_mib(dir).map_err(|e| crate::error::chain(&e))?;
    if free < memory_mib + 64 {
        return Err(format!(
            "{} has {free} MiB free, a state of this guest may take {memory_mib} MiB",
            dir.display()
        ));
    }
    Ok(())
}

fn save_state(
    leader: &Leader<'_>,
    machine: &mut Machine,
    at: AtShell<'_>,
) -> Result<SavedBoot, String> {
    let (file, dir) = leader
        .state_file()
        .zip(leader.states_dir())
        .ok_or("no private directory for the saved state")?;
    room_for_state(dir, at.memory_mib)?;
    if crate::fault::injected("save-fails") {
        return Err("injected fault: the save fails (ISOTEST_FAULT)".into());
    }
    let image_hash = image_hash(at.image)
        .map_err(|e| format!("reading {} to know it again: {e}", at.image.display()))?;
    let state = machine
        .save_state(at.key.clone(), &file, state_within(at.memory_mib))
        .map_err(|e| format!("saving the machine failed: {}", crate::error::chain(&e)))?;
    let transcript = file.with_extension("log");
    let transcript = std::fs::copy(at.transcript, &transcript)
        .map(|_| transcript)
        .map_err(|e| tracing::warn!("the shared boot's transcript is not kept: {e}"))
        .ok();
    Ok(SavedBoot {
        booted_by: at.trial.to_owned(),
        state,
        image_hash,
        outcome: at.outcome.clone(),
        phases: at.phases.to_vec(),
        transcript,
        cpus: leader.cpus,
        answers: at.answers,
    })
}

/// Why a follower boots afresh after all.
#[derive(Debug, thiserror::Error)]
pub(super) enum RestoreError {
    #[error("its ISO is not the one the shared boot booted (another content)")]
    OtherImage,
    #[error("reading its ISO")]
    ReadImage(#[source] std::io::Error),
    #[error("starting QEMU: {0}")]
    Start(String),
    #[error(transparent)]
    Qemu(#[from] QemuError),
    #[error("attaching the serial console")]
    Console(#[source] std::io::Error),
    #[error("the restored machine's shell did not answer")]
    Shell(#[source] ShellError),
    /// `ISOTEST_FAULT=restore-fails` (src/fault.rs), in the test suite only.
    #[error("injected fault: the restore fails (ISOTEST_FAULT)")]
    Injected,
}

/// A follower's machine, restored and ready for the checks.
pub(super) struct Restored {
    pub started: Started,
    pub console: SerialConsole,
    pub shared: SharedBoot,
    /// The restored shell's output files so far, removed with the checks' own.
    pub files: Vec<String>,
}

/// Starts `from`'s machine from `saved`: QEMU waiting for the state, the
/// state loaded, the console attached before the guest runs, then the shell
/// answering, the clock set and the random generator reseeded. `record`
/// hears of the start (the accelerator, QEMU's command line) before anything
/// can fail after it.
pub(super) fn restore(
    from: &StartFrom<'_>,
    saved: &SavedBoot,
    record: &mut dyn FnMut(&Start),
) -> Result<Restored, RestoreError> {
    let started_at = Instant::now();
    if image_hash(&from.image).map_err(RestoreError::ReadImage)? != saved.image_hash {
        return Err(RestoreError::OtherImage);
    }
    let start = start::start(&StartFrom {
        image: from.image.clone(),
        cpus: saved.cpus,
        how: How::Restore,
        ..*from
    });
    record(&start);
    let mut started = start
        .started
        .map_err(|e| RestoreError::Start(e.message.to_string()))?;
    if crate::fault::injected("restore-fails") {
        return Err(RestoreError::Injected);
    }
    let key = started.state_key.clone();
    let within = state_within(from.trial.scenario.memory_mib);
    started.machine.restore_state(&key, &saved.state, within)?;
    let mut console = started
        .attach_console(from.artifacts)
        .map_err(RestoreError::Console)?;
    // A guest that dies under the checks says so at once, as in a boot.
    crate::console::fatal_signs(&mut console);
    if let Some(transcript) = &saved.transcript {
        if let Err(e) = std::fs::copy(transcript, from.artifacts.join(SHARED_TRANSCRIPT)) {
            tracing::warn!("cannot copy the shared boot's transcript: {e}");
        }
    }
    started.machine.qmp().resume()?;
    let mut shell = Shell::new(&mut console, started.scale);
    // The first framed command re-synchronises: whatever the restored serial
    // port sends again first is not its answer.
    let (clock, randomness) =
        fresh_clock_and_randomness(&mut shell, from.trial.arch).map_err(RestoreError::Shell)?;
    let files = shell.into_files();
    let restore_secs = started_at.elapsed().as_secs_f64();
    Ok(Restored {
        started,
        console,
        shared: SharedBoot {
            booted_by: saved.booted_by.clone(),
            role: SharedRole::Restored {
                restore_secs,
                clock,
                randomness,
            },
        },
        files,
    })
}

/// How many random bytes of the host's go into the guest's pool.
const HOST_RANDOM_BYTES: usize = 32;

/// Sets the guest's clock from the host's and reseeds its random generator,
/// in the restored shell's first command (as root: `sudo -n` from a user's
/// shell, which the script finds out itself: one round trip fewer); says
/// what was done about each. A shell that does not answer it is a failed
/// restore.
fn fresh_clock_and_randomness(
    shell: &mut Shell<'_>,
    arch: crate::platform::Arch,
) -> Result<(String, String), ShellError> {
    let bytes = host_random_bytes();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let script = crate::console::sh_quote(&after_restore_script(now, &bytes));
    let command = format!(
        "isotest_s={script}; if [ \"$(id -u)\" = 0 ]; then sh -c \"$isotest_s\"; else sudo -n sh -c \"$isotest_s\"; fi"
    );
    let out = shell.run(&command, checks::COMMAND_TIMEOUT)?;
    // What sudo may say first (a warning) is not the script's.
    let Some(at) = out.output.find(RAN) else {
        // `sudo -n` refused (a user's shell without passwordless sudo).
        let why = format!("not done: it could not run as root ({})", out.output.trim());
        return Ok((why.clone(), why));
    };
    let said = &out.output[at..];
    let vmgenid = arch == crate::platform::Arch::X86_64;
    Ok((
        clock_said(said, now),
        randomness_said(said, vmgenid, bytes.is_some()),
    ))
}

/// The after-restore script's first line: it ran, as root.
const RAN: &str = "isotest after restore\n";

/// The guest's side: its clock before and whether `date -s` took the host's
/// (GNU date takes a fraction, BusyBox whole seconds); how many times its
/// kernel reseeded for a VM generation ID change; the host's bytes mixed into
/// /dev/urandom (uncredited); then, unless the kernel has reseeded for the
/// new generation ID already (the ID, new in every QEMU, went into the
/// reseed: the clones' generators differ), a reseed forced with
/// RNDRESEEDCRNG (`_IO('R', 7)`, linux/random.h) through perl or python3,
/// whichever the guest has (perl's start alone is 0.3 s of a restore under
/// TCG).
fn after_restore_script(now: Duration, bytes: &Option<Vec<u8>>) -> String {
    let (secs, millis) = (now.as_secs(), now.subsec_millis());
    let mix = bytes.as_ref().map_or(String::new(), |b| {
        let octal: String = b.iter().map(|x| format!("\\{x:03o}")).collect();
        format!("printf '{octal}' > /dev/urandom && echo mixed\n")
    });
    format!(
        "echo 'isotest after restore'\n\
         before=$(date +%s.%N)\n\
         if date -u -s @{secs}.{millis:03} >/dev/null 2>&1 || date -u -s @{secs} >/dev/null 2>&1; then echo \"clock set $before\"; else echo \"clock unset $before\"; fi\n\
         forks=$(dmesg 2>/dev/null | grep -c 'virtual machine fork'); echo \"forks $forks\"\n\
         {mix}\
         if [ \"$forks\" -gt 0 ]; then :\n\
         elif perl -e 'open(my $f, \">\", \"/dev/urandom\") or exit 1; ioctl($f, 0x5207, 0) or exit 1' 2>/dev/null; then echo 'reseeded perl'\n\
         elif python3 -c 'import fcntl, os; fcntl.ioctl(os.open(\"/dev/urandom\", os.O_WRONLY), 0x5207)' 2>/dev/null; then echo 'reseeded python3'\n\
         fi"
    )
}

/// The host's random bytes, if it has them to give.
fn host_random_bytes() -> Option<Vec<u8>> {
    use std::io::Read;
    let mut bytes = vec![0; HOST_RANDOM_BYTES];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| tracing::warn!("no random bytes from this host: {e}"))
        .ok()?;
    Some(bytes)
}

/// The clock's line of the script's answer, said for the report.
fn clock_said(said: &str, host: Duration) -> String {
    let Some(line) = said.lines().find_map(|l| l.strip_prefix("clock ")) else {
        return "not set: the guest did not answer for it".into();
    };
    let (set, before) = line.split_once(' ').unwrap_or((line, ""));
    let behind = before
        .parse::<f64>()
        .ok()
        .map(|guest| host.as_secs_f64() - guest);
    let by = match behind {
        Some(b) if b >= 0.0 => format!("the guest was {b:.1} s behind"),
        Some(b) => format!("the guest was {:.1} s ahead", -b),
        None => format!("the guest's clock read `{before}`"),
    };
    match set {
        "set" => format!("set from the host ({by})"),
        _ => format!("not set: `date -s` failed; {by}"),
    }
}

/// What the script's answer says was done about randomness.
fn randomness_said(said: &str, vmgenid: bool, host_bytes: bool) -> String {
    let mut done = Vec::new();
    let forks = said
        .lines()
        .find_map(|l| l.strip_prefix("forks "))
        .and_then(|n| n.trim().parse::<u32>().ok())
        .unwrap_or(0);
    if vmgenid {
        done.push(if forks > 0 {
            "the kernel reseeded on its new VM generation ID (vmgenid: \"crng reseeded due to virtual machine fork\")".to_owned()
        } else {
            "a new VM generation ID, but no reseed for it in the kernel's log yet (no vmgenid driver, or not yet handled)"
                .to_owned()
        });
    }
    let mixed = said.lines().any(|l| l == "mixed");
    if vmgenid && forks > 0 {
        done.push(if mixed {
            "the host's random bytes mixed in (for the kernel's next reseed)".to_owned()
        } else {
            "no bytes from the host".to_owned()
        });
        return done.join("; ");
    }
    let reseeded = said
        .lines()
        .find_map(|l| l.strip_prefix("reseeded "))
        .map(str::to_owned);
    done.push(match (mixed, reseeded) {
        (true, Some(tool)) => format!(
            "the host's random bytes mixed in and a reseed forced (RNDRESEEDCRNG through {tool})"
        ),
        (true, None) => {
            "the host's random bytes mixed in, no reseed forced (neither perl nor python3 could)"
                .into()
        }
        (false, Some(tool)) => {
            format!("a reseed forced (RNDRESEEDCRNG through {tool}), no bytes from the host")
        }
        (false, None) if host_bytes => "nothing from the host: /dev/urandom took no bytes".into(),
        (false, None) => "nothing from the host: it had no random bytes to give".into(),
    });
    done.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_sets_the_clock_and_feeds_the_host_bytes() {
        let script = after_restore_script(
            Duration::from_millis(1_700_000_000_250),
            &Some(vec![0, 7, 255]),
        );
        assert!(script.contains("date -u -s @1700000000.250 "), "{script}");
        assert!(script.contains("|| date -u -s @1700000000 "), "{script}");
        assert!(
            script.contains("printf '\\000\\007\\377' > /dev/urandom"),
            "{script}"
        );
        assert!(script.contains("0x5207"), "{script}");
        // Forced only when the kernel has not reseeded for its new generation ID.
        let skip = script
            .find("if [ \"$forks\" -gt 0 ]; then :")
            .expect(&script);
        assert!(skip < script.find("elif perl").expect(&script), "{script}");
        assert!(!after_restore_script(Duration::ZERO, &None).contains("printf"));
    }

    #[test]
    fn the_answer_says_what_was_done() {
        let host = Duration::from_secs(1_700_000_010);
        let said = "clock set 1700000000.500000000\nforks 1\nmixed\nreseeded perl\n";
        assert_eq!(
            clock_said(said, host),
            "set from the host (the guest was 9.5 s behind)"
        );
        // A reseed for the new VM generation ID: none forced.
        let randomness = randomness_said(said, true, true);
        assert!(
            randomness.starts_with("the kernel reseeded on its new VM generation ID"),
            "{randomness}"
        );
        assert!(
            randomness.ends_with("the host's random bytes mixed in (for the kernel's next reseed)"),
            "{randomness}"
        );
        // None yet, or no generation ID (aarch64): forced.
        for vmgenid in [true, false] {
            let randomness = randomness_said(
                "clock set 1\nforks 0\nmixed\nreseeded perl\n",
                vmgenid,
                true,
            );
            assert!(
                randomness.ends_with(
                    "the host's random bytes mixed in and a reseed forced (RNDRESEEDCRNG through perl)"
                ),
                "{randomness}"
            );
        }
        let busybox = "clock unset 1700000000.%N\nforks 0\nmixed\n";
        assert_eq!(
            clock_said(busybox, host),
            "not set: `date -s` failed; the guest's clock read `1700000000.%N`"
        );
        assert_eq!(
            randomness_said(busybox, false, true),
            "the host's random bytes mixed in, no reseed forced (neither perl nor python3 could)"
        );
        assert!(randomness_said(busybox, true, true).contains("no reseed for it"));
        assert_eq!(
            clock_said("", host),
            "not set: the guest did not answer for it"
        );
    }
}
