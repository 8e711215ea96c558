//! GRUB menus as the ISO declares them (UEFI boots): the menu tree of grub.cfg,
//! and the way through it to an entry with a serial console. NixOS nests its
//! serial entries ("HiDPI, Quirks and Accessibility" → "Serial console=ttyS0,...");
//! without such an entry, the chosen entry is edited (`e`) to add the console.
//!
//! The tree holds what GRUB draws and counts, because the arrow keys move over
//! exactly that: `submenu "" {return}` separators (nixpkgs' HiDPI submenu) are
//! drawn as blank lines and counted; `hiddenentry` blocks (nixpkgs' GRUB patch
//! pkgs/tools/misc/grub/add-hidden-menu-entries.patch: "not accessible in the grub
//! menu", not counted in the menu's size) are neither, and only their hotkey is
//! kept, e.g. nixpkgs' `hiddenentry 'Text mode' --hotkey 't'`.

use super::menu::{has_console, read_iso_file, MenuError};
use regex::Regex;
use std::path::Path;

/// The down-arrow key as a VT100 terminal sends it.
const DOWN: &[u8] = b"\x1b[B";

/// Where ISOs keep grub.cfg: NixOS's EFI directory, then the usual places.
const GRUB_CFG_PATHS: [&str; 4] = [
    "/EFI/BOOT/grub.cfg",
    "/EFI/boot/grub.cfg",
    "/boot/grub/grub.cfg",
    "/boot/grub2/grub.cfg",
];

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
    /// The hotkey of an entry (usually hidden) that moves GRUB's output to the
    /// text console (`terminal_output console`): what a graphical menu needs
    /// pressed before anything is drawn on serial.
    pub text_mode_key: Option<char>,
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
/// an edit that adds `append` to the `linux` command (line `line` of its body;
/// the edit itself finds the command in GRUB's editor on the screen).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrubPlan {
    pub steps: Vec<GrubStep>,
    pub edit: Option<GrubEdit>,
    /// The chosen entry's title, for logs and errors.
    pub title: String,
    /// The key that brings a graphical-only menu to the text console.
    pub text_mode_key: char,
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
        let (key, n): (&[u8], usize) = if step.to >= step.from {
            (DOWN, step.to - step.from)
        } else {
            (b"\x1b[A", step.from - step.to)
        };
        for _ in 0..n {
            keys.extend_from_slice(key);
        }
        keys.extend_from_slice(if last && edit { b"e" } else { b"\r" });
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

    /// Parses `menuentry`/`submenu`/`hiddenentry` blocks (and a numeric `set
    /// default`). Items inside `if` blocks count as shown: on UEFI they usually are.
    /// Lines are read as GRUB's shell reads them (`Line`): a brace or `;` inside
    /// quotes or a comment is text, not syntax.
    pub fn parse(cfg: &str) -> GrubMenu {
        // A stack of open levels: (title of the submenu, its items); the root is first.
        let mut stack: Vec<(String, Vec<GrubItem>)> = vec![(String::new(), Vec::new())];
        let mut entry: Option<OpenEntry> = None;
        let mut default = 0;
        let mut text_mode_key = None;
        for raw in cfg.lines() {
            let line = raw.trim();
            let read = Line::read(line);
            let code = read.code.trim_end();
            if let Some(open) = entry.as_mut() {
                if code == "}" && open.depth == 0 {
                    let open = entry.take().expect("checked");
                    text_mode_key = text_mode_key.or(open.text_mode_key());
                    if !open.hidden {
                        stack.last_mut().expect("root").1.push(GrubItem::Entry {
                            title: open.title,
                            body: open.body,
                        });
                    }
                } else {
                    open.depth += code.matches('{').count();
                    open.depth -= code.matches('}').count().min(open.depth);
                    open.body.push(line.to_owned());
                }
                continue;
            }
            let keyword = read.words.first().map_or("", String::as_str);
            let one_line = code.ends_with('}') && code.contains('{');
            match keyword {
                "menuentry" | "hiddenentry" if code.ends_with('{') => {
                    entry = Some(OpenEntry::new(&read))
                }
                // `menuentry "T" { linux ... ; initrd ... }` on one line.
                "menuentry" | "hiddenentry" if one_line => {
                    let mut open = OpenEntry::new(&read);
                    open.body = read.block_commands(line);
                    text_mode_key = text_mode_key.or(open.text_mode_key());
                    if !open.hidden {
                        stack.last_mut().expect("root").1.push(GrubItem::Entry {
                            title: open.title,
                            body: open.body,
                        });
                    }
                }
                "submenu" if code.ends_with('{') => stack.push((read.title(), Vec::new())),
                // `submenu "" {return}`: a separator GRUB draws as an empty line
                // and counts when the arrow keys move.
                "submenu" if one_line => {
                    stack.last_mut().expect("root").1.push(GrubItem::Submenu {
                        title: read.title(),
                        items: Vec::new(),
                    })
                }
                _ if code == "}" && stack.len() > 1 => {
                    let (title, items) = stack.pop().expect("checked");
                    stack
                        .last_mut()
                        .expect("root")
                        .1
                        .push(GrubItem::Submenu { title, items });
                }
                "set" if stack.len() == 1 => {
                    if let Some(value) = read.words.get(1).and_then(|w| w.strip_prefix("default="))
                    {
                        default = value.parse().unwrap_or(0);
                    }
                }
                _ => {}
            }
        }
        let items = stack.swap_remove(0).1;
        let default = if default < items.len() { default } else { 0 };
        GrubMenu {
            items,
            default,
            text_mode_key,
        }
    }

    /// The way to the entry to boot. With a pattern: the first entry (in menu
    /// order, submenus included) whose title matches. Without: the first entry
    /// whose `linux` line has `console_arg`'s console, else the default entry,
    /// edited to add the console.
    pub fn choose(
        &self,
        pattern: Option<&Regex>,
        console_arg: &str,
    ) -> Result<GrubPlan, MenuError> {
        let has_console =
            |body: &[String]| linux_line(body).is_some_and(|i| has_console(&body[i], console_arg));
        let found = match pattern {
            Some(re) => {
                self.find(&|title, _| re.is_match(title))
                    .ok_or_else(|| MenuError::NoMatch {
                        pattern: re.to_string(),
                        entries: self.describe(),
                    })?
            }
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
            Some(GrubEdit {
                line,
                append: console_arg.to_owned(),
            })
        };
        let mut steps = Vec::new();
        let mut level = &self.items;
        for (depth, &to) in indices.iter().enumerate() {
            let from = if depth == 0 { self.default } else { 0 };
            steps.push(GrubStep {
                from,
                to,
                last_title: level
                    .last()
                    .map(|i| i.title().to_owned())
                    .unwrap_or_default(),
            });
            if let GrubItem::Submenu { items, .. } = &level[to] {
                level = items;
            }
        }
        Ok(GrubPlan {
            steps,
            edit,
            title,
            text_mode_key: self.text_mode_key.unwrap_or(DEFAULT_TEXT_MODE_KEY),
        })
    }

    /// Depth-first, in menu order: the index path, body and title of the first
    /// entry `accept`s.
    fn find(
        &self,
        accept: &dyn Fn(&str, &[String]) -> bool,
    ) -> Option<(Vec<usize>, Vec<String>, String)> {
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
                GrubItem::Entry { title, body } => {
                    return Some((path, body.clone(), title.clone()))
                }
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
                    GrubItem::Submenu { title, items } => {
                        walk(items, &format!("{prefix}{title} > "), out)
                    }
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.items, "", &mut out);
        out.join(", ")
    }
}

/// The text-mode key when the configuration names none: nixpkgs' `t` (and
/// openSUSE's, whose patch added hidden entries for this very purpose).
pub const DEFAULT_TEXT_MODE_KEY: char = 't';

/// A `menuentry` or `hiddenentry` whose closing brace has not come yet.
struct OpenEntry {
    title: String,
    body: Vec<String>,
    /// Braces opened inside the body and not closed yet.
    depth: usize,
    hidden: bool,
    hotkey: Option<char>,
}

impl OpenEntry {
    fn new(line: &Line) -> OpenEntry {
        OpenEntry {
            title: line.title(),
            body: Vec::new(),
            depth: 0,
            hidden: line.words.first().is_some_and(|w| w == "hiddenentry"),
            hotkey: line.hotkey(),
        }
    }

    /// Its hotkey, if running it moves GRUB's output to the text console.
    fn text_mode_key(&self) -> Option<char> {
        let to_console = self.body.iter().any(|l| {
            let mut words = l.split_whitespace();
            words.next() == Some("terminal_output") && words.any(|w| w == "console")
        });
        self.hotkey.filter(|_| to_console)
    }
}

/// One line of grub.cfg as GRUB's shell reads it (GRUB manual, "Shell-like
/// scripting"): words end at spaces, tabs and the metacharacters `{ } | & ; < >`;
/// single quotes keep every character; double quotes keep all but a backslash
/// before `$`, `"` or `\`; outside quotes a backslash keeps the next character;
/// adjacent quoted and plain parts are one word; a `#` that starts a word starts
/// a comment.
#[derive(Debug, Default)]
struct Line {
    /// The words, quotes and escapes resolved.
    words: Vec<String>,
    /// The line with each quoted or escaped character blanked to `_` (as many
    /// bytes as it had, so offsets stay the line's) and the comment cut off:
    /// where braces and `;` are syntax.
    code: String,
}

impl Line {
    fn read(line: &str) -> Line {
        let mut read = Line::default();
        let mut word: Option<String> = None;
        let mut quote: Option<char> = None;
        let mut chars = line.chars().peekable();
        let blank =
            |code: &mut String, c: char| code.extend(std::iter::repeat_n('_', c.len_utf8()));
        while let Some(c) = chars.next() {
            match (quote, c) {
                (None, ' ' | '\t') => {
                    read.words.extend(word.take());
                    read.code.push(c);
                }
                // Metacharacters end a word and are one of their own.
                (None, '{' | '}' | '|' | '&' | ';' | '<' | '>') => {
                    read.words.extend(word.take());
                    read.words.push(c.to_string());
                    read.code.push(c);
                }
                (None, '#') if word.is_none() => break,
                (None, '\'') | (None, '"') => {
                    quote = Some(c);
                    word.get_or_insert_default();
                    read.code.push(c);
                }
                (None, '\\') | (Some('"'), '\\')
                    if quote.is_none() || matches!(chars.peek(), Some('$' | '"' | '\\')) =>
                {
                    read.code.push('_');
                    let word = word.get_or_insert_default();
                    if let Some(next) = chars.next() {
                        word.push(next);
                        blank(&mut read.code, next);
                    }
                }
                (None, c) => {
                    word.get_or_insert_default().push(c);
                    read.code.push(c);
                }
                (Some(q), c) if c == q => {
                    quote = None;
                    read.code.push(c);
                }
                (Some(_), c) => {
                    word.get_or_insert_default().push(c);
                    blank(&mut read.code, c);
                }
            }
        }
        read.words.extend(word);
        read
    }

    /// `menuentry "Title" --class x {` → `Title`.
    fn title(&self) -> String {
        self.words.get(1).cloned().unwrap_or_default()
    }

    /// `--hotkey 't'`, `--hotkey=t` → `t` (GRUB also names keys like `backspace`;
    /// only single characters can be typed here).
    fn hotkey(&self) -> Option<char> {
        let at = self
            .words
            .iter()
            .skip(2)
            .position(|w| w == "--hotkey" || w.starts_with("--hotkey="))?
            + 2;
        let value = match self.words[at].strip_prefix("--hotkey=") {
            Some(value) => value,
            None => self.words.get(at + 1)?,
        };
        let mut chars = value.chars();
        chars.next().filter(|_| chars.next().is_none())
    }

    /// The commands inside a one-line block (`{ linux ... ; initrd ... }`) of
    /// `line` (the text this was read from): between its first and last brace,
    /// split at each `;` outside quotes.
    fn block_commands(&self, line: &str) -> Vec<String> {
        let (Some(open), Some(close)) = (self.code.find('{'), self.code.rfind('}')) else {
            return Vec::new();
        };
        let mut commands = Vec::new();
        let mut from = open + 1;
        for (at, _) in self.code[..close]
            .match_indices(';')
            .filter(|(at, _)| *at > open)
        {
            commands.push(&line[from..at]);
            from = at + 1;
        }
        commands.push(&line[from.min(close)..close]);
        commands
            .into_iter()
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

/// The `linux` (or `linuxefi`) command in one line of an entry as GRUB's
/// editor shows it: where the command's arguments end, as a byte offset into
/// `line` (a console argument goes there), and the arguments. A command ends
/// at a `;`, a `}` or the end of the line (outside quotes); a one-line entry
/// (`linux /k a; initrd /i; `) has more commands after it on the same line.
pub fn linux_command(line: &str) -> Option<(usize, &str)> {
    let read = Line::read(line);
    let code = read.code.as_str();
    let mut start = 0;
    for (end, _) in code
        .match_indices([';', '{', '}'])
        .chain(std::iter::once((code.len(), "")))
    {
        let command = &code[start..end];
        let word = command.trim_start();
        let name_len = word.find(char::is_whitespace).unwrap_or(word.len());
        if matches!(&word[..name_len], "linux" | "linuxefi") {
            let args_from = start + (command.len() - word.len()) + name_len;
            // The arguments, trailing blanks left out: the console goes right after them.
            let args_end = args_from + line[args_from..end].trim_end().len();
            return Some((args_end, line[args_from..args_end].trim()));
        }
        start = end + 1;
    }
    None
}

/// The index of the body's `linux` (or `linuxefi`) line.
fn linux_line(body: &[String]) -> Option<usize> {
    body.iter()
        .position(|l| matches!(l.split_whitespace().next(), Some("linux" | "linuxefi")))
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

    /// What nixpkgs' iso-image.nix generates as EFI/boot/grub.cfg in the
    /// `isoImage.forceTextMode` era (NixOS/nixpkgs, path
    /// nixos/modules/installer/cd-dvd/iso-image.nix, commit f519ce0a289a), with
    /// the repeated menu configuration shortened to one `if` block per level.
    const NIXPKGS_FORCE_TEXT_MODE: &str = r#"
set textmode=false
set timeout=10

clear
# This message will only be viewable on the default (UEFI) console.
echo ""
echo "Loading graphical boot menu..."
echo ""
echo "Press 't' to use the text boot menu on this console..."
echo ""
search --set=root --file /EFI/nixos-installer-image
if [ "$textmode" == "false" ]; then
  terminal_output gfxterm
  terminal_input  console
else
  terminal_output console
fi
hiddenentry 'Text mode' --hotkey 't' {
  loadfont ($root)/EFI/boot/unicode.pf2
  set textmode=true
  terminal_output console
}
hiddenentry 'GUI mode' --hotkey 'g' {
  set textmode=false
  terminal_output gfxterm
}
if [ ${iso_path} ] ; then
  set isoboot="findiso=${iso_path}"
fi
menuentry 'NixOS 24.05 Installer '  --class installer {
  # Fallback to UEFI console for boot, efifb sometimes has difficulties.
  terminal_output console

  linux /boot/bzImage ${isoboot} init=/nix/store/x/init  root=LABEL=nixos-minimal-24.05-x86_64 loglevel=4
  initrd /boot/initrd
}
menuentry 'NixOS 24.05 Installer (nomodeset)'  --class nomodeset {
  terminal_output console
  linux /boot/bzImage ${isoboot} init=/nix/store/x/init  loglevel=4 nomodeset
  initrd /boot/initrd
}
menuentry 'NixOS 24.05 Installer (copytoram)'  --class copytoram {
  linux /boot/bzImage ${isoboot} init=/nix/store/x/init  loglevel=4 copytoram
}
menuentry 'NixOS 24.05 Installer (debug)'  --class debug {
  linux /boot/bzImage ${isoboot} init=/nix/store/x/init  loglevel=4 debug
}
submenu "HiDPI, Quirks and Accessibility" --class hidpi --class submenu {
  if [ "$textmode" == "false" ]; then
    terminal_output gfxterm
  fi
  submenu "Suggests resolution @720p" --class hidpi-720p {
    menuentry 'NixOS 24.05 Installer '  --class installer {
      linux /boot/bzImage ${isoboot} init=/nix/store/x/init video=1280x720@60 loglevel=4
    }
  }
  submenu "Suggests resolution @1080p" --class hidpi-1080p {
    menuentry 'NixOS 24.05 Installer '  --class installer {
      linux /boot/bzImage ${isoboot} init=/nix/store/x/init video=1920x1080@60 loglevel=4
    }
  }
  submenu "Disable display-manager" --class quirk-disable-displaymanager {
    menuentry 'NixOS 24.05 Installer '  --class installer {
      linux /boot/bzImage ${isoboot} init=/nix/store/x/init systemd.mask=display-manager.service
    }
  }
  submenu "" {return}
  submenu "Rotate framebuffer Clockwise" --class rotate-90cw {
    menuentry 'NixOS 24.05 Installer '  --class installer { linux /boot/bzImage fbcon=rotate:1 ; }
  }
  submenu "Rotate framebuffer Upside-Down" --class rotate-180 {
    menuentry 'NixOS 24.05 Installer '  --class installer { linux /boot/bzImage fbcon=rotate:2 ; }
  }
  submenu "Rotate framebuffer Counter-Clockwise" --class rotate-90ccw {
    menuentry 'NixOS 24.05 Installer '  --class installer { linux /boot/bzImage fbcon=rotate:3 ; }
  }
  submenu "" {return}
  submenu "Use black on white" --class accessibility-blakconwhite {
    menuentry 'NixOS 24.05 Installer '  --class installer { linux /boot/bzImage vt.default_red=0xFF ; }
  }
  submenu "" {return}
  submenu "Serial console=ttyS0,115200n8" --class serial {
    if [ "$textmode" == "false" ]; then
      terminal_output gfxterm
    fi
    menuentry 'NixOS 24.05 Installer '  --class installer {
      # Fallback to UEFI console for boot, efifb sometimes has difficulties.
      terminal_output console

      linux /boot/bzImage ${isoboot} init=/nix/store/x/init console=ttyS0,115200n8 loglevel=4
      initrd /boot/initrd
    }
    menuentry 'NixOS 24.05 Installer (nomodeset)'  --class nomodeset {
      linux /boot/bzImage ${isoboot} init=/nix/store/x/init console=ttyS0,115200n8 nomodeset
    }
  }
}
if [ "$root" != "cd0" ]; then
  menuentry 'rEFInd' --class refind {
    chainloader ($root)/EFI/boot/refind_x64.efi
  }
fi
menuentry 'Firmware Setup' --class settings {
  fwsetup
  clear
}
menuentry 'Shutdown' --class shutdown {
  halt
}
"#;

    #[test]
    fn separators_count_and_hidden_entries_do_not() {
        let m = GrubMenu::parse(NIXPKGS_FORCE_TEXT_MODE);
        let titles: Vec<_> = m.items.iter().map(GrubItem::title).collect();
        assert_eq!(
            titles[..5],
            [
                "NixOS 24.05 Installer ",
                "NixOS 24.05 Installer (nomodeset)",
                "NixOS 24.05 Installer (copytoram)",
                "NixOS 24.05 Installer (debug)",
                "HiDPI, Quirks and Accessibility"
            ]
        );
        assert!(
            !titles.contains(&"Text mode") && !titles.contains(&"GUI mode"),
            "{titles:?}"
        );
        assert_eq!(m.text_mode_key, Some('t'));
        let GrubItem::Submenu { items, .. } = &m.items[4] else {
            panic!("not a submenu")
        };
        let hidpi: Vec<_> = items.iter().map(GrubItem::title).collect();
        assert_eq!(hidpi.len(), 11, "{hidpi:?}");
        assert_eq!(
            (hidpi[3], hidpi[7], hidpi[9], hidpi[10]),
            ("", "", "", "Serial console=ttyS0,115200n8")
        );

        let plan = m.choose(None, "console=ttyS0,115200n8").unwrap();
        assert_eq!(plan.edit, None);
        assert_eq!(plan.text_mode_key, 't');
        let moves: Vec<_> = plan
            .steps
            .iter()
            .map(|s| (s.from, s.to, s.last_title.as_str()))
            .collect();
        assert_eq!(
            moves,
            [
                (0, 4, "Shutdown"),
                (0, 10, "Serial console=ttyS0,115200n8"),
                (0, 0, "NixOS 24.05 Installer (nomodeset)")
            ]
        );
        // Ten downs in the HiDPI submenu: three of them cross separators.
        assert_eq!(
            GrubPlan::keys(&plan.steps[1], false, false),
            [DOWN.repeat(10), b"\r".to_vec()].concat()
        );
    }

    #[test]
    fn the_older_hidden_text_entry_and_menuentry_hotkeys() {
        // Before forceTextMode (commit 007ab6fb2fef of the same file) the hidden
        // entry kept gfxterm next to the console.
        let cfg = "hiddenentry 'Text mode' --hotkey 't' {\n  set textmode=true\n  terminal_output gfxterm console\n}\n\
                   menuentry 'A' --hotkey=a { linux /a ; }\n";
        let m = GrubMenu::parse(cfg);
        assert_eq!(m.text_mode_key, Some('t'));
        assert_eq!(
            m.items.len(),
            1,
            "a visible entry with a hotkey is drawn and counted"
        );
        assert_eq!(
            Line::read("menuentry 'x' --hotkey backspace {").hotkey(),
            None
        );
        assert_eq!(GrubMenu::parse(NIXOS_LIKE).text_mode_key, None);
    }

    /// Braces, `;` and `#` inside quotes are text: a one-line entry whose title
    /// holds a brace keeps its body, and a quoted `;` does not split a command.
    #[test]
    fn quoted_braces_and_semicolons_are_text() {
        let m = GrubMenu::parse(
            "menuentry 'a{b' { linux /k x=\"1;2\" ; initrd /i }\nmenuentry \"}#\" { linux /k }\n",
        );
        assert_eq!(
            m.items,
            [
                GrubItem::Entry {
                    title: "a{b".into(),
                    body: vec!["linux /k x=\"1;2\"".into(), "initrd /i".into()]
                },
                GrubItem::Entry {
                    title: "}#".into(),
                    body: vec!["linux /k".into()]
                },
            ]
        );
    }

    /// GRUB's quoting: escapes in double quotes and outside them, adjacent parts
    /// joined into one word.
    #[test]
    fn titles_are_read_with_grubs_quoting() {
        let cfg = "menuentry \"say \\\"hi\\\" for \\$5\" {\n}\nmenuentry It\\'s' a '\"test\" {\n}\nmenuentry 'C:\\x' {\n}\n";
        let titles: Vec<_> = GrubMenu::parse(cfg)
            .items
            .iter()
            .map(|i| i.title().to_owned())
            .collect();
        assert_eq!(titles, ["say \"hi\" for $5", "It's a test", "C:\\x"]);
        // A brace ends a plain word.
        assert_eq!(
            GrubMenu::parse("menuentry Plain{\n}\n").items[0].title(),
            "Plain"
        );
    }

    /// A brace in a body's comment or quoted string does not keep the entry open.
    #[test]
    fn braces_in_comments_and_strings_of_a_body_are_text() {
        let cfg = "menuentry A {\n  # the { of old\n  echo \"{\"\n  linux /k ${isoboot}\n}\nmenuentry B {\n}\n";
        let m = GrubMenu::parse(cfg);
        let titles: Vec<_> = m.items.iter().map(GrubItem::title).collect();
        assert_eq!(titles, ["A", "B"]);
        assert_eq!(
            linux_line(match &m.items[0] {
                GrubItem::Entry { body, .. } => body,
                _ => panic!("not an entry"),
            }),
            Some(2)
        );
    }

    /// `--hotkey` inside a title is text, not the option.
    #[test]
    fn a_hotkey_in_the_title_is_text() {
        assert_eq!(Line::read("menuentry 'use --hotkey x' {").hotkey(), None);
        assert_eq!(
            Line::read("hiddenentry 'T' --class c --hotkey \"t\" {").hotkey(),
            Some('t')
        );
        assert_eq!(Line::read("hiddenentry T --hotkey=g {").hotkey(), Some('g'));
    }

    /// The console goes after the `linux` command's own arguments, whether the
    /// command ends at the line's end, a `;` or a `}`; quoted `;` are text.
    #[test]
    fn the_linux_commands_arguments_end_at_a_semicolon_a_brace_or_the_line() {
        fn at(line: &str) -> Option<(&str, &str)> {
            linux_command(line).map(|(end, args)| (&line[..end], args))
        }
        assert_eq!(
            at("  linux /boot/bzImage a=1 b  "),
            Some(("  linux /boot/bzImage a=1 b", "/boot/bzImage a=1 b"))
        );
        assert_eq!(
            at(" linux /boot/bzImage a=1 ; initrd /boot/initrd; "),
            Some((" linux /boot/bzImage a=1", "/boot/bzImage a=1"))
        );
        assert_eq!(
            at("terminal_output console; linux /k x=\"1;2\"}"),
            Some((
                "terminal_output console; linux /k x=\"1;2\"",
                "/k x=\"1;2\""
            ))
        );
        assert_eq!(at("linuxefi /k;initrd /i"), Some(("linuxefi /k", "/k")));
        assert_eq!(at("initrd /boot/initrd; echo linux"), None);
        assert_eq!(at("setparams 'linux'"), None);
        assert_eq!(
            at("menuentry 'x' { linux /k ; }"),
            Some(("menuentry 'x' { linux /k", "/k"))
        );
    }

    #[test]
    fn parses_the_menu_tree() {
        let m = GrubMenu::parse(NIXOS_LIKE);
        let titles: Vec<_> = m.items.iter().map(GrubItem::title).collect();
        assert_eq!(
            titles,
            [
                "NixOS 24.05 Installer",
                "NixOS 24.05 Installer (nomodeset)",
                "HiDPI, Quirks and Accessibility",
                "Firmware Setup"
            ]
        );
        let GrubItem::Submenu { items, .. } = &m.items[2] else {
            panic!("not a submenu")
        };
        assert_eq!(items[1].title(), "Serial console=ttyS0,115200n8");
    }

    #[test]
    fn the_nested_serial_entry_is_chosen() {
        let plan = GrubMenu::parse(NIXOS_LIKE)
            .choose(None, "console=ttyS0,115200n8")
            .unwrap();
        assert_eq!(plan.edit, None);
        let moves: Vec<_> = plan
            .steps
            .iter()
            .map(|s| (s.from, s.to, s.last_title.as_str()))
            .collect();
        assert_eq!(
            moves,
            [
                (0, 2, "Firmware Setup"),
                (0, 1, "Serial console=ttyS0,115200n8"),
                (0, 0, "NixOS 24.05 Installer")
            ]
        );
        assert_eq!(
            GrubPlan::keys(&plan.steps[0], false, false),
            b"\x1b[B\x1b[B\r"
        );
    }

    #[test]
    fn without_a_serial_entry_the_default_is_edited() {
        let cfg = NIXOS_LIKE
            .replace(" console=ttyS0,115200n8", "")
            .replace("set timeout=10", "set default=1");
        let plan = GrubMenu::parse(&cfg)
            .choose(None, "console=ttyAMA0,115200n8")
            .unwrap();
        assert_eq!(plan.title, "NixOS 24.05 Installer (nomodeset)");
        assert_eq!(
            plan.steps,
            [GrubStep {
                from: 1,
                to: 1,
                last_title: "Firmware Setup".into()
            }]
        );
        let edit = plan.edit.clone().unwrap();
        assert_eq!(
            edit,
            GrubEdit {
                line: 0,
                append: "console=ttyAMA0,115200n8".into()
            }
        );
        assert_eq!(GrubPlan::keys(&plan.steps[0], true, true), b"e");
    }

    #[test]
    fn a_pattern_picks_by_title_and_lists_the_entries_when_nothing_matches() {
        let re = Regex::new("1024x768").unwrap();
        let plan = GrubMenu::parse(NIXOS_LIKE)
            .choose(Some(&re), "console=ttyS0,115200n8")
            .unwrap();
        assert_eq!(
            plan.steps.iter().map(|s| s.to).collect::<Vec<_>>(),
            [2, 0, 0]
        );
        assert!(plan.edit.is_none() || plan.edit.as_ref().is_some_and(|e| e.line == 0));
        let re = Regex::new("memtest").unwrap();
        let e = GrubMenu::parse(NIXOS_LIKE)
            .choose(Some(&re), "console=ttyS0")
            .unwrap_err()
            .to_string();
        assert!(e.contains("HiDPI, Quirks and Accessibility > Serial console=ttyS0,115200n8 > NixOS 24.05 Installer"), "{e}");
    }
}
