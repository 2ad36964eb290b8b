//! One-sided reads of another machine's registered regions: the request/response logic of an
//! off-box data path (the NIC role on a BlueField-2's Arm cores reading the host's regions, or a
//! client reading the server's), independent of how the reads are carried.
//!
//! The memory owner publishes an [`ExportedRegion`] per region (its id, address, length and
//! rkey) and a handshake address where peers connect a queue pair ([`QpInfo`] exchanged with
//! [`exchange_qp_info`]). A [`RemoteReader`] turns `(region, offset, len)` accesses into READs
//! of `rkey` at `addr + offset`, keeps at most the verbs layer's capacity in flight (queueing the
//! rest in arrival order, bounded), and hands each completion back with the caller's id.
//!
//! The reads themselves go through [`ReadVerbs`]: naam-net's ibverbs backend implements it
//! (feature `rdma`); [`InProcessVerbs`] implements it over memory in this process, for testing
//! this logic on machines without an RDMA device — it is not RDMA and says so.

use std::collections::{HashMap, VecDeque};
use std::io::{self, Read, Write};

/// Regions one map may hold.
pub const EXPORTED_REGIONS_MAX: usize = 4096;
/// Accesses a [`RemoteReader`] queues beyond those in flight.
pub const READS_QUEUED_MAX: usize = 65_536;
/// Bytes of an encoded [`QpInfo`].
pub const QP_INFO_BYTES: usize = 4 + 2 + 16 + 4;
/// The handshake's magic (first bytes each side sends), version 1.
pub const HANDSHAKE_MAGIC: [u8; 8] = *b"NAAMQP01";

/// A region the owner registered for one-sided reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ExportedRegion {
    /// The region's id (the engine's `RegionId`).
    pub region: u32,
    /// Its address in the owner's address space.
    pub addr: u64,
    /// Registered bytes.
    pub len: u64,
    /// The remote key readers present.
    pub rkey: u32,
}

/// What a peer needs to connect to a queue pair (exchanged at connection time).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QpInfo {
    /// Queue pair number.
    pub qp_num: u32,
    /// Port LID (InfiniBand; 0 on RoCE).
    pub lid: u16,
    /// Port GID at the configured index (RoCE and routed InfiniBand).
    pub gid: [u8; 16],
    /// First packet sequence number this side sends.
    pub psn: u32,
}

impl QpInfo {
    /// Little-endian encoding.
    pub fn to_bytes(&self) -> [u8; QP_INFO_BYTES] {
        let mut out = [0u8; QP_INFO_BYTES];
        out[0..4].copy_from_slice(&self.qp_num.to_le_bytes());
        out[4..6].copy_from_slice(&self.lid.to_le_bytes());
        out[6..22].copy_from_slice(&self.gid);
        out[22..26].copy_from_slice(&self.psn.to_le_bytes());
        out
    }

    /// Decodes [`QpInfo::to_bytes`]; `None` unless exactly [`QP_INFO_BYTES`] long.
    pub fn from_bytes(bytes: &[u8]) -> Option<QpInfo> {
        let b: &[u8; QP_INFO_BYTES] = bytes.try_into().ok()?;
        let mut gid = [0u8; 16];
        gid.copy_from_slice(&b[6..22]);
        Some(QpInfo {
            qp_num: u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            lid: u16::from_le_bytes([b[4], b[5]]),
            gid,
            psn: u32::from_le_bytes([b[22], b[23], b[24], b[25]]),
        })
    }
}

/// Why the remote-read logic refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// An access names a region the owner did not export.
    #[error("region {region} was not exported by the memory owner")]
    UnknownRegion {
        /// The region.
        region: u32,
    },
    /// An access reaches past its region's registered length.
    #[error(
        "read of {len} bytes at offset {offset} of region {region} ({region_len} bytes) is out of bounds"
    )]
    OutOfBounds {
        /// The region.
        region: u32,
        /// Offset asked for.
        offset: u64,
        /// Length asked for.
        len: u32,
        /// The region's registered length.
        region_len: u64,
    },
    /// A region list that cannot be used.
    #[error("exported regions: {reason}")]
    Regions {
        /// Why.
        reason: String,
    },
    /// More accesses queued than [`READS_QUEUED_MAX`].
    #[error("{max} reads already queued behind those in flight")]
    QueueFull {
        /// [`READS_QUEUED_MAX`].
        max: usize,
    },
    /// The verbs layer failed.
    #[error("{0}")]
    Verbs(String),
    /// The queue-pair handshake failed.
    #[error("queue-pair handshake: {what}: {source}")]
    Handshake {
        /// What went wrong.
        what: &'static str,
        /// The IO error.
        #[source]
        source: io::Error,
    },
}

/// The exported regions by id.
#[derive(Clone, Debug, Default)]
pub struct RegionMap {
    by_id: HashMap<u32, ExportedRegion>,
}

impl RegionMap {
    /// A map of `regions` (distinct ids, non-empty, at most [`EXPORTED_REGIONS_MAX`]).
    pub fn new(regions: &[ExportedRegion]) -> Result<RegionMap, RemoteError> {
        let bad = |reason: String| Err(RemoteError::Regions { reason });
        if regions.len() > EXPORTED_REGIONS_MAX {
            return bad(format!(
                "{} regions, more than {EXPORTED_REGIONS_MAX}",
                regions.len()
            ));
        }
        let mut by_id = HashMap::with_capacity(regions.len());
        for r in regions {
            if r.len == 0 || r.addr.checked_add(r.len).is_none() {
                return bad(format!(
                    "region {} has length {} at {:#x}",
                    r.region, r.len, r.addr
                ));
            }
            if by_id.insert(r.region, *r).is_some() {
                return bad(format!("region {} is listed twice", r.region));
            }
        }
        Ok(RegionMap { by_id })
    }

    /// The rkey and remote address of `len` bytes at `offset` of `region`.
    pub fn resolve(&self, region: u32, offset: u64, len: u32) -> Result<(u32, u64), RemoteError> {
        let r = self
            .by_id
            .get(&region)
            .ok_or(RemoteError::UnknownRegion { region })?;
        let end = offset.checked_add(u64::from(len));
        if end.is_none_or(|end| end > r.len) {
            return Err(RemoteError::OutOfBounds {
                region,
                offset,
                len,
                region_len: r.len,
            });
        }
        Ok((r.rkey, r.addr + offset))
    }
}

/// A finished read as the verbs layer reports it: its bytes, or a failure status.
pub type VerbsResult<'a> = Result<&'a [u8], ReadStatus>;

/// Why one READ failed at the device (`ibv_wc_status` and vendor syndrome).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadStatus {
    /// `ibv_wc_status`.
    pub status: u32,
    /// Vendor error syndrome.
    pub vendor_err: u32,
}

/// The verbs a [`RemoteReader`] needs: post a READ, poll completions.
pub trait ReadVerbs {
    /// READs that may be in flight at once.
    fn capacity(&self) -> usize;
    /// Posts a READ of `len` bytes at `remote_addr` of region `rkey`; returns its token.
    fn post_read(&mut self, rkey: u32, remote_addr: u64, len: u32) -> Result<u64, RemoteError>;
    /// Hands every completion available now to `on` (token, result); returns how many.
    fn poll(&mut self, on: &mut dyn FnMut(u64, VerbsResult<'_>)) -> Result<usize, RemoteError>;
}

/// Counters of a [`RemoteReader`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReadStats {
    /// READs completed (successfully or not).
    pub completed: u64,
    /// READs that failed at the device.
    pub failed: u64,
    /// Bytes read.
    pub bytes: u64,
    /// Sum of post-to-completion times (ns), for the mean.
    pub rtt_ns_sum: u64,
    /// Most READs in flight at once.
    pub inflight_max: usize,
}

struct Posted<R> {
    id: R,
    posted_ns: u64,
}

struct Queued<R> {
    id: R,
    rkey: u32,
    addr: u64,
    len: u32,
}

/// Turns region accesses into one-sided READs and completions back into the caller's ids.
pub struct RemoteReader<V, R> {
    verbs: V,
    map: RegionMap,
    posted: HashMap<u64, Posted<R>>,
    queued: VecDeque<Queued<R>>,
    stats: ReadStats,
}

impl<V, R> std::fmt::Debug for RemoteReader<V, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteReader")
            .field("inflight", &self.posted.len())
            .field("queued", &self.queued.len())
            .field("stats", &self.stats)
            .finish()
    }
}

impl<V: ReadVerbs, R: Copy> RemoteReader<V, R> {
    /// A reader of `map`'s regions through `verbs`.
    pub fn new(verbs: V, map: RegionMap) -> RemoteReader<V, R> {
        RemoteReader {
            verbs,
            map,
            posted: HashMap::new(),
            queued: VecDeque::new(),
            stats: ReadStats::default(),
        }
    }

    /// Starts reading `len` bytes at `offset` of `region` for access `id`: posted now if a slot
    /// is free, else queued. Bad regions and bounds are refused before anything is posted.
    pub fn start(
        &mut self,
        now_ns: u64,
        id: R,
        region: u32,
        offset: u64,
        len: u32,
    ) -> Result<(), RemoteError> {
        let (rkey, addr) = self.map.resolve(region, offset, len)?;
        if self.posted.len() < self.verbs.capacity() && self.queued.is_empty() {
            return self.post(
                now_ns,
                Queued {
                    id,
                    rkey,
                    addr,
                    len,
                },
            );
        }
        if self.queued.len() >= READS_QUEUED_MAX {
            return Err(RemoteError::QueueFull {
                max: READS_QUEUED_MAX,
            });
        }
        self.queued.push_back(Queued {
            id,
            rkey,
            addr,
            len,
        });
        Ok(())
    }

    fn post(&mut self, now_ns: u64, q: Queued<R>) -> Result<(), RemoteError> {
        let token = self.verbs.post_read(q.rkey, q.addr, q.len)?;
        self.posted.insert(
            token,
            Posted {
                id: q.id,
                posted_ns: now_ns,
            },
        );
        self.stats.inflight_max = self.stats.inflight_max.max(self.posted.len());
        Ok(())
    }

    /// Hands every finished READ to `on_done` (id, bytes or failure), then posts queued reads
    /// into the freed slots. Returns how many finished.
    pub fn poll(
        &mut self,
        now_ns: u64,
        mut on_done: impl FnMut(R, VerbsResult<'_>),
    ) -> Result<usize, RemoteError> {
        let (posted, stats) = (&mut self.posted, &mut self.stats);
        let finished = self.verbs.poll(&mut |token, result| {
            let Some(p) = posted.remove(&token) else {
                return;
            };
            stats.completed += 1;
            stats.rtt_ns_sum += now_ns.saturating_sub(p.posted_ns);
            match result {
                Ok(bytes) => stats.bytes += bytes.len() as u64,
                Err(_) => stats.failed += 1,
            }
            on_done(p.id, result);
        })?;
        while self.posted.len() < self.verbs.capacity() {
            let Some(q) = self.queued.pop_front() else {
                break;
            };
            self.post(now_ns, q)?;
        }
        Ok(finished)
    }

    /// Reads in flight or queued.
    pub fn pending(&self) -> usize {
        self.posted.len() + self.queued.len()
    }

    /// Counters so far.
    pub fn stats(&self) -> ReadStats {
        self.stats
    }
}

/// Sends `local` and receives the peer's [`QpInfo`] over `stream` (each side sends
/// [`HANDSHAKE_MAGIC`] then its 26 bytes; both sides may send first).
pub fn exchange_qp_info(
    stream: &mut (impl Read + Write),
    local: &QpInfo,
) -> Result<QpInfo, RemoteError> {
    let err = |what| move |source| RemoteError::Handshake { what, source };
    let mut out = [0u8; HANDSHAKE_MAGIC.len() + QP_INFO_BYTES];
    out[..HANDSHAKE_MAGIC.len()].copy_from_slice(&HANDSHAKE_MAGIC);
    out[HANDSHAKE_MAGIC.len()..].copy_from_slice(&local.to_bytes());
    stream.write_all(&out).map_err(err("send"))?;
    stream.flush().map_err(err("send"))?;
    let mut got = [0u8; HANDSHAKE_MAGIC.len() + QP_INFO_BYTES];
    stream.read_exact(&mut got).map_err(err("receive"))?;
    if got[..HANDSHAKE_MAGIC.len()] != HANDSHAKE_MAGIC {
        return Err(RemoteError::Handshake {
            what: "the peer is not a NAAM queue-pair handshake (magic NAAMQP01)",
            source: io::ErrorKind::InvalidData.into(),
        });
    }
    // The length is exactly QP_INFO_BYTES, so decoding cannot fail.
    QpInfo::from_bytes(&got[HANDSHAKE_MAGIC.len()..]).ok_or(RemoteError::Handshake {
        what: "short queue-pair descriptor",
        source: io::ErrorKind::InvalidData.into(),
    })
}

/// Reads served from memory in this process, for testing [`RemoteReader`]'s logic without an
/// RDMA device. **Not RDMA**: no device, no network, no one-sided semantics; a READ completes
/// on the `delay_polls`-th poll after it was posted (0: the next poll).
#[derive(Debug)]
pub struct InProcessVerbs {
    memory: HashMap<u32, (u64, Vec<u8>)>,
    capacity: usize,
    delay_polls: u32,
    next_token: u64,
    inflight: VecDeque<(u64, u32, u64, u32, u32)>,
    failing_rkeys: Vec<u32>,
}

impl InProcessVerbs {
    /// `capacity` READs in flight at most; each completes `delay_polls` polls after posting.
    pub fn new(capacity: usize, delay_polls: u32) -> InProcessVerbs {
        InProcessVerbs {
            memory: HashMap::new(),
            capacity,
            delay_polls,
            next_token: 1,
            inflight: VecDeque::new(),
            failing_rkeys: Vec::new(),
        }
    }

    /// Registers `bytes` as a region at address `addr` under `rkey`.
    pub fn register(&mut self, rkey: u32, addr: u64, bytes: Vec<u8>) {
        self.memory.insert(rkey, (addr, bytes));
    }

    /// READs of `rkey` complete with a remote-access error (as a revoked key would).
    pub fn fail_rkey(&mut self, rkey: u32) {
        self.failing_rkeys.push(rkey);
    }
}

/// `IBV_WC_REM_ACCESS_ERR`.
const WC_REM_ACCESS_ERR: u32 = 10;

impl ReadVerbs for InProcessVerbs {
    fn capacity(&self) -> usize {
        self.capacity
    }

    fn post_read(&mut self, rkey: u32, remote_addr: u64, len: u32) -> Result<u64, RemoteError> {
        if self.inflight.len() >= self.capacity {
            return Err(RemoteError::Verbs(format!(
                "{} READs already in flight",
                self.capacity
            )));
        }
        let token = self.next_token;
        self.next_token += 1;
        self.inflight
            .push_back((token, rkey, remote_addr, len, self.delay_polls));
        Ok(token)
    }

    fn poll(&mut self, on: &mut dyn FnMut(u64, VerbsResult<'_>)) -> Result<usize, RemoteError> {
        let mut done = 0;
        let mut waiting = VecDeque::with_capacity(self.inflight.len());
        while let Some((token, rkey, addr, len, polls_left)) = self.inflight.pop_front() {
            if polls_left > 0 {
                waiting.push_back((token, rkey, addr, len, polls_left - 1));
                continue;
            }
            done += 1;
            let failure = ReadStatus {
                status: WC_REM_ACCESS_ERR,
                vendor_err: 0,
            };
            let bytes = self.memory.get(&rkey).and_then(|(base, mem)| {
                let start = usize::try_from(addr.checked_sub(*base)?).ok()?;
                mem.get(start..start.checked_add(len as usize)?)
            });
            match bytes {
                Some(b) if !self.failing_rkeys.contains(&rkey) => on(token, Ok(b)),
                _ => on(token, Err(failure)),
            }
        }
        self.inflight = waiting;
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regions() -> (RegionMap, InProcessVerbs) {
        let exported = [
            ExportedRegion {
                region: 1,
                addr: 0x10_0000,
                len: 4096,
                rkey: 0xaa,
            },
            ExportedRegion {
                region: 2,
                addr: 0x20_0000,
                len: 256,
                rkey: 0xbb,
            },
        ];
        let mut verbs = InProcessVerbs::new(4, 1);
        verbs.register(0xaa, 0x10_0000, (0..4096u32).map(|i| i as u8).collect());
        verbs.register(0xbb, 0x20_0000, vec![7; 256]);
        (RegionMap::new(&exported).unwrap(), verbs)
    }

    #[test]
    fn accesses_become_reads_of_the_right_key_and_address() {
        let (map, verbs) = regions();
        let mut reader: RemoteReader<_, u32> = RemoteReader::new(verbs, map);
        let mut done = Vec::new();
        // Ten accesses, four slots: six queue, all finish, in order of posting within a poll.
        for i in 0..10u32 {
            reader.start(0, i, 1, u64::from(i) * 100, 8).unwrap();
        }
        assert_eq!(reader.pending(), 10);
        for round in 0..20u64 {
            reader
                .poll(round, |id, r| done.push((id, r.map(<[u8]>::to_vec))))
                .unwrap();
        }
        assert_eq!(reader.pending(), 0);
        assert_eq!(done.len(), 10);
        for (id, bytes) in done {
            let want: Vec<u8> = (0..8).map(|k| (id * 100 + k) as u8).collect();
            assert_eq!(bytes, Ok(want), "access {id}");
        }
        let stats = reader.stats();
        assert_eq!((stats.completed, stats.failed, stats.bytes), (10, 0, 80));
        assert_eq!(
            stats.inflight_max, 4,
            "never more in flight than the device allows"
        );
    }

    #[test]
    fn bad_regions_and_bounds_are_refused_before_posting_and_device_errors_come_back() {
        let (map, mut verbs) = regions();
        verbs.fail_rkey(0xbb);
        let mut reader: RemoteReader<_, u32> = RemoteReader::new(verbs, map);
        assert!(matches!(
            reader.start(0, 1, 9, 0, 8),
            Err(RemoteError::UnknownRegion { region: 9 })
        ));
        assert!(matches!(
            reader.start(0, 2, 2, 250, 8),
            Err(RemoteError::OutOfBounds {
                region_len: 256,
                ..
            })
        ));
        assert!(matches!(
            reader.start(0, 3, 1, u64::MAX, 8),
            Err(RemoteError::OutOfBounds { .. })
        ));
        assert_eq!(reader.pending(), 0);
        reader.start(0, 4, 2, 0, 8).unwrap();
        let mut results = Vec::new();
        for t in 0..3 {
            reader
                .poll(t, |id, r| results.push((id, r.is_err())))
                .unwrap();
        }
        assert_eq!(results, [(4, true)]);
        assert_eq!(reader.stats().failed, 1);
    }

    #[test]
    fn region_lists_are_validated() {
        let r = |region, len| ExportedRegion {
            region,
            addr: 0x1000,
            len,
            rkey: 1,
        };
        assert!(RegionMap::new(&[r(1, 10), r(1, 10)]).is_err());
        assert!(RegionMap::new(&[r(1, 0)]).is_err());
        assert!(RegionMap::new(&[r(1, u64::MAX)]).is_err());
        assert!(RegionMap::new(&[r(1, 10), r(2, 10)]).is_ok());
    }

    #[test]
    fn the_handshake_swaps_descriptors_and_rejects_strangers() {
        use std::net::{TcpListener, TcpStream};
        let a = QpInfo {
            qp_num: 0x11,
            lid: 2,
            gid: [3; 16],
            psn: 0x44,
        };
        let b = QpInfo {
            qp_num: 0x55,
            lid: 0,
            gid: [6; 16],
            psn: 0x77,
        };
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            exchange_qp_info(&mut s, &b).unwrap()
        });
        let mut c = TcpStream::connect(addr).unwrap();
        assert_eq!(exchange_qp_info(&mut c, &a).unwrap(), b);
        assert_eq!(server.join().unwrap(), a);
        assert_eq!(QpInfo::from_bytes(&a.to_bytes()), Some(a));
        let mut stranger = std::io::Cursor::new(vec![0u8; 34]);
        let mut duplex = Duplex(&mut stranger, Vec::new());
        assert!(matches!(
            exchange_qp_info(&mut duplex, &a),
            Err(RemoteError::Handshake { .. })
        ));
    }

    struct Duplex<'a>(&'a mut std::io::Cursor<Vec<u8>>, Vec<u8>);
    impl Read for Duplex<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.0.read(buf)
        }
    }
    impl Write for Duplex<'_> {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.1.write(buf)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
}
