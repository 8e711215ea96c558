//! `nix build` of an ISO host: progress in the log while it runs, the ISO found
//! under the output's `iso/`.

use super::attr::{attr, system};
use super::error::{FlakeError, IsoFound};
use super::hosts::require_host;
use super::memo::{once, Memo};
use super::nix;
use crate::platform::Arch;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Instant;

#[derive(Debug, Clone)]
pub struct Built {
    pub iso: PathBuf,
    pub secs: f64,
}

/// Builds a host's ISO (once per process).
pub fn build_iso(flake: &str, arch: Arch, host: &str) -> Result<Built, FlakeError> {
    static BUILT: Memo<Built> = OnceLock::new();
    once(&BUILT, attr(flake, arch, host), |attr| {
        build(flake, arch, host, attr)
    })
}

fn build(flake: &str, arch: Arch, host: &str, attr: &str) -> Result<Built, FlakeError> {
    let purpose = format!("building `iso: {host}`");
    require_host(flake, host, &purpose)?;
    let started = Instant::now();
    tracing::info!("building {attr}");
    let mut progress = |line: &str| tracing::info!("[nix build {host}] {line}");
    let args = ["build", "--no-link", "--json", "--print-build-logs", attr];
    let out = match nix::run(&args, &purpose, &mut progress)? {
        Ok(out) => out,
        Err(failure) => {
            let log: Vec<String> = failure
                .before
                .iter()
                .rev()
                .take(15)
                .rev()
                .map(|l| format!("  {l}"))
                .collect();
            let message = if log.is_empty() {
                failure.message
            } else {
                format!("{}\n{}", log.join("\n"), failure.message)
            };
            return Err(classify(attr, arch, message));
        }
    };
    let secs = started.elapsed().as_secs_f64();
    let out_path = serde_json::from_str::<serde_json::Value>(&out.stdout)
        .ok()
        .and_then(|v| v[0]["outputs"]["out"].as_str().map(PathBuf::from))
        .ok_or_else(|| FlakeError::NoOutPath {
            attr: attr.to_owned(),
            stdout: out.stdout.clone(),
        })?;
    let iso = find_iso(&out_path).map_err(|found| FlakeError::NoIso {
        attr: attr.to_owned(),
        out: out_path.display().to_string(),
        found,
    })?;
    tracing::info!("built {attr} in {secs:.1} s: {}", iso.display());
    Ok(Built { iso, secs })
}

/// A build that needs another system is not a failure of the flake.
fn classify(attr: &str, arch: Arch, message: String) -> FlakeError {
    match message
        .lines()
        .find(|l| l.contains("is required to build") && l.contains("but I am a"))
    {
        Some(line) => FlakeError::Unsupported {
            attr: attr.to_owned(),
            system: system(arch).to_owned(),
            host_system: host_system(line),
            detail: line.trim().trim_start_matches("error: ").to_owned(),
        },
        None => FlakeError::Build {
            attr: attr.to_owned(),
            log: message,
        },
    }
}

/// `..., but I am a 'x86_64-linux' with features {...}` → `x86_64-linux`.
fn host_system(line: &str) -> String {
    line.split("but I am a '")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .unwrap_or("this system")
        .to_owned()
}

/// The one `*.iso` under `<out>/iso`; else a description of what is there.
fn find_iso(out: &std::path::Path) -> Result<PathBuf, IsoFound> {
    let dir = out.join("iso");
    let mut isos: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "iso"))
            .collect(),
        Err(_) => return Err(IsoFound::NoDirectory),
    };
    isos.sort();
    match isos.len() {
        1 => Ok(isos.remove(0)),
        0 => Err(IsoFound::NoIso),
        _ => Err(IsoFound::Several(isos)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn another_system_is_unsupported_not_a_build_failure() {
        let message =
            "  error: a 'aarch64-linux' with features {} is required to build '/nix/store/x.drv', \
                       but I am a 'x86_64-linux' with features {kvm}";
        let e = classify(
            "f#packages.aarch64-linux.rescue",
            Arch::Aarch64,
            message.into(),
        );
        let text = e.to_string();
        assert!(matches!(e, FlakeError::Unsupported { .. }), "{text}");
        assert!(
            text.starts_with(
                "this machine (x86_64-linux) cannot build f#packages.aarch64-linux.rescue"
            ),
            "{text}"
        );
        let e = classify(
            "f#x",
            Arch::X86_64,
            "  error: builder for 'x.drv' failed with exit code 1".into(),
        );
        assert!(matches!(e, FlakeError::Build { .. }));
    }

    #[test]
    fn one_iso_is_expected() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            find_iso(dir.path()).unwrap_err().to_string(),
            "nothing (no iso/ directory)"
        );
        std::fs::create_dir(dir.path().join("iso")).unwrap();
        assert_eq!(find_iso(dir.path()).unwrap_err().to_string(), "no *.iso");
        std::fs::write(dir.path().join("iso/a.iso"), "").unwrap();
        assert_eq!(find_iso(dir.path()).unwrap(), dir.path().join("iso/a.iso"));
        std::fs::write(dir.path().join("iso/b.iso"), "").unwrap();
        let several = find_iso(dir.path()).unwrap_err().to_string();
        assert!(several.starts_with("2 ISOs"), "{several}");
    }
}
