//! QMP through the typed `qapi` crate: the handshake, the guest's run state for
//! failure reports, and a screendump. Every command and its
//! answer (and the events QEMU sent meanwhile) go to the trial's `qmp.log`.

use super::error::{QemuError, QmpError};
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
            let _ = writeln!(
                file,
                "{:8.3} {direction} {message}",
                self.since.elapsed().as_secs_f64()
            );
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
            .map_err(|source| QemuError::Io {
                context: "QMP socket".into(),
                source,
            })?;
        let file = log.and_then(|path| {
            File::create(path)
                .map_err(|e| tracing::warn!("cannot write {}: {e}", path.display()))
                .ok()
        });
        let mut this = Qmp {
            stream,
            log: QmpLog {
                file,
                since: Instant::now(),
            },
        };
        let mut qmp = qapi::Qmp::from_stream(&this.stream);
        let greeting = qmp
            .read_capabilities()
            .map_err(|e| QmpError::io("greeting", e))?;
        this.log.line('<', &serde_json::json!({ "QMP": greeting }));
        this.execute(&qapi::qmp::qmp_capabilities { enable: None })
            .map_err(|e| QmpError::of("handshake", e))?;
        Ok(this)
    }

    /// Runs one command, logging it, its answer and the events that came first.
    pub(super) fn execute<C>(&mut self, command: &C) -> Result<C::Ok, qapi::ExecuteError>
    where
        C: qapi::Command,
        C::Ok: Serialize,
    {
        self.log.line(
            '>',
            &serde_json::json!({ "execute": C::NAME, "arguments": command }),
        );
        let mut qmp = qapi::Qmp::from_stream(&self.stream);
        let answer = qmp.execute(command);
        for event in qmp.events() {
            self.log
                .line('<', &serde_json::to_value(&event).unwrap_or_default());
        }
        let logged = match &answer {
            Ok(ok) => serde_json::json!({ "return": ok }),
            Err(qapi::ExecuteError::Qapi(e)) => {
                serde_json::json!({ "error": { "class": e.class, "desc": e.desc } })
            }
            Err(qapi::ExecuteError::Io(e)) => serde_json::json!({ "io-error": e.to_string() }),
        };
        self.log.line('<', &logged);
        answer
    }

    /// The VM's run state as QEMU names it: `running`, `paused`, `shutdown`,
    /// `internal-error`, `guest-panicked`, ...
    pub fn run_state(&mut self) -> Result<String, QemuError> {
        let status = self
            .execute(&qapi::qmp::query_status {})
            .map_err(|e| QmpError::of("query-status", e))?;
        Ok(qapi_name(&status.status).unwrap_or_default())
    }

    /// The messages QEMU sent that no command read (events such as SHUTDOWN),
    /// up to the end of the stream or until `within` passes without one: for
    /// a QEMU that is exiting, whose last words say why. Each is logged.
    pub fn remaining_messages(&mut self, within: Duration) -> Vec<serde_json::Value> {
        use std::io::BufRead;
        let _ = self.stream.set_read_timeout(Some(within));
        let mut messages = Vec::new();
        for line in std::io::BufReader::new(&self.stream).lines() {
            // A timeout, a reset connection or the end of the stream all end the reading.
            let Ok(line) = line else { break };
            let Ok(message) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            self.log.line('<', &message);
            messages.push(message);
        }
        let _ = self.stream.set_read_timeout(Some(QMP_TIMEOUT));
        messages
    }

    /// Dumps the primary display to `file`: as PNG where QEMU can (7.1 and
    /// later, built with libpng), else as PPM, QEMU's only format before 7.1,
    /// when QEMU refuses the `format` argument or its value. Says which it wrote.
    pub fn screendump(&mut self, file: &Path) -> Result<DumpFormat, QemuError> {
        let filename = file.to_string_lossy().into_owned();
        let png = qapi::qmp::screendump {
            filename: filename.clone(),
            device: None,
            head: None,
            format: Some(qapi::qmp::ImageFormat::png),
        };
        match self.execute(&png) {
            Ok(_) => return Ok(DumpFormat::Png),
            Err(qapi::ExecuteError::Qapi(e)) => {
                tracing::debug!("screendump as PNG refused ({}); asking for PPM", e.desc)
            }
            Err(e) => return Err(QmpError::of("screendump", e).into()),
        }
        let ppm = qapi::qmp::screendump {
            filename,
            device: None,
            head: None,
            format: None,
        };
        self.execute(&ppm)
            .map_err(|e| QmpError::of("screendump", e))?;
        Ok(DumpFormat::Ppm)
    }
}

/// The name QEMU gives a value of one of its enums (`running`, `completed`).
pub(super) fn qapi_name(value: &impl Serialize) -> Option<String> {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
}

impl QmpError {
    /// `step` failed as the `qapi` crate tells it: QEMU refused the command, or
    /// the exchange itself failed.
    pub(super) fn of(step: &'static str, error: qapi::ExecuteError) -> QmpError {
        match error {
            qapi::ExecuteError::Qapi(e) => QmpError::Refused {
                step,
                class: format!("{:?}", e.class),
                desc: e.desc,
            },
            qapi::ExecuteError::Io(e) => QmpError::io(step, e),
        }
    }

    /// `step` failed on the socket, or on what came through it: the `qapi`
    /// crate hands a JSON error over inside an I/O error, whence it is taken back.
    fn io(step: &'static str, error: std::io::Error) -> QmpError {
        let holds_json = error
            .get_ref()
            .is_some_and(|inner| inner.is::<serde_json::Error>());
        if !holds_json {
            return QmpError::Io {
                step,
                source: error,
            };
        }
        let kind = error.kind();
        match error
            .into_inner()
            .map(|inner| inner.downcast::<serde_json::Error>())
        {
            Some(Ok(json)) if json.is_data() => QmpError::Unexpected {
                step,
                source: *json,
            },
            Some(Ok(json)) => QmpError::Json {
                step,
                source: *json,
            },
            Some(Err(other)) => QmpError::Io {
                step,
                source: std::io::Error::new(kind, other),
            },
            None => QmpError::Io {
                step,
                source: kind.into(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};

    /// What QEMU 7 says first on its QMP socket.
    const GREETING: &str = r#"{"QMP": {"version": {"qemu": {"micro": 0, "minor": 0, "major": 7}, "package": ""}, "capabilities": ["oob"]}}"#;

    /// A QMP server that answers each request line with the next of `answers`
    /// and hands back what it was asked.
    fn qmp_server(
        answers: Vec<&'static str>,
    ) -> (UnixStream, std::thread::JoinHandle<Vec<serde_json::Value>>) {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let server = std::thread::spawn(move || {
            let mut writer = theirs.try_clone().unwrap();
            writeln!(writer, "{GREETING}").unwrap();
            let mut asked = Vec::new();
            let mut lines = BufReader::new(theirs).lines();
            for answer in answers {
                let line = lines.next().unwrap().unwrap();
                asked.push(serde_json::from_str(&line).unwrap());
                writeln!(writer, "{answer}").unwrap();
            }
            asked
        });
        (ours, server)
    }

    /// QEMU before 7.1 has no `format` argument (and one without libpng
    /// refuses `png`): the screendump is asked again without it, as PPM, and
    /// the log keeps both requests and both answers.
    #[test]
    fn a_qemu_without_png_gets_asked_for_ppm() {
        let refusal =
            r#"{"error": {"class": "GenericError", "desc": "Parameter 'format' is unexpected"}}"#;
        let (stream, server) = qmp_server(vec![r#"{"return": {}}"#, refusal, r#"{"return": {}}"#]);
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("qmp.log");
        let mut qmp = Qmp::connect(stream, Some(&log)).unwrap();
        assert_eq!(
            qmp.screendump(Path::new("/art/screen.dump")).unwrap(),
            DumpFormat::Ppm
        );
        drop(qmp);
        let asked = server.join().unwrap();
        assert_eq!(
            asked[1]["arguments"],
            serde_json::json!({"filename": "/art/screen.dump", "format": "png"})
        );
        assert_eq!(
            asked[2]["arguments"],
            serde_json::json!({"filename": "/art/screen.dump"})
        );
        let log = std::fs::read_to_string(log).unwrap();
        let lines: Vec<&str> = log
            .lines()
            .map(|l| l.trim_start().split_once(' ').unwrap().1)
            .collect();
        assert_eq!(lines.len(), 7, "{log}");
        assert!(lines[0].starts_with(r#"< {"QMP":"#), "{log}");
        assert_eq!(
            lines[1],
            r#"> {"arguments":{},"execute":"qmp_capabilities"}"#
        );
        assert_eq!(
            lines[4],
            r#"< {"error":{"class":"GenericError","desc":"Parameter 'format' is unexpected"}}"#
        );
        assert_eq!(lines[6], r#"< {"return":{}}"#);
    }

    #[test]
    fn the_last_words_of_an_exiting_qemu_are_read_and_logged() {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let mut writer = theirs.try_clone().unwrap();
        let (connected, wait_connected) = std::sync::mpsc::channel::<()>();
        let server = std::thread::spawn(move || {
            writeln!(writer, "{GREETING}").unwrap();
            let mut lines = BufReader::new(theirs).lines();
            lines.next().unwrap().unwrap();
            writeln!(writer, r#"{{"return": {{}}}}"#).unwrap();
            // Later, as when the guest resets long after the handshake:
            wait_connected.recv().unwrap();
            writeln!(
                writer,
                r#"{{"event": "SHUTDOWN", "data": {{"guest": true, "reason": "guest-reset"}}}}"#
            )
            .unwrap();
            // QEMU exits: the stream ends.
        });
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("qmp.log");
        let mut qmp = Qmp::connect(ours, Some(&log)).unwrap();
        connected.send(()).unwrap();
        server.join().unwrap();
        let messages = qmp.remaining_messages(Duration::from_secs(10));
        assert_eq!(
            messages,
            vec![
                serde_json::json!({"event": "SHUTDOWN", "data": {"guest": true, "reason": "guest-reset"}})
            ]
        );
        assert!(std::fs::read_to_string(log)
            .unwrap()
            .contains("guest-reset"));
    }

    #[test]
    fn a_png_capable_qemu_is_asked_once() {
        let (stream, server) = qmp_server(vec![r#"{"return": {}}"#, r#"{"return": {}}"#]);
        let mut qmp = Qmp::connect(stream, None).unwrap();
        assert_eq!(
            qmp.screendump(Path::new("/art/screen.dump")).unwrap(),
            DumpFormat::Png
        );
        drop(qmp);
        assert_eq!(server.join().unwrap().len(), 2);
    }

    /// The error `connect` meets when QEMU greets with `greeting` and then
    /// hangs up.
    fn connect_after(greeting: &'static str) -> QemuError {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let mut writer = theirs.try_clone().unwrap();
        writeln!(writer, "{greeting}").unwrap();
        drop((writer, theirs));
        Qmp::connect(ours, None).err().expect("no QMP")
    }

    #[test]
    fn a_greeting_that_is_not_json_or_not_qmp_is_told_apart() {
        let e = connect_after("Welcome!");
        assert!(
            matches!(
                &e,
                QemuError::Qmp(QmpError::Json {
                    step: "greeting",
                    ..
                })
            ),
            "{e:?}"
        );
        assert!(
            crate::error::chain(&e).starts_with("QMP: greeting: QEMU's answer is not JSON: "),
            "{}",
            crate::error::chain(&e)
        );
        let e = connect_after(r#"{"hello": 1}"#);
        assert!(
            matches!(
                &e,
                QemuError::Qmp(QmpError::Unexpected {
                    step: "greeting",
                    ..
                })
            ),
            "{e:?}"
        );
    }

    #[test]
    fn a_qemu_that_hangs_up_fails_the_handshake_on_the_socket() {
        let e = connect_after(GREETING);
        // The command cannot be written (a broken pipe) or its answer never comes.
        assert!(
            matches!(
                &e,
                QemuError::Qmp(QmpError::Io {
                    step: "handshake",
                    ..
                })
            ),
            "{e:?}"
        );
    }

    #[test]
    fn a_refusal_carries_qemus_class_and_description_once() {
        let refusal = r#"{"error": {"class": "GenericError", "desc": "no display"}}"#;
        let (stream, server) = qmp_server(vec![r#"{"return": {}}"#, refusal, refusal]);
        let mut qmp = Qmp::connect(stream, None).unwrap();
        let e = qmp.screendump(Path::new("/art/screen.dump")).unwrap_err();
        drop(qmp);
        server.join().unwrap();
        assert!(
            matches!(&e, QemuError::Qmp(QmpError::Refused { class, desc, .. })
                if class == "GenericError" && desc == "no display"),
            "{e:?}"
        );
        assert_eq!(
            crate::error::chain(&e),
            "QMP: screendump: QEMU answered GenericError: no display"
        );
    }
}
