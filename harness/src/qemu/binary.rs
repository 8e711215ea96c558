//! Finding `qemu-system-<arch>` and saying what to install when it is missing.

use super::error::QemuError;
use crate::platform::Arch;
use std::path::PathBuf;

/// The QEMU system emulator for `arch`, from `$ISOTEST_QEMU_<ARCH>` or `PATH`.
pub fn find_qemu(arch: Arch) -> Result<PathBuf, QemuError> {
    if let Some(path) = std::env::var_os(format!("ISOTEST_QEMU_{}", arch.as_str().to_uppercase())) {
        return Ok(PathBuf::from(path));
    }
    find_in_path(arch, &std::env::var_os("PATH").unwrap_or_default())
}

/// The first line of `<binary> --version` (`QEMU emulator version 7.2.19 (Debian ...)`),
/// for the report; None if it cannot be run.
pub fn version(binary: &std::path::Path) -> Option<String> {
    let output = std::process::Command::new(binary)
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .output()
        .ok()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout
        .lines()
        .next()
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty())
}

fn find_in_path(arch: Arch, path: &std::ffi::OsStr) -> Result<PathBuf, QemuError> {
    let binary = format!("qemu-system-{arch}");
    std::env::split_paths(path)
        .map(|dir| dir.join(&binary))
        .find(|candidate| is_executable(candidate))
        .ok_or_else(|| QemuError::Missing {
            hint: install_hint(arch),
            binary,
        })
}

fn is_executable(path: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

fn install_hint(arch: Arch) -> String {
    let (debian, fedora, arch_linux, nix) = match arch {
        Arch::X86_64 => (
            "qemu-system-x86",
            "qemu-system-x86-core",
            "qemu-system-x86",
            "qemu",
        ),
        Arch::Aarch64 => (
            "qemu-system-arm",
            "qemu-system-aarch64-core",
            "qemu-system-aarch64",
            "qemu",
        ),
    };
    format!(
        "Debian/Ubuntu: apt-get install {debian}; Fedora: dnf install {fedora}; \
         Arch: pacman -S {arch_linux}; Nix: nix-shell -p {nix}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_binary_says_what_to_install() {
        let err = find_in_path(Arch::Aarch64, "/nonexistent".as_ref())
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("qemu-system-aarch64 not found on PATH"),
            "{err}"
        );
        assert!(err.contains("apt-get install qemu-system-arm"), "{err}");
    }
}
