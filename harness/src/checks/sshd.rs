use super::probe::{answer, as_root, no_answer, run, NoEvidence};
use super::result::{Check, CheckResult, Found};
use crate::check_id::CheckId;
use crate::console::Shell;
use crate::scenario::{permit_root_login_of_str, yes_no, Sshd};
use crate::ssh;
use std::collections::BTreeSet;
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
pub struct SshdUnits(Result<super::units::Settled, NoEvidence>);

impl SshdUnits {
    /// Whether a start job of sshd's units is queued or running. A guest that
    /// cannot answer is not "starting": the check will say why it is broken.
    pub fn starting(&self) -> bool {
        self.0
            .as_ref()
            .is_ok_and(|settled| !settled.pending.is_empty())
    }
}

/// What the check and its SSH logins read once `sshd.service` is active,
/// for `Shell::prefetch` (see `look`): the ports, `sshd -T`, and for logins
/// the host keys (unless pinned), the hostname and whether each login's
/// user exists.
pub fn look_probes(is_root: bool, expected: &Sshd) -> Vec<String> {
    let mut probes = vec!["ss -ltnH".to_owned(), as_root(is_root, SSHD_T)];
    if !expected.login.is_empty() {
        if expected.host_keys.is_empty() {
            probes.push(super::ssh_login::HOST_KEYS.to_owned());
        }
        probes.push(super::hostname::HOSTNAME.to_owned());
        probes.extend(
            expected
                .login
                .iter()
                .map(|login| super::users::exists_command(&login.user)),
        );
    }
    probes
}

/// What `sshd_units` runs, for `Shell::prefetch`: it only reads the guest.
pub fn sshd_units_probe() -> String {
    super::units::settle_command(&[SERVICE, SOCKET], &UNIT_PROPS, Duration::ZERO)
}

/// Looks once at sshd's units: the sshd check takes what it saw when they
/// have settled, so that it needs no second look.
pub fn sshd_units(shell: &mut Shell<'_>) -> SshdUnits {
    SshdUnits(super::units::settle_units(
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
    let check = Check::new(CheckId::Sshd, expected_text(expected));
    let daemon = match look(shell, is_root, expected, seen) {
        Ok(daemon) => daemon,
        Err(Unjudged::Starting(pending, limit)) => return check.still_starting(&pending, limit),
        Err(Unjudged::Broken(e)) => return check.broken(e),
    };
    if !expected.must_run() {
        return check.verdict(judge_off(expected, &daemon));
    }
    match judge_running(shell, is_root, expected, reach, &daemon) {
        Ok(found) => check.verdict(found),
        Err(e) => check.broken(e),
    }
}

/// What the sshd check expects, in a line.
fn expected_text(expected: &Sshd) -> String {
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
    want.join(", ")
}

/// Why the units could not be judged: a start job that never finished, or
/// a guest that gave no answer.
enum Unjudged {
    Starting(Vec<super::units::Unsettled>, Duration),
    Broken(NoEvidence),
}

/// sshd as the console shows it once its units have settled.
struct Daemon {
    service: UnitState,
    socket: UnitState,
    listening: BTreeSet<u16>,
}

/// Gathers the units' states and the listening ports. The first look
/// (`seen`) is taken when it found nothing pending; one that did, or that
/// got no answer, is asked again (with the wait). With `sshd.service`
/// active, what the check and then the SSH logins read is run together
/// (`Shell::prefetch`): the ports, `sshd -T`, and for logins the hostname,
/// whether each login's user exists and, without pinned keys, the host keys
/// (NixOS makes them before the service starts; with socket activation
/// they come at the first connection, so nothing is run ahead then).
fn look(
    shell: &mut Shell<'_>,
    is_root: bool,
    expected: &Sshd,
    seen: Option<SshdUnits>,
) -> Result<Daemon, Unjudged> {
    // Not judged while either unit's start job is queued or running.
    let limit = super::units::UNIT_TIMEOUT * shell.scale();
    let first = seen.map(|SshdUnits(first)| first);
    let settled = super::units::settled_after(shell, &[SERVICE, SOCKET], &UNIT_PROPS, first, limit)
        .map_err(Unjudged::Broken)?;
    if !settled.pending.is_empty() {
        return Err(Unjudged::Starting(settled.pending, limit));
    }
    let [service, socket] =
        <[UnitState; 2]>::try_from(unit_states(&settled.show, 2)).map_err(|got| {
            Unjudged::Broken(NoEvidence::new(format!(
                "`systemctl show` did not describe both {SERVICE} and {SOCKET} (got {})",
                got.len()
            )))
        })?;
    if service.running() && expected.must_run() {
        shell.prefetch(
            &look_probes(is_root, expected),
            super::probe::COMMAND_TIMEOUT,
        );
    }
    let ss = answer(shell, "ss -ltnH").map_err(Unjudged::Broken)?;
    Ok(Daemon {
        service,
        socket,
        listening: listening_ports(&ss.output),
    })
}

impl Daemon {
    fn mode(&self) -> SshdMode {
        if self.service.running() {
            SshdMode::Service
        } else if self.socket.running() {
            SshdMode::SocketActivated
        } else {
            SshdMode::NotRunning
        }
    }

    /// The units and ports, as found: the start of any verdict on them.
    fn found(&self) -> Found {
        let (service, socket) = (&self.service, &self.socket);
        let actual = match self.mode() {
            SshdMode::Service => format!("{SERVICE} active ({})", service.sub),
            SshdMode::SocketActivated => format!(
                "socket-activated: {SOCKET} active ({}), {SERVICE} {}",
                socket.sub, service.active
            ),
            SshdMode::NotRunning => {
                format!("{SERVICE} {}, {SOCKET} {}", service.active, socket.active)
            }
        };
        Found {
            actual,
            evidence: vec![
                format!("$ systemctl show {SERVICE} → {}", service.describe()),
                format!("$ systemctl show {SOCKET} → {}", socket.describe()),
                format!("$ ss -ltnH → listening on {}", join(&self.listening)),
            ],
            ..Found::default()
        }
    }

    /// The expected ports that something listens on (`listens`) or not.
    fn ports(&self, expected: &Sshd, listens: bool) -> Vec<u16> {
        expected
            .ports()
            .iter()
            .copied()
            .filter(|p| self.listening.contains(p) == listens)
            .collect()
    }
}

/// The verdict when sshd is expected not to run: neither unit active, and
/// nothing on its ports.
fn judge_off(expected: &Sshd, daemon: &Daemon) -> Found {
    let mut found = Found {
        pass: "sshd is not running, as expected".into(),
        ..daemon.found()
    };
    match daemon.mode() {
        SshdMode::Service => found.problems.push(format!(
            "{SERVICE} is active, but sshd is expected not to run"
        )),
        SshdMode::SocketActivated => found.problems.push(format!(
            "{SOCKET} is active (socket activation), but sshd is expected not to run"
        )),
        SshdMode::NotRunning => {}
    }
    let taken = daemon.ports(expected, true);
    if !taken.is_empty() {
        found
            .problems
            .push(format!("something listens on port(s) {}", join(&taken)));
    }
    found
}

/// The verdict when sshd must run: a unit active, its ports listened on,
/// a socket-activated sshd answering, and its settings as expected. A stop
/// at a failed step is a verdict too; only a guest without an answer is
/// no evidence.
fn judge_running(
    shell: &mut Shell<'_>,
    is_root: bool,
    expected: &Sshd,
    reach: &SshdReach,
    daemon: &Daemon,
) -> Result<Found, NoEvidence> {
    let mut found = daemon.found();
    let mode = daemon.mode();
    if mode == SshdMode::NotRunning {
        found.problems.push(format!(
            "{SERVICE} is not active (`{}`), and no {SOCKET} is active (`{}`)",
            daemon.service.active, daemon.socket.active
        ));
        return Ok(found);
    }
    let missing = daemon.ports(expected, false);
    if !missing.is_empty() {
        found
            .problems
            .push(format!("nothing listens on port(s) {}", join(&missing)));
    }
    if mode == SshdMode::SocketActivated {
        match ssh::banner(reach.port, Duration::from_secs(30) * reach.scale) {
            Ok(banner) => found.evidence.push(format!(
                "connected once to start sshd@.service: the server says `{banner}`"
            )),
            Err(e) => {
                found.problems.push(format!(
                    "{SOCKET} is listening, but a connection gets no sshd: {}",
                    crate::error::chain(&e)
                ));
                return Ok(found);
            }
        }
    }
    let settings = match read_settings(shell, is_root)? {
        SshdT::Settings(settings) => settings,
        SshdT::Rejected(problem) => {
            found.problems.push(problem);
            return Ok(found);
        }
    };
    found.evidence.push(settings.evidence());
    found.problems.extend(settings.problems(expected));
    found.actual = format!(
        "{}, listening on {}, {}",
        found.actual,
        join(&daemon.listening),
        settings.describe()
    );
    found.pass = match mode {
        SshdMode::SocketActivated => {
            format!("sshd runs as configured, socket-activated ({SOCKET})")
        }
        _ => format!("sshd runs as configured ({SERVICE})"),
    };
    Ok(found)
}

/// sshd's effective settings that the check judges, from `sshd -T`.
struct Settings {
    root_login: Option<String>,
    password: Option<String>,
}

/// What `sshd -T` said: the settings, or the problem when sshd rejects its
/// configuration (a verdict on the guest).
enum SshdT {
    Settings(Settings),
    Rejected(String),
}

/// Runs `sshd -T`. sshd missing, or sudo refusing, is no evidence: nothing
/// was learned about sshd's settings.
fn read_settings(shell: &mut Shell<'_>, is_root: bool) -> Result<SshdT, NoEvidence> {
    let out = run(shell, &as_root(is_root, SSHD_T))?;
    if out.status == 0 {
        return Ok(SshdT::Settings(Settings::parse(&out.output)));
    }
    if out.status == 127 || (!is_root && out.output.trim_start().starts_with("sudo:")) {
        return Err(no_answer(SSHD_T, &out));
    }
    Ok(SshdT::Rejected(format!(
        "`sshd -T` failed: {}",
        out.output.trim()
    )))
}

impl Settings {
    fn parse(sshd_t: &str) -> Settings {
        let setting = |key: &str| {
            sshd_t
                .lines()
                .find_map(|l| l.strip_prefix(key).and_then(|v| v.strip_prefix(' ')))
                .map(|v| v.trim().to_owned())
        };
        // OpenSSH's old name for the same setting is read as the new one.
        let root_login =
            setting("permitrootlogin").map(|v| permit_root_login_of_str(&v).unwrap_or(v));
        Settings {
            root_login,
            password: setting("passwordauthentication"),
        }
    }

    fn root_login(&self) -> &str {
        self.root_login.as_deref().unwrap_or("?")
    }

    fn password(&self) -> &str {
        self.password.as_deref().unwrap_or("?")
    }

    fn evidence(&self) -> String {
        format!(
            "$ {} → permitrootlogin {}, passwordauthentication {}",
            SSHD_T.trim_end_matches(" 2>&1"),
            self.root_login(),
            self.password()
        )
    }

    fn describe(&self) -> String {
        format!(
            "PermitRootLogin {}, PasswordAuthentication {}",
            self.root_login(),
            self.password()
        )
    }

    fn problems(&self, expected: &Sshd) -> Vec<String> {
        let mut problems = Vec::new();
        if let Some(want) = &expected.permit_root_login {
            if self.root_login.as_deref() != Some(want) {
                problems.push(format!(
                    "PermitRootLogin is `{}`, expected `{want}`",
                    self.root_login()
                ));
            }
        }
        if let Some(want) = expected.password_authentication {
            if self.password.as_deref() != Some(yes_no(want)) {
                problems.push(format!(
                    "PasswordAuthentication is `{}`, expected `{}`",
                    self.password(),
                    yes_no(want)
                ));
            }
        }
        problems
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
