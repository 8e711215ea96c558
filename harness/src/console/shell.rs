//! Running commands in the serial console's shell, with exact output and status.
//!
//! Each command is sent as one compound command framed by markers:
//!
//! ```text
//! printf '\030%s_%s\n' ISOTEST_3f9c0e51a7d2b864 B7; {
//! <command>
//! } </dev/null; printf '\030\n%s_%s:%s\n' ISOTEST_3f9c0e51a7d2b864 E7 "$?"
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
//! ends any escape sequence a command's output (or the console's noise) left
//! open: output such as `printf '\033['` cannot swallow the marker after it.

use super::serial::{ConsoleError, SerialConsole};
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
#[error("`{command}`: {source}")]
pub struct ShellError {
    pub command: String,
    pub source: ConsoleError,
}

/// The login shell on the serial console, after `boot_to_shell`.
pub struct Shell<'c> {
    console: &'c mut SerialConsole,
    next_id: u64,
    scale: u32,
}

impl<'c> Shell<'c> {
    /// `scale` stretches every command's timeout (TCG).
    pub fn new(console: &'c mut SerialConsole, scale: u32) -> Shell<'c> {
        Shell { console, next_id: 1, scale }
    }

    /// How much every wait is stretched (TCG).
    pub fn scale(&self) -> u32 {
        self.scale
    }

    pub fn console(&mut self) -> &mut SerialConsole {
        self.console
    }

    /// Runs `command` and returns its output and exit status.
    pub fn run(&mut self, command: &str, timeout: Duration) -> Result<CommandOutput, ShellError> {
        let id = self.next_id;
        self.next_id += 1;
        let tag = format!("ISOTEST_{:016x}", nonce());
        let framed = format!(
            "printf '\\030%s_%s\\n' {tag} B{id}; {{\n{command}\n}} </dev/null; printf '\\030\\n%s_%s:%s\\n' {tag} E{id} \"$?\"\n"
        );
        let begin = Regex::new(&format!("{tag}_B{id}\n")).expect("marker regex");
        let end = Regex::new(&format!("\n{tag}_E{id}:(-?[0-9]+)\n")).expect("marker regex");
        let timeout = timeout * self.scale;
        let err = |source| ShellError { command: command.to_owned(), source };
        self.console.send(framed.as_bytes()).map_err(err)?;
        self.console.expect(&[&begin], timeout, &format!("the start of `{command}`")).map_err(err)?;
        let from = self.console.position();
        let m = self.console.expect(&[&end], timeout, &format!("the end of `{command}`")).map_err(err)?;
        let output = self.console.text_between(from, m.start);
        let status = m.text.trim().rsplit(':').next().and_then(|s| s.parse().ok()).unwrap_or(-1);
        tracing::debug!(command, status, "console command");
        Ok(CommandOutput { output, status })
    }
}

/// 64 unpredictable bits: std's `RandomState` keys SipHash with random keys
/// from the operating system (a new key per instance), so hashing nothing
/// gives a value no guest program can know in advance.
fn nonce() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new().build_hasher().finish()
}

/// Quotes `text` for a POSIX shell: one single-quoted word.
pub fn sh_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::{sh_quote, CommandOutput, Shell};
    use crate::console::serial::SerialConsole;
    use std::os::fd::OwnedFd;
    use std::os::unix::net::UnixStream;
    use std::process::{Command, Stdio};
    use std::time::Duration;

    /// A real /bin/sh on the other end of a socket pair, driven through the same
    /// framing and console reader as a guest's shell.
    fn local_shell(dir: &std::path::Path) -> (std::process::Child, SerialConsole) {
        let (ours, theirs) = UnixStream::pair().expect("socketpair");
        let fd = |s: &UnixStream| Stdio::from(OwnedFd::from(s.try_clone().expect("dup")));
        let child = Command::new("/bin/sh").stdin(fd(&theirs)).stdout(fd(&theirs)).stderr(fd(&theirs)).spawn().expect("/bin/sh");
        drop(theirs);
        (child, SerialConsole::attach(ours, dir).expect("attach"))
    }

    /// Output that holds the markers of the command before, guesses of this
    /// command's and the next one's (the old numbered form, and the previous
    /// nonce with this command's number) comes back exactly, with its status.
    #[test]
    fn framing_survives_marker_text_in_the_output() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut child, mut console) = local_shell(dir.path());
        let mut shell = Shell::new(&mut console, 1);
        let wait = Duration::from_secs(20);
        let first = shell.run("echo hello", wait).expect("first command");
        assert_eq!(first, CommandOutput { output: "hello\n".into(), status: 0 });

        // The previous command's markers, as the console showed them.
        let end = shell.console().position();
        let seen = shell.console().text_between(0, end);
        let previous: Vec<&str> = seen.lines().filter(|l| l.starts_with("ISOTEST_")).collect();
        assert_eq!(previous.len(), 2, "begin and end markers of the first command in {seen:?}");
        assert!(previous[1].ends_with("_E1:0"), "{previous:?}");
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
        assert_eq!(out, CommandOutput { output: format!("{}\n\n", lies.join("\n")), status: 3 });

        // Still in step with the shell afterwards.
        let after = shell.run("printf 'x'", wait).expect("third command");
        assert_eq!(after, CommandOutput { output: "x".into(), status: 0 });
        let _ = child.kill();
        let _ = child.wait();
    }

    #[test]
    fn quoting() {
        assert_eq!(super::sh_quote("it's"), "'it'\\''s'");
        assert_eq!(super::sh_quote("a b"), "'a b'");
    }
}
