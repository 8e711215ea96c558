use super::probe::{answer, as_root, as_user, run, NoEvidence};
use super::result::{Check, CheckResult, Found};
use crate::check_id::CheckId;
use crate::console::{sh_quote, Shell};
use crate::scenario::{HomeManager, Installed, Package};
use std::collections::BTreeMap;
use std::time::Duration;

/// Home Manager as a NixOS module: once `home-manager-<user>.service` has no
/// job queued or running (`settle_units`), it ran this boot and succeeded, the user's generation link resolves (any layout a Home
/// Manager release makes), each expected program resolves in the user's login
/// shell, each expected package is linked from the generation's `home-path`,
/// and expected files exist. Every probe answers with explicit lines,
/// so a probe that could not run (no `su`, no `sudo`, no `readlink`) is a
/// broken check, never a missing program or file.
pub fn home_manager(
    shell: &mut Shell<'_>,
    is_root: bool,
    user: &str,
    expected: &HomeManager,
) -> CheckResult {
    let unit = unit_name(user);
    let programs = expected.programs();
    let installed = expected.installed();
    let check = Check::new(
        CheckId::home_manager(user),
        expected_text(&unit, &programs, &installed, &expected.files),
    );
    match super::users::user_exists(shell, user) {
        Ok(true) => {}
        Ok(false) => return check.no_such_user(user),
        Err(e) => return check.broken(e),
    }
    // Not judged while its activation is queued or running; the first look
    // is the one run ahead with the other read-only probes (`unit_probe`).
    let limit = super::units::UNIT_TIMEOUT * shell.scale();
    let first = super::units::settle_units(shell, &[&unit], &UNIT_PROPS, Duration::ZERO);
    let settled = super::units::settled_after(shell, &[&unit], &UNIT_PROPS, Some(first), limit);
    let show = match settled {
        Ok(settled) if settled.pending.is_empty() => settled.show,
        Ok(settled) => return check.still_starting(&settled.pending, limit),
        Err(e) => return check.broken(e),
    };
    let mut found = Found {
        pass: format!("Home Manager is active for `{user}`"),
        ..Found::default()
    };
    let (problems, evidence) = (&mut found.problems, &mut found.evidence);
    let state = unit_verdict(shell, is_root, &unit, &show, problems, evidence);
    shell.prefetch(
        &settled_probes(is_root, user, expected),
        super::probe::COMMAND_TIMEOUT,
    );
    found.actual = format!("{unit}: {state}");
    let store = packages_store(&installed);
    let probed = generation(shell, is_root, user, store.as_deref(), problems, evidence).and_then(
        |(generation, listing)| {
            find_programs(shell, is_root, user, &programs, problems, evidence)?;
            // Without a generation there is nothing to look in: that is its own problem.
            if let (Some(generation), Some(store)) = (generation, &store) {
                judge_listing(
                    user,
                    &generation,
                    &listing,
                    &installed,
                    store,
                    problems,
                    evidence,
                )?;
            }
            files(shell, is_root, user, &expected.files, problems, evidence)
        },
    );
    match probed {
        Ok(()) => check.verdict(found),
        Err(e) => check.broken(e),
    }
}

/// The first look at the unit of `user`'s activation, for `Shell::prefetch`
/// with the other read-only probes: the check waits only when it saw the
/// activation queued or running.
pub fn unit_probe(user: &str) -> String {
    super::units::settle_command(&[&unit_name(user)], &UNIT_PROPS, Duration::ZERO)
}

/// What the check reads once the unit has settled (the activation makes the
/// links, programs and files these look at), run together
/// (`Shell::prefetch`): the generation links with what the first one's
/// `home-path` links to, the programs and the files.
pub fn settled_probes(is_root: bool, user: &str, expected: &HomeManager) -> Vec<String> {
    let store = packages_store(&expected.installed());
    let mut probes = vec![as_root_script(
        is_root,
        &generation_probe(user, store.as_deref()),
    )];
    probes.extend(programs_command(is_root, user, &expected.programs()));
    probes.extend(
        expected
            .files
            .iter()
            .map(|file| as_root_script(is_root, &file_probe(user, file))),
    );
    probes
}

/// What the check expects, in a line.
fn expected_text(
    unit: &str,
    programs: &[&str],
    installed: &[&Package],
    files: &[String],
) -> String {
    let mut want = vec![
        format!("{unit} succeeded this boot"),
        "a generation".to_owned(),
    ];
    if !programs.is_empty() {
        want.push(format!("programs {}", programs.join(" ")));
    }
    if !installed.is_empty() {
        let names: Vec<&str> = installed.iter().map(|p| p.name.as_str()).collect();
        want.push(format!("packages {}", names.join(" ")));
    }
    if !files.is_empty() {
        want.push(format!("files {}", files.join(" ")));
    }
    want.join(", ")
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
const UNIT_PROPS: [&str; 8] = [
    "LoadState",
    "ActiveState",
    "SubState",
    "Result",
    "ExecMainStatus",
    "ExecMainStartTimestamp",
    "ExecMainExitTimestamp",
    "RemainAfterExit",
];

/// The unit's verdict from its `systemctl show` (`UNIT_PROPS`). Before Home Manager release-25.05 it was a oneshot with
/// `RemainAfterExit=yes` (active after success); from release-25.05 (PR #5780,
/// issue #7166) it has no RemainAfterExit and is `inactive` after success. So
/// success is `Result=success` with exit status 0, and a start and exit
/// timestamp: systemd's are of this boot, so the activation ran now.
fn unit_verdict(
    shell: &mut Shell<'_>,
    is_root: bool,
    unit: &str,
    show: &str,
    problems: &mut Vec<String>,
    evidence: &mut Vec<String>,
) -> String {
    let prop = |key: &str| {
        show.lines()
            .find_map(|l| l.trim().strip_prefix(key)?.strip_prefix('='))
            .unwrap_or("")
            .trim()
            .to_owned()
    };
    let (load, active, result, status) = (
        prop("LoadState"),
        prop("ActiveState"),
        prop("Result"),
        prop("ExecMainStatus"),
    );
    let (started, exited, remain) = (
        prop("ExecMainStartTimestamp"),
        prop("ExecMainExitTimestamp"),
        prop("RemainAfterExit"),
    );
    let style = if remain == "yes" {
        "RemainAfterExit=yes: Home Manager before 25.05"
    } else {
        "no RemainAfterExit: Home Manager 25.05 and later"
    };
    evidence.push(format!("$ systemctl show {unit} → LoadState={load} ActiveState={active} Result={result} ExecMainStatus={status} ({style})"));
    evidence.push(format!(
        "started {}, exited {}",
        or_never(&started),
        or_never(&exited)
    ));
    if load == "not-found" {
        problems.push(format!("{unit} does not exist"));
    } else if active == "activating" {
        problems.push(format!("{unit} is still running (ActiveState=activating)"));
    } else if result != "success" || status != "0" || active == "failed" {
        problems.push(format!(
            "{unit} failed (ActiveState={active}, Result={result}, exit status {status})"
        ));
        let journal = format!("journalctl -b -u {} --no-pager -o cat -n 8", sh_quote(unit));
        if let Ok(out) = run(shell, &as_root(is_root, &journal)) {
            evidence.extend(out.output.lines().map(|l| format!("journal: {l}")));
        }
    } else if started.is_empty() || exited.is_empty() {
        problems.push(format!(
            "{unit} has not run this boot (no start or exit time)"
        ));
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

/// Runs a probe script as root; its output must end in `END`, or the probe
/// (named `what`) did not finish and the check has no evidence.
fn finished_probe(
    shell: &mut Shell<'_>,
    is_root: bool,
    probe: &str,
    what: &str,
) -> Result<String, NoEvidence> {
    let out = answer(shell, &as_root_script(is_root, probe))?.output;
    if !out.lines().any(|l| l.trim() == "END") {
        return Err(NoEvidence::new(format!(
            "the {what} probe did not finish: {}",
            out.trim()
        )));
    }
    Ok(out)
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

/// A script, as root (`sh -c` through `as_root`).
fn as_root_script(is_root: bool, script: &str) -> String {
    as_root(is_root, &format!("sh -c {}", sh_quote(script)))
}

/// The script that lists the generation links of `user` that resolve
/// (`GEN <link> -> <target>`), then, with the packages' `store`, what the
/// first one's `home-path` links to (`packages_listing`), then `END`: one
/// command, since the listing needs the generation found.
fn generation_probe(user: &str, store: Option<&str>) -> String {
    let links: Vec<String> = GENERATION_LINKS
        .iter()
        .map(|l| format!("\"{l}\""))
        .collect();
    let packages = store.map_or(String::new(), |store| {
        format!("if [ -n \"$g\" ]; then {} fi; ", packages_listing(store))
    });
    format!(
        "command -v readlink >/dev/null || exit 127; u={}; {} g=; \
         for p in {}; do t=$(readlink -e \"$p\") && echo \"GEN $p -> $t\" && g=${{g:-$t}}; done; {packages}echo END",
        sh_quote(user),
        home_of(user),
        links.join(" ")
    )
}

/// Reads the generation links as root: another user's home (root's is 0700 on
/// NixOS) is not readable from the console user's shell. Gives the generation
/// the first link resolves to, and the probe's whole answer (with `store`,
/// the generation's packages too).
fn generation(
    shell: &mut Shell<'_>,
    is_root: bool,
    user: &str,
    store: Option<&str>,
    problems: &mut Vec<String>,
    evidence: &mut Vec<String>,
) -> Result<(Option<String>, String), NoEvidence> {
    let out = finished_probe(shell, is_root, &generation_probe(user, store), "generation")?;
    let found: Vec<&str> = out
        .lines()
        .filter_map(|l| l.trim().strip_prefix("GEN "))
        .collect();
    if found.is_empty() {
        let tried: Vec<String> = GENERATION_LINKS
            .iter()
            .map(|l| l.replace("$h", "~").replace("$u", user))
            .collect();
        problems.push(format!(
            "no Home Manager generation for `{user}`: none of {} resolves",
            tried.join(", ")
        ));
    }
    evidence.extend(found.iter().map(|l| format!("generation: {l}")));
    let generation = found
        .first()
        .and_then(|l| l.split_once(" -> "))
        .map(|(_, target)| target.to_owned());
    Ok((generation, out))
}

/// Programs, as the user's login shell finds them: one FOUND or MISSING line
/// per program, each name quoted (they come from the flake).
fn find_programs(
    shell: &mut Shell<'_>,
    is_root: bool,
    user: &str,
    packages: &[&str],
    problems: &mut Vec<String>,
    evidence: &mut Vec<String>,
) -> Result<(), NoEvidence> {
    let Some(command) = programs_command(is_root, user, packages) else {
        return Ok(());
    };
    let out = answer(shell, &command)?.output;
    let answers: Vec<&str> = out
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("FOUND ") || l.starts_with("MISSING "))
        .collect();
    if answers.len() != packages.len() {
        return Err(NoEvidence::new(format!(
            "could not look up programs in {user}'s login shell: {}",
            out.trim()
        )));
    }
    let missing: Vec<&str> = answers
        .iter()
        .filter_map(|l| l.strip_prefix("MISSING "))
        .collect();
    evidence.extend(
        answers
            .iter()
            .map(|l| format!("command -v (as {user}): {l}")),
    );
    if !missing.is_empty() {
        problems.push(format!(
            "program(s) missing from {user}'s login shell: {}",
            missing.join(", ")
        ));
    }
    Ok(())
}

/// Packages, by what the generation's `home-path` links to. Home Manager's
/// `home-path` is a nixpkgs buildEnv of `home.packages`
/// (nix-community/home-manager modules/home-environment.nix, commit 0006da1:
/// `ln -s ${cfg.path} $out/home-path` in the generation): every link in it
/// points, by its absolute name, into the store path of the package it comes
/// from, to a file or to a whole directory that no other package has
/// (NixOS/nixpkgs pkgs/build-support/buildenv/builder.pl, commit 05924f7). So
/// a package is installed when some link's own target (not what it resolves
/// to) lies in one of its store paths. The generation probe lists, for each
/// store path linked, one file that links to it (`packages_listing`); the
/// judging is `judge_packages`. A
/// package with no file of its own in home-path (all its files are another
/// package's too) is missing: the generation does not install it.
fn judge_listing(
    user: &str,
    generation: &str,
    listing: &str,
    packages: &[&Package],
    store: &str,
    problems: &mut Vec<String>,
    evidence: &mut Vec<String>,
) -> Result<(), NoEvidence> {
    if listing.lines().any(|l| l.trim() == "NOTOOLS") {
        return Err(NoEvidence::new(format!(
            "cannot list what {generation}/home-path links to: the guest lacks find, sed or sort"
        )));
    }
    if listing.lines().any(|l| l.trim() == "NOHOMEPATH") {
        evidence.push(format!("{generation}/home-path does not exist"));
    }
    let judged = judge_packages(packages, &linked(listing), store);
    evidence.extend(judged.found);
    if !judged.missing.is_empty() {
        problems.push(format!(
            "package(s) missing from {user}'s Home Manager generation: {}",
            judged.missing.join(", ")
        ));
    }
    Ok(())
}

/// The part of the generation probe behind `judge_listing`, for the
/// generation in `$g`: `LINK <store path name> <file>` lines (see
/// `linked`), or NOHOMEPATH, or NOTOOLS for a guest without GNU find, sed
/// or sort (the generation's lines stay evidence).
fn packages_listing(store: &str) -> String {
    // find prints each link into the store as `<target>\t<link>`; sed keeps
    // the store path's name (the target's first component after the store
    // directory and its `/`); sort keeps the first link of each store path.
    // GNU tools only, no awk: NixOS has them, and so do the fixtures.
    let sed = format!(
        "s/^.\\{{{}\\}}\\([^/\\t]*\\)[^\\t]*\\t/LINK \\1 /",
        store.len() + 1
    );
    format!(
        "hp=\"$g\"/home-path; if ! {{ command -v find && command -v sed && command -v sort; }} >/dev/null; then echo NOTOOLS; \
         elif [ -d \"$hp\" ]; then find -H \"$hp\" -type l -lname {} -printf '%l\\t%P\\n' | sed {} | sort -u -s -k2,2; \
         else echo NOHOMEPATH; fi;",
        sh_quote(&format!("{store}/*")),
        sh_quote(&sed)
    )
}

/// Where the generation probe looks for `installed` packages: no store, and
/// no listing, when none is expected.
fn packages_store(installed: &[&Package]) -> Option<String> {
    (!installed.is_empty()).then(|| store_dir(installed))
}

/// The store directory the packages' paths are in (`/nix/store` unless the
/// flake's store paths say otherwise).
fn store_dir(packages: &[&Package]) -> String {
    let from_flake = packages.iter().find_map(|p| match &p.installed {
        Some(Installed::StorePaths(paths)) => paths
            .first()
            .and_then(|path| path.rsplit_once('/'))
            .map(|(dir, _)| dir.to_owned()),
        _ => None,
    });
    from_flake
        .filter(|dir| !dir.is_empty())
        .unwrap_or_else(|| "/nix/store".into())
}

/// `LINK <store path name> <file in home-path>` lines: each store path
/// `home-path` links into, with one file that links to it.
fn linked(out: &str) -> BTreeMap<String, String> {
    out.lines()
        .filter_map(|l| l.trim_end_matches('\r').strip_prefix("LINK "))
        .filter_map(|l| l.split_once(' ').or(Some((l, ""))))
        .filter(|(name, _)| !name.is_empty())
        .map(|(name, file)| (name.to_owned(), file.to_owned()))
        .collect()
}

struct Judged {
    /// Evidence: which file of each package `home-path` links to.
    found: Vec<String>,
    /// The names of the packages not linked.
    missing: Vec<String>,
}

/// Each package against the store paths linked from `home-path`: by its own
/// store paths when the flake gave them, else by the store path's name.
fn judge_packages(packages: &[&Package], linked: &BTreeMap<String, String>, store: &str) -> Judged {
    let mut judged = Judged {
        found: Vec::new(),
        missing: Vec::new(),
    };
    for package in packages {
        let hit = match &package.installed {
            Some(Installed::StorePaths(paths)) => paths
                .iter()
                .filter_map(|path| {
                    path.strip_prefix(store)
                        .and_then(|rest| rest.strip_prefix('/'))
                })
                .find_map(|name| linked.get_key_value(name)),
            Some(Installed::Named) => linked
                .iter()
                .find(|(name, _)| store_path_is_named(name, &package.name)),
            None => continue,
        };
        match hit {
            Some((name, file)) => judged.found.push(format!(
                "package {}: home-path/{file} -> {store}/{name}",
                package.name
            )),
            None => judged.missing.push(package.name.clone()),
        }
    }
    judged
}

/// Whether a store path's name (`<hash>-<name>[-<version>][-<output>]`) is
/// the package `name`: the part after the hash, cut where Nix's
/// `builtins.parseDrvName` cuts the version (at the first `-` not followed by
/// a letter), is `name`.
fn store_path_is_named(store_name: &str, name: &str) -> bool {
    let Some((_, rest)) = store_name.split_once('-') else {
        return false;
    };
    let bytes = rest.as_bytes();
    let cut = (0..bytes.len())
        .find(|&i| bytes[i] == b'-' && bytes.get(i + 1).is_some_and(|c| !c.is_ascii_alphabetic()))
        .unwrap_or(bytes.len());
    &rest[..cut] == name
}

/// What looks the programs up in the user's login shell (none for none).
fn programs_command(is_root: bool, user: &str, packages: &[&str]) -> Option<String> {
    if packages.is_empty() {
        return None;
    }
    let names: Vec<String> = packages.iter().map(|p| sh_quote(p)).collect();
    let probe = format!(
        "for p in {}; do if command -v \"$p\" >/dev/null 2>&1; then echo \"FOUND $p $(command -v \"$p\")\"; else echo \"MISSING $p\"; fi; done",
        names.join(" ")
    );
    Some(as_user(is_root, user, &probe))
}

/// The script that says whether `file`, relative to the home of `user`, exists.
fn file_probe(user: &str, file: &str) -> String {
    format!(
        "{} if test -e \"$h\"/{}; then echo PRESENT; else echo ABSENT; fi",
        home_of(user),
        sh_quote(file)
    )
}

/// Sets `h` to the home of `user`, or exits with getent's status (a
/// pipeline into `cut` would have `cut`'s).
fn home_of(user: &str) -> String {
    format!(
        "h=$(getent passwd {}) || exit; h=$(echo \"$h\" | cut -d: -f6);",
        sh_quote(user)
    )
}

/// Each expected file, relative to the home, answered PRESENT or ABSENT.
fn files(
    shell: &mut Shell<'_>,
    is_root: bool,
    user: &str,
    files: &[String],
    problems: &mut Vec<String>,
    evidence: &mut Vec<String>,
) -> Result<(), NoEvidence> {
    for file in files {
        let out = answer(shell, &as_root_script(is_root, &file_probe(user, file)))?.output;
        match out
            .lines()
            .map(str::trim)
            .find(|l| *l == "PRESENT" || *l == "ABSENT")
        {
            Some("PRESENT") => evidence.push(format!("~{user}/{file} exists")),
            Some(_) => problems.push(format!("~{user}/{file} does not exist")),
            None => {
                return Err(NoEvidence::new(format!(
                    "could not look for ~{user}/{file}: {}",
                    out.trim()
                )))
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROBE: &str = "LINK aaa-ripgrep-14.1 bin/rg\r\n\
                         LINK bbb-noto-fonts-2024.01.01 share/fonts\n\
                         LINK ccc-man-pages-6.05 share/man/man1/intro.1.gz\n\
                         LINK ddd-noto-fonts-emoji-2.04 share/fonts/noto/NotoColorEmoji.ttf\n\
                         END\n";

    fn from_flake(name: &str, program: Option<&str>, paths: &[&str]) -> Package {
        Package {
            name: name.into(),
            program: program.map(Into::into),
            installed: Some(Installed::StorePaths(
                paths.iter().map(|p| p.to_string()).collect(),
            )),
        }
    }

    fn by_name(name: &str) -> Package {
        Package {
            name: name.into(),
            program: None,
            installed: Some(Installed::Named),
        }
    }

    #[test]
    fn packages_are_found_by_their_store_paths() {
        let rg = from_flake("ripgrep", Some("rg"), &["/nix/store/aaa-ripgrep-14.1"]);
        // Any of the outputs Home Manager installs will do.
        let fonts = from_flake(
            "noto-fonts",
            None,
            &[
                "/nix/store/zzz-noto-fonts-2024.01.01-doc",
                "/nix/store/bbb-noto-fonts-2024.01.01",
            ],
        );
        let man = from_flake("man-pages", None, &["/nix/store/ccc-man-pages-6.05"]);
        let gone = from_flake("dejavu-fonts", None, &["/nix/store/eee-dejavu-fonts-2.37"]);
        let judged = judge_packages(
            &[&rg, &fonts, &man, &gone],
            &linked(PROBE),
            &store_dir(&[&rg]),
        );
        assert_eq!(judged.missing, ["dejavu-fonts"]);
        assert_eq!(
            judged.found,
            [
                "package ripgrep: home-path/bin/rg -> /nix/store/aaa-ripgrep-14.1",
                "package noto-fonts: home-path/share/fonts -> /nix/store/bbb-noto-fonts-2024.01.01",
                "package man-pages: home-path/share/man/man1/intro.1.gz -> /nix/store/ccc-man-pages-6.05",
            ]
        );
    }

    #[test]
    fn a_store_path_of_another_package_or_store_is_no_evidence() {
        // The same name, another hash: another build, not the flake's package.
        let fonts = from_flake(
            "noto-fonts",
            None,
            &["/nix/store/fff-noto-fonts-2024.01.01"],
        );
        let elsewhere = from_flake("man-pages", None, &["/gnu/store/ccc-man-pages-6.05"]);
        let judged = judge_packages(&[&fonts, &elsewhere], &linked(PROBE), "/nix/store");
        assert_eq!(judged.missing, ["noto-fonts", "man-pages"]);
        assert_eq!(store_dir(&[&elsewhere]), "/gnu/store");
    }

    #[test]
    fn packages_written_by_hand_are_found_by_name() {
        let judged = judge_packages(
            &[
                &by_name("noto-fonts"),
                &by_name("man-pages"),
                &by_name("noto"),
            ],
            &linked(PROBE),
            "/nix/store",
        );
        assert_eq!(judged.missing, ["noto"]);
        assert!(
            judged.found[0].ends_with("-> /nix/store/bbb-noto-fonts-2024.01.01"),
            "{:?}",
            judged.found
        );
        // No home-path: every package is missing.
        assert_eq!(
            judge_packages(
                &[&by_name("man-pages")],
                &linked("NOHOMEPATH\nEND\n"),
                "/nix/store"
            )
            .missing,
            ["man-pages"]
        );
        // A program written by hand is not looked for in home-path.
        assert!(
            judge_packages(&[&Package::program("rg")], &BTreeMap::new(), "/nix/store")
                .missing
                .is_empty()
        );
    }

    /// The generation probe's listing, run by this host's `sh` (GNU find,
    /// sed and sort, as on NixOS) over a home-path laid out as buildEnv
    /// makes one.
    #[test]
    fn the_probe_lists_each_linked_store_path_once() {
        let dir = tempfile::tempdir().unwrap();
        let gen = dir.path().join("generation");
        let hp = dir.path().join("home-manager-path");
        std::fs::create_dir_all(hp.join("bin")).unwrap();
        std::fs::create_dir_all(hp.join("share")).unwrap();
        std::fs::create_dir(&gen).unwrap();
        std::os::unix::fs::symlink(&hp, gen.join("home-path")).unwrap();
        let link =
            |target: &str, name: &str| std::os::unix::fs::symlink(target, hp.join(name)).unwrap();
        link("/nix/store/aaa-ripgrep-14.1/bin/rg", "bin/rg");
        link("/nix/store/bbb-tmux-3.4/bin/tmux", "bin/tmux");
        link("/nix/store/bbb-tmux-3.4/bin/tmux-helper", "bin/tmux-helper");
        link(
            "/nix/store/ccc-noto-fonts-2024.01.01/share/fonts",
            "share/fonts",
        );
        link("/nix/store/ddd-man-pages-6.05/share/man", "share/man");
        link("/etc/not-in-the-store", "share/elsewhere");
        let run = |generation: &std::path::Path| {
            let script = format!(
                "g={}; {} echo END",
                sh_quote(generation.to_str().unwrap()),
                packages_listing("/nix/store")
            );
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(script)
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
            String::from_utf8(out.stdout).unwrap()
        };
        let out = run(&gen);
        let found = linked(&out);
        let names: Vec<&str> = found.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "aaa-ripgrep-14.1",
                "bbb-tmux-3.4",
                "ccc-noto-fonts-2024.01.01",
                "ddd-man-pages-6.05"
            ],
            "{out}"
        );
        assert_eq!(found["ccc-noto-fonts-2024.01.01"], "share/fonts");
        assert!(found["bbb-tmux-3.4"].starts_with("bin/tmux"), "{out}");
        assert!(out.ends_with("END\n"), "{out}");
        assert_eq!(run(&dir.path().join("nowhere")), "NOHOMEPATH\nEND\n");
    }

    #[test]
    fn store_path_names_are_cut_as_parse_drv_name_does() {
        assert!(store_path_is_named(
            "bbb-noto-fonts-2024.01.01",
            "noto-fonts"
        ));
        assert!(!store_path_is_named(
            "ddd-noto-fonts-emoji-2.04",
            "noto-fonts"
        ));
        assert!(store_path_is_named(
            "ddd-noto-fonts-emoji-2.04",
            "noto-fonts-emoji"
        ));
        assert!(store_path_is_named("ggg-coreutils-9.5-man", "coreutils"));
        assert!(store_path_is_named("hhh-hello", "hello"));
        assert!(store_path_is_named("iii-python3-3.12.4-env", "python3"));
        assert!(!store_path_is_named("hello", "hello"));
    }

    #[test]
    fn unit_names_are_escaped_like_nixpkgs() {
        assert_eq!(super::unit_name("nixos"), "home-manager-nixos.service");
        assert_eq!(
            super::unit_name("jane-doe"),
            "home-manager-jane\\x2ddoe.service"
        );
        assert_eq!(super::unit_name("a.b"), "home-manager-a.b.service");
        assert_eq!(
            super::unit_name(".hidden"),
            "home-manager-\\x2ehidden.service"
        );
    }
}
