//! Running commands in the serial console's shell, with exact output and status.
//!
//! Each command is sent as one compound command framed by markers:
//!
//! ```text
//! printf '%s_%s\n' ISOTEST B7; {
//! <command>
//! } </dev/null; printf '\n%s_%s:%s\n' ISOTEST E7 "$?"
//! ```
//!
//! The shell parses all three lines before it runs any (the `{` group is open
//! until the last line), so the terminal's echo of what was typed comes before the
//! begin marker. The markers only exist once printf has joined their halves, so
//! neither the echo nor a command's output that looks like a prompt can be
//! mistaken for them. stdin is /dev/null so a command cannot eat the end marker.

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
        let framed = format!(
            "printf '%s_%s\\n' ISOTEST B{id}; {{\n{command}\n}} </dev/null; printf '\\n%s_%s:%s\\n' ISOTEST E{id} \"$?\"\n"
        );
        let begin = Regex::new(&format!("ISOTEST_B{id}\n")).expect("marker regex");
        let end = Regex::new(&format!("\nISOTEST_E{id}:(-?[0-9]+)\n")).expect("marker regex");
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

/// Quotes `text` for a POSIX shell: one single-quoted word.
pub fn sh_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn quoting() {
        assert_eq!(super::sh_quote("it's"), "'it'\\''s'");
        assert_eq!(super::sh_quote("a b"), "'a b'");
    }
}
