//! A machine's UEFI flash: the firmware's code, and a copy of its variable
//! store in the machine's private directory (the firmware writes boot entries
//! there; the distribution's file is never written). QEMU's `virt` board wants
//! 64 MiB flash images; smaller raw ones (some distributions ship 2 MiB) are
//! padded in a copy.

use super::args::Pflash;
use super::error::{FlashError, QemuError};
use super::firmware::FirmwareSearch;
use crate::platform::{Arch, Firmware};
use std::path::{Path, PathBuf};

/// The size of a flash image on QEMU's `virt` board.
pub(super) const VIRT_FLASH: u64 = 64 << 20;

/// The flash of a machine of `arch` and `firmware` (none for BIOS), found as
/// `FirmwareSearch::system` finds it (`explicit`: the scenario's files), its
/// copies in `private`.
pub(super) fn uefi_flash(
    arch: Arch,
    firmware: Firmware,
    explicit: Option<(&Path, &Path)>,
    private: &Path,
) -> Result<Option<Pflash>, QemuError> {
    if firmware != Firmware::Uefi {
        return Ok(None);
    }
    let found = FirmwareSearch::system().find(arch, explicit)?;
    tracing::debug!(
        "UEFI firmware {} (from {})",
        found.code.display(),
        found.found_by
    );
    let pad = (arch == Arch::Aarch64 && found.format == "raw").then_some(VIRT_FLASH);
    let vars = flash_copy(&found.vars, &private.join("uefi-vars.fd"), pad)?;
    let code_len = std::fs::metadata(&found.code)
        .map_err(|source| FlashError::Size {
            path: found.code.clone(),
            source,
        })?
        .len();
    let code = match pad {
        Some(size) if code_len < size => {
            flash_copy(&found.code, &private.join("uefi-code.fd"), pad)?
        }
        _ => found.code.clone(),
    };
    Ok(Some(Pflash {
        code,
        vars,
        format: found.format,
    }))
}

/// Copies `from` to `to`, padded with zeros to `pad` bytes if it is shorter.
fn flash_copy(from: &Path, to: &Path, pad: Option<u64>) -> Result<PathBuf, FlashError> {
    std::fs::copy(from, to).map_err(|source| FlashError::Copy {
        from: from.to_owned(),
        to: to.to_owned(),
        source,
    })?;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(to)
        .map_err(|source| FlashError::Open {
            path: to.to_owned(),
            source,
        })?;
    let len = file
        .metadata()
        .map_err(|source| FlashError::Size {
            path: to.to_owned(),
            source,
        })?
        .len();
    if let Some(size) = pad.filter(|&size| len < size) {
        file.set_len(size).map_err(|source| FlashError::Pad {
            path: to.to_owned(),
            source,
        })?;
    }
    Ok(to.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_flash_image_is_padded_in_its_copy() {
        let dir = tempfile::tempdir().unwrap();
        let small = dir.path().join("AAVMF_VARS.fd");
        std::fs::write(&small, vec![0xa5u8; 2 << 20]).unwrap();
        let copy = flash_copy(&small, &dir.path().join("vars.fd"), Some(VIRT_FLASH)).unwrap();
        let bytes = std::fs::read(&copy).unwrap();
        assert_eq!(bytes.len() as u64, VIRT_FLASH);
        assert!(
            bytes[..2 << 20].iter().all(|&b| b == 0xa5) && bytes[2 << 20..].iter().all(|&b| b == 0),
            "the content, then zeros"
        );
        assert_eq!(
            std::fs::metadata(&small).unwrap().len(),
            2 << 20,
            "the original is left as it was"
        );
        let unpadded = flash_copy(&small, &dir.path().join("x86-vars.fd"), None).unwrap();
        assert_eq!(std::fs::metadata(unpadded).unwrap().len(), 2 << 20);
        let e = flash_copy(
            &dir.path().join("missing.fd"),
            &dir.path().join("m.fd"),
            None,
        )
        .unwrap_err();
        let e = crate::error::chain(&e);
        assert!(e.starts_with("copy ") && e.contains("missing.fd"), "{e}");
    }
}
