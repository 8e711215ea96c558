//! Choosing between KVM and TCG.
//!
//! `/dev/kvm` opening is not proof that KVM works: on nested, paravirtualised hosts
//! the device opens, a trivial boot sector even runs, and then the firmware or boot
//! loader dies with "KVM internal error ... emulation failure". So "usable" means
//! that the ISO under test really ran under KVM: booted through its firmware far
//! enough to print on the serial port. The probe runs once per process and QEMU
//! binary; its verdict is cached.

use super::QemuError;
use crate::scenario::Arch;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{mpsc, Mutex, OnceLock};
use std::time::Duration;

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

/// What the user asked for (`--accel`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum AccelChoice {
    #[default]
    Auto,
    Kvm,
    Tcg,
}

/// The accelerator chosen for a trial and, when it is not the fast path, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccelDecision {
    pub accel: Accel,
    pub note: Option<String>,
}

/// Decides the accelerator for booting `iso` on `arch` on this host.
pub fn resolve_accel(choice: AccelChoice, arch: Arch, qemu: &Path, iso: &Path) -> Result<AccelDecision, QemuError> {
    if choice == AccelChoice::Tcg {
        return Ok(AccelDecision { accel: Accel::Tcg, note: Some("TCG (--accel tcg)".into()) });
    }
    let usable = if Arch::host() != Some(arch) {
        Err(format!("the host is not {arch}"))
    } else {
        kvm_probe(qemu, arch, iso)
    };
    match (usable, choice) {
        (Ok(()), _) => Ok(AccelDecision { accel: Accel::Kvm, note: None }),
        (Err(reason), AccelChoice::Kvm) => Err(QemuError::KvmUnusable { arch: arch.to_string(), reason }),
        (Err(reason), _) => Ok(AccelDecision {
            accel: Accel::Tcg,
            note: Some(format!("TCG, KVM unusable: {reason}; waits are {}x longer", Accel::Tcg.time_scale())),
        }),
    }
}

fn kvm_probe(qemu: &Path, arch: Arch, iso: &Path) -> Result<(), String> {
    static CACHE: OnceLock<Mutex<HashMap<PathBuf, Result<(), String>>>> = OnceLock::new();
    let mut cache = CACHE.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
    cache.entry(qemu.to_owned()).or_insert_with(|| probe_uncached(qemu, arch, iso)).clone()
}

/// How long the ISO may take to print its first byte on serial under KVM. With
/// working KVM it takes well under a second.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

fn probe_uncached(qemu: &Path, arch: Arch, iso: &Path) -> Result<(), String> {
    if let Err(e) = std::fs::OpenOptions::new().read(true).write(true).open("/dev/kvm") {
        let hint = match e.kind() {
            std::io::ErrorKind::NotFound => " (load the kvm_intel or kvm_amd module, or enable virtualisation in the BIOS)",
            std::io::ErrorKind::PermissionDenied => " (add your user to the `kvm` group)",
            _ => "",
        };
        return Err(format!("/dev/kvm: {e}{hint}"));
    }
    if arch != Arch::X86_64 {
        // Booting an ARM ISO needs its UEFI firmware; there the device is trusted.
        return Ok(());
    }
    let mut child = Command::new(qemu)
        .args(["-machine", "q35,accel=kvm", "-cpu", "host", "-m", "512M", "-display", "none"])
        .args(["-nic", "none", "-monitor", "none", "-parallel", "none", "-no-reboot", "-serial", "stdio"])
        .arg("-drive")
        .arg(format!("file={},media=cdrom,readonly=on,format=raw", iso.display().to_string().replace(',', ",,")))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", qemu.display()))?;

    // Three witnesses race: the first serial byte (it ran), stderr (QEMU reports
    // KVM failures there, then idles with the guest stopped), and the exit status.
    enum Event {
        Serial,
        Stderr(String),
        Exited,
    }
    let (tx, rx) = mpsc::channel();
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let serial_tx = tx.clone();
    std::thread::spawn(move || {
        let mut byte = [0u8; 1];
        if matches!(stdout.read(&mut byte), Ok(1)) {
            let _ = serial_tx.send(Event::Serial);
        }
    });
    let stderr = child.stderr.take().expect("stderr is piped");
    let err_tx = tx.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if err_tx.send(Event::Stderr(line)).is_err() {
                break;
            }
        }
        let _ = err_tx.send(Event::Exited);
    });
    let mut stderr_lines = Vec::new();
    let verdict = loop {
        match rx.recv_timeout(PROBE_TIMEOUT) {
            Ok(Event::Serial) => break Ok(()),
            Ok(Event::Stderr(line)) => {
                let fatal = line.contains("KVM internal error") || line.contains("failed to set MSR");
                stderr_lines.push(line);
                if fatal {
                    break Err(format!("the ISO died under KVM: {}", stderr_lines.join(" ")));
                }
            }
            Ok(Event::Exited) => break Err(format!("QEMU exited under KVM: {}", stderr_lines.join(" "))),
            Err(_) => {
                break Err(format!("the ISO printed nothing on serial within {} s under KVM", PROBE_TIMEOUT.as_secs()))
            }
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forced_tcg_needs_no_probe() {
        let d = resolve_accel(AccelChoice::Tcg, Arch::X86_64, Path::new("/nonexistent"), Path::new("x.iso")).unwrap();
        assert_eq!(d.accel, Accel::Tcg);
    }

    #[test]
    fn foreign_arch_falls_back_to_tcg_or_refuses_kvm() {
        let foreign = if Arch::host() == Some(Arch::X86_64) { Arch::Aarch64 } else { Arch::X86_64 };
        let d = resolve_accel(AccelChoice::Auto, foreign, Path::new("/nonexistent"), Path::new("x.iso")).unwrap();
        assert_eq!(d.accel, Accel::Tcg);
        assert!(d.note.unwrap().contains(&format!("the host is not {foreign}")));
        let err = resolve_accel(AccelChoice::Kvm, foreign, Path::new("/nonexistent"), Path::new("x.iso")).unwrap_err();
        assert!(err.to_string().starts_with("--accel kvm: KVM cannot run"), "{err}");
    }
}
