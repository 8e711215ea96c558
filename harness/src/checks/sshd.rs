use super::{answer, as_root, broken, no_answer, run, verdict, CheckResult};
use crate::console::{sh_quote, Shell};
use crate::scenario::{SshLogin, Sshd};
use crate::ssh::{self, Auth, Secret, SshError};
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

/// sshd's units as NixOS names them (nixpkgs nixos/modules/services/networking/ssh/sshd.nix):
/// `sshd.service` runs the daemon; with `services.openssh.startWhenNeeded` there
/// is no `sshd.service` but `sshd.socket` (Accept=yes) and one `sshd@.service`
/// instance per connection.
const SERVICE: &str = "sshd.service";
const SOCKET: &str = "sshd.socket";

/// The configuration NixOS starts sshd with (`sshd -f /etc/ssh/sshd_config` in sshd.nix).
const SSHD_T: &str = "sshd -T -f /etc/ssh/sshd_config 2>&1";

/// A unit's state from `systemctl show`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct UnitState {
    load: String,
    active: String,
    sub: String,
    result: String,
}

impl UnitState {
    fn running(&self) -> bool {
        self.load == "loaded" && self.active == "active"
    }

    fn describe(&self) -> String {
        format!(
            "LoadState={} ActiveState={} SubState={} Result={}",
            self.load, self.active, self.sub, self.result
        )
    }
}

/// How sshd runs, if it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SshdMode {
    Service,
    SocketActivated,
    NotRunning,
}

/// `systemctl show` of several units prints one block of properties per
/// unit, in the order asked, separated by a blank line.
fn unit_states(show: &str, units: usize) -> Vec<UnitState> {
    let mut states = Vec::new();
    for block in show
        .split("\n\n")
        .filter(|b| !b.trim().is_empty())
        .take(units)
    {
        let prop = |key: &str| {
            block
                .lines()
                .find_map(|l| l.trim().strip_prefix(key)?.strip_prefix('='))
                .unwrap_or("")
                .to_owned()
        };
        states.push(UnitState {
            load: prop("LoadState"),
            active: prop("ActiveState"),
            sub: prop("SubState"),
            result: prop("Result"),
        });
    }
    states
}

/// What the sshd check reads of its units in `systemctl show`.
const UNIT_PROPS: [&str; 4] = ["LoadState", "ActiveState", "SubState", "Result"];

/// sshd's units as seen once, without waiting (`sshd_units`): whether they
/// are still starting, and what the sshd check reads when they are not.
pub struct SshdUnits(Result<super::Settled, super::NoEvidence>);

impl SshdUnits {
    /// Whether a start job of sshd's units is queued or running. A guest that
    /// cannot answer is not "starting": the check will say why it is broken.
    pub fn starting(&self) -> bool {
        self.0
            .as_ref()
            .is_ok_and(|settled| !settled.pending.is_empty())
    }
}

/// Looks once at sshd's units: the sshd check takes what it saw when they
/// have settled, so that it needs no second look.
pub fn sshd_units(shell: &mut Shell<'_>) -> SshdUnits {
    SshdUnits(super::settle_units(
        shell,
        &[SERVICE, SOCKET],
        &UNIT_PROPS,
        Duration::ZERO,
    ))
}

/// Where and how the sshd check can reach the guest's sshd from the host.
pub struct SshdReach {
    /// The host port forwarded to the guest's port 22.
    pub port: u16,
    pub scale: u32,
}

/// The sshd units' states, its listening ports and its effective settings, from
/// the console: `systemctl show` of `sshd.service` and `sshd.socket`, `ss -ltnH`,
/// `sshd -T -f /etc/ssh/sshd_config`, once neither unit has a start job queued
/// or running (`settle_units`). Each command must answer (exit status 0),
/// or the check is broken: a guest without `ss` or `systemctl` proves nothing,
/// not even that sshd is off. A socket-activated sshd is connected to once
/// before `sshd -T`, as a client would, because NixOS makes missing host keys
/// when the first connection starts `sshd@.service`. `seen`: the units as
/// `sshd_units` saw them; when they had settled, they are not asked again.
pub fn sshd(
    shell: &mut Shell<'_>,
    is_root: bool,
    expected: &Sshd,
    reach: &SshdReach,
    seen: Option<SshdUnits>,
) -> CheckResult {
    let mut want = vec![if expected.must_run() {
        format!("{SERVICE} active, or {SOCKET} listening (socket activation)")
    } else {
        "sshd not running".to_owned()
    }];
    if expected.must_run() {
        want.push(format!("listening on {}", join(expected.ports())));
    }
    if let Some(v) = &expected.permit_root_login {
        want.push(format!("PermitRootLogin {v}"));
    }
    if let Some(v) = expected.password_authentication {
        want.push(format!("PasswordAuthentication {}", yes_no(v)));
    }
    let expected_text = want.join(", ");
    let name = "sshd".to_owned();

    // Not judged while either unit's start job is queued or running.
    let limit = super::UNIT_TIMEOUT * shell.scale();
    // The first look is taken when it found nothing pending; one that did, or
    // that got no answer, is asked again (with the wait).
    let settled = match seen {
        Some(SshdUnits(Ok(settled))) if settled.pending.is_empty() => Ok(settled),
        _ => super::settle_units(shell, &[SERVICE, SOCKET], &UNIT_PROPS, limit),
    };
    let show = match settled {
        Ok(settled) if settled.pending.is_empty() => settled.show,
        Ok(settled) => {
            let problem = super::unsettled_problem(&settled.pending, limit);
            return verdict(
                name,
                expected_text,
                "still starting".into(),
                vec![problem],
                String::new(),
                Vec::new(),
            );
        }
        Err(e) => return broken(name, expected_text, e),
    };
    let [service, socket] = match <[UnitState; 2]>::try_from(unit_states(&show, 2)) {
        Ok(pair) => pair,
        Err(got) => {
            let message = format!(
                "`systemctl show` did not describe both {SERVICE} and {SOCKET} (got {})",
                got.len()
            );
            return broken(name, expected_text, (message, Vec::new()));
        }
    };
    let listening = match answer(shell, "ss -ltnH") {
        Ok(out) => listening_ports(&out.output),
        Err(e) => return broken(name, expected_text, e),
    };
    let mode = if service.running() {
        SshdMode::Service
    } else if socket.running() {
        SshdMode::SocketActivated
    } else {
        SshdMode::NotRunning
    };
    let mut evidence = vec![
        format!("$ systemctl show {SERVICE} → {}", service.describe()),
        format!("$ systemctl show {SOCKET} → {}", socket.describe()),
        format!("$ ss -ltnH → listening on {}", join(&listening)),
    ];
    let found = match mode {
        SshdMode::Service => format!("{SERVICE} active ({})", service.sub),
        SshdMode::SocketActivated => format!(
            "socket-activated: {SOCKET} active ({}), {SERVICE} {}",
            socket.sub, service.active
        ),
        SshdMode::NotRunning => format!("{SERVICE} {}, {SOCKET} {}", service.active, socket.active),
    };
    let mut problems = Vec::new();
    if !expected.must_run() {
        if mode == SshdMode::Service {
            problems.push(format!(
                "{SERVICE} is active, but sshd is expected not to run"
            ));
        }
        if mode == SshdMode::SocketActivated {
            problems.push(format!(
                "{SOCKET} is active (socket activation), but sshd is expected not to run"
            ));
        }
        let taken: Vec<u16> = expected
            .ports()
            .iter()
            .copied()
            .filter(|p| listening.contains(p))
            .collect();
        if !taken.is_empty() {
            problems.push(format!("something listens on port(s) {}", join(&taken)));
        }
        return verdict(
            name,
            expected_text,
            found,
            problems,
            "sshd is not running, as expected".into(),
            evidence,
        );
    }
    if mode == SshdMode::NotRunning {
        problems.push(format!(
            "{SERVICE} is not active (`{}`), and no {SOCKET} is active (`{}`)",
            service.active, socket.active
        ));
        return verdict(
            name,
            expected_text,
            found,
            problems,
            String::new(),
            evidence,
        );
    }
    let missing: Vec<u16> = expected
        .ports()
        .iter()
        .copied()
        .filter(|p| !listening.contains(p))
        .collect();
    if !missing.is_empty() {
        problems.push(format!("nothing listens on port(s) {}", join(&missing)));
    }
    if mode == SshdMode::SocketActivated {
        match ssh::banner(reach.port, Duration::from_secs(30) * reach.scale) {
            Ok(banner) => evidence.push(format!(
                "connected once to start sshd@.service: the server says `{banner}`"
            )),
            Err(e) => {
                problems.push(format!(
                    "{SOCKET} is listening, but a connection gets no sshd: {e}"
                ));
                return verdict(
                    name,
                    expected_text,
                    found,
                    problems,
                    String::new(),
                    evidence,
                );
            }
        }
    }
    let settings = match run(shell, &as_root(is_root, SSHD_T)) {
        Ok(out) if out.status == 0 => out.output,
        // sshd missing, or sudo refusing: nothing was learned about sshd's settings.
        Ok(out)
            if out.status == 127 || (!is_root && out.output.trim_start().starts_with("sudo:")) =>
        {
            return broken(name, expected_text, no_answer(SSHD_T, &out))
        }
        Ok(out) => {
            problems.push(format!("`sshd -T` failed: {}", out.output.trim()));
            return verdict(
                name,
                expected_text,
                found,
                problems,
                String::new(),
                evidence,
            );
        }
        Err(e) => return broken(name, expected_text, e),
    };
    let setting = |key: &str| {
        settings
            .lines()
            .find_map(|l| l.strip_prefix(key).and_then(|v| v.strip_prefix(' ')))
            .map(|v| v.trim().to_owned())
    };
    let root_login = setting("permitrootlogin").map(|v| {
        if v == "without-password" {
            "prohibit-password".into()
        } else {
            v
        }
    });
    let password = setting("passwordauthentication");
    evidence.push(format!(
        "$ {} → permitrootlogin {}, passwordauthentication {}",
        SSHD_T.trim_end_matches(" 2>&1"),
        root_login.as_deref().unwrap_or("?"),
        password.as_deref().unwrap_or("?")
    ));
    if let Some(want) = &expected.permit_root_login {
        if root_login.as_deref() != Some(want) {
            problems.push(format!(
                "PermitRootLogin is `{}`, expected `{want}`",
                root_login.as_deref().unwrap_or("?")
            ));
        }
    }
    if let Some(want) = expected.password_authentication {
        if password.as_deref() != Some(yes_no(want)) {
            problems.push(format!(
                "PasswordAuthentication is `{}`, expected `{}`",
                password.as_deref().unwrap_or("?"),
                yes_no(want)
            ));
        }
    }
    let actual = format!(
        "{found}, listening on {}, PermitRootLogin {}, PasswordAuthentication {}",
        join(&listening),
        root_login.as_deref().unwrap_or("?"),
        password.as_deref().unwrap_or("?")
    );
    let pass = match mode {
        SshdMode::SocketActivated => {
            format!("sshd runs as configured, socket-activated ({SOCKET})")
        }
        _ => format!("sshd runs as configured ({SERVICE})"),
    };
    verdict(name, expected_text, actual, problems, pass, evidence)
}

fn yes_no(v: bool) -> &'static str {
    if v {
        "yes"
    } else {
        "no"
    }
}

fn join<'a>(ports: impl IntoIterator<Item = &'a u16>) -> String {
    let text = ports
        .into_iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(",");
    if text.is_empty() {
        "nothing".into()
    } else {
        text
    }
}

/// Ports in `ss -ltnH` output (the local address is the 4th column).
fn listening_ports(ss: &str) -> BTreeSet<u16> {
    ss.lines()
        .filter_map(|l| l.split_whitespace().nth(3))
        .filter_map(|addr| addr.rsplit(':').next()?.parse().ok())
        .collect()
}

/// The fingerprints of the guest's SSH host keys, as its console shows them.
/// The loop runs in a subshell so that a missing `ssh-keygen` (127) is its status.
pub fn host_key_fingerprints(shell: &mut Shell<'_>) -> Result<Vec<String>, (String, Vec<String>)> {
    let command = "(for f in /etc/ssh/ssh_host_*_key.pub; do ssh-keygen -lf \"$f\" || exit; done)";
    let out = answer(shell, command)?;
    let prints: Vec<String> = out
        .output
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .filter(|f| f.starts_with("SHA256:"))
        .map(str::to_owned)
        .collect();
    if prints.is_empty() {
        return Err((
            format!(
                "no host key fingerprints on the console: {}",
                out.output.trim()
            ),
            Vec::new(),
        ));
    }
    Ok(prints)
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
    name: String,
    expected: String,
    user: String,
    method: &'static str,
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
    let method = if login.password_env.is_some() {
        "password"
    } else {
        "key"
    };
    let name = login_check_name(login);
    let expected = format!(
        "{method} login as {user}, host key pinned, `id -un` = {user}, hostname {}",
        target.hostname
    );
    // The harness could not even try: broken.
    let no_evidence = |message: String, evidence: Vec<String>| {
        broken(name.clone(), expected.clone(), (message, evidence))
    };
    match super::user_exists(shell, user) {
        Ok(true) => {}
        Ok(false) => {
            return SshLoginStage::Judged(CheckResult::not_run(
                &name,
                &expected,
                &format!("user `{user}` does not exist"),
            ))
        }
        Err(e) => return SshLoginStage::Judged(no_evidence(e, Vec::new())),
    }
    let password = match password_of(login) {
        Ok(password) => password,
        Err(why) => return SshLoginStage::Judged(no_evidence(why, Vec::new())),
    };
    let auth = match password {
        Some(secret) => Auth::Password(secret),
        None => match install_key(shell, is_root, user, target.private_dir) {
            Ok(private) => Auth::Key(private),
            Err((message, evidence)) => {
                return SshLoginStage::Judged(no_evidence(message, evidence))
            }
        },
    };
    SshLoginStage::Ready(Box::new(SshAttempt {
        name,
        expected,
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
            Err(e) => {
                return SshLoginStage::Judged(
                    self.judged(self.fail(e.to_string(), Vec::new()), secs(&self)),
                )
            }
        };
        let (out, status) = match session.exec("id -un; cat /proc/sys/kernel/hostname") {
            Ok(r) => r,
            Err(e) => {
                let result = broken(
                    self.name.clone(),
                    self.expected.clone(),
                    (e.to_string(), Vec::new()),
                );
                return SshLoginStage::Judged(self.judged(result, secs(&self)));
            }
        };
        let mut lines = out.lines().map(str::trim);
        let (id, host) = (lines.next().unwrap_or(""), lines.next().unwrap_or(""));
        let pinned = if self.pins.is_some() {
            "pinned"
        } else {
            "not pinned: no console shell showed the host keys"
        };
        let evidence = vec![
            format!("host key {} ({pinned})", session.host_key),
            format!("over SSH: id -un → {id}, hostname → {host}"),
        ];
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
        let actual = format!("logged in as {id} on {host}");
        let pass = format!("{} login as {} works", self.method, self.user);
        let result = verdict(
            self.name.clone(),
            self.expected.clone(),
            actual,
            problems,
            pass,
            evidence,
        );
        SshLoginStage::Judged(self.judged(result, secs(&self)))
    }

    fn fail(&self, message: String, evidence: Vec<String>) -> CheckResult {
        verdict(
            self.name.clone(),
            self.expected.clone(),
            String::new(),
            vec![message],
            String::new(),
            evidence,
        )
    }

    fn judged(&self, mut result: CheckResult, secs: f64) -> CheckResult {
        result.secs = secs;
        result
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
            SshLoginStage::Ready(a) => broken(
                a.name.clone(),
                a.expected.clone(),
                ("the login was never tried".into(), Vec::new()),
            ),
            SshLoginStage::NoBanner {
                attempt,
                error,
                secs,
            } => attempt.judged(attempt.fail(error.to_string(), no_banner()), secs),
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
    let name = login_check_name(login);
    let user = &login.user;
    let expected = match hostname {
        Some(h) => format!("password login as {user}, `id -un` = {user}, hostname {h}"),
        None => format!("password login as {user}, `id -un` = {user}"),
    };
    let password = match password_of(login) {
        Ok(Some(password)) => password,
        Ok(None) => {
            let why = format!("{why}; a key login needs the console shell to install its key");
            return CheckResult::not_run(&name, "", &why);
        }
        Err(why) => return broken(name, expected, (why, Vec::new())),
    };
    let attempt = SshAttempt {
        name,
        expected,
        user: user.clone(),
        method: "password",
        auth: Auth::Password(password),
        port,
        pins: None,
        hostname: hostname.map(|h| (h.to_owned(), "the scenario expects")),
        patience: Duration::from_secs(30) * scale,
        secs: 0.0,
    };
    SshLoginStage::Ready(Box::new(attempt)).verdict(Vec::new)
}

/// The password of a login, from the environment variable the scenario
/// names (None: the login has none); an unset variable is the error.
pub fn password_of(login: &SshLogin) -> Result<Option<Secret>, String> {
    let Some(var) = &login.password_env else {
        return Ok(None);
    };
    match std::env::var(var) {
        Ok(value) => Ok(Some(Secret::new(value))),
        Err(_) => Err(format!(
            "environment variable {var} (the password of {}) is not set",
            login.user
        )),
    }
}

/// `ssh login root (key)`, `ssh login nixos (password)`.
pub fn login_check_name(login: &SshLogin) -> String {
    format!(
        "ssh login {} ({})",
        login.user,
        if login.password_env.is_some() {
            "password"
        } else {
            "key"
        }
    )
}

/// Puts a throwaway public key in the user's authorized_keys through the console.
fn install_key(
    shell: &mut Shell<'_>,
    is_root: bool,
    user: &str,
    dir: &Path,
) -> Result<std::path::PathBuf, (String, Vec<String>)> {
    let (private, public) = ssh::throwaway_key(dir).map_err(|e| (e, Vec::new()))?;
    let q = sh_quote(user);
    let command = format!(
        "h=$(getent passwd {q} | cut -d: -f6) && g=$(id -g {q}) && install -d -m 700 -o {q} -g \"$g\" \"$h/.ssh\" \
         && printf '%s\\n' {} >> \"$h/.ssh/authorized_keys\" && chown {q}:\"$g\" \"$h/.ssh/authorized_keys\" \
         && chmod 600 \"$h/.ssh/authorized_keys\"",
        sh_quote(&public)
    );
    match run(shell, &as_root(is_root, &command)) {
        Ok(out) if out.status == 0 => Ok(private),
        Ok(out) => Err((
            format!("could not install a key for `{user}` through the console"),
            out.output.lines().map(str::to_owned).collect(),
        )),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn units_from_systemctl_show() {
        let show = "LoadState=not-found\nActiveState=inactive\nSubState=dead\nResult=success\n\nLoadState=loaded\nActiveState=active\nSubState=listening\nResult=success\n";
        let states = super::unit_states(show, 2);
        assert_eq!(states.len(), 2);
        assert!(!states[0].running());
        assert_eq!(states[0].load, "not-found");
        assert!(states[1].running());
        assert_eq!(states[1].sub, "listening");
    }

    #[test]
    fn ports_from_ss() {
        let ss = "LISTEN 0 128 0.0.0.0:22 0.0.0.0:*\nLISTEN 0 128 [::]:22 [::]:*\nLISTEN 0 4096 127.0.0.53%lo:53 0.0.0.0:*\n";
        assert_eq!(
            super::listening_ports(ss).into_iter().collect::<Vec<_>>(),
            vec![22, 53]
        );
    }
}
