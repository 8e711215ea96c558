//! A trial's report: what ran (QEMU, its phases, its checks), what ended it,
//! and its verdict; the model every renderer reads.

use super::phase::TrialPhase;
use super::shell::shell_words;
use crate::check_id::CheckId;
use crate::checks::{CheckResult, Outcome};
use crate::console::Phase;
use crate::scenario::Origin;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// A trial's verdict, decided once (by `run`) and only read by renderers.
/// `verdict` and, unless it is a pass or a failure, `reason` in report.json.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "kebab-case")]
pub enum Verdict {
    /// It booted, checked at least one thing, and every check passed.
    Pass,
    /// A check failed, was broken or could not run, or the boot died: the ISO
    /// (or the scenario's idea of it) is wrong. The report's checks and error say how.
    Fail,
    /// The trial cannot run on this host and was not started (e.g. no OVMF for
    /// a firmware the scenario did not ask for by name).
    Skipped { reason: String },
    /// The host lacked what the trial needs (QEMU, firmware, memory, disk
    /// space, a free port): nothing was learned about the ISO.
    CouldNotTest { reason: String },
}

impl Verdict {
    /// The verdict of a trial that ran: an error decides it, else the checks.
    /// A check that could not run (or could not get evidence) is not a pass, and
    /// a trial that checked nothing has not passed either.
    pub fn judge(error: Option<&TrialError>, checks: &[CheckResult]) -> Verdict {
        match error {
            Some(e) if e.kind == ErrorKind::CouldNotTest => Verdict::CouldNotTest {
                reason: e.message.to_string(),
            },
            Some(_) => Verdict::Fail,
            None if checks.is_empty() || checks.iter().any(|c| c.outcome != Outcome::Pass) => {
                Verdict::Fail
            }
            None => Verdict::Pass,
        }
    }

    /// The word the terminal report shows.
    pub fn label(&self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::Skipped { .. } => "SKIP",
            Verdict::CouldNotTest { .. } => "COULD NOT TEST",
        }
    }

    /// Why it was skipped or could not test.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Verdict::Skipped { reason } | Verdict::CouldNotTest { reason } => Some(reason),
            Verdict::Pass | Verdict::Fail => None,
        }
    }
}

/// Whose fault an error is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    /// The boot died or the guest misbehaved: a verdict on the ISO.
    Failed,
    /// This host cannot run the trial: no verdict on the ISO.
    CouldNotTest,
}

/// Why a trial ended before its checks could speak. In report.json: `kind`,
/// `message` (the error and its causes on one line), `phase` and `evidence`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrialError {
    pub kind: ErrorKind,
    pub message: TrialMessage,
    /// The boot phase reached, when the error came during boot.
    pub phase: Option<String>,
    /// Console lines (or QEMU's stderr) that explain it.
    pub evidence: Vec<String>,
}

impl TrialError {
    /// An error of `kind` with no phase or evidence.
    pub fn new(kind: ErrorKind, message: impl Into<TrialMessage>) -> TrialError {
        TrialError {
            kind,
            message: message.into(),
            phase: None,
            evidence: Vec::new(),
        }
    }
}

/// What ended a trial: the error itself while the run has it, and its text,
/// written once from the error and its causes (`error::chain`). A report read
/// back from JSON has the text alone.
#[derive(Debug, Clone)]
pub struct TrialMessage {
    error: Option<Arc<dyn std::error::Error + Send + Sync>>,
    text: String,
}

impl TrialMessage {
    /// The message of `error`, which it keeps.
    pub fn of(error: impl std::error::Error + Send + Sync + 'static) -> TrialMessage {
        TrialMessage {
            text: crate::error::chain(&error),
            error: Some(Arc::new(error)),
        }
    }

    /// The error, in a report that ran (not one read back from JSON).
    pub fn error(&self) -> Option<&(dyn std::error::Error + Send + Sync + 'static)> {
        self.error.as_deref()
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// A message known only as text: from report.json, or made in a test.
impl From<String> for TrialMessage {
    fn from(text: String) -> TrialMessage {
        TrialMessage { error: None, text }
    }
}

impl From<&str> for TrialMessage {
    fn from(text: &str) -> TrialMessage {
        TrialMessage::from(text.to_owned())
    }
}

impl std::ops::Deref for TrialMessage {
    type Target = str;
    fn deref(&self) -> &str {
        &self.text
    }
}

impl std::fmt::Display for TrialMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl PartialEq<str> for TrialMessage {
    fn eq(&self, other: &str) -> bool {
        self.text == other
    }
}

impl PartialEq<&str> for TrialMessage {
    fn eq(&self, other: &&str) -> bool {
        self.text == *other
    }
}

impl Serialize for TrialMessage {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for TrialMessage {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(TrialMessage::from)
    }
}

/// The QEMU a trial ran: which binary, its version, and its exact arguments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QemuRun {
    pub binary: PathBuf,
    /// The first line of `--version`, if it answered.
    pub version: Option<String>,
    pub command_line: Vec<String>,
}

impl QemuRun {
    /// `qemu.cmdline`: the version, then the command as one line a shell
    /// splits back into exactly these arguments.
    pub fn cmdline_file(&self) -> String {
        let version = self
            .version
            .as_deref()
            .unwrap_or("(version unknown: `--version` did not answer)");
        format!(
            "# {version}\n{}\n",
            shell_words(&self.binary.display().to_string(), &self.command_line)
        )
    }

    pub fn of(
        binary: &std::path::Path,
        version: Option<String>,
        args: &[std::ffi::OsString],
    ) -> QemuRun {
        let command_line = args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        QemuRun {
            binary: binary.to_owned(),
            version,
            command_line,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
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
    /// The QEMU it ran, once it was started (absent in reports of older versions).
    #[serde(default)]
    pub qemu: Option<QemuRun>,
    /// When each boot phase was reached, seconds from power-on.
    pub phases: Vec<(TrialPhase, f64)>,
    /// Seconds from the start of the trial to its verdict.
    pub total_secs: f64,
    pub checks: Vec<CheckResult>,
    pub error: Option<TrialError>,
    pub artifacts: PathBuf,
    /// The display's picture when the boot failed (`screen.png`), a file in
    /// `artifacts` (absent in reports of older versions).
    #[serde(default)]
    pub screendump: Option<PathBuf>,
    /// Units that had failed when the boot was done (`systemctl --failed`),
    /// each with the end of its journal. Reported, not judged: a check that
    /// needs one fails by itself (absent in reports of older versions).
    #[serde(default)]
    pub failed_units: Vec<FailedUnit>,
    /// Start-up was still running when the failed units were listed (a
    /// scenario without steps does not wait for it): more may fail later.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub startup_unfinished: bool,
    /// When the boot was shared with other trials: this trial's part in it
    /// (absent for a trial that booted alone, and in older versions' reports).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared: Option<super::shared::SharedBoot>,
    #[serde(flatten)]
    pub verdict: Verdict,
}

/// A systemd unit that failed during the boot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedUnit {
    /// e.g. `rescue-mirror.service`.
    pub unit: String,
    /// The last lines of `journalctl -u <unit> -b`.
    pub journal: Vec<String>,
}

impl TrialReport {
    /// The report of a trial before anything happened: nothing recorded yet,
    /// and a verdict that is decided when the trial ends.
    pub fn new(
        name: String,
        scenario: String,
        arch: String,
        firmware: String,
        artifacts: PathBuf,
    ) -> TrialReport {
        TrialReport {
            name,
            scenario,
            arch,
            firmware,
            image: None,
            flake: None,
            build_secs: None,
            origins: Default::default(),
            accel: None,
            accel_note: None,
            qemu: None,
            phases: Vec::new(),
            total_secs: 0.0,
            checks: Vec::new(),
            error: None,
            artifacts,
            screendump: None,
            failed_units: Vec::new(),
            startup_unfinished: false,
            shared: None,
            verdict: Verdict::Fail,
        }
    }

    pub fn passed(&self) -> bool {
        self.verdict == Verdict::Pass
    }

    /// The seconds from power-on to a shell, if it got there.
    pub fn boot_secs(&self) -> Option<f64> {
        self.phases
            .iter()
            .find(|(p, _)| *p == TrialPhase::Boot(Phase::Shell))
            .map(|(_, t)| *t)
    }

    /// Where the screendump is, if one was taken.
    pub fn screendump_path(&self) -> Option<PathBuf> {
        self.screendump
            .as_ref()
            .map(|file| self.artifacts.join(file))
    }

    pub fn check(&self, id: &CheckId) -> Option<&CheckResult> {
        self.checks.iter().find(|c| c.name == *id)
    }

    /// ` (from the flake)`: where a check's expectation came from, as the
    /// reports say it after "expected"; empty when the report does not say.
    pub fn origin_note(&self, check: &CheckResult) -> String {
        self.origins
            .get(&check.name.to_string())
            .map(|o| format!(" (from the {})", o.as_str()))
            .unwrap_or_default()
    }

    /// Writes `report.json` into the trial's artifact directory.
    pub fn write_json(&self) -> std::io::Result<PathBuf> {
        let path = self.artifacts.join("report.json");
        let json = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(&path, json)?;
        Ok(path)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A trial the way `run` reports it (phases, QEMU, origins), with the
    /// checks its verdict implies: all passed for a pass; a failed hostname and
    /// an sshd check that could not run for a failure.
    pub(crate) fn sample(name: &str, verdict: Verdict) -> TrialReport {
        let parts: Vec<&str> = name.split("::").collect();
        let passed = verdict == Verdict::Pass;
        let hostname = CheckResult {
            name: CheckId::Hostname,
            outcome: if passed { Outcome::Pass } else { Outcome::Fail },
            expected: "rescue".into(),
            actual: if passed { "rescue" } else { "wrong-name" }.into(),
            message: if passed {
                "hostname is `rescue`".into()
            } else {
                "hostname mismatch: expected `rescue`, the guest says `wrong-name`".into()
            },
            evidence: vec![
                "$ cat /proc/sys/kernel/hostname".into(),
                if passed { "rescue" } else { "wrong-name" }.into(),
            ],
            secs: 0.04,
        };
        let sshd = if passed {
            CheckResult {
                name: CheckId::Sshd,
                message: "sshd runs as configured".into(),
                ..check(Outcome::Pass)
            }
        } else {
            CheckResult::not_run(CheckId::Sshd, "sshd.service active", "no shell")
        };
        let artifacts = format!("target/isotest/{}", name.replace("::", "-")).into();
        TrialReport {
            image: Some("/isos/rescue.iso".into()),
            origins: [("hostname".to_owned(), Origin::Scenario)].into(),
            accel: Some("tcg".into()),
            qemu: Some(QemuRun {
                binary: "/usr/bin/qemu-system-x86_64".into(),
                version: Some("QEMU emulator version 7.2.19".into()),
                command_line: ["-machine", "pc,accel=tcg", "-m", "1024M"]
                    .map(String::from)
                    .to_vec(),
            }),
            phases: [
                (Phase::PowerOn, 0.0),
                (Phase::BootMenu, 0.29),
                (Phase::Kernel, 8.894405383),
                (Phase::Userspace, 19.9),
                (Phase::Shell, 46.46),
            ]
            .map(|(p, t)| (p.into(), t))
            .to_vec(),
            total_secs: 50.9,
            checks: vec![
                CheckResult {
                    name: CheckId::Autologin,
                    ..check(Outcome::Pass)
                },
                hostname,
                sshd,
            ],
            verdict,
            ..TrialReport::new(
                name.into(),
                parts[0].into(),
                parts[1].into(),
                parts[2].into(),
                artifacts,
            )
        }
    }

    fn check(outcome: Outcome) -> CheckResult {
        CheckResult {
            name: CheckId::Hostname,
            outcome,
            expected: "rescue".into(),
            actual: String::new(),
            message: String::new(),
            evidence: Vec::new(),
            secs: 0.0,
        }
    }

    fn error(kind: ErrorKind) -> TrialError {
        TrialError {
            kind,
            message: "qemu-system-x86_64 not found on PATH".into(),
            phase: None,
            evidence: Vec::new(),
        }
    }

    #[test]
    fn the_verdict_of_a_trial_that_ran() {
        assert_eq!(Verdict::judge(None, &[check(Outcome::Pass)]), Verdict::Pass);
        assert_eq!(
            Verdict::judge(None, &[check(Outcome::Pass), check(Outcome::Fail)]),
            Verdict::Fail
        );
        assert_eq!(
            Verdict::judge(None, &[check(Outcome::NotRun)]),
            Verdict::Fail,
            "not run is not a pass"
        );
        assert_eq!(
            Verdict::judge(None, &[]),
            Verdict::Fail,
            "checking nothing is not a pass"
        );
        assert_eq!(
            Verdict::judge(Some(&error(ErrorKind::Failed)), &[check(Outcome::Pass)]),
            Verdict::Fail
        );
        assert_eq!(
            Verdict::judge(Some(&error(ErrorKind::CouldNotTest)), &[]),
            Verdict::CouldNotTest {
                reason: "qemu-system-x86_64 not found on PATH".into()
            }
        );
    }

    #[test]
    fn report_json_carries_the_verdict_and_its_reason() {
        let report = TrialReport {
            verdict: Verdict::Skipped {
                reason: "no UEFI firmware for x86_64 found".into(),
            },
            ..TrialReport::new(
                "rescue::x86_64::uefi".into(),
                "rescue".into(),
                "x86_64".into(),
                "uefi".into(),
                "target/isotest/rescue-x86_64-uefi".into(),
            )
        };
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["verdict"], "skipped");
        assert_eq!(json["reason"], "no UEFI firmware for x86_64 found");
        let json = serde_json::to_value(TrialReport {
            verdict: Verdict::CouldNotTest { reason: "x".into() },
            ..report.clone()
        })
        .unwrap();
        assert_eq!(json["verdict"], "could-not-test");
        let json = serde_json::to_value(TrialReport {
            verdict: Verdict::Pass,
            ..report.clone()
        })
        .unwrap();
        assert_eq!(json["verdict"], "pass");
        assert!(json.get("reason").is_none());
        // Reports written before screendumps existed still read.
        let mut old = serde_json::to_value(&report).unwrap();
        old.as_object_mut().unwrap().remove("screendump");
        assert_eq!(
            serde_json::from_value::<TrialReport>(old)
                .unwrap()
                .screendump,
            None
        );
    }

    #[test]
    fn qemu_cmdline_holds_the_version_and_a_command_a_shell_splits_back() {
        let run = QemuRun {
            binary: "/usr/bin/qemu-system-x86_64".into(),
            version: Some("QEMU emulator version 10.0.2".into()),
            command_line: [
                "-drive",
                "file=/isos/my rescue.iso,media=cdrom",
                "-m",
                "1024M",
            ]
            .map(String::from)
            .to_vec(),
        };
        assert_eq!(
            run.cmdline_file(),
            "# QEMU emulator version 10.0.2\n/usr/bin/qemu-system-x86_64 -drive 'file=/isos/my rescue.iso,media=cdrom' -m 1024M\n"
        );
    }

    #[test]
    fn a_trial_error_is_written_as_its_message_with_its_causes() {
        #[derive(Debug, thiserror::Error)]
        #[error("create target/isotest/t")]
        struct Create(#[source] std::io::Error);
        let cause = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "denied");
        let e = TrialError {
            phase: Some("kernel".into()),
            ..TrialError::new(ErrorKind::CouldNotTest, TrialMessage::of(Create(cause)))
        };
        assert!(e.message.error().is_some(), "the error is kept");
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "kind": "could-not-test",
                "message": "create target/isotest/t: denied",
                "phase": "kernel",
                "evidence": [],
            })
        );
        let back: TrialError = serde_json::from_value(json).unwrap();
        assert_eq!(back.message, "create target/isotest/t: denied");
        assert!(back.message.error().is_none(), "JSON holds the text alone");
    }
}
