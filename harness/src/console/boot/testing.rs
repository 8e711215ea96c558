//! Consoles whose guest side a test plays, and the recordings they replay.

use crate::console::serial::SerialConsole;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

/// OVMF, nixpkgs' forceTextMode-era layout (fixture grub-gfxterm): only the
/// hint reaches serial; the text menu follows the key.
pub const OVMF_GFXTERM: &[u8] = include_bytes!("../testdata/ovmf-grub-gfxterm-t.raw");
/// AAVMF on `virt` without a display: gfxterm fails, the menu is on serial.
pub const AAVMF_GFXTERM: &[u8] = include_bytes!("../testdata/aavmf-grub-gfxterm.raw");
/// SeaBIOS mirroring the grub-unified fixture's menus: "Options", then the
/// "Serial console=ttyS0,115200n8" submenu, then the kernel.
pub const SEABIOS_OPTIONS: &[u8] = include_bytes!("../testdata/seabios-grub-options.raw");
pub const SEABIOS_SERIAL: &[u8] = include_bytes!("../testdata/seabios-grub-serial-submenu.raw");

/// A console whose guest side the test plays: it writes `before`, then
/// waits for one key (up to `key_wait`), records it, and writes `after`.
pub fn play_guest(
    before: &'static [u8],
    after: &'static [u8],
    key_wait: Duration,
) -> (SerialConsole, Guest, tempfile::TempDir) {
    let (mut guest, host) = UnixStream::pair().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let console = SerialConsole::attach(host, dir.path()).unwrap();
    let handle = std::thread::spawn(move || {
        guest.write_all(before).unwrap();
        guest.set_read_timeout(Some(key_wait)).unwrap();
        let mut key = [0u8; 1];
        let got = guest
            .read(&mut key)
            .ok()
            .filter(|&n| n == 1)
            .map(|_| key[0]);
        guest.write_all(after).unwrap();
        (got, guest) // the stream stays open until the test has read
    });
    (console, Guest(handle), dir)
}

pub struct Guest(std::thread::JoinHandle<(Option<u8>, UnixStream)>);

impl Guest {
    /// The key the guest received, if any.
    pub fn key(self) -> Option<u8> {
        self.0.join().unwrap().0
    }
}

pub fn split_after<'a>(raw: &'a [u8], marker: &str) -> (&'a [u8], &'a [u8]) {
    let at = raw
        .windows(marker.len())
        .position(|w| w == marker.as_bytes())
        .expect("marker")
        + marker.len();
    raw.split_at(at)
}

/// A guest that plays a script: write, then read exactly so many bytes (the
/// harness's keys), and so on; it returns what it read.
pub fn scripted_guest(
    script: Vec<(Vec<u8>, usize)>,
) -> (
    SerialConsole,
    std::thread::JoinHandle<(Vec<u8>, UnixStream)>,
    tempfile::TempDir,
) {
    let (mut guest, host) = UnixStream::pair().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let console = SerialConsole::attach(host, dir.path()).unwrap();
    let handle = std::thread::spawn(move || {
        guest
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut keys = Vec::new();
        for (write, read) in script {
            guest.write_all(&write).unwrap();
            let mut buf = vec![0u8; read];
            guest.read_exact(&mut buf).unwrap();
            keys.extend(buf);
        }
        (keys, guest)
    });
    (console, handle, dir)
}
