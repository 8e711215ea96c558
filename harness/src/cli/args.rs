//! The command line: every subcommand, option and value parser, as clap reads
//! them. The subcommands' work is in the sibling modules.

use clap::{Parser, Subcommand};
use isotest::matrix::{Format, RunnerOverride};
use isotest::plan::Shard;
use isotest::platform::{AccelChoice, Arch, Firmware};
use isotest::report::EXIT_STATUS_HELP;
use isotest::scenario::MaxSlowdown;
use std::path::PathBuf;

/// Boots rescue/installer ISOs under QEMU and checks them against YAML scenarios.
#[derive(Parser)]
#[command(name = "isotest", version, about, long_about = None, after_help = EXIT_STATUS_HELP)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Boot each trial of the scenarios and run its checks; exits 1 if any fails.
    #[command(after_help = EXIT_STATUS_HELP)]
    Run(RunArgs),
    /// Boot an ISO as a trial would (same QEMU command line, firmware, KVM
    /// probe) and put this terminal on its serial console, in raw mode; you
    /// drive the boot menu. Leave with Ctrl-] then q, which stops QEMU.
    Console(ConsoleArgs),
    /// Merge the results of runs or shards (artifact directories with their
    /// trials' report.json, or files written by --json) into one report.
    #[command(after_help = EXIT_STATUS_HELP)]
    Report(ReportArgs),
    /// Compare two stored runs (--json results, or artifact directories as
    /// `report` reads them): a check that passed in OLD and fails in NEW, or a
    /// phase slower beyond the threshold, is a regression. Exits 1 on a
    /// regression, 0 otherwise, 2 for bad input.
    Compare(CompareArgs),
    /// List the trials (scenario::arch::firmware) the scenarios expand into, a
    /// trial that cannot run here followed by `skipped: <reason>`; or with
    /// --flake alone the ISO hosts of a flake.
    List(ListArgs),
    /// Print the trials as a CI matrix: for GitHub Actions the JSON that
    /// `strategy.matrix` takes through `fromJSON`, for GitLab CI a child pipeline
    /// with `parallel:matrix`. The same on every machine: trials skipped here are
    /// listed too.
    Matrix(MatrixArgs),
}

#[derive(clap::Args)]
pub struct RunArgs {
    /// Scenario files (default: scenarios/*.yaml).
    pub scenarios: Vec<PathBuf>,
    /// Test this ISO file instead of the one the scenario names.
    #[arg(long)]
    pub image: Option<PathBuf>,
    /// Also run every trial on this known-good ISO, against the same
    /// expectations, and compare (default: the scenario's `baseline:`). A
    /// check that passed on it and fails now, or a phase slower beyond the
    /// scenario's `max_slowdown:`, is a regression: exit 1.
    #[arg(long, value_name = "ISO")]
    pub baseline: Option<PathBuf>,
    /// The nix-wire flake of `iso:` hosts (default: the scenario's `flake:`,
    /// $ISOTEST_FLAKE, else the nearest flake.nix up from the scenario).
    #[arg(long)]
    pub flake: Option<String>,
    /// Test this ISO host of the flake with the expectations its configuration
    /// implies, without a scenario file (repeatable).
    #[arg(long = "iso", value_name = "HOST")]
    pub hosts: Vec<String>,
    /// KVM if a probe guest runs under it, else TCG (auto); or force one
    /// (default: the scenario's `accel:`, else auto).
    #[arg(long, value_enum)]
    pub accel: Option<AccelChoice>,
    /// Where transcripts and reports go, one directory per trial.
    #[arg(long, default_value = "target/isotest", env = "ISOTEST_ARTIFACTS")]
    pub artifacts: PathBuf,
    /// Only trials whose name contains this text (e.g. `rescue::x86_64`).
    #[arg(long)]
    pub filter: Option<String>,
    /// Only the trial of exactly this name (repeatable), as `isotest matrix`
    /// lists it: `rescue::x86_64::bios`.
    #[arg(long = "trial", value_name = "NAME")]
    pub trials: Vec<String>,
    #[command(flatten)]
    pub shard: ShardArg,
    /// Trials at once, 1 to 1024 (default: one per host core, as many as
    /// three quarters of the host's memory holds).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub jobs: Option<u32>,
    /// Virtual CPUs per guest, 1 to 256 (default: 2, or 1 when the guests
    /// booting at once would otherwise ask for more virtual CPUs than the
    /// host has cores, e.g. two or more trials at once on 2 cores).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub cpus: Option<u32>,
    /// A trial that cannot run here (skipped, e.g. no OVMF) is "could not
    /// test" (exit 3), not a skip; said before anything boots.
    #[arg(long)]
    pub require_all: bool,
    /// Leave a failed trial's QEMU running and say how to attach to its
    /// console; the run waits until QEMU exits or Ctrl-C stops it.
    #[arg(long)]
    pub keep_on_failure: bool,
    /// Boot every trial from power-on. By default, trials of one image,
    /// architecture, firmware, memory size and boot (menu entry, console
    /// login) boot it once: the first saves its machine at the shell and the
    /// others start from that state, each in a QEMU of its own.
    #[arg(long)]
    pub fresh_boot: bool,
    #[command(flatten)]
    pub outputs: Outputs,
}

#[derive(clap::Args)]
pub struct ConsoleArgs {
    /// A scenario file: its trial of --arch and --firmware (default: its first).
    #[arg(required_unless_present_any = ["image", "attach"])]
    pub scenario: Option<PathBuf>,
    /// Boot this ISO file (instead of the scenario's).
    #[arg(long)]
    pub image: Option<PathBuf>,
    /// bios or uefi (default: the scenario's first; bios for --image on x86_64).
    #[arg(long)]
    pub firmware: Option<Firmware>,
    /// x86_64 or aarch64 (default: the scenario's first; this host's for --image).
    #[arg(long)]
    pub arch: Option<Arch>,
    /// KVM if a probe guest runs under it, else TCG (auto); or force one.
    #[arg(long, value_enum)]
    pub accel: Option<AccelChoice>,
    /// The nix-wire flake of an `iso:` host (as for `run`).
    #[arg(long)]
    pub flake: Option<String>,
    /// Below this, in console/<trial>, go QEMU's stderr and command line
    /// (a run's artifacts of the trial are left as they are).
    #[arg(long, default_value = "target/isotest", env = "ISOTEST_ARTIFACTS")]
    pub artifacts: PathBuf,
    /// Attach to the console socket of a machine kept by `run
    /// --keep-on-failure` instead of booting one.
    #[arg(long, value_name = "SOCKET", conflicts_with_all = ["scenario", "image", "firmware", "arch", "accel", "flake"])]
    pub attach: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct ReportArgs {
    /// Artifact directories, report.json files or --json results.
    #[arg(required = true)]
    pub sources: Vec<PathBuf>,
    #[command(flatten)]
    pub outputs: Outputs,
}

#[derive(clap::Args)]
pub struct CompareArgs {
    /// The known-good run.
    pub old: PathBuf,
    /// The run to judge.
    pub new: PathBuf,
    /// A phase is a regression when slower by more than this fraction of
    /// its time in OLD (0.2: 20 %)...
    #[arg(long, value_name = "FRACTION", default_value_t = MaxSlowdown::default().fraction, value_parser = fraction)]
    pub max_slowdown: f64,
    /// ...and by more than these seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = MaxSlowdown::default().seconds, value_parser = seconds)]
    pub max_slowdown_secs: f64,
    #[command(flatten)]
    pub outputs: Outputs,
}

#[derive(clap::Args)]
pub struct ListArgs {
    /// Scenario files (default: scenarios/*.yaml).
    pub scenarios: Vec<PathBuf>,
    /// List this flake's ISO hosts (hosts/iso/*).
    #[arg(long)]
    pub flake: Option<String>,
    #[command(flatten)]
    pub shard: ShardArg,
}

#[derive(clap::Args)]
pub struct MatrixArgs {
    /// Scenario files (default: scenarios/*.yaml). Each must name its `arch:`.
    pub scenarios: Vec<PathBuf>,
    #[arg(long, value_enum, default_value_t = Format::Github)]
    pub format: Format,
    /// The runner labels (GitHub) or tags (GitLab) of one kind of trial,
    /// replacing the default (repeatable): KIND=LABEL[,LABEL...], KIND one of
    /// x86_64, aarch64, x86_64-kvm, aarch64-kvm (trials of `accel: kvm`).
    #[arg(long = "runner", value_name = "KIND=LABELS")]
    pub runners: Vec<RunnerOverride>,
    /// GitLab: the file the child pipeline includes, with the hidden jobs
    /// `.isotest-trial` and `.isotest-report`.
    #[arg(long, default_value = "ci/nightly/gitlab-jobs.yml")]
    pub gitlab_jobs: String,
    #[command(flatten)]
    pub shard: ShardArg,
}

#[derive(clap::Args)]
pub struct ShardArg {
    /// Only the K-th of N slices of the trials (round robin in plan order; every
    /// trial is in exactly one shard). Needs `arch:` in every scenario.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<Shard>,
}

/// Reports written besides the terminal's.
#[derive(clap::Args)]
pub struct Outputs {
    /// Write JUnit XML here (a test suite per trial, a test case per check).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Write the versioned JSON result of the whole run here (docs/result.schema.json).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write a self-contained HTML page here (the matrix, timelines, failures).
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

/// `--max-slowdown`: bounded as the scenario's `max_slowdown.fraction` is.
fn fraction(text: &str) -> Result<f64, String> {
    let f: f64 = text
        .parse()
        .map_err(|_| format!("`{text}` is not a number (0.2 is 20 %)"))?;
    let max = isotest::scenario::MAX_SLOWDOWN_FRACTION;
    if f > 0.0 && f <= max {
        Ok(f)
    } else {
        Err(format!(
            "{f} is out of bounds: more than 0 and at most {max}"
        ))
    }
}

/// `--max-slowdown-secs`: bounded as the scenario's `max_slowdown.seconds` is.
fn seconds(text: &str) -> Result<f64, String> {
    let s: f64 = text
        .parse()
        .map_err(|_| format!("`{text}` is not a number of seconds"))?;
    let max = isotest::scenario::MAX_SLOWDOWN_SECONDS;
    if (0.0..=max).contains(&s) {
        Ok(s)
    } else {
        Err(format!("{s} is out of bounds: 0 to {max}"))
    }
}
