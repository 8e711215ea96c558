//! What will run: a scenario expands into one trial per architecture × firmware.
//! Listing works from this model alone, without booting anything.

use crate::scenario::{Arch, Firmware, Scenario};
use std::sync::Arc;

/// One boot of one ISO with one firmware on one architecture.
#[derive(Debug, Clone)]
pub struct Trial {
    pub scenario: Arc<Scenario>,
    pub arch: Arch,
    pub firmware: Firmware,
}

impl Trial {
    /// The name `cargo test` and `isotest list` show: `rescue::x86_64::bios`.
    pub fn name(&self) -> String {
        format!("{}::{}::{}", self.scenario.name, self.arch, self.firmware)
    }

    /// A file-system-safe form of the name, for the trial's artifact directory.
    pub fn dir_name(&self) -> String {
        format!("{}-{}-{}", self.scenario.name, self.arch, self.firmware)
    }
}

/// Expands scenarios into trials, in file order, arch-major.
pub fn trials(scenarios: &[Arc<Scenario>]) -> Vec<Trial> {
    let mut out = Vec::new();
    for scenario in scenarios {
        for &arch in &scenario.arch {
            for &firmware in &scenario.firmware {
                out.push(Trial { scenario: scenario.clone(), arch, firmware });
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
            ["rescue::x86_64::bios", "rescue::x86_64::uefi", "rescue::aarch64::bios", "rescue::aarch64::uefi"]
        );
    }
}
