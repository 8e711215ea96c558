//! Keeps the kernel's console lines from cutting other lines in two.
//!
//! The kernel prints a record on the serial console the moment it is logged
//! (at a console log level that shows it), byte for byte between the chunks the
//! tty layer sends for the shell: `hel[   12.345678] a kernel line\r\nlo\n`. A
//! pattern waiting for `hello` would never see it. Records are recognised by
//! the timestamp every line of one starts with (`[%5lu.%06lu] `, the kernel's
//! CONFIG_PRINTK_TIME, set in NixOS's and Debian's kernels) and by the notice
//! the kernel puts before a record when it had to drop some
//! (`** N printk messages dropped **`). One that starts in the middle of a
//! line is held back until that line ends, then follows it, so every line
//! reads whole and every kernel line is kept.
//!
//! A line that does not end soon (a prompt waiting for input, a guest that
//! died mid-line) must not hide a kernel line, say a panic: when the console
//! goes idle (`idle`) or too much is held, the held records are written on a
//! line of their own and the unfinished line is written again after them, so
//! that it still reads whole where it goes on.

/// At most this much is held back before it is written anyway.
const HOLD_MAX: usize = 16 * 1024;
/// The unfinished line is kept (to write it again) up to this length.
const LINE_MAX: usize = 4096;

#[derive(Debug, Default)]
pub struct KernelLines {
    /// The current line's text, as written so far.
    line: Vec<u8>,
    /// Text in the middle of a line that may be the start of a record.
    maybe: Vec<u8>,
    /// A record started in the middle of a line, until its newline.
    record: Option<Vec<u8>>,
    /// Whole records waiting for the current line to end.
    held: Vec<u8>,
}

/// A piece of the start of a record: literal bytes, or a run of a class.
enum Part {
    Lit(&'static [u8]),
    Run(fn(&u8) -> bool, usize, usize),
}

/// `[  123.456789] `: the timestamp of every kernel line.
const TIMESTAMP: &[Part] = &[
    Part::Lit(b"["),
    Part::Run(|b| *b == b' ', 0, 4),
    Part::Run(u8::is_ascii_digit, 1, 10),
    Part::Lit(b"."),
    Part::Run(u8::is_ascii_digit, 6, 6),
    Part::Lit(b"] "),
];
/// `** 12 printk messages dropped **`, which comes before a record.
const DROPPED: &[Part] = &[
    Part::Lit(b"** "),
    Part::Run(u8::is_ascii_digit, 1, 20),
    Part::Lit(b" printk messages dropped **"),
];

#[derive(Debug, PartialEq, Eq)]
enum Fit {
    /// The text is the start of a record.
    Whole,
    /// The text could still become one.
    Partial,
    No,
}

/// Whether `text` matches `parts` (the start of a record), so far or entirely.
fn fit(parts: &[Part], text: &[u8]) -> Fit {
    let mut at = 0;
    for part in parts {
        match part {
            Part::Lit(lit) => {
                let n = lit.len().min(text.len() - at);
                if text[at..at + n] != lit[..n] {
                    return Fit::No;
                }
                if n < lit.len() {
                    return Fit::Partial;
                }
                at += n;
            }
            Part::Run(class, min, max) => {
                let run = text[at..].iter().take_while(|b| class(b)).count();
                if at + run == text.len() && run < *max {
                    return Fit::Partial; // the run may go on
                }
                if run < *min || run > *max {
                    return Fit::No;
                }
                at += run;
            }
        }
    }
    if at == text.len() {
        Fit::Whole
    } else {
        Fit::No
    }
}

fn record_start(text: &[u8]) -> Fit {
    match (fit(TIMESTAMP, text), fit(DROPPED, text)) {
        (Fit::Whole, _) | (_, Fit::Whole) => Fit::Whole,
        (Fit::Partial, _) | (_, Fit::Partial) => Fit::Partial,
        _ => Fit::No,
    }
}

impl KernelLines {
    /// Appends `input` (plain text, see `ansi`) to `out`, with records moved
    /// out of the lines they interrupt.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) {
        for &b in input {
            self.byte(b, out);
        }
    }

    fn byte(&mut self, b: u8, out: &mut Vec<u8>) {
        if let Some(record) = &mut self.record {
            record.push(b);
            if b == b'\n' {
                self.held.extend(self.record.take().unwrap_or_default());
                if self.held.len() > HOLD_MAX {
                    self.write_held(out);
                }
            }
            return;
        }
        if !self.maybe.is_empty() {
            self.maybe.push(b);
            match record_start(&self.maybe) {
                Fit::Whole => self.record = Some(std::mem::take(&mut self.maybe)),
                Fit::Partial => {}
                Fit::No => {
                    // Not a record: its first byte is text, the rest is looked at again.
                    let maybe = std::mem::take(&mut self.maybe);
                    self.text(maybe[0], out);
                    self.feed(&maybe[1..], out);
                }
            }
            return;
        }
        // A record at the start of a line cuts nothing.
        if (b == b'[' || b == b'*') && !self.line.is_empty() {
            self.maybe.push(b);
            return;
        }
        self.text(b, out);
    }

    fn text(&mut self, b: u8, out: &mut Vec<u8>) {
        out.push(b);
        if b == b'\n' {
            self.line.clear();
            out.append(&mut self.held);
        } else if self.line.len() < LINE_MAX {
            self.line.push(b);
        }
    }

    /// The held records on a line of their own, then the unfinished line again.
    fn write_held(&mut self, out: &mut Vec<u8>) {
        if self.held.is_empty() {
            return;
        }
        out.push(b'\n');
        out.append(&mut self.held);
        out.extend_from_slice(&self.line);
    }

    /// Nothing came for a while: what is held is written now (see the module's
    /// comment), and text that was waiting to be told from a record is text.
    pub fn idle(&mut self, out: &mut Vec<u8>) {
        if let Some(record) = self.record.take() {
            // A record cut short (the guest stopped): kept as a line of its own.
            self.held.extend(record);
            self.held.push(b'\n');
        }
        self.write_held(out);
        let maybe = std::mem::take(&mut self.maybe);
        for b in maybe {
            self.text(b, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(chunks: &[&[u8]]) -> String {
        let mut k = KernelLines::default();
        let mut out = Vec::new();
        for c in chunks {
            k.feed(c, &mut out);
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_record_in_a_line_follows_the_line() {
        assert_eq!(
            lines(&[b"hel[   12.345678] kmsg-flood: line 7\nlo\n"]),
            "hello\n[   12.345678] kmsg-flood: line 7\n"
        );
        // Split anywhere, several in one line, one at the very end of the timestamp.
        assert_eq!(
            lines(&[
                b"ISOTEST_1",
                b"[    1.0000",
                b"00] a\n_B",
                b"1[12345.123456] b\n[123456.000001] ",
                b"c\n\nnext\n"
            ]),
            "ISOTEST_1_B1\n[    1.000000] a\n[12345.123456] b\n[123456.000001] c\nnext\n"
        );
    }

    #[test]
    fn a_record_at_the_start_of_a_line_stays_where_it_is() {
        assert_eq!(
            lines(&[b"a\n[    2.000000] k\nb\n"]),
            "a\n[    2.000000] k\nb\n"
        );
    }

    #[test]
    fn the_dropped_notice_and_its_record_follow_the_line() {
        let raw = b"0000016 6c** 3 printk messages dropped **\n[    3.000000] k\n 6c\n";
        assert_eq!(
            lines(&[raw]),
            "0000016 6c 6c\n** 3 printk messages dropped **\n[    3.000000] k\n"
        );
    }

    #[test]
    fn brackets_that_are_not_records_are_text() {
        for text in [
            "[root@rescue:~]# ls [ab] a[1] x[ 1.5] y[ 12.1234567] **bold** ** 3 printk\n",
            "x[",
            "x[ 1",
            "x*",
        ] {
            let mut k = KernelLines::default();
            let mut out = Vec::new();
            k.feed(text.as_bytes(), &mut out);
            k.idle(&mut out);
            assert_eq!(String::from_utf8(out).unwrap(), text);
        }
    }

    /// A prompt with no newline after it: on idle the record is shown on its
    /// own line and the prompt again, so a pattern finds both whole.
    #[test]
    fn idle_shows_what_is_held() {
        let mut k = KernelLines::default();
        let mut out = Vec::new();
        k.feed(
            b"rescue login: [    4.000000] Kernel panic - not syncing\n",
            &mut out,
        );
        assert_eq!(out, b"rescue login: ");
        k.idle(&mut out);
        assert_eq!(
            String::from_utf8_lossy(&out),
            "rescue login: \n[    4.000000] Kernel panic - not syncing\nrescue login: "
        );
        // Then the line goes on, and whatever follows reads whole.
        k.feed(b"root\n", &mut out);
        assert!(String::from_utf8_lossy(&out).ends_with("\nrescue login: root\n"));
        // A record cut short by a guest that stopped.
        let mut out = Vec::new();
        k.feed(b"$ [    5.000000] half", &mut out);
        k.idle(&mut out);
        assert_eq!(String::from_utf8_lossy(&out), "$ \n[    5.000000] half\n$ ");
    }

    #[test]
    fn too_much_held_is_written() {
        let mut k = KernelLines::default();
        let mut out = Vec::new();
        k.feed(b"prompt$ ", &mut out);
        for _ in 0..1000 {
            k.feed(
                b"[    6.000000] kmsg-flood: line of the console noise\n",
                &mut out,
            );
        }
        let text = String::from_utf8_lossy(&out);
        assert!(
            text.matches("kmsg-flood").count() > 300,
            "{} held lines written",
            text.matches("kmsg-flood").count()
        );
        assert!(text.ends_with("\nprompt$ "));
    }

    #[test]
    fn junk_never_panics() {
        let mut k = KernelLines::default();
        let mut out = Vec::new();
        let junk: Vec<u8> = (0..=255u8)
            .cycle()
            .take(4096)
            .chain(b"x[  1.".iter().copied())
            .collect();
        k.feed(&junk, &mut out);
        k.feed(&[0xff, b'[', 0xc3, b'*', b'*', b' ', 0x80], &mut out);
        k.idle(&mut out);
        k.idle(&mut out);
    }
}
