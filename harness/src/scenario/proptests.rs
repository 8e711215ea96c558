//! Property tests of scenario parsing: any YAML, built from the scenario's own
//! fields with values of the right and the wrong type, out of range, under
//! unknown keys, and any bytes at all, give a scenario or an error that names
//! the file (and the line and column where the parser locates it); never a panic.
//!
//! Each property runs `cases(n)` generated cases (PROPTEST_CASES overrides it).

use super::{Scenario, ScenarioError};
use proptest::prelude::*;
use proptest::test_runner::Config;
use serde_yaml_ng::{Mapping, Number, Value};
use std::path::Path;

/// `n` cases per property, unless PROPTEST_CASES says otherwise; no files of
/// failing cases are written (a failure becomes a unit test instead).
fn cases(n: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(n);
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

const PATH: &str = "scenarios/demo.yaml";

/// The result is a scenario, or an error naming the file; a located error's
/// line and column are inside the text (or just past its end).
fn check(text: &str, result: Result<Scenario, ScenarioError>) -> Result<(), TestCaseError> {
    let Err(e) = result else { return Ok(()) };
    let message = e.to_string();
    prop_assert!(message.starts_with(PATH), "{message}");
    if let ScenarioError::Syntax { line, column, .. } = e {
        let lines = text.lines().count().max(1);
        prop_assert!(
            line >= 1 && line <= lines + 1,
            "line {line} of {lines}: {message}"
        );
        prop_assert!(column >= 1, "{message}");
    }
    Ok(())
}

fn string(s: &str) -> Value {
    Value::String(s.to_owned())
}

/// A YAML scalar of any type, odd ones included.
fn any_scalar() -> BoxedStrategy<Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| Value::Number(n.into())),
        any::<u64>().prop_map(|n| Value::Number(n.into())),
        prop_oneof![
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(-0.0),
            any::<f64>()
        ]
        .prop_map(|f| Value::Number(Number::from(f))),
        any::<String>().prop_map(Value::String),
        "[a-z0-9_ .:/-]{0,12}".prop_map(Value::String),
    ]
    .boxed()
}

/// A value of the wrong type for most fields: a scalar, a list or a mapping.
fn wrong() -> BoxedStrategy<Value> {
    prop_oneof![
        3 => any_scalar(),
        1 => proptest::collection::vec(any_scalar(), 0..3).prop_map(Value::Sequence),
        1 => proptest::collection::vec(("[a-z]{1,6}", any_scalar()), 0..3)
            .prop_map(|kv| Value::Mapping(kv.into_iter().map(|(k, v)| (string(&k), v)).collect())),
    ]
    .boxed()
}

/// Mostly a right value, sometimes a wrong one (rarely enough that later
/// fields get checked too).
fn field(right: BoxedStrategy<Value>) -> BoxedStrategy<Value> {
    prop_oneof![12 => right, 1 => wrong()].boxed()
}

/// A string from `choices` (right and wrong values of the field).
fn one_of(choices: &'static [&'static str]) -> BoxedStrategy<Value> {
    prop::sample::select(choices).prop_map(string).boxed()
}

fn int(range: std::ops::RangeInclusive<i64>) -> BoxedStrategy<Value> {
    prop_oneof![
        range.prop_map(|n| Value::Number(n.into())),
        any::<i64>().prop_map(|n| Value::Number(n.into()))
    ]
    .boxed()
}

fn list(item: BoxedStrategy<Value>) -> BoxedStrategy<Value> {
    proptest::collection::vec(item, 0..4)
        .prop_map(Value::Sequence)
        .boxed()
}

/// A mapping with some of `fields` (each right or wrong) and maybe a key that
/// is not the scenario's.
fn mapping(fields: Vec<(&'static str, BoxedStrategy<Value>)>) -> BoxedStrategy<Value> {
    let present: Vec<BoxedStrategy<Option<(Value, Value)>>> = fields
        .into_iter()
        .map(|(key, value)| {
            proptest::option::of(field(value))
                .prop_map(move |v| v.map(|v| (string(key), v)))
                .boxed()
        })
        .collect();
    let unknown = proptest::option::weighted(0.1, ("[a-z_]{1,10}", any_scalar()));
    (present, unknown)
        .prop_map(|(present, unknown)| {
            let mut map: Mapping = present.into_iter().flatten().collect();
            if let Some((key, value)) = unknown {
                map.insert(string(&key), value);
            }
            Value::Mapping(map)
        })
        .boxed()
}

const DURATIONS: &[&str] = &[
    "90s",
    "5m",
    "1m 30s",
    "0s",
    "25h",
    "24h",
    "90",
    "5 minutes please",
    "",
    "99999999999999999999999s",
    "1ns",
];
/// 65 characters: one more than Linux allows.
const TOO_LONG_HOSTNAME: &str = "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklm";
const NAMES: &[&str] = &[
    "rescue", "minimal", "a b", "-x", "", "root", "nixos", "x.y+z@w", "ü",
];

fn step() -> BoxedStrategy<Value> {
    mapping(vec![
        ("run", one_of(&["true", "uname -m", "exit 3", ""])),
        (
            "send",
            one_of(&[
                "\\x03", "\\r\\n", "\\e[A", "\\x", "\\xZ", "\\x+f", "\\q", "\\", "plain", "\\xé",
            ]),
        ),
        (
            "expect",
            one_of(&["^x86_64$", "login:", "(", "[", "a{99999999}", ""]),
        ),
        ("exit", int(0..=255)),
        ("timeout", one_of(DURATIONS)),
    ])
}

fn sshd() -> BoxedStrategy<Value> {
    let login = prop_oneof![
        one_of(NAMES),
        mapping(vec![
            ("user", one_of(NAMES)),
            ("password_env", one_of(&["PW", "1X", "", "A_B", "a-b"]))
        ]),
    ]
    .boxed();
    mapping(vec![
        ("running", any::<bool>().prop_map(Value::Bool).boxed()),
        ("ports", list(int(1..=65535))),
        (
            "permit_root_login",
            prop_oneof![
                one_of(&[
                    "yes",
                    "no",
                    "prohibit-password",
                    "without-password",
                    "maybe"
                ]),
                any::<bool>().prop_map(Value::Bool)
            ]
            .boxed(),
        ),
        (
            "password_authentication",
            any::<bool>().prop_map(Value::Bool).boxed(),
        ),
        ("login", list(login)),
        ("host_keys", list(one_of(&["SHA256:abc", "MD5:x", ""]))),
    ])
}

/// A `packages:` entry: a program name, or `{ package:, program: }`.
fn package() -> BoxedStrategy<Value> {
    prop_oneof![
        one_of(NAMES),
        mapping(vec![("package", one_of(NAMES)), ("program", one_of(NAMES))])
    ]
    .boxed()
}

fn user() -> BoxedStrategy<Value> {
    let home_manager = prop_oneof![
        any::<bool>().prop_map(Value::Bool),
        mapping(vec![
            ("packages", list(package())),
            ("files", list(one_of(&[".bashrc", "../x", ""])))
        ]),
    ]
    .boxed();
    mapping(vec![
        (
            "shell",
            one_of(&["bash", "/run/current-system/sw/bin/zsh", ""]),
        ),
        ("home", one_of(&["/root", "/home/nixos", ""])),
        ("groups", list(one_of(&["wheel", "", "a b"]))),
        ("sudo", one_of(&["nopasswd", "yes"])),
        ("home_manager", home_manager),
    ])
}

fn named<F: Fn() -> BoxedStrategy<Value>>(
    keys: &'static [&'static str],
    value: F,
) -> BoxedStrategy<Value> {
    proptest::collection::vec((prop::sample::select(keys), value()), 0..3)
        .prop_map(|kv| Value::Mapping(kv.into_iter().map(|(k, v)| (string(k), v)).collect()))
        .boxed()
}

/// A scenario document built from the scenario's fields.
fn document() -> BoxedStrategy<Value> {
    let arch = || {
        one_of(&[
            "x86_64", "x86_64", "aarch64", "aarch64", "aarch64", "riscv64",
        ])
    };
    let firmware = || one_of(&["bios", "uefi", "uefi", "uefi", "coreboot"]);
    let uefi_files = || {
        mapping(vec![
            ("code", one_of(&["a.fd", "/b.fd", ""])),
            ("vars", one_of(&["v.fd", ""])),
        ])
    };
    let number = || {
        prop_oneof![
            (-10.0f64..4000.0).prop_map(|f| Value::Number(Number::from(f))),
            prop_oneof![Just(f64::NAN), Just(f64::INFINITY), Just(0.0), Just(-1.0)]
                .prop_map(|f| Value::Number(Number::from(f))),
            int(0..=3600),
        ]
        .boxed()
    };
    mapping(vec![
        ("iso", one_of(NAMES)),
        (
            "flake",
            one_of(&[
                "path:../fixtures/flake",
                "github:o/r?dir=x",
                "nixpkgs",
                "./x",
                "path:",
                "git+file:///nonexistent",
            ]),
        ),
        ("image", one_of(&["out/rescue.iso", "/abs.iso", ""])),
        ("images", list(one_of(&["a.iso", "b.iso"]))),
        ("arch", prop_oneof![arch(), list(arch())].boxed()),
        (
            "firmware",
            prop_oneof![firmware(), list(firmware())].boxed(),
        ),
        ("uefi", named(&["x86_64", "aarch64", "riscv64"], uefi_files)),
        (
            "memory",
            one_of(&[
                "1G",
                "512M",
                "2GiB",
                "127M",
                "1T",
                "2T",
                "0M",
                "-1G",
                "99999999999999999999T",
                "18446744073709551615T",
                "12",
                "G",
            ]),
        ),
        ("accel", one_of(&["auto", "kvm", "tcg", "hvf"])),
        ("timeout", one_of(DURATIONS)),
        ("baseline", one_of(&["old.iso", ""])),
        (
            "max_slowdown",
            mapping(vec![("fraction", number()), ("seconds", number())]),
        ),
        (
            "boot",
            mapping(vec![("entry", one_of(&["serial", "(", "x{2,1}", ""]))]),
        ),
        (
            "expect",
            mapping(vec![
                (
                    "hostname",
                    one_of(&["rescue", "a..b", "-x", "x_y", "a.b-c", TOO_LONG_HOSTNAME]),
                ),
                (
                    "autologin",
                    prop_oneof![one_of(NAMES), any::<bool>().prop_map(Value::Bool)].boxed(),
                ),
                ("sshd", sshd()),
                ("users", named(NAMES, user)),
            ]),
        ),
        ("steps", list(step())),
    ])
}

/// YAML text: a generated document, sometimes cut, spliced or with a line
/// repeated (a duplicate key); or YAML's own corners.
fn text() -> BoxedStrategy<String> {
    let rendered = document().prop_map(|d| serde_yaml_ng::to_string(&d).expect("a value renders"));
    let edited = (
        rendered.clone(),
        any::<usize>(),
        any::<usize>(),
        "[\\PC\n\t:{}\\[\\]&*!|>'\"#-]{0,3}",
    )
        .prop_map(|(text, at, len, insert)| {
            let chars: Vec<char> = text.chars().collect();
            let at = at % (chars.len() + 1);
            let end = (at + len % 8).min(chars.len());
            chars[..at]
                .iter()
                .chain(insert.chars().collect::<Vec<_>>().iter())
                .chain(&chars[end..])
                .collect()
        });
    let repeated = (rendered.clone(), any::<usize>()).prop_map(|(text, at)| {
        let lines: Vec<&str> = text.lines().collect();
        let at = at % lines.len().max(1);
        lines
            .iter()
            .take(at + 1)
            .chain(lines.get(at))
            .chain(lines.iter().skip(at + 1))
            .copied()
            .collect::<Vec<_>>()
            .join("\n")
    });
    let corners = prop_oneof![
        (1usize..3000).prop_map(|n| format!("iso: {}{}", "[".repeat(n), "]".repeat(n))),
        (1usize..3000).prop_map(|n| format!("iso: rescue\nexpect: {}", "{a: ".repeat(n))),
        Just(
            "a: &a [x, x]\nb: &b [*a, *a, *a, *a]\nc: &c [*b, *b, *b, *b]\nd: [*c, *c, *c, *c]\n"
                .to_owned()
        ),
        Just("iso: rescue\n---\niso: minimal\n".to_owned()),
        Just("!!binary aGVsbG8=".to_owned()),
        Just("iso: !custom rescue\n".to_owned()),
        Just("? [complex, key]\n: value\n".to_owned()),
        Just("iso: *undefined\n".to_owned()),
        Just("\u{feff}iso: rescue\n".to_owned()),
        Just(String::new()),
    ];
    prop_oneof![4 => rendered, 3 => edited, 1 => repeated, 1 => corners].boxed()
}

proptest! {
    #![proptest_config(cases(256))]

    /// Any YAML built from the scenario's fields: a scenario or a located error.
    #[test]
    fn any_yaml_gives_a_scenario_or_an_error(text in text()) {
        check(&text, Scenario::parse(Path::new(PATH), &text))?;
    }

    /// Any text at all.
    #[test]
    fn any_text_gives_a_scenario_or_an_error(text in any::<String>()) {
        check(&text, Scenario::parse(Path::new(PATH), &text))?;
    }

    /// Any bytes in a file: invalid UTF-8 is an error reading it, the rest as text.
    #[test]
    fn any_bytes_in_a_file(bytes in prop_oneof![proptest::collection::vec(any::<u8>(), 0..200),
                                                text().prop_map(|t| t.into_bytes()).prop_flat_map(|b| {
                                                    let n = b.len();
                                                    (Just(b), 0..=n, any::<u8>())
                                                }).prop_map(|(mut b, at, byte)| { b.insert(at, byte); b })]) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("demo.yaml");
        std::fs::write(&path, &bytes).unwrap();
        let result = Scenario::load(&path);
        match (&result, std::str::from_utf8(&bytes)) {
            (Err(ScenarioError::Read { .. }), Ok(_)) => prop_assert!(false, "valid UTF-8 refused as unreadable: {result:?}"),
            (Ok(_), Err(_)) => prop_assert!(false, "invalid UTF-8 accepted"),
            _ => {}
        }
        if let Err(e) = result {
            prop_assert!(e.to_string().starts_with(&path.display().to_string()), "{e}");
        }
    }
}

/// A scenario of valid values only, as YAML, and what it must parse to.
#[derive(Debug, Clone)]
struct Valid {
    iso: String,
    arch: Vec<&'static str>,
    /// As written, and in MiB.
    memory: (String, u64),
    /// As written, and in seconds.
    timeout: (&'static str, u64),
    accel: &'static str,
    hostname: String,
    exits: Vec<u8>,
}

fn valid() -> impl Strategy<Value = Valid> {
    let memory = prop_oneof![
        (128u64..=1_048_576).prop_map(|n| (format!("{n}M"), n)),
        (1u64..=1024).prop_map(|n| (format!("{n}G"), n * 1024)),
        (1u64..=1024).prop_map(|n| (format!("{n}GiB"), n * 1024)),
        Just(("1T".to_owned(), 1_048_576)),
    ];
    let timeout = prop::sample::select(
        &[
            ("90s", 90),
            ("5m", 300),
            ("1m 30s", 90),
            ("24h", 86_400),
            ("1s", 1),
        ][..],
    );
    let arch = prop::sample::subsequence(&["x86_64", "aarch64"][..], 1..=2);
    let hostname = "[a-z0-9]([a-z0-9_-]{0,10}[a-z0-9])?(\\.[a-z0-9]{1,8}){0,2}";
    (
        "[a-z0-9][a-z0-9._+@-]{0,12}",
        arch,
        memory,
        timeout,
        prop::sample::select(&["auto", "kvm", "tcg"][..]),
        hostname,
        proptest::collection::vec(any::<u8>(), 0..4),
    )
        .prop_map(
            |(iso, arch, memory, timeout, accel, hostname, exits)| Valid {
                iso,
                arch,
                memory,
                timeout,
                accel,
                hostname,
                exits,
            },
        )
}

impl Valid {
    fn text(&self) -> String {
        let steps: String = self
            .exits
            .iter()
            .map(|e| format!("  - run: exit {e}\n    exit: {e}\n"))
            .collect();
        format!(
            "iso: {}\narch: [{}]\nmemory: {}\ntimeout: {}\naccel: {}\nexpect:\n  hostname: {}\nsteps:\n{steps}",
            self.iso,
            self.arch.join(", "),
            self.memory.0,
            self.timeout.0,
            self.accel,
            self.hostname,
        )
    }
}

proptest! {
    #![proptest_config(cases(256))]

    /// A document of valid values is a scenario, with those values.
    #[test]
    fn valid_values_give_that_scenario(v in valid()) {
        let text = v.text();
        let s = Scenario::parse(Path::new(PATH), &text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert_eq!(s.source.host.as_deref(), Some(v.iso.as_str()));
        prop_assert_eq!(s.arch.iter().map(|a| a.as_str()).collect::<Vec<_>>(), v.arch);
        prop_assert_eq!(s.memory_mib, v.memory.1);
        prop_assert_eq!(s.timeout.as_secs(), v.timeout.1);
        prop_assert_eq!(s.accel.as_str(), v.accel);
        prop_assert_eq!(s.expect.hostname.as_deref(), Some(v.hostname.as_str()));
        let exits: Vec<i32> = s.steps.iter().map(|step| match step { super::Step::Run { exit, .. } => *exit, _ => -1 }).collect();
        prop_assert_eq!(exits, v.exits.iter().map(|&e| i32::from(e)).collect::<Vec<_>>());
    }
}
