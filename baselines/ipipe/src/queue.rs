//! The FCFS ingress: where received work items wait for an FCFS core.
//!
//! - [`Isolation::Trusted`](crate::config::Isolation::Trusted): one shared first-come
//!   first-served queue; any FCFS core takes the oldest item (iPipe's design).
//! - [`Isolation::ProcessPerTenant`](crate::config::Isolation::ProcessPerTenant): each tenant's
//!   actors live in the tenant's process, which has a home FCFS core. A core keeps a queue per
//!   tenant process and serves them like an operating system serves runnable processes: the
//!   current process drains its queue (one item after the other, no switch) until it is empty
//!   or has used its time slice; then the next runnable process, in round-robin order, gets the
//!   core (an address-space switch).

use std::collections::{HashMap, VecDeque};

use naam_engine::TenantId;

use crate::actor::WorkItem;

/// Items the ingress may hold in total.
pub const INGRESS_ITEMS_MAX: usize = 65_536;

/// The FCFS ingress of one side.
#[derive(Debug)]
pub(crate) enum Ingress {
    Shared(VecDeque<WorkItem>),
    Processes(Vec<CoreQueues>),
}

/// One FCFS core's tenant processes (process-per-tenant isolation).
#[derive(Debug, Default)]
pub(crate) struct CoreQueues {
    queues: HashMap<TenantId, VecDeque<WorkItem>>,
    /// Tenants with queued items, in the order they became runnable (excluding `current`).
    runnable: VecDeque<TenantId>,
    current: Option<TenantId>,
    current_ns: u64,
    len: usize,
}

impl CoreQueues {
    fn push(&mut self, item: WorkItem, front: bool) {
        let tenant = item.tenant;
        let queue = self.queues.entry(tenant).or_default();
        let was_empty = queue.is_empty();
        if front {
            queue.push_front(item);
        } else {
            queue.push_back(item);
        }
        self.len += 1;
        if was_empty && self.current != Some(tenant) {
            self.runnable.push_back(tenant);
        }
    }

    fn pop(&mut self, slice_ns: u64) -> Option<WorkItem> {
        let keep = self.current.filter(|t| {
            self.current_ns < slice_ns && self.queues.get(t).is_some_and(|q| !q.is_empty())
        });
        let tenant = match keep {
            Some(t) => t,
            None => self.rotate()?,
        };
        let item = self.queues.get_mut(&tenant)?.pop_front()?;
        self.len -= 1;
        Some(item)
    }

    /// The next runnable tenant gets the core; the current one, if it still has work, queues
    /// behind the others.
    fn rotate(&mut self) -> Option<TenantId> {
        if let Some(t) = self.current.take()
            && self.queues.get(&t).is_some_and(|q| !q.is_empty())
        {
            self.runnable.push_back(t);
        }
        let next = self.runnable.pop_front()?;
        self.current = Some(next);
        self.current_ns = 0;
        Some(next)
    }
}

impl Ingress {
    /// Items waiting.
    pub fn len(&self) -> usize {
        match self {
            Ingress::Shared(q) => q.len(),
            Ingress::Processes(cores) => cores.iter().map(|c| c.len).sum(),
        }
    }

    /// Queues `item` (for `home`'s queues under process isolation); `front` puts it before
    /// every waiting item of its queue (items returned after a deferral or a migration).
    pub fn push(&mut self, home: usize, item: WorkItem, front: bool) {
        match self {
            Ingress::Shared(q) if front => q.push_front(item),
            Ingress::Shared(q) => q.push_back(item),
            Ingress::Processes(cores) => cores[home].push(item, front),
        }
    }

    /// The next item for FCFS core `core`.
    pub fn pop(&mut self, core: usize, slice_ns: u64) -> Option<WorkItem> {
        match self {
            Ingress::Shared(q) => q.pop_front(),
            Ingress::Processes(cores) => cores.get_mut(core)?.pop(slice_ns),
        }
    }

    /// Charges execution time to the process currently holding `core`.
    pub fn charge(&mut self, core: usize, ns: u64) {
        if let Ingress::Processes(cores) = self
            && let Some(c) = cores.get_mut(core)
        {
            c.current_ns = c.current_ns.saturating_add(ns);
        }
    }
}
