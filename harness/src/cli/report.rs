//! `isotest report`: stored results merged into one report; and what every
//! command that has trial reports says about their failures.

use super::args::ReportArgs;
use anyhow::Result;
use isotest::report::{
    exit_status, merge, render_failed_units, render_failure, render_line, render_regressions,
    render_summary, TrialReport,
};
use std::process::ExitCode;

pub fn run(args: ReportArgs) -> Result<ExitCode> {
    let result = merge(&args.sources)?;
    let reports = result.reports();
    for report in &reports {
        println!("{}", render_line(report));
    }
    explain_failures(&reports);
    let summary = &result.summary;
    println!("\n{}", render_summary(summary));
    // A run's regressions, carried by its --json result, count as the run counted them.
    if let Some(line) = result.comparison.as_ref().and_then(render_regressions) {
        println!("{line}");
    }
    let status = exit_status(summary, result.comparison.as_ref(), false);
    Ok(ExitCode::from(args.outputs.write(&result, status)))
}

/// What went wrong in each failed trial (and each that could not test), and
/// the units that failed at boot in any trial, on stderr.
pub fn explain_failures(reports: &[TrialReport]) {
    for report in reports {
        let explanation = render_failure(report) + &render_failed_units(report);
        if !explanation.is_empty() {
            eprint!("\n{explanation}");
        }
    }
}
