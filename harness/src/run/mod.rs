//! One trial end to end: resolve the image, choose the accelerator, start QEMU,
//! boot to a shell, run the checks, and report. Also `run_trials`, which runs
//! many with bounded parallelism.
//!
//! Every error is of one of two kinds (`ErrorKind`): a failure of the ISO (the
//! boot died, the guest misbehaved), or "could not test" (this host lacks QEMU,
//! firmware, memory, disk space or a free port), from which nothing is learned.

use crate::checks::{self, CheckId, CheckResult};
use crate::console::menu::BootChoice;
use crate::console::{boot_to_shell, BootError, Phase, SerialConsole, Shell};
use crate::flake::{self, FlakeError};
use crate::plan::Trial;
use crate::platform::{AccelChoice, Arch, Firmware};
use crate::qemu::{self, Machine, MachineSpec, PrivateDir, ProbeTarget, QemuError};
use crate::report::{ErrorKind, QemuRun, TrialError, TrialReport, Verdict};
use crate::scenario::{Expect, Origins};
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Debug, Clone)]
pub struct RunOptions {
    /// `--accel`; `None`: the scenario's `accel:`.
    pub accel: Option<AccelChoice>,
    /// Trial artifacts go to `<artifacts>/<trial>/`.
    pub artifacts: PathBuf,
    /// Test this ISO instead of the scenario's.
    pub image: Option<PathBuf>,
    /// The flake of every `iso:` host, instead of the scenarios' own.
    pub flake: Option<String>,
    /// Virtual CPUs per guest.
    pub cpus: u32,
    /// Leave a failed trial's QEMU running, its console served on a socket
    /// (`Progress::kept`), until it exits or the run is interrupted.
    pub keep_on_failure: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            accel: None,
            artifacts: PathBuf::from("target/isotest"),
            image: None,
            flake: None,
            cpus: 2,
            keep_on_failure: false,
        }
    }
}

/// Virtual CPUs per guest when `--cpus` is not given: 2, unless `jobs` guests
/// at once (no more than the trials that boot) would then ask for more
/// virtual CPUs than the host has cores. A
/// TCG guest whose virtual CPUs wait for a host core sees its timers fire late:
/// measured here with 2 cores and 3 or 4 two-CPU guests at once, boots died of
/// `IO-APIC + timer doesn't work!` panics and of RCU stalls ending in a reset,
/// failures of the host's making that a regression harness must not report.
pub fn guest_cpus(cores: usize, jobs: usize) -> u32 {
    (cores / jobs.max(1)).clamp(1, 2) as u32
}

/// Trials at once when `--jobs` is not given: one per host core, each guest
/// with one virtual CPU (`guest_cpus`), as many as three quarters of the
/// host's memory holds (`guest_mib`: the largest trial's). One-CPU guests
/// side by side use the cores better than fewer guests with two: 4 rescue
/// trials on 2 cores under TCG took 79.5 s with 2 at a time (1 CPU each),
/// 101 s one at a time (2 CPUs), 89.5 s 4 at a time (bench/RESULTS.md).
pub fn default_jobs(cores: usize, host_mib: Option<u64>, guest_mib: u64) -> usize {
    let fit = host_mib.map_or(usize::MAX, |host| {
        (host / 4 * 3 / guest_mib.max(1)) as usize
    });
    cores.min(fit).max(1)
}

/// `--accel` if given, else the scenario's `accel:` (auto by default).
fn accel_choice(options: &RunOptions, scenario: &crate::scenario::Scenario) -> AccelChoice {
    options.accel.unwrap_or(scenario.accel)
}

/// The serial console argument of a Linux kernel on this architecture.
fn console_arg(arch: Arch) -> &'static str {
    match arch {
        Arch::X86_64 => "console=ttyS0,115200n8",
        Arch::Aarch64 => "console=ttyAMA0,115200n8",
    }
}

/// What a trial tests: the ISO, and the expectations with where each came from.
struct Resolved {
    image: PathBuf,
    expect: Expect,
    origins: Origins,
}

/// The expectations (the scenario's over the flake host's) and the ISO: `--image`,
/// else the trial's `image:`, else the flake host's build.
fn resolve(
    trial: &Trial,
    options: &RunOptions,
    report: &mut TrialReport,
) -> Result<Resolved, FlakeError> {
    let scenario = &trial.scenario;
    let source = &scenario.source;
    let prebuilt = options.image.clone().or_else(|| trial.image.clone());
    let Some(host) = &source.host else {
        let image = prebuilt.expect("parsing requires `iso:` or an image");
        let (expect, origins) = scenario.expect.over(&Expect::default());
        return Ok(Resolved {
            image,
            expect,
            origins,
        });
    };
    let flake = flake::choose_flake(
        options.flake.as_deref(),
        source.flake.as_deref(),
        &scenario.path,
    )
    .ok_or_else(|| FlakeError::NoFlake {
        host: host.clone(),
        scenario: scenario.path.display().to_string(),
    })?;
    report.flake = Some(flake::attr(&flake, trial.arch, host));
    let derived = flake::derive_expectations(&flake, trial.arch, host)?;
    let (expect, origins) = scenario.expect.over(&derived);
    let image = match prebuilt {
        Some(image) => image,
        None => {
            let built = flake::build_iso(&flake, trial.arch, host)?;
            report.build_secs = Some(built.secs);
            built.iso
        }
    };
    Ok(Resolved {
        image,
        expect,
        origins,
    })
}

/// What a run tells as it goes: a live display on a terminal, plain lines
/// elsewhere. Called from the trials' threads.
pub trait Progress: Sync {
    /// A trial starts (a skipped one too, which ends at once).
    fn started(&self, _trial: &Trial) {}
    /// A trial's boot reached `phase`.
    fn phase(&self, _trial: &Trial, _phase: Phase) {}
    /// A trial ended.
    fn done(&self, report: &TrialReport);
    /// A failed trial's QEMU is kept running (`keep_on_failure`) until it exits
    /// or the run is interrupted: say how to reach it.
    fn kept(&self, _report: &TrialReport, _kept: &KeptMachine) {}
}

/// A closure over finished reports is the simplest progress: a line per trial.
impl<F: Fn(&TrialReport) + Sync> Progress for F {
    fn done(&self, report: &TrialReport) {
        self(report)
    }
}

/// Runs one trial; every outcome, including errors and skips, is a report.
pub fn run_trial(trial: &Trial, options: &RunOptions) -> TrialReport {
    run_trial_observed(trial, options, &|_: &TrialReport| ()).0
}

/// `run_trial`, telling `progress` of each phase; with `keep_on_failure`, a
/// failed trial's QEMU comes back with the report.
fn run_trial_observed(
    trial: &Trial,
    options: &RunOptions,
    progress: &dyn Progress,
) -> (TrialReport, Option<KeptMachine>) {
    let started = Instant::now();
    let artifacts = options.artifacts.join(trial.dir_name());
    let mut report = empty_report(trial, artifacts.clone());
    if let Some(reason) = &trial.skip {
        report.verdict = Verdict::Skipped {
            reason: reason.clone(),
        };
        // Fresh artifacts: an earlier run's transcript must not stand beside this report.
        let _ = std::fs::remove_dir_all(&artifacts);
        write_json(&report);
        return (report, None);
    }
    let mut kept = None;
    let on_phase = |phase| progress.phase(trial, phase);
    let mut run = Run {
        on_phase: &on_phase,
        kept: &mut kept,
    };
    // A panic (a bug in isotest) ends this trial, not the run: its machine is
    // dropped as it unwinds, and the report says what was done before it.
    let mut origins = Origins::default();
    let executed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        execute(
            trial,
            options,
            &artifacts,
            &mut report,
            &mut origins,
            started,
            &mut run,
        )
    }));
    match executed {
        Ok(Ok(())) => {}
        Ok(Err(e)) => report.error = Some(e),
        Err(payload) => report.error = Some(panicked(payload.as_ref(), &report.checks)),
    }
    report.checks.sort_by_key(|c| checks::report_order(&c.name));
    for check in &report.checks {
        if let Some(origin) = origins.of_check(&check.name) {
            report.origins.insert(check.name.to_string(), origin);
        }
    }
    report.total_secs = started.elapsed().as_secs_f64();
    report.verdict = Verdict::judge(report.error.as_ref(), &report.checks);
    write_json(&report);
    // Only a failure is worth a look; a machine that passed is stopped as usual.
    let failed = report.verdict == Verdict::Fail;
    (report, kept.filter(|_| failed))
}

/// The error of a trial in which isotest panicked: nothing more was learnt
/// about the ISO ("could not test"), unless a check had already failed.
fn panicked(payload: &(dyn std::any::Any + Send), checks: &[CheckResult]) -> TrialError {
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into());
    let message = format!(
        "isotest panicked during this trial (a bug in isotest, not a verdict on the ISO): {what}"
    );
    if a_check_failed(checks) {
        failed(message)
    } else {
        could_not_test(message)
    }
}

/// Whether a check failed: a failure that the host's fault or isotest's, met
/// later, does not turn into "could not test". A broken check is left out: it
/// may be that same fault's doing (when QEMU dies, the checks it interrupted
/// break; a panic may follow them), so it proves nothing about the ISO there.
fn a_check_failed(checks: &[CheckResult]) -> bool {
    checks.iter().any(|c| c.outcome == checks::Outcome::Fail)
}

/// What a trial's run hands back besides its report.
struct Run<'a> {
    on_phase: crate::console::PhaseObserver<'a>,
    /// The machine, when `keep_on_failure` asks for it.
    kept: &'a mut Option<KeptMachine>,
}

/// A failed trial's QEMU left running: its console is served on `socket` to one
/// client at a time (`isotest console --attach`, socat), and the private
/// directory stays until the machine is dropped.
pub struct KeptMachine {
    machine: Machine,
    private: PrivateDir,
    /// Keeps reading: the transcript goes on, and the socket's clients are fed from it.
    _console: SerialConsole,
    /// Where the serial console is served.
    pub socket: PathBuf,
}

impl KeptMachine {
    fn new(
        machine: Machine,
        private: PrivateDir,
        console: SerialConsole,
    ) -> Result<KeptMachine, std::io::Error> {
        let socket = private.path().join("console.sock");
        console.serve(&socket)?;
        Ok(KeptMachine {
            machine,
            private,
            _console: console,
            socket,
        })
    }

    pub fn pid(&self) -> u32 {
        self.machine.pid()
    }

    /// The private directory (sockets, UEFI variables), removed with the machine.
    pub fn private_dir(&self) -> &Path {
        self.private.path()
    }

    /// Blocks until QEMU exits (the guest powered off, or the user's Ctrl-C
    /// handler killed it); the console's transcript keeps growing meanwhile.
    pub fn wait(mut self) {
        let status = self.machine.wait();
        qemu::wait_if_stopping();
        tracing::info!(
            "the kept QEMU (pid {}) exited: {status:?}",
            self.machine.pid()
        );
    }
}

fn write_json(report: &TrialReport) {
    let written = std::fs::create_dir_all(&report.artifacts).and_then(|()| report.write_json());
    if let Err(e) = written {
        tracing::warn!(
            "cannot write {}/report.json: {e}",
            report.artifacts.display()
        );
    }
}

/// What a trial's artifacts need at most: transcripts of a long boot, the
/// screendump, QEMU's logs. Checked before QEMU starts, because a full disk
/// otherwise shows as QEMU failing to write its pid file, or as a transcript
/// cut short.
const ARTIFACTS_SPACE_MIB: u64 = 16;

/// Room for a trial's artifacts in `dir`, or why not.
fn enough_space(dir: &Path) -> Result<(), String> {
    let c_dir =
        std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).map_err(|e| e.to_string())?;
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a NUL-terminated path and a statvfs to fill.
    if unsafe { libc::statvfs(c_dir.as_ptr(), &mut stat) } != 0 {
        return Err(format!(
            "cannot see the free space in {}: {}",
            dir.display(),
            std::io::Error::last_os_error()
        ));
    }
    let free_mib = (stat.f_bavail as u64).saturating_mul(stat.f_frsize as u64) / (1024 * 1024);
    if free_mib < ARTIFACTS_SPACE_MIB {
        return Err(format!(
            "no disk space for artifacts: {} has {free_mib} MiB free, a trial needs {ARTIFACTS_SPACE_MIB} MiB (transcripts, screendump, QEMU's logs)",
            dir.display()
        ));
    }
    Ok(())
}

/// The report of a trial before anything happened.
fn empty_report(trial: &Trial, artifacts: PathBuf) -> TrialReport {
    TrialReport::new(
        trial.name(),
        trial.scenario.name.clone(),
        trial.arch.to_string(),
        trial.firmware.to_string(),
        artifacts,
    )
}

/// An error that is a verdict on the ISO: the trial fails.
fn failed(message: impl ToString) -> TrialError {
    TrialError {
        kind: ErrorKind::Failed,
        message: message.to_string(),
        phase: None,
        evidence: Vec::new(),
    }
}

/// An error that says this host cannot run the trial.
fn could_not_test(message: impl ToString) -> TrialError {
    TrialError {
        kind: ErrorKind::CouldNotTest,
        message: message.to_string(),
        phase: None,
        evidence: Vec::new(),
    }
}

/// A flake error: no `nix`, or a system this host cannot build, is the host's
/// lack; the rest (evaluation, build, a flake without the host) is the flake's.
fn flake_error(e: FlakeError) -> TrialError {
    match e {
        FlakeError::NixMissing { .. } | FlakeError::Unsupported { .. } => could_not_test(e),
        _ => failed(e),
    }
}

/// A QEMU error before the guest ran is the host's: a missing or unstartable
/// binary, KVM refused under `--accel kvm`, a socket that cannot be made, QEMU
/// refusing its arguments or a firmware file (it exits at start-up, before the
/// ISO is read), or a QEMU that never connects. Nothing was learnt about the
/// ISO: could not test. A missing ISO, or QMP failing under a running guest,
/// fails the trial.
fn qemu_error(e: QemuError) -> TrialError {
    match e {
        QemuError::Missing { .. }
        | QemuError::KvmUnusable { .. }
        | QemuError::Spawn { .. }
        | QemuError::Io { .. }
        | QemuError::StartFailed { .. }
        | QemuError::NoConnection { .. } => could_not_test(e),
        QemuError::Qmp(_) | QemuError::NoImage(_) | QemuError::Screen(_) => failed(e),
    }
}

/// The trial up to its verdict; `origins` gets where each expectation came from.
fn execute(
    trial: &Trial,
    options: &RunOptions,
    artifacts: &Path,
    report: &mut TrialReport,
    origins: &mut Origins,
    started: Instant,
    run: &mut Run<'_>,
) -> Result<(), TrialError> {
    // Fresh artifacts: a transcript from an earlier run must not be mistaken for this one's.
    let _ = std::fs::remove_dir_all(artifacts);
    std::fs::create_dir_all(artifacts)
        .map_err(|e| could_not_test(format!("create {}: {e}", artifacts.display())))?;
    enough_space(artifacts).map_err(could_not_test)?;
    let resolved = resolve(trial, options, report).map_err(flake_error)?;
    *origins = resolved.origins;
    report.image = Some(resolved.image.clone());
    boot_and_check(
        trial,
        options,
        artifacts,
        report,
        started,
        resolved.image,
        &resolved.expect,
        run,
    )
}

#[allow(clippy::too_many_arguments)]
fn boot_and_check(
    trial: &Trial,
    options: &RunOptions,
    artifacts: &Path,
    report: &mut TrialReport,
    started: Instant,
    image: PathBuf,
    expect: &Expect,
    run: &mut Run<'_>,
) -> Result<(), TrialError> {
    let scenario = &trial.scenario;
    let deadline = started + scenario.timeout;
    let credentials = console_credentials(scenario.boot.login.as_ref()).map_err(could_not_test)?;
    let guest_ssh_port = expect.sshd.as_ref().map_or(22, |s| s.ports()[0]);
    let Started {
        mut machine,
        private,
        choice,
        scale,
        forward,
    } = start_machine(trial, options, artifacts, report, image, guest_ssh_port)?;
    let serial = machine
        .take_serial()
        .expect("a new machine has its serial stream");
    let mut console = SerialConsole::attach(serial, artifacts)
        .map_err(|e| could_not_test(format!("attach the serial console: {e}")))?;
    let boot = boot_to_shell(
        &mut console,
        &choice,
        credentials.as_ref(),
        Default::default(),
        scale,
        deadline,
        run.on_phase,
    );
    let result = after_boot(
        boot,
        &mut console,
        &mut machine,
        trial,
        report,
        expect,
        scale,
        forward,
        private.path(),
    );
    if options.keep_on_failure {
        let kept = KeptMachine::new(machine, private, console);
        *run.kept = kept
            .map_err(|e| tracing::warn!("cannot serve the kept machine's console: {e}"))
            .ok();
    }
    result
}

/// The scenario's `boot.login`, its password read from the environment.
fn console_credentials(
    login: Option<&crate::scenario::SshLogin>,
) -> Result<Option<crate::console::Credentials>, String> {
    let Some(login) = login else { return Ok(None) };
    let password = checks::password_of(login).map_err(|e| e.to_string())?;
    Ok(Some(crate::console::Credentials {
        user: login.user.clone(),
        password,
    }))
}

/// A trial's QEMU, started and connected.
pub struct Started {
    pub machine: Machine,
    /// Its sockets and UEFI variables; removed when dropped.
    pub private: PrivateDir,
    /// How the boot menu is driven, for this ISO and firmware.
    pub choice: BootChoice,
    /// How much slower than KVM every wait may be.
    pub scale: u32,
    /// The host port forwarded to the guest's SSH port.
    pub forward: Option<(u16, u16)>,
}

/// Below the artifacts directory, where `isotest console` puts its trial's.
pub const CONSOLE_DIR: &str = "console";

/// Resolves the trial's ISO and starts QEMU for it as a run does (firmware,
/// private directory, KVM probe, command line), booting nothing: for
/// `isotest console`, where the user drives the boot.
pub fn start_for_console(trial: &Trial, options: &RunOptions) -> Result<Started, TrialError> {
    // Not the trial's own directory: that holds the run being looked into.
    let artifacts = options.artifacts.join(CONSOLE_DIR).join(trial.dir_name());
    let _ = std::fs::remove_dir_all(&artifacts);
    std::fs::create_dir_all(&artifacts)
        .map_err(|e| could_not_test(format!("create {}: {e}", artifacts.display())))?;
    let mut report = empty_report(trial, artifacts.clone());
    let Resolved { image, expect, .. } =
        resolve(trial, options, &mut report).map_err(flake_error)?;
    let guest_ssh_port = expect.sshd.as_ref().map_or(22, |s| s.ports()[0]);
    start_machine(
        trial,
        options,
        &artifacts,
        &mut report,
        image,
        guest_ssh_port,
    )
}

/// Everything up to a running QEMU; records the accelerator and the command line.
fn start_machine(
    trial: &Trial,
    options: &RunOptions,
    artifacts: &Path,
    report: &mut TrialReport,
    image: PathBuf,
    guest_ssh_port: u16,
) -> Result<Started, TrialError> {
    let scenario = &trial.scenario;
    if !image.is_file() {
        return Err(failed(format!("ISO image not found: {}", image.display())));
    }
    // An image no firmware could boot from a CD-ROM (a flake's build; the CLI
    // refuses one it is given) fails before QEMU starts, not after a boot timeout.
    let iso = crate::iso::inspect(&image).map_err(failed)?;
    tracing::debug!(trial = %trial.name(), "{}: El Torito boot entries for {}", image.display(), iso.platforms_text());
    // What this host must have, before anything is started. Sockets, the UEFI
    // vars copy and the SSH key live in a private (0700) directory that
    // disappears with the trial.
    enough_memory(scenario.memory_mib, host_memory_mib()).map_err(could_not_test)?;
    let private =
        PrivateDir::new().map_err(|e| could_not_test(format!("create a private temp dir: {e}")))?;
    let uefi = uefi_flash(trial, private.path())?;
    let binary = qemu::find_qemu(trial.arch).map_err(qemu_error)?;
    let choice = BootChoice::for_iso(
        &image,
        trial.firmware,
        scenario.boot.entry.as_ref(),
        console_arg(trial.arch),
    )
    .map_err(failed)?;
    // A boot loader that draws on VGA only reaches the serial port through SeaBIOS,
    // for the KVM probe as for the trial.
    let vga = vga_to_serial(&choice, trial.firmware, private.path())?;

    let target = ProbeTarget {
        binary: &binary,
        arch: trial.arch,
        firmware: trial.firmware,
        iso: &image,
        uefi: uefi.as_ref(),
        vga_to_serial: vga.as_deref(),
    };
    let decision =
        qemu::resolve_accel(accel_choice(options, scenario), &target).map_err(qemu_error)?;
    if let Some(note) = &decision.note {
        tracing::info!(trial = %trial.name(), "{note}");
    }
    report.accel = Some(decision.accel.as_str().to_owned());
    report.accel_note = decision.note.clone();
    let scale = decision.accel.time_scale();

    let mut spec = MachineSpec {
        arch: trial.arch,
        firmware: trial.firmware,
        accel: decision.accel,
        memory_mib: scenario.memory_mib,
        cpus: options.cpus,
        iso: image,
        uefi,
        serial_socket: private.path().join("serial.sock"),
        qmp_socket: private.path().join("qmp.sock"),
        pidfile: artifacts.join("qemu.pid"),
        forward: None,
        vga_to_serial: vga,
        paused: false,
    };
    tracing::info!(trial = %trial.name(), "booting {} ({})", spec.iso.display(), decision.accel.as_str());
    let started_machine = start_with_free_port(&binary, &mut spec, guest_ssh_port, artifacts);
    // Recorded whether or not QEMU started: a start that failed is when it matters most.
    let run = QemuRun::of(&binary, qemu::version(&binary), &qemu::command_line(&spec));
    write_artifact(&artifacts.join("qemu.cmdline"), &run.cmdline_file());
    report.qemu = Some(run);
    let machine = started_machine?;
    Ok(Started {
        machine,
        private,
        choice,
        scale,
        forward: spec.forward,
    })
}

/// From the boot's outcome on: the checks on the shell, or the boot's failure
/// with QEMU's view of it.
#[allow(clippy::too_many_arguments)]
fn after_boot(
    boot: Result<crate::console::BootOutcome, BootError>,
    console: &mut SerialConsole,
    machine: &mut Machine,
    trial: &Trial,
    report: &mut TrialReport,
    expect: &Expect,
    scale: u32,
    forward: Option<(u16, u16)>,
    private: &Path,
) -> Result<(), TrialError> {
    let scenario = &trial.scenario;
    // Without a console shell, what needs none still runs (the SSH password logins).
    let no_console_shell = |checks: &mut Vec<CheckResult>, why: &str| {
        let ssh_port = forward.map(|(host, _)| host);
        without_console_shell(expect, &scenario.steps, ssh_port, scale, checks, why)
    };
    let boot = match boot {
        Ok(boot) => boot,
        Err(BootError::NoAutologin {
            login_line,
            evidence,
        }) => {
            // A login prompt is a verdict on autologin, and leaves no shell for the rest.
            if let Some(expected) = &expect.autologin {
                report
                    .checks
                    .push(checks::at_login_prompt(expected, &login_line, evidence));
            }
            let why = "no shell on the serial console (it stopped at a login prompt)";
            no_console_shell(&mut report.checks, why);
            return Ok(());
        }
        Err(BootError::LoginFailed {
            user,
            answer,
            login_line,
            evidence,
        }) => {
            // No autologin (or the scenario would not have logged in), and the
            // scenario's credentials did not work: two verdicts, no shell.
            if let Some(expected) = &expect.autologin {
                report.checks.push(checks::at_login_prompt(
                    expected,
                    &login_line,
                    evidence.clone(),
                ));
            }
            report
                .checks
                .push(checks::console_login_failed(&user, &answer, evidence));
            let why = "no shell on the serial console (the console login failed)";
            no_console_shell(&mut report.checks, why);
            return Ok(());
        }
        Err(e @ BootError::NoPosixShell { .. }) => {
            // Something logged in, but gave isotest no shell: the trial fails
            // with the console's last lines, and the SSH logins still run.
            let why = "no shell on the serial console (isotest could not start /bin/sh there)";
            no_console_shell(&mut report.checks, why);
            return Err(TrialError {
                phase: Some(e.phase_reached().to_string()),
                evidence: e.evidence().to_vec(),
                ..failed(e)
            });
        }
        Err(e) if e.console_closed() => {
            // QEMU is gone, and with it the display: its last QMP events and
            // exit status say why (a reboot under -no-reboot, a power-off, a
            // crash or a signal). The guest's doing fails the trial; the host's
            // means nothing was learnt about the ISO.
            let exit = machine.why_exited();
            let mut message = format!("{e}: {}", exit.describe());
            let mut evidence = e.evidence().to_vec();
            // SeaBIOS resets at once when nothing boots (qemu/args.rs); its log says so.
            if let Some(lines) = nothing_to_boot(&report.artifacts.join(qemu::FIRMWARE_LOG)) {
                message = format!("{}; {message}", crate::console::NO_BOOTABLE_DEVICE);
                evidence.extend(lines.into_iter().map(|l| format!("(firmware) {l}")));
            }
            let error = if exit.by_guest() {
                failed(message)
            } else {
                could_not_test(message)
            };
            return Err(TrialError {
                phase: Some(e.phase_reached().to_string()),
                evidence,
                ..error
            });
        }
        Err(e) => {
            let mut evidence = e.evidence().to_vec();
            // What the display shows tells what the serial console may not
            // (a firmware error, a menu or kernel on VGA only, a black screen).
            match machine.screendump(&report.artifacts.join(SCREENDUMP)) {
                Ok(()) => report.screendump = Some(SCREENDUMP.into()),
                Err(e) => evidence.push(format!("(QEMU: no screendump: {e})")),
            }
            if let Ok(state) = machine.qmp().run_state() {
                evidence.push(format!("(QEMU: guest state `{state}`)"));
            }
            let stderr = machine.stderr();
            evidence.extend(stderr.lines().map(|l| format!("(QEMU stderr) {l}")));
            return Err(TrialError {
                phase: Some(e.phase_reached().to_string()),
                evidence,
                ..failed(e)
            });
        }
    };
    report.phases = boot
        .phases
        .iter()
        .map(|(p, t)| ((*p).into(), t.as_secs_f64()))
        .collect();
    tracing::info!(trial = %trial.name(), "shell on the serial console after {:.1} s", report.boot_secs().unwrap_or_default());

    let mut shell = Shell::new(console, scale);
    let settle_started = Instant::now();
    quiet_console(&mut shell);
    let shell_at = report.boot_secs().unwrap_or_default();
    report.phases.push((
        crate::report::TrialPhase::Settled,
        shell_at + settle_started.elapsed().as_secs_f64(),
    ));
    run_checks(
        &mut shell,
        &boot,
        report,
        expect,
        &scenario.steps,
        SshPlace {
            forward,
            private,
            scale,
        },
    );
    // A guest that rebooted or a QEMU that died under the checks leaves them
    // broken ("the console closed"); the trial says why once. A check that
    // failed before the host's fault still fails the trial.
    if console.closed() || machine.exit_status().is_some() {
        let exit = machine.why_exited();
        let message = format!("QEMU exited during the checks: {}", exit.describe());
        return Err(if exit.by_guest() || a_check_failed(&report.checks) {
            failed(message)
        } else {
            could_not_test(message)
        });
    }
    Ok(())
}

/// Where the SSH logins go: the forward to the guest's sshd, the private
/// directory for their key, and the accelerator's time scale.
struct SshPlace<'a> {
    forward: Option<(u16, u16)>,
    private: &'a Path,
    scale: u32,
}

/// Every check on the shell. None waits for the whole system: each waits for
/// what it looks at (the sshd check for sshd's units, a Home Manager check for
/// its unit; hostname, autologin and users for nothing). The SSH logins'
/// network part runs on another thread while the console checks the users and
/// Home Manager; when sshd is still starting, the users and Home Manager are
/// checked first instead, while it starts. Then, once the system has finished
/// starting, the units that failed during the boot are listed, and the
/// scenario's own steps run, after the logins since a step may change what
/// they look at. Each result goes into the report as it ends (so that a panic
/// loses none); the report lists them in one order whatever order they ran
/// in (`checks::report_order`, once the trial is over).
fn run_checks(
    shell: &mut Shell<'_>,
    boot: &crate::console::BootOutcome,
    report: &mut TrialReport,
    expect: &Expect,
    steps: &[crate::scenario::Step],
    place: SshPlace<'_>,
) {
    if let Some(expected) = &expect.autologin {
        report.checks.push(match &boot.logged_in.by_isotest {
            None => CheckResult::timed(|| checks::autologin(shell, boot, expected)),
            // isotest logged in at a prompt: that prompt is the verdict.
            Some(_) => {
                checks::at_login_prompt(expected, &boot.login_line, boot.login_evidence.clone())
            }
        });
    }
    if let Some(user) = &boot.logged_in.by_isotest {
        report.checks.push(CheckResult::timed(|| {
            checks::console_login(shell, user, boot)
        }));
    }
    if let Some(expected) = &expect.hostname {
        report
            .checks
            .push(CheckResult::timed(|| checks::hostname(shell, expected)));
    }
    let is_root = shell
        .run("id -u", checks::COMMAND_TIMEOUT)
        .map(|o| o.output.trim() == "0")
        .unwrap_or(false);
    let seen = expect.sshd.as_ref().map(|_| checks::sshd_units(shell));
    let sshd_starting = seen.as_ref().is_some_and(checks::SshdUnits::starting);
    if sshd_starting {
        users_and_home_manager(shell, is_root, expect, boot, &mut report.checks);
    }
    let mut stages = Vec::new();
    if let Some(sshd) = &expect.sshd {
        let port = place.forward.map(|(host, _)| host).unwrap_or(0);
        let reach = checks::SshdReach {
            port,
            scale: place.scale,
        };
        let sshd_check = CheckResult::timed(|| checks::sshd(shell, is_root, sshd, &reach, seen));
        let sshd_ok = sshd_check.passed();
        report.checks.push(sshd_check);
        let context = SshContext {
            sshd,
            port,
            private: place.private,
            scale: place.scale,
        };
        stages = prepare_logins(shell, is_root, &context, sshd_ok);
    }
    let network = std::thread::scope(|scope| {
        let network = scope.spawn(move || {
            stages
                .into_iter()
                .map(checks::SshLoginStage::run)
                .collect::<Vec<_>>()
        });
        if !sshd_starting {
            users_and_home_manager(shell, is_root, expect, boot, &mut report.checks);
        }
        network.join()
    });
    match network {
        Ok(done) => report.checks.extend(
            done.into_iter()
                .map(|stage| checks::finish_ssh_login(shell, stage)),
        ),
        // A bug in isotest, not a finding about the ISO: the trial's own
        // catch_unwind classifies it as any other panic.
        Err(payload) => std::panic::resume_unwind(payload),
    }
    // Units may fail until start-up is over: they are listed after it.
    wait_for_startup(shell);
    report.failed_units = failed_units(shell, is_root);
    checks::steps(shell, steps, &mut report.checks);
    shell.remove_files();
}

/// The users' checks, then their Home Manager checks, each added to `results`
/// as it ends.
fn users_and_home_manager(
    shell: &mut Shell<'_>,
    is_root: bool,
    expect: &Expect,
    boot: &crate::console::BootOutcome,
    results: &mut Vec<CheckResult>,
) {
    // The login shell the console reached is evidence for its user's `shell`.
    let console_user = boot
        .logged_in
        .by_isotest
        .as_ref()
        .or(boot.autologin_user.as_ref());
    for (name, user) in &expect.users {
        let mut result = CheckResult::timed(|| checks::user(shell, is_root, name, user));
        if let (Some(program), true) = (&boot.logged_in.login_shell, console_user == Some(name)) {
            result
                .evidence
                .push(format!("the serial console's login shell: {program}"));
        }
        results.push(result);
    }
    for (name, user) in &expect.users {
        if let Some(hm) = &user.home_manager {
            results.push(CheckResult::timed(|| {
                checks::home_manager(shell, is_root, name, hm)
            }));
        }
    }
}

/// SeaBIOS's VGA-to-serial file, in the trial's private dir, when the boot
/// loader draws on VGA only (see `BootChoice::draws_on_vga_only`).
fn vga_to_serial(
    choice: &BootChoice,
    firmware: Firmware,
    private: &Path,
) -> Result<Option<PathBuf>, TrialError> {
    if !choice.draws_on_vga_only(firmware) {
        return Ok(None);
    }
    let file = private.join("sercon-port");
    std::fs::write(&file, qemu::SERCON_TTYS0)
        .map_err(|e| could_not_test(format!("write {}: {e}", file.display())))?;
    Ok(Some(file))
}

/// The trial's UEFI flash: the firmware's code, and a copy of its variable store
/// in the trial's private directory. QEMU's `virt` board wants 64 MiB flash
/// images; smaller raw ones (some distributions ship 2 MiB) are padded in a
/// copy. A missing firmware (named in `firmware:`, so not skipped) or a failed
/// copy: could not test.
fn uefi_flash(trial: &Trial, private: &Path) -> Result<Option<qemu::Pflash>, TrialError> {
    if trial.firmware != Firmware::Uefi {
        return Ok(None);
    }
    let found = qemu::FirmwareSearch::system()
        .find(trial.arch, trial.scenario.uefi_files(trial.arch))
        .map_err(could_not_test)?;
    tracing::debug!(trial = %trial.name(), "UEFI firmware {} (from {})", found.code.display(), found.found_by);
    let pad = (trial.arch == Arch::Aarch64 && found.format == "raw").then_some(VIRT_FLASH);
    let vars =
        flash_copy(&found.vars, &private.join("uefi-vars.fd"), pad).map_err(could_not_test)?;
    let code_len = std::fs::metadata(&found.code)
        .map_err(|e| could_not_test(format!("{}: {e}", found.code.display())))?
        .len();
    let code = match pad {
        Some(size) if code_len < size => {
            flash_copy(&found.code, &private.join("uefi-code.fd"), pad).map_err(could_not_test)?
        }
        _ => found.code.clone(),
    };
    Ok(Some(qemu::Pflash {
        code,
        vars,
        format: found.format,
    }))
}

/// The size of a flash image on QEMU's `virt` board.
const VIRT_FLASH: u64 = 64 << 20;

/// Copies `from` to `to`, padded with zeros to `pad` bytes if it is shorter.
fn flash_copy(from: &Path, to: &Path, pad: Option<u64>) -> Result<PathBuf, String> {
    std::fs::copy(from, to)
        .map_err(|e| format!("copy {} to {}: {e}", from.display(), to.display()))?;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(to)
        .map_err(|e| format!("open {}: {e}", to.display()))?;
    let len = file.metadata().map_err(|e| e.to_string())?.len();
    if let Some(size) = pad.filter(|&size| len < size) {
        file.set_len(size)
            .map_err(|e| format!("pad {}: {e}", to.display()))?;
    }
    Ok(to.to_owned())
}

struct SshContext<'a> {
    sshd: &'a crate::scenario::Sshd,
    port: u16,
    private: &'a Path,
    scale: u32,
}

/// The console part of the real SSH logins (see `checks::SshAttempt`). They
/// depend on the sshd check: when it failed, they say so instead of failing a
/// second time for the same cause. A login with nothing to try is its result.
fn prepare_logins(
    shell: &mut Shell<'_>,
    is_root: bool,
    ctx: &SshContext<'_>,
    sshd_ok: bool,
) -> Vec<checks::SshLoginStage> {
    let name = checks::login_check_id;
    let all = |result: &dyn Fn(CheckId) -> CheckResult| {
        ctx.sshd
            .login
            .iter()
            .map(|l| checks::SshLoginStage::Judged(result(name(l))))
            .collect()
    };
    if !sshd_ok {
        return all(&|n| CheckResult::not_run(n, "", "the sshd check failed"));
    }
    let pins = if ctx.sshd.host_keys.is_empty() {
        match checks::host_key_fingerprints(shell) {
            Ok(p) => p,
            Err(e) => return all(&|n| CheckResult::broken(n, "", &e.message, e.lines.clone())),
        }
    } else {
        ctx.sshd.host_keys.clone()
    };
    // The console's hostname is what SSH must agree with: without it the logins have no evidence.
    let hostname = match shell.run("cat /proc/sys/kernel/hostname", checks::COMMAND_TIMEOUT) {
        Ok(o) if o.status == 0 => o.output.trim().to_owned(),
        Ok(o) => {
            let why = format!(
                "`cat /proc/sys/kernel/hostname` failed with exit status {}",
                o.status
            );
            return all(&|n| CheckResult::broken(n, "", &why, Vec::new()));
        }
        Err(e) => return all(&|n| CheckResult::broken(n, "", &e.to_string(), Vec::new())),
    };
    let target = checks::SshTarget {
        port: ctx.port,
        pins: &pins,
        private_dir: ctx.private,
        hostname: &hostname,
        scale: ctx.scale,
    };
    ctx.sshd
        .login
        .iter()
        .map(|login| checks::prepare_ssh_login(shell, is_root, &target, login))
        .collect()
}

/// Starts QEMU with the guest's SSH port forwarded from a free port on 127.0.0.1.
/// Another process can take the port between the probe and QEMU's bind; then
/// QEMU fails to start and another port is tried. No free port: could not test.
/// Public for the tests that start many machines at once.
pub fn start_with_free_port(
    binary: &Path,
    spec: &mut MachineSpec,
    guest: u16,
    artifacts: &Path,
) -> Result<Machine, TrialError> {
    const ATTEMPTS: u32 = 3;
    let mut attempts = 0;
    loop {
        attempts += 1;
        let port = crate::ssh::free_port().map_err(|e| {
            could_not_test(format!(
                "no free TCP port on 127.0.0.1 for the guest's SSH forward: {e}"
            ))
        })?;
        spec.forward = Some((port, guest));
        match Machine::start(binary, spec, &qemu::MachineLogs::in_dir(artifacts)) {
            Err(QemuError::StartFailed { stderr, .. }) if stderr.contains("hostfwd") => {
                if attempts == ATTEMPTS {
                    let why = format!("no port on 127.0.0.1 could be forwarded to the guest in {ATTEMPTS} attempts: {stderr}");
                    return Err(could_not_test(why));
                }
            }
            other => return other.map_err(qemu_error),
        }
    }
}

/// The screendump of a failed boot, in the trial's artifacts.
const SCREENDUMP: &str = "screen.png";

/// Writes an artifact beside the transcript; one that cannot be written is
/// logged, not a failure of the trial.
fn write_artifact(path: &Path, text: &str) {
    if let Err(e) = std::fs::write(path, text) {
        tracing::warn!("cannot write {}: {e}", path.display());
    }
}

/// This host's memory in MiB (`MemTotal` in /proc/meminfo), if it can be read.
pub fn host_memory_mib() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find_map(|l| l.strip_prefix("MemTotal:"))?;
    Some(line.trim().strip_suffix("kB")?.trim().parse::<u64>().ok()? / 1024)
}

/// A guest bigger than the host's whole memory cannot run here. (Less than the
/// memory available now is fine: QEMU maps guest memory as the guest uses it.)
fn enough_memory(guest_mib: u64, host_mib: Option<u64>) -> Result<(), String> {
    match host_mib {
        Some(host) if guest_mib > host => Err(format!(
            "the guest needs {guest_mib} MiB (`memory:`), and this host has {host} MiB in all"
        )),
        _ => Ok(()),
    }
}

/// Quiets the console before commands run: kernel messages off it (`dmesg -n
/// 1`), and systemd's status lines too, which it prints while the system is
/// still starting (the checks no longer wait for that): SIGRTMIN+21 to PID 1
/// turns them off (systemd(1); 55 with glibc's SIGRTMIN of 34: dash knows no
/// `RTMIN+n` names). A non-root shell asks `sudo -n`. Best effort: a shell
/// that can do neither, or a system without systemd, skips what it cannot.
/// The report shows when this was done as the phase `settled`.
fn quiet_console(shell: &mut Shell<'_>) {
    let quiet = "dmesg -n 1 && kill -55 1";
    let command =
        format!("{{ {quiet}; }} 2>/dev/null || sudo -n sh -c '{quiet}' 2>/dev/null; true");
    if let Err(e) = shell.run(&command, checks::COMMAND_TIMEOUT) {
        tracing::warn!("quieting the console: {e}");
    }
}

/// After the checks: the end of start-up, before the failed units are listed
/// (a unit may fail until then) and the scenario's own steps run (a step may
/// rely on any service). By then the system is usually up and this costs one
/// command. Best effort: a start-up that does not finish within 60 s is
/// logged with the jobs still running, and what failed so far is listed.
fn wait_for_startup(shell: &mut Shell<'_>) {
    let command = "timeout 60 systemctl is-system-running --wait >/dev/null 2>&1 || systemctl list-jobs --no-legend 2>/dev/null; true";
    match shell.run(command, std::time::Duration::from_secs(70)) {
        Ok(out) if !out.output.trim().is_empty() => {
            tracing::warn!(
                "the system did not finish starting before the steps; jobs still running: {}",
                out.output.trim()
            )
        }
        Ok(_) => {}
        Err(e) => tracing::warn!("waiting for the end of start-up: {e}"),
    }
}

/// SeaBIOS's lines about what it tried to boot, if its log (`firmware.log`)
/// says it found nothing bootable.
fn nothing_to_boot(log: &Path) -> Option<Vec<String>> {
    let text = String::from_utf8_lossy(&std::fs::read(log).ok()?).into_owned();
    let boot_lines = |l: &&str| {
        ["Booting from", "Boot failed", "No bootable device"]
            .iter()
            .any(|p| l.starts_with(p))
    };
    let lines: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(boot_lines)
        .map(str::to_owned)
        .collect();
    lines
        .iter()
        .any(|l| l.starts_with("No bootable device"))
        .then_some(lines)
}

/// How many journal lines a failed unit's report shows.
const UNIT_JOURNAL_LINES: usize = 10;

/// The units that failed during the boot (once start-up is over), each with the
/// end of its journal (as root: a user's journalctl sees only its own). Best
/// effort: a guest without systemd, or a shell that cannot answer, has none.
fn failed_units(shell: &mut Shell<'_>, is_root: bool) -> Vec<crate::report::FailedUnit> {
    let list = "systemctl list-units --state=failed --plain --no-legend --no-pager 2>/dev/null";
    let units = match shell.run(list, checks::COMMAND_TIMEOUT) {
        Ok(o) if o.status == 0 => unit_names(&o.output),
        Ok(_) => return Vec::new(),
        Err(e) => {
            tracing::warn!("listing the failed units: {e}");
            return Vec::new();
        }
    };
    units
        .into_iter()
        .map(|unit| {
            let q = crate::console::sh_quote(&unit);
            let command = checks::as_root(
                is_root,
                &format!("journalctl -u {q} -b --no-pager 2>&1 | tail -n {UNIT_JOURNAL_LINES}"),
            );
            let journal = match shell.run(&command, checks::COMMAND_TIMEOUT) {
                Ok(o) => o.output.lines().map(str::to_owned).collect(),
                Err(e) => vec![format!("(no journal: {e})")],
            };
            crate::report::FailedUnit { unit, journal }
        })
        .collect()
}

/// The unit names in `systemctl list-units --plain --no-legend`: the first word
/// of each line.
fn unit_names(listing: &str) -> Vec<String> {
    listing
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// Without a console shell: every check that needs one, reported as not run
/// (a report must not be silent about an expectation it could not verify),
/// and the SSH password logins, which need none (`ssh_port`: the host's end
/// of the forward).
fn without_console_shell(
    expect: &Expect,
    steps: &[crate::scenario::Step],
    ssh_port: Option<u16>,
    scale: u32,
    out: &mut Vec<CheckResult>,
    why: &str,
) {
    if let Some(hostname) = &expect.hostname {
        out.push(CheckResult::not_run(CheckId::Hostname, hostname, why));
    }
    if let Some(sshd) = &expect.sshd {
        out.push(CheckResult::not_run(CheckId::Sshd, "", why));
        for login in &sshd.login {
            out.push(match ssh_port {
                Some(port) => CheckResult::timed(|| {
                    checks::ssh_login_without_console(
                        login,
                        port,
                        expect.hostname.as_deref(),
                        scale,
                        why,
                    )
                }),
                None => CheckResult::not_run(checks::login_check_id(login), "", why),
            });
        }
    }
    for (name, user) in &expect.users {
        out.push(CheckResult::not_run(CheckId::user(name), "", why));
        if user.home_manager.is_some() {
            out.push(CheckResult::not_run(CheckId::home_manager(name), "", why));
        }
    }
    out.extend(checks::steps_not_run(steps, why));
}

/// Runs trials with at most `jobs` at once, telling `progress` as each starts,
/// reaches a phase and finishes. Results come back in the trials' order. A kept
/// machine (`keep_on_failure`) holds its worker until QEMU exits.
pub fn run_trials(
    trials: &[Trial],
    options: &RunOptions,
    jobs: usize,
    progress: &dyn Progress,
) -> Vec<TrialReport> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results = std::sync::Mutex::new(vec![None; trials.len()]);
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1).min(trials.len()) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let Some(trial) = trials.get(i) else { break };
                // Each worker thread owns its machine from start to end, which
                // PR_SET_PDEATHSIG requires.
                progress.started(trial);
                let (report, kept) = run_trial_observed(trial, options, progress);
                progress.done(&report);
                if let Some(kept) = kept {
                    progress.kept(&report, &kept);
                    kept.wait();
                }
                results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(report);
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .map(|r| r.expect("every trial ran"))
        .collect()
}

/// Runs each trial that has a baseline (`given`, i.e. `--baseline`, else its
/// scenario's `baseline:`) on that ISO instead, against the same expectations,
/// its artifacts under `<artifacts>/baseline/`. One report per trial, `None`
/// for a trial without a baseline. Trials that differ only by their image
/// (`images:`) share one baseline run.
pub fn run_baselines(
    trials: &[Trial],
    given: Option<&Path>,
    options: &RunOptions,
    jobs: usize,
    progress: &dyn Progress,
) -> Vec<Option<TrialReport>> {
    let on_baseline: Vec<Option<Trial>> = trials
        .iter()
        .map(|t| {
            let iso = given
                .map(Path::to_owned)
                .or_else(|| t.scenario.baseline.clone())?;
            Some(Trial {
                image: Some(iso),
                ..t.clone()
            })
        })
        .collect();
    let same = |a: &Trial, b: &Trial| {
        std::sync::Arc::ptr_eq(&a.scenario, &b.scenario)
            && a.arch == b.arch
            && a.firmware == b.firmware
            && a.image == b.image
    };
    let mut unique: Vec<Trial> = Vec::new();
    for t in on_baseline.iter().flatten() {
        if !unique.iter().any(|u| same(u, t)) {
            unique.push(t.clone());
        }
    }
    if unique.is_empty() {
        return vec![None; trials.len()];
    }
    // The baseline is the trial's image here; `--image` names the new ISO only.
    // A baseline's VM is never kept: the comparison needs only its report.
    let options = RunOptions {
        image: None,
        artifacts: options.artifacts.join(crate::report::BASELINE_DIR),
        keep_on_failure: false,
        ..options.clone()
    };
    let reports = run_trials(&unique, &options, jobs, progress);
    on_baseline
        .iter()
        .map(|t| {
            t.as_ref()
                .and_then(|t| unique.iter().position(|u| same(u, t)))
                .map(|i| reports[i].clone())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_guest_bigger_than_the_host_could_not_test() {
        assert_eq!(enough_memory(1024, Some(2048)), Ok(()));
        assert_eq!(enough_memory(1024, None), Ok(()));
        let e = enough_memory(4096, Some(2048)).unwrap_err();
        assert_eq!(
            e,
            "the guest needs 4096 MiB (`memory:`), and this host has 2048 MiB in all"
        );
        assert!(
            host_memory_mib().is_some_and(|m| m > 0),
            "MemTotal unreadable"
        );
    }

    #[test]
    fn a_host_lack_or_a_qemu_refusing_to_start_is_could_not_test() {
        let missing = QemuError::Missing {
            binary: "qemu-system-x86_64".into(),
            hint: "apt-get install qemu-system-x86".into(),
        };
        assert_eq!(qemu_error(missing).kind, ErrorKind::CouldNotTest);
        let refused = QemuError::StartFailed {
            status: "exit status: 1".into(),
            stderr: "boom".into(),
        };
        assert_eq!(qemu_error(refused).kind, ErrorKind::CouldNotTest);
        assert_eq!(
            qemu_error(QemuError::NoImage("/no.iso".into())).kind,
            ErrorKind::Failed
        );
        assert_eq!(
            flake_error(FlakeError::NixMissing {
                purpose: "x".into()
            })
            .kind,
            ErrorKind::CouldNotTest
        );
        assert_eq!(
            flake_error(FlakeError::Build {
                attr: "a".into(),
                log: "l".into()
            })
            .kind,
            ErrorKind::Failed
        );
    }

    #[test]
    fn a_skipped_trial_is_reported_without_running() {
        let dir = tempfile::tempdir().unwrap();
        let scenario = crate::scenario::Scenario::parse(
            &dir.path().join("s.yaml"),
            "image: none.iso\narch: x86_64\nfirmware: uefi\n",
        )
        .unwrap();
        let trial = Trial {
            scenario: std::sync::Arc::new(scenario),
            arch: Arch::X86_64,
            firmware: Firmware::Uefi,
            image: None,
            skip: Some("no UEFI firmware for x86_64 found".into()),
        };
        let options = RunOptions {
            artifacts: dir.path().join("artifacts"),
            ..RunOptions::default()
        };
        let report = run_trial(&trial, &options);
        assert_eq!(
            report.verdict,
            Verdict::Skipped {
                reason: "no UEFI firmware for x86_64 found".into()
            }
        );
        let json = std::fs::read_to_string(dir.path().join("artifacts/s-x86_64-uefi/report.json"))
            .unwrap();
        assert!(json.contains("\"verdict\": \"skipped\""), "{json}");
    }

    #[test]
    fn baselines_run_once_per_trial_without_its_image_under_baseline() {
        // Skipped trials: run_trial reports them without booting, which is all
        // this needs to see what ran where.
        let dir = tempfile::tempdir().unwrap();
        let yaml = "images: [a.iso, b.iso]\narch: x86_64\nfirmware: uefi\nbaseline: old.iso\n";
        let with = std::sync::Arc::new(
            crate::scenario::Scenario::parse(&dir.path().join("s.yaml"), yaml).unwrap(),
        );
        let without = std::sync::Arc::new(
            crate::scenario::Scenario::parse(
                &dir.path().join("t.yaml"),
                "image: c.iso\narch: x86_64\n",
            )
            .unwrap(),
        );
        let trial = |scenario: &std::sync::Arc<crate::scenario::Scenario>, image: &str| Trial {
            scenario: scenario.clone(),
            arch: Arch::X86_64,
            firmware: Firmware::Uefi,
            image: Some(dir.path().join(image)),
            skip: Some("no OVMF".into()),
        };
        let trials = [
            trial(&with, "a.iso"),
            trial(&with, "b.iso"),
            trial(&without, "c.iso"),
        ];
        let options = RunOptions {
            artifacts: dir.path().join("artifacts"),
            ..RunOptions::default()
        };
        let ran = std::sync::Mutex::new(Vec::new());
        let baselines = run_baselines(&trials, None, &options, 1, &|r: &TrialReport| {
            ran.lock().unwrap().push(r.name.clone())
        });
        assert_eq!(
            *ran.lock().unwrap(),
            ["s::x86_64::uefi::old"],
            "one baseline run for both images"
        );
        assert_eq!(
            baselines.iter().map(Option::is_some).collect::<Vec<_>>(),
            [true, true, false]
        );
        assert!(dir
            .path()
            .join("artifacts/baseline/s-x86_64-uefi-old/report.json")
            .is_file());
        // --baseline wins over `baseline:`, and gives every trial one.
        let given = dir.path().join("given.iso");
        let baselines = run_baselines(&trials, Some(&given), &options, 1, &|_: &TrialReport| ());
        assert!(baselines.iter().all(Option::is_some));
        assert!(dir
            .path()
            .join("artifacts/baseline/t-x86_64-uefi/report.json")
            .is_file());
    }

    #[test]
    fn a_firmware_log_without_a_bootable_device_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("firmware.log");
        // SeaBIOS 1.16 (Debian 12) on an ISO without an El Torito boot record, shortened (the
        // efi-only-boot-record fixture gives code 0009, then tries the hard disk and floppy too).
        std::fs::write(&log, "Searching bootorder for: /pci@i0cf8/*@1f,2/drive@0/disk@0\nBooting from DVD/CD...\nBoot failed: Could not read from CDROM (code 0004)\nenter handle_18:\n  NULL\nNo bootable device.  Retrying in 0 seconds.\nRebooting.\n").unwrap();
        assert_eq!(
            nothing_to_boot(&log).unwrap(),
            [
                "Booting from DVD/CD...",
                "Boot failed: Could not read from CDROM (code 0004)",
                "No bootable device.  Retrying in 0 seconds."
            ]
        );
        std::fs::write(&log, "Booting from DVD/CD...\nBooting from 0000:7c00\n").unwrap();
        assert_eq!(nothing_to_boot(&log), None);
        assert_eq!(nothing_to_boot(&dir.path().join("none.log")), None);
    }

    #[test]
    fn failed_units_are_the_first_words_of_the_listing() {
        let listing = "rescue-mirror.service loaded failed failed Fetch the rescue tools index\nhome-manager-nixos.service loaded failed failed Home Manager environment for nixos\n";
        assert_eq!(
            unit_names(listing),
            ["rescue-mirror.service", "home-manager-nixos.service"]
        );
        assert!(unit_names("").is_empty());
    }

    #[test]
    fn a_panic_is_could_not_test_unless_a_check_had_failed() {
        let payload: Box<dyn std::any::Any + Send> = Box::new(String::from("index out of bounds"));
        let e = panicked(
            payload.as_ref(),
            &[CheckResult::not_run(CheckId::Sshd, "", "x")],
        );
        assert_eq!(e.kind, ErrorKind::CouldNotTest);
        assert_eq!(e.message, "isotest panicked during this trial (a bug in isotest, not a verdict on the ISO): index out of bounds");
        let failing = CheckResult {
            outcome: checks::Outcome::Fail,
            ..CheckResult::not_run(CheckId::Hostname, "rescue", "x")
        };
        let payload: Box<dyn std::any::Any + Send> = Box::new("static message");
        let e = panicked(payload.as_ref(), &[failing]);
        assert_eq!(
            (e.kind, e.message.ends_with(": static message")),
            (ErrorKind::Failed, true)
        );
        let payload: Box<dyn std::any::Any + Send> = Box::new("static message");
        let e = panicked(
            payload.as_ref(),
            &[CheckResult::broken(
                CheckId::Sshd,
                "running",
                "the console closed",
                vec![],
            )],
        );
        assert_eq!(
            e.kind,
            ErrorKind::CouldNotTest,
            "a broken check may be the same fault's doing"
        );
    }

    #[test]
    fn a_short_flash_image_is_padded_in_its_copy() {
        let dir = tempfile::tempdir().unwrap();
        let small = dir.path().join("AAVMF_VARS.fd");
        std::fs::write(&small, vec![0xa5u8; 2 << 20]).unwrap();
        let copy = flash_copy(&small, &dir.path().join("vars.fd"), Some(VIRT_FLASH)).unwrap();
        let bytes = std::fs::read(&copy).unwrap();
        assert_eq!(bytes.len() as u64, VIRT_FLASH);
        assert!(
            bytes[..2 << 20].iter().all(|&b| b == 0xa5) && bytes[2 << 20..].iter().all(|&b| b == 0),
            "the content, then zeros"
        );
        assert_eq!(
            std::fs::metadata(&small).unwrap().len(),
            2 << 20,
            "the original is left as it was"
        );
        let unpadded = flash_copy(&small, &dir.path().join("x86-vars.fd"), None).unwrap();
        assert_eq!(std::fs::metadata(unpadded).unwrap().len(), 2 << 20);
        let e = flash_copy(
            &dir.path().join("missing.fd"),
            &dir.path().join("m.fd"),
            None,
        )
        .unwrap_err();
        assert!(e.starts_with("copy ") && e.contains("missing.fd"), "{e}");
    }

    #[test]
    fn a_trial_per_core_as_far_as_the_memory_goes() {
        assert_eq!(default_jobs(2, Some(24 * 1024), 1024), 2);
        assert_eq!(
            default_jobs(16, Some(8 * 1024), 1024),
            6,
            "three quarters of 8 GiB"
        );
        assert_eq!(default_jobs(16, None, 1024), 16);
        assert_eq!(default_jobs(4, Some(1024), 4096), 1, "always one");
        assert_eq!(default_jobs(0, Some(1024), 0), 1);
        assert_eq!(guest_cpus(2, default_jobs(2, Some(24 * 1024), 1024)), 1);
    }

    #[test]
    fn guests_get_two_cpus_unless_the_cores_run_out() {
        assert_eq!(guest_cpus(2, 1), 2);
        assert_eq!(guest_cpus(2, 2), 1);
        assert_eq!(guest_cpus(2, 4), 1);
        assert_eq!(guest_cpus(16, 4), 2);
        assert_eq!(guest_cpus(1, 1), 1);
        assert_eq!(guest_cpus(8, 0), 2);
    }

    #[test]
    fn accel_option_wins_over_the_scenario() {
        let parse =
            |yaml: &str| crate::scenario::Scenario::parse(Path::new("s.yaml"), yaml).unwrap();
        let kvm = parse("iso: s\naccel: kvm\n");
        let plain = parse("iso: s\n");
        let given = |accel| RunOptions {
            accel,
            ..RunOptions::default()
        };
        assert_eq!(accel_choice(&given(None), &kvm), AccelChoice::Kvm);
        assert_eq!(accel_choice(&given(None), &plain), AccelChoice::Auto);
        assert_eq!(
            accel_choice(&given(Some(AccelChoice::Tcg)), &kvm),
            AccelChoice::Tcg
        );
    }
}
