//! What a receiver learns from one sender session's sequence numbers:
//! which messages are new, which filled a gap (arrived after a later one),
//! which are copies, and which are missing.
//!
//! Missing numbers are kept as ranges, at most [`MAX_GAPS`] of them: a
//! sender that jumps far ahead costs one range, not one entry per number
//! skipped. The numbers below the first one heard from a session are
//! before this side's time (it joined late, or the sender had sent them
//! to someone else): they are not missing, and not counted lost.

use std::collections::VecDeque;

/// The most gaps (ranges of missing numbers) remembered per sender
/// session; older ones are given up on (still counted as lost), so that a
/// sender cannot grow memory by skipping numbers. A sender has at most
/// 1024 messages waiting for receipts (`outbound::MAX_PENDING`), so
/// retransmissions filling its gaps never need more ranges than this; a
/// number from a range given up on would be taken for a copy and not
/// shown. (All sessions together have a budget too: `peers::GAP_BUDGET`.)
pub const MAX_GAPS: usize = 1024 + 1;

/// What one arriving message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// New, in order; `gap` is the range of numbers skipped to reach it
    /// (now missing), if any.
    New {
        /// First and last missing number, inclusive.
        gap: Option<(u64, u64)>,
    },
    /// New, but after a later one: it fills a gap (reordered), or it is
    /// from before the first number heard.
    Reordered {
        /// It filled a gap counted missing (not one from before the
        /// first number heard, which was never counted).
        filled: bool,
    },
    /// A copy of one already received (or given up on).
    Duplicate,
}

/// The sequence accounting of one sender session.
#[derive(Debug, Clone, Default)]
pub struct Arrivals {
    /// The first number received (0: none yet). Numbers below it are
    /// before our time.
    first: u64,
    /// The highest number received.
    highest: u64,
    /// Numbers not received yet, as inclusive ranges in ascending order;
    /// the numbers below `first` may still be held here (as one range)
    /// so that their late arrival is told from a copy.
    gaps: VecDeque<(u64, u64)>,
    /// Missing numbers (from `first` on) in `gaps`.
    open: u64,
    /// Missing numbers forgotten to keep `gaps` bounded.
    given_up: u64,
}

impl Arrivals {
    /// Records message `seq` (from 1) and says what it is.
    pub fn record(&mut self, seq: u64) -> Arrival {
        if self.first == 0 {
            self.first = seq;
            self.highest = seq;
            if seq > 1 {
                self.gaps.push_back((1, seq - 1));
            }
            return Arrival::New { gap: None };
        }
        if seq > self.highest {
            let gap = (seq > self.highest + 1).then(|| (self.highest + 1, seq - 1));
            if let Some((first, last)) = gap {
                self.gaps.push_back((first, last));
                self.open += last - first + 1;
                while self.gaps.len() > MAX_GAPS {
                    let (a, b) = self.gaps.pop_front().expect("not empty");
                    let lost = self.counted(a, b);
                    self.open -= lost;
                    self.given_up += lost;
                }
            }
            self.highest = seq;
            return Arrival::New { gap };
        }
        // The gap holding `seq`, if any: the last one starting at or
        // below it.
        let at = self.gaps.partition_point(|&(a, _)| a <= seq);
        let Some(i) = at.checked_sub(1).filter(|&i| self.gaps[i].1 >= seq) else {
            return Arrival::Duplicate;
        };
        let (a, b) = self.gaps[i];
        let filled = seq >= self.first;
        if filled {
            self.open -= 1;
        }
        match (a == seq, b == seq) {
            (true, true) => {
                self.gaps.remove(i);
            }
            (true, false) => self.gaps[i].0 = seq + 1,
            (false, true) => self.gaps[i].1 = seq - 1,
            (false, false) => {
                self.gaps[i].1 = seq - 1;
                self.gaps.insert(i + 1, (seq + 1, b));
                if self.gaps.len() > MAX_GAPS {
                    let (a, b) = self.gaps.pop_front().expect("not empty");
                    let lost = self.counted(a, b);
                    self.open -= lost;
                    self.given_up += lost;
                }
            }
        }
        Arrival::Reordered { filled }
    }

    /// How many of the numbers `a..=b` count as missing (those from the
    /// first heard on).
    fn counted(&self, a: u64, b: u64) -> u64 {
        if b < self.first {
            0
        } else {
            b - a.max(self.first) + 1
        }
    }

    /// Messages skipped and not (yet) received: at the end of a run, the
    /// lost ones. Numbers before the first one heard are not counted.
    pub fn missing(&self) -> u64 {
        self.open + self.given_up
    }

    /// The gaps held now.
    pub fn gaps(&self) -> usize {
        self.gaps.len()
    }

    /// Gives up on the oldest gap held (its numbers stay counted lost):
    /// memory is short. False when none is held.
    pub fn give_up_oldest(&mut self) -> bool {
        let Some((a, b)) = self.gaps.pop_front() else {
            return false;
        };
        let lost = self.counted(a, b);
        self.open -= lost;
        self.given_up += lost;
        true
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
        assert_eq!(a.record(3), Arrival::Reordered { filled: true });
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
        assert_eq!(a.gaps(), 1);
        assert_eq!(a.record(999_999), Arrival::Reordered { filled: true });
        assert_eq!(a.missing(), 999_997);
        // A sender skipping one number at a time, for ever: the gaps held
        // stay bounded, and every number skipped is still counted.
        for seq in (1_000_001..1_100_000).step_by(2) {
            a.record(seq);
        }
        assert!(a.gaps() <= MAX_GAPS, "{} gaps held", a.gaps());
        assert_eq!(a.missing(), 999_997 + 49_999);
    }

    /// Numbers below the first one heard are before our time: no gap, not
    /// missing; one that still comes is new (reordered), a second copy a
    /// duplicate.
    #[test]
    fn numbers_before_the_first_heard_are_not_lost() {
        let mut a = Arrivals::default();
        assert_eq!(a.record(5), Arrival::New { gap: None });
        assert_eq!(a.missing(), 0);
        assert_eq!(a.record(2), Arrival::Reordered { filled: false });
        assert_eq!(a.record(2), Arrival::Duplicate);
        assert_eq!(a.record(7), Arrival::New { gap: Some((6, 6)) });
        assert_eq!(a.missing(), 1);
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
        /// missing = numbers from the first heard to the highest never
        /// seen.
        #[test]
        fn matches_a_simple_model(arrivals in schedule()) {
            let mut accounting = Arrivals::default();
            let (mut new, mut dup, mut reordered) = (0u64, 0u64, 0u64);
            for &seq in &arrivals {
                match accounting.record(seq) {
                    Arrival::New { .. } => new += 1,
                    Arrival::Reordered { .. } => { new += 1; reordered += 1 }
                    Arrival::Duplicate => dup += 1,
                }
            }
            let mut seen = HashSet::new();
            let first = arrivals.first().copied().unwrap_or(0);
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
            let seen_from_first = seen.iter().filter(|&&s| s >= first).count() as u64;
            let expected = if arrivals.is_empty() { 0 } else { highest - first + 1 - seen_from_first };
            prop_assert_eq!(accounting.missing(), expected);
            prop_assert!(accounting.gaps() <= MAX_GAPS);
        }
    }
}
