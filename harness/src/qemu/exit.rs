//! Why a QEMU that was running exited on its own: from the QMP events it sent
//! last (SHUTDOWN with its reason, GUEST_PANICKED), its exit status and its
//! stderr. QEMU runs with `-no-reboot`, so a guest that reboots makes QEMU exit
//! with a SHUTDOWN event whose reason is `guest-reset`: that is how a reboot loop
//! or a triple fault shows, and it must be named, not left as "the console
//! closed".

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

/// What is known about a QEMU that exited.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QemuExit {
    /// The reason of QEMU's last SHUTDOWN event (`guest-reset`, `guest-shutdown`, ...).
    pub shutdown: Option<String>,
    /// Whether QEMU sent GUEST_PANICKED (a pvpanic device or a firmware-reported panic).
    pub panicked: bool,
    /// The process's exit code, if it exited.
    pub code: Option<i32>,
    /// The signal that killed it, if one did.
    pub signal: Option<i32>,
    /// What QEMU printed on stderr.
    pub stderr: String,
}

impl QemuExit {
    /// Gathers the facts; `events` are QMP messages read after the serial
    /// console closed, `status` is `None` when QEMU has not exited (yet).
    pub fn new(events: &[serde_json::Value], status: Option<ExitStatus>, stderr: &str) -> QemuExit {
        let named = |name: &'static str| events.iter().filter(move |e| e["event"] == name);
        let shutdown = named("SHUTDOWN")
            .next_back()
            .map(|e| e["data"]["reason"].as_str().unwrap_or("unknown").to_owned());
        QemuExit {
            shutdown,
            panicked: named("GUEST_PANICKED").next().is_some(),
            code: status.and_then(|s| s.code()),
            signal: status.and_then(|s| s.signal()),
            stderr: stderr.trim().to_owned(),
        }
    }

    /// One sentence on why QEMU exited, the guest's doing first (it is the
    /// verdict on the ISO), then the host's.
    pub fn describe(&self) -> String {
        let why = if self.panicked {
            "the guest panicked (QEMU's GUEST_PANICKED event)".to_owned()
        } else if let Some(reason) = &self.shutdown {
            match reason.as_str() {
                "guest-reset" => {
                    "the guest rebooted (QEMU's SHUTDOWN event says guest-reset: a reboot, a reset or a triple fault; \
                     QEMU runs with -no-reboot, so a reboot ends the run)"
                        .to_owned()
                }
                "guest-shutdown" => "the guest powered off (QEMU's SHUTDOWN event says guest-shutdown)".to_owned(),
                "guest-panic" => "the guest panicked (QEMU's SHUTDOWN event says guest-panic)".to_owned(),
                "host-signal" => "QEMU was stopped by a signal from the host (SHUTDOWN reason host-signal)".to_owned(),
                other => format!("QEMU shut the machine down (SHUTDOWN reason {other})"),
            }
        } else if let Some(signal) = self.signal {
            match signal {
                libc::SIGKILL => "QEMU was killed by signal 9 (SIGKILL: the kernel's OOM killer or another process)".to_owned(),
                libc::SIGSEGV | libc::SIGABRT | libc::SIGBUS | libc::SIGILL | libc::SIGFPE => {
                    format!("QEMU crashed (signal {signal}, {})", signal_name(signal))
                }
                _ => format!("QEMU was killed by signal {signal} ({})", signal_name(signal)),
            }
        } else if let Some(code) = self.code {
            format!("QEMU exited with status {code} without saying why on QMP")
        } else {
            "QEMU closed the serial console and did not exit".to_owned()
        };
        match last_lines(&self.stderr, 5) {
            Some(stderr) => format!("{why}; QEMU's stderr: {stderr}"),
            None => why,
        }
    }

    /// Whether the guest did it (reboot, power-off, panic), as opposed to
    /// the host (a signal, a crash of QEMU itself, an unexplained exit).
    pub fn by_guest(&self) -> bool {
        self.panicked
            || matches!(
                self.shutdown.as_deref(),
                Some("guest-reset" | "guest-shutdown" | "guest-panic")
            )
    }
}

fn last_lines(text: &str, n: usize) -> Option<String> {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    (!lines.is_empty()).then(|| lines[lines.len().saturating_sub(n)..].join(" | "))
}

fn signal_name(signal: i32) -> &'static str {
    match signal {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGTERM => "SIGTERM",
        _ => "a signal",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn exited(code: i32) -> Option<ExitStatus> {
        Some(ExitStatus::from_raw(code << 8))
    }

    #[test]
    fn a_reboot_is_named_from_the_shutdown_event() {
        // What QEMU 7.2 and 10.0 send under -no-reboot when the guest resets.
        let events = [
            json!({"event": "SHUTDOWN", "data": {"guest": true, "reason": "guest-reset"}, "timestamp": {}}),
        ];
        let exit = QemuExit::new(&events, exited(0), "");
        assert!(
            exit.describe().starts_with("the guest rebooted"),
            "{}",
            exit.describe()
        );
        assert!(exit.by_guest());
    }

    #[test]
    fn a_power_off_and_a_panic_are_the_guests() {
        let off = QemuExit::new(
            &[json!({"event": "SHUTDOWN", "data": {"guest": true, "reason": "guest-shutdown"}})],
            exited(0),
            "",
        );
        assert!(off.describe().starts_with("the guest powered off"));
        let panic = QemuExit::new(
            &[json!({"event": "GUEST_PANICKED", "data": {"action": "pause"}})],
            None,
            "",
        );
        assert!(panic.describe().starts_with("the guest panicked"));
        assert!(off.by_guest() && panic.by_guest());
    }

    #[test]
    fn a_signal_or_a_crash_is_the_hosts_and_says_which() {
        let killed = QemuExit::new(&[], Some(ExitStatus::from_raw(libc::SIGKILL)), "");
        assert!(
            killed.describe().contains("signal 9 (SIGKILL"),
            "{}",
            killed.describe()
        );
        let crashed = QemuExit::new(&[], Some(ExitStatus::from_raw(libc::SIGSEGV)), "");
        assert_eq!(crashed.describe(), "QEMU crashed (signal 11, SIGSEGV)");
        assert!(!killed.by_guest() && !crashed.by_guest());
    }

    #[test]
    fn an_exit_status_comes_with_the_end_of_stderr() {
        let stderr = "warning: one\n\nqemu-system-x86_64: fatal: something\n";
        let exit = QemuExit::new(&[], exited(1), stderr);
        assert_eq!(
            exit.describe(),
            "QEMU exited with status 1 without saying why on QMP; QEMU's stderr: warning: one | qemu-system-x86_64: fatal: something"
        );
    }

    #[test]
    fn the_last_shutdown_counts() {
        let events = [
            json!({"event": "STOP"}),
            json!({"event": "SHUTDOWN", "data": {"guest": false, "reason": "host-signal"}}),
        ];
        let exit = QemuExit::new(&events, exited(0), "");
        assert!(exit
            .describe()
            .starts_with("QEMU was stopped by a signal from the host"));
        assert!(!exit.by_guest());
    }
}
