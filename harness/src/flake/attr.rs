//! How a host's ISO is named to `nix`.

use crate::platform::Arch;

/// The Nix system name of an architecture.
pub fn system(arch: Arch) -> &'static str {
    match arch {
        Arch::X86_64 => "x86_64-linux",
        Arch::Aarch64 => "aarch64-linux",
    }
}

/// `<flake>#packages.<system>.<host>`: the attribute of a host's ISO.
pub fn attr(flake: &str, arch: Arch, host: &str) -> String {
    format!("{flake}#packages.{}.{host}", system(arch))
}
