//! Real loss: two network namespaces joined by a veth pair, nftables
//! dropping 20% of the UDP datagrams arriving in each (on the input hook,
//! so that the sender's `sendto` succeeds and the loss is silent, as on a
//! real network), and two `dgram chat`s sending each other 200 messages
//! from pipes.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use serde_json::Value;

use crate::util::{Proc, dgram_path};

/// Messages each side sends.
const MESSAGES: u64 = 200;

/// Two namespaces and the veth pair between them; removed on drop.
struct Pair {
    names: [String; 2],
    addrs: [String; 2],
}

/// Runs a setup command; the error says what failed.
fn sh(args: &[&str]) -> Result<(), String> {
    let output = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{}: {e}", args.join(" ")))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

impl Pair {
    /// Makes the namespaces, the link and the loss rules. Each test gets
    /// its own names and subnet (10.77.N.0/24), so tests may run at once.
    fn new(loss_percent: u32) -> Result<Pair, String> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let id = format!("{}-{n}", std::process::id());
        let pair = Pair {
            names: [format!("dgram-a-{id}"), format!("dgram-b-{id}")],
            addrs: [format!("10.77.{n}.1"), format!("10.77.{n}.2")],
        };
        let veth = [
            format!("dga{n}-{}", std::process::id() % 10000),
            format!("dgb{n}-{}", std::process::id() % 10000),
        ];
        for name in &pair.names {
            sh(&["ip", "netns", "add", name])?;
        }
        sh(&[
            "ip",
            "link",
            "add",
            &veth[0],
            "netns",
            &pair.names[0],
            "type",
            "veth",
            "peer",
            "name",
            &veth[1],
            "netns",
            &pair.names[1],
        ])?;
        for ((ns, addr), dev) in pair.names.iter().zip(&pair.addrs).zip(&veth) {
            let addr = format!("{addr}/24");
            sh(&["ip", "-n", ns, "addr", "add", &addr, "dev", dev])?;
            sh(&["ip", "-n", ns, "link", "set", dev, "up"])?;
            sh(&["ip", "-n", ns, "link", "set", "lo", "up"])?;
            // Drop on input: a drop on output would fail the sender's
            // sendto with EPERM instead of losing the datagram silently.
            let percent = loss_percent.to_string();
            let nft = |rest: &[&str]| {
                let mut args = vec!["ip", "netns", "exec", ns, "nft"];
                args.extend_from_slice(rest);
                sh(&args)
            };
            nft(&["add", "table", "inet", "loss"])?;
            nft(&[
                "add",
                "chain",
                "inet",
                "loss",
                "input",
                "{ type filter hook input priority 0; policy accept; }",
            ])?;
            nft(&[
                "add", "rule", "inet", "loss", "input", "meta", "l4proto", "udp", "numgen",
                "random", "mod", "100", "<", &percent, "counter", "drop",
            ])?;
        }
        Ok(pair)
    }

    /// The datagrams nftables dropped in namespace `side`.
    fn dropped(&self, side: usize) -> u64 {
        let output = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.names[side],
                "nft",
                "list",
                "table",
                "inet",
                "loss",
            ])
            .output()
            .expect("nft runs");
        let text = String::from_utf8_lossy(&output.stdout);
        text.split("packets ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        // Deleting a namespace deletes its end of the veth pair, and so the
        // pair.
        for name in &self.names {
            let _ = sh(&["ip", "netns", "delete", name]);
        }
    }
}

/// The pair, or why there is none. In CI (`CI=true`) namespaces must work:
/// the test fails rather than skip.
fn pair_or_skip(loss_percent: u32) -> Option<Pair> {
    match Pair::new(loss_percent) {
        Ok(pair) => Some(pair),
        Err(why) if std::env::var("CI").as_deref() != Ok("true") => {
            eprintln!(
                "SKIPPED: network namespaces cannot be made here (root, iproute2 and nftables needed): {why}"
            );
            None
        }
        Err(why) => panic!("network namespaces are needed in CI: {why}"),
    }
}

/// A chat in namespace `side` of `pair`, talking to the other side, its
/// input `MESSAGES` numbered lines from a pipe.
fn chat(pair: &Pair, side: usize, tag: &str) -> Proc {
    let me = format!("{}:9000", pair.addrs[side]);
    let peer = format!("{}:9000", pair.addrs[1 - side]);
    let mut command = Command::new("ip");
    command.args([
        "netns",
        "exec",
        &pair.names[side],
        dgram_path(),
        "chat",
        "--bind",
        &me,
        "--peer",
        &peer,
        "--name",
        tag,
        "--json",
        "--no-history",
        // Keep acknowledging the other side's retransmissions after our own
        // messages are settled.
        "--linger",
        "12000",
    ]);
    let proc = Proc::start(command);
    proc.wait_stdout_contains("\"event\":\"listening\"");
    proc
}

/// What one side's JSON events say.
#[derive(Debug, Default)]
struct Seen {
    /// Final state per sequence number sent (delivered or failed).
    outcomes: BTreeMap<u64, Vec<String>>,
    /// Late receipts.
    late: BTreeSet<u64>,
    /// Messages shown (first copies), by number.
    shown: BTreeMap<u64, u64>,
    duplicates: u64,
    reordered: u64,
    retries: u64,
    summary: Value,
}

fn seen(proc: &Proc) -> Seen {
    let mut seen = Seen::default();
    for receipt in proc.events("receipt") {
        let seq = receipt["seq"].as_u64().unwrap();
        let status = receipt["status"].as_str().unwrap().to_string();
        if status == "late" {
            seen.late.insert(seq);
        } else {
            seen.outcomes.entry(seq).or_default().push(status);
        }
    }
    for message in proc.events("message") {
        if message["duplicate"] == true {
            seen.duplicates += 1;
        } else {
            *seen
                .shown
                .entry(message["seq"].as_u64().unwrap())
                .or_default() += 1;
            seen.reordered += u64::from(message["reordered"] == true);
        }
    }
    seen.retries = proc
        .events("sent")
        .iter()
        .filter(|e| e["kind"] == "message" && e["try"].as_u64() > Some(1))
        .count() as u64;
    seen.summary = proc.first_event("summary");
    seen
}

/// 200 messages each way through 20% loss in each direction: every message
/// reaches exactly one final state (delivered or failed; late receipts come
/// only after failure); every delivered message was shown exactly once by
/// the receiver, and no message was shown twice; retransmissions happened;
/// the summary's counts agree with the events each side printed and with
/// what the other side saw; a pipe's chat exits 0 only when all its
/// messages were delivered.
#[test]
fn two_chats_through_twenty_percent_loss() {
    let Some(pair) = pair_or_skip(20) else {
        return;
    };
    let mut a = chat(&pair, 0, "alice");
    let mut b = chat(&pair, 1, "bob");
    for proc in [&mut a, &mut b] {
        let lines: String = (1..=MESSAGES).map(|i| format!("message {i}\n")).collect();
        proc.write_bytes(lines.as_bytes());
        proc.close_stdin();
    }
    // Each side settles within about 9 s (five tries, the first after 1 s,
    // then backed off from the 200 ms floor), then lingers 12 s: neither
    // leaves while the other still sends, so every datagram is accounted
    // for below.
    let limit = Duration::from_secs(90);
    let (status_a, status_b) = (a.finish_within(limit), b.finish_within(limit));
    let sides = [(seen(&a), status_a, &a), (seen(&b), status_b, &b)];
    let dropped = [pair.dropped(0), pair.dropped(1)];
    for (i, (sender, status, proc)) in sides.iter().enumerate() {
        let (receiver, _, other) = &sides[1 - i];
        let context = || format!("{}\n=== other side\n{}", proc.dump(), other.dump());
        // Exactly one final state per message, for all of 1..=200.
        assert_eq!(sender.outcomes.len() as u64, MESSAGES, "{}", context());
        assert!(
            sender.outcomes.iter().all(|(_, states)| states.len() == 1),
            "a message with two final states: {}",
            context()
        );
        let delivered: BTreeSet<u64> = sender
            .outcomes
            .iter()
            .filter(|(_, s)| s[0] == "delivered")
            .map(|(seq, _)| *seq)
            .collect();
        let failed: BTreeSet<u64> = sender
            .outcomes
            .keys()
            .filter(|seq| !delivered.contains(seq))
            .copied()
            .collect();
        assert!(sender.late.is_subset(&failed), "late only after failure");
        // Shown once, never twice; every delivered message was shown.
        assert!(receiver.shown.values().all(|n| *n == 1), "{}", context());
        for seq in &delivered {
            assert!(
                receiver.shown.contains_key(seq),
                "#{seq} delivered but never shown: {}",
                context()
            );
        }
        assert!(
            receiver
                .shown
                .keys()
                .all(|seq| (1..=MESSAGES).contains(seq))
        );
        // Loss happened and was repaired.
        assert!(sender.retries > 0, "no retransmissions: {}", context());
        // The summaries agree with the events.
        let s = &sender.summary;
        assert_eq!(s["messages_sent"], MESSAGES);
        assert_eq!(s["delivered"], delivered.len() as u64);
        assert_eq!(s["failed"], failed.len() as u64);
        assert_eq!(s["late"], sender.late.len() as u64);
        assert_eq!(s["retransmissions"], sender.retries);
        let r = &receiver.summary;
        assert_eq!(r["messages"], receiver.shown.len() as u64);
        assert_eq!(r["duplicates"], receiver.duplicates);
        assert_eq!(r["reordered"], receiver.reordered);
        let highest = receiver.shown.keys().max().copied().unwrap_or(0);
        assert_eq!(
            r["lost"],
            highest - receiver.shown.len() as u64,
            "lost = numbers below the highest never shown: {}",
            context()
        );
        // Per peer, the summary says the same.
        let peers = |summary: &Value| summary["peers"].as_array().unwrap().clone();
        let (sp, rp) = (&peers(s)[0], &peers(r)[0]);
        assert_eq!(sp["messages_sent"], MESSAGES);
        assert_eq!(sp["delivered"], delivered.len() as u64);
        assert_eq!(sp["failed"], failed.len() as u64);
        assert_eq!(sp["retransmissions"], sender.retries);
        assert_eq!(rp["messages"], receiver.shown.len() as u64);
        assert_eq!(rp["duplicates"], receiver.duplicates);
        assert_eq!(rp["lost"], r["lost"]);
        // Every datagram is accounted for: what one side sent (messages,
        // retransmissions, receipts) either reached the other's socket,
        // was dropped by nftables on the way in, or by the kernel for a
        // full SO_RCVBUF.
        let sent = s["sent"].as_u64().unwrap();
        let received = r["received"].as_u64().unwrap();
        let kernel = r["dropped"].as_u64().unwrap();
        assert_eq!(
            sent,
            received + dropped[1 - i] + kernel,
            "sent = received + dropped on the way + dropped by the kernel: {}",
            context()
        );
        // A pipe's chat says by its status whether all were delivered.
        assert_eq!(status.success(), failed.is_empty(), "{}", context());
        if !failed.is_empty() {
            assert_eq!(status.code(), Some(1), "{}", context());
        }
        eprintln!(
            "side {i}: sent {MESSAGES}, delivered {}, failed {}, late {}, retransmissions {}; other side showed {}, duplicates {}, reordered {}, lost {}; datagrams sent {sent}, received there {received}, dropped by nftables there {}, by its kernel {kernel}",
            delivered.len(),
            failed.len(),
            sender.late.len(),
            sender.retries,
            receiver.shown.len(),
            receiver.duplicates,
            receiver.reordered,
            r["lost"],
            dropped[1 - i]
        );
    }
    assert!(dropped[0] > 0 && dropped[1] > 0, "nftables dropped nothing");
}
