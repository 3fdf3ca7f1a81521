//! Randomness for retransmission jitter and hello timing: a small
//! xorshift generator that spreads one seed over many draws. The protocol
//! draws no randomness of its own: the seed is given (by the runtime, from
//! the operating system; by tests, fixed), so that a run can be replayed.

/// A xorshift64* generator: fast, good enough for jitter.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator with a given seed.
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
    }
}
