//! The guest's readiness around the checks: a quiet console before they run
//! (kernel and systemd status lines off it), the end of start-up after them,
//! and the units that failed by then.

use crate::checks;
use crate::console::Shell;
use crate::report::FailedUnit;

/// Quiets the console before commands run: kernel messages off it (`dmesg -n
/// 1`), and systemd's status lines too, which it prints while the system is
/// still starting (the checks no longer wait for that): SIGRTMIN+21 to PID 1
/// turns them off (systemd(1); 55 with glibc's SIGRTMIN of 34: dash knows no
/// `RTMIN+n` names). A non-root shell asks `sudo -n`. Best effort: a shell
/// that can do neither, or a system without systemd, skips what it cannot.
/// The report shows when this was done as the phase `settled`.
pub(super) fn quiet_console(shell: &mut Shell<'_>) {
    let quiet = "dmesg -n 1 && kill -55 1";
    let command =
        format!("{{ {quiet}; }} 2>/dev/null || sudo -n sh -c '{quiet}' 2>/dev/null; true");
    if let Err(e) = shell.run(&command, checks::COMMAND_TIMEOUT) {
        tracing::warn!("quieting the console: {}", crate::error::chain(&e));
    }
}

/// The end of start-up, before `what`: after the checks when the scenario
/// has steps, before the failed units are listed (a unit may fail until
/// then) and the steps run (a step may rely on any service), by when the
/// system is usually up and this costs one command; and before a shared
/// boot's save. Best effort: a start-up that does not finish within 60 s is
/// logged with the jobs still running, and what failed so far is listed.
/// Whether start-up is over.
pub(super) fn wait_for_startup(shell: &mut Shell<'_>, what: &str) -> bool {
    match shell.run(STARTUP_WAIT, STARTUP_WITHIN) {
        Ok(out) if !out.output.trim().is_empty() => {
            tracing::warn!(
                "the system did not finish starting before {what}; jobs still running: {}",
                out.output.trim()
            );
            false
        }
        Ok(_) => true,
        Err(e) => {
            tracing::warn!(
                "waiting for the end of start-up: {}",
                crate::error::chain(&e)
            );
            false
        }
    }
}

/// What `wait_for_startup` runs: at most a minute (`STARTUP_WITHIN`, on KVM).
pub(super) const STARTUP_WAIT: &str = "timeout 60 systemctl is-system-running --wait >/dev/null 2>&1 || systemctl list-jobs --no-legend 2>/dev/null; true";
pub(super) const STARTUP_WITHIN: std::time::Duration = std::time::Duration::from_secs(70);

/// What `startup_over` runs.
pub(super) const STARTUP_STATE: &str = "systemctl is-system-running 2>/dev/null";

/// What `failed_units` lists them with.
pub(super) const FAILED_UNITS: &str =
    "systemctl list-units --state=failed --plain --no-legend --no-pager 2>/dev/null";

/// Whether start-up is over, without waiting for it: a scenario without
/// steps gets its verdict once its checks are done, and the units that
/// failed so far are what its report lists. A guest without systemd, or one
/// that cannot say, counts as over.
pub(super) fn startup_over(shell: &mut Shell<'_>) -> bool {
    match shell.run(STARTUP_STATE, checks::COMMAND_TIMEOUT) {
        Ok(out) => !matches!(out.output.trim(), "initializing" | "starting"),
        Err(e) => {
            tracing::warn!(
                "asking whether start-up is over: {}",
                crate::error::chain(&e)
            );
            true
        }
    }
}

/// How many journal lines a failed unit's report shows.
const UNIT_JOURNAL_LINES: usize = 10;

/// The units that failed during the boot (once start-up is over), each with the
/// end of its journal (as root: a user's journalctl sees only its own). Best
/// effort: a guest without systemd, or a shell that cannot answer, has none.
pub(super) fn failed_units(shell: &mut Shell<'_>, is_root: bool) -> Vec<FailedUnit> {
    let units = match shell.run(FAILED_UNITS, checks::COMMAND_TIMEOUT) {
        Ok(o) if o.status == 0 => unit_names(&o.output),
        Ok(_) => return Vec::new(),
        Err(e) => {
            tracing::warn!("listing the failed units: {}", crate::error::chain(&e));
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
                Err(e) => vec![format!("(no journal: {})", crate::error::chain(&e))],
            };
            FailedUnit { unit, journal }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_units_are_the_first_words_of_the_listing() {
        let listing = "rescue-mirror.service loaded failed failed Fetch the rescue tools index\nhome-manager-nixos.service loaded failed failed Home Manager environment for nixos\n";
        assert_eq!(
            unit_names(listing),
            ["rescue-mirror.service", "home-manager-nixos.service"]
        );
        assert!(unit_names("").is_empty());
    }
}
