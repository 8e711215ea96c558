//! nix-wire flakes: which ISO hosts a flake has (`hosts/iso/*`), building one with
//! `nix build`, and the expectations its configuration (`passthru.config`) implies.
//! Everything goes through the real `nix` command.

mod attr;
mod build;
mod check;
mod error;
mod expect;
mod hosts;
mod memo;
mod nix;
mod reference;

pub use attr::{attr, system};
pub use build::build_iso;
pub use check::check_flakes;
pub use error::{FlakeError, IsoFound, NotFound};
pub use expect::derive_expectations;
pub use hosts::iso_hosts;
pub use reference::{choose_flake, reference};
