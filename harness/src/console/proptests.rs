//! Property tests of what the console reads from the guest: the escape-sequence
//! stripper, the command framing, and the GRUB and isolinux configurations. The
//! guest is not ours: any byte may come, and none may panic the harness.
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

/// GRUB's grub.cfg and isolinux.cfg as ISOs may have them: any text never
/// panics the parsers, and a generated configuration gives back the menu it
/// was generated from.
mod menus {
    use super::*;
    use crate::console::grub::{GrubItem, GrubMenu, GrubPlan};
    use crate::console::menu::{IsolinuxMenu, MenuEntry};
    use regex::Regex;

    const CONSOLE: &str = "console=ttyS0,115200n8";

    /// The items a plan's steps lead to, level by level: each step's target
    /// exists, every step but the last enters a submenu, and the last is an
    /// entry with the plan's title.
    fn follow(menu: &GrubMenu, plan: &GrubPlan) -> Result<(), TestCaseError> {
        let mut level = &menu.items;
        prop_assert!(!plan.steps.is_empty());
        prop_assert_eq!(plan.steps[0].from, menu.default);
        for (depth, step) in plan.steps.iter().enumerate() {
            prop_assert!(
                step.to < level.len(),
                "step {depth} to {} of {}",
                step.to,
                level.len()
            );
            prop_assert_eq!(
                Some(step.last_title.as_str()),
                level.last().map(GrubItem::title)
            );
            match &level[step.to] {
                GrubItem::Submenu { items, .. } if depth + 1 < plan.steps.len() => level = items,
                GrubItem::Entry { title, body } if depth + 1 == plan.steps.len() => {
                    prop_assert_eq!(title, &plan.title);
                    if let Some(edit) = &plan.edit {
                        prop_assert!(
                            body[edit.line].starts_with("linux"),
                            "{:?} in {body:?}",
                            edit
                        );
                    }
                }
                other => prop_assert!(false, "step {depth} ends on {other:?}"),
            }
        }
        Ok(())
    }

    /// GRUB's words, braces and quotes, and some of anything: text shaped
    /// enough like grub.cfg to reach the parser's corners.
    fn grub_like_text() -> impl Strategy<Value = String> {
        let token = prop_oneof![
            Just("menuentry ".to_owned()),
            Just("submenu ".to_owned()),
            Just("hiddenentry ".to_owned()),
            Just("{".to_owned()),
            Just("}".to_owned()),
            Just("'".to_owned()),
            Just("\"".to_owned()),
            Just("\n".to_owned()),
            Just(" ".to_owned()),
            Just("set default=".to_owned()),
            Just("--hotkey ".to_owned()),
            Just("--hotkey=".to_owned()),
            Just("linux /boot/bzImage console=ttyS0 ".to_owned()),
            Just("terminal_output console".to_owned()),
            Just(";".to_owned()),
            "[0-9]{1,3}",
            any::<char>().prop_map(String::from),
        ];
        proptest::collection::vec(token, 0..80).prop_map(|t| t.concat())
    }

    fn isolinux_like_text() -> impl Strategy<Value = String> {
        let token = prop_oneof![
            Just("LABEL ".to_owned()),
            Just("label\t".to_owned()),
            Just("MENU ".to_owned()),
            Just("LABEL".to_owned()),
            Just("APPEND ".to_owned()),
            Just("DEFAULT ".to_owned()),
            Just("console=ttyS0 ".to_owned()),
            Just("\n".to_owned()),
            Just(" ".to_owned()),
            "[a-z0-9]{1,5}",
            any::<char>().prop_map(String::from),
        ];
        proptest::collection::vec(token, 0..60).prop_map(|t| t.concat())
    }

    /// A title as grub.cfg writes it, and the title GRUB shows.
    #[derive(Debug, Clone)]
    struct Title {
        written: String,
        shown: String,
    }

    /// A title of one to three adjacent parts (one word to GRUB): single-quoted,
    /// double-quoted with backslash escapes, or plain with escaped characters.
    fn title() -> impl Strategy<Value = Title> {
        let printable = || prop_oneof![8 => proptest::char::range(' ', '~'), 1 => any::<char>().prop_filter("printable", |c| !c.is_control())];
        let single =
            proptest::collection::vec(printable().prop_filter("not '", |&c| c != '\''), 0..12)
                .prop_map(|t| Title {
                    written: format!("'{}'", String::from_iter(&t)),
                    shown: String::from_iter(t),
                });
        // In double quotes `\$`, `\"` and `\\` are escapes; a backslash before
        // anything else is itself.
        let double_char = prop_oneof![
            6 => printable().prop_filter("plain", |c| !matches!(c, '"' | '\\' | '$')).prop_map(|c| (c.to_string(), c.to_string())),
            1 => prop::sample::select(&['"', '\\', '$'][..]).prop_map(|c| (format!("\\{c}"), c.to_string())),
            1 => Just(("\\t".to_owned(), "\\t".to_owned())),
        ];
        let double = proptest::collection::vec(double_char, 0..12).prop_map(|parts| {
            let (written, shown): (Vec<String>, Vec<String>) = parts.into_iter().unzip();
            Title {
                written: format!("\"{}\"", written.concat()),
                shown: shown.concat(),
            }
        });
        // Outside quotes a backslash keeps any character, a space or a quote too.
        let plain_char = prop_oneof![
            6 => "[A-Za-z0-9._,=()@+-]".prop_map(|c| (c.clone(), c)),
            1 => printable().prop_map(|c| (format!("\\{c}"), c.to_string())),
        ];
        let plain = proptest::collection::vec(plain_char, 1..10).prop_map(|parts| {
            let (written, shown): (Vec<String>, Vec<String>) = parts.into_iter().unzip();
            Title {
                written: written.concat(),
                shown: shown.concat(),
            }
        });
        let part = prop_oneof![single, double, plain];
        proptest::collection::vec(part, 1..4).prop_map(|parts| Title {
            written: parts.iter().map(|p| p.written.as_str()).collect(),
            shown: parts.iter().map(|p| p.shown.as_str()).collect(),
        })
    }

    /// Options after the title that do not change the menu.
    fn options() -> impl Strategy<Value = String> {
        let option = prop::sample::select(
            &[
                "--class installer",
                "--class hidpi",
                "--id nixos",
                "--unrestricted",
                "--users ''",
            ][..],
        );
        proptest::collection::vec(option, 0..3)
            .prop_map(|o| o.iter().map(|o| format!(" {o}")).collect())
    }

    /// The lines of an entry's body: none opens a brace it does not close.
    fn body() -> impl Strategy<Value = Vec<String>> {
        let line = prop::sample::select(
            &[
                "linux /boot/bzImage ${isoboot} init=/nix/store/x/init loglevel=4",
                "linux /boot/bzImage init=/x console=ttyS0,115200n8",
                "linuxefi /boot/vmlinuz console=ttyS0",
                "initrd /boot/initrd",
                "terminal_output console",
                "terminal_output gfxterm console",
                "terminal_output gfxterm",
                "set textmode=true",
                "if [ \"$textmode\" == \"false\" ]; then",
                "fi",
                "# Fallback to UEFI console for boot",
                "echo \"Loading ${kernel}\"",
                "fwsetup",
                "",
            ][..],
        );
        proptest::collection::vec(line.prop_map(str::to_owned), 0..5)
    }

    /// Top-level or submenu lines that are no menu item.
    fn junk() -> impl Strategy<Value = Vec<String>> {
        let line = prop::sample::select(
            &[
                "set timeout=10",
                "serial --unit=0 --speed=115200",
                "terminal_output console serial",
                "if [ ${iso_path} ] ; then",
                "  set isoboot=\"findiso=${iso_path}\"",
                "fi",
                "# menuentry 'commented out'",
                "echo \"Press 't' to use the text boot menu\"",
                "",
            ][..],
        );
        proptest::collection::vec(line.prop_map(str::to_owned), 0..3)
    }

    /// A menu item as generated: what to write, and what GRUB counts.
    #[derive(Debug, Clone)]
    enum Node {
        Entry {
            title: Title,
            options: String,
            hidden: bool,
            hotkey: Option<(char, u8)>,
            body: Vec<String>,
            one_line: bool,
        },
        Submenu {
            title: Title,
            options: String,
            items: Vec<(Vec<String>, Node)>,
        },
        /// `submenu "" {return}`.
        Separator,
    }

    fn entry() -> impl Strategy<Value = Node> {
        let hotkey =
            proptest::option::of(("[a-z0-9]".prop_map(|k| k.chars().next().unwrap()), 0u8..3));
        (
            title(),
            options(),
            any::<bool>(),
            hotkey,
            body(),
            any::<bool>(),
        )
            .prop_map(|(title, options, hidden, hotkey, body, one_line)| {
                // One-line bodies are `;`-separated commands: none empty, none
                // holding a `;`, no comment (it would run to the end of the line).
                let command = |l: &String| !l.is_empty() && !l.starts_with('#') && !l.contains(';');
                let body = if one_line {
                    body.into_iter().filter(command).collect()
                } else {
                    body
                };
                Node::Entry {
                    title,
                    options,
                    hidden,
                    hotkey,
                    body,
                    one_line,
                }
            })
    }

    fn node() -> impl Strategy<Value = Node> {
        let leaf = prop_oneof![4 => entry(), 1 => Just(Node::Separator)];
        leaf.prop_recursive(3, 24, 5, |inner| {
            (
                title(),
                options(),
                proptest::collection::vec((junk(), inner), 0..5),
            )
                .prop_map(|(title, options, items)| Node::Submenu {
                    title,
                    options,
                    items,
                })
        })
    }

    impl Node {
        fn write(&self, indent: usize, out: &mut Vec<String>) {
            let pad = " ".repeat(indent);
            match self {
                Node::Entry {
                    title,
                    options,
                    hidden,
                    hotkey,
                    body,
                    one_line,
                } => {
                    let keyword = if *hidden { "hiddenentry" } else { "menuentry" };
                    let hotkey = match hotkey {
                        None => String::new(),
                        Some((k, 0)) => format!(" --hotkey '{k}'"),
                        Some((k, 1)) => format!(" --hotkey={k}"),
                        Some((k, _)) => format!(" --hotkey \"{k}\""),
                    };
                    let head = format!("{pad}{keyword} {}{options}{hotkey}", title.written);
                    if *one_line {
                        out.push(format!("{head} {{ {} }}", body.join(" ; ")));
                    } else {
                        out.push(format!("{head} {{"));
                        out.extend(body.iter().map(|l| format!("{pad}  {l}")));
                        out.push(format!("{pad}}}"));
                    }
                }
                Node::Submenu {
                    title,
                    options,
                    items,
                } => {
                    out.push(format!("{pad}submenu {}{options} {{", title.written));
                    for (junk, item) in items {
                        out.extend(junk.iter().map(|l| format!("{pad}  {l}")));
                        item.write(indent + 2, out);
                    }
                    out.push(format!("{pad}}}"));
                }
                Node::Separator => out.push(format!("{pad}submenu \"\" {{return}}")),
            }
        }

        /// What GRUB draws and counts for this node: hidden entries are neither.
        fn shown(&self) -> Option<GrubItem> {
            match self {
                Node::Entry { hidden: true, .. } => None,
                Node::Entry { title, body, .. } => Some(GrubItem::Entry {
                    title: title.shown.clone(),
                    body: body.clone(),
                }),
                Node::Submenu { title, items, .. } => Some(GrubItem::Submenu {
                    title: title.shown.clone(),
                    items: items.iter().filter_map(|(_, n)| n.shown()).collect(),
                }),
                Node::Separator => Some(GrubItem::Submenu {
                    title: String::new(),
                    items: Vec::new(),
                }),
            }
        }

        /// The first hotkey, in file order, of an entry that moves GRUB to the text console.
        fn text_mode_key(&self) -> Option<char> {
            match self {
                Node::Entry {
                    hotkey: Some((k, _)),
                    body,
                    ..
                } => body
                    .iter()
                    .any(|l| {
                        l.starts_with("terminal_output")
                            && l.split_whitespace().any(|w| w == "console")
                    })
                    .then_some(*k),
                Node::Submenu { items, .. } => items.iter().find_map(|(_, n)| n.text_mode_key()),
                _ => None,
            }
        }
    }

    /// A whole grub.cfg: items among junk, and maybe a `set default=N`.
    #[derive(Debug, Clone)]
    struct GrubCfg {
        items: Vec<(Vec<String>, Node)>,
        default: Option<(usize, u8)>,
    }

    fn grub_cfg() -> impl Strategy<Value = GrubCfg> {
        let items = proptest::collection::vec((junk(), node()), 0..6);
        let default = proptest::option::of((0usize..8, 0u8..3));
        (items, default).prop_map(|(items, default)| GrubCfg { items, default })
    }

    impl GrubCfg {
        fn text(&self) -> String {
            let mut out = Vec::new();
            match self.default {
                Some((n, 0)) => out.push(format!("set default={n}")),
                Some((n, 1)) => out.push(format!("set default=\"{n}\"")),
                Some((n, _)) => out.push(format!("set default='{n}'")),
                None => {}
            }
            for (junk, item) in &self.items {
                out.extend(junk.iter().cloned());
                item.write(0, &mut out);
            }
            out.join("\n") + "\n"
        }

        fn menu(&self) -> GrubMenu {
            let items: Vec<GrubItem> = self.items.iter().filter_map(|(_, n)| n.shown()).collect();
            let default = self.default.map_or(0, |(n, _)| n);
            GrubMenu {
                default: if default < items.len() { default } else { 0 },
                items,
                text_mode_key: self.items.iter().find_map(|(_, n)| n.text_mode_key()),
            }
        }
    }

    /// An isolinux.cfg as generated: its text and the menu it declares.
    fn isolinux_cfg() -> impl Strategy<Value = (String, IsolinuxMenu)> {
        let keyword = |k: &'static str| {
            prop_oneof![
                Just(k.to_owned()),
                Just(k.to_ascii_lowercase()),
                Just(k[..1].to_owned() + &k[1..].to_ascii_lowercase())
            ]
        };
        let space = prop::sample::select(&[" ", "  ", "\t", " \t"][..]);
        let indent = prop::sample::select(&["", "  ", "\t"][..]);
        let junk = prop::sample::select(
            &[
                "TIMEOUT 100",
                "UI vesamenu.c32",
                "SERIAL 0 115200",
                "MENU TITLE NixOS",
                "# LABEL commented",
                "PROMPT 0",
                "MENU SEPARATOR",
                "",
            ][..],
        );
        let entry = (
            "[a-z0-9-]{0,10}",
            proptest::option::of("[ -~]{0,30}"),
            proptest::option::of(prop::sample::select(
                &[
                    "init=/x loglevel=4",
                    "init=/x console=ttyS0,115200n8",
                    "console=tty0 quiet",
                    "",
                ][..],
            )),
            (
                keyword("LABEL"),
                keyword("MENU"),
                keyword("LABEL"),
                keyword("APPEND"),
                keyword("LINUX"),
            ),
            (space.clone(), space, indent.clone(), indent),
            junk.clone(),
        );
        let default = proptest::option::of("[a-z0-9-]{1,10}");
        (proptest::collection::vec(entry, 0..6), default, junk).prop_map(
            |(entries, default, junk)| {
                let mut lines = vec![junk.to_owned()];
                let mut menu = IsolinuxMenu {
                    default: None,
                    entries: Vec::new(),
                };
                if let Some(d) = default {
                    lines.push(format!("DEFAULT {d}"));
                    menu.default = Some(d);
                }
                for (
                    label,
                    menu_label,
                    append,
                    (k_label, k_menu, k_menu_label, k_append, k_linux),
                    (sp1, sp2, in1, in2),
                    junk,
                ) in entries
                {
                    lines.push(format!("{in1}{k_label}{sp1}{label}"));
                    lines.push(format!("{in2}{k_linux} /boot/bzImage"));
                    if let Some(text) = &menu_label {
                        lines.push(format!("{in2}{k_menu}{sp2}{k_menu_label}{sp1}{text}"));
                    }
                    if let Some(args) = append {
                        lines.push(format!("{in2}{k_append}{sp2}{args}"));
                    }
                    lines.push(junk.to_owned());
                    menu.entries.push(MenuEntry {
                        label: label.trim().to_owned(),
                        menu_label: menu_label.map(|t| t.trim().to_owned()).unwrap_or_default(),
                        append: append.unwrap_or_default().to_owned(),
                    });
                }
                (lines.join("\n"), menu)
            },
        )
    }

    proptest! {
        #![proptest_config(cases(256))]

        /// Any text, or text shaped like grub.cfg: a menu, never a panic, and
        /// every plan it gives leads through the menu to the entry it names.
        #[test]
        fn grub_any_text(text in prop_oneof![any::<String>(), grub_like_text()], pattern in "[a-z ]{0,3}") {
            let menu = GrubMenu::parse(&text);
            prop_assert!(menu.default == 0 || menu.default < menu.items.len());
            if let Ok(plan) = menu.choose(None, CONSOLE) {
                follow(&menu, &plan)?;
            }
            if let Ok(plan) = menu.choose(Some(&Regex::new(&regex::escape(&pattern)).unwrap()), CONSOLE) {
                follow(&menu, &plan)?;
            }
        }

        /// A generated grub.cfg (nested submenus, separators, hidden entries,
        /// quoted titles, one-line entries) parses to the menu it was made from.
        #[test]
        fn grub_generated(cfg in grub_cfg()) {
            let text = cfg.text();
            let menu = GrubMenu::parse(&text);
            prop_assert_eq!(&menu, &cfg.menu(), "{}", text);
            if let Ok(plan) = menu.choose(None, CONSOLE) {
                follow(&menu, &plan)?;
            }
        }

        /// Any text, or text shaped like isolinux.cfg: a menu, never a panic,
        /// and a choice names one of its entries.
        #[test]
        fn isolinux_any_text(text in prop_oneof![any::<String>(), isolinux_like_text()]) {
            let menu = IsolinuxMenu::parse(&text);
            if let Ok(choice) = menu.choose(None, CONSOLE) {
                prop_assert!(menu.entries.iter().any(|e| e.label == choice.label));
            }
        }

        /// A generated isolinux.cfg (keywords in any case, tabs, indentation,
        /// directives in between) parses to the menu it was made from.
        #[test]
        fn isolinux_generated((text, expected) in isolinux_cfg()) {
            prop_assert_eq!(IsolinuxMenu::parse(&text), expected, "{}", text);
        }
    }
}

/// The screen model that reads GRUB's menu off the console when the ISO holds
/// no grub.cfg: any bytes, GRUB's words among them, never panic.
mod screen {
    use super::*;
    use crate::console::screen::Screen;

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
