//! The iPipe baseline (naam-ipipe) as the server of a simulated point: the same clients, links,
//! server port and raw files as NAAM's simulated points ([`super::SimPoint`]), with the server
//! replaced by iPipe's runtime — a NIC side (the profile's NIC cores: the last
//! `drr_cores` serve downgraded actors, core 0 also manages) and a host side (the profile's host
//! cores, all FCFS) — driven on the point's virtual clock as `naam_ipipe::drive` drives it.
//!
//! **Real:** the runtime's scheduling (FCFS ingress, DRR, downgrades, the management core's
//! migrations in four phases, process-per-tenant switches), and the actors' native MICA and
//! B-tree handlers over each tenant's own copy of its dataset, answering the clients' requests
//! with the bytes the clients verify.
//!
//! **Modelled** (time only): a request job occupies its core for the side's `rx_ns` (receiving
//! it), the native handler's time from the profile's `[native]` table (× `nic_factor` on the NIC)
//! and the side's `tx_ns` (sending the reply), on the host in the gaps between a hog's slices
//! (as NAAM's host cores: [`crate::cores::HogSlices`]); a forward costs the
//! NIC's `rx_ns` and a DMA transfer; switches, hand-offs and DMA (forwards, migrated objects,
//! pushed requests) come from naam-ipipe's [`CostModel`] (BlueField-2 DOCA DMA rates, the
//! measured isolation costs or the manifest's). The actor's statistics (its tail and mean, which
//! decide downgrades) see the handler's time only, as iPipe times an actor's execution.
//!
//! **Tenants are actors:** one actor per tenant, serving that tenant's functions and owning a
//! copy of that tenant's regions as its objects (iPipe's actors own their state; NAAM's tenants
//! have their own regions, so both systems hold the same per-tenant state). Every request
//! arrives at the NIC; an actor the management core moved to the host is reached by a forward.

use naam_engine::{Location, Nanos};
use naam_ipipe::{
    CoreId, CostModel, Direction, Event as IpipeOutput, IpipeConfig, Job, Op, Runtime,
    RuntimeStats, Side, Task, TaskKind,
};
use naam_results::raw::{self, IpipeRecord, MIGRATIONS_LISTED_MAX, MigrationRecord};
use naam_roles::host::memory::HostMemory;
use naam_roles::workload::{DatasetMeta, ServerWorkload};

use super::{Event, SimError, SimPoint, SimPointConfig, setup};
use crate::profile::{CpuCost, NativeCost};

/// An event of the iPipe server.
#[derive(Debug)]
pub(super) enum IpipeEvent {
    /// A request datagram from client `source` reaches a side (the NIC from the port, the host
    /// from a forward).
    Arrive(Side, u32, Vec<u8>),
    /// A side's core finished its job.
    Finish(Side, u16),
    /// The measured phase starts (`false`) or ends (`true`): counters are read.
    Phase(bool),
}

/// One side: its runtime, its cores' jobs (with the handler time the actor is charged), its
/// per-message costs.
struct IpipeSide {
    runtime: Runtime,
    running: Vec<Option<(Job, u64)>>,
    cpu: CpuCost,
    /// Counters at the measured phase's start and end (the end read at the run's end if the
    /// clients finished before the phase's end event ran).
    stats_at: [RuntimeStats; 2],
    ended: bool,
}

/// The NIC and host sides of the iPipe server.
pub(super) struct IpipeServers {
    sides: [IpipeSide; 2],
    costs: CostModel,
    native: NativeCost,
    record: IpipeRecord,
}

fn index(side: Side) -> usize {
    usize::from(side == Side::Host)
}

impl IpipeServers {
    /// The iPipe server of `config`, if its policy is an iPipe series: one actor per tenant on
    /// the NIC, owning a copy of the tenant's loaded regions.
    pub(super) fn for_point(
        config: &SimPointConfig,
        workload: &dyn ServerWorkload,
        memory: &HostMemory,
        meta: &DatasetMeta,
    ) -> Result<Option<IpipeServers>, SimError> {
        let Some((params, processes)) = naam_roles::ipipe::params_of(&config.policy) else {
            return Ok(None);
        };
        let profile = &config.profile;
        let nic_cores = u16::try_from(profile.nic.cores).unwrap_or(u16::MAX);
        let Some(fcfs) = nic_cores.checked_sub(params.drr_cores).filter(|&c| c > 0) else {
            return Err(SimError::Config(format!(
                "iPipe needs an FCFS core beside its {} DRR cores; the profile's NIC has {nic_cores}",
                params.drr_cores
            )));
        };
        let nic_config = IpipeConfig::nic_from_params(fcfs, &params, processes);
        let host_cores = u16::try_from(profile.host.cores).unwrap_or(u16::MAX);
        let host_config = naam_roles::ipipe::host_config(host_cores, &params, processes);
        let mut nic = Runtime::new(nic_config).map_err(setup)?;
        let functions = naam_roles::ipipe::actor_functions(workload).map_err(setup)?;
        for (t, tenant) in meta.tenants.iter().enumerate() {
            let bytes: Vec<Vec<u8>> = memory
                .tenant_regions(t)
                .iter()
                .map(|r| {
                    let mut out = vec![0u8; r.len()];
                    r.read_into(0, &mut out);
                    out
                })
                .collect();
            let workload = &config.dataset.workload;
            naam_roles::ipipe::install_actor(
                &mut nic,
                workload,
                t,
                &bytes,
                &tenant.rkeys,
                &functions,
            )
            .map_err(SimError::Setup)?;
        }
        let host = Runtime::new(host_config).map_err(setup)?;
        let record = IpipeRecord {
            isolation: naam_roles::ipipe::isolation_name(nic_config.isolation).into(),
            actors: meta.tenants.len() as u32,
            cores: [nic_config.cores, host_config.cores],
            ..IpipeRecord::default()
        };
        Ok(Some(IpipeServers {
            sides: [side_of(nic, profile.nic), side_of(host, profile.host)],
            costs: CostModel::from_params(&params),
            native: profile.native,
            record,
        }))
    }

    /// A side's counters over the measured phase, as `server.json` has them: a completion is a
    /// request run to its reply on that side; a step is one run of an actor.
    pub(super) fn counters(&self, location: Location, measure_ns: u64) -> raw::LocationCounters {
        let s = &self.sides[usize::from(location == Location::Host)];
        let [start, end] = s.stats_at;
        let capacity_ns = (s.running.len() as u64).saturating_mul(measure_ns);
        naam_roles::ipipe::phase_counters(&start, &end, capacity_ns)
    }

    /// Reads the measured phase's end counters if its end event has not run (the run is over).
    pub(super) fn end_phase(&mut self) {
        for s in self.sides.iter_mut().filter(|s| !s.ended) {
            s.stats_at[1] = *s.runtime.stats();
            s.ended = true;
        }
    }

    /// The run's record, with the runtimes' totals.
    pub(super) fn record(&self) -> IpipeRecord {
        let [nic, host] = [self.sides[0].runtime.stats(), self.sides[1].runtime.stats()];
        IpipeRecord {
            downgrades: nic.downgrades + host.downgrades,
            migrations_to_host: nic.migrations_to_host,
            migrations_to_nic: nic.migrations_to_nic,
            forwarded: nic.forwarded,
            tenant_switches: nic.tenant_switches + host.tenant_switches,
            refused: nic.refused + host.refused,
            ..self.record.clone()
        }
    }

    /// The handler's CPU time of a request job on `side` (what the actor's statistics see).
    fn handler_ns(&self, side: Side, task: &Task) -> u64 {
        let TaskKind::Run { op } = task.kind else {
            return 0;
        };
        let native = &self.native;
        let host_ns = match op {
            Op::MicaGet => native.mica_get_ns,
            Op::MicaSet => native.mica_set_ns,
            Op::BtreeLookup => native.btree_lookup_ns,
            Op::Echo => 0.0,
        };
        let factor = match side {
            Side::Nic => native.nic_factor,
            Side::Host => 1.0,
        };
        (host_ns * factor).round() as u64
    }

    /// How long `task` holds its core: packet costs, the handler, the modelled overheads.
    fn core_ns(&self, side: Side, task: &Task, handler_ns: u64) -> u64 {
        let cpu = self.sides[index(side)].cpu;
        let packets_ns = match task.kind {
            TaskKind::Run { .. } => cpu.rx_ns + cpu.tx_ns,
            TaskKind::Forward { .. } => cpu.rx_ns,
            TaskKind::Migrate { .. } | TaskKind::Export { .. } => 0.0,
        };
        let packets_ns = packets_ns.round() as u64;
        packets_ns + handler_ns + self.costs.overhead_ns(task)
    }
}

fn side_of(runtime: Runtime, cpu: CpuCost) -> IpipeSide {
    IpipeSide {
        running: (0..runtime.config().cores).map(|_| None).collect(),
        runtime,
        cpu,
        stats_at: [RuntimeStats::default(); 2],
        ended: false,
    }
}

impl SimPoint {
    /// Handles an event of the iPipe server, then starts what its idle cores can take.
    pub(super) fn ipipe_event(&mut self, event: IpipeEvent) {
        let now = self.now();
        let Some(ipipe) = self.ipipe.as_mut() else {
            return;
        };
        match event {
            IpipeEvent::Arrive(side, k, frame) => {
                ipipe.sides[index(side)]
                    .runtime
                    .submit(Nanos(now), u64::from(k), &frame);
                self.frames.give(frame);
            }
            IpipeEvent::Finish(side, core) => {
                let s = &mut ipipe.sides[index(side)];
                if let Some((job, handler_ns)) = s.running[usize::from(core)].take() {
                    s.runtime.finish(Nanos(now), job, handler_ns);
                }
            }
            IpipeEvent::Phase(end) => {
                for s in &mut ipipe.sides {
                    s.stats_at[usize::from(end)] = *s.runtime.stats();
                    s.ended |= end;
                }
            }
        }
        self.ipipe_outputs();
        self.ipipe_start(Side::Nic);
        self.ipipe_start(Side::Host);
    }

    /// Starts a job on every idle core of `side` (on the host, none while a hog's slice holds
    /// the cores; a job is preempted by the slices it crosses into).
    pub(super) fn ipipe_start(&mut self, side: Side) {
        let now = self.now();
        let hog = match side {
            Side::Host => self.hog,
            Side::Nic => None,
        };
        if hog.is_some_and(|h| h.held_until(now).is_some()) {
            return;
        }
        let Some(ipipe) = self.ipipe.as_mut() else {
            return;
        };
        let mut finishes = Vec::new();
        for core in 0..ipipe.sides[index(side)].running.len() {
            let s = &mut ipipe.sides[index(side)];
            if s.running[core].is_some() {
                continue;
            }
            let Ok(Some(mut job)) = s.runtime.start(CoreId(core as u16), Nanos(now)) else {
                continue;
            };
            job.execute();
            let task = *job.task();
            let handler_ns = ipipe.handler_ns(side, &task);
            let busy_ns = ipipe.core_ns(side, &task, handler_ns).max(1);
            ipipe.sides[index(side)].running[core] = Some((job, handler_ns));
            let end = hog.map_or(now + busy_ns, |h| h.finish_ns(now, busy_ns));
            finishes.push((end, core as u16));
        }
        for (at, core) in finishes {
            self.events
                .schedule_at(at, Event::Ipipe(IpipeEvent::Finish(side, core)));
        }
    }

    /// Replies leave through the server's port; the runtimes' events are delivered at once.
    fn ipipe_outputs(&mut self) {
        let now = self.now();
        let warmup = self.config.warmup_ns;
        let Some(ipipe) = self.ipipe.as_mut() else {
            return;
        };
        let mut scheduled = Vec::new();
        for i in 0..2 {
            loop {
                let mut frame = self.frames.take();
                let Some(t) = ipipe.sides[i].runtime.poll_transmit(&mut frame) else {
                    self.frames.give(frame);
                    break;
                };
                scheduled.push(Event::Egress(t.source as u32, frame));
            }
            while let Some(output) = ipipe.sides[i].runtime.poll_event() {
                if let Some(event) = ipipe.route(output, now, warmup) {
                    scheduled.push(event);
                }
            }
        }
        for event in scheduled {
            self.events.schedule_at(now, event);
        }
    }
}

impl IpipeServers {
    /// Delivers a runtime's event as `naam_ipipe::drive` does; a forward becomes an arrival at
    /// the host.
    fn route(&mut self, output: IpipeOutput, now: u64, warmup: u64) -> Option<Event> {
        let [nic, host] = &mut self.sides;
        let failure = match output {
            IpipeOutput::Forward { source, frame, .. } => {
                let arrive = IpipeEvent::Arrive(Side::Host, source as u32, frame);
                return Some(Event::Ipipe(arrive));
            }
            IpipeOutput::Migrated(image) => host.runtime.import(image).err().map(|r| r.error),
            IpipeOutput::Exported(image) => nic.runtime.deliver_image(image).err().map(|r| r.error),
            IpipeOutput::Recall { actor } => host.runtime.begin_export(actor).err(),
            IpipeOutput::MigrationDone {
                actor,
                direction,
                started,
                bytes,
                requests,
                ..
            } => {
                if self.record.migrations.len() < MIGRATIONS_LISTED_MAX {
                    let since = |t: u64| t as i64 - warmup as i64;
                    self.record.migrations.push(MigrationRecord {
                        actor: actor.0,
                        to_host: direction == Direction::ToHost,
                        started_ns: since(started.0),
                        finished_ns: since(now),
                        bytes,
                        requests,
                    });
                }
                None
            }
            IpipeOutput::Downgraded { .. }
            | IpipeOutput::Upgraded { .. }
            | IpipeOutput::MigrationStarted { .. } => None,
        };
        if let Some(error) = failure {
            self.record.failures.push(error.to_string());
        }
        None
    }
}
