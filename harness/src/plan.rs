//! What will run: a scenario expands into one trial per architecture × firmware
//! (× prebuilt image, when `images:` lists several).
//! Listing works from this model alone, without booting anything. A trial that
//! cannot run on this host stays in the plan, skipped with the reason, so that
//! `isotest list`, `isotest run` and `cargo test` all show it.

use crate::platform::{Arch, Firmware};
use crate::scenario::Scenario;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

/// One boot of one ISO with one firmware on one architecture.
#[derive(Debug, Clone)]
pub struct Trial {
    pub scenario: Arc<Scenario>,
    pub arch: Arch,
    pub firmware: Firmware,
    /// A prebuilt ISO from `image:`/`images:`; `None`: the flake host's build.
    pub image: Option<PathBuf>,
    /// Why this trial cannot run here, when it cannot (e.g. no OVMF for a
    /// firmware the scenario did not ask for by name).
    pub skip: Option<String>,
}

impl Trial {
    /// The name `cargo test` and `isotest list` show: `rescue::x86_64::bios`, and
    /// with `images:` the image's file stem after it (`rescue::x86_64::bios::2026-10`).
    pub fn name(&self) -> String {
        self.parts().join("::")
    }

    /// A file-system-safe form of the name, for the trial's artifact directory.
    pub fn dir_name(&self) -> String {
        self.parts().join("-").replace(['/', ' '], "_")
    }

    fn parts(&self) -> Vec<String> {
        let mut parts = vec![
            self.scenario.name.clone(),
            self.arch.to_string(),
            self.firmware.to_string(),
        ];
        if self.scenario.source.image_list {
            let image = self
                .image
                .as_deref()
                .and_then(|p| p.file_stem())
                .map(|s| s.to_string_lossy().into_owned());
            parts.extend(image);
        }
        parts
    }
}

/// The firmwares a scenario's `arch` runs with, each with why it cannot run
/// here, if it cannot. Those listed in `firmware:` that the architecture can
/// boot (aarch64 skips `bios`) always run: a missing one is the trial's "could
/// not test". By default every firmware the architecture has: BIOS, and UEFI,
/// skipped when no firmware for it is found (the reason says what to install).
pub fn firmwares(scenario: &Scenario, arch: Arch) -> Vec<(Firmware, Option<String>)> {
    let possible = Firmware::all_for(arch);
    if !scenario.firmware.is_empty() {
        return scenario
            .firmware
            .iter()
            .copied()
            .filter(|f| possible.contains(f))
            .map(|f| (f, None))
            .collect();
    }
    let search = crate::qemu::FirmwareSearch::system();
    possible
        .iter()
        .map(|&f| match f {
            Firmware::Bios => (f, None),
            Firmware::Uefi => (
                f,
                search
                    .find(arch, scenario.uefi_files(arch))
                    .err()
                    .map(|e| e.to_string()),
            ),
        })
        .collect()
}

/// Expands scenarios into trials, in file order, arch-major.
pub fn trials(scenarios: &[Arc<Scenario>]) -> Vec<Trial> {
    let mut out = Vec::new();
    for scenario in scenarios {
        let images: Vec<Option<PathBuf>> = if scenario.source.images.is_empty() {
            vec![None]
        } else {
            scenario.source.images.iter().cloned().map(Some).collect()
        };
        for &arch in &scenario.arch {
            for (firmware, skip) in firmwares(scenario, arch) {
                for image in &images {
                    out.push(Trial {
                        scenario: scenario.clone(),
                        arch,
                        firmware,
                        image: image.clone(),
                        skip: skip.clone(),
                    });
                }
            }
        }
    }
    out
}

/// `--shard K/N`: the K-th of N deterministic slices of a plan (1 ≤ K ≤ N).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub total: usize,
}

/// Why a plan cannot be split, or a shard spec is wrong. Both are usage errors.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlanError {
    /// (clap names the option and the value before the message.)
    #[error("expected K/N, two whole numbers with 1 <= K <= N (e.g. 2/4)")]
    ShardSyntax(String),
    #[error("K must be between 1 and N (e.g. 2/4)")]
    ShardRange(String),
    #[error(
        "{0}: no `arch:`, so its trials would be those of the machine that computes the plan; \
         a matrix or a shard must be the same on every machine: name its architectures (e.g. `arch: x86_64`)"
    )]
    HostArch(PathBuf),
    #[error(
        "{first} and {second} both make trial `{name}`: a trial is named after its scenario file's stem \
         (and, with `images:`, the image's), and two of one name would share an artifact directory; rename one"
    )]
    SameName {
        name: String,
        first: String,
        second: String,
    },
}

impl FromStr for Shard {
    type Err = PlanError;
    fn from_str(text: &str) -> Result<Shard, PlanError> {
        let syntax = || PlanError::ShardSyntax(text.to_owned());
        let (k, n) = text.split_once('/').ok_or_else(syntax)?;
        // Digits only: `+2/4` and ` 2/4` are typos, not shards.
        let number = |s: &str| {
            s.bytes()
                .all(|b| b.is_ascii_digit())
                .then(|| s.parse::<usize>().ok())
                .flatten()
        };
        let (index, total) = (number(k).ok_or_else(syntax)?, number(n).ok_or_else(syntax)?);
        if total == 0 || index == 0 || index > total {
            return Err(PlanError::ShardRange(text.to_owned()));
        }
        Ok(Shard { index, total })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.total)
    }
}

impl Shard {
    /// Whether the trial at `position` in the plan belongs to this shard. Round
    /// robin (as nextest's `count:K/N`): neighbouring trials, often of one slow
    /// scenario, land in different shards, and the sizes differ by one at most.
    pub fn contains(&self, position: usize) -> bool {
        position % self.total == self.index - 1
    }

    /// This shard's trials, in plan order. The slice depends on the plan only
    /// (never on skips, filters or the host), so every machine that computes the
    /// plan from the same scenarios agrees on it.
    pub fn select(&self, trials: Vec<Trial>) -> Vec<Trial> {
        trials
            .into_iter()
            .enumerate()
            .filter(|(i, _)| self.contains(*i))
            .map(|(_, t)| t)
            .collect()
    }
}

/// Every trial's name, and so its artifact directory, is its own (two scenario
/// files of one stem in different directories, or two images of one stem).
pub fn distinct_names(trials: &[Trial]) -> Result<(), PlanError> {
    let origin = |t: &Trial| match (&t.image, t.scenario.source.image_list) {
        (Some(image), true) => format!("{} (image {})", t.scenario.path.display(), image.display()),
        _ => t.scenario.path.display().to_string(),
    };
    let mut seen = std::collections::HashMap::new();
    for trial in trials {
        if let Some(first) = seen.insert(trial.dir_name(), trial) {
            return Err(PlanError::SameName {
                name: trial.name(),
                first: origin(first),
                second: origin(trial),
            });
        }
    }
    Ok(())
}

/// A plan other machines must share (a CI matrix, a shard) may not depend on
/// this one: every scenario must name its architectures. Skips may differ from
/// host to host; they never add or remove a trial.
pub fn host_independent(scenarios: &[Arc<Scenario>]) -> Result<(), PlanError> {
    match scenarios.iter().find(|s| !s.arch_given) {
        Some(s) => Err(PlanError::HostArch(s.path.clone())),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn one_trial_per_arch_and_firmware() {
        let s = Scenario::parse(
            Path::new("rescue.yaml"),
            "iso: rescue\narch: [x86_64, aarch64]\nfirmware: [bios, uefi]\n",
        )
        .unwrap();
        let names: Vec<_> = trials(&[Arc::new(s)]).iter().map(Trial::name).collect();
        assert_eq!(
            names,
            [
                "rescue::x86_64::bios",
                "rescue::x86_64::uefi",
                "rescue::aarch64::uefi"
            ]
        );
    }

    #[test]
    fn one_trial_per_listed_image() {
        let s = Scenario::parse(
            Path::new("s/rescue.yaml"),
            "iso: rescue\narch: x86_64\nfirmware: bios\nimages: [old/2026-09.iso, 2026-10.iso]\n",
        )
        .unwrap();
        let trials = trials(&[Arc::new(s)]);
        let names: Vec<_> = trials.iter().map(Trial::name).collect();
        assert_eq!(
            names,
            [
                "rescue::x86_64::bios::2026-09",
                "rescue::x86_64::bios::2026-10"
            ]
        );
        assert_eq!(
            trials[0].image.as_deref(),
            Some(Path::new("s/old/2026-09.iso"))
        );
        assert_eq!(trials[1].dir_name(), "rescue-x86_64-bios-2026-10");
    }

    #[test]
    fn a_default_firmware_that_is_missing_is_skipped_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("OVMF_CODE.fd");
        let yaml = format!(
            "iso: rescue\narch: x86_64\nuefi:\n  x86_64: {{ code: {0}, vars: {0} }}\n",
            missing.display()
        );
        let s = Scenario::parse(&dir.path().join("rescue.yaml"), &yaml).unwrap();
        let trials = trials(&[Arc::new(s)]);
        let plan: Vec<_> = trials.iter().map(|t| (t.name(), t.skip.clone())).collect();
        assert_eq!(
            plan,
            [
                ("rescue::x86_64::bios".to_owned(), None),
                (
                    "rescue::x86_64::uefi".to_owned(),
                    Some(format!("UEFI code: {}: no such file", missing.display()))
                )
            ]
        );
    }

    #[test]
    fn a_firmware_asked_for_by_name_is_never_skipped() {
        let yaml = "iso: rescue\narch: x86_64\nfirmware: uefi\nuefi:\n  x86_64: { code: /nonexistent/C.fd, vars: /nonexistent/V.fd }\n";
        let s = Scenario::parse(Path::new("rescue.yaml"), yaml).unwrap();
        let trials = trials(&[Arc::new(s)]);
        assert_eq!(trials.len(), 1);
        assert_eq!(
            trials[0].skip, None,
            "its missing firmware is the run's \"could not test\""
        );
    }

    #[test]
    fn two_trials_of_one_name_are_an_error() {
        let parse =
            |path: &str, yaml: &str| Arc::new(Scenario::parse(Path::new(path), yaml).unwrap());
        let images = parse("s/rescue.yaml", "iso: rescue\narch: x86_64\nfirmware: bios\nimages: [2026-09/rescue.iso, 2026-10/rescue.iso]\n");
        let e = distinct_names(&trials(&[images])).unwrap_err().to_string();
        assert!(e.starts_with("s/rescue.yaml (image s/2026-09/rescue.iso) and s/rescue.yaml (image s/2026-10/rescue.iso) both make trial `rescue::x86_64::bios::rescue`"), "{e}");
        let one = "iso: rescue\narch: x86_64\nfirmware: bios\n";
        let e = distinct_names(&trials(&[
            parse("a/rescue.yaml", one),
            parse("b/rescue.yaml", one),
        ]))
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("a/rescue.yaml and b/rescue.yaml both make trial `rescue::x86_64::bios`"),
            "{e}"
        );
        assert!(e.ends_with("rename one"), "{e}");
        assert_eq!(
            distinct_names(&trials(&[
                parse("a/rescue.yaml", one),
                parse("a/minimal.yaml", one)
            ])),
            Ok(())
        );
    }

    fn plan(yamls: &[&str]) -> Vec<Trial> {
        let scenarios: Vec<_> = yamls
            .iter()
            .enumerate()
            .map(|(i, y)| Arc::new(Scenario::parse(Path::new(&format!("s{i}.yaml")), y).unwrap()))
            .collect();
        trials(&scenarios)
    }

    #[test]
    fn every_trial_is_in_exactly_one_shard() {
        let sets: [&[&str]; 4] = [
            &["iso: a\narch: x86_64\nfirmware: bios\n"],
            &["iso: a\narch: [x86_64, aarch64]\nfirmware: [bios, uefi]\n"],
            &[
                "iso: a\narch: [x86_64, aarch64]\nfirmware: [bios, uefi]\n",
                "iso: b\narch: x86_64\nfirmware: [bios, uefi]\n",
            ],
            &[
                "iso: a\narch: x86_64\nfirmware: bios\nimages: [1.iso, 2.iso, 3.iso]\n",
                "iso: b\narch: [x86_64, aarch64]\nfirmware: uefi\n",
                "iso: c\narch: aarch64\nfirmware: uefi\n",
            ],
        ];
        for set in sets {
            let all: Vec<String> = plan(set).iter().map(Trial::name).collect();
            for total in 1..=5 {
                let mut seen: Vec<String> = Vec::new();
                for index in 1..=total {
                    let shard = Shard { index, total };
                    let names: Vec<String> =
                        shard.select(plan(set)).iter().map(Trial::name).collect();
                    // Computed twice, the same slice.
                    assert_eq!(
                        names,
                        shard
                            .select(plan(set))
                            .iter()
                            .map(Trial::name)
                            .collect::<Vec<_>>()
                    );
                    assert!(
                        names.len() <= all.len().div_ceil(total),
                        "{shard}: {names:?} is not balanced"
                    );
                    seen.extend(names);
                }
                seen.sort();
                let mut expected = all.clone();
                expected.sort();
                assert_eq!(
                    seen, expected,
                    "N = {total}: a trial is missing or in two shards"
                );
            }
        }
    }

    #[test]
    fn shards_are_round_robin_in_plan_order() {
        let trials = plan(&["iso: a\narch: [x86_64, aarch64]\nfirmware: [bios, uefi]\n"]);
        let names: Vec<_> = Shard { index: 1, total: 2 }
            .select(trials)
            .iter()
            .map(Trial::name)
            .collect();
        assert_eq!(names, ["s0::x86_64::bios", "s0::aarch64::uefi"]);
    }

    #[test]
    fn shard_specs() {
        assert_eq!("2/4".parse(), Ok(Shard { index: 2, total: 4 }));
        assert_eq!("1/1".parse(), Ok(Shard { index: 1, total: 1 }));
        assert_eq!(Shard { index: 3, total: 5 }.to_string(), "3/5");
        for bad in [
            "",
            "2",
            "2/",
            "/4",
            "a/4",
            "2/b",
            "+2/4",
            " 2/4",
            "2/4/6",
            "-1/4",
            "99999999999999999999999/1",
        ] {
            let e = bad.parse::<Shard>().unwrap_err();
            assert_eq!(e, PlanError::ShardSyntax(bad.to_owned()), "{bad:?}");
            assert_eq!(
                e.to_string(),
                "expected K/N, two whole numbers with 1 <= K <= N (e.g. 2/4)"
            );
        }
        for bad in ["0/4", "5/4", "0/0", "1/0"] {
            assert_eq!(
                bad.parse::<Shard>(),
                Err(PlanError::ShardRange(bad.to_owned()))
            );
        }
    }

    #[test]
    fn a_plan_that_depends_on_the_host_is_refused_for_a_matrix() {
        let given =
            Arc::new(Scenario::parse(Path::new("a.yaml"), "iso: a\narch: x86_64\n").unwrap());
        let host = Arc::new(Scenario::parse(Path::new("b.yaml"), "iso: b\n").unwrap());
        assert_eq!(host_independent(std::slice::from_ref(&given)), Ok(()));
        let e = host_independent(&[given, host]).unwrap_err();
        assert!(e.to_string().starts_with("b.yaml: no `arch:`"), "{e}");
    }
}
