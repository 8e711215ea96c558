//! What a firmware can find on an image before it is booted: its ISO 9660
//! volume descriptors and its El Torito boot catalog, read straight from the
//! file. A file that is no ISO, or an ISO with nothing any firmware could boot,
//! is said at once, before QEMU starts, instead of after a boot timeout.
//!
//! The layout is ECMA-119 (ISO 9660) §8: 2048-byte sectors, the volume
//! descriptors from sector 16 on, each starting with its type and "CD001"; and
//! the El Torito specification (1.0, 1995): a boot record descriptor (type 0,
//! "EL TORITO SPECIFICATION") points at the boot catalog, whose validation
//! entry names the platform of the default entry and whose section headers
//! name the platform of the entries after them (0x00 x86 BIOS, 0xEF EFI).
//! Nothing here trusts the file: every offset is bounds-checked, every loop
//! is bounded, junk gives an error, never a panic.

use std::fmt;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

const SECTOR: u64 = 2048;
/// The system area (sectors 0-15) comes first; the descriptors follow.
const FIRST_DESCRIPTOR: u64 = 16;
/// More descriptors than any mastering tool writes: a set without its
/// terminator ends here.
const MAX_DESCRIPTORS: u64 = 64;
/// A catalog of this many sectors (256 entries) is far beyond any real one.
const MAX_CATALOG_SECTORS: u64 = 4;
const ENTRY: usize = 32;

/// The platform a boot entry is for (El Torito's platform ID).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    /// 0x00: a PC BIOS (SeaBIOS).
    Bios,
    /// 0xEF: UEFI (OVMF, AAVMF).
    Efi,
    /// Another one (0x01 PowerPC, 0x02 Mac).
    Other(u8),
}

impl Platform {
    fn of(id: u8) -> Platform {
        match id {
            0x00 => Platform::Bios,
            0xEF => Platform::Efi,
            other => Platform::Other(other),
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Platform::Bios => f.write_str("x86 BIOS"),
            Platform::Efi => f.write_str("UEFI"),
            Platform::Other(id) => write!(f, "platform 0x{id:02x}"),
        }
    }
}

/// What a firmware sees of a bootable ISO.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootableIso {
    /// The primary volume descriptor's volume identifier.
    pub volume_id: String,
    /// The platforms of the catalog's bootable entries, in catalog order,
    /// each once. Empty when the catalog has entries but none is bootable.
    pub platforms: Vec<Platform>,
}

impl BootableIso {
    /// The platforms, for a message: `x86 BIOS, UEFI`, or `none`.
    pub fn platforms_text(&self) -> String {
        if self.platforms.is_empty() {
            return "none".to_owned();
        }
        self.platforms
            .iter()
            .map(Platform::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Why an image cannot be booted from a CD-ROM drive at all. Each names the
/// file and what it lacks.
#[derive(Debug, thiserror::Error)]
pub enum IsoError {
    #[error("{path}: cannot read the image")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a file")]
    NotAFile { path: PathBuf },
    #[error("{path} is not an ISO 9660 image: {why}")]
    NotIso { path: PathBuf, why: String },
    #[error(
        "{path} is an ISO 9660 image without an El Torito boot record: no firmware can boot it from a CD-ROM \
         (a data disc; mastered without `-b`/`-e`?)"
    )]
    NoBootRecord { path: PathBuf },
    #[error("{path}: its El Torito boot catalog (sector {sector}) is not valid: {why}")]
    BadCatalog {
        path: PathBuf,
        sector: u32,
        why: String,
    },
}

/// Reads the image's volume descriptors and boot catalog; an error when it is
/// not an ISO 9660 image or no firmware could boot it.
pub fn inspect(path: &Path) -> Result<BootableIso, IsoError> {
    let read_error = |source| IsoError::Read {
        path: path.to_owned(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(read_error)?;
    if !meta.is_file() {
        return Err(IsoError::NotAFile {
            path: path.to_owned(),
        });
    }
    let mut file = File::open(path).map_err(read_error)?;
    let not_iso = |why: String| IsoError::NotIso {
        path: path.to_owned(),
        why,
    };
    let descriptors = read_descriptors(&mut file, meta.len()).map_err(|e| match e {
        Unreadable::Io(source) => read_error(source),
        Unreadable::Junk(why) => not_iso(why),
    })?;
    let volume_id = descriptors
        .volume_id
        .ok_or_else(|| not_iso("no primary volume descriptor".to_owned()))?;
    let sector = descriptors.catalog.ok_or_else(|| IsoError::NoBootRecord {
        path: path.to_owned(),
    })?;
    let bad = |why: String| IsoError::BadCatalog {
        path: path.to_owned(),
        sector,
        why,
    };
    let catalog = read_sectors(
        &mut file,
        meta.len(),
        u64::from(sector),
        MAX_CATALOG_SECTORS,
    )
    .map_err(|e| match e {
        Unreadable::Io(source) => read_error(source),
        Unreadable::Junk(why) => bad(why),
    })?;
    let platforms = boot_platforms(&catalog).map_err(bad)?;
    Ok(BootableIso {
        volume_id,
        platforms,
    })
}

/// What the descriptor set holds that matters here.
#[derive(Debug, Default)]
struct Descriptors {
    volume_id: Option<String>,
    /// The boot catalog's sector, from an El Torito boot record.
    catalog: Option<u32>,
}

enum Unreadable {
    Io(std::io::Error),
    Junk(String),
}

/// The volume descriptors from sector 16 to the terminator (type 255).
fn read_descriptors(file: &mut File, len: u64) -> Result<Descriptors, Unreadable> {
    if len == 0 {
        return Err(Unreadable::Junk("the file is empty".to_owned()));
    }
    let first = FIRST_DESCRIPTOR * SECTOR;
    if len < first + SECTOR {
        return Err(Unreadable::Junk(format!(
            "{len} bytes, too short for the volume descriptors (from byte {first}); a text file or a truncated image?"
        )));
    }
    let mut found = Descriptors::default();
    for n in 0..MAX_DESCRIPTORS {
        let sector = FIRST_DESCRIPTOR + n;
        let d = match read_sectors(file, len, sector, 1) {
            Ok(d) => d,
            Err(Unreadable::Junk(_)) => {
                return Err(Unreadable::Junk(format!(
                "the volume descriptors end at sector {sector} without a terminator (truncated?)"
            )))
            }
            Err(e) => return Err(e),
        };
        if &d[1..6] != b"CD001" {
            return Err(Unreadable::Junk(if n == 0 {
                "no volume descriptor (\"CD001\") at sector 16".to_owned()
            } else {
                format!(
                    "sector {sector} is not a volume descriptor and no terminator came before it"
                )
            }));
        }
        match d[0] {
            0 if d[7..39].starts_with(b"EL TORITO SPECIFICATION") => {
                found.catalog = Some(le32(&d[71..75]))
            }
            1 if found.volume_id.is_none() => {
                found.volume_id = Some(String::from_utf8_lossy(&d[40..72]).trim().to_owned())
            }
            255 => return Ok(found),
            _ => {}
        }
    }
    Err(Unreadable::Junk(format!(
        "no volume descriptor set terminator in {MAX_DESCRIPTORS} sectors"
    )))
}

/// Up to `count` sectors from `sector` on, as far as the file goes (at least one).
fn read_sectors(file: &mut File, len: u64, sector: u64, count: u64) -> Result<Vec<u8>, Unreadable> {
    let start = sector * SECTOR;
    if start + SECTOR > len {
        return Err(Unreadable::Junk(format!(
            "sector {sector} is past the end of the file ({len} bytes; truncated?)"
        )));
    }
    let end = (start + count * SECTOR).min(len);
    let mut buf = vec![0; (end - start) as usize];
    file.seek(SeekFrom::Start(start)).map_err(Unreadable::Io)?;
    file.read_exact(&mut buf).map_err(Unreadable::Io)?;
    Ok(buf)
}

fn le32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

fn le16(b: &[u8]) -> u16 {
    u16::from_le_bytes([b[0], b[1]])
}

/// The platforms of a catalog's bootable entries: the default entry's (the
/// validation entry's platform), then each section's. The validation entry
/// must be one (header 1, key 55 AA, its 16-bit words summing to 0).
fn boot_platforms(catalog: &[u8]) -> Result<Vec<Platform>, String> {
    let validation = catalog.get(..ENTRY).ok_or("shorter than one entry")?;
    if validation[0] != 0x01 || validation[30..32] != [0x55, 0xAA] {
        return Err("no validation entry (header 01, key 55 AA) at its start".to_owned());
    }
    let sum = validation
        .chunks(2)
        .fold(0u16, |s, w| s.wrapping_add(le16(w)));
    if sum != 0 {
        return Err("the validation entry's checksum is wrong".to_owned());
    }
    let mut platforms = Vec::new();
    let mut add = |p: Platform| {
        if !platforms.contains(&p) {
            platforms.push(p);
        }
    };
    let default = catalog.get(ENTRY..2 * ENTRY).ok_or("no default entry")?;
    if default[0] == 0x88 {
        add(Platform::of(validation[1]));
    }
    // Section headers (0x90, or 0x91 for the last), each followed by its entries
    // and their extensions (0x44). Anything else ends the catalog.
    let mut at = 2 * ENTRY;
    while let Some(header) = catalog.get(at..at + ENTRY) {
        if header[0] != 0x90 && header[0] != 0x91 {
            break;
        }
        let platform = Platform::of(header[1]);
        let mut left = le16(&header[2..4]);
        at += ENTRY;
        while left > 0 {
            let Some(entry) = catalog.get(at..at + ENTRY) else {
                break;
            };
            at += ENTRY;
            match entry[0] {
                0x44 => continue,
                0x88 => add(platform),
                _ => {}
            }
            left -= 1;
        }
        if header[0] == 0x91 {
            break;
        }
    }
    Ok(platforms)
}

/// ISOs for unit tests, made by xorriso.
#[cfg(test)]
pub(crate) mod testing {
    use std::path::{Path, PathBuf};
    use std::process::Command;

    /// An ISO made by xorriso from a small tree, with `boot` as its El Torito
    /// options (paths in the tree: `b.img` a 2 KiB BIOS image, `e.img` a 64 KiB
    /// EFI image).
    pub(crate) fn xorriso(dir: &Path, name: &str, boot: &[&str]) -> PathBuf {
        let root = dir.join(format!("{name}-root"));
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join("b.img"), vec![0u8; 2048]).unwrap();
        std::fs::write(root.join("e.img"), vec![0u8; 65536]).unwrap();
        std::fs::write(root.join("readme"), "hello\n").unwrap();
        let out = dir.join(format!("{name}.iso"));
        let made = Command::new("xorriso")
            .args(["-as", "mkisofs", "-quiet", "-V", "ISOTEST_T", "-o"])
            .arg(&out)
            .args(boot)
            .arg(&root)
            .output()
            .expect("xorriso is installed (ci/install-deps)");
        assert!(
            made.status.success(),
            "{}",
            String::from_utf8_lossy(&made.stderr)
        );
        out
    }

    pub(crate) const BIOS: &[&str] = &["-b", "b.img", "-no-emul-boot", "-boot-load-size", "4"];
    pub(crate) const EFI: &[&str] = &["-e", "e.img", "-no-emul-boot"];
}

#[cfg(test)]
mod tests {
    use super::testing::{xorriso, BIOS, EFI};
    use super::*;

    #[test]
    fn an_iso_for_bios_and_uefi() {
        let dir = tempfile::tempdir().unwrap();
        let both = [BIOS, &["-eltorito-alt-boot"], EFI].concat();
        let iso = inspect(&xorriso(dir.path(), "both", &both)).unwrap();
        assert_eq!(
            iso,
            BootableIso {
                volume_id: "ISOTEST_T".into(),
                platforms: vec![Platform::Bios, Platform::Efi]
            }
        );
        assert_eq!(iso.platforms_text(), "x86 BIOS, UEFI");
    }

    #[test]
    fn an_iso_for_one_firmware() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            inspect(&xorriso(dir.path(), "bios", BIOS))
                .unwrap()
                .platforms,
            [Platform::Bios]
        );
        assert_eq!(
            inspect(&xorriso(dir.path(), "efi", EFI)).unwrap().platforms,
            [Platform::Efi]
        );
    }

    #[test]
    fn an_iso_without_a_boot_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = xorriso(dir.path(), "data", &[]);
        let e = inspect(&path).unwrap_err();
        assert!(matches!(e, IsoError::NoBootRecord { .. }), "{e:?}");
        assert!(
            e.to_string().starts_with(&format!(
                "{} is an ISO 9660 image without an El Torito boot record",
                path.display()
            )),
            "{e}"
        );
    }

    #[test]
    fn files_that_are_no_iso() {
        let dir = tempfile::tempdir().unwrap();
        let text = dir.path().join("hostname");
        std::fs::write(&text, "rescue\n").unwrap();
        let e = inspect(&text).unwrap_err().to_string();
        assert_eq!(e, format!("{} is not an ISO 9660 image: 7 bytes, too short for the volume descriptors (from byte 32768); a text file or a truncated image?", text.display()));
        let empty = dir.path().join("empty.iso");
        std::fs::write(&empty, "").unwrap();
        assert_eq!(
            inspect(&empty).unwrap_err().to_string(),
            format!(
                "{} is not an ISO 9660 image: the file is empty",
                empty.display()
            )
        );
        let big = dir.path().join("zeros.img");
        std::fs::write(&big, vec![0u8; 1 << 20]).unwrap();
        let e = inspect(&big).unwrap_err().to_string();
        assert!(
            e.ends_with("no volume descriptor (\"CD001\") at sector 16"),
            "{e}"
        );
        let e = inspect(dir.path()).unwrap_err().to_string();
        assert_eq!(e, format!("{}: not a file", dir.path().display()));
        let e = crate::error::chain(&inspect(&dir.path().join("nosuch.iso")).unwrap_err());
        assert!(e.contains("cannot read the image: No such file"), "{e}");
    }

    #[test]
    fn a_truncated_iso() {
        let dir = tempfile::tempdir().unwrap();
        let whole = std::fs::read(xorriso(dir.path(), "whole", BIOS)).unwrap();
        let cut = dir.path().join("cut.iso");
        // Inside the descriptor set: the terminator is gone.
        std::fs::write(&cut, &whole[..17 * 2048 + 100]).unwrap();
        let e = inspect(&cut).unwrap_err().to_string();
        assert!(
            e.contains("is not an ISO 9660 image: the volume descriptors end at sector 17"),
            "{e}"
        );
        // After the descriptors, before the boot catalog.
        let catalog = (16..32)
            .map(|s| &whole[s * 2048..])
            .find(|d| d[0] == 0 && &d[1..6] == b"CD001")
            .map(|d| le32(&d[71..75]))
            .unwrap();
        std::fs::write(&cut, &whole[..catalog as usize * 2048]).unwrap();
        let e = inspect(&cut).unwrap_err().to_string();
        assert!(e.contains(&format!("its El Torito boot catalog (sector {catalog}) is not valid: sector {catalog} is past the end")), "{e}");
    }

    #[test]
    fn junk_never_panics() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("junk.iso");
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let whole = std::fs::read(xorriso(
            dir.path(),
            "seed",
            &[BIOS, &["-eltorito-alt-boot"], EFI].concat(),
        ))
        .unwrap();
        for _ in 0..300 {
            // A real ISO's first 40 sectors with random bytes changed, cut anywhere.
            let mut bytes = whole[..whole.len().min(40 * 2048)].to_vec();
            for _ in 0..(next() % 64) {
                let at = (next() % bytes.len() as u64) as usize;
                bytes[at] = next() as u8;
            }
            // Descriptor types and catalog entries are where the reader branches.
            for sector in 16..20 {
                if next() % 3 == 0 {
                    bytes[sector * 2048] = [0, 1, 2, 255][(next() % 4) as usize];
                }
            }
            bytes.truncate((next() % bytes.len() as u64) as usize + 1);
            std::fs::write(&path, &bytes).unwrap();
            let _ = inspect(&path);
        }
    }

    #[test]
    fn catalogs() {
        let entry = |bytes: &[u8]| {
            let mut e = [0u8; ENTRY];
            e[..bytes.len()].copy_from_slice(bytes);
            e
        };
        let validation = |platform: u8| {
            let mut v = entry(&[0x01, platform]);
            v[30] = 0x55;
            v[31] = 0xAA;
            let sum = v.chunks(2).fold(0u16, |s, w| s.wrapping_add(le16(w)));
            v[28..30].copy_from_slice(&0u16.wrapping_sub(sum).to_le_bytes());
            v
        };
        // A non-bootable default entry and a section for EFI with an extension.
        let catalog = [
            validation(0),
            entry(&[0x00]),
            entry(&[0x91, 0xEF, 1, 0]),
            entry(&[0x88]),
            entry(&[0x44]),
        ]
        .concat();
        assert_eq!(boot_platforms(&catalog), Ok(vec![Platform::Efi]));
        let catalog = [
            validation(0),
            entry(&[0x88]),
            entry(&[0x90, 0x02, 1, 0]),
            entry(&[0x44]),
            entry(&[0x88]),
        ]
        .concat();
        assert_eq!(
            boot_platforms(&catalog),
            Ok(vec![Platform::Bios, Platform::Other(2)])
        );
        let mut broken = validation(0);
        broken[1] = 0xEF;
        assert_eq!(
            boot_platforms(&[broken, entry(&[0x88])].concat()),
            Err("the validation entry's checksum is wrong".into())
        );
        assert_eq!(
            boot_platforms(&[0u8; 64]),
            Err("no validation entry (header 01, key 55 AA) at its start".into())
        );
        assert_eq!(
            boot_platforms(&validation(0)),
            Err("no default entry".into())
        );
        // A section header that promises more entries than the catalog has.
        let catalog = [
            validation(0),
            entry(&[0x00]),
            entry(&[0x91, 0xEF, 0xff, 0xff]),
        ]
        .concat();
        assert_eq!(boot_platforms(&catalog), Ok(vec![]));
    }
}
