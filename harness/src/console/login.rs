//! From the login prompt to a POSIX shell of isotest's own: past getty's
//! automatic login or, with credentials, through login(1), then out of
//! whatever login shell the user has (bash, zsh, fish, elvish, nushell,
//! tcsh...) into a `/bin/sh` that every check and step runs in.

use super::serial::{ConsoleError, SerialConsole};
use crate::ssh::Secret;
use regex::bytes::Regex;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A user and password to type at a console login prompt.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub user: String,
    /// None: a user that login(1) lets in without a password.
    pub password: Option<Secret>,
}

/// How the console was logged into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedIn {
    /// The user isotest logged in with its credentials (None: getty's
    /// automatic login, or a shell that was there already).
    pub by_isotest: Option<String>,
    /// The login shell's program (`/proc/PID/exe`, e.g. `/usr/bin/fish`), when
    /// the guest could say.
    pub login_shell: Option<String>,
}

/// Why the login reached no shell. The answers to credentials are the
/// words a console login failure gives (`BootError::LoginFailed`).
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// Typed at a real login prompt, the probe was taken as a user name:
    /// login asked for a password (no autologin, no credentials).
    #[error("login asked for a password: no automatic login, and no credentials to type")]
    PasswordAsked { at: usize },
    /// login(1) refused the credentials ("Login incorrect"); the console's
    /// lines around its answer (the password is never echoed).
    #[error("login refused the password (`Login incorrect`)")]
    Refused { user: String, evidence: Vec<String> },
    /// No password prompt after the user name, though a password was given.
    #[error("login did not ask for a password after the user name")]
    NoPasswordPrompt { user: String, evidence: Vec<String> },
    /// The line that starts isotest's /bin/sh got no answer.
    #[error("no answer to `/bin/sh -c ...` typed {tries} time(s) in {waited} s")]
    NoPosixShell {
        tries: u32,
        waited: u64,
        lines: Vec<String>,
    },
    #[error(transparent)]
    Console(#[from] ConsoleError),
}

struct Patterns {
    automatic: Regex,
    password_prompt: Regex,
    refused: Regex,
    asked: Regex,
}

fn patterns() -> &'static Patterns {
    static P: OnceLock<Patterns> = OnceLock::new();
    P.get_or_init(|| {
        let re = |p: &str| Regex::new(p).expect("static pattern");
        Patterns {
            // agetty's line after an automatic login: `rescue login: root (automatic login)`.
            automatic: re(r"\(automatic login\)"),
            password_prompt: re(r"(?m)^[^\n]*[Pp]assword: ?$"),
            // login(1) (util-linux, shadow) after a wrong password.
            refused: re(r"Login incorrect[^\n]*"),
            // What login(1) answers when the probe was typed at a real prompt. (Not a
            // second `login:` prompt: the motd's "Last login: ..." looks like one.)
            asked: re(r"(?m)^Password: ?|Login incorrect"),
        }
    })
}

/// How long getty may take to follow its `login: ` with the automatically
/// logged-in user's name (it writes them in separate reads at times).
const AUTOMATIC_LINE: Duration = Duration::from_secs(2);
/// How long login(1) may take to ask for the password.
const PASSWORD_PROMPT: Duration = Duration::from_secs(20);
/// How long the console stays quiet once a session has drawn its prompt.
const SESSION_QUIET: Duration = Duration::from_secs(1);
/// How long the shell has to answer Ctrl-C, and the quiet that ends its answer.
const INTERRUPT_ANSWER: Duration = Duration::from_secs(2);
const INTERRUPT_QUIET: Duration = Duration::from_millis(300);

/// From a login prompt (`prompt`: getty's `<host> login: `; `rest_of_line`:
/// what followed it on its line) to isotest's /bin/sh. With `credentials` and
/// no automatic login, logs in with them first. `scale` stretches the waits
/// (TCG); `patience` bounds the wait for the shell.
pub fn reach_shell(
    console: &mut SerialConsole,
    prompt: &str,
    rest_of_line: &str,
    credentials: Option<&Credentials>,
    scale: u32,
    patience: Duration,
) -> Result<LoggedIn, LoginError> {
    let p = patterns();
    let mut by_isotest = None;
    if let Some(credentials) = credentials {
        let automatic = p.automatic.is_match(rest_of_line.as_bytes())
            || console
                .expect(
                    &[&p.automatic],
                    AUTOMATIC_LINE * scale,
                    "getty's automatic login",
                )
                .is_ok();
        if !automatic {
            log_in(console, credentials, scale)?;
            by_isotest = Some(credentials.user.clone());
        }
    }
    let login_shell = start_posix_shell(
        console,
        prompt,
        nonce(),
        scale,
        patience,
        by_isotest.as_deref(),
    )?;
    Ok(LoggedIn {
        by_isotest,
        login_shell,
    })
}

/// Types the user name and, when login(1) asks, the password. Whether they
/// were right shows when the shell answers (`start_posix_shell`).
fn log_in(
    console: &mut SerialConsole,
    credentials: &Credentials,
    scale: u32,
) -> Result<(), LoginError> {
    let p = patterns();
    console.send(format!("{}\r", credentials.user).as_bytes())?;
    let Some(password) = &credentials.password else {
        return Ok(());
    };
    match console.expect(
        &[&p.password_prompt],
        PASSWORD_PROMPT * scale,
        "login's password prompt",
    ) {
        Ok(_) => {}
        Err(ConsoleError::Timeout { last_lines, .. }) => {
            return Err(LoginError::NoPasswordPrompt {
                user: credentials.user.clone(),
                evidence: last_lines,
            })
        }
        Err(e) => return Err(e.into()),
    }
    // Never traced or logged: only the guest sees it, and login does not echo it.
    console.send_secret(format!("{}\r", password.expose()).as_bytes())?;
    // What is typed while login(1) starts the session may be discarded in
    // part (its terminal set-up flushes input), leaving half a line: the
    // probe waits until the session's banner and prompt are out and the
    // console is quiet (or login refused, which the probe then reads).
    match console.wait_quiet(
        SESSION_QUIET * scale,
        PASSWORD_PROMPT * scale,
        "the session after the password",
    ) {
        Ok(()) | Err(ConsoleError::Timeout { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Types `probe_line` until the /bin/sh it starts answers; returns the login
/// shell's program. At a real prompt (`prompt`), the line is a user name:
/// login asks for its password, or getty refuses the name and prompts again
/// (agetty does, silently). After a console login, login(1)'s refusal ends it.
fn start_posix_shell(
    console: &mut SerialConsole,
    prompt: &str,
    nonce: u32,
    scale: u32,
    patience: Duration,
    logging_in: Option<&str>,
) -> Result<Option<String>, LoginError> {
    let p = patterns();
    let answer = Regex::new(&format!(
        "ISOTEST_READY_{}:([^\r\n]*)\r?\n",
        u64::from(nonce) * 7
    ))
    .expect("answer pattern");
    // The prompt again, as getty writes it: at the start of a line and
    // whole (the motd's "Last login: ..." is not it).
    let prompt = prompt.trim();
    let prompt_again = (!prompt.is_empty())
        .then(|| Regex::new(&format!("(?m)^{} ", regex::escape(prompt))).expect("prompt pattern"));
    let started = Instant::now();
    let deadline = started + patience;
    let mut tries = 0;
    loop {
        // Retry now and then: characters typed while getty hands over to the
        // shell can be flushed away, all or some: Ctrl-C first drops what a
        // cut line left (an open quote would swallow every later try). (A
        // second line that reaches the POSIX shell only starts another one.)
        if tries > 0 {
            interrupt(console, scale)?;
        }
        console.send(format!("{}\r", probe_line(nonce)).as_bytes())?;
        tries += 1;
        let wait = (Duration::from_secs(5) * scale)
            .min(deadline.saturating_duration_since(Instant::now()));
        let unwanted = if logging_in.is_some() {
            &p.refused
        } else {
            &p.asked
        };
        let mut patterns = vec![&answer, unwanted];
        patterns.extend(prompt_again.as_ref());
        match console.expect(&patterns, wait, "a shell on the serial console") {
            Ok(m) if m.index == 0 => return Ok(login_shell_of(&m.text)),
            Ok(m) => {
                return Err(match logging_in {
                    Some(user) => LoginError::Refused {
                        user: user.to_owned(),
                        evidence: console.lines_around(m.start),
                    },
                    None => LoginError::PasswordAsked { at: m.start },
                })
            }
            Err(ConsoleError::Timeout { .. }) if Instant::now() < deadline => continue,
            Err(ConsoleError::Timeout { last_lines, .. }) => {
                return Err(LoginError::NoPosixShell {
                    tries,
                    waited: started.elapsed().as_secs(),
                    lines: last_lines,
                })
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Ctrl-C, then a wait for the shell's answer to it (the echoed `^C`, a new
/// prompt) to be over: a shell resets its terminal when interrupted and may
/// discard what was typed meanwhile, e.g. the first characters of the next try.
fn interrupt(console: &mut SerialConsole, scale: u32) -> Result<(), LoginError> {
    let mark = console.raw_position();
    console.send(b"\x03")?;
    let answered = console.wait_raw(INTERRUPT_ANSWER * scale, "the answer to Ctrl-C", |raw| {
        raw.len() > mark
    });
    let settled = answered.and_then(|()| {
        console.wait_quiet(
            INTERRUPT_QUIET * scale,
            INTERRUPT_ANSWER * scale,
            "the shell after Ctrl-C",
        )
    });
    match settled {
        // A shell that says nothing to Ctrl-C is typed at all the same.
        Ok(()) | Err(ConsoleError::Timeout { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The line typed at the login shell to get a POSIX shell of isotest's own:
/// one external command with one single-quoted argument, which bash, zsh,
/// fish, elvish, xonsh, nushell, tcsh and mksh all parse the same way (no
/// `\`, `'` or `!` inside: fish and tcsh give those a meaning even there).
/// The child /bin/sh prints the answer, which only it can compute, with the
/// login shell's program (its parent), then becomes the interactive shell
/// that every check runs in. `$ENV` stays: an interactive sh reads it, as
/// the owner configured.
pub(crate) fn probe_line(nonce: u32) -> String {
    format!("/bin/sh -c 'echo ISOTEST_READY_$(({nonce} * 7)):$(readlink /proc/$PPID/exe); exec /bin/sh'")
}

/// `ISOTEST_READY_123:/usr/bin/fish` → `/usr/bin/fish`; unknown when
/// `readlink` said nothing.
fn login_shell_of(answer: &str) -> Option<String> {
    let program = answer.trim_end().split_once(':')?.1.trim();
    (!program.is_empty()).then(|| program.to_owned())
}

/// 32 bits no guest program knows in advance (see `shell::nonce`).
fn nonce() -> u32 {
    super::shell::nonce() as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::local::LocalShell;

    /// Each login shell NixOS packages that this host has, on a terminal as
    /// on a console: the probe line starts /bin/sh from it, the answer names
    /// the login shell, and commands then run in /bin/sh with exact output.
    #[test]
    fn a_posix_shell_from_any_login_shell() {
        let mut tried = Vec::new();
        for name in ["bash", "zsh", "fish", "elvish", "tcsh", "mksh", "dash"] {
            let Some(program) = ["/usr/bin", "/bin"]
                .iter()
                .map(|d| std::path::Path::new(d).join(name))
                .find(|p| p.exists())
            else {
                continue;
            };
            let mut local = LocalShell::on_terminal(&program);
            let got = reach_shell(local.console(), "", "", None, 1, Duration::from_secs(20));
            let want = std::fs::canonicalize(&program).expect("canonical path");
            let login = got.unwrap_or_else(|e| panic!("{name}: {e:?}"));
            assert_eq!(
                login,
                LoggedIn {
                    by_isotest: None,
                    login_shell: Some(want.display().to_string())
                },
                "{name}"
            );
            let mut shell = local.shell();
            let out = shell.run("echo $((6 * 7)) \"$0\"; test \"$(readlink /proc/$$/exe)\" = \"$(readlink -f /bin/sh)\"", Duration::from_secs(20));
            let out = out.unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(
                (out.output.split_whitespace().next(), out.status),
                (Some("42"), 0),
                "{name}: {out:?}"
            );
            tried.push(name);
        }
        assert!(tried.contains(&"bash"), "no shell tried: {tried:?}");
        eprintln!("login shells tried: {tried:?}");
    }

    /// A getty and login(1) as a script on a terminal: the prompt, then a
    /// password (with echo off before its prompt, as PAM's conversation
    /// does) for any name, or only for `root` when `refuse` (agetty refuses
    /// some names silently, prompting again), then a shell for the right
    /// password (whose start eats the first 12 characters typed within
    /// 0.5 s, as a session's terminal set-up can flush a line half typed)
    /// and login's refusal for a wrong one.
    fn getty(refuse: bool) -> (LocalShell, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("tempdir");
        let script = dir.path().join("getty");
        let refused = if refuse {
            "[ \"$n\" = root ] || continue"
        } else {
            ":"
        };
        let text = format!(
            "#!/bin/bash\nwhile :; do\n  printf '\\nrescue login: '\n  read -r n\n  {refused}\n  stty -echo; printf 'Password: '\n  read -r p; stty echo\n  \
             echo\n  if [ \"$n:$p\" = root:secret ]; then read -r -t 0.5 -N 12 _; exec /bin/bash; fi\n  \
             sleep 0.2; echo 'Login incorrect'\ndone\n"
        );
        on_terminal(&script, &text, dir)
    }

    /// `text` as the program `path` on a terminal of its own.
    fn on_terminal(
        path: &std::path::Path,
        text: &str,
        dir: tempfile::TempDir,
    ) -> (LocalShell, tempfile::TempDir) {
        std::fs::write(path, text).expect("script");
        std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
        (LocalShell::on_terminal(path), dir)
    }

    /// A login shell whose start eats the first characters typed (as a
    /// getty's hand-over can): the first try leaves an open quote, and the
    /// next try must clear it (Ctrl-C) to reach /bin/sh.
    #[test]
    fn a_cut_first_try_is_cleared_before_the_next() {
        let dir = tempfile::tempdir().expect("tempdir");
        let script = dir.path().join("shell");
        let (mut local, _dir) = on_terminal(
            &script,
            "#!/bin/bash\nread -r -N 12 _\nexec /bin/bash\n",
            dir,
        );
        let got = reach_shell(local.console(), "", "", None, 1, Duration::from_secs(20));
        assert_eq!(
            got.expect("a shell"),
            LoggedIn {
                by_isotest: None,
                login_shell: Some(bash())
            }
        );
    }

    /// Where /bin/bash really is: the login shell a shell names by its
    /// `/proc/<pid>/exe`.
    fn bash() -> String {
        std::fs::canonicalize("/bin/bash")
            .unwrap()
            .display()
            .to_string()
    }

    /// Waits for the getty script's first prompt; returns what matched.
    fn at_prompt(local: &mut LocalShell) -> String {
        let prompt = Regex::new("login: ").unwrap();
        local
            .console()
            .expect(&[&prompt], Duration::from_secs(10), "the prompt")
            .expect("prompt")
            .text
    }

    fn credentials(password: &str) -> Credentials {
        Credentials {
            user: "root".into(),
            password: Some(Secret::new(password.into())),
        }
    }

    /// At a real prompt, without credentials: the probe becomes a user name,
    /// and both a password prompt and getty's silent refusal say so.
    #[test]
    fn a_real_prompt_without_credentials_is_no_autologin() {
        for refuse in [false, true] {
            let (mut local, _dir) = getty(refuse);
            let prompt = at_prompt(&mut local);
            let got = reach_shell(
                local.console(),
                &format!("rescue {prompt}"),
                "",
                None,
                1,
                Duration::from_secs(20),
            );
            assert!(
                matches!(got, Err(LoginError::PasswordAsked { .. })),
                "refuse {refuse}: {got:?}"
            );
        }
    }

    /// With credentials: the right password reaches a shell (and the login
    /// shell is named), a wrong one is login's refusal with its answer.
    #[test]
    fn credentials_log_in_at_the_prompt() {
        let (mut local, _dir) = getty(false);
        at_prompt(&mut local);
        let got = reach_shell(
            local.console(),
            "rescue login: ",
            "",
            Some(&credentials("secret")),
            1,
            Duration::from_secs(20),
        );
        // The session's start discards what is typed meanwhile: the probe
        // waited for it, so one try was enough.
        let end = local.console().position();
        let seen = local.console().text_between(0, end);
        assert_eq!(seen.matches("echo ISOTEST_READY_$((").count(), 1, "{seen}");
        assert_eq!(
            got.expect("logged in"),
            LoggedIn {
                by_isotest: Some("root".into()),
                login_shell: Some(bash())
            }
        );

        let (mut local, _dir) = getty(false);
        at_prompt(&mut local);
        match reach_shell(
            local.console(),
            "rescue login: ",
            "",
            Some(&credentials("wrong")),
            1,
            Duration::from_secs(20),
        ) {
            Err(LoginError::Refused { user, evidence }) => {
                assert_eq!(user, "root");
                assert!(
                    evidence.iter().any(|l| l.contains("Login incorrect")),
                    "{evidence:?}"
                );
                assert!(
                    !evidence.iter().any(|l| l.contains("wrong")),
                    "the password was echoed: {evidence:?}"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    /// A login shell that runs no program (a restricted shell): no answer,
    /// and the error carries what that shell said, not a bare timeout.
    #[test]
    fn a_shell_that_runs_nothing_is_named_by_its_words() {
        let dir = tempfile::tempdir().expect("tempdir");
        let script = dir.path().join("rsh");
        std::fs::write(
            &script,
            "#!/bin/bash\nwhile read -r line; do echo \"rsh: ${line%% *}: restricted\"; done\n",
        )
        .expect("script");
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
        let mut local = LocalShell::on_terminal(&script);
        match reach_shell(local.console(), "", "", None, 1, Duration::from_secs(3)) {
            Err(LoginError::NoPosixShell { tries, lines, .. }) => {
                assert!(tries >= 1);
                assert!(
                    lines.iter().any(|l| l.contains("rsh: /bin/sh: restricted")),
                    "{lines:?}"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn what_login_says() {
        let p = patterns();
        assert!(p.asked.is_match(b"\nPassword: "));
        assert!(p.asked.is_match(b"\nLogin incorrect\n"));
        // A read that ends right after the motd's "Last login: " is not a prompt.
        assert!(!p
            .asked
            .is_match(b"root (automatic login)\nLinux rescue 6.1\nLast login: "));
        assert!(p.password_prompt.is_match(b"root\r\nPassword: "));
        assert!(!p.password_prompt.is_match(b"Password: wrong\r\n"));
        assert!(p.refused.is_match(b"\r\nLogin incorrect\r\nrescue login: "));
        assert!(p.automatic.is_match(b"root (automatic login)"));
    }

    #[test]
    fn the_login_shell_is_read_from_the_answer() {
        assert_eq!(
            login_shell_of("ISOTEST_READY_21:/usr/bin/fish\r\n").as_deref(),
            Some("/usr/bin/fish")
        );
        assert_eq!(login_shell_of("ISOTEST_READY_21:\r\n"), None);
        let line = probe_line(3);
        assert!(
            !line.contains('\\') && !line.contains('!') && line.matches('\'').count() == 2,
            "{line}"
        );
    }
}
