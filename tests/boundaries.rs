//! UDP keeps message boundaries: what dgram receives is exactly what was
//! sent, datagram by datagram.

use std::net::UdpSocket;

use proptest::prelude::*;

use crate::util::{any_local_addr, listener, payload, stop};

/// The sizes of the fixed boundary test: empty, tiny, a typical MTU-sized
/// payload (1472 = 1500 - 20 - 8), larger than socat's 8 KiB, and the IPv4
/// maximum.
const SIZES: [usize; 7] = [0, 1, 7, 512, 1472, 8192, 65507];

/// Payload `index` of a test: printable text for even indexes, arbitrary
/// bytes (mostly not UTF-8, so shown as hex) for odd ones. Each payload
/// differs from its neighbours so that a merge or a swap would show.
fn message(index: usize, size: usize) -> Vec<u8> {
    (0..size)
        .map(|j| {
            if index.is_multiple_of(2) {
                b'a' + ((index * 7 + j) % 26) as u8
            } else {
                (j * 31 + index * 17 + 128) as u8
            }
        })
        .collect()
}

/// Sends datagrams of `sizes` back to back to a fresh listener and checks
/// that exactly that many arrive, in order, each with its own size and
/// bytes, from the sender's address.
fn check_boundaries(sizes: &[usize]) {
    // A large SO_RCVBUF: this test is about boundaries, not loss.
    let (mut listen, addr) = listener(&["--rcvbuf", "4M"]);
    let sender = UdpSocket::bind(any_local_addr()).unwrap();
    let messages: Vec<Vec<u8>> = sizes
        .iter()
        .enumerate()
        .map(|(i, &n)| message(i, n))
        .collect();
    for m in &messages {
        assert_eq!(sender.send_to(m, addr).unwrap(), m.len());
    }
    for (i, m) in messages.iter().enumerate() {
        let event = listen.next("datagram");
        assert_eq!(event["len"], m.len(), "datagram {i}: {event}");
        assert_eq!(event["truncated"], false, "datagram {i}");
        assert_eq!(event["from"], sender.local_addr().unwrap().to_string());
        assert!(
            payload(&event) == *m,
            "datagram {i} has other bytes than were sent"
        );
    }
    let summary = stop(&mut listen);
    assert_eq!(summary["received"], sizes.len(), "{summary}");
    assert_eq!(summary["dropped"], 0, "{summary}");
    assert_eq!(summary["bytes"], sizes.iter().sum::<usize>(), "{summary}");
}

/// Datagrams of 0, 1, 7, 512, 1472, 8192 and 65507 bytes sent back to back
/// arrive as exactly seven datagrams with exactly those sizes and bytes.
#[test]
fn datagrams_keep_their_boundaries() {
    check_boundaries(&SIZES);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, failure_persistence: None, ..ProptestConfig::default() })]

    /// Any list of datagram sizes (0 to 65507 bytes) sent back to back
    /// arrives as exactly that many datagrams of exactly those sizes.
    #[test]
    fn any_sizes_keep_their_boundaries(sizes in prop::collection::vec(
        prop_oneof![0usize..=16, 0usize..=2048, 0usize..=65507], 1..10)) {
        check_boundaries(&sizes);
    }
}
