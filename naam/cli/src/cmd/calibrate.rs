//! `naam calibrate`: measures this machine's costs with microbenchmarks and writes them into the
//! `this-machine` cost profile of the simulation testbed, each value with a source that says it
//! was measured, how, where and when. Values it cannot measure keep their own sources.
//!
//! - **Per-step and per-instruction VM cost**: through the engine and the interpreter
//!   (naam-executors' vm-cost calls, the fastest of several timed runs): a trivial function
//!   (`mov r0, 0; exit` after one 64-byte read) gives the per-step overhead; MICA GET and a
//!   B-tree lookup, with their steps and instructions per call, give the per-instruction cost
//!   beyond it (the accesses' and copies' costs are folded into these two).
//! - **Per-datagram socket cost**: loopback UDP, batches of [`UDP_BATCH`] 64-byte datagrams sent
//!   and then received, the median over [`UDP_ROUNDS`] batches (`tx_ns`, `rx_ns`).
//! - **Scheduler wake-up**: half the round trip of a two-thread UDP ping-pong minus one send
//!   and one receive. The simulator does not model wake-ups (ARTIFACT.md §I); the figure is
//!   printed and written as a comment, for judging the model.
//!
//! The emulated NIC of the local testbed runs at `nic_core_speed_factor` of a host core (the
//! manifests' 0.5), so its step and instruction costs are the host's divided by that factor.

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;

use super::{print_json, quantile};
use crate::cli::CalibrateArgs;

/// Datagrams per timed batch (fits a default 208 KiB receive buffer at ~770 bytes of kernel
/// memory per small datagram).
const UDP_BATCH: usize = 200;
/// Timed batches; the median batch is kept.
const UDP_ROUNDS: usize = 100;
/// Payload of the timed datagrams (a small NAAM request is of this order).
const UDP_PAYLOAD_BYTES: usize = 64;
/// Ping-pong round trips timed for the wake-up latency.
const PING_PONGS: usize = 2_000;
/// Longest wait for one datagram of the ping-pong.
const PING_TIMEOUT: Duration = Duration::from_secs(2);
/// The local testbed's NIC core speed relative to a host core (`nic_core_speed_factor` in
/// every manifest's `[roles]`).
const NIC_CORE_SPEED_FACTOR: f64 = 0.5;

/// What was measured.
#[derive(Debug, Serialize)]
struct Calibration {
    machine_note: &'static str,
    step_ns: f64,
    insn_ns: f64,
    tx_ns: f64,
    rx_ns: f64,
    wakeup_ns_p50: f64,
    wakeup_ns_p99: f64,
    calls: Vec<CallCostReport>,
    profile: PathBuf,
}

#[derive(Debug, Serialize)]
struct CallCostReport {
    function: &'static str,
    ns_per_call: f64,
    steps_per_call: f64,
    insn_per_call: f64,
}

/// `naam calibrate`.
pub fn calibrate(args: CalibrateArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(args.iterations >= 1, "--iterations must be at least 1");
    let calls = naam_executors::vmcost::call_costs(args.seed, args.iterations)?;
    let (step_ns, insn_ns) = fit_step_and_insn(&calls)?;
    let (tx_ns, rx_ns) = udp_costs()?;
    let (wakeup_ns_p50, wakeup_ns_p99) = wakeup_ns(tx_ns + rx_ns)?;
    let profile = args.profiles.join(format!("{}.toml", args.name));
    let calibration = Calibration {
        machine_note: "measured on this machine by `naam calibrate`",
        step_ns,
        insn_ns,
        tx_ns,
        rx_ns,
        wakeup_ns_p50,
        wakeup_ns_p99,
        calls: calls
            .iter()
            .map(|c| CallCostReport {
                function: c.function,
                ns_per_call: c.ns_per_call,
                steps_per_call: c.steps_per_call,
                insn_per_call: c.insn_per_call,
            })
            .collect(),
        profile: profile.clone(),
    };
    write_profile(&profile, &args.name, &calibration)?;
    if args.json {
        print_json(&calibration)?;
    } else {
        print_calibration(&calibration);
    }
    Ok(ExitCode::SUCCESS)
}

/// `step_ns` from the trivial function (one step of two instructions: its whole cost is the
/// per-step overhead), then `insn_ns` as the mean over the real functions of what their calls
/// cost beyond their steps, per instruction.
fn fit_step_and_insn(calls: &[naam_executors::vmcost::CallCost]) -> anyhow::Result<(f64, f64)> {
    let trivial_name = naam_executors::vmcost::TRIVIAL_FUNCTION_NAME;
    let trivial = calls
        .iter()
        .find(|c| c.function == trivial_name)
        .context("no trivial-function timing")?;
    let step_ns = trivial.ns_per_call / trivial.steps_per_call.max(1.0);
    let per_insn: Vec<f64> = calls
        .iter()
        .filter(|c| c.function != trivial_name && c.insn_per_call > 0.0)
        .map(|c| (c.ns_per_call - c.steps_per_call * step_ns) / c.insn_per_call)
        .collect();
    anyhow::ensure!(
        !per_insn.is_empty(),
        "no function with instructions was timed"
    );
    let insn_ns = per_insn.iter().sum::<f64>() / per_insn.len() as f64;
    anyhow::ensure!(
        step_ns > 0.0 && insn_ns > 0.0,
        "the fit gave step {step_ns:.1} ns and instruction {insn_ns:.2} ns (from {calls:?}): \
         the machine was too noisy; run again on a quiet machine"
    );
    Ok((step_ns, insn_ns))
}

/// Median per-datagram send and receive cost on loopback.
fn udp_costs() -> anyhow::Result<(f64, f64)> {
    let receiver = UdpSocket::bind("127.0.0.1:0")?;
    let sender = UdpSocket::bind("127.0.0.1:0")?;
    sender.connect(receiver.local_addr()?)?;
    receiver.set_read_timeout(Some(PING_TIMEOUT))?;
    let payload = [0x5au8; UDP_PAYLOAD_BYTES];
    let mut buf = [0u8; 2048];
    let (mut tx, mut rx) = (Vec::new(), Vec::new());
    for _ in 0..UDP_ROUNDS {
        let started = Instant::now();
        for _ in 0..UDP_BATCH {
            sender.send(&payload)?;
        }
        tx.push(started.elapsed().as_nanos() as f64 / UDP_BATCH as f64);
        let started = Instant::now();
        for _ in 0..UDP_BATCH {
            receiver
                .recv(&mut buf)
                .context("a loopback datagram was lost (receive buffer too small?)")?;
        }
        rx.push(started.elapsed().as_nanos() as f64 / UDP_BATCH as f64);
    }
    Ok((quantile(&mut tx, 0.5), quantile(&mut rx, 0.5)))
}

/// Median and p99 of a blocked thread's wake-up: half a ping-pong round trip minus the socket
/// work of one send and one receive.
fn wakeup_ns(socket_ns: f64) -> anyhow::Result<(f64, f64)> {
    let ping = UdpSocket::bind("127.0.0.1:0")?;
    let pong = UdpSocket::bind("127.0.0.1:0")?;
    ping.connect(pong.local_addr()?)?;
    pong.connect(ping.local_addr()?)?;
    ping.set_read_timeout(Some(PING_TIMEOUT))?;
    pong.set_read_timeout(Some(PING_TIMEOUT))?;
    let echo = std::thread::spawn(move || -> std::io::Result<()> {
        let mut buf = [0u8; 64];
        for _ in 0..PING_PONGS {
            let n = pong.recv(&mut buf)?;
            pong.send(&buf[..n])?;
        }
        Ok(())
    });
    let mut halves = Vec::with_capacity(PING_PONGS);
    let mut buf = [0u8; 64];
    for _ in 0..PING_PONGS {
        let started = Instant::now();
        ping.send(b"ping")?;
        ping.recv(&mut buf)
            .context("the ping-pong thread did not answer")?;
        let half = started.elapsed().as_nanos() as f64 / 2.0;
        halves.push((half - socket_ns).max(0.0));
    }
    echo.join()
        .map_err(|_| anyhow::anyhow!("the ping-pong thread panicked"))??;
    Ok((quantile(&mut halves, 0.5), quantile(&mut halves, 0.99)))
}

/// Rewrites the measured values of `path` in place, keeps every other line, and checks that the
/// simulator accepts the result before writing it.
fn write_profile(path: &Path, name: &str, c: &Calibration) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "reading the profile to calibrate, {} (run from the repository root or pass --profiles)",
            path.display()
        )
    })?;
    let host = hostname();
    let when = naam_results::time::rfc3339(naam_results::time::now_unix());
    let measured = |how: &str| format!("measured by naam calibrate on {host} at {when}: {how}");
    let vm = format!(
        "interpreted calls, the fastest of 5 runs ({})",
        describe_calls(&c.calls)
    );
    let nic_factor = format!(
        "the host's measured value / nic_core_speed_factor {NIC_CORE_SPEED_FACTOR} (the emulated NIC spins to run at that speed); {vm}"
    );
    let udp = format!(
        "median of {UDP_ROUNDS} batches of {UDP_BATCH} loopback datagrams of {UDP_PAYLOAD_BYTES} B"
    );
    let edits: [(&str, &str, f64, String); 12] = [
        ("host", "step_ns", c.step_ns, measured(&vm)),
        ("host", "insn_ns", c.insn_ns, measured(&vm)),
        ("host", "tx_ns", c.tx_ns, measured(&udp)),
        ("host", "rx_ns", c.rx_ns, measured(&udp)),
        (
            "nic",
            "step_ns",
            c.step_ns / NIC_CORE_SPEED_FACTOR,
            measured(&nic_factor),
        ),
        (
            "nic",
            "insn_ns",
            c.insn_ns / NIC_CORE_SPEED_FACTOR,
            measured(&nic_factor),
        ),
        ("nic", "tx_ns", c.tx_ns, measured(&udp)),
        ("nic", "rx_ns", c.rx_ns, measured(&udp)),
        ("client", "step_ns", c.step_ns, measured(&vm)),
        ("client", "insn_ns", c.insn_ns, measured(&vm)),
        ("client", "tx_ns", c.tx_ns, measured(&udp)),
        ("client", "rx_ns", c.rx_ns, measured(&udp)),
    ];
    let mut text = text;
    for (section, key, value, source) in &edits {
        text = set_value(&text, section, key, *value, source)
            .with_context(|| format!("{}", path.display()))?;
    }
    text = set_wakeup_comment(&text, c);
    text = set_description(&text, &host, &when);
    naam_sim::profile::CostProfile::parse(name, &text, path)
        .context("the calibrated profile does not load")?;
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

fn describe_calls(calls: &[CallCostReport]) -> String {
    calls
        .iter()
        .map(|c| {
            format!(
                "{}: {:.0} ns, {:.1} steps, {:.0} instructions per call",
                c.function, c.ns_per_call, c.steps_per_call, c.insn_per_call
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Replaces the line `key = { value = …, source = "…" }` of `[section]`.
fn set_value(
    text: &str,
    section: &str,
    key: &str,
    value: f64,
    source: &str,
) -> anyhow::Result<String> {
    let header = format!("[{section}]");
    let mut in_section = false;
    let mut replaced = false;
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            in_section = trimmed == header;
        }
        let is_key = trimmed
            .split_once('=')
            .is_some_and(|(k, _)| k.trim() == key);
        if in_section && is_key && !replaced {
            let source = source.replace('\\', "\\\\").replace('"', "\\\"");
            out.push_str(&format!(
                "{key} = {{ value = {value:.3}, source = \"{source}\" }}"
            ));
            replaced = true;
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    anyhow::ensure!(replaced, "no {key} in [{section}]");
    Ok(out)
}

/// The top-level `description`, saying the profile is calibrated.
fn set_description(text: &str, host: &str, when: &str) -> String {
    let line = format!(
        "description = \"this machine as its own testbed (loopback UDP), calibrated by naam calibrate on {host} at {when}\""
    );
    text.lines()
        .map(|l| {
            if l.starts_with("description =") {
                line.as_str()
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// The wake-up figure as a comment line at the top (the profile has no field for it).
fn set_wakeup_comment(text: &str, c: &Calibration) -> String {
    const PREFIX: &str = "# naam calibrate: scheduler wake-up";
    let comment = format!(
        "{PREFIX} p50 {:.0} ns, p99 {:.0} ns (not modelled by the simulator)",
        c.wakeup_ns_p50, c.wakeup_ns_p99
    );
    let kept: Vec<&str> = text.lines().filter(|l| !l.starts_with(PREFIX)).collect();
    format!("{comment}\n{}\n", kept.join("\n"))
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "this machine".into())
}

fn print_calibration(c: &Calibration) {
    println!("{}", c.machine_note);
    for call in &c.calls {
        println!(
            "  {:<13} {:>8.0} ns/call  {:>5.1} steps  {:>6.0} instructions",
            call.function, call.ns_per_call, call.steps_per_call, call.insn_per_call
        );
    }
    println!(
        "step {:.1} ns, instruction {:.2} ns (host; the NIC at {NIC_CORE_SPEED_FACTOR}× speed)",
        c.step_ns, c.insn_ns
    );
    println!(
        "loopback UDP: send {:.0} ns, receive {:.0} ns per datagram",
        c.tx_ns, c.rx_ns
    );
    println!(
        "wake-up of a blocked thread: p50 {:.0} ns, p99 {:.0} ns (not modelled)",
        c.wakeup_ns_p50, c.wakeup_ns_p99
    );
    println!("written: {}", c.profile.display());
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROFILE: &str = "schema = 1\n[host]\nstep_ns = { value = 1, source = \"assumption\" }\n[nic]\nstep_ns = { value = 2, source = \"x\" }\n";

    #[test]
    fn a_value_is_replaced_in_its_section_only() {
        let text = set_value(PROFILE, "nic", "step_ns", 7.5, "measured \"here\"").unwrap();
        assert!(
            text.contains("[host]\nstep_ns = { value = 1, source = \"assumption\" }"),
            "{text}"
        );
        assert!(
            text.contains("[nic]\nstep_ns = { value = 7.500, source = \"measured \\\"here\\\"\" }"),
            "{text}"
        );
        assert!(set_value(PROFILE, "dma", "step_ns", 1.0, "x").is_err());
    }

    #[test]
    fn the_trivial_function_gives_the_step_and_the_others_the_instruction() {
        use naam_executors::vmcost::{CallCost, TRIVIAL_FUNCTION_NAME};
        let call = |function, steps: f64, insn: f64| CallCost {
            function,
            ns_per_call: steps * 200.0 + insn * 1.5,
            steps_per_call: steps,
            insn_per_call: insn,
        };
        let calls = [
            call(TRIVIAL_FUNCTION_NAME, 1.0, 0.0),
            call("mica-get", 2.0, 400.0),
            call("btree-lookup", 3.0, 900.0),
        ];
        let (step, insn) = fit_step_and_insn(&calls).unwrap();
        assert!(
            (step - 200.0).abs() < 1e-6 && (insn - 1.5).abs() < 1e-9,
            "{step} {insn}"
        );
        assert!(fit_step_and_insn(&calls[1..]).is_err(), "no trivial timing");
    }
}
