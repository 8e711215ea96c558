//! ISOs named on the command line, checked before anything boots.

use anyhow::{bail, Context, Result};
use std::path::Path;

/// An ISO given on the command line exists and a firmware could try to boot it
/// from a CD-ROM (an ISO 9660 image with an El Torito boot record): anything
/// else is the user's error, said before QEMU starts.
pub fn check(option: &str, image: Option<&Path>) -> Result<()> {
    let Some(image) = image else { return Ok(()) };
    if !image.is_file() {
        bail!("{option} {}: no such file", image.display());
    }
    isotest::iso::inspect(image).with_context(|| option.to_owned())?;
    Ok(())
}
