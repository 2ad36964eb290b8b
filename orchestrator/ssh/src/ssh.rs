//! SSH connections (libssh2 through the `ssh2` crate): host-key checking against the inventory's
//! known_hosts file, public-key authentication, remote commands with timeouts, and SFTP.
//!
//! One [`Connection`] per host; hosts are handled in parallel by giving each its own thread
//! ([`connect_all`]). Connecting is retried with backoff when the failure is the network's
//! (refused, timed out, reset); a host key that is unknown or changed, and a rejected key, are
//! never retried: they need a person. No message ever contains a key's contents or a passphrase.

use std::fmt;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine;
use ssh2::{CheckResult, HashType, HostKeyType, KnownHostFileKind, MethodType, Session, Sftp};

use crate::command::{CommandError, ShellLine};
use crate::inventory::HostSpec;
use crate::limits::{
    COMMAND_OUTPUT_BYTES_MAX, CONNECT_ATTEMPTS_MAX, CONNECT_TIMEOUT_MS, SSH_OP_TIMEOUT_MS,
    TRANSFER_BYTES_MAX, TRANSFER_CHUNK_BYTES,
};
use crate::retry::RetryPolicy;

/// Why an SSH operation failed. `login` is `user@host:port`.
#[derive(Debug, thiserror::Error)]
pub enum SshError {
    /// The host's name did not resolve to an address.
    #[error("{login}: cannot resolve {ssh_host}: {message}")]
    Resolve {
        /// The login.
        login: String,
        /// The name that did not resolve.
        ssh_host: String,
        /// The resolver's message.
        message: String,
    },
    /// Every connect attempt failed at the network level (refused, timed out, reset).
    #[error(
        "{login}: unreachable after {attempts} attempts (timeout {timeout_ms} ms each): {last_error}"
    )]
    Unreachable {
        /// The login.
        login: String,
        /// Attempts made.
        attempts: u32,
        /// The per-attempt connect timeout.
        timeout_ms: u64,
        /// The last attempt's error.
        last_error: String,
    },
    /// The server's host key is not in the known_hosts file: refused until a person accepts it.
    #[error(
        "{login}: host key refused: no entry for {host_pattern} in {known_hosts} \
         (server offered {key_type} {fingerprint}).\nTo accept it, first check that fingerprint \
         out of band, then run:\n    {accept_command}"
    )]
    UnknownHostKey {
        /// The login.
        login: String,
        /// How known_hosts names this host (`host` or `[host]:port`).
        host_pattern: String,
        /// The known_hosts file consulted.
        known_hosts: PathBuf,
        /// The offered key's type (`ssh-ed25519`, …).
        key_type: &'static str,
        /// The offered key's fingerprint (`SHA256:…`, as `ssh-keygen -l` prints it).
        fingerprint: String,
        /// The exact command that adds the key.
        accept_command: String,
    },
    /// The server's host key differs from the one in known_hosts: possibly an attack, refused.
    #[error(
        "{login}: HOST KEY CHANGED — REFUSING TO CONNECT. The {key_type} key offered by {host_pattern} \
         ({fingerprint}) does not match {known_hosts}. Someone may be intercepting the connection, \
         or the machine was reinstalled (CloudLab nodes get new keys when re-imaged). If you have \
         verified the new fingerprint, remove the old entry with:\n    {remove_command}\nthen accept \
         the new key as for an unknown host."
    )]
    HostKeyChanged {
        /// The login.
        login: String,
        /// How known_hosts names this host.
        host_pattern: String,
        /// The known_hosts file consulted.
        known_hosts: PathBuf,
        /// The offered key's type.
        key_type: &'static str,
        /// The offered key's fingerprint.
        fingerprint: String,
        /// The exact command that removes the old entry.
        remove_command: String,
    },
    /// The known_hosts file exists but could not be read or parsed.
    #[error("{login}: cannot read known_hosts file {known_hosts}: {message}")]
    KnownHostsUnreadable {
        /// The login.
        login: String,
        /// The file.
        known_hosts: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The identity (private key) file does not exist.
    #[error("{login}: identity file {identity_file} does not exist")]
    IdentityMissing {
        /// The login.
        login: String,
        /// The missing file.
        identity_file: PathBuf,
    },
    /// The server rejected public-key authentication with this identity.
    #[error(
        "{login}: the server rejected public-key authentication with {identity_file} ({message}); is its public key in the remote authorized_keys?"
    )]
    AuthRejected {
        /// The login.
        login: String,
        /// The identity file offered.
        identity_file: PathBuf,
        /// libssh2's message.
        message: String,
    },
    /// An SSH-level operation failed (channel, handshake, exec).
    #[error("{login}: {operation} failed: {message}")]
    Protocol {
        /// The login.
        login: String,
        /// What was being done.
        operation: &'static str,
        /// libssh2's message.
        message: String,
    },
    /// An operation did not finish in time.
    #[error("{login}: {operation} timed out after {timeout_ms} ms")]
    Timeout {
        /// The login.
        login: String,
        /// What was being done.
        operation: &'static str,
        /// The bound.
        timeout_ms: u64,
    },
    /// A remote command wrote more than [`COMMAND_OUTPUT_BYTES_MAX`] to one stream.
    #[error("{login}: command wrote more than {max_bytes} bytes to {stream}: {command}")]
    OutputTooLarge {
        /// The login.
        login: String,
        /// The command line.
        command: String,
        /// `stdout` or `stderr`.
        stream: &'static str,
        /// The bound.
        max_bytes: usize,
    },
    /// A remote command exited with a non-zero status where success was required.
    #[error("{login}: command exited with status {status}: {command}\n{stderr}")]
    CommandFailed {
        /// The login.
        login: String,
        /// The command line.
        command: String,
        /// Its exit status.
        status: i32,
        /// Its stderr (lossy UTF-8, bounded).
        stderr: String,
    },
    /// An SFTP operation on a remote path failed.
    #[error("{login}: SFTP {operation} {path}: {message}")]
    Sftp {
        /// The login.
        login: String,
        /// What was being done.
        operation: &'static str,
        /// The remote path.
        path: String,
        /// The error.
        message: String,
    },
    /// A local file could not be read or written during a transfer.
    #[error("{login}: local file {path}: {operation}: {source}")]
    LocalIo {
        /// The login.
        login: String,
        /// What was being done.
        operation: &'static str,
        /// The local path.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
    /// A file is larger than [`TRANSFER_BYTES_MAX`].
    #[error("{login}: {path} is {size_bytes} bytes, more than the transfer limit of {max_bytes}")]
    TooLarge {
        /// The login.
        login: String,
        /// The file.
        path: String,
        /// Its size.
        size_bytes: u64,
        /// The limit.
        max_bytes: u64,
    },
    /// A background process did not report its PID within the bound.
    #[error(
        "{login}: process in {run_dir} did not start (no pid file after {polls} polls): {detail}"
    )]
    ProcessDidNotStart {
        /// The login.
        login: String,
        /// The process's remote run directory.
        run_dir: String,
        /// Polls made.
        polls: u32,
        /// What the start script printed.
        detail: String,
    },
    /// A process could not be stopped, even by SIGKILL.
    #[error("{login}: process {pid} survived SIGKILL")]
    Unkillable {
        /// The login.
        login: String,
        /// The PID.
        pid: u32,
    },
    /// A command could not be built.
    #[error("{login}: {source}")]
    Command {
        /// The login.
        login: String,
        /// Why.
        source: CommandError,
    },
}

impl SshError {
    /// Whether the failure may go away by trying again (network trouble), as opposed to one
    /// that needs a person (host keys, credentials) or a fix (a failing command).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            SshError::Resolve { .. }
                | SshError::Unreachable { .. }
                | SshError::Protocol { .. }
                | SshError::Timeout { .. }
        )
    }
}

/// A private key's passphrase. Its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Passphrase(String);

impl Passphrase {
    /// Wraps a passphrase.
    pub fn new(secret: String) -> Self {
        Passphrase(secret)
    }
}

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Passphrase(<redacted>)")
    }
}

/// Timeouts, retries and credentials for connecting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectOptions {
    /// TCP connect timeout per attempt.
    pub connect_timeout_ms: u64,
    /// Timeout of one blocking SSH operation.
    pub op_timeout_ms: u32,
    /// Connect attempts and backoff.
    pub retry: RetryPolicy,
    /// Passphrase of the identity files, if they are encrypted.
    pub passphrase: Option<Passphrase>,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            connect_timeout_ms: CONNECT_TIMEOUT_MS,
            op_timeout_ms: SSH_OP_TIMEOUT_MS,
            retry: RetryPolicy::attempts(CONNECT_ATTEMPTS_MAX),
            passphrase: None,
        }
    }
}

/// What a remote command printed and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandOutput {
    /// Exit status (-1 when the remote side reported none, e.g. killed by a signal).
    pub status: i32,
    /// Everything written to stdout.
    pub stdout: Vec<u8>,
    /// Everything written to stderr.
    pub stderr: Vec<u8>,
}

impl CommandOutput {
    /// stdout as (lossy) UTF-8.
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

/// An authenticated SSH session to one host.
pub struct Connection {
    host: HostSpec,
    options: ConnectOptions,
    session: Session,
    sftp: Option<Sftp>,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("host", &self.host.name)
            .field("login", &self.host.login())
            .finish()
    }
}

/// Connects to every host at once, one thread per host; results in the order of `hosts`.
pub fn connect_all(
    hosts: &[HostSpec],
    options: &ConnectOptions,
) -> Vec<Result<Connection, SshError>> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = hosts
            .iter()
            .map(|host| scope.spawn(move || Connection::open(host, options)))
            .collect();
        handles
            .into_iter()
            .zip(hosts)
            .map(|(handle, host)| {
                handle.join().unwrap_or_else(|_| {
                    Err(SshError::Protocol {
                        login: host.login(),
                        operation: "connect thread",
                        message: "panicked".into(),
                    })
                })
            })
            .collect()
    })
}

impl Connection {
    /// Connects, checks the host key and authenticates, retrying network failures.
    pub fn open(host: &HostSpec, options: &ConnectOptions) -> Result<Connection, SshError> {
        let session = options
            .retry
            .run(|_| connect_once(host, options), SshError::is_transient)
            .map_err(|(err, attempts)| match err {
                SshError::Unreachable {
                    login,
                    timeout_ms,
                    last_error,
                    ..
                } => SshError::Unreachable {
                    login,
                    attempts,
                    timeout_ms,
                    last_error,
                },
                other => other,
            })?;
        Ok(Connection {
            host: host.clone(),
            options: options.clone(),
            session,
            sftp: None,
        })
    }

    /// The host this connection reaches.
    pub fn host(&self) -> &HostSpec {
        &self.host
    }

    /// Replaces the session with a fresh one (after the old one failed).
    pub fn reconnect(&mut self) -> Result<(), SshError> {
        *self = Connection::open(&self.host, &self.options)?;
        Ok(())
    }

    /// Runs `line` through the remote shell; returns its output whatever its exit status.
    ///
    /// Bounded by `timeout_ms` in total (checked between reads; one blocking read is bounded by
    /// the same value) and by [`COMMAND_OUTPUT_BYTES_MAX`] per stream.
    pub fn run(&mut self, line: &ShellLine, timeout_ms: u64) -> Result<CommandOutput, SshError> {
        let login = self.host.login();
        let deadline = Instant::now() + Duration::from_millis(timeout_ms);
        self.session
            .set_timeout(u32::try_from(timeout_ms).unwrap_or(u32::MAX).max(1));
        let result = (|| {
            let mut channel = self.exec_under_sh(line, &login)?;
            let stdout = read_bounded(&mut channel, deadline, timeout_ms, &login, line, "stdout")?;
            let stderr = read_bounded(
                &mut channel.stderr(),
                deadline,
                timeout_ms,
                &login,
                line,
                "stderr",
            )?;
            channel
                .wait_close()
                .map_err(|e| protocol(&login, "close channel", &e))?;
            let status = channel.exit_status().unwrap_or(-1);
            Ok(CommandOutput {
                status,
                stdout,
                stderr,
            })
        })();
        self.session.set_timeout(self.options.op_timeout_ms);
        result
    }

    /// Opens a channel and starts `line` on it. Every line runs under /bin/sh whatever the login
    /// shell is, so quoting and builtins behave the same on every machine.
    fn exec_under_sh(&mut self, line: &ShellLine, login: &str) -> Result<ssh2::Channel, SshError> {
        let mut channel = self
            .session
            .channel_session()
            .map_err(|e| protocol(login, "open channel", &e))?;
        let wrapped = ShellLine::new()
            .op("exec /bin/sh -c")
            .text(line.as_str())
            .map_err(|source| SshError::Command {
                login: login.to_string(),
                source,
            })?;
        channel
            .exec(wrapped.as_str())
            .map_err(|e| protocol(login, "exec", &e))?;
        Ok(channel)
    }

    /// Starts `line` and holds a dialogue with it over one channel: `rounds` times, sends a
    /// newline and reads one line of its stdout (at most [`DIALOGUE_LINE_BYTES_MAX`] bytes),
    /// timing each exchange with `clock`. Returns `(sent, reply, received)` per round. One
    /// channel for every round keeps channel set-up out of the timed exchanges (the clock probe).
    pub fn dialogue(
        &mut self,
        line: &ShellLine,
        rounds: u32,
        timeout_ms: u64,
        clock: fn() -> i64,
    ) -> Result<Vec<(i64, String, i64)>, SshError> {
        let login = self.host.login();
        let deadline = Instant::now() + Duration::from_millis(timeout_ms);
        self.session
            .set_timeout(u32::try_from(timeout_ms).unwrap_or(u32::MAX).max(1));
        let result = (|| {
            let mut channel = self.exec_under_sh(line, &login)?;
            let mut replies = Vec::new();
            for _ in 0..rounds {
                let sent = clock();
                channel
                    .write_all(b"\n")
                    .and_then(|()| channel.flush())
                    .map_err(|e| protocol_io(&login, "write dialogue", &e))?;
                let reply = read_line(&mut channel, deadline, timeout_ms, &login)?;
                replies.push((sent, reply, clock()));
            }
            channel
                .send_eof()
                .map_err(|e| protocol(&login, "end dialogue", &e))?;
            read_bounded(&mut channel, deadline, timeout_ms, &login, line, "stdout")?;
            channel
                .wait_close()
                .map_err(|e| protocol(&login, "close channel", &e))?;
            Ok(replies)
        })();
        self.session.set_timeout(self.options.op_timeout_ms);
        result
    }

    /// Runs `line` and requires exit status 0.
    pub fn run_checked(
        &mut self,
        line: &ShellLine,
        timeout_ms: u64,
    ) -> Result<CommandOutput, SshError> {
        let output = self.run(line, timeout_ms)?;
        if output.status != 0 {
            let stderr = String::from_utf8_lossy(&output.stderr[..output.stderr.len().min(4096)])
                .into_owned();
            return Err(SshError::CommandFailed {
                login: self.host.login(),
                command: line.as_str().to_string(),
                status: output.status,
                stderr,
            });
        }
        Ok(output)
    }

    fn sftp(&mut self) -> Result<&Sftp, SshError> {
        if self.sftp.is_none() {
            let sftp = self
                .session
                .sftp()
                .map_err(|e| protocol(&self.host.login(), "open SFTP", &e))?;
            self.sftp = Some(sftp);
        }
        Ok(self.sftp.as_ref().expect("set just above"))
    }

    /// Copies a local file to `remote_path` (created or truncated, mode `mode`); returns bytes sent.
    pub fn upload(&mut self, local: &Path, remote_path: &str, mode: i32) -> Result<u64, SshError> {
        let login = self.host.login();
        let local_io = |operation, source| SshError::LocalIo {
            login: login.clone(),
            operation,
            path: local.to_path_buf(),
            source,
        };
        let mut source = std::fs::File::open(local).map_err(|e| local_io("open", e))?;
        let size_bytes = source.metadata().map_err(|e| local_io("stat", e))?.len();
        check_size(&login, &local.display().to_string(), size_bytes)?;
        let sftp_err = |operation, e: ssh2::Error| SshError::Sftp {
            login: login.clone(),
            operation,
            path: remote_path.to_string(),
            message: e.to_string(),
        };
        let sftp_io = |operation, e: std::io::Error| SshError::Sftp {
            login: login.clone(),
            operation,
            path: remote_path.to_string(),
            message: e.to_string(),
        };
        let flags = ssh2::OpenFlags::WRITE | ssh2::OpenFlags::CREATE | ssh2::OpenFlags::TRUNCATE;
        let mut remote = self
            .sftp()?
            .open_mode(Path::new(remote_path), flags, mode, ssh2::OpenType::File)
            .map_err(|e| sftp_err("create", e))?;
        let mut buffer = vec![0u8; TRANSFER_CHUNK_BYTES];
        let mut sent_bytes = 0u64;
        loop {
            let n = source.read(&mut buffer).map_err(|e| local_io("read", e))?;
            if n == 0 {
                break;
            }
            remote
                .write_all(&buffer[..n])
                .map_err(|e| sftp_io("write", e))?;
            sent_bytes += n as u64;
            check_size(&login, &local.display().to_string(), sent_bytes)?;
        }
        // fsync@openssh.com makes the bytes durable before the rename that publishes them; a
        // server without the extension still gets the checksum check after the upload.
        let _ = remote.fsync();
        remote.close().map_err(|e| sftp_err("close", e))?;
        Ok(sent_bytes)
    }

    /// Copies `remote_path` to a local file (created or truncated); returns bytes received.
    pub fn download(&mut self, remote_path: &str, local: &Path) -> Result<u64, SshError> {
        let login = self.host.login();
        let sftp_err = |operation, e: ssh2::Error| SshError::Sftp {
            login: login.clone(),
            operation,
            path: remote_path.to_string(),
            message: e.to_string(),
        };
        let local_io = |operation, source| SshError::LocalIo {
            login: login.clone(),
            operation,
            path: local.to_path_buf(),
            source,
        };
        let sftp_io = |operation, e: std::io::Error| SshError::Sftp {
            login: login.clone(),
            operation,
            path: remote_path.to_string(),
            message: e.to_string(),
        };
        let mut remote = self
            .sftp()?
            .open(Path::new(remote_path))
            .map_err(|e| sftp_err("open", e))?;
        let size_bytes = remote
            .stat()
            .map_err(|e| sftp_err("stat", e))?
            .size
            .unwrap_or(0);
        check_size(&login, remote_path, size_bytes)?;
        let mut sink = std::fs::File::create(local).map_err(|e| local_io("create", e))?;
        let mut buffer = vec![0u8; TRANSFER_CHUNK_BYTES];
        let mut received_bytes = 0u64;
        loop {
            let n = remote.read(&mut buffer).map_err(|e| sftp_io("read", e))?;
            if n == 0 {
                break;
            }
            sink.write_all(&buffer[..n])
                .map_err(|e| local_io("write", e))?;
            received_bytes += n as u64;
            check_size(&login, remote_path, received_bytes)?;
        }
        sink.sync_all().map_err(|e| local_io("sync", e))?;
        Ok(received_bytes)
    }
}

fn check_size(login: &str, path: &str, size_bytes: u64) -> Result<(), SshError> {
    if size_bytes > TRANSFER_BYTES_MAX {
        return Err(SshError::TooLarge {
            login: login.to_string(),
            path: path.to_string(),
            size_bytes,
            max_bytes: TRANSFER_BYTES_MAX,
        });
    }
    Ok(())
}

fn protocol(login: &str, operation: &'static str, err: &ssh2::Error) -> SshError {
    SshError::Protocol {
        login: login.to_string(),
        operation,
        message: err.message().to_string(),
    }
}

/// Longest line read in a [`Connection::dialogue`].
pub const DIALOGUE_LINE_BYTES_MAX: usize = 256;

/// Reads up to and without the next newline, one byte at a time (the peer answers one line per
/// request, so nothing after the newline is waiting).
fn read_line(
    reader: &mut impl Read,
    deadline: Instant,
    timeout_ms: u64,
    login: &str,
) -> Result<String, SshError> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    let what = ReadWhat {
        operation: "dialogue",
        read: "read dialogue",
    };
    loop {
        let n = read_before(reader, &mut byte, deadline, timeout_ms, login, what)?;
        if n == 0 || byte[0] == b'\n' {
            return Ok(String::from_utf8_lossy(&line).into_owned());
        }
        if line.len() >= DIALOGUE_LINE_BYTES_MAX {
            return Err(SshError::Protocol {
                login: login.to_string(),
                operation: "read dialogue",
                message: format!("a reply line is longer than {DIALOGUE_LINE_BYTES_MAX} bytes"),
            });
        }
        line.push(byte[0]);
    }
}

/// How a read names itself in errors: the operation that timed out, and the read that failed.
#[derive(Clone, Copy)]
struct ReadWhat {
    operation: &'static str,
    read: &'static str,
}

/// One read into `buffer`, unless `deadline` has passed; a socket timeout is a [`SshError::Timeout`]
/// too.
fn read_before(
    reader: &mut impl Read,
    buffer: &mut [u8],
    deadline: Instant,
    timeout_ms: u64,
    login: &str,
    what: ReadWhat,
) -> Result<usize, SshError> {
    let timeout = || SshError::Timeout {
        login: login.to_string(),
        operation: what.operation,
        timeout_ms,
    };
    if Instant::now() > deadline {
        return Err(timeout());
    }
    reader.read(buffer).map_err(|e| {
        if e.kind() == std::io::ErrorKind::TimedOut {
            timeout()
        } else {
            protocol_io(login, what.read, &e)
        }
    })
}

fn protocol_io(login: &str, operation: &'static str, e: &std::io::Error) -> SshError {
    SshError::Protocol {
        login: login.to_string(),
        operation,
        message: e.to_string(),
    }
}

fn read_bounded(
    reader: &mut impl Read,
    deadline: Instant,
    timeout_ms: u64,
    login: &str,
    line: &ShellLine,
    stream: &'static str,
) -> Result<Vec<u8>, SshError> {
    let mut out = Vec::new();
    let mut buffer = [0u8; 8192];
    let what = ReadWhat {
        operation: "remote command",
        read: "read command output",
    };
    loop {
        let n = read_before(reader, &mut buffer, deadline, timeout_ms, login, what)?;
        if n == 0 {
            return Ok(out);
        }
        if out.len() + n > COMMAND_OUTPUT_BYTES_MAX {
            return Err(SshError::OutputTooLarge {
                login: login.to_string(),
                command: line.as_str().to_string(),
                stream,
                max_bytes: COMMAND_OUTPUT_BYTES_MAX,
            });
        }
        out.extend_from_slice(&buffer[..n]);
    }
}

fn connect_once(host: &HostSpec, options: &ConnectOptions) -> Result<Session, SshError> {
    let login = host.login();
    let stream = tcp_connect(host, options.connect_timeout_ms)?;
    let mut session = Session::new().map_err(|e| protocol(&login, "create session", &e))?;
    session.set_tcp_stream(stream);
    session.set_timeout(options.op_timeout_ms);
    if let Some(prefs) = host_key_preference(&host.known_hosts, &host_pattern(host)) {
        session
            .method_pref(MethodType::HostKey, &prefs)
            .map_err(|e| protocol(&login, "set host key preference", &e))?;
    }
    session.handshake().map_err(|e| SshError::Unreachable {
        login: login.clone(),
        attempts: 1,
        timeout_ms: options.connect_timeout_ms,
        last_error: format!("SSH handshake: {}", e.message()),
    })?;
    verify_host_key(&session, host)?;
    authenticate(&session, host, options)?;
    Ok(session)
}

fn tcp_connect(host: &HostSpec, timeout_ms: u64) -> Result<TcpStream, SshError> {
    let login = host.login();
    let addresses: Vec<SocketAddr> = (host.ssh_host.as_str(), host.port)
        .to_socket_addrs()
        .map_err(|e| SshError::Resolve {
            login: login.clone(),
            ssh_host: host.ssh_host.clone(),
            message: e.to_string(),
        })?
        .collect();
    let mut last_error = format!("{} resolved to no address", host.ssh_host);
    for address in addresses {
        match TcpStream::connect_timeout(&address, Duration::from_millis(timeout_ms)) {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Err(err) => last_error = format!("{address}: {err}"),
        }
    }
    Err(SshError::Unreachable {
        login,
        attempts: 1,
        timeout_ms,
        last_error,
    })
}

/// How OpenSSH's known_hosts names this host: `host` on port 22, `[host]:port` otherwise.
pub fn host_pattern(host: &HostSpec) -> String {
    if host.port == 22 {
        host.ssh_host.clone()
    } else {
        format!("[{}]:{}", host.ssh_host, host.port)
    }
}

/// The host-key algorithms to ask for, from the key types a known_hosts file lists for
/// `pattern` in plain (unhashed) entries; `None` when there are none (libssh2's default order).
fn host_key_preference(known_hosts: &Path, pattern: &str) -> Option<String> {
    let text = std::fs::read_to_string(known_hosts).ok()?;
    let mut algorithms: Vec<&'static str> = Vec::new();
    for line in text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let mut fields = line.split_whitespace();
        let (Some(hosts), Some(key_type)) = (fields.next(), fields.next()) else {
            continue;
        };
        if !hosts.split(',').any(|h| h == pattern) {
            continue;
        }
        let names: &[&'static str] = match key_type {
            "ssh-ed25519" => &["ssh-ed25519"],
            "ecdsa-sha2-nistp256" => &["ecdsa-sha2-nistp256"],
            "ecdsa-sha2-nistp384" => &["ecdsa-sha2-nistp384"],
            "ecdsa-sha2-nistp521" => &["ecdsa-sha2-nistp521"],
            "ssh-rsa" => &["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"],
            _ => &[],
        };
        for name in names {
            if !algorithms.contains(name) {
                algorithms.push(name);
            }
        }
    }
    (!algorithms.is_empty()).then(|| algorithms.join(","))
}

fn key_type_name(kind: HostKeyType) -> &'static str {
    match kind {
        HostKeyType::Rsa => "ssh-rsa",
        HostKeyType::Dss => "ssh-dss",
        HostKeyType::Ecdsa256 => "ecdsa-sha2-nistp256",
        HostKeyType::Ecdsa384 => "ecdsa-sha2-nistp384",
        HostKeyType::Ecdsa521 => "ecdsa-sha2-nistp521",
        HostKeyType::Ed25519 => "ssh-ed25519",
        HostKeyType::Unknown => "unknown",
    }
}

fn keyscan_type(kind: HostKeyType) -> &'static str {
    match kind {
        HostKeyType::Rsa => "rsa",
        HostKeyType::Dss => "dsa",
        HostKeyType::Ecdsa256 | HostKeyType::Ecdsa384 | HostKeyType::Ecdsa521 => "ecdsa",
        HostKeyType::Ed25519 | HostKeyType::Unknown => "ed25519",
    }
}

fn verify_host_key(session: &Session, host: &HostSpec) -> Result<(), SshError> {
    let login = host.login();
    let (key, kind) = session.host_key().ok_or_else(|| SshError::Protocol {
        login: login.clone(),
        operation: "host key",
        message: "server sent none".into(),
    })?;
    let fingerprint = session
        .host_key_hash(HashType::Sha256)
        .map(|hash| {
            format!(
                "SHA256:{}",
                base64::engine::general_purpose::STANDARD_NO_PAD.encode(hash)
            )
        })
        .unwrap_or_else(|| "SHA256:?".into());
    let mut known = session
        .known_hosts()
        .map_err(|e| protocol(&login, "known_hosts", &e))?;
    if host.known_hosts.exists() {
        known
            .read_file(&host.known_hosts, KnownHostFileKind::OpenSSH)
            .map_err(|e| SshError::KnownHostsUnreadable {
                login: login.clone(),
                known_hosts: host.known_hosts.clone(),
                message: e.message().to_string(),
            })?;
    }
    let pattern = host_pattern(host);
    let known_hosts_quoted = crate::command::shell_quote(&host.known_hosts.display().to_string());
    match known.check_port(&host.ssh_host, host.port, key) {
        CheckResult::Match => Ok(()),
        CheckResult::Mismatch => Err(SshError::HostKeyChanged {
            login,
            remove_command: format!(
                "ssh-keygen -R {} -f {known_hosts_quoted}",
                crate::command::shell_quote(&pattern)
            ),
            host_pattern: pattern,
            known_hosts: host.known_hosts.clone(),
            key_type: key_type_name(kind),
            fingerprint,
        }),
        CheckResult::NotFound | CheckResult::Failure => Err(SshError::UnknownHostKey {
            login,
            accept_command: format!(
                "ssh-keyscan -p {} -t {} {} >> {known_hosts_quoted}",
                host.port,
                keyscan_type(kind),
                crate::command::shell_quote(&host.ssh_host)
            ),
            host_pattern: pattern,
            known_hosts: host.known_hosts.clone(),
            key_type: key_type_name(kind),
            fingerprint,
        }),
    }
}

fn authenticate(
    session: &Session,
    host: &HostSpec,
    options: &ConnectOptions,
) -> Result<(), SshError> {
    if !host.identity_file.is_file() {
        return Err(SshError::IdentityMissing {
            login: host.login(),
            identity_file: host.identity_file.clone(),
        });
    }
    let passphrase = options.passphrase.as_ref().map(|p| p.0.as_str());
    let result = session.userauth_pubkey_file(&host.user, None, &host.identity_file, passphrase);
    match result {
        Ok(()) if session.authenticated() => Ok(()),
        Ok(()) => Err(SshError::AuthRejected {
            login: host.login(),
            identity_file: host.identity_file.clone(),
            message: "not authenticated".into(),
        }),
        Err(e) => Err(SshError::AuthRejected {
            login: host.login(),
            identity_file: host.identity_file.clone(),
            message: e.message().to_string(),
        }),
    }
}
