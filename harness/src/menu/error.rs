//! What can go wrong between an ISO and the entry to boot. The ISO's own
//! lacks (a configuration it does not have, an entry that is not there) are
//! kept apart from this host's (no xorriso, no temporary directory, an I/O
//! error): the first decide how the ISO is booted or fail the trial, the
//! second mean the trial could not be tested.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum MenuError {
    /// The ISO has no such file (no isolinux.cfg, no grub.cfg where it was
    /// looked for), or xorriso could not take it out of the image.
    #[error("{}: cannot read {file} from the ISO: {detail}", iso.display())]
    NotOnIso {
        iso: PathBuf,
        file: String,
        detail: String,
    },
    #[error("no boot menu entry matches /{pattern}/; the entries are: {entries}")]
    NoMatch { pattern: String, entries: String },
    #[error("the boot menu has no entries")]
    Empty,
    #[error(transparent)]
    Host(#[from] HostError),
}

impl MenuError {
    /// Whether this host, not the ISO, is at fault: nothing was learnt about
    /// the ISO.
    pub fn is_host_fault(&self) -> bool {
        matches!(self, MenuError::Host(_))
    }
}

/// This host could not read the ISO's files.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("xorriso is needed to read the ISO's boot menu; install it: apt-get install xorriso (Fedora: dnf install xorriso; Nix: nix-shell -p xorriso)")]
    NoXorriso,
    #[error("cannot make a temporary directory to read {file} from {}", iso.display())]
    TempDir {
        iso: PathBuf,
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot run xorriso on {}", iso.display())]
    Xorriso {
        iso: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read {}, taken out of the ISO", path.display())]
    Extracted {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}
