//! A run with a baseline: each trial's report on the known-good ISO beside its
//! report now, compared by the trial's scenario's `max_slowdown:`.

use crate::plan::Trial;
use crate::report::{Comparison, TrialReport};

/// The comparison of `now` with `baselines`, both in the order of `trials`;
/// a trial without a baseline report (none given, or no `baseline:` in its
/// scenario) is left out. `None` when no trial has one: there was no baseline.
pub fn compare(
    trials: &[Trial],
    baselines: &[Option<TrialReport>],
    now: &[TrialReport],
) -> Option<Comparison> {
    if baselines.iter().all(Option::is_none) {
        return None;
    }
    let pairs = trials
        .iter()
        .zip(baselines)
        .zip(now)
        .filter_map(|((trial, base), now)| {
            Some((Some(base.as_ref()?), Some(now), trial.scenario.max_slowdown))
        });
    Some(Comparison::of_pairs(pairs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::sample;
    use crate::report::Verdict;
    use crate::scenario::Scenario;
    use std::path::Path;
    use std::sync::Arc;

    fn trials() -> Vec<Trial> {
        let yaml = "iso: rescue\narch: x86_64\nfirmware: [bios, uefi]\nmax_slowdown: { fraction: 0.5, seconds: 0 }\n";
        let scenario = Scenario::parse(Path::new("rescue.yaml"), yaml).unwrap();
        crate::plan::trials(&[Arc::new(scenario)])
    }

    fn reports(verdicts: [Verdict; 2]) -> Vec<TrialReport> {
        trials()
            .iter()
            .zip(verdicts)
            .map(|(t, v)| sample(&t.name(), v))
            .collect()
    }

    #[test]
    fn no_baseline_no_comparison() {
        let now = reports([Verdict::Pass, Verdict::Pass]);
        assert_eq!(compare(&trials(), &[None, None], &now), None);
    }

    #[test]
    fn each_trial_with_a_baseline_is_paired_with_its_own() {
        let [bios, _] = <[TrialReport; 2]>::try_from(reports([Verdict::Pass, Verdict::Pass]))
            .unwrap_or_else(|_| unreachable!());
        let now = reports([Verdict::Fail, Verdict::Pass]);
        let c = compare(&trials(), &[Some(bios), None], &now).unwrap();
        let names: Vec<&str> = c.trials.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["rescue::x86_64::bios"]);
        assert!(c.has_regressions(), "{c:?}");
    }

    #[test]
    fn the_scenarios_max_slowdown_judges_the_phases() {
        let base = reports([Verdict::Pass, Verdict::Pass]);
        let slower = |factor: f64| {
            let mut now = base.clone();
            for (_, secs) in &mut now[1].phases {
                *secs *= factor;
            }
            now
        };
        let given: Vec<_> = base.iter().cloned().map(Some).collect();
        let within = compare(&trials(), &given, &slower(1.4)).unwrap();
        assert_eq!(within.trials.len(), 2);
        assert!(!within.has_regressions(), "{within:?}");
        let beyond = compare(&trials(), &given, &slower(1.6)).unwrap();
        assert!(beyond.has_regressions(), "{beyond:?}");
    }
}
