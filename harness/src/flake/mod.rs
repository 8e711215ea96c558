//! nix-wire flakes: which ISO hosts a flake has (`hosts/iso/*`), building one with
//! `nix build`, and the expectations its configuration (`passthru.config`) implies.
//! Everything goes through the real `nix` command.

mod build;
mod expect;
mod hosts;
mod nix;

pub use build::build_iso;
pub use expect::derive_expectations;
pub use hosts::iso_hosts;

use crate::platform::Arch;
use crate::scenario::Scenario;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Mutex, OnceLock};

/// Results of `nix` kept for the rest of the process, by flake attribute.
type Memo<T> = OnceLock<Mutex<HashMap<String, Result<T, FlakeError>>>>;

/// `compute`'s result for `attr`, computed once per process: trials of one host
/// on several firmwares share a build and an evaluation. The lock is held while
/// computing, so one `nix` runs at a time and its progress lines do not
/// interleave (Nix uses the machine's cores for each build anyway).
fn once<T: Clone>(
    memo: &Memo<T>,
    attr: String,
    compute: impl FnOnce(&str) -> Result<T, FlakeError>,
) -> Result<T, FlakeError> {
    let mut done = memo
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(result) = done.get(&attr) {
        return result.clone();
    }
    let result = compute(&attr);
    done.insert(attr, result.clone());
    result
}

/// Why a flake could not give an ISO or expectations. Each says what to do.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FlakeError {
    #[error(
        "`nix` is not installed, and {purpose} needs it: on Debian/Ubuntu `apt-get install nix-bin`, \
         on other systems see https://nixos.org/download; or test a built ISO alone with `image:` and no `iso:`"
    )]
    NixMissing { purpose: String },
    #[error("flake not found: {reference}: {detail}")]
    NotFound { reference: String, detail: String },
    #[error("no ISO host `{host}` in {reference}: hosts/iso has {known}")]
    NoHost {
        host: String,
        reference: String,
        known: String,
    },
    #[error("evaluating {attr} failed:\n{message}")]
    Eval { attr: String, message: String },
    #[error("building {attr} failed:\n{log}")]
    Build { attr: String, log: String },
    #[error(
        "this machine ({host_system}) cannot build {attr} (nix: {detail}); build it where {system} builds \
         (or with a remote builder), or test a prebuilt ISO with --image PATH or `image:`"
    )]
    Unsupported {
        attr: String,
        system: String,
        host_system: String,
        detail: String,
    },
    #[error("{attr} built to {out}, but {out}/iso holds {found}; a nix-wire ISO package holds one iso/*.iso")]
    NoIso {
        attr: String,
        out: String,
        found: String,
    },
    #[error("no flake for `iso: {host}` in {scenario}: set `flake:` in the scenario, pass --flake, or set ISOTEST_FLAKE")]
    NoFlake { host: String, scenario: String },
    #[error("{0}")]
    Nix(String),
}

/// The Nix system name of an architecture.
pub fn system(arch: Arch) -> &'static str {
    match arch {
        Arch::X86_64 => "x86_64-linux",
        Arch::Aarch64 => "aarch64-linux",
    }
}

/// `<flake>#packages.<system>.<host>`: the attribute of a host's ISO.
pub fn attr(flake: &str, arch: Arch, host: &str) -> String {
    format!("{flake}#packages.{}.{host}", system(arch))
}

/// The flake a scenario uses: `--flake`, else the scenario's `flake:`, else
/// `$ISOTEST_FLAKE`, else the nearest directory up from the scenario with a
/// flake.nix (the repository the scenario lives in). `--flake` and
/// `$ISOTEST_FLAKE` are read like a scenario's `flake:`, relative to the working
/// directory (see [`reference`]).
pub fn choose_flake(
    cli: Option<&str>,
    scenario_flake: Option<&str>,
    scenario_path: &Path,
) -> Option<String> {
    if let Some(f) = cli {
        return Some(reference(f));
    }
    if let Some(f) = scenario_flake {
        return Some(f.to_owned()); // made absolute against the scenario's directory when parsed
    }
    if let Some(f) = std::env::var("ISOTEST_FLAKE")
        .ok()
        .filter(|f| !f.is_empty())
    {
        return Some(reference(&f));
    }
    let dir = std::fs::canonicalize(scenario_path).ok()?;
    dir.ancestors()
        .skip(1)
        .find(|d| d.join("flake.nix").is_file())
        .map(|d| d.display().to_string())
}

/// A flake reference given on the command line or in the environment, as `nix`
/// should see it: an existing directory, however written (`fixtures/flake`,
/// `./fixtures/flake`), is that directory, made absolute; `path:DIR` stays a
/// `path:` flake; other references are `nix`'s. The same rule as a scenario's
/// `flake:` ([`crate::scenario::flake_reference`]), against the working directory.
pub fn reference(text: &str) -> String {
    crate::scenario::flake_reference(text, Path::new("."))
}

/// Before any trial runs: every scenario with `iso:` has a flake, and a local
/// one exists. Said once for all trials, naming where the flake came from
/// (`--flake`, `$ISOTEST_FLAKE`, or the scenario). A scenario's own `flake:` was
/// checked when it loaded; the nearest flake.nix up exists by construction.
pub fn check_flakes<'a>(
    scenarios: impl IntoIterator<Item = &'a Scenario>,
    cli: Option<&str>,
) -> Result<(), FlakeError> {
    let mut checked = std::collections::HashSet::new();
    for scenario in scenarios {
        let Some(host) = &scenario.source.host else {
            continue;
        };
        let Some(reference) = choose_flake(cli, scenario.source.flake.as_deref(), &scenario.path)
        else {
            return Err(FlakeError::NoFlake {
                host: host.clone(),
                scenario: scenario.path.display().to_string(),
            });
        };
        let from_env = std::env::var("ISOTEST_FLAKE").is_ok_and(|f| !f.is_empty());
        let origin = match (cli, &scenario.source.flake) {
            (Some(_), _) => "--flake",
            (None, None) if from_env => "$ISOTEST_FLAKE",
            _ => continue,
        };
        if checked.insert(reference.clone()) {
            crate::scenario::check_local_flake(&reference).map_err(|detail| {
                FlakeError::NotFound {
                    reference: format!("{reference} (from {origin})"),
                    detail,
                }
            })?;
        }
    }
    Ok(())
}

/// Before any trial runs: every `iso:` host of a local flake is one of its
/// hosts (`hosts/iso/*`), so that a typo (`--iso nosuch`) is one usage error
/// naming the hosts there are, not a failed trial per firmware. Remote flakes
/// are fetched by the trials (their errors are the trials'), and so is
/// anything else that goes wrong listing a flake's hosts here (no `nix`, say):
/// only a host that is surely missing is refused.
pub fn check_hosts<'a>(
    scenarios: impl IntoIterator<Item = &'a Scenario>,
    cli: Option<&str>,
) -> Result<(), FlakeError> {
    let mut checked = std::collections::HashSet::new();
    for scenario in scenarios {
        let Some(host) = &scenario.source.host else {
            continue;
        };
        let Some(reference) = choose_flake(cli, scenario.source.flake.as_deref(), &scenario.path)
        else {
            continue;
        };
        if crate::scenario::local_flake_dir(&reference).is_none()
            || !checked.insert((reference.clone(), host.clone()))
        {
            continue;
        }
        match hosts::require_host(&reference, host, &format!("checking `iso: {host}`")) {
            Err(e @ FlakeError::NoHost { .. }) => return Err(e),
            Err(e) => tracing::debug!("not checking `iso: {host}` before the trials: {e}"),
            Ok(()) => {}
        }
    }
    Ok(())
}

/// A local flake that is not there gets a clear error before `nix` runs.
fn check_local(reference: &str) -> Result<(), FlakeError> {
    crate::scenario::check_local_flake(reference).map_err(|detail| FlakeError::NotFound {
        reference: reference.to_owned(),
        detail,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_references() {
        let e = check_local("/nonexistent/flake").unwrap_err().to_string();
        assert_eq!(e, "flake not found: /nonexistent/flake: no such directory");
        let dir = tempfile::tempdir().unwrap();
        let e = check_local(&format!("path:{}", dir.path().display()))
            .unwrap_err()
            .to_string();
        assert!(e.ends_with("has no flake.nix"), "{e}");
    }

    #[test]
    fn the_flake_is_found_up_from_the_scenario() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("flake.nix"), "{ outputs = _: { }; }").unwrap();
        std::fs::create_dir(dir.path().join("scenarios")).unwrap();
        let scenario = dir.path().join("scenarios/rescue.yaml");
        std::fs::write(&scenario, "iso: rescue\n").unwrap();
        let found = choose_flake(None, None, &scenario);
        if std::env::var_os("ISOTEST_FLAKE").is_none() {
            assert_eq!(
                found.as_deref().map(Path::new),
                Some(std::fs::canonicalize(dir.path()).unwrap().as_path())
            );
        }
        assert_eq!(
            choose_flake(Some("github:o/r"), Some("/x"), &scenario).as_deref(),
            Some("github:o/r")
        );
        assert_eq!(
            choose_flake(None, Some("/x"), &scenario).as_deref(),
            Some("/x")
        );
    }
}
