//! GRUB's entry editor, driven off the screen: read an entry's commands, add
//! the console to its `linux` command, and boot it.

use super::loader::prompts;
use crate::console::serial::{ConsoleError, SerialConsole};
use crate::menu::screen::Screen;
use std::time::Duration;

/// How often an edit that the screen does not show as typed is typed again.
const EDIT_ATTEMPTS: usize = 3;

/// Keys typed into GRUB's editor at once before waiting for their echo: the
/// firmware's input buffer is small (SeaBIOS's keyboard buffer holds 15 keys),
/// and keys typed faster than GRUB reads them under TCG arrived damaged.
const TYPE_CHUNK: usize = 4;

/// Keys of GRUB's editor, one byte each (an escape sequence can be split or
/// mis-read by the firmware's terminal): Ctrl-E (end of line), Ctrl-N (next
/// line), Ctrl-X (boot), backspace, and Escape (discard, back to the menu).
const CTRL_E: u8 = 0x05;
const CTRL_N: u8 = 0x0e;
const CTRL_X: u8 = 0x18;
const BACKSPACE: u8 = 0x08;
const ESC: u8 = 0x1b;

/// Escape: from the editor or a submenu back to the menu above.
pub(super) fn escape_to_menu(
    console: &mut SerialConsole,
    wait: Duration,
) -> Result<(), ConsoleError> {
    console.send(&[ESC])?;
    console
        .expect(&[&prompts().grub_ready], wait, "the GRUB menu after Escape")
        .map(|_| ())
}

/// Once GRUB's editor is asked for: its lines, when its draw has settled.
pub(super) fn read_editor(
    console: &mut SerialConsole,
    wait: Duration,
    settle: Duration,
) -> Result<Vec<String>, ConsoleError> {
    console.expect(&[&prompts().grub_editor], wait, "GRUB's entry editor")?;
    console.wait_quiet(settle, wait, "GRUB's entry editor to be drawn")?;
    Screen::from_bytes(&console.raw_since(0))
        .grub_editor_lines()
        .ok_or_else(|| ConsoleError::Timeout {
            waiting_for: "GRUB's entry editor on the screen (none could be read)".into(),
            after: wait,
            last_lines: console.last_lines(),
        })
}

/// In GRUB's editor (just asked for with `e`): adds `console_arg` to the
/// `linux` command's own arguments and boots (Ctrl-X). The arguments end at a
/// `;`, a `}` or the line's end: on the command's line, the editor goes to the
/// line's end (Ctrl-E), deletes what follows the arguments, and types the
/// console and that text again, a few keys at a time, each time waiting until
/// the screen shows them. The line is read back before booting; an edit the
/// screen does not show is discarded (Escape) and typed again.
pub(super) fn edit_in_editor(
    console: &mut SerialConsole,
    console_arg: &str,
    wait: Duration,
    settle: Duration,
) -> Result<(), ConsoleError> {
    let mut shown = String::new();
    let mut expected = String::new();
    for attempt in 1..=EDIT_ATTEMPTS {
        if attempt > 1 {
            tracing::warn!(
                expected,
                shown,
                attempt,
                "GRUB's editor does not show the edit as typed; typing it again"
            );
            escape_to_menu(console, wait)?;
            console.wait_quiet(settle, wait, "the GRUB menu to be drawn")?;
            console.send(b"e")?;
        }
        let lines = read_editor(console, wait, settle)?;
        let Some((row, args_end, has)) = lines.iter().enumerate().find_map(|(i, l)| {
            crate::menu::grub::linux_command(l)
                .map(|(end, args)| (i, end, crate::menu::has_console(args, console_arg)))
        }) else {
            return Err(ConsoleError::Garbled {
                waiting_for: "a `linux` command in GRUB's editor".into(),
                detail: "the entry has none".into(),
                lines,
            });
        };
        if has {
            return console.send(&[CTRL_X]);
        }
        let line = lines[row].trim_end();
        let tail = &line[args_end..];
        expected = format!("{} {console_arg}{tail}", &line[..args_end]);
        shown = match end_of_line(console, row, line, wait).and_then(|at_end| {
            // The mark, the blanks the line ended with, and the text after the
            // arguments deleted; the console and that text typed.
            let mut keys = vec![
                BACKSPACE;
                1 + (at_end.chars().count() - 1 - line.chars().count())
                    + tail.chars().count()
            ];
            keys.extend(format!(" {console_arg}{tail}").bytes());
            type_watched(console, &keys, row, &at_end, wait)
        }) {
            Ok(()) => {
                console.wait_quiet(settle, wait, "GRUB's editor to show the edit")?;
                editor_line(console, row)
            }
            Err(ConsoleError::Timeout { .. }) => editor_line(console, row),
            Err(e) => return Err(e),
        };
        if shown.trim_end() == expected {
            tracing::info!(
                line = expected,
                "GRUB's editor shows the edited `linux` command; booting it"
            );
            return console.send(&[CTRL_X]);
        }
    }
    Err(ConsoleError::Garbled {
        waiting_for: format!("the edited `linux` command `{expected}` in GRUB's editor"),
        detail: format!("typed {EDIT_ATTEMPTS} times, the screen showed `{shown}`"),
        lines: console.last_lines(),
    })
}

/// The mark GRUB's editor gets at the end of the `linux` command's line: where
/// it shows up tells how many blanks (which the screen does not show) the line
/// ends with.
const MARK: u8 = b'#';

/// In GRUB's editor (cursor on its first line): to line `row` (which reads
/// `line`), to its end, and the mark typed there. Returns the line as the
/// screen then shows it: `line`, the blanks it ended with, the mark.
fn end_of_line(
    console: &mut SerialConsole,
    row: usize,
    line: &str,
    wait: Duration,
) -> Result<String, ConsoleError> {
    let mut keys = vec![CTRL_N; row];
    keys.extend([CTRL_E, MARK]);
    console.send(&keys)?;
    let ends_marked = |l: &str| {
        l.trim_end()
            .strip_suffix(MARK as char)
            .is_some_and(|l| l.trim_end() == line)
    };
    console.wait_raw(
        wait,
        "GRUB's editor to echo a key at the end of the `linux` command's line",
        |raw| {
            Screen::from_bytes(raw)
                .grub_editor_lines()
                .and_then(|l| l.get(row).map(|l| ends_marked(l)))
                .unwrap_or(false)
        },
    )?;
    Ok(editor_line(console, row).trim_end().to_owned())
}

/// Line `row` of GRUB's editor as the screen shows it now.
fn editor_line(console: &SerialConsole, row: usize) -> String {
    Screen::from_bytes(&console.raw_since(0))
        .grub_editor_lines()
        .and_then(|l| l.get(row).cloned())
        .unwrap_or_default()
}

/// Types `keys` (backspaces and text) at the end of line `row` of GRUB's
/// editor, which reads `line` before the first key, `TYPE_CHUNK` keys at a
/// time; after each batch it waits until the screen shows the line as the keys
/// leave it (a backspace deletes the last character, any other key is
/// appended), so GRUB never has more than one batch to read.
fn type_watched(
    console: &mut SerialConsole,
    keys: &[u8],
    row: usize,
    line: &str,
    wait: Duration,
) -> Result<(), ConsoleError> {
    let mut model: Vec<char> = line.chars().collect();
    for batch in keys.chunks(TYPE_CHUNK) {
        for &key in batch {
            match key {
                BACKSPACE => drop(model.pop()),
                _ => model.push(key as char),
            }
        }
        console.send(batch)?;
        let want: String = model.iter().collect();
        let want = want.trim_end().to_owned();
        console.wait_raw(wait, &format!("GRUB's editor to echo `{want}`"), |raw| {
            Screen::from_bytes(raw)
                .grub_editor_lines()
                .and_then(|l| l.get(row).map(|l| l.trim_end() == want))
                .unwrap_or(false)
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testing::{scripted_guest, SEABIOS_OPTIONS};
    use super::*;

    /// AAVMF: the grub-oneline fixture's installer entry in GRUB's editor, then
    /// GRUB's answers to the edit, as a real boot recorded them.
    const AAVMF_ONELINE_EDIT: &[u8] = include_bytes!("../testdata/aavmf-grub-oneline-edit.raw");

    /// Where the recording first shows `done` (checked before each escape
    /// sequence): the cut points of a replay that answers each batch of keys
    /// with what GRUB drew for it.
    fn first_shown(raw: &[u8], from: usize, done: impl Fn(&str) -> bool) -> usize {
        let row = |at: usize| {
            Screen::from_bytes(&raw[..at])
                .grub_editor_lines()
                .and_then(|l| l.get(1).map(|l| l.trim_end().to_owned()))
        };
        (from..=raw.len())
            .filter(|&i| i == raw.len() || raw[i] == 0x1b)
            .find(|&i| row(i).is_some_and(|r| done(&r)))
            .expect("the recording shows it")
    }

    /// A one-line entry gets the console after its `linux` command's own
    /// arguments, not after `initrd /boot/initrd;`: the end of the line marked
    /// (which tells its trailing blanks), the text after the arguments deleted
    /// and typed again after the console, four keys at a time, each batch
    /// answered only once the recording shows the one before; then Ctrl-X.
    #[test]
    fn a_one_line_entry_gets_the_console_after_its_linux_arguments() {
        let raw = AAVMF_ONELINE_EDIT;
        let line = " linux /boot/Image boot=live loglevel=4 init=/lib/systemd/systemd live-media-path=/live; initrd /boot/initrd;";
        let tail = "; initrd /boot/initrd;";
        let typed = format!(" console=ttyAMA0,115200n8{tail}");
        let drawn = first_shown(raw, 0, |r| r == line);
        let marked = first_shown(raw, drawn, |r| r.ends_with('#'));
        let at_end = Screen::from_bytes(&raw[..marked])
            .grub_editor_lines()
            .unwrap()[1]
            .trim_end()
            .to_owned();
        let blanks = at_end.len() - line.len() - 1;
        // The batches the harness sends and the line each must leave.
        let mut keys = vec![BACKSPACE; 1 + blanks + tail.len()];
        keys.extend(typed.bytes());
        let mut model: Vec<char> = at_end.chars().collect();
        let mut script = vec![(raw[..drawn].to_vec(), 3)];
        let mut from = drawn;
        let mut expected_keys = vec![CTRL_N, CTRL_E, MARK];
        let mut state = at_end.clone();
        for batch in keys.chunks(TYPE_CHUNK) {
            let cut = first_shown(raw, from, |r| r == state.trim_end());
            script.push((raw[from..cut].to_vec(), batch.len()));
            from = cut;
            for &k in batch {
                if k == BACKSPACE {
                    model.pop();
                } else {
                    model.push(k as char);
                }
            }
            state = model.iter().collect();
            expected_keys.extend_from_slice(batch);
        }
        let typed_all = first_shown(raw, from, |r| r == state.trim_end());
        script.push((raw[from..typed_all].to_vec(), 1));
        script.push((raw[typed_all..].to_vec(), 0));
        expected_keys.push(CTRL_X);
        assert_eq!(state, format!(" linux /boot/Image boot=live loglevel=4 init=/lib/systemd/systemd live-media-path=/live{typed}"));
        let (mut console, guest, _dir) = scripted_guest(script);
        edit_in_editor(
            &mut console,
            "console=ttyAMA0,115200n8",
            Duration::from_secs(10),
            Duration::from_millis(200),
        )
        .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&guest.join().unwrap().0),
            String::from_utf8_lossy(&expected_keys)
        );
    }

    /// Keys GRUB never shows (lost on the way): the edit is discarded and
    /// typed again, and after three tries the boot stops, saying what the
    /// screen showed instead of the edit.
    #[test]
    fn an_edit_the_screen_never_shows_is_retyped_then_reported() {
        let raw = AAVMF_ONELINE_EDIT;
        let line = " linux /boot/Image boot=live loglevel=4 init=/lib/systemd/systemd live-media-path=/live; initrd /boot/initrd;";
        let editor = raw[..first_shown(raw, 0, |r| r == line)].to_vec();
        let mut script = vec![(editor.clone(), 3)];
        for _ in 1..EDIT_ATTEMPTS {
            script.extend([
                (Vec::new(), 1),
                (SEABIOS_OPTIONS.to_vec(), 1),
                (editor.clone(), 3),
            ]);
        }
        let (mut console, guest, _dir) = scripted_guest(script);
        let e = edit_in_editor(
            &mut console,
            "console=ttyAMA0,115200n8",
            Duration::from_millis(600),
            Duration::from_millis(100),
        )
        .unwrap_err();
        let message = e.to_string();
        assert!(
            message.starts_with("the edited `linux` command ` linux /boot/Image"),
            "{message}"
        );
        assert!(
            message.contains("typed 3 times, the screen showed ` linux /boot/Image"),
            "{message}"
        );
        let mark = [CTRL_N, CTRL_E, MARK];
        let retry = [[ESC, b'e'].as_slice(), &mark].concat();
        assert_eq!(
            guest.join().unwrap().0,
            [mark.as_slice(), &retry, &retry].concat()
        );
    }
}
