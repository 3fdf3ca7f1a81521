//! The path search of `chat --via`, fed datagrams from the rendezvous,
//! the other side's addresses and strangers over time, on its main socket
//! and (once it asks) the search's sockets: never panics, sends nothing
//! larger than a registration (112 bytes), never sends to an address
//! nobody gave (the servers, the rendezvous's candidates, the other side's
//! IP at another port), and once paired ends (found or failed) within its
//! path wait.
#![no_main]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use dgram::proto::rendezvous::REGISTER_LEN;
use dgram::proto::traverse::{Config, Traversal, TraverseEvent};
use libfuzzer_sys::fuzz_target;

const RENDEZVOUS: &str = "203.0.113.10:3478";
const SOURCES: [&str; 5] = [
    RENDEZVOUS,
    "203.0.113.11:3478",
    "198.51.100.2:6000",
    "198.51.100.2:40123",
    "192.0.2.99:1234",
];

fuzz_target!(|data: &[u8]| {
    let start = Instant::now();
    let config = Config {
        number: 7,
        registrant: [1; 8],
        rendezvous: RENDEZVOUS.parse().unwrap(),
        stun: Some("203.0.113.11:3478".parse().unwrap()),
        host: vec!["192.168.1.2:5000".parse().unwrap()],
        relayed: None,
        path_wait: Duration::from_secs(10),
        seed: [2; 32],
    };
    let mut traversal = Traversal::new(config, start);
    let mut now = start;
    let mut sockets = 1usize;
    let mut given: Vec<SocketAddr> = vec![
        RENDEZVOUS.parse().unwrap(),
        "203.0.113.11:3478".parse().unwrap(),
    ];
    let mut rest = data;
    let mut paired_at: Option<Instant> = None;
    let check = |traversal: &mut Traversal,
                     sockets: &mut usize,
                     given: &mut Vec<SocketAddr>,
                     paired_at: &mut Option<Instant>,
                     now: Instant| {
        while let Some(event) = traversal.poll_event() {
            match event {
                TraverseEvent::OpenSockets(n) => {
                    let first = *sockets;
                    *sockets += n;
                    traversal.sockets_opened(now, first, n);
                }
                TraverseEvent::Paired { candidates, .. } => {
                    given.extend(candidates);
                    *paired_at = Some(now);
                }
                _ => {}
            }
        }
        while let Some(transmit) = traversal.poll_transmit() {
            assert!(transmit.socket < *sockets);
            let to_known = given.contains(&transmit.to)
                || given.iter().skip(2).any(|g| g.ip() == transmit.to.ip());
            assert!(to_known, "a probe to {} that nobody gave", transmit.to);
            assert!(transmit.bytes.len() <= REGISTER_LEN);
        }
    };
    while let [control, len, tail @ ..] = rest {
        let len = usize::from(*len).min(tail.len());
        let (datagram, next) = tail.split_at(len);
        rest = next;
        now += Duration::from_millis(u64::from(control >> 4) * 40);
        let from: SocketAddr = SOURCES[usize::from(control & 7) % SOURCES.len()].parse().unwrap();
        let socket = usize::from(control >> 3 & 1).min(sockets - 1);
        traversal.handle_datagram(now, socket, from, datagram, control & 0x80 != 0);
        traversal.handle_timeout(now);
        check(&mut traversal, &mut sockets, &mut given, &mut paired_at, now);
    }
    // Left alone once paired, it ends: found, or failed within the path
    // wait after the pairing.
    for _ in 0..100_000 {
        if traversal.is_done() {
            break;
        }
        let Some(next) = traversal.poll_timeout() else {
            break;
        };
        now = now.max(next);
        traversal.handle_timeout(now);
        check(&mut traversal, &mut sockets, &mut given, &mut paired_at, now);
    }
    if let Some(paired) = paired_at {
        assert!(traversal.is_done(), "paired, and still searching");
        assert!(now <= paired + Duration::from_secs(10) + Duration::from_millis(1));
    }
});
