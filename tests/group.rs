//! Group chat on a LAN of our own: hosts in network namespaces on a bridge
//! (see [`crate::netns`]), `dgram chat --group` (multicast) and
//! `--broadcast` members, piped with `--json`.

use std::collections::BTreeSet;
use std::time::Duration;

use nix::sys::signal::Signal;
use serde_json::Value;

use crate::netns::Lan;
use crate::util::{Proc, Pty, dgram_path, wait_for};

/// The multicast group of these tests (each LAN is a world of its own).
const GROUP: &str = "239.1.2.3:5000";

/// Hellos every 300 ms: members meet at once, and one that vanishes is
/// taken to have left after about a second.
const HELLO_MS: &str = "300";

/// A member `name` on host `host`, its input a pipe left open, with the
/// `group` option and `extra` options (hellos every [`HELLO_MS`] unless
/// `extra` says otherwise).
fn member(lan: &Lan, host: usize, name: &str, group: &[&str], extra: &[&str]) -> Proc {
    let mut args = vec![
        "chat",
        "--iface",
        "eth0",
        "--name",
        name,
        "--json",
        "--no-history",
        "--linger",
        "3000",
    ];
    if !extra.contains(&"--hello") {
        args.extend_from_slice(&["--hello", HELLO_MS]);
    }
    args.extend_from_slice(group);
    args.extend_from_slice(extra);
    let proc = lan.dgram(host, &args);
    proc.wait_stdout_contains("\"event\":\"joined\"");
    proc
}

/// The members `proc` has seen join, by name, minus those that left.
fn members_seen(proc: &Proc) -> BTreeSet<String> {
    let mut members = BTreeSet::new();
    for event in proc.events("member") {
        let name = event["name"].as_str().unwrap().to_string();
        match event["change"].as_str() {
            Some("joined" | "restarted") => members.insert(name),
            _ => members.remove(&name),
        };
    }
    members
}

/// Waits until each member has seen the others.
fn wait_for_everyone(procs: &[&Proc], names: &[&str]) {
    for (proc, me) in procs.iter().zip(names) {
        let others: BTreeSet<String> = names
            .iter()
            .filter(|n| *n != me)
            .map(|n| n.to_string())
            .collect();
        wait_for(
            &format!("{me} to see {others:?}"),
            || proc.dump(),
            || (members_seen(proc) == others).then_some(()),
        );
    }
}

/// The messages `proc` showed (first copies): (sender name, text).
fn messages(proc: &Proc) -> Vec<(String, String)> {
    proc.events("message")
        .iter()
        .filter(|m| m["duplicate"] != true)
        .map(|m| {
            (
                m["name"].as_str().unwrap().to_string(),
                m["text"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// The address `proc` has seen member `name` at.
fn member_addr(proc: &Proc, name: &str) -> String {
    proc.events("member")
        .into_iter()
        .find(|m| m["name"] == name)
        .and_then(|m| m["member"].as_str().map(str::to_string))
        .unwrap_or_else(|| panic!("no member {name}\n{}", proc.dump()))
}

/// Waits until `proc` shows member `name` changing as `change` says.
fn wait_for_change(proc: &Proc, name: &str, change: &str) -> Value {
    wait_for(
        &format!("{name} {change}"),
        || proc.dump(),
        || {
            proc.events("member")
                .into_iter()
                .find(|m| m["name"] == name && m["change"] == change)
        },
    )
}

/// Names in a group receipt's list (`delivered` or `missing`).
fn named(receipt: &Value, list: &str) -> BTreeSet<String> {
    receipt[list]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap().to_string())
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| n.to_string()).collect()
}

/// Three members, each on its own host, each sends one line: every
/// message arrives exactly once at the two others, each group receipt
/// names both others and nobody missing, nobody shows its own message
/// looped back, and every member exits 0.
fn three_hosts_talk(option: &str) {
    three_hosts_talk_with(option, &[]);
}

/// [`three_hosts_talk`], each member started with `extra` options too.
fn three_hosts_talk_with(option: &str, extra: &[&str]) {
    let Some(lan) = Lan::or_skip(3) else {
        return;
    };
    let (option, addr) = match option {
        "--broadcast" => (option, format!("{}:5000", lan.broadcast())),
        "--group6" => ("--group", "[ff02::1:2]:5000".to_string()),
        _ => (option, GROUP.to_string()),
    };
    let group = [option, addr.as_str()];
    let group = &group[..];
    let names = ["ann", "bob", "cat"];
    let mut procs: Vec<Proc> = names
        .iter()
        .enumerate()
        .map(|(host, name)| member(&lan, host, name, group, extra))
        .collect();
    wait_for_everyone(&procs.iter().collect::<Vec<_>>(), &names);
    for (proc, name) in procs.iter_mut().zip(names) {
        proc.write_line(&format!("hello from {name}"));
        proc.close_stdin();
    }
    for proc in &mut procs {
        proc.finish_within(Duration::from_secs(30));
    }
    for (proc, me) in procs.iter().zip(names) {
        let context = || procs.iter().map(Proc::dump).collect::<Vec<_>>().join("\n");
        assert!(proc.finish_ok(), "{me} failed: {}", context());
        let mut got = messages(proc);
        got.sort();
        let expected: Vec<(String, String)> = names
            .iter()
            .filter(|n| **n != me)
            .map(|n| (n.to_string(), format!("hello from {n}")))
            .collect();
        assert_eq!(got, expected, "{me}: {}", context());
        let receipts = proc.events("group_receipt");
        assert_eq!(receipts.len(), 1, "{me}: {}", context());
        let others: Vec<&str> = names.iter().copied().filter(|n| *n != me).collect();
        assert_eq!(named(&receipts[0], "delivered"), set(&others), "{me}");
        assert_eq!(named(&receipts[0], "missing"), set(&[]), "{me}");
        let summary = proc.first_event("summary");
        assert_eq!(summary["delivered"], 1, "{me}: {summary}");
        assert_eq!(summary["failed"], 0, "{me}: {summary}");
        assert!(summary.get("rejected").is_none(), "{me}: {summary}");
    }
}

/// Multicast: a three-host room.
#[test]
fn three_hosts_talk_over_multicast() {
    three_hosts_talk("--group");
}

/// IPv6 multicast: the same room over a link-local group, members
/// talking from their link-local addresses.
#[test]
fn three_hosts_talk_over_ipv6_multicast() {
    three_hosts_talk("--group6");
}

/// A keyed room (`--key-file`): hellos, messages, receipts and byes all
/// sealed; the same exchange, and nothing refused.
#[test]
fn three_hosts_talk_sealed() {
    let key = crate::util::temp_path("group-key");
    let proc = crate::util::run(&["keygen", key.to_str().unwrap()]);
    assert!(proc.finish_ok(), "{}", proc.dump());
    three_hosts_talk_with("--group", &["--key-file", key.to_str().unwrap()]);
}

/// Broadcast: the same room over the LAN's broadcast address.
#[test]
fn three_hosts_talk_over_broadcast() {
    three_hosts_talk("--broadcast");
}

/// One member vanishes (SIGKILL: no bye). The next message ends
/// delivered to one of two, naming the one missing: its part fails once
/// it has been silent for 3.5 hellos (or out of tries, whichever comes
/// first), and it is shown leaving for silence. Another member that
/// leaves properly is shown leaving with its bye.
#[test]
fn a_vanished_member_is_named_missing() {
    let Some(lan) = Lan::or_skip(3) else {
        return;
    };
    let group = ["--group", GROUP];
    let quick = ["--retries", "2", "--rto-min", "100"];
    let mut ann = member(&lan, 0, "ann", &group, &quick);
    let mut bob = member(&lan, 1, "bob", &group, &[]);
    let cat = member(&lan, 2, "cat", &group, &[]);
    wait_for_everyone(&[&ann, &bob, &cat], &["ann", "bob", "cat"]);
    cat.signal(Signal::SIGKILL);
    ann.write_line("who is still here?");
    let receipt = ann.next("group_receipt");
    assert_eq!(
        named(&receipt, "delivered"),
        set(&["bob"]),
        "{}",
        ann.dump()
    );
    assert_eq!(named(&receipt, "missing"), set(&["cat"]), "{}", ann.dump());
    // cat's part failed.
    let failed: Vec<Value> = ann
        .events("receipt")
        .into_iter()
        .filter(|r| r["status"] == "failed")
        .collect();
    assert_eq!(failed.len(), 1, "{}", ann.dump());
    assert_eq!(failed[0]["name"], "cat");
    assert!((1..=3).contains(&failed[0]["tries"].as_u64().unwrap()));
    // Silent for 3.5 hellos: gone.
    let left = wait_for_change(&ann, "cat", "silent");
    assert!(left["silent_ms"].as_f64().unwrap() >= 1050.0, "{left}");
    // bob leaves properly: a bye.
    bob.close_stdin();
    bob.finish();
    wait_for_change(&ann, "bob", "left");
    ann.close_stdin();
    ann.finish();
    // A piped chat whose message did not reach every member fails.
    assert_eq!(ann.code(), Some(1), "{}", ann.dump());
    assert!(
        ann.stderr().contains("1 of 1 message not delivered"),
        "{}",
        ann.dump()
    );
}

/// Two members on one host share the group's port; both hear the member
/// on the other host, and each gets its own receipts (they go to its own
/// socket, not the shared one).
#[test]
fn two_members_on_one_host_share_the_port() {
    let Some(lan) = Lan::or_skip(2) else {
        return;
    };
    let group = ["--group", GROUP];
    let names = ["ann", "amy", "bob"];
    let mut procs = vec![
        member(&lan, 0, "ann", &group, &[]),
        member(&lan, 0, "amy", &group, &[]),
        member(&lan, 1, "bob", &group, &[]),
    ];
    wait_for_everyone(&procs.iter().collect::<Vec<_>>(), &names);
    for (proc, name) in procs.iter_mut().zip(names) {
        proc.write_line(&format!("hello from {name}"));
        proc.close_stdin();
    }
    for proc in &mut procs {
        proc.finish_within(Duration::from_secs(30));
    }
    for (proc, me) in procs.iter().zip(names) {
        assert!(proc.finish_ok(), "{me}: {}", proc.dump());
        let senders: BTreeSet<String> = messages(proc).into_iter().map(|(n, _)| n).collect();
        let others: Vec<&str> = names.iter().copied().filter(|n| *n != me).collect();
        assert_eq!(senders, set(&others), "{me}: {}", proc.dump());
        let receipt = proc.first_event("group_receipt");
        assert_eq!(named(&receipt, "delivered"), set(&others), "{me}");
    }
}

/// A human chat shows the member changes and the group receipt's line:
/// `✓ 2/2 (bob, cat)` once everyone acknowledged.
#[test]
fn people_see_who_got_it() {
    let Some(lan) = Lan::or_skip(3) else {
        return;
    };
    let group = ["--group", GROUP];
    let mut bob = member(&lan, 1, "bob", &group, &[]);
    let mut cat = member(&lan, 2, "cat", &group, &[]);
    let mut ann = lan.dgram(
        0,
        &[
            "chat",
            "--group",
            GROUP,
            "--iface",
            "eth0",
            "--name",
            "ann",
            "--no-history",
            "--hello",
            HELLO_MS,
        ],
    );
    ann.wait_stdout_contains("member of 239.1.2.3:5000 (multicast) on eth0 (10.77.0.1), TTL 1");
    ann.wait_stdout_contains("++ bob (10.77.0.2:");
    ann.wait_stdout_contains("++ cat (10.77.0.3:");
    ann.write_line("hi all");
    ann.close_stdin();
    ann.finish();
    assert!(ann.finish_ok(), "{}", ann.dump());
    let out = ann.stdout();
    assert!(
        out.contains("-> 239.1.2.3:5000  #1  \"hi all\"  ✓ 2/2 (bob, cat)")
            || out.contains("-> 239.1.2.3:5000  #1  \"hi all\"  ✓ 2/2 (cat, bob)"),
        "{}",
        ann.dump()
    );
    for other in [&mut bob, &mut cat] {
        wait_for_change(other, "ann", "left");
        other.kill();
    }
}

/// A Python multicast member (a plain program: no envelopes) on the third
/// host: what it sends to the group is shown by both dgram members with
/// its address; a message typed by a dgram member reaches it as the plain
/// text typed, directly, besides the envelope on the group.
#[test]
fn a_plain_python_member_exchanges_text() {
    let Some(lan) = Lan::or_skip(3) else {
        return;
    };
    let group = ["--group", GROUP];
    let mut ann = member(&lan, 0, "ann", &group, &[]);
    let mut bob = member(&lan, 1, "bob", &group, &[]);
    let script = r#"
import json, socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("", 5000))
mreq = struct.pack("4s4s", socket.inet_aton("239.1.2.3"), socket.inet_aton("10.77.0.3"))
s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("10.77.0.3"))
print("ready", flush=True)
sys.stdin.readline()
s.sendto(b"plain hello", ("239.1.2.3", 5000))
while True:
    data, peer = s.recvfrom(65535)
    print(json.dumps({"from": "%s:%d" % peer, "hex": data.hex()}), flush=True)
"#;
    let mut python = lan.spawn(2, "python3", &["-c", script]);
    python.wait_stdout_contains("ready");
    python.write_line("go");
    for proc in [&ann, &bob] {
        let datagram = wait_for(
            "the Python member's datagram",
            || proc.dump(),
            || proc.events("datagram").into_iter().next(),
        );
        assert_eq!(datagram["from"], "10.77.0.3:5000", "{}", proc.dump());
        assert_eq!(datagram["text"], "plain hello");
    }
    ann.wait_stdout_contains("\"speaks\":\"plain\"");
    ann.write_line("hi python");
    let plain = hex(b"hi python");
    wait_for(
        "the text at the Python member",
        || python.dump(),
        || {
            python
                .stdout()
                .lines()
                .find(|line| {
                    line.contains(&format!("\"hex\": \"{plain}\""))
                        && line.contains("\"from\": \"10.77.0.1:")
                })
                .map(str::to_string)
        },
    );
    // bob got the message in its envelope, as ever.
    wait_for(
        "bob to show ann's message",
        || bob.dump(),
        || {
            messages(&bob)
                .into_iter()
                .find(|(n, t)| n == "ann" && t == "hi python")
        },
    );
    for proc in [&mut ann, &mut bob, &mut python] {
        proc.kill();
    }
}

/// A plain member (a Python script) that sent to the group and then left:
/// the copy of the next message sent to it directly is refused (ICMP port
/// unreachable), and it is the last: the messages after it send it
/// nothing, so there is one refusal, not one per message.
#[test]
fn a_plain_member_that_left_gets_no_more_copies() {
    if !crate::util::has("icmp_errors") {
        // The portable build hears no ICMP errors: no refusal to act on.
        eprintln!("SKIPPED: this build does not report ICMP errors");
        return;
    }
    let Some(lan) = Lan::or_skip(2) else {
        return;
    };
    let mut ann = member(&lan, 0, "ann", &["--group", GROUP], &[]);
    let script = r#"
import socket, struct
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("", 5000))
mreq = struct.pack("4s4s", socket.inet_aton("239.1.2.3"), socket.inet_aton("10.77.0.2"))
s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("10.77.0.2"))
s.sendto(b"plain hello, leaving", ("239.1.2.3", 5000))
"#;
    let mut python = lan.spawn(1, "python3", &["-c", script]);
    ann.wait_stdout_contains("\"speaks\":\"plain\"");
    assert!(python.finish().success(), "{}", python.dump());
    let gone = "10.77.0.2:5000";
    ann.write_line("one");
    wait_for(
        "the refusal of the copy to the plain member",
        || ann.dump(),
        || {
            ann.events("unreachable")
                .into_iter()
                .find(|e| e["peer"] == gone)
        },
    );
    // The refusal has reached the protocol once the receiver thread has
    // sent a hello after reporting it (both happen on that thread, the
    // refusal first).
    wait_for(
        "a hello after the refusal",
        || ann.dump(),
        || {
            let out = ann.stdout();
            let refused = out.find("\"event\":\"unreachable\"")?;
            out[refused..].contains("\"kind\":\"hello\"").then_some(())
        },
    );
    ann.write_line("two");
    ann.write_line("three");
    ann.close_stdin();
    ann.finish();
    let copies: Vec<Value> = ann
        .events("sent")
        .into_iter()
        .filter(|e| e["to"] == gone)
        .collect();
    assert_eq!(copies.len(), 1, "{}", ann.dump());
    assert_eq!(copies[0]["text"], "one");
    let refusals = ann
        .events("unreachable")
        .into_iter()
        .filter(|e| e["peer"] == gone)
        .count();
    assert_eq!(refusals, 1, "{}", ann.dump());
    let sent_to_group = ann
        .events("sent")
        .into_iter()
        .filter(|e| e["kind"] == "message" && e["to"] == GROUP)
        .count();
    assert_eq!(sent_to_group, 3, "every message went to the group");
}

/// An IPv6 room over a link-local group, seen by a person: members are
/// shown with their interface's name as the scope (`[fe80::…%eth0]:PORT`),
/// as `ip` writes it and `--peer` takes it, never with its number.
#[test]
fn ipv6_members_are_shown_with_interface_names() {
    let Some(lan) = Lan::or_skip(2) else {
        return;
    };
    let group = ["--group", "[ff02::1:2]:5000"];
    let mut bob = member(&lan, 1, "bob", &group, &[]);
    let mut ann = lan.dgram(
        0,
        &[
            "chat",
            "--group",
            "[ff02::1:2]:5000",
            "--iface",
            "eth0",
            "--name",
            "ann",
            "--no-history",
            "--hello",
            HELLO_MS,
        ],
    );
    ann.wait_stdout_contains("++ bob ([fe80::");
    bob.write_line("hello over IPv6");
    ann.wait_stdout_contains("#1  \"hello over IPv6\"");
    ann.close_stdin();
    ann.finish();
    let out = ann.stdout();
    let joined = out
        .lines()
        .find(|l| l.starts_with("++ bob ("))
        .unwrap_or_else(|| panic!("{}", ann.dump()));
    assert!(joined.contains("%eth0]:"), "{}", ann.dump());
    let message = out
        .lines()
        .find(|l| l.contains("\"hello over IPv6\""))
        .unwrap();
    assert!(message.contains("bob ([fe80::"), "{}", ann.dump());
    assert!(message.contains("%eth0]:"), "{}", ann.dump());
    let numeric = out
        .match_indices('%')
        .any(|(i, _)| out[i + 1..].starts_with(|c: char| c.is_ascii_digit()));
    assert!(!numeric, "a numeric scope: {}", ann.dump());
    bob.kill();
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `dgram listen --group` watches a room without joining it as a member:
/// it shows the messages and hellos, and the members never count it (no
/// hello, no receipt from it).
#[test]
fn listen_watches_a_group() {
    let Some(lan) = Lan::or_skip(3) else {
        return;
    };
    let group = ["--group", GROUP];
    let mut watcher = lan.dgram(
        2,
        &["listen", "--group", GROUP, "--iface", "eth0", "--json"],
    );
    watcher.wait_stdout_contains("\"event\":\"joined\"");
    let mut ann = member(&lan, 0, "ann", &group, &[]);
    let mut bob = member(&lan, 1, "bob", &group, &[]);
    wait_for_everyone(&[&ann, &bob], &["ann", "bob"]);
    ann.write_line("watched");
    ann.close_stdin();
    ann.finish();
    assert!(ann.finish_ok(), "{}", ann.dump());
    let receipt = ann.first_event("group_receipt");
    assert_eq!(
        named(&receipt, "delivered"),
        set(&["bob"]),
        "{}",
        ann.dump()
    );
    let message = wait_for(
        "the watcher to show ann's message",
        || watcher.dump(),
        || watcher.events("message").into_iter().next(),
    );
    assert_eq!(message["text"], "watched");
    assert_eq!(message["name"], "ann");
    assert!(
        !watcher.events("presence").is_empty(),
        "hellos are shown: {}",
        watcher.dump()
    );
    watcher.signal(Signal::SIGTERM);
    watcher.finish();
    assert!(
        watcher.events("sent").is_empty(),
        "a watcher sends nothing: {}",
        watcher.dump()
    );
    bob.kill();
}

/// At the prompt, `/members` lists the others with their addresses, and
/// `/why` shows the interface, TTL, loopback, the kernel's membership
/// table and the route.
#[test]
fn members_and_why_at_the_prompt() {
    let Some(lan) = Lan::or_skip(2) else {
        return;
    };
    let group = ["--group", GROUP];
    let mut bob = member(&lan, 1, "bob", &group, &[]);
    let command = lan.command(
        0,
        dgram_path(),
        &[
            "chat",
            "--group",
            GROUP,
            "--iface",
            "eth0",
            "--name",
            "ann",
            "--no-history",
            "--hello",
            HELLO_MS,
        ],
    );
    let mut ann = Pty::start(command);
    ann.expect("++ bob (10.77.0.2:");
    ann.type_line("/members");
    ann.expect("1 member of 239.1.2.3:5000 heard (besides you)");
    ann.expect("bob (10.77.0.2:");
    ann.expect("last heard");
    ann.type_line("/why");
    ann.expect("interface: eth0 (10.77.0.1) (chosen with --iface)");
    ann.expect("TTL 1: the group stays on this LAN");
    ann.expect("loopback on");
    if cfg!(feature = "portable") {
        ann.expect("membership: cannot be read on this platform");
    } else {
        ann.expect("membership: joined on eth0 (/proc/net/igmp)");
        ann.expect("route to 239.1.2.3: none in the table; --iface sends out of it anyway");
    }
    ann.expect("members heard: 1");
    ann.type_line("/quit");
    assert_eq!(ann.finish(), Some(0));
    bob.kill();
}

/// Bad group options are refused before anything is opened, each with one
/// line that says what to do (exit status 2).
#[test]
fn bad_group_options_are_usage_errors() {
    let cases: [(&[&str], &str); 9] = [
        (&["--group", "10.0.0.1:5000"], "is not a multicast address"),
        (
            &["--group", "239.1.2.3:5000", "--iface", "nosuch0"],
            "there is no interface nosuch0 here",
        ),
        (
            &["--group", "239.1.2.3:5000", "--ttl", "0"],
            "--ttl 0 is out of range",
        ),
        (
            &["--group", "239.1.2.3:5000", "--ttl", "256"],
            "--ttl 256 is out of range",
        ),
        (
            &["--group", "239.1.2.3:5000", "--peer", "127.0.0.1:9"],
            "a group chat talks to every member; leave out --peer",
        ),
        (
            &["--group", "[ff02::1:2]:5000"],
            "an IPv6 group needs --iface",
        ),
        (&["--iface", "lo"], "give --group or --broadcast too"),
        (
            &["--broadcast", "127.0.0.1:5000", "--iface", "lo"],
            "lo has no IPv4 broadcast address",
        ),
        (
            &["--group", "[ff02::1:2]:5000", "--iface", "127.0.0.1"],
            "are of different families",
        ),
    ];
    for (args, words) in cases {
        let mut all = vec!["chat", "--no-history"];
        all.extend_from_slice(args);
        let mut proc = Proc::spawn(dgram_path(), &all);
        proc.finish();
        assert_eq!(proc.code(), Some(2), "{args:?}: {}", proc.dump());
        let stderr = proc.stderr();
        assert!(stderr.contains(words), "{args:?}: {}", proc.dump());
        assert_eq!(
            stderr.trim().lines().count(),
            1,
            "{args:?}: {}",
            proc.dump()
        );
    }
    // A watcher sends nothing, so it cannot echo.
    let mut proc = Proc::spawn(
        dgram_path(),
        &["listen", "--group", GROUP, "--iface", "lo", "--echo"],
    );
    proc.finish();
    assert_eq!(proc.code(), Some(2), "{}", proc.dump());
    assert!(
        proc.stderr().contains("a watcher sends nothing"),
        "{}",
        proc.dump()
    );
}

/// The link between ann and cat loses 20% each way (nftables on each
/// one's input, for datagrams from the other only). ann sends 40 messages
/// to the group: retransmissions reach cat, every message delivered to cat was
/// shown by cat exactly once, and the counts agree on both sides:
/// ann's per-member row for cat says what its receipts and
/// retransmission events say, cat's row for ann says what its message
/// events say, and every datagram ann sent towards cat (to the group or
/// to cat) either reached cat or was dropped by nftables.
#[test]
fn retransmissions_reach_a_lossy_member() {
    const MESSAGES: usize = 40;
    let Some(lan) = Lan::or_skip(3) else {
        return;
    };
    lan.drop_arriving(
        2,
        &format!("ip saddr {} numgen random mod 100 < 20", lan.addr(0)),
    )
    .expect("nftables rule");
    // And 20% of what cat sends to ann (its receipts): the link is lossy
    // both ways.
    lan.drop_arriving(
        0,
        &format!("ip saddr {} numgen random mod 100 < 20", lan.addr(2)),
    )
    .expect("nftables rule");
    let group = ["--group", GROUP];
    let quick = ["--rto-min", "100", "--hello", "1000"];
    // cat first, so that every datagram ann sends finds cat's sockets
    // there (and ann leaves first, below).
    let mut cat = member(&lan, 2, "cat", &group, &quick);
    let mut bob = member(&lan, 1, "bob", &group, &quick);
    let mut ann = member(&lan, 0, "ann", &group, &quick);
    wait_for_everyone(&[&ann, &bob, &cat], &["ann", "bob", "cat"]);
    let lines: String = (1..=MESSAGES).map(|i| format!("message {i}\n")).collect();
    ann.write_bytes(lines.as_bytes());
    ann.close_stdin();
    ann.finish_within(Duration::from_secs(60));
    for proc in [&mut bob, &mut cat] {
        proc.close_stdin();
        proc.finish_within(Duration::from_secs(30));
    }
    let context = || format!("{}\n{}\n{}", ann.dump(), bob.dump(), cat.dump());
    let cat_addr = member_addr(&ann, "cat");
    let ann_addr = ann.first_event("listening")["local"]
        .as_str()
        .unwrap()
        .to_string();
    // ann's side: one group receipt per message.
    let receipts = ann.events("group_receipt");
    assert_eq!(receipts.len(), MESSAGES, "{}", context());
    let to_cat: Vec<Value> = ann
        .events("receipt")
        .into_iter()
        .filter(|r| r["to"] == cat_addr.as_str())
        .collect();
    let delivered_to_cat: BTreeSet<u64> = to_cat
        .iter()
        .filter(|r| r["status"] == "delivered")
        .map(|r| r["seq"].as_u64().unwrap())
        .collect();
    let retries_to_cat = ann
        .events("sent")
        .iter()
        .filter(|s| s["to"] == cat_addr.as_str() && s["kind"] == "message")
        .count() as u64;
    assert!(
        retries_to_cat > 0,
        "no retransmission to cat: {}",
        context()
    );
    let summary = ann.first_event("summary");
    let row = |summary: &Value, peer: &str| -> Value {
        summary["peers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["peer"] == peer)
            .cloned()
            .unwrap_or_else(|| panic!("no row for {peer} in {summary}"))
    };
    let cat_row = row(&summary, &cat_addr);
    assert_eq!(cat_row["messages_sent"], MESSAGES as u64, "{cat_row}");
    assert_eq!(cat_row["delivered"], delivered_to_cat.len() as u64);
    assert_eq!(
        cat_row["delivered"].as_u64().unwrap() + cat_row["failed"].as_u64().unwrap(),
        MESSAGES as u64
    );
    assert_eq!(cat_row["retransmissions"], retries_to_cat);
    // bob's link loses nothing: no retransmission to bob.
    let bob_addr = member_addr(&ann, "bob");
    let bob_row = row(&summary, &bob_addr);
    assert_eq!(bob_row["delivered"], MESSAGES as u64, "{bob_row}");
    assert_eq!(bob_row["retransmissions"], 0, "{bob_row}");
    // cat's side: each delivered message shown once.
    let shown: Vec<u64> = cat
        .events("message")
        .iter()
        .filter(|m| m["duplicate"] != true)
        .map(|m| m["seq"].as_u64().unwrap())
        .collect();
    let shown_set: BTreeSet<u64> = shown.iter().copied().collect();
    assert_eq!(shown.len(), shown_set.len(), "shown twice: {}", context());
    assert!(delivered_to_cat.is_subset(&shown_set), "{}", context());
    let cat_summary = cat.first_event("summary");
    let ann_row = row(&cat_summary, &ann_addr);
    assert_eq!(ann_row["messages"], shown.len() as u64, "{ann_row}");
    let copies = cat.events("message").len() as u64;
    assert_eq!(
        ann_row["duplicates"].as_u64().unwrap(),
        copies - shown.len() as u64
    );
    // Every datagram ann sent towards cat reached cat or was dropped.
    let towards_cat = ann
        .events("sent")
        .iter()
        .filter(|s| s["to"] == GROUP || s["to"] == cat_addr.as_str())
        .count() as u64;
    let heard_from_ann = copies
        + cat
            .events("presence")
            .iter()
            .filter(|p| p["from"] == ann_addr.as_str())
            .count() as u64;
    let dropped = lan.dropped(2);
    assert_eq!(
        towards_cat,
        heard_from_ann + dropped,
        "sent towards cat = heard by cat + dropped by nftables: {}",
        context()
    );
    eprintln!(
        "ann sent {MESSAGES} to the group; to cat: delivered {}, failed {}, retransmissions {retries_to_cat}; cat showed {}, duplicates {}; datagrams towards cat {towards_cat} = heard {heard_from_ann} + dropped {dropped}; cat's datagrams to ann dropped {}",
        delivered_to_cat.len(),
        cat_row["failed"],
        shown.len(),
        copies - shown.len() as u64,
        lan.dropped(0)
    );
}

/// Alone in a group, a message reaches nobody: its group receipt names
/// no one, the screen points to /why, and a piped chat fails saying the
/// message was not delivered.
#[test]
fn a_message_to_an_empty_room_is_not_delivered() {
    let Some(lan) = Lan::or_skip(2) else {
        return;
    };
    let mut ann = lan.dgram(
        0,
        &[
            "chat",
            "--group",
            GROUP,
            "--iface",
            "eth0",
            "--name",
            "ann",
            "--no-history",
            "--linger",
            "0",
            "--hello",
            HELLO_MS,
        ],
    );
    ann.wait_stdout_contains("member of 239.1.2.3:5000");
    ann.write_line("anyone?");
    ann.close_stdin();
    ann.finish();
    assert_eq!(ann.code(), Some(1), "{}", ann.dump());
    assert!(
        ann.stdout()
            .contains("\"anyone?\"  (no member has been heard yet: nobody to get it; /why)"),
        "{}",
        ann.dump()
    );
    assert!(
        ann.stderr().contains("1 of 1 message not delivered"),
        "{}",
        ann.dump()
    );
}

/// With `--raw` a group chat is a plain byte pipe, as socat is: no hello,
/// no envelope; each member shows the other's text with its address, and
/// not its own looped back.
#[test]
fn raw_members_exchange_plain_text() {
    let Some(lan) = Lan::or_skip(2) else {
        return;
    };
    let group = ["--group", GROUP];
    let mut procs = [
        member(&lan, 0, "ann", &group, &["--raw"]),
        member(&lan, 1, "bob", &group, &["--raw"]),
    ];
    for (i, proc) in procs.iter_mut().enumerate() {
        proc.write_line(&format!("plain from {i}"));
    }
    for (i, proc) in procs.iter().enumerate() {
        let other = 1 - i;
        let datagram = wait_for(
            "the other's text",
            || proc.dump(),
            || proc.events("datagram").into_iter().next(),
        );
        assert_eq!(datagram["text"], format!("plain from {other}"));
        assert!(
            datagram["from"]
                .as_str()
                .unwrap()
                .starts_with(&format!("{}:", lan.addr(other))),
            "{}",
            proc.dump()
        );
    }
    for proc in &mut procs {
        proc.close_stdin();
        proc.finish();
        assert!(proc.finish_ok(), "{}", proc.dump());
        assert_eq!(proc.events("datagram").len(), 1, "{}", proc.dump());
        assert!(
            proc.events("sent").iter().all(|s| s["kind"] == "text"),
            "{}",
            proc.dump()
        );
    }
}

/// A host's address given as a broadcast address would reach one host,
/// not the LAN: refused, naming the real one. Without --iface, the
/// interface whose broadcast address it is is found and used.
#[test]
fn broadcast_takes_only_a_broadcast_address() {
    let Some(lan) = Lan::or_skip(2) else {
        return;
    };
    let host = format!("{}:5000", lan.addr(1));
    let mut proc = lan.dgram(0, &["chat", "--broadcast", &host, "--iface", "eth0"]);
    proc.finish();
    assert_eq!(proc.code(), Some(2), "{}", proc.dump());
    assert!(
        proc.stderr().contains(&format!(
            "{} is not the broadcast address of eth0 ({}): use --broadcast {}:PORT",
            lan.addr(1),
            lan.broadcast(),
            lan.broadcast()
        )),
        "{}",
        proc.dump()
    );
    let broadcast = format!("{}:5000", lan.broadcast());
    let mut watcher = lan.dgram(0, &["listen", "--broadcast", &broadcast, "--json"]);
    let joined = wait_for(
        "the joined event",
        || watcher.dump(),
        || watcher.events("joined").into_iter().next(),
    );
    assert_eq!(joined["iface"], "eth0", "{joined}");
    assert_eq!(joined["iface_addr"], lan.addr(0).to_string(), "{joined}");
    watcher.kill();
}

/// A hello is answered with a hello of ours, never a larger one: a member
/// whose name is long answers a short-named newcomer's hello without its
/// name (no amplification). The answer challenges the newcomer, which
/// becomes a member only once it sends the token back from its address
/// (return routability): a Python newcomer written from PROTOCOL.md
/// section 9 does, without its name, and is then shown joining under the
/// name its first hello gave.
#[test]
fn hello_replies_never_outgrow_the_hello() {
    let Some(lan) = Lan::or_skip(2) else {
        return;
    };
    let long = "a-member-with-a-rather-long-name-indeed";
    let group = ["--group", GROUP];
    let mut ann = member(&lan, 0, long, &group, &[]);
    let script = r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("10.77.0.2", 0))
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("10.77.0.2"))
hello = bytes.fromhex(sys.argv[1])
s.sendto(hello, ("239.1.2.3", 5000))
s.settimeout(10)
data, peer = s.recvfrom(65535)
print(len(hello), len(data), data[:3].hex(), flush=True)
# The answer: our hello without its name (no larger than the challenge,
# which left its own name out), its answer field the challenge we got.
challenge = data[-16:-8]
answer = hello[:11] + b"\x00" + bytes(8) + challenge
assert len(answer) <= len(data)
s.sendto(answer, peer)
"#;
    // A hello from session 0102…08, name "b": F5 01 03, session, 01 'b',
    // then no challenge and no answer (8 zero bytes each).
    let hello = "f501030102030405060708".to_string() + "0162" + &"00".repeat(16);
    let mut python = lan.spawn(1, "python3", &["-c", script, &hello]);
    python.finish();
    assert!(python.finish_ok(), "{}", python.dump());
    let out = python.stdout();
    let fields: Vec<&str> = out.split_whitespace().collect();
    let (sent, reply): (usize, usize) = (fields[0].parse().unwrap(), fields[1].parse().unwrap());
    assert_eq!(fields[2], "f50103", "the reply is a hello: {out}");
    assert!(
        reply <= sent,
        "a {sent}-byte hello answered with {reply} bytes"
    );
    wait_for_change(&ann, "b", "joined");
    ann.kill();
}

/// The group member written from PROTOCOL.md alone
/// (`tests/peer/dgram_member.py`).
const PY_MEMBER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peer/dgram_member.py");

/// Starts the Python member `name` on host `host` (hellos every
/// [`HELLO_MS`]), with `extra` options, and returns it with its own
/// address (where its hellos come from).
fn python_member(lan: &Lan, host: usize, name: &str, extra: &[&str]) -> (Proc, String) {
    let iface = lan.addr(host).to_string();
    let mut args = vec![
        PY_MEMBER, "--group", GROUP, "--iface", &iface, "--name", name, "--hello", "0.3",
    ];
    args.extend_from_slice(extra);
    let python = lan.spawn(host, "python3", &args);
    let bound = wait_for(
        "the Python member to bind",
        || python.dump(),
        || python.events("bound").into_iter().next(),
    );
    let addr = bound["member"].as_str().unwrap().to_string();
    (python, addr)
}

/// Two `dgram chat --group` members and an independent member written
/// from PROTOCOL.md section 9 alone, each on its own host: the Python
/// member proves its address and is shown joining at both dgram members,
/// at the address its hellos come from; it reports both of them joined
/// (they answered its challenge); a message from each dgram member
/// reaches it once and its receipt counts (each `group_receipt` names it
/// delivered, nobody missing); its own message to the group reaches both
/// dgram members and both acknowledge it; and its bye is seen at both.
#[test]
fn a_python_member_from_the_spec_joins_and_talks() {
    // Its own checks first (they need no namespaces).
    let mut check = Proc::spawn("python3", &[PY_MEMBER, "--self-test"]);
    assert!(check.finish().success(), "{}", check.dump());
    let Some(lan) = Lan::or_skip(3) else {
        return;
    };
    let group = ["--group", GROUP];
    let mut ann = member(&lan, 0, "ann", &group, &[]);
    let mut bob = member(&lan, 1, "bob", &group, &[]);
    // A name as long as theirs: an answer is never larger than the hello
    // it answers, so a longer (or shorter) name than the challenger's is
    // left out of the answer that makes it a member, and dgram then shows
    // the member without a name.
    let (mut python, py_addr) = python_member(
        &lan,
        2,
        "pym",
        &[
            "--await-members",
            "2",
            "--send",
            "from python",
            "--expect",
            "2",
            "--timeout",
            "30",
        ],
    );
    for proc in [&ann, &bob] {
        let joined = wait_for_change(proc, "pym", "joined");
        assert_eq!(joined["member"], py_addr.as_str(), "{}", proc.dump());
    }
    for name in ["ann", "bob"] {
        wait_for(
            &format!("the Python member to see {name} join"),
            || python.dump(),
            || {
                python
                    .events("member")
                    .into_iter()
                    .find(|m| m["name"] == name && m["change"] == "joined")
            },
        );
    }
    ann.write_line("from ann");
    bob.write_line("from bob");
    for (proc, me, other) in [(&ann, "ann", "bob"), (&bob, "bob", "ann")] {
        let receipt = wait_for(
            &format!("{me}'s group receipt"),
            || format!("{}\n{}", proc.dump(), python.dump()),
            || proc.events("group_receipt").into_iter().next(),
        );
        assert_eq!(
            named(&receipt, "delivered"),
            set(&["pym", other]),
            "{receipt}"
        );
        assert_eq!(named(&receipt, "missing"), set(&[]), "{receipt}");
        wait_for(
            &format!("{me} to show the Python member's message"),
            || proc.dump(),
            || {
                messages(proc)
                    .into_iter()
                    .find(|(n, t)| n == "pym" && t == "from python")
            },
        );
    }
    python.finish_within(Duration::from_secs(30));
    assert!(python.finish_ok(), "{}", python.dump());
    let mut got: Vec<(String, String)> = python
        .events("message")
        .iter()
        .map(|m| {
            assert_eq!(m["member"], true, "from a member: {m}");
            (
                m["name"].as_str().unwrap().to_string(),
                m["text"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    got.sort();
    let want =
        [("ann", "from ann"), ("bob", "from bob")].map(|(n, t)| (n.to_string(), t.to_string()));
    assert_eq!(got, want, "{}", python.dump());
    let receipts = python.events("group_receipt");
    assert_eq!(receipts.len(), 1, "{}", python.dump());
    assert_eq!(named(&receipts[0], "delivered"), set(&["ann", "bob"]));
    assert_eq!(named(&receipts[0], "missing"), set(&[]));
    for proc in [&mut ann, &mut bob] {
        wait_for_change(proc, "pym", "left");
        proc.kill();
    }
}

/// Retransmissions both ways between dgram and the member written from
/// the spec, and dgram's bye at it: every message sent to the group is
/// dropped on arrival at both hosts (nftables: UDP to the group's port
/// whose payload starts `F5 01 01`), hellos and unicast pass. Each side's
/// message then reaches the other only by the unicast retry to its own
/// address (try 2 or later), is acknowledged, and the sender's
/// `group_receipt` names the other delivered; when dgram leaves, the
/// Python member reports it `left`.
#[test]
fn a_python_member_and_dgram_retry_by_unicast() {
    let Some(lan) = Lan::or_skip(2) else {
        return;
    };
    let group_messages = "udp dport 5000 @th,64,24 0xf50101";
    for host in 0..2 {
        lan.drop_arriving(host, group_messages)
            .unwrap_or_else(|e| panic!("nft: {e}"));
    }
    let mut ann = member(&lan, 0, "ann", &["--group", GROUP], &[]);
    let (mut python, _) = python_member(
        &lan,
        1,
        "pym",
        &[
            "--send",
            "filtered",
            "--expect",
            "1",
            "--until-alone",
            "--timeout",
            "30",
        ],
    );
    wait_for_change(&ann, "pym", "joined");
    ann.write_line("through the filter");
    let receipt = wait_for(
        "ann's group receipt",
        || format!("{}\n{}", ann.dump(), python.dump()),
        || ann.events("group_receipt").into_iter().next(),
    );
    assert_eq!(named(&receipt, "delivered"), set(&["pym"]), "{receipt}");
    let to_python = ann
        .events("receipt")
        .into_iter()
        .find(|r| r["name"] == "pym")
        .unwrap_or_else(|| panic!("{}", ann.dump()));
    assert!(to_python["tries"].as_u64() >= Some(2), "{to_python}");
    let from_python = wait_for(
        "the Python member's message at ann",
        || format!("{}\n{}", ann.dump(), python.dump()),
        || {
            ann.events("message")
                .into_iter()
                .find(|m| m["name"] == "pym" && m["text"] == "filtered")
        },
    );
    assert!(from_python["try"].as_u64() >= Some(2), "{from_python}");
    ann.close_stdin();
    python.finish_within(Duration::from_secs(30));
    assert!(python.finish_ok(), "{}", python.dump());
    let got = python.first_event("message");
    assert_eq!(got["text"], "through the filter", "{}", python.dump());
    assert_eq!(got["via"], "direct", "{}", python.dump());
    assert!(got["try"].as_u64() >= Some(2), "{got}");
    let receipts = python.events("group_receipt");
    assert_eq!(receipts.len(), 1, "{}", python.dump());
    assert_eq!(named(&receipts[0], "delivered"), set(&["ann"]));
    let acked = python.first_event("receipt");
    assert!(acked["tries"].as_u64() >= Some(2), "{acked}");
    let left = python
        .events("member")
        .into_iter()
        .find(|m| m["name"] == "ann" && m["change"] == "left");
    assert!(left.is_some(), "ann's bye: {}", python.dump());
    assert!(lan.dropped(0) >= 1 && lan.dropped(1) >= 1);
    ann.finish_within(Duration::from_secs(30));
    assert!(ann.finish_ok(), "{}", ann.dump());
}

/// The member written from the spec and a dgram member on one host share
/// the group's port (section 9: `SO_REUSEADDR`, `SO_REUSEPORT`) and hear
/// each other by multicast loopback: each proves its own address to the
/// other (the Python member is shown joining at dgram at its own address,
/// not the shared port), and a message each way is acknowledged.
#[test]
fn a_python_member_shares_a_host_with_dgram() {
    let Some(lan) = Lan::or_skip(2) else {
        return;
    };
    let mut ann = member(&lan, 0, "ann", &["--group", GROUP], &[]);
    let (mut python, py_addr) = python_member(
        &lan,
        0,
        "pym",
        &["--send", "same host", "--expect", "1", "--timeout", "30"],
    );
    assert!(py_addr.starts_with("10.77.0.1:"), "{py_addr}");
    assert!(!py_addr.ends_with(":5000"), "{py_addr}");
    let joined = wait_for_change(&ann, "pym", "joined");
    assert_eq!(joined["member"], py_addr.as_str(), "{}", ann.dump());
    ann.write_line("next door");
    let receipt = wait_for(
        "ann's group receipt",
        || format!("{}\n{}", ann.dump(), python.dump()),
        || ann.events("group_receipt").into_iter().next(),
    );
    assert_eq!(named(&receipt, "delivered"), set(&["pym"]), "{receipt}");
    python.finish_within(Duration::from_secs(30));
    assert!(python.finish_ok(), "{}", python.dump());
    assert_eq!(python.first_event("message")["text"], "next door");
    let receipts = python.events("group_receipt");
    assert_eq!(receipts.len(), 1, "{}", python.dump());
    assert_eq!(named(&receipts[0], "delivered"), set(&["ann"]));
    assert!(
        messages(&ann).contains(&("pym".to_string(), "same host".to_string())),
        "{}",
        ann.dump()
    );
    ann.kill();
}
