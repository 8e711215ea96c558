//! Results: the model of a trial's outcome, its human rendering, and the JSON
//! written next to the transcripts.

mod compare;
mod html;
mod human;
mod json;
mod junit;
mod phase;
mod shared;
mod shell;
mod stage;
mod summary;
mod trial;

pub use compare::{
    Change, ChangeCounts, CheckComparison, Comparison, PhaseComparison, Regression, TrialComparison,
};
pub use html::render_html;
pub use human::{
    render_comparison, render_failed_units, render_failure, render_line, render_regressions,
    render_summary,
};
pub use json::{
    merge, parent_dir, write_file, ReportError, RunResult, TrialResult, BASELINE_DIR,
    FORMAT_VERSION,
};
pub use junit::render_junit;
pub use phase::TrialPhase;
pub use shared::{SharedBoot, SharedRole};
pub use summary::{
    exit_status, Summary, EXIT_COULD_NOT_TEST, EXIT_FAIL, EXIT_PASS, EXIT_STATUS_HELP, EXIT_USAGE,
};
pub use trial::{ErrorKind, FailedUnit, QemuRun, TrialError, TrialMessage, TrialReport, Verdict};

#[cfg(test)]
pub(crate) use trial::tests::sample;
