//! Why a scenario could not be loaded, each error located in its file.

use super::values::{BadEnvName, BadName};
use crate::platform::UnknownArch;
use std::path::PathBuf;

/// Why a scenario could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("{path}: cannot read scenario")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// YAML syntax or a field of the wrong shape, located by the parser.
    #[error("{path}:{line}:{column}: {message}")]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    /// A value that parses but makes no sense (e.g. neither `iso` nor `image`).
    #[error("{path}: {field}: {problem}")]
    Invalid {
        path: PathBuf,
        field: String,
        problem: Problem,
    },
}

/// What is wrong with a field that parsed: the text after `path: field: `.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("the list is empty")]
    EmptyImages,
    #[error("give `image:` or `images:`, not both")]
    BothImages,
    #[error("missing: give `iso:` (a flake host), `image:`/`images:` (ISO files), or both")]
    NoSource,
    #[error("`flake:` needs `iso:` to name the host")]
    FlakeWithoutIso,
    #[error("the host is neither x86_64 nor aarch64; name one")]
    UnknownHostArch,
    #[error(transparent)]
    Name(#[from] BadName),
    #[error(transparent)]
    EnvName(#[from] BadEnvName),
    #[error(transparent)]
    Arch(#[from] UnknownArch),
    #[error("`login:` needs `running: true`")]
    LoginNeedsRunning,
    #[error("`{key}` is not a SHA256:... fingerprint")]
    NotFingerprint { key: String },
    #[error("a step is one of `run:` (with optional `expect:`, `exit:`), `send:`, or `expect:`")]
    StepShape,
    #[error("send: bad escape `\\x{hex}`")]
    BadHexEscape { hex: String },
    #[error("send: unknown escape `\\{escape}`")]
    UnknownEscape { escape: String },
}
