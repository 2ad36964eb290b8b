//! The simulation executor's workers: `parallel` threads simulate the plan's points the runner
//! will ask for (in its order; on a resumed run, only the points not yet complete), each into its
//! own cache folder, while the runner takes the finished ones; a point the runner asks for moves
//! to the front of the queue. There
//! is no barrier between points: a long point holds one thread, the others go on (batches of
//! `parallel` points waited for their slowest one).
//!
//! Bounds: at most `parallel` points are simulated at once (each holds its dataset); finished
//! points wait on disk until the runner takes them. A point whose simulation panics is recorded
//! as failed, like a point whose simulation returns an error, so the runner never waits forever.

use std::collections::{BTreeSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use naam_plan::ExperimentPlan;
use naam_sim::profile::CostProfile;

/// Simulates one point into its cache folder (errors are written there).
pub(crate) type SimulateFn = fn(&ExperimentPlan, usize, &CostProfile, &Path);

/// The workers of one plan.
#[derive(Debug)]
pub(crate) struct Pool {
    plan: Arc<ExperimentPlan>,
    profile: Arc<CostProfile>,
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    finished: Condvar,
}

#[derive(Debug, Default)]
struct State {
    /// Point indices not started, in the order they will be.
    queue: VecDeque<usize>,
    running: BTreeSet<usize>,
    /// Simulated into the cache and not yet taken.
    done: BTreeSet<usize>,
    stop: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is consistent between any two statements that change it.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Pool {
    /// Starts `parallel` workers on `plan`'s points `indices`, in that order, simulating each with
    /// `simulate` into `cache/<point id>`.
    pub(crate) fn start(
        plan: &ExperimentPlan,
        indices: Vec<usize>,
        profile: CostProfile,
        cache: &Path,
        parallel: usize,
        simulate: SimulateFn,
    ) -> Pool {
        let plan = Arc::new(plan.clone());
        let profile = Arc::new(profile);
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                queue: indices.into(),
                ..State::default()
            }),
            finished: Condvar::new(),
        });
        let workers = (0..parallel)
            .map(|_| {
                let (plan, profile, shared) = (plan.clone(), profile.clone(), shared.clone());
                let cache = cache.to_path_buf();
                std::thread::spawn(move || work(&plan, &profile, &shared, &cache, simulate))
            })
            .collect();
        Pool {
            plan,
            profile,
            shared,
            workers,
        }
    }

    /// Whether this pool simulates `plan`.
    pub(crate) fn serves(&self, plan: &ExperimentPlan) -> bool {
        *self.plan == *plan
    }

    /// The plan's cost profile.
    pub(crate) fn profile(&self) -> &CostProfile {
        &self.profile
    }

    /// Waits until point `index` is in its cache folder and hands it over; false when this pool
    /// will not simulate it (not among its points, or already handed over).
    pub(crate) fn take(&self, index: usize) -> bool {
        let mut st = self.shared.lock();
        if let Some(at) = st.queue.iter().position(|&i| i == index) {
            st.queue.remove(at);
            st.queue.push_front(index);
        } else if !st.done.contains(&index) && !st.running.contains(&index) {
            return false;
        }
        while !st.done.contains(&index) {
            st = (self.shared.finished.wait(st)).unwrap_or_else(|p| p.into_inner());
        }
        st.done.remove(&index);
        true
    }
}

impl Drop for Pool {
    /// Lets the running points finish (their files go with the cache) and starts no other.
    fn drop(&mut self) {
        self.shared.lock().stop = true;
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

fn work(
    plan: &ExperimentPlan,
    profile: &CostProfile,
    shared: &Shared,
    cache: &Path,
    simulate: SimulateFn,
) {
    loop {
        let index = {
            let mut st = shared.lock();
            if st.stop {
                return;
            }
            let Some(index) = st.queue.pop_front() else {
                return;
            };
            st.running.insert(index);
            index
        };
        let run = std::panic::AssertUnwindSafe(|| simulate(plan, index, profile, cache));
        if std::panic::catch_unwind(run).is_err() {
            let dir = point_dir(cache, plan, index);
            let _ = std::fs::create_dir_all(&dir);
            let _ = std::fs::write(dir.join(crate::sim::ERROR_FILE), "the simulation panicked");
        }
        let mut st = shared.lock();
        st.running.remove(&index);
        st.done.insert(index);
        shared.finished.notify_all();
    }
}

/// The cache folder of point `index`.
pub(crate) fn point_dir(cache: &Path, plan: &ExperimentPlan, index: usize) -> PathBuf {
    cache.join(&plan.points[index].id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use naam_plan::{ExperimentId, ManifestBuilder, Variant};

    fn plan() -> ExperimentPlan {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let text = ManifestBuilder::new(ExperimentId::MicaYcsbB)
            .series(&["host", "nic"])
            .variant_value("offered_load_ops_per_s", "[1000, 2000, 3000]")
            .sim("bf2-r7525")
            .text();
        naam_plan::parse_manifest(&text, &dir.join("built.toml"), Variant::Quick)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Writes the point's index into its folder; panics on point 1.
    fn fake(plan: &ExperimentPlan, index: usize, _: &CostProfile, cache: &Path) {
        assert_ne!(index, 1, "point 1 panics");
        let dir = point_dir(cache, plan, index);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("index"), index.to_string()).unwrap();
    }

    #[test]
    fn every_point_given_is_simulated_once_and_a_panic_fails_only_its_point() {
        let plan = plan();
        assert_eq!(plan.points.len(), 6);
        let cache = tempfile::tempdir().unwrap();
        let profile = crate::sim::load_profile(&plan).unwrap();
        let pool = Pool::start(&plan, vec![2, 3, 4, 5], profile, cache.path(), 2, fake);
        assert!(
            !pool.take(0),
            "not among the pool's points: the caller simulates it"
        );
        for index in [5, 2, 3, 4] {
            assert!(pool.take(index), "point {index}");
            let dir = point_dir(cache.path(), &plan, index);
            let written = std::fs::read_to_string(dir.join("index")).unwrap();
            assert_eq!(written, index.to_string());
            assert!(!pool.take(index), "point {index} is handed over once");
        }
        drop(pool);
        let pool = Pool::start(
            &plan,
            vec![0, 1, 2],
            crate::sim::load_profile(&plan).unwrap(),
            cache.path(),
            2,
            fake,
        );
        assert!(pool.take(1));
        let error = point_dir(cache.path(), &plan, 1).join(crate::sim::ERROR_FILE);
        assert_eq!(
            std::fs::read_to_string(error).unwrap(),
            "the simulation panicked"
        );
        assert!(pool.take(0) && pool.take(2));
    }

    /// A resumed run asks only for its incomplete points; the workers simulate nothing else.
    #[test]
    fn points_not_given_are_never_simulated() {
        let plan = plan();
        let cache = tempfile::tempdir().unwrap();
        let profile = crate::sim::load_profile(&plan).unwrap();
        let pool = Pool::start(&plan, vec![0, 2, 4], profile, cache.path(), 2, fake);
        for index in [0, 2, 4] {
            assert!(pool.take(index), "point {index}");
        }
        drop(pool);
        for index in [3, 5] {
            let dir = point_dir(cache.path(), &plan, index);
            assert!(
                !dir.exists(),
                "point {index} was simulated: {}",
                dir.display()
            );
        }
    }
}
