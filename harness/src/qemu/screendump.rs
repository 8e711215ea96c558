//! What the guest's display showed: QMP `screendump` writes PNG where QEMU can
//! (7.1 and later, built with libpng) and PPM otherwise; the artifact is always
//! a PNG, converted with the `image` crate when QEMU wrote PPM.

use image::{ImageFormat, RgbImage};
use std::path::Path;

/// Why a screendump could not be turned into a PNG.
#[derive(Debug, thiserror::Error)]
pub enum ScreenError {
    #[error("read the screendump {path}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("the screendump {path} is neither PNG nor PPM (it starts with {magic:02x?})")]
    UnknownFormat { path: String, magic: Vec<u8> },
    #[error("decode the screendump {path}")]
    Decode {
        path: String,
        source: image::ImageError,
    },
    #[error("write {path}")]
    Write {
        path: String,
        source: image::ImageError,
    },
}

/// The formats QEMU's `screendump` writes, told apart by their first bytes.
fn format_of(bytes: &[u8]) -> Option<ImageFormat> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(ImageFormat::Png)
    } else if bytes.starts_with(b"P6") {
        Some(ImageFormat::Pnm)
    } else {
        None
    }
}

/// Decodes a PNG or a (binary) PPM file.
pub fn read_screen(path: &Path) -> Result<RgbImage, ScreenError> {
    let shown = || path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| ScreenError::Read {
        path: shown(),
        source,
    })?;
    let format = format_of(&bytes).ok_or_else(|| ScreenError::UnknownFormat {
        path: shown(),
        magic: bytes.iter().take(8).copied().collect(),
    })?;
    let decoded = image::load_from_memory_with_format(&bytes, format).map_err(|source| {
        ScreenError::Decode {
            path: shown(),
            source,
        }
    })?;
    Ok(decoded.to_rgb8())
}

/// Writes what QEMU dumped at `dumped` (PNG or PPM) as the PNG `png`. A PNG is
/// copied as it is; a PPM is decoded and encoded.
pub fn save_as_png(dumped: &Path, png: &Path) -> Result<(), ScreenError> {
    let screen = read_screen(dumped)?;
    screen
        .save_with_format(png, ImageFormat::Png)
        .map_err(|source| ScreenError::Write {
            path: png.display().to_string(),
            source,
        })
}

/// Whether every pixel has the same colour: a black (or blue) screen that says
/// nothing, as opposed to one with text or a picture on it.
pub fn is_blank(screen: &RgbImage) -> bool {
    let mut pixels = screen.pixels();
    match pixels.next() {
        Some(first) => pixels.all(|p| p == first),
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real screendump, gzipped: QEMU 10.0.2's `screendump` without `format`
    /// (so PPM) of a q35 guest with no disk, SeaBIOS's "No bootable device." in
    /// 720x400 VGA text mode.
    fn seabios_ppm() -> Vec<u8> {
        use std::io::Read;
        let gz: &[u8] = include_bytes!("testdata/seabios-no-bootable-device.ppm.gz");
        let mut ppm = Vec::new();
        flate2::read::GzDecoder::new(gz)
            .read_to_end(&mut ppm)
            .unwrap();
        ppm
    }

    #[test]
    fn a_ppm_from_qemu_becomes_a_png_with_the_same_pixels() {
        let dir = tempfile::tempdir().unwrap();
        let (ppm, png) = (dir.path().join("screen.ppm"), dir.path().join("screen.png"));
        std::fs::write(&ppm, seabios_ppm()).unwrap();
        save_as_png(&ppm, &png).unwrap();
        assert!(
            std::fs::read(&png).unwrap().starts_with(b"\x89PNG"),
            "not a PNG file"
        );
        let (from_ppm, from_png) = (read_screen(&ppm).unwrap(), read_screen(&png).unwrap());
        assert_eq!(from_png.dimensions(), (720, 400));
        assert!(from_ppm == from_png, "the pixels changed in the conversion");
        assert!(!is_blank(&from_png), "SeaBIOS's text is on this screen");
        // A PNG is saved as it is.
        let again = dir.path().join("again.png");
        save_as_png(&png, &again).unwrap();
        assert!(read_screen(&again).unwrap() == from_png);
    }

    #[test]
    fn one_colour_is_blank() {
        assert!(is_blank(&RgbImage::from_pixel(
            640,
            480,
            image::Rgb([0, 0, 0])
        )));
        let mut one_dot = RgbImage::from_pixel(640, 480, image::Rgb([0, 0, 0]));
        one_dot.put_pixel(320, 240, image::Rgb([170, 170, 170]));
        assert!(!is_blank(&one_dot));
    }

    #[test]
    fn other_files_are_errors_not_panics() {
        let dir = tempfile::tempdir().unwrap();
        let text = dir.path().join("qemu.stderr");
        std::fs::write(&text, "qemu-system-x86_64: warning\n").unwrap();
        let e = read_screen(&text).unwrap_err().to_string();
        assert!(e.contains("neither PNG nor PPM"), "{e}");
        let truncated = dir.path().join("cut.ppm");
        std::fs::write(&truncated, &seabios_ppm()[..1000]).unwrap();
        assert!(matches!(
            read_screen(&truncated),
            Err(ScreenError::Decode { .. })
        ));
        assert!(matches!(
            read_screen(&dir.path().join("none.ppm")),
            Err(ScreenError::Read { .. })
        ));
    }
}
