//! One example line per manifest key: the "what to write instead" of every error.

/// An example for the key at dotted `field` (matched by its last component).
pub(crate) fn field_help(field: &str) -> String {
    let key = field.rsplit('.').next().unwrap_or(field);
    let key = key.split('[').next().unwrap_or(key);
    let example = EXAMPLES
        .iter()
        .find(|(name, _)| *name == key)
        .map(|(_, text)| *text);
    match example {
        Some(text) => format!("write {text}"),
        None => format!("see experiments/SCHEMA.md for `{field}`"),
    }
}

/// Key name → example with its meaning. Kept in the order of experiments/SCHEMA.md.
const EXAMPLES: &[(&str, &str)] = &[
    ("schema", "`schema = 1` (the manifest schema version)"),
    (
        "id",
        "`id = \"mica-ycsb-b\"` (one of: mica-ycsb-b, cell-lookups, load-shift, offload-scaling, vm-cost, policies)",
    ),
    ("title", "`title = \"MICA under YCSB-B at each placement\"`"),
    (
        "seed",
        "`seed = 1` (base seed; every point's seed derives from it)",
    ),
    ("testbed", "`[testbed]` with `kind = \"local\"`"),
    (
        "kind",
        "the kind, e.g. `kind = \"local\"` in [testbed], `kind = \"mica\"` in [workload], `kind = \"cpu-hog\"` in an event",
    ),
    (
        "inventory",
        "`inventory = \"inventory/cloudlab.toml\"` (with `kind = \"inventory\"`)",
    ),
    (
        "profile",
        "`profile = \"bf2-r7525\"` (with `kind = \"sim\"`: experiments/profiles/bf2-r7525.toml)",
    ),
    (
        "roles",
        "`[roles]` with clients, client_threads, host_workers, nic_workers, nic_access_delay_ns, nic_core_speed_factor",
    ),
    ("clients", "`clients = 1` (client processes)"),
    (
        "client_threads",
        "`client_threads = 1` (sending threads per client)",
    ),
    (
        "host_workers",
        "`host_workers = 1` (worker threads of the server host)",
    ),
    (
        "nic_workers",
        "`nic_workers = 1` (worker threads of the emulated NIC)",
    ),
    (
        "nic_access_delay_ns",
        "`nic_access_delay_ns = 1500` (added per dependent host-memory access from the NIC)",
    ),
    (
        "nic_core_speed_factor",
        "`nic_core_speed_factor = 0.5` (NIC core speed relative to a host core)",
    ),
    (
        "host_vm_backend",
        "`host_vm_backend = \"jit\"` (\"interpreter\", the default, or \"jit\": naam-vm's Cranelift JIT, which falls back to the interpreter when it is not built)",
    ),
    (
        "nic_vm_backend",
        "`nic_vm_backend = \"jit\"` (as host_vm_backend, for the emulated NIC)",
    ),
    (
        "pinning",
        "`[roles.pinning]` with `host = [0]`, `nic = [1]`, `client = [1]` (CPU lists)",
    ),
    ("host", "`host = [0]` (CPUs for the host role)"),
    ("nic", "`nic = [1]` (CPUs for the NIC role)"),
    ("client", "`client = [1]` (CPUs for the clients)"),
    (
        "workload",
        "`[workload]` with `kind = \"mica\"`, `\"btree\"` or `\"vm-cost\"`",
    ),
    (
        "records",
        "`records = 100000` (MICA records loaded before the run)",
    ),
    ("key_bytes", "`key_bytes = 8`"),
    ("value_bytes", "`value_bytes = 8`"),
    (
        "ycsb_workload",
        "`ycsb_workload = \"b\"` (YCSB core workload letter a..f)",
    ),
    (
        "distribution",
        "`distribution = \"scrambled-zipfian\"` (or \"zipfian\", \"uniform\")",
    ),
    ("buckets", "`buckets = 16384` (a power of two)"),
    (
        "slots",
        "`slots = 7` (one 64-byte cache line) or `slots = 15` (MICA's released build)",
    ),
    (
        "log_bytes",
        "`log_bytes = 16777216` (the circular log, a multiple of 8 bytes)",
    ),
    (
        "tenant_programs",
        "`tenant_programs = \"distinct\"` (each tenant its own GET program, a per-tenant salt in every reply; default \"shared\")",
    ),
    ("keys", "`keys = 100000` (keys bulk-loaded into the B-tree)"),
    (
        "node_bytes",
        "`node_bytes = 1024` (B-tree node size, a power of two)",
    ),
    (
        "functions",
        "`functions = [\"mica-get\", \"btree-lookup\"]` (NAAM functions to time)",
    ),
    (
        "series",
        "`series = [\"host\", \"nic\", \"client\", \"naam-adaptive\"]`",
    ),
    (
        "quick",
        "`[quick]` with warmup_ms, measure_ms, interval_ms, repetitions and the sweeps",
    ),
    (
        "full",
        "`[full]` with warmup_ms, measure_ms, interval_ms, repetitions and the sweeps",
    ),
    (
        "warmup_ms",
        "`warmup_ms = 200` (warm-up before measuring, excluded)",
    ),
    (
        "measure_ms",
        "`measure_ms = 1000` (the measured phase of each point)",
    ),
    (
        "interval_ms",
        "`interval_ms = 100` (one histogram per interval; must divide measure_ms)",
    ),
    ("repetitions", "`repetitions = 3`"),
    (
        "offered_load_ops_per_s",
        "`offered_load_ops_per_s = [10000, 20000, 40000]` (total over all clients)",
    ),
    ("tree_depth", "`tree_depth = [2, 3, 4]` (B-tree levels)"),
    ("tenants", "`tenants = [1, 8, 64]` (offloaded applications)"),
    (
        "iterations",
        "`iterations = 100000` (timed calls per function and backend)",
    ),
    (
        "warmup_iterations",
        "`warmup_iterations = 1000` (untimed calls first)",
    ),
    (
        "events",
        "`events = [{ kind = \"cpu-hog\", start_ms = 500, threads = 1 }]`",
    ),
    ("start_ms", "`start_ms = 500` (from measure start)"),
    (
        "stop_ms",
        "`stop_ms = 1500` (from measure start; omit for the end of the run)",
    ),
    ("threads", "`threads = 1` (busy threads of the CPU hog)"),
    ("at_ms", "`at_ms = 1000` (from measure start)"),
    (
        "factor",
        "`factor = 2.0` (multiplier of the point's offered load)",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_matches_the_last_path_component() {
        assert!(field_help("quick.events[0].start_ms").contains("start_ms = 500"));
        assert!(field_help("workload.slots").contains("slots = 15"));
        assert!(field_help("no.such").contains("SCHEMA.md"));
    }
}
