//! What will run: a scenario expands into one trial per architecture × firmware
//! (× prebuilt image, when `images:` lists several).
//! Listing works from this model alone, without booting anything.

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

/// The firmwares a scenario's `arch` runs with: those listed that the
/// architecture can boot (aarch64 skips `bios`), or by default every firmware it
/// has here: BIOS, and UEFI where firmware for it is installed (always on
/// aarch64, which has nothing else; a missing AAVMF then says what to install).
pub fn firmwares(scenario: &Scenario, arch: Arch) -> Vec<Firmware> {
    let possible = Firmware::all_for(arch);
    if !scenario.firmware.is_empty() {
        return scenario.firmware.iter().copied().filter(|f| possible.contains(f)).collect();
    }
    let search = crate::qemu::FirmwareSearch::system();
    possible
        .iter()
        .copied()
        .filter(|&f| f != Firmware::Uefi || arch == Arch::Aarch64 || search.find(arch, scenario.uefi_files(arch)).is_ok())
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
            for firmware in firmwares(scenario, arch) {
                for image in &images {
                    out.push(Trial { scenario: scenario.clone(), arch, firmware, image: image.clone() });
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
}
