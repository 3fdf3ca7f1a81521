//! What dgram knows: datagrams, events, totals and peers.
//!
//! - [`datagram`]: the validated received datagram.
//! - [`chat`]: what the chat protocol adds: messages, receipts and their
//!   outcomes, what a sent datagram was.
//! - [`event`]: what the receiver and the senders report ([`Event`]), and
//!   the run's totals ([`Summary`]).
//! - [`latency`]: `dgram ping`'s probes, replies and round-trip
//!   statistics.
//! - [`pacing`]: a paced sender's schedule and its deviations from it
//!   (`send --rate`, `bench --rate`).
//! - [`peers`]: the one peer table, and the changes of state
//!   ([`Transition`]) it reports.
//! - [`tally`]: the run's outcome ([`Tally`]): its events counted, shared
//!   by the display loop and whoever decides the exit status.
//! - [`bench`](mod@bench): `dgram bench`'s datagrams, sequence tracking and
//!   the report's accounting.
//! - [`lab`](mod@lab): an experiment of `dgram lab`: its claim, table,
//!   verdict and facts.

pub mod bench;
pub mod chat;
pub mod datagram;
pub mod event;
pub mod lab;
pub mod latency;
pub mod pacing;
pub mod peers;
pub mod tally;

pub use chat::{ChatMessage, Outcome, SentKind, Settled};
pub use datagram::Datagram;
pub use event::{EchoSkip, Event, PeerSummary, SecureEvent, Security, Summary, Traffic, Wrapped};
pub use peers::{Peer, PeerTable, Transition};
pub use tally::Tally;

/// Everything counted so far: the totals and the peer table, folded from
/// the same events.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Totals for the run.
    pub summary: Summary,
    /// Everyone sent to or heard from.
    pub peers: PeerTable,
}

impl Stats {
    /// Counts one event; returns the peer transitions it caused.
    pub fn record(&mut self, event: &Event) -> Vec<Transition> {
        self.summary.count(event);
        self.peers.record(event)
    }
}
