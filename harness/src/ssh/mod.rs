//! SSH logins with ssh2 over QEMU's 127.0.0.1 forward: the host key is checked
//! against pinned fingerprints before any authentication, and the password of a
//! password login is a `Secret` that never prints.

use base64::Engine;
use ssh2::Session;
use std::fmt;
use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// A password; its `Debug` and `Display` print `***`.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Secret {
        Secret(value)
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[derive(Debug, Clone)]
pub enum Auth {
    /// An OpenSSH private key file (its `.pub` beside it).
    Key(PathBuf),
    Password(Secret),
}

impl Auth {
    pub fn method(&self) -> &'static str {
        match self {
            Auth::Key(_) => "key",
            Auth::Password(_) => "password",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SshError {
    #[error("cannot connect to 127.0.0.1:{port}")]
    Connect {
        port: u16,
        #[source]
        source: std::io::Error,
    },
    #[error("no SSH banner within {secs} s on 127.0.0.1:{port} (is the guest's network up?)")]
    NoBanner { port: u16, secs: u64 },
    #[error("SSH handshake: {0}")]
    Handshake(String),
    #[error("host key mismatch: the server offered {offered}, expected one of: {}", pinned.join(", "))]
    HostKeyMismatch {
        offered: String,
        pinned: Vec<String>,
    },
    #[error("{method} login as {user} refused: {detail}")]
    Auth {
        user: String,
        method: &'static str,
        detail: String,
    },
    #[error("running `{command}` over SSH: {detail}")]
    Exec { command: String, detail: String },
}

/// `SHA256:<base64>` as `ssh-keygen -l` prints it.
pub fn fingerprint(sha256: &[u8]) -> String {
    format!(
        "SHA256:{}",
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(sha256)
    )
}

/// A logged-in session.
pub struct SshSession {
    session: Session,
    /// The fingerprint of the host key the server offered (and that was pinned).
    pub host_key: String,
}

/// Connects to 127.0.0.1:`port`, checks the host key against `pins`, and logs in.
/// Retries the connection and handshake until `patience` runs out, because the
/// forward accepts connections before the guest's network is up.
pub fn login(
    port: u16,
    pins: Option<&[String]>,
    user: &str,
    auth: &Auth,
    patience: Duration,
) -> Result<SshSession, SshError> {
    let deadline = Instant::now() + patience;
    let session =
        loop {
            let attempt = handshake(port, Duration::from_secs(10).min(patience));
            match attempt {
                Ok(session) => break session,
                Err(
                    SshError::NoBanner { .. } | SshError::Handshake(_) | SshError::Connect { .. },
                ) if Instant::now() + Duration::from_secs(1) < deadline => continue,
                Err(e) => return Err(e),
            }
        };
    let offered = session
        .host_key_hash(ssh2::HashType::Sha256)
        .map(fingerprint)
        .ok_or_else(|| SshError::Handshake("the server sent no host key".into()))?;
    // Unpinned (None) only where nothing could say which key is right; the
    // port is a loopback forward to the trial's own QEMU.
    if let Some(pins) = pins {
        if !pins.iter().any(|p| p == &offered) {
            return Err(SshError::HostKeyMismatch {
                offered,
                pinned: pins.to_vec(),
            });
        }
    }
    let refused = |e: ssh2::Error| SshError::Auth {
        user: user.into(),
        method: auth.method(),
        detail: e.message().into(),
    };
    match auth {
        Auth::Key(private) => session
            .userauth_pubkey_file(user, None, private, None)
            .map_err(refused)?,
        Auth::Password(secret) => session
            .userauth_password(user, secret.expose())
            .map_err(refused)?,
    }
    if !session.authenticated() {
        return Err(SshError::Auth {
            user: user.into(),
            method: auth.method(),
            detail: "not authenticated".into(),
        });
    }
    Ok(SshSession {
        session,
        host_key: offered,
    })
}

/// Connects to 127.0.0.1:`port` and reads the server's identification line
/// (`SSH-2.0-...`), then hangs up before any key exchange. For a socket-activated
/// sshd this is the first connection that starts it (and, on NixOS, makes its
/// host keys). Retries until `patience` runs out: the forward accepts
/// connections before the guest's network is up.
pub fn banner(port: u16, patience: Duration) -> Result<String, SshError> {
    let deadline = Instant::now() + patience;
    loop {
        let attempt = read_banner(port, Duration::from_secs(10).min(patience));
        match attempt {
            Ok(line) => return Ok(line),
            // A refused or at once closed connection comes back in
            // microseconds: pace the retries instead of spinning on a core
            // the guest needs. (A retry interval, not a wait for an event.)
            Err(SshError::NoBanner { .. } | SshError::Connect { .. })
                if Instant::now() + Duration::from_secs(1) < deadline =>
            {
                std::thread::sleep(Duration::from_millis(500))
            }
            Err(e) => return Err(e),
        }
    }
}

/// One connection: the first line the server sends, if it starts with `SSH-`.
fn read_banner(port: u16, timeout: Duration) -> Result<String, SshError> {
    use std::io::BufRead;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let tcp = TcpStream::connect_timeout(&addr, timeout)
        .map_err(|source| SshError::Connect { port, source })?;
    tcp.set_read_timeout(Some(timeout))
        .map_err(|source| SshError::Connect { port, source })?;
    let mut line = String::new();
    let silent = SshError::NoBanner {
        port,
        secs: timeout.as_secs(),
    };
    match std::io::BufReader::new(tcp).take(256).read_line(&mut line) {
        Ok(_) if line.starts_with("SSH-") => Ok(line.trim().to_owned()),
        Ok(_) | Err(_) => Err(silent),
    }
}

/// One TCP connection and SSH handshake; a silent server is `NoBanner`.
fn handshake(port: u16, timeout: Duration) -> Result<Session, SshError> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let tcp = TcpStream::connect_timeout(&addr, timeout)
        .map_err(|source| SshError::Connect { port, source })?;
    let mut session = Session::new().map_err(|e| SshError::Handshake(e.to_string()))?;
    session.set_timeout(timeout.as_millis() as u32);
    session.set_tcp_stream(tcp);
    session.handshake().map_err(|e| match e.code() {
        // libssh2 reports a banner that never came as a timeout or a closed socket.
        ssh2::ErrorCode::Session(-9)
        | ssh2::ErrorCode::Session(-13)
        | ssh2::ErrorCode::Session(-43) => SshError::NoBanner {
            port,
            secs: timeout.as_secs(),
        },
        _ => SshError::Handshake(e.to_string()),
    })?;
    Ok(session)
}

impl SshSession {
    /// Runs a POSIX shell command, whatever the user's login shell is;
    /// returns its stdout and exit status.
    pub fn exec(&self, command: &str) -> Result<(String, i32), SshError> {
        let fail = |e: ssh2::Error| SshError::Exec {
            command: command.into(),
            detail: e.to_string(),
        };
        let mut channel = self.session.channel_session().map_err(fail)?;
        channel.exec(&through_any_shell(command)).map_err(fail)?;
        let mut out = String::new();
        channel
            .read_to_string(&mut out)
            .map_err(|e| SshError::Exec {
                command: command.into(),
                detail: e.to_string(),
            })?;
        channel.wait_close().map_err(fail)?;
        Ok((out, channel.exit_status().map_err(fail)?))
    }
}

/// sshd runs a remote command as `<login shell> -c <command>`, so the login
/// shell parses it first: fish, elvish, nushell or tcsh would not take POSIX
/// syntax. What every one of them parses alike is `exec`, an external command
/// and one single-quoted argument free of `'`, `\\` and `!` (fish and tcsh give
/// those a meaning even inside single quotes); any other command travels
/// base64-encoded inside such an argument. `exec`, so that the exit status is
/// /bin/sh's own (elvish turns a failed command into its own status 2).
fn through_any_shell(command: &str) -> String {
    let plain = command
        .chars()
        .all(|c| c != '\'' && c != '\\' && c != '!' && c != '\n');
    if plain {
        return format!("exec /bin/sh -c '{command}'");
    }
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(command);
    format!("exec /bin/sh -c 'eval \"$(echo {encoded} | base64 -d)\"'")
}

/// Why no throwaway client key could be made.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Not a `#[source]`: the hint to install it follows what the system said.
    #[error("ssh-keygen: {error} (install openssh-client)")]
    Start { error: std::io::Error },
    #[error("ssh-keygen failed: {stderr}")]
    Failed { stderr: String },
    #[error("read public key")]
    ReadPublic(#[source] std::io::Error),
}

/// Makes a throwaway ed25519 client key in `dir` (with ssh-keygen), a file
/// of its own for each login; returns the private key's path and the public
/// key line.
pub fn throwaway_key(dir: &std::path::Path) -> Result<(PathBuf, String), KeyError> {
    let private = (0..)
        .map(|i| dir.join(format!("id_ed25519_{i}")))
        .find(|path| !path.exists())
        .expect("an unused name");
    let out = std::process::Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "isotest-throwaway",
            "-f",
        ])
        .arg(&private)
        .output()
        .map_err(|error| KeyError::Start { error })?;
    if !out.status.success() {
        return Err(KeyError::Failed {
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    let public =
        std::fs::read_to_string(private.with_extension("pub")).map_err(KeyError::ReadPublic)?;
    Ok((private, public.trim().to_owned()))
}

/// A free TCP port on 127.0.0.1 for QEMU's forward.
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("hunter2".into());
        assert_eq!(
            format!("{s} {s:?} {:?}", Auth::Password(s.clone())),
            "*** *** Password(***)"
        );
    }

    /// Each shell a NixOS user may log in with runs the wrapped command, plain
    /// or encoded, as /bin/sh would (those of them this host has).
    #[test]
    fn commands_run_whatever_the_login_shell() {
        let commands = [
            "id -un; echo \"a b\" $((6 * 7))",
            "printf '%s\\n' \"it's\" '!x'; (exit 3)",
        ];
        for command in commands {
            let want = std::process::Command::new("/bin/sh")
                .args(["-c", command])
                .output()
                .expect("/bin/sh");
            for shell in ["sh", "bash", "zsh", "fish", "elvish", "tcsh", "mksh"] {
                let Some(path) = ["/bin", "/usr/bin"]
                    .iter()
                    .map(|d| std::path::Path::new(d).join(shell))
                    .find(|p| p.exists())
                else {
                    continue;
                };
                let got = std::process::Command::new(&path)
                    .args(["-c", &super::through_any_shell(command)])
                    .output()
                    .expect("a shell");
                assert_eq!(
                    (got.stdout.clone(), got.status.code()),
                    (want.stdout.clone(), want.status.code()),
                    "{shell}: {command}: {}",
                    String::from_utf8_lossy(&got.stderr)
                );
            }
        }
    }

    #[test]
    fn each_login_gets_a_key_of_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let (first, first_public) = throwaway_key(dir.path()).expect("ssh-keygen");
        let (second, second_public) = throwaway_key(dir.path()).expect("ssh-keygen");
        assert_ne!(first, second);
        assert_ne!(first_public, second_public);
        assert!(first.is_file() && second.is_file());
    }

    #[test]
    fn fingerprints_look_like_ssh_keygen() {
        assert_eq!(
            fingerprint(&[0u8; 32]),
            "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
        );
    }
}
