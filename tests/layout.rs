//! The library's files import one way (docs/src/architecture.md): no file
//! imports a file that imports it, directly or through others. A path
//! `crate::a::b::Name` or `super::Name` counts as importing the file of the
//! longest module it names (`super::Name` from a child is its parent's
//! `mod.rs`, even when that only re-exports); `mod.rs` using a child by name
//! counts too. Test modules are left out: they may reach anywhere.

use regex::Regex;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

type Module = Vec<String>;

/// Every module of the tree under `src` with its source, keyed by its path
/// (`checks/mod.rs` and `checks.rs` are `["checks"]`, `lib.rs` is `[]`); not
/// those its parent declares for tests only (`#[cfg(test)] mod tests;`).
fn modules(src: &Path) -> BTreeMap<Module, (String, bool)> {
    let declared_for_tests =
        Regex::new(r"#\[cfg\(test\)\]\s*(?:pub(?:\([^)]*\))?\s+)?mod (\w+);").unwrap();
    let mut for_tests = Vec::new();
    let mut out = BTreeMap::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(src).unwrap().with_extension("");
            let mut module: Module = rel.iter().map(|p| p.to_string_lossy().into()).collect();
            let is_parent = matches!(module.last().map(String::as_str), Some("mod" | "lib"));
            if is_parent {
                module.pop();
            }
            if module == ["main"] {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            // A child's module path: a file's siblings share its parent module.
            let parent = if is_parent {
                module.clone()
            } else {
                module[..module.len() - 1].to_vec()
            };
            for m in declared_for_tests.captures_iter(&text) {
                for_tests.push([parent.clone(), vec![m[1].to_owned()]].concat());
            }
            out.insert(module, (without_tests(&text), is_parent));
        }
    }
    for module in for_tests {
        out.remove(&module);
    }
    out
}

/// The source without its test modules and comments: a `#[cfg(test)] mod x;`
/// line is dropped where it stands (the file goes on after it), a
/// `#[cfg(test)] mod x { ... }` ends the file's code (it comes last).
fn without_tests(text: &str) -> String {
    let declared = Regex::new(r"#\[cfg\(test\)\]\s*(pub(\([^)]*\))?\s+)?mod \w+;").unwrap();
    let inline = Regex::new(r"#\[cfg\(test\)\]\s*(pub(\([^)]*\))?\s+)?mod \w+\s*\{").unwrap();
    let text = declared.replace_all(text, "");
    let code = match inline.find(&text) {
        Some(m) => &text[..m.start()],
        None => &text,
    };
    code.lines()
        .map(|line| line.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The paths a `use` tree names, its groups spelt out:
/// `super::{a::B, c}` is `super::a::B` and `super::c`.
fn use_paths(tree: &str) -> Vec<String> {
    let tree: String = tree.chars().filter(|c| !c.is_whitespace()).collect();
    let Some(open) = tree.find('{') else {
        return vec![tree.trim_end_matches("::self").to_owned()];
    };
    let prefix = tree[..open].trim_end_matches("::");
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let (mut items, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&inner[start..]);
    items
        .into_iter()
        .filter(|item| !item.is_empty())
        .flat_map(use_paths)
        .map(|path| match path.as_str() {
            "self" => prefix.to_owned(),
            _ => format!("{prefix}::{path}"),
        })
        .collect()
}

/// Which modules each module's file imports.
fn imports(modules: &BTreeMap<Module, (String, bool)>) -> BTreeMap<Module, BTreeSet<Module>> {
    let uses = Regex::new(r"(?m)^\s*(?:pub(?:\([^)]*\))?\s+)?use\s+([^;]+);").unwrap();
    let renamed = Regex::new(r"\s+as\s+\w+").unwrap();
    let inline = Regex::new(r"\b(?:crate|super)(?:::\w+)+").unwrap();
    let longest = |path: &[String]| {
        (0..=path.len())
            .rev()
            .map(|n| path[..n].to_vec())
            .find(|m| modules.contains_key(m))
    };
    let mut graph = BTreeMap::new();
    for (module, (text, is_parent)) in modules {
        let mut paths: Vec<String> = Vec::new();
        for m in uses.captures_iter(text) {
            paths.extend(use_paths(&renamed.replace_all(&m[1], "")));
        }
        let bodies = uses.replace_all(text, "");
        paths.extend(inline.find_iter(&bodies).map(|m| m.as_str().to_owned()));
        let mut deps = BTreeSet::new();
        for path in paths {
            let mut parts = path.split("::").map(String::from);
            let mut target = match parts.next().as_deref() {
                Some("crate") => Vec::new(),
                // `super` from a parent's mod.rs is its own parent, as from any file.
                Some("super") => module[..module.len().saturating_sub(1)].to_vec(),
                // A child of a parent's mod.rs, used by name (`use launch::Launcher`).
                Some(child) if *is_parent => [module.clone(), vec![child.to_owned()]].concat(),
                _ => continue,
            };
            for part in parts {
                if part == "super" {
                    target.pop();
                } else {
                    target.push(part);
                }
            }
            if let Some(t) = longest(&target).filter(|t| t != module) {
                deps.insert(t);
            }
        }
        graph.insert(module.clone(), deps);
    }
    graph
}

/// The import circles: each is a list of modules, each importing the next and
/// the last the first.
fn circles(graph: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<Vec<Module>> {
    // A module is on a circle when it can reach itself; one path back is enough to show.
    let mut found: Vec<Vec<Module>> = Vec::new();
    for start in graph.keys() {
        if found.iter().any(|c| c.contains(start)) {
            continue;
        }
        let mut back: BTreeMap<&Module, &Module> = BTreeMap::new();
        let mut todo = vec![start];
        while let Some(m) = todo.pop() {
            for next in &graph[m] {
                if next == start {
                    let mut circle = vec![m.clone()];
                    while let Some(prev) = back.get(circle.last().unwrap()) {
                        circle.push((*prev).clone());
                    }
                    circle.reverse();
                    found.push(circle);
                    todo.clear();
                    break;
                }
                if !back.contains_key(next) && next != start {
                    back.insert(next, m);
                    todo.push(next);
                }
            }
        }
    }
    found
}

fn file_names(circle: &[Module]) -> String {
    circle
        .iter()
        .map(|m| {
            if m.is_empty() {
                "lib".into()
            } else {
                m.join("/")
            }
        })
        .collect::<Vec<_>>()
        .join(" → ")
}

#[test]
fn no_file_of_the_library_imports_a_file_that_imports_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("harness/src");
    let modules = modules(&src);
    assert!(modules.len() > 50, "the library's files were not found");
    let circles = circles(&imports(&modules));
    let said: Vec<String> = circles.iter().map(|c| file_names(c)).collect();
    assert!(said.is_empty(), "import circles:\n{}", said.join("\n"));
}

#[test]
fn a_child_that_imports_its_re_exporting_parent_is_a_circle() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    std::fs::create_dir(src.join("qemu")).unwrap();
    std::fs::write(src.join("lib.rs"), "pub mod qemu;\npub mod report;\n").unwrap();
    // The re-export after a test module's declaration still counts.
    std::fs::write(
        src.join("qemu/mod.rs"),
        "mod launch;\n#[cfg(test)]\nmod tests;\npub use launch::Launcher; // a comment\npub enum QemuError {}\n",
    )
    .unwrap();
    // A test module may import its parent: it is left out.
    std::fs::write(src.join("qemu/tests.rs"), "use super::launch::Launcher;\n").unwrap();
    std::fs::write(
        src.join("qemu/launch.rs"),
        "use super::{\n    error::X,\n    QemuError as E,\n};\n",
    )
    .unwrap();
    std::fs::write(
        src.join("report.rs"),
        "use crate::qemu::QemuError;\n#[cfg(test)]\nmod tests { use crate::report; }\n",
    )
    .unwrap();
    let graph = imports(&modules(src));
    let said: Vec<String> = circles(&graph).iter().map(|c| file_names(c)).collect();
    assert_eq!(said, ["qemu → qemu/launch"]);
    // The same tree, with the type in a file of its own: no circle.
    std::fs::write(
        src.join("qemu/mod.rs"),
        "mod error;\nmod launch;\npub use error::QemuError;\npub use launch::Launcher;\n",
    )
    .unwrap();
    std::fs::write(src.join("qemu/error.rs"), "pub enum QemuError {}\n").unwrap();
    std::fs::write(src.join("qemu/launch.rs"), "use super::error::QemuError;\n").unwrap();
    assert!(circles(&imports(&modules(src))).is_empty());
}
