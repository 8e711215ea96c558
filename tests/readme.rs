//! README.md's commands, run as a user pastes them: every line of its ```sh
//! blocks, from the repository's root, with `cargo run -p isotest --` standing
//! for the built binary. Commands that boot or install are skipped, each by name
//! and with why (shown as ignored); a command the README gains runs unless it is
//! added to that list, and a skip whose command left the README fails.
//!
//! A command exits 0 unless its comment says `# exits N`. Every ```yaml block
//! must be a valid scenario.

mod support;

use isotest::scenario::Scenario;
use libtest_mimic::{Arguments, Failed, Trial};
use std::path::Path;
use std::process::Command;

/// README commands not run here, and why.
const SKIPPED: &[(&str, &str)] = &[
    ("ci/demo", "installs packages and boots every trial"),
    (
        "ci/test",
        "installs packages and runs the whole suite, boots included",
    ),
    (
        "cargo run -p isotest -- run",
        "boots every trial of scenarios/*.yaml",
    ),
    (
        "cargo run -p isotest -- run --flake fixtures/flake --iso rescue",
        "boots (tests/cli.rs runs it)",
    ),
    (
        "cargo run -p isotest -- run scenarios/rescue.yaml --image last-month.iso",
        "an ISO of the reader's own, and a boot",
    ),
    (
        "cargo run -p isotest -- run scenarios/rescue.yaml --baseline last-month.iso",
        "an ISO of the reader's own, and boots (tests/compare.rs runs --baseline)",
    ),
    (
        "cargo run -p isotest -- console --image rescue.iso --firmware bios",
        "an ISO of the reader's own, and a terminal (tests/local.rs runs it)",
    ),
    (
        "cargo run -p isotest -- console scenarios/rescue.yaml --arch x86_64 --firmware uefi",
        "boots, and needs a terminal",
    ),
    (
        "cargo run -p isotest -- run scenarios/rescue.yaml --keep-on-failure",
        "boots every rescue trial (tests/local.rs keeps a failed one)",
    ),
];

/// How the README spells the binary.
const CARGO_RUN: &str = "cargo run -p isotest --";

/// One command of the README: the line without its comment, and the status its
/// comment promises.
struct Example {
    command: String,
    exits: i32,
}

fn main() {
    let readme = std::fs::read_to_string(support::repo().join("README.md")).expect("README.md");
    let examples = examples(&readme);
    let mut tests: Vec<Trial> = examples
        .iter()
        .map(|example| {
            let command = example.command.clone();
            let exits = example.exits;
            match SKIPPED.iter().find(|(c, _)| *c == command) {
                // Even with --include-ignored it does not run (ci/test would run
                // itself): it fails, saying why it is skipped.
                Some((_, why)) => Trial::test(command, move || {
                    Err(format!("not run by this test: {why}").into())
                })
                .with_ignored_flag(true),
                None => Trial::test(command.clone(), move || run(&command, exits)),
            }
        })
        .collect();
    let listed: Vec<String> = examples.iter().map(|e| e.command.clone()).collect();
    tests.push(Trial::test(
        "skipped commands are all in the README",
        move || {
            let stale: Vec<&str> = SKIPPED
                .iter()
                .map(|(c, _)| *c)
                .filter(|c| !listed.iter().any(|l| l == c))
                .collect();
            if stale.is_empty() {
                Ok(())
            } else {
                Err(format!("skipped, but not in README.md any more: {stale:?}").into())
            }
        },
    ));
    for (i, yaml) in blocks(&readme, "yaml").into_iter().enumerate() {
        tests.push(Trial::test(
            format!("yaml example {} is a valid scenario", i + 1),
            move || {
                // Parsed, not loaded: the example's files (old/rescue.iso, /opt/OVMF_*) are illustrations.
                Scenario::parse(Path::new("scenarios/example.yaml"), &yaml)
                    .map(drop)
                    .map_err(|e| e.to_string().into())
            },
        ));
    }
    libtest_mimic::run(&Arguments::from_args(), tests).exit();
}

/// The lines of every block fenced as ```LANG, block by block.
fn blocks(readme: &str, lang: &str) -> Vec<String> {
    let mut out = Vec::new();
    // Inside a fenced block: `Some(text)` when it is one of LANG.
    let mut inside: Option<Option<String>> = None;
    for line in readme.lines() {
        let fence = line.trim_start();
        if fence.starts_with("```") {
            inside = match inside.take() {
                Some(block) => {
                    out.extend(block);
                    None
                }
                None => Some((fence == format!("```{lang}")).then(String::new)),
            };
            continue;
        }
        if let Some(Some(block)) = inside.as_mut() {
            block.push_str(line);
            block.push('\n');
        }
    }
    out
}

/// The commands of every ```sh block, in order.
fn examples(readme: &str) -> Vec<Example> {
    let mut out = Vec::new();
    for line in blocks(readme, "sh").iter().flat_map(|b| b.lines()) {
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let (command, comment) = split_comment(line);
        out.push(Example {
            command: command.to_owned(),
            exits: promised_status(comment),
        });
    }
    out
}

/// A shell comment starts with `#` after whitespace.
fn split_comment(line: &str) -> (&str, &str) {
    let at = line
        .char_indices()
        .find(|&(i, c)| c == '#' && line[..i].ends_with(char::is_whitespace))
        .map(|(i, _)| i);
    match at {
        Some(i) => (line[..i].trim(), line[i + 1..].trim()),
        None => (line.trim(), ""),
    }
}

/// `exits 2: why` → 2; any other comment → 0.
fn promised_status(comment: &str) -> i32 {
    comment
        .strip_prefix("exits ")
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Runs the command with `sh` from the repository's root, as pasted, the binary
/// in place of `cargo run`, without the caller's ISOTEST_* settings (a reader's
/// shell has none).
fn run(command: &str, exits: i32) -> Result<(), Failed> {
    let bin = support::isotest_bin();
    let line = match command.strip_prefix(CARGO_RUN) {
        Some(rest) => format!("'{}'{rest}", bin.display()),
        None => command.to_owned(),
    };
    let mut sh = Command::new("sh");
    sh.arg("-c")
        .arg(&line)
        .current_dir(support::repo())
        .env("NIX_CONFIG", support::nix_config());
    for (name, _) in
        std::env::vars_os().filter(|(n, _)| n.to_string_lossy().starts_with("ISOTEST_"))
    {
        sh.env_remove(name);
    }
    let out = sh.output()?;
    let status = out.status.code().unwrap_or(-1);
    if status == exits {
        return Ok(());
    }
    Err(format!(
        "`{command}` exited {status}, the README says {exits}\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
    .into())
}
