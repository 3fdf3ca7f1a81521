//! A paced sender's schedule and how well it kept it (`send --rate`,
//! `bench --rate`), without a clock of its own: the caller says when each
//! send happened, as a time since the schedule began.
//!
//! Datagram `i` is due at `i / rate` seconds after the first one: an
//! absolute schedule, so that the small lateness of each send never adds
//! up into drift (a sender that sleeps `1 / rate` after each send runs
//! slow by the cost of every send and every oversleep).
//!
//! A send late by more than one interval means the sender fell behind (it
//! was descheduled, its input was slow, the send queue was full). Sending
//! the datagrams due meanwhile back to back would catch up, as a burst:
//! exactly what a loss measurement must not see. So the late datagram goes
//! out at once, is counted [`PacingReport::late`], and the schedule moves
//! back by its lateness ([`PacingReport::slipped_ns`]): the next one is due
//! one interval after it, and the achieved rate shows the shortfall.

use serde::ser::{Serialize, SerializeStruct, Serializer};

/// The most deviations kept for the percentiles: beyond this (a long run at
/// a high rate), a uniform sample of them (reservoir sampling) stands in,
/// while the count of late ones and the largest deviation stay exact.
const MAX_SAMPLES: usize = 1 << 20;

/// A schedule at `rate` datagrams per second, and the deviations of the
/// sends from it.
#[derive(Debug, Clone)]
pub struct Schedule {
    rate: u64,
    /// How far the schedule has moved back, in nanoseconds: the lateness of
    /// every late send so far.
    slipped_ns: u64,
    /// Datagrams the schedule moved for (late by more than one interval).
    late: u64,
    /// Sends recorded.
    sent: u64,
    /// Deviations in nanoseconds (a sample once there are more than
    /// [`MAX_SAMPLES`]).
    samples: Vec<u64>,
    /// The largest deviation.
    max_ns: u64,
    /// When the last send happened.
    last_ns: u64,
    /// The reservoir's generator (xorshift; any fixed seed does).
    random: u64,
}

impl Schedule {
    /// A schedule of `rate` datagrams per second (at least 1).
    pub fn new(rate: u64) -> Schedule {
        Schedule {
            rate: rate.max(1),
            slipped_ns: 0,
            late: 0,
            sent: 0,
            samples: Vec::new(),
            max_ns: 0,
            last_ns: 0,
            random: 0x9e37_79b9_7f4a_7c15,
        }
    }

    /// The interval between two datagrams, in nanoseconds (rounded down).
    pub fn interval_ns(&self) -> u64 {
        1_000_000_000 / self.rate
    }

    /// When datagram `i` (from 0) is due, in nanoseconds since the first
    /// one was due: `i / rate` seconds, plus what the schedule slipped.
    pub fn due_ns(&self, i: u64) -> u64 {
        let ideal = u128::from(i) * 1_000_000_000 / u128::from(self.rate);
        u64::try_from(ideal)
            .unwrap_or(u64::MAX)
            .saturating_add(self.slipped_ns)
    }

    /// Records that datagram `i`, due at [`Schedule::due_ns`], was handed
    /// to the kernel at `at_ns` (since the schedule began). A send more
    /// than one interval late moves the schedule back by its lateness (see
    /// the module's docs); returns true then.
    pub fn record(&mut self, i: u64, at_ns: u64) -> bool {
        let deviation = at_ns.saturating_sub(self.due_ns(i));
        self.sent += 1;
        self.last_ns = self.last_ns.max(at_ns);
        self.max_ns = self.max_ns.max(deviation);
        if self.samples.len() < MAX_SAMPLES {
            self.samples.push(deviation);
        } else {
            // Keep each of the `sent` deviations with the same chance.
            self.random ^= self.random << 13;
            self.random ^= self.random >> 7;
            self.random ^= self.random << 17;
            let slot = self.random % self.sent;
            if let Some(kept) = self.samples.get_mut(slot as usize) {
                *kept = deviation;
            }
        }
        let late = deviation > self.interval_ns();
        if late {
            self.late += 1;
            self.slipped_ns = self.slipped_ns.saturating_add(deviation);
        }
        late
    }

    /// How the sends kept the schedule; `None` before the first send.
    pub fn report(&self) -> Option<PacingReport> {
        let stats = super::latency::RttStats::of(&self.samples)?;
        Some(PacingReport {
            rate: self.rate,
            datagrams: self.sent,
            late: self.late,
            slipped_ns: self.slipped_ns,
            p50_ns: stats.p50.as_nanos() as u64,
            p99_ns: stats.p99.as_nanos() as u64,
            max_ns: self.max_ns,
            elapsed_ns: self.last_ns,
        })
    }
}

/// How well a paced sender kept its schedule: the deviation of each send
/// (the moment the send call began) from the moment it was due.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PacingReport {
    /// The rate asked for, datagrams per second.
    pub rate: u64,
    /// Sends measured.
    pub datagrams: u64,
    /// Sends more than one interval late (the schedule moved back for
    /// each, instead of a burst to catch up).
    pub late: u64,
    /// How far the schedule moved back for them, in total (nanoseconds).
    pub slipped_ns: u64,
    /// Median deviation (nanoseconds; nearest rank).
    pub p50_ns: u64,
    /// 99th percentile deviation (nanoseconds; nearest rank).
    pub p99_ns: u64,
    /// Largest deviation (nanoseconds).
    pub max_ns: u64,
    /// From the schedule's start (the first datagram's due time) to the
    /// last send (nanoseconds).
    pub elapsed_ns: u64,
}

impl PacingReport {
    /// Datagrams per second achieved: the intervals between the first
    /// datagram and the last, over the time from the first one's due time
    /// to the last send (never more than the rate: no send is early);
    /// `None` for fewer than two sends.
    pub fn achieved_rate(&self) -> Option<f64> {
        (self.datagrams >= 2 && self.elapsed_ns > 0)
            .then(|| (self.datagrams - 1) as f64 * 1e9 / self.elapsed_ns as f64)
    }
}

/// Nanoseconds as microseconds, to the nanosecond.
fn micros(ns: u64) -> f64 {
    ns as f64 / 1e3
}

/// The JSON form, in the `summary` event of `send --json` and the
/// `report` of `bench --json`: times in microseconds, the elapsed time in
/// seconds, the achieved rate rounded to a hundredth (null for one send).
impl Serialize for PacingReport {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("PacingReport", 9)?;
        s.serialize_field("rate", &self.rate)?;
        s.serialize_field("datagrams", &self.datagrams)?;
        s.serialize_field("late", &self.late)?;
        s.serialize_field("slipped_us", &micros(self.slipped_ns))?;
        s.serialize_field("deviation_p50_us", &micros(self.p50_ns))?;
        s.serialize_field("deviation_p99_us", &micros(self.p99_ns))?;
        s.serialize_field("deviation_max_us", &micros(self.max_ns))?;
        s.serialize_field("elapsed_s", &(self.elapsed_ns as f64 / 1e9))?;
        s.serialize_field(
            "achieved_rate",
            &self.achieved_rate().map(|r| (r * 100.0).round() / 100.0),
        )?;
        s.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Datagram i is due at i / rate, exactly, however many came before:
    /// no drift from rounding the interval.
    #[test]
    fn the_schedule_is_absolute() {
        let schedule = Schedule::new(3);
        assert_eq!(schedule.interval_ns(), 333_333_333);
        assert_eq!(schedule.due_ns(0), 0);
        assert_eq!(schedule.due_ns(1), 333_333_333);
        assert_eq!(schedule.due_ns(3), 1_000_000_000);
        assert_eq!(schedule.due_ns(3_000_000), 1_000_000_000_000_000);
    }

    /// Deviations are measured from the due time; p50 ≤ p99 ≤ max.
    #[test]
    fn deviations_and_percentiles() {
        let mut schedule = Schedule::new(10_000);
        for i in 0..100 {
            // 1 µs late, but every 50th 30 µs late.
            let late_by = if i % 50 == 49 { 30_000 } else { 1_000 };
            assert!(!schedule.record(i, schedule.due_ns(i) + late_by));
        }
        let report = schedule.report().unwrap();
        assert_eq!(report.datagrams, 100);
        assert_eq!(report.late, 0);
        assert_eq!(report.p50_ns, 1_000);
        assert_eq!(report.p99_ns, 30_000);
        assert_eq!(report.max_ns, 30_000);
        // 99 intervals of 100 µs, the last send 30 µs late.
        assert_eq!(report.elapsed_ns, 99 * 100_000 + 30_000);
        let rate = report.achieved_rate().unwrap();
        assert!((rate - 99.0 * 1e9 / report.elapsed_ns as f64).abs() < 1e-6);
    }

    /// A send more than one interval late is counted, and the next one is
    /// due an interval after it: no burst to catch up.
    #[test]
    fn a_late_send_moves_the_schedule() {
        let mut schedule = Schedule::new(1_000);
        assert!(!schedule.record(0, 0));
        // Due at 1 ms, sent at 5.5 ms.
        assert!(schedule.record(1, 5_500_000));
        assert_eq!(schedule.due_ns(2), 6_500_000);
        assert!(!schedule.record(2, 6_500_000));
        let report = schedule.report().unwrap();
        assert_eq!(report.late, 1);
        assert_eq!(report.slipped_ns, 4_500_000);
        assert_eq!(report.max_ns, 4_500_000);
        // Exactly one interval late is not late.
        let mut schedule = Schedule::new(1_000);
        assert!(!schedule.record(0, 1_000_000));
    }

    /// No send, no report; one send, no rate.
    #[test]
    fn empty_and_single() {
        assert_eq!(Schedule::new(5).report(), None);
        let mut schedule = Schedule::new(5);
        schedule.record(0, 7);
        assert_eq!(schedule.report().unwrap().achieved_rate(), None);
    }

    /// The JSON form, field by field.
    #[test]
    fn json_form() {
        let report = PacingReport {
            rate: 10_000,
            datagrams: 10_000,
            late: 2,
            slipped_ns: 250_500,
            p50_ns: 1_234,
            p99_ns: 45_678,
            max_ns: 180_001,
            elapsed_ns: 999_950_000,
        };
        assert_eq!(
            serde_json::to_string(&report).unwrap(),
            r#"{"rate":10000,"datagrams":10000,"late":2,"slipped_us":250.5,"deviation_p50_us":1.234,"deviation_p99_us":45.678,"deviation_max_us":180.001,"elapsed_s":0.99995,"achieved_rate":9999.5}"#
        );
    }
}
