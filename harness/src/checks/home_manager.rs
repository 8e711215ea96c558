use super::{answer, as_root, as_user, broken, run, verdict, CheckResult, NoEvidence};
use crate::console::{sh_quote, Shell};
use crate::scenario::HomeManager;

/// Home Manager as a NixOS module: once `home-manager-<user>.service` has no
/// job queued or running (`settle_units`), it ran this boot and succeeded, the user's generation link resolves (any layout a Home
/// Manager release makes), each expected program resolves in the user's login
/// shell, and expected files exist. Every probe answers with explicit lines,
/// so a probe that could not run (no `su`, no `sudo`, no `readlink`) is a
/// broken check, never a missing program or file.
pub fn home_manager(shell: &mut Shell<'_>, is_root: bool, user: &str, expected: &HomeManager) -> CheckResult {
    let check = format!("home-manager {user}");
    let unit = unit_name(user);
    let mut want = vec![format!("{unit} succeeded this boot"), "a generation".to_owned()];
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
    // Not judged while its activation is queued or running.
    let limit = super::UNIT_TIMEOUT * shell.scale();
    let show = match super::settle_units(shell, &[&unit], &UNIT_PROPS, limit) {
        Ok(settled) if settled.pending.is_empty() => settled.show,
        Ok(settled) => {
            let problem = super::unsettled_problem(&settled.pending, limit);
            return verdict(check, expected_text, "still starting".into(), vec![problem], String::new(), Vec::new());
        }
        Err(e) => return broken(check, expected_text, e),
    };
    let mut problems = Vec::new();
    let mut evidence = Vec::new();
    let state = unit_verdict(shell, is_root, &unit, &show, &mut problems, &mut evidence);
    if let Err(e) = generation(shell, is_root, user, &mut problems, &mut evidence) {
        return broken(check, expected_text, e);
    }
    if let Err(e) = programs(shell, is_root, user, &expected.packages, &mut problems, &mut evidence) {
        return broken(check, expected_text, e);
    }
    if let Err(e) = files(shell, is_root, user, &expected.files, &mut problems, &mut evidence) {
        return broken(check, expected_text, e);
    }
    let actual = format!("{unit}: {state}");
    verdict(check, expected_text, actual, problems, format!("Home Manager is active for `{user}`"), evidence)
}

/// `home-manager-<user>.service`, the user name escaped as nixpkgs'
/// `utils.escapeSystemdPath` does (Home Manager's nixos/default.nix names the
/// unit with it): nixos/lib/utils.nix escapes with `escapeSystemdString`,
/// which turns each of ` !"#$%&'()*+,;<=>@[\]^`{|}~-` into `\xNN`, a leading
/// `.` into `\x2e`, and `/` into `-`.
pub fn unit_name(user: &str) -> String {
    const SPECIAL: &str = " !\"#$%&'()*+,;<=>@[\\]^`{|}~-";
    let mut escaped = String::new();
    for (i, c) in user.trim_matches('/').chars().enumerate() {
        match c {
            '/' => escaped.push('-'),
            '.' if i == 0 => escaped.push_str("\\x2e"),
            c if SPECIAL.contains(c) => escaped.push_str(&format!("\\x{:02x}", c as u32)),
            c => escaped.push(c),
        }
    }
    format!("home-manager-{escaped}.service")
}

/// What the unit's verdict reads in `systemctl show`.
const UNIT_PROPS: [&str; 8] =
    ["LoadState", "ActiveState", "SubState", "Result", "ExecMainStatus", "ExecMainStartTimestamp", "ExecMainExitTimestamp", "RemainAfterExit"];

/// The unit's verdict from its `systemctl show` (`UNIT_PROPS`). Before Home Manager release-25.05 it was a oneshot with
/// `RemainAfterExit=yes` (active after success); from release-25.05 (PR #5780,
/// issue #7166) it has no RemainAfterExit and is `inactive` after success. So
/// success is `Result=success` with exit status 0, and a start and exit
/// timestamp: systemd's are of this boot, so the activation ran now.
fn unit_verdict(shell: &mut Shell<'_>, is_root: bool, unit: &str, show: &str, problems: &mut Vec<String>, evidence: &mut Vec<String>) -> String {
    let prop = |key: &str| show.lines().find_map(|l| l.trim().strip_prefix(key)?.strip_prefix('=')).unwrap_or("").trim().to_owned();
    let (load, active, result, status) = (prop("LoadState"), prop("ActiveState"), prop("Result"), prop("ExecMainStatus"));
    let (started, exited, remain) = (prop("ExecMainStartTimestamp"), prop("ExecMainExitTimestamp"), prop("RemainAfterExit"));
    let style = if remain == "yes" {
        "RemainAfterExit=yes: Home Manager before 25.05"
    } else {
        "no RemainAfterExit: Home Manager 25.05 and later"
    };
    evidence.push(format!("$ systemctl show {unit} → LoadState={load} ActiveState={active} Result={result} ExecMainStatus={status} ({style})"));
    evidence.push(format!("started {}, exited {}", or_never(&started), or_never(&exited)));
    if load == "not-found" {
        problems.push(format!("{unit} does not exist"));
    } else if active == "activating" {
        problems.push(format!("{unit} is still running (ActiveState=activating)"));
    } else if result != "success" || status != "0" || active == "failed" {
        problems.push(format!("{unit} failed (ActiveState={active}, Result={result}, exit status {status})"));
        let journal = format!("journalctl -b -u {} --no-pager -o cat -n 8", sh_quote(unit));
        if let Ok(out) = run(shell, &as_root(is_root, &journal)) {
            evidence.extend(out.output.lines().map(|l| format!("journal: {l}")));
        }
    } else if started.is_empty() || exited.is_empty() {
        problems.push(format!("{unit} has not run this boot (no start or exit time)"));
    }
    format!("{active}/{result}, exit status {status}")
}

fn or_never(timestamp: &str) -> &str {
    if timestamp.is_empty() {
        "never"
    } else {
        timestamp
    }
}

/// The generation links Home Manager's activation makes, newest layout first
/// (nix-community/home-manager modules/lib-bash/activation-init.sh):
/// - the profile `~/.local/state/nix/profiles/home-manager` when that directory
///   exists (Nix 2.14 and later), else `/nix/var/nix/profiles/per-user/<user>/home-manager`;
/// - the gcroot `~/.local/state/home-manager/gcroots/current-home`, written only
///   with legacy profile management (`home-manager.enableLegacyProfileManagement`);
/// - releases before the XDG state directory: the gcroot
///   `/nix/var/nix/gcroots/per-user/<user>/current-home`.
const GENERATION_LINKS: [&str; 4] = [
    "$h/.local/state/nix/profiles/home-manager",
    "$h/.local/state/home-manager/gcroots/current-home",
    "/nix/var/nix/profiles/per-user/$u/home-manager",
    "/nix/var/nix/gcroots/per-user/$u/current-home",
];

/// Reads the generation links as root: another user's home (root's is 0700 on
/// NixOS) is not readable from the console user's shell.
fn generation(shell: &mut Shell<'_>, is_root: bool, user: &str, problems: &mut Vec<String>, evidence: &mut Vec<String>) -> Result<(), NoEvidence> {
    let links: Vec<String> = GENERATION_LINKS.iter().map(|l| format!("\"{l}\"")).collect();
    let probe = format!(
        "command -v readlink >/dev/null || exit 127; u={}; h=$(getent passwd \"$u\" | cut -d: -f6) || exit; \
         for p in {}; do t=$(readlink -e \"$p\") && echo \"GEN $p -> $t\"; done; echo END",
        sh_quote(user),
        links.join(" ")
    );
    let out = answer(shell, &as_root(is_root, &format!("sh -c {}", sh_quote(&probe))))?.output;
    if !out.lines().any(|l| l.trim() == "END") {
        return Err((format!("the generation probe did not finish: {}", out.trim()), Vec::new()));
    }
    let found: Vec<&str> = out.lines().filter_map(|l| l.trim().strip_prefix("GEN ")).collect();
    if found.is_empty() {
        let tried: Vec<String> = GENERATION_LINKS.iter().map(|l| l.replace("$h", "~").replace("$u", user)).collect();
        problems.push(format!("no Home Manager generation for `{user}`: none of {} resolves", tried.join(", ")));
    }
    evidence.extend(found.iter().map(|l| format!("generation: {l}")));
    Ok(())
}

/// Programs, as the user's login shell finds them: one FOUND or MISSING line
/// per program, each name quoted (they come from the flake).
fn programs(shell: &mut Shell<'_>, is_root: bool, user: &str, packages: &[String], problems: &mut Vec<String>, evidence: &mut Vec<String>) -> Result<(), NoEvidence> {
    if packages.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = packages.iter().map(|p| sh_quote(p)).collect();
    let probe = format!(
        "for p in {}; do if command -v \"$p\" >/dev/null 2>&1; then echo \"FOUND $p $(command -v \"$p\")\"; else echo \"MISSING $p\"; fi; done",
        names.join(" ")
    );
    let out = answer(shell, &as_user(is_root, user, &probe))?.output;
    let answers: Vec<&str> = out.lines().map(str::trim).filter(|l| l.starts_with("FOUND ") || l.starts_with("MISSING ")).collect();
    if answers.len() != packages.len() {
        return Err((format!("could not look up programs in {user}'s login shell: {}", out.trim()), Vec::new()));
    }
    let missing: Vec<&str> = answers.iter().filter_map(|l| l.strip_prefix("MISSING ")).collect();
    evidence.extend(answers.iter().map(|l| format!("command -v (as {user}): {l}")));
    if !missing.is_empty() {
        problems.push(format!("program(s) missing from {user}'s login shell: {}", missing.join(", ")));
    }
    Ok(())
}

/// Each expected file, relative to the home, answered PRESENT or ABSENT.
fn files(shell: &mut Shell<'_>, is_root: bool, user: &str, files: &[String], problems: &mut Vec<String>, evidence: &mut Vec<String>) -> Result<(), NoEvidence> {
    for file in files {
        let probe = format!(
            "h=$(getent passwd {} | cut -d: -f6) || exit; if test -e \"$h\"/{}; then echo PRESENT; else echo ABSENT; fi",
            sh_quote(user),
            sh_quote(file)
        );
        let out = answer(shell, &as_root(is_root, &format!("sh -c {}", sh_quote(&probe))))?.output;
        match out.lines().map(str::trim).find(|l| *l == "PRESENT" || *l == "ABSENT") {
            Some("PRESENT") => evidence.push(format!("~{user}/{file} exists")),
            Some(_) => problems.push(format!("~{user}/{file} does not exist")),
            None => return Err((format!("could not look for ~{user}/{file}: {}", out.trim()), Vec::new())),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn unit_names_are_escaped_like_nixpkgs() {
        assert_eq!(super::unit_name("nixos"), "home-manager-nixos.service");
        assert_eq!(super::unit_name("jane-doe"), "home-manager-jane\\x2ddoe.service");
        assert_eq!(super::unit_name("a.b"), "home-manager-a.b.service");
        assert_eq!(super::unit_name(".hidden"), "home-manager-\\x2ehidden.service");
    }
}
