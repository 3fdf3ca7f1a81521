//! A peer that is down (its port closed) is reported, and never stops dgram.

use crate::netns::Lan;
use crate::util::{Proc, closed_port, has, listener, run};

/// `dgram send` to a port nobody listens on says so plainly and exits 1,
/// with the advice to start a listener there (it is a local address). The
/// portable build hears no ICMP errors: it says so in its capabilities,
/// and the send succeeds as far as it can tell.
#[test]
fn send_to_closed_port_reports_it_and_fails() {
    let addr = closed_port().to_string();
    if !has("icmp_errors") {
        let send = run(&["send", &addr, "anyone there?", "--json"]);
        assert!(send.finish_ok(), "{}", send.dump());
        assert!(send.events("unreachable").is_empty(), "{}", send.dump());
        return;
    }
    let send = run(&["send", &addr, "anyone there?"]);
    assert_eq!(send.code(), Some(1), "{}", send.dump());
    let stderr = send.stderr();
    assert!(
        stderr.contains(&format!("nothing is listening at {addr}")),
        "{}",
        send.dump()
    );
    assert_eq!(
        stderr.lines().filter(|l| l.starts_with("error:")).count(),
        1
    );
    assert!(
        stderr.contains(&format!("start a listener there (dgram listen {addr})")),
        "{stderr}"
    );

    let json = run(&["send", &addr, "knock", "--json", "--count", "3"]);
    assert_eq!(json.code(), Some(1), "{}", json.dump());
    let sent = json.events("sent");
    assert_eq!(
        sent.len(),
        3,
        "every datagram still went out: {}",
        json.dump()
    );
    let unreachable = json.events("unreachable");
    assert!(!unreachable.is_empty(), "{}", json.dump());
    assert!(unreachable.iter().all(|e| e["peer"] == addr.as_str()));
}

/// A chat from a pipe whose peer's port is closed fails (exit 1), and its
/// closing error names the cause, nothing listening there, rather than
/// advising --plain for a peer that is not dgram (which would fail the same
/// way). Against a listener that sends no receipts (`--raw`), the --plain
/// advice stays.
#[test]
fn undelivered_chat_to_a_closed_port_says_nothing_listens() {
    if !has("icmp_errors") {
        return;
    }
    let addr = closed_port().to_string();
    let chat_to = |peer: &str| {
        let mut chat = Proc::dgram(&[
            "chat",
            "--peer",
            peer,
            "--retries",
            "0",
            "--linger",
            "0",
            "--no-history",
        ]);
        chat.write_line("anyone?");
        chat.close_stdin();
        assert_eq!(chat.finish().code(), Some(1), "{}", chat.dump());
        chat.stderr()
            .lines()
            .find(|l| l.starts_with("error: 1 of 1 message not delivered"))
            .unwrap_or_else(|| panic!("{}", chat.dump()))
            .to_string()
    };
    let error = chat_to(&addr);
    assert!(
        error.contains(&format!("nothing is listening at {addr}")) && !error.contains("--plain"),
        "{error}"
    );
    let (_raw, raw_addr) = listener(&["--raw"]);
    let error = chat_to(&raw_addr.to_string());
    assert!(
        error.contains("give it --plain") && !error.contains("nothing is listening"),
        "{error}"
    );
}

/// The same over IPv6, and from a dual-stack socket to an IPv4 peer: the
/// refusal is heard (IPV6_RECVERR and IP_RECVERR both carry it to an IPv6
/// socket) and reported the same way.
#[test]
fn send_to_closed_port_over_ipv6_and_dual_stack() {
    let v6 = std::net::UdpSocket::bind("[::1]:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let v4 = closed_port().to_string();
    for args in [
        vec!["send", v6.as_str(), "knock"],
        vec!["send", v4.as_str(), "knock", "--bind", "[::]:0"],
    ] {
        let send = run(&args);
        let addr = args[1];
        if !has("icmp_errors") {
            assert!(send.finish_ok(), "{}", send.dump());
            continue;
        }
        assert_eq!(send.code(), Some(1), "{}", send.dump());
        assert!(
            send.stderr()
                .contains(&format!("nothing is listening at {addr}")),
            "{}",
            send.dump()
        );
    }
}

/// `dgram send` to a live server exits 0.
#[test]
fn send_to_live_server_succeeds() {
    let (_listen, addr) = listener(&[]);
    let send = run(&["send", &addr.to_string(), "hello"]);
    assert!(send.finish_ok(), "{}", send.dump());
}

/// An echo peer goes down in the middle of an exchange: the sender reports
/// `unreachable` for it (where the platform hears ICMP errors), keeps
/// running, and once the peer is back on the
/// same port its replies arrive again. The run then ends with status 0.
#[test]
fn exchange_survives_a_peer_going_down_and_coming_back() {
    let (mut echo, addr) = listener(&["--echo"]);
    let addr_text = addr.to_string();
    let mut client = Proc::dgram(&["send", &addr_text, "--json", "--wait", "200"]);
    client.expect("listening");

    client.write_line("one");
    let reply = client.next("datagram");
    assert_eq!(reply["text"], "one");
    assert_eq!(reply["from"], addr_text.as_str());

    echo.kill();
    client.write_line("two");
    if has("icmp_errors") {
        let report = client.next("unreachable");
        assert_eq!(report["peer"], addr_text.as_str(), "{report}");
    } else {
        client.next("sent");
    }

    let mut echo = Proc::dgram(&["listen", &addr_text, "--json", "--echo"]);
    echo.expect("listening");
    client.write_line("three");
    let reply = client.next("datagram");
    assert_eq!(reply["text"], "three", "{}", client.dump());

    client.close_stdin();
    let status = client.finish();
    assert!(
        status.success(),
        "the peer answers again: {}",
        client.dump()
    );
    let summary = client.first_event("summary");
    assert_eq!(summary["sent"], 3, "{summary}");
    assert_eq!(summary["received"], 2, "{summary}");
}

/// A network that answers with an ICMP error other than port unreachable
/// (here "network unreachable", from the far host's nftables `reject`, as
/// a router without a route sends it) ends `dgram send` with status 1 and
/// an error saying what the network reported, not status 0.
#[test]
fn send_through_an_unreachable_network_fails_and_says_why() {
    let Some(lan) = Lan::or_skip(2) else {
        return;
    };
    lan.reject_arriving(1, "net-unreachable")
        .expect("nftables rules");
    let to = format!("{}:9000", lan.addr(1));
    let mut send = lan.dgram(0, &["send", &to, "anyone?", "--json"]);
    let status = send.finish();
    if !has("icmp_errors") {
        assert!(status.success(), "{}", send.dump());
        return;
    }
    assert_eq!(status.code(), Some(1), "{}", send.dump());
    assert!(!send.events("peer_error").is_empty(), "{}", send.dump());
    let stderr = send.stderr();
    assert!(
        stderr.contains(&format!(
            "the network reports \"Network is unreachable\" for {to}"
        )),
        "{}",
        send.dump()
    );
    assert!(stderr.contains("ip route get"), "{stderr}");
}

/// `dgram ping` through the same network: each ICMP error is a
/// `peer_error` event in `--json`, and a run with no reply ends with
/// status 1 naming what the network reported (not "no reply", with the
/// advice to start an echo server).
#[test]
fn ping_through_an_unreachable_network_names_the_cause() {
    let Some(lan) = Lan::or_skip(2) else {
        return;
    };
    lan.reject_arriving(1, "host-unreachable")
        .expect("nftables rules");
    let to = format!("{}:9000", lan.addr(1));
    let mut ping = lan.dgram(
        0,
        &["ping", &to, "--count", "2", "--interval", "100", "--json"],
    );
    let status = ping.finish();
    if !has("icmp_errors") {
        return;
    }
    assert_eq!(status.code(), Some(1), "{}", ping.dump());
    let errors = ping.events("peer_error");
    assert!(!errors.is_empty(), "{}", ping.dump());
    assert!(errors.iter().all(|e| e["peer"] == to.as_str()));
    assert!(
        ping.stderr().contains(&format!(
            "the network reports \"No route to host\" for {to}"
        )),
        "{}",
        ping.dump()
    );
}
