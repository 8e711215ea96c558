//! Scenarios: the YAML files that say which ISO to boot and what to expect of it.
//!
//! Parsing is strict (unknown fields are errors) and every error names the file,
//! line, column and field, because a typo in a scenario must never silently turn
//! a check off.

mod merge;
mod model;
mod values;

pub use merge::{Origin, Origins};
pub use model::{
    permit_root_login_of_bool, permit_root_login_of_str, Autologin, Boot, Expect, HomeManager,
    Installed, MaxSlowdown, Package, Scenario, Source, SshLogin, Sshd, Step, User,
    MAX_SLOWDOWN_FRACTION, MAX_SLOWDOWN_SECONDS,
};
pub use values::{
    check_hostname, check_local_flake, flake_reference, local_flake_dir, parse_duration,
    parse_memory, MAX_MEMORY_MIB, MAX_TIMEOUT,
};

use crate::platform::Firmware;
use std::path::{Path, PathBuf};

/// Why a scenario could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("{path}: cannot read scenario: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// YAML syntax or a field of the wrong shape, located by the parser.
    #[error("{path}:{line}:{column}: {message}")]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    /// A value that parses but makes no sense (e.g. neither `iso` nor `image`).
    #[error("{path}: {field}: {message}")]
    Invalid {
        path: PathBuf,
        field: String,
        message: String,
    },
}

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
        check_files(&scenario, &text)?;
        Ok(scenario)
    }

    /// Parses scenario text; `path` names it in errors and anchors relative paths.
    pub fn parse(path: &Path, text: &str) -> Result<Scenario, ScenarioError> {
        let file: model::ScenarioFile = serde_yaml_ng::from_str(text).map_err(|err| {
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
        let scenario = file.into_scenario(name, path, base)?;
        check_machines(&scenario, text)?;
        Ok(scenario)
    }
}

/// Every architecture must have a firmware it can boot among those listed
/// (`arch: aarch64` with `firmware: bios` cannot run). The error points at the
/// `firmware:` line, as a parse error would.
fn check_machines(scenario: &Scenario, text: &str) -> Result<(), ScenarioError> {
    if scenario.firmware.is_empty() {
        return Ok(());
    }
    for &arch in &scenario.arch {
        if !scenario
            .firmware
            .iter()
            .any(|f| Firmware::all_for(arch).contains(f))
        {
            let listed: Vec<&str> = scenario.firmware.iter().map(|f| f.as_str()).collect();
            let can: Vec<&str> = Firmware::all_for(arch).iter().map(|f| f.as_str()).collect();
            let (line, column) = locate_key(text, "firmware").unwrap_or((1, 1));
            return Err(ScenarioError::Syntax {
                path: scenario.path.clone(),
                line,
                column,
                message: format!(
                    "firmware: {arch} cannot boot with {}; it boots with {}",
                    listed.join(", "),
                    can.join(" or ")
                ),
            });
        }
    }
    Ok(())
}

/// The files the scenario names exist. Remote flakes (`github:...`) cannot be
/// checked before `nix` fetches them; the run reports those.
fn check_files(scenario: &Scenario, text: &str) -> Result<(), ScenarioError> {
    let located = |key: &str, written: &str, message: String| {
        let (line, column) = locate_value(text, key, written).unwrap_or((1, 1));
        ScenarioError::Syntax {
            path: scenario.path.clone(),
            line,
            column,
            message,
        }
    };
    let images_key = if scenario.source.image_list {
        "images"
    } else {
        "image"
    };
    for image in &scenario.source.images {
        if !image.is_file() {
            let written = as_written(image, &scenario.path);
            return Err(located(
                images_key,
                &written,
                format!("{images_key}: no such file: {}", image.display()),
            ));
        }
        // Not bootable from a CD-ROM at all: no trial could learn anything.
        if let Err(e) = crate::iso::inspect(image) {
            return Err(located(
                images_key,
                &as_written(image, &scenario.path),
                format!("{images_key}: {e}"),
            ));
        }
    }
    if let Some(baseline) = &scenario.baseline {
        let written = as_written(baseline, &scenario.path);
        if !baseline.is_file() {
            return Err(located(
                "baseline",
                &written,
                format!("baseline: no such file: {}", baseline.display()),
            ));
        }
        if let Err(e) = crate::iso::inspect(baseline) {
            return Err(located("baseline", &written, format!("baseline: {e}")));
        }
    }
    for (arch, code, vars) in &scenario.uefi {
        for file in [code, vars] {
            if !file.is_file() {
                let written = as_written(file, &scenario.path);
                return Err(located(
                    "uefi",
                    &written,
                    format!("uefi: {arch}: no such file: {}", file.display()),
                ));
            }
        }
    }
    if let Some(flake) = &scenario.source.flake {
        check_local_flake(flake)
            .map_err(|why| located("flake", "", format!("flake: {flake} is not a flake: {why}")))?;
    }
    Ok(())
}

/// A path of the scenario as its file wrote it (parsing joined it to the file's
/// directory).
fn as_written(file: &Path, scenario: &Path) -> String {
    let base = scenario.parent().unwrap_or(Path::new("."));
    file.strip_prefix(base)
        .unwrap_or(file)
        .display()
        .to_string()
}

/// Where `written` appears in the value of the top-level `key` (the key's own
/// line, or a later line of its block); else the key's value.
fn locate_value(text: &str, key: &str, written: &str) -> Option<(usize, usize)> {
    let (key_line, key_column) = locate_key(text, key)?;
    if written.is_empty() {
        return Some((key_line, key_column));
    }
    let lines = text.lines().enumerate().skip(key_line - 1);
    let block = lines.take_while(|(i, l)| {
        *i + 1 == key_line || l.starts_with([' ', '\t', '-']) || l.trim().is_empty()
    });
    let found = block
        .into_iter()
        .find_map(|(i, l)| l.find(written).map(|c| (i + 1, c + 1)));
    Some(found.unwrap_or((key_line, key_column)))
}

/// The line and column of a top-level key's value.
fn locate_key(text: &str, key: &str) -> Option<(usize, usize)> {
    text.lines().enumerate().find_map(|(i, line)| {
        let rest = line.strip_prefix(key)?.strip_prefix(':')?;
        let value_at = key.len() + 1 + (rest.len() - rest.trim_start().len());
        Some((i + 1, value_at + 1))
    })
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
