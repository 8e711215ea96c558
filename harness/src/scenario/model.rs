//! The scenario model: the YAML as written (`ScenarioFile`, strict serde types) and
//! the validated `Scenario` the rest of the harness uses.

use super::values::{check_hostname, flake_reference, parse_duration, parse_memory};
use super::ScenarioError;
use crate::platform::{AccelChoice, Arch, Firmware};
use regex::Regex;
use serde::{de, Deserialize, Deserializer};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where a scenario's ISO and expectations come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// An ISO host of the flake (`iso: rescue` → `hosts/iso/rescue`): built by the
    /// harness unless `images` are given, and the origin of derived expectations.
    pub host: Option<String>,
    /// The flake, as `nix` takes it; a local path is made absolute. `None`: the
    /// default (`--flake`, `$ISOTEST_FLAKE`, else the nearest directory up from the
    /// scenario with a flake.nix), chosen when the scenario runs.
    pub flake: Option<String>,
    /// Prebuilt ISOs (`image:` or `images:`): one trial each.
    pub images: Vec<PathBuf>,
    /// Whether `images:` named them: then trial names end with the file's stem.
    pub image_list: bool,
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
    pub sshd: Option<Sshd>,
    /// Users by name, in name order.
    pub users: BTreeMap<String, User>,
}

/// The OpenSSH server, as `services.openssh` configures it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sshd {
    /// `false`: sshd must not run (`services.openssh.enable = false`); unset: it must.
    pub running: Option<bool>,
    /// Empty: port 22.
    pub ports: Vec<u16>,
    /// `yes`, `no`, `prohibit-password` or `forced-commands-only`.
    pub permit_root_login: Option<String>,
    pub password_authentication: Option<bool>,
    /// Real logins over SSH to try.
    pub login: Vec<SshLogin>,
    /// Host key fingerprints (`SHA256:...`) the server must offer one of; by
    /// default the ones the guest shows on its console.
    pub host_keys: Vec<String>,
}

impl Scenario {
    /// The UEFI firmware files the scenario names for `arch`: (code, vars).
    pub fn uefi_files(&self, arch: Arch) -> Option<(&Path, &Path)> {
        self.uefi
            .iter()
            .find(|(a, _, _)| *a == arch)
            .map(|(_, code, vars)| (code.as_path(), vars.as_path()))
    }
}

impl Sshd {
    pub fn must_run(&self) -> bool {
        self.running.unwrap_or(true)
    }
    /// The ports sshd must listen on.
    pub fn ports(&self) -> &[u16] {
        if self.ports.is_empty() {
            &[22]
        } else {
            &self.ports
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshLogin {
    pub user: String,
    /// Log in with the password in this environment variable; without it, with a
    /// throwaway key the harness installs through the console.
    pub password_env: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct User {
    /// A login shell: a full path, or a program name compared with the path's last part.
    pub shell: Option<String>,
    pub home: Option<String>,
    /// Groups the user must be in (others are allowed).
    pub groups: Vec<String>,
    /// `sudo -n true` must work for the user.
    pub sudo_nopasswd: bool,
    pub home_manager: Option<HomeManager>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HomeManager {
    /// Entries of `home.packages`: programs, and packages that must be installed.
    pub packages: Vec<Package>,
    /// Files that must exist, relative to the user's home.
    pub files: Vec<String>,
}

impl HomeManager {
    /// The programs that must resolve in the user's login shell.
    pub fn programs(&self) -> Vec<&str> {
        self.packages
            .iter()
            .filter_map(|p| p.program.as_deref())
            .collect()
    }

    /// The packages looked for in the generation's `home-path`.
    pub fn installed(&self) -> Vec<&Package> {
        self.packages
            .iter()
            .filter(|p| p.installed.is_some())
            .collect()
    }
}

/// One entry of Home Manager's `home.packages`. Fonts, man pages, themes and
/// libraries are packages without a program: they are found by what the
/// generation links to, never on PATH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    /// What messages call it: nixpkgs' `pname` (else the name without its
    /// version), or the name written in the scenario.
    pub name: String,
    /// A program that must resolve in the user's login shell: the package's
    /// `meta.mainProgram`, or a name written in the scenario.
    pub program: Option<String>,
    /// How its presence in the generation is recognised; `None`: not looked for.
    pub installed: Option<Installed>,
}

impl Package {
    /// A program written by hand: looked up on PATH only (no store path is known).
    pub fn program(name: &str) -> Package {
        Package {
            name: name.into(),
            program: Some(name.into()),
            installed: None,
        }
    }
}

/// How a package is recognised among the store paths the generation's
/// `home-path` links into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Installed {
    /// One of these store paths (the outputs Home Manager installs, from the flake).
    StorePaths(Vec<String>),
    /// A store path named after the package, with any version or output
    /// (`<hash>-<name>-<version>`), as written in a scenario without a flake.
    Named,
}

/// How to get from the boot menu to a serial console.
#[derive(Debug, Clone)]
pub struct Boot {
    /// Picks the menu entry (label or menu text); `None`: the entry with a serial
    /// console, else the default entry with a serial console added.
    pub entry: Option<Regex>,
    /// `login:`: credentials for a console that stops at a login prompt
    /// (no autologin); the same form as `expect.sshd.login`'s entries.
    pub login: Option<SshLogin>,
}

/// One step of the scenario's own script on the serial console.
#[derive(Debug, Clone)]
pub enum Step {
    /// Run a command in the autologin shell; its stdout must match `expect` (if
    /// given) and its exit status must be `exit`.
    Run {
        command: String,
        expect: Option<Regex>,
        exit: i32,
        timeout: Duration,
    },
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
    pub source: Source,
    pub arch: Vec<Arch>,
    /// As written; empty: every firmware the architecture has (see `plan`).
    pub firmware: Vec<Firmware>,
    /// UEFI firmware files the scenario names, per architecture: (arch, code, vars).
    pub uefi: Vec<(Arch, PathBuf, PathBuf)>,
    pub memory_mib: u64,
    /// `accel:`: the accelerator the trial asks for (auto by default); `--accel`
    /// overrides it. `kvm` also asks CI for a runner with KVM (`isotest matrix`).
    pub accel: AccelChoice,
    /// Whether `arch:` was written. Without it the architecture is the host's, so
    /// the trials depend on the machine that computes them: `isotest matrix` and
    /// `--shard`, whose plan other machines must share, refuse that.
    pub arch_given: bool,
    /// The whole trial, boot included; every wait inside has its own smaller timeout.
    pub timeout: Duration,
    /// `baseline:`: a known-good ISO that every trial also runs on, against the
    /// same expectations, to tell regressions from old faults (`--baseline` wins).
    pub baseline: Option<PathBuf>,
    /// `max_slowdown:`: how much slower than on the baseline a phase may be.
    pub max_slowdown: MaxSlowdown,
    pub boot: Boot,
    pub expect: Expect,
    pub steps: Vec<Step>,
}

/// How much slower than on the baseline a phase may get before it is a
/// regression: by more than `fraction` of its baseline time *and* by more than
/// `seconds`. Both, because one TCG boot varies by about ±10 %, and a short
/// phase varies by large fractions of little time.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MaxSlowdown {
    pub fraction: f64,
    pub seconds: f64,
}

impl Default for MaxSlowdown {
    /// 20 % and 5 s: twice a TCG boot's own spread, and more than a TCG hiccup.
    fn default() -> Self {
        MaxSlowdown {
            fraction: 0.2,
            seconds: 5.0,
        }
    }
}

/// The largest `max_slowdown.fraction`: a phase ten times as slow is flagged
/// whatever the scenario says.
pub const MAX_SLOWDOWN_FRACTION: f64 = 10.0;
/// The largest `max_slowdown.seconds`: an hour.
pub const MAX_SLOWDOWN_SECONDS: f64 = 3600.0;

pub const DEFAULT_MEMORY_MIB: u64 = 1024;
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);
const DEFAULT_STEP_TIMEOUT: Duration = Duration::from_secs(30);

// ---- the file as written -------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ScenarioFile {
    iso: Option<String>,
    flake: Option<String>,
    image: Option<PathBuf>,
    images: Option<Vec<PathBuf>>,
    #[serde(default, deserialize_with = "one_or_many")]
    arch: Vec<Arch>,
    #[serde(default, deserialize_with = "one_or_many")]
    firmware: Vec<Firmware>,
    #[serde(default)]
    uefi: BTreeMap<String, UefiFiles>,
    #[serde(default, deserialize_with = "memory")]
    memory: Option<u64>,
    #[serde(default, deserialize_with = "accel")]
    accel: Option<AccelChoice>,
    #[serde(default, deserialize_with = "duration")]
    timeout: Option<Duration>,
    baseline: Option<PathBuf>,
    max_slowdown: Option<MaxSlowdownFile>,
    #[serde(default)]
    boot: BootFile,
    #[serde(default)]
    expect: ExpectFile,
    #[serde(default)]
    steps: Vec<StepFile>,
}

/// `max_slowdown: { fraction: 0.2, seconds: 5 }`; either may be left out.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MaxSlowdownFile {
    #[serde(default, deserialize_with = "slowdown_fraction")]
    fraction: Option<f64>,
    #[serde(default, deserialize_with = "slowdown_seconds")]
    seconds: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UefiFiles {
    code: PathBuf,
    vars: PathBuf,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct BootFile {
    #[serde(default, deserialize_with = "regex")]
    entry: Option<Regex>,
    login: Option<SshLoginFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectFile {
    #[serde(default, deserialize_with = "hostname")]
    hostname: Option<String>,
    #[serde(default, deserialize_with = "autologin")]
    autologin: Option<Autologin>,
    sshd: Option<SshdFile>,
    #[serde(default)]
    users: BTreeMap<String, UserFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SshdFile {
    running: Option<bool>,
    #[serde(default, deserialize_with = "ports")]
    ports: Vec<u16>,
    #[serde(default, deserialize_with = "permit_root_login")]
    permit_root_login: Option<String>,
    password_authentication: Option<bool>,
    #[serde(default)]
    login: Vec<SshLoginFile>,
    #[serde(default)]
    host_keys: Vec<String>,
}

/// `login: [root, {user: nixos, password_env: PW}]`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum SshLoginFile {
    User(String),
    Full(SshLoginFull),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SshLoginFull {
    user: String,
    password_env: Option<String>,
}

impl SshLoginFile {
    /// The login, its user and variable names checked.
    fn into_login(self) -> Result<SshLogin, String> {
        let login = match self {
            SshLoginFile::User(user) => SshLogin {
                user,
                password_env: None,
            },
            SshLoginFile::Full(full) => SshLogin {
                user: full.user,
                password_env: full.password_env,
            },
        };
        check_name("user", &login.user)?;
        if let Some(var) = &login.password_env {
            check_env_name(var)?;
        }
        Ok(login)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct UserFile {
    shell: Option<String>,
    home: Option<String>,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default, deserialize_with = "sudo")]
    sudo: bool,
    #[serde(default, deserialize_with = "home_manager")]
    home_manager: Option<HomeManager>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct HomeManagerFile {
    #[serde(default)]
    packages: Vec<PackageFile>,
    #[serde(default)]
    files: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StepFile {
    run: Option<String>,
    send: Option<String>,
    #[serde(default, deserialize_with = "regex")]
    expect: Option<Regex>,
    #[serde(default, deserialize_with = "exit_status")]
    exit: Option<i32>,
    #[serde(default, deserialize_with = "duration")]
    timeout: Option<Duration>,
}

/// Parses a scalar inside the deserializer (not after it), so that the parser
/// attaches the line, column and field path to the error.
fn scalar<'de, D, T>(
    d: D,
    expecting: &'static str,
    parse: fn(&str) -> Result<T, String>,
) -> Result<T, D::Error>
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

/// `accel: auto|kvm|tcg`, as `--accel` takes it.
fn accel<'de, D: Deserializer<'de>>(d: D) -> Result<Option<AccelChoice>, D::Error> {
    scalar(d, "an accelerator: auto, kvm or tcg", |t| match t {
        "auto" => Ok(AccelChoice::Auto),
        "kvm" => Ok(AccelChoice::Kvm),
        "tcg" => Ok(AccelChoice::Tcg),
        _ => Err(format!("unknown accelerator `{t}` (known: auto, kvm, tcg)")),
    })
    .map(Some)
}

fn hostname<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    scalar(d, "a host name", |t| {
        check_hostname(t).map(|()| t.to_owned())
    })
    .map(Some)
}

/// An integer checked inside the deserializer's visitor (not after it), so that
/// the parser locates the error at the number itself.
fn bounded_int<'de, D, T>(
    d: D,
    expecting: &'static str,
    check: fn(i128) -> Result<T, String>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    struct V<T>(&'static str, fn(i128) -> Result<T, String>);
    impl<'de, T> de::Visitor<'de> for V<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str(self.0)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
            (self.1)(v.into()).map_err(E::custom)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
            (self.1)(v.into()).map_err(E::custom)
        }
        fn visit_i128<E: de::Error>(self, v: i128) -> Result<T, E> {
            (self.1)(v).map_err(E::custom)
        }
        fn visit_u128<E: de::Error>(self, v: u128) -> Result<T, E> {
            (self.1)(i128::try_from(v).unwrap_or(i128::MAX)).map_err(E::custom)
        }
    }
    d.deserialize_any(V(expecting, check))
}

/// A number (integer or not) checked inside the deserializer's visitor, so that
/// the parser locates the error at the number itself.
fn bounded_number<'de, D>(
    d: D,
    expecting: &'static str,
    check: fn(f64) -> Result<f64, String>,
) -> Result<f64, D::Error>
where
    D: Deserializer<'de>,
{
    struct V(&'static str, fn(f64) -> Result<f64, String>);
    impl<'de> de::Visitor<'de> for V {
        type Value = f64;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str(self.0)
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
            (self.1)(v).map_err(E::custom)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
            (self.1)(v as f64).map_err(E::custom)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
            (self.1)(v as f64).map_err(E::custom)
        }
    }
    d.deserialize_any(V(expecting, check))
}

/// `max_slowdown.fraction`: more than 0 (every jitter would be a regression) up
/// to `MAX_SLOWDOWN_FRACTION`; NaN and infinities are refused by the same test.
fn slowdown_fraction<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    bounded_number(d, "a fraction of the baseline's time such as 0.2", |f| {
        if f > 0.0 && f <= MAX_SLOWDOWN_FRACTION {
            Ok(f)
        } else {
            Err(format!("fraction {f} is out of bounds: more than 0 and at most {MAX_SLOWDOWN_FRACTION} (0.2 is 20 %)"))
        }
    })
    .map(Some)
}

/// `max_slowdown.seconds`: 0 (the fraction alone decides) to an hour.
fn slowdown_seconds<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    bounded_number(d, "seconds such as 5", |s| {
        if (0.0..=MAX_SLOWDOWN_SECONDS).contains(&s) {
            Ok(s)
        } else {
            Err(format!(
                "seconds {s} is out of bounds: 0 to {MAX_SLOWDOWN_SECONDS}"
            ))
        }
    })
    .map(Some)
}

/// TCP ports sshd listens on: 1 to 65535.
fn ports<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u16>, D::Error> {
    struct Port(u16);
    impl<'de> Deserialize<'de> for Port {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Port, D::Error> {
            bounded_int(d, "a TCP port (1 to 65535)", |n| match u16::try_from(n) {
                Ok(port) if port > 0 => Ok(Port(port)),
                _ => Err(format!("{n} is not a port sshd can listen on (1 to 65535)")),
            })
        }
    }
    Ok(Vec::<Port>::deserialize(d)?
        .into_iter()
        .map(|p| p.0)
        .collect())
}

/// A command's exit status as a shell reports it: 0 to 255.
fn exit_status<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i32>, D::Error> {
    bounded_int(d, "an exit status (0 to 255)", |n| match i32::try_from(n) {
        Ok(status) if (0..=255).contains(&status) => Ok(Some(status)),
        _ => Err(format!(
            "exit status {n} is not one a command can have (0 to 255)"
        )),
    })
}

fn regex<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Regex>, D::Error> {
    scalar(d, "a regular expression", |t| {
        Regex::new(t).map_err(|e| format!("invalid regex: {e}"))
    })
    .map(Some)
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
                true => Err(E::custom(
                    "name the user (e.g. `autologin: root`) or write `false`",
                )),
            }
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Autologin, E> {
            Ok(Autologin::User(v.to_owned()))
        }
    }
    d.deserialize_any(V).map(Some)
}

/// `permit_root_login: yes|no|prohibit-password|forced-commands-only` (or a bool).
fn permit_root_login<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    struct V;
    impl<'de> de::Visitor<'de> for V {
        type Value = String;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("yes, no, prohibit-password or forced-commands-only")
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<String, E> {
            Ok(permit_root_login_of_bool(v).into())
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
            permit_root_login_of_str(v).map_err(E::custom)
        }
    }
    d.deserialize_any(V).map(Some)
}

/// A boolean PermitRootLogin (as older NixOS options had it).
pub fn permit_root_login_of_bool(v: bool) -> &'static str {
    if v {
        "yes"
    } else {
        "no"
    }
}

/// A PermitRootLogin value as `sshd -T` prints it (`without-password` is the old
/// name of `prohibit-password`).
pub fn permit_root_login_of_str(v: &str) -> Result<String, String> {
    match v {
        "yes" | "no" | "prohibit-password" | "forced-commands-only" => Ok(v.into()),
        "without-password" => Ok("prohibit-password".into()),
        _ => Err(format!("`{v}` is not a PermitRootLogin value (yes, no, prohibit-password, forced-commands-only)")),
    }
}

/// `sudo: nopasswd` is the one sudo expectation.
fn sudo<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    scalar(d, "`nopasswd`", |t| match t {
        "nopasswd" => Ok(true),
        _ => Err(format!("`{t}`: the only sudo expectation is `nopasswd`")),
    })
}

/// `home_manager: true`, or `{ packages: [...], files: [...] }`; `false` checks nothing.
/// A visitor, not an untagged enum, so that an error inside the mapping (a bad
/// package name) keeps its own message, line and column.
fn home_manager<'de, D: Deserializer<'de>>(d: D) -> Result<Option<HomeManager>, D::Error> {
    struct V;
    impl<'de> de::Visitor<'de> for V {
        type Value = Option<HomeManager>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("`true`, `false`, or a mapping with `packages:` and `files:`")
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
            Ok(v.then(HomeManager::default))
        }
        fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            let f = HomeManagerFile::deserialize(de::value::MapAccessDeserializer::new(map))?;
            Ok(Some(HomeManager {
                packages: f.packages.into_iter().map(|p| p.0).collect(),
                files: f.files,
            }))
        }
    }
    d.deserialize_any(V)
}

/// `packages:` entries: `rg` (a program on PATH), or `{ package: noto-fonts }`
/// (installed in the generation, found by its store path's name), with
/// `program: X` when it is both.
#[derive(Debug)]
struct PackageFile(Package);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PackageMap {
    package: String,
    program: Option<String>,
}

impl<'de> Deserialize<'de> for PackageFile {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> de::Visitor<'de> for V {
            type Value = PackageFile;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "a program name, or `{ package: NAME }` with an optional `program: NAME`",
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<PackageFile, E> {
                check_name("program", v).map_err(E::custom)?;
                Ok(PackageFile(Package::program(v)))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<PackageFile, A::Error> {
                let m = PackageMap::deserialize(de::value::MapAccessDeserializer::new(map))?;
                check_name("package", &m.package).map_err(de::Error::custom)?;
                if let Some(program) = &m.program {
                    check_name("program", program).map_err(de::Error::custom)?;
                }
                Ok(PackageFile(Package {
                    name: m.package,
                    program: m.program,
                    installed: Some(Installed::Named),
                }))
            }
        }
        d.deserialize_any(V)
    }
}

/// Names that end up in guest commands: user names and program names.
fn check_name(kind: &str, name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && !name.starts_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._+-@".contains(c));
    if ok {
        Ok(())
    } else {
        Err(format!("`{name}` is not a valid {kind} name"))
    }
}

/// An environment variable's name as a shell would set it (`export NAME=...`).
fn check_env_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not an environment variable name (letters, digits and `_`)"
        ))
    }
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
            _ => Err(format!(
                "unknown architecture `{s}` (known: x86_64, aarch64)"
            )),
        }
    }
}

impl Firmware {
    /// The firmwares `arch` can boot with: x86_64 PCs have BIOS and UEFI; ARM64
    /// machines boot UEFI only.
    pub fn all_for(arch: Arch) -> &'static [Firmware] {
        match arch {
            Arch::X86_64 => &[Firmware::Bios, Firmware::Uefi],
            Arch::Aarch64 => &[Firmware::Uefi],
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
    pub(super) fn into_scenario(
        self,
        name: String,
        path: &Path,
        base: &Path,
    ) -> Result<Scenario, ScenarioError> {
        let invalid = |field: &str, message: String| ScenarioError::Invalid {
            path: path.to_owned(),
            field: field.to_owned(),
            message,
        };
        let (images, image_list) = match (self.image, self.images) {
            (Some(one), None) => (vec![base.join(one)], false),
            (None, Some(list)) if list.is_empty() => {
                return Err(invalid("images", "the list is empty".into()))
            }
            (None, Some(list)) => (list.into_iter().map(|p| base.join(p)).collect(), true),
            (None, None) => (Vec::new(), false),
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "image",
                    "give `image:` or `images:`, not both".into(),
                ))
            }
        };
        if self.iso.is_none() && images.is_empty() {
            return Err(invalid(
                "iso",
                "missing: give `iso:` (a flake host), `image:`/`images:` (ISO files), or both"
                    .into(),
            ));
        }
        if let Some(host) = &self.iso {
            check_name("host", host).map_err(|m| invalid("iso", m))?;
        }
        if self.flake.is_some() && self.iso.is_none() {
            return Err(invalid(
                "flake",
                "`flake:` needs `iso:` to name the host".into(),
            ));
        }
        let source = Source {
            host: self.iso,
            flake: self.flake.map(|f| flake_reference(&f, base)),
            images,
            image_list,
        };
        let mut arch = self.arch;
        let arch_given = !arch.is_empty();
        if arch.is_empty() {
            arch.push(Arch::host().ok_or_else(|| {
                invalid(
                    "arch",
                    "the host is neither x86_64 nor aarch64; name one".into(),
                )
            })?);
        }
        let firmware = self.firmware;
        let mut uefi = Vec::new();
        for (name, files) in self.uefi {
            let arch: Arch = name.parse().map_err(|m| invalid("uefi", m))?;
            uefi.push((arch, base.join(files.code), base.join(files.vars)));
        }
        let steps = self
            .steps
            .into_iter()
            .enumerate()
            .map(|(i, s)| {
                s.into_step()
                    .map_err(|m| invalid(&format!("steps[{i}]"), m))
            })
            .collect::<Result<_, _>>()?;
        Ok(Scenario {
            name,
            path: path.to_owned(),
            source,
            arch,
            firmware,
            uefi,
            memory_mib: self.memory.unwrap_or(DEFAULT_MEMORY_MIB),
            accel: self.accel.unwrap_or_default(),
            arch_given,
            timeout: self.timeout.unwrap_or(DEFAULT_TIMEOUT),
            baseline: self.baseline.map(|b| base.join(b)),
            max_slowdown: self
                .max_slowdown
                .map_or_else(MaxSlowdown::default, |m| MaxSlowdown {
                    fraction: m.fraction.unwrap_or(MaxSlowdown::default().fraction),
                    seconds: m.seconds.unwrap_or(MaxSlowdown::default().seconds),
                }),
            boot: Boot {
                entry: self.boot.entry,
                login: self
                    .boot
                    .login
                    .map(SshLoginFile::into_login)
                    .transpose()
                    .map_err(|m| invalid("boot.login", m))?,
            },
            expect: self
                .expect
                .into_expect()
                .map_err(|(field, m)| invalid(&field, m))?,
            steps,
        })
    }
}

impl ExpectFile {
    fn into_expect(self) -> Result<Expect, (String, String)> {
        let sshd = match self.sshd {
            None => None,
            Some(f) => {
                let login: Vec<SshLogin> = f
                    .login
                    .into_iter()
                    .map(SshLoginFile::into_login)
                    .collect::<Result<_, _>>()
                    .map_err(|m| ("expect.sshd.login".to_owned(), m))?;
                if f.running == Some(false) && !login.is_empty() {
                    return Err((
                        "expect.sshd".into(),
                        "`login:` needs `running: true`".into(),
                    ));
                }
                for key in &f.host_keys {
                    if !key.starts_with("SHA256:") {
                        return Err((
                            "expect.sshd.host_keys".into(),
                            format!("`{key}` is not a SHA256:... fingerprint"),
                        ));
                    }
                }
                Some(Sshd {
                    running: f.running,
                    ports: f.ports,
                    permit_root_login: f.permit_root_login,
                    password_authentication: f.password_authentication,
                    login,
                    host_keys: f.host_keys,
                })
            }
        };
        let mut users = BTreeMap::new();
        for (name, f) in self.users {
            let field = format!("expect.users.{name}");
            check_name("user", &name).map_err(|m| (field.clone(), m))?;
            users.insert(
                name,
                User {
                    shell: f.shell,
                    home: f.home,
                    groups: f.groups,
                    sudo_nopasswd: f.sudo,
                    home_manager: f.home_manager,
                },
            );
        }
        Ok(Expect {
            hostname: self.hostname,
            autologin: self.autologin,
            sshd,
            users,
        })
    }
}

impl StepFile {
    fn into_step(self) -> Result<Step, String> {
        let timeout = self.timeout.unwrap_or(DEFAULT_STEP_TIMEOUT);
        match (self.run, self.send, self.expect) {
            (Some(command), None, expect) => Ok(Step::Run {
                command,
                expect,
                exit: self.exit.unwrap_or(0),
                timeout,
            }),
            (None, Some(text), None) if self.exit.is_none() => Ok(Step::Send {
                bytes: unescape(&text)?,
            }),
            (None, None, Some(pattern)) if self.exit.is_none() => {
                Ok(Step::Expect { pattern, timeout })
            }
            _ => Err(
                "a step is one of `run:` (with optional `expect:`, `exit:`), `send:`, or `expect:`"
                    .into(),
            ),
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
                let byte = u8::from_str_radix(&hex, 16)
                    .map_err(|_| format!("send: bad escape `\\x{hex}`"))?;
                out.push(byte);
            }
            other => {
                return Err(format!(
                    "send: unknown escape `\\{}`",
                    other.map(String::from).unwrap_or_default()
                ))
            }
        }
    }
    Ok(out)
}
