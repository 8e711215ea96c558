//! The QEMU command line, assembled from one small function per concern so each
//! can be read and tested on its own, without a VM.

use crate::platform::{Accel, Arch, Firmware};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Everything that decides the command line of one machine.
#[derive(Debug, Clone)]
pub struct MachineSpec {
    pub arch: Arch,
    pub firmware: Firmware,
    pub accel: Accel,
    pub memory_mib: u64,
    pub cpus: u32,
    pub iso: PathBuf,
    /// UEFI firmware: read-only code, and this trial's own copy of the vars.
    pub uefi: Option<Pflash>,
    /// Unix socket QEMU connects its serial port to (we listen).
    pub serial_socket: PathBuf,
    /// Unix socket QEMU connects its QMP monitor to (we listen).
    pub qmp_socket: PathBuf,
    pub pidfile: PathBuf,
    /// Forward 127.0.0.1:<host port> to the guest's <guest port> (SSH).
    pub forward: Option<(u16, u16)>,
    /// BIOS boot loaders that draw on VGA only (GRUB without isolinux): the file
    /// that tells SeaBIOS which serial port to mirror VGA text to.
    pub vga_to_serial: Option<PathBuf>,
    /// Start with the CPUs stopped (`-S`): everything is set up (sockets, ports,
    /// devices) and no guest code runs, so many machines cost next to no CPU.
    pub paused: bool,
    /// Wait for a saved state (`-incoming defer`) instead of booting: the
    /// machine runs from where `Qmp::restore_state` leaves it, once resumed.
    pub incoming: bool,
    /// A VM generation ID (x86_64 only; `guid=auto`: a new one in every QEMU):
    /// a guest restored from a saved state is told it was forked, and Linux
    /// reseeds its random generator (drivers/virt/vmgenid.c), so that
    /// machines restored from one state do not share it.
    pub vmgenid: bool,
}

/// UEFI as two flash units: the code (never written) and a variable store the
/// firmware may write (boot entries): a per-trial copy, never the distro's file.
#[derive(Debug, Clone)]
pub struct Pflash {
    pub code: PathBuf,
    pub vars: PathBuf,
    pub format: String,
}

/// The full argument list (without the binary).
pub fn command_line(spec: &MachineSpec) -> Vec<OsString> {
    [
        machine_args(spec.arch, spec.accel, spec.incoming),
        cpu_args(spec.arch, spec.accel),
        memory_args(spec.memory_mib, spec.cpus),
        firmware_args(spec.uefi.as_ref()),
        bios_log_args(spec.arch, spec.uefi.is_some(), &spec.pidfile),
        sercon_args(spec.vga_to_serial.as_deref()),
        cdrom_args(spec.arch, &spec.iso),
        serial_args(&spec.serial_socket),
        qmp_args(&spec.qmp_socket),
        display_args(spec.arch),
        network_args(spec.forward),
        vmgenid_args(spec.arch, spec.vmgenid),
        lifecycle_args(&spec.pidfile, spec.paused, spec.incoming),
    ]
    .concat()
}

pub(super) fn os(parts: &[&str]) -> Vec<OsString> {
    parts.iter().map(OsString::from).collect()
}

/// QEMU splits option values at commas; a comma inside a path is written twice.
fn escape(path: &Path) -> String {
    path.to_string_lossy().replace(',', ",,")
}

/// q35 is the modern PC (AHCI CD-ROM, PCIe); `virt` is the generic ARM board.
pub(super) fn machine_type(arch: Arch) -> &'static str {
    match arch {
        Arch::X86_64 => "q35",
        Arch::Aarch64 => "virt",
    }
}

/// The board, and the accelerator with its options. A machine restored from
/// a saved state (`restored`) runs beside the run's other clones, one host
/// core each (`run::share`): under TCG its vCPUs take turns on one host
/// thread (`thread=single`), however many its saved boot had. The thread
/// mode is not part of the saved state; a leader that booted alone had as
/// many threads as vCPUs, and two of them reached the rescue fixture's shell
/// about 4 s sooner than one (observed, not benchmarked: the book's Shared
/// boots page).
pub(super) fn machine_args(arch: Arch, accel: Accel, restored: bool) -> Vec<OsString> {
    let accel = match (accel, restored) {
        (Accel::Tcg, true) => "tcg,thread=single",
        (accel, _) => accel.as_str(),
    };
    os(&["-machine", machine_type(arch), "-accel", accel])
}

/// Under KVM the guest sees the host CPU. Under TCG an x86_64 guest gets the
/// baseline `qemu64`: with `max`, glibc picks AVX2 code paths that TCG emulates
/// slowly (measured: shell after 74 s instead of 43 s). ARM has no such baseline
/// model that current kernels accept everywhere, so it gets `max`.
pub(super) fn cpu_args(arch: Arch, accel: Accel) -> Vec<OsString> {
    let cpu = match (accel, arch) {
        (Accel::Kvm, _) => "host",
        (Accel::Tcg, Arch::X86_64) => "qemu64",
        (Accel::Tcg, Arch::Aarch64) => "max",
    };
    os(&["-cpu", cpu])
}

fn memory_args(mib: u64, cpus: u32) -> Vec<OsString> {
    os(&["-m", &format!("{mib}M"), "-smp", &cpus.to_string()])
}

/// BIOS is QEMU's default (SeaBIOS); UEFI is mapped as flash.
pub(super) fn firmware_args(uefi: Option<&Pflash>) -> Vec<OsString> {
    let Some(p) = uefi else { return Vec::new() };
    os(&[
        "-drive",
        &format!(
            "if=pflash,unit=0,format={},readonly=on,file={}",
            p.format,
            escape(&p.code)
        ),
        "-drive",
        &format!(
            "if=pflash,unit=1,format={},file={}",
            p.format,
            escape(&p.vars)
        ),
    ])
}

/// SeaBIOS's own log (its debug port 0x402), beside the pidfile in the trial's
/// artifacts: it says what the firmware tried to boot, which the serial port
/// never shows. And a SeaBIOS that finds nothing to boot resets at once instead
/// of waiting forever, so that QEMU (under -no-reboot) exits and the boot ends
/// now, explained by this log ("No bootable device.").
pub(super) fn bios_log_args(arch: Arch, uefi: bool, pidfile: &Path) -> Vec<OsString> {
    if arch != Arch::X86_64 || uefi {
        return Vec::new();
    }
    let log = pidfile.with_file_name(FIRMWARE_LOG);
    os(&[
        "-boot",
        "reboot-timeout=0",
        "-chardev",
        &format!("file,id=firmware,path={}", escape(&log)),
        "-device",
        "isa-debugcon,iobase=0x402,chardev=firmware",
    ])
}

/// SeaBIOS's log, in the trial's artifacts (see `bios_log_args`).
pub const FIRMWARE_LOG: &str = "firmware.log";

/// SeaBIOS mirrors VGA text (and takes keys) on the serial port named in its
/// `etc/sercon-port` fw_cfg file: the I/O port as a 2-byte little-endian number
/// (a `string=` value does not work; REFERENCE.md). QEMU warns that the name
/// lacks the `opt/` prefix, harmlessly: SeaBIOS reads exactly this name.
pub(super) fn sercon_args(port_file: Option<&Path>) -> Vec<OsString> {
    let Some(file) = port_file else {
        return Vec::new();
    };
    os(&[
        "-fw_cfg",
        &format!("name=etc/sercon-port,file={}", escape(file)),
    ])
}

/// The contents of the `etc/sercon-port` file for ttyS0 (I/O port 0x3f8).
pub const SERCON_TTYS0: [u8; 2] = 0x3f8u16.to_le_bytes();

/// The ISO as a read-only CD-ROM, the way a user boots a rescue disk: on the PC's
/// AHCI controller, or on virtio-scsi for `virt`, which has no IDE/AHCI.
/// `bootindex=0` makes it the only boot device the firmware is told of
/// (QEMU's fw_cfg `bootorder`): OVMF and AAVMF then drop every other boot
/// option they made (the NIC's PXE and HTTP boot, q35's empty default CD-ROM;
/// edk2's OvmfPkg/Library/QemuBootOrderLib, `SetBootOrderFromQemu`), keeping
/// only their own (the EFI shell), so an ISO with nothing for UEFI ends in
/// seconds instead of waiting out network boot. Measured with Debian's ovmf
/// 2022.11: without it, PXE over IPv4 and IPv6 and HTTP boot follow, minutes;
/// with it, the EFI shell 4.4 s after power-on under TCG.
pub(super) fn cdrom_args(arch: Arch, iso: &Path) -> Vec<OsString> {
    let drive = format!(
        "if=none,id=cd0,file={},media=cdrom,readonly=on,format=raw",
        escape(iso)
    );
    match arch {
        Arch::X86_64 => os(&[
            "-drive",
            &drive,
            "-device",
            "ide-cd,drive=cd0,bus=ide.0,bootindex=0",
        ]),
        Arch::Aarch64 => os(&[
            "-drive",
            &drive,
            "-device",
            "virtio-scsi-pci,id=scsi0",
            "-device",
            "scsi-cd,drive=cd0,bus=scsi0.0,bootindex=0",
        ]),
    }
}

/// The first serial port (ttyS0) goes to a socket the harness listens on. QEMU is
/// the client and connects while it starts, before the guest runs, so not one byte
/// of firmware output is lost.
fn serial_args(socket: &Path) -> Vec<OsString> {
    os(&[
        "-chardev",
        &format!("socket,id=serial0,path={}", escape(socket)),
        "-serial",
        "chardev:serial0",
    ])
}

/// QMP, the machine-readable monitor, on a second socket the harness listens on.
fn qmp_args(socket: &Path) -> Vec<OsString> {
    os(&[
        "-chardev",
        &format!("socket,id=qmp0,path={}", escape(socket)),
        "-mon",
        "chardev=qmp0,mode=control",
    ])
}

/// No window; the emulated VGA card stays, since boot menus draw on it too and
/// a failed boot's screendump reads it. `virt` has no display of its own: a
/// `ramfb` (a framebuffer AAVMF drives with its QemuRamfbDxe, and Linux through
/// the EFI framebuffer) gives it one to dump. It cannot be hot-plugged when a
/// boot fails, so it is always there; its cost: GRUB's gfxterm starts on it, and
/// the menu reaches serial through the text-mode key (measured: 13 s instead of
/// 6 s to the menu under TCG).
fn display_args(arch: Arch) -> Vec<OsString> {
    match arch {
        Arch::X86_64 => os(&["-display", "none"]),
        Arch::Aarch64 => os(&["-display", "none", "-device", "ramfb"]),
    }
}

/// One virtio NIC on QEMU's user network (the guest gets 10.0.2.15 by DHCP).
/// The forward binds 127.0.0.1 only: the guest's sshd must not be reachable from
/// other machines. No option ROM: nothing boots from the network.
fn network_args(forward: Option<(u16, u16)>) -> Vec<OsString> {
    let mut netdev = "user,id=net0".to_owned();
    if let Some((host, guest)) = forward {
        netdev.push_str(&format!(",hostfwd=tcp:127.0.0.1:{host}-:{guest}"));
    }
    os(&[
        "-netdev",
        &netdev,
        "-device",
        "virtio-net-pci,netdev=net0,romfile=",
    ])
}

/// QEMU has the device on x86_64 only (hw/acpi/Kconfig: ACPI_VMGENID
/// depends on PC); an aarch64 guest is reseeded through its console instead.
fn vmgenid_args(arch: Arch, wanted: bool) -> Vec<OsString> {
    match (arch, wanted) {
        (Arch::X86_64, true) => os(&["-device", "vmgenid,guid=auto"]),
        _ => Vec::new(),
    }
}

/// A guest that reboots has failed (e.g. a panic with `panic=N`): exit instead.
/// The pidfile lets tests and users find the process. A paused machine waits
/// for QMP `cont`; an incoming one for `migrate-incoming` (`defer`: the
/// migration's capabilities must be set on both ends before the state loads).
fn lifecycle_args(pidfile: &Path, paused: bool, incoming: bool) -> Vec<OsString> {
    let mut args = os(&["-no-reboot", "-pidfile", &escape(pidfile)]);
    if paused {
        args.push("-S".into());
    }
    if incoming {
        args.extend(os(&["-incoming", "defer"]));
    }
    args
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A BIOS machine under TCG, as the command line's tests know it.
    pub(in crate::qemu) fn spec() -> MachineSpec {
        MachineSpec {
            arch: Arch::X86_64,
            firmware: Firmware::Bios,
            accel: Accel::Tcg,
            memory_mib: 1024,
            cpus: 2,
            iso: "/tmp/a,b.iso".into(),
            uefi: None,
            serial_socket: "/run/t/serial.sock".into(),
            qmp_socket: "/run/t/qmp.sock".into(),
            pidfile: "/art/qemu.pid".into(),
            forward: Some((40022, 22)),
            vga_to_serial: None,
            paused: false,
            incoming: false,
            vmgenid: false,
        }
    }

    fn joined(spec: &MachineSpec) -> String {
        command_line(spec)
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn tcg_bios_command_line() {
        let line = joined(&spec());
        assert!(
            line.starts_with("-machine q35 -accel tcg -cpu qemu64 -m 1024M -smp 2 "),
            "{line}"
        );
        let cdrom = "-drive if=none,id=cd0,file=/tmp/a,,b.iso,media=cdrom,readonly=on,format=raw -device ide-cd,drive=cd0,bus=ide.0,bootindex=0 ";
        assert!(line.contains(cdrom), "the ISO, the one boot device: {line}");
        assert!(
            line.contains(
                "-chardev socket,id=serial0,path=/run/t/serial.sock -serial chardev:serial0"
            ),
            "{line}"
        );
        assert!(line.contains("-mon chardev=qmp0,mode=control"), "{line}");
        assert!(line.contains("-display none"), "{line}");
        assert!(
            line.contains(
                "-netdev user,id=net0,hostfwd=tcp:127.0.0.1:40022-:22 -device virtio-net-pci"
            ),
            "{line}"
        );
        assert!(
            line.ends_with("-no-reboot -pidfile /art/qemu.pid"),
            "{line}"
        );
        let log = "-boot reboot-timeout=0 -chardev file,id=firmware,path=/art/firmware.log -device isa-debugcon,iobase=0x402,chardev=firmware";
        assert!(line.contains(log), "{line}");
    }

    #[test]
    fn uefi_maps_code_read_only_and_a_writable_vars_copy() {
        let uefi = Pflash {
            code: "/usr/share/OVMF/OVMF_CODE_4M.fd".into(),
            vars: "/run/t/vars.fd".into(),
            format: "raw".into(),
        };
        let line = joined(&MachineSpec {
            firmware: Firmware::Uefi,
            uefi: Some(uefi),
            ..spec()
        });
        assert!(line.contains("-drive if=pflash,unit=0,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd"), "{line}");
        assert!(
            line.contains("-drive if=pflash,unit=1,format=raw,file=/run/t/vars.fd "),
            "{line}"
        );
        assert!(
            !line.contains("isa-debugcon"),
            "OVMF is not SeaBIOS: {line}"
        );
    }

    #[test]
    fn aarch64_is_a_virt_board_with_a_scsi_cdrom() {
        let line = joined(&MachineSpec {
            arch: Arch::Aarch64,
            ..spec()
        });
        assert!(
            !line.contains("isa-debugcon") && !line.contains("reboot-timeout"),
            "{line}"
        );
        assert!(
            line.starts_with("-machine virt -accel tcg -cpu max "),
            "{line}"
        );
        assert!(line.contains("-device virtio-scsi-pci,id=scsi0 -device scsi-cd,drive=cd0,bus=scsi0.0,bootindex=0 "), "{line}");
        assert!(
            line.contains("-display none -device ramfb "),
            "a display for screendumps: {line}"
        );
        assert!(
            !joined(&spec()).contains("ramfb"),
            "the PC has its VGA card"
        );
    }

    #[test]
    fn vga_text_goes_to_serial_only_when_asked() {
        assert!(!joined(&spec()).contains("sercon"));
        let line = joined(&MachineSpec {
            vga_to_serial: Some("/run/t/sercon,port".into()),
            ..spec()
        });
        assert!(
            line.contains("-fw_cfg name=etc/sercon-port,file=/run/t/sercon,,port "),
            "{line}"
        );
        assert_eq!(SERCON_TTYS0, [0xf8, 0x03]);
    }

    #[test]
    fn a_vm_generation_id_on_x86_64_only() {
        let with = |arch| {
            joined(&MachineSpec {
                arch,
                vmgenid: true,
                ..spec()
            })
        };
        assert!(with(Arch::X86_64).contains(" -device vmgenid,guid=auto "));
        assert!(!with(Arch::Aarch64).contains("vmgenid"));
        assert!(!joined(&spec()).contains("vmgenid"));
    }

    #[test]
    fn a_restored_machine_runs_its_vcpus_on_one_thread_under_tcg() {
        let restored = |accel| {
            joined(&MachineSpec {
                accel,
                incoming: true,
                ..spec()
            })
        };
        let tcg = restored(Accel::Tcg);
        assert!(
            tcg.starts_with("-machine q35 -accel tcg,thread=single -cpu qemu64 -m 1024M -smp 2 "),
            "{tcg}"
        );
        assert!(tcg.contains(" -incoming defer"), "{tcg}");
        let kvm = restored(Accel::Kvm);
        assert!(
            kvm.starts_with("-machine q35 -accel kvm -cpu host "),
            "{kvm}"
        );
    }

    #[test]
    fn a_paused_machine_starts_with_its_cpus_stopped() {
        assert!(!joined(&spec()).split(' ').any(|a| a == "-S"));
        let line = joined(&MachineSpec {
            paused: true,
            incoming: false,
            ..spec()
        });
        assert!(
            line.ends_with("-no-reboot -pidfile /art/qemu.pid -S"),
            "{line}"
        );
    }

    #[test]
    fn kvm_uses_the_host_cpu() {
        let line = joined(&MachineSpec {
            accel: Accel::Kvm,
            ..spec()
        });
        assert!(
            line.starts_with("-machine q35 -accel kvm -cpu host "),
            "{line}"
        );
    }
}
