//! The terminal report: one line per trial, then, for a failure, a block that
//! reads like a compiler error: what was expected, what the guest said, the
//! console lines around it, and where the full transcript (and the screendump
//! of a failed boot) is.

use super::compare::{Change, Comparison};
use super::summary::Summary;
use super::trial::{TrialReport, Verdict};
use crate::checks::Outcome;
use std::fmt::Write;

/// `rescue::x86_64::bios  tcg  build 0.1s  boot 41.2s  verdict 43.0s  PASS  hostname autologin`,
/// or for a trial that did not run `rescue::x86_64::uefi  SKIP  <reason>`.
pub fn render_line(r: &TrialReport) -> String {
    if let Verdict::Skipped { reason } = &r.verdict {
        return format!("{:<28} SKIP  {reason}", r.name);
    }
    let verdict = r.verdict.label();
    let mut boot = r
        .build_secs
        .map(|s| format!("build {s:.1}s  "))
        .unwrap_or_default();
    boot.push_str(
        &r.boot_secs()
            .map(|s| format!("boot {s:.1}s"))
            .unwrap_or_else(|| "boot -".into()),
    );
    // Checks of one kind (`user root`, `user nixos`) are summed up as `user(2/2)`.
    let mut checks: Vec<String> = Vec::new();
    let mut kinds: Vec<(&str, usize, usize)> = Vec::new();
    for c in &r.checks {
        match c.name.kind() {
            None => checks.push(match c.outcome {
                Outcome::Pass => c.name.to_string(),
                Outcome::Fail => format!("{}✗", c.name),
                Outcome::NotRun => format!("{}?", c.name),
                Outcome::Broken => format!("{}!", c.name),
            }),
            Some(kind) => match kinds.iter_mut().find(|(k, _, _)| *k == kind) {
                Some(entry) => {
                    entry.1 += usize::from(c.passed());
                    entry.2 += 1;
                }
                None => kinds.push((kind, usize::from(c.passed()), 1)),
            },
        }
    }
    checks.extend(
        kinds
            .iter()
            .map(|(kind, passed, all)| format!("{kind}({passed}/{all})")),
    );
    let units: Vec<&str> = r.failed_units.iter().map(|u| u.unit.as_str()).collect();
    let units = match (units.is_empty(), r.startup_unfinished) {
        (true, false) => String::new(),
        (true, true) => "  (start-up still running)".into(),
        (false, false) => format!("  failed units: {}", units.join(" ")),
        (false, true) => format!(
            "  failed units so far (start-up still running): {}",
            units.join(" ")
        ),
    };
    if let Some(shared) = &r.shared {
        boot = format!("{boot} ({})", shared.short());
    }
    format!(
        "{:<28} {:<4} {:<11}  verdict {:>5.1}s  {}  {}{units}",
        r.name,
        r.accel.as_deref().unwrap_or("-"),
        boot,
        r.total_secs,
        verdict,
        checks.join(" ")
    )
}

/// The units that failed at boot, each with the end of its journal: after a
/// trial's line, whatever its verdict; empty when none failed.
pub fn render_failed_units(r: &TrialReport) -> String {
    let mut out = String::new();
    for u in &r.failed_units {
        let when = if r.startup_unfinished {
            " (start-up still running when listed)"
        } else {
            ""
        };
        let _ = writeln!(out, "--- {}: unit {} failed at boot{when}", r.name, u.unit);
        write_lines(&mut out, "  ", "journal", &u.journal);
    }
    out
}

/// The explanation of a failed trial, or of one that could not test; empty for
/// a pass or a skip (its line says why).
pub fn render_failure(r: &TrialReport) -> String {
    let what = match r.verdict {
        Verdict::Fail => "failed",
        Verdict::CouldNotTest { .. } => "could not test",
        Verdict::Pass | Verdict::Skipped { .. } => return String::new(),
    };
    let mut out = String::new();
    let _ = writeln!(out, "--- {} {what}", r.name);
    if let Some(e) = &r.error {
        let _ = writeln!(out, "error: {}", e.message);
        if let Some(phase) = &e.phase {
            let _ = writeln!(out, "  phase reached: {phase}");
        }
        write_lines(&mut out, "  ", "console", &e.evidence);
    }
    for c in r.checks.iter().filter(|c| c.outcome != Outcome::Pass) {
        let _ = writeln!(out, "check {}: {}", c.name, c.message);
        let _ = writeln!(out, "  expected{}: {}", r.origin_note(c), c.expected);
        let _ = writeln!(out, "  actual:   {}", c.actual_or_dash());
        write_lines(&mut out, "  ", "evidence", &c.evidence);
    }
    if r.checks.is_empty() && r.error.is_none() {
        let _ = writeln!(
            out,
            "error: the scenario checks nothing; add `expect:` or `steps:`"
        );
    }
    // The note says why when it is not KVM; KVM needs no why.
    match (&r.accel_note, &r.accel) {
        (Some(note), _) => {
            let _ = writeln!(out, "  accelerator: {note}");
        }
        (None, Some(accel)) => {
            let _ = writeln!(out, "  accelerator: {}", accel.to_uppercase());
        }
        (None, None) => {}
    }
    if let Some(shared) = &r.shared {
        let _ = writeln!(out, "  {}", shared.long());
    }
    let transcript = r.artifacts.join("console.log");
    if transcript.exists() {
        let _ = writeln!(out, "  transcript: {}", transcript.display());
    }
    if let Some(png) = r.screendump_path() {
        let _ = writeln!(out, "  screendump: {}", png.display());
    }
    out
}

/// `3 passed, 1 failed, 1 skipped, 0 could not test`.
pub fn render_summary(s: &Summary) -> String {
    format!(
        "{} passed, {} failed, {} skipped, {} could not test",
        s.passed, s.failed, s.skipped, s.could_not_test
    )
}

/// The comparison with the baseline: a line per trial that was not compared,
/// per check that changed or still fails, and per phase that got slower; then
/// the counts. Regressions come first in each trial, in capitals.
pub fn render_comparison(c: &Comparison) -> String {
    let mut out = String::from("--- compared with the baseline\n");
    for t in &c.trials {
        if let Some(why) = &t.not_compared {
            let _ = writeln!(out, "{:<28} not compared: {why}", t.name);
            continue;
        }
        for r in t.regressions() {
            let _ = writeln!(
                out,
                "{:<28} REGRESSION     {}: {}",
                t.name, r.what, r.detail
            );
        }
        for check in t
            .checks
            .iter()
            .filter(|c| matches!(c.change, Change::Fixed | Change::StillFailing))
        {
            let _ = writeln!(
                out,
                "{:<28} {:<14} {}: {}",
                t.name,
                check.change.label(),
                check.name,
                check.message
            );
        }
    }
    let n = c.counts();
    let _ = writeln!(
        out,
        "{} regression{}, {} still failing, {} fixed, {} unchanged{}",
        n.regressions,
        if n.regressions == 1 { "" } else { "s" },
        n.still_failing,
        n.fixed,
        n.unchanged,
        if n.not_compared > 0 {
            format!(", {} trial(s) not compared", n.not_compared)
        } else {
            String::new()
        }
    );
    out
}

/// The summary's line about the baseline, when something regressed:
/// `regressed against the baseline: rescue::x86_64::bios hostname, ...`.
pub fn render_regressions(c: &Comparison) -> Option<String> {
    let regressions = c.regressions();
    if regressions.is_empty() {
        return None;
    }
    let named: Vec<String> = regressions
        .iter()
        .map(|r| format!("{} {}", r.trial, r.what))
        .collect();
    Some(format!(
        "regressed against the baseline: {}",
        named.join(", ")
    ))
}

/// Lines under a title, each behind `  | `; nothing when there are none.
/// `indent` goes before the title (the terminal's block indents it, JUnit's
/// text does not).
pub(super) fn write_lines(out: &mut String, indent: &str, title: &str, lines: &[String]) {
    if lines.is_empty() {
        return;
    }
    let _ = writeln!(out, "{indent}{title}:");
    for line in lines {
        let _ = writeln!(out, "  | {line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::compare::tests::hostname_regression;
    use crate::report::trial::tests::sample;

    /// A failure names its accelerator: with the reason when it is TCG, plain
    /// when KVM ran it.
    #[test]
    fn a_failure_names_its_accelerator() {
        let mut r = sample("rescue::x86_64::bios", Verdict::Fail);
        r.accel = Some("kvm".into());
        r.accel_note = None;
        assert!(
            render_failure(&r).contains("\n  accelerator: KVM\n"),
            "{}",
            render_failure(&r)
        );
        r.accel = Some("tcg".into());
        r.accel_note = Some("TCG (--accel tcg)".into());
        assert!(
            render_failure(&r).contains("\n  accelerator: TCG (--accel tcg)\n"),
            "{}",
            render_failure(&r)
        );
    }

    #[test]
    fn a_failure_names_its_screendump_when_there_is_one() {
        let mut r = sample("rescue::x86_64::bios", Verdict::Fail);
        assert!(
            !render_failure(&r).contains("screendump"),
            "{}",
            render_failure(&r)
        );
        r.screendump = Some("screen.png".into());
        let text = render_failure(&r);
        assert!(
            text.contains("  screendump: target/isotest/rescue-x86_64-bios/screen.png\n"),
            "{text}"
        );
    }

    /// A check alone shows its outcome by a mark (none when it passed); checks
    /// of one kind are counted, passed over all.
    #[test]
    fn a_line_marks_each_check_by_its_outcome() {
        use crate::check_id::CheckId;
        let mut r = sample("rescue::x86_64::bios", Verdict::Fail);
        let with = |name: CheckId, outcome: Outcome| crate::checks::CheckResult {
            name,
            outcome,
            ..r.checks[1].clone()
        };
        r.checks = vec![
            with(CheckId::Autologin, Outcome::Pass),
            with(CheckId::Hostname, Outcome::Fail),
            with(CheckId::Sshd, Outcome::Broken),
            with(
                CheckId::ssh_login("root", crate::check_id::LoginMethod::Key),
                Outcome::NotRun,
            ),
            with(CheckId::user("nixos"), Outcome::Pass),
            with(CheckId::user("root"), Outcome::Fail),
        ];
        let line = render_line(&r);
        assert!(
            line.ends_with("FAIL  autologin hostname✗ sshd! ssh(0/1) user(1/2)"),
            "{line}"
        );
        r.checks[1].outcome = Outcome::NotRun;
        assert!(
            render_line(&r).contains(" hostname? "),
            "{}",
            render_line(&r)
        );
    }

    #[test]
    fn a_line_says_the_boot_was_shared_and_start_up_unfinished() {
        let mut r = sample("rescue::x86_64::bios", Verdict::Pass);
        let plain = render_line(&r);
        assert!(
            !plain.contains("shared") && !plain.contains("start-up"),
            "{plain}"
        );
        r.shared = Some(crate::report::SharedBoot {
            booted_by: "first::x86_64::bios".into(),
            role: crate::report::SharedRole::Restored {
                restore_secs: 0.6,
                clock: "set from the host (the guest was 2.0 s behind)".into(),
                randomness: "reseeded".into(),
            },
        });
        r.startup_unfinished = true;
        let line = render_line(&r);
        assert!(
            line.contains("(shared boot from first::x86_64::bios)"),
            "{line}"
        );
        assert!(line.ends_with("  (start-up still running)"), "{line}");
        r.failed_units = vec![crate::report::FailedUnit {
            unit: "a.service".into(),
            journal: vec![],
        }];
        let line = render_line(&r);
        assert!(
            line.ends_with("  failed units so far (start-up still running): a.service"),
            "{line}"
        );
        r.verdict = Verdict::Fail;
        let text = render_failure(&r);
        assert!(
            text.contains(
                "  shared boot: restored in 0.6 s from the state first::x86_64::bios saved"
            ),
            "{text}"
        );
    }

    #[test]
    fn the_comparison_names_each_regression_and_counts_the_rest() {
        let text = render_comparison(&hostname_regression());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "--- compared with the baseline");
        assert_eq!(
            lines[1],
            "rescue::x86_64::bios         REGRESSION     hostname: passed on the baseline, fails now: hostname mismatch: expected `rescue`, the guest says `wrong-name`"
        );
        assert!(
            lines
                .last()
                .unwrap()
                .starts_with("1 regression, 0 still failing, 0 fixed, "),
            "{text}"
        );
        assert_eq!(
            render_regressions(&hostname_regression()).as_deref(),
            Some("regressed against the baseline: rescue::x86_64::bios hostname")
        );
    }
}
