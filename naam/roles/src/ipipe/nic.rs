//! The NIC role running iPipe: actors installed from the host's regions, receiver threads on the
//! NIC's sockets (the same sockets NAAM's NIC workers bind), FCFS and DRR core threads, the
//! link to the host's counterpart, and `nic.counters.json` with the runtime's record.

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;

use naam_ipipe::{CoreId, CostModel, IpipeConfig, Runtime};
use naam_net::UdpSocket;
use naam_types::PolicySpec;
use naam_types::ipipe::IpipeParams;

use super::driver::SideDriver;
use super::link::{self, LINK_QUEUE_MAX, LinkMsg};
use crate::config::{NicConfig, RoleConfig};
use crate::nic::{COUNTERS_FILE, HOST_READY_TIMEOUT, NicCounters, READY_FILE};
use crate::os::{cpu_for, pin_current_thread};
use crate::ready::{self, HostReady, NicReady};
use crate::timeline::TimelineWatch;
use crate::{RoleError, workload};

/// What the NIC's eBPF column of `server.json` says when iPipe served.
pub const NATIVE_ACTORS: &str = "native (iPipe actors)";

/// Runs the NIC role as iPipe's NIC until `stop` is set.
pub fn run(
    config: &RoleConfig,
    nic: &NicConfig,
    policy: &PolicySpec,
    stop: &'static AtomicBool,
) -> Result<(), RoleError> {
    let (params, processes) = super::params_of(policy)
        .ok_or_else(|| RoleError::Setup(format!("{} is not an iPipe series", policy.name())))?;
    if nic.data_path != crate::config::NicDataPath::SharedMemory {
        return Err(RoleError::Setup(
            "iPipe's actors copy their regions from the host's shared-memory files: an off-box NIC (RDMA data path) cannot run it yet".into(),
        ));
    }
    let host: HostReady = ready::wait_for(&nic.host_ready, HOST_READY_TIMEOUT)?;
    let link_addr = host.ipipe_link.ok_or_else(|| {
        RoleError::Setup(
            "the host runs no iPipe counterpart (no `ipipe_link` in its ready file)".into(),
        )
    })?;
    let runtime = nic_runtime(nic, &host, &params, processes)?;
    let actors = host.dataset.tenants.len() as u32;
    let sockets = crate::nic::bind_workers(&host, nic.workers)?;
    let stream = link::connect(link_addr, &nic.control_key).map_err(setup)?;
    let (tx, rx) = crossbeam_channel::bounded(LINK_QUEUE_MAX);
    let forwarders = if host.nic_listen.is_empty() {
        Vec::new()
    } else {
        vec![host.ingress]
    };
    let costs = CostModel::from_params(&params);
    let driver = SideDriver::new(runtime, costs, nic.core_speed_factor, &forwarders, tx);
    let timeline = TimelineWatch::start(&config.timeline, stop);
    let threads = Threads {
        driver: &driver,
        sockets: &sockets,
        cpus: &nic.cpus,
        stop,
    };
    threads.serve(config, stream, &rx, &timeline)?;
    let t = timeline.get();
    let phase_ns = t.map_or(0, |t| t.measure_ms * 1_000_000);
    let measure_start = t.map_or(0, |t| t.measure_start_realtime_ns());
    let counters = NicCounters {
        nic: driver.counters(phase_ns),
        malformed: driver.malformed(),
        vm: NATIVE_ACTORS.into(),
        ipipe: Some(driver.record(measure_start, actors)),
        ..NicCounters::of(nic.workers, phase_ns, &[])
    };
    ready::write_atomic(&config.out_dir.join(COUNTERS_FILE), &counters)
        .map_err(|e| RoleError::io(&config.out_dir, "write counters", e))
}

fn setup(e: impl std::fmt::Display) -> RoleError {
    RoleError::Setup(e.to_string())
}

/// The NIC's runtime: FCFS cores = the NIC's workers, the parameters' DRR cores beside them,
/// one actor per tenant holding a copy of the tenant's regions (read from the host's files).
fn nic_runtime(
    nic: &NicConfig,
    host: &HostReady,
    params: &IpipeParams,
    processes: bool,
) -> Result<Runtime, RoleError> {
    let fcfs = u16::try_from(nic.workers)
        .map_err(|_| RoleError::Setup(format!("{} NIC workers", nic.workers)))?;
    let mut runtime =
        Runtime::new(IpipeConfig::nic_from_params(fcfs, params, processes)).map_err(setup)?;
    let server = workload::server(&nic.dataset)?;
    let functions = super::actor_functions(&*server)?;
    let regions = crate::nic::map_regions(host)?;
    let by_rkey: HashMap<u64, u32> = host.catalog.iter().map(|e| (e.rkey, e.id)).collect();
    for (t, tenant) in host.dataset.tenants.iter().enumerate() {
        let bytes = tenant
            .rkeys
            .iter()
            .map(|rkey| {
                let region = by_rkey
                    .get(rkey)
                    .and_then(|&id| regions.get(id as usize)?.as_ref());
                let region = region.ok_or_else(|| {
                    RoleError::Setup(format!("tenant {t}: no region file for rkey {rkey:#x}"))
                })?;
                let mut out = vec![0u8; region.len()];
                match region.read_into(0, &mut out) {
                    true => Ok(out),
                    false => Err(RoleError::Setup(format!("tenant {t}: region unreadable"))),
                }
            })
            .collect::<Result<Vec<_>, RoleError>>()?;
        let workload = &nic.dataset.workload;
        super::install_actor(&mut runtime, workload, t, &bytes, &tenant.rkeys, &functions)
            .map_err(RoleError::Setup)?;
    }
    Ok(runtime)
}

/// The NIC's threads over one driver.
struct Threads<'a> {
    driver: &'a SideDriver,
    sockets: &'a [UdpSocket],
    cpus: &'a [u32],
    stop: &'static AtomicBool,
}

impl Threads<'_> {
    /// Starts every thread, announces the NIC, and waits for `stop`.
    fn serve(
        &self,
        config: &RoleConfig,
        stream: std::net::TcpStream,
        rx: &crossbeam_channel::Receiver<LinkMsg>,
        timeline: &TimelineWatch,
    ) -> Result<(), RoleError> {
        let Threads {
            driver,
            sockets,
            cpus,
            stop,
        } = *self;
        let reader = stream.try_clone().map_err(setup)?;
        let mut reader = link::Reader::new(reader).map_err(setup)?;
        std::thread::scope(|scope| {
            for (i, socket) in sockets.iter().enumerate() {
                let cpus = cpu_for(cpus, i);
                scope.spawn(move || {
                    let _ = pin_current_thread(&cpus);
                    driver.serve_socket(socket, stop);
                });
            }
            for core in 0..driver.cores() {
                let socket = &sockets[usize::from(core) % sockets.len()];
                let cpus = cpu_for(cpus, usize::from(core));
                scope.spawn(move || {
                    let _ = pin_current_thread(&cpus);
                    driver.serve_core(CoreId(core), socket, stop);
                });
            }
            scope.spawn(move || {
                if let Err(e) = link::send_loop(stream, rx, stop) {
                    driver.fail(e.to_string());
                }
            });
            scope.spawn(move || {
                loop {
                    match reader.next(stop) {
                        Ok(Some(msg)) => driver.apply(msg, &sockets[0]),
                        Ok(None) => break,
                        Err(e) => break driver.fail(e.to_string()),
                    }
                }
            });
            scope.spawn(move || driver.watch_phase(timeline, stop));
            let ready = NicReady {
                listen: sockets.iter().map(UdpSocket::local_addr).collect(),
                pid: std::process::id(),
            };
            let written = ready::write_atomic(&config.out_dir.join(READY_FILE), &ready);
            if written.is_err() {
                // Nobody will know this NIC serves: stop its threads.
                stop.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            written.map_err(|e| RoleError::io(&config.out_dir, "write ready file", e))
        })
    }
}
