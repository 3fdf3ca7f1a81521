//! `dgram mtu` across a real path with a 1400-byte link: three network
//! namespaces in a line, A – R – B, where R routes between a 1500-byte
//! link (to A) and a 1400-byte link (to B), so that R answers a probe too
//! large for B's link with ICMP "fragmentation needed" (or, over IPv6,
//! "packet too big"), unless nftables on R drops those (a black hole).
//! The prober runs in A, the listener or echo server in B.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use serde_json::Value;

use crate::netns::sh;
use crate::util::{Proc, dgram_path, has, wait_for};

/// Namespaces `A`, `R`, `B` of one test, removed on drop.
struct Line {
    names: [String; 3],
}

const A: usize = 0;
const R: usize = 1;
const B: usize = 2;

/// B's IPv4 and IPv6 addresses.
const B_V4: &str = "10.78.2.2";
const B_V6: &str = "fd78:2::2";

impl Line {
    fn new() -> Result<Line, String> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let id = format!("{}-{n}", std::process::id());
        let line = Line {
            names: ["a", "r", "b"].map(|h| format!("dgram-mtu{h}-{id}")),
        };
        for name in &line.names {
            sh(&["ip", "netns", "add", name])?;
            sh(&["ip", "-n", name, "link", "set", "lo", "up"])?;
            for key in ["all", "default"] {
                let dad = format!("net.ipv6.conf.{key}.accept_dad=0");
                sh(&["ip", "netns", "exec", name, "sysctl", "-qw", &dad])?;
            }
        }
        let [a, r, b] = &line.names;
        // A eth0 <-> R eth0 at 1500; R eth1 <-> B eth0 at 1400.
        for (host, dev, peer_host, peer_dev, mtu) in [
            (a, "eth0", r, "eth0", "1500"),
            (r, "eth1", b, "eth0", "1400"),
        ] {
            sh(&[
                "ip", "-n", host, "link", "add", "tmp0", "type", "veth", "peer", "name", "tmp1",
            ])?;
            sh(&["ip", "-n", host, "link", "set", "tmp1", "netns", peer_host])?;
            sh(&["ip", "-n", host, "link", "set", "tmp0", "name", dev])?;
            sh(&[
                "ip", "-n", peer_host, "link", "set", "tmp1", "name", peer_dev,
            ])?;
            for (ns, d) in [(host, dev), (peer_host, peer_dev)] {
                sh(&["ip", "-n", ns, "link", "set", d, "mtu", mtu])?;
                sh(&["ip", "-n", ns, "link", "set", d, "up"])?;
            }
        }
        for (ns, dev, v4, v6) in [
            (a, "eth0", "10.78.1.1/24", "fd78:1::1/64"),
            (r, "eth0", "10.78.1.2/24", "fd78:1::2/64"),
            (r, "eth1", "10.78.2.1/24", "fd78:2::1/64"),
            (b, "eth0", "10.78.2.2/24", "fd78:2::2/64"),
        ] {
            sh(&["ip", "-n", ns, "addr", "add", v4, "dev", dev])?;
            sh(&["ip", "-n", ns, "-6", "addr", "add", v6, "dev", dev, "nodad"])?;
        }
        sh(&["ip", "-n", a, "route", "add", "default", "via", "10.78.1.2"])?;
        sh(&["ip", "-n", b, "route", "add", "default", "via", "10.78.2.1"])?;
        sh(&[
            "ip",
            "-n",
            a,
            "-6",
            "route",
            "add",
            "default",
            "via",
            "fd78:1::2",
        ])?;
        sh(&[
            "ip",
            "-n",
            b,
            "-6",
            "route",
            "add",
            "default",
            "via",
            "fd78:2::1",
        ])?;
        for key in ["net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"] {
            sh(&["ip", "netns", "exec", r, "sysctl", "-qw", key])?;
        }
        Ok(line)
    }

    /// The line, or one SKIPPED line (a failure under `CI=true`).
    fn or_skip() -> Option<Line> {
        if !has("icmp_errors") {
            // The portable build cannot set the don't-fragment flag: it
            // says so and fails, rather than measure fragmented probes.
            let mut mtu = crate::util::run(&["mtu", "127.0.0.1:9"]);
            assert_eq!(mtu.finish().code(), Some(1), "{}", mtu.dump());
            assert!(mtu.stderr().contains("IP_MTU_DISCOVER"), "{}", mtu.dump());
            eprintln!("SKIPPED: the portable build cannot probe the path MTU (no IP_MTU_DISCOVER)");
            return None;
        }
        match Line::new() {
            Ok(line) => Some(line),
            Err(why) if std::env::var("CI").as_deref() != Ok("true") => {
                eprintln!(
                    "SKIPPED: network namespaces cannot be made here (root, iproute2 and nftables needed): {why}"
                );
                None
            }
            Err(why) => panic!("network namespaces are needed in CI: {why}"),
        }
    }

    fn command(&self, host: usize, program: &str, args: &[&str]) -> Command {
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", &self.names[host], program])
            .args(args);
        command
    }

    fn dgram(&self, host: usize, args: &[&str]) -> Proc {
        Proc::start(self.command(host, dgram_path(), args))
    }

    /// Makes R a black hole: the ICMP errors it would send (fragmentation
    /// needed, packet too big) are dropped on its output, and counted.
    fn drop_icmp_at_router(&self) {
        let table = "table inet blackhole {\n chain out {\n  type filter hook output priority 0; policy accept;\n  icmp type destination-unreachable counter drop\n  icmpv6 type packet-too-big counter drop\n }\n}\n";
        let mut nft = self
            .command(R, "nft", &["-f", "-"])
            .stdin(Stdio::piped())
            .spawn()
            .expect("nft runs");
        use std::io::Write as _;
        nft.stdin
            .take()
            .unwrap()
            .write_all(table.as_bytes())
            .unwrap();
        assert!(nft.wait().unwrap().success(), "nft -f: {table}");
    }

    /// ICMP errors R's nftables dropped.
    fn icmp_dropped(&self) -> u64 {
        let output = self
            .command(R, "nft", &["list", "table", "inet", "blackhole"])
            .output()
            .expect("nft runs");
        String::from_utf8_lossy(&output.stdout)
            .split("packets ")
            .skip(1)
            .filter_map(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
            .sum()
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        for name in &self.names {
            let _ = sh(&["ip", "netns", "delete", name]);
        }
    }
}

/// A dgram listener in B on `ip` (port chosen by the system): the process
/// and its address.
fn listener_in_b(line: &Line, ip: &str, extra: &[&str]) -> (Proc, SocketAddr) {
    let bind = if ip.contains(':') {
        format!("[{ip}]:0")
    } else {
        format!("{ip}:0")
    };
    let mut args = vec!["listen", &bind, "--json"];
    args.extend_from_slice(extra);
    let mut listen = line.dgram(B, &args);
    let local: SocketAddr = listen.expect("listening")["local"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    (listen, local)
}

/// Runs `dgram mtu ADDR --json` in A and returns its events.
fn probe_from_a(line: &Line, to: SocketAddr) -> (Proc, Vec<Value>) {
    let mut mtu = line.dgram(A, &["mtu", &to.to_string(), "--json"]);
    let status = mtu.finish();
    assert!(status.success(), "{}", mtu.dump());
    let events = mtu
        .stdout()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    (mtu, events)
}

/// The result events, by direction.
fn results(events: &[Value]) -> Vec<(String, u64, bool, f64)> {
    events
        .iter()
        .filter(|e| e["event"] == "result")
        .map(|e| {
            (
                e["direction"].as_str().unwrap().to_string(),
                e["payload"].as_u64().unwrap(),
                e["icmp_seen"].as_bool().unwrap(),
                e["ms"].as_f64().unwrap(),
            )
        })
        .collect()
}

fn figure(what: &str, results: &[(String, u64, bool, f64)]) {
    for (direction, payload, icmp, ms) in results {
        eprintln!("FIGURE: {what}: {direction} {payload} B (ICMP seen: {icmp}) in {ms:.0} ms");
    }
}

/// Across the 1400-byte link with ICMP: forward and reverse are 1372 B
/// exactly (1400 − 20 − 8); the forward search heard R's "fragmentation
/// needed" naming 1400, and confirmed 1372 with a probe answered and 1373
/// failed, rather than taking the ICMP's word.
#[test]
fn mtu_across_a_1400_link_with_icmp() {
    let Some(line) = Line::or_skip() else { return };
    let (mut listen, addr) = listener_in_b(&line, B_V4, &[]);
    let (_mtu, events) = probe_from_a(&line, addr);
    let found = results(&events);
    figure("IPv4 with ICMP", &found);
    assert_eq!(found.len(), 2, "{events:?}");
    assert_eq!((found[0].0.as_str(), found[0].1), ("forward", 1372));
    assert_eq!((found[1].0.as_str(), found[1].1), ("reverse", 1372));
    assert!(found[0].2, "the forward search saw ICMP: {events:?}");
    let results: Vec<&Value> = events.iter().filter(|e| e["event"] == "result").collect();
    assert_eq!(
        results[0]["one_more"], "icmp",
        "1373 got R's ICMP: {events:?}"
    );
    assert_eq!(
        results[1]["one_more"], "lost",
        "B refused to send 1373: {events:?}"
    );
    let forward: Vec<u64> = events
        .iter()
        .filter(|e| e["event"] == "probe" && e["direction"] == "forward")
        .map(|e| e["size"].as_u64().unwrap())
        .collect();
    assert_eq!(
        forward,
        [1172, 65507, 1472, 1372, 1373],
        "the base, the largest (refused by A's 1500 interface, which names its MTU), \
         that hint (R's ICMP names 1400), that hint confirmed, one byte more: {events:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "local_too_big" && e["size"] == 65507 && e["mtu"] == 1500),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "too_big" && e["mtu"] == 1400 && e["from"] == "10.78.1.2"),
        "R (10.78.1.2 on A's side) reported MTU 1400: {events:?}"
    );
    for (direction, size) in [("forward", 1372), ("reverse", 1372)] {
        assert!(
            events.iter().any(|e| e["event"] == "answered"
                && e["direction"] == direction
                && e["size"] == size),
            "{direction} {size} was confirmed by a probe: {events:?}"
        );
        assert!(
            events.iter().any(|e| e["event"] == "probe"
                && e["direction"] == direction
                && e["size"] == size + 1),
            "{direction} {} was probed: {events:?}",
            size + 1
        );
    }
    assert_eq!(events.last().unwrap()["forward"], 1372);
    listen.kill();
}

/// With R's ICMP errors dropped by nftables (a black hole), probing alone
/// gives the same 1372 B each way; R's counter shows ICMP was there to
/// drop, and dgram saw none.
#[test]
fn mtu_through_a_black_hole() {
    let Some(line) = Line::or_skip() else { return };
    line.drop_icmp_at_router();
    let (mut listen, addr) = listener_in_b(&line, B_V4, &[]);
    let (_mtu, events) = probe_from_a(&line, addr);
    let found = results(&events);
    figure("IPv4, no ICMP", &found);
    assert_eq!(found.len(), 2, "{events:?}");
    assert_eq!((found[0].0.as_str(), found[0].1), ("forward", 1372));
    assert_eq!((found[1].0.as_str(), found[1].1), ("reverse", 1372));
    assert!(
        !found[0].2 && !found[1].2,
        "no ICMP got through: {events:?}"
    );
    assert!(!events.iter().any(|e| e["event"] == "too_big"));
    for result in events.iter().filter(|e| e["event"] == "result") {
        assert_eq!(
            result["one_more"], "lost",
            "1373 failed by loss: {events:?}"
        );
    }
    assert!(
        events.iter().any(|e| e["event"] == "lost"
            && e["direction"] == "forward"
            && e["size"] == 1373
            && e["failed"] == true),
        "1373 failed by loss alone: {events:?}"
    );
    assert!(
        line.icmp_dropped() > 0,
        "R had ICMP to send, and nftables dropped it"
    );
    listen.kill();
}

/// Over IPv6 the same link gives 1352 B each way (1400 − 40 − 8), R's
/// "packet too big" taken as a hint and confirmed.
#[test]
fn mtu_over_ipv6() {
    let Some(line) = Line::or_skip() else { return };
    let (mut listen, addr) = listener_in_b(&line, B_V6, &[]);
    let (_mtu, events) = probe_from_a(&line, addr);
    let found = results(&events);
    figure("IPv6 with ICMPv6", &found);
    assert_eq!(found.len(), 2, "{events:?}");
    assert_eq!((found[0].0.as_str(), found[0].1), ("forward", 1352));
    assert_eq!((found[1].0.as_str(), found[1].1), ("reverse", 1352));
    assert!(found[0].2, "packet too big was heard: {events:?}");
    listen.kill();
}

/// `listen --echo` answers probes as a listener (both directions); an
/// echo server that is not dgram (`listen --echo --raw`, a Python echo,
/// socat) sends the probe back as it came: only the round trip is
/// measured, 1372 B, and the output says the reverse is not known.
#[test]
fn mtu_against_echo_servers() {
    let Some(line) = Line::or_skip() else { return };
    let (mut echo, addr) = listener_in_b(&line, B_V4, &["--echo"]);
    let (_mtu, events) = probe_from_a(&line, addr);
    assert_eq!(events.last().unwrap()["peer"], "listener", "{events:?}");
    assert_eq!(events.last().unwrap()["reverse"], 1372);
    echo.kill();

    let (mut raw, addr) = listener_in_b(&line, B_V4, &["--echo", "--raw", "--echo-rate", "0"]);
    let (_mtu, events) = probe_from_a(&line, addr);
    let summary = events.last().unwrap();
    assert_eq!(summary["peer"], "echo", "{events:?}");
    assert_eq!(summary["round_trip"], 1372);
    assert_eq!(summary["forward_exact"], true, "R's ICMP answered 1373");
    assert_eq!(summary["reverse"], Value::Null);
    raw.kill();

    let script = "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.bind(('10.78.2.2',0))\nprint(s.getsockname()[1],flush=True)\nwhile True:\n d,a=s.recvfrom(65535)\n s.sendto(d,a)\n";
    let mut python = Proc::start(line.command(B, "python3", &["-c", script]));
    let port: u16 = crate::util::wait_for(
        "the Python echo's port",
        || python.dump(),
        || python.stdout().lines().next()?.trim().parse().ok(),
    );
    let (_mtu, events) = probe_from_a(&line, format!("{B_V4}:{port}").parse().unwrap());
    let found = results(&events);
    figure("IPv4 round trip via a Python echo", &found);
    let summary = events.last().unwrap();
    assert_eq!(summary["peer"], "echo", "{events:?}");
    assert_eq!(summary["round_trip"], 1372);
    python.kill();
}

/// False, with one SKIPPED line, on the portable build, which cannot set
/// the don't-fragment flag (`Line::or_skip` checks that it says so).
fn probes_here(test: &str) -> bool {
    if has("icmp_errors") {
        return true;
    }
    eprintln!("SKIPPED {test}: the portable build cannot probe the path MTU (no IP_MTU_DISCOVER)");
    false
}

/// An echo server that sends back at most 8192 bytes (socat's buffer; a
/// Python echo reading 8192 here) on loopback: the probe it cuts is not
/// counted lost and the search does not go on halving down to 8192 B;
/// it ends at once with a `short_echo` event and a result saying the
/// echo's limit and that the probe it cut crossed whole (forward at
/// least), exit status 0.
#[test]
fn mtu_against_an_echo_that_cuts_probes_short() {
    if !probes_here("mtu_against_an_echo_that_cuts_probes_short") {
        return;
    }
    crate::util::need("python3");
    let script = "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.bind(('127.0.0.1',0))\nprint(s.getsockname()[1],flush=True)\nwhile True:\n d,a=s.recvfrom(8192)\n s.sendto(d,a)\n";
    let mut python = Proc::spawn("python3", &["-c", script]);
    let port: u16 = wait_for(
        "the Python echo's port",
        || python.dump(),
        || python.stdout().lines().next()?.trim().parse().ok(),
    );
    let mut mtu = Proc::dgram(&["mtu", &format!("127.0.0.1:{port}"), "--json"]);
    let status = mtu.finish();
    python.kill();
    assert!(status.success(), "{}", mtu.dump());
    assert!(mtu.events("lost").is_empty(), "{}", mtu.dump());
    let cut = mtu.first_event("short_echo");
    assert_eq!(cut["echoed"], 8192, "{}", mtu.dump());
    let size = cut["size"].as_u64().unwrap();
    assert!(size > 8192, "{}", mtu.dump());
    let result = mtu.first_event("result");
    assert_eq!(result["echo_limit"], 8192, "{}", mtu.dump());
    assert_eq!(
        result["payload"], size,
        "the probe that was cut crossed whole"
    );
    let summary = mtu.first_event("summary");
    assert_eq!(summary["peer"], "echo");
    assert_eq!(summary["forward_at_least"], size);
    assert_eq!(summary["forward_exact"], false);
    assert!(
        mtu.events("probe").len() <= 3,
        "it stops at the cut: {}",
        mtu.dump()
    );
}

/// An MTU mismatch on A's link (A's end 1500, R's end 1300, the fault
/// `mtu` exists to find): a probe A's veth cannot hand to R's fails its
/// send with ENOBUFS. Each such send is a lost try, not the end of the
/// run: both directions end near 1272 B (1300 − 28; forward up to 4 B
/// more, see below), exit status 0.
#[test]
fn mtu_across_a_mismatched_link_counts_refused_sends_as_lost() {
    let Some(line) = Line::or_skip() else { return };
    sh(&[
        "ip",
        "-n",
        &line.names[R],
        "link",
        "set",
        "eth0",
        "mtu",
        "1300",
    ])
    .unwrap();
    let (_listener, addr) = listener_in_b(&line, B_V4, &[]);
    let (mtu, events) = probe_from_a(&line, addr);
    let found = results(&events);
    figure("IPv4 across a 1500/1300 mismatch", &found);
    let payloads: Vec<u64> = found.iter().map(|r| r.1).collect();
    // R's veth takes a frame up to its MTU plus a VLAN tag's 4 bytes
    // (the kernel's is_skb_forwardable), so forward may end at 1276.
    assert!(
        payloads.len() == 2 && (1272..=1276).contains(&payloads[0]) && payloads[1] == 1272,
        "{payloads:?}: {}",
        mtu.dump()
    );
    assert!(
        events.iter().any(|e| e["event"] == "not_sent"),
        "the mismatch made sends fail: {}",
        mtu.dump()
    );
}

/// R has no route to 10.99.0.1: its ICMP "network unreachable" is a
/// report about the path, said as such (who sent it, what it means, an
/// `unreachable` event), exit status 1, not a local
/// receive fault.
#[test]
fn mtu_through_a_router_without_a_route_names_it() {
    let Some(line) = Line::or_skip() else { return };
    let mut mtu = line.dgram(A, &["mtu", "10.99.0.1:24100", "--json"]);
    let status = mtu
        .exit_within(Duration::from_secs(5))
        .expect("ends by itself");
    assert_eq!(status.code(), Some(1), "{}", mtu.dump());
    let said = mtu.first_event("unreachable");
    assert_eq!(said["from"], "10.78.1.2", "{}", mtu.dump());
    assert_eq!(said["reason"], "network unreachable", "{}", mtu.dump());
    assert!(
        mtu.stderr()
            .contains("10.78.1.2 says network unreachable for 10.99.0.1"),
        "{}",
        mtu.dump()
    );
    assert!(
        !mtu.stderr().contains("could not receive"),
        "{}",
        mtu.dump()
    );
}

/// On loopback: `--json` round trips are whole microseconds (at most 3
/// decimals of a millisecond, as the other commands give them); a
/// refused run ends with a `failed` event naming the refusal, and its
/// advice is a plain `dgram listen` (both directions), not `--echo`.
#[test]
fn mtu_json_rounds_times_and_reports_a_refusal() {
    if !probes_here("mtu_json_rounds_times_and_reports_a_refusal") {
        return;
    }
    let (mut listener, addr) = crate::util::listener(&[]);
    let mut mtu = Proc::dgram(&["mtu", &addr.to_string(), "--json"]);
    assert!(mtu.finish().success(), "{}", mtu.dump());
    listener.kill();
    let answered = mtu.events("answered");
    assert!(!answered.is_empty(), "{}", mtu.dump());
    for line in mtu.stdout().lines() {
        let value: Value = serde_json::from_str(line).unwrap();
        for key in ["rtt_ms", "ms"] {
            if let Some(ms) = value.get(key) {
                let text = ms.to_string();
                let decimals = text.split_once('.').map_or(0, |(_, d)| d.len());
                assert!(decimals <= 3, "{key} {text} in {line}");
            }
        }
    }

    let closed = crate::util::closed_port();
    let mut mtu = Proc::dgram(&["mtu", &closed.to_string(), "--json"]);
    let status = mtu
        .exit_within(Duration::from_secs(5))
        .expect("ends by itself");
    assert_eq!(status.code(), Some(1), "{}", mtu.dump());
    let failed = mtu.first_event("failed");
    assert!(
        failed["reason"]
            .as_str()
            .unwrap()
            .contains("nothing is listening there"),
        "{}",
        mtu.dump()
    );
    assert!(
        mtu.stderr().contains(&format!("dgram listen {closed}:")),
        "{}",
        mtu.dump()
    );
    assert!(!mtu.stderr().contains("--echo"), "{}", mtu.dump());
}

/// A port that takes the probes and never answers: the base probe's
/// last try is labelled "no answer" (nothing says it was too big), the
/// advice is a plain `dgram listen`; Ctrl-C during the first probe's
/// wait says "interrupted after 1 probe" (singular), exit 130.
#[test]
fn mtu_to_a_silent_port_says_no_answer() {
    if !probes_here("mtu_to_a_silent_port_says_no_answer") {
        return;
    }
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    let mut mtu = Proc::dgram(&["mtu", &addr.to_string()]);
    let status = mtu
        .exit_within(Duration::from_secs(10))
        .expect("ends by itself");
    assert_eq!(status.code(), Some(1), "{}", mtu.dump());
    assert!(
        mtu.stdout()
            .contains("1172 B  lost (try 3 of 3): no answer\n"),
        "{}",
        mtu.dump()
    );
    assert!(!mtu.stdout().contains("too big"), "{}", mtu.dump());
    assert!(
        mtu.stderr().contains(&format!("dgram listen {addr}:")),
        "{}",
        mtu.dump()
    );

    let mut mtu = Proc::dgram(&["mtu", &addr.to_string()]);
    mtu.wait_stdout_contains("forward (here");
    mtu.signal(nix::sys::signal::Signal::SIGINT);
    let status = mtu
        .exit_within(Duration::from_secs(5))
        .expect("ends on Ctrl-C");
    assert_eq!(status.code(), Some(130), "{}", mtu.dump());
    assert!(
        mtu.stdout()
            .contains("forward: interrupted after 1 probe\n"),
        "{}",
        mtu.dump()
    );
    drop(silent);
}

/// A downed target (nothing on the port: ICMP port unreachable) is a
/// clear report and exit status 1, within a second, not a hang.
#[test]
fn mtu_to_a_closed_port_is_reported() {
    let Some(line) = Line::or_skip() else { return };
    let mut mtu = line.dgram(A, &["mtu", &format!("{B_V4}:9")]);
    let status = mtu
        .exit_within(Duration::from_secs(5))
        .expect("ends by itself");
    assert_eq!(status.code(), Some(1), "{}", mtu.dump());
    assert!(
        mtu.stderr().contains("ICMP port unreachable"),
        "{}",
        mtu.dump()
    );
}

/// `dgram lab fragments`: across its 1400-byte link, 3000-byte datagrams
/// leave as 3 fragments; the middle fragments of the 50 datagrams marked
/// for it are all dropped by nftables, and every such datagram is lost
/// whole, so lost = the rule's counter exactly, sent =
/// received + lost, and the receiver's kernel reassembled exactly the
/// datagrams received from the fragments that arrived; 1000-byte
/// datagrams lose none. Its namespaces are gone afterwards. Without
/// namespaces (not root, the portable build) it says it measured
/// nothing.
#[test]
fn lab_fragments_counts_add_up() {
    let mut lab = crate::util::run(&["lab", "fragments", "--json"]);
    assert!(lab.finish().success(), "{}", lab.dump());
    let report: Value = serde_json::from_str(lab.stdout().lines().next().unwrap()).unwrap();
    let facts = &report["facts"];
    if facts["measured"] == false {
        assert!(
            !nix::unistd::geteuid().is_root() || !has("icmp_errors"),
            "root with the Linux build measures: {report}"
        );
        assert!(
            std::env::var("CI").as_deref() != Ok("true") || !has("icmp_errors"),
            "CI measures: {report}"
        );
        eprintln!("SKIPPED: dgram lab fragments needs root and the Linux build");
        return;
    }
    let n = |key: &str| {
        facts[key]
            .as_u64()
            .unwrap_or_else(|| panic!("{key}: {report}"))
    };
    assert_eq!(n("sent"), 200);
    assert_eq!(n("fragments_dropped"), n("marked"), "one in four: {report}");
    assert_eq!(n("marked"), 50, "{report}");
    assert_eq!(n("lost"), n("fragments_dropped"), "{report}");
    assert_eq!(n("sent"), n("received") + n("lost"), "{report}");
    assert_eq!(n("reassembled"), n("received"), "{report}");
    assert_eq!(
        n("fragments_arrived"),
        3 * n("sent") - n("fragments_dropped"),
        "{report}"
    );
    assert_eq!(n("small_lost"), 0, "{report}");
    assert_eq!(report["findings"][0]["verdict"], "true", "{report}");
    let left = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip runs");
    let prefix = format!("dgram-labfrag-{}-", lab.pid());
    assert!(
        !String::from_utf8_lossy(&left.stdout).contains(&prefix),
        "its namespaces are removed"
    );
}

/// A probe of kind 14 as PROTOCOL.md section 15.1 lays it out: header,
/// direction, token, size (big endian), zero padding up to `len`.
fn raw_probe(direction: u8, token: u8, size: u16, len: usize) -> Vec<u8> {
    let mut probe = vec![0u8; len];
    probe[..4].copy_from_slice(&[0xF5, 1, 14, direction]);
    probe[4..12].copy_from_slice(&[token; 8]);
    probe[12..14].copy_from_slice(&size.to_be_bytes());
    probe
}

/// On loopback, a listener answers a forward probe with 14 bytes naming
/// the length that arrived, and a reverse probe with exactly the size it
/// asked for; a reverse probe asking for more than it is long (an
/// amplifier's request) is shown malformed and never answered, nor is a
/// keyed (`--key-file`) or `--raw` listener's probe answered.
#[test]
fn listener_answers_probes_and_never_amplifies() {
    let peer = crate::util::Peer::bind();
    peer.socket
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let (mut listen, addr) = crate::util::listener(&[]);
    let quiet = |what: &str| {
        let mut buf = [0u8; 2048];
        if let Ok((n, _)) = peer.socket.recv_from(&mut buf) {
            panic!("{what} was answered with {n} bytes");
        }
    };
    peer.socket
        .send_to(&raw_probe(1, 7, 100, 100), addr)
        .unwrap();
    let answer = peer.recv();
    assert_eq!(answer.len(), 14);
    assert_eq!(&answer[..4], &[0xF5, 1, 15, 1]);
    assert_eq!(&answer[4..12], &[7; 8]);
    assert_eq!(u16::from_be_bytes([answer[12], answer[13]]), 100);

    peer.socket
        .send_to(&raw_probe(2, 8, 600, 1000), addr)
        .unwrap();
    if has("icmp_errors") {
        let answer = peer.recv();
        assert_eq!(answer.len(), 600, "the size asked for, no more");
        assert_eq!(&answer[..4], &[0xF5, 1, 15, 2]);
    } else {
        // The portable build cannot set don't-fragment: a fragmented
        // answer would measure nothing, so none is sent, and it says so.
        let error = listen.next("peer_error");
        assert!(
            error["error"].as_str().unwrap().contains("don't-fragment"),
            "{error}"
        );
        quiet("a reverse probe to the portable build");
    }

    peer.socket
        .send_to(&raw_probe(2, 9, 1000, 100), addr)
        .unwrap();
    assert_eq!(
        listen.next("malformed")["len"],
        100,
        "shown malformed: {}",
        listen.dump()
    );
    quiet("a reverse probe asking for 1000 bytes in 100");
    let summary = crate::util::stop(&mut listen);
    assert_eq!(summary["malformed"], 1, "{summary}");

    for extra in [
        &["--raw"][..],
        &["--key-file", crate::util::keygen("mtu").to_str().unwrap()],
    ] {
        let (mut listen, addr) = crate::util::listener(extra);
        peer.socket
            .send_to(&raw_probe(1, 7, 100, 100), addr)
            .unwrap();
        wait_for(
            "the probe to be seen",
            || listen.dump(),
            || (listen.stdout().lines().count() > 1).then_some(()),
        );
        quiet(&format!("a probe to listen {extra:?}"));
        listen.kill();
    }
}

/// A flood of probes from one source (300 at once) gets no more than the
/// listener's rate of answers (200 a second, bursts of 200), and the
/// listener says so once; every probe that reached it is shown.
#[test]
fn listener_answers_a_flood_at_its_rate() {
    let peer = crate::util::Peer::bind();
    peer.socket
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    // Room for the whole flood, so that the kernel drops none of it.
    let (mut listen, addr) = crate::util::listener(&["--rcvbuf", "4M"]);
    let flood: u64 = 300;
    for token in 0..flood {
        peer.socket
            .send_to(&raw_probe(1, token as u8, 64, 64), addr)
            .unwrap();
    }
    let mut answers = 0u64;
    let mut buf = [0u8; 64];
    while peer.socket.recv_from(&mut buf).is_ok() {
        answers += 1;
    }
    let summary = crate::util::stop(&mut listen);
    let received = summary["received"].as_u64().unwrap();
    let dropped = summary["dropped"].as_u64().unwrap();
    assert_eq!(received + dropped, flood, "all shown or counted: {summary}");
    assert_eq!(summary["sent"], answers, "{summary}");
    assert!(
        (200..=230).contains(&answers),
        "a burst of 200, then 200 a second: {answers} answers to {received} probes"
    );
    assert!(received > answers, "{summary}");
    assert_eq!(listen.events("peer_error").len(), 1, "{}", listen.dump());
}
