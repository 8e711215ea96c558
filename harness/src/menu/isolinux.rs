//! isolinux's menu as the ISO declares it (BIOS boots): the `LABEL` blocks of
//! isolinux.cfg, so that an entry can be picked by its label or menu text, and
//! the `boot:` prompt told whether it needs the serial console added.

use super::console_arg::has_console;
use super::error::MenuError;
use super::iso_files::IsoFiles;
use regex::Regex;

/// Where isolinux keeps its configuration on an ISO.
pub const CFG: &str = "/isolinux/isolinux.cfg";
/// isolinux's directory: an ISO without it boots GRUB on BIOS too.
pub const DIR: &str = "/isolinux";

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

impl IsolinuxMenu {
    /// The ISO's `/isolinux/isolinux.cfg`.
    pub fn from_files(files: &dyn IsoFiles) -> Result<IsolinuxMenu, MenuError> {
        Ok(IsolinuxMenu::parse(&files.read(CFG)?))
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
