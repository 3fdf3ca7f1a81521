//! Waits that spin instead of sleeping in the kernel: a paced sender's
//! wait for a send's due time ([`crate::model::pacing`] keeps the
//! schedule), kept to microseconds, and a busy-polled receive
//! ([`busy_recv`]: `ping --busy-poll`, `listen --busy-poll`).
//!
//! A sleep alone overshoots by tens of microseconds (`nanosleep` and
//! futex waits wake late by the timer slack and the scheduler's latency:
//! 50–60 µs on a small VM), a tenth of an interval at 10,000 datagrams
//! per second. So the wait sleeps until [`SPIN`] before the due time and
//! spins the rest: a CPU is busy for at most that long per datagram.

use std::io;
use std::time::{Duration, Instant};

use crate::net::Endpoint;
use crate::net::sys::Received;

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

/// Receives by looking at the socket's queue again and again (the
/// lightest receive that does not wait, [`Endpoint::look`], as a C busy
/// loop's `recv(MSG_DONTWAIT)`) until a datagram, an error or `deadline`
/// comes:
/// `WouldBlock` at the deadline, as a timed-out blocking receive says.
/// The datagram is taken the moment it is queued, with no wake-up of a
/// sleeping thread in between, at the price of a CPU kept busy. Only
/// where a receive can look without waiting
/// ([`LOOKS_WITHOUT_WAITING`](crate::net::sys::LOOKS_WITHOUT_WAITING)):
/// elsewhere it would see nothing until the deadline.
pub fn busy_recv(endpoint: &Endpoint, buf: &mut [u8], deadline: Instant) -> io::Result<Received> {
    loop {
        match endpoint.look(buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if Instant::now() >= deadline {
                    return Err(e);
                }
                std::hint::spin_loop();
            }
            other => return other,
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
