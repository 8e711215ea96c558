//! `isotest console`: this terminal on a trial's serial console, booted here
//! or kept by `run --keep-on-failure`.

use super::args::ConsoleArgs;
use anyhow::{bail, Context, Result};
use isotest::console::attach::{attach_terminal, Detached, ESCAPE_HELP};
use isotest::plan::{self, Trial};
use isotest::platform::{Arch, Firmware};
use isotest::report::{ErrorKind, EXIT_COULD_NOT_TEST, EXIT_FAIL};
use isotest::run::{start_for_console, RunOptions};
use isotest::scenario::Scenario;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

pub fn run(args: ConsoleArgs) -> Result<ExitCode> {
    match &args.attach {
        Some(socket) => attach(socket),
        None => boot(args),
    }
}

/// Attaches to a kept machine's console socket; leaving it keeps the machine.
fn attach(socket: &Path) -> Result<ExitCode> {
    let stream = std::os::unix::net::UnixStream::connect(socket)
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

/// Boots the trial and attaches; leaving stops QEMU.
fn boot(args: ConsoleArgs) -> Result<ExitCode> {
    // Said before anything boots.
    super::image::check("--image", args.image.as_deref())?;
    if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        bail!("standard input is not a terminal: `isotest console` needs one to type into");
    }
    let trial = console_trial(
        args.scenario.as_deref(),
        args.image.as_deref(),
        args.arch,
        args.firmware,
    )?;
    isotest::flake::check_flakes(
        std::iter::once(trial.scenario.as_ref()),
        args.flake.as_deref(),
    )?;
    let options = RunOptions {
        accel: args.accel,
        artifacts: args.artifacts,
        image: args.image,
        flake: args.flake,
        ..RunOptions::default()
    };
    let started = match start_for_console(&trial, &options) {
        Ok(started) => started,
        Err(e) => {
            // The exit status of a trial that ended so.
            eprintln!("error: {}: {}", trial.name(), e.message);
            let could_not = e.kind == ErrorKind::CouldNotTest;
            return Ok(ExitCode::from(if could_not {
                EXIT_COULD_NOT_TEST
            } else {
                EXIT_FAIL
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

/// The one trial `console` boots: the scenario's of `arch` and `firmware` (its
/// first by default), or a trial of `image` alone.
fn console_trial(
    scenario: Option<&Path>,
    image: Option<&Path>,
    arch: Option<Arch>,
    firmware: Option<Firmware>,
) -> Result<Trial> {
    let trials = match (scenario, image) {
        (Some(path), _) => isotest::select::load(&[path.to_owned()], &[])?,
        (None, Some(image)) => image_trials(image, arch, firmware)?,
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

/// The trials of a scenario that names `image` and nothing else but the
/// architecture and firmware, when given.
fn image_trials(
    image: &Path,
    arch: Option<Arch>,
    firmware: Option<Firmware>,
) -> Result<Vec<Trial>> {
    let arch = arch.map(|a| format!("arch: {a}\n")).unwrap_or_default();
    let firmware = firmware
        .map(|f| format!("firmware: {f}\n"))
        .unwrap_or_default();
    let yaml = format!(
        "image: {}\n{arch}{firmware}",
        serde_json::to_string(&image.display().to_string())?
    );
    let scenario = Scenario::parse(&PathBuf::from("console.yaml"), &yaml)?;
    Ok(plan::trials(&[Arc::new(scenario)]))
}
