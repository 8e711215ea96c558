use super::*;
use crate::platform::{AccelChoice, Arch, Firmware};
use std::path::PathBuf;
use std::time::Duration;

fn parse(text: &str) -> Result<Scenario, ScenarioError> {
    Scenario::parse(Path::new("scenarios/demo.yaml"), text)
}

fn error(text: &str) -> String {
    parse(text)
        .expect_err("the scenario should be refused")
        .to_string()
}

#[test]
fn full_scenario() {
    let s = parse(
        "iso: rescue\narch: [x86_64]\nfirmware: bios\nmemory: 1536M\ntimeout: 4m\n\
         boot:\n  entry: serial\nexpect:\n  hostname: rescue\n  autologin: root\n\
         steps:\n  - run: uname -m\n    expect: '^x86_64$'\n  - send: '\\x03'\n  - expect: 'login:'\n    timeout: 10s\n",
    )
    .unwrap();
    assert_eq!(s.name, "demo");
    assert_eq!(s.source.host.as_deref(), Some("rescue"));
    assert!(s.source.images.is_empty());
    assert_eq!(s.arch, vec![Arch::X86_64]);
    assert_eq!(s.firmware, vec![Firmware::Bios]);
    assert_eq!(s.memory_mib, 1536);
    assert_eq!(s.timeout, Duration::from_secs(240));
    assert_eq!(s.expect.hostname.as_deref(), Some("rescue"));
    assert_eq!(s.expect.autologin, Some(Autologin::User("root".into())));
    assert!(s.boot.entry.unwrap().is_match("boot-serial"));
    assert!(matches!(&s.steps[0], Step::Run { command, exit: 0, .. } if command == "uname -m"));
    assert!(matches!(&s.steps[1], Step::Send { bytes } if bytes == &[3]));
    assert!(
        matches!(&s.steps[2], Step::Expect { timeout, .. } if *timeout == Duration::from_secs(10))
    );
}

#[test]
fn defaults() {
    let s = parse("image: out/rescue.iso\n").unwrap();
    assert_eq!(s.source.images, [PathBuf::from("scenarios/out/rescue.iso")]);
    assert_eq!(
        (
            s.source.host.clone(),
            s.source.flake.clone(),
            s.source.image_list
        ),
        (None, None, false)
    );
    assert_eq!(s.memory_mib, 1024);
    assert_eq!(s.timeout, Duration::from_secs(300));
    assert!(s.firmware.is_empty(), "unset: every firmware the arch has");
    assert_eq!(s.arch, vec![Arch::host().unwrap()]);
    assert_eq!(s.expect, Expect::default());
}

#[test]
fn autologin_false_expects_a_login_prompt() {
    let s = parse("iso: minimal\nexpect:\n  autologin: false\n").unwrap();
    assert_eq!(s.expect.autologin, Some(Autologin::Disabled));
    assert!(error("iso: m\nexpect:\n  autologin: true\n").contains("name the user"));
}

#[test]
fn unknown_field_names_file_line_column_and_field() {
    let e = error("iso: rescue\nexpect:\n  hostname: rescue\n  hostnme: typo\n");
    assert!(e.starts_with("scenarios/demo.yaml:4:3: expect: "), "{e}");
    assert!(e.contains("unknown field `hostnme`"), "{e}");
    assert!(!e.contains(" at line "), "location printed twice: {e}");
}

#[test]
fn bad_duration_is_located() {
    let e = error("iso: rescue\ntimeout: 5 minutes please\n");
    assert!(e.starts_with("scenarios/demo.yaml:2:10: timeout: "), "{e}");
    assert!(e.contains("invalid duration `5 minutes please`"), "{e}");
    let e = error("iso: rescue\ntimeout: '90'\n");
    assert!(e.contains("has no unit"), "{e}");
}

#[test]
fn wrong_type_is_located() {
    let e = error("iso: rescue\nexpect:\n  hostname: [a, b]\n");
    assert!(
        e.starts_with("scenarios/demo.yaml:3:13: expect.hostname: invalid type"),
        "{e}"
    );
}

#[test]
fn unknown_arch_is_located() {
    let e = error("iso: rescue\narch: [x86_64, riscv64]\n");
    assert!(
        e.starts_with("scenarios/demo.yaml:2:7: arch: unknown architecture `riscv64`"),
        "{e}"
    );
    let e = error("iso: rescue\nfirmware: coreboot\n");
    assert!(
        e.starts_with("scenarios/demo.yaml:2:11: firmware: unknown firmware `coreboot`"),
        "{e}"
    );
}

#[test]
fn yaml_syntax_error_is_located() {
    let e = error("iso: rescue\nexpect: [\n");
    assert!(e.starts_with("scenarios/demo.yaml:"), "{e}");
}

#[test]
fn image_source_is_required_and_exclusive() {
    assert!(error("expect:\n  hostname: x\n").contains("iso: missing"));
    assert!(error("iso: a\nimage: b.iso\nimages: [c.iso]\n").contains("not both"));
    assert!(error("iso: a\nimages: []\n").contains("images: the list is empty"));
    assert!(error("image: a.iso\nflake: .\n").contains("`flake:` needs `iso:`"));
    assert!(error("iso: a b\n").contains("iso: `a b` is not a valid host name"));
}

#[test]
fn a_host_with_prebuilt_images_and_a_relative_flake() {
    let s = parse("iso: rescue\nflake: path:../fixtures/flake\nimages: [a.iso, /b.iso]\n").unwrap();
    assert_eq!(
        s.source.images,
        [PathBuf::from("scenarios/a.iso"), PathBuf::from("/b.iso")]
    );
    assert!(s.source.image_list);
    let flake = s.source.flake.unwrap();
    assert!(
        flake.starts_with("path:/") && flake.ends_with("fixtures/flake"),
        "{flake}"
    );
    let s = parse("iso: rescue\nflake: github:owner/repo?dir=x\n").unwrap();
    assert_eq!(s.source.flake.as_deref(), Some("github:owner/repo?dir=x"));
}

#[test]
fn an_arch_without_a_firmware_it_can_boot_is_located() {
    let e = error("iso: rescue\narch: aarch64\nfirmware: bios\n");
    assert_eq!(
        e,
        "scenarios/demo.yaml:3:11: firmware: aarch64 cannot boot with bios; it boots with uefi"
    );
    // In a matrix, aarch64 simply has no BIOS trial.
    let s = parse("iso: rescue\narch: [x86_64, aarch64]\nfirmware: [bios, uefi]\n").unwrap();
    assert_eq!(s.firmware, [Firmware::Bios, Firmware::Uefi]);
    let e = error("iso: rescue\nuefi:\n  riscv64: {code: a.fd, vars: b.fd}\n");
    assert!(e.contains("uefi: unknown architecture `riscv64`"), "{e}");
    let s = parse("iso: rescue\nuefi:\n  aarch64: {code: a.fd, vars: /b.fd}\n").unwrap();
    assert_eq!(
        s.uefi,
        [(
            Arch::Aarch64,
            PathBuf::from("scenarios/a.fd"),
            PathBuf::from("/b.fd")
        )]
    );
}

#[test]
fn steps_are_validated_with_their_index() {
    let e = error("iso: a\nsteps:\n  - run: true\n  - send: x\n    exit: 1\n");
    assert!(e.contains("steps[1]"), "{e}");
}

#[test]
fn missing_file_names_the_path() {
    let e = Scenario::load(Path::new("/nonexistent/x.yaml"))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("/nonexistent/x.yaml: cannot read scenario"),
        "{e}"
    );
}

#[test]
fn memory_sizes() {
    assert_eq!(parse_memory("1G"), Ok(1024));
    assert_eq!(parse_memory("512M"), Ok(512));
    assert!(parse_memory("12").is_err());
    assert!(parse_memory("64M")
        .unwrap_err()
        .to_string()
        .contains("too little"));
    assert_eq!(parse_memory("1T"), Ok(MAX_MEMORY_MIB));
    assert!(parse_memory("18446744073709551615G")
        .unwrap_err()
        .to_string()
        .contains("more than the limit of 1T"));
}

#[test]
fn sshd_and_users() {
    let s = parse(
        "iso: rescue\nexpect:\n  sshd:\n    permit_root_login: true\n    password_authentication: true\n\
         \x20   login: [root, {user: nixos, password_env: PW}]\n  users:\n    root:\n      shell: bash\n\
         \x20     home_manager: {packages: [tmux, {package: ripgrep, program: rg}, {package: noto-fonts}], files: [.config/x]}\n\
         \x20   nixos:\n      groups: [wheel]\n\
         \x20     sudo: nopasswd\n      home_manager: true\n",
    )
    .unwrap();
    let sshd = s.expect.sshd.unwrap();
    assert!(sshd.must_run());
    assert_eq!(sshd.ports(), [22]);
    assert_eq!(sshd.permit_root_login.as_deref(), Some("yes"));
    assert_eq!(
        sshd.login[0],
        SshLogin {
            user: "root".into(),
            password_env: None
        }
    );
    assert_eq!(
        sshd.login[1],
        SshLogin {
            user: "nixos".into(),
            password_env: Some("PW".into())
        }
    );
    let users: Vec<_> = s.expect.users.keys().cloned().collect();
    assert_eq!(users, ["nixos", "root"]);
    let hm = s.expect.users["root"].home_manager.as_ref().unwrap();
    // A name alone is a program; `package:` is looked for in the generation.
    assert_eq!(hm.programs(), ["tmux", "rg"]);
    assert_eq!(hm.packages[0], Package::program("tmux"));
    assert_eq!(
        hm.packages[1],
        Package {
            name: "ripgrep".into(),
            program: Some("rg".into()),
            installed: Some(Installed::Named)
        }
    );
    assert_eq!(
        hm.packages[2],
        Package {
            name: "noto-fonts".into(),
            program: None,
            installed: Some(Installed::Named)
        }
    );
    assert!(s.expect.users["nixos"].sudo_nopasswd);
    assert_eq!(
        s.expect.users["nixos"].home_manager,
        Some(HomeManager::default())
    );
}

#[test]
fn sshd_and_user_values_are_validated() {
    let e = error("iso: r\nexpect:\n  sshd:\n    permit_root_login: maybe\n");
    assert!(
        e.starts_with("scenarios/demo.yaml:4:24: expect.sshd.permit_root_login: `maybe` is not"),
        "{e}"
    );
    let e = error("iso: r\nexpect:\n  users:\n    root:\n      sudo: always\n");
    assert!(e.contains("expect.users.root.sudo: `always`"), "{e}");
    let e = error(
        "iso: r\nexpect:\n  users:\n    root:\n      home_manager: {packages: ['rg; rm -rf /']}\n",
    );
    assert!(e.starts_with("scenarios/demo.yaml:5:33: expect.users.root.home_manager.packages[0]: `rg; rm -rf /` is not a valid program name"), "{e}");
    let e = error("iso: r\nexpect:\n  users:\n    root:\n      home_manager:\n        packages:\n          - {package: 'a b'}\n");
    assert!(e.starts_with("scenarios/demo.yaml:7:13: expect.users.root.home_manager.packages[0]: `a b` is not a valid package name"), "{e}");
    let e = error("iso: r\nexpect:\n  users:\n    root:\n      home_manager:\n        packages:\n          - {package: x, program: '-rf'}\n");
    assert!(
        e.contains("expect.users.root.home_manager.packages[0]: `-rf` is not a valid program name"),
        "{e}"
    );
    let e = error("iso: r\nexpect:\n  users:\n    root:\n      home_manager:\n        packages:\n          - {pakage: noto-fonts}\n");
    assert!(e.contains("expect.users.root.home_manager.packages[0]: unknown field `pakage`, expected `package` or `program`"), "{e}");
    let e = error("iso: r\nexpect:\n  users:\n    root:\n      home_manager:\n        packages:\n          - {program: rg}\n");
    assert!(e.contains("missing field `package`"), "{e}");
    let e = error(
        "iso: r\nexpect:\n  users:\n    root:\n      home_manager:\n        packages: [[rg]]\n",
    );
    assert!(
        e.contains("expected a program name, or `{ package: NAME }`"),
        "{e}"
    );
    let e = error("iso: r\nexpect:\n  users:\n    root:\n      home_manager: {packges: [rg]}\n");
    assert!(e.contains("unknown field `packges`"), "{e}");
    let e = error("iso: r\nexpect:\n  users:\n    root:\n      home_manager: yes please\n");
    assert!(
        e.contains("expect.users.root.home_manager: invalid type"),
        "{e}"
    );
    let e = error("iso: r\nexpect:\n  sshd:\n    login: [{user: nixos, password_env: 'A=B'}]\n");
    assert_eq!(e, "scenarios/demo.yaml: expect.sshd.login: `A=B` is not an environment variable name (letters, digits and `_`)");
    let e = error("iso: r\nexpect:\n  sshd:\n    running: false\n    login: [root]\n");
    assert!(e.contains("`login:` needs `running: true`"), "{e}");
}

#[test]
fn console_credentials() {
    let s = parse("iso: r\nboot:\n  login: {user: root, password_env: ROOT_PW}\nexpect:\n  autologin: false\n").unwrap();
    assert_eq!(
        s.boot.login,
        Some(SshLogin {
            user: "root".into(),
            password_env: Some("ROOT_PW".into())
        })
    );
    let s = parse("iso: r\nboot:\n  login: nixos\n").unwrap();
    assert_eq!(
        s.boot.login,
        Some(SshLogin {
            user: "nixos".into(),
            password_env: None
        })
    );
    assert_eq!(parse("iso: r\n").unwrap().boot.login, None);
    let e = error("iso: r\nboot:\n  login: {user: root, password_env: 'A=B'}\n");
    assert_eq!(e, "scenarios/demo.yaml: boot.login: `A=B` is not an environment variable name (letters, digits and `_`)");
    let e = error("iso: r\nboot:\n  login: {user: root, password: hunter2}\n");
    assert_eq!(
        e,
        "scenarios/demo.yaml:3:23: boot.login: unknown field `password`, expected `user` or `password_env`"
    );
    let e = error("iso: r\nboot:\n  login: 'root; reboot'\n");
    assert!(
        e.contains("boot.login: `root; reboot` is not a valid user name"),
        "{e}"
    );
}

// ---- bounds: no value may overflow the harness's arithmetic -----------------

#[test]
fn a_huge_trial_timeout_is_located() {
    let e = error("iso: rescue\ntimeout: 400000000000y\n");
    assert_eq!(e, "scenarios/demo.yaml:2:10: timeout: duration `400000000000y` is longer than the limit of 24h");
    // Beyond what a Duration holds at all.
    let e = error("iso: rescue\ntimeout: 99999999999999999999s\n");
    assert!(
        e.starts_with("scenarios/demo.yaml:2:10: timeout: invalid duration"),
        "{e}"
    );
    let e = error("iso: rescue\ntimeout: 0s\n");
    assert_eq!(
        e,
        "scenarios/demo.yaml:2:10: timeout: duration `0s` is zero; nothing can happen in it"
    );
    assert_eq!(
        parse("iso: rescue\ntimeout: 24h\n").unwrap().timeout,
        MAX_TIMEOUT
    );
}

/// A step's timeout is stretched 4x under TCG (`timeout * scale`): the cap keeps
/// that product, and a deadline from it, far from overflowing.
#[test]
fn a_huge_step_timeout_is_located() {
    let e = error("iso: rescue\nsteps:\n  - run: 'true'\n    timeout: 213503982334601d\n");
    assert_eq!(e, "scenarios/demo.yaml:4:14: steps[0].timeout: duration `213503982334601d` is longer than the limit of 24h");
    let e = error("iso: rescue\nsteps:\n  - expect: x\n    timeout: 25h\n");
    assert_eq!(e, "scenarios/demo.yaml:4:14: steps[0].timeout: duration `25h` is longer than the limit of 24h");
    let s = parse("iso: rescue\nsteps:\n  - expect: x\n    timeout: 24h\n").unwrap();
    let Step::Expect { timeout, .. } = &s.steps[0] else {
        panic!("not an expect step")
    };
    let stretched = timeout
        .checked_mul(4)
        .expect("the TCG scale cannot overflow a capped timeout");
    assert!(std::time::Instant::now().checked_add(stretched).is_some());
}

#[test]
fn a_huge_memory_size_is_located() {
    let e = error("iso: rescue\nmemory: 99999999999G\n");
    assert_eq!(
        e,
        "scenarios/demo.yaml:2:9: memory: memory size `99999999999G` is more than the limit of 1T"
    );
    // More digits than a u64 holds.
    let e = error("iso: rescue\nmemory: 99999999999999999999999M\n");
    assert_eq!(e, "scenarios/demo.yaml:2:9: memory: memory size `99999999999999999999999M` is more than the limit of 1T");
    let e = error("iso: rescue\nmemory: 1025G\n");
    assert!(e.ends_with("is more than the limit of 1T"), "{e}");
    assert_eq!(
        parse("iso: rescue\nmemory: 1T\n").unwrap().memory_mib,
        MAX_MEMORY_MIB
    );
    assert_eq!(
        parse("iso: rescue\nmemory: 1024G\n").unwrap().memory_mib,
        MAX_MEMORY_MIB
    );
}

#[test]
fn ports_and_exit_statuses_are_bounded() {
    let e = error("iso: r\nexpect:\n  sshd:\n    ports: [22, 70000]\n");
    assert_eq!(e, "scenarios/demo.yaml:4:17: expect.sshd.ports[1]: 70000 is not a port sshd can listen on (1 to 65535)");
    let e = error("iso: r\nexpect:\n  sshd:\n    ports: [0]\n");
    assert_eq!(e, "scenarios/demo.yaml:4:13: expect.sshd.ports[0]: 0 is not a port sshd can listen on (1 to 65535)");
    let e = error("iso: r\nsteps:\n  - run: 'true'\n    exit: 256\n");
    assert_eq!(e, "scenarios/demo.yaml:4:11: steps[0].exit: exit status 256 is not one a command can have (0 to 255)");
    let e = error("iso: r\nsteps:\n  - run: 'true'\n    exit: -1\n");
    assert!(
        e.contains("steps[0].exit: exit status -1 is not one"),
        "{e}"
    );
    let e = error("iso: r\nsteps:\n  - run: 'true'\n    exit: 99999999999999999999\n");
    assert!(
        e.starts_with("scenarios/demo.yaml:4:11: steps[0].exit: "),
        "{e}"
    );
    let s = parse(
        "iso: r\nexpect:\n  sshd:\n    ports: [65535]\nsteps:\n  - run: 'true'\n    exit: 255\n",
    )
    .unwrap();
    assert_eq!(s.expect.sshd.unwrap().ports, [65535]);
    assert!(matches!(s.steps[0], Step::Run { exit: 255, .. }));
}

#[test]
fn a_hostname_linux_cannot_have_is_located() {
    let long = "a".repeat(65);
    let e = error(&format!("iso: r\nexpect:\n  hostname: {long}\n"));
    assert_eq!(
        e,
        format!("scenarios/demo.yaml:3:13: expect.hostname: `{long}` is 65 characters long; a Linux host name has at most 64")
    );
    assert!(parse(&format!(
        "iso: r\nexpect:\n  hostname: {}\n",
        "a".repeat(64)
    ))
    .is_ok());
    for bad in [
        "'rescue box'",
        "-rescue",
        "rescue-",
        "a..b",
        "''",
        "r\u{e9}scue",
    ] {
        let e = error(&format!("iso: r\nexpect:\n  hostname: {bad}\n"));
        assert!(
            e.starts_with("scenarios/demo.yaml:3:13: expect.hostname: `"),
            "{bad}: {e}"
        );
        assert!(e.contains("is not a valid host name"), "{bad}: {e}");
    }
    for good in ["rescue", "nixos-rescue", "rescue.example.org", "build_01"] {
        assert!(
            parse(&format!("iso: r\nexpect:\n  hostname: {good}\n")).is_ok(),
            "{good}"
        );
    }
}

// ---- files the scenario names must exist (checked by `load`) ----------------

fn load_in(dir: &Path, text: &str) -> Result<Scenario, ScenarioError> {
    let path = dir.join("demo.yaml");
    std::fs::write(&path, text).unwrap();
    Scenario::load(&path)
}

#[test]
fn a_missing_image_is_a_located_scenario_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let e = load_in(d, "image: old/rescue.iso\n")
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        format!(
            "{0}/demo.yaml:1:8: image: no such file: {0}/old/rescue.iso",
            d.display()
        )
    );
    tiny_iso(&d.join("a.iso"));
    let e = load_in(
        d,
        "iso: rescue\nflake: github:o/r\nimages:\n  - a.iso\n  - b.iso\n",
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        e,
        format!(
            "{0}/demo.yaml:5:5: images: no such file: {0}/b.iso",
            d.display()
        )
    );
    let e = load_in(
        d,
        "image: a.iso\nuefi:\n  x86_64: {code: a.iso, vars: vars.fd}\n",
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        e,
        format!(
            "{0}/demo.yaml:3:31: uefi: x86_64: no such file: {0}/vars.fd",
            d.display()
        )
    );
    assert!(load_in(d, "image: a.iso\n").is_ok());
}

#[test]
fn a_missing_local_flake_is_a_located_scenario_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let real = std::fs::canonicalize(d).unwrap();
    let e = load_in(d, "iso: rescue\nflake: ./nowhere\n")
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        format!(
            "{}/demo.yaml:2:8: flake: {}/nowhere is not a flake: no such directory",
            d.display(),
            real.display()
        )
    );
    std::fs::create_dir(d.join("empty")).unwrap();
    let e = load_in(d, "iso: rescue\nflake: path:empty\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.ends_with(&format!(
            "flake: path:{0}/empty is not a flake: {0}/empty has no flake.nix",
            real.display()
        )),
        "{e}"
    );
    std::fs::write(d.join("empty/flake.nix"), "{ outputs = _: { }; }").unwrap();
    // A directory as people write paths is that directory.
    let s = load_in(d, "iso: rescue\nflake: empty\n").unwrap();
    assert_eq!(s.source.flake, Some(format!("{}/empty", real.display())));
    // Remote references are left to nix.
    assert!(load_in(d, "iso: rescue\nflake: github:owner/repo\n").is_ok());
    assert!(load_in(d, "iso: rescue\nflake: git+https://example.org/repo\n").is_ok());
}

#[test]
fn flake_references() {
    let dir = tempfile::tempdir().unwrap();
    let real = std::fs::canonicalize(dir.path()).unwrap();
    std::fs::create_dir(dir.path().join("flake")).unwrap();
    let at = |r: &str| flake_reference(r, dir.path());
    assert_eq!(at("flake"), format!("{}/flake", real.display()));
    assert_eq!(
        at("./flake?dir=x"),
        format!("{}/flake?dir=x", real.display())
    );
    assert_eq!(at("path:flake"), format!("path:{}/flake", real.display()));
    assert_eq!(at("nixpkgs"), "nixpkgs", "a registry name stays one");
    assert_eq!(at("flake:nixpkgs/nixos-24.05"), "flake:nixpkgs/nixos-24.05");
    assert_eq!(
        at("nowhere/x"),
        format!("{}/nowhere/x", real.display()),
        "written like a path"
    );
    assert_eq!(at("github:o/r"), "github:o/r");
    assert_eq!(at("/abs/x"), "/abs/x");
    assert_eq!(
        local_flake_dir("path:/a/b?dir=x"),
        Some(PathBuf::from("/a/b/x"))
    );
    assert_eq!(
        local_flake_dir("git+file:///a/b"),
        Some(PathBuf::from("/a/b"))
    );
    assert_eq!(local_flake_dir("/a/b"), Some(PathBuf::from("/a/b")));
    assert_eq!(local_flake_dir("github:o/r"), None);
    assert_eq!(local_flake_dir("nixpkgs"), None);
}

#[test]
fn accel_is_auto_unless_named_and_a_wrong_one_is_located() {
    assert_eq!(parse("iso: rescue\n").unwrap().accel, AccelChoice::Auto);
    assert_eq!(
        parse("iso: rescue\naccel: kvm\n").unwrap().accel,
        AccelChoice::Kvm
    );
    assert_eq!(
        parse("iso: rescue\naccel: tcg\n").unwrap().accel,
        AccelChoice::Tcg
    );
    let e = error("iso: rescue\naccel: hvf\n");
    assert_eq!(
        e,
        "scenarios/demo.yaml:2:8: accel: unknown accelerator `hvf` (known: auto, kvm, tcg)"
    );
}

#[test]
fn whether_arch_was_written_is_kept() {
    assert!(parse("iso: rescue\narch: x86_64\n").unwrap().arch_given);
    assert!(!parse("iso: rescue\n").unwrap().arch_given);
}

// ---- baseline: and max_slowdown: --------------------------------------------

#[test]
fn max_slowdown_defaults_to_20_percent_and_5_seconds() {
    let s = parse("iso: rescue\n").unwrap();
    assert_eq!(
        s.max_slowdown,
        MaxSlowdown {
            fraction: 0.2,
            seconds: 5.0
        }
    );
    assert_eq!(s.baseline, None);
    let s = parse("iso: rescue\nbaseline: old.iso\nmax_slowdown: { fraction: 0.5 }\n").unwrap();
    assert_eq!(
        s.max_slowdown,
        MaxSlowdown {
            fraction: 0.5,
            seconds: 5.0
        }
    );
    assert_eq!(s.baseline, Some(PathBuf::from("scenarios/old.iso")));
    let s = parse("iso: rescue\nmax_slowdown:\n  fraction: 1\n  seconds: 0.5\n").unwrap();
    assert_eq!(
        s.max_slowdown,
        MaxSlowdown {
            fraction: 1.0,
            seconds: 0.5
        }
    );
}

#[test]
fn max_slowdown_is_bounded_with_located_errors() {
    let e = error("iso: rescue\nmax_slowdown: { fraction: 0, seconds: 5 }\n");
    assert!(
        e.starts_with(
            "scenarios/demo.yaml:2:27: max_slowdown.fraction: fraction 0 is out of bounds"
        ),
        "{e}"
    );
    let e = error("iso: rescue\nmax_slowdown:\n  fraction: 0.2\n  seconds: -1\n");
    assert!(e.starts_with("scenarios/demo.yaml:4:12: max_slowdown.seconds: seconds -1 is out of bounds: 0 to 3600"), "{e}");
    let e = error("iso: rescue\nmax_slowdown: { fraction: 11 }\n");
    assert!(e.contains("at most 10"), "{e}");
    let e = error("iso: rescue\nmax_slowdown: { fraction: .nan }\n");
    assert!(e.contains("out of bounds"), "{e}");
    let e = error("iso: rescue\nmax_slowdown: { fraction: 20% }\n");
    assert!(e.starts_with("scenarios/demo.yaml:2:27: max_slowdown.fraction: invalid type: string \"20%\", expected a fraction"), "{e}");
    let e = error("iso: rescue\nmax_slowdown: { percent: 20 }\n");
    assert!(e.contains("unknown field `percent`"), "{e}");
}

#[test]
fn a_missing_baseline_is_a_located_scenario_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    tiny_iso(&d.join("new.iso"));
    let e = load_in(d, "image: new.iso\nbaseline: old/rescue.iso\n")
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        format!(
            "{0}/demo.yaml:2:11: baseline: no such file: {0}/old/rescue.iso",
            d.display()
        )
    );
    std::fs::create_dir(d.join("old")).unwrap();
    std::fs::write(d.join("old/rescue.iso"), "").unwrap();
    let e = load_in(d, "image: new.iso\nbaseline: old/rescue.iso\n")
        .unwrap_err()
        .to_string();
    assert_eq!(e, format!("{0}/demo.yaml:2:11: baseline: {0}/old/rescue.iso is not an ISO 9660 image: the file is empty", d.display()));
    tiny_iso(&d.join("old/rescue.iso"));
    assert!(load_in(d, "image: new.iso\nbaseline: old/rescue.iso\n").is_ok());
}

/// A file `image:` names that no firmware could boot from a CD-ROM is the
/// scenario's error, located, before anything boots.
#[test]
fn an_image_that_is_no_bootable_iso_is_a_located_scenario_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("hostname"), "rescue\n").unwrap();
    let e = load_in(d, "arch: x86_64\nimage: hostname\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with(&format!(
            "{0}/demo.yaml:2:8: image: {0}/hostname is not an ISO 9660 image: 7 bytes",
            d.display()
        )),
        "{e}"
    );
    crate::menu::iso::testing::xorriso(d, "data", &[]);
    tiny_iso(&d.join("good.iso"));
    let e = load_in(d, "images:\n  - good.iso\n  - data.iso\n")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with(&format!("{0}/demo.yaml:3:5: images: {0}/data.iso is an ISO 9660 image without an El Torito boot record", d.display())), "{e}");
}

/// A real ISO (xorriso) with an El Torito boot record for BIOS, booting nothing.
fn tiny_iso(path: &Path) {
    let stem = path.file_stem().unwrap().to_str().unwrap();
    let made = crate::menu::iso::testing::xorriso(
        path.parent().unwrap(),
        stem,
        crate::menu::iso::testing::BIOS,
    );
    assert_eq!(made, path);
}

/// A `login:` mapping of the wrong shape says which key is wrong and where,
/// not that the value "did not match any variant".
#[test]
fn a_malformed_login_says_what_is_wrong() {
    let cases = [
        (
            "iso: r\nboot:\n  login: {user: 3}\n",
            "scenarios/demo.yaml:3:17: boot.login.user: invalid type: integer `3`, expected a user name",
        ),
        (
            "iso: r\nboot:\n  login:\n    user: root\n    passwd: x\n",
            "scenarios/demo.yaml:5:5: boot.login: unknown field `passwd`, expected `user` or `password_env`",
        ),
        (
            "iso: r\nboot:\n  login: {password_env: PW}\n",
            "scenarios/demo.yaml:3:10: boot.login: missing field `user`",
        ),
        (
            "iso: r\nboot:\n  login: {user: root, password_env: true}\n",
            "scenarios/demo.yaml:3:37: boot.login.password_env: invalid type: boolean `true`, expected an environment variable name",
        ),
        (
            "iso: r\nboot:\n  login: 3\n",
            "scenarios/demo.yaml:3:10: boot.login: invalid type: integer `3`, expected a user name, or `{ user: NAME }` with an optional `password_env: VAR`",
        ),
        (
            "iso: r\nexpect:\n  sshd:\n    login: [root, {user: 3}]\n",
            "scenarios/demo.yaml:4:26: expect.sshd.login[1].user: invalid type: integer `3`, expected a user name",
        ),
    ];
    for (yaml, want) in cases {
        let e = error(yaml);
        assert_eq!(e, want, "{yaml}");
        assert!(!e.contains("variant"), "{e}");
    }
}

#[test]
fn an_unreadable_scenario_names_the_file_then_the_cause() {
    let e = Scenario::load(Path::new("scenarios/no-such-scenario.yaml")).unwrap_err();
    assert!(matches!(e, ScenarioError::Read { .. }), "{e:?}");
    assert_eq!(
        crate::error::chain(&e),
        "scenarios/no-such-scenario.yaml: cannot read scenario: No such file or directory (os error 2)"
    );
}
