//! How many trials boot at once (`--jobs`) and with how many virtual CPUs each
//! (`--cpus`), from what the user asked for and what the host has.

use crate::plan::Trial;

/// What a run is sized against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Host {
    pub cores: usize,
    /// All of its memory; `None` when it could not be read.
    pub memory_mib: Option<u64>,
}

impl Host {
    /// This machine.
    pub fn this() -> Host {
        Host {
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_mib: crate::run::host_memory_mib(),
        }
    }
}

/// Trials at once, and virtual CPUs per guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizing {
    pub jobs: usize,
    pub cpus: u32,
    /// Virtual CPUs of a guest that boots while no other does (a shared
    /// boot's leader when it is the run's one boot at a time): `cpus` as
    /// given, else what one guest alone gets.
    pub lone_cpus: u32,
}

impl Sizing {
    /// `jobs` and `cpus` as given, else the defaults for `trials` on `host`:
    /// as many jobs as cores and memory allow (`run::default_jobs`), and as
    /// many vCPUs as leave no core over-subscribed by the guests that boot at
    /// once (`run::guest_cpus`), which are never more than the trials that
    /// boot.
    pub fn of(trials: &[Trial], host: Host, jobs: Option<u32>, cpus: Option<u32>) -> Sizing {
        let largest = trials
            .iter()
            .map(|t| t.scenario.memory_mib)
            .max()
            .unwrap_or(0);
        let jobs = jobs.map_or_else(
            || crate::run::default_jobs(host.cores, host.memory_mib, largest),
            |j| j as usize,
        );
        let booting = trials.iter().filter(|t| t.skip.is_none()).count();
        let at_once = jobs.min(booting).max(1);
        Sizing {
            jobs,
            cpus: cpus.unwrap_or_else(|| crate::run::guest_cpus(host.cores, at_once)),
            lone_cpus: cpus.unwrap_or_else(|| crate::run::guest_cpus(host.cores, 1)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Scenario;
    use std::path::Path;
    use std::sync::Arc;

    /// `n` trials of a guest of `memory`, `skipped` of them skipped.
    fn trials(n: usize, skipped: usize, memory: &str) -> Vec<Trial> {
        let yaml = format!("iso: a\narch: x86_64\nfirmware: bios\nmemory: {memory}\n");
        let scenario = Arc::new(Scenario::parse(Path::new("a.yaml"), &yaml).unwrap());
        let one = crate::plan::trials(&[scenario]).remove(0);
        (0..n)
            .map(|i| Trial {
                skip: (i < skipped).then(|| "no firmware".to_owned()),
                ..one.clone()
            })
            .collect()
    }

    const TWO_CORES: Host = Host {
        cores: 2,
        memory_mib: Some(8192),
    };

    #[test]
    fn options_given_are_kept() {
        let s = Sizing::of(&trials(4, 0, "2G"), TWO_CORES, Some(3), Some(4));
        assert_eq!(
            s,
            Sizing {
                jobs: 3,
                cpus: 4,
                lone_cpus: 4
            }
        );
    }

    #[test]
    fn by_default_one_trial_per_core_with_one_vcpu_each() {
        let s = Sizing::of(&trials(4, 0, "1G"), TWO_CORES, None, None);
        assert_eq!(
            s,
            Sizing {
                jobs: 2,
                cpus: 1,
                lone_cpus: 2
            }
        );
    }

    #[test]
    fn memory_bounds_the_default_jobs() {
        let host = Host {
            cores: 8,
            memory_mib: Some(4096),
        };
        let s = Sizing::of(&trials(8, 0, "1G"), host, None, None);
        assert_eq!((s.jobs, s.cpus), (3, 2));
        let unknown = Host {
            memory_mib: None,
            ..host
        };
        assert_eq!(Sizing::of(&trials(8, 0, "1G"), unknown, None, None).jobs, 8);
    }

    #[test]
    fn one_booting_trial_gets_two_vcpus() {
        // Skipped trials never boot, so they take no core.
        let s = Sizing::of(&trials(3, 2, "1G"), TWO_CORES, None, None);
        assert_eq!((s.jobs, s.cpus), (2, 2));
        let s = Sizing::of(&trials(1, 0, "1G"), TWO_CORES, Some(4), None);
        assert_eq!(s.cpus, 2);
        assert_eq!(Sizing::of(&[], TWO_CORES, None, None).cpus, 2);
    }

    #[test]
    fn two_at_once_on_two_cores_get_one_vcpu() {
        let s = Sizing::of(&trials(2, 0, "1G"), TWO_CORES, Some(2), None);
        assert_eq!(s.cpus, 1);
    }
}
