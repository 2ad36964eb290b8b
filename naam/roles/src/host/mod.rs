//! The server host role: loads every tenant's dataset into shared-memory regions, registers the
//! functions, binds the ingress (behind the eSwitch), the emulated RNIC and the control port,
//! writes `host.ready.json`, and serves until told to stop; then writes its counters, the
//! steering changes and the load samples.

pub mod control;
pub mod memory;
pub mod rnic;
pub mod samples;
pub mod switch;

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use naam_engine::control::{HOST_SAMPLES_PENDING_MAX, HostLoad, SilenceRule};
use naam_engine::function::Code;
use naam_engine::{
    Controller, FunctionTable, Location, Nanos, RegionTable, RuleKey, RuleTable, ServerControl,
    ServerWorker, Shares, WorkerConfig, policy,
};
use naam_results::raw::DroppedDatagrams;
use serde::{Deserialize, Serialize};

use crate::config::{HostConfig, PolicySpec, RoleConfig, VmBackend};
use crate::control_auth::{ControlDrops, SampleGate};
use crate::counters::{CpuRegistry, ThreadRole, Totals};
use crate::ipipe::host::Counterpart;
use crate::os::{cpu_for, pin_current_thread, realtime_ns};
use crate::ready::{self, HostReady};
use crate::serve::{
    ControlShared, DirectPath, Liveness, Natives, SampleSink, WorkerReport, WorkerThread,
};
use crate::timeline::TimelineWatch;
use crate::workload::{self, FunctionCode, ServerWorkload, tenant_id};
use crate::{RoleError, udp};
use control::ControlLoop;
use memory::HostMemory;

/// File names the host writes in its out dir.
pub const READY_FILE: &str = "host.ready.json";
/// The host's counters of the measured phase.
pub const COUNTERS_FILE: &str = "host.counters.json";

/// `host.counters.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HostCounters {
    /// The results schema's counters (measured phase).
    pub host: naam_results::raw::LocationCounters,
    /// Raw totals of the measured phase.
    pub totals: Totals,
    /// The emulated RNIC's reads.
    pub rnic: rnic::RnicReport,
    /// Datagrams the eSwitch steered to host, NIC and client (whole run).
    pub steered: [u64; 3],
    /// `kernel` or `user`.
    pub eswitch: String,
    /// Malformed datagrams at the workers.
    pub malformed: u64,
    /// Messages whose reply address the workers ignored (not from the eSwitch): forged or
    /// foreign requests, answered at their source instead (whole run).
    #[serde(default)]
    pub reply_to_refused: u64,
    /// Replies dropped: the worker could not remember their sender (whole run).
    #[serde(default)]
    pub unanswerable: u64,
    /// NIC control datagrams refused, by reason (forged, stale or impossible samples).
    #[serde(default)]
    pub control_drops: ControlDrops,
    /// Controller ticks at which a silent host worker was queued for a CPU (whole run): the
    /// evidence that made its silence count as queueing delay at once.
    #[serde(default)]
    pub waiting_for_cpu_ticks: u64,
    /// Failed rule applications.
    pub apply_errors: u64,
    /// The last failure, if any.
    pub last_apply_error: Option<String>,
    /// What the host's eBPF functions ran on (`FunctionTable::describe_tiers`).
    #[serde(default)]
    pub vm: String,
    /// Load samples of the measured phase written to `samples.jsonl`, and any it dropped.
    #[serde(default)]
    pub samples: samples::LogWritten,
    /// Rule changes of the measured phase written to `steering.jsonl`, and any it dropped.
    #[serde(default)]
    pub steering: samples::LogWritten,
    /// Datagrams the host's workers and emulated RNIC received and did not serve (whole run).
    #[serde(default)]
    pub dropped: naam_results::raw::DroppedDatagrams,
    /// CPU of every host-side thread and the host cores' interrupt time in the measured phase
    /// (`None` when the phase never ran).
    #[serde(default)]
    pub cpu: Option<naam_results::raw::HostCpu>,
    /// The iPipe counterpart's record (iPipe series: `host` then counts its completions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipipe: Option<naam_results::raw::IpipeRecord>,
}

/// Runs the host role until `stop` is set.
pub fn run(
    config: &RoleConfig,
    host: &HostConfig,
    stop: &'static AtomicBool,
) -> Result<(), RoleError> {
    let (shared, bound) = Shared::build(config, host, stop)?;
    let counters = shared.serve(config, host, bound, stop)?;
    ready::write_atomic(&config.out_dir.join(COUNTERS_FILE), &counters)
        .map_err(|e| RoleError::io(&config.out_dir, "write counters", e))
}

/// What the host's threads share.
struct Shared {
    workload: Arc<dyn ServerWorkload>,
    table: Arc<RegionTable>,
    memory: Arc<HostMemory>,
    functions: Arc<FunctionTable>,
    control: Arc<ControlShared>,
    sample_tx: crossbeam_channel::Sender<naam_engine::wire::LoadSample>,
    heartbeats: Vec<Arc<Liveness>>,
    timeline: TimelineWatch,
    /// The user-space eSwitch's ingress (its forwards name the client's reply address), if any.
    forwarders: Vec<SocketAddr>,
    cpu: CpuRegistry,
}

/// What the host's threads each own, and the ready file that announces them.
struct Bound {
    /// The iPipe counterpart (iPipe series only).
    ipipe: Option<Counterpart>,
    worker_sockets: Vec<naam_net::UdpSocket>,
    rnic_socket: naam_net::UdpSocket,
    control_loop: ControlLoop,
    ready: HostReady,
    /// The regions' RDMA registration, kept until the host stops (with `rdma_export`).
    rdma: Option<crate::rdma::HostExport>,
}

impl Shared {
    /// Loads the dataset, registers the functions, binds every socket and sets up the control
    /// stage with the policy's initial decision applied.
    fn build(
        config: &RoleConfig,
        host: &HostConfig,
        stop: &'static AtomicBool,
    ) -> Result<(Shared, Bound), RoleError> {
        let workload: Arc<dyn ServerWorkload> = Arc::from(workload::server(&host.dataset)?);
        let tenants = host.dataset.tenants;
        let secret = memory::fresh_secret()?;
        let (table, memory, meta) =
            memory::build(&*workload, tenants, &host.shm_dir, &config.run_id, secret)?;
        let net = switch::bind(host)?;
        let sampler = nic_sampler(host, &net);
        let rnic_socket = udp::bind(SocketAddr::new(host.listen_ip, 0), false)?;
        let (sample_tx, sample_rx) = crossbeam_channel::bounded(HOST_SAMPLES_PENDING_MAX);
        let shared = Shared {
            functions: Arc::new(functions(&*workload, tenants, host.vm_backend)?),
            workload,
            table: Arc::new(table),
            memory: Arc::new(memory),
            control: Arc::new(ControlShared::default()),
            sample_tx,
            heartbeats: fresh_liveness(host.workers),
            timeline: TimelineWatch::start(&config.timeline, stop),
            forwarders: forwarders(host, &net),
            cpu: CpuRegistry::default(),
        };
        let mut control_loop = ControlLoop {
            stage: control_stage(host, &*shared.workload)?,
            eswitch: net.eswitch,
            control: Arc::clone(&shared.control),
            host_samples: sample_rx,
            heartbeats: shared.heartbeats.clone(),
            liveness: liveness_reader(host),
            socket: udp::bind(SocketAddr::new(control_ip(host), 0), false)?,
            timeline: shared.timeline.clone(),
            policy_name: host.policy.name().to_string(),
            samples: control_log(&config.out_dir, naam_results::raw::SAMPLES_FILE)?,
            steering: control_log(&config.out_dir, naam_results::raw::STEERING_FILE)?,
            trace: std::env::var_os("NAAM_TRACE_CONTROL").is_some_and(|v| v == "1"),
            gate: SampleGate::new(host.control_key, sampler),
        };
        control_loop.apply_initial().map_err(RoleError::Setup)?;
        let (rdma, rdma_ready) = shared.export(host)?.unzip();
        let ipipe = Counterpart::bind(host)?;
        let ready = HostReady {
            ingress: crate::config::reachable(net.ingress),
            rnic: crate::config::reachable(rnic_socket.local_addr()),
            control: crate::config::reachable(control_loop.socket.local_addr()),
            control_source: host.nic_link.map(|_| sampler),
            eswitch: control_loop.eswitch.kind().to_string(),
            nic_listen: net.nic_listen,
            catalog: memory::catalog(&shared.table),
            shm: shared.memory.shm_entries(),
            dataset: meta,
            pid: std::process::id(),
            rdma: rdma_ready,
            ipipe_link: ipipe.as_ref().map(Counterpart::link_addr).transpose()?,
            host_native_pinned: ipipe.is_none(),
        };
        let bound = Bound {
            ipipe,
            worker_sockets: net.worker_sockets,
            rnic_socket,
            control_loop,
            ready,
            rdma,
        };
        Ok((shared, bound))
    }

    /// With `rdma_export`: the regions registered for an off-box NIC's READs (fails at start
    /// without a device) and what the ready file publishes; the handshake and the queue pairs'
    /// GID on the RDMA link's host end when the host has one, else on the control address.
    fn export(
        &self,
        host: &HostConfig,
    ) -> Result<Option<(crate::rdma::HostExport, crate::ready::RdmaExport)>, RoleError> {
        if !host.rdma_export {
            return Ok(None);
        }
        let (listen_ip, gid_address) = match host.rdma_link {
            Some(link) => (IpAddr::V4(link.host_ip), Some(IpAddr::V4(link.host_ip))),
            None => (control_ip(host), None),
        };
        crate::rdma::export_host_regions(&self.memory, &self.table, listen_ip, gid_address)
            .map(Some)
    }

    /// Host worker `i` on `socket`.
    fn worker(
        &self,
        host: &HostConfig,
        i: usize,
        socket: naam_net::UdpSocket,
    ) -> Result<WorkerThread<DirectPath>, RoleError> {
        Ok(WorkerThread {
            worker: host_worker(&self.functions, &self.table, host.sample_period_us * 1000)?,
            socket,
            path: DirectPath::new(Arc::clone(&self.memory)),
            natives: Some(Natives::new(
                Arc::clone(&self.workload),
                Arc::clone(&self.memory),
            )),
            control: Arc::clone(&self.control),
            samples: SampleSink::Channel(self.sample_tx.clone()),
            heartbeat: Arc::clone(&self.heartbeats[i]),
            core_speed_factor: 1.0,
            timeline: self.timeline.clone(),
            busy_poll: host.polling == crate::config::Polling::BusyPoll,
            forwarders: self.forwarders.clone(),
        })
    }

    /// Host workers on `sockets`, pinned to the host's CPUs.
    fn spawn_workers<'scope>(
        &'scope self,
        pin: &Pinned<'scope, '_>,
        host: &HostConfig,
        sockets: Vec<naam_net::UdpSocket>,
        stop: &'static AtomicBool,
    ) -> Result<Vec<std::thread::ScopedJoinHandle<'scope, WorkerReport>>, RoleError> {
        sockets
            .into_iter()
            .enumerate()
            .map(|(i, socket)| {
                let worker = self.worker(host, i, socket)?;
                let run = move || worker.run(stop);
                Ok(pin.spawn(&cpu_for(&host.cpus, i), ThreadRole::Worker, run))
            })
            .collect()
    }

    /// Starts the RNIC, the workers and the controller, announces the host, and serves until
    /// `stop`; returns the counters of the measured phase.
    fn serve(
        &self,
        config: &RoleConfig,
        host: &HostConfig,
        bound: Bound,
        stop: &'static AtomicBool,
    ) -> Result<HostCounters, RoleError> {
        // `_rdma` keeps the regions registered until the workers have stopped.
        let Bound {
            ipipe,
            worker_sockets,
            rnic_socket,
            control_loop,
            ready,
            rdma: _rdma,
        } = bound;
        let eswitch_kind = ready.eswitch.clone();
        std::thread::scope(|scope| -> Result<HostCounters, RoleError> {
            let (table, memory) = (Arc::clone(&self.table), Arc::clone(&self.memory));
            let registry = &self.cpu;
            let pin = Pinned { scope, registry };
            let rnic_serve = move || rnic::serve(rnic_socket, table, memory, stop);
            let rnic = pin.spawn(&host.rnic_cpus, ThreadRole::Rnic, rnic_serve);
            let workers = self.spawn_workers(&pin, host, worker_sockets, stop)?;
            // The control plane runs with the NIC (BlueField-2 runs its eSwitch's control plane
            // on the Arm cores), never on the host cores it must judge: a hog there would starve
            // it.
            let run = move || control_loop.run(stop);
            let controller = pin.spawn(&host.rnic_cpus, ThreadRole::Controller, run);
            let ipipe_threads = ipipe.as_ref().map_or_else(Vec::new, |cp| {
                spawn_ipipe(&pin, cp, host, &self.timeline, stop)
            });
            let host_cores = &host.cpus;
            let accountant = scope.spawn(move || {
                crate::counters::account_measured_phase(registry, host_cores, &self.timeline, stop)
            });
            ready::write_atomic(&config.out_dir.join(READY_FILE), &ready)
                .map_err(|e| RoleError::io(&config.out_dir, "write ready file", e))?;
            let reports: Vec<WorkerReport> = workers
                .into_iter()
                .map(|w| w.join().unwrap_or_default())
                .collect();
            ipipe_threads
                .into_iter()
                .for_each(|t| t.join().unwrap_or_default());
            let control = controller.join().unwrap_or_default();
            let rnic = rnic.join().unwrap_or_default();
            let cpu = accountant.join().unwrap_or_default();
            report_dropped(naam_results::raw::SAMPLES_FILE, &control.samples);
            report_dropped(naam_results::raw::STEERING_FILE, &control.steering);
            let phase_ns = self.timeline.get().map_or(0, |t| t.measure_ms * 1_000_000);
            let of = HostCounters::of(
                host.workers,
                phase_ns,
                &reports,
                control,
                rnic,
                eswitch_kind,
            );
            let counters = HostCounters {
                cpu,
                vm: self.functions.describe_tiers(),
                ..of
            };
            Ok(with_ipipe(counters, ipipe.as_ref(), &self.timeline))
        })
    }
}

impl HostCounters {
    /// The host's counters from its threads' reports.
    fn of(
        workers: u32,
        phase_ns: u64,
        reports: &[WorkerReport],
        control: control::ControlReport,
        rnic: rnic::RnicReport,
        eswitch: String,
    ) -> HostCounters {
        let totals = reports
            .iter()
            .fold(Totals::default(), |acc, r| acc.plus(&r.measured));
        HostCounters {
            host: totals.location_counters(workers, phase_ns),
            totals,
            rnic,
            steered: control.steered,
            eswitch,
            malformed: reports.iter().map(|r| r.malformed).sum(),
            reply_to_refused: reports.iter().map(|r| r.reply_to_refused).sum(),
            unanswerable: reports.iter().map(|r| r.unanswerable).sum(),
            control_drops: control.drops,
            waiting_for_cpu_ticks: control.waiting_for_cpu_ticks,
            apply_errors: control.apply_errors,
            last_apply_error: control.last_apply_error,
            vm: String::new(),
            samples: control.samples,
            steering: control.steering,
            dropped: crate::counters::dropped(reports).plus(&DroppedDatagrams {
                malformed: rnic.malformed,
                denied_reads: rnic.denied,
                ..DroppedDatagrams::default()
            }),
            cpu: None,
            ipipe: None,
        }
    }
}

/// The iPipe counterpart's threads: its cores on the host's CPUs (as host workers), its link
/// with the NIC's control plane, and its phase watcher.
fn spawn_ipipe<'scope>(
    pin: &Pinned<'scope, '_>,
    cp: &'scope Counterpart,
    host: &HostConfig,
    timeline: &'scope TimelineWatch,
    stop: &'static AtomicBool,
) -> Vec<std::thread::ScopedJoinHandle<'scope, ()>> {
    let mut threads: Vec<_> = (0..cp.cores())
        .map(|core| {
            let cpus = cpu_for(&host.cpus, usize::from(core));
            pin.spawn(&cpus, ThreadRole::Worker, move || cp.serve_core(core, stop))
        })
        .collect();
    threads.push(pin.spawn(&host.rnic_cpus, ThreadRole::Rnic, move || {
        cp.serve_link(stop);
    }));
    threads.push(pin.spawn(&host.rnic_cpus, ThreadRole::Controller, move || {
        cp.watch_phase(timeline, stop);
    }));
    threads
}

/// With iPipe serving, the host's counters are its counterpart's plus whatever NAAM's host
/// workers served (nothing: the host announces that no call is pinned, and the rules send every
/// request to the NIC; were one served there, it is counted where it ran), and its record joins
/// them.
fn with_ipipe(
    counters: HostCounters,
    ipipe: Option<&Counterpart>,
    timeline: &TimelineWatch,
) -> HostCounters {
    let Some(cp) = ipipe else {
        return counters;
    };
    let t = timeline.get();
    let phase_ns = t.map_or(0, |t| t.measure_ms * 1_000_000);
    let measure_start = t.map_or(0, |t| t.measure_start_realtime_ns());
    HostCounters {
        host: crate::ipipe::same_cores(&cp.counters(phase_ns), &counters.host),
        ipipe: Some(cp.record(measure_start)),
        ..counters
    }
}

/// The user-space eSwitch's ingress, whose forwards name the client's reply address (none with
/// the kernel eSwitch).
fn forwarders(host: &HostConfig, net: &switch::Bound) -> Vec<SocketAddr> {
    match host.eswitch {
        crate::config::EswitchMode::User => vec![crate::config::reachable(net.ingress)],
        crate::config::EswitchMode::Kernel | crate::config::EswitchMode::Ovs => Vec::new(),
    }
}

/// Where NIC samples come from: the host–NIC link's NIC end at the ingress port, when the host
/// has that link; else NIC worker 0's socket, on the first address the user-space switch reserved
/// for the NIC, or in the ingress's reuseport group (kernel and Open vSwitch switches).
fn nic_sampler(host: &HostConfig, net: &switch::Bound) -> SocketAddr {
    match host.nic_link {
        Some(link) => link.sample_source(net.ingress.port()),
        None => crate::config::reachable(net.nic_listen.first().copied().unwrap_or(net.ingress)),
    }
}

/// Where the host's control traffic with the NIC (load samples, the RDMA handshake) is bound:
/// the host–NIC link's host end, or the server's address.
fn control_ip(host: &HostConfig) -> std::net::IpAddr {
    host.nic_link.map_or(host.listen_ip, |link| link.host_ip)
}

/// How long a host worker may be silent before its silence counts: a sampling period plus its
/// longest idle wait.
fn silence_allowance_ns(host: &HostConfig) -> u64 {
    host.sample_period_us * 1000 + crate::serve::IDLE_WAIT.as_nanos() as u64
}

/// One liveness record per host worker, each beating now.
fn fresh_liveness(workers: u32) -> Vec<Arc<Liveness>> {
    (0..workers)
        .map(|_| Arc::new(Liveness::new(realtime_ns())))
        .collect()
}

/// The controller's reader of the host workers' liveness, with their silence allowance.
fn liveness_reader(host: &HostConfig) -> control::LivenessReader {
    control::LivenessReader::new(host.workers as usize, silence_allowance_ns(host))
}

/// The server's control stage for `host`: its policy, the workload's fixed rules, host-load
/// aggregation over its sampling period.
fn control_stage(
    host: &HostConfig,
    workload: &dyn ServerWorkload,
) -> Result<ServerControl, RoleError> {
    let period_ns = host.sample_period_us * 1000;
    // A worker's silence beyond the allowance counts when the controller sees it queued for a
    // CPU (a hog), or when it is starved persistently; not when the VM stalls it now and then.
    let silence_allowance_ns = silence_allowance_ns(host);
    // iPipe's NIC receives every request (its actors own their tables, writes included).
    let fixed = match crate::ipipe::params_of(&host.policy) {
        Some(_) => RuleTable::new(Shares::NIC),
        None => fixed_rules(workload, host.dataset.tenants)?,
    };
    ServerControl::new(
        server_controller(&host.policy)?,
        fixed,
        HostLoad::with_silence_rule(period_ns, SilenceRule::stall_tolerant(silence_allowance_ns)),
        Nanos(realtime_ns()),
    )
    .map_err(|e| RoleError::Setup(e.to_string()))
}

/// Runs `f` on the calling thread pinned to `cpus` (unpinned if that fails: a role still serves).
/// Spawns scoped threads pinned to CPUs (best effort) whose CPU time the registry accounts.
struct Pinned<'scope, 'env> {
    scope: &'scope std::thread::Scope<'scope, 'env>,
    registry: &'scope CpuRegistry,
}

impl<'scope> Pinned<'scope, '_> {
    /// Spawns `work` pinned to `cpus`, its CPU time accounted to `role`.
    fn spawn<T: Send + 'scope>(
        &self,
        cpus: &[u32],
        role: ThreadRole,
        work: impl FnOnce() -> T + Send + 'scope,
    ) -> std::thread::ScopedJoinHandle<'scope, T> {
        let (cpus, registry) = (cpus.to_vec(), self.registry);
        self.scope.spawn(move || {
            let _ = pin_current_thread(&cpus);
            registry.register_current(role);
            work()
        })
    }
}

/// Registers every tenant's functions.
pub fn functions(
    workload: &dyn ServerWorkload,
    tenants: u32,
    backend: VmBackend,
) -> Result<FunctionTable, RoleError> {
    let mut table = FunctionTable::new().with_backend(vm_backend(backend));
    for tenant in 0..tenants {
        let specs = workload
            .functions(tenant)
            .map_err(|e| RoleError::Setup(e.to_string()))?;
        for f in specs {
            let registered = match &f.code {
                FunctionCode::Elf { object, section } => table.register_ebpf(
                    tenant_id(tenant),
                    f.id,
                    f.name,
                    Code::Elf {
                        object,
                        name: section,
                    },
                ),
                FunctionCode::HostNative => {
                    table.register_host_native(tenant_id(tenant), f.id, f.name)
                }
            };
            registered.map_err(|e| RoleError::Setup(format!("function {}: {e}", f.name)))?;
        }
    }
    Ok(table)
}

/// One host worker over the shared tables, sampling every `sample_period_ns`.
pub fn host_worker(
    functions: &Arc<FunctionTable>,
    table: &Arc<RegionTable>,
    sample_period_ns: u64,
) -> Result<ServerWorker, RoleError> {
    ServerWorker::new(
        WorkerConfig::new(Location::Host, sample_period_ns),
        Arc::clone(functions),
        Arc::clone(table),
        Nanos(realtime_ns()),
    )
    .map_err(|e| RoleError::Setup(e.to_string()))
}

/// naam-vm's backend for a manifest's choice.
pub fn vm_backend(backend: VmBackend) -> naam_vm::Backend {
    match backend {
        VmBackend::Interpreter => naam_vm::Backend::Interpreter,
        VmBackend::Jit => naam_vm::Backend::Jit,
    }
}

/// The server-side controller of a point's policy: client-side policies (Kayak, Cell) leave the
/// server at the host.
pub fn server_controller(spec: &PolicySpec) -> Result<Controller, RoleError> {
    let spec = if spec.runs_at_client() {
        &PolicySpec::Host
    } else {
        spec
    };
    Ok(Controller::new(policy::build(spec), RuleKey::DEFAULT))
}

/// Rules that no policy moves: host-native functions (writes) always run at the host.
pub fn fixed_rules(workload: &dyn ServerWorkload, tenants: u32) -> Result<RuleTable, RoleError> {
    let mut rules = RuleTable::new(Shares::HOST);
    for tenant in 0..tenants {
        let specs = workload
            .functions(tenant)
            .map_err(|e| RoleError::Setup(e.to_string()))?;
        for f in specs.iter().filter(|f| f.code == FunctionCode::HostNative) {
            rules
                .set(RuleKey::function(tenant_id(tenant), f.id), Shares::HOST)
                .map_err(|e| RoleError::Setup(e.to_string()))?;
        }
    }
    Ok(rules)
}

/// Says on the host's log what a control log dropped (the point is then invalid).
fn report_dropped(file: &str, written: &samples::LogWritten) {
    if written.dropped > 0 {
        eprintln!(
            "host: {file} dropped {} records from {} ms of the measured phase on ({}); the point is invalid",
            written.dropped,
            written.first_dropped_t_ns.unwrap_or(0) / 1_000_000,
            written
                .error
                .as_deref()
                .unwrap_or("the file reached its bound")
        );
    }
}

/// `file` in `out_dir`, streamed as the controller records.
fn control_log(out_dir: &Path, file: &str) -> Result<samples::JsonlLog, RoleError> {
    let path = out_dir.join(file);
    samples::JsonlLog::create(&path, samples::LOG_FILE_BYTES_MAX)
        .map_err(|e| RoleError::io(&path, "create", e))
}
