//! The choice in a GRUB menu known only from the screen (`screen`), for GRUB
//! images whose grub.cfg is not on the ISO (e.g. inside a grub-mkstandalone
//! binary): what to look for as the boot sequence reads the drawn menus.

use super::console_arg::console_device;
use regex::Regex;

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
                let device = console_device(&self.console_arg);
                items.iter().position(|t| t.contains(device))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
