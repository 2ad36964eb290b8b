//! The seeded random source of a simulation: ChaCha8 (portable and stable across platforms and
//! releases of `rand_chacha`), with the seed kept so results can record it.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A seeded generator that remembers its seed.
#[derive(Debug, Clone)]
pub struct SimRng {
    seed: u64,
    rng: ChaCha8Rng,
}

impl SimRng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> SimRng {
        SimRng {
            seed,
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// The seed it started from.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// A uniform value in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        self.rng.random::<f64>()
    }

    /// An exponentially distributed duration of mean `mean_ns` (inverse transform), rounded to
    /// the nearest ns.
    pub fn exp_ns(&mut self, mean_ns: f64) -> u64 {
        // 1 − U is in (0, 1]: its log is finite.
        let u = 1.0 - self.unit();
        (-mean_ns * u.ln()).round() as u64
    }

    /// A uniform `u64`.
    pub fn next_u64(&mut self) -> u64 {
        self.rng.random::<u64>()
    }
}
