//! Checks made once a scenario has parsed, located in its text as a parse
//! error would be: every architecture has a firmware it can boot, and the files
//! the scenario names exist.

use super::error::ScenarioError;
use super::model::Scenario;
use super::values::check_local_flake;
use crate::platform::Firmware;
use std::path::Path;

/// Every architecture must have a firmware it can boot among those listed
/// (`arch: aarch64` with `firmware: bios` cannot run). The error points at the
/// `firmware:` line, as a parse error would.
pub(super) fn machines(scenario: &Scenario, text: &str) -> Result<(), ScenarioError> {
    if scenario.firmware.is_empty() {
        return Ok(());
    }
    let Some(arch) = scenario.arch.iter().find(|&&arch| {
        !scenario
            .firmware
            .iter()
            .any(|f| Firmware::all_for(arch).contains(f))
    }) else {
        return Ok(());
    };
    let listed: Vec<&str> = scenario.firmware.iter().map(|f| f.as_str()).collect();
    let can: Vec<&str> = Firmware::all_for(*arch)
        .iter()
        .map(|f| f.as_str())
        .collect();
    let (line, column) = locate_key(text, "firmware").unwrap_or((1, 1));
    Err(ScenarioError::Syntax {
        path: scenario.path.clone(),
        line,
        column,
        message: format!(
            "firmware: {arch} cannot boot with {}; it boots with {}",
            listed.join(", "),
            can.join(" or ")
        ),
    })
}

/// A scenario's text, to locate what is wrong in it.
struct Located<'a> {
    scenario: &'a Scenario,
    text: &'a str,
}

impl Located<'_> {
    /// An error at `file` as written in the value of `key`.
    fn error(&self, key: &str, file: &Path, message: String) -> ScenarioError {
        let written = as_written(file, &self.scenario.path);
        self.at_value(key, &written, message)
    }

    /// An error at `written` in the value of `key` (at the value itself when
    /// `written` is empty).
    fn at_value(&self, key: &str, written: &str, message: String) -> ScenarioError {
        let (line, column) = locate_value(self.text, key, written).unwrap_or((1, 1));
        ScenarioError::Syntax {
            path: self.scenario.path.clone(),
            line,
            column,
            message,
        }
    }

    /// The ISO exists and is bootable from a CD-ROM at all: else no trial
    /// could learn anything.
    fn image(&self, key: &str, image: &Path) -> Result<(), ScenarioError> {
        if !image.is_file() {
            let message = format!("{key}: no such file: {}", image.display());
            return Err(self.error(key, image, message));
        }
        crate::iso::inspect(image).map_err(|e| {
            let message = format!("{key}: {}", crate::error::chain(&e));
            self.error(key, image, message)
        })?;
        Ok(())
    }
}

/// The files the scenario names exist. Remote flakes (`github:...`) cannot be
/// checked before `nix` fetches them; the run reports those.
pub(super) fn files(scenario: &Scenario, text: &str) -> Result<(), ScenarioError> {
    let at = Located { scenario, text };
    let images_key = if scenario.source.image_list {
        "images"
    } else {
        "image"
    };
    for image in &scenario.source.images {
        at.image(images_key, image)?;
    }
    if let Some(baseline) = &scenario.baseline {
        at.image("baseline", baseline)?;
    }
    for (arch, code, vars) in &scenario.uefi {
        if let Some(file) = [code, vars].into_iter().find(|f| !f.is_file()) {
            let message = format!("uefi: {arch}: no such file: {}", file.display());
            return Err(at.error("uefi", file, message));
        }
    }
    if let Some(flake) = &scenario.source.flake {
        check_local_flake(flake).map_err(|why| {
            let message = format!("flake: {flake} is not a flake: {why}");
            at.at_value("flake", "", message)
        })?;
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
