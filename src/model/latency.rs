//! What `dgram ping` learns from its replies: each reply sorted (on time,
//! late, duplicate, reordered, foreign), round-trip samples, percentiles
//! and a histogram.
//!
//! A probe's payload carries its sequence number and the time it was sent
//! (see [`Probe`]), so that a reply is matched to its probe whatever order
//! replies come in, and its round trip is measured from the probe's own
//! send time.

use std::time::Duration;

/// The first bytes of every probe: a reply that does not start so is not
/// an answer to this ping.
pub const PROBE_MAGIC: [u8; 4] = *b"dgPI";

/// The smallest probe: magic, run id, sequence number, send time.
pub const MIN_PROBE: usize = 4 + 4 + 8 + 8;

/// What a probe carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    /// This run of ping (random), so that replies to an earlier run are
    /// not taken for this one's.
    pub run: u32,
    /// The probe's number, from 0.
    pub seq: u64,
    /// When it was sent, in nanoseconds since the run began.
    pub sent_ns: u64,
}

impl Probe {
    /// The probe as a payload of `size` bytes (at least [`MIN_PROBE`]),
    /// padded with the `0123456789` pattern.
    pub fn encode(&self, size: usize) -> Vec<u8> {
        let mut payload = Vec::with_capacity(size.max(MIN_PROBE));
        payload.extend_from_slice(&PROBE_MAGIC);
        payload.extend_from_slice(&self.run.to_be_bytes());
        payload.extend_from_slice(&self.seq.to_be_bytes());
        payload.extend_from_slice(&self.sent_ns.to_be_bytes());
        let pad = size.saturating_sub(MIN_PROBE);
        payload.extend((0..pad).map(|i| b'0' + (i % 10) as u8));
        payload
    }

    /// The probe a reply carries, if it is one of this run's.
    pub fn decode(payload: &[u8], run: u32) -> Option<Probe> {
        if payload.len() < MIN_PROBE || payload[..4] != PROBE_MAGIC {
            return None;
        }
        let field = |at: usize, len: usize| &payload[at..at + len];
        let probe = Probe {
            run: u32::from_be_bytes(field(4, 4).try_into().ok()?),
            seq: u64::from_be_bytes(field(8, 8).try_into().ok()?),
            sent_ns: u64::from_be_bytes(field(16, 8).try_into().ok()?),
        };
        (probe.run == run).then_some(probe)
    }
}

/// What one reply was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// The first reply to its probe, within the timeout.
    OnTime {
        /// Its round trip.
        rtt: Duration,
        /// A reply to a later probe came before it.
        reordered: bool,
    },
    /// The first reply to its probe, after the probe was given up on.
    Late {
        /// Its round trip.
        rtt: Duration,
    },
    /// The first reply to its probe, shorter than the probe: the echo
    /// server's buffer cut it (socat's is 8192 bytes). It answers its
    /// probe (not lost) but is not timed: it is not the datagram sent.
    Truncated {
        /// Its round trip.
        rtt: Duration,
    },
    /// Another reply to a probe already answered.
    Duplicate,
    /// Not a reply to any probe of this run (another program's datagram,
    /// an earlier run's, a probe number never sent).
    Foreign,
}

/// The replies of one run, as they come.
#[derive(Debug, Clone, Default)]
pub struct Replies {
    /// Probes sent.
    pub sent: u64,
    /// Round trips of the replies on time, in nanoseconds.
    samples: Vec<u64>,
    /// Probe numbers answered (first reply).
    answered: std::collections::HashSet<u64>,
    /// Probe numbers given up on (timed out) and not answered since.
    timed_out: std::collections::HashSet<u64>,
    /// The highest probe number answered.
    highest: Option<u64>,
    /// Late replies.
    pub late: u64,
    /// Replies shorter than their probe (first replies only).
    pub truncated: u64,
    /// Duplicate replies.
    pub duplicates: u64,
    /// Replies that came after a reply to a later probe.
    pub reordered: u64,
    /// Datagrams that were not replies to this run.
    pub foreign: u64,
}

impl Replies {
    /// Notes that probe `seq` was sent.
    pub fn record_sent(&mut self, seq: u64) {
        self.sent = self.sent.max(seq + 1);
    }

    /// Probe `seq` got no reply within the timeout.
    pub fn timed_out(&mut self, seq: u64) {
        if !self.answered.contains(&seq) {
            self.timed_out.insert(seq);
        }
    }

    /// Sorts one reply: `probe` as decoded (`None`: not this run's),
    /// `rtt` measured from its send time, `whole` false when it came back
    /// shorter than the probe sent.
    pub fn record(&mut self, probe: Option<Probe>, rtt: Duration, whole: bool) -> Reply {
        let Some(probe) = probe.filter(|p| p.seq < self.sent) else {
            self.foreign += 1;
            return Reply::Foreign;
        };
        if !self.answered.insert(probe.seq) {
            self.duplicates += 1;
            return Reply::Duplicate;
        }
        if !whole {
            self.timed_out.remove(&probe.seq);
            self.truncated += 1;
            return Reply::Truncated { rtt };
        }
        if self.timed_out.remove(&probe.seq) {
            self.late += 1;
            return Reply::Late { rtt };
        }
        let reordered = self.highest.is_some_and(|h| probe.seq < h);
        self.reordered += u64::from(reordered);
        self.highest = Some(self.highest.map_or(probe.seq, |h| h.max(probe.seq)));
        self.samples
            .push(u64::try_from(rtt.as_nanos()).unwrap_or(u64::MAX));
        Reply::OnTime { rtt, reordered }
    }

    /// Replies on time.
    pub fn on_time(&self) -> u64 {
        self.samples.len() as u64
    }

    /// Probes without any reply (neither on time nor late).
    pub fn lost(&self) -> u64 {
        self.sent - self.answered.len() as u64
    }

    /// The statistics of the round trips on time.
    pub fn stats(&self) -> Option<RttStats> {
        RttStats::of(&self.samples)
    }

    /// Whether the loss looks like an echo server's rate limit (see
    /// [`Throttled`]).
    pub fn throttled(&self) -> Option<Throttled> {
        // Runs of answered probes between stalls (probes in a row without
        // a reply), in probe order.
        let mut runs = Vec::new();
        let mut run = 0u64;
        let mut stalls = 0u64;
        let mut in_stall = false;
        for seq in 0..self.sent {
            if self.answered.contains(&seq) {
                run += 1;
                in_stall = false;
            } else if !in_stall {
                runs.push(run);
                run = 0;
                stalls += 1;
                in_stall = true;
            }
        }
        // The first run is the bucket's burst; the runs between stalls are
        // what it refilled while a lost probe timed out: the same each
        // time. The run after the last stall may have been cut by the end.
        let between = runs.get(1..)?;
        if between.len() < THROTTLE_RUNS || runs[0] < THROTTLE_SHORTEST {
            return None;
        }
        let (min, max) = between
            .iter()
            .fold((u64::MAX, 0), |(lo, hi), &r| (lo.min(r), hi.max(r)));
        // Within a quarter of each other, and none very short: loss on the
        // way leaves runs as uneven as a geometric draw.
        (min >= THROTTLE_SHORTEST && max * 4 <= min * 5).then(|| Throttled {
            stalls,
            replies_between: between.iter().sum::<u64>() / between.len() as u64,
        })
    }
}

/// How many runs of replies between stalls it takes to call the loss
/// regular.
const THROTTLE_RUNS: usize = 3;

/// The shortest run of replies between stalls that counts.
const THROTTLE_SHORTEST: u64 = 5;

/// Loss that looks like an echo server's rate limit (a token bucket, as
/// `dgram listen --echo --echo-rate N` has): replies stop after a burst,
/// and then, each time a lost probe has timed out, the bucket has refilled
/// by the same amount, so stalls come after runs of replies of the same
/// length. Loss on the way is scattered: its runs are uneven. Ping cannot
/// see the server's count of replies held back; this is a pattern, said as
/// one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    /// Stalls: probes in a row that got no reply.
    pub stalls: u64,
    /// Replies between two stalls, on average.
    pub replies_between: u64,
}

/// Round-trip statistics.
#[derive(Debug, Clone, PartialEq)]
pub struct RttStats {
    /// Samples.
    pub count: u64,
    /// Smallest.
    pub min: Duration,
    /// Median.
    pub p50: Duration,
    /// 90th percentile.
    pub p90: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// 99.9th percentile.
    pub p999: Duration,
    /// Largest.
    pub max: Duration,
    /// Mean.
    pub mean: Duration,
    /// Histogram: (bucket's lower bound, upper bound, samples), buckets
    /// doubling from the smallest sample's power of two.
    pub histogram: Vec<(Duration, Duration, u64)>,
}

impl RttStats {
    /// Statistics of `samples` (nanoseconds); `None` without samples.
    /// Percentiles are nearest-rank: the smallest sample with at least
    /// p% of the samples at or below it.
    pub fn of(samples: &[u64]) -> Option<RttStats> {
        if samples.is_empty() {
            return None;
        }
        let mut sorted = samples.to_vec();
        sorted.sort_unstable();
        let n = sorted.len();
        // Nearest rank, in whole numbers: per mille, rounded up.
        let rank = |per_mille: usize| {
            let k = (per_mille * n).div_ceil(1000);
            Duration::from_nanos(sorted[k.clamp(1, n) - 1])
        };
        let sum: u128 = sorted.iter().map(|&s| u128::from(s)).sum();
        let mut histogram: Vec<(Duration, Duration, u64)> = Vec::new();
        // The power of two at or below the smallest sample.
        let smallest = sorted[0].max(1);
        let mut low = 1u64 << (63 - smallest.leading_zeros());
        let mut i = 0;
        while i < n {
            let high = low * 2;
            let start = i;
            while i < n && sorted[i] < high {
                i += 1;
            }
            histogram.push((
                Duration::from_nanos(low),
                Duration::from_nanos(high),
                (i - start) as u64,
            ));
            low = high;
        }
        Some(RttStats {
            count: n as u64,
            min: Duration::from_nanos(sorted[0]),
            p50: rank(500),
            p90: rank(900),
            p99: rank(990),
            p999: rank(999),
            max: Duration::from_nanos(sorted[n - 1]),
            mean: Duration::from_nanos((sum / n as u128) as u64),
            histogram,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us(n: u64) -> Duration {
        Duration::from_micros(n)
    }

    /// A probe survives its payload; another run's or a short one is not
    /// ours.
    #[test]
    fn probes_round_trip() {
        let probe = Probe {
            run: 7,
            seq: 300,
            sent_ns: 123_456,
        };
        let payload = probe.encode(64);
        assert_eq!(payload.len(), 64);
        assert_eq!(Probe::decode(&payload, 7), Some(probe));
        assert_eq!(Probe::decode(&payload, 8), None);
        assert_eq!(Probe::decode(&payload[..20], 7), None);
        assert_eq!(probe.encode(0).len(), MIN_PROBE);
    }

    /// Replies are told apart: on time, reordered, duplicate, late (after
    /// the timeout), foreign; loss counts probes never answered.
    #[test]
    fn replies_are_sorted() {
        let mut r = Replies::default();
        let probe = |seq| {
            Some(Probe {
                run: 1,
                seq,
                sent_ns: 0,
            })
        };
        for seq in 0..5 {
            r.record_sent(seq);
        }
        assert_eq!(
            r.record(probe(1), us(10), true),
            Reply::OnTime {
                rtt: us(10),
                reordered: false
            }
        );
        assert_eq!(
            r.record(probe(0), us(20), true),
            Reply::OnTime {
                rtt: us(20),
                reordered: true
            }
        );
        assert_eq!(r.record(probe(1), us(30), true), Reply::Duplicate);
        r.timed_out(2);
        r.timed_out(3);
        assert_eq!(
            r.record(probe(2), us(5000), true),
            Reply::Late { rtt: us(5000) }
        );
        assert_eq!(
            r.record(probe(9), us(1), true),
            Reply::Foreign,
            "never sent"
        );
        assert_eq!(r.record(None, us(1), true), Reply::Foreign);
        assert_eq!(
            (r.on_time(), r.late, r.duplicates, r.reordered, r.foreign),
            (2, 1, 1, 1, 2)
        );
        assert_eq!(r.lost(), 2, "3 and 4");
        // A reply shorter than its probe answers it, apart, untimed.
        assert_eq!(
            r.record(probe(4), us(7), false),
            Reply::Truncated { rtt: us(7) }
        );
        assert_eq!((r.on_time(), r.truncated, r.lost()), (2, 1, 1));
    }

    /// Answers `sent` probes except those in `lost`.
    fn replies_except(sent: u64, lost: &[u64]) -> Replies {
        let mut r = Replies::default();
        for seq in 0..sent {
            r.record_sent(seq);
            if !lost.contains(&seq) {
                let probe = Probe {
                    run: 1,
                    seq,
                    sent_ns: 0,
                };
                r.record(Some(probe), us(10), true);
            }
        }
        r
    }

    /// Stalls after a burst and then after equal runs of replies look like
    /// a rate limit; scattered loss, or too few stalls, does not.
    #[test]
    fn regular_stalls_look_throttled() {
        // A burst of 100, then a lost probe every 21st: runs of 20.
        let lost: Vec<u64> = (0..6).map(|i| 100 + i * 21).collect();
        let r = replies_except(230, &lost);
        assert_eq!(
            r.throttled(),
            Some(Throttled {
                stalls: 6,
                replies_between: 20
            })
        );
        // Uneven runs: 3, 40, 7, 19.
        let r = replies_except(200, &[50, 54, 95, 103, 123]);
        assert_eq!(r.throttled(), None);
        // Two stalls are not a pattern.
        let r = replies_except(200, &[100, 121]);
        assert_eq!(r.throttled(), None);
        assert_eq!(replies_except(50, &[]).throttled(), None);
    }

    /// Nearest-rank percentiles and a doubling histogram that holds every
    /// sample.
    #[test]
    fn percentiles_and_histogram() {
        let samples: Vec<u64> = (1..=1000).map(|i| i * 1000).collect();
        let stats = RttStats::of(&samples).unwrap();
        assert_eq!(stats.min, us(1));
        assert_eq!(stats.p50, us(500));
        assert_eq!(stats.p90, us(900));
        assert_eq!(stats.p99, us(990));
        assert_eq!(stats.p999, us(999));
        assert_eq!(stats.max, us(1000));
        assert_eq!(stats.mean, Duration::from_nanos(500_500));
        let total: u64 = stats.histogram.iter().map(|(_, _, n)| n).sum();
        assert_eq!(total, 1000);
        for window in stats.histogram.windows(2) {
            assert_eq!(window[0].1, window[1].0, "buckets are contiguous");
        }
        let one = RttStats::of(&[42]).unwrap();
        assert_eq!(
            (one.p50, one.p999, one.histogram.len()),
            (Duration::from_nanos(42), Duration::from_nanos(42), 1)
        );
        assert!(RttStats::of(&[]).is_none());
    }
}
