//! The emulated RNIC: serves clients' one-sided reads (RDMA READ) of host regions.
//!
//! Emulation, stated plainly: a real RNIC serves one-sided reads in hardware without any host
//! CPU. Here a thread does it, pinned to the cores given for the RNIC (the NIC's, by default), so
//! that its CPU time is not charged to the host's workers. The answer is the engine's
//! [`answer_read`]: [`RegionTable::check`], the same check every location applies, then the bytes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use naam_engine::rnic::answer_read;
use naam_engine::wire::{ReadReply, ReadRequest};
use naam_engine::{Frame, RegionTable};
use naam_net::{RecvBatch, SendBatch, UdpSocket};
use serde::{Deserialize, Serialize};

use super::memory::HostMemory;

/// Datagrams per batch.
const BATCH: usize = 32;

/// What the RNIC did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RnicReport {
    /// Reads served.
    pub reads: u64,
    /// Reads denied by the region check.
    pub denied: u64,
    /// Datagrams that were not read requests.
    pub malformed: u64,
}

/// Serves reads until `stop` is set.
pub fn serve(
    socket: UdpSocket,
    table: Arc<RegionTable>,
    memory: Arc<HostMemory>,
    stop: &AtomicBool,
) -> RnicReport {
    let mut recv = RecvBatch::new(BATCH);
    let mut send = SendBatch::new(BATCH);
    let mut data = vec![0u8; naam_engine::abi::ACCESS_BYTES_MAX];
    let mut frame = Vec::new();
    let mut report = RnicReport::default();
    while !stop.load(Ordering::Relaxed) {
        let n = socket
            .recv_batch(&mut recv, Duration::from_millis(1))
            .unwrap_or(0);
        for i in 0..n {
            let datagram = recv.get(i);
            let Ok(Frame::Read(read)) = Frame::decode(datagram.bytes) else {
                report.malformed += 1;
                continue;
            };
            let reply = answer(&read, &table, &memory, &mut data, &mut report);
            let _ = Frame::ReadReply(reply).encode(&mut frame);
            if !send.push(&frame, datagram.from) {
                let _ = socket.send_batch(&mut send);
                send.push(&frame, datagram.from);
            }
        }
        if !send.is_empty() {
            let _ = socket.send_batch(&mut send);
        }
    }
    report
}

fn answer<'d>(
    read: &ReadRequest,
    table: &RegionTable,
    memory: &HostMemory,
    data: &'d mut [u8],
    report: &mut RnicReport,
) -> ReadReply<'d> {
    let reply = answer_read(read, table, data, |region, offset, out| {
        memory
            .region(region)
            .is_some_and(|r| r.read_into(offset, out))
    });
    if reply.denial == 0 {
        report.reads += 1;
    } else {
        report.denied += 1;
    }
    reply
}
