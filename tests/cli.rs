//! The `isotest` command as users run it: help, listing, scenario errors, and
//! real runs: a pass, a failure, and interruption (no QEMU may be left behind).

mod support;

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn isotest(args: &[&str]) -> Output {
    Command::new(support::isotest_bin()).current_dir(support::repo()).args(args).output().expect("run isotest")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn help_explains_run_and_list() {
    let out = isotest(&["--help"]);
    assert!(out.status.success());
    let help = text(&out.stdout);
    assert!(help.contains("run") && help.contains("list"), "{help}");
    let run_help = text(&isotest(&["run", "--help"]).stdout);
    for flag in ["--image", "--accel", "--artifacts", "--filter", "--jobs"] {
        assert!(run_help.contains(flag), "run --help lacks {flag}: {run_help}");
    }
}

#[test]
fn list_names_trials_like_cargo_test() {
    let out = isotest(&["list"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).lines().any(|l| l == "rescue::x86_64::bios"), "{}", text(&out.stdout));
}

#[test]
fn a_scenario_error_names_file_line_column_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("typo.yaml");
    std::fs::write(&path, "iso: rescue\nexpect:\n  hostnam: rescue\n").unwrap();
    let out = isotest(&["list", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains(&format!("{}:3:3: expect: unknown field `hostnam`", path.display())), "{err}");
}

#[test]
fn a_missing_scenario_file_is_named() {
    let out = isotest(&["run", "/nonexistent/x.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("/nonexistent/x.yaml: cannot read scenario"), "{}", text(&out.stderr));
}

#[test]
fn a_missing_qemu_says_what_to_install() {
    let bin = support::isotest_bin();
    let out = Command::new(bin)
        .current_dir(support::repo())
        .env("PATH", "/nonexistent")
        .args(["run", "scenarios/rescue.yaml", "--image", "Cargo.toml", "--artifacts"])
        .arg(support::artifacts().join("cli-no-qemu"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("qemu-system-x86_64 not found on PATH; install it: Debian/Ubuntu: apt-get install qemu-system-x86"), "{err}");
}

#[test]
fn a_flake_host_without_image_says_how_to_test_an_iso() {
    let out = isotest(&["run", "scenarios/rescue.yaml", "--artifacts", "/tmp/isotest-cli-flake"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("test a built ISO with --image PATH"), "{}", text(&out.stderr));
}

/// `isotest run scenarios/rescue.yaml --image IMAGE --artifacts <tests>/NAME`.
fn run_rescue(image: &std::path::Path, name: &str) -> Command {
    let mut command = Command::new(support::isotest_bin());
    command.current_dir(support::repo()).args(["run", "scenarios/rescue.yaml", "--image"]).arg(image);
    command.arg("--artifacts").arg(support::artifacts().join(name));
    command
}

/// A real failing run: exit status 1, the mismatch named, no QEMU left.
#[test]
fn a_failing_trial_exits_1_and_leaves_no_qemu() {
    let image = support::fixture("wrong-hostname").unwrap();
    let out = run_rescue(&image, "cli-fail").output().unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stdout.contains("rescue::x86_64::bios") && stdout.contains("FAIL"), "{stdout}");
    assert!(stdout.contains("0 passed, 1 failed"), "{stdout}");
    assert!(stderr.contains("check hostname: hostname mismatch: expected `rescue`, the guest says `wrong-name`"), "{stderr}");
    assert!(stderr.contains("transcript: "), "{stderr}");
    let pidfile = support::artifacts().join("cli-fail/rescue-x86_64-bios/qemu.pid");
    let pid = support::read_pid(&pidfile).expect("QEMU wrote its pidfile");
    assert!(!support::process_alive(pid), "QEMU {pid} outlived isotest");
}

/// Starts `isotest run` on the rescue fixture and returns it once QEMU runs.
fn start_run(name: &str) -> (std::process::Child, u32) {
    let image = support::fixture("rescue").unwrap();
    let pidfile = support::artifacts().join(name).join("rescue-x86_64-bios/qemu.pid");
    let _ = std::fs::remove_file(&pidfile);
    let child = run_rescue(&image, name).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    // QEMU writes its pidfile as it starts; poll for that file with a deadline.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(pid) = support::read_pid(&pidfile) {
            return (child, pid);
        }
        assert!(Instant::now() < deadline, "QEMU did not start within 60 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits for a process to disappear, up to a deadline.
fn gone_within(pid: u32, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if !support::process_alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[test]
fn ctrl_c_during_boot_stops_qemu() {
    let (mut child, qemu) = start_run("cli-ctrl-c");
    assert!(support::process_alive(qemu));
    // SAFETY: signalling the child we spawned.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "isotest should exit 130 on Ctrl-C");
    assert!(gone_within(qemu, Duration::from_secs(5)), "QEMU {qemu} survived Ctrl-C");
}

#[test]
fn qemu_dies_with_a_killed_harness() {
    let (mut child, qemu) = start_run("cli-sigkill");
    child.kill().unwrap(); // SIGKILL: no handler runs; PR_SET_PDEATHSIG must act
    child.wait().unwrap();
    assert!(gone_within(qemu, Duration::from_secs(5)), "QEMU {qemu} survived its harness");
}
