//! What a receiver learns from one sender session's sequence numbers:
//! which messages are new, which filled a gap (arrived after a later one),
//! which are copies, and which are missing.

use std::collections::BTreeSet;

/// The most missing sequence numbers remembered per sender session; older
/// ones are given up on (still counted as lost), so that a sender that
/// jumps far ahead cannot grow memory.
pub const MAX_MISSING: usize = 4096;

/// What one arriving message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// New, in order; `gap` is the range of numbers skipped to reach it
    /// (now missing), if any.
    New {
        /// First and last missing number, inclusive.
        gap: Option<(u64, u64)>,
    },
    /// New, but after a later one: it fills a gap (reordered).
    Reordered,
    /// A copy of one already received (or given up on).
    Duplicate,
}

/// The sequence accounting of one sender session.
#[derive(Debug, Clone, Default)]
pub struct Arrivals {
    /// The highest number received.
    highest: u64,
    /// Numbers below `highest` not received yet.
    missing: BTreeSet<u64>,
    /// Missing numbers forgotten to keep `missing` bounded.
    given_up: u64,
}

impl Arrivals {
    /// Records message `seq` (from 1) and says what it is.
    pub fn record(&mut self, seq: u64) -> Arrival {
        if seq > self.highest {
            let gap = (seq > self.highest + 1).then(|| (self.highest + 1, seq - 1));
            if let Some((first, last)) = gap {
                // Only the newest MAX_MISSING numbers of a huge gap are
                // remembered one by one.
                let remembered_from = first.max(last.saturating_sub(MAX_MISSING as u64 - 1));
                self.given_up += remembered_from - first;
                self.missing.extend(remembered_from..=last);
                while self.missing.len() > MAX_MISSING {
                    self.missing.pop_first();
                    self.given_up += 1;
                }
            }
            self.highest = seq;
            Arrival::New { gap }
        } else if self.missing.remove(&seq) {
            Arrival::Reordered
        } else {
            Arrival::Duplicate
        }
    }

    /// Messages skipped and not (yet) received: at the end of a run, the
    /// lost ones.
    pub fn missing(&self) -> u64 {
        self.missing.len() as u64 + self.given_up
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    /// A gap is reported when it opens; filling it is a reorder; a copy is
    /// a duplicate.
    #[test]
    fn gaps_fill_and_copies_count() {
        let mut a = Arrivals::default();
        assert_eq!(a.record(1), Arrival::New { gap: None });
        assert_eq!(a.record(4), Arrival::New { gap: Some((2, 3)) });
        assert_eq!(a.missing(), 2);
        assert_eq!(a.record(3), Arrival::Reordered);
        assert_eq!(a.record(3), Arrival::Duplicate);
        assert_eq!(a.record(4), Arrival::Duplicate);
        assert_eq!(a.missing(), 1);
    }

    /// A jump far ahead keeps memory bounded and still counts every
    /// number skipped.
    #[test]
    fn huge_gaps_stay_bounded() {
        let mut a = Arrivals::default();
        a.record(1);
        a.record(1_000_000);
        assert_eq!(a.missing(), 999_998);
        assert!(a.missing.len() <= MAX_MISSING);
        assert_eq!(a.record(999_999), Arrival::Reordered);
        assert_eq!(a.missing(), 999_997);
    }

    /// A sender's schedule: each number sent, some lost, some sent again,
    /// shuffled within a window (loss, duplication and reordering).
    fn schedule() -> impl Strategy<Value = Vec<u64>> {
        (
            1usize..200,
            proptest::collection::vec((0u8..10, 0u8..3, 0usize..8), 200),
        )
            .prop_map(|(n, fate)| {
                let mut out: Vec<u64> = Vec::new();
                for seq in 1..=n as u64 {
                    let (lost, copies, shift) = fate[seq as usize - 1];
                    if lost < 2 {
                        continue;
                    }
                    for _ in 0..=copies {
                        let at = out.len().saturating_sub(shift);
                        out.insert(at, seq);
                    }
                }
                out
            })
    }

    proptest! {
        /// Over random loss, reordering and duplication, the accounting
        /// matches a simple model: new = distinct numbers, duplicates =
        /// the rest, reordered = new numbers that came after a higher one,
        /// missing = numbers below the highest never seen.
        #[test]
        fn matches_a_simple_model(arrivals in schedule()) {
            let mut accounting = Arrivals::default();
            let (mut new, mut dup, mut reordered) = (0u64, 0u64, 0u64);
            for &seq in &arrivals {
                match accounting.record(seq) {
                    Arrival::New { .. } => new += 1,
                    Arrival::Reordered => { new += 1; reordered += 1 }
                    Arrival::Duplicate => dup += 1,
                }
            }
            let mut seen = HashSet::new();
            let (mut m_dup, mut m_reordered, mut highest) = (0u64, 0u64, 0u64);
            for &seq in &arrivals {
                if !seen.insert(seq) {
                    m_dup += 1;
                } else if seq < highest {
                    m_reordered += 1;
                }
                highest = highest.max(seq);
            }
            prop_assert_eq!(new, seen.len() as u64);
            prop_assert_eq!(dup, m_dup);
            prop_assert_eq!(reordered, m_reordered);
            prop_assert_eq!(accounting.missing(), highest - seen.len() as u64);
        }
    }
}
