//! Real loss: two network namespaces on a bridge, nftables
//! dropping 20% of the UDP datagrams arriving in each (on the input hook,
//! so that the sender's `sendto` succeeds and the loss is silent, as on a
//! real network), and two `dgram chat`s sending each other 200 messages
//! from pipes.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::Value;

use crate::netns::Lan;
use crate::util::Proc;

/// Messages each side sends.
const MESSAGES: u64 = 200;

/// A chat on host `side` of `lan`, talking to the other host, its input
/// `MESSAGES` numbered lines from a pipe.
fn chat(lan: &Lan, side: usize, tag: &str) -> Proc {
    let me = format!("{}:9000", lan.addr(side));
    let peer = format!("{}:9000", lan.addr(1 - side));
    let proc = lan.dgram(
        side,
        &[
            "chat",
            "--bind",
            &me,
            "--peer",
            &peer,
            "--name",
            tag,
            "--json",
            "--no-history",
            // Keep acknowledging the other side's retransmissions after our
            // own messages are settled.
            "--linger",
            "12000",
        ],
    );
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
    let Some(lan) = Lan::or_skip(2) else {
        return;
    };
    for side in 0..2 {
        lan.lose_percent(side, 20).expect("nftables rules");
    }
    let mut a = chat(&lan, 0, "alice");
    let mut b = chat(&lan, 1, "bob");
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
    let dropped = [lan.dropped(0), lan.dropped(1)];
    let overflowed = [lan.rcvbuf_errors(0), lan.rcvbuf_errors(1)];
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
        // full SO_RCVBUF. The kernel's own count is the namespace's: a
        // build that can count drops (SO_RXQ_OVFL) must report exactly
        // that many; the portable build cannot see them and says 0.
        let sent = s["sent"].as_u64().unwrap();
        let received = r["received"].as_u64().unwrap();
        let kernel = overflowed[1 - i];
        assert_eq!(
            sent,
            received + dropped[1 - i] + kernel,
            "sent = received + dropped on the way + dropped by the kernel: {}",
            context()
        );
        let counts_drops = other.first_event("listening")["capabilities"]["drop_count"] == true;
        let reported = r["dropped"].as_u64().unwrap();
        assert_eq!(
            reported,
            if counts_drops { kernel } else { 0 },
            "the kernel's drops as the receiver reported them: {}",
            context()
        );
        // A pipe's chat says by its status whether all were delivered.
        assert_eq!(status.success(), failed.is_empty(), "{}", context());
        if !failed.is_empty() {
            assert_eq!(status.code(), Some(1), "{}", context());
        }
        eprintln!(
            "side {i}: sent {MESSAGES}, delivered {}, failed {}, late {}, retransmissions {}; other side showed {}, duplicates {}, reordered {}, lost {}; datagrams sent {sent}, received there {received}, dropped by nftables there {}, by its kernel {kernel} (it reported {reported})",
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
