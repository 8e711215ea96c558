//! The boot sequence as an explicit state machine: power-on → boot menu → kernel →
//! userspace → login prompt → shell. Each transition waits for its own evidence
//! with its own timeout, and every failure names the last phase reached.

use super::grub::GrubPlan;
use super::login::{Credentials, LoggedIn, LoginError};
use super::menu::{BootChoice, DrawnChoice};
use super::screen::Screen;
use super::serial::{ConsoleError, SerialConsole};
use regex::bytes::Regex;
use std::fmt;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    PowerOn,
    /// A boot menu that draws on the framebuffer only, asked to use the text console.
    TextModeKey,
    BootMenu,
    Kernel,
    Userspace,
    LoginPrompt,
    Shell,
}

impl Phase {
    /// The phase's name in reports and progress lines (`power-on`, `kernel`...).
    pub fn id(self) -> &'static str {
        match self {
            Phase::PowerOn => "power-on",
            Phase::TextModeKey => "text-mode-key",
            Phase::BootMenu => "boot-menu",
            Phase::Kernel => "kernel",
            Phase::Userspace => "userspace",
            Phase::LoginPrompt => "login-prompt",
            Phase::Shell => "shell",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::PowerOn => "power-on (no boot menu yet)",
            Phase::TextModeKey => "boot menu's text-mode key pressed (no menu on serial yet)",
            Phase::BootMenu => "boot menu",
            Phase::Kernel => "kernel and initrd",
            Phase::Userspace => "userspace (init started)",
            Phase::LoginPrompt => "login prompt",
            Phase::Shell => "shell",
        })
    }
}

/// How long each transition may take on KVM; multiplied by the accelerator's
/// time scale, and never past the trial's deadline.
#[derive(Debug, Clone, Copy)]
pub struct BootTimeouts {
    pub menu: Duration,
    pub login: Duration,
    pub shell: Duration,
    /// How long the serial console may stay silent, once GRUB runs, before the
    /// harness presses GRUB's text-mode key. Not scaled: it races GRUB's own
    /// countdown, which runs in real time (nixpkgs: 10 s) even under TCG.
    pub menu_silence: Duration,
    /// How long a menu known only from the screen must stay still to count as
    /// drawn (shorter than GRUB's 1 s countdown ticks).
    pub menu_settle: Duration,
}

impl Default for BootTimeouts {
    fn default() -> Self {
        BootTimeouts {
            menu: Duration::from_secs(20),
            login: Duration::from_secs(60),
            shell: Duration::from_secs(20),
            menu_silence: Duration::from_secs(5),
            menu_settle: Duration::from_millis(700),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BootError {
    #[error("{source}; last phase reached: {reached}")]
    Console {
        reached: Phase,
        source: ConsoleError,
    },
    #[error("login prompt on the serial console, no autologin: `{login_line}` asked for a password when the harness typed")]
    NoAutologin {
        login_line: String,
        evidence: Vec<String>,
    },
    /// Something logged in, but the line that starts isotest's /bin/sh got no
    /// answer: the login shell could not run it, or nothing reads the console.
    #[error(
        "the serial console logged in, but isotest could not start /bin/sh from the login shell: \
         no answer to `/bin/sh -c ...` typed {tries} time(s) in {waited} s (the console's last lines show what the login shell said)"
    )]
    NoPosixShell {
        tries: u32,
        waited: u64,
        lines: Vec<String>,
    },
    /// The scenario's console credentials did not log in.
    #[error("console login as `{user}` failed: {answer}")]
    LoginFailed {
        user: String,
        answer: String,
        login_line: String,
        evidence: Vec<String>,
    },
}

impl BootError {
    pub fn phase_reached(&self) -> Phase {
        match self {
            BootError::Console { reached, .. } => *reached,
            BootError::NoAutologin { .. }
            | BootError::NoPosixShell { .. }
            | BootError::LoginFailed { .. } => Phase::LoginPrompt,
        }
    }

    /// Whether the serial console closed under the boot: QEMU exited.
    pub fn console_closed(&self) -> bool {
        matches!(
            self,
            BootError::Console {
                source: super::serial::ConsoleError::Closed { .. },
                ..
            }
        )
    }

    /// Console lines that show what went wrong.
    pub fn evidence(&self) -> &[String] {
        match self {
            BootError::Console { source, .. } => source.lines(),
            BootError::NoAutologin { evidence, .. } => evidence,
            BootError::NoPosixShell { lines, .. } => lines,
            BootError::LoginFailed { evidence, .. } => evidence,
        }
    }
}

/// What the boot showed on the way to the shell.
#[derive(Debug, Clone)]
pub struct BootOutcome {
    /// When each phase was reached, from power-on.
    pub phases: Vec<(Phase, Duration)>,
    /// The getty line, e.g. `rescue login: root (automatic login)`.
    pub login_line: String,
    /// The user getty logged in by itself, if its line says so.
    pub autologin_user: Option<String>,
    /// Console lines around the login prompt.
    pub login_evidence: Vec<String>,
    /// Who logged in (isotest with the scenario's credentials, or getty) and
    /// into which login shell.
    pub logged_in: LoggedIn,
}

fn re(pattern: &str) -> Regex {
    Regex::new(pattern).expect("static pattern")
}

struct Patterns {
    menu_ready: Regex,
    grub_ready: Regex,
    grub_text_hint: Regex,
    grub_starting: Regex,
    grub_editor: Regex,
    grub_booting: Regex,
    boot_prompt: Regex,
    kernel: Regex,
    userspace: Regex,
    login: Regex,
    panic: Regex,
    emergency: Regex,
    stage_1_failed: Regex,
    no_kernel: Regex,
    grub_rescue: Regex,
    uefi_gave_up: Regex,
}

fn patterns() -> &'static Patterns {
    static P: OnceLock<Patterns> = OnceLock::new();
    P.get_or_init(|| Patterns {
        // vesamenu draws this last; keys sent earlier are lost or boot the default.
        menu_ready: re(r"Press \[Tab\] to edit options|(?m)^boot: $"),
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
        grub_starting: re(r"BdsDxe: starting Boot|Booting from (DVD/CD|Hard Disk)|Welcome to GRUB!"),
        grub_editor: re(r"Ctrl-x\s+or\s+F10\s+to\s+boot"),
        // What GRUB prints when it runs an entry (a submenu draws a menu instead).
        grub_booting: re(r"Booting `"),
        boot_prompt: re(r"boot: "),
        // Debian's initramfs, NixOS's scripted stage 1 (stage-1-init.sh) or
        // systemd in its initrd, whose greeting names the initrd's release
        // ("<PRETTY_NAME> (Initrd)", nixos/modules/misc/version.nix), or the
        // kernel itself at a verbose loglevel.
        kernel: re(r"Loading, please wait|<<< NixOS Stage 1 >>>|Welcome to [^\n]*\(Initrd\)!|Run /init as init process|Linux version \d"),
        // systemd's greeting (whole: the initrd's, read first as the kernel's
        // phase, ends in "(Initrd)!"), NixOS's stage 2 (stage-2-init.sh).
        userspace: re(r"Welcome to [^\n]*!|<<< NixOS Stage 2 >>>|systemd\[1\]: "),
        login: re(r"(?m)^[^\n]*login: "),
        panic: re(r"Kernel panic - not syncing[^\n]*"),
        // systemd-sulogin-shell's greeting when emergency.target is reached (a
        // required mount or unit failed), "You are in %s mode" in Debian 12's
        // binary; printed before sulogin asks for anything.
        emergency: re(r"You are in emergency mode[^\n]*\n"),
        // NixOS's scripted stage 1 when it cannot mount the root file system
        // or start stage 2: fail() prints this and waits for a key
        // (nixos/modules/system/boot/stage-1-init.sh).
        stage_1_failed: re(r"An error occurred in stage 1 of the boot process[^\n]*\n"),
        // Whole lines, so that the evidence has their end. isolinux 6.04
        // (Debian 12; older ones: "Could not find kernel image"),
        // then back at its `boot:` prompt; GRUB after a `linux` that failed (its
        // `boot` has nothing to start).
        no_kernel: re(
            r"Loading \S+\.\.\. failed: [^\n]*\n|Could not find kernel image: [^\n]*\n|error: you need to load the kernel first",
        ),
        // GRUB without its normal mode (normal.mod or its prefix not found).
        // Not the space after it: SeaBIOS's mirror holds back the last cell
        // it was given until the next one comes (`sercon_lazy_putchar`,
        // seabios src/sercon.c), and a prompt waits for a key.
        grub_rescue: re(r"grub rescue>"),
        // edk2's boot manager (OVMF, AAVMF) after every boot option failed: it
        // starts what it has left, its own EFI shell (Debian's builds), or says
        // it found nothing (builds without a shell), or tries network boot
        // (when the NIC's boot options were kept). MdeModulePkg/Universal/BdsDxe
        // (BdsEntry.c: "BdsDxe: loading/starting/failed to load Boot####") and
        // OvmfPkg's PlatformBootManagerLib; measured with Debian's ovmf 2022.11.
        uefi_gave_up: re(
            r#"BdsDxe: (?:loading|starting) Boot[0-9A-Fa-f]{4} "EFI Internal Shell"|BdsDxe: No bootable option or device was found|>>Start (?:PXE|HTTP Boot) over IPv[46]"#,
        ),
    })
}

/// How a boot that found nothing to boot is named, by SeaBIOS's log or by
/// edk2's lines on the console.
pub const NO_BOOTABLE_DEVICE: &str =
    "no bootable device: the firmware found nothing to boot on the ISO";

/// The same end, when a boot option of the ISO did start (its boot loader)
/// and came back to the firmware.
const LOADER_RETURNED: &str =
    "the ISO's boot loader returned to the firmware, which found nothing else to boot";

/// What ends a boot at once, whatever phase it is in: each has its own words on
/// the console, so the trial names the cause instead of waiting out a timeout.
fn fatal_signs(console: &mut SerialConsole) {
    let p = patterns();
    console.add_fatal("kernel panic", p.panic.clone());
    console.add_fatal(
        "emergency mode: systemd could not reach its default target",
        p.emergency.clone(),
    );
    console.add_fatal(
        "NixOS stage 1 failed: it could not mount the root file system or start stage 2",
        p.stage_1_failed.clone(),
    );
    console.add_fatal("the boot loader found no kernel", p.no_kernel.clone());
    console.add_fatal(
        "GRUB rescue prompt: GRUB could not load its normal mode",
        p.grub_rescue.clone(),
    );
    console.add_fatal(NO_BOOTABLE_DEVICE, p.uefi_gave_up.clone());
}

/// The deadline of one wait: its own budget, cut to the trial's deadline.
fn budget(own: Duration, scale: u32, deadline: Instant) -> Duration {
    (own * scale).min(deadline.saturating_duration_since(Instant::now()))
}

/// Told of each phase as the boot reaches it (e.g. a progress display), so that
/// nobody else needs to watch the console.
pub type PhaseObserver<'a> = &'a (dyn Fn(Phase) + Sync);

/// The phases reached so far, with when; each one recorded is told to the observer.
struct Timeline<'a> {
    phases: Vec<(Phase, Duration)>,
    observer: PhaseObserver<'a>,
}

impl Timeline<'_> {
    fn push(&mut self, reached: (Phase, Duration)) {
        self.phases.push(reached);
        (self.observer)(reached.0);
    }
}

impl std::ops::Deref for Timeline<'_> {
    type Target = Vec<(Phase, Duration)>;
    fn deref(&self) -> &Self::Target {
        &self.phases
    }
}

/// Drives a boot from power-on through the boot menu (isolinux or GRUB) to a
/// shell on the serial console.
/// `scale` stretches every wait (TCG); `deadline` ends the whole trial;
/// `on_phase` hears of every phase as it is reached.
pub fn boot_to_shell(
    console: &mut SerialConsole,
    choice: &BootChoice,
    credentials: Option<&Credentials>,
    timeouts: BootTimeouts,
    scale: u32,
    deadline: Instant,
    on_phase: PhaseObserver<'_>,
) -> Result<BootOutcome, BootError> {
    drive_boot(
        console,
        choice,
        credentials,
        timeouts,
        scale,
        deadline,
        on_phase,
    )
    .map_err(|e| with_what_led_there(console, e))
}

/// How many of systemd's failure lines a boot that died shows.
const FAILURE_LINES: usize = 10;

/// A boot that died of a sign on the console (emergency mode, say) is explained
/// by what failed before it, which may be far above the sign: systemd's
/// `[FAILED]`, `[DEPEND]` and `[ TIME ]` status lines, put before the lines
/// around the sign.
fn with_what_led_there(console: &SerialConsole, e: BootError) -> BootError {
    let BootError::Console {
        reached,
        source: ConsoleError::Fatal { reason, context },
    } = e
    else {
        return e;
    };
    let text = console.text_between(0, usize::MAX);
    if reason == NO_BOOTABLE_DEVICE {
        let (reason, context) = uefi_boot_lines(&text, context);
        return BootError::Console {
            reached,
            source: ConsoleError::Fatal { reason, context },
        };
    }
    let failures: Vec<String> = failure_lines(&text)
        .into_iter()
        .filter(|l| !context.contains(l))
        .collect();
    let context = failures[failures.len().saturating_sub(FAILURE_LINES)..]
        .iter()
        .cloned()
        .chain(context)
        .collect();
    BootError::Console {
        reached,
        source: ConsoleError::Fatal { reason, context },
    }
}

/// edk2's boot manager gave up: its lines about each boot option (which it
/// failed to load, and why) go before the lines around the end. When one of the
/// ISO's options did start, its boot loader came back: not "nothing to boot".
fn uefi_boot_lines(text: &str, context: Vec<String>) -> (String, Vec<String>) {
    let options: Vec<String> = text
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter_map(|l| l.find("BdsDxe: ").map(|at| l[at..].to_owned()))
        .filter(|l| !context.iter().any(|c| c.contains(l.as_str())))
        .collect();
    let shell = "\"EFI Internal Shell\"";
    let started = options
        .iter()
        .any(|l| l.starts_with("BdsDxe: starting Boot") && !l.contains(shell));
    let reason = if started {
        LOADER_RETURNED
    } else {
        NO_BOOTABLE_DEVICE
    };
    (
        reason.to_owned(),
        options.into_iter().chain(context).collect(),
    )
}

/// systemd's status lines of units that failed, timed out or lost a dependency.
fn failure_lines(text: &str) -> Vec<String> {
    static FAILED: OnceLock<regex::Regex> = OnceLock::new();
    let failed = FAILED.get_or_init(|| {
        regex::Regex::new(r"^\[(FAILED|DEPEND| TIME )\] ").expect("static pattern")
    });
    text.lines()
        .map(str::trim_end)
        .filter(|l| failed.is_match(l))
        .map(str::to_owned)
        .collect()
}

fn drive_boot(
    console: &mut SerialConsole,
    choice: &BootChoice,
    credentials: Option<&Credentials>,
    timeouts: BootTimeouts,
    scale: u32,
    deadline: Instant,
    on_phase: PhaseObserver<'_>,
) -> Result<BootOutcome, BootError> {
    let p = patterns();
    let started = Instant::now();
    let mut phases = Timeline {
        phases: Vec::new(),
        observer: on_phase,
    };
    phases.push((Phase::PowerOn, Duration::ZERO));
    fatal_signs(console);
    let reached =
        |phases: &Vec<(Phase, Duration)>| phases.last().map(|(p, _)| *p).unwrap_or(Phase::PowerOn);
    let fail = |phases: &Vec<(Phase, Duration)>| {
        let reached = reached(phases);
        move |source| BootError::Console { reached, source }
    };

    let menu_wait = || budget(timeouts.menu, scale, deadline);
    match choice {
        // isolinux: escape to the `boot:` prompt and type the chosen entry, which
        // does not wait out the menu's timeout.
        BootChoice::Isolinux(choice) => {
            console
                .expect(&[&p.menu_ready], menu_wait(), "the isolinux boot menu")
                .map_err(fail(&phases))?;
            phases.push((Phase::BootMenu, started.elapsed()));
            console.send(b"\x1b").map_err(fail(&phases))?;
            console
                .expect(
                    &[&p.boot_prompt],
                    menu_wait(),
                    "the isolinux `boot:` prompt",
                )
                .map_err(fail(&phases))?;
            console
                .send(format!("{}\r", choice.command_line()).as_bytes())
                .map_err(fail(&phases))?;
        }
        // GRUB: get the menu onto serial, then level by level wait until it is
        // drawn (its hint, then its last item), move to the item and pick it; the
        // first key stops the timeout.
        BootChoice::Grub(plan) => {
            let menu_deadline = Instant::now() + menu_wait();
            let pressed = grub_menu_on_serial(
                console,
                plan.text_mode_key,
                menu_deadline,
                timeouts.menu_silence,
            );
            grub_menu_reached(pressed, started, &mut phases).map_err(fail(&phases))?;
            for (i, step) in plan.steps.iter().enumerate() {
                if i > 0 {
                    console
                        .expect(&[&p.grub_ready], menu_wait(), "the GRUB boot menu")
                        .map_err(fail(&phases))?;
                }
                let last_item = re(&regex::escape(
                    &step.last_title.chars().take(50).collect::<String>(),
                ));
                let what = format!("GRUB menu item `{}`", step.last_title);
                console
                    .expect(&[&last_item], menu_wait(), &what)
                    .map_err(fail(&phases))?;
                let last = i + 1 == plan.steps.len();
                console
                    .send(&GrubPlan::keys(step, last, plan.edit.is_some()))
                    .map_err(fail(&phases))?;
            }
            if let Some(edit) = &plan.edit {
                edit_in_editor(console, &edit.append, menu_wait(), timeouts.menu_settle)
                    .map_err(fail(&phases))?;
            }
        }
        // GRUB known only from what it draws: the same way onto serial, then
        // level by level read the menu off the screen.
        BootChoice::GrubDrawn(choice) => {
            let menu_deadline = Instant::now() + menu_wait();
            let pressed = grub_menu_on_serial(
                console,
                choice.text_mode_key,
                menu_deadline,
                timeouts.menu_silence,
            );
            grub_menu_reached(pressed, started, &mut phases).map_err(fail(&phases))?;
            let seen = drive_drawn_grub(console, choice, menu_wait(), timeouts.menu_settle)
                .map_err(fail(&phases))?;
            if let Some(phase) = seen {
                phases.push((phase, started.elapsed()));
            }
        }
    }

    // Kernel, userspace, login prompt: whichever evidence comes first moves the
    // phase on; not every system prints every milestone.
    let milestones = [
        (Phase::Kernel, &p.kernel),
        (Phase::Userspace, &p.userspace),
        (Phase::LoginPrompt, &p.login),
    ];
    let login = loop {
        let pending: Vec<_> = milestones
            .iter()
            .filter(|(phase, _)| *phase > reached(&phases))
            .collect();
        let regexes: Vec<&Regex> = pending.iter().map(|(_, r)| *r).collect();
        let m = console
            .expect(
                &regexes,
                budget(timeouts.login, scale, deadline),
                "a login prompt on the serial console",
            )
            .map_err(fail(&phases))?;
        let phase = pending[m.index].0;
        phases.push((phase, started.elapsed()));
        if phase == Phase::LoginPrompt {
            break m;
        }
    };
    let login_line = format!("{}{}", login.text, login.rest_of_line)
        .trim()
        .to_owned();

    // The shell: a /bin/sh of isotest's own, from whatever logged in (`login`).
    let patience = budget(timeouts.shell, scale, deadline);
    let logged_in = match super::login::reach_shell(
        console,
        &login.text,
        &login.rest_of_line,
        credentials,
        scale,
        patience,
    ) {
        Ok(logged_in) => logged_in,
        Err(LoginError::PasswordAsked { at }) => {
            return Err(BootError::NoAutologin {
                login_line,
                evidence: console.lines_around(at),
            });
        }
        Err(LoginError::Refused { user, evidence }) => {
            let answer = "login refused the password (`Login incorrect`)".into();
            return Err(BootError::LoginFailed {
                user,
                answer,
                login_line,
                evidence,
            });
        }
        Err(LoginError::NoPasswordPrompt { user, evidence }) => {
            let answer = "login did not ask for a password after the user name".into();
            return Err(BootError::LoginFailed {
                user,
                answer,
                login_line,
                evidence,
            });
        }
        Err(LoginError::NoPosixShell {
            tries,
            waited,
            lines,
        }) => {
            return Err(BootError::NoPosixShell {
                tries,
                waited,
                lines,
            })
        }
        Err(LoginError::Console(e)) => return Err(fail(&phases)(e)),
    };
    phases.push((Phase::Shell, started.elapsed()));
    // getty's line is complete now (it may have come in pieces around the prompt).
    let login_line = console
        .text_between(login.start, console.position())
        .lines()
        .next()
        .unwrap_or("")
        .trim()
        .to_owned();
    let autologin_user = autologin_user_of(&login_line);
    let login_evidence = console.lines_around(login.start);
    Ok(BootOutcome {
        phases: phases.phases,
        login_line,
        autologin_user,
        login_evidence,
        logged_in,
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
fn grub_menu_on_serial(
    console: &mut SerialConsole,
    key: char,
    deadline: Instant,
    silence: Duration,
) -> Result<Option<Instant>, ConsoleError> {
    let p = patterns();
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

/// Records how GRUB's menu reached serial: the text-mode key, if it was
/// pressed, then the menu. (A menu that never came says in its timeout whether
/// the key was pressed.)
fn grub_menu_reached(
    pressed: Result<Option<Instant>, ConsoleError>,
    started: Instant,
    phases: &mut Timeline<'_>,
) -> Result<(), ConsoleError> {
    let pressed = pressed?;
    if let Some(at) = pressed {
        phases.push((Phase::TextModeKey, at.duration_since(started)));
    }
    phases.push((Phase::BootMenu, started.elapsed()));
    Ok(())
}

/// How deep a menu read off the screen may nest before the harness gives up.
const MAX_MENU_DEPTH: usize = 8;

/// How many items of a menu known only from the screen may be opened in GRUB's
/// editor to see what they are, before the harness stops looking.
const MAX_PEEKS: usize = 40;

/// How many levels of a menu known only from the screen have their items
/// opened in the editor; below them only titles are read. nixpkgs keeps its
/// serial entries two levels down (a submenu of "HiDPI, Quirks and
/// Accessibility" or of "Options"), and its items at the third level are the
/// installer's entries again: looking into each of them cost minutes under
/// TCG on aarch64, where no title names `ttyAMA0`.
const PEEK_DEPTH: usize = 2;

/// How often an edit that the screen does not show as typed is typed again.
const EDIT_ATTEMPTS: usize = 3;

/// Keys typed into GRUB's editor at once before waiting for their echo: the
/// firmware's input buffer is small (SeaBIOS's keyboard buffer holds 15 keys),
/// and keys typed faster than GRUB reads them under TCG arrived damaged.
const TYPE_CHUNK: usize = 4;

/// Keys of GRUB's editor, one byte each (an escape sequence can be split or
/// mis-read by the firmware's terminal): Ctrl-E (end of line), Ctrl-N (next
/// line), Ctrl-X (boot), backspace, and Escape (discard, back to the menu).
const CTRL_E: u8 = 0x05;
const CTRL_N: u8 = 0x0e;
const CTRL_X: u8 = 0x18;
const BACKSPACE: u8 = 0x08;
const ESC: u8 = 0x1b;

/// What an item of a menu known only from the screen is, as GRUB's editor
/// shows its commands: an entry (its `linux` command has the console or not),
/// a submenu (items inside, or no command that boots or acts: nixpkgs'
/// submenus start with many lines of menu settings), or another action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ItemKind {
    Entry { has_console: bool },
    Submenu,
    Other,
}

/// Commands that make an item an entry of its own, not a submenu.
const ACTIONS: [&str; 10] = [
    "chainloader",
    "fwsetup",
    "halt",
    "reboot",
    "multiboot",
    "multiboot2",
    "linux16",
    "exit",
    "return",
    "configfile",
];

fn kind_of(lines: &[String], console_arg: &str) -> ItemKind {
    // Each command's first word; one line may hold several (`{ fwsetup; }`).
    let first_words = || {
        lines
            .iter()
            .flat_map(|l| l.split([';', '{', '}']))
            .filter_map(|c| c.split_whitespace().next())
    };
    if first_words().any(|w| w == "menuentry" || w == "submenu") {
        return ItemKind::Submenu;
    }
    if let Some(args) = lines
        .iter()
        .find_map(|l| super::grub::linux_command(l).map(|(_, args)| args))
    {
        return ItemKind::Entry {
            has_console: super::menu::has_console(args, console_arg),
        };
    }
    match first_words().any(|w| ACTIONS.contains(&w)) {
        true => ItemKind::Other,
        false => ItemKind::Submenu,
    }
}

/// Where an Enter on a drawn menu led.
enum Entered {
    /// A submenu, now drawn.
    Menu,
    /// An entry is booting (the phase seen, if the kernel already spoke).
    Booting(Option<Phase>),
}

/// Drives a GRUB menu known only from the screen, as a person would. At each
/// level, once the draw has settled: an item the choice picks (by pattern, or
/// one whose title names the console) gets Enter, and a submenu it opens is
/// read the same way (inside a submenu picked for its title, the highlighted
/// item is taken). Without such an item, every item is opened in GRUB's
/// editor (`e`) to see what it is, then left (Escape): an entry whose `linux`
/// command has the console is booted, a submenu is entered, searched the same
/// way and left again. When nothing is found, the entry that was highlighted
/// at first is edited: the console goes after its `linux` command's
/// arguments. An entry that prints no `Booting` line (GRUB on x86 does not)
/// shows itself by the kernel's first words: that phase is returned.
fn drive_drawn_grub(
    console: &mut SerialConsole,
    choice: &DrawnChoice,
    wait: Duration,
    settle: Duration,
) -> Result<Option<Phase>, ConsoleError> {
    let mut menus = DrawnMenus {
        console,
        choice,
        wait,
        settle,
        peeks: 0,
    };
    let top = menus.read()?;
    let first = top.highlighted;
    if let Some(booting) = menus.search(top, 0)? {
        return Ok(booting);
    }
    tracing::info!(
        "no GRUB menu item names or has the console; editing the entry highlighted at first"
    );
    let top = menus.read()?;
    menus.highlight(top.highlighted, first)?;
    menus.console.send(b"e")?;
    edit_in_editor(menus.console, &choice.console_arg, wait, settle).map(|()| None)
}

/// A GRUB menu known only from the screen, being searched.
struct DrawnMenus<'a> {
    console: &'a mut SerialConsole,
    choice: &'a DrawnChoice,
    wait: Duration,
    settle: Duration,
    /// Items opened in the editor so far.
    peeks: usize,
}

impl DrawnMenus<'_> {
    /// The menu on the screen, once its draw has settled.
    fn read(&mut self) -> Result<super::screen::DrawnMenu, ConsoleError> {
        self.console
            .wait_quiet(self.settle, self.wait, "the GRUB menu to be drawn")?;
        let menu = Screen::from_bytes(&self.console.raw_since(0))
            .grub_menu()
            .ok_or_else(|| ConsoleError::Timeout {
                waiting_for: "a GRUB menu on the screen (none could be read)".into(),
                after: self.wait,
                last_lines: self.console.last_lines(),
            })?;
        tracing::info!(items = ?menu.items, highlighted = menu.highlighted, "GRUB menu read off the screen");
        Ok(menu)
    }

    /// Moves the highlight to item `to`, one item at a time, each time waiting
    /// until the screen shows it moved. The keys are GRUB's own `v` and `^`
    /// (its hint names them): arrow keys are escape sequences, and one split
    /// or dropped on the way (seen with SeaBIOS's serial console under TCG)
    /// leaves an Escape that closes the submenu.
    fn highlight(&mut self, from: usize, to: usize) -> Result<(), ConsoleError> {
        let mut at = from;
        while at != to {
            let (key, next) = if to > at {
                (b'v', at + 1)
            } else {
                (b'^', at - 1)
            };
            self.console.send(&[key])?;
            at = next;
            self.console.wait_raw(
                self.wait,
                &format!("GRUB to highlight item {} of its menu", at + 1),
                |raw| {
                    Screen::from_bytes(raw)
                        .grub_menu()
                        .is_some_and(|m| m.highlighted == at)
                },
            )?;
        }
        Ok(())
    }

    /// Enter on the highlighted item.
    fn enter(&mut self) -> Result<Entered, ConsoleError> {
        let p = patterns();
        self.console.send(b"\r")?;
        let m = self.console.expect(
            &[&p.grub_ready, &p.grub_booting, &p.kernel],
            self.wait,
            "a GRUB submenu or the chosen entry",
        )?;
        Ok(match m.index {
            0 => Entered::Menu,
            1 => Entered::Booting(None),
            _ => Entered::Booting(Some(Phase::Kernel)),
        })
    }

    /// Escape: from the editor or a submenu back to the menu above.
    fn back(&mut self) -> Result<(), ConsoleError> {
        self.console.send(&[ESC])?;
        self.console
            .expect(
                &[&patterns().grub_ready],
                self.wait,
                "the GRUB menu after Escape",
            )
            .map(|_| ())
    }

    /// What the highlighted item is, as GRUB's editor shows it (then left).
    fn peek(&mut self) -> Result<ItemKind, ConsoleError> {
        self.peeks += 1;
        self.console.send(b"e")?;
        let lines = read_editor(self.console, self.wait, self.settle)?;
        self.back()?;
        let kind = kind_of(&lines, &self.choice.console_arg);
        tracing::info!(?kind, first_lines = ?lines.iter().take(4).collect::<Vec<_>>(), "GRUB menu item seen in the editor");
        Ok(kind)
    }

    /// Searches the menu on the screen (`menu`) and, depth first, its
    /// submenus. `Some` when an entry is booting; `None` when nothing was
    /// found, with this level's menu on the screen again.
    fn search(
        &mut self,
        menu: super::screen::DrawnMenu,
        depth: usize,
    ) -> Result<Option<Option<Phase>>, ConsoleError> {
        if let Some(to) = self.choice.pick(&menu.items) {
            self.highlight(menu.highlighted, to)?;
            return self.enter_picked(depth).map(Some);
        }
        if depth >= PEEK_DEPTH {
            return Ok(None);
        }
        // Where the highlight is: it stays on an item seen in the editor, and
        // starts again from the default when a submenu is left.
        let mut highlighted = menu.highlighted;
        for at in 0..menu.items.len() {
            // Separators (`submenu "" {return}`) are blank and lead nowhere.
            if menu.items[at].is_empty() || self.peeks >= MAX_PEEKS {
                continue;
            }
            self.highlight(highlighted, at)?;
            highlighted = at;
            match self.peek()? {
                ItemKind::Entry { has_console: true } if self.choice.pattern.is_none() => {
                    return match self.enter()? {
                        Entered::Booting(phase) => Ok(Some(phase)),
                        Entered::Menu => Err(ConsoleError::Timeout {
                            waiting_for: format!(
                                "GRUB to boot `{}` (it drew a menu instead)",
                                menu.items[at]
                            ),
                            after: self.wait,
                            last_lines: self.console.last_lines(),
                        }),
                    };
                }
                ItemKind::Submenu => match self.enter()? {
                    Entered::Booting(phase) => return Ok(Some(phase)),
                    Entered::Menu => {
                        let inner = self.read()?;
                        // An entry that only changes GRUB's terminal (the
                        // text-mode entry) draws this same menu again.
                        if inner.items == menu.items {
                            highlighted = inner.highlighted;
                            continue;
                        }
                        if let Some(booting) = self.search(inner, depth + 1)? {
                            return Ok(Some(booting));
                        }
                        self.back()?;
                        highlighted = self.read()?.highlighted;
                    }
                },
                _ => {}
            }
        }
        Ok(None)
    }

    /// Enter on an item picked for its title; inside a submenu it opens, the
    /// item that names the console, else the highlighted one, and so on.
    fn enter_picked(&mut self, depth: usize) -> Result<Option<Phase>, ConsoleError> {
        for _ in depth..MAX_MENU_DEPTH {
            if let Entered::Booting(phase) = self.enter()? {
                return Ok(phase);
            }
            let menu = self.read()?;
            let to = self.choice.pick(&menu.items).unwrap_or(menu.highlighted);
            self.highlight(menu.highlighted, to)?;
        }
        Err(ConsoleError::Timeout {
            waiting_for: format!("a GRUB entry within {MAX_MENU_DEPTH} levels of submenus"),
            after: self.wait,
            last_lines: self.console.last_lines(),
        })
    }
}

/// Once GRUB's editor is asked for: its lines, when its draw has settled.
fn read_editor(
    console: &mut SerialConsole,
    wait: Duration,
    settle: Duration,
) -> Result<Vec<String>, ConsoleError> {
    console.expect(&[&patterns().grub_editor], wait, "GRUB's entry editor")?;
    console.wait_quiet(settle, wait, "GRUB's entry editor to be drawn")?;
    Screen::from_bytes(&console.raw_since(0))
        .grub_editor_lines()
        .ok_or_else(|| ConsoleError::Timeout {
            waiting_for: "GRUB's entry editor on the screen (none could be read)".into(),
            after: wait,
            last_lines: console.last_lines(),
        })
}

/// In GRUB's editor (just asked for with `e`): adds `console_arg` to the
/// `linux` command's own arguments and boots (Ctrl-X). The arguments end at a
/// `;`, a `}` or the line's end: on the command's line, the editor goes to the
/// line's end (Ctrl-E), deletes what follows the arguments, and types the
/// console and that text again, a few keys at a time, each time waiting until
/// the screen shows them. The line is read back before booting; an edit the
/// screen does not show is discarded (Escape) and typed again.
fn edit_in_editor(
    console: &mut SerialConsole,
    console_arg: &str,
    wait: Duration,
    settle: Duration,
) -> Result<(), ConsoleError> {
    let mut shown = String::new();
    let mut expected = String::new();
    for attempt in 1..=EDIT_ATTEMPTS {
        if attempt > 1 {
            tracing::warn!(
                expected,
                shown,
                attempt,
                "GRUB's editor does not show the edit as typed; typing it again"
            );
            console.send(&[ESC])?;
            console.expect(
                &[&patterns().grub_ready],
                wait,
                "the GRUB menu after Escape",
            )?;
            console.wait_quiet(settle, wait, "the GRUB menu to be drawn")?;
            console.send(b"e")?;
        }
        let lines = read_editor(console, wait, settle)?;
        let Some((row, args_end, has)) = lines.iter().enumerate().find_map(|(i, l)| {
            super::grub::linux_command(l)
                .map(|(end, args)| (i, end, super::menu::has_console(args, console_arg)))
        }) else {
            return Err(ConsoleError::Garbled {
                waiting_for: "a `linux` command in GRUB's editor".into(),
                detail: "the entry has none".into(),
                lines,
            });
        };
        if has {
            return console.send(&[CTRL_X]);
        }
        let line = lines[row].trim_end();
        let tail = &line[args_end..];
        expected = format!("{} {console_arg}{tail}", &line[..args_end]);
        shown = match end_of_line(console, row, line, wait).and_then(|at_end| {
            // The mark, the blanks the line ended with, and the text after the
            // arguments deleted; the console and that text typed.
            let mut keys = vec![
                BACKSPACE;
                1 + (at_end.chars().count() - 1 - line.chars().count())
                    + tail.chars().count()
            ];
            keys.extend(format!(" {console_arg}{tail}").bytes());
            type_watched(console, &keys, row, &at_end, wait)
        }) {
            Ok(()) => {
                console.wait_quiet(settle, wait, "GRUB's editor to show the edit")?;
                Screen::from_bytes(&console.raw_since(0))
                    .grub_editor_lines()
                    .and_then(|l| l.get(row).cloned())
                    .unwrap_or_default()
            }
            Err(ConsoleError::Timeout { .. }) => editor_line(console, row),
            Err(e) => return Err(e),
        };
        if shown.trim_end() == expected {
            tracing::info!(
                line = expected,
                "GRUB's editor shows the edited `linux` command; booting it"
            );
            return console.send(&[CTRL_X]);
        }
    }
    Err(ConsoleError::Garbled {
        waiting_for: format!("the edited `linux` command `{expected}` in GRUB's editor"),
        detail: format!("typed {EDIT_ATTEMPTS} times, the screen showed `{shown}`"),
        lines: console.last_lines(),
    })
}

/// The mark GRUB's editor gets at the end of the `linux` command's line: where
/// it shows up tells how many blanks (which the screen does not show) the line
/// ends with.
const MARK: u8 = b'#';

/// In GRUB's editor (cursor on its first line): to line `row` (which reads
/// `line`), to its end, and the mark typed there. Returns the line as the
/// screen then shows it: `line`, the blanks it ended with, the mark.
fn end_of_line(
    console: &mut SerialConsole,
    row: usize,
    line: &str,
    wait: Duration,
) -> Result<String, ConsoleError> {
    let mut keys = vec![CTRL_N; row];
    keys.extend([CTRL_E, MARK]);
    console.send(&keys)?;
    let ends_marked = |l: &str| {
        l.trim_end()
            .strip_suffix(MARK as char)
            .is_some_and(|l| l.trim_end() == line)
    };
    console.wait_raw(
        wait,
        "GRUB's editor to echo a key at the end of the `linux` command's line",
        |raw| {
            Screen::from_bytes(raw)
                .grub_editor_lines()
                .and_then(|l| l.get(row).map(|l| ends_marked(l)))
                .unwrap_or(false)
        },
    )?;
    Ok(editor_line(console, row).trim_end().to_owned())
}

/// Line `row` of GRUB's editor as the screen shows it now.
fn editor_line(console: &SerialConsole, row: usize) -> String {
    Screen::from_bytes(&console.raw_since(0))
        .grub_editor_lines()
        .and_then(|l| l.get(row).cloned())
        .unwrap_or_default()
}

/// Types `keys` (backspaces and text) at the end of line `row` of GRUB's
/// editor, which reads `line` before the first key, `TYPE_CHUNK` keys at a
/// time; after each batch it waits until the screen shows the line as the keys
/// leave it (a backspace deletes the last character, any other key is
/// appended), so GRUB never has more than one batch to read.
fn type_watched(
    console: &mut SerialConsole,
    keys: &[u8],
    row: usize,
    line: &str,
    wait: Duration,
) -> Result<(), ConsoleError> {
    let mut model: Vec<char> = line.chars().collect();
    for batch in keys.chunks(TYPE_CHUNK) {
        for &key in batch {
            match key {
                BACKSPACE => drop(model.pop()),
                _ => model.push(key as char),
            }
        }
        console.send(batch)?;
        let want: String = model.iter().collect();
        let want = want.trim_end().to_owned();
        console.wait_raw(wait, &format!("GRUB's editor to echo `{want}`"), |raw| {
            Screen::from_bytes(raw)
                .grub_editor_lines()
                .and_then(|l| l.get(row).map(|l| l.trim_end() == want))
                .unwrap_or(false)
        })?;
    }
    Ok(())
}

/// `rescue login: root (automatic login)` → `root`.
fn autologin_user_of(login_line: &str) -> Option<String> {
    let (before, _) = login_line.split_once(" (automatic login)")?;
    before
        .rsplit(' ')
        .next()
        .filter(|u| !u.is_empty() && !u.ends_with(':'))
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// GRUB's hint as a menu mirrored by SeaBIOS paints it: in pieces, with a
    /// cursor jump inside a word (a soak run of
    /// `menus::grub_unified::x86_64::bios` saw it fall inside "command").
    #[test]
    fn the_grub_hint_is_found_in_a_menu_painted_in_pieces() {
        let p = patterns();
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
    fn login_pattern_takes_the_whole_getty_line() {
        let p = patterns();
        let m = p
            .login
            .find(b"\nrescue login: root (automatic login)\n")
            .unwrap();
        assert_eq!(m.as_bytes(), b"rescue login: ");
    }

    #[test]
    fn fatal_signs_are_recognised_in_what_the_guest_prints() {
        let p = patterns();
        // Debian 12 (systemd 252), as the emergency fixture prints it.
        let emergency = b"[  OK  ] Reached target Local File Systems.\r\nYou are in emergency mode. After logging in, type \"journalctl -xb\"\r\n";
        assert!(p.emergency.is_match(emergency));
        // As the no-kernel fixture's isolinux prints it; not before the line is whole.
        assert!(!p.no_kernel.is_match(b"Loading /boot/bzImage... failed:"));
        assert!(p.no_kernel.is_match(b"boot: boot-serial\r\nLoading /boot/bzImage... failed: No such file or directory\r\nboot: "));
        assert!(p
            .no_kernel
            .is_match(b"Could not find kernel image: /boot/bzImage\r\n"));
        assert!(p.no_kernel.is_match(b"error: file `/boot/bzImage' not found.\r\nerror: you need to load the kernel first.\r\n"));
        // A font GRUB could not load is no reason to stop.
        assert!(!p
            .no_kernel
            .is_match(b"error: file `/EFI/boot/unicode.pf2' not found.\r\n"));
        assert!(p
            .grub_rescue
            .is_match(b"Entering rescue mode...\r\ngrub rescue> "));
        // SeaBIOS 1.16.3's mirror, before a key: the prompt's space held back.
        assert!(p.grub_rescue.is_match(b"not found.\ngrub rescue>"));
        assert!(!p.grub_rescue.is_match(b"grub> "));
    }

    /// NixOS's stage 1 failure, as stage-1-init.sh's fail() prints it.
    #[test]
    fn nixos_stage_1_failure_is_a_fatal_sign() {
        let p = patterns();
        let text = b"Timed out waiting for device /dev/root, trying to mount anyway.\r\n\r\nAn error occurred in stage 1 of the boot process, which must mount the\r\nroot filesystem";
        assert!(p.stage_1_failed.is_match(text));
        assert!(!p
            .stage_1_failed
            .is_match(b"An error occurred in stage 1 of the boot"));
    }

    /// The milestones NixOS prints, in the order they come: the scripted
    /// stage 1 and 2, or systemd's initrd greeting (the kernel's phase, not
    /// userspace, though it starts like systemd's own) and then its own.
    #[test]
    fn nixos_milestones_are_the_same_phases() {
        let p = patterns();
        let milestones = [(Phase::Kernel, &p.kernel), (Phase::Userspace, &p.userspace)];
        let first = |text: &[u8]| {
            milestones
                .iter()
                .filter_map(|(phase, re)| re.find(text).map(|m| (m.start(), *phase)))
                .min_by_key(|(at, _)| *at)
                .map(|(_, phase)| phase)
        };
        assert_eq!(
            first(b"\r\n<<< NixOS Stage 1 >>>\r\n\r\nloading module ahci...\r\n"),
            Some(Phase::Kernel)
        );
        assert_eq!(
            first(b"mounting /dev/root on /iso...\r\n\r\n<<< NixOS Stage 2 >>>\r\n"),
            Some(Phase::Userspace)
        );
        assert_eq!(
            first(b"\r\nWelcome to NixOS 25.05 (Warbler) (Initrd)!\r\n"),
            Some(Phase::Kernel)
        );
        // Not yet whole: neither (a partial greeting is no userspace).
        assert_eq!(first(b"\r\nWelcome to NixOS 25.05 (Warbler) (Ini"), None);
        assert_eq!(
            first(b"\r\nWelcome to NixOS 25.05 (Warbler)!\r\n"),
            Some(Phase::Userspace)
        );
        assert_eq!(
            first(b"Welcome to Debian GNU/Linux 12 (bookworm)!\r\n"),
            Some(Phase::Userspace)
        );
    }

    #[test]
    fn what_led_to_emergency_mode_is_systemds_failure_lines() {
        // From the emergency fixture's console.
        let text = "[  OK  ] Reached target Swaps.\n[ TIME ] Timed out waiting for device ev/disk/by-label/isotest-data.\n\
                    [DEPEND] Dependency failed for mnt-data.mount - /mnt/data.\n[  OK  ] Started emergency.service.\n";
        assert_eq!(
            failure_lines(text),
            [
                "[ TIME ] Timed out waiting for device ev/disk/by-label/isotest-data.",
                "[DEPEND] Dependency failed for mnt-data.mount - /mnt/data."
            ]
        );
    }

    #[test]
    fn autologin_user_from_getty_line() {
        assert_eq!(
            autologin_user_of("rescue login: root (automatic login)").as_deref(),
            Some("root")
        );
        assert_eq!(autologin_user_of("rescue login: "), None);
    }

    use crate::console::menu::DrawnChoice;
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;

    /// A console whose guest side the test plays: it writes `before`, then
    /// waits for one key (up to `key_wait`), records it, and writes `after`.
    fn play_guest(
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

    struct Guest(std::thread::JoinHandle<(Option<u8>, UnixStream)>);

    impl Guest {
        /// The key the guest received, if any.
        fn key(self) -> Option<u8> {
            self.0.join().unwrap().0
        }
    }

    fn split_after<'a>(raw: &'a [u8], marker: &str) -> (&'a [u8], &'a [u8]) {
        let at = raw
            .windows(marker.len())
            .position(|w| w == marker.as_bytes())
            .expect("marker")
            + marker.len();
        raw.split_at(at)
    }

    /// OVMF, nixpkgs' forceTextMode-era layout (fixture grub-gfxterm): only the
    /// hint reaches serial; the text menu follows the key.
    const OVMF_GFXTERM: &[u8] = include_bytes!("testdata/ovmf-grub-gfxterm-t.raw");
    /// AAVMF on `virt` without a display: gfxterm fails, the menu is on serial.
    const AAVMF_GFXTERM: &[u8] = include_bytes!("testdata/aavmf-grub-gfxterm.raw");

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

    /// A guest that plays a script: write, then read exactly so many bytes (the
    /// harness's keys), and so on; it returns what it read.
    fn scripted_guest(
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

    /// SeaBIOS mirroring the grub-unified fixture's menus: "Options", then the
    /// "Serial console=ttyS0,115200n8" submenu, then the kernel.
    const SEABIOS_OPTIONS: &[u8] = include_bytes!("testdata/seabios-grub-options.raw");
    const SEABIOS_SERIAL: &[u8] = include_bytes!("testdata/seabios-grub-serial-submenu.raw");

    #[test]
    fn a_drawn_menu_is_descended_by_the_titles_that_name_the_console() {
        let script = vec![
            (SEABIOS_OPTIONS.to_vec(), 1), // Enter on "Serial console=ttyS0,115200n8" (highlighted)
            (SEABIOS_SERIAL.to_vec(), 1),  // Enter on the submenu's highlighted entry
            (b"Loading, please wait...\r\n".to_vec(), 0),
        ];
        let (mut console, guest, _dir) = scripted_guest(script);
        let choice = DrawnChoice {
            pattern: None,
            console_arg: "console=ttyS0,115200n8".into(),
            text_mode_key: 't',
        };
        let seen = drive_drawn_grub(
            &mut console,
            &choice,
            Duration::from_secs(10),
            Duration::from_millis(200),
        )
        .unwrap();
        assert_eq!(seen, Some(Phase::Kernel));
        assert_eq!(guest.join().unwrap().0, b"\r\r");
    }

    /// What an item is, told from GRUB's editor as recorded: an entry (its
    /// `linux` command without the console), a submenu of one-line entries
    /// (AAVMF, the grub-oneline fixture), nixpkgs' submenus whose first lines
    /// are menu settings, and one-line actions that must never be entered.
    #[test]
    fn items_are_told_apart_in_the_editor() {
        let console = "console=ttyS0,115200n8";
        let editor = Screen::from_bytes(include_bytes!("testdata/ovmf-grub-editor.raw"))
            .grub_editor_lines()
            .unwrap();
        assert_eq!(
            kind_of(&editor, console),
            ItemKind::Entry { has_console: false }
        );
        let with_console: Vec<String> = editor
            .iter()
            .map(|l| l.replace("loglevel=4", "loglevel=4 console=ttyS0"))
            .collect();
        assert_eq!(
            kind_of(&with_console, console),
            ItemKind::Entry { has_console: true }
        );
        let submenu = Screen::from_bytes(include_bytes!(
            "testdata/aavmf-grub-oneline-submenu-editor.raw"
        ))
        .grub_editor_lines()
        .unwrap();
        assert_eq!(kind_of(&submenu, console), ItemKind::Submenu);
        let settings: Vec<String> = [
            "setparams 'HiDPI, Quirks and Accessibility'",
            "  set textmode=false",
            "  search --set=root --file /EFI/nixos-installer-image",
            "  insmod gfxterm",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(kind_of(&settings, console), ItemKind::Submenu);
        for action in [
            "setparams 'Firmware Setup'\n fwsetup; ",
            "setparams 'Shutdown'\n  halt",
            "setparams ''\nreturn",
        ] {
            let lines: Vec<String> = action.lines().map(String::from).collect();
            assert_eq!(kind_of(&lines, console), ItemKind::Other, "{action}");
        }
    }

    /// AAVMF: the grub-oneline fixture's installer entry in GRUB's editor, then
    /// GRUB's answers to the edit, as a real boot recorded them.
    const AAVMF_ONELINE_EDIT: &[u8] = include_bytes!("testdata/aavmf-grub-oneline-edit.raw");

    /// Where the recording first shows `done` (checked before each escape
    /// sequence): the cut points of a replay that answers each batch of keys
    /// with what GRUB drew for it.
    fn first_shown(raw: &[u8], from: usize, done: impl Fn(&str) -> bool) -> usize {
        let row = |at: usize| {
            Screen::from_bytes(&raw[..at])
                .grub_editor_lines()
                .and_then(|l| l.get(1).map(|l| l.trim_end().to_owned()))
        };
        (from..=raw.len())
            .filter(|&i| i == raw.len() || raw[i] == 0x1b)
            .find(|&i| row(i).is_some_and(|r| done(&r)))
            .expect("the recording shows it")
    }

    /// A one-line entry gets the console after its `linux` command's own
    /// arguments, not after `initrd /boot/initrd;`: the end of the line marked
    /// (which tells its trailing blanks), the text after the arguments deleted
    /// and typed again after the console, four keys at a time, each batch
    /// answered only once the recording shows the one before; then Ctrl-X.
    #[test]
    fn a_one_line_entry_gets_the_console_after_its_linux_arguments() {
        let raw = AAVMF_ONELINE_EDIT;
        let line = " linux /boot/Image boot=live loglevel=4 init=/lib/systemd/systemd live-media-path=/live; initrd /boot/initrd;";
        let tail = "; initrd /boot/initrd;";
        let typed = format!(" console=ttyAMA0,115200n8{tail}");
        let drawn = first_shown(raw, 0, |r| r == line);
        let marked = first_shown(raw, drawn, |r| r.ends_with('#'));
        let at_end = Screen::from_bytes(&raw[..marked])
            .grub_editor_lines()
            .unwrap()[1]
            .trim_end()
            .to_owned();
        let blanks = at_end.len() - line.len() - 1;
        // The batches the harness sends and the line each must leave.
        let mut keys = vec![BACKSPACE; 1 + blanks + tail.len()];
        keys.extend(typed.bytes());
        let mut model: Vec<char> = at_end.chars().collect();
        let mut script = vec![(raw[..drawn].to_vec(), 3)];
        let mut from = drawn;
        let mut expected_keys = vec![CTRL_N, CTRL_E, MARK];
        let mut state = at_end.clone();
        for batch in keys.chunks(TYPE_CHUNK) {
            let cut = first_shown(raw, from, |r| r == state.trim_end());
            script.push((raw[from..cut].to_vec(), batch.len()));
            from = cut;
            for &k in batch {
                if k == BACKSPACE {
                    model.pop();
                } else {
                    model.push(k as char);
                }
            }
            state = model.iter().collect();
            expected_keys.extend_from_slice(batch);
        }
        let typed_all = first_shown(raw, from, |r| r == state.trim_end());
        script.push((raw[from..typed_all].to_vec(), 1));
        script.push((raw[typed_all..].to_vec(), 0));
        expected_keys.push(CTRL_X);
        assert_eq!(state, format!(" linux /boot/Image boot=live loglevel=4 init=/lib/systemd/systemd live-media-path=/live{typed}"));
        let (mut console, guest, _dir) = scripted_guest(script);
        edit_in_editor(
            &mut console,
            "console=ttyAMA0,115200n8",
            Duration::from_secs(10),
            Duration::from_millis(200),
        )
        .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&guest.join().unwrap().0),
            String::from_utf8_lossy(&expected_keys)
        );
    }

    /// Keys GRUB never shows (lost on the way): the edit is discarded and
    /// typed again, and after three tries the boot stops, saying what the
    /// screen showed instead of the edit.
    #[test]
    fn an_edit_the_screen_never_shows_is_retyped_then_reported() {
        let raw = AAVMF_ONELINE_EDIT;
        let line = " linux /boot/Image boot=live loglevel=4 init=/lib/systemd/systemd live-media-path=/live; initrd /boot/initrd;";
        let editor = raw[..first_shown(raw, 0, |r| r == line)].to_vec();
        let mut script = vec![(editor.clone(), 3)];
        for _ in 1..EDIT_ATTEMPTS {
            script.extend([
                (Vec::new(), 1),
                (SEABIOS_OPTIONS.to_vec(), 1),
                (editor.clone(), 3),
            ]);
        }
        let (mut console, guest, _dir) = scripted_guest(script);
        let e = edit_in_editor(
            &mut console,
            "console=ttyAMA0,115200n8",
            Duration::from_millis(600),
            Duration::from_millis(100),
        )
        .unwrap_err();
        let message = e.to_string();
        assert!(
            message.starts_with("the edited `linux` command ` linux /boot/Image"),
            "{message}"
        );
        assert!(
            message.contains("typed 3 times, the screen showed ` linux /boot/Image"),
            "{message}"
        );
        let mark = [CTRL_N, CTRL_E, MARK];
        let retry = [[ESC, b'e'].as_slice(), &mark].concat();
        assert_eq!(
            guest.join().unwrap().0,
            [mark.as_slice(), &retry, &retry].concat()
        );
    }

    /// OVMF (Debian's 2022.11) with an ISO whose El Torito catalog has no UEFI
    /// entry, the CD-ROM the one boot device (qemu/args.rs): it fails to load
    /// that option and starts its EFI shell.
    const OVMF_NOTHING_TO_BOOT: &[u8] = include_bytes!("testdata/ovmf-nothing-to-boot.raw");

    #[test]
    fn uefi_with_nothing_to_boot_ends_the_boot_at_once() {
        let (mut console, _guest, _dir) =
            play_guest(OVMF_NOTHING_TO_BOOT, b"", Duration::from_secs(30));
        let choice = BootChoice::GrubDrawn(DrawnChoice {
            pattern: None,
            console_arg: "console=ttyS0".into(),
            text_mode_key: 't',
        });
        let started = Instant::now();
        let deadline = started + Duration::from_secs(60);
        let e = boot_to_shell(
            &mut console,
            &choice,
            None,
            BootTimeouts::default(),
            4,
            deadline,
            &|_| {},
        )
        .unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "waited for a menu: {:?}",
            started.elapsed()
        );
        assert_eq!(e.phase_reached(), Phase::PowerOn);
        assert_eq!(
            e.to_string(),
            format!("{NO_BOOTABLE_DEVICE}; last phase reached: power-on (no boot menu yet)")
        );
        let failed = r#"BdsDxe: failed to load Boot0001 "UEFI QEMU DVD-ROM QM00001 " from PciRoot(0x0)/Pci(0x1F,0x2)/Sata(0x0,0xFFFF,0x0): Not Found"#;
        assert_eq!(e.evidence()[0], failed, "{:?}", e.evidence());
        assert!(
            e.evidence()
                .iter()
                .any(|l| l.contains(r#"BdsDxe: loading Boot0002 "EFI Internal Shell""#)),
            "{:?}",
            e.evidence()
        );
    }

    #[test]
    fn the_ways_edk2_gives_up() {
        let p = patterns();
        for line in [
            r#"BdsDxe: loading Boot0002 "EFI Internal Shell" from Fv(7CB8BDC9-F8EB-4F34-AAEA-3EE4AF6516A1)"#,
            "BdsDxe: No bootable option or device was found.",
            ">>Start PXE over IPv4.",
            ">>Start HTTP Boot over IPv6.....",
        ] {
            assert!(p.uefi_gave_up.is_match(line.as_bytes()), "{line}");
        }
        for line in [
            r#"BdsDxe: loading Boot0001 "UEFI QEMU DVD-ROM QM00001 " from PciRoot(0x0)"#,
            "BdsDxe: starting Boot0001",
        ] {
            assert!(!p.uefi_gave_up.is_match(line.as_bytes()), "{line}");
        }
    }

    #[test]
    fn a_boot_loader_that_came_back_is_not_nothing_to_boot() {
        let text = "BdsDxe: loading Boot0001 \"UEFI QEMU DVD-ROM QM00001 \" from PciRoot(0x0)\r\n\
                    BdsDxe: starting Boot0001 \"UEFI QEMU DVD-ROM QM00001 \" from PciRoot(0x0)\r\n\
                    Welcome to GRUB!\r\n\
                    BdsDxe: loading Boot0002 \"EFI Internal Shell\" from Fv(7CB8BDC9)\r\n";
        let context =
            vec!["BdsDxe: loading Boot0002 \"EFI Internal Shell\" from Fv(7CB8BDC9)".to_owned()];
        let (reason, lines) = uefi_boot_lines(text, context);
        assert_eq!(reason, LOADER_RETURNED);
        assert_eq!(lines.len(), 3, "each line once: {lines:?}");
        let (reason, _) = uefi_boot_lines("BdsDxe: failed to load Boot0001 \"UEFI QEMU DVD-ROM\": Not Found\r\nBdsDxe: No bootable option or device was found.\r\n", vec![]);
        assert_eq!(reason, NO_BOOTABLE_DEVICE);
    }

    #[test]
    fn phases_are_ordered() {
        assert!(Phase::BootMenu < Phase::Kernel && Phase::LoginPrompt < Phase::Shell);
    }
}
