//! A keyed side's secure sessions (PROTOCOL.md section 10): the
//! handshakes it began and answered, the sessions they opened (one
//! [`Channel`] per peer session), the messages waiting for a session, and
//! the cookies it asks for under load. The chat core ([`Core`]) feeds it
//! handshake datagrams and asks it to seal and open; it reads no clock and
//! draws no randomness of its own.
//!
//! [`Core`]: super::chat::Core

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use hmac::{Hmac, Mac};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use sha2::Sha256;

use super::bucket::TokenBucket;
use super::envelope::SessionId;
use super::random::Rng;
use super::rto::{Estimator, RtoConfig, backoff};
use super::seal::Rejection;
use super::secure::wire::{self, COOKIE_LEN, Handshake, Method, PathCheck, Step};
use super::secure::{
    Channel, CodeResponder, Established, Initiator, Refusal, RekeyLimits, Secret, respond_key_file,
};

/// The most sessions (and key-file answers remembered) kept at once.
pub const MAX_SESSIONS: usize = 256;

/// The most messages that may wait for sessions, all peers together.
pub const MAX_QUEUED: usize = 1024;

/// The most secured datagrams held while a code handshake's finish is
/// awaited (the initiator's first messages may overtake its finish).
const MAX_EARLY: usize = 16;

/// The least time between two challenges of one new path.
const CHALLENGE_EVERY: Duration = Duration::from_millis(250);

/// How long a cookie secret is used before the next; a cookie is taken
/// for up to twice this.
const COOKIE_ROTATION: Duration = Duration::from_secs(120);

/// The default number of handshake inits answered per second, all
/// sources together, before a cookie is asked for.
pub const DEFAULT_HANDSHAKE_RATE: u32 = 20;

/// A message typed before its peer's session was open.
#[derive(Debug, Clone)]
pub struct Queued {
    /// Its number.
    pub seq: u64,
    /// The message.
    pub payload: Arc<[u8]>,
}

/// What the core is told after feeding a handshake datagram.
#[derive(Debug)]
pub enum Outcome {
    /// Nothing more (a copy answered, a cookie taken).
    Nothing,
    /// A session is open with `peer` at `addr`: send what waited for it
    /// (`queued` is empty while the peer has not confirmed the keys: the
    /// messages then come in [`Opened::queued`] with the first datagram
    /// of the session).
    Opened {
        /// The secure session's id.
        id: SessionId,
        /// The peer's session.
        peer: SessionId,
        /// Where it is.
        addr: SocketAddr,
        /// The verification bytes.
        verify: [u8; 4],
        /// This side began the handshake.
        initiator: bool,
        /// From this side's first init to the session (when it began).
        took: Option<Duration>,
        /// The messages that waited for it, in the order typed.
        queued: Vec<Queued>,
        /// Secured datagrams that came before the session opened (they
        /// overtook the finish), with when they came: to be taken now.
        early: Vec<Early>,
    },
    /// The code did not confirm (this side's code, or the peer's, is not
    /// the same): the code is spent; `queued` fail.
    WrongCode {
        /// The peer.
        addr: SocketAddr,
        /// Messages that waited for the session.
        queued: Vec<Queued>,
        /// Secured datagrams held for a session that will not open: refused
        /// now (`unknown_session`).
        early: Vec<Early>,
    },
    /// Refused, for this reason (counted as a rejection).
    Refused(Rejection),
}

/// A secured datagram held until the handshake it overtook completes.
#[derive(Debug, Clone)]
pub struct Early {
    /// The datagram.
    pub bytes: Vec<u8>,
    /// When it came.
    pub at: SystemTime,
    /// Who sent it.
    pub from: SocketAddr,
}

/// A secured datagram opened.
#[derive(Debug)]
pub struct Opened {
    /// The peer's run session.
    pub peer: SessionId,
    /// Where the session's peer is.
    pub addr: SocketAddr,
    /// The envelope inside (empty: a keepalive).
    pub inner: Vec<u8>,
    /// Messages that waited for the peer to confirm the keys.
    pub queued: Vec<Queued>,
    /// It came from an address the session has not validated (the peer
    /// may have moved there): answers to it go there only as far as what
    /// came from there pays for ([`Sessions::spend`]).
    pub new_path: Option<SocketAddr>,
    /// It answered this side's challenge: the session moved here from
    /// this address.
    pub moved_from: Option<SocketAddr>,
    /// It challenged this side's path: the peer sees this side at this
    /// address.
    pub seen_as: Option<SocketAddr>,
    /// It was the sessions' own (`keepalive`, `path_challenge`,
    /// `path_response`), not an envelope.
    pub control: Option<&'static str>,
}

/// A new address a session's peer was heard from, being checked.
#[derive(Debug)]
struct NewPath {
    addr: SocketAddr,
    token: [u8; 8],
    /// Bytes received from it not yet matched by bytes sent to it.
    credit: usize,
    last_challenge: Option<Instant>,
}

/// A handshake this side began.
#[derive(Debug)]
struct Begun {
    initiator: Initiator,
    /// When the first init went out.
    started: Instant,
    /// Tries sent.
    tries: u8,
    /// When the next try goes, or the handshake fails.
    deadline: Instant,
}

/// An open session.
#[derive(Debug)]
struct Live {
    /// The peer's run session (its envelopes carry it).
    peer: SessionId,
    /// The peer has shown it holds the keys (a datagram of the session
    /// came): until then a responder sends nothing of its own, since its
    /// reply may have been lost.
    confirmed: bool,
    /// A new address being checked.
    path: Option<NewPath>,
    /// When this side last sent in the session (for keepalives).
    last_sent: Instant,
    channel: Channel,
    /// Where the peer is.
    addr: SocketAddr,
    verify: [u8; 4],
}

/// The code's one guess per run.
#[derive(Debug)]
enum CodeUse {
    /// Not used yet.
    Unspent,
    /// Answered an init from `addr`; the finish is awaited.
    Answered(Box<CodeResponder>, SocketAddr, Vec<Early>),
    /// Used: no other handshake runs on it.
    Spent,
}

/// Handing out and checking cookies (section 10.5), and telling when
/// inits come faster than [`DEFAULT_HANDSHAKE_RATE`].
#[derive(Debug)]
struct Cookies {
    secret: [u8; 32],
    previous: [u8; 32],
    rotated: Instant,
    /// Inits that may be answered without a cookie now.
    budget: TokenBucket,
}

impl Cookies {
    fn new(secret: [u8; 32], rate: u32, now: Instant) -> Cookies {
        Cookies {
            secret,
            previous: secret,
            rotated: now,
            budget: TokenBucket::full(f64::from(rate), f64::from(rate), now),
        }
    }

    fn rotate(&mut self, now: Instant) {
        if now.saturating_duration_since(self.rotated) >= COOKIE_ROTATION {
            self.previous = self.secret;
            let mut mac = Hmac::<Sha256>::new_from_slice(&self.secret).expect("any key length");
            mac.update(b"dgram cookie rotation");
            self.secret.copy_from_slice(&mac.finalize().into_bytes());
            self.rotated = now;
        }
    }

    fn cookie(secret: &[u8; 32], addr: SocketAddr, session: SessionId) -> [u8; COOKIE_LEN] {
        super::tokens::for_address(secret, b"dgram cookie", addr, session)
    }

    /// The cookie for `session` at `addr` now.
    fn make(&mut self, now: Instant, addr: SocketAddr, session: SessionId) -> [u8; COOKIE_LEN] {
        self.rotate(now);
        Self::cookie(&self.secret, addr, session)
    }

    /// True when `cookie` was handed to `session` at `addr` lately.
    fn valid(&self, cookie: &[u8; COOKIE_LEN], addr: SocketAddr, session: SessionId) -> bool {
        *cookie == Self::cookie(&self.secret, addr, session)
            || *cookie == Self::cookie(&self.previous, addr, session)
    }

    /// Takes one init's worth of the budget: false when inits come too
    /// fast (cookies are asked for then).
    fn take(&mut self, now: Instant) -> bool {
        self.budget.take(now)
    }
}

/// A keyed side's sessions.
#[derive(Debug)]
pub struct Sessions {
    secret: Secret,
    own: SessionId,
    limits: RekeyLimits,
    rto: RtoConfig,
    /// Seeds every handshake's randomness.
    seeds: ChaCha20Rng,
    jitter: Rng,
    /// Open sessions, by the secure session's id.
    live: HashMap<SessionId, Live>,
    /// Handshakes begun, by the address they went to.
    begun: HashMap<SocketAddr, Begun>,
    code: CodeUse,
    /// Key-file inits answered, by the initiator's session: the init and
    /// the reply, so a copy of the init gets the same reply (the first
    /// was lost) and another init of that session is a replay.
    answered: HashMap<SessionId, (Vec<u8>, Vec<u8>, Instant)>,
    cookies: Cookies,
    /// Messages waiting for a session, by the peer's address.
    queued: HashMap<SocketAddr, Vec<Queued>>,
    /// Handshake datagrams to send: (to, bytes).
    out: Vec<(SocketAddr, Vec<u8>)>,
    /// How often an idle session sends a keepalive (`None`: never).
    keepalive: Option<Duration>,
    /// The time of the latest call that had one (for the sessions it
    /// opens).
    now: Instant,
}

impl Sessions {
    /// Sessions of `own` proving `secret`; `seed` feeds every handshake's
    /// randomness and the cookie secret.
    pub fn new(
        secret: Secret,
        own: SessionId,
        limits: RekeyLimits,
        rto: RtoConfig,
        handshake_rate: u32,
        seed: [u8; 32],
        now: Instant,
    ) -> Sessions {
        let mut seeds = ChaCha20Rng::from_seed(seed);
        let mut cookie_secret = [0u8; 32];
        seeds.fill_bytes(&mut cookie_secret);
        let jitter = Rng::from_seed(seeds.next_u64());
        Sessions {
            secret,
            own,
            limits,
            rto,
            seeds,
            jitter,
            live: HashMap::new(),
            begun: HashMap::new(),
            code: CodeUse::Unspent,
            answered: HashMap::new(),
            cookies: Cookies::new(cookie_secret, handshake_rate.max(1), now),
            queued: HashMap::new(),
            out: Vec::new(),
            keepalive: None,
            now,
        }
    }

    /// Sessions that send a keepalive after `every` without sending
    /// anything else.
    pub fn with_keepalive(mut self, every: Option<Duration>) -> Sessions {
        self.keepalive = every;
        self
    }

    /// The handshake this side runs.
    pub fn method(&self) -> Method {
        self.secret.method()
    }

    fn seed(&mut self) -> [u8; 32] {
        let mut seed = [0u8; 32];
        self.seeds.fill_bytes(&mut seed);
        seed
    }

    /// The handshake datagrams to send.
    pub fn take_out(&mut self) -> Vec<(SocketAddr, Vec<u8>)> {
        std::mem::take(&mut self.out)
    }

    /// The open session at `addr`, if any: its id.
    fn id_at(&self, addr: SocketAddr) -> Option<SessionId> {
        self.live
            .iter()
            .find(|(_, live)| live.addr == addr)
            .map(|(id, _)| *id)
    }

    /// True when a session with `addr` is open and this side may send in
    /// it (it began the handshake, or the peer confirmed the keys).
    pub fn ready_at(&self, addr: SocketAddr) -> bool {
        self.id_at(addr).is_some_and(|id| self.live[&id].confirmed)
    }

    /// The verification bytes of the session at `addr`.
    pub fn verify_at(&self, addr: SocketAddr) -> Option<[u8; 4]> {
        self.id_at(addr).map(|id| self.live[&id].verify)
    }

    /// Seals `inner` for the session at `addr`; `None` when none is open.
    pub fn seal_to(&mut self, addr: SocketAddr, now: Instant, inner: &[u8]) -> Option<Vec<u8>> {
        // An answer to a datagram from a new address being checked is
        // sealed in the session of that address's peer.
        let id = self.id_at(addr).or_else(|| {
            self.live
                .iter()
                .find(|(_, live)| live.path.as_ref().is_some_and(|p| p.addr == addr))
                .map(|(id, _)| *id)
        })?;
        let live = self.live.get_mut(&id).expect("found");
        live.last_sent = now;
        Some(live.channel.seal(now, inner))
    }

    /// Sends keepalives of the session at `addr` to `via` instead: a
    /// path that may now work (a direct one after a relayed path). The
    /// peer checks the new address (section 10.8) before it moves there,
    /// and then speaks from its side of it, which moves this side too.
    /// False when no session at `addr` may send.
    pub fn keepalive_via(&mut self, now: Instant, addr: SocketAddr, via: SocketAddr) -> bool {
        let Some(id) = self.id_at(addr) else {
            return false;
        };
        let live = self.live.get_mut(&id).expect("found");
        if !live.confirmed {
            return false;
        }
        // Two: the peer's challenge there (54 bytes) is paid for by what
        // came from there (section 10.8), and one keepalive is 36.
        for _ in 0..2 {
            let keepalive = live.channel.seal(now, &[]);
            self.out.push((via, keepalive));
        }
        true
    }

    /// Opens a secured datagram: the peer's run session, the inner bytes
    /// (empty: a keepalive that confirms the keys), and the messages that
    /// waited for the peer to confirm, when this datagram confirmed it.
    /// `Ok(None)`: held until the handshake it overtook completes.
    pub fn open(
        &mut self,
        now: Instant,
        from: SocketAddr,
        bytes: &[u8],
        at: SystemTime,
    ) -> Result<Option<Opened>, Rejection> {
        let secured = wire::split_secured(bytes).ok_or(Rejection::Malformed)?;
        let id = secured.sender;
        let Some(live) = self.live.get_mut(&id) else {
            if let CodeUse::Answered(_, _, early) = &mut self.code {
                // The initiator's first datagrams may overtake its finish:
                // held (a few) until the finish opens the session. A
                // stranger's are dropped with the session if it never
                // opens.
                if early.len() < MAX_EARLY {
                    early.push(Early {
                        bytes: bytes.to_vec(),
                        at,
                        from,
                    });
                    return Ok(None);
                }
            }
            return Err(Rejection::UnknownSession);
        };
        let (inner, newest) = live.channel.open(&secured)?;
        let confirmed_now = !live.confirmed;
        live.confirmed = true;
        let queued = if confirmed_now {
            self.queued.remove(&live.addr).unwrap_or_default()
        } else {
            Vec::new()
        };
        let mut opened = Opened {
            peer: live.peer,
            addr: live.addr,
            inner,
            queued,
            new_path: None,
            moved_from: None,
            seen_as: None,
            control: None,
        };
        if opened.inner.is_empty() {
            opened.control = Some("keepalive");
        }
        match wire::decode_path(&opened.inner) {
            Some(PathCheck::Response { token }) => {
                if live
                    .path
                    .as_ref()
                    .is_some_and(|p| p.addr == from && p.token == token)
                {
                    // The peer answered from its new address: it is there.
                    live.path = None;
                    opened.moved_from = Some(std::mem::replace(&mut live.addr, from));
                    opened.addr = from;
                }
                opened.inner.clear();
                opened.control = Some("path_response");
                return Ok(Some(opened));
            }
            Some(PathCheck::Challenge { token, seen }) => {
                // Answered where it came from; the answer is shorter.
                let response = wire::encode_path(&PathCheck::Response { token });
                let sealed = live.channel.seal(now, &response);
                self.out.push((from, sealed));
                opened.seen_as = Some(seen);
                opened.inner.clear();
                opened.control = Some("path_challenge");
                return Ok(Some(opened));
            }
            None => {}
        }
        if from != live.addr {
            opened.new_path = Some(from);
            if newest {
                self.new_path(id, from, bytes.len(), now);
            } else if let Some(path) = live.path.as_mut().filter(|p| p.addr == from) {
                path.credit += bytes.len();
            }
        }
        Ok(Some(opened))
    }

    /// An authentic datagram, the newest of its session, came from `from`,
    /// not where the session is: the peer may have moved. It is
    /// challenged there (the challenge goes only when what came from there
    /// pays for it); a replay or an older datagram never starts this.
    fn new_path(&mut self, id: SessionId, from: SocketAddr, len: usize, now: Instant) {
        let mut token = [0u8; 8];
        self.seeds.fill_bytes(&mut token);
        let live = self.live.get_mut(&id).expect("open");
        let path = match &mut live.path {
            Some(path) if path.addr == from => path,
            other => other.insert(NewPath {
                addr: from,
                token,
                credit: 0,
                last_challenge: None,
            }),
        };
        path.credit += len;
        if path
            .last_challenge
            .is_some_and(|at| now.saturating_duration_since(at) < CHALLENGE_EVERY)
        {
            return;
        }
        let challenge = wire::encode_path(&PathCheck::Challenge {
            token: path.token,
            seen: from,
        });
        let len = challenge.len() + wire::SECURED_OVERHEAD;
        if path.credit < len {
            return;
        }
        path.credit -= len;
        path.last_challenge = Some(now);
        let sealed = live.channel.seal(now, &challenge);
        self.out.push((from, sealed));
    }

    /// Whether `len` bytes may go to the unvalidated address `to` of the
    /// session at `addr` (taken from what came from there, if so).
    pub fn spend(&mut self, addr: SocketAddr, to: SocketAddr, len: usize) -> bool {
        let Some(id) = self.id_at(addr) else {
            return false;
        };
        match self.live.get_mut(&id).and_then(|l| l.path.as_mut()) {
            Some(path) if path.addr == to && path.credit >= len => {
                path.credit -= len;
                true
            }
            _ => false,
        }
    }

    /// How many messages wait for sessions.
    pub fn queued_count(&self) -> usize {
        self.queued.values().map(Vec::len).sum()
    }

    /// True while message `seq` to `addr` waits for its session.
    pub fn is_queued(&self, addr: SocketAddr, seq: u64) -> bool {
        self.queued
            .get(&addr)
            .is_some_and(|q| q.iter().any(|m| m.seq == seq))
    }

    /// The messages waiting for the session with `addr`.
    pub fn queued_for(&self, addr: SocketAddr) -> &[Queued] {
        self.queued.get(&addr).map_or(&[], Vec::as_slice)
    }

    /// Every message still waiting, by address (the chat ends).
    pub fn take_all_queued(&mut self) -> Vec<(SocketAddr, Vec<Queued>)> {
        self.queued.drain().collect()
    }

    /// Forgets message `seq` to `addr` (its handshake could not be sent).
    pub fn unqueue(&mut self, addr: SocketAddr, seq: u64) {
        if let Some(q) = self.queued.get_mut(&addr) {
            q.retain(|m| m.seq != seq);
        }
    }

    /// Makes message `seq` wait for the session with `addr`; begins the
    /// handshake if none runs. Returns the init to send now, if one was
    /// begun (`None` while a handshake is under way already).
    pub fn queue(
        &mut self,
        now: Instant,
        addr: SocketAddr,
        seq: u64,
        payload: Arc<[u8]>,
    ) -> Option<Vec<u8>> {
        self.queued
            .entry(addr)
            .or_default()
            .push(Queued { seq, payload });
        self.connect(now, addr)
    }

    /// True when a session with `addr` is open, under way, or may still
    /// begin (a spent code begins none).
    pub fn can_reach(&self, addr: SocketAddr) -> bool {
        self.id_at(addr).is_some()
            || self
                .begun
                .get(&addr)
                .is_some_and(|b| b.initiator.is_waiting())
            || matches!(&self.code, CodeUse::Answered(_, at, _) if *at == addr)
            || self.secret.method() == Method::KeyFile
            || matches!(self.code, CodeUse::Unspent)
    }

    /// True when no more messages may wait.
    pub fn queue_full(&self) -> bool {
        self.queued_count() >= MAX_QUEUED
    }

    /// Begins a handshake with `addr` unless a session is open there or
    /// one is under way; returns its init, to send now. A code begins no
    /// handshake once spent.
    pub fn connect(&mut self, now: Instant, addr: SocketAddr) -> Option<Vec<u8>> {
        if self.id_at(addr).is_some() || self.begun.contains_key(&addr) {
            return None;
        }
        if self.secret.method() == Method::Code && !matches!(self.code, CodeUse::Unspent) {
            return None;
        }
        let seed = self.seed();
        let initiator = Initiator::start(&self.secret, self.own, seed);
        let init = initiator.init();
        let timeout = self.timeout(1);
        self.begun.insert(
            addr,
            Begun {
                initiator,
                started: now,
                tries: 1,
                deadline: now + timeout,
            },
        );
        Some(init)
    }

    fn timeout(&mut self, attempt: u8) -> Duration {
        backoff(
            Estimator::default().rto(&self.rto),
            attempt,
            &mut self.jitter,
        )
    }

    /// When [`Sessions::handle_timeout`] is next due: an init to send
    /// again, or a keepalive.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let keepalives = self.keepalive.and_then(|every| {
            self.live
                .values()
                .filter(|live| live.confirmed)
                .map(|live| live.last_sent + every)
                .min()
        });
        self.begun
            .values()
            .map(|b| b.deadline)
            .chain(keepalives)
            .min()
    }

    /// Sends inits again whose time came; a handshake out of tries ends,
    /// and what waited for it is returned (it fails).
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<(SocketAddr, u8, Vec<Queued>)> {
        self.now = now;
        if let Some(every) = self.keepalive {
            for live in self.live.values_mut() {
                if live.confirmed && now.saturating_duration_since(live.last_sent) >= every {
                    live.last_sent = now;
                    let keepalive = live.channel.seal(now, &[]);
                    self.out.push((live.addr, keepalive));
                }
            }
        }
        let due: Vec<SocketAddr> = self
            .begun
            .iter()
            .filter(|(_, b)| b.deadline <= now)
            .map(|(addr, _)| *addr)
            .collect();
        let mut failed = Vec::new();
        for addr in due {
            let tries = self.begun[&addr].tries;
            if tries > self.rto.retries {
                self.begun.remove(&addr);
                let queued = self.queued.remove(&addr).unwrap_or_default();
                failed.push((addr, tries, queued));
                continue;
            }
            let timeout = self.timeout(tries + 1);
            let begun = self.begun.get_mut(&addr).expect("due");
            begun.tries += 1;
            begun.deadline = now + timeout;
            self.out.push((addr, begun.initiator.init()));
        }
        failed
    }

    /// A handshake datagram came from `from` at `now`.
    pub fn handle(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) -> Outcome {
        self.now = now;
        let Ok(handshake) = wire::decode(bytes) else {
            return Outcome::Refused(Rejection::Malformed);
        };
        if handshake.method != self.secret.method() {
            return Outcome::Refused(Rejection::OtherMethod);
        }
        if handshake.sender == self.own {
            return Outcome::Refused(Rejection::Reflected);
        }
        match handshake.step {
            Step::Init { cookie, .. } => self.on_init(now, from, bytes, &handshake, cookie),
            Step::Reply { .. } => self.on_reply(now, from, bytes, &handshake),
            Step::Finish { noise } => self.on_finish(now, from, &handshake, noise),
            Step::Cookie { cookie } => match self.begun.get_mut(&from) {
                Some(begun) if handshake.receiver == self.own && begun.initiator.is_waiting() => {
                    begun.initiator.take_cookie(cookie);
                    self.out.push((from, begun.initiator.init()));
                    Outcome::Nothing
                }
                _ => Outcome::Refused(Rejection::Unexpected),
            },
            Step::Fail => match &self.code {
                CodeUse::Answered(responder, addr, _)
                    if *addr == from
                        && responder.peer() == handshake.sender
                        && handshake.receiver == self.own =>
                {
                    let early = match std::mem::replace(&mut self.code, CodeUse::Spent) {
                        CodeUse::Answered(_, _, early) => early,
                        _ => Vec::new(),
                    };
                    Outcome::WrongCode {
                        addr: from,
                        queued: self.queued.remove(&from).unwrap_or_default(),
                        early,
                    }
                }
                _ => Outcome::Refused(Rejection::Unexpected),
            },
        }
    }

    fn on_init(
        &mut self,
        now: Instant,
        from: SocketAddr,
        bytes: &[u8],
        init: &Handshake<'_>,
        cookie: [u8; COOKIE_LEN],
    ) -> Outcome {
        // Both sides began at once: the one with the lower session yields
        // and answers; the other waits for its own init's answer.
        if let Some(begun) = self.begun.get(&from)
            && begun.initiator.is_waiting()
        {
            if self.own.0 > init.sender.0 {
                return Outcome::Nothing;
            }
            self.begun.remove(&from);
        }
        // A copy of an init already answered gets the same answer, with
        // no new state (the answer was lost).
        if let Some(reply) = self.copy_answer(from, bytes, init) {
            self.out.push((from, reply));
            return Outcome::Nothing;
        }
        if !self.cookies.valid(&cookie, from, init.sender) && !self.cookies.take(now) {
            // Under load: no state for a source that has not shown it
            // receives at its address; the cookie reply is shorter than
            // the init.
            let cookie = self.cookies.make(now, from, init.sender);
            let reply = wire::encode(&Handshake {
                method: init.method,
                sender: self.own,
                receiver: init.sender,
                step: Step::Cookie { cookie },
            });
            self.out.push((from, reply));
            return Outcome::Nothing;
        }
        // A run that has a session here already does not begin another: a
        // peer that restarts has a new session id. (Its own init, left
        // unanswered when both began at once, may be replayed later.)
        if self.live.values().any(|live| live.peer == init.sender) {
            return Outcome::Refused(Rejection::Replay);
        }
        let seed = self.seed();
        match &self.secret {
            Secret::KeyFile(key) => {
                if self.answered.contains_key(&init.sender) {
                    return Outcome::Refused(Rejection::Replay);
                }
                match respond_key_file(key, self.own, init, seed, now, self.limits) {
                    Ok((reply, established)) => {
                        if self.answered.len() >= MAX_SESSIONS {
                            forget_oldest(&mut self.answered);
                        }
                        self.answered
                            .insert(init.sender, (bytes.to_vec(), reply.clone(), now));
                        self.out.push((from, reply));
                        self.open_session(init.sender, from, established, false, false, Vec::new())
                    }
                    Err(_) => Outcome::Refused(Rejection::BadTag),
                }
            }
            Secret::Code(password) => {
                if !matches!(self.code, CodeUse::Unspent) {
                    return Outcome::Refused(Rejection::CodeSpent);
                }
                match CodeResponder::answer(password, self.own, init, seed) {
                    Ok(responder) => {
                        self.out.push((from, responder.reply.clone()));
                        self.code = CodeUse::Answered(Box::new(responder), from, Vec::new());
                        Outcome::Nothing
                    }
                    Err(_) => Outcome::Refused(Rejection::Malformed),
                }
            }
        }
    }

    /// The answer already given to this very init, if it was answered.
    fn copy_answer(&self, from: SocketAddr, bytes: &[u8], init: &Handshake<'_>) -> Option<Vec<u8>> {
        match &self.code {
            CodeUse::Answered(responder, addr, _)
                if *addr == from && responder.peer() == init.sender =>
            {
                return Some(responder.reply.clone());
            }
            _ => {}
        }
        self.answered
            .get(&init.sender)
            .filter(|(seen, _, _)| seen == bytes)
            .map(|(_, reply, _)| reply.clone())
    }

    fn on_reply(
        &mut self,
        now: Instant,
        from: SocketAddr,
        bytes: &[u8],
        reply: &Handshake<'_>,
    ) -> Outcome {
        let Some(begun) = self.begun.get_mut(&from) else {
            // A copy of a reply whose session is open: the finish was
            // lost; the initiator below kept it.
            return Outcome::Refused(Rejection::Unexpected);
        };
        match begun.initiator.take_reply(bytes, now, self.limits) {
            Ok((Some(established), finish)) => {
                if let Some(finish) = finish {
                    self.out.push((from, finish));
                }
                let method = begun.initiator.method();
                let took = now.saturating_duration_since(begun.started);
                if method == Method::KeyFile {
                    self.begun.remove(&from);
                } else {
                    // Kept (with no timer) to answer a copy of the reply
                    // with the same finish.
                    self.code = CodeUse::Spent;
                    begun.deadline = far_future(now);
                }
                let mut opened =
                    self.open_session(reply.sender, from, established, true, true, Vec::new());
                if let Outcome::Opened { took: t, .. } = &mut opened {
                    *t = Some(took);
                }
                opened
            }
            Ok((None, Some(finish))) => {
                self.out.push((from, finish));
                Outcome::Nothing
            }
            Ok((None, None)) => Outcome::Nothing,
            Err(Refusal::WrongCode) => {
                let fail = begun.initiator.fail(reply.sender);
                self.out.push((from, fail));
                self.begun.remove(&from);
                self.code = CodeUse::Spent;
                Outcome::WrongCode {
                    addr: from,
                    queued: self.queued.remove(&from).unwrap_or_default(),
                    early: Vec::new(),
                }
            }
            Err(Refusal::Unauthentic) => Outcome::Refused(Rejection::BadTag),
            Err(Refusal::Unexpected) => Outcome::Refused(Rejection::Unexpected),
        }
    }

    fn on_finish(
        &mut self,
        now: Instant,
        from: SocketAddr,
        finish: &Handshake<'_>,
        noise: &[u8],
    ) -> Outcome {
        let CodeUse::Answered(responder, addr, _) = &mut self.code else {
            return Outcome::Refused(Rejection::Unexpected);
        };
        if *addr != from || responder.peer() != finish.sender || finish.receiver != self.own {
            return Outcome::Refused(Rejection::Unexpected);
        }
        match responder.take_finish(noise, now, self.limits) {
            Ok(established) => {
                let peer = responder.peer();
                let early = match std::mem::replace(&mut self.code, CodeUse::Spent) {
                    CodeUse::Answered(_, _, early) => early,
                    _ => Vec::new(),
                };
                // The code's responder finished Noise as its initiator: the
                // peer has the keys already.
                self.open_session(peer, from, established, true, false, early)
            }
            Err(_) => Outcome::Refused(Rejection::BadTag),
        }
    }

    fn open_session(
        &mut self,
        peer: SessionId,
        addr: SocketAddr,
        established: Established,
        confirmed: bool,
        initiator: bool,
        early: Vec<Early>,
    ) -> Outcome {
        // A peer that restarted at this address: its old session ends
        // (what was secured in it is refused from now on).
        self.live.retain(|_, live| live.addr != addr);
        if self.live.len() >= MAX_SESSIONS
            && let Some(oldest) = self.live.keys().next().copied()
        {
            self.live.remove(&oldest);
        }
        let (verify, id) = (established.verify, established.id);
        self.live.insert(
            id,
            Live {
                peer,
                confirmed,
                path: None,
                last_sent: self.now,
                channel: established.channel,
                addr,
                verify,
            },
        );
        let queued = if confirmed {
            self.queued.remove(&addr).unwrap_or_default()
        } else {
            Vec::new()
        };
        Outcome::Opened {
            id,
            peer,
            addr,
            verify,
            initiator,
            took: None,
            queued,
            early,
        }
    }

    /// How many sessions are open (for tests of the bound).
    pub fn len(&self) -> usize {
        self.live.len()
    }

    /// True when no session is open.
    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    /// State kept for handshakes (begun, answered, open): for tests of
    /// the bound under a flood.
    pub fn state_held(&self) -> usize {
        self.live.len() + self.begun.len() + self.answered.len()
    }
}

/// A time no timer reaches.
fn far_future(now: Instant) -> Instant {
    now + Duration::from_secs(60 * 60 * 24 * 365)
}

fn forget_oldest(answered: &mut HashMap<SessionId, (Vec<u8>, Vec<u8>, Instant)>) {
    if let Some(oldest) = answered
        .iter()
        .min_by_key(|(_, (_, _, at))| *at)
        .map(|(k, _)| *k)
    {
        answered.remove(&oldest);
    }
}
