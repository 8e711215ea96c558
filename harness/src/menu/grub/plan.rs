//! The way through a GRUB menu to the entry to boot: the menu levels, the keys
//! that move over each, and the edit that adds the console when the entry
//! lacks it.

use super::tree::{GrubItem, GrubMenu, DEFAULT_TEXT_MODE_KEY};
use super::words::linux_line;
use crate::menu::console_arg::has_console;
use crate::menu::error::MenuError;
use regex::Regex;

/// The down-arrow key as a VT100 terminal sends it.
pub(super) const DOWN: &[u8] = b"\x1b[B";

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
