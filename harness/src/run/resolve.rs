//! What a trial tests: the expectations (the scenario's over the flake host's)
//! and the ISO (`--image`, else the trial's `image:`, else the flake host's
//! build).

use super::options::RunOptions;
use crate::flake::{self, FlakeError};
use crate::plan::Trial;
use crate::scenario::{Expect, Origins};
use std::path::PathBuf;

/// The flake host a trial's expectations and ISO come from.
pub(super) struct FlakeHost {
    flake: String,
    host: String,
}

impl FlakeHost {
    /// The flake attribute of the host's ISO, for the report.
    pub(super) fn attr(&self, trial: &Trial) -> String {
        flake::attr(&self.flake, trial.arch, &self.host)
    }
}

/// The ISO, and the expectations with where each came from.
pub(super) struct Resolved {
    pub image: PathBuf,
    pub expect: Expect,
    pub origins: Origins,
    /// How long `nix build` took, when it built the ISO.
    pub build_secs: Option<f64>,
}

/// The guest's port the SSH forward goes to: sshd's first, else 22.
pub(super) fn guest_ssh_port(expect: &Expect) -> u16 {
    expect.sshd.as_ref().map_or(22, |s| s.ports()[0])
}

/// The flake host of the trial's `iso:`, if it has one.
pub(super) fn flake_host(
    trial: &Trial,
    options: &RunOptions,
) -> Result<Option<FlakeHost>, FlakeError> {
    let scenario = &trial.scenario;
    let Some(host) = &scenario.source.host else {
        return Ok(None);
    };
    let flake = flake::choose_flake(
        options.flake.as_deref(),
        scenario.source.flake.as_deref(),
        &scenario.path,
    )
    .ok_or_else(|| FlakeError::NoFlake {
        host: host.clone(),
        scenario: scenario.path.display().to_string(),
    })?;
    Ok(Some(FlakeHost {
        flake,
        host: host.clone(),
    }))
}

/// The expectations and the ISO, from `source` when the trial has a flake host.
pub(super) fn resolve(
    trial: &Trial,
    options: &RunOptions,
    source: Option<&FlakeHost>,
) -> Result<Resolved, FlakeError> {
    let prebuilt = options.image.clone().or_else(|| trial.image.clone());
    let Some(FlakeHost { flake, host }) = source else {
        let image = prebuilt.expect("parsing requires `iso:` or an image");
        let (expect, origins) = trial.scenario.expect.over(&Expect::default());
        return Ok(Resolved {
            image,
            expect,
            origins,
            build_secs: None,
        });
    };
    let derived = flake::derive_expectations(flake, trial.arch, host)?;
    let (expect, origins) = trial.scenario.expect.over(&derived);
    let (image, build_secs) = match prebuilt {
        Some(image) => (image, None),
        None => {
            let built = flake::build_iso(flake, trial.arch, host)?;
            (built.iso, Some(built.secs))
        }
    };
    Ok(Resolved {
        image,
        expect,
        origins,
        build_secs,
    })
}
