//! The one peer table: everything known about each peer, folded from
//! events, and the changes of state worth telling the user about.
//!
//! Nothing else in dgram keeps per-peer state for display: the renderer
//! prints the [`Transition`]s that [`PeerTable::record`] returns.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::SystemTime;

use super::chat::{ChatMessage, Outcome, SentKind};
use super::event::Event;
use crate::net::addr::PortState;
use crate::proto::Estimator;

/// What is known of one peer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Peer {
    /// Its chat name, once it has sent a message.
    pub name: Option<String>,
    /// It speaks plain UDP (`Some(true)`), dgram (`Some(false)`), or it is
    /// not known yet.
    pub plain: Option<bool>,
    /// Chat messages from it, and what its sequence numbers said.
    pub inbound: InboundCounts,
    /// Chat messages to it and their outcomes.
    pub outbound: OutboundCounts,
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
    /// What was known of its port at its last refusal.
    pub port: Option<PortState>,
    /// The last ICMP error about it other than a refusal (no route, host
    /// or network unreachable), as the OS words it.
    pub network_error: Option<String>,
    /// Echo replies to it have been held back (said once per peer; the
    /// count is in the summary).
    pub echo_limited: bool,
    /// What the user chose it speaks (`/plain`: true, `/dgram`: false).
    pub chosen: Option<bool>,
    /// The user's choice has been made but its `peer_kind` event has not
    /// come yet (that event is then the choice, not news from the peer).
    choice_pending: bool,
    /// Something dgram-shaped came from it: a message, a receipt, a
    /// hello or bye, or an envelope that would not open.
    pub dgram_heard: bool,
    /// The user has been told it may be a plain UDP program (once).
    plain_hint_given: bool,
}

impl Peer {
    /// Adds the counts of `newer`, a row of the same peer at the address it
    /// moved to, to this one (its history).
    fn absorb(&mut self, newer: Peer) {
        let (i, o) = (&mut self.inbound, &newer.inbound);
        i.messages += o.messages;
        i.duplicates += o.duplicates;
        i.reordered += o.reordered;
        i.missing += o.missing;
        let (i, o) = (&mut self.outbound, &newer.outbound);
        i.messages += o.messages;
        i.delivered += o.delivered;
        i.failed += o.failed;
        i.late += o.late;
        i.retransmissions += o.retransmissions;
        self.received += newer.received;
        self.bytes += newer.bytes;
        self.sent += newer.sent;
        self.last_heard = self.last_heard.max(newer.last_heard);
        self.down = newer.down;
        self.dgram_heard |= newer.dgram_heard;
        if self.name.is_none() {
            self.name = newer.name;
        }
    }
}

/// What a peer's sequence numbers said, as received.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InboundCounts {
    /// Messages received (each once).
    pub messages: u64,
    /// Copies of messages received before.
    pub duplicates: u64,
    /// Messages that came after a later one.
    pub reordered: u64,
    /// Messages skipped and not received (so far: lost at the end).
    pub missing: u64,
}

impl InboundCounts {
    /// Counts one message received (a copy or not, in order or not).
    pub fn count(&mut self, message: &ChatMessage) {
        if message.duplicate {
            self.duplicates += 1;
        } else {
            self.messages += 1;
        }
        if message.reordered {
            self.reordered += 1;
        }
        // Only a gap counted missing is filled: a message from before the
        // first number heard was never counted (taking one off for it
        // made a summary say 0 lost with one never shown).
        if message.filled_gap {
            self.missing = self.missing.saturating_sub(1);
        }
    }
}

/// Messages sent to a peer, and their outcomes.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct OutboundCounts {
    /// Messages sent (each once).
    pub messages: u64,
    /// Messages delivered.
    pub delivered: u64,
    /// Messages failed.
    pub failed: u64,
    /// Failed messages whose receipt came late.
    pub late: u64,
    /// Tries after the first.
    pub retransmissions: u64,
    /// Round trips measured from receipts (smoothed and minimum).
    pub rtt: Estimator,
}

impl OutboundCounts {
    /// Messages still waiting for their final state.
    pub fn pending(&self) -> u64 {
        self.messages.saturating_sub(self.delivered + self.failed)
    }
}

/// A change in a peer's state, reported once when it happens rather than
/// once per datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Its host answered ICMP port unreachable (the first refusal since it
    /// was last heard from).
    WentDown(SocketAddr),
    /// It was down and has now been heard from.
    AnswersAgain(SocketAddr),
    /// Echo replies to it were held back, for the first time.
    EchoLimited(SocketAddr),
    /// It turned out to speak plain UDP (`plain`), or dgram after all.
    Speaks {
        /// The peer.
        peer: SocketAddr,
        /// True for plain UDP.
        plain: bool,
    },
    /// The user chose what it speaks (`/plain`, `/dgram`).
    Chosen {
        /// The peer.
        peer: SocketAddr,
        /// True for plain UDP.
        plain: bool,
    },
    /// A message to it is being tried again, and nothing dgram-shaped has
    /// ever come from it: it may be a plain UDP program, which sends no
    /// receipts (said once per peer).
    MaybePlain(SocketAddr),
    /// A plain group member's host refused a copy of a group message
    /// (ICMP port unreachable): it gets no more copies until it sends
    /// again.
    PlainMemberGone(SocketAddr),
}

impl Transition {
    /// The peer it is about.
    pub fn peer(&self) -> SocketAddr {
        match *self {
            Transition::WentDown(peer)
            | Transition::AnswersAgain(peer)
            | Transition::EchoLimited(peer)
            | Transition::Speaks { peer, .. }
            | Transition::Chosen { peer, .. }
            | Transition::MaybePlain(peer)
            | Transition::PlainMemberGone(peer) => peer,
        }
    }
}

/// Every peer sent to or heard from, by address.
#[derive(Debug, Clone)]
pub struct PeerTable {
    /// Each peer, with the tick of its last activity.
    peers: BTreeMap<SocketAddr, (u64, Peer)>,
    /// Peers by last activity, oldest first (for forgetting).
    by_activity: BTreeMap<u64, SocketAddr>,
    /// Counts activity.
    clock: u64,
    /// The most peers kept.
    cap: usize,
    /// Peers forgotten to stay within `cap`.
    forgotten: u64,
    /// Who sent the last datagram (for `/reply`).
    last_sender: Option<SocketAddr>,
    /// The group this side joined, if any.
    group: Option<SocketAddr>,
}

/// The most peers the table keeps: past it, the one least recently active
/// is forgotten (and counted), so that senders who spoof many source
/// addresses cannot grow memory. A peer takes a few hundred bytes.
pub const MAX_PEERS: usize = 4096;

impl Default for PeerTable {
    fn default() -> Self {
        PeerTable::with_cap(MAX_PEERS)
    }
}

impl PeerTable {
    /// An empty table keeping at most `cap` peers (at least 1).
    pub fn with_cap(cap: usize) -> PeerTable {
        PeerTable {
            peers: BTreeMap::new(),
            by_activity: BTreeMap::new(),
            clock: 0,
            cap: cap.max(1),
            forgotten: 0,
            last_sender: None,
            group: None,
        }
    }

    /// How many peers were forgotten to keep the table within its cap.
    pub fn forgotten(&self) -> u64 {
        self.forgotten
    }

    /// How many peers are known.
    pub fn len(&self) -> usize {
        self.peers.len()
    }

    /// The user chose what `addr` speaks (`/plain`: `plain`, `/dgram`):
    /// called before the choice is made, so that its `peer_kind` event
    /// reads as the user's choice rather than as news from the peer.
    pub fn choose_kind(&mut self, addr: SocketAddr, plain: bool) {
        let peer = self.peer(addr);
        peer.chosen = Some(plain);
        peer.choice_pending = true;
    }

    /// Folds one event into the table and returns the changes of state it
    /// caused (often none).
    pub fn record(&mut self, event: &Event) -> Vec<Transition> {
        let mut transitions = Vec::new();
        match event {
            Event::Datagram(datagram) => {
                let from = datagram.from;
                let peer = self.peer(from);
                peer.received += 1;
                peer.bytes += datagram.len() as u64;
                peer.last_heard = Some(datagram.at);
                if peer.down {
                    peer.down = false;
                    transitions.push(Transition::AnswersAgain(from));
                }
                self.last_sender = Some(from);
            }
            Event::SentBatch { to, count, .. } => self.peer(*to).sent += count,
            Event::Sent { to, kind, .. } => {
                let to_group = self.group == Some(*to);
                let peer = self.peer(*to);
                peer.sent += 1;
                if let SentKind::Message { attempt, .. } = kind {
                    if *attempt == 1 {
                        peer.outbound.messages += 1;
                    } else {
                        peer.outbound.retransmissions += 1;
                    }
                    // The first retransmission to a peer never heard in
                    // dgram: a program such as `nc -u -l` reads envelopes
                    // as bytes and never answers; say so now rather than
                    // after every try has failed. Not when the user said
                    // it speaks dgram.
                    if *attempt == 2
                        && !to_group
                        && !peer.dgram_heard
                        && !peer.plain_hint_given
                        && peer.chosen != Some(false)
                    {
                        peer.plain_hint_given = true;
                        transitions.push(Transition::MaybePlain(*to));
                    }
                }
            }
            Event::Message(message) => {
                let from = message.from;
                let peer = self.peer(from);
                peer.received += 1;
                peer.bytes += message.wire_len as u64;
                peer.last_heard = Some(message.at);
                if !message.name.is_empty() {
                    peer.name = Some(message.name.clone());
                }
                peer.dgram_heard = true;
                peer.inbound.count(message);
                if peer.down {
                    peer.down = false;
                    transitions.push(Transition::AnswersAgain(from));
                }
                self.last_sender = Some(from);
            }
            Event::Gap {
                from, first, last, ..
            } => self.peer(*from).inbound.missing += last - first + 1,
            Event::Receipt(receipt) => {
                let peer = self.peer(receipt.to);
                if let Some(len) = receipt.wire_len {
                    peer.received += 1;
                    peer.bytes += len as u64;
                    peer.last_heard = Some(SystemTime::now());
                    peer.dgram_heard = true;
                    if peer.down {
                        peer.down = false;
                        transitions.push(Transition::AnswersAgain(receipt.to));
                    }
                }
                let counts = &mut peer.outbound;
                if (receipt.group.is_some() && receipt.outcome != Outcome::Late)
                    || receipt.tries == 0
                {
                    // The message went to the group: this member's part
                    // of it is counted here.
                    counts.messages += 1;
                }
                match receipt.outcome {
                    Outcome::Delivered => counts.delivered += 1,
                    Outcome::Failed => counts.failed += 1,
                    Outcome::Late => counts.late += 1,
                }
                if let Some(rtt) = receipt.rtt {
                    counts.rtt.sample(rtt);
                }
            }
            Event::StrayReceipt { from, len, .. } => {
                let peer = self.peer(*from);
                peer.received += 1;
                peer.bytes += *len as u64;
                peer.last_heard = Some(SystemTime::now());
                peer.dgram_heard = true;
                if peer.down {
                    peer.down = false;
                    transitions.push(Transition::AnswersAgain(*from));
                }
            }
            Event::PeerKind { peer: addr, plain } => {
                let (addr, plain) = (*addr, *plain);
                let peer = self.peer(addr);
                peer.plain = Some(plain);
                if peer.choice_pending && peer.chosen == Some(plain) {
                    peer.choice_pending = false;
                    transitions.push(Transition::Chosen { peer: addr, plain });
                } else {
                    transitions.push(Transition::Speaks { peer: addr, plain });
                }
            }
            // The peer's row moves with it (a peer is its session, not
            // its address), unless the new address has a row already.
            Event::PeerMoved { from, to, .. } => self.moved(*from, *to),
            // Said where it happens; no count of a peer's changes.
            Event::CopyWithheld { .. }
            | Event::PeerNotFollowed { .. }
            | Event::Path { .. }
            | Event::SearchTraffic(_) => {}
            Event::GroupReceipt(receipt) => {
                let counts = &mut self.peer(receipt.group).outbound;
                if receipt.missing.is_empty() && !receipt.delivered.is_empty() {
                    counts.delivered += 1;
                } else {
                    counts.failed += 1;
                }
            }
            Event::Secure(crate::model::SecureEvent::Control { from, len, .. })
            | Event::Rejected { from, len, .. } => {
                let peer = self.peer(*from);
                peer.received += 1;
                peer.bytes += *len as u64;
            }
            Event::Secure(_) => {}
            Event::Presence {
                from, name, len, ..
            } => {
                let peer = self.peer(*from);
                peer.received += 1;
                peer.bytes += *len as u64;
                peer.last_heard = Some(SystemTime::now());
                peer.dgram_heard = true;
                if !name.is_empty() {
                    peer.name = Some(name.clone());
                }
            }
            Event::Malformed { datagram, .. } => {
                let peer = self.peer(datagram.from);
                peer.received += 1;
                peer.bytes += datagram.len() as u64;
                peer.last_heard = Some(datagram.at);
                peer.dgram_heard = true;
                self.last_sender = Some(datagram.from);
            }
            Event::Unreachable { peer: addr, port } => {
                let in_group = self.group.is_some();
                let peer = self.peer(*addr);
                peer.port = Some(*port);
                // A plain group member that refused a copy is forgotten as
                // plain by the protocol: it gets no more copies until it
                // sends again, and is then news again.
                let plain_member = in_group && peer.plain == Some(true) && peer.chosen.is_none();
                if plain_member {
                    peer.plain = None;
                }
                if !peer.down {
                    peer.down = true;
                    transitions.push(if plain_member {
                        Transition::PlainMemberGone(*addr)
                    } else {
                        Transition::WentDown(*addr)
                    });
                }
            }
            Event::PeerError { peer: addr, error } => {
                self.peer(*addr).network_error = Some(error.clone());
            }
            Event::EchoSkipped { peer: addr, .. } => {
                let peer = self.peer(*addr);
                if !peer.echo_limited {
                    peer.echo_limited = true;
                    transitions.push(Transition::EchoLimited(*addr));
                }
            }
            Event::Listening { .. }
            | Event::LineSkipped { .. }
            | Event::Dropped { .. }
            | Event::Member(_)
            | Event::Summary { .. } => {}
            Event::Joined(info) => self.group = Some(info.addr),
        }
        transitions
    }

    /// What is known of `addr`, if anything.
    pub fn get(&self, addr: &SocketAddr) -> Option<&Peer> {
        self.peers.get(addr).map(|(_, peer)| peer)
    }

    /// Every peer, in address order.
    pub fn iter(&self) -> impl Iterator<Item = (&SocketAddr, &Peer)> {
        self.peers.iter().map(|(addr, (_, peer))| (addr, peer))
    }

    /// True when no peer is known yet.
    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }

    /// The message counts of every peer that sent or got chat messages.
    pub fn summaries(&self) -> Vec<super::event::PeerSummary> {
        self.iter()
            .filter(|(_, p)| p.inbound.messages + p.inbound.duplicates + p.outbound.messages > 0)
            .map(|(addr, p)| super::event::PeerSummary {
                addr: *addr,
                name: p.name.clone(),
                inbound: p.inbound,
                outbound: p.outbound,
            })
            .collect()
    }

    /// Who sent the last datagram.
    pub fn last_sender(&self) -> Option<SocketAddr> {
        self.last_sender
    }

    /// The entry of `addr` (made if new, forgetting the least recently
    /// active peer when the table is full), marked as just active.
    /// Moves the row of the peer at `from` to `to` (where it is heard
    /// now), when `to` has none.
    fn moved(&mut self, from: SocketAddr, to: SocketAddr) {
        if self.peers.contains_key(&to) {
            // A row at the new address already (what went there while it
            // was checked: a path challenge, a receipt): one peer, one
            // row, with both rows' counts.
            let Some((old_tick, old)) = self.peers.remove(&from) else {
                return;
            };
            self.by_activity.remove(&old_tick);
            let (_, at_new) = self.peers.get_mut(&to).expect("checked");
            let newer = std::mem::replace(at_new, old);
            at_new.absorb(newer);
            if self.last_sender == Some(from) {
                self.last_sender = Some(to);
            }
            return;
        }
        if let Some((tick, peer)) = self.peers.remove(&from) {
            self.by_activity.insert(tick, to);
            self.peers.insert(to, (tick, peer));
            if self.last_sender == Some(from) {
                self.last_sender = Some(to);
            }
        }
    }

    fn peer(&mut self, addr: SocketAddr) -> &mut Peer {
        self.clock += 1;
        let now = self.clock;
        if let Some((tick, _)) = self.peers.get(&addr) {
            self.by_activity.remove(tick);
        } else if self.peers.len() >= self.cap
            && let Some((_, oldest)) = self.by_activity.pop_first()
        {
            self.peers.remove(&oldest);
            self.forgotten += 1;
        }
        self.by_activity.insert(now, addr);
        let entry = self.peers.entry(addr).or_default();
        entry.0 = now;
        &mut entry.1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::datagram::Datagram;
    use crate::model::event::EchoSkip;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn datagram(from: SocketAddr) -> Event {
        Event::Datagram(Datagram {
            at: SystemTime::UNIX_EPOCH,
            from,
            payload: b"hi".to_vec(),
            truncated: false,
            original_len: None,
        })
    }

    /// Only a message that filled a gap counted missing takes one off the
    /// lost count: a message from before the first number heard (seen as
    /// reordered, never counted missing) leaves it, so a summary cannot
    /// say 0 lost while a number in a gap was never shown (seen in a
    /// 20%-loss run: message 1 came after message 2, and 62 never came).
    #[test]
    fn only_a_filled_gap_is_taken_off_the_lost_count() {
        let message =
            |seq: u64, reordered: bool, filled_gap: bool| crate::proto::report::ChatMessage {
                at: SystemTime::UNIX_EPOCH,
                from: addr(1),
                name: String::new(),
                session: crate::proto::SessionId([1; 8]),
                seq,
                attempt: 1,
                payload: Vec::new(),
                duplicate: false,
                duplicates: 0,
                reordered,
                filled_gap,
                wire_len: 30,
            };
        let mut counts = InboundCounts::default();
        counts.count(&message(2, false, false));
        counts.missing += 2; // the gap 62..=63 of the run above
        counts.count(&message(1, true, false));
        counts.count(&message(63, true, true));
        assert_eq!(
            (counts.messages, counts.reordered, counts.missing),
            (3, 2, 1)
        );
    }

    /// A refusal is a transition once, not once per report; hearing from
    /// the peer again is a transition back, and then a new refusal counts
    /// again. Other peers are not affected.
    #[test]
    fn down_and_back_once_per_change() {
        let mut table = PeerTable::default();
        let (a, b) = (addr(1), addr(2));
        let down = Event::Unreachable {
            peer: a,
            port: PortState::Free,
        };
        assert_eq!(table.record(&down), [Transition::WentDown(a)]);
        assert_eq!(table.record(&down), []);
        assert!(table.get(&a).unwrap().down);
        assert!(table.get(&b).is_none());
        assert_eq!(table.record(&datagram(b)), []);
        assert_eq!(table.record(&datagram(a)), [Transition::AnswersAgain(a)]);
        assert_eq!(table.record(&datagram(a)), []);
        assert!(!table.get(&a).unwrap().down);
        assert_eq!(table.record(&down), [Transition::WentDown(a)]);
    }

    /// Held-back echo replies are a transition once per peer: a peer over
    /// the rate typically alternates between answered and held back, and
    /// must not fill the screen with notices.
    #[test]
    fn echo_limit_once_per_peer() {
        let mut table = PeerTable::default();
        let a = addr(1);
        let skipped = Event::EchoSkipped {
            peer: a,
            len: 2,
            reason: EchoSkip::RateLimited,
        };
        let echoed = Event::Sent {
            to: a,
            len: 2,
            kind: SentKind::Echo,
            relay: None,
        };
        assert_eq!(table.record(&skipped), [Transition::EchoLimited(a)]);
        assert_eq!(table.record(&skipped), []);
        assert_eq!(table.record(&echoed), []);
        assert_eq!(table.record(&skipped), []);
        let b = addr(2);
        let other = Event::EchoSkipped {
            peer: b,
            len: 2,
            reason: EchoSkip::RateLimited,
        };
        assert_eq!(table.record(&other), [Transition::EchoLimited(b)]);
    }

    /// The table keeps at most its cap of peers: the least recently active
    /// is forgotten first, and each one forgotten is counted.
    #[test]
    fn the_cap_holds_and_forgets_the_least_recent() {
        let mut table = PeerTable::with_cap(100);
        for port in 1..=1000u16 {
            table.record(&datagram(addr(port)));
            // Port 1 stays active, so it is never the least recent.
            table.record(&datagram(addr(1)));
        }
        assert_eq!(table.len(), 100);
        assert_eq!(table.forgotten(), 900);
        assert!(table.get(&addr(1)).is_some(), "the active peer is kept");
        assert!(table.get(&addr(2)).is_none(), "an old one is forgotten");
        assert!(table.get(&addr(1000)).is_some());
        assert_eq!(table.iter().count(), 100);
        assert_eq!(table.by_activity.len(), 100);
    }

    fn retry(to: SocketAddr, attempt: u8) -> Event {
        Event::Sent {
            to,
            len: 30,
            kind: SentKind::Message {
                seq: 1,
                attempt,
                payload: std::sync::Arc::from(&b"hi"[..]),
                name: None,
            },
            relay: None,
        }
    }

    /// The first retransmission to a peer never heard in dgram says once
    /// that it may be a plain program; not for a peer that sent something
    /// dgram-shaped, nor one the user chose dgram for, nor the group.
    #[test]
    fn a_silent_peer_may_be_plain_said_once() {
        let mut table = PeerTable::default();
        let (nc, bob, chosen) = (addr(1), addr(2), addr(3));
        assert_eq!(table.record(&retry(nc, 1)), []);
        assert_eq!(table.record(&retry(nc, 2)), [Transition::MaybePlain(nc)]);
        assert_eq!(table.record(&retry(nc, 3)), []);
        assert_eq!(table.record(&retry(nc, 2)), [], "once per peer");
        table.record(&Event::StrayReceipt {
            from: bob,
            seq: 9,
            len: 20,
        });
        assert_eq!(table.record(&retry(bob, 2)), []);
        table.choose_kind(chosen, false);
        assert_eq!(table.record(&retry(chosen, 2)), []);
        let group = SocketAddr::from(([239, 1, 2, 3], 5000));
        table.record(&Event::Joined(Box::new(crate::net::group::GroupInfo {
            addr: group,
            kind: crate::net::group::GroupKind::Multicast,
            iface: None,
            ttl: 1,
            loopback: true,
        })));
        assert_eq!(table.record(&retry(group, 2)), []);
    }

    /// A kind the user chose reads as the choice; a kind learned from the
    /// peer reads as news, before and after.
    #[test]
    fn chosen_kinds_are_told_apart_from_learned_ones() {
        let mut table = PeerTable::default();
        let peer = addr(1);
        let kind = |plain| Event::PeerKind { peer, plain };
        assert_eq!(
            table.record(&kind(true)),
            [Transition::Speaks { peer, plain: true }]
        );
        table.choose_kind(peer, false);
        assert_eq!(
            table.record(&kind(false)),
            [Transition::Chosen { peer, plain: false }]
        );
        assert_eq!(table.get(&peer).unwrap().plain, Some(false));
        assert_eq!(
            table.record(&kind(false)),
            [Transition::Speaks { peer, plain: false }],
            "the choice is told once"
        );
    }

    /// In a group, a refusal from a plain member says once that it gets
    /// no more copies; it is not taken for plain any more; outside a
    /// group a plain peer's refusal is the usual one.
    #[test]
    fn a_plain_member_refusing_is_said_once() {
        let mut table = PeerTable::default();
        let (member, other) = (addr(1), addr(2));
        let refused = |peer| Event::Unreachable {
            peer,
            port: PortState::Free,
        };
        table.record(&Event::PeerKind {
            peer: other,
            plain: true,
        });
        assert_eq!(table.record(&refused(other)), [Transition::WentDown(other)]);
        table.record(&Event::Joined(Box::new(crate::net::group::GroupInfo {
            addr: SocketAddr::from(([239, 1, 2, 3], 5000)),
            kind: crate::net::group::GroupKind::Multicast,
            iface: None,
            ttl: 1,
            loopback: true,
        })));
        table.record(&Event::PeerKind {
            peer: member,
            plain: true,
        });
        assert_eq!(
            table.record(&refused(member)),
            [Transition::PlainMemberGone(member)]
        );
        assert_eq!(table.record(&refused(member)), []);
        assert_eq!(table.get(&member).unwrap().plain, None);
    }

    /// Counts per peer and the last sender follow the events.
    #[test]
    fn counts_and_last_sender() {
        let mut table = PeerTable::default();
        let (a, b) = (addr(1), addr(2));
        table.record(&datagram(a));
        table.record(&datagram(b));
        table.record(&Event::Sent {
            to: a,
            len: 5,
            kind: SentKind::Datagram,
            relay: None,
        });
        assert_eq!(table.last_sender(), Some(b));
        let peer_a = table.get(&a).unwrap();
        assert_eq!((peer_a.received, peer_a.bytes, peer_a.sent), (1, 2, 1));
        assert_eq!(table.iter().count(), 2);
    }
}
