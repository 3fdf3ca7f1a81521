//! The chat protocol on a socket: the [`Messenger`] sends messages (in an
//! envelope to dgram peers, as plain bytes to plain peers) and keeps what
//! the protocol knows; its [`Protocol`] handler, on the receiver thread,
//! decodes what arrives, acknowledges every message copy, settles
//! messages when their receipts come, and runs the retransmission timers.
//!
//! All protocol state sits behind one lock, taken by the sending thread
//! (the chat's input) and the receiver thread. Locks are always taken in
//! one order, this one before the outbox's ordering lock, so that a
//! message's `sent` event is queued before its receipt can be handled.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::outbox::{Closed, Outbox};
use super::receiver::Handler;
use crate::Error;
use crate::model::chat::{GroupReceipt, MemberChange, MemberEvent};
use crate::model::{ChatMessage, Datagram, Event, Outcome, Receipt, SentKind};
use crate::net::limits::payload_limit;
use crate::proto::envelope::{self, MAGIC};
use crate::proto::members::{self, HELLO_EVERY};
use crate::proto::random::Rng;
use crate::proto::seal::{Key, Rejection, ReplayWindow, Sealer};
use crate::proto::{
    Acked, Arrival, Arrivals, Decoded, Due, Envelope, GroupSend, GroupSends, Heard, Member,
    Members, Outbound, Presence, RtoConfig, SessionId,
};

/// The most sender sessions whose sequence accounting is kept; past it the
/// one heard from least recently is forgotten, so that spoofed sources
/// cannot grow memory.
const MAX_SESSIONS: usize = 4096;

/// Senders whose first refusal for a reason is shown, per reason; the rest
/// are only counted.
const NOTICED_SENDERS: usize = 8;

/// The most peers whose kind (plain or dgram) and name are remembered.
const MAX_PEERS: usize = 4096;

/// A line ending added to plain messages (`--eol`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Eol {
    /// The bytes typed, exactly.
    #[default]
    None,
    /// `\n`.
    Lf,
    /// `\r\n`.
    CrLf,
}

impl Eol {
    /// The bytes added.
    pub fn bytes(self) -> &'static [u8] {
        match self {
            Eol::None => b"",
            Eol::Lf => b"\n",
            Eol::CrLf => b"\r\n",
        }
    }
}

/// Who this side is, and how it sends.
#[derive(Debug, Clone)]
pub struct MessengerOptions {
    /// This run's session id.
    pub session: SessionId,
    /// The name sent with every message.
    pub name: String,
    /// Retries and the timeout floor.
    pub rto: RtoConfig,
    /// The line ending added to plain messages.
    pub eol: Eol,
    /// Tell the user when a peer turns out to speak plain UDP (a chat does;
    /// a listener does not send messages, so it does not need to).
    pub announce_kinds: bool,
    /// `--raw`: every peer is plain; no envelopes are sent.
    pub raw: bool,
    /// `--group`/`--broadcast`: this side is a member of the group at this
    /// address (hellos, byes, messages to every member).
    pub group: Option<SocketAddr>,
    /// How often a group member says hello (before jitter).
    pub hello: Duration,
    /// Show messages without acknowledging them (`listen --group`: a
    /// watcher is not a member, and its receipts would be strays).
    pub silent: bool,
    /// `--key-file`: seal every envelope sent, take only sealed ones.
    pub key: Option<Key>,
}

impl MessengerOptions {
    /// The options of a side that only receives (a listener): no name, the
    /// default timers.
    pub fn receiver() -> MessengerOptions {
        MessengerOptions {
            session: SessionId::random(),
            name: String::new(),
            rto: RtoConfig::default(),
            eol: Eol::None,
            announce_kinds: false,
            raw: false,
            group: None,
            hello: HELLO_EVERY,
            silent: false,
            key: None,
        }
    }
}

/// How a message went out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SentAs {
    /// In an envelope, with this sequence number: a receipt will settle it.
    Envelope(u64),
    /// As plain bytes: no receipt will come.
    Plain,
}

/// A message waiting for its receipt, for `/pending`.
#[derive(Debug, Clone)]
pub struct Waiting {
    /// Destination.
    pub to: SocketAddr,
    /// Sequence number.
    pub seq: u64,
    /// Tries sent so far.
    pub tries: u8,
    /// Since the first try.
    pub age: Duration,
    /// Until the next try (or failure).
    pub next: Duration,
    /// The message.
    pub payload: Arc<[u8]>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Plain,
    Dgram,
}

#[derive(Debug, Clone)]
struct PeerInfo {
    kind: Option<Kind>,
    /// The user chose the kind (`--plain`, `/plain`, `/dgram`): what the
    /// peer sends does not change it.
    chosen: bool,
    name: Option<String>,
    last: Instant,
}

#[derive(Debug)]
struct SessionCounts {
    arrivals: Arrivals,
    duplicates: u64,
    last: Instant,
}

#[derive(Debug)]
struct State {
    options: MessengerOptions,
    outbound: Outbound,
    inbound: HashMap<(SocketAddr, SessionId), SessionCounts>,
    peers: HashMap<SocketAddr, PeerInfo>,
    group: Option<GroupState>,
    /// Seals what is sent and opens what arrives (`--key-file`).
    sealer: Option<Sealer>,
    /// A replay window per sender run (its nonce prefix, whatever address
    /// its datagrams come from: a replay from another address is still a
    /// replay), with when it was last used.
    windows: HashMap<[u8; 16], (ReplayWindow, Instant)>,
}

/// A group member's view of its group.
#[derive(Debug)]
struct GroupState {
    /// The group's address.
    addr: SocketAddr,
    members: Members,
    /// Messages to the group waiting for some member's receipt.
    sends: GroupSends,
    /// The next hello (the first goes out at once).
    next_hello: Instant,
    rng: Rng,
}

impl GroupState {
    fn silent_after(&self, hello: Duration) -> Duration {
        members::silent_after(hello)
    }

    /// The event for a change about `member`.
    fn member_event(&self, addr: SocketAddr, name: &str, change: MemberChange) -> Event {
        Event::Member(MemberEvent {
            group: self.addr,
            addr,
            name: name.to_string(),
            change,
            members: self.members.len(),
        })
    }

    /// The event for a message whose members are all settled.
    fn receipt_event(&self, send: GroupSend, left: &[Member]) -> Event {
        let named = |addrs: &[SocketAddr]| -> Vec<(SocketAddr, String)> {
            addrs
                .iter()
                .map(|addr| {
                    let name = self
                        .members
                        .get(*addr)
                        .or_else(|| left.iter().find(|m| m.addr == *addr))
                        .map(|m| m.name.clone())
                        .unwrap_or_default();
                    (*addr, name)
                })
                .collect()
        };
        Event::GroupReceipt(Box::new(GroupReceipt {
            group: self.addr,
            seq: send.seq,
            delivered: named(&send.delivered),
            missing: named(&send.missing),
            payload: send.payload,
        }))
    }
}

impl State {
    /// `envelope` as it goes on the wire: sealed when keyed.
    fn wire(&mut self, envelope: Vec<u8>) -> Vec<u8> {
        match &mut self.sealer {
            Some(sealer) => sealer.seal(&envelope),
            None => envelope,
        }
    }

    /// This side's hello (or bye), as it goes on the wire; `named: false`
    /// leaves the name out (a reply that must not outgrow what it answers).
    fn presence(&mut self, bye: bool, named: bool) -> Vec<u8> {
        let presence = Presence {
            session: self.options.session,
            name: if named {
                self.options.name.clone()
            } else {
                String::new()
            },
        };
        self.wire(envelope::encode_presence(&presence, bye))
    }

    fn peer(&mut self, addr: SocketAddr) -> &mut PeerInfo {
        if !self.peers.contains_key(&addr) && self.peers.len() >= MAX_PEERS {
            forget_oldest(&mut self.peers, |p| p.last);
        }
        let peer = self.peers.entry(addr).or_insert(PeerInfo {
            kind: None,
            chosen: false,
            name: None,
            last: Instant::now(),
        });
        peer.last = Instant::now();
        peer
    }

    /// `from` sent a valid envelope: it speaks dgram from now on (said, if
    /// it was taken for a plain peer), and its name is noted.
    fn heard_envelope(
        &mut self,
        from: SocketAddr,
        name: Option<&str>,
        outbox: &Outbox,
    ) -> Result<(), Closed> {
        let announce = self.options.announce_kinds;
        let peer = self.peer(from);
        if let Some(name) = name.filter(|n| !n.is_empty()) {
            peer.name = Some(name.to_string());
        }
        if peer.chosen {
            return Ok(());
        }
        let was_plain = peer.kind == Some(Kind::Plain);
        peer.kind = Some(Kind::Dgram);
        if was_plain && announce {
            outbox.emit_received(Event::PeerKind {
                peer: from,
                plain: false,
            })?;
        }
        Ok(())
    }

    fn name_of(&self, addr: SocketAddr) -> Option<String> {
        self.peers.get(&addr).and_then(|p| p.name.clone())
    }

    fn is_plain(&self, addr: SocketAddr) -> bool {
        self.options.raw || self.peers.get(&addr).and_then(|p| p.kind) == Some(Kind::Plain)
    }
}

/// Makes room in a full map: removes the eighth of its entries whose
/// `last` is oldest, at once, so that a flood of new senders costs a sort
/// every few hundred of them rather than a scan for each.
fn forget_oldest<K: Copy + Eq + std::hash::Hash, V>(
    map: &mut HashMap<K, V>,
    last: impl Fn(&V) -> Instant,
) {
    let mut ages: Vec<(Instant, K)> = map.iter().map(|(k, v)| (last(v), *k)).collect();
    let forget = (ages.len() / 8).max(1);
    ages.select_nth_unstable_by_key(forget - 1, |(at, _)| *at);
    for (_, key) in &ages[..forget] {
        map.remove(key);
    }
}

/// Sends chat messages and keeps the protocol's state; cheap to clone (the
/// input thread and the receiver thread each hold one).
#[derive(Debug, Clone)]
pub struct Messenger {
    state: Arc<Mutex<State>>,
    outbox: Outbox,
}

impl Messenger {
    /// A messenger sending through `outbox`.
    ///
    /// Fails only when the operating system gives no randomness for the
    /// seal's nonce prefix.
    pub fn new(outbox: Outbox, options: MessengerOptions) -> Result<Messenger, Error> {
        let sealer = options
            .key
            .as_ref()
            .map(Sealer::new)
            .transpose()
            .map_err(|source| Error::Randomness { source })?;
        Ok(Messenger {
            state: Arc::new(Mutex::new(State {
                sealer,
                windows: HashMap::new(),
                outbound: Outbound::new(options.rto),
                inbound: HashMap::new(),
                peers: HashMap::new(),
                group: options.group.map(|addr| GroupState {
                    addr,
                    members: Members::default(),
                    sends: GroupSends::default(),
                    next_hello: Instant::now(),
                    rng: Rng::new(),
                }),
                options,
            })),
            outbox,
        })
    }

    /// The handler to give the pipeline: it decodes and answers what
    /// arrives, and hands plain datagrams to `plain` (show, echo).
    pub fn handler(&self, plain: Box<dyn Handler>) -> Protocol {
        let state = self.lock();
        Protocol {
            messenger: self.clone(),
            plain,
            refused: std::collections::HashSet::new(),
            keyed: state.sealer.is_some(),
            in_group: state.group.is_some(),
        }
    }

    /// Sends one chat message to `to`: in an envelope (and waiting for its
    /// receipt) unless `to` speaks plain UDP, then as the bytes given plus
    /// `--eol`.
    pub fn send(&self, payload: &[u8], to: SocketAddr) -> Result<SentAs, Error> {
        let mut state = self.lock();
        if !state.options.raw && state.group.as_ref().is_some_and(|g| g.addr == to) {
            return self.send_to_group(&mut state, payload);
        }
        if state.is_plain(to) {
            let mut bytes = payload.to_vec();
            bytes.extend_from_slice(state.options.eol.bytes());
            crate::net::limits::check_payload(bytes.len(), &to)?;
            let kind = SentKind::Text {
                payload: Arc::from(payload),
            };
            self.outbox.send_as(&bytes, to, kind)?;
            return Ok(SentAs::Plain);
        }
        if state.outbound.is_full() {
            return Err(Error::TooManyPending {
                limit: crate::proto::outbound::MAX_PENDING,
            });
        }
        let seq = state.outbound.next_seq(to);
        let bytes = first_try(&mut state, seq, payload, to)?;
        let payload: Arc<[u8]> = Arc::from(payload);
        let kind = SentKind::Message {
            seq,
            attempt: 1,
            payload: Arc::clone(&payload),
            name: state.name_of(to),
        };
        self.outbox.send_as(&bytes, to, kind)?;
        state.outbound.sent_first(to, seq, payload, Instant::now());
        Ok(SentAs::Envelope(seq))
    }

    /// Sends one message to the group: one datagram, waiting for a receipt
    /// from each member present now (retransmitted to each that has not
    /// acknowledged, on its own).
    fn send_to_group(&self, state: &mut State, payload: &[u8]) -> Result<SentAs, Error> {
        let group = state.group.as_ref().expect("the caller checked");
        let (to, expected) = (group.addr, group.members.addrs());
        if state.outbound.pending_count() + expected.len() > crate::proto::outbound::MAX_PENDING {
            return Err(Error::TooManyPending {
                limit: crate::proto::outbound::MAX_PENDING,
            });
        }
        let seq = state.outbound.next_seq(to);
        let bytes = first_try(state, seq, payload, to)?;
        let payload: Arc<[u8]> = Arc::from(payload);
        let kind = SentKind::Message {
            seq,
            attempt: 1,
            payload: Arc::clone(&payload),
            name: None,
        };
        self.outbox.send_as(&bytes, to, kind)?;
        let seq = state.outbound.take_seq(to);
        let now = Instant::now();
        for member in &expected {
            state
                .outbound
                .sent_first(*member, seq, Arc::clone(&payload), now);
        }
        // Plain members (socat, a Python script) cannot read envelopes:
        // each gets the text as typed, directly.
        let plain: Vec<SocketAddr> = state
            .peers
            .iter()
            .filter(|(_, p)| p.kind == Some(Kind::Plain))
            .map(|(addr, _)| *addr)
            .collect();
        for member in plain {
            let mut bytes = payload.to_vec();
            bytes.extend_from_slice(state.options.eol.bytes());
            let kind = SentKind::Text {
                payload: Arc::clone(&payload),
            };
            // Its error, if any, is shown by the outbox.
            let _ = self.outbox.send_as(&bytes, member, kind);
        }
        let group = state.group.as_mut().expect("the caller checked");
        if let Some(nobody) = group.sends.start(seq, payload, expected) {
            let _ = self.outbox.emit(group.receipt_event(nobody, &[]));
        }
        Ok(SentAs::Envelope(seq))
    }

    /// In a group, waits (at most `longest`) until the members present
    /// have answered this member's first hello: until one has been heard
    /// and then `settle` has passed without another, so that a pipe's
    /// first message is not sent to an empty room it just joined.
    pub fn wait_for_members(&self, longest: Duration, settle: Duration) {
        if self.group().is_none() {
            return;
        }
        let start = Instant::now();
        let (mut count, mut since) = (0, start);
        while start.elapsed() < longest {
            let now = self.members().len();
            if now != count {
                (count, since) = (now, Instant::now());
            }
            if count > 0 && since.elapsed() >= settle {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// How often this side says hello (a group member).
    pub fn hello_every(&self) -> Duration {
        self.lock().options.hello
    }

    /// True when every envelope is sealed (`--key-file`).
    pub fn is_keyed(&self) -> bool {
        self.lock().sealer.is_some()
    }

    /// The group this side is a member of.
    pub fn group(&self) -> Option<SocketAddr> {
        self.lock().group.as_ref().map(|g| g.addr)
    }

    /// The group's members as last heard (empty outside a group).
    pub fn members(&self) -> Vec<Member> {
        self.lock()
            .group
            .as_ref()
            .map(|g| g.members.list())
            .unwrap_or_default()
    }

    /// True when `to` gets plain bytes (it sent plain datagrams, or was
    /// marked so).
    pub fn is_plain(&self, to: SocketAddr) -> bool {
        self.lock().is_plain(to)
    }

    /// Marks `peer` as speaking plain UDP or dgram from now on, and says so
    /// in the events.
    /// The choice stands whatever the peer sends later.
    pub fn set_plain(&self, peer: SocketAddr, plain: bool) {
        let mut state = self.lock();
        let info = state.peer(peer);
        info.kind = Some(if plain { Kind::Plain } else { Kind::Dgram });
        info.chosen = true;
        let _ = self.outbox.emit(Event::PeerKind { peer, plain });
    }

    /// Takes `peer` to speak plain UDP from the start (`--plain`: a peer such
    /// as `nc -u -l` cannot speak first).
    pub fn assume_plain(&self, peer: SocketAddr) {
        let mut state = self.lock();
        let info = state.peer(peer);
        info.kind = Some(Kind::Plain);
        info.chosen = true;
    }

    /// Messages waiting for their receipts.
    pub fn waiting(&self) -> Vec<Waiting> {
        let now = Instant::now();
        self.lock()
            .outbound
            .pending()
            .map(|p| Waiting {
                to: p.to,
                seq: p.seq,
                tries: p.tries(),
                age: now.saturating_duration_since(p.sent[0]),
                next: p.deadline.saturating_duration_since(now),
                payload: Arc::clone(&p.payload),
            })
            .collect()
    }

    /// True while message `seq` to `to` waits for its receipt.
    pub fn is_waiting(&self, to: SocketAddr, seq: u64) -> bool {
        self.lock().outbound.is_pending(to, seq)
    }

    /// How many messages wait for their receipts.
    pub fn pending_count(&self) -> usize {
        self.lock().outbound.pending_count()
    }

    /// True when no more messages may wait for receipts.
    pub fn is_full(&self) -> bool {
        self.lock().outbound.is_full()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock means a thread panicked mid-update; the state is
        // still the best there is.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The envelope of the first try of message `seq` to `to`, or why it
/// cannot be one datagram.
fn first_try(
    state: &mut State,
    seq: u64,
    payload: &[u8],
    to: SocketAddr,
) -> Result<Vec<u8>, Error> {
    let envelope = envelope::encode_message(&envelope::Message {
        session: state.options.session,
        seq,
        attempt: 1,
        name: state.options.name.clone(),
        payload: payload.to_vec(),
    });
    let bytes = state.wire(envelope);
    let limit = payload_limit(&to).bytes;
    if bytes.len() > limit {
        let overhead = bytes.len() - payload.len();
        return Err(Error::MessageTooLarge {
            peer: to,
            len: payload.len(),
            limit: limit.saturating_sub(overhead),
            overhead,
        });
    }
    Ok(bytes)
}

/// The protocol's receive side, run by the receiver thread.
pub struct Protocol {
    messenger: Messenger,
    plain: Box<dyn Handler>,
    /// Senders and reasons already shown refused (then only counted).
    refused: std::collections::HashSet<(SocketAddr, Rejection)>,
    /// Sealed envelopes only (`--key-file`); fixed for the run, so the
    /// receive path need not take the lock to ask.
    keyed: bool,
    /// A group member (fixed for the run).
    in_group: bool,
}

impl Protocol {
    fn on_message(
        &mut self,
        datagram: &Datagram,
        message: envelope::Message,
        wire_len: usize,
        outbox: &Outbox,
    ) -> Result<(), Closed> {
        let from = datagram.from;
        let mut state = self.messenger.lock();
        let me = state.options.session;
        if state.group.is_some() {
            if message.session == me {
                // Our own message, looped back by multicast: not shown
                // again, not acknowledged.
                return Ok(());
            }
            Self::heard_member(
                &mut state,
                from,
                message.session,
                &message.name,
                None,
                outbox,
            )?;
        }
        state.heard_envelope(from, Some(&message.name), outbox)?;
        if !state.inbound.contains_key(&(from, message.session))
            && state.inbound.len() >= MAX_SESSIONS
        {
            forget_oldest(&mut state.inbound, |s| s.last);
        }
        let counts = state
            .inbound
            .entry((from, message.session))
            .or_insert_with(|| SessionCounts {
                arrivals: Arrivals::default(),
                duplicates: 0,
                last: Instant::now(),
            });
        counts.last = Instant::now();
        let arrival = counts.arrivals.record(message.seq);
        if arrival == Arrival::Duplicate {
            counts.duplicates += 1;
        }
        let duplicates = counts.duplicates;
        if let Arrival::New {
            gap: Some((first, last)),
        } = arrival
        {
            outbox.emit_received(Event::Gap {
                from,
                name: message.name.clone(),
                first,
                last,
            })?;
        }
        let (seq, attempt) = (message.seq, message.attempt);
        outbox.emit_received(Event::Message(Box::new(ChatMessage {
            at: datagram.at,
            from,
            name: message.name,
            session: message.session,
            seq,
            attempt,
            payload: message.payload,
            duplicate: arrival == Arrival::Duplicate,
            duplicates,
            reordered: arrival == Arrival::Reordered,
            wire_len,
        })))?;
        if state.options.silent {
            return Ok(());
        }
        // Every copy is acknowledged: the receipt for an earlier copy may
        // be the one that was lost.
        let receipt = envelope::encode_receipt(&envelope::Receipt {
            session: me,
            seq,
            attempt,
        });
        let receipt = state.wire(receipt);
        // A receipt that cannot go out is like a lost one: the sender
        // tries again. Its error (an ICMP report) is shown by the outbox.
        let _ = outbox.send_as(&receipt, from, SentKind::Receipt { seq, attempt });
        Ok(())
    }

    fn on_receipt(
        &mut self,
        from: SocketAddr,
        wire_len: usize,
        receipt: envelope::Receipt,
        outbox: &Outbox,
    ) -> Result<(), Closed> {
        let mut state = self.messenger.lock();
        if state.group.is_some() {
            if receipt.session == state.options.session {
                return Ok(());
            }
            Self::heard_member(&mut state, from, receipt.session, "", None, outbox)?;
        }
        state.heard_envelope(from, None, outbox)?;
        let name = state.name_of(from);
        let acked = state
            .outbound
            .receipt(from, receipt.seq, receipt.attempt, Instant::now());
        let (outcome, rtt, tries, payload) = match acked {
            Acked::Delivered {
                rtt,
                tries,
                payload,
            } => (Outcome::Delivered, rtt, tries, payload),
            Acked::Late {
                rtt,
                tries,
                payload,
            } => (Outcome::Late, rtt, tries, payload),
            Acked::Stray => {
                return outbox.emit_received(Event::StrayReceipt {
                    from,
                    seq: receipt.seq,
                    len: wire_len,
                });
            }
        };
        let group = state.group.as_ref().map(|g| g.addr);
        let event = Receipt {
            to: from,
            name,
            seq: receipt.seq,
            outcome,
            rtt: Some(rtt),
            tries,
            payload,
            ended: false,
            refused: false,
            wire_len: Some(wire_len),
            group,
        };
        outbox.emit_received(Event::Receipt(event))?;
        if outcome == Outcome::Delivered
            && let Some(group) = state.group.as_mut()
            && let Some(done) = group.sends.settle(receipt.seq, from, true)
        {
            outbox.emit_received(group.receipt_event(done, &[]))?;
        }
        Ok(())
    }

    /// Notes that group member `from` was heard (any envelope of its own
    /// session), and says so when it is new or restarted. A new member
    /// gets a hello of ours at once, so that it knows of us without
    /// waiting for our next one.
    ///
    /// `hello_len`: the length of the hello that made it heard, if a hello
    /// did. Only a hello is answered with a hello, and never with more
    /// bytes than it had: our name is left out when it would not fit.
    fn heard_member(
        state: &mut State,
        from: SocketAddr,
        session: SessionId,
        name: &str,
        hello_len: Option<usize>,
        outbox: &Outbox,
    ) -> Result<(), Closed> {
        let reply = hello_len.and_then(|limit| {
            [true, false]
                .into_iter()
                .map(|named| state.presence(false, named))
                .find(|hello| hello.len() <= limit)
        });
        let Some(group) = state.group.as_mut() else {
            return Ok(());
        };
        let heard = group
            .members
            .heard(from, session, Some(name), Instant::now());
        let name = group
            .members
            .get(from)
            .map_or_else(|| name.to_string(), |m| m.name.clone());
        let change = match heard {
            Heard::Known => return Ok(()),
            Heard::Joined => MemberChange::Joined,
            Heard::Restarted => MemberChange::Restarted,
            Heard::Full => MemberChange::NotKept,
        };
        outbox.emit_received(group.member_event(from, &name, change))?;
        if change != MemberChange::NotKept
            && let Some(hello) = reply
        {
            let _ = outbox.send_as(&hello, from, SentKind::Presence { bye: false });
        }
        Ok(())
    }

    /// A hello or a bye from another member.
    fn on_presence(
        &mut self,
        from: SocketAddr,
        wire_len: usize,
        presence: Presence,
        bye: bool,
        outbox: &Outbox,
    ) -> Result<(), Closed> {
        let mut state = self.messenger.lock();
        if state.group.is_none() {
            // Not a member of any group: counted, nothing more.
            return outbox.emit_received(Event::Presence {
                from,
                name: presence.name,
                bye,
                len: wire_len,
            });
        }
        if presence.session == state.options.session {
            // Our own, looped back.
            return Ok(());
        }
        outbox.emit_received(Event::Presence {
            from,
            name: presence.name.clone(),
            bye,
            len: wire_len,
        })?;
        state.heard_envelope(from, Some(&presence.name), outbox)?;
        if !bye {
            return Self::heard_member(
                &mut state,
                from,
                presence.session,
                &presence.name,
                Some(wire_len),
                outbox,
            );
        }
        let group = state.group.as_mut().expect("checked above");
        let Some(member) = group.members.bye(from, presence.session) else {
            return Ok(());
        };
        outbox.emit_received(group.member_event(from, &member.name, MemberChange::Left))?;
        // What it had not acknowledged, it never will.
        let failed = state.outbound.refused(from);
        Self::report_failed(&mut state, failed, Failure::NoReceipt, &[member], outbox)
    }

    fn on_plain(&mut self, datagram: Datagram, outbox: &Outbox) -> Result<(), Closed> {
        let from = datagram.from;
        if self.in_group && crate::net::addr::is_own(from, outbox.endpoint().local_addr()) {
            // Our own plain datagram (`/empty`, `/burst`), looped back by
            // multicast: not news, and not a plain member.
            return Ok(());
        }
        self.plain.on_datagram(datagram, outbox)?;
        let mut state = self.messenger.lock();
        let announce = state.options.announce_kinds;
        if !announce {
            // A listener sends no messages: what its plain senders speak
            // does not matter, and is not kept.
            return Ok(());
        }
        let peer = state.peer(from);
        // A dgram peer may send plain datagrams too (`/empty`, `/size`): it
        // stays a dgram peer. The notice follows the datagram it is about.
        if peer.kind.is_none() {
            peer.kind = Some(Kind::Plain);
            outbox.emit_received(Event::PeerKind {
                peer: from,
                plain: true,
            })?;
        }
        Ok(())
    }

    /// Emits a failed receipt for each message in `failed` (and, for a
    /// group, the group receipt of each message now settled; `left` are
    /// members no longer in the table, for their names).
    fn report_failed(
        state: &mut State,
        failed: Vec<Due>,
        why: Failure,
        left: &[Member],
        outbox: &Outbox,
    ) -> Result<(), Closed> {
        let group = state.group.as_ref().map(|g| g.addr);
        for due in failed {
            if let Due::Failed {
                to,
                seq,
                tries,
                payload,
            } = due
            {
                outbox.emit_received(Event::Receipt(Receipt {
                    to,
                    name: state.name_of(to),
                    seq,
                    outcome: Outcome::Failed,
                    rtt: None,
                    tries,
                    payload,
                    ended: why == Failure::Ended,
                    refused: why == Failure::Refused,
                    wire_len: None,
                    group,
                }))?;
                if let Some(group) = state.group.as_mut()
                    && let Some(done) = group.sends.settle(seq, to, false)
                {
                    outbox.emit_received(group.receipt_event(done, left))?;
                }
            }
        }
        Ok(())
    }
}

impl Protocol {
    /// A group member's timers: its hello when due, and members silent too
    /// long taken to have left (what they had not acknowledged fails).
    fn group_timers(state: &mut State, now: Instant, outbox: &Outbox) -> Result<(), Closed> {
        let hello_every = state.options.hello;
        let due = state.group.as_ref().is_some_and(|g| g.next_hello <= now);
        let hello = due.then(|| state.presence(false, true));
        let Some(group) = state.group.as_mut() else {
            return Ok(());
        };
        if let Some(hello) = hello {
            let _ = outbox.send_as(&hello, group.addr, SentKind::Presence { bye: false });
            let unit = group.rng.unit();
            group.next_hello = now + members::hello_every(hello_every, unit);
        }
        let silent = group.silent_after(hello_every);
        let gone = group.members.expired(now, silent);
        for member in &gone {
            let heard = now.saturating_duration_since(member.last);
            outbox.emit_received(group.member_event(
                member.addr,
                &member.name,
                MemberChange::Silent(heard),
            ))?;
        }
        for member in &gone {
            let failed = state.outbound.refused(member.addr);
            Self::report_failed(state, failed, Failure::NoReceipt, &gone, outbox)?;
        }
        Ok(())
    }
}

impl Protocol {
    /// An envelope, authenticated if keyed; `wire_len` is the datagram's
    /// length as it arrived.
    fn on_envelope(
        &mut self,
        datagram: Datagram,
        envelope: Envelope,
        wire_len: usize,
        outbox: &Outbox,
    ) -> Result<(), Closed> {
        let from = datagram.from;
        match envelope {
            Envelope::Message(message) => self.on_message(&datagram, message, wire_len, outbox),
            Envelope::Receipt(receipt) => self.on_receipt(from, wire_len, receipt, outbox),
            Envelope::Hello(presence) => self.on_presence(from, wire_len, presence, false, outbox),
            Envelope::Bye(presence) => self.on_presence(from, wire_len, presence, true, outbox),
        }
    }

    /// A datagram at a keyed side: opened and checked against the
    /// sender's replay window, or refused. Nothing refused is shown as a
    /// message or answered.
    fn on_keyed(&mut self, datagram: Datagram, outbox: &Outbox) -> Result<(), Closed> {
        let wire_len = datagram.len();
        let opened = {
            let mut state = self.messenger.lock();
            let sealer = state.sealer.as_ref().expect("keyed");
            let opened = if datagram.truncated {
                Err(Rejection::Malformed)
            } else {
                sealer.open(&datagram.payload)
            };
            opened.and_then(|opened| {
                let key = opened.prefix;
                if !state.windows.contains_key(&key) && state.windows.len() >= MAX_SESSIONS {
                    forget_oldest(&mut state.windows, |(_, last)| *last);
                }
                let (window, last) = state
                    .windows
                    .entry(key)
                    .or_insert_with(|| (ReplayWindow::default(), Instant::now()));
                window.check(opened.counter)?;
                window.take(opened.counter);
                *last = Instant::now();
                Ok(opened)
            })
        };
        let opened = match opened {
            Ok(opened) => opened,
            Err(reason) => return self.reject(&datagram, reason, outbox),
        };
        let inner = Datagram {
            payload: opened.inner,
            ..datagram
        };
        match envelope::decode(&inner.payload) {
            Decoded::Envelope(envelope) => self.on_envelope(inner, envelope, wire_len, outbox),
            // Authenticated, yet not an envelope: a faulty peer with the key.
            Decoded::Plain | Decoded::Malformed(_) => {
                let outer = Datagram {
                    payload: vec![0; wire_len],
                    ..inner
                };
                self.reject(&outer, Rejection::Malformed, outbox)
            }
        }
    }

    /// Counts a refused datagram; people see the first per sender and
    /// reason.
    fn reject(
        &mut self,
        datagram: &Datagram,
        reason: Rejection,
        outbox: &Outbox,
    ) -> Result<(), Closed> {
        // The first per sender and reason is shown, for at most
        // NOTICED_SENDERS senders per reason (a flood from many ports is
        // counted, not printed line by line).
        let noticed = self.refused.iter().filter(|(_, r)| *r == reason).count();
        let first = noticed < NOTICED_SENDERS && self.refused.insert((datagram.from, reason));
        outbox.emit_received(Event::Rejected {
            from: datagram.from,
            reason,
            len: datagram.len(),
            first,
        })
    }
}

/// Why messages failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    /// Out of tries.
    NoReceipt,
    /// The chat ended first.
    Ended,
    /// The peer's host refused them (ICMP port unreachable).
    Refused,
}

impl Handler for Protocol {
    fn on_datagram(&mut self, datagram: Datagram, outbox: &Outbox) -> Result<(), Closed> {
        if self.keyed {
            return self.on_keyed(datagram, outbox);
        }
        if datagram.truncated && datagram.payload.first() == Some(&MAGIC) {
            let reason = "cut short by --max-size".to_string();
            return self.plain.on_malformed(datagram, reason, outbox);
        }
        match envelope::decode(&datagram.payload) {
            Decoded::Plain => self.on_plain(datagram, outbox),
            Decoded::Malformed(why) => self.plain.on_malformed(datagram, why.to_string(), outbox),
            Decoded::Envelope(envelope) => {
                let wire_len = datagram.len();
                self.on_envelope(datagram, envelope, wire_len, outbox)
            }
        }
    }

    fn next_wake(&self) -> Option<Instant> {
        if self.messenger.outbox.has_refusals() {
            return Some(Instant::now());
        }
        let state = self.messenger.lock();
        let outbound = state.outbound.next_deadline();
        let Some(group) = &state.group else {
            return outbound;
        };
        let silent = group.silent_after(state.options.hello);
        [
            outbound,
            Some(group.next_hello),
            group.members.next_expiry(silent),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn on_wake(&mut self, outbox: &Outbox) -> Result<(), Closed> {
        let mut state = self.messenger.lock();
        // A refusal is the kernel saying that nothing listens there: the
        // messages waiting for that peer fail now rather than after all
        // their tries (a receipt that still comes is a late delivery).
        for peer in outbox.take_refusals() {
            let failed = state.outbound.refused(peer);
            Self::report_failed(&mut state, failed, Failure::Refused, &[], outbox)?;
        }
        let now = Instant::now();
        Self::group_timers(&mut state, now, outbox)?;
        let mut failed = Vec::new();
        for due in state.outbound.due(now) {
            match due {
                Due::Resend {
                    to,
                    seq,
                    attempt,
                    payload,
                } => {
                    let envelope = envelope::encode_message(&envelope::Message {
                        session: state.options.session,
                        seq,
                        attempt,
                        name: state.options.name.clone(),
                        payload: payload.to_vec(),
                    });
                    let bytes = state.wire(envelope);
                    let kind = SentKind::Message {
                        seq,
                        attempt,
                        payload,
                        name: state.name_of(to),
                    };
                    // A try that could not go out counts as sent and lost:
                    // the schedule goes on, and the error has been shown.
                    let _ = outbox.send_as(&bytes, to, kind);
                    state.outbound.sent_again(to, seq, attempt, now);
                }
                out_of_tries @ Due::Failed { .. } => failed.push(out_of_tries),
            }
        }
        Self::report_failed(&mut state, failed, Failure::NoReceipt, &[], outbox)
    }

    fn on_stop(&mut self, outbox: &Outbox) -> Result<(), Closed> {
        let mut state = self.messenger.lock();
        if let Some(group) = state.group.as_ref().map(|g| g.addr) {
            let bye = state.presence(true, true);
            let _ = outbox.send_as(&bye, group, SentKind::Presence { bye: true });
        }
        let failed = state.outbound.abandon();
        Self::report_failed(&mut state, failed, Failure::Ended, &[], outbox)
    }
}
