//! Randomness for session ids and retransmission jitter, without a crate
//! for it: the standard library's `RandomState` is seeded from the
//! operating system's random source, and a small xorshift generator
//! spreads one seed over many draws.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::{SystemTime, UNIX_EPOCH};

/// 64 unpredictable bits (from the OS's random source, through
/// `RandomState`, mixed with the time and the process id).
pub fn seed() -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    hasher.write_u128(now.as_nanos());
    hasher.write_u32(std::process::id());
    hasher.finish()
}

/// A xorshift64* generator: fast, good enough for jitter.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded from [`seed`].
    pub fn new() -> Rng {
        Rng::from_seed(seed())
    }

    /// A generator with a given seed (tests).
    pub fn from_seed(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    /// The next 64 bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

impl Default for Rng {
    fn default() -> Self {
        Rng::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Draws stay in [0, 1) and are not all alike.
    #[test]
    fn unit_draws_are_in_range_and_vary() {
        let mut rng = Rng::from_seed(42);
        let draws: Vec<f64> = (0..1000).map(|_| rng.unit()).collect();
        assert!(draws.iter().all(|x| (0.0..1.0).contains(x)));
        assert!(draws.iter().any(|x| *x < 0.1) && draws.iter().any(|x| *x > 0.9));
        assert_ne!(seed(), seed());
    }
}
