//! Property tests of what the console reads from the guest: the escape-sequence
//! stripper, the command framing, and GRUB's menu on the screen. The guest is
//! not ours: any byte may come, and none may panic the harness.
//!
//! Each property runs `cases(n)` generated cases (PROPTEST_CASES overrides it).

use super::ansi::AnsiStripper;
use proptest::prelude::*;
use proptest::test_runner::Config;

/// `n` cases per property, unless PROPTEST_CASES says otherwise; no files of
/// failing cases are written (a failure becomes a unit test instead).
pub(crate) fn cases(n: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(n);
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

/// The stripper's text for `input` fed in pieces cut at `cuts` (byte offsets),
/// each into a buffer of its own, as the console's reader feeds each read.
fn strip_in_pieces(input: &[u8], cuts: &[usize]) -> Vec<u8> {
    let mut stripper = AnsiStripper::default();
    let mut text = Vec::new();
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    cuts.sort_unstable();
    let mut from = 0;
    for cut in cuts.into_iter().chain([input.len()]) {
        let mut out = Vec::new();
        stripper.feed(&input[from..cut], &mut out);
        text.extend(out);
        from = cut;
    }
    text
}

fn strip(input: &[u8]) -> Vec<u8> {
    strip_in_pieces(input, &[])
}

/// Text a terminal shows as it is: printable characters (any script), spaces,
/// tabs and newlines, no control characters.
fn plain_text() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            4 => proptest::char::range(' ', '~'),
            1 => Just('\n'),
            1 => Just('\t'),
            1 => any::<char>().prop_filter("printable", |c| !c.is_control()),
        ],
        0..40,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

/// A complete escape sequence that leaves no text behind and moves no cursor to
/// another row: colours, erasing, cursor moves along a row, window titles,
/// character sets, carriage returns and other invisible control characters.
fn invisible_escape() -> impl Strategy<Value = Vec<u8>> {
    let params = proptest::collection::vec(prop_oneof![Just(b';'), Just(b'?'), b'0'..=b'9'], 0..6);
    let csi_final = (0x40u8..=0x7e).prop_filter("not a move to another row", |b| {
        !matches!(b, b'H' | b'f' | b'A' | b'B' | b'E' | b'F' | b'd')
    });
    let csi = (params, csi_final).prop_map(|(p, f)| [&b"\x1b["[..], &p, &[f]].concat());
    let title = proptest::collection::vec(0x20u8..0x7f, 0..12);
    let osc = (title, prop_oneof![Just(&b"\x07"[..]), Just(&b"\x1b\\"[..])])
        .prop_map(|(t, end)| [&b"\x1b]0;"[..], &t, end].concat());
    let charset = (
        prop::sample::select(&b"()%"[..]),
        prop::sample::select(&b"0AB@G"[..]),
    )
        .prop_map(|(k, c)| vec![0x1b, k, c]);
    let two_byte = prop::sample::select(&b"78=>"[..]).prop_map(|c| vec![0x1b, c]);
    let control =
        prop::sample::select(&[0x00u8, 0x07, 0x0d, 0x0e, 0x0f, 0x7f][..]).prop_map(|c| vec![c]);
    prop_oneof![4 => csi, 1 => osc, 1 => charset, 1 => two_byte, 2 => control]
}

/// A cursor jump (`ESC [ row ; col H`), a move up or down, or a reset (`ESC
/// c`): the stripper may turn it into a newline.
fn cursor_jump() -> impl Strategy<Value = Vec<u8>> {
    let jump = (0u8..30, 0u8..80, prop::sample::select(&b"Hf"[..]))
        .prop_map(|(r, c, f)| format!("\x1b[{r};{c}{}", f as char).into_bytes());
    let vertical = (0u8..5, prop::sample::select(&b"ABEFd"[..]))
        .prop_map(|(n, f)| format!("\x1b[{n}{}", f as char).into_bytes());
    let two_byte = prop::sample::select(&b"cDEM"[..]).prop_map(|c| vec![0x1b, c]);
    prop_oneof![6 => jump, 2 => vertical, 1 => two_byte]
}

/// Escape junk: the start of a sequence cut short (a lone ESC, a CSI without
/// its final byte, a title without its end).
fn cut_escape() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"\x1b".to_vec()),
        Just(b"\x1b[".to_vec()),
        Just(b"\x1b[0;3".to_vec()),
        Just(b"\x1b]0;title".to_vec()),
        Just(b"\x1b(".to_vec()),
    ]
}

/// `text` (cut at character boundaries) with `escapes` put between its pieces.
fn interleave(text: &str, escapes: &[(usize, Vec<u8>)]) -> Vec<u8> {
    let bounds: Vec<usize> = text
        .char_indices()
        .map(|(i, _)| i)
        .chain([text.len()])
        .collect();
    let mut at: Vec<(usize, &[u8])> = escapes
        .iter()
        .map(|(i, e)| (bounds[i % bounds.len()], e.as_slice()))
        .collect();
    at.sort_by_key(|(i, _)| *i);
    let mut out = Vec::new();
    let mut from = 0;
    for (i, escape) in at {
        out.extend_from_slice(&text.as_bytes()[from..i]);
        out.extend_from_slice(escape);
        from = i;
    }
    out.extend_from_slice(&text.as_bytes()[from..]);
    out
}

mod ansi {
    use super::*;

    proptest! {
        #![proptest_config(cases(256))]

        /// Any bytes, in any pieces: no panic, no escape or control character
        /// left but newlines and tabs, and the same text however the bytes were
        /// cut into reads.
        #[test]
        fn any_bytes_in_any_pieces(input in proptest::collection::vec(any::<u8>(), 0..300),
                                   cuts in proptest::collection::vec(any::<usize>(), 0..8)) {
            let whole = strip(&input);
            prop_assert_eq!(&strip_in_pieces(&input, &cuts), &whole);
            prop_assert!(whole.iter().all(|&b| b >= 0x20 && b != 0x7f || b == b'\n' || b == b'\t' || b >= 0x80), "{whole:?}");
        }

        /// Any bytes after escape junk: still no panic, and the same in pieces.
        #[test]
        fn junk_then_any_bytes(junk in cut_escape(), input in proptest::collection::vec(any::<u8>(), 0..100),
                               cuts in proptest::collection::vec(any::<usize>(), 0..4)) {
            let input = [junk, input].concat();
            prop_assert_eq!(strip_in_pieces(&input, &cuts), strip(&input));
        }

        /// Printable text without escapes comes through unchanged.
        #[test]
        fn plain_text_passes_through(text in plain_text(), cuts in proptest::collection::vec(any::<usize>(), 0..4)) {
            prop_assert_eq!(String::from_utf8(strip_in_pieces(text.as_bytes(), &cuts)).unwrap(), text);
        }

        /// Text with escape sequences put anywhere between its characters comes
        /// back as the text.
        #[test]
        fn escapes_inserted_give_the_text_back(text in plain_text(),
                                               escapes in proptest::collection::vec((any::<usize>(), invisible_escape()), 0..8),
                                               cuts in proptest::collection::vec(any::<usize>(), 0..4)) {
            let input = interleave(&text, &escapes);
            prop_assert_eq!(String::from_utf8(strip_in_pieces(&input, &cuts)).unwrap(), text);
        }

        /// Cursor jumps add line breaks, and nothing else.
        #[test]
        fn cursor_jumps_only_add_line_breaks(text in plain_text(),
                                             escapes in proptest::collection::vec((any::<usize>(), prop_oneof![invisible_escape(), cursor_jump()]), 0..8)) {
            let out = String::from_utf8(strip(&interleave(&text, &escapes))).unwrap();
            prop_assert_eq!(out.replace('\n', ""), text.replace('\n', ""));
        }

        /// A screen painted as SeaBIOS mirrors VGA text: after a reset, lines
        /// that each fit the screen's width, ended by `\r\n`, with jumps to
        /// the row the cursor is on anywhere inside them, never so far right
        /// that the rest of the line passes column 80 (the row is followed
        /// through the newlines): the text of the lines, no line broken.
        #[test]
        fn jumps_along_the_row_reached_by_newlines_break_nothing(
            lines in proptest::collection::vec(proptest::collection::vec(proptest::char::range('!', '~'), 1..40), 1..8),
            jumps in proptest::collection::vec((any::<usize>(), any::<usize>(), 0u8..=40), 0..12),
            cuts in proptest::collection::vec(any::<usize>(), 0..4)) {
            let mut input = b"\x1bc\x1b[?7l\x1b[2J".to_vec();
            for (row, line) in lines.iter().enumerate() {
                let here: Vec<(usize, Vec<u8>)> = jumps
                    .iter()
                    .filter(|(r, _, _)| r % lines.len() == row)
                    .map(|(_, at, col)| (*at, format!("\x1b[{:02};{:02}H", row + 1, col).into_bytes()))
                    .collect();
                input.extend(interleave(&line.iter().collect::<String>(), &here));
                input.extend_from_slice(b"\r\n");
            }
            let want: String = lines.iter().map(|l| format!("{}\n", l.iter().collect::<String>())).collect();
            prop_assert_eq!(String::from_utf8(strip_in_pieces(&input, &cuts)).unwrap(), want);
        }

        /// Cursor jumps give the same text however the bytes were cut into reads.
        #[test]
        fn cursor_jumps_in_pieces(text in plain_text(),
                                  escapes in proptest::collection::vec((any::<usize>(), prop_oneof![invisible_escape(), cursor_jump()]), 0..8),
                                  cuts in proptest::collection::vec(any::<usize>(), 0..8)) {
            let input = interleave(&text, &escapes);
            prop_assert_eq!(strip_in_pieces(&input, &cuts), strip(&input));
        }
    }
}

/// The framing of console commands (`shell`) against a guest that says anything
/// around a command's output: the console reader, the stripper and the markers
/// together, as `Shell::run` uses them.
mod framing {
    use super::*;
    use crate::console::serial::SerialConsole;
    use crate::console::shell::{CommandOutput, Shell};
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;
    use std::time::Duration;

    /// One piece of what the guest prints. Markers are symbolic: the guest
    /// learns the command's nonce only when the command arrives.
    #[derive(Debug, Clone)]
    enum Piece {
        Bytes(Vec<u8>),
        /// This command's end marker (`<tag>_E<id>:<status>`), cut after
        /// `keep` bytes and broken off by a `#`: a line the guest never finished.
        CutEnd {
            keep: usize,
        },
        /// This command's begin marker cut short the same way.
        CutBegin {
            keep: usize,
        },
        /// A whole marker of an earlier command, or of a neighbouring number
        /// under this command's nonce: neither may be taken for this one's.
        Stale {
            begin: bool,
            earlier: usize,
            id_offset: u64,
        },
    }

    /// Line ends as a guest's terminal may send them.
    fn line_end() -> impl Strategy<Value = &'static [u8]> {
        const ENDS: [&[u8]; 4] = [b"\n", b"\r\n", b"\r\r\n", b"\n\r"];
        prop::sample::select(&ENDS[..])
    }

    fn piece() -> impl Strategy<Value = Piece> {
        prop_oneof![
            4 => plain_text().prop_map(|t| Piece::Bytes(t.into_bytes())),
            2 => invisible_escape().prop_map(Piece::Bytes),
            1 => cursor_jump().prop_map(Piece::Bytes),
            1 => line_end().prop_map(|e| Piece::Bytes(e.to_vec())),
            // Invalid UTF-8: lone continuation bytes, a cut multi-byte character.
            1 => cut_escape().prop_map(Piece::Bytes),
            1 => prop_oneof![Just(vec![0x80u8]), Just(vec![0xff]), Just(vec![0xe2, 0x94])].prop_map(Piece::Bytes),
            1 => (0usize..40).prop_map(|keep| Piece::CutEnd { keep }),
            1 => (0usize..40).prop_map(|keep| Piece::CutBegin { keep }),
            1 => (any::<bool>(), any::<usize>(), 0u64..3).prop_map(|(begin, earlier, id_offset)| Piece::Stale { begin, earlier, id_offset }),
        ]
    }

    /// What the guest does for one command.
    #[derive(Debug, Clone)]
    struct Exchange {
        /// Whether the terminal echoes the command as typed.
        echo: bool,
        before: Vec<Piece>,
        output: Vec<Piece>,
        status: i32,
        after: Vec<Piece>,
        line_end: &'static [u8],
        /// Where the guest's writes are cut (byte offsets).
        cuts: Vec<usize>,
    }

    fn exchange() -> impl Strategy<Value = Exchange> {
        let pieces = || proptest::collection::vec(piece(), 0..6);
        let status = prop_oneof![3 => 0..=255i32, 1 => any::<i32>()];
        let cuts = proptest::collection::vec(any::<usize>(), 0..6);
        (
            any::<bool>(),
            pieces(),
            pieces(),
            status,
            pieces(),
            line_end(),
            cuts,
        )
            .prop_map(
                |(echo, before, output, status, after, line_end, cuts)| Exchange {
                    echo,
                    before,
                    output,
                    status,
                    after,
                    line_end,
                    cuts,
                },
            )
    }

    /// A command's nonce and number, as the guest read them off the command.
    #[derive(Debug, Clone)]
    struct Marks {
        tag: String,
        id: u64,
    }

    impl Piece {
        /// The bytes of this piece for the command marked `now`, after `seen`.
        fn render(&self, now: &Marks, status: i32, seen: &[Marks]) -> Vec<u8> {
            let cut = |marker: String, keep: usize| {
                let keep = keep.min(marker.len() - 1);
                [&marker.as_bytes()[..keep], b"#"].concat()
            };
            match self {
                Piece::Bytes(b) => b.clone(),
                Piece::CutEnd { keep } => cut(format!("{}_E{}:{status}\n", now.tag, now.id), *keep),
                Piece::CutBegin { keep } => cut(format!("{}_B{}\n", now.tag, now.id), *keep),
                Piece::Stale {
                    begin,
                    earlier,
                    id_offset,
                } => {
                    let marks = match seen {
                        [] => Marks {
                            tag: now.tag.clone(),
                            id: now.id + 1 + id_offset,
                        },
                        _ => seen[earlier % seen.len()].clone(),
                    };
                    let kind = if *begin {
                        format!("B{}", marks.id)
                    } else {
                        format!("E{}:0", marks.id)
                    };
                    format!("\n{}_{kind}\n", marks.tag).into_bytes()
                }
            }
        }
    }

    /// One framed command as the guest's shell sees it: its marks and the two
    /// `printf` formats that print its markers.
    struct Framed {
        typed: Vec<u8>,
        marks: Marks,
        begin_format: String,
        end_format: String,
    }

    /// Reads one framed command off the console.
    fn read_command(stream: &mut UnixStream) -> Framed {
        let shape = regex::bytes::Regex::new(
            r#"(?s)^printf '([^']*)' (ISOTEST_[0-9a-f]{16}) B([0-9]+); \{\n.*\n\} </dev/null >/tmp/ISOTEST_[0-9a-f]{16} 2>&1; isotest_status=\$\?; od -A d -v -t x1 /tmp/ISOTEST_[0-9a-f]{16}; printf '([^']*)' ISOTEST_[0-9a-f]{16} E[0-9]+ "\$isotest_status"\n$"#,
        )
        .unwrap();
        let mut typed = Vec::new();
        let mut byte = [0u8];
        while !typed.ends_with(b"\"$isotest_status\"\n") {
            stream.read_exact(&mut byte).expect("the command");
            typed.push(byte[0]);
        }
        let caps = shape.captures(&typed).expect("a framed command");
        let text = |i: usize| String::from_utf8(caps[i].to_vec()).unwrap();
        let marks = Marks {
            tag: text(2),
            id: text(3).parse().unwrap(),
        };
        let (begin_format, end_format) = (text(1), text(4));
        Framed {
            typed,
            marks,
            begin_format,
            end_format,
        }
    }

    /// What `printf FORMAT ARGS...` prints, for the formats the framing uses:
    /// `%s`, `\n`, `\\` and octal `\NNN`.
    fn printf(format: &str, args: &[&str]) -> Vec<u8> {
        let (mut out, mut args) = (Vec::new(), args.iter());
        let mut bytes = format.bytes().peekable();
        while let Some(b) = bytes.next() {
            match (b, bytes.peek().copied()) {
                (b'%', Some(b's')) => {
                    bytes.next();
                    out.extend_from_slice(args.next().expect("an argument").as_bytes());
                }
                (b'\\', Some(b'n')) => {
                    bytes.next();
                    out.push(b'\n');
                }
                (b'\\', Some(b'0'..=b'7')) => {
                    let mut value = 0u32;
                    for _ in 0..3 {
                        match bytes.peek() {
                            Some(&d @ b'0'..=b'7') => {
                                value = value * 8 + u32::from(d - b'0');
                                bytes.next();
                            }
                            _ => break,
                        }
                    }
                    out.push(value as u8); // printf keeps the low byte of `\\400` and up
                }
                (b'\\', Some(b'\\')) => {
                    bytes.next();
                    out.push(b'\\');
                }
                _ => out.push(b),
            }
        }
        out
    }

    /// What `od -A d -v -t x1` prints for a file holding `bytes`: numbered
    /// rows of 16 bytes in hex, then the total alone.
    fn od(bytes: &[u8]) -> Vec<u8> {
        let mut out = String::new();
        for (row, chunk) in bytes.chunks(16).enumerate() {
            out.push_str(&format!("{:07}", row * 16));
            chunk
                .iter()
                .for_each(|b| out.push_str(&format!(" {b:02x}")));
            out.push('\n');
        }
        out.push_str(&format!("{:07}\n", bytes.len()));
        out.into_bytes()
    }

    /// A terminal's output processing: each newline goes out as `line_end`.
    fn with_line_ends(bytes: &[u8], line_end: &[u8]) -> Vec<u8> {
        bytes
            .split(|&b| b == b'\n')
            .collect::<Vec<_>>()
            .join(line_end)
    }

    /// The guest: for each command it reads, what `exchange` says around the
    /// markers its `printf`s print, written in the pieces it says.
    fn guest(mut stream: UnixStream, exchanges: Vec<Exchange>) -> std::thread::JoinHandle<()> {
        std::thread::spawn(move || {
            let mut seen: Vec<Marks> = Vec::new();
            for x in exchanges {
                let framed = read_command(&mut stream);
                let now = framed.marks.clone();
                let render = |pieces: &[Piece]| -> Vec<u8> {
                    pieces
                        .iter()
                        .flat_map(|p| p.render(&now, x.status, &seen))
                        .collect()
                };
                let status = x.status.to_string();
                let mut bytes = Vec::new();
                if x.echo {
                    bytes.extend(with_line_ends(&framed.typed, x.line_end));
                }
                bytes.extend(render(&x.before));
                let begin = printf(&framed.begin_format, &[&now.tag, &format!("B{}", now.id)]);
                bytes.extend(with_line_ends(&begin, x.line_end));
                // The command's output is a file, which `od` lists on the console.
                bytes.extend(with_line_ends(&od(&render(&x.output)), x.line_end));
                let end = printf(
                    &framed.end_format,
                    &[&now.tag, &format!("E{}", now.id), &status],
                );
                bytes.extend(with_line_ends(&end, x.line_end));
                bytes.extend(render(&x.after));
                let mut cuts: Vec<usize> = x.cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
                cuts.sort_unstable();
                let mut from = 0;
                for cut in cuts.into_iter().chain([bytes.len()]) {
                    if stream.write_all(&bytes[from..cut]).is_err() {
                        return;
                    }
                    from = cut;
                }
                seen.push(now);
            }
        })
    }

    /// The output the command's pieces must come back as: their plain text
    /// (the guest knows no marker of this command's but the ones it cut).
    fn expected_output(x: &Exchange, tag: &str, id: u64, seen: &[Marks]) -> String {
        let now = Marks {
            tag: tag.to_owned(),
            id,
        };
        let bytes: Vec<u8> = x
            .output
            .iter()
            .flat_map(|p| p.render(&now, x.status, seen))
            .collect();
        String::from_utf8_lossy(&strip(&bytes)).into_owned()
    }

    proptest! {
        #![proptest_config(cases(64))]

        /// Each command's output comes back exactly, with its status, whatever
        /// the guest printed around it, and the next command is still in step.
        #[test]
        fn exact_output_and_status_around_noise(exchanges in proptest::collection::vec(exchange(), 1..4)) {
            let dir = tempfile::tempdir().unwrap();
            let (ours, theirs) = UnixStream::pair().unwrap();
            let guest = guest(theirs, exchanges.clone());
            let mut console = SerialConsole::attach(ours, dir.path()).unwrap();
            let mut shell = Shell::new(&mut console, 1);
            let mut seen = Vec::new();
            for (i, x) in exchanges.iter().enumerate() {
                let got = shell.run(&format!("command {i}"), Duration::from_secs(10));
                // The marks the guest saw: read back from the transcript's begin marker.
                let got = got.map_err(|e| TestCaseError::fail(format!("command {i}: {e}")))?;
                let (tag, id) = last_marks(shell.console(), i as u64 + 1);
                prop_assert_eq!(&got, &CommandOutput { output: expected_output(x, &tag, id, &seen), status: x.status });
                seen.push(Marks { tag, id });
            }
            drop(console);
            guest.join().unwrap();
        }
    }

    /// The nonce of command `id`, read from the console's raw bytes.
    fn last_marks(console: &mut SerialConsole, id: u64) -> (String, u64) {
        let raw = console.raw_since(0);
        let re =
            regex::bytes::Regex::new(&format!(r"(ISOTEST_[0-9a-f]{{16}})_B{id}[\r\n]")).unwrap();
        let caps = re.captures_iter(&raw).last().expect("the begin marker");
        (String::from_utf8(caps[1].to_vec()).unwrap(), id)
    }
}

/// The screen model that reads GRUB's menu off the console when the ISO holds
/// no grub.cfg: any bytes, GRUB's words among them, never panic.
mod screen {
    use super::*;
    use crate::menu::screen::Screen;

    fn grub_screen_bytes() -> impl Strategy<Value = Vec<u8>> {
        let token = prop_oneof![
            Just(b"GNU GRUB  version 2.12".to_vec()),
            Just(b"Use the ^ and v keys".to_vec()),
            Just(b"Minimum Emacs-like screen editing".to_vec()),
            Just("|│*".as_bytes().to_vec()),
            Just(b"    linux /boot/bzImage".to_vec()),
            Just(b"\r\n".to_vec()),
            cursor_jump(),
            invisible_escape(),
            cut_escape(),
            proptest::collection::vec(any::<u8>(), 0..8),
        ];
        proptest::collection::vec(token, 0..60).prop_map(|t| t.concat())
    }

    proptest! {
        #![proptest_config(cases(256))]

        #[test]
        fn any_bytes_never_panic(bytes in prop_oneof![proptest::collection::vec(any::<u8>(), 0..400), grub_screen_bytes()]) {
            let screen = Screen::from_bytes(&bytes);
            if let Some(menu) = screen.grub_menu() {
                prop_assert!(menu.highlighted < menu.items.len().max(1), "{menu:?}");
            }
            let _ = screen.grub_editor_linux_line();
        }
    }
}
