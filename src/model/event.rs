//! What happens on a socket, as events ([`Event`]), and the run's totals
//! ([`Summary`]) folded from them.
//!
//! These are the validated forms the rest of dgram uses; the `--json`
//! stream's shapes live apart, in [`crate::output::json`], so that the field
//! names other tools rely on cannot drift with these types.

use std::net::SocketAddr;
use std::time::SystemTime;

use super::chat::{ChatMessage, GroupReceipt, MemberEvent, Outcome, SentKind, Settled};
use super::datagram::Datagram;
use super::peers::{InboundCounts, OutboundCounts};
use crate::net::addr::PortState;
use crate::net::group::GroupInfo;
use crate::net::{Buffers, Capabilities};
use crate::proto::ChatEvent;
pub use crate::proto::report::SecureEvent;
use crate::proto::seal::Rejection;

/// Something to show or count.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The socket is bound and configured.
    Listening {
        /// The bound address (with the port the system chose for port 0).
        local: SocketAddr,
        /// `SO_RCVBUF` and `SO_SNDBUF`, requested and effective.
        buffers: Buffers,
        /// The application's receive buffer (`--max-size`).
        max_size: usize,
        /// Which platform extras are on.
        capabilities: Capabilities,
        /// Whether, and how, what goes out is secured.
        security: Security,
    },
    /// This side joined a group (after `Listening`): the group, the
    /// interface, TTL and loopback as applied.
    Joined(Box<GroupInfo>),
    /// A datagram arrived.
    Datagram(Datagram),
    /// A datagram was sent.
    Sent {
        /// Its destination.
        to: SocketAddr,
        /// Its length in bytes (envelope included).
        len: usize,
        /// What it was.
        kind: SentKind,
        /// Sent through this side's TURN relay (`chat --via --turn`): to
        /// the relay's server, wrapped, so that on the wire it is longer.
        relay: Option<Wrapped>,
    },
    /// Plain datagrams sent and counted by their sender rather than one
    /// event each (`dgram send` for people: only the totals are shown, so
    /// a million datagrams need not be a million events).
    SentBatch {
        /// Their destination.
        to: SocketAddr,
        /// How many.
        count: u64,
        /// Their bytes.
        bytes: u64,
    },
    /// A chat message arrived in an envelope (each copy is an event; a
    /// duplicate is marked so).
    Message(Box<ChatMessage>),
    /// Messages from a sender session were skipped: a later one arrived
    /// first. They are missing until they arrive (then reordered).
    Gap {
        /// The sender.
        from: SocketAddr,
        /// Its name.
        name: String,
        /// The first missing number.
        first: u64,
        /// The last missing number (inclusive).
        last: u64,
    },
    /// A message sent reached its final state (or a late receipt came).
    Receipt(Settled),
    /// A group member joined, left or restarted.
    Member(MemberEvent),
    /// A message to a group reached its final state, member by member.
    GroupReceipt(Box<GroupReceipt>),
    /// A keyed side refused a datagram it could not authenticate (or a
    /// replay): never shown as a message, never answered.
    Rejected {
        /// When it arrived.
        at: SystemTime,
        /// Who sent it.
        from: SocketAddr,
        /// Why.
        reason: Rejection,
        /// The datagram's length.
        len: usize,
        /// The first refusal from this sender for this reason (people see
        /// that one; the rest are counted).
        first: bool,
    },
    /// A group member's hello or bye arrived (each is counted; only a
    /// change of membership is a [`Event::Member`]).
    Presence {
        /// Who sent it.
        from: SocketAddr,
        /// Its name.
        name: String,
        /// A bye.
        bye: bool,
        /// The datagram's length.
        len: usize,
    },
    /// A receipt that settles nothing: for another copy of a message
    /// already delivered, or for no message of this run.
    StrayReceipt {
        /// Who sent it.
        from: SocketAddr,
        /// The number it acknowledges.
        seq: u64,
        /// The datagram's length.
        len: usize,
    },
    /// A datagram that starts like an envelope but is not a valid one:
    /// shown as the raw datagram it is.
    Malformed {
        /// The datagram.
        datagram: Datagram,
        /// Why it is not a valid envelope.
        reason: String,
    },
    /// A copy of a group message to a plain member was not sent: it
    /// would have been more than the member has sent (see
    /// [`crate::proto::chat::ChatEvent::Withheld`]).
    CopyWithheld {
        /// The plain member.
        peer: SocketAddr,
        /// The copy's length.
        len: usize,
        /// What the member had sent and not been sent back.
        credit: usize,
    },
    /// A secure session's handshake, or a message waiting for it.
    Secure(SecureEvent),
    /// A peer's session was heard from another address in a chat without
    /// keys: not followed.
    PeerNotFollowed {
        /// Its name, if it said one.
        name: String,
        /// Where the conversation stays.
        at: SocketAddr,
        /// Where its session was heard.
        heard: SocketAddr,
    },
    /// How `chat --via` looks for its path through NATs
    /// ([`crate::proto::traverse`]): the rendezvous, what STUN servers
    /// saw, the pairing, the search, the path found or why none was.
    Path {
        /// When it happened.
        at: std::time::SystemTime,
        /// What happened.
        event: crate::proto::traverse::TraverseEvent,
    },
    /// What the search of `chat --via` put on the wire and took from it,
    /// over all its sockets (STUN, TURN, the rendezvous, probes and acks):
    /// the datagrams a `--pcap` file holds before the chat's own.
    SearchTraffic(Traffic),
    /// A peer's session was heard from another address: it moved there.
    PeerMoved {
        /// Its name, if it said one.
        name: String,
        /// Where it was.
        from: SocketAddr,
        /// Where it is now.
        to: SocketAddr,
    },
    /// What a peer speaks changed: plain UDP (messages to it go as plain
    /// bytes, no receipts) or dgram (envelopes and receipts).
    PeerKind {
        /// The peer.
        peer: SocketAddr,
        /// True for plain UDP.
        plain: bool,
    },
    /// An `--echo` reply was not sent, on purpose.
    EchoSkipped {
        /// Who would have got it.
        peer: SocketAddr,
        /// The length of the datagram that was not answered.
        len: usize,
        /// Why.
        reason: EchoSkip,
    },
    /// A line of input was not sent: it does not fit in one datagram.
    LineSkipped {
        /// The line's number (from 1).
        line: u64,
        /// Its length in bytes (line ending removed).
        len: u64,
        /// The most a datagram to the destination may carry.
        limit: usize,
    },
    /// The kernel reported new drops: datagrams that found `SO_RCVBUF` full.
    Dropped {
        /// New drops since the last report.
        count: u64,
        /// All drops on this socket so far.
        total: u64,
    },
    /// ICMP port unreachable: `peer` refused a datagram.
    Unreachable {
        /// The destination that refused.
        peer: SocketAddr,
        /// What this machine can tell about that port (nothing listening,
        /// or a program that takes one peer only).
        port: PortState,
    },
    /// Another ICMP error about a peer (host or network unreachable, …), or
    /// a reply that could not go out.
    PeerError {
        /// The destination the error is about.
        peer: SocketAddr,
        /// The error as the OS words it.
        error: String,
    },
    /// The last event: totals for the whole run, and the message counts of
    /// each peer that sent or got chat messages.
    Summary {
        /// The totals.
        totals: Box<Summary>,
        /// Per peer, in address order.
        peers: Vec<PeerSummary>,
    },
}

/// One peer's message counts, for the summary.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerSummary {
    /// Its address.
    pub addr: SocketAddr,
    /// Its chat name, if it told one.
    pub name: Option<String>,
    /// Messages from it.
    pub inbound: InboundCounts,
    /// Messages to it.
    pub outbound: OutboundCounts,
}

/// Why an echo reply was held back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EchoSkip {
    /// The peer is over its reply rate (`--echo-rate`): two echo servers
    /// answering each other stop here.
    RateLimited,
    /// The datagram claims to come from this very socket: answering it
    /// would loop forever.
    OwnAddress,
    /// The datagram was cut short by `--max-size`: what is left is not the
    /// datagram that was sent, so it cannot be echoed unchanged.
    Truncated,
}

/// Totals for a run, as the summary line and the `summary` JSON event show
/// them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Datagrams received (empty and truncated ones, messages and receipts
    /// included).
    pub received: u64,
    /// UDP payload bytes received (envelopes included).
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
    /// UDP payload bytes sent (envelopes included).
    pub sent_bytes: u64,
    /// Echo replies held back (rate limit, own address).
    pub echo_skipped: u64,
    /// Lines of input not sent because they do not fit in a datagram.
    pub skipped_lines: u64,
    /// Chat messages received: each once, copies, reordered, and those
    /// skipped and never received (`missing`: lost, at the end).
    pub inbound: InboundCounts,
    /// Datagrams that start like an envelope but are not valid ones.
    pub malformed: u64,
    /// Chat messages sent (each message once, not each try).
    pub messages_sent: u64,
    /// Messages sent whose receipt came.
    pub delivered: u64,
    /// Messages sent that failed.
    pub failed: u64,
    /// Failed messages whose receipt came late.
    pub late: u64,
    /// Tries after the first.
    pub retransmissions: u64,
    /// Receipts received (those that settled a message and stray ones).
    pub receipts: u64,
    /// The smallest limit a skipped line was over (for the error at the
    /// end; not part of the JSON summary).
    pub skipped_limit: Option<usize>,
    /// Peers forgotten by the peer table to stay within its cap (set from
    /// the table when the summary is made).
    pub peers_forgotten: u64,
    /// Datagrams received but not shown one by one: they came faster than
    /// a terminal can be read, and were shown coalesced (set by the
    /// display; not part of the JSON summary, which never coalesces).
    pub not_shown: u64,
    /// Datagrams a keyed side refused, by reason.
    pub rejected: Rejections,
    /// How a paced sender (`send --rate`) kept its schedule: set by the
    /// sender when it is done, not counted from events.
    pub pacing: Option<super::pacing::PacingReport>,
}

/// Refusals by reason ([`Rejection::ALL`] order).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rejections([u64; Rejection::ALL.len()]);

impl Rejections {
    fn index(reason: Rejection) -> usize {
        Rejection::ALL
            .iter()
            .position(|r| *r == reason)
            .expect("every reason is listed")
    }

    /// Counts one refusal.
    pub fn count(&mut self, reason: Rejection) {
        self.0[Self::index(reason)] += 1;
    }

    /// Refusals for `reason`.
    pub fn get(&self, reason: Rejection) -> u64 {
        self.0[Self::index(reason)]
    }

    /// All refusals.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }
}

impl Summary {
    /// Counts one event.
    pub fn count(&mut self, event: &Event) {
        match event {
            Event::Datagram(datagram) => {
                self.received += 1;
                self.bytes += datagram.len() as u64;
                self.empty += u64::from(datagram.is_empty());
                self.truncated += u64::from(datagram.truncated);
            }
            Event::Sent { len, kind, .. } => {
                self.sent += 1;
                self.sent_bytes += *len as u64;
                if let SentKind::Message { attempt, .. } = kind {
                    if *attempt == 1 {
                        self.messages_sent += 1;
                    } else {
                        self.retransmissions += 1;
                    }
                }
            }
            Event::SentBatch { count, bytes, .. } => {
                self.sent += count;
                self.sent_bytes += bytes;
            }
            Event::Message(message) => {
                self.received += 1;
                self.bytes += message.wire_len as u64;
                self.inbound.count(message);
            }
            Event::Gap { first, last, .. } => self.inbound.missing += last - first + 1,
            Event::Receipt(receipt) => {
                if let Some(len) = receipt.wire_len {
                    self.received += 1;
                    self.bytes += len as u64;
                    self.receipts += 1;
                }
                if receipt.tries == 0 && receipt.group.is_none() {
                    // A message that never went out (it waited for a
                    // secure session that did not open) is a message sent
                    // all the same: it failed.
                    self.messages_sent += 1;
                }
                match receipt.outcome {
                    _ if receipt.group.is_some() => {}
                    Outcome::Delivered => self.delivered += 1,
                    Outcome::Failed => self.failed += 1,
                    Outcome::Late => self.late += 1,
                }
            }
            Event::StrayReceipt { len, .. } => {
                self.received += 1;
                self.bytes += *len as u64;
                self.receipts += 1;
            }
            Event::Malformed { datagram, .. } => {
                self.received += 1;
                self.bytes += datagram.len() as u64;
                self.truncated += u64::from(datagram.truncated);
                self.malformed += 1;
            }
            Event::EchoSkipped { .. } => self.echo_skipped += 1,
            Event::LineSkipped { limit, .. } => {
                self.skipped_lines += 1;
                self.skipped_limit = Some(self.skipped_limit.map_or(*limit, |l| l.min(*limit)));
            }
            Event::Dropped { total, .. } => self.dropped = *total,
            Event::Unreachable { .. } => self.unreachable += 1,
            Event::Presence { len, .. } => {
                self.received += 1;
                self.bytes += *len as u64;
            }
            Event::Secure(SecureEvent::Control { len, .. }) => {
                self.received += 1;
                self.bytes += *len as u64;
            }
            Event::Rejected { reason, len, .. } => {
                self.received += 1;
                self.bytes += *len as u64;
                self.rejected.count(*reason);
            }
            // A group message is delivered when every member present got
            // it (and there was one); its members' own receipts are
            // counted per member.
            Event::GroupReceipt(receipt) => {
                if receipt.missing.is_empty() && !receipt.delivered.is_empty() {
                    self.delivered += 1;
                } else {
                    self.failed += 1;
                }
            }
            Event::Listening { .. }
            | Event::PeerError { .. }
            | Event::PeerKind { .. }
            | Event::PeerMoved { .. }
            | Event::PeerNotFollowed { .. }
            | Event::Path { .. }
            | Event::SearchTraffic(_)
            | Event::Secure(_)
            | Event::CopyWithheld { .. }
            | Event::Member(_)
            | Event::Joined(_)
            | Event::Summary { .. } => {}
        }
    }
}

/// How a run secures what it sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Security {
    /// Not at all.
    #[default]
    None,
    /// Secure sessions from a key file (`--key-file`, with a peer).
    KeyFile,
    /// Secure sessions from a short code (`--code`).
    Code,
    /// A group's room key (`--key-file` in a group).
    RoomKey,
}

impl Security {
    /// Its name in `--json`.
    pub fn name(self) -> &'static str {
        match self {
            Security::None => "none",
            Security::KeyFile => "key_file",
            Security::Code => "code",
            Security::RoomKey => "room_key",
        }
    }

    /// How a run with these options secures what it sends.
    pub fn of(key: bool, code: bool, group: bool) -> Security {
        match (key, code, group) {
            (true, _, true) => Security::RoomKey,
            (true, _, false) => Security::KeyFile,
            (false, true, _) => Security::Code,
            (false, false, _) => Security::None,
        }
    }
}

impl From<ChatEvent> for Event {
    /// The protocol's reports, as events of the run.
    fn from(event: ChatEvent) -> Event {
        match event {
            ChatEvent::Message(message) => Event::Message(message),
            ChatEvent::Gap {
                from,
                name,
                first,
                last,
            } => Event::Gap {
                from,
                name,
                first,
                last,
            },
            ChatEvent::Receipt(settled) => Event::Receipt(settled),
            ChatEvent::StrayReceipt { from, seq, len } => Event::StrayReceipt { from, seq, len },
            ChatEvent::PeerKind { peer, plain } => Event::PeerKind { peer, plain },
            ChatEvent::Moved { name, from, to } => Event::PeerMoved { name, from, to },
            ChatEvent::NotFollowed { name, at, heard } => {
                Event::PeerNotFollowed { name, at, heard }
            }
            ChatEvent::Withheld { peer, len, credit } => Event::CopyWithheld { peer, len, credit },
            ChatEvent::Member(member) => Event::Member(member),
            ChatEvent::Secure(secure) => Event::Secure(secure),
            ChatEvent::GroupReceipt(receipt) => Event::GroupReceipt(receipt),
            ChatEvent::Presence {
                from,
                name,
                bye,
                len,
            } => Event::Presence {
                from,
                name,
                bye,
                len,
            },
            ChatEvent::Rejected {
                at,
                from,
                reason,
                len,
                first,
            } => Event::Rejected {
                at,
                from,
                reason,
                len,
                first,
            },
        }
    }
}

/// Datagrams and bytes sent and received, counted where the socket calls
/// succeed (the lengths are UDP payloads, as on the wire).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Datagrams sent.
    pub sent: u64,
    /// Their bytes.
    pub sent_bytes: u64,
    /// Datagrams received.
    pub received: u64,
    /// Their bytes (true lengths, also of a datagram cut short).
    pub received_bytes: u64,
}

impl Traffic {
    /// Counts a datagram of `len` bytes sent.
    pub fn out(&mut self, len: usize) {
        self.sent += 1;
        self.sent_bytes += len as u64;
    }

    /// Counts a datagram of `len` bytes received.
    pub fn inbound(&mut self, len: usize) {
        self.received += 1;
        self.received_bytes += len as u64;
    }
}

/// A datagram as the TURN relay's server was sent it: `len` bytes (the
/// chat's datagram in ChannelData or a Send indication).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wrapped {
    /// The relay's server.
    pub server: SocketAddr,
    /// The wrapped datagram's length.
    pub len: usize,
}
