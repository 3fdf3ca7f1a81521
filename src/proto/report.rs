//! What the chat protocol reports: messages decoded from envelopes,
//! receipts and their final states, group members and group receipts.
//! [`crate::model`] wraps them into its events; they are defined here so
//! that the protocol's core needs nothing outside `proto`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::SessionId;
use super::secure::Method;

/// A chat message received in an envelope, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    /// When it was received.
    pub at: SystemTime,
    /// Who sent it.
    pub from: SocketAddr,
    /// The sender's name (may be empty).
    pub name: String,
    /// The sender's session.
    pub session: SessionId,
    /// Its sequence number.
    pub seq: u64,
    /// Which try of the sender this copy is.
    pub attempt: u8,
    /// The message.
    pub payload: Vec<u8>,
    /// This copy is a duplicate: the message was received before (it is
    /// counted, acknowledged again, not shown again).
    pub duplicate: bool,
    /// Copies received from this sender session so far (this one
    /// included when it is a copy).
    pub duplicates: u64,
    /// It came after a later one (it fills a gap).
    pub reordered: bool,
    /// It filled a gap counted missing (a reordered message from before
    /// the first number heard from its session was never counted).
    pub filled_gap: bool,
    /// The datagram's length (envelope included).
    pub wire_len: usize,
}

/// The final state of a message sent, or a late change of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Its receipt came.
    Delivered,
    /// No receipt after the last try (or the chat ended first).
    Failed,
    /// A receipt came after it was reported failed.
    Late,
}

/// A message sent reached a final state (or a late receipt came): what a
/// receipt, or its absence, settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settled {
    /// The destination.
    pub to: SocketAddr,
    /// Its name, if it has told it.
    pub name: Option<String>,
    /// The message's sequence number.
    pub seq: u64,
    /// What became of it.
    pub outcome: Outcome,
    /// The round trip of the acknowledged try (delivered, late).
    pub rtt: Option<Duration>,
    /// Tries sent.
    pub tries: u8,
    /// The message (for showing which one it was).
    pub payload: Arc<[u8]>,
    /// Failed because the chat ended before the last try ran out.
    pub ended: bool,
    /// Failed at once because the peer's host refused it (ICMP port
    /// unreachable: nothing listens there).
    pub refused: bool,
    /// The length of the receipt datagram that settled it (`None` for a
    /// failure, which no datagram brings).
    pub wire_len: Option<usize>,
    /// The message went to this group (`to` is one of its members).
    pub group: Option<SocketAddr>,
}

/// What changed about a group member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberChange {
    /// It was heard for the first time.
    Joined,
    /// It came back with a new session (it restarted).
    Restarted,
    /// It said bye.
    Left,
    /// It was not heard for this long.
    Silent(Duration),
    /// The member table is full: it is not kept.
    NotKept,
}

/// A group member joined, left or restarted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberEvent {
    /// The group.
    pub group: SocketAddr,
    /// The member's own address.
    pub addr: SocketAddr,
    /// Its name (may be empty).
    pub name: String,
    /// What changed.
    pub change: MemberChange,
    /// Members now (after the change).
    pub members: usize,
}

/// A message to a group reached its final state: every member present
/// when it was sent acknowledged it or ran out of tries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupReceipt {
    /// The group.
    pub group: SocketAddr,
    /// The message's number.
    pub seq: u64,
    /// The message.
    pub payload: Arc<[u8]>,
    /// Members that acknowledged it (address, name), in the order their
    /// receipts came.
    pub delivered: Vec<(SocketAddr, String)>,
    /// Members that did not.
    pub missing: Vec<(SocketAddr, String)>,
}

/// A secure session's handshake, or a message waiting for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecureEvent {
    /// This side began a handshake with `peer` (its init went out).
    Began {
        /// The peer.
        peer: SocketAddr,
        /// Key file or code.
        method: Method,
    },
    /// A message waits for the session with `peer`: it goes out when the
    /// handshake completes.
    Waiting {
        /// The peer.
        peer: SocketAddr,
        /// The message's number.
        seq: u64,
        /// The message.
        payload: Arc<[u8]>,
    },
    /// A session is open: what waited goes out now.
    Opened {
        /// Where the peer is.
        peer: SocketAddr,
        /// The secure session's id (what its datagrams carry).
        id: SessionId,
        /// The peer's run session (what its envelopes carry).
        peer_session: SessionId,
        /// Key file or code.
        method: Method,
        /// The verification bytes (the same on both screens when no one
        /// sits in the middle).
        verify: [u8; 4],
        /// This side began the handshake.
        initiator: bool,
        /// From this side's first init to the session (when it began):
        /// the handshake's round trips, and its retries.
        took: Option<Duration>,
    },
    /// The code did not confirm: the two sides' codes differ (or someone
    /// guessed wrong). The code is spent.
    WrongCode {
        /// The peer.
        peer: SocketAddr,
    },
    /// The peer challenged this side's address (it saw this side's
    /// datagram come from a new one: this side moved, or a NAT gave it a
    /// new mapping); the answer went back.
    Challenged {
        /// The peer.
        peer: SocketAddr,
        /// Where the peer sees this side now.
        seen: SocketAddr,
    },
    /// A datagram of the sessions' own came and was taken: a handshake
    /// step, a keepalive, a path check (counted like every datagram; not
    /// shown to people one by one).
    Control {
        /// Who sent it.
        from: SocketAddr,
        /// What it was: `init`, `reply`, `finish`, `cookie`, `fail`,
        /// `keepalive`, `path_challenge`, `path_response`.
        what: &'static str,
        /// Its length.
        len: usize,
    },
    /// No answer to the handshake after `tries` tries.
    NoAnswer {
        /// The peer.
        peer: SocketAddr,
        /// Key file or code.
        method: Method,
        /// Inits sent.
        tries: u8,
    },
}
