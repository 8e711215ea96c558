//! GRUB menus as the ISO declares them (UEFI boots): the menu tree of grub.cfg,
//! and the way through it to an entry with a serial console. NixOS nests its
//! serial entries ("HiDPI, Quirks and Accessibility" → "Serial console=ttyS0,...");
//! without such an entry, the chosen entry is edited (`e`) to add the console.

use super::menu::{has_console, read_iso_file, MenuError};
use regex::Regex;
use std::path::Path;

/// The down-arrow key as a VT100 terminal sends it.
const DOWN: &[u8] = b"\x1b[B";

/// Where ISOs keep grub.cfg: NixOS's EFI directory, then the usual places.
const GRUB_CFG_PATHS: [&str; 4] = ["/EFI/BOOT/grub.cfg", "/EFI/boot/grub.cfg", "/boot/grub/grub.cfg", "/boot/grub2/grub.cfg"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrubItem {
    Entry { title: String, body: Vec<String> },
    Submenu { title: String, items: Vec<GrubItem> },
}

impl GrubItem {
    pub fn title(&self) -> &str {
        match self {
            GrubItem::Entry { title, .. } | GrubItem::Submenu { title, .. } => title,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrubMenu {
    pub items: Vec<GrubItem>,
    /// The index highlighted when the top-level menu appears (`set default=N`).
    pub default: usize,
}

/// One menu level on the way: which item to pick, from which highlighted one,
/// and the title of the level's last item (drawn last: the menu is ready then).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrubStep {
    pub from: usize,
    pub to: usize,
    pub last_title: String,
}

/// How to boot through GRUB: the menu levels, then either Enter on the entry or
/// an edit that appends `append` to line `line` (the `linux` line) of its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrubPlan {
    pub steps: Vec<GrubStep>,
    pub edit: Option<GrubEdit>,
    /// The chosen entry's title, for logs and errors.
    pub title: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrubEdit {
    pub line: usize,
    pub append: String,
}

impl GrubPlan {
    /// The bytes that move from `step.from` to `step.to` and pick the item
    /// (arrow keys as VT100 sends them).
    pub fn keys(step: &GrubStep, last: bool, edit: bool) -> Vec<u8> {
        let mut keys = Vec::new();
        let (key, n): (&[u8], usize) =
            if step.to >= step.from { (DOWN, step.to - step.from) } else { (b"\x1b[A", step.from - step.to) };
        for _ in 0..n {
            keys.extend_from_slice(key);
        }
        keys.extend_from_slice(if last && edit { b"e" } else { b"\r" });
        keys
    }

    /// In GRUB's editor (cursor at the start of the body): down to the line, to
    /// its end (Ctrl-E), the text, then boot (Ctrl-X).
    pub fn edit_keys(edit: &GrubEdit) -> Vec<u8> {
        let mut keys = Vec::new();
        for _ in 0..edit.line {
            keys.extend_from_slice(DOWN);
        }
        keys.push(0x05);
        keys.extend_from_slice(format!(" {}", edit.append).as_bytes());
        keys.push(0x18);
        keys
    }
}

impl GrubMenu {
    pub fn from_iso(iso: &Path) -> Result<GrubMenu, MenuError> {
        let mut last_error = None;
        for path in GRUB_CFG_PATHS {
            match read_iso_file(iso, path) {
                Ok(cfg) => return Ok(GrubMenu::parse(&cfg)),
                Err(e @ MenuError::NoXorriso) => return Err(e),
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or(MenuError::Empty))
    }

    /// Parses `menuentry`/`submenu` blocks (and a numeric `set default`). Items
    /// inside `if` blocks count as shown: on UEFI they usually are.
    pub fn parse(cfg: &str) -> GrubMenu {
        // A stack of open levels: (title of the submenu, its items); the root is first.
        let mut stack: Vec<(String, Vec<GrubItem>)> = vec![(String::new(), Vec::new())];
        let mut entry: Option<(String, Vec<String>, usize)> = None; // title, body, nested braces
        let mut default = 0;
        for raw in cfg.lines() {
            let line = raw.trim();
            if let Some((title, body, depth)) = entry.as_mut() {
                if line == "}" && *depth == 0 {
                    let item = GrubItem::Entry { title: std::mem::take(title), body: std::mem::take(body) };
                    stack.last_mut().expect("root").1.push(item);
                    entry = None;
                } else {
                    *depth += line.matches('{').count();
                    *depth -= line.matches('}').count().min(*depth);
                    body.push(line.to_owned());
                }
                continue;
            }
            let keyword = line.split_whitespace().next().unwrap_or("");
            match keyword {
                "menuentry" if line.ends_with('{') => entry = Some((title_of(line), Vec::new(), 0)),
                // `menuentry "T" { linux ... ; initrd ... }` on one line.
                "menuentry" if line.ends_with('}') && line.contains('{') => {
                    let inner = &line[line.find('{').expect("checked") + 1..line.len() - 1];
                    let body = inner.split(';').map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned).collect();
                    stack.last_mut().expect("root").1.push(GrubItem::Entry { title: title_of(line), body });
                }
                "submenu" if line.ends_with('{') => stack.push((title_of(line), Vec::new())),
                _ if line == "}" && stack.len() > 1 => {
                    let (title, items) = stack.pop().expect("checked");
                    stack.last_mut().expect("root").1.push(GrubItem::Submenu { title, items });
                }
                "set" if stack.len() == 1 => {
                    if let Some(value) = line.strip_prefix("set default=") {
                        default = value.trim_matches(|c| c == '"' || c == '\'').parse().unwrap_or(0);
                    }
                }
                _ => {}
            }
        }
        let items = stack.swap_remove(0).1;
        let default = if default < items.len() { default } else { 0 };
        GrubMenu { items, default }
    }

    /// The way to the entry to boot. With a pattern: the first entry (in menu
    /// order, submenus included) whose title matches. Without: the first entry
    /// whose `linux` line has `console_arg`'s console, else the default entry,
    /// edited to add the console.
    pub fn choose(&self, pattern: Option<&Regex>, console_arg: &str) -> Result<GrubPlan, MenuError> {
        let has_console = |body: &[String]| linux_line(body).is_some_and(|i| has_console(&body[i], console_arg));
        let found = match pattern {
            Some(re) => self
                .find(&|title, _| re.is_match(title))
                .ok_or_else(|| MenuError::NoMatch { pattern: re.to_string(), entries: self.describe() })?,
            None => match self.find(&|_, body| has_console(body)) {
                Some(path) => path,
                None => self.default_path().ok_or(MenuError::Empty)?,
            },
        };
        let (indices, body, title) = found;
        let edit = if has_console(&body) {
            None
        } else {
            let line = linux_line(&body).ok_or_else(|| MenuError::NoMatch {
                pattern: format!("a `linux` line in GRUB entry `{title}`"),
                entries: body.join("; "),
            })?;
            Some(GrubEdit { line, append: console_arg.to_owned() })
        };
        let mut steps = Vec::new();
        let mut level = &self.items;
        for (depth, &to) in indices.iter().enumerate() {
            let from = if depth == 0 { self.default } else { 0 };
            steps.push(GrubStep { from, to, last_title: level.last().map(|i| i.title().to_owned()).unwrap_or_default() });
            if let GrubItem::Submenu { items, .. } = &level[to] {
                level = items;
            }
        }
        Ok(GrubPlan { steps, edit, title })
    }

    /// Depth-first, in menu order: the index path, body and title of the first
    /// entry `accept`s.
    fn find(&self, accept: &dyn Fn(&str, &[String]) -> bool) -> Option<(Vec<usize>, Vec<String>, String)> {
        fn walk(
            items: &[GrubItem],
            accept: &dyn Fn(&str, &[String]) -> bool,
            path: &mut Vec<usize>,
        ) -> Option<(Vec<usize>, Vec<String>, String)> {
            for (i, item) in items.iter().enumerate() {
                path.push(i);
                match item {
                    GrubItem::Entry { title, body } if accept(title, body) => {
                        return Some((path.clone(), body.clone(), title.clone()))
                    }
                    GrubItem::Submenu { items, .. } => {
                        if let Some(found) = walk(items, accept, path) {
                            return Some(found);
                        }
                    }
                    GrubItem::Entry { .. } => {}
                }
                path.pop();
            }
            None
        }
        walk(&self.items, accept, &mut Vec::new())
    }

    /// The default entry (a submenu's first entry if the default is a submenu).
    fn default_path(&self) -> Option<(Vec<usize>, Vec<String>, String)> {
        let mut path = vec![self.default];
        let mut item = self.items.get(self.default)?;
        loop {
            match item {
                GrubItem::Entry { title, body } => return Some((path, body.clone(), title.clone())),
                GrubItem::Submenu { items, .. } => {
                    item = items.first()?;
                    path.push(0);
                }
            }
        }
    }

    fn describe(&self) -> String {
        fn walk(items: &[GrubItem], prefix: &str, out: &mut Vec<String>) {
            for item in items {
                match item {
                    GrubItem::Entry { title, .. } => out.push(format!("{prefix}{title}")),
                    GrubItem::Submenu { title, items } => walk(items, &format!("{prefix}{title} > "), out),
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.items, "", &mut out);
        out.join(", ")
    }
}

/// `menuentry "Title" --class x {` → `Title`.
fn title_of(line: &str) -> String {
    let rest = line.split_once(char::is_whitespace).map_or("", |(_, r)| r).trim_start();
    match rest.chars().next() {
        Some(q @ ('"' | '\'')) => rest[1..].split(q).next().unwrap_or("").to_owned(),
        _ => rest.split_whitespace().next().unwrap_or("").to_owned(),
    }
}

/// The index of the body's `linux` (or `linuxefi`) line.
fn linux_line(body: &[String]) -> Option<usize> {
    body.iter().position(|l| matches!(l.split_whitespace().next(), Some("linux" | "linuxefi")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape of NixOS's iso-image.nix grub.cfg (and the fixture's).
    const NIXOS_LIKE: &str = r#"
serial --unit=0 --speed=115200
terminal_output console serial
set timeout=10
menuentry "NixOS 24.05 Installer" --class installer {
  linux /boot/bzImage init=/x loglevel=4
  initrd /boot/initrd
}
menuentry "NixOS 24.05 Installer (nomodeset)" --class nomodeset {
  linux /boot/bzImage init=/x loglevel=4 nomodeset
  initrd /boot/initrd
}
submenu "HiDPI, Quirks and Accessibility" --class hidpi {
  submenu "Suggested resolutions" --class hidpi {
    menuentry 'NixOS 24.05 Installer (1024x768)' { linux /boot/bzImage video=1024x768 ; }
  }
  submenu "Serial console=ttyS0,115200n8" --class serial {
    menuentry "NixOS 24.05 Installer" --class installer {
      linux /boot/bzImage init=/x loglevel=4 console=ttyS0,115200n8
      initrd /boot/initrd
    }
  }
}
menuentry 'Firmware Setup' --class settings {
  fwsetup
}
"#;

    #[test]
    fn parses_the_menu_tree() {
        let m = GrubMenu::parse(NIXOS_LIKE);
        let titles: Vec<_> = m.items.iter().map(GrubItem::title).collect();
        assert_eq!(
            titles,
            ["NixOS 24.05 Installer", "NixOS 24.05 Installer (nomodeset)", "HiDPI, Quirks and Accessibility", "Firmware Setup"]
        );
        let GrubItem::Submenu { items, .. } = &m.items[2] else { panic!("not a submenu") };
        assert_eq!(items[1].title(), "Serial console=ttyS0,115200n8");
    }

    #[test]
    fn the_nested_serial_entry_is_chosen() {
        let plan = GrubMenu::parse(NIXOS_LIKE).choose(None, "console=ttyS0,115200n8").unwrap();
        assert_eq!(plan.edit, None);
        let moves: Vec<_> = plan.steps.iter().map(|s| (s.from, s.to, s.last_title.as_str())).collect();
        assert_eq!(
            moves,
            [(0, 2, "Firmware Setup"), (0, 1, "Serial console=ttyS0,115200n8"), (0, 0, "NixOS 24.05 Installer")]
        );
        assert_eq!(GrubPlan::keys(&plan.steps[0], false, false), b"\x1b[B\x1b[B\r");
    }

    #[test]
    fn without_a_serial_entry_the_default_is_edited() {
        let cfg = NIXOS_LIKE.replace(" console=ttyS0,115200n8", "").replace("set timeout=10", "set default=1");
        let plan = GrubMenu::parse(&cfg).choose(None, "console=ttyAMA0,115200n8").unwrap();
        assert_eq!(plan.title, "NixOS 24.05 Installer (nomodeset)");
        assert_eq!(plan.steps, [GrubStep { from: 1, to: 1, last_title: "Firmware Setup".into() }]);
        let edit = plan.edit.clone().unwrap();
        assert_eq!(edit, GrubEdit { line: 0, append: "console=ttyAMA0,115200n8".into() });
        assert_eq!(GrubPlan::keys(&plan.steps[0], true, true), b"e");
        assert_eq!(GrubPlan::edit_keys(&edit), b"\x05 console=ttyAMA0,115200n8\x18");
    }

    #[test]
    fn a_pattern_picks_by_title_and_lists_the_entries_when_nothing_matches() {
        let re = Regex::new("1024x768").unwrap();
        let plan = GrubMenu::parse(NIXOS_LIKE).choose(Some(&re), "console=ttyS0,115200n8").unwrap();
        assert_eq!(plan.steps.iter().map(|s| s.to).collect::<Vec<_>>(), [2, 0, 0]);
        assert!(plan.edit.is_none() || plan.edit.as_ref().is_some_and(|e| e.line == 0));
        let re = Regex::new("memtest").unwrap();
        let e = GrubMenu::parse(NIXOS_LIKE).choose(Some(&re), "console=ttyS0").unwrap_err().to_string();
        assert!(e.contains("HiDPI, Quirks and Accessibility > Serial console=ttyS0,115200n8 > NixOS 24.05 Installer"), "{e}");
    }
}
