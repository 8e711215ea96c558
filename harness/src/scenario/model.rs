//! The scenario model: the YAML as written (`ScenarioFile`, strict serde types) and
//! the validated `Scenario` the rest of the harness uses.

use super::values::{parse_duration, parse_memory};
use super::ScenarioError;
use regex::Regex;
use serde::{de, Deserialize, Deserializer};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A guest CPU architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Arch {
    X86_64,
    Aarch64,
}

impl Arch {
    /// The architecture of the machine the harness runs on, if it is one we boot.
    pub fn host() -> Option<Arch> {
        match std::env::consts::ARCH {
            "x86_64" => Some(Arch::X86_64),
            "aarch64" => Some(Arch::Aarch64),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
        }
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the machine boots the ISO.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Firmware {
    Bios,
    Uefi,
}

impl Firmware {
    pub fn as_str(self) -> &'static str {
        match self {
            Firmware::Bios => "bios",
            Firmware::Uefi => "uefi",
        }
    }
}

impl fmt::Display for Firmware {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where the ISO comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageSource {
    /// An ISO host of the flake (`hosts/iso/<name>`), built by the harness.
    FlakeHost(String),
    /// A prebuilt ISO file.
    File(PathBuf),
}

/// Who the serial console logs in automatically, if anyone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Autologin {
    User(String),
    /// The scenario expects a `login:` prompt (`autologin: false`).
    Disabled,
}

/// What the scenario expects of the booted system. `None` means "not checked".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expect {
    pub hostname: Option<String>,
    pub autologin: Option<Autologin>,
}

/// How to get from the boot menu to a serial console.
#[derive(Debug, Clone)]
pub struct Boot {
    /// Picks the menu entry (label or menu text); `None`: the entry with a serial
    /// console, else the default entry with a serial console added.
    pub entry: Option<Regex>,
}

/// One step of the scenario's own script on the serial console.
#[derive(Debug, Clone)]
pub enum Step {
    /// Run a command in the autologin shell; its stdout must match `expect` (if
    /// given) and its exit status must be `exit`.
    Run { command: String, expect: Option<Regex>, exit: i32, timeout: Duration },
    /// Send raw bytes to the console.
    Send { bytes: Vec<u8> },
    /// Wait for console output matching a regex.
    Expect { pattern: Regex, timeout: Duration },
}

/// A validated scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    pub path: PathBuf,
    pub image: ImageSource,
    pub arch: Vec<Arch>,
    pub firmware: Vec<Firmware>,
    pub memory_mib: u64,
    /// The whole trial, boot included; every wait inside has its own smaller timeout.
    pub timeout: Duration,
    pub boot: Boot,
    pub expect: Expect,
    pub steps: Vec<Step>,
}

pub const DEFAULT_MEMORY_MIB: u64 = 1024;
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);
const DEFAULT_STEP_TIMEOUT: Duration = Duration::from_secs(30);

// ---- the file as written -------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ScenarioFile {
    iso: Option<String>,
    image: Option<PathBuf>,
    #[serde(default, deserialize_with = "one_or_many")]
    arch: Vec<Arch>,
    #[serde(default, deserialize_with = "one_or_many")]
    firmware: Vec<Firmware>,
    #[serde(default, deserialize_with = "memory")]
    memory: Option<u64>,
    #[serde(default, deserialize_with = "duration")]
    timeout: Option<Duration>,
    #[serde(default)]
    boot: BootFile,
    #[serde(default)]
    expect: ExpectFile,
    #[serde(default)]
    steps: Vec<StepFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct BootFile {
    #[serde(default, deserialize_with = "regex")]
    entry: Option<Regex>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectFile {
    hostname: Option<String>,
    #[serde(default, deserialize_with = "autologin")]
    autologin: Option<Autologin>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StepFile {
    run: Option<String>,
    send: Option<String>,
    #[serde(default, deserialize_with = "regex")]
    expect: Option<Regex>,
    exit: Option<i32>,
    #[serde(default, deserialize_with = "duration")]
    timeout: Option<Duration>,
}

/// Parses a scalar inside the deserializer (not after it), so that the parser
/// attaches the line, column and field path to the error.
fn scalar<'de, D, T>(d: D, expecting: &'static str, parse: fn(&str) -> Result<T, String>) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    struct V<T>(&'static str, fn(&str) -> Result<T, String>);
    impl<'de, T> de::Visitor<'de> for V<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str(self.0)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
            (self.1)(v).map_err(E::custom)
        }
    }
    d.deserialize_str(V(expecting, parse))
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    scalar(d, "a duration such as `90s` or `5m`", parse_duration).map(Some)
}

fn memory<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    scalar(d, "a memory size such as `1G`", parse_memory).map(Some)
}

fn regex<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Regex>, D::Error> {
    scalar(d, "a regular expression", |t| Regex::new(t).map_err(|e| format!("invalid regex: {e}"))).map(Some)
}

/// `autologin: root` names the user; `autologin: false` expects a login prompt.
fn autologin<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Autologin>, D::Error> {
    struct V;
    impl<'de> de::Visitor<'de> for V {
        type Value = Autologin;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a user name, or `false` for a login prompt")
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<Autologin, E> {
            match v {
                false => Ok(Autologin::Disabled),
                true => Err(E::custom("name the user (e.g. `autologin: root`) or write `false`")),
            }
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Autologin, E> {
            Ok(Autologin::User(v.to_owned()))
        }
    }
    d.deserialize_any(V).map(Some)
}

/// `arch: x86_64` and `arch: [x86_64, aarch64]` both work.
fn one_or_many<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: std::str::FromStr<Err = String>,
{
    struct V<T>(std::marker::PhantomData<T>);
    impl<'de, T: std::str::FromStr<Err = String>> de::Visitor<'de> for V<T> {
        type Value = Vec<T>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a name or a list of names")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Vec<T>, E> {
            v.parse().map(|t| vec![t]).map_err(E::custom)
        }
        fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            let mut out = Vec::new();
            while let Some(name) = seq.next_element::<String>()? {
                out.push(name.parse().map_err(de::Error::custom)?);
            }
            Ok(out)
        }
    }
    d.deserialize_any(V(std::marker::PhantomData))
}

impl std::str::FromStr for Arch {
    type Err = String;
    fn from_str(s: &str) -> Result<Arch, String> {
        match s {
            "x86_64" => Ok(Arch::X86_64),
            "aarch64" => Ok(Arch::Aarch64),
            _ => Err(format!("unknown architecture `{s}` (known: x86_64, aarch64)")),
        }
    }
}

impl std::str::FromStr for Firmware {
    type Err = String;
    fn from_str(s: &str) -> Result<Firmware, String> {
        match s {
            "bios" => Ok(Firmware::Bios),
            "uefi" => Ok(Firmware::Uefi),
            _ => Err(format!("unknown firmware `{s}` (known: bios, uefi)")),
        }
    }
}

impl ScenarioFile {
    pub(super) fn into_scenario(self, name: String, path: &Path, base: &Path) -> Result<Scenario, ScenarioError> {
        let invalid = |field: &str, message: String| ScenarioError::Invalid {
            path: path.to_owned(),
            field: field.to_owned(),
            message,
        };
        let image = match (self.iso, self.image) {
            (Some(host), None) => ImageSource::FlakeHost(host),
            (None, Some(file)) => ImageSource::File(base.join(file)),
            (Some(_), Some(_)) => {
                return Err(invalid("iso", "give either `iso:` (a flake host) or `image:` (an ISO file), not both".into()))
            }
            (None, None) => {
                return Err(invalid("iso", "missing: give `iso:` (a flake host) or `image:` (an ISO file)".into()))
            }
        };
        let mut arch = self.arch;
        if arch.is_empty() {
            arch.push(Arch::host().ok_or_else(|| invalid("arch", "the host is neither x86_64 nor aarch64; name one".into()))?);
        }
        let mut firmware = self.firmware;
        if firmware.is_empty() {
            firmware.push(Firmware::Bios);
        }
        let steps = self
            .steps
            .into_iter()
            .enumerate()
            .map(|(i, s)| s.into_step().map_err(|m| invalid(&format!("steps[{i}]"), m)))
            .collect::<Result<_, _>>()?;
        Ok(Scenario {
            name,
            path: path.to_owned(),
            image,
            arch,
            firmware,
            memory_mib: self.memory.unwrap_or(DEFAULT_MEMORY_MIB),
            timeout: self.timeout.unwrap_or(DEFAULT_TIMEOUT),
            boot: Boot { entry: self.boot.entry },
            expect: Expect { hostname: self.expect.hostname, autologin: self.expect.autologin },
            steps,
        })
    }
}

impl StepFile {
    fn into_step(self) -> Result<Step, String> {
        let timeout = self.timeout.unwrap_or(DEFAULT_STEP_TIMEOUT);
        match (self.run, self.send, self.expect) {
            (Some(command), None, expect) => Ok(Step::Run { command, expect, exit: self.exit.unwrap_or(0), timeout }),
            (None, Some(text), None) if self.exit.is_none() => Ok(Step::Send { bytes: unescape(&text)? }),
            (None, None, Some(pattern)) if self.exit.is_none() => Ok(Step::Expect { pattern, timeout }),
            _ => Err("a step is one of `run:` (with optional `expect:`, `exit:`), `send:`, or `expect:`".into()),
        }
    }
}

/// Turns `\x03`, `\r`, `\n`, `\t`, `\e` and `\\` in a `send:` string into bytes.
fn unescape(text: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            let mut buf = [0; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        match chars.next() {
            Some('r') => out.push(b'\r'),
            Some('n') => out.push(b'\n'),
            Some('t') => out.push(b'\t'),
            Some('e') => out.push(0x1b),
            Some('\\') => out.push(b'\\'),
            Some('x') => {
                let hex: String = chars.by_ref().take(2).collect();
                let byte = u8::from_str_radix(&hex, 16).map_err(|_| format!("send: bad escape `\\x{hex}`"))?;
                out.push(byte);
            }
            other => return Err(format!("send: unknown escape `\\{}`", other.map(String::from).unwrap_or_default())),
        }
    }
    Ok(out)
}
