//! Files read off an ISO image without mounting it (iso9660 often cannot be
//! loop-mounted in containers and VMs): xorriso takes them out. A file the ISO
//! lacks is `MenuError::NotOnIso`; xorriso missing or failing to run, or a
//! temporary directory that cannot be made, is this host's fault
//! (`HostError`), so that it is never mistaken for the ISO's lack.

use super::error::{HostError, MenuError};
use std::io::ErrorKind;
use std::path::Path;
use std::process::{Command, Output};

/// Where the boot menus' files come from: the ISO through xorriso, or, in
/// tests, a table of files.
pub trait IsoFiles {
    /// The text of `file` (an absolute path in the ISO).
    fn read(&self, file: &str) -> Result<String, MenuError>;
    /// Whether the ISO has a directory at `dir`.
    fn has_dir(&self, dir: &str) -> Result<bool, HostError>;
}

/// An ISO image on disk, read through xorriso.
pub struct Xorriso<'a> {
    pub iso: &'a Path,
}

impl Xorriso<'_> {
    fn run(&self, args: &[&std::ffi::OsStr]) -> Result<Output, HostError> {
        Command::new("xorriso")
            .args(args)
            .output()
            .map_err(|source| match source.kind() {
                ErrorKind::NotFound => HostError::NoXorriso,
                _ => HostError::Xorriso {
                    iso: self.iso.to_owned(),
                    source,
                },
            })
    }

    fn not_on_iso(&self, file: &str, detail: String) -> MenuError {
        MenuError::NotOnIso {
            iso: self.iso.to_owned(),
            file: file.to_owned(),
            detail,
        }
    }
}

impl IsoFiles for Xorriso<'_> {
    fn read(&self, file: &str) -> Result<String, MenuError> {
        let dir = tempfile::tempdir().map_err(|source| HostError::TempDir {
            iso: self.iso.to_owned(),
            file: file.to_owned(),
            source,
        })?;
        let target = dir.path().join("extracted");
        let output = self.run(&[
            "-osirrox".as_ref(),
            "on".as_ref(),
            "-indev".as_ref(),
            self.iso.as_os_str(),
            "-extract".as_ref(),
            file.as_ref(),
            target.as_os_str(),
        ])?;
        match std::fs::read_to_string(&target) {
            Ok(text) => Ok(text),
            Err(e) if e.kind() == ErrorKind::NotFound => {
                Err(self.not_on_iso(file, failures(&output.stderr)))
            }
            Err(e) if e.kind() == ErrorKind::InvalidData => {
                Err(self.not_on_iso(file, "not UTF-8 text".to_owned()))
            }
            Err(source) => Err(HostError::Extracted {
                path: target,
                source,
            }
            .into()),
        }
    }

    fn has_dir(&self, dir: &str) -> Result<bool, HostError> {
        let output = self.run(&[
            "-indev".as_ref(),
            self.iso.as_os_str(),
            "-find".as_ref(),
            dir.as_ref(),
            "-maxdepth".as_ref(),
            "0".as_ref(),
            "-type".as_ref(),
            "d".as_ref(),
        ])?;
        // xorriso lists nothing for a path that is no directory.
        Ok(String::from_utf8_lossy(&output.stdout)
            .lines()
            .any(|l| l.trim_matches('\'') == dir))
    }
}

/// Why xorriso did not extract a file: its FAILURE and SORRY lines.
fn failures(stderr: &[u8]) -> String {
    let stderr = String::from_utf8_lossy(stderr);
    let detail = stderr
        .lines()
        .filter(|l| l.contains("FAILURE") || l.contains("SORRY"))
        .collect::<Vec<_>>()
        .join("; ");
    if detail.is_empty() {
        "no such file in the ISO".into()
    } else {
        detail
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::menu::iso::testing::xorriso;

    #[test]
    fn files_the_iso_has_and_lacks() {
        let dir = tempfile::tempdir().unwrap();
        let iso = xorriso(dir.path(), "data", &[]);
        let files = Xorriso { iso: &iso };
        assert_eq!(files.read("/readme").unwrap(), "hello\n");
        let e = files.read("/isolinux/isolinux.cfg").unwrap_err();
        assert!(matches!(e, MenuError::NotOnIso { .. }), "{e:?}");
        assert!(
            e.to_string().starts_with(&format!(
                "{}: cannot read /isolinux/isolinux.cfg from the ISO: ",
                iso.display()
            )),
            "{e}"
        );
        assert!(files.has_dir("/").unwrap());
        assert!(!files.has_dir("/readme").unwrap());
        assert!(!files.has_dir("/isolinux").unwrap());
    }
}
