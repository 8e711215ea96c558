//! The platform a trial runs on: the guest's architecture, its firmware and the
//! accelerator. Scenarios name them, `qemu` starts machines for them, `flake`
//! builds for them and `matrix` spreads them over CI runners, so they belong to
//! none of those modules.

use std::fmt;

/// A guest CPU architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Arch {
    X86_64,
    Aarch64,
}

impl Arch {
    /// The architecture of the machine the harness runs on, if it is one we boot.
    pub fn host() -> Option<Arch> {
        match std::env::consts::ARCH {
            "x86_64" => Some(Arch::X86_64),
            "aarch64" => Some(Arch::Aarch64),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
        }
    }
}

impl std::str::FromStr for Arch {
    type Err = UnknownArch;
    fn from_str(s: &str) -> Result<Arch, UnknownArch> {
        match s {
            "x86_64" => Ok(Arch::X86_64),
            "aarch64" => Ok(Arch::Aarch64),
            _ => Err(UnknownArch(s.to_owned())),
        }
    }
}

/// An architecture name isotest does not boot.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown architecture `{0}` (known: x86_64, aarch64)")]
pub struct UnknownArch(pub String);

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the machine boots the ISO.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Firmware {
    Bios,
    Uefi,
}

impl Firmware {
    /// The firmwares `arch` can boot with: x86_64 PCs have BIOS and UEFI; ARM64
    /// machines boot UEFI only.
    pub fn all_for(arch: Arch) -> &'static [Firmware] {
        match arch {
            Arch::X86_64 => &[Firmware::Bios, Firmware::Uefi],
            Arch::Aarch64 => &[Firmware::Uefi],
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Firmware::Bios => "bios",
            Firmware::Uefi => "uefi",
        }
    }
}

impl std::str::FromStr for Firmware {
    type Err = UnknownFirmware;
    fn from_str(s: &str) -> Result<Firmware, UnknownFirmware> {
        match s {
            "bios" => Ok(Firmware::Bios),
            "uefi" => Ok(Firmware::Uefi),
            _ => Err(UnknownFirmware(s.to_owned())),
        }
    }
}

/// A firmware name isotest does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown firmware `{0}` (known: bios, uefi)")]
pub struct UnknownFirmware(pub String);

impl fmt::Display for Firmware {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The accelerator asked for: a scenario's `accel:` or `--accel`, which wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum AccelChoice {
    /// KVM where the ISO really runs under it, else TCG.
    #[default]
    Auto,
    Kvm,
    Tcg,
}

impl AccelChoice {
    pub fn as_str(self) -> &'static str {
        match self {
            AccelChoice::Auto => "auto",
            AccelChoice::Kvm => "kvm",
            AccelChoice::Tcg => "tcg",
        }
    }
}

/// The accelerator a trial's machine runs under, once `Auto` is decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    Kvm,
    Tcg,
}

impl Accel {
    pub fn as_str(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        }
    }

    /// How much longer every internal wait is under software emulation.
    pub fn time_scale(self) -> u32 {
        match self {
            Accel::Kvm => 1,
            Accel::Tcg => 4,
        }
    }
}

impl fmt::Display for Accel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
