//! The `isotest` command as users run it: help, listing, scenario errors, and
//! real runs: a pass, a failure, and interruption (no QEMU may be left behind).
//! Each exit status of the table (0 pass, 1 fail, 2 usage or scenario error,
//! 3 could not test) is produced by a test here.

mod support;

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use support::{text, RESCUE_PASSWORD};

fn isotest(args: &[&str]) -> Output {
    support::isotest_command()
        .args(args)
        .output()
        .expect("run isotest")
}

#[test]
fn help_explains_run_and_list() {
    let out = isotest(&["--help"]);
    assert!(out.status.success());
    let help = text(&out.stdout);
    assert!(help.contains("run") && help.contains("list"), "{help}");
    let run_help = text(&isotest(&["run", "--help"]).stdout);
    for flag in [
        "--image",
        "--accel",
        "--artifacts",
        "--filter",
        "--jobs",
        "--require-all",
    ] {
        assert!(
            run_help.contains(flag),
            "run --help lacks {flag}: {run_help}"
        );
    }
    for help in [&help, &run_help] {
        for status in [
            "  0  every trial that ran passed",
            "  1  a trial failed",
            "  2  usage or scenario error",
            "  3  could not test",
        ] {
            assert!(help.contains(status), "no `{status}` in: {help}");
        }
    }
}

/// `isotest` with every installed UEFI firmware hidden.
fn without_ovmf() -> Command {
    let mut command = support::isotest_command();
    support::hide_ovmf(&mut command);
    command
}

#[test]
fn list_shows_a_trial_that_cannot_run_here_as_skipped_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = support::plain_scenario(dir.path(), "");
    // A private directory abandoned on another boot: a `run` would sweep it,
    // `list` makes none and changes nothing.
    let tmp = tempfile::tempdir().unwrap();
    let abandoned = tmp.path().join("isotest-abandoned");
    std::fs::create_dir(&abandoned).unwrap();
    std::fs::set_permissions(
        &abandoned,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let record = "isotest private directory; owner:\npid 1\nstart 1\nboot 00000000-0000-0000-0000-000000000000\n";
    std::fs::write(abandoned.join("owner"), record).unwrap();
    let out = without_ovmf()
        .args(["list", &scenario])
        .env("TMPDIR", tmp.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let left: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        left,
        ["isotest-abandoned"],
        "list swept or made a directory"
    );
    assert!(abandoned.join("owner").is_file());
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert_eq!(lines[0], "plain::x86_64::bios");
    assert!(
        lines[1].starts_with("plain::x86_64::uefi  skipped: no UEFI firmware for x86_64 found"),
        "{stdout}"
    );
    assert!(lines[1].contains("apt-get install ovmf"), "{stdout}");
}

/// Every selected trial skipped: nothing was learned, exit 3; the line and the
/// summary say so, and report.json holds the verdict with its reason.
#[test]
fn a_run_of_skipped_trials_only_could_not_test() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = support::plain_scenario(dir.path(), "");
    // The artifacts directory from $ISOTEST_ARTIFACTS, as README says.
    let artifacts = support::artifacts().join("cli-all-skipped");
    let _ = std::fs::remove_dir_all(&artifacts); // an earlier run's report must not pass for this one's
    let out = without_ovmf()
        .args([
            "run",
            &scenario,
            "--image",
            &support::any_iso(&scenario),
            "--filter",
            "uefi",
        ])
        .env("ISOTEST_ARTIFACTS", &artifacts)
        .output()
        .unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(3), "{stdout}{stderr}");
    assert!(
        stdout.contains("plain::x86_64::uefi")
            && stdout.contains("SKIP  no UEFI firmware for x86_64 found"),
        "{stdout}"
    );
    assert!(
        stdout.contains("0 passed, 0 failed, 1 skipped, 0 could not test"),
        "{stdout}"
    );
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(artifacts.join("plain-x86_64-uefi/report.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(report["verdict"], "skipped", "{report}");
    assert!(
        report["reason"]
            .as_str()
            .unwrap()
            .contains("apt-get install ovmf"),
        "{report}"
    );
}

/// `--cpus` is 1 to 256 and `--jobs` 1 to 1024: anything else is a usage
/// error before anything boots.
#[test]
fn numbers_out_of_bounds_are_usage_errors() {
    for (flag, values) in [
        ("--cpus", ["0", "257", "two"]),
        ("--jobs", ["0", "1025", "two"]),
    ] {
        for value in values {
            let out = isotest(&["run", "scenarios/minimal.yaml", flag, value]);
            let said = text(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{flag} {value}: {said}");
            assert!(said.contains(flag), "{flag} {value}: {said}");
        }
    }
}

/// A file that is no bootable ISO, given as `--image` or as a scenario's
/// `image:`, is a usage error said at once, naming the file and what it
/// lacks: nothing boots, no trial directory is made.
#[test]
fn an_image_that_is_no_bootable_iso_is_a_usage_error_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let text_file = dir.path().join("hostname");
    std::fs::write(&text_file, "rescue\n").unwrap();
    let scenario = support::plain_scenario(dir.path(), "firmware: uefi\n");
    let own = dir.path().join("own.yaml");
    std::fs::write(&own, "image: hostname\narch: x86_64\nfirmware: uefi\n").unwrap();
    let artifacts = support::artifacts().join("cli-not-an-iso");
    let _ = std::fs::remove_dir_all(&artifacts);
    let not_iso = format!(
        "{} is not an ISO 9660 image: 7 bytes, too short for the volume descriptors",
        text_file.display()
    );
    let runs: [(Vec<&str>, String); 3] = [
        (
            vec!["run", &scenario, "--image", text_file.to_str().unwrap()],
            format!("error: --image: {not_iso}"),
        ),
        (
            vec!["run", own.to_str().unwrap()],
            format!("error: {}:1:8: image: {not_iso}", own.display()),
        ),
        (
            vec!["console", "--image", text_file.to_str().unwrap()],
            format!("error: --image: {not_iso}"),
        ),
    ];
    for (args, said) in runs {
        let started = Instant::now();
        let out = support::isotest_command()
            .args(&args)
            .arg("--artifacts")
            .arg(&artifacts)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stdout}{stderr}");
        assert!(
            stderr.starts_with(&said),
            "{args:?}: expected `{said}` in: {stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "said once: {stderr}");
        assert!(stdout.is_empty(), "a trial ran: {stdout}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{args:?} took {:?}",
            started.elapsed()
        );
        assert!(!artifacts.exists(), "{args:?} made {}", artifacts.display());
    }
}

/// An ISO of the fixture's files without an El Torito boot record: a data
/// disc, which no firmware boots from a CD-ROM: refused as a text file is.
#[test]
fn an_iso_without_a_boot_record_is_a_usage_error() {
    let iso = support::fixture("no-boot-record").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let scenario = support::plain_scenario(dir.path(), "firmware: bios\n");
    let out = isotest(&["run", &scenario, "--image", iso.to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let said = format!("error: --image: {} is an ISO 9660 image without an El Torito boot record: no firmware can boot it", iso.display());
    assert!(stderr.starts_with(&said), "{stderr}");
}

/// `--iso HOST` that the flake lacks: one usage error before any trial runs,
/// with the hosts it has, not a failed trial per firmware.
#[test]
fn an_iso_host_the_flake_lacks_is_one_usage_error() {
    let artifacts = support::artifacts().join("cli-no-such-host");
    let _ = std::fs::remove_dir_all(&artifacts);
    let out = isotest(&[
        "run",
        "--flake",
        "fixtures/flake",
        "--iso",
        "nosuch",
        "--artifacts",
        artifacts.to_str().unwrap(),
    ]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    let flake = support::repo()
        .join("fixtures/flake")
        .canonicalize()
        .unwrap();
    assert_eq!(
        stderr.trim_end(),
        format!(
            "error: no ISO host `nosuch` in {}: hosts/iso has minimal, rescue",
            flake.display()
        )
    );
    assert!(stdout.is_empty(), "a trial ran: {stdout}");
    assert!(!artifacts.exists(), "a trial made {}", artifacts.display());
}

/// `--require-all` refuses a plan with a skipped trial before anything boots.
#[test]
fn require_all_turns_a_skipped_trial_into_could_not_test() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = support::plain_scenario(dir.path(), "");
    let artifacts = support::artifacts().join("cli-require-all");
    let _ = std::fs::remove_dir_all(&artifacts);
    let out = without_ovmf()
        .args([
            "run",
            &scenario,
            "--image",
            &support::any_iso(&scenario),
            "--require-all",
            "--artifacts",
        ])
        .arg(&artifacts)
        .output()
        .unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(3), "{stdout}{stderr}");
    assert!(
        stderr.contains("plain::x86_64::uefi: cannot run here: no UEFI firmware for x86_64 found"),
        "{stderr}"
    );
    assert!(
        stderr.contains("--require-all: could not test every trial; nothing was started"),
        "{stderr}"
    );
    assert!(!artifacts.exists(), "a trial ran");
}

/// `firmware: uefi` named in the scenario and missing is no skip: could not test.
#[test]
fn a_missing_firmware_asked_for_by_name_could_not_test() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = support::plain_scenario(dir.path(), "firmware: uefi\n");
    let artifacts = support::artifacts().join("cli-no-ovmf");
    let out = without_ovmf()
        .args([
            "run",
            &scenario,
            "--image",
            &support::any_iso(&scenario),
            "--artifacts",
        ])
        .arg(&artifacts)
        .output()
        .unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(3), "{stdout}{stderr}");
    assert!(stdout.contains("COULD NOT TEST"), "{stdout}");
    assert!(
        stdout.contains("0 passed, 0 failed, 0 skipped, 1 could not test"),
        "{stdout}"
    );
    assert!(
        stderr.contains("--- plain::x86_64::uefi could not test"),
        "{stderr}"
    );
    assert!(
        stderr.contains("error: no UEFI firmware for x86_64 found"),
        "{stderr}"
    );
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(artifacts.join("plain-x86_64-uefi/report.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(report["verdict"], "could-not-test", "{report}");
}

#[test]
fn list_names_trials_like_cargo_test() {
    let out = isotest(&["list"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout)
            .lines()
            .any(|l| l == "rescue::x86_64::bios"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn a_scenario_error_names_file_line_column_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("typo.yaml");
    std::fs::write(&path, "iso: rescue\nexpect:\n  hostnam: rescue\n").unwrap();
    let out = isotest(&["list", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!(
            "{}:3:3: expect: unknown field `hostnam`",
            path.display()
        )),
        "{err}"
    );
}

#[test]
fn two_scenarios_of_one_name_are_a_usage_error() {
    // They would share one artifact directory: `run` is refused before anything boots.
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let scenarios = [&a, &b].map(|d| {
        std::fs::create_dir(d).unwrap();
        support::plain_scenario(d, "firmware: bios\n")
    });
    for command in ["list", "run"] {
        let out = isotest(&[command, &scenarios[0], &scenarios[1]]);
        assert_eq!(out.status.code(), Some(2), "{command}");
        let err = text(&out.stderr);
        assert!(
            err.contains(&format!(
                "{} and {} both make trial `plain::x86_64::bios`",
                scenarios[0], scenarios[1]
            )),
            "{err}"
        );
    }
}

#[test]
fn a_missing_scenario_file_is_named() {
    let out = isotest(&["run", "/nonexistent/x.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("/nonexistent/x.yaml: cannot read scenario"),
        "{err}"
    );
    assert_eq!(
        err.matches("No such file or directory").count(),
        1,
        "the cause said once: {err}"
    );
}

/// A guest bigger than this host's memory (but within what scenarios allow).
#[test]
fn a_guest_bigger_than_the_host_could_not_test() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = support::plain_scenario(dir.path(), "firmware: bios\nmemory: 1000G\n");
    let out = support::isotest_command()
        .args([
            "run",
            &scenario,
            "--image",
            &support::any_iso(&scenario),
            "--artifacts",
        ])
        .arg(support::artifacts().join("cli-no-memory"))
        .output()
        .unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(3), "{stdout}{stderr}");
    assert!(
        stderr.contains("error: the guest needs 1024000 MiB (`memory:`), and this host has "),
        "{stderr}"
    );
}

/// `isotest run` of a plain BIOS scenario on a tiny ISO, with nothing on
/// PATH, its artifacts under `name`; the scenario's directory goes with the
/// second value.
fn run_on_an_empty_path(name: &str) -> (Command, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let scenario = support::plain_scenario(dir.path(), "firmware: bios\n");
    let mut command = support::isotest_command();
    command
        .env("PATH", "/nonexistent")
        .args([
            "run",
            &scenario,
            "--image",
            &support::any_iso(&scenario),
            "--artifacts",
        ])
        .arg(support::artifacts().join(name));
    (command, dir)
}

/// Without `--artifacts`, a run's artifacts go to `target/isotest` under the
/// directory it runs in, or to `$ISOTEST_ARTIFACTS`. (A skipped trial: its
/// report is written, nothing boots.)
#[test]
fn artifacts_go_to_target_isotest_or_isotest_artifacts() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = support::plain_scenario(dir.path(), "");
    let report = "plain-x86_64-uefi/report.json";
    let mut command = support::isotest_command();
    command
        .current_dir(dir.path())
        .env_remove("ISOTEST_ARTIFACTS")
        .args(["run", &scenario, "--filter", "uefi"]);
    support::hide_ovmf(&mut command);
    let out = command.output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(dir.path().join("target/isotest").join(report).is_file());

    let elsewhere = dir.path().join("elsewhere");
    let out = command
        .env("ISOTEST_ARTIFACTS", &elsewhere)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(elsewhere.join(report).is_file());
}

#[test]
fn a_missing_qemu_says_what_to_install_and_could_not_test() {
    let (mut command, _dir) = run_on_an_empty_path("cli-no-qemu");
    let out = command.env_remove("ISOTEST_QEMU_X86_64").output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = text(&out.stderr);
    assert!(err.contains("qemu-system-x86_64 not found on PATH; install it: Debian/Ubuntu: apt-get install qemu-system-x86"), "{err}");
    assert!(
        err.contains("--- plain::x86_64::bios could not test"),
        "{err}"
    );
}

/// Without xorriso, which reads the boot menus off the ISO, nothing can be
/// learned about the ISO: could not test, saying what to install (the ISO
/// is not blamed for a menu this host could not read).
#[test]
fn a_missing_xorriso_says_what_to_install_and_could_not_test() {
    let qemu = isotest::qemu::find_qemu(isotest::platform::Arch::X86_64)
        .expect("qemu-system-x86_64 is installed (ci/install-deps)");
    let (mut command, _dir) = run_on_an_empty_path("cli-no-xorriso");
    let out = command.env("ISOTEST_QEMU_X86_64", qemu).output().unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains(
            "xorriso is needed to read the ISO's boot menu; install it: apt-get install xorriso"
        ),
        "{err}"
    );
    assert!(
        err.contains("--- plain::x86_64::bios could not test"),
        "{err}"
    );
}

#[test]
fn a_missing_nix_says_what_to_install() {
    let out = support::isotest_command()
        .env("PATH", "/nonexistent")
        .args(["run", "scenarios/minimal.yaml", "--artifacts"])
        .arg(support::artifacts().join("cli-no-nix"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "no nix: nothing learned about the ISO"
    );
    let err = text(&out.stderr);
    assert!(err.contains("error: `nix` is not installed, and reading the expectations of `iso: minimal` needs it"), "{err}");
    assert!(
        !err.contains("transcript:"),
        "a trial that never booted has no transcript: {err}"
    );
    assert!(
        err.contains("on Debian/Ubuntu `apt-get install nix-bin`"),
        "{err}"
    );
}

#[test]
fn list_flake_shows_its_iso_hosts() {
    let out = isotest(&["list", "--flake", &support::fixture_flake()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let hosts: Vec<String> = text(&out.stdout)
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        hosts,
        [
            "minimal hosts/iso/minimal.nix",
            "rescue hosts/iso/rescue/default.nix"
        ]
    );
    let out = isotest(&["list", "--flake", "/nonexistent/flake"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("flake not found: /nonexistent/flake: no such directory"),
        "{}",
        text(&out.stderr)
    );
}

/// Zero-config: `--iso rescue` with no scenario file; nix builds the host, and
/// every expectation comes from its configuration.
#[test]
fn zero_config_rescue_from_the_flake_passes() {
    support::fixture("rescue").unwrap(); // the ISO the flake's package publishes
    let artifacts = support::artifacts().join("cli-zero-config");
    let out = support::isotest_command()
        .args([
            "run",
            "--flake",
            &support::fixture_flake(),
            "--iso",
            "rescue",
            "--filter",
            "rescue::x86_64::bios",
            "--artifacts",
        ])
        .arg(&artifacts)
        .output()
        .unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("rescue::x86_64::bios") && stdout.contains("PASS"),
        "{stdout}"
    );
    for check in [
        "hostname",
        "autologin",
        "sshd",
        "ssh(1/1)",
        "user(2/2)",
        "home-manager(2/2)",
    ] {
        assert!(stdout.contains(check), "no {check} in: {stdout}");
    }
    assert!(
        stderr.contains("[nix build rescue]") || stderr.contains("built path:"),
        "no build progress: {stderr}"
    );
    let report = std::fs::read_to_string(artifacts.join("rescue-x86_64-bios/report.json")).unwrap();
    let report: serde_json::Value = serde_json::from_str(&report).unwrap();
    assert_eq!(report["origins"]["hostname"], "flake", "{report}");
    assert!(
        report["flake"]
            .as_str()
            .unwrap()
            .ends_with("#packages.x86_64-linux.rescue"),
        "{report}"
    );
    assert!(
        report["image"].as_str().unwrap().starts_with("/nix/store/"),
        "{report}"
    );
    // A trial alone gets the vCPUs of a guest alone, whatever the default jobs.
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let cmdline =
        std::fs::read_to_string(artifacts.join("rescue-x86_64-bios/qemu.cmdline")).unwrap();
    let smp = format!(" -smp {} ", isotest::run::guest_cpus(cores, 1));
    assert!(cmdline.contains(&smp), "no `{smp}` in {cmdline}");
}

/// `isotest run scenarios/rescue.yaml --image IMAGE --artifacts <tests>/NAME`.
fn run_rescue(image: &std::path::Path, name: &str) -> Command {
    let mut command = support::isotest_command();
    command
        .args([
            "run",
            "scenarios/rescue.yaml",
            "--filter",
            "rescue::x86_64::bios",
            "--image",
        ])
        .arg(image);
    command
        .arg("--artifacts")
        .arg(support::artifacts().join(name));
    command
}

/// A real failing run, on a sound disk with a wrong host key pinned: exit status
/// 1, both logins refused as a host key mismatch, the accelerator named, the
/// password nowhere in the output (traced at the most verbose level) or the
/// artifacts, no QEMU left.
#[test]
fn a_wrong_host_key_pin_fails_the_logins_and_leaves_no_qemu() {
    let image = support::fixture("rescue").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("rescue.yaml");
    let pin = "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let yaml = std::fs::read_to_string(support::repo().join("scenarios/rescue.yaml")).unwrap();
    let yaml = yaml.replace(
        "flake: path:../",
        &format!("flake: path:{}/", support::repo().display()),
    );
    std::fs::write(
        &scenario,
        yaml.replace(
            "  sshd:\n",
            &format!("  sshd:\n    host_keys: [\"{pin}\"]\n"),
        ),
    )
    .unwrap();
    let artifacts = support::artifacts().join("cli-fail");
    let out = support::isotest_command()
        .args([
            "run",
            scenario.to_str().unwrap(),
            "--filter",
            "rescue::x86_64::bios",
            "--image",
        ])
        .arg(&image)
        .arg("--artifacts")
        .arg(&artifacts)
        .env("RESCUE_PASSWORD", RESCUE_PASSWORD)
        .env("ISOTEST_LOG", "trace")
        .output()
        .unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains("rescue::x86_64::bios") && stdout.contains("FAIL"),
        "{stdout}"
    );
    assert!(stdout.contains("0 passed, 1 failed"), "{stdout}");
    for login in ["ssh login root (key)", "ssh login nixos (password)"] {
        let line = format!("check {login}: host key mismatch: the server offered SHA256:");
        assert!(stderr.contains(&line), "{login} was not refused: {stderr}");
    }
    assert!(
        stderr.contains(&format!("expected one of: {pin}")),
        "{stderr}"
    );
    assert!(stderr.contains("transcript: "), "{stderr}");
    // Which accelerator ran the guest, and why (`--accel auto`: KVM, or TCG
    // with the reason), so that a failure under TCG can be told apart.
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("  accelerator: KVM") || l.starts_with("  accelerator: TCG")),
        "{stderr}"
    );
    assert!(
        !stdout.contains(RESCUE_PASSWORD) && !stderr.contains(RESCUE_PASSWORD),
        "the password was printed"
    );
    for entry in std::fs::read_dir(artifacts.join("rescue-x86_64-bios")).unwrap() {
        let path = entry.unwrap().path();
        assert!(
            !String::from_utf8_lossy(&std::fs::read(&path).unwrap()).contains(RESCUE_PASSWORD),
            "password in {}",
            path.display()
        );
    }
    let pid = support::read_pid(&artifacts.join("rescue-x86_64-bios/qemu.pid"))
        .expect("QEMU wrote its pidfile");
    assert!(!support::process_alive(pid), "QEMU {pid} outlived isotest");
}

/// How soon no QEMU of a run may be left after the run ended or was killed.
const NO_QEMU_WITHIN: Duration = Duration::from_secs(2);

/// Spawns `command` (its output discarded unless the caller routed it) and
/// returns it once QEMU runs, with QEMU's pid. The caller signals the child and
/// waits for it.
#[allow(clippy::zombie_processes)]
fn start_run_with(name: &str, mut command: Command) -> (std::process::Child, u32) {
    let pidfile = support::artifacts()
        .join(name)
        .join("rescue-x86_64-bios/qemu.pid");
    let _ = std::fs::remove_file(&pidfile);
    let mut child = command.stdin(Stdio::null()).spawn().unwrap();
    // QEMU writes its pidfile as it starts; poll for that file with a deadline.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(pid) = support::read_pid(&pidfile) {
            return (child, pid);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("QEMU did not start within 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The rescue run of `name` with its private directories in `tmp`, output discarded.
fn run_rescue_in(tmp: &std::path::Path, name: &str) -> Command {
    let mut command = run_rescue(&support::fixture("rescue").unwrap(), name);
    command
        .env("TMPDIR", tmp)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command
}

/// The private directories (`isotest-*`) in `tmp`.
fn private_dirs(tmp: &std::path::Path) -> Vec<std::path::PathBuf> {
    let entries = std::fs::read_dir(tmp)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()));
    entries
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("isotest-"))
        })
        .collect()
}

/// Ctrl-C stops QEMU and removes the trial's private directory, which was
/// 0700 while it lived although isotest ran with umask 000 (a plain mkdir
/// would have made it 0777).
#[test]
fn ctrl_c_during_boot_stops_qemu_and_removes_the_private_directory() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let tmp = tempfile::tempdir().unwrap();
    let name = "cli-ctrl-c";
    let mut command = run_rescue_in(tmp.path(), name);
    // SAFETY: umask(2) is async-signal-safe and cannot fail.
    unsafe {
        command.pre_exec(|| {
            libc::umask(0);
            Ok(())
        })
    };
    let (child, qemu) = start_run_with(name, command);
    let private = private_dirs(tmp.path());
    assert_eq!(
        private.len(),
        1,
        "one trial, one private directory: {private:?}"
    );
    let mode = private[0].metadata().unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o700, "{} is {mode:o}", private[0].display());
    interrupt_mid_boot(child, qemu, libc::SIGINT, tmp.path());
}

/// SIGTERM (a service manager, `timeout`, a CI runner cancelling a job) is
/// handled as Ctrl-C is.
#[test]
fn sigterm_during_boot_stops_qemu_and_removes_the_private_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let name = "cli-sigterm";
    let (child, qemu) = start_run_with(name, run_rescue_in(tmp.path(), name));
    interrupt_mid_boot(child, qemu, libc::SIGTERM, tmp.path());
}

/// Sends `signal` to a run whose QEMU `qemu` boots: the run exits 130, QEMU is
/// gone within NO_QEMU_WITHIN, and no private directory is left in `tmp`.
fn interrupt_mid_boot(
    mut child: std::process::Child,
    qemu: u32,
    signal: libc::c_int,
    tmp: &std::path::Path,
) {
    assert!(support::process_alive(qemu));
    // SAFETY: signalling the child we spawned.
    unsafe { libc::kill(child.id() as libc::pid_t, signal) };
    let status = child.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(130),
        "isotest should exit 130 on signal {signal}"
    );
    assert!(
        support::gone_within(qemu, NO_QEMU_WITHIN),
        "QEMU {qemu} survived signal {signal}"
    );
    assert_eq!(
        private_dirs(tmp),
        Vec::<std::path::PathBuf>::new(),
        "the private directory outlived signal {signal}"
    );
}

/// SIGKILL runs no handler: QEMU dies by PR_SET_PDEATHSIG, the private
/// directory stays, and the next run that makes a private directory removes
/// it (here one that stops right after, finding no QEMU: nothing boots).
#[test]
fn qemu_dies_with_a_killed_harness_and_the_next_run_sweeps_its_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let name = "cli-sigkill";
    let (mut child, qemu) = start_run_with(name, run_rescue_in(tmp.path(), name));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        support::gone_within(qemu, NO_QEMU_WITHIN),
        "QEMU {qemu} survived its harness"
    );
    let left = private_dirs(tmp.path());
    assert_eq!(
        left.len(),
        1,
        "the killed run's private directory: {left:?}"
    );
    let record = std::fs::read_to_string(left[0].join("owner")).unwrap();
    assert!(
        record.contains(&format!("\npid {}\n", child.id())),
        "{record}"
    );

    let (mut command, _scenario_dir) = run_on_an_empty_path("cli-sweep");
    let out = command
        .env("TMPDIR", tmp.path())
        .env("ISOTEST_LOG", "isotest=debug")
        .env_remove("ISOTEST_QEMU_X86_64")
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert!(
        !left[0].exists(),
        "the next run left {} in place: {stderr}",
        left[0].display()
    );
    assert!(
        stderr.contains(&format!(
            "removed {}, left by a killed isotest",
            left[0].display()
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("qemu-system-x86_64 not found on PATH"),
        "the sweeping run got further: {stderr}"
    );
    assert_eq!(
        private_dirs(tmp.path()),
        Vec::<std::path::PathBuf>::new(),
        "the sweeping run left its own"
    );
}

/// A check that panics (a bug in isotest, injected: src/fault.rs) ends its
/// trial, not the run: the trial's QEMU is killed and its private directory
/// removed as they are dropped, its report says "could not test" with the
/// panic's message and the checks done before it, and the next trial runs
/// (two trials on one worker, `--jobs 1`: a panic that ended the worker
/// would leave the second one unrun).
#[test]
fn a_panic_inside_a_check_ends_its_trial_and_leaves_no_qemu_and_no_private_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let name = "cli-panic";
    let rescue = support::fixture("rescue").unwrap();
    for image in ["a.iso", "b.iso"] {
        std::os::unix::fs::symlink(&rescue, tmp.path().join(image)).unwrap();
    }
    let yaml = std::fs::read_to_string(support::repo().join("scenarios/rescue.yaml")).unwrap();
    let yaml = yaml.replace(
        "flake: path:../",
        &format!("flake: path:{}/", support::repo().display()),
    );
    let yaml = yaml.replace(
        "arch: [x86_64, aarch64]",
        "arch: x86_64\nfirmware: bios\nimages: [a.iso, b.iso]",
    );
    std::fs::write(tmp.path().join("rescue.yaml"), yaml).unwrap();
    let artifacts = support::artifacts().join(name);
    let stderr = tmp.path().join("stderr");
    let mut command = support::isotest_command();
    command
        .arg("run")
        .arg(tmp.path().join("rescue.yaml"))
        .args(["--jobs", "1", "--artifacts"])
        .arg(&artifacts);
    command
        .env("TMPDIR", tmp.path())
        .env("ISOTEST_FAULT", "panic-in-check:hostname")
        .env("RESCUE_PASSWORD", RESCUE_PASSWORD);
    command
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr).unwrap());
    let _ = std::fs::remove_dir_all(&artifacts);
    let mut child = command.stdin(Stdio::null()).spawn().unwrap();
    // While the second trial runs, the first one's QEMU is already gone (not
    // only once isotest has exited, which would kill it anyway).
    let pid_of = |trial: &str| {
        support::read_pid(&artifacts.join(format!("rescue-x86_64-bios-{trial}/qemu.pid")))
    };
    let deadline = Instant::now() + Duration::from_secs(300);
    while pid_of("b").is_none() && child.try_wait().unwrap().is_none() && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    let first = pid_of("a").expect("the first trial started QEMU");
    assert!(
        pid_of("b").is_some() && child.try_wait().unwrap().is_none(),
        "the second trial never started QEMU"
    );
    assert!(
        support::gone_within(first, NO_QEMU_WITHIN),
        "QEMU {first} of the first trial outlived its panic"
    );
    let out = child.wait_with_output().unwrap();
    let (stdout, said) = (text(&out.stdout), std::fs::read_to_string(&stderr).unwrap());
    assert!(
        said.contains("injected fault: the check `hostname` panics"),
        "no panic in the hostname check: {said}"
    );
    assert_eq!(
        out.status.code(),
        Some(3),
        "a panic, with no check failed before it, is could not test: {stdout}{said}"
    );
    for trial in ["a", "b"] {
        let dir = artifacts.join(format!("rescue-x86_64-bios-{trial}"));
        let qemu = support::read_pid(&dir.join("qemu.pid")).expect("the trial started QEMU");
        assert!(
            support::gone_within(qemu, NO_QEMU_WITHIN),
            "QEMU {qemu} of trial {trial} survived a panic: {said}"
        );
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap())
                .unwrap();
        assert_eq!(report["verdict"], "could-not-test", "{report}");
        let reason = report["reason"].as_str().unwrap();
        assert!(reason.starts_with("isotest panicked during this trial (a bug in isotest, not a verdict on the ISO): injected fault"), "{reason}");
        let checks: Vec<(&str, &str)> = report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (c["name"].as_str().unwrap(), c["outcome"].as_str().unwrap()))
            .collect();
        assert_eq!(
            checks,
            [("autologin", "pass")],
            "the checks before the panic are reported"
        );
        assert!(
            stdout.contains(&format!("rescue::x86_64::bios::{trial}"))
                && stdout.contains("COULD NOT TEST"),
            "{stdout}"
        );
    }
    assert_eq!(
        private_dirs(tmp.path()),
        Vec::<std::path::PathBuf>::new(),
        "a private directory outlived a panic"
    );
}

/// The QEMU processes whose command line names a path under `dir`.
fn qemus_under(dir: &std::path::Path) -> Vec<u32> {
    let dir = dir.display().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                let c = text(&c);
                c.contains("qemu-system") && c.contains(&dir)
            })
        })
        .collect()
}

/// The line isotest printed for `trial`.
fn line_of<'a>(stdout: &'a str, trial: &str) -> &'a str {
    stdout
        .lines()
        .find(|l| l.starts_with(trial))
        .unwrap_or_else(|| panic!("no line for {trial}: {stdout}"))
}

/// Two trials of one ISO (two names of it) sharing its boot, one at a time,
/// under an injected fault (src/fault.rs): both pass, and no two QEMUs ever
/// run at once. Returns isotest's output and the second trial's report.
fn shared_boot_under(fault: &str, name: &str) -> (String, serde_json::Value, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let rescue = support::fixture("rescue").unwrap();
    for image in ["a.iso", "b.iso"] {
        std::os::unix::fs::symlink(&rescue, tmp.path().join(image)).unwrap();
    }
    let yaml = "images: [a.iso, b.iso]\narch: x86_64\nfirmware: bios\nexpect:\n  hostname: rescue\n  sshd:\n    login: [root]\n";
    std::fs::write(tmp.path().join("rescue.yaml"), yaml).unwrap();
    let artifacts = support::artifacts().join(name);
    let _ = std::fs::remove_dir_all(&artifacts);
    let mut child = support::isotest_command()
        .arg("run")
        .arg(tmp.path().join("rescue.yaml"))
        .args(["--jobs", "1", "--artifacts"])
        .arg(&artifacts)
        .env("TMPDIR", tmp.path())
        .env("ISOTEST_FAULT", fault)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut most = 0;
    let deadline = Instant::now() + Duration::from_secs(600);
    while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
        most = most.max(qemus_under(tmp.path()).len());
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert_eq!(most, 1, "two QEMUs at once: {stdout}{stderr}");
    let second = line_of(&stdout, "rescue::x86_64::bios::b");
    assert!(second.contains("(fresh boot (sharing failed))"), "{stdout}");
    let b = artifacts.join("rescue-x86_64-bios-b");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(b.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["verdict"], "pass", "{report}");
    assert_eq!(report["shared"]["role"], "fresh", "{report}");
    assert_eq!(report["shared"]["booted_by"], "rescue::x86_64::bios::a");
    assert!(
        report["phases"].as_array().unwrap().len() > 3,
        "the fresh boot's own phases: {report}"
    );
    assert!(!b.join("shared-boot.log").exists());
    assert_eq!(qemus_under(tmp.path()), Vec::<u32>::new());
    assert_eq!(
        private_dirs(tmp.path()),
        Vec::<std::path::PathBuf>::new(),
        "a private directory (a state's) outlived the run"
    );
    (stdout, report, b)
}

/// When the second trial cannot restore the saved state (once its QEMU has
/// started), it boots from power-on instead and says why; the QEMU that was
/// to take the state is gone before the fresh one boots, and its logs are
/// set aside.
#[test]
fn a_restore_that_fails_boots_afresh_and_says_why() {
    let (stdout, report, b) = shared_boot_under("restore-fails", "cli-restore-fails");
    let first = line_of(&stdout, "rescue::x86_64::bios::a");
    assert!(first.contains("(shared boot, saved for 1)"), "{stdout}");
    assert_eq!(
        report["shared"]["reason"],
        "restoring its state failed: injected fault: the restore fails (ISOTEST_FAULT)"
    );
    assert!(
        b.join("restore-failed-qemu.stderr").is_file(),
        "the failed restore's QEMU log is not set aside"
    );
}

/// When the first trial cannot save its machine, it goes on as if alone
/// (its line says the boot was not saved) and the second boots afresh.
#[test]
fn a_save_that_fails_lets_the_others_boot_afresh() {
    let (stdout, report, _) = shared_boot_under("save-fails", "cli-save-fails");
    let first = line_of(&stdout, "rescue::x86_64::bios::a");
    assert!(
        first.contains("(shared boot not saved)") && first.contains("PASS"),
        "{stdout}"
    );
    assert_eq!(
        report["shared"]["reason"],
        "injected fault: the save fails (ISOTEST_FAULT)"
    );
}

/// Two trials of one ISO share a boot unless `--fresh-boot`: here the ISO
/// boots nothing, so the first trial's boot reaches no shell and, sharing,
/// the second boots afresh saying so; with `--fresh-boot` neither speaks of
/// sharing.
#[test]
fn fresh_boot_turns_sharing_off() {
    if !isotest::qemu::qemu_can_save(isotest::platform::Arch::X86_64) {
        eprintln!("skipped: this QEMU cannot save a machine's state (9.1 or later can)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // One ISO under two names: xorriso stamps the time in each image it
    // makes, so two made apart would be two images.
    support::tiny_iso(&dir.path().join("a.iso"));
    std::fs::copy(dir.path().join("a.iso"), dir.path().join("b.iso")).unwrap();
    let yaml = "images: [a.iso, b.iso]\narch: x86_64\nfirmware: bios\ntimeout: 3s\nexpect:\n  hostname: rescue\n";
    std::fs::write(dir.path().join("nothing.yaml"), yaml).unwrap();
    let run = |extra: &[&str]| {
        let out = support::isotest_command()
            .arg("run")
            .arg(dir.path().join("nothing.yaml"))
            .arg("--artifacts")
            .arg(dir.path().join("artifacts"))
            .args(["--accel", "tcg"])
            .args(extra)
            .output()
            .unwrap();
        // Failed or, on a host too slow to start QEMU within the timeout,
        // could not test: either way no shell, which is all this needs.
        assert!(
            matches!(out.status.code(), Some(1 | 3)),
            "{}",
            text(&out.stderr)
        );
        text(&out.stdout)
    };
    let shared = run(&[]);
    assert!(
        line_of(&shared, "nothing::x86_64::bios::b").contains("fresh boot (sharing failed)"),
        "{shared}"
    );
    let fresh = run(&["--fresh-boot"]);
    assert!(!fresh.contains("sharing"), "{fresh}");
    for trial in ["nothing::x86_64::bios::a", "nothing::x86_64::bios::b"] {
        line_of(&fresh, trial);
    }
}
