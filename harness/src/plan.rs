//! What will run: a scenario expands into one trial per architecture × firmware
//! (× prebuilt image, when `images:` lists several).
//! Listing works from this model alone, without booting anything. A trial that
//! cannot run on this host stays in the plan, skipped with the reason, so that
//! `isotest list`, `isotest run` and `cargo test` all show it.

use crate::scenario::{Arch, Firmware, Scenario};
use std::path::PathBuf;
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
        let mut parts = vec![self.scenario.name.clone(), self.arch.to_string(), self.firmware.to_string()];
        if self.scenario.source.image_list {
            let image = self.image.as_deref().and_then(|p| p.file_stem()).map(|s| s.to_string_lossy().into_owned());
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
        return scenario.firmware.iter().copied().filter(|f| possible.contains(f)).map(|f| (f, None)).collect();
    }
    let search = crate::qemu::FirmwareSearch::system();
    possible
        .iter()
        .map(|&f| match f {
            Firmware::Bios => (f, None),
            Firmware::Uefi => (f, search.find(arch, scenario.uefi_files(arch)).err().map(|e| e.to_string())),
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
                    out.push(Trial { scenario: scenario.clone(), arch, firmware, image: image.clone(), skip: skip.clone() });
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn one_trial_per_arch_and_firmware() {
        let s = Scenario::parse(Path::new("rescue.yaml"), "iso: rescue\narch: [x86_64, aarch64]\nfirmware: [bios, uefi]\n")
            .unwrap();
        let names: Vec<_> = trials(&[Arc::new(s)]).iter().map(Trial::name).collect();
        assert_eq!(
            names,
            ["rescue::x86_64::bios", "rescue::x86_64::uefi", "rescue::aarch64::uefi"]
        );
    }

    #[test]
    fn one_trial_per_listed_image() {
        let s = Scenario::parse(Path::new("s/rescue.yaml"), "iso: rescue\narch: x86_64\nfirmware: bios\nimages: [old/2026-09.iso, 2026-10.iso]\n")
            .unwrap();
        let trials = trials(&[Arc::new(s)]);
        let names: Vec<_> = trials.iter().map(Trial::name).collect();
        assert_eq!(names, ["rescue::x86_64::bios::2026-09", "rescue::x86_64::bios::2026-10"]);
        assert_eq!(trials[0].image.as_deref(), Some(Path::new("s/old/2026-09.iso")));
        assert_eq!(trials[1].dir_name(), "rescue-x86_64-bios-2026-10");
    }

    #[test]
    fn a_default_firmware_that_is_missing_is_skipped_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("OVMF_CODE.fd");
        let yaml = format!("iso: rescue\narch: x86_64\nuefi:\n  x86_64: {{ code: {0}, vars: {0} }}\n", missing.display());
        let s = Scenario::parse(&dir.path().join("rescue.yaml"), &yaml).unwrap();
        let trials = trials(&[Arc::new(s)]);
        let plan: Vec<_> = trials.iter().map(|t| (t.name(), t.skip.clone())).collect();
        assert_eq!(
            plan,
            [
                ("rescue::x86_64::bios".to_owned(), None),
                ("rescue::x86_64::uefi".to_owned(), Some(format!("UEFI code: {}: no such file", missing.display())))
            ]
        );
    }

    #[test]
    fn a_firmware_asked_for_by_name_is_never_skipped() {
        let yaml = "iso: rescue\narch: x86_64\nfirmware: uefi\nuefi:\n  x86_64: { code: /nonexistent/C.fd, vars: /nonexistent/V.fd }\n";
        let s = Scenario::parse(Path::new("rescue.yaml"), yaml).unwrap();
        let trials = trials(&[Arc::new(s)]);
        assert_eq!(trials.len(), 1);
        assert_eq!(trials[0].skip, None, "its missing firmware is the run's \"could not test\"");
    }
}
