//! The chat protocol as one state machine without input or output, shaped
//! like quinn-proto's `Connection`: the runtime feeds it what happened
//! (a datagram arrived, a peer's host refused one, a message is to be sent,
//! time passed) with the time it happened, and drains what it decided
//! (datagrams to send with [`Core::poll_transmit`], what to report with
//! [`Core::poll_event`], when to be woken with [`Core::poll_timeout`]).
//!
//! It holds every rule of the protocol: envelopes and sealing, the replay
//! windows, receipts and their RFC 6298 timers, gaps and duplicates per
//! sender session, plain peers, group membership and hellos, refusals. It
//! reads no clock, opens no socket or file, starts no thread and draws no
//! randomness of its own (the runtime hands it a seed and a nonce prefix),
//! so tests drive it in memory with a fake clock
//! (`src/proto/tests.rs`).

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::envelope::{
    self, Ack, Decoded, Envelope, MAGIC, Message, NO_TOKEN, Presence, SessionId,
};
use super::inbound::Arrival;
use super::members::{self, GroupSend, GroupSends, HELLO_EVERY, Heard, Member, Members};
use super::outbound::{Acked, Due, MAX_PENDING, Outbound};
use super::peers::{Kind, Matched, PeerId, Peers};
use super::random::Rng;
use super::report::{
    ChatMessage, GroupReceipt, MemberChange, MemberEvent, Outcome, SecureEvent, Settled,
};
use super::rto::RtoConfig;
use super::seal::{Key, Rejection, ReplayWindow, Sealer};
use super::secure::wire::{KIND_HANDSHAKE, KIND_SECURED, SECURED_OVERHEAD};
use super::secure::{RekeyLimits, Secret};
use super::sessions::{self, Queued, Sessions};

/// The most bytes a plain member may be owed: what it sent, up to this.
const MAX_CREDIT: usize = 1 << 20;

/// Senders whose first refusal for a reason is shown, per reason; the rest
/// are only counted.
const NOTICED_SENDERS: usize = 8;

/// The most replay windows (one per sender run, 512 bytes each) kept.
const MAX_WINDOWS: usize = 1024;

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
pub struct ChatConfig {
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
    /// `--key-file`: seal every envelope sent, take only sealed ones. A
    /// group seals with it directly (the room key); a chat with a peer
    /// makes it the pre-shared key of a handshake.
    pub key: Option<Key>,
    /// `--code`: the code's password (its canonical form), for the
    /// handshake.
    pub code: Option<Vec<u8>>,
    /// When a session's keys are replaced.
    pub rekey: RekeyLimits,
    /// Handshake inits answered per second before a cookie is asked for.
    pub handshake_rate: u32,
    /// `--keepalive`: a secure session with nothing else to send sends a
    /// keepalive this often (so that a NAT's mapping stays open).
    pub keepalive: Option<Duration>,
}

impl ChatConfig {
    /// The options of a side that only receives (a listener): no name, the
    /// default timers.
    pub fn receiver(session: SessionId) -> ChatConfig {
        ChatConfig {
            session,
            name: String::new(),
            rto: RtoConfig::default(),
            eol: Eol::None,
            announce_kinds: false,
            raw: false,
            group: None,
            hello: HELLO_EVERY,
            silent: false,
            key: None,
            code: None,
            rekey: RekeyLimits::default(),
            handshake_rate: sessions::DEFAULT_HANDSHAKE_RATE,
            keepalive: None,
        }
    }
}

/// The randomness a core needs, drawn by its caller.
#[derive(Debug, Clone, Copy)]
pub struct Entropy {
    /// Seeds the jitter of timers and hellos.
    pub seed: u64,
    /// The seal's nonce prefix for this run (keyed chats): it must not
    /// repeat across runs under one key.
    pub prefix: [u8; 16],
    /// The key of the tokens a group member challenges others with: what
    /// a member cannot guess, it must have received.
    pub secret: [u8; 32],
    /// Seeds the handshakes' ephemeral keys and the cookie secret.
    pub crypto: [u8; 32],
}

/// How a message went out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SentAs {
    /// In an envelope, with this sequence number: a receipt will settle it.
    Envelope(u64),
    /// As plain bytes: no receipt will come.
    Plain,
}

/// Why a message cannot be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// Too many messages wait for receipts already.
    TooManyPending {
        /// The most that may wait.
        limit: usize,
    },
    /// No secure session can open with the peer: the code was spent (on
    /// a wrong guess, or on another peer).
    NoSession,
    /// The message in its envelope would not fit in one datagram.
    TooLarge {
        /// The message's length.
        len: usize,
        /// The longest message that fits.
        limit: usize,
        /// Bytes the envelope adds.
        overhead: usize,
    },
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

/// What a datagram dgram sends is: the protocol's (messages, text to
/// plain peers, hellos and byes, receipts) and the others (plain bytes,
/// echo replies), for the report of its sending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SentKind {
    /// Plain bytes (a message to a plain peer, `/empty`, `send`, a burst).
    Datagram,
    /// An `--echo` reply.
    Echo,
    /// A chat message in an envelope: try `attempt` of number `seq`.
    Message {
        /// Its sequence number.
        seq: u64,
        /// Which try.
        attempt: u8,
        /// The message (without envelope).
        payload: Arc<[u8]>,
        /// The destination's name, if it has told it.
        name: Option<String>,
    },
    /// A datagram of the secure sessions' own (`--key-file`, `--code`):
    /// a handshake step, a keepalive, a path check.
    Control,
    /// A chat message to a plain peer: the bytes typed (plus `--eol`), no
    /// envelope, no receipt.
    Text {
        /// The message as typed (without the line ending added).
        payload: Arc<[u8]>,
    },
    /// A group member's hello (`bye: false`) or bye, to the group or to
    /// one member.
    Presence {
        /// A bye.
        bye: bool,
    },
    /// A receipt for try `attempt` of `seq`.
    Receipt {
        /// The number acknowledged.
        seq: u64,
        /// The try acknowledged.
        attempt: u8,
    },
}

/// A datagram the core wants sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Where to.
    pub to: SocketAddr,
    /// The datagram, as it goes on the wire (sealed when keyed).
    pub bytes: Vec<u8>,
    /// What it is, for the report of its sending.
    pub kind: SentKind,
}

/// What the protocol has to report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatEvent {
    /// A message arrived (a copy, too: it is marked).
    Message(Box<ChatMessage>),
    /// Numbers `first..=last` of a sender session were skipped.
    Gap {
        /// The sender.
        from: SocketAddr,
        /// Its name.
        name: String,
        /// First missing number.
        first: u64,
        /// Last missing number.
        last: u64,
    },
    /// A message sent reached its final state (or a late receipt came).
    Receipt(Settled),
    /// A receipt that settles nothing.
    StrayReceipt {
        /// Who sent it.
        from: SocketAddr,
        /// The number it names.
        seq: u64,
        /// Its length.
        len: usize,
    },
    /// A peer turned out to speak plain UDP, or dgram after all.
    PeerKind {
        /// The peer.
        peer: SocketAddr,
        /// Plain UDP.
        plain: bool,
    },
    /// A peer's session was heard from another address: the peer moved
    /// there (a NAT's new mapping, a roaming host), and what is sent to
    /// it goes there from now on.
    Moved {
        /// Its name, if it said one.
        name: String,
        /// Where it was.
        from: SocketAddr,
        /// Where it is now.
        to: SocketAddr,
    },
    /// A peer's session was heard from another address in a chat without
    /// keys: not followed (anyone could forge a move); what is sent to the
    /// peer still goes to `at`.
    NotFollowed {
        /// Its name, if it said one.
        name: String,
        /// Where the conversation stays.
        at: SocketAddr,
        /// Where its session was heard.
        heard: SocketAddr,
    },
    /// A copy of a group message to a plain member was not sent: it would
    /// have been more than the member has sent so far.
    Withheld {
        /// The plain member.
        peer: SocketAddr,
        /// The copy's length.
        len: usize,
        /// What the member had sent and not been sent back.
        credit: usize,
    },
    /// A group member joined, left or restarted.
    Member(MemberEvent),
    /// A message to the group is settled for every member.
    GroupReceipt(Box<GroupReceipt>),
    /// A hello or bye arrived.
    Presence {
        /// Who sent it.
        from: SocketAddr,
        /// Its name.
        name: String,
        /// A bye.
        bye: bool,
        /// Its length.
        len: usize,
    },
    /// A secure session's handshake, or a message waiting for it.
    Secure(SecureEvent),
    /// A keyed side refused a datagram.
    Rejected {
        /// When it arrived.
        at: SystemTime,
        /// Who sent it.
        from: SocketAddr,
        /// Why.
        reason: Rejection,
        /// Its length.
        len: usize,
        /// The first from this sender for this reason (shown; the rest
        /// are counted).
        first: bool,
    },
}

/// What the caller still has to do with a datagram the core looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handover {
    /// Nothing: the protocol took it (its events and answers are queued).
    Taken,
    /// It is plain bytes: show it (or echo it), then drain the core's
    /// events (a note that its sender speaks plain UDP may follow).
    Plain,
    /// It starts like an envelope but is not one: show it marked so.
    Malformed(String),
}

/// One datagram as it arrived.
#[derive(Debug, Clone, Copy)]
pub struct Incoming<'a> {
    /// When it arrived (the kernel's timestamp where there is one), for
    /// the report.
    pub at: SystemTime,
    /// Who sent it.
    pub from: SocketAddr,
    /// Its bytes.
    pub payload: &'a [u8],
    /// The receive buffer cut it short.
    pub truncated: bool,
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
}

impl GroupState {
    /// The event for a change about `member`.
    fn member_event(&self, addr: SocketAddr, name: &str, change: MemberChange) -> ChatEvent {
        ChatEvent::Member(MemberEvent {
            group: self.addr,
            addr,
            name: name.to_string(),
            change,
            members: self.members.len(),
        })
    }

    /// The event for a message whose members are all settled.
    fn receipt_event(&self, send: GroupSend, left: &[Member]) -> ChatEvent {
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
        ChatEvent::GroupReceipt(Box::new(GroupReceipt {
            group: self.addr,
            seq: send.seq,
            delivered: named(&send.delivered),
            missing: named(&send.missing),
            payload: send.payload,
        }))
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
    /// No secure session opened (no answer, or a wrong code).
    NoSession,
}

/// The protocol's state for one side of a chat (one socket: its peers,
/// its group, its key).
#[derive(Debug)]
pub struct Core {
    config: ChatConfig,
    outbound: Outbound,
    /// Every peer, known by its session (see [`Peers`]): what it speaks,
    /// its name, its address now, the numbering of its messages.
    peers: Peers,
    group: Option<GroupState>,
    /// Seals what is sent and opens what arrives in a keyed group (the
    /// room key).
    sealer: Option<Sealer>,
    /// A keyed chat's sessions (key file or code, outside a group).
    sessions: Option<Sessions>,
    /// A replay window per sender run (its nonce prefix, whatever address
    /// its datagrams come from: a replay from another address is still a
    /// replay), with when it was last used.
    /// The session its envelopes carry is bound to the prefix the first
    /// time one opens: a member cannot speak under another's prefix.
    windows: HashMap<[u8; 16], (ReplayWindow, Instant, Option<SessionId>)>,
    /// Senders and reasons already shown refused (then only counted).
    refused: HashSet<(SocketAddr, Rejection)>,
    rng: Rng,
    /// Keys the challenge tokens ([`Core::token`]).
    secret: [u8; 32],
    events: VecDeque<ChatEvent>,
    transmits: VecDeque<Transmit>,
    /// When the datagram being handled arrived (for its refusal's report).
    arrival: SystemTime,
    /// Peers already said to be heard from an address not followed.
    not_followed: HashSet<(PeerId, SocketAddr)>,
    /// The datagram being handled came from an address its secure session
    /// has not validated: its peer does not move there (yet).
    on_new_path: bool,
}

impl Core {
    /// A side with `config`, starting at `now`. A group member's first
    /// hello is due at once.
    pub fn new(config: ChatConfig, entropy: Entropy, now: Instant) -> Core {
        let sealer = config
            .key
            .as_ref()
            .filter(|_| config.group.is_some())
            .map(|key| Sealer::with_prefix(key, entropy.prefix));
        let secret = match (&config.key, &config.code) {
            _ if config.group.is_some() => None,
            (Some(key), _) => Some(Secret::KeyFile(key.clone())),
            (None, Some(code)) => Some(Secret::Code(code.clone())),
            (None, None) => None,
        };
        let sessions = secret.map(|secret| {
            Sessions::new(
                secret,
                config.session,
                config.rekey,
                config.rto,
                config.handshake_rate,
                entropy.crypto,
                now,
            )
            .with_keepalive(config.keepalive)
        });
        let mut rng = Rng::from_seed(entropy.seed);
        Core {
            sealer,
            sessions,
            windows: HashMap::new(),
            outbound: Outbound::new(config.rto, rng.next_u64()),
            peers: Peers::default(),
            group: config.group.map(|addr| GroupState {
                addr,
                members: Members::default(),
                sends: GroupSends::default(),
                next_hello: now,
            }),
            refused: HashSet::new(),
            rng,
            secret: entropy.secret,
            events: VecDeque::new(),
            transmits: VecDeque::new(),
            arrival: SystemTime::UNIX_EPOCH,
            not_followed: HashSet::new(),
            on_new_path: false,
            config,
        }
    }

    // ----- What the runtime asks -----

    /// The group this side is a member of.
    pub fn group(&self) -> Option<SocketAddr> {
        self.group.as_ref().map(|g| g.addr)
    }

    /// How often this side says hello (a group member).
    pub fn hello_every(&self) -> Duration {
        self.config.hello
    }

    /// The group's members as last heard (empty outside a group).
    pub fn members(&self) -> Vec<Member> {
        self.group
            .as_ref()
            .map(|g| g.members.list())
            .unwrap_or_default()
    }

    /// True when `to` gets plain bytes (it sent plain datagrams, or was
    /// marked so).
    pub fn is_plain(&self, to: SocketAddr) -> bool {
        self.config.raw
            || self
                .peers
                .at(to)
                .and_then(|id| self.peers.get(id))
                .and_then(|p| p.kind)
                == Some(Kind::Plain)
    }

    /// Messages waiting for their receipts, as of `now`.
    pub fn waiting(&self, now: Instant) -> Vec<Waiting> {
        self.outbound
            .pending()
            .map(|p| Waiting {
                to: self
                    .peers
                    .addr(p.to)
                    .expect("a peer with messages waiting is kept"),
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
        self.sessions.as_ref().is_some_and(|s| s.is_queued(to, seq))
            || self
                .peers
                .at(to)
                .is_some_and(|id| self.outbound.is_pending(id, seq))
    }

    /// How many messages wait for their receipts (or for their session).
    pub fn pending_count(&self) -> usize {
        self.outbound.pending_count() + self.sessions.as_ref().map_or(0, Sessions::queued_count)
    }

    /// The verification bytes of the secure session with `peer` (the same
    /// on both screens when no one sits in the middle).
    pub fn verify(&self, peer: SocketAddr) -> Option<[u8; 4]> {
        self.sessions.as_ref()?.verify_at(peer)
    }

    /// Offers the secure session with `peer` a new path: a keepalive to
    /// `via`, which the peer checks and moves to, after which this side
    /// hears it from there and follows (`chat --via` leaving a relay for
    /// a direct path). False when there is no session with `peer`.
    pub fn try_path(&mut self, now: Instant, peer: SocketAddr, via: SocketAddr) -> bool {
        let Some(sessions) = self.sessions.as_mut() else {
            return false;
        };
        let sent = sessions.keepalive_via(now, peer, via);
        self.flush_handshakes();
        sent
    }

    /// True when this side opens secure sessions (`--key-file` or
    /// `--code` outside a group).
    pub fn has_sessions(&self) -> bool {
        self.sessions.is_some()
    }

    /// Begins the secure session with `peer` now (a chat does at its
    /// start), unless one is open or under way.
    pub fn connect(&mut self, now: Instant, peer: SocketAddr) {
        let Some(sessions) = self.sessions.as_mut() else {
            return;
        };
        let method = sessions.method();
        if let Some(init) = sessions.connect(now, peer) {
            self.events
                .push_back(ChatEvent::Secure(SecureEvent::Began { peer, method }));
            self.transmits.push_back(Transmit {
                to: peer,
                bytes: init,
                kind: SentKind::Control,
            });
        }
    }

    /// True when no more messages may wait for receipts.
    pub fn is_full(&self) -> bool {
        self.outbound.is_full()
    }

    /// How many peers are kept (for tests of the memory bound).
    pub fn peer_count(&self) -> usize {
        self.peers.len()
    }

    /// State kept for secure-session handshakes and sessions (for tests
    /// of the bound under a flood).
    pub fn secure_state_held(&self) -> usize {
        self.sessions.as_ref().map_or(0, Sessions::state_held)
    }

    /// How many gaps (ranges of missing numbers) all sessions hold
    /// together (for tests of the memory bound).
    pub fn gaps_held(&self) -> usize {
        self.peers.gaps()
    }

    // ----- What the runtime drains -----

    /// The next thing to report.
    pub fn poll_event(&mut self) -> Option<ChatEvent> {
        self.events.pop_front()
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// When [`Core::handle_timeout`] is next due: a retransmission, a
    /// hello, a member's silence.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let outbound = self.outbound.next_deadline();
        let handshakes = self.sessions.as_ref().and_then(Sessions::poll_timeout);
        let Some(group) = &self.group else {
            return [outbound, handshakes].into_iter().flatten().min();
        };
        let silent = members::silent_after(self.config.hello);
        [
            outbound,
            Some(group.next_hello),
            group.members.next_expiry(silent),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    // ----- What the runtime feeds -----

    /// The user chose what `peer` speaks (`/plain`, `/dgram`): the choice
    /// stands whatever the peer sends later, and is reported.
    pub fn set_plain(&mut self, now: Instant, peer: SocketAddr, plain: bool) {
        let id = self.peer_to(peer, now);
        let info = self.peers.get_mut(id).expect("just made");
        info.kind = Some(if plain { Kind::Plain } else { Kind::Dgram });
        info.chosen = true;
        self.events.push_back(ChatEvent::PeerKind { peer, plain });
    }

    /// Takes `peer` to speak plain UDP from the start (`--plain`: a peer
    /// such as `nc -u -l` cannot speak first); nothing is reported.
    pub fn assume_plain(&mut self, now: Instant, peer: SocketAddr) {
        let id = self.peer_to(peer, now);
        let info = self.peers.get_mut(id).expect("just made");
        info.kind = Some(Kind::Plain);
        info.chosen = true;
    }

    /// Sends one chat message to `to` (a peer, or this side's group): in
    /// an envelope, waiting for its receipt, unless `to` speaks plain UDP;
    /// then as the bytes given plus `--eol`. `limit` is the largest UDP
    /// payload towards `to`.
    ///
    /// The message's first datagram is returned rather than queued, so the
    /// caller can report a failed send as the message's own error (and
    /// then [`Core::cancel`] it); copies to plain group members are
    /// queued.
    pub fn send(
        &mut self,
        now: Instant,
        payload: &[u8],
        to: SocketAddr,
        limit: usize,
    ) -> Result<(SentAs, Option<Transmit>), SendError> {
        let group = self.group.as_ref().filter(|g| g.addr == to);
        if !self.config.raw && group.is_some() {
            let (sent, first) = self.send_to_group(now, payload, limit)?;
            return Ok((sent, Some(first)));
        }
        if self.is_plain(to) {
            return Ok((SentAs::Plain, Some(self.text(payload, to, limit)?)));
        }
        if self.outbound.is_full() || self.sessions.as_ref().is_some_and(Sessions::queue_full) {
            return Err(SendError::TooManyPending { limit: MAX_PENDING });
        }
        let id = self.peer_to(to, now);
        let addr = self.peers.addr(id).unwrap_or(to);
        let seq = self.outbound.next_seq(id);
        if self.sessions.as_ref().is_some_and(|s| !s.ready_at(addr)) {
            // No session yet: the message waits for it (and says so).
            if !self.sessions.as_ref().is_some_and(|s| s.can_reach(addr)) {
                return Err(SendError::NoSession);
            }
            self.check_size(seq, payload, limit)?;
            let seq = self.outbound.take_seq(id);
            let sessions = self.sessions.as_mut().expect("checked");
            let payload: Arc<[u8]> = Arc::from(payload);
            let method = sessions.method();
            let init = sessions.queue(now, addr, seq, Arc::clone(&payload));
            if init.is_some() {
                self.events
                    .push_back(ChatEvent::Secure(SecureEvent::Began { peer: addr, method }));
            }
            self.events
                .push_back(ChatEvent::Secure(SecureEvent::Waiting {
                    peer: addr,
                    seq,
                    payload,
                }));
            let first = init.map(|bytes| Transmit {
                to: addr,
                bytes,
                kind: SentKind::Control,
            });
            return Ok((SentAs::Envelope(seq), first));
        }
        let bytes = self.first_try(seq, payload, limit, addr, now)?;
        let payload: Arc<[u8]> = Arc::from(payload);
        let kind = SentKind::Message {
            seq,
            attempt: 1,
            payload: Arc::clone(&payload),
            name: self.name_of(id),
        };
        self.outbound.sent_first(id, seq, payload, now);
        // To where the peer is now: the user may still name the address it
        // moved from.
        Ok((
            SentAs::Envelope(seq),
            Some(Transmit {
                to: addr,
                bytes,
                kind,
            }),
        ))
    }

    /// Forgets a message whose first datagram ([`Core::send`]) could not
    /// be sent: it never went out, and nothing waits for it.
    pub fn cancel(&mut self, to: SocketAddr, sent: SentAs) {
        if let (SentAs::Envelope(seq), Some(id)) = (sent, self.peers.at(to)) {
            self.outbound.cancel(id, seq);
            if let Some(sessions) = self.sessions.as_mut() {
                let addr = self.peers.addr(id).unwrap_or(to);
                sessions.unqueue(addr, seq);
            }
        }
    }

    /// A message to a plain peer, or why it cannot be one datagram.
    fn text(&self, payload: &[u8], to: SocketAddr, limit: usize) -> Result<Transmit, SendError> {
        let mut bytes = payload.to_vec();
        bytes.extend_from_slice(self.config.eol.bytes());
        if bytes.len() > limit {
            let overhead = bytes.len() - payload.len();
            return Err(SendError::TooLarge {
                len: payload.len(),
                limit: limit.saturating_sub(overhead),
                overhead,
            });
        }
        Ok(Transmit {
            to,
            bytes,
            kind: SentKind::Text {
                payload: Arc::from(payload),
            },
        })
    }

    /// Sends one message to the group: one datagram, waiting for a receipt
    /// from each member present now (retransmitted to each that has not
    /// acknowledged, on its own).
    fn send_to_group(
        &mut self,
        now: Instant,
        payload: &[u8],
        limit: usize,
    ) -> Result<(SentAs, Transmit), SendError> {
        let group = self.group.as_ref().expect("the caller checked");
        let (to, expected) = (group.addr, group.members.addrs());
        if self.outbound.pending_count() + expected.len() > MAX_PENDING {
            return Err(SendError::TooManyPending { limit: MAX_PENDING });
        }
        // The group is a peer of its own for its numbering.
        let group_id = self.peer_to(to, now);
        let seq = self.outbound.next_seq(group_id);
        let bytes = self.first_try(seq, payload, limit, to, now)?;
        let seq = self.outbound.take_seq(group_id);
        let payload: Arc<[u8]> = Arc::from(payload);
        let first = Transmit {
            to,
            bytes,
            kind: SentKind::Message {
                seq,
                attempt: 1,
                payload: Arc::clone(&payload),
                name: None,
            },
        };
        for member in &expected {
            let id = self.peer_to(*member, now);
            self.outbound.sent_first(id, seq, Arc::clone(&payload), now);
        }
        // Plain members (socat, a Python script) cannot read envelopes:
        // each gets the text as typed, directly, as long as it has sent at
        // least as many bytes as it is sent (it cannot prove that it
        // receives at its address: its address may be spoofed).
        let plain: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|(_, p)| p.kind == Some(Kind::Plain))
            .map(|(id, _)| id)
            .collect();
        for id in plain {
            let member = self.peers.get(id).expect("listed").addr;
            let Ok(text) = self.text(&payload, member, limit) else {
                continue;
            };
            let peer = self.peers.get_mut(id).expect("listed");
            if peer.credit >= text.bytes.len() {
                peer.credit -= text.bytes.len();
                self.transmits.push_back(text);
            } else {
                self.events.push_back(ChatEvent::Withheld {
                    peer: member,
                    len: text.bytes.len(),
                    credit: peer.credit,
                });
            }
        }
        let group = self.group.as_mut().expect("the caller checked");
        if let Some(nobody) = group.sends.start(seq, payload, expected) {
            let event = group.receipt_event(nobody, &[]);
            self.events.push_back(event);
        }
        Ok((SentAs::Envelope(seq), first))
    }

    /// The envelope of the first try of message `seq`, or why it cannot be
    /// one datagram of at most `limit` bytes.
    fn first_try(
        &mut self,
        seq: u64,
        payload: &[u8],
        limit: usize,
        to: SocketAddr,
        now: Instant,
    ) -> Result<Vec<u8>, SendError> {
        self.check_size(seq, payload, limit)?;
        Ok(self
            .message(seq, 1, payload, to, now)
            .expect("a session is open, or none is needed"))
    }

    /// Whether message `seq` fits in one datagram of at most `limit`
    /// bytes, sealed as it will be.
    fn check_size(&self, seq: u64, payload: &[u8], limit: usize) -> Result<(), SendError> {
        let seal = if self.sessions.is_some() {
            SECURED_OVERHEAD
        } else if self.sealer.is_some() {
            super::seal::OVERHEAD
        } else {
            0
        };
        let len = self.envelope(seq, 1, payload).len() + seal;
        if len > limit {
            let overhead = len - payload.len();
            return Err(SendError::TooLarge {
                len: payload.len(),
                limit: limit.saturating_sub(overhead),
                overhead,
            });
        }
        Ok(())
    }

    /// Try `attempt` of message `seq`, in its envelope.
    fn envelope(&self, seq: u64, attempt: u8, payload: &[u8]) -> Vec<u8> {
        envelope::encode_message(&Message {
            session: self.config.session,
            seq,
            attempt,
            name: self.config.name.clone(),
            payload: payload.to_vec(),
        })
    }

    /// Try `attempt` of message `seq` to `to`, as it goes on the wire
    /// (`None`: no session is open with `to`).
    fn message(
        &mut self,
        seq: u64,
        attempt: u8,
        payload: &[u8],
        to: SocketAddr,
        now: Instant,
    ) -> Option<Vec<u8>> {
        let envelope = self.envelope(seq, attempt, payload);
        self.wire(envelope, to, now)
    }

    /// A peer's host refused a datagram (ICMP port unreachable): nothing
    /// listens there, so what waits for it fails now rather than after
    /// all its tries (a receipt that still comes is a late delivery).
    ///
    /// In a group, a plain member (one that sent plain datagrams, not one
    /// the user chose) is forgotten: it gets no more copies of the group's
    /// messages, each of which would only be refused again, until it
    /// sends again.
    pub fn handle_refused(&mut self, _now: Instant, peer: SocketAddr) {
        let failed = self.fail_all(peer);
        self.report_failed(failed, Failure::Refused, &[]);
        if self.group.is_some()
            && let Some(id) = self.peers.at(peer)
            && self
                .peers
                .get(id)
                .is_some_and(|p| p.kind == Some(Kind::Plain) && !p.chosen)
            && !self.outbound.has_pending(id)
        {
            self.peers.remove(id);
        }
    }

    /// Ends every message waiting for the peer at `addr` (failed).
    fn fail_all(&mut self, addr: SocketAddr) -> Vec<Due> {
        match self.peers.at(addr) {
            Some(id) => self.outbound.refused(id),
            None => Vec::new(),
        }
    }

    /// Time has passed: retransmissions, failures out of tries, a group
    /// member's hello, members silent too long.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.group_timers(now);
        let mut failed = Vec::new();
        for due in self.outbound.due(now) {
            match due {
                Due::Resend {
                    to,
                    seq,
                    attempt,
                    payload,
                } => {
                    // A try that cannot go out counts as sent and lost:
                    // the schedule goes on. It goes where the peer is now.
                    let addr = self
                        .peers
                        .addr(to)
                        .expect("a peer with messages waiting is kept");
                    let kind = SentKind::Message {
                        seq,
                        attempt,
                        payload: Arc::clone(&payload),
                        name: self.name_of(to),
                    };
                    if let Some(bytes) = self.message(seq, attempt, &payload, addr, now) {
                        self.transmits.push_back(Transmit {
                            to: addr,
                            bytes,
                            kind,
                        });
                    }
                    self.outbound.sent_again(to, seq, attempt, now);
                }
                out_of_tries @ Due::Failed { .. } => failed.push(out_of_tries),
            }
        }
        self.report_failed(failed, Failure::NoReceipt, &[]);
        self.handshake_timers(now);
    }

    /// The chat ends: a group member says bye, and every message still
    /// waiting fails (ended).
    pub fn close(&mut self, _now: Instant) {
        if let Some(group) = self.group() {
            let bye = self.presence(true, true, NO_TOKEN, NO_TOKEN);
            self.transmits.push_back(Transmit {
                to: group,
                bytes: bye,
                kind: SentKind::Presence { bye: true },
            });
        }
        let failed = self.outbound.abandon();
        self.report_failed(failed, Failure::Ended, &[]);
        if let Some(sessions) = self.sessions.as_mut() {
            let queued = sessions.take_all_queued();
            for (addr, queued) in queued {
                self.fail_queued(addr, queued, 0, Failure::Ended);
            }
        }
    }

    /// A datagram arrived at `now`. Says what the caller still has to do
    /// with it; the protocol's events and answers are queued.
    pub fn handle_datagram(&mut self, now: Instant, datagram: Incoming<'_>) -> Handover {
        self.arrival = datagram.at;
        if self.sessions.is_some() {
            self.on_secured(now, datagram);
            return Handover::Taken;
        }
        if self.sealer.is_some() {
            self.on_keyed(now, datagram);
            return Handover::Taken;
        }
        if datagram.truncated && datagram.payload.first() == Some(&MAGIC) {
            return Handover::Malformed("cut short by --max-size".to_string());
        }
        match envelope::decode(datagram.payload) {
            Decoded::Plain => {
                self.on_plain(now, datagram.from, datagram.payload.len());
                Handover::Plain
            }
            Decoded::Malformed(why) => Handover::Malformed(why.to_string()),
            Decoded::Envelope(envelope) => {
                if self.group.is_none() && envelope_session(&envelope) == self.config.session {
                    // Outside a group nothing carries this side's own
                    // session but what it sent itself, sent back.
                    return Handover::Malformed(
                        "carries this side's own session (sent back to it)".to_string(),
                    );
                }
                self.on_envelope(now, datagram, envelope, datagram.payload.len());
                Handover::Taken
            }
        }
    }

    // ----- The rules -----

    /// `envelope` to `to` as it goes on the wire: sealed with the room
    /// key in a keyed group, secured in `to`'s session in a keyed chat
    /// (`None` when no session is open with `to`), as it is otherwise.
    fn wire(&mut self, envelope: Vec<u8>, to: SocketAddr, now: Instant) -> Option<Vec<u8>> {
        if let Some(sessions) = self.sessions.as_mut() {
            return sessions.seal_to(to, now, &envelope);
        }
        Some(match &mut self.sealer {
            Some(sealer) => sealer.seal(&envelope),
            None => envelope,
        })
    }

    /// This side's hello (or bye), as it goes on the wire; `named: false`
    /// leaves the name out (a reply that must not outgrow what it answers).
    fn presence(&mut self, bye: bool, named: bool, challenge: [u8; 8], answer: [u8; 8]) -> Vec<u8> {
        let presence = Presence {
            session: self.config.session,
            name: if named {
                self.config.name.clone()
            } else {
                String::new()
            },
            challenge,
            answer,
        };
        let group = self.group().expect("hellos and byes are a group's");
        self.wire(
            envelope::encode_presence(&presence, bye),
            group,
            Instant::now(),
        )
        .expect("a group needs no session")
    }

    /// The token this side challenges `session` at `addr` with: the first
    /// 8 bytes of HMAC-SHA256 under this run's secret, so that only what
    /// was sent to `addr` can answer it, and nothing needs to be kept
    /// until it is answered.
    fn token(&self, addr: SocketAddr, session: SessionId) -> [u8; 8] {
        let mut token: [u8; 8] =
            super::tokens::for_address(&self.secret, b"dgram hello token", addr, session);
        if token == NO_TOKEN {
            token[0] = 1;
        }
        token
    }

    /// The peer at `addr`, made if none is known there.
    fn peer_to(&mut self, addr: SocketAddr, now: Instant) -> PeerId {
        let outbound = &self.outbound;
        self.peers.to(addr, now, |id| outbound.has_pending(id))
    }

    fn name_of(&self, id: PeerId) -> Option<String> {
        self.peers.get(id).and_then(|p| p.name.clone())
    }

    /// An envelope of `session` came from `from`: its peer, found by the
    /// session first. It speaks dgram from now on (said, if it was taken
    /// for a plain peer), and its name is noted. A known session from a
    /// new address moves its peer there (said), unless anyone could have
    /// sent it: in an unkeyed group, sessions are heard by every member,
    /// and a move would send retransmissions to an address nobody proved.
    fn heard_envelope(
        &mut self,
        now: Instant,
        from: SocketAddr,
        session: SessionId,
        name: Option<&str>,
    ) -> PeerId {
        // Only keys make a move safe to follow: a secure session's peer
        // moves once its new address answered a challenge (the caller
        // passes that address), a keyed group's member with the room key.
        // Without keys anyone could send a known session from anywhere.
        let may_move = (self.sealer.is_some() || self.sessions.is_some()) && !self.on_new_path;
        let outbound = &self.outbound;
        let matched = self
            .peers
            .heard(from, session, may_move, now, |id| outbound.has_pending(id));
        let id = matched.id();
        if !may_move
            && self.group.is_none()
            && self.sessions.is_none()
            && let Some(at) = self.peers.addr(id).filter(|at| *at != from)
        {
            if self.not_followed.len() >= NOTICED_SENDERS * 512 {
                self.not_followed.clear();
            }
            if self.not_followed.insert((id, from)) {
                let name = self.name_of(id).unwrap_or_default();
                self.events.push_back(ChatEvent::NotFollowed {
                    name,
                    at,
                    heard: from,
                });
            }
        }
        let announce = self.config.announce_kinds;
        let peer = self.peers.get_mut(id).expect("just heard");
        if let Some(name) = name.filter(|n| !n.is_empty()) {
            peer.name = Some(name.to_string());
        }
        if let Matched::Moved(_, old) = matched {
            let name = peer.name.clone().unwrap_or_default();
            self.events.push_back(ChatEvent::Moved {
                name,
                from: old,
                to: from,
            });
        }
        let peer = self.peers.get_mut(id).expect("just heard");
        if peer.chosen {
            return id;
        }
        let was_plain = peer.kind == Some(Kind::Plain);
        peer.kind = Some(Kind::Dgram);
        if was_plain && announce {
            self.events.push_back(ChatEvent::PeerKind {
                peer: from,
                plain: false,
            });
        }
        id
    }

    fn on_plain(&mut self, now: Instant, from: SocketAddr, len: usize) {
        if !self.config.announce_kinds {
            // A listener sends no messages: what its plain senders speak
            // does not matter, and is not kept.
            return;
        }
        let id = self.peer_to(from, now);
        let peer = self.peers.get_mut(id).expect("just made");
        peer.credit = peer.credit.saturating_add(len).min(MAX_CREDIT);
        // A dgram peer may send plain datagrams too (`/empty`, `/size`): it
        // stays a dgram peer. The notice follows the datagram it is about.
        if peer.kind.is_none() {
            peer.kind = Some(Kind::Plain);
            self.events.push_back(ChatEvent::PeerKind {
                peer: from,
                plain: true,
            });
        }
    }

    /// An envelope, authenticated if keyed; `wire_len` is the datagram's
    /// length as it arrived.
    fn on_envelope(
        &mut self,
        now: Instant,
        datagram: Incoming<'_>,
        envelope: Envelope,
        wire_len: usize,
    ) {
        let from = datagram.from;
        match envelope {
            Envelope::Message(message) => self.on_message(now, datagram, message, wire_len),
            Envelope::Receipt(ack) => self.on_receipt(now, from, wire_len, ack),
            Envelope::Hello(presence) => self.on_presence(now, from, wire_len, presence, false),
            Envelope::Bye(presence) => self.on_presence(now, from, wire_len, presence, true),
        }
    }

    /// A datagram at a keyed side: opened and checked against the
    /// sender's replay window, or refused. Nothing refused is shown as a
    /// message or answered; nothing this side sealed itself is taken.
    fn on_keyed(&mut self, now: Instant, datagram: Incoming<'_>) {
        let wire_len = datagram.payload.len();
        let sealer = self.sealer.as_ref().expect("keyed");
        let own = sealer.prefix();
        let opened = if datagram.truncated {
            Err(Rejection::Malformed)
        } else {
            sealer.open(datagram.payload)
        };
        let opened = opened.and_then(|opened| {
            if opened.prefix == own {
                return Err(Rejection::Reflected);
            }
            let key = opened.prefix;
            if !self.windows.contains_key(&key) && self.windows.len() >= MAX_WINDOWS {
                forget_oldest(&mut self.windows, |(_, last, _)| *last);
            }
            let (window, last, _) = self
                .windows
                .entry(key)
                .or_insert_with(|| (ReplayWindow::default(), now, None));
            window.check(opened.counter)?;
            window.take(opened.counter);
            *last = now;
            Ok(opened)
        });
        let opened = match opened {
            Ok(opened) => opened,
            // In a group, multicast loops this side's own datagrams back
            // to it: authentic, not news, not a refusal.
            Err(Rejection::Reflected) if self.group.is_some() => return,
            Err(reason) => return self.reject(datagram.from, wire_len, reason),
        };
        let inner = Incoming {
            payload: &opened.inner,
            ..datagram
        };
        match envelope::decode(inner.payload) {
            Decoded::Envelope(envelope) => {
                if self.group.is_none() && envelope_session(&envelope) == self.config.session {
                    return self.reject(datagram.from, wire_len, Rejection::Reflected);
                }
                // The sender is bound into what is authenticated: its
                // prefix speaks for one session only.
                let session = envelope_session(&envelope);
                if let Some((_, _, bound)) = self.windows.get_mut(&opened.prefix) {
                    match bound {
                        Some(known) if *known != session => {
                            return self.reject(datagram.from, wire_len, Rejection::Malformed);
                        }
                        _ => *bound = Some(session),
                    }
                }
                self.on_envelope(now, inner, envelope, wire_len)
            }
            // Authenticated, yet not an envelope: a faulty peer with the key.
            Decoded::Plain | Decoded::Malformed(_) => {
                self.reject(datagram.from, wire_len, Rejection::Malformed)
            }
        }
    }

    /// A datagram at a side with secure sessions: a handshake step, or a
    /// datagram secured in a session, opened and checked against its
    /// replay window; anything else is refused. Nothing refused is shown
    /// or answered.
    fn on_secured(&mut self, now: Instant, datagram: Incoming<'_>) {
        let wire_len = datagram.payload.len();
        let from = datagram.from;
        let kind = match datagram.payload {
            _ if datagram.truncated => return self.reject(from, wire_len, Rejection::Malformed),
            [MAGIC, 1, kind, ..] => *kind,
            [MAGIC, _, ..] => return self.reject(from, wire_len, Rejection::UnknownVersion),
            _ => return self.reject(from, wire_len, Rejection::Plain),
        };
        let sessions = self.sessions.as_mut().expect("keyed");
        if kind == KIND_HANDSHAKE {
            let outcome = sessions.handle(now, from, datagram.payload);
            if !matches!(outcome, sessions::Outcome::Refused(_)) {
                let what = match datagram.payload.get(3) {
                    Some(1) => "init",
                    Some(2) => "reply",
                    Some(3) => "finish",
                    Some(4) => "cookie",
                    _ => "fail",
                };
                self.control(from, what, wire_len);
            }
            self.after_handshake(now, from, wire_len, outcome);
            return;
        }
        if kind != KIND_SECURED {
            return self.reject(from, wire_len, Rejection::Unsealed);
        }
        let opened = match sessions.open(now, from, datagram.payload, datagram.at) {
            Ok(Some(opened)) => opened,
            // Held until the handshake it overtook completes.
            Ok(None) => {
                self.flush_handshakes();
                return;
            }
            Err(reason) => return self.reject(from, wire_len, reason),
        };
        // Path checks, and their answers, go out with what they answer.
        self.flush_handshakes();
        if !opened.queued.is_empty() {
            // The peer confirmed the keys: what waited goes out.
            let id = self.peer_to(opened.addr, now);
            for message in opened.queued {
                self.send_queued(now, id, opened.addr, message);
            }
        }
        if let Some(what) = opened.control {
            self.control(from, what, wire_len);
        }
        if let Some(old) = opened.moved_from {
            // The peer answered the challenge from its new address: the
            // conversation moves there (and says so).
            self.heard_envelope(now, opened.addr, opened.peer, None);
            let _ = old;
            return;
        }
        if let Some(seen) = opened.seen_as {
            self.events
                .push_back(ChatEvent::Secure(SecureEvent::Challenged {
                    peer: from,
                    seen,
                }));
            return;
        }
        if opened.inner.is_empty() {
            // A keepalive: it only confirmed the keys.
            return;
        }
        let inner = opened.inner;
        // Until a new path is validated, the peer is where it was: it does
        // not move, and only answers that what came from the new address
        // pays for go there.
        let inner_datagram = Incoming {
            payload: &inner,
            ..datagram
        };
        match envelope::decode(&inner) {
            // The envelope speaks for the session that secured it, and
            // for no other.
            Decoded::Envelope(envelope) if envelope_session(&envelope) == opened.peer => {
                let before = self.transmits.len();
                self.on_new_path = opened.new_path.is_some();
                self.on_envelope(now, inner_datagram, envelope, wire_len);
                self.on_new_path = false;
                if let Some(new) = opened.new_path {
                    self.answer_on_new_path(before, opened.addr, new);
                }
            }
            // Authenticated, yet not an envelope of its session: a faulty
            // peer.
            _ => self.reject(from, wire_len, Rejection::Malformed),
        }
    }

    /// Receipts just queued (from index `from`) for the new, unvalidated
    /// address `new` of the peer at `addr` go there as far as the bytes
    /// that came from there pay for them (the peer may have moved: its old
    /// address may not reach it any more); the others go to `addr`.
    fn answer_on_new_path(&mut self, from: usize, addr: SocketAddr, new: SocketAddr) {
        let sessions = self.sessions.as_mut().expect("keyed");
        for transmit in self.transmits.iter_mut().skip(from) {
            if transmit.to == new && !sessions.spend(addr, new, transmit.bytes.len()) {
                transmit.to = addr;
            }
        }
    }

    /// What a handshake step led to: a session open (what waited for it
    /// goes out), a wrong code, a refusal; and the handshake datagrams to
    /// send.
    fn after_handshake(
        &mut self,
        now: Instant,
        from: SocketAddr,
        wire_len: usize,
        outcome: sessions::Outcome,
    ) {
        let sessions = self.sessions.as_mut().expect("keyed");
        let method = sessions.method();
        match outcome {
            sessions::Outcome::Nothing => {}
            sessions::Outcome::Refused(reason) => self.reject(from, wire_len, reason),
            sessions::Outcome::Opened {
                id: session_id,
                peer,
                addr,
                verify,
                initiator,
                took,
                queued,
                early,
            } => {
                self.events
                    .push_back(ChatEvent::Secure(SecureEvent::Opened {
                        peer: addr,
                        id: session_id,
                        peer_session: peer,
                        method,
                        verify,
                        initiator,
                        took,
                    }));
                let id = self.heard_envelope(now, addr, peer, None);
                // The handshake's last datagram (a code's finish) goes
                // before the first messages, so that they do not overtake
                // it.
                self.flush_handshakes();
                if initiator && queued.is_empty() {
                    // The responder sends nothing of its own until it
                    // knows this side has the keys: a keepalive tells it.
                    let sessions = self.sessions.as_mut().expect("keyed");
                    if let Some(bytes) = sessions.seal_to(addr, now, &[]) {
                        self.transmits.push_back(Transmit {
                            to: addr,
                            bytes,
                            kind: SentKind::Control,
                        });
                    }
                }
                for message in queued {
                    self.send_queued(now, id, addr, message);
                }
                for held in early {
                    let early = Incoming {
                        at: held.at,
                        from: held.from,
                        payload: &held.bytes,
                        truncated: false,
                    };
                    self.on_secured(now, early);
                }
            }
            sessions::Outcome::WrongCode {
                addr,
                queued,
                early,
            } => {
                for held in early {
                    self.arrival = held.at;
                    self.reject(held.from, held.bytes.len(), Rejection::UnknownSession);
                }
                self.events
                    .push_back(ChatEvent::Secure(SecureEvent::WrongCode { peer: addr }));
                self.fail_queued(addr, queued, 0, Failure::NoSession);
            }
        }
        self.flush_handshakes();
    }

    /// A message that waited for its session goes out now, its first try.
    fn send_queued(&mut self, now: Instant, id: PeerId, addr: SocketAddr, message: Queued) {
        let Some(bytes) = self.message(message.seq, 1, &message.payload, addr, now) else {
            return;
        };
        self.outbound
            .sent_first(id, message.seq, Arc::clone(&message.payload), now);
        self.transmits.push_back(Transmit {
            to: addr,
            bytes,
            kind: SentKind::Message {
                seq: message.seq,
                attempt: 1,
                payload: message.payload,
                name: self.name_of(id),
            },
        });
    }

    /// Messages that waited for a session that did not open: failed.
    fn fail_queued(&mut self, addr: SocketAddr, queued: Vec<Queued>, tries: u8, why: Failure) {
        let name = self.peers.at(addr).and_then(|id| self.name_of(id));
        for message in queued {
            self.events.push_back(ChatEvent::Receipt(Settled {
                to: addr,
                name: name.clone(),
                seq: message.seq,
                outcome: Outcome::Failed,
                rtt: None,
                tries,
                payload: message.payload,
                ended: why == Failure::Ended,
                refused: why == Failure::Refused,
                wire_len: None,
                group: None,
            }));
        }
    }

    /// Handshakes whose init is due again; those out of tries end, and
    /// what waited for them fails.
    fn handshake_timers(&mut self, now: Instant) {
        let Some(sessions) = self.sessions.as_mut() else {
            return;
        };
        let method = sessions.method();
        for (addr, tries, queued) in sessions.handle_timeout(now) {
            self.events
                .push_back(ChatEvent::Secure(SecureEvent::NoAnswer {
                    peer: addr,
                    method,
                    tries,
                }));
            self.fail_queued(addr, queued, tries, Failure::NoSession);
        }
        self.flush_handshakes();
    }

    /// Reports a datagram of the sessions' own (counted, not shown).
    fn control(&mut self, from: SocketAddr, what: &'static str, len: usize) {
        self.events
            .push_back(ChatEvent::Secure(SecureEvent::Control { from, what, len }));
    }

    /// Queues the handshake datagrams the sessions want sent.
    fn flush_handshakes(&mut self) {
        let Some(sessions) = self.sessions.as_mut() else {
            return;
        };
        for (to, bytes) in sessions.take_out() {
            self.transmits.push_back(Transmit {
                to,
                bytes,
                kind: SentKind::Control,
            });
        }
    }

    /// Counts a refused datagram; people see the first per sender and
    /// reason, for at most [`NOTICED_SENDERS`] senders per reason (a flood
    /// from many ports is counted, not printed line by line).
    fn reject(&mut self, from: SocketAddr, len: usize, reason: Rejection) {
        let noticed = self.refused.iter().filter(|(_, r)| *r == reason).count();
        let first = noticed < NOTICED_SENDERS && self.refused.insert((from, reason));
        self.events.push_back(ChatEvent::Rejected {
            at: self.arrival,
            from,
            reason,
            len,
            first,
        });
    }

    fn on_message(
        &mut self,
        now: Instant,
        datagram: Incoming<'_>,
        message: Message,
        wire_len: usize,
    ) {
        let from = datagram.from;
        let me = self.config.session;
        if self.group.is_some() {
            if message.session == me {
                // Our own message, looped back by multicast: not shown
                // again, not acknowledged.
                return;
            }
            self.heard_member(now, from, message.session, &message.name, None);
        }
        let id = self.heard_envelope(now, from, message.session, Some(&message.name));
        let (arrival, duplicates) = self.peers.arrival(id, message.session, message.seq);
        if let Arrival::New {
            gap: Some((first, last)),
        } = arrival
        {
            self.events.push_back(ChatEvent::Gap {
                from,
                name: message.name.clone(),
                first,
                last,
            });
        }
        let (seq, attempt) = (message.seq, message.attempt);
        self.events
            .push_back(ChatEvent::Message(Box::new(ChatMessage {
                at: datagram.at,
                from,
                name: message.name,
                session: message.session,
                seq,
                attempt,
                payload: message.payload,
                duplicate: arrival == Arrival::Duplicate,
                duplicates,
                reordered: matches!(arrival, Arrival::Reordered { .. }),
                filled_gap: arrival == Arrival::Reordered { filled: true },
                wire_len,
            })));
        if self.config.silent {
            return;
        }
        // Every copy is acknowledged: the receipt for an earlier copy may
        // be the one that was lost.
        let receipt = envelope::encode_receipt(&Ack {
            session: me,
            seq,
            attempt,
        });
        let Some(bytes) = self.wire(receipt, from, now) else {
            return;
        };
        self.transmits.push_back(Transmit {
            to: from,
            bytes,
            kind: SentKind::Receipt { seq, attempt },
        });
    }

    fn on_receipt(&mut self, now: Instant, from: SocketAddr, wire_len: usize, ack: Ack) {
        if self.group.is_some() {
            if ack.session == self.config.session {
                return;
            }
            self.heard_member(now, from, ack.session, "", None);
        }
        let id = self.heard_envelope(now, from, ack.session, None);
        let name = self.name_of(id);
        let (outcome, rtt, tries, payload) =
            match self.outbound.receipt(id, ack.seq, ack.attempt, now) {
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
                    self.events.push_back(ChatEvent::StrayReceipt {
                        from,
                        seq: ack.seq,
                        len: wire_len,
                    });
                    return;
                }
            };
        self.events.push_back(ChatEvent::Receipt(Settled {
            to: from,
            name,
            seq: ack.seq,
            outcome,
            rtt: Some(rtt),
            tries,
            payload,
            ended: false,
            refused: false,
            wire_len: Some(wire_len),
            group: self.group(),
        }));
        if outcome == Outcome::Delivered
            && let Some(group) = self.group.as_mut()
            && let Some(done) = group.sends.settle(ack.seq, from, true)
        {
            let event = group.receipt_event(done, &[]);
            self.events.push_back(event);
        }
    }

    /// Notes that group member `from` was heard (any envelope of its own
    /// session), and says so when it is new or restarted.
    ///
    /// A sender becomes a member (or a member's new session takes over)
    /// only once it proved that it receives at its address: its hello
    /// answers the token this side sent there (return routability, as
    /// QUIC's path validation). Until then nothing is sent to it but
    /// answers no larger than what it sent: a spoofed hello, message or
    /// receipt with someone else's address gets that address nothing
    /// beyond 1× what the spoofer sent, and a table of proven members is
    /// never crowded out by unproven ones (they are not kept at all).
    ///
    /// `hello`: the hello that made it heard, with its length, if a hello
    /// did. Only a hello is answered, with a hello carrying the token it
    /// asked for (its `challenge`) and, while the sender is not a member,
    /// this side's own challenge; never with more bytes than it had (our
    /// name is left out when it would not fit), and not at all when it
    /// asks nothing and is a member already.
    fn heard_member(
        &mut self,
        now: Instant,
        from: SocketAddr,
        session: SessionId,
        name: &str,
        hello: Option<(&Presence, usize)>,
    ) {
        let proven = hello.is_some_and(|(presence, _)| {
            presence.answer != NO_TOKEN && presence.answer == self.token(from, session)
        });
        // An answer may leave its name out to stay small: the name heard
        // before from this session (its first hello) is its name then.
        let known_name = self
            .peers
            .at(from)
            .and_then(|id| self.peers.get(id))
            .filter(|p| p.session() == Some(session))
            .and_then(|p| p.name.clone());
        let name = if name.is_empty() {
            known_name.as_deref().unwrap_or_default()
        } else {
            name
        };
        let Some(group) = self.group.as_mut() else {
            return;
        };
        let heard = group.members.heard(from, session, Some(name), proven, now);
        let change = match heard {
            Heard::Known | Heard::Unproven => None,
            Heard::Joined => Some(MemberChange::Joined),
            Heard::Restarted => Some(MemberChange::Restarted),
            Heard::Full => Some(MemberChange::NotKept),
        };
        if let Some(change) = change {
            let name = group
                .members
                .get(from)
                .map_or_else(|| name.to_string(), |m| m.name.clone());
            let event = group.member_event(from, &name, change);
            self.events.push_back(event);
        }
        let member = group
            .members
            .get(from)
            .is_some_and(|m| m.session == session);
        let Some((presence, limit)) = hello else {
            return;
        };
        let challenge = if member || heard == Heard::Full {
            NO_TOKEN
        } else {
            self.token(from, session)
        };
        let asked = presence.challenge;
        if challenge == NO_TOKEN && asked == NO_TOKEN {
            return;
        }
        let reply = [true, false]
            .into_iter()
            .map(|named| self.presence(false, named, challenge, asked))
            .find(|hello| hello.len() <= limit);
        if let Some(hello) = reply {
            self.transmits.push_back(Transmit {
                to: from,
                bytes: hello,
                kind: SentKind::Presence { bye: false },
            });
        }
    }

    /// A hello or a bye from another member.
    fn on_presence(
        &mut self,
        now: Instant,
        from: SocketAddr,
        wire_len: usize,
        presence: Presence,
        bye: bool,
    ) {
        if self.group.is_some() && presence.session == self.config.session {
            // Our own, looped back.
            return;
        }
        self.events.push_back(ChatEvent::Presence {
            from,
            name: presence.name.clone(),
            bye,
            len: wire_len,
        });
        if self.group.is_none() {
            // Not a member of any group: counted, nothing more.
            return;
        }
        self.heard_envelope(now, from, presence.session, Some(&presence.name));
        if !bye {
            return self.heard_member(
                now,
                from,
                presence.session,
                &presence.name,
                Some((&presence, wire_len)),
            );
        }
        let group = self.group.as_mut().expect("checked above");
        let Some(member) = group.members.bye(from, presence.session) else {
            return;
        };
        let event = group.member_event(from, &member.name, MemberChange::Left);
        self.events.push_back(event);
        // What it had not acknowledged, it never will.
        let failed = self.fail_all(from);
        self.report_failed(failed, Failure::NoReceipt, &[member]);
    }

    /// A group member's timers: its hello when due, and members silent too
    /// long taken to have left (what they had not acknowledged fails).
    fn group_timers(&mut self, now: Instant) {
        let hello_every = self.config.hello;
        let due = self.group.as_ref().is_some_and(|g| g.next_hello <= now);
        let hello = due.then(|| self.presence(false, true, NO_TOKEN, NO_TOKEN));
        let unit = self.rng.unit();
        let Some(group) = self.group.as_mut() else {
            return;
        };
        if let Some(hello) = hello {
            self.transmits.push_back(Transmit {
                to: group.addr,
                bytes: hello,
                kind: SentKind::Presence { bye: false },
            });
            group.next_hello = now + members::hello_every(hello_every, unit);
        }
        let gone = group
            .members
            .expired(now, members::silent_after(hello_every));
        for member in &gone {
            let heard = now.saturating_duration_since(member.last);
            let event = group.member_event(member.addr, &member.name, MemberChange::Silent(heard));
            self.events.push_back(event);
        }
        for member in &gone {
            let failed = self.fail_all(member.addr);
            self.report_failed(failed, Failure::NoReceipt, &gone);
        }
    }

    /// Reports a failed receipt for each message in `failed` (and, for a
    /// group, the group receipt of each message now settled; `left` are
    /// members no longer in the table, for their names).
    fn report_failed(&mut self, failed: Vec<Due>, why: Failure, left: &[Member]) {
        let group = self.group();
        for due in failed {
            let Due::Failed {
                to: id,
                seq,
                tries,
                payload,
            } = due
            else {
                continue;
            };
            let to = self
                .peers
                .addr(id)
                .expect("a peer with messages waiting is kept");
            self.events.push_back(ChatEvent::Receipt(Settled {
                to,
                name: self.name_of(id),
                seq,
                outcome: Outcome::Failed,
                rtt: None,
                tries,
                payload,
                ended: why == Failure::Ended,
                refused: why == Failure::Refused,
                wire_len: None,
                group,
            }));
            if let Some(group) = self.group.as_mut()
                && let Some(done) = group.sends.settle(seq, to, false)
            {
                let event = group.receipt_event(done, left);
                self.events.push_back(event);
            }
        }
    }
}

/// The session an envelope speaks for.
fn envelope_session(envelope: &Envelope) -> SessionId {
    match envelope {
        Envelope::Message(m) => m.session,
        Envelope::Receipt(r) => r.session,
        Envelope::Hello(p) | Envelope::Bye(p) => p.session,
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
