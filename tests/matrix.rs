//! The CI matrix without booting anything: `isotest matrix` as GitHub's
//! `fromJSON` and GitLab's child pipelines take it, `--shard` slices that cover
//! the plan exactly once, tests/boot.rs under `cargo nextest` (listing, exact
//! filters, `--partition`), and ci/nightly/*'s workflows checked with the
//! published schemas (check-jsonschema), actionlint, and against this repository.

mod support;

use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use support::{isotest_command, repo, text, venv_tool};

fn isotest(dir: &Path, args: &[&str]) -> Output {
    isotest_command()
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run isotest")
}

/// `isotest list`'s trial names (without a skip's reason).
fn listed(dir: &Path, args: &[&str]) -> Vec<String> {
    let out = isotest(dir, &[&["list"], args].concat());
    assert!(
        out.status.success(),
        "isotest list {args:?}: {}",
        text(&out.stderr)
    );
    text(&out.stdout)
        .lines()
        .map(|l| l.split("  skipped: ").next().unwrap_or(l).to_owned())
        .collect()
}

/// Scenario sets to shard: the repository's, and made-up ones of 1, 4 and 9 trials.
fn scenario_sets() -> (tempfile::TempDir, Vec<(PathBuf, Vec<String>)>) {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, yaml: &str| {
        std::fs::write(dir.path().join(name), yaml).unwrap();
        name.to_owned()
    };
    let one = write("one.yaml", "iso: one\narch: x86_64\nfirmware: bios\n");
    let four = write(
        "four.yaml",
        "iso: four\narch: [x86_64, aarch64]\nfirmware: uefi\nmemory: 512M\n",
    );
    for iso in ["a", "b", "c"] {
        support::tiny_iso(&dir.path().join(format!("{iso}.iso")));
    }
    let images = write(
        "images.yaml",
        "iso: images\narch: [x86_64, aarch64]\nimages: [a.iso, b.iso, c.iso]\n",
    );
    let sets = vec![
        (repo().to_owned(), Vec::new()),
        (dir.path().to_owned(), vec![one.clone()]),
        (dir.path().to_owned(), vec![four.clone(), one.clone()]),
        (dir.path().to_owned(), vec![images, four, one]),
    ];
    (dir, sets)
}

#[test]
fn every_trial_is_in_exactly_one_shard() {
    let (_dir, sets) = scenario_sets();
    for (dir, files) in &sets {
        let files: Vec<&str> = files.iter().map(String::as_str).collect();
        let all = listed(dir, &files);
        assert!(!all.is_empty());
        for n in 1..=5 {
            let mut seen = Vec::new();
            for k in 1..=n {
                let spec = format!("{k}/{n}");
                let shard = listed(dir, &[files.as_slice(), &["--shard", &spec]].concat());
                // The matrix of a shard is the same slice.
                let out = isotest(
                    dir,
                    &[&["matrix", "--shard", &spec], files.as_slice()].concat(),
                );
                if shard.is_empty() {
                    assert_eq!(
                        out.status.code(),
                        Some(2),
                        "an empty matrix is refused: {}",
                        text(&out.stdout)
                    );
                } else {
                    assert!(
                        out.status.success(),
                        "matrix --shard {spec}: {}",
                        text(&out.stderr)
                    );
                    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
                    let names: Vec<&str> = v["include"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|e| e["trial"].as_str().unwrap())
                        .collect();
                    assert_eq!(names, shard, "matrix and list disagree on shard {spec}");
                }
                seen.extend(shard);
            }
            let (mut seen_sorted, mut all_sorted) = (seen.clone(), all.clone());
            seen_sorted.sort();
            all_sorted.sort();
            assert_eq!(
                seen_sorted, all_sorted,
                "{files:?}, N = {n}: a trial is missing or in two shards"
            );
        }
    }
}

#[test]
fn a_bad_shard_is_a_usage_error() {
    for (command, spec) in [
        ("run", "0/2"),
        ("list", "3"),
        ("matrix", "a/b"),
        ("run", "3/2"),
        ("list", "1/0"),
    ] {
        let out = isotest(repo(), &[command, "--shard", spec]);
        let err = text(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{command} --shard {spec}: {err}"
        );
        assert!(
            err.contains(&format!("invalid value '{spec}' for '--shard <K/N>'")),
            "{err}"
        );
        assert!(err.contains("e.g. 2/4"), "{err}");
    }
}

#[test]
fn a_plan_that_depends_on_the_host_cannot_be_sharded() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("here.yaml"), "iso: here\n").unwrap();
    for args in [
        &["matrix", "here.yaml"][..],
        &["list", "here.yaml", "--shard", "1/2"],
        &["run", "here.yaml", "--shard", "1/2"],
    ] {
        let out = isotest(dir.path(), args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("here.yaml: no `arch:`"), "{err}");
    }
    // Without a shard, a local list is the host's plan, as before.
    assert!(!listed(dir.path(), &["here.yaml"]).is_empty());
}

#[test]
fn an_empty_shard_runs_nothing_and_passes() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("one.yaml"),
        "iso: one\narch: x86_64\nfirmware: bios\n",
    )
    .unwrap();
    let out = isotest(dir.path(), &["run", "one.yaml", "--shard", "2/2"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("shard 2/2: no trial; nothing to run"),
        "{}",
        text(&out.stderr)
    );
    let out = isotest(
        dir.path(),
        &["run", "one.yaml", "--trial", "one::x86_64::uefi"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--trial one::x86_64::uefi: no such trial in the plan"),
        "{}",
        text(&out.stderr)
    );
}

/// The matrix of the repository's scenarios, by the command the GitHub workflow's
/// plan step runs, is one line of JSON that `fromJSON` turns into
/// `strategy.matrix`: an object with `include`, one entry per trial, each with
/// what the trial job reads (`matrix.trial`, `.id`, `.scenario`, `.iso`, `.arch`,
/// `.runner`), including the trials this host would skip.
#[test]
fn the_workflow_matrix_command_gives_what_fromjson_takes() {
    let workflow = std::fs::read_to_string(repo().join("ci/nightly/github.yml")).unwrap();
    let line = workflow
        .lines()
        .find(|l| l.contains("target/release/isotest matrix"))
        .expect("the plan step runs isotest matrix");
    let command = line
        .split("$(")
        .nth(1)
        .and_then(|c| c.split(')').next())
        .expect("matrix=$(...)");
    let args: Vec<&str> = command.split_whitespace().skip(1).collect();
    assert_eq!(
        command.split_whitespace().next(),
        Some("target/release/isotest")
    );
    let out = isotest(repo(), &args);
    assert!(out.status.success(), "{command}: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert_eq!(
        stdout.trim_end().lines().count(),
        1,
        "GITHUB_OUTPUT takes `matrix=<one line>`"
    );
    let v: Value = serde_json::from_str(&stdout).expect("valid JSON");
    let include = v["include"].as_array().expect("an object with `include`");
    let names: Vec<&str> = include
        .iter()
        .map(|e| e["trial"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        listed(repo(), &[]),
        "one entry per trial, skipped ones too"
    );
    for field in [
        "trial", "id", "scenario", "iso", "arch", "firmware", "accel", "runner",
    ] {
        assert!(
            workflow.contains(&format!("matrix.{field}")) || ["firmware", "accel"].contains(&field),
            "the workflow ignores matrix.{field}"
        );
        assert!(
            include.iter().all(|e| !e[field].is_null()),
            "an entry has no `{field}`"
        );
    }
    for e in include {
        assert!(
            e["runner"].as_array().is_some_and(|r| !r.is_empty()),
            "{e}: no runner labels"
        );
        assert!(
            !e["id"].as_str().unwrap().contains(':'),
            "artifact names cannot hold `:`"
        );
        assert!(
            repo().join(e["scenario"].as_str().unwrap()).is_file(),
            "{e}: the scenario path is not the repository's"
        );
    }
    let arm = include
        .iter()
        .find(|e| e["arch"] == "aarch64")
        .expect("rescue.yaml has an aarch64 trial");
    assert_eq!(arm["runner"], serde_json::json!(["ubuntu-24.04-arm"]));
}

#[test]
fn accel_kvm_asks_for_a_kvm_runner() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("fast.yaml"),
        "iso: fast\narch: [x86_64, aarch64]\nfirmware: uefi\naccel: kvm\n",
    )
    .unwrap();
    let out = isotest(
        dir.path(),
        &[
            "matrix",
            "fast.yaml",
            "--runner",
            "aarch64-kvm=self-hosted,graviton",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["include"][0]["runner"],
        serde_json::json!(["self-hosted", "linux", "x64", "kvm"])
    );
    assert_eq!(
        v["include"][1]["runner"],
        serde_json::json!(["self-hosted", "graviton"])
    );
    assert_eq!(v["include"][0]["accel"], "kvm");
    let out = isotest(
        dir.path(),
        &["matrix", "fast.yaml", "--runner", "riscv64=x"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("KIND one of x86_64, aarch64, x86_64-kvm, aarch64-kvm"),
        "{}",
        text(&out.stderr)
    );
}

// ---- tests/boot.rs under cargo nextest ---------------------------------------

fn cargo_nextest(args: &[&str]) -> Output {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(repo())
        .env("NIX_CONFIG", support::nix_config())
        .args(["nextest"])
        .args(args)
        .output()
        .expect("run cargo nextest");
    assert!(
        !text(&out.stderr).contains("no such command: `nextest`"),
        "cargo-nextest is not installed: ci/install-deps installs it"
    );
    out
}

/// (binary, test names, names the filters select) from `cargo nextest list`.
fn nextest_list(extra: &[&str]) -> (PathBuf, Vec<String>, Vec<String>) {
    let out = cargo_nextest(
        &[
            &["list", "--test", "boot", "--message-format", "json"],
            extra,
        ]
        .concat(),
    );
    assert!(
        out.status.success(),
        "cargo nextest list: {}",
        text(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("nextest's JSON");
    let suite = &v["rust-suites"]["isotest-suite::boot"];
    let binary = PathBuf::from(suite["binary-path"].as_str().expect("the boot binary"));
    let cases = suite["testcases"].as_object().expect("test cases");
    let all = cases.keys().cloned().collect();
    let matching = cases
        .iter()
        .filter(|(_, c)| c["filter-match"]["status"] == "matches")
        .map(|(n, _)| n.clone())
        .collect();
    (binary, all, matching)
}

/// What nextest asks of a test binary: `--list --format terse` (and with
/// `--ignored`), and `--exact NAME` for one test.
#[test]
fn the_boot_runner_answers_nextests_calls() {
    let (binary, all, _) = nextest_list(&[]);
    let run = |args: &[&str]| {
        let out = Command::new(&binary)
            .current_dir(repo())
            .args(args)
            .output()
            .expect("run the boot binary");
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        text(&out.stdout)
    };
    let terse: Vec<String> = run(&["--list", "--format", "terse"])
        .lines()
        .map(|l| l.strip_suffix(": test").expect("`NAME: test`").to_owned())
        .collect();
    assert_eq!(
        terse.iter().cloned().collect::<BTreeSet<_>>(),
        all.iter().cloned().collect(),
        "nextest and the binary agree"
    );
    assert!(
        all.contains(&"rescue::x86_64::bios".to_owned())
            && all.iter().any(|n| n.starts_with("negative::"))
    );
    // No test is ignored at list time: a trial that cannot run is ignored when run, with its reason.
    assert_eq!(run(&["--list", "--format", "terse", "--ignored"]), "");
    // `--exact`: `rescue::x86_64::bios` selects that test, not `rescue::x86_64::bios…`.
    assert_eq!(
        run(&[
            "--list",
            "--format",
            "terse",
            "--exact",
            "negative::wrong_hostname"
        ]),
        "negative::wrong_hostname: test\n"
    );
    assert_eq!(
        run(&["--list", "--format", "terse", "--exact", "negative::wrong"]),
        ""
    );
}

#[test]
fn nextest_partitions_split_the_boot_tests_exactly_once() {
    let (_, all, _) = nextest_list(&[]);
    let everything: BTreeSet<String> = all.iter().cloned().collect();
    for n in 1..=4 {
        let mut seen = Vec::new();
        for k in 1..=n {
            let (_, _, matching) = nextest_list(&["--partition", &format!("count:{k}/{n}")]);
            seen.extend(matching);
        }
        assert_eq!(
            seen.len(),
            everything.len(),
            "N = {n}: a test is in two partitions or none"
        );
        assert_eq!(seen.into_iter().collect::<BTreeSet<_>>(), everything);
    }
}

/// `cargo nextest run` runs one trial per test process: each test of a partition
/// runs alone (`17 filtered out`) and says its own result. The trials chosen
/// cannot boot: their default UEFI firmware is pointed at files that do not
/// exist, so each is ignored with the plan's reason in milliseconds.
#[test]
fn nextest_runs_one_trial_per_test_in_partitions() {
    let filter = "test(/^(minimal|rescue)::[a-z0-9_]+::uefi$/)";
    let (_, all, cheap) = nextest_list(&["-E", filter]);
    assert_eq!(
        cheap,
        [
            "minimal::x86_64::uefi",
            "rescue::aarch64::uefi",
            "rescue::x86_64::uefi"
        ]
    );
    let mut ran = Vec::new();
    for k in 1..=2 {
        let partition = format!("count:{k}/2");
        let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
        command
            .current_dir(repo())
            .env("NIX_CONFIG", support::nix_config());
        for arch in ["X86_64", "AARCH64"] {
            command.env(format!("ISOTEST_UEFI_CODE_{arch}"), "/nonexistent/CODE.fd");
            command.env(format!("ISOTEST_UEFI_VARS_{arch}"), "/nonexistent/VARS.fd");
        }
        let out = command
            .args([
                "nextest",
                "run",
                "--profile",
                "ci",
                "--test",
                "boot",
                "--partition",
                &partition,
                "-E",
                filter,
            ])
            .args([
                "--success-output",
                "immediate",
                "--no-tests",
                "pass",
                "--no-fail-fast",
            ])
            .output()
            .expect("run cargo nextest");
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        assert!(out.status.success(), "{partition}: {stderr}");
        let all_out = format!("{stdout}{stderr}");
        for name in &cheap {
            if all_out.contains(&format!(
                "test {name} ... ignored (UEFI code: /nonexistent/CODE.fd: no such file)"
            )) {
                ran.push(name.clone());
            }
        }
        // The ci profile's JUnit (.config/nextest.toml) names what this partition
        // ran. It is in nextest's store, the workspace's target/nextest (its
        // default `store.dir`), wherever CARGO_TARGET_DIR puts the build.
        let junit = std::fs::read_to_string(repo().join("target/nextest/ci/junit.xml"))
            .expect("nextest's JUnit");
        for name in &cheap {
            assert_eq!(
                junit.contains(&format!("name=\"{name}\"")),
                all_out.contains(&format!("test {name} ...")),
                "{partition}: {name}"
            );
        }
        let alone = format!("1 ignored; 0 measured; {} filtered out", all.len() - 1);
        let processes = all_out.matches(&alone).count();
        assert_eq!(
            processes,
            all_out.matches("running 1 test").count(),
            "{partition}: a process ran more than its test:\n{all_out}"
        );
    }
    ran.sort();
    assert_eq!(ran, cheap, "each test ran in exactly one partition");
}

// ---- ci/nightly -------------------------------------------------------------

fn validate(schema: &str, files: &[&Path]) -> Output {
    Command::new(venv_tool("check-jsonschema"))
        .args(["--builtin-schema", schema])
        .args(files)
        .output()
        .expect("run check-jsonschema")
}

fn actionlint(file: &Path) -> Output {
    // No shellcheck or pyflakes here: their absence must not change the verdict.
    Command::new(venv_tool("actionlint"))
        .args(["-shellcheck=", "-pyflakes="])
        .arg(file)
        .output()
        .expect("run actionlint")
}

/// The GitHub workflow against the published workflow schema and actionlint,
/// and a broken copy refused by both (so neither passes everything).
#[test]
fn the_github_workflow_is_valid() {
    let workflow = repo().join("ci/nightly/github.yml");
    let out = validate("vendor.github-workflows", &[&workflow]);
    assert!(
        out.status.success(),
        "check-jsonschema: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let out = actionlint(&workflow);
    assert!(
        out.status.success(),
        "actionlint: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );

    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.yml");
    let text_ = std::fs::read_to_string(&workflow).unwrap();
    std::fs::write(
        &broken,
        text_.replacen(
            "runs-on: ${{ matrix.runner }}",
            "runs_on: ${{ matrix.runner }}",
            1,
        ),
    )
    .unwrap();
    assert!(
        !validate("vendor.github-workflows", &[&broken])
            .status
            .success(),
        "the schema accepts a job without runs-on"
    );
    std::fs::write(
        &broken,
        text_.replacen("needs: matrix\n", "needs: matrx\n", 1),
    )
    .unwrap();
    assert!(
        !actionlint(&broken).status.success(),
        "actionlint accepts a job that needs an unknown job"
    );
}

/// The GitLab pipeline, its templates, and the child pipeline the matrix job
/// generates from the repository's scenarios, against GitLab's published schema.
#[test]
fn the_gitlab_pipelines_are_valid() {
    let dir = tempfile::tempdir().unwrap();
    let parent = std::fs::read_to_string(repo().join("ci/nightly/gitlab.yml")).unwrap();
    let line = parent
        .lines()
        .find(|l| l.contains("target/release/isotest matrix"))
        .expect("the matrix job runs isotest matrix");
    let command = line
        .trim()
        .trim_start_matches("- ")
        .split('>')
        .next()
        .unwrap();
    let args: Vec<&str> = command.split_whitespace().skip(1).collect();
    let out = isotest(repo(), &args);
    assert!(out.status.success(), "{command}: {}", text(&out.stderr));
    let child = dir.path().join("trials.yml");
    std::fs::write(&child, &out.stdout).unwrap();
    let child_yaml: serde_yaml_ng::Value = serde_yaml_ng::from_slice(&out.stdout).expect("YAML");
    let local = child_yaml["include"][0]["local"]
        .as_str()
        .expect("the child includes the templates");
    assert!(
        repo().join(local).is_file(),
        "{local} is not in the repository"
    );
    let files = [
        repo().join("ci/nightly/gitlab.yml"),
        repo().join("ci/nightly/gitlab-jobs.yml"),
        child.clone(),
    ];
    let valid = validate(
        "vendor.gitlab-ci",
        &files.iter().map(PathBuf::as_path).collect::<Vec<_>>(),
    );
    assert!(
        valid.status.success(),
        "check-jsonschema: {}{}",
        text(&valid.stdout),
        text(&valid.stderr)
    );

    let broken = dir.path().join("broken.yml");
    std::fs::write(
        &broken,
        text(&out.stdout).replacen("    matrix:\n", "    matrixx:\n", 1),
    )
    .unwrap();
    assert!(
        !validate("vendor.gitlab-ci", &[&broken]).status.success(),
        "the schema accepts `parallel: {{matrixx}}`"
    );
}

/// Every command of the repository that the workflows run exists: scripts in
/// ci/ and fixtures/, and `isotest` subcommands with each option they pass.
#[test]
fn the_workflows_run_only_what_exists() {
    let mut problems = Vec::new();
    let mut calls = 0;
    for file in [
        "ci/nightly/github.yml",
        "ci/nightly/gitlab.yml",
        "ci/nightly/gitlab-jobs.yml",
    ] {
        // A shell line continued with `\` is one command.
        let workflow = std::fs::read_to_string(repo().join(file))
            .unwrap()
            .replace("\\\n", " ");
        for line in workflow
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
        {
            let words: Vec<&str> = line
                .split_whitespace()
                .map(|w| w.trim_matches(|c| "\"'();".contains(c)))
                .collect();
            for word in words
                .iter()
                .filter(|w| w.starts_with("ci/") || w.starts_with("fixtures/"))
            {
                // A hashFiles() pattern names the directory before its glob.
                let path = word.split('*').next().unwrap_or(word).trim_end_matches('/');
                if !repo().join(path).exists() {
                    problems.push(format!("{file}: {word}: no such file"));
                }
            }
            if let Some(i) = words
                .iter()
                .position(|w| w.ends_with("target/release/isotest"))
            {
                calls += 1;
                // The command ends where the shell starts another one.
                let args: Vec<&str> = words[i + 1..]
                    .iter()
                    .copied()
                    .take_while(|w| !matches!(*w, ">" | ">>" | "|" | "&&" | "||"))
                    .collect();
                problems.extend(isotest_call(file, &args));
            }
        }
    }
    assert!(
        calls >= 6,
        "only {calls} isotest commands found in the workflows"
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// A subcommand and the options after it, checked against its `--help`.
fn isotest_call(file: &str, args: &[&str]) -> Vec<String> {
    let sub = args.first().copied().unwrap_or_default();
    let help = isotest(repo(), &[sub, "--help"]);
    if !help.status.success() {
        return vec![format!("{file}: isotest {sub}: no such subcommand")];
    }
    let help = text(&help.stdout);
    args.iter()
        .filter(|w| w.starts_with("--"))
        .filter(|w| {
            !help
                .lines()
                .any(|l| l.trim_start().split([' ', ',', '=']).any(|t| t == **w))
        })
        .map(|w| format!("{file}: isotest {sub} {w}: no such option"))
        .collect()
}
