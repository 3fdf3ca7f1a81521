//! `--pcap FILE`: tshark reads every capture these tests make with no
//! error, and what it finds (how many datagrams, from where, how long)
//! equals what the same run's `--json` events say, for listen, send, chat
//! (plain and keyed), ping and bench; truncated datagrams keep their true
//! length; IPv6 works on `::1`.
//!
//! The tests need tshark (`scripts/setup-test-deps.sh` installs it);
//! without it each prints one SKIPPED line, and fails under `CI=true`.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::util::{Proc, listener, stop, temp_path};

/// One datagram as tshark decoded it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Row {
    /// `frame.len`: the packet's length on the wire (IP header included).
    wire: usize,
    /// `frame.cap_len`: the bytes the record holds.
    captured: usize,
    /// The source address (IPv4 or IPv6).
    src: String,
    /// The destination address.
    dst: String,
    /// `udp.srcport`.
    sport: u16,
    /// `udp.dstport`.
    dport: u16,
    /// `udp.length` less the UDP header: the payload's true length.
    len: usize,
}

/// True when tshark is here; otherwise says SKIPPED (and fails under
/// `CI=true`, where scripts/setup-test-deps.sh has run).
fn have_tshark(test: &str) -> bool {
    if crate::util::have("tshark") {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "tshark is missing under CI: scripts/setup-test-deps.sh installs it"
    );
    println!("SKIPPED {test}: tshark is missing (scripts/setup-test-deps.sh installs it)");
    false
}

/// Reads `path` with tshark: it must exit 0 with nothing on stderr but
/// its warning about running as root; returns every datagram in order.
fn tshark(path: &Path) -> Vec<Row> {
    let fields = [
        "frame.len",
        "frame.cap_len",
        "ip.src",
        "ipv6.src",
        "ip.dst",
        "ipv6.dst",
        "udp.srcport",
        "udp.dstport",
        "udp.length",
    ];
    let mut command = Command::new("tshark");
    command.arg("-r").arg(path).args(["-T", "fields"]);
    for field in fields {
        command.args(["-e", field]);
    }
    let output = command.output().expect("tshark runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let complaints: Vec<&str> = stderr
        .lines()
        .filter(|line| !line.starts_with("Running as user \"root\""))
        .filter(|line| !line.trim().is_empty())
        .collect();
    assert!(
        output.status.success() && complaints.is_empty(),
        "tshark -r {}: {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        path.display(),
        output.status
    );
    stdout
        .lines()
        .map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            assert_eq!(f.len(), fields.len(), "{line:?}");
            let number = |i: usize| -> usize {
                f[i].parse()
                    .unwrap_or_else(|_| panic!("field {} in {line:?}", fields[i]))
            };
            let either = |a: &str, b: &str| if a.is_empty() { b } else { a }.to_string();
            Row {
                wire: number(0),
                captured: number(1),
                src: either(f[2], f[3]),
                dst: either(f[4], f[5]),
                sport: number(6) as u16,
                dport: number(7) as u16,
                len: number(8) - 8,
            }
        })
        .collect()
}

/// The port of an address in an event (`"127.0.0.1:4000"`).
fn port(event: &Value, field: &str) -> u16 {
    let text = event[field].as_str().expect("an address");
    text.rsplit(':').next().unwrap().parse().unwrap()
}

/// A number in an event.
fn num(event: &Value, field: &str) -> usize {
    event[field]
        .as_u64()
        .unwrap_or_else(|| panic!("no {field} in {event}")) as usize
}

/// The payload lengths of the rows sent from `port`, and of the rest.
fn split(rows: &[Row], port: u16) -> (Vec<usize>, Vec<usize>) {
    let sent = rows.iter().filter(|r| r.sport == port).map(|r| r.len);
    let received = rows.iter().filter(|r| r.sport != port).map(|r| r.len);
    (sent.collect(), received.collect())
}

/// The lengths of a process's `sent` events, in order.
fn sent_lengths(proc: &Proc) -> Vec<usize> {
    proc.events("sent").iter().map(|e| num(e, "len")).collect()
}

/// Checks one side of a run: the datagrams it sent are its `sent` events
/// (same lengths, same order), and the ones it received add up to its
/// summary's `received` and `bytes`.
fn check_side(name: &str, proc: &Proc, summary: &Value, rows: &[Row], port: u16) {
    let (sent, received) = split(rows, port);
    assert_eq!(
        sent,
        sent_lengths(proc),
        "{name}: datagrams sent in the capture vs sent events\n{}",
        proc.dump()
    );
    assert_eq!(
        (received.len(), received.iter().sum::<usize>()),
        (num(summary, "received"), num(summary, "bytes")),
        "{name}: datagrams received in the capture vs the summary\n{}",
        proc.dump()
    );
}

/// `listen` and `send` (text twice, then an empty datagram): the
/// listener's capture holds each datagram its `datagram` events show, in
/// order, from the sender's port and to its own, with kernel-timestamped
/// records; each sender's capture holds what its `sent` events say, from
/// 127.0.0.1 (its wildcard bind resolved), and its summary's count.
#[test]
fn listen_and_send_captures_equal_their_events() {
    if !have_tshark("listen_and_send_captures_equal_their_events") {
        return;
    }
    let listen_pcap = temp_path("listen.pcap");
    let send_pcap = temp_path("send.pcap");
    let empty_pcap = temp_path("empty.pcap");
    let (mut listen, addr) = listener(&["--pcap", listen_pcap.to_str().unwrap()]);
    let target = addr.to_string();
    let mut sends = Vec::new();
    for (args, pcap) in [
        (&["hello", "--count", "2"][..], &send_pcap),
        (&["--empty"][..], &empty_pcap),
    ] {
        let mut line = vec!["send", &target, "--json", "--pcap", pcap.to_str().unwrap()];
        line.extend_from_slice(args);
        let send = crate::util::run(&line);
        assert!(send.finish_ok(), "{}", send.dump());
        let rows = tshark(pcap);
        let from = port(&send.first_event("listening"), "local");
        assert_eq!(split(&rows, from).0, sent_lengths(&send), "{}", send.dump());
        assert_eq!(rows.len(), num(&send.first_event("summary"), "sent"));
        for row in &rows {
            assert_eq!(
                (row.src.as_str(), row.dst.as_str()),
                ("127.0.0.1", "127.0.0.1")
            );
            assert_eq!((row.sport, row.dport), (from, addr.port()));
        }
        sends.push(from);
    }
    for _ in 0..3 {
        listen.next("datagram");
    }
    let summary = stop(&mut listen);
    let rows = tshark(&listen_pcap);
    let datagrams = listen.events("datagram");
    assert_eq!(rows.len(), datagrams.len(), "{}", listen.dump());
    for (row, event) in rows.iter().zip(&datagrams) {
        assert_eq!(row.len, num(event, "len"));
        assert_eq!(row.sport, port(event, "from"));
        assert_eq!(row.dport, addr.port());
    }
    assert_eq!(
        rows.iter().map(|r| r.sport).collect::<Vec<_>>(),
        [sends[0], sends[0], sends[1]]
    );
    check_side("listen", &listen, &summary, &rows, addr.port());
}

/// Runs a piped chat with two lines against a listener, both with
/// `--pcap` and `--json` and `extra` options, and checks both captures
/// against both sides' events; returns the listener's `control` events.
fn chat_against_listener(name: &str, extra: &[&str]) -> Vec<Value> {
    let listen_pcap = temp_path(&format!("{name}-listen.pcap"));
    let chat_pcap = temp_path(&format!("{name}-chat.pcap"));
    let mut args = vec!["--pcap", listen_pcap.to_str().unwrap()];
    args.extend_from_slice(extra);
    let (mut listen, addr) = listener(&args);
    let target = addr.to_string();
    let mut line = vec![
        "chat",
        "--peer",
        &target,
        "--json",
        "--linger",
        "0",
        "--no-history",
        "--pcap",
        chat_pcap.to_str().unwrap(),
    ];
    line.extend_from_slice(extra);
    let mut chat = Proc::dgram(&line);
    chat.write_line("hello");
    chat.write_line("second line");
    chat.close_stdin();
    let status = chat.finish();
    assert!(status.success(), "{}", chat.dump());
    assert_eq!(chat.events("receipt").len(), 2, "{}", chat.dump());
    let summary = stop(&mut listen);
    assert_eq!(num(&summary, "messages"), 2, "{}", listen.dump());

    let chat_port = port(&chat.first_event("listening"), "local");
    let rows = tshark(&chat_pcap);
    check_side(name, &chat, &chat.first_event("summary"), &rows, chat_port);
    let rows = tshark(&listen_pcap);
    check_side(name, &listen, &summary, &rows, addr.port());
    // Every datagram of the chat is between these two ports.
    assert!(
        rows.iter()
            .all(|r| [r.sport, r.dport] == [chat_port, addr.port()]
                || [r.dport, r.sport] == [chat_port, addr.port()]),
        "{rows:?}"
    );
    listen.events("control")
}

/// A plain chat: its messages and the listener's receipts are in both
/// captures, as many and as long as both sides' events say.
#[test]
fn a_chat_capture_equals_its_events() {
    if !have_tshark("a_chat_capture_equals_its_events") {
        return;
    }
    chat_against_listener("plain", &[]);
}

/// A keyed chat (`--key-file`): the handshake's datagrams and the sealed
/// messages and receipts are in both captures, as many and as long as
/// both sides' events say.
#[test]
fn a_keyed_chat_capture_equals_its_events() {
    if !have_tshark("a_keyed_chat_capture_equals_its_events") {
        return;
    }
    let key = crate::util::keygen("pcap.key");
    let controls = chat_against_listener("keyed", &["--key-file", key.to_str().unwrap()]);
    assert!(!controls.is_empty(), "the handshake was seen");
}

/// `ping` against `listen --echo`: ping's capture holds as many probes as
/// its summary says were sent, each of the probe size, and a reply for
/// each `reply` event; the echo's capture holds its `datagram` and `sent`
/// events.
#[test]
fn a_ping_capture_equals_its_events() {
    if !have_tshark("a_ping_capture_equals_its_events") {
        return;
    }
    let listen_pcap = temp_path("echo.pcap");
    let ping_pcap = temp_path("ping.pcap");
    let (mut listen, addr) = listener(&["--echo", "--pcap", listen_pcap.to_str().unwrap()]);
    let ping = crate::util::run(&[
        "ping",
        &addr.to_string(),
        "-c",
        "4",
        "-i",
        "5",
        "-s",
        "100",
        // However slow the machine, every reply is a reply, not a loss.
        "-W",
        "5000",
        "--json",
        "--pcap",
        ping_pcap.to_str().unwrap(),
    ]);
    assert!(ping.finish_ok(), "{}", ping.dump());
    let from = port(&ping.first_event("ping_start"), "local");
    let summary = ping.first_event("ping_summary");
    let (sent, received) = split(&tshark(&ping_pcap), from);
    assert_eq!(sent, vec![100; num(&summary, "sent")], "{}", ping.dump());
    let replies: Vec<usize> = ping.events("reply").iter().map(|e| num(e, "len")).collect();
    assert_eq!(received, replies, "{}", ping.dump());
    assert_eq!(replies.len(), 4);

    let summary = stop(&mut listen);
    let rows = tshark(&listen_pcap);
    check_side("echo", &listen, &summary, &rows, addr.port());
    assert_eq!(rows.len(), 8);
}

/// `bench --loopback`: both ends are in the process, so the capture holds
/// every datagram as sent and again as received: as many as the report's
/// sender sent plus its receiver received, each of the bench size. With
/// `--gso` (where the kernel has it) the coalesced sends and receives are
/// recorded as the datagrams they were. Its start says, in a notice, the
/// bytes each datagram takes in the file, and the file's size agrees.
#[test]
fn a_bench_capture_equals_its_report() {
    if !have_tshark("a_bench_capture_equals_its_report") {
        return;
    }
    for (name, extra) in [("bench", &[][..]), ("gso", &["--gso", "-s", "1200"][..])] {
        let pcap = temp_path(&format!("{name}.pcap"));
        let mut args = vec![
            "bench",
            "--loopback",
            "--json",
            "-t",
            "0.2",
            "--pcap",
            pcap.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let bench = crate::util::run(&args);
        assert!(bench.finish_ok(), "{}", bench.dump());
        let report = bench.first_event("report");
        let size = num(&report, "size");
        let sent = num(&report["sender"], "sent");
        let received = num(&report["receiver"], "received");
        let rows = tshark(&pcap);
        assert_eq!(rows.len(), sent + received, "{name}: {report}");
        assert!(rows.iter().all(|r| r.len == size), "{name}: {report}");
        let to = rows[0].dport;
        assert_eq!(rows.iter().filter(|r| r.dport == to).count(), rows.len());
        // The notice at the start says what each datagram costs in the
        // file, and the file agrees: 24 bytes of header, then that much
        // per record.
        let notices = bench.first_event("bench_start")["notices"].to_string();
        let each = 16 + 20 + 8 + size;
        assert!(
            notices.contains(&format!("--pcap records every datagram, {each} B each")),
            "{name}: {notices}"
        );
        let file = std::fs::metadata(&pcap).unwrap().len() as usize;
        assert_eq!(file, 24 + rows.len() * each, "{name}");
    }
}

/// The expert items tshark raises on `path` with every checksum check on
/// (`_ws.expert.severity`, one line per record): empty when no tool would
/// flag a record as wrong.
fn expert_severities(path: &Path) -> Vec<String> {
    let output = Command::new("tshark")
        .arg("-r")
        .arg(path)
        .args([
            "-o",
            "udp.check_checksum:TRUE",
            "-o",
            "ip.check_checksum:TRUE",
        ])
        .args(["-T", "fields", "-e", "_ws.expert.severity"])
        .output()
        .expect("tshark runs");
    assert!(output.status.success(), "tshark -r {}", path.display());
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(str::to_string)
        .collect()
}

/// A datagram cut short by `--max-size`, over IPv4 and IPv6: its record
/// holds what was received (the captured length), says the true length as
/// the original length, and its IP and UDP length fields say the true
/// length too, as the `datagram` event's `len` and `original_len` do; and
/// tshark, checking checksums, raises no expert item on it (a UDP
/// checksum of 0 is illegal over IPv6, RFC 8200 8.1).
#[test]
fn a_truncated_datagram_keeps_its_true_length() {
    if !have_tshark("a_truncated_datagram_keeps_its_true_length") {
        return;
    }
    for (bind, ip_len) in [("127.0.0.1:0", 20), ("[::1]:0", 40)] {
        let pcap = temp_path("truncated.pcap");
        let mut listen = Proc::dgram(&[
            "listen",
            bind,
            "--json",
            "--max-size",
            "10",
            "--pcap",
            pcap.to_str().unwrap(),
        ]);
        let addr = listen.expect("listening")["local"]
            .as_str()
            .unwrap()
            .to_string();
        let send = crate::util::run(&["send", &addr, "--size", "100"]);
        assert!(send.finish_ok(), "{}", send.dump());
        let event = listen.next("datagram");
        stop(&mut listen);
        let rows = tshark(&pcap);
        assert_eq!(rows.len(), 1, "{bind}: {rows:?}");
        assert_eq!(num(&event, "len"), 10);
        if event["truncated"] == true && event["original_len"].is_u64() {
            assert_eq!(rows[0].len, num(&event, "original_len"));
            assert_eq!(rows[0].wire, ip_len + 8 + 100);
        }
        assert_eq!(rows[0].captured, ip_len + 8 + 10);
        assert_eq!(
            expert_severities(&pcap),
            Vec::<String>::new(),
            "{bind}: tshark's expert items on the truncated record"
        );
    }
}

/// The file keeps up with the screen: a listener that has received one
/// datagram and then hears nothing more has it in the file within a few
/// seconds (tshark reads it while the listener, which has no `--count`,
/// still runs: it ends at the SIGTERM after), not only when another
/// datagram comes or the command ends.
#[test]
fn a_quiet_listeners_capture_is_current() {
    if !have_tshark("a_quiet_listeners_capture_is_current") {
        return;
    }
    let pcap = temp_path("current.pcap");
    let (mut listen, addr) = listener(&["--pcap", pcap.to_str().unwrap()]);
    let send = crate::util::run(&["send", &addr.to_string(), "only one"]);
    assert!(send.finish_ok(), "{}", send.dump());
    listen.next("datagram");
    let start = std::time::Instant::now();
    let limit = std::time::Duration::from_secs(5);
    let rows = loop {
        let rows = tshark(&pcap);
        if !rows.is_empty() || start.elapsed() > limit {
            break rows;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert_eq!(
        rows.len(),
        1,
        "after {:?} the capture of a listener still running holds {rows:?}\n{}",
        start.elapsed(),
        listen.dump()
    );
    assert_eq!(rows[0].len, "only one".len());
    stop(&mut listen);
}

/// IPv6 on `::1`: the records are IPv6 packets between `::1` and `::1`
/// with the ports and lengths of the events.
#[test]
fn an_ipv6_capture_is_ipv6() {
    if !have_tshark("an_ipv6_capture_is_ipv6") {
        return;
    }
    let listen_pcap = temp_path("v6-listen.pcap");
    let send_pcap = temp_path("v6-send.pcap");
    let mut listen = Proc::dgram(&[
        "listen",
        "[::1]:0",
        "--json",
        "--pcap",
        listen_pcap.to_str().unwrap(),
    ]);
    let local = listen.expect("listening")["local"]
        .as_str()
        .unwrap()
        .to_string();
    let send = crate::util::run(&[
        "send",
        &local,
        "over six",
        "--json",
        "--pcap",
        send_pcap.to_str().unwrap(),
    ]);
    assert!(send.finish_ok(), "{}", send.dump());
    let event = listen.next("datagram");
    stop(&mut listen);
    for pcap in [&listen_pcap, &send_pcap] {
        let rows = tshark(pcap);
        assert_eq!(rows.len(), 1, "{rows:?}");
        let row = &rows[0];
        assert_eq!((row.src.as_str(), row.dst.as_str()), ("::1", "::1"));
        assert_eq!(row.len, num(&event, "len"));
        assert_eq!(row.wire, 40 + 8 + 8);
        assert_eq!(row.sport, port(&event, "from"));
    }
}

/// What docs/pcap.md says `--pcap` refuses is refused as a usage error
/// (exit 2) named after the capture, before anything is sent: `-`, a path
/// in a missing directory, a FIFO, a directory, a symbolic link to
/// nothing, and a device other than the null device (`/dev/full`).
#[test]
fn unusable_capture_paths_are_refused() {
    let dir = temp_path("refused").parent().unwrap().to_path_buf();
    let missing = dir.join("nowhere").join("x.pcap");
    let fifo = dir.join("fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success(), "mkfifo {}", fifo.display());
    let dangling = dir.join("dangling");
    std::os::unix::fs::symlink(dir.join("absent"), &dangling).unwrap();
    let paths = [
        "-",
        missing.to_str().unwrap(),
        fifo.to_str().unwrap(),
        dir.to_str().unwrap(),
        dangling.to_str().unwrap(),
        "/dev/full",
    ];
    for path in paths {
        let send = crate::util::run(&["send", "127.0.0.1:9", "x", "--pcap", path]);
        assert_eq!(send.code(), Some(2), "{path}: {}", send.dump());
        assert!(
            send.stderr().contains("cannot write the capture"),
            "{path}: {}",
            send.dump()
        );
        assert!(!send.stdout().contains("sent"), "{path}: {}", send.dump());
    }
}

/// The null device is accepted, as docs/pcap.md says (the cost
/// measurement of docs/PERFORMANCE.md records into it), under its name
/// and through a symbolic link: the send goes out and ends well.
#[test]
fn the_null_device_is_an_accepted_capture() {
    let link = temp_path("null.pcap");
    std::os::unix::fs::symlink("/dev/null", &link).unwrap();
    for path in ["/dev/null", link.to_str().unwrap()] {
        let (mut listen, addr) = listener(&[]);
        let send = crate::util::run(&["send", &addr.to_string(), "x", "--pcap", path]);
        assert!(send.finish_ok(), "{path}: {}", send.dump());
        listen.next("datagram");
        stop(&mut listen);
    }
}

/// `chat --via`: the search's datagrams (STUN and the registration to the
/// rendezvous, the path probes) are in the capture with the chat's own,
/// tshark reads it with no error (and knows the STUN requests), every
/// `sent` event of the chat is a record from its socket to its peer, and
/// the records add up exactly to the search's `path_traffic` counts plus
/// the chat's `sent` events and its summary's received datagrams and bytes.
#[test]
fn a_chat_via_capture_holds_the_search() {
    if !have_tshark("a_chat_via_capture_holds_the_search") {
        return;
    }
    let mut service = Proc::dgram(&["rendezvous", "--json", "127.0.0.1:0"]);
    let at = service.expect("rendezvous_start")["local"]
        .as_str()
        .unwrap()
        .to_string();
    let rendezvous_port: u16 = at.rsplit(':').next().unwrap().parse().unwrap();
    let code = "7-clockwork-crossover-ragtime";
    let mut sides = Vec::new();
    for name in ["ann", "bob"] {
        let pcap = temp_path(&format!("via-{name}.pcap"));
        let mut chat = Proc::dgram(&[
            "chat",
            "--json",
            "--via",
            &at,
            "--code",
            code,
            "--name",
            name,
            "--linger",
            "1500",
            "--no-history",
            "--pcap",
            pcap.to_str().unwrap(),
        ]);
        chat.write_line(&format!("from {name}"));
        chat.close_stdin();
        if name == "ann" {
            chat.next("rendezvous_waiting");
        }
        sides.push((chat, pcap));
    }
    for (chat, pcap) in &mut sides {
        assert!(chat.finish().success(), "{}", chat.dump());
        let found = chat.first_event("path_found");
        let peer_port = port(&found, "peer");
        let own = port(&chat.first_event("listening"), "local");
        let rows = tshark(pcap);
        assert!(
            rows.iter()
                .any(|r| r.sport == own && r.dport == rendezvous_port),
            "the registration and STUN to the rendezvous: {rows:?}"
        );
        let mut to_peer: Vec<usize> = rows
            .iter()
            .filter(|r| r.sport == own && r.dport == peer_port)
            .map(|r| r.len)
            .collect();
        for len in sent_lengths(chat) {
            let at = to_peer.iter().position(|&l| l == len);
            assert!(at.is_some(), "a sent event of {len} bytes has no record");
            to_peer.remove(at.unwrap());
        }
        assert_eq!(chat.events("receipt").len(), 1, "{}", chat.dump());
        // Exactly: the capture is the search's traffic (path_traffic),
        // then the chat's (its sent events, its summary's received).
        let search = chat.first_event("path_traffic");
        let summary = chat.first_event("summary");
        let (sent, received) = split(&rows, own);
        let sent_events = sent_lengths(chat);
        assert_eq!(
            (sent.len(), sent.iter().sum::<usize>()),
            (
                num(&search, "sent") + sent_events.len(),
                num(&search, "sent_bytes") + sent_events.iter().sum::<usize>()
            ),
            "datagrams sent in the capture vs path_traffic and sent events\n{}",
            chat.dump()
        );
        assert_eq!(
            (received.len(), received.iter().sum::<usize>()),
            (
                num(&search, "received") + num(&summary, "received"),
                num(&search, "received_bytes") + num(&summary, "bytes")
            ),
            "datagrams received in the capture vs path_traffic and the summary\n{}",
            chat.dump()
        );
    }
    service.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(service.next("rendezvous_summary")["pairings"], 1);
    service.finish();
}

/// Two group members on `lo` (multicast to a group, receipts to each
/// other): each capture holds the datagrams the member's `sent` events
/// say, to the group's address or the other member, and the ones its
/// summary counts as received; the kernel's loopback of the member's own
/// multicast is not recorded a second time.
#[test]
fn a_group_members_capture_equals_its_events() {
    if !have_tshark("a_group_members_capture_equals_its_events") {
        return;
    }
    let group = format!("239.77.0.1:{}", crate::util::closed_port().port());
    let member = |name: &str, pcap: &Path| {
        let mut proc = Proc::dgram(&[
            "chat",
            "--group",
            &group,
            "--iface",
            "lo",
            "--bind",
            "127.0.0.1:0",
            "--name",
            name,
            "--json",
            "--no-history",
            "--linger",
            "1000",
            "--hello",
            "300",
            "--pcap",
            pcap.to_str().unwrap(),
        ]);
        let own = port(&proc.expect("listening"), "local");
        proc.next("joined");
        (proc, own)
    };
    let (ann_pcap, bob_pcap) = (temp_path("group-ann.pcap"), temp_path("group-bob.pcap"));
    let (mut bob, bob_port) = member("bob", &bob_pcap);
    let (mut ann, ann_port) = member("ann", &ann_pcap);
    crate::util::wait_for(
        "ann to meet bob",
        || ann.dump(),
        || {
            ann.events("member")
                .iter()
                .any(|m| m["name"] == "bob")
                .then_some(())
        },
    );
    ann.write_line("to the group");
    ann.close_stdin();
    assert!(ann.finish().success(), "{}", ann.dump());
    assert_eq!(ann.events("receipt").len(), 1, "{}", ann.dump());
    bob.close_stdin();
    assert!(bob.finish().success(), "{}", bob.dump());
    let group_port: u16 = group.rsplit(':').next().unwrap().parse().unwrap();
    for (proc, pcap, own) in [(&ann, &ann_pcap, ann_port), (&bob, &bob_pcap, bob_port)] {
        let rows = tshark(pcap);
        check_side("group", proc, &proc.first_event("summary"), &rows, own);
        assert!(
            rows.iter()
                .any(|r| r.sport == own && r.dst == "239.77.0.1" && r.dport == group_port),
            "{rows:?}"
        );
    }
}
