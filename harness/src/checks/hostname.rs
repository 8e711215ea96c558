use super::probe::{first_line, run};
use super::result::{CheckResult, Outcome};
use crate::check_id::CheckId;
use crate::console::Shell;

/// What reads the kernel's hostname (`hostname` needs not be installed).
pub const HOSTNAME: &str = "cat /proc/sys/kernel/hostname";

/// The kernel's hostname (what `hostname` prints) equals the expected name.
pub fn hostname(shell: &mut Shell<'_>, expected: &str) -> CheckResult {
    crate::fault::check_starts("hostname");
    let command = HOSTNAME;
    let (outcome, actual, message, evidence) = match run(shell, command) {
        Ok(out) if out.status == 0 => {
            let actual = first_line(&out.output);
            let evidence = vec![format!("$ {command}"), actual.clone()];
            if actual == expected {
                (
                    Outcome::Pass,
                    actual,
                    format!("hostname is `{expected}`"),
                    evidence,
                )
            } else {
                let message =
                    format!("hostname mismatch: expected `{expected}`, the guest says `{actual}`");
                (Outcome::Fail, actual, message, evidence)
            }
        }
        Ok(out) => {
            let message = format!("`{command}` failed with status {}", out.status);
            (
                Outcome::Broken,
                String::new(),
                message,
                out.output.lines().map(str::to_owned).collect(),
            )
        }
        Err(e) => (Outcome::Broken, String::new(), e.message, e.lines),
    };
    CheckResult {
        name: CheckId::Hostname,
        outcome,
        expected: expected.into(),
        actual,
        message,
        evidence,
        secs: 0.0,
    }
}
