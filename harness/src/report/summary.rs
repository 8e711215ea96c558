//! The verdicts of a run, counted, and the exit status they make. The one table
//! of exit statuses (README "Exit status", `isotest --help`):
//!
//! | status | meaning |
//! |---|---|
//! | 0 | every trial that ran passed (skipped trials are reported, not failures) |
//! | 1 | a trial failed: a check failed, was broken or could not run, or the boot died; or, with a baseline, a regression (report/compare.rs) |
//! | 2 | usage or scenario error (nothing ran) |
//! | 3 | could not test: this host lacks QEMU, firmware, memory, disk space or a free port, a report cannot be written (when nothing failed), every trial was skipped, or `--require-all` met a skipped trial |
//!
//! A failure outranks "could not test": something was learned about the ISO.

use super::compare::Comparison;
use super::trial::{TrialReport, Verdict};

pub const EXIT_PASS: u8 = 0;
pub const EXIT_FAIL: u8 = 1;
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_COULD_NOT_TEST: u8 = 3;

/// The exit status table, for `--help`.
pub const EXIT_STATUS_HELP: &str = "\
Exit status:
  0  every trial that ran passed (skipped trials are reported, not failures)
  1  a trial failed: a check failed, was broken or could not run, or the boot died
     (a kernel panic, a timeout, the guest rebooting or powering off); or, compared
     with a baseline (--baseline, `isotest compare`), a regression
  2  usage or scenario error, said before anything boots (a bad option value,
     an image no firmware could boot, an ISO host the flake lacks)
  3  could not test: no QEMU, firmware or xorriso (it reads the boot menus off
     the ISO), QEMU refusing its arguments or dying of a signal or a crash, too
     little memory or disk space, no free port, a bug in
     isotest (a panic during a trial, unless a check had failed: 1), a report
     that cannot be written (unless a trial failed: 1); or every trial was
     skipped; or --require-all met a skipped trial";

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Summary {
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
    pub could_not_test: usize,
}

impl Summary {
    pub fn of(reports: &[TrialReport]) -> Summary {
        let mut s = Summary::default();
        for r in reports {
            match r.verdict {
                Verdict::Pass => s.passed += 1,
                Verdict::Fail => s.failed += 1,
                Verdict::Skipped { .. } => s.skipped += 1,
                Verdict::CouldNotTest { .. } => s.could_not_test += 1,
            }
        }
        s
    }

    /// The exit status; `require_all`: a skipped trial is "could not test".
    pub fn exit_status(&self, require_all: bool) -> u8 {
        if self.failed > 0 {
            EXIT_FAIL
        } else if self.could_not_test > 0 || self.passed == 0 || (require_all && self.skipped > 0) {
            EXIT_COULD_NOT_TEST
        } else {
            EXIT_PASS
        }
    }
}

/// The exit status of a run, or of runs merged by `isotest report`: a
/// regression against the baseline is a failure, which outranks "could not
/// test" as a failed trial does, and makes a run of passing trials exit 1.
pub fn exit_status(summary: &Summary, comparison: Option<&Comparison>, require_all: bool) -> u8 {
    if comparison.is_some_and(Comparison::has_regressions) {
        EXIT_FAIL
    } else {
        summary.exit_status(require_all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(passed: usize, failed: usize, skipped: usize, could_not_test: usize) -> Summary {
        Summary {
            passed,
            failed,
            skipped,
            could_not_test,
        }
    }

    #[test]
    fn the_exit_status_table() {
        assert_eq!(summary(3, 0, 0, 0).exit_status(false), EXIT_PASS);
        assert_eq!(
            summary(3, 0, 1, 0).exit_status(false),
            EXIT_PASS,
            "a skip is reported, not a failure"
        );
        assert_eq!(
            summary(3, 0, 1, 0).exit_status(true),
            EXIT_COULD_NOT_TEST,
            "--require-all"
        );
        assert_eq!(
            summary(2, 1, 1, 1).exit_status(true),
            EXIT_FAIL,
            "a failure outranks the rest"
        );
        assert_eq!(summary(2, 0, 0, 1).exit_status(false), EXIT_COULD_NOT_TEST);
        assert_eq!(
            summary(0, 0, 2, 0).exit_status(false),
            EXIT_COULD_NOT_TEST,
            "nothing ran, nothing learned"
        );
    }

    #[test]
    fn a_regression_fails_a_run_of_passing_trials() {
        let regression = crate::report::compare::tests::hostname_regression();
        assert!(regression.has_regressions());
        assert_eq!(
            exit_status(&summary(3, 0, 0, 0), Some(&regression), false),
            EXIT_FAIL
        );
        assert_eq!(
            exit_status(&summary(2, 0, 0, 1), Some(&regression), false),
            EXIT_FAIL,
            "it outranks could not test"
        );
        assert_eq!(exit_status(&summary(3, 0, 0, 0), None, false), EXIT_PASS);
        let unchanged = Comparison { trials: Vec::new() };
        assert_eq!(
            exit_status(&summary(2, 0, 0, 1), Some(&unchanged), false),
            EXIT_COULD_NOT_TEST,
            "no regression: the table"
        );
    }
}
