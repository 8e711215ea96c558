//! Shared by the test binaries: the fixture ISOs (built for real by
//! fixtures/build-iso, cached by content), the `isotest` binary, process
//! checks, the fixtures' passwords, the other programs the tests run, and
//! assertions.

#![allow(dead_code)] // each test binary uses its own part
#![allow(unused_imports)] // and of the re-exports too

mod checks;
mod secrets;
mod tools;

pub use checks::{assert_schema_valid, ensure, result_schema};
pub use secrets::{RESCUE_PASSWORD, ROOT_PASSWORD, WRONG_ROOT_PASSWORD};
pub use tools::{tool, venv_tool, which};

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

/// A process's output as text (invalid UTF-8 replaced).
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Builds (or finds cached) fixture ISOs for `arch`, all in one call to the builder.
pub fn build_fixtures(arch: &str, variants: &[&str]) -> Result<HashMap<String, PathBuf>, String> {
    static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let mut built = BUILT
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let key = |v: &str| format!("{arch}/{v}");
    let missing: Vec<&str> = variants
        .iter()
        .copied()
        .filter(|v| !built.contains_key(&key(v)))
        .collect();
    if !missing.is_empty() {
        eprintln!(
            "building {arch} fixture ISOs: {} (the first build takes minutes, later ones seconds)",
            missing.join(" ")
        );
        let out = Command::new(repo().join("fixtures/build-iso"))
            .env("NIX_CONFIG", nix_config())
            .args(["--arch", arch])
            .args(&missing)
            .stderr(std::process::Stdio::inherit())
            .output()
            .map_err(|e| format!("cannot run fixtures/build-iso: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "fixtures/build-iso {} failed ({})",
                missing.join(" "),
                out.status
            ));
        }
        let paths = String::from_utf8_lossy(&out.stdout);
        for (variant, path) in missing.iter().zip(paths.lines()) {
            built.insert(key(variant), PathBuf::from(path));
        }
    }
    Ok(variants
        .iter()
        .map(|v| ((*v).to_owned(), built[&key(v)].clone()))
        .collect())
}

/// An x86_64 fixture ISO.
pub fn fixture(variant: &str) -> Result<PathBuf, String> {
    fixture_for("x86_64", variant)
}

pub fn fixture_for(arch: &str, variant: &str) -> Result<PathBuf, String> {
    Ok(build_fixtures(arch, &[variant])?
        .remove(variant)
        .expect("built"))
}

/// The `isotest` binary, built by cargo with the profile of these tests, and
/// with its fault-injection hooks (src/fault.rs), which act only when a test
/// sets `ISOTEST_FAULT`.
pub fn isotest_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let out = Command::new(cargo)
            .current_dir(repo())
            .args([
                "build",
                "-q",
                "-p",
                "isotest",
                "--bin",
                "isotest",
                "--features",
                "fault-injection",
                "--message-format=json",
            ])
            .output()
            .expect("run cargo build");
        assert!(
            out.status.success(),
            "cargo build -p isotest failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find_map(|v| v["executable"].as_str().map(PathBuf::from))
            .expect("cargo reported the isotest executable")
    })
    .clone()
}

/// The Nix settings the fixture flake needs offline (fixtures/nix.conf), unless
/// the environment has its own NIX_CONFIG.
pub fn nix_config() -> String {
    std::env::var("NIX_CONFIG").unwrap_or_else(|_| {
        std::fs::read_to_string(repo().join("fixtures/nix.conf")).expect("fixtures/nix.conf")
    })
}

/// `isotest`, run from the repository with the fixture's Nix settings.
pub fn isotest_command() -> Command {
    let mut command = Command::new(isotest_bin());
    command.current_dir(repo()).env("NIX_CONFIG", nix_config());
    command
}

/// The fixture flake, as `path:` (the directory as it is, tracked by git or not).
pub fn fixture_flake() -> String {
    format!("path:{}", repo().join("fixtures/flake").display())
}

/// Where this test run keeps trial artifacts.
pub fn artifacts() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target"));
    target.join("isotest-tests")
}

/// Whether a process exists (and is not a zombie).
pub fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z'),
        Err(_) => false,
    }
}

/// Reads a QEMU pidfile.
pub fn read_pid(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Waits for a process to disappear, polling its /proc entry up to a deadline.
pub fn gone_within(pid: u32, limit: std::time::Duration) -> bool {
    let deadline = std::time::Instant::now() + limit;
    while process_alive(pid) {
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    true
}

/// A scenario of a prebuilt image (no nix needed) in `dir`: `plain.yaml`, with
/// `yaml` added before its expectations, and the image it names, `any.iso`,
/// which must exist to load (`--image` replaces it): a tiny ISO that boots
/// nothing (see [`tiny_iso`]).
pub fn plain_scenario(dir: &Path, yaml: &str) -> String {
    let path = dir.join("plain.yaml");
    std::fs::write(
        &path,
        format!("image: any.iso\narch: x86_64\n{yaml}expect:\n  hostname: rescue\n"),
    )
    .unwrap();
    tiny_iso(&dir.join("any.iso"));
    path.to_str().unwrap().to_owned()
}

/// The `any.iso` beside a scenario of [`plain_scenario`].
pub fn any_iso(scenario: &str) -> String {
    Path::new(scenario)
        .with_file_name("any.iso")
        .to_str()
        .unwrap()
        .to_owned()
}

/// Writes a real ISO 9660 image of a few sectors at `path` (xorriso), with an
/// El Torito boot record for BIOS whose boot image is zeros: it passes the
/// check before QEMU starts (an ISO a firmware could try), and boots nothing.
pub fn tiny_iso(path: &Path) {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("boot.img"), [0u8; 2048]).unwrap();
    let made = Command::new("xorriso")
        .args(["-as", "mkisofs", "-quiet", "-o"])
        .arg(path)
        .args(["-b", "boot.img", "-no-emul-boot", "-boot-load-size", "4"])
        .arg(root.path())
        .output()
        .expect("xorriso is installed (ci/install-deps)");
    assert!(
        made.status.success(),
        "xorriso: {}",
        String::from_utf8_lossy(&made.stderr)
    );
}

/// Hides every installed UEFI firmware from an `isotest` command, so that a
/// UEFI trial it did not ask for by name is skipped and nothing boots.
pub fn hide_ovmf(command: &mut Command) -> &mut Command {
    command
        .env("ISOTEST_FIRMWARE_DIRS", "")
        .env_remove("ISOTEST_UEFI_CODE_X86_64")
        .env_remove("ISOTEST_UEFI_VARS_X86_64")
}
