//! Turns a terminal byte stream into plain text for matching and transcripts:
//! escape sequences go, carriage returns go, and moves to another row (cursor
//! jumps, which boot menus use instead of newlines, and moves up or down)
//! become line breaks, unless they stay on the row the cursor is on:
//! SeaBIOS's VGA-to-serial mirror repositions the cursor inside a line of
//! text, in the middle of a word or a prompt (its lazy output,
//! `sercon_lazy_cursor_sync` in seabios src/sercon.c, sends `ESC [ row ; col H`
//! for a move along a row and `\r\n` for a move down to column 0). So the row
//! is followed through newlines, jumps and moves, as long as it is known: after
//! a jump or a reset (`ESC c`), until something moves the cursor in a way not
//! followed here (a saved position restored, the alternate screen, a line
//! longer than a terminal's 80 columns that may have wrapped); then the next
//! jump breaks the line, as it always may without harm. (A screen scrolled by
//! newlines at its bottom row keeps its row while the count goes on: jumps
//! then break lines too.) Stateful, because a sequence can be split across
//! reads.
//! CAN and SUB cancel any sequence in progress, as terminals do (Linux's own
//! console: `case 24: case 26:` back to the normal state in `do_con_trol`,
//! drivers/tty/vt/vt.c): the command framing (`shell`) starts each marker with
//! CAN, so that output cut inside a sequence cannot swallow the marker.

#[derive(Debug, Default)]
pub struct AnsiStripper {
    state: State,
    /// The parameter bytes of the CSI sequence being read.
    params: Vec<u8>,
    /// The cursor's row (1 at the top), while it is known.
    row: Option<u32>,
    /// Columns written since the cursor last went to a known column (a jump,
    /// a carriage return, a newline): past 80, a terminal may have wrapped
    /// the line, and the row is no longer known.
    col: u32,
    /// Whether text came out since the last newline. Kept here, not read off
    /// the output, because each read is fed into a buffer of its own.
    mid_line: bool,
}

/// The narrowest terminal a boot loader draws for (VGA text, GRUB's serial
/// terminal): a line longer than this may have wrapped to the next row.
const COLUMNS: u32 = 80;

/// Cancel and Substitute: end any sequence in progress, printing nothing.
const CAN: u8 = 0x18;
const SUB: u8 = 0x1a;

#[derive(Debug, Default, Clone, Copy)]
enum State {
    #[default]
    Text,
    Escape,
    /// `ESC [` ... final byte in 0x40..=0x7e.
    Csi,
    /// `ESC ]` ... BEL or `ESC \`.
    Osc,
    /// `ESC (` / `ESC )` / `ESC %`: one more byte.
    Charset,
}

impl AnsiStripper {
    /// Appends the plain text of `input` to `out`.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) {
        for &b in input {
            self.state = match (self.state, b) {
                (_, CAN | SUB) => State::Text,
                (State::Text, 0x1b) => State::Escape,
                // Vertical tab and form feed move down as a newline does.
                (State::Text, b'\n' | 0x0b | 0x0c) => {
                    self.row = self.row.map(|r| r.saturating_add(1));
                    self.col = 0;
                    self.mid_line = false;
                    out.push(b'\n');
                    State::Text
                }
                (State::Text, b'\r') => {
                    self.col = 0;
                    State::Text
                }
                (State::Text, 0x08) => {
                    self.col = self.col.saturating_sub(1);
                    State::Text
                }
                (State::Text, b) if (b < 0x20 && b != b'\t') || b == 0x7f => State::Text,
                (State::Text, b) => {
                    self.mid_line = true;
                    // A UTF-8 continuation byte is part of the cell before it.
                    if !(0x80..0xc0).contains(&b) {
                        self.written(if b == b'\t' { 8 } else { 1 });
                    }
                    out.push(b);
                    State::Text
                }
                (State::Escape, b'[') => {
                    self.params.clear();
                    State::Csi
                }
                (State::Escape, b']') => State::Osc,
                (State::Escape, b'(' | b')' | b'%') => State::Charset,
                // A reset: the screen is cleared and the cursor is at the top.
                (State::Escape, b'c') => {
                    self.row = None;
                    self.jump(1, out);
                    State::Text
                }
                // Index, next line, reverse index: another row (or a scroll).
                (State::Escape, b'D' | b'E' | b'M') => {
                    self.row = None;
                    self.break_line(out);
                    State::Text
                }
                // A saved position restored: a move not followed here.
                (State::Escape, b'8') => {
                    self.row = None;
                    State::Text
                }
                (State::Escape, _) | (State::Charset, _) => State::Text,
                (State::Csi, 0x40..=0x7e) => {
                    self.csi(b, out);
                    State::Text
                }
                (State::Csi, b) => {
                    self.params.push(b);
                    State::Csi
                }
                (State::Osc, 0x07) => State::Text,
                (State::Osc, 0x1b) => State::Escape,
                (State::Osc, _) => State::Osc,
            }
        }
    }

    /// `cells` more columns written on the cursor's row.
    fn written(&mut self, cells: u32) {
        self.col = self.col.saturating_add(cells);
        if self.col > COLUMNS {
            self.row = None;
        }
    }

    /// A CSI sequence's effect on the cursor (`params` hold its parameters).
    /// A move to another row breaks the line, as a jump does.
    fn csi(&mut self, last: u8, out: &mut Vec<u8>) {
        // A parameter left out, or 0, means 1; at most 9999 (no screen is
        // bigger), so that no count overflows.
        let mut numbers = self.params.split(|&c| c == b';').map(|p| {
            let digits = !p.is_empty() && p.iter().all(u8::is_ascii_digit);
            let n = if digits {
                p.iter()
                    .fold(0u32, |n, d| (n * 10 + u32::from(d - b'0')).min(9999))
            } else {
                1
            };
            n.max(1)
        });
        let first = numbers.next().unwrap_or(1);
        let second = numbers.next().unwrap_or(1);
        if let Some(private) = self.params.strip_prefix(b"?") {
            // DEC modes: the alternate screen (`?47`, `?1047`, `?1049`), the
            // cursor saved or restored with it (`?1048`) and origin mode (`?6`)
            // move the cursor in ways not followed here; others (autowrap,
            // bracketed paste, the cursor's visibility) move nothing.
            let moves = private
                .split(|&c| c == b';')
                .any(|m| matches!(m, b"6" | b"47" | b"1047" | b"1048" | b"1049"));
            if moves && matches!(last, b'h' | b'l') {
                self.row = None;
            }
            return;
        }
        if self
            .params
            .first()
            .is_some_and(|c| !c.is_ascii_digit() && *c != b';')
        {
            return;
        }
        match last {
            b'H' | b'f' => {
                self.jump(first, out);
                self.col = second - 1;
            }
            b'd' => self.jump(first, out),
            // Up or down: another row, wherever the cursor was.
            b'A' | b'B' | b'E' | b'F' => {
                self.row = self.row.map(|r| {
                    if matches!(last, b'A' | b'F') {
                        r.saturating_sub(first).max(1)
                    } else {
                        r.saturating_add(first)
                    }
                });
                self.break_line(out);
            }
            // Save/restore the position, a scrolling region (which homes the cursor).
            b's' | b'u' | b'r' => self.row = None,
            _ => {}
        }
        match last {
            b'E' | b'F' => self.col = 0,
            b'G' | b'`' => self.col = first - 1,
            b'C' => self.written(first),
            b'D' => self.col = self.col.saturating_sub(first),
            _ => {}
        }
    }

    /// A line break, when text came out since the last one.
    fn break_line(&mut self, out: &mut Vec<u8>) {
        if self.mid_line {
            self.mid_line = false;
            out.push(b'\n');
        }
    }

    /// The cursor goes to the start of `row`: a line break when text came out
    /// since the last one and the row is not known to be the same.
    fn jump(&mut self, row: u32, out: &mut Vec<u8>) {
        if self.row != Some(row) {
            self.break_line(out);
        }
        self.row = Some(row);
        self.col = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strip(chunks: &[&[u8]]) -> String {
        let mut s = AnsiStripper::default();
        let mut out = Vec::new();
        for c in chunks {
            s.feed(c, &mut out);
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn strips_colours_and_carriage_returns() {
        assert_eq!(
            strip(&[b"[\x1b[0;32m  OK  \x1b[0m] Started\r\n"]),
            "[  OK  ] Started\n"
        );
    }

    #[test]
    fn sequences_split_across_reads() {
        assert_eq!(strip(&[b"a\x1b[0;3", b"7;40mb\x1b", b"[Kc"]), "abc");
    }

    #[test]
    fn cursor_jumps_become_line_breaks() {
        assert_eq!(
            strip(&[b"menu\x1b[18;26HPress [Tab]\x1b[28;1H\x1b[0mboot: "]),
            "menu\nPress [Tab]\nboot: "
        );
    }

    #[test]
    fn jumps_within_a_row_join_its_text() {
        // SeaBIOS mirroring GRUB's VGA text menu (grub-unified fixture, BIOS).
        let raw =
            b"\x1b[05;03H*NixOS 24.05 isotest\x1b[05;35H\x1b[05;36H Installer \x1b[06;03H Options";
        assert_eq!(strip(&[raw]), "*NixOS 24.05 isotest Installer \n Options");
        // A split sequence and a row reached again after a newline.
        assert_eq!(strip(&[b"a\x1b[2;", b"1Hb\n\x1b[2;1Hc"]), "a\nb\nc");
    }

    /// SeaBIOS 1.16.3 (Debian bookworm-backports) mirroring GRUB's rescue
    /// prompt (grub-rescue fixture, BIOS): rows reached by `\r\n` after the
    /// reset, then jumps along the prompt's row.
    #[test]
    fn jumps_along_a_row_reached_by_newlines_join_its_text() {
        let raw = b"\x1bc\x1b[?7l\x1b[2J\x1b[0mSeaBIOS (version 1.16.3-debian-1.16.3-2~bpo12+1)\r\nBooting from Hard Disk...\r\n\
                    Boot failed: could not read the boot disk\r\n\nBooting from DVD/CD...\r\n\x1b[0;30;47mWelcome to GRUB!\r\n\n\
                    \x1b[0merror: file `/boot/grub/i386-pc/normal.mod' not found.\r\ngrub rescue>\x1b[09;12H\x1b[09;13H t";
        let text = strip(&[raw]);
        assert!(text.ends_with("not found.\ngrub rescue> t"), "{text:?}");
        // The same, a byte at a time.
        assert_eq!(strip(&raw.chunks(1).collect::<Vec<_>>()), text);
        // GRUB's menu, then its hint lines below the box (grub-unified fixture).
        let raw = b"\x1b[06;03H\x1b[0m Opt\x1b[06;06H\x1b[06;07Hions   \x1b[20;02H     Use the keys.   \r\n      Press enter to boot the selected OS, `e' to edit the commands       \r\n      before booting or `c' for a comm\x1b[22;38H\x1b[22;39Hand-line.     \x1b[05;80H ";
        assert_eq!(
            strip(&[raw]),
            " Options   \n     Use the keys.   \n      Press enter to boot the selected OS, `e' to edit the commands       \n      before booting or `c' for a command-line.     \n "
        );
    }

    /// Where the row is not known, a jump breaks the line: after a line
    /// longer than 80 columns (it may have wrapped), or a restored position.
    #[test]
    fn a_row_not_known_breaks_the_line() {
        let long = "x".repeat(81);
        let raw = format!("\x1b[03;01H{long}\x1b[03;05Hy");
        assert_eq!(strip(&[raw.as_bytes()]), format!("{long}\ny"));
        assert_eq!(strip(&[b"\x1b[03;01Ha\x1b8b\x1b[03;05Hc"]), "ab\nc");
        // Moves to another row break the line, and are followed: down a
        // row, and back up to it; vertical tab and form feed as newlines.
        assert_eq!(
            strip(&[b"\x1b[03;01Ha\x1b[Bb\x1b[A\x1b[03;05Hc"]),
            "a\nb\nc"
        );
        assert_eq!(strip(&[b"\x1b[03;01Ha\x1b[Bb\x1b[04;05Hc"]), "a\nbc");
        assert_eq!(strip(&[b"\x1b[03;01Ha\x0bb\x0cc\x1b[05;05Hd"]), "a\nb\ncd");
        assert_eq!(strip(&[b"\x1b[03;01Ha\x1bMb\x1b[7dc"]), "a\nb\nc");
        // The alternate screen: the row is not known after it.
        assert_eq!(strip(&[b"\x1b[03;01Ha\x1b[?1049l\x1b[03;05Hb"]), "a\nb");
        // Parameters too big for any screen neither wrap nor panic.
        assert_eq!(
            strip(&[b"\x1b[4294967295;1Ha\n\x1b[99999999999Bb\n\x1b[4294967296Hc"]),
            "a\nb\nc"
        );
        let mut deep = b"\x1b[9999;1H".to_vec();
        deep.extend(std::iter::repeat_n(b'\n', 100));
        deep.extend(b"\x1b[9999Bx");
        assert_eq!(strip(&[&deep]).matches('\n').count(), 100);
        // A reset breaks the line: the screen was cleared.
        assert_eq!(strip(&[b"\x1b[01;01Ha\x1bcb"]), "a\nb");
    }

    /// NixOS's bash prompt (programs.bash.promptInit) with readline's
    /// bracketed paste around it, and the `\e[?2004l\r` after a line.
    #[test]
    fn nixos_prompt_and_bracketed_paste() {
        let raw = b"\x1b[?2004h\x1b[1;31m[\x1b]0;root@rescue: ~\x07root@rescue:~]#\x1b[0m echo hi\r\n\x1b[?2004l\rhi\r\n";
        assert_eq!(strip(&[raw]), "[root@rescue:~]# echo hi\nhi\n");
        // Split at every byte.
        let chunks: Vec<&[u8]> = raw.chunks(1).collect();
        assert_eq!(strip(&chunks), "[root@rescue:~]# echo hi\nhi\n");
    }

    /// Arbitrary bytes, escape junk and bytes that are not UTF-8 never panic.
    #[test]
    fn junk_never_panics() {
        let mut s = AnsiStripper::default();
        let mut out = Vec::new();
        let junk: Vec<u8> = (0..=255u8).cycle().take(8192).collect();
        s.feed(&junk, &mut out);
        s.feed(
            b"\x1b[;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;H\x1b]\x1b\x1b(\xff\x1b[\x80\xc3",
            &mut out,
        );
        let _ = String::from_utf8_lossy(&out);
    }

    /// Whether a jump breaks the line does not depend on where one read ended:
    /// the console feeds each read into a buffer of its own.
    #[test]
    fn a_jump_at_the_start_of_a_read_breaks_the_line() {
        let mut s = AnsiStripper::default();
        let (mut first, mut second) = (Vec::new(), Vec::new());
        s.feed(b"a", &mut first);
        s.feed(b"\x1b[2;1Hb", &mut second);
        assert_eq!((first, second), (b"a".to_vec(), b"\nb".to_vec()));
    }

    /// Cut-short sequences of every kind end at CAN, and the text after it stays.
    #[test]
    fn cancel_ends_any_sequence() {
        for cut in [&b"\x1b"[..], b"\x1b[0;3", b"\x1b]0;title", b"\x1b("] {
            assert_eq!(strip(&[b"a", cut, b"\x18\nB"]), "a\nB", "after {cut:?}");
            assert_eq!(strip(&[b"a", cut, b"\x1a\nB"]), "a\nB", "after {cut:?}");
        }
    }

    #[test]
    fn charset_switches_and_shift_codes_vanish() {
        assert_eq!(strip(&[b"\x1b)0\x1b(B\x0elqqk\x0fx"]), "lqqkx");
    }
}
