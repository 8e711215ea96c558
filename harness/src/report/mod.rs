//! Results: the model of a trial's outcome, its human rendering, and the JSON
//! written next to the transcripts.

mod human;

pub use human::{render_failure, render_line};

use crate::checks::{CheckResult, Outcome};
use crate::scenario::Origin;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Why a trial ended before its checks could speak.
#[derive(Debug, Clone, Serialize)]
pub struct TrialError {
    pub message: String,
    /// The boot phase reached, when the error came during boot.
    pub phase: Option<String>,
    /// Console lines (or QEMU's stderr) that explain it.
    pub evidence: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TrialReport {
    pub name: String,
    pub scenario: String,
    pub arch: String,
    pub firmware: String,
    pub image: Option<PathBuf>,
    /// The flake attribute of `iso:` (`<flake>#packages.<system>.<host>`).
    pub flake: Option<String>,
    /// How long `nix build` took, when the harness built the ISO.
    pub build_secs: Option<f64>,
    /// Where each check's expectation came from, by check name.
    pub origins: BTreeMap<String, Origin>,
    /// `kvm` or `tcg`, and why not KVM.
    pub accel: Option<String>,
    pub accel_note: Option<String>,
    /// When each boot phase was reached, seconds from power-on.
    pub phases: Vec<(String, f64)>,
    /// Seconds from the start of the trial to its verdict.
    pub total_secs: f64,
    pub checks: Vec<CheckResult>,
    pub error: Option<TrialError>,
    pub artifacts: PathBuf,
}

impl TrialReport {
    /// Passed means: no error, at least one check, and every check passed. A check
    /// that could not run is not a pass.
    pub fn passed(&self) -> bool {
        self.error.is_none() && !self.checks.is_empty() && self.checks.iter().all(|c| c.outcome == Outcome::Pass)
    }

    /// The seconds from power-on to a shell, if it got there.
    pub fn boot_secs(&self) -> Option<f64> {
        self.phases.iter().find(|(p, _)| p == "shell").map(|(_, t)| *t)
    }

    pub fn check(&self, name: &str) -> Option<&CheckResult> {
        self.checks.iter().find(|c| c.name == name)
    }

    /// Writes `report.json` into the trial's artifact directory.
    pub fn write_json(&self) -> std::io::Result<PathBuf> {
        let path = self.artifacts.join("report.json");
        let json = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(&path, json)?;
        Ok(path)
    }
}
