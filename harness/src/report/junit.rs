//! JUnit XML for CI (`--junit FILE`): one test suite per trial, one test case
//! per check, written with quick-junit. Each outcome maps to one JUnit element,
//! decided here and nowhere else:
//!
//! | isotest | JUnit |
//! |---|---|
//! | check passed | test case without a child |
//! | check failed (or broken: no evidence could be had) | `<failure>` with expected, actual, evidence |
//! | check not run | `<skipped>` with the reason |
//! | the boot died, or the ISO could not be had | a `boot` (or `setup`) case with a `<failure>`: the phase reached and the console |
//! | trial skipped | a suite whose one case, `trial`, is `<skipped>` with the reason |
//! | could not test | a `could not test` case with an `<error>` |
//!
//! The trial's phases, accelerator, QEMU, transcript and screendump paths are suite
//! properties; the phases are also the suite's system-out, as a timeline.
//! Validated against Jenkins' junit-10.xsd in tests/report.rs.

use super::compare::{Change, Comparison};
use super::human::write_lines;
use super::json::ReportError;
use super::shell::shell_words;
use super::trial::{ErrorKind, TrialError, TrialReport, Verdict};
use crate::checks::{CheckResult, Outcome};
use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};
use std::fmt::Write;
use std::time::Duration;

/// The JUnit XML of these trials, and of their comparison with a baseline
/// when there is one.
pub fn render_junit(
    trials: &[TrialReport],
    comparison: Option<&Comparison>,
) -> Result<String, ReportError> {
    let mut report = Report::new("isotest");
    report.add_test_suites(trials.iter().map(suite));
    report.add_test_suites(comparison.map(comparison_suite));
    report.set_time(secs(trials.iter().map(|t| t.total_secs).sum()));
    let xml = report
        .to_string()
        .map_err(|e| ReportError::Junit(e.into()))?;
    without_root_skipped(&xml)
}

/// The suite `baseline comparison`: per compared trial a case per check
/// (`<trial> check hostname`) and per phase (`<trial> phase kernel`); each
/// regression is a `<failure>` saying what changed, the rest pass (a check
/// that still fails is a failure in its trial's own suite already).
fn comparison_suite(c: &Comparison) -> TestSuite {
    let mut suite = TestSuite::new("baseline comparison");
    for t in &c.trials {
        if let Some(why) = &t.not_compared {
            let mut status = TestCaseStatus::skipped();
            status.set_message(why.as_str());
            suite.add_test_case(comparison_case(&t.name, "trial", status));
            continue;
        }
        for check in &t.checks {
            let status = match check.change {
                Change::Regression => regression(format!(
                    "passed on the baseline, not now: {}",
                    check.message
                )),
                Change::StillFailing | Change::Fixed | Change::Unchanged => {
                    TestCaseStatus::success()
                }
            };
            let mut case = comparison_case(&t.name, &format!("check {}", check.name), status);
            case.set_system_out(check.change.label());
            suite.add_test_case(case);
        }
        for phase in &t.phases {
            let status = if phase.slower {
                regression(phase.describe(&t.max_slowdown))
            } else {
                TestCaseStatus::success()
            };
            let mut case = comparison_case(&t.name, &format!("phase {}", phase.name), status);
            case.set_system_out(phase.describe(&t.max_slowdown));
            suite.add_test_case(case);
        }
    }
    suite
}

fn comparison_case(trial: &str, name: &str, status: TestCaseStatus) -> TestCase {
    let mut case = TestCase::new(format!("{trial} {name}"), status);
    case.set_classname(trial);
    case
}

fn regression(message: String) -> TestCaseStatus {
    let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
    status.set_type("regression").set_message(message);
    status
}

/// A trial's suite.
fn suite(r: &TrialReport) -> TestSuite {
    let mut suite = TestSuite::new(r.name.as_str());
    suite.set_time(secs(r.total_secs));
    suite.add_properties(properties(r));
    if !r.phases.is_empty() {
        suite.set_system_out(timeline(r));
    }
    let mut cases: Vec<TestCase> = Vec::new();
    match &r.verdict {
        Verdict::Skipped { reason } => {
            let mut status = TestCaseStatus::skipped();
            status.set_message(reason.as_str());
            cases.push(case(r, "trial", status));
        }
        Verdict::CouldNotTest { reason } => {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
            status
                .set_type("could-not-test")
                .set_message(reason.as_str());
            if let Some(e) = &r.error {
                status.set_description(error_text(r, e));
            }
            cases.push(case(r, "could not test", status));
        }
        Verdict::Pass | Verdict::Fail => cases.push(boot_case(r)),
    }
    cases.extend(r.checks.iter().map(|c| check_case(r, c)));
    // A failed verdict always shows as a failure, even when no case above failed
    // (a trial that checked nothing).
    let failed_case = cases
        .iter()
        .any(|c| matches!(c.status, TestCaseStatus::NonSuccess { .. }));
    if r.verdict == Verdict::Fail && !failed_case {
        let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
        status.set_type("verdict").set_message(no_check_message(r));
        cases.push(case(r, "verdict", status));
    }
    suite.add_test_cases(cases);
    suite
}

/// The boot (or, before it, getting the ISO): passed unless an error ended the trial.
fn boot_case(r: &TrialReport) -> TestCase {
    let Some(e) = r.error.as_ref().filter(|e| e.kind == ErrorKind::Failed) else {
        let mut boot = case(r, "boot", TestCaseStatus::success());
        if let Some(t) = r.boot_secs() {
            boot.set_time(secs(t));
        }
        return boot;
    };
    let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
    status
        .set_type("boot")
        .set_message(e.message.as_str())
        .set_description(error_text(r, e));
    // No phase: it died before QEMU started (no ISO, a failed build).
    case(r, if e.phase.is_some() { "boot" } else { "setup" }, status)
}

fn check_case(r: &TrialReport, c: &CheckResult) -> TestCase {
    let status = match c.outcome {
        Outcome::Pass => TestCaseStatus::success(),
        Outcome::NotRun => {
            let mut status = TestCaseStatus::skipped();
            status.set_message(c.message.as_str());
            status
        }
        // Failed, and any outcome that is neither a pass nor "not run" (a check
        // that could not get evidence): a failure.
        _ => {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
            status
                .set_type(outcome_name(c.outcome))
                .set_message(c.message.as_str())
                .set_description(check_text(r, c));
            status
        }
    };
    let mut case = case(r, &c.name.to_string(), status);
    case.set_time(secs(c.secs));
    case
}

fn case(r: &TrialReport, name: &str, status: TestCaseStatus) -> TestCase {
    let mut case = TestCase::new(name, status);
    case.set_classname(r.name.as_str());
    case
}

/// `fail`, `broken`: the outcome as report.json spells it.
pub(super) fn outcome_name(outcome: Outcome) -> String {
    serde_json::to_value(outcome)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn no_check_message(r: &TrialReport) -> String {
    if r.checks.is_empty() {
        "the scenario checks nothing; add `expect:` or `steps:`".into()
    } else {
        "the trial failed".into()
    }
}

/// A failed check's text: what was expected (and where that came from), what
/// the guest said, the evidence, and the transcript.
fn check_text(r: &TrialReport, c: &CheckResult) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "expected{}: {}", r.origin_note(c), c.expected);
    let _ = writeln!(out, "actual: {}", c.actual_or_dash());
    write_lines(&mut out, "", "evidence", &c.evidence);
    let _ = writeln!(
        out,
        "transcript: {}",
        r.artifacts.join("console.log").display()
    );
    out
}

/// An error's text: the phase reached, the console lines, the transcript.
fn error_text(r: &TrialReport, e: &TrialError) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", e.message);
    if let Some(phase) = &e.phase {
        let _ = writeln!(out, "phase reached: {phase}");
    }
    write_lines(&mut out, "", "console", &e.evidence);
    let _ = writeln!(
        out,
        "transcript: {}",
        r.artifacts.join("console.log").display()
    );
    if let Some(png) = r.screendump_path() {
        let _ = writeln!(out, "screendump: {}", png.display());
    }
    out
}

/// What a CI shows beside the suite: where it ran and how long each phase took.
fn properties(r: &TrialReport) -> Vec<Property> {
    let mut props = vec![
        Property::new("scenario", r.scenario.as_str()),
        Property::new("arch", r.arch.as_str()),
        Property::new("firmware", r.firmware.as_str()),
        Property::new("verdict", r.verdict.label()),
        Property::new(
            "transcript",
            r.artifacts.join("console.log").display().to_string(),
        ),
    ];
    let optional = [
        ("reason", r.verdict.reason().map(str::to_owned)),
        ("image", r.image.as_ref().map(|i| i.display().to_string())),
        ("flake", r.flake.clone()),
        ("accelerator", r.accel.clone()),
        ("accelerator note", r.accel_note.clone()),
        (
            "boot",
            r.shared.as_ref().map(super::shared::SharedBoot::long),
        ),
        (
            "qemu version",
            r.qemu.as_ref().and_then(|q| q.version.clone()),
        ),
        (
            "qemu command line",
            r.qemu
                .as_ref()
                .map(|q| shell_words(&q.binary.display().to_string(), &q.command_line)),
        ),
        ("build seconds", r.build_secs.map(|s| format!("{s:.3}"))),
        (
            "screendump",
            r.screendump_path().map(|p| p.display().to_string()),
        ),
    ];
    props.extend(
        optional
            .into_iter()
            .filter_map(|(name, value)| value.map(|v| Property::new(name, v))),
    );
    props.extend(
        r.phases
            .iter()
            .map(|(phase, t)| Property::new(format!("phase {phase}"), format!("{t:.3}"))),
    );
    props
}

/// `phase  at  took` lines, one per phase.
fn timeline(r: &TrialReport) -> String {
    let mut out = String::from("phase          reached at (s)  took (s)\n");
    for (i, (phase, t)) in r.phases.iter().enumerate() {
        let took = r
            .phases
            .get(i + 1)
            .map(|(_, next)| format!("{:.1}", next - t))
            .unwrap_or_default();
        let _ = writeln!(out, "{phase:<14} {t:>14.1}  {took:>8}");
    }
    let checks: f64 = r.checks.iter().map(|c| c.secs).sum();
    let _ = writeln!(out, "{:<14} {:>14}  {checks:>8.1}", "checks", "");
    out
}

/// A time from a report, which may have been edited or merged from anywhere:
/// one that no `Duration` holds (negative, NaN, 1e20 s) is 0, never a panic.
fn secs(s: f64) -> Duration {
    Duration::try_from_secs_f64(s).unwrap_or_default()
}

/// quick-junit counts skipped tests on `<testsuites>`; Jenkins' junit-10.xsd
/// (what Jenkins, GitLab and most readers follow) has no such attribute there,
/// only on each `<testsuite>`. The count stays on the suites.
fn without_root_skipped(xml: &str) -> Result<String, ReportError> {
    use quick_xml::events::{BytesStart, Event};
    let junit = |e: &dyn std::fmt::Display| ReportError::Junit(e.to_string().into());
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut writer = quick_xml::Writer::new(Vec::new());
    let strip = |tag: &BytesStart| {
        let mut root = BytesStart::new("testsuites");
        root.extend_attributes(
            tag.attributes()
                .filter_map(Result::ok)
                .filter(|a| a.key.as_ref() != b"skipped"),
        );
        root
    };
    loop {
        let event = match reader.read_event().map_err(|e| junit(&e))? {
            Event::Eof => break,
            Event::Start(tag) if tag.name().as_ref() == b"testsuites" => Event::Start(strip(&tag)),
            Event::Empty(tag) if tag.name().as_ref() == b"testsuites" => Event::Empty(strip(&tag)),
            event => event,
        };
        writer.write_event(event).map_err(|e| junit(&e))?;
    }
    String::from_utf8(writer.into_inner()).map_err(|e| junit(&e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::trial::tests::sample;
    use crate::report::trial::TrialError;
    use quick_junit::Report;

    /// The rendered XML, read back with quick-junit's reader.
    fn round_trip(trials: &[TrialReport]) -> Report {
        let xml = render_junit(trials, None).unwrap();
        Report::deserialize_from_str(&xml).unwrap_or_else(|e| panic!("{e}\n{xml}"))
    }

    fn status_of<'a>(report: &'a Report, suite: usize, case: &str) -> &'a TestCaseStatus {
        let suite = &report.test_suites[suite];
        &suite
            .test_cases
            .iter()
            .find(|c| c.name.as_str() == case)
            .unwrap_or_else(|| panic!("no case {case}"))
            .status
    }

    #[test]
    fn times_out_of_range_are_zero_not_a_panic() {
        // report.json files are read from disk: `isotest report` must render any.
        let mut huge = sample("rescue::x86_64::bios", Verdict::Pass);
        huge.total_secs = 1e20;
        let mut negative = sample("rescue::x86_64::uefi", Verdict::Pass);
        negative.total_secs = -5.0;
        let report = round_trip(&[huge, negative]);
        assert_eq!(report.time, Some(Duration::ZERO));
    }

    #[test]
    fn each_outcome_maps_to_its_element() {
        let report = round_trip(&[sample("rescue::x86_64::bios", Verdict::Fail)]);
        assert_eq!(report.test_suites.len(), 1);
        assert!(matches!(
            status_of(&report, 0, "autologin"),
            TestCaseStatus::Success { .. }
        ));
        assert!(matches!(
            status_of(&report, 0, "boot"),
            TestCaseStatus::Success { .. }
        ));
        match status_of(&report, 0, "hostname") {
            TestCaseStatus::NonSuccess {
                kind: NonSuccessKind::Failure,
                message,
                description,
                ..
            } => {
                assert_eq!(
                    message.as_ref().unwrap().as_str(),
                    "hostname mismatch: expected `rescue`, the guest says `wrong-name`"
                );
                let text = description.as_ref().unwrap().as_str();
                assert!(
                    text.contains("expected (from the scenario): rescue"),
                    "{text}"
                );
                assert!(text.contains("actual: wrong-name"), "{text}");
                assert!(text.contains("| wrong-name"), "evidence: {text}");
                assert!(
                    text.contains("rescue-x86_64-bios/console.log"),
                    "transcript: {text}"
                );
            }
            other => panic!("hostname: {other:?}"),
        }
        match status_of(&report, 0, "sshd") {
            TestCaseStatus::Skipped { message, .. } => {
                assert_eq!(message.as_ref().unwrap().as_str(), "not run: no shell")
            }
            other => panic!("sshd: {other:?}"),
        }
    }

    #[test]
    fn a_skipped_trial_is_a_skipped_suite_and_could_not_test_an_error() {
        let skipped = sample(
            "rescue::aarch64::uefi",
            Verdict::Skipped {
                reason: "no AAVMF".into(),
            },
        );
        let cnt = sample(
            "rescue::x86_64::uefi",
            Verdict::CouldNotTest {
                reason: "no qemu-system-x86_64".into(),
            },
        );
        let report = round_trip(&[
            TrialReport {
                checks: Vec::new(),
                ..skipped
            },
            TrialReport {
                checks: Vec::new(),
                ..cnt
            },
        ]);
        assert_eq!(report.test_suites[0].skipped, 1);
        assert_eq!(report.test_suites[0].test_cases.len(), 1);
        assert!(
            matches!(status_of(&report, 0, "trial"), TestCaseStatus::Skipped { message: Some(m), .. } if m.as_str() == "no AAVMF")
        );
        assert_eq!(report.test_suites[1].errors, 1);
        assert!(matches!(
            status_of(&report, 1, "could not test"),
            TestCaseStatus::NonSuccess { kind: NonSuccessKind::Error, message: Some(m), .. } if m.as_str() == "no qemu-system-x86_64"
        ));
    }

    #[test]
    fn a_boot_that_died_is_a_failed_boot_case_with_its_phase_and_console() {
        let mut died = sample("rescue::x86_64::bios", Verdict::Fail);
        died.checks.clear();
        died.error = Some(TrialError {
            kind: ErrorKind::Failed,
            message: "no shell within 300 s".into(),
            phase: Some("kernel".into()),
            evidence: vec!["Kernel panic - not syncing".into()],
        });
        died.screendump = Some("screen.png".into());
        let report = round_trip(&[died.clone()]);
        match status_of(&report, 0, "boot") {
            TestCaseStatus::NonSuccess {
                kind: NonSuccessKind::Failure,
                message,
                description,
                ..
            } => {
                assert_eq!(message.as_ref().unwrap().as_str(), "no shell within 300 s");
                let text = description.as_ref().unwrap().as_str();
                assert!(
                    text.contains("phase reached: kernel") && text.contains("| Kernel panic"),
                    "{text}"
                );
                assert!(
                    text.contains("screendump: target/isotest/rescue-x86_64-bios/screen.png"),
                    "{text}"
                );
            }
            other => panic!("boot: {other:?}"),
        }
        // Before QEMU started: a failed setup.
        died.error.as_mut().unwrap().phase = None;
        assert!(matches!(
            status_of(&round_trip(&[died]), 0, "setup"),
            TestCaseStatus::NonSuccess { .. }
        ));
    }

    #[test]
    fn a_failed_trial_that_checked_nothing_still_fails() {
        let nothing = TrialReport {
            checks: Vec::new(),
            ..sample("rescue::x86_64::bios", Verdict::Fail)
        };
        let report = round_trip(&[nothing]);
        assert_eq!(report.test_suites[0].failures, 1);
        assert!(matches!(
            status_of(&report, 0, "verdict"),
            TestCaseStatus::NonSuccess { .. }
        ));
    }

    #[test]
    fn phases_and_qemu_are_properties_and_the_root_has_no_skipped_count() {
        let xml = render_junit(&[sample("rescue::x86_64::bios", Verdict::Pass)], None).unwrap();
        assert!(
            xml.contains(r#"<property name="phase kernel" value="8.894"/>"#),
            "{xml}"
        );
        assert!(
            xml.contains(r#"<property name="qemu version" value="QEMU emulator version 7.2.19"/>"#),
            "{xml}"
        );
        assert!(xml.contains("-machine pc,accel=tcg"), "{xml}");
        let root = xml.lines().find(|l| l.contains("<testsuites")).unwrap();
        assert!(!root.contains("skipped="), "{root}");
        assert!(
            !xml.contains("screendump"),
            "no screendump was taken: {xml}"
        );
        assert!(
            xml.contains(r#"<testsuite name="rescue::x86_64::bios" tests="4""#),
            "{xml}"
        );
    }

    #[test]
    fn a_regression_is_a_failed_case_of_the_comparison_suite() {
        let comparison = crate::report::compare::tests::hostname_regression();
        let trials = [sample("rescue::x86_64::bios", Verdict::Fail)];
        let report =
            Report::deserialize_from_str(&render_junit(&trials, Some(&comparison)).unwrap())
                .unwrap();
        let suite = report
            .test_suites
            .iter()
            .find(|s| s.name.as_str() == "baseline comparison")
            .expect("the comparison's suite");
        let failed: Vec<&str> = suite
            .test_cases
            .iter()
            .filter(|c| {
                matches!(
                    c.status,
                    TestCaseStatus::NonSuccess {
                        kind: NonSuccessKind::Failure,
                        ..
                    }
                )
            })
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(failed, ["rescue::x86_64::bios check hostname"]);
        assert!(
            suite
                .test_cases
                .iter()
                .any(|c| c.name.as_str() == "rescue::x86_64::bios phase kernel"),
            "a case per phase"
        );
    }
}
