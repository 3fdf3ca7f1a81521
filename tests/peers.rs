//! Any number of peers may talk to one listener; none of them locks it.

use std::net::SocketAddr;

use crate::util::{Proc, listener, stop};

/// Two senders with different source ports are each shown with their own
/// address, and `--echo` answers each of them (OpenBSD `nc -u -l` would
/// lock onto the first).
#[test]
fn two_senders_are_told_apart_and_both_answered() {
    let (mut listen, addr) = listener(&["--echo"]);
    let addr = addr.to_string();
    let mut a = Proc::dgram(&["send", &addr, "--json", "--wait", "100"]);
    let mut b = Proc::dgram(&["send", &addr, "--json", "--wait", "100"]);
    let a_local = a.expect("listening")["local"].as_str().unwrap().to_string();
    let b_local = b.expect("listening")["local"].as_str().unwrap().to_string();
    let port = |local: &str| local.rsplit(':').next().unwrap().to_string();
    assert_ne!(port(&a_local), port(&b_local));

    a.write_line("from a");
    let seen = listen.next("datagram");
    assert_eq!(seen["text"], "from a");
    assert!(
        seen["from"].as_str().unwrap().ends_with(&port(&a_local)),
        "{seen}"
    );

    b.write_line("from b");
    let seen = listen.next("datagram");
    assert_eq!(seen["text"], "from b");
    assert!(
        seen["from"].as_str().unwrap().ends_with(&port(&b_local)),
        "{seen}"
    );

    assert_eq!(a.next("datagram")["text"], "from a");
    assert_eq!(b.next("datagram")["text"], "from b");
    // The first peer is still heard after the second.
    a.write_line("a again");
    assert_eq!(listen.next("datagram")["text"], "a again");
    assert_eq!(a.next("datagram")["text"], "a again");

    for peer in [&mut a, &mut b] {
        peer.close_stdin();
        assert!(peer.finish().success(), "{}", peer.dump());
    }
    let summary = stop(&mut listen);
    assert_eq!(summary["received"], 3);
    assert_eq!(summary["sent"], 3, "three echo replies: {summary}");
}

/// Events keep their causal order: a reply is never reported before the
/// `sent` event of the datagram it answers, although they are reported
/// from two threads.
#[test]
fn replies_come_after_their_sent_events() {
    let (mut echo, addr) = listener(&["--echo", "--echo-rate", "0"]);
    for _ in 0..3 {
        let send = crate::util::run(&["send", &addr.to_string(), "x", "--count", "50", "--json"]);
        assert!(send.finish_ok(), "{}", send.dump());
        let mut sent = 0;
        let mut replies = 0;
        for line in send.stdout().lines() {
            let event: serde_json::Value = serde_json::from_str(line).unwrap();
            match event["event"].as_str().unwrap() {
                "sent" => sent += 1,
                "datagram" => {
                    replies += 1;
                    assert!(
                        replies <= sent,
                        "reply {replies} before its sent event:\n{}",
                        send.stdout()
                    );
                }
                _ => {}
            }
        }
        assert_eq!((sent, replies), (50, 50), "{}", send.dump());
    }
    stop(&mut echo);
}

/// Senders from more addresses than the peer table keeps (5000 source
/// ports, spoofed through a raw socket) do not grow it past its cap: the
/// least recently active are forgotten, and the summary counts exactly
/// how many (every datagram received came from a new address).
#[test]
fn the_peer_table_is_capped_under_many_senders() {
    if !crate::util::need_raw_sockets() {
        return;
    }
    let (mut listen, addr) = crate::util::listener(&["--rcvbuf", "8M"]);
    let senders = 5000u16;
    for port in 0..senders {
        let from = SocketAddr::from(([127, 0, 0, 1], 20000 + port));
        assert!(crate::util::spoof(from, addr, b"x"));
    }
    crate::util::wait_for(
        "the last spoofed datagram",
        || listen.dump(),
        || listen.stdout().contains(":24999\"").then_some(()),
    );
    let summary = crate::util::stop(&mut listen);
    let received = summary["received"].as_u64().unwrap();
    let dropped = summary["dropped"].as_u64().unwrap();
    assert_eq!(received + dropped, u64::from(senders), "{summary}");
    assert_eq!(
        summary["peers_forgotten"].as_u64().unwrap(),
        received - 4096,
        "{summary}"
    );
}
