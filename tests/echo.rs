//! `dgram listen --echo` cannot be turned into a loop: two echo servers
//! given one spoofed datagram stop answering each other at the rate limit,
//! and a datagram claiming to come from the echo server itself is never
//! answered. Every datagram is either echoed or counted as held back.

use std::time::Instant;

use crate::util::{listener, need_raw_sockets, spoof, stop, wait_for};

/// One datagram spoofed to come from B, sent to A (both `listen --echo
/// --echo-rate 50`): A and B answer each other until one of them is out of
/// budget, then the loop stops by itself. The counts add up exactly: A got
/// B's replies plus the spoofed datagram, B got A's replies, every datagram
/// was either echoed or held back, and neither answered much more than its
/// budget for the time the loop ran.
#[test]
fn two_echo_servers_do_not_loop() {
    if !need_raw_sockets() {
        return;
    }
    let rate = 50;
    let (mut a, a_addr) = listener(&["--echo", "--echo-rate", &rate.to_string()]);
    let (mut b, b_addr) = listener(&["--echo", "--echo-rate", &rate.to_string()]);
    let start = Instant::now();
    assert!(spoof(b_addr, a_addr, b"ping-pong"));
    // The loop ends when one side holds a reply back: nothing is in flight
    // after that.
    wait_for(
        "an echo held back",
        || format!("{}\n{}", a.dump(), b.dump()),
        || {
            (!a.events("echo_skipped").is_empty() || !b.events("echo_skipped").is_empty())
                .then_some(())
        },
    );
    let elapsed = start.elapsed().as_secs_f64();
    let a_sum = stop(&mut a);
    let b_sum = stop(&mut b);
    let n = |v: &serde_json::Value, k: &str| v[k].as_u64().unwrap();
    assert_eq!(
        n(&a_sum, "received"),
        n(&b_sum, "sent") + 1,
        "{a_sum}\n{b_sum}"
    );
    assert_eq!(n(&b_sum, "received"), n(&a_sum, "sent"), "{a_sum}\n{b_sum}");
    for sum in [&a_sum, &b_sum] {
        assert_eq!(
            n(sum, "received"),
            n(sum, "sent") + n(sum, "echo_skipped"),
            "{sum}"
        );
        // A burst of `rate`, plus what refilled while the loop ran.
        let budget = rate as f64 * (1.0 + elapsed) + 1.0;
        assert!((n(sum, "sent") as f64) <= budget, "{sum} over {budget}");
    }
    assert_eq!(n(&a_sum, "echo_skipped") + n(&b_sum, "echo_skipped"), 1);
    let skipped = a
        .events("echo_skipped")
        .into_iter()
        .chain(b.events("echo_skipped"))
        .next()
        .unwrap();
    assert_eq!(skipped["reason"], "rate_limited", "{skipped}");
}

/// A datagram that claims to come from the echo server's own address is
/// shown and counted, never answered (it would loop on itself).
#[test]
fn echo_does_not_answer_itself() {
    if !need_raw_sockets() {
        return;
    }
    let (mut a, a_addr) = listener(&["--echo"]);
    assert!(spoof(a_addr, a_addr, b"me?"));
    let skipped = a.next("echo_skipped");
    assert_eq!(skipped["reason"], "own_address", "{skipped}");
    assert_eq!(skipped["peer"], a_addr.to_string());
    let summary = stop(&mut a);
    assert_eq!(summary["received"], 1, "{summary}");
    assert_eq!(summary["sent"], 0, "{summary}");
}

/// A datagram cut short by `--max-size` is not echoed (what is left is not
/// what was sent), and says why; one that fits is echoed whole.
#[test]
fn truncated_datagrams_are_not_echoed() {
    let (mut echo, addr) = listener(&["--echo", "--max-size", "10"]);
    let client = crate::util::Peer::bind();
    client
        .socket
        .send_to(b"twenty bytes of text", addr)
        .unwrap();
    let skipped = echo.next("echo_skipped");
    assert_eq!(skipped["reason"], "truncated", "{skipped}");
    client.socket.send_to(b"ten bytes!", addr).unwrap();
    assert_eq!(client.recv(), b"ten bytes!");
    let summary = stop(&mut echo);
    assert_eq!(
        (summary["sent"].as_u64(), summary["echo_skipped"].as_u64()),
        (Some(1), Some(1))
    );
}
