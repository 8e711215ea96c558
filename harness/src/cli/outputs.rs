//! The reports a command writes besides the terminal's (`--json`, `--junit`,
//! `--html`), and what writing them does to the exit status.

use super::args::Outputs;
use isotest::report::{
    parent_dir, render_html, render_junit, write_file, RunResult, EXIT_COULD_NOT_TEST, EXIT_PASS,
};

impl Outputs {
    /// Writes each report asked for, with the result's comparison with a
    /// baseline if it has one, and gives the exit status. A report that cannot
    /// be written does not stop the others (each error is said) and does not
    /// hide the verdicts: `status` stays, unless it was a pass, which becomes
    /// "could not test" (CI would find no report of it).
    pub fn write(&self, result: &RunResult, status: u8) -> u8 {
        let reports = result.reports();
        let comparison = result.comparison.as_ref();
        let mut outcomes = Vec::new();
        if let Some(path) = &self.json {
            outcomes.push(result.write(path));
        }
        if let Some(path) = &self.junit {
            outcomes
                .push(render_junit(&reports, comparison).and_then(|xml| write_file(path, &xml)));
        }
        if let Some(path) = &self.html {
            outcomes.push(write_file(
                path,
                &render_html(&reports, parent_dir(path), comparison),
            ));
        }
        let mut all_written = true;
        for e in outcomes.into_iter().filter_map(Result::err) {
            eprintln!("error: {}", isotest::error::chain(&e));
            all_written = false;
        }
        if all_written || status != EXIT_PASS {
            status
        } else {
            EXIT_COULD_NOT_TEST
        }
    }
}
