//! Scenarios: the YAML files that say which ISO to boot and what to expect of it.
//!
//! Parsing is strict (unknown fields are errors) and every error names the file,
//! line, column and field, because a typo in a scenario must never silently turn
//! a check off.

mod merge;
mod model;
mod values;

pub use model::{
    Arch, Autologin, Boot, Expect, Firmware, HomeManager, Scenario, Source, SshLogin, Sshd, Step, User,
};
pub use merge::{Origin, Origins};
pub use values::{parse_duration, parse_memory};

use std::path::{Path, PathBuf};

/// Why a scenario could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("{path}: cannot read scenario: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    /// YAML syntax or a field of the wrong shape, located by the parser.
    #[error("{path}:{line}:{column}: {message}")]
    Syntax { path: PathBuf, line: usize, column: usize, message: String },
    /// A value that parses but makes no sense (e.g. neither `iso` nor `image`).
    #[error("{path}: {field}: {message}")]
    Invalid { path: PathBuf, field: String, message: String },
}

impl Scenario {
    /// Reads and validates a scenario file. Its name is the file's stem.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ScenarioError::Read { path: path.to_owned(), source })?;
        Scenario::parse(path, &text)
    }

    /// Parses scenario text; `path` names it in errors and anchors relative paths.
    pub fn parse(path: &Path, text: &str) -> Result<Scenario, ScenarioError> {
        let file: model::ScenarioFile = serde_yaml_ng::from_str(text).map_err(|err| {
            let (line, column) = err.location().map(|l| (l.line(), l.column())).unwrap_or((1, 1));
            ScenarioError::Syntax { path: path.to_owned(), line, column, message: strip_location(&err.to_string()) }
        })?;
        let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let base = path.parent().unwrap_or(Path::new("."));
        file.into_scenario(name, path, base)
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
mod tests;
