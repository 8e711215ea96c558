//! How trials run: the options, and the sizes chosen for a host (trials at
//! once, virtual CPUs per guest).

use crate::platform::AccelChoice;
use crate::scenario::Scenario;
use std::path::PathBuf;

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
    /// Virtual CPUs of a shared boot's leader that boots while no other
    /// machine does (the run's one boot at a time): as many as a guest alone
    /// gets. Its clones have as many (under TCG on one host thread each).
    pub lone_cpus: u32,
    /// Leave a failed trial's QEMU running, its console served on a socket
    /// (`Progress::kept`), until it exits or the run is interrupted.
    pub keep_on_failure: bool,
    /// Boot every trial from power-on, never from a shared boot.
    pub fresh_boot: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            accel: None,
            artifacts: PathBuf::from("target/isotest"),
            image: None,
            flake: None,
            cpus: 2,
            lone_cpus: 2,
            keep_on_failure: false,
            fresh_boot: false,
        }
    }
}

impl RunOptions {
    /// `--accel` if given, else the scenario's `accel:` (auto by default).
    pub(super) fn accel_for(&self, scenario: &Scenario) -> AccelChoice {
        self.accel.unwrap_or(scenario.accel)
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

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
        let parse = |yaml: &str| Scenario::parse(Path::new("s.yaml"), yaml).unwrap();
        let kvm = parse("iso: s\naccel: kvm\n");
        let plain = parse("iso: s\n");
        let given = |accel| RunOptions {
            accel,
            ..RunOptions::default()
        };
        assert_eq!(given(None).accel_for(&kvm), AccelChoice::Kvm);
        assert_eq!(given(None).accel_for(&plain), AccelChoice::Auto);
        assert_eq!(
            given(Some(AccelChoice::Tcg)).accel_for(&kvm),
            AccelChoice::Tcg
        );
    }
}
