//! `isotest matrix`: the trials as a CI matrix.

use super::args::MatrixArgs;
use anyhow::Result;
use isotest::matrix::{self, Format, MatrixError, Runners};
use isotest::select;
use std::process::ExitCode;

pub fn run(args: MatrixArgs) -> Result<ExitCode> {
    let shard = args.shard.shard;
    let trials = select::shard(select::load(&args.scenarios, &[])?, shard, true)?;
    let runners = Runners::defaults(args.format).with(&args.runners);
    let entries = matrix::entries(&trials, &runners);
    let out = match args.format {
        Format::Github => matrix::github(&entries),
        Format::Gitlab => matrix::gitlab(&entries, &args.gitlab_jobs),
    };
    // An empty matrix names the shard it came from, which only this command knows.
    let out = out.map_err(|e| match e {
        MatrixError::Empty(_) => {
            MatrixError::Empty(shard.map(|s| format!(" of shard {s}")).unwrap_or_default())
        }
        e => e,
    })?;
    println!("{}", out.trim_end());
    Ok(ExitCode::SUCCESS)
}
