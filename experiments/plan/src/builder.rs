//! A manifest written from code: small plans for tests and for commands that run one ad-hoc
//! point (`naam testbed bench`). The builder writes manifest TOML and loads it through the same
//! validation as a file, so a built plan is exactly a plan some manifest gives — with every
//! default explicit and the same configuration hash.
//!
//! ```
//! use naam_plan::{ExperimentId, ManifestBuilder, Variant};
//!
//! let plan = ManifestBuilder::new(ExperimentId::LoadShift)
//!     .series(&["naam-adaptive"])
//!     .policy("naam-adaptive", &[("congested_delay_ns", 300_000)])
//!     .cpu_hog(200, 400, 2)
//!     .plan(Variant::Quick)
//!     .unwrap();
//! assert_eq!(plan.points.len(), 1);
//! ```

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::{ExperimentId, ExperimentPlan, ManifestError, Variant};

/// The name the builder's manifests are reported under (errors name it).
pub const BUILT_MANIFEST_NAME: &str = "built-manifest.toml";

/// A manifest under construction. [`ManifestBuilder::new`] starts from a small valid one for
/// the experiment (one client, one worker per server, a 2000-record MICA table or a 20000-key
/// B-tree, 100 ms warm-up, 400 ms measured in 100 ms intervals, 2000 ops/s offered, the same in
/// `[quick]` and `[full]`, and for load-shift a CPU hog from 200 to 400 ms); every setter
/// replaces one part.
#[derive(Debug, Clone)]
pub struct ManifestBuilder {
    id: ExperimentId,
    title: String,
    seed: u64,
    series: Vec<String>,
    testbed: String,
    roles: Vec<(String, String)>,
    pinning: Option<[Vec<u32>; 3]>,
    workload: Vec<(String, String)>,
    policies: Vec<(String, Vec<(String, u64)>)>,
    variant: Vec<(String, String)>,
    events: Vec<String>,
}

impl ManifestBuilder {
    /// The small valid manifest of experiment `id` described above.
    pub fn new(id: ExperimentId) -> ManifestBuilder {
        let (series, workload, variant) = defaults(id);
        let built = ManifestBuilder {
            id,
            title: format!("{id} (built)"),
            seed: 7,
            series: series.iter().map(|s| s.to_string()).collect(),
            testbed: "kind = \"local\"".into(),
            roles: pairs(&[
                ("clients", "1"),
                ("client_threads", "1"),
                ("host_workers", "1"),
                ("nic_workers", "1"),
                ("nic_access_delay_ns", "1500"),
                ("nic_core_speed_factor", "0.5"),
            ]),
            pinning: None,
            workload: pairs(&workload),
            policies: Vec::new(),
            variant: pairs(&variant),
            events: Vec::new(),
        };
        if id == ExperimentId::LoadShift {
            built.cpu_hog(200, 400, 1)
        } else {
            built
        }
    }

    /// The figure title.
    pub fn title(mut self, title: &str) -> Self {
        self.title = title.to_string();
        self
    }

    /// The base seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The series (figure lines), by name.
    pub fn series(mut self, series: &[&str]) -> Self {
        self.series = series.iter().map(|s| s.to_string()).collect();
        self
    }

    /// `[testbed] kind = "netns"`.
    pub fn netns(mut self) -> Self {
        self.testbed = "kind = \"netns\"".into();
        self
    }

    /// `[testbed] kind = "inventory"` with this hosts file (relative to the manifest).
    pub fn inventory(mut self, hosts_file: &str) -> Self {
        self.testbed = format!("kind = \"inventory\"\ninventory = {}", quoted(hosts_file));
        self
    }

    /// `[testbed] kind = "sim"` with this cost profile (`profiles/<profile>.toml` beside the
    /// manifest).
    pub fn sim(mut self, profile: &str) -> Self {
        self.testbed = format!("kind = \"sim\"\nprofile = {}", quoted(profile));
        self
    }

    /// A `[roles]` value, e.g. `role("clients", 3)`.
    pub fn role(mut self, key: &str, value: impl ToString) -> Self {
        set(&mut self.roles, key, value.to_string());
        self
    }

    /// `[roles.pinning]`: CPUs of the host, NIC and client roles.
    pub fn pinning(mut self, host: &[u32], nic: &[u32], client: &[u32]) -> Self {
        self.pinning = Some([host.to_vec(), nic.to_vec(), client.to_vec()]);
        self
    }

    /// A `[workload]` number, e.g. `workload("records", 1000)`.
    pub fn workload(mut self, key: &str, value: impl ToString) -> Self {
        set(&mut self.workload, key, value.to_string());
        self
    }

    /// A `[workload]` string, e.g. `workload_name("distribution", "uniform")`.
    pub fn workload_name(mut self, key: &str, value: &str) -> Self {
        set(&mut self.workload, key, quoted(value));
        self
    }

    /// Parameters of a policy (`[policy.<name>]`).
    pub fn policy(mut self, name: &str, params: &[(&str, u64)]) -> Self {
        let params = params.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        self.policies.push((name.to_string(), params));
        self
    }

    /// Warm-up, measured phase and interval of both variants.
    pub fn timing(self, warmup_ms: u64, measure_ms: u64, interval_ms: u64) -> Self {
        self.variant_value("warmup_ms", warmup_ms)
            .variant_value("measure_ms", measure_ms)
            .variant_value("interval_ms", interval_ms)
    }

    /// A value of both variant tables, e.g. `variant_value("repetitions", 2)`.
    pub fn variant_value(mut self, key: &str, value: impl ToString) -> Self {
        set(&mut self.variant, key, value.to_string());
        self
    }

    /// The offered loads swept (ops/s over all clients).
    pub fn offered(self, loads: &[u64]) -> Self {
        self.variant_value("offered_load_ops_per_s", list(loads))
    }

    /// The B-tree depths swept.
    pub fn tree_depths(self, depths: &[u32]) -> Self {
        self.variant_value("tree_depth", list(depths))
    }

    /// The tenant counts swept.
    pub fn tenants(self, tenants: &[u32]) -> Self {
        self.variant_value("tenants", list(tenants))
    }

    /// The CPU hog: from `start_ms` to `stop_ms` of the measured phase (replaces an earlier one).
    pub fn cpu_hog(mut self, start_ms: u64, stop_ms: u64, threads: u32) -> Self {
        self.events.retain(|e| !e.contains("\"cpu-hog\""));
        self.events.push(format!(
            "{{ kind = \"cpu-hog\", start_ms = {start_ms}, stop_ms = {stop_ms}, threads = {threads} }}"
        ));
        self
    }

    /// The offered load times `factor` from `at_ms` of the measured phase.
    pub fn load_step(mut self, at_ms: u64, factor: f64) -> Self {
        self.events.push(format!(
            "{{ kind = \"load-step\", at_ms = {at_ms}, factor = {factor:?} }}"
        ));
        self
    }

    /// The manifest's TOML text.
    pub fn text(&self) -> String {
        let mut t = String::new();
        let _ = writeln!(t, "schema = {}", crate::SCHEMA_VERSION);
        let _ = writeln!(t, "id = \"{}\"", self.id);
        let _ = writeln!(t, "title = {}", quoted(&self.title));
        let _ = writeln!(t, "seed = {}", self.seed);
        let series: Vec<String> = self.series.iter().map(|s| quoted(s)).collect();
        let _ = writeln!(t, "series = [{}]", series.join(", "));
        let _ = writeln!(t, "\n[testbed]\n{}", self.testbed);
        table(&mut t, "roles", &self.roles);
        if let Some([host, nic, client]) = &self.pinning {
            let _ = writeln!(
                t,
                "\n[roles.pinning]\nhost = {}\nnic = {}\nclient = {}",
                list(host),
                list(nic),
                list(client)
            );
        }
        table(&mut t, "workload", &self.workload);
        for (name, params) in &self.policies {
            let values: Vec<(String, String)> = params
                .iter()
                .map(|(k, v)| (k.clone(), v.to_string()))
                .collect();
            table(&mut t, &format!("policy.{name}"), &values);
        }
        for variant in [Variant::Quick, Variant::Full] {
            table(&mut t, variant.as_str(), &self.variant);
            if !self.events.is_empty() {
                let _ = writeln!(t, "events = [{}]", self.events.join(", "));
            }
        }
        t
    }

    /// The plan of `variant`, validated as a manifest file would be.
    pub fn plan(&self, variant: Variant) -> Result<ExperimentPlan, ManifestError> {
        crate::parse_manifest(&self.text(), Path::new(BUILT_MANIFEST_NAME), variant)
    }

    /// Writes the manifest as `<dir>/<id>.toml` (inventory paths resolve against `dir`).
    pub fn write(&self, dir: &Path) -> std::io::Result<PathBuf> {
        let path = crate::manifest_path(dir, self.id);
        std::fs::write(&path, self.text())?;
        Ok(path)
    }
}

/// Series, workload table and variant table of the small manifest of `id`.
type Defaults = (
    &'static [&'static str],
    Vec<(&'static str, &'static str)>,
    Vec<(&'static str, &'static str)>,
);

fn defaults(id: ExperimentId) -> Defaults {
    let traffic = vec![
        ("warmup_ms", "100"),
        ("measure_ms", "400"),
        ("interval_ms", "100"),
        ("repetitions", "1"),
        ("offered_load_ops_per_s", "[2000]"),
    ];
    let mica = vec![
        ("kind", "\"mica\""),
        ("records", "2000"),
        ("key_bytes", "8"),
        ("value_bytes", "16"),
        ("ycsb_workload", "\"b\""),
        ("distribution", "\"scrambled-zipfian\""),
        ("buckets", "1024"),
        ("slots", "7"),
        ("log_bytes", "1048576"),
    ];
    match id {
        ExperimentId::CellLookups => {
            let btree = vec![
                ("kind", "\"btree\""),
                ("keys", "20000"),
                ("node_bytes", "1024"),
                ("distribution", "\"uniform\""),
            ];
            let mut variant = traffic;
            variant.push(("tree_depth", "[3]"));
            (&["host"], btree, variant)
        }
        ExperimentId::OffloadScaling => {
            let mut variant = traffic;
            variant.push(("tenants", "[1]"));
            (&["nic"], mica, variant)
        }
        ExperimentId::VmCost => (
            &["native", "interpreter"],
            vec![
                ("kind", "\"vm-cost\""),
                ("functions", "[\"mica-get\", \"btree-lookup\"]"),
            ],
            vec![
                ("repetitions", "1"),
                ("warmup_iterations", "10"),
                ("iterations", "200"),
            ],
        ),
        ExperimentId::MicaYcsbB | ExperimentId::LoadShift | ExperimentId::Policies => {
            (&["host"], mica, traffic)
        }
    }
}

fn pairs(values: &[(&str, &str)]) -> Vec<(String, String)> {
    values
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn set(values: &mut Vec<(String, String)>, key: &str, value: String) {
    match values.iter_mut().find(|(k, _)| k == key) {
        Some(slot) => slot.1 = value,
        None => values.push((key.to_string(), value)),
    }
}

fn table(t: &mut String, name: &str, values: &[(String, String)]) {
    let _ = writeln!(t, "\n[{name}]");
    for (k, v) in values {
        let _ = writeln!(t, "{k} = {v}");
    }
}

fn list<T: ToString>(values: &[T]) -> String {
    let items: Vec<String> = values.iter().map(ToString::to_string).collect();
    format!("[{}]", items.join(", "))
}

/// A TOML basic string (quotes and backslashes escaped).
fn quoted(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_experiment_builds_a_valid_plan_in_both_variants() {
        for id in ExperimentId::ALL {
            for variant in [Variant::Quick, Variant::Full] {
                let plan = ManifestBuilder::new(id)
                    .plan(variant)
                    .unwrap_or_else(|e| panic!("{id}: {e}"));
                assert_eq!(plan.id, id);
                assert!(!plan.points.is_empty(), "{id}");
            }
        }
    }

    #[test]
    fn setters_reach_the_plan() {
        let plan = ManifestBuilder::new(ExperimentId::LoadShift)
            .series(&["host", "naam-adaptive"])
            .role("clients", 2)
            .pinning(&[0], &[1], &[1])
            .workload_name("distribution", "uniform")
            .policy("naam-adaptive", &[("congested_samples", 2)])
            .timing(50, 300, 10)
            .offered(&[1000, 3000])
            .cpu_hog(100, 200, 2)
            .load_step(250, 2.0)
            .plan(Variant::Full)
            .unwrap();
        assert_eq!(plan.points.len(), 4);
        assert_eq!(plan.roles.clients, 2);
        assert_eq!(plan.roles.pinning.nic_cpus, [1]);
        assert_eq!(plan.events.len(), 2);
        let spec = plan.policy(crate::Series::NaamAdaptive).unwrap();
        assert!(matches!(spec, crate::PolicySpec::NaamAdaptive(c) if c.congested_samples == 2));
    }
}
