//! The menu tree of grub.cfg: what GRUB draws and counts (see `grub`).

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

/// The text-mode key when the configuration names none: nixpkgs' `t` (and
/// openSUSE's, whose patch added hidden entries for this very purpose).
pub const DEFAULT_TEXT_MODE_KEY: char = 't';
