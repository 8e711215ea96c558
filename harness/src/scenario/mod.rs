//! Scenarios: the YAML files that say which ISO to boot and what to expect of it.
//!
//! Parsing is strict (unknown fields are errors) and every error names the file,
//! line, column and field, because a typo in a scenario must never silently turn
//! a check off. `file` is the YAML as written (its scalars read by `de`),
//! `validate` makes the `model` of it, and `check` looks at what the model names.

mod check;
mod de;
mod error;
mod file;
mod merge;
mod model;
mod validate;
mod values;

pub use error::{Problem, ScenarioError};
pub use merge::{Origin, Origins};
pub use model::{
    Autologin, Boot, Expect, HomeManager, Installed, MaxSlowdown, Package, Scenario, Source,
    SshLogin, Sshd, Step, User, MAX_SLOWDOWN_FRACTION, MAX_SLOWDOWN_SECONDS,
};
pub use values::{
    check_hostname, check_local_flake, flake_reference, local_flake_dir, parse_duration,
    parse_memory, permit_root_login_of_str, yes_no, BadEnvName, BadName, DurationError,
    HostnameError, MemoryError, NotAFlake, UnknownPermitRootLogin, MAX_MEMORY_MIB, MAX_TIMEOUT,
};

use std::path::Path;

impl Scenario {
    /// Reads and validates a scenario file. Its name is the file's stem. The
    /// files it names (ISOs, UEFI firmware, a local flake) must exist: a missing
    /// one is the scenario's error, said once, not a failure of every trial.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: path.to_owned(),
            source,
        })?;
        let scenario = Scenario::parse(path, &text)?;
        check::files(&scenario, &text)?;
        Ok(scenario)
    }

    /// Parses scenario text; `path` names it in errors and anchors relative paths.
    pub fn parse(path: &Path, text: &str) -> Result<Scenario, ScenarioError> {
        let file: file::ScenarioFile = serde_yaml_ng::from_str(text).map_err(|err| {
            let (line, column) = err
                .location()
                .map(|l| (l.line(), l.column()))
                .unwrap_or((1, 1));
            ScenarioError::Syntax {
                path: path.to_owned(),
                line,
                column,
                message: strip_location(&err.to_string()),
            }
        })?;
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let base = path.parent().unwrap_or(Path::new("."));
        let scenario = validate::scenario(file, name, path, base)?;
        check::machines(&scenario, text)?;
        Ok(scenario)
    }
}

/// serde_yaml_ng appends " at line L column C" to its messages; we print the
/// location in front, compiler-style, so drop the duplicate.
fn strip_location(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
