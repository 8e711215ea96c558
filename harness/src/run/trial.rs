//! One trial from start to report, as stages: fresh artifacts and room for
//! them, the ISO and the expectations, QEMU started, the boot to a shell, the
//! checks in their order. Each stage returns what it found, and the report is
//! assembled from it as the trial goes, so that a panic (a bug in isotest)
//! loses nothing found before it.

use super::boot_end::{self, BootEnd};
use super::classify::{self, Ended};
use super::host::{self, HostError};
use super::kept::KeptMachine;
use super::observe::Progress;
use super::options::RunOptions;
use super::order::{self, CheckContext, NoShell};
use super::restore::{self, AtShell, Restored};
use super::share::{Leader, Share};
use super::start::{self, How, Start, StartFrom, Started};
use super::{ready, resolve};
use crate::checks;
use crate::console::{boot_to_shell, BootError, BootOutcome, Credentials, SerialConsole, Shell};
use crate::plan::Trial;
use crate::qemu::{Machine, PrivateDir};
use crate::report::{SharedBoot, SharedRole, TrialError, TrialReport, Verdict};
use crate::scenario::{Expect, Origins};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Runs one trial; every outcome, including errors and skips, is a report.
/// It boots alone, whatever `options.fresh_boot` says: sharing a boot takes
/// other trials (`run_trials`).
pub fn run_trial(trial: &Trial, options: &RunOptions) -> TrialReport {
    run_trial_observed(trial, options, &|_: &TrialReport| (), Share::Fresh(None)).0
}

/// What every stage of a trial may read.
struct TrialContext<'a> {
    trial: &'a Trial,
    options: &'a RunOptions,
    artifacts: &'a Path,
    started: Instant,
    on_phase: crate::console::PhaseObserver<'a>,
}

/// What the stages found so far: kept outside the trial's `catch_unwind`.
struct SoFar {
    report: TrialReport,
    origins: Origins,
    /// The machine, when `keep_on_failure` asks for it.
    kept: Option<KeptMachine>,
}

/// `run_trial`, telling `progress` of each phase, its boot shared as `share`
/// says; with `keep_on_failure`, a failed trial's QEMU comes back with the report.
pub(super) fn run_trial_observed(
    trial: &Trial,
    options: &RunOptions,
    progress: &dyn Progress,
    share: Share<'_>,
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
    let on_phase = |phase| progress.phase(trial, phase);
    let ctx = TrialContext {
        trial,
        options,
        artifacts: &artifacts,
        started,
        on_phase: &on_phase,
    };
    let mut so_far = SoFar {
        report,
        origins: Origins::default(),
        kept: None,
    };
    // A panic (a bug in isotest) ends this trial, not the run: its machine is
    // dropped as it unwinds, and the report says what was done before it.
    let executed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        stages(&ctx, &mut so_far, share)
    }));
    let SoFar {
        mut report,
        origins,
        kept,
    } = so_far;
    match executed {
        Ok(Ok(())) => {}
        Ok(Err(e)) => report.error = Some(e),
        Err(payload) => report.error = Some(classify::panicked(payload.as_ref(), &report.checks)),
    }
    finish(&mut report, &origins, started);
    // Only a failure is worth a look; a machine that passed is stopped as usual.
    let failed = report.verdict == Verdict::Fail;
    (report, kept.filter(|_| failed))
}

/// The report's last words: its checks in their order with their origins,
/// the time, the verdict; then report.json.
fn finish(report: &mut TrialReport, origins: &Origins, started: Instant) {
    report
        .checks
        .sort_by_key(|c| crate::check_id::report_order(&c.name));
    for check in &report.checks {
        if let Some(origin) = origins.of_check(&check.name) {
            report.origins.insert(check.name.to_string(), origin);
        }
    }
    report.total_secs = started.elapsed().as_secs_f64();
    report.verdict = Verdict::judge(report.error.as_ref(), &report.checks);
    write_json(report);
}

/// The trial up to its verdict, each stage's findings put in the report.
/// A follower whose restore fails boots from power-on instead.
fn stages(ctx: &TrialContext<'_>, out: &mut SoFar, mut share: Share<'_>) -> Result<(), TrialError> {
    let TrialContext { trial, options, .. } = *ctx;
    host::fresh_dir(ctx.artifacts)?;
    host::enough_space(ctx.artifacts)?;
    let source = resolve::flake_host(trial, options)?;
    out.report.flake = source.as_ref().map(|s| s.attr(trial));
    let resolved = resolve::resolve(trial, options, source.as_ref())?;
    out.report.build_secs = resolved.build_secs;
    out.origins = resolved.origins;
    out.report.image = Some(resolved.image.clone());
    let expect = resolved.expect;
    let credentials = console_credentials(trial.scenario.boot.login.as_ref())?;
    let mut from = StartFrom {
        trial,
        options,
        artifacts: ctx.artifacts,
        image: resolved.image,
        guest_ssh_port: resolve::guest_ssh_port(&expect),
        cpus: options.cpus,
        how: How::Boot,
    };
    if let Share::Follow(saved) = &share {
        let saved = saved.clone();
        match restore::restore(&from, &saved, &mut |start| {
            record_start(start, &mut out.report)
        }) {
            Ok(restored) => return restored_trial(ctx, restored, &saved, &expect, out),
            Err(e) => {
                let reason = format!("restoring its state failed: {}", crate::error::chain(&e));
                tracing::warn!(trial = %trial.name(), "booting afresh: {reason}");
                set_aside_failed_restore(ctx.artifacts);
                share = Share::Fresh(Some(SharedBoot {
                    booted_by: saved.booted_by.clone(),
                    role: SharedRole::Fresh { reason },
                }));
            }
        }
    }
    if let Share::Fresh(Some(why)) = &share {
        out.report.shared = Some(why.clone());
    }
    if let Share::Lead(leader) = &share {
        from.how = How::BootToSave;
        from.cpus = leader.cpus;
    }
    let start = start::start(&from);
    record_start(&start, &mut out.report);
    let started = start.started?;
    let saving = match &mut share {
        Share::Lead(leader) => Some(Saving {
            leader,
            image: from.image,
            key: started.state_key.clone(),
        }),
        _ => None,
    };
    let mut session = Session::attach(started, ctx.artifacts)?;
    let boot = boot_to_shell(
        &mut session.console,
        &session.choice,
        credentials.as_ref(),
        Default::default(),
        session.scale,
        ctx.started + trial.scenario.timeout,
        ctx.on_phase,
    );
    let result = session.after_boot(boot, ctx, &expect, &mut out.report, saving);
    session.end(ctx, out, result)
}

/// What a leader needs to save its machine for its followers.
struct Saving<'a, 'b> {
    leader: &'a mut Leader<'b>,
    /// The ISO it boots, known again by its content.
    image: PathBuf,
    /// What a state it saves may be restored by.
    key: crate::qemu::StateKey,
}

/// The failed restore's files, named `restore-failed-*`: the fresh boot's
/// are the trial's own.
fn set_aside_failed_restore(artifacts: &Path) {
    let _ = std::fs::remove_file(artifacts.join(restore::SHARED_TRANSCRIPT));
    for file in [
        "console.log",
        "console.raw",
        crate::console::COMMAND_LOG,
        "qemu.stderr",
        "qmp.log",
    ] {
        let _ = std::fs::rename(
            artifacts.join(file),
            artifacts.join(format!("restore-failed-{file}")),
        );
    }
}

/// What the report records of a start: the accelerator and why, and QEMU's run.
fn record_start(start: &Start, report: &mut TrialReport) {
    if let Some(decision) = &start.accel {
        report.accel = Some(decision.accel.as_str().to_owned());
        report.accel_note = decision.note.clone();
    }
    report.qemu = start.qemu.clone();
}

/// A follower's trial from its restored shell on: the shared boot's phases
/// and outcome, its own checks.
fn restored_trial(
    ctx: &TrialContext<'_>,
    restored: Restored,
    saved: &super::share::SavedBoot,
    expect: &Expect,
    out: &mut SoFar,
) -> Result<(), TrialError> {
    let Restored {
        started,
        console,
        shared,
        files,
    } = restored;
    out.report.phases = saved.phases.clone();
    out.report.shared = Some(shared);
    // Its own shell answers: the checks run from here.
    (ctx.on_phase)(crate::console::Phase::Shell);
    let mut session = Session::new(started, console);
    let mut shell = Shell::new(&mut session.console, session.scale).with_files(files);
    shell.hold_saved(saved.answers.clone());
    let checks = CheckContext {
        boot: &saved.outcome,
        expect,
        forward: session.forward,
        private: session.private.path(),
        scale: session.scale,
        steps_follow: !ctx.trial.scenario.steps.is_empty(),
    };
    checks_and_steps(
        &mut shell,
        &checks,
        &ctx.trial.scenario.steps,
        &mut out.report,
    );
    drop(shell);
    let result = session.exited_under_checks(&out.report.checks);
    session.end(ctx, out, result)
}

/// The scenario's `boot.login`, its password read from the environment.
fn console_credentials(
    login: Option<&crate::scenario::SshLogin>,
) -> Result<Option<Credentials>, HostError> {
    let Some(login) = login else { return Ok(None) };
    let password = checks::password_of(login).map_err(HostError::Credentials)?;
    Ok(Some(Credentials {
        user: login.user.clone(),
        password,
    }))
}

/// A started machine with its serial console attached.
struct Session {
    machine: Machine,
    private: PrivateDir,
    console: SerialConsole,
    choice: crate::menu::BootChoice,
    scale: u32,
    forward: Option<(u16, u16)>,
}

impl Session {
    fn attach(mut started: Started, artifacts: &Path) -> Result<Session, HostError> {
        let console = started
            .attach_console(artifacts)
            .map_err(HostError::AttachConsole)?;
        Ok(Session::new(started, console))
    }

    fn new(started: Started, console: SerialConsole) -> Session {
        let Started {
            machine,
            private,
            choice,
            scale,
            forward,
            state_key: _,
        } = started;
        Session {
            machine,
            private,
            console,
            choice,
            scale,
            forward,
        }
    }

    /// The trial's end: the machine kept when a failed trial asks for it
    /// (`keep_on_failure`), else stopped as the session drops.
    fn end(
        self,
        ctx: &TrialContext<'_>,
        out: &mut SoFar,
        result: Result<(), TrialError>,
    ) -> Result<(), TrialError> {
        if ctx.options.keep_on_failure {
            out.kept = self.keep();
        }
        result
    }

    /// From the boot's outcome on: the checks on the shell (a leader's
    /// machine saved first, once the console is quiet), or the boot's
    /// failure with QEMU's view of it. Checks go into the report as they end.
    fn after_boot(
        &mut self,
        boot: Result<BootOutcome, BootError>,
        ctx: &TrialContext<'_>,
        expect: &Expect,
        report: &mut TrialReport,
        saving: Option<Saving<'_, '_>>,
    ) -> Result<(), TrialError> {
        let steps = &ctx.trial.scenario.steps;
        let boot = match boot {
            Ok(boot) => boot,
            Err(e) => {
                // Without a console shell, what needs none still runs (the SSH password logins).
                let no_shell = NoShell {
                    expect,
                    steps,
                    ssh_port: self.forward.map(|(host, _)| host),
                    scale: self.scale,
                };
                let BootEnd { error, screendump } = boot_end::boot_failed(
                    e,
                    &mut self.machine,
                    &no_shell,
                    ctx.artifacts,
                    &mut report.checks,
                );
                report.screendump = screendump;
                return error.map_or(Ok(()), Err);
            }
        };
        report.phases = boot
            .phases
            .iter()
            .map(|(p, t)| ((*p).into(), t.as_secs_f64()))
            .collect();
        tracing::info!(trial = %ctx.trial.name(), "shell on the serial console after {:.1} s", report.boot_secs().unwrap_or_default());
        let transcript = self.console.transcript().to_owned();
        let mut shell = Shell::new(&mut self.console, self.scale);
        let settle_started = Instant::now();
        ready::quiet_console(&mut shell);
        let shell_at = report.boot_secs().unwrap_or_default();
        report.phases.push((
            crate::report::TrialPhase::Settled,
            shell_at + settle_started.elapsed().as_secs_f64(),
        ));
        let checks = CheckContext {
            boot: &boot,
            expect,
            forward: self.forward,
            private: self.private.path(),
            scale: self.scale,
            steps_follow: !steps.is_empty(),
        };
        if let Some(saving) = saving {
            // Saved once start-up is over: a state saved in the middle of it
            // would make every clone finish it again (3.6 s of sshd's start
            // per clone on the rescue fixture under TCG), two at a time on
            // two cores. The bound is wait_for_startup's: a start-up that
            // never ends is saved as it stands, and its checks' probes are
            // then left to each clone.
            let answers = if ready::wait_for_startup(&mut shell, "the shared boot's save") {
                order::read_before_save(&mut shell, &checks)
            } else {
                Vec::new()
            };
            // Nothing of isotest's in the guest's /tmp for the others to inherit.
            shell.remove_files();
            shell.hold_saved(answers.clone());
            let trial = ctx.trial.name();
            let at = AtShell {
                trial: &trial,
                image: &saving.image,
                key: &saving.key,
                outcome: &boot,
                phases: &report.phases,
                transcript: &transcript,
                memory_mib: ctx.trial.scenario.memory_mib,
                answers,
            };
            let shared =
                restore::save(saving.leader, &mut self.machine, at).map_err(HostError::Resume)?;
            report.shared = Some(shared);
        }
        checks_and_steps(&mut shell, &checks, steps, report);
        drop(shell);
        self.exited_under_checks(&report.checks)
    }

    /// A guest that rebooted or a QEMU that died under the checks leaves them
    /// broken ("the console closed"); the trial says why once. A check that
    /// failed before the host's fault still fails the trial.
    fn exited_under_checks(&mut self, checks: &[checks::CheckResult]) -> Result<(), TrialError> {
        if !self.console.closed() && self.machine.exit_status().is_none() {
            return Ok(());
        }
        let exit = self.machine.why_exited();
        let ended = Ended::ExitedDuringChecks {
            exit: exit.describe(),
        };
        Err(classify::qemu_exited(
            ended,
            &exit,
            classify::a_check_failed(checks),
        ))
    }

    /// The machine left running, its console served on a socket.
    fn keep(self) -> Option<KeptMachine> {
        KeptMachine::new(self.machine, self.private, self.console)
            .map_err(|e| tracing::warn!("cannot serve the kept machine's console: {e}"))
            .ok()
    }
}

/// The checks and the scenario's steps on the shell, into the report as
/// they end.
fn checks_and_steps(
    shell: &mut Shell<'_>,
    checks: &CheckContext<'_>,
    steps: &[crate::scenario::Step],
    report: &mut TrialReport,
) {
    let failed = order::run_checks(shell, checks, &mut report.checks);
    report.failed_units = failed.units;
    report.startup_unfinished = !failed.startup_over;
    order::run_steps(shell, steps, &mut report.checks);
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

/// The report of a trial before anything happened.
fn empty_report(trial: &Trial, artifacts: std::path::PathBuf) -> TrialReport {
    TrialReport::new(
        trial.name(),
        trial.scenario.name.clone(),
        trial.arch.to_string(),
        trial.firmware.to_string(),
        artifacts,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::{Arch, Firmware};

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
}
