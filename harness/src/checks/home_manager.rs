use super::{as_root, broken, run, verdict, CheckResult};
use crate::console::{sh_quote, Shell};
use crate::scenario::HomeManager;

/// Home Manager as a NixOS module: `home-manager-<user>.service` succeeded, the
/// user's generation link resolves (either layout), each expected program
/// resolves in the user's login shell, and expected files exist.
pub fn home_manager(shell: &mut Shell<'_>, is_root: bool, user: &str, expected: &HomeManager) -> CheckResult {
    let check = format!("home-manager {user}");
    let unit = format!("home-manager-{user}.service");
    let mut want = vec![format!("{unit} succeeded"), "a generation".to_owned()];
    if !expected.packages.is_empty() {
        want.push(format!("programs {}", expected.packages.join(" ")));
    }
    if !expected.files.is_empty() {
        want.push(format!("files {}", expected.files.join(" ")));
    }
    let expected_text = want.join(", ");
    match super::user_exists(shell, user) {
        Ok(true) => {}
        Ok(false) => return CheckResult::not_run(&check, &expected_text, &format!("user `{user}` does not exist")),
        Err(e) => return broken(check, expected_text, (e, Vec::new())),
    }
    let q = sh_quote(user);
    let mut problems = Vec::new();
    let mut evidence = Vec::new();

    // The unit: a oneshot that stays active once it succeeded.
    let show = match run(shell, &format!("systemctl show -p LoadState -p ActiveState -p Result -p ExecMainStatus {unit}")) {
        Ok(out) => out.output,
        Err(e) => return broken(check, expected_text, e),
    };
    let prop = |key: &str| show.lines().find_map(|l| l.strip_prefix(&format!("{key}="))).unwrap_or("").trim().to_owned();
    let (load, active, result, status) = (prop("LoadState"), prop("ActiveState"), prop("Result"), prop("ExecMainStatus"));
    evidence.push(format!("$ systemctl show {unit} → LoadState={load} ActiveState={active} Result={result} ExecMainStatus={status}"));
    if load == "not-found" {
        problems.push(format!("{unit} does not exist"));
    } else if result != "success" || active != "active" {
        problems.push(format!("{unit} failed (ActiveState={active}, Result={result}, exit status {status})"));
        if let Ok(out) = run(shell, &as_root(is_root, &format!("journalctl -b -u {unit} --no-pager -o cat -n 8"))) {
            evidence.extend(out.output.lines().map(|l| format!("journal: {l}")));
        }
    }

    // The generation: newer Home Manager links it under ~/.local/state, older
    // under /nix/var/nix/profiles/per-user.
    let generation = format!(
        "h=$(getent passwd {q} | cut -d: -f6); readlink -e \"$h/.local/state/home-manager/gcroots/current-home\" \
         || readlink -e /nix/var/nix/profiles/per-user/{q}/home-manager"
    );
    match run(shell, &generation) {
        Ok(out) if out.status == 0 => evidence.push(format!("generation: {}", out.output.trim())),
        Ok(_) => problems.push(format!(
            "no Home Manager generation for `{user}`: neither ~/.local/state/home-manager/gcroots/current-home \
             nor /nix/var/nix/profiles/per-user/{user}/home-manager resolves"
        )),
        Err(e) => return broken(check, expected_text, e),
    }

    // Programs, as the user's login shell finds them.
    if !expected.packages.is_empty() {
        let probe = format!(
            "for p in {}; do if command -v \"$p\" >/dev/null 2>&1; then echo \"FOUND $p $(command -v \"$p\")\"; else echo \"MISSING $p\"; fi; done",
            expected.packages.join(" ")
        );
        let command = as_root(is_root, &format!("su - {q} -c {}", sh_quote(&probe)));
        let out = match run(shell, &command) {
            Ok(out) => out.output,
            Err(e) => return broken(check, expected_text, e),
        };
        let answers: Vec<&str> = out.lines().map(str::trim).filter(|l| l.starts_with("FOUND ") || l.starts_with("MISSING ")).collect();
        let missing: Vec<&str> = answers.iter().filter_map(|l| l.strip_prefix("MISSING ")).collect();
        evidence.extend(answers.iter().map(|l| format!("command -v (as {user}): {l}")));
        if !missing.is_empty() {
            problems.push(format!("program(s) missing from {user}'s login shell: {}", missing.join(", ")));
        } else if answers.len() != expected.packages.len() {
            problems.push(format!("could not look up programs in {user}'s login shell: {}", out.trim()));
        }
    }

    for file in &expected.files {
        let command = format!("h=$(getent passwd {q} | cut -d: -f6); test -e \"$h\"/{}", sh_quote(file));
        match run(shell, &as_root(is_root, &command)) {
            Ok(out) if out.status == 0 => evidence.push(format!("~{user}/{file} exists")),
            Ok(_) => problems.push(format!("~{user}/{file} does not exist")),
            Err(e) => return broken(check, expected_text, e),
        }
    }
    let actual = format!("{unit}: {active}/{result}");
    verdict(check, expected_text, actual, problems, format!("Home Manager is active for `{user}`"), evidence)
}
