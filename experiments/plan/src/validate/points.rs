//! Expansion of a plan into points with derived seeds.

use super::TENANTS_WHEN_NOT_SWEPT;
use crate::plan::{PointPlan, Series, Sweep};
use crate::seeds;

/// Repetition, then sweep values, then series: a killed run holds whole early repetitions, and
/// every series at one sweep value and repetition shares a seed.
pub(super) fn expand_points(
    series: &[Series],
    sweep: &Sweep,
    repetitions: u32,
    base_seed: u64,
    tenants_swept: bool,
) -> Vec<PointPlan> {
    let loads: Vec<Option<u64>> = option_values(&sweep.offered_load_ops_per_s);
    let depths: Vec<Option<u32>> = option_values(&sweep.tree_depth);
    let tenants: Vec<u32> = if sweep.tenants.is_empty() {
        vec![TENANTS_WHEN_NOT_SWEPT]
    } else {
        sweep.tenants.clone()
    };
    let mut points = Vec::new();
    for repetition in 0..repetitions {
        for &load in &loads {
            for &depth in &depths {
                for &t in &tenants {
                    let coordinates = [
                        u64::from(repetition),
                        load.unwrap_or(0),
                        u64::from(depth.unwrap_or(0)),
                        u64::from(t),
                    ];
                    let seed = seeds::derive(base_seed, &coordinates);
                    for &s in series {
                        let index = points.len() as u32;
                        let id = point_id(
                            index,
                            s,
                            load,
                            depth,
                            tenants_swept.then_some(t),
                            repetition,
                        );
                        points.push(PointPlan {
                            id,
                            index,
                            series: s,
                            offered_load_ops_per_s: load,
                            tree_depth: depth,
                            tenants: t,
                            repetition,
                            seed,
                        });
                    }
                }
            }
        }
    }
    points
}

fn option_values<T: Copy>(values: &[T]) -> Vec<Option<T>> {
    if values.is_empty() {
        vec![None]
    } else {
        values.iter().copied().map(Some).collect()
    }
}

fn point_id(
    index: u32,
    series: Series,
    load: Option<u64>,
    depth: Option<u32>,
    tenants: Option<u32>,
    repetition: u32,
) -> String {
    let mut id = format!("{index:04}-{}", series.id_part());
    if let Some(l) = load {
        id.push_str(&format!("-{l}ops"));
    }
    if let Some(d) = depth {
        id.push_str(&format!("-d{d}"));
    }
    if let Some(t) = tenants {
        id.push_str(&format!("-t{t}"));
    }
    id.push_str(&format!("-r{repetition}"));
    id
}
