//! The validated scenario the rest of the harness uses: every value checked,
//! paths joined to the scenario's directory, defaults filled in. `file` has the
//! YAML as written, and `validate` turns one into the other.

use crate::platform::{AccelChoice, Arch, Firmware};
use regex::Regex;
use std::collections::BTreeMap;
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
    /// `fresh_boot: true`: this scenario's trials boot from power-on, never
    /// from a boot shared with other scenarios (`--fresh-boot` for all).
    pub fresh_boot: bool,
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
pub const DEFAULT_STEP_TIMEOUT: Duration = Duration::from_secs(30);
