//! A token bucket: `rate` tokens a second, holding at most `burst`. It
//! paces what a peer may make this side do: echo replies (`--echo-rate`),
//! handshakes answered without a cookie, a rendezvous source's datagrams.

use std::time::Instant;

/// Tokens refilled at a rate, up to a burst.
#[derive(Debug, Clone, Copy)]
pub struct TokenBucket {
    tokens: f64,
    /// When `tokens` was last brought up to date.
    at: Instant,
    rate: f64,
    burst: f64,
}

impl TokenBucket {
    /// A full bucket of `burst` tokens, refilled at `rate` a second.
    pub fn full(rate: f64, burst: f64, now: Instant) -> TokenBucket {
        TokenBucket {
            tokens: burst,
            at: now,
            rate,
            burst,
        }
    }

    /// Tokens there would be at `now` (without taking any).
    fn at(&self, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        (self.tokens + elapsed * self.rate).min(self.burst)
    }

    /// Takes one token at `now`; false when there is none.
    pub fn take(&mut self, now: Instant) -> bool {
        self.tokens = self.at(now);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// True when the bucket is full again at `now`: it remembers nothing
    /// a new one would not (so it may be forgotten).
    pub fn is_full(&self, now: Instant) -> bool {
        self.at(now) >= self.burst
    }

    /// When a token was last taken (or asked for).
    pub fn last(&self) -> Instant {
        self.at
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// A burst passes, the next is refused, and the bucket refills at its
    /// rate up to the burst, never above.
    #[test]
    fn burst_then_rate() {
        let start = Instant::now();
        let mut bucket = TokenBucket::full(10.0, 3.0, start);
        assert_eq!((0..5).filter(|_| bucket.take(start)).count(), 3);
        assert!(!bucket.is_full(start));
        let later = start + Duration::from_millis(200);
        assert_eq!((0..5).filter(|_| bucket.take(later)).count(), 2);
        assert!(bucket.is_full(later + Duration::from_secs(10)));
        let much_later = later + Duration::from_secs(10);
        assert_eq!((0..5).filter(|_| bucket.take(much_later)).count(), 3);
    }
}
