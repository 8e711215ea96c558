//! Waiting for the systemd units a check is about, instead of for the whole
//! system: a check of sshd must not judge sshd while its start job is still
//! queued or running, but need not wait for units it does not look at.

use super::probe::NoEvidence;
use crate::console::{sh_quote, Shell};
use std::time::Duration;

/// How long a check waits for its units' jobs on KVM (stretched under TCG):
/// systemd's own default start timeout is 90 s.
pub const UNIT_TIMEOUT: Duration = Duration::from_secs(90);

/// A unit that still had a job queued or running when the wait ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsettled {
    /// The unit as the check named it.
    pub unit: String,
    /// systemd's job id.
    pub job: String,
}

/// What `settle_units` saw last: the units still with a job, and the whole
/// `systemctl show` of the units, with the properties the check asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settled {
    pub pending: Vec<Unsettled>,
    /// One block of `KEY=value` lines per unit, in the order asked,
    /// separated by blank lines (`Job` and the asked properties).
    pub show: String,
}

/// Waits until none of `units` has a job in systemd's queue (a start that has
/// not begun, or one still running), at most `limit` (already stretched for
/// the accelerator), and returns the last `systemctl show` of them with
/// `props`, so that the check needs no second look. A unit without a job has
/// done what this boot asked of it: it is active, failed, or was never asked
/// to start. systemd has no command that waits for one unit's job
/// (`systemctl is-system-running --wait` waits for all of them), so the guest
/// polls `systemctl show -p Job`, which prints `Job=<id>` while there is one:
/// one `systemctl` when nothing is pending (the clock is read only while
/// something is), a pause between polls otherwise. The units that still have
/// a job when the limit passed are named (a zero limit asks once); the last
/// `systemctl show` must answer, or there is no evidence either way. The
/// loop's variables are `isotest_`-prefixed: it runs in the console's own shell.
pub fn settle_units(
    shell: &mut Shell<'_>,
    units: &[&str],
    props: &[&str],
    limit: Duration,
) -> Result<Settled, NoEvidence> {
    let command = settle_command(units, props, limit);
    // The shell stretches its own timeout; the guest's loop ends first.
    let timeout = limit / shell.scale().max(1) + super::probe::COMMAND_TIMEOUT;
    let out = answer_within(shell, &command, timeout)?;
    Ok(Settled {
        pending: pending_jobs(&out, units),
        show: out,
    })
}

/// The units as a check judges them: a first look (`settle_units` with a
/// zero limit, run ahead with other probes) taken as it is when it found no
/// job; when it found one, or got no answer, or none was taken, a wait of up
/// to `limit`.
pub fn settled_after(
    shell: &mut Shell<'_>,
    units: &[&str],
    props: &[&str],
    first: Option<Result<Settled, NoEvidence>>,
    limit: Duration,
) -> Result<Settled, NoEvidence> {
    match first {
        Some(Ok(seen)) if seen.pending.is_empty() => Ok(seen),
        _ => settle_units(shell, units, props, limit),
    }
}

/// The guest's loop of `settle_units`.
pub(super) fn settle_command(units: &[&str], props: &[&str], limit: Duration) -> String {
    let names: Vec<String> = units.iter().map(|u| sh_quote(u)).collect();
    let flags: String = std::iter::once("Job")
        .chain(props.iter().copied())
        .map(|p| format!(" -p {p}"))
        .collect();
    let show = format!("systemctl show{flags} {}", names.join(" "));
    // The pause between polls is a retry interval; what ends the wait is the job queue.
    format!(
        "isotest_e=; while :; do isotest_s=$({show}); isotest_r=$?; case $isotest_r$isotest_s in 0*Job=[0-9]*) \
         [ -n \"$isotest_e\" ] || isotest_e=$(( $(date +%s) + {} )); \
         if [ \"$(date +%s)\" -lt \"$isotest_e\" ]; then sleep 0.2; continue; fi;; esac; break; done; \
         printf '%s\\n' \"$isotest_s\"; case $isotest_r in 0) ;; *) (exit $isotest_r);; esac",
        limit.as_secs()
    )
}

/// `answer` with a longer timeout than a single command's: only exit status 0 is an answer.
fn answer_within(
    shell: &mut Shell<'_>,
    command: &str,
    timeout: Duration,
) -> Result<String, NoEvidence> {
    match shell.run(command, timeout) {
        Ok(out) if out.status == 0 => Ok(out.output),
        Ok(out) => Err(super::probe::no_answer(command, &out)),
        Err(e) => Err(NoEvidence::of_console(&e)),
    }
}

/// Whether a unit in `systemctl show -p Job` output (`settle_command`'s) has
/// a job queued or running.
pub fn unit_pending(show: &str) -> bool {
    show.split("\n\n").any(|block| job_of(block).is_some())
}

/// The job of a unit's block of `systemctl show` lines: `Job=<digits>`.
fn job_of(block: &str) -> Option<&str> {
    let job = block
        .lines()
        .find_map(|l| l.trim().strip_prefix("Job="))?
        .trim();
    (!job.is_empty() && job.chars().all(|c| c.is_ascii_digit())).then_some(job)
}

/// The units with a job in `systemctl show -p Job` output: one block per unit,
/// in the order asked, separated by blank lines; a block without `Job=<digits>`
/// has none.
fn pending_jobs(show: &str, units: &[&str]) -> Vec<Unsettled> {
    let blocks: Vec<&str> = show.split("\n\n").collect();
    units
        .iter()
        .enumerate()
        .filter_map(|(i, unit)| {
            let job = job_of(blocks.get(i).copied().unwrap_or(""))?;
            Some(Unsettled {
                unit: (*unit).to_owned(),
                job: job.to_owned(),
            })
        })
        .collect()
}

/// The problem a check reports for units that never settled: it names them.
pub fn unsettled_problem(pending: &[Unsettled], limit: Duration) -> String {
    let named: Vec<String> = pending
        .iter()
        .map(|p| format!("{} (job {})", p.unit, p.job))
        .collect();
    format!(
        "{} still starting after {} s: its start job never finished",
        named.join(", "),
        limit.as_secs()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::local::LocalShell;

    #[test]
    fn jobs_from_systemctl_show() {
        // systemctl prints `Job=` for a unit without a job when the property is asked for.
        let show = "Job=\n\nJob=1234\n";
        let pending = pending_jobs(show, &["sshd.service", "sshd.socket"]);
        assert_eq!(
            pending,
            vec![Unsettled {
                unit: "sshd.socket".into(),
                job: "1234".into()
            }]
        );
        // Older systemctl prints nothing for no job: an empty block.
        assert!(pending_jobs("\n\n", &["a.service", "b.service"]).is_empty());
        assert!(pending_jobs("", &["a.service"]).is_empty());
        assert!(unit_pending(show));
        assert!(!unit_pending("Job=\nActiveState=active\n\nJob=\n"));
        assert!(!unit_pending(""));
    }

    /// The guest's loop against a fake `systemctl` on a local /bin/sh, through
    /// the same console and framing as a guest's shell: a job that finishes
    /// ends the wait early; one that never does ends it at the limit, named.
    #[test]
    fn the_wait_ends_when_the_job_does_or_names_the_unit_at_the_limit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        // Pending for the first 3 polls of `slow.service`; `stuck.service` forever.
        let fake = format!(
            "#!/bin/sh\nn=$(cat {d}/polls 2>/dev/null || echo 0); n=$((n+1)); echo $n > {d}/polls\n\
             for u in \"$@\"; do case $u in *.service) ;; *) continue;; esac\n\
             [ -n \"$first\" ] && echo; first=1\n\
             case $u in slow.service) [ $n -le 3 ] && echo Job=7 || echo Job=;; stuck.service) echo Job=9;; *) echo Job=;; esac\n\
             case \" $* \" in *\" ActiveState \"*) echo ActiveState=active;; esac\n\
             done\n",
            d = dir.path().display()
        );
        let systemctl = bin.join("systemctl");
        std::fs::write(&systemctl, fake).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&systemctl, std::fs::Permissions::from_mode(0o755)).unwrap();

        let mut local = LocalShell::start(Some(&bin), |console_side| console_side);
        let mut shell = local.shell();
        let started = std::time::Instant::now();
        let settled = settle_units(
            &mut shell,
            &["slow.service", "other.service"],
            &[],
            Duration::from_secs(20),
        )
        .expect("an answer");
        assert!(settled.pending.is_empty(), "{settled:?}");
        assert_eq!(settled.show, "Job=\n\nJob=\n");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the wait did not end with the job"
        );

        // Nothing pending: one look, with the properties asked for.
        let polls = || {
            std::fs::read_to_string(dir.path().join("polls"))
                .unwrap()
                .trim()
                .parse::<u32>()
                .unwrap()
        };
        let before = polls();
        let settled = settle_units(
            &mut shell,
            &["other.service"],
            &["ActiveState"],
            Duration::from_secs(20),
        )
        .expect("an answer");
        assert_eq!(
            (settled.pending.len(), settled.show.as_str()),
            (0, "Job=\nActiveState=active\n")
        );
        assert_eq!(
            polls(),
            before + 1,
            "more than one systemctl for a unit without a job"
        );

        let started = std::time::Instant::now();
        let limit = Duration::from_secs(2);
        let pending = settle_units(&mut shell, &["other.service", "stuck.service"], &[], limit)
            .expect("an answer")
            .pending;
        assert_eq!(
            pending,
            vec![Unsettled {
                unit: "stuck.service".into(),
                job: "9".into()
            }]
        );
        assert!(
            started.elapsed() >= Duration::from_secs(1),
            "gave up before the limit"
        );
        assert_eq!(
            unsettled_problem(&pending, limit),
            "stuck.service (job 9) still starting after 2 s: its start job never finished"
        );
    }

    /// A systemctl that cannot answer (as without a system bus): no
    /// evidence, never "settled".
    #[test]
    fn a_systemctl_without_answer_is_no_evidence() {
        let dir = tempfile::tempdir().expect("tempdir");
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let systemctl = bin.join("systemctl");
        std::fs::write(
            &systemctl,
            "#!/bin/sh\necho 'Failed to connect to bus: No such file or directory' >&2\nexit 1\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&systemctl, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut local = LocalShell::start(Some(&bin), |console_side| console_side);
        let mut shell = local.shell();
        let e = settle_units(&mut shell, &["sshd.service"], &[], Duration::from_secs(2))
            .expect_err("no answer");
        assert!(
            e.message
                .contains("failed with exit status 1: Failed to connect to bus"),
            "{}",
            e.message
        );
        // The loop keeps systemctl's status: 127 (as from a shell that finds
        // no systemctl) is a missing tool, not a failure.
        std::fs::write(&systemctl, "#!/bin/sh\nexit 127\n").unwrap();
        let e = settle_units(&mut shell, &["sshd.service"], &[], Duration::from_secs(2))
            .expect_err("no answer");
        assert!(
            e.message
                .contains("a tool is missing on the guest (exit status 127)"),
            "{}",
            e.message
        );
    }
}
