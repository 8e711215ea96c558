//! The boot sequence as an explicit state machine: power-on → boot menu → kernel →
//! userspace → login prompt → shell. Each transition waits for its own evidence
//! with its own timeout, and every failure names the last phase reached.

use super::grub::{GrubEdit, GrubPlan, GrubStep};
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
    Console { reached: Phase, source: ConsoleError },
    #[error("login prompt on the serial console, no autologin: `{login_line}` asked for a password when the harness typed")]
    NoAutologin { login_line: String, evidence: Vec<String> },
    /// Something logged in, but the line that starts isotest's /bin/sh got no
    /// answer: the login shell could not run it, or nothing reads the console.
    #[error(
        "the serial console logged in, but isotest could not start /bin/sh from the login shell: \
         no answer to `/bin/sh -c ...` typed {tries} time(s) in {waited} s (the console's last lines show what the login shell said)"
    )]
    NoPosixShell { tries: u32, waited: u64, lines: Vec<String> },
    /// The scenario's console credentials did not log in.
    #[error("console login as `{user}` failed: {answer}")]
    LoginFailed { user: String, answer: String, login_line: String, evidence: Vec<String> },
}

impl BootError {
    pub fn phase_reached(&self) -> Phase {
        match self {
            BootError::Console { reached, .. } => *reached,
            BootError::NoAutologin { .. } | BootError::NoPosixShell { .. } | BootError::LoginFailed { .. } => Phase::LoginPrompt,
        }
    }

    /// Whether the serial console closed under the boot: QEMU exited.
    pub fn console_closed(&self) -> bool {
        matches!(self, BootError::Console { source: super::serial::ConsoleError::Closed { .. }, .. })
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
pub const NO_BOOTABLE_DEVICE: &str = "no bootable device: the firmware found nothing to boot on the ISO";

/// The same end, when a boot option of the ISO did start (its boot loader)
/// and came back to the firmware.
const LOADER_RETURNED: &str = "the ISO's boot loader returned to the firmware, which found nothing else to boot";

/// What ends a boot at once, whatever phase it is in: each has its own words on
/// the console, so the trial names the cause instead of waiting out a timeout.
fn fatal_signs(console: &mut SerialConsole) {
    let p = patterns();
    console.add_fatal("kernel panic", p.panic.clone());
    console.add_fatal("emergency mode: systemd could not reach its default target", p.emergency.clone());
    console.add_fatal("NixOS stage 1 failed: it could not mount the root file system or start stage 2", p.stage_1_failed.clone());
    console.add_fatal("the boot loader found no kernel", p.no_kernel.clone());
    console.add_fatal("GRUB rescue prompt: GRUB could not load its normal mode", p.grub_rescue.clone());
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
    drive_boot(console, choice, credentials, timeouts, scale, deadline, on_phase).map_err(|e| with_what_led_there(console, e))
}

/// How many of systemd's failure lines a boot that died shows.
const FAILURE_LINES: usize = 10;

/// A boot that died of a sign on the console (emergency mode, say) is explained
/// by what failed before it, which may be far above the sign: systemd's
/// `[FAILED]`, `[DEPEND]` and `[ TIME ]` status lines, put before the lines
/// around the sign.
fn with_what_led_there(console: &SerialConsole, e: BootError) -> BootError {
    let BootError::Console { reached, source: ConsoleError::Fatal { reason, context } } = e else { return e };
    let text = console.text_between(0, usize::MAX);
    if reason == NO_BOOTABLE_DEVICE {
        let (reason, context) = uefi_boot_lines(&text, context);
        return BootError::Console { reached, source: ConsoleError::Fatal { reason, context } };
    }
    let failures: Vec<String> = failure_lines(&text).into_iter().filter(|l| !context.contains(l)).collect();
    let context = failures[failures.len().saturating_sub(FAILURE_LINES)..].iter().cloned().chain(context).collect();
    BootError::Console { reached, source: ConsoleError::Fatal { reason, context } }
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
    let started = options.iter().any(|l| l.starts_with("BdsDxe: starting Boot") && !l.contains(shell));
    let reason = if started { LOADER_RETURNED } else { NO_BOOTABLE_DEVICE };
    (reason.to_owned(), options.into_iter().chain(context).collect())
}

/// systemd's status lines of units that failed, timed out or lost a dependency.
fn failure_lines(text: &str) -> Vec<String> {
    static FAILED: OnceLock<regex::Regex> = OnceLock::new();
    let failed = FAILED.get_or_init(|| regex::Regex::new(r"^\[(FAILED|DEPEND| TIME )\] ").expect("static pattern"));
    text.lines().map(str::trim_end).filter(|l| failed.is_match(l)).map(str::to_owned).collect()
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
    let mut phases = Timeline { phases: Vec::new(), observer: on_phase };
    phases.push((Phase::PowerOn, Duration::ZERO));
    fatal_signs(console);
    let reached = |phases: &Vec<(Phase, Duration)>| phases.last().map(|(p, _)| *p).unwrap_or(Phase::PowerOn);
    let fail = |phases: &Vec<(Phase, Duration)>| {
        let reached = reached(phases);
        move |source| BootError::Console { reached, source }
    };

    let menu_wait = || budget(timeouts.menu, scale, deadline);
    match choice {
        // isolinux: escape to the `boot:` prompt and type the chosen entry, which
        // does not wait out the menu's timeout.
        BootChoice::Isolinux(choice) => {
            console.expect(&[&p.menu_ready], menu_wait(), "the isolinux boot menu").map_err(fail(&phases))?;
            phases.push((Phase::BootMenu, started.elapsed()));
            console.send(b"\x1b").map_err(fail(&phases))?;
            console.expect(&[&p.boot_prompt], menu_wait(), "the isolinux `boot:` prompt").map_err(fail(&phases))?;
            console.send(format!("{}\r", choice.command_line()).as_bytes()).map_err(fail(&phases))?;
        }
        // GRUB: get the menu onto serial, then level by level wait until it is
        // drawn (its hint, then its last item), move to the item and pick it; the
        // first key stops the timeout.
        BootChoice::Grub(plan) => {
            let menu_deadline = Instant::now() + menu_wait();
            let pressed = grub_menu_on_serial(console, plan.text_mode_key, menu_deadline, timeouts.menu_silence);
            grub_menu_reached(pressed, started, &mut phases).map_err(fail(&phases))?;
            for (i, step) in plan.steps.iter().enumerate() {
                if i > 0 {
                    console.expect(&[&p.grub_ready], menu_wait(), "the GRUB boot menu").map_err(fail(&phases))?;
                }
                let last_item = re(&regex::escape(&step.last_title.chars().take(50).collect::<String>()));
                let what = format!("GRUB menu item `{}`", step.last_title);
                console.expect(&[&last_item], menu_wait(), &what).map_err(fail(&phases))?;
                let last = i + 1 == plan.steps.len();
                console.send(&GrubPlan::keys(step, last, plan.edit.is_some())).map_err(fail(&phases))?;
            }
            if let Some(edit) = &plan.edit {
                let line = editor_linux_line(console, menu_wait(), timeouts.menu_settle).map_err(fail(&phases))?;
                let edit = GrubEdit { line: line.unwrap_or(edit.line), ..edit.clone() };
                console.send(&GrubPlan::edit_keys(&edit)).map_err(fail(&phases))?;
            }
        }
        // GRUB known only from what it draws: the same way onto serial, then
        // level by level read the menu off the screen.
        BootChoice::GrubDrawn(choice) => {
            let menu_deadline = Instant::now() + menu_wait();
            let pressed = grub_menu_on_serial(console, choice.text_mode_key, menu_deadline, timeouts.menu_silence);
            grub_menu_reached(pressed, started, &mut phases).map_err(fail(&phases))?;
            let seen = drive_drawn_grub(console, choice, menu_wait(), timeouts.menu_settle).map_err(fail(&phases))?;
            if let Some(phase) = seen {
                phases.push((phase, started.elapsed()));
            }
        }
    }

    // Kernel, userspace, login prompt: whichever evidence comes first moves the
    // phase on; not every system prints every milestone.
    let milestones = [(Phase::Kernel, &p.kernel), (Phase::Userspace, &p.userspace), (Phase::LoginPrompt, &p.login)];
    let login = loop {
        let pending: Vec<_> = milestones.iter().filter(|(phase, _)| *phase > reached(&phases)).collect();
        let regexes: Vec<&Regex> = pending.iter().map(|(_, r)| *r).collect();
        let m = console
            .expect(&regexes, budget(timeouts.login, scale, deadline), "a login prompt on the serial console")
            .map_err(fail(&phases))?;
        let phase = pending[m.index].0;
        phases.push((phase, started.elapsed()));
        if phase == Phase::LoginPrompt {
            break m;
        }
    };
    let login_line = format!("{}{}", login.text, login.rest_of_line).trim().to_owned();

    // The shell: a /bin/sh of isotest's own, from whatever logged in (`login`).
    let patience = budget(timeouts.shell, scale, deadline);
    let logged_in = match super::login::reach_shell(console, &login.text, &login.rest_of_line, credentials, scale, patience) {
        Ok(logged_in) => logged_in,
        Err(LoginError::PasswordAsked { at }) => {
            return Err(BootError::NoAutologin { login_line, evidence: console.lines_around(at) });
        }
        Err(LoginError::Refused { user, evidence }) => {
            let answer = "login refused the password (`Login incorrect`)".into();
            return Err(BootError::LoginFailed { user, answer, login_line, evidence });
        }
        Err(LoginError::NoPasswordPrompt { user, evidence }) => {
            let answer = "login did not ask for a password after the user name".into();
            return Err(BootError::LoginFailed { user, answer, login_line, evidence });
        }
        Err(LoginError::NoPosixShell { tries, waited, lines }) => return Err(BootError::NoPosixShell { tries, waited, lines }),
        Err(LoginError::Console(e)) => return Err(fail(&phases)(e)),
    };
    phases.push((Phase::Shell, started.elapsed()));
    // getty's line is complete now (it may have come in pieces around the prompt).
    let login_line = console.text_between(login.start, console.position()).lines().next().unwrap_or("").trim().to_owned();
    let autologin_user = autologin_user_of(&login_line);
    let login_evidence = console.lines_around(login.start);
    Ok(BootOutcome { phases: phases.phases, login_line, autologin_user, login_evidence, logged_in })
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
        let wait = alive.map_or(left, |at| (at + silence).saturating_duration_since(now).min(left));
        match console.expect(&[&p.grub_ready, &p.grub_text_hint, &p.grub_starting], wait, "the GRUB boot menu") {
            Ok(m) if m.index == 0 => return Ok(pressed),
            Ok(m) => {
                if m.index == 1 {
                    key = m.text.split('\'').nth(1).and_then(|k| k.chars().next()).unwrap_or(key);
                }
                alive = Some(Instant::now());
            }
            Err(ConsoleError::Timeout { .. }) if alive.is_some() && !left.is_zero() => {
                tracing::info!("no GRUB menu on serial after {} s; pressing its text-mode key `{key}`", silence.as_secs_f32());
                console.send(key.to_string().as_bytes())?;
                pressed = pressed.or(Some(Instant::now()));
                alive = Some(Instant::now());
            }
            Err(ConsoleError::Timeout { last_lines, .. }) => {
                let waited = if pressed.is_some() { "the GRUB boot menu (after its text-mode key)" } else { "the GRUB boot menu" };
                return Err(ConsoleError::Timeout { waiting_for: waited.into(), after: waiting_since.elapsed(), last_lines });
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

/// Drives a GRUB menu known only from the screen. At each level, once the draw
/// has settled: an item the choice picks (by pattern, or one whose title names
/// the console) gets Enter, and a submenu it opens is read the same way; inside a
/// submenu picked for its title, the highlighted item is taken. Without such an
/// item, the highlighted entry is edited: its `linux` line, found in GRUB's
/// editor on the screen, gets the console. An entry that prints no `Booting`
/// line (GRUB on x86 does not) shows itself by the kernel's first words: that
/// phase is returned, as it was seen here.
fn drive_drawn_grub(
    console: &mut SerialConsole,
    choice: &DrawnChoice,
    wait: Duration,
    settle: Duration,
) -> Result<Option<Phase>, ConsoleError> {
    let p = patterns();
    let mut picked_for_title = false;
    for _ in 0..MAX_MENU_DEPTH {
        console.wait_quiet(settle, wait, "the GRUB menu to be drawn")?;
        let screen = Screen::from_bytes(&console.raw_since(0));
        let menu = screen.grub_menu().ok_or_else(|| ConsoleError::Timeout {
            waiting_for: "a GRUB menu on the screen (none could be read)".into(),
            after: wait,
            last_lines: console.last_lines(),
        })?;
        tracing::info!(items = ?menu.items, highlighted = menu.highlighted, "GRUB menu read off the screen");
        let pick = choice.pick(&menu.items).or(picked_for_title.then_some(menu.highlighted));
        let Some(to) = pick else {
            return edit_drawn_entry(console, &choice.console_arg, wait, settle).map(|()| None);
        };
        picked_for_title = true;
        let step = GrubStep { from: menu.highlighted, to, last_title: menu.items.last().cloned().unwrap_or_default() };
        console.send(&GrubPlan::keys(&step, false, false))?;
        let m = console.expect(&[&p.grub_ready, &p.grub_booting, &p.kernel], wait, "a GRUB submenu or the chosen entry")?;
        match m.index {
            0 => continue,
            1 => return Ok(None),
            _ => return Ok(Some(Phase::Kernel)),
        }
    }
    Err(ConsoleError::Timeout {
        waiting_for: format!("a GRUB entry within {MAX_MENU_DEPTH} levels of submenus"),
        after: wait,
        last_lines: console.last_lines(),
    })
}

/// `e` on the highlighted entry, then the console appended to the `linux` line
/// the editor shows, and Ctrl-X.
fn edit_drawn_entry(console: &mut SerialConsole, console_arg: &str, wait: Duration, settle: Duration) -> Result<(), ConsoleError> {
    console.send(b"e")?;
    let line = editor_linux_line(console, wait, settle)?.ok_or_else(|| ConsoleError::Timeout {
        waiting_for: "a `linux` line in GRUB's editor".into(),
        after: wait,
        last_lines: console.last_lines(),
    })?;
    console.send(&GrubPlan::edit_keys(&GrubEdit { line, append: console_arg.to_owned() }))
}

/// Once GRUB's editor is drawn: the row of its `linux` line, as the screen
/// shows it. GRUB 2.06 puts `setparams 'title'` and the text after the entry's
/// `{` above the commands, so the configuration's own line numbers are off.
fn editor_linux_line(console: &mut SerialConsole, wait: Duration, settle: Duration) -> Result<Option<usize>, ConsoleError> {
    console.expect(&[&patterns().grub_editor], wait, "GRUB's entry editor")?;
    console.wait_quiet(settle, wait, "GRUB's entry editor to be drawn")?;
    Ok(Screen::from_bytes(&console.raw_since(0)).grub_editor_linux_line())
}

/// `rescue login: root (automatic login)` → `root`.
fn autologin_user_of(login_line: &str) -> Option<String> {
    let (before, _) = login_line.split_once(" (automatic login)")?;
    before.rsplit(' ').next().filter(|u| !u.is_empty() && !u.ends_with(':')).map(str::to_owned)
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
        assert!(p.grub_ready.is_match(&text), "{}", String::from_utf8_lossy(&text));
        assert!(p.grub_ready.is_match(b"`c' for a command-line."));
        assert!(p.grub_ready.is_match(b"`c' for\n      a command-line."));
        assert!(!p.grub_ready.is_match(b"`c' for a command"));
        assert!(!p.grub_ready.is_match(b"`e' to edit the commands"));
    }

    #[test]
    fn login_pattern_takes_the_whole_getty_line() {
        let p = patterns();
        let m = p.login.find(b"\nrescue login: root (automatic login)\n").unwrap();
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
        assert!(p.no_kernel.is_match(b"Could not find kernel image: /boot/bzImage\r\n"));
        assert!(p.no_kernel.is_match(b"error: file `/boot/bzImage' not found.\r\nerror: you need to load the kernel first.\r\n"));
        // A font GRUB could not load is no reason to stop.
        assert!(!p.no_kernel.is_match(b"error: file `/EFI/boot/unicode.pf2' not found.\r\n"));
        assert!(p.grub_rescue.is_match(b"Entering rescue mode...\r\ngrub rescue> "));
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
        assert!(!p.stage_1_failed.is_match(b"An error occurred in stage 1 of the boot"));
    }

    /// The milestones NixOS prints, in the order they come: the scripted
    /// stage 1 and 2, or systemd's initrd greeting (the kernel's phase, not
    /// userspace, though it starts like systemd's own) and then its own.
    #[test]
    fn nixos_milestones_are_the_same_phases() {
        let p = patterns();
        let milestones = [(Phase::Kernel, &p.kernel), (Phase::Userspace, &p.userspace)];
        let first = |text: &[u8]| {
            milestones.iter().filter_map(|(phase, re)| re.find(text).map(|m| (m.start(), *phase))).min_by_key(|(at, _)| *at).map(|(_, phase)| phase)
        };
        assert_eq!(first(b"\r\n<<< NixOS Stage 1 >>>\r\n\r\nloading module ahci...\r\n"), Some(Phase::Kernel));
        assert_eq!(first(b"mounting /dev/root on /iso...\r\n\r\n<<< NixOS Stage 2 >>>\r\n"), Some(Phase::Userspace));
        assert_eq!(first(b"\r\nWelcome to NixOS 25.05 (Warbler) (Initrd)!\r\n"), Some(Phase::Kernel));
        // Not yet whole: neither (a partial greeting is no userspace).
        assert_eq!(first(b"\r\nWelcome to NixOS 25.05 (Warbler) (Ini"), None);
        assert_eq!(first(b"\r\nWelcome to NixOS 25.05 (Warbler)!\r\n"), Some(Phase::Userspace));
        assert_eq!(first(b"Welcome to Debian GNU/Linux 12 (bookworm)!\r\n"), Some(Phase::Userspace));
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
        assert_eq!(autologin_user_of("rescue login: root (automatic login)").as_deref(), Some("root"));
        assert_eq!(autologin_user_of("rescue login: "), None);
    }

    use crate::console::menu::DrawnChoice;
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;

    /// A console whose guest side the test plays: it writes `before`, then
    /// waits for one key (up to `key_wait`), records it, and writes `after`.
    fn play_guest(before: &'static [u8], after: &'static [u8], key_wait: Duration) -> (SerialConsole, Guest, tempfile::TempDir) {
        let (mut guest, host) = UnixStream::pair().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let console = SerialConsole::attach(host, dir.path()).unwrap();
        let handle = std::thread::spawn(move || {
            guest.write_all(before).unwrap();
            guest.set_read_timeout(Some(key_wait)).unwrap();
            let mut key = [0u8; 1];
            let got = guest.read(&mut key).ok().filter(|&n| n == 1).map(|_| key[0]);
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
        let at = raw.windows(marker.len()).position(|w| w == marker.as_bytes()).expect("marker") + marker.len();
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
        let pressed = grub_menu_on_serial(&mut console, 'x', deadline, Duration::from_millis(300)).unwrap();
        assert_eq!(guest.key(), Some(b't'), "the key the hint names");
        assert!(pressed.is_some());
        // The level's last item follows, as the menu driver expects it.
        assert!(console.expect(&[&re("Shutdown")], Duration::from_secs(1), "the menu").is_ok());
    }

    #[test]
    fn a_silent_console_gets_the_key_unasked() {
        let (before, _) = split_after(OVMF_GFXTERM, "Welcome to GRUB!");
        let (_, menu) = split_after(OVMF_GFXTERM, "on this console...");
        let (mut console, guest, _dir) = play_guest(before, menu, Duration::from_secs(5));
        let deadline = Instant::now() + Duration::from_secs(10);
        let pressed = grub_menu_on_serial(&mut console, 't', deadline, Duration::from_millis(300)).unwrap();
        assert_eq!(guest.key(), Some(b't'));
        assert!(pressed.is_some());
    }

    #[test]
    fn a_menu_on_serial_needs_no_key() {
        // The fixture's own layout: the menu is drawn on serial, no hint.
        let (before, after) = split_after(AAVMF_GFXTERM, "video mode found.");
        let (_, menu) = split_after(after, "\n");
        let drawn: &'static [u8] = Box::leak([b"BdsDxe: starting Boot0001\r\n".as_slice(), menu].concat().into_boxed_slice());
        let (mut console, guest, _dir) = play_guest(drawn, b"", Duration::from_millis(500));
        let deadline = Instant::now() + Duration::from_secs(10);
        assert_eq!(grub_menu_on_serial(&mut console, 't', deadline, Duration::from_secs(10)).unwrap(), None);
        assert_eq!(guest.key(), None, "no key was pressed");
        // AAVMF without a display: the hint, then the menu anyway: no key.
        let (mut console, guest, _dir) = play_guest(before, after, Duration::from_millis(500));
        assert_eq!(grub_menu_on_serial(&mut console, 't', deadline, Duration::from_secs(10)).unwrap(), None);
        assert_eq!(guest.key(), None);
    }

    #[test]
    fn silence_before_grub_runs_presses_nothing() {
        let (before, _) = split_after(OVMF_GFXTERM, "\x1b[2J\x1b[01;01H");
        let (mut console, guest, _dir) = play_guest(before, b"", Duration::from_millis(800));
        let deadline = Instant::now() + Duration::from_millis(600);
        assert!(grub_menu_on_serial(&mut console, 't', deadline, Duration::from_millis(100)).is_err());
        assert_eq!(guest.key(), None);
    }

    #[test]
    fn no_menu_at_all_is_a_timeout_that_says_the_key_was_pressed() {
        let (before, _) = split_after(OVMF_GFXTERM, "on this console...");
        let (mut console, guest, _dir) = play_guest(before, b"", Duration::from_secs(2));
        let deadline = Instant::now() + Duration::from_millis(600);
        let e = grub_menu_on_serial(&mut console, 't', deadline, Duration::from_millis(200)).unwrap_err();
        assert!(e.to_string().contains("the GRUB boot menu (after its text-mode key)"), "{e}");
        assert_eq!(guest.key(), Some(b't'));
    }

    /// A guest that plays a script: write, then read exactly so many bytes (the
    /// harness's keys), and so on; it returns what it read.
    fn scripted_guest(script: Vec<(Vec<u8>, usize)>) -> (SerialConsole, std::thread::JoinHandle<(Vec<u8>, UnixStream)>, tempfile::TempDir) {
        let (mut guest, host) = UnixStream::pair().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let console = SerialConsole::attach(host, dir.path()).unwrap();
        let handle = std::thread::spawn(move || {
            guest.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
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
        let choice = DrawnChoice { pattern: None, console_arg: "console=ttyS0,115200n8".into(), text_mode_key: 't' };
        let seen = drive_drawn_grub(&mut console, &choice, Duration::from_secs(10), Duration::from_millis(200)).unwrap();
        assert_eq!(seen, Some(Phase::Kernel));
        assert_eq!(guest.join().unwrap().0, b"\r\r");
    }

    #[test]
    fn without_a_console_title_the_highlighted_entry_is_edited() {
        // OVMF, nixpkgs' forceTextMode-era menu after `t` (nothing names ttyS0 at
        // the top), then GRUB's editor (grub-embedded fixture).
        let (_, menu) = split_after(OVMF_GFXTERM, "on this console...");
        let editor = include_bytes!("testdata/ovmf-grub-editor.raw");
        let editor_draw = &editor[editor.windows(8).rposition(|w| w == b"GNU GRUB").unwrap() - 40..];
        let edit = b"\x1b[B\x1b[B\x05 console=ttyS0,115200n8\x18";
        let script = vec![(menu.to_vec(), 1), (editor_draw.to_vec(), edit.len())];
        let (mut console, guest, _dir) = scripted_guest(script);
        let choice = DrawnChoice { pattern: None, console_arg: "console=ttyS0,115200n8".into(), text_mode_key: 't' };
        assert_eq!(drive_drawn_grub(&mut console, &choice, Duration::from_secs(10), Duration::from_millis(200)).unwrap(), None);
        assert_eq!(guest.join().unwrap().0, [b"e".as_slice(), edit].concat());
    }

    /// OVMF (Debian's 2022.11) with an ISO whose El Torito catalog has no UEFI
    /// entry, the CD-ROM the one boot device (qemu/args.rs): it fails to load
    /// that option and starts its EFI shell.
    const OVMF_NOTHING_TO_BOOT: &[u8] = include_bytes!("testdata/ovmf-nothing-to-boot.raw");

    #[test]
    fn uefi_with_nothing_to_boot_ends_the_boot_at_once() {
        let (mut console, _guest, _dir) = play_guest(OVMF_NOTHING_TO_BOOT, b"", Duration::from_secs(30));
        let choice = BootChoice::GrubDrawn(DrawnChoice { pattern: None, console_arg: "console=ttyS0".into(), text_mode_key: 't' });
        let started = Instant::now();
        let deadline = started + Duration::from_secs(60);
        let e = boot_to_shell(&mut console, &choice, None, BootTimeouts::default(), 4, deadline, &|_| {}).unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(5), "waited for a menu: {:?}", started.elapsed());
        assert_eq!(e.phase_reached(), Phase::PowerOn);
        assert_eq!(e.to_string(), format!("{NO_BOOTABLE_DEVICE}; last phase reached: power-on (no boot menu yet)"));
        let failed = r#"BdsDxe: failed to load Boot0001 "UEFI QEMU DVD-ROM QM00001 " from PciRoot(0x0)/Pci(0x1F,0x2)/Sata(0x0,0xFFFF,0x0): Not Found"#;
        assert_eq!(e.evidence()[0], failed, "{:?}", e.evidence());
        assert!(e.evidence().iter().any(|l| l.contains(r#"BdsDxe: loading Boot0002 "EFI Internal Shell""#)), "{:?}", e.evidence());
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
        for line in [r#"BdsDxe: loading Boot0001 "UEFI QEMU DVD-ROM QM00001 " from PciRoot(0x0)"#, "BdsDxe: starting Boot0001"] {
            assert!(!p.uefi_gave_up.is_match(line.as_bytes()), "{line}");
        }
    }

    #[test]
    fn a_boot_loader_that_came_back_is_not_nothing_to_boot() {
        let text = "BdsDxe: loading Boot0001 \"UEFI QEMU DVD-ROM QM00001 \" from PciRoot(0x0)\r\n\
                    BdsDxe: starting Boot0001 \"UEFI QEMU DVD-ROM QM00001 \" from PciRoot(0x0)\r\n\
                    Welcome to GRUB!\r\n\
                    BdsDxe: loading Boot0002 \"EFI Internal Shell\" from Fv(7CB8BDC9)\r\n";
        let context = vec!["BdsDxe: loading Boot0002 \"EFI Internal Shell\" from Fv(7CB8BDC9)".to_owned()];
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
