//! Counters folded from events: the run's [`Summary`] and per-peer figures.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::SystemTime;

use serde::Serialize;

use crate::event::Event;

/// Totals for a run, as the summary line and the `summary` JSON event show
/// them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Datagrams received (empty and truncated ones included).
    pub received: u64,
    /// Payload bytes delivered.
    pub bytes: u64,
    /// Datagrams with no payload.
    pub empty: u64,
    /// Datagrams cut short by the application's receive buffer.
    pub truncated: u64,
    /// Datagrams the kernel dropped because `SO_RCVBUF` was full.
    pub dropped: u64,
    /// ICMP port-unreachable reports.
    pub unreachable: u64,
    /// Datagrams sent (echo replies included).
    pub sent: u64,
    /// Payload bytes sent.
    pub sent_bytes: u64,
}

/// What is known of one peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerStats {
    /// Datagrams received from it.
    pub received: u64,
    /// Payload bytes received from it.
    pub bytes: u64,
    /// Datagrams sent to it.
    pub sent: u64,
    /// When it was last heard from, if ever.
    pub last_heard: Option<SystemTime>,
    /// Its host answered port unreachable and it has not been heard since.
    pub down: bool,
}

/// The running totals of a session.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Totals.
    pub summary: Summary,
    /// Everyone sent to or heard from, by address.
    pub peers: BTreeMap<SocketAddr, PeerStats>,
    /// Who sent the last datagram (for `/reply`).
    pub last_sender: Option<SocketAddr>,
}

impl Stats {
    /// Counts one event.
    pub fn record(&mut self, event: &Event) {
        let summary = &mut self.summary;
        match event {
            Event::Datagram(datagram) => {
                summary.received += 1;
                summary.bytes += datagram.len() as u64;
                summary.empty += u64::from(datagram.is_empty());
                summary.truncated += u64::from(datagram.truncated);
                let peer = self.peer(datagram.from);
                peer.received += 1;
                peer.bytes += datagram.len() as u64;
                peer.last_heard = Some(datagram.at);
                peer.down = false;
                self.last_sender = Some(datagram.from);
            }
            Event::Sent { to, len, .. } => {
                summary.sent += 1;
                summary.sent_bytes += *len as u64;
                self.peer(*to).sent += 1;
            }
            Event::Dropped { total, .. } => summary.dropped = *total,
            Event::Unreachable { peer } => {
                summary.unreachable += 1;
                self.peer(*peer).down = true;
            }
            Event::Listening { .. } | Event::PeerError { .. } | Event::Summary(_) => {}
        }
    }

    /// True when `peer` refused and has not been heard from since.
    pub fn is_down(&self, peer: &SocketAddr) -> bool {
        self.peers.get(peer).is_some_and(|p| p.down)
    }

    fn peer(&mut self, addr: SocketAddr) -> &mut PeerStats {
        self.peers.entry(addr).or_insert(PeerStats {
            received: 0,
            bytes: 0,
            sent: 0,
            last_heard: None,
            down: false,
        })
    }
}
