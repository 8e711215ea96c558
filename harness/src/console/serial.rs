//! A serial console with a transcript and event-driven `expect`.
//!
//! A reader thread owns the socket's read side: it writes every byte to the raw
//! transcript, the plain text (escapes gone, kernel lines moved out of the lines
//! they cut: `ansi`, `kmsg`) to the readable transcript, appends the plain text to
//! a shared buffer and wakes waiters. `expect` sleeps on a condition variable until
//! new text arrives or its deadline passes, so waiting costs no CPU (which matters
//! when TCG guests need every core). expectrl was considered; its `expect` polls
//! a non-blocking read in a tight loop.

use super::ansi::AnsiStripper;
use super::kmsg::KernelLines;
use regex::bytes::Regex;
use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("timed out after {} s waiting for {waiting_for}", after.as_secs())]
    Timeout {
        waiting_for: String,
        after: Duration,
        last_lines: Vec<String>,
    },
    /// A fatal pattern (e.g. a kernel panic) appeared.
    #[error("{reason}")]
    Fatal {
        reason: String,
        context: Vec<String>,
    },
    #[error("the console closed (QEMU exited) while waiting for {waiting_for}")]
    Closed {
        waiting_for: String,
        last_lines: Vec<String>,
    },
    /// What came back on the console is not whole (noise that could not be
    /// told apart from it, or the guest could not list it).
    #[error("{waiting_for} could not be read back from the console: {detail}")]
    Garbled {
        waiting_for: String,
        detail: String,
        lines: Vec<String>,
    },
    #[error("console I/O")]
    Io(#[from] std::io::Error),
}

impl ConsoleError {
    /// The console lines that explain the error.
    pub fn lines(&self) -> &[String] {
        match self {
            ConsoleError::Timeout { last_lines, .. } | ConsoleError::Closed { last_lines, .. } => {
                last_lines
            }
            ConsoleError::Fatal { context, .. } => context,
            ConsoleError::Garbled { lines, .. } => lines,
            ConsoleError::Io(_) => &[],
        }
    }
}

/// What `expect` found.
#[derive(Debug, Clone)]
pub struct Match {
    /// Index of the pattern that matched.
    pub index: usize,
    /// The matched text.
    pub text: String,
    /// The rest of the line after the match, as far as it has arrived.
    pub rest_of_line: String,
    /// Offset of the match's start in the console text.
    pub start: usize,
}

#[derive(Default)]
struct Buffer {
    text: Vec<u8>,
    /// Every byte as it came, for a screen model of the terminal (`screen`).
    raw: Vec<u8>,
    closed: bool,
}

struct Shared {
    buffer: Mutex<Buffer>,
    grew: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Buffer> {
        self.buffer.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One more round of a wait that has not found what it waits for: an
    /// error when the console closed or the deadline (`timeout` after the
    /// start) passed, else the buffer once it grew (or the deadline came).
    fn wait_for_more<'s>(
        &'s self,
        buffer: MutexGuard<'s, Buffer>,
        deadline: Instant,
        timeout: Duration,
        waiting_for: &str,
    ) -> Result<MutexGuard<'s, Buffer>, ConsoleError> {
        if buffer.closed {
            return Err(ConsoleError::Closed {
                waiting_for: waiting_for.into(),
                last_lines: tail(&buffer.text),
            });
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(ConsoleError::Timeout {
                waiting_for: waiting_for.into(),
                after: timeout,
                last_lines: tail(&buffer.text),
            });
        }
        let (buffer, _) = self
            .grew
            .wait_timeout(buffer, deadline - now)
            .unwrap_or_else(|e| e.into_inner());
        Ok(buffer)
    }
}

/// Feeds one client of `serve` until it leaves or the console closes; then
/// shuts its socket, so that it sees the end (QEMU exited) at once.
fn serve_client(
    shared: &Arc<Shared>,
    writer: &UnixStream,
    client: UnixStream,
) -> std::io::Result<()> {
    // Keys: the client's bytes to the guest, on their own thread. The client
    // hanging up is its leaving: the wait below hears of it at once, so the
    // next client is served even while the guest prints nothing (a panicked
    // kernel, an idle shell), when no failed write would tell. The end of its
    // input alone is not: `echo poweroff | socat - UNIX-CONNECT:...` still reads.
    let left = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (mut from_client, mut to_guest) = (client.try_clone()?, writer.try_clone()?);
    let (keys_shared, keys_left) = (shared.clone(), left.clone());
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from_client, &mut to_guest);
        wait_for_hangup(&from_client);
        let _buffer = keys_shared.lock(); // so that the waiter cannot miss the news
        keys_left.store(true, std::sync::atomic::Ordering::SeqCst);
        keys_shared.grew.notify_all();
    });
    let fed = feed_client(shared, &client, &|| {
        left.load(std::sync::atomic::Ordering::SeqCst)
    });
    // Also wakes the keys thread when the console closed under a client still there.
    let _ = client.shutdown(std::net::Shutdown::Both);
    fed
}

/// Blocks until `socket` hangs up: its peer closed it, or it was shut down here.
/// (Linux reports a hang-up on a Unix socket only when both directions are
/// shut, so a client's half-close is not one.)
fn wait_for_hangup(socket: &UnixStream) {
    let fd = std::os::fd::AsRawFd::as_raw_fd(socket);
    loop {
        // No events asked for: poll reports POLLHUP and POLLERR regardless.
        let mut pfd = libc::pollfd {
            fd,
            events: 0,
            revents: 0,
        };
        // SAFETY: one valid pollfd for the duration of the call.
        let ready = unsafe { libc::poll(&mut pfd, 1, -1) };
        if ready > 0
            || (ready < 0 && std::io::Error::last_os_error().kind() != ErrorKind::Interrupted)
        {
            return;
        }
    }
}

/// The console's output to a client: a little of what came before, then
/// whatever comes, until `gone()` or the console closes.
fn feed_client(
    shared: &Shared,
    mut client: &UnixStream,
    gone: &dyn Fn() -> bool,
) -> std::io::Result<()> {
    const REPLAY: usize = 4096;
    let mut sent = shared.lock().raw.len().saturating_sub(REPLAY);
    loop {
        let chunk = {
            let mut buffer = shared.lock();
            while buffer.raw.len() == sent && !buffer.closed && !gone() {
                buffer = shared.grew.wait(buffer).unwrap_or_else(|e| e.into_inner());
            }
            if gone() || buffer.raw.len() == sent {
                return Ok(()); // the client left, or the console closed: QEMU exited
            }
            buffer.raw[sent..].to_vec()
        };
        sent += chunk.len();
        client.write_all(&chunk)?;
    }
}

/// A console quiet for this long is idle: kernel lines held back in the middle
/// of an unfinished line are shown (see `kmsg`).
const IDLE: Duration = Duration::from_millis(50);

/// The shell's commands and their decoded output, beside the transcripts.
pub const COMMAND_LOG: &str = "commands.log";

/// How many console lines an error shows.
pub const CONTEXT_LINES: usize = 20;

pub struct SerialConsole {
    shared: Arc<Shared>,
    writer: UnixStream,
    /// Where the next `expect` starts looking.
    cursor: usize,
    /// Patterns that end any wait with an error, e.g. a kernel panic.
    fatal: Vec<(String, Regex)>,
    transcript: PathBuf,
    /// `commands.log`: the shell's commands with their output as it was
    /// decoded (the transcript shows it as `od` listings, see `shell`).
    commands: Option<File>,
    attached: Instant,
}

impl SerialConsole {
    /// Starts reading `stream`; transcripts go to `<dir>/console.log` (plain
    /// text) and `<dir>/console.raw` (every byte), and the shell's commands
    /// to `<dir>/commands.log`.
    pub fn attach(stream: UnixStream, dir: &Path) -> std::io::Result<SerialConsole> {
        let attached = Instant::now();
        let commands = Some(File::create(dir.join(COMMAND_LOG))?);
        let transcript = dir.join("console.log");
        let mut plain = File::create(&transcript)?;
        let mut raw = File::create(dir.join("console.raw"))?;
        let writer = stream.try_clone()?;
        let shared = Arc::new(Shared {
            buffer: Mutex::new(Buffer::default()),
            grew: Condvar::new(),
        });
        let reader_shared = shared.clone();
        // Reads time out when the console is quiet, for `KernelLines::idle`.
        stream.set_read_timeout(Some(IDLE))?;
        std::thread::Builder::new()
            .name("serial-reader".into())
            .spawn(move || {
                let mut stream = stream;
                let mut stripper = AnsiStripper::default();
                let mut kernel = KernelLines::default();
                let mut chunk = [0u8; 4096];
                let (mut plain_chunk, mut text) = (Vec::new(), Vec::new());
                loop {
                    text.clear();
                    let n = match stream.read(&mut chunk) {
                        Ok(0) => break,
                        Ok(n) => n,
                        Err(e)
                            if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
                        {
                            kernel.idle(&mut text);
                            0
                        }
                        Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                        Err(_) => break,
                    };
                    plain_chunk.clear();
                    stripper.feed(&chunk[..n], &mut plain_chunk);
                    kernel.feed(&plain_chunk, &mut text);
                    if n == 0 && text.is_empty() {
                        continue;
                    }
                    // Transcripts are best effort: a full disk must not stop the trial.
                    let _ = raw.write_all(&chunk[..n]);
                    let _ = plain.write_all(&text);
                    {
                        let mut buffer = reader_shared.lock();
                        buffer.text.extend_from_slice(&text);
                        buffer.raw.extend_from_slice(&chunk[..n]);
                    }
                    reader_shared.grew.notify_all();
                }
                // What was held back is the console's last word.
                text.clear();
                kernel.idle(&mut text);
                let _ = plain.write_all(&text);
                let mut buffer = reader_shared.lock();
                buffer.text.extend_from_slice(&text);
                buffer.closed = true;
                drop(buffer);
                reader_shared.grew.notify_all();
            })?;
        Ok(SerialConsole {
            shared,
            writer,
            cursor: 0,
            fatal: Vec::new(),
            transcript,
            commands,
            attached,
        })
    }

    /// How long ago the console was attached (about when QEMU started).
    pub fn since_attached(&self) -> Duration {
        self.attached.elapsed()
    }

    /// Appends `entry` to `commands.log`. Best effort, as the transcripts: a
    /// full disk stops the log, not the trial.
    pub fn log_command(&mut self, entry: &str) {
        if let Some(file) = &mut self.commands {
            if file.write_all(entry.as_bytes()).is_err() {
                self.commands = None;
            }
        }
    }

    /// The readable transcript's path.
    /// Whether the console has closed: QEMU exited (or is exiting).
    pub fn closed(&self) -> bool {
        self.shared.lock().closed
    }

    pub fn transcript(&self) -> &Path {
        &self.transcript
    }

    /// From now on, text matching `pattern` ends every wait with `reason`.
    pub fn add_fatal(&mut self, reason: &str, pattern: Regex) {
        self.fatal.push((reason.to_owned(), pattern));
    }

    pub fn send(&mut self, bytes: &[u8]) -> Result<(), ConsoleError> {
        tracing::trace!(bytes = ?String::from_utf8_lossy(bytes), "console send");
        self.writer.write_all(bytes)?;
        Ok(())
    }

    /// `send` for a password: never traced or logged.
    pub fn send_secret(&mut self, bytes: &[u8]) -> Result<(), ConsoleError> {
        tracing::trace!(bytes = bytes.len(), "console send (a secret)");
        self.writer.write_all(bytes)?;
        Ok(())
    }

    /// Waits until one of `patterns` matches text that arrived after the previous
    /// match, and moves past it. `waiting_for` describes the wait in errors.
    pub fn expect(
        &mut self,
        patterns: &[&Regex],
        timeout: Duration,
        waiting_for: &str,
    ) -> Result<Match, ConsoleError> {
        let deadline = Instant::now() + timeout;
        let mut buffer = self.shared.lock();
        loop {
            let haystack = &buffer.text[self.cursor..];
            let fatal = self
                .fatal
                .iter()
                .filter_map(|(reason, re)| re.find(haystack).map(|m| (m.start(), reason)))
                .min_by_key(|(start, _)| *start);
            let found = patterns
                .iter()
                .enumerate()
                .filter_map(|(i, re)| re.find(haystack).map(|m| (i, m)))
                .min_by_key(|(_, m)| m.start());
            match (found, fatal) {
                (_, Some((at, reason))) if found.as_ref().is_none_or(|(_, m)| at <= m.start()) => {
                    let at = self.cursor + at;
                    return Err(ConsoleError::Fatal {
                        reason: reason.clone(),
                        context: around(&buffer.text, at),
                    });
                }
                (Some((index, m)), _) => {
                    let start = self.cursor + m.start();
                    let end = self.cursor + m.end();
                    let line_end = buffer.text[end..]
                        .iter()
                        .position(|&b| b == b'\n')
                        .map_or(buffer.text.len(), |p| end + p);
                    let result = Match {
                        index,
                        text: String::from_utf8_lossy(m.as_bytes()).into_owned(),
                        rest_of_line: String::from_utf8_lossy(&buffer.text[end..line_end])
                            .into_owned(),
                        start,
                    };
                    self.cursor = end;
                    return Ok(result);
                }
                _ => {}
            }
            buffer = self
                .shared
                .wait_for_more(buffer, deadline, timeout, waiting_for)?;
        }
    }

    /// Serves the console on a Unix socket at `path` (in a private directory),
    /// one client at a time: the client gets every byte from now on (after the
    /// last screenful, so it sees where the guest is) and its keys go to the
    /// guest. For a machine kept running after its trial; the transcripts go on.
    pub fn serve(&self, path: &Path) -> std::io::Result<()> {
        let listener = std::os::unix::net::UnixListener::bind(path)?;
        let shared = self.shared.clone();
        let writer = self.writer.try_clone()?;
        std::thread::Builder::new()
            .name("console-server".into())
            .spawn(move || {
                for client in listener.incoming() {
                    let Ok(client) = client else { break };
                    // A client that leaves makes room for the next.
                    let _ = serve_client(&shared, &writer, client);
                    if shared.lock().closed {
                        break;
                    }
                }
            })?;
        Ok(())
    }

    /// How many raw bytes have arrived: a mark for `raw_since`.
    pub fn raw_position(&self) -> usize {
        self.shared.lock().raw.len()
    }

    /// The raw bytes that arrived after the mark `from`.
    pub fn raw_since(&self, from: usize) -> Vec<u8> {
        let buffer = self.shared.lock();
        buffer.raw[from.min(buffer.raw.len())..].to_vec()
    }

    /// Waits until nothing has arrived for `quiet` (a full-screen program has
    /// finished drawing), at most `timeout`. Text-mode menus end their draw with
    /// cursor moves, not with words a pattern could wait for.
    pub fn wait_quiet(
        &mut self,
        quiet: Duration,
        timeout: Duration,
        waiting_for: &str,
    ) -> Result<(), ConsoleError> {
        let deadline = Instant::now() + timeout;
        let mut buffer = self.shared.lock();
        loop {
            let seen = buffer.raw.len();
            let now = Instant::now();
            if now >= deadline {
                return Err(ConsoleError::Timeout {
                    waiting_for: waiting_for.into(),
                    after: timeout,
                    last_lines: tail(&buffer.text),
                });
            }
            let (next, result) = self
                .shared
                .grew
                .wait_timeout(buffer, quiet.min(deadline - now))
                .unwrap_or_else(|e| e.into_inner());
            buffer = next;
            if buffer.closed {
                return Err(ConsoleError::Closed {
                    waiting_for: waiting_for.into(),
                    last_lines: tail(&buffer.text),
                });
            }
            if result.timed_out() && buffer.raw.len() == seen && Instant::now() < deadline {
                return Ok(());
            }
        }
    }

    /// Waits until `done` holds for every raw byte that has arrived (say, a
    /// screen read off them shows some text), checked again whenever more
    /// arrive, at most `timeout`.
    pub fn wait_raw(
        &mut self,
        timeout: Duration,
        waiting_for: &str,
        done: impl Fn(&[u8]) -> bool,
    ) -> Result<(), ConsoleError> {
        let deadline = Instant::now() + timeout;
        let mut buffer = self.shared.lock();
        loop {
            if done(&buffer.raw) {
                return Ok(());
            }
            buffer = self
                .shared
                .wait_for_more(buffer, deadline, timeout, waiting_for)?;
        }
    }

    /// The last console lines, for reports.
    pub fn last_lines(&self) -> Vec<String> {
        tail(&self.shared.lock().text)
    }

    /// The lines around an offset returned in a `Match`.
    pub fn lines_around(&self, offset: usize) -> Vec<String> {
        around(&self.shared.lock().text, offset)
    }

    /// Where the next `expect` starts, as an offset into the console text.
    pub fn position(&self) -> usize {
        self.cursor
    }

    /// The console text between two offsets.
    pub fn text_between(&self, from: usize, to: usize) -> String {
        let buffer = self.shared.lock();
        let to = to.min(buffer.text.len());
        String::from_utf8_lossy(&buffer.text[from.min(to)..to]).into_owned()
    }
}

fn lines_of(text: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(text)
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

fn tail(text: &[u8]) -> Vec<String> {
    let lines = lines_of(&text[text.len().saturating_sub(16 * 1024)..]);
    lines[lines.len().saturating_sub(CONTEXT_LINES)..].to_vec()
}

/// Lines before and after `offset`: what led up to it and what followed.
fn around(text: &[u8], offset: usize) -> Vec<String> {
    let before = lines_of(&text[offset.saturating_sub(8 * 1024)..offset]);
    let after = lines_of(&text[offset..text.len().min(offset + 8 * 1024)]);
    let mut out = before[before.len().saturating_sub(CONTEXT_LINES / 2)..].to_vec();
    // The line holding `offset` is split between the two halves: join it.
    if let (Some(last), Some(first)) = (out.last_mut(), after.first()) {
        if !text[..offset].ends_with(b"\n") {
            last.push_str(first);
            out.extend(after.iter().skip(1).take(CONTEXT_LINES / 2).cloned());
            return out;
        }
    }
    out.extend(after.into_iter().take(CONTEXT_LINES / 2));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads `client` until `wanted` has come, or fails after a few seconds.
    fn read_until(client: &mut UnixStream, wanted: &str, who: &str) {
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let (mut seen, mut chunk) = (Vec::new(), [0u8; 1024]);
        while !String::from_utf8_lossy(&seen).contains(wanted) {
            match client.read(&mut chunk) {
                Ok(n) if n > 0 => seen.extend_from_slice(&chunk[..n]),
                other => panic!(
                    "the {who} client got {:?} and then {other:?}",
                    String::from_utf8_lossy(&seen)
                ),
            }
        }
    }

    #[test]
    fn a_client_that_stops_typing_still_reads_and_sees_the_console_close() {
        let (mut guest, host) = UnixStream::pair().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let console = SerialConsole::attach(host, dir.path()).unwrap();
        let socket = dir.path().join("console.sock");
        console.serve(&socket).unwrap();
        // `echo poweroff | socat - UNIX-CONNECT:...`: its keys, then the end of its input.
        let mut client = UnixStream::connect(&socket).unwrap();
        client.write_all(b"poweroff\r").unwrap();
        client.shutdown(std::net::Shutdown::Write).unwrap();
        guest
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut keys = [0u8; 9];
        guest.read_exact(&mut keys).unwrap();
        assert_eq!(&keys, b"poweroff\r");
        guest.write_all(b"reboot: Power down\r\n").unwrap();
        read_until(&mut client, "Power down", "half-closed");
        // QEMU exits: the client sees the end, not a socket that stays open.
        drop(guest);
        let mut rest = Vec::new();
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        client
            .read_to_end(&mut rest)
            .expect("the end of the console, not a timeout");
    }

    #[test]
    fn a_silent_guest_serves_each_client_in_turn() {
        let (mut guest, host) = UnixStream::pair().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut console = SerialConsole::attach(host, dir.path()).unwrap();
        guest.write_all(b"Kernel panic - not syncing\r\n").unwrap();
        console
            .expect(
                &[&Regex::new("not syncing").unwrap()],
                Duration::from_secs(5),
                "the panic",
            )
            .unwrap();
        let socket = dir.path().join("console.sock");
        console.serve(&socket).unwrap();
        // The guest says nothing more: the first client's leaving alone must
        // make room for the second.
        read_until(
            &mut UnixStream::connect(&socket).unwrap(),
            "not syncing",
            "first",
        );
        let mut second = UnixStream::connect(&socket).unwrap();
        read_until(&mut second, "not syncing", "second");
        second.write_all(b"r").unwrap();
        guest
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut key = [0u8; 1];
        guest
            .read_exact(&mut key)
            .expect("the second client's key reaches the guest");
        assert_eq!(&key, b"r");
    }
}
