//! Machines started at once do not collide: eight QEMUs started together
//! through the library's own start path (a free port per machine, retried when
//! taken) get distinct forwarded ports, sockets, pidfiles and private
//! directories, and none outlives its `Machine`. They start paused (`-S`): no
//! guest runs, so eight fit on two cores. Signals and panics are in tests/cli.rs.

mod support;

use isotest::platform::Accel;
use isotest::platform::{Arch, Firmware};
use isotest::qemu::{find_qemu, Machine, MachineLogs, MachineSpec, PrivateDir};
use std::collections::HashSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Barrier};
use std::time::Duration;

/// Machines started together in one round.
const MACHINES: usize = 8;
/// Rounds: a collision that depends on timing gets more than one chance.
const ROUNDS: usize = 3;

/// What one machine got, seen while every machine of its round ran.
#[derive(Debug, Clone)]
struct Seen {
    pid: u32,
    port: u16,
    private: PathBuf,
    /// The unix sockets QEMU was told to connect to, read off its command line.
    sockets: Vec<PathBuf>,
}

/// Starts a paused machine as a trial does (private directory, free port,
/// sockets in the directory, pidfile in `artifacts`) and checks what is its own.
fn start(
    binary: &Path,
    iso: &Path,
    artifacts: &Path,
) -> Result<(Machine, PrivateDir, Seen), String> {
    std::fs::create_dir_all(artifacts)
        .map_err(|e| format!("create {}: {e}", artifacts.display()))?;
    let private = PrivateDir::new().map_err(|e| format!("private directory: {e}"))?;
    let mut spec = MachineSpec {
        arch: Arch::X86_64,
        firmware: Firmware::Bios,
        accel: Accel::Tcg,
        memory_mib: 256,
        cpus: 1,
        iso: iso.to_owned(),
        uefi: None,
        serial_socket: private.path().join("serial.sock"),
        qmp_socket: private.path().join("qmp.sock"),
        pidfile: artifacts.join("qemu.pid"),
        forward: None,
        vga_to_serial: None,
        paused: true,
        incoming: false,
        vmgenid: false,
    };
    let mut machine =
        Machine::start_forwarded(binary, &mut spec, 22, &MachineLogs::in_dir(artifacts))
            .map_err(|e| isotest::error::chain(&e))?;
    let state = machine.qmp().run_state().map_err(|e| e.to_string())?;
    if state != "prelaunch" {
        return Err(format!(
            "QEMU {} is `{state}`, not paused before launch",
            machine.pid()
        ));
    }
    let pid = machine.pid();
    let written = support::read_pid(&spec.pidfile);
    if written != Some(pid) {
        return Err(format!(
            "{} holds {written:?}, not QEMU's pid {pid}",
            spec.pidfile.display()
        ));
    }
    let port = spec.forward.ok_or("no port forwarded")?.0;
    let seen = Seen {
        pid,
        port,
        private: private.path().to_owned(),
        sockets: qemu_sockets(pid),
    };
    Ok((machine, private, seen))
}

/// The `path=` of each `-chardev socket,...` in QEMU `pid`'s command line as
/// the kernel holds it (/proc/PID/cmdline), up to the next comma: what this
/// QEMU connects to, whatever the spec said.
fn qemu_sockets(pid: u32) -> Vec<PathBuf> {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    cmdline
        .split(|&b| b == 0)
        .filter_map(|arg| std::str::from_utf8(arg).ok()?.strip_prefix("socket,"))
        .filter_map(|options| options.split(',').find_map(|o| o.strip_prefix("path=")))
        .map(PathBuf::from)
        .collect()
}

/// The inodes of the TCP sockets listening on 127.0.0.1:`port` (/proc/net/tcp:
/// local address `0100007F:<port in hex>`, state `0A`, inode in the 10th column).
fn listening_inodes(port: u16) -> Vec<String> {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let local = format!("0100007F:{port:04X}");
    table
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|f| f.len() > 9 && f[1] == local && f[3] == "0A")
        .map(|f| f[9].to_owned())
        .collect()
}

/// Whether process `pid` holds the socket of inode `inode` open.
fn holds_socket(pid: u32, inode: &str) -> bool {
    let wanted = format!("socket:[{inode}]");
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.filter_map(|fd| fd.ok())
        .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == wanted.as_str()))
}

/// Everything that must be one machine's own, across a round's machines.
fn collisions(seen: &[Seen]) -> Vec<String> {
    let mut problems = Vec::new();
    let distinct = |what: &str, values: Vec<String>, problems: &mut Vec<String>| {
        let unique: HashSet<&String> = values.iter().collect();
        if unique.len() != values.len() {
            problems.push(format!("{what} shared: {values:?}"));
        }
    };
    distinct(
        "ports",
        seen.iter().map(|s| s.port.to_string()).collect(),
        &mut problems,
    );
    distinct(
        "private directories",
        seen.iter()
            .map(|s| s.private.display().to_string())
            .collect(),
        &mut problems,
    );
    distinct(
        "sockets",
        seen.iter()
            .flat_map(|s| s.sockets.iter().map(|p| p.display().to_string()))
            .collect(),
        &mut problems,
    );
    for s in seen {
        // The forward is this QEMU's: it listens on the port, and no one else does.
        let inodes = listening_inodes(s.port);
        if inodes.len() != 1 || !holds_socket(s.pid, &inodes[0]) {
            problems.push(format!(
                "127.0.0.1:{} is not QEMU {}'s alone (listening sockets {inodes:?})",
                s.port, s.pid
            ));
        }
        let mode = s
            .private
            .metadata()
            .map(|m| m.permissions().mode() & 0o7777);
        if mode.as_ref().ok() != Some(&0o700) {
            problems.push(format!("{} is {mode:?}, not 0700", s.private.display()));
        }
        // Serial and QMP, each a socket the harness listens on in this machine's own directory.
        if s.sockets.len() != 2
            || !s
                .sockets
                .iter()
                .all(|p| p.starts_with(&s.private) && p.exists())
        {
            problems.push(format!(
                "QEMU {}'s sockets are not its own two in {}: {:?}",
                s.pid,
                s.private.display(),
                s.sockets
            ));
        }
    }
    problems
}

/// One round: MACHINES threads start their machine together, report what they
/// got, and hold it until the round has been checked. A thread owns its
/// machine from start to drop, as PR_SET_PDEATHSIG requires.
fn round(binary: &Path, iso: &Path, artifacts: &Path) -> (Vec<Result<Seen, String>>, Vec<String>) {
    let go = Barrier::new(MACHINES);
    let checked = Barrier::new(MACHINES + 1);
    let (tx, rx) = mpsc::channel();
    std::thread::scope(|scope| {
        for i in 0..MACHINES {
            let (go, checked, tx) = (&go, &checked, tx.clone());
            let artifacts = artifacts.join(format!("machine-{i}"));
            scope.spawn(move || {
                go.wait();
                let started = start(binary, iso, &artifacts);
                let _ = tx.send(
                    started
                        .as_ref()
                        .map(|(_, _, seen)| seen.clone())
                        .map_err(Clone::clone),
                );
                // Every thread reaches the barrier, started or not, so the round ends.
                checked.wait();
                drop(started);
            });
        }
        drop(tx);
        let results: Vec<Result<Seen, String>> = rx.iter().take(MACHINES).collect();
        let started: Vec<Seen> = results
            .iter()
            .filter_map(|r| r.as_ref().ok())
            .cloned()
            .collect();
        let problems = collisions(&started);
        checked.wait();
        (results, problems)
    })
}

#[test]
fn eight_paused_machines_started_at_once_share_nothing_and_leave_nothing() {
    let binary = find_qemu(Arch::X86_64).expect("qemu-system-x86_64");
    // A real ISO, though no guest runs: QEMU opens it as the CD-ROM.
    let iso = support::fixture("rescue").unwrap();
    let artifacts = support::artifacts().join("leaks-collisions");
    for r in 0..ROUNDS {
        let (results, problems) = round(&binary, &iso, &artifacts.join(format!("round-{r}")));
        let failed: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
        assert!(
            failed.is_empty(),
            "round {r}: machines did not start: {failed:?}"
        );
        assert!(problems.is_empty(), "round {r}: {problems:#?}");
        for seen in results.iter().flatten() {
            // Dropped with their threads: killed and reaped at once.
            assert!(
                support::gone_within(seen.pid, Duration::from_secs(2)),
                "round {r}: QEMU {} outlived its Machine",
                seen.pid
            );
            assert!(
                !seen.private.exists(),
                "round {r}: {} outlived its PrivateDir",
                seen.private.display()
            );
        }
    }
}
