//! Data-driven tests of every steering policy: a script of timestamped samples in, the rule
//! changes out.
//!
//! Script lines: `t=<ms> [host=<us>[/<queue>]] [nic=<us>] [client=<srv_us>,<local_us>,<server_done>,<local_done>,<rtt_us>,<reads_milli>]`
//! `xN` at the end repeats a line N times, one millisecond apart.

use expect_test::{Expect, expect};
use naam_engine::control::{ClientSample, Controller};
use naam_engine::wire::LoadSample;
use naam_engine::*;

fn server_sample(location: Location, at_ms: u64, spec: &str) -> LoadSample {
    let (delay, queue) = spec.split_once('/').unwrap_or((spec, "0"));
    LoadSample {
        at: Nanos(at_ms * 1_000_000),
        location: Some(location),
        queue_delay_ns: delay.trim_end_matches("us").parse::<u64>().unwrap() * 1000,
        utilisation_permille: 500,
        queue_len: queue.parse().unwrap(),
        completions: 100,
        period_ns: 1_000_000,
    }
}

fn client_sample(at_ms: u64, spec: &str) -> ClientSample {
    let v: Vec<u64> = spec.split(',').map(|x| x.parse().unwrap()).collect();
    ClientSample {
        at: Nanos(at_ms * 1_000_000),
        period_ns: 1_000_000,
        server_latency_ns_mean: v[0] * 1000,
        local_latency_ns_mean: v[1] * 1000,
        server_completions: v[2],
        local_completions: v[3],
        read_rtt_ns_mean: v[4] * 1000,
        reads_per_request_milli: v[5],
    }
}

fn check(policy_name: &str, script: &str, expect: Expect) {
    let mut c = Controller::new(policy::by_name(policy_name).unwrap(), RuleKey::DEFAULT);
    let mut out = format!("start {:?}\n", c.current());
    for line in script.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (line, repeat) = match line.rsplit_once(" x") {
            Some((l, n)) => (l, n.parse::<u64>().unwrap()),
            None => (line, 1),
        };
        let mut words = line.split_whitespace();
        let t0: u64 = words
            .next()
            .unwrap()
            .strip_prefix("t=")
            .unwrap()
            .parse()
            .unwrap();
        let fields: Vec<(&str, &str)> = words.map(|w| w.split_once('=').unwrap()).collect();
        for i in 0..repeat {
            let t = t0 + i;
            for (key, value) in &fields {
                let change = match *key {
                    "host" => c.on_sample(server_sample(Location::Host, t, value)),
                    "nic" => c.on_sample(server_sample(Location::Nic, t, value)),
                    "client" => c.on_client_sample(client_sample(t, value)),
                    other => panic!("unknown field {other}"),
                };
                if let Some(ch) = change {
                    out += &format!(
                        "t={}ms {:?} -> {:?}",
                        ch.at.0 / 1_000_000,
                        ch.before,
                        ch.after
                    );
                    if let Some(credit) = ch.pushback_credit_insn {
                        out += &format!(" pushback>{credit}insn");
                    }
                    out += &format!(" ({})\n", ch.reason);
                }
            }
        }
    }
    expect.assert_eq(&out);
}

#[test]
fn static_policies_never_change() {
    for name in ["host", "nic", "client"] {
        let mut c = Controller::new(policy::by_name(name).unwrap(), RuleKey::DEFAULT);
        for t in 0..100 {
            assert!(
                c.on_sample(server_sample(Location::Host, t, "5000us/100"))
                    .is_none()
            );
        }
    }
    check(
        "nic",
        "t=1 host=9000us nic=9000us x3",
        expect![[r#"
        start host=0 nic=1000 client=0 (static placement)
    "#]],
    );
}

#[test]
fn adaptive_sheds_host_load_to_the_nic_fast() {
    check(
        "naam-adaptive",
        "
        t=1 host=50us nic=10us x3
        t=4 host=900us nic=10us x6
    ",
        expect![[r#"
        start host=1000 nic=0 client=0 (start at host)
        t=6ms host=1000 nic=0 client=0 -> host=500 nic=500 client=0 (host congested: shift to NIC)
        t=7ms host=500 nic=500 client=0 -> host=250 nic=750 client=0 (host congested: shift to NIC)
        t=8ms host=250 nic=750 client=0 -> host=125 nic=875 client=0 (host congested: shift to NIC)
        t=9ms host=125 nic=875 client=0 -> host=63 nic=937 client=0 (host congested: shift to NIC)
    "#]],
    );
}

#[test]
fn adaptive_ignores_the_hysteresis_band_and_single_spikes() {
    check(
        "naam-adaptive",
        "
        t=1 host=300us nic=10us x50
        t=51 host=900us nic=10us
        t=52 host=50us nic=10us x20
    ",
        expect![[r#"
        start host=1000 nic=0 client=0 (start at host)
    "#]],
    );
}

#[test]
fn adaptive_returns_load_slowly_and_backs_off_after_a_relapse() {
    // Shed on the 3rd congested sample; return 100 permille per 10 relieved samples; congestion
    // again soon after a return doubles the wait before the next return.
    check(
        "naam-adaptive",
        "
        t=1 host=900us nic=10us x4
        t=5 host=50us nic=10us x23
        t=28 host=900us nic=10us x3
        t=31 host=50us nic=10us x45
    ",
        expect![[r#"
        start host=1000 nic=0 client=0 (start at host)
        t=3ms host=1000 nic=0 client=0 -> host=500 nic=500 client=0 (host congested: shift to NIC)
        t=4ms host=500 nic=500 client=0 -> host=250 nic=750 client=0 (host congested: shift to NIC)
        t=14ms host=250 nic=750 client=0 -> host=350 nic=650 client=0 (host relieved: return load from NIC)
        t=24ms host=350 nic=650 client=0 -> host=450 nic=550 client=0 (host relieved: return load from NIC)
        t=30ms host=450 nic=550 client=0 -> host=225 nic=775 client=0 (host congested: shift to NIC)
        t=50ms host=225 nic=775 client=0 -> host=325 nic=675 client=0 (host relieved: return load from NIC)
        t=70ms host=325 nic=675 client=0 -> host=425 nic=575 client=0 (host relieved: return load from NIC)
    "#]],
    );
}

#[test]
fn adaptive_pushes_back_when_host_and_nic_are_both_congested() {
    // Both congested for long: pushback in 100-permille steps, capped at 500; relief takes the
    // pushed-back load first, 100 permille every 10 relieved samples.
    check(
        "naam-adaptive",
        "
        t=1 host=900us nic=10us x3
        t=4 host=900us nic=2000us x12
        t=16 host=50us nic=50us x25
    ",
        expect![[r#"
        start host=1000 nic=0 client=0 (start at host)
        t=3ms host=1000 nic=0 client=0 -> host=500 nic=500 client=0 (host congested: shift to NIC)
        t=4ms host=500 nic=500 client=0 -> host=250 nic=750 client=0 (host congested: shift to NIC)
        t=5ms host=250 nic=750 client=0 -> host=125 nic=875 client=0 (host congested: shift to NIC)
        t=6ms host=125 nic=875 client=0 -> host=63 nic=937 client=0 (host congested: shift to NIC)
        t=9ms host=63 nic=937 client=0 -> host=0 nic=900 client=100 (host and NIC congested: push back to clients)
        t=10ms host=0 nic=900 client=100 -> host=0 nic=800 client=200 (host and NIC congested: push back to clients)
        t=11ms host=0 nic=800 client=200 -> host=0 nic=700 client=300 (host and NIC congested: push back to clients)
        t=12ms host=0 nic=700 client=300 -> host=0 nic=600 client=400 (host and NIC congested: push back to clients)
        t=13ms host=0 nic=600 client=400 -> host=0 nic=500 client=500 (host and NIC congested: push back to clients)
        t=16ms host=0 nic=500 client=500 -> host=250 nic=250 client=500 (NIC congested: shift to host)
        t=25ms host=250 nic=250 client=500 -> host=350 nic=250 client=400 (relieved: take back pushed-back load)
        t=35ms host=350 nic=250 client=400 -> host=450 nic=250 client=300 (relieved: take back pushed-back load)
    "#]],
    );
}

#[test]
fn kayak_climbs_the_throughput_gradient() {
    // Throughput improves as more requests run client-side, then falls: the direction reverses.
    check(
        "kayak",
        "
        t=1 client=100,0,100,0,0,0 x5
        t=6 client=100,50,100,10,10,2000 x5
        t=11 client=100,50,100,30,10,2000 x5
        t=16 client=100,50,90,20,10,2000 x5
    ",
        expect![[r#"
        start host=1000 nic=0 client=0 (start)
        t=5ms host=1000 nic=0 client=0 -> host=990 nic=0 client=10 (throughput gradient: more client-side)
        t=10ms host=990 nic=0 client=10 -> host=940 nic=0 client=60 (throughput gradient: more client-side)
        t=15ms host=940 nic=0 client=60 -> host=890 nic=0 client=110 (throughput gradient: more client-side)
        t=20ms host=890 nic=0 client=110 -> host=940 nic=0 client=60 (throughput gradient: more RPC)
    "#]],
    );
}

#[test]
fn cell_picks_the_cheaper_side_with_hysteresis() {
    check(
        "cell",
        "
        t=1 client=100,0,100,0,20,2000 x3
        t=4 client=30,35,100,0,20,2000 x3
        t=7 client=30,32,10,100,20,2000 x3
        t=10 client=20,40,10,100,20,2000 x5
    ",
        expect![[r#"
        start host=980 nic=0 client=20 (start server-side)
        t=1ms host=980 nic=0 client=20 -> host=20 nic=0 client=980 (client-side cheaper)
        t=11ms host=20 nic=0 client=980 -> host=980 nic=0 client=20 (server-side cheaper)
    "#]],
    );
}

#[test]
fn splinter_pushes_back_over_credit_invocations_under_backlog() {
    check(
        "splinter",
        "
        t=1 host=100us/1 x2
        t=3 host=100us/6
        t=4 host=1500us/2
        t=5 host=100us/1 x2
    ",
        expect![[r#"
        start host=1000 nic=0 client=0 (start at host)
        t=3ms host=1000 nic=0 client=0 -> host=1000 nic=0 client=0 pushback>250insn (backlog: push back over-credit invocations)
        t=5ms host=1000 nic=0 client=0 -> host=1000 nic=0 client=0 (no backlog)
    "#]],
    );
}

#[test]
fn unknown_policy_names_are_listed() {
    let err = policy::by_name("fastest").unwrap_err();
    expect![[r#"unknown policy "fastest"; known policies: host, nic, client, naam-adaptive, kayak, cell, splinter, ipipe, ipipe-processes"#]]
        .assert_eq(&err.to_string());
}

#[test]
fn adaptive_sheds_faster_when_congestion_is_severe() {
    check(
        "naam-adaptive",
        "
        t=1 host=50us nic=10us x3
        t=4 host=5000us nic=10us x4
    ",
        expect![[r#"
        start host=1000 nic=0 client=0 (start at host)
        t=6ms host=1000 nic=0 client=0 -> host=250 nic=750 client=0 (host congested: shift to NIC)
        t=7ms host=250 nic=750 client=0 -> host=63 nic=937 client=0 (host congested: shift to NIC)
    "#]],
    );
}

#[test]
fn kayak_holds_still_when_throughput_only_jitters() {
    // Open-loop load: throughput follows the offered rate (±1 % here); only the first epoch steps.
    check(
        "kayak",
        "
        t=1 client=100,0,100,0,0,0 x5
        t=6 client=100,0,101,0,0,0 x5
        t=11 client=100,0,100,0,0,0 x5
        t=16 client=100,0,99,0,0,0 x5
    ",
        expect![[r#"
        start host=1000 nic=0 client=0 (start)
        t=5ms host=1000 nic=0 client=0 -> host=990 nic=0 client=10 (throughput gradient: more client-side)
    "#]],
    );
}

/// `count` host samples from `t0_ms` on, one per millisecond, cycling through `delays_us`
/// (the NIC idle beside them).
fn host_pattern(t0_ms: u64, count: u64, delays_us: &[u64]) -> String {
    (0..count)
        .map(|i| {
            let delay = delays_us[(i % delays_us.len() as u64) as usize];
            format!("t={} host={delay}us nic=10us\n", t0_ms + i)
        })
        .collect()
}

#[test]
fn adaptive_in_band_noise_does_not_hold_load_at_the_nic() {
    // A noisy host below capacity: every third sample lands in the hysteresis band. In-band
    // samples do not restart the count of relieved ones, so load still comes home (at two
    // thirds of the base pace).
    let script = format!(
        "t=1 host=900us nic=10us x4\n{}",
        host_pattern(5, 120, &[50, 50, 300])
    );
    check(
        "naam-adaptive",
        &script,
        expect![[r#"
        start host=1000 nic=0 client=0 (start at host)
        t=3ms host=1000 nic=0 client=0 -> host=500 nic=500 client=0 (host congested: shift to NIC)
        t=4ms host=500 nic=500 client=0 -> host=250 nic=750 client=0 (host congested: shift to NIC)
        t=18ms host=250 nic=750 client=0 -> host=350 nic=650 client=0 (host relieved: return load from NIC)
        t=33ms host=350 nic=650 client=0 -> host=450 nic=550 client=0 (host relieved: return load from NIC)
        t=48ms host=450 nic=550 client=0 -> host=550 nic=450 client=0 (host relieved: return load from NIC)
        t=63ms host=550 nic=450 client=0 -> host=650 nic=350 client=0 (host relieved: return load from NIC)
        t=78ms host=650 nic=350 client=0 -> host=750 nic=250 client=0 (host relieved: return load from NIC)
        t=93ms host=750 nic=250 client=0 -> host=850 nic=150 client=0 (host relieved: return load from NIC)
        t=108ms host=850 nic=150 client=0 -> host=950 nic=50 client=0 (host relieved: return load from NIC)
        t=123ms host=950 nic=50 client=0 -> host=1000 nic=0 client=0 (host relieved: return load from NIC)
    "#]],
    );
}

#[test]
fn adaptive_load_comes_home_at_the_base_pace_once_a_return_holds() {
    // Two relapses soon after returns double the wait twice (10 → 40 samples); once the host is
    // relieved for good, each return that holds halves the wait, back to the base pace.
    let script = "
        t=1 host=900us nic=10us x4
        t=5 host=50us nic=10us x11
        t=16 host=900us nic=10us x3
        t=19 host=50us nic=10us x25
        t=44 host=900us nic=10us x3
        t=47 host=50us nic=10us x300
    ";
    check(
        "naam-adaptive",
        script,
        expect![[r#"
        start host=1000 nic=0 client=0 (start at host)
        t=3ms host=1000 nic=0 client=0 -> host=500 nic=500 client=0 (host congested: shift to NIC)
        t=4ms host=500 nic=500 client=0 -> host=250 nic=750 client=0 (host congested: shift to NIC)
        t=14ms host=250 nic=750 client=0 -> host=350 nic=650 client=0 (host relieved: return load from NIC)
        t=18ms host=350 nic=650 client=0 -> host=175 nic=825 client=0 (host congested: shift to NIC)
        t=38ms host=175 nic=825 client=0 -> host=275 nic=725 client=0 (host relieved: return load from NIC)
        t=46ms host=275 nic=725 client=0 -> host=138 nic=862 client=0 (host congested: shift to NIC)
        t=86ms host=138 nic=862 client=0 -> host=238 nic=762 client=0 (host relieved: return load from NIC)
        t=126ms host=238 nic=762 client=0 -> host=338 nic=662 client=0 (host relieved: return load from NIC)
        t=146ms host=338 nic=662 client=0 -> host=438 nic=562 client=0 (host relieved: return load from NIC)
        t=156ms host=438 nic=562 client=0 -> host=538 nic=462 client=0 (host relieved: return load from NIC)
        t=166ms host=538 nic=462 client=0 -> host=638 nic=362 client=0 (host relieved: return load from NIC)
        t=176ms host=638 nic=362 client=0 -> host=738 nic=262 client=0 (host relieved: return load from NIC)
        t=186ms host=738 nic=262 client=0 -> host=838 nic=162 client=0 (host relieved: return load from NIC)
        t=196ms host=838 nic=162 client=0 -> host=938 nic=62 client=0 (host relieved: return load from NIC)
        t=206ms host=938 nic=62 client=0 -> host=1000 nic=0 client=0 (host relieved: return load from NIC)
    "#]],
    );
}
