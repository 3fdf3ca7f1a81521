//! The TURN client (`dgram::proto::turn`) against a real coturn on
//! loopback, driven by a std `UdpSocket`: an allocation, datagrams from a
//! plain UDP peer to the relayed address and back (Send indications, then
//! a channel), a wrong password, and a short lifetime refreshed with a
//! nonce that goes stale. SKIPPED where `turnserver` is not installed; a
//! failure then under `CI=true` (the set-up script installs coturn).

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use dgram::proto::stun;
use dgram::proto::turn::{Received, TurnClient, TurnEvent};

use crate::util::{DEADLINE, Peer, Proc, closed_port, have, temp_path, wait_bound};

/// A coturn listening on 127.0.0.1 (user `u`, password `p`, realm
/// `dgram.test`), killed when dropped.
struct Coturn {
    proc: Proc,
    addr: SocketAddr,
}

/// Starts coturn with `extra` options, or says SKIPPED and gives `None`
/// where it is not installed (outside CI).
fn coturn(name: &str, extra: &[&str]) -> Option<Coturn> {
    if !have("turnserver") {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "turnserver (coturn) is missing: run scripts/setup-test-deps.sh"
        );
        eprintln!("SKIPPED: turnserver (coturn) is not installed");
        return None;
    }
    let dir = temp_path(name);
    std::fs::create_dir_all(&dir).unwrap();
    let port = closed_port().port();
    // Relayed addresses come from 65 ports starting at one that was free
    // a moment ago (other tests bind port 0 at the same time: a port
    // cannot be reserved, only picked where it is likely free).
    let first = closed_port().port().min(65_535 - 64);
    let (port_arg, min, max) = (
        port.to_string(),
        first.to_string(),
        (first + 64).to_string(),
    );
    let pidfile = dir.join("pid").to_string_lossy().into_owned();
    let userdb = dir.join("turndb").to_string_lossy().into_owned();
    let mut args = vec![
        "-n",
        "--listening-ip",
        "127.0.0.1",
        "--relay-ip",
        "127.0.0.1",
        "--listening-port",
        &port_arg,
        "--min-port",
        &min,
        "--max-port",
        &max,
        "--realm",
        "dgram.test",
        "--user",
        "u:p",
        "--lt-cred-mech",
        "--no-tls",
        "--no-dtls",
        "--no-tcp",
        "--no-tcp-relay",
        "--no-cli",
        "--allow-loopback-peers",
        "--log-file",
        "stdout",
        "--simple-log",
        // A line per request handled: what the dumps show, and what says
        // an allocation was deleted.
        "--verbose",
        "--pidfile",
        &pidfile,
        "--userdb",
        &userdb,
    ];
    args.extend_from_slice(extra);
    let proc = Proc::spawn("turnserver", &args);
    wait_bound(port, &proc);
    Some(Coturn {
        proc,
        addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port),
    })
}

/// A datagram the client unwrapped: who sent it to the relayed address,
/// what, and whether it came as ChannelData (else a Data indication).
#[derive(Debug)]
struct Relayed {
    from: SocketAddr,
    payload: Vec<u8>,
    channel: bool,
}

/// The sans-I/O client on a real socket.
struct Client {
    socket: UdpSocket,
    turn: TurnClient,
    server: SocketAddr,
    events: Vec<TurnEvent>,
    relayed: Vec<Relayed>,
    /// 438 (Stale Nonce) answers seen on the wire.
    stale: usize,
    /// The type of every STUN message the server sent, in order.
    kinds: Vec<u16>,
}

impl Client {
    fn new(server: SocketAddr, password: &str, seed: u8) -> Client {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let turn = TurnClient::new(server, "u", password, [seed; 32], Instant::now());
        Client {
            socket,
            turn,
            server,
            events: Vec::new(),
            relayed: Vec::new(),
            stale: 0,
            kinds: Vec::new(),
        }
    }

    fn flush(&mut self) {
        while let Some(datagram) = self.turn.poll_transmit() {
            self.socket.send_to(&datagram, self.server).unwrap();
        }
    }

    /// Sends what is due, waits for one datagram (at most until the
    /// client's next timeout, and never more than 50 ms), hands it in,
    /// runs the timers, keeps the events.
    fn step(&mut self) {
        self.flush();
        let now = Instant::now();
        let wait = self
            .turn
            .poll_timeout()
            .map_or(Duration::from_millis(50), |at| {
                at.saturating_duration_since(now)
            })
            .clamp(Duration::from_millis(1), Duration::from_millis(50));
        self.socket.set_read_timeout(Some(wait)).unwrap();
        let mut buf = vec![0u8; 65_536];
        match self.socket.recv_from(&mut buf) {
            Ok((n, from)) => {
                assert_eq!(from, self.server, "only the server writes to the client");
                let datagram = &buf[..n];
                if stun::looks_like_stun(datagram) {
                    self.kinds
                        .push(u16::from_be_bytes([datagram[0], datagram[1]]));
                    if stun::error_code(datagram) == Some(438) {
                        self.stale += 1;
                    }
                }
                match self.turn.handle_datagram(Instant::now(), datagram) {
                    Received::Data { from, payload } => self.relayed.push(Relayed {
                        from,
                        payload,
                        channel: datagram[0] & 0xC0 == 0x40,
                    }),
                    Received::Consumed => {}
                    other => panic!("coturn sent {datagram:02x?}: {other:?}"),
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("recv: {e}"),
        }
        self.turn.handle_timeout(Instant::now());
        self.events
            .extend(std::iter::from_fn(|| self.turn.poll_event()));
        self.flush();
    }

    /// Steps until `check` gives a value, or fails after DEADLINE with
    /// the events so far and coturn's log.
    fn until<T>(
        &mut self,
        what: &str,
        server: &Coturn,
        mut check: impl FnMut(&mut Client) -> Option<T>,
    ) -> T {
        let start = Instant::now();
        loop {
            self.step();
            if let Some(value) = check(self) {
                return value;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "timed out waiting for {what}; events {:?}, relayed {:?}\n{}",
                self.events,
                self.relayed,
                server.proc.dump()
            );
        }
    }

    fn allocated(&mut self, server: &Coturn) -> (SocketAddr, SocketAddr, Duration) {
        self.until("the allocation", server, |c| {
            c.events.iter().find_map(|e| match e {
                TurnEvent::Allocated {
                    relayed,
                    mapped,
                    lifetime,
                } => Some((*relayed, *mapped, *lifetime)),
                TurnEvent::Failed { what, reason } => panic!("{what} failed: {reason}"),
                _ => None,
            })
        })
    }

    fn saw(&mut self, what: &str, server: &Coturn, event: TurnEvent) {
        self.until(what, server, |c| c.events.contains(&event).then_some(()));
    }

    /// Wraps `payload` for `peer` and sends it to the server; the bytes
    /// sent.
    fn send_to_peer(&mut self, peer: SocketAddr, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        self.turn
            .wrap(Instant::now(), peer, payload, &mut out)
            .unwrap();
        self.flush();
        self.socket.send_to(&out, self.server).unwrap();
        out
    }
}

/// The datagrams a peer sends and is sent: boundaries kept, an empty
/// one, an odd length (ChannelData padding), one of 1200 bytes.
fn payloads() -> Vec<Vec<u8>> {
    vec![
        b"first".to_vec(),
        Vec::new(),
        b"four".to_vec(),
        (0..1200).map(|i| (i % 251) as u8).collect(),
        b"last".to_vec(),
    ]
}

/// Reads `peer` until `count` datagrams came; each must come from
/// `relayed`.
fn from_relay(peer: &Peer, relayed: SocketAddr, count: usize) -> Vec<Vec<u8>> {
    let mut buf = vec![0u8; 65_536];
    (0..count)
        .map(|_| {
            let (n, from) = peer
                .socket
                .recv_from(&mut buf)
                .unwrap_or_else(|e| panic!("nothing from the relay within {DEADLINE:?}: {e}"));
            assert_eq!(from, relayed, "the peer hears the relayed address");
            buf[..n].to_vec()
        })
        .collect()
}

/// Through coturn: the allocation gives a relayed address on loopback and
/// our own address as coturn saw it; after a permission, what a plain UDP
/// peer sends to the relayed address reaches the client as Data from the
/// peer's address, each datagram whole (an empty one too); what the
/// client wraps reaches the peer from the relayed address as exactly the
/// payload, first through Send indications, then, once the channel is
/// bound, as ChannelData both ways; `close` deallocates.
#[test]
fn relays_both_ways_through_coturn() {
    let Some(server) = coturn("turn-relay", &[]) else {
        return;
    };
    let mut client = Client::new(server.addr, "p", 1);
    let (relayed, mapped, lifetime) = client.allocated(&server);
    assert_eq!(mapped, client.socket.local_addr().unwrap());
    assert_eq!(relayed.ip(), IpAddr::V4(Ipv4Addr::LOCALHOST));
    assert!(lifetime > Duration::ZERO);
    assert_eq!(client.turn.relayed(), Some(relayed));

    let peer = Peer::bind();
    client
        .turn
        .permit(Instant::now(), peer.addr().ip())
        .unwrap();
    client.saw(
        "the permission",
        &server,
        TurnEvent::Permitted(peer.addr().ip()),
    );

    for payload in payloads() {
        peer.socket.send_to(&payload, relayed).unwrap();
    }
    client.until("the peer's datagrams", &server, |c| {
        (c.relayed.len() >= payloads().len()).then_some(())
    });
    let got: Vec<&[u8]> = client.relayed.iter().map(|r| &r.payload[..]).collect();
    assert_eq!(got, payloads());
    assert!(
        client
            .relayed
            .iter()
            .all(|r| r.from == peer.addr() && !r.channel)
    );

    for payload in payloads() {
        let sent = client.send_to_peer(peer.addr(), &payload);
        assert!(stun::looks_like_stun(&sent), "a Send indication");
    }
    assert_eq!(from_relay(&peer, relayed, payloads().len()), payloads());

    client
        .turn
        .bind_channel(Instant::now(), peer.addr())
        .unwrap();
    client.saw(
        "the channel",
        &server,
        TurnEvent::ChannelBound {
            peer: peer.addr(),
            channel: 0x4000,
        },
    );
    for payload in payloads() {
        let sent = client.send_to_peer(peer.addr(), &payload);
        assert_eq!(sent[..2], [0x40, 0x00], "ChannelData");
    }
    assert_eq!(from_relay(&peer, relayed, payloads().len()), payloads());

    client.relayed.clear();
    for payload in payloads() {
        peer.socket.send_to(&payload, relayed).unwrap();
    }
    client.until("the peer's datagrams on the channel", &server, |c| {
        (c.relayed.len() >= payloads().len()).then_some(())
    });
    let got: Vec<&[u8]> = client.relayed.iter().map(|r| &r.payload[..]).collect();
    assert_eq!(got, payloads());
    assert!(
        client
            .relayed
            .iter()
            .all(|r| r.from == peer.addr() && r.channel)
    );

    // Deallocated: coturn answers the Refresh with LIFETIME 0 with a
    // success (0x0104) that checks, logs the lifetime 0, and nothing is
    // left to send.
    client.turn.close(Instant::now());
    assert!(!client.turn.is_allocated());
    client.kinds.clear();
    client.until("the deallocation", &server, |c| {
        c.turn.poll_timeout().is_none().then_some(())
    });
    assert_eq!(client.kinds, [0x0104]);
    server
        .proc
        .wait_stdout_contains("refreshed, realm=<dgram.test>, username=<u>, lifetime=0");
    assert!(
        client
            .events
            .iter()
            .all(|e| !matches!(e, TurnEvent::Failed { .. }))
    );
}

/// A wrong password: coturn's 401 to the authenticated Allocate ends it
/// with a reason a user can act on, and nothing is retried.
#[test]
fn a_wrong_password_fails_with_401() {
    let Some(server) = coturn("turn-wrong", &[]) else {
        return;
    };
    let mut client = Client::new(server.addr, "not-p", 2);
    let (what, reason) = client.until("the failure", &server, |c| {
        c.events.iter().find_map(|e| match e {
            TurnEvent::Failed { what, reason } => Some((*what, reason.clone())),
            TurnEvent::Allocated { .. } => panic!("allocated with a wrong password"),
            _ => None,
        })
    });
    assert_eq!(what, "Allocate");
    assert_eq!(reason, "401 Unauthorized: wrong user or password");
    assert!(!client.turn.is_allocated());
    assert_eq!(client.turn.poll_timeout(), None, "nothing left to retry");
}

/// coturn granting 3 s and a nonce good for 2 s: the client refreshes
/// the allocation before it expires (coturn 4.6 then grants its default
/// 600 s: it caps only the Allocate's lifetime), a ChannelBind sent after
/// the nonce went stale is answered 438 and retried with the new one, and
/// the relay still carries the peer's datagrams after twice the first
/// lifetime (without the refresh coturn would have dropped the
/// allocation at 3 s).
#[test]
fn a_short_lifetime_is_refreshed_past_a_stale_nonce() {
    let Some(server) = coturn(
        "turn-refresh",
        &["--max-allocate-lifetime=3", "--stale-nonce=2"],
    ) else {
        return;
    };
    let mut client = Client::new(server.addr, "p", 3);
    let (relayed, _, lifetime) = client.allocated(&server);
    assert_eq!(lifetime, Duration::from_secs(3), "coturn's maximum");
    let allocated_at = Instant::now();
    let peer = Peer::bind();
    client
        .turn
        .permit(Instant::now(), peer.addr().ip())
        .unwrap();
    client.saw(
        "the permission",
        &server,
        TurnEvent::Permitted(peer.addr().ip()),
    );
    client.until("the refresh and a stale nonce", &server, |c| {
        let refreshed = c
            .events
            .iter()
            .any(|e| matches!(e, TurnEvent::Refreshed { .. }));
        // coturn counts in whole seconds: well past the 2 s.
        (refreshed && allocated_at.elapsed() > Duration::from_secs(4)).then_some(())
    });
    assert_eq!(client.stale, 0, "nothing was sent with a stale nonce yet");
    client
        .turn
        .bind_channel(Instant::now(), peer.addr())
        .unwrap();
    client.saw(
        "the channel",
        &server,
        TurnEvent::ChannelBound {
            peer: peer.addr(),
            channel: 0x4000,
        },
    );
    assert!(
        client.stale > 0,
        "coturn never said 438: {:?}",
        client.events
    );
    client.until("two lifetimes", &server, |_| {
        (allocated_at.elapsed() > lifetime * 2).then_some(())
    });
    peer.socket.send_to(b"still here", relayed).unwrap();
    client.until("the peer's datagram", &server, |c| {
        (!c.relayed.is_empty()).then_some(())
    });
    assert_eq!(client.relayed[0].payload, b"still here");
    assert!(client.relayed[0].channel);
    assert!(
        !client
            .events
            .iter()
            .any(|e| matches!(e, TurnEvent::Failed { .. })),
        "{:?}",
        client.events
    );
}
