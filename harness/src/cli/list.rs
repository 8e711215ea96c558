//! `isotest list`: the trials of the scenarios, or a flake's ISO hosts.

use super::args::ListArgs;
use anyhow::{bail, Result};
use isotest::select;
use std::process::ExitCode;

pub fn run(args: ListArgs) -> Result<ExitCode> {
    match &args.flake {
        Some(flake) if args.scenarios.is_empty() => hosts(flake, &args),
        _ => trials(&args),
    }
}

/// With `--flake` alone: the flake's ISO hosts and their files.
fn hosts(flake: &str, args: &ListArgs) -> Result<ExitCode> {
    if args.shard.shard.is_some() {
        bail!("--shard slices trials; `list --flake` lists a flake's hosts");
    }
    let hosts = isotest::flake::iso_hosts(flake)?;
    if hosts.is_empty() {
        bail!("{flake} has no ISO hosts (hosts/iso/<name>.nix or hosts/iso/<name>/default.nix)");
    }
    for host in hosts {
        println!("{:<20} {}", host.name, host.file.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// Each trial's name, a skipped one's with the reason.
fn trials(args: &ListArgs) -> Result<ExitCode> {
    let trials = select::shard(select::load(&args.scenarios, &[])?, args.shard.shard, false)?;
    for trial in trials {
        match &trial.skip {
            None => println!("{}", trial.name()),
            Some(reason) => println!("{}  skipped: {reason}", trial.name()),
        }
    }
    Ok(ExitCode::SUCCESS)
}
