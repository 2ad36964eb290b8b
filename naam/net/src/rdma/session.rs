//! Connecting readers to a memory owner: the owner's [`Exporter`] registers its regions and
//! accepts queue-pair handshakes on a TCP port; a reader calls [`connect_reader`] and gets a
//! [`OneSidedReader`] whose READs the owner's RNIC serves without the owner's CPU.
//!
//! The handshake is [`crate::remote::exchange_qp_info`] over TCP: the owner creates a queue pair
//! per connection and keeps it for its own lifetime (at most [`EXPORT_CONNECTIONS_MAX`]).

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use super::{Connection, OneSidedReader, RdmaContext, RdmaError, ReadFailure, RemoteRegion};
use crate::remote::exchange_qp_info;
use crate::remote::{ExportedRegion, ReadStatus, ReadVerbs, RemoteError, VerbsResult};

/// How long a handshake may take (connect, exchange, queue-pair transitions).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Readers one exporter accepts over its lifetime.
pub const EXPORT_CONNECTIONS_MAX: usize = 64;
/// How often the accept loop checks for a stop request.
const ACCEPT_POLL: Duration = Duration::from_millis(20);

/// One region to export: its id, where it is mapped, and its length.
#[derive(Clone, Copy, Debug)]
pub struct RegionToExport {
    /// The region's id.
    pub region: u32,
    /// Its first byte in this process.
    pub addr: *const u8,
    /// Its length.
    pub len: usize,
}

struct Shared {
    stop: AtomicBool,
    connected: AtomicU64,
    last_error: Mutex<Option<String>>,
}

/// Registered regions and a handshake listener; deregisters and stops on drop.
pub struct Exporter {
    regions: Vec<ExportedRegion>,
    addr: SocketAddr,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    // Dropped after the thread (and its connections) stopped: field order.
    _registrations: Vec<RemoteRegion<'static>>,
}

impl std::fmt::Debug for Exporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exporter")
            .field("addr", &self.addr)
            .field("regions", &self.regions.len())
            .finish()
    }
}

impl Exporter {
    /// Registers every region for remote READs and listens for handshakes on `listen`.
    ///
    /// # Safety
    ///
    /// Every region's `addr .. addr + len` must stay mapped until the exporter is dropped.
    pub unsafe fn start(
        ctx: &RdmaContext,
        regions: &[RegionToExport],
        listen: SocketAddr,
    ) -> Result<Exporter, RdmaError> {
        let mut registrations = Vec::with_capacity(regions.len());
        let mut exported = Vec::with_capacity(regions.len());
        for r in regions {
            // SAFETY: forwarded from the caller.
            let registered = unsafe { ctx.register_raw(r.addr, r.len) }?;
            exported.push(ExportedRegion {
                region: r.region,
                addr: registered.addr(),
                len: registered.len() as u64,
                rkey: registered.rkey(),
            });
            registrations.push(registered);
        }
        let listener = TcpListener::bind(listen).map_err(|source| RdmaError::Io {
            what: "bind the handshake listener",
            source,
        })?;
        let addr = listener.local_addr().map_err(|source| RdmaError::Io {
            what: "handshake listener address",
            source,
        })?;
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            connected: AtomicU64::new(0),
            last_error: Mutex::new(None),
        });
        let thread_shared = Arc::clone(&shared);
        let thread_ctx = ctx.clone();
        let thread = std::thread::Builder::new()
            .name("naam-rdma-export".into())
            .spawn(move || accept_loop(&listener, &thread_ctx, &thread_shared))
            .map_err(|source| RdmaError::Io {
                what: "spawn the handshake thread",
                source,
            })?;
        Ok(Exporter {
            regions: exported,
            addr,
            shared,
            thread: Some(thread),
            _registrations: registrations,
        })
    }

    /// The regions as readers must name them (publish these).
    pub fn regions(&self) -> &[ExportedRegion] {
        &self.regions
    }

    /// Where readers connect (publish this).
    pub fn handshake_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Readers connected so far, and the last handshake error.
    pub fn connections(&self) -> (u64, Option<String>) {
        let error = self
            .shared
            .last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        (self.shared.connected.load(Ordering::Relaxed), error)
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn accept_loop(listener: &TcpListener, ctx: &RdmaContext, shared: &Shared) {
    let mut connections: Vec<Connection> = Vec::new();
    if listener.set_nonblocking(true).is_err() {
        return;
    }
    while !shared.stop.load(Ordering::Acquire) && connections.len() < EXPORT_CONNECTIONS_MAX {
        match listener.accept() {
            Ok((stream, _)) => match serve_handshake(stream, ctx) {
                Ok(conn) => {
                    connections.push(conn);
                    shared.connected.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    *shared.last_error.lock().unwrap_or_else(|p| p.into_inner()) =
                        Some(e.to_string());
                }
            },
            Err(_) => std::thread::sleep(ACCEPT_POLL),
        }
    }
    // Keep the queue pairs until the exporter stops: readers READ through them.
    while !shared.stop.load(Ordering::Acquire) {
        std::thread::sleep(ACCEPT_POLL);
    }
    drop(connections);
}

fn serve_handshake(mut stream: TcpStream, ctx: &RdmaContext) -> Result<Connection, RdmaError> {
    configure(&stream)?;
    let prepared = ctx.create_qp()?;
    let remote = exchange_qp_info(&mut stream, &prepared.info())?;
    prepared.connect(&remote)
}

fn configure(stream: &TcpStream) -> Result<(), RdmaError> {
    let io = |source| RdmaError::Io {
        what: "configure the handshake connection",
        source,
    };
    stream.set_nonblocking(false).map_err(io)?;
    stream
        .set_read_timeout(Some(HANDSHAKE_TIMEOUT))
        .map_err(io)?;
    stream
        .set_write_timeout(Some(HANDSHAKE_TIMEOUT))
        .map_err(io)
}

/// Connects a queue pair to the exporter at `handshake` and returns a reader of its regions.
pub fn connect_reader(
    ctx: &RdmaContext,
    handshake: SocketAddr,
) -> Result<OneSidedReader, RdmaError> {
    let mut stream =
        TcpStream::connect_timeout(&handshake, HANDSHAKE_TIMEOUT).map_err(|source| {
            RdmaError::Io {
                what: "connect to the memory owner's handshake port",
                source,
            }
        })?;
    configure(&stream)?;
    let prepared = ctx.create_qp()?;
    let remote = exchange_qp_info(&mut stream, &prepared.info())?;
    prepared.connect(&remote)?.into_reader()
}

impl ReadVerbs for OneSidedReader {
    fn capacity(&self) -> usize {
        super::READS_INFLIGHT_MAX
    }

    fn post_read(&mut self, rkey: u32, remote_addr: u64, len: u32) -> Result<u64, RemoteError> {
        OneSidedReader::post_read(self, rkey, remote_addr, len)
            .map(|t| t.0)
            .map_err(|e| RemoteError::Verbs(e.to_string()))
    }

    fn poll(&mut self, on: &mut dyn FnMut(u64, VerbsResult<'_>)) -> Result<usize, RemoteError> {
        OneSidedReader::poll(self, |c| {
            let result = c
                .result
                .map_err(|ReadFailure { status, vendor_err }| ReadStatus { status, vendor_err });
            on(c.token.0, result)
        })
        .map_err(|e| RemoteError::Verbs(e.to_string()))
    }
}
