//! The reports for CI and people: `isotest report` merging two shards' results,
//! its JUnit XML validated against Jenkins' junit-10.xsd with xmllint, its JSON
//! against docs/result.schema.json, and its HTML page rendered by headless
//! Chromium, with assertions on what the browser shows.
//!
//! tests/data/reports holds real results, made by isotest runs on this
//! repository's fixtures and kept as they were written (console.raw, qemu.pid
//! and the passing trial's console.log left out):
//! - shard1/minimal-x86_64-bios: `isotest run scenarios/minimal.yaml --filter bios` (pass, TCG);
//! - shard2/rescue-x86_64-bios: `isotest run scenarios/rescue.yaml --filter x86_64::bios
//!   --image $(fixtures/build-iso wrong-hostname)` (fail: hostname, and an SSH
//!   password login without RESCUE_PASSWORD); written before reports named
//!   their QEMU, so it also shows that older reports still read;
//! - shard2/minimal-x86_64-uefi: `isotest run scenarios/minimal.yaml --filter
//!   x86_64::uefi --accel kvm` on a host where KVM fails (could not test).
//!
//! tests/data/screens/rescue-x86_64-bios is the `screens::no_serial` trial of
//! tests/boot.rs as it was written (qemu.pid left out): a boot that said nothing
//! on serial, with its screendump.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use support::{assert_schema_valid, result_schema, text, tool};

fn data(path: &str) -> PathBuf {
    support::repo().join("tests/data").join(path)
}

/// `isotest report` of the two shards in tests/data, with these outputs.
fn report_of_shards(outputs: &[&str]) -> Output {
    support::isotest_command()
        .args([
            "report",
            "tests/data/reports/shard1",
            "tests/data/reports/shard2",
        ])
        .args(outputs)
        .output()
        .expect("run isotest report")
}

#[test]
fn merged_shards_say_the_verdicts_and_exit_like_a_run() {
    let out = report_of_shards(&[]);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a failed trial: exit 1\n{stdout}{}",
        text(&out.stderr)
    );
    assert!(
        stdout.contains("1 passed, 1 failed, 0 skipped, 1 could not test"),
        "{stdout}"
    );
    let lines: Vec<&str> = stdout.lines().take(3).collect();
    assert!(
        lines[0].starts_with("minimal::x86_64::bios")
            && lines[2].starts_with("rescue::x86_64::bios"),
        "sorted: {stdout}"
    );
}

#[test]
fn bad_sources_are_usage_errors() {
    let empty = tempfile::tempdir().unwrap();
    let out = support::isotest_command()
        .arg("report")
        .arg(empty.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("no report.json in it or below it"),
        "{}",
        text(&out.stderr)
    );
    let out = support::isotest_command()
        .args(["report", "tests/data/reports/shard2", "tests/data/reports"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("is in both"),
        "{}",
        text(&out.stderr)
    );
    let out = support::isotest_command().arg("report").output().unwrap();
    assert_eq!(out.status.code(), Some(2), "a source is required");
}

/// A report that cannot be written (its directory would be below a plain
/// file) is said, the other reports are still written, and the verdicts keep
/// their exit status: a pass becomes "could not test", a failure stays 1.
#[test]
fn a_report_that_cannot_be_written_is_said_and_the_others_are_written() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain-file");
    std::fs::write(&file, "").unwrap();
    // --json is written first: the JUnit XML after it must still be.
    let unwritable = file.join("result.json");
    for (sources, status) in [
        (&["tests/data/reports/shard1"][..], 3),
        (
            &["tests/data/reports/shard1", "tests/data/reports/shard2"][..],
            1,
        ),
    ] {
        let junit = dir.path().join(format!("junit-{status}.xml"));
        let out = support::isotest_command()
            .arg("report")
            .args(sources)
            .arg("--json")
            .arg(&unwritable)
            .arg("--junit")
            .arg(&junit)
            .output()
            .unwrap();
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(status), "{sources:?}: {stderr}");
        assert!(
            stderr.contains(&format!("error: write {}:", unwritable.display())),
            "{stderr}"
        );
        assert!(junit.is_file(), "the JUnit XML is still written");
    }
}

/// xmllint's verdict on `xml` against junit-10.xsd.
fn xmllint(xml: &Path) -> Output {
    Command::new(tool(
        "xmllint",
        "not found: install libxml2-utils (ci/install-deps does)",
    ))
    .args(["--noout", "--schema"])
    .arg(data("junit-10.xsd"))
    .arg(xml)
    .output()
    .expect("run xmllint")
}

#[test]
fn junit_is_valid_against_jenkins_junit_10_xsd() {
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("junit.xml");
    report_of_shards(&["--junit", junit.to_str().unwrap()]);
    let check = xmllint(&junit);
    assert!(check.status.success(), "{}", text(&check.stderr));
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(
        xml.matches("<testsuite ").count(),
        3,
        "a suite per trial: {xml}"
    );
    let element = |tag: &str, has: &[&str]| {
        xml.lines()
            .any(|l| l.trim_start().starts_with(tag) && has.iter().all(|h| l.contains(h)))
    };
    let hostname = r#"message="hostname mismatch: expected `rescue`, the guest says `wrong-name`""#;
    assert!(element("<failure ", &[hostname, r#"type="fail""#]), "{xml}");
    assert!(
        element(
            "<error ",
            &[
                r#"message="--accel kvm: KVM cannot run x86_64 guests here"#,
                r#"type="could-not-test""#
            ]
        ),
        "{xml}"
    );
    assert!(
        xml.contains(r#"<property name="phase kernel" value="#),
        "{xml}"
    );
    assert!(
        xml.contains(r#"<property name="qemu version" value="QEMU emulator version"#),
        "{xml}"
    );
    assert!(
        xml.contains("rescue-x86_64-bios/console.log"),
        "the transcript: {xml}"
    );

    // The schema does reject what it should: a suite without its counts.
    let broken = dir.path().join("broken.xml");
    std::fs::write(
        &broken,
        r#"<testsuites><testsuite name="x"><testcase name="y"/></testsuite></testsuites>"#,
    )
    .unwrap();
    assert!(
        !xmllint(&broken).status.success(),
        "xmllint accepted an invalid document"
    );
}

#[test]
fn a_run_writes_all_three_reports() {
    // Hidden OVMF: the UEFI trial is skipped, nothing boots.
    let dir = tempfile::tempdir().unwrap();
    let scenario = support::plain_scenario(dir.path(), "");
    let (junit, json, html) = (
        dir.path().join("out/junit.xml"),
        dir.path().join("out/result.json"),
        dir.path().join("out/report.html"),
    );
    let out = support::hide_ovmf(&mut support::isotest_command())
        .arg("run")
        .arg(&scenario)
        .args([
            "--image",
            &support::any_iso(&scenario),
            "--filter",
            "uefi",
            "--artifacts",
        ])
        .arg(dir.path().join("artifacts"))
        .arg("--junit")
        .arg(&junit)
        .arg("--json")
        .arg(&json)
        .arg("--html")
        .arg(&html)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let xml = std::fs::read_to_string(&junit).unwrap();
    let suite = xml
        .lines()
        .find(|l| l.contains(r#"<testsuite name="plain::x86_64::uefi""#))
        .expect("the trial's suite");
    assert!(
        suite.contains(r#"tests="1""#) && suite.contains(r#"skipped="1""#),
        "a skipped suite: {suite}"
    );
    assert!(
        xml.contains("<skipped message=\"no UEFI firmware for x86_64 found"),
        "{xml}"
    );
    assert!(xmllint(&junit).status.success());
    let result: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(result["trials"][0]["verdict"], "skipped");
    assert_schema_valid(&result);
    assert!(std::fs::read_to_string(&html)
        .unwrap()
        .contains(r#"class="cell skipped" data-trial="plain::x86_64::uefi""#));
}

#[test]
fn the_json_result_follows_its_schema_and_merges_back() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("result.json");
    report_of_shards(&["--json", json.to_str().unwrap()]);
    let result: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_schema_valid(&result);
    assert_eq!(result["format_version"], 2);
    let trials = result["trials"].as_array().unwrap();
    assert_eq!(trials.len(), 3);
    assert_eq!(trials[0]["qemu"]["command_line"][0], "-machine");
    assert_eq!(
        trials[2]["files"],
        serde_json::json!(["console.log", "report.json"])
    );

    // The schema does reject what it should.
    let mut broken = result.clone();
    broken["trials"][1]
        .as_object_mut()
        .unwrap()
        .remove("reason");
    assert!(
        !result_schema().is_valid(&broken),
        "a could-not-test trial without its reason passed"
    );
    broken["trials"][0]["checks"][0]["outcome"] = "maybe".into();
    assert!(!result_schema().is_valid(&broken));

    // A --json result is a source of `isotest report` too.
    let again = dir.path().join("again.json");
    let out = support::isotest_command()
        .arg("report")
        .arg(&json)
        .arg("--json")
        .arg(&again)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let again: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&again).unwrap()).unwrap();
    assert_eq!(again["trials"], result["trials"]);
}

/// The nightly workflow's recipe: each shard writes `--artifacts
/// results/artifacts --json results/result.json` and uploads results/; the
/// report job merges the copies it downloaded under shards/. The merged reports
/// must still find each trial's files there.
#[test]
fn a_json_result_moved_with_its_artifacts_still_finds_them() {
    let dir = tempfile::tempdir().unwrap();
    // A failed trial, with its transcript.
    let trial = dir.path().join("results/artifacts/rescue-x86_64-bios");
    std::fs::create_dir_all(&trial).unwrap();
    for file in ["report.json", "console.log"] {
        std::fs::copy(
            data("reports/shard2/rescue-x86_64-bios").join(file),
            trial.join(file),
        )
        .unwrap();
    }
    let isotest_in = |cwd: &Path, args: &[&str]| {
        let out = Command::new(support::isotest_bin())
            .current_dir(cwd)
            .args(args)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(1),
            "the failed trial: exit 1\n{}",
            text(&out.stderr)
        );
    };
    let isotest = |args: &[&str]| isotest_in(dir.path(), args);
    let written = || -> serde_json::Value {
        serde_json::from_str(
            &std::fs::read_to_string(dir.path().join("results/result.json")).unwrap(),
        )
        .unwrap()
    };
    // Written as a bare file name, in the directory it names (its parent is the empty path).
    isotest_in(
        &dir.path().join("results"),
        &["report", "artifacts", "--json", "result.json"],
    );
    assert_eq!(
        written()["trials"][0]["artifacts"],
        "artifacts/rescue-x86_64-bios",
        "relative to result.json"
    );
    isotest(&[
        "report",
        "results/artifacts",
        "--json",
        "results/result.json",
    ]);
    assert_eq!(
        written()["trials"][0]["artifacts"],
        "artifacts/rescue-x86_64-bios",
        "relative to result.json"
    );
    std::fs::create_dir(dir.path().join("shards")).unwrap();
    std::fs::rename(
        dir.path().join("results"),
        dir.path().join("shards/results-1"),
    )
    .unwrap();
    isotest(&[
        "report",
        "shards/results-1/result.json",
        "--html",
        "report/index.html",
        "--junit",
        "report/junit.xml",
    ]);

    let page = std::fs::read_to_string(dir.path().join("report/index.html")).unwrap();
    let transcript = "../shards/results-1/artifacts/rescue-x86_64-bios/console.log";
    assert!(
        page.contains(&format!(r#"href="{transcript}""#)),
        "the failure links its transcript: {page}"
    );
    assert!(dir.path().join("report").join(transcript).is_file());
    assert!(!page.contains("No transcript"), "{page}");
    let junit = std::fs::read_to_string(dir.path().join("report/junit.xml")).unwrap();
    let moved = "transcript: shards/results-1/artifacts/rescue-x86_64-bios/console.log";
    assert!(
        junit.contains(moved),
        "JUnit names the transcript where it is now: {junit}"
    );
}

/// Reads, in the page as Chromium laid it out, each matrix cell's colour and
/// text, each timeline bar's stages, and where the transcript links lead; the
/// findings go into a `<pre id="probe">` that --dump-dom prints.
const PROBE: &str = r#"<script>
const cells = [...document.querySelectorAll('td.cell[data-trial]')].map(cell => ({
  trial: cell.dataset.trial,
  background: getComputedStyle(cell).backgroundColor,
  text: cell.innerText,
}));
const bars = [...document.querySelectorAll('table.timeline tr[data-trial]')].map(row => ({
  trial: row.dataset.trial,
  stages: [...row.querySelectorAll('span.seg')].map(s => [s.dataset.stage, s.getBoundingClientRect().width]),
}));
const links = [...document.querySelectorAll('a.transcript')].map(a => a.href);
const pre = document.createElement('pre');
pre.id = 'probe';
pre.textContent = JSON.stringify({ cells, bars, links });
document.body.appendChild(pre);
</script>"#;

/// `page` rendered by headless Chromium, after its scripts ran: the DOM. A
/// browser that hangs is stopped (coreutils' `timeout`) and fails the test.
fn chromium_dom(page: &Path) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new("timeout")
        .arg("120")
        .arg(tool(
            "chromium",
            "not found: install chromium (ci/install-deps does)",
        ))
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
        ])
        .args([
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1280,1000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("run chromium");
    assert!(out.status.success(), "chromium: {}", text(&out.stderr));
    text(&out.stdout)
}

/// `rgb(198, 40, 40)` as numbers.
fn rgb(css: &str) -> (u32, u32, u32) {
    let n: Vec<u32> = css
        .trim_start_matches("rgb(")
        .trim_end_matches(')')
        .split(", ")
        .map(|v| v.parse().unwrap())
        .collect();
    (n[0], n[1], n[2])
}

#[test]
fn the_html_page_in_headless_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("report.html");
    report_of_shards(&["--html", html.to_str().unwrap()]);
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        !page.contains("src=") && !page.contains("<link"),
        "self-contained: no external assets"
    );
    let probed = dir.path().join("probed.html");
    std::fs::write(&probed, page.replace("</body>", &format!("{PROBE}</body>"))).unwrap();

    let dom = chromium_dom(&probed);
    let start =
        dom.find(r#"<pre id="probe">"#).expect("the probe ran") + r#"<pre id="probe">"#.len();
    let end = start + dom[start..].find("</pre>").unwrap();
    let json = dom[start..end]
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    let probe: serde_json::Value =
        serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"));

    let cell = |trial: &str| {
        probe["cells"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["trial"] == trial)
            .unwrap_or_else(|| panic!("no cell {trial}"))
    };
    let failed = cell("rescue::x86_64::bios");
    let (r, g, b) = rgb(failed["background"].as_str().unwrap());
    assert!(
        r > 150 && g < 90 && b < 90,
        "the failed trial's cell is red: {failed}"
    );
    let shown = failed["text"].as_str().unwrap();
    assert!(
        shown.contains("FAIL")
            && shown.contains(
                "hostname: hostname mismatch: expected `rescue`, the guest says `wrong-name`"
            ),
        "{shown}"
    );
    let (r, g, b) = rgb(cell("minimal::x86_64::bios")["background"]
        .as_str()
        .unwrap());
    assert!(
        g > 100 && r < 90 && b < 90,
        "the passed trial's cell is green"
    );
    let (r, g, b) = rgb(cell("minimal::x86_64::uefi")["background"]
        .as_str()
        .unwrap());
    assert!(
        r > 200 && g > 60 && g < 160 && b < 60,
        "could not test is orange, neither red nor green"
    );

    // The timeline: firmware, menu, kernel, userspace, checks, each visible.
    let bar = probe["bars"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["trial"] == "rescue::x86_64::bios")
        .unwrap();
    let stages: Vec<&str> = bar["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s[0].as_str().unwrap())
        .collect();
    assert_eq!(
        stages,
        ["firmware", "menu", "kernel", "userspace", "checks"]
    );
    assert!(
        bar["stages"]
            .as_array()
            .unwrap()
            .iter()
            .skip(1)
            .all(|s| s[1].as_f64().unwrap() > 1.0),
        "{bar}"
    );

    // A failure links to its transcript, and the link leads to it; the trial
    // that could not test never opened a console, so has no link.
    let links = probe["links"].as_array().unwrap();
    assert_eq!(links.len(), 1, "{links:?}");
    let rescue = links
        .iter()
        .filter_map(|l| l.as_str())
        .find(|l| l.contains("rescue-x86_64-bios"))
        .unwrap();
    let target = PathBuf::from(rescue.strip_prefix("file://").unwrap());
    assert_eq!(
        std::fs::canonicalize(&target).unwrap(),
        std::fs::canonicalize(data("reports/shard2/rescue-x86_64-bios/console.log")).unwrap()
    );
    // The console around the failed check, from the transcript.
    assert!(
        dom.contains(r#"<span class="hit">&gt; cat /proc/sys/kernel/hostname</span>"#),
        "{dom}"
    );
}

/// A boot that died shows what the display showed: the page embeds the real
/// screendump, which Chromium decodes at its size, and the JSON result names it.
#[test]
fn a_screendump_in_headless_chromium_and_the_json() {
    let dir = tempfile::tempdir().unwrap();
    let (html, json) = (
        dir.path().join("report.html"),
        dir.path().join("result.json"),
    );
    let out = support::isotest_command()
        .args([
            "report",
            "tests/data/screens",
            "--html",
            html.to_str().unwrap(),
            "--json",
            json.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "a failed trial: {}",
        text(&out.stderr)
    );
    let result: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_schema_valid(&result);
    assert_eq!(result["trials"][0]["screendump"], "screen.png");
    assert!(
        result["trials"][0]["files"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "screen.png"),
        "{result}"
    );

    let probe = r#"<script>
window.addEventListener('load', () => {
  const shots = [...document.querySelectorAll('img.screendump')].map(i => [i.naturalWidth, i.naturalHeight, i.closest('a').href]);
  const pre = document.createElement('pre');
  pre.id = 'probe';
  pre.textContent = JSON.stringify(shots);
  document.body.appendChild(pre);
});
</script>"#;
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        !page.contains(r#"src="screen"#) && !page.contains(r#"src="/"#),
        "the picture is embedded, not a file beside the page"
    );
    let probed = dir.path().join("probed.html");
    std::fs::write(&probed, page.replace("</body>", &format!("{probe}</body>"))).unwrap();
    let dom = chromium_dom(&probed);
    let start =
        dom.find(r#"<pre id="probe">"#).expect("the probe ran") + r#"<pre id="probe">"#.len();
    let shots: serde_json::Value =
        serde_json::from_str(&dom[start..start + dom[start..].find("</pre>").unwrap()]).unwrap();
    assert_eq!(
        shots[0][0], 720,
        "Chromium decoded the 720x400 VGA text screen: {shots}"
    );
    assert_eq!(shots[0][1], 400, "{shots}");
    let target = PathBuf::from(
        shots[0][2]
            .as_str()
            .unwrap()
            .strip_prefix("file://")
            .unwrap(),
    );
    assert_eq!(
        std::fs::canonicalize(target).unwrap(),
        std::fs::canonicalize(data("screens/rescue-x86_64-bios/screen.png")).unwrap()
    );
}
