//! Boot menus as the ISO declares them. The harness reads the ISO's own isolinux
//! configuration (BIOS) or grub.cfg (UEFI, see `grub`) through xorriso, so it can
//! pick an entry by its label or menu text, and knows whether that entry already
//! has a serial console.

use super::grub::{GrubMenu, GrubPlan, DEFAULT_TEXT_MODE_KEY};
use crate::platform::Firmware;
use regex::Regex;
use std::path::Path;
use std::process::Command;

#[derive(Debug, thiserror::Error)]
pub enum MenuError {
    #[error("xorriso is needed to read the ISO's boot menu; install it: apt-get install xorriso (Fedora: dnf install xorriso; Nix: nix-shell -p xorriso)")]
    NoXorriso,
    #[error("{iso}: cannot read {file} from the ISO: {detail}")]
    Read {
        iso: String,
        file: String,
        detail: String,
    },
    #[error("no boot menu entry matches /{pattern}/; the entries are: {entries}")]
    NoMatch { pattern: String, entries: String },
    #[error("the boot menu has no entries")]
    Empty,
}

/// One `LABEL` block of isolinux.cfg.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MenuEntry {
    pub label: String,
    pub menu_label: String,
    pub append: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsolinuxMenu {
    pub default: Option<String>,
    pub entries: Vec<MenuEntry>,
}

/// How to get from the boot menu to the chosen entry.
#[derive(Debug, Clone)]
pub enum BootChoice {
    Isolinux(IsolinuxChoice),
    Grub(GrubPlan),
    /// GRUB whose configuration is not on the ISO: read the menu off the screen.
    GrubDrawn(DrawnChoice),
}

/// What to look for in a menu known only from the screen: an item matching the
/// pattern, else one whose title names the console, else (items seen in GRUB's
/// editor, submenus searched) an entry whose `linux` command has the console,
/// else the entry highlighted at first, edited to add the console.
#[derive(Debug, Clone)]
pub struct DrawnChoice {
    pub pattern: Option<Regex>,
    pub console_arg: String,
    /// Pressed when GRUB draws nothing on serial: nixpkgs' (and openSUSE's) `t`.
    pub text_mode_key: char,
}

impl DrawnChoice {
    /// Which drawn item to pick: the pattern's (if any), else one whose title
    /// names the console device.
    pub fn pick(&self, items: &[String]) -> Option<usize> {
        match &self.pattern {
            Some(re) => items.iter().position(|t| re.is_match(t)),
            None => {
                let device = self
                    .console_arg
                    .split(',')
                    .next()
                    .unwrap_or(&self.console_arg);
                items.iter().position(|t| t.contains(device))
            }
        }
    }
}

impl BootChoice {
    /// Reads the ISO's boot menu for `firmware` and picks the entry (see
    /// `IsolinuxMenu::choose`, `GrubMenu::choose`). BIOS boots isolinux when the
    /// ISO has it, else GRUB (one GRUB for BIOS and UEFI); UEFI boots GRUB.
    pub fn for_iso(
        iso: &Path,
        firmware: Firmware,
        pattern: Option<&Regex>,
        console_arg: &str,
    ) -> Result<BootChoice, MenuError> {
        let grub = || match GrubMenu::from_iso(iso) {
            Ok(menu) => menu.choose(pattern, console_arg).map(BootChoice::Grub),
            // No grub.cfg on the ISO (e.g. inside a grub-mkstandalone binary).
            Err(MenuError::Read { .. }) => Ok(BootChoice::GrubDrawn(DrawnChoice {
                pattern: pattern.cloned(),
                console_arg: console_arg.to_owned(),
                text_mode_key: DEFAULT_TEXT_MODE_KEY,
            })),
            Err(e) => Err(e),
        };
        match firmware {
            Firmware::Bios => match IsolinuxMenu::from_iso(iso) {
                Ok(menu) => menu.choose(pattern, console_arg).map(BootChoice::Isolinux),
                Err(MenuError::Read { .. }) if !iso_has_dir(iso, "/isolinux") => grub(),
                Err(e) => Err(e),
            },
            Firmware::Uefi => grub(),
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

/// What to type at the `boot:` prompt: a label and extra kernel parameters, which
/// isolinux appends to the entry's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsolinuxChoice {
    pub label: String,
    pub extra_args: String,
}

impl IsolinuxChoice {
    pub fn command_line(&self) -> String {
        if self.extra_args.is_empty() {
            self.label.clone()
        } else {
            format!("{} {}", self.label, self.extra_args)
        }
    }
}

/// Whether kernel arguments already have `console_arg`'s console device
/// (`console=ttyS0,115200n8` counts for `console=ttyS0,9600`).
pub(super) fn has_console(kernel_args: &str, console_arg: &str) -> bool {
    let device = console_arg.split(',').next().unwrap_or(console_arg);
    kernel_args
        .split_whitespace()
        .any(|a| a.split(',').next() == Some(device))
}

/// Whether the ISO has a directory at `path` (xorriso lists nothing otherwise).
fn iso_has_dir(iso: &Path, path: &str) -> bool {
    Command::new("xorriso")
        .args(["-indev"])
        .arg(iso)
        .args(["-find", path, "-maxdepth", "0", "-type", "d"])
        .output()
        .is_ok_and(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l.trim_matches('\'') == path)
        })
}

/// Reads a file from an ISO image without mounting it (iso9660 often cannot be
/// loop-mounted in containers and VMs).
pub fn read_iso_file(iso: &Path, file: &str) -> Result<String, MenuError> {
    let dir = tempfile::tempdir().map_err(|e| MenuError::Read {
        iso: iso.display().to_string(),
        file: file.into(),
        detail: e.to_string(),
    })?;
    let target = dir.path().join("extracted");
    let output = Command::new("xorriso")
        .args(["-osirrox", "on", "-indev"])
        .arg(iso)
        .arg("-extract")
        .arg(file)
        .arg(&target)
        .output()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => MenuError::NoXorriso,
            _ => MenuError::Read {
                iso: iso.display().to_string(),
                file: file.into(),
                detail: e.to_string(),
            },
        })?;
    std::fs::read_to_string(&target).map_err(|_| {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let detail = stderr
            .lines()
            .filter(|l| l.contains("FAILURE") || l.contains("SORRY"))
            .collect::<Vec<_>>()
            .join("; ");
        MenuError::Read {
            iso: iso.display().to_string(),
            file: file.into(),
            detail: if detail.is_empty() {
                "no such file in the ISO".into()
            } else {
                detail
            },
        }
    })
}

impl IsolinuxMenu {
    pub fn from_iso(iso: &Path) -> Result<IsolinuxMenu, MenuError> {
        Ok(IsolinuxMenu::parse(&read_iso_file(
            iso,
            "/isolinux/isolinux.cfg",
        )?))
    }

    /// Parses the directives that matter here; keywords are case-insensitive.
    pub fn parse(cfg: &str) -> IsolinuxMenu {
        let mut menu = IsolinuxMenu {
            default: None,
            entries: Vec::new(),
        };
        for line in cfg.lines() {
            let line = line.trim();
            let (keyword, value) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
            let value = value.trim().to_owned();
            match keyword.to_ascii_uppercase().as_str() {
                "DEFAULT" => menu.default = Some(value),
                "LABEL" => menu.entries.push(MenuEntry {
                    label: value,
                    menu_label: String::new(),
                    append: String::new(),
                }),
                "MENU" => {
                    let (sub, text) = value
                        .split_once(char::is_whitespace)
                        .unwrap_or((&value, ""));
                    if sub.eq_ignore_ascii_case("LABEL") {
                        if let Some(entry) = menu.entries.last_mut() {
                            entry.menu_label = text.trim().to_owned();
                        }
                    }
                }
                "APPEND" => {
                    if let Some(entry) = menu.entries.last_mut() {
                        entry.append = value;
                    }
                }
                _ => {}
            }
        }
        menu
    }

    /// Picks the entry to boot. With a pattern: the first entry whose label or menu
    /// text matches. Without: the first entry that already has `console_arg`'s
    /// console, else the default entry. Either way the serial console is added
    /// when the entry lacks it.
    pub fn choose(
        &self,
        pattern: Option<&Regex>,
        console_arg: &str,
    ) -> Result<IsolinuxChoice, MenuError> {
        let has_console = |e: &MenuEntry| has_console(&e.append, console_arg);
        let entry = match pattern {
            Some(re) => self
                .entries
                .iter()
                .find(|e| re.is_match(&e.label) || re.is_match(&e.menu_label))
                .ok_or_else(|| MenuError::NoMatch {
                    pattern: re.to_string(),
                    entries: self.describe(),
                })?,
            None => self
                .entries
                .iter()
                .find(|e| has_console(e))
                .or_else(|| {
                    self.default
                        .as_ref()
                        .and_then(|d| self.entries.iter().find(|e| &e.label == d))
                })
                .or(self.entries.first())
                .ok_or(MenuError::Empty)?,
        };
        Ok(IsolinuxChoice {
            label: entry.label.clone(),
            extra_args: if has_console(entry) {
                String::new()
            } else {
                console_arg.to_owned()
            },
        })
    }

    fn describe(&self) -> String {
        self.entries
            .iter()
            .map(|e| format!("{} ({})", e.label, e.menu_label))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NIXOS_LIKE: &str = "SERIAL 0 115200\nTIMEOUT 100\nUI vesamenu.c32\nDEFAULT boot\n\n\
        LABEL boot\nMENU LABEL NixOS 24.05 Installer\nLINUX /boot/bzImage\nAPPEND init=/nix/store/x/init loglevel=4\n\n\
        LABEL boot-nomodeset\nMENU LABEL NixOS 24.05 Installer (nomodeset)\nAPPEND init=/x loglevel=4 nomodeset\n\n\
        LABEL boot-serial\nMENU LABEL NixOS 24.05 Installer (serial console=ttyS0,115200n8)\n\
        LINUX /boot/bzImage\nAPPEND init=/x loglevel=4 console=ttyS0,115200n8\nINITRD /boot/initrd\n";
    const CONSOLE: &str = "console=ttyS0,115200n8";

    #[test]
    fn a_drawn_menu_is_picked_by_pattern_or_by_console() {
        let items: Vec<String> = [
            "NixOS Installer",
            "",
            "Options",
            "Serial console=ttyS0,115200n8",
        ]
        .map(String::from)
        .to_vec();
        let choice = DrawnChoice {
            pattern: None,
            console_arg: CONSOLE.into(),
            text_mode_key: 't',
        };
        assert_eq!(choice.pick(&items), Some(3));
        assert_eq!(
            DrawnChoice {
                console_arg: "console=ttyAMA0".into(),
                ..choice.clone()
            }
            .pick(&items),
            None
        );
        assert_eq!(
            DrawnChoice {
                pattern: Some(Regex::new("^Opt").unwrap()),
                ..choice
            }
            .pick(&items),
            Some(2)
        );
    }

    #[test]
    fn parses_labels_and_default() {
        let m = IsolinuxMenu::parse(NIXOS_LIKE);
        assert_eq!(m.default.as_deref(), Some("boot"));
        let labels: Vec<_> = m.entries.iter().map(|e| e.label.as_str()).collect();
        assert_eq!(labels, ["boot", "boot-nomodeset", "boot-serial"]);
        assert_eq!(
            m.entries[2].menu_label,
            "NixOS 24.05 Installer (serial console=ttyS0,115200n8)"
        );
    }

    #[test]
    fn default_choice_is_the_serial_entry() {
        let c = IsolinuxMenu::parse(NIXOS_LIKE)
            .choose(None, CONSOLE)
            .unwrap();
        assert_eq!(
            c,
            IsolinuxChoice {
                label: "boot-serial".into(),
                extra_args: String::new()
            }
        );
        assert_eq!(c.command_line(), "boot-serial");
    }

    #[test]
    fn without_a_serial_entry_the_default_gets_a_console() {
        let cfg = NIXOS_LIKE.replace(" console=ttyS0,115200n8", "");
        let c = IsolinuxMenu::parse(&cfg).choose(None, CONSOLE).unwrap();
        assert_eq!(c.command_line(), "boot console=ttyS0,115200n8");
    }

    #[test]
    fn a_pattern_picks_by_menu_text() {
        let re = Regex::new("nomodeset").unwrap();
        let c = IsolinuxMenu::parse(NIXOS_LIKE)
            .choose(Some(&re), CONSOLE)
            .unwrap();
        assert_eq!(c.command_line(), "boot-nomodeset console=ttyS0,115200n8");
    }

    #[test]
    fn a_pattern_that_matches_nothing_lists_the_entries() {
        let re = Regex::new("memtest").unwrap();
        let e = IsolinuxMenu::parse(NIXOS_LIKE)
            .choose(Some(&re), CONSOLE)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("no boot menu entry matches /memtest/"), "{e}");
        assert!(
            e.contains("boot-serial (NixOS 24.05 Installer (serial"),
            "{e}"
        );
    }
}
