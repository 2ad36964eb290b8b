//! The host role's iPipe counterpart: a host-side runtime (the host role's worker count of FCFS
//! cores, no actors until the NIC migrates one), the link the NIC connects to, and a socket the
//! host cores answer clients from. The host role starts its threads beside its own
//! ([`crate::host`]): core threads on the host's CPUs, where a hog congests them.

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::AtomicBool;

use naam_ipipe::{CoreId, CostModel, Runtime};
use naam_net::UdpSocket;
use naam_results::raw::{IpipeRecord, LocationCounters};

use super::driver::SideDriver;
use super::link::{self, LINK_QUEUE_MAX, LinkMsg};
use crate::config::{ControlKey, HostConfig, reachable};
use crate::timeline::TimelineWatch;
use crate::{RoleError, udp};

/// The host side of a point's iPipe.
#[derive(Debug)]
pub struct Counterpart {
    listener: TcpListener,
    socket: UdpSocket,
    driver: SideDriver,
    rx: crossbeam_channel::Receiver<LinkMsg>,
    key: ControlKey,
}

impl Counterpart {
    /// The counterpart of `host` if its policy is an iPipe series, bound and ready to accept
    /// the NIC.
    pub fn bind(host: &HostConfig) -> Result<Option<Counterpart>, RoleError> {
        let Some((params, processes)) = super::params_of(&host.policy) else {
            return Ok(None);
        };
        let setup = |e: &dyn std::fmt::Display| RoleError::Setup(format!("iPipe host: {e}"));
        let cores = u16::try_from(host.workers).map_err(|e| setup(&e))?;
        let config = super::host_config(cores, &params, processes);
        let runtime = Runtime::new(config).map_err(|e| setup(&e))?;
        let listener = TcpListener::bind((host.listen_ip, 0))
            .map_err(|e| RoleError::io(std::path::Path::new("tcp"), "bind the iPipe link", e))?;
        let socket = udp::bind(SocketAddr::new(host.listen_ip, 0), false)?;
        let (tx, rx) = crossbeam_channel::bounded(LINK_QUEUE_MAX);
        let costs = CostModel::from_params(&params);
        Ok(Some(Counterpart {
            listener,
            socket,
            driver: SideDriver::new(runtime, costs, 1.0, &[], tx),
            rx,
            key: host.control_key,
        }))
    }

    /// Where the NIC connects.
    pub fn link_addr(&self) -> Result<SocketAddr, RoleError> {
        let addr = self
            .listener
            .local_addr()
            .map_err(|e| RoleError::io(std::path::Path::new("tcp"), "iPipe link address", e))?;
        Ok(reachable(addr))
    }

    /// The host runtime's cores (one thread each).
    pub fn cores(&self) -> u16 {
        self.driver.cores()
    }

    /// Accepts the NIC, then sends this side's messages and applies the NIC's until `stop`.
    pub fn serve_link(&self, stop: &AtomicBool) {
        let stream = match link::accept(&self.listener, &self.key, stop) {
            Ok(s) => s,
            Err(e) => return self.driver.fail(e.to_string()),
        };
        let reader = stream
            .try_clone()
            .map_err(|e| e.to_string())
            .and_then(|s| link::Reader::new(s).map_err(|e| e.to_string()));
        let mut reader = match reader {
            Ok(r) => r,
            Err(e) => return self.driver.fail(e),
        };
        std::thread::scope(|scope| {
            scope.spawn(|| {
                if let Err(e) = link::send_loop(stream, &self.rx, stop) {
                    self.driver.fail(e.to_string());
                }
            });
            loop {
                match reader.next(stop) {
                    Ok(Some(msg)) => self.driver.apply(msg, &self.socket),
                    Ok(None) => break,
                    Err(e) => break self.driver.fail(e.to_string()),
                }
            }
        });
    }

    /// Runs host core `core` until `stop`.
    pub fn serve_core(&self, core: u16, stop: &AtomicBool) {
        self.driver.serve_core(CoreId(core), &self.socket, stop);
    }

    /// Snapshots the counters at the measured phase's bounds.
    pub fn watch_phase(&self, timeline: &TimelineWatch, stop: &AtomicBool) {
        self.driver.watch_phase(timeline, stop);
    }

    /// The host side's counters of the measured phase.
    pub fn counters(&self, phase_ns: u64) -> LocationCounters {
        self.driver.counters(phase_ns)
    }

    /// The host side's record (its tallies; the NIC lists the migrations).
    pub fn record(&self, measure_start_ns: u64) -> IpipeRecord {
        self.driver.record(measure_start_ns, 0)
    }
}
