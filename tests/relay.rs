//! `chat --via --turn`: a chat that finds no direct path goes through a
//! TURN relay (coturn), end to end sealed. Everything runs in one network
//! namespace of its own on its loopback (so its ports are its own): the
//! rendezvous, coturn, and two chats at 127.0.0.2 and 127.0.0.3 whose
//! direct datagrams nftables drops, so the relay is the only way.
//! SKIPPED without root, `ip`, `nft` or `turnserver`; a failure then under
//! `CI=true`.

use std::process::Command;

use serde_json::Value;

use crate::netns::sh;
use crate::util::{Proc, dgram_path, have, temp_path, wait_for};

/// A namespace of its own, deleted (with whatever runs in it) on drop.
struct Ns(String);

impl Ns {
    fn new(tag: &str) -> Option<Ns> {
        let missing: Vec<&str> = ["ip", "nft", "turnserver"]
            .into_iter()
            .filter(|p| !have(p))
            .collect();
        let root = nix::unistd::geteuid().is_root();
        if !missing.is_empty() || !root {
            let why = if root {
                format!("missing {}", missing.join(", "))
            } else {
                "not root".to_string()
            };
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "relay tests cannot run: {why}"
            );
            eprintln!("SKIPPED: relay tests need root, ip, nft and turnserver: {why}");
            return None;
        }
        let ns = Ns(format!("dgram-relay-{tag}-{}", std::process::id()));
        sh(&["ip", "netns", "add", &ns.0]).unwrap();
        sh(&["ip", "-n", &ns.0, "link", "set", "lo", "up"]).unwrap();
        Some(ns)
    }

    fn run(&self, program: &str, args: &[&str]) -> Proc {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.0, program]).args(args);
        Proc::start(command)
    }

    /// A counter's packets and bytes in table `inet t`.
    fn counter(&self, name: &str) -> (u64, u64) {
        let out = Command::new("ip")
            .args([
                "netns", "exec", &self.0, "nft", "list", "counter", "inet", "t", name,
            ])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let number = |key: &str| -> u64 {
            text.split_whitespace()
                .skip_while(|w| *w != key)
                .nth(1)
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("no {key} in {text}"))
        };
        (number("packets"), number("bytes"))
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        if let Ok(out) = Command::new("ip").args(["netns", "pids", &self.0]).output() {
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = Command::new("kill").args(["-9", pid]).status();
            }
        }
        let _ = sh(&["ip", "netns", "del", &self.0]);
    }
}

/// The events named `name` in `proc`'s output so far.
fn first(proc: &Proc, name: &str) -> Value {
    proc.first_event(name)
}

/// Waits (with the harness's deadline) for an event named `name` that
/// `wanted` accepts, anywhere in what `proc` printed.
fn event(proc: &Proc, name: &str, wanted: impl Fn(&Value) -> bool) -> Value {
    wait_for(
        &format!("a {name} event"),
        || proc.dump(),
        || proc.events(name).into_iter().find(|e| wanted(e)),
    )
}

/// Two chats whose direct datagrams are dropped both ways meet at the
/// rendezvous; one has a TURN relay: after the 3 s a direct path is given,
/// both take the relayed path (each side says whose relay it is), open
/// the code's session with the same verify words, and deliver each
/// other's message through coturn. Counters prove the direct probes were
/// sent and dropped and that the chat's datagrams went through the relay.
/// Then the direct path opens (the drop rules go): the chat leaves the
/// relay for it (both sides say so, the other side moves after its path
/// check) and the next messages go directly. The relay's allocation is
/// given back at the end.
#[test]
fn a_chat_with_no_direct_path_is_relayed_through_coturn() {
    let Some(ns) = Ns::new("coturn") else {
        return;
    };
    let rules = temp_path(&format!("{}.nft", ns.0));
    std::fs::write(
        &rules,
        "table inet t {\n\
           counter direct_dropped {}\n\
           counter to_relay {}\n\
           chain block {\n\
             type filter hook input priority -1;\n\
             ip saddr 127.0.0.2 ip daddr 127.0.0.3 udp sport 40002 counter name direct_dropped drop\n\
             ip saddr 127.0.0.3 ip daddr 127.0.0.2 udp sport 40003 counter name direct_dropped drop\n\
           }\n\
           chain input {\n\
             type filter hook input priority 0;\n\
             ip saddr 127.0.0.3 ip daddr 127.0.0.1 udp sport 40003 udp dport >= 50000 counter name to_relay\n\
           }\n\
         }\n",
    )
    .unwrap();
    sh(&[
        "ip",
        "netns",
        "exec",
        &ns.0,
        "nft",
        "-f",
        rules.to_str().unwrap(),
    ])
    .unwrap();
    let log = temp_path(&format!("{}.turn.log", ns.0));
    let mut turn = ns.run(
        "turnserver",
        &[
            "-n",
            "--listening-ip",
            "127.0.0.1",
            "--relay-ip",
            "127.0.0.1",
            "--listening-port",
            "3478",
            "--min-port",
            "50000",
            "--max-port",
            "50100",
            "--realm",
            "dgram.test",
            "--user",
            "u:p",
            "--lt-cred-mech",
            "--no-tls",
            "--no-dtls",
            "--no-tcp",
            "--no-tcp-relay",
            "--no-cli",
            "--allow-loopback-peers",
            "--simple-log",
            "--log-file",
            log.to_str().unwrap(),
            "--verbose",
        ],
    );
    // Coturn is slow to start under a loaded suite: the chat's allocation
    // waits 3 s, so the test waits for coturn's socket first (its
    // /proc/PID/net/udp is the namespace's).
    let udp = format!("/proc/{}/net/udp", turn.pid());
    wait_for(
        "coturn to bind 127.0.0.1:3478 in the namespace",
        || turn.dump(),
        || {
            std::fs::read_to_string(&udp)
                .ok()?
                .lines()
                .any(|l| l.split_whitespace().nth(1) == Some("0100007F:0D96"))
                .then_some(())
        },
    );
    let dgram = dgram_path();
    let mut rendezvous = ns.run(dgram, &["rendezvous", "127.0.0.1:3479", "--json"]);
    rendezvous.next_event();
    let code = "9-clockwork-crossover-ragtime";
    let chat = |bind: &str, extra: &[&str]| {
        let mut args = vec![
            "chat",
            "--json",
            "--bind",
            bind,
            "--via",
            "127.0.0.1:3479",
            "--code",
            code,
            "--linger",
            "1500",
        ];
        args.extend_from_slice(extra);
        ns.run(dgram, &args)
    };
    // Coturn answers once it listens; the chat waits 3 s for its
    // allocation, so a slow start is not a failure.
    let pcap = temp_path(&format!("{}.a.pcap", ns.0));
    let mut a = chat(
        "127.0.0.2:40002",
        &[
            "--turn",
            "u:p@127.0.0.1:3478",
            "--pcap",
            pcap.to_str().unwrap(),
        ],
    );
    let relay = a.next("relay");
    let relayed = relay["relayed"]
        .as_str()
        .unwrap_or_else(|| panic!("no relay: {relay}\n{}", a.dump()))
        .to_string();
    let mut b = chat("127.0.0.3:40003", &[]);

    let found_a = a.next("path_found");
    let found_b = b.next("path_found");
    assert_eq!(found_a["path"], "relayed", "{}", a.dump());
    assert_eq!(found_b["path"], "relayed", "{}", b.dump());
    assert_eq!(found_a["own_relay"], true);
    assert_eq!(found_b["own_relay"], false);
    assert_eq!(found_a["peer"], "127.0.0.3:40003");
    assert_eq!(found_b["peer"], relayed.as_str());
    assert!(
        found_b["took_ms"].as_f64().unwrap() >= 3000.0,
        "a relay waits for a direct path first"
    );

    a.write_line("through the relay from a");
    b.write_line("through the relay from b");
    let open_a = a.next("session_opened");
    let open_b = b.next("session_opened");
    assert_eq!(open_a["verify"], open_b["verify"]);
    let got_b = b.next("message");
    let got_a = a.next("message");
    assert_eq!(got_b["text"], "through the relay from a");
    assert_eq!(got_a["text"], "through the relay from b");
    let (dropped, _) = ns.counter("direct_dropped");
    let (relayed_in, relayed_bytes) = ns.counter("to_relay");
    assert!(dropped > 0, "the direct probes were sent and dropped");
    assert!(
        relayed_in >= 3,
        "b's probes, handshake and message went to the relay: {relayed_in}"
    );
    assert!(relayed_bytes > 0);

    // The direct path opens: within the watch's period both sides find it,
    // b follows a to its own address (after the session's path check),
    // and what is said next goes directly, not through the relay.
    sh(&[
        "ip", "netns", "exec", &ns.0, "nft", "flush", "chain", "inet", "t", "block",
    ])
    .unwrap();
    // Events of the two sides interleave in any order (a receipt may come
    // before the other side's message): each is waited for wherever it is.
    let direct_a = event(&a, "path_direct", |_| true);
    let direct_b = event(&b, "path_direct", |_| true);
    assert_eq!(direct_a["to"], "127.0.0.3:40003");
    assert_eq!(direct_b["to"], "127.0.0.2:40002");
    let moved = event(&b, "peer_moved", |_| true);
    assert_eq!(moved["from"], relayed.as_str());
    assert_eq!(moved["to"], "127.0.0.2:40002");
    let (before, _) = ns.counter("to_relay");
    a.write_line("directly from a");
    b.write_line("directly from b");
    event(&b, "message", |m| m["text"] == "directly from a");
    event(&a, "message", |m| m["text"] == "directly from b");
    for side in [&a, &b] {
        let receipt = event(side, "receipt", |r| r["seq"] == 2);
        assert_eq!(receipt["status"], "delivered", "{}", side.dump());
    }
    let (after, _) = ns.counter("to_relay");
    assert_eq!(
        after, before,
        "after the move nothing of b's went through the relay"
    );

    a.close_stdin();
    b.close_stdin();
    assert!(a.finish().success(), "{}", a.dump());
    assert!(b.finish().success(), "{}", b.dump());
    for side in [&a, &b] {
        let summary = first(side, "summary");
        assert_eq!(summary["delivered"], 2, "{summary}");
        assert_eq!(summary["failed"], 0, "{summary}");
    }
    capture_adds_up(&a, &pcap, 40002);
    // The allocation was given back (a Refresh with LIFETIME 0).
    let turn_log = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        turn_log.contains("lifetime=0") || turn_log.contains("deleted"),
        "the allocation was not given back:\n{turn_log}"
    );
    turn.kill();
    rendezvous.kill();
}

/// The relayed side's `--pcap` file against its events: every datagram
/// from its port is one of the search's (`path_traffic`) or has a `sent`
/// event, with the length the wire saw (`relay.len` for what went wrapped
/// through the relay, the TURN client's refreshes as `control` events);
/// every datagram to it is the search's or in the summary's `received`
/// (whose bytes count what came through the relay unwrapped).
fn capture_adds_up(side: &Proc, pcap: &std::path::Path, port: u16) {
    let output = Command::new("tshark")
        .arg("-r")
        .arg(pcap)
        .args(["-T", "fields", "-e", "udp.srcport", "-e", "udp.dstport"])
        .args(["-e", "udp.length"])
        .output()
        .expect("tshark runs");
    assert!(output.status.success(), "tshark: {output:?}");
    let rows: Vec<(u16, usize)> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            let length: usize = fields[2].parse().unwrap();
            (fields[0].parse().unwrap(), length - 8)
        })
        .collect();
    let sum = |lens: &[usize]| (lens.len(), lens.iter().sum::<usize>());
    let out: Vec<usize> = rows.iter().filter(|r| r.0 == port).map(|r| r.1).collect();
    let inbound: Vec<usize> = rows.iter().filter(|r| r.0 != port).map(|r| r.1).collect();
    let search = first(side, "path_traffic");
    let summary = first(side, "summary");
    let n = |v: &Value, f: &str| v[f].as_u64().unwrap() as usize;
    let sent: Vec<usize> = side
        .events("sent")
        .iter()
        .map(|e| n(e.get("relay").unwrap_or(e), "len"))
        .collect();
    let (count, bytes) = sum(&sent);
    assert_eq!(
        sum(&out),
        (n(&search, "sent") + count, n(&search, "sent_bytes") + bytes),
        "datagrams sent in the capture vs path_traffic and the sent events\n{}",
        side.dump()
    );
    // What came through the relay is counted in the summary unwrapped,
    // as the chat datagram it carried: its record is longer by the TURN
    // header (4 bytes of ChannelData, or a Data indication's attributes).
    let (count, bytes) = sum(&inbound);
    let from_relay = rows.iter().filter(|r| r.0 == 3478).count();
    let counted = n(&search, "received_bytes") + n(&summary, "bytes");
    assert_eq!(
        count,
        n(&search, "received") + n(&summary, "received"),
        "datagrams received in the capture vs path_traffic and the summary\n{}",
        side.dump()
    );
    assert!(
        bytes >= counted && bytes - counted <= 36 * from_relay,
        "bytes received in the capture ({bytes}) vs path_traffic and the summary ({counted}), \
         {from_relay} datagrams from the relay\n{}",
        side.dump()
    );
}
