use super::probe::{answer, as_user, no_answer, run, NoEvidence};
use super::result::{Check, CheckResult, Found};
use crate::check_id::CheckId;
use crate::console::{sh_quote, Shell};
use crate::scenario::User;

/// The user exists with the expected login shell, home and groups, and
/// passwordless sudo works when expected.
pub fn user(shell: &mut Shell<'_>, is_root: bool, name: &str, expected: &User) -> CheckResult {
    let check = Check::new(CheckId::user(name), expected_text(expected));
    let command = passwd_command(name);
    let passwd = match run(shell, &command) {
        Ok(out) if out.status == 0 => out.output.trim().to_owned(),
        // getent's status 2: the key is not in the database.
        Ok(out) if out.status == GETENT_NOT_FOUND => {
            return check.verdict(Found {
                actual: "no such user".into(),
                problems: vec![format!("user `{name}` does not exist")],
                evidence: vec![format!("$ getent passwd {name} → nothing (status 2)")],
                ..Found::default()
            });
        }
        Ok(out) => return check.broken(no_answer(&command, &out)),
        Err(e) => return check.broken(e),
    };
    let fields: Vec<&str> = passwd.split(':').collect();
    let (home, login_shell) = (
        fields.get(5).copied().unwrap_or(""),
        fields.get(6).copied().unwrap_or(""),
    );
    let groups = match answer(shell, &groups_command(name)) {
        Ok(out) => out
            .output
            .split_whitespace()
            .map(str::to_owned)
            .collect::<Vec<_>>(),
        Err(e) => return check.broken(e),
    };
    let mut found = Found {
        actual: format!(
            "shell {login_shell}, home {home}, groups {}",
            groups.join(",")
        ),
        evidence: vec![
            format!("$ getent passwd {name} → {passwd}"),
            format!("$ id -nG {name} → {}", groups.join(" ")),
        ],
        problems: account_problems(name, expected, login_shell, home, &groups),
        pass: format!("`{name}` is as expected"),
    };
    if expected.sudo_nopasswd {
        if let Err(e) = sudo(shell, is_root, name, &mut found) {
            return check.broken(e);
        }
    }
    check.verdict(found)
}

/// The commands the check of `name` runs, in order, for `Shell::prefetch`:
/// they only read the guest.
pub fn probes(is_root: bool, name: &str, expected: &User) -> Vec<String> {
    let mut probes = vec![passwd_command(name), groups_command(name)];
    if expected.sudo_nopasswd {
        probes.push(sudo_command(is_root, name));
    }
    probes
}

fn passwd_command(name: &str) -> String {
    format!("getent passwd {}", sh_quote(name))
}

fn groups_command(name: &str) -> String {
    format!("id -nG {}", sh_quote(name))
}

fn sudo_command(is_root: bool, name: &str) -> String {
    format!("{} 2>&1", as_user(is_root, name, "sudo -n true"))
}

/// What the scenario expects of a user, in a line.
fn expected_text(expected: &User) -> String {
    let mut wanted = Vec::new();
    if let Some(s) = &expected.shell {
        wanted.push(format!("shell {s}"));
    }
    if let Some(h) = &expected.home {
        wanted.push(format!("home {h}"));
    }
    if !expected.groups.is_empty() {
        wanted.push(format!("groups {}", expected.groups.join(",")));
    }
    if expected.sudo_nopasswd {
        wanted.push("sudo without password".into());
    }
    if wanted.is_empty() {
        "exists".to_owned()
    } else {
        format!("exists, {}", wanted.join(", "))
    }
}

/// What is wrong with a user's login shell, home and groups.
fn account_problems(
    name: &str,
    expected: &User,
    login_shell: &str,
    home: &str,
    groups: &[String],
) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some(want) = &expected.shell {
        let matches = if want.contains('/') {
            login_shell == want
        } else {
            login_shell.rsplit('/').next() == Some(want)
        };
        if !matches {
            problems.push(format!(
                "login shell of `{name}` is `{login_shell}`, expected `{want}`"
            ));
        }
    }
    if let Some(want) = &expected.home {
        if home != want {
            problems.push(format!("home of `{name}` is `{home}`, expected `{want}`"));
        }
    }
    let missing: Vec<_> = expected
        .groups
        .iter()
        .filter(|g| !groups.contains(g))
        .cloned()
        .collect();
    if !missing.is_empty() {
        problems.push(format!(
            "`{name}` is not in group(s) {}",
            missing.join(", ")
        ));
    }
    problems
}

/// Passwordless sudo as the user: its evidence, and a problem when refused.
fn sudo(
    shell: &mut Shell<'_>,
    is_root: bool,
    name: &str,
    found: &mut Found,
) -> Result<(), NoEvidence> {
    let command = sudo_command(is_root, name);
    let out = run(shell, &command)?;
    match out.status {
        0 => found
            .evidence
            .push(format!("$ sudo -n true (as {name}) → ok")),
        // su or sudo is not there: nothing was learned about the user's rights.
        127 => return Err(no_answer(&command, &out)),
        status => {
            let said = out.output.trim().to_owned();
            found.evidence.push(format!(
                "$ sudo -n true (as {name}) → status {status}: {said}"
            ));
            found
                .problems
                .push(format!("`sudo -n true` as `{name}` failed: {said}"));
        }
    }
    Ok(())
}

/// getent's exit status for a key that is not in the database.
const GETENT_NOT_FOUND: i32 = 2;

/// Whether a user exists; checks that depend on one use it to say "not run".
/// Only getent's own answers count: 0 (found) and 2 (not found).
/// Without an answer the dependent check is broken; the message alone says
/// why (no console lines).
pub fn user_exists(shell: &mut Shell<'_>, name: &str) -> Result<bool, NoEvidence> {
    let command = exists_command(name);
    let out = run(shell, &command).map_err(|e| NoEvidence::new(e.message))?;
    match out.status {
        0 => Ok(true),
        GETENT_NOT_FOUND => Ok(false),
        _ => Err(NoEvidence::new(no_answer(&command, &out).message)),
    }
}

/// What `user_exists` runs: the account's line, as the user check reads it
/// (one command for both when they run together), though only its status counts.
pub fn exists_command(name: &str) -> String {
    passwd_command(name)
}
