//! The comparison of a run with a run of a known-good ISO (the baseline): the
//! same trials, the same expectations, side by side. Decided here, once; the
//! terminal, JUnit, HTML and JSON renderers only read it.
//!
//! Per check (and the boot itself, as `boot`):
//!
//! | baseline | now | change |
//! |---|---|---|
//! | passed | passed | unchanged |
//! | passed | failed, broken, not run or absent | **regression** |
//! | failed (or absent) | passed | fixed |
//! | failed (or absent) | failed (or absent) | still failing |
//!
//! Per stage of the boot (firmware, menu, kernel, userspace, checks, as the HTML
//! timeline draws them) and for the whole way to a shell: slower than on the
//! baseline by more than `max_slowdown.fraction` of the baseline's time *and* by
//! more than `max_slowdown.seconds` is a **regression**.
//!
//! A trial skipped or "could not test" on either side is not compared: nothing
//! was learned there, so nothing regressed.

use super::stage::stages;
use super::trial::{TrialReport, Verdict};
use crate::check_id::CheckId;
use crate::checks::Outcome;
use crate::scenario::MaxSlowdown;
use serde::{Deserialize, Serialize};

/// Every compared trial of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub trials: Vec<TrialComparison>,
}

/// One trial on the baseline and now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrialComparison {
    pub name: String,
    /// The baseline ISO, when the report says which.
    pub baseline_image: Option<std::path::PathBuf>,
    /// Why the trial was not compared (absent or not run on one side); then
    /// `checks` and `phases` are empty.
    pub not_compared: Option<String>,
    pub checks: Vec<CheckComparison>,
    pub phases: Vec<PhaseComparison>,
    /// The threshold the phases were judged by.
    pub max_slowdown: MaxSlowdown,
}

/// A check on both sides. `None`: the side has no such check (its boot died
/// before it, or its scenario did not have it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckComparison {
    pub name: String,
    pub baseline: Option<Outcome>,
    pub now: Option<Outcome>,
    pub change: Change,
    /// What the side that did not pass said (now's, else the baseline's).
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Change {
    Regression,
    StillFailing,
    Fixed,
    Unchanged,
}

impl Change {
    /// The word the reports show.
    pub fn label(self) -> &'static str {
        match self {
            Change::Regression => "REGRESSION",
            Change::StillFailing => "still failing",
            Change::Fixed => "fixed",
            Change::Unchanged => "unchanged",
        }
    }

    /// The change from a check's outcome on the baseline to its outcome now.
    fn of(baseline: Option<Outcome>, now: Option<Outcome>) -> Change {
        let passed = |o: Option<Outcome>| o == Some(Outcome::Pass);
        match (passed(baseline), passed(now)) {
            (true, true) => Change::Unchanged,
            (true, false) => Change::Regression,
            (false, true) => Change::Fixed,
            (false, false) => Change::StillFailing,
        }
    }
}

/// A stage's duration on both sides, and whether it is a regression.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseComparison {
    pub name: String,
    pub baseline_secs: f64,
    pub now_secs: f64,
    /// Slower beyond the threshold: by more than the fraction and the seconds.
    pub slower: bool,
}

/// One regression, for the reports' lists.
#[derive(Debug, Clone, PartialEq)]
pub struct Regression<'a> {
    pub trial: &'a str,
    /// `hostname`, or `phase kernel`.
    pub what: String,
    /// What changed, in one line.
    pub detail: String,
}

/// Counts of the changes, for the summary line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChangeCounts {
    pub regressions: usize,
    pub still_failing: usize,
    pub fixed: usize,
    pub unchanged: usize,
    pub not_compared: usize,
}

impl Comparison {
    /// Pairs of (baseline, now) trials, compared; `max_slowdown` of each pair.
    pub fn of_pairs<'a>(
        pairs: impl IntoIterator<
            Item = (
                Option<&'a TrialReport>,
                Option<&'a TrialReport>,
                MaxSlowdown,
            ),
        >,
    ) -> Comparison {
        Comparison {
            trials: pairs
                .into_iter()
                .map(|(b, n, m)| TrialComparison::of(b, n, m))
                .collect(),
        }
    }

    /// Two stored runs, trials paired by name (in the new run's order, then
    /// those only the baseline has), each judged by `max_slowdown`.
    pub fn by_name(
        baseline: &[TrialReport],
        now: &[TrialReport],
        max_slowdown: MaxSlowdown,
    ) -> Comparison {
        let find = |name: &str| baseline.iter().find(|b| b.name == name);
        let mut pairs: Vec<(Option<&TrialReport>, Option<&TrialReport>, MaxSlowdown)> = now
            .iter()
            .map(|n| (find(&n.name), Some(n), max_slowdown))
            .collect();
        let gone = baseline
            .iter()
            .filter(|b| !now.iter().any(|n| n.name == b.name));
        pairs.extend(gone.map(|b| (Some(b), None, max_slowdown)));
        Comparison::of_pairs(pairs)
    }

    /// Every regression: checks first, then phases, trial by trial.
    pub fn regressions(&self) -> Vec<Regression<'_>> {
        self.trials
            .iter()
            .flat_map(TrialComparison::regressions)
            .collect()
    }

    pub fn has_regressions(&self) -> bool {
        !self.regressions().is_empty()
    }

    pub fn counts(&self) -> ChangeCounts {
        let mut counts = ChangeCounts::default();
        for t in &self.trials {
            if t.not_compared.is_some() {
                counts.not_compared += 1;
            }
            for c in &t.checks {
                match c.change {
                    Change::Regression => counts.regressions += 1,
                    Change::StillFailing => counts.still_failing += 1,
                    Change::Fixed => counts.fixed += 1,
                    Change::Unchanged => counts.unchanged += 1,
                }
            }
            counts.regressions += t.phases.iter().filter(|p| p.slower).count();
        }
        counts
    }
}

impl TrialComparison {
    fn of(
        baseline: Option<&TrialReport>,
        now: Option<&TrialReport>,
        max_slowdown: MaxSlowdown,
    ) -> TrialComparison {
        let name = now.or(baseline).map(|t| t.name.clone()).unwrap_or_default();
        let baseline_image = baseline.and_then(|b| b.image.clone());
        let empty = |why: String| TrialComparison {
            name: name.clone(),
            baseline_image: baseline_image.clone(),
            not_compared: Some(why),
            checks: Vec::new(),
            phases: Vec::new(),
            max_slowdown,
        };
        let (baseline, now) = match (baseline, now) {
            (Some(b), Some(n)) => (b, n),
            (None, _) => return empty("not in the baseline's results".into()),
            (_, None) => return empty("in the baseline's results only".into()),
        };
        if let Some(why) = not_run("the baseline", baseline).or_else(|| not_run("now", now)) {
            return empty(why);
        }
        TrialComparison {
            checks: compare_checks(baseline, now),
            phases: compare_phases(baseline, now, max_slowdown),
            not_compared: None,
            name,
            baseline_image,
            max_slowdown,
        }
    }

    pub fn regressions(&self) -> impl Iterator<Item = Regression<'_>> {
        let checks = self
            .checks
            .iter()
            .filter(|c| c.change == Change::Regression)
            .map(|c| Regression {
                trial: &self.name,
                what: c.name.clone(),
                detail: format!(
                    "passed on the baseline, {} now: {}",
                    outcome_word(c.now),
                    c.message
                ),
            });
        let phases = self.phases.iter().filter(|p| p.slower).map(|p| Regression {
            trial: &self.name,
            what: format!("phase {}", p.name),
            detail: p.describe(&self.max_slowdown),
        });
        checks.chain(phases)
    }
}

impl PhaseComparison {
    /// `12.0 s on the baseline, 19.5 s now (+7.5 s, +62 %; allowed: 20 % and 5.0 s)`.
    pub fn describe(&self, max: &MaxSlowdown) -> String {
        let delta = self.now_secs - self.baseline_secs;
        let percent = if self.baseline_secs > 0.0 {
            format!(", {:+.0} %", 100.0 * delta / self.baseline_secs)
        } else {
            String::new()
        };
        format!(
            "{:.1} s on the baseline, {:.1} s now ({delta:+.1} s{percent}; allowed: {:.0} % and {:.1} s)",
            self.baseline_secs,
            self.now_secs,
            100.0 * max.fraction,
            max.seconds
        )
    }
}

/// Why a side taught nothing: skipped or could not test.
fn not_run(side: &str, t: &TrialReport) -> Option<String> {
    match &t.verdict {
        Verdict::Skipped { reason } => Some(format!("skipped {side}: {reason}")),
        Verdict::CouldNotTest { reason } => Some(format!("could not test {side}: {reason}")),
        Verdict::Pass | Verdict::Fail => None,
    }
}

fn outcome_word(o: Option<Outcome>) -> &'static str {
    match o {
        Some(Outcome::Pass) => "passes",
        Some(Outcome::Fail) => "fails",
        Some(Outcome::Broken) => "broken",
        Some(Outcome::NotRun) => "not run",
        None => "absent",
    }
}

/// The boot (a pass when no error ended the trial), then every check either
/// side has, in the order now's report has them, then those only the
/// baseline had.
fn compare_checks(baseline: &TrialReport, now: &TrialReport) -> Vec<CheckComparison> {
    let boot = |t: &TrialReport| {
        (
            if t.error.is_none() {
                Outcome::Pass
            } else {
                Outcome::Fail
            },
            t.error.as_ref().map(|e| e.message.to_string()),
        )
    };
    let (base_boot, base_error) = boot(baseline);
    let (now_boot, now_error) = boot(now);
    let mut rows = vec![row(
        "boot",
        Some(base_boot),
        Some(now_boot),
        now_error.or(base_error).unwrap_or_default(),
    )];
    let mut ids: Vec<&CheckId> = now.checks.iter().map(|c| &c.name).collect();
    ids.extend(
        baseline
            .checks
            .iter()
            .map(|c| &c.name)
            .filter(|id| now.check(id).is_none()),
    );
    for id in ids {
        let (b, n) = (baseline.check(id), now.check(id));
        let unpassed = n
            .filter(|c| c.outcome != Outcome::Pass)
            .or(b.filter(|c| c.outcome != Outcome::Pass));
        rows.push(row(
            &id.to_string(),
            b.map(|c| c.outcome),
            n.map(|c| c.outcome),
            unpassed.map(|c| c.message.clone()).unwrap_or_default(),
        ));
    }
    rows
}

fn row(
    name: &str,
    baseline: Option<Outcome>,
    now: Option<Outcome>,
    message: String,
) -> CheckComparison {
    CheckComparison {
        name: name.to_owned(),
        baseline,
        now,
        change: Change::of(baseline, now),
        message,
    }
}

/// The stages both sides reached, then the whole way from power-on to a shell.
fn compare_phases(
    baseline: &TrialReport,
    now: &TrialReport,
    max: MaxSlowdown,
) -> Vec<PhaseComparison> {
    let base_stages = stages(baseline);
    let mut rows: Vec<PhaseComparison> = stages(now)
        .iter()
        .filter_map(|n| {
            base_stages
                .iter()
                .find(|b| b.name == n.name)
                .map(|b| phase(n.name, b.len, n.len, max))
        })
        .collect();
    if let (Some(b), Some(n)) = (baseline.boot_secs(), now.boot_secs()) {
        rows.push(phase("to shell", b, n, max));
    }
    rows
}

fn phase(name: &str, baseline_secs: f64, now_secs: f64, max: MaxSlowdown) -> PhaseComparison {
    let delta = now_secs - baseline_secs;
    let slower = delta > max.fraction * baseline_secs && delta > max.seconds;
    PhaseComparison {
        name: name.to_owned(),
        baseline_secs,
        now_secs,
        slower,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::report::trial::tests::sample;

    /// A trial's report.json from tests/data: real results of real runs
    /// (where each came from: tests/report.rs and tests/compare.rs).
    pub(crate) fn real(path: &str) -> TrialReport {
        let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/data")
            .join(path)
            .join("report.json");
        let text =
            std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
    }

    /// The real run of the `rescue` ISO (baseline) and of `wrong-hostname` (now).
    pub(crate) fn hostname_regression() -> Comparison {
        let baseline = real("regression/baseline/rescue-x86_64-bios");
        let now = real("regression/new/rescue-x86_64-bios");
        Comparison::by_name(&[baseline], &[now], MaxSlowdown::default())
    }

    /// The change of every check of the first trial, by name.
    fn changes(c: &Comparison) -> Vec<(&str, Change)> {
        c.trials[0]
            .checks
            .iter()
            .map(|c| (c.name.as_str(), c.change))
            .collect()
    }

    #[test]
    fn the_wrong_hostname_iso_regresses_exactly_its_hostname() {
        let c = hostname_regression();
        let regressions = c.regressions();
        assert_eq!(regressions.len(), 1, "{regressions:?}");
        assert_eq!(regressions[0].what, "hostname");
        assert_eq!(
            regressions[0].detail,
            "passed on the baseline, fails now: hostname mismatch: expected `rescue`, the guest says `wrong-name`"
        );
        let changes = changes(&c);
        assert_eq!(changes[0], ("boot", Change::Unchanged));
        assert!(
            changes
                .iter()
                .filter(|(n, _)| *n != "hostname")
                .all(|(_, ch)| *ch == Change::Unchanged),
            "{changes:?}"
        );
        // The same runs the other way round: fixed, and nothing regressed.
        let back = Comparison::by_name(
            &[real("regression/new/rescue-x86_64-bios")],
            &[real("regression/baseline/rescue-x86_64-bios")],
            MaxSlowdown::default(),
        );
        assert!(changes_of(&back).contains(&("hostname".to_owned(), Change::Fixed)));
        assert!(back.trials[0]
            .checks
            .iter()
            .all(|c| c.change != Change::Regression));
        // The `rescue` boot took 22 s (25 %) longer to a shell than the
        // `wrong-hostname` one, on a busy machine: the other way round, that is
        // a slowdown beyond the defaults.
        let slower: Vec<&str> = back.trials[0]
            .phases
            .iter()
            .filter(|p| p.slower)
            .map(|p| p.name.as_str())
            .collect();
        assert_eq!(slower, ["userspace", "to shell"]);
        let stages: Vec<&str> = c.trials[0].phases.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            stages,
            [
                "firmware",
                "menu",
                "kernel",
                "userspace",
                "checks",
                "to shell"
            ]
        );
    }

    fn changes_of(c: &Comparison) -> Vec<(String, Change)> {
        changes(c)
            .into_iter()
            .map(|(n, ch)| (n.to_owned(), ch))
            .collect()
    }

    #[test]
    fn a_run_compared_with_itself_changes_nothing() {
        let pass = real("reports/shard1/minimal-x86_64-bios");
        let c = Comparison::by_name(
            std::slice::from_ref(&pass),
            std::slice::from_ref(&pass),
            MaxSlowdown::default(),
        );
        assert!(!c.has_regressions());
        assert!(changes(&c).iter().all(|(_, ch)| *ch == Change::Unchanged));
        assert_eq!(
            c.counts().unchanged,
            pass.checks.len() + 1,
            "every check and the boot"
        );
        // A failed run compared with itself: its failures are still failing, not regressions.
        let fail = real("regression/new/rescue-x86_64-bios");
        let c = Comparison::by_name(
            std::slice::from_ref(&fail),
            std::slice::from_ref(&fail),
            MaxSlowdown::default(),
        );
        assert!(!c.has_regressions());
        assert_eq!(c.counts().still_failing, 1, "{:?}", changes(&c));
    }

    #[test]
    fn a_slower_kernel_is_a_regression_of_its_stage() {
        // A "slower" variant, made here: the real baseline with every phase
        // from `userspace` on 12 s later, i.e. a kernel stage 12 s longer.
        let baseline = real("regression/baseline/rescue-x86_64-bios");
        let mut slower = baseline.clone();
        let from = slower
            .phases
            .iter()
            .position(|(p, _)| {
                *p == crate::report::phase::TrialPhase::Boot(crate::console::Phase::Userspace)
            })
            .expect("the run reached userspace");
        for (_, at) in &mut slower.phases[from..] {
            *at += 12.0;
        }
        let c = Comparison::by_name(
            std::slice::from_ref(&baseline),
            &[slower],
            MaxSlowdown::default(),
        );
        let what: Vec<String> = c.regressions().into_iter().map(|r| r.what).collect();
        // The kernel stage (27 s in this run) took 44 % more; the way to a
        // shell (111 s) only 11 % more: over 5 s, but under 20 %.
        assert_eq!(
            what,
            ["phase kernel"],
            "the kernel took 12 s more; the rest as long"
        );
        let kernel = c.trials[0]
            .phases
            .iter()
            .find(|p| p.name == "kernel")
            .unwrap();
        assert!(
            (kernel.now_secs - kernel.baseline_secs - 12.0).abs() < 1e-9,
            "{kernel:?}"
        );
        assert!(
            changes(&c).iter().all(|(_, ch)| *ch == Change::Unchanged),
            "the checks are the same"
        );
        // Under a threshold above it, not a regression.
        let lenient = MaxSlowdown {
            fraction: 0.2,
            seconds: 13.0,
        };
        let mut slower = baseline.clone();
        for (_, at) in &mut slower.phases[from..] {
            *at += 12.0;
        }
        assert!(
            !Comparison::by_name(std::slice::from_ref(&baseline), &[slower], lenient)
                .has_regressions()
        );
    }

    #[test]
    fn each_pair_of_outcomes_has_its_change() {
        use Outcome::*;
        assert_eq!(Change::of(Some(Pass), Some(Pass)), Change::Unchanged);
        assert_eq!(Change::of(Some(Pass), Some(Fail)), Change::Regression);
        assert_eq!(Change::of(Some(Pass), Some(Broken)), Change::Regression);
        assert_eq!(Change::of(Some(Pass), Some(NotRun)), Change::Regression);
        assert_eq!(
            Change::of(Some(Pass), None),
            Change::Regression,
            "a check that vanished did not pass"
        );
        assert_eq!(Change::of(Some(Fail), Some(Pass)), Change::Fixed);
        assert_eq!(Change::of(None, Some(Pass)), Change::Fixed);
        assert_eq!(Change::of(Some(Fail), Some(Fail)), Change::StillFailing);
        assert_eq!(Change::of(Some(NotRun), None), Change::StillFailing);
    }

    #[test]
    fn a_phase_is_slower_only_beyond_the_fraction_and_the_seconds() {
        let max = MaxSlowdown::default();
        assert!(phase("kernel", 10.0, 15.1, max).slower, "+51 % and +5.1 s");
        assert!(
            !phase("kernel", 10.0, 14.9, max).slower,
            "+49 % but under 5 s"
        );
        assert!(
            !phase("userspace", 40.0, 47.0, max).slower,
            "+7 s but 17.5 %: TCG's own spread"
        );
        assert!(
            phase("userspace", 40.0, 48.5, max).slower,
            "+8.5 s and 21 %"
        );
        assert!(
            !phase("menu", 0.3, 3.0, max).slower,
            "10x, but a short phase: under 5 s"
        );
        assert!(
            !phase("kernel", 15.0, 9.0, max).slower,
            "faster is never a regression"
        );
        let tight = MaxSlowdown {
            fraction: 0.05,
            seconds: 0.0,
        };
        assert!(phase("menu", 0.3, 0.4, tight).slower);
    }

    #[test]
    fn a_skipped_or_missing_side_is_not_compared() {
        let pass = sample("rescue::x86_64::bios", Verdict::Pass);
        let skipped = sample(
            "rescue::x86_64::bios",
            Verdict::Skipped {
                reason: "no OVMF".into(),
            },
        );
        let c = Comparison::by_name(
            std::slice::from_ref(&skipped),
            std::slice::from_ref(&pass),
            MaxSlowdown::default(),
        );
        assert_eq!(
            c.trials[0].not_compared.as_deref(),
            Some("skipped the baseline: no OVMF")
        );
        assert!(!c.has_regressions());
        let c = Comparison::by_name(std::slice::from_ref(&pass), &[], MaxSlowdown::default());
        assert_eq!(
            c.trials[0].not_compared.as_deref(),
            Some("in the baseline's results only")
        );
        assert_eq!(c.counts().not_compared, 1);
    }
}
