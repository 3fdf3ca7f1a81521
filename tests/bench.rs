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

/// SIGTERM to `bench --serve` in the middle of a run whose client keeps
/// asking for counts: the server ends within a second (it once waited out
/// the 10 s control timeout for an answer its stopped loop would never
/// give), closes the run's line with why it ended, and names the run
/// ("run from …") once.
#[test]
fn bench_server_stops_at_once_on_sigterm_and_closes_the_run() {
    use std::io::{BufRead, BufReader, Write};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    let mut server = Proc::dgram(&["bench", "--serve", "127.0.0.1:0"]);
    server.wait_stdout_contains("bench server on ");
    let local = server
        .stdout()
        .split_whitespace()
        .nth(3)
        .unwrap()
        .to_string();
    // A client of the control protocol: a run begins, then it asks for
    // counts every 5 ms without waiting for the answers.
    let control = std::net::TcpStream::connect(&local).unwrap();
    control
        .set_read_timeout(Some(crate::util::DEADLINE))
        .unwrap();
    let mut writer = control.try_clone().unwrap();
    writer
        .write_all(b"{\"type\":\"hello\",\"version\":1,\"run\":1,\"size\":64,\"segments\":1,\"gro\":false}\n")
        .unwrap();
    let mut ready = String::new();
    BufReader::new(control).read_line(&mut ready).unwrap();
    assert!(ready.contains("ready"), "{ready}");
    let asked = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&asked);
    let asking = std::thread::spawn(move || {
        for _ in 0..4000 {
            if writer.write_all(b"{\"type\":\"stats\"}\n").is_err() {
                return;
            }
            counter.fetch_add(1, Ordering::Relaxed);
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    });
    crate::util::wait_for(
        "the client's requests",
        || server.dump(),
        || (asked.load(Ordering::Relaxed) >= 20).then_some(()),
    );
    let signalled = std::time::Instant::now();
    server.signal(Signal::SIGTERM);
    server.finish();
    let took = signalled.elapsed();
    assert!(
        took < std::time::Duration::from_secs(1),
        "took {took:?}\n{}",
        server.dump()
    );
    let out = server.stdout();
    assert_eq!(out.matches("run from").count(), 1, "{}", server.dump());
    assert!(
        out.contains("cut short: the server was stopped (SIGTERM)"),
        "{}",
        server.dump()
    );
    assert!(out.ends_with('\n'), "{}", server.dump());
    asking.join().unwrap();
}

/// One run at `bench --serve`, to its report: the run is named once, at
/// its start, and its report follows.
#[test]
fn bench_server_names_each_run_once() {
    let mut server = Proc::dgram(&["bench", "--serve", "127.0.0.1:0"]);
    server.wait_stdout_contains("bench server on ");
    let local = server
        .stdout()
        .split_whitespace()
        .nth(3)
        .unwrap()
        .to_string();
    let mut client = Proc::dgram(&["bench", &local, "--duration", "0.2"]);
    assert!(client.finish().success(), "{}", client.dump());
    server.wait_stdout_contains("accounting: ");
    let out = server.stdout();
    assert_eq!(out.matches("run from").count(), 1, "{}", server.dump());
    assert!(
        out.contains("\nreport: 64 B datagrams"),
        "{}",
        server.dump()
    );
    server.kill();
}

/// Ctrl-C a second into `--duration 3`: the report says the run was cut
/// short, how long it really sent, and what was asked.
#[test]
fn bench_ctrl_c_says_the_run_was_cut_short() {
    let mut run = Proc::dgram(&["bench", "--loopback", "--duration", "3", "--rate", "1000"]);
    run.wait_stdout_contains(" s  sent ");
    run.signal(Signal::SIGINT);
    run.finish();
    let out = run.stdout();
    let header = out
        .lines()
        .find(|l| l.starts_with("bench to ") && l.contains(", sent for "))
        .unwrap_or_else(|| panic!("no report\n{}", run.dump()));
    assert!(
        header.contains("(cut short before the 3.00 s asked)"),
        "{header}\n{}",
        run.dump()
    );
    assert!(!header.contains("sent for 3.00 s"), "{header}");
    let mut json = Proc::dgram(&[
        "bench",
        "--loopback",
        "--duration",
        "3",
        "--rate",
        "1000",
        "--json",
    ]);
    json.next("interval");
    json.signal(Signal::SIGINT);
    let report = json.next("report");
    json.finish();
    assert_eq!(report["sender"]["cut_short"], true, "{report}");
    assert_eq!(report["sender"]["asked_us"], 3_000_000, "{report}");
    assert!(
        report["sender"]["active_us"].as_u64().unwrap() < 3_000_000,
        "{report}"
    );
}

/// `--rate R --duration D` sends exactly R × D datagrams (it sent one
/// more, due at the very end).
#[test]
fn bench_rate_sends_rate_times_duration() {
    let mut run = Proc::dgram(&[
        "bench",
        "--loopback",
        "--rate",
        "1k",
        "--duration",
        "0.5",
        "--json",
    ]);
    let report = run.next("report");
    assert!(run.finish().success(), "{}", run.dump());
    assert_eq!(report["sender"]["sent"], 500, "{report}");
    assert_eq!(report["sender"]["cut_short"], false, "{report}");
}

/// Runs `dgram ARGS` under `ulimit LIMIT` (a shell's), and returns it
/// finished.
fn under_ulimit(limit: &str, args: &[&str]) -> Proc {
    let script = format!("ulimit {limit} && exec \"$0\" \"$@\"");
    let mut all = vec!["-c", script.as_str(), crate::util::dgram_path()];
    all.extend_from_slice(args);
    let mut proc = Proc::spawn("sh", &all);
    proc.finish();
    proc
}

/// Out of file descriptors (`ulimit -n`), `bench --loopback` fails saying
/// so: not that the port is busy, nor that no server runs, nor that the
/// server stopped.
#[test]
fn bench_out_of_file_descriptors_says_so() {
    let mut failed = 0;
    for n in 6..=9 {
        let limit = format!("-n {n}");
        let run = under_ulimit(&limit, &["bench", "--loopback", "--duration", "0.1"]);
        if run.finish_ok() {
            continue;
        }
        failed += 1;
        let err = run.stderr();
        assert!(err.contains("out of file descriptors"), "{}", run.dump());
        assert!(err.contains("ulimit -n"), "{}", run.dump());
        for wrong in [
            "pick another port",
            "start one there",
            "server may have stopped",
        ] {
            assert!(!err.contains(wrong), "{wrong}: {}", run.dump());
        }
    }
    assert!(failed > 0, "some of these limits must be too low");
}

/// Out of memory (`ulimit -v`), `bench --loopback` fails saying so: not
/// that the server stopped.
///
/// Below some limit the program cannot even start, and only dgram's own
/// errors are judged. Near it, the standard library itself can fail: a
/// new thread that cannot map its signal stack panics, the panic cannot
/// allocate, and (seen once in a few dozen runs at 19,000 KiB) the
/// process then hangs in the standard library's out-of-memory path
/// instead of aborting. Such a run is stopped after 10 s and not judged.
#[test]
fn bench_out_of_memory_says_so() {
    let mut failed = 0;
    for kib in (10_000..=30_000).step_by(1000) {
        let script = format!("ulimit -v {kib} && exec \"$0\" \"$@\"");
        let mut run = Proc::spawn(
            "sh",
            &[
                "-c",
                &script,
                crate::util::dgram_path(),
                "bench",
                "--loopback",
                "--duration",
                "0.1",
            ],
        );
        if run
            .exit_within(std::time::Duration::from_secs(10))
            .is_none()
            || run.finish_ok()
            || !run.stderr().starts_with("error: ")
        {
            continue;
        }
        failed += 1;
        let err = run.stderr();
        assert!(err.contains("out of memory"), "{}", run.dump());
        assert!(!err.contains("server may have stopped"), "{}", run.dump());
    }
    assert!(failed > 0, "some of these limits must be too low");
}

/// Another program on the bench address's TCP port (a web server here)
/// is named as not a bench server, with the port it holds, instead of
/// the serde message "expected value at line 1 column 1"; one that
/// accepts and says nothing is a timeout said in words, not "Resource
/// temporarily unavailable". Both exit 1.
#[test]
fn a_program_that_is_not_a_bench_server_is_named() {
    use std::io::Write;
    use std::net::TcpListener;
    use std::time::Duration;

    for answer in [&b"HTTP/1.0 200 OK\r\n\r\n"[..], b""] {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            conn.write_all(answer).unwrap();
            // Hold the connection (reading the hello) until the client
            // gives up and closes it.
            conn.set_read_timeout(Some(Duration::from_secs(20)))
                .unwrap();
            let _ = std::io::Read::read_to_end(&mut conn, &mut Vec::new());
        });
        let mut bench = Proc::dgram(&["bench", &addr.to_string(), "--duration", "0.1"]);
        bench.close_stdin();
        assert_eq!(
            bench.finish_within(Duration::from_secs(20)).code(),
            Some(1),
            "{}",
            bench.dump()
        );
        let stderr = bench.stderr();
        if answer.is_empty() {
            assert!(
                stderr.contains("failed: no answer within 10 s")
                    && !stderr.contains("temporarily unavailable"),
                "{}",
                bench.dump()
            );
        } else {
            assert!(
                stderr.contains(&format!("error: {addr} is not a dgram bench server"))
                    && stderr.contains(&format!("another program holds TCP port {}", addr.port()))
                    && !stderr.contains("line 1 column"),
                "{}",
                bench.dump()
            );
        }
        drop(bench);
        server.join().unwrap();
    }
}
