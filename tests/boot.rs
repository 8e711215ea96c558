//! End-to-end trials: every scenario in scenarios/ × arch × firmware, booted for
//! real under QEMU (`rescue::x86_64::bios`), and negative trials in which a broken
//! fixture ISO must make exactly the right check fail with the right message.
//! libtest-mimic runs them in parallel up to --test-threads (default: the cores).

mod support;

use isotest::checks::Outcome;
use isotest::plan::{self, Trial};
use isotest::platform::{Arch, Firmware};
use isotest::report::{render_failure, SharedRole, TrialReport, Verdict};
use isotest::run::{run_trial, RunOptions};
use isotest::scenario::Scenario;
use isotest::select;
use libtest_mimic::{Arguments, Completion, Failed, Trial as Test};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use support::{ensure, which, RESCUE_PASSWORD, ROOT_PASSWORD, WRONG_ROOT_PASSWORD};

fn main() {
    // Set before any test thread starts.
    std::env::set_var("RESCUE_PASSWORD", RESCUE_PASSWORD);
    std::env::set_var("ROOT_PASSWORD", ROOT_PASSWORD);
    std::env::set_var("WRONG_ROOT_PASSWORD", WRONG_ROOT_PASSWORD);
    std::env::set_var("NIX_CONFIG", support::nix_config());
    let _ = ctrlc_kill_guests();
    let args = Arguments::from_args();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let _ = GUEST_CPUS.set(isotest::run::guest_cpus(
        cores,
        args.test_threads.unwrap_or(cores),
    ));
    let mut tests = scenario_tests();
    tests.extend(negative_tests());
    tests.extend(layout_tests());
    tests.extend(login_shell_tests());
    tests.extend(console_login_tests());
    tests.extend(nixos_boot_tests());
    tests.push(flake_value_changed());
    tests.extend(menu_layout_tests());
    tests.push(screendump_without_serial());
    tests.push(qemu_refuses_its_arguments());
    tests.extend(noise_tests());
    tests.push(reboot_during_the_checks());
    tests.push(four_trials_at_once());
    tests.push(restored_machines());
    tests.push(shared_boot());
    tests.push(wrong_expectations());
    tests.push(startup_not_waited_for());
    libtest_mimic::run(&args, tests).exit();
}

/// Ctrl-C during `cargo test` must not leave guests behind. (QEMU, in a process
/// group of its own, does not get the terminal's SIGINT; it also dies with us
/// through PR_SET_PDEATHSIG.)
fn ctrlc_kill_guests() -> Result<(), ctrlc::Error> {
    ctrlc::set_handler(|| {
        isotest::qemu::kill_all_machines();
        isotest::qemu::remove_private_dirs();
        std::process::exit(130);
    })
}

fn options(name: &str) -> RunOptions {
    RunOptions {
        artifacts: support::artifacts().join(name),
        cpus: *GUEST_CPUS.get().unwrap_or(&1),
        // Other tests boot beside a shared boot's leader.
        lone_cpus: *GUEST_CPUS.get().unwrap_or(&1),
        ..RunOptions::default()
    }
}

/// Virtual CPUs per guest: as `isotest run` chooses them for as many guests
/// at once as there are test threads.
static GUEST_CPUS: std::sync::OnceLock<u32> = std::sync::OnceLock::new();

/// Runs a trial on `image` and turns a failure into the report's explanation.
fn run(trial: &Trial, image: PathBuf, artifacts: &str) -> TrialReport {
    let report = run_trial(
        trial,
        &RunOptions {
            image: Some(image),
            ..options(artifacts)
        },
    );
    eprintln!("{}", isotest::report::render_line(&report));
    report
}

/// One test per trial of every scenario. `iso: NAME` is built by `nix build` from
/// the fixture flake, whose package publishes the fixture ISO NAME. A trial that
/// cannot run on this host (say, no OVMF) is ignored with the plan's reason, never
/// passed.
fn scenario_tests() -> Vec<Test> {
    let dir = support::repo().join(select::SCENARIO_DIR);
    let trials = select::scenario_files(&dir)
        .and_then(|paths| select::load(&paths, &[]))
        .unwrap_or_else(|e| panic!("{}", isotest::error::chain(&e)));
    trials
        .into_iter()
        .map(|trial| {
            Test::ignorable_test(trial.name(), move || {
                if let Some(reason) = &trial.skip {
                    return Ok(Completion::ignored_with(reason));
                }
                if let Some(host) = &trial.scenario.source.host {
                    support::fixture_for(trial.arch.as_str(), host)?;
                }
                let report = run_trial(&trial, &options("scenarios"));
                eprintln!("{}", isotest::report::render_line(&report));
                match report.verdict {
                    Verdict::Pass => secret_kept(&report).map(|()| Completion::Completed),
                    _ => Err(render_failure(&report).into()),
                }
            })
        })
        .collect()
}

/// A password used for a login (SSH or console, right or wrong) must not
/// appear in any artifact or in the report.
fn secret_kept(report: &TrialReport) -> Result<(), Failed> {
    let mut texts = vec![render_failure(report), isotest::report::render_line(report)];
    for entry in std::fs::read_dir(&report.artifacts).map_err(|e| e.to_string())? {
        texts.push(
            String::from_utf8_lossy(
                &std::fs::read(entry.map_err(|e| e.to_string())?.path()).unwrap_or_default(),
            )
            .into_owned(),
        );
    }
    for password in [RESCUE_PASSWORD, ROOT_PASSWORD, WRONG_ROOT_PASSWORD] {
        if texts.iter().any(|t| t.contains(password)) {
            return Err(format!(
                "the password `{password}` appears in the report or the artifacts"
            )
            .into());
        }
    }
    Ok(())
}

/// The rescue scenario's trial on `arch`/`firmware`, to boot a broken variant of
/// the rescue disk.
fn rescue_trial(arch: Arch, firmware: Firmware, timeout: Option<Duration>) -> Trial {
    let mut scenario =
        Scenario::load(&support::repo().join("scenarios/rescue.yaml")).expect("rescue.yaml");
    scenario.steps.clear(); // the negative tests are about the built-in checks
    if let Some(t) = timeout {
        scenario.timeout = t;
    }
    let trials = plan::trials(&[Arc::new(scenario)]);
    trials
        .into_iter()
        .find(|t| t.arch == arch && t.firmware == firmware)
        .expect("rescue.yaml has this trial")
}

/// A scenario's x86_64 BIOS trial as the file has it, steps included.
fn scenario_trial(file: &str) -> Trial {
    scenario_trial_on(file, Arch::X86_64, Firmware::Bios)
}

/// A scenario's trial on `arch`/`firmware` as the file has it, steps included.
fn scenario_trial_on(file: &str, arch: Arch, firmware: Firmware) -> Trial {
    let scenario = Scenario::load(&support::repo().join("scenarios").join(file))
        .unwrap_or_else(|e| panic!("{e}"));
    let trials = plan::trials(&[Arc::new(scenario)]);
    trials
        .into_iter()
        .find(|t| t.arch == arch && t.firmware == firmware)
        .expect("the scenario has this trial")
}

/// A broken variant, booted on x86_64 with BIOS.
fn negative(
    name: &str,
    variant: &'static str,
    timeout: Option<Duration>,
    assert: fn(&TrialReport) -> Result<(), String>,
) -> Test {
    negative_on(name, Arch::X86_64, Firmware::Bios, variant, timeout, assert)
}

fn negative_on(
    name: &str,
    arch: Arch,
    firmware: Firmware,
    variant: &'static str,
    timeout: Option<Duration>,
    assert: fn(&TrialReport) -> Result<(), String>,
) -> Test {
    let suffix = if (arch, firmware) == (Arch::X86_64, Firmware::Bios) {
        String::new()
    } else {
        format!("::{arch}::{firmware}")
    };
    Test::ignorable_test(format!("negative::{name}{suffix}"), move || {
        let trial = rescue_trial(arch, firmware, timeout);
        // A firmware this host lacks (e.g. no OVMF): ignored with the reason, not passed.
        if let Some(reason) = &trial.skip {
            return Ok(Completion::ignored_with(reason));
        }
        let image = support::fixture_for(arch.as_str(), variant)?;
        let artifacts = format!("negative-{variant}-{arch}-{firmware}");
        let judged = |report: &TrialReport| {
            assert(report).map_err(|e| {
                Failed::from(format!("{e}\n--- the report:\n{}", render_failure(report)))
            })
        };
        if !SHARED.contains(&variant) || !isotest::qemu::qemu_can_save(arch) {
            judged(&run(&trial, image, &artifacts))?;
            return Ok(Completion::Completed);
        }
        let (booted, restored) = run_shared(&trial, image, &artifacts)?;
        judged(&booted)?;
        judged(&restored)?;
        same_verdicts(&booted, &restored)?;
        Ok(Completion::Completed)
    })
}

/// The fixture variants whose negative tests also run restored from a shared
/// boot: every one whose boot reaches a shell and whose failure is a check's
/// (the others leave no machine to share: a second trial would boot again
/// from power-on).
const SHARED: [&str; 10] = [
    "wrong-hostname",
    "sshd-off",
    "sshd-no-root-login",
    "user-missing",
    "wrong-shell",
    "hm-failed",
    "hm-not-run",
    "hm-package-missing",
    "hm-font-missing",
    "hm-legacy-broken",
];

/// `trial` on `image` twice in one run, sharing one boot: the first boots
/// from power-on and saves its machine at the shell, the second (its
/// scenario renamed `<name>-restored`) starts from that state. Fails unless
/// the second was restored.
fn run_shared(
    trial: &Trial,
    image: PathBuf,
    artifacts: &str,
) -> Result<(TrialReport, TrialReport), Failed> {
    let mut scenario = (*trial.scenario).clone();
    scenario.name = format!("{}-restored", scenario.name);
    let second = Trial {
        scenario: Arc::new(scenario),
        ..trial.clone()
    };
    let options = RunOptions {
        image: Some(image),
        ..options(artifacts)
    };
    let mut reports =
        isotest::run::run_trials(&[trial.clone(), second], &options, 2, &|_: &TrialReport| ());
    let restored = reports.pop().expect("two reports");
    let booted = reports.pop().expect("two reports");
    for r in [&booted, &restored] {
        eprintln!("{}", isotest::report::render_line(r));
    }
    match restored.shared.as_ref().map(|s| &s.role) {
        Some(SharedRole::Restored { randomness, .. }) => {
            reseeded(randomness)?;
            took_saved_answers(&restored)?;
            Ok((booted, restored))
        }
        _ => Err(format!(
            "the second trial did not start from the first one's boot: {:?}\n{}",
            restored.shared,
            render_failure(&restored)
        )
        .into()),
    }
}

/// Scenarios (file name, YAML) written to `dir` and run together, one trial
/// at a time (so that they share a boot where they can), each trial's line
/// printed as it ends; their reports in the files' order.
fn run_scenarios(
    dir: &std::path::Path,
    files: impl IntoIterator<Item = (impl AsRef<str>, impl AsRef<str>)>,
    artifacts: &str,
) -> Result<Vec<TrialReport>, String> {
    let mut paths = Vec::new();
    for (name, yaml) in files {
        let path = dir.join(name.as_ref());
        std::fs::write(&path, yaml.as_ref()).map_err(|e| e.to_string())?;
        paths.push(path);
    }
    let trials = select::load(&paths, &[]).map_err(|e| isotest::error::chain(&e))?;
    Ok(isotest::run::run_trials(
        &trials,
        &options(artifacts),
        1,
        &|r: &TrialReport| eprintln!("{}", isotest::report::render_line(r)),
    ))
}

/// A restored machine's random generator was reseeded apart from the
/// others': for its new VM generation ID (x86_64), else forced after the
/// host's bytes went in.
fn reseeded(randomness: &str) -> Result<(), String> {
    let vmgenid = randomness.contains("reseeded on its new VM generation ID")
        && randomness.contains("the host's random bytes mixed in");
    let forced = randomness.contains("the host's random bytes mixed in and a reseed forced");
    ensure(vmgenid || forced, format!("randomness: {randomness}"))
}

/// A restored trial's checks took what its shared boot read before the
/// save (`read_before_save`), as its commands.log says, rather than running
/// the same read-only commands again.
fn took_saved_answers(restored: &TrialReport) -> Result<(), String> {
    let log = std::fs::read_to_string(restored.artifacts.join(isotest::console::COMMAND_LOG))
        .map_err(|e| format!("commands.log: {e}"))?;
    ensure(
        log.contains("answers of the shared boot's machine, read just before it was saved")
            && log.contains("# exit status 0, read on the shared boot"),
        format!("no answers of the shared boot in commands.log:\n{log}"),
    )
}

/// The same verdict and the same outcome of every check, booted or restored.
fn same_verdicts(booted: &TrialReport, restored: &TrialReport) -> Result<(), Failed> {
    let outcomes = |r: &TrialReport| -> Vec<(String, Outcome)> {
        r.checks
            .iter()
            .map(|c| (c.name.to_string(), c.outcome))
            .collect()
    };
    ensure(
        booted.verdict == restored.verdict && outcomes(booted) == outcomes(restored),
        format!(
            "booted: {:?} {:?}; restored: {:?} {:?}",
            booted.verdict,
            outcomes(booted),
            restored.verdict,
            outcomes(restored)
        ),
    )
    .map_err(Failed::from)
}

/// A wrong hostname fails the hostname check, and only it, on every firmware.
fn wrong_hostname(r: &TrialReport) -> Result<(), String> {
    only(
        r,
        "hostname",
        "hostname mismatch: expected `rescue`, the guest says `wrong-name`",
        &[],
    )
}

/// Exactly `failing` failed (with a message starting as given) and `not_run` did
/// not run because of it; every other check passed.
fn only(r: &TrialReport, failing: &str, message: &str, not_run: &[&str]) -> Result<(), String> {
    only_these(r, &[(failing, Outcome::Fail, message)], not_run)
}

/// Exactly these checks have these outcomes (with messages starting as given),
/// each of `not_run` is in the report and did not run, and every other check passed.
fn only_these(
    r: &TrialReport,
    wrong: &[(&str, Outcome, &str)],
    not_run: &[&str],
) -> Result<(), String> {
    ensure(
        r.error.is_none(),
        format!("the trial errored: {:?}", r.error),
    )?;
    for (name, outcome, message) in wrong {
        let c = check(r, name)?;
        ensure(
            c.outcome == *outcome,
            format!(
                "`{name}` is {:?}, expected {outcome:?}: {}",
                c.outcome, c.message
            ),
        )?;
        ensure(
            c.message.starts_with(message),
            format!("`{name}`: wrong message: {}", c.message),
        )?;
    }
    for name in not_run {
        ensure(
            check(r, name)?.outcome == Outcome::NotRun,
            format!("`{name}` ran, expected \"not run\""),
        )?;
    }
    for other in r
        .checks
        .iter()
        .filter(|c| !wrong.iter().any(|(n, _, _)| *n == c.name.to_string()))
    {
        let expected = if not_run.contains(&other.name.to_string().as_str()) {
            Outcome::NotRun
        } else {
            Outcome::Pass
        };
        ensure(
            other.outcome == expected,
            format!(
                "`{}` is {:?}, expected {expected:?}: {}",
                other.name, other.outcome, other.message
            ),
        )?;
    }
    Ok(())
}

/// A variant that must pass the whole rescue scenario, steps included, and
/// show `evidence` (substrings) in the named checks.
fn layout(
    name: &str,
    variant: &'static str,
    evidence: &'static [(&'static str, &'static str)],
) -> Test {
    layout_with(name, variant, None, evidence)
}

/// `layout`, with another autologin user expected than the flake's.
fn layout_with(
    name: &str,
    variant: &'static str,
    autologin: Option<&'static str>,
    evidence: &'static [(&'static str, &'static str)],
) -> Test {
    let tweak: Tweak = match autologin {
        Some("nixos") => {
            |s| s.expect.autologin = Some(isotest::scenario::Autologin::User("nixos".into()))
        }
        Some(other) => panic!("no tweak for autologin {other}"),
        None => |_| {},
    };
    layout_on(
        &format!("layouts::{name}"),
        variant,
        Arch::X86_64,
        Firmware::Bios,
        tweak,
        evidence,
    )
}

/// What a variant's configuration says differently from the rescue host's, as
/// its flake would (a shell, credentials): applied to the rescue scenario.
type Tweak = fn(&mut Scenario);

/// The whole rescue scenario, steps included, with `tweak`, on `variant` booted
/// on `arch`/`firmware`: it passes, shows `evidence` (substrings) in the named
/// checks, and no password reaches an artifact.
fn layout_on(
    test: &str,
    variant: &'static str,
    arch: Arch,
    firmware: Firmware,
    tweak: Tweak,
    evidence: &'static [(&'static str, &'static str)],
) -> Test {
    let artifacts = format!("layout-{variant}-{arch}-{firmware}");
    Test::ignorable_test(test.to_owned(), move || {
        let mut trial = scenario_trial_on("rescue.yaml", arch, firmware);
        if let Some(reason) = &trial.skip {
            return Ok(Completion::ignored_with(reason));
        }
        let image = support::fixture_for(arch.as_str(), variant)?;
        let mut scenario = (*trial.scenario).clone();
        tweak(&mut scenario);
        trial.scenario = Arc::new(scenario);
        let report = run(&trial, image, &artifacts);
        let result = ensure(report.passed(), "the trial did not pass").and_then(|()| {
            for (name, text) in evidence {
                let c = check(&report, name)?;
                let all = format!("{} | {}", c.message, c.evidence.join(" | "));
                ensure(
                    all.contains(text),
                    format!("`{name}` does not show `{text}`: {all}"),
                )?;
            }
            secret_kept(&report).map_err(|e| format!("{e:?}"))
        });
        result
            .map(|()| Completion::Completed)
            .map_err(|e| Failed::from(format!("{e}\n--- the report:\n{}", render_failure(&report))))
    })
}

/// Login shells an owner may choose (fixtures/build-iso, shell-*): the rescue
/// scenario passes with the console's user (root) and the SSH password user
/// (nixos) logging into fish, elvish or zsh with a right-hand prompt, the
/// users' expected shells being what the variant configures; the autologin
/// check names the login shell isotest started its /bin/sh from.
fn login_shell_tests() -> Vec<Test> {
    fn fish(s: &mut Scenario) {
        shells(s, "fish", "fish")
    }
    fn elvish(s: &mut Scenario) {
        shells(s, "elvish", "elvish")
    }
    fn zsh(s: &mut Scenario) {
        shells(s, "zsh", "zsh")
    }
    fn shells(s: &mut Scenario, root: &str, nixos: &str) {
        for (user, shell) in [("root", root), ("nixos", nixos)] {
            s.expect.users.entry(user.into()).or_default().shell = Some(shell.into());
        }
    }
    let fish_evidence: &[(&str, &str)] = &[
        ("autologin", "login shell: /usr/bin/fish"),
        (
            "user root",
            "the serial console's login shell: /usr/bin/fish",
        ),
        ("ssh login nixos (password)", "id -un → nixos"),
    ];
    vec![
        layout_on(
            "shells::fish",
            "shell-fish",
            Arch::X86_64,
            Firmware::Bios,
            fish,
            fish_evidence,
        ),
        layout_on(
            "shells::fish::x86_64::uefi",
            "shell-fish",
            Arch::X86_64,
            Firmware::Uefi,
            fish,
            fish_evidence,
        ),
        layout_on(
            "shells::elvish",
            "shell-elvish",
            Arch::X86_64,
            Firmware::Bios,
            elvish,
            &[("autologin", "login shell: /usr/bin/elvish")],
        ),
        layout_on(
            "shells::zsh_right_prompt",
            "shell-zsh",
            Arch::X86_64,
            Firmware::Bios,
            zsh,
            &[("autologin", "login shell: /usr/bin/zsh")],
        ),
    ]
}

/// A console without autologin (`console-login`: root has a password):
/// with the scenario's credentials (`boot.login`) isotest logs in at the
/// prompt and every check runs; with a wrong password the console login
/// fails with login's answer and nothing else runs. Neither password reaches
/// an artifact.
fn console_login_tests() -> Vec<Test> {
    fn credentials(s: &mut Scenario, var: &str) {
        s.expect.autologin = Some(isotest::scenario::Autologin::Disabled);
        s.boot.login = Some(isotest::scenario::SshLogin {
            user: "root".into(),
            password_env: Some(var.into()),
        });
    }
    let right: Tweak = |s| credentials(s, "ROOT_PASSWORD");
    vec![
        layout_on(
            "login::console_password",
            "console-login",
            Arch::X86_64,
            Firmware::Bios,
            right,
            &[
                ("autologin", "a login prompt"),
                (
                    "console login root",
                    "logged in as root at the console's login prompt",
                ),
                ("console login root", "login shell: /usr/bin/bash"),
            ],
        ),
        Test::test("login::wrong_console_password", || {
            let mut trial = rescue_trial(Arch::X86_64, Firmware::Bios, None);
            let mut scenario = (*trial.scenario).clone();
            credentials(&mut scenario, "WRONG_ROOT_PASSWORD");
            trial.scenario = Arc::new(scenario);
            let r = run(
                &trial,
                support::fixture("console-login")?,
                "login-wrong-console-password",
            );
            let ran = [
                "autologin",
                "console login root",
                "ssh login nixos (password)",
            ];
            let not_run: Vec<String> = r
                .checks
                .iter()
                .map(|c| c.name.to_string())
                .filter(|n| !ran.contains(&n.as_str()))
                .collect();
            let not_run: Vec<&str> = not_run.iter().map(String::as_str).collect();
            let result = only(
                &r,
                "console login root",
                "console login as `root` failed: login refused the password (`Login incorrect`)",
                &not_run,
            )
            .and_then(|()| {
                ensure(
                    not_run.len() >= 6,
                    format!("the checks that need a shell are missing: {not_run:?}"),
                )
            })
            .and_then(|()| {
                let c = check(&r, "console login root")?;
                ensure(
                    c.evidence.iter().any(|l| l.contains("Login incorrect")),
                    "login's answer is not in the evidence",
                )
            })
            .and_then(|()| secret_kept(&r).map_err(|e| format!("{e:?}")));
            result
                .map_err(|e| Failed::from(format!("{e}\n--- the report:\n{}", render_failure(&r))))
        }),
    ]
}

/// NixOS's own boot text (fixtures/build-iso, write_nixos_initrd): the whole
/// rescue scenario passes, with the same phases in the report as on the
/// Debian fixtures, read off NixOS's lines (Debian's initramfs and live-boot
/// are quiet there); and a stage 1 that cannot find the ISO is named at its
/// prompt, not waited out.
fn nixos_boot_tests() -> Vec<Test> {
    fn text(name: &str, variant: &'static str, lines: &'static [&'static str]) -> Test {
        Test::test(format!("nixos::{name}"), move || {
            let r = run(
                &scenario_trial("rescue.yaml"),
                support::fixture(variant)?,
                &format!("nixos-{variant}"),
            );
            let result = (|| {
                ensure(r.passed(), "the trial did not pass")?;
                let phases: Vec<&str> = r.phases.iter().map(|(p, _)| p.id()).collect();
                let debian = [
                    "power-on",
                    "boot-menu",
                    "kernel",
                    "userspace",
                    "login-prompt",
                    "shell",
                    "settled",
                ];
                ensure(
                    phases == debian,
                    format!("phases {phases:?}, not {debian:?}"),
                )?;
                let console = std::fs::read(r.artifacts.join("console.log"))
                    .map_err(|e| format!("console.log: {e}"))?;
                let console = String::from_utf8_lossy(&console);
                for line in lines {
                    ensure(
                        console.contains(line),
                        format!("`{line}` is not on the console"),
                    )?;
                }
                ensure(
                    !console.contains("Loading, please wait"),
                    "Debian's initramfs spoke: the phases may be read off its lines",
                )
            })();
            result
                .map_err(|e| Failed::from(format!("{e}\n--- the report:\n{}", render_failure(&r))))
        })
    }
    vec![
        text(
            "scripted_stages",
            "nixos-stage-1",
            &[
                "<<< NixOS Stage 1 >>>",
                "loading module sr_mod...",
                "<<< NixOS Stage 2 >>>",
                "Welcome to NixOS",
            ],
        ),
        text(
            "systemd_initrd",
            "nixos-systemd-initrd",
            &[
                "(isotest) (Initrd)!",
                "Starting Switch Root...",
                "Welcome to NixOS",
            ],
        ),
        negative("stage_1_failure", "stage-1-fail", None, |r| {
            let lines = [
                "An error occurred in stage 1 of the boot process",
                "Timed out waiting for device /dev/root, trying to mount anyway.",
            ];
            // 20 s of waiting for the device, as NixOS waits, then the prompt at once.
            died(
                r,
                "NixOS stage 1 failed: it could not mount the root file system or start stage 2",
                "kernel and initrd",
                &lines,
                150.0,
            )
        }),
    ]
}

/// Home Manager's layouts and socket-activated sshd, each booted with the
/// whole rescue scenario (fixtures/build-iso names the sources they follow).
fn layout_tests() -> Vec<Test> {
    vec![
        layout(
            "hm_2505",
            "hm-2505",
            &[
                ("home-manager root", "no RemainAfterExit"),
                (
                    "home-manager root",
                    "/root/.local/state/nix/profiles/home-manager ->",
                ),
                (
                    "home-manager nixos",
                    "/home/nixos/.local/state/nix/profiles/home-manager ->",
                ),
                // A font and man pages: no programs, found by the store paths
                // the generation's home-path links to (whole directories here).
                (
                    "home-manager root",
                    "package noto-fonts: home-path/share/fonts -> /nix/store/",
                ),
                (
                    "home-manager root",
                    "package man-pages: home-path/share/man -> /nix/store/",
                ),
                (
                    "home-manager root",
                    "package ripgrep: home-path/bin/rg -> /nix/store/",
                ),
                ("sshd", "(sshd.service)"),
            ],
        ),
        layout(
            "hm_legacy",
            "hm-legacy",
            &[
                ("home-manager root", "RemainAfterExit=yes"),
                (
                    "home-manager root",
                    "/root/.local/state/home-manager/gcroots/current-home ->",
                ),
                (
                    "home-manager nixos",
                    "/nix/var/nix/profiles/per-user/nixos/home-manager ->",
                ),
            ],
        ),
        layout(
            "sshd_socket",
            "sshd-socket",
            &[
                ("sshd", "socket-activated (sshd.socket)"),
                ("sshd", "connected once to start sshd@.service"),
                ("sshd", "LoadState=not-found"),
            ],
        ),
        // The shell is nixos's: root's Home Manager generation (in the 0700
        // /root), sshd -T and root's SSH key go through sudo -n.
        layout_with(
            "root_checks_through_sudo",
            "autologin-nixos",
            Some("nixos"),
            &[
                ("autologin", "logged in nixos"),
                (
                    "home-manager root",
                    "/root/.local/state/nix/profiles/home-manager ->",
                ),
            ],
        ),
    ]
}

fn check<'r>(
    report: &'r TrialReport,
    name: &str,
) -> Result<&'r isotest::checks::CheckResult, String> {
    report
        .check(&isotest::check_id::CheckId::parse(name))
        .ok_or_else(|| format!("no `{name}` check in the report"))
}

/// A value changed in (a copy of) the flake changes the derived expectation, and
/// the ISO built from the old value fails exactly that check, saying so.
fn flake_value_changed() -> Test {
    Test::test("flake::changed_hostname_fails_against_the_old_iso", || {
        let image = support::fixture("rescue")?;
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let copy = dir.path().join("flake");
        let status = std::process::Command::new("cp")
            .arg("-r")
            .arg(support::repo().join("fixtures/flake"))
            .arg(&copy)
            .status();
        ensure(
            status.is_ok_and(|s| s.success()),
            "cannot copy the fixture flake",
        )?;
        let host = copy.join("hosts/iso/rescue/default.nix");
        let text = std::fs::read_to_string(&host).map_err(|e| e.to_string())?;
        let changed = text.replacen("{\n", "{\n  networking.hostName = \"rescue-renamed\";\n", 1);
        std::fs::write(&host, changed).map_err(|e| e.to_string())?;
        let scenario = format!(
            "iso: rescue\nflake: path:{}\narch: x86_64\nfirmware: bios\n",
            copy.display()
        );
        let scenario = Scenario::parse(&dir.path().join("renamed.yaml"), &scenario)
            .map_err(|e| e.to_string())?;
        let trial = plan::trials(&[Arc::new(scenario)]).remove(0);
        let report = run(&trial, image, "flake-renamed");
        let result = only(
            &report,
            "hostname",
            "hostname mismatch: expected `rescue-renamed`, the guest says `rescue`",
            &[],
        )
        .and_then(|()| {
            ensure(
                report.origins.get("hostname").map(|o| o.as_str()) == Some("flake"),
                "the origin is not the flake",
            )
        })
        .and_then(|()| {
            ensure(
                render_failure(&report).contains("expected (from the flake): rescue-renamed"),
                "the failure does not name the flake",
            )
        });
        result
            .map_err(|e| Failed::from(format!("{e}\n--- the report:\n{}", render_failure(&report))))
    })
}

/// Boot-menu layouts of real ISOs (fixtures/build-iso, write_grub_cfg): the
/// rescue scenario, steps included, passes on every firmware the layout exists for.
fn menu_layout_tests() -> Vec<Test> {
    let uefi = [
        (Arch::X86_64, Firmware::Uefi),
        (Arch::Aarch64, Firmware::Uefi),
    ];
    let mut tests = Vec::new();
    for variant in [
        "grub-gfxterm",
        "grub-serial",
        "grub-embedded",
        "grub-options",
    ] {
        for (arch, firmware) in uefi {
            tests.push(menu_layout(variant, arch, firmware));
        }
    }
    // One GRUB for BIOS and UEFI: x86_64 only, where BIOS exists.
    for firmware in [Firmware::Bios, Firmware::Uefi] {
        tests.push(menu_layout("grub-unified", Arch::X86_64, firmware));
    }
    // Known only from the screen: one-line entries, the serial entry two
    // submenus deep (on aarch64 it names ttyS0, not the console there, so the
    // search ends in an edit of the installer's one-line entry).
    for (arch, firmware) in uefi.into_iter().chain([(Arch::X86_64, Firmware::Bios)]) {
        tests.push(menu_layout("grub-oneline", arch, firmware));
    }
    tests
}

fn menu_layout(variant: &'static str, arch: Arch, firmware: Firmware) -> Test {
    Test::test(
        format!("menus::{}::{arch}::{firmware}", variant.replace('-', "_")),
        move || {
            let image = support::fixture_for(arch.as_str(), variant)?;
            let scenario = Scenario::load(&support::repo().join("scenarios/rescue.yaml"))
                .map_err(|e| e.to_string())?;
            let trial = plan::trials(&[Arc::new(scenario)])
                .into_iter()
                .find(|t| t.arch == arch && t.firmware == firmware)
                .ok_or("rescue.yaml has no such trial")?;
            let report = run(&trial, image, &format!("menus-{variant}-{arch}-{firmware}"));
            match report.passed() {
                true => secret_kept(&report),
                false => Err(render_failure(&report).into()),
            }
        },
    )
}

/// root's check when the fixture's generation lacks ripgrep.
const HM_RIPGREP_MISSING: &str =
    "program(s) missing from root's login shell: rg; package(s) missing from root's Home Manager generation: ripgrep";

fn negative_tests() -> Vec<Test> {
    vec![
        negative("wrong_hostname", "wrong-hostname", None, wrong_hostname),
        negative_on(
            "wrong_hostname",
            Arch::X86_64,
            Firmware::Uefi,
            "wrong-hostname",
            None,
            wrong_hostname,
        ),
        negative_on(
            "wrong_hostname",
            Arch::Aarch64,
            Firmware::Uefi,
            "wrong-hostname",
            None,
            wrong_hostname,
        ),
        negative("no_autologin", "no-autologin", None, |r| {
            let c = check(r, "autologin")?;
            ensure(c.outcome == Outcome::Fail, "autologin did not fail")?;
            ensure(
                c.message == "login prompt on the serial console, no autologin",
                format!("wrong message: {}", c.message),
            )?;
            ensure(
                c.evidence.iter().any(|l| l.contains("rescue login:")),
                "no login prompt in the evidence",
            )?;
            ensure(
                check(r, "hostname")?.outcome == Outcome::NotRun,
                "hostname cannot run without a shell",
            )?;
            // A password login needs no console: it runs, its host key unpinned.
            let ssh = check(r, "ssh login nixos (password)")?;
            ensure(
                ssh.outcome == Outcome::Pass,
                format!("the password login did not pass: {}", ssh.message),
            )?;
            ensure(
                ssh.evidence.iter().any(|l| l.contains("not pinned")),
                "the unpinned host key is not in the evidence",
            )?;
            let others = r.checks.iter().filter(|c| {
                !["autologin", "ssh login nixos (password)"].contains(&c.name.to_string().as_str())
            });
            ensure(
                others.clone().count() >= 6,
                "the checks that need a shell are missing from the report",
            )?;
            ensure(
                others.into_iter().all(|c| c.outcome == Outcome::NotRun),
                "a check ran without a shell",
            )?;
            secret_kept(r).map_err(|e| format!("{e:?}"))
        }),
        negative("panic", "panic", None, |r| {
            let e = r.error.as_ref().ok_or("no error in the report")?;
            ensure(
                e.message.starts_with("kernel panic"),
                format!("wrong message: {}", e.message),
            )?;
            ensure(
                e.evidence
                    .iter()
                    .any(|l| l.contains("Kernel panic - not syncing")),
                "the panic line is not in the evidence",
            )?;
            ensure(
                e.evidence.len() > 3,
                "too few console lines around the panic",
            )?;
            ensure(r.checks.is_empty(), "checks ran after a panic")
        }),
        negative("sshd_off", "sshd-off", None, |r| {
            only(
                r,
                "sshd",
                "sshd.service is not active (`inactive`)",
                &["ssh login root (key)", "ssh login nixos (password)"],
            )
        }),
        negative("sshd_no_root_login", "sshd-no-root-login", None, |r| {
            only(
                r,
                "sshd",
                "PermitRootLogin is `no`, expected `yes`",
                &["ssh login root (key)", "ssh login nixos (password)"],
            )
        }),
        negative("user_missing", "user-missing", None, |r| {
            only(
                r,
                "user nixos",
                "user `nixos` does not exist",
                &["ssh login nixos (password)", "home-manager nixos"],
            )
        }),
        negative("wrong_shell", "wrong-shell", None, |r| {
            only(
                r,
                "user nixos",
                "login shell of `nixos` is `/bin/bash`, expected `zsh`",
                &[],
            )
        }),
        negative("hm_failed", "hm-failed", None, |r| {
            only(
                r,
                "home-manager nixos",
                "home-manager-nixos.service failed (ActiveState=failed, Result=exit-code",
                &[],
            )?;
            let c = check(r, "home-manager nixos")?;
            ensure(
                c.evidence.iter().any(|l| l.contains("is in the way")),
                "the activation's error is not in the evidence",
            )
        }),
        // The unit never ran (nothing wants it), so no generation was linked.
        negative("hm_not_run", "hm-not-run", None, |r| {
            only(
                r,
                "home-manager nixos",
                "home-manager-nixos.service has not run this boot (no start or exit time); \
                 no Home Manager generation for `nixos`: none of ~/.local/state/nix/profiles/home-manager, ",
                &[],
            )
        }),
        // ripgrep is not in the generation: neither its program nor the package.
        negative("hm_package_missing", "hm-package-missing", None, |r| {
            only(r, "home-manager root", HM_RIPGREP_MISSING, &[])?;
            ensure(
                check(r, "home-manager root")?.message == HM_RIPGREP_MISSING,
                "more than ripgrep is missing",
            )
        }),
        // A font is no program: only the generation can say it is missing.
        negative("hm_font_missing", "hm-font-missing", None, |r| {
            let missing = "package(s) missing from root's Home Manager generation: noto-fonts";
            only(r, "home-manager root", missing, &[])?;
            let c = check(r, "home-manager root")?;
            ensure(
                c.message == missing,
                format!("wrong message: {}", c.message),
            )?;
            // Without the font, only man-pages has share/: buildEnv links it whole.
            ensure(
                c.evidence
                    .iter()
                    .any(|l| l.starts_with("package man-pages: home-path/share -> /nix/store/")),
                "man-pages not found",
            )
        }),
        // Both defects in the older Home Manager layout (RemainAfterExit, gcroot).
        negative("hm_legacy_broken", "hm-legacy-broken", None, |r| {
            only_these(
                r,
                &[
                    (
                        "home-manager nixos",
                        Outcome::Fail,
                        "home-manager-nixos.service failed (ActiveState=failed, Result=exit-code",
                    ),
                    ("home-manager root", Outcome::Fail, HM_RIPGREP_MISSING),
                ],
                &[],
            )?;
            let c = check(r, "home-manager nixos")?;
            ensure(
                c.evidence.iter().any(|l| l.contains("is in the way")),
                "the activation's error is not in the evidence",
            )?;
            ensure(
                c.evidence.iter().any(|l| l.contains("RemainAfterExit=yes")),
                "not the older unit",
            )
        }),
        // The plain installer (sshd off) without `ss`: `running: false` has no
        // evidence, so the check is broken, not passed.
        Test::test("negative::no_ss", || {
            let image = support::fixture("no-ss")?;
            let r = run(&scenario_trial("minimal.yaml"), image, "negative-no-ss");
            let result = only_these(
                &r,
                &[(
                    "sshd",
                    Outcome::Broken,
                    "`ss -ltnH`: a tool is missing on the guest (exit status 127)",
                )],
                &[],
            )
            .and_then(|()| ensure(!r.passed(), "a trial with a broken check passed"));
            result
                .map_err(|e| Failed::from(format!("{e}\n--- the report:\n{}", render_failure(&r))))
        }),
        // A required mount whose disk is missing: emergency mode, with the
        // lines that led there.
        negative("emergency", "emergency", None, |r| {
            died(
                r,
                "emergency mode: systemd could not reach its default target",
                "userspace (init started)",
                &["You are in emergency mode"],
                240.0,
            )?;
            let e = r.error.as_ref().ok_or("no error in the report")?;
            ensure(
                e.evidence.iter().any(|l| {
                    l.contains("Dependency failed for")
                        || l.contains("Timed out waiting for device")
                }),
                "the failed mount is not in the evidence",
            )
        }),
        // A unit that fails while the system comes up fails no check that does
        // not need it: the trial passes, and every report names the unit with
        // the end of its journal.
        Test::test("negative::unit_failed", || {
            // A step: start-up is waited for before the units are listed, so
            // every unit that fails has failed by then.
            let mut trial = rescue_trial(Arch::X86_64, Firmware::Bios, None);
            let mut scenario = (*trial.scenario).clone();
            scenario.steps = Scenario::parse(
                std::path::Path::new("step.yaml"),
                "image: any.iso\nsteps: [{run: 'true'}]\n",
            )
            .map_err(|e| e.to_string())?
            .steps;
            trial.scenario = Arc::new(scenario);
            let r = run(
                &trial,
                support::fixture("unit-failed")?,
                "negative-unit-failed",
            );
            let result = (|| {
                ensure(r.passed(), "the trial did not pass")?;
                ensure(!r.startup_unfinished, "start-up was not waited for")?;
                let [unit] = r.failed_units.as_slice() else {
                    return Err(format!(
                        "expected one failed unit, the report has {:?}",
                        r.failed_units
                    ));
                };
                ensure(
                    unit.unit == "rescue-mirror.service",
                    format!("wrong unit: {}", unit.unit),
                )?;
                let said = "rescue-mirror: cannot resolve mirror.invalid";
                ensure(
                    unit.journal.iter().any(|l| l.contains(said)),
                    format!("its error is not in the journal: {:?}", unit.journal),
                )?;
                let line = isotest::report::render_line(&r);
                ensure(
                    line.ends_with("failed units: rescue-mirror.service"),
                    format!("the line does not name it: {line}"),
                )?;
                let block = isotest::report::render_failed_units(&r);
                ensure(
                    block.contains("unit rescue-mirror.service failed at boot")
                        && block.contains(said),
                    format!("the human report:\n{block}"),
                )?;
                let json = std::fs::read_to_string(r.artifacts.join("report.json"))
                    .map_err(|e| e.to_string())?;
                let json: serde_json::Value =
                    serde_json::from_str(&json).map_err(|e| e.to_string())?;
                let units = &json["failed_units"];
                ensure(
                    units[0]["unit"] == "rescue-mirror.service"
                        && units.as_array().is_some_and(|a| a.len() == 1),
                    format!("report.json: {units}"),
                )
            })();
            result.map_err(|e| {
                Failed::from(format!(
                    "{e}\n--- the report:\n{}{}",
                    render_failure(&r),
                    isotest::report::render_failed_units(&r)
                ))
            })
        }),
        // A unit resets the machine early in every boot; QEMU runs with
        // -no-reboot, so it exits, and the trial says the guest rebooted.
        negative("reboot_loop", "reboot-loop", None, |r| {
            let e = r.error.as_ref().ok_or("no error in the report")?;
            ensure(
                e.message.contains("the guest rebooted"),
                format!("wrong message: {}", e.message),
            )?;
            ensure(
                r.verdict == Verdict::Fail,
                format!("verdict {:?}, expected a failure", r.verdict),
            )?;
            ensure(
                e.phase.as_deref() == Some("userspace (init started)"),
                format!("wrong phase: {:?}", e.phase),
            )?;
            ensure(
                e.evidence
                    .iter()
                    .any(|l| l.contains("reboot: Restarting system")),
                "the kernel's restart is not in the evidence",
            )?;
            ensure(r.checks.is_empty(), "checks ran after the boot died")?;
            // At the reset, not after the login prompt's wait (240 s under TCG).
            ensure(r.total_secs < 200.0, format!("took {:.0} s", r.total_secs))
        }),
        // No El Torito boot record at all: no firmware could boot it, which
        // the ISO's own sectors say (src/menu/iso.rs); the trial fails before QEMU starts.
        negative("no_boot_record", "no-boot-record", None, |r| {
            let e = r.error.as_ref().ok_or("no error in the report")?;
            ensure(e.message.contains(".iso is an ISO 9660 image without an El Torito boot record: no firmware can boot it"), format!("wrong message: {}", e.message))?;
            ensure(
                r.verdict == Verdict::Fail,
                format!("verdict {:?}, expected a failure", r.verdict),
            )?;
            ensure(r.qemu.is_none(), "QEMU was started")?;
            ensure(r.checks.is_empty(), "checks ran")?;
            ensure(r.total_secs < 5.0, format!("took {:.1} s", r.total_secs))
        }),
        // Nothing for SeaBIOS to boot (the catalog's one entry is for UEFI): it
        // resets at once, QEMU exits, and its log (firmware.log) says why.
        negative("efi_only_boot_record", "efi-only-boot-record", None, |r| {
            let firmware = [
                "(firmware) Boot failed: Could not read from CDROM",
                "(firmware) No bootable device.",
            ];
            died(
                r,
                "no bootable device: the firmware found nothing to boot on the ISO",
                "power-on (no boot menu yet)",
                &firmware,
                30.0,
            )
        }),
        // Nothing for OVMF to boot (the catalog's one entry is for BIOS): it
        // fails to load the CD-ROM's boot option, the only one it was given
        // (qemu/args.rs), and starts its EFI shell; the console says so, and
        // the trial ends then, not at the menu's timeout (80 s under TCG).
        negative_on(
            "bios_only_boot_record",
            Arch::X86_64,
            Firmware::Uefi,
            "bios-only-boot-record",
            None,
            |r| {
                let ovmf = [
                    r#"BdsDxe: failed to load Boot0001 "UEFI QEMU DVD-ROM"#,
                    r#""EFI Internal Shell""#,
                ];
                died(
                    r,
                    "no bootable device: the firmware found nothing to boot on the ISO",
                    "power-on (no boot menu yet)",
                    &ovmf,
                    60.0,
                )?;
                let e = r.error.as_ref().ok_or("no error in the report")?;
                ensure(
                    !e.evidence
                        .iter()
                        .any(|l| l.contains(">>Start PXE") || l.contains(">>Start HTTP")),
                    "network boot was tried",
                )?;
                // From QEMU's start (its pidfile) to the verdict, teardown included:
                // 10 s on a host with a core per busy thread. Nearly all of it is
                // OVMF starting under TCG, which the host's load stretches: measured
                // 4.6 s on 2 idle cores, 7-12 s at load averages of 5-8 on 2 cores
                // (OVMF alone, without isotest: 7.4-10.5 s then). So the bound
                // grows with the load per core; a boot that waited for a menu
                // instead would take 80 s under TCG.
                let pidfile = std::fs::metadata(r.artifacts.join("qemu.pid"))
                    .and_then(|m| m.modified())
                    .map_err(|e| format!("qemu.pid: {e}"))?;
                let after_start = pidfile.elapsed().map_err(|e| e.to_string())?.as_secs_f64();
                let bound = 10.0 * load_per_core().max(1.0);
                ensure(
                    after_start < bound,
                    format!("{after_start:.1} s after QEMU started, more than {bound:.1} s"),
                )
            },
        ),
        negative("no_kernel", "no-kernel", None, |r| {
            died(
                r,
                "the boot loader found no kernel",
                "boot menu",
                &["Loading /boot/bzImage... failed: No such file or directory"],
                60.0,
            )
        }),
        // GRUB's rescue prompt, drawn on VGA and mirrored to serial by SeaBIOS
        // (which wraps its lines, not always at the same place: the evidence is
        // searched as one text for GRUB's error).
        negative("grub_rescue", "grub-rescue", None, |r| {
            died(
                r,
                "GRUB rescue prompt: GRUB could not load its normal mode",
                "power-on (no boot menu yet)",
                &["grub rescue>"],
                60.0,
            )?;
            let joined = r
                .error
                .as_ref()
                .map(|e| e.evidence.concat())
                .unwrap_or_default();
            ensure(
                joined.contains("error: file `/EFI/boot/i386-pc/normal.mod' not found."),
                "GRUB's error is not in the evidence",
            )
        }),
        negative("hang", "hang", Some(Duration::from_secs(100)), |r| {
            let e = r.error.as_ref().ok_or("no error in the report")?;
            ensure(
                e.message.contains("timed out"),
                format!("not a timeout: {}", e.message),
            )?;
            ensure(
                e.message
                    .contains("waiting for a login prompt on the serial console"),
                format!("wrong wait: {}", e.message),
            )?;
            ensure(
                e.message
                    .contains("last phase reached: userspace (init started)"),
                format!("the message names no phase: {}", e.message),
            )?;
            ensure(
                e.phase.as_deref() == Some("userspace (init started)"),
                format!("wrong phase: {:?}", e.phase),
            )?;
            ensure(
                e.evidence.iter().any(|l| l.contains("wait-forever")),
                "the hanging job is not in the last lines",
            )?;
            // Within the scenario's timeout (plus QEMU teardown), not later.
            ensure(
                r.total_secs < 100.0 + 10.0,
                format!("took {:.0} s, over the 100 s timeout", r.total_secs),
            )
        }),
    ]
}

/// The host's load average over the last minute per core (/proc/loadavg).
fn load_per_core() -> f64 {
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next()?.parse::<f64>().ok());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    load.unwrap_or(0.0) / cores
}

/// The boot died of `message` (the start of the error), in `phase`, with
/// `lines` in the evidence, and no check ran; within `secs` of the start, less
/// than the wait it ended would have lasted (under TCG: the menu 80 s, the login
/// prompt 240 s): recognised on the console, not timed out.
fn died(
    r: &TrialReport,
    message: &str,
    phase: &str,
    lines: &[&str],
    secs: f64,
) -> Result<(), String> {
    let e = r.error.as_ref().ok_or("no error in the report")?;
    ensure(
        e.message.starts_with(message),
        format!("wrong message: {}", e.message),
    )?;
    ensure(
        e.phase.as_deref() == Some(phase),
        format!("wrong phase: {:?}", e.phase),
    )?;
    for line in lines {
        ensure(
            e.evidence.iter().any(|l| l.contains(line)),
            format!("`{line}` is not in the evidence"),
        )?;
    }
    ensure(
        r.verdict == Verdict::Fail,
        format!("verdict {:?}, expected a failure", r.verdict),
    )?;
    ensure(r.checks.is_empty(), "checks ran after the boot died")?;
    ensure(
        r.total_secs < secs,
        format!("took {:.0} s, more than {secs} s", r.total_secs),
    )
}

/// A QEMU that exits during start-up (here a wrapper on PATH that adds `-m 1x`)
/// teaches nothing about the ISO: "could not test", exit status 3, with QEMU's
/// exit status and its stderr in the message. Nothing boots.
fn qemu_refuses_its_arguments() -> Test {
    Test::test("faults::qemu_refuses_its_arguments", || {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let real = which("qemu-system-x86_64").ok_or("no qemu-system-x86_64 on PATH")?;
        let wrapper = dir.path().join("bin/qemu-system-x86_64");
        std::fs::create_dir_all(wrapper.parent().unwrap()).map_err(|e| e.to_string())?;
        // `--version` is left alone: it names the QEMU in the report.
        let script = format!("#!/bin/sh\ncase \"$1\" in --version) exec '{0}' \"$@\" ;; esac\nexec '{0}' \"$@\" -m 1x\n", real.display());
        std::fs::write(&wrapper, script).map_err(|e| e.to_string())?;
        std::fs::set_permissions(
            &wrapper,
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .map_err(|e| e.to_string())?;
        let path =
            std::env::join_paths(std::iter::once(wrapper.parent().unwrap().to_owned()).chain(
                std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
            ))
            .map_err(|e| e.to_string())?;
        let scenario = support::plain_scenario(dir.path(), "firmware: bios\n");
        let image = support::fixture("rescue")?;
        let mut command = support::isotest_command(); // builds isotest first, outside the time taken
        let started = std::time::Instant::now();
        let out = command
            .env("PATH", path)
            .env_remove("ISOTEST_QEMU_X86_64")
            .args(["run", &scenario, "--accel", "tcg", "--image"])
            .arg(&image)
            .arg("--artifacts")
            .arg(dir.path().join("artifacts"))
            .output()
            .map_err(|e| e.to_string())?;
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let result = (|| {
            ensure(
                out.status.code() == Some(3),
                format!(
                    "exit status {:?}, expected 3 (could not test)",
                    out.status.code()
                ),
            )?;
            ensure(
                said.contains("COULD NOT TEST"),
                "the trial's line does not say COULD NOT TEST",
            )?;
            ensure(
                said.contains("exit status: 1"),
                "QEMU's exit status is not in the message",
            )?;
            ensure(
                said.contains("-m 1x: Parameter 'size' expects a non-negative number"),
                "QEMU's stderr is not in the message",
            )?;
            ensure(
                started.elapsed() < Duration::from_secs(30),
                format!("took {:?}", started.elapsed()),
            )
        })();
        result.map_err(|e| Failed::from(format!("{e}\n--- isotest said:\n{said}")))
    })
}

/// A boot that never says anything on the serial console (`no-serial`: isolinux
/// on VGA only, no console argument anywhere) times out in the phase it
/// reached, and leaves what the display showed as a real PNG that is not one
/// flat colour, named in the report, beside the QEMU command line and the QMP
/// log that asked for it.
fn screendump_without_serial() -> Test {
    Test::test("screens::no_serial", || {
        // Short: the menu never comes on serial, so the trial waits out its whole timeout.
        const TIMEOUT: u64 = 60;
        let trial = rescue_trial(
            Arch::X86_64,
            Firmware::Bios,
            Some(Duration::from_secs(TIMEOUT)),
        );
        let r = run(&trial, support::fixture("no-serial")?, "screens-no-serial");
        let result = (|| {
            let e = r.error.as_ref().ok_or("no error in the report")?;
            ensure(
                e.message.contains("timed out") && e.message.contains("the isolinux boot menu"),
                format!("not the menu's timeout: {}", e.message),
            )?;
            ensure(
                e.phase.as_deref() == Some("power-on (no boot menu yet)"),
                format!("wrong phase: {:?}", e.phase),
            )?;
            ensure(
                r.total_secs < (TIMEOUT + 15) as f64,
                format!("took {:.0} s, over the {TIMEOUT} s timeout", r.total_secs),
            )?;
            ensure(
                r.screendump.as_deref() == Some(std::path::Path::new("screen.png")),
                format!("the report names no screendump: {:?}", r.screendump),
            )?;
            let png = r.artifacts.join("screen.png");
            ensure(
                std::fs::read(&png)
                    .map_err(|e| e.to_string())?
                    .starts_with(b"\x89PNG\r\n\x1a\n"),
                "screen.png is not a PNG file",
            )?;
            let screen = isotest::qemu::read_screen(&png).map_err(|e| e.to_string())?;
            ensure(
                screen.width() >= 320 && screen.height() >= 200,
                format!("a {}x{} screen", screen.width(), screen.height()),
            )?;
            ensure(
                !isotest::qemu::is_blank(&screen),
                "the screendump is one flat colour",
            )?;
            let qmp_log = std::fs::read_to_string(r.artifacts.join("qmp.log"))
                .map_err(|e| format!("qmp.log: {e}"))?;
            let lines: Vec<&str> = qmp_log.lines().collect();
            let asked = lines
                .iter()
                .rposition(|l| l.contains(" > ") && l.contains(r#""execute":"screendump""#));
            let answer = asked.and_then(|i| {
                lines[i + 1..]
                    .iter()
                    .find(|l| l.contains(" < ") && !l.contains(r#""event""#))
            });
            ensure(
                answer.is_some_and(|l| l.contains(r#"{"return":{}}"#)),
                format!("no answered screendump in qmp.log:\n{qmp_log}"),
            )?;
            let cmdline = std::fs::read_to_string(r.artifacts.join("qemu.cmdline"))
                .map_err(|e| format!("qemu.cmdline: {e}"))?;
            ensure(
                cmdline.starts_with("# QEMU emulator version ")
                    && cmdline.contains(" -machine q35 -accel "),
                format!("qemu.cmdline:\n{cmdline}"),
            )
        })();
        result.map_err(|e| Failed::from(format!("{e}\n--- the report:\n{}", render_failure(&r))))
    })
}

/// Noisy consoles (fixtures/build-iso, write_noise): the whole rescue scenario,
/// steps included, passes with every command's output and status exact (the
/// steps match them anchored), while the noise is really there during the checks.
fn noise_tests() -> Vec<Test> {
    vec![
        // The kernel's lines land in the middle of the commands' output.
        noise("kmsg", "noise-kmsg", |raw| {
            let record = regex::bytes::Regex::new(r"\[ *[0-9]+\.[0-9]{6}\] kmsg-flood: line")
                .expect("regex");
            let begin =
                regex::bytes::Regex::new(r"(ISOTEST_[0-9a-f]{16})_B([0-9]+)\r\n").expect("regex");
            let (mut inside, mut hit) = (0, 0);
            for m in begin.captures_iter(raw) {
                let end = format!(
                    "{}_E{}:",
                    String::from_utf8_lossy(&m[1]),
                    String::from_utf8_lossy(&m[2])
                );
                let after = &raw[m.get(0).map_or(0, |g| g.end())..];
                let Some(len) = after.windows(end.len()).position(|w| w == end.as_bytes()) else {
                    continue;
                };
                let n = record.find_iter(&after[..len]).count();
                (inside, hit) = (inside + n, hit + usize::from(n > 0));
            }
            eprintln!("noise::kmsg: {inside} kernel lines inside the output of {hit} commands");
            ensure(
                hit >= 10,
                format!("kernel lines inside the output of only {hit} commands"),
            )
        }),
        // NixOS's prompt in bold red with the xterm title, and bracketed paste.
        noise("prompt", "noise-prompt", |raw| {
            ensure(
                contains(
                    raw,
                    b"\x1b[1;31m[\x1b]0;root@rescue: ~\x07root@rescue:~]#\x1b[0m ",
                ),
                "no NixOS prompt",
            )?;
            ensure(
                contains(raw, b"\x1b[?2004h") && contains(raw, b"\x1b[?2004l"),
                "no bracketed paste",
            )
        }),
        // Commands typed ahead while the shell sleeps before its prompt: the
        // tty echoes them first, readline again after the prompt.
        noise("slow", "noise-slow", |raw| {
            let text = String::from_utf8_lossy(raw);
            let echoes = text
                .matches("exit_with() { return $1; }; exit_with 3")
                .count();
            ensure(
                echoes >= 2,
                format!("the last step was echoed {echoes} times, not late"),
            )
        }),
    ]
}

/// The rescue scenario on `variant`; `noisy` gets the raw console from the
/// first command on and says whether the noise was there.
fn noise(name: &str, variant: &'static str, noisy: fn(&[u8]) -> Result<(), String>) -> Test {
    Test::test(format!("noise::{name}"), move || {
        let image = support::fixture(variant)?;
        let report = run(
            &scenario_trial("rescue.yaml"),
            image,
            &format!("noise-{variant}"),
        );
        let result = ensure(report.passed(), "the trial did not pass").and_then(|()| {
            let raw = std::fs::read(report.artifacts.join("console.raw"))
                .map_err(|e| format!("console.raw: {e}"))?;
            let first = raw
                .windows(8)
                .position(|w| w == b"ISOTEST_")
                .ok_or("no command on the console")?;
            noisy(&raw[first..])?;
            secret_kept(&report).map_err(|e| format!("{e:?}"))
        });
        result
            .map_err(|e| Failed::from(format!("{e}\n--- the report:\n{}", render_failure(&report))))
    })
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A guest that reboots under the checks (here a last step forces it, as a
/// crashing service with `FailureAction=reboot` would): QEMU runs with
/// `-no-reboot`, so it exits, and the trial says why from QEMU's SHUTDOWN event,
/// once, after the checks that ran before it.
fn reboot_during_the_checks() -> Test {
    Test::test("faults::reboot_during_the_checks", || {
        let mut trial = rescue_trial(Arch::X86_64, Firmware::Bios, None);
        let mut scenario = (*trial.scenario).clone();
        scenario.steps.push(isotest::scenario::Step::Run {
            command: "systemctl reboot --force --force".into(),
            expect: None,
            exit: 0,
            timeout: Duration::from_secs(30),
        });
        trial.scenario = Arc::new(scenario);
        let r = run(
            &trial,
            support::fixture("rescue")?,
            "faults-reboot-during-the-checks",
        );
        let result = (|| {
            let e = r.error.as_ref().ok_or("no error in the report")?;
            let expected = "QEMU exited during the checks: the guest rebooted (QEMU's SHUTDOWN event says guest-reset";
            ensure(
                e.message.starts_with(expected),
                format!("wrong message: {}", e.message),
            )?;
            ensure(
                r.verdict == Verdict::Fail,
                format!("a guest's reboot is the ISO's failure, not {:?}", r.verdict),
            )?;
            // Every built-in check ran and passed before the step rebooted the guest.
            let (step, checks) = r.checks.split_last().ok_or("no checks")?;
            ensure(
                checks.len() >= 7 && checks.iter().all(|c| c.outcome == Outcome::Pass),
                "a check before the reboot did not pass",
            )?;
            ensure(
                step.outcome != Outcome::Pass && step.message.contains("the console closed"),
                format!("the rebooting step: {:?} {}", step.outcome, step.message),
            )?;
            let qmp_log = std::fs::read_to_string(r.artifacts.join("qmp.log"))
                .map_err(|e| format!("qmp.log: {e}"))?;
            ensure(
                qmp_log.contains(r#""reason":"guest-reset""#),
                format!("no SHUTDOWN event in qmp.log:\n{qmp_log}"),
            )
        })();
        result.map_err(|e| Failed::from(format!("{e}\n--- the report:\n{}", render_failure(&r))))
    })
}

/// Four real trials at once, as `isotest run --jobs 4 --cpus 1` runs them
/// (run_trials): the minimal fixture's scenario with four names for its ISO
/// (`images:`), so four x86_64 BIOS trials with their own artifacts boot side
/// by side. Each passes, and no QEMU outlives the run. One vCPU each: four
/// guests on a two-core host are already four busy threads.
///
/// Ignored, with the reason, on a host of fewer than 8 cores unless
/// ISOTEST_PARALLEL is set, and then to be run alone
/// (`ISOTEST_PARALLEL=1 cargo test --test boot -- --test-threads 1 parallel::`):
/// on a quiet 2-core host the four pass in 78 s, but beside the suite's other
/// guests (load 15 to 25) they did not reach a shell within the scenario's
/// 300 s, and one died of the kernel's "IO-APIC + timer doesn't work" panic, a
/// vCPU starved during its timer check (measured twice, --cpus 2 and --cpus 1).
fn four_trials_at_once() -> Test {
    Test::ignorable_test("parallel::four_trials_with_jobs_4", || {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        if cores < 8 && std::env::var_os("ISOTEST_PARALLEL").is_none() {
            return Ok(Completion::ignored_with(format!(
                "four TCG guests at once on {cores} cores outrun the scenario's 300 s timeout; ISOTEST_PARALLEL=1 runs it"
            )));
        }
        let iso = support::fixture("minimal")?;
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let names = ["one", "two", "three", "four"];
        for name in names {
            std::os::unix::fs::symlink(&iso, dir.path().join(format!("{name}.iso")))
                .map_err(|e| e.to_string())?;
        }
        let yaml = std::fs::read_to_string(support::repo().join("scenarios/minimal.yaml"))
            .map_err(|e| e.to_string())?;
        let flake = format!("flake: {}\n", support::fixture_flake());
        let yaml = yaml.replace("flake: path:../fixtures/flake\n", &flake)
            + "firmware: bios\nimages: [one.iso, two.iso, three.iso, four.iso]\n";
        let path = dir.path().join("minimal.yaml");
        std::fs::write(&path, yaml).map_err(|e| e.to_string())?;
        let scenario = Scenario::load(&path).map_err(|e| e.to_string())?;
        let trials = plan::trials(&[Arc::new(scenario)]);
        ensure(trials.len() == 4, format!("{} trials, not 4", trials.len()))?;
        let started = std::time::Instant::now();
        let options = RunOptions {
            cpus: 1,
            ..options("parallel-jobs-4")
        };
        let reports = isotest::run::run_trials(&trials, &options, 4, &|r: &TrialReport| {
            eprintln!("{}", isotest::report::render_line(r));
        });
        eprintln!(
            "4 trials with --jobs 4 --cpus 1: {:.0} s",
            started.elapsed().as_secs_f64()
        );
        for r in &reports {
            let pid = support::read_pid(&r.artifacts.join("qemu.pid"))
                .ok_or(format!("{}: no qemu.pid", r.name))?;
            ensure(
                !support::process_alive(pid),
                format!("{}: QEMU {pid} outlived the run", r.name),
            )?;
        }
        let failed: Vec<String> = reports
            .iter()
            .filter(|r| r.verdict != Verdict::Pass)
            .map(render_failure)
            .collect();
        ensure(failed.is_empty(), failed.join("\n"))?;
        Ok(Completion::Completed)
    })
}

/// A UEFI machine's state saved at its shell and restored into new QEMUs:
/// each restored machine is the saved one (a token written to /run before
/// the save is there, the kernel's boot id is the same: no second boot),
/// answers at its shell over its own new serial console, and is its own (a
/// file one makes is not in the other, both running at once). Its UEFI
/// variable store starts as the saved one (a variable the guest set before
/// the save is in its own copy once it runs, not before: its copy started as
/// the firmware's template) and is never another's (a variable one clone sets
/// reaches its own copy only). A machine that differs from the saved one
/// (another memory size) is refused the state, saying how it differs, and
/// does not run.
fn restored_machines() -> Test {
    Test::ignorable_test("shared::restore::x86_64::uefi", || {
        use isotest::console::{boot_to_shell, SerialConsole, Shell};
        use isotest::qemu::{Launch, Launcher, QemuError};
        let qemu = isotest::qemu::find_qemu(Arch::X86_64).map_err(|e| e.to_string())?;
        let version = isotest::qemu::version(&qemu);
        if !isotest::qemu::can_save_state(version.as_deref()) {
            return Ok(Completion::ignored_with(format!(
                "{} cannot save and restore a machine's state as isotest does (QEMU 9.1 or later can)",
                version.as_deref().unwrap_or("this QEMU (no --version)")
            )));
        }
        const WITHIN: Duration = Duration::from_secs(120);
        let trial = rescue_trial(Arch::X86_64, Firmware::Uefi, None);
        let image = support::fixture("rescue")?;
        let options = RunOptions {
            image: Some(image.clone()),
            // Saved and restored under one accelerator, whatever this host has.
            accel: Some(isotest::platform::AccelChoice::Tcg),
            ..options("shared-restore")
        };
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let state = dir.path().join("state");
        let shell_error = |e: isotest::console::ShellError| isotest::error::chain(&e);
        let token = format!("saved-{}", std::process::id());

        // The machine that boots, and is saved at its shell.
        let mut saved =
            isotest::run::start_for_console(&trial, &options).map_err(|e| e.message.to_string())?;
        let serial = saved.machine.take_serial().ok_or("no serial stream")?;
        std::fs::create_dir_all(dir.path().join("saved")).map_err(|e| e.to_string())?;
        let mut console =
            SerialConsole::attach(serial, &dir.path().join("saved")).map_err(|e| e.to_string())?;
        boot_to_shell(
            &mut console,
            &saved.choice,
            None,
            Default::default(),
            saved.scale,
            std::time::Instant::now() + trial.scenario.timeout,
            &|_| {},
        )
        .map_err(|e| isotest::error::chain(&e))?;
        let mut shell = Shell::new(&mut console, saved.scale);
        let out = shell
            .run(&format!("echo {token} > /run/token"), WITHIN)
            .map_err(shell_error)?;
        ensure(out.status == 0, "the token could not be written")?;
        set_efi_variable(&mut shell, "IsotestSaved", WITHIN)?;
        let saved_vars = saved.private.path().join("uefi-vars.fd");
        ensure(
            holds_efi_variable(&saved_vars, "IsotestSaved")?,
            "the variable the guest set is not in its machine's variable store",
        )?;
        let saved_boot_id = shell
            .run("cat /proc/sys/kernel/random/boot_id", WITHIN)
            .map_err(shell_error)?
            .output
            .trim()
            .to_owned();
        shell.remove_files();
        let saving = std::time::Instant::now();
        let state = saved
            .machine
            .save_state(saved.state_key.clone(), &state, WITHIN)
            .map_err(|e| isotest::error::chain(&e))?;
        eprintln!("saved in {:.1} s", saving.elapsed().as_secs_f64());
        let scale = saved.scale;
        drop(saved);

        // A machine like the saved one, waiting for its state.
        let restored = |name: &str, memory_mib: u64| -> Result<_, String> {
            let artifacts = dir.path().join(name);
            std::fs::create_dir_all(&artifacts).map_err(|e| e.to_string())?;
            let launcher = Launcher::prepare(Arch::X86_64, Firmware::Uefi, None)
                .map_err(|e| isotest::error::chain(&e))?;
            let launched = launcher
                .start(&Launch {
                    iso: &image,
                    accel: isotest::platform::AccelChoice::Tcg,
                    memory_mib,
                    cpus: options.cpus,
                    vga_to_serial: false,
                    artifacts: &artifacts,
                    guest_ssh_port: 22,
                    incoming: true,
                    cloned: false,
                })
                .map_err(|e| isotest::error::chain(&e))?;
            let mut running = launched.running.map_err(|e| isotest::error::chain(&e))?;
            let serial = running.machine.take_serial().ok_or("no serial stream")?;
            let console = SerialConsole::attach(serial, &artifacts).map_err(|e| e.to_string())?;
            Ok((running, console))
        };

        let memory = trial.scenario.memory_mib;
        let mut clones = Vec::new();
        for name in ["a", "b"] {
            let restoring = std::time::Instant::now();
            let (mut running, mut console) = restored(name, memory)?;
            let vars = running.private.path().join("uefi-vars.fd");
            ensure(
                vars != saved_vars && !holds_efi_variable(&vars, "IsotestSaved")?,
                format!("{name}: its variable store is not a copy of the template"),
            )?;
            running
                .machine
                .restore_state(&running.state_key, &state, WITHIN)
                .map_err(|e| isotest::error::chain(&e))?;
            running
                .machine
                .qmp()
                .resume()
                .map_err(|e| isotest::error::chain(&e))?;
            let mut shell = Shell::new(&mut console, scale);
            let out = shell.run("cat /run/token", WITHIN).map_err(shell_error)?;
            eprintln!(
                "{name}: restored to an answering shell in {:.1} s",
                restoring.elapsed().as_secs_f64()
            );
            ensure(
                out.status == 0 && out.output.trim() == token,
                format!("{name}: /run/token says {:?}, expected {token}", out.output),
            )?;
            let boot_id = shell
                .run("cat /proc/sys/kernel/random/boot_id", WITHIN)
                .map_err(shell_error)?;
            ensure(
                boot_id.output.trim() == saved_boot_id,
                format!(
                    "{name}: boot id {} is not the saved machine's {saved_boot_id}",
                    boot_id.output.trim()
                ),
            )?;
            drop(shell);
            // QEMU writes the saved flash into the copy when the guest runs.
            ensure(
                holds_efi_variable(&vars, "IsotestSaved")?,
                format!("{name}: its variable store is not the saved one"),
            )?;
            clones.push((running, console, vars));
        }
        let [(_a, a_console, a_vars), (_b, b_console, b_vars)] = &mut clones[..] else {
            unreachable!("two clones")
        };
        let mut a = Shell::new(a_console, scale);
        let out = a.run("touch /run/only-in-a", WITHIN).map_err(shell_error)?;
        ensure(out.status == 0, "a: touch failed")?;
        set_efi_variable(&mut a, "IsotestOnlyInA", WITHIN).map_err(|e| format!("a: {e}"))?;
        ensure(
            holds_efi_variable(a_vars, "IsotestOnlyInA")?,
            "a: the variable it set is not in its variable store",
        )?;
        ensure(
            !holds_efi_variable(b_vars, "IsotestOnlyInA")?,
            "b's variable store has the variable a set",
        )?;
        let mut b = Shell::new(b_console, scale);
        let out = b
            .run("test -e /run/only-in-a", WITHIN)
            .map_err(shell_error)?;
        ensure(
            out.status == 1,
            format!("b sees a's file (test -e: exit status {})", out.status),
        )?;
        drop(clones);

        // QEMU itself restores this state into twice the memory and says it
        // completed: the key is what refuses it.
        let (mut other, _console) = restored("other-memory", memory * 2)?;
        match other
            .machine
            .restore_state(&other.state_key, &state, WITHIN)
        {
            Err(QemuError::OtherMachine { differs }) => {
                let run_state = other.machine.qmp().run_state().map_err(|e| e.to_string())?;
                ensure(
                    differs.contains(&format!("{}M", memory * 2)),
                    format!("the difference said is not the memory: {differs}"),
                )
                .and_then(|()| {
                    ensure(
                        run_state == "inmigrate",
                        format!("the refused machine is `{run_state}`, not waiting"),
                    )
                })
            }
            Err(e) => Err(format!(
                "another memory size: {} (expected the state to be refused)",
                isotest::error::chain(&e)
            )),
            Ok(()) => Err("another memory size took the state".into()),
        }
        .map(|()| Completion::Completed)
        .map_err(Failed::from)
    })
}

/// The GUID of the variables the restore test sets (its own vendor GUID).
const ISOTEST_EFI_GUID: &str = "4a0b3f8e-6d1c-4e2a-9b57-1f3c2d4e5a60";

/// Sets the non-volatile UEFI variable `name` from a root shell, through
/// efivarfs (mounted first where the system has not): 4 bytes of attributes
/// (non-volatile, boot and runtime access), then the value.
fn set_efi_variable(
    shell: &mut isotest::console::Shell<'_>,
    name: &str,
    within: Duration,
) -> Result<(), String> {
    let dir = "/sys/firmware/efi/efivars";
    let command = format!(
        "grep -q ' {dir} ' /proc/mounts || mount -t efivarfs efivarfs {dir}; \
         printf '\\007\\000\\000\\000isotest' > {dir}/{name}-{ISOTEST_EFI_GUID}"
    );
    let out = shell
        .run(&command, within)
        .map_err(|e| isotest::error::chain(&e))?;
    ensure(
        out.status == 0,
        format!("setting the UEFI variable {name}: {}", out.output),
    )
}

/// Whether the variable store `vars` (a flash image on the host) holds a
/// variable named `name`: the firmware stores names as UTF-16LE.
fn holds_efi_variable(vars: &std::path::Path, name: &str) -> Result<bool, String> {
    let store = std::fs::read(vars).map_err(|e| format!("reading {}: {e}", vars.display()))?;
    let needle: Vec<u8> = name.encode_utf16().flat_map(u16::to_le_bytes).collect();
    Ok(store.windows(needle.len()).any(|w| w == needle.as_slice()))
}

/// Three scenarios on the rescue ISO (under three names: itself, a link, a
/// copy) share one boot, one trial at a time: the
/// first boots and saves its machine at the shell, the other two start from
/// that state. The second breaks its guest (stops sshd, deletes the user
/// nixos) and takes a few seconds doing it; the third, restored after it,
/// still finds sshd and nixos as the boot left them (its SSH login and a
/// step of its own ask its machine), its clock set from the
/// host (not the saved instant's), and its kernel's random generator
/// reseeded. Every trial's line says it shared the boot.
fn shared_boot() -> Test {
    Test::ignorable_test("shared::verdicts::x86_64::bios", || {
        if !isotest::qemu::qemu_can_save(Arch::X86_64) {
            return Ok(Completion::ignored_with(
                "this QEMU cannot save and restore a machine's state (QEMU 9.1 or later can)",
            ));
        }
        let image = support::fixture("rescue")?;
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        // One ISO under three names (itself, a link, a copy): one image by content.
        let (link, copy) = (dir.path().join("link.iso"), dir.path().join("copy.iso"));
        std::os::unix::fs::symlink(&image, &link).map_err(|e| e.to_string())?;
        std::fs::copy(&image, &copy).map_err(|e| e.to_string())?;
        let head_of = |iso: &std::path::Path| {
            format!("image: {}\narch: x86_64\nfirmware: bios\n", iso.display())
        };
        let head = head_of(&image);
        let whole = "expect:\n  hostname: rescue\n  autologin: root\n  sshd:\n    login: [root]\n  users:\n    nixos: {}\n";
        let files = [
            ("first.yaml", format!("{head}{whole}")),
            // Time passes in the guest on purpose: the third trial is
            // restored well after the save, so that a clock left at the
            // saved instant shows.
            ("breaks.yaml", format!("{}expect:\n  hostname: rescue\nsteps:\n  - run: systemctl stop ssh.service ssh.socket; userdel -f nixos; sleep 5; id nixos\n    exit: 1\n", head_of(&link))),
            // Its checks of users and sshd take the answers the boot read
            // before its save; its own machine is asked again by a step.
            ("after.yaml", format!("{}{whole}steps:\n  - run: date -u +%s\n    expect: '^[0-9]+$'\n  - run: cat /proc/sys/kernel/random/boot_id\n    expect: '^[0-9a-f-]+$'\n  - run: id -un nixos && systemctl is-active ssh.service\n    expect: '^nixos\\nactive$'\n", head_of(&copy))),
        ];
        let reports = run_scenarios(dir.path(), files, "shared-verdicts")?;
        let ended = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|e| e.to_string())?
            .as_secs_f64();
        let [first, breaks, after] = &reports[..] else {
            return Err("three reports expected".into());
        };
        for r in &reports {
            let line = isotest::report::render_line(r);
            ensure(r.passed(), render_failure(r))?;
            ensure(
                line.contains("(shared boot"),
                format!("the line does not say the boot was shared: {line}"),
            )?;
        }
        match first.shared.as_ref().map(|s| &s.role) {
            Some(SharedRole::Saved { clones: 2, .. }) => {}
            other => {
                return Err(
                    format!("the first trial did not save its machine for two: {other:?}").into(),
                )
            }
        }
        for r in [breaks, after] {
            let shared = r.shared.as_ref().ok_or("no shared boot in the report")?;
            ensure(
                shared.booted_by == first.name,
                format!("restored from {}", shared.booted_by),
            )?;
            let SharedRole::Restored {
                clock, randomness, ..
            } = &shared.role
            else {
                return Err(format!("{} was not restored: {:?}", r.name, shared.role).into());
            };
            ensure(
                clock.starts_with("set from the host"),
                format!("clock: {clock}"),
            )?;
            reseeded(randomness)?;
            ensure(
                r.phases == first.phases,
                "the phases are not the shared boot's",
            )?;
            ensure(
                r.artifacts.join("shared-boot.log").is_file(),
                "no copy of the shared boot's transcript",
            )?;
        }
        // The third trial's guest clock, read by its step, is the host's:
        // it ran within the trial's time before `ended`, give or take 2 s.
        let step = after
            .checks
            .iter()
            .find(|c| c.name.to_string().contains("date -u"))
            .ok_or("no date step in the report")?;
        let guest: f64 = step
            .actual
            .split('"')
            .nth(1)
            .and_then(|out| out.parse().ok())
            .ok_or(format!("no time in {:?}", step.actual))?;
        ensure(
            guest >= ended - after.total_secs - 2.0 && guest <= ended + 2.0,
            format!(
                "the restored guest's clock says {guest}, the host's was {ended:.0} at the end and the trial took {:.1} s",
                after.total_secs
            ),
        )?;
        Ok(Completion::Completed)
    })
}

/// Scenarios of the unmodified rescue fixture, each expecting one thing it
/// does not have, and the check's failure with its message. The failures the
/// broken fixture variants (`negative::`) do not show: those a wrong
/// expectation shows on a sound disk.
const WRONG_EXPECTATIONS: [(&str, &str, &str, &str); 11] = [
    (
        "sshd-not-expected",
        "expect:\n  sshd:\n    running: false\n",
        "sshd",
        "sshd.service is active, but sshd is expected not to run; something listens on port(s) 22",
    ),
    (
        "sshd-port",
        "expect:\n  sshd:\n    ports: [22, 2222]\n",
        "sshd",
        "nothing listens on port(s) 2222",
    ),
    (
        "sshd-password",
        "expect:\n  sshd:\n    password_authentication: false\n",
        "sshd",
        "PasswordAuthentication is `yes`, expected `no`",
    ),
    (
        "user-home",
        "expect:\n  users:\n    nixos: { home: /home/elsewhere }\n",
        "user nixos",
        "home of `nixos` is `/home/nixos`, expected `/home/elsewhere`",
    ),
    (
        "user-groups",
        "expect:\n  users:\n    nixos: { groups: [wheel, video] }\n",
        "user nixos",
        "`nixos` is not in group(s) video",
    ),
    (
        "user-sudo",
        "expect:\n  users:\n    nobody: { sudo: nopasswd }\n",
        "user nobody",
        "`sudo -n true` as `nobody` failed: ",
    ),
    (
        "autologin-user",
        "expect:\n  autologin: nixos\n",
        "autologin",
        "autologin user mismatch: expected `nixos`, getty logged in `root`",
    ),
    (
        "autologin-prompt",
        "expect:\n  autologin: false\n",
        "autologin",
        "expected a login prompt on the serial console, but it logged in `root` automatically",
    ),
    (
        "hm-file",
        "expect:\n  users:\n    nixos:\n      home_manager: { files: [.config/isotest-absent] }\n",
        "home-manager nixos",
        "~nixos/.config/isotest-absent does not exist",
    ),
    (
        "console-expect",
        "steps:\n  - expect: ISOTEST_NEVER\n    timeout: 2s\n",
        "step 1: expect /ISOTEST_NEVER/",
        "timed out after",
    ),
    // Not an expectation: a restored machine whose kernel dies is watched
    // as a booted one is.
    (
        "kernel-panic",
        "steps:\n  - run: echo c > /proc/sysrq-trigger\n",
        "step 1: run `echo c > /proc/sysrq-trigger`",
        "`echo c > /proc/sysrq-trigger`: kernel panic",
    ),
];

/// Every check fails with its own message where the disk is sound but the
/// expectation wrong (`WRONG_EXPECTATIONS`), and only that check; and a
/// scenario that drives the console with `send:` and `expect:` steps, then
/// runs a command, passes. All on one boot of the rescue fixture (the first
/// scenario boots, the others are restored from it), so a step that crashes
/// its kernel shows that a restored machine's console is watched too.
fn wrong_expectations() -> Test {
    Test::ignorable_test("negative::expectations::x86_64::bios", || {
        if !isotest::qemu::qemu_can_save(Arch::X86_64) {
            return Ok(Completion::ignored_with(
                "this QEMU cannot save and restore a machine's state (QEMU 9.1 or later can): each of the 12 scenarios would boot",
            ));
        }
        let image = support::fixture("rescue")?;
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let head = format!("image: {}\narch: x86_64\nfirmware: bios\n", image.display());
        let driven = "steps:\n  - send: 'echo ISOTEST_SENT_$((6*7))\\r'\n  - expect: ISOTEST_SENT_42\n  - run: echo after\n    expect: '^after$'\n";
        let files = WRONG_EXPECTATIONS
            .iter()
            .map(|(name, yaml, _, _)| (*name, *yaml))
            .chain([("console-driven", driven)])
            .map(|(name, yaml)| (format!("{name}.yaml"), format!("{head}{yaml}")));
        let reports = run_scenarios(dir.path(), files, "negative-expectations")?;
        let (driven, wrong) = reports.split_last().ok_or("no reports")?;
        for (r, (name, _, failing, message)) in wrong.iter().zip(&WRONG_EXPECTATIONS) {
            only(r, failing, message, &[])
                .map_err(|e| format!("{name}: {e}\n{}", render_failure(r)))?;
        }
        // sudo's own refusal, not su's failing to run it.
        let sudo = wrong
            .iter()
            .find(|r| r.scenario == "user-sudo")
            .ok_or("no user-sudo report")?;
        let refused = check(sudo, "user nobody")?;
        ensure(
            refused.message.contains("sudo: a password is required"),
            format!("not sudo's refusal: {}", refused.message),
        )?;
        ensure(driven.passed(), render_failure(driven))?;
        // The first boots; every other one starts from its machine.
        for r in &reports[1..] {
            ensure(
                matches!(
                    r.shared.as_ref().map(|s| &s.role),
                    Some(SharedRole::Restored { .. })
                ),
                format!("{} was not restored: {:?}", r.name, r.shared),
            )?;
        }
        Ok(Completion::Completed)
    })
}

/// A scenario without steps gets its verdict once its checks are done, not
/// when start-up ends: on a disk whose start-up runs for minutes after the
/// shell (`slow-start`), a hostname-only trial passes without waiting, its
/// report and line saying start-up was still running.
fn startup_not_waited_for() -> Test {
    Test::test("startup::not_waited_for::x86_64::bios", || {
        let image = support::fixture("slow-start")?;
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let path = dir.path().join("hostname.yaml");
        let yaml = format!(
            "image: {}\narch: x86_64\nfirmware: bios\nexpect:\n  hostname: rescue\n",
            image.display()
        );
        std::fs::write(&path, yaml).map_err(|e| e.to_string())?;
        let trial = select::load(&[path], &[])
            .map_err(|e| isotest::error::chain(&e))?
            .remove(0);
        let r = run_trial(&trial, &options("startup-not-waited-for"));
        let line = isotest::report::render_line(&r);
        eprintln!("{line}");
        ensure(r.passed(), render_failure(&r))?;
        ensure(
            r.startup_unfinished,
            "the report does not say start-up was running",
        )?;
        ensure(
            line.ends_with("(start-up still running)"),
            format!("the line does not say start-up was running: {line}"),
        )?;
        let commands =
            std::fs::read_to_string(r.artifacts.join("commands.log")).map_err(|e| e.to_string())?;
        ensure(
            !commands.contains("is-system-running --wait"),
            "the trial waited for the end of start-up",
        )?;
        Ok(())
    })
}
