//! The result of a whole run as one versioned JSON document (`--json FILE`), and
//! reading results back: a run's artifact directory (its trials' report.json),
//! a trial's report.json, or a result written by `--json`, merged into one run
//! for `isotest report`. The schema is docs/result.schema.json.

use super::compare::{Comparison, TrialComparison};
use super::summary::Summary;
use super::trial::TrialReport;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Bumped when a field changes meaning or goes away; new optional fields keep it.
/// 2: a trial's `artifacts` below the result's own directory is written relative
/// to it, so that the file and the artifacts can move together (a CI artifact).
pub const FORMAT_VERSION: u32 = 2;

/// What `format` says, so that a reader can tell this file from other JSON.
const FORMAT: &str = "isotest-result";

/// Why results could not be read, merged or written. The cause, where there
/// is one, is the error's `source()`: `isotest::error::chain` writes both.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not an isotest result or trial report")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path} has result format version {found}; this isotest reads version {FORMAT_VERSION} (a newer isotest wrote it)")]
    NewerFormat { path: PathBuf, found: u32 },
    #[error("{path}: no report.json in it or below it")]
    NoReports { path: PathBuf },
    #[error("trial {name} is in both {first} and {second}; give each run once")]
    Duplicate {
        name: String,
        first: PathBuf,
        second: PathBuf,
    },
    #[error("write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("render the JUnit XML")]
    Junit(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// One run, or several merged: every trial with its verdict, phases, checks,
/// origins, accelerator, QEMU, and the files it left.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunResult {
    pub format: String,
    pub format_version: u32,
    /// The isotest that wrote it.
    pub isotest_version: String,
    /// The verdicts, counted (informative: the trials' verdicts are the truth).
    pub summary: Summary,
    pub trials: Vec<TrialResult>,
    /// The comparison with a baseline run, when there was one (`--baseline`,
    /// `baseline:`, `isotest compare`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comparison: Option<Comparison>,
}

/// A trial's report, and the files in its artifact directory.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrialResult {
    #[serde(flatten)]
    pub report: TrialReport,
    /// File names in `artifacts` (transcripts, QEMU's stderr, report.json).
    #[serde(default)]
    pub files: Vec<String>,
}

impl RunResult {
    /// The result of these trials, in the order given, with the files each left.
    pub fn new(reports: Vec<TrialReport>) -> RunResult {
        let summary = Summary::of(&reports);
        let trials = reports
            .into_iter()
            .map(|report| TrialResult {
                files: artifact_files(&report.artifacts),
                report,
            })
            .collect();
        RunResult {
            format: FORMAT.into(),
            format_version: FORMAT_VERSION,
            isotest_version: env!("CARGO_PKG_VERSION").into(),
            summary,
            trials,
            comparison: None,
        }
    }

    pub fn reports(&self) -> Vec<TrialReport> {
        self.trials.iter().map(|t| t.report.clone()).collect()
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a RunResult always serializes")
    }

    /// Writes the result to `path`, each trial's artifacts below the file's
    /// directory relative to it (read back by `merge`, wherever both moved),
    /// any other absolute (a path relative to this working directory would
    /// mean nothing to a reader elsewhere).
    pub fn write(&self, path: &Path) -> Result<(), ReportError> {
        let mut moved = self.clone();
        let dir = absolute(parent_dir(path));
        for trial in &mut moved.trials {
            let artifacts = absolute(&trial.report.artifacts);
            trial.report.artifacts = artifacts
                .strip_prefix(&dir)
                .map(Path::to_owned)
                .unwrap_or(artifacts);
        }
        write_file(path, &moved.to_json())
    }
}

/// Writes a rendered report, creating its directory.
pub fn write_file(path: &Path, text: &str) -> Result<(), ReportError> {
    let write = || -> std::io::Result<()> {
        std::fs::create_dir_all(parent_dir(path))?;
        std::fs::write(path, text)
    };
    write().map_err(|source| ReportError::Write {
        path: path.to_owned(),
        source,
    })
}

/// The directory a file given as `path` is in: `.` for a bare file name, whose
/// `parent()` is the empty path (which no `absolute` or `strip_prefix` takes
/// for the working directory).
pub fn parent_dir(path: &Path) -> &Path {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// `path` from the root, as far as the working directory tells (`..` kept).
pub(crate) fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

/// The files a trial left, by name, sorted; none if its directory is gone.
fn artifact_files(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    files
}

/// Reads and merges the results of several runs (or shards of one): each source
/// is a directory searched for trials' report.json, a report.json, or a result
/// written by `--json`. Trials come out sorted by scenario, arch and firmware; a
/// trial found twice is an error, not a silent choice between two verdicts.
pub fn merge(sources: &[PathBuf]) -> Result<RunResult, ReportError> {
    let mut found: Vec<(TrialResult, PathBuf)> = Vec::new();
    let mut comparisons: Vec<TrialComparison> = Vec::new();
    let mut compared = false;
    for source in sources {
        let (trials, comparison) = load(source)?;
        if let Some(c) = comparison {
            compared = true;
            comparisons.extend(c.trials);
        }
        for trial in trials {
            if let Some((_, first)) = found
                .iter()
                .find(|(t, _)| t.report.name == trial.report.name)
            {
                return Err(ReportError::Duplicate {
                    name: trial.report.name,
                    first: first.clone(),
                    second: source.clone(),
                });
            }
            found.push((trial, source.clone()));
        }
    }
    let mut trials: Vec<TrialResult> = found.into_iter().map(|(t, _)| t).collect();
    trials.sort_by(|a, b| {
        let key = |t: &TrialResult| {
            (
                t.report.scenario.clone(),
                t.report.arch.clone(),
                t.report.firmware.clone(),
                t.report.name.clone(),
            )
        };
        key(a).cmp(&key(b))
    });
    let reports: Vec<TrialReport> = trials.iter().map(|t| t.report.clone()).collect();
    let comparison = compared.then_some(Comparison {
        trials: comparisons,
    });
    Ok(RunResult {
        summary: Summary::of(&reports),
        trials,
        comparison,
        ..RunResult::new(Vec::new())
    })
}

/// The trials of one source, and the comparison with a baseline a `--json`
/// result carries (a directory's report.json files carry none).
fn load(source: &Path) -> Result<(Vec<TrialResult>, Option<Comparison>), ReportError> {
    if source.is_dir() {
        let mut paths = Vec::new();
        find_reports(source, &mut paths).map_err(|e| ReportError::Read {
            path: source.to_owned(),
            source: e,
        })?;
        if paths.is_empty() {
            return Err(ReportError::NoReports {
                path: source.to_owned(),
            });
        }
        paths.sort();
        let trials = paths
            .iter()
            .map(|p| load_trial_report(p))
            .collect::<Result<_, _>>()?;
        return Ok((trials, None));
    }
    let text = std::fs::read_to_string(source).map_err(|e| ReportError::Read {
        path: source.to_owned(),
        source: e,
    })?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| ReportError::Parse {
        path: source.to_owned(),
        source: e,
    })?;
    if value.get("format_version").is_none() {
        return Ok((vec![load_trial_report(source)?], None));
    }
    let result: RunResult = serde_json::from_value(value).map_err(|e| ReportError::Parse {
        path: source.to_owned(),
        source: e,
    })?;
    if result.format_version > FORMAT_VERSION {
        return Err(ReportError::NewerFormat {
            path: source.to_owned(),
            found: result.format_version,
        });
    }
    let mut trials = result.trials;
    // Version 1 wrote the paths as the run was given them, relative to its
    // working directory: those are read as written.
    if result.format_version >= 2 {
        let dir = source.parent().unwrap_or(Path::new(""));
        for trial in &mut trials {
            trial.report.artifacts = dir.join(&trial.report.artifacts);
        }
    }
    Ok((trials, result.comparison))
}

/// A trial's report.json. Its artifacts are where the file is now (a CI
/// artifact is downloaded elsewhere than where it was written).
fn load_trial_report(path: &Path) -> Result<TrialResult, ReportError> {
    let text = std::fs::read_to_string(path).map_err(|e| ReportError::Read {
        path: path.to_owned(),
        source: e,
    })?;
    let mut report: TrialReport = serde_json::from_str(&text).map_err(|e| ReportError::Parse {
        path: path.to_owned(),
        source: e,
    })?;
    if let Some(dir) = path.parent() {
        report.artifacts = dir.to_owned();
    }
    Ok(TrialResult {
        files: artifact_files(&report.artifacts),
        report,
    })
}

/// A run's baseline trials, below its artifacts directory (`run --baseline`):
/// they bear the same names as the run's own, so they are not the run's.
pub const BASELINE_DIR: &str = "baseline";

/// Every `report.json` in `dir` or below it, but not in a run's `baseline/`
/// (given as a source itself, that directory is read as any other).
fn find_reports(dir: &Path, found: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            if entry.file_name() != BASELINE_DIR {
                find_reports(&path, found)?;
            }
        } else if entry.file_name() == "report.json" {
            found.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check_id::CheckId;
    use crate::report::trial::tests::sample;
    use crate::report::trial::Verdict;

    fn write_trial(dir: &Path, report: &TrialReport) {
        let trial_dir = dir.join(report.name.replace("::", "-"));
        std::fs::create_dir_all(&trial_dir).unwrap();
        std::fs::write(
            trial_dir.join("report.json"),
            serde_json::to_string(report).unwrap(),
        )
        .unwrap();
        std::fs::write(trial_dir.join("console.log"), "login:\n").unwrap();
    }

    #[test]
    fn a_result_reads_back_as_it_was_written() {
        let result = RunResult::new(vec![sample("rescue::x86_64::bios", Verdict::Fail)]);
        let back: RunResult = serde_json::from_str(&result.to_json()).unwrap();
        assert_eq!(back.format_version, FORMAT_VERSION);
        assert_eq!(back.trials[0].report.verdict, Verdict::Fail);
        assert_eq!(back.trials[0].report.checks[1].name, CheckId::Hostname);
        assert_eq!(back.summary.failed, 1);
    }

    #[test]
    fn shards_merge_into_one_sorted_run() {
        let shard1 = tempfile::tempdir().unwrap();
        let shard2 = tempfile::tempdir().unwrap();
        write_trial(
            shard1.path(),
            &sample("rescue::x86_64::uefi", Verdict::Pass),
        );
        write_trial(
            shard2.path(),
            &sample("rescue::x86_64::bios", Verdict::Fail),
        );
        let json = shard2.path().join("result.json");
        // A --json result of a third shard.
        RunResult::new(vec![sample(
            "minimal::x86_64::bios",
            Verdict::Skipped {
                reason: "no OVMF".into(),
            },
        )])
        .write(&json)
        .unwrap();
        let merged = merge(&[shard1.path().to_owned(), json]).unwrap();
        let names: Vec<&str> = merged
            .trials
            .iter()
            .map(|t| t.report.name.as_str())
            .collect();
        assert_eq!(names, ["minimal::x86_64::bios", "rescue::x86_64::uefi"]);
        assert_eq!((merged.summary.passed, merged.summary.skipped), (1, 1));
        // The artifacts are where the report.json was found, with their files.
        let uefi = &merged.trials[1];
        assert_eq!(
            uefi.report.artifacts,
            shard1.path().join("rescue-x86_64-uefi")
        );
        assert_eq!(uefi.files, ["console.log", "report.json"]);
    }

    #[test]
    fn a_result_and_its_artifacts_move_together() {
        // CI uploads results/ (result.json, artifacts/) and merges it downloaded elsewhere.
        let old = tempfile::tempdir().unwrap();
        let mut below = sample("rescue::x86_64::bios", Verdict::Fail);
        below.artifacts = old.path().join("artifacts/rescue-x86_64-bios");
        let mut apart = sample("rescue::x86_64::uefi", Verdict::Pass);
        apart.artifacts = PathBuf::from("/var/lib/isotest/rescue-x86_64-uefi");
        let mut here = sample("rescue::aarch64::uefi", Verdict::Pass);
        here.artifacts = PathBuf::from("target/isotest/rescue-aarch64-uefi");
        RunResult::new(vec![below, apart, here])
            .write(&old.path().join("result.json"))
            .unwrap();
        let written: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(old.path().join("result.json")).unwrap())
                .unwrap();
        assert_eq!(
            written["trials"][0]["artifacts"],
            "artifacts/rescue-x86_64-bios"
        );
        assert_eq!(
            written["trials"][1]["artifacts"], "/var/lib/isotest/rescue-x86_64-uefi",
            "not below: as it was"
        );
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(
            written["trials"][2]["artifacts"],
            cwd.join("target/isotest/rescue-aarch64-uefi")
                .to_str()
                .unwrap(),
            "absolute"
        );

        let new = tempfile::tempdir().unwrap();
        std::fs::rename(
            old.path().join("result.json"),
            new.path().join("result.json"),
        )
        .unwrap();
        let merged = merge(&[new.path().join("result.json")]).unwrap();
        let found = |name: &str| {
            merged
                .trials
                .iter()
                .find(|t| t.report.name == name)
                .unwrap()
                .report
                .artifacts
                .clone()
        };
        assert_eq!(
            found("rescue::x86_64::bios"),
            new.path().join("artifacts/rescue-x86_64-bios")
        );
        assert_eq!(
            found("rescue::x86_64::uefi"),
            PathBuf::from("/var/lib/isotest/rescue-x86_64-uefi")
        );
        assert_eq!(
            found("rescue::aarch64::uefi"),
            cwd.join("target/isotest/rescue-aarch64-uefi")
        );

        // Version 1 wrote paths relative to the run's working directory: read as written.
        let mut v1 = written.clone();
        v1["format_version"] = 1.into();
        std::fs::write(new.path().join("v1.json"), v1.to_string()).unwrap();
        let merged = merge(&[new.path().join("v1.json")]).unwrap();
        let bios = merged
            .trials
            .iter()
            .find(|t| t.report.name == "rescue::x86_64::bios")
            .unwrap();
        assert_eq!(
            bios.report.artifacts,
            PathBuf::from("artifacts/rescue-x86_64-bios")
        );
    }

    #[test]
    fn a_trial_given_twice_is_an_error() {
        let run = tempfile::tempdir().unwrap();
        write_trial(run.path(), &sample("rescue::x86_64::bios", Verdict::Pass));
        let e = merge(&[run.path().to_owned(), run.path().to_owned()]).unwrap_err();
        assert!(matches!(e, ReportError::Duplicate { .. }), "{e}");
    }

    #[test]
    fn a_runs_baseline_is_not_one_of_its_trials() {
        // `run --baseline` leaves the baseline's trial, of the same name, below the run's.
        let run = tempfile::tempdir().unwrap();
        write_trial(run.path(), &sample("rescue::x86_64::bios", Verdict::Fail));
        write_trial(
            &run.path().join(BASELINE_DIR),
            &sample("rescue::x86_64::bios", Verdict::Pass),
        );
        let merged = merge(&[run.path().to_owned()]).unwrap();
        let verdicts: Vec<&Verdict> = merged.trials.iter().map(|t| &t.report.verdict).collect();
        assert_eq!(verdicts, [&Verdict::Fail], "the run's trial alone");
        let baseline = merge(&[run.path().join(BASELINE_DIR)]).unwrap();
        assert_eq!(
            baseline.trials[0].report.verdict,
            Verdict::Pass,
            "given itself, the baseline reads as any run"
        );
    }

    #[test]
    fn the_comparisons_of_merged_results_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let regression = crate::report::compare::tests::hostname_regression();
        let mut compared = RunResult::new(vec![sample("rescue::x86_64::bios", Verdict::Pass)]);
        compared.comparison = Some(regression.clone());
        compared.write(&dir.path().join("compared.json")).unwrap();
        RunResult::new(vec![sample("minimal::x86_64::bios", Verdict::Pass)])
            .write(&dir.path().join("plain.json"))
            .unwrap();
        let merged = merge(&[
            dir.path().join("plain.json"),
            dir.path().join("compared.json"),
        ])
        .unwrap();
        let kept = merged.comparison.expect("the comparison of compared.json");
        let names = |c: &Comparison| c.trials.iter().map(|t| t.name.clone()).collect::<Vec<_>>();
        assert_eq!(
            (names(&kept), kept.has_regressions()),
            (names(&regression), true)
        );
        let plain = merge(&[dir.path().join("plain.json")]).unwrap();
        assert!(plain.comparison.is_none(), "no baseline, no comparison");
    }

    #[test]
    fn bad_sources_say_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            merge(&[dir.path().to_owned()]),
            Err(ReportError::NoReports { .. })
        ));
        let junk = dir.path().join("junk.json");
        std::fs::write(&junk, "{\"name\": 3}").unwrap();
        assert!(matches!(
            merge(std::slice::from_ref(&junk)),
            Err(ReportError::Parse { .. })
        ));
        let mut newer = serde_json::to_value(RunResult::new(Vec::new())).unwrap();
        newer["format_version"] = (FORMAT_VERSION + 1).into();
        std::fs::write(&junk, newer.to_string()).unwrap();
        let e = merge(&[junk]).unwrap_err();
        assert!(e.to_string().contains("newer isotest"), "{e}");
        assert!(matches!(
            merge(&[dir.path().join("missing.json")]),
            Err(ReportError::Read { .. })
        ));
    }
}
