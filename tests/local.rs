//! Local use: the live progress on a terminal and plain lines elsewhere,
//! `isotest console` and `run --keep-on-failure`, through a pseudo-terminal as
//! a user sees them. Short boots: the `panic` fixture (dies right after its
//! boot menu) and, three times, the rescue fixture up to its isolinux menu;
//! and one whole boot of the rescue fixture, shared by two trials.

mod support;

use expectrl::{Regex, Session};
use nix::sys::termios::{tcgetattr, LocalFlags, Termios};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use support::text;

/// `command` on a pseudo-terminal of 120 columns, with a deadline for each expect.
fn on_a_terminal(command: Command, timeout: Duration) -> Session {
    let mut session = Session::spawn(command).expect("spawn on a pty");
    session.get_process_mut().set_window_size(120, 40).unwrap();
    session.set_expect_timeout(Some(timeout));
    session
}

/// The terminal modes isotest sees: those of the pty's slave side (Linux keeps
/// the master's apart).
fn modes(session: &Session) -> Termios {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    let master = session.get_process().get_raw_handle().unwrap();
    let mut name = [0 as libc::c_char; 128];
    // SAFETY: a valid pty master fd and a buffer of the length given.
    assert_eq!(
        unsafe { libc::ptsname_r(master.as_raw_fd(), name.as_mut_ptr(), name.len()) },
        0
    );
    // SAFETY: ptsname_r wrote a NUL-terminated name into `name`.
    let name = unsafe { std::ffi::CStr::from_ptr(name.as_ptr()) }
        .to_str()
        .unwrap()
        .to_owned();
    let slave = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open(&name)
        .unwrap();
    tcgetattr(&slave).unwrap()
}

fn expect(session: &mut Session, pattern: &str) -> String {
    match session.expect(Regex(pattern)) {
        Ok(found) => text(found.get(0).unwrap_or_default()),
        Err(e) => panic!("waiting for /{pattern}/ on the terminal: {e}"),
    }
}

/// The capture group 1 of `pattern`.
fn capture(session: &mut Session, pattern: &str) -> String {
    let found = session
        .expect(Regex(pattern))
        .unwrap_or_else(|e| panic!("waiting for /{pattern}/: {e}"));
    text(found.get(1).expect("a group"))
}

/// The exit code of the session's process, waited for.
fn exit_code(session: &Session) -> Option<i32> {
    match session.get_process().wait().unwrap() {
        expectrl::WaitStatus::Exited(_, code) => Some(code),
        other => panic!("isotest did not exit normally: {other:?}"),
    }
}

/// A scenario of one BIOS trial of `iso`, named `name`, that expects a hostname.
fn scenario(dir: &Path, name: &str, iso: &Path) -> PathBuf {
    let path = dir.join(format!("{name}.yaml"));
    let yaml = format!(
        "image: {}\narch: x86_64\nfirmware: bios\nexpect:\n  hostname: rescue\n",
        iso.display()
    );
    std::fs::write(&path, yaml).unwrap();
    path
}

/// Off a terminal (a pipe, as in CI) a run prints one plain line per finished
/// trial and the summary, nothing drawn; on a terminal the same line arrives.
/// (A skipped trial: nothing boots.)
#[test]
fn off_a_terminal_plain_lines_and_on_one_the_same_line() {
    let dir = tempfile::tempdir().unwrap();
    // No `firmware:`: UEFI is skipped where there is no OVMF, not asked for.
    let path = support::plain_scenario(dir.path(), "");
    let artifacts = support::artifacts().join("local-plain");
    let mut command = support::isotest_command();
    command
        .arg("run")
        .arg(&path)
        .args(["--filter", "uefi", "--artifacts"])
        .arg(&artifacts);
    support::hide_ovmf(&mut command);
    let out = command.output().unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{stdout}{}", text(&out.stderr));
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].starts_with("plain::x86_64::uefi") && lines[0].contains("SKIP  no UEFI firmware"),
        "{stdout}"
    );
    assert_eq!(lines[1], "", "{stdout}");
    assert!(
        lines[2].contains("0 passed, 0 failed, 1 skipped, 0 could not test"),
        "{stdout}"
    );
    assert!(
        !stdout.contains('\x1b') && !stdout.contains('\r'),
        "terminal control in a pipe: {stdout:?}"
    );

    let mut command = support::isotest_command();
    command
        .arg("run")
        .arg(&path)
        .args(["--filter", "uefi", "--artifacts"])
        .arg(&artifacts);
    support::hide_ovmf(&mut command);
    let mut session = on_a_terminal(command, Duration::from_secs(30));
    expect(
        &mut session,
        r"plain::x86_64::uefi\s+SKIP  no UEFI firmware",
    );
    expect(
        &mut session,
        "0 passed, 0 failed, 1 skipped, 0 could not test",
    );
    assert_eq!(exit_code(&session), Some(3));
}

/// `isotest run ARGS --artifacts ARTIFACTS` with its private directories in
/// `tmp` (`$TMPDIR`), warnings only in its log.
fn isotest_run(args: impl IntoIterator<Item = PathBuf>, artifacts: &Path, tmp: &Path) -> Command {
    let mut command = support::isotest_command();
    command
        .arg("run")
        .args(args)
        .arg("--artifacts")
        .arg(artifacts)
        .env("TMPDIR", tmp)
        .env("ISOTEST_LOG", "isotest=warn");
    command
}

/// A run of the `panic` fixture with --keep-on-failure on a terminal, up to
/// where it says how to reach the failed VM it keeps (the live line showed
/// the boot's phase and time on the way).
struct Kept {
    session: Session,
    qemu: u32,
    socket: PathBuf,
    /// $TMPDIR of the run, where its private directory is.
    tmp: tempfile::TempDir,
    _scenario: tempfile::TempDir,
}

fn kept_run(name: &str) -> Kept {
    let iso = support::fixture("panic").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let artifacts = support::artifacts().join(name);
    let command = isotest_run(
        [
            scenario(dir.path(), "kept", &iso),
            "--keep-on-failure".into(),
        ],
        &artifacts,
        tmp.path(),
    );
    let mut session = on_a_terminal(command, Duration::from_secs(300));

    // The live line: trial, phase, elapsed (indicatif's `{elapsed}`, e.g. `12s`).
    expect(&mut session, r"kept::x86_64::bios  boot menu  \d+s");
    expect(&mut session, r"kept::x86_64::bios [^\n]*FAIL");
    let socket = PathBuf::from(capture(&mut session, r"isotest console --attach (\S+)"));
    expect(&mut session, "press Ctrl-C to stop it");
    let qemu =
        support::read_pid(&artifacts.join("kept-x86_64-bios/qemu.pid")).expect("QEMU's pidfile");
    assert!(support::process_alive(qemu), "the failed VM was not kept");
    Kept {
        session,
        qemu,
        socket,
        tmp,
        _scenario: dir,
    }
}

/// On a terminal, the running trial's line shows its phase and elapsed time.
/// With --keep-on-failure the failed VM stays up after the report, its console
/// served on the socket the run names (it replays the panic, to socket
/// clients and to the `isotest console --attach` the run prints), until
/// Ctrl-C: then QEMU and the private directory are gone.
#[test]
fn keep_on_failure_keeps_the_vm_until_ctrl_c_with_live_phases() {
    let Kept {
        mut session,
        qemu,
        socket,
        tmp,
        ..
    } = kept_run("local-keep");
    let private = socket.parent().unwrap().to_owned();
    assert!(
        private.starts_with(tmp.path()) && private.is_dir(),
        "{}",
        private.display()
    );
    // Its console, as a client sees it: the last screenful first. The guest
    // says nothing more after its panic, and a second client, after the
    // first left, is served the same.
    for client in ["first", "second"] {
        let mut stream = std::os::unix::net::UnixStream::connect(&socket).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut seen = Vec::new();
        let mut chunk = [0u8; 4096];
        while !text(&seen).contains("Kernel panic") {
            let n = stream.read(&mut chunk).unwrap_or_else(|e| {
                panic!("the kept console replays its last output to the {client} client: {e}")
            });
            assert!(n > 0, "the console closed: {}", text(&seen));
            seen.extend_from_slice(&chunk[..n]);
        }
        drop(stream);
        assert!(
            support::process_alive(qemu),
            "a client that left stopped the VM"
        );
    }
    // The command the run printed: the same replay on this terminal, and
    // Ctrl-] q leaves the VM running.
    let mut attach = support::isotest_command();
    attach.arg("console").arg("--attach").arg(&socket);
    let mut attached = on_a_terminal(attach, Duration::from_secs(30));
    expect(&mut attached, "attached to ");
    expect(&mut attached, "Kernel panic");
    attached.send(b"\x1dq").unwrap();
    expect(&mut attached, "detached; the machine keeps running");
    assert_eq!(exit_code(&attached), Some(0));
    assert!(
        support::process_alive(qemu),
        "`isotest console --attach` stopped the VM it left"
    );

    session.send([3u8]).unwrap(); // Ctrl-C, through the terminal's line discipline
    assert_eq!(exit_code(&session), Some(130));
    assert!(
        support::gone_within(qemu, Duration::from_secs(5)),
        "QEMU {qemu} survived Ctrl-C"
    );
    assert!(!private.exists(), "the private directory outlived Ctrl-C");
}

/// A kept VM whose QEMU exits (here it is stopped, as a guest that powers off
/// ends it) ends the run, with the failed trial's status, and leaves neither
/// QEMU nor the private directory.
#[test]
fn keep_on_failure_ends_when_qemu_exits() {
    let Kept {
        mut session,
        qemu,
        socket,
        ..
    } = kept_run("local-keep-exits");
    let private = socket.parent().unwrap().to_owned();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(qemu as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    // Bounded: a run that kept waiting would fail here, not hang the suite.
    session.set_expect_timeout(Some(Duration::from_secs(30)));
    if let Err(e) = session.expect(expectrl::Eof) {
        panic!("the run did not end when its kept QEMU exited: {e}");
    }
    assert_eq!(exit_code(&session), Some(1));
    assert!(!support::process_alive(qemu), "QEMU {qemu} lives on");
    assert!(!private.exists(), "the private directory outlived the run");
}

/// On a terminal, a trial restored from a shared boot says whose machine it
/// restores (its boot's phases are that one's), then both trials' lines
/// arrive. One boot of the rescue fixture, two scenarios on it (two boots
/// where QEMU cannot save a machine, and then only the lines are asked for).
#[test]
fn a_restored_trial_says_whose_machine_it_restores() {
    let iso = support::fixture("rescue").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let artifacts = support::artifacts().join("local-restoring");
    let command = isotest_run(
        [
            scenario(dir.path(), "lead", &iso),
            scenario(dir.path(), "clone", &iso),
        ],
        &artifacts,
        tmp.path(),
    );
    let mut session = on_a_terminal(command, Duration::from_secs(600));
    // A QEMU before 9.1 cannot save a machine: then both boot, and pass.
    if isotest::qemu::qemu_can_save(isotest::platform::Arch::X86_64) {
        expect(
            &mut session,
            r"clone::x86_64::bios  restoring the machine lead::x86_64::bios saved  \d+s",
        );
        expect(
            &mut session,
            r"clone::x86_64::bios [^\n]*\(shared boot from lead",
        );
    }
    expect(
        &mut session,
        "2 passed, 0 failed, 0 skipped, 0 could not test",
    );
    assert_eq!(exit_code(&session), Some(0));
}

/// `isotest console` puts the terminal on the serial console in raw mode: the
/// isolinux menu arrives, Esc reaches isolinux (its `boot:` prompt), Ctrl-] q
/// leaves; QEMU is gone and the terminal's modes are as before.
#[test]
fn console_attaches_the_terminal_and_ctrl_bracket_q_stops_qemu() {
    let (mut session, before, qemu) = attached_console("local-console", Boot::Image);
    session.send([0x1bu8]).unwrap();
    expect(&mut session, "boot: ");
    assert!(support::process_alive(qemu));

    session.send(b"\x1dq").unwrap();
    expect(&mut session, "left the console; QEMU stopped");
    assert_eq!(exit_code(&session), Some(0));
    assert!(
        support::gone_within(qemu, Duration::from_secs(5)),
        "QEMU {qemu} outlived the console"
    );
    assert_restored(&session, &before);
}

/// `isotest console` of a scenario that has no trial of the architecture and
/// firmware asked for names the trials it has, before anything boots (exit 2).
#[test]
fn console_names_the_trials_when_none_matches() {
    let dir = tempfile::tempdir().unwrap();
    let iso = support::fixture("rescue").unwrap();
    let path = scenario(dir.path(), "picked", &iso);
    let mut command = support::isotest_command();
    command
        .arg("console")
        .arg(&path)
        .args(["--arch", "aarch64"]);
    let mut session = on_a_terminal(command, Duration::from_secs(30));
    expect(
        &mut session,
        "no trial of that arch and firmware; the trials are: picked::x86_64::bios",
    );
    assert_eq!(exit_code(&session), Some(2));
}

/// The other ways `isotest console` ends give the terminal back too: SIGTERM
/// to isotest (exit 130, QEMU stopped), and QEMU exiting under it (killed
/// here; the user's leaving is not an error: exit 0). The second console
/// boots a scenario's trial, picked by its firmware.
#[test]
fn console_gives_the_terminal_back_on_sigterm_and_when_qemu_exits() {
    let (session, before, qemu) = attached_console("local-console-sigterm", Boot::Image);
    let isotest = nix::unistd::Pid::from_raw(session.get_process().pid().as_raw());
    nix::sys::signal::kill(isotest, nix::sys::signal::Signal::SIGTERM).unwrap();
    assert_eq!(exit_code(&session), Some(130));
    assert!(
        support::gone_within(qemu, Duration::from_secs(5)),
        "QEMU {qemu} outlived SIGTERM"
    );
    assert_restored(&session, &before);

    let (mut session, before, qemu) = attached_console("local-console-qemu-exit", Boot::Scenario);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(qemu as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    expect(&mut session, r"the console closed \(QEMU exited\)");
    assert_eq!(exit_code(&session), Some(0));
    assert_restored(&session, &before);
}

/// How `isotest console` is told what to boot.
enum Boot {
    /// `--image ISO --arch x86_64 --firmware bios`.
    Image,
    /// A scenario of the ISO on two firmwares, and `--firmware bios` to pick one.
    Scenario,
}

/// `isotest console` of the rescue fixture (BIOS) on a terminal, attached and
/// in raw mode at isolinux's menu: the session, the terminal's modes before,
/// and QEMU's PID. The artifacts hold a run's of that trial, which the
/// console leaves as they were.
fn attached_console(name: &str, boot: Boot) -> (Session, Termios, u32) {
    let iso = support::fixture("rescue").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let artifacts = support::artifacts().join(name);
    let _ = std::fs::remove_dir_all(&artifacts);
    let mut command = support::isotest_command();
    command.arg("console");
    let trial_dir = match boot {
        Boot::Image => {
            command
                .args(["--firmware", "bios", "--arch", "x86_64", "--image"])
                .arg(&iso);
            "console-x86_64-bios"
        }
        Boot::Scenario => {
            let path = dir.path().join("picked.yaml");
            let yaml = format!(
                "image: {}\narch: x86_64\nfirmware: [uefi, bios]\n",
                iso.display()
            );
            std::fs::write(&path, yaml).unwrap();
            command.arg(&path).args(["--firmware", "bios"]);
            "picked-x86_64-bios"
        }
    };
    command.arg("--artifacts").arg(&artifacts);
    let run = artifacts.join(trial_dir).join("console.log");
    std::fs::create_dir_all(run.parent().unwrap()).unwrap();
    std::fs::write(&run, "the run being looked into\n").unwrap();
    let mut session = on_a_terminal(command, Duration::from_secs(180));
    let before = modes(&session);
    // A cooked terminal (expectrl's pty starts with echo off).
    assert!(
        before
            .local_flags
            .contains(LocalFlags::ICANON | LocalFlags::ISIG),
        "{:?}",
        before.local_flags
    );

    expect(&mut session, r"leave with Ctrl-\] then q");
    let qemu = support::read_pid(&artifacts.join("console").join(trial_dir).join("qemu.pid"))
        .expect("QEMU's pidfile");
    assert_eq!(
        std::fs::read_to_string(&run).ok().as_deref(),
        Some("the run being looked into\n"),
        "the run's transcript"
    );
    expect(&mut session, r"Press \[Tab\] to edit options|boot: ");
    let raw = modes(&session);
    assert!(
        !raw.local_flags
            .intersects(LocalFlags::ICANON | LocalFlags::ECHO | LocalFlags::ISIG),
        "not raw while attached"
    );
    (session, before, qemu)
}

/// The terminal's modes are those it had before isotest.
fn assert_restored(session: &Session, before: &Termios) {
    let after = modes(session);
    assert_eq!(
        (
            after.local_flags,
            after.input_flags,
            after.output_flags,
            after.control_flags
        ),
        (
            before.local_flags,
            before.input_flags,
            before.output_flags,
            before.control_flags
        ),
        "the terminal's modes were not restored"
    );
}
