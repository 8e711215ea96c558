//! The host failing, not the ISO: a full disk and no free port are "could not
//! test" (exit 3), said as such, before any guest runs. Each is made real in
//! namespaces of its own (`unshare`, util-linux): a tiny tmpfs for the
//! artifacts, and a network namespace whose only ephemeral port is taken.

mod support;

use std::process::{Command, Output};
use support::text;

/// Runs a shell script in new namespaces (`flags`, e.g. `--net`), as root in
/// them (mapped from this user when it is not root), with `$ISOTEST` the binary.
fn in_namespaces(flags: &[&str], script: &str) -> Output {
    Command::new("unshare")
        .arg("--map-root-user")
        .args(flags)
        .args(["sh", "-ec", script])
        .current_dir(support::repo())
        .env("ISOTEST", support::isotest_bin())
        .env("NIX_CONFIG", support::nix_config())
        .output()
        .expect("run unshare (util-linux)")
}

#[test]
fn no_disk_space_for_artifacts_could_not_test() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = support::plain_scenario(dir.path(), "firmware: bios\n");
    // A 64 KiB tmpfs, filled: the trial's directory can be made, nothing more.
    let script = format!(
        "mkdir -p {art} && mount -t tmpfs -o size=64k tmpfs {art} && (dd if=/dev/zero of={art}/fill bs=4k 2>/dev/null || true)
         \"$ISOTEST\" run {scenario} --image {iso} --accel tcg --artifacts {art}/run",
        art = dir.path().join("art").display(),
        iso = support::any_iso(&scenario),
    );
    let out = in_namespaces(&["--mount"], &script);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(3), "{stdout}{stderr}");
    assert!(
        stdout.contains("0 passed, 0 failed, 0 skipped, 1 could not test"),
        "{stdout}"
    );
    assert!(
        stderr.contains("error: no disk space for artifacts: "),
        "{stderr}"
    );
    assert!(stderr.contains("a trial needs 16 MiB"), "{stderr}");
}

#[test]
fn no_free_port_for_the_ssh_forward_could_not_test() {
    let iso = support::fixture("minimal").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let scenario = support::plain_scenario(dir.path(), "firmware: bios\n");
    // One ephemeral port in this network namespace, held by a listener: the
    // harness cannot find another, as on a host whose ports are used up.
    let script = format!(
        "ip link set lo up
         echo '40000 40000' > /proc/sys/net/ipv4/ip_local_port_range
         python3 -c 'import socket,subprocess,sys; s=socket.socket(); s.bind((\"127.0.0.1\", 40000)); s.listen(); sys.exit(subprocess.run(sys.argv[1:]).returncode)' \
           \"$ISOTEST\" run {scenario} --image {iso} --accel tcg --artifacts {art}",
        iso = iso.display(),
        art = dir.path().join("art").display()
    );
    let out = in_namespaces(&["--net"], &script);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(3), "{stdout}{stderr}");
    assert!(
        stdout.contains("0 passed, 0 failed, 0 skipped, 1 could not test"),
        "{stdout}"
    );
    assert!(
        stderr.contains("error: no free TCP port on 127.0.0.1 for the guest's SSH forward: Address already in use"),
        "{stderr}"
    );
}
