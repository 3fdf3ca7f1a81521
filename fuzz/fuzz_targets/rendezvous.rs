//! The rendezvous service and its STUN decoder, fed datagrams from a few
//! sources over time: never panics, never sends to an address more bytes
//! than it received from it, and never holds more than its limits.
#![no_main]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use dgram::proto::rendezvous::{Limits, Service};
use dgram::proto::stun;
use libfuzzer_sys::fuzz_target;

/// A few sources (two IPv4, one IPv6, one IPv4-mapped), so that pairs and
/// repeats happen.
const SOURCES: [&str; 4] = [
    "192.0.2.1:1000",
    "192.0.2.2:2000",
    "[2001:db8::1]:3000",
    "[::ffff:192.0.2.1]:1000",
];

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_numbers: 4,
        max_sources: 3,
        ..Limits::default()
    };
    let mut service = Service::new(limits);
    let start = Instant::now();
    let mut now = start;
    let mut sent_to: HashMap<SocketAddr, usize> = HashMap::new();
    let mut received_from: HashMap<SocketAddr, usize> = HashMap::new();
    // Each datagram: a byte for the source and the time step, a byte for
    // its length, then that many bytes.
    let mut rest = data;
    while let [control, len, tail @ ..] = rest {
        let len = usize::from(*len).min(tail.len());
        let (datagram, next) = tail.split_at(len);
        rest = next;
        let source: SocketAddr = SOURCES[usize::from(control & 3)].parse().unwrap();
        now += Duration::from_millis(u64::from(control >> 2) * 500);
        let _ = stun::decode(datagram);
        service.handle(now, source, datagram);
        *received_from.entry(source).or_default() += datagram.len();
        while let Some(transmit) = service.poll_transmit() {
            *sent_to.entry(transmit.to).or_default() += transmit.bytes.len();
        }
        while service.poll_event().is_some() {}
        for (to, bytes) in &sent_to {
            assert!(*bytes <= received_from.get(to).copied().unwrap_or(0), "{to}: {bytes}");
        }
        assert!(service.held() <= limits.max_numbers);
        assert!(service.sources() <= limits.max_sources);
        if let Some(at) = service.poll_timeout() {
            service.handle_timeout(at);
            assert!(service.poll_timeout().is_none_or(|next| next > at));
        }
    }
});
