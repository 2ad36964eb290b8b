//! The random source: the algorithm of JDK 17's `java.util.concurrent.ThreadLocalRandom`.
//!
//! YCSB draws every random number from `ThreadLocalRandom.current()`, which Java seeds from the
//! clock, so no two YCSB runs repeat. This port keeps Java's *algorithm* but takes the seed from the
//! caller, which makes a run reproducible and, for one thread, draw-for-draw identical to a YCSB
//! worker thread whose `ThreadLocalRandom` state was set to the same seed:
//!
//! - state advances by a Weyl step: `state += GOLDEN_GAMMA + 2 * java_thread_id`
//!   (JDK 17 adds the thread id so that threads walk different sequences);
//! - each output is the MurmurHash3 64-bit finaliser of the new state (`mix64`);
//! - `next_double` is `java.util.Random`'s, which JDK 17's `ThreadLocalRandom` inherits: two
//!   state steps, `((next(26) << 27) + next(27)) * 2^-53`, where `next(bits)` is the top `bits`
//!   bits of the step's 64-bit output (measured against JDK 17.0.15, see the tests).
//!
//! It costs one add and two multiplies per step (about 1 ns), well inside the 30 ns/key budget.
//! Thread `t` of a run uses Java thread id `t + 1` (the id of Java's main thread is 1) and starts
//! from `seed ^ mix64(t)`; since `mix64(0) == 0`, thread 0 starts from the seed itself.

/// The Weyl increment of `ThreadLocalRandom` (2^64 / golden ratio, odd).
pub const GOLDEN_GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// Java's main thread id: the id a single-threaded YCSB run draws with.
pub const JAVA_MAIN_THREAD_ID: u64 = 1;

/// Scale of a 53-bit integer to a double in [0, 1): 2^-53 (Java's `DOUBLE_UNIT`).
const DOUBLE_UNIT: f64 = 1.0 / (1u64 << 53) as f64;

/// MurmurHash3's 64-bit finaliser, `ThreadLocalRandom.mix64`.
pub const fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 33)).wrapping_mul(0xff51_afd7_ed55_8ccd);
    z = (z ^ (z >> 33)).wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    z ^ (z >> 33)
}

/// A seeded `ThreadLocalRandom`-compatible generator (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlrRng {
    state: u64,
    gamma: u64,
}

impl TlrRng {
    /// A generator in exactly the state of a Java thread with id `java_thread_id` whose
    /// `threadLocalRandomSeed` is `state`.
    pub const fn from_java_state(state: u64, java_thread_id: u64) -> Self {
        Self {
            state,
            gamma: GOLDEN_GAMMA.wrapping_add(java_thread_id.wrapping_mul(2)),
        }
    }

    /// The stream of thread `thread` of a run seeded with `seed`: state `seed ^ mix64(thread)`,
    /// Java thread id `thread + 1`. Thread 0 is a YCSB main-thread run with state `seed`.
    pub const fn for_thread(seed: u64, thread: u64) -> Self {
        Self::from_java_state(
            seed ^ mix64(thread),
            JAVA_MAIN_THREAD_ID.wrapping_add(thread),
        )
    }

    /// Java's `nextLong()`.
    #[inline]
    pub fn next_long(&mut self) -> i64 {
        self.state = self.state.wrapping_add(self.gamma);
        mix64(self.state) as i64
    }

    /// Java's `next(bits)` for `bits` in 1..=32: the top `bits` bits of one step's output.
    #[inline]
    fn next_bits(&mut self, bits: u32) -> u64 {
        (self.next_long() as u64) >> (64 - bits)
    }

    /// Java's `nextDouble()`: uniform in [0, 1) with 53 random bits from two steps.
    #[inline]
    pub fn next_double(&mut self) -> f64 {
        let high = self.next_bits(26);
        let low = self.next_bits(27);
        ((high << 27) + low) as f64 * DOUBLE_UNIT
    }

    /// Advances the state by one draw whose value is not needed (e.g. YCSB's `nextInt()` inside a
    /// `RandomByteIterator` constructor: it consumes one state step like every other draw).
    #[inline]
    pub fn skip(&mut self) {
        self.state = self.state.wrapping_add(self.gamma);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Vectors printed by JDK 17.0.15 on Java's main thread after setting
    /// `Thread.threadLocalRandomSeed` to 42 by reflection (a scratch program, not committed).
    #[test]
    fn matches_jdk17_thread_local_random_on_main_thread() {
        let mut rng = TlrRng::from_java_state(42, JAVA_MAIN_THREAD_ID);
        let longs: Vec<u64> = (0..3).map(|_| rng.next_long() as u64).collect();
        assert_eq!(
            longs,
            [
                0xe0fb_2643_aab5_81e6,
                0x30a7_2fc2_7a7d_cba4,
                0x94f2_ffb5_46c5_71c8
            ]
        );
        let mut rng = TlrRng::from_java_state(42, JAVA_MAIN_THREAD_ID);
        let doubles: Vec<f64> = (0..3).map(|_| rng.next_double()).collect();
        assert_eq!(
            doubles,
            [0.8788322387643317, 0.5818328666040942, 0.6403906770408849]
        );
    }

    #[test]
    fn thread_zero_is_the_seed_itself_and_threads_differ() {
        assert_eq!(
            TlrRng::for_thread(42, 0),
            TlrRng::from_java_state(42, JAVA_MAIN_THREAD_ID)
        );
        let mut a = TlrRng::for_thread(42, 0);
        let mut b = TlrRng::for_thread(42, 1);
        let same = (0..64).filter(|_| a.next_long() == b.next_long()).count();
        assert_eq!(same, 0, "NAAM_SEED=42: threads 0 and 1 share draws");
    }

    #[test]
    fn skip_consumes_one_draw() {
        let mut a = TlrRng::for_thread(7, 3);
        let mut b = a.clone();
        a.skip();
        b.next_long();
        assert_eq!(a, b);
    }
}
