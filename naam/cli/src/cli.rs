//! The command line, as clap parses it (raw); commands validate it into what they run.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// The NAAM reproduction harness (arXiv 2509.07431; our reconstruction of NAAM).
#[derive(Debug, Parser)]
#[command(name = "naam", version, about, long_about = None)]
pub struct Cli {
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Every command.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Reproduce experiments on the local testbed: run each manifest, analyse, draw its figure.
    Reproduce(ReproduceArgs),
    /// Run (or resume) one experiment manifest.
    Run(RunArgs),
    /// Validate manifests without running them.
    Check(CheckArgs),
    /// Analyse runs (frames as parquet and CSV) and draw their figures.
    Plot(PlotArgs),
    /// What is complete, partial or missing in `results/`.
    Status(StatusArgs),
    /// One self-contained HTML page for a results folder: claims, figures, validity, provenance.
    Report(ReportArgs),
    /// Check a results folder against ARTIFACT.md's expectations (`experiments/expectations.toml`):
    /// each expectation pass or fail with measured against expected; fails unless all pass.
    Expect(ExpectArgs),
    /// The local testbed: its benchmark, or one point.
    #[command(subcommand)]
    Testbed(TestbedCommand),
    /// The workloads on their own: YCSB traces, MICA and B-tree replays.
    #[command(subcommand)]
    Workload(WorkloadCommand),
    /// Real machines over SSH: what a run of a manifest would deploy and launch.
    Deploy(DeployArgs),
    /// Real machines over SSH: check every node of an inventory for what a run needs (on a
    /// BlueField-2: DPU mode, the OVS bridge and hardware offload, RDMA ports; everywhere: the
    /// role binary's architecture, the clock offset) and print what to fix, command by command.
    Doctor(DoctorArgs),
    /// Real machines: turn a CloudLab manifest (`geni-get manifest` on a node) into an inventory
    /// (TOML on stdout), optionally with each BlueField-2 host's Arm side as its own node.
    CloudlabImport(CloudlabImportArgs),
    /// Measure this machine's costs (VM step and instruction, loopback UDP send and receive,
    /// wake-up latency) and write them into the simulation testbed's `this-machine` profile.
    Calibrate(CalibrateArgs),
    /// Run quick manifests on the local testbed and in simulation with this machine's cost
    /// profile, and tabulate the simulator's errors per series.
    SimValidate(SimValidateArgs),
}

/// `naam deploy`.
#[derive(Debug, Args)]
pub struct DeployArgs {
    /// The inventory (TOML hosts file, written by hand or by `naam cloudlab-import` from a
    /// CloudLab manifest).
    #[arg(long)]
    pub inventory: PathBuf,
    /// The manifest whose first point is planned.
    #[arg(long)]
    pub manifest: PathBuf,
    /// Its quick variant.
    #[arg(long)]
    pub quick: bool,
    /// Print the plan without connecting to anything (the only mode: `naam run` deploys for real
    /// when a manifest's testbed is an inventory).
    #[arg(long)]
    pub dry_run: bool,
}

/// `naam cloudlab-import`.
#[derive(Debug, Args)]
pub struct CloudlabImportArgs {
    /// The manifest RSpec.
    pub manifest: PathBuf,
    /// Private key for every node.
    #[arg(long)]
    pub identity_file: PathBuf,
    /// known_hosts file for every node.
    #[arg(long)]
    pub known_hosts: PathBuf,
    /// The login to use when a node lists several (default: the first).
    #[arg(long)]
    pub user: Option<String>,
    /// Cores per node.
    #[arg(long, default_value_t = 16)]
    pub cores: u32,
    /// Add each BlueField-2 host's Arm side as a node `<host>-bf2` (NIC role, aarch64), reached
    /// at this port of its host (the profile forwards 2222 to the Arm's sshd).
    #[arg(long)]
    pub bluefield_arm_port: Option<u16>,
}

/// `naam doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// The inventory (TOML hosts file).
    #[arg(long)]
    pub inventory: PathBuf,
    /// Print every remote command without connecting to anything.
    #[arg(long)]
    pub dry_run: bool,
}

/// Where results and figures live.
#[derive(Debug, Args, Clone)]
pub struct Dirs {
    /// Results root.
    #[arg(long, default_value = "results")]
    pub results: PathBuf,
    /// Figures folder.
    #[arg(long, default_value = "figures")]
    pub figures: PathBuf,
    /// Folder of the experiment manifests.
    #[arg(long, default_value = "experiments")]
    pub experiments: PathBuf,
}

/// How the local testbed runs.
#[derive(Debug, Args, Clone)]
pub struct TestbedArgs {
    /// eSwitch: the kernel eBPF program (root) or the user-space dispatcher; default by privilege.
    #[arg(long, value_enum)]
    pub eswitch: Option<EswitchArg>,
    /// Do not verify answers (verification is on by default).
    #[arg(long)]
    pub no_verify: bool,
    /// Workers spin instead of blocking when idle.
    #[arg(long)]
    pub busy_poll: bool,
}

/// eSwitch choice.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum EswitchArg {
    /// Kernel eBPF on a SO_REUSEPORT group (needs root).
    Kernel,
    /// User-space dispatcher.
    User,
}

/// `naam reproduce`.
#[derive(Debug, Args)]
pub struct ReproduceArgs {
    /// Experiment ids (default: every experiment).
    pub ids: Vec<String>,
    /// The quick variant of each manifest (minutes on one machine) instead of the full one.
    #[arg(long)]
    pub quick: bool,
    /// Start a new run even if a run of the same configuration exists (default: resume it).
    #[arg(long)]
    pub fresh: bool,
    /// Print a JSON report on stdout instead of text.
    #[arg(long)]
    pub json: bool,
    /// Keep the quick manifests' offered loads as written. By default a quick reproduction
    /// first measures this machine's loopback UDP ceiling (≈ 3 s) and, when it is more than
    /// 1.3× below the development VM's or more than 2× above it, scales the local quick loads
    /// by the ratio (recorded in each plan.json as `load_scale`).
    #[arg(long)]
    pub loads_as_written: bool,
    /// Where results, figures and manifests are.
    #[command(flatten)]
    pub dirs: Dirs,
    /// Testbed settings.
    #[command(flatten)]
    pub testbed: TestbedArgs,
}

/// `naam run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The manifest.
    pub manifest: PathBuf,
    /// Run its quick variant.
    #[arg(long)]
    pub quick: bool,
    /// Start a new run even if a run of the same configuration exists.
    #[arg(long)]
    pub fresh: bool,
    /// Also analyse the run and draw its figure.
    #[arg(long)]
    pub plot: bool,
    /// Print a JSON report on stdout.
    #[arg(long)]
    pub json: bool,
    /// Where results and figures are.
    #[command(flatten)]
    pub dirs: Dirs,
    /// Testbed settings.
    #[command(flatten)]
    pub testbed: TestbedArgs,
}

/// `naam check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Manifests (default: every manifest in the experiments folder).
    pub manifests: Vec<PathBuf>,
    /// Print a JSON report.
    #[arg(long)]
    pub json: bool,
    /// Folder of the manifests.
    #[arg(long, default_value = "experiments")]
    pub experiments: PathBuf,
}

/// `naam plot`.
#[derive(Debug, Args)]
pub struct PlotArgs {
    /// Experiment ids (default: every experiment with a run).
    pub ids: Vec<String>,
    /// Print a JSON report.
    #[arg(long)]
    pub json: bool,
    /// Where results and figures are.
    #[command(flatten)]
    pub dirs: Dirs,
}

/// `naam status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// One experiment id (default: all).
    pub experiment: Option<String>,
    /// Print a JSON report.
    #[arg(long)]
    pub json: bool,
    /// Results root.
    #[arg(long, default_value = "results")]
    pub results: PathBuf,
}

/// `naam report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The results folder.
    #[arg(default_value = "results")]
    pub results: PathBuf,
    /// The page (default: `RESULTS/report.html`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print a JSON report on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `naam expect`.
#[derive(Debug, Args)]
pub struct ExpectArgs {
    /// The results folder.
    #[arg(default_value = "results")]
    pub results: PathBuf,
    /// The expectations file.
    #[arg(long, default_value = "experiments/expectations.toml")]
    pub expectations: PathBuf,
    /// Only these experiments' expectations (default: all).
    #[arg(long = "experiment")]
    pub experiments: Vec<String>,
    /// Print a JSON report on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `naam testbed ...`.
#[derive(Debug, Subcommand)]
pub enum TestbedCommand {
    /// The testbed benchmark: host-placement ops/s against the raw UDP request/response ceiling
    /// measured in the same run, and the time to shift 90 % of traffic to the NIC after a CPU hog
    /// starts on the host.
    Bench(BenchArgs),
    /// Run one point of a manifest and leave its raw files in a folder.
    Point(PointArgs),
    /// A long point at a share of the measured capacity: every role's resident-memory growth
    /// and the load samples lost.
    Soak(SoakArgs),
}

/// `naam sim-validate`.
#[derive(Debug, Args)]
pub struct SimValidateArgs {
    /// Experiment ids (quick manifests of the local testbed).
    #[arg(default_values_t = ["mica-ycsb-b".to_string(), "load-shift".to_string()])]
    pub ids: Vec<String>,
    /// The cost profile of this machine.
    #[arg(long, default_value = "this-machine")]
    pub profile: String,
    /// Results root of the validation's runs and table.
    #[arg(long, default_value = "results/sim-validation")]
    pub results: PathBuf,
    /// Figures of the validation's runs.
    #[arg(long, default_value = "figures/sim-validation")]
    pub figures: PathBuf,
    /// Folder of the experiment manifests.
    #[arg(long, default_value = "experiments")]
    pub experiments: PathBuf,
    /// Start new runs even if runs of the same configuration exist.
    #[arg(long)]
    pub fresh: bool,
    /// Print the table as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `naam calibrate`.
#[derive(Debug, Args)]
pub struct CalibrateArgs {
    /// Folder of the cost profiles.
    #[arg(long, default_value = "experiments/profiles")]
    pub profiles: PathBuf,
    /// The profile to write (it must exist: its unmeasured values and their sources are kept).
    #[arg(long, default_value = "this-machine")]
    pub name: String,
    /// Timed calls per function (after as many warm-up calls).
    #[arg(long, default_value_t = 200_000)]
    pub iterations: u64,
    /// Seed of the calibration's datasets and keys.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Print a JSON report.
    #[arg(long)]
    pub json: bool,
}

/// `naam testbed soak`.
#[derive(Debug, Args)]
pub struct SoakArgs {
    /// Seconds of the soak (the soak is 600).
    #[arg(long, default_value_t = 600)]
    pub seconds: u64,
    /// Offered load as a share of the host placement's measured capacity.
    #[arg(long, default_value_t = crate::cmd::SOAK_LOAD_FRACTION_DEFAULT)]
    pub load_fraction: f64,
    /// Where the soak's raw files go.
    #[arg(long, default_value = "results/testbed-soak")]
    pub out: PathBuf,
    /// Print a JSON report.
    #[arg(long)]
    pub json: bool,
    /// Testbed settings.
    #[command(flatten)]
    pub testbed: TestbedArgs,
}

/// `naam testbed bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Seconds of each measurement.
    #[arg(long, default_value_t = 2)]
    pub seconds: u64,
    /// Offered load of the host-placement run (requests/s); it should exceed what the host can do.
    #[arg(long, default_value_t = 200_000)]
    pub offered: u64,
    /// Where the benchmark's raw files go.
    #[arg(long, default_value = "results/testbed-bench")]
    pub out: PathBuf,
    /// Print a JSON report.
    #[arg(long)]
    pub json: bool,
    /// Testbed settings.
    #[command(flatten)]
    pub testbed: TestbedArgs,
}

/// `naam testbed point`.
#[derive(Debug, Args)]
pub struct PointArgs {
    /// The manifest.
    pub manifest: PathBuf,
    /// The point id (see `naam check --json`), default the first.
    #[arg(long)]
    pub point: Option<String>,
    /// The quick variant.
    #[arg(long)]
    pub quick: bool,
    /// Output folder.
    #[arg(long)]
    pub out: PathBuf,
    /// Testbed settings.
    #[command(flatten)]
    pub testbed: TestbedArgs,
}

/// `naam workload ...`.
#[derive(Debug, Subcommand)]
pub enum WorkloadCommand {
    /// A YCSB CoreWorkload trace: CSV `op,keynum,key` on stdout.
    Ycsb(YcsbArgs),
    /// Replay a MICA trace (`S <key-hex> <value-hex>`, `G <key-hex>`, `D <key-hex>`).
    Mica(MicaArgs),
    /// Load a B-tree and look keys up: CSV `key,found,value`.
    Btree(BtreeArgs),
}

/// `naam workload ycsb`.
#[derive(Debug, Args)]
pub struct YcsbArgs {
    /// Records loaded.
    #[arg(long)]
    pub records: u64,
    /// Operations to generate.
    #[arg(long)]
    pub operations: u64,
    /// Seed.
    #[arg(long)]
    pub seed: u64,
    /// Key distribution (default: the workload's own).
    #[arg(long)]
    pub distribution: Option<String>,
    /// YCSB core workload letter.
    #[arg(long, default_value = "b")]
    pub workload: String,
}

/// `naam workload mica`.
#[derive(Debug, Args)]
pub struct MicaArgs {
    /// The trace file.
    #[arg(long)]
    pub trace: PathBuf,
    /// `native` or `vm`.
    #[arg(long, default_value = "native")]
    pub via: String,
    /// Index buckets (power of two).
    #[arg(long)]
    pub buckets: Option<u32>,
    /// Entries per bucket (7 or 15).
    #[arg(long)]
    pub slots: Option<u32>,
    /// Circular log bytes (power of two).
    #[arg(long)]
    pub log_bytes: Option<u64>,
}

/// `naam workload btree`.
#[derive(Debug, Args)]
pub struct BtreeArgs {
    /// `key,value` lines to bulk-load.
    #[arg(long)]
    pub load: PathBuf,
    /// One key per line.
    #[arg(long)]
    pub lookups: PathBuf,
    /// `native` or `vm`.
    #[arg(long, default_value = "native")]
    pub via: String,
    /// Node size.
    #[arg(long)]
    pub node_bytes: Option<u32>,
}
