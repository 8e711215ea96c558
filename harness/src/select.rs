//! Which trials a command works on: the scenario files it loads (those named,
//! or every `*.yaml` and `*.yml` of the scenario directory), the zero-config
//! hosts it adds, and the trials it keeps of their plan (a shard, `--trial`
//! names, a `--filter`).

use crate::plan::{self, PlanError, Shard, Trial};
use crate::scenario::{Scenario, ScenarioError};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where scenario files are looked for when none is named, relative to the
/// directory the command runs in.
pub const SCENARIO_DIR: &str = "scenarios";

/// Why no trials could be chosen. All are usage or scenario errors.
#[derive(Debug, thiserror::Error)]
pub enum SelectError {
    #[error("no scenario given and no {} directory here", .dir.display())]
    NoScenarioDir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no scenario given and no *.yaml in {}", .0.display())]
    NoScenarioFile(PathBuf),
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error("--trial {name}: no such trial in the plan{}", in_shard(.shard))]
    NoSuchTrial { name: String, shard: Option<Shard> },
    #[error("no trial to run{}", .filter.as_ref().map(|f| format!(" matches --filter {f}")).unwrap_or_default())]
    NoTrial { filter: Option<String> },
}

fn in_shard(shard: &Option<Shard>) -> String {
    shard.map(|s| format!(" (shard {s})")).unwrap_or_default()
}

/// The scenario files of `dir`: its `*.yaml` and `*.yml`, sorted by path.
pub fn scenario_files(dir: &Path) -> Result<Vec<PathBuf>, SelectError> {
    let entries = std::fs::read_dir(dir).map_err(|source| SelectError::NoScenarioDir {
        dir: dir.to_owned(),
        source,
    })?;
    let mut found: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    found.sort();
    if found.is_empty() {
        return Err(SelectError::NoScenarioFile(dir.to_owned()));
    }
    Ok(found)
}

/// The trials of the scenario files at `paths` and of a zero-config scenario
/// per host (`iso: HOST` and nothing else). With neither, the files of
/// `SCENARIO_DIR`. Two trials may not share a name.
pub fn load(paths: &[PathBuf], hosts: &[String]) -> Result<Vec<Trial>, SelectError> {
    let defaults;
    let paths = if paths.is_empty() && hosts.is_empty() {
        defaults = scenario_files(Path::new(SCENARIO_DIR))?;
        &defaults
    } else {
        paths
    };
    let mut scenarios = paths
        .iter()
        .map(|p| Scenario::load(p).map(Arc::new))
        .collect::<Result<Vec<_>, _>>()?;
    for host in hosts {
        scenarios.push(Arc::new(Scenario::parse(
            &PathBuf::from(format!("{host}.yaml")),
            &format!("iso: {host}\n"),
        )?));
    }
    let trials = plan::trials(&scenarios);
    plan::distinct_names(&trials)?;
    Ok(trials)
}

/// The trials of `shard`, if one is given. A shard, and a plan handed to
/// other machines (`shared`: the CI matrix), must be one that every machine
/// computes alike (see `plan::host_independent`).
pub fn shard(
    trials: Vec<Trial>,
    shard: Option<Shard>,
    shared: bool,
) -> Result<Vec<Trial>, SelectError> {
    if shard.is_none() && !shared {
        return Ok(trials);
    }
    let mut scenarios: Vec<Arc<Scenario>> = Vec::new();
    for t in &trials {
        if !scenarios.iter().any(|s| Arc::ptr_eq(s, &t.scenario)) {
            scenarios.push(t.scenario.clone());
        }
    }
    plan::host_independent(&scenarios)?;
    Ok(match shard {
        Some(shard) => shard.select(trials),
        None => trials,
    })
}

/// What `run` keeps of a plan: a shard of it, then the trials named (all when
/// none is), then those whose name contains the filter.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub shard: Option<Shard>,
    pub names: Vec<String>,
    pub filter: Option<String>,
}

/// The trials a `Selection` kept.
#[derive(Debug)]
pub enum Chosen {
    Trials(Vec<Trial>),
    /// More shards than trials leave some empty: nothing to do, and no error.
    EmptyShard(Shard),
}

impl Selection {
    /// Keeps the selected trials of `trials`. A name that is not in the
    /// (sharded) plan is an error, and so is an empty choice, but for an empty
    /// shard without a filter.
    pub fn choose(&self, trials: Vec<Trial>) -> Result<Chosen, SelectError> {
        let mut trials = shard(trials, self.shard, false)?;
        if let Some(missing) = self
            .names
            .iter()
            .find(|n| !trials.iter().any(|t| t.name() == **n))
        {
            return Err(SelectError::NoSuchTrial {
                name: missing.clone(),
                shard: self.shard,
            });
        }
        if !self.names.is_empty() {
            trials.retain(|t| self.names.contains(&t.name()));
        }
        if let Some(f) = &self.filter {
            trials.retain(|t| t.name().contains(f.as_str()));
        }
        match (self.shard, &self.filter) {
            (Some(s), None) if trials.is_empty() => Ok(Chosen::EmptyShard(s)),
            _ if trials.is_empty() => Err(SelectError::NoTrial {
                filter: self.filter.clone(),
            }),
            _ => Ok(Chosen::Trials(trials)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(yamls: &[(&str, &str)]) -> Vec<Trial> {
        let scenarios: Vec<_> = yamls
            .iter()
            .map(|(name, yaml)| Arc::new(Scenario::parse(Path::new(name), yaml).unwrap()))
            .collect();
        plan::trials(&scenarios)
    }

    fn names(trials: &[Trial]) -> Vec<String> {
        trials.iter().map(Trial::name).collect()
    }

    fn three() -> Vec<Trial> {
        plan(&[
            (
                "a.yaml",
                "iso: a\narch: [x86_64, aarch64]\nfirmware: [bios, uefi]\n",
            ),
            ("b.yaml", "iso: b\narch: x86_64\nfirmware: bios\n"),
        ])
    }

    fn chosen(selection: &Selection) -> Vec<String> {
        match selection.choose(three()).unwrap() {
            Chosen::Trials(t) => names(&t),
            Chosen::EmptyShard(s) => panic!("shard {s} empty"),
        }
    }

    #[test]
    fn scenario_files_are_yaml_and_yml_sorted() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["b.yml", "a.yaml", "c.txt", "d.yaml~"] {
            std::fs::write(dir.path().join(f), "").unwrap();
        }
        let found = scenario_files(dir.path()).unwrap();
        assert_eq!(found, [dir.path().join("a.yaml"), dir.path().join("b.yml")]);
    }

    #[test]
    fn no_scenario_directory_or_file_is_said() {
        let dir = tempfile::tempdir().unwrap();
        let e = scenario_files(dir.path()).unwrap_err();
        let want = format!(
            "no scenario given and no *.yaml in {}",
            dir.path().display()
        );
        assert_eq!(e.to_string(), want);
        let missing = dir.path().join("none");
        let e = scenario_files(&missing).unwrap_err();
        assert!(matches!(e, SelectError::NoScenarioDir { .. }), "{e}");
        let line = crate::error::chain(&e);
        let want = format!(
            "no scenario given and no {} directory here: ",
            missing.display()
        );
        assert!(line.starts_with(&want), "{line}");
    }

    #[test]
    fn load_reads_files_and_adds_zero_config_hosts() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("one.yml");
        std::fs::write(&file, "iso: one\narch: x86_64\nfirmware: bios\n").unwrap();
        let trials = load(&[file], &["rescue".to_owned()]).unwrap();
        let names = names(&trials);
        assert_eq!(names[0], "one::x86_64::bios");
        assert!(
            names[1..].iter().all(|n| n.starts_with("rescue::")),
            "{names:?}"
        );
        assert_eq!(trials[1].scenario.source.host.as_deref(), Some("rescue"));
    }

    #[test]
    fn load_refuses_two_trials_of_one_name() {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["x", "y"] {
            std::fs::create_dir(dir.path().join(sub)).unwrap();
            std::fs::write(
                dir.path().join(sub).join("s.yaml"),
                "iso: s\narch: x86_64\n",
            )
            .unwrap();
        }
        let paths = [dir.path().join("x/s.yaml"), dir.path().join("y/s.yaml")];
        let e = load(&paths, &[]).unwrap_err();
        assert!(
            matches!(e, SelectError::Plan(PlanError::SameName { .. })),
            "{e}"
        );
    }

    #[test]
    fn load_says_which_file_it_could_not_read() {
        let e = load(&[PathBuf::from("/nonexistent/s.yaml")], &[]).unwrap_err();
        assert!(
            matches!(e, SelectError::Scenario(ScenarioError::Read { .. })),
            "{e}"
        );
    }

    #[test]
    fn shard_needs_a_host_independent_plan() {
        let trials = plan(&[("a.yaml", "iso: a\n")]);
        let one = Some("1/2".parse().unwrap());
        let e = shard(trials.clone(), one, false).unwrap_err();
        assert!(
            matches!(e, SelectError::Plan(PlanError::HostArch(_))),
            "{e}"
        );
        assert!(shard(trials.clone(), None, true).is_err());
        assert_eq!(
            shard(trials.clone(), None, false).unwrap().len(),
            trials.len()
        );
    }

    #[test]
    fn shard_keeps_its_slice() {
        let s = Some("2/2".parse().unwrap());
        let kept = shard(three(), s, false).unwrap();
        assert_eq!(names(&kept), ["a::x86_64::uefi", "b::x86_64::bios"]);
    }

    #[test]
    fn a_selection_keeps_names_then_filter() {
        assert_eq!(chosen(&Selection::default()).len(), 4);
        let by_name = Selection {
            names: vec!["b::x86_64::bios".into(), "a::aarch64::uefi".into()],
            ..Selection::default()
        };
        assert_eq!(chosen(&by_name), ["a::aarch64::uefi", "b::x86_64::bios"]);
        let filtered = Selection {
            filter: Some("::bios".into()),
            ..by_name
        };
        assert_eq!(chosen(&filtered), ["b::x86_64::bios"]);
    }

    #[test]
    fn a_name_outside_the_shard_is_an_error() {
        let selection = Selection {
            shard: Some("1/2".parse().unwrap()),
            names: vec!["b::x86_64::bios".into()],
            ..Selection::default()
        };
        let e = selection.choose(three()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "--trial b::x86_64::bios: no such trial in the plan (shard 1/2)"
        );
        let unsharded = Selection {
            names: vec!["nosuch".into()],
            ..Selection::default()
        };
        let e = unsharded.choose(three()).unwrap_err();
        assert_eq!(e.to_string(), "--trial nosuch: no such trial in the plan");
    }

    #[test]
    fn an_empty_shard_is_nothing_to_do_an_empty_filter_an_error() {
        let empty = Selection {
            shard: Some("5/5".parse().unwrap()),
            ..Selection::default()
        };
        assert!(matches!(empty.choose(three()), Ok(Chosen::EmptyShard(_))));
        let filtered = Selection {
            filter: Some("nosuch".into()),
            ..empty
        };
        let e = filtered.choose(three()).unwrap_err();
        assert_eq!(e.to_string(), "no trial to run matches --filter nosuch");
        let e = Selection::default().choose(Vec::new()).unwrap_err();
        assert_eq!(e.to_string(), "no trial to run");
    }
}
