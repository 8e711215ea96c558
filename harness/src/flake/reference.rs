//! Which flake a scenario's `iso:` host comes from, and how a reference given
//! on the command line is read.

use std::path::Path;

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
    if let Some(f) = env_flake() {
        return Some(reference(&f));
    }
    let dir = std::fs::canonicalize(scenario_path).ok()?;
    dir.ancestors()
        .skip(1)
        .find(|d| d.join("flake.nix").is_file())
        .map(|d| d.display().to_string())
}

/// `$ISOTEST_FLAKE`, when it is set to something.
pub(super) fn env_flake() -> Option<String> {
    std::env::var("ISOTEST_FLAKE")
        .ok()
        .filter(|f| !f.is_empty())
}

/// A flake reference given on the command line or in the environment, as `nix`
/// should see it: an existing directory, however written (`fixtures/flake`,
/// `./fixtures/flake`), is that directory, made absolute; `path:DIR` stays a
/// `path:` flake; other references are `nix`'s. The same rule as a scenario's
/// `flake:` ([`crate::scenario::flake_reference`]), against the working directory.
pub fn reference(text: &str) -> String {
    crate::scenario::flake_reference(text, Path::new("."))
}

#[cfg(test)]
mod tests {
    use super::*;

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
