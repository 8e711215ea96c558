//! What the boot loaders draw on the serial console (isolinux's menu and
//! prompt, GRUB's menu, hint and editor), and how GRUB's menu is brought onto
//! serial when it draws on the framebuffer only.

use super::signs::re;
use crate::console::serial::{ConsoleError, SerialConsole};
use regex::bytes::Regex;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub(super) struct Prompts {
    pub menu_ready: Regex,
    pub boot_prompt: Regex,
    pub grub_ready: Regex,
    grub_text_hint: Regex,
    grub_starting: Regex,
    pub grub_editor: Regex,
    pub grub_booting: Regex,
}

pub(super) fn prompts() -> &'static Prompts {
    static P: OnceLock<Prompts> = OnceLock::new();
    P.get_or_init(|| Prompts {
        // vesamenu draws this last; keys sent earlier are lost or boot the default.
        menu_ready: re(r"Press \[Tab\] to edit options|(?m)^boot: $"),
        boot_prompt: re(r"boot: "),
        // GRUB's hint under every menu it draws (wrapped where the terminal is
        // narrow), and the help of its editor. (A menu mirrored from VGA by
        // SeaBIOS comes as cells painted in pieces, with cursor jumps inside
        // words: the plain text joins them, `ansi`.)
        grub_ready: re(r"`c'\s+for\s+a\s+command-line"),
        // What nixpkgs' grub.cfg echoes on the UEFI console before it switches
        // to gfxterm (NixOS/nixpkgs nixos/modules/installer/cd-dvd/iso-image.nix).
        grub_text_hint: re(r"Press '(.)' to use the text boot menu on this console"),
        // GRUB starts: edk2's hand-over to the boot option, SeaBIOS's (mirrored),
        // GRUB's own greeting.
        grub_starting: re(
            r"BdsDxe: starting Boot|Booting from (DVD/CD|Hard Disk)|Welcome to GRUB!",
        ),
        grub_editor: re(r"Ctrl-x\s+or\s+F10\s+to\s+boot"),
        // What GRUB prints when it runs an entry (a submenu draws a menu instead).
        grub_booting: re(r"Booting `"),
    })
}

/// Waits until GRUB draws its menu on serial. A menu drawn on the framebuffer
/// only (gfxterm) shows nothing there but, on nixpkgs' ISOs, a hint to press the
/// text-mode key. Once GRUB is known to run (the firmware's hand-over, GRUB's
/// greeting or that hint), a console silent for `silence` gets the key (the one
/// the hint names, else `key`), again after every further `silence`. Not at the
/// hint itself: where gfxterm cannot start (AAVMF on `virt` without a display) the
/// menu follows on the console, and the key would run nixpkgs' older text-mode
/// entry, whose `terminal_output gfxterm console` fails and eats the next key.
/// GRUB keeps a key pressed before its menu runs (measured with OVMF). Returns
/// when a key was first pressed, if one was.
pub(super) fn grub_menu_on_serial(
    console: &mut SerialConsole,
    key: char,
    deadline: Instant,
    silence: Duration,
) -> Result<Option<Instant>, ConsoleError> {
    let p = prompts();
    let mut key = key;
    let mut pressed = None;
    // The last sign that GRUB runs: from then on, silence means a hidden menu.
    let mut alive: Option<Instant> = None;
    let waiting_since = Instant::now();
    loop {
        let now = Instant::now();
        let left = deadline.saturating_duration_since(now);
        let wait = alive.map_or(left, |at| {
            (at + silence).saturating_duration_since(now).min(left)
        });
        match console.expect(
            &[&p.grub_ready, &p.grub_text_hint, &p.grub_starting],
            wait,
            "the GRUB boot menu",
        ) {
            Ok(m) if m.index == 0 => return Ok(pressed),
            Ok(m) => {
                if m.index == 1 {
                    key = m
                        .text
                        .split('\'')
                        .nth(1)
                        .and_then(|k| k.chars().next())
                        .unwrap_or(key);
                }
                alive = Some(Instant::now());
            }
            Err(ConsoleError::Timeout { .. }) if alive.is_some() && !left.is_zero() => {
                tracing::info!(
                    "no GRUB menu on serial after {} s; pressing its text-mode key `{key}`",
                    silence.as_secs_f32()
                );
                console.send(key.to_string().as_bytes())?;
                pressed = pressed.or(Some(Instant::now()));
                alive = Some(Instant::now());
            }
            Err(ConsoleError::Timeout { last_lines, .. }) => {
                let waited = if pressed.is_some() {
                    "the GRUB boot menu (after its text-mode key)"
                } else {
                    "the GRUB boot menu"
                };
                return Err(ConsoleError::Timeout {
                    waiting_for: waited.into(),
                    after: waiting_since.elapsed(),
                    last_lines,
                });
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{play_guest, split_after, AAVMF_GFXTERM, OVMF_GFXTERM};
    use super::*;

    /// GRUB's hint as a menu mirrored by SeaBIOS paints it: in pieces, with a
    /// cursor jump inside a word (a soak run of
    /// `menus::grub_unified::x86_64::bios` saw it fall inside "command").
    #[test]
    fn the_grub_hint_is_found_in_a_menu_painted_in_pieces() {
        let p = prompts();
        let raw = b"\x1b[20;02H     Use the keys.   \r\n      Press enter to boot the selected OS, `e' to edit the commands       \r\n      before booting or `c' for a comm\x1b[22;38H\x1b[22;39Hand-line.     \x1b[05;80H ";
        let mut text = Vec::new();
        crate::console::ansi::AnsiStripper::default().feed(raw, &mut text);
        assert!(
            p.grub_ready.is_match(&text),
            "{}",
            String::from_utf8_lossy(&text)
        );
        assert!(p.grub_ready.is_match(b"`c' for a command-line."));
        assert!(p.grub_ready.is_match(b"`c' for\n      a command-line."));
        assert!(!p.grub_ready.is_match(b"`c' for a command"));
        assert!(!p.grub_ready.is_match(b"`e' to edit the commands"));
    }

    #[test]
    fn the_text_mode_hint_gets_its_key() {
        let (before, after) = split_after(OVMF_GFXTERM, "text boot menu on this console...");
        let (mut console, guest, _dir) = play_guest(before, after, Duration::from_secs(5));
        let deadline = Instant::now() + Duration::from_secs(10);
        let pressed =
            grub_menu_on_serial(&mut console, 'x', deadline, Duration::from_millis(300)).unwrap();
        assert_eq!(guest.key(), Some(b't'), "the key the hint names");
        assert!(pressed.is_some());
        // The level's last item follows, as the menu driver expects it.
        assert!(console
            .expect(&[&re("Shutdown")], Duration::from_secs(1), "the menu")
            .is_ok());
    }

    #[test]
    fn a_silent_console_gets_the_key_unasked() {
        let (before, _) = split_after(OVMF_GFXTERM, "Welcome to GRUB!");
        let (_, menu) = split_after(OVMF_GFXTERM, "on this console...");
        let (mut console, guest, _dir) = play_guest(before, menu, Duration::from_secs(5));
        let deadline = Instant::now() + Duration::from_secs(10);
        let pressed =
            grub_menu_on_serial(&mut console, 't', deadline, Duration::from_millis(300)).unwrap();
        assert_eq!(guest.key(), Some(b't'));
        assert!(pressed.is_some());
    }

    #[test]
    fn a_menu_on_serial_needs_no_key() {
        // The fixture's own layout: the menu is drawn on serial, no hint.
        let (before, after) = split_after(AAVMF_GFXTERM, "video mode found.");
        let (_, menu) = split_after(after, "\n");
        let drawn: &'static [u8] = Box::leak(
            [b"BdsDxe: starting Boot0001\r\n".as_slice(), menu]
                .concat()
                .into_boxed_slice(),
        );
        let (mut console, guest, _dir) = play_guest(drawn, b"", Duration::from_millis(500));
        let deadline = Instant::now() + Duration::from_secs(10);
        assert_eq!(
            grub_menu_on_serial(&mut console, 't', deadline, Duration::from_secs(10)).unwrap(),
            None
        );
        assert_eq!(guest.key(), None, "no key was pressed");
        // AAVMF without a display: the hint, then the menu anyway: no key.
        let (mut console, guest, _dir) = play_guest(before, after, Duration::from_millis(500));
        assert_eq!(
            grub_menu_on_serial(&mut console, 't', deadline, Duration::from_secs(10)).unwrap(),
            None
        );
        assert_eq!(guest.key(), None);
    }

    #[test]
    fn silence_before_grub_runs_presses_nothing() {
        let (before, _) = split_after(OVMF_GFXTERM, "\x1b[2J\x1b[01;01H");
        let (mut console, guest, _dir) = play_guest(before, b"", Duration::from_millis(800));
        let deadline = Instant::now() + Duration::from_millis(600);
        assert!(
            grub_menu_on_serial(&mut console, 't', deadline, Duration::from_millis(100)).is_err()
        );
        assert_eq!(guest.key(), None);
    }

    #[test]
    fn no_menu_at_all_is_a_timeout_that_says_the_key_was_pressed() {
        let (before, _) = split_after(OVMF_GFXTERM, "on this console...");
        let (mut console, guest, _dir) = play_guest(before, b"", Duration::from_secs(2));
        let deadline = Instant::now() + Duration::from_millis(600);
        let e = grub_menu_on_serial(&mut console, 't', deadline, Duration::from_millis(200))
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("the GRUB boot menu (after its text-mode key)"),
            "{e}"
        );
        assert_eq!(guest.key(), Some(b't'));
    }
}
