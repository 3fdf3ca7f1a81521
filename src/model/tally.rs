//! The run's outcome: every event counted (the totals and the peer table),
//! in one place shared by whoever shows the events and whoever decides
//! what the run achieved (exit status, `/stats`, `/peers`, `/reply`). The
//! display only shows and writes; it counts nothing of the run's.

use std::sync::{Arc, Mutex, MutexGuard};

use super::{Event, PeerSummary, Stats, Summary, Transition};

/// The run's counts, shared (cheap to clone: every clone is the same
/// tally).
#[derive(Debug, Clone, Default)]
pub struct Tally(Arc<Mutex<Stats>>);

impl Tally {
    /// Counts one event; returns the peer transitions it caused (for the
    /// display to say).
    pub fn record(&self, event: &Event) -> Vec<Transition> {
        self.lock().record(event)
    }

    /// A copy of the counts so far.
    pub fn snapshot(&self) -> Stats {
        self.lock().clone()
    }

    /// The totals and the per-peer rows of the `summary` event.
    pub fn summary(&self) -> (Summary, Vec<PeerSummary>) {
        let stats = self.lock();
        let mut summary = stats.summary;
        summary.peers_forgotten = stats.peers.forgotten();
        (summary, stats.peers.summaries())
    }

    /// The counts, locked.
    pub fn lock(&self) -> MutexGuard<'_, Stats> {
        // A poisoned lock means a thread panicked while counting; the
        // counts are still the best there are.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}
