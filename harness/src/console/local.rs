//! The tests' guest: a real `/bin/sh` on the other end of a socket pair,
//! driven through the same console reader and command framing as a guest's
//! shell. Killed when dropped; its commands' files go to the test's own
//! directory, not the host's /tmp.

use super::serial::SerialConsole;
use super::shell::Shell;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub(crate) struct LocalShell {
    child: Child,
    console: SerialConsole,
    dir: tempfile::TempDir,
}

impl LocalShell {
    /// A plain `/bin/sh`.
    pub fn new() -> LocalShell {
        LocalShell::start(None, |console_side| console_side)
    }

    /// A `/bin/sh` whose PATH has `bin` first (then the usual tools), its
    /// output to the console through `wire` (e.g. a line that adds noise).
    pub fn start(bin: Option<&Path>, wire: impl FnOnce(UnixStream) -> UnixStream) -> LocalShell {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("tmp")).expect("the commands' directory");
        let (ours, theirs) = UnixStream::pair().expect("socketpair");
        let fd = |s: &UnixStream| Stdio::from(OwnedFd::from(s.try_clone().expect("dup")));
        let mut command = Command::new("/bin/sh");
        if let Some(bin) = bin {
            command.env("PATH", format!("{}:/usr/bin:/bin", bin.display()));
        }
        let child = command
            .stdin(fd(&theirs))
            .stdout(fd(&theirs))
            .stderr(fd(&theirs))
            .spawn()
            .expect("/bin/sh");
        drop(theirs);
        let console = SerialConsole::attach(wire(ours), dir.path()).expect("attach");
        LocalShell {
            child,
            console,
            dir,
        }
    }

    /// `program` as a login shell on a pseudo-terminal of its own (its
    /// controlling terminal, as a console's shell has), with its own home;
    /// the terminal's other side is the console. For the line that starts
    /// isotest's /bin/sh from any login shell.
    pub fn on_terminal(program: &Path) -> LocalShell {
        use std::os::unix::process::CommandExt;
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("tmp")).expect("the commands' directory");
        let pty = nix::pty::openpty(None, None).expect("openpty");
        let fd = |f: &OwnedFd| Stdio::from(f.try_clone().expect("dup"));
        let mut command = Command::new(program);
        command
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", dir.path())
            .env("TERM", "vt220")
            .stdin(fd(&pty.slave))
            .stdout(fd(&pty.slave))
            .stderr(fd(&pty.slave));
        // A session of its own with the terminal as its controlling one, as
        // login(1) gives a console's shell: job control works as there.
        unsafe {
            command.pre_exec(|| {
                nix::unistd::setsid().map_err(std::io::Error::from)?;
                if libc::ioctl(0, libc::TIOCSCTTY, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn().expect("a login shell");
        drop(pty.slave);
        let (ours, theirs) = UnixStream::pair().expect("socketpair");
        let master = std::fs::File::from(pty.master);
        let (mut from_terminal, mut to_terminal) = (master.try_clone().expect("dup"), master);
        let (mut to_console, mut from_console) = (theirs.try_clone().expect("dup"), theirs);
        std::thread::spawn(move || std::io::copy(&mut from_terminal, &mut to_console));
        std::thread::spawn(move || std::io::copy(&mut from_console, &mut to_terminal));
        let console = SerialConsole::attach(ours, dir.path()).expect("attach");
        LocalShell {
            child,
            console,
            dir,
        }
    }

    /// The console, as `boot_to_shell` has it before the shell.
    pub fn console(&mut self) -> &mut SerialConsole {
        &mut self.console
    }

    /// The shell, not stretched (scale 1).
    pub fn shell(&mut self) -> Shell<'_> {
        let scratch = self.scratch();
        Shell::new(&mut self.console, 1).with_scratch(&scratch)
    }

    /// Where the console's transcripts and logs are.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Where the commands' output files go.
    pub fn scratch(&self) -> PathBuf {
        self.dir.path().join("tmp")
    }
}

impl Drop for LocalShell {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
