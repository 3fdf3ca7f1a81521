//! The `--echo` handler: every datagram is shown and sent back to its
//! sender unchanged (so an echo never sends more than it received), within
//! a per-peer rate limit.
//!
//! Two echo servers that receive one datagram spoofed to come from the
//! other would answer each other forever, as fast as the network goes. A
//! token bucket per peer (`--echo-rate` replies per second, bursts of up to
//! one second's worth) ends such a loop: the loop runs far faster than the
//! bucket refills, so it soon meets an empty bucket, that one reply is held
//! back, and nothing is left in flight. A datagram that claims to come from
//! this very socket is never answered, nor one cut short by `--max-size`
//! (what is left is not what was sent).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

use super::outbox::{Closed, Outbox};
use super::receiver::Handler;
use crate::error::report;
use crate::model::{Datagram, EchoSkip, Event};
use crate::net::addr::is_local;
use crate::proto::bucket::TokenBucket;

/// The default `--echo-rate`: replies per second to one peer.
pub const DEFAULT_ECHO_RATE: u32 = 1000;

/// The most peers whose buckets are kept at once; beyond it, full buckets
/// (peers quiet for a second or more) are forgotten first, then the
/// longest quiet one, so that spoofed sources cannot grow memory.
const MAX_BUCKETS: usize = 4096;

/// Per-peer reply budgets.
#[derive(Debug)]
pub struct RateLimiter {
    /// Replies per second to one peer.
    rate: f64,
    buckets: HashMap<SocketAddr, TokenBucket>,
}

impl RateLimiter {
    /// A limiter allowing `per_second` replies per second to each peer,
    /// with bursts of up to `per_second`.
    pub fn new(per_second: u32) -> Self {
        RateLimiter {
            rate: f64::from(per_second.max(1)),
            buckets: HashMap::new(),
        }
    }

    /// Takes a token for `peer` at `now`; false when its bucket is empty.
    pub fn allow(&mut self, peer: SocketAddr, now: Instant) -> bool {
        if !self.buckets.contains_key(&peer) && self.buckets.len() >= MAX_BUCKETS {
            self.make_room(now);
        }
        let rate = self.rate;
        self.buckets
            .entry(peer)
            .or_insert_with(|| TokenBucket::full(rate, rate, now))
            .take(now)
    }

    /// How many peers have a bucket.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    /// True when no peer has a bucket.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    fn make_room(&mut self, now: Instant) {
        // A bucket that would be full again is no different from a new one.
        self.buckets.retain(|_, b| !b.is_full(now));
        if self.buckets.len() >= MAX_BUCKETS
            && let Some(oldest) = self
                .buckets
                .iter()
                .min_by_key(|(_, b)| b.last())
                .map(|(addr, _)| *addr)
        {
            self.buckets.remove(&oldest);
        }
    }
}

/// Shows each datagram and answers it with the same bytes.
#[derive(Debug)]
pub struct Echo {
    /// This socket's address: datagrams claiming to come from it are not
    /// answered.
    local: SocketAddr,
    /// `None`: no limit (`--echo-rate 0`).
    limiter: Option<RateLimiter>,
}

impl Echo {
    /// An echo for the socket bound to `local`, answering each peer at most
    /// `rate` times a second (`0`: no limit).
    pub fn new(local: SocketAddr, rate: u32) -> Self {
        Echo {
            local,
            limiter: (rate > 0).then(|| RateLimiter::new(rate)),
        }
    }

    /// True when `from` is this socket itself.
    fn is_own(&self, from: SocketAddr) -> bool {
        if from == self.local {
            return true;
        }
        from.port() == self.local.port() && self.local.ip().is_unspecified() && is_local(from.ip())
    }
}

impl Echo {
    /// Answers `datagram` first, then reports it as `received` makes it;
    /// or reports it and why it was not answered.
    fn answer(
        &mut self,
        datagram: Datagram,
        received: impl FnOnce(Datagram) -> Event,
        outbox: &Outbox,
    ) -> Result<(), Closed> {
        let from = datagram.from;
        let skip = if self.is_own(from) {
            Some(EchoSkip::OwnAddress)
        } else if datagram.truncated {
            Some(EchoSkip::Truncated)
        } else if let Some(limiter) = &mut self.limiter
            && !limiter.allow(from, Instant::now())
        {
            Some(EchoSkip::RateLimited)
        } else {
            None
        };
        if let Some(reason) = skip {
            let len = datagram.len();
            outbox.emit_received(received(datagram))?;
            return outbox.emit(Event::EchoSkipped {
                peer: from,
                len,
                reason,
            });
        }
        match outbox.echo_first(datagram, received)? {
            Ok(()) => Ok(()),
            // A reply that cannot go out is a report, not the end of the
            // listener: the next sender may well be reachable.
            Err(error) => outbox.emit(Event::PeerError {
                peer: from,
                error: format!("echo reply not sent: {}", report(&error)),
            }),
        }
    }
}

impl Handler for Echo {
    /// The reply goes out first (before the datagram is shown or counted),
    /// so that the display is never on a peer's round trip.
    fn on_datagram(&mut self, datagram: Datagram, outbox: &Outbox) -> Result<(), Closed> {
        self.answer(datagram, Event::Datagram, outbox)
    }

    /// A datagram that starts like a dgram envelope (byte 0xF5) is still a
    /// datagram to echo: it is answered, and shown marked malformed.
    fn on_malformed(
        &mut self,
        datagram: Datagram,
        reason: String,
        outbox: &Outbox,
    ) -> Result<(), Closed> {
        self.answer(
            datagram,
            |datagram| Event::Malformed { datagram, reason },
            outbox,
        )
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    /// A burst of `rate` replies passes, the next is held back, and the
    /// bucket refills at `rate` per second; peers have separate buckets.
    #[test]
    fn bucket_allows_a_burst_then_the_rate() {
        let mut limiter = RateLimiter::new(10);
        let start = Instant::now();
        let allowed = (0..25).filter(|_| limiter.allow(addr(1), start)).count();
        assert_eq!(allowed, 10);
        assert!(limiter.allow(addr(2), start), "another peer has its own");
        assert!(!limiter.allow(addr(1), start));
        let later = start + Duration::from_millis(500);
        let refilled = (0..25).filter(|_| limiter.allow(addr(1), later)).count();
        assert_eq!(refilled, 5, "half a second at 10/s");
    }

    /// However many peers write, the limiter keeps at most MAX_BUCKETS.
    #[test]
    fn buckets_are_bounded() {
        let mut limiter = RateLimiter::new(10);
        let now = Instant::now();
        for i in 0..(MAX_BUCKETS as u32 + 100) {
            let peer = SocketAddr::from(([10, 0, (i >> 8) as u8, i as u8], 7));
            limiter.allow(peer, now);
        }
        assert!(limiter.len() <= MAX_BUCKETS, "{}", limiter.len());
    }

    /// A datagram from the socket's own address is never answered; a
    /// wildcard-bound socket recognises its port on a loopback address.
    #[test]
    fn own_address_is_recognised() {
        let echo = Echo::new(addr(7000), 10);
        assert!(echo.is_own(addr(7000)));
        assert!(!echo.is_own(addr(7001)));
        let wildcard = Echo::new(SocketAddr::from(([0, 0, 0, 0], 7000)), 10);
        assert!(wildcard.is_own(addr(7000)));
        assert!(!wildcard.is_own(addr(7001)));
    }
}
