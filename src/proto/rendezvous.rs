//! The rendezvous service (`docs/PROTOCOL.md`, section 12) as a state
//! machine without input or output: datagrams in with their source and
//! the time, datagrams out, events out, and the next time it must be woken
//! ([`Service::poll_timeout`]).
//!
//! Two peers that share a code register under its **number** (never its
//! words) with the candidate addresses they see on their interfaces; the
//! service pairs the first two registrations of a number and tells each
//! the other's candidates: the address the service saw first, then the
//! reported ones. It also answers STUN Binding requests ([`super::stun`])
//! on the same port. It forwards nothing: every datagram it sends answers
//! one that its destination sent, and the answers to one datagram are
//! never more bytes than that datagram.
//!
//! Bounded: at most [`Limits::max_numbers`] numbers open or paired (the
//! codes have 999), each holding two registrations of at most
//! [`MAX_REPORTED`] reported candidates; at most [`Limits::max_sources`]
//! rate-limit buckets. A waiting number expires [`Limits::open_for`] after
//! its last registration, a paired one [`Limits::paired_for`] after the
//! pairing.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use super::bucket::TokenBucket;
use super::envelope::{MAGIC, VERSION};
use super::stun;

/// Kind byte of a registration (section 12).
pub const KIND_REGISTER: u8 = 10;
/// Kind byte of the service's answer.
pub const KIND_ANSWER: u8 = 11;

/// The exact length of a registration: large enough that both answers it
/// can get (a `waiting` now, the other's candidates later) fit in it.
pub const REGISTER_LEN: usize = 112;

/// The most candidates a registration may report; a registration with
/// more is malformed.
pub const MAX_REPORTED: usize = 4;

/// The highest code number (section 10.1).
pub const MAX_NUMBER: u16 = 999;

/// The fixed part of an answer: header, number, status, count.
const ANSWER_HEAD: usize = 7;

/// The largest candidate on the wire (family, port, IPv6 address).
const CANDIDATE_MAX: usize = 19;

/// The largest answer: the other's observed address and its reported
/// ones, all IPv6.
pub const ANSWER_MAX: usize = ANSWER_HEAD + (1 + MAX_REPORTED) * CANDIDATE_MAX;

// A registration's two answers (a `waiting`, then the other's candidates)
// fit in it: the padding is what makes the service unable to amplify.
const _: () = assert!(ANSWER_HEAD + ANSWER_MAX <= REGISTER_LEN);

/// What an answer says (its status byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// The number is open; nobody else has registered yet.
    Waiting,
    /// Paired; this registrant came first. The candidates are the other's.
    PairedFirst,
    /// Paired; this registrant came second. The candidates are the other's.
    PairedSecond,
    /// Two others already hold this number.
    Taken,
    /// The service holds as many numbers as it may.
    Busy,
}

impl Status {
    fn byte(self) -> u8 {
        match self {
            Status::Waiting => 1,
            Status::PairedFirst => 2,
            Status::PairedSecond => 3,
            Status::Taken => 4,
            Status::Busy => 5,
        }
    }

    fn from_byte(byte: u8) -> Option<Status> {
        Some(match byte {
            1 => Status::Waiting,
            2 => Status::PairedFirst,
            3 => Status::PairedSecond,
            4 => Status::Taken,
            5 => Status::Busy,
            _ => return None,
        })
    }
}

/// A registration, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Register {
    /// The code's number, 1 to 999.
    pub number: u16,
    /// The registrant's random id: a repeat from it (a lost answer, a new
    /// address after its NAT rebound) is not a second registrant.
    pub session: [u8; 8],
    /// The addresses it reports from its interfaces, at most
    /// [`MAX_REPORTED`].
    pub candidates: Vec<SocketAddr>,
}

/// An answer, decoded (what a client reads).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The number registered.
    pub number: u16,
    /// What the service says.
    pub status: Status,
    /// The other's candidates when paired: the address the service saw
    /// first, then the reported ones.
    pub candidates: Vec<SocketAddr>,
}

/// Why a datagram starting with `F5 01 0A` is not a registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadRegister {
    /// Not exactly [`REGISTER_LEN`] bytes.
    Length,
    /// Number 0 or above 999.
    Number,
    /// More than [`MAX_REPORTED`] candidates.
    TooManyCandidates,
    /// A candidate with an unknown family, port 0 or an unspecified,
    /// multicast or broadcast address, or running into the padding's end.
    Candidate,
    /// A non-zero byte in the padding.
    Padding,
}

impl BadRegister {
    /// The reason, as `--json` shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            BadRegister::Length => "length",
            BadRegister::Number => "number",
            BadRegister::TooManyCandidates => "too_many_candidates",
            BadRegister::Candidate => "candidate",
            BadRegister::Padding => "padding",
        }
    }
}

/// Encodes a registration (the client's side). `None` when `number` is
/// outside 1 to 999 or there are more than [`MAX_REPORTED`] candidates.
pub fn encode_register(
    number: u16,
    session: [u8; 8],
    candidates: &[SocketAddr],
) -> Option<Vec<u8>> {
    if !(1..=MAX_NUMBER).contains(&number) || candidates.len() > MAX_REPORTED {
        return None;
    }
    let mut bytes = Vec::with_capacity(REGISTER_LEN);
    bytes.extend_from_slice(&[MAGIC, VERSION, KIND_REGISTER]);
    bytes.extend_from_slice(&number.to_be_bytes());
    bytes.extend_from_slice(&session);
    bytes.push(candidates.len() as u8);
    for candidate in candidates {
        push_candidate(&mut bytes, *candidate);
    }
    bytes.resize(REGISTER_LEN, 0);
    Some(bytes)
}

/// Decodes a registration: the whole datagram, header included.
pub fn decode_register(datagram: &[u8]) -> Result<Register, BadRegister> {
    if datagram.len() != REGISTER_LEN {
        return Err(BadRegister::Length);
    }
    let number = u16::from_be_bytes([datagram[3], datagram[4]]);
    if !(1..=MAX_NUMBER).contains(&number) {
        return Err(BadRegister::Number);
    }
    let mut session = [0u8; 8];
    session.copy_from_slice(&datagram[5..13]);
    let count = usize::from(datagram[13]);
    if count > MAX_REPORTED {
        return Err(BadRegister::TooManyCandidates);
    }
    let mut at = 14;
    let mut candidates = Vec::with_capacity(count);
    for _ in 0..count {
        let (candidate, len) = read_candidate(&datagram[at..]).ok_or(BadRegister::Candidate)?;
        if !usable(candidate) {
            return Err(BadRegister::Candidate);
        }
        candidates.push(candidate);
        at += len;
    }
    if datagram[at..].iter().any(|&b| b != 0) {
        return Err(BadRegister::Padding);
    }
    Ok(Register {
        number,
        session,
        candidates,
    })
}

/// Encodes an answer.
pub fn encode_answer(number: u16, status: Status, candidates: &[SocketAddr]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(ANSWER_HEAD + candidates.len() * CANDIDATE_MAX);
    bytes.extend_from_slice(&[MAGIC, VERSION, KIND_ANSWER]);
    bytes.extend_from_slice(&number.to_be_bytes());
    bytes.push(status.byte());
    bytes.push(candidates.len() as u8);
    for candidate in candidates {
        push_candidate(&mut bytes, *candidate);
    }
    bytes
}

/// Decodes an answer (the client's side); `None` when it is not one.
pub fn decode_answer(datagram: &[u8]) -> Option<Answer> {
    let [
        MAGIC,
        VERSION,
        KIND_ANSWER,
        n0,
        n1,
        status,
        count,
        rest @ ..,
    ] = datagram
    else {
        return None;
    };
    let status = Status::from_byte(*status)?;
    let mut candidates = Vec::new();
    let mut at = 0;
    for _ in 0..*count {
        let (candidate, len) = read_candidate(&rest[at..])?;
        candidates.push(candidate);
        at += len;
    }
    (at == rest.len()).then_some(Answer {
        number: u16::from_be_bytes([*n0, *n1]),
        status,
        candidates,
    })
}

/// A candidate on the wire: family `4` or `6`, port (2 bytes, big
/// endian), address (4 or 16 bytes). An IPv4-mapped IPv6 address (a
/// dual-stack socket's view of an IPv4 peer) is written as the IPv4 one.
fn push_candidate(bytes: &mut Vec<u8>, candidate: SocketAddr) {
    let ip = match candidate.ip() {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    match ip {
        IpAddr::V4(v4) => {
            bytes.push(4);
            bytes.extend_from_slice(&candidate.port().to_be_bytes());
            bytes.extend_from_slice(&v4.octets());
        }
        IpAddr::V6(v6) => {
            bytes.push(6);
            bytes.extend_from_slice(&candidate.port().to_be_bytes());
            bytes.extend_from_slice(&v6.octets());
        }
    }
}

/// Reads one candidate and its length on the wire.
fn read_candidate(bytes: &[u8]) -> Option<(SocketAddr, usize)> {
    let (&family, rest) = bytes.split_first()?;
    let port = u16::from_be_bytes([*rest.first()?, *rest.get(1)?]);
    match family {
        4 => {
            let ip: [u8; 4] = rest.get(2..6)?.try_into().ok()?;
            Some((SocketAddr::new(Ipv4Addr::from(ip).into(), port), 7))
        }
        6 => {
            let ip: [u8; 16] = rest.get(2..18)?.try_into().ok()?;
            Some((SocketAddr::new(Ipv6Addr::from(ip).into(), port), 19))
        }
        _ => None,
    }
}

/// Whether a reported candidate could be an address to send to.
fn usable(candidate: SocketAddr) -> bool {
    let ip = candidate.ip();
    candidate.port() != 0
        && !ip.is_unspecified()
        && !ip.is_multicast()
        && ip != IpAddr::V4(Ipv4Addr::BROADCAST)
}

/// Whose bucket a source spends from: an IPv4 address (an IPv4-mapped
/// IPv6 one as the IPv4 address it is), or an IPv6 address's /64, which
/// one host or home usually holds whole: a bucket per IPv6 address would
/// let it have as many buckets as it likes.
fn bucket_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut octets = v6.octets();
                octets[8..].fill(0);
                IpAddr::V6(Ipv6Addr::from(octets))
            }
        },
    }
}

/// The service's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Numbers open (waiting) or paired at once; beyond it a registration
    /// of a new number is answered `busy`.
    pub max_numbers: usize,
    /// Sources (IP addresses) with a rate-limit bucket at once; a new
    /// source beyond it is not answered until an idle bucket is freed.
    pub max_sources: usize,
    /// Datagrams a source may send at once (the bucket's size).
    pub burst: u32,
    /// Datagrams a source may send per second, on average.
    pub per_second: u32,
    /// How long a waiting number stays open after its last registration.
    pub open_for: Duration,
    /// How long a pairing is kept after it is made, so that a registrant
    /// whose answer was lost gets it again.
    pub paired_for: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_numbers: usize::from(MAX_NUMBER),
            max_sources: 4096,
            burst: 20,
            per_second: 10,
            // A waiting peer registers every second: ten missed in a row
            // mean it has gone, and a late-comer must not be paired with it.
            open_for: Duration::from_secs(10),
            paired_for: Duration::from_secs(30),
        }
    }
}

/// A datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Where to.
    pub to: SocketAddr,
    /// The bytes.
    pub bytes: Vec<u8>,
    /// Send it from the service's second address ([`Service::with_other`]):
    /// it answers a datagram that came there.
    pub from_other: bool,
}

/// Why a datagram got no answer or a refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A third registrant for this paired number (answered `taken`).
    Taken(u16),
    /// No room for this new number (answered `busy`).
    Busy(u16),
    /// A registration that is not well formed (not answered).
    Malformed(BadRegister),
    /// Bytes that start like STUN but are not a message (not answered).
    NotStun(stun::NotStun),
    /// A STUN Binding request too small for its response (not answered).
    StunTooSmall,
    /// A STUN message other than a Binding request (not answered).
    StunOther,
    /// Anything else: a chat envelope, an answer, plain bytes (not
    /// answered; the service forwards nothing).
    Other,
}

impl Refusal {
    /// The reason, as `--json` shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Taken(_) => "taken",
            Refusal::Busy(_) => "busy",
            Refusal::Malformed(bad) => bad.as_str(),
            Refusal::NotStun(_) => "not_stun",
            Refusal::StunTooSmall => "stun_too_small",
            Refusal::StunOther => "stun_other",
            Refusal::Other => "not_rendezvous",
        }
    }
}

/// What the service reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A number was opened by its first registration.
    Opened {
        /// The number.
        number: u16,
        /// Where the registration came from.
        source: SocketAddr,
    },
    /// A number's second registration made a pair.
    Paired {
        /// The number.
        number: u16,
        /// The first registrant's address (as last seen).
        first: SocketAddr,
        /// The second registrant's address.
        second: SocketAddr,
        /// How long the number was open before the pair.
        waited: Duration,
    },
    /// A waiting number expired without its pair.
    Expired {
        /// The number.
        number: u16,
        /// The registrant that waited.
        source: SocketAddr,
        /// How long it was open.
        waited: Duration,
    },
    /// A STUN Binding request answered (success, or 420).
    StunAnswered {
        /// The requester.
        source: SocketAddr,
        /// The request's length.
        len: usize,
        /// The response's length.
        answer_len: usize,
        /// 0 for a success, else the error code (420).
        error: u16,
    },
    /// A datagram refused or left unanswered.
    Refused {
        /// Its source.
        source: SocketAddr,
        /// Its length.
        len: usize,
        /// Why.
        reason: Refusal,
    },
    /// A source ran out of tokens: what it sends is dropped, unanswered
    /// and uncounted in events (counted in [`Stats::rate_limited`]) until
    /// its bucket refills. Reported once per run of drops.
    RateLimited {
        /// The source's IPv4 address, or its IPv6 address's /64 (the
        /// rest zeros): what the bucket is kept for.
        source: IpAddr,
    },
}

/// What the service counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Datagrams received.
    pub received: u64,
    /// Their bytes.
    pub bytes_in: u64,
    /// Datagrams sent.
    pub sent: u64,
    /// Their bytes.
    pub bytes_out: u64,
    /// Registrations accepted (repeats included).
    pub registrations: u64,
    /// Pairs made.
    pub pairings: u64,
    /// Numbers that expired without a pair.
    pub expired: u64,
    /// STUN Binding requests answered.
    pub stun_answered: u64,
    /// Datagrams refused or unanswered, rate limit aside.
    pub refused: u64,
    /// Datagrams dropped by the rate limit (or for want of a bucket).
    pub rate_limited: u64,
}

/// One registrant of a number.
#[derive(Debug, Clone)]
struct Registrant {
    session: [u8; 8],
    /// Where its last registration came from: the "observed" candidate,
    /// and where it is answered.
    source: SocketAddr,
    reported: Vec<SocketAddr>,
}

impl Registrant {
    /// Its candidates as the other is told them: observed, then reported
    /// (without a repeat of the observed one).
    fn candidates(&self) -> Vec<SocketAddr> {
        let mut all = Vec::with_capacity(1 + self.reported.len());
        all.push(self.source);
        all.extend(self.reported.iter().filter(|&&c| c != self.source));
        all
    }
}

/// A number's state.
#[derive(Debug, Clone)]
enum Slot {
    Waiting {
        first: Registrant,
        opened: Instant,
        last: Instant,
    },
    Paired {
        first: Registrant,
        second: Registrant,
        at: Instant,
    },
}

impl Slot {
    fn expires(&self, limits: &Limits) -> Instant {
        match self {
            Slot::Waiting { last, .. } => *last + limits.open_for,
            Slot::Paired { at, .. } => *at + limits.paired_for,
        }
    }
}

/// A source's token bucket.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: TokenBucket,
    /// Whether its last datagram was dropped (so that
    /// [`Event::RateLimited`] is reported once per run of drops).
    limited: bool,
}

/// The rendezvous service.
#[derive(Debug)]
pub struct Service {
    limits: Limits,
    numbers: HashMap<u16, Slot>,
    sources: HashMap<IpAddr, Bucket>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    stats: Stats,
    /// The second address it answers STUN at, announced in responses.
    other: Option<SocketAddr>,
}

impl Service {
    /// A service with these limits and nothing open.
    pub fn new(limits: Limits) -> Service {
        Service {
            limits,
            numbers: HashMap::new(),
            sources: HashMap::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: Stats::default(),
            other: None,
        }
    }

    /// The service also answers STUN at `other` (its second address):
    /// its Binding responses say so (OTHER-ADDRESS, RFC 5780), so that a
    /// peer can ask both and see whether its NAT maps per destination.
    pub fn with_other(mut self, other: SocketAddr) -> Service {
        self.other = Some(other);
        self
    }

    /// Takes one datagram that came to the second address: a STUN Binding
    /// request is answered from there (under the same rate limit), all
    /// else is refused.
    pub fn handle_other(&mut self, now: Instant, source: SocketAddr, datagram: &[u8]) {
        self.stats.received += 1;
        self.stats.bytes_in += datagram.len() as u64;
        if !self.take_token(now, bucket_key(source.ip())) {
            self.stats.rate_limited += 1;
            return;
        }
        if !matches!(datagram.first(), Some(0 | 1)) {
            return self.refuse(source, datagram.len(), Refusal::Other);
        }
        let before = self.transmits.len();
        let other = self.other.take();
        self.stun(source, datagram);
        self.other = other;
        for transmit in self.transmits.iter_mut().skip(before) {
            transmit.from_other = true;
        }
    }

    /// Takes one datagram from `source`, received at `now`.
    pub fn handle(&mut self, now: Instant, source: SocketAddr, datagram: &[u8]) {
        self.stats.received += 1;
        self.stats.bytes_in += datagram.len() as u64;
        self.expire(now);
        if !self.take_token(now, bucket_key(source.ip())) {
            self.stats.rate_limited += 1;
            return;
        }
        match datagram {
            [MAGIC, VERSION, KIND_REGISTER, ..] => match decode_register(datagram) {
                Ok(register) => self.register(now, source, register),
                Err(bad) => self.refuse(source, datagram.len(), Refusal::Malformed(bad)),
            },
            [0 | 1, ..] => self.stun(source, datagram),
            _ => self.refuse(source, datagram.len(), Refusal::Other),
        }
    }

    /// Expires what is due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.expire(now);
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        let transmit = self.transmits.pop_front()?;
        self.stats.sent += 1;
        self.stats.bytes_out += transmit.bytes.len() as u64;
        Some(transmit)
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When the next number expires, if any is held.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.numbers
            .values()
            .map(|slot| slot.expires(&self.limits))
            .min()
    }

    /// What was counted so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Numbers held now (waiting or paired).
    pub fn held(&self) -> usize {
        self.numbers.len()
    }

    /// Sources with a rate-limit bucket now.
    pub fn sources(&self) -> usize {
        self.sources.len()
    }

    /// Numbers whose time is up go; a waiting one is reported.
    fn expire(&mut self, now: Instant) {
        let limits = self.limits;
        let events = &mut self.events;
        let stats = &mut self.stats;
        self.numbers.retain(|&number, slot| {
            if slot.expires(&limits) > now {
                return true;
            }
            if let Slot::Waiting { first, opened, .. } = slot {
                stats.expired += 1;
                events.push_back(Event::Expired {
                    number,
                    source: first.source,
                    waited: now.saturating_duration_since(*opened),
                });
            }
            false
        });
    }

    /// Spends one of `ip`'s tokens; false when it has none (or there is no
    /// room for its bucket).
    fn take_token(&mut self, now: Instant, ip: IpAddr) -> bool {
        let limits = self.limits;
        if !self.sources.contains_key(&ip) && self.sources.len() >= limits.max_sources {
            // Buckets that have refilled remember nothing a new one would
            // not: free them.
            self.sources.retain(|_, bucket| !bucket.tokens.is_full(now));
            if self.sources.len() >= limits.max_sources {
                return false;
            }
        }
        let bucket = self.sources.entry(ip).or_insert_with(|| Bucket {
            tokens: TokenBucket::full(f64::from(limits.per_second), f64::from(limits.burst), now),
            limited: false,
        });
        if bucket.tokens.take(now) {
            bucket.limited = false;
            true
        } else {
            if !bucket.limited {
                bucket.limited = true;
                self.events.push_back(Event::RateLimited { source: ip });
            }
            false
        }
    }

    fn refuse(&mut self, source: SocketAddr, len: usize, reason: Refusal) {
        self.stats.refused += 1;
        self.events.push_back(Event::Refused {
            source,
            len,
            reason,
        });
    }

    fn send(&mut self, to: SocketAddr, bytes: Vec<u8>) {
        self.transmits.push_back(Transmit {
            to,
            bytes,
            from_other: false,
        });
    }

    /// A well-formed registration (section 12.3).
    fn register(&mut self, now: Instant, source: SocketAddr, register: Register) {
        let Register {
            number,
            session,
            candidates,
        } = register;
        let me = Registrant {
            session,
            source,
            reported: candidates,
        };
        if !self.numbers.contains_key(&number) && self.numbers.len() >= self.limits.max_numbers {
            self.send(source, encode_answer(number, Status::Busy, &[]));
            self.refuse(source, REGISTER_LEN, Refusal::Busy(number));
            return;
        }
        match self.numbers.get_mut(&number) {
            None => {
                self.numbers.insert(
                    number,
                    Slot::Waiting {
                        first: me,
                        opened: now,
                        last: now,
                    },
                );
                self.events.push_back(Event::Opened { number, source });
                self.send(source, encode_answer(number, Status::Waiting, &[]));
            }
            Some(Slot::Waiting { first, last, .. }) if first.session == session => {
                *first = me;
                *last = now;
                self.send(source, encode_answer(number, Status::Waiting, &[]));
            }
            Some(Slot::Waiting { .. }) => {
                let Some(Slot::Waiting { first, opened, .. }) = self.numbers.remove(&number) else {
                    unreachable!("matched as waiting just above");
                };
                // The first registrant's last registration has had only
                // a `waiting` (7 bytes) of its 112: this is the rest of
                // its answer.
                self.send(
                    first.source,
                    encode_answer(number, Status::PairedFirst, &me.candidates()),
                );
                self.send(
                    source,
                    encode_answer(number, Status::PairedSecond, &first.candidates()),
                );
                self.stats.pairings += 1;
                self.events.push_back(Event::Paired {
                    number,
                    first: first.source,
                    second: source,
                    waited: now.saturating_duration_since(opened),
                });
                self.numbers.insert(
                    number,
                    Slot::Paired {
                        first,
                        second: me,
                        at: now,
                    },
                );
            }
            Some(Slot::Paired { first, second, .. }) => {
                // A repeat from either (its answer was lost) gets it again;
                // anyone else is a third.
                let answer = if first.session == session {
                    encode_answer(number, Status::PairedFirst, &second.candidates())
                } else if second.session == session {
                    encode_answer(number, Status::PairedSecond, &first.candidates())
                } else {
                    self.send(source, encode_answer(number, Status::Taken, &[]));
                    self.refuse(source, REGISTER_LEN, Refusal::Taken(number));
                    return;
                };
                self.send(source, answer);
            }
        }
        self.stats.registrations += 1;
    }

    /// A datagram whose first byte is 0x00 or 0x01: STUN, or nothing.
    fn stun(&mut self, source: SocketAddr, datagram: &[u8]) {
        let message = match stun::decode(datagram) {
            Ok(message) => message,
            Err(not) => return self.refuse(source, datagram.len(), Refusal::NotStun(not)),
        };
        if message.kind != stun::BINDING_REQUEST {
            return self.refuse(source, datagram.len(), Refusal::StunOther);
        }
        let (answer, error) = if message.unknown_required.is_empty() {
            (
                stun::binding_success_other(
                    &message.transaction,
                    source,
                    self.other,
                    datagram.len(),
                ),
                0,
            )
        } else {
            (
                stun::unknown_attributes(
                    &message.transaction,
                    &message.unknown_required,
                    datagram.len(),
                ),
                420,
            )
        };
        match answer {
            Some(bytes) => {
                self.stats.stun_answered += 1;
                self.events.push_back(Event::StunAnswered {
                    source,
                    len: datagram.len(),
                    answer_len: bytes.len(),
                    error,
                });
                self.send(source, bytes);
            }
            None => self.refuse(source, datagram.len(), Refusal::StunTooSmall),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    fn register(number: u16, session: u8, candidates: &[&str]) -> Vec<u8> {
        let candidates: Vec<SocketAddr> = candidates.iter().map(|c| addr(c)).collect();
        encode_register(number, [session; 8], &candidates).unwrap()
    }

    /// Drains the transmits, each decoded as an answer.
    fn answers(service: &mut Service) -> Vec<(SocketAddr, Answer)> {
        std::iter::from_fn(|| service.poll_transmit())
            .map(|t| (t.to, decode_answer(&t.bytes).expect("an answer")))
            .collect()
    }

    fn events(service: &mut Service) -> Vec<Event> {
        std::iter::from_fn(|| service.poll_event()).collect()
    }

    const A: &str = "198.51.100.1:4000";
    const B: &str = "203.0.113.7:5000";
    const C: &str = "192.0.2.9:6000";

    #[test]
    fn the_first_two_registrations_pair() {
        let mut service = Service::new(Limits::default());
        let t0 = Instant::now();
        service.handle(t0, addr(A), &register(7, 1, &["10.0.0.2:4000"]));
        assert_eq!(
            answers(&mut service),
            [(
                addr(A),
                Answer {
                    number: 7,
                    status: Status::Waiting,
                    candidates: vec![]
                }
            )]
        );
        let t1 = t0 + Duration::from_secs(3);
        service.handle(
            t1,
            addr(B),
            &register(7, 2, &["192.168.1.5:5000", "[fd00::5]:5000"]),
        );
        let got = answers(&mut service);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].0, addr(A));
        assert_eq!(got[0].1.status, Status::PairedFirst);
        assert_eq!(
            got[0].1.candidates,
            [addr(B), addr("192.168.1.5:5000"), addr("[fd00::5]:5000")]
        );
        assert_eq!(got[1].0, addr(B));
        assert_eq!(got[1].1.status, Status::PairedSecond);
        assert_eq!(got[1].1.candidates, [addr(A), addr("10.0.0.2:4000")]);
        assert!(events(&mut service).contains(&Event::Paired {
            number: 7,
            first: addr(A),
            second: addr(B),
            waited: Duration::from_secs(3),
        }));
        assert_eq!(service.stats().pairings, 1);
    }

    /// A registrant's repeat is not a second registrant, and after the
    /// pairing a repeat (a lost answer) is answered again; a third session
    /// is answered `taken`.
    #[test]
    fn repeats_are_not_pairs_and_a_third_is_taken() {
        let mut service = Service::new(Limits::default());
        let t = Instant::now();
        service.handle(t, addr(A), &register(9, 1, &[]));
        // The same session from a new port (its NAT rebound): still waiting.
        service.handle(t, addr("198.51.100.1:4001"), &register(9, 1, &[]));
        let got = answers(&mut service);
        assert!(
            got.iter().all(|(_, a)| a.status == Status::Waiting),
            "{got:?}"
        );
        service.handle(t, addr(B), &register(9, 2, &[]));
        let got = answers(&mut service);
        // The first is told at the address it registered from last.
        assert_eq!(got[0].0, addr("198.51.100.1:4001"));
        service.handle(t, addr(B), &register(9, 2, &[]));
        let got = answers(&mut service);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].1.status, Status::PairedSecond);
        assert_eq!(got[0].1.candidates, [addr("198.51.100.1:4001")]);
        service.handle(t, addr(C), &register(9, 3, &["10.9.9.9:1"]));
        let got = answers(&mut service);
        assert_eq!(
            got,
            [(
                addr(C),
                Answer {
                    number: 9,
                    status: Status::Taken,
                    candidates: vec![]
                }
            )]
        );
        assert_eq!(service.stats().pairings, 1);
    }

    #[test]
    fn numbers_expire() {
        let limits = Limits::default();
        let mut service = Service::new(limits);
        let t0 = Instant::now();
        service.handle(t0, addr(A), &register(5, 1, &[]));
        // A refresh pushes the expiry back.
        let t1 = t0 + limits.open_for / 2;
        service.handle(t1, addr(A), &register(5, 1, &[]));
        assert_eq!(service.poll_timeout(), Some(t1 + limits.open_for));
        service.handle_timeout(t1 + limits.open_for - Duration::from_millis(1));
        assert_eq!(service.held(), 1);
        service.handle_timeout(t1 + limits.open_for);
        assert_eq!(service.held(), 0);
        assert_eq!(service.poll_timeout(), None);
        assert!(events(&mut service).contains(&Event::Expired {
            number: 5,
            source: addr(A),
            waited: limits.open_for / 2 + limits.open_for,
        }));
        // Expired: the next registration opens it anew.
        service.handle(t1 + limits.open_for, addr(B), &register(5, 2, &[]));
        assert_eq!(
            answers(&mut service).pop().unwrap().1.status,
            Status::Waiting
        );
        // A pairing is kept for paired_for, then the number is free.
        let t2 = t1 + limits.open_for;
        service.handle(t2, addr(C), &register(5, 3, &[]));
        assert_eq!(service.poll_timeout(), Some(t2 + limits.paired_for));
        service.handle_timeout(t2 + limits.paired_for);
        assert_eq!(service.held(), 0);
        assert_eq!(service.stats().expired, 1);
    }

    #[test]
    fn at_most_max_numbers() {
        let limits = Limits {
            max_numbers: 3,
            ..Limits::default()
        };
        let mut service = Service::new(limits);
        let t = Instant::now();
        for number in 1..=4 {
            // One source per number: the rate limit is not what is tested.
            let source = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, number as u8)), 1);
            service.handle(t, source, &register(number, 1, &[]));
        }
        let statuses: Vec<Status> = answers(&mut service)
            .iter()
            .map(|(_, a)| a.status)
            .collect();
        assert_eq!(
            statuses,
            [
                Status::Waiting,
                Status::Waiting,
                Status::Waiting,
                Status::Busy
            ]
        );
        assert_eq!(service.held(), 3);
    }

    #[test]
    fn a_flood_is_rate_limited() {
        let limits = Limits::default();
        let mut service = Service::new(limits);
        let t0 = Instant::now();
        for _ in 0..100 {
            service.handle(t0, addr(A), &register(3, 1, &[]));
        }
        assert_eq!(answers(&mut service).len(), limits.burst as usize);
        assert_eq!(service.stats().rate_limited, 100 - u64::from(limits.burst));
        let limited: Vec<Event> = events(&mut service)
            .into_iter()
            .filter(|e| matches!(e, Event::RateLimited { .. }))
            .collect();
        assert_eq!(limited.len(), 1, "reported once per run of drops");
        // Another source is not affected.
        service.handle(t0, addr(B), &register(4, 2, &[]));
        assert_eq!(answers(&mut service).len(), 1);
        // One second refills per_second tokens.
        let t1 = t0 + Duration::from_secs(1);
        for _ in 0..100 {
            service.handle(t1, addr(A), &register(3, 1, &[]));
        }
        assert_eq!(answers(&mut service).len(), limits.per_second as usize);
    }

    /// The addresses of one IPv6 /64 share a bucket; another /64 has its
    /// own, and an IPv4-mapped source is its IPv4 address.
    #[test]
    fn an_ipv6_64_is_one_source() {
        let limits = Limits::default();
        let mut service = Service::new(limits);
        let t = Instant::now();
        for host in 0..100u16 {
            let source = SocketAddr::new(
                IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, host)),
                4000,
            );
            service.handle(t, source, &register(3, 1, &[]));
        }
        assert_eq!(answers(&mut service).len(), limits.burst as usize);
        service.handle(t, addr("[2001:db8:0:2::1]:4000"), &register(4, 2, &[]));
        assert_eq!(answers(&mut service).len(), 1);
        for _ in 0..limits.burst {
            service.handle(t, addr("192.0.2.1:1"), &register(5, 3, &[]));
        }
        service.handle(t, addr("[::ffff:192.0.2.1]:2"), &register(5, 3, &[]));
        assert_eq!(answers(&mut service).len(), limits.burst as usize);
        assert!(events(&mut service).contains(&Event::RateLimited {
            source: "2001:db8:0:1::".parse().unwrap()
        }));
    }

    #[test]
    fn at_most_max_sources() {
        let limits = Limits {
            max_sources: 2,
            ..Limits::default()
        };
        let mut service = Service::new(limits);
        let t0 = Instant::now();
        service.handle(t0, addr(A), &register(1, 1, &[]));
        service.handle(t0, addr(B), &register(2, 2, &[]));
        service.handle(t0, addr(C), &register(3, 3, &[]));
        assert_eq!(answers(&mut service).len(), 2);
        assert_eq!(service.sources(), 2);
        // Once A's and B's buckets refill, they are forgotten for C.
        service.handle(t0 + Duration::from_secs(1), addr(C), &register(3, 3, &[]));
        assert_eq!(answers(&mut service).len(), 1);
        assert_eq!(service.sources(), 1);
    }

    /// Every answer, and the two answers one registration can get, fit in
    /// the registration: checked for the largest answer there is.
    #[test]
    fn answers_never_exceed_requests() {
        let mut service = Service::new(Limits::default());
        let t = Instant::now();
        let v6 = [
            "[2001:db8::1]:1",
            "[2001:db8::2]:2",
            "[2001:db8::3]:3",
            "[2001:db8::4]:4",
        ];
        service.handle(t, addr("[2001:db8::a]:9"), &register(11, 1, &v6));
        service.handle(t, addr("[2001:db8::b]:9"), &register(11, 2, &v6));
        let mut per_destination: HashMap<SocketAddr, usize> = HashMap::new();
        while let Some(transmit) = service.poll_transmit() {
            *per_destination.entry(transmit.to).or_default() += transmit.bytes.len();
        }
        // Each destination sent one registration of REGISTER_LEN bytes.
        assert_eq!(per_destination.len(), 2);
        for (to, bytes) in per_destination {
            assert!(bytes <= REGISTER_LEN, "{to}: {bytes}");
        }
        let stats = service.stats();
        assert!(stats.bytes_out <= stats.bytes_in);
    }

    #[test]
    fn malformed_registrations_are_not_answered() {
        let mut service = Service::new(Limits::default());
        let t = Instant::now();
        let good = register(12, 1, &["10.0.0.1:1"]);
        let mut cases: Vec<(Vec<u8>, BadRegister)> = vec![
            (good[..good.len() - 1].to_vec(), BadRegister::Length),
            ([&good[..], &[0]].concat(), BadRegister::Length),
        ];
        let mut zero = good.clone();
        zero[3..5].copy_from_slice(&0u16.to_be_bytes());
        cases.push((zero, BadRegister::Number));
        let mut big = good.clone();
        big[3..5].copy_from_slice(&1000u16.to_be_bytes());
        cases.push((big, BadRegister::Number));
        let mut many = good.clone();
        many[13] = 5;
        cases.push((many, BadRegister::TooManyCandidates));
        let mut family = good.clone();
        family[14] = 5;
        cases.push((family, BadRegister::Candidate));
        let mut port0 = good.clone();
        port0[15..17].copy_from_slice(&[0, 0]);
        cases.push((port0, BadRegister::Candidate));
        let mut smuggled = good.clone();
        smuggled[REGISTER_LEN - 1] = b'x';
        cases.push((smuggled, BadRegister::Padding));
        for (bytes, why) in cases {
            assert_eq!(decode_register(&bytes), Err(why));
            service.handle(t, addr(A), &bytes);
            assert_eq!(service.poll_transmit(), None, "{why:?}");
        }
        // Five candidates cannot even be encoded.
        let five = [addr("10.0.0.1:1"); 5];
        assert_eq!(encode_register(1, [0; 8], &five), None);
    }

    /// Nothing but registrations and STUN Binding requests is answered:
    /// chat envelopes, answers, plain text.
    #[test]
    fn nothing_else_is_answered_or_forwarded() {
        let mut service = Service::new(Limits::default());
        let t = Instant::now();
        for datagram in [
            &b"hello"[..],
            &[0xF5, 1, 1, 1, 2, 3, 4, 5, 6, 7, 8, 1, 1, 0, 2, b'h', b'i'][..],
            &encode_answer(7, Status::Waiting, &[])[..],
            &[][..],
            &[0x00, 0x01, 0x00][..],
        ] {
            service.handle(t, addr(A), datagram);
        }
        assert_eq!(service.poll_transmit(), None);
        assert_eq!(service.stats().refused, 5);
    }

    #[test]
    fn stun_binding_is_answered_when_it_fits() {
        let mut service = Service::new(Limits::default());
        let t = Instant::now();
        let transaction = [7u8; 12];
        // The bare 20-byte request (what most clients send) is too small
        // for a 32-byte answer.
        let bare = [
            &stun::BINDING_REQUEST.to_be_bytes()[..],
            &[0, 0],
            &stun::MAGIC_COOKIE.to_be_bytes(),
            &transaction,
        ]
        .concat();
        service.handle(t, addr(A), &bare);
        assert_eq!(service.poll_transmit(), None);
        assert!(events(&mut service).contains(&Event::Refused {
            source: addr(A),
            len: 20,
            reason: Refusal::StunTooSmall
        }));
        let padded = stun::binding_request(&transaction, 40);
        service.handle(t, addr(A), &padded);
        let answer = service.poll_transmit().unwrap();
        assert_eq!(answer.to, addr(A));
        assert!(answer.bytes.len() <= padded.len());
        let message = stun::decode(&answer.bytes).unwrap();
        assert_eq!(message.kind, stun::BINDING_SUCCESS);
        assert_eq!(message.transaction, transaction);
        assert_eq!(message.mapped, Some(addr(A)));
        // IPv6 needs 44 bytes (52 with FINGERPRINT).
        let padded = stun::binding_request(&transaction, 44);
        service.handle(t, addr(B), &padded);
        service.handle(t, addr("[2001:db8::9]:3478"), &padded);
        let answer = service.poll_transmit().unwrap();
        assert_eq!(stun::decode(&answer.bytes).unwrap().mapped, Some(addr(B)));
        let answer = service.poll_transmit().unwrap();
        assert_eq!(answer.bytes.len(), 44);
        assert_eq!(
            stun::decode(&answer.bytes).unwrap().mapped,
            Some(addr("[2001:db8::9]:3478"))
        );
    }

    /// An unknown comprehension-required attribute gets a 420 that fits.
    #[test]
    fn unknown_required_attribute_gets_420() {
        let mut service = Service::new(Limits::default());
        let t = Instant::now();
        let transaction = [9u8; 12];
        // The header, an attribute 0x7777 (comprehension-required,
        // unknown to the service), and a PADDING (understood) that makes
        // room for the error response: 20 + 8 + 40 bytes.
        let mut request = [
            &stun::BINDING_REQUEST.to_be_bytes()[..],
            &48u16.to_be_bytes(),
            &stun::MAGIC_COOKIE.to_be_bytes(),
            &transaction,
            &[0x77, 0x77, 0, 4, 1, 2, 3, 4],
            &[0x00, 0x26, 0, 36],
        ]
        .concat();
        request.resize(68, 0);
        assert_eq!(stun::decode(&request).unwrap().unknown_required, [0x7777]);
        service.handle(t, addr(A), &request);
        let answer = service.poll_transmit().expect("a 420");
        assert!(answer.bytes.len() <= request.len());
        assert_eq!(stun::error_code(&answer.bytes), Some(420));
        assert_eq!(
            stun::decode(&answer.bytes).unwrap().kind,
            stun::BINDING_ERROR
        );
    }

    /// Lowercase hex, bytes separated by spaces, 16 to a line (as
    /// PROTOCOL.md writes them).
    fn hex(bytes: &[u8]) -> String {
        bytes
            .chunks(16)
            .map(|line| {
                let bytes: Vec<String> = line.iter().map(|b| format!("{b:02x}")).collect();
                bytes.join(" ")
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The worked examples of PROTOCOL.md section 12.7, computed here by
    /// the service itself.
    fn examples() -> Vec<(&'static str, Vec<u8>)> {
        let alice_session = [0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8];
        let bob_session = [0xb1, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8];
        let alice_register =
            encode_register(7, alice_session, &[addr("192.168.1.20:40000")]).unwrap();
        let bob_register = encode_register(
            7,
            bob_session,
            &[addr("10.0.0.5:50000"), addr("[fd00::5]:50000")],
        )
        .unwrap();
        let (alice_seen, bob_seen) = (addr("198.51.100.1:40000"), addr("203.0.113.7:61000"));
        let mut service = Service::new(Limits::default());
        let t = Instant::now();
        service.handle(t, alice_seen, &alice_register);
        let waiting = service.poll_transmit().unwrap();
        service.handle(t + Duration::from_secs(2), bob_seen, &bob_register);
        let to_alice = service.poll_transmit().unwrap();
        let to_bob = service.poll_transmit().unwrap();
        assert_eq!(
            (waiting.to, to_alice.to, to_bob.to),
            (alice_seen, alice_seen, bob_seen)
        );
        let third = encode_register(7, [0xc1; 8], &[]).unwrap();
        service.handle(t, addr("192.0.2.9:6000"), &third);
        let taken = service.poll_transmit().unwrap();
        let transaction = [
            0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,
        ];
        let stun_request = stun::binding_request(&transaction, 40);
        service.handle(t, alice_seen, &stun_request);
        let stun_response = service.poll_transmit().unwrap();
        vec![
            ("alice's registration", alice_register),
            ("bob's registration", bob_register),
            ("the answer to alice's registration", waiting.bytes),
            ("the answer to bob's registration", to_bob.bytes),
            (
                "the rest of the answer to alice's registration",
                to_alice.bytes,
            ),
            ("the answer to carol's registration", taken.bytes),
            ("a STUN Binding request padded to 40 bytes", stun_request),
            ("its response", stun_response.bytes),
        ]
    }

    /// A service with a second address announces it in its Binding
    /// responses (when the request has room), answers STUN there from
    /// there under the same rate limit, and refuses anything else there.
    #[test]
    fn the_second_address_answers_stun_only() {
        let other: SocketAddr = "203.0.113.10:3479".parse().unwrap();
        let mut service = Service::new(Limits::default()).with_other(other);
        let now = Instant::now();
        let source: SocketAddr = "198.51.100.1:40000".parse().unwrap();
        let transaction = [3u8; 12];
        service.handle(now, source, &stun::binding_request(&transaction, 80));
        let answer = service.poll_transmit().unwrap();
        assert!(!answer.from_other);
        let message = stun::decode(&answer.bytes).unwrap();
        assert_eq!((message.mapped, message.other), (Some(source), Some(other)));

        service.handle_other(now, source, &stun::binding_request(&transaction, 80));
        let answer = service.poll_transmit().unwrap();
        assert!(answer.from_other);
        let message = stun::decode(&answer.bytes).unwrap();
        assert_eq!((message.mapped, message.other), (Some(source), None));

        let register = encode_register(7, [1; 8], &[]).unwrap();
        service.handle_other(now, source, &register);
        assert!(
            service.poll_transmit().is_none(),
            "no registration at the second address"
        );
        assert_eq!(service.held(), 0);
    }

    /// Every example in PROTOCOL.md section 12.7 is what this code
    /// computes.
    #[test]
    fn protocol_md_examples_hold() {
        let doc = include_str!("../../docs/PROTOCOL.md");
        let missing: Vec<String> = examples()
            .into_iter()
            .map(|(label, bytes)| format!("{label}:\n{}\n", hex(&bytes)))
            .filter(|block| !doc.contains(block))
            .collect();
        assert!(
            missing.is_empty(),
            "not in PROTOCOL.md:\n{}",
            missing.join("\n")
        );
    }
}
