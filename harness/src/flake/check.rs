//! Before any trial runs: the flakes and hosts that scenarios name, said once
//! for all trials as a usage error rather than a failure per trial.

use super::error::FlakeError;
use super::hosts::require_host;
use super::reference::{choose_flake, env_flake};
use crate::scenario::{check_local_flake, local_flake_dir, Scenario};
use std::collections::HashSet;

/// For every scenario with `iso:`: it has a flake; a local one that `--flake` or
/// `$ISOTEST_FLAKE` named exists (said naming where it came from: a scenario's
/// own `flake:` was checked when it loaded, and the nearest flake.nix up exists
/// by construction); and the host is one of a local flake's hosts
/// (`hosts/iso/*`), so that a typo (`--iso nosuch`) is one error naming the
/// hosts there are. Remote flakes are fetched by the trials (their errors are
/// the trials'), and so is anything else that goes wrong listing a flake's
/// hosts here (no `nix`, say): only a host that is surely missing is refused.
pub fn check_flakes<'a>(
    scenarios: impl IntoIterator<Item = &'a Scenario>,
    cli: Option<&str>,
) -> Result<(), FlakeError> {
    let mut flakes_seen = HashSet::new();
    let mut hosts_seen = HashSet::new();
    for scenario in scenarios {
        let Some(host) = &scenario.source.host else {
            continue;
        };
        let source = &scenario.source;
        let reference =
            choose_flake(cli, source.flake.as_deref(), &scenario.path).ok_or_else(|| {
                FlakeError::NoFlake {
                    host: host.clone(),
                    scenario: scenario.path.display().to_string(),
                }
            })?;
        let origin = match (cli, &source.flake) {
            (Some(_), _) => Some("--flake"),
            (None, None) if env_flake().is_some() => Some("$ISOTEST_FLAKE"),
            _ => None,
        };
        if let Some(origin) = origin.filter(|_| flakes_seen.insert(reference.clone())) {
            check_local_flake(&reference).map_err(|why| FlakeError::NotFound {
                reference: format!("{reference} (from {origin})"),
                why: why.into(),
            })?;
        }
        if local_flake_dir(&reference).is_some()
            && hosts_seen.insert((reference.clone(), host.clone()))
        {
            match require_host(&reference, host, &format!("checking `iso: {host}`")) {
                Err(e @ FlakeError::NoHost { .. }) => return Err(e),
                Err(e) => tracing::debug!(
                    "not checking `iso: {host}` before the trials: {}",
                    crate::error::chain(&e)
                ),
                Ok(()) => {}
            }
        }
    }
    Ok(())
}
