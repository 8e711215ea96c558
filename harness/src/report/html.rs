//! The HTML report: one self-contained page (no external assets) to read a run
//! with. The matrix (scenario × arch × firmware) coloured by verdict, a
//! timeline bar per trial, then each failure with expected, actual, evidence,
//! the console lines around it, the screendump of a failed boot (embedded)
//! and a link to the full transcript.

use super::compare::{Change, CheckComparison, Comparison, PhaseComparison, TrialComparison};
use super::human::render_summary;
use super::json::absolute;
use super::junit::outcome_name;
use super::shell::shell_words;
use super::stage::{stages, Stage};
use super::summary::Summary;
use super::trial::{TrialReport, Verdict};
use crate::checks::{CheckResult, Outcome};
use crate::console::COMMAND_LOG;
use maud::{html, Markup, PreEscaped, DOCTYPE};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Console lines shown before and after the line a failure points at.
const CONTEXT_LINES: usize = 4;
/// Console lines shown at the end of the transcript when the boot died.
const TAIL_LINES: usize = 20;

const STYLE: &str = r#"
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { margin: 0 0 .2em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; }
th, td { border: 1px solid #bbb; padding: .35em .6em; text-align: left; vertical-align: top; }
.matrix td.cell { min-width: 12em; color: #fff; }
.matrix td.cell a { color: inherit; }
.cell .checks { font-size: 12px; margin-top: .2em; }
.pass { background: #2e7d32; } .fail { background: #c62828; }
.skipped { background: #8d8d8d; } .could-not-test { background: #e65100; } .none { background: #f4f4f4; }
.badge { color: #fff; padding: 0 .4em; border-radius: 3px; font-weight: 600; }
.timeline { width: 100%; } .timeline td.bar { width: 70%; }
.bar div.track { position: relative; height: 1.2em; background: #f0f0f0; }
.bar span.seg { position: absolute; top: 0; height: 100%; overflow: hidden; font-size: 11px; color: #fff; white-space: nowrap; }
.seg.firmware { background: #546e7a; } .seg.menu { background: #8e24aa; } .seg.kernel { background: #1565c0; }
.seg.userspace { background: #00897b; } .seg.checks { background: #f9a825; color: #222; }
.legend span { display: inline-block; padding: 0 .5em; margin-right: .3em; color: #fff; }
.legend span.checks { color: #222; }
.regression { background: #ffcdd2; } .still-failing { background: #fff3e0; } .fixed { background: #c8e6c9; }
.failure { border-left: 4px solid #c62828; padding: .2em 1em; margin: 1em 0; background: #fff6f6; }
.failure.could-not-test { border-color: #e65100; background: #fff8f0; }
pre { background: #fafafa; border: 1px solid #ddd; padding: .5em; overflow-x: auto; font-size: 12px; }
pre .hit { background: #ffecb3; }
dt { font-weight: 600; } dd { margin: 0 0 .4em 1em; }
img.screendump { max-width: 100%; border: 1px solid #bbb; }
"#;

/// The page for these trials. `out_dir` is where the page will be written, so
/// that links to transcripts are relative to it (the page and the artifacts
/// move together as one CI artifact).
pub fn render_html(
    trials: &[TrialReport],
    out_dir: &Path,
    comparison: Option<&Comparison>,
) -> String {
    let summary = Summary::of(trials);
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { "isotest report" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                h1 { "isotest report" }
                p #summary { (render_summary(&summary)) }
                h2 { "Matrix" }
                (matrix(trials))
                @if let Some(c) = comparison {
                    h2 { "Compared with the baseline" }
                    (compared(c))
                }
                h2 { "Timeline" }
                (timeline(trials))
                @let failures: Vec<&TrialReport> = trials.iter().filter(|t| matches!(t.verdict, Verdict::Fail | Verdict::CouldNotTest { .. })).collect();
                @if !failures.is_empty() {
                    h2 { "Failures" }
                    @for t in failures { (failure(t, out_dir)) }
                }
                h2 { "Trials" }
                (trial_table(trials, out_dir))
            }
        }
    };
    page.into_string()
}

/// The CSS class of a verdict.
fn class(v: &Verdict) -> &'static str {
    match v {
        Verdict::Pass => "pass",
        Verdict::Fail => "fail",
        Verdict::Skipped { .. } => "skipped",
        Verdict::CouldNotTest { .. } => "could-not-test",
    }
}

/// An id for links within the page.
fn anchor(t: &TrialReport) -> String {
    format!("trial-{}", t.name.replace("::", "-"))
}

/// Checks that did not pass: failed, broken, or not run.
fn unpassed(t: &TrialReport) -> impl Iterator<Item = &CheckResult> {
    t.checks.iter().filter(|c| c.outcome != Outcome::Pass)
}

/// Scenarios down, arch × firmware across; a cell per trial.
fn matrix(trials: &[TrialReport]) -> Markup {
    let scenarios: BTreeSet<&str> = trials.iter().map(|t| t.scenario.as_str()).collect();
    let columns: BTreeSet<(&str, &str)> = trials
        .iter()
        .map(|t| (t.arch.as_str(), t.firmware.as_str()))
        .collect();
    html! {
        table.matrix {
            tr {
                th { "scenario" }
                @for (arch, firmware) in &columns { th { (arch) " " (firmware) } }
            }
            @for scenario in &scenarios {
                tr {
                    th { (scenario) }
                    @for (arch, firmware) in &columns {
                        @match trials.iter().find(|t| t.scenario == *scenario && t.arch == *arch && t.firmware == *firmware) {
                            Some(t) => (cell(t)),
                            None => td.cell.none {},
                        }
                    }
                }
            }
        }
    }
}

fn cell(t: &TrialReport) -> Markup {
    html! {
        td.cell.(class(&t.verdict)) data-trial=(t.name) title=(t.name) {
            a href={ "#" (anchor(t)) } { strong { (t.verdict.label()) } }
            @if let Some(t) = t.boot_secs() { " · boot " (format!("{t:.1}")) " s" }
            @if let Some(reason) = t.verdict.reason() { div.checks { (reason) } }
            @if let Some(e) = t.error.as_ref().filter(|e| t.verdict.reason() != Some(e.message.as_str())) { div.checks { (e.message) } }
            @for c in unpassed(t) { div.checks { b { (c.name) } ": " (c.message) } }
        }
    }
}

/// The comparison with the baseline: its counts, then a table per compared
/// trial, a row per check and phase, each row classed by its change (the
/// regressions red), as the comparison decided it.
fn compared(c: &Comparison) -> Markup {
    let n = c.counts();
    html! {
        p #comparison-summary {
            (n.regressions) " regression(s), " (n.still_failing) " still failing, " (n.fixed) " fixed, " (n.unchanged) " unchanged"
        }
        @for t in &c.trials { (compared_trial(t)) }
    }
}

fn compared_trial(t: &TrialComparison) -> Markup {
    html! {
        h3 { (t.name) @if let Some(image) = &t.baseline_image { " (baseline: " (image.display()) ")" } }
        @if let Some(why) = &t.not_compared {
            p.not-compared data-trial=(t.name) { "Not compared: " (why) }
        } @else {
            table.comparison data-trial=(t.name) {
                tr { th { "" } th { "baseline" } th { "now" } th { "change" } th { "" } }
                @for c in &t.checks { (compared_check(c)) }
                @for p in &t.phases { (compared_phase(p, t)) }
            }
        }
    }
}

fn change_class(change: Change) -> &'static str {
    match change {
        Change::Regression => "regression",
        Change::StillFailing => "still-failing",
        Change::Fixed => "fixed",
        Change::Unchanged => "unchanged",
    }
}

fn compared_check(c: &CheckComparison) -> Markup {
    let outcome =
        |o: Option<crate::checks::Outcome>| o.map_or_else(|| "absent".to_owned(), outcome_name);
    html! {
        tr class=(change_class(c.change)) data-check=(c.name) {
            td { (c.name) } td { (outcome(c.baseline)) } td { (outcome(c.now)) }
            td.change { (c.change.label()) }
            td { @if c.change != Change::Unchanged { (c.message) } }
        }
    }
}

fn compared_phase(p: &PhaseComparison, t: &TrialComparison) -> Markup {
    let change = if p.slower {
        Change::Regression
    } else {
        Change::Unchanged
    };
    html! {
        tr class=(change_class(change)) data-phase=(p.name) {
            td { "phase " (p.name) } td { (format!("{:.1} s", p.baseline_secs)) } td { (format!("{:.1} s", p.now_secs)) }
            td.change { @if p.slower { "REGRESSION: slower" } @else { "within bounds" } }
            td { @if p.slower { (p.describe(&t.max_slowdown)) } }
        }
    }
}

/// A bar per trial: how long each stage of its boot took, then its checks, on
/// one scale for all trials.
fn timeline(trials: &[TrialReport]) -> Markup {
    let bars: Vec<(&TrialReport, Vec<Stage>)> = trials.iter().map(|t| (t, stages(t))).collect();
    let longest = bars
        .iter()
        .flat_map(|(_, s)| s.last().map(|s| s.start + s.len))
        .fold(0.0_f64, f64::max);
    html! {
        p.legend {
            @for stage in ["firmware", "menu", "kernel", "userspace", "checks"] { span class={ "seg " (stage) } { (stage) } }
        }
        table.timeline {
            @for (t, stages) in &bars {
                tr data-trial=(t.name) {
                    td { (t.name) }
                    td.bar {
                        div.track {
                            @for Stage { name, start, len } in stages {
                                span class={ "seg " (name) } data-stage=(name)
                                    style=(format!("left:{:.2}%;width:{:.2}%", 100.0 * start / longest, 100.0 * len / longest))
                                    title=(format!("{name}: {len:.1} s")) { (name) }
                            }
                        }
                    }
                    td { (format!("{:.1} s", t.total_secs)) }
                }
            }
        }
    }
}

/// A failed (or could-not-test) trial: its error, each check that did not
/// pass, the console around it, and the transcript.
fn failure(t: &TrialReport, out_dir: &Path) -> Markup {
    let transcript = read_transcript(t);
    html! {
        div class={ "failure " (class(&t.verdict)) } id=(anchor(t)) data-trial=(t.name) {
            h3 { span class={ "badge " (class(&t.verdict)) } { (t.verdict.label()) } " " (t.name) }
            @if let Some(reason) = t.verdict.reason().filter(|r| t.error.as_ref().is_none_or(|e| e.message != *r)) { p { (reason) } }
            @if let Some(e) = &t.error {
                dl.error {
                    dt { "error" } dd { (e.message) }
                    @if let Some(phase) = &e.phase { dt { "phase reached" } dd { (phase) } }
                }
                @if !e.evidence.is_empty() { pre { @for line in &e.evidence { (line) "\n" } } }
                @if let Some(lines) = &transcript {
                    p { "The console's last lines:" }
                    (console(lines, lines.len().saturating_sub(TAIL_LINES), lines.len(), None))
                }
            }
            @for c in unpassed(t) {
                div.check data-check=(c.name) {
                    h4 { (c.name) ": " span.message { (c.message) } }
                    dl {
                        dt { "expected" (t.origin_note(c)) }
                        dd.expected { (c.expected) }
                        dt { "actual" } dd.actual { (c.actual_or_dash()) }
                    }
                    @if !c.evidence.is_empty() { p { "Evidence:" } pre.evidence { @for line in &c.evidence { (line) "\n" } } }
                    @if let Some((lines, at)) = transcript.as_ref().and_then(|lines| find(lines, c).map(|at| (lines, at))) {
                        p { "On the console:" }
                        (console(lines, at.saturating_sub(CONTEXT_LINES), (at + CONTEXT_LINES + 1).min(lines.len()), Some(at)))
                    }
                }
            }
            @if let Some(png) = t.screendump_path() {
                p { "The display when the boot failed:" }
                @match embedded_png(&png) {
                    Some(data) => a.screendump href=(link(&png, out_dir)) { img.screendump src=(data) alt={ "screendump of " (t.name) }; },
                    None => p { a.screendump href=(link(&png, out_dir)) { (png.display()) } " (not readable from here)" },
                }
            }
            @if has_transcript(t) {
                p {
                    a.transcript href=(link(&t.artifacts.join("console.log"), out_dir)) { "full transcript" }
                    @if has_command_log(t) {
                        ", " a.commands href=(link(&t.artifacts.join(COMMAND_LOG), out_dir)) { "each console command with its output" }
                    }
                }
            } @else {
                p { "No transcript: the guest's console never opened." }
            }
        }
    }
}

/// Lines `from..to` of the console, the line `hit` marked.
fn console(lines: &[String], from: usize, to: usize, hit: Option<usize>) -> Markup {
    html! {
        pre.console {
            @for (i, line) in lines[from..to].iter().enumerate() {
                @if Some(from + i) == hit { span.hit { (line) } "\n" } @else { (line) "\n" }
            }
        }
    }
}

/// A PNG as a `data:` URL, so the page stays one self-contained file (a
/// screendump is a few tens of KiB). None when the file cannot be read or is
/// not a PNG.
fn embedded_png(png: &Path) -> Option<String> {
    use base64::Engine;
    let bytes = std::fs::read(png)
        .ok()
        .filter(|b| b.starts_with(b"\x89PNG\r\n\x1a\n"))?;
    Some(format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    ))
}

/// Whether the trial left a transcript (a trial that never started QEMU did not).
fn has_transcript(t: &TrialReport) -> bool {
    t.artifacts.join("console.log").is_file()
}

/// Whether the trial's `commands.log` has something in it: the console makes
/// it, empty, as it opens; commands come only once a shell answers.
fn has_command_log(t: &TrialReport) -> bool {
    std::fs::metadata(t.artifacts.join(COMMAND_LOG)).is_ok_and(|m| m.is_file() && m.len() > 0)
}

/// The transcript's lines, if it is there to read.
fn read_transcript(t: &TrialReport) -> Option<Vec<String>> {
    let text = std::fs::read(t.artifacts.join("console.log")).ok()?;
    Some(
        String::from_utf8_lossy(&text)
            .lines()
            .map(str::to_owned)
            .collect(),
    )
}

/// The console line a check's evidence points at: the first command it ran
/// (`$ cat /proc/...`, as typed at the prompt), else a line of its evidence.
fn find(lines: &[String], c: &CheckResult) -> Option<usize> {
    let command = c
        .evidence
        .iter()
        .find_map(|e| e.strip_prefix("$ "))
        .map(|e| e.split(" → ").next().unwrap_or(e));
    let wanted: Vec<&str> = command
        .into_iter()
        .chain(c.evidence.iter().map(String::as_str))
        .filter(|w| w.len() > 3)
        .collect();
    wanted
        .iter()
        .find_map(|w| lines.iter().rposition(|l| l.contains(w)))
}

fn trial_table(trials: &[TrialReport], out_dir: &Path) -> Markup {
    html! {
        table.trials {
            tr { th { "trial" } th { "verdict" } th { "accelerator" } th { "boot" } th { "total" } th { "QEMU" } th { "transcript" } }
            @for t in trials {
                tr data-trial=(t.name) {
                    td { (t.name) }
                    td { span class={ "badge " (class(&t.verdict)) } { (t.verdict.label()) } }
                    td { (t.accel.as_deref().unwrap_or("-")) }
                    td title=[t.shared.as_ref().map(super::shared::SharedBoot::long)] {
                        @if let Some(s) = t.boot_secs() { (format!("{s:.1} s")) } @else { "-" }
                        @if let Some(shared) = &t.shared { br; span.shared { (shared.short()) } }
                    }
                    td { (format!("{:.1} s", t.total_secs)) }
                    td title=[t.qemu.as_ref().map(|q| shell_words(&q.binary.display().to_string(), &q.command_line))] {
                        (t.qemu.as_ref().and_then(|q| q.version.as_deref()).unwrap_or("-"))
                    }
                    td {
                        @if has_transcript(t) { a href=(link(&t.artifacts.join("console.log"), out_dir)) { "console.log" } }
                        @if has_command_log(t) { " " a href=(link(&t.artifacts.join(COMMAND_LOG), out_dir)) { (COMMAND_LOG) } }
                    }
                }
            }
        }
    }
}

/// `target` as a link from a page in `out_dir`: relative when it can be.
fn link(target: &Path, out_dir: &Path) -> String {
    let relative: PathBuf = pathdiff::diff_paths(absolute(target), absolute(out_dir))
        .unwrap_or_else(|| absolute(target));
    relative.to_string_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::trial::tests::sample;
    use crate::report::trial::{ErrorKind, TrialError};

    #[test]
    fn the_matrix_colours_each_trial_by_its_verdict() {
        let trials = [
            sample("rescue::x86_64::bios", Verdict::Fail),
            sample("rescue::x86_64::uefi", Verdict::Pass),
            sample(
                "minimal::aarch64::uefi",
                Verdict::Skipped {
                    reason: "no AAVMF".into(),
                },
            ),
        ];
        let page = render_html(&trials, Path::new("target/isotest"), None);
        assert!(
            page.contains(r#"<td class="cell fail" data-trial="rescue::x86_64::bios""#),
            "{page}"
        );
        assert!(page.contains(r#"<td class="cell pass" data-trial="rescue::x86_64::uefi""#));
        assert!(page.contains(r#"<td class="cell skipped" data-trial="minimal::aarch64::uefi""#));
        // minimal has no x86_64 trials, rescue no aarch64 one: empty cells, not verdicts.
        assert_eq!(page.matches(r#"<td class="cell none">"#).count(), 3);
        assert!(page.contains(
            "<b>hostname</b>: hostname mismatch: expected `rescue`, the guest says `wrong-name`"
        ));
        assert!(
            !page.contains("<script") && !page.contains("http"),
            "self-contained: no scripts, no external assets"
        );
    }

    #[test]
    fn a_failure_shows_expected_actual_evidence_and_the_console_around_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = sample("rescue::x86_64::bios", Verdict::Fail);
        t.artifacts = dir.path().join("rescue-x86_64-bios");
        std::fs::create_dir_all(&t.artifacts).unwrap();
        let console: Vec<String> = (0..20).map(|i| format!("line {i}")).collect();
        let mut console = console.join("\n");
        console.push_str("\nroot@wrong-name:~# cat /proc/sys/kernel/hostname\nwrong-name\n");
        std::fs::write(t.artifacts.join("console.log"), console).unwrap();
        let page = render_html(&[t.clone()], dir.path(), None);
        assert!(
            page.contains(r#"<dd class="expected">rescue</dd>"#),
            "{page}"
        );
        assert!(page.contains(r#"<dd class="actual">wrong-name</dd>"#));
        assert!(page.contains("<dt>expected (from the scenario)</dt>"));
        assert!(
            page.contains(
                r#"<span class="hit">root@wrong-name:~# cat /proc/sys/kernel/hostname</span>"#
            ),
            "{page}"
        );
        assert!(
            page.contains("line 19\n") && !page.contains("line 15\n"),
            "four lines of context: {page}"
        );
        assert!(
            page.contains(r#"href="rescue-x86_64-bios/console.log""#),
            "a relative link: {page}"
        );
        assert!(
            !page.contains("commands.log"),
            "no commands.log, no link: {page}"
        );
        std::fs::write(t.artifacts.join(COMMAND_LOG), "").unwrap();
        assert!(
            !render_html(&[t.clone()], dir.path(), None).contains("commands.log"),
            "no command ran, no link"
        );
        std::fs::write(t.artifacts.join(COMMAND_LOG), "$ hostname\nwrong-name\n").unwrap();
        let page = render_html(&[t], dir.path(), None);
        assert!(page.contains(r#"<a class="commands" href="rescue-x86_64-bios/commands.log">each console command with its output</a>"#), "{page}");
        assert!(
            page.contains(r#"<a href="rescue-x86_64-bios/commands.log">commands.log</a>"#),
            "in the table of trials: {page}"
        );
    }

    #[test]
    fn a_boot_that_died_shows_its_phase_and_the_console_tail() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = sample("rescue::x86_64::bios", Verdict::Fail);
        t.checks.clear();
        t.phases.truncate(3);
        t.artifacts = dir.path().to_owned();
        t.error = Some(TrialError {
            kind: ErrorKind::Failed,
            message: "no userspace".into(),
            phase: Some("kernel".into()),
            evidence: vec![],
        });
        let console: Vec<String> = (0..30).map(|i| format!("line {i}")).collect();
        std::fs::write(dir.path().join("console.log"), console.join("\n")).unwrap();
        assert!(
            !render_html(&[t.clone()], dir.path(), None).contains("<img"),
            "no screendump, no picture"
        );
        t.screendump = Some("screen.png".into());
        let page = render_html(&[t.clone()], dir.path(), None);
        assert!(
            page.contains(r#"<a class="screendump" href="screen.png">"#)
                && page.contains("/screen.png</a> (not readable from here)"),
            "{page}"
        );
        assert!(
            !page.contains("<img"),
            "a missing file is not drawn: {page}"
        );
        let png = b"\x89PNG\r\n\x1a\n(the rest of a PNG)";
        std::fs::write(dir.path().join("screen.png"), png).unwrap();
        let page = render_html(&[t], dir.path(), None);
        let data = format!(
            "data:image/png;base64,{}",
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, png)
        );
        assert!(page.contains(&format!(r#"<a class="screendump" href="screen.png"><img class="screendump" src="{data}" alt="screendump of rescue::x86_64::bios"></a>"#)), "{page}");
        assert!(
            page.contains("<dt>phase reached</dt><dd>kernel</dd>"),
            "{page}"
        );
        assert!(
            page.contains("line 29\n") && page.contains("line 10\n") && !page.contains("line 9\n"),
            "{page}"
        );
    }

    #[test]
    fn text_from_the_guest_is_escaped() {
        let mut t = sample("rescue::x86_64::bios", Verdict::Fail);
        t.checks[1].actual = "<script>alert(1)</script>".into();
        let page = render_html(&[t], Path::new("."), None);
        assert!(!page.contains("<script>") && page.contains("&lt;script&gt;"));
    }

    #[test]
    fn the_comparison_section_marks_the_regression() {
        let comparison = crate::report::compare::tests::hostname_regression();
        let trials = [sample("rescue::x86_64::bios", Verdict::Fail)];
        let page = render_html(&trials, Path::new("."), Some(&comparison));
        assert!(
            page.contains("<h2>Compared with the baseline</h2>"),
            "{page}"
        );
        assert!(page.contains(r#"<tr class="regression" data-check="hostname"><td>hostname</td><td>pass</td><td>fail</td><td class="change">REGRESSION</td>"#), "{page}");
        assert!(
            page.contains(r#"<tr class="unchanged" data-check="sshd">"#),
            "{page}"
        );
        assert!(
            page.contains(r#"<tr class="unchanged" data-phase="kernel">"#),
            "{page}"
        );
        assert!(!render_html(&trials, Path::new("."), None).contains("Compared with the baseline"));
    }
}
