//! The user-space eSwitch: a dispatcher thread between an ingress socket and the host's and
//! NIC's own sockets, for runs without BPF privileges.
//!
//! It makes the kernel program's decision ([`super::decide`]) but is not free the way a real
//! eSwitch is: every datagram takes an extra loopback hop (ingress → dispatcher → location) and
//! the dispatcher burns host CPU. Results record which eSwitch ran ([`Steering::kind`]).
//!
//! Forwarding hides the client's address from the location, so the dispatcher writes the
//! datagram's source address into a well-formed Invoke's reply address unless the sender named
//! an address on its own source host (a client sending from a steering port names the port it
//! receives on, `crate::steer_port`); any other address the sender put there is overwritten:
//! the locations trust the dispatcher (and only it) to name where a reply goes, so a forged
//! reply address can never aim replies at a third party's host (no reflection). Other
//! datagrams are
//! forwarded unchanged to host socket 0; datagrams coming *from* a location's socket are dropped
//! (and counted), so a reply sent to the ingress by mistake cannot loop.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use naam_engine::RuleTable;
use naam_engine::wire::FRAME_BYTES_MAX;

use super::{
    Applied, EswitchError, GroupShape, SteerCounts, Steering, Verdict, decide, invoke_layout,
};
use crate::addr::reply_addr;
use crate::batch::{RecvBatch, SendBatch};
use crate::clock::monotonic_now_ns;
use crate::error::NetError;
use crate::steer_port::{STEER_PORT_BASE_DEFAULT, key_of_port};
use crate::udp::{BATCH_MAX, UdpConfig, UdpSocket};

/// How long an idle dispatcher waits for datagrams before it checks for a stop request.
pub const DISPATCH_POLL_INTERVAL: Duration = Duration::from_millis(2);

/// Where the user-space eSwitch listens and forwards.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserEswitchConfig {
    /// The ingress socket clients send to (the server's public address).
    pub ingress: UdpConfig,
    /// Host sockets, in group order (index `i` = host socket `i`).
    pub host: Vec<SocketAddr>,
    /// NIC sockets, in group order (index `host.len() + j` = NIC socket `j`).
    pub nic: Vec<SocketAddr>,
}

#[derive(Debug)]
struct Shared {
    rules: Mutex<Arc<RuleTable>>,
    generation: AtomicU64,
    counters: [AtomicU64; 4],
    looped_dropped: AtomicU64,
    forward_failed: AtomicU64,
    stop: AtomicBool,
}

/// Datagrams the user-space eSwitch dropped instead of forwarding.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UserEswitchDrops {
    /// Datagrams that came from a location's own socket (would loop).
    pub looped: u64,
    /// Datagrams the kernel refused to forward.
    pub forward_failed: u64,
}

/// The user-space eSwitch: a running dispatcher thread, stopped on [`UserEswitch::stop`] or drop.
#[derive(Debug)]
pub struct UserEswitch {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<Result<(), NetError>>>,
    ingress: SocketAddr,
    group: GroupShape,
}

impl UserEswitch {
    /// Binds the ingress socket and starts the dispatcher with `rules`.
    pub fn start(
        config: UserEswitchConfig,
        rules: &RuleTable,
    ) -> Result<UserEswitch, EswitchError> {
        let group = GroupShape::new(
            config.host.len().min(u32::MAX as usize) as u32,
            config.nic.len().min(u32::MAX as usize) as u32,
        )?;
        let socket = UdpSocket::bind(&config.ingress)?;
        let ingress = socket.local_addr();
        let shared = Arc::new(Shared {
            rules: Mutex::new(Arc::new(rules.clone())),
            generation: AtomicU64::new(0),
            counters: Default::default(),
            looped_dropped: AtomicU64::new(0),
            forward_failed: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        });
        let targets: Vec<SocketAddr> = config.host.iter().chain(&config.nic).copied().collect();
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("naam-eswitch".into())
            .spawn(move || Dispatcher::new(socket, targets, group, thread_shared).run())
            .map_err(|source| NetError::Syscall {
                call: "thread spawn",
                addr: Some(ingress),
                source,
            })?;
        Ok(UserEswitch {
            shared,
            thread: Some(thread),
            ingress,
            group,
        })
    }

    /// The address clients send to.
    pub fn ingress_addr(&self) -> SocketAddr {
        self.ingress
    }

    /// The shape of the target list (host sockets, NIC sockets).
    pub fn group(&self) -> GroupShape {
        self.group
    }

    /// Datagrams dropped instead of forwarded.
    pub fn drops(&self) -> UserEswitchDrops {
        UserEswitchDrops {
            looped: self.shared.looped_dropped.load(Ordering::Relaxed),
            forward_failed: self.shared.forward_failed.load(Ordering::Relaxed),
        }
    }

    /// Stops the dispatcher and returns the final counts, or the error that ended it.
    pub fn stop(mut self) -> Result<SteerCounts, EswitchError> {
        self.join()?;
        self.counts()
    }

    fn join(&mut self) -> Result<(), EswitchError> {
        self.shared.stop.store(true, Ordering::Release);
        match self.thread.take() {
            Some(thread) => {
                thread.join().map_err(|_| NetError::ThreadPanicked {
                    thread: "naam-eswitch",
                })??;
                Ok(())
            }
            None => Ok(()),
        }
    }
}

impl Drop for UserEswitch {
    fn drop(&mut self) {
        // An error here was the dispatcher's last; nobody is left to report it to.
        let _ = self.join();
    }
}

impl Steering for UserEswitch {
    /// Swaps the whole table at once (the dispatcher picks it up before its next datagram), so
    /// `entries_written` is the table's size and `entries_removed` is 0.
    fn apply(&mut self, rules: &RuleTable) -> Result<Applied, EswitchError> {
        let table = Arc::new(rules.clone());
        {
            let mut slot = self
                .shared
                .rules
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            *slot = table;
        }
        self.shared.generation.fetch_add(1, Ordering::AcqRel);
        Ok(Applied {
            version: rules.version(),
            applied_at_ns: monotonic_now_ns(),
            entries_written: rules.rules().count() + 1,
            entries_removed: 0,
        })
    }

    fn counts(&self) -> Result<SteerCounts, EswitchError> {
        let c = &self.shared.counters;
        Ok(SteerCounts::from_array(std::array::from_fn(|i| {
            c[i].load(Ordering::Relaxed)
        })))
    }

    fn kind(&self) -> &'static str {
        "user-space"
    }
}

struct Dispatcher {
    socket: UdpSocket,
    targets: Vec<SocketAddr>,
    group: GroupShape,
    shared: Arc<Shared>,
    rules: Arc<RuleTable>,
    generation_seen: u64,
    scratch: Vec<u8>,
}

impl Dispatcher {
    fn new(
        socket: UdpSocket,
        targets: Vec<SocketAddr>,
        group: GroupShape,
        shared: Arc<Shared>,
    ) -> Dispatcher {
        let rules = Arc::clone(&shared.rules.lock().unwrap_or_else(|p| p.into_inner()));
        Dispatcher {
            socket,
            targets,
            group,
            shared,
            rules,
            generation_seen: 0,
            scratch: vec![0; FRAME_BYTES_MAX],
        }
    }

    fn run(mut self) -> Result<(), NetError> {
        let mut rx = RecvBatch::new(BATCH_MAX);
        let mut tx = SendBatch::new(BATCH_MAX);
        while !self.shared.stop.load(Ordering::Acquire) {
            let n = self.socket.recv_batch(&mut rx, DISPATCH_POLL_INTERVAL)?;
            if n == 0 {
                continue;
            }
            // After the receive: a datagram sent after an apply returned sees the new table.
            self.refresh_rules();
            for datagram in rx.iter() {
                self.route(datagram.bytes, datagram.from, &mut tx);
            }
            self.flush(&mut tx);
        }
        Ok(())
    }

    fn refresh_rules(&mut self) {
        let generation = self.shared.generation.load(Ordering::Acquire);
        if generation != self.generation_seen {
            self.rules = Arc::clone(&self.shared.rules.lock().unwrap_or_else(|p| p.into_inner()));
            self.generation_seen = generation;
        }
    }

    fn route(&mut self, bytes: &[u8], from: SocketAddr, tx: &mut SendBatch) {
        if self.targets.contains(&from) {
            self.shared.looped_dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let key = key_of_port(STEER_PORT_BASE_DEFAULT, from.port());
        let decision = decide(&self.rules, key, bytes, self.group);
        self.shared.counters[decision.verdict.index()].fetch_add(1, Ordering::Relaxed);
        let Some(to) = self.targets.get(decision.socket_index as usize).copied() else {
            return;
        };
        let out = if decision.verdict == Verdict::Malformed {
            bytes
        } else {
            with_reply_to(bytes, from, &mut self.scratch)
        };
        // Cannot fail: the batch is flushed before it fills (one datagram per received one,
        // both batches BATCH_MAX), and `out` is at most FRAME_BYTES_MAX (received datagrams are).
        tx.push(out, to);
    }

    fn flush(&mut self, tx: &mut SendBatch) {
        for _ in 0..BATCH_MAX {
            match self.socket.send_batch(tx) {
                Ok(_) => return,
                // The refused datagram was dropped from the batch; send the rest.
                Err(_) => {
                    self.shared.forward_failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        self.shared
            .forward_failed
            .fetch_add(tx.len() as u64, Ordering::Relaxed);
        tx.clear();
    }
}

/// `invoke` (a well-formed Invoke) with its reply address set to `client`, the datagram's source,
/// unless it already names an address on `client`'s host (kept as the sender wrote it).
fn with_reply_to<'a>(invoke: &'a [u8], client: SocketAddr, scratch: &'a mut [u8]) -> &'a [u8] {
    const PRESENT: usize = invoke_layout::REPLY_TO;
    if invoke.len() < invoke_layout::FIXED_BYTES || invoke.len() > scratch.len() {
        return invoke;
    }
    if names_source_host(invoke, client) {
        return invoke;
    }
    let addr = reply_addr(client);
    let out = &mut scratch[..invoke.len()];
    out.copy_from_slice(invoke);
    out[PRESENT] = 1;
    out[PRESENT + 1] = 0;
    out[PRESENT + 2..PRESENT + 4].copy_from_slice(&addr.port.to_le_bytes());
    out[PRESENT + 4..PRESENT + 20].copy_from_slice(&addr.ip);
    out
}

/// Whether a well-formed Invoke's reply address is present and on `source`'s host.
fn names_source_host(invoke: &[u8], source: SocketAddr) -> bool {
    const PRESENT: usize = invoke_layout::REPLY_TO;
    invoke[PRESENT] == 1 && invoke[PRESENT + 4..PRESENT + 20] == reply_addr(source).ip
}

#[cfg(test)]
mod tests {
    use super::*;
    use naam_engine::wire::{Descriptors, Frame, Invoke};
    use naam_engine::{FunctionId, RequestId, TenantId};

    #[test]
    fn reply_address_is_the_datagrams_source_unless_it_names_the_source_host() {
        let invoke = Invoke {
            flow: 4,
            ..Invoke::new_message(
                TenantId(1),
                FunctionId(2),
                RequestId(3),
                b"abc",
                Descriptors::new(),
            )
        };
        let mut bytes = Vec::new();
        invoke.encode(&mut bytes).unwrap();
        let client: SocketAddr = "10.0.0.9:4567".parse().unwrap();
        let mut scratch = vec![0; FRAME_BYTES_MAX];
        let patched = with_reply_to(&bytes, client, &mut scratch).to_vec();
        let Ok(Frame::Invoke(decoded)) = Frame::decode(&patched) else {
            panic!("patched frame does not decode")
        };
        assert_eq!(
            decoded,
            Invoke {
                reply_to: Some(reply_addr(client)),
                ..invoke
            }
        );
        let other: SocketAddr = "10.0.0.1:1".parse().unwrap();
        let again = with_reply_to(&patched, other, &mut scratch).to_vec();
        let Ok(Frame::Invoke(forged)) = Frame::decode(&again) else {
            panic!("re-patched frame does not decode")
        };
        assert_eq!(
            forged.reply_to,
            Some(reply_addr(other)),
            "a reply address on another host is overwritten with its source"
        );
        let steering_port: SocketAddr = "10.0.0.1:20007".parse().unwrap();
        let kept = with_reply_to(&again, steering_port, &mut scratch).to_vec();
        assert_eq!(
            kept, again,
            "an address on the sender's own host (its receive port) is kept"
        );
    }
}
