//! Path MTU probes (`docs/PROTOCOL.md`, section 15) without input or
//! output: the wire form of kinds 14 (probe) and 15 (answer), a listener's
//! answer to a probe, and the prober's search ([`Search`]) for the largest
//! UDP payload that crosses a path whole, RFC 8899 (DPLPMTUD) style.
//!
//! The search never reads a clock or touches a socket: the caller hands
//! in the time, the tokens, the answers, the ICMP "too big" reports and
//! the sends the local interface refused, and takes out the probes to send
//! ([`Search::poll_transmit`]), the steps to show ([`Search::poll_step`])
//! and when to wake it ([`Search::poll_timeout`]).
//!
//! A size is **confirmed** only when a probe of exactly that size was
//! answered; an ICMP report of the path's MTU is a hint that picks the
//! next size to probe (RFC 8899 section 4.6), never an answer by itself.
//! So the result is exact: the largest size confirmed, with the size one
//! byte larger failed.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::envelope::{MAGIC, VERSION};

/// Kind byte of an MTU probe.
pub const KIND_PROBE: u8 = 14;
/// Kind byte of an MTU answer.
pub const KIND_ANSWER: u8 = 15;

/// The fixed part of a probe or an answer: header, direction, token, size.
pub const HEAD: usize = 14;

/// The largest UDP payload (IPv4: 65,535 − 20 − 8).
pub const MAX_PAYLOAD: usize = 65_507;

/// RFC 8899's BASE_PLPMTU: an IP packet of 1200 bytes crosses any path
/// worth measuring.
pub const BASE_PACKET: usize = 1200;

/// How many unanswered probes of one size fail it (RFC 8899's
/// MAX_PROBES).
pub const MAX_PROBES: u8 = 3;

/// Bytes of IPv4 and UDP header in front of a payload (no IP options).
pub const OVERHEAD_V4: usize = 28;
/// Bytes of IPv6 and UDP header in front of a payload (no extension
/// headers).
pub const OVERHEAD_V6: usize = 48;

/// Which way a probe measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From the prober to the listener: the probe itself is the
    /// measurement, its answer is small.
    Forward,
    /// From the listener to the prober: the probe asks for an answer of
    /// its size.
    Reverse,
}

impl Direction {
    fn byte(self) -> u8 {
        match self {
            Direction::Forward => 1,
            Direction::Reverse => 2,
        }
    }

    fn from_byte(byte: u8) -> Option<Direction> {
        match byte {
            1 => Some(Direction::Forward),
            2 => Some(Direction::Reverse),
            _ => None,
        }
    }

    /// The direction's name in output: "forward" or "reverse".
    pub fn name(self) -> &'static str {
        match self {
            Direction::Forward => "forward",
            Direction::Reverse => "reverse",
        }
    }
}

/// A probe or an answer, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wire {
    /// A probe (kind 14) or an answer (kind 15).
    pub answer: bool,
    /// Which way it measures.
    pub direction: Direction,
    /// The probe's token (an answer carries its probe's).
    pub token: [u8; 8],
    /// The size field (section 15.1: what it means depends on kind and
    /// direction).
    pub size: usize,
    /// The datagram's length.
    pub len: usize,
}

/// Why a kind 14 or 15 datagram is not a valid one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalid {
    /// Shorter than the 14-byte head.
    TooShort,
    /// A direction other than 1 or 2.
    BadDirection(u8),
    /// The size field does not fit the datagram's length.
    BadSize {
        /// The size field.
        size: usize,
        /// The datagram's length.
        len: usize,
    },
    /// A padding byte is not zero.
    Padding,
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Invalid::TooShort => write!(f, "MTU probe shorter than its {HEAD}-byte head"),
            Invalid::BadDirection(d) => write!(f, "MTU probe with unknown direction {d}"),
            Invalid::BadSize { size, len } => {
                write!(f, "MTU probe's size {size} does not fit its {len} bytes")
            }
            Invalid::Padding => write!(f, "MTU probe with non-zero padding"),
        }
    }
}

/// True when `datagram` is an envelope of kind 14 or 15 (valid or not).
pub fn is_mtu(datagram: &[u8]) -> bool {
    datagram.len() >= 3
        && datagram[0] == MAGIC
        && datagram[1] == VERSION
        && matches!(datagram[2], KIND_PROBE | KIND_ANSWER)
}

/// Reads a kind 14 or 15 datagram (the caller checked [`is_mtu`]) by the
/// rules of section 15.
pub fn parse(datagram: &[u8]) -> Result<Wire, Invalid> {
    if datagram.len() < HEAD {
        return Err(Invalid::TooShort);
    }
    let answer = datagram[2] == KIND_ANSWER;
    let direction = Direction::from_byte(datagram[3]).ok_or(Invalid::BadDirection(datagram[3]))?;
    let mut token = [0u8; 8];
    token.copy_from_slice(&datagram[4..12]);
    let size = usize::from(u16::from_be_bytes([datagram[12], datagram[13]]));
    let len = datagram.len();
    let fits = match (answer, direction) {
        (false, Direction::Forward) => size == len,
        (true, Direction::Forward) => len == HEAD && size >= HEAD,
        (false, Direction::Reverse) => size >= HEAD && size <= len,
        (true, Direction::Reverse) => size == len,
    };
    if !fits {
        return Err(Invalid::BadSize { size, len });
    }
    if datagram[HEAD..].iter().any(|&b| b != 0) {
        return Err(Invalid::Padding);
    }
    Ok(Wire {
        answer,
        direction,
        token,
        size,
        len,
    })
}

/// A forward probe that an echo server sent back cut short (it reads or
/// sends at most so many bytes): a kind 14 forward datagram whose size
/// field names more bytes than it has, the rest valid. Its token and the
/// size it had when it went out.
pub fn cut_echo(datagram: &[u8]) -> Option<([u8; 8], usize)> {
    if !is_mtu(datagram)
        || datagram.len() < HEAD
        || datagram[2] != KIND_PROBE
        || Direction::from_byte(datagram[3]) != Some(Direction::Forward)
    {
        return None;
    }
    let size = usize::from(u16::from_be_bytes([datagram[12], datagram[13]]));
    if size <= datagram.len() || datagram[HEAD..].iter().any(|&b| b != 0) {
        return None;
    }
    let mut token = [0u8; 8];
    token.copy_from_slice(&datagram[4..12]);
    Some((token, size))
}

fn build(kind: u8, direction: Direction, token: [u8; 8], size: usize, len: usize) -> Vec<u8> {
    debug_assert!((HEAD..=MAX_PAYLOAD).contains(&len) && size <= MAX_PAYLOAD);
    let mut datagram = vec![0u8; len];
    datagram[..4].copy_from_slice(&[MAGIC, VERSION, kind, direction.byte()]);
    datagram[4..12].copy_from_slice(&token);
    datagram[12..14].copy_from_slice(&(size as u16).to_be_bytes());
    datagram
}

/// A forward probe of `len` bytes (at least [`HEAD`], at most
/// [`MAX_PAYLOAD`]).
pub fn forward_probe(token: [u8; 8], len: usize) -> Vec<u8> {
    build(KIND_PROBE, Direction::Forward, token, len, len)
}

/// A reverse probe asking for an answer of `size` bytes; the request is
/// as long as the answer (section 15.3: the requester pays for it).
pub fn reverse_probe(token: [u8; 8], size: usize) -> Vec<u8> {
    build(KIND_PROBE, Direction::Reverse, token, size, size)
}

/// A listener's answer to a valid probe (`None` for an answer: answers
/// are never answered). Never longer than the probe.
pub fn answer(probe: &Wire) -> Option<Vec<u8>> {
    if probe.answer {
        return None;
    }
    Some(match probe.direction {
        Direction::Forward => build(
            KIND_ANSWER,
            Direction::Forward,
            probe.token,
            probe.len,
            HEAD,
        ),
        Direction::Reverse => build(
            KIND_ANSWER,
            Direction::Reverse,
            probe.token,
            probe.size,
            probe.size,
        ),
    })
}

/// How a search runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SearchConfig {
    /// Which way it measures.
    pub direction: Direction,
    /// The first size probed: known to cross almost anywhere.
    pub base: usize,
    /// The largest size worth probing (the local interface's limit when
    /// known, else [`MAX_PAYLOAD`]).
    pub max: usize,
    /// IP and UDP header bytes in front of a payload: an MTU less this is
    /// a payload size.
    pub overhead: usize,
    /// Unanswered probes of one size that fail it.
    pub max_probes: u8,
    /// How long a probe waits before the first round trip is measured.
    pub initial_timeout: Duration,
    /// The shortest wait for an answer, however fast the round trips.
    pub min_timeout: Duration,
}

impl SearchConfig {
    /// The usual search in `direction` over a family with `overhead`
    /// bytes of headers, up to `max`.
    pub fn new(direction: Direction, overhead: usize, max: usize) -> Self {
        SearchConfig {
            direction,
            base: (BASE_PACKET - overhead).min(max),
            max,
            overhead,
            max_probes: MAX_PROBES,
            initial_timeout: Duration::from_millis(500),
            min_timeout: Duration::from_millis(50),
        }
    }
}

/// One thing the search did or learned, in the order it happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// A probe of `size` bytes went out (`attempt` from 1).
    Sent {
        /// The probe's size.
        size: usize,
        /// Which probe of this size it is.
        attempt: u8,
    },
    /// A probe was answered: `size` is confirmed.
    Answered {
        /// The size confirmed.
        size: usize,
        /// Its round trip.
        rtt: Duration,
    },
    /// A probe's wait ran out.
    Lost {
        /// The probe's size.
        size: usize,
        /// Which probe of this size it was.
        attempt: u8,
        /// This was the last try: the size failed.
        failed: bool,
    },
    /// An ICMP "fragmentation needed"/"packet too big" came back for the
    /// probe of `size`: it failed, and `mtu` (when the router said) is the
    /// next size's hint.
    TooBig {
        /// The probe's size.
        size: usize,
        /// The MTU the router reported.
        mtu: Option<usize>,
    },
    /// The local interface refused to send `size` whole (`EMSGSIZE`).
    LocalTooBig {
        /// The size refused.
        size: usize,
        /// The interface's MTU, where the kernel said.
        mtu: Option<usize>,
    },
    /// The local stack could not send the probe of `size` for now
    /// (`ENOBUFS`, `EAGAIN`: its queue is full): the probe is lost like
    /// any other, and tried again when its wait runs out.
    NotSent {
        /// The probe's size.
        size: usize,
        /// Which probe of this size it was.
        attempt: u8,
    },
    /// An echo server sent the probe of `size` back cut to `echoed`
    /// bytes: it crossed (a datagram arrives whole or not at all), but
    /// nothing larger than `echoed` can come back.
    ShortEcho {
        /// The probe's size.
        size: usize,
        /// The bytes that came back.
        echoed: usize,
    },
}

/// How a size failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// [`MAX_PROBES`] probes of it went unanswered.
    Lost,
    /// An ICMP too-big came back for it.
    Icmp,
    /// The local interface refused to send it whole.
    Local,
}

/// How a search ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// `size` crosses, `size + 1` does not (or `size` is the most that is
    /// worth probing).
    Found {
        /// The largest payload confirmed.
        size: usize,
        /// `size` is the configured maximum: nothing larger was probed.
        at_max: bool,
    },
    /// No probe was ever answered.
    NoAnswer,
    /// An echo server sent a probe of `size` back cut to `echoed` bytes:
    /// the probe crossed whole, so the way there carries at least `size`,
    /// but the round trip cannot be measured beyond `echoed`.
    EchoLimit {
        /// The largest probe that reached the echo server (the one cut).
        size: usize,
        /// The most the echo server sends back.
        echoed: usize,
        /// The largest size that came back whole, if any.
        confirmed: Option<usize>,
    },
}

/// The probe in flight.
#[derive(Debug, Clone, Copy)]
struct InFlight {
    size: usize,
    token: [u8; 8],
    attempt: u8,
    sent: Instant,
    deadline: Instant,
}

/// One direction's search for the largest payload that crosses whole.
#[derive(Debug, Clone)]
pub struct Search {
    config: SearchConfig,
    /// The largest size answered.
    confirmed: Option<usize>,
    /// The smallest size failed (one past `max` until one fails).
    failed: usize,
    /// A size an ICMP report or the local interface suggested, to probe
    /// next.
    hint: Option<usize>,
    /// The size being probed and how many probes of it went unanswered.
    current: Option<(usize, u8)>,
    in_flight: Option<InFlight>,
    /// The tokens and send times of the earlier, unanswered probes of the
    /// size in flight: a late answer to one of them still confirms it.
    earlier: Vec<([u8; 8], Instant)>,
    /// The longest round trip seen: the waits follow it.
    rtt: Option<Duration>,
    steps: VecDeque<Step>,
    /// An ICMP too-big report came from the path (not the local
    /// interface).
    icmp_seen: bool,
    /// The local interface's limit, learned from an `EMSGSIZE`.
    local_limit: Option<usize>,
    /// How the smallest failed size failed.
    failed_how: Option<Failure>,
    outcome: Option<Outcome>,
}

impl Search {
    /// A search that has sent nothing yet.
    pub fn new(config: SearchConfig) -> Self {
        Search {
            failed: config.max + 1,
            config,
            confirmed: None,
            hint: None,
            current: None,
            in_flight: None,
            earlier: Vec::new(),
            rtt: None,
            steps: VecDeque::new(),
            icmp_seen: false,
            local_limit: None,
            failed_how: None,
            outcome: None,
        }
    }

    /// The search's configuration.
    pub fn config(&self) -> &SearchConfig {
        &self.config
    }

    /// The largest size answered so far.
    pub fn confirmed(&self) -> Option<usize> {
        self.confirmed
    }

    /// How the search ended, once it has.
    pub fn outcome(&self) -> Option<Outcome> {
        self.outcome
    }

    /// True when an ICMP too-big came from the path during the search.
    pub fn icmp_seen(&self) -> bool {
        self.icmp_seen
    }

    /// The local interface's largest payload, when a send told it.
    pub fn local_limit(&self) -> Option<usize> {
        self.local_limit
    }

    /// How the smallest size that failed failed (once one has): with
    /// [`Outcome::Found`], how one byte more than the answer failed.
    pub fn failed_how(&self) -> Option<Failure> {
        self.failed_how
    }

    /// The next step to show.
    pub fn poll_step(&mut self) -> Option<Step> {
        self.steps.pop_front()
    }

    /// When the probe in flight runs out of time.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.in_flight.map(|probe| probe.deadline)
    }

    /// The probe in flight, if any: its size and token.
    pub fn in_flight(&self) -> Option<(usize, [u8; 8])> {
        self.in_flight.map(|probe| (probe.size, probe.token))
    }

    /// How long a probe waits for its answer: four of the longest round
    /// trips seen (a loaded machine's answers are late, not lost), at
    /// least `min_timeout`.
    fn timeout(&self) -> Duration {
        match self.rtt {
            Some(rtt) => (rtt * 4 + Duration::from_millis(10)).clamp(
                self.config.min_timeout,
                self.config.initial_timeout.max(self.config.min_timeout),
            ),
            None => self.config.initial_timeout,
        }
    }

    /// The probe to send now, with `token` (fresh random bytes from the
    /// caller), or `None` when one is in flight or the search is over.
    pub fn poll_transmit(&mut self, now: Instant, token: [u8; 8]) -> Option<(usize, [u8; 8])> {
        self.handle_timeout(now);
        if self.in_flight.is_some() || self.outcome.is_some() {
            return None;
        }
        let (size, lost) = match self.current {
            Some(current) => current,
            None => (self.next_size(), 0),
        };
        let attempt = lost + 1;
        self.current = Some((size, lost));
        self.in_flight = Some(InFlight {
            size,
            token,
            attempt,
            sent: now,
            deadline: now + self.timeout(),
        });
        self.steps.push_back(Step::Sent { size, attempt });
        Some((size, token))
    }

    /// The size to probe next: a hint between confirmed and failed, else
    /// the base until it is answered, then the largest size once, then
    /// halfway.
    fn next_size(&self) -> usize {
        let low = self.confirmed.unwrap_or(HEAD - 1);
        if let Some(hint) = self.hint {
            if hint > low && hint < self.failed {
                return hint;
            }
            // The hint is confirmed: one byte more is all that is left to
            // fail, if the hint was right.
            if Some(hint) == self.confirmed && hint + 1 < self.failed {
                return hint + 1;
            }
        }
        if self.confirmed.is_none() && self.config.base < self.failed {
            return self.config.base;
        }
        if self.failed == self.config.max + 1 {
            return self.config.max;
        }
        low + (self.failed - low) / 2
    }

    /// Counts a probe whose wait ran out by `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(probe) = self.in_flight else { return };
        if now < probe.deadline {
            return;
        }
        self.in_flight = None;
        let failed = probe.attempt >= self.config.max_probes;
        self.steps.push_back(Step::Lost {
            size: probe.size,
            attempt: probe.attempt,
            failed,
        });
        if failed {
            // The base never answered: nobody is there (or nothing gets
            // through at all); searching lower would only find the same.
            if self.confirmed.is_none() && probe.size == self.config.base {
                self.current = None;
                self.earlier.clear();
                self.outcome = Some(Outcome::NoAnswer);
                return;
            }
            self.fail(probe.size, Failure::Lost);
        } else {
            self.current = Some((probe.size, probe.attempt));
            self.earlier.push((probe.token, probe.sent));
        }
    }

    /// True when `token` is the probe in flight's, or an earlier try's of
    /// the same size (an ICMP report or an answer about it is news).
    pub fn is_current(&self, token: [u8; 8]) -> bool {
        self.sent_at(token).is_some()
    }

    fn sent_at(&self, token: [u8; 8]) -> Option<Instant> {
        let probe = self.in_flight?;
        if probe.token == token {
            return Some(probe.sent);
        }
        self.earlier
            .iter()
            .find(|(earlier, _)| *earlier == token)
            .map(|(_, sent)| *sent)
    }

    /// An answer with `token` for a probe of `size` came at `now`. An
    /// answer to the probe in flight, or late to an earlier try of the
    /// same size, confirms it; any other (a size already settled,
    /// duplicated) is ignored.
    pub fn on_answer(&mut self, now: Instant, token: [u8; 8], size: usize) -> bool {
        let Some(probe) = self.in_flight else {
            return false;
        };
        let Some(sent) = self.sent_at(token).filter(|_| probe.size == size) else {
            return false;
        };
        // A late answer's round trip is long: the waits grow with it.
        let rtt = now.saturating_duration_since(sent);
        self.rtt = Some(self.rtt.map_or(rtt, |seen| seen.max(rtt)));
        self.in_flight = None;
        self.current = None;
        self.earlier.clear();
        self.steps.push_back(Step::Answered { size, rtt });
        self.confirmed = Some(self.confirmed.map_or(size, |c| c.max(size)));
        self.check_done();
        true
    }

    /// The probe in flight could not leave for now (a full queue:
    /// `ENOBUFS`, `EAGAIN`). It stays in flight: its wait runs out like a
    /// lost probe's and counts as one of [`MAX_PROBES`] tries, so that a
    /// busy interface slows the search down instead of ending it, and a
    /// size whose every send is refused fails like a lost one.
    pub fn on_not_sent(&mut self) {
        let Some(probe) = self.in_flight else { return };
        self.steps.push_back(Step::NotSent {
            size: probe.size,
            attempt: probe.attempt,
        });
    }

    /// The probe with `token`, of `size` bytes, came back from an echo
    /// server cut to `echoed` bytes (see [`cut_echo`]). The search
    /// ends: a larger probe would be cut too, and a smaller one measures
    /// only the echo server. False when it is not about the probe in
    /// flight (or an earlier try of its size).
    pub fn on_short_echo(&mut self, token: [u8; 8], size: usize, echoed: usize) -> bool {
        let Some(probe) = self.in_flight else {
            return false;
        };
        if probe.size != size || echoed >= size || self.sent_at(token).is_none() {
            return false;
        }
        self.in_flight = None;
        self.current = None;
        self.earlier.clear();
        self.steps.push_back(Step::ShortEcho { size, echoed });
        self.outcome = Some(Outcome::EchoLimit {
            size,
            echoed,
            confirmed: self.confirmed,
        });
        true
    }

    /// An ICMP too-big came back for the probe in flight, reporting `mtu`
    /// (an IP packet size) when the router said. The probe's size fails
    /// at once; `mtu` becomes a hint, to be confirmed by a probe.
    pub fn on_too_big(&mut self, mtu: Option<usize>) {
        let Some(probe) = self.in_flight else { return };
        self.icmp_seen = true;
        self.steps.push_back(Step::TooBig {
            size: probe.size,
            mtu,
        });
        self.take_hint(mtu);
        self.fail(probe.size, Failure::Icmp);
    }

    /// The local interface refused to send the probe in flight whole
    /// (`EMSGSIZE` on send), its MTU `mtu` when the kernel said.
    pub fn on_local_too_big(&mut self, mtu: Option<usize>) {
        let Some(probe) = self.in_flight else { return };
        self.steps.push_back(Step::LocalTooBig {
            size: probe.size,
            mtu,
        });
        if let Some(payload) = mtu.and_then(|mtu| mtu.checked_sub(self.config.overhead)) {
            self.local_limit = Some(payload);
        }
        self.take_hint(mtu);
        self.fail(probe.size, Failure::Local);
    }

    /// Takes `payload` as a hint before the search begins (the forward
    /// answer for the reverse search: paths are often symmetric). Like
    /// any hint it is probed, never believed.
    pub fn hint(&mut self, payload: usize) {
        if (HEAD..=self.config.max).contains(&payload) {
            self.hint = Some(payload);
        }
    }

    fn take_hint(&mut self, mtu: Option<usize>) {
        if let Some(payload) = mtu.and_then(|mtu| mtu.checked_sub(self.config.overhead))
            && payload >= HEAD
        {
            self.hint = Some(payload);
        }
    }

    fn fail(&mut self, size: usize, how: Failure) {
        self.in_flight = None;
        self.current = None;
        self.earlier.clear();
        if size < self.failed {
            self.failed = size;
            self.failed_how = Some(how);
        }
        if self.failed <= HEAD {
            self.outcome = Some(Outcome::NoAnswer);
            return;
        }
        self.check_done();
    }

    fn check_done(&mut self) {
        if let Some(size) = self.confirmed
            && size + 1 >= self.failed
        {
            self.outcome = Some(Outcome::Found {
                size,
                at_max: size == self.config.max,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The worked examples of PROTOCOL.md section 15.5, recomputed.
    #[test]
    fn worked_examples() {
        let probe = forward_probe([1, 2, 3, 4, 5, 6, 7, 8], 24);
        assert_eq!(
            hex(&probe),
            "f5 01 0e 01 01 02 03 04 05 06 07 08 00 18 00 00 00 00 00 00 00 00 00 00"
        );
        let answered = answer(&parse(&probe).unwrap()).unwrap();
        assert_eq!(hex(&answered), "f5 01 0f 01 01 02 03 04 05 06 07 08 00 18");

        let mut probe = reverse_probe([8, 7, 6, 5, 4, 3, 2, 1], 16);
        probe.extend_from_slice(&[0; 4]);
        assert_eq!(
            hex(&probe),
            "f5 01 0e 02 08 07 06 05 04 03 02 01 00 10 00 00 00 00 00 00"
        );
        let answered = answer(&parse(&probe).unwrap()).unwrap();
        assert_eq!(
            hex(&answered),
            "f5 01 0f 02 08 07 06 05 04 03 02 01 00 10 00 00"
        );
        assert_eq!(
            hex(&forward_probe([0; 8], 1372)[12..14]),
            "05 5c",
            "1372 = 0x055c"
        );
    }

    /// Section 15.2's malformed probes are refused, and no answer is ever
    /// longer than what it answers.
    #[test]
    fn malformed_probes_and_no_amplification() {
        let token = [9; 8];
        assert_eq!(
            parse(&forward_probe(token, 20)[..13]),
            Err(Invalid::TooShort)
        );
        let mut bad = forward_probe(token, 20);
        bad[3] = 3;
        assert_eq!(parse(&bad), Err(Invalid::BadDirection(3)));
        let mut cut = forward_probe(token, 20);
        cut.truncate(19);
        assert_eq!(parse(&cut), Err(Invalid::BadSize { size: 20, len: 19 }));
        let mut greedy = reverse_probe(token, 100);
        greedy.truncate(60);
        assert_eq!(parse(&greedy), Err(Invalid::BadSize { size: 100, len: 60 }));
        let mut tiny = reverse_probe(token, 20);
        tiny[12..14].copy_from_slice(&10u16.to_be_bytes());
        assert!(parse(&tiny).is_err(), "a size below the head");
        let mut smuggler = forward_probe(token, 20);
        smuggler[19] = 1;
        assert_eq!(parse(&smuggler), Err(Invalid::Padding));
        for len in [HEAD, 15, 100, 1372, MAX_PAYLOAD] {
            for probe in [forward_probe(token, len), reverse_probe(token, len)] {
                let wire = parse(&probe).unwrap();
                let out = answer(&wire).unwrap();
                assert!(out.len() <= probe.len(), "{} > {}", out.len(), probe.len());
                let back = parse(&out).unwrap();
                assert!(back.answer && back.token == token && back.size == len);
                assert_eq!(answer(&back), None, "an answer is never answered");
            }
        }
        assert!(is_mtu(&forward_probe(token, 20)));
        assert!(!is_mtu(&[0xF5, 1, 12]));
    }

    /// A simulated path: payloads up to `mtu - overhead` cross; larger
    /// ones are dropped by a router that reports the MTU or not; the local
    /// interface refuses more than `local - overhead`; every `lose`th
    /// probe is lost anyway.
    struct Path {
        mtu: usize,
        local: usize,
        icmp: bool,
        lose: Option<u32>,
        answers: bool,
        rtt: Duration,
    }

    /// Runs a search over `path` with a fake clock; the outcome, the
    /// steps, and the simulated time it took.
    fn run(path: &Path, direction: Direction) -> (Outcome, Vec<Step>, Duration) {
        let overhead = OVERHEAD_V4;
        let mut search = Search::new(SearchConfig::new(direction, overhead, MAX_PAYLOAD));
        let start = Instant::now();
        let mut now = start;
        let mut sent = 0u32;
        let mut steps = Vec::new();
        for _ in 0..10_000 {
            if search.outcome().is_some() {
                break;
            }
            let token = sent.to_be_bytes().repeat(2).try_into().unwrap();
            if let Some((size, token)) = search.poll_transmit(now, token) {
                sent += 1;
                let packet = size + overhead;
                if packet > path.local {
                    search.on_local_too_big(Some(path.local));
                } else if packet > path.mtu {
                    now += path.rtt / 2;
                    if path.icmp {
                        search.on_too_big(Some(path.mtu));
                    }
                } else if path.answers && path.lose.is_none_or(|n| !sent.is_multiple_of(n)) {
                    now += path.rtt;
                    search.on_answer(now, token, size);
                }
            } else if let Some(wake) = search.poll_timeout() {
                now = now.max(wake);
                search.handle_timeout(now);
            }
            while let Some(step) = search.poll_step() {
                steps.push(step);
            }
        }
        (
            search.outcome().expect("the search ends"),
            steps,
            now - start,
        )
    }

    fn path(mtu: usize, icmp: bool) -> Path {
        Path {
            mtu,
            local: 1500,
            icmp,
            lose: None,
            answers: true,
            rtt: Duration::from_micros(200),
        }
    }

    /// The search's own record of how one byte more failed: by ICMP, by
    /// loss, or at the local interface.
    #[test]
    fn how_one_byte_more_failed_is_kept() {
        let how = |mtu: usize, icmp: bool, local: usize| {
            let mut p = path(mtu, icmp);
            p.local = local;
            let mut search = Search::new(SearchConfig::new(
                Direction::Forward,
                OVERHEAD_V4,
                MAX_PAYLOAD,
            ));
            let mut now = Instant::now();
            for i in 0..1000u32 {
                if search.outcome().is_some() {
                    break;
                }
                if let Some((size, token)) = search.poll_transmit(now, [i as u8; 8]) {
                    if size + OVERHEAD_V4 > p.local {
                        search.on_local_too_big(Some(p.local));
                    } else if size + OVERHEAD_V4 > p.mtu {
                        if p.icmp {
                            search.on_too_big(Some(p.mtu));
                        }
                    } else {
                        now += p.rtt;
                        search.on_answer(now, token, size);
                    }
                } else if let Some(wake) = search.poll_timeout() {
                    now = wake;
                    search.handle_timeout(now);
                }
            }
            search.failed_how()
        };
        assert_eq!(how(1400, true, 1500), Some(Failure::Icmp));
        assert_eq!(how(1400, false, 1500), Some(Failure::Lost));
        assert_eq!(how(1500, true, 1500), Some(Failure::Local));
    }

    /// With ICMP, a 1400-byte path gives 1372 exactly, from the hint
    /// confirmed by a probe of 1372 and 1373 failed, not from the hint
    /// alone.
    #[test]
    fn icmp_hint_is_confirmed_by_probes() {
        let (outcome, steps, took) = run(&path(1400, true), Direction::Forward);
        assert_eq!(
            outcome,
            Outcome::Found {
                size: 1372,
                at_max: false
            }
        );
        assert!(steps.contains(&Step::TooBig {
            size: 1472,
            mtu: Some(1400)
        }));
        assert!(
            steps
                .iter()
                .any(|s| matches!(s, Step::Answered { size: 1372, .. }))
        );
        assert!(steps.contains(&Step::TooBig {
            size: 1373,
            mtu: Some(1400)
        }));
        assert!(took < Duration::from_millis(100), "{took:?}");
        let sent: Vec<usize> = steps
            .iter()
            .filter_map(|s| match s {
                Step::Sent { size, .. } => Some(*size),
                _ => None,
            })
            .collect();
        assert_eq!(
            sent,
            [1172, MAX_PAYLOAD, 1472, 1372, 1373],
            "base, the largest, the interface's hint, the router's hint, one more"
        );
    }

    /// A hint that is wrong either way (the reverse search seeded with a
    /// forward answer that does not hold back) still ends at the exact
    /// answer.
    #[test]
    fn a_wrong_hint_is_only_a_detour() {
        for (mtu, hint) in [(1400, 1200), (1400, 1450), (1300, 1372), (1400, 1372)] {
            let mut search = Search::new(SearchConfig::new(Direction::Reverse, OVERHEAD_V4, 1472));
            search.hint(hint);
            let start = Instant::now();
            let mut now = start;
            for i in 0..1000u32 {
                if search.outcome().is_some() {
                    break;
                }
                if let Some((size, token)) = search.poll_transmit(now, [i as u8; 8]) {
                    if size + OVERHEAD_V4 <= mtu {
                        now += Duration::from_micros(300);
                        search.on_answer(now, token, size);
                    }
                } else if let Some(wake) = search.poll_timeout() {
                    now = wake;
                    search.handle_timeout(now);
                }
            }
            assert_eq!(
                search.outcome(),
                Some(Outcome::Found {
                    size: mtu - OVERHEAD_V4,
                    at_max: false
                }),
                "path {mtu}, hint {hint}"
            );
        }
    }

    /// A black hole (no ICMP): the same exact answer, by probing alone,
    /// for every MTU between the base and the interface's, in well under
    /// 3 s of simulated time.
    #[test]
    fn black_hole_gives_the_same_answer() {
        for mtu in [1200, 1201, 1280, 1399, 1400, 1401, 1499, 1500] {
            let (outcome, steps, took) = run(&path(mtu, false), Direction::Reverse);
            let expected = mtu - OVERHEAD_V4;
            assert_eq!(
                outcome,
                Outcome::Found {
                    size: expected,
                    at_max: false
                },
                "{mtu}"
            );
            assert!(
                steps
                    .iter()
                    .any(|s| matches!(s, Step::Answered { size, .. } if *size == expected))
            );
            assert!(
                steps.contains(&Step::Lost {
                    size: expected + 1,
                    attempt: MAX_PROBES,
                    failed: true
                }) || steps.contains(&Step::LocalTooBig {
                    size: expected + 1,
                    mtu: Some(1500)
                }),
                "{mtu}: {steps:?}"
            );
            assert!(took < Duration::from_secs(3), "{mtu}: {took:?}");
        }
    }

    /// One probe lost now and then is tried again: a size fails only after
    /// MAX_PROBES unanswered probes, so the answer stays exact.
    #[test]
    fn scattered_loss_does_not_change_the_answer() {
        for lose in [2, 3, 5] {
            let mut lossy = path(1400, false);
            lossy.lose = Some(lose);
            let (outcome, _, _) = run(&lossy, Direction::Forward);
            assert_eq!(
                outcome,
                Outcome::Found {
                    size: 1372,
                    at_max: false
                },
                "every {lose}th lost"
            );
        }
    }

    /// On a path slower than the first wait (500 ms until a round trip is
    /// measured), the first try's answer comes during the second: it
    /// still confirms the size, and the waits grow to the round trip.
    #[test]
    fn a_late_answer_to_an_earlier_try_confirms() {
        let mut search = Search::new(SearchConfig::new(Direction::Forward, OVERHEAD_V4, 1472));
        let start = Instant::now();
        let (size, first) = search.poll_transmit(start, [1; 8]).unwrap();
        assert_eq!(size, 1172);
        let later = start + Duration::from_millis(500);
        search.handle_timeout(later);
        let (again, second) = search.poll_transmit(later, [2; 8]).unwrap();
        assert_eq!((again, search.is_current(first)), (1172, true));
        assert!(search.on_answer(start + Duration::from_millis(700), first, 1172));
        assert!(
            !search.on_answer(start + Duration::from_millis(900), second, 1172),
            "settled"
        );
        let (next, _) = search.poll_transmit(later, [3; 8]).unwrap();
        assert_eq!(next, 1472);
        assert!(
            search.poll_timeout().unwrap() - later >= Duration::from_millis(500),
            "the wait follows the 700 ms round trip (capped at the first wait)"
        );
        assert!(
            !search.is_current(first),
            "a new size: old tokens are no news"
        );
    }

    /// An echo server that sends back at most 8192 bytes (socat's
    /// buffer): the first probe over it comes back cut, which ends the
    /// search at once with the echo's limit, not as a loss; a cut echo
    /// of another size or token is no news.
    #[test]
    fn a_cut_echo_ends_the_search_at_the_echo_limit() {
        let mut search = Search::new(SearchConfig::new(
            Direction::Forward,
            OVERHEAD_V4,
            MAX_PAYLOAD,
        ));
        let now = Instant::now();
        let (size, token) = search.poll_transmit(now, [1; 8]).unwrap();
        assert!(search.on_answer(now, token, size));
        let (size, token) = search.poll_transmit(now, [2; 8]).unwrap();
        assert_eq!(size, MAX_PAYLOAD);
        let mut cut = forward_probe(token, size);
        cut.truncate(8192);
        assert_eq!(cut_echo(&cut), Some((token, size)));
        assert_eq!(cut_echo(&forward_probe(token, 100)), None, "whole");
        assert!(!search.on_short_echo([9; 8], size, 8192), "another token");
        assert!(!search.on_short_echo(token, size - 1, 8192), "another size");
        assert!(search.on_short_echo(token, size, 8192));
        assert_eq!(
            search.outcome(),
            Some(Outcome::EchoLimit {
                size: MAX_PAYLOAD,
                echoed: 8192,
                confirmed: Some(1172)
            })
        );
        let steps: Vec<Step> = std::iter::from_fn(|| search.poll_step()).collect();
        assert!(steps.contains(&Step::ShortEcho {
            size: MAX_PAYLOAD,
            echoed: 8192
        }));
        assert!(!steps.iter().any(|s| matches!(s, Step::Lost { .. })));
    }

    /// A probe the stack could not send (ENOBUFS) is one lost try: it
    /// is tried again after its wait, the search goes on to the answer;
    /// a size whose every send fails fails like a lost one.
    #[test]
    fn a_probe_not_sent_is_a_lost_try() {
        let mut search = Search::new(SearchConfig::new(Direction::Forward, OVERHEAD_V4, 1472));
        let mut now = Instant::now();
        let (size, token) = search.poll_transmit(now, [1; 8]).unwrap();
        search.on_answer(now, token, size);
        let mut refused = 0;
        for i in 2..40u8 {
            if search.outcome().is_some() {
                break;
            }
            if let Some((size, token)) = search.poll_transmit(now, [i; 8]) {
                // The 1472-byte probes never leave (a full queue); the
                // others cross when they do, up to 1372.
                if size == 1472 || (size > 1372 && i % 2 == 0) {
                    search.on_not_sent();
                    refused += 1;
                } else if size <= 1372 {
                    search.on_answer(now, token, size);
                }
            } else if let Some(wake) = search.poll_timeout() {
                now = wake;
                search.handle_timeout(now);
            }
        }
        let steps: Vec<Step> = std::iter::from_fn(|| search.poll_step()).collect();
        assert!(refused >= MAX_PROBES, "{steps:?}");
        assert_eq!(
            steps
                .iter()
                .filter(|s| matches!(s, Step::NotSent { size: 1472, .. }))
                .count(),
            MAX_PROBES as usize,
            "tried again up to MAX_PROBES: {steps:?}"
        );
        assert!(steps.contains(&Step::Lost {
            size: 1472,
            attempt: MAX_PROBES,
            failed: true
        }));
        assert_eq!(
            search.outcome(),
            Some(Outcome::Found {
                size: 1372,
                at_max: false
            }),
            "{steps:?}"
        );
    }

    /// Nobody answering ends the search after MAX_PROBES base probes; a
    /// path below the base is still searched (down from the base).
    #[test]
    fn silence_and_small_paths() {
        let mut silent = path(1500, false);
        silent.answers = false;
        let (outcome, steps, _) = run(&silent, Direction::Forward);
        assert_eq!(outcome, Outcome::NoAnswer);
        assert_eq!(
            steps
                .iter()
                .filter(|s| matches!(s, Step::Sent { .. }))
                .count(),
            MAX_PROBES as usize
        );
        let (outcome, _, _) = run(&path(576, true), Direction::Forward);
        assert_eq!(
            outcome,
            Outcome::Found {
                size: 548,
                at_max: false
            }
        );
        let (outcome, _, _) = run(&path(576, false), Direction::Forward);
        assert_eq!(
            outcome,
            Outcome::NoAnswer,
            "a black hole below the base: the base is lost"
        );
        let mut loopback = path(65_536, false);
        loopback.local = 65_536;
        let (outcome, _, _) = run(&loopback, Direction::Forward);
        assert_eq!(
            outcome,
            Outcome::Found {
                size: MAX_PAYLOAD,
                at_max: true
            }
        );
    }
}
