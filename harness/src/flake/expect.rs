//! Expectations from a host's NixOS configuration (`passthru.config`). Only the
//! attributes the checks need are evaluated, each with an `or` default, because
//! a real NixOS configuration is far too big to evaluate whole.

use super::attr::attr;
use super::error::FlakeError;
use super::hosts::require_host;
use super::memo::{once, Memo};
use super::nix;
use crate::platform::Arch;
use crate::scenario::{
    permit_root_login_of_str, yes_no, Autologin, Expect, HomeManager, Installed, Package, SshLogin,
    Sshd, User,
};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// Applied to the host's package. A shell's program name follows nixpkgs:
/// `meta.mainProgram`, else `pname`, else the name without its version.
///
/// A Home Manager package (`hmPackage`) is a program only when it has
/// `meta.mainProgram`; every package is found by its store paths. Which
/// outputs those are follows Home Manager and nixpkgs: Home Manager's
/// `home.path` is `buildEnv { paths = home.packages; inherit
/// extraOutputsToInstall; }` with buildEnv's default `pathsToLink = [ "/" ]`
/// (nix-community/home-manager modules/home-environment.nix, commit 0006da1),
/// and buildEnv installs `meta.outputsToInstall` (unless an output was chosen
/// with `outputSpecified`), else the package itself, plus each of
/// `extraOutputsToInstall` the package has (NixOS/nixpkgs
/// pkgs/build-support/buildenv/default.nix, commit 010375a). A string or path
/// in `home.packages` is taken as a program name, with no store path.
const SELECT: &str = r#"
pkg:
let
  c = pkg.passthru.config or pkg.config or (throw "this package has no passthru.config; is it a nix-wire ISO host?");
  program = p: if builtins.isString p || builtins.isPath p then toString p
    else p.meta.mainProgram or p.pname or (builtins.parseDrvName p.name).name;
  outputsOf = extra: p:
    (if !(p.outputSpecified or false) && (p.meta.outputsToInstall or null) != null
      then map (o: p.${o}) p.meta.outputsToInstall else [ p ])
    ++ builtins.filter (o: o != null) (map (o: p.${o} or null) extra);
  hmPackage = extra: p: if builtins.isString p || builtins.isPath p || !(p ? outPath)
    then { name = toString p; program = toString p; storePaths = [ ]; }
    else {
      name = p.pname or (builtins.parseDrvName p.name).name;
      program = p.meta.mainProgram or null;
      storePaths = map (o: o.outPath) (outputsOf extra p);
    };
  users = c.users.users or { };
  hmUsers = c.home-manager.users or { };
  wanted = builtins.filter (n: n == "root" || (users.${n}.isNormalUser or false) || hmUsers ? ${n})
    (builtins.attrNames (users // hmUsers));
  ssh = c.services.openssh or { };
  homeFiles = h: let files = h.home.file or { }; in
    map (n: files.${n}.target or n) (builtins.filter (n: files.${n}.enable or true) (builtins.attrNames files));
  user = n: let u = users.${n} or { }; in {
    shell = if (u.shell or null) == null then null else program u.shell;
    home = u.home or null;
    groups = u.extraGroups or [ ];
    homeManager = if hmUsers ? ${n} then {
      packages = map (hmPackage (hmUsers.${n}.home.extraOutputsToInstall or [ ])) (hmUsers.${n}.home.packages or [ ]);
      files = homeFiles hmUsers.${n};
    } else null;
  };
in {
  hostName = c.networking.hostName or null;
  autologinUser = c.services.getty.autologinUser or null;
  openssh = {
    enable = ssh.enable or false;
    ports = ssh.ports or [ 22 ];
    permitRootLogin = ssh.settings.PermitRootLogin or ssh.permitRootLogin or "prohibit-password";
    passwordAuthentication = ssh.settings.PasswordAuthentication or ssh.passwordAuthentication or true;
  };
  wheelNeedsPassword = c.security.sudo.wheelNeedsPassword or true;
  users = builtins.listToAttrs (map (n: { name = n; value = user n; }) wanted);
}
"#;

/// What the selection gives: NixOS option values, not yet expectations.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Facts {
    pub host_name: Option<String>,
    pub autologin_user: Option<String>,
    pub openssh: OpenSsh,
    pub wheel_needs_password: bool,
    pub users: BTreeMap<String, FactsUser>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct OpenSsh {
    pub enable: bool,
    pub ports: Vec<u16>,
    pub permit_root_login: serde_json::Value,
    pub password_authentication: bool,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FactsUser {
    pub shell: Option<String>,
    pub home: Option<String>,
    pub groups: Vec<String>,
    pub home_manager: Option<FactsHomeManager>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct FactsHomeManager {
    pub packages: Vec<FactsPackage>,
    pub files: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FactsPackage {
    pub name: String,
    /// `meta.mainProgram`; for a string in `home.packages`, the string.
    pub program: Option<String>,
    /// The outputs buildEnv links into `home-path`; none for a string.
    pub store_paths: Vec<String>,
}

impl FactsPackage {
    fn expectation(&self) -> Package {
        let installed =
            (!self.store_paths.is_empty()).then(|| Installed::StorePaths(self.store_paths.clone()));
        Package {
            name: self.name.clone(),
            program: self.program.clone(),
            installed,
        }
    }
}

/// The expectations `iso: <host>` implies (evaluated once per process).
pub fn derive_expectations(flake: &str, arch: Arch, host: &str) -> Result<Expect, FlakeError> {
    static DERIVED: Memo<Expect> = OnceLock::new();
    once(&DERIVED, attr(flake, arch, host), |attr| {
        evaluate(flake, host, attr).map(|facts| facts.expectations())
    })
}

fn evaluate(flake: &str, host: &str, attr: &str) -> Result<Facts, FlakeError> {
    let purpose = format!("reading the expectations of `iso: {host}`");
    require_host(flake, host, &purpose)?;
    match nix::run(
        &["eval", "--json", attr, "--apply", SELECT],
        &purpose,
        &mut |_| {},
    )? {
        Ok(out) => serde_json::from_str(&out.stdout).map_err(|e| FlakeError::Answer {
            attr: attr.to_owned(),
            reason: std::sync::Arc::new(e),
            stdout: out.stdout.clone(),
        }),
        Err(failure) => Err(FlakeError::Eval {
            attr: attr.to_owned(),
            message: failure.message,
        }),
    }
}

impl Facts {
    /// NixOS's meaning as expectations: a null autologinUser is a login prompt,
    /// openssh.enable false means sshd must not run, wheel users get passwordless
    /// sudo when wheelNeedsPassword is false, and SSH is tried as root (when
    /// PermitRootLogin allows a key) or as the console's user, with a throwaway key.
    pub fn expectations(&self) -> Expect {
        let hostname = self.host_name.clone().filter(|h| !h.is_empty());
        let autologin = Some(match &self.autologin_user {
            Some(user) => Autologin::User(user.clone()),
            None => Autologin::Disabled,
        });
        let sshd = Some(if self.openssh.enable {
            let permit = permit_root_login(&self.openssh.permit_root_login);
            let login_user = match (permit.as_str(), &self.autologin_user) {
                ("yes" | "prohibit-password", _) => Some("root".to_owned()),
                (_, Some(user)) if user != "root" => Some(user.clone()),
                _ => None,
            };
            Sshd {
                running: Some(true),
                ports: self.openssh.ports.clone(),
                permit_root_login: Some(permit),
                password_authentication: Some(self.openssh.password_authentication),
                login: login_user
                    .into_iter()
                    .map(|user| SshLogin {
                        user,
                        password_env: None,
                    })
                    .collect(),
                host_keys: Vec::new(),
            }
        } else {
            Sshd {
                running: Some(false),
                ports: self.openssh.ports.clone(),
                permit_root_login: None,
                password_authentication: None,
                login: Vec::new(),
                host_keys: Vec::new(),
            }
        });
        let users = self
            .users
            .iter()
            .map(|(name, u)| {
                let user = User {
                    shell: u.shell.as_deref().map(shell_name),
                    home: u.home.clone(),
                    groups: u.groups.clone(),
                    sudo_nopasswd: u.groups.iter().any(|g| g == "wheel")
                        && !self.wheel_needs_password,
                    home_manager: u.home_manager.as_ref().map(|h| HomeManager {
                        packages: h.packages.iter().map(FactsPackage::expectation).collect(),
                        files: h.files.clone(),
                    }),
                };
                (name.clone(), user)
            })
            .collect();
        Expect {
            hostname,
            autologin,
            sshd,
            users,
        }
    }
}

/// NixOS writes a shell package as `/run/current-system/sw/bin/<program>`, so the
/// program name is compared with the end of the guest's path. A string that is a
/// path stays a path unless it points into the Nix store or the system profile.
fn shell_name(shell: &str) -> String {
    let in_profile = shell.starts_with("/nix/store/") || shell.starts_with("/run/current-system/");
    if in_profile {
        shell.rsplit('/').next().unwrap_or(shell).to_owned()
    } else {
        shell.to_owned()
    }
}

/// `services.openssh.settings.PermitRootLogin`: a string (older NixOS: a bool),
/// read as a scenario's `permit_root_login:` is; a value sshd does not know is
/// kept as written, so that the sshd check reports it.
fn permit_root_login(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Bool(b) => yes_no(*b).into(),
        serde_json::Value::String(s) => permit_root_login_of_str(s).unwrap_or_else(|_| s.clone()),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(json: &str) -> Facts {
        serde_json::from_str(json).unwrap()
    }

    const INSTALLER: &str = r#"{"hostName":"nixos","autologinUser":"nixos",
        "openssh":{"enable":true,"ports":[22],"permitRootLogin":"without-password","passwordAuthentication":true},
        "wheelNeedsPassword":false,
        "users":{"nixos":{"shell":"bash","home":"/home/nixos","groups":["wheel"],"homeManager":null},
                 "root":{"shell":"/run/current-system/sw/bin/zsh","home":"/root","groups":[],
                         "homeManager":{"packages":[
                             {"name":"ripgrep","program":"rg","storePaths":["/nix/store/aaa-ripgrep-14.1"]},
                             {"name":"noto-fonts","program":null,"storePaths":["/nix/store/bbb-noto-fonts-2024.01"]},
                             {"name":"hello","program":"hello","storePaths":[]}],
                           "files":[".config/x"]}}}}"#;

    #[test]
    fn nixos_semantics() {
        let e = facts(INSTALLER).expectations();
        assert_eq!(e.hostname.as_deref(), Some("nixos"));
        assert_eq!(e.autologin, Some(Autologin::User("nixos".into())));
        let sshd = e.sshd.unwrap();
        assert_eq!(sshd.permit_root_login.as_deref(), Some("prohibit-password"));
        assert_eq!(
            sshd.login,
            [SshLogin {
                user: "root".into(),
                password_env: None
            }]
        );
        assert!(e.users["nixos"].sudo_nopasswd);
        assert!(!e.users["root"].sudo_nopasswd);
        assert_eq!(e.users["root"].shell.as_deref(), Some("zsh"));
        let hm = e.users["root"].home_manager.as_ref().unwrap();
        assert_eq!(hm.programs(), ["rg", "hello"]);
        // A font is no program: it is found by its store path alone.
        assert_eq!(hm.packages[1].program, None);
        assert_eq!(
            hm.packages[1].installed,
            Some(Installed::StorePaths(vec![
                "/nix/store/bbb-noto-fonts-2024.01".into()
            ]))
        );
        // A string in home.packages: a program, with no store path to look for.
        assert_eq!(hm.packages[2].installed, None);
    }

    #[test]
    fn null_autologin_no_sshd_and_no_root_login() {
        let e = facts(
            &INSTALLER
                .replace(r#""autologinUser":"nixos""#, r#""autologinUser":null"#)
                .replace(r#""enable":true"#, r#""enable":false"#),
        )
        .expectations();
        assert_eq!(e.autologin, Some(Autologin::Disabled));
        assert_eq!(e.sshd.as_ref().map(Sshd::must_run), Some(false));
        let e = facts(&INSTALLER.replace(r#""without-password""#, r#""no""#)).expectations();
        assert_eq!(
            e.sshd.unwrap().login,
            [SshLogin {
                user: "nixos".into(),
                password_env: None
            }]
        );
    }
}
