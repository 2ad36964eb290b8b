//! A real SIGINT (Ctrl-C) during the measurement tears the run down. In its own test binary,
//! because the signal handler is process-wide.

mod support;

use naam_ssh::cancel::{Cancel, install_signal_handlers};
use naam_ssh::run::{
    EndState, Ends, LaunchSpec, Mark, Phase, PhaseEvent, Readiness, RunConfig, RunStatus, run,
};
use naam_ssh::{RemoteCommand, Role};
use support::Testbed;

/// Stand-in server: runs until stopped (bounded to 300 s).
const SERVER_SCRIPT: &str =
    "touch ready; i=0; while [ \"$i\" -lt 3000 ]; do sleep 0.1; i=$((i+1)); done";

#[test]
fn sigint_during_measurement_stops_every_remote_process() {
    let testbed = Testbed::start();
    let inventory = testbed.inventory();
    install_signal_handlers().unwrap();
    let launches: Vec<LaunchSpec> = support::NODES
        .iter()
        .map(|(name, role)| LaunchSpec {
            id: format!("{name}-standin"),
            host: name.to_string(),
            role: role.parse::<Role>().unwrap(),
            command: RemoteCommand::from_argv(["/bin/sh", "-c", SERVER_SCRIPT, "naam-standin"])
                .unwrap(),
            readiness: Readiness::FileExists("ready".into()),
            outputs: vec![],
            inputs: vec![],
            ends: Ends::for_role(role.parse::<Role>().unwrap()),
        })
        .collect();
    let observer = |event: &PhaseEvent| {
        if event.phase == Phase::Measure && event.mark == Mark::Begin {
            // SAFETY: raise(3) delivers SIGINT to this process, whose handler only sets a flag.
            unsafe {
                libc::raise(libc::SIGINT);
            }
        }
    };
    let config = RunConfig::new("sigint", 200, 60_000, testbed.dir.path().join("results"));
    let record = run(&inventory, &launches, &config, &Cancel::new(), &observer).unwrap();
    assert_eq!(record.status, RunStatus::Cancelled);
    assert_eq!(record.phase_order().last(), Some(&Phase::Teardown));
    for (id, launch) in &record.launches {
        assert_eq!(launch.end, Some(EndState::Terminated), "{id}");
        assert!(
            !support::session_is_live(launch.pid.unwrap()),
            "{id}: still running"
        );
    }
}
