//! QMP through the typed `qapi` crate: the handshake, the guest's run state for
//! failure reports, and a clean `quit`.

use super::QemuError;
use std::os::unix::net::UnixStream;
use std::time::Duration;

pub struct Qmp {
    stream: UnixStream,
}

const QMP_TIMEOUT: Duration = Duration::from_secs(10);

impl Qmp {
    /// Reads QEMU's greeting and negotiates capabilities.
    pub fn connect(stream: UnixStream) -> Result<Qmp, QemuError> {
        stream
            .set_read_timeout(Some(QMP_TIMEOUT))
            .map_err(|source| QemuError::Io { context: "QMP socket".into(), source })?;
        let mut qmp = qapi::Qmp::from_stream(&stream);
        qmp.handshake().map_err(|e| QemuError::Qmp(format!("handshake: {e}")))?;
        Ok(Qmp { stream })
    }

    /// The VM's run state as QEMU names it: `running`, `paused`, `shutdown`,
    /// `internal-error`, `guest-panicked`, ...
    pub fn run_state(&mut self) -> Result<String, QemuError> {
        let mut qmp = qapi::Qmp::from_stream(&self.stream);
        let status = qmp.execute(&qapi::qmp::query_status {}).map_err(|e| QemuError::Qmp(format!("query-status: {e}")))?;
        Ok(serde_json::to_value(status.status).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default())
    }
}
