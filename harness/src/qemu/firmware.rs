//! UEFI firmware: finding a code image and a variable-store template for an
//! architecture. In order: an explicit override (scenario `uefi:`, then
//! `ISOTEST_UEFI_CODE_<ARCH>`/`ISOTEST_UEFI_VARS_<ARCH>`), QEMU's firmware
//! descriptors (docs/interop/firmware.json: the files distributions install for
//! libvirt and friends), then the paths distributions are known to use.
//! `ISOTEST_FIRMWARE_DIRS` replaces the last two with descriptor directories of
//! one's own (empty: none, which hides the installed firmware from a test).
//!
//! Secure Boot builds are passed over: they need SMM machine options, and the
//! boot loaders of most rescue ISOs are not signed for them.

use crate::platform::Arch;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// A UEFI firmware: `code` is mapped read-only (pflash 0), a copy of `vars`
/// writable (pflash 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UefiFirmware {
    pub code: PathBuf,
    pub vars: PathBuf,
    /// The images' format, `raw` or `qcow2`.
    pub format: String,
    /// Where it was found, for logs and reports.
    pub found_by: String,
}

#[derive(Debug, thiserror::Error)]
pub enum FirmwareError {
    #[error("no UEFI firmware for {arch} found (looked at {looked}); install it: {hint}")]
    Missing {
        arch: Arch,
        looked: String,
        hint: String,
    },
    #[error("{what}: {path}: no such file")]
    BadOverride { what: String, path: PathBuf },
}

/// Where to look. `system()` is this machine; tests make their own.
#[derive(Debug, Clone, Default)]
pub struct FirmwareSearch {
    /// Descriptor directories, lowest precedence first.
    pub descriptor_dirs: Vec<PathBuf>,
    /// (code, vars) pairs distributions install, per architecture.
    pub known: Vec<(Arch, PathBuf, PathBuf)>,
    /// Explicit (code, vars), e.g. from the environment.
    pub overrides: Vec<(Arch, PathBuf, PathBuf)>,
}

impl FirmwareSearch {
    /// QEMU's descriptor directories, the distributions' paths, and the
    /// `ISOTEST_UEFI_CODE_<ARCH>`/`ISOTEST_UEFI_VARS_<ARCH>` variables; or, when
    /// `ISOTEST_FIRMWARE_DIRS` is set, only the descriptor directories it lists.
    pub fn system() -> FirmwareSearch {
        let overrides = env_overrides();
        if let Some(dirs) = std::env::var_os("ISOTEST_FIRMWARE_DIRS") {
            let descriptor_dirs = std::env::split_paths(&dirs)
                .filter(|d| !d.as_os_str().is_empty())
                .collect();
            return FirmwareSearch {
                descriptor_dirs,
                known: Vec::new(),
                overrides,
            };
        }
        let mut descriptor_dirs = vec![
            PathBuf::from("/usr/share/qemu/firmware"),
            PathBuf::from("/etc/qemu/firmware"),
        ];
        let config = std::env::var_os("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")));
        descriptor_dirs.extend(config.map(|c| c.join("qemu/firmware")));
        FirmwareSearch {
            descriptor_dirs,
            known: known_paths(),
            overrides,
        }
    }

    /// The firmware for `arch`; `explicit` (a scenario's choice) comes first.
    pub fn find(
        &self,
        arch: Arch,
        explicit: Option<(&Path, &Path)>,
    ) -> Result<UefiFirmware, FirmwareError> {
        let env = self
            .overrides
            .iter()
            .find(|(a, _, _)| *a == arch)
            .map(|(_, c, v)| (c.as_path(), v.as_path()));
        if let Some((code, vars)) = explicit.or(env) {
            for (what, path) in [("UEFI code", code), ("UEFI vars", vars)] {
                if !path.is_file() {
                    return Err(FirmwareError::BadOverride {
                        what: what.into(),
                        path: path.to_owned(),
                    });
                }
            }
            let found_by = if explicit.is_some() {
                "the scenario"
            } else {
                "the environment"
            };
            let format = if has_extension(code, "qcow2") {
                "qcow2"
            } else {
                "raw"
            };
            return Ok(UefiFirmware {
                code: code.into(),
                vars: vars.into(),
                format: format.into(),
                found_by: found_by.into(),
            });
        }
        if let Some(found) = self.described(arch) {
            return Ok(found);
        }
        for (a, code, vars) in &self.known {
            if *a == arch && code.is_file() && vars.is_file() {
                let format = if has_extension(code, "qcow2") {
                    "qcow2"
                } else {
                    "raw"
                };
                return Ok(UefiFirmware {
                    code: code.clone(),
                    vars: vars.clone(),
                    format: format.into(),
                    found_by: "a known path".into(),
                });
            }
        }
        let mut looked: Vec<String> = self
            .descriptor_dirs
            .iter()
            .map(|d| format!("{}/*.json", d.display()))
            .collect();
        looked.extend(
            self.known
                .iter()
                .filter(|(a, _, _)| *a == arch)
                .map(|(_, c, _)| c.display().to_string()),
        );
        if looked.is_empty() {
            looked.push("nothing: ISOTEST_FIRMWARE_DIRS names no directory".into());
        }
        Err(FirmwareError::Missing {
            arch,
            looked: looked.join(", "),
            hint: install_hint(arch),
        })
    }

    /// Descriptors in precedence order: by file name, a later directory's file
    /// replacing an earlier one's of the same name (as QEMU's spec says).
    fn described(&self, arch: Arch) -> Option<UefiFirmware> {
        let mut by_name: std::collections::BTreeMap<std::ffi::OsString, PathBuf> =
            Default::default();
        for dir in &self.descriptor_dirs {
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
                if has_extension(&path, "json") {
                    by_name.insert(path.file_name().unwrap_or_default().to_owned(), path);
                }
            }
        }
        by_name.values().find_map(|path| {
            let text = std::fs::read_to_string(path).ok()?;
            let descriptor: Descriptor = serde_json::from_str(&text).ok()?;
            descriptor
                .usable(arch)
                .map(|(code, vars, format)| UefiFirmware {
                    code,
                    vars,
                    format,
                    found_by: path.display().to_string(),
                })
        })
    }
}

/// (arch, code, vars) from `ISOTEST_UEFI_CODE_<ARCH>` and `ISOTEST_UEFI_VARS_<ARCH>`.
fn env_overrides() -> Vec<(Arch, PathBuf, PathBuf)> {
    let mut overrides = Vec::new();
    for arch in [Arch::X86_64, Arch::Aarch64] {
        let var = |kind: &str| {
            std::env::var_os(format!(
                "ISOTEST_UEFI_{kind}_{}",
                arch.as_str().to_uppercase()
            ))
        };
        if let (Some(code), Some(vars)) = (var("CODE"), var("VARS")) {
            overrides.push((arch, PathBuf::from(code), PathBuf::from(vars)));
        }
    }
    overrides
}

fn has_extension(path: &Path, ext: &str) -> bool {
    path.extension().is_some_and(|x| x == ext)
}

/// The parts of a QEMU firmware descriptor that matter here.
#[derive(Debug, Deserialize)]
struct Descriptor {
    #[serde(rename = "interface-types")]
    interface_types: Vec<String>,
    mapping: Mapping,
    targets: Vec<Target>,
    #[serde(default)]
    features: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct Mapping {
    device: String,
    executable: Option<FlashFile>,
    #[serde(rename = "nvram-template")]
    nvram_template: Option<FlashFile>,
}

#[derive(Debug, Deserialize)]
struct FlashFile {
    filename: PathBuf,
    #[serde(default = "raw")]
    format: String,
}

fn raw() -> String {
    "raw".into()
}

#[derive(Debug, Deserialize)]
struct Target {
    architecture: String,
    machines: Vec<String>,
}

impl Descriptor {
    /// (code, vars, format) if this is plain UEFI for `arch` on our machine type,
    /// as split flash with a variable store, and its files exist.
    fn usable(&self, arch: Arch) -> Option<(PathBuf, PathBuf, String)> {
        let machine = match arch {
            Arch::X86_64 => "pc-q35-",
            Arch::Aarch64 => "virt-",
        };
        let fits = self.targets.iter().any(|t| {
            t.architecture == arch.as_str()
                && t.machines
                    .iter()
                    .any(|m| m.starts_with(machine) || m == "*")
        });
        let plain = !self
            .features
            .iter()
            .any(|f| matches!(f.as_str(), "secure-boot" | "enrolled-keys" | "requires-smm"));
        if !(self.interface_types.iter().any(|i| i == "uefi")
            && fits
            && plain
            && self.mapping.device == "flash")
        {
            return None;
        }
        let (code, vars) = (
            self.mapping.executable.as_ref()?,
            self.mapping.nvram_template.as_ref()?,
        );
        (code.filename.is_file() && vars.filename.is_file() && code.format == vars.format).then(
            || {
                (
                    code.filename.clone(),
                    vars.filename.clone(),
                    code.format.clone(),
                )
            },
        )
    }
}

/// Where distributions put the firmware when no descriptor names it.
fn known_paths() -> Vec<(Arch, PathBuf, PathBuf)> {
    let pairs: [(Arch, &str, &str); 8] = [
        // Debian/Ubuntu (ovmf, qemu-efi-aarch64)
        (
            Arch::X86_64,
            "/usr/share/OVMF/OVMF_CODE_4M.fd",
            "/usr/share/OVMF/OVMF_VARS_4M.fd",
        ),
        (
            Arch::X86_64,
            "/usr/share/OVMF/OVMF_CODE.fd",
            "/usr/share/OVMF/OVMF_VARS.fd",
        ),
        (
            Arch::Aarch64,
            "/usr/share/AAVMF/AAVMF_CODE.fd",
            "/usr/share/AAVMF/AAVMF_VARS.fd",
        ),
        // Fedora (edk2-ovmf, edk2-aarch64)
        (
            Arch::X86_64,
            "/usr/share/edk2/ovmf/OVMF_CODE.fd",
            "/usr/share/edk2/ovmf/OVMF_VARS.fd",
        ),
        (
            Arch::Aarch64,
            "/usr/share/edk2/aarch64/QEMU_EFI-pflash.raw",
            "/usr/share/edk2/aarch64/vars-template-pflash.raw",
        ),
        // Arch Linux (edk2-ovmf, edk2-aarch64)
        (
            Arch::X86_64,
            "/usr/share/edk2/x64/OVMF_CODE.4m.fd",
            "/usr/share/edk2/x64/OVMF_VARS.4m.fd",
        ),
        (
            Arch::Aarch64,
            "/usr/share/edk2/aarch64/QEMU_CODE.fd",
            "/usr/share/edk2/aarch64/QEMU_VARS.fd",
        ),
        // NixOS with OVMF in the system profile
        (
            Arch::X86_64,
            "/run/current-system/sw/share/OVMF/OVMF_CODE.fd",
            "/run/current-system/sw/share/OVMF/OVMF_VARS.fd",
        ),
    ];
    pairs
        .iter()
        .map(|(a, c, v)| (*a, PathBuf::from(c), PathBuf::from(v)))
        .collect()
}

fn install_hint(arch: Arch) -> String {
    let arch_name = arch.as_str().to_uppercase();
    let (debian, fedora, arch_linux, nixos) = match arch {
        Arch::X86_64 => (
            "ovmf",
            "edk2-ovmf",
            "edk2-ovmf",
            "${pkgs.OVMF.fd}/FV/OVMF_CODE.fd and OVMF_VARS.fd",
        ),
        Arch::Aarch64 => (
            "qemu-efi-aarch64",
            "edk2-aarch64",
            "edk2-aarch64",
            "${pkgs.pkgsCross.aarch64-multiplatform.OVMF.fd}/FV/AAVMF_CODE.fd and AAVMF_VARS.fd",
        ),
    };
    format!(
        "Debian/Ubuntu: apt-get install {debian}; Fedora: dnf install {fedora}; Arch: pacman -S {arch_linux}; \
         NixOS: set ISOTEST_UEFI_CODE_{arch_name} and ISOTEST_UEFI_VARS_{arch_name} to {nixos}; \
         or name the files in the scenario (`uefi: {{{}: {{code: ..., vars: ...}}}}`)",
        arch.as_str()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn descriptor(code: &Path, vars: &Path, arch: &str, machines: &str, features: &str) -> String {
        format!(
            r#"{{"description": "test", "interface-types": ["uefi"],
                "mapping": {{"device": "flash",
                    "executable": {{"filename": "{}", "format": "raw"}},
                    "nvram-template": {{"filename": "{}", "format": "raw"}}}},
                "targets": [{{"architecture": "{arch}", "machines": [{machines}]}}],
                "features": [{features}], "tags": []}}"#,
            code.display(),
            vars.display()
        )
    }

    /// A temp dir with firmware files and a descriptor directory.
    fn setup() -> (tempfile::TempDir, PathBuf, PathBuf, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let (code, vars, descriptors) = (
            dir.path().join("CODE.fd"),
            dir.path().join("VARS.fd"),
            dir.path().join("firmware"),
        );
        std::fs::write(&code, b"code").unwrap();
        std::fs::write(&vars, b"vars").unwrap();
        std::fs::create_dir(&descriptors).unwrap();
        (dir, code, vars, descriptors)
    }

    #[test]
    fn a_descriptor_names_the_files_and_secure_boot_is_passed_over() {
        let (dir, code, vars, descriptors) = setup();
        let secure = dir.path().join("SECURE.fd");
        std::fs::write(&secure, b"secure").unwrap();
        std::fs::write(
            descriptors.join("40-secure.json"),
            descriptor(
                &secure,
                &vars,
                "x86_64",
                r#""pc-q35-*""#,
                r#""secure-boot", "requires-smm""#,
            ),
        )
        .unwrap();
        std::fs::write(
            descriptors.join("50-arm.json"),
            descriptor(&secure, &vars, "aarch64", r#""virt-*""#, ""),
        )
        .unwrap();
        std::fs::write(
            descriptors.join("60-plain.json"),
            descriptor(
                &code,
                &vars,
                "x86_64",
                r#""pc-i440fx-*", "pc-q35-*""#,
                r#""acpi-s3""#,
            ),
        )
        .unwrap();
        std::fs::write(descriptors.join("70-broken.json"), "{ not json").unwrap();
        let search = FirmwareSearch {
            descriptor_dirs: vec![descriptors.clone()],
            ..Default::default()
        };
        let found = search.find(Arch::X86_64, None).unwrap();
        assert_eq!(
            (found.code, found.vars, found.format.as_str()),
            (code.clone(), vars.clone(), "raw")
        );
        assert_eq!(
            found.found_by,
            descriptors.join("60-plain.json").display().to_string()
        );
        assert_eq!(search.find(Arch::Aarch64, None).unwrap().code, secure);
    }

    #[test]
    fn a_later_directory_replaces_a_descriptor_of_the_same_name() {
        let (dir, code, vars, descriptors) = setup();
        let etc = dir.path().join("etc");
        std::fs::create_dir(&etc).unwrap();
        std::fs::write(
            descriptors.join("60-edk2.json"),
            descriptor(&code, &vars, "x86_64", r#""pc-q35-*""#, ""),
        )
        .unwrap();
        // The administrator's file of the same name points at files that do not exist.
        let gone = dir.path().join("gone.fd");
        std::fs::write(
            etc.join("60-edk2.json"),
            descriptor(&gone, &gone, "x86_64", r#""pc-q35-*""#, ""),
        )
        .unwrap();
        let search = FirmwareSearch {
            descriptor_dirs: vec![descriptors, etc],
            ..Default::default()
        };
        assert!(search.find(Arch::X86_64, None).is_err());
    }

    #[test]
    fn overrides_come_first_and_must_exist() {
        let (dir, code, vars, descriptors) = setup();
        std::fs::write(
            descriptors.join("60.json"),
            descriptor(&code, &vars, "x86_64", r#""pc-q35-*""#, ""),
        )
        .unwrap();
        let (other_code, other_vars) = (dir.path().join("O_CODE.fd"), dir.path().join("O_VARS.fd"));
        std::fs::write(&other_code, b"c").unwrap();
        std::fs::write(&other_vars, b"v").unwrap();
        let search = FirmwareSearch {
            descriptor_dirs: vec![descriptors],
            overrides: vec![(Arch::X86_64, other_code.clone(), other_vars.clone())],
            ..Default::default()
        };
        let found = search.find(Arch::X86_64, None).unwrap();
        assert_eq!(
            (found.code.as_path(), found.found_by.as_str()),
            (other_code.as_path(), "the environment")
        );
        let found = search.find(Arch::X86_64, Some((&code, &vars))).unwrap();
        assert_eq!(
            (found.code.as_path(), found.found_by.as_str()),
            (code.as_path(), "the scenario")
        );
        let missing = dir.path().join("nope.fd");
        let e = search
            .find(Arch::X86_64, Some((&missing, &vars)))
            .unwrap_err()
            .to_string();
        assert_eq!(e, format!("UEFI code: {}: no such file", missing.display()));
    }

    #[test]
    fn known_paths_when_there_is_no_descriptor() {
        let (_dir, code, vars, descriptors) = setup();
        let search = FirmwareSearch {
            descriptor_dirs: vec![descriptors],
            known: vec![(Arch::Aarch64, code.clone(), vars)],
            ..Default::default()
        };
        assert_eq!(
            search.find(Arch::Aarch64, None).unwrap().found_by,
            "a known path"
        );
    }

    #[test]
    fn missing_firmware_says_what_to_install_everywhere() {
        let search = FirmwareSearch {
            descriptor_dirs: vec!["/nonexistent".into()],
            ..Default::default()
        };
        let e = search.find(Arch::Aarch64, None).unwrap_err().to_string();
        assert!(
            e.starts_with("no UEFI firmware for aarch64 found (looked at /nonexistent/*.json)"),
            "{e}"
        );
        for hint in [
            "apt-get install qemu-efi-aarch64",
            "dnf install edk2-aarch64",
            "pacman -S edk2-aarch64",
            "ISOTEST_UEFI_CODE_AARCH64",
        ] {
            assert!(e.contains(hint), "no `{hint}` in: {e}");
        }
        let e = search.find(Arch::X86_64, None).unwrap_err().to_string();
        assert!(
            e.contains("apt-get install ovmf") && e.contains("pkgs.OVMF.fd"),
            "{e}"
        );
    }
}
