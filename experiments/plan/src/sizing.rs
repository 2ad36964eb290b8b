//! Quick variants sized to the machine they run on. The quick manifests' offered loads were
//! chosen on the development VM (2 cores) so that every placement's knee falls inside the sweep
//! and the generator keeps time. On another machine the same loads may saturate it (a smaller
//! one: invalid, late points) or sit far below every knee (a bigger one: flat lines). A
//! calibration of the machine — its loopback UDP request/response ceiling, which bounds every
//! point of the local testbed — rescales a quick plan's loads by the ratio to the development
//! VM's, so the points land where this machine can measure them and the figure keeps its shape.

use serde::{Deserialize, Serialize};

/// The development VM's loopback UDP echo ceiling (best of 1, 8 and 32 requests in flight, as
/// `naam testbed bench` measures it): 192–215 k req/s over six runs on 2026-12-04. The quick
/// variants' loads were sized on that machine.
pub const REFERENCE_CEILING_REQ_PER_S: u64 = 200_000;
/// Machines whose ceiling is down to this factor below the reference keep the manifest's
/// loads: the ceiling varies by ±10 % between runs on one machine, and a quick figure should
/// not move with that noise. Below it the loads shrink (a smaller machine would otherwise
/// fall behind: late generators, invalid points).
pub const SIZING_DEAD_BAND: f64 = 1.3;
/// Machines whose ceiling is up to this factor above the reference keep the manifest's loads.
/// Wider than [`SIZING_DEAD_BAND`] because the ceiling overstates what the whole local testbed
/// carries: the development VM itself read 301–345 k req/s on 2026-12-06 (1.5–1.7× its
/// 2026-12-04 ceiling, on another boot), and its quick runs scaled × 1.51 then did not carry
/// cell-lookups' scaled loads (carried fraction 0.933). Scaling up is a promise the ceiling
/// alone cannot keep; scaling down is the protection that matters.
pub const SIZING_DEAD_BAND_UP: f64 = 2.0;
/// Smallest and largest scale applied (beyond them the quick manifests' shape is not ours to
/// promise: say so and size the manifest by hand).
pub const SCALE_MIN: f64 = 0.25;
/// See [`SCALE_MIN`].
pub const SCALE_MAX: f64 = 4.0;
/// Offered loads are rounded to this step after scaling.
pub const SCALED_LOAD_STEP_OPS_PER_S: u64 = 1000;

/// How a quick plan's offered loads were rescaled to the machine (recorded in `plan.json`, and
/// so in the configuration hash; absent when the loads are the manifest's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadScale {
    /// The factor applied, in permille.
    pub factor_permille: u32,
    /// This machine's measured ceiling (req/s).
    pub measured_ceiling_req_per_s: u64,
    /// The machine the manifest was sized on ([`REFERENCE_CEILING_REQ_PER_S`]).
    pub reference_ceiling_req_per_s: u64,
}

impl LoadScale {
    /// The scale for a machine whose ceiling measured `measured_req_per_s`; `None` when it is
    /// within [`SIZING_DEAD_BAND`] below or [`SIZING_DEAD_BAND_UP`] above the reference (the
    /// manifest's loads are kept).
    pub fn for_ceiling(measured_req_per_s: u64) -> Option<LoadScale> {
        let ratio = measured_req_per_s as f64 / REFERENCE_CEILING_REQ_PER_S as f64;
        if (1.0 / SIZING_DEAD_BAND..=SIZING_DEAD_BAND_UP).contains(&ratio) {
            return None;
        }
        let factor = ratio.clamp(SCALE_MIN, SCALE_MAX);
        Some(LoadScale {
            factor_permille: (factor * 1000.0).round() as u32,
            measured_ceiling_req_per_s: measured_req_per_s,
            reference_ceiling_req_per_s: REFERENCE_CEILING_REQ_PER_S,
        })
    }

    /// The factor as a multiplier.
    pub fn factor(&self) -> f64 {
        f64::from(self.factor_permille) / 1000.0
    }

    /// `loads` scaled, rounded to [`SCALED_LOAD_STEP_OPS_PER_S`] (at least one step), in their
    /// order, without duplicates (two loads that round alike become one point).
    pub fn apply(&self, loads: &[u64]) -> Vec<u64> {
        let step = SCALED_LOAD_STEP_OPS_PER_S;
        let mut scaled: Vec<u64> = Vec::with_capacity(loads.len());
        for &load in loads {
            let steps = (load as f64 * self.factor() / step as f64).round() as u64;
            let value = steps.max(1) * step;
            if !scaled.contains(&value) {
                scaled.push(value);
            }
        }
        scaled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_machine_like_the_reference_keeps_the_manifests_loads() {
        for ceiling in [160_000, 200_000, 255_000, 301_000, 345_000, 400_000] {
            assert_eq!(LoadScale::for_ceiling(ceiling), None, "{ceiling}");
        }
    }

    #[test]
    fn a_smaller_machine_scales_down_a_bigger_one_up_within_bounds() {
        let half = LoadScale::for_ceiling(100_000).unwrap();
        assert_eq!(half.factor_permille, 500);
        assert_eq!(
            half.apply(&[10_000, 25_000, 50_000]),
            [5_000, 13_000, 25_000]
        );
        let down = LoadScale::for_ceiling(150_000).expect("more than 1.3x below: scaled");
        assert_eq!(down.factor_permille, 750);
        let up = LoadScale::for_ceiling(401_000).expect("more than 2x above: scaled");
        assert_eq!(up.factor_permille, 2005);
        let big = LoadScale::for_ceiling(10_000_000).unwrap();
        assert_eq!(big.factor(), SCALE_MAX);
        let tiny = LoadScale::for_ceiling(1_000).unwrap();
        assert_eq!(tiny.factor(), SCALE_MIN);
    }

    #[test]
    fn loads_that_round_alike_become_one_and_none_vanishes() {
        let scale = LoadScale::for_ceiling(50_000).unwrap();
        assert_eq!(scale.apply(&[1_000, 2_000, 3_000]), [1_000]);
    }
}
