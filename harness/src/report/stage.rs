//! A trial's timeline in stages (firmware, menu, kernel, userspace, checks):
//! the HTML report's bars and the baseline comparison's rows.

use super::phase::TrialPhase;
use super::trial::TrialReport;
use crate::console::Phase;

/// A stretch of a trial's timeline, in seconds from power-on.
#[derive(Debug, Clone, Copy)]
pub(super) struct Stage {
    pub(super) name: &'static str,
    pub(super) start: f64,
    pub(super) len: f64,
}

/// A stage runs from its phase to the next: the firmware until the boot menu,
/// the menu until the kernel, the kernel until userspace, userspace until the
/// shell settled; then the checks, for as long as they took.
pub(super) fn stages(t: &TrialReport) -> Vec<Stage> {
    let stage_of = |phase: &TrialPhase| match phase {
        TrialPhase::Boot(Phase::PowerOn) => Some("firmware"),
        TrialPhase::Boot(Phase::BootMenu) => Some("menu"),
        TrialPhase::Boot(Phase::Kernel) => Some("kernel"),
        TrialPhase::Boot(Phase::Userspace | Phase::LoginPrompt | Phase::Shell) => Some("userspace"),
        TrialPhase::Boot(Phase::TextModeKey) | TrialPhase::Settled | TrialPhase::Other(_) => None,
    };
    let mut stages: Vec<Stage> = Vec::new();
    for (i, (phase, at)) in t.phases.iter().enumerate() {
        let (Some(name), Some((_, next))) = (stage_of(phase), t.phases.get(i + 1)) else {
            continue;
        };
        match stages.last_mut() {
            Some(last) if last.name == name => last.len = next - last.start,
            _ => stages.push(Stage {
                name,
                start: *at,
                len: next - at,
            }),
        }
    }
    let checks: f64 = t.checks.iter().map(|c| c.secs).sum();
    let end = t.phases.last().map(|(_, at)| *at).unwrap_or(0.0);
    if checks > 0.0 {
        stages.push(Stage {
            name: "checks",
            start: end,
            len: checks,
        });
    }
    stages
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::trial::tests::sample;
    use crate::report::trial::Verdict;

    #[test]
    fn stages_follow_the_phases_then_the_checks() {
        let t = sample("rescue::x86_64::bios", Verdict::Pass);
        let names: Vec<&str> = stages(&t).iter().map(|s| s.name).collect();
        assert_eq!(names, ["firmware", "menu", "kernel", "userspace", "checks"]);
        let userspace = stages(&t)[3];
        assert!(
            (userspace.start - 19.9).abs() < 1e-9 && (userspace.len - (46.46 - 19.9)).abs() < 1e-9,
            "{userspace:?}"
        );
    }
}
