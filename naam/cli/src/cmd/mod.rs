//! The commands.

mod bench;
mod calibrate;
mod experiments;
mod simvalidate;
mod soak;
mod workload;

use std::process::ExitCode;

use crate::cli::{
    Cli, CloudlabImportArgs, Command, DeployArgs, DoctorArgs, EswitchArg, TestbedArgs,
    TestbedCommand,
};

pub use soak::LOAD_FRACTION_DEFAULT as SOAK_LOAD_FRACTION_DEFAULT;

/// Runs the parsed command line.
pub fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Reproduce(a) => experiments::reproduce(a),
        Command::Run(a) => experiments::run(a),
        Command::Check(a) => experiments::check(a),
        Command::Plot(a) => experiments::plot(a),
        Command::Status(a) => experiments::status(a),
        Command::Report(a) => experiments::report(a),
        Command::Expect(a) => experiments::expect(a),
        Command::Testbed(TestbedCommand::Bench(a)) => bench::bench(a),
        Command::Testbed(TestbedCommand::Point(a)) => bench::point(a),
        Command::Testbed(TestbedCommand::Soak(a)) => soak::soak(a),
        Command::Workload(w) => workload::run(w),
        Command::Deploy(a) => deploy(a),
        Command::Doctor(a) => doctor(a),
        Command::CloudlabImport(a) => cloudlab_import(a),
        Command::Calibrate(a) => calibrate::calibrate(a),
        Command::SimValidate(a) => simvalidate::sim_validate(a),
    }
}

/// The local testbed's options from the command line; builds `naam-role` if it is missing.
pub fn local_options(args: &TestbedArgs) -> anyhow::Result<naam_executors::LocalOptions> {
    let mut options = match naam_executors::LocalOptions::new() {
        Ok(o) => o,
        Err(_) => {
            build_role_binary()?;
            naam_executors::LocalOptions::new()?
        }
    };
    options.verify = !args.no_verify;
    options.eswitch = args.eswitch.map(|e| match e {
        EswitchArg::Kernel => naam_roles::config::EswitchMode::Kernel,
        EswitchArg::User => naam_roles::config::EswitchMode::User,
    });
    if args.busy_poll {
        options.polling = naam_roles::config::Polling::BusyPoll;
    }
    Ok(options)
}

/// `naam-role` lives in naam-roles; `cargo run -p naam-cli` builds only `naam`. When the role
/// binary is not beside `naam`, build it with the same cargo and profile.
fn build_role_binary() -> anyhow::Result<()> {
    let exe = std::env::current_exe()?;
    let release = exe.parent().is_some_and(|d| d.ends_with("release"));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!(
        "naam: building the role binary ({}{})",
        naam_launch::binary::ROLE_BINARY_BUILD,
        if release { " --release" } else { "" }
    );
    naam_launch::build_role_binary(&cargo, &std::env::current_dir()?, release)?;
    Ok(())
}

/// Prints `value` as pretty JSON.
pub fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// `naam deploy --dry-run`.
fn deploy(args: DeployArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        args.dry_run,
        "naam deploy only plans (--dry-run); `naam run <manifest>` deploys and runs when the manifest's testbed is an inventory"
    );
    let variant = if args.quick {
        naam_plan::Variant::Quick
    } else {
        naam_plan::Variant::Full
    };
    print!(
        "{}",
        naam_executors::dry_run(&args.inventory, &args.manifest, variant)?
    );
    Ok(ExitCode::SUCCESS)
}

/// `naam cloudlab-import`: the inventory a CloudLab manifest describes, as TOML on stdout.
fn cloudlab_import(args: CloudlabImportArgs) -> anyhow::Result<ExitCode> {
    use naam_ssh::cloudlab::{BlueFieldArm, ImportOptions, import_manifest};
    let xml = std::fs::read_to_string(&args.manifest)
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.manifest.display()))?;
    let mut options = ImportOptions::new(args.identity_file, args.known_hosts, args.cores);
    options.user = args.user;
    options.bluefield_arm = args.bluefield_arm_port.map(|ssh_port| BlueFieldArm {
        ssh_port,
        ..BlueFieldArm::default()
    });
    let inventory = import_manifest(&xml, &options)?;
    print!("{}", inventory.to_toml()?);
    Ok(ExitCode::SUCCESS)
}

/// `naam doctor`: every check on every node, or (dry run) every command it would run. Fails
/// (exit 1) when a check failed.
fn doctor(args: DoctorArgs) -> anyhow::Result<ExitCode> {
    let inventory = naam_ssh::Inventory::load(&args.inventory)?;
    if args.dry_run {
        let mut runner = naam_doctor::DryRunner::default();
        naam_doctor::examine(&inventory, &mut runner);
        println!(
            "naam doctor --dry-run: {} remote commands on {} nodes (nothing connected)",
            runner.recorded.len(),
            inventory.hosts.len()
        );
        for (node, command) in &runner.recorded {
            println!("{node}: {command}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut runner = naam_doctor::SshRunner::new(naam_ssh::ConnectOptions::default());
    let report = naam_doctor::examine(&inventory, &mut runner);
    println!("{report}");
    Ok(if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The `q` quantile of `values` (sorted in place; nearest rank; 0 when empty).
pub(crate) fn quantile(values: &mut [f64], q: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    let index = ((values.len() as f64 - 1.0) * q).round() as usize;
    values.get(index).copied().unwrap_or(0.0)
}
