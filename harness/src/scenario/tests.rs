use super::*;
use std::time::Duration;

fn parse(text: &str) -> Result<Scenario, ScenarioError> {
    Scenario::parse(Path::new("scenarios/demo.yaml"), text)
}

fn error(text: &str) -> String {
    parse(text).expect_err("the scenario should be refused").to_string()
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
    assert!(matches!(&s.steps[2], Step::Expect { timeout, .. } if *timeout == Duration::from_secs(10)));
}

#[test]
fn defaults() {
    let s = parse("image: out/rescue.iso\n").unwrap();
    assert_eq!(s.source.images, [PathBuf::from("scenarios/out/rescue.iso")]);
    assert_eq!((s.source.host.clone(), s.source.flake.clone(), s.source.image_list), (None, None, false));
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
    assert!(e.starts_with("scenarios/demo.yaml:3:13: expect.hostname: invalid type"), "{e}");
}

#[test]
fn unknown_arch_is_located() {
    let e = error("iso: rescue\narch: [x86_64, riscv64]\n");
    assert!(e.starts_with("scenarios/demo.yaml:2:7: arch: unknown architecture `riscv64`"), "{e}");
    let e = error("iso: rescue\nfirmware: coreboot\n");
    assert!(e.starts_with("scenarios/demo.yaml:2:11: firmware: unknown firmware `coreboot`"), "{e}");
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
    assert_eq!(s.source.images, [PathBuf::from("scenarios/a.iso"), PathBuf::from("/b.iso")]);
    assert!(s.source.image_list);
    let flake = s.source.flake.unwrap();
    assert!(flake.starts_with("path:/") && flake.ends_with("fixtures/flake"), "{flake}");
    let s = parse("iso: rescue\nflake: github:owner/repo?dir=x\n").unwrap();
    assert_eq!(s.source.flake.as_deref(), Some("github:owner/repo?dir=x"));
}

#[test]
fn an_arch_without_a_firmware_it_can_boot_is_located() {
    let e = error("iso: rescue\narch: aarch64\nfirmware: bios\n");
    assert_eq!(e, "scenarios/demo.yaml:3:11: firmware: aarch64 cannot boot with bios; it boots with uefi");
    // In a matrix, aarch64 simply has no BIOS trial.
    let s = parse("iso: rescue\narch: [x86_64, aarch64]\nfirmware: [bios, uefi]\n").unwrap();
    assert_eq!(s.firmware, [Firmware::Bios, Firmware::Uefi]);
    let e = error("iso: rescue\nuefi:\n  riscv64: {code: a.fd, vars: b.fd}\n");
    assert!(e.contains("uefi: unknown architecture `riscv64`"), "{e}");
    let s = parse("iso: rescue\nuefi:\n  aarch64: {code: a.fd, vars: /b.fd}\n").unwrap();
    assert_eq!(s.uefi, [(Arch::Aarch64, PathBuf::from("scenarios/a.fd"), PathBuf::from("/b.fd"))]);
}

#[test]
fn steps_are_validated_with_their_index() {
    let e = error("iso: a\nsteps:\n  - run: true\n  - send: x\n    exit: 1\n");
    assert!(e.contains("steps[1]"), "{e}");
}

#[test]
fn missing_file_names_the_path() {
    let e = Scenario::load(Path::new("/nonexistent/x.yaml")).unwrap_err().to_string();
    assert!(e.starts_with("/nonexistent/x.yaml: cannot read scenario"), "{e}");
}

#[test]
fn memory_sizes() {
    assert_eq!(parse_memory("1G"), Ok(1024));
    assert_eq!(parse_memory("512M"), Ok(512));
    assert!(parse_memory("12").is_err());
    assert!(parse_memory("64M").unwrap_err().contains("too little"));
}


#[test]
fn sshd_and_users() {
    let s = parse(
        "iso: rescue\nexpect:\n  sshd:\n    permit_root_login: true\n    password_authentication: true\n\
         \x20   login: [root, {user: nixos, password_env: PW}]\n  users:\n    root:\n      shell: bash\n\
         \x20     home_manager: {packages: [tmux, rg], files: [.config/x]}\n    nixos:\n      groups: [wheel]\n\
         \x20     sudo: nopasswd\n      home_manager: true\n",
    )
    .unwrap();
    let sshd = s.expect.sshd.unwrap();
    assert!(sshd.must_run());
    assert_eq!(sshd.ports(), [22]);
    assert_eq!(sshd.permit_root_login.as_deref(), Some("yes"));
    assert_eq!(sshd.login[0], SshLogin { user: "root".into(), password_env: None });
    assert_eq!(sshd.login[1], SshLogin { user: "nixos".into(), password_env: Some("PW".into()) });
    let users: Vec<_> = s.expect.users.keys().cloned().collect();
    assert_eq!(users, ["nixos", "root"]);
    assert_eq!(s.expect.users["root"].home_manager.as_ref().unwrap().packages, ["tmux", "rg"]);
    assert!(s.expect.users["nixos"].sudo_nopasswd);
    assert_eq!(s.expect.users["nixos"].home_manager, Some(HomeManager::default()));
}

#[test]
fn sshd_and_user_values_are_validated() {
    let e = error("iso: r\nexpect:\n  sshd:\n    permit_root_login: maybe\n");
    assert!(e.starts_with("scenarios/demo.yaml:4:24: expect.sshd.permit_root_login: `maybe` is not"), "{e}");
    let e = error("iso: r\nexpect:\n  users:\n    root:\n      sudo: always\n");
    assert!(e.contains("expect.users.root.sudo: `always`"), "{e}");
    let e = error("iso: r\nexpect:\n  users:\n    root:\n      home_manager: {packages: ['rg; rm -rf /']}\n");
    assert!(e.contains("expect.users.root.home_manager.packages: `rg; rm -rf /` is not a valid program name"), "{e}");
    let e = error("iso: r\nexpect:\n  sshd:\n    running: false\n    login: [root]\n");
    assert!(e.contains("`login:` needs `running: true`"), "{e}");
}
