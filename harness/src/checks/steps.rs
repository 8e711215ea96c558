use super::result::{CheckResult, Outcome};
use crate::check_id::CheckId;
use crate::console::Shell;
use crate::scenario::Step;

/// Runs the scenario's own steps in order; each is a check named after it,
/// added to `results` as it ends. After a failed step the console is in an
/// unknown state, so the rest do not run.
pub fn steps(shell: &mut Shell<'_>, steps: &[Step], results: &mut Vec<CheckResult>) {
    let mut failed = false;
    for (i, step) in steps.iter().enumerate() {
        let name = step_name(i, step);
        if failed {
            results.push(CheckResult::not_run(name, "", "an earlier step failed"));
            continue;
        }
        let result = CheckResult::timed(|| run_step(shell, step, name));
        failed = !result.passed();
        results.push(result);
    }
}

/// Every step reported as not run, e.g. when there is no shell.
pub fn steps_not_run(steps: &[Step], why: &str) -> Vec<CheckResult> {
    steps
        .iter()
        .enumerate()
        .map(|(i, step)| CheckResult::not_run(step_name(i, step), "", why))
        .collect()
}

fn step_name(i: usize, step: &Step) -> CheckId {
    CheckId::Step {
        number: i + 1,
        what: describe(step),
    }
}

fn describe(step: &Step) -> String {
    match step {
        Step::Run { command, .. } => format!("run `{command}`"),
        Step::Send { bytes } => format!("send {:?}", String::from_utf8_lossy(bytes)),
        Step::Expect { pattern, .. } => format!("expect /{pattern}/"),
    }
}

/// How a step ended: its check's fields but the name.
struct Ended {
    outcome: Outcome,
    expected: String,
    actual: String,
    message: String,
    evidence: Vec<String>,
}

fn run_step(shell: &mut Shell<'_>, step: &Step, name: CheckId) -> CheckResult {
    let ended = match step {
        Step::Run {
            command,
            expect,
            exit,
            timeout,
        } => run_command(shell, command, expect.as_ref(), *exit, *timeout),
        Step::Send { bytes } => send(shell, bytes),
        Step::Expect { pattern, timeout } => expect_output(shell, pattern, *timeout),
    };
    CheckResult {
        name,
        outcome: ended.outcome,
        expected: ended.expected,
        actual: ended.actual,
        message: ended.message,
        evidence: ended.evidence,
        secs: 0.0,
    }
}

/// `run`: the command's exit status, and its output when a pattern is given.
fn run_command(
    shell: &mut Shell<'_>,
    command: &str,
    expect: Option<&regex::Regex>,
    exit: i32,
    timeout: std::time::Duration,
) -> Ended {
    let expected = match expect {
        Some(re) => format!("exit status {exit}, output matching /{re}/"),
        None => format!("exit status {exit}"),
    };
    let out = match shell.run(command, timeout) {
        Ok(out) => out,
        Err(e) => {
            let e = super::probe::NoEvidence::of_console(&e);
            return Ended {
                outcome: Outcome::Fail,
                expected,
                actual: String::new(),
                message: e.message,
                evidence: e.lines,
            };
        }
    };
    // Compared without the final newline (one: an empty last line
    // stays), so `^x86_64$` means the whole output.
    let text = out.output.strip_suffix('\n').unwrap_or(&out.output);
    let (outcome, message) = if out.status != exit {
        (
            Outcome::Fail,
            format!("exit status {} instead of {exit}", out.status),
        )
    } else if let Some(re) = expect.filter(|re| !re.is_match(text)) {
        (Outcome::Fail, format!("output does not match /{re}/"))
    } else {
        (Outcome::Pass, "as expected".into())
    };
    Ended {
        outcome,
        expected,
        actual: format!("exit status {}, output {:?}", out.status, text),
        message,
        evidence: std::iter::once(format!("$ {command}"))
            .chain(text.lines().map(str::to_owned))
            .collect(),
    }
}

/// `send`: the bytes went to the console.
fn send(shell: &mut Shell<'_>, bytes: &[u8]) -> Ended {
    let (outcome, message) = match shell.console().send(bytes) {
        Ok(()) => (Outcome::Pass, "sent".into()),
        Err(e) => (Outcome::Fail, crate::error::chain(&e)),
    };
    Ended {
        outcome,
        expected: String::new(),
        actual: String::new(),
        message,
        evidence: Vec::new(),
    }
}

/// `expect`: the console printed something matching, in time.
fn expect_output(
    shell: &mut Shell<'_>,
    pattern: &regex::Regex,
    timeout: std::time::Duration,
) -> Ended {
    let re =
        regex::bytes::Regex::new(pattern.as_str()).expect("a valid regex stays valid on bytes");
    let expected = format!("console output matching /{pattern}/");
    let timeout = timeout * shell.scale();
    match shell.console().expect(&[&re], timeout, &expected) {
        Ok(m) => Ended {
            outcome: Outcome::Pass,
            expected,
            actual: m.text,
            message: "seen".into(),
            evidence: Vec::new(),
        },
        Err(e) => Ended {
            outcome: Outcome::Fail,
            message: crate::error::chain(&e),
            evidence: e.lines().to_vec(),
            expected,
            actual: String::new(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::local::LocalShell;
    use std::time::Duration;

    fn run(command: &str, expect: &str, exit: i32) -> Vec<CheckResult> {
        let mut local = LocalShell::new();
        let step = Step::Run {
            command: command.into(),
            expect: Some(regex::Regex::new(expect).unwrap()),
            exit,
            timeout: Duration::from_secs(10),
        };
        let mut results = Vec::new();
        steps(&mut local.shell(), &[step.clone(), step], &mut results);
        results
    }

    #[test]
    fn a_step_matches_its_output_without_the_final_newline_only() {
        let passed = run("uname -s", "^Linux$", 0);
        assert!(passed.iter().all(CheckResult::passed), "{passed:?}");
        assert_eq!(passed[0].name.to_string(), "step 1: run `uname -s`");
        // One final newline is dropped, not every trailing one: an empty last line stays.
        assert!(run("printf 'a\\n\\n'", "^a\n$", 0)[0].passed());
        let failed = run("printf 'a\\n\\n'", "^a$", 0);
        assert_eq!(
            (failed[0].outcome, failed[0].message.as_str()),
            (Outcome::Fail, "output does not match /^a$/")
        );
        assert_eq!(failed[0].actual, r#"exit status 0, output "a\n""#);
        assert_eq!(
            (failed[1].outcome, failed[1].message.as_str()),
            (Outcome::NotRun, "not run: an earlier step failed")
        );
        let failed = run("false", "", 0);
        assert_eq!(failed[0].message, "exit status 1 instead of 0");
    }
}
