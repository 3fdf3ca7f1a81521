//! `dgram lab fragments`: a UDP datagram larger than the path MTU leaves
//! as IP fragments, and losing any one fragment loses the whole datagram.
//! Measured in two network namespaces the experiment builds and removes
//! (Linux, root), joined by a veth link of MTU 1400: datagrams of 1000 B
//! (one packet) and 3000 B (three fragments: 1376 + 1376 + 256 bytes of
//! UDP datagram behind 20-byte IP headers) cross it while nftables on the
//! receiver drops the middle fragment of one datagram in four (those
//! marked by a byte there), and counts each drop.
//!
//! The rule sits on the receiver's `prerouting` hook at priority −450,
//! before the kernel's defragmentation (−400): its `input` hook only ever
//! sees whole datagrams, reassembled. Only the middle fragment (offset
//! 1376, `frag-off & 0x1fff == 172` in 8-byte units) is ever dropped, so
//! no datagram loses two: datagrams lost = fragments dropped, exactly, and
//! sent = received + lost.

use crate::Error;
use crate::model::lab::{LabReport, Verdict};
use crate::runtime::Shutdown;

/// What `dgram lab fragments` shows, in one line.
pub const WHAT: &str = "a datagram larger than the path MTU is sent as fragments; one fragment lost loses it whole (root; network namespaces of its own; runs only when named)";

/// The claim tested.
const CLAIM: &str = "a UDP datagram is delivered whole or not at all, whatever its size";

/// The prediction.
const PREDICTION: &str = "over a 1400-byte MTU a 3000-byte datagram leaves as 3 IP fragments; the 50 datagrams of 200 whose middle fragment nftables drops never reach the socket, though their other 100 fragments arrive (lost = fragments dropped); 1000-byte datagrams are not fragmented and none is lost";

fn new_report() -> LabReport {
    LabReport::new("fragments", WHAT, PREDICTION.to_string())
}

/// Runs the experiment: its report, or one that says why it could not
/// measure (not root, no `ip` or `nft`, a portable build). A signal stops
/// it early with [`Error::Interrupted`], after the namespaces are removed.
pub fn run(shutdown: &Shutdown) -> Result<Vec<LabReport>, Error> {
    #[cfg(all(target_os = "linux", not(feature = "portable")))]
    {
        if let Some(missing) = linux::missing() {
            return Ok(vec![not_measured(&missing)]);
        }
        linux::measure(shutdown).map(|report| vec![report])
    }
    #[cfg(not(all(target_os = "linux", not(feature = "portable"))))]
    {
        let _ = shutdown;
        Ok(vec![not_measured(
            "needs Linux network namespaces (this build is the portable one)",
        )])
    }
}

fn not_measured(why: &str) -> LabReport {
    let mut report = new_report();
    report.finding(
        CLAIM,
        Verdict::NotMeasured(why.to_string()),
        "nothing was sent: the experiment measures in network namespaces it builds with ip and nft, as root".into(),
    );
    report.fact("measured", false);
    report
}

#[cfg(all(target_os = "linux", not(feature = "portable")))]
mod linux {
    use std::collections::BTreeSet;
    use std::io;
    use std::net::{SocketAddr, UdpSocket};
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    use socket2::SockRef;

    use super::{CLAIM, new_report};
    use crate::Error;
    use crate::model::lab::{LabReport, Table, Verdict};
    use crate::net::netns::{self, Namespaces, enter, ip};
    use crate::net::sys::{self, PmtuMode};
    use crate::runtime::Shutdown;

    /// The start of every namespace's name: `dgram-labfrag-PID-…`.
    const STEM: &str = "dgram-labfrag";
    /// The link's MTU.
    const MTU: &str = "1400";
    /// Datagrams sent of each size.
    const COUNT: u32 = 200;
    /// The sizes sent: one packet, and three fragments.
    const SIZES: [usize; 2] = [1000, 3000];
    /// The receiver's address.
    const RX: &str = "10.79.0.2:4000";
    /// The byte that marks a datagram for the rule: written at UDP
    /// payload offset [`MARK_AT`] of every fourth 3000-byte datagram.
    const MARK: u8 = 0xd0;
    /// Where the middle fragment's data begins in the UDP payload: 1376
    /// bytes of UDP datagram in the first fragment, less the 8-byte UDP
    /// header.
    const MARK_AT: usize = 1368;
    /// One datagram in this many is marked.
    const MARK_EVERY: u32 = 4;
    /// How long the receiver waits for stragglers after the last send
    /// (every hop is a veth in this machine, crossed in microseconds).
    const QUIET: Duration = Duration::from_millis(300);

    /// The receiver's rules: at prerouting before defragmentation, drop
    /// the middle fragment (offset 1376 B = 172 × 8) of every datagram
    /// whose byte there (the fragment's first, right after its 20-byte IP
    /// header: `@nh,160,8`) is the [`MARK`], counted.
    const RULES: &str = "table ip labfrag {
  chain pre {
    type filter hook prerouting priority -450; policy accept;
    ip saddr 10.79.0.1 ip frag-off & 0x1fff == 172 @nh,160,8 == 0xd0 counter drop
  }
}
";

    /// What this run lacks to measure, as "needs …".
    pub fn missing() -> Option<String> {
        netns::lab_missing()
    }

    fn lab_error(what: &'static str) -> impl Fn(io::Error) -> Error {
        move |source| Error::Lab { what, source }
    }

    /// The two hosts joined by a 1400-byte link, the rule loaded.
    fn build() -> Result<(Namespaces, String, String), Error> {
        let mut namespaces = Namespaces::new(format!("{STEM}-{}", std::process::id()));
        let tx = namespaces.add("tx")?;
        let rx = namespaces.add("rx")?;
        ip(&[
            "-n", &tx, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", &rx,
        ])?;
        for (name, addr) in [(&tx, "10.79.0.1/24"), (&rx, "10.79.0.2/24")] {
            ip(&["-n", name, "link", "set", "eth0", "mtu", MTU, "up"])?;
            ip(&["-n", name, "addr", "add", addr, "dev", "eth0"])?;
        }
        netns::nft(&rx, RULES)?;
        Ok((namespaces, tx, rx))
    }

    /// A non-blocking UDP socket bound to `addr` (an address of the lab)
    /// in namespace `name`.
    fn socket(name: &str, addr: &str) -> Result<UdpSocket, Error> {
        netns::udp_socket_in(name, addr.parse().expect("an address of the lab"))
    }

    /// The fragments the rule dropped so far (its counter).
    fn dropped(rx: &str) -> Result<u64, Error> {
        let output = Command::new("ip")
            .args(["netns", "exec", rx, "nft", "list", "table", "ip", "labfrag"])
            .stdin(Stdio::null())
            .output()
            .map_err(lab_error("read the nftables counter"))?;
        String::from_utf8_lossy(&output.stdout)
            .split("packets ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .ok_or(Error::Lab {
                what: "read the nftables counter",
                source: io::ErrorKind::InvalidData.into(),
            })
    }

    /// The receiver's reassembly counters (`/proc/net/snmp`, `Ip:`; read
    /// as `/proc/thread-self/net`, the entering thread's namespace, not the
    /// process's):
    /// fragments that needed reassembly, datagrams reassembled.
    fn reassembly(rx: &str) -> (u64, u64) {
        let text =
            enter(rx, || std::fs::read_to_string("/proc/thread-self/net/snmp")).unwrap_or_default();
        let mut lines = text.lines().filter(|l| l.starts_with("Ip:"));
        let (Some(names), Some(values)) = (lines.next(), lines.next()) else {
            return (0, 0);
        };
        let field = |wanted: &str| {
            names
                .split_whitespace()
                .zip(values.split_whitespace())
                .find(|(name, _)| *name == wanted)
                .and_then(|(_, value)| value.parse().ok())
                .unwrap_or(0)
        };
        (field("ReasmReqds"), field("ReasmOKs"))
    }

    /// What one size's run counted.
    struct Counted {
        size: usize,
        sent: u32,
        received: u32,
        dropped: u64,
        fragments_in: u64,
        reassembled: u64,
    }

    /// Reads everything queued on `socket` into `seen` (by number).
    fn drain(socket: &UdpSocket, size: usize, seen: &mut BTreeSet<u32>) -> Result<(), Error> {
        let mut buf = vec![0u8; 65_536];
        loop {
            match socket.recv(&mut buf) {
                Ok(n) if n == size && n >= 4 => {
                    seen.insert(u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]));
                }
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) =>
                {
                    return Ok(());
                }
                Err(e) => return Err(lab_error("receive a datagram")(e)),
            }
        }
    }

    fn send_size(
        tx: &UdpSocket,
        rx: &UdpSocket,
        rx_name: &str,
        size: usize,
        shutdown: &Shutdown,
    ) -> Result<Counted, Error> {
        let to: SocketAddr = RX.parse().expect("an address of the lab");
        let dropped_before = dropped(rx_name)?;
        let (reqds_before, oks_before) = reassembly(rx_name);
        let mut seen = BTreeSet::new();
        let mut sent = 0;
        for n in 0..COUNT {
            shutdown.check()?;
            let mut datagram = vec![0x5a; size];
            datagram[..4].copy_from_slice(&n.to_be_bytes());
            if size > MARK_AT && n % MARK_EVERY == 0 {
                datagram[MARK_AT] = MARK;
            }
            tx.send_to(&datagram, to).map_err(|source| Error::Send {
                to,
                len: size,
                source,
            })?;
            sent += 1;
            // Read as it comes, so that the receive buffer never fills
            // (a kernel drop there would be a loss of another kind).
            drain(rx, size, &mut seen)?;
        }
        let end = Instant::now() + QUIET;
        while Instant::now() < end {
            shutdown.check()?;
            drain(rx, size, &mut seen)?;
            std::thread::sleep(Duration::from_millis(5));
        }
        let (reqds, oks) = reassembly(rx_name);
        Ok(Counted {
            size,
            sent,
            received: seen.len() as u32,
            dropped: dropped(rx_name)? - dropped_before,
            fragments_in: reqds - reqds_before,
            reassembled: oks - oks_before,
        })
    }

    /// Builds the namespaces, sends each size, and reports.
    pub fn measure(shutdown: &Shutdown) -> Result<LabReport, Error> {
        let stale = netns::remove_stale(STEM);
        let (namespaces, tx_name, rx_name) = build()?;
        let rx = socket(&rx_name, RX)?;
        let tx = socket(&tx_name, "10.79.0.1:0")?;
        // No don't-fragment flag: the sender's kernel fragments what its
        // interface cannot carry whole.
        sys::set_pmtu_mode(&SockRef::from(&tx), PmtuMode::Dont).map_err(|source| {
            Error::SetOption {
                option: "IP_MTU_DISCOVER (IP_PMTUDISC_DONT)",
                source,
            }
        })?;
        tx.set_nonblocking(false)
            .map_err(lab_error("make the sender blocking"))?;
        let mut counted = Vec::new();
        for size in SIZES {
            counted.push(send_size(&tx, &rx, &rx_name, size, shutdown)?);
        }
        drop((tx, rx));
        drop(namespaces);

        let mut report = new_report();
        report.table = Table::new(&[
            "datagram",
            "IP packets each",
            "sent",
            "fragments dropped (nft counter)",
            "received",
            "lost",
            "fragments arrived (ReasmReqds)",
            "datagrams reassembled (ReasmOKs)",
        ]);
        for c in &counted {
            let packets = if c.size + 28 <= 1400 {
                1
            } else {
                (c.size + 8).div_ceil(1376)
            };
            report.table.row(vec![
                format!("{} B", c.size),
                packets.to_string(),
                c.sent.to_string(),
                c.dropped.to_string(),
                c.received.to_string(),
                (c.sent - c.received).to_string(),
                c.fragments_in.to_string(),
                c.reassembled.to_string(),
            ]);
        }
        let (small, large) = (&counted[0], &counted[1]);
        let large_lost = u64::from(large.sent - large.received);
        let adds_up = large.dropped > 0
            && large_lost == large.dropped
            && small.dropped == 0
            && small.received == small.sent;
        report.finding(
            CLAIM,
            if adds_up {
                Verdict::True
            } else {
                Verdict::FalseHere
            },
            format!(
                "whole or not at all, but above the path MTU any one lost fragment loses it: {} datagrams of {} B, nftables dropped {} middle fragments, {} datagrams never reached the socket ({} received; their other fragments arrived and were thrown away); {} datagrams of {} B, one packet each: {} dropped, {} received",
                large.sent,
                large.size,
                large.dropped,
                large_lost,
                large.received,
                small.sent,
                small.size,
                small.dropped,
                small.received
            ),
        );
        report.fact("measured", true);
        report.fact("mtu", 1400);
        report.fact("marked", large.sent.div_ceil(MARK_EVERY));
        report.fact("sent", large.sent);
        report.fact("fragments_dropped", large.dropped);
        report.fact("received", large.received);
        report.fact("lost", large_lost);
        report.fact("lost_equals_dropped", large_lost == large.dropped);
        report.fact("small_lost", small.sent - small.received);
        report.fact("fragments_arrived", large.fragments_in);
        report.fact("reassembled", large.reassembled);
        report.fact("stale_namespaces_removed", stale);
        Ok(report)
    }
}
