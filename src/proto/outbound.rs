//! The sending side of the protocol: sequence numbers per peer (its
//! [`PeerId`], whatever address it is at now),
//! messages waiting for their receipt, when to send them again, and the
//! one final state each reaches (delivered or failed; late when a receipt
//! comes after failure).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::peers::PeerId;
use super::random::Rng;
use super::rto::{Estimator, RtoConfig, backoff};

/// The most messages waiting for receipts at once (all peers together);
/// a sender past it waits (from a pipe) or is told to (typing).
pub const MAX_PENDING: usize = 1024;

/// How many failed sequence numbers are remembered per peer, to tell a
/// late receipt from a stray one.
const REMEMBER_FAILED: usize = 4096;

/// A message waiting for its receipt.
#[derive(Debug, Clone)]
pub struct Pending {
    /// Where it goes.
    pub to: PeerId,
    /// Its sequence number.
    pub seq: u64,
    /// The message (without envelope).
    pub payload: Arc<[u8]>,
    /// When each try was sent (index 0: try 1).
    pub sent: Vec<Instant>,
    /// When the current try times out.
    pub deadline: Instant,
}

impl Pending {
    /// Tries sent so far.
    pub fn tries(&self) -> u8 {
        self.sent.len() as u8
    }
}

/// What a receipt meant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acked {
    /// The message is delivered: its round trip (from the try the receipt
    /// names), the tries sent, and its text.
    Delivered {
        /// Round-trip time of the acknowledged try.
        rtt: Duration,
        /// Tries sent.
        tries: u8,
        /// The message.
        payload: Arc<[u8]>,
    },
    /// The message had been reported failed: it was delivered after all.
    Late {
        /// Round-trip time of the acknowledged try.
        rtt: Duration,
        /// Tries sent.
        tries: u8,
        /// The message.
        payload: Arc<[u8]>,
    },
    /// Nothing waits for it (a receipt for another copy of a delivered
    /// message, or not for this session).
    Stray,
}

/// What a timer decided for one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Due {
    /// Send try `attempt` now.
    Resend {
        /// Destination.
        to: PeerId,
        /// Sequence number.
        seq: u64,
        /// The try to send.
        attempt: u8,
        /// The message.
        payload: Arc<[u8]>,
    },
    /// Out of tries: failed.
    Failed {
        /// Destination.
        to: PeerId,
        /// Sequence number.
        seq: u64,
        /// Tries sent.
        tries: u8,
        /// The message.
        payload: Arc<[u8]>,
    },
}

#[derive(Debug, Default)]
struct PeerOut {
    next_seq: u64,
    estimator: Estimator,
    /// Failed messages, by number: when their tries went out.
    failed: BTreeMap<u64, (Vec<Instant>, Arc<[u8]>)>,
}

/// Every message sent and not yet settled, and the timers.
#[derive(Debug)]
pub struct Outbound {
    config: RtoConfig,
    peers: HashMap<PeerId, PeerOut>,
    pending: BTreeMap<(PeerId, u64), Pending>,
    rng: Rng,
}

impl Outbound {
    /// An empty table with timers set by `config`, their jitter drawn from
    /// a generator seeded with `seed`.
    pub fn new(config: RtoConfig, seed: u64) -> Outbound {
        Outbound {
            config,
            peers: HashMap::new(),
            pending: BTreeMap::new(),
            rng: Rng::from_seed(seed),
        }
    }

    /// Forgets message `seq` to `to`, whose first try could not be sent
    /// (the caller reports the error; the message never went out).
    pub fn cancel(&mut self, to: PeerId, seq: u64) {
        self.pending.remove(&(to, seq));
    }

    /// The number the next message to `to` will carry.
    pub fn next_seq(&self, to: PeerId) -> u64 {
        self.peers.get(&to).map_or(1, |p| p.next_seq.max(1))
    }

    /// Takes the next number for `to` when the message itself waits for
    /// no receipt from `to`: a message to a group, whose receipts come
    /// from each member ([`Outbound::sent_first`] for each, with this
    /// number).
    pub fn take_seq(&mut self, to: PeerId) -> u64 {
        let peer = self.peers.entry(to).or_default();
        let seq = peer.next_seq.max(1);
        peer.next_seq = seq + 1;
        seq
    }

    /// True when no more messages may wait for receipts.
    pub fn is_full(&self) -> bool {
        self.pending.len() >= MAX_PENDING
    }

    /// Records that message `seq` (from [`Outbound::next_seq`]) went out to
    /// `to` for the first time at `now`.
    pub fn sent_first(&mut self, to: PeerId, seq: u64, payload: Arc<[u8]>, now: Instant) {
        let peer = self.peers.entry(to).or_default();
        peer.next_seq = peer.next_seq.max(seq + 1);
        let timeout = backoff(peer.estimator.rto(&self.config), 1, &mut self.rng);
        self.pending.insert(
            (to, seq),
            Pending {
                to,
                seq,
                payload,
                sent: vec![now],
                deadline: now + timeout,
            },
        );
    }

    /// Records that try `attempt` of `seq` went out at `now` (after
    /// [`Due::Resend`]), and sets its timer.
    pub fn sent_again(&mut self, to: PeerId, seq: u64, attempt: u8, now: Instant) {
        let base = self.estimator(to).rto(&self.config);
        let timeout = backoff(base, attempt, &mut self.rng);
        if let Some(pending) = self.pending.get_mut(&(to, seq)) {
            pending.sent.push(now);
            pending.deadline = now + timeout;
        }
    }

    /// A receipt from `from` for try `attempt` of `seq` came at `now`.
    pub fn receipt(&mut self, from: PeerId, seq: u64, attempt: u8, now: Instant) -> Acked {
        let Some(pending) = self.pending.get(&(from, seq)) else {
            let peer = self.peers.entry(from).or_default();
            let Some((sent, payload)) = peer.failed.get(&seq) else {
                return Acked::Stray;
            };
            let Some(&at) = sent.get(usize::from(attempt) - 1) else {
                return Acked::Stray;
            };
            let rtt = now.saturating_duration_since(at);
            let tries = sent.len() as u8;
            let payload = Arc::clone(payload);
            peer.failed.remove(&seq);
            peer.estimator.sample(rtt);
            return Acked::Late {
                rtt,
                tries,
                payload,
            };
        };
        let Some(&sent) = pending.sent.get(usize::from(attempt) - 1) else {
            // A receipt for a try never sent: not ours.
            return Acked::Stray;
        };
        let pending = self.pending.remove(&(from, seq)).expect("looked up above");
        let rtt = now.saturating_duration_since(sent);
        self.peers.entry(from).or_default().estimator.sample(rtt);
        Acked::Delivered {
            rtt,
            tries: pending.tries(),
            payload: pending.payload,
        }
    }

    /// Every timer that has run out at `now`: a try to send again, or a
    /// message out of tries (removed, remembered as failed).
    pub fn due(&mut self, now: Instant) -> Vec<Due> {
        let expired: Vec<(PeerId, u64)> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(key, _)| *key)
            .collect();
        let mut due = Vec::with_capacity(expired.len());
        for key in expired {
            let pending = &self.pending[&key];
            if pending.tries() > self.config.retries {
                let pending = self.pending.remove(&key).expect("listed above");
                self.remember_failed(&pending);
                due.push(Due::Failed {
                    to: pending.to,
                    seq: pending.seq,
                    tries: pending.tries(),
                    payload: pending.payload,
                });
            } else {
                due.push(Due::Resend {
                    to: pending.to,
                    seq: pending.seq,
                    attempt: pending.tries() + 1,
                    payload: Arc::clone(&pending.payload),
                });
            }
        }
        due
    }

    /// Ends every message still waiting for `to`, whose host refused a
    /// datagram (nothing listens there): each is failed, with the tries it
    /// had. A receipt that still comes is late.
    pub fn refused(&mut self, to: PeerId) -> Vec<Due> {
        let keys: Vec<_> = self
            .pending
            .range((to, 0)..=(to, u64::MAX))
            .map(|(k, _)| *k)
            .collect();
        let failed: Vec<Pending> = keys
            .iter()
            .filter_map(|key| self.pending.remove(key))
            .collect();
        self.settle_failed(failed)
    }

    /// Ends every message still waiting (the chat is ending): each is
    /// failed, with the tries it had.
    pub fn abandon(&mut self) -> Vec<Due> {
        let all = std::mem::take(&mut self.pending);
        self.settle_failed(all.into_values().collect())
    }

    fn settle_failed(&mut self, failed: Vec<Pending>) -> Vec<Due> {
        failed
            .into_iter()
            .map(|p| {
                self.remember_failed(&p);
                Due::Failed {
                    to: p.to,
                    seq: p.seq,
                    tries: p.tries(),
                    payload: p.payload,
                }
            })
            .collect()
    }

    /// The earliest timer, if anything waits.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.pending.values().map(|p| p.deadline).min()
    }

    /// Messages waiting for receipts, by destination and number.
    pub fn pending(&self) -> impl Iterator<Item = &Pending> {
        self.pending.values()
    }

    /// True while `seq` to `to` waits for its receipt.
    pub fn is_pending(&self, to: PeerId, seq: u64) -> bool {
        self.pending.contains_key(&(to, seq))
    }

    /// How many messages wait.
    pub fn pending_count(&self) -> usize {
        self.pending.len()
    }

    /// Forgets everything about `peer` (its numbering, estimate and
    /// failed messages): the peer table let it go. Nothing of it may be
    /// pending.
    pub fn forget(&mut self, peer: PeerId) {
        self.peers.remove(&peer);
    }

    /// True when a message to `peer` waits for its receipt.
    pub fn has_pending(&self, peer: PeerId) -> bool {
        self.pending
            .range((peer, 0)..=(peer, u64::MAX))
            .next()
            .is_some()
    }

    /// The round-trip estimate to `to`.
    pub fn estimator(&self, to: PeerId) -> Estimator {
        self.peers.get(&to).map(|p| p.estimator).unwrap_or_default()
    }

    fn remember_failed(&mut self, pending: &Pending) {
        let failed = &mut self.peers.entry(pending.to).or_default().failed;
        failed.insert(
            pending.seq,
            (pending.sent.clone(), Arc::clone(&pending.payload)),
        );
        while failed.len() > REMEMBER_FAILED {
            failed.pop_first();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr() -> PeerId {
        PeerId(9)
    }

    fn text() -> Arc<[u8]> {
        Arc::from(&b"hi"[..])
    }

    /// A message without receipts is tried 1 + retries times, with growing
    /// timeouts, then fails exactly once; a receipt after that is late.
    #[test]
    fn retries_then_fails_once_then_late() {
        let config = RtoConfig {
            retries: 2,
            min: Duration::from_millis(200),
        };
        let mut out = Outbound::new(config, 7);
        let t0 = Instant::now();
        let seq = out.next_seq(addr());
        assert_eq!(seq, 1);
        out.sent_first(addr(), seq, text(), t0);
        assert!(out.due(t0).is_empty());
        let mut now = t0;
        let mut last_gap = Duration::ZERO;
        for attempt in 2..=3u8 {
            let deadline = out.next_deadline().unwrap();
            assert!(deadline - now > last_gap, "backoff grows");
            last_gap = deadline - now;
            now = deadline;
            assert_eq!(
                out.due(now),
                [Due::Resend {
                    to: addr(),
                    seq,
                    attempt,
                    payload: text()
                }]
            );
            out.sent_again(addr(), seq, attempt, now);
        }
        now = out.next_deadline().unwrap();
        assert_eq!(
            out.due(now),
            [Due::Failed {
                to: addr(),
                seq,
                tries: 3,
                payload: text()
            }]
        );
        assert!(out.due(now + Duration::from_secs(100)).is_empty());
        assert_eq!(out.next_deadline(), None);
        let late = out.receipt(addr(), seq, 1, now);
        assert!(
            matches!(late, Acked::Late { rtt, tries: 3, .. } if rtt == now - t0),
            "{late:?}"
        );
        assert_eq!(out.receipt(addr(), seq, 1, now), Acked::Stray);
        assert_eq!(out.next_seq(addr()), 2);
    }

    /// A receipt for a retransmission measures from that try (Karn's rule
    /// holds because receipts name their try); the estimate then sets the
    /// next message's timer.
    #[test]
    fn receipts_measure_from_the_try_they_name() {
        let mut out = Outbound::new(RtoConfig::default(), 7);
        let t0 = Instant::now();
        out.sent_first(addr(), 1, text(), t0);
        let t1 = out.next_deadline().unwrap();
        assert!(t1 - t0 >= Duration::from_secs(1), "1 s before any sample");
        out.due(t1);
        out.sent_again(addr(), 1, 2, t1);
        let acked = out.receipt(addr(), 1, 2, t1 + Duration::from_millis(30));
        assert_eq!(
            acked,
            Acked::Delivered {
                rtt: Duration::from_millis(30),
                tries: 2,
                payload: text()
            }
        );
        assert_eq!(out.receipt(addr(), 1, 1, t1), Acked::Stray);
        assert_eq!(
            out.estimator(addr()).srtt(),
            Some(Duration::from_millis(30))
        );
        out.sent_first(addr(), 2, text(), t1);
        let timeout = out.next_deadline().unwrap() - t1;
        assert!(timeout >= Duration::from_millis(200) && timeout <= Duration::from_millis(250));
        assert_eq!(
            out.receipt(addr(), 2, 3, t1),
            Acked::Stray,
            "try 3 never sent"
        );
    }
}
