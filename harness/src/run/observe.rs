//! What a run tells as it goes, from the trials' threads.

use super::kept::KeptMachine;
use crate::console::Phase;
use crate::plan::Trial;
use crate::report::TrialReport;

/// What a run tells as it goes: a live display on a terminal, plain lines
/// elsewhere. Called from the trials' threads.
pub trait Progress: Sync {
    /// A trial starts (a skipped one too, which ends at once).
    fn started(&self, _trial: &Trial) {}
    /// A trial's boot reached `phase`.
    fn phase(&self, _trial: &Trial, _phase: Phase) {}
    /// A trial starts from the machine the shared boot of `booted_by` saved
    /// (its boot's phases are that one's); `phase` says when it has its shell.
    fn restoring(&self, _trial: &Trial, _booted_by: &str) {}
    /// A trial ended.
    fn done(&self, report: &TrialReport);
    /// A failed trial's QEMU is kept running (`keep_on_failure`) until it exits
    /// or the run is interrupted: say how to reach it.
    fn kept(&self, _report: &TrialReport, _kept: &KeptMachine) {}
}

/// A closure over finished reports is the simplest progress: a line per trial.
impl<F: Fn(&TrialReport) + Sync> Progress for F {
    fn done(&self, report: &TrialReport) {
        self(report)
    }
}
