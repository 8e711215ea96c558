use super::probe::{first_line, run};
use super::result::{CheckResult, Outcome};
use crate::check_id::CheckId;
use crate::console::{BootOutcome, Shell};
use crate::scenario::Autologin;

/// What names the console's user.
pub const WHO_AM_I: &str = "id -un";

/// The serial console reached the expected user's shell with nothing typed at a login prompt.
/// Evidence: getty's own line (`... login: root (automatic login)`) and `id -un`
/// in the shell, which must agree.
pub fn autologin(shell: &mut Shell<'_>, boot: &BootOutcome, expected: &Autologin) -> CheckResult {
    let expected_text = describe(expected);
    let mut evidence = boot.login_evidence.clone();
    let result = |outcome, actual: String, message: String, evidence| CheckResult {
        name: CheckId::Autologin,
        outcome,
        expected: expected_text.clone(),
        actual,
        message,
        evidence,
        secs: 0.0,
    };
    let id = match run(shell, WHO_AM_I) {
        Ok(out) if out.status == 0 => first_line(&out.output),
        Ok(out) => {
            return result(
                Outcome::Broken,
                String::new(),
                format!("`id -un` failed with status {}", out.status),
                evidence,
            )
        }
        Err(e) => return result(Outcome::Broken, String::new(), e.message, e.lines),
    };
    evidence.push(format!("$ id -un → {id}"));
    evidence.extend(login_shell_line(boot));
    let actual = match &boot.autologin_user {
        Some(user) => format!("{user} (automatic login; shell user {id})"),
        None => format!("a shell as {id}, without getty's automatic-login line"),
    };
    match expected {
        Autologin::User(user) if boot.autologin_user.as_deref() == Some(user.as_str()) && &id == user => {
            result(Outcome::Pass, actual, format!("the serial console logged in {user} automatically"), evidence)
        }
        Autologin::User(user) => {
            let message = match &boot.autologin_user {
                Some(got) => format!("autologin user mismatch: expected `{user}`, getty logged in `{got}` (shell user `{id}`)"),
                None => format!("the serial console reached a shell as `{id}`, but getty did not report an automatic login of `{user}`"),
            };
            result(Outcome::Fail, actual, message, evidence)
        }
        Autologin::Disabled => {
            result(Outcome::Fail, actual, format!("expected a login prompt on the serial console, but it logged in `{id}` automatically"), evidence)
        }
    }
}

/// The verdict when the serial console stopped at a real login prompt.
pub fn at_login_prompt(
    expected: &Autologin,
    login_line: &str,
    evidence: Vec<String>,
) -> CheckResult {
    let (outcome, message) = match expected {
        Autologin::Disabled => (
            Outcome::Pass,
            "the serial console shows a login prompt, as expected".to_owned(),
        ),
        Autologin::User(_) => (
            Outcome::Fail,
            "login prompt on the serial console, no autologin".to_owned(),
        ),
    };
    CheckResult {
        name: CheckId::Autologin,
        outcome,
        expected: describe(expected),
        actual: format!("a login prompt: `{login_line}`"),
        message,
        evidence,
        secs: 0.0,
    }
}

fn describe(expected: &Autologin) -> String {
    match expected {
        Autologin::User(user) => format!("{user} logged in automatically on the serial console"),
        Autologin::Disabled => "a login prompt on the serial console".into(),
    }
}

/// isotest logged in at the console's prompt with the scenario's credentials:
/// the shell must be that user's. Evidence: `id -un` and the login shell.
pub fn console_login(shell: &mut Shell<'_>, user: &str, boot: &BootOutcome) -> CheckResult {
    let mut result = CheckResult {
        name: CheckId::console_login(user),
        outcome: Outcome::Fail,
        expected: format!("a shell as {user} after logging in at the console's prompt"),
        actual: String::new(),
        message: String::new(),
        evidence: boot.login_evidence.clone(),
        secs: 0.0,
    };
    result.evidence.extend(login_shell_line(boot));
    match run(shell, WHO_AM_I) {
        Ok(out) if out.status == 0 => {
            let id = first_line(&out.output);
            result.evidence.push(format!("$ id -un → {id}"));
            result.actual = format!("a shell as {id}");
            (result.outcome, result.message) = if id == user {
                (
                    Outcome::Pass,
                    format!("logged in as {user} at the console's login prompt"),
                )
            } else {
                (
                    Outcome::Fail,
                    format!(
                        "logged in at the console's prompt as `{user}`, but the shell is `{id}`'s"
                    ),
                )
            };
        }
        Ok(out) => {
            (result.outcome, result.message) = (
                Outcome::Broken,
                format!("`id -un` failed with status {}", out.status),
            )
        }
        Err(e) => (result.outcome, result.message) = (Outcome::Broken, e.message),
    }
    result
}

/// The console login that login(1) refused: its answer is the evidence (the
/// password itself is never echoed).
pub fn console_login_failed(user: &str, answer: &str, evidence: Vec<String>) -> CheckResult {
    CheckResult {
        name: CheckId::console_login(user),
        outcome: Outcome::Fail,
        expected: format!("a shell as {user} after logging in at the console's prompt"),
        actual: answer.to_owned(),
        message: format!("console login as `{user}` failed: {answer}"),
        evidence,
        secs: 0.0,
    }
}

/// The evidence line naming the login shell the console reached, if known.
fn login_shell_line(boot: &BootOutcome) -> Option<String> {
    let program = boot.logged_in.login_shell.as_ref()?;
    Some(format!(
        "login shell: {program} (isotest's checks run in a /bin/sh started from it)"
    ))
}
