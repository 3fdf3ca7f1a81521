//! `--pcap FILE`: every datagram a command sends or receives, written as it
//! was on the wire into a classic pcap file that tshark and Wireshark read.
//!
//! One [`Capture`] is shared (`Arc`) by every [`Endpoint`] of a command, so
//! the receiver thread and the sending side write one file, record after
//! record, under one lock. Records go through a `BufWriter`: a flood costs
//! a copy and a checksum per datagram, not a system call (never an
//! `fsync`), written out when full, when a record or an idle socket
//! ([`Capture::idle`]) finds records that have waited a second, and at
//! the end: [`Capture::finish`] flushes and reports the first failure once.
//!
//! # The format
//! Classic pcap (not pcapng), little-endian, with the nanosecond magic
//! `0xa1b23c4d`, and link type `LINKTYPE_RAW` (101): each record is an IPv4
//! or an IPv6 packet (the version nibble tells which), so both families fit
//! in one file. The 24-byte file header and the 16-byte record header are
//! written here by hand: their layout has not changed since libpcap 0.4
//! (format 2.4), and the crate for them, `pcap-file`, has 2.0.0 as its
//! last stable release (the 3.0 line is still release candidates): a
//! dependency for 40 bytes of fixed layout would buy nothing. The IPv4, IPv6 and UDP headers are
//! `etherparse`'s (maintained, MIT/Apache, no dependencies of weight),
//! with the IPv4 header checksum and the UDP checksum computed as a
//! kernel would.
//!
//! # What a record says
//! - Received datagrams carry the kernel's receive time (`SO_TIMESTAMPNS`)
//!   where the platform gives one, else the time the receive returned;
//!   sent ones the time the send returned.
//! - A datagram cut short by the receive buffer (`--max-size`) is recorded
//!   with what was received as its captured length and its true length
//!   (where the platform tells it) as its original length; the IP and UDP
//!   length fields say the true length, and its UDP checksum is 0xffff (the
//!   real one cannot be computed over bytes that were never received; 0,
//!   "no checksum", is illegal over IPv6): tools show it as unverified.
//! - A coalesced send (GSO) or receive (GRO) is recorded as the datagrams it
//!   was on the wire.
//! - A socket bound to a wildcard (`0.0.0.0`, `[::]`) shows, as its own
//!   address, the one the routing table picks towards the peer (what the
//!   kernel puts in a datagram sent there; looked up once per peer, with a
//!   `connect` that sends nothing). IPv4-mapped IPv6 addresses are shown
//!   as IPv4, as they were on the wire.
//! - What never reached the socket (datagrams the kernel dropped on a full
//!   `SO_RCVBUF`, counted by `SO_RXQ_OVFL`) is not in the file, nor is
//!   anything the kernel sent itself (ICMP errors).
//!
//! [`Endpoint`]: super::Endpoint

use std::collections::HashMap;
use std::io::{self, BufWriter, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use etherparse::{IpNumber, Ipv4Header, Ipv6FlowLabel, Ipv6Header, UdpHeader};

use super::addr::canonical;
use crate::Error;

/// The nanosecond-resolution pcap magic number.
const MAGIC_NANOS: u32 = 0xa1b2_3c4d;
/// `LINKTYPE_RAW`: the packet starts with its IP header.
const LINKTYPE_RAW: u32 = 101;
/// The most bytes one record holds: an IPv6 header, a UDP header and the
/// largest payload, with room to spare (tshark accepts up to 262144).
const SNAPLEN: u32 = 262_144;
/// The TTL (hop limit) written into the IP headers: Linux's default.
const TTL: u8 = 64;
/// The UDP checksum of a truncated record. The real one covers bytes
/// that were never received, so it cannot be computed; 0 would say "no
/// checksum", which is legal over IPv4 but illegal over IPv6 (RFC 8200
/// 8.1: Wireshark flags it as an error). Any other value is legal in both
/// families, and a tool cannot check it against a record that lacks bytes
/// it covers: tshark shows it as "[unverified]", even with
/// `udp.check_checksum` on. 0xffff is the value a sender puts there when
/// the sum comes to zero (RFC 768).
const TRUNCATED_CHECKSUM: u16 = 0xffff;
/// How much the writer buffers before it writes to the file.
const BUFFER: usize = 1 << 20;
/// How long records may wait in the buffer: when another comes this long
/// after the last write, or when a socket finds nothing to receive
/// ([`Capture::idle`]) after this, the buffer is written out, so that a
/// file read while the command runs is at most about this behind it.
const FLUSH_AFTER: Duration = Duration::from_secs(1);

/// A capture file being written: shared by every socket of a command.
pub struct Capture {
    /// Named in errors.
    path: PathBuf,
    /// The writer and what it needs, under one lock so that records from
    /// both threads never interleave.
    state: Mutex<State>,
    /// When what is buffered must be written out, in nanoseconds since the
    /// Unix epoch; 0 when nothing is buffered. Outside the lock, so that
    /// [`Capture::idle`], called on every receive that finds nothing (a
    /// busy-polling receive calls it in a loop), costs one load when the
    /// file is current.
    due: AtomicU64,
}

impl std::fmt::Debug for Capture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Capture").field("path", &self.path).finish()
    }
}

/// What the writer keeps between records.
struct State {
    /// The file, buffered.
    out: BufWriter<Box<dyn Write + Send>>,
    /// One record being built, reused.
    record: Vec<u8>,
    /// The first write that failed; nothing is written after it.
    failed: Option<io::Error>,
    /// Set once the failure has been reported, so that it is reported once.
    reported: bool,
    /// When the buffer was last written out (by the records' own times:
    /// no clock is read for it).
    flushed: SystemTime,
    /// A wildcard socket's own address towards each peer address.
    routes: HashMap<IpAddr, IpAddr>,
}

/// One datagram as it was on the wire, for [`Capture::write`].
struct Packet<'a> {
    /// When it was sent or received.
    time: SystemTime,
    /// Its source.
    from: SocketAddr,
    /// Its destination.
    to: SocketAddr,
    /// The bytes the socket sent or received.
    data: &'a [u8],
    /// Its length on the wire (more than `data.len()` when truncated).
    len: usize,
}

impl Capture {
    /// Starts a capture into `out` (already created and truncated), named
    /// `path` in errors: the file header is written at once.
    pub fn new(path: &Path, out: Box<dyn Write + Send>) -> Result<Capture, Error> {
        let mut out = BufWriter::with_capacity(BUFFER, out);
        let mut header = Vec::with_capacity(24);
        header.extend_from_slice(&MAGIC_NANOS.to_le_bytes());
        header.extend_from_slice(&2u16.to_le_bytes());
        header.extend_from_slice(&4u16.to_le_bytes());
        header.extend_from_slice(&0i32.to_le_bytes()); // thiszone: UTC
        header.extend_from_slice(&0u32.to_le_bytes()); // sigfigs
        header.extend_from_slice(&SNAPLEN.to_le_bytes());
        header.extend_from_slice(&LINKTYPE_RAW.to_le_bytes());
        out.write_all(&header)
            .and_then(|()| out.flush())
            .map_err(|source| Error::WritePcap {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(Capture {
            path: path.to_path_buf(),
            state: Mutex::new(State {
                out,
                record: Vec::with_capacity(65_535 + 64),
                failed: None,
                reported: false,
                flushed: SystemTime::now(),
                routes: HashMap::new(),
            }),
            due: AtomicU64::new(0),
        })
    }

    /// The bytes one datagram of `payload` bytes takes in the file: the
    /// record header and the IP and UDP headers with it (for the cost of
    /// a flood, told before it starts).
    pub fn record_bytes(payload: usize, ipv6: bool) -> usize {
        let ip = if ipv6 {
            Ipv6Header::LEN
        } else {
            Ipv4Header::MIN_LEN
        };
        16 + ip + UdpHeader::LEN + payload
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records a datagram this side sent from `local` to `to`, now.
    pub fn sent(&self, local: SocketAddr, to: SocketAddr, payload: &[u8]) {
        let time = SystemTime::now();
        let mut state = self.lock();
        let to = canonical(to);
        let from = state.own_address(local, to);
        state.write(&Packet {
            time,
            from,
            to,
            data: payload,
            len: payload.len(),
        });
        self.set_due(&state);
    }

    /// Records datagrams of `segment` bytes each (the last may be shorter)
    /// sent in one call (GSO).
    pub fn sent_segments(&self, local: SocketAddr, to: SocketAddr, buf: &[u8], segment: usize) {
        for chunk in buf.chunks(segment.max(1)) {
            self.sent(local, to, chunk);
        }
    }

    /// Records a datagram received on the socket bound to `local` from
    /// `from`: `data` is what was received, `len` its true length, `time`
    /// the kernel's receive time where it gave one.
    pub fn received(
        &self,
        local: SocketAddr,
        from: SocketAddr,
        data: &[u8],
        len: usize,
        time: Option<SystemTime>,
    ) {
        let time = time.unwrap_or_else(SystemTime::now);
        let mut state = self.lock();
        let from = canonical(from);
        let to = state.own_address(local, from);
        state.write(&Packet {
            time,
            from,
            to,
            data,
            len: len.max(data.len()),
        });
        self.set_due(&state);
    }

    /// Writes out what is buffered if it has waited [`FLUSH_AFTER`] or
    /// more: called when a socket finds nothing to receive (every
    /// [`READ_TIMEOUT`](super::endpoint::READ_TIMEOUT) at most in every command's
    /// receive loop), so that the last records of a burst reach the file
    /// while the command waits for more, without a write per record. When
    /// nothing is buffered it reads one atomic and no clock.
    pub fn idle(&self) {
        let due = self.due.load(Ordering::Relaxed);
        if due == 0 || unix_nanos(SystemTime::now()) < due {
            return;
        }
        let mut state = self.lock();
        if state.failed.is_none()
            && !state.out.buffer().is_empty()
            && let Err(e) = state.out.flush()
        {
            state.failed = Some(e);
        }
        state.flushed = SystemTime::now();
        self.due.store(0, Ordering::Relaxed);
    }

    /// Says, after a record, when what is buffered must be written out
    /// (called under the lock, so that it agrees with the buffer).
    fn set_due(&self, state: &State) {
        let due = if state.failed.is_some() || state.out.buffer().is_empty() {
            0
        } else {
            unix_nanos(state.flushed + FLUSH_AFTER).max(1)
        };
        self.due.store(due, Ordering::Relaxed);
    }

    /// Flushes what is buffered, and reports the first write that failed
    /// (once: later calls say nothing more about it).
    pub fn finish(&self) -> Result<(), Error> {
        let mut state = self.lock();
        if state.failed.is_none()
            && let Err(e) = state.out.flush()
        {
            state.failed = Some(e);
        }
        if state.reported {
            return Ok(());
        }
        match state.failed.take() {
            Some(source) => {
                state.reported = true;
                Err(Error::WritePcap {
                    path: self.path.clone(),
                    source,
                })
            }
            None => Ok(()),
        }
    }

    /// The state, even if a thread panicked while it held the lock (a
    /// record half written is still better than none after it).
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        // Whatever path the command took out, what was captured is kept.
        let _ = self.lock().out.flush();
    }
}

impl State {
    /// The address this side had towards `peer` on a socket bound to
    /// `local`: `local` itself, or for a wildcard the one the route to
    /// `peer` starts from; in `peer`'s family (a dual-stack socket talks
    /// to IPv4 peers in IPv4).
    fn own_address(&mut self, local: SocketAddr, peer: SocketAddr) -> SocketAddr {
        let local = canonical(local);
        let ip = local.ip();
        if !ip.is_unspecified() && ip.is_ipv4() == peer.is_ipv4() {
            return local;
        }
        let own = *self
            .routes
            .entry(peer.ip())
            .or_insert_with(|| route_source(peer.ip()));
        SocketAddr::new(own, local.port())
    }

    /// Writes one record, unless a write has failed before.
    fn write(&mut self, packet: &Packet<'_>) {
        if self.failed.is_some() {
            return;
        }
        self.record.clear();
        let wire_len = build(&mut self.record, packet);
        let captured = self.record.len() - 16;
        let since = packet
            .time
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        let header = &mut self.record[..16];
        // pcap's seconds are 32 bits: good until 2106.
        header[0..4].copy_from_slice(&(since.as_secs() as u32).to_le_bytes());
        header[4..8].copy_from_slice(&since.subsec_nanos().to_le_bytes());
        header[8..12].copy_from_slice(&(captured as u32).to_le_bytes());
        header[12..16].copy_from_slice(&(wire_len as u32).to_le_bytes());
        let mut written = self.out.write_all(&self.record);
        let age = packet.time.duration_since(self.flushed).unwrap_or_default();
        if written.is_ok() && age >= FLUSH_AFTER {
            written = self.out.flush();
            self.flushed = packet.time;
        }
        if let Err(e) = written {
            self.failed = Some(e);
        }
    }
}

/// Appends a record for `packet` to `record`: 16 bytes of record header
/// (filled in by the caller), the IP and UDP headers, and the bytes
/// received. Returns the packet's length on the wire.
fn build(record: &mut Vec<u8>, packet: &Packet<'_>) -> usize {
    record.resize(16, 0);
    let complete = packet.len == packet.data.len();
    // The UDP length field is 16 bits: nothing longer reaches a socket.
    let udp_len = (UdpHeader::LEN + packet.len).min(usize::from(u16::MAX));
    let mut udp = UdpHeader {
        source_port: packet.from.port(),
        destination_port: packet.to.port(),
        length: udp_len as u16,
        checksum: TRUNCATED_CHECKSUM,
    };
    let ip_len = match (packet.from.ip(), packet.to.ip()) {
        (IpAddr::V4(from), IpAddr::V4(to)) => {
            let payload = udp_len.min(usize::from(u16::MAX) - Ipv4Header::MIN_LEN) as u16;
            let mut ip = Ipv4Header::new(payload, TTL, IpNumber::UDP, from.octets(), to.octets())
                .expect("the payload length is clamped to what IPv4 holds");
            ip.dont_fragment = false;
            ip.header_checksum = ip.calc_header_checksum();
            if complete {
                udp.checksum = udp
                    .calc_checksum_ipv4_raw(ip.source, ip.destination, packet.data)
                    .unwrap_or(0);
            }
            ip.write(record).expect("writing to a Vec");
            Ipv4Header::MIN_LEN
        }
        (from, to) => {
            let ip = Ipv6Header {
                traffic_class: 0,
                flow_label: Ipv6FlowLabel::ZERO,
                payload_length: udp_len as u16,
                next_header: IpNumber::UDP,
                hop_limit: TTL,
                source: v6(from).octets(),
                destination: v6(to).octets(),
            };
            if complete {
                udp.checksum = udp
                    .calc_checksum_ipv6_raw(ip.source, ip.destination, packet.data)
                    .unwrap_or(0);
            }
            ip.write(record).expect("writing to a Vec");
            Ipv6Header::LEN
        }
    };
    udp.write(record).expect("writing to a Vec");
    record.extend_from_slice(packet.data);
    ip_len + udp_len
}

/// `time` in nanoseconds since the Unix epoch (0 before it).
fn unix_nanos(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos() as u64)
}

/// `ip` as IPv6 (an IPv4 address mapped; only reached when the two ends
/// of a record are of different families, which a socket never sees).
fn v6(ip: IpAddr) -> Ipv6Addr {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

/// The source address the routing table picks for datagrams to `peer`
/// (a `connect` on a throwaway socket: nothing is sent); the wildcard of
/// `peer`'s family when there is no route.
fn route_source(peer: IpAddr) -> IpAddr {
    let unspecified: IpAddr = match peer {
        IpAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        IpAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    };
    UdpSocket::bind(SocketAddr::new(unspecified, 0))
        .and_then(|socket| {
            socket.connect(SocketAddr::new(peer, 9))?;
            socket.local_addr()
        })
        .map(|addr| canonical(addr).ip())
        .unwrap_or(unspecified)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// A writer the test can read back.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// A writer that fails after the file header.
    struct Full(usize);

    impl Write for Full {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.0 < buf.len() {
                return Err(io::Error::from_raw_os_error(28)); // ENOSPC
            }
            self.0 -= buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    fn u32_at(bytes: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap())
    }

    /// The one's complement sum of `bytes` as 16-bit words: 0xffff over a
    /// header whose checksum is right.
    fn sum(bytes: &[u8]) -> u16 {
        let mut total: u32 = bytes
            .chunks(2)
            .map(|w| u32::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)])))
            .sum();
        while total > 0xffff {
            total = (total & 0xffff) + (total >> 16);
        }
        total as u16
    }

    /// The file header is pcap's (nanosecond magic, 2.4, LINKTYPE_RAW);
    /// a sent IPv4 datagram becomes one record whose IP and UDP headers
    /// carry the addresses, the lengths and checksums that verify.
    #[test]
    fn an_ipv4_datagram_is_one_record_with_valid_headers() {
        let file = Shared::default();
        let capture = Capture::new(Path::new("t.pcap"), Box::new(file.clone())).unwrap();
        capture.sent(addr("127.0.0.1:4000"), addr("127.0.0.2:5000"), b"hello");
        capture.finish().unwrap();
        let bytes = file.0.lock().unwrap().clone();
        assert_eq!(u32_at(&bytes, 0), MAGIC_NANOS);
        assert_eq!(&bytes[4..8], &[2, 0, 4, 0]);
        assert_eq!(u32_at(&bytes, 20), LINKTYPE_RAW);
        let record = &bytes[24..];
        assert_eq!(u32_at(record, 8), 20 + 8 + 5, "captured length");
        assert_eq!(u32_at(record, 12), 20 + 8 + 5, "original length");
        let ip = &record[16..36];
        assert_eq!(ip[0], 0x45);
        assert_eq!(u16::from_be_bytes([ip[2], ip[3]]), 33);
        assert_eq!(ip[9], 17, "UDP");
        assert_eq!(&ip[12..16], &[127, 0, 0, 1]);
        assert_eq!(&ip[16..20], &[127, 0, 0, 2]);
        assert_eq!(sum(ip), 0xffff, "IPv4 header checksum");
        let udp = &record[36..];
        assert_eq!(u16::from_be_bytes([udp[0], udp[1]]), 4000);
        assert_eq!(u16::from_be_bytes([udp[2], udp[3]]), 5000);
        assert_eq!(u16::from_be_bytes([udp[4], udp[5]]), 13);
        let mut pseudo = ip[12..20].to_vec();
        pseudo.extend_from_slice(&[0, 17, 0, 13]);
        pseudo.extend_from_slice(udp);
        assert_eq!(sum(&pseudo), 0xffff, "UDP checksum");
        assert_eq!(&udp[8..], b"hello");
        assert_eq!(record.len(), 16 + 33);
        assert_eq!(Capture::record_bytes(5, false), record.len());
    }

    /// A truncated receive keeps what was received as the captured length
    /// and the true length as the original one and in the UDP length, with
    /// a non-zero UDP checksum (0 is illegal over IPv6); an IPv4-mapped
    /// sender on a dual-stack socket is written as IPv4.
    #[test]
    fn a_truncated_receive_keeps_its_true_length() {
        let file = Shared::default();
        let capture = Capture::new(Path::new("t.pcap"), Box::new(file.clone())).unwrap();
        let time = SystemTime::UNIX_EPOCH + std::time::Duration::new(1_700_000_000, 123_456_789);
        capture.received(
            addr("[::ffff:127.0.0.1]:6000"),
            addr("[::ffff:127.0.0.1]:7000"),
            b"abcd",
            1000,
            Some(time),
        );
        capture.finish().unwrap();
        let bytes = file.0.lock().unwrap().clone();
        let record = &bytes[24..];
        assert_eq!(u32_at(record, 0), 1_700_000_000);
        assert_eq!(u32_at(record, 4), 123_456_789);
        assert_eq!(u32_at(record, 8), 28 + 4);
        assert_eq!(u32_at(record, 12), 28 + 1000);
        assert_eq!(record[16], 0x45, "IPv4");
        assert_eq!(u16::from_be_bytes([record[18], record[19]]), 1028);
        assert_eq!(u16::from_be_bytes([record[40], record[41]]), 1008);
        assert_eq!(
            u16::from_be_bytes([record[42], record[43]]),
            TRUNCATED_CHECKSUM,
            "a checksum that cannot be computed is not written as 0"
        );
    }

    /// An IPv6 datagram has a 40-byte header with the payload length, and
    /// a GSO send becomes one record per segment.
    #[test]
    fn ipv6_segments_are_separate_records() {
        let file = Shared::default();
        let capture = Capture::new(Path::new("t.pcap"), Box::new(file.clone())).unwrap();
        capture.sent_segments(addr("[::1]:1"), addr("[::1]:2"), &[7u8; 250], 100);
        capture.finish().unwrap();
        let bytes = file.0.lock().unwrap().clone();
        let mut at = 24;
        let mut lengths = Vec::new();
        while at < bytes.len() {
            let captured = u32_at(&bytes, at + 8) as usize;
            let ip = &bytes[at + 16..];
            assert_eq!(ip[0] >> 4, 6);
            assert_eq!(ip[6], 17);
            lengths.push(u16::from_be_bytes([ip[4], ip[5]]) - 8);
            at += 16 + captured;
        }
        assert_eq!(lengths, [100, 100, 50]);
        assert_eq!(
            bytes.len() - 24,
            2 * Capture::record_bytes(100, true) + Capture::record_bytes(50, true)
        );
    }

    /// Records are buffered, and written out when one comes a second or
    /// more after the last write: a trickle reaches the file while the
    /// command runs, not only at its end.
    #[test]
    fn a_trickle_reaches_the_file_while_the_command_runs() {
        let file = Shared::default();
        let capture = Capture::new(Path::new("t.pcap"), Box::new(file.clone())).unwrap();
        let written = || file.0.lock().unwrap().len();
        let (local, peer) = (addr("127.0.0.1:1"), addr("127.0.0.1:2"));
        let now = SystemTime::now();
        capture.received(local, peer, b"one", 3, Some(now));
        assert_eq!(written(), 24, "the first record waits in the buffer");
        let later = now + std::time::Duration::from_secs(2);
        capture.received(local, peer, b"two", 3, Some(later));
        assert_eq!(written(), 24 + 2 * (16 + 28 + 3));
    }

    /// A record left in the buffer is written out by [`Capture::idle`]
    /// once it has waited [`FLUSH_AFTER`], not before; with nothing
    /// buffered, `idle` writes nothing.
    #[test]
    fn an_idle_socket_writes_out_what_waits() {
        let file = Shared::default();
        let capture = Capture::new(Path::new("t.pcap"), Box::new(file.clone())).unwrap();
        let written = || file.0.lock().unwrap().len();
        capture.idle();
        assert_eq!(written(), 24);
        let (local, peer) = (addr("127.0.0.1:1"), addr("127.0.0.1:2"));
        capture.received(local, peer, b"one", 3, None);
        capture.idle();
        assert_eq!(written(), 24, "a fresh record waits in the buffer");
        let start = std::time::Instant::now();
        while written() == 24 && start.elapsed() < 3 * FLUSH_AFTER {
            std::thread::sleep(Duration::from_millis(20));
            capture.idle();
        }
        assert_eq!(written(), 24 + 16 + 28 + 3);
        assert!(start.elapsed() >= FLUSH_AFTER / 2, "{:?}", start.elapsed());
        assert_eq!(capture.due.load(Ordering::Relaxed), 0);
    }

    /// A write that fails is reported once, as the capture's error; the
    /// run goes on without writing more.
    #[test]
    fn a_failed_write_is_reported_once() {
        let capture = Capture::new(Path::new("full.pcap"), Box::new(Full(24))).unwrap();
        for _ in 0..20_000 {
            capture.sent(addr("127.0.0.1:1"), addr("127.0.0.1:2"), &[0; 100]);
        }
        let err = capture.finish().unwrap_err();
        assert!(matches!(err, Error::WritePcap { .. }), "{err}");
        assert!(err.to_string().contains("full.pcap"), "{err}");
        assert!(
            err.hint().is_some_and(|h| h.contains("disk is full")),
            "{err}"
        );
        assert!(capture.finish().is_ok());
    }
}
