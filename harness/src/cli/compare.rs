//! `isotest compare`: two stored runs, judged for regressions.

use super::args::CompareArgs;
use anyhow::{Context, Result};
use isotest::report::{
    merge, render_comparison, render_regressions, Comparison, EXIT_FAIL, EXIT_PASS,
};
use isotest::scenario::MaxSlowdown;
use std::process::ExitCode;

pub fn run(args: CompareArgs) -> Result<ExitCode> {
    let old = &args.old;
    let old_run =
        merge(std::slice::from_ref(old)).with_context(|| format!("OLD {}", old.display()))?;
    let new = &args.new;
    let mut result =
        merge(std::slice::from_ref(new)).with_context(|| format!("NEW {}", new.display()))?;
    let max = MaxSlowdown {
        fraction: args.max_slowdown,
        seconds: args.max_slowdown_secs,
    };
    let comparison = Comparison::by_name(&old_run.reports(), &result.reports(), max);
    print!("{}", render_comparison(&comparison));
    if let Some(line) = render_regressions(&comparison) {
        println!("\n{line}");
    }
    let status = if comparison.has_regressions() {
        EXIT_FAIL
    } else {
        EXIT_PASS
    };
    result.comparison = Some(comparison);
    Ok(ExitCode::from(args.outputs.write(&result, status)))
}
