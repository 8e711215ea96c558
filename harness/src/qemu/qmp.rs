//! QMP through the typed `qapi` crate: the handshake, the guest's run state for
//! failure reports, and a screendump. Every command and its
//! answer (and the events QEMU sent meanwhile) go to the trial's `qmp.log`.

use super::QemuError;
use serde::Serialize;
use std::fs::File;
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

pub struct Qmp {
    stream: UnixStream,
    log: QmpLog,
}

const QMP_TIMEOUT: Duration = Duration::from_secs(10);

/// `qmp.log`: one line per message, `>` from isotest and `<` from QEMU, each
/// with the seconds since QEMU connected. Best effort: a log that cannot be
/// written must not fail the trial.
struct QmpLog {
    file: Option<File>,
    since: Instant,
}

impl QmpLog {
    fn line(&mut self, direction: char, message: &serde_json::Value) {
        if let Some(file) = self.file.as_mut() {
            let _ = writeln!(file, "{:8.3} {direction} {message}", self.since.elapsed().as_secs_f64());
        }
    }
}

/// The format QEMU wrote a screendump in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DumpFormat {
    Png,
    Ppm,
}

impl Qmp {
    /// Reads QEMU's greeting and negotiates capabilities; logs to `log` if given.
    pub fn connect(stream: UnixStream, log: Option<&Path>) -> Result<Qmp, QemuError> {
        stream
            .set_read_timeout(Some(QMP_TIMEOUT))
            .map_err(|source| QemuError::Io { context: "QMP socket".into(), source })?;
        let file = log.and_then(|path| {
            File::create(path).map_err(|e| tracing::warn!("cannot write {}: {e}", path.display())).ok()
        });
        let mut this = Qmp { stream, log: QmpLog { file, since: Instant::now() } };
        let mut qmp = qapi::Qmp::from_stream(&this.stream);
        let greeting = qmp.read_capabilities().map_err(|e| QemuError::Qmp(format!("greeting: {e}")))?;
        this.log.line('<', &serde_json::json!({ "QMP": greeting }));
        this.execute(&qapi::qmp::qmp_capabilities { enable: None }).map_err(|e| QemuError::Qmp(format!("handshake: {e}")))?;
        Ok(this)
    }

    /// Runs one command, logging it, its answer and the events that came first.
    fn execute<C>(&mut self, command: &C) -> Result<C::Ok, qapi::ExecuteError>
    where
        C: qapi::Command,
        C::Ok: Serialize,
    {
        self.log.line('>', &serde_json::json!({ "execute": C::NAME, "arguments": command }));
        let mut qmp = qapi::Qmp::from_stream(&self.stream);
        let answer = qmp.execute(command);
        for event in qmp.events() {
            self.log.line('<', &serde_json::to_value(&event).unwrap_or_default());
        }
        let logged = match &answer {
            Ok(ok) => serde_json::json!({ "return": ok }),
            Err(qapi::ExecuteError::Qapi(e)) => serde_json::json!({ "error": { "class": e.class, "desc": e.desc } }),
            Err(qapi::ExecuteError::Io(e)) => serde_json::json!({ "io-error": e.to_string() }),
        };
        self.log.line('<', &logged);
        answer
    }

    /// The VM's run state as QEMU names it: `running`, `paused`, `shutdown`,
    /// `internal-error`, `guest-panicked`, ...
    pub fn run_state(&mut self) -> Result<String, QemuError> {
        let status = self.execute(&qapi::qmp::query_status {}).map_err(|e| QemuError::Qmp(format!("query-status: {e}")))?;
        Ok(serde_json::to_value(status.status).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default())
    }

    /// Dumps the primary display to `file`: as PNG where QEMU can (7.1 and
    /// later, built with libpng), else as PPM, QEMU's only format before 7.1,
    /// when QEMU refuses the `format` argument or its value. Says which it wrote.
    pub fn screendump(&mut self, file: &Path) -> Result<DumpFormat, QemuError> {
        let filename = file.to_string_lossy().into_owned();
        let png = qapi::qmp::screendump { filename: filename.clone(), device: None, head: None, format: Some(qapi::qmp::ImageFormat::png) };
        match self.execute(&png) {
            Ok(_) => return Ok(DumpFormat::Png),
            Err(qapi::ExecuteError::Qapi(e)) => tracing::debug!("screendump as PNG refused ({}); asking for PPM", e.desc),
            Err(e) => return Err(QemuError::Qmp(format!("screendump: {e}"))),
        }
        let ppm = qapi::qmp::screendump { filename, device: None, head: None, format: None };
        self.execute(&ppm).map_err(|e| QemuError::Qmp(format!("screendump: {e}")))?;
        Ok(DumpFormat::Ppm)
    }
}
