//! Running `nix`: flakes switched on (older Nix needs it), errors trimmed to the
//! lines that help, and progress forwarded to the log while it runs.

use super::error::FlakeError;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;

/// How many lines of nix's stderr a failure keeps.
const TAIL: usize = 40;

pub struct Output {
    pub stdout: String,
}

pub struct Failure {
    /// nix's error, from its first `error:` line, without the trace hint.
    pub message: String,
    /// What nix printed before the error: with --print-build-logs, the end of the
    /// build log (`drv-name> line`), which the error then does not repeat.
    pub before: Vec<String>,
}

/// Runs `nix ARGS`, forwarding stderr lines to `progress` as they come.
pub fn run(
    args: &[&str],
    purpose: &str,
    progress: &mut dyn FnMut(&str),
) -> Result<Result<Output, Failure>, FlakeError> {
    let mut child = Command::new("nix")
        .args(["--extra-experimental-features", "nix-command flakes"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => FlakeError::NixMissing {
                purpose: purpose.to_owned(),
            },
            _ => FlakeError::Spawn(Arc::new(e)),
        })?;
    let stdout = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || std::io::read_to_string(stdout).unwrap_or_default());
    let mut tail: std::collections::VecDeque<String> = Default::default();
    for line in BufReader::new(child.stderr.take().expect("piped"))
        .lines()
        .map_while(Result::ok)
    {
        progress(&line);
        if tail.len() == TAIL {
            tail.pop_front();
        }
        tail.push_back(line);
    }
    let status = child.wait().map_err(|e| FlakeError::Wait(Arc::new(e)))?;
    let stdout = reader.join().unwrap_or_default();
    if status.success() {
        return Ok(Ok(Output { stdout }));
    }
    let lines: Vec<String> = tail.into_iter().collect();
    let start = lines
        .iter()
        .position(|l| l.starts_with("error:"))
        .unwrap_or(0);
    let before = lines[..start]
        .iter()
        .filter(|l| !l.starts_with("warning:"))
        .cloned()
        .collect();
    Ok(Err(Failure {
        message: trim_error(&lines),
        before,
    }))
}

/// nix's error without the noise: from the first `error:` line on, without
/// `(use '--show-trace' ...)`, with nix's continuation indent removed.
pub fn trim_error(lines: &[String]) -> String {
    let start = lines
        .iter()
        .position(|l| l.starts_with("error:"))
        .unwrap_or(0);
    let kept: Vec<&str> = lines[start..]
        .iter()
        .map(String::as_str)
        .filter(|l| !l.starts_with("(use '--show-trace'"))
        .collect();
    let indent = kept
        .iter()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    let mut out: Vec<String> = Vec::new();
    for (i, line) in kept.iter().enumerate() {
        let line = if i == 0 {
            line
        } else {
            line.get(indent..).unwrap_or(line.trim_start())
        };
        out.push(format!("  {}", line.trim_end()));
    }
    while out.last().is_some_and(|l| l.trim().is_empty()) {
        out.pop();
    }
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_lose_the_trace_hint_and_the_indent() {
        let lines: Vec<String> = [
            "warning: Git tree is dirty",
            "error: The option `services.getty.autologinUser' has conflicting definition values:",
            "              - In `a.nix': \"nixos\"",
            "              - In `b.nix': \"root\"",
            "(use '--show-trace' to show detailed location information)",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            trim_error(&lines),
            "  error: The option `services.getty.autologinUser' has conflicting definition values:\n  \
             - In `a.nix': \"nixos\"\n  - In `b.nix': \"root\""
        );
    }
}
