//! A GRUB menu known only from what it draws on the screen, searched as a
//! person would: titles first, then each item's commands in GRUB's editor.

use super::editor::{edit_in_editor, escape_to_menu, read_editor};
use super::loader::prompts;
use super::phase::Phase;
use super::signs::signs;
use crate::console::serial::{ConsoleError, SerialConsole};
use crate::menu::screen::{DrawnMenu, Screen};
use crate::menu::DrawnChoice;
use std::time::Duration;

/// How deep a menu read off the screen may nest before the harness gives up.
const MAX_MENU_DEPTH: usize = 8;

/// How many items of a menu known only from the screen may be opened in GRUB's
/// editor to see what they are, before the harness stops looking.
const MAX_PEEKS: usize = 40;

/// How many levels of a menu known only from the screen have their items
/// opened in the editor; below them only titles are read. nixpkgs keeps its
/// serial entries two levels down (a submenu of "HiDPI, Quirks and
/// Accessibility" or of "Options"), and its items at the third level are the
/// installer's entries again: looking into each of them cost minutes under
/// TCG on aarch64, where no title names `ttyAMA0`.
const PEEK_DEPTH: usize = 2;

/// What an item of a menu known only from the screen is, as GRUB's editor
/// shows its commands: an entry (its `linux` command has the console or not),
/// a submenu (items inside, or no command that boots or acts: nixpkgs'
/// submenus start with many lines of menu settings), or another action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ItemKind {
    Entry { has_console: bool },
    Submenu,
    Other,
}

/// Commands that make an item an entry of its own, not a submenu.
const ACTIONS: [&str; 10] = [
    "chainloader",
    "fwsetup",
    "halt",
    "reboot",
    "multiboot",
    "multiboot2",
    "linux16",
    "exit",
    "return",
    "configfile",
];

fn kind_of(lines: &[String], console_arg: &str) -> ItemKind {
    // Each command's first word; one line may hold several (`{ fwsetup; }`).
    let first_words = || {
        lines
            .iter()
            .flat_map(|l| l.split([';', '{', '}']))
            .filter_map(|c| c.split_whitespace().next())
    };
    if first_words().any(|w| w == "menuentry" || w == "submenu") {
        return ItemKind::Submenu;
    }
    if let Some(args) = lines
        .iter()
        .find_map(|l| crate::menu::grub::linux_command(l).map(|(_, args)| args))
    {
        return ItemKind::Entry {
            has_console: crate::menu::has_console(args, console_arg),
        };
    }
    match first_words().any(|w| ACTIONS.contains(&w)) {
        true => ItemKind::Other,
        false => ItemKind::Submenu,
    }
}

/// Where an Enter on a drawn menu led.
enum Entered {
    /// A submenu, now drawn.
    Menu,
    /// An entry is booting (the phase seen, if the kernel already spoke).
    Booting(Option<Phase>),
}

/// Drives a GRUB menu known only from the screen, as a person would. At each
/// level, once the draw has settled: an item the choice picks (by pattern, or
/// one whose title names the console) gets Enter, and a submenu it opens is
/// read the same way (inside a submenu picked for its title, the highlighted
/// item is taken). Without such an item, every item is opened in GRUB's
/// editor (`e`) to see what it is, then left (Escape): an entry whose `linux`
/// command has the console is booted, a submenu is entered, searched the same
/// way and left again. When nothing is found, the entry that was highlighted
/// at first is edited: the console goes after its `linux` command's
/// arguments. An entry that prints no `Booting` line (GRUB on x86 does not)
/// shows itself by the kernel's first words: that phase is returned.
pub(super) fn drive_drawn_grub(
    console: &mut SerialConsole,
    choice: &DrawnChoice,
    wait: Duration,
    settle: Duration,
) -> Result<Option<Phase>, ConsoleError> {
    let mut menus = DrawnMenus {
        console,
        choice,
        wait,
        settle,
        peeks: 0,
    };
    let top = menus.read()?;
    let first = top.highlighted;
    if let Some(booting) = menus.search(top, 0)? {
        return Ok(booting);
    }
    tracing::info!(
        "no GRUB menu item names or has the console; editing the entry highlighted at first"
    );
    let top = menus.read()?;
    menus.highlight(top.highlighted, first)?;
    menus.console.send(b"e")?;
    edit_in_editor(menus.console, &choice.console_arg, wait, settle).map(|()| None)
}

/// A GRUB menu known only from the screen, being searched.
struct DrawnMenus<'a> {
    console: &'a mut SerialConsole,
    choice: &'a DrawnChoice,
    wait: Duration,
    settle: Duration,
    /// Items opened in the editor so far.
    peeks: usize,
}

impl DrawnMenus<'_> {
    /// The menu on the screen, once its draw has settled.
    fn read(&mut self) -> Result<DrawnMenu, ConsoleError> {
        self.console
            .wait_quiet(self.settle, self.wait, "the GRUB menu to be drawn")?;
        let menu = Screen::from_bytes(&self.console.raw_since(0))
            .grub_menu()
            .ok_or_else(|| ConsoleError::Timeout {
                waiting_for: "a GRUB menu on the screen (none could be read)".into(),
                after: self.wait,
                last_lines: self.console.last_lines(),
            })?;
        tracing::info!(items = ?menu.items, highlighted = menu.highlighted, "GRUB menu read off the screen");
        Ok(menu)
    }

    /// Moves the highlight to item `to`, one item at a time, each time waiting
    /// until the screen shows it moved. The keys are GRUB's own `v` and `^`
    /// (its hint names them): arrow keys are escape sequences, and one split
    /// or dropped on the way (seen with SeaBIOS's serial console under TCG)
    /// leaves an Escape that closes the submenu.
    fn highlight(&mut self, from: usize, to: usize) -> Result<(), ConsoleError> {
        let mut at = from;
        while at != to {
            let (key, next) = if to > at {
                (b'v', at + 1)
            } else {
                (b'^', at - 1)
            };
            self.console.send(&[key])?;
            at = next;
            self.console.wait_raw(
                self.wait,
                &format!("GRUB to highlight item {} of its menu", at + 1),
                |raw| {
                    Screen::from_bytes(raw)
                        .grub_menu()
                        .is_some_and(|m| m.highlighted == at)
                },
            )?;
        }
        Ok(())
    }

    /// Enter on the highlighted item.
    fn enter(&mut self) -> Result<Entered, ConsoleError> {
        let p = prompts();
        self.console.send(b"\r")?;
        let m = self.console.expect(
            &[&p.grub_ready, &p.grub_booting, &signs().kernel],
            self.wait,
            "a GRUB submenu or the chosen entry",
        )?;
        Ok(match m.index {
            0 => Entered::Menu,
            1 => Entered::Booting(None),
            _ => Entered::Booting(Some(Phase::Kernel)),
        })
    }

    /// Escape: from the editor or a submenu back to the menu above.
    fn back(&mut self) -> Result<(), ConsoleError> {
        escape_to_menu(self.console, self.wait)
    }

    /// What the highlighted item is, as GRUB's editor shows it (then left).
    fn peek(&mut self) -> Result<ItemKind, ConsoleError> {
        self.peeks += 1;
        self.console.send(b"e")?;
        let lines = read_editor(self.console, self.wait, self.settle)?;
        self.back()?;
        let kind = kind_of(&lines, &self.choice.console_arg);
        tracing::info!(?kind, first_lines = ?lines.iter().take(4).collect::<Vec<_>>(), "GRUB menu item seen in the editor");
        Ok(kind)
    }

    /// Searches the menu on the screen (`menu`) and, depth first, its
    /// submenus. `Some` when an entry is booting; `None` when nothing was
    /// found, with this level's menu on the screen again.
    fn search(
        &mut self,
        menu: DrawnMenu,
        depth: usize,
    ) -> Result<Option<Option<Phase>>, ConsoleError> {
        if let Some(to) = self.choice.pick(&menu.items) {
            self.highlight(menu.highlighted, to)?;
            return self.enter_picked(depth).map(Some);
        }
        if depth >= PEEK_DEPTH {
            return Ok(None);
        }
        // Where the highlight is: it stays on an item seen in the editor, and
        // starts again from the default when a submenu is left.
        let mut highlighted = menu.highlighted;
        for at in 0..menu.items.len() {
            // Separators (`submenu "" {return}`) are blank and lead nowhere.
            if menu.items[at].is_empty() || self.peeks >= MAX_PEEKS {
                continue;
            }
            self.highlight(highlighted, at)?;
            highlighted = at;
            match self.peek()? {
                ItemKind::Entry { has_console: true } if self.choice.pattern.is_none() => {
                    return match self.enter()? {
                        Entered::Booting(phase) => Ok(Some(phase)),
                        Entered::Menu => Err(ConsoleError::Timeout {
                            waiting_for: format!(
                                "GRUB to boot `{}` (it drew a menu instead)",
                                menu.items[at]
                            ),
                            after: self.wait,
                            last_lines: self.console.last_lines(),
                        }),
                    };
                }
                ItemKind::Submenu => match self.enter()? {
                    Entered::Booting(phase) => return Ok(Some(phase)),
                    Entered::Menu => {
                        let inner = self.read()?;
                        // An entry that only changes GRUB's terminal (the
                        // text-mode entry) draws this same menu again.
                        if inner.items == menu.items {
                            highlighted = inner.highlighted;
                            continue;
                        }
                        if let Some(booting) = self.search(inner, depth + 1)? {
                            return Ok(Some(booting));
                        }
                        self.back()?;
                        highlighted = self.read()?.highlighted;
                    }
                },
                _ => {}
            }
        }
        Ok(None)
    }

    /// Enter on an item picked for its title; inside a submenu it opens, the
    /// item that names the console, else the highlighted one, and so on.
    fn enter_picked(&mut self, depth: usize) -> Result<Option<Phase>, ConsoleError> {
        for _ in depth..MAX_MENU_DEPTH {
            if let Entered::Booting(phase) = self.enter()? {
                return Ok(phase);
            }
            let menu = self.read()?;
            let to = self.choice.pick(&menu.items).unwrap_or(menu.highlighted);
            self.highlight(menu.highlighted, to)?;
        }
        Err(ConsoleError::Timeout {
            waiting_for: format!("a GRUB entry within {MAX_MENU_DEPTH} levels of submenus"),
            after: self.wait,
            last_lines: self.console.last_lines(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{scripted_guest, SEABIOS_OPTIONS, SEABIOS_SERIAL};
    use super::*;

    #[test]
    fn a_drawn_menu_is_descended_by_the_titles_that_name_the_console() {
        let script = vec![
            (SEABIOS_OPTIONS.to_vec(), 1), // Enter on "Serial console=ttyS0,115200n8" (highlighted)
            (SEABIOS_SERIAL.to_vec(), 1),  // Enter on the submenu's highlighted entry
            (b"Loading, please wait...\r\n".to_vec(), 0),
        ];
        let (mut console, guest, _dir) = scripted_guest(script);
        let choice = DrawnChoice {
            pattern: None,
            console_arg: "console=ttyS0,115200n8".into(),
            text_mode_key: 't',
        };
        let seen = drive_drawn_grub(
            &mut console,
            &choice,
            Duration::from_secs(10),
            Duration::from_millis(200),
        )
        .unwrap();
        assert_eq!(seen, Some(Phase::Kernel));
        assert_eq!(guest.join().unwrap().0, b"\r\r");
    }

    /// What an item is, told from GRUB's editor as recorded: an entry (its
    /// `linux` command without the console), a submenu of one-line entries
    /// (AAVMF, the grub-oneline fixture), nixpkgs' submenus whose first lines
    /// are menu settings, and one-line actions that must never be entered.
    #[test]
    fn items_are_told_apart_in_the_editor() {
        let console = "console=ttyS0,115200n8";
        let editor = Screen::from_bytes(include_bytes!("../testdata/ovmf-grub-editor.raw"))
            .grub_editor_lines()
            .unwrap();
        assert_eq!(
            kind_of(&editor, console),
            ItemKind::Entry { has_console: false }
        );
        let with_console: Vec<String> = editor
            .iter()
            .map(|l| l.replace("loglevel=4", "loglevel=4 console=ttyS0"))
            .collect();
        assert_eq!(
            kind_of(&with_console, console),
            ItemKind::Entry { has_console: true }
        );
        let submenu = Screen::from_bytes(include_bytes!(
            "../testdata/aavmf-grub-oneline-submenu-editor.raw"
        ))
        .grub_editor_lines()
        .unwrap();
        assert_eq!(kind_of(&submenu, console), ItemKind::Submenu);
        let settings: Vec<String> = [
            "setparams 'HiDPI, Quirks and Accessibility'",
            "  set textmode=false",
            "  search --set=root --file /EFI/nixos-installer-image",
            "  insmod gfxterm",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(kind_of(&settings, console), ItemKind::Submenu);
        for action in [
            "setparams 'Firmware Setup'\n fwsetup; ",
            "setparams 'Shutdown'\n  halt",
            "setparams ''\nreturn",
        ] {
            let lines: Vec<String> = action.lines().map(String::from).collect();
            assert_eq!(kind_of(&lines, console), ItemKind::Other, "{action}");
        }
    }
}
