//! Discovery: the ISO hosts of a flake, read from the source `nix` sees (for a
//! git flake, only tracked files), as nix-wire lays them out.

use super::error::{FlakeError, NotFound};
use super::nix;
use super::reference::reference;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One ISO host: its name and the file that defines it, relative to the flake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsoHost {
    pub name: String,
    pub file: PathBuf,
}

/// The ISO hosts of `flake` (as the user wrote it, see [`reference`]), by
/// name: `hosts/iso/<name>.nix` and `hosts/iso/<name>/default.nix`.
pub fn iso_hosts(flake: &str) -> Result<Vec<IsoHost>, FlakeError> {
    hosts_for(&reference(flake), "listing a flake's hosts")
}

fn hosts_for(flake: &str, purpose: &str) -> Result<Vec<IsoHost>, FlakeError> {
    check_local(flake)?;
    let source = match nix::run(
        &["flake", "metadata", "--json", flake],
        purpose,
        &mut |_| {},
    )? {
        // A flake inside a repository is the repository's source plus `dir`.
        Ok(out) => serde_json::from_str::<serde_json::Value>(&out.stdout)
            .ok()
            .and_then(|v| {
                let root = PathBuf::from(v["path"].as_str()?);
                Some(root.join(v["resolved"]["dir"].as_str().unwrap_or("")))
            })
            .ok_or_else(|| FlakeError::NoSourcePath {
                flake: flake.to_owned(),
            })?,
        Err(failure) => {
            let why = NotFound::Nix {
                message: failure.message,
                hint: registry_hint(flake),
            };
            return Err(FlakeError::NotFound {
                reference: flake.to_owned(),
                why,
            });
        }
    };
    hosts_in(&source)
}

/// A reference without a scheme that is no directory here is a flake registry
/// name to `nix`; when that fails, say how to name a local flake instead.
fn registry_hint(flake: &str) -> String {
    if flake.contains(':') || flake.starts_with('/') {
        return String::new();
    }
    format!("\n  (`{flake}` is not a directory here, so nix took it for a name in the flake registry; a local flake is a directory that exists)")
}

/// A local flake that is not there gets a clear error before `nix` runs.
fn check_local(reference: &str) -> Result<(), FlakeError> {
    crate::scenario::check_local_flake(reference).map_err(|why| FlakeError::NotFound {
        reference: reference.to_owned(),
        why: why.into(),
    })
}

fn hosts_in(source: &Path) -> Result<Vec<IsoHost>, FlakeError> {
    let dir = source.join("hosts/iso");
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(FlakeError::ReadHosts {
                dir,
                source: Arc::new(e),
            })
        }
    };
    let mut hosts: Vec<IsoHost> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            if path.is_dir() && path.join("default.nix").is_file() {
                Some(IsoHost {
                    file: PathBuf::from(format!("hosts/iso/{name}/default.nix")),
                    name,
                })
            } else {
                let stem = name.strip_suffix(".nix")?;
                path.is_file().then(|| IsoHost {
                    name: stem.to_owned(),
                    file: PathBuf::from(format!("hosts/iso/{name}")),
                })
            }
        })
        .collect();
    hosts.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(hosts)
}

/// Fails unless `host` is one of the flake's ISO hosts; `purpose` says why nix runs.
pub fn require_host(flake: &str, host: &str, purpose: &str) -> Result<(), FlakeError> {
    let hosts = hosts_for(flake, purpose)?;
    if hosts.iter().any(|h| h.name == host) {
        return Ok(());
    }
    let known = if hosts.is_empty() {
        "no hosts (is this a nix-wire flake?)".to_owned()
    } else {
        hosts
            .iter()
            .map(|h| h.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    Err(FlakeError::NoHost {
        host: host.to_owned(),
        reference: flake.to_owned(),
        known,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_references() {
        let e = check_local("/nonexistent/flake").unwrap_err().to_string();
        assert_eq!(e, "flake not found: /nonexistent/flake: no such directory");
        let dir = tempfile::tempdir().unwrap();
        let e = check_local(&format!("path:{}", dir.path().display()))
            .unwrap_err()
            .to_string();
        assert!(e.ends_with("has no flake.nix"), "{e}");
    }

    #[test]
    fn files_and_directories_are_hosts() {
        let dir = tempfile::tempdir().unwrap();
        let iso = dir.path().join("hosts/iso");
        std::fs::create_dir_all(iso.join("rescue/users")).unwrap();
        std::fs::write(iso.join("rescue/default.nix"), "{}").unwrap();
        std::fs::create_dir_all(iso.join("notahost")).unwrap();
        std::fs::write(iso.join("minimal.nix"), "{}").unwrap();
        std::fs::write(iso.join("README.md"), "").unwrap();
        let hosts = hosts_in(dir.path()).unwrap();
        let names: Vec<_> = hosts
            .iter()
            .map(|h| (h.name.as_str(), h.file.to_str().unwrap()))
            .collect();
        assert_eq!(
            names,
            [
                ("minimal", "hosts/iso/minimal.nix"),
                ("rescue", "hosts/iso/rescue/default.nix")
            ]
        );
    }
}
