use super::{CheckId, CheckResult, Outcome};
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

fn run_step(shell: &mut Shell<'_>, step: &Step, name: CheckId) -> CheckResult {
    let check =
        |outcome, expected: String, actual: String, message: String, evidence: Vec<String>| {
            CheckResult {
                name: name.clone(),
                outcome,
                expected,
                actual,
                message,
                evidence,
                secs: 0.0,
            }
        };
    match step {
        Step::Run {
            command,
            expect,
            exit,
            timeout,
        } => {
            let expected = match expect {
                Some(re) => format!("exit status {exit}, output matching /{re}/"),
                None => format!("exit status {exit}"),
            };
            match shell.run(command, *timeout) {
                Ok(out) => {
                    // Compared without the final newline (one: an empty last line
                    // stays), so `^x86_64$` means the whole output.
                    let text = out.output.strip_suffix('\n').unwrap_or(&out.output);
                    let evidence = std::iter::once(format!("$ {command}"))
                        .chain(text.lines().map(str::to_owned))
                        .collect();
                    let actual = format!("exit status {}, output {:?}", out.status, text);
                    if out.status != *exit {
                        check(
                            Outcome::Fail,
                            expected,
                            actual,
                            format!("exit status {} instead of {exit}", out.status),
                            evidence,
                        )
                    } else if expect.as_ref().is_some_and(|re| !re.is_match(text)) {
                        let re = expect.as_ref().expect("checked");
                        check(
                            Outcome::Fail,
                            expected,
                            actual,
                            format!("output does not match /{re}/"),
                            evidence,
                        )
                    } else {
                        check(
                            Outcome::Pass,
                            expected,
                            actual,
                            "as expected".into(),
                            evidence,
                        )
                    }
                }
                Err(e) => {
                    let e = super::NoEvidence::of_console(&e);
                    check(Outcome::Fail, expected, String::new(), e.message, e.lines)
                }
            }
        }
        Step::Send { bytes } => match shell.console().send(bytes) {
            Ok(()) => check(
                Outcome::Pass,
                String::new(),
                String::new(),
                "sent".into(),
                Vec::new(),
            ),
            Err(e) => check(
                Outcome::Fail,
                String::new(),
                String::new(),
                e.to_string(),
                Vec::new(),
            ),
        },
        Step::Expect { pattern, timeout } => {
            let re = regex::bytes::Regex::new(pattern.as_str())
                .expect("a valid regex stays valid on bytes");
            let expected = format!("console output matching /{pattern}/");
            let timeout = *timeout * shell.scale();
            match shell.console().expect(&[&re], timeout, &expected) {
                Ok(m) => check(Outcome::Pass, expected, m.text, "seen".into(), Vec::new()),
                Err(e) => {
                    let lines = e.lines().to_vec();
                    check(Outcome::Fail, expected, String::new(), e.to_string(), lines)
                }
            }
        }
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
