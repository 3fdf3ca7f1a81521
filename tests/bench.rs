//! `dgram bench`: the accounting adds up exactly, whatever the receiver's
//! kernel drops, with and without GSO/GRO.

use nix::sys::signal::Signal;
use serde_json::Value;

use crate::util::Proc;

/// Checks the report's accounting: every datagram sent was received,
/// dropped by the receiver's kernel, or lost elsewhere, and on loopback
/// nothing is lost elsewhere; nothing was reordered, duplicated or
/// foreign.
///
/// The portable fallback cannot read the kernel's drop count: there the
/// drops are inside "lost elsewhere", the report says they were not
/// counted, and only the sum is checked.
fn assert_accounted(report: &Value) {
    assert_eq!(
        report["receiver"]["drops_counted"],
        !cfg!(feature = "portable"),
        "{report}"
    );
    let sent = report["sender"]["sent"].as_u64().unwrap();
    let received = report["receiver"]["received"].as_u64().unwrap();
    let dropped = report["dropped"].as_u64().unwrap();
    let lost = report["lost_elsewhere"].as_u64().unwrap();
    assert!(sent > 0, "{report}");
    assert_eq!(sent, received + dropped + lost, "{report}");
    if !cfg!(feature = "portable") {
        assert_eq!(lost, 0, "{report}");
    }
    for count in ["reordered", "duplicates", "foreign", "too_old", "truncated"] {
        assert_eq!(report["receiver"][count], 0, "{count}: {report}");
    }
}

/// A server stopped (SIGSTOP) in the middle of a run, with a small
/// SO_RCVBUF: its kernel drops what does not fit, and once it runs again
/// its report still accounts for every datagram exactly (sent = received +
/// dropped, nothing lost elsewhere), at both ends.
#[test]
fn bench_accounts_for_every_datagram_when_the_receiver_stops() {
    let mut server = Proc::dgram(&[
        "bench",
        "--serve",
        "127.0.0.1:0",
        "--rcvbuf",
        "4096",
        "--json",
    ]);
    let local = server.expect("bench_listening")["local"]
        .as_str()
        .unwrap()
        .to_string();
    let mut client = Proc::dgram(&["bench", &local, "--duration", "1", "--json"]);
    client.expect("bench_start");
    server.signal(Signal::SIGSTOP);
    // Sending goes on for its second while the server is stopped.
    client.next("bench_sent");
    server.signal(Signal::SIGCONT);
    let report = client.next("report");
    assert!(client.finish().success(), "{}", client.dump());
    assert_accounted(&report);
    let dropped = report["dropped"].as_u64().unwrap();
    let lost = report["lost_elsewhere"].as_u64().unwrap();
    assert!(
        dropped + lost > 0,
        "a stopped receiver with a 4 KiB buffer drops: {report}"
    );
    if !cfg!(feature = "portable") {
        assert!(dropped > 0, "counted as kernel drops: {report}");
    }
    assert!(
        report["receiver"]["received"].as_u64().unwrap() > 0,
        "{report}"
    );
    // The server counted the same run the same way.
    let served = server.next("report");
    assert_eq!(served["receiver"], report["receiver"], "{served}");
    assert_eq!(served["sender"], report["sender"], "{served}");
    server.kill();
}

/// With GSO and GRO (Linux), many datagrams travel per send and per
/// receive, yet the receiver splits them back at their boundaries: every
/// datagram is whole (its number read back: nothing foreign, truncated,
/// duplicated or reordered), and the accounting holds exactly, drops of
/// whole coalesced buffers included.
#[test]
fn bench_gso_gro_keeps_every_boundary() {
    for rcvbuf in ["4M", "64k"] {
        let mut run = Proc::dgram(&[
            "bench",
            "--loopback",
            "--gso",
            "--size",
            "1000",
            "--duration",
            "0.5",
            "--rcvbuf",
            rcvbuf,
            "--json",
        ]);
        let start = run.expect("bench_start");
        let report = run.next("report");
        assert!(run.finish().success(), "{}", run.dump());
        if cfg!(feature = "portable") {
            assert_eq!(start["segments"], 1, "{start}");
            assert_accounted(&report);
            continue;
        }
        assert_eq!(start["segments"], 64, "at most 64 per call: {start}");
        assert_eq!(report["gro"], true, "{report}");
        assert_accounted(&report);
        let received = report["receiver"]["received"].as_u64().unwrap();
        let calls = report["receiver"]["calls"].as_u64().unwrap();
        assert!(
            calls * 2 <= received,
            "coalesced: {calls} receive calls for {received} datagrams"
        );
    }
}

/// Without a server there, bench fails at once (status 1) and says how to
/// start one.
#[test]
fn bench_without_a_server_says_how_to_start_one() {
    let addr = crate::util::closed_port().to_string();
    let mut run = Proc::dgram(&["bench", &addr, "--duration", "0.2"]);
    assert_eq!(run.finish().code(), Some(1), "{}", run.dump());
    let err = run.stderr();
    assert!(
        err.contains("could not reach a dgram bench server"),
        "{err}"
    );
    assert!(
        err.contains(&format!("dgram bench --serve {addr}")),
        "{err}"
    );
}

/// A flood of foreign datagrams (another socket's, not the run's) at a
/// stopped server with a small buffer: the kernel drops most of them, and
/// it counts drops per socket, not per sender. The report does not count
/// those drops against the run: what was lost elsewhere is unknown (null),
/// no count is negative, the run's datagrams not received are `sent −
/// received`, and the foreign ones that got through are counted apart.
#[test]
fn bench_foreign_flood_makes_no_negative_loss() {
    let mut server = Proc::dgram(&[
        "bench",
        "--serve",
        "127.0.0.1:0",
        "--rcvbuf",
        "4096",
        "--json",
    ]);
    let local: std::net::SocketAddr = server.expect("bench_listening")["local"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let mut client = Proc::dgram(&[
        "bench",
        &local.to_string(),
        "--duration",
        "1",
        "--rate",
        "500",
        "--json",
    ]);
    client.expect("bench_start");
    server.expect("run_start");
    let flood = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    // Some foreign datagrams reach the running server…
    for _ in 0..20 {
        flood.send_to(b"not a bench datagram", local).unwrap();
    }
    server.signal(Signal::SIGSTOP);
    // …and thousands more reach it stopped: its kernel drops them.
    for _ in 0..4000 {
        flood.send_to(b"not a bench datagram", local).unwrap();
    }
    client.next("bench_sent");
    server.signal(Signal::SIGCONT);
    let report = client.next("report");
    assert!(client.finish().success(), "{}", client.dump());
    let sent = report["sender"]["sent"].as_u64().unwrap();
    let received = report["receiver"]["received"].as_u64().unwrap();
    assert!(
        report["lost_elsewhere"].is_null() || report["lost_elsewhere"].is_u64(),
        "never negative: {report}"
    );
    assert_eq!(report["not_received"], sent - received, "{report}");
    assert!(
        report["receiver"]["foreign"].as_u64().unwrap() > 0,
        "{report}"
    );
    if !cfg!(feature = "portable") {
        assert!(report["dropped"].as_u64().unwrap() > 0, "{report}");
        assert!(report["lost_elsewhere"].is_null(), "{report}");
    }
    server.kill();
}
