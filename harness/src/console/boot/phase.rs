//! The phases of a boot, and the record of when each was reached.

use std::fmt;
use std::time::Duration;

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

/// Told of each phase as the boot reaches it (e.g. a progress display), so that
/// nobody else needs to watch the console.
pub type PhaseObserver<'a> = &'a (dyn Fn(Phase) + Sync);

/// The phases reached so far, with when (from power-on); each one recorded
/// is told to the observer. The one place a boot's phases are written.
pub(super) struct Timeline<'a> {
    phases: Vec<(Phase, Duration)>,
    observer: PhaseObserver<'a>,
}

impl<'a> Timeline<'a> {
    /// A boot at power-on.
    pub(super) fn start(observer: PhaseObserver<'a>) -> Timeline<'a> {
        let mut timeline = Timeline {
            phases: Vec::new(),
            observer,
        };
        timeline.reach(Phase::PowerOn, Duration::ZERO);
        timeline
    }

    pub(super) fn reach(&mut self, phase: Phase, at: Duration) {
        self.phases.push((phase, at));
        (self.observer)(phase);
    }

    /// The last phase reached: what a failure names.
    pub(super) fn reached(&self) -> Phase {
        self.phases.last().map_or(Phase::PowerOn, |(p, _)| *p)
    }

    pub(super) fn phases(&self) -> &[(Phase, Duration)] {
        &self.phases
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_are_ordered() {
        assert!(Phase::BootMenu < Phase::Kernel && Phase::LoginPrompt < Phase::Shell);
    }
}
