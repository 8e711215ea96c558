//! GRUB's grub.cfg and isolinux.cfg as ISOs may have them: any text never
//! panics the parsers, and a generated configuration gives back the menu it
//! was generated from.

use super::grub::{GrubItem, GrubMenu, GrubPlan};
use super::isolinux::{IsolinuxMenu, MenuEntry};
use crate::console::proptests::cases;
use proptest::prelude::*;
use regex::Regex;

const CONSOLE: &str = "console=ttyS0,115200n8";

/// The items a plan's steps lead to, level by level: each step's target
/// exists, every step but the last enters a submenu, and the last is an
/// entry with the plan's title.
fn follow(menu: &GrubMenu, plan: &GrubPlan) -> Result<(), TestCaseError> {
    let mut level = &menu.items;
    prop_assert!(!plan.steps.is_empty());
    prop_assert_eq!(plan.steps[0].from, menu.default);
    for (depth, step) in plan.steps.iter().enumerate() {
        prop_assert!(
            step.to < level.len(),
            "step {depth} to {} of {}",
            step.to,
            level.len()
        );
        prop_assert_eq!(
            Some(step.last_title.as_str()),
            level.last().map(GrubItem::title)
        );
        match &level[step.to] {
            GrubItem::Submenu { items, .. } if depth + 1 < plan.steps.len() => level = items,
            GrubItem::Entry { title, body } if depth + 1 == plan.steps.len() => {
                prop_assert_eq!(title, &plan.title);
                if let Some(edit) = &plan.edit {
                    prop_assert!(
                        body[edit.line].starts_with("linux"),
                        "{:?} in {body:?}",
                        edit
                    );
                }
            }
            other => prop_assert!(false, "step {depth} ends on {other:?}"),
        }
    }
    Ok(())
}

/// GRUB's words, braces and quotes, and some of anything: text shaped
/// enough like grub.cfg to reach the parser's corners.
fn grub_like_text() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("menuentry ".to_owned()),
        Just("submenu ".to_owned()),
        Just("hiddenentry ".to_owned()),
        Just("{".to_owned()),
        Just("}".to_owned()),
        Just("'".to_owned()),
        Just("\"".to_owned()),
        Just("\n".to_owned()),
        Just(" ".to_owned()),
        Just("set default=".to_owned()),
        Just("--hotkey ".to_owned()),
        Just("--hotkey=".to_owned()),
        Just("linux /boot/bzImage console=ttyS0 ".to_owned()),
        Just("terminal_output console".to_owned()),
        Just(";".to_owned()),
        "[0-9]{1,3}",
        any::<char>().prop_map(String::from),
    ];
    proptest::collection::vec(token, 0..80).prop_map(|t| t.concat())
}

fn isolinux_like_text() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("LABEL ".to_owned()),
        Just("label\t".to_owned()),
        Just("MENU ".to_owned()),
        Just("LABEL".to_owned()),
        Just("APPEND ".to_owned()),
        Just("DEFAULT ".to_owned()),
        Just("console=ttyS0 ".to_owned()),
        Just("\n".to_owned()),
        Just(" ".to_owned()),
        "[a-z0-9]{1,5}",
        any::<char>().prop_map(String::from),
    ];
    proptest::collection::vec(token, 0..60).prop_map(|t| t.concat())
}

/// A title as grub.cfg writes it, and the title GRUB shows.
#[derive(Debug, Clone)]
struct Title {
    written: String,
    shown: String,
}

/// A title of one to three adjacent parts (one word to GRUB): single-quoted,
/// double-quoted with backslash escapes, or plain with escaped characters.
fn title() -> impl Strategy<Value = Title> {
    let printable = || prop_oneof![8 => proptest::char::range(' ', '~'), 1 => any::<char>().prop_filter("printable", |c| !c.is_control())];
    let single = proptest::collection::vec(printable().prop_filter("not '", |&c| c != '\''), 0..12)
        .prop_map(|t| Title {
            written: format!("'{}'", String::from_iter(&t)),
            shown: String::from_iter(t),
        });
    // In double quotes `\$`, `\"` and `\\` are escapes; a backslash before
    // anything else is itself.
    let double_char = prop_oneof![
        6 => printable().prop_filter("plain", |c| !matches!(c, '"' | '\\' | '$')).prop_map(|c| (c.to_string(), c.to_string())),
        1 => prop::sample::select(&['"', '\\', '$'][..]).prop_map(|c| (format!("\\{c}"), c.to_string())),
        1 => Just(("\\t".to_owned(), "\\t".to_owned())),
    ];
    let double = proptest::collection::vec(double_char, 0..12).prop_map(|parts| {
        let (written, shown): (Vec<String>, Vec<String>) = parts.into_iter().unzip();
        Title {
            written: format!("\"{}\"", written.concat()),
            shown: shown.concat(),
        }
    });
    // Outside quotes a backslash keeps any character, a space or a quote too.
    let plain_char = prop_oneof![
        6 => "[A-Za-z0-9._,=()@+-]".prop_map(|c| (c.clone(), c)),
        1 => printable().prop_map(|c| (format!("\\{c}"), c.to_string())),
    ];
    let plain = proptest::collection::vec(plain_char, 1..10).prop_map(|parts| {
        let (written, shown): (Vec<String>, Vec<String>) = parts.into_iter().unzip();
        Title {
            written: written.concat(),
            shown: shown.concat(),
        }
    });
    let part = prop_oneof![single, double, plain];
    proptest::collection::vec(part, 1..4).prop_map(|parts| Title {
        written: parts.iter().map(|p| p.written.as_str()).collect(),
        shown: parts.iter().map(|p| p.shown.as_str()).collect(),
    })
}

/// Options after the title that do not change the menu.
fn options() -> impl Strategy<Value = String> {
    let option = prop::sample::select(
        &[
            "--class installer",
            "--class hidpi",
            "--id nixos",
            "--unrestricted",
            "--users ''",
        ][..],
    );
    proptest::collection::vec(option, 0..3)
        .prop_map(|o| o.iter().map(|o| format!(" {o}")).collect())
}

/// The lines of an entry's body: none opens a brace it does not close.
fn body() -> impl Strategy<Value = Vec<String>> {
    let line = prop::sample::select(
        &[
            "linux /boot/bzImage ${isoboot} init=/nix/store/x/init loglevel=4",
            "linux /boot/bzImage init=/x console=ttyS0,115200n8",
            "linuxefi /boot/vmlinuz console=ttyS0",
            "initrd /boot/initrd",
            "terminal_output console",
            "terminal_output gfxterm console",
            "terminal_output gfxterm",
            "set textmode=true",
            "if [ \"$textmode\" == \"false\" ]; then",
            "fi",
            "# Fallback to UEFI console for boot",
            "echo \"Loading ${kernel}\"",
            "fwsetup",
            "",
        ][..],
    );
    proptest::collection::vec(line.prop_map(str::to_owned), 0..5)
}

/// Top-level or submenu lines that are no menu item.
fn junk() -> impl Strategy<Value = Vec<String>> {
    let line = prop::sample::select(
        &[
            "set timeout=10",
            "serial --unit=0 --speed=115200",
            "terminal_output console serial",
            "if [ ${iso_path} ] ; then",
            "  set isoboot=\"findiso=${iso_path}\"",
            "fi",
            "# menuentry 'commented out'",
            "echo \"Press 't' to use the text boot menu\"",
            "",
        ][..],
    );
    proptest::collection::vec(line.prop_map(str::to_owned), 0..3)
}

/// A menu item as generated: what to write, and what GRUB counts.
#[derive(Debug, Clone)]
enum Node {
    Entry {
        title: Title,
        options: String,
        hidden: bool,
        hotkey: Option<(char, u8)>,
        body: Vec<String>,
        one_line: bool,
    },
    Submenu {
        title: Title,
        options: String,
        items: Vec<(Vec<String>, Node)>,
    },
    /// `submenu "" {return}`.
    Separator,
}

fn entry() -> impl Strategy<Value = Node> {
    let hotkey = proptest::option::of(("[a-z0-9]".prop_map(|k| k.chars().next().unwrap()), 0u8..3));
    (
        title(),
        options(),
        any::<bool>(),
        hotkey,
        body(),
        any::<bool>(),
    )
        .prop_map(|(title, options, hidden, hotkey, body, one_line)| {
            // One-line bodies are `;`-separated commands: none empty, none
            // holding a `;`, no comment (it would run to the end of the line).
            let command = |l: &String| !l.is_empty() && !l.starts_with('#') && !l.contains(';');
            let body = if one_line {
                body.into_iter().filter(command).collect()
            } else {
                body
            };
            Node::Entry {
                title,
                options,
                hidden,
                hotkey,
                body,
                one_line,
            }
        })
}

fn node() -> impl Strategy<Value = Node> {
    let leaf = prop_oneof![4 => entry(), 1 => Just(Node::Separator)];
    leaf.prop_recursive(3, 24, 5, |inner| {
        (
            title(),
            options(),
            proptest::collection::vec((junk(), inner), 0..5),
        )
            .prop_map(|(title, options, items)| Node::Submenu {
                title,
                options,
                items,
            })
    })
}

impl Node {
    fn write(&self, indent: usize, out: &mut Vec<String>) {
        let pad = " ".repeat(indent);
        match self {
            Node::Entry {
                title,
                options,
                hidden,
                hotkey,
                body,
                one_line,
            } => {
                let keyword = if *hidden { "hiddenentry" } else { "menuentry" };
                let hotkey = match hotkey {
                    None => String::new(),
                    Some((k, 0)) => format!(" --hotkey '{k}'"),
                    Some((k, 1)) => format!(" --hotkey={k}"),
                    Some((k, _)) => format!(" --hotkey \"{k}\""),
                };
                let head = format!("{pad}{keyword} {}{options}{hotkey}", title.written);
                if *one_line {
                    out.push(format!("{head} {{ {} }}", body.join(" ; ")));
                } else {
                    out.push(format!("{head} {{"));
                    out.extend(body.iter().map(|l| format!("{pad}  {l}")));
                    out.push(format!("{pad}}}"));
                }
            }
            Node::Submenu {
                title,
                options,
                items,
            } => {
                out.push(format!("{pad}submenu {}{options} {{", title.written));
                for (junk, item) in items {
                    out.extend(junk.iter().map(|l| format!("{pad}  {l}")));
                    item.write(indent + 2, out);
                }
                out.push(format!("{pad}}}"));
            }
            Node::Separator => out.push(format!("{pad}submenu \"\" {{return}}")),
        }
    }

    /// What GRUB draws and counts for this node: hidden entries are neither.
    fn shown(&self) -> Option<GrubItem> {
        match self {
            Node::Entry { hidden: true, .. } => None,
            Node::Entry { title, body, .. } => Some(GrubItem::Entry {
                title: title.shown.clone(),
                body: body.clone(),
            }),
            Node::Submenu { title, items, .. } => Some(GrubItem::Submenu {
                title: title.shown.clone(),
                items: items.iter().filter_map(|(_, n)| n.shown()).collect(),
            }),
            Node::Separator => Some(GrubItem::Submenu {
                title: String::new(),
                items: Vec::new(),
            }),
        }
    }

    /// The first hotkey, in file order, of an entry that moves GRUB to the text console.
    fn text_mode_key(&self) -> Option<char> {
        match self {
            Node::Entry {
                hotkey: Some((k, _)),
                body,
                ..
            } => body
                .iter()
                .any(|l| {
                    l.starts_with("terminal_output") && l.split_whitespace().any(|w| w == "console")
                })
                .then_some(*k),
            Node::Submenu { items, .. } => items.iter().find_map(|(_, n)| n.text_mode_key()),
            _ => None,
        }
    }
}

/// A whole grub.cfg: items among junk, and maybe a `set default=N`.
#[derive(Debug, Clone)]
struct GrubCfg {
    items: Vec<(Vec<String>, Node)>,
    default: Option<(usize, u8)>,
}

fn grub_cfg() -> impl Strategy<Value = GrubCfg> {
    let items = proptest::collection::vec((junk(), node()), 0..6);
    let default = proptest::option::of((0usize..8, 0u8..3));
    (items, default).prop_map(|(items, default)| GrubCfg { items, default })
}

impl GrubCfg {
    fn text(&self) -> String {
        let mut out = Vec::new();
        match self.default {
            Some((n, 0)) => out.push(format!("set default={n}")),
            Some((n, 1)) => out.push(format!("set default=\"{n}\"")),
            Some((n, _)) => out.push(format!("set default='{n}'")),
            None => {}
        }
        for (junk, item) in &self.items {
            out.extend(junk.iter().cloned());
            item.write(0, &mut out);
        }
        out.join("\n") + "\n"
    }

    fn menu(&self) -> GrubMenu {
        let items: Vec<GrubItem> = self.items.iter().filter_map(|(_, n)| n.shown()).collect();
        let default = self.default.map_or(0, |(n, _)| n);
        GrubMenu {
            default: if default < items.len() { default } else { 0 },
            items,
            text_mode_key: self.items.iter().find_map(|(_, n)| n.text_mode_key()),
        }
    }
}

/// An isolinux.cfg as generated: its text and the menu it declares.
fn isolinux_cfg() -> impl Strategy<Value = (String, IsolinuxMenu)> {
    let keyword = |k: &'static str| {
        prop_oneof![
            Just(k.to_owned()),
            Just(k.to_ascii_lowercase()),
            Just(k[..1].to_owned() + &k[1..].to_ascii_lowercase())
        ]
    };
    let space = prop::sample::select(&[" ", "  ", "\t", " \t"][..]);
    let indent = prop::sample::select(&["", "  ", "\t"][..]);
    let junk = prop::sample::select(
        &[
            "TIMEOUT 100",
            "UI vesamenu.c32",
            "SERIAL 0 115200",
            "MENU TITLE NixOS",
            "# LABEL commented",
            "PROMPT 0",
            "MENU SEPARATOR",
            "",
        ][..],
    );
    let entry = (
        "[a-z0-9-]{0,10}",
        proptest::option::of("[ -~]{0,30}"),
        proptest::option::of(prop::sample::select(
            &[
                "init=/x loglevel=4",
                "init=/x console=ttyS0,115200n8",
                "console=tty0 quiet",
                "",
            ][..],
        )),
        (
            keyword("LABEL"),
            keyword("MENU"),
            keyword("LABEL"),
            keyword("APPEND"),
            keyword("LINUX"),
        ),
        (space.clone(), space, indent.clone(), indent),
        junk.clone(),
    );
    let default = proptest::option::of("[a-z0-9-]{1,10}");
    (proptest::collection::vec(entry, 0..6), default, junk).prop_map(|(entries, default, junk)| {
        let mut lines = vec![junk.to_owned()];
        let mut menu = IsolinuxMenu {
            default: None,
            entries: Vec::new(),
        };
        if let Some(d) = default {
            lines.push(format!("DEFAULT {d}"));
            menu.default = Some(d);
        }
        for (
            label,
            menu_label,
            append,
            (k_label, k_menu, k_menu_label, k_append, k_linux),
            (sp1, sp2, in1, in2),
            junk,
        ) in entries
        {
            lines.push(format!("{in1}{k_label}{sp1}{label}"));
            lines.push(format!("{in2}{k_linux} /boot/bzImage"));
            if let Some(text) = &menu_label {
                lines.push(format!("{in2}{k_menu}{sp2}{k_menu_label}{sp1}{text}"));
            }
            if let Some(args) = append {
                lines.push(format!("{in2}{k_append}{sp2}{args}"));
            }
            lines.push(junk.to_owned());
            menu.entries.push(MenuEntry {
                label: label.trim().to_owned(),
                menu_label: menu_label.map(|t| t.trim().to_owned()).unwrap_or_default(),
                append: append.unwrap_or_default().to_owned(),
            });
        }
        (lines.join("\n"), menu)
    })
}

proptest! {
    #![proptest_config(cases(256))]

    /// Any text, or text shaped like grub.cfg: a menu, never a panic, and
    /// every plan it gives leads through the menu to the entry it names.
    #[test]
    fn grub_any_text(text in prop_oneof![any::<String>(), grub_like_text()], pattern in "[a-z ]{0,3}") {
        let menu = GrubMenu::parse(&text);
        prop_assert!(menu.default == 0 || menu.default < menu.items.len());
        if let Ok(plan) = menu.choose(None, CONSOLE) {
            follow(&menu, &plan)?;
        }
        if let Ok(plan) = menu.choose(Some(&Regex::new(&regex::escape(&pattern)).unwrap()), CONSOLE) {
            follow(&menu, &plan)?;
        }
    }

    /// A generated grub.cfg (nested submenus, separators, hidden entries,
    /// quoted titles, one-line entries) parses to the menu it was made from.
    #[test]
    fn grub_generated(cfg in grub_cfg()) {
        let text = cfg.text();
        let menu = GrubMenu::parse(&text);
        prop_assert_eq!(&menu, &cfg.menu(), "{}", text);
        if let Ok(plan) = menu.choose(None, CONSOLE) {
            follow(&menu, &plan)?;
        }
    }

    /// Any text, or text shaped like isolinux.cfg: a menu, never a panic,
    /// and a choice names one of its entries.
    #[test]
    fn isolinux_any_text(text in prop_oneof![any::<String>(), isolinux_like_text()]) {
        let menu = IsolinuxMenu::parse(&text);
        if let Ok(choice) = menu.choose(None, CONSOLE) {
            prop_assert!(menu.entries.iter().any(|e| e.label == choice.label));
        }
    }

    /// A generated isolinux.cfg (keywords in any case, tabs, indentation,
    /// directives in between) parses to the menu it was made from.
    #[test]
    fn isolinux_generated((text, expected) in isolinux_cfg()) {
        prop_assert_eq!(IsolinuxMenu::parse(&text), expected, "{}", text);
    }
}
