//! Scalar values in scenarios: durations (`90s`, `5m`), sizes (`1G`, `512M`),
//! host names and flake references.
//!
//! Every value is bounded by fixed caps, never by the host that parses it: a
//! scenario that is valid on one machine is valid on every machine, and no value
//! can overflow the arithmetic the harness does with it (a deadline is
//! `Instant::now() + timeout`, a step's wait is its timeout times the TCG scale).

use std::path::Path;
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

/// Parses a human duration such as `90s`, `5m` or `1m 30s`; a bare number is refused
/// because its unit would be a guess. Zero and more than a day are refused.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!(
            "duration `{text}` has no unit; write e.g. `{text}s` or `{text}m`"
        ));
    }
    let duration = humantime::parse_duration(text)
        .map_err(|e| format!("invalid duration `{text}`: {e} (e.g. `90s`, `5m`)"))?;
    if duration.is_zero() {
        return Err(format!(
            "duration `{text}` is zero; nothing can happen in it"
        ));
    }
    if duration > MAX_TIMEOUT {
        return Err(format!("duration `{text}` is longer than the limit of 24h"));
    }
    Ok(duration)
}

/// Parses a memory size (`1G`, `1536M`, `2GiB`) into MiB, the unit QEMU's `-m` takes,
/// between 128M and 1T.
pub fn parse_memory(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let bad = || format!("invalid memory size `{t}` (e.g. `1G`, `512M`)");
    let too_much = || format!("memory size `{t}` is more than the limit of 1T");
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
        return Err(format!(
            "memory size `{t}` is below 128M, too little to boot a Linux ISO"
        ));
    }
    Ok(mib)
}

/// A host name a Linux guest can have: at most 64 bytes (the kernel's limit),
/// dot-separated labels of ASCII letters, digits, hyphens and underscores (hostname(7)
/// names the first three; NixOS's `networking.hostName` also takes `_`), none empty
/// and none starting or ending with a hyphen. The check compares it with the
/// guest's /proc/sys/kernel/hostname: a name no guest can have would fail every trial.
pub fn check_hostname(name: &str) -> Result<(), String> {
    if name.len() > MAX_HOSTNAME_LEN {
        return Err(format!(
            "`{name}` is {} characters long; a Linux host name has at most {MAX_HOSTNAME_LEN}",
            name.len()
        ));
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
        Err(format!(
            "`{name}` is not a valid host name (letters, digits, `-` and `_`, in labels separated by dots)"
        ))
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
pub fn local_flake_dir(reference: &str) -> Option<std::path::PathBuf> {
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

/// Why a local flake reference cannot be a flake (no such directory, or no
/// flake.nix in it); `Ok` for every other reference.
pub fn check_local_flake(reference: &str) -> Result<(), String> {
    let Some(dir) = local_flake_dir(reference) else {
        return Ok(());
    };
    if !dir.is_dir() {
        Err("no such directory".to_owned())
    } else if !dir.join("flake.nix").is_file() {
        Err(format!("{} has no flake.nix", dir.display()))
    } else {
        Ok(())
    }
}
