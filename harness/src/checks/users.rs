use super::{answer, as_user, broken, no_answer, run, verdict, CheckResult};
use crate::console::{sh_quote, Shell};
use crate::scenario::User;

/// The user exists with the expected login shell, home and groups, and
/// passwordless sudo works when expected.
pub fn user(shell: &mut Shell<'_>, is_root: bool, name: &str, expected: &User) -> CheckResult {
    let check = format!("user {name}");
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
    let expected_text = if wanted.is_empty() {
        "exists".to_owned()
    } else {
        format!("exists, {}", wanted.join(", "))
    };
    let q = sh_quote(name);
    let command = format!("getent passwd {q}");
    let passwd = match run(shell, &command) {
        Ok(out) if out.status == 0 => out.output.trim().to_owned(),
        // getent's status 2: the key is not in the database.
        Ok(out) if out.status == GETENT_NOT_FOUND => {
            return verdict(
                check,
                expected_text,
                "no such user".into(),
                vec![format!("user `{name}` does not exist")],
                String::new(),
                vec![format!("$ getent passwd {name} → nothing (status 2)")],
            );
        }
        Ok(out) => return broken(check, expected_text, no_answer(&command, &out)),
        Err(e) => return broken(check, expected_text, e),
    };
    let fields: Vec<&str> = passwd.split(':').collect();
    let (home, login_shell) = (
        fields.get(5).copied().unwrap_or(""),
        fields.get(6).copied().unwrap_or(""),
    );
    let groups = match answer(shell, &format!("id -nG {q}")) {
        Ok(out) => out
            .output
            .split_whitespace()
            .map(str::to_owned)
            .collect::<Vec<_>>(),
        Err(e) => return broken(check, expected_text, e),
    };
    let mut evidence = vec![
        format!("$ getent passwd {name} → {passwd}"),
        format!("$ id -nG {name} → {}", groups.join(" ")),
    ];
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
    if expected.sudo_nopasswd {
        let command = format!("{} 2>&1", as_user(is_root, name, "sudo -n true"));
        match run(shell, &command) {
            Ok(out) if out.status == 0 => evidence.push(format!("$ sudo -n true (as {name}) → ok")),
            // su or sudo is not there: nothing was learned about the user's rights.
            Ok(out) if out.status == 127 => {
                return broken(check, expected_text, no_answer(&command, &out))
            }
            Ok(out) => {
                let said = out.output.trim().to_owned();
                evidence.push(format!(
                    "$ sudo -n true (as {name}) → status {}: {said}",
                    out.status
                ));
                problems.push(format!("`sudo -n true` as `{name}` failed: {said}"));
            }
            Err(e) => return broken(check, expected_text, e),
        }
    }
    let actual = format!(
        "shell {login_shell}, home {home}, groups {}",
        groups.join(",")
    );
    verdict(
        check,
        expected_text,
        actual,
        problems,
        format!("`{name}` is as expected"),
        evidence,
    )
}

/// getent's exit status for a key that is not in the database.
const GETENT_NOT_FOUND: i32 = 2;

/// Whether a user exists; checks that depend on one use it to say "not run".
/// Only getent's own answers count: 0 (found) and 2 (not found).
pub fn user_exists(shell: &mut Shell<'_>, name: &str) -> Result<bool, String> {
    let command = format!("getent passwd {} >/dev/null", sh_quote(name));
    match run(shell, &command) {
        Ok(out) if out.status == 0 => Ok(true),
        Ok(out) if out.status == GETENT_NOT_FOUND => Ok(false),
        Ok(out) => Err(no_answer(&command, &out).0),
        Err((message, _)) => Err(message),
    }
}
