//! The commands of README.md and of the book (docs/src/*.md), run as a user
//! pastes them: every line of their ```sh blocks, from the repository's root,
//! with `cargo run -p isotest --` standing for the built binary. Commands that
//! boot or install are skipped, each by name and with why (shown as ignored); a
//! command a page gains runs unless it is added to that list, and a skip whose
//! command left every page fails.
//!
//! A command exits 0 unless its comment says `# exits N`; after `# exits 2:`
//! (a usage error, said before anything runs) comes what it says on stderr,
//! `...` standing for what varies. Every ```yaml block
//! must be a valid scenario, every page of the book is in its SUMMARY.md, and
//! every relative link leads to a file that exists.

mod support;

use isotest::scenario::Scenario;
use libtest_mimic::{Arguments, Failed, Trial};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Commands of the README and the book not run here, and why.
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

/// How the pages spell the binary.
const CARGO_RUN: &str = "cargo run -p isotest --";

/// One command of a page: the line without its comment, the status its
/// comment promises, and for a usage error what it says.
struct Example {
    command: String,
    exits: i32,
    says: Option<String>,
}

fn main() {
    let pages = pages();
    let mut tests = Vec::new();
    let mut listed = Vec::new();
    for (page, text) in &pages {
        for example in examples(text) {
            listed.push(example.command.clone());
            tests.push(command_test(page, example));
        }
        for (i, yaml) in blocks(text, "yaml").into_iter().enumerate() {
            tests.push(Trial::test(
                format!("{page}: yaml example {} is a valid scenario", i + 1),
                move || {
                    // Parsed, not loaded: the example's files (old/rescue.iso, /opt/OVMF_*) are illustrations.
                    Scenario::parse(Path::new("scenarios/example.yaml"), &yaml)
                        .map(drop)
                        .map_err(|e| e.to_string().into())
                },
            ));
        }
    }
    tests.push(Trial::test(
        "skipped commands are all in the README or the book",
        move || {
            let stale: Vec<&str> = SKIPPED
                .iter()
                .map(|(c, _)| *c)
                .filter(|c| !listed.iter().any(|l| l == c))
                .collect();
            if stale.is_empty() {
                Ok(())
            } else {
                Err(format!("skipped, but in no page any more: {stale:?}").into())
            }
        },
    ));
    let linked = pages.clone();
    tests.push(Trial::test(
        "every page of the book is in SUMMARY.md",
        move || summary_lists_every_page(&pages),
    ));
    tests.push(Trial::test(
        "every relative link leads to a file",
        move || broken_links(&linked),
    ));
    libtest_mimic::run(&Arguments::from_args(), tests).exit();
}

/// The book's sources, under docs/src.
const BOOK: &str = "docs/src";

/// README.md, then the book's pages in name order, each as (path, text).
fn pages() -> Vec<(String, String)> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(support::repo().join(BOOK))
        .expect("docs/src")
        .map(|entry| entry.expect("docs/src entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .collect();
    paths.sort();
    std::iter::once(support::repo().join("README.md"))
        .chain(paths)
        .map(|path| {
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let name = path.strip_prefix(support::repo()).unwrap_or(&path);
            (name.display().to_string(), text)
        })
        .collect()
}

/// The test of one command: run, or shown as ignored with why it is skipped.
fn command_test(page: &str, example: Example) -> Trial {
    let name = format!("{page}: {}", example.command);
    match SKIPPED.iter().find(|(c, _)| *c == example.command) {
        // Even with --include-ignored it does not run (ci/test would run
        // itself): it fails, saying why it is skipped.
        Some((_, why)) => Trial::test(name, move || {
            Err(format!("not run by this test: {why}").into())
        })
        .with_ignored_flag(true),
        None => {
            let page = page.to_owned();
            Trial::test(name, move || run(&page, &example))
        }
    }
}

/// mdBook renders only the pages SUMMARY.md links to: a page missing there
/// would be in the repository and nowhere in the book.
fn summary_lists_every_page(pages: &[(String, String)]) -> Result<(), Failed> {
    let summary_path = format!("{BOOK}/SUMMARY.md");
    let summary = &pages
        .iter()
        .find(|(path, _)| *path == summary_path)
        .ok_or("docs/src/SUMMARY.md is missing")?
        .1;
    let unlisted: Vec<&str> = pages
        .iter()
        .filter_map(|(path, _)| path.strip_prefix(&format!("{BOOK}/")))
        .filter(|page| *page != "SUMMARY.md" && !summary.contains(&format!("]({page})")))
        .collect();
    if unlisted.is_empty() {
        Ok(())
    } else {
        Err(format!("pages not in docs/src/SUMMARY.md: {unlisted:?}").into())
    }
}

/// Links of the form `](target)` whose target is a path, not a URL or an
/// anchor on the same page, that names no file beside the page.
fn broken_links(pages: &[(String, String)]) -> Result<(), Failed> {
    let mut broken = Vec::new();
    for (page, text) in pages {
        let dir = support::repo().join(page);
        let dir = dir.parent().expect("a page is in a directory");
        for target in text
            .split("](")
            .skip(1)
            .filter_map(|rest| rest.split(')').next())
        {
            let path = target.split('#').next().unwrap_or_default();
            if path.is_empty() || path.contains("://") {
                continue;
            }
            if !dir.join(path).exists() {
                broken.push(format!("{page}: {target}"));
            } else if page.starts_with("docs/src/")
                && path.ends_with(".md")
                && !in_book(&dir.join(path))
            {
                // mdBook makes every .md link a link to its .html page, which exists for the book's own pages only.
                broken.push(format!("{page}: {target} (outside the book)"));
            }
        }
    }
    if broken.is_empty() {
        Ok(())
    } else {
        Err(format!("links to nothing: {broken:?}").into())
    }
}

/// Whether a file is one of the book's pages (under docs/src).
fn in_book(path: &std::path::Path) -> bool {
    let book = support::repo()
        .join("docs/src")
        .canonicalize()
        .expect("docs/src exists");
    path.canonicalize().is_ok_and(|p| p.starts_with(book))
}

/// The lines of every block fenced as ```LANG, block by block.
fn blocks(page: &str, lang: &str) -> Vec<String> {
    let mut out = Vec::new();
    // Inside a fenced block: `Some(text)` when it is one of LANG.
    let mut inside: Option<Option<String>> = None;
    for line in page.lines() {
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
fn examples(page: &str) -> Vec<Example> {
    let mut out = Vec::new();
    for line in blocks(page, "sh").iter().flat_map(|b| b.lines()) {
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let (command, comment) = split_comment(line);
        let exits = promised_status(comment);
        out.push(Example {
            command: command.to_owned(),
            exits,
            says: comment
                .strip_prefix("exits 2:")
                .filter(|_| exits == 2)
                .map(|says| says.trim().to_owned()),
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
fn run(page: &str, example: &Example) -> Result<(), Failed> {
    let Example {
        command,
        exits,
        says,
    } = example;
    let exits = *exits;
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
    let stderr = String::from_utf8_lossy(&out.stderr);
    if status == exits && says.as_deref().is_none_or(|says| said(&stderr, says)) {
        return Ok(());
    }
    Err(format!(
        "`{command}` exited {status}, {page} says {exits}{}\nstdout:\n{}\nstderr:\n{stderr}",
        says.as_ref()
            .map(|s| format!(" and `{s}`"))
            .unwrap_or_default(),
        String::from_utf8_lossy(&out.stdout),
    )
    .into())
}

/// Whether `stderr` says `says`, its parts between `...` in order.
fn said(stderr: &str, says: &str) -> bool {
    let mut rest = stderr;
    for part in says.split("...").map(str::trim).filter(|p| !p.is_empty()) {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    true
}
