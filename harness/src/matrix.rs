//! The plan as a CI matrix: one job per trial, on a runner that can run it.
//!
//! GitHub Actions takes the JSON object `{"include": [...]}` through
//! `strategy.matrix: ${{ fromJSON(...) }}`; GitLab CI takes a generated child
//! pipeline whose jobs list the trials under `parallel:matrix`. Both are computed
//! from the plan alone: a trial this machine would skip is still listed, since
//! the runner that gets it may well run it (see `plan::host_independent`).

use crate::plan::Trial;
use crate::platform::{AccelChoice, Arch};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// GitHub Actions: at most 256 jobs per matrix.
pub const GITHUB_MAX_JOBS: usize = 256;
/// GitLab CI: at most 200 jobs per `parallel:matrix`.
const GITLAB_MAX_JOBS: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// `{"include": [...]}` for `strategy.matrix` through `fromJSON`.
    Github,
    /// A child pipeline (YAML) with a `parallel:matrix` job per kind of runner.
    Gitlab,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MatrixError {
    #[error("--runner {0}: expected KIND=LABEL[,LABEL...], KIND one of x86_64, aarch64, x86_64-kvm, aarch64-kvm")]
    RunnerSyntax(String),
    #[error("no trial in the plan{0}: a CI matrix cannot be empty")]
    Empty(String),
}

/// What a trial needs from its runner: its architecture (an aarch64 guest runs
/// best on an arm runner, and needs one for KVM) and whether it asks for KVM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunnerKind {
    pub arch: Arch,
    pub kvm: bool,
}

impl RunnerKind {
    pub fn of(trial: &Trial) -> RunnerKind {
        RunnerKind {
            arch: trial.arch,
            kvm: trial.scenario.accel == AccelChoice::Kvm,
        }
    }
}

impl fmt::Display for RunnerKind {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}{}", self.arch, if self.kvm { "-kvm" } else { "" })
    }
}

/// `--runner KIND=LABEL[,LABEL...]`: the labels (GitHub `runs-on`) or tags
/// (GitLab `tags:`) of the runners for one kind of trial.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunnerOverride {
    pub kind: RunnerKind,
    pub labels: Vec<String>,
}

impl FromStr for RunnerOverride {
    type Err = MatrixError;
    fn from_str(text: &str) -> Result<RunnerOverride, MatrixError> {
        let syntax = || MatrixError::RunnerSyntax(text.to_owned());
        let (kind, labels) = text.split_once('=').ok_or_else(syntax)?;
        let (arch, kvm) = match kind.strip_suffix("-kvm") {
            Some(arch) => (arch, true),
            None => (kind, false),
        };
        let arch: Arch = arch.parse().map_err(|_| syntax())?;
        let labels: Vec<String> = labels
            .split(',')
            .map(str::trim)
            .map(str::to_owned)
            .collect();
        if labels.iter().any(String::is_empty) {
            return Err(syntax());
        }
        Ok(RunnerOverride {
            kind: RunnerKind { arch, kvm },
            labels,
        })
    }
}

/// The runners each kind of trial goes to.
#[derive(Debug, Clone)]
pub struct Runners(Vec<(RunnerKind, Vec<String>)>);

impl Runners {
    /// Hosted runners for plain trials (GitHub's `ubuntu-24.04` and
    /// `ubuntu-24.04-arm`, GitLab.com's `saas-linux-*` tags); self-hosted ones
    /// labelled `kvm` for the trials that ask for KVM, since a hosted runner
    /// promises no /dev/kvm.
    pub fn defaults(format: Format) -> Runners {
        let labels = |l: &[&str]| l.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let kind = |arch, kvm| RunnerKind { arch, kvm };
        let map = match format {
            Format::Github => [
                (kind(Arch::X86_64, false), labels(&["ubuntu-24.04"])),
                (kind(Arch::Aarch64, false), labels(&["ubuntu-24.04-arm"])),
                (
                    kind(Arch::X86_64, true),
                    labels(&["self-hosted", "linux", "x64", "kvm"]),
                ),
                (
                    kind(Arch::Aarch64, true),
                    labels(&["self-hosted", "linux", "arm64", "kvm"]),
                ),
            ],
            Format::Gitlab => [
                (
                    kind(Arch::X86_64, false),
                    labels(&["saas-linux-small-amd64"]),
                ),
                (
                    kind(Arch::Aarch64, false),
                    labels(&["saas-linux-small-arm64"]),
                ),
                (kind(Arch::X86_64, true), labels(&["kvm", "x86_64"])),
                (kind(Arch::Aarch64, true), labels(&["kvm", "aarch64"])),
            ],
        };
        Runners(map.into())
    }

    pub fn with(mut self, overrides: &[RunnerOverride]) -> Runners {
        for o in overrides {
            self.0.retain(|(kind, _)| *kind != o.kind);
            self.0.push((o.kind, o.labels.clone()));
        }
        self
    }

    fn labels(&self, kind: RunnerKind) -> Vec<String> {
        self.0
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, l)| l.clone())
            .unwrap_or_default()
    }
}

/// One job: a trial and where it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// The trial's name, as `isotest run --trial` takes it.
    pub trial: String,
    /// A form of the name that artifact names and paths accept (no `:`).
    pub id: String,
    /// The scenario file, as given to `isotest matrix` (relative to where it ran).
    pub scenario: String,
    /// The flake host `iso:` names, empty for an `image:` scenario.
    pub iso: String,
    pub arch: String,
    pub firmware: String,
    /// The scenario's `accel:` (auto, kvm or tcg).
    pub accel: String,
    /// Runner labels (GitHub `runs-on`) or tags (GitLab).
    pub runner: Vec<String>,
}

/// The matrix's entries, in plan order.
pub fn entries(trials: &[Trial], runners: &Runners) -> Vec<Entry> {
    trials
        .iter()
        .map(|t| Entry {
            trial: t.name(),
            id: t.dir_name(),
            scenario: t.scenario.path.display().to_string(),
            iso: t.scenario.source.host.clone().unwrap_or_default(),
            arch: t.arch.to_string(),
            firmware: t.firmware.to_string(),
            accel: t.scenario.accel.as_str().to_owned(),
            runner: runners.labels(RunnerKind::of(t)),
        })
        .collect()
}

/// `{"include": [...]}` on one line, as `$GITHUB_OUTPUT` takes a value.
pub fn github(entries: &[Entry]) -> Result<String, MatrixError> {
    if entries.is_empty() {
        return Err(MatrixError::Empty(String::new()));
    }
    if entries.len() > GITHUB_MAX_JOBS {
        tracing::warn!(
            "{} trials: GitHub runs at most {GITHUB_MAX_JOBS} jobs per matrix; split it with --shard",
            entries.len()
        );
    }
    #[derive(Serialize)]
    struct Matrix<'a> {
        include: &'a [Entry],
    }
    Ok(serde_json::to_string(&Matrix { include: entries }).expect("plain strings serialize"))
}

/// A GitLab child pipeline: per kind of runner a job that extends
/// `.isotest-trial` from `jobs_file` with one `parallel:matrix` instance per
/// trial, and a `report` job (extending `.isotest-report`) that needs them all.
pub fn gitlab(entries: &[Entry], jobs_file: &str) -> Result<String, MatrixError> {
    if entries.is_empty() {
        return Err(MatrixError::Empty(String::new()));
    }
    let mut jobs = trial_jobs(&by_runner(entries));
    let needs = jobs.iter().map(|(name, _)| name.clone()).collect();
    jobs.push((
        "report".to_owned(),
        GitlabJob {
            extends: ".isotest-report",
            tags: None,
            parallel: None,
            needs,
        },
    ));
    Ok(pipeline(jobs_file, &jobs))
}

#[derive(Serialize)]
#[serde(rename_all = "UPPERCASE")]
struct GitlabVariables<'a> {
    trial: &'a str,
    trial_id: &'a str,
    scenario: &'a str,
    iso: &'a str,
    arch: &'a str,
    firmware: &'a str,
    accel: &'a str,
}

#[derive(Serialize)]
struct GitlabParallel<'a> {
    matrix: Vec<GitlabVariables<'a>>,
}

#[derive(Serialize)]
struct GitlabJob<'a> {
    extends: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    tags: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parallel: Option<GitlabParallel<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    needs: Vec<String>,
}

/// The entries grouped by their runner labels. Runner kinds in order of
/// first appearance, so the file reads like the plan.
fn by_runner(entries: &[Entry]) -> Vec<(&[String], Vec<&Entry>)> {
    let mut groups: Vec<(&[String], Vec<&Entry>)> = Vec::new();
    for e in entries {
        match groups
            .iter_mut()
            .find(|(labels, _)| *labels == e.runner.as_slice())
        {
            Some((_, group)) => group.push(e),
            None => groups.push((&e.runner, vec![e])),
        }
    }
    groups
}

/// A job per group of runner labels, split where a group has more trials than
/// one `parallel:matrix` takes; each named after its labels (and its part).
fn trial_jobs<'a>(groups: &[(&'a [String], Vec<&'a Entry>)]) -> Vec<(String, GitlabJob<'a>)> {
    let mut jobs = Vec::new();
    for (labels, group) in groups {
        let chunks: Vec<_> = group.chunks(GITLAB_MAX_JOBS).collect();
        for (i, chunk) in chunks.iter().enumerate() {
            let mut name = format!(
                "trials {}",
                if labels.is_empty() {
                    "any".to_owned()
                } else {
                    labels.join(" ")
                }
            );
            if chunks.len() > 1 {
                name.push_str(&format!(" {}", i + 1));
            }
            let matrix = chunk.iter().map(|e| variables(e)).collect();
            let tags = (!labels.is_empty()).then_some(*labels);
            jobs.push((
                name,
                GitlabJob {
                    extends: ".isotest-trial",
                    tags,
                    parallel: Some(GitlabParallel { matrix }),
                    needs: Vec::new(),
                },
            ));
        }
    }
    jobs
}

/// One trial's instance of a `parallel:matrix`.
fn variables(e: &Entry) -> GitlabVariables<'_> {
    GitlabVariables {
        trial: &e.trial,
        trial_id: &e.id,
        scenario: &e.scenario,
        iso: &e.iso,
        arch: &e.arch,
        firmware: &e.firmware,
        accel: &e.accel,
    }
}

/// The pipeline's YAML: a header, the `include:` of `jobs_file`, the stages,
/// then the jobs in order.
fn pipeline(jobs_file: &str, jobs: &[(String, GitlabJob)]) -> String {
    #[derive(Serialize)]
    struct Include<'a> {
        local: &'a str,
    }
    let mut out = String::from(
        "# Generated by `isotest matrix --format gitlab`: one job per trial, then the\n# merged report. Do not edit; change the scenarios.\n",
    );
    let head = serde_yaml_ng::to_string(&BTreeMap::from([(
        "include",
        vec![Include { local: jobs_file }],
    )]))
    .expect("plain strings serialize");
    out.push_str(&head);
    out.push_str(
        &serde_yaml_ng::to_string(&BTreeMap::from([("stages", ["trials", "report"])]))
            .expect("strings"),
    );
    for (name, job) in jobs {
        out.push_str(
            &serde_yaml_ng::to_string(&BTreeMap::from([(name.as_str(), job)]))
                .expect("plain strings serialize"),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::trials;
    use crate::scenario::Scenario;
    use std::path::Path;
    use std::sync::Arc;

    fn plan(yamls: &[(&str, &str)]) -> Vec<Trial> {
        let s: Vec<_> = yamls
            .iter()
            .map(|(p, y)| Arc::new(Scenario::parse(Path::new(p), y).unwrap()))
            .collect();
        trials(&s)
    }

    fn rescue_and_kvm() -> Vec<Trial> {
        plan(&[
            (
                "scenarios/rescue.yaml",
                "iso: rescue\narch: [x86_64, aarch64]\nfirmware: [bios, uefi]\n",
            ),
            (
                "scenarios/fast.yaml",
                "iso: minimal\narch: x86_64\nfirmware: bios\naccel: kvm\n",
            ),
        ])
    }

    #[test]
    fn github_matrix_is_an_include_list_of_trials_with_their_runners() {
        let json = github(&entries(
            &rescue_and_kvm(),
            &Runners::defaults(Format::Github),
        ))
        .unwrap();
        assert!(!json.contains('\n'), "GITHUB_OUTPUT takes one line");
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        let include = v["include"].as_array().unwrap();
        assert_eq!(v.as_object().unwrap().len(), 1, "only `include`");
        let rows: Vec<(String, String)> = include
            .iter()
            .map(|e| {
                (
                    e["trial"].as_str().unwrap().to_owned(),
                    e["runner"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|l| l.as_str().unwrap())
                        .collect::<Vec<_>>()
                        .join(","),
                )
            })
            .collect();
        assert_eq!(
            rows,
            [
                ("rescue::x86_64::bios".to_owned(), "ubuntu-24.04".to_owned()),
                ("rescue::x86_64::uefi".to_owned(), "ubuntu-24.04".to_owned()),
                (
                    "rescue::aarch64::uefi".to_owned(),
                    "ubuntu-24.04-arm".to_owned()
                ),
                (
                    "fast::x86_64::bios".to_owned(),
                    "self-hosted,linux,x64,kvm".to_owned()
                ),
            ]
        );
        let first = &include[0];
        assert_eq!(first["id"], "rescue-x86_64-bios");
        assert_eq!(first["scenario"], "scenarios/rescue.yaml");
        assert_eq!(first["iso"], "rescue");
        assert_eq!(
            (
                first["arch"].as_str(),
                first["firmware"].as_str(),
                first["accel"].as_str()
            ),
            (Some("x86_64"), Some("bios"), Some("auto"))
        );
        assert_eq!(include[3]["accel"], "kvm");
    }

    #[test]
    fn the_matrix_lists_trials_this_host_would_skip() {
        // A default UEFI whose firmware is missing here: skipped here, listed anyway.
        let yaml = "iso: rescue\narch: x86_64\nuefi:\n  x86_64: { code: /nonexistent/C.fd, vars: /nonexistent/V.fd }\n";
        let trials = plan(&[("r.yaml", yaml)]);
        assert!(trials[1].skip.is_some());
        let names: Vec<_> = entries(&trials, &Runners::defaults(Format::Github))
            .into_iter()
            .map(|e| e.trial)
            .collect();
        assert_eq!(names, ["r::x86_64::bios", "r::x86_64::uefi"]);
    }

    #[test]
    fn runner_overrides() {
        let o: RunnerOverride = "aarch64-kvm=self-hosted, graviton".parse().unwrap();
        assert_eq!(
            o.kind,
            RunnerKind {
                arch: Arch::Aarch64,
                kvm: true
            }
        );
        assert_eq!(o.labels, ["self-hosted", "graviton"]);
        let e = entries(
            &rescue_and_kvm(),
            &Runners::defaults(Format::Github).with(&["x86_64=big".parse().unwrap()]),
        );
        assert_eq!(e[0].runner, ["big"]);
        assert_eq!(
            e[3].runner,
            ["self-hosted", "linux", "x64", "kvm"],
            "x86_64-kvm is its own kind"
        );
        for bad in ["x86_64", "riscv64=a", "x86_64=", "x86_64=a,,b", "=a"] {
            assert_eq!(
                bad.parse::<RunnerOverride>(),
                Err(MatrixError::RunnerSyntax(bad.to_owned())),
                "{bad}"
            );
        }
    }

    #[test]
    fn gitlab_child_pipeline_has_a_parallel_matrix_job_per_runner_and_a_report() {
        let yaml = gitlab(
            &entries(&rescue_and_kvm(), &Runners::defaults(Format::Gitlab)),
            "ci/nightly/gitlab-jobs.yml",
        )
        .unwrap();
        let v: serde_yaml_ng::Value = serde_yaml_ng::from_str(&yaml).unwrap();
        assert_eq!(v["include"][0]["local"], "ci/nightly/gitlab-jobs.yml");
        let amd = &v["trials saas-linux-small-amd64"];
        assert_eq!(amd["extends"], ".isotest-trial");
        assert_eq!(amd["tags"][0], "saas-linux-small-amd64");
        let trials: Vec<_> = amd["parallel"]["matrix"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|m| m["TRIAL"].as_str().unwrap())
            .collect();
        assert_eq!(trials, ["rescue::x86_64::bios", "rescue::x86_64::uefi"]);
        assert_eq!(
            amd["parallel"]["matrix"][0]["TRIAL_ID"],
            "rescue-x86_64-bios"
        );
        assert_eq!(
            v["trials saas-linux-small-arm64"]["parallel"]["matrix"][0]["ARCH"],
            "aarch64"
        );
        assert_eq!(
            v["trials kvm x86_64"]["parallel"]["matrix"][0]["ACCEL"],
            "kvm"
        );
        let needs: Vec<_> = v["report"]["needs"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap())
            .collect();
        assert_eq!(
            needs,
            [
                "trials saas-linux-small-amd64",
                "trials saas-linux-small-arm64",
                "trials kvm x86_64"
            ]
        );
        assert_eq!(v["report"]["extends"], ".isotest-report");
    }

    #[test]
    fn gitlab_splits_a_runner_kind_over_jobs_of_200() {
        let images: Vec<String> = (0..201).map(|i| format!("{i}.iso")).collect();
        let yaml = format!(
            "iso: r\narch: x86_64\nfirmware: bios\nimages: [{}]\n",
            images.join(", ")
        );
        let out = gitlab(
            &entries(
                &plan(&[("r.yaml", &yaml)]),
                &Runners::defaults(Format::Gitlab),
            ),
            "j.yml",
        )
        .unwrap();
        let v: serde_yaml_ng::Value = serde_yaml_ng::from_str(&out).unwrap();
        assert_eq!(
            v["trials saas-linux-small-amd64 1"]["parallel"]["matrix"]
                .as_sequence()
                .unwrap()
                .len(),
            200
        );
        assert_eq!(
            v["trials saas-linux-small-amd64 2"]["parallel"]["matrix"]
                .as_sequence()
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn an_empty_matrix_is_an_error() {
        assert!(github(&[]).is_err());
        assert!(gitlab(&[], "j.yml").is_err());
    }
}
