//! What `dgram bench` knows: the header every bench datagram starts with,
//! the receiver's sequence tracking (new, reordered, duplicated), the
//! counts of both ends, and the report that accounts for every datagram.
//!
//! A bench datagram is `dgBN`, the run id (u64, little-endian) and its
//! sequence number (u64, little-endian, from 0), padded to the size asked
//! for. With GSO a send carries several of them back to back; with GRO a
//! receive returns several, and the segment size the kernel reports splits
//! them again: each keeps its own header, so every boundary is checked.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The first bytes of every bench datagram.
pub const MAGIC: [u8; 4] = *b"dgBN";

/// Magic, run id, sequence number.
pub const HEADER: usize = 20;

/// Writes the header of datagram `seq` of `run` at the start of `buf`.
pub fn write_header(buf: &mut [u8], run: u64, seq: u64) {
    buf[..4].copy_from_slice(&MAGIC);
    buf[4..12].copy_from_slice(&run.to_le_bytes());
    buf[12..20].copy_from_slice(&seq.to_le_bytes());
}

/// The run id and sequence number of a bench datagram; `None` for anything
/// else.
pub fn read_header(datagram: &[u8]) -> Option<(u64, u64)> {
    if datagram.len() < HEADER || datagram[..4] != MAGIC {
        return None;
    }
    let run = u64::from_le_bytes(datagram[4..12].try_into().ok()?);
    let seq = u64::from_le_bytes(datagram[12..20].try_into().ok()?);
    Some((run, seq))
}

/// How far back (in sequence numbers) arrivals are told apart: a datagram
/// older than this behind the newest is counted `too_old`, neither new nor
/// duplicate.
pub const WINDOW: u64 = 1 << 20;

/// What one arrival was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BenchArrival {
    /// The next one, or one after a gap.
    New,
    /// Not seen before, but a later one was.
    Reordered,
    /// Seen before.
    Duplicate,
    /// More than [`WINDOW`] behind the newest: cannot be told apart.
    TooOld,
}

/// The sequence numbers seen, as a bitmap over the last [`WINDOW`]
/// numbers: constant time per arrival, whatever the losses.
#[derive(Debug, Clone)]
pub struct Sequence {
    bits: Vec<u64>,
    /// The highest number seen.
    highest: Option<u64>,
}

impl Default for Sequence {
    fn default() -> Self {
        Sequence {
            bits: vec![0; (WINDOW / 64) as usize],
            highest: None,
        }
    }
}

impl Sequence {
    fn slot(seq: u64) -> (usize, u64) {
        let at = seq % WINDOW;
        ((at / 64) as usize, 1 << (at % 64))
    }

    /// Records the arrival of `seq`.
    pub fn record(&mut self, seq: u64) -> BenchArrival {
        let (word, bit) = Self::slot(seq);
        let Some(highest) = self.highest else {
            self.highest = Some(seq);
            self.bits[word] |= bit;
            return BenchArrival::New;
        };
        if seq > highest {
            // Forget what the window slides past.
            if seq - highest >= WINDOW {
                self.bits.fill(0);
            } else {
                for old in highest + 1..seq {
                    let (w, b) = Self::slot(old);
                    self.bits[w] &= !b;
                }
            }
            self.highest = Some(seq);
            self.bits[word] |= bit;
            return BenchArrival::New;
        }
        if highest - seq >= WINDOW {
            return BenchArrival::TooOld;
        }
        if self.bits[word] & bit != 0 {
            return BenchArrival::Duplicate;
        }
        self.bits[word] |= bit;
        BenchArrival::Reordered
    }
}

/// What the receiving end counted in one run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiverCounts {
    /// Distinct datagrams of the run received (duplicates not included).
    pub received: u64,
    /// Their payload bytes.
    pub bytes: u64,
    /// Copies of datagrams already received.
    pub duplicates: u64,
    /// Received after a later one (included in `received`).
    pub reordered: u64,
    /// Too far behind the newest to be told apart (not in `received`).
    pub too_old: u64,
    /// Cut short by the receive buffer (included in `received`).
    pub truncated: u64,
    /// Datagrams on the bench socket that were not of this run.
    pub foreign: u64,
    /// Dropped by the receiver's kernel since the run began (`SO_MEMINFO`
    /// on the bench socket: its receive buffer was full).
    pub kernel_dropped: u64,
    /// The receiver's kernel counts drops (Linux): without the count, its
    /// drops are inside "lost elsewhere".
    pub drops_counted: bool,
    /// Receive calls made (fewer than datagrams with GRO).
    pub calls: u64,
    /// Microseconds from the first datagram of the run to the last.
    pub active_us: u64,
}

impl ReceiverCounts {
    /// Counts one datagram of this run.
    pub fn record(&mut self, arrival: BenchArrival, len: usize, truncated: bool) {
        match arrival {
            BenchArrival::New | BenchArrival::Reordered => {
                self.received += 1;
                self.bytes += len as u64;
                self.reordered += u64::from(arrival == BenchArrival::Reordered);
                self.truncated += u64::from(truncated);
            }
            BenchArrival::Duplicate => self.duplicates += 1,
            BenchArrival::TooOld => self.too_old += 1,
        }
    }
}

/// What the sending end counted in one run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SenderCounts {
    /// Datagrams the kernel took.
    pub sent: u64,
    /// Their payload bytes.
    pub bytes: u64,
    /// Datagrams not sent: the kernel said `EAGAIN` or `ENOBUFS` (its
    /// send queue or the device's was full).
    pub not_sent: u64,
    /// Send calls made (fewer than datagrams with GSO).
    pub calls: u64,
    /// Microseconds from the first send to the last.
    pub active_us: u64,
    /// Microseconds of sending asked for (`--duration`).
    #[serde(default)]
    pub asked_us: u64,
    /// The run was stopped before its duration (Ctrl-C).
    #[serde(default)]
    pub cut_short: bool,
}

/// The accounting of one run: every datagram sent is received, dropped by
/// the receiver's kernel, or lost elsewhere.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BenchReport {
    /// Datagram size.
    pub size: usize,
    /// Segments per send and receive call (1 without GSO/GRO).
    pub gso_segments: u16,
    /// GRO was on at the receiver.
    pub gro: bool,
    /// The sender's counts.
    pub sender: SenderCounts,
    /// The receiver's counts.
    pub receiver: ReceiverCounts,
    /// Datagrams per drop the receiver's kernel counts: with GRO the
    /// kernel queues (and drops) a whole coalesced send, `gso_segments`
    /// datagrams, as one; else 1.
    pub drop_unit: u64,
    /// Datagrams dropped by the receiver's kernel: its count times
    /// `drop_unit`. The kernel counts drops per socket, not per sender:
    /// when foreign datagrams reached the socket, some of these may be
    /// theirs.
    pub dropped: u64,
    /// Datagrams of the run sent and not received: `sent − received`.
    pub not_received: u64,
    /// `sent − received − dropped`: lost on the way. `None` where that is
    /// not known: the kernel dropped datagrams and foreign ones reached the
    /// socket (the drops may be theirs, and it does not say whose), or the
    /// drops are more
    /// than the run's datagrams not received (some of them must have
    /// been foreign, even if none got through to be counted).
    pub lost_elsewhere: Option<u64>,
    /// Datagrams received per second, over the receiver's active time.
    pub received_per_sec: f64,
    /// Megabytes (10^6) of payload received per second.
    pub received_mb_per_sec: f64,
    /// Datagrams sent per second, over the sender's active time.
    pub sent_per_sec: f64,
    /// Share of the datagrams sent that were not received, in percent.
    pub loss_percent: f64,
    /// How a paced sender (`--rate`) kept its schedule (the client's
    /// report only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pacing: Option<super::pacing::PacingReport>,
}

/// Why [`BenchReport::lost_elsewhere`] is not known, for people.
pub const LOST_ELSEWHERE_UNKNOWN: &str = "not known: datagrams not of this run reached the socket too, and the kernel counts drops per socket, not per sender";

/// `count` per second over `micros`.
pub fn per_sec(count: u64, micros: u64) -> f64 {
    if micros == 0 {
        return 0.0;
    }
    count as f64 / Duration::from_micros(micros).as_secs_f64()
}

impl BenchReport {
    /// The accounting of a run from both ends' counts.
    pub fn new(
        size: usize,
        gso_segments: u16,
        gro: bool,
        sender: SenderCounts,
        receiver: ReceiverCounts,
    ) -> BenchReport {
        // Every send of a GSO run is a full buffer of `gso_segments`
        // datagrams, and with GRO on the receiver's kernel queues it whole.
        let drop_unit = if gro {
            u64::from(gso_segments.max(1))
        } else {
            1
        };
        let dropped = receiver.kernel_dropped * drop_unit;
        // A forged datagram carrying the run's id could push `received`
        // past `sent`: then nothing of the run is missing.
        let not_received = sender.sent.saturating_sub(receiver.received);
        let lost_elsewhere = if receiver.foreign == 0 || dropped == 0 {
            not_received.checked_sub(dropped)
        } else {
            None
        };
        let loss_percent = if sender.sent == 0 {
            0.0
        } else {
            100.0 * not_received as f64 / sender.sent as f64
        };
        BenchReport {
            pacing: None,
            size,
            gso_segments,
            gro,
            sender,
            receiver,
            drop_unit,
            dropped,
            not_received,
            lost_elsewhere,
            received_per_sec: per_sec(receiver.received, receiver.active_us),
            received_mb_per_sec: per_sec(receiver.bytes, receiver.active_us) / 1e6,
            sent_per_sec: per_sec(sender.sent, sender.active_us),
            loss_percent,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A header reads back as written; anything shorter or without the
    /// magic is not a bench datagram.
    #[test]
    fn header_round_trips() {
        let mut buf = [0u8; 64];
        write_header(&mut buf, 0xdead_beef, 42);
        assert_eq!(read_header(&buf), Some((0xdead_beef, 42)));
        assert_eq!(read_header(&buf[..19]), None);
        buf[0] = b'x';
        assert_eq!(read_header(&buf), None);
    }

    /// In order, gaps, late arrivals, copies, and arrivals from before the
    /// window are told apart.
    #[test]
    fn sequence_tells_arrivals_apart() {
        let mut seq = Sequence::default();
        assert_eq!(seq.record(0), BenchArrival::New);
        assert_eq!(seq.record(1), BenchArrival::New);
        assert_eq!(seq.record(5), BenchArrival::New);
        assert_eq!(seq.record(3), BenchArrival::Reordered);
        assert_eq!(seq.record(3), BenchArrival::Duplicate);
        assert_eq!(seq.record(5), BenchArrival::Duplicate);
        assert_eq!(seq.record(1), BenchArrival::Duplicate);
        assert_eq!(seq.record(4), BenchArrival::Reordered);
        assert_eq!(seq.record(5 + WINDOW), BenchArrival::New);
        assert_eq!(seq.record(5), BenchArrival::TooOld);
        // The slot of 5 was reused by 5 + WINDOW: 6 .. 5 + WINDOW were
        // cleared on the way and are new to it.
        assert_eq!(seq.record(10), BenchArrival::Reordered);
        assert_eq!(seq.record(3 * WINDOW), BenchArrival::New);
        assert_eq!(seq.record(3 * WINDOW - 1), BenchArrival::Reordered);
    }

    /// Every datagram sent is received, dropped or lost elsewhere.
    #[test]
    fn report_accounts_for_every_datagram() {
        let sender = SenderCounts {
            sent: 1000,
            bytes: 64_000,
            active_us: 1_000_000,
            ..SenderCounts::default()
        };
        let receiver = ReceiverCounts {
            received: 900,
            bytes: 57_600,
            kernel_dropped: 80,
            active_us: 500_000,
            ..ReceiverCounts::default()
        };
        let report = BenchReport::new(64, 1, false, sender, receiver);
        assert_eq!(report.lost_elsewhere, Some(20));
        assert_eq!(report.not_received, 100);
        assert_eq!(report.received_per_sec, 1800.0);
        assert!((report.loss_percent - 10.0).abs() < 1e-9);
        // With GRO, each drop the kernel counts is a whole coalesced send.
        let receiver = ReceiverCounts {
            kernel_dropped: 2,
            ..receiver
        };
        let report = BenchReport::new(64, 50, true, sender, receiver);
        assert_eq!(report.dropped, 100);
        assert_eq!(report.lost_elsewhere, Some(0));
    }

    /// Foreign datagrams on the socket: the kernel's drops may be theirs,
    /// so what was lost elsewhere is not known, and no count goes below
    /// zero (a flood of foreign datagrams once made it -3995).
    #[test]
    fn foreign_drops_are_not_counted_against_the_run() {
        let sender = SenderCounts {
            sent: 1000,
            ..SenderCounts::default()
        };
        let flooded = ReceiverCounts {
            received: 990,
            foreign: 20,
            kernel_dropped: 4005,
            ..ReceiverCounts::default()
        };
        let report = BenchReport::new(64, 1, false, sender, flooded);
        assert_eq!(report.lost_elsewhere, None);
        assert_eq!((report.not_received, report.dropped), (10, 4005));
        assert!((report.loss_percent - 1.0).abs() < 1e-9);
        // Every foreign datagram dropped, none seen: the drops outnumber
        // the run's missing datagrams, so some were foreign.
        let unseen = ReceiverCounts {
            foreign: 0,
            ..flooded
        };
        assert_eq!(
            BenchReport::new(64, 1, false, sender, unseen).lost_elsewhere,
            None
        );
        // Foreign datagrams and no drop at all: what is missing was lost
        // elsewhere.
        let undropped = ReceiverCounts {
            kernel_dropped: 0,
            ..flooded
        };
        let report = BenchReport::new(64, 1, false, sender, undropped);
        assert_eq!(report.lost_elsewhere, Some(10));
        // More of the run received than sent (forged): nothing missing,
        // nothing negative.
        let forged = ReceiverCounts {
            received: 1010,
            ..ReceiverCounts::default()
        };
        let report = BenchReport::new(64, 1, false, sender, forged);
        assert_eq!((report.not_received, report.lost_elsewhere), (0, Some(0)));
    }
}
