//! What the console's text says about a boot: the milestones that move it to
//! the next phase (kernel, userspace, login prompt), the signs that end it at
//! once (a panic, emergency mode, no kernel, nothing to boot), and the lines
//! that explain such an end.

use crate::console::serial::SerialConsole;
use regex::bytes::Regex;
use std::sync::OnceLock;

pub(super) fn re(pattern: &str) -> Regex {
    Regex::new(pattern).expect("static pattern")
}

pub(super) struct Signs {
    pub kernel: Regex,
    pub userspace: Regex,
    pub login: Regex,
    panic: Regex,
    emergency: Regex,
    stage_1_failed: Regex,
    no_kernel: Regex,
    grub_rescue: Regex,
    uefi_gave_up: Regex,
}

pub(super) fn signs() -> &'static Signs {
    static S: OnceLock<Signs> = OnceLock::new();
    S.get_or_init(|| Signs {
        // Debian's initramfs, NixOS's scripted stage 1 (stage-1-init.sh) or
        // systemd in its initrd, whose greeting names the initrd's release
        // ("<PRETTY_NAME> (Initrd)", nixos/modules/misc/version.nix), or the
        // kernel itself at a verbose loglevel.
        kernel: re(r"Loading, please wait|<<< NixOS Stage 1 >>>|Welcome to [^\n]*\(Initrd\)!|Run /init as init process|Linux version \d"),
        // systemd's greeting (whole: the initrd's, read first as the kernel's
        // phase, ends in "(Initrd)!"), NixOS's stage 2 (stage-2-init.sh).
        userspace: re(r"Welcome to [^\n]*!|<<< NixOS Stage 2 >>>|systemd\[1\]: "),
        login: re(r"(?m)^[^\n]*login: "),
        panic: re(r"Kernel panic - not syncing[^\n]*"),
        // systemd-sulogin-shell's greeting when emergency.target is reached (a
        // required mount or unit failed), "You are in %s mode" in Debian 12's
        // binary; printed before sulogin asks for anything.
        emergency: re(r"You are in emergency mode[^\n]*\n"),
        // NixOS's scripted stage 1 when it cannot mount the root file system
        // or start stage 2: fail() prints this and waits for a key
        // (nixos/modules/system/boot/stage-1-init.sh).
        stage_1_failed: re(r"An error occurred in stage 1 of the boot process[^\n]*\n"),
        // Whole lines, so that the evidence has their end. isolinux 6.04
        // (Debian 12; older ones: "Could not find kernel image"),
        // then back at its `boot:` prompt; GRUB after a `linux` that failed (its
        // `boot` has nothing to start).
        no_kernel: re(
            r"Loading \S+\.\.\. failed: [^\n]*\n|Could not find kernel image: [^\n]*\n|error: you need to load the kernel first",
        ),
        // GRUB without its normal mode (normal.mod or its prefix not found).
        // Not the space after it: SeaBIOS's mirror holds back the last cell
        // it was given until the next one comes (`sercon_lazy_putchar`,
        // seabios src/sercon.c), and a prompt waits for a key.
        grub_rescue: re(r"grub rescue>"),
        // edk2's boot manager (OVMF, AAVMF) after every boot option failed: it
        // starts what it has left, its own EFI shell (Debian's builds), or says
        // it found nothing (builds without a shell), or tries network boot
        // (when the NIC's boot options were kept). MdeModulePkg/Universal/BdsDxe
        // (BdsEntry.c: "BdsDxe: loading/starting/failed to load Boot####") and
        // OvmfPkg's PlatformBootManagerLib; measured with Debian's ovmf 2022.11.
        uefi_gave_up: re(
            r#"BdsDxe: (?:loading|starting) Boot[0-9A-Fa-f]{4} "EFI Internal Shell"|BdsDxe: No bootable option or device was found|>>Start (?:PXE|HTTP Boot) over IPv[46]"#,
        ),
    })
}

/// How a boot that found nothing to boot is named, by SeaBIOS's log or by
/// edk2's lines on the console.
pub const NO_BOOTABLE_DEVICE: &str =
    "no bootable device: the firmware found nothing to boot on the ISO";

/// The same end, when a boot option of the ISO did start (its boot loader)
/// and came back to the firmware.
const LOADER_RETURNED: &str =
    "the ISO's boot loader returned to the firmware, which found nothing else to boot";

/// What ends a boot at once, whatever phase it is in: each has its own words on
/// the console, so the trial names the cause instead of waiting out a timeout.
pub fn fatal_signs(console: &mut SerialConsole) {
    let s = signs();
    console.add_fatal("kernel panic", s.panic.clone());
    console.add_fatal(
        "emergency mode: systemd could not reach its default target",
        s.emergency.clone(),
    );
    console.add_fatal(
        "NixOS stage 1 failed: it could not mount the root file system or start stage 2",
        s.stage_1_failed.clone(),
    );
    console.add_fatal("the boot loader found no kernel", s.no_kernel.clone());
    console.add_fatal(
        "GRUB rescue prompt: GRUB could not load its normal mode",
        s.grub_rescue.clone(),
    );
    console.add_fatal(NO_BOOTABLE_DEVICE, s.uefi_gave_up.clone());
}

/// edk2's boot manager gave up: its lines about each boot option (which it
/// failed to load, and why) go before the lines around the end. When one of the
/// ISO's options did start, its boot loader came back: not "nothing to boot".
pub(super) fn uefi_boot_lines(text: &str, context: Vec<String>) -> (String, Vec<String>) {
    let options: Vec<String> = text
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter_map(|l| l.find("BdsDxe: ").map(|at| l[at..].to_owned()))
        .filter(|l| !context.iter().any(|c| c.contains(l.as_str())))
        .collect();
    let shell = "\"EFI Internal Shell\"";
    let started = options
        .iter()
        .any(|l| l.starts_with("BdsDxe: starting Boot") && !l.contains(shell));
    let reason = if started {
        LOADER_RETURNED
    } else {
        NO_BOOTABLE_DEVICE
    };
    (
        reason.to_owned(),
        options.into_iter().chain(context).collect(),
    )
}

/// systemd's status lines of units that failed, timed out or lost a dependency.
pub(super) fn failure_lines(text: &str) -> Vec<String> {
    static FAILED: OnceLock<regex::Regex> = OnceLock::new();
    let failed = FAILED.get_or_init(|| {
        regex::Regex::new(r"^\[(FAILED|DEPEND| TIME )\] ").expect("static pattern")
    });
    text.lines()
        .map(str::trim_end)
        .filter(|l| failed.is_match(l))
        .map(str::to_owned)
        .collect()
}

/// `rescue login: root (automatic login)` → `root`.
pub(super) fn autologin_user_of(login_line: &str) -> Option<String> {
    let (before, _) = login_line.split_once(" (automatic login)")?;
    before
        .rsplit(' ')
        .next()
        .filter(|u| !u.is_empty() && !u.ends_with(':'))
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::super::phase::Phase;
    use super::*;

    #[test]
    fn login_pattern_takes_the_whole_getty_line() {
        let p = signs();
        let m = p
            .login
            .find(b"\nrescue login: root (automatic login)\n")
            .unwrap();
        assert_eq!(m.as_bytes(), b"rescue login: ");
    }

    #[test]
    fn fatal_signs_are_recognised_in_what_the_guest_prints() {
        let p = signs();
        // Debian 12 (systemd 252), as the emergency fixture prints it.
        let emergency = b"[  OK  ] Reached target Local File Systems.\r\nYou are in emergency mode. After logging in, type \"journalctl -xb\"\r\n";
        assert!(p.emergency.is_match(emergency));
        // As the no-kernel fixture's isolinux prints it; not before the line is whole.
        assert!(!p.no_kernel.is_match(b"Loading /boot/bzImage... failed:"));
        assert!(p.no_kernel.is_match(b"boot: boot-serial\r\nLoading /boot/bzImage... failed: No such file or directory\r\nboot: "));
        assert!(p
            .no_kernel
            .is_match(b"Could not find kernel image: /boot/bzImage\r\n"));
        assert!(p.no_kernel.is_match(b"error: file `/boot/bzImage' not found.\r\nerror: you need to load the kernel first.\r\n"));
        // A font GRUB could not load is no reason to stop.
        assert!(!p
            .no_kernel
            .is_match(b"error: file `/EFI/boot/unicode.pf2' not found.\r\n"));
        assert!(p
            .grub_rescue
            .is_match(b"Entering rescue mode...\r\ngrub rescue> "));
        // SeaBIOS 1.16.3's mirror, before a key: the prompt's space held back.
        assert!(p.grub_rescue.is_match(b"not found.\ngrub rescue>"));
        assert!(!p.grub_rescue.is_match(b"grub> "));
    }

    /// NixOS's stage 1 failure, as stage-1-init.sh's fail() prints it.
    #[test]
    fn nixos_stage_1_failure_is_a_fatal_sign() {
        let p = signs();
        let text = b"Timed out waiting for device /dev/root, trying to mount anyway.\r\n\r\nAn error occurred in stage 1 of the boot process, which must mount the\r\nroot filesystem";
        assert!(p.stage_1_failed.is_match(text));
        assert!(!p
            .stage_1_failed
            .is_match(b"An error occurred in stage 1 of the boot"));
    }

    /// The milestones NixOS prints, in the order they come: the scripted
    /// stage 1 and 2, or systemd's initrd greeting (the kernel's phase, not
    /// userspace, though it starts like systemd's own) and then its own.
    #[test]
    fn nixos_milestones_are_the_same_phases() {
        let p = signs();
        let milestones = [(Phase::Kernel, &p.kernel), (Phase::Userspace, &p.userspace)];
        let first = |text: &[u8]| {
            milestones
                .iter()
                .filter_map(|(phase, re)| re.find(text).map(|m| (m.start(), *phase)))
                .min_by_key(|(at, _)| *at)
                .map(|(_, phase)| phase)
        };
        assert_eq!(
            first(b"\r\n<<< NixOS Stage 1 >>>\r\n\r\nloading module ahci...\r\n"),
            Some(Phase::Kernel)
        );
        assert_eq!(
            first(b"mounting /dev/root on /iso...\r\n\r\n<<< NixOS Stage 2 >>>\r\n"),
            Some(Phase::Userspace)
        );
        assert_eq!(
            first(b"\r\nWelcome to NixOS 25.05 (Warbler) (Initrd)!\r\n"),
            Some(Phase::Kernel)
        );
        // Not yet whole: neither (a partial greeting is no userspace).
        assert_eq!(first(b"\r\nWelcome to NixOS 25.05 (Warbler) (Ini"), None);
        assert_eq!(
            first(b"\r\nWelcome to NixOS 25.05 (Warbler)!\r\n"),
            Some(Phase::Userspace)
        );
        assert_eq!(
            first(b"Welcome to Debian GNU/Linux 12 (bookworm)!\r\n"),
            Some(Phase::Userspace)
        );
    }

    #[test]
    fn what_led_to_emergency_mode_is_systemds_failure_lines() {
        // From the emergency fixture's console.
        let text = "[  OK  ] Reached target Swaps.\n[ TIME ] Timed out waiting for device ev/disk/by-label/isotest-data.\n\
                    [DEPEND] Dependency failed for mnt-data.mount - /mnt/data.\n[  OK  ] Started emergency.service.\n";
        assert_eq!(
            failure_lines(text),
            [
                "[ TIME ] Timed out waiting for device ev/disk/by-label/isotest-data.",
                "[DEPEND] Dependency failed for mnt-data.mount - /mnt/data."
            ]
        );
    }

    #[test]
    fn autologin_user_from_getty_line() {
        assert_eq!(
            autologin_user_of("rescue login: root (automatic login)").as_deref(),
            Some("root")
        );
        assert_eq!(autologin_user_of("rescue login: "), None);
    }

    #[test]
    fn the_ways_edk2_gives_up() {
        let p = signs();
        for line in [
            r#"BdsDxe: loading Boot0002 "EFI Internal Shell" from Fv(7CB8BDC9-F8EB-4F34-AAEA-3EE4AF6516A1)"#,
            "BdsDxe: No bootable option or device was found.",
            ">>Start PXE over IPv4.",
            ">>Start HTTP Boot over IPv6.....",
        ] {
            assert!(p.uefi_gave_up.is_match(line.as_bytes()), "{line}");
        }
        for line in [
            r#"BdsDxe: loading Boot0001 "UEFI QEMU DVD-ROM QM00001 " from PciRoot(0x0)"#,
            "BdsDxe: starting Boot0001",
        ] {
            assert!(!p.uefi_gave_up.is_match(line.as_bytes()), "{line}");
        }
    }

    #[test]
    fn a_boot_loader_that_came_back_is_not_nothing_to_boot() {
        let text = "BdsDxe: loading Boot0001 \"UEFI QEMU DVD-ROM QM00001 \" from PciRoot(0x0)\r\n\
                    BdsDxe: starting Boot0001 \"UEFI QEMU DVD-ROM QM00001 \" from PciRoot(0x0)\r\n\
                    Welcome to GRUB!\r\n\
                    BdsDxe: loading Boot0002 \"EFI Internal Shell\" from Fv(7CB8BDC9)\r\n";
        let context =
            vec!["BdsDxe: loading Boot0002 \"EFI Internal Shell\" from Fv(7CB8BDC9)".to_owned()];
        let (reason, lines) = uefi_boot_lines(text, context);
        assert_eq!(reason, LOADER_RETURNED);
        assert_eq!(lines.len(), 3, "each line once: {lines:?}");
        let (reason, _) = uefi_boot_lines("BdsDxe: failed to load Boot0001 \"UEFI QEMU DVD-ROM\": Not Found\r\nBdsDxe: No bootable option or device was found.\r\n", vec![]);
        assert_eq!(reason, NO_BOOTABLE_DEVICE);
    }
}
