//! Finding a path to the other side of a code through NATs
//! (`dgram chat --via`, `docs/PROTOCOL.md` section 14), as a state machine
//! without input or output: datagrams in with the socket they came to,
//! their source and the time; datagrams out with the socket to send them
//! from; events out; the next time it must be woken.
//!
//! 1. **Gather.** This side's candidates are its interface addresses (the
//!    caller lists them) and, learned here, what a STUN server sees: the
//!    rendezvous, and a second server (`--stun`, or the TURN server) to
//!    tell a NAT that keeps one port for every destination ("easy") from
//!    one that takes a new port per destination ("hard"), as RFC 5780
//!    does.
//! 2. **Meet.** Register the code's number at the rendezvous (section 12)
//!    about every second until it pairs this side with the other; the
//!    answer gives the other's candidates and who came first.
//! 3. **Probe.** Both sides send probes (kind 12) to every candidate of
//!    the other at once, again and again; a probe is answered with an ack
//!    (kind 13) carrying the probe's random token back, so a pair is
//!    proven only by an answer to what this side sent. Probing out is
//!    what opens this side's NAT for the other's probes in.
//! 4. **Search** (one hard NAT): the hard side opens many sockets, each
//!    probing the other's address, so its NAT makes many mappings; the
//!    easy side probes random ports of the hard side's address, paced,
//!    until one probe meets a mapping (the birthday paradox: 256 mappings
//!    are hit by about 600 probes nine times in ten).
//! 5. **Choose.** The side that came second ("controlling", as ICE calls
//!    it) chooses: a pair to a LAN address at once, else the first proven
//!    direct pair once LAN probes had [`LAN_GRACE`], else a relayed pair
//!    after [`RELAY_AFTER`]; it nominates it with probes that carry the
//!    nominate flag until one is acked with it. The other side takes the
//!    pair a nomination came on, if it has proven that pair itself.
//!
//! Nothing here is secret and nothing authenticates the peer: the
//! session's handshake does, on the chosen path. A probe only ever goes
//! to an address the rendezvous gave (or, in the search, the same IP at
//! another port), and an ack is no larger than its probe.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

use super::envelope::{MAGIC, VERSION};
use super::rendezvous::{self, Status};
use super::stun;

/// Kind byte of a probe.
pub const KIND_PROBE: u8 = 12;
/// Kind byte of a probe's ack.
pub const KIND_ACK: u8 = 13;
/// The exact length of a probe and of an ack.
pub const PROBE_LEN: usize = 14;

/// Flag: the sender is behind a NAT (what a STUN server saw of it is not
/// one of its interface addresses).
pub const FLAG_NAT: u8 = 0x01;
/// Flag: this datagram went through the sender's TURN relay.
pub const FLAG_RELAYED: u8 = 0x02;
/// Flag: the controlling side chooses this pair (a probe), or the
/// controlled side takes it (an ack).
pub const FLAG_NOMINATE: u8 = 0x04;

/// How often a registration is repeated until the number is paired.
pub const REGISTER_EVERY: Duration = Duration::from_secs(1);
/// How long the controlling side waits after pairing for a LAN pair
/// before it chooses a punched one.
pub const LAN_GRACE: Duration = Duration::from_millis(250);
/// How long after pairing, without a direct pair, a relayed pair may be
/// chosen.
pub const RELAY_AFTER: Duration = Duration::from_secs(3);
/// How long after pairing, without a proven pair, a side that knows its
/// NAT is hard opens the search's sockets.
pub const SEARCH_HARD_AFTER: Duration = Duration::from_millis(300);
/// How long after pairing, without a proven pair, the other side starts
/// probing random ports.
pub const SEARCH_EASY_AFTER: Duration = Duration::from_millis(500);
/// Sockets the hard side opens for the search (tailscale's figure).
pub const SEARCH_SOCKETS: usize = 256;
/// Random-port probes per second from the easy side: 20 every 50 ms.
pub const SEARCH_BURST: usize = 20;
/// The pace of the search's bursts.
pub const SEARCH_EVERY: Duration = Duration::from_millis(50);
/// The most random-port probes one search sends (10 s at its pace).
pub const SEARCH_MAX: usize = 4000;
/// The lowest port a Linux NAT picks when it remaps (it keeps ports
/// below 1024 apart).
const SEARCH_LOWEST_PORT: u16 = 1024;

/// STUN requests are padded to this many bytes so that the rendezvous
/// can answer with OTHER-ADDRESS and FINGERPRINT for either family
/// (section 12.5).
const STUN_PAD: usize = 80;
/// STUN requests are repeated this often, this many times.
const STUN_EVERY: Duration = Duration::from_millis(400);
const STUN_TRIES: u32 = 5;

/// What the caller sets up.
#[derive(Debug, Clone)]
pub struct Config {
    /// The code's number (1 to 999).
    pub number: u16,
    /// Random, new for every run: the rendezvous's registrant id.
    pub registrant: [u8; 8],
    /// The rendezvous service.
    pub rendezvous: SocketAddr,
    /// A second STUN server, to see whether this side's NAT maps per
    /// destination.
    pub stun: Option<SocketAddr>,
    /// This side's interface addresses (with the main socket's port), in
    /// order of preference; at most 4 are reported (3 with a relay).
    pub host: Vec<SocketAddr>,
    /// This side's address at a TURN relay, reported as a candidate.
    pub relayed: Option<SocketAddr>,
    /// How long after pairing a path may take before the search gives up.
    pub path_wait: Duration,
    /// Seeds the probes' tokens, the STUN transaction ids and the search's
    /// ports.
    pub seed: [u8; 32],
}

/// One of the sockets: 0 is the main one, the search adds more.
pub type SocketId = usize;

/// A datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// The socket to send it from.
    pub socket: SocketId,
    /// Where to.
    pub to: SocketAddr,
    /// The bytes.
    pub bytes: Vec<u8>,
    /// Send it through this side's TURN relay (a pair to the other side
    /// that it reached through the relay).
    pub relayed: bool,
}

/// How a NAT maps one socket to different destinations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NatKind {
    /// A STUN server saw one of this side's interface addresses: no NAT.
    None,
    /// The same public address for every destination ("easy").
    Easy,
    /// A new public port per destination ("hard"): the search is needed.
    Hard,
    /// Behind a NAT, but only one server answered: its kind is unknown.
    Unknown,
}

impl NatKind {
    /// The words shown.
    pub fn describe(self) -> &'static str {
        match self {
            NatKind::None => "not behind a NAT (a STUN server sees an address of this host)",
            NatKind::Easy => "behind a NAT that keeps one public port for every destination",
            NatKind::Hard => "behind a NAT that takes a new public port for every destination",
            NatKind::Unknown => {
                "behind a NAT (whether it keeps its port is unknown: one STUN server answered)"
            }
        }
    }

    /// The JSON name.
    pub fn name(self) -> &'static str {
        match self {
            NatKind::None => "none",
            NatKind::Easy => "easy",
            NatKind::Hard => "hard",
            NatKind::Unknown => "unknown",
        }
    }

    fn behind(self) -> bool {
        !matches!(self, NatKind::None)
    }
}

/// What kind of path was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathKind {
    /// To an address the other side reported from its interfaces, not the
    /// one the rendezvous saw: the two are on one network.
    Lan,
    /// Direct between the public addresses, through this side's NAT
    /// and/or the other's.
    Direct {
        /// This side is behind a NAT.
        here: bool,
        /// The other side is behind a NAT.
        there: bool,
        /// Found by the search (one side's NAT is hard).
        searched: bool,
    },
    /// Through a TURN relay at this address (this side's or the other's).
    Relayed {
        /// The relay's address on the path.
        via: SocketAddr,
    },
}

impl PathKind {
    /// What the screen says.
    pub fn describe(&self) -> String {
        match self {
            PathKind::Lan => "direct on the LAN".to_string(),
            PathKind::Direct {
                here,
                there,
                searched,
            } => {
                let through = match (here, there) {
                    (true, true) => "direct through both NATs",
                    (true, false) => "direct through this side's NAT",
                    (false, true) => "direct through the other side's NAT",
                    (false, false) => "direct (no NAT on the path)",
                };
                if *searched {
                    format!("{through}, found by a port search (one NAT maps per destination)")
                } else {
                    through.to_string()
                }
            }
            PathKind::Relayed { via } => format!("relayed via {via}"),
        }
    }

    /// The JSON name.
    pub fn name(&self) -> &'static str {
        match self {
            PathKind::Lan => "lan",
            PathKind::Direct { .. } => "direct",
            PathKind::Relayed { .. } => "relayed",
        }
    }
}

/// Where a candidate of the other side came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The address the rendezvous saw the other side at.
    Seen,
    /// An address the other side reported (an interface, or its relay).
    Reported,
    /// Found by the search: the other side's address at a port its NAT
    /// picked for this side.
    Searched,
    /// Heard through this side's own TURN relay: the other side's address
    /// as the relay sees it.
    Relay,
}

impl Origin {
    /// The JSON and `/path` name.
    pub fn name(self) -> &'static str {
        match self {
            Origin::Seen => "seen by the rendezvous",
            Origin::Reported => "reported by the other side",
            Origin::Searched => "found by the search",
            Origin::Relay => "through this side's relay",
        }
    }
}

/// A candidate of the other side and what probing it did, for `/path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tried {
    /// The address.
    pub addr: SocketAddr,
    /// Where it came from.
    pub origin: Origin,
    /// Probes sent to it.
    pub probes: u32,
    /// Acks that proved it, and the first one's round trip.
    pub answered: Option<Duration>,
    /// Probes it sent here.
    pub heard: u32,
    /// It is the path chosen.
    pub chosen: bool,
}

/// The path found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The socket it is on.
    pub socket: SocketId,
    /// The other side's address on it.
    pub peer: SocketAddr,
    /// What kind of path it is.
    pub kind: PathKind,
    /// From pairing to the choice.
    pub took: Duration,
    /// Every candidate and what it did.
    pub tried: Vec<Tried>,
    /// This side chose (it came second to the rendezvous) and so begins
    /// the handshake.
    pub controlling: bool,
    /// The path goes through this side's own TURN relay: what is sent to
    /// the peer is wrapped for the relay.
    pub own_relay: bool,
    /// The search's figures, when it ran.
    pub search: Option<SearchFigures>,
}

/// What the search did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SearchFigures {
    /// Sockets this side opened (the hard side).
    pub sockets: usize,
    /// Random-port probes this side sent (the easy side).
    pub probes: usize,
}

/// Why no path was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Another pair already holds the number.
    Taken,
    /// The rendezvous holds as many numbers as it may.
    Busy,
    /// The rendezvous never answered.
    NoRendezvous {
        /// Registrations sent.
        tries: u32,
        /// It answered STUN, though: a STUN server, not a rendezvous (or
        /// a rendezvous's second, STUN-only port).
        stun_only: bool,
    },
    /// Nothing listens at the rendezvous's address: its host said so
    /// (ICMP port unreachable) to [`REFUSALS_TO_FAIL`] registrations.
    RendezvousRefused,
    /// Paired, but no probe of either side got through in time.
    NoPath {
        /// Candidates tried.
        candidates: usize,
        /// Probes sent to them.
        probes: u32,
        /// Random-port probes of the search.
        searched: usize,
        /// Probes heard from the other side.
        heard: u32,
        /// This side's NAT.
        nat: NatKind,
        /// This side offered a relay (and it was not reached either).
        relay: bool,
    },
    /// Paired, but every address of the other side refused this side's
    /// probes (ICMP port unreachable): nothing listens there any more.
    PeerGone,
}

impl Failure {
    /// What the screen says.
    pub fn describe(&self) -> String {
        match self {
            Failure::Taken => "the rendezvous says this code's number is in use by two others: make a new code (dgram chat --via … --code)".to_string(),
            Failure::Busy => "the rendezvous is full (it holds 999 numbers): try again later".to_string(),
            Failure::NoRendezvous { tries, stun_only: false } => format!("no answer from the rendezvous after {tries} registrations: is it running, and is its address right?"),
            Failure::NoRendezvous { tries, stun_only: true } => format!("no answer to {tries} registrations, though the address answers STUN: it is a STUN server, not a dgram rendezvous (or a rendezvous's second, STUN-only port: use its first)"),
            Failure::RendezvousRefused => "nothing listens at the rendezvous's address (its host refused what was sent there: ICMP port unreachable): is dgram rendezvous running there, on that port?".to_string(),
            Failure::NoPath { candidates, probes, searched, heard, nat, relay } => {
                let why = if *heard == 0 {
                    "none of the other side's probes got in either: both NATs (or firewalls) drop what they did not ask for"
                } else {
                    "the other side's probes got in, but no answer to this side's did"
                };
                let search = if *searched > 0 {
                    format!(" and {searched} to random ports of its address")
                } else {
                    String::new()
                };
                let hard = if *nat == NatKind::Hard {
                    "; this side's NAT takes a new port per destination: if the other's does too, no search can find a path"
                } else {
                    ""
                };
                let relay = if *relay {
                    "; the relay this side offered was not reached either"
                } else {
                    "; a relay (--turn user:pass@HOST:PORT) gets through any NAT"
                };
                format!(
                    "no direct path: {probes} probes to the other side's {candidates} candidates{search}, {heard} heard from it; {why}; this side is {}{hard}{relay}",
                    nat.describe()
                )
            }
            Failure::PeerGone => "the other side is gone: every address the rendezvous gave for it refused this side's probes (ICMP port unreachable); it may have left after registering: both start again (a new code)".to_string(),
        }
    }
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TraverseEvent {
    /// The rendezvous holds the number; waiting for the other side.
    Waiting,
    /// A STUN server saw this side at `mapped`.
    Mapped {
        /// The server asked.
        server: SocketAddr,
        /// What it saw.
        mapped: SocketAddr,
    },
    /// This side's NAT, once both servers answered (or one did and the
    /// other gave up).
    Nat(NatKind),
    /// Paired with the other side.
    Paired {
        /// This side came first (the other side chooses the path).
        first: bool,
        /// The other side's candidates, the address the rendezvous saw
        /// first.
        candidates: Vec<SocketAddr>,
    },
    /// The search begins: open this many more sockets and call
    /// [`Traversal::sockets_opened`].
    OpenSockets(usize),
    /// The search began on this side.
    Searching {
        /// This side's NAT is the hard one (it opened sockets), or the
        /// easy one (it probes random ports).
        hard: bool,
    },
    /// A TURN relay gave this side an address (reported to the other side
    /// as a candidate), or could not.
    Relay {
        /// The TURN server.
        server: SocketAddr,
        /// This side's address at the relay, or why there is none.
        relayed: Result<SocketAddr, String>,
    },
    /// The path.
    Found(Found),
    /// During a relayed chat, a direct address of the other side
    /// answered: the session is offered it and leaves the relay.
    DirectAgain {
        /// The address.
        to: SocketAddr,
    },
    /// No path.
    Failed(Failure),
}

/// A probe or an ack, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    /// [`KIND_PROBE`] or [`KIND_ACK`].
    pub kind: u8,
    /// The code's number.
    pub number: u16,
    /// [`FLAG_NAT`], [`FLAG_RELAYED`], [`FLAG_NOMINATE`].
    pub flags: u8,
    /// The probe's random token (an ack carries its probe's).
    pub token: [u8; 8],
}

/// Encodes a probe or an ack: `F5 01 0C|0D`, number (2), flags (1),
/// token (8).
pub fn encode_probe(probe: &Probe) -> [u8; PROBE_LEN] {
    let mut bytes = [0u8; PROBE_LEN];
    bytes[..3].copy_from_slice(&[MAGIC, VERSION, probe.kind]);
    bytes[3..5].copy_from_slice(&probe.number.to_be_bytes());
    bytes[5] = probe.flags;
    bytes[6..].copy_from_slice(&probe.token);
    bytes
}

/// Decodes a probe or an ack; `None` when `datagram` is neither (wrong
/// length, kind, or flags that are not defined).
pub fn decode_probe(datagram: &[u8]) -> Option<Probe> {
    if datagram.len() != PROBE_LEN
        || datagram[..2] != [MAGIC, VERSION]
        || !matches!(datagram[2], KIND_PROBE | KIND_ACK)
        || datagram[5] & !(FLAG_NAT | FLAG_RELAYED | FLAG_NOMINATE) != 0
    {
        return None;
    }
    let mut token = [0u8; 8];
    token.copy_from_slice(&datagram[6..]);
    Some(Probe {
        kind: datagram[2],
        number: u16::from_be_bytes([datagram[3], datagram[4]]),
        flags: datagram[5],
        token,
    })
}

/// True when `datagram` is one of the kinds this module owns (a
/// registration's answer, a probe, an ack) or STUN: what a chat that went
/// through the rendezvous hands here rather than to its protocol.
pub fn is_traversal(datagram: &[u8]) -> bool {
    matches!(
        datagram,
        [
            MAGIC,
            VERSION,
            rendezvous::KIND_ANSWER | KIND_PROBE | KIND_ACK,
            ..
        ]
    ) || stun::looks_like_stun(datagram)
}

/// A STUN request in flight.
#[derive(Debug)]
struct StunAsk {
    server: SocketAddr,
    transaction: [u8; 12],
    tries: u32,
    next: Instant,
    mapped: Option<SocketAddr>,
}

/// A candidate of the other side, on one of this side's sockets.
#[derive(Debug, Clone)]
struct Pair {
    socket: SocketId,
    addr: SocketAddr,
    origin: Origin,
    token: [u8; 8],
    probes: u32,
    heard: u32,
    answered: Option<Duration>,
    /// When the last probe went (the round trip of the first ack).
    last_probe: Option<Instant>,
    /// ICMP refusals (port unreachable) of probes sent to it.
    refused: u32,
    next: Instant,
    /// This side reaches the address through its own TURN relay (it was
    /// heard through it): part of the pair's identity, since the other
    /// side's one socket may be heard both through the relay and
    /// directly from the same address.
    via_relay: bool,
    /// The other side said the address is its relay (its probes and acks
    /// from it carry [`FLAG_RELAYED`]).
    peer_relay: bool,
}

#[derive(Debug)]
enum Phase {
    Registering {
        next: Instant,
        tries: u32,
        since: Instant,
    },
    Paired {
        at: Instant,
        first: bool,
        seen: SocketAddr,
    },
    Done,
}

/// How many refusals (ICMP port unreachable) from the rendezvous's
/// address end the wait for it: one could be a restart in progress.
pub const REFUSALS_TO_FAIL: u32 = 3;

/// How long the rendezvous may stay silent before it is given up.
pub const RENDEZVOUS_SILENT: Duration = Duration::from_secs(10);

/// The traversal of one side.
#[derive(Debug)]
pub struct Traversal {
    config: Config,
    rng: ChaCha20Rng,
    phase: Phase,
    /// Heard anything at all from the rendezvous.
    answered: bool,
    /// [`TraverseEvent::Waiting`] was reported (once).
    said_waiting: bool,
    /// Refusals from the rendezvous's address while registering.
    refusals: u32,
    stun: Vec<StunAsk>,
    nat: Option<NatKind>,
    pairs: Vec<Pair>,
    /// The other side is behind a NAT (a flag on its probes).
    peer_nat: bool,
    /// The pair nominated (controlling) and when it was last nominated.
    nominated: Option<(usize, Instant)>,
    /// The search: sockets opened (hard side) or random-port probes sent
    /// (easy side), the next burst, the token its probes carry.
    search_sockets: usize,
    search_requested: bool,
    search_probes: usize,
    search_next: Option<Instant>,
    search_token: [u8; 8],
    transmits: VecDeque<Transmit>,
    events: VecDeque<TraverseEvent>,
    /// The time of the last [`Traversal::handle_timeout`].
    last: Instant,
}

impl Traversal {
    /// Begins: registers and asks the STUN servers at once.
    pub fn new(config: Config, now: Instant) -> Traversal {
        let mut rng = ChaCha20Rng::from_seed(config.seed);
        let mut stun = Vec::new();
        for server in std::iter::once(config.rendezvous).chain(config.stun) {
            let mut transaction = [0u8; 12];
            rng.fill_bytes(&mut transaction);
            stun.push(StunAsk {
                server,
                transaction,
                tries: 0,
                next: now,
                mapped: None,
            });
        }
        let mut search_token = [0u8; 8];
        rng.fill_bytes(&mut search_token);
        let mut traversal = Traversal {
            config,
            rng,
            phase: Phase::Registering {
                next: now,
                tries: 0,
                since: now,
            },
            answered: false,
            said_waiting: false,
            refusals: 0,
            stun,
            nat: None,
            pairs: Vec::new(),
            peer_nat: false,
            nominated: None,
            search_sockets: 0,
            search_requested: false,
            search_probes: 0,
            search_next: None,
            search_token,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            last: now,
        };
        traversal.handle_timeout(now);
        traversal
    }

    /// The candidates this side reports: interface addresses, then its
    /// relay, at most [`rendezvous::MAX_REPORTED`].
    pub fn reported(&self) -> Vec<SocketAddr> {
        let room = rendezvous::MAX_REPORTED - usize::from(self.config.relayed.is_some());
        let mut list: Vec<SocketAddr> = self.config.host.iter().copied().take(room).collect();
        list.extend(self.config.relayed);
        list
    }

    /// This side's NAT, once known.
    pub fn nat(&self) -> Option<NatKind> {
        self.nat
    }

    /// What a STUN server saw of the main socket, the rendezvous first.
    pub fn mapped(&self) -> Vec<(SocketAddr, SocketAddr)> {
        self.stun
            .iter()
            .filter_map(|ask| ask.mapped.map(|m| (ask.server, m)))
            .collect()
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<TraverseEvent> {
        self.events.pop_front()
    }

    /// True once a path was found or the search failed.
    pub fn is_done(&self) -> bool {
        matches!(self.phase, Phase::Done)
    }

    /// When [`Traversal::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        // What was due at the last call was done then (or is not to be
        // done any more, such as the search's next burst once a pair is
        // proven): only what lies after it wakes.
        let last = self.last;
        let mut at = |t: Instant| {
            if t > last {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        };
        for ask in &self.stun {
            // After the last try, its wait still ends: then the NAT's
            // kind is settled without that server.
            if ask.mapped.is_none() && (ask.tries < STUN_TRIES || self.nat.is_none()) {
                at(ask.next);
            }
        }
        match &self.phase {
            Phase::Registering { next, since, .. } => {
                at(*next);
                if !self.answered {
                    at(*since + RENDEZVOUS_SILENT);
                }
            }
            Phase::Paired { at: paired, .. } => {
                for pair in &self.pairs {
                    at(pair.next);
                }
                at(*paired + self.config.path_wait);
                for milestone in [LAN_GRACE, RELAY_AFTER, SEARCH_HARD_AFTER, SEARCH_EASY_AFTER] {
                    at(*paired + milestone);
                }
                if let Some(search) = self.search_next {
                    at(search);
                }
                if let Some((_, last)) = self.nominated {
                    at(last + NOMINATE_EVERY);
                }
            }
            Phase::Done => return None,
        }
        next
    }

    /// The search's sockets were opened: ids `first..first + count`.
    pub fn sockets_opened(&mut self, now: Instant, first: SocketId, count: usize) {
        let Phase::Paired { seen, .. } = self.phase else {
            return;
        };
        self.search_sockets = count;
        for socket in first..first + count {
            let pair = self.new_pair(socket, seen, Origin::Seen, now, false);
            self.pairs.push(pair);
        }
        self.events
            .push_back(TraverseEvent::Searching { hard: true });
        self.handle_timeout(now);
    }

    /// The host at `to` refused a datagram sent there (ICMP port
    /// unreachable). Only the rendezvous's refusals matter: a candidate's
    /// are what probing through NATs is made of.
    ///
    /// Once paired, the other side's refusals say it is gone: when every
    /// address it has (not the search's guesses, not a relay's) refused
    /// [`REFUSALS_TO_FAIL`] probes and none answered or was heard, the
    /// search ends at once instead of probing a host with nothing there.
    pub fn handle_refused(&mut self, to: SocketAddr) {
        match self.phase {
            Phase::Registering { .. } if to == self.config.rendezvous && !self.answered => {
                self.refusals += 1;
                if self.refusals >= REFUSALS_TO_FAIL {
                    self.fail(Failure::RendezvousRefused);
                }
            }
            Phase::Paired { .. } => {
                for pair in &mut self.pairs {
                    if pair.addr == to && pair.socket == 0 && !pair.via_relay {
                        pair.refused += 1;
                    }
                }
                let known = self.pairs.iter().filter(|p| {
                    p.socket == 0
                        && !p.via_relay
                        && matches!(p.origin, Origin::Seen | Origin::Reported)
                });
                let gone = known.clone().count() > 0
                    && known.clone().all(|p| p.refused >= REFUSALS_TO_FAIL)
                    && self
                        .pairs
                        .iter()
                        .all(|p| p.answered.is_none() && p.heard == 0);
                if gone {
                    self.fail(Failure::PeerGone);
                }
            }
            _ => {}
        }
    }

    /// A datagram that came to `socket` from `from`; `relayed`: it came
    /// through this side's TURN relay. Returns false when it is not the
    /// traversal's (the caller deals with it).
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        socket: SocketId,
        from: SocketAddr,
        datagram: &[u8],
        relayed: bool,
    ) -> bool {
        if stun::looks_like_stun(datagram) {
            return self.handle_stun(now, from, datagram);
        }
        if let Some(answer) = rendezvous::decode_answer(datagram) {
            if from != self.config.rendezvous || answer.number != self.config.number {
                return true;
            }
            self.handle_answer(now, answer);
            return true;
        }
        let Some(probe) = decode_probe(datagram) else {
            return false;
        };
        if probe.number != self.config.number {
            return true;
        }
        match probe.kind {
            KIND_PROBE => self.handle_probe(now, socket, from, probe, relayed),
            _ => self.handle_ack(now, socket, from, probe, relayed),
        }
        true
    }

    fn handle_stun(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) -> bool {
        let Ok(message) = stun::decode(datagram) else {
            return false;
        };
        let Some(ask) = self
            .stun
            .iter_mut()
            .find(|a| a.server == from && a.transaction == message.transaction)
        else {
            return false;
        };
        if message.kind != stun::BINDING_SUCCESS || ask.mapped.is_some() {
            return true;
        }
        let Some(mapped) = message.mapped else {
            return true;
        };
        ask.mapped = Some(mapped);
        self.events.push_back(TraverseEvent::Mapped {
            server: from,
            mapped,
        });
        // The rendezvous answers at a second address too (OTHER-ADDRESS):
        // without --stun, that is the second server to ask.
        if let Some(other) = message.other
            && from == self.config.rendezvous
            && other != from
            && self.stun.iter().all(|a| a.server != other)
        {
            let mut transaction = [0u8; 12];
            self.rng.fill_bytes(&mut transaction);
            self.stun.push(StunAsk {
                server: other,
                transaction,
                tries: 0,
                next: now,
                mapped: None,
            });
            self.stun_due(now);
        }
        self.settle_nat();
        true
    }

    /// The NAT's kind, once every server answered or gave up.
    fn settle_nat(&mut self) {
        if self.nat.is_some()
            || self
                .stun
                .iter()
                .any(|a| a.mapped.is_none() && a.tries < STUN_TRIES)
        {
            return;
        }
        let mapped: Vec<SocketAddr> = self.stun.iter().filter_map(|a| a.mapped).collect();
        let Some(first) = mapped.first() else {
            return;
        };
        // Seen at one of this host's addresses (or at loopback: the server
        // is on this host), nothing between rewrote the address.
        let kind =
            if first.ip().is_loopback() || self.config.host.iter().any(|h| h.ip() == first.ip()) {
                NatKind::None
            } else if mapped.len() < 2 {
                NatKind::Unknown
            } else if mapped.iter().all(|m| m == first) {
                NatKind::Easy
            } else {
                NatKind::Hard
            };
        self.nat = Some(kind);
        self.events.push_back(TraverseEvent::Nat(kind));
    }

    fn handle_answer(&mut self, now: Instant, answer: rendezvous::Answer) {
        self.answered = true;
        let Phase::Registering { .. } = self.phase else {
            return;
        };
        match answer.status {
            Status::Waiting => {
                if !self.said_waiting {
                    self.said_waiting = true;
                    self.events.push_back(TraverseEvent::Waiting);
                }
            }
            Status::Taken => self.fail(Failure::Taken),
            Status::Busy => self.fail(Failure::Busy),
            Status::PairedFirst | Status::PairedSecond => {
                let first = answer.status == Status::PairedFirst;
                let Some(&seen) = answer.candidates.first() else {
                    return;
                };
                self.phase = Phase::Paired {
                    at: now,
                    first,
                    seen,
                };
                for (i, addr) in answer.candidates.iter().enumerate() {
                    let origin = if i == 0 {
                        Origin::Seen
                    } else {
                        Origin::Reported
                    };
                    if self.config.host.contains(addr) || Some(*addr) == self.config.relayed {
                        // This side's own address (both on one host):
                        // probing it would talk to itself.
                        continue;
                    }
                    let pair = self.new_pair(0, *addr, origin, now, false);
                    self.pairs.push(pair);
                }
                self.events.push_back(TraverseEvent::Paired {
                    first,
                    candidates: answer.candidates,
                });
                self.handle_timeout(now);
            }
        }
    }

    fn new_pair(
        &mut self,
        socket: SocketId,
        addr: SocketAddr,
        origin: Origin,
        now: Instant,
        via_relay: bool,
    ) -> Pair {
        let mut token = [0u8; 8];
        self.rng.fill_bytes(&mut token);
        Pair {
            socket,
            addr,
            origin,
            token,
            probes: 0,
            heard: 0,
            answered: None,
            last_probe: None,
            refused: 0,
            next: now,
            via_relay,
            peer_relay: false,
        }
    }

    fn flags(&self) -> u8 {
        if self.nat.is_some_and(NatKind::behind)
            || self.stun.first().and_then(|a| a.mapped).is_some_and(|m| {
                !m.ip().is_loopback() && !self.config.host.iter().any(|h| h.ip() == m.ip())
            })
        {
            FLAG_NAT
        } else {
            0
        }
    }

    /// The pair for a datagram from `from` on `socket`: a candidate, or
    /// (the search) the other side's address at another port.
    fn pair_for(
        &mut self,
        now: Instant,
        socket: SocketId,
        from: SocketAddr,
        via_relay: bool,
    ) -> Option<usize> {
        if let Some(i) = self
            .pairs
            .iter()
            .position(|p| p.socket == socket && p.addr == from && p.via_relay == via_relay)
        {
            return Some(i);
        }
        let Phase::Paired { seen, .. } = self.phase else {
            return None;
        };
        // Only the search finds new ports, and only at the address the
        // rendezvous saw: nothing else may steer the probes.
        if from.ip() != seen.ip() {
            return None;
        }
        let origin = if via_relay {
            Origin::Relay
        } else if from == seen {
            Origin::Seen
        } else {
            Origin::Searched
        };
        let pair = self.new_pair(socket, from, origin, now, via_relay);
        self.pairs.push(pair);
        Some(self.pairs.len() - 1)
    }

    fn handle_probe(
        &mut self,
        now: Instant,
        socket: SocketId,
        from: SocketAddr,
        probe: Probe,
        relayed: bool,
    ) {
        let Phase::Paired { first, .. } = self.phase else {
            return;
        };
        let Some(i) = self.pair_for(now, socket, from, relayed) else {
            return;
        };
        self.peer_nat |= probe.flags & FLAG_NAT != 0;
        let pair = &mut self.pairs[i];
        pair.heard += 1;
        pair.peer_relay |= probe.flags & FLAG_RELAYED != 0;
        let nominated = probe.flags & FLAG_NOMINATE != 0 && first && pair.answered.is_some();
        let mut flags = self.flags();
        if relayed {
            flags |= FLAG_RELAYED;
        }
        if nominated {
            flags |= FLAG_NOMINATE;
        }
        self.push_probe(KIND_ACK, socket, from, flags, probe.token, relayed);
        let pair = &mut self.pairs[i];
        if pair.answered.is_none() {
            // A triggered check (ICE's term): the other side's probe got
            // in, so this side's NAT now has the mapping; probe back at
            // once rather than at the next round.
            pair.next = now;
        }
        if nominated {
            self.finish(now, i, first);
        } else {
            self.handle_timeout(now);
        }
    }

    fn handle_ack(
        &mut self,
        now: Instant,
        socket: SocketId,
        from: SocketAddr,
        probe: Probe,
        relayed: bool,
    ) {
        let Phase::Paired { first, .. } = self.phase else {
            return;
        };
        let i = if probe.token == self.search_token && socket == 0 && !relayed {
            self.pair_for(now, socket, from, false)
        } else {
            self.pairs.iter().position(|p| {
                p.socket == socket
                    && p.addr == from
                    && p.token == probe.token
                    && p.via_relay == relayed
            })
        };
        let Some(i) = i else {
            return;
        };
        self.peer_nat |= probe.flags & FLAG_NAT != 0;
        let pair = &mut self.pairs[i];
        pair.peer_relay |= probe.flags & FLAG_RELAYED != 0;
        if pair.answered.is_none() {
            pair.answered = Some(pair.last_probe.map_or(Duration::ZERO, |t| now - t));
        }
        if probe.flags & FLAG_NOMINATE != 0 && !first && self.nominated.is_some_and(|(n, _)| n == i)
        {
            self.finish(now, i, first);
            return;
        }
        self.handle_timeout(now);
    }

    fn fail(&mut self, failure: Failure) {
        self.phase = Phase::Done;
        self.events.push_back(TraverseEvent::Failed(failure));
    }

    fn kind_of(&self, pair: &Pair) -> PathKind {
        if pair.via_relay {
            return PathKind::Relayed {
                via: self.config.relayed.unwrap_or(pair.addr),
            };
        }
        if pair.peer_relay {
            return PathKind::Relayed { via: pair.addr };
        }
        if pair.origin == Origin::Reported {
            return PathKind::Lan;
        }
        PathKind::Direct {
            here: self.flags() & FLAG_NAT != 0,
            there: self.peer_nat,
            // On the hard side, the main socket's pair to the address the
            // rendezvous saw is the search's too once it ran: the other
            // side (behind a NAT) found that mapping among the search's
            // by probing random ports.
            searched: pair.origin == Origin::Searched
                || pair.socket != 0
                || (self.search_sockets > 0 && self.peer_nat),
        }
    }

    fn finish(&mut self, now: Instant, chosen: usize, first: bool) {
        let Phase::Paired { at, .. } = self.phase else {
            return;
        };
        let pair = self.pairs[chosen].clone();
        let kind = self.kind_of(&pair);
        let tried = self
            .pairs
            .iter()
            .enumerate()
            .filter(|(i, p)| {
                *i == chosen
                    || p.socket == 0 && (p.origin != Origin::Searched || p.answered.is_some())
            })
            .map(|(i, p)| Tried {
                addr: p.addr,
                origin: p.origin,
                probes: p.probes,
                answered: p.answered,
                heard: p.heard,
                chosen: i == chosen,
            })
            .collect();
        let search = (self.search_sockets > 0 || self.search_probes > 0).then_some(SearchFigures {
            sockets: self.search_sockets,
            probes: self.search_probes,
        });
        self.phase = Phase::Done;
        self.events.push_back(TraverseEvent::Found(Found {
            socket: pair.socket,
            peer: pair.addr,
            kind,
            took: now - at,
            tried,
            controlling: !first,
            own_relay: pair.via_relay,
            search,
        }));
    }

    /// Sends what is due: STUN requests, registrations, probes, the
    /// search's bursts, nominations; gives up when time is out.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.last = self.last.max(now);
        self.stun_due(now);
        match self.phase {
            Phase::Registering { next, tries, since } => {
                if !self.answered && now >= since + RENDEZVOUS_SILENT {
                    let stun_only = self.stun.first().is_some_and(|a| a.mapped.is_some());
                    self.fail(Failure::NoRendezvous { tries, stun_only });
                    return;
                }
                if now >= next {
                    let bytes = rendezvous::encode_register(
                        self.config.number,
                        self.config.registrant,
                        &self.reported(),
                    )
                    .expect("the number was checked and the candidates capped");
                    self.transmits.push_back(Transmit {
                        socket: 0,
                        to: self.config.rendezvous,
                        bytes,
                        relayed: false,
                    });
                    self.phase = Phase::Registering {
                        next: now + REGISTER_EVERY,
                        tries: tries + 1,
                        since,
                    };
                }
            }
            Phase::Paired { at, first, seen } => self.paired_due(now, at, first, seen),
            Phase::Done => {}
        }
    }

    fn stun_due(&mut self, now: Instant) {
        for ask in &mut self.stun {
            if ask.mapped.is_none() && ask.tries < STUN_TRIES && now >= ask.next {
                ask.tries += 1;
                ask.next = now + STUN_EVERY;
                self.transmits.push_back(Transmit {
                    socket: 0,
                    to: ask.server,
                    bytes: stun::binding_request(&ask.transaction, STUN_PAD),
                    relayed: false,
                });
            }
        }
        // A server that gave up its last try is done with.
        if self.nat.is_none()
            && self
                .stun
                .iter()
                .all(|a| a.mapped.is_some() || (a.tries >= STUN_TRIES && now >= a.next))
        {
            for ask in &mut self.stun {
                if ask.mapped.is_none() {
                    ask.tries = STUN_TRIES;
                }
            }
            self.settle_nat();
        }
    }

    fn paired_due(&mut self, now: Instant, at: Instant, first: bool, seen: SocketAddr) {
        let since = now - at;
        let flags = self.flags();
        // A relayed pair does not end the search: a direct one is better.
        let proven = self
            .pairs
            .iter()
            .any(|p| p.answered.is_some() && !p.via_relay && !p.peer_relay);
        let mut due = Vec::new();
        for pair in &mut self.pairs {
            if now < pair.next {
                continue;
            }
            pair.probes += 1;
            pair.last_probe = Some(now);
            // Every 100 ms for the first second, then every 250 ms; the
            // search's sockets every second (256 of them).
            pair.next = now
                + if pair.socket != 0 {
                    Duration::from_secs(1)
                } else if since < Duration::from_secs(1) {
                    Duration::from_millis(100)
                } else {
                    Duration::from_millis(250)
                };
            due.push((pair.socket, pair.addr, pair.token, pair.via_relay));
        }
        for (socket, to, token, relayed) in due {
            self.push_probe(KIND_PROBE, socket, to, flags, token, relayed);
        }
        if !first {
            self.nominate_due(now, since);
            if self.is_done() {
                return;
            }
        }
        if !proven {
            self.search_due(now, since, seen);
        }
        if since >= self.config.path_wait {
            let probes = self.pairs.iter().map(|p| p.probes).sum::<u32>();
            let heard = self.pairs.iter().map(|p| p.heard).sum();
            let candidates = self
                .pairs
                .iter()
                .filter(|p| p.socket == 0 && p.origin != Origin::Searched)
                .count();
            self.fail(Failure::NoPath {
                candidates,
                probes,
                searched: self.search_probes,
                heard,
                nat: self.nat.unwrap_or(NatKind::Unknown),
                relay: self.config.relayed.is_some(),
            });
        }
    }

    /// The controlling side's choice, and its nominations until acked.
    fn nominate_due(&mut self, now: Instant, since: Duration) {
        if let Some((i, last)) = self.nominated {
            if now >= last + NOMINATE_EVERY {
                self.send_nomination(now, i);
            }
            return;
        }
        let rank = |p: &Pair| -> Option<u8> {
            p.answered?;
            Some(match (p.via_relay || p.peer_relay, p.origin) {
                (true, _) => 3,
                (false, Origin::Reported) => 0,
                _ => 1,
            })
        };
        let best = self
            .pairs
            .iter()
            .enumerate()
            .filter_map(|(i, p)| rank(p).map(|r| (r, p.answered, i)))
            .min_by_key(|(r, rtt, _)| (*r, *rtt));
        let Some((rank, _, i)) = best else {
            return;
        };
        let ready = match rank {
            0 => true,
            3 => since >= RELAY_AFTER,
            _ => since >= LAN_GRACE,
        };
        if ready {
            self.send_nomination(now, i);
        }
    }

    /// Queues a probe or an ack of this side's number.
    fn push_probe(
        &mut self,
        kind: u8,
        socket: SocketId,
        to: SocketAddr,
        flags: u8,
        token: [u8; 8],
        relayed: bool,
    ) {
        let bytes = encode_probe(&Probe {
            kind,
            number: self.config.number,
            flags,
            token,
        });
        self.transmits.push_back(Transmit {
            socket,
            to,
            bytes: bytes.to_vec(),
            relayed,
        });
    }

    fn send_nomination(&mut self, now: Instant, i: usize) {
        self.nominated = Some((i, now));
        let (socket, to, token, relayed) = {
            let pair = &self.pairs[i];
            (pair.socket, pair.addr, pair.token, pair.via_relay)
        };
        let flags = self.flags() | FLAG_NOMINATE;
        self.push_probe(KIND_PROBE, socket, to, flags, token, relayed);
    }

    /// The search, when no pair is proven: the hard side asks for
    /// sockets; the other side sends bursts of random-port probes.
    fn search_due(&mut self, now: Instant, since: Duration, seen: SocketAddr) {
        let hard = self.nat == Some(NatKind::Hard);
        if hard {
            if since >= SEARCH_HARD_AFTER && !self.search_requested {
                self.search_requested = true;
                self.events
                    .push_back(TraverseEvent::OpenSockets(SEARCH_SOCKETS));
            }
            return;
        }
        if since < SEARCH_EASY_AFTER || self.search_probes >= SEARCH_MAX {
            return;
        }
        if self.search_next.is_none() {
            self.events
                .push_back(TraverseEvent::Searching { hard: false });
        }
        if self.search_next.is_some_and(|next| now < next) {
            return;
        }
        self.search_next = Some(now + SEARCH_EVERY);
        let flags = self.flags();
        for _ in 0..SEARCH_BURST.min(SEARCH_MAX - self.search_probes) {
            let span = u32::from(u16::MAX - SEARCH_LOWEST_PORT) + 1;
            let port = SEARCH_LOWEST_PORT + (self.rng.next_u32() % span) as u16;
            if port == seen.port() {
                continue;
            }
            self.search_probes += 1;
            let token = self.search_token;
            self.push_probe(
                KIND_PROBE,
                0,
                SocketAddr::new(seen.ip(), port),
                flags,
                token,
                false,
            );
        }
    }

    /// The IP the other side was seen at, once paired.
    pub fn peer_ip(&self) -> Option<IpAddr> {
        match self.phase {
            Phase::Paired { seen, .. } => Some(seen.ip()),
            _ => None,
        }
    }
}

/// How often a nomination is repeated until it is acked.
pub const NOMINATE_EVERY: Duration = Duration::from_millis(100);

/// How often a relayed chat probes the other side's direct addresses, to
/// leave the relay when a direct path opens.
pub const WATCH_EVERY: Duration = Duration::from_secs(5);

/// Answers probes after the path was found: a chat that went through the
/// rendezvous keeps acking the other side's late probes and nominations
/// (its own were acked, the other's may still be in flight) and counts
/// the rest of the traversal's datagrams rather than refusing them.
///
/// On a relayed path it also **watches** for a direct one: every
/// [`WATCH_EVERY`] it probes the other side's direct candidates (both
/// sides do, so both NATs open); the first ack names the direct address
/// to offer the session ([`crate::proto::chat::Core::try_path`]).
#[derive(Debug, Clone)]
pub struct Keeper {
    number: u16,
    flags: u8,
    /// The pair chosen: acks to nominations on it carry the flag back.
    chosen: SocketAddr,
    /// Probes are answered only from the other side's IP addresses.
    peer_ips: Vec<IpAddr>,
    /// On a relayed path: the direct addresses probed, the token, when
    /// next.
    watch: Option<Watch>,
    /// The path is a relay (and no direct one answered yet).
    relayed: bool,
}

#[derive(Debug, Clone)]
struct Watch {
    targets: Vec<SocketAddr>,
    token: [u8; 8],
    next: Instant,
    /// Probes sent so far.
    sent: u32,
}

impl Keeper {
    /// A keeper for the path `found` of the code `number`; `token` (random)
    /// is its watch's probes' token.
    pub fn new(number: u16, nat: bool, found: &Found, token: [u8; 8], now: Instant) -> Keeper {
        let mut peer_ips: Vec<IpAddr> = found.tried.iter().map(|t| t.addr.ip()).collect();
        peer_ips.push(found.peer.ip());
        peer_ips.sort();
        peer_ips.dedup();
        let watch = match found.kind {
            PathKind::Relayed { via } => {
                let targets: Vec<SocketAddr> = found
                    .tried
                    .iter()
                    // The other side's public address: the direct path
                    // that may open later goes through its NAT (a LAN
                    // address that did not answer in the search is not
                    // on this side's network).
                    .filter(|t| t.origin == Origin::Seen && t.addr != via)
                    .map(|t| t.addr)
                    .fold(Vec::new(), |mut all, a| {
                        if !all.contains(&a) {
                            all.push(a);
                        }
                        all
                    });
                (!targets.is_empty()).then(|| Watch {
                    targets,
                    token,
                    next: now + WATCH_EVERY,
                    sent: 0,
                })
            }
            _ => None,
        };
        Keeper {
            number,
            flags: if nat { FLAG_NAT } else { 0 },
            chosen: found.peer,
            peer_ips,
            watch,
            relayed: matches!(found.kind, PathKind::Relayed { .. }),
        }
    }

    /// The chat's peer as the path search left it.
    pub fn peer(&self) -> SocketAddr {
        self.chosen
    }

    /// While watching for a direct path: the addresses probed and the
    /// probes sent so far.
    pub fn watching(&self) -> Option<(Vec<SocketAddr>, u32)> {
        self.watch.as_ref().map(|w| (w.targets.clone(), w.sent))
    }

    /// True while the chat's path is a relay: until a direct address
    /// answered the watch.
    pub fn is_relayed(&self) -> bool {
        self.relayed
    }

    /// When the watch probes next (`None`: not watching).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.watch.as_ref().map(|w| w.next)
    }

    /// The watch's probes due at `now`: (destination, probe). They go
    /// straight from the socket, never through a relay.
    pub fn due(&mut self, now: Instant) -> Vec<(SocketAddr, [u8; PROBE_LEN])> {
        let Some(watch) = self.watch.as_mut() else {
            return Vec::new();
        };
        if now < watch.next {
            return Vec::new();
        }
        watch.next = now + WATCH_EVERY;
        watch.sent += u32::try_from(watch.targets.len()).unwrap_or(u32::MAX);
        let probe = encode_probe(&Probe {
            kind: KIND_PROBE,
            number: self.number,
            flags: self.flags,
            token: watch.token,
        });
        watch.targets.iter().map(|t| (*t, probe)).collect()
    }

    /// An ack to the watch's probes from `from`: the direct address that
    /// answered (the watch ends), else `None`.
    pub fn on_ack(
        &mut self,
        from: SocketAddr,
        datagram: &[u8],
        relayed: bool,
    ) -> Option<SocketAddr> {
        let watch = self.watch.as_ref()?;
        let ack = decode_probe(datagram)?;
        if relayed
            || ack.kind != KIND_ACK
            || ack.number != self.number
            || ack.token != watch.token
            || ack.flags & FLAG_RELAYED != 0
            || !watch.targets.contains(&from)
        {
            return None;
        }
        self.watch = None;
        self.relayed = false;
        Some(from)
    }

    /// The answer to `datagram` from `from`, if it is a probe to answer;
    /// `relayed`: it came through this side's relay.
    pub fn answer(
        &self,
        from: SocketAddr,
        datagram: &[u8],
        relayed: bool,
    ) -> Option<[u8; PROBE_LEN]> {
        let probe = decode_probe(datagram)?;
        if probe.kind != KIND_PROBE
            || probe.number != self.number
            || !self.peer_ips.contains(&from.ip())
        {
            return None;
        }
        let mut flags = self.flags;
        if relayed {
            flags |= FLAG_RELAYED;
        }
        if probe.flags & FLAG_NOMINATE != 0 && from == self.chosen {
            flags |= FLAG_NOMINATE;
        }
        Some(encode_probe(&Probe {
            kind: KIND_ACK,
            number: self.number,
            flags,
            token: probe.token,
        }))
    }
}

#[cfg(test)]
mod tests {
    //! The path search between two sides across simulated NATs, in
    //! memory with a fake clock: a NAT maps as Linux's `masquerade` does
    //! (one public port per socket, its own port kept: "easy") or as
    //! `masquerade fully-random` (a random public port per destination:
    //! "hard"), and lets in only what comes from an address and port a
    //! mapping was made for (conntrack's filtering, a home router's input
    //! policy), with no hairpin. The rendezvous is the real
    //! [`rendezvous::Service`]; a second one serves as the second STUN
    //! server.

    use std::collections::HashMap;
    use std::net::{IpAddr, Ipv4Addr, SocketAddr};

    use super::*;
    use crate::proto::rendezvous::{Limits, Service};

    const LATENCY: Duration = Duration::from_millis(5);
    const RENDEZVOUS: &str = "203.0.113.10:3478";
    const STUN2: &str = "203.0.113.11:3478";

    #[derive(Clone, Copy, PartialEq, Eq, Debug)]
    enum Nat {
        Easy,
        Hard,
    }

    /// A router: its public IP, its LAN's first three octets, its kind,
    /// its mappings (private source, destination-or-any) -> public port,
    /// and what each public port lets in.
    struct Router {
        public: Ipv4Addr,
        lan: [u8; 3],
        nat: Nat,
        mappings: HashMap<(SocketAddr, Option<SocketAddr>), u16>,
        /// public port -> (private address, remote addresses it sent to)
        ports: HashMap<u16, (SocketAddr, Vec<SocketAddr>)>,
        next_random: u64,
    }

    impl Router {
        fn new(public: [u8; 4], lan: [u8; 3], nat: Nat, seed: u64) -> Router {
            Router {
                public: Ipv4Addr::from(public),
                lan,
                nat,
                mappings: HashMap::new(),
                ports: HashMap::new(),
                next_random: seed,
            }
        }

        fn on_lan(&self, ip: IpAddr) -> bool {
            matches!(ip, IpAddr::V4(v4) if v4.octets()[..3] == self.lan)
        }

        /// The public source of a datagram going out, the mapping made.
        fn out(&mut self, from: SocketAddr, to: SocketAddr) -> SocketAddr {
            let key = match self.nat {
                Nat::Easy => (from, None),
                Nat::Hard => (from, Some(to)),
            };
            let port = match self.mappings.get(&key) {
                Some(&port) => port,
                None => {
                    let mut port = from.port();
                    while self.nat == Nat::Hard || self.ports.contains_key(&port) {
                        // xorshift: a new random port (1024 and up).
                        self.next_random ^= self.next_random << 13;
                        self.next_random ^= self.next_random >> 7;
                        self.next_random ^= self.next_random << 17;
                        port = 1024 + (self.next_random % 64512) as u16;
                        if !self.ports.contains_key(&port) {
                            break;
                        }
                    }
                    self.mappings.insert(key, port);
                    self.ports.insert(port, (from, Vec::new()));
                    port
                }
            };
            let entry = self.ports.get_mut(&port).expect("mapped");
            if !entry.1.contains(&to) {
                entry.1.push(to);
            }
            SocketAddr::new(self.public.into(), port)
        }

        /// Where a datagram from `from` to the public `port` goes, if in.
        fn inbound(&self, from: SocketAddr, port: u16) -> Option<SocketAddr> {
            let (private, sent_to) = self.ports.get(&port)?;
            sent_to.contains(&from).then_some(*private)
        }
    }

    /// A side: its traversal and its sockets' private addresses.
    struct Side {
        traversal: Traversal,
        sockets: Vec<SocketAddr>,
        router: Option<usize>,
        found: Option<Found>,
        failed: Option<Failure>,
        nat: Option<NatKind>,
    }

    struct Packet {
        at: Instant,
        from: SocketAddr,
        to: SocketAddr,
        bytes: Vec<u8>,
    }

    struct World {
        now: Instant,
        routers: Vec<Router>,
        sides: Vec<Side>,
        servers: Vec<(SocketAddr, Service)>,
        flight: Vec<Packet>,
        /// Bytes the rendezvous received and sent.
        rendezvous_bytes: (u64, u64),
    }

    impl World {
        fn new(routers: Vec<Router>) -> World {
            World {
                now: Instant::now(),
                routers,
                sides: Vec::new(),
                servers: vec![
                    (
                        RENDEZVOUS.parse().unwrap(),
                        Service::new(Limits::default()).with_other(STUN2.parse().unwrap()),
                    ),
                    (STUN2.parse().unwrap(), Service::new(Limits::default())),
                ],
                flight: Vec::new(),
                rendezvous_bytes: (0, 0),
            }
        }

        /// Adds a side at `private` behind `router` (or public).
        fn side(&mut self, private: &str, router: Option<usize>, seed: u8, stun: bool) {
            self.side_with(private, router, seed, stun.then_some(STUN2));
        }

        /// Adds a side with `stun` as its second STUN server.
        fn side_with(
            &mut self,
            private: &str,
            router: Option<usize>,
            seed: u8,
            stun: Option<&str>,
        ) {
            let host: SocketAddr = private.parse().unwrap();
            let config = Config {
                number: 7,
                registrant: [seed; 8],
                rendezvous: RENDEZVOUS.parse().unwrap(),
                stun: stun.map(|s| s.parse().unwrap()),
                host: vec![host],
                relayed: None,
                path_wait: Duration::from_secs(10),
                seed: [seed; 32],
            };
            self.sides.push(Side {
                traversal: Traversal::new(config, self.now),
                sockets: vec![host],
                router,
                found: None,
                failed: None,
                nat: None,
            });
        }

        /// Routes a datagram leaving a side's socket.
        fn send(&mut self, side: usize, transmit: Transmit) {
            let from = self.sides[side].sockets[transmit.socket];
            let source = match self.sides[side].router {
                Some(r) if !self.routers[r].on_lan(transmit.to.ip()) => {
                    self.routers[r].out(from, transmit.to)
                }
                _ => from,
            };
            self.flight.push(Packet {
                at: self.now + LATENCY,
                from: source,
                to: transmit.to,
                bytes: transmit.bytes,
            });
        }

        /// Delivers a packet that arrived: to a server, a router's public
        /// side, or a host directly.
        fn deliver(&mut self, packet: Packet) {
            if let Some(i) = self.servers.iter().position(|(a, _)| *a == packet.to) {
                if i == 0 {
                    self.rendezvous_bytes.0 += packet.bytes.len() as u64;
                }
                let service = &mut self.servers[i].1;
                service.handle(self.now, packet.from, &packet.bytes);
                let mut out = Vec::new();
                while let Some(t) = service.poll_transmit() {
                    out.push(t);
                }
                for t in out {
                    if i == 0 {
                        self.rendezvous_bytes.1 += t.bytes.len() as u64;
                    }
                    self.flight.push(Packet {
                        at: self.now + LATENCY,
                        from: packet.to,
                        to: t.to,
                        bytes: t.bytes,
                    });
                }
                return;
            }
            let mut to = packet.to;
            if let Some(router) = self
                .routers
                .iter()
                .find(|r| IpAddr::V4(r.public) == to.ip())
            {
                match router.inbound(packet.from, to.port()) {
                    Some(private) => to = private,
                    None => return,
                }
            }
            for side in 0..self.sides.len() {
                if let Some(socket) = self.sides[side].sockets.iter().position(|s| *s == to) {
                    let now = self.now;
                    self.sides[side].traversal.handle_datagram(
                        now,
                        socket,
                        packet.from,
                        &packet.bytes,
                        false,
                    );
                    return;
                }
            }
        }

        /// Runs until both sides are done or `limit` passes.
        fn run(&mut self, limit: Duration) {
            let end = self.now + limit;
            loop {
                for side in 0..self.sides.len() {
                    loop {
                        let mut progressed = false;
                        while let Some(t) = self.sides[side].traversal.poll_transmit() {
                            self.send(side, t);
                            progressed = true;
                        }
                        while let Some(event) = self.sides[side].traversal.poll_event() {
                            progressed = true;
                            match event {
                                TraverseEvent::OpenSockets(n) => {
                                    let first = self.sides[side].sockets.len();
                                    let ip = self.sides[side].sockets[0].ip();
                                    for k in 0..n {
                                        let port = 40000 + (first + k) as u16;
                                        self.sides[side].sockets.push(SocketAddr::new(ip, port));
                                    }
                                    let now = self.now;
                                    self.sides[side].traversal.sockets_opened(now, first, n);
                                }
                                TraverseEvent::Found(found) => self.sides[side].found = Some(found),
                                TraverseEvent::Failed(f) => self.sides[side].failed = Some(f),
                                TraverseEvent::Nat(kind) => self.sides[side].nat = Some(kind),
                                _ => {}
                            }
                        }
                        if !progressed {
                            break;
                        }
                    }
                }
                if self.now >= end || self.sides.iter().all(|s| s.traversal.is_done()) {
                    break;
                }
                let next_packet = self.flight.iter().map(|p| p.at).min();
                let next_timer = self
                    .sides
                    .iter()
                    .filter_map(|s| s.traversal.poll_timeout())
                    .min();
                let Some(next) = [next_packet, next_timer].into_iter().flatten().min() else {
                    break;
                };
                self.now = self.now.max(next);
                let (due, later): (Vec<Packet>, Vec<Packet>) =
                    self.flight.drain(..).partition(|p| p.at <= self.now);
                self.flight = later;
                for packet in due {
                    self.deliver(packet);
                }
                let now = self.now;
                for side in &mut self.sides {
                    side.traversal.handle_timeout(now);
                }
            }
        }
    }

    /// Two homes behind their own routers, `a` and `b` of these kinds;
    /// the second side starts 300 ms after the first.
    fn two_homes(a: Nat, b: Nat, seed: u64) -> World {
        let mut world = World::new(vec![
            Router::new([198, 51, 100, 1], [192, 168, 1], a, seed),
            Router::new(
                [198, 51, 100, 2],
                [192, 168, 2],
                b,
                seed.wrapping_mul(31) + 7,
            ),
        ]);
        world.side("192.168.1.2:5000", Some(0), 1, true);
        world.run(Duration::from_millis(300));
        world.side("192.168.2.2:6000", Some(1), 2, true);
        world.run(Duration::from_secs(15));
        world
    }

    /// A side of its own, public, with no second STUN server, begun at
    /// `now`.
    fn lone(number: u16, now: Instant) -> Traversal {
        Traversal::new(
            Config {
                number,
                registrant: [1; 8],
                rendezvous: RENDEZVOUS.parse().unwrap(),
                stun: None,
                host: vec!["198.51.100.1:5000".parse().unwrap()],
                relayed: None,
                path_wait: Duration::from_secs(10),
                seed: [1; 32],
            },
            now,
        )
    }

    /// The failure among the events queued, if any.
    fn failure(traversal: &mut Traversal) -> Option<Failure> {
        std::iter::from_fn(|| traversal.poll_event()).find_map(|e| match e {
            TraverseEvent::Failed(f) => Some(f),
            _ => None,
        })
    }

    fn found(world: &World, side: usize) -> &Found {
        world.sides[side]
            .found
            .as_ref()
            .unwrap_or_else(|| panic!("side {side}: no path: {:?}", world.sides[side].failed))
    }

    /// Between two easy NATs both sides find the same direct path through
    /// both NATs, without the search, within a few round trips; the one
    /// that came second chooses; the rendezvous carried less than 1 KB.
    #[test]
    fn easy_nats_punch_directly() {
        let world = two_homes(Nat::Easy, Nat::Easy, 1);
        let (a, b) = (found(&world, 0), found(&world, 1));
        assert_eq!(world.sides[0].nat, Some(NatKind::Easy));
        let direct = PathKind::Direct {
            here: true,
            there: true,
            searched: false,
        };
        assert_eq!((&a.kind, &b.kind), (&direct, &direct));
        assert_eq!(a.peer, "198.51.100.2:6000".parse().unwrap());
        assert_eq!(b.peer, "198.51.100.1:5000".parse().unwrap());
        assert!(b.controlling && !a.controlling);
        assert!(a.search.is_none() && b.search.is_none());
        assert!(
            b.took < LAN_GRACE + Duration::from_millis(100),
            "{:?}",
            b.took
        );
        let (into, out) = world.rendezvous_bytes;
        assert!(into + out < 1024, "rendezvous carried {into} + {out} B");
    }

    /// With one hard NAT, the hard side (which knows it from two STUN
    /// servers) opens the search's sockets and the easy side probes random
    /// ports until one meets a mapping: both find the same direct path,
    /// over many seeds, and both sockets agree on it.
    #[test]
    fn one_hard_nat_is_found_by_the_search() {
        let mut took = Vec::new();
        for seed in 1..=20u64 {
            for (a, b) in [(Nat::Easy, Nat::Hard), (Nat::Hard, Nat::Easy)] {
                let world = two_homes(a, b, seed * 1000 + 3);
                let (fa, fb) = (found(&world, 0), found(&world, 1));
                let hard = if a == Nat::Hard { 0 } else { 1 };
                assert_eq!(world.sides[hard].nat, Some(NatKind::Hard));
                assert_eq!(world.sides[1 - hard].nat, Some(NatKind::Easy));
                for f in [fa, fb] {
                    assert!(
                        matches!(
                            f.kind,
                            PathKind::Direct {
                                searched: true,
                                here: true,
                                there: true
                            }
                        ),
                        "{:?}",
                        f.kind
                    );
                }
                let hard_found = if hard == 0 { fa } else { fb };
                assert_ne!(
                    hard_found.socket, 0,
                    "the hard side's path is on a search socket"
                );
                assert_eq!(hard_found.search.map(|s| s.sockets), Some(SEARCH_SOCKETS));
                // Each side's peer is the other's socket as its NAT maps it.
                let easy_found = if hard == 0 { fb } else { fa };
                assert_eq!(easy_found.peer.ip(), IpAddr::V4(world.routers[hard].public));
                took.push(fb.took);
            }
        }
        took.sort();
        assert!(took[took.len() - 1] < Duration::from_secs(10));
    }

    /// Without `--stun`, the rendezvous's own second address (announced
    /// in its STUN answers as OTHER-ADDRESS) is the second server: the
    /// hard side still knows it is hard, and the search finds the path.
    #[test]
    fn the_rendezvous_second_address_tells_a_hard_nat() {
        for seed in 1..=5u64 {
            let mut world = World::new(vec![
                Router::new([198, 51, 100, 1], [192, 168, 1], Nat::Easy, seed),
                Router::new([198, 51, 100, 2], [192, 168, 2], Nat::Hard, seed + 77),
            ]);
            world.side("192.168.1.2:5000", Some(0), 1, false);
            world.run(Duration::from_millis(300));
            world.side("192.168.2.2:6000", Some(1), 2, false);
            world.run(Duration::from_secs(15));
            assert_eq!(world.sides[0].nat, Some(NatKind::Easy));
            assert_eq!(world.sides[1].nat, Some(NatKind::Hard));
            for side in 0..2 {
                assert!(matches!(
                    found(&world, side).kind,
                    PathKind::Direct { searched: true, .. }
                ));
            }
        }
    }

    /// A second STUN server that never answers (a TURN server that is
    /// down) does not hide a hard NAT: the rendezvous's second address
    /// still tells it, and the search still finds the path.
    #[test]
    fn a_dead_second_server_does_not_hide_a_hard_nat() {
        let mut world = World::new(vec![
            Router::new([198, 51, 100, 1], [192, 168, 1], Nat::Easy, 11),
            Router::new([198, 51, 100, 2], [192, 168, 2], Nat::Hard, 12),
        ]);
        world.side_with("192.168.1.2:5000", Some(0), 1, Some("203.0.113.99:3478"));
        world.run(Duration::from_millis(300));
        world.side_with("192.168.2.2:6000", Some(1), 2, Some("203.0.113.99:3478"));
        world.run(Duration::from_secs(15));
        assert_eq!(world.sides[1].nat, Some(NatKind::Hard));
        assert!(matches!(
            found(&world, 1).kind,
            PathKind::Direct { searched: true, .. }
        ));
    }

    /// A side paired with one that has gone (its number was still held)
    /// learns it from the ICMP refusals of every address it was given,
    /// and ends at once, without a search; refusals from only some
    /// addresses end nothing.
    #[test]
    fn a_peer_that_left_is_said_from_its_refusals() {
        let mut traversal = lone(7, Instant::now());
        let gone: SocketAddr = "198.51.100.2:6000".parse().unwrap();
        let lan: SocketAddr = "192.168.2.2:6000".parse().unwrap();
        let answer = rendezvous::encode_answer(7, Status::PairedSecond, &[gone, lan]);
        let now = Instant::now();
        assert!(traversal.handle_datagram(now, 0, RENDEZVOUS.parse().unwrap(), &answer, false));
        for _ in 0..REFUSALS_TO_FAIL {
            traversal.handle_refused(gone);
        }
        assert!(!traversal.is_done(), "its LAN address has not refused");
        for _ in 0..REFUSALS_TO_FAIL {
            traversal.handle_refused(lan);
        }
        assert!(traversal.is_done());
        assert_eq!(failure(&mut traversal), Some(Failure::PeerGone));
    }

    /// Two hard NATs: no search can work (neither side's mapping can be
    /// guessed from the other), so both sides give up after the path wait
    /// with a reason, and nothing hangs.
    #[test]
    fn two_hard_nats_fail_with_a_reason() {
        let world = two_homes(Nat::Hard, Nat::Hard, 9);
        for side in 0..2 {
            let failure = world.sides[side].failed.as_ref().expect("gave up");
            assert!(
                matches!(
                    failure,
                    Failure::NoPath {
                        nat: NatKind::Hard,
                        ..
                    }
                ),
                "{failure:?}"
            );
            assert!(failure.describe().contains("--turn"));
            assert!(world.sides[side].found.is_none());
        }
    }

    /// Two hosts behind one router: the LAN addresses they report win
    /// over anything through the NAT (which has no hairpin here anyway).
    #[test]
    fn hosts_behind_one_router_take_the_lan() {
        let mut world = World::new(vec![Router::new(
            [198, 51, 100, 1],
            [192, 168, 1],
            Nat::Easy,
            5,
        )]);
        world.side("192.168.1.2:5000", Some(0), 1, true);
        world.run(Duration::from_millis(300));
        world.side("192.168.1.3:6000", Some(0), 2, true);
        world.run(Duration::from_secs(15));
        let (a, b) = (found(&world, 0), found(&world, 1));
        assert_eq!((&a.kind, &b.kind), (&PathKind::Lan, &PathKind::Lan));
        assert_eq!(a.peer, "192.168.1.3:6000".parse().unwrap());
        assert_eq!(b.peer, "192.168.1.2:5000".parse().unwrap());
    }

    /// A third side with the same number is told the number is taken and
    /// says so; a side whose rendezvous never answers gives up after
    /// [`RENDEZVOUS_SILENT`] with the number of registrations sent.
    #[test]
    fn a_taken_number_and_a_silent_rendezvous_are_said() {
        let mut world = World::new(Vec::new());
        world.side("198.51.100.1:5000", None, 1, false);
        world.side("198.51.100.2:5000", None, 2, false);
        world.side("198.51.100.3:5000", None, 3, false);
        world.run(Duration::from_secs(15));
        assert!(world.sides[0].found.is_some() && world.sides[1].found.is_some());
        assert_eq!(world.sides[2].failed, Some(Failure::Taken));
        // No NAT: the path says so.
        assert_eq!(
            world.sides[1].found.as_ref().unwrap().kind,
            PathKind::Direct {
                here: false,
                there: false,
                searched: false
            }
        );

        let start = Instant::now();
        let mut lone = lone(8, start);
        let mut now = start;
        let mut failed = None;
        for _ in 0..1000 {
            while lone.poll_transmit().is_some() {}
            while let Some(event) = lone.poll_event() {
                if let TraverseEvent::Failed(f) = event {
                    failed = Some(f);
                }
            }
            if failed.is_some() {
                break;
            }
            now = lone.poll_timeout().expect("a timer while waiting");
            lone.handle_timeout(now);
        }
        assert_eq!(
            failed,
            Some(Failure::NoRendezvous {
                tries: 10,
                stun_only: false
            })
        );
        assert_eq!(now - start, RENDEZVOUS_SILENT);
    }

    /// The worked example of PROTOCOL.md section 14.5, byte for byte.
    #[test]
    fn protocol_md_example_holds() {
        let doc = include_str!("../../docs/PROTOCOL.md");
        let hex = |label: &str| -> Vec<u8> {
            let line = doc
                .lines()
                .find(|l| l.starts_with(label))
                .unwrap_or_else(|| panic!("no {label} line in section 14.5"));
            line[label.len()..]
                .split_whitespace()
                .map(|b| u8::from_str_radix(b, 16).unwrap())
                .collect()
        };
        let mut probe = Probe {
            kind: KIND_PROBE,
            number: 7,
            flags: FLAG_NAT,
            token: [1, 2, 3, 4, 5, 6, 7, 8],
        };
        assert_eq!(encode_probe(&probe).to_vec(), hex("probe:"));
        probe.kind = KIND_ACK;
        assert_eq!(encode_probe(&probe).to_vec(), hex("ack:"));
    }

    /// Refusals from the rendezvous's address end the wait for it after
    /// [`REFUSALS_TO_FAIL`] (one could be a restart); a candidate's
    /// refusals are what probing is made of and end nothing.
    #[test]
    fn a_refusing_rendezvous_is_said_at_once() {
        let rendezvous: SocketAddr = RENDEZVOUS.parse().unwrap();
        let mut traversal = lone(7, Instant::now());
        traversal.handle_refused("198.51.100.9:1".parse().unwrap());
        for _ in 1..REFUSALS_TO_FAIL {
            traversal.handle_refused(rendezvous);
        }
        assert!(!traversal.is_done());
        traversal.handle_refused(rendezvous);
        assert!(traversal.is_done());
        assert_eq!(failure(&mut traversal), Some(Failure::RendezvousRefused));
    }

    /// Probes and acks are exactly [`PROBE_LEN`] bytes (an ack never
    /// larger than its probe), round-trip, and anything else is refused.
    #[test]
    fn probes_round_trip_and_refuse_the_rest() {
        let probe = Probe {
            kind: KIND_PROBE,
            number: 999,
            flags: FLAG_NAT | FLAG_NOMINATE,
            token: [1, 2, 3, 4, 5, 6, 7, 8],
        };
        let bytes = encode_probe(&probe);
        assert_eq!(bytes.len(), PROBE_LEN);
        assert_eq!(decode_probe(&bytes), Some(probe));
        assert!(is_traversal(&bytes));
        let mut longer = bytes.to_vec();
        longer.push(0);
        assert_eq!(decode_probe(&longer), None);
        let mut bad_flags = bytes;
        bad_flags[5] = 0x80;
        assert_eq!(decode_probe(&bad_flags), None);
        let mut other_kind = bytes;
        other_kind[2] = 7;
        assert_eq!(decode_probe(&other_kind), None);
        assert!(!is_traversal(&other_kind));
    }
}
