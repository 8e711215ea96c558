//! Shared boots: trials that would boot the same machine the same way (one
//! image, architecture, firmware, memory size, accelerator, boot menu entry
//! and console login) boot it once. The first of them, the leader, boots,
//! saves its machine at the shell and goes on with its own checks; each of
//! the others starts a QEMU of its own from that state (`restore`), so that
//! every scenario starts from the same shell and none sees another's changes.
//!
//! The `Board` hands the trials out to the pool's workers: the leaders and the
//! trials that boot alone at once, each leader's followers once it has saved
//! (or failed to: they then boot from power-on, saying why).

use super::options::RunOptions;
use super::resolve;
use crate::console::BootOutcome;
use crate::plan::Trial;
use crate::qemu::{self, PrivateDir, SavedState};
use crate::report::{SharedBoot, SharedRole, TrialPhase};
use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};

/// How a trial gets to its shell.
pub(super) enum Share<'a> {
    /// From power-on: it boots alone, or sharing is off (`--fresh-boot`,
    /// `fresh_boot:`), or the shared boot it was to start from failed (what
    /// its report says of it).
    Fresh(Option<SharedBoot>),
    /// From power-on, saving its machine at the shell for others.
    Lead(Leader<'a>),
    /// From the state a leader saved.
    Follow(Arc<SavedBoot>),
}

/// A machine saved at its shell, and what its trial found on the way there:
/// every follower's boot is this one.
pub(super) struct SavedBoot {
    /// The leader trial's name.
    pub booted_by: String,
    pub state: SavedState,
    /// The content of the ISO the saved machine booted (`image_hash`).
    pub image_hash: String,
    pub outcome: BootOutcome,
    /// The boot's phases, the console's settling included.
    pub phases: Vec<(TrialPhase, f64)>,
    /// The boot's serial console up to the save, copied beside the state.
    pub transcript: Option<PathBuf>,
    /// The saved machine's virtual CPUs: a restored one has as many.
    pub cpus: u32,
    /// What the leader's read-only probes answered just before the save
    /// (`order::read_before_save`): every clone's checks take them.
    pub answers: Vec<(String, crate::console::CommandOutput)>,
}

/// A state is removed once no trial can start from it any more (each
/// follower holds it until its trial ends), not only with the run.
impl Drop for SavedBoot {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.state.file);
        if let Some(transcript) = &self.transcript {
            let _ = std::fs::remove_file(transcript);
        }
    }
}

/// The trials' order of work, shared by the pool's workers.
pub(super) struct Board {
    work: Mutex<Work>,
    changed: Condvar,
    /// Where the saved states go: removed with the run, or by the signal
    /// handler when it is interrupted.
    states: Option<PrivateDir>,
    /// The leaders' virtual CPUs, hence their followers'.
    lead_cpus: u32,
}

struct Work {
    /// Trials to start now, in order, each with how it starts.
    ready: VecDeque<(usize, Ready)>,
    /// Each group's followers, until its leader has saved or given up.
    held: HashMap<usize, Vec<usize>>,
    /// Each group's leader's name and its number of followers.
    groups: Vec<(String, usize)>,
}

enum Ready {
    Alone,
    Lead(usize),
    Follow(Arc<SavedBoot>),
    Fallback(SharedBoot),
}

impl Board {
    /// Plans the trials' boots: those with the same `group_key` share one, if
    /// their QEMU can save a machine's state (`qemu::can_save_state`). With
    /// `jobs` at a time, a leader that boots while no other machine does
    /// gets `options.lone_cpus`.
    pub(super) fn new(trials: &[Trial], options: &RunOptions, jobs: usize) -> Board {
        let mut ready = VecDeque::new();
        let mut held: HashMap<usize, Vec<usize>> = HashMap::new();
        let mut groups: Vec<(String, usize)> = Vec::new();
        let mut leaders: HashMap<String, usize> = HashMap::new();
        // What is cheap to know first; a QEMU's version and an ISO's content
        // are asked for only of trials that could share, each once.
        let alike: Vec<Option<String>> = trials.iter().map(|t| group_key(t, options)).collect();
        let mut count: HashMap<&String, usize> = HashMap::new();
        for key in alike.iter().flatten() {
            *count.entry(key).or_default() += 1;
        }
        let mut can_save: HashMap<crate::platform::Arch, bool> = HashMap::new();
        let keys: Vec<Option<String>> = alike
            .iter()
            .zip(trials)
            .map(|(key, trial)| {
                let key = key.as_ref().filter(|k| count[k] > 1)?;
                let can = *can_save
                    .entry(trial.arch)
                    .or_insert_with(|| qemu::qemu_can_save(trial.arch));
                if !can {
                    return None;
                }
                // By content: two names of one ISO are one image. One that
                // cannot be read boots alone, and its trial says why.
                match prebuilt(trial, options) {
                    Some(path) => Some(format!("{key}; content {}", image_hash(path).ok()?)),
                    None => Some(key.clone()),
                }
            })
            .collect();
        for (i, key) in keys.iter().enumerate() {
            let shared = key
                .as_ref()
                .filter(|k| keys.iter().filter(|o| o.as_ref() == Some(k)).count() > 1);
            match shared {
                None => ready.push_back((i, Ready::Alone)),
                Some(key) => match leaders.get(key) {
                    Some(&group) => {
                        held.entry(group).or_default().push(i);
                        groups[group].1 += 1;
                    }
                    None => {
                        leaders.insert(key.clone(), groups.len());
                        ready.push_back((i, Ready::Lead(groups.len())));
                        groups.push((trials[i].name(), 0));
                    }
                },
            }
        }
        // Without a private directory for the states, nothing is shared.
        let states = if groups.is_empty() {
            None
        } else {
            PrivateDir::new()
                .map_err(|e| tracing::warn!("no directory for shared boots' states: {e}"))
                .ok()
        };
        if states.is_none() {
            let mut alone: Vec<usize> = ready.drain(..).map(|(i, _)| i).collect();
            alone.extend(held.drain().flat_map(|(_, f)| f));
            alone.sort_unstable();
            ready = alone.into_iter().map(|i| (i, Ready::Alone)).collect();
            groups.clear();
        }
        // The planned boots from power-on: the leaders and the trials alone.
        let boots = ready
            .iter()
            .filter(|(i, _)| trials[*i].skip.is_none())
            .count();
        let lead_cpus = if jobs.min(boots) <= 1 {
            options.lone_cpus
        } else {
            options.cpus
        };
        Board {
            work: Mutex::new(Work {
                ready,
                held,
                groups,
            }),
            changed: Condvar::new(),
            states,
            lead_cpus,
        }
    }

    /// The next trial to run and how it starts; waits while only followers of
    /// leaders still booting are left; `None` when no trial is left.
    pub(super) fn next(&self) -> Option<(usize, Share<'_>)> {
        let mut work = self.work.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some((i, ready)) = work.ready.pop_front() {
                let share = match ready {
                    Ready::Alone => Share::Fresh(None),
                    Ready::Fallback(why) => Share::Fresh(Some(why)),
                    Ready::Follow(saved) => Share::Follow(saved),
                    Ready::Lead(group) => Share::Lead(Leader {
                        board: self,
                        group,
                        clones: work.groups[group].1,
                        cpus: self.lead_cpus,
                        published: false,
                    }),
                };
                return Some((i, share));
            }
            if work.held.is_empty() {
                return None;
            }
            work = self.changed.wait(work).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Lets a group's followers start: from `saved`, or afresh.
    fn publish(&self, group: usize, saved: Result<Arc<SavedBoot>, String>) {
        let mut work = self.work.lock().unwrap_or_else(|e| e.into_inner());
        let booted_by = work.groups[group].0.clone();
        for i in work.held.remove(&group).unwrap_or_default() {
            let ready = match &saved {
                Ok(saved) => Ready::Follow(saved.clone()),
                Err(reason) => Ready::Fallback(SharedBoot {
                    booted_by: booted_by.clone(),
                    role: SharedRole::Fresh {
                        reason: reason.clone(),
                    },
                }),
            };
            work.ready.push_back((i, ready));
        }
        self.changed.notify_all();
    }
}

/// A trial that boots for others: it must `publish` its saved machine, or
/// its followers wait for nothing; dropped unpublished (its boot failed, it
/// panicked), it lets them boot afresh.
pub(super) struct Leader<'a> {
    board: &'a Board,
    group: usize,
    /// How many trials start from its state.
    pub clones: usize,
    /// Its machine's virtual CPUs, and its followers'.
    pub cpus: u32,
    published: bool,
}

impl Leader<'_> {
    /// Where its machine's state goes.
    pub(super) fn state_file(&self) -> Option<PathBuf> {
        let states = self.board.states.as_ref()?;
        Some(states.path().join(format!("shared-{}.state", self.group)))
    }

    /// The directory of the states, for its free space.
    pub(super) fn states_dir(&self) -> Option<&Path> {
        self.board.states.as_ref().map(PrivateDir::path)
    }

    pub(super) fn publish(&mut self, saved: Result<SavedBoot, String>) {
        self.published = true;
        self.board.publish(self.group, saved.map(Arc::new));
    }
}

impl Drop for Leader<'_> {
    fn drop(&mut self) {
        if !self.published {
            self.board.publish(
                self.group,
                Err("its trial ended before its machine reached a shell and was saved".into()),
            );
        }
    }
}

/// The prebuilt ISO a trial tests (`--image`, else `image:`), if any.
fn prebuilt<'a>(trial: &'a Trial, options: &'a RunOptions) -> Option<&'a PathBuf> {
    options.image.as_ref().or(trial.image.as_ref())
}

/// What trials must have in common to share a boot, as far as is cheaply
/// known before anything runs (a prebuilt ISO by its size: `Board::new`
/// reads the content of those that could share); `None` for a trial that
/// boots alone. What is only known later (an `iso:` host's build, QEMU's
/// command line) is checked when a follower starts (`restore`).
fn group_key(trial: &Trial, options: &RunOptions) -> Option<String> {
    let scenario = &trial.scenario;
    if options.fresh_boot || scenario.fresh_boot || trial.skip.is_some() {
        return None;
    }
    let image = match prebuilt(trial, options) {
        Some(path) => format!("an image of {} bytes", std::fs::metadata(path).ok()?.len()),
        None => {
            let host = resolve::flake_host(trial, options).ok()??;
            format!("flake host {}", host.attr(trial))
        }
    };
    Some(format!(
        "{image}; {} {}; {} MiB; accel {:?}; entry {:?}; login {:?}; uefi {:?}",
        trial.arch,
        trial.firmware,
        scenario.memory_mib,
        options.accel_for(scenario),
        scenario.boot.entry.as_ref().map(regex::Regex::as_str),
        scenario.boot.login,
        scenario.uefi_files(trial.arch),
    ))
}

/// The content of an ISO, as a BLAKE3 hash: a state is only restored onto
/// the very image it booted (the guest's page cache holds its blocks). Each
/// file (by path, size and modification time) is read once per run.
pub(super) fn image_hash(image: &Path) -> std::io::Result<String> {
    static SEEN: Mutex<Vec<(PathBuf, u64, std::time::SystemTime, String)>> = Mutex::new(Vec::new());
    let meta = std::fs::metadata(image)?;
    let (len, modified) = (meta.len(), meta.modified()?);
    let seen = |list: &[(PathBuf, u64, std::time::SystemTime, String)]| {
        list.iter()
            .find(|(p, l, m, _)| p == image && *l == len && *m == modified)
            .map(|(.., hash)| hash.clone())
    };
    if let Some(hash) = seen(&SEEN.lock().unwrap_or_else(|e| e.into_inner())) {
        return Ok(hash);
    }
    let mut hasher = blake3::Hasher::new();
    hasher.update_reader(std::fs::File::open(image)?)?;
    let hash = hasher.finalize().to_hex().to_string();
    SEEN.lock().unwrap_or_else(|e| e.into_inner()).push((
        image.to_owned(),
        len,
        modified,
        hash.clone(),
    ));
    Ok(hash)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::{Arch, Firmware};

    /// A trial of `yaml` on `image`.
    fn trial(yaml: &str, firmware: Firmware, image: &Path) -> Trial {
        let scenario = crate::scenario::Scenario::parse(Path::new("s.yaml"), yaml).unwrap();
        Trial {
            scenario: Arc::new(scenario),
            arch: Arch::X86_64,
            firmware,
            image: Some(image.to_owned()),
            skip: None,
        }
    }

    fn can_share() -> bool {
        qemu::qemu_can_save(Arch::X86_64)
    }

    /// Only trials of one image by content (not by name or size), firmware,
    /// memory, boot entry, console login and accelerator share a boot; steps
    /// do not matter. A leader that saves nothing lets its followers boot
    /// afresh.
    #[test]
    fn trials_that_boot_alike_share_one_boot() {
        if !can_share() {
            eprintln!("skipped: no QEMU here that can save a machine's state");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let (a, b, other) = (
            dir.path().join("a.iso"),
            dir.path().join("b.iso"),
            dir.path().join("c.iso"),
        );
        std::fs::write(&a, b"an image").unwrap();
        std::fs::write(&b, b"an image").unwrap();
        std::fs::write(&other, b"another image").unwrap();
        // As big as the first, not the same: only its content tells them apart.
        let same_size = dir.path().join("d.iso");
        std::fs::write(&same_size, b"an imagf").unwrap();
        let plain = "image: a.iso\narch: x86_64\n";
        let trials = [
            trial(plain, Firmware::Bios, &a),
            trial(plain, Firmware::Uefi, &a),
            trial(
                &format!("{plain}steps: [{{run: 'true'}}]\n"),
                Firmware::Bios,
                &a,
            ),
            trial(&format!("{plain}memory: 2G\n"), Firmware::Bios, &a),
            trial(&format!("{plain}fresh_boot: true\n"), Firmware::Bios, &a),
            // Another name of the same ISO.
            trial(plain, Firmware::Bios, &b),
            trial(plain, Firmware::Bios, &other),
            trial(plain, Firmware::Bios, &same_size),
            trial(
                &format!("{plain}boot:\n  entry: serial\n"),
                Firmware::Bios,
                &a,
            ),
            trial(
                &format!("{plain}boot:\n  login: root\n"),
                Firmware::Bios,
                &a,
            ),
            trial(&format!("{plain}accel: tcg\n"), Firmware::Bios, &a),
        ];
        let board = Board::new(&trials, &RunOptions::default(), 2);
        let mut order = Vec::new();
        let mut leader = None;
        while let Some((i, share)) = board.next() {
            match share {
                Share::Fresh(None) => order.push((i, "alone")),
                Share::Fresh(Some(why)) => {
                    assert_eq!(why.booted_by, "s::x86_64::bios");
                    let SharedRole::Fresh { reason } = why.role else {
                        panic!("not a fresh boot: {why:?}")
                    };
                    assert!(reason.contains("ended before"), "{reason}");
                    order.push((i, "fallback"));
                }
                Share::Follow(_) => unreachable!("the leader saved nothing"),
                Share::Lead(l) => {
                    assert_eq!(l.clones, 2);
                    order.push((i, "lead"));
                    // Its trial ends without saving: the followers boot afresh.
                    leader = Some(l);
                }
            }
            if order.len() == 9 {
                drop(leader.take());
            }
        }
        assert_eq!(
            order,
            [
                (0, "lead"),
                (1, "alone"),
                (3, "alone"),
                (4, "alone"),
                (6, "alone"),
                (7, "alone"),
                (8, "alone"),
                (9, "alone"),
                (10, "alone"),
                (2, "fallback"),
                (5, "fallback")
            ]
        );
    }

    #[test]
    fn fresh_boot_shares_nothing() {
        let image = tempfile::NamedTempFile::new().unwrap();
        let plain = "image: a.iso\narch: x86_64\n";
        let trials = [
            trial(plain, Firmware::Bios, image.path()),
            trial(plain, Firmware::Bios, image.path()),
        ];
        let options = RunOptions {
            fresh_boot: true,
            ..RunOptions::default()
        };
        let board = Board::new(&trials, &options, 2);
        let mut starts = Vec::new();
        while let Some((i, share)) = board.next() {
            starts.push((i, matches!(share, Share::Fresh(None))));
        }
        assert_eq!(starts, [(0, true), (1, true)]);
    }

    #[test]
    fn an_image_is_known_by_its_content() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.iso"), dir.path().join("b.iso"));
        std::fs::write(&a, b"one image").unwrap();
        std::fs::write(&b, b"one image").unwrap();
        assert_eq!(image_hash(&a).unwrap(), image_hash(&b).unwrap());
        std::fs::write(&b, b"another image").unwrap();
        assert_ne!(image_hash(&a).unwrap(), image_hash(&b).unwrap());
        assert!(image_hash(&dir.path().join("none.iso")).is_err());
    }
}
