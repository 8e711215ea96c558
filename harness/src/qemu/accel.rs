//! Choosing between KVM and TCG.
//!
//! `/dev/kvm` opening is not proof that KVM works: on nested, paravirtualised hosts
//! the device opens, a trivial boot sector even runs, and then the firmware or boot
//! loader dies with "KVM internal error ... emulation failure". So "usable" means
//! that the ISO under test really ran under KVM on the trial's machine and
//! firmware: booted far enough to print on the serial port. Firmwares differ
//! (SeaBIOS, OVMF, AAVMF on `virt`), so the verdict is kept per `ProbeKey`
//! (binary, arch, machine, firmware) for the rest of the process, and KVM is used
//! only for a key whose probe passed.

use super::args::Pflash;
use super::args::{
    cdrom_args, cpu_args, firmware_args, machine_args, machine_type, os, sercon_args,
};
use super::error::{KvmUnfit, QemuError};
use super::machine::OwnedQemu;
use super::private::PrivateDir;
use crate::platform::{Accel, AccelChoice, Arch, Firmware};
use std::collections::HashMap;
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

/// The accelerator chosen for a trial and, when it is not the fast path, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccelDecision {
    pub accel: Accel,
    pub note: Option<String>,
}

/// What a KVM verdict holds for: guests of one architecture, machine type and
/// firmware, started by one QEMU binary.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProbeKey {
    pub binary: PathBuf,
    pub arch: Arch,
    pub machine: &'static str,
    pub firmware: Firmware,
}

/// The trial's guest as the probe boots it: the ISO under test, on the trial's
/// machine, with the trial's firmware (for UEFI its flash; the probe writes only
/// to its own copy of the variable store).
#[derive(Debug, Clone, Copy)]
pub struct ProbeTarget<'a> {
    pub binary: &'a Path,
    pub arch: Arch,
    pub firmware: Firmware,
    pub iso: &'a Path,
    pub uefi: Option<&'a Pflash>,
    /// SeaBIOS's VGA-to-serial file, when the boot loader draws on VGA only:
    /// without it such a guest prints nothing on serial, under KVM or not.
    pub vga_to_serial: Option<&'a Path>,
}

impl ProbeTarget<'_> {
    pub fn key(&self) -> ProbeKey {
        ProbeKey {
            binary: self.binary.to_owned(),
            arch: self.arch,
            machine: machine_type(self.arch),
            firmware: self.firmware,
        }
    }
}

/// Decides the accelerator for the trial's guest on this host.
pub fn resolve_accel(
    choice: AccelChoice,
    target: &ProbeTarget<'_>,
) -> Result<AccelDecision, QemuError> {
    if choice == AccelChoice::Tcg {
        return Ok(AccelDecision {
            accel: Accel::Tcg,
            note: Some("TCG (--accel tcg)".into()),
        });
    }
    let usable = if Arch::host() != Some(target.arch) {
        Err(KvmUnfit::OtherArch(target.arch))
    } else {
        static VERDICTS: Verdicts = Verdicts::new();
        VERDICTS.get_or_probe(target.key(), || kvm_device().and_then(|()| probe(target)))
    };
    match (usable, choice) {
        (Ok(()), _) => Ok(AccelDecision {
            accel: Accel::Kvm,
            note: None,
        }),
        (Err(reason), AccelChoice::Kvm) => Err(QemuError::KvmUnusable {
            arch: target.arch.to_string(),
            reason,
        }),
        (Err(reason), _) => Ok(AccelDecision {
            accel: Accel::Tcg,
            note: Some(format!(
                "TCG, KVM unusable: {}; waits are {}x longer",
                crate::error::chain(&reason),
                Accel::Tcg.time_scale()
            )),
        }),
    }
}

/// KVM verdicts by key. The lock is held while probing, so trials of one key
/// wait for the one probe instead of each starting their own.
struct Verdicts(Mutex<Option<HashMap<ProbeKey, Result<(), KvmUnfit>>>>);

impl Verdicts {
    const fn new() -> Verdicts {
        Verdicts(Mutex::new(None))
    }

    fn get_or_probe(
        &self,
        key: ProbeKey,
        probe: impl FnOnce() -> Result<(), KvmUnfit>,
    ) -> Result<(), KvmUnfit> {
        let mut verdicts = self.0.lock().unwrap_or_else(|e| e.into_inner());
        verdicts
            .get_or_insert_with(HashMap::new)
            .entry(key)
            .or_insert_with(probe)
            .clone()
    }
}

/// Whether this user can open `/dev/kvm` at all, with what to do if not.
fn kvm_device() -> Result<(), KvmUnfit> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .map(drop)
        .map_err(|e| {
            let hint = match e.kind() {
                std::io::ErrorKind::NotFound => {
                    " (load the kvm_intel or kvm_amd module, or enable virtualisation in the BIOS)"
                }
                std::io::ErrorKind::PermissionDenied => " (add your user to the `kvm` group)",
                _ => "",
            };
            KvmUnfit::Device {
                error: Arc::new(e),
                hint,
            }
        })
}

/// How long the ISO may take to print its first byte on serial under KVM. With
/// working KVM it takes well under a second.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// Boots the target under KVM until it prints on serial, in a private directory
/// that holds the probe's own copy of the UEFI variable store.
fn probe(target: &ProbeTarget<'_>) -> Result<(), KvmUnfit> {
    let private = PrivateDir::new().map_err(|e| KvmUnfit::PrivateDir(Arc::new(e)))?;
    let uefi = match target.uefi {
        Some(flash) => {
            let vars = private.path().join("probe-vars.fd");
            std::fs::copy(&flash.vars, &vars).map_err(|e| KvmUnfit::CopyVars {
                vars: flash.vars.clone(),
                source: Arc::new(e),
            })?;
            Some(Pflash {
                vars,
                ..flash.clone()
            })
        }
        None => None,
    };
    run_probe(
        target.binary,
        &probe_command_line(target, uefi.as_ref()),
        PROBE_TIMEOUT,
    )
}

/// The trial's machine, CPU, firmware and CD-ROM under KVM, with the serial
/// port on stdout and nothing else: no network, no monitor, no display.
fn probe_command_line(target: &ProbeTarget<'_>, uefi: Option<&Pflash>) -> Vec<OsString> {
    [
        machine_args(target.arch, Accel::Kvm, false),
        cpu_args(target.arch, Accel::Kvm),
        os(&["-m", "512M"]),
        firmware_args(uefi),
        cdrom_args(target.arch, target.iso),
        sercon_args(target.vga_to_serial),
        os(&[
            "-display",
            "none",
            "-nic",
            "none",
            "-monitor",
            "none",
            "-parallel",
            "none",
            "-no-reboot",
            "-serial",
            "stdio",
        ]),
    ]
    .concat()
}

/// Whether a line of QEMU's stderr says the guest died under KVM: on nested,
/// paravirtualised hosts `-cpu host` aborts on an MSR, or firmware and boot
/// loaders hit "KVM internal error ... emulation failure" (REFERENCE.md).
fn kvm_failure(stderr_line: &str) -> bool {
    stderr_line.contains("KVM internal error") || stderr_line.contains("failed to set MSR")
}

/// Runs `qemu args` and judges it: the first serial byte on stdout is a pass; a
/// KVM error on stderr, an exit, or silence until `timeout` is not.
fn run_probe(qemu: &Path, args: &[OsString], timeout: Duration) -> Result<(), KvmUnfit> {
    tracing::debug!(qemu = %qemu.display(), ?args, "KVM probe");
    // Owned as a machine's QEMU is: Ctrl-C, SIGTERM or the harness's death
    // during the probe's wait stops it too.
    let mut command = Command::new(qemu);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = OwnedQemu::spawn(&mut command).map_err(|e| KvmUnfit::Spawn {
        binary: qemu.to_owned(),
        source: Arc::new(e),
    })?;

    // Three witnesses race: the first serial byte (it ran), stderr (QEMU reports
    // KVM failures there, then idles with the guest stopped), and the exit status.
    enum Event {
        Serial,
        Stderr(String),
        Exited,
    }
    let (tx, rx) = mpsc::channel();
    let mut stdout = child.take_stdout().expect("stdout is piped");
    let serial_tx = tx.clone();
    std::thread::spawn(move || {
        let mut byte = [0u8; 1];
        if matches!(stdout.read(&mut byte), Ok(1)) {
            let _ = serial_tx.send(Event::Serial);
        }
    });
    let stderr = child.take_stderr().expect("stderr is piped");
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
        match rx.recv_timeout(timeout) {
            Ok(Event::Serial) => break Ok(()),
            Ok(Event::Stderr(line)) => {
                let fatal = kvm_failure(&line);
                stderr_lines.push(line);
                if fatal {
                    break Err(KvmUnfit::Died {
                        stderr: stderr_lines,
                    });
                }
            }
            Ok(Event::Exited) => {
                break Err(KvmUnfit::Exited {
                    stderr: stderr_lines,
                })
            }
            Err(_) => {
                break Err(KvmUnfit::Silent {
                    secs: timeout.as_secs(),
                })
            }
        }
    };
    drop(child); // killed and reaped
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target<'a>(arch: Arch, firmware: Firmware, uefi: Option<&'a Pflash>) -> ProbeTarget<'a> {
        ProbeTarget {
            binary: Path::new("/usr/bin/qemu-system-x86_64"),
            arch,
            firmware,
            iso: Path::new("/isos/a,b.iso"),
            uefi,
            vga_to_serial: None,
        }
    }

    fn flash() -> Pflash {
        Pflash {
            code: "/fw/CODE.fd".into(),
            vars: "/trial/uefi-vars.fd".into(),
            format: "raw".into(),
        }
    }

    fn joined(args: &[OsString]) -> String {
        args.iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn forced_tcg_needs_no_probe() {
        let d = resolve_accel(
            AccelChoice::Tcg,
            &target(Arch::X86_64, Firmware::Bios, None),
        )
        .unwrap();
        assert_eq!(d.accel, Accel::Tcg);
    }

    #[test]
    fn foreign_arch_falls_back_to_tcg_or_refuses_kvm() {
        let foreign = if Arch::host() == Some(Arch::X86_64) {
            Arch::Aarch64
        } else {
            Arch::X86_64
        };
        let d = resolve_accel(AccelChoice::Auto, &target(foreign, Firmware::Uefi, None)).unwrap();
        assert_eq!(d.accel, Accel::Tcg);
        assert!(d
            .note
            .unwrap()
            .contains(&format!("the host is not {foreign}")));
        let err =
            resolve_accel(AccelChoice::Kvm, &target(foreign, Firmware::Uefi, None)).unwrap_err();
        assert!(
            err.to_string().starts_with("--accel kvm: KVM cannot run"),
            "{err}"
        );
    }

    #[test]
    fn one_verdict_per_binary_arch_machine_and_firmware() {
        let bios = target(Arch::X86_64, Firmware::Bios, None).key();
        assert_eq!(bios.machine, "q35");
        let other_iso = ProbeTarget {
            iso: Path::new("/isos/other.iso"),
            ..target(Arch::X86_64, Firmware::Bios, None)
        };
        assert_eq!(other_iso.key(), bios, "the ISO is not part of the key");
        let f = flash();
        assert_ne!(target(Arch::X86_64, Firmware::Uefi, Some(&f)).key(), bios);
        let arm = target(Arch::Aarch64, Firmware::Uefi, Some(&f)).key();
        assert_eq!((arm.arch, arm.machine), (Arch::Aarch64, "virt"));
        let other_binary = ProbeTarget {
            binary: Path::new("/opt/qemu/bin/qemu-system-x86_64"),
            ..target(Arch::X86_64, Firmware::Bios, None)
        };
        assert_ne!(other_binary.key(), bios);
    }

    #[test]
    fn a_verdict_is_probed_once_per_key_and_a_failed_one_stays_failed() {
        let verdicts = Verdicts::new();
        let probes = std::cell::Cell::new(0);
        let failing = || {
            probes.set(probes.get() + 1);
            Err(KvmUnfit::Died {
                stderr: vec!["KVM internal error".to_owned()],
            })
        };
        let bios = target(Arch::X86_64, Firmware::Bios, None).key();
        assert!(verdicts.get_or_probe(bios.clone(), failing).is_err());
        assert!(
            verdicts.get_or_probe(bios.clone(), || Ok(())).is_err(),
            "a failed probe was retried and trusted"
        );
        let f = flash();
        assert!(verdicts
            .get_or_probe(target(Arch::X86_64, Firmware::Uefi, Some(&f)).key(), || Ok(
                ()
            ))
            .is_ok());
        assert_eq!(probes.get(), 1);
    }

    #[test]
    fn the_bios_probe_boots_the_iso_on_the_trials_machine() {
        let line = joined(&probe_command_line(
            &target(Arch::X86_64, Firmware::Bios, None),
            None,
        ));
        assert!(line.starts_with("-machine q35 -accel kvm -cpu host -m 512M -drive if=none,id=cd0,file=/isos/a,,b.iso,media=cdrom,readonly=on,format=raw -device ide-cd,drive=cd0,bus=ide.0,bootindex=0 "), "{line}");
        assert!(line.ends_with("-serial stdio"), "{line}");
        assert!(!line.contains("pflash"), "{line}");
    }

    #[test]
    fn the_uefi_probes_map_the_firmware_with_their_own_vars() {
        let trial_flash = flash();
        let own = Pflash {
            vars: "/probe/probe-vars.fd".into(),
            ..flash()
        };
        let line = joined(&probe_command_line(
            &target(Arch::X86_64, Firmware::Uefi, Some(&trial_flash)),
            Some(&own),
        ));
        assert!(
            line.contains("-drive if=pflash,unit=0,format=raw,readonly=on,file=/fw/CODE.fd"),
            "{line}"
        );
        assert!(
            line.contains("-drive if=pflash,unit=1,format=raw,file=/probe/probe-vars.fd"),
            "{line}"
        );
        let line = joined(&probe_command_line(
            &target(Arch::Aarch64, Firmware::Uefi, Some(&trial_flash)),
            Some(&own),
        ));
        assert!(
            line.starts_with("-machine virt -accel kvm -cpu host -m 512M -drive if=pflash,unit=0"),
            "{line}"
        );
        assert!(line.contains("-device scsi-cd,drive=cd0"), "{line}");
    }

    /// Real QEMU, under TCG so that it runs on any host, with the probe's
    /// serial-on-stdout wiring; `extra` decides what the guest does.
    fn real_qemu(extra: &[&str]) -> (PathBuf, Vec<OsString>) {
        let qemu = crate::qemu::binary::find_qemu(Arch::X86_64)
            .expect("qemu-system-x86_64 (run ci/install-deps)");
        let args = os(&[
            "-machine",
            "pc,accel=tcg",
            "-nodefaults",
            "-display",
            "none",
            "-serial",
            "stdio",
            "-no-reboot",
        ]);
        (qemu, [args, os(extra)].concat())
    }

    #[test]
    fn the_probe_passes_on_serial_output_only() {
        let dir = tempfile::tempdir().unwrap();
        let timeout = Duration::from_secs(30);
        // SeaBIOS prints its banner on serial when told to mirror its screen there.
        let port = dir.path().join("sercon");
        std::fs::write(&port, crate::qemu::args::SERCON_TTYS0).unwrap();
        let (qemu, mut args) = real_qemu(&[]);
        args.extend(sercon_args(Some(&port)));
        assert!(run_probe(&qemu, &args, timeout).is_ok());
        // QEMU refusing its arguments exits at once, with its reason.
        let (qemu, args) = real_qemu(&["-m", "1x"]);
        let e = crate::error::chain(&run_probe(&qemu, &args, timeout).unwrap_err());
        assert!(
            e.starts_with("QEMU exited under KVM: ") && e.contains("-m 1x"),
            "{e}"
        );
        // A guest that never prints (stopped at power-on). While the probe
        // waits, its QEMU is one of ours: in a process group of its own and
        // known to `kill_all_machines`; once it returns, gone.
        let name = format!("isotest-probe-{}", std::process::id());
        let (qemu, args) = real_qemu(&["-S", "-name", &name]);
        let watcher = std::thread::spawn(move || {
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            loop {
                // Known once spawn() has returned, which may be a moment after exec.
                if let Some(pid) =
                    process_with_arg(&name).filter(|&pid| crate::qemu::machine::is_live(pid))
                {
                    // SAFETY: getpgid(2) only reads.
                    let group = unsafe { libc::getpgid(pid as libc::pid_t) };
                    return (pid, group == pid as libc::pid_t);
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "the probe's QEMU never showed up as one of ours"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        let e = crate::error::chain(&run_probe(&qemu, &args, Duration::from_secs(3)).unwrap_err());
        assert!(e.starts_with("the ISO printed nothing on serial"), "{e}");
        let (pid, own_group) = watcher.join().unwrap();
        assert!(own_group, "pid {pid}: not in a process group of its own");
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists() && !crate::qemu::machine::is_live(pid),
            "the probe's QEMU outlived it"
        );
    }

    /// The PID of a process with `arg` among its arguments.
    fn process_with_arg(arg: &str) -> Option<u32> {
        std::fs::read_dir("/proc")
            .ok()?
            .flatten()
            .find_map(|entry| {
                let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
                let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
                cmdline
                    .split(|b| *b == 0)
                    .any(|a| a == arg.as_bytes())
                    .then_some(pid)
            })
    }

    #[test]
    fn kvm_failures_as_qemu_reports_them() {
        // Lines QEMU 7.2 and 10.0 printed on a nested, paravirtualised host.
        assert!(kvm_failure("KVM internal error. Suberror: 1"));
        assert!(kvm_failure(
            "qemu-system-x86_64: error: failed to set MSR 0x10a to 0x2000000e1"
        ));
        assert!(!kvm_failure(
            "qemu-system-x86_64: warning: host doesn't support requested feature"
        ));
    }
}
