//! Why a flake could not give an ISO or expectations. Each says what to do.

use crate::scenario::NotAFlake;
use std::path::PathBuf;
use std::sync::Arc;

/// Why a flake could not give an ISO or expectations. Cloned, because results
/// are kept for the rest of the process (`memo`): causes are shared, not copied.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FlakeError {
    #[error(
        "`nix` is not installed, and {purpose} needs it: on Debian/Ubuntu `apt-get install nix-bin`, \
         on other systems see https://nixos.org/download; or test a built ISO alone with `image:` and no `iso:`"
    )]
    NixMissing { purpose: String },
    #[error("flake not found: {reference}: {why}")]
    NotFound { reference: String, why: NotFound },
    #[error("no ISO host `{host}` in {reference}: hosts/iso has {known}")]
    NoHost {
        host: String,
        reference: String,
        known: String,
    },
    #[error("evaluating {attr} failed:\n{message}")]
    Eval { attr: String, message: String },
    #[error("building {attr} failed:\n{log}")]
    Build { attr: String, log: String },
    #[error(
        "this machine ({host_system}) cannot build {attr} (nix: {detail}); build it where {system} builds \
         (or with a remote builder), or test a prebuilt ISO with --image PATH or `image:`"
    )]
    Unsupported {
        attr: String,
        system: String,
        host_system: String,
        detail: String,
    },
    #[error("{attr} built to {out}, but {out}/iso holds {found}; a nix-wire ISO package holds one iso/*.iso")]
    NoIso {
        attr: String,
        out: String,
        found: IsoFound,
    },
    #[error("no flake for `iso: {host}` in {scenario}: set `flake:` in the scenario, pass --flake, or set ISOTEST_FLAKE")]
    NoFlake { host: String, scenario: String },
    #[error("cannot run nix")]
    Spawn(#[source] Arc<std::io::Error>),
    #[error("wait for nix")]
    Wait(#[source] Arc<std::io::Error>),
    #[error("`nix flake metadata {flake}` gave no source path")]
    NoSourcePath { flake: String },
    #[error("read {}", dir.display())]
    ReadHosts {
        dir: PathBuf,
        #[source]
        source: Arc<std::io::Error>,
    },
    #[error("`nix build --json {attr}` printed no output path: {stdout}")]
    NoOutPath { attr: String, stdout: String },
    /// serde's reason stands before nix's answer in the message, so it is shown
    /// here rather than left to `source()`.
    #[error("unexpected answer from `nix eval {attr}`: {reason}: {stdout}")]
    Answer {
        attr: String,
        reason: Arc<serde_json::Error>,
        stdout: String,
    },
}

/// Why a flake reference names no flake.
#[derive(Debug, Clone, thiserror::Error)]
pub enum NotFound {
    /// A local reference, checked before `nix` runs.
    #[error(transparent)]
    Local(#[from] NotAFlake),
    /// What `nix flake metadata` said, on lines of its own, and how to name a
    /// local flake when nix took the reference for a registry name.
    #[error("\n{message}{hint}")]
    Nix { message: String, hint: String },
}

/// What a build's `<out>/iso` holds instead of one ISO.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IsoFound {
    #[error("nothing (no iso/ directory)")]
    NoDirectory,
    #[error("no *.iso")]
    NoIso,
    #[error("{} ISOs: {}", .0.len(), list(.0))]
    Several(Vec<PathBuf>),
}

fn list(paths: &[PathBuf]) -> String {
    let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    names.join(", ")
}
