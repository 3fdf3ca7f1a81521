//! `dgram lab nat`: what a NAT does to UDP, measured in network namespaces
//! the experiment builds and removes itself (Linux, root): the mapping a
//! router makes for one socket to several destinations, which unsolicited
//! datagrams get in, how long a mapping lives, and why hole punching works
//! between two "easy" NATs and not otherwise. The socket course's "public
//! IP" section stops at "the server sees the router's address"; this is
//! the rest.
//!
//! The world (addresses from the documentation ranges, in namespaces
//! called `dgram-labnat-PID-…`): an "internet" bridge with a server host
//! (203.0.113.10 and .11), another host (.20) and four routers (.1 to
//! .4), each with one home host behind it (192.168.N.2). Two routers
//! `masquerade` ("easy": Linux keeps the source port), two `masquerade
//! fully-random` ("hard": a new port per destination); all four have a
//! home router's input policy (drop; accept the LAN, `lo` and
//! `ct state established,related`).
//!
//! The sockets are made inside the namespaces from a short-lived thread
//! ([`netns::enter`](crate::net::netns::enter)) and then all used from this
//! one: no helper process per host, no timing between processes to trust,
//! and every datagram seen by the code that counts it.

use crate::Error;
use crate::model::lab::{LabReport, Verdict};
use crate::runtime::Shutdown;

/// What `dgram lab nat` shows, in one line.
pub const WHAT: &str = "what a NAT does to UDP: mapping, filtering, lifetime, hole punching (root; network namespaces of its own; runs only when named)";

/// One part of the experiment: its report's name, what it does, what it
/// predicts, and the claims it tests.
struct Part {
    name: &'static str,
    what: &'static str,
    prediction: &'static str,
    claims: &'static [&'static str],
}

const MAPPING: Part = Part {
    name: "nat-mapping",
    what: "the public address a NAT gives one socket, seen by three server addresses",
    prediction: "masquerade gives the socket one public address and port (its own port) for every destination; masquerade fully-random a new port for each",
    claims: &[
        "a socket behind a NAT has one public address: the one a server sees is the one everyone sees",
    ],
};

const FILTERING: Part = Part {
    name: "nat-filtering",
    what: "which unsolicited datagrams reach a home host through its router",
    prediction: "after the host sent to one server address, only datagrams from that address and port get in; the server's other port, its other address and another host are dropped",
    claims: &[
        "once a host behind a NAT has sent to a server, it can be reached at its public address",
    ],
};

const LIFETIME: Part = Part {
    name: "nat-lifetime",
    what: "how long a router keeps a UDP mapping (nf_conntrack_udp_timeout set to 3 s)",
    prediction: "an answer 1 s after the host's datagram gets in; one 4.5 s after does not (the mapping expired at 3 s); with a keepalive every second it does",
    claims: &["a server can answer a client behind a NAT whenever it likes"],
};

const PUNCHING: Part = Part {
    name: "nat-punching",
    what: "two homes behind their own routers send to each other's public address at once",
    prediction: "easy–easy connects; easy–hard and hard–hard do not (a hard NAT's mapping for the peer is not the one the server saw)",
    claims: &["two hosts behind NATs can talk directly once each knows the other's public address"],
};

const PARTS: [&Part; 4] = [&MAPPING, &FILTERING, &LIFETIME, &PUNCHING];

/// Runs the experiment: a report per part, or, where it cannot be measured
/// (not root, no `ip` or `nft`, a portable build), a report per part that
/// says why. A signal stops it early with [`Error::Interrupted`], after the
/// namespaces are removed.
pub fn run(shutdown: &Shutdown) -> Result<Vec<LabReport>, Error> {
    #[cfg(all(target_os = "linux", not(feature = "portable")))]
    {
        if let Some(missing) = linux::missing() {
            return Ok(not_measured(&missing));
        }
        linux::measure(shutdown)
    }
    #[cfg(not(all(target_os = "linux", not(feature = "portable"))))]
    {
        let _ = shutdown;
        Ok(not_measured(
            "needs Linux network namespaces (this build is the portable one)",
        ))
    }
}

/// A report per part whose every claim is not measured, for `why`.
fn not_measured(why: &str) -> Vec<LabReport> {
    PARTS
        .iter()
        .map(|part| {
            let mut report = new_report(part);
            for claim in part.claims {
                report.finding(
                    claim,
                    Verdict::NotMeasured(why.to_string()),
                    "nothing was sent: the experiment measures in network namespaces it builds with ip and nft, as root".into(),
                );
            }
            report.fact("measured", false);
            report
        })
        .collect()
}

fn new_report(part: &Part) -> LabReport {
    LabReport::new(part.name, part.what, part.prediction.to_string())
}

#[cfg(all(target_os = "linux", not(feature = "portable")))]
mod linux {
    use std::io;
    use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
    use std::time::{Duration, Instant};

    use crossbeam_channel::RecvTimeoutError;
    use serde_json::json;

    use super::{FILTERING, LIFETIME, MAPPING, PUNCHING, new_report};
    use crate::Error;
    use crate::model::lab::{LabReport, Table, Verdict};
    use crate::net::netns::{self, Namespaces, ip};
    use crate::runtime::Shutdown;

    /// The start of every namespace's name: `dgram-labnat-PID-…`.
    const STEM: &str = "dgram-labnat";
    /// The lifetime part's router timeout, in seconds.
    const TIMEOUT_S: u64 = 3;
    /// How long to listen for what has not come: every hop here is a veth
    /// in this machine, crossed in microseconds.
    const QUIET: Duration = Duration::from_millis(300);
    /// How long to wait for what must come.
    const PATIENCE: Duration = Duration::from_secs(2);

    /// What this run lacks to measure, as "needs …".
    pub fn missing() -> Option<String> {
        netns::lab_missing()
    }

    /// A router's kind of NAT.
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Nat {
        /// `masquerade`: endpoint-independent mapping, the port kept.
        Easy,
        /// `masquerade fully-random`: a new port per destination.
        Hard,
    }

    impl Nat {
        fn rule(self) -> &'static str {
            match self {
                Nat::Easy => "masquerade",
                Nat::Hard => "masquerade fully-random",
            }
        }
    }

    /// A home: its router's and its host's namespaces.
    struct Home {
        label: &'static str,
        /// Its number: router 203.0.113.N, host 192.168.N.2.
        n: u8,
        nat: Nat,
        router: String,
        host: String,
    }

    /// The namespaces and the outside sockets every part uses.
    struct World {
        homes: Vec<Home>,
        /// The server's sockets: 203.0.113.10:3478, .10:3479, .11:3478.
        servers: Vec<UdpSocket>,
        /// Another host on the internet: 203.0.113.20:3478.
        other: UdpSocket,
        /// Last, so that the sockets above close before their namespaces
        /// go.
        _namespaces: Namespaces,
    }

    const SERVER_ADDRS: [&str; 3] = [
        "203.0.113.10:3478",
        "203.0.113.10:3479",
        "203.0.113.11:3478",
    ];
    const OTHER_ADDR: &str = "203.0.113.20:3478";

    /// "yes" or "no".
    fn yes(value: bool) -> String {
        if value { "yes" } else { "no" }.to_string()
    }

    fn lab_error(what: &'static str) -> impl Fn(io::Error) -> Error {
        move |source| Error::Lab { what, source }
    }

    /// Waits `time`, or less if a signal comes (then an error).
    fn pause(time: Duration, shutdown: &Shutdown) -> Result<(), Error> {
        match shutdown.requests().recv_timeout(time) {
            Ok(signal) => Err(Error::Interrupted { signal }),
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => Ok(()),
        }
    }

    /// A non-blocking UDP socket bound to `addr` (an address of the lab)
    /// in namespace `name`.
    fn socket(name: &str, addr: &str) -> Result<UdpSocket, Error> {
        netns::udp_socket_in(name, addr.parse().expect("an address of the lab"))
    }

    /// Everything queued on `socket` now.
    fn drain(socket: &UdpSocket, into: &mut Vec<(SocketAddr, String)>) -> Result<(), Error> {
        let mut buf = [0u8; 512];
        loop {
            match socket.recv_from(&mut buf) {
                Ok((n, from)) => into.push((from, String::from_utf8_lossy(&buf[..n]).into_owned())),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) =>
                {
                    return Ok(());
                }
                // An ICMP error queued by an earlier send: not a datagram.
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => continue,
                Err(e) => return Err(lab_error("receive a datagram")(e)),
            }
        }
    }

    /// What each socket receives during `time`.
    fn listen(
        sockets: &[&UdpSocket],
        time: Duration,
        shutdown: &Shutdown,
    ) -> Result<Vec<Vec<(SocketAddr, String)>>, Error> {
        let mut got = vec![Vec::new(); sockets.len()];
        let end = Instant::now() + time;
        loop {
            for (socket, into) in sockets.iter().zip(got.iter_mut()) {
                drain(socket, into)?;
            }
            let now = Instant::now();
            if now >= end {
                return Ok(got);
            }
            pause((end - now).min(Duration::from_millis(5)), shutdown)?;
        }
    }

    /// The source of the datagram `tag` at `socket`, within [`PATIENCE`]
    /// (other datagrams are set aside).
    fn source_of(
        socket: &UdpSocket,
        tag: &str,
        shutdown: &Shutdown,
    ) -> Result<Option<SocketAddr>, Error> {
        let end = Instant::now() + PATIENCE;
        let mut got = Vec::new();
        while Instant::now() < end {
            drain(socket, &mut got)?;
            if let Some((from, _)) = got.iter().find(|(_, text)| text == tag) {
                return Ok(Some(*from));
            }
            pause(Duration::from_millis(5), shutdown)?;
        }
        Ok(None)
    }

    /// The source the server saw for `tag`, or an error: without it the
    /// part has nothing to measure.
    fn seen_by(socket: &UdpSocket, tag: &str, shutdown: &Shutdown) -> Result<SocketAddr, Error> {
        source_of(socket, tag, shutdown)?.ok_or(Error::Lab {
            what: "hear a home host's datagram at the server (the lab's routing is broken)",
            source: io::ErrorKind::TimedOut.into(),
        })
    }

    fn send(socket: &UdpSocket, text: &str, to: SocketAddr) -> Result<(), Error> {
        socket
            .send_to(text.as_bytes(), to)
            .map(|_| ())
            .map_err(|source| Error::Send {
                to,
                len: text.len(),
                source,
            })
    }

    fn addr(text: &str) -> SocketAddr {
        text.parse().expect("an address of the lab")
    }

    /// Connects namespace `name` to the internet bridge (in `switch`) as
    /// `eth0`, with `addrs`.
    fn attach(switch: &str, port: &str, name: &str, addrs: &[String]) -> Result<(), Error> {
        ip(&[
            "-n", switch, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns",
            name,
        ])?;
        ip(&["-n", switch, "link", "set", port, "master", "br0", "up"])?;
        for a in addrs {
            ip(&["-n", name, "addr", "add", a, "dev", "eth0"])?;
        }
        ip(&["-n", name, "link", "set", "eth0", "up"])
    }

    /// A home router's rules: masquerade (of the kind asked) onto the
    /// internet, and drop what is neither from the home nor an answer.
    /// Without the input `drop`, the first probe of a hole punch to arrive
    /// makes a conntrack entry of its own, and the router then maps the
    /// host's own probe to another port (real home routers drop it). `fwd`
    /// is an nft keyword: the chain is `forward`.
    fn rules(nat: Nat) -> String {
        format!(
            "table ip nat {{\n\
               chain post {{ type nat hook postrouting priority srcnat; policy accept; oifname \"eth0\" {}; }}\n\
             }}\n\
             table inet home {{\n\
               chain input {{ type filter hook input priority 0; policy drop;\n\
                 iifname \"lo\" accept; iifname \"lan\" accept; ct state established,related accept; }}\n\
               chain forward {{ type filter hook forward priority 0; policy drop;\n\
                 iifname \"lan\" accept; ct state established,related accept; }}\n\
             }}\n",
            nat.rule()
        )
    }

    /// Builds the world. The first namespace that cannot be made means the
    /// lab cannot run here (a container without the right, say): that is
    /// `Ok(Err(why))`, not a failure.
    fn build(shutdown: &Shutdown) -> Result<Result<World, String>, Error> {
        let mut namespaces = Namespaces::new(format!("{STEM}-{}", std::process::id()));
        let switch = match namespaces.add("net") {
            Ok(name) => name,
            Err(e) => {
                // An `ip` killed by Ctrl-C is no lack of rights.
                shutdown.check()?;
                return Ok(Err(format!("could not make a network namespace: {e}")));
            }
        };
        ip(&["-n", &switch, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &switch, "link", "set", "br0", "up"])?;
        let server = namespaces.add("server")?;
        attach(
            &switch,
            "srv",
            &server,
            &["203.0.113.10/24".into(), "203.0.113.11/24".into()],
        )?;
        let other = namespaces.add("other")?;
        attach(&switch, "oth", &other, &["203.0.113.20/24".into()])?;
        let mut homes = Vec::new();
        for (i, (label, nat)) in [
            ("easy-a", Nat::Easy),
            ("easy-b", Nat::Easy),
            ("hard-a", Nat::Hard),
            ("hard-b", Nat::Hard),
        ]
        .into_iter()
        .enumerate()
        {
            shutdown.check()?;
            let n = i as u8 + 1;
            let router = namespaces.add(&format!("r-{label}"))?;
            attach(
                &switch,
                &format!("r{n}"),
                &router,
                &[format!("203.0.113.{n}/24")],
            )?;
            let host = namespaces.add(&format!("h-{label}"))?;
            ip(&[
                "-n", &router, "link", "add", "lan", "type", "veth", "peer", "name", "eth0",
                "netns", &host,
            ])?;
            ip(&[
                "-n",
                &router,
                "addr",
                "add",
                &format!("192.168.{n}.1/24"),
                "dev",
                "lan",
            ])?;
            ip(&["-n", &router, "link", "set", "lan", "up"])?;
            ip(&[
                "-n",
                &host,
                "addr",
                "add",
                &format!("192.168.{n}.2/24"),
                "dev",
                "eth0",
            ])?;
            ip(&["-n", &host, "link", "set", "eth0", "up"])?;
            ip(&[
                "-n",
                &host,
                "route",
                "add",
                "default",
                "via",
                &format!("192.168.{n}.1"),
            ])?;
            netns::nft(&router, &rules(nat))?;
            netns::sysctl(&router, "net/ipv4/ip_forward", "1")?;
            homes.push(Home {
                label,
                n,
                nat,
                router,
                host,
            });
        }
        let servers = SERVER_ADDRS
            .iter()
            .map(|a| socket(&server, a))
            .collect::<Result<Vec<_>, _>>()?;
        let other = socket(&other, OTHER_ADDR)?;
        Ok(Ok(World {
            homes,
            servers,
            other,
            _namespaces: namespaces,
        }))
    }

    impl World {
        fn home(&self, label: &str) -> &Home {
            self.homes
                .iter()
                .find(|h| h.label == label)
                .expect("a home of the lab")
        }
    }

    /// A home host's address and a socket's port, as the host sees it.
    fn inside(home: &Home, socket: &UdpSocket) -> String {
        let port = socket.local_addr().map(|a| a.port()).unwrap_or(0);
        SocketAddrV4::new(Ipv4Addr::new(192, 168, home.n, 2), port).to_string()
    }

    /// Builds the world, runs the parts, removes the world. Ctrl-C at a
    /// terminal reaches the `ip` or `nft` running at that moment too, and
    /// its failure is then the interruption, not an error of its own.
    pub fn measure(shutdown: &Shutdown) -> Result<Vec<LabReport>, Error> {
        run_parts(shutdown).map_err(|e| match e {
            Error::Interrupted { .. } => e,
            e => shutdown.check().err().unwrap_or(e),
        })
    }

    fn run_parts(shutdown: &Shutdown) -> Result<Vec<LabReport>, Error> {
        let stale = netns::remove_stale(STEM);
        let world = match build(shutdown)? {
            Ok(world) => world,
            Err(why) => return Ok(super::not_measured(&why)),
        };
        let mut reports = vec![
            mapping(&world, shutdown)?,
            filtering(&world, shutdown)?,
            lifetime(&world, shutdown)?,
            punching(&world, shutdown)?,
        ];
        for report in &mut reports {
            report.fact("measured", true);
        }
        reports[0].fact("stale_namespaces_removed", stale);
        Ok(reports)
    }

    /// Part 1: one socket sends to three server addresses; the server says
    /// which source it saw for each.
    fn mapping(world: &World, shutdown: &Shutdown) -> Result<LabReport, Error> {
        let mut report = new_report(&MAPPING);
        report.table = Table::new(&[
            "router",
            "host socket",
            "seen by 203.0.113.10:3478",
            "by 203.0.113.10:3479",
            "by 203.0.113.11:3478",
            "mapping",
        ]);
        let mut verdicts = Vec::new();
        for (label, key) in [("easy-a", "masquerade"), ("hard-a", "fully_random")] {
            shutdown.check()?;
            let home = world.home(label);
            let socket = socket(&home.host, "0.0.0.0:0")?;
            let local = inside(home, &socket);
            let mut seen = Vec::new();
            for (i, server) in world.servers.iter().enumerate() {
                let tag = format!("mapping {label} {i}");
                send(&socket, &tag, addr(SERVER_ADDRS[i]))?;
                seen.push(seen_by(server, &tag, shutdown)?);
            }
            let same = seen.iter().all(|s| *s == seen[0]);
            let port = socket.local_addr().map(|a| a.port()).unwrap_or(0);
            let kept = seen.iter().all(|s| s.port() == port);
            let distinct = {
                let mut ports: Vec<u16> = seen.iter().map(|s| s.port()).collect();
                ports.sort_unstable();
                ports.dedup();
                ports.len()
            };
            let mut row = vec![home.nat.rule().to_string(), local];
            row.extend(seen.iter().map(|s| s.to_string()));
            row.push(if same && kept {
                "one for every destination, the port kept".into()
            } else if same {
                "one for every destination".into()
            } else {
                format!("{distinct} ports for {} destinations", seen.len())
            });
            report.table.row(row);
            report.fact(
                key,
                json!({
                    "local_port": port,
                    "seen": seen.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                    "same_mapping": same,
                    "port_kept": kept,
                }),
            );
            verdicts.push((home.nat, same, distinct));
        }
        let easy_same = verdicts.iter().any(|(n, same, _)| *n == Nat::Easy && *same);
        let hard = verdicts.iter().find(|(n, ..)| *n == Nat::Hard);
        let hard_same = hard.is_some_and(|(_, same, _)| *same);
        report.finding(
            MAPPING.claims[0],
            match (easy_same, hard_same) {
                (true, false) => Verdict::TrueOnlyWhen(
                    "the NAT maps endpoint-independently (masquerade); a fully-random one gives each destination its own port".into(),
                ),
                (true, true) => Verdict::True,
                _ => Verdict::FalseHere,
            },
            format!(
                "masquerade: {} address for 3 destinations; masquerade fully-random: {} ports for 3. What a STUN server tells a host behind a hard NAT is true only for the STUN server",
                if easy_same { "one" } else { "more than one" },
                hard.map_or(0, |h| h.2)
            ),
        );
        Ok(report)
    }

    /// Part 2: the host sends to one server address; then four outside
    /// sockets send to the public address the server saw.
    fn filtering(world: &World, shutdown: &Shutdown) -> Result<LabReport, Error> {
        const SENT: usize = 3;
        let mut report = new_report(&FILTERING);
        report.table = Table::new(&[
            "from",
            "source",
            "sent",
            "received (masquerade)",
            "received (fully-random)",
        ]);
        let senders: [(&str, &UdpSocket); 4] = [
            ("the server address it sent to", &world.servers[0]),
            ("the same server, another port", &world.servers[1]),
            ("the same server, another address", &world.servers[2]),
            ("another host", &world.other),
        ];
        // received[kind][sender]
        let mut received = [[0usize; 4]; 2];
        for (k, label) in ["easy-a", "hard-a"].into_iter().enumerate() {
            shutdown.check()?;
            let home = world.home(label);
            let socket = socket(&home.host, "0.0.0.0:0")?;
            let hello = format!("filtering {label}");
            send(&socket, &hello, addr(SERVER_ADDRS[0]))?;
            let public = seen_by(&world.servers[0], &hello, shutdown)?;
            for (j, (_, sender)) in senders.iter().enumerate() {
                for i in 0..SENT {
                    send(sender, &format!("from {j} {i}"), public)?;
                }
            }
            let got = listen(&[&socket], QUIET, shutdown)?.remove(0);
            for (j, (_, sender)) in senders.iter().enumerate() {
                let source = sender.local_addr().map_err(lab_error("read an address"))?;
                received[k][j] = got
                    .iter()
                    .filter(|(from, text)| {
                        *from == source && text.starts_with(&format!("from {j} "))
                    })
                    .count();
            }
        }
        let mut rows = Vec::new();
        for (j, (what, sender)) in senders.iter().enumerate() {
            let source = sender.local_addr().map_err(lab_error("read an address"))?;
            report.table.row(vec![
                what.to_string(),
                source.to_string(),
                SENT.to_string(),
                received[0][j].to_string(),
                received[1][j].to_string(),
            ]);
            rows.push(json!({
                "from": what,
                "source": source.to_string(),
                "sent": SENT,
                "masquerade": received[0][j],
                "fully_random": received[1][j],
            }));
        }
        let answers = received[0][0] + received[1][0];
        let unsolicited: usize = received.iter().map(|r| r[1..].iter().sum::<usize>()).sum();
        report.finding(
            FILTERING.claims[0],
            if answers == 2 * SENT && unsolicited == 0 {
                Verdict::TrueOnlyWhen(
                    "the datagram comes from the very address and port the host sent to".into(),
                )
            } else if unsolicited > 0 {
                Verdict::True
            } else {
                Verdict::FalseHere
            },
            format!(
                "{answers} of {} answers from the server address the host sent to got in; {unsolicited} of {} from its other port, its other address and another host did: the router keeps a mapping per destination address and port (conntrack), and its input policy drops the rest",
                2 * SENT,
                2 * 3 * SENT
            ),
        );
        report.fact("sent_per_source", SENT);
        report.fact("rows", rows);
        report.fact("answers_received", answers);
        report.fact("unsolicited_received", unsolicited);
        Ok(report)
    }

    /// Part 3: three sockets of one home send to the server; it answers
    /// one after 1 s, the others after the router's timeout, one of which
    /// sends a keepalive every second meanwhile.
    fn lifetime(world: &World, shutdown: &Shutdown) -> Result<LabReport, Error> {
        let mut report = new_report(&LIFETIME);
        let home = world.home("easy-b");
        let key = "net/netfilter/nf_conntrack_udp_timeout";
        let default = netns::read_sysctl(&home.router, key);
        // A flow with answers is a "stream" and has a timeout of its own.
        let timeout = netns::sysctl(&home.router, key, &TIMEOUT_S.to_string())?;
        netns::sysctl(
            &home.router,
            "net/netfilter/nf_conntrack_udp_timeout_stream",
            &TIMEOUT_S.to_string(),
        )?;
        let server = &world.servers[0];
        let to_server = addr(SERVER_ADDRS[0]);
        let late_s = TIMEOUT_S as f64 + 1.5;
        // (what, answer after, keepalives)
        let cases = [
            ("early", 1.0, false),
            ("late", late_s, false),
            ("kept", late_s, true),
        ];
        let mut sockets = Vec::new();
        let mut publics = Vec::new();
        for (name, ..) in cases {
            let socket = socket(&home.host, "0.0.0.0:0")?;
            let hello = format!("lifetime {name}");
            send(&socket, &hello, to_server)?;
            publics.push(seen_by(server, &hello, shutdown)?);
            sockets.push(socket);
        }
        let start = Instant::now();
        // The schedule, in whole seconds and the late answer: keepalives at
        // 1, 2, … s while before the late answer.
        let mut keepalives = 0;
        let mut answered = [false; 3];
        let mut tick = 1u64;
        loop {
            let next_keepalive = Duration::from_secs(tick);
            let late = Duration::from_secs_f64(late_s);
            let next = if next_keepalive < late {
                next_keepalive
            } else {
                late
            };
            let elapsed = start.elapsed();
            if next > elapsed {
                pause(next - elapsed, shutdown)?;
            }
            let now = start.elapsed().as_secs_f64();
            for (i, (name, after, _)) in cases.iter().enumerate() {
                if !answered[i] && now >= *after {
                    send(server, &format!("answer {name}"), publics[i])?;
                    answered[i] = true;
                }
            }
            if next == late {
                break;
            }
            send(&sockets[2], "keepalive", to_server)?;
            keepalives += 1;
            tick += 1;
        }
        let socket_refs: Vec<&UdpSocket> = sockets.iter().collect();
        let got = listen(&socket_refs, QUIET, shutdown)?;
        let received: Vec<bool> = cases
            .iter()
            .zip(&got)
            .map(|((name, ..), got)| {
                got.iter()
                    .any(|(from, text)| *from == to_server && *text == format!("answer {name}"))
            })
            .collect();
        report.table = Table::new(&[
            "host socket",
            "answer sent after",
            "keepalives from the host",
            "answer received",
        ]);
        for (i, (_, after, kept)) in cases.iter().enumerate() {
            report.table.row(vec![
                inside(home, &sockets[i]),
                format!("{after:.1} s"),
                if *kept {
                    format!("{keepalives}, one a second")
                } else {
                    "none".into()
                },
                yes(received[i]),
            ]);
        }
        let holds = received == [true, false, true];
        report.finding(
            LIFETIME.claims[0],
            if holds {
                Verdict::TrueOnlyWhen(format!(
                    "the mapping is still alive: within the router's UDP timeout ({TIMEOUT_S} s here, {} s by default), or kept open by the client's keepalives",
                    default.as_deref().unwrap_or("?")
                ))
            } else {
                Verdict::FalseHere
            },
            format!(
                "the answer after 1 s {}; after {late_s:.1} s, {} without keepalives and {} with one a second: each datagram through the router restarts its mapping's timer, silence lets it expire, and then the answer meets the input policy",
                if received[0] { "got in" } else { "did not get in" },
                if received[1] { "it got in" } else { "it was dropped" },
                if received[2] { "got in" } else { "was dropped" },
            ),
        );
        report.fact(
            "default_timeout_s",
            default.and_then(|d| d.parse::<u64>().ok()),
        );
        report.fact("timeout_s", timeout.parse::<u64>().ok());
        report.fact("late_after_s", late_s);
        report.fact("keepalives", keepalives);
        report.fact("early_received", received[0]);
        report.fact("late_received", received[1]);
        report.fact("kept_received", received[2]);
        Ok(report)
    }

    /// Part 4: two homes learn their public addresses from the server,
    /// are told each other's, and send to it at once, five times.
    fn punching(world: &World, shutdown: &Shutdown) -> Result<LabReport, Error> {
        const ROUNDS: usize = 5;
        let mut report = new_report(&PUNCHING);
        report.table = Table::new(&[
            "pair",
            "A's public address",
            "B's public address",
            "A received from B",
            "B received from A",
            "direct",
            "why",
        ]);
        let mut pairs = serde_json::Map::new();
        let mut outcome = Vec::new();
        for (pair, a, b) in [
            ("easy-easy", "easy-a", "easy-b"),
            ("easy-hard", "easy-a", "hard-a"),
            ("hard-hard", "hard-a", "hard-b"),
        ] {
            shutdown.check()?;
            let (home_a, home_b) = (world.home(a), world.home(b));
            let sa = socket(&home_a.host, "0.0.0.0:0")?;
            let sb = socket(&home_b.host, "0.0.0.0:0")?;
            // As a rendezvous would: each asks the server what it sees.
            let mut public = Vec::new();
            for (socket, side) in [(&sa, "A"), (&sb, "B")] {
                let tag = format!("where {pair} {side}");
                send(socket, &tag, addr(SERVER_ADDRS[0]))?;
                public.push(seen_by(&world.servers[0], &tag, shutdown)?);
            }
            let (pa, pb) = (public[0], public[1]);
            let mut got = [Vec::new(), Vec::new()];
            for round in 0..ROUNDS {
                send(&sa, &format!("punch {pair} A {round}"), pb)?;
                send(&sb, &format!("punch {pair} B {round}"), pa)?;
                let heard = listen(&[&sa, &sb], Duration::from_millis(100), shutdown)?;
                for (into, heard) in got.iter_mut().zip(heard) {
                    into.extend(heard);
                }
            }
            let heard = listen(&[&sa, &sb], QUIET, shutdown)?;
            for (into, heard) in got.iter_mut().zip(heard) {
                into.extend(heard);
            }
            let count = |got: &[(SocketAddr, String)], from: &str| {
                got.iter()
                    .filter(|(_, text)| text.starts_with(&format!("punch {pair} {from} ")))
                    .count()
            };
            let sources = |got: &[(SocketAddr, String)]| {
                let mut s: Vec<String> = got.iter().map(|(f, _)| f.to_string()).collect();
                s.dedup();
                s
            };
            let (a_got, b_got) = (count(&got[0], "B"), count(&got[1], "A"));
            let connected = a_got > 0 && b_got > 0;
            let why = match (home_a.nat, home_b.nat) {
                (Nat::Easy, Nat::Easy) => {
                    "each router kept the port the server saw, so each host's probes opened the very mapping the other's probes were sent to"
                }
                (Nat::Easy, Nat::Hard) | (Nat::Hard, Nat::Easy) => {
                    "the hard router sent its host's probes from a new port, not the one the server saw (and the easy router expects); the easy host's probes go to a port the hard router opened only for the server"
                }
                (Nat::Hard, Nat::Hard) => {
                    "each router sent its host's probes from a new port: each side's probes go to the port opened only for the server, from a port the other router never saw"
                }
            };
            report.table.row(vec![
                format!("{pair} ({a}, {b})"),
                pa.to_string(),
                pb.to_string(),
                format!("{a_got} of {ROUNDS}"),
                format!("{b_got} of {ROUNDS}"),
                yes(connected),
                why.to_string(),
            ]);
            pairs.insert(
                pair.to_string(),
                json!({
                    "a_public": pa.to_string(),
                    "b_public": pb.to_string(),
                    "a_received": a_got,
                    "b_received": b_got,
                    "a_heard_from": sources(&got[0]),
                    "b_heard_from": sources(&got[1]),
                    "sent": ROUNDS,
                    "connected": connected,
                }),
            );
            outcome.push((
                home_a.nat == Nat::Easy && home_b.nat == Nat::Easy,
                connected,
            ));
        }
        let as_predicted = outcome.iter().all(|(easy, connected)| easy == connected);
        report.finding(
            PUNCHING.claims[0],
            if as_predicted {
                Verdict::TrueOnlyWhen(
                    "both NATs map endpoint-independently (easy–easy); with a hard NAT on either side this naive punch fails".into(),
                )
            } else if outcome.iter().all(|(_, connected)| *connected) {
                Verdict::True
            } else {
                Verdict::FalseHere
            },
            "the address a server sees is the one the peer must reach only when the router uses one mapping for every destination; a hard NAT needs a search over many ports (the birthday paradox) or a relay".into(),
        );
        report.fact("rounds", ROUNDS);
        report.fact("pairs", serde_json::Value::Object(pairs));
        Ok(report)
    }
}
