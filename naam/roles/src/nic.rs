//! The emulated NIC role: its own process and worker pool standing in for BlueField-2's Arm cores.
//! It maps the host's region files read-only (the DMA window), builds the same function table
//! from the same ELF objects, and serves the messages the eSwitch steers to it: every access is
//! a DMA that completes after `access_delay_ns` (the PCIe round trip) while the worker serves
//! other messages, and every step takes `1 / core_speed_factor` times as long as on a host core.
//! It replies to clients directly and sends its load samples to the host's controller.
//!
//! Emulation, stated plainly: no BlueField-2 is involved; delays and core speed are the model.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use naam_engine::{Location, Nanos, RegionTable, ServerWorker, WorkerConfig};
use serde::{Deserialize, Serialize};

use crate::config::{NicConfig, NicDataPath, RoleConfig};
use crate::counters::Totals;
use crate::os::{cpu_for, pin_current_thread, realtime_ns};
use crate::ready::{self, HostReady, NicReady};
use crate::serve::{AccessPath, ControlShared, DmaPath, SampleSink, WorkerReport, WorkerThread};
use crate::shm::SharedRegion;
use crate::timeline::TimelineWatch;
use crate::{RoleError, udp, workload};

/// The NIC's ready file.
pub const READY_FILE: &str = "nic.ready.json";
/// The NIC's counters of the measured phase.
pub const COUNTERS_FILE: &str = "nic.counters.json";
/// How long the NIC waits for the host's ready file.
pub const HOST_READY_TIMEOUT: Duration = Duration::from_secs(120);

/// `nic.counters.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NicCounters {
    /// The results schema's counters (measured phase).
    pub nic: naam_results::raw::LocationCounters,
    /// Raw totals.
    pub totals: Totals,
    /// Malformed datagrams.
    pub malformed: u64,
    /// Messages whose reply address the workers ignored (not from the eSwitch; whole run).
    #[serde(default)]
    pub reply_to_refused: u64,
    /// Replies dropped: the worker could not remember their sender (whole run).
    #[serde(default)]
    pub unanswerable: u64,
    /// Datagrams the NIC's workers received and did not serve (whole run).
    #[serde(default)]
    pub dropped: naam_results::raw::DroppedDatagrams,
    /// What the NIC's eBPF functions ran on (`FunctionTable::describe_tiers`).
    #[serde(default)]
    pub vm: String,
    /// The iPipe baseline's record, when it served instead of NAAM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipipe: Option<naam_results::raw::IpipeRecord>,
}

impl NicCounters {
    /// The NIC's counters from its workers' reports.
    pub(crate) fn of(workers: u32, phase_ns: u64, reports: &[WorkerReport]) -> NicCounters {
        let totals = reports
            .iter()
            .fold(Totals::default(), |acc, r| acc.plus(&r.measured));
        NicCounters {
            nic: totals.location_counters(workers, phase_ns),
            totals,
            malformed: reports.iter().map(|r| r.malformed).sum(),
            reply_to_refused: reports.iter().map(|r| r.reply_to_refused).sum(),
            unanswerable: reports.iter().map(|r| r.unanswerable).sum(),
            dropped: crate::counters::dropped(reports),
            vm: String::new(),
            ipipe: None,
        }
    }
}

/// What the NIC's workers share.
struct NicShared {
    functions: Arc<naam_engine::FunctionTable>,
    table: Arc<RegionTable>,
    control: Arc<ControlShared>,
    timeline: TimelineWatch,
    /// The host's control port (NIC load samples).
    controller: SocketAddr,
    /// Where samples leave from when not worker 0's own socket (`HostReady::control_source`).
    control_source: Option<SocketAddr>,
    /// The host's user-space eSwitch ingress (it forwards to the NIC), if any.
    forwarders: Vec<SocketAddr>,
}

impl NicShared {
    /// NIC worker `i` on `socket`.
    fn worker(
        &self,
        nic: &NicConfig,
        i: usize,
        socket: naam_net::UdpSocket,
        path: Box<dyn AccessPath>,
    ) -> Result<WorkerThread<Box<dyn AccessPath>>, RoleError> {
        let engine = ServerWorker::new(
            WorkerConfig::new(Location::Nic, nic.sample_period_us * 1000),
            Arc::clone(&self.functions),
            Arc::clone(&self.table),
            Nanos(realtime_ns()),
        )
        .map_err(|e| RoleError::Setup(e.to_string()))?;
        // Worker 0 reports for the NIC: the eSwitch spreads evenly over NIC workers.
        let samples = if i == 0 {
            SampleSink::Udp {
                to: self.controller,
                key: nic.control_key,
                from: self.control_source.map(bind_sample_source).transpose()?,
            }
        } else {
            SampleSink::Discard
        };
        Ok(WorkerThread {
            worker: engine,
            socket,
            path,
            natives: None,
            control: Arc::clone(&self.control),
            samples,
            heartbeat: Arc::new(crate::serve::Liveness::new(0)),
            core_speed_factor: nic.core_speed_factor,
            timeline: self.timeline.clone(),
            busy_poll: nic.polling == crate::config::Polling::BusyPoll,
            forwarders: self.forwarders.clone(),
        })
    }
}

/// Runs the NIC role until `stop` is set (NAAM's NIC; `crate::ipipe::nic` runs iPipe's).
pub fn run(
    config: &RoleConfig,
    nic: &NicConfig,
    stop: &'static AtomicBool,
) -> Result<(), RoleError> {
    let host: HostReady = ready::wait_for(&nic.host_ready, HOST_READY_TIMEOUT)?;
    let paths = data_paths(&host, nic)?;
    let catalog: Vec<_> = host.catalog.iter().map(|e| e.info()).collect();
    let table =
        Arc::new(RegionTable::from_catalog(&catalog).map_err(|e| RoleError::Setup(e.to_string()))?);
    let server = workload::server(&nic.dataset)?;
    let dataset = &nic.dataset;
    let functions = Arc::new(crate::host::functions(
        &*server,
        dataset.tenants,
        nic.vm_backend,
    )?);
    let vm = functions.describe_tiers();
    let sockets = bind_workers(&host, nic.workers)?;
    let listen: Vec<SocketAddr> = sockets
        .iter()
        .map(naam_net::UdpSocket::local_addr)
        .collect();
    let shared = NicShared {
        functions,
        table,
        control: Arc::new(ControlShared::default()),
        timeline: TimelineWatch::start(&config.timeline, stop),
        controller: host.control,
        control_source: host.control_source,
        forwarders: forwarders(&host),
    };
    let timeline = shared.timeline.clone();
    let reports = std::thread::scope(|scope| -> Result<Vec<WorkerReport>, RoleError> {
        let handles: Vec<_> = sockets
            .into_iter()
            .zip(paths)
            .enumerate()
            .map(|(i, (socket, path))| {
                let worker = shared.worker(nic, i, socket, path)?;
                let cpus = cpu_for(&nic.cpus, i);
                Ok(scope.spawn(move || {
                    let _ = pin_current_thread(&cpus);
                    worker.run(stop)
                }))
            })
            .collect::<Result<_, RoleError>>()?;
        let ready = NicReady {
            listen,
            pid: std::process::id(),
        };
        ready::write_atomic(&config.out_dir.join(READY_FILE), &ready)
            .map_err(|e| RoleError::io(&config.out_dir, "write ready file", e))?;
        Ok(handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect())
    })?;
    let phase_ns = timeline.get().map_or(0, |t| t.measure_ms * 1_000_000);
    let counters = NicCounters {
        vm,
        ..NicCounters::of(nic.workers, phase_ns, &reports)
    };
    ready::write_atomic(&config.out_dir.join(COUNTERS_FILE), &counters)
        .map_err(|e| RoleError::io(&config.out_dir, "write counters", e))
}

/// Who forwards to the NIC: the user-space switch from its ingress; with the kernel and Open
/// vSwitch switches, nobody.
fn forwarders(host: &HostReady) -> Vec<SocketAddr> {
    if host.nic_listen.is_empty() {
        Vec::new()
    } else {
        vec![host.ingress]
    }
}

/// The socket the NIC's samples leave from on the host–NIC link (its NIC end, at the ingress
/// port: the one source the host's controller accepts).
fn bind_sample_source(addr: SocketAddr) -> Result<naam_net::UdpSocket, RoleError> {
    udp::bind(addr, false).map_err(|e| {
        RoleError::Setup(format!(
            "cannot bind the NIC's sample source {addr} on the host–NIC link ({e}): is this \
             address configured here (on a BlueField-2's Arm side: `ip addr show tmfifo_net0`)?"
        ))
    })
}

/// One data path per worker: a DMA over the mapped shared-memory files (the NIC on the host's
/// machine), or one-sided RDMA READs of the host's exported regions (an off-box NIC).
fn data_paths(host: &HostReady, nic: &NicConfig) -> Result<Vec<Box<dyn AccessPath>>, RoleError> {
    match nic.data_path {
        NicDataPath::Rdma => {
            let gid_address = nic.rdma_link.map(|l| IpAddr::V4(l.nic_ip));
            crate::rdma::nic_paths(host.rdma.as_ref(), nic.workers, gid_address)
        }
        NicDataPath::SharedMemory => {
            let regions = Arc::new(map_regions(host)?);
            Ok((0..nic.workers)
                .map(|_| {
                    let dma = DmaPath::new(Arc::clone(&regions), nic.access_delay_ns);
                    Box::new(dma) as Box<dyn AccessPath>
                })
                .collect())
        }
    }
}

pub(crate) fn map_regions(host: &HostReady) -> Result<Vec<Option<SharedRegion>>, RoleError> {
    let mut regions: Vec<Option<SharedRegion>> = Vec::new();
    for entry in &host.shm {
        let region = SharedRegion::open_read_only(&entry.path, entry.len)
            .map_err(|e| RoleError::io(&entry.path, "map host region", e))?;
        let slot = entry.id as usize;
        if regions.len() <= slot {
            regions.resize_with(slot + 1, || None);
        }
        regions[slot] = Some(region);
    }
    Ok(regions)
}

/// NIC worker sockets: in the ingress port's reuseport group (kernel eSwitch), or on the
/// addresses the host's user-space switch forwards to.
pub(crate) fn bind_workers(
    host: &HostReady,
    workers: u32,
) -> Result<Vec<naam_net::UdpSocket>, RoleError> {
    if host.nic_listen.is_empty() {
        return (0..workers)
            .map(|_| udp::bind(host.ingress, true))
            .collect();
    }
    if host.nic_listen.len() != workers as usize {
        return Err(RoleError::Setup(format!(
            "the host reserved {} NIC addresses for {workers} workers",
            host.nic_listen.len()
        )));
    }
    host.nic_listen
        .iter()
        .map(|&addr| udp::bind(addr, false))
        .collect()
}
