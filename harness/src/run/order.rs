//! The order of the checks on the guest's shell, with the SSH logins' network
//! parts on threads beside the console; and, without a shell, the checks that
//! still run and those reported as not run.
//!
//! None waits for the whole system: each waits for what it looks at (the sshd
//! check for sshd's units, a Home Manager check for its unit; hostname,
//! autologin and users for nothing). The SSH logins' network parts run on
//! threads of their own while the console checks the users and Home Manager; when
//! sshd is still starting, the users and Home Manager are checked first
//! instead, while it starts. Then, once the system has finished starting, the
//! units that failed during the boot are listed, and the scenario's own steps
//! run, after the logins since a step may change what they look at. Each
//! result goes into `results` as it ends (so that a panic loses none); the
//! report lists them in one order whatever order they ran in
//! (`check_id::report_order`, once the trial is over).

use super::ready;
use crate::check_id::CheckId;
use crate::checks::{self, CheckResult};
use crate::console::{BootOutcome, CommandOutput, Shell};
use crate::report::FailedUnit;
use crate::scenario::{Expect, Step};
use std::path::Path;

/// What the checks on a shell need besides it.
pub(super) struct CheckContext<'a> {
    pub boot: &'a BootOutcome,
    pub expect: &'a Expect,
    /// The forward to the guest's SSH port: (host port, guest port).
    pub forward: Option<(u16, u16)>,
    /// The private directory, for the SSH logins' key.
    pub private: &'a Path,
    /// How much slower than KVM every wait may be.
    pub scale: u32,
    /// The scenario has steps: start-up must be over before them.
    pub steps_follow: bool,
}

/// What the checks without a console shell need.
#[derive(Clone, Copy)]
pub(super) struct NoShell<'a> {
    pub expect: &'a Expect,
    pub steps: &'a [Step],
    /// The host's end of the forward to the guest's SSH port.
    pub ssh_port: Option<u16>,
    pub scale: u32,
}

/// Every check before the scenario's steps, in order; then, when steps
/// follow, the end of start-up; and the units that failed by then.
pub(super) fn run_checks(
    shell: &mut Shell<'_>,
    ctx: &CheckContext<'_>,
    results: &mut Vec<CheckResult>,
) -> FailedUnits {
    // Taken from the saved machine's answers, if any (a single command is
    // never run ahead on its own).
    shell.prefetch(&[checks::IS_ROOT.to_owned()], checks::COMMAND_TIMEOUT);
    let is_root = checks::is_root(shell).unwrap_or(false);
    shell.prefetch(&read_only_probes(is_root, ctx), checks::COMMAND_TIMEOUT);
    console_checks(shell, ctx, results);
    let seen = ctx.expect.sshd.as_ref().map(|_| checks::sshd_units(shell));
    let sshd_starting = seen.as_ref().is_some_and(checks::SshdUnits::starting);
    if sshd_starting {
        users_and_home_manager(shell, is_root, ctx, results);
    }
    let stages = sshd_check(shell, is_root, ctx, seen, results);
    // Each login on a thread of its own: they wait on the network and on
    // the guest's sshd, not on each other.
    let network = std::thread::scope(|scope| {
        let logins: Vec<_> = stages
            .into_iter()
            .map(|stage| scope.spawn(move || stage.run()))
            .collect();
        if !sshd_starting {
            users_and_home_manager(shell, is_root, ctx, results);
        }
        logins
            .into_iter()
            .map(std::thread::ScopedJoinHandle::join)
            .collect::<Result<Vec<_>, _>>()
    });
    match network {
        Ok(done) => results.extend(
            done.into_iter()
                .map(|stage| checks::finish_ssh_login(shell, stage)),
        ),
        // A bug in isotest, not a finding about the ISO: the trial's own
        // catch_unwind classifies it as any other panic.
        Err(payload) => std::panic::resume_unwind(payload),
    }
    shell.forget_prefetched();
    // Units may fail until start-up is over: they are listed after it when
    // steps follow (which wait for it anyway), else as far as they are known;
    // in one exchange with the look at start-up.
    let startup = if ctx.steps_follow {
        ready::STARTUP_WAIT
    } else {
        ready::STARTUP_STATE
    };
    shell.prefetch(
        &[startup.to_owned(), ready::FAILED_UNITS.to_owned()],
        ready::STARTUP_WITHIN,
    );
    let startup_over = if ctx.steps_follow {
        ready::wait_for_startup(shell, "the steps")
    } else {
        ready::startup_over(shell)
    };
    let units = ready::failed_units(shell, is_root);
    // Nothing read ahead may answer a step.
    shell.forget_prefetched();
    FailedUnits {
        units,
        startup_over,
    }
}

/// The commands of the checks that only read the guest, in the order the
/// checks ask them, run together before the checks (`Shell::prefetch`): the
/// console's user and hostname, sshd's units at first sight, each user's
/// account, and each Home Manager user's account and unit at first sight
/// (what the SSH logins read goes with the sshd check's own, just before
/// them). What runs between them and their check (the logins' key going
/// into `~/.ssh`) changes none of it. What a unit still starting may change
/// is read by its check once the unit has settled, never here: a wait in
/// the batch would hold up the checks that need none.
fn read_only_probes(is_root: bool, ctx: &CheckContext<'_>) -> Vec<String> {
    let (boot, expect) = (ctx.boot, ctx.expect);
    let mut probes = Vec::new();
    // The autologin check's, or the console login's.
    if expect.autologin.is_some() || boot.logged_in.by_isotest.is_some() {
        probes.push(checks::WHO_AM_I.to_owned());
    }
    if expect.hostname.is_some() {
        probes.push(checks::HOSTNAME.to_owned());
    }
    if expect.sshd.is_some() {
        probes.push(checks::sshd_units_probe());
    }
    for (name, user) in &expect.users {
        probes.extend(checks::probes::user(is_root, name, user));
    }
    for (name, user) in &expect.users {
        if user.home_manager.is_some() {
            probes.push(checks::probes::user_exists(name));
            probes.push(checks::probes::home_manager_unit(name));
        }
    }
    probes
}

/// Every read-only probe of the checks, run together on a shared boot's
/// machine once start-up is over, just before it is saved: the clones are
/// that machine, and each takes these answers instead of running the
/// commands again (`Shell::hold_saved`); so does the leader. The probes a
/// check runs only once its units have settled are read too (sshd's ports,
/// settings and host keys, taken only when `sshd.service` was active;
/// Home Manager's generation, programs and files), and kept only when the
/// same batch saw those units with no job queued or running: a unit that
/// had one (a timer's, a restart's) is waited for by its check, which then
/// reads it afresh. The console's user (`id -u`) alone when the answers
/// could not be told apart.
pub(super) fn read_before_save(
    shell: &mut Shell<'_>,
    ctx: &CheckContext<'_>,
) -> Vec<(String, CommandOutput)> {
    let Ok(root) = shell.run(checks::IS_ROOT, checks::COMMAND_TIMEOUT) else {
        return Vec::new();
    };
    let is_root = root.output.trim() == "0";
    let first = read_only_probes(is_root, ctx);
    // Each unit's first look, and what its check reads once it has settled.
    let mut settled: Vec<(String, Vec<String>)> = Vec::new();
    if let Some(sshd) = ctx.expect.sshd.as_ref().filter(|s| s.must_run()) {
        settled.push((
            checks::sshd_units_probe(),
            checks::probes::sshd_look(is_root, sshd),
        ));
    }
    for (name, user) in &ctx.expect.users {
        if let Some(hm) = &user.home_manager {
            settled.push((
                checks::probes::home_manager_unit(name),
                checks::probes::home_manager(is_root, name, hm),
            ));
        }
    }
    let mut probes = first.clone();
    probes.extend(settled.iter().flat_map(|(_, after)| after.iter().cloned()));
    let mut seen = std::collections::HashSet::new();
    probes.retain(|p| seen.insert(p.clone()));
    let mut answers = vec![(checks::IS_ROOT.to_owned(), root)];
    if probes.is_empty() {
        return answers;
    }
    let read = shell.read_together(&probes, checks::COMMAND_TIMEOUT);
    answers.extend(settled_only(read, &settled, &first));
    answers
}

/// The answers of a batch (`read`) less those read for a unit that the same
/// batch saw with a job queued or running, or did not see: `settled` pairs
/// each unit's first look with what its check reads once it has settled;
/// what a check reads anyway (`first`) is kept.
fn settled_only(
    read: Vec<(String, CommandOutput)>,
    settled: &[(String, Vec<String>)],
    first: &[String],
) -> Vec<(String, CommandOutput)> {
    let unsettled: Vec<&String> = settled
        .iter()
        .filter(|(look, _)| {
            read.iter()
                .find(|(c, _)| c == look)
                .is_none_or(|(_, a)| checks::probes::unit_pending(&a.output))
        })
        .flat_map(|(_, after)| after.iter().filter(|c| !first.contains(c)))
        .collect();
    read.into_iter()
        .filter(|(c, _)| !unsettled.contains(&c))
        .collect()
}

/// The units that had failed when the checks were done.
pub(super) struct FailedUnits {
    pub units: Vec<FailedUnit>,
    /// False: start-up was still running when they were listed.
    pub startup_over: bool,
}

/// The scenario's own steps, last; then the shell's files go.
pub(super) fn run_steps(shell: &mut Shell<'_>, steps: &[Step], results: &mut Vec<CheckResult>) {
    checks::steps(shell, steps, results);
    shell.remove_files();
}

/// What the console's login says: autologin, isotest's own login, hostname.
fn console_checks(shell: &mut Shell<'_>, ctx: &CheckContext<'_>, results: &mut Vec<CheckResult>) {
    let boot = ctx.boot;
    if let Some(expected) = &ctx.expect.autologin {
        results.push(match &boot.logged_in.by_isotest {
            None => CheckResult::timed(|| checks::autologin(shell, boot, expected)),
            // isotest logged in at a prompt: that prompt is the verdict.
            Some(_) => {
                checks::at_login_prompt(expected, &boot.login_line, boot.login_evidence.clone())
            }
        });
    }
    if let Some(user) = &boot.logged_in.by_isotest {
        results.push(CheckResult::timed(|| {
            checks::console_login(shell, user, boot)
        }));
    }
    if let Some(expected) = &ctx.expect.hostname {
        results.push(CheckResult::timed(|| checks::hostname(shell, expected)));
    }
}

/// The sshd check, and the console part of its SSH logins, whose network part
/// runs beside the console.
fn sshd_check(
    shell: &mut Shell<'_>,
    is_root: bool,
    ctx: &CheckContext<'_>,
    seen: Option<checks::SshdUnits>,
    results: &mut Vec<CheckResult>,
) -> Vec<checks::SshLoginStage> {
    let Some(sshd) = &ctx.expect.sshd else {
        return Vec::new();
    };
    let port = ctx.forward.map(|(host, _)| host).unwrap_or(0);
    let reach = checks::SshdReach {
        port,
        scale: ctx.scale,
    };
    let sshd_check = CheckResult::timed(|| checks::sshd(shell, is_root, sshd, &reach, seen));
    let sshd_ok = sshd_check.passed();
    results.push(sshd_check);
    let context = SshContext {
        sshd,
        port,
        private: ctx.private,
        scale: ctx.scale,
    };
    prepare_logins(shell, is_root, &context, sshd_ok)
}

struct SshContext<'a> {
    sshd: &'a crate::scenario::Sshd,
    port: u16,
    private: &'a Path,
    scale: u32,
}

/// The users' checks, then their Home Manager checks, each added to `results`
/// as it ends.
fn users_and_home_manager(
    shell: &mut Shell<'_>,
    is_root: bool,
    ctx: &CheckContext<'_>,
    results: &mut Vec<CheckResult>,
) {
    let (boot, expect) = (ctx.boot, ctx.expect);
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

/// The console part of the real SSH logins (see `checks::SshAttempt`). They
/// depend on the sshd check: when it failed, they say so instead of failing a
/// second time for the same cause. A login with nothing to try is its result.
fn prepare_logins(
    shell: &mut Shell<'_>,
    is_root: bool,
    ctx: &SshContext<'_>,
    sshd_ok: bool,
) -> Vec<checks::SshLoginStage> {
    if ctx.sshd.login.is_empty() {
        return Vec::new();
    }
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
    let hostname = match shell.run(checks::HOSTNAME, checks::COMMAND_TIMEOUT) {
        Ok(o) if o.status == 0 => o.output.trim().to_owned(),
        Ok(o) => {
            let why = format!(
                "`{}` failed with exit status {}",
                checks::HOSTNAME,
                o.status
            );
            return all(&|n| CheckResult::broken(n, "", &why, Vec::new()));
        }
        Err(e) => {
            return all(&|n| CheckResult::broken(n, "", &crate::error::chain(&e), Vec::new()))
        }
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

/// Without a console shell: every check that needs one, reported as not run
/// (a report must not be silent about an expectation it could not verify),
/// and the SSH password logins, which need none (`ssh_port`: the host's end
/// of the forward).
pub(super) fn without_console_shell(ctx: &NoShell<'_>, why: &str, out: &mut Vec<CheckResult>) {
    let NoShell {
        expect,
        steps,
        ssh_port,
        scale,
    } = *ctx;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(output: &str) -> CommandOutput {
        CommandOutput {
            output: output.into(),
            status: 0,
        }
    }

    /// What a unit's check reads once it has settled is kept only when the
    /// same batch saw that unit without a job; what the checks read anyway
    /// stays, and a unit the batch did not show counts as unsettled.
    #[test]
    fn reads_of_a_unit_with_a_job_are_dropped() {
        let idle = "Job=\nActiveState=active\n";
        let busy = "Job=42\nActiveState=activating\n";
        let settled = [
            (
                "look a".to_owned(),
                vec!["read a".to_owned(), "shared".to_owned()],
            ),
            ("look b".to_owned(), vec!["read b".to_owned()]),
            ("look c".to_owned(), vec!["read c".to_owned()]),
        ];
        let read: Vec<(String, CommandOutput)> = [
            ("look a", busy),
            ("read a", "half made"),
            ("shared", "read anyway"),
            ("look b", idle),
            ("read b", "settled"),
            ("read c", "unseen unit"),
        ]
        .into_iter()
        .map(|(c, o)| (c.to_owned(), answer(o)))
        .collect();
        let first = [
            "look a".to_owned(),
            "look b".to_owned(),
            "shared".to_owned(),
        ];
        let kept: Vec<String> = settled_only(read, &settled, &first)
            .into_iter()
            .map(|(c, _)| c)
            .collect();
        assert_eq!(kept, ["look a", "shared", "look b", "read b"]);
    }
}
