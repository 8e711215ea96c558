//! The choice: which entry of the ISO's boot menu to boot, and how to get there.
//! BIOS boots isolinux when the ISO has it, else GRUB (one GRUB for BIOS and
//! UEFI); UEFI boots GRUB. GRUB whose grub.cfg is not on the ISO is read off
//! the screen. Only the ISO's lack of a file changes the way: an error of this
//! host's is returned, never taken for it.

use super::drawn::DrawnChoice;
use super::error::MenuError;
use super::grub::{GrubMenu, GrubPlan, DEFAULT_TEXT_MODE_KEY};
use super::iso_files::{IsoFiles, Xorriso};
use super::isolinux::{self, IsolinuxChoice, IsolinuxMenu};
use crate::platform::Firmware;
use regex::Regex;
use std::path::Path;

/// How to get from the boot menu to the chosen entry.
#[derive(Debug, Clone)]
pub enum BootChoice {
    Isolinux(IsolinuxChoice),
    Grub(GrubPlan),
    /// GRUB whose configuration is not on the ISO: read the menu off the screen.
    GrubDrawn(DrawnChoice),
}

impl BootChoice {
    /// Reads the ISO's boot menu for `firmware` and picks the entry (see
    /// `IsolinuxMenu::choose`, `GrubMenu::choose`).
    pub fn for_iso(
        iso: &Path,
        firmware: Firmware,
        pattern: Option<&Regex>,
        console_arg: &str,
    ) -> Result<BootChoice, MenuError> {
        BootChoice::from_files(&Xorriso { iso }, firmware, pattern, console_arg)
    }

    /// As `for_iso`, with the ISO's files read from `files`.
    pub fn from_files(
        files: &dyn IsoFiles,
        firmware: Firmware,
        pattern: Option<&Regex>,
        console_arg: &str,
    ) -> Result<BootChoice, MenuError> {
        if firmware == Firmware::Bios {
            match IsolinuxMenu::from_files(files) {
                Ok(menu) => return menu.choose(pattern, console_arg).map(BootChoice::Isolinux),
                Err(MenuError::NotOnIso { .. }) if !files.has_dir(isolinux::DIR)? => {}
                Err(e) => return Err(e),
            }
        }
        match GrubMenu::from_files(files) {
            Ok(menu) => menu.choose(pattern, console_arg).map(BootChoice::Grub),
            Err(MenuError::NotOnIso { .. }) => Ok(BootChoice::GrubDrawn(DrawnChoice {
                pattern: pattern.cloned(),
                console_arg: console_arg.to_owned(),
                text_mode_key: DEFAULT_TEXT_MODE_KEY,
            })),
            Err(e) => Err(e),
        }
    }

    /// Whether the boot loader draws on VGA only, so that nothing reaches the
    /// serial port unless the BIOS mirrors VGA text there: GRUB booted by BIOS
    /// (isolinux has its own `SERIAL` directive).
    pub fn draws_on_vga_only(&self, firmware: Firmware) -> bool {
        matches!(
            (self, firmware),
            (
                BootChoice::Grub(_) | BootChoice::GrubDrawn(_),
                Firmware::Bios
            )
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::menu::error::HostError;
    use std::path::PathBuf;

    const CONSOLE: &str = "console=ttyS0,115200n8";
    const ISOLINUX_CFG: &str = "DEFAULT boot\nLABEL boot\nAPPEND init=/x\n";
    const GRUB_CFG: &str = "menuentry 'A' {\n  linux /k init=/x\n}\n";

    /// An ISO as a table of files and directories; `broken` names a file or
    /// directory this host fails to read.
    #[derive(Default)]
    struct Files {
        files: Vec<(&'static str, &'static str)>,
        dirs: Vec<&'static str>,
        broken: Option<&'static str>,
    }

    fn host_error() -> HostError {
        HostError::TempDir {
            iso: PathBuf::from("a.iso"),
            file: "f".into(),
            source: std::io::Error::other("disk full"),
        }
    }

    impl IsoFiles for Files {
        fn read(&self, file: &str) -> Result<String, MenuError> {
            if self.broken == Some(file) {
                return Err(host_error().into());
            }
            let found = self.files.iter().find(|(path, _)| *path == file);
            found
                .map(|(_, text)| text.to_string())
                .ok_or_else(|| MenuError::NotOnIso {
                    iso: PathBuf::from("a.iso"),
                    file: file.into(),
                    detail: "no such file in the ISO".into(),
                })
        }

        fn has_dir(&self, dir: &str) -> Result<bool, HostError> {
            if self.broken == Some(dir) {
                return Err(host_error());
            }
            Ok(self.dirs.contains(&dir))
        }
    }

    fn choose(files: &Files, firmware: Firmware) -> Result<BootChoice, MenuError> {
        BootChoice::from_files(files, firmware, None, CONSOLE)
    }

    #[test]
    fn bios_boots_isolinux_when_the_iso_has_it_else_grub() {
        let both = Files {
            files: vec![
                (isolinux::CFG, ISOLINUX_CFG),
                ("/boot/grub/grub.cfg", GRUB_CFG),
            ],
            dirs: vec![isolinux::DIR],
            ..Files::default()
        };
        assert!(matches!(
            choose(&both, Firmware::Bios),
            Ok(BootChoice::Isolinux(_))
        ));
        assert!(matches!(
            choose(&both, Firmware::Uefi),
            Ok(BootChoice::Grub(_))
        ));
        let grub_only = Files {
            files: vec![("/EFI/BOOT/grub.cfg", GRUB_CFG)],
            ..Files::default()
        };
        assert!(matches!(
            choose(&grub_only, Firmware::Bios),
            Ok(BootChoice::Grub(_))
        ));
    }

    #[test]
    fn an_isolinux_directory_without_its_configuration_fails() {
        let files = Files {
            dirs: vec![isolinux::DIR],
            ..Files::default()
        };
        let e = choose(&files, Firmware::Bios).unwrap_err();
        assert!(!e.is_host_fault(), "{e:?}");
        assert_eq!(
            e.to_string(),
            "a.iso: cannot read /isolinux/isolinux.cfg from the ISO: no such file in the ISO"
        );
    }

    #[test]
    fn grub_without_grub_cfg_on_the_iso_is_read_off_the_screen() {
        let choice = choose(&Files::default(), Firmware::Uefi).unwrap();
        let BootChoice::GrubDrawn(drawn) = choice else {
            panic!("{choice:?}")
        };
        assert_eq!(drawn.text_mode_key, DEFAULT_TEXT_MODE_KEY);
        assert_eq!(drawn.console_arg, CONSOLE);
    }

    /// A host that cannot read the ISO says so; it never boots another way.
    #[test]
    fn a_host_error_is_returned_never_taken_for_a_missing_file() {
        let grub = Files {
            broken: Some("/EFI/BOOT/grub.cfg"),
            ..Files::default()
        };
        let isolinux = Files {
            broken: Some(isolinux::CFG),
            ..Files::default()
        };
        let dir = Files {
            broken: Some(isolinux::DIR),
            ..Files::default()
        };
        for (files, firmware) in [
            (&grub, Firmware::Uefi),
            (&grub, Firmware::Bios),
            (&isolinux, Firmware::Bios),
            (&dir, Firmware::Bios),
        ] {
            let e = choose(files, firmware).unwrap_err();
            assert!(e.is_host_fault(), "{e:?}");
            assert_eq!(
                crate::error::chain(&e),
                "cannot make a temporary directory to read f from a.iso: disk full"
            );
        }
    }
}
