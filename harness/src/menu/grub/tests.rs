//! grub.cfg as ISOs have it, parsed, and the way through it chosen.

use super::plan::DOWN;
use super::words::{linux_command, linux_line, Line};
use super::*;
use regex::Regex;

/// Each step of the plan: from which item, to which, and the level's last title.
fn moves(plan: &GrubPlan) -> Vec<(usize, usize, &str)> {
    plan.steps
        .iter()
        .map(|s| (s.from, s.to, s.last_title.as_str()))
        .collect()
}

/// The shape of NixOS's iso-image.nix grub.cfg (and the fixture's).
const NIXOS_LIKE: &str = r#"
serial --unit=0 --speed=115200
terminal_output console serial
set timeout=10
menuentry "NixOS 24.05 Installer" --class installer {
  linux /boot/bzImage init=/x loglevel=4
  initrd /boot/initrd
}
menuentry "NixOS 24.05 Installer (nomodeset)" --class nomodeset {
  linux /boot/bzImage init=/x loglevel=4 nomodeset
  initrd /boot/initrd
}
submenu "HiDPI, Quirks and Accessibility" --class hidpi {
  submenu "Suggested resolutions" --class hidpi {
    menuentry 'NixOS 24.05 Installer (1024x768)' { linux /boot/bzImage video=1024x768 ; }
  }
  submenu "Serial console=ttyS0,115200n8" --class serial {
    menuentry "NixOS 24.05 Installer" --class installer {
      linux /boot/bzImage init=/x loglevel=4 console=ttyS0,115200n8
      initrd /boot/initrd
    }
  }
}
menuentry 'Firmware Setup' --class settings {
  fwsetup
}
"#;

/// What nixpkgs' iso-image.nix generates as EFI/boot/grub.cfg in the
/// `isoImage.forceTextMode` era (NixOS/nixpkgs, path
/// nixos/modules/installer/cd-dvd/iso-image.nix, commit f519ce0a289a), with
/// the repeated menu configuration shortened to one `if` block per level.
const NIXPKGS_FORCE_TEXT_MODE: &str = r#"
set textmode=false
set timeout=10

clear
# This message will only be viewable on the default (UEFI) console.
echo ""
echo "Loading graphical boot menu..."
echo ""
echo "Press 't' to use the text boot menu on this console..."
echo ""
search --set=root --file /EFI/nixos-installer-image
if [ "$textmode" == "false" ]; then
  terminal_output gfxterm
  terminal_input  console
else
  terminal_output console
fi
hiddenentry 'Text mode' --hotkey 't' {
  loadfont ($root)/EFI/boot/unicode.pf2
  set textmode=true
  terminal_output console
}
hiddenentry 'GUI mode' --hotkey 'g' {
  set textmode=false
  terminal_output gfxterm
}
if [ ${iso_path} ] ; then
  set isoboot="findiso=${iso_path}"
fi
menuentry 'NixOS 24.05 Installer '  --class installer {
  # Fallback to UEFI console for boot, efifb sometimes has difficulties.
  terminal_output console

  linux /boot/bzImage ${isoboot} init=/nix/store/x/init  root=LABEL=nixos-minimal-24.05-x86_64 loglevel=4
  initrd /boot/initrd
}
menuentry 'NixOS 24.05 Installer (nomodeset)'  --class nomodeset {
  terminal_output console
  linux /boot/bzImage ${isoboot} init=/nix/store/x/init  loglevel=4 nomodeset
  initrd /boot/initrd
}
menuentry 'NixOS 24.05 Installer (copytoram)'  --class copytoram {
  linux /boot/bzImage ${isoboot} init=/nix/store/x/init  loglevel=4 copytoram
}
menuentry 'NixOS 24.05 Installer (debug)'  --class debug {
  linux /boot/bzImage ${isoboot} init=/nix/store/x/init  loglevel=4 debug
}
submenu "HiDPI, Quirks and Accessibility" --class hidpi --class submenu {
  if [ "$textmode" == "false" ]; then
    terminal_output gfxterm
  fi
  submenu "Suggests resolution @720p" --class hidpi-720p {
    menuentry 'NixOS 24.05 Installer '  --class installer {
      linux /boot/bzImage ${isoboot} init=/nix/store/x/init video=1280x720@60 loglevel=4
    }
  }
  submenu "Suggests resolution @1080p" --class hidpi-1080p {
    menuentry 'NixOS 24.05 Installer '  --class installer {
      linux /boot/bzImage ${isoboot} init=/nix/store/x/init video=1920x1080@60 loglevel=4
    }
  }
  submenu "Disable display-manager" --class quirk-disable-displaymanager {
    menuentry 'NixOS 24.05 Installer '  --class installer {
      linux /boot/bzImage ${isoboot} init=/nix/store/x/init systemd.mask=display-manager.service
    }
  }
  submenu "" {return}
  submenu "Rotate framebuffer Clockwise" --class rotate-90cw {
    menuentry 'NixOS 24.05 Installer '  --class installer { linux /boot/bzImage fbcon=rotate:1 ; }
  }
  submenu "Rotate framebuffer Upside-Down" --class rotate-180 {
    menuentry 'NixOS 24.05 Installer '  --class installer { linux /boot/bzImage fbcon=rotate:2 ; }
  }
  submenu "Rotate framebuffer Counter-Clockwise" --class rotate-90ccw {
    menuentry 'NixOS 24.05 Installer '  --class installer { linux /boot/bzImage fbcon=rotate:3 ; }
  }
  submenu "" {return}
  submenu "Use black on white" --class accessibility-blakconwhite {
    menuentry 'NixOS 24.05 Installer '  --class installer { linux /boot/bzImage vt.default_red=0xFF ; }
  }
  submenu "" {return}
  submenu "Serial console=ttyS0,115200n8" --class serial {
    if [ "$textmode" == "false" ]; then
      terminal_output gfxterm
    fi
    menuentry 'NixOS 24.05 Installer '  --class installer {
      # Fallback to UEFI console for boot, efifb sometimes has difficulties.
      terminal_output console

      linux /boot/bzImage ${isoboot} init=/nix/store/x/init console=ttyS0,115200n8 loglevel=4
      initrd /boot/initrd
    }
    menuentry 'NixOS 24.05 Installer (nomodeset)'  --class nomodeset {
      linux /boot/bzImage ${isoboot} init=/nix/store/x/init console=ttyS0,115200n8 nomodeset
    }
  }
}
if [ "$root" != "cd0" ]; then
  menuentry 'rEFInd' --class refind {
    chainloader ($root)/EFI/boot/refind_x64.efi
  }
fi
menuentry 'Firmware Setup' --class settings {
  fwsetup
  clear
}
menuentry 'Shutdown' --class shutdown {
  halt
}
"#;

#[test]
fn separators_count_and_hidden_entries_do_not() {
    let m = GrubMenu::parse(NIXPKGS_FORCE_TEXT_MODE);
    let titles: Vec<_> = m.items.iter().map(GrubItem::title).collect();
    assert_eq!(
        titles[..5],
        [
            "NixOS 24.05 Installer ",
            "NixOS 24.05 Installer (nomodeset)",
            "NixOS 24.05 Installer (copytoram)",
            "NixOS 24.05 Installer (debug)",
            "HiDPI, Quirks and Accessibility"
        ]
    );
    assert!(
        !titles.contains(&"Text mode") && !titles.contains(&"GUI mode"),
        "{titles:?}"
    );
    assert_eq!(m.text_mode_key, Some('t'));
    let GrubItem::Submenu { items, .. } = &m.items[4] else {
        panic!("not a submenu")
    };
    let hidpi: Vec<_> = items.iter().map(GrubItem::title).collect();
    assert_eq!(hidpi.len(), 11, "{hidpi:?}");
    assert_eq!(
        (hidpi[3], hidpi[7], hidpi[9], hidpi[10]),
        ("", "", "", "Serial console=ttyS0,115200n8")
    );

    let plan = m.choose(None, "console=ttyS0,115200n8").unwrap();
    assert_eq!(plan.edit, None);
    assert_eq!(plan.text_mode_key, 't');
    assert_eq!(
        moves(&plan),
        [
            (0, 4, "Shutdown"),
            (0, 10, "Serial console=ttyS0,115200n8"),
            (0, 0, "NixOS 24.05 Installer (nomodeset)")
        ]
    );
    // Ten downs in the HiDPI submenu: three of them cross separators.
    assert_eq!(
        GrubPlan::keys(&plan.steps[1], false, false),
        [DOWN.repeat(10), b"\r".to_vec()].concat()
    );
}

#[test]
fn the_older_hidden_text_entry_and_menuentry_hotkeys() {
    // Before forceTextMode (commit 007ab6fb2fef of the same file) the hidden
    // entry kept gfxterm next to the console.
    let cfg = "hiddenentry 'Text mode' --hotkey 't' {\n  set textmode=true\n  terminal_output gfxterm console\n}\n\
               menuentry 'A' --hotkey=a { linux /a ; }\n";
    let m = GrubMenu::parse(cfg);
    assert_eq!(m.text_mode_key, Some('t'));
    assert_eq!(
        m.items.len(),
        1,
        "a visible entry with a hotkey is drawn and counted"
    );
    assert_eq!(
        Line::read("menuentry 'x' --hotkey backspace {").hotkey(),
        None
    );
    assert_eq!(GrubMenu::parse(NIXOS_LIKE).text_mode_key, None);
}

/// Braces, `;` and `#` inside quotes are text: a one-line entry whose title
/// holds a brace keeps its body, and a quoted `;` does not split a command.
#[test]
fn quoted_braces_and_semicolons_are_text() {
    let m = GrubMenu::parse(
        "menuentry 'a{b' { linux /k x=\"1;2\" ; initrd /i }\nmenuentry \"}#\" { linux /k }\n",
    );
    assert_eq!(
        m.items,
        [
            GrubItem::Entry {
                title: "a{b".into(),
                body: vec!["linux /k x=\"1;2\"".into(), "initrd /i".into()]
            },
            GrubItem::Entry {
                title: "}#".into(),
                body: vec!["linux /k".into()]
            },
        ]
    );
}

/// GRUB's quoting: escapes in double quotes and outside them, adjacent parts
/// joined into one word.
#[test]
fn titles_are_read_with_grubs_quoting() {
    let cfg = "menuentry \"say \\\"hi\\\" for \\$5\" {\n}\nmenuentry It\\'s' a '\"test\" {\n}\nmenuentry 'C:\\x' {\n}\n";
    let titles: Vec<_> = GrubMenu::parse(cfg)
        .items
        .iter()
        .map(|i| i.title().to_owned())
        .collect();
    assert_eq!(titles, ["say \"hi\" for $5", "It's a test", "C:\\x"]);
    // A brace ends a plain word.
    assert_eq!(
        GrubMenu::parse("menuentry Plain{\n}\n").items[0].title(),
        "Plain"
    );
}

/// A brace in a body's comment or quoted string does not keep the entry open.
#[test]
fn braces_in_comments_and_strings_of_a_body_are_text() {
    let cfg = "menuentry A {\n  # the { of old\n  echo \"{\"\n  linux /k ${isoboot}\n}\nmenuentry B {\n}\n";
    let m = GrubMenu::parse(cfg);
    let titles: Vec<_> = m.items.iter().map(GrubItem::title).collect();
    assert_eq!(titles, ["A", "B"]);
    assert_eq!(
        linux_line(match &m.items[0] {
            GrubItem::Entry { body, .. } => body,
            _ => panic!("not an entry"),
        }),
        Some(2)
    );
}

/// `--hotkey` inside a title is text, not the option.
#[test]
fn a_hotkey_in_the_title_is_text() {
    assert_eq!(Line::read("menuentry 'use --hotkey x' {").hotkey(), None);
    assert_eq!(
        Line::read("hiddenentry 'T' --class c --hotkey \"t\" {").hotkey(),
        Some('t')
    );
    assert_eq!(Line::read("hiddenentry T --hotkey=g {").hotkey(), Some('g'));
}

/// The console goes after the `linux` command's own arguments, whether the
/// command ends at the line's end, a `;` or a `}`; quoted `;` are text.
#[test]
fn the_linux_commands_arguments_end_at_a_semicolon_a_brace_or_the_line() {
    fn at(line: &str) -> Option<(&str, &str)> {
        linux_command(line).map(|(end, args)| (&line[..end], args))
    }
    assert_eq!(
        at("  linux /boot/bzImage a=1 b  "),
        Some(("  linux /boot/bzImage a=1 b", "/boot/bzImage a=1 b"))
    );
    assert_eq!(
        at(" linux /boot/bzImage a=1 ; initrd /boot/initrd; "),
        Some((" linux /boot/bzImage a=1", "/boot/bzImage a=1"))
    );
    assert_eq!(
        at("terminal_output console; linux /k x=\"1;2\"}"),
        Some((
            "terminal_output console; linux /k x=\"1;2\"",
            "/k x=\"1;2\""
        ))
    );
    assert_eq!(at("linuxefi /k;initrd /i"), Some(("linuxefi /k", "/k")));
    assert_eq!(at("initrd /boot/initrd; echo linux"), None);
    assert_eq!(at("setparams 'linux'"), None);
    assert_eq!(
        at("menuentry 'x' { linux /k ; }"),
        Some(("menuentry 'x' { linux /k", "/k"))
    );
}

#[test]
fn parses_the_menu_tree() {
    let m = GrubMenu::parse(NIXOS_LIKE);
    let titles: Vec<_> = m.items.iter().map(GrubItem::title).collect();
    assert_eq!(
        titles,
        [
            "NixOS 24.05 Installer",
            "NixOS 24.05 Installer (nomodeset)",
            "HiDPI, Quirks and Accessibility",
            "Firmware Setup"
        ]
    );
    let GrubItem::Submenu { items, .. } = &m.items[2] else {
        panic!("not a submenu")
    };
    assert_eq!(items[1].title(), "Serial console=ttyS0,115200n8");
}

#[test]
fn the_nested_serial_entry_is_chosen() {
    let plan = GrubMenu::parse(NIXOS_LIKE)
        .choose(None, "console=ttyS0,115200n8")
        .unwrap();
    assert_eq!(plan.edit, None);
    assert_eq!(
        moves(&plan),
        [
            (0, 2, "Firmware Setup"),
            (0, 1, "Serial console=ttyS0,115200n8"),
            (0, 0, "NixOS 24.05 Installer")
        ]
    );
    assert_eq!(
        GrubPlan::keys(&plan.steps[0], false, false),
        b"\x1b[B\x1b[B\r"
    );
}

#[test]
fn without_a_serial_entry_the_default_is_edited() {
    let cfg = NIXOS_LIKE
        .replace(" console=ttyS0,115200n8", "")
        .replace("set timeout=10", "set default=1");
    let plan = GrubMenu::parse(&cfg)
        .choose(None, "console=ttyAMA0,115200n8")
        .unwrap();
    assert_eq!(plan.title, "NixOS 24.05 Installer (nomodeset)");
    assert_eq!(
        plan.steps,
        [GrubStep {
            from: 1,
            to: 1,
            last_title: "Firmware Setup".into()
        }]
    );
    let edit = plan.edit.clone().unwrap();
    assert_eq!(
        edit,
        GrubEdit {
            line: 0,
            append: "console=ttyAMA0,115200n8".into()
        }
    );
    assert_eq!(GrubPlan::keys(&plan.steps[0], true, true), b"e");
}

#[test]
fn a_pattern_picks_by_title_and_lists_the_entries_when_nothing_matches() {
    let re = Regex::new("1024x768").unwrap();
    let plan = GrubMenu::parse(NIXOS_LIKE)
        .choose(Some(&re), "console=ttyS0,115200n8")
        .unwrap();
    assert_eq!(
        plan.steps.iter().map(|s| s.to).collect::<Vec<_>>(),
        [2, 0, 0]
    );
    assert!(plan.edit.is_none() || plan.edit.as_ref().is_some_and(|e| e.line == 0));
    let re = Regex::new("memtest").unwrap();
    let e = GrubMenu::parse(NIXOS_LIKE)
        .choose(Some(&re), "console=ttyS0")
        .unwrap_err()
        .to_string();
    assert!(e.contains("HiDPI, Quirks and Accessibility > Serial console=ttyS0,115200n8 > NixOS 24.05 Installer"), "{e}");
}
