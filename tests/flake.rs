//! The fixture flake through the real `nix`: discovery, derived expectations, and
//! every error a flake can give, each with its message. No guest boots here.

mod support;

use isotest::flake::{self, FlakeError};
use isotest::platform::Arch;
use isotest::scenario::{Autologin, Installed, Scenario};
use libtest_mimic::{Arguments, Failed, Trial};
use std::path::{Path, PathBuf};
use support::ensure;

fn main() {
    // Set before any test thread starts.
    std::env::set_var("NIX_CONFIG", support::nix_config());
    // Relative flake references are read against the working directory, as a
    // user's shell at the repository's root would have it.
    std::env::set_current_dir(support::repo()).expect("cd to the repository");
    let tests = vec![
        Trial::test(
            "reference::a_directory_as_people_write_it",
            a_directory_as_people_write_it,
        ),
        Trial::test(
            "reference::isotest_flake_takes_a_directory_too",
            isotest_flake_takes_a_directory_too,
        ),
        Trial::test(
            "reference::a_missing_directory_is_said_once",
            a_missing_directory_is_said_once,
        ),
        Trial::test("derived::rescue", derived_rescue),
        Trial::test("derived::minimal", derived_minimal),
        Trial::test(
            "derived::outputs_home_manager_installs",
            outputs_home_manager_installs,
        ),
        Trial::test("errors::flake_not_found", flake_not_found),
        Trial::test("errors::host_not_in_hosts_iso", host_not_in_hosts_iso),
        Trial::test("errors::conflicting_definitions", conflicting_definitions),
        Trial::test("errors::build_failure_shows_the_log_tail", build_failure),
        Trial::test("errors::another_system", another_system),
    ];
    libtest_mimic::run(&Arguments::from_args(), tests).exit();
}

/// A copy of the fixture flake that a test may change.
fn flake_copy() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let copy = dir.path().join("flake");
    let ok = std::process::Command::new("cp")
        .arg("-r")
        .arg(support::repo().join("fixtures/flake"))
        .arg(&copy)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "cannot copy the fixture flake");
    (dir, copy)
}

fn path_ref(dir: &Path) -> String {
    format!("path:{}", dir.display())
}

fn derived_rescue() -> Result<(), Failed> {
    let e = flake::derive_expectations(&support::fixture_flake(), Arch::X86_64, "rescue")?;
    ensure(
        e.hostname.as_deref() == Some("rescue"),
        format!("hostname {:?}", e.hostname),
    )?;
    ensure(
        e.autologin == Some(Autologin::User("root".into())),
        format!("autologin {:?}", e.autologin),
    )?;
    let sshd = e.sshd.as_ref().ok_or("no sshd expectation")?;
    ensure(
        sshd.must_run() && sshd.ports() == [22],
        format!("sshd {sshd:?}"),
    )?;
    ensure(
        sshd.permit_root_login.as_deref() == Some("yes"),
        format!("PermitRootLogin {sshd:?}"),
    )?;
    ensure(
        sshd.login.len() == 1 && sshd.login[0].user == "root",
        format!("logins {:?}", sshd.login),
    )?;
    let users: Vec<&String> = e.users.keys().collect();
    ensure(users == ["nixos", "root"], format!("users {users:?}"))?;
    let nixos = &e.users["nixos"];
    ensure(
        nixos.shell.as_deref() == Some("zsh") && nixos.groups == ["wheel"] && nixos.sudo_nopasswd,
        format!("nixos {nixos:?}"),
    )?;
    let root_hm = e.users["root"]
        .home_manager
        .as_ref()
        .ok_or("no Home Manager for root")?;
    // Programs are the packages with meta.mainProgram: tmux, and ripgrep's `rg`.
    ensure(
        root_hm.programs() == ["tmux", "rg"],
        format!("root's programs {:?}", root_hm.programs()),
    )?;
    // Every package, the font and the man pages too, is looked for by its store
    // path: the package's outPath as nix computes it (buildEnv's default output).
    let installed: Vec<(&str, &Installed)> = root_hm
        .installed()
        .iter()
        .filter_map(|p| Some((p.name.as_str(), p.installed.as_ref()?)))
        .collect();
    let names: Vec<&str> = installed.iter().map(|(name, _)| *name).collect();
    ensure(
        names == ["tmux", "ripgrep", "noto-fonts", "man-pages"],
        format!("root's packages {names:?}"),
    )?;
    for ((name, how), version) in installed.iter().zip([
        "tmux-3.3a",
        "ripgrep-13.0.0",
        "noto-fonts-2024.01.01",
        "man-pages-6.05.01",
    ]) {
        let Installed::StorePaths(paths) = how else {
            return Err(format!("{name}: {how:?}").into());
        };
        let want = out_path(&format!(
            "(import ./fixtures/flake/lib/pkgs.nix \"x86_64-linux\").{name}"
        ))?;
        ensure(
            paths == std::slice::from_ref(&want)
                && want.starts_with("/nix/store/")
                && want.ends_with(version),
            format!("{name}: {paths:?}, nix says {want}"),
        )?;
    }
    ensure(
        root_hm
            .packages
            .iter()
            .find(|p| p.name == "noto-fonts")
            .is_some_and(|p| p.program.is_none()),
        "noto-fonts is a program",
    )?;
    ensure(
        root_hm.files == [".config/isotest/hm.conf"],
        format!("root's files {:?}", root_hm.files),
    )?;
    // jq has neither pname nor mainProgram: no program, its name without the version.
    let nixos_hm = nixos
        .home_manager
        .as_ref()
        .ok_or("no Home Manager for nixos")?;
    ensure(
        nixos_hm.programs().is_empty(),
        format!("nixos's programs {:?}", nixos_hm.programs()),
    )?;
    let jq: Vec<&str> = nixos_hm
        .installed()
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    ensure(jq == ["jq"], format!("nixos's packages {jq:?}"))?;
    Ok(())
}

/// The store paths looked for are the outputs buildEnv installs:
/// `meta.outputsToInstall` (unless one output was chosen), plus each of Home
/// Manager's `home.extraOutputsToInstall` the package has. A string in
/// `home.packages` stays a program name.
fn outputs_home_manager_installs() -> Result<(), Failed> {
    let (_dir, copy) = flake_copy();
    let host = copy.join("hosts/iso/outputs");
    std::fs::create_dir_all(host.join("users"))?;
    std::fs::write(host.join("default.nix"), "{ ... }: { }\n")?;
    std::fs::write(
        host.join("users/alice.nix"),
        r#"{ ... }:
let
  drv = derivation { name = "coreutils-9.5"; system = "x86_64-linux"; builder = "/bin/sh"; outputs = [ "out" "man" "info" ]; };
  coreutils = drv // { pname = "coreutils"; meta.outputsToInstall = [ "out" "man" ]; };
  manOnly = drv.man // { pname = "coreutils"; outputSpecified = true; meta.outputsToInstall = [ "out" "man" ]; };
in
{
  home.extraOutputsToInstall = [ "info" "doc" ];
  home.packages = [ coreutils manOnly "hello" ];
}
"#,
    )?;
    let e = flake::derive_expectations(&path_ref(&copy), Arch::X86_64, "outputs")?;
    let hm = e
        .users
        .get("alice")
        .and_then(|u| u.home_manager.as_ref())
        .ok_or("no Home Manager for alice")?;
    let paths = |i: usize| match &hm.packages[i].installed {
        Some(Installed::StorePaths(p)) => p
            .iter()
            .map(|p| p.rsplit('-').next().unwrap_or("").to_owned())
            .collect::<Vec<_>>(),
        other => vec![format!("{other:?}")],
    };
    ensure(
        hm.packages.len() == 3,
        format!("packages {:?}", hm.packages),
    )?;
    // By the ends of their store paths: `…-coreutils-9.5` is `out`.
    ensure(
        paths(0) == ["9.5", "man", "info"],
        format!("coreutils: {:?}", paths(0)),
    )?;
    ensure(
        paths(1) == ["man", "info"],
        format!("coreutils.man: {:?}", paths(1)),
    )?;
    ensure(
        hm.packages[2].installed.is_none() && hm.programs() == ["hello"],
        format!("a string: {:?}", hm.packages[2]),
    )?;
    Ok(())
}

/// What `nix eval` says a package's outPath is, asked apart from isotest's
/// own selection.
fn out_path(expr: &str) -> Result<String, Failed> {
    let out = std::process::Command::new("nix")
        .args([
            "eval",
            "--raw",
            "--impure",
            "--expr",
            &format!("({expr}).outPath"),
        ])
        .output()?;
    ensure(
        out.status.success(),
        format!("nix eval {expr}: {}", String::from_utf8_lossy(&out.stderr)),
    )?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn derived_minimal() -> Result<(), Failed> {
    let e = flake::derive_expectations(&support::fixture_flake(), Arch::X86_64, "minimal")?;
    ensure(
        e.hostname.as_deref() == Some("minimal"),
        format!("hostname {:?}", e.hostname),
    )?;
    ensure(
        e.autologin == Some(Autologin::User("nixos".into())),
        format!("autologin {:?}", e.autologin),
    )?;
    let sshd = e.sshd.as_ref().ok_or("no sshd expectation")?;
    ensure(
        !sshd.must_run() && sshd.login.is_empty(),
        format!("sshd {sshd:?}"),
    )?;
    ensure(
        e.users.values().all(|u| u.home_manager.is_none()),
        "Home Manager expected on minimal",
    )?;
    ensure(
        e.users["nixos"].shell.as_deref() == Some("bash"),
        format!("nixos {:?}", e.users["nixos"]),
    )?;
    Ok(())
}

/// `fixtures/flake` is the directory, not a name for nix's flake registry (which
/// nix would try to download).
fn a_directory_as_people_write_it() -> Result<(), Failed> {
    let absolute = support::repo()
        .join("fixtures/flake")
        .canonicalize()?
        .display()
        .to_string();
    for written in ["fixtures/flake", "./fixtures/flake", "fixtures/flake/"] {
        ensure(
            flake::reference(written) == absolute,
            format!("{written} became {}", flake::reference(written)),
        )?;
        let hosts = flake::iso_hosts(written).map_err(|e| format!("{written}: {e}"))?;
        let names: Vec<&str> = hosts.iter().map(|h| h.name.as_str()).collect();
        ensure(
            names == ["minimal", "rescue"],
            format!("{written}: hosts {names:?}"),
        )?;
    }
    Ok(())
}

/// A local flake that is not there stops the run before any trial, said once
/// (exit 2), naming where it came from.
fn a_missing_directory_is_said_once() -> Result<(), Failed> {
    let zero_config = Scenario::parse(Path::new("rescue.yaml"), "iso: rescue\n")?;
    let err = flake::check_flakes([&zero_config, &zero_config], Some("fixtures/flak"))
        .unwrap_err()
        .to_string();
    let want = format!(
        "flake not found: {}/fixtures/flak (from --flake): no such directory",
        support::repo().canonicalize()?.display()
    );
    ensure(err == want, &err)?;
    let out = support::isotest_command()
        .args([
            "run",
            "--flake",
            "fixtures/flak",
            "--iso",
            "rescue",
            "--artifacts",
        ])
        .arg(support::artifacts().join("flake-missing-dir"))
        .output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure(
        out.status.code() == Some(2),
        format!("exit {:?}:\n{stderr}", out.status.code()),
    )?;
    ensure(
        stderr.matches(&want).count() == 1,
        format!("not said once:\n{stderr}"),
    )?;
    Ok(())
}

/// `$ISOTEST_FLAKE` is read like --flake. The host does not exist, so the run
/// stops at the flake, having read its hosts, before any boot.
fn isotest_flake_takes_a_directory_too() -> Result<(), Failed> {
    let out = support::isotest_command()
        .env("ISOTEST_FLAKE", "fixtures/flake")
        .args([
            "run",
            "--iso",
            "nohost",
            "--filter",
            "x86_64::bios",
            "--artifacts",
        ])
        .arg(support::artifacts().join("flake-env-relative"))
        .output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let absolute = support::repo().join("fixtures/flake").canonicalize()?;
    let want = format!(
        "no ISO host `nohost` in {}: hosts/iso has minimal, rescue",
        absolute.display()
    );
    ensure(
        stderr.contains(&want),
        format!("expected `{want}` in:\n{stderr}"),
    )?;
    ensure(
        !stderr.contains("flake-registry"),
        format!("nix looked in the registry:\n{stderr}"),
    )?;
    Ok(())
}

fn flake_not_found() -> Result<(), Failed> {
    let err = flake::build_iso("/nonexistent/flake", Arch::X86_64, "rescue")
        .unwrap_err()
        .to_string();
    ensure(
        err == "flake not found: /nonexistent/flake: no such directory",
        &err,
    )?;
    Ok(())
}

fn host_not_in_hosts_iso() -> Result<(), Failed> {
    let err = flake::derive_expectations(&support::fixture_flake(), Arch::X86_64, "resuce")
        .unwrap_err()
        .to_string();
    let want = format!(
        "no ISO host `resuce` in {}: hosts/iso has minimal, rescue",
        support::fixture_flake()
    );
    ensure(err == want, &err)?;
    Ok(())
}

/// A host that sets another autologin user without mkForce, as on NixOS.
fn conflicting_definitions() -> Result<(), Failed> {
    let (_dir, copy) = flake_copy();
    std::fs::write(
        copy.join("hosts/iso/conflict.nix"),
        "{ ... }: { services.getty.autologinUser = \"root\"; }\n",
    )?;
    let err = flake::derive_expectations(&path_ref(&copy), Arch::X86_64, "conflict").unwrap_err();
    ensure(
        matches!(err, FlakeError::Eval { .. }),
        format!("not an evaluation error: {err:?}"),
    )?;
    let text = err.to_string();
    ensure(text.starts_with("evaluating path:"), &text)?;
    ensure(
        text.contains(
            "error: The option `services.getty.autologinUser' has conflicting definition values:",
        ),
        &text,
    )?;
    ensure(
        text.contains("lib/installation-device.nix': \"nixos\"")
            && text.contains("hosts/iso/conflict.nix': \"root\""),
        &text,
    )?;
    ensure(text.contains("Use `lib.mkForce value`"), &text)?;
    ensure(
        !text.contains("--show-trace"),
        format!("the trace hint was kept: {text}"),
    )?;
    Ok(())
}

/// A configuration with no fixture ISO built: the package's builder fails, and the
/// error carries the end of its log.
fn build_failure() -> Result<(), Failed> {
    let (_dir, copy) = flake_copy();
    let host = copy.join("hosts/iso/minimal.nix");
    let text = std::fs::read_to_string(&host)?;
    std::fs::write(
        &host,
        text.replace("{\n", "{\n  networking.hostName = \"never-built\";\n"),
    )?;
    let err = flake::build_iso(&path_ref(&copy), Arch::X86_64, "minimal").unwrap_err();
    ensure(
        matches!(err, FlakeError::Build { .. }),
        format!("not a build failure: {err:?}"),
    )?;
    let text = err.to_string();
    ensure(
        text.contains("#packages.x86_64-linux.minimal failed:"),
        &text,
    )?;
    ensure(text.contains("failed with exit code 1"), &text)?;
    ensure(
        text.contains("isotest fixture: no ISO for this configuration of 'minimal'"),
        &text,
    )?;
    Ok(())
}

/// A package that must build on aarch64-linux, asked for on x86_64. (The fixture's
/// own packages build on x86_64 for both targets; this copy builds natively.)
fn another_system() -> Result<(), Failed> {
    if Arch::host() != Some(Arch::X86_64) {
        return Ok(()); // an aarch64 host builds aarch64-linux itself
    }
    let (_dir, copy) = flake_copy();
    let iso = copy.join("lib/iso.nix");
    let text = std::fs::read_to_string(&iso)?;
    ensure(
        text.contains("buildSystem = \"x86_64-linux\";"),
        "lib/iso.nix has no buildSystem",
    )?;
    std::fs::write(
        &iso,
        text.replace("buildSystem = \"x86_64-linux\";", "buildSystem = system;"),
    )?;
    let err = flake::build_iso(&path_ref(&copy), Arch::Aarch64, "minimal").unwrap_err();
    let text = err.to_string();
    ensure(
        matches!(err, FlakeError::Unsupported { .. }),
        format!("not an unsupported system: {text}"),
    )?;
    ensure(
        text.starts_with("this machine (x86_64-linux) cannot build path:"),
        &text,
    )?;
    ensure(text.contains("#packages.aarch64-linux.minimal"), &text)?;
    ensure(
        text.contains("test a prebuilt ISO with --image PATH"),
        &text,
    )?;
    Ok(())
}
