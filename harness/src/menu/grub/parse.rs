//! grub.cfg read into the menu tree: `menuentry`/`submenu`/`hiddenentry`
//! blocks and a numeric `set default`, from the places ISOs keep it.

use super::tree::{GrubItem, GrubMenu};
use super::words::Line;
use crate::menu::error::MenuError;
use crate::menu::iso_files::IsoFiles;

/// Where ISOs keep grub.cfg: NixOS's EFI directory, then the usual places.
pub const CFG_PATHS: [&str; 4] = [
    "/EFI/BOOT/grub.cfg",
    "/EFI/boot/grub.cfg",
    "/boot/grub/grub.cfg",
    "/boot/grub2/grub.cfg",
];

impl GrubMenu {
    /// The first grub.cfg of `CFG_PATHS` the ISO has; `MenuError::NotOnIso`
    /// (the last path's) when it has none, a host error as soon as one comes.
    pub fn from_files(files: &dyn IsoFiles) -> Result<GrubMenu, MenuError> {
        let mut last_error = MenuError::Empty;
        for path in CFG_PATHS {
            match files.read(path) {
                Ok(cfg) => return Ok(GrubMenu::parse(&cfg)),
                Err(e @ MenuError::NotOnIso { .. }) => last_error = e,
                Err(e) => return Err(e),
            }
        }
        Err(last_error)
    }

    /// Parses `menuentry`/`submenu`/`hiddenentry` blocks (and a numeric `set
    /// default`). Items inside `if` blocks count as shown: on UEFI they usually are.
    /// Lines are read as GRUB's shell reads them (`Line`): a brace or `;` inside
    /// quotes or a comment is text, not syntax.
    pub fn parse(cfg: &str) -> GrubMenu {
        let mut parser = Parser {
            stack: vec![(String::new(), Vec::new())],
            entry: None,
            default: 0,
            text_mode_key: None,
        };
        for raw in cfg.lines() {
            parser.line(raw.trim());
        }
        parser.finish()
    }
}

/// The menu read so far.
struct Parser {
    /// The open levels: (title of the submenu, its items); the root is first.
    stack: Vec<(String, Vec<GrubItem>)>,
    /// The entry whose closing brace has not come yet.
    entry: Option<OpenEntry>,
    /// The top level's `set default=N`.
    default: usize,
    text_mode_key: Option<char>,
}

impl Parser {
    fn line(&mut self, line: &str) {
        let read = Line::read(line);
        let code = read.code.trim_end();
        let Some(open) = self.entry.as_mut() else {
            return self.outside_entries(line, &read);
        };
        if code == "}" && open.depth == 0 {
            let open = self.entry.take().expect("checked");
            self.add_entry(open);
        } else {
            open.depth += code.matches('{').count();
            open.depth -= code.matches('}').count().min(open.depth);
            open.body.push(line.to_owned());
        }
    }

    /// A line between entries: one that opens or closes a level or an entry,
    /// a whole one-line entry, or the top level's `set default`.
    fn outside_entries(&mut self, line: &str, read: &Line) {
        let code = read.code.trim_end();
        let keyword = read.words.first().map_or("", String::as_str);
        let one_line = code.ends_with('}') && code.contains('{');
        match keyword {
            "menuentry" | "hiddenentry" if code.ends_with('{') => {
                self.entry = Some(OpenEntry::new(read))
            }
            // `menuentry "T" { linux ... ; initrd ... }` on one line.
            "menuentry" | "hiddenentry" if one_line => {
                let mut open = OpenEntry::new(read);
                open.body = read.block_commands(line);
                self.add_entry(open);
            }
            "submenu" if code.ends_with('{') => self.stack.push((read.title(), Vec::new())),
            // `submenu "" {return}`: a separator GRUB draws as an empty line
            // and counts when the arrow keys move.
            "submenu" if one_line => self.level().push(GrubItem::Submenu {
                title: read.title(),
                items: Vec::new(),
            }),
            _ if code == "}" && self.stack.len() > 1 => {
                let (title, items) = self.stack.pop().expect("checked");
                self.level().push(GrubItem::Submenu { title, items });
            }
            "set" if self.stack.len() == 1 => {
                if let Some(value) = read.words.get(1).and_then(|w| w.strip_prefix("default=")) {
                    self.default = value.parse().unwrap_or(0);
                }
            }
            _ => {}
        }
    }

    /// The items of the level being read.
    fn level(&mut self) -> &mut Vec<GrubItem> {
        &mut self.stack.last_mut().expect("root").1
    }

    /// A complete entry: drawn when visible; its hotkey kept when it brings
    /// GRUB to the text console.
    fn add_entry(&mut self, open: OpenEntry) {
        self.text_mode_key = self.text_mode_key.or(open.text_mode_key());
        if !open.hidden {
            self.level().push(GrubItem::Entry {
                title: open.title,
                body: open.body,
            });
        }
    }

    fn finish(mut self) -> GrubMenu {
        let items = self.stack.swap_remove(0).1;
        let default = if self.default < items.len() {
            self.default
        } else {
            0
        };
        GrubMenu {
            items,
            default,
            text_mode_key: self.text_mode_key,
        }
    }
}

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
