//! What a text-mode boot menu shows, read off a screen model of the terminal
//! (the `vt100` crate) instead of its configuration: for GRUB images that carry
//! their grub.cfg inside the EFI binary (`grub-mkstandalone`), where the ISO has
//! no configuration to read. GRUB draws a box of entries and submenus, marks the
//! highlighted one with `*`, and its editor shows an entry's commands in the same
//! box; the rows inside the box are what the arrow keys move over (blank rows
//! between items are separators, and count).

/// Big enough for every console measured: OVMF (100×31), AAVMF (80×50), SeaBIOS
/// mirroring VGA text (80×25). Moves past the edge would be clamped.
const ROWS: NonZeroU16 = NonZeroU16::new(64).expect("not zero");
const COLS: NonZeroU16 = NonZeroU16::new(200).expect("not zero");

use std::num::NonZeroU16;

/// The box's sides as GRUB draws them on a text console (OVMF's CP437 ones are
/// not text and never reach the screen model).
const BORDER: [char; 2] = ['|', '│'];

/// The arrows GRUB draws in a box's border when its lines go on out of view.
const SCROLL_MARKS: [char; 4] = ['^', 'v', '↑', '↓'];

/// The screen after feeding a terminal byte stream.
pub struct Screen {
    rows: Vec<String>,
}

/// A GRUB menu as drawn: item titles (separators are empty) and the highlighted one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrawnMenu {
    pub items: Vec<String>,
    pub highlighted: usize,
}

impl Screen {
    /// The screen that `bytes` leave, from a blank one.
    pub fn from_bytes(bytes: &[u8]) -> Screen {
        let mut parser = vt100::Parser::new(ROWS, COLS, 0);
        parser.process(bytes);
        let rows = parser.screen().rows(0, COLS.get()).collect();
        Screen { rows }
    }

    /// The lines inside GRUB's box (menu or editor) and the column its text
    /// starts at (the highlight mark in a menu). GRUB's layout is fixed: the
    /// title, a blank row, the top border, the lines, the bottom border, a blank
    /// row and the help text. (Borders are not read: OVMF draws them in CP437
    /// bytes that are not text.)
    fn boxed(&self) -> Option<(Vec<&str>, usize)> {
        let title = self.rows.iter().rposition(|r| r.contains("GNU GRUB"))?;
        let help = title
            + self.rows[title..].iter().position(|r| {
                r.trim_start().starts_with("Use the") || r.contains("Minimum Emacs-like")
            })?;
        let lines: Vec<&str> = self
            .rows
            .get(title + 3..help.checked_sub(2)?)?
            .iter()
            .map(String::as_str)
            .collect();
        // The left border's column + 1, the same on every line: the first column
        // any line uses, after a scroll mark.
        let column = lines.iter().filter_map(|l| Self::first_text(l)).min()?;
        Some((lines, column))
    }

    /// Where a row of the box has its first text. GRUB marks a box whose
    /// lines go on above or below with an arrow in the left border's cell
    /// (`^`/`v` where the console has no arrows: AAVMF, SeaBIOS), which is not
    /// text of the lines.
    fn first_text(row: &str) -> Option<usize> {
        let (at, c) = row.char_indices().find(|&(_, c)| c != ' ')?;
        let after = &row[at + c.len_utf8()..];
        let scroll_mark = SCROLL_MARKS.contains(&c)
            && after.starts_with(|n: char| n == ' ' || BORDER.contains(&n));
        Some(if scroll_mark { at + c.len_utf8() } else { at })
    }

    /// A line's text from `column`, without the right border.
    fn text_of(line: &str, column: usize) -> &str {
        let text = line.get(column..).unwrap_or("");
        text.trim_start_matches(BORDER)
            .trim_end_matches(|c| c == ' ' || BORDER.contains(&c))
    }

    /// GRUB's menu, if one is on the screen.
    pub fn grub_menu(&self) -> Option<DrawnMenu> {
        let (lines, column) = self.boxed()?;
        // The mark's column: the left border's, plus one.
        let highlighted = lines
            .iter()
            .position(|l| Self::text_of(l, column).trim_start().starts_with('*'))?;
        let mark = lines[highlighted].find('*')?;
        let mut items: Vec<String> = lines
            .iter()
            .map(|l| Self::text_of(l, mark + 1).trim().to_owned())
            .collect();
        // Blank rows after the last item are the box's empty space, but the
        // highlighted row is an item even when it is blank (a separator).
        while items.len() > highlighted + 1 && items.last().is_some_and(String::is_empty) {
            items.pop();
        }
        Some(DrawnMenu { items, highlighted })
    }

    /// In GRUB's editor: the index of the entry's `linux` line.
    pub fn grub_editor_linux_line(&self) -> Option<usize> {
        self.grub_editor_lines()?
            .iter()
            .position(|l| matches!(l.split_whitespace().next(), Some("linux" | "linuxefi")))
    }

    /// GRUB's editor, if it is on the screen: the entry's lines as its editor
    /// holds them (the cursor keys move over these), with their indentation.
    /// A line too long for the box goes on over the next rows, each row but the
    /// last ending in `\` at the box's edge (GRUB's menu_entry.c); they are
    /// joined again here. Blank rows after the last line are the box's space.
    pub fn grub_editor_lines(&self) -> Option<Vec<String>> {
        if !self.rows.iter().any(|r| r.contains("Minimum Emacs-like")) {
            return None;
        }
        let (rows, column) = self.boxed()?;
        let mut lines: Vec<String> = Vec::new();
        let mut continued = false;
        for row in rows {
            let text = Self::text_of(row, column);
            let (text, goes_on) = match text.strip_suffix('\\') {
                Some(head) => (head, true),
                None => (text, false),
            };
            match lines.last_mut() {
                Some(last) if continued => last.push_str(text),
                _ => lines.push(text.to_owned()),
            }
            continued = goes_on;
        }
        while lines.last().is_some_and(|l| l.trim().is_empty()) {
            lines.pop();
        }
        Some(lines)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// OVMF, after `t`: nixpkgs' forceTextMode-era menu on the text console.
    const OVMF: &[u8] = include_bytes!("../console/testdata/ovmf-grub-gfxterm-t.raw");
    /// AAVMF without a display: the same menu, 80 columns wide, `/` corners.
    const AAVMF: &[u8] = include_bytes!("../console/testdata/aavmf-grub-gfxterm.raw");

    /// A highlighted blank row (a separator) stays an item: the highlight is
    /// where the arrow keys start from.
    #[test]
    fn a_highlighted_blank_row_is_an_item() {
        let raw = b"\x1b[1;1HGNU GRUB\x1b[4;2H|*\x1b[7;1HUse the ^ and v keys";
        let menu = Screen::from_bytes(raw).grub_menu().expect("a menu");
        assert_eq!(
            menu,
            DrawnMenu {
                items: vec![String::new()],
                highlighted: 0
            }
        );
    }

    #[test]
    fn reads_the_menu_of_each_console() {
        for raw in [OVMF, AAVMF] {
            let menu = Screen::from_bytes(raw).grub_menu().expect("a menu");
            assert_eq!(menu.highlighted, 0);
            assert_eq!(
                menu.items[0],
                format!("NixOS 24.05.isotest-grub-gfxterm Installer")
            );
            assert_eq!(menu.items[4], "HiDPI, Quirks and Accessibility");
            assert_eq!(
                menu.items.last().map(String::as_str),
                Some("Text mode"),
                "{:?}",
                menu.items
            );
        }
    }

    /// SeaBIOS mirroring GRUB's VGA text menu (fixture grub-unified, BIOS).
    const SEABIOS: &[u8] = include_bytes!("../console/testdata/seabios-grub-unified.raw");

    #[test]
    fn reads_the_menu_seabios_mirrors() {
        let menu = Screen::from_bytes(SEABIOS).grub_menu().expect("a menu");
        assert_eq!(
            menu.items,
            ["NixOS 24.05.isotest-grub-unified Installer", "Options"]
        );
        assert_eq!(menu.highlighted, 0);
    }

    /// GRUB's editor on OVMF (fixture grub-embedded): `setparams 'title'`, the
    /// empty line that follows the entry's `{`, then its commands.
    const OVMF_EDITOR: &[u8] = include_bytes!("../console/testdata/ovmf-grub-editor.raw");

    #[test]
    fn finds_the_linux_line_in_the_editor() {
        let screen = Screen::from_bytes(OVMF_EDITOR);
        assert_eq!(screen.grub_editor_linux_line(), Some(2));
        assert_eq!(screen.grub_menu(), None, "the editor is not a menu");
    }

    /// GRUB's editor on AAVMF showing a submenu of the grub-oneline fixture:
    /// ASCII borders, one-line entries wrapped over rows ending in `\`, and a
    /// `v` in the left border's cell (more lines below).
    const AAVMF_SUBMENU_EDITOR: &[u8] =
        include_bytes!("../console/testdata/aavmf-grub-oneline-submenu-editor.raw");

    #[test]
    fn reads_the_editors_lines_whole_past_wraps_and_scroll_marks() {
        let lines = Screen::from_bytes(AAVMF_SUBMENU_EDITOR)
            .grub_editor_lines()
            .expect("an editor");
        assert_eq!(lines[0], "setparams 'Options'");
        assert_eq!(
            lines[2],
            "  submenu \"Copy ISO Files to RAM\" --class copytoram {"
        );
        assert_eq!(
            lines[3],
            "    menuentry 'NixOS 25.11.isotest-grub-oneline Installer' --class installer { linux /boot/Image boot=live loglevel=4 \
             init=/lib/systemd/systemd live-media-path=/live copytoram; initrd /boot/initrd; }"
        );
        assert_eq!(lines.last().map(String::as_str), Some("    menuentry 'NixOS 25.11.isotest-grub-oneline Installer' --class installer { linux /boot/Imag"));
    }

    #[test]
    fn no_menu_before_grub_draws_one() {
        let hint_only = &OVMF[..OVMF.windows(12).position(|w| w == b"this console").unwrap()];
        assert_eq!(Screen::from_bytes(hint_only).grub_menu(), None);
    }
}
