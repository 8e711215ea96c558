//! Real logins over SSH, each a check: the console prepares them (the user
//! exists, a throwaway key is installed), the network part may run on another
//! thread, and the console speaks again only for a server that never answered.

use super::probe::{answer, as_root, run, NoEvidence};
use super::result::{Check, CheckResult, Found};
use crate::check_id::{CheckId, LoginMethod};
use crate::console::{sh_quote, Shell};
use crate::scenario::SshLogin;
use crate::ssh::{self, Auth, Secret, SshError};
use std::path::Path;
use std::time::Duration;

/// What lists the host keys: their public halves, each ended by a newline
/// of its own (a file without one would run into the next), whose
/// fingerprints the host works out (`public_key_fingerprint`): `cat`, where
/// `ssh-keygen -l` would start once per key (and need to be there). The
/// loop runs in a subshell so that a key that cannot be read is its status.
pub(super) const HOST_KEYS: &str =
    "(for f in /etc/ssh/ssh_host_*_key.pub; do cat \"$f\" && echo || exit; done)";

/// The fingerprints of the guest's SSH host keys, from their public halves
/// as its console shows them. A line that is not a public key makes the
/// evidence void, as it would make `ssh-keygen -l` fail.
pub fn host_key_fingerprints(shell: &mut Shell<'_>) -> Result<Vec<String>, NoEvidence> {
    let out = answer(shell, HOST_KEYS)?;
    let keys = out.output.lines().filter(|l| !l.trim().is_empty());
    let prints = keys
        .map(|line| {
            public_key_fingerprint(line).ok_or_else(|| {
                NoEvidence::new(format!("a host key that is not a public key: {line}"))
            })
        })
        .collect::<Result<Vec<String>, NoEvidence>>()?;
    if prints.is_empty() {
        return Err(NoEvidence::new(format!(
            "no host key fingerprints on the console: {}",
            out.output.trim()
        )));
    }
    Ok(prints)
}

/// The fingerprint of an OpenSSH public key line (`<type> <base64 key>
/// [comment]`) as `ssh-keygen -l` shows it: SHA256 of the key's bytes, in
/// base64 without padding.
fn public_key_fingerprint(line: &str) -> Option<String> {
    use base64::Engine;
    use sha2::Digest;
    let key = line.split_whitespace().nth(1)?;
    let bytes = base64::engine::general_purpose::STANDARD.decode(key).ok()?;
    Some(crate::ssh::fingerprint(&sha2::Sha256::digest(&bytes)))
}

/// Where and how to reach the guest's sshd.
pub struct SshTarget<'a> {
    /// The host port forwarded to the guest's sshd.
    pub port: u16,
    /// Accepted host key fingerprints.
    pub pins: &'a [String],
    /// The trial's private directory, for the throwaway client key.
    pub private_dir: &'a Path,
    /// What the console says the hostname is; SSH must agree.
    pub hostname: &'a str,
    pub scale: u32,
}

/// A real login over SSH, in three parts so that the network part can run
/// while the console is busy with other checks: `prepare_ssh_login` (console:
/// the user exists, a throwaway key is installed, or the password is read from
/// the environment variable the scenario names), `SshAttempt::run` (network
/// only: login, then `id -un` and the hostname over SSH must agree with the
/// console), `finish_ssh_login` (console again, only for the evidence of a
/// server that never answered).
pub struct SshAttempt {
    check: Check,
    user: String,
    method: LoginMethod,
    auth: Auth,
    port: u16,
    /// None: no console shell could show the host keys; the key is recorded.
    pins: Option<Vec<String>>,
    /// What the hostname over SSH must be, and who says so.
    hostname: Option<(String, &'static str)>,
    patience: Duration,
    /// Time spent on the console so far, counted in the check's time.
    secs: f64,
}

/// Where an SSH login stands: ready for its network part, judged, or failed
/// for a server that sent no banner, whose evidence (the guest's addresses)
/// needs the console.
pub enum SshLoginStage {
    Ready(Box<SshAttempt>),
    Judged(CheckResult),
    NoBanner {
        attempt: Box<SshAttempt>,
        error: SshError,
        secs: f64,
    },
}

impl SshLoginStage {
    /// The network part of a login that is ready (no console needed, so it
    /// may run on another thread); any other stage stays as it is.
    pub fn run(self) -> SshLoginStage {
        match self {
            SshLoginStage::Ready(attempt) => attempt.run(),
            other => other,
        }
    }
}

/// The console part of an SSH login: judged already when there is nothing to
/// try (no such user, no key could be installed, no password).
pub fn prepare_ssh_login(
    shell: &mut Shell<'_>,
    is_root: bool,
    target: &SshTarget<'_>,
    login: &SshLogin,
) -> SshLoginStage {
    let started = std::time::Instant::now();
    let user = &login.user;
    let method = login_method(login);
    let check = Check::new(
        login_check_id(login),
        format!(
            "{method} login as {user}, host key pinned, `id -un` = {user}, hostname {}",
            target.hostname
        ),
    );
    // The harness could not even try: broken.
    let auth = match user_auth(shell, is_root, target.private_dir, login) {
        Ok(Some(auth)) => auth,
        Ok(None) => return SshLoginStage::Judged(check.no_such_user(user)),
        Err(e) => return SshLoginStage::Judged(check.broken(e)),
    };
    SshLoginStage::Ready(Box::new(SshAttempt {
        check,
        user: user.clone(),
        method,
        auth,
        port: target.port,
        pins: Some(target.pins.to_vec()),
        hostname: Some((target.hostname.to_owned(), "the console says")),
        patience: Duration::from_secs(30) * target.scale,
        secs: started.elapsed().as_secs_f64(),
    }))
}

/// How the login proves itself: its password, or a key installed for the
/// user through the console. None: the user does not exist.
fn user_auth(
    shell: &mut Shell<'_>,
    is_root: bool,
    private_dir: &Path,
    login: &SshLogin,
) -> Result<Option<Auth>, NoEvidence> {
    if !super::users::user_exists(shell, &login.user)? {
        return Ok(None);
    }
    let password = password_of(login).map_err(|e| NoEvidence::new(crate::error::chain(&e)))?;
    Ok(Some(match password {
        Some(secret) => Auth::Password(secret),
        None => Auth::Key(install_key(shell, is_root, &login.user, private_dir)?),
    }))
}

impl SshAttempt {
    /// The network part: login, then `id -un` and the hostname over SSH.
    fn run(self: Box<Self>) -> SshLoginStage {
        let started = std::time::Instant::now();
        let secs = |attempt: &SshAttempt| attempt.secs + started.elapsed().as_secs_f64();
        let session = match ssh::login(
            self.port,
            self.pins.as_deref(),
            &self.user,
            &self.auth,
            self.patience,
        ) {
            Ok(s) => s,
            Err(error @ SshError::NoBanner { .. }) => {
                let secs = secs(&self);
                return SshLoginStage::NoBanner {
                    attempt: self,
                    error,
                    secs,
                };
            }
            // The guest refused or misbehaved: a failure.
            Err(e) => return SshLoginStage::Judged(self.failed(&e, Vec::new(), secs(&self))),
        };
        let result = match session.exec("id -un; cat /proc/sys/kernel/hostname") {
            Ok((out, status)) => self
                .check
                .verdict(self.judge(&session.host_key, &out, status)),
            Err(e) => self.check.broken(NoEvidence::new(crate::error::chain(&e))),
        };
        SshLoginStage::Judged(CheckResult {
            secs: secs(&self),
            ..result
        })
    }

    /// What `id -un` and the hostname over SSH say, against what they must be.
    fn judge(&self, host_key: &str, out: &str, status: i32) -> Found {
        let mut lines = out.lines().map(str::trim);
        let (id, host) = (lines.next().unwrap_or(""), lines.next().unwrap_or(""));
        let pinned = if self.pins.is_some() {
            "pinned"
        } else {
            "not pinned: no console shell showed the host keys"
        };
        let mut problems = Vec::new();
        if status != 0 {
            problems.push(format!("the command over SSH exited with {status}"));
        }
        if id != self.user {
            problems.push(format!(
                "over SSH `id -un` says `{id}`, expected `{}`",
                self.user
            ));
        }
        if let Some((hostname, who)) = &self.hostname {
            if host != hostname {
                problems.push(format!(
                    "over SSH the hostname is `{host}`, {who} `{hostname}`"
                ));
            }
        }
        Found {
            actual: format!("logged in as {id} on {host}"),
            evidence: vec![
                format!("host key {host_key} ({pinned})"),
                format!("over SSH: id -un → {id}, hostname → {host}"),
            ],
            problems,
            pass: format!("{} login as {} works", self.method, self.user),
        }
    }

    /// A login the guest refused or never answered: a failure that says why.
    fn failed(&self, error: &SshError, evidence: Vec<String>, secs: f64) -> CheckResult {
        CheckResult {
            secs,
            ..self.check.verdict(Found {
                evidence,
                problems: vec![crate::error::chain(error)],
                ..Found::default()
            })
        }
    }
}

/// The verdict of a login; a server that sent no banner fails with the
/// guest's addresses, from the console, as evidence. (A login still ready
/// runs its network part here.)
pub fn finish_ssh_login(shell: &mut Shell<'_>, stage: SshLoginStage) -> CheckResult {
    stage.verdict(|| {
        run(shell, "ip -brief addr")
            .map(|o| o.output.lines().map(|l| format!("ip addr: {l}")).collect())
            .unwrap_or_default()
    })
}

impl SshLoginStage {
    /// The login's result: a login still ready runs its network part first;
    /// a server that sent no banner fails with `no_banner`'s evidence (the
    /// guest's addresses, where a console can tell them).
    fn verdict(self, no_banner: impl FnOnce() -> Vec<String>) -> CheckResult {
        match self.run() {
            SshLoginStage::Judged(result) => result,
            // `run` moves a ready login on; kept total rather than assumed.
            SshLoginStage::Ready(a) => a
                .check
                .broken(NoEvidence::new("the login was never tried".into())),
            SshLoginStage::NoBanner {
                attempt,
                error,
                secs,
            } => attempt.failed(&error, no_banner(), secs),
        }
    }
}

/// An SSH login when the console has no shell (a login prompt, a console
/// login that failed): a password login needs none, so it runs, unpinned,
/// its hostname compared with the scenario's if it has one; a key login
/// needs the console to install its key, so it is not run.
pub fn ssh_login_without_console(
    login: &SshLogin,
    port: u16,
    hostname: Option<&str>,
    scale: u32,
    why: &str,
) -> CheckResult {
    let user = &login.user;
    let expected = match hostname {
        Some(h) => format!("password login as {user}, `id -un` = {user}, hostname {h}"),
        None => format!("password login as {user}, `id -un` = {user}"),
    };
    let check = Check::new(login_check_id(login), expected);
    let password = match password_of(login) {
        Ok(Some(password)) => password,
        Ok(None) => {
            let why = format!("{why}; a key login needs the console shell to install its key");
            return CheckResult::not_run(check.name, "", &why);
        }
        Err(e) => return check.broken(NoEvidence::new(crate::error::chain(&e))),
    };
    let attempt = SshAttempt {
        check,
        user: user.clone(),
        method: LoginMethod::Password,
        auth: Auth::Password(password),
        port,
        pins: None,
        hostname: hostname.map(|h| (h.to_owned(), "the scenario expects")),
        patience: Duration::from_secs(30) * scale,
        secs: 0.0,
    };
    SshLoginStage::Ready(Box::new(attempt)).verdict(Vec::new)
}

/// A login's password names an environment variable that is not set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("environment variable {var} (the password of {user}) is not set")]
pub struct PasswordUnset {
    pub var: String,
    pub user: String,
}

/// The password of a login, from the environment variable the scenario
/// names (None: the login has none).
pub fn password_of(login: &SshLogin) -> Result<Option<Secret>, PasswordUnset> {
    let Some(var) = &login.password_env else {
        return Ok(None);
    };
    match std::env::var(var) {
        Ok(value) => Ok(Some(Secret::new(value))),
        Err(_) => Err(PasswordUnset {
            var: var.clone(),
            user: login.user.clone(),
        }),
    }
}

fn login_method(login: &SshLogin) -> LoginMethod {
    if login.password_env.is_some() {
        LoginMethod::Password
    } else {
        LoginMethod::Key
    }
}

/// `ssh login root (key)`, `ssh login nixos (password)`.
pub fn login_check_id(login: &SshLogin) -> CheckId {
    CheckId::ssh_login(&login.user, login_method(login))
}

/// Puts a throwaway public key in the user's authorized_keys through the console.
fn install_key(
    shell: &mut Shell<'_>,
    is_root: bool,
    user: &str,
    dir: &Path,
) -> Result<std::path::PathBuf, NoEvidence> {
    let (private, public) =
        ssh::throwaway_key(dir).map_err(|e| NoEvidence::new(crate::error::chain(&e)))?;
    let q = sh_quote(user);
    let command = format!(
        "h=$(getent passwd {q} | cut -d: -f6) && g=$(id -g {q}) && install -d -m 700 -o {q} -g \"$g\" \"$h/.ssh\" \
         && printf '%s\\n' {} >> \"$h/.ssh/authorized_keys\" && chown {q}:\"$g\" \"$h/.ssh/authorized_keys\" \
         && chmod 600 \"$h/.ssh/authorized_keys\"",
        sh_quote(&public)
    );
    let out = run(shell, &as_root(is_root, &command))?;
    if out.status != 0 {
        return Err(NoEvidence {
            message: format!("could not install a key for `{user}` through the console"),
            lines: out.output.lines().map(str::to_owned).collect(),
        });
    }
    Ok(private)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A login as `nixos` whose hostname must be `rescue`, as the console says.
    fn attempt() -> SshAttempt {
        let login = SshLogin {
            user: "nixos".into(),
            password_env: Some("PW".into()),
        };
        SshAttempt {
            check: Check::new(login_check_id(&login), "nixos, hostname rescue".into()),
            user: "nixos".into(),
            method: LoginMethod::Password,
            auth: Auth::Password(crate::ssh::Secret::new("pw".into())),
            port: 22,
            pins: Some(vec!["SHA256:key".into()]),
            hostname: Some(("rescue".into(), "the console says")),
            patience: Duration::ZERO,
            secs: 0.0,
        }
    }

    /// What SSH says must agree with the console: the user, the hostname,
    /// and the command's status, each a problem of its own.
    #[test]
    fn a_login_that_lands_elsewhere_fails() {
        let attempt = attempt();
        let fine = attempt.judge("SHA256:key", "nixos\nrescue\n", 0);
        assert!(fine.problems.is_empty(), "{:?}", fine.problems);
        assert_eq!(fine.actual, "logged in as nixos on rescue");
        let elsewhere = attempt.judge("SHA256:key", "root\nother\n", 1);
        assert_eq!(
            elsewhere.problems,
            [
                "the command over SSH exited with 1",
                "over SSH `id -un` says `root`, expected `nixos`",
                "over SSH the hostname is `other`, the console says `rescue`",
            ]
        );
        let silent = attempt.judge("SHA256:key", "", 0);
        assert_eq!(silent.problems.len(), 2, "{:?}", silent.problems);
    }

    /// As `ssh-keygen -lf` printed it for this key (OpenSSH 9.2).
    #[test]
    fn host_key_fingerprints_are_ssh_keygens() {
        let line = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIN+bSSRFndYpnCgSgLmvNcL4avNibLr9/rs8lBrYag3e root@rescue";
        assert_eq!(
            public_key_fingerprint(line).as_deref(),
            Some("SHA256:3q7ax0w8iaTV/7daN+0TPauwq6Bvh45wq4g4tp5u+ig")
        );
        assert_eq!(public_key_fingerprint("not a key"), None);
        assert_eq!(public_key_fingerprint(""), None);
    }
}
