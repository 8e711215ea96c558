//! Scalar values in scenarios: durations (`90s`, `5m`), sizes (`1G`, `512M`),
//! host names, names that end up in guest commands, PermitRootLogin values and
//! flake references.
//!
//! Every value is bounded by fixed caps, never by the host that parses it: a
//! scenario that is valid on one machine is valid on every machine, and no value
//! can overflow the arithmetic the harness does with it (a deadline is
//! `Instant::now() + timeout`, a step's wait is its timeout times the TCG scale).

use std::path::{Path, PathBuf};
use std::time::Duration;

/// The longest timeout a scenario may give (the whole trial or one step): a day.
/// Under TCG waits are stretched 4x, which stays far from any overflow.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);

/// The most memory a scenario may give a guest: 1 TiB, in MiB. Whether the host
/// has that much is a question for the run, not for parsing.
pub const MAX_MEMORY_MIB: u64 = 1024 * 1024;

/// The least memory a Linux ISO boots with, in MiB.
pub const MIN_MEMORY_MIB: u64 = 128;

/// Linux's HOST_NAME_MAX: `sethostname` refuses longer names
/// (include/uapi/linux/utsname.h, `__NEW_UTS_LEN 64`).
pub const MAX_HOSTNAME_LEN: usize = 64;

/// Why a duration was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DurationError {
    #[error("duration `{text}` has no unit; write e.g. `{text}s` or `{text}m`")]
    NoUnit { text: String },
    /// humantime's reason stands inside the sentence (the example follows it),
    /// so it is shown here rather than left to `source()`.
    #[error("invalid duration `{text}`: {reason} (e.g. `90s`, `5m`)")]
    Malformed {
        text: String,
        reason: humantime::DurationError,
    },
    #[error("duration `{text}` is zero; nothing can happen in it")]
    Zero { text: String },
    #[error("duration `{text}` is longer than the limit of 24h")]
    TooLong { text: String },
}

/// Parses a human duration such as `90s`, `5m` or `1m 30s`; a bare number is refused
/// because its unit would be a guess. Zero and more than a day are refused.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let text = text.trim();
    let owned = || text.to_owned();
    if text.chars().all(|c| c.is_ascii_digit()) {
        return Err(DurationError::NoUnit { text: owned() });
    }
    let duration = humantime::parse_duration(text).map_err(|reason| DurationError::Malformed {
        text: owned(),
        reason,
    })?;
    if duration.is_zero() {
        return Err(DurationError::Zero { text: owned() });
    }
    if duration > MAX_TIMEOUT {
        return Err(DurationError::TooLong { text: owned() });
    }
    Ok(duration)
}

/// Why a memory size was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MemoryError {
    #[error("invalid memory size `{text}` (e.g. `1G`, `512M`)")]
    Malformed { text: String },
    #[error("memory size `{text}` is more than the limit of 1T")]
    TooMuch { text: String },
    #[error("memory size `{text}` is below 128M, too little to boot a Linux ISO")]
    TooLittle { text: String },
}

/// Parses a memory size (`1G`, `1536M`, `2GiB`) into MiB, the unit QEMU's `-m` takes,
/// between 128M and 1T.
pub fn parse_memory(text: &str) -> Result<u64, MemoryError> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let bad = || MemoryError::Malformed { text: t.to_owned() };
    let too_much = || MemoryError::TooMuch { text: t.to_owned() };
    // Digits beyond u64 are too much, not malformed.
    let n: u64 = match digits.parse() {
        Ok(n) => n,
        Err(e) if *e.kind() == std::num::IntErrorKind::PosOverflow => return Err(too_much()),
        Err(_) => return Err(bad()),
    };
    let per_unit: u64 = match unit.trim() {
        "M" | "MiB" | "MB" => 1,
        "G" | "GiB" | "GB" => 1024,
        "T" | "TiB" | "TB" => 1024 * 1024,
        _ => return Err(bad()),
    };
    let mib = n
        .checked_mul(per_unit)
        .filter(|&mib| mib <= MAX_MEMORY_MIB)
        .ok_or_else(too_much)?;
    if mib < MIN_MEMORY_MIB {
        return Err(MemoryError::TooLittle { text: t.to_owned() });
    }
    Ok(mib)
}

/// A host name a Linux guest can have: at most 64 bytes (the kernel's limit),
/// dot-separated labels of ASCII letters, digits, hyphens and underscores (hostname(7)
/// names the first three; NixOS's `networking.hostName` also takes `_`), none empty
/// and none starting or ending with a hyphen. The check compares it with the
/// guest's /proc/sys/kernel/hostname: a name no guest can have would fail every trial.
pub fn check_hostname(name: &str) -> Result<(), HostnameError> {
    if name.len() > MAX_HOSTNAME_LEN {
        return Err(HostnameError::TooLong {
            name: name.to_owned(),
        });
    }
    let label_ok = |label: &str| {
        !label.is_empty()
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    };
    if name.split('.').all(label_ok) {
        Ok(())
    } else {
        Err(HostnameError::Malformed {
            name: name.to_owned(),
        })
    }
}

/// Why a host name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostnameError {
    #[error("`{name}` is {} characters long; a Linux host name has at most {MAX_HOSTNAME_LEN}", name.len())]
    TooLong { name: String },
    #[error("`{name}` is not a valid host name (letters, digits, `-` and `_`, in labels separated by dots)")]
    Malformed { name: String },
}

/// A name that ends up in guest commands (a user, a program, a package, a
/// host) with a character a shell or a command line would read as more.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{name}` is not a valid {kind} name")]
pub struct BadName {
    /// What the name names: `user`, `program`, `package` or `host`.
    pub kind: &'static str,
    pub name: String,
}

/// Names that end up in guest commands: user names and program names.
pub fn check_name(kind: &'static str, name: &str) -> Result<(), BadName> {
    let ok = !name.is_empty()
        && !name.starts_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._+-@".contains(c));
    if ok {
        Ok(())
    } else {
        Err(BadName {
            kind,
            name: name.to_owned(),
        })
    }
}

/// A `password_env:` that no shell could set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an environment variable name (letters, digits and `_`)")]
pub struct BadEnvName(pub String);

/// An environment variable's name as a shell would set it (`export NAME=...`).
pub fn check_env_name(name: &str) -> Result<(), BadEnvName> {
    let mut chars = name.chars();
    let ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(BadEnvName(name.to_owned()))
    }
}

/// A boolean as sshd's configuration writes it: a PermitRootLogin as older
/// NixOS options had it, PasswordAuthentication.
pub fn yes_no(v: bool) -> &'static str {
    if v {
        "yes"
    } else {
        "no"
    }
}

/// A PermitRootLogin value sshd does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a PermitRootLogin value (yes, no, prohibit-password, forced-commands-only)")]
pub struct UnknownPermitRootLogin(pub String);

/// A PermitRootLogin value as `sshd -T` prints it (`without-password` is the old
/// name of `prohibit-password`).
pub fn permit_root_login_of_str(v: &str) -> Result<String, UnknownPermitRootLogin> {
    match v {
        "yes" | "no" | "prohibit-password" | "forced-commands-only" => Ok(v.into()),
        "without-password" => Ok("prohibit-password".into()),
        _ => Err(UnknownPermitRootLogin(v.to_owned())),
    }
}

/// A flake reference as `nix` should see it. A local directory is made absolute
/// against `base` (`nix` would resolve a relative one against its working
/// directory). A reference without a scheme is a directory when it is written
/// like a path (`./x`, `x/y`) or names one that exists (`fixtures/flake`), where
/// `nix` would look `fixtures/flake` up in the flake registry and fail offline;
/// only a bare name that is no directory (`nixpkgs`) stays a registry name
/// (`flake:nixpkgs/branch` names one with a branch). Other references
/// (`github:...`, `git+https:...`) stay as written.
pub fn flake_reference(reference: &str, base: &Path) -> String {
    let (scheme, rest) = match reference.strip_prefix("path:") {
        Some(rest) => ("path:", rest),
        None if reference.contains(':') => return reference.to_owned(),
        None => ("", reference),
    };
    let (path, query) = rest
        .split_once('?')
        .map_or((rest, None), |(p, q)| (p, Some(q)));
    let path = Path::new(path);
    if path.is_absolute() {
        return reference.to_owned();
    }
    let joined = base.join(path);
    let path_like =
        scheme == "path:" || rest.starts_with('.') || rest.contains('/') || joined.is_dir();
    if !path_like {
        return reference.to_owned(); // a registry name such as `nixpkgs`
    }
    let absolute = std::fs::canonicalize(&joined)
        .or_else(|_| std::path::absolute(&joined))
        .unwrap_or(joined);
    let mut out = format!("{scheme}{}", absolute.display());
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// The directory that must hold flake.nix for a local flake reference (`/a/b`,
/// `path:/a/b`, `git+file:///a/b`, each with `?dir=sub` honoured); `None` for a
/// remote or registry reference, which only `nix` can check.
pub fn local_flake_dir(reference: &str) -> Option<PathBuf> {
    let rest = if let Some(rest) = reference.strip_prefix("path:") {
        rest
    } else if let Some(rest) = reference
        .strip_prefix("git+file://")
        .or_else(|| reference.strip_prefix("git+file:"))
    {
        rest
    } else if reference.starts_with('/') {
        reference
    } else {
        return None;
    };
    let (path, query) = rest.split_once('?').map_or((rest, ""), |(p, q)| (p, q));
    match query.split('&').find_map(|kv| kv.strip_prefix("dir=")) {
        Some(dir) => Some(Path::new(path).join(dir)),
        None => Some(Path::new(path).to_owned()),
    }
}

/// Why a local flake reference cannot be a flake.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotAFlake {
    #[error("no such directory")]
    NoDirectory,
    #[error("{} has no flake.nix", dir.display())]
    NoFlakeNix { dir: PathBuf },
}

/// Why a local flake reference cannot be a flake (no such directory, or no
/// flake.nix in it); `Ok` for every other reference.
pub fn check_local_flake(reference: &str) -> Result<(), NotAFlake> {
    let Some(dir) = local_flake_dir(reference) else {
        return Ok(());
    };
    if !dir.is_dir() {
        Err(NotAFlake::NoDirectory)
    } else if !dir.join("flake.nix").is_file() {
        Err(NotAFlake::NoFlakeNix { dir })
    } else {
        Ok(())
    }
}
