//! The boot driven from power-on to a shell, stage by stage: the boot menu
//! (isolinux, GRUB by its configuration, or GRUB read off the screen), then
//! the milestones (kernel, userspace, login prompt) in whatever order the
//! system prints them, then the login to a shell. Each stage waits for its
//! own evidence with its own timeout and records the phases it reaches;
//! `boot_to_shell` names the last phase reached in a failure, once.

use super::drawn::drive_drawn_grub;
use super::editor::edit_in_editor;
use super::error::{BootError, Stop};
use super::loader::{grub_menu_on_serial, prompts};
use super::phase::{Phase, PhaseObserver, Timeline};
use super::signs::{autologin_user_of, fatal_signs, re, signs};
use crate::console::login::{reach_shell, Credentials, LoggedIn};
use crate::console::serial::{ConsoleError, Match, SerialConsole};
use crate::menu::grub::GrubPlan;
use crate::menu::{BootChoice, DrawnChoice, IsolinuxChoice};
use regex::bytes::Regex;
use std::time::{Duration, Instant};

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
    let mut boot = Boot {
        started: Instant::now(),
        timeline: Timeline::start(on_phase),
        console,
        timeouts,
        scale,
        deadline,
    };
    fatal_signs(boot.console);
    boot.run(choice, credentials)
        .map_err(|stop| stop.at(boot.timeline.reached()).explained(boot.console))
}

/// A boot under way: the console, its waits, and the phases reached so far.
struct Boot<'c, 'o> {
    console: &'c mut SerialConsole,
    timeouts: BootTimeouts,
    scale: u32,
    deadline: Instant,
    started: Instant,
    timeline: Timeline<'o>,
}

impl Boot<'_, '_> {
    /// The stages in order.
    fn run(
        &mut self,
        choice: &BootChoice,
        credentials: Option<&Credentials>,
    ) -> Result<BootOutcome, Stop> {
        match choice {
            BootChoice::Isolinux(choice) => self.isolinux(choice)?,
            BootChoice::Grub(plan) => self.grub(plan)?,
            BootChoice::GrubDrawn(choice) => self.grub_drawn(choice)?,
        }
        let login = self.milestones()?;
        let logged_in = self.log_in(&login, credentials)?;
        self.reach(Phase::Shell);
        Ok(self.outcome(&login, logged_in))
    }

    /// Records `phase` as reached now.
    fn reach(&mut self, phase: Phase) {
        self.timeline.reach(phase, self.started.elapsed());
    }

    /// The deadline of one wait: its own budget, cut to the trial's deadline.
    fn budget(&self, own: Duration) -> Duration {
        (own * self.scale).min(self.deadline.saturating_duration_since(Instant::now()))
    }

    fn menu_wait(&self) -> Duration {
        self.budget(self.timeouts.menu)
    }

    /// isolinux: escape to the `boot:` prompt and type the chosen entry, which
    /// does not wait out the menu's timeout.
    fn isolinux(&mut self, choice: &IsolinuxChoice) -> Result<(), ConsoleError> {
        let p = prompts();
        self.console
            .expect(&[&p.menu_ready], self.menu_wait(), "the isolinux boot menu")?;
        self.reach(Phase::BootMenu);
        self.console.send(b"\x1b")?;
        self.console.expect(
            &[&p.boot_prompt],
            self.menu_wait(),
            "the isolinux `boot:` prompt",
        )?;
        self.console
            .send(format!("{}\r", choice.command_line()).as_bytes())
    }

    /// GRUB's menu onto serial (`grub_menu_on_serial`), recorded as it came:
    /// the text-mode key, if it was pressed, then the menu. (A menu that never
    /// came says in its timeout whether the key was pressed.)
    fn grub_on_serial(&mut self, key: char) -> Result<(), ConsoleError> {
        let menu_deadline = Instant::now() + self.menu_wait();
        let silence = self.timeouts.menu_silence;
        if let Some(at) = grub_menu_on_serial(self.console, key, menu_deadline, silence)? {
            let pressed = at.duration_since(self.started);
            self.timeline.reach(Phase::TextModeKey, pressed);
        }
        self.reach(Phase::BootMenu);
        Ok(())
    }

    /// GRUB: get the menu onto serial, then level by level wait until it is
    /// drawn (its hint, then its last item), move to the item and pick it; the
    /// first key stops the timeout.
    fn grub(&mut self, plan: &GrubPlan) -> Result<(), ConsoleError> {
        self.grub_on_serial(plan.text_mode_key)?;
        for (i, step) in plan.steps.iter().enumerate() {
            if i > 0 {
                let ready = &prompts().grub_ready;
                self.console
                    .expect(&[ready], self.menu_wait(), "the GRUB boot menu")?;
            }
            let last_item = re(&regex::escape(
                &step.last_title.chars().take(50).collect::<String>(),
            ));
            let what = format!("GRUB menu item `{}`", step.last_title);
            self.console
                .expect(&[&last_item], self.menu_wait(), &what)?;
            let last = i + 1 == plan.steps.len();
            self.console
                .send(&GrubPlan::keys(step, last, plan.edit.is_some()))?;
        }
        match &plan.edit {
            Some(edit) => edit_in_editor(
                self.console,
                &edit.append,
                self.menu_wait(),
                self.timeouts.menu_settle,
            ),
            None => Ok(()),
        }
    }

    /// GRUB known only from what it draws: the same way onto serial, then
    /// level by level read the menu off the screen.
    fn grub_drawn(&mut self, choice: &DrawnChoice) -> Result<(), ConsoleError> {
        self.grub_on_serial(choice.text_mode_key)?;
        let settle = self.timeouts.menu_settle;
        if let Some(phase) = drive_drawn_grub(self.console, choice, self.menu_wait(), settle)? {
            self.reach(phase);
        }
        Ok(())
    }

    /// Kernel, userspace, login prompt: whichever evidence comes first moves
    /// the phase on; not every system prints every milestone. Returns the
    /// login prompt.
    fn milestones(&mut self) -> Result<Match, ConsoleError> {
        let s = signs();
        let milestones = [
            (Phase::Kernel, &s.kernel),
            (Phase::Userspace, &s.userspace),
            (Phase::LoginPrompt, &s.login),
        ];
        loop {
            let reached = self.timeline.reached();
            let pending: Vec<_> = milestones.iter().filter(|(p, _)| *p > reached).collect();
            let regexes: Vec<&Regex> = pending.iter().map(|(_, r)| *r).collect();
            let m = self.console.expect(
                &regexes,
                self.budget(self.timeouts.login),
                "a login prompt on the serial console",
            )?;
            let phase = pending[m.index].0;
            self.reach(phase);
            if phase == Phase::LoginPrompt {
                return Ok(m);
            }
        }
    }

    /// The shell: a /bin/sh of isotest's own, from whatever logged in (`login`).
    fn log_in(
        &mut self,
        login: &Match,
        credentials: Option<&Credentials>,
    ) -> Result<LoggedIn, Stop> {
        let patience = self.budget(self.timeouts.shell);
        let (prompt, rest) = (&login.text, &login.rest_of_line);
        reach_shell(
            self.console,
            prompt,
            rest,
            credentials,
            self.scale,
            patience,
        )
        .map_err(|e| {
            let login_line = format!("{prompt}{rest}").trim().to_owned();
            Stop::login(e, login_line, self.console)
        })
    }

    /// What the boot showed, once the shell answered.
    fn outcome(&self, login: &Match, logged_in: LoggedIn) -> BootOutcome {
        // getty's line is complete now (it may have come in pieces around the prompt).
        let login_line = self
            .console
            .text_between(login.start, self.console.position())
            .lines()
            .next()
            .unwrap_or("")
            .trim()
            .to_owned();
        BootOutcome {
            phases: self.timeline.phases().to_vec(),
            autologin_user: autologin_user_of(&login_line),
            login_evidence: self.console.lines_around(login.start),
            login_line,
            logged_in,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::signs::NO_BOOTABLE_DEVICE;
    use super::super::testing::play_guest;
    use super::*;

    /// OVMF (Debian's 2022.11) with an ISO whose El Torito catalog has no UEFI
    /// entry, the CD-ROM the one boot device (qemu/args.rs): it fails to load
    /// that option and starts its EFI shell.
    const OVMF_NOTHING_TO_BOOT: &[u8] = include_bytes!("../testdata/ovmf-nothing-to-boot.raw");

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
}
