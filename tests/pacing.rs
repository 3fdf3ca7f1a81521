//! Paced sending (`send --rate`, `bench --rate`) and busy polling
//! (`ping --busy-poll`, `listen --busy-poll`): what they deliver and what
//! they report. Nothing here asserts how precise the timing is on this
//! machine (`scripts/bench-pacing.sh` measures that); only what must hold
//! on any machine: every datagram arrives, no send happens before it is
//! due, the figures are consistent with each other.

use serde_json::Value;

use crate::util::{Proc, closed_port, has, listener, run, stop};

/// The `pacing` object's figures are in order and agree with each other:
/// p50 ≤ p99 ≤ max, the achieved rate is (datagrams − 1) / elapsed, and no
/// send came before its due time, so the last send came at least
/// (datagrams − 1) / rate after the first was due, and the achieved rate
/// is at most the rate.
fn check_pacing(pacing: &Value, rate: u64, datagrams: u64) {
    assert_eq!(pacing["rate"], rate, "{pacing}");
    assert_eq!(pacing["datagrams"], datagrams, "{pacing}");
    let f = |name: &str| {
        pacing[name]
            .as_f64()
            .unwrap_or_else(|| panic!("{name} is a number: {pacing}"))
    };
    let (p50, p99, max) = (
        f("deviation_p50_us"),
        f("deviation_p99_us"),
        f("deviation_max_us"),
    );
    assert!(0.0 <= p50 && p50 <= p99 && p99 <= max, "{pacing}");
    assert!(pacing["late"].as_u64().unwrap() <= datagrams, "{pacing}");
    let elapsed = f("elapsed_s");
    let intervals = (datagrams - 1) as f64;
    // Microsecond rounding aside, never ahead of the schedule.
    assert!(elapsed >= intervals / rate as f64 - 1e-6, "{pacing}");
    let achieved = f("achieved_rate");
    assert!(
        (achieved - intervals / elapsed).abs() <= 0.01,
        "achieved_rate is (datagrams - 1) / elapsed_s: {pacing}"
    );
    // Rounded to a hundredth.
    assert!(achieved <= rate as f64 + 0.01, "{pacing}");
}

/// `send --count 500 --rate 5k` into `listen --count 500`: all 500
/// arrive, and send's JSON summary says how the schedule was kept.
#[test]
fn send_rate_delivers_every_datagram_and_reports_its_schedule() {
    let (mut listen, addr) = listener(&["--count", "500"]);
    let to = addr.to_string();
    let send = run(&[
        "send", &to, "--size", "100", "--count", "500", "--rate", "5k", "--json", "--wait", "0",
    ]);
    assert!(send.finish_ok(), "{}", send.dump());
    let summary = send.first_event("summary");
    assert_eq!(summary["sent"], 500, "{summary}");
    check_pacing(&summary["pacing"], 5000, 500);
    let received = listen.next("summary");
    listen.finish();
    assert!(listen.finish_ok(), "{}", listen.dump());
    assert_eq!(received["received"], 500, "{}", listen.dump());
}

/// For people, `send --rate` ends with a line on the schedule; an unpaced
/// send has none, and its JSON summary no `pacing`.
#[test]
fn send_rate_says_how_the_schedule_was_kept() {
    let (mut listen, addr) = listener(&[]);
    let to = addr.to_string();
    let paced = run(&[
        "send", &to, "x", "--count", "20", "--rate", "1k", "--wait", "0",
    ]);
    assert!(paced.finish_ok(), "{}", paced.dump());
    let line = paced
        .stderr()
        .lines()
        .find(|l| l.starts_with("paced at 1000/s: achieved "))
        .map(str::to_string)
        .unwrap_or_else(|| panic!("no pacing line\n{}", paced.dump()));
    assert!(line.contains("deviation from schedule p50 "), "{line}");
    let unpaced = run(&["send", &to, "x", "--json", "--wait", "0"]);
    assert!(unpaced.finish_ok(), "{}", unpaced.dump());
    assert!(unpaced.first_event("summary").get("pacing").is_none());
    assert!(!unpaced.stderr().contains("paced at"), "{}", unpaced.dump());
    stop(&mut listen);
}

/// `--rate` paces the lines of stdin too: each line × `--count` is one
/// datagram on the schedule.
#[test]
fn send_rate_paces_lines_of_stdin() {
    let (mut listen, addr) = listener(&["--count", "30"]);
    let to = addr.to_string();
    let mut send = Proc::dgram(&[
        "send", &to, "--count", "3", "--rate", "2k", "--json", "--wait", "0",
    ]);
    for i in 0..10 {
        send.write_line(&format!("line {i}"));
    }
    send.close_stdin();
    send.finish();
    assert!(send.finish_ok(), "{}", send.dump());
    let summary = send.first_event("summary");
    assert_eq!(summary["pacing"]["datagrams"], 30, "{summary}");
    assert!(
        summary["pacing"]["deviation_max_us"].is_number(),
        "{summary}"
    );
    let received = listen.next("summary");
    listen.finish();
    assert_eq!(received["received"], 30, "{}", listen.dump());
}

/// `bench --loopback --rate 2k --duration 0.25`: 500 datagrams on the
/// schedule, all received, and the report carries the deviation figures
/// (in JSON and for people).
#[test]
fn bench_rate_reports_its_schedule() {
    let mut json = Proc::dgram(&[
        "bench",
        "--loopback",
        "--rate",
        "2k",
        "--duration",
        "0.25",
        "--json",
    ]);
    let report = json.next("report");
    assert!(json.finish().success(), "{}", json.dump());
    assert_eq!(report["sender"]["sent"], 500, "{report}");
    check_pacing(&report["pacing"], 2000, 500);
    let people = run(&["bench", "--loopback", "--rate", "2k", "--duration", "0.1"]);
    assert!(people.finish_ok(), "{}", people.dump());
    assert!(
        people.stdout().contains("\n  paced at 2000/s: achieved "),
        "{}",
        people.dump()
    );
    // Unpaced, no such figures.
    let mut flood = Proc::dgram(&["bench", "--loopback", "--duration", "0.1", "--json"]);
    let report = flood.next("report");
    flood.finish();
    assert!(report.get("pacing").is_none(), "{report}");
}

/// `ping --busy-poll` against `listen --echo --busy-poll` (and against a
/// blocking echo): every probe answered, round trips in order.
#[test]
fn ping_busy_poll_gets_every_answer() {
    for echo_args in [
        &["--echo", "--echo-rate", "0", "--busy-poll"][..],
        &["--echo", "--echo-rate", "0"][..],
    ] {
        let (mut echo, addr) = listener(echo_args);
        let mut ping = Proc::dgram(&[
            "ping",
            &addr.to_string(),
            "--json",
            "--busy-poll",
            "--count",
            "200",
            "--interval",
            "0",
        ]);
        ping.finish();
        assert!(ping.finish_ok(), "{}", ping.dump());
        let start = ping.first_event("ping_start");
        // Where a receive can look without waiting, ping says it spins.
        if has("true_length") {
            assert_eq!(start["busy_poll"], true, "{start}");
        }
        let summary = ping.first_event("ping_summary");
        assert_eq!(summary["replies"], 200, "{}", ping.dump());
        assert_eq!(summary["lost"], 0, "{}", ping.dump());
        let rtt = &summary["rtt"];
        assert!(rtt["p50_ns"].as_u64() <= rtt["p99_ns"].as_u64(), "{rtt}");
        let echoed = stop(&mut echo);
        assert_eq!(echoed["received"], 200, "{}", echo.dump());
    }
}

/// `ping --busy-poll` to a port where nothing listens ends as the blocking
/// ping does: each probe times out, the ICMP refusal is reported (where
/// the platform shows ICMP errors), status 1, no hang.
#[test]
fn ping_busy_poll_against_nobody_reports_the_refusal() {
    let addr = closed_port().to_string();
    let mut ping = Proc::dgram(&[
        "ping",
        &addr,
        "--json",
        "--busy-poll",
        "--count",
        "2",
        "--interval",
        "100",
        "--timeout",
        "100",
    ]);
    ping.finish();
    assert_eq!(ping.code(), Some(1), "{}", ping.dump());
    let summary = ping.first_event("ping_summary");
    assert_eq!(summary["lost"], 2, "{summary}");
    assert!(ping.stderr().contains("no reply from"), "{}", ping.dump());
    if has("icmp_errors") {
        assert!(summary["unreachable"].as_u64() >= Some(1), "{summary}");
        assert!(
            ping.stderr().contains("port unreachable"),
            "{}",
            ping.dump()
        );
    }
}

/// A rate of 0, a bad unit, or more than 1G per second is a usage error
/// (status 2), for send and bench alike; so is --rate with a keyed send, and
/// bench --rate with --gso (64 datagrams a call would leave as a burst).
#[test]
fn bad_rates_are_usage_errors() {
    let to = closed_port().to_string();
    for (args, says) in [
        (&["send", &to, "x", "--rate", "0"][..], "too small"),
        (&["send", &to, "x", "--rate", "10q"][..], "unknown unit"),
        (&["send", &to, "x", "--rate", "2G"][..], "too large"),
        (&["bench", "--loopback", "--rate", "0"][..], "too small"),
        (
            &["send", &to, "x", "--rate", "10", "--key-file", "k.key"][..],
            "cannot be used with",
        ),
        // GSO hands the kernel 64 datagrams at once: a burst, not a pace.
        (
            &["bench", "--loopback", "--rate", "10k", "--gso"][..],
            "cannot be used with",
        ),
    ] {
        let proc = run(args);
        assert_eq!(proc.code(), Some(2), "{}", proc.dump());
        assert!(proc.stderr().contains(says), "{says}?\n{}", proc.dump());
    }
}
