//! A trial's QEMU, started from its ISO: what the ISO and this host must have
//! first, then the machine from `qemu::Launcher`, and the boot menu's choice.

use super::host;
use super::options::RunOptions;
use super::resolve;
use crate::menu::BootChoice;
use crate::plan::Trial;
use crate::qemu::{self, Launch, Launcher, Machine, PrivateDir, QemuError};
use crate::report::{QemuRun, TrialError};
use std::path::{Path, PathBuf};

/// A trial's QEMU, started and connected.
pub struct Started {
    pub machine: Machine,
    /// Its sockets and UEFI variables; removed when dropped.
    pub private: PrivateDir,
    /// How the boot menu is driven, for this ISO and firmware.
    pub choice: BootChoice,
    /// How much slower than KVM every wait may be.
    pub scale: u32,
    /// The host port forwarded to the guest's SSH port.
    pub forward: Option<(u16, u16)>,
    /// What a state saved from this machine may be restored into.
    pub state_key: qemu::StateKey,
}

impl Started {
    /// Its serial console, attached (once), its transcripts in `artifacts`.
    pub(super) fn attach_console(
        &mut self,
        artifacts: &Path,
    ) -> std::io::Result<crate::console::SerialConsole> {
        let serial = self
            .machine
            .take_serial()
            .expect("a new machine has its serial stream");
        crate::console::SerialConsole::attach(serial, artifacts)
    }
}

/// Below the artifacts directory, where `isotest console` puts its trial's.
pub const CONSOLE_DIR: &str = "console";

/// What a trial starts from.
pub(super) struct StartFrom<'a> {
    pub trial: &'a Trial,
    pub options: &'a RunOptions,
    pub artifacts: &'a Path,
    pub image: PathBuf,
    pub guest_ssh_port: u16,
    /// Its virtual CPUs (`options.cpus`, unless its boot is shared).
    pub cpus: u32,
    /// How the machine starts: booting, booting to be saved for others, or
    /// waiting for a saved state.
    pub how: How,
}

/// How a trial's machine starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum How {
    Boot,
    /// Boot, to be saved at the shell for other trials (`share`).
    BootToSave,
    /// Wait for a saved state (`restore`).
    Restore,
}

/// A start: what the report records of it once QEMU's command line exists
/// (the accelerator and its note, the QEMU run), whether or not QEMU started.
pub(super) struct Start {
    pub accel: Option<qemu::AccelDecision>,
    pub qemu: Option<QemuRun>,
    pub started: Result<Started, TrialError>,
}

/// Resolves the trial's ISO and starts QEMU for it as a run does (firmware,
/// private directory, KVM probe, command line), booting nothing: for
/// `isotest console`, where the user drives the boot.
pub fn start_for_console(trial: &Trial, options: &RunOptions) -> Result<Started, TrialError> {
    // Not the trial's own directory: that holds the run being looked into.
    let artifacts = options.artifacts.join(CONSOLE_DIR).join(trial.dir_name());
    host::fresh_dir(&artifacts)?;
    let source = resolve::flake_host(trial, options)?;
    let resolved = resolve::resolve(trial, options, source.as_ref())?;
    start(&StartFrom {
        trial,
        options,
        artifacts: &artifacts,
        image: resolved.image,
        guest_ssh_port: resolve::guest_ssh_port(&resolved.expect),
        cpus: options.cpus,
        how: How::Boot,
    })
    .started
}

/// Everything up to a running QEMU.
pub(super) fn start(from: &StartFrom<'_>) -> Start {
    let _span = tracing::info_span!("start", trial = %from.trial.name()).entered();
    match launch(from) {
        Ok((launched, choice)) => recorded(from, launched, choice),
        Err(e) => Start {
            accel: None,
            qemu: None,
            started: Err(e),
        },
    }
}

/// What the ISO and this host must have before anything is started, then the
/// start. Sockets, the UEFI vars copy and the SSH key live in a private (0700)
/// directory that disappears with the trial.
fn launch(from: &StartFrom<'_>) -> Result<(qemu::Launched, BootChoice), TrialError> {
    let StartFrom { trial, image, .. } = from;
    let scenario = &trial.scenario;
    if !image.is_file() {
        return Err(QemuError::NoImage(image.clone()).into());
    }
    // An image no firmware could boot from a CD-ROM (a flake's build; the CLI
    // refuses one it is given) fails before QEMU starts, not after a boot timeout.
    let iso = crate::iso::inspect(image)?;
    tracing::debug!(
        "{}: El Torito boot entries for {}",
        image.display(),
        iso.platforms_text()
    );
    host::enough_memory(scenario.memory_mib, host::host_memory_mib())?;
    let launcher = Launcher::prepare(trial.arch, trial.firmware, scenario.uefi_files(trial.arch))?;
    let choice = BootChoice::for_iso(
        image,
        trial.firmware,
        scenario.boot.entry.as_ref(),
        qemu::kernel_console(trial.arch),
    )?;
    let launched = launcher.start(&Launch {
        iso: image,
        accel: from.options.accel_for(scenario),
        memory_mib: scenario.memory_mib,
        cpus: from.cpus,
        // A boot loader that draws on VGA only reaches the serial port through
        // SeaBIOS, for the KVM probe as for the trial.
        vga_to_serial: choice.draws_on_vga_only(trial.firmware),
        artifacts: from.artifacts,
        guest_ssh_port: from.guest_ssh_port,
        incoming: from.how == How::Restore,
        cloned: from.how != How::Boot,
    })?;
    Ok((launched, choice))
}

/// The start's record: `qemu.cmdline` is written whether or not QEMU started,
/// since a start that failed is when it matters most.
fn recorded(from: &StartFrom<'_>, launched: qemu::Launched, choice: BootChoice) -> Start {
    let run = QemuRun::of(&launched.binary, launched.version, &launched.command_line);
    write_artifact(&from.artifacts.join("qemu.cmdline"), &run.cmdline_file());
    let scale = launched.accel.accel.time_scale();
    let started = launched
        .running
        .map(|running| Started {
            machine: running.machine,
            private: running.private,
            choice,
            scale,
            forward: running.forward,
            state_key: running.state_key,
        })
        .map_err(TrialError::from);
    Start {
        accel: Some(launched.accel),
        qemu: Some(run),
        started,
    }
}

/// Writes an artifact beside the transcript; one that cannot be written is
/// logged, not a failure of the trial.
fn write_artifact(path: &Path, text: &str) {
    if let Err(e) = std::fs::write(path, text) {
        tracing::warn!("cannot write {}: {e}", path.display());
    }
}
