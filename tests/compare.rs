//! Regression against a known-good ISO: `isotest compare` on stored results,
//! and one real `isotest run --baseline` (two boots).
//!
//! tests/data/regression holds the results of a real run, kept as
//! written (console.raw, qemu.pid, qemu.stderr (empty) and the passing baseline's console.log left out):
//! `isotest run scenarios/rescue.yaml --filter rescue::x86_64::bios
//! --image $(fixtures/build-iso wrong-hostname) --baseline $(fixtures/build-iso rescue)`
//! (the test `a_baseline_run_names_the_hostname_regression` below), its
//! `baseline/` the trial on the `rescue` ISO (pass), `new/` the trial on the
//! `wrong-hostname` ISO (fail: hostname).

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;
use support::{text, RESCUE_PASSWORD};

fn data(path: &str) -> PathBuf {
    support::repo().join("tests/data/regression").join(path)
}

fn compare(old: &Path, new: &Path, more: &[&str]) -> Output {
    support::isotest_command()
        .arg("compare")
        .arg(old)
        .arg(new)
        .args(more)
        .output()
        .expect("run isotest compare")
}

/// A copy of the baseline's report.json in a temp dir, its phases edited by `edit`.
fn edited_baseline(dir: &Path, edit: impl Fn(&mut Vec<serde_json::Value>)) -> PathBuf {
    let text = std::fs::read_to_string(data("baseline/rescue-x86_64-bios/report.json")).unwrap();
    let mut report: serde_json::Value = serde_json::from_str(&text).unwrap();
    let phases = report["phases"].as_array_mut().unwrap();
    edit(phases);
    let trial = dir.join("rescue-x86_64-bios");
    std::fs::create_dir_all(&trial).unwrap();
    std::fs::write(trial.join("report.json"), report.to_string()).unwrap();
    dir.to_owned()
}

#[test]
fn identical_results_compare_clean() {
    let out = compare(&data("baseline"), &data("baseline"), &[]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(!stdout.contains("REGRESSION"), "{stdout}");
    assert!(
        stdout.contains("0 regressions, 0 still failing, 0 fixed"),
        "{stdout}"
    );
}

#[test]
fn a_check_that_passed_and_fails_now_is_a_regression() {
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("junit.xml");
    let out = compare(
        &data("baseline"),
        &data("new"),
        &["--junit", junit.to_str().unwrap()],
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.ends_with("\nregressed against the baseline: rescue::x86_64::bios hostname\n"),
        "{stdout}"
    );
    let regressions: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("REGRESSION"))
        .collect();
    assert_eq!(
        regressions.len(),
        1,
        "only the hostname regressed: {stdout}"
    );
    assert!(
        regressions[0].starts_with("rescue::x86_64::bios"),
        "{stdout}"
    );
    assert!(
        regressions[0].contains("hostname: passed on the baseline, fails now: hostname mismatch: expected `rescue`, the guest says `wrong-name`"),
        "{stdout}"
    );
    // The other way round the same check is fixed. (The `rescue` ISO's boot
    // was 25 % slower to a shell on a busy machine: a generous threshold keeps
    // that out of this check's test.)
    let back = compare(&data("new"), &data("baseline"), &["--max-slowdown", "1"]);
    let back_out = text(&back.stdout);
    assert_eq!(back.status.code(), Some(0), "{back_out}");
    assert!(back_out.contains("fixed          hostname"), "{back_out}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains(r#"<testcase name="rescue::x86_64::bios check hostname" classname="rescue::x86_64::bios">"#), "{xml}");
    let failure = xml
        .lines()
        .find(|l| l.contains(r#"type="regression""#))
        .unwrap_or_else(|| panic!("no regression: {xml}"));
    assert!(
        failure.contains(r#"<failure message="passed on the baseline, not now: hostname mismatch"#),
        "{xml}"
    );
    assert_eq!(xml.matches(r#"type="regression""#).count(), 1, "{xml}");
    let xmllint = std::process::Command::new("xmllint")
        .args(["--noout", "--schema"])
        .arg(support::repo().join("tests/data/junit-10.xsd"))
        .arg(&junit)
        .output()
        .expect("run xmllint (libxml2-utils; ci/install-deps installs it)");
    assert!(xmllint.status.success(), "{}", text(&xmllint.stderr));
}

#[test]
fn the_comparison_is_in_the_json_result_as_its_schema_says() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("result.json");
    let out = compare(
        &data("baseline"),
        &data("new"),
        &["--json", json.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let result: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    support::assert_schema_valid(&result);
    let hostname = result["comparison"]["trials"][0]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "hostname")
        .cloned();
    let hostname = hostname.expect("hostname compared");
    assert_eq!(
        (
            hostname["baseline"].as_str(),
            hostname["now"].as_str(),
            hostname["change"].as_str()
        ),
        (Some("pass"), Some("fail"), Some("regression"))
    );
    // The schema does reject what it should: a change it does not know.
    let mut bad = result.clone();
    bad["comparison"]["trials"][0]["checks"][0]["change"] = "worse".into();
    assert!(!support::result_schema().is_valid(&bad));
}

#[test]
fn a_phase_slower_beyond_the_threshold_is_a_regression() {
    // The real baseline against a copy of itself whose userspace took 30 s
    // longer: every phase after `userspace` shifted by 30 s (shell at 76 s
    // instead of 46 s, say), so `userspace` and `to shell` regress.
    let dir = tempfile::tempdir().unwrap();
    let slower = edited_baseline(dir.path(), |phases| {
        let mut after_userspace = false;
        for p in phases.iter_mut() {
            if after_userspace {
                p[1] = (p[1].as_f64().unwrap() + 30.0).into();
            }
            after_userspace |= p[0] == "userspace";
        }
    });
    let out = compare(&data("baseline"), &slower, &[]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("REGRESSION     phase userspace: "),
        "{stdout}"
    );
    assert!(stdout.contains("(+30.0 s, "), "{stdout}");
    assert!(
        stdout.contains("REGRESSION     phase to shell: "),
        "{stdout}"
    );
    assert!(stdout.contains("regressed against the baseline: rescue::x86_64::bios phase userspace, rescue::x86_64::bios phase to shell"), "{stdout}");
    assert!(
        !stdout.contains("phase kernel"),
        "the kernel took as long: {stdout}"
    );
    // A threshold above the slowdown lets it pass.
    let out = compare(&data("baseline"), &slower, &["--max-slowdown-secs", "31"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    // 2 s more is within TCG's spread: not a regression under the defaults.
    let dir = tempfile::tempdir().unwrap();
    let jitter = edited_baseline(dir.path(), |phases| {
        for p in phases.iter_mut().filter(|p| p[0] != "power-on") {
            p[1] = (p[1].as_f64().unwrap() + 2.0).into();
        }
    });
    let out = compare(&data("baseline"), &jitter, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
}

#[test]
fn bad_input_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = compare(&dir.path().join("missing.json"), &data("new"), &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("OLD "), "{}", text(&out.stderr));
    let junk = dir.path().join("junk.json");
    std::fs::write(&junk, "{}").unwrap();
    let out = compare(&data("baseline"), &junk, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("is not an isotest result"),
        "{}",
        text(&out.stderr)
    );
    let out = compare(&data("baseline"), &data("new"), &["--max-slowdown", "0"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    // A baseline that is not there is said before anything boots.
    let out = support::isotest_command()
        .args(["run", "scenarios/minimal.yaml", "--baseline"])
        .arg(dir.path().join("last-month.iso"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("last-month.iso: no such file"),
        "{}",
        text(&out.stderr)
    );
}

/// Two boots: the fixture `rescue` ISO as the baseline, `wrong-hostname` as
/// the new one, the same expectations (scenarios/rescue.yaml).
#[test]
fn a_baseline_run_names_the_hostname_regression() {
    let isos = support::build_fixtures("x86_64", &["rescue", "wrong-hostname"]).unwrap();
    let artifacts = support::artifacts().join("compare-baseline");
    let reports = tempfile::tempdir().unwrap();
    let file = |name: &str| reports.path().join(name);
    let out = support::isotest_command()
        .args([
            "run",
            "scenarios/rescue.yaml",
            "--filter",
            "rescue::x86_64::bios",
            "--image",
        ])
        .arg(&isos["wrong-hostname"])
        .arg("--baseline")
        .arg(&isos["rescue"])
        .arg("--artifacts")
        .arg(&artifacts)
        .args(["--json", file("result.json").to_str().unwrap()])
        .args(["--junit", file("junit.xml").to_str().unwrap()])
        .args(["--html", file("report.html").to_str().unwrap()])
        .env("RESCUE_PASSWORD", RESCUE_PASSWORD)
        .output()
        .unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    eprintln!("{stdout}");
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("baseline: rescue::x86_64::bios") && l.contains("PASS")),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "REGRESSION     hostname: passed on the baseline, fails now: hostname mismatch"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("0 passed, 1 failed, 0 skipped, 0 could not test\nregressed against the baseline: rescue::x86_64::bios hostname"), "{stdout}");
    assert!(artifacts
        .join("baseline/rescue-x86_64-bios/report.json")
        .is_file());
    // The comparison, decided once, in every report.
    let result: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(file("result.json")).unwrap()).unwrap();
    let checks = result["comparison"]["trials"][0]["checks"]
        .as_array()
        .unwrap();
    let regressed: Vec<&str> = checks
        .iter()
        .filter(|c| c["change"] == "regression")
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(regressed, ["hostname"], "{checks:?}");
    assert!(
        checks
            .iter()
            .any(|c| c["name"] == "sshd" && c["change"] == "unchanged"),
        "{checks:?}"
    );
    let xml = std::fs::read_to_string(file("junit.xml")).unwrap();
    assert!(xml.contains(r#"<testcase name="rescue::x86_64::bios check hostname" classname="rescue::x86_64::bios">"#), "{xml}");
    let html = std::fs::read_to_string(file("report.html")).unwrap();
    assert!(
        html.contains(r#"<tr class="regression" data-check="hostname">"#),
        "{html}"
    );
    // The run's artifacts directory, its baseline/ inside, merged: its own trial
    // alone; its --json result merged: the regression too.
    let merged = support::isotest_command()
        .arg("report")
        .arg(&artifacts)
        .output()
        .unwrap();
    let lines = text(&merged.stdout);
    assert_eq!(
        merged.status.code(),
        Some(1),
        "{lines}{}",
        text(&merged.stderr)
    );
    assert_eq!(
        lines
            .lines()
            .filter(|l| l.starts_with("rescue::x86_64::bios"))
            .count(),
        1,
        "{lines}"
    );
    let merged = support::isotest_command()
        .arg("report")
        .arg(file("result.json"))
        .output()
        .unwrap();
    assert!(
        text(&merged.stdout)
            .contains("regressed against the baseline: rescue::x86_64::bios hostname"),
        "{}",
        text(&merged.stdout)
    );
    // The same two runs stored and compared later say the same.
    let later = compare(&artifacts.join("baseline"), &artifacts, &[]);
    assert_eq!(later.status.code(), Some(1), "{}", text(&later.stdout));
    assert!(
        text(&later.stdout).contains("REGRESSION     hostname"),
        "{}",
        text(&later.stdout)
    );
}
