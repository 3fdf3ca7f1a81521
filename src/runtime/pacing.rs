//! The clock side of a paced sender ([`crate::model::pacing`] keeps the
//! schedule): waiting for a send's due time, precisely enough that the
//! schedule is kept to microseconds.
//!
//! A sleep alone overshoots by tens of microseconds (`nanosleep` and
//! futex waits wake late by the timer slack and the scheduler's latency:
//! 50–60 µs on a small VM), a tenth of an interval at 10,000 datagrams
//! per second. So the wait sleeps until [`SPIN`] before the due time and
//! spins the rest: a CPU is busy for at most that long per datagram.

use std::time::{Duration, Instant};

/// How long before a due time the wait stops sleeping and spins. Longer
/// than a sleep's usual overshoot here (see `scripts/bench-pacing.sh` and
/// docs/pacing.md for the measurement), short enough that a slow rate
/// costs little CPU.
pub const SPIN: Duration = Duration::from_micros(100);

/// Waits until `due`: through `sleep` (which waits at most the duration
/// it is given, and returns false when a stop request cut it short) until
/// [`SPIN`] before it, then spinning. False when stopped.
pub fn wait_until(due: Instant, mut sleep: impl FnMut(Duration) -> bool) -> bool {
    loop {
        let now = Instant::now();
        if now >= due {
            return true;
        }
        let ahead = due - now;
        if ahead > SPIN {
            if !sleep(ahead - SPIN) {
                return false;
            }
        } else {
            while Instant::now() < due {
                std::hint::spin_loop();
            }
            return true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The wait never ends before the due time, whether it sleeps or
    /// only spins; a stop ends it at once.
    #[test]
    fn waits_until_due_and_stops_when_asked() {
        for ahead in [
            Duration::ZERO,
            Duration::from_micros(30),
            Duration::from_millis(3),
        ] {
            let due = Instant::now() + ahead;
            assert!(wait_until(due, |d| {
                std::thread::sleep(d);
                true
            }));
            assert!(Instant::now() >= due);
        }
        let mut sleeps = 0;
        assert!(!wait_until(Instant::now() + Duration::from_secs(5), |_| {
            sleeps += 1;
            false
        }));
        assert_eq!(sleeps, 1);
    }
}
