//! A TURN client (RFC 8656) with long-term credentials (RFC 8489, 9.2),
//! without input or output: a relay for when no direct path exists. No
//! socket, no clock, no randomness of its own: time is an `Instant`
//! handed in, transaction ids come from a ChaCha20 generator seeded by the
//! caller, datagrams go in and out as bytes. Every datagram it makes goes
//! to the one server it was made for, and the caller hands it only
//! datagrams from that server.
//!
//! ```text
//! let mut turn = TurnClient::new(server, "user", "pass", seed, now); // Allocate
//! loop {
//!     while let Some(datagram) = turn.poll_transmit() { socket.send_to(&datagram, server) }
//!     match turn.handle_datagram(now, &received_from_server) {
//!         Received::Data { from, payload } => …  // `from` sent it to our relayed address
//!         Received::NotTurn => …                 // an ordinary datagram from the server
//!         Received::Consumed | Received::Refused(_) => {}
//!     }
//!     while let Some(event) = turn.poll_event() { … }  // Allocated, Refreshed, Permitted, …
//!     turn.handle_timeout(now);                        // by turn.poll_timeout()
//! }
//! turn.permit(now, peer.ip())?;        // CreatePermission
//! turn.bind_channel(now, peer)?;       // ChannelBind
//! turn.wrap(now, peer, payload, &mut out)?;  // ChannelData or a Send indication, for the server
//! turn.close(now);                     // Refresh with LIFETIME 0
//! ```
//!
//! - **Allocate** asks for a UDP relay (REQUESTED-TRANSPORT 17). The first
//!   request carries no credentials; the server's 401 gives REALM and
//!   NONCE, and every request after it carries USERNAME, REALM, NONCE and
//!   MESSAGE-INTEGRITY (HMAC-SHA1, keyed with MD5(username ":" realm ":"
//!   password); username and password are used as given, without
//!   SASLprep), then FINGERPRINT. A 401 to a request that had credentials
//!   means they are wrong: the request fails. A 438 (Stale Nonce) is
//!   retried with the new nonce, at most [`MAX_STALE_RETRIES`] times per
//!   request.
//! - **Responses** are matched by transaction id. Once a request carried
//!   credentials, its response's MESSAGE-INTEGRITY is checked: a wrong one
//!   is refused, and so is a success response without one (an error
//!   response may come without: a 401 or 438 always does; a forged error
//!   can make a request fail, as dropping it could).
//! - **Retransmission** (RFC 8489, 6.2.1): a request is sent again after
//!   500 ms, then after each doubled wait, 7 sends in all, and it fails
//!   16 × 500 ms after the last one: 39.5 s after the first send.
//! - **Refreshes**: the allocation is refreshed [`refresh_margin`] before
//!   it expires (a minute, or half a lifetime shorter than two minutes);
//!   a permission (300 s) every [`PERMISSION_REFRESH`], a channel (600 s)
//!   every [`CHANNEL_REFRESH`], for as long as the allocation lives.
//! - **Sending**: [`TurnClient::wrap`] makes a ChannelData message (4-byte
//!   header, padded to 4 bytes) when a channel to the peer is bound and
//!   confirmed, else a Send indication (XOR-PEER-ADDRESS, DATA); a missing
//!   permission for the peer's address is asked for on the way.
//! - **Receiving**: a Data indication or a ChannelData message on a
//!   channel of this client is [`Received::Data`] from the peer that sent
//!   it to the relayed address.
//! - **Bounds**: at most [`MAX_PERMISSIONS`] permissions and
//!   [`MAX_CHANNELS`] channels; nothing else grows with what a server or a
//!   peer sends. A username over [`MAX_USERNAME`] bytes fails at once, and
//!   a REALM or NONCE over [`MAX_REALM_OR_NONCE`] ends the request that
//!   got it (either could make a request too long for STUN).
//!
//! `permit`, `bind_channel` and `wrap` say why they cannot ([`TurnError`]:
//! no allocation, a table full, a payload too large); what the server
//! refuses comes later as [`TurnEvent::Failed`]. What the relay forwards
//! is up to the caller: dgram is to send only a secure session's sealed
//! datagrams through it, so that the relay sees ciphertext (PROTOCOL.md,
//! section 13).

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use sha1::Sha1;

use super::stun::{self, HEADER_LEN, MAGIC_COOKIE};

/// Allocate (RFC 8656, 7).
pub const ALLOCATE: u16 = 0x0003;
/// Refresh (RFC 8656, 8).
pub const REFRESH: u16 = 0x0004;
/// Send (RFC 8656, 11.1), an indication.
pub const SEND: u16 = 0x0006;
/// Data (RFC 8656, 11.3), an indication.
pub const DATA: u16 = 0x0007;
/// CreatePermission (RFC 8656, 10).
pub const CREATE_PERMISSION: u16 = 0x0008;
/// ChannelBind (RFC 8656, 12).
pub const CHANNEL_BIND: u16 = 0x0009;

/// The class bits of a message type (RFC 8489, 5): request `0x000`,
/// indication `0x010`, success `0x100`, error `0x110`.
const CLASS: u16 = 0x0110;
const INDICATION: u16 = 0x0010;
const SUCCESS: u16 = 0x0100;
const ERROR: u16 = 0x0110;

/// USERNAME (RFC 8489, 14.3).
pub const ATTR_USERNAME: u16 = 0x0006;
/// CHANNEL-NUMBER (RFC 8656, 18.1).
pub const ATTR_CHANNEL_NUMBER: u16 = 0x000C;
/// LIFETIME (RFC 8656, 18.2), seconds.
pub const ATTR_LIFETIME: u16 = 0x000D;
/// XOR-PEER-ADDRESS (RFC 8656, 18.3).
pub const ATTR_XOR_PEER_ADDRESS: u16 = 0x0012;
/// DATA (RFC 8656, 18.4).
pub const ATTR_DATA: u16 = 0x0013;
/// REALM (RFC 8489, 14.9).
pub const ATTR_REALM: u16 = 0x0014;
/// NONCE (RFC 8489, 14.10).
pub const ATTR_NONCE: u16 = 0x0015;
/// XOR-RELAYED-ADDRESS (RFC 8656, 18.5).
pub const ATTR_XOR_RELAYED_ADDRESS: u16 = 0x0016;
/// REQUESTED-TRANSPORT (RFC 8656, 18.6).
pub const ATTR_REQUESTED_TRANSPORT: u16 = 0x0019;

/// The first channel number a client may bind (RFC 8656, 12).
pub const FIRST_CHANNEL: u16 = 0x4000;
/// The last one.
pub const LAST_CHANNEL: u16 = 0x4FFF;

/// At most this many peer addresses are permitted at once: a chat needs
/// one, a group a few.
pub const MAX_PERMISSIONS: usize = 16;
/// At most this many channels are bound at once.
pub const MAX_CHANNELS: usize = 16;

/// A permission lives 300 s (RFC 8656, 9); it is asked for again a minute
/// before.
pub const PERMISSION_REFRESH: Duration = Duration::from_secs(240);
/// A channel binding lives 600 s (RFC 8656, 12); it is bound again a
/// minute before.
pub const CHANNEL_REFRESH: Duration = Duration::from_secs(540);

/// The first retransmission timeout (RFC 8489, 6.2.1).
pub const RTO: Duration = Duration::from_millis(500);
/// How many times a request is sent (RFC 8489's Rc).
pub const TRIES: u32 = 7;
/// How long the last send is waited for: Rm × RTO, Rm = 16.
pub const LAST_WAIT: Duration = Duration::from_millis(16 * 500);
/// How many 438 (Stale Nonce) answers one request is retried after.
pub const MAX_STALE_RETRIES: u8 = 3;
/// The longest USERNAME (RFC 8489, 14.3: fewer than 509 bytes).
pub const MAX_USERNAME: usize = 508;
/// The longest REALM or NONCE taken from a server (RFC 8489, 14.9 and
/// 14.10: fewer than 128 characters, at most 763 bytes), so that a server
/// cannot make the requests it is sent grow past a STUN message's length.
pub const MAX_REALM_OR_NONCE: usize = 763;
/// The largest payload [`TurnClient::wrap`] takes: room for the Send
/// indication's header and attributes in a 16-bit STUN length.
pub const MAX_PAYLOAD: usize = 65_000;

/// What a datagram from the server was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// A response to one of this client's requests, handled (see
    /// [`TurnClient::poll_event`]).
    Consumed,
    /// A datagram the peer `from` sent to the relayed address, unwrapped
    /// from a Data indication or a ChannelData message.
    Data {
        /// The peer's address, as the relay saw it.
        from: SocketAddr,
        /// Exactly what the peer sent.
        payload: Vec<u8>,
    },
    /// A TURN message of this client that is wrong, dropped (why, for a
    /// counter or a trace): a response whose MESSAGE-INTEGRITY does not
    /// check, a ChannelData message shorter than its length, ….
    Refused(&'static str),
    /// Not a STUN or ChannelData message of this client (another
    /// protocol, a response to someone else's transaction): the caller's,
    /// as an ordinary datagram from the server.
    NotTurn,
}

/// What happened to the allocation, a permission or a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TurnEvent {
    /// The relay is ready: peers reach us at `relayed`.
    Allocated {
        /// The relayed transport address (XOR-RELAYED-ADDRESS).
        relayed: SocketAddr,
        /// Our address as the server saw it (XOR-MAPPED-ADDRESS): the
        /// server-reflexive candidate, for free.
        mapped: SocketAddr,
        /// How long the allocation lives unless refreshed.
        lifetime: Duration,
    },
    /// The allocation was refreshed.
    Refreshed {
        /// Its new lifetime.
        lifetime: Duration,
    },
    /// Datagrams from this IP address are relayed now (the first
    /// CreatePermission's success; refreshes say nothing).
    Permitted(IpAddr),
    /// A channel is bound: [`TurnClient::wrap`] sends ChannelData to
    /// `peer` from now on.
    ChannelBound {
        /// The peer.
        peer: SocketAddr,
        /// The channel number, `0x4000` and up.
        channel: u16,
    },
    /// A request failed for good. A failed Allocate or Refresh ends the
    /// allocation ([`TurnClient::is_allocated`] is false); a failed
    /// CreatePermission or ChannelBind forgets that permission or channel.
    Failed {
        /// Which request: `"Allocate"`, `"Refresh"`, `"CreatePermission"`
        /// or `"ChannelBind"`.
        what: &'static str,
        /// Why: the error code and its meaning (`401 Unauthorized: wrong
        /// user or password`), or `no answer from the server after 7
        /// tries`. Printable ASCII only.
        reason: String,
    },
}

/// Why a call could not be done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TurnError {
    /// There is no allocation (yet, or any more).
    #[error("no TURN allocation")]
    NotAllocated,
    /// [`MAX_PERMISSIONS`] are in use.
    #[error("too many TURN permissions (at most {MAX_PERMISSIONS})")]
    TooManyPermissions,
    /// [`MAX_CHANNELS`] are in use.
    #[error("too many TURN channels (at most {MAX_CHANNELS})")]
    TooManyChannels,
    /// The payload is larger than [`MAX_PAYLOAD`].
    #[error("a payload larger than {MAX_PAYLOAD} bytes cannot go through TURN")]
    TooLarge,
}

/// The requests this client makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Request {
    Allocate,
    /// The lifetime asked for, seconds: the one last granted, so that a
    /// refresh asks for no more than the server chose (the server still
    /// decides: coturn 4.6 answers 600 s to anything less), or 0 to
    /// deallocate.
    Refresh(u32),
    Permission(IpAddr),
    ChannelBind {
        peer: SocketAddr,
        channel: u16,
    },
}

impl Request {
    fn method(self) -> u16 {
        match self {
            Request::Allocate => ALLOCATE,
            Request::Refresh(_) => REFRESH,
            Request::Permission(_) => CREATE_PERMISSION,
            Request::ChannelBind { .. } => CHANNEL_BIND,
        }
    }

    fn what(self) -> &'static str {
        match self {
            Request::Allocate => "Allocate",
            Request::Refresh(_) => "Refresh",
            Request::Permission(_) => "CreatePermission",
            Request::ChannelBind { .. } => "ChannelBind",
        }
    }
}

/// A request waiting for its response.
#[derive(Debug)]
struct Transaction {
    id: [u8; 12],
    request: Request,
    bytes: Vec<u8>,
    /// Whether it carried credentials (then its response must carry a
    /// MESSAGE-INTEGRITY that checks).
    authenticated: bool,
    /// How many times it was sent.
    sends: u32,
    /// When it is sent again, or given up.
    deadline: Instant,
    /// How many 438s were answered by a retry.
    stale: u8,
}

/// What the 401 taught: the realm, the current nonce, the key.
#[derive(Debug)]
struct Auth {
    realm: Vec<u8>,
    nonce: Vec<u8>,
    key: [u8; 16],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Allocating,
    Allocated,
    Failed,
    Closed,
}

/// A permission for a peer's IP address.
#[derive(Debug)]
struct Permission {
    ip: IpAddr,
    installed: bool,
    /// When the CreatePermission is (re)sent; `None` while one is in
    /// flight.
    due: Option<Instant>,
}

/// A channel to a peer.
#[derive(Debug)]
struct Channel {
    peer: SocketAddr,
    number: u16,
    confirmed: bool,
    due: Option<Instant>,
}

/// The TURN client: one allocation on one server (module docs).
#[derive(Debug)]
pub struct TurnClient {
    server: SocketAddr,
    username: String,
    password: String,
    rng: ChaCha20Rng,
    auth: Option<Auth>,
    state: State,
    relayed: Option<SocketAddr>,
    mapped: Option<SocketAddr>,
    /// When the allocation is refreshed; `None` while a Refresh is in
    /// flight or there is no allocation.
    refresh_due: Option<Instant>,
    /// The allocation's lifetime as last granted.
    lifetime: Duration,
    transactions: Vec<Transaction>,
    permissions: Vec<Permission>,
    channels: Vec<Channel>,
    next_channel: u16,
    transmits: VecDeque<Vec<u8>>,
    events: VecDeque<TurnEvent>,
}

/// The long-term key (RFC 8489, 9.2.2): MD5(username ":" realm ":"
/// password).
pub fn long_term_key(username: &[u8], realm: &[u8], password: &[u8]) -> [u8; 16] {
    let mut md5 = Md5::new();
    md5.update(username);
    md5.update(b":");
    md5.update(realm);
    md5.update(b":");
    md5.update(password);
    md5.finalize().into()
}

/// Whether `message`'s MESSAGE-INTEGRITY checks with `key`: the HMAC-SHA1
/// of the message before the attribute, with the header's length counting
/// up to the attribute's end (RFC 8489, 14.5). `None` when there is none.
pub fn check_integrity(message: &[u8], key: &[u8]) -> Option<bool> {
    let mut at = HEADER_LEN;
    while let Some(header) = message.get(at..at + 4) {
        let attr = u16::from_be_bytes([header[0], header[1]]);
        let len = usize::from(u16::from_be_bytes([header[2], header[3]]));
        if attr == stun::ATTR_MESSAGE_INTEGRITY {
            let value = message.get(at + 4..at + 4 + len)?;
            let mut covered = message[..at].to_vec();
            let length = u16::try_from(at - HEADER_LEN + 24).ok()?;
            covered[2..4].copy_from_slice(&length.to_be_bytes());
            let mut mac = Hmac::<Sha1>::new_from_slice(key).expect("HMAC takes any key");
            mac.update(&covered);
            return Some(len == 20 && mac.verify_slice(value).is_ok());
        }
        at += 4 + len.next_multiple_of(4);
    }
    None
}

/// Builds a STUN message attribute by attribute.
struct Writer(Vec<u8>);

impl Writer {
    fn new(kind: u16, transaction: &[u8; 12]) -> Writer {
        let mut bytes = Vec::with_capacity(128);
        bytes.extend_from_slice(&kind.to_be_bytes());
        bytes.extend_from_slice(&[0, 0]);
        bytes.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
        bytes.extend_from_slice(transaction);
        Writer(bytes)
    }

    fn attribute(&mut self, kind: u16, value: &[u8]) {
        let len = u16::try_from(value.len()).expect("attribute values are bounded");
        self.0.extend_from_slice(&kind.to_be_bytes());
        self.0.extend_from_slice(&len.to_be_bytes());
        self.0.extend_from_slice(value);
        self.0.resize(self.0.len().next_multiple_of(4), 0);
        self.set_length(self.0.len());
    }

    fn set_length(&mut self, total: usize) {
        let len = u16::try_from(total - HEADER_LEN).expect("messages are bounded");
        self.0[2..4].copy_from_slice(&len.to_be_bytes());
    }

    /// MESSAGE-INTEGRITY: the HMAC covers the header with its length
    /// already counting this attribute (RFC 8489, 14.5).
    fn integrity(&mut self, key: &[u8]) {
        self.set_length(self.0.len() + 24);
        let mut mac = Hmac::<Sha1>::new_from_slice(key).expect("HMAC takes any key");
        mac.update(&self.0);
        let tag = mac.finalize().into_bytes();
        self.attribute(stun::ATTR_MESSAGE_INTEGRITY, &tag);
    }

    /// FINGERPRINT, likewise counted in the length it covers.
    fn fingerprint(&mut self) {
        self.set_length(self.0.len() + 8);
        let crc = stun::crc32(&self.0) ^ 0x5354_554E;
        self.attribute(stun::ATTR_FINGERPRINT, &crc.to_be_bytes());
    }
}

/// How long before an allocation of `lifetime` expires it is refreshed:
/// a minute (RFC 8656, 8), or half the lifetime when that is shorter (a
/// server that grants little), so that the Refresh's own retransmissions
/// fit before the expiry.
pub fn refresh_margin(lifetime: Duration) -> Duration {
    (lifetime / 2).min(Duration::from_secs(60))
}

/// The wait after the `sends`-th send of a request (RFC 8489, 6.2.1).
fn wait_after(sends: u32) -> Duration {
    if sends >= TRIES {
        LAST_WAIT
    } else {
        RTO * (1 << (sends - 1))
    }
}

/// An error code's meaning; for codes not known here the server's reason
/// phrase, reduced to at most 100 printable ASCII characters (it reaches
/// a terminal).
fn reason(code: u16, phrase: &[u8]) -> String {
    let known = match code {
        300 => "Try Alternate",
        400 => "Bad Request",
        401 => "Unauthorized: wrong user or password",
        403 => "Forbidden",
        420 => "Unknown Attribute",
        437 => "Allocation Mismatch",
        438 => "Stale Nonce",
        440 => "Address Family not Supported",
        441 => "Wrong Credentials",
        442 => "Unsupported Transport Protocol",
        443 => "Peer Address Family Mismatch",
        486 => "Allocation Quota Reached",
        500 => "Server Error",
        508 => "Insufficient Capacity",
        _ => "",
    };
    if !known.is_empty() {
        return format!("{code} {known}");
    }
    let phrase: String = String::from_utf8_lossy(phrase)
        .chars()
        .take(100)
        .map(|c| {
            if c == ' ' || c.is_ascii_graphic() {
                c
            } else {
                '?'
            }
        })
        .collect();
    format!("{code} {phrase}").trim_end().to_string()
}

/// The first value of attribute `kind`.
fn attribute(message: &[u8], kind: u16) -> Option<&[u8]> {
    stun::attributes(message)
        .find(|(attr, _)| *attr == kind)
        .map(|(_, value)| value)
}

/// The longest lifetime taken from a server: a longer one is refreshed
/// as if it were this (early, which costs one request a day), so that a
/// server's number cannot push a timer past what an `Instant` holds.
pub const MAX_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// LIFETIME's value, at most [`MAX_LIFETIME`]; `None` when it is missing
/// or 0 (no allocation lives 0 s: a 0 would ask the next Refresh to
/// deallocate).
fn lifetime(message: &[u8]) -> Option<Duration> {
    let value: [u8; 4] = attribute(message, ATTR_LIFETIME)?.try_into().ok()?;
    let seconds = u32::from_be_bytes(value);
    (seconds > 0).then(|| Duration::from_secs(u64::from(seconds)).min(MAX_LIFETIME))
}

impl TurnClient {
    /// A client for `server` that begins an Allocate at once (its first
    /// request is ready for [`TurnClient::poll_transmit`]). `seed` seeds
    /// the transaction ids (the caller draws it from the operating system;
    /// tests fix it).
    pub fn new(
        server: SocketAddr,
        username: &str,
        password: &str,
        seed: [u8; 32],
        now: Instant,
    ) -> TurnClient {
        let mut client = TurnClient {
            server,
            username: username.to_string(),
            password: password.to_string(),
            rng: ChaCha20Rng::from_seed(seed),
            auth: None,
            state: State::Allocating,
            relayed: None,
            mapped: None,
            refresh_due: None,
            lifetime: Duration::ZERO,
            transactions: Vec::new(),
            permissions: Vec::new(),
            channels: Vec::new(),
            next_channel: FIRST_CHANNEL,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        };
        if username.len() > MAX_USERNAME {
            let reason = format!("a username longer than {MAX_USERNAME} bytes");
            client.fail(Request::Allocate, reason);
        } else {
            client.send(now, Request::Allocate, 0);
        }
        client
    }

    /// The server every datagram of this client goes to.
    pub fn server(&self) -> SocketAddr {
        self.server
    }

    /// The relayed address, once allocated.
    pub fn relayed(&self) -> Option<SocketAddr> {
        self.relayed.filter(|_| self.is_allocated())
    }

    /// Our address as the server saw it, once allocated.
    pub fn mapped(&self) -> Option<SocketAddr> {
        self.mapped
    }

    /// Whether the relay is ready (allocated, not failed, not closed).
    pub fn is_allocated(&self) -> bool {
        self.state == State::Allocated
    }

    /// The next datagram for the server.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmits.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<TurnEvent> {
        self.events.pop_front()
    }

    /// When [`TurnClient::handle_timeout`] has something to do: a
    /// retransmission, a give-up or a refresh.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let transactions = self.transactions.iter().map(|t| t.deadline);
        // Refreshes wait for the allocation (permissions asked for before
        // it are due at once, but sent only once it is made).
        let allocated = self.is_allocated();
        let refreshes = self
            .refresh_due
            .into_iter()
            .chain(self.permissions.iter().filter_map(|p| p.due))
            .chain(self.channels.iter().filter_map(|c| c.due))
            .filter(|_| allocated);
        transactions.chain(refreshes).min()
    }

    /// Retransmits, gives up and refreshes what is due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut i = 0;
        while i < self.transactions.len() {
            let transaction = &mut self.transactions[i];
            if transaction.deadline > now {
                i += 1;
            } else if transaction.sends < TRIES {
                transaction.sends += 1;
                transaction.deadline = now + wait_after(transaction.sends);
                self.transmits.push_back(transaction.bytes.clone());
                i += 1;
            } else {
                let transaction = self.transactions.remove(i);
                let reason = format!("no answer from the server after {TRIES} tries");
                self.fail(transaction.request, reason);
            }
        }
        self.send_due(now);
    }

    /// Takes a datagram that came from the server.
    pub fn handle_datagram(&mut self, now: Instant, datagram: &[u8]) -> Received {
        if let Some(&first) = datagram.first()
            && (0x40..=0x7F).contains(&first)
        {
            return self.channel_data(datagram);
        }
        if !stun::looks_like_stun(datagram) {
            return Received::NotTurn;
        }
        let Ok(message) = stun::decode(datagram) else {
            return Received::NotTurn;
        };
        let class = message.kind & CLASS;
        if message.kind == DATA | INDICATION {
            return self.data_indication(datagram, &message.transaction);
        }
        if class != SUCCESS && class != ERROR {
            return Received::NotTurn;
        }
        let Some(at) = self
            .transactions
            .iter()
            .position(|t| t.id == message.transaction)
        else {
            return Received::NotTurn;
        };
        let transaction = &self.transactions[at];
        if message.kind & !CLASS != transaction.request.method() {
            return Received::Refused("a response of another method to a request of this client");
        }
        if transaction.authenticated {
            let key = &self
                .auth
                .as_ref()
                .expect("an authenticated request had a key")
                .key;
            match check_integrity(datagram, key) {
                Some(false) => {
                    return Received::Refused("a response whose MESSAGE-INTEGRITY is wrong");
                }
                None if class == SUCCESS => {
                    return Received::Refused("a success response without MESSAGE-INTEGRITY");
                }
                _ => {}
            }
        }
        let transaction = self.transactions.remove(at);
        if class == SUCCESS {
            self.success(now, transaction.request, datagram, message.mapped);
        } else {
            self.error(now, transaction, datagram);
        }
        Received::Consumed
    }

    /// Asks for a permission for `ip` (CreatePermission), kept and
    /// refreshed while the allocation lives. Asked before the allocation
    /// is made, it is sent once it is.
    pub fn permit(&mut self, now: Instant, ip: IpAddr) -> Result<(), TurnError> {
        if matches!(self.state, State::Failed | State::Closed) {
            return Err(TurnError::NotAllocated);
        }
        if self.permissions.iter().any(|p| p.ip == ip) {
            return Ok(());
        }
        if self.permissions.len() >= MAX_PERMISSIONS {
            return Err(TurnError::TooManyPermissions);
        }
        self.permissions.push(Permission {
            ip,
            installed: false,
            due: Some(now),
        });
        self.send_due(now);
        Ok(())
    }

    /// Binds a channel to `peer` (ChannelBind, with a permission for its
    /// address), kept and refreshed while the allocation lives; once it is
    /// confirmed ([`TurnEvent::ChannelBound`]), [`TurnClient::wrap`] sends
    /// ChannelData to `peer`.
    pub fn bind_channel(&mut self, now: Instant, peer: SocketAddr) -> Result<(), TurnError> {
        if matches!(self.state, State::Failed | State::Closed) {
            return Err(TurnError::NotAllocated);
        }
        if self.channels.iter().any(|c| c.peer == peer) {
            return Ok(());
        }
        if self.channels.len() >= MAX_CHANNELS || self.next_channel > LAST_CHANNEL {
            return Err(TurnError::TooManyChannels);
        }
        self.permit(now, peer.ip())?;
        self.channels.push(Channel {
            peer,
            number: self.next_channel,
            confirmed: false,
            due: Some(now),
        });
        self.next_channel += 1;
        self.send_due(now);
        Ok(())
    }

    /// Writes into `out` (cleared first) the datagram for the server that
    /// has the relay send `payload` to `peer` from the relayed address:
    /// ChannelData when a channel to `peer` is confirmed, else a Send
    /// indication. A permission for `peer`'s address is asked for when
    /// there is none (the relay drops what is sent before it is
    /// installed, as UDP may).
    pub fn wrap(
        &mut self,
        now: Instant,
        peer: SocketAddr,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), TurnError> {
        if !self.is_allocated() {
            return Err(TurnError::NotAllocated);
        }
        if payload.len() > MAX_PAYLOAD {
            return Err(TurnError::TooLarge);
        }
        self.permit(now, peer.ip())?;
        out.clear();
        if let Some(channel) = self.channels.iter().find(|c| c.peer == peer && c.confirmed) {
            let len = u16::try_from(payload.len()).expect("bounded by MAX_PAYLOAD");
            out.extend_from_slice(&channel.number.to_be_bytes());
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(payload);
            // Padded to 4 bytes as over TCP: RFC 8656 (12.5) allows it
            // over UDP, and the relay strips it by the length.
            out.resize(out.len().next_multiple_of(4), 0);
            return Ok(());
        }
        let id = self.transaction_id();
        let mut writer = Writer::new(SEND | INDICATION, &id);
        writer.attribute(ATTR_XOR_PEER_ADDRESS, &stun::encode_xor_address(peer, &id));
        writer.attribute(ATTR_DATA, payload);
        out.extend_from_slice(&writer.0);
        Ok(())
    }

    /// Deallocates (a Refresh with LIFETIME 0, retransmitted like any
    /// request; its answer, or none, is not reported) and forgets the
    /// permissions and channels. Nothing is relayed after it.
    pub fn close(&mut self, now: Instant) {
        let was_allocated = self.is_allocated();
        self.state = State::Closed;
        self.transactions.clear();
        self.permissions.clear();
        self.channels.clear();
        self.refresh_due = None;
        if was_allocated {
            self.send(now, Request::Refresh(0), 0);
        }
    }

    fn transaction_id(&mut self) -> [u8; 12] {
        let mut id = [0u8; 12];
        self.rng.fill_bytes(&mut id);
        id
    }

    /// Sends `request` as a new transaction.
    fn send(&mut self, now: Instant, request: Request, stale: u8) {
        let id = self.transaction_id();
        let mut writer = Writer::new(request.method(), &id);
        match request {
            Request::Allocate => {
                // UDP (protocol 17), then three RFFU bytes.
                writer.attribute(ATTR_REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
            }
            Request::Refresh(lifetime) => {
                writer.attribute(ATTR_LIFETIME, &lifetime.to_be_bytes());
            }
            Request::Permission(ip) => {
                // The port is ignored (RFC 8656, 10.1).
                let peer = SocketAddr::new(ip, 0);
                writer.attribute(ATTR_XOR_PEER_ADDRESS, &stun::encode_xor_address(peer, &id));
            }
            Request::ChannelBind { peer, channel } => {
                let [high, low] = channel.to_be_bytes();
                writer.attribute(ATTR_CHANNEL_NUMBER, &[high, low, 0, 0]);
                writer.attribute(ATTR_XOR_PEER_ADDRESS, &stun::encode_xor_address(peer, &id));
            }
        }
        let authenticated = self.auth.is_some();
        if let Some(auth) = &self.auth {
            writer.attribute(ATTR_USERNAME, self.username.as_bytes());
            writer.attribute(ATTR_REALM, &auth.realm);
            writer.attribute(ATTR_NONCE, &auth.nonce);
            writer.integrity(&auth.key);
        }
        writer.fingerprint();
        self.transmits.push_back(writer.0.clone());
        self.transactions.push(Transaction {
            id,
            request,
            bytes: writer.0,
            authenticated,
            sends: 1,
            deadline: now + wait_after(1),
            stale,
        });
    }

    /// Sends the refreshes, permissions and channels that are due.
    fn send_due(&mut self, now: Instant) {
        if !self.is_allocated() {
            return;
        }
        if self.refresh_due.is_some_and(|due| due <= now) {
            self.refresh_due = None;
            let lifetime = u32::try_from(self.lifetime.as_secs()).unwrap_or(u32::MAX);
            self.send(now, Request::Refresh(lifetime), 0);
        }
        let mut requests = Vec::new();
        for permission in &mut self.permissions {
            if permission.due.is_some_and(|due| due <= now) {
                permission.due = None;
                requests.push(Request::Permission(permission.ip));
            }
        }
        for channel in &mut self.channels {
            if channel.due.is_some_and(|due| due <= now) {
                channel.due = None;
                requests.push(Request::ChannelBind {
                    peer: channel.peer,
                    channel: channel.number,
                });
            }
        }
        for request in requests {
            self.send(now, request, 0);
        }
    }

    fn success(
        &mut self,
        now: Instant,
        request: Request,
        datagram: &[u8],
        mapped: Option<SocketAddr>,
    ) {
        let id: [u8; 12] = datagram[8..20].try_into().expect("a STUN header");
        match request {
            Request::Allocate => {
                let relayed = attribute(datagram, ATTR_XOR_RELAYED_ADDRESS)
                    .and_then(|value| stun::decode_xor_address(value, &id));
                let (Some(relayed), Some(mapped), Some(lifetime)) =
                    (relayed, mapped, lifetime(datagram))
                else {
                    let reason =
                        "a success without XOR-RELAYED-ADDRESS, XOR-MAPPED-ADDRESS or a LIFETIME";
                    return self.fail(request, reason.to_string());
                };
                self.state = State::Allocated;
                self.relayed = Some(relayed);
                self.mapped = Some(mapped);
                self.lifetime = lifetime;
                self.refresh_due = Some(now + lifetime - refresh_margin(lifetime));
                self.events.push_back(TurnEvent::Allocated {
                    relayed,
                    mapped,
                    lifetime,
                });
                self.send_due(now);
            }
            Request::Refresh(0) => {}
            Request::Refresh(_) => {
                let Some(lifetime) = lifetime(datagram) else {
                    return self.fail(request, "a success without a LIFETIME".to_string());
                };
                self.lifetime = lifetime;
                self.refresh_due = Some(now + lifetime - refresh_margin(lifetime));
                self.events.push_back(TurnEvent::Refreshed { lifetime });
            }
            Request::Permission(ip) => {
                if let Some(permission) = self.permissions.iter_mut().find(|p| p.ip == ip) {
                    permission.due = Some(now + PERMISSION_REFRESH);
                    if !permission.installed {
                        permission.installed = true;
                        self.events.push_back(TurnEvent::Permitted(ip));
                    }
                }
            }
            Request::ChannelBind { peer, channel } => {
                if let Some(bound) = self.channels.iter_mut().find(|c| c.number == channel) {
                    bound.due = Some(now + CHANNEL_REFRESH);
                    if !bound.confirmed {
                        bound.confirmed = true;
                        self.events
                            .push_back(TurnEvent::ChannelBound { peer, channel });
                    }
                }
            }
        }
    }

    fn error(&mut self, now: Instant, transaction: Transaction, datagram: &[u8]) {
        let Some(value) = attribute(datagram, stun::ATTR_ERROR_CODE).filter(|v| v.len() >= 4)
        else {
            let reason = "an error response without ERROR-CODE".to_string();
            return self.fail(transaction.request, reason);
        };
        let code = u16::from(value[2] & 7) * 100 + u16::from(value[3]);
        let realm = attribute(datagram, ATTR_REALM);
        let nonce = attribute(datagram, ATTR_NONCE);
        if [realm, nonce]
            .iter()
            .flatten()
            .any(|v| v.len() > MAX_REALM_OR_NONCE)
        {
            let reason =
                format!("{code} with a REALM or NONCE longer than {MAX_REALM_OR_NONCE} bytes");
            return self.fail(transaction.request, reason);
        }
        match (code, realm, nonce) {
            // The challenge: now the credentials (RFC 8489, 9.2.5).
            (401, Some(realm), Some(nonce)) if !transaction.authenticated => {
                let key = long_term_key(self.username.as_bytes(), realm, self.password.as_bytes());
                self.auth = Some(Auth {
                    realm: realm.to_vec(),
                    nonce: nonce.to_vec(),
                    key,
                });
                self.send(now, transaction.request, transaction.stale);
            }
            (438, realm, Some(nonce))
                if transaction.stale < MAX_STALE_RETRIES && self.auth.is_some() =>
            {
                let auth = self.auth.as_mut().expect("checked");
                auth.nonce = nonce.to_vec();
                if let Some(realm) = realm.filter(|r| *r != auth.realm.as_slice()) {
                    auth.realm = realm.to_vec();
                    auth.key =
                        long_term_key(self.username.as_bytes(), realm, self.password.as_bytes());
                }
                self.send(now, transaction.request, transaction.stale + 1);
            }
            _ => self.fail(transaction.request, reason(code, &value[4..])),
        }
    }

    /// Reports `request` failed, and what that ends.
    fn fail(&mut self, request: Request, reason: String) {
        match request {
            // Closing: nothing is left to report to.
            Request::Refresh(0) => return,
            Request::Allocate | Request::Refresh(_) => {
                if self.state == State::Closed {
                    return;
                }
                self.state = State::Failed;
                self.transactions.clear();
                self.permissions.clear();
                self.channels.clear();
                self.refresh_due = None;
            }
            Request::Permission(ip) => self.permissions.retain(|p| p.ip != ip),
            Request::ChannelBind { channel, .. } => self.channels.retain(|c| c.number != channel),
        }
        self.events.push_back(TurnEvent::Failed {
            what: request.what(),
            reason,
        });
    }

    fn data_indication(&mut self, datagram: &[u8], id: &[u8; 12]) -> Received {
        if !self.is_allocated() {
            return Received::Refused("a Data indication without an allocation");
        }
        let from = attribute(datagram, ATTR_XOR_PEER_ADDRESS)
            .and_then(|value| stun::decode_xor_address(value, id));
        match (from, attribute(datagram, ATTR_DATA)) {
            (Some(from), Some(payload)) => Received::Data {
                from,
                payload: payload.to_vec(),
            },
            _ => Received::Refused("a Data indication without XOR-PEER-ADDRESS or DATA"),
        }
    }

    /// A ChannelData message (RFC 8656, 12.4): channel number, length,
    /// the payload, perhaps padded to 4 bytes.
    fn channel_data(&self, datagram: &[u8]) -> Received {
        let Some(header) = datagram.get(..4) else {
            return Received::NotTurn;
        };
        let number = u16::from_be_bytes([header[0], header[1]]);
        let len = usize::from(u16::from_be_bytes([header[2], header[3]]));
        let Some(channel) = self.channels.iter().find(|c| c.number == number) else {
            return Received::NotTurn;
        };
        if !self.is_allocated() {
            return Received::Refused("ChannelData without an allocation");
        }
        if 4 + len > datagram.len() {
            return Received::Refused("ChannelData shorter than its length");
        }
        if datagram.len() > (4 + len).next_multiple_of(4) {
            return Received::Refused("ChannelData longer than its length and padding");
        }
        Received::Data {
            from: channel.peer,
            payload: datagram[4..4 + len].to_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// RFC 5769, 2.4: a Binding request with long-term authentication
    /// (USERNAME "マトリックス", NONCE, REALM "example.org",
    /// MESSAGE-INTEGRITY), password "TheMatrIX" after SASLprep.
    const LONG_TERM_REQUEST: [u8; 116] = [
        0x00, 0x01, 0x00, 0x60, 0x21, 0x12, 0xa4, 0x42, 0x78, 0xad, 0x34, 0x33, 0xc6, 0xad, 0x72,
        0xc0, 0x29, 0xda, 0x41, 0x2e, 0x00, 0x06, 0x00, 0x12, 0xe3, 0x83, 0x9e, 0xe3, 0x83, 0x88,
        0xe3, 0x83, 0xaa, 0xe3, 0x83, 0x83, 0xe3, 0x82, 0xaf, 0xe3, 0x82, 0xb9, 0x00, 0x00, 0x00,
        0x15, 0x00, 0x1c, 0x66, 0x2f, 0x2f, 0x34, 0x39, 0x39, 0x6b, 0x39, 0x35, 0x34, 0x64, 0x36,
        0x4f, 0x4c, 0x33, 0x34, 0x6f, 0x4c, 0x39, 0x46, 0x53, 0x54, 0x76, 0x79, 0x36, 0x34, 0x73,
        0x41, 0x00, 0x14, 0x00, 0x0b, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x2e, 0x6f, 0x72,
        0x67, 0x00, 0x00, 0x08, 0x00, 0x14, 0xf6, 0x70, 0x24, 0x65, 0x6d, 0xd6, 0x4a, 0x3e, 0x02,
        0xb8, 0xe0, 0x71, 0x2e, 0x85, 0xc9, 0xa2, 0x8c, 0xa8, 0x96, 0x66,
    ];

    const SERVER: &str = "192.0.2.1:3478";
    const RELAYED: &str = "192.0.2.1:50000";
    const MAPPED: &str = "198.51.100.7:40000";
    const PEER: &str = "203.0.113.9:7000";
    const REALM: &[u8] = b"dgram.test";

    fn key() -> [u8; 16] {
        long_term_key(b"u", REALM, b"p")
    }

    fn client(now: Instant) -> TurnClient {
        TurnClient::new(SERVER.parse().unwrap(), "u", "p", [7; 32], now)
    }

    /// A server's message: `attrs` in order, then MESSAGE-INTEGRITY with
    /// `key` when given, then FINGERPRINT.
    fn message(kind: u16, id: &[u8; 12], attrs: &[(u16, Vec<u8>)], key: Option<&[u8]>) -> Vec<u8> {
        let mut writer = Writer::new(kind, id);
        for (attr, value) in attrs {
            writer.attribute(*attr, value);
        }
        if let Some(key) = key {
            writer.integrity(key);
        }
        writer.fingerprint();
        writer.0
    }

    fn id_of(request: &[u8]) -> [u8; 12] {
        request[8..20].try_into().unwrap()
    }

    fn xor(addr: &str, id: &[u8; 12]) -> Vec<u8> {
        stun::encode_xor_address(addr.parse().unwrap(), id)
    }

    fn error_code(code: u16, phrase: &str) -> Vec<u8> {
        let mut value = vec![0, 0, (code / 100) as u8, (code % 100) as u8];
        value.extend_from_slice(phrase.as_bytes());
        value
    }

    fn challenge(id: &[u8; 12], nonce: &[u8]) -> Vec<u8> {
        message(
            ALLOCATE | ERROR,
            id,
            &[
                (stun::ATTR_ERROR_CODE, error_code(401, "Unauthorized")),
                (ATTR_REALM, REALM.to_vec()),
                (ATTR_NONCE, nonce.to_vec()),
            ],
            None,
        )
    }

    fn allocate_success(id: &[u8; 12], lifetime: u32, key: &[u8]) -> Vec<u8> {
        message(
            ALLOCATE | SUCCESS,
            id,
            &[
                (ATTR_XOR_RELAYED_ADDRESS, xor(RELAYED, id)),
                (ATTR_LIFETIME, lifetime.to_be_bytes().to_vec()),
                (stun::ATTR_XOR_MAPPED_ADDRESS, xor(MAPPED, id)),
            ],
            Some(key),
        )
    }

    /// A success to `request` with `attrs`, integrity-protected.
    fn success(request: &[u8], attrs: &[(u16, Vec<u8>)]) -> Vec<u8> {
        let method = u16::from_be_bytes([request[0], request[1]]);
        message(method | SUCCESS, &id_of(request), attrs, Some(&key()))
    }

    fn value(message: &[u8], kind: u16) -> Option<Vec<u8>> {
        attribute(message, kind).map(<[u8]>::to_vec)
    }

    fn events(client: &mut TurnClient) -> Vec<TurnEvent> {
        std::iter::from_fn(|| client.poll_event()).collect()
    }

    fn transmits(client: &mut TurnClient) -> Vec<Vec<u8>> {
        std::iter::from_fn(|| client.poll_transmit()).collect()
    }

    /// A client that went through the challenge and holds an allocation
    /// of `lifetime` seconds; its events are drained.
    fn allocated(now: Instant, lifetime: u32) -> TurnClient {
        let mut client = client(now);
        let first = client.poll_transmit().unwrap();
        client.handle_datagram(now, &challenge(&id_of(&first), b"nonce-1"));
        let second = client.poll_transmit().unwrap();
        let answer = allocate_success(&id_of(&second), lifetime, &key());
        assert_eq!(client.handle_datagram(now, &answer), Received::Consumed);
        assert!(client.is_allocated());
        events(&mut client);
        client
    }

    /// The key and the HMAC are RFC 5769's: the vector's MESSAGE-INTEGRITY
    /// checks with MD5("マトリックス:example.org:TheMatrIX"), not with
    /// another password, and writing the same attributes gives the
    /// vector's bytes exactly.
    #[test]
    fn rfc5769_long_term_vector() {
        let username = "\u{30de}\u{30c8}\u{30ea}\u{30c3}\u{30af}\u{30b9}".as_bytes();
        let key = long_term_key(username, b"example.org", b"TheMatrIX");
        assert_eq!(check_integrity(&LONG_TERM_REQUEST, &key), Some(true));
        let wrong = long_term_key(username, b"example.org", b"TheMatrix");
        assert_eq!(check_integrity(&LONG_TERM_REQUEST, &wrong), Some(false));
        let id = id_of(&LONG_TERM_REQUEST);
        let mut writer = Writer::new(stun::BINDING_REQUEST, &id);
        writer.attribute(ATTR_USERNAME, username);
        writer.attribute(ATTR_NONCE, b"f//499k954d6OL34oL9FSTvy64sA");
        writer.attribute(ATTR_REALM, b"example.org");
        writer.integrity(&key);
        assert_eq!(writer.0, LONG_TERM_REQUEST);
        // A message without MESSAGE-INTEGRITY has none to check.
        assert_eq!(check_integrity(&LONG_TERM_REQUEST[..92], &key), None);
    }

    /// The first Allocate asks for UDP without credentials; the 401 gives
    /// realm and nonce; the retry is a new transaction with USERNAME,
    /// REALM, NONCE, a MESSAGE-INTEGRITY made with MD5("u:realm:p") and
    /// FINGERPRINT; the success gives the relayed and mapped addresses.
    #[test]
    fn allocate_after_the_challenge() {
        let now = Instant::now();
        let mut client = client(now);
        let first = client.poll_transmit().unwrap();
        assert!(client.poll_transmit().is_none());
        let decoded = stun::decode(&first).unwrap();
        assert_eq!(decoded.kind, ALLOCATE);
        assert!(decoded.fingerprint);
        assert_eq!(
            value(&first, ATTR_REQUESTED_TRANSPORT),
            Some(vec![17, 0, 0, 0])
        );
        assert_eq!(value(&first, ATTR_USERNAME), None);
        assert_eq!(check_integrity(&first, &key()), None);

        let got = client.handle_datagram(now, &challenge(&id_of(&first), b"nonce-1"));
        assert_eq!(got, Received::Consumed);
        assert!(events(&mut client).is_empty());
        let second = client.poll_transmit().unwrap();
        assert_ne!(id_of(&second), id_of(&first));
        assert!(stun::decode(&second).unwrap().fingerprint);
        assert_eq!(value(&second, ATTR_USERNAME), Some(b"u".to_vec()));
        assert_eq!(value(&second, ATTR_REALM), Some(REALM.to_vec()));
        assert_eq!(value(&second, ATTR_NONCE), Some(b"nonce-1".to_vec()));
        assert_eq!(check_integrity(&second, &key()), Some(true));
        assert_eq!(
            check_integrity(&second, &long_term_key(b"u", REALM, b"q")),
            Some(false)
        );

        let got = client.handle_datagram(now, &allocate_success(&id_of(&second), 600, &key()));
        assert_eq!(got, Received::Consumed);
        assert_eq!(
            events(&mut client),
            vec![TurnEvent::Allocated {
                relayed: RELAYED.parse().unwrap(),
                mapped: MAPPED.parse().unwrap(),
                lifetime: Duration::from_secs(600),
            }]
        );
        assert!(client.is_allocated());
        assert_eq!(client.relayed(), Some(RELAYED.parse().unwrap()));
        assert_eq!(client.mapped(), Some(MAPPED.parse().unwrap()));
        // The same answer again matches no transaction.
        let again = allocate_success(&id_of(&second), 600, &key());
        assert_eq!(client.handle_datagram(now, &again), Received::NotTurn);
    }

    /// A 438 is answered by a new request with the new nonce; after
    /// MAX_STALE_RETRIES of them the request fails.
    #[test]
    fn stale_nonce_is_retried() {
        let now = Instant::now();
        let mut client = client(now);
        let first = client.poll_transmit().unwrap();
        client.handle_datagram(now, &challenge(&id_of(&first), b"nonce-1"));
        let mut request = client.poll_transmit().unwrap();
        for n in 2..2 + MAX_STALE_RETRIES {
            let nonce = format!("nonce-{n}").into_bytes();
            let stale = message(
                ALLOCATE | ERROR,
                &id_of(&request),
                &[
                    (stun::ATTR_ERROR_CODE, error_code(438, "Stale Nonce")),
                    (ATTR_REALM, REALM.to_vec()),
                    (ATTR_NONCE, nonce.clone()),
                ],
                None,
            );
            assert_eq!(client.handle_datagram(now, &stale), Received::Consumed);
            request = client.poll_transmit().unwrap();
            assert_eq!(value(&request, ATTR_NONCE), Some(nonce));
            assert_eq!(check_integrity(&request, &key()), Some(true));
        }
        assert!(events(&mut client).is_empty());
        let stale = message(
            ALLOCATE | ERROR,
            &id_of(&request),
            &[
                (stun::ATTR_ERROR_CODE, error_code(438, "Stale Nonce")),
                (ATTR_NONCE, b"nonce-9".to_vec()),
            ],
            None,
        );
        client.handle_datagram(now, &stale);
        assert_eq!(
            events(&mut client),
            vec![TurnEvent::Failed {
                what: "Allocate",
                reason: "438 Stale Nonce".to_string(),
            }]
        );
        assert!(!client.is_allocated());
        assert_eq!(client.poll_timeout(), None);
    }

    /// Once the key is known, a success whose MESSAGE-INTEGRITY is made
    /// with another key, or that has none, is refused and changes nothing:
    /// the request is still retransmitted, and the genuine answer counts.
    #[test]
    fn a_response_with_wrong_integrity_is_refused() {
        let now = Instant::now();
        let mut client = client(now);
        let first = client.poll_transmit().unwrap();
        client.handle_datagram(now, &challenge(&id_of(&first), b"nonce-1"));
        let second = client.poll_transmit().unwrap();
        let forged = allocate_success(&id_of(&second), 600, &long_term_key(b"u", REALM, b"x"));
        assert_eq!(
            client.handle_datagram(now, &forged),
            Received::Refused("a response whose MESSAGE-INTEGRITY is wrong")
        );
        let bare = message(
            ALLOCATE | SUCCESS,
            &id_of(&second),
            &[
                (ATTR_XOR_RELAYED_ADDRESS, xor(RELAYED, &id_of(&second))),
                (ATTR_LIFETIME, 600u32.to_be_bytes().to_vec()),
                (stun::ATTR_XOR_MAPPED_ADDRESS, xor(MAPPED, &id_of(&second))),
            ],
            None,
        );
        assert_eq!(
            client.handle_datagram(now, &bare),
            Received::Refused("a success response without MESSAGE-INTEGRITY")
        );
        assert!(!client.is_allocated());
        assert!(events(&mut client).is_empty());
        assert_eq!(client.poll_timeout(), Some(now + RTO));
        client.handle_timeout(now + RTO);
        assert_eq!(transmits(&mut client), vec![second.clone()]);
        let genuine = allocate_success(&id_of(&second), 600, &key());
        assert_eq!(client.handle_datagram(now, &genuine), Received::Consumed);
        assert!(client.is_allocated());
    }

    /// A 401 to a request that had credentials is the end: wrong user or
    /// password. Other codes say what they mean; a phrase this module does
    /// not know is shown as printable ASCII only.
    #[test]
    fn errors_fail_with_a_reason() {
        let now = Instant::now();
        let mut wrong = client(now);
        let first = wrong.poll_transmit().unwrap();
        wrong.handle_datagram(now, &challenge(&id_of(&first), b"nonce-1"));
        let second = wrong.poll_transmit().unwrap();
        wrong.handle_datagram(now, &challenge(&id_of(&second), b"nonce-2"));
        assert_eq!(
            events(&mut wrong),
            vec![TurnEvent::Failed {
                what: "Allocate",
                reason: "401 Unauthorized: wrong user or password".to_string(),
            }]
        );
        assert!(wrong.poll_transmit().is_none());
        assert_eq!(wrong.poll_timeout(), None);
        assert_eq!(
            wrong.permit(now, "192.0.2.9".parse().unwrap()),
            Err(TurnError::NotAllocated)
        );

        for (code, phrase, expected) in [
            (486, "", "486 Allocation Quota Reached"),
            (508, "whatever", "508 Insufficient Capacity"),
            (499, "odd\x1b[2Jphrase\u{202e}", "499 odd?[2Jphrase?"),
        ] {
            let mut client = client(now);
            let first = client.poll_transmit().unwrap();
            client.handle_datagram(now, &challenge(&id_of(&first), b"n"));
            let second = client.poll_transmit().unwrap();
            let error = message(
                ALLOCATE | ERROR,
                &id_of(&second),
                &[(stun::ATTR_ERROR_CODE, error_code(code, phrase))],
                Some(&long_term_key(b"u", REALM, b"p")),
            );
            assert_eq!(client.handle_datagram(now, &error), Received::Consumed);
            assert_eq!(
                events(&mut client),
                vec![TurnEvent::Failed {
                    what: "Allocate",
                    reason: expected.to_string(),
                }]
            );
        }
    }

    /// What would not fit a STUN message is refused, not sent: a username
    /// over 508 bytes fails at once; a server's REALM or NONCE over 763
    /// bytes ends the request that got it.
    #[test]
    fn oversized_credentials_fail() {
        let now = Instant::now();
        let long = "u".repeat(MAX_USERNAME + 1);
        let mut client = TurnClient::new(SERVER.parse().unwrap(), &long, "p", [1; 32], now);
        assert!(client.poll_transmit().is_none());
        assert_eq!(
            events(&mut client),
            vec![TurnEvent::Failed {
                what: "Allocate",
                reason: "a username longer than 508 bytes".to_string(),
            }]
        );
        let fits = "u".repeat(MAX_USERNAME);
        let mut client = TurnClient::new(SERVER.parse().unwrap(), &fits, "p", [1; 32], now);
        let first = client.poll_transmit().unwrap();
        let nonce = vec![b'n'; 65_000];
        client.handle_datagram(now, &challenge(&id_of(&first), &nonce));
        assert!(client.poll_transmit().is_none());
        assert_eq!(
            events(&mut client),
            vec![TurnEvent::Failed {
                what: "Allocate",
                reason: "401 with a REALM or NONCE longer than 763 bytes".to_string(),
            }]
        );
    }

    /// A server's LIFETIME: 0 is no allocation (the request fails rather
    /// than refresh with 0, which would deallocate); over a day is taken
    /// as a day.
    #[test]
    fn lifetimes_from_the_server_are_bounded() {
        let now = Instant::now();
        let mut client = client(now);
        let first = client.poll_transmit().unwrap();
        client.handle_datagram(now, &challenge(&id_of(&first), b"n"));
        let second = client.poll_transmit().unwrap();
        client.handle_datagram(now, &allocate_success(&id_of(&second), 0, &key()));
        assert!(matches!(
            &events(&mut client)[..],
            [TurnEvent::Failed {
                what: "Allocate",
                ..
            }]
        ));
        assert!(!client.is_allocated());

        let client = allocated(now, u32::MAX);
        assert_eq!(
            client.poll_timeout(),
            Some(now + MAX_LIFETIME - Duration::from_secs(60))
        );
    }

    /// Unanswered, a request is sent 7 times, 0.5, 1, 2, 4, 8 and 16 s
    /// apart, and fails 8 s after the last send: 39.5 s in all.
    #[test]
    fn retransmission_backs_off_then_gives_up() {
        let start = Instant::now();
        let mut client = client(start);
        let first = client.poll_transmit().unwrap();
        let mut sent_at = vec![Duration::ZERO];
        while let Some(at) = client.poll_timeout() {
            assert!(at - start <= Duration::from_secs(60), "runs away");
            client.handle_timeout(at);
            for datagram in transmits(&mut client) {
                assert_eq!(datagram, first, "the same request, same transaction id");
                sent_at.push(at - start);
            }
            if let Some(event) = client.poll_event() {
                assert_eq!(
                    event,
                    TurnEvent::Failed {
                        what: "Allocate",
                        reason: "no answer from the server after 7 tries".to_string(),
                    }
                );
                assert_eq!(at - start, Duration::from_millis(39_500));
                break;
            }
        }
        let ms: Vec<u128> = sent_at.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [0, 500, 1500, 3500, 7500, 15_500, 31_500]);
        assert!(!client.is_allocated());
        assert_eq!(client.poll_timeout(), None);
    }

    /// The allocation is refreshed a minute before it expires (540 s into
    /// 600 s), and half a lifetime before when that is under two minutes
    /// (2 s into 4 s), asking for the lifetime last granted; each success
    /// reports the new lifetime and sets the next refresh. Nothing is sent
    /// before it is due.
    #[test]
    fn refresh_timing() {
        assert_eq!(
            refresh_margin(Duration::from_secs(600)),
            Duration::from_secs(60)
        );
        assert_eq!(
            refresh_margin(Duration::from_secs(4)),
            Duration::from_secs(2)
        );
        let start = Instant::now();
        let mut client = allocated(start, 600);
        assert_eq!(
            client.poll_timeout(),
            Some(start + Duration::from_secs(540))
        );
        client.handle_timeout(start + Duration::from_secs(539));
        assert!(client.poll_transmit().is_none());
        let due = start + Duration::from_secs(540);
        client.handle_timeout(due);
        let refresh = client.poll_transmit().unwrap();
        assert_eq!(stun::decode(&refresh).unwrap().kind, REFRESH);
        // The lifetime granted is asked for again.
        assert_eq!(
            value(&refresh, ATTR_LIFETIME),
            Some(600u32.to_be_bytes().to_vec())
        );
        assert_eq!(check_integrity(&refresh, &key()), Some(true));
        let answer = success(&refresh, &[(ATTR_LIFETIME, 4u32.to_be_bytes().to_vec())]);
        assert_eq!(client.handle_datagram(due, &answer), Received::Consumed);
        assert_eq!(
            events(&mut client),
            vec![TurnEvent::Refreshed {
                lifetime: Duration::from_secs(4)
            }]
        );
        assert_eq!(client.poll_timeout(), Some(due + Duration::from_secs(2)));
        client.handle_timeout(due + Duration::from_secs(2));
        let refresh = client.poll_transmit().unwrap();
        assert_eq!(
            value(&refresh, ATTR_LIFETIME),
            Some(4u32.to_be_bytes().to_vec())
        );

        let start = Instant::now();
        let client = allocated(start, 4);
        assert_eq!(client.poll_timeout(), Some(start + Duration::from_secs(2)));
    }

    /// A permission: a CreatePermission with the peer's address, reported
    /// once, asked for again every 240 s (before its 300 s end). A channel:
    /// a ChannelBind with 0x4000 and the peer, then 0x4001 for the next
    /// peer, bound again every 540 s (before 600 s).
    #[test]
    fn permissions_and_channels_are_kept() {
        let start = Instant::now();
        let mut client = allocated(start, 3600);
        let peer: SocketAddr = PEER.parse().unwrap();
        client.permit(start, peer.ip()).unwrap();
        let request = client.poll_transmit().unwrap();
        assert_eq!(stun::decode(&request).unwrap().kind, CREATE_PERMISSION);
        let id = id_of(&request);
        let to = stun::decode_xor_address(&value(&request, ATTR_XOR_PEER_ADDRESS).unwrap(), &id);
        assert_eq!(to.map(|a| a.ip()), Some(peer.ip()));
        client.handle_datagram(start, &success(&request, &[]));
        assert_eq!(events(&mut client), vec![TurnEvent::Permitted(peer.ip())]);
        // Asked again: nothing new.
        client.permit(start, peer.ip()).unwrap();
        assert!(client.poll_transmit().is_none());
        assert_eq!(client.poll_timeout(), Some(start + PERMISSION_REFRESH));
        client.handle_timeout(start + PERMISSION_REFRESH);
        let again = client.poll_transmit().unwrap();
        assert_eq!(stun::decode(&again).unwrap().kind, CREATE_PERMISSION);
        client.handle_datagram(start + PERMISSION_REFRESH, &success(&again, &[]));
        assert!(events(&mut client).is_empty(), "a refresh is not news");

        let later = start + PERMISSION_REFRESH;
        client.bind_channel(later, peer).unwrap();
        let bind = client.poll_transmit().unwrap();
        assert_eq!(stun::decode(&bind).unwrap().kind, CHANNEL_BIND);
        assert_eq!(value(&bind, ATTR_CHANNEL_NUMBER), Some(vec![0x40, 0, 0, 0]));
        let to =
            stun::decode_xor_address(&value(&bind, ATTR_XOR_PEER_ADDRESS).unwrap(), &id_of(&bind));
        assert_eq!(to, Some(peer));
        client.handle_datagram(later, &success(&bind, &[]));
        assert_eq!(
            events(&mut client),
            vec![TurnEvent::ChannelBound {
                peer,
                channel: FIRST_CHANNEL
            }]
        );
        let other: SocketAddr = "203.0.113.9:7001".parse().unwrap();
        client.bind_channel(later, other).unwrap();
        let bind = client.poll_transmit().unwrap();
        assert_eq!(value(&bind, ATTR_CHANNEL_NUMBER), Some(vec![0x40, 1, 0, 0]));
        client.handle_datagram(later, &success(&bind, &[]));
        events(&mut client);
        // The permission is due again first (240 s after its refresh),
        // then both channels together (540 s after their binding).
        client.handle_timeout(later + PERMISSION_REFRESH);
        let kinds: Vec<u16> = transmits(&mut client)
            .iter()
            .map(|t| stun::decode(t).unwrap().kind)
            .collect();
        assert_eq!(kinds, [CREATE_PERMISSION]);
        client.handle_timeout(later + CHANNEL_REFRESH);
        let binds: Vec<Vec<u8>> = transmits(&mut client)
            .iter()
            .filter(|t| stun::decode(t).unwrap().kind == CHANNEL_BIND)
            .map(|t| value(t, ATTR_CHANNEL_NUMBER).unwrap())
            .collect();
        assert_eq!(binds, [vec![0x40, 0, 0, 0], vec![0x40, 1, 0, 0]]);
    }

    /// Permissions asked for before the allocation is made are sent once
    /// it is.
    #[test]
    fn a_permission_waits_for_the_allocation() {
        let now = Instant::now();
        let mut client = client(now);
        let first = client.poll_transmit().unwrap();
        client.permit(now, "203.0.113.9".parse().unwrap()).unwrap();
        assert!(client.poll_transmit().is_none());
        client.handle_datagram(now, &challenge(&id_of(&first), b"n"));
        let second = client.poll_transmit().unwrap();
        client.handle_datagram(now, &allocate_success(&id_of(&second), 600, &key()));
        let kinds: Vec<u16> = transmits(&mut client)
            .iter()
            .map(|t| stun::decode(t).unwrap().kind)
            .collect();
        assert_eq!(kinds, [CREATE_PERMISSION]);
    }

    /// Before a channel is confirmed, `wrap` makes a Send indication
    /// (XOR-PEER-ADDRESS, DATA: exactly the payload) and asks for the
    /// missing permission; a Data indication from the server is the
    /// peer's datagram.
    #[test]
    fn send_and_data_indications() {
        let now = Instant::now();
        let mut client = allocated(now, 600);
        let peer: SocketAddr = PEER.parse().unwrap();
        let mut out = vec![1, 2, 3];
        client.wrap(now, peer, b"hello", &mut out).unwrap();
        let permission = client.poll_transmit().unwrap();
        assert_eq!(stun::decode(&permission).unwrap().kind, CREATE_PERMISSION);
        let send = stun::decode(&out).unwrap();
        assert_eq!(send.kind, SEND | INDICATION);
        let to = stun::decode_xor_address(
            &value(&out, ATTR_XOR_PEER_ADDRESS).unwrap(),
            &send.transaction,
        );
        assert_eq!(to, Some(peer));
        assert_eq!(value(&out, ATTR_DATA), Some(b"hello".to_vec()));
        client.wrap(now, peer, b"", &mut out).unwrap();
        assert_eq!(value(&out, ATTR_DATA), Some(Vec::new()));
        assert!(client.poll_transmit().is_none(), "one permission request");

        let id = [9u8; 12];
        let data = message(
            DATA | INDICATION,
            &id,
            &[
                (ATTR_XOR_PEER_ADDRESS, xor(PEER, &id)),
                (ATTR_DATA, b"from the peer".to_vec()),
            ],
            None,
        );
        assert_eq!(
            client.handle_datagram(now, &data),
            Received::Data {
                from: peer,
                payload: b"from the peer".to_vec()
            }
        );
        let no_data = message(
            DATA | INDICATION,
            &id,
            &[(ATTR_XOR_PEER_ADDRESS, xor(PEER, &id))],
            None,
        );
        assert!(matches!(
            client.handle_datagram(now, &no_data),
            Received::Refused(_)
        ));
    }

    /// ChannelData: a 4-byte header (channel, length), the payload, padded
    /// to 4 bytes on send; on receipt the length is checked against the
    /// datagram and the padding dropped; an unknown channel is not ours.
    #[test]
    fn channel_data_framing() {
        let now = Instant::now();
        let mut client = allocated(now, 600);
        let peer: SocketAddr = PEER.parse().unwrap();
        client.bind_channel(now, peer).unwrap();
        let requests = transmits(&mut client);
        let bind = requests
            .iter()
            .find(|t| stun::decode(t).unwrap().kind == CHANNEL_BIND)
            .unwrap();
        let mut out = Vec::new();
        client.wrap(now, peer, b"early", &mut out).unwrap();
        assert!(
            stun::looks_like_stun(&out),
            "a Send indication until confirmed"
        );
        client.handle_datagram(now, &success(bind, &[]));

        for (payload, wire) in [
            (
                &b"hello"[..],
                &[
                    0x40, 0x00, 0x00, 0x05, b'h', b'e', b'l', b'l', b'o', 0, 0, 0,
                ][..],
            ),
            (b"four", &[0x40, 0x00, 0x00, 0x04, b'f', b'o', b'u', b'r']),
            (b"", &[0x40, 0x00, 0x00, 0x00]),
        ] {
            client.wrap(now, peer, payload, &mut out).unwrap();
            assert_eq!(out, wire);
            assert_eq!(
                client.handle_datagram(now, wire),
                Received::Data {
                    from: peer,
                    payload: payload.to_vec()
                }
            );
        }
        // Unpadded is fine over UDP.
        assert_eq!(
            client.handle_datagram(now, &[0x40, 0, 0, 2, b'h', b'i']),
            Received::Data {
                from: peer,
                payload: b"hi".to_vec()
            }
        );
        assert_eq!(
            client.handle_datagram(now, &[0x40, 0, 0, 9, b'h', b'i', 0, 0]),
            Received::Refused("ChannelData shorter than its length")
        );
        assert_eq!(
            client.handle_datagram(now, &[0x40, 0, 0, 1, b'h', 0, 0, 0, 0]),
            Received::Refused("ChannelData longer than its length and padding")
        );
        assert_eq!(
            client.handle_datagram(now, &[0x40, 7, 0, 0]),
            Received::NotTurn
        );
        assert_eq!(client.handle_datagram(now, &[0x40, 0]), Received::NotTurn);
        assert_eq!(
            client.wrap(now, peer, &vec![0; MAX_PAYLOAD + 1], &mut out),
            Err(TurnError::TooLarge)
        );
    }

    /// What is not this client's TURN: a dgram envelope, a response to
    /// another transaction (a Binding the caller sent itself).
    #[test]
    fn other_datagrams_are_not_turn() {
        let now = Instant::now();
        let mut client = allocated(now, 600);
        assert_eq!(
            client.handle_datagram(now, &[0xF5, 1, 0, 0]),
            Received::NotTurn
        );
        let binding = stun::binding_success(&[3; 12], MAPPED.parse().unwrap(), 40).unwrap();
        assert_eq!(client.handle_datagram(now, &binding), Received::NotTurn);
        assert_eq!(client.handle_datagram(now, &[]), Received::NotTurn);
    }

    /// At most MAX_PERMISSIONS permissions and MAX_CHANNELS channels.
    #[test]
    fn bounds() {
        let now = Instant::now();
        let mut client = allocated(now, 600);
        for n in 0..MAX_PERMISSIONS {
            let ip = IpAddr::from([10, 0, 0, n as u8]);
            client.permit(now, ip).unwrap();
        }
        assert_eq!(
            client.permit(now, "10.0.1.0".parse().unwrap()),
            Err(TurnError::TooManyPermissions)
        );
        let mut out = Vec::new();
        assert_eq!(
            client.wrap(now, "10.0.1.0:9".parse().unwrap(), b"x", &mut out),
            Err(TurnError::TooManyPermissions)
        );
        for n in 0..MAX_CHANNELS {
            let peer = SocketAddr::new(IpAddr::from([10, 0, 0, 0]), 1000 + n as u16);
            client.bind_channel(now, peer).unwrap();
        }
        assert_eq!(
            client.bind_channel(now, "10.0.0.0:9".parse().unwrap()),
            Err(TurnError::TooManyChannels)
        );
        assert_eq!(client.transactions.len(), MAX_PERMISSIONS + MAX_CHANNELS);
    }

    /// `close` sends a Refresh with LIFETIME 0 and stops everything else.
    #[test]
    fn close_deallocates() {
        let now = Instant::now();
        let mut client = allocated(now, 600);
        client.permit(now, "203.0.113.9".parse().unwrap()).unwrap();
        transmits(&mut client);
        client.close(now);
        assert!(!client.is_allocated());
        assert_eq!(client.relayed(), None);
        let refresh = client.poll_transmit().unwrap();
        assert_eq!(stun::decode(&refresh).unwrap().kind, REFRESH);
        assert_eq!(value(&refresh, ATTR_LIFETIME), Some(vec![0, 0, 0, 0]));
        assert_eq!(check_integrity(&refresh, &key()), Some(true));
        let answer = success(&refresh, &[(ATTR_LIFETIME, vec![0, 0, 0, 0])]);
        assert_eq!(client.handle_datagram(now, &answer), Received::Consumed);
        assert!(events(&mut client).is_empty());
        assert_eq!(client.poll_timeout(), None);
    }

    proptest! {
        /// Whatever a server sends (a response to a pending request of any
        /// method and class, with any attributes, or any ChannelData or
        /// bytes), the client does not panic, and it stays bounded.
        #[test]
        fn any_datagram_from_the_server_is_survived(
            kind in prop::sample::select(vec![
                ALLOCATE | SUCCESS, ALLOCATE | ERROR, REFRESH | SUCCESS, REFRESH | ERROR,
                CREATE_PERMISSION | SUCCESS, CREATE_PERMISSION | ERROR, CHANNEL_BIND | SUCCESS,
                CHANNEL_BIND | ERROR, DATA | INDICATION,
            ]),
            attrs in prop::collection::vec(
                (prop::sample::select(vec![
                    stun::ATTR_ERROR_CODE, ATTR_REALM, ATTR_NONCE, ATTR_LIFETIME,
                    ATTR_XOR_RELAYED_ADDRESS, stun::ATTR_XOR_MAPPED_ADDRESS,
                    ATTR_XOR_PEER_ADDRESS, ATTR_DATA, stun::ATTR_MESSAGE_INTEGRITY,
                ]), prop::collection::vec(any::<u8>(), 0..40)),
                0..6,
            ),
            with_key in any::<bool>(),
            raw in prop::collection::vec(any::<u8>(), 0..64),
        ) {
            let now = Instant::now();
            let mut client = allocated(now, 600);
            client.permit(now, "203.0.113.9".parse().unwrap()).unwrap();
            client.bind_channel(now, PEER.parse().unwrap()).unwrap();
            client.handle_timeout(now + Duration::from_secs(540));
            for request in transmits(&mut client) {
                let method = u16::from_be_bytes([request[0], request[1]]);
                let kind = if kind == DATA | INDICATION { kind } else { (kind & CLASS) | method };
                let key = key();
                let reply = message(kind, &id_of(&request), &attrs, with_key.then_some(&key[..]));
                client.handle_datagram(now, &reply);
            }
            client.handle_datagram(now, &raw);
            let mut channel = vec![0x40, 0x00];
            channel.extend_from_slice(&raw);
            client.handle_datagram(now, &channel);
            client.handle_timeout(now + Duration::from_secs(600));
            let _ = client.wrap(now, PEER.parse().unwrap(), &raw, &mut Vec::new());
            prop_assert!(client.permissions.len() <= MAX_PERMISSIONS);
            prop_assert!(client.channels.len() <= MAX_CHANNELS);
            prop_assert!(client.events.len() <= 8);
        }
    }
}
