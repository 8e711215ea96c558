//! One running QEMU process, owned: it is killed when the `Machine` is dropped
//! (success, failure, timeout, panic), when the harness is interrupted
//! (`kill_all_machines` from the signal handler) and when the harness dies
//! (`PR_SET_PDEATHSIG`).

use super::args::{command_line, MachineSpec};
use super::error::QemuError;
use super::exit::QemuExit;
use super::qmp::Qmp;
use super::screendump::save_as_png;
use std::collections::HashSet;
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// PIDs of every live QEMU this process started.
static LIVE: Mutex<Option<HashSet<u32>>> = Mutex::new(None);

fn live() -> std::sync::MutexGuard<'static, Option<HashSet<u32>>> {
    LIVE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Set once `kill_all_machines` ran: the process is on its way out.
static STOPPING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether the Ctrl-C/SIGTERM handler is stopping every QEMU (and will exit).
pub fn stopping() -> bool {
    STOPPING.load(std::sync::atomic::Ordering::SeqCst)
}

/// When the Ctrl-C/SIGTERM handler is stopping every QEMU, parks this thread
/// for good: the handler exits the process (130), and a thread that saw its
/// QEMU die of it must not race the handler to a summary and another exit
/// status. Returns at once otherwise.
pub fn wait_if_stopping() {
    while stopping() {
        std::thread::park();
    }
}

/// Kills every QEMU this process started; for Ctrl-C and SIGTERM handlers.
pub fn kill_all_machines() {
    STOPPING.store(true, std::sync::atomic::Ordering::SeqCst);
    for pid in live().iter().flatten() {
        // SAFETY: kill(2) on a child PID we registered and have not reaped yet.
        unsafe { libc::kill(*pid as libc::pid_t, libc::SIGKILL) };
    }
}

/// How long QEMU may take to start and connect its sockets.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Where a machine's logs go: QEMU's stderr and the QMP conversation.
#[derive(Debug, Clone)]
pub struct MachineLogs {
    pub stderr: PathBuf,
    pub qmp: PathBuf,
}

impl MachineLogs {
    /// `qemu.stderr` and `qmp.log` in a trial's artifacts directory.
    pub fn in_dir(dir: &Path) -> MachineLogs {
        MachineLogs {
            stderr: dir.join("qemu.stderr"),
            qmp: dir.join("qmp.log"),
        }
    }
}

pub struct Machine {
    /// Dropped first (fields drop in order): QEMU is gone before its sockets
    /// close, so it never sees them close.
    child: OwnedQemu,
    serial: Option<UnixStream>,
    qmp: Qmp,
    stderr_path: PathBuf,
}

impl Machine {
    /// Starts QEMU for `spec`. `binary` is the emulator; QEMU's stderr goes to
    /// `logs.stderr`, the QMP conversation to `logs.qmp`. The sockets named in
    /// `spec` must live in a private directory.
    pub fn start(
        binary: &Path,
        spec: &MachineSpec,
        logs: &MachineLogs,
    ) -> Result<Machine, QemuError> {
        let stderr_path = logs.stderr.as_path();
        if !spec.iso.is_file() {
            return Err(QemuError::NoImage(spec.iso.clone()));
        }
        let io = |context: String| move |source| QemuError::Io { context, source };
        // The sockets live in the trial's private directory; a file already there
        // is left over from an earlier start attempt of this trial.
        for socket in [&spec.serial_socket, &spec.qmp_socket] {
            let _ = std::fs::remove_file(socket);
        }
        let serial_listener = UnixListener::bind(&spec.serial_socket)
            .map_err(io(format!("listen on {}", spec.serial_socket.display())))?;
        let qmp_listener = UnixListener::bind(&spec.qmp_socket)
            .map_err(io(format!("listen on {}", spec.qmp_socket.display())))?;
        let stderr = std::fs::File::create(stderr_path)
            .map_err(io(format!("create {}", stderr_path.display())))?;

        let mut command = Command::new(binary);
        command
            .args(command_line(spec))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        tracing::debug!(binary = %binary.display(), args = ?command.get_args().collect::<Vec<_>>(), "starting QEMU");
        let child = OwnedQemu::spawn(&mut command).map_err(|source| QemuError::Spawn {
            binary: binary.display().to_string(),
            source,
        })?;
        let mut starting = Starting {
            child: Some(child),
            stderr_path,
        };

        let serial = starting.accept(&serial_listener, "serial")?;
        let qmp_stream = starting.accept(&qmp_listener, "QMP")?;
        let qmp = Qmp::connect(qmp_stream, Some(&logs.qmp))?;
        Ok(Machine {
            child: starting.child.take().expect("child"),
            serial: Some(serial),
            qmp,
            stderr_path: stderr_path.to_owned(),
        })
    }

    /// The serial port's stream; can be taken once.
    pub fn take_serial(&mut self) -> Option<UnixStream> {
        self.serial.take()
    }

    pub fn qmp(&mut self) -> &mut Qmp {
        &mut self.qmp
    }

    /// Saves what the display shows as the PNG `png`. QEMU writes its dump
    /// beside it (`<png>.dump`, PNG or PPM), which is converted when it is PPM
    /// and removed.
    pub fn screendump(&mut self, png: &Path) -> Result<(), QemuError> {
        let dump = png.with_extension("dump");
        let _ = std::fs::remove_file(&dump);
        let written = self.qmp.screendump(&dump);
        let saved = written.and_then(|format| {
            tracing::debug!("QEMU wrote the screendump as {format:?}");
            save_as_png(&dump, png).map_err(QemuError::Screen)
        });
        let _ = std::fs::remove_file(&dump);
        saved
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What QEMU printed on stderr so far (warnings, fatal errors).
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Blocks until QEMU exits (or is killed, e.g. by the Ctrl-C handler).
    pub fn wait(&mut self) -> std::io::Result<std::process::ExitStatus> {
        self.child.wait()
    }

    /// Why QEMU went away, once its serial console closed: the QMP events it
    /// sent last and its exit status, waiting a few seconds for both (a QEMU
    /// that closed its console is on its way out).
    pub fn why_exited(&mut self) -> QemuExit {
        const WITHIN: Duration = Duration::from_secs(5);
        let messages = self.qmp.remaining_messages(WITHIN);
        let deadline = Instant::now() + WITHIN;
        let status = loop {
            match self.child.try_wait() {
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Ok(status) => break status,
                Err(_) => break None,
            }
        };
        QemuExit::new(&messages, status, &self.stderr())
    }

    /// Whether QEMU is still running, and its exit status if not.
    pub fn exit_status(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

/// A QEMU process of ours, the machine's or the KVM probe's: it dies with the
/// harness, `kill_all_machines` knows it until it is reaped, and dropping it
/// kills and reaps it.
pub(super) struct OwnedQemu(Child);

impl OwnedQemu {
    /// Spawns `command`; refused once the Ctrl-C/SIGTERM handler is stopping
    /// every QEMU (it may have run before this one was known to it).
    pub(super) fn spawn(command: &mut Command) -> std::io::Result<OwnedQemu> {
        let parent = std::process::id();
        // SAFETY: the closure runs between fork and exec and only makes
        // async-signal-safe calls (prctl, setpgid, getppid, _exit).
        unsafe {
            command.pre_exec(move || {
                // Die with the harness. PDEATHSIG fires when the spawning *thread*
                // exits, so a QEMU must be started by the thread that owns it.
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                // A process group of its own: a terminal's Ctrl-C reaches the
                // harness alone, whose handler stops QEMU and cleans up.
                libc::setpgid(0, 0);
                if libc::getppid() as u32 != parent {
                    libc::_exit(1); // the harness died before prctl took effect
                }
                Ok(())
            });
        }
        let child = command.spawn()?;
        live().get_or_insert_with(HashSet::new).insert(child.id());
        let owned = OwnedQemu(child);
        // The handler sets STOPPING before it goes through the PIDs: either it
        // saw this one, or this sees STOPPING.
        if stopping() {
            return Err(std::io::Error::other(
                "isotest is stopping (Ctrl-C or SIGTERM)",
            )); // killed as it drops
        }
        Ok(owned)
    }

    pub(super) fn id(&self) -> u32 {
        self.0.id()
    }

    /// Its exit status, if it exited; once reaped, its PID (which the system
    /// may give to another process) is no longer ours to kill.
    pub(super) fn try_wait(&mut self) -> std::io::Result<Option<std::process::ExitStatus>> {
        let mut live = live(); // held: the handler must not kill a PID reaped here
        let status = self.0.try_wait();
        if let (Ok(Some(_)), Some(set)) = (&status, live.as_mut()) {
            set.remove(&self.0.id());
        }
        status
    }

    /// Waits for it to exit; the handler can still kill it meanwhile.
    pub(super) fn wait(&mut self) -> std::io::Result<std::process::ExitStatus> {
        let status = self.0.wait();
        forget(self.0.id());
        status
    }

    pub(super) fn take_stdout(&mut self) -> Option<std::process::ChildStdout> {
        self.0.stdout.take()
    }

    pub(super) fn take_stderr(&mut self) -> Option<std::process::ChildStderr> {
        self.0.stderr.take()
    }
}

impl Drop for OwnedQemu {
    fn drop(&mut self) {
        // Forgotten first: from here on only this kills it, and reaps it.
        forget(self.0.id());
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn forget(pid: u32) {
    if let Some(set) = live().as_mut() {
        set.remove(&pid);
    }
}

/// Whether `pid` is a QEMU of ours that is still running.
#[cfg(test)]
pub(super) fn is_live(pid: u32) -> bool {
    live().iter().flatten().any(|p| *p == pid)
}

/// A QEMU between spawn and a working QMP handshake: killed if start-up fails
/// (the child is dropped with it).
struct Starting<'a> {
    child: Option<OwnedQemu>,
    stderr_path: &'a Path,
}

impl Starting<'_> {
    /// Waits for QEMU to connect to `listener`, noticing if it exits instead.
    fn accept(
        &mut self,
        listener: &UnixListener,
        what: &'static str,
    ) -> Result<UnixStream, QemuError> {
        let fd = std::os::fd::AsRawFd::as_raw_fd(listener);
        let deadline = Instant::now() + CONNECT_TIMEOUT;
        loop {
            let child = self.child.as_mut().expect("child");
            if let Ok(Some(status)) = child.try_wait() {
                let stderr = std::fs::read_to_string(self.stderr_path).unwrap_or_default();
                return Err(QemuError::StartFailed {
                    status: status.to_string(),
                    stderr: stderr.trim().to_owned(),
                });
            }
            if Instant::now() >= deadline {
                return Err(QemuError::NoConnection {
                    what,
                    secs: CONNECT_TIMEOUT.as_secs(),
                });
            }
            // Wait for a connection, but wake up now and then to see whether QEMU died.
            let mut pfd = libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd for the duration of the call.
            let ready = unsafe { libc::poll(&mut pfd, 1, 200) };
            if ready > 0 {
                let (stream, _) = listener.accept().map_err(|source| QemuError::Io {
                    context: format!("accept {what} connection"),
                    source,
                })?;
                return Ok(stream);
            }
        }
    }
}
