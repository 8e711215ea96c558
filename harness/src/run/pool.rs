//! Many trials on a pool of workers, at most `jobs` at once, each worker
//! owning its trial's machine from start to end; and the baseline runs beside
//! them.

use super::observe::Progress;
use super::options::RunOptions;
use super::share::Board;
use super::trial::run_trial_observed;
use crate::plan::Trial;
use crate::report::TrialReport;
use std::path::Path;

/// Runs trials with at most `jobs` at once, telling `progress` as each starts,
/// reaches a phase and finishes. Trials that boot alike share one boot
/// (`share::Board`) unless `options.fresh_boot`. Results come back in the
/// trials' order. A kept machine (`keep_on_failure`) holds its worker until
/// QEMU exits.
pub fn run_trials(
    trials: &[Trial],
    options: &RunOptions,
    jobs: usize,
    progress: &dyn Progress,
) -> Vec<TrialReport> {
    let board = Board::new(trials, options, jobs);
    let results = std::sync::Mutex::new(vec![None; trials.len()]);
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1).min(trials.len()) {
            scope.spawn(|| {
                while let Some((i, share)) = board.next() {
                    let trial = &trials[i];
                    // Each worker thread owns its machine from start to end, which
                    // PR_SET_PDEATHSIG requires.
                    progress.started(trial);
                    if let super::share::Share::Follow(saved) = &share {
                        progress.restoring(trial, &saved.booted_by);
                    }
                    let (report, kept) = run_trial_observed(trial, options, progress, share);
                    progress.done(&report);
                    if let Some(kept) = kept {
                        progress.kept(&report, &kept);
                        kept.wait();
                    }
                    results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(report);
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .map(|r| r.expect("every trial ran"))
        .collect()
}

/// Runs each trial that has a baseline (`given`, i.e. `--baseline`, else its
/// scenario's `baseline:`) on that ISO instead, against the same expectations,
/// its artifacts under `<artifacts>/baseline/`. One report per trial, `None`
/// for a trial without a baseline. Trials that differ only by their image
/// (`images:`) share one baseline run.
pub fn run_baselines(
    trials: &[Trial],
    given: Option<&Path>,
    options: &RunOptions,
    jobs: usize,
    progress: &dyn Progress,
) -> Vec<Option<TrialReport>> {
    let on_baseline: Vec<Option<Trial>> = trials
        .iter()
        .map(|t| {
            let iso = given
                .map(Path::to_owned)
                .or_else(|| t.scenario.baseline.clone())?;
            Some(Trial {
                image: Some(iso),
                ..t.clone()
            })
        })
        .collect();
    let same = |a: &Trial, b: &Trial| {
        std::sync::Arc::ptr_eq(&a.scenario, &b.scenario)
            && a.arch == b.arch
            && a.firmware == b.firmware
            && a.image == b.image
    };
    let mut unique: Vec<Trial> = Vec::new();
    for t in on_baseline.iter().flatten() {
        if !unique.iter().any(|u| same(u, t)) {
            unique.push(t.clone());
        }
    }
    if unique.is_empty() {
        return vec![None; trials.len()];
    }
    // The baseline is the trial's image here; `--image` names the new ISO only.
    // A baseline's VM is never kept: the comparison needs only its report.
    let options = RunOptions {
        image: None,
        artifacts: options.artifacts.join(crate::report::BASELINE_DIR),
        keep_on_failure: false,
        ..options.clone()
    };
    let reports = run_trials(&unique, &options, jobs, progress);
    on_baseline
        .iter()
        .map(|t| {
            t.as_ref()
                .and_then(|t| unique.iter().position(|u| same(u, t)))
                .map(|i| reports[i].clone())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::{Arch, Firmware};

    #[test]
    fn baselines_run_once_per_trial_without_its_image_under_baseline() {
        // Skipped trials: run_trial reports them without booting, which is all
        // this needs to see what ran where.
        let dir = tempfile::tempdir().unwrap();
        let yaml = "images: [a.iso, b.iso]\narch: x86_64\nfirmware: uefi\nbaseline: old.iso\n";
        let with = std::sync::Arc::new(
            crate::scenario::Scenario::parse(&dir.path().join("s.yaml"), yaml).unwrap(),
        );
        let without = std::sync::Arc::new(
            crate::scenario::Scenario::parse(
                &dir.path().join("t.yaml"),
                "image: c.iso\narch: x86_64\n",
            )
            .unwrap(),
        );
        let trial = |scenario: &std::sync::Arc<crate::scenario::Scenario>, image: &str| Trial {
            scenario: scenario.clone(),
            arch: Arch::X86_64,
            firmware: Firmware::Uefi,
            image: Some(dir.path().join(image)),
            skip: Some("no OVMF".into()),
        };
        let trials = [
            trial(&with, "a.iso"),
            trial(&with, "b.iso"),
            trial(&without, "c.iso"),
        ];
        let options = RunOptions {
            artifacts: dir.path().join("artifacts"),
            ..RunOptions::default()
        };
        let ran = std::sync::Mutex::new(Vec::new());
        let baselines = run_baselines(&trials, None, &options, 1, &|r: &TrialReport| {
            ran.lock().unwrap().push(r.name.clone())
        });
        assert_eq!(
            *ran.lock().unwrap(),
            ["s::x86_64::uefi::old"],
            "one baseline run for both images"
        );
        assert_eq!(
            baselines.iter().map(Option::is_some).collect::<Vec<_>>(),
            [true, true, false]
        );
        assert!(dir
            .path()
            .join("artifacts/baseline/s-x86_64-uefi-old/report.json")
            .is_file());
        // --baseline wins over `baseline:`, and gives every trial one.
        let given = dir.path().join("given.iso");
        let baselines = run_baselines(&trials, Some(&given), &options, 1, &|_: &TrialReport| ());
        assert!(baselines.iter().all(Option::is_some));
        assert!(dir
            .path()
            .join("artifacts/baseline/t-x86_64-uefi/report.json")
            .is_file());
    }
}
