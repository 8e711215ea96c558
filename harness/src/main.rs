//! The `isotest` command: parses arguments and calls the library.

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use isotest::console::attach::{attach_terminal, restore_terminal, Detached, ESCAPE_HELP};
use isotest::matrix::{self, Format, RunnerOverride, Runners};
use isotest::plan::{self, Shard, Trial};
use isotest::platform::{AccelChoice, Arch, Firmware};
use isotest::qemu::{kill_all_machines, remove_private_dirs};
use isotest::report::{
    exit_status, merge, parent_dir, render_comparison, render_failure, render_html, render_junit,
    render_line, render_regressions, render_summary, write_file, Comparison, RunResult, Summary,
    EXIT_COULD_NOT_TEST, EXIT_FAIL, EXIT_PASS, EXIT_STATUS_HELP, EXIT_USAGE,
};
use isotest::run::{run_baselines, run_trials, start_for_console, RunOptions};
use isotest::scenario::{MaxSlowdown, Scenario};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// Boots rescue/installer ISOs under QEMU and checks them against YAML scenarios.
#[derive(Parser)]
#[command(name = "isotest", version, about, long_about = None, after_help = EXIT_STATUS_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Boot each trial of the scenarios and run its checks; exits 1 if any fails.
    #[command(after_help = EXIT_STATUS_HELP)]
    Run {
        /// Scenario files (default: scenarios/*.yaml).
        scenarios: Vec<PathBuf>,
        /// Test this ISO file instead of the one the scenario names.
        #[arg(long)]
        image: Option<PathBuf>,
        /// Also run every trial on this known-good ISO, against the same
        /// expectations, and compare (default: the scenario's `baseline:`). A
        /// check that passed on it and fails now, or a phase slower beyond the
        /// scenario's `max_slowdown:`, is a regression: exit 1.
        #[arg(long, value_name = "ISO")]
        baseline: Option<PathBuf>,
        /// The nix-wire flake of `iso:` hosts (default: the scenario's `flake:`,
        /// $ISOTEST_FLAKE, else the nearest flake.nix up from the scenario).
        #[arg(long)]
        flake: Option<String>,
        /// Test this ISO host of the flake with the expectations its configuration
        /// implies, without a scenario file (repeatable).
        #[arg(long = "iso", value_name = "HOST")]
        hosts: Vec<String>,
        /// KVM if a probe guest runs under it, else TCG (auto); or force one
        /// (default: the scenario's `accel:`, else auto).
        #[arg(long, value_enum)]
        accel: Option<AccelChoice>,
        /// Where transcripts and reports go, one directory per trial.
        #[arg(long, default_value = "target/isotest", env = "ISOTEST_ARTIFACTS")]
        artifacts: PathBuf,
        /// Only trials whose name contains this text (e.g. `rescue::x86_64`).
        #[arg(long)]
        filter: Option<String>,
        /// Only the trial of exactly this name (repeatable), as `isotest matrix`
        /// lists it: `rescue::x86_64::bios`.
        #[arg(long = "trial", value_name = "NAME")]
        trials: Vec<String>,
        #[command(flatten)]
        shard: ShardArg,
        /// Trials at once, 1 to 1024 (default: one per host core, as many as
        /// three quarters of the host's memory holds).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1024))]
        jobs: Option<u32>,
        /// Virtual CPUs per guest, 1 to 256 (default: 2, or 1 when the guests
        /// booting at once would otherwise ask for more virtual CPUs than the
        /// host has cores, e.g. two or more trials at once on 2 cores).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=256))]
        cpus: Option<u32>,
        /// A trial that cannot run here (skipped, e.g. no OVMF) is "could not
        /// test" (exit 3), not a skip; said before anything boots.
        #[arg(long)]
        require_all: bool,
        /// Leave a failed trial's QEMU running and say how to attach to its
        /// console; the run waits until QEMU exits or Ctrl-C stops it.
        #[arg(long)]
        keep_on_failure: bool,
        #[command(flatten)]
        outputs: Outputs,
    },
    /// Boot an ISO as a trial would (same QEMU command line, firmware, KVM
    /// probe) and put this terminal on its serial console, in raw mode; you
    /// drive the boot menu. Leave with Ctrl-] then q, which stops QEMU.
    Console {
        /// A scenario file: its trial of --arch and --firmware (default: its first).
        #[arg(required_unless_present_any = ["image", "attach"])]
        scenario: Option<PathBuf>,
        /// Boot this ISO file (instead of the scenario's).
        #[arg(long)]
        image: Option<PathBuf>,
        /// bios or uefi (default: the scenario's first; bios for --image on x86_64).
        #[arg(long)]
        firmware: Option<Firmware>,
        /// x86_64 or aarch64 (default: the scenario's first; this host's for --image).
        #[arg(long)]
        arch: Option<Arch>,
        /// KVM if a probe guest runs under it, else TCG (auto); or force one.
        #[arg(long, value_enum)]
        accel: Option<AccelChoice>,
        /// The nix-wire flake of an `iso:` host (as for `run`).
        #[arg(long)]
        flake: Option<String>,
        /// Below this, in console/<trial>, go QEMU's stderr and command line
        /// (a run's artifacts of the trial are left as they are).
        #[arg(long, default_value = "target/isotest", env = "ISOTEST_ARTIFACTS")]
        artifacts: PathBuf,
        /// Attach to the console socket of a machine kept by `run
        /// --keep-on-failure` instead of booting one.
        #[arg(long, value_name = "SOCKET", conflicts_with_all = ["scenario", "image", "firmware", "arch", "accel", "flake"])]
        attach: Option<PathBuf>,
    },
    /// Merge the results of runs or shards (artifact directories with their
    /// trials' report.json, or files written by --json) into one report.
    #[command(after_help = EXIT_STATUS_HELP)]
    Report {
        /// Artifact directories, report.json files or --json results.
        #[arg(required = true)]
        sources: Vec<PathBuf>,
        #[command(flatten)]
        outputs: Outputs,
    },
    /// Compare two stored runs (--json results, or artifact directories as
    /// `report` reads them): a check that passed in OLD and fails in NEW, or a
    /// phase slower beyond the threshold, is a regression. Exits 1 on a
    /// regression, 0 otherwise, 2 for bad input.
    Compare {
        /// The known-good run.
        old: PathBuf,
        /// The run to judge.
        new: PathBuf,
        /// A phase is a regression when slower by more than this fraction of
        /// its time in OLD (0.2: 20 %)...
        #[arg(long, value_name = "FRACTION", default_value_t = MaxSlowdown::default().fraction, value_parser = fraction)]
        max_slowdown: f64,
        /// ...and by more than these seconds.
        #[arg(long, value_name = "SECONDS", default_value_t = MaxSlowdown::default().seconds, value_parser = seconds)]
        max_slowdown_secs: f64,
        #[command(flatten)]
        outputs: Outputs,
    },
    /// List the trials (scenario::arch::firmware) the scenarios expand into, a
    /// trial that cannot run here followed by `skipped: <reason>`; or with
    /// --flake alone the ISO hosts of a flake.
    List {
        /// Scenario files (default: scenarios/*.yaml).
        scenarios: Vec<PathBuf>,
        /// List this flake's ISO hosts (hosts/iso/*).
        #[arg(long)]
        flake: Option<String>,
        #[command(flatten)]
        shard: ShardArg,
    },
    /// Print the trials as a CI matrix: for GitHub Actions the JSON that
    /// `strategy.matrix` takes through `fromJSON`, for GitLab CI a child pipeline
    /// with `parallel:matrix`. The same on every machine: trials skipped here are
    /// listed too.
    Matrix {
        /// Scenario files (default: scenarios/*.yaml). Each must name its `arch:`.
        scenarios: Vec<PathBuf>,
        #[arg(long, value_enum, default_value_t = Format::Github)]
        format: Format,
        /// The runner labels (GitHub) or tags (GitLab) of one kind of trial,
        /// replacing the default (repeatable): KIND=LABEL[,LABEL...], KIND one of
        /// x86_64, aarch64, x86_64-kvm, aarch64-kvm (trials of `accel: kvm`).
        #[arg(long = "runner", value_name = "KIND=LABELS")]
        runners: Vec<RunnerOverride>,
        /// GitLab: the file the child pipeline includes, with the hidden jobs
        /// `.isotest-trial` and `.isotest-report`.
        #[arg(long, default_value = "ci/nightly/gitlab-jobs.yml")]
        gitlab_jobs: String,
        #[command(flatten)]
        shard: ShardArg,
    },
}

#[derive(clap::Args)]
struct ShardArg {
    /// Only the K-th of N slices of the trials (round robin in plan order; every
    /// trial is in exactly one shard). Needs `arch:` in every scenario.
    #[arg(long, value_name = "K/N")]
    shard: Option<Shard>,
}

/// Reports written besides the terminal's.
#[derive(clap::Args)]
struct Outputs {
    /// Write JUnit XML here (a test suite per trial, a test case per check).
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Write the versioned JSON result of the whole run here (docs/result.schema.json).
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write a self-contained HTML page here (the matrix, timelines, failures).
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
}

impl Outputs {
    /// Writes each report asked for, with the result's comparison with a
    /// baseline if it has one, and gives the exit status. A report that cannot
    /// be written does not stop the others (each error is said) and does not
    /// hide the verdicts: `status` stays, unless it was a pass, which becomes
    /// "could not test" (CI would find no report of it).
    fn write(&self, result: &RunResult, status: u8) -> u8 {
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

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ISOTEST_LOG")
                .unwrap_or_else(|_| "isotest=info".into()),
        )
        .with_writer(isotest::progress::LogWriter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .without_time()
        .init();
    // Ctrl-C and SIGTERM: no QEMU and no private directory may outlive us, and
    // a terminal left raw by `console` is put back.
    let _ = ctrlc::set_handler(|| {
        kill_all_machines();
        remove_private_dirs();
        restore_terminal();
        eprintln!("isotest: interrupted; QEMU stopped");
        std::process::exit(130);
    });
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", explain(&e));
            ExitCode::from(EXIT_USAGE)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::List {
            scenarios,
            flake: Some(flake),
            shard,
        } if scenarios.is_empty() => {
            if shard.shard.is_some() {
                bail!("--shard slices trials; `list --flake` lists a flake's hosts");
            }
            let hosts = isotest::flake::iso_hosts(&flake)?;
            if hosts.is_empty() {
                bail!("{flake} has no ISO hosts (hosts/iso/<name>.nix or hosts/iso/<name>/default.nix)");
            }
            for host in hosts {
                println!("{:<20} {}", host.name, host.file.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::List {
            scenarios,
            flake: _,
            shard,
        } => {
            for trial in load_shard(&scenarios, &[], shard.shard, false)? {
                match &trial.skip {
                    None => println!("{}", trial.name()),
                    Some(reason) => println!("{}  skipped: {reason}", trial.name()),
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Report { sources, outputs } => {
            let result = merge(&sources)?;
            let reports = result.reports();
            for report in &reports {
                println!("{}", render_line(report));
            }
            explain_failures(&reports);
            let summary = Summary::of(&reports);
            println!("\n{}", render_summary(&summary));
            // A run's regressions, carried by its --json result, count as the run counted them.
            if let Some(line) = result.comparison.as_ref().and_then(render_regressions) {
                println!("{line}");
            }
            let status = exit_status(&summary, result.comparison.as_ref(), false);
            Ok(ExitCode::from(outputs.write(&result, status)))
        }
        Command::Compare {
            old,
            new,
            max_slowdown,
            max_slowdown_secs,
            outputs,
        } => {
            let old_run = merge(std::slice::from_ref(&old))
                .with_context(|| format!("OLD {}", old.display()))?;
            let mut result = merge(std::slice::from_ref(&new))
                .with_context(|| format!("NEW {}", new.display()))?;
            let max = MaxSlowdown {
                fraction: max_slowdown,
                seconds: max_slowdown_secs,
            };
            let comparison = Comparison::by_name(&old_run.reports(), &result.reports(), max);
            print!("{}", render_comparison(&comparison));
            if let Some(line) = render_regressions(&comparison) {
                println!("\n{line}");
            }
            let status = if comparison.has_regressions() {
                EXIT_FAIL
            } else {
                EXIT_PASS
            };
            result.comparison = Some(comparison);
            Ok(ExitCode::from(outputs.write(&result, status)))
        }
        Command::Matrix {
            scenarios,
            format,
            runners,
            gitlab_jobs,
            shard,
        } => {
            let trials = load_shard(&scenarios, &[], shard.shard, true)?;
            let entries = matrix::entries(&trials, &Runners::defaults(format).with(&runners));
            let in_shard = shard
                .shard
                .map(|s| format!(" of shard {s}"))
                .unwrap_or_default();
            let out = match format {
                Format::Github => matrix::github(&entries),
                Format::Gitlab => matrix::gitlab(&entries, &gitlab_jobs),
            };
            let out = out.map_err(|e| match e {
                matrix::MatrixError::Empty(_) => matrix::MatrixError::Empty(in_shard),
                e => e,
            })?;
            println!("{}", out.trim_end());
            Ok(ExitCode::SUCCESS)
        }
        Command::Console {
            attach: Some(socket),
            ..
        } => {
            let stream = std::os::unix::net::UnixStream::connect(&socket)
                .with_context(|| format!("connect to {}", socket.display()))?;
            eprintln!(
                "isotest: attached to {}; leave with {ESCAPE_HELP}\r",
                socket.display()
            );
            let detached = attach_terminal(stream)?;
            eprintln!(
                "\r\nisotest: {}",
                match detached {
                    Detached::Escape => "detached; the machine keeps running",
                    Detached::Closed => "the console closed (QEMU exited)",
                }
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Console {
            scenario,
            image,
            firmware,
            arch,
            accel,
            flake,
            artifacts,
            attach: None,
        } => {
            // Said before anything boots.
            check_image("--image", image.as_deref())?;
            if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
                bail!("standard input is not a terminal: `isotest console` needs one to type into");
            }
            let trial = console_trial(scenario.as_deref(), image.as_deref(), arch, firmware)?;
            isotest::flake::check_hosts(
                std::iter::once(trial.scenario.as_ref()),
                flake.as_deref(),
            )?;
            let options = RunOptions {
                accel,
                artifacts,
                image,
                flake,
                ..RunOptions::default()
            };
            let started = match start_for_console(&trial, &options) {
                Ok(started) => started,
                Err(e) => {
                    // The exit status of a trial that ended so.
                    eprintln!("error: {}: {}", trial.name(), e.message);
                    let could_not = e.kind == isotest::report::ErrorKind::CouldNotTest;
                    return Ok(ExitCode::from(if could_not {
                        EXIT_COULD_NOT_TEST
                    } else {
                        isotest::report::EXIT_FAIL
                    }));
                }
            };
            let mut machine = started.machine;
            let serial = machine.take_serial().context("QEMU's serial stream")?;
            eprintln!(
                "isotest: {} booting (QEMU pid {}); this terminal is its serial console; leave with {ESCAPE_HELP}",
                trial.name(),
                machine.pid()
            );
            let detached = attach_terminal(serial);
            // A SIGTERM's handler killed QEMU (the console closed): it says so and exits 130.
            isotest::qemu::wait_if_stopping();
            let detached = detached?;
            drop(machine); // stops QEMU
            drop(started.private);
            eprintln!(
                "\r\nisotest: {}",
                match detached {
                    Detached::Escape => "left the console; QEMU stopped",
                    Detached::Closed => "the console closed (QEMU exited)",
                }
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Run {
            scenarios,
            image,
            baseline,
            flake,
            hosts,
            accel,
            artifacts,
            filter,
            trials: names,
            shard: ShardArg { shard },
            jobs,
            cpus,
            require_all,
            keep_on_failure,
            outputs,
        } => {
            if !hosts.is_empty() && flake.is_none() && std::env::var_os("ISOTEST_FLAKE").is_none() {
                bail!("--iso {} needs --flake REF (or ISOTEST_FLAKE)", hosts[0]);
            }
            // Said once here, not by every trial.
            check_image("--image", image.as_deref())?;
            check_image("--baseline", baseline.as_deref())?;
            let mut trials = load_shard(&scenarios, &hosts, shard, false)?;
            if let Some(missing) = names
                .iter()
                .find(|n| !trials.iter().any(|t| t.name() == **n))
            {
                bail!(
                    "--trial {missing}: no such trial in the plan{}",
                    shard.map(|s| format!(" (shard {s})")).unwrap_or_default()
                );
            }
            if !names.is_empty() {
                trials.retain(|t| names.contains(&t.name()));
            }
            if let Some(f) = &filter {
                trials.retain(|t| t.name().contains(f.as_str()));
            }
            // An empty shard is normal (more shards than trials): nothing to do.
            if let (Some(s), true) = (shard, trials.is_empty() && filter.is_none()) {
                eprintln!("shard {s}: no trial; nothing to run");
                return Ok(ExitCode::SUCCESS);
            }
            isotest::flake::check_flakes(
                trials.iter().map(|t| t.scenario.as_ref()),
                flake.as_deref(),
            )?;
            isotest::flake::check_hosts(
                trials.iter().map(|t| t.scenario.as_ref()),
                flake.as_deref(),
            )?;
            if trials.is_empty() {
                bail!(
                    "no trial to run{}",
                    filter
                        .map(|f| format!(" matches --filter {f}"))
                        .unwrap_or_default()
                );
            }
            let skipped: Vec<&Trial> = trials.iter().filter(|t| t.skip.is_some()).collect();
            if require_all && !skipped.is_empty() {
                for trial in skipped {
                    eprintln!(
                        "{}: cannot run here: {}",
                        trial.name(),
                        trial.skip.as_deref().unwrap_or_default()
                    );
                }
                eprintln!("error: --require-all: could not test every trial; nothing was started");
                return Ok(ExitCode::from(EXIT_COULD_NOT_TEST));
            }
            let cores = std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1);
            let largest = trials
                .iter()
                .map(|t| t.scenario.memory_mib)
                .max()
                .unwrap_or(0);
            let jobs = jobs.map_or_else(
                || isotest::run::default_jobs(cores, isotest::run::host_memory_mib(), largest),
                |j| j as usize,
            );
            // The guests that boot at once: no more than the trials that boot.
            let at_once = jobs
                .min(trials.iter().filter(|t| t.skip.is_none()).count())
                .max(1);
            let cpus = cpus.unwrap_or_else(|| isotest::run::guest_cpus(cores, at_once));
            let options = RunOptions {
                accel,
                artifacts,
                image,
                flake,
                cpus,
                keep_on_failure,
            };
            let progress = isotest::progress::for_stdout();
            let baselines = run_baselines(
                &trials,
                baseline.as_deref(),
                &options,
                jobs,
                &|report: &isotest::report::TrialReport| {
                    println!("baseline: {}", render_line(report));
                },
            );
            let reports = run_trials(&trials, &options, jobs, progress.as_ref());
            // Trials cut short by Ctrl-C/SIGTERM: the handler's exit status, not a summary.
            isotest::qemu::wait_if_stopping();
            explain_failures(&reports);
            let comparison = baselines.iter().any(Option::is_some).then(|| {
                let pairs = trials.iter().zip(&baselines).zip(&reports).filter_map(
                    |((trial, base), now)| {
                        Some((Some(base.as_ref()?), Some(now), trial.scenario.max_slowdown))
                    },
                );
                Comparison::of_pairs(pairs)
            });
            let summary = Summary::of(&reports);
            if let Some(c) = &comparison {
                println!("\n{}", render_comparison(c).trim_end());
            }
            println!("\n{}", render_summary(&summary));
            if let Some(line) = comparison.as_ref().and_then(render_regressions) {
                println!("{line}");
            }
            let mut result = RunResult::new(reports);
            let status = exit_status(&summary, comparison.as_ref(), require_all);
            result.comparison = comparison;
            Ok(ExitCode::from(outputs.write(&result, status)))
        }
    }
}

/// The one trial `console` boots: the scenario's of `arch` and `firmware` (its
/// first by default), or a trial of `image` alone.
fn console_trial(
    scenario: Option<&std::path::Path>,
    image: Option<&std::path::Path>,
    arch: Option<Arch>,
    firmware: Option<Firmware>,
) -> Result<Trial> {
    let trials = match (scenario, image) {
        (Some(path), _) => load(&[path.to_owned()], &[])?,
        (None, Some(image)) => {
            let arch = arch.map(|a| format!("arch: {a}\n")).unwrap_or_default();
            let firmware = firmware
                .map(|f| format!("firmware: {f}\n"))
                .unwrap_or_default();
            let yaml = format!(
                "image: {}\n{arch}{firmware}",
                serde_json::to_string(&image.display().to_string())?
            );
            plan::trials(&[Arc::new(Scenario::parse(
                &PathBuf::from("console.yaml"),
                &yaml,
            )?)])
        }
        (None, None) => bail!("give a scenario file or --image ISO"),
    };
    let picked = trials
        .iter()
        .find(|t| arch.is_none_or(|a| t.arch == a) && firmware.is_none_or(|f| t.firmware == f));
    let Some(trial) = picked else {
        let names: Vec<String> = trials.iter().map(|t| t.name()).collect();
        bail!(
            "no trial of that arch and firmware; the trials are: {}",
            names.join(", ")
        );
    };
    if let Some(reason) = &trial.skip {
        bail!("{} cannot run here: {reason}", trial.name());
    }
    Ok(trial.clone())
}

/// An ISO given on the command line exists and a firmware could try to boot it
/// from a CD-ROM (an ISO 9660 image with an El Torito boot record): anything
/// else is the user's error, said before QEMU starts.
fn check_image(option: &str, image: Option<&std::path::Path>) -> Result<()> {
    let Some(image) = image else { return Ok(()) };
    if !image.is_file() {
        bail!("{option} {}: no such file", image.display());
    }
    isotest::iso::inspect(image).with_context(|| option.to_owned())?;
    Ok(())
}

/// What went wrong in each failed trial (and each that could not test), and
/// the units that failed at boot in any trial, on stderr.
fn explain_failures(reports: &[isotest::report::TrialReport]) {
    for report in reports {
        let explanation = render_failure(report) + &isotest::report::render_failed_units(report);
        if !explanation.is_empty() {
            eprint!("\n{explanation}");
        }
    }
}

/// `load`, then only the trials of `shard`, if one is given. A shard, and a
/// plan handed to other machines (`shared`, the CI matrix), must be one that
/// every machine computes alike (see `plan::host_independent`).
fn load_shard(
    paths: &[PathBuf],
    hosts: &[String],
    shard: Option<Shard>,
    shared: bool,
) -> Result<Vec<Trial>> {
    let trials = load(paths, hosts)?;
    if shard.is_none() && !shared {
        return Ok(trials);
    }
    let mut scenarios: Vec<Arc<Scenario>> = Vec::new();
    for t in &trials {
        if !scenarios.iter().any(|s| Arc::ptr_eq(s, &t.scenario)) {
            scenarios.push(t.scenario.clone());
        }
    }
    plan::host_independent(&scenarios)?;
    Ok(match shard {
        Some(shard) => shard.select(trials),
        None => trials,
    })
}

/// Loads scenario files (default: `scenarios/*.yaml`, unless zero-config hosts are
/// given) and expands them into trials.
fn load(paths: &[PathBuf], hosts: &[String]) -> Result<Vec<Trial>> {
    let paths = if paths.is_empty() && hosts.is_empty() {
        default_scenarios()?
    } else {
        paths.to_vec()
    };
    let mut scenarios = paths
        .iter()
        .map(|p| Scenario::load(p).map(Arc::new))
        .collect::<Result<Vec<_>, _>>()?;
    for host in hosts {
        // A zero-config scenario: `iso: HOST` and nothing else.
        scenarios.push(Arc::new(Scenario::parse(
            &PathBuf::from(format!("{host}.yaml")),
            &format!("iso: {host}\n"),
        )?));
    }
    let trials = plan::trials(&scenarios);
    plan::distinct_names(&trials)?;
    Ok(trials)
}

fn default_scenarios() -> Result<Vec<PathBuf>> {
    let dir = PathBuf::from("scenarios");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("no scenario given and no {} directory here", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    found.sort();
    if found.is_empty() {
        bail!("no scenario given and no *.yaml in {}", dir.display());
    }
    Ok(found)
}

/// An error and its causes on one line. The library's errors already name their
/// cause in their own message (`read FILE: No such file ...`), so a cause the
/// line already says is not said twice.
fn explain(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain().map(|c| c.to_string()) {
        if line.is_empty() {
            line = cause;
        } else if !line.contains(&cause) {
            line = format!("{line}: {cause}");
        }
    }
    line
}
