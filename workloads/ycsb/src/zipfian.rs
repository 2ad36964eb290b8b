//! Gray et al.'s Zipfian generator as YCSB's `ZipfianGenerator` and `ScrambledZipfianGenerator`
//! implement it, with Java's `double` and `long` semantics kept step for step.
//!
//! The rank-from-uniform step is [`zipfian_rank`]: with ζ(n), α = 1/(1−θ) and
//! η = (1 − (2/n)^(1−θ)) / (1 − ζ(2)/ζ(n)), a uniform `u` maps to rank 0 if `u·ζ(n) < 1`, to rank 1
//! if `u·ζ(n) < 1 + 0.5^θ`, and otherwise to `(long)(n · (η·u − η + 1)^α)`. Java's `(long)` cast
//! of a double saturates and maps NaN to 0, exactly as Rust's `as i64`; the expression is evaluated
//! in Java's order without fused multiply-adds, and `powf` is the C library's `pow`.
//!
//! Two YCSB quirks are kept on purpose: when the item count grows (the `latest` distribution grows
//! with every insert) ζ(n) is extended incrementally but η keeps using the item count the generator
//! was built with; and the scrambled generator draws over a fixed space of 10^10 + 1 items with the
//! hard-coded ζ = 26.46902820178302, then folds the rank into the key space with [`fnvhash64`].

use crate::hash::fnvhash64;
use crate::rng::TlrRng;

/// YCSB's Zipfian constant θ (`ZipfianGenerator.ZIPFIAN_CONSTANT`).
pub const ZIPFIAN_CONSTANT: f64 = 0.99;
/// The item space of YCSB's scrambled generator (`ScrambledZipfianGenerator.ITEM_COUNT`, 10^10);
/// the inner generator spans `[0, SCRAMBLED_ITEM_COUNT]`, i.e. 10^10 + 1 items.
pub const SCRAMBLED_ITEM_COUNT: i64 = 10_000_000_000;
/// The hard-coded ζ(10^10, 0.99) of YCSB's scrambled generator (`ScrambledZipfianGenerator.ZETAN`).
pub const SCRAMBLED_ZETAN: f64 = 26.46902820178302;
/// Bound on the terms of a ζ sum computed here (one `pow` each): 2^31 − 1, YCSB's `int` record
/// bound. Larger spans are refused instead of running for minutes.
pub const ZETA_TERMS_MAX: i64 = i32::MAX as i64;

/// YCSB's `ZipfianGenerator.zetastatic(st, n, theta, initialsum)`: `initial + Σ_{i=st}^{n−1}
/// 1/(i+1)^θ`, summed in that order. Callers bound `n − st` (see [`ZETA_TERMS_MAX`]).
pub fn zeta_static(st: i64, n: i64, theta: f64, initial: f64) -> f64 {
    let mut sum = initial;
    let mut i = st;
    while i < n {
        sum += 1.0 / ((i + 1) as f64).powf(theta);
        i += 1;
    }
    sum
}

/// The constants of the rank-from-uniform step for one item count.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ZipfianParams {
    /// θ, the Zipfian constant.
    pub theta: f64,
    /// α = 1 / (1 − θ).
    pub alpha: f64,
    /// ζ(n, θ).
    pub zetan: f64,
    /// η = (1 − (2/n)^(1−θ)) / (1 − ζ(2, θ)/ζ(n, θ)), with n the generator's construction count.
    pub eta: f64,
    /// 1 + 0.5^θ: the upper bound of `u·ζ(n)` for rank 1.
    pub rank1_bound: f64,
}

impl ZipfianParams {
    /// The parameters YCSB computes for `items` items, θ and a given ζ(n) (Java order of
    /// operations, including `zeta2theta` summed by [`zeta_static`]).
    pub fn new(items: i64, theta: f64, zetan: f64) -> Self {
        let zeta2theta = zeta_static(0, 2, theta, 0.0);
        Self {
            theta,
            alpha: 1.0 / (1.0 - theta),
            zetan,
            eta: eta(items, theta, zeta2theta, zetan),
            rank1_bound: 1.0 + 0.5f64.powf(theta),
        }
    }
}

fn eta(items: i64, theta: f64, zeta2theta: f64, zetan: f64) -> f64 {
    (1.0 - (2.0 / items as f64).powf(1.0 - theta)) / (1.0 - zeta2theta / zetan)
}

/// The rank-from-uniform step of `ZipfianGenerator.nextLong(itemcount)` for `u` in [0, 1): rank 0
/// is the most popular. The result is in `[0, itemcount]` (the upper end only by rounding).
#[inline]
pub fn zipfian_rank(u: f64, itemcount: i64, params: &ZipfianParams) -> i64 {
    let uz = u * params.zetan;
    if uz < 1.0 {
        return 0;
    }
    if uz < params.rank1_bound {
        return 1;
    }
    let eta = params.eta;
    (itemcount as f64 * (eta * u - eta + 1.0).powf(params.alpha)) as i64
}

/// YCSB's `ZipfianGenerator` over `[base, base + items − 1]`, drawing from a caller's [`TlrRng`].
#[derive(Debug, Clone)]
pub struct Zipfian {
    items: i64,
    base: i64,
    zeta2theta: f64,
    countforzeta: i64,
    params: ZipfianParams,
}

impl Zipfian {
    /// Over `[min, max]` with θ, computing ζ from scratch (YCSB's 3-argument constructor). `None`
    /// when the span exceeds [`ZETA_TERMS_MAX`].
    pub fn new(min: i64, max: i64, theta: f64) -> Option<Self> {
        let items = max.checked_sub(min)?.checked_add(1)?;
        if items > ZETA_TERMS_MAX {
            return None;
        }
        Some(Self::with_zetan(
            min,
            max,
            theta,
            zeta_static(0, items, theta, 0.0),
        ))
    }

    /// Over `[min, max]` with θ and a precomputed ζ(n) (YCSB's 4-argument constructor).
    pub fn with_zetan(min: i64, max: i64, theta: f64, zetan: f64) -> Self {
        let items = max.wrapping_sub(min).wrapping_add(1);
        let params = ZipfianParams::new(items, theta, zetan);
        let zeta2theta = zeta_static(0, 2, theta, 0.0);
        Self {
            items,
            base: min,
            zeta2theta,
            countforzeta: items,
            params,
        }
    }

    /// The item count given at construction.
    pub fn items(&self) -> i64 {
        self.items
    }

    /// The current rank-from-uniform parameters.
    pub fn params(&self) -> &ZipfianParams {
        &self.params
    }

    /// YCSB's `nextLong(itemcount)`: extends ζ when `itemcount` grew (η keeps the construction
    /// count, as in YCSB; growth per call is bounded by [`ZETA_TERMS_MAX`]), then draws.
    #[inline]
    pub fn next_long(&mut self, itemcount: i64, rng: &mut TlrRng) -> i64 {
        if itemcount > self.countforzeta {
            self.grow(itemcount);
        }
        let u = rng.next_double();
        self.base
            .wrapping_add(zipfian_rank(u, itemcount, &self.params))
    }

    /// YCSB's `nextValue()`: a draw over the construction item count.
    #[inline]
    pub fn next_value(&mut self, rng: &mut TlrRng) -> i64 {
        self.next_long(self.items, rng)
    }

    fn grow(&mut self, itemcount: i64) {
        let target = itemcount.min(self.countforzeta.saturating_add(ZETA_TERMS_MAX));
        let theta = self.params.theta;
        self.params.zetan = zeta_static(self.countforzeta, target, theta, self.params.zetan);
        self.countforzeta = target;
        self.params.eta = eta(self.items, theta, self.zeta2theta, self.params.zetan);
    }
}

/// YCSB's `ScrambledZipfianGenerator(min, max)` with θ = 0.99: a [`Zipfian`] over
/// `[0, SCRAMBLED_ITEM_COUNT]` with the hard-coded ζ, whose rank `r` becomes
/// `min + fnvhash64(r) % (max − min + 1)`.
#[derive(Debug, Clone)]
pub struct ScrambledZipfian {
    inner: Zipfian,
    min: i64,
    itemcount: i64,
}

impl ScrambledZipfian {
    /// Over `[min, max]` (inclusive, as YCSB). `None` when the span is empty or overflows.
    pub fn new(min: i64, max: i64) -> Option<Self> {
        let itemcount = max.checked_sub(min)?.checked_add(1)?;
        if itemcount <= 0 {
            return None;
        }
        let inner = Zipfian::with_zetan(0, SCRAMBLED_ITEM_COUNT, ZIPFIAN_CONSTANT, SCRAMBLED_ZETAN);
        Some(Self {
            inner,
            min,
            itemcount,
        })
    }

    /// The number of key numbers folded into (`max − min + 1`).
    pub fn itemcount(&self) -> i64 {
        self.itemcount
    }

    /// The inner generator's rank-from-uniform parameters (over 10^10 + 1 items).
    pub fn params(&self) -> &ZipfianParams {
        self.inner.params()
    }

    /// YCSB's `nextValue()`. Java's signed remainder is kept: the result is below `min` only if
    /// `fnvhash64` returned `i64::MIN`, which `Math.abs` leaves negative.
    #[inline]
    pub fn next_value(&mut self, rng: &mut TlrRng) -> i64 {
        let rank = self.inner.next_value(rng);
        scramble(rank, self.min, self.itemcount)
    }
}

/// The scrambled generator's fold of a rank into `[min, min + itemcount)`:
/// `min + fnvhash64(rank) % itemcount` with Java's signed remainder.
#[inline]
pub fn scramble(rank: i64, min: i64, itemcount: i64) -> i64 {
    min.wrapping_add(fnvhash64(rank).wrapping_rem(itemcount))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rank_formula_branches_at_fixed_inputs() {
        let p = ZipfianParams::new(1000, ZIPFIAN_CONSTANT, zeta_static(0, 1000, 0.99, 0.0));
        assert_eq!(zipfian_rank(0.0, 1000, &p), 0);
        assert_eq!(zipfian_rank(0.999 / p.zetan, 1000, &p), 0);
        assert_eq!(zipfian_rank(1.001 / p.zetan, 1000, &p), 1);
        let u = 0.5;
        let expected = (1000.0 * (p.eta * u - p.eta + 1.0).powf(p.alpha)) as i64;
        assert_eq!(zipfian_rank(u, 1000, &p), expected);
        assert!(zipfian_rank(0.999_999, 1000, &p) <= 1000);
    }

    #[test]
    fn rank_of_nan_parameters_is_zero_not_a_panic() {
        // records = 1 under `latest` builds a generator over 0 items: Java computes NaN and
        // returns the base; so do we.
        let z = Zipfian::new(0, -1, ZIPFIAN_CONSTANT).expect("empty span is representable");
        assert!(z.params().eta.is_nan());
        assert_eq!(zipfian_rank(0.7, 0, z.params()), 0);
    }

    #[test]
    fn growth_extends_zeta_and_keeps_construction_count_in_eta() {
        let mut grown = Zipfian::new(0, 99, ZIPFIAN_CONSTANT).expect("small span");
        let mut rng = TlrRng::for_thread(1, 0);
        grown.next_long(150, &mut rng);
        let fresh_zeta = zeta_static(0, 150, 0.99, 0.0);
        assert!((grown.params().zetan - fresh_zeta).abs() < 1e-12);
        let eta_items_100 = eta(
            100,
            0.99,
            zeta_static(0, 2, 0.99, 0.0),
            grown.params().zetan,
        );
        assert_eq!(grown.params().eta, eta_items_100);
    }

    #[test]
    fn spans_beyond_the_zeta_bound_are_refused() {
        assert!(Zipfian::new(0, ZETA_TERMS_MAX, 0.99).is_none());
        assert!(Zipfian::new(0, i64::MAX, 0.99).is_none());
        assert!(ScrambledZipfian::new(5, 4).is_none());
    }
}
