//! What `isotest run` shows while it runs. On a terminal, a live line per running
//! trial with its phase and elapsed time (indicatif), above the lines of the
//! trials that finished; elsewhere (CI logs, pipes) only a plain line per
//! finished trial. Phases come from the boot itself (`run::Progress::phase`),
//! so nothing here watches the console.

use crate::console::attach::ESCAPE_HELP;
use crate::console::Phase;
use crate::plan::Trial;
use crate::report::{render_line, TrialReport};
use crate::run::{KeptMachine, Progress};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// The live display, once there is one: logs are written around it (`LogWriter`).
static LIVE: OnceLock<MultiProgress> = OnceLock::new();

/// The display for this run: live when standard output is a terminal.
pub fn for_stdout() -> Box<dyn Progress> {
    if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        Box::new(Live::new())
    } else {
        Box::new(Plain)
    }
}

/// A line per finished trial, as it finishes: what a CI log shows.
pub struct Plain;

impl Progress for Plain {
    fn done(&self, report: &TrialReport) {
        println!("{}", render_line(report));
    }

    fn kept(&self, report: &TrialReport, kept: &KeptMachine) {
        eprintln!("{}", kept_message(report, kept));
    }
}

/// A bar per running trial, redrawn by indicatif's own ticker (for the elapsed
/// time) and at each phase.
pub struct Live {
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ProgressBar>>,
}

impl Live {
    fn new() -> Live {
        let multi = LIVE
            .get_or_init(|| MultiProgress::with_draw_target(ProgressDrawTarget::stdout()))
            .clone();
        Live {
            multi,
            bars: Mutex::new(HashMap::new()),
        }
    }

    fn bar(&self, name: &str) -> Option<ProgressBar> {
        self.bars
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }
}

impl Progress for Live {
    fn started(&self, trial: &Trial) {
        let style = ProgressStyle::with_template("{spinner} {prefix}  {msg}  {elapsed}")
            .expect("static template");
        let bar = self.multi.add(
            ProgressBar::new_spinner()
                .with_style(style)
                .with_prefix(trial.name()),
        );
        bar.set_message("starting");
        bar.enable_steady_tick(Duration::from_millis(250));
        self.bars
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(trial.name(), bar);
    }

    fn phase(&self, trial: &Trial, phase: Phase) {
        if let Some(bar) = self.bar(&trial.name()) {
            bar.set_message(phase.to_string());
        }
    }

    fn restoring(&self, trial: &Trial, booted_by: &str) {
        if let Some(bar) = self.bar(&trial.name()) {
            bar.set_message(format!("restoring the machine {booted_by} saved"));
        }
    }

    fn done(&self, report: &TrialReport) {
        if let Some(bar) = self
            .bars
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&report.name)
        {
            bar.finish_and_clear();
            self.multi.remove(&bar);
        }
        // Above the bars, where it stays.
        let _ = self.multi.println(render_line(report));
    }

    fn kept(&self, report: &TrialReport, kept: &KeptMachine) {
        let _ = self.multi.println(kept_message(report, kept));
    }
}

/// How to reach a failed trial's machine, kept running.
fn kept_message(report: &TrialReport, kept: &KeptMachine) -> String {
    let socket = kept.socket.display();
    format!(
        "{name}: failed; its QEMU (pid {pid}) is kept running, private directory {dir}\n  \
         attach: isotest console --attach {socket}   (leave with {ESCAPE_HELP})\n  \
         or:     socat -,raw,echo=0 UNIX-CONNECT:{socket}\n  \
         press Ctrl-C to stop it",
        name = report.name,
        pid = kept.pid(),
        dir = kept.private_dir().display(),
    )
}

/// Log lines on stderr, written around the live display so they do not tear it.
#[derive(Clone, Copy, Default)]
pub struct LogWriter;

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match LIVE.get() {
            Some(multi) => multi.suspend(|| std::io::stderr().write(buf)),
            None => std::io::stderr().write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogWriter;
    fn make_writer(&'a self) -> LogWriter {
        LogWriter
    }
}
