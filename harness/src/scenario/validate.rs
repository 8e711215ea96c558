//! From the file as written to the validated model: paths joined to the
//! scenario's directory, defaults filled in, and the rules that span fields
//! (an image source, `login:` with `running: true`, a step's one kind).

use super::error::{Problem, ScenarioError};
use super::file::{
    ExpectFile, MaxSlowdownFile, ScenarioFile, SshLoginFile, SshdFile, StepFile, UefiFiles,
};
use super::model::{
    Boot, Expect, MaxSlowdown, Scenario, Source, SshLogin, Sshd, Step, User, DEFAULT_MEMORY_MIB,
    DEFAULT_STEP_TIMEOUT, DEFAULT_TIMEOUT,
};
use super::values::{check_env_name, check_name, flake_reference};
use crate::platform::Arch;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A field's problem, before the scenario's path is put in front of it.
struct Invalid {
    field: String,
    problem: Problem,
}

impl Invalid {
    fn new(field: &str, problem: impl Into<Problem>) -> Invalid {
        Invalid {
            field: field.to_owned(),
            problem: problem.into(),
        }
    }
}

/// The scenario `file` says, named `name`, its relative paths against `base`.
pub(super) fn scenario(
    file: ScenarioFile,
    name: String,
    path: &Path,
    base: &Path,
) -> Result<Scenario, ScenarioError> {
    validated(file, name, path, base).map_err(|e| ScenarioError::Invalid {
        path: path.to_owned(),
        field: e.field,
        problem: e.problem,
    })
}

fn validated(
    file: ScenarioFile,
    name: String,
    path: &Path,
    base: &Path,
) -> Result<Scenario, Invalid> {
    let source = source(&file, base)?;
    let arch_given = !file.arch.is_empty();
    let arch = if arch_given {
        file.arch
    } else {
        vec![Arch::host().ok_or_else(|| Invalid::new("arch", Problem::UnknownHostArch))?]
    };
    let uefi = uefi(file.uefi, base)?;
    let steps = file
        .steps
        .into_iter()
        .enumerate()
        .map(|(i, s)| step(s).map_err(|p| Invalid::new(&format!("steps[{i}]"), p)))
        .collect::<Result<_, _>>()?;
    let login = file.boot.login.map(login).transpose();
    Ok(Scenario {
        name,
        path: path.to_owned(),
        source,
        arch,
        firmware: file.firmware,
        uefi,
        memory_mib: file.memory.unwrap_or(DEFAULT_MEMORY_MIB),
        accel: file.accel.unwrap_or_default(),
        arch_given,
        timeout: file.timeout.unwrap_or(DEFAULT_TIMEOUT),
        baseline: file.baseline.map(|b| base.join(b)),
        max_slowdown: max_slowdown(file.max_slowdown),
        fresh_boot: file.fresh_boot,
        boot: Boot {
            entry: file.boot.entry,
            login: login.map_err(|p| Invalid::new("boot.login", p))?,
        },
        expect: expect(file.expect)?,
        steps,
    })
}

/// `iso:`, `flake:`, and `image:` or `images:`: at least a host or an image.
fn source(file: &ScenarioFile, base: &Path) -> Result<Source, Invalid> {
    let (images, image_list) = match (&file.image, &file.images) {
        (Some(one), None) => (vec![base.join(one)], false),
        (None, Some(list)) if list.is_empty() => {
            return Err(Invalid::new("images", Problem::EmptyImages))
        }
        (None, Some(list)) => (list.iter().map(|p| base.join(p)).collect(), true),
        (None, None) => (Vec::new(), false),
        (Some(_), Some(_)) => return Err(Invalid::new("image", Problem::BothImages)),
    };
    if file.iso.is_none() && images.is_empty() {
        return Err(Invalid::new("iso", Problem::NoSource));
    }
    if let Some(host) = &file.iso {
        check_name("host", host).map_err(|e| Invalid::new("iso", e))?;
    }
    if file.flake.is_some() && file.iso.is_none() {
        return Err(Invalid::new("flake", Problem::FlakeWithoutIso));
    }
    Ok(Source {
        host: file.iso.clone(),
        flake: file.flake.as_deref().map(|f| flake_reference(f, base)),
        images,
        image_list,
    })
}

/// `uefi: {<arch>: {code, vars}}`: the files by architecture.
fn uefi(
    files: BTreeMap<String, UefiFiles>,
    base: &Path,
) -> Result<Vec<(Arch, PathBuf, PathBuf)>, Invalid> {
    files
        .into_iter()
        .map(|(name, files)| {
            let arch: Arch = name.parse().map_err(|e| Invalid::new("uefi", e))?;
            Ok((arch, base.join(files.code), base.join(files.vars)))
        })
        .collect()
}

/// `max_slowdown:`, each part left out taking its default.
fn max_slowdown(file: Option<MaxSlowdownFile>) -> MaxSlowdown {
    let default = MaxSlowdown::default();
    file.map_or(default, |m| MaxSlowdown {
        fraction: m.fraction.unwrap_or(default.fraction),
        seconds: m.seconds.unwrap_or(default.seconds),
    })
}

fn expect(file: ExpectFile) -> Result<Expect, Invalid> {
    let sshd = file.sshd.map(sshd).transpose()?;
    let mut users = BTreeMap::new();
    for (name, f) in file.users {
        let field = format!("expect.users.{name}");
        check_name("user", &name).map_err(|e| Invalid::new(&field, e))?;
        let user = User {
            shell: f.shell,
            home: f.home,
            groups: f.groups,
            sudo_nopasswd: f.sudo,
            home_manager: f.home_manager,
        };
        users.insert(name, user);
    }
    Ok(Expect {
        hostname: file.hostname,
        autologin: file.autologin,
        sshd,
        users,
    })
}

fn sshd(file: SshdFile) -> Result<Sshd, Invalid> {
    let login: Vec<SshLogin> = file
        .login
        .into_iter()
        .map(login)
        .collect::<Result<_, _>>()
        .map_err(|p| Invalid::new("expect.sshd.login", p))?;
    if file.running == Some(false) && !login.is_empty() {
        return Err(Invalid::new("expect.sshd", Problem::LoginNeedsRunning));
    }
    if let Some(key) = file.host_keys.iter().find(|k| !k.starts_with("SHA256:")) {
        let problem = Problem::NotFingerprint { key: key.clone() };
        return Err(Invalid::new("expect.sshd.host_keys", problem));
    }
    Ok(Sshd {
        running: file.running,
        ports: file.ports,
        permit_root_login: file.permit_root_login,
        password_authentication: file.password_authentication,
        login,
        host_keys: file.host_keys,
    })
}

/// The login, its user and variable names checked.
fn login(file: SshLoginFile) -> Result<SshLogin, Problem> {
    let login = match file {
        SshLoginFile::User(user) => SshLogin {
            user,
            password_env: None,
        },
        SshLoginFile::Full(full) => SshLogin {
            user: full.user,
            password_env: full.password_env,
        },
    };
    check_name("user", &login.user)?;
    if let Some(var) = &login.password_env {
        check_env_name(var)?;
    }
    Ok(login)
}

fn step(file: StepFile) -> Result<Step, Problem> {
    let timeout = file.timeout.unwrap_or(DEFAULT_STEP_TIMEOUT);
    match (file.run, file.send, file.expect) {
        (Some(command), None, expect) => Ok(Step::Run {
            command,
            expect,
            exit: file.exit.unwrap_or(0),
            timeout,
        }),
        (None, Some(text), None) if file.exit.is_none() => Ok(Step::Send {
            bytes: unescape(&text)?,
        }),
        (None, None, Some(pattern)) if file.exit.is_none() => Ok(Step::Expect { pattern, timeout }),
        _ => Err(Problem::StepShape),
    }
}

/// Turns `\x03`, `\r`, `\n`, `\t`, `\e` and `\\` in a `send:` string into bytes.
fn unescape(text: &str) -> Result<Vec<u8>, Problem> {
    let mut out = Vec::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            let mut buf = [0; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        match chars.next() {
            Some('r') => out.push(b'\r'),
            Some('n') => out.push(b'\n'),
            Some('t') => out.push(b'\t'),
            Some('e') => out.push(0x1b),
            Some('\\') => out.push(b'\\'),
            Some('x') => {
                let hex: String = chars.by_ref().take(2).collect();
                let byte =
                    u8::from_str_radix(&hex, 16).map_err(|_| Problem::BadHexEscape { hex })?;
                out.push(byte);
            }
            other => {
                let escape = other.map(String::from).unwrap_or_default();
                return Err(Problem::UnknownEscape { escape });
            }
        }
    }
    Ok(out)
}
