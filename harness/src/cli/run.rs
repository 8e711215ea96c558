//! `isotest run`: boots the chosen trials (and their baselines), says how each
//! went, and writes the reports.

use super::args::RunArgs;
use super::report::explain_failures;
use anyhow::{bail, Result};
use isotest::plan::Trial;
use isotest::report::{
    exit_status, render_comparison, render_line, render_regressions, render_summary, RunResult,
    TrialReport, EXIT_COULD_NOT_TEST,
};
use isotest::run::{run_baselines, run_trials, RunOptions};
use isotest::select::{self, Chosen, Selection};
use isotest::sizing::{Host, Sizing};
use std::process::ExitCode;

pub fn run(args: RunArgs) -> Result<ExitCode> {
    let trials = match choose(&args)? {
        Chosen::Trials(trials) => trials,
        Chosen::EmptyShard(s) => {
            eprintln!("shard {s}: no trial; nothing to run");
            return Ok(ExitCode::SUCCESS);
        }
    };
    if args.require_all && !all_can_run(&trials) {
        eprintln!("error: --require-all: could not test every trial; nothing was started");
        return Ok(ExitCode::from(EXIT_COULD_NOT_TEST));
    }
    let sizing = Sizing::of(&trials, Host::this(), args.jobs, args.cpus);
    let options = RunOptions {
        accel: args.accel,
        artifacts: args.artifacts,
        image: args.image,
        flake: args.flake,
        cpus: sizing.cpus,
        lone_cpus: sizing.lone_cpus,
        keep_on_failure: args.keep_on_failure,
        fresh_boot: args.fresh_boot,
    };
    let progress = isotest::progress::for_stdout();
    let baselines = run_baselines(
        &trials,
        args.baseline.as_deref(),
        &options,
        sizing.jobs,
        &|report: &TrialReport| println!("baseline: {}", render_line(report)),
    );
    let reports = run_trials(&trials, &options, sizing.jobs, progress.as_ref());
    // Trials cut short by Ctrl-C/SIGTERM: the handler's exit status, not a summary.
    isotest::qemu::wait_if_stopping();
    explain_failures(&reports);
    let comparison = isotest::baseline::compare(&trials, &baselines, &reports);
    let mut result = RunResult::new(reports);
    result.comparison = comparison;
    let status = summarise(&result, args.require_all);
    Ok(ExitCode::from(args.outputs.write(&result, status)))
}

/// The trials the arguments choose, their images and flakes checked: all
/// said before anything boots, and said once, not by every trial.
fn choose(args: &RunArgs) -> Result<Chosen> {
    let no_flake = args.flake.is_none() && std::env::var_os("ISOTEST_FLAKE").is_none();
    if let (Some(host), true) = (args.hosts.first(), no_flake) {
        bail!("--iso {host} needs --flake REF (or ISOTEST_FLAKE)");
    }
    super::image::check("--image", args.image.as_deref())?;
    super::image::check("--baseline", args.baseline.as_deref())?;
    let selection = Selection {
        shard: args.shard.shard,
        names: args.trials.clone(),
        filter: args.filter.clone(),
    };
    let chosen = selection.choose(select::load(&args.scenarios, &args.hosts)?)?;
    if let Chosen::Trials(trials) = &chosen {
        let scenarios = trials.iter().map(|t| t.scenario.as_ref());
        isotest::flake::check_flakes(scenarios, args.flake.as_deref())?;
    }
    Ok(chosen)
}

/// Whether every trial can run here; says why each that cannot, cannot.
fn all_can_run(trials: &[Trial]) -> bool {
    let mut all = true;
    for trial in trials {
        if let Some(reason) = &trial.skip {
            eprintln!("{}: cannot run here: {reason}", trial.name());
            all = false;
        }
    }
    all
}

/// Prints the comparison with the baseline, the summary and the regressions,
/// and gives the run's exit status.
fn summarise(result: &RunResult, require_all: bool) -> u8 {
    let summary = &result.summary;
    let comparison = result.comparison.as_ref();
    if let Some(c) = comparison {
        println!("\n{}", render_comparison(c).trim_end());
    }
    println!("\n{}", render_summary(summary));
    if let Some(line) = comparison.and_then(render_regressions) {
        println!("{line}");
    }
    exit_status(summary, comparison, require_all)
}
