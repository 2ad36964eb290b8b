//! Every bound the orchestrator keeps, in one place, each a named constant with its unit last.
//!
//! The values are sized for real testbeds (CloudLab nodes over the Internet) and for the loopback
//! sshd instances of the tests alike: a remote node that does not answer within these bounds is
//! reported as lost, never waited on forever.

/// TCP connect timeout for one attempt to reach a node's sshd.
pub const CONNECT_TIMEOUT_MS: u64 = 5_000;
/// Attempts to connect (TCP + SSH handshake + authentication) before a node is declared unreachable.
pub const CONNECT_ATTEMPTS_MAX: u32 = 3;
/// Backoff before the second connect attempt; doubled per further attempt.
pub const RETRY_BACKOFF_MS_INITIAL: u64 = 200;
/// Cap on one backoff sleep.
pub const RETRY_BACKOFF_MS_MAX: u64 = 2_000;
/// Default timeout of one blocking SSH operation (a read, a write, a channel request).
pub const SSH_OP_TIMEOUT_MS: u32 = 15_000;
/// Default wall-clock bound for one remote command (from exec to exit status).
pub const COMMAND_TIMEOUT_MS: u64 = 30_000;
/// Bound for a remote build from a source bundle (`cargo build --release` on an Arm core).
pub const REMOTE_BUILD_TIMEOUT_MS: u64 = 3_600_000;
/// Attempts for an idempotent remote operation (checksum, upload, download) before giving up.
pub const IDEMPOTENT_ATTEMPTS_MAX: u32 = 3;
/// Largest stdout or stderr kept from one remote command; the rest is an error, not truncated.
pub const COMMAND_OUTPUT_BYTES_MAX: usize = 1 << 20;
/// Largest file moved over SFTP in either direction (interval logs, binaries, source bundles).
pub const TRANSFER_BYTES_MAX: u64 = 1 << 30;
/// SFTP copy buffer.
pub const TRANSFER_CHUNK_BYTES: usize = 64 * 1024;
/// Hosts in one inventory.
pub const HOSTS_MAX: usize = 256;
/// Cores declared for one host (BlueField-2 has 8 Arm cores; large x86 hosts up to a few hundred).
pub const HOST_CORES_MAX: u32 = 1_024;
/// Longest host name in an inventory (it names local directories).
pub const HOST_NAME_BYTES_MAX: usize = 63;
/// Role processes in one run.
pub const LAUNCHES_MAX: usize = 1_024;
/// Output files one role process may declare.
pub const LAUNCH_OUTPUTS_MAX: usize = 64;
/// Polls of a remote pid file after a background start before the start is declared failed
/// (20 s at the interval below: a start takes milliseconds, but a loaded 2-core machine once
/// took more than 5 s to fork the wrapper and its `sleep` polls; the bound only matters when
/// the start really failed).
pub const PID_FILE_POLLS_MAX: u32 = 400;
/// Interval between polls of the remote pid file (in the remote start script).
pub const PID_FILE_POLL_INTERVAL_MS: u64 = 50;
/// How long a role process gets after SIGTERM before SIGKILL.
pub const STOP_GRACE_MS: u64 = 3_000;
/// Interval between liveness polls while waiting for a process to exit.
pub const PROCESS_POLL_INTERVAL_MS: u64 = 100;
/// Readiness checks per role process before the start phase fails.
pub const READINESS_POLLS_MAX: u32 = 100;
/// Interval between readiness checks.
pub const READINESS_POLL_INTERVAL_MS: u64 = 100;
/// Samples of a remote clock per host; the one with the smallest round trip is kept.
pub const CLOCK_SAMPLES: u32 = 5;
/// Largest offset of a host's clock from the orchestrator's that the start time is shifted for;
/// beyond it the run is refused (the machines' clocks are not synchronised, so their records'
/// timestamps cannot be compared either).
pub const CLOCK_OFFSET_MS_MAX: u64 = 1_000;
/// Largest uncertainty (half the best round trip) of a measured clock offset: a shifted start
/// time is only as good as the offset it is shifted by.
pub const CLOCK_ERROR_MS_MAX: u64 = 200;
/// Input files one role process may be given (its configuration, another role's ready file).
pub const LAUNCH_INPUTS_MAX: usize = 16;
/// How far in the future the common start time is placed after the last role is ready.
pub const START_LEAD_MS: u64 = 500;
/// Longest warm-up or measurement phase accepted by a run configuration.
pub const PHASE_MS_MAX: u64 = 24 * 3_600_000;
/// How long collection waits for role processes to exit on their own after the measurement.
pub const EXIT_WAIT_MS_MAX: u64 = 10_000;
/// Longest stop grace or client exit wait a run configuration accepts.
pub const STOP_WAIT_MS_MAX: u64 = 3_600_000;
/// Interval between liveness polls of every role process during warm-up and measurement.
pub const LIVENESS_POLL_INTERVAL_MS: u64 = 200;
/// Previous attempts of one run point kept side by side before a rerun refuses to start.
pub const ATTEMPTS_KEPT_MAX: u32 = 100;

const _: () = {
    assert!(CONNECT_ATTEMPTS_MAX >= 1 && CONNECT_ATTEMPTS_MAX <= 10);
    assert!(IDEMPOTENT_ATTEMPTS_MAX >= 1 && IDEMPOTENT_ATTEMPTS_MAX <= 10);
    assert!(RETRY_BACKOFF_MS_INITIAL <= RETRY_BACKOFF_MS_MAX);
    assert!(CONNECT_TIMEOUT_MS > 0 && SSH_OP_TIMEOUT_MS > 0);
    assert!(COMMAND_TIMEOUT_MS >= SSH_OP_TIMEOUT_MS as u64);
    assert!(TRANSFER_CHUNK_BYTES > 0 && (TRANSFER_CHUNK_BYTES as u64) <= TRANSFER_BYTES_MAX);
    assert!(PID_FILE_POLLS_MAX > 0 && READINESS_POLLS_MAX > 0);
    assert!((PID_FILE_POLLS_MAX as u64) * PID_FILE_POLL_INTERVAL_MS < COMMAND_TIMEOUT_MS);
    assert!(STOP_GRACE_MS >= PROCESS_POLL_INTERVAL_MS);
    assert!(CLOCK_SAMPLES >= 1);
    assert!(CLOCK_ERROR_MS_MAX <= CLOCK_OFFSET_MS_MAX && CLOCK_ERROR_MS_MAX < START_LEAD_MS);
    assert!(LAUNCH_INPUTS_MAX >= 2 && LAUNCH_INPUTS_MAX <= LAUNCH_OUTPUTS_MAX);
    assert!(HOSTS_MAX <= LAUNCHES_MAX);
    assert!(STOP_GRACE_MS <= STOP_WAIT_MS_MAX && EXIT_WAIT_MS_MAX <= STOP_WAIT_MS_MAX);
};
