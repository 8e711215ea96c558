//! The user's terminal on a serial console (`isotest console`): the terminal in
//! raw mode, bytes both ways, and an escape sequence to leave, Ctrl-] then `q`
//! as in telnet. The terminal's modes are restored on every way out: a normal
//! return, a panic (a guard), and the Ctrl-C/SIGTERM handler, which exits
//! without running destructors (`restore_terminal`).

use nix::sys::termios::{self, SetArg, Termios};
use std::io::{IsTerminal, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixStream;
use std::sync::Mutex;

/// The escape sequence, as the user is told it.
pub const ESCAPE_HELP: &str = "Ctrl-] then q";
/// Ctrl-]: the first key of the escape sequence.
const ESCAPE: u8 = 0x1d;

#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    #[error("standard input is not a terminal: the console needs one to type into")]
    NotATerminal,
    #[error("cannot set the terminal's modes")]
    Termios(#[from] nix::Error),
    #[error("console I/O")]
    Io(#[from] std::io::Error),
}

/// How an attached session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detached {
    /// The user typed the escape sequence.
    Escape,
    /// The console closed: QEMU exited.
    Closed,
}

/// The terminal's modes before raw mode, while it is raw.
static SAVED: Mutex<Option<Termios>> = Mutex::new(None);

/// Puts the terminal back as it was, if it is raw; for signal handlers too.
pub fn restore_terminal() {
    if let Some(saved) = SAVED.lock().unwrap_or_else(|e| e.into_inner()).take() {
        let _ = termios::tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, &saved);
    }
}

/// Raw mode for as long as it lives.
struct RawMode;

impl RawMode {
    fn enter() -> Result<RawMode, AttachError> {
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            return Err(AttachError::NotATerminal);
        }
        let saved = termios::tcgetattr(stdin.as_fd())?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        *SAVED.lock().unwrap_or_else(|e| e.into_inner()) = Some(saved);
        let guard = RawMode;
        termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw)?;
        Ok(guard)
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        restore_terminal();
    }
}

/// What the keys typed so far mean: bytes for the guest, or the escape.
#[derive(Debug, Default)]
struct Keys {
    /// Ctrl-] was typed last.
    pending: bool,
}

impl Keys {
    /// The bytes of `typed` to send on; `None` once the escape is complete.
    /// Ctrl-] followed by anything but `q` goes to the guest as typed (twice
    /// sends one Ctrl-]).
    fn feed(&mut self, typed: &[u8], out: &mut Vec<u8>) -> Option<()> {
        for &b in typed {
            match (self.pending, b) {
                (true, b'q' | b'Q') => return None,
                (true, ESCAPE) => out.push(ESCAPE),
                (true, other) => out.extend([ESCAPE, other]),
                (false, ESCAPE) => {}
                (false, other) => out.push(other),
            }
            self.pending = !self.pending && b == ESCAPE;
        }
        Some(())
    }
}

/// Connects the terminal to `console` until the user types the escape sequence
/// or the console closes.
pub fn attach_terminal(console: UnixStream) -> Result<Detached, AttachError> {
    let _raw = RawMode::enter()?;
    let mut console = console;
    let stdin = std::io::stdin();
    let mut stdout = std::io::stdout();
    let mut keys = Keys::default();
    let mut buf = [0u8; 4096];
    loop {
        let mut fds = [
            libc::pollfd {
                fd: stdin.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: console.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: two valid pollfds for the duration of the call; no timeout:
        // only a key or the console's output wakes this loop.
        if unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) } < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e.into());
        }
        if fds[1].revents != 0 {
            let n = std::io::Read::read(&mut console, &mut buf)?;
            if n == 0 {
                return Ok(Detached::Closed);
            }
            stdout.write_all(&buf[..n])?;
            stdout.flush()?;
        }
        if fds[0].revents != 0 {
            // Unbuffered: what std's Stdin buffered would not wake poll again.
            let n = nix::unistd::read(stdin.as_raw_fd(), &mut buf)?;
            let mut out = Vec::new();
            if n == 0 || keys.feed(&buf[..n], &mut out).is_none() {
                return Ok(Detached::Escape);
            }
            std::io::Write::write_all(&mut console, &out)?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(keys: &mut Keys, typed: &[u8]) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        keys.feed(typed, &mut out).map(|()| out)
    }

    #[test]
    fn ctrl_bracket_then_q_escapes_and_everything_else_reaches_the_guest() {
        let mut keys = Keys::default();
        assert_eq!(feed(&mut keys, b"ls\r\x03"), Some(b"ls\r\x03".to_vec()));
        assert_eq!(
            feed(&mut keys, b"\x1d"),
            Some(Vec::new()),
            "Ctrl-] alone waits for the next key"
        );
        assert_eq!(feed(&mut keys, b"x"), Some(b"\x1dx".to_vec()));
        assert_eq!(feed(&mut keys, b"\x1d\x1d"), Some(b"\x1d".to_vec()));
        assert_eq!(
            feed(&mut keys, b"q"),
            Some(b"q".to_vec()),
            "q after a sent Ctrl-] is a plain q"
        );
        assert_eq!(feed(&mut keys, b"a\x1dq"), None);
        // The escape split over two reads.
        let mut keys = Keys::default();
        assert_eq!(feed(&mut keys, b"\x1d"), Some(Vec::new()));
        assert_eq!(feed(&mut keys, b"q"), None);
    }
}
