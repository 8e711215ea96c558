//! Turns a terminal byte stream into plain text for matching and transcripts:
//! escape sequences go, carriage returns go, and cursor jumps (which boot menus
//! use instead of newlines) become line breaks, unless they stay on the row the
//! previous jump went to (SeaBIOS's VGA-to-serial mirror repositions the cursor
//! inside a line of text). Stateful, because a sequence can be split across reads.
//! CAN and SUB cancel any sequence in progress, as terminals do (Linux's own
//! console: `case 24: case 26:` back to the normal state in `do_con_trol`,
//! drivers/tty/vt/vt.c): the command framing (`shell`) starts each marker with
//! CAN, so that output cut inside a sequence cannot swallow the marker.

#[derive(Debug, Default)]
pub struct AnsiStripper {
    state: State,
    /// The parameter bytes of the CSI sequence being read.
    params: Vec<u8>,
    /// The row the last cursor jump went to, while no newline came since.
    row: Option<Vec<u8>>,
    /// Whether text came out since the last newline. Kept here, not read off
    /// the output, because each read is fed into a buffer of its own.
    mid_line: bool,
}

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
                (State::Text, b'\n') => {
                    self.row = None;
                    self.mid_line = false;
                    out.push(b);
                    State::Text
                }
                (State::Text, b) if (b < 0x20 && b != b'\t') || b == 0x7f => State::Text,
                (State::Text, b) => {
                    self.mid_line = true;
                    out.push(b);
                    State::Text
                }
                (State::Escape, b'[') => {
                    self.params.clear();
                    State::Csi
                }
                (State::Escape, b']') => State::Osc,
                (State::Escape, b'(' | b')' | b'%') => State::Charset,
                (State::Escape, _) | (State::Charset, _) => State::Text,
                (State::Csi, b'H' | b'f') => {
                    let row = self.params.split(|&c| c == b';').next().unwrap_or_default().to_vec();
                    if self.row.as_ref() != Some(&row) && self.mid_line {
                        self.mid_line = false;
                        out.push(b'\n');
                    }
                    self.row = Some(row);
                    State::Text
                }
                (State::Csi, 0x40..=0x7e) => State::Text,
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
        assert_eq!(strip(&[b"[\x1b[0;32m  OK  \x1b[0m] Started\r\n"]), "[  OK  ] Started\n");
    }

    #[test]
    fn sequences_split_across_reads() {
        assert_eq!(strip(&[b"a\x1b[0;3", b"7;40mb\x1b", b"[Kc"]), "abc");
    }

    #[test]
    fn cursor_jumps_become_line_breaks() {
        assert_eq!(strip(&[b"menu\x1b[18;26HPress [Tab]\x1b[28;1H\x1b[0mboot: "]), "menu\nPress [Tab]\nboot: ");
    }

    #[test]
    fn jumps_within_a_row_join_its_text() {
        // SeaBIOS mirroring GRUB's VGA text menu (grub-unified fixture, BIOS).
        let raw = b"\x1b[05;03H*NixOS 24.05 isotest\x1b[05;35H\x1b[05;36H Installer \x1b[06;03H Options";
        assert_eq!(strip(&[raw]), "*NixOS 24.05 isotest Installer \n Options");
        // A split sequence and a row reached again after a newline.
        assert_eq!(strip(&[b"a\x1b[2;", b"1Hb\n\x1b[2;1Hc"]), "a\nb\nc");
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
        s.feed(b"\x1b[;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;H\x1b]\x1b\x1b(\xff\x1b[\x80\xc3", &mut out);
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
