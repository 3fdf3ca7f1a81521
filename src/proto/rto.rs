//! Retransmission timers, after RFC 6298 (as RFC 8085 asks of UDP
//! applications): a smoothed round-trip time and its variation per peer,
//! a timeout of `SRTT + 4·RTTVAR` with a floor, exponential backoff with
//! jitter.
//!
//! Karn's rule asks for samples only from unambiguous acknowledgements.
//! dgram's receipts name the try they acknowledge, so every receipt is
//! unambiguous: its sample is measured from the send of that very try,
//! even after retransmissions.

use std::time::Duration;

use super::random::Rng;

/// The timeout before any round-trip sample (RFC 6298, 2.1).
pub const INITIAL_RTO: Duration = Duration::from_secs(1);

/// The default floor of the timeout (`--rto-min`). RFC 6298 asks for 1 s
/// on the open Internet; a chat on a LAN or loopback has round trips of
/// well under a millisecond, and 200 ms (Linux TCP's floor) lets a lost
/// message be sent again before a person notices the wait.
pub const DEFAULT_RTO_MIN: Duration = Duration::from_millis(200);

/// The ceiling of the timeout (RFC 6298, 2.5).
pub const MAX_RTO: Duration = Duration::from_secs(60);

/// The default `--retries`: tries after the first.
pub const DEFAULT_RETRIES: u8 = 4;

/// Each timeout is stretched by a random factor of up to this much (25%),
/// so that peers that lost the same datagrams do not retry in step.
const JITTER: f64 = 0.25;

/// How the timers are set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtoConfig {
    /// Retransmissions after the first try (`--retries`).
    pub retries: u8,
    /// The floor of the timeout (`--rto-min`).
    pub min: Duration,
}

impl Default for RtoConfig {
    fn default() -> Self {
        RtoConfig {
            retries: DEFAULT_RETRIES,
            min: DEFAULT_RTO_MIN,
        }
    }
}

/// The round-trip estimate to one peer (RFC 6298, section 2).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Estimator {
    srtt: Option<Duration>,
    rttvar: Duration,
    min: Option<Duration>,
    samples: u64,
}

impl Estimator {
    /// Takes one round-trip sample.
    pub fn sample(&mut self, rtt: Duration) {
        self.samples += 1;
        self.min = Some(self.min.map_or(rtt, |min| min.min(rtt)));
        match self.srtt {
            None => {
                self.srtt = Some(rtt);
                self.rttvar = rtt / 2;
            }
            Some(srtt) => {
                let delta = srtt.abs_diff(rtt);
                self.rttvar = (self.rttvar * 3 + delta) / 4;
                self.srtt = Some((srtt * 7 + rtt) / 8);
            }
        }
    }

    /// The smoothed round-trip time, once there is a sample.
    pub fn srtt(&self) -> Option<Duration> {
        self.srtt
    }

    /// The smallest round trip seen.
    pub fn min(&self) -> Option<Duration> {
        self.min
    }

    /// How many samples were taken.
    pub fn samples(&self) -> u64 {
        self.samples
    }

    /// The retransmission timeout: 1 s before any sample, then
    /// `SRTT + max(1 ms, 4·RTTVAR)`, within `[config.min, 60 s]`.
    pub fn rto(&self, config: &RtoConfig) -> Duration {
        let rto = match self.srtt {
            None => INITIAL_RTO,
            Some(srtt) => srtt + (self.rttvar * 4).max(Duration::from_millis(1)),
        };
        rto.clamp(config.min, MAX_RTO.max(config.min))
    }
}

/// The timeout after try `attempt` (from 1): the base timeout doubled for
/// every earlier try, at most 60 s, stretched by up to 25% at random.
pub fn backoff(base: Duration, attempt: u8, rng: &mut Rng) -> Duration {
    let doublings = u32::from(attempt.saturating_sub(1)).min(16);
    let backed = base.saturating_mul(1 << doublings).min(MAX_RTO);
    backed.mul_f64(1.0 + JITTER * rng.unit())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// Before a sample the timeout is 1 s; the first sample sets SRTT = R
    /// and RTTVAR = R/2; later ones smooth by 1/8 and 1/4 (RFC 6298, 2.2
    /// and 2.3); the floor applies.
    #[test]
    fn follows_rfc_6298() {
        let config = RtoConfig::default();
        let mut est = Estimator::default();
        assert_eq!(est.rto(&config), Duration::from_secs(1));
        est.sample(100 * MS);
        assert_eq!(est.srtt(), Some(100 * MS));
        // 100 + 4 * 50
        assert_eq!(est.rto(&config), 300 * MS);
        est.sample(200 * MS);
        // RTTVAR = 3/4 * 50 + 1/4 * 100 = 62.5; SRTT = 7/8 * 100 + 1/8 * 200 = 112.5
        assert_eq!(est.srtt(), Some(Duration::from_micros(112_500)));
        assert_eq!(est.rto(&config), Duration::from_micros(112_500 + 250_000));
        assert_eq!(est.min(), Some(100 * MS));
        let mut fast = Estimator::default();
        fast.sample(MS / 10);
        assert_eq!(fast.rto(&config), DEFAULT_RTO_MIN);
        let low = RtoConfig {
            min: 10 * MS,
            ..config
        };
        assert_eq!(fast.rto(&low), 10 * MS);
    }

    /// Each try doubles the timeout, plus at most 25% jitter, capped.
    #[test]
    fn backoff_doubles_with_bounded_jitter() {
        let mut rng = Rng::from_seed(7);
        for attempt in 1..=5u8 {
            let base = 200 * MS * (1 << (attempt - 1));
            for _ in 0..100 {
                let t = backoff(200 * MS, attempt, &mut rng);
                assert!(t >= base && t <= base.mul_f64(1.25), "{attempt}: {t:?}");
            }
        }
        assert!(backoff(Duration::from_secs(50), 9, &mut rng) <= MAX_RTO.mul_f64(1.25));
    }
}
