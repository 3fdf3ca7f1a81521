//! The experiments of `dgram lab`: each states a claim of the classic
//! socket course, predicts, measures on loopback with sockets of its own,
//! and gives a verdict with the evidence ([`LabReport`]).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::time::Duration;

use crate::Error;
use crate::model::lab::{LabReport, Table, Verdict};
use crate::net::endpoint::{Endpoint, SocketOptions};
use crate::net::limits::{MAX_PAYLOAD_V4, MAX_PAYLOAD_V6};
use crate::net::sys::Scratch;
use crate::runtime::Shutdown;
use crate::runtime::sorting::{Class, classify};

/// How long a read in an experiment waits for what must already be queued
/// (loopback delivers within microseconds; this only bounds a failure).
const WAIT: Duration = Duration::from_secs(2);

/// An experiment: its name, what it does, and the function that runs it.
pub struct Experiment {
    /// Its name on the command line.
    pub name: &'static str,
    /// What it shows, in one line.
    pub what: &'static str,
    /// Runs it.
    pub run: Run,
}

/// How an experiment runs.
pub enum Run {
    /// On loopback, with sockets of its own, in moments: one report.
    Loopback(fn() -> Result<LabReport, Error>),
    /// In network namespaces it builds and removes (root), for seconds: a
    /// report per part; a signal stops it early, after the removal. Runs
    /// only when named: `dgram lab` alone stays on loopback.
    Namespaces(fn(&Shutdown) -> Result<Vec<LabReport>, Error>),
}

impl Experiment {
    /// True when `dgram lab` without names runs it.
    pub fn by_default(&self) -> bool {
        matches!(self.run, Run::Loopback(_))
    }
}

/// Every experiment, in the order `dgram lab` runs them.
pub const EXPERIMENTS: &[Experiment] = &[
    Experiment {
        name: "boundaries",
        what: "datagrams keep their boundaries; a TCP stream merges messages",
        run: Run::Loopback(boundaries),
    },
    Experiment {
        name: "empty",
        what: "an empty datagram is a message; a stream cannot carry one",
        run: Run::Loopback(empty),
    },
    Experiment {
        name: "truncation",
        what: "a datagram longer than the read buffer loses its tail",
        run: Run::Loopback(truncation),
    },
    Experiment {
        name: "max-payload",
        what: "the largest UDP payload over IPv4 and IPv6",
        run: Run::Loopback(max_payload),
    },
    Experiment {
        name: "buffers",
        what: "default socket buffers, and what the kernel makes of a request",
        run: Run::Loopback(buffers),
    },
    Experiment {
        name: "loss",
        what: "a burst into a full receive buffer: every datagram received or counted dropped",
        run: Run::Loopback(loss),
    },
    Experiment {
        name: "downed",
        what: "sending to a port nobody listens on",
        run: Run::Loopback(downed),
    },
    Experiment {
        name: "nat",
        what: super::nat::WHAT,
        run: Run::Namespaces(super::nat::run),
    },
    Experiment {
        name: "fragments",
        what: super::fragments::WHAT,
        run: Run::Namespaces(super::fragments::run),
    },
];

fn io_error(what: &'static str) -> impl Fn(io::Error) -> Error {
    move |source| Error::Lab { what, source }
}

/// A UDP socket on 127.0.0.1 with a port of its own.
fn udp() -> Result<UdpSocket, Error> {
    let socket = UdpSocket::bind("127.0.0.1:0").map_err(io_error("bind a UDP socket"))?;
    socket
        .set_read_timeout(Some(WAIT))
        .map_err(io_error("set a read timeout"))?;
    Ok(socket)
}

fn sizes_text(sizes: &[usize]) -> String {
    sizes
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The payload of message `i` of `len` bytes: its own pattern, so that
/// bytes can be compared.
fn pattern(i: usize, len: usize) -> Vec<u8> {
    (0..len).map(|j| (i * 31 + j) as u8).collect()
}

/// 1. N datagrams of varied sizes arrive as exactly N, same sizes and
///    bytes; the same messages written to a TCP stream are read back
///    merged.
fn boundaries() -> Result<LabReport, Error> {
    let sizes = [0, 1, 100, 1400, 1472, 8192, 9000, 32768, MAX_PAYLOAD_V4];
    let mut report = LabReport::new(
        "boundaries",
        "datagrams keep their boundaries; a TCP stream merges messages",
        format!(
            "{} datagrams sent arrive as {} datagrams of the same sizes and bytes; the same messages over TCP come back in fewer reads of other sizes",
            sizes.len(),
            sizes.len()
        ),
    );
    let (tx, rx) = (udp()?, udp()?);
    let to = rx.local_addr().map_err(io_error("read an address"))?;
    let mut received = Vec::new();
    let mut intact = true;
    let mut buf = vec![0u8; 65536];
    for (i, len) in sizes.iter().enumerate() {
        // One at a time, read before the next: the receive buffer holds a
        // 65,507-byte datagram whatever its size.
        tx.send_to(&pattern(i, *len), to)
            .map_err(io_error("send a datagram"))?;
        let n = rx.recv(&mut buf).map_err(io_error("receive a datagram"))?;
        intact &= buf[..n] == pattern(i, *len)[..];
        received.push(n);
    }
    // TCP: every message written before the first read.
    let listener = TcpListener::bind("127.0.0.1:0").map_err(io_error("bind a TCP listener"))?;
    let addr = listener.local_addr().map_err(io_error("read an address"))?;
    let mut writer = TcpStream::connect(addr).map_err(io_error("connect over TCP"))?;
    let (mut reader, _) = listener.accept().map_err(io_error("accept over TCP"))?;
    let total: usize = sizes.iter().sum();
    for (i, len) in sizes.iter().enumerate() {
        writer
            .write_all(&pattern(i, *len))
            .map_err(io_error("write over TCP"))?;
    }
    drop(writer);
    let mut reads = Vec::new();
    let mut got = 0;
    loop {
        let n = reader.read(&mut buf).map_err(io_error("read over TCP"))?;
        if n == 0 {
            break;
        }
        got += n;
        reads.push(n);
    }
    report.table = Table::new(&["", "messages", "sizes (bytes)"]);
    report.table.row(vec![
        "sent".into(),
        sizes.len().to_string(),
        sizes_text(&sizes),
    ]);
    report.table.row(vec![
        "UDP received".into(),
        received.len().to_string(),
        sizes_text(&received),
    ]);
    report.table.row(vec![
        "TCP read".into(),
        reads.len().to_string(),
        sizes_text(&reads),
    ]);
    let kept = received == sizes && intact;
    report.finding(
        "UDP never sticks packets together: each recvfrom returns one whole datagram",
        if kept {
            Verdict::True
        } else {
            Verdict::FalseHere
        },
        format!(
            "{} datagrams sent, {} received, every size and byte the same{}",
            sizes.len(),
            received.len(),
            if intact { "" } else { " (NOT: bytes differ)" }
        ),
    );
    let merged = reads.len() != sizes.len() || reads != sizes;
    report.finding(
        "TCP is a byte stream: message boundaries are not kept (\"sticky packets\")",
        if merged && got == total {
            Verdict::True
        } else {
            Verdict::TrueOnlyWhen("the reader is slower than the writer".into())
        },
        format!(
            "{total} bytes in {} messages came back in {} reads of other sizes; the empty message left no trace",
            sizes.len(),
            reads.len()
        ),
    );
    report.fact("sent", sizes.to_vec());
    report.fact("udp_received", received);
    report.fact("udp_intact", intact);
    report.fact("tcp_reads", reads);
    report.fact("tcp_bytes", got);
    Ok(report)
}

/// 2. An empty datagram is sent and received as a message of length 0; a
///    stream socket cannot carry one.
fn empty() -> Result<LabReport, Error> {
    let mut report = LabReport::new(
        "empty",
        "an empty datagram is a message; a stream cannot carry one",
        "sendto of 0 bytes succeeds, and recvfrom returns a message of length 0 with its sender; over TCP a write of 0 bytes sends nothing, and a read of 0 means the end of the stream".into(),
    );
    let (tx, rx) = (udp()?, udp()?);
    let to = rx.local_addr().map_err(io_error("read an address"))?;
    let sent = tx
        .send_to(&[], to)
        .map_err(io_error("send an empty datagram"))?;
    let mut buf = [0u8; 16];
    let (n, from) = rx
        .recv_from(&mut buf)
        .map_err(io_error("receive an empty datagram"))?;
    let sender = tx.local_addr().map_err(io_error("read an address"))?;
    // TCP: a zero-byte write, then a read that must find nothing.
    let listener = TcpListener::bind("127.0.0.1:0").map_err(io_error("bind a TCP listener"))?;
    let mut writer =
        TcpStream::connect(listener.local_addr().map_err(io_error("read an address"))?)
            .map_err(io_error("connect over TCP"))?;
    let (mut reader, _) = listener.accept().map_err(io_error("accept over TCP"))?;
    let written = writer.write(&[]).map_err(io_error("write over TCP"))?;
    reader
        .set_nonblocking(true)
        .map_err(io_error("set a socket non-blocking"))?;
    let tcp = match reader.read(&mut buf) {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
            "nothing to read (would block)".to_string()
        }
        Ok(0) => "read 0: the end of the stream".to_string(),
        Ok(n) => format!("read {n} bytes"),
        Err(e) => format!("error: {e}"),
    };
    report.table = Table::new(&["", "sent", "received"]);
    report.table.row(vec![
        "UDP".into(),
        format!("sendto returned {sent}"),
        format!("recvfrom returned {n} bytes from {from}"),
    ]);
    report.table.row(vec![
        "TCP".into(),
        format!("write returned {written}"),
        tcp.clone(),
    ]);
    let arrived = sent == 0 && n == 0 && from == sender;
    report.finding(
        "the client may send an empty datagram, and the server receives it",
        if arrived {
            Verdict::True
        } else {
            Verdict::FalseHere
        },
        format!("a 0-byte datagram arrived as a message of length 0 from {from}"),
    );
    report.finding(
        "a stream socket cannot send an empty message",
        if tcp.starts_with("nothing") {
            Verdict::True
        } else {
            Verdict::FalseHere
        },
        format!("write(0 bytes) returned {written}; the reader found {tcp}"),
    );
    report.fact("udp_sent", sent);
    report.fact("udp_received", n);
    report.fact("tcp_readable", !tcp.starts_with("nothing"));
    Ok(report)
}

/// 3. A datagram longer than the read buffer delivers the buffer's worth;
///    the rest is gone, and the next read gets the next datagram. Linux
///    tells the true length (`MSG_TRUNC`).
fn truncation() -> Result<LabReport, Error> {
    let (x, y) = (100, 1000);
    let mut report = LabReport::new(
        "truncation",
        "a datagram longer than the read buffer loses its tail",
        format!(
            "recvfrom into {x} bytes of a {y}-byte datagram delivers {x} bytes; the other {} are gone, and the next read gets the next datagram",
            y - x
        ),
    );
    let (endpoint, _) = Endpoint::open(&SocketOptions {
        bind: "127.0.0.1:0".parse().expect("an address"),
        rcvbuf: None,
        sndbuf: None,
    })?;
    let tx = udp()?;
    let to = endpoint.local_addr();
    tx.send_to(&pattern(1, y), to)
        .map_err(io_error("send a datagram"))?;
    tx.send_to(b"next", to)
        .map_err(io_error("send a datagram"))?;
    endpoint
        .set_read_timeout(WAIT)
        .map_err(io_error("set a read timeout"))?;
    let mut scratch = Scratch::default();
    let mut small = vec![0u8; x];
    let first = endpoint
        .recv(&mut small, &mut scratch)
        .map_err(io_error("receive a datagram"))?;
    let first_bytes_ok = small[..first.len] == pattern(1, y)[..first.len];
    let mut buf = vec![0u8; 65536];
    let second = endpoint
        .recv(&mut buf, &mut scratch)
        .map_err(io_error("receive a datagram"))?;
    let true_length = first
        .original_len
        .map_or("not told on this platform".to_string(), |n| n.to_string());
    report.table = Table::new(&["read", "buffer", "delivered", "truncated", "true length"]);
    report.table.row(vec![
        "1".into(),
        x.to_string(),
        first.len.to_string(),
        first.truncated.to_string(),
        true_length.clone(),
    ]);
    report.table.row(vec![
        "2".into(),
        "65536".into(),
        format!(
            "{} ({:?})",
            second.len,
            String::from_utf8_lossy(&buf[..second.len])
        ),
        second.truncated.to_string(),
        second
            .original_len
            .map_or("-".to_string(), |n| n.to_string()),
    ]);
    let lost = first.len == x && first.truncated && first_bytes_ok && &buf[..second.len] == b"next";
    report.finding(
        "recvfrom(x) of a y > x byte datagram loses data: the rest is discarded",
        if lost { Verdict::True } else { Verdict::FalseHere },
        format!(
            "{} of {y} bytes delivered, flagged truncated; the next read returned the next datagram, not the tail",
            first.len
        ),
    );
    report.finding(
        "the receiver cannot know how long the datagram was",
        match first.original_len {
            Some(_) => Verdict::FalseHere,
            None => Verdict::True,
        },
        match first.original_len {
            Some(n) => format!("Linux recvmsg with MSG_TRUNC returned the true length, {n}"),
            None => "this build has no MSG_TRUNC: only the truncated flag is known".into(),
        },
    );
    report.fact("delivered", first.len);
    report.fact("truncated", first.truncated);
    report.fact("true_length", first.original_len);
    report.fact(
        "next",
        String::from_utf8_lossy(&buf[..second.len]).into_owned(),
    );
    Ok(report)
}

/// Sends `len` bytes from `tx` to `to`: `Ok` or the OS error's name.
fn try_send(tx: &UdpSocket, len: usize, to: SocketAddr) -> Result<(), String> {
    match tx.send_to(&vec![0x5a; len], to) {
        Ok(_) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc_emsgsize()) => Err("EMSGSIZE".into()),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(unix)]
fn libc_emsgsize() -> i32 {
    nix::errno::Errno::EMSGSIZE as i32
}

#[cfg(not(unix))]
fn libc_emsgsize() -> i32 {
    10040 // WSAEMSGSIZE
}

/// 4. 65,507 bytes pass over IPv4 and 65,508 fail with `EMSGSIZE`; 65,527
///    over IPv6.
fn max_payload() -> Result<LabReport, Error> {
    let mut report = LabReport::new(
        "max-payload",
        "the largest UDP payload over IPv4 and IPv6",
        format!(
            "IPv4: 65535 - 20 (IP header) - 8 (UDP header) = {MAX_PAYLOAD_V4} bytes pass, {} fail; IPv6 (no jumbograms): 65535 - 8 = {MAX_PAYLOAD_V6} pass, {} fail",
            MAX_PAYLOAD_V4 + 1,
            MAX_PAYLOAD_V6 + 1
        ),
    );
    report.table = Table::new(&["family", "payload", "sendto", "received"]);
    let mut results = serde_json::Map::new();
    let mut v6 = None;
    for (family, bind, limit) in [
        ("IPv4", "127.0.0.1:0", MAX_PAYLOAD_V4),
        ("IPv6", "[::1]:0", MAX_PAYLOAD_V6),
    ] {
        let (tx, rx) = match (UdpSocket::bind(bind), UdpSocket::bind(bind)) {
            (Ok(tx), Ok(rx)) => (tx, rx),
            _ => {
                report.table.row(vec![
                    family.into(),
                    "-".into(),
                    "no loopback address of this family".into(),
                    "-".into(),
                ]);
                continue;
            }
        };
        rx.set_read_timeout(Some(WAIT))
            .map_err(io_error("set a read timeout"))?;
        let to = rx.local_addr().map_err(io_error("read an address"))?;
        let mut outcome = Vec::new();
        for len in [limit, limit + 1] {
            let sent = try_send(&tx, len, to);
            let received = match sent {
                Ok(()) => {
                    let mut buf = vec![0u8; 65536];
                    rx.recv(&mut buf)
                        .map(|n| n.to_string())
                        .unwrap_or_else(|e| format!("nothing ({e})"))
                }
                Err(_) => "-".into(),
            };
            report.table.row(vec![
                family.into(),
                len.to_string(),
                sent.clone()
                    .map_or_else(|e| format!("failed: {e}"), |()| "ok".into()),
                received,
            ]);
            outcome.push(sent);
        }
        let holds = outcome[0].is_ok() && outcome[1] == Err("EMSGSIZE".into());
        results.insert(
            family.to_string(),
            serde_json::json!({
                "largest_passes": outcome[0].is_ok(),
                "one_more_fails": outcome[1].clone().err(),
            }),
        );
        if family == "IPv6" {
            v6 = Some(holds);
        } else {
            report.finding(
                "the largest UDP payload over IPv4 is 65,507 bytes (not 65,535, nor 65,527)",
                if holds {
                    Verdict::True
                } else {
                    Verdict::FalseHere
                },
                format!(
                    "{MAX_PAYLOAD_V4} bytes were sent and received; {} failed with {}",
                    MAX_PAYLOAD_V4 + 1,
                    outcome[1]
                        .clone()
                        .err()
                        .unwrap_or_else(|| "no error".into())
                ),
            );
        }
    }
    report.finding(
        "over IPv6 the largest payload is 65,527 bytes",
        match v6 {
            Some(true) => Verdict::True,
            Some(false) => Verdict::FalseHere,
            None => Verdict::NotMeasured("no IPv6 loopback".into()),
        },
        "the IPv6 header is not counted in its 16-bit payload length: 65535 - 8".into(),
    );
    report.fact("results", serde_json::Value::Object(results));
    Ok(report)
}

/// A `net.core` setting, where /proc has it.
fn net_core(name: &str) -> Option<usize> {
    std::fs::read_to_string(format!("/proc/sys/net/core/{name}"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// 5. Default buffers against the course's "8K" and "65536"; a request
///    doubled and clamped at twice `net.core.rmem_max`.
fn buffers() -> Result<LabReport, Error> {
    let rmem_max = net_core("rmem_max");
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None)
        .map_err(io_error("create a socket"))?;
    let default_rcv = socket
        .recv_buffer_size()
        .map_err(io_error("read SO_RCVBUF"))?;
    let default_snd = socket
        .send_buffer_size()
        .map_err(io_error("read SO_SNDBUF"))?;
    let mut report = LabReport::new(
        "buffers",
        "default socket buffers, and what the kernel makes of a request",
        match rmem_max {
            Some(max) => format!(
                "Linux: a request R gives 2 × min(R, rmem_max = {max}), at least 2304 bytes; the default is net.core.rmem_default ({})",
                net_core("rmem_default").map_or("?".into(), |d| d.to_string())
            ),
            None => "the effective size is whatever the system makes of the request".into(),
        },
    );
    report.table = Table::new(&["SO_RCVBUF requested", "predicted", "effective"]);
    let requests = [
        1,
        1024,
        4096,
        8192,
        65536,
        131072,
        212992,
        425984,
        1 << 20,
        4 << 20,
    ];
    let mut rows = Vec::new();
    let mut all_predicted = true;
    for request in requests {
        socket
            .set_recv_buffer_size(request)
            .map_err(io_error("set SO_RCVBUF"))?;
        let effective = socket
            .recv_buffer_size()
            .map_err(io_error("read SO_RCVBUF"))?;
        let predicted = rmem_max.map(|max| (2 * request.min(max)).max(2304));
        all_predicted &= predicted.is_none_or(|p| p == effective);
        report.table.row(vec![
            request.to_string(),
            predicted.map_or("-".into(), |p| p.to_string()),
            effective.to_string(),
        ]);
        rows.push(serde_json::json!({"requested": request, "predicted": predicted, "effective": effective}));
    }
    report.table.row(vec![
        "default (SO_RCVBUF)".into(),
        net_core("rmem_default").map_or("-".into(), |d| d.to_string()),
        default_rcv.to_string(),
    ]);
    report.table.row(vec![
        "default (SO_SNDBUF)".into(),
        net_core("wmem_default").map_or("-".into(), |d| d.to_string()),
        default_snd.to_string(),
    ]);
    for (claim, size) in [
        ("the socket buffer is generally 8K", 8192),
        ("the receive buffer is 65536 bytes by default", 65536),
    ] {
        report.finding(
            claim,
            if default_rcv == size {
                Verdict::True
            } else {
                Verdict::FalseHere
            },
            format!(
                "a new UDP socket here has SO_RCVBUF {default_rcv} and SO_SNDBUF {default_snd}"
            ),
        );
    }
    report.finding(
        "setsockopt(SO_RCVBUF, n) gives a buffer of n bytes",
        if rmem_max.is_some() {
            Verdict::FalseHere
        } else {
            Verdict::NotMeasured("no /proc/sys/net/core here".into())
        },
        match rmem_max {
            Some(max) if all_predicted => format!(
                "Linux doubles the request (for its bookkeeping) and caps it at 2 × rmem_max = {}: every row as predicted",
                2 * max
            ),
            Some(_) => "Linux doubles and caps the request; some rows differ from the prediction (see the table)".into(),
            None => "the effective sizes are in the table".into(),
        },
    );
    report.fact("default_rcvbuf", default_rcv);
    report.fact("default_sndbuf", default_snd);
    report.fact("rmem_max", rmem_max);
    report.fact("all_predicted", all_predicted);
    report.fact("rows", rows);
    Ok(report)
}

/// `(rx_queue bytes, drops)` of the socket bound to 127.0.0.1:`port`, from
/// the kernel's UDP table.
fn proc_net_udp(port: u16) -> Option<(u64, u64)> {
    let entry =
        crate::net::sys::udp_table_entry(std::net::SocketAddrV4::new([127, 0, 0, 1].into(), port))?;
    Some((entry.queued, entry.drops))
}

/// The system's UDP `RcvbufErrors` (/proc/net/snmp).
fn rcvbuf_errors() -> Option<u64> {
    let snmp = std::fs::read_to_string("/proc/net/snmp").ok()?;
    let mut udp = snmp.lines().filter(|l| l.starts_with("Udp:"));
    let (names, values) = (udp.next()?, udp.next()?);
    let at = names.split_whitespace().position(|n| n == "RcvbufErrors")?;
    values.split_whitespace().nth(at)?.parse().ok()
}

/// 6. A burst of N × 1 KiB into a reader that has not read yet, for a
///    series of `SO_RCVBUF` sizes: every datagram received or counted
///    dropped.
fn loss() -> Result<LabReport, Error> {
    const N: usize = 400;
    const SIZE: usize = 1024;
    let mut report = LabReport::new(
        "loss",
        "a burst into a full receive buffer: every datagram received or counted dropped",
        format!(
            "{N} × {SIZE} B into a paused reader: about effective / (per-datagram charge) are queued, the rest dropped by the kernel and counted; received + dropped = {N}"
        ),
    );
    report.table = Table::new(&[
        "requested",
        "effective",
        "charge/datagram",
        "predicted",
        "received",
        "dropped (SO_RXQ_OVFL)",
        "dropped (/proc/net/udp)",
        "RcvbufErrors Δ",
        "loss %",
    ]);
    let mut rows = Vec::new();
    let mut exact = true;
    for request in [2048usize, 8192, 32768, 65536, 131072, 196608, 262144] {
        let (endpoint, buffers) = Endpoint::open(&SocketOptions {
            bind: "127.0.0.1:0".parse().expect("an address"),
            rcvbuf: Some(request),
            sndbuf: None,
        })?;
        let port = endpoint.local_addr().port();
        let tx = udp()?;
        let to = endpoint.local_addr();
        // The charge of one datagram, read from the queue.
        tx.send_to(&[0u8; SIZE], to)
            .map_err(io_error("send a datagram"))?;
        let charge = proc_net_udp(port).map(|(queue, _)| queue);
        let errors_before = rcvbuf_errors();
        for _ in 1..N {
            tx.send_to(&[0u8; SIZE], to)
                .map_err(io_error("send a datagram"))?;
        }
        let proc_drops = proc_net_udp(port).map(|(_, drops)| drops);
        let errors = rcvbuf_errors()
            .zip(errors_before)
            .map(|(after, before)| after - before);
        let effective = buffers.rcvbuf.effective;
        let predicted = charge.filter(|c| *c > 0).map(|c| {
            // As many whole charges as the buffer holds; the first
            // datagram is queued whatever its size.
            (effective as u64 / c).clamp(1, N as u64)
        });
        endpoint
            .set_nonblocking(true)
            .map_err(io_error("set a socket non-blocking"))?;
        let mut scratch = Scratch::default();
        let mut buf = vec![0u8; 65536];
        let mut received = 0u64;
        while endpoint.recv(&mut buf, &mut scratch).is_ok() {
            received += 1;
        }
        let dropped = endpoint.kernel_drops().map(u64::from);
        if let Some(dropped) = dropped {
            exact &= received + dropped == N as u64;
        }
        let loss = 100.0 * (N as f64 - received as f64) / N as f64;
        let show = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
        report.table.row(vec![
            request.to_string(),
            effective.to_string(),
            show(charge),
            show(predicted),
            received.to_string(),
            show(dropped),
            show(proc_drops),
            show(errors),
            format!("{loss:.1}"),
        ]);
        rows.push(serde_json::json!({
            "requested": request,
            "effective": effective,
            "charge": charge,
            "predicted": predicted,
            "received": received,
            "dropped": dropped,
            "proc_drops": proc_drops,
            "rcvbuf_errors": errors,
            "loss_percent": loss,
        }));
    }
    let counted = rows.iter().all(|r| r["dropped"].is_u64());
    report.finding(
        "UDP may lose datagrams when the receiver's buffer is full, and nobody is told",
        if counted && exact {
            Verdict::TrueOnlyWhen("nobody asks: the kernel counts every drop (SO_RXQ_OVFL, /proc/net/udp)".into())
        } else if counted {
            Verdict::FalseHere
        } else {
            Verdict::NotMeasured("no drop counter in this build".into())
        },
        format!(
            "in every row received + dropped = {N}: each datagram was either queued or counted; a bigger buffer queued more"
        ),
    );
    report.fact("sent", N);
    report.fact("exact", exact && counted);
    report.fact("rows", rows);
    Ok(report)
}

/// 7. To a port with no listener: an unconnected `sendto` succeeds and no
///    error is reported; with `IP_RECVERR` the error queue names the
///    refusal; a connected socket gets `ECONNREFUSED` on its next call.
fn downed() -> Result<LabReport, Error> {
    let mut report = LabReport::new(
        "downed",
        "sending to a port nobody listens on",
        "the kernel answers ICMP port unreachable; an unconnected socket hears of it only if it asks (IP_RECVERR); a connected one gets ECONNREFUSED on its next call".into(),
    );
    // A port nobody listens on: bound, read back, closed.
    let closed = udp()?.local_addr().map_err(io_error("read an address"))?;
    report.table = Table::new(&["socket", "sendto", "then", "error reported"]);
    // Unconnected, without IP_RECVERR.
    let plain = udp()?;
    plain
        .set_read_timeout(Some(Duration::from_millis(200)))
        .map_err(io_error("set a read timeout"))?;
    let sent = plain.send_to(b"anyone?", closed).is_ok();
    let mut buf = [0u8; 64];
    // A signal's interruption is retried, a few times at most.
    let mut then = "recvfrom interrupted by signals".to_string();
    for _ in 0..3 {
        then = match plain.recv_from(&mut buf) {
            Err(e) => match classify(&e) {
                Class::Retry => continue,
                Class::Idle => "recvfrom timed out: nothing".to_string(),
                Class::Peer | Class::Failed => format!("recvfrom failed: {e}"),
            },
            Ok((n, from)) => format!("{n} bytes from {from}"),
        };
        break;
    }
    let silent = sent && then.starts_with("recvfrom timed out");
    report.table.row(vec![
        "unconnected".into(),
        if sent { "ok".into() } else { "failed".into() },
        then.clone(),
        if silent { "none".into() } else { then.clone() },
    ]);
    // Unconnected, with IP_RECVERR (dgram's endpoint, where the platform
    // has it).
    let (endpoint, _) = Endpoint::open(&SocketOptions {
        bind: "127.0.0.1:0".parse().expect("an address"),
        rcvbuf: None,
        sndbuf: None,
    })?;
    let mut drained = Vec::new();
    let recverr_sent = endpoint.send_to(b"anyone?", closed, &mut drained).is_ok();
    let errors = {
        let mut errors = Vec::new();
        for _ in 0..200 {
            errors = endpoint.take_errors();
            if !errors.is_empty() || !endpoint.capabilities().icmp_errors {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        errors
    };
    let heard = errors.iter().any(|e| e.is_refusal() && e.peer == closed);
    report.table.row(vec![
        "unconnected, IP_RECVERR".into(),
        if recverr_sent {
            "ok".into()
        } else {
            "failed".into()
        },
        "error queue read".into(),
        if heard {
            format!("port unreachable from {closed}")
        } else if endpoint.capabilities().icmp_errors {
            "none".into()
        } else {
            "no IP_RECVERR in this build".into()
        },
    ]);
    // Connected.
    let connected = udp()?;
    connected
        .connect(closed)
        .map_err(io_error("connect a UDP socket"))?;
    let first = connected.send(b"anyone?").is_ok();
    let next = match connected.recv(&mut buf) {
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => "ECONNREFUSED".to_string(),
        Err(e) => e.to_string(),
        Ok(n) => format!("{n} bytes"),
    };
    report.table.row(vec![
        "connected".into(),
        if first { "ok".into() } else { "failed".into() },
        "recv".into(),
        next.clone(),
    ]);
    report.finding(
        "if the server does not exist, the client's sendto reports no error",
        if silent {
            Verdict::TrueOnlyWhen(
                "the socket is unconnected and does not ask (no IP_RECVERR)".into(),
            )
        } else {
            Verdict::FalseHere
        },
        format!(
            "sendto succeeded; {}; a connected socket's next call failed with {next}",
            if heard {
                "the refusal was in the error queue for the socket that asked (IP_RECVERR)"
            } else {
                "no refusal was heard"
            }
        ),
    );
    report.fact("unconnected_silent", silent);
    report.fact("recverr_heard", heard);
    report.fact("connected_error", next);
    Ok(report)
}
