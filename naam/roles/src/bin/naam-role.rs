//! `naam-role --config FILE`: runs one NAAM role (host, nic, client, hog) as configured. The lean
//! binary the local testbed spawns and the orchestrator deploys.

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: naam-role --config FILE\n\nRuns one NAAM role (host, nic, client or hog) described by a JSON role configuration\n(naam_roles::config::RoleConfig); written by `naam testbed` and the orchestrator.";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let path = match args.as_slice() {
        [flag, path] if flag == "--config" => PathBuf::from(path),
        [flag] if flag == "--help" || flag == "-h" => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let config = match naam_roles::RoleConfig::read(&path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("naam-role: {e}");
            return ExitCode::from(2);
        }
    };
    let role = config.role.name();
    match naam_roles::run(&config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("naam-role {role}: {e}");
            ExitCode::FAILURE
        }
    }
}
