//! A pool of identical cores (the host's, the NIC's). Work waits in a FIFO queue owned by the
//! caller (for the server, the engine worker's ready queue); whenever a core is free and work is
//! waiting, the oldest item starts on the lowest-numbered free core and holds it for its service
//! time. The model is that of a c-server FIFO queue: the queueing tests check it against the
//! closed forms.

/// Most cores a pool may have (BlueField-2 has 8; a server a few dozen).
pub const CORES_MAX: usize = 256;

/// A pool of `count` cores, each busy until some virtual time.
#[derive(Debug, Clone)]
pub struct CorePool {
    busy_until_ns: Vec<u64>,
    busy_total_ns: u64,
}

/// A core count outside `1..=CORES_MAX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a core pool has 1..={CORES_MAX} cores, not {count}")]
pub struct CoreCountError {
    /// The count given.
    pub count: usize,
}

impl CorePool {
    /// `count` idle cores.
    pub fn new(count: usize) -> Result<CorePool, CoreCountError> {
        if !(1..=CORES_MAX).contains(&count) {
            return Err(CoreCountError { count });
        }
        Ok(CorePool {
            busy_until_ns: vec![0; count],
            busy_total_ns: 0,
        })
    }

    /// Cores in the pool.
    pub fn count(&self) -> usize {
        self.busy_until_ns.len()
    }

    /// The lowest-numbered core free at `now_ns`, if any.
    pub fn free_core(&self, now_ns: u64) -> Option<usize> {
        self.busy_until_ns.iter().position(|&t| t <= now_ns)
    }

    /// Cores free at `now_ns`.
    pub fn free_count(&self, now_ns: u64) -> usize {
        self.busy_until_ns.iter().filter(|&&t| t <= now_ns).count()
    }

    /// Occupies `core` from `now_ns` for `service_ns`; returns when it is free again.
    ///
    /// # Panics
    /// If the core is busy at `now_ns` (a driver bug: work started on a busy core).
    pub fn occupy(&mut self, core: usize, now_ns: u64, service_ns: u64) -> u64 {
        assert!(
            self.busy_until_ns[core] <= now_ns,
            "core {core} is busy until {} ns, not free at {now_ns} ns",
            self.busy_until_ns[core]
        );
        let end = now_ns.saturating_add(service_ns);
        self.busy_until_ns[core] = end;
        self.busy_total_ns = self.busy_total_ns.saturating_add(service_ns);
        end
    }

    /// Service time handed out so far, summed over cores.
    pub fn busy_total_ns(&self) -> u64 {
        self.busy_total_ns
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_takes_the_lowest_free_core_and_holds_it() {
        let mut pool = CorePool::new(2).unwrap();
        assert_eq!(pool.free_core(0), Some(0));
        assert_eq!(pool.occupy(0, 0, 100), 100);
        assert_eq!(pool.free_core(50), Some(1));
        assert_eq!(pool.occupy(1, 50, 100), 150);
        assert_eq!(pool.free_core(99), None);
        assert_eq!(pool.free_count(120), 1);
        assert_eq!(pool.busy_total_ns(), 200);
    }

    #[test]
    fn counts_outside_the_bounds_are_refused() {
        assert_eq!(CorePool::new(0).unwrap_err(), CoreCountError { count: 0 });
        assert!(CorePool::new(CORES_MAX + 1).is_err());
    }
}
