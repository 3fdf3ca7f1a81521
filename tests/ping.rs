//! `dgram ping` against echo servers nobody here wrote (socat, Python) and
//! dgram's own: every probe is accounted for as answered on time, late or
//! lost, and duplicated replies are told apart.

use crate::netns::Lan;
use crate::util::{Proc, listener, need, stop};

/// Runs `dgram ping ADDR --json` with `args` and returns its summary.
fn ping(addr: &str, args: &[&str]) -> (Proc, serde_json::Value) {
    let mut all = vec!["ping", addr, "--json"];
    all.extend_from_slice(args);
    let mut ping = Proc::dgram(&all);
    ping.finish();
    let summary = ping.first_event("ping_summary");
    (ping, summary)
}

/// A Python echo server that answers each datagram `copies` times, except
/// every `drop_every`-th one (0: none), and says its port on stdout.
fn python_echo(drop_every: u32, copies: u32) -> (Proc, String) {
    need("python3");
    let script = format!(
        r#"
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1], flush=True)
n = 0
while True:
    data, peer = s.recvfrom(65535)
    n += 1
    if {drop_every} and n % {drop_every} == 0:
        continue
    for _ in range({copies}):
        s.sendto(data, peer)
"#
    );
    let server = Proc::spawn("python3", &["-c", &script]);
    let port = crate::util::wait_for(
        "the Python echo server's port",
        || server.dump(),
        || server.stdout().lines().next().map(str::to_string),
    );
    (server, format!("127.0.0.1:{port}"))
}

/// Against `dgram listen --echo --echo-rate 0`, ping-pong: every probe
/// answered on time, percentiles in order, the histogram holds them all,
/// exit 0. Round trips are whole nanoseconds (fine enough to compare two
/// programs at 10 µs), and every reply's lies between the summary's min
/// and max.
#[test]
fn ping_dgram_echo() {
    let (mut echo, addr) = listener(&["--echo", "--echo-rate", "0"]);
    let (proc, summary) = ping(&addr.to_string(), &["--count", "50", "--interval", "0"]);
    assert!(proc.finish_ok(), "{}", proc.dump());
    assert_eq!(
        (summary["sent"].as_u64(), summary["replies"].as_u64()),
        (Some(50), Some(50))
    );
    assert_eq!(summary["lost"], 0);
    let rtt = &summary["rtt"];
    let order = ["min_ns", "p50_ns", "p90_ns", "p99_ns", "p999_ns", "max_ns"];
    for name in order.iter().chain(&["mean_ns"]) {
        assert!(rtt[name].is_u64(), "{name} in whole nanoseconds: {rtt}");
    }
    for pair in order.windows(2) {
        assert!(rtt[pair[0]].as_u64() <= rtt[pair[1]].as_u64(), "{rtt}");
    }
    let (min, max) = (rtt["min_ns"].as_u64(), rtt["max_ns"].as_u64());
    for reply in proc.events("reply") {
        let ns = reply["rtt_ns"].as_u64();
        assert!(ns.is_some() && min <= ns && ns <= max, "{reply} vs {rtt}");
    }
    let counted: u64 = rtt["histogram"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["count"].as_u64().unwrap())
        .sum();
    assert_eq!(counted, 50);
    assert_eq!(proc.events("reply").len(), 50);
    assert_eq!(stop(&mut echo)["received"], 50);
}

/// Of 30 probes, every third was lost: 20 replies, 10 lost, and the
/// timeouts are those of probes 2, 5, 8, ….
fn assert_every_third_lost(proc: &Proc, summary: &serde_json::Value, server: &Proc) {
    assert_eq!(summary["sent"], 30, "{}", proc.dump());
    assert_eq!(summary["replies"], 20, "{}\n{}", proc.dump(), server.dump());
    assert_eq!(summary["lost"], 10);
    let timeouts: Vec<u64> = proc
        .events("timeout")
        .iter()
        .map(|t| t["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(timeouts, (0..10).map(|i| i * 3 + 2).collect::<Vec<_>>());
}

/// Against a Python echo server that drops every third datagram: of 30
/// probes exactly 10 are lost (each reported as a timeout), 20 answered.
#[test]
fn ping_counts_loss_exactly() {
    let (mut server, addr) = python_echo(3, 1);
    let (proc, summary) = ping(
        &addr,
        &["--count", "30", "--interval", "0", "--timeout", "150"],
    );
    assert_every_third_lost(&proc, &summary, &server);
    assert_eq!(summary["loss_percent"], 33.3);
    assert!(
        summary["throttled"].is_null(),
        "loss every third probe is no rate limit: {summary}"
    );
    server.kill();
}

/// Pings `server`'s echo at 127.0.0.1:7 on a host of its own (a private
/// namespace: nothing else can hold the port) where nftables drops every
/// third datagram arriving for port 7: of 30 probes exactly 10 are lost,
/// numbers 2, 5, 8, …, each reported as a timeout. Returns the server.
fn ping_through_every_third_dropped(program: &str, args: &[&str]) -> Option<Proc> {
    let lan = Lan::or_skip(1)?;
    lan.drop_arriving(0, "udp dport 7 numgen inc mod 3 == 2")
        .expect("nftables rule");
    let server = lan.spawn(0, program, args);
    lan.wait_bound(0, 7, &server);
    let mut proc = lan.dgram(
        0,
        &[
            "ping",
            "127.0.0.1:7",
            "--json",
            "--count",
            "30",
            "--interval",
            "0",
            "--timeout",
            "150",
        ],
    );
    proc.finish();
    let summary = proc.first_event("ping_summary");
    assert_every_third_lost(&proc, &summary, &server);
    assert_eq!(lan.dropped(0), 10, "nftables dropped every third");
    // Some replies came: like ping(8), that is success.
    assert!(proc.finish_ok(), "{}", proc.dump());
    Some(server)
}

/// dgram's own echo server behind a link that loses every third request:
/// ping counts exactly the loss, and the server heard exactly the rest.
#[test]
fn ping_dgram_echo_every_third_dropped() {
    let args = [
        "listen",
        "127.0.0.1:7",
        "--echo",
        "--echo-rate",
        "0",
        "--json",
    ];
    let Some(mut server) = ping_through_every_third_dropped(crate::util::dgram_path(), &args)
    else {
        return;
    };
    assert_eq!(stop(&mut server)["received"], 20);
}

/// socat's echo (`PIPE`) behind a link that loses every third request:
/// ping counts exactly the loss.
#[test]
fn ping_socat_echo_every_third_dropped() {
    need("socat");
    let args = ["UDP4-LISTEN:7,bind=127.0.0.1,fork", "PIPE"];
    if let Some(mut server) = ping_through_every_third_dropped("socat", &args) {
        server.kill();
    }
}

/// A server that answers twice: each second reply is a duplicate, counted
/// and not timed.
#[test]
fn ping_tells_duplicates_apart() {
    let (mut server, addr) = python_echo(0, 2);
    let (proc, summary) = ping(&addr, &["--count", "5", "--interval", "100"]);
    assert!(proc.finish_ok(), "{}", proc.dump());
    assert_eq!(summary["replies"], 5);
    assert_eq!(summary["duplicates"], 5, "{summary}");
    assert_eq!(summary["lost"], 0);
    server.kill();
}

/// socat as the echo server (`PIPE`): the same probes come back.
#[test]
fn ping_socat_echo() {
    need("socat");
    let port = crate::util::closed_port().port();
    let mut socat = Proc::spawn(
        "socat",
        &[&format!("UDP4-LISTEN:{port},bind=127.0.0.1,fork"), "PIPE"],
    );
    crate::util::wait_bound(port, &socat);
    let (proc, summary) = ping(
        &format!("127.0.0.1:{port}"),
        &["--count", "5", "--interval", "0"],
    );
    assert!(proc.finish_ok(), "{}", proc.dump());
    assert_eq!(summary["replies"], 5, "{}", proc.dump());
    socat.kill();
}

/// Nothing listening: every probe is lost, the refusal is reported, and
/// ping fails (status 1) saying so.
#[test]
fn ping_nobody_fails() {
    let addr = crate::util::closed_port().to_string();
    let (proc, summary) = ping(
        &addr,
        &["--count", "2", "--interval", "100", "--timeout", "100"],
    );
    assert_eq!(proc.code(), Some(1), "{}", proc.dump());
    assert_eq!(summary["lost"], 2);
    assert!(proc.stderr().contains("no reply from"), "{}", proc.dump());
}

/// Ping-pong against `dgram listen --echo --echo-rate 100`: after a burst
/// of 100 replies the server holds replies back, and each lost probe's
/// 200 ms timeout refills 20; ping says the loss looks like a rate limit
/// (`throttled`, about 20 replies between stalls), and so does the human
/// summary.
#[test]
fn ping_says_when_loss_looks_like_a_rate_limit() {
    let (mut echo, addr) = listener(&["--echo", "--echo-rate", "100"]);
    let args = ["--count", "250", "--interval", "0", "--timeout", "200"];
    let (proc, summary) = ping(&addr.to_string(), &args);
    assert!(proc.finish_ok(), "{}", proc.dump());
    assert!(summary["lost"].as_u64().unwrap() >= 4, "{summary}");
    let between = summary["throttled"]["replies_between"]
        .as_u64()
        .unwrap_or_else(|| panic!("not called a rate limit: {summary}"));
    assert!((15..=25).contains(&between), "{summary}");
    let skipped = stop(&mut echo)["echo_skipped"].as_u64().unwrap();
    assert_eq!(skipped, summary["lost"].as_u64().unwrap(), "{summary}");

    let (mut echo, addr) = listener(&["--echo", "--echo-rate", "100"]);
    let addr = addr.to_string();
    let mut all = vec!["ping", addr.as_str()];
    all.extend_from_slice(&args);
    let mut human = Proc::dgram(&all);
    human.finish();
    assert!(
        human
            .stdout()
            .contains("looks like the echo server's rate limit"),
        "{}",
        human.dump()
    );
    stop(&mut echo);
}

/// An echo server that sends back only the first 64 bytes of each
/// 200-byte probe (as socat's 8192-byte buffer does to bigger ones): the
/// replies are counted truncated, apart, neither on time nor lost.
#[test]
fn ping_counts_truncated_replies_apart() {
    need("python3");
    let script = r#"
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1], flush=True)
while True:
    data, peer = s.recvfrom(65535)
    s.sendto(data[:64], peer)
"#;
    let mut server = Proc::spawn("python3", &["-c", script]);
    let port = crate::util::wait_for(
        "the Python echo server's port",
        || server.dump(),
        || server.stdout().lines().next().map(str::to_string),
    );
    let (proc, summary) = ping(
        &format!("127.0.0.1:{port}"),
        &["--count", "5", "--interval", "0", "--size", "200"],
    );
    assert!(proc.finish_ok(), "{}", proc.dump());
    assert_eq!(summary["truncated"], 5, "{summary}");
    assert_eq!(summary["replies"], 0, "{summary}");
    assert_eq!(summary["lost"], 0, "{summary}");
    assert!(summary["rtt"].is_null(), "not timed: {summary}");
    for reply in proc.events("reply") {
        assert_eq!(reply["status"], "truncated", "{reply}");
        assert_eq!(reply["len"], 64, "{reply}");
    }
    server.kill();
}

/// `--max-size` is ping's own receive buffer, as in listen: replies to
/// 64-byte probes taken into 30 bytes are cut here and counted truncated,
/// apart (not timed), and the human line says this side's buffer cut
/// them, not the echo server's.
#[test]
fn ping_max_size_cuts_replies_here() {
    let (mut echo, addr) = listener(&["--echo"]);
    let target = addr.to_string();
    let (proc, summary) = ping(
        &target,
        &["--count", "3", "--interval", "0", "--max-size", "30"],
    );
    assert!(proc.finish_ok(), "{}", proc.dump());
    assert_eq!(summary["truncated"], 3, "{summary}");
    assert_eq!(summary["replies"], 0, "{summary}");
    for reply in proc.events("reply") {
        assert_eq!(reply["status"], "truncated", "{reply}");
        assert_eq!(reply["len"], 30, "{reply}");
    }
    let human = crate::util::run(&["ping", &target, "--count", "1", "--max-size", "30"]);
    assert!(human.finish_ok(), "{}", human.dump());
    assert!(
        human.stdout().contains("truncated here by --max-size 30"),
        "{}",
        human.dump()
    );
    stop(&mut echo);
}

/// A program that holds the port but takes datagrams from one peer only
/// (a connected socket, as socat without fork and `nc -u -l` after their
/// first): every probe is refused. Ping says the cause once, on one line
/// (no second guess that no echo server runs there). The portable build
/// hears no ICMP: there it only says no reply came.
#[test]
fn ping_single_peer_program_one_cause_one_line() {
    need("python3");
    let script = r#"
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
s.connect(("127.0.0.1", int(sys.argv[1])))
print(s.getsockname()[1], flush=True)
time.sleep(60)
"#;
    let other = crate::util::closed_port().port().to_string();
    let mut holder = Proc::spawn("python3", &["-c", script, &other]);
    let port = crate::util::wait_for(
        "the program's port",
        || holder.dump(),
        || holder.stdout().lines().next().map(str::to_string),
    );
    let to = format!("127.0.0.1:{port}");
    let mut proc = Proc::dgram(&[
        "ping",
        &to,
        "--count",
        "3",
        "--interval",
        "100",
        "--timeout",
        "100",
    ]);
    assert_eq!(proc.finish().code(), Some(1), "{}", proc.dump());
    if !crate::util::has("icmp_errors") {
        // The portable build hears no refusal: silence is all it knows.
        assert!(proc.stderr().contains("no reply from"), "{}", proc.dump());
        holder.kill();
        return;
    }
    let all = format!("{}{}", proc.stdout(), proc.stderr());
    assert_eq!(all.matches("holds that port").count(), 1, "{}", proc.dump());
    assert!(!all.contains("echo server running"), "{}", proc.dump());
    let stderr = proc.stderr();
    let error: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(error.len(), 1, "{}", proc.dump());
    assert!(error[0].contains("one peer only"), "{}", proc.dump());
    holder.kill();
}
