//! Running commands in the serial console's shell, with exact output and status.
//!
//! Each command is sent as one compound command framed by markers:
//!
//! ```text
//! printf '\030%s_%s\n' ISOTEST_3f9c0e51a7d2b864 B7; {
//! <command>
//! } </dev/null >/tmp/ISOTEST_3f9c0e51a7d2b864 2>&1; isotest_status=$?; od -A d -v -t x1 /tmp/ISOTEST_3f9c0e51a7d2b864; printf '\030%s_%s:%s_\n' ISOTEST_3f9c0e51a7d2b864 E7 "$isotest_status"
//! ```
//!
//! The shell parses all three lines before it runs any (the `{` group is open
//! until the last line), so the terminal's echo of what was typed comes before the
//! begin marker. The markers only exist once printf has joined their halves, so
//! neither the echo nor a command's output that looks like a prompt can be
//! mistaken for them. stdin is /dev/null so a command cannot eat the end marker.
//! Each command's markers carry a fresh random nonce, drawn after the command
//! was written: its output cannot contain its own markers, and markers of
//! other commands (an earlier one's in a transcript printed again, a guessed
//! `ISOTEST_E8`) never match. Each marker starts with CAN (`\030`), which
//! ends any escape sequence the console's noise left open, so that it cannot
//! swallow the marker after it.
//!
//! The output (stdout and stderr, in the order written) goes to a file and
//! comes back as `od`'s numbered hex lines: the kernel prints its own lines on
//! the console in the middle of whatever the shell prints, and a kernel line
//! can look like a command's output (`dmesg` prints the same lines). Hex lines
//! cannot: whatever is not one is noise, and each line's offset, with the total
//! on the last one, proves that none went missing, so the output is exact or
//! the command fails with the console's lines, never a wrong answer. No escape
//! a command prints reaches the console either.
//! The status's marker ends in `_`, so a status cut short by a kernel line
//! (`E7:1` of `E7:127`) never matches.
//!
//! Each command has a file of its own, so that a command whose redirection
//! fails (a step switched to a user who cannot write the last one) finds no
//! earlier output to list. The files are removed together when the checks are
//! done (`remove_files`), not one `rm` per command: under TCG an `rm` is a
//! third of a short command's round trip (10 of 28 ms, measured on the rescue
//! fixture).
use super::ansi::AnsiStripper;
use super::serial::{ConsoleError, SerialConsole};
use crate::error::chain;
use regex::bytes::Regex;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandOutput {
    /// What the command printed (stdout and stderr, as the terminal shows them),
    /// as plain text with `\n` line ends.
    pub output: String,
    pub status: i32,
}

#[derive(Debug, thiserror::Error)]
/// A command that got no whole answer; its cause, the console's error, says why.
#[error("`{command}`")]
pub struct ShellError {
    pub command: String,
    #[source]
    pub source: ConsoleError,
}

/// The login shell on the serial console, after `boot_to_shell`.
pub struct Shell<'c> {
    console: &'c mut SerialConsole,
    next_id: u64,
    scale: u32,
    /// The files of the commands run so far, not yet removed.
    files: Vec<String>,
    /// The guest's directory for them (`with_scratch` in tests).
    scratch: String,
    /// Answers run ahead together (`prefetch`), each handed to the next
    /// `run` of its command.
    ahead: Vec<(String, CommandOutput)>,
    /// The saved machine's answers (`hold_saved`).
    saved: Vec<(String, CommandOutput)>,
}

impl<'c> Shell<'c> {
    /// `scale` stretches every command's timeout (TCG).
    pub fn new(console: &'c mut SerialConsole, scale: u32) -> Shell<'c> {
        Shell {
            console,
            next_id: 1,
            scale,
            files: Vec::new(),
            scratch: "/tmp".into(),
            ahead: Vec::new(),
            saved: Vec::new(),
        }
    }

    /// How much every wait is stretched (TCG).
    pub fn scale(&self) -> u32 {
        self.scale
    }

    pub fn console(&mut self) -> &mut SerialConsole {
        self.console
    }

    /// Commands' output files in `dir` instead of /tmp (the tests' guest is this host).
    #[cfg(test)]
    pub(crate) fn with_scratch(mut self, dir: &std::path::Path) -> Self {
        self.scratch = dir.display().to_string();
        self
    }

    /// Runs `command` and returns its output and exit status; or gives its
    /// answer run ahead by `prefetch`, once.
    pub fn run(&mut self, command: &str, timeout: Duration) -> Result<CommandOutput, ShellError> {
        if let Some(i) = self.ahead.iter().position(|(c, _)| c == command) {
            return Ok(self.ahead.remove(i).1);
        }
        self.framed(command, timeout, &[])
    }

    /// Runs `commands` one after another in one exchange (a command listed
    /// twice runs once), each answer kept for the next `run` of its command
    /// (as many times as it was listed): under TCG a console round trip
    /// (the framing's printf, redirection and `od`) costs about as much as a
    /// short command itself. For commands that only read what nothing run
    /// before their `run` changes, and that leave nothing behind writing to
    /// their output (a background job's late output would be the next
    /// command's); `forget_prefetched` drops what was not asked for. A
    /// command the saved machine answered (`hold_saved`) is not run again:
    /// its answer is the one kept.
    pub fn prefetch(&mut self, commands: &[String], timeout: Duration) {
        let mut from_save = Vec::new();
        // Asked twice (two checks read the same), run once.
        let mut asked = Vec::new();
        let mut to_run: Vec<String> = Vec::new();
        for command in commands.iter().filter(|c| !c.trim().is_empty()) {
            match self.saved.iter().find(|(c, _)| c == command) {
                Some(answer) => from_save.push(answer.clone()),
                None => {
                    asked.push(command);
                    if !to_run.contains(command) {
                        to_run.push(command.clone());
                    }
                }
            }
        }
        if !from_save.is_empty() {
            let mut log = format!(
                "# {} of the shared boot's machine, read just before it was saved, not run again:\n",
                match from_save.len() {
                    1 => "1 answer".to_owned(),
                    n => format!("{n} answers"),
                }
            );
            for (command, answer) in &from_save {
                log.push_str(&log_entry(
                    command,
                    "read on the shared boot",
                    &Ok(answer.clone()),
                ));
            }
            self.console.log_command(&log);
            self.ahead.extend(from_save);
        }
        if to_run.len() >= 2 {
            let answers = self.read_together(&to_run, timeout);
            for command in asked {
                if let Some(answer) = answers.iter().find(|(c, _)| c == command) {
                    self.ahead.push(answer.clone());
                }
            }
        }
    }

    /// Runs `commands` one after another in one exchange and gives each its
    /// answer, in order; none when any could not be told apart. Each
    /// command's output ends in a separator line with its status, under a
    /// nonce drawn after the commands were written, and the whole comes back
    /// through `od` as any output does; it is split before each part is made
    /// plain text on its own, as if it had run alone. Each answer is exact,
    /// or none is given and each command runs on its own when asked.
    pub fn read_together(
        &mut self,
        commands: &[String],
        timeout: Duration,
    ) -> Vec<(String, CommandOutput)> {
        let sep = format!("ISOTEST_{:016x}", nonce());
        let batch: String = commands
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{{\n{c}\n}}; printf '\\n%s_%s:%s_\\n' {sep} S{i} \"$?\"\n"))
            .collect();
        let at = self.console.since_attached();
        // Each command may take a single command's time.
        let within = timeout * u32::try_from(commands.len()).unwrap_or(u32::MAX);
        let result = self.exchange(batch.trim_end(), within, &[]);
        let took = self.console.since_attached().saturating_sub(at);
        let answers = match &result {
            Ok(raw) => split_answers(&raw.bytes, &sep, commands.len()),
            Err(_) => None,
        };
        let Some(answers) = answers else {
            let result = result.map(|raw| raw.plain());
            let why = match &result {
                Err(e) => chain(e),
                Ok(out) => format!("the answers could not be told apart: {:?}", out.output),
            };
            tracing::debug!("{} commands run together: {why}", commands.len());
            let mut log = format!(
                "# {} commands run together, none kept ({why}), {}:\n",
                commands.len(),
                ran_at(at, took)
            );
            for command in commands {
                log.push_str(&typed(command));
            }
            self.console.log_command(&log);
            return Vec::new();
        };
        let mut log = format!("# {} commands run together:\n", commands.len());
        let when = ran_at(at, took);
        for (command, answer) in commands.iter().zip(&answers) {
            log.push_str(&log_entry(command, &when, &Ok(answer.clone())));
        }
        self.console.log_command(&log);
        commands.iter().cloned().zip(answers).collect()
    }

    /// Answers the saved machine gave (`read_together` on the shared boot's
    /// shell, just before its save), for `prefetch` to take instead of running
    /// their commands again: a clone's machine is that machine, and a
    /// command that only reads it answers the same.
    pub fn hold_saved(&mut self, answers: Vec<(String, CommandOutput)>) {
        self.saved = answers;
    }

    /// Drops the answers run ahead that no `run` took, and the saved
    /// machine's: from here on the guest may have changed.
    pub fn forget_prefetched(&mut self) {
        self.ahead.clear();
        self.saved.clear();
    }

    /// The files of the commands run so far, not yet removed: for the next
    /// shell on this console to remove (`with_files`).
    pub fn into_files(self) -> Vec<String> {
        self.files
    }

    /// A shell that removes `files` with its own (`remove_files`).
    pub fn with_files(mut self, files: Vec<String>) -> Self {
        self.files = files;
        self
    }

    /// Removes the files the commands' output went to, this one's too, a
    /// batch at a time (a line of at most a few KiB). Best effort: a console
    /// that no longer answers keeps them.
    pub fn remove_files(&mut self) {
        while !self.files.is_empty() {
            let batch: Vec<String> = self.files.drain(..self.files.len().min(64)).collect();
            if let Err(e) = self.framed("true", Duration::from_secs(5), &batch) {
                tracing::debug!("removing the commands' files: {}", chain(&e));
                return;
            }
        }
    }

    /// Runs `command` framed by its markers; with files to `remove`, they
    /// and this command's own go once its output is listed. Each exchange
    /// goes to the console's `commands.log` as a terminal would show it.
    fn framed(
        &mut self,
        command: &str,
        timeout: Duration,
        remove: &[String],
    ) -> Result<CommandOutput, ShellError> {
        let at = self.console.since_attached();
        let result = self
            .exchange(command, timeout, remove)
            .map(|raw| raw.plain());
        let took = self.console.since_attached().saturating_sub(at);
        let shown = if remove.is_empty() {
            command.to_owned()
        } else {
            format!("rm -f  # the output files of {} commands", remove.len() + 1)
        };
        self.console
            .log_command(&log_entry(&shown, &ran_at(at, took), &result));
        result
    }

    fn exchange(
        &mut self,
        command: &str,
        timeout: Duration,
        remove: &[String],
    ) -> Result<Raw, ShellError> {
        let id = self.next_id;
        self.next_id += 1;
        let tag = format!("ISOTEST_{:016x}", nonce());
        let file = format!("{}/{tag}", self.scratch);
        let rm = if remove.is_empty() {
            String::new()
        } else {
            format!("rm -f {} {file}; ", remove.join(" "))
        };
        let framed = format!(
            "printf '\\030%s_%s\\n' {tag} B{id}; {{\n{command}\n}} </dev/null >{file} 2>&1; isotest_status=$?; \
             od -A d -v -t x1 {file}; {rm}printf '\\030%s_%s:%s_\\n' {tag} E{id} \"$isotest_status\"\n"
        );
        if remove.is_empty() {
            self.files.push(file);
        }
        let begin = Regex::new(&format!("{tag}_B{id}\n")).expect("marker regex");
        let end = Regex::new(&format!("\n{tag}_E{id}:(-?[0-9]+)_\n")).expect("marker regex");
        let timeout = timeout * self.scale;
        let err = |source| ShellError {
            command: command.to_owned(),
            source,
        };
        self.console.send(framed.as_bytes()).map_err(err)?;
        self.console
            .expect(&[&begin], timeout, &format!("the start of `{command}`"))
            .map_err(err)?;
        let from = self.console.position();
        let m = self
            .console
            .expect(&[&end], timeout, &format!("the end of `{command}`"))
            .map_err(err)?;
        // The end marker's leading newline ends od's last line.
        let dump = self.console.text_between(from, m.start + 1);
        let bytes = decode_od(&dump).map_err(|detail| {
            err(ConsoleError::Garbled {
                waiting_for: format!("the output of `{command}`"),
                detail,
                lines: self.console.lines_around(from),
            })
        })?;
        let status = m
            .text
            .trim()
            .trim_end_matches('_')
            .rsplit(':')
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or(-1);
        tracing::debug!(command, status, "console command");
        Ok(Raw { bytes, status })
    }
}

/// A command's output bytes as they were written, and its status.
struct Raw {
    bytes: Vec<u8>,
    status: i32,
}

impl Raw {
    fn plain(&self) -> CommandOutput {
        CommandOutput {
            output: plain_text(&self.bytes),
            status: self.status,
        }
    }
}

/// The answers of `n` commands run together (`Shell::prefetch`): the bytes
/// before each separator (less the newline the separator's printf put before
/// it), each made plain text on its own, and the status in it. None unless
/// all `n` are there, in order, and nothing after the last.
fn split_answers(output: &[u8], sep: &str, n: usize) -> Option<Vec<CommandOutput>> {
    let find = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).position(|w| w == needle);
    let mut rest = output;
    let mut answers = Vec::with_capacity(n);
    for i in 0..n {
        let marker = format!("\n{sep}_S{i}:");
        let at = find(rest, marker.as_bytes())?;
        let after = &rest[at + marker.len()..];
        let end = find(after, b"_\n")?;
        let status = std::str::from_utf8(&after[..end]).ok()?.parse().ok()?;
        answers.push(CommandOutput {
            output: plain_text(&rest[..at]),
            status,
        });
        rest = &after[end + 2..];
    }
    rest.is_empty().then_some(answers)
}

/// A command as typed at a terminal: after `$ `, its further lines after `> `.
fn typed(command: &str) -> String {
    let mut typed = String::new();
    for (i, line) in command.lines().enumerate() {
        typed.push_str(if i == 0 { "$ " } else { "> " });
        typed.push_str(line);
        typed.push('\n');
    }
    typed
}

/// When an exchange ran, in seconds since the console was attached, and how long it took.
fn ran_at(at: Duration, took: Duration) -> String {
    format!(
        "at {:.2} s, took {:.2} s",
        at.as_secs_f64(),
        took.as_secs_f64()
    )
}

/// One exchange as `commands.log` shows it: the command as typed (`typed`),
/// its output, and a line with its exit status and `when` it ran (`ran_at`).
fn log_entry(command: &str, when: &str, result: &Result<CommandOutput, ShellError>) -> String {
    let mut entry = typed(command);
    match result {
        Ok(out) => {
            entry.push_str(&out.output);
            if !out.output.is_empty() && !out.output.ends_with('\n') {
                entry.push('\n');
            }
            entry.push_str(&format!("# exit status {}, {when}\n", out.status));
        }
        Err(e) => entry.push_str(&format!("# no answer: {}, {when}\n", chain(&e.source))),
    }
    entry
}

/// The bytes that `od -A d -v -t x1` printed, from its lines on the console:
/// `0000016 6c 6f 0a` (an offset, then up to 16 bytes), the total alone on the
/// last line. Lines that are not od's are noise (kernel lines); a line written
/// twice (a kernel line cut it, see `kmsg`) counts once, the later whole one.
/// Every byte up to the total must be there, once.
fn decode_od(dump: &str) -> Result<Vec<u8>, String> {
    let mut rows = std::collections::BTreeMap::new();
    let mut total = None;
    for line in dump.lines() {
        let mut words = line.split_ascii_whitespace();
        let Some(offset) = words
            .next()
            .filter(|w| w.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|w| w.parse::<u64>().ok())
        else {
            continue;
        };
        let bytes: Option<Vec<u8>> = words
            .map(|w| {
                (w.len() == 2)
                    .then(|| u8::from_str_radix(w, 16).ok())
                    .flatten()
            })
            .collect();
        match bytes {
            Some(bytes) if bytes.is_empty() => total = Some(offset),
            Some(bytes) if bytes.len() <= 16 => {
                rows.insert(offset, bytes);
            }
            _ => {}
        }
    }
    let total = total.ok_or("no `od` listing (is `od` missing, or `/tmp` not writable?)")?;
    let mut out = Vec::new();
    for (offset, bytes) in rows {
        if offset != out.len() as u64 {
            return Err(format!(
                "bytes {}..{offset} of the output are missing from the console",
                out.len()
            ));
        }
        out.extend(bytes);
    }
    if out.len() as u64 != total {
        return Err(format!(
            "{} of {total} bytes of the output reached the console",
            out.len()
        ));
    }
    Ok(out)
}

/// Output bytes as the terminal would show them: plain text with `\n` line
/// ends (colours, carriage returns and other escapes gone).
fn plain_text(bytes: &[u8]) -> String {
    let mut text = Vec::new();
    AnsiStripper::default().feed(bytes, &mut text);
    String::from_utf8_lossy(&text).into_owned()
}

/// 64 unpredictable bits: std's `RandomState` keys SipHash with random keys
/// from the operating system (a new key per instance), so hashing nothing
/// gives a value no guest program can know in advance.
pub(crate) fn nonce() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}

/// Quotes `text` for a POSIX shell: one single-quoted word.
pub fn sh_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::{sh_quote, CommandOutput};
    use crate::console::local::LocalShell;
    use std::os::unix::net::UnixStream;
    use std::time::Duration;

    /// Output that holds the markers of the command before, guesses of this
    /// command's and the next one's (the old numbered form, and the previous
    /// nonce with this command's number) comes back exactly, with its status.
    #[test]
    fn framing_survives_marker_text_in_the_output() {
        let mut local = LocalShell::new();
        let mut shell = local.shell();
        let wait = Duration::from_secs(20);
        let first = shell.run("echo hello", wait).expect("first command");
        assert_eq!(
            first,
            CommandOutput {
                output: "hello\n".into(),
                status: 0
            }
        );

        // The previous command's markers, as the console showed them.
        let end = shell.console().position();
        let seen = shell.console().text_between(0, end);
        let previous: Vec<&str> = seen.lines().filter(|l| l.starts_with("ISOTEST_")).collect();
        assert_eq!(
            previous.len(),
            2,
            "begin and end markers of the first command in {seen:?}"
        );
        assert!(previous[1].ends_with("_E1:0_"), "{previous:?}");
        let previous_tag = previous[0].rsplit_once('_').expect("tag_B1").0;
        let lies = [
            previous[0].to_owned(),
            previous[1].to_owned(),
            "ISOTEST_B2".to_owned(),
            "ISOTEST_E2:0".to_owned(),
            format!("{previous_tag}_B2"),
            format!("{previous_tag}_E2:0"),
            "ISOTEST_B3".to_owned(),
            "ISOTEST_E3:0".to_owned(),
            format!("{previous_tag}_E3:0"),
        ];
        let words: Vec<String> = lies.iter().map(|l| sh_quote(l)).collect();
        let command = format!("printf '%s\\n' {}; printf '\\n'; (exit 3)", words.join(" "));
        let out = shell.run(&command, wait).expect("second command");
        assert_eq!(
            out,
            CommandOutput {
                output: format!("{}\n\n", lies.join("\n")),
                status: 3
            }
        );

        // Still in step with the shell afterwards.
        let after = shell.run("printf 'x'", wait).expect("third command");
        assert_eq!(
            after,
            CommandOutput {
                output: "x".into(),
                status: 0
            }
        );
    }

    /// `commands.log` shows each exchange as a terminal would: the command,
    /// its decoded output (not the `od` listing that came over the console),
    /// its status and when it ran.
    #[test]
    fn commands_log_shows_what_each_command_said() {
        let mut local = LocalShell::new();
        let log = local.dir().join(crate::console::serial::COMMAND_LOG);
        let mut shell = local.shell();
        let wait = Duration::from_secs(20);
        shell.run("echo hi", wait).unwrap();
        shell.run("printf 'no newline'; (exit 3)", wait).unwrap();
        shell.run("a=1\necho \"a is $a\"", wait).unwrap();
        shell.remove_files();
        let log = std::fs::read_to_string(log).unwrap();
        let times = regex::Regex::new(r"at [0-9]+\.[0-9]{2} s, took [0-9]+\.[0-9]{2} s").unwrap();
        assert_eq!(
            times.replace_all(&log, "at T"),
            "$ echo hi\nhi\n# exit status 0, at T\n\
             $ printf 'no newline'; (exit 3)\nno newline\n# exit status 3, at T\n\
             $ a=1\n> echo \"a is $a\"\na is 1\n# exit status 0, at T\n\
             $ rm -f  # the output files of 4 commands\n# exit status 0, at T\n"
        );
    }

    /// Each command's output has a file of its own, kept until
    /// `remove_files` removes them all, its own command's too.
    #[test]
    fn the_commands_files_are_removed_together() {
        let mut local = LocalShell::new();
        let scratch = local.scratch();
        let mut shell = local.shell();
        let wait = Duration::from_secs(20);
        for word in ["one", "two", "three"] {
            assert_eq!(
                shell
                    .run(&format!("echo {word}"), wait)
                    .expect("a command")
                    .output,
                format!("{word}\n")
            );
        }
        let files = shell.files.clone();
        assert_eq!(files.len(), 3);
        assert!(
            files.iter().all(|f| std::path::Path::new(f).is_file()),
            "{files:?}"
        );
        // More than one batch.
        for _ in 0..70 {
            shell.run("true", wait).expect("a command");
        }
        let all = shell.files.clone();
        shell.remove_files();
        assert!(shell.files.is_empty());
        let left: Vec<&String> = all
            .iter()
            .filter(|f| std::path::Path::new(f).exists())
            .collect();
        assert!(left.is_empty(), "{left:?}");
        // The removing commands' own files are gone too.
        assert_eq!(std::fs::read_dir(&scratch).unwrap().count(), 0);
        assert_eq!(
            shell.run("echo after", wait).expect("still in step").output,
            "after\n"
        );
        shell.remove_files();
        assert_eq!(std::fs::read_dir(&scratch).unwrap().count(), 0);
    }

    /// Copies the shell's output to the console with a kernel line (or the
    /// kernel's "dropped" notice and a line) after every few bytes, at every
    /// offset in turn, as the kernel prints on a serial console in the middle
    /// of the tty's output. Keys go through unchanged.
    fn kernel_noise(shell_side: UnixStream) -> UnixStream {
        let (ours, theirs) = UnixStream::pair().expect("socketpair");
        let (mut keys_in, mut keys_out) = (
            theirs.try_clone().expect("dup"),
            shell_side.try_clone().expect("dup"),
        );
        std::thread::spawn(move || std::io::copy(&mut keys_in, &mut keys_out));
        std::thread::spawn(move || {
            let (mut from_shell, mut to_console) = (shell_side, theirs);
            let (mut every, mut n, mut buf) = (1usize, 0u64, [0u8; 64]);
            loop {
                let got = match std::io::Read::read(&mut from_shell, &mut buf[..every]) {
                    Ok(0) | Err(_) => return,
                    Ok(got) => got,
                };
                let notice = if n % 5 == 4 {
                    "** 2 printk messages dropped **\r\n"
                } else {
                    ""
                };
                let record = format!(
                    "{notice}[{:5}.{:06}] kmsg-flood: line {n} of the console noise\r\n",
                    12 + n / 100,
                    n % 1_000_000
                );
                let chunk = [&buf[..got], record.as_bytes()].concat();
                if std::io::Write::write_all(&mut to_console, &chunk).is_err() {
                    return;
                }
                (every, n) = (every % 23 + 1, n + 1);
            }
        });
        ours
    }

    /// Kernel lines cut into the echo, the markers and the output at every
    /// offset; output that looks like kernel lines (dmesg's), escapes and
    /// bytes that are not UTF-8 come back exactly, with their status.
    #[test]
    fn output_is_exact_among_kernel_lines() {
        let mut local = LocalShell::start(None, kernel_noise);
        let mut shell = local.shell();
        let wait = Duration::from_secs(20);
        let dmesg = "[    1.000000] Linux version 6.1\n[   12.345678] kmsg-flood: line 3 of the console noise\n** 1 printk messages dropped **\n";
        let out = shell
            .run(
                &format!(
                    "printf '{}'; echo err >&2; (exit 7)",
                    dmesg.replace('\n', "\\n")
                ),
                wait,
            )
            .expect("dmesg-like output");
        assert_eq!(
            out,
            CommandOutput {
                output: format!("{dmesg}err\n"),
                status: 7
            }
        );
        let long: String = (0..300).map(|i| format!("line {i}\n")).collect();
        let out = shell
            .run(
                "i=0; while [ $i -lt 300 ]; do echo \"line $i\"; i=$((i + 1)); done",
                wait,
            )
            .expect("long output");
        assert_eq!(
            out,
            CommandOutput {
                output: long,
                status: 0
            }
        );
        let out = shell
            .run(
                "printf '\\033[1;31mred\\033[0m \\377\\300 no newline'",
                wait,
            )
            .expect("escapes");
        assert_eq!(
            out,
            CommandOutput {
                output: "red \u{fffd}\u{fffd} no newline".into(),
                status: 0
            }
        );
        let out = shell.run("true", wait).expect("no output");
        assert_eq!(
            out,
            CommandOutput {
                output: String::new(),
                status: 0
            }
        );
    }

    /// A command that answers how many times it has run, and where the
    /// shell's commands.log is.
    fn counter_and_log(local: &LocalShell) -> (String, std::path::PathBuf) {
        let counter = local.scratch().join("counter");
        (
            format!("echo x >> {0}; wc -l < {0}", counter.display()),
            local.dir().join(crate::console::serial::COMMAND_LOG),
        )
    }

    /// The saved machine's answers stand in for their commands when they are
    /// run ahead (each time: a clone's checks may read one twice), never for
    /// a plain `run` nor after `forget_prefetched`; commands.log says which.
    #[test]
    fn saved_answers_stand_in_for_commands_run_ahead() {
        let mut local = LocalShell::new();
        let (count, log) = counter_and_log(&local);
        let mut shell = local.shell();
        let wait = Duration::from_secs(20);
        let saved = CommandOutput {
            output: "from the save\n".into(),
            status: 0,
        };
        let ran = |n: &str| CommandOutput {
            output: format!("{n}\n"),
            status: 0,
        };
        shell.hold_saved(vec![(count.clone(), saved.clone())]);
        assert_eq!(shell.run(&count, wait).unwrap(), ran("1"));
        shell.prefetch(&[count.clone(), "echo other".to_owned()], wait);
        assert_eq!(shell.run(&count, wait).unwrap(), saved);
        assert_eq!(shell.run(&count, wait).unwrap(), ran("2"));
        shell.prefetch(std::slice::from_ref(&count), wait);
        assert_eq!(shell.run(&count, wait).unwrap(), saved);
        shell.forget_prefetched();
        shell.prefetch(std::slice::from_ref(&count), wait);
        assert_eq!(shell.run(&count, wait).unwrap(), ran("3"));
        let log = std::fs::read_to_string(log).unwrap();
        assert!(
            log.contains(&format!(
                "# 1 answer of the shared boot's machine, read just before it was saved, not run again:\n$ {count}\nfrom the save\n# exit status 0, read on the shared boot\n"
            )),
            "{log}"
        );
    }

    /// Commands run ahead together give each the answer it gives alone
    /// (output without a newline, a status, a separator-like line), once per
    /// listing: the next run of a command runs it again, and forgotten
    /// answers are not handed out.
    #[test]
    fn prefetched_answers_are_each_commands_own_once() {
        let mut local = LocalShell::new();
        let (count, log) = counter_and_log(&local);
        let mut shell = local.shell();
        let wait = Duration::from_secs(20);
        let open_escape = "printf 'open\\033]0;title'".to_owned();
        let commands = [
            "printf 'no newline'".to_owned(),
            "printf '\\nISOTEST_0_S1:0_\\n'; (exit 3)".to_owned(),
            count.clone(),
            // Blank: left out (it would not parse in a group).
            " ".to_owned(),
            // Listed twice: run once, its answer given twice.
            count.clone(),
            open_escape.clone(),
            "true".to_owned(),
            "echo never asked".to_owned(),
        ];
        shell.prefetch(&commands, wait);
        let alone = |output: &str, status| CommandOutput {
            output: output.into(),
            status,
        };
        assert_eq!(
            shell.run(&commands[0], wait).unwrap(),
            alone("no newline", 0)
        );
        assert_eq!(
            shell.run(&commands[1], wait).unwrap(),
            alone("\nISOTEST_0_S1:0_\n", 3)
        );
        // An escape left open ends with its own output, as when run alone.
        let ahead = shell.run(&open_escape, wait).unwrap();
        assert_eq!(ahead, shell.run(&open_escape, wait).unwrap());
        assert_eq!(shell.run("true", wait).unwrap(), alone("", 0));
        // Run ahead once, listed twice: its answer then twice, and a real
        // run the next time.
        assert_eq!(shell.run(&count, wait).unwrap(), alone("1\n", 0));
        assert_eq!(shell.run(&count, wait).unwrap(), alone("1\n", 0));
        assert_eq!(shell.run(&count, wait).unwrap(), alone("2\n", 0));
        shell.forget_prefetched();
        assert_eq!(
            shell.run("echo never asked", wait).unwrap(),
            alone("never asked\n", 0)
        );
        let log = std::fs::read_to_string(log).unwrap();
        assert!(
            log.starts_with(
                "# 6 commands run together:\n$ printf 'no newline'\nno newline\n# exit status 0"
            ),
            "{log}"
        );
    }

    #[test]
    fn od_listings() {
        use super::decode_od;
        assert_eq!(decode_od("0000000 68 69 0a\n0000003\n").unwrap(), b"hi\n");
        assert_eq!(decode_od("0000000\n").unwrap(), b"");
        // Noise lines, and a row written again whole after a kernel line cut it.
        let dump = "[    1.000000] k\n0000000 61 62 63 64 65 66 67 68 69 6a 6b 6c 6d 6e 6f 70\n0000016 71\n\
                    [    2.000000] k\n0000016 71 72\n0000018\n";
        assert_eq!(decode_od(dump).unwrap(), b"abcdefghijklmnopqr");
        // A missing row, a short total, no listing at all (od failed): errors.
        assert!(decode_od("0000016 71\n0000017\n")
            .unwrap_err()
            .contains("bytes 0..16"));
        assert!(decode_od("0000000 61 62\n0000003\n")
            .unwrap_err()
            .contains("2 of 3 bytes"));
        assert!(decode_od("od: /tmp/x: No such file or directory\n")
            .unwrap_err()
            .contains("no `od` listing"));
        // Junk never panics.
        for junk in [
            "99999999999999999999999 ff\n0\n",
            "0000000 fff 0g\n",
            "\u{fffd}\u{fffd} 00\n",
            "0 00 00\n1\n",
        ] {
            let _ = decode_od(junk);
        }
    }

    #[test]
    fn quoting() {
        assert_eq!(super::sh_quote("it's"), "'it'\\''s'");
        assert_eq!(super::sh_quote("a b"), "'a b'");
    }
}
