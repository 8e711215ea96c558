//! Scalar values in scenarios: durations (`90s`, `5m`) and sizes (`1G`, `512M`).

use std::time::Duration;

/// Parses a human duration such as `90s`, `5m` or `1m 30s`; a bare number is refused
/// because its unit would be a guess.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!("duration `{text}` has no unit; write e.g. `{text}s` or `{text}m`"));
    }
    humantime::parse_duration(text).map_err(|e| format!("invalid duration `{text}`: {e} (e.g. `90s`, `5m`)"))
}

/// Parses a memory size (`1G`, `1536M`, `2GiB`) into MiB, the unit QEMU's `-m` takes.
pub fn parse_memory(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let bad = || format!("invalid memory size `{t}` (e.g. `1G`, `512M`)");
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let mib = match unit.trim() {
        "M" | "MiB" | "MB" => n,
        "G" | "GiB" | "GB" => n * 1024,
        _ => return Err(bad()),
    };
    if mib < 128 {
        return Err(format!("memory size `{t}` is below 128M, too little to boot a Linux ISO"));
    }
    Ok(mib)
}
