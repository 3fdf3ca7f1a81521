//! The receiver thread: it owns `recv_from`, sorts errors by kind, keeps
//! the kernel drop count, and hands every datagram to a [`Handler`], the
//! seam where a protocol layer decodes, verifies and answers a datagram
//! before it becomes an event.
//!
//! It stops within [`READ_TIMEOUT`] of
//! its `stop` channel disconnecting (or receiving), when nobody reads its
//! events any more, or after `limit` datagrams.

use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{Receiver, TryRecvError};

use super::outbox::{Closed, Outbox};
use super::pacing::busy_recv;
use super::sorting::{Sorted, sort};
use crate::Error;
use crate::model::{Datagram, Event};
use crate::net::endpoint::READ_TIMEOUT;
use crate::net::sys::{LOOKS_WITHOUT_WAITING, Received, Scratch};

/// How often the drop counter is read while datagrams keep arriving (it is
/// also read whenever the socket goes idle, and once more before stopping).
const DROP_POLL_INTERVAL: Duration = Duration::from_millis(200);

/// Under a steady stream, whether [`DROP_POLL_INTERVAL`] has passed is
/// looked at once in this many datagrams.
const DROP_POLL_EVERY: u64 = 64;

/// The most datagrams read from the socket's queue after a stop request, so
/// that what had arrived before the stop is shown and counted rather than
/// closed away unseen, without letting a flood delay the stop for long.
const DRAIN_LIMIT: u64 = 100_000;

/// What becomes of each received datagram, decided on the receiver thread
/// before anything is shown: show it, answer it (echo), or hand it to the
/// chat protocol ([`ChatHandler`](super::driver::ChatHandler): decode,
/// verify, acknowledge). Replies go out through the [`Outbox`], so
/// they are counted and their ICMP errors reported like any send.
pub trait Handler: Send {
    /// Handles one datagram: emits the events it makes (at least the
    /// datagram itself, in some form, with [`Outbox::emit_received`]) and
    /// sends what it answers.
    fn on_datagram(&mut self, datagram: Datagram, outbox: &Outbox) -> Result<(), Closed>;

    /// Handles a datagram that starts like a dgram envelope but is not a
    /// valid one (see [`crate::proto::envelope`]): by default it is shown,
    /// marked malformed. An echo still answers it: to an echo server it is
    /// a datagram like any other.
    fn on_malformed(
        &mut self,
        datagram: Datagram,
        reason: String,
        outbox: &Outbox,
    ) -> Result<(), Closed> {
        outbox.emit_received(Event::Malformed { datagram, reason })
    }

    /// When the handler next wants [`Handler::on_wake`] called (a
    /// retransmission timer), if at all.
    fn next_wake(&self) -> Option<Instant> {
        None
    }

    /// Called once the time from [`Handler::next_wake`] has come.
    fn on_wake(&mut self, _outbox: &Outbox) -> Result<(), Closed> {
        Ok(())
    }

    /// Called once, after the last datagram, before the receiver ends:
    /// what is still unsettled gets its final state here.
    fn on_stop(&mut self, _outbox: &Outbox) -> Result<(), Closed> {
        Ok(())
    }
}

/// The plain handler: every datagram is shown as it is.
#[derive(Debug, Clone, Copy, Default)]
pub struct Show;

impl Handler for Show {
    fn on_datagram(&mut self, datagram: Datagram, outbox: &Outbox) -> Result<(), Closed> {
        outbox.emit_received(Event::Datagram(datagram))
    }
}

/// A group member without the chat protocol (`--raw`): every datagram is
/// shown as it is, except this member's own, looped back by multicast
/// (the protocol tells its own by the session; plain bytes only by where
/// they come from: this socket's port on one of this host's addresses).
#[derive(Debug, Clone, Copy)]
pub struct ShowOthers {
    /// This member's own address.
    pub local: std::net::SocketAddr,
}

impl Handler for ShowOthers {
    fn on_datagram(&mut self, datagram: Datagram, outbox: &Outbox) -> Result<(), Closed> {
        if crate::net::addr::is_own(datagram.from, self.local) {
            return Ok(());
        }
        outbox.emit_received(Event::Datagram(datagram))
    }
}

/// How the receiver behaves.
#[derive(Debug, Clone, Copy)]
pub struct ReceiverConfig {
    /// The application's receive buffer (`--max-size`): longer datagrams are
    /// truncated by the kernel, and reported so.
    pub max_size: usize,
    /// Stop after this many datagrams.
    pub limit: Option<u64>,
    /// Wait for datagrams by spinning on a receive that does not wait
    /// (see [`busy_recv`]), where a receive can look without waiting.
    pub busy_poll: bool,
}

/// Starts the receiver thread (named `dgram-receiver`).
///
/// The thread ends when `stop` receives or disconnects, when the events
/// have no reader left, or after `config.limit` datagrams; its outbox (and
/// so its end of the event channel) is dropped then. It returns an error
/// only for a failure that is not about a peer.
pub fn spawn(
    outbox: Outbox,
    config: ReceiverConfig,
    handler: Box<dyn Handler>,
    stop: Receiver<()>,
) -> Result<JoinHandle<Result<(), Error>>, Error> {
    thread::Builder::new()
        .name("dgram-receiver".into())
        .spawn(move || Receiving::new(outbox, config, handler).run(&stop))
        .map_err(|source| Error::SpawnThread {
            name: "receiver",
            source,
        })
}

/// Tracks the socket's cumulative drop counter (a wrapping `u32` in the
/// kernel) as a `u64` total, and says how many drops are new.
#[derive(Debug, Default)]
pub struct DropCounter {
    last_raw: u32,
    total: u64,
}

impl DropCounter {
    /// Takes a reading of the kernel counter; returns the number of new
    /// drops. A reading older than one already seen (an `SO_RXQ_OVFL` value
    /// carried by a datagram queued before later drops) counts nothing.
    pub fn observe(&mut self, raw: u32) -> u64 {
        let delta = raw.wrapping_sub(self.last_raw);
        if delta == 0 || delta > u32::MAX / 2 {
            return 0;
        }
        self.last_raw = raw;
        self.total += u64::from(delta);
        u64::from(delta)
    }

    /// All drops seen so far.
    pub fn total(&self) -> u64 {
        self.total
    }
}

/// The receive loop's state, run on its own thread ([`spawn`]) or, turn by
/// turn, by the pipeline's single-threaded display loop.
pub(super) struct Receiving {
    outbox: Outbox,
    config: ReceiverConfig,
    handler: Box<dyn Handler>,
    drops: DropCounter,
    last_drop_poll: Instant,
    /// The socket's receive timeout now.
    wait: Duration,
    /// Datagrams received so far.
    received: u64,
    /// The longest a receive waits ([`Receiving::cap_wait`]).
    wait_cap: Duration,
}

/// What one turn of the receive loop found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Turn {
    /// A datagram (or an error report, or a signal's interruption): there
    /// may be more.
    Datagram,
    /// Nothing was queued (or nothing came within the read timeout).
    Idle,
}

/// Why the loop stopped: the first three are normal ends.
pub(super) enum Stop {
    /// The `stop` channel said so.
    Asked,
    /// Nobody reads the events any more.
    ReaderGone,
    /// `limit` datagrams were received.
    Limit,
    /// A failure that is not about a peer.
    Failed(Error),
}

impl From<Closed> for Stop {
    fn from(_: Closed) -> Self {
        Stop::ReaderGone
    }
}

impl Receiving {
    pub(super) fn new(outbox: Outbox, config: ReceiverConfig, handler: Box<dyn Handler>) -> Self {
        Receiving {
            outbox,
            config,
            handler,
            drops: DropCounter::default(),
            last_drop_poll: Instant::now(),
            wait: READ_TIMEOUT,
            received: 0,
            wait_cap: READ_TIMEOUT,
        }
    }

    fn run(mut self, stop: &Receiver<()>) -> Result<(), Error> {
        let mut buf = vec![0u8; self.config.max_size];
        let mut scratch = Scratch::default();
        let mut end = self.receive_until_stopped(stop, &mut buf, &mut scratch);
        if matches!(end, Stop::Asked)
            && let Err(stop) = self.drain(&mut buf, &mut scratch, || Ok(()))
        {
            end = stop;
        }
        self.finish(end)
    }

    /// Ends the loop that stopped for `end`: the last drops are read and
    /// the handler settles what is unsettled.
    pub(super) fn finish(&mut self, end: Stop) -> Result<(), Error> {
        // Drops that happened since the last reading are still news.
        let _ = self.poll_drops();
        let _ = self.handler.on_stop(&self.outbox);
        match end {
            Stop::Asked | Stop::ReaderGone | Stop::Limit => Ok(()),
            Stop::Failed(error) => Err(error),
        }
    }

    fn receive_until_stopped(
        &mut self,
        stop: &Receiver<()>,
        buf: &mut [u8],
        scratch: &mut Scratch,
    ) -> Stop {
        loop {
            match stop.try_recv() {
                Err(TryRecvError::Empty) => {}
                Ok(()) | Err(TryRecvError::Disconnected) => return Stop::Asked,
            }
            if let Err(stop) = self.step(buf, scratch) {
                return stop;
            }
        }
    }

    /// One turn of the loop: the handler's timer if due, then one receive
    /// (waiting up to the read timeout, or not at all on a non-blocking
    /// socket). Says whether a datagram came.
    pub(super) fn step(&mut self, buf: &mut [u8], scratch: &mut Scratch) -> Result<Turn, Stop> {
        self.turn(buf, scratch, true)
    }

    /// One turn that takes a datagram only if one is queued already
    /// (`Idle` at once otherwise, without reading the drop counter or
    /// looking at the handler's timers): for answering what waits before
    /// anything is shown, right after a [`Receiving::step`].
    pub(super) fn step_queued(
        &mut self,
        buf: &mut [u8],
        scratch: &mut Scratch,
    ) -> Result<Turn, Stop> {
        self.turn(buf, scratch, false)
    }

    fn turn(&mut self, buf: &mut [u8], scratch: &mut Scratch, wait: bool) -> Result<Turn, Stop> {
        if self
            .config
            .limit
            .is_some_and(|limit| self.received >= limit)
        {
            return Err(Stop::Limit);
        }
        if wait {
            // A turn that takes only what is queued already is one of a
            // burst that a waiting turn began: its timers were looked at
            // there, microseconds ago.
            self.wake_handler()?;
        }
        let endpoint = self.outbox.endpoint();
        let got = if wait && self.config.busy_poll && LOOKS_WITHOUT_WAITING {
            busy_recv(endpoint, buf, Instant::now() + self.wait)
        } else if wait {
            endpoint.recv(buf, scratch)
        } else {
            endpoint.try_recv(buf, scratch)
        };
        match got {
            Ok(got) => {
                self.received += 1;
                let datagram = validated(&got, buf);
                self.on_datagram(datagram, got.drop_counter)?;
                Ok(Turn::Datagram)
            }
            Err(e) => match sort(e, self.outbox.endpoint()) {
                Sorted::Retry => Ok(Turn::Datagram),
                Sorted::Idle => {
                    if wait {
                        self.poll_drops()?;
                    }
                    Ok(Turn::Idle)
                }
                sorted => {
                    self.on_error(sorted)?;
                    Ok(Turn::Datagram)
                }
            },
        }
    }

    /// Calls the handler's timer if it is due, and makes the next receive
    /// wait no longer than until its next one (at most
    /// [`READ_TIMEOUT`], the usual wait).
    fn wake_handler(&mut self) -> Result<(), Stop> {
        let longest = self.wait_cap;
        let Some(mut wake) = self.handler.next_wake() else {
            return self.set_wait(longest);
        };
        if wake <= Instant::now() {
            self.handler.on_wake(&self.outbox)?;
            match self.handler.next_wake() {
                Some(next) => wake = next,
                None => return self.set_wait(longest),
            }
        }
        let until = wake.saturating_duration_since(Instant::now());
        self.set_wait(until.clamp(Duration::from_millis(1), longest))
    }

    /// Makes a receive wait at most `longest` (at most [`READ_TIMEOUT`]):
    /// shorter while output waits to be written.
    pub(super) fn cap_wait(&mut self, longest: Duration) {
        self.wait_cap = longest.min(READ_TIMEOUT);
    }

    /// Sets how long a receive waits, when it changes.
    fn set_wait(&mut self, wait: Duration) -> Result<(), Stop> {
        if wait != self.wait {
            // A wait that cannot be shortened only delays a timer by at
            // most READ_TIMEOUT.
            if self.outbox.endpoint().set_read_timeout(wait).is_ok() {
                self.wait = wait;
            }
        }
        Ok(())
    }

    /// After a stop request, reads what is already queued on the socket
    /// (at most [`DRAIN_LIMIT`] datagrams), without waiting, so that what
    /// arrived before the stop is shown and counted rather than closed
    /// away unseen; `after_each` runs after every turn (the single-threaded
    /// run shows the turn's events there).
    pub(super) fn drain(
        &mut self,
        buf: &mut [u8],
        scratch: &mut Scratch,
        mut after_each: impl FnMut() -> Result<(), Stop>,
    ) -> Result<(), Stop> {
        if self.outbox.endpoint().set_nonblocking(true).is_err() {
            return Ok(());
        }
        // What is queued is read at once: a busy-polled receive would spin
        // until its deadline before it said the queue is empty.
        let busy_poll = std::mem::replace(&mut self.config.busy_poll, false);
        let mut result = Ok(());
        for _ in 0..DRAIN_LIMIT {
            let turn = self.step(buf, scratch);
            if let Err(stop) = after_each() {
                result = Err(stop);
                break;
            }
            match turn {
                Ok(Turn::Datagram) => {}
                Ok(Turn::Idle) => break,
                Err(stop) => {
                    result = Err(stop);
                    break;
                }
            }
        }
        let _ = self.outbox.endpoint().set_nonblocking(false);
        self.config.busy_poll = busy_poll;
        result
    }

    fn on_datagram(&mut self, datagram: Datagram, drop_counter: Option<u32>) -> Result<(), Stop> {
        if let Some(raw) = drop_counter {
            // Drops counted before this datagram was queued come first.
            self.note_drops(raw)?;
        }
        self.handler.on_datagram(datagram, &self.outbox)?;
        // The clock is read every DROP_POLL_EVERY datagrams only: a read
        // per datagram costs more than a flood's drop count is worth late.
        if self.received.is_multiple_of(DROP_POLL_EVERY)
            && self.last_drop_poll.elapsed() >= DROP_POLL_INTERVAL
        {
            self.poll_drops()?;
        }
        Ok(())
    }

    /// A receive failed (sorted by [`sort`]). ICMP errors (a refusal, an
    /// unreachable host) fail whatever call comes next on the socket: they
    /// are reports about a peer, read from the error queue, and the loop
    /// goes on.
    fn on_error(&mut self, sorted: Sorted) -> Result<(), Stop> {
        match sorted {
            Sorted::Retry | Sorted::Idle => Ok(()),
            Sorted::Peers(errors) => Ok(self.outbox.report(errors)?),
            Sorted::Failed(source) => Err(Stop::Failed(Error::Receive {
                local: self.outbox.endpoint().local_addr(),
                source,
            })),
        }
    }

    /// Reads the drop counter now (`SO_MEMINFO`): it is always current,
    /// while `SO_RXQ_OVFL` only rides on datagrams queued after a drop.
    fn poll_drops(&mut self) -> Result<(), Stop> {
        self.last_drop_poll = Instant::now();
        match self.outbox.endpoint().kernel_drops() {
            Some(raw) => self.note_drops(raw),
            None => Ok(()),
        }
    }

    fn note_drops(&mut self, raw: u32) -> Result<(), Stop> {
        let count = self.drops.observe(raw);
        if count == 0 {
            return Ok(());
        }
        Ok(self.outbox.emit_received(Event::Dropped {
            count,
            total: self.drops.total(),
        })?)
    }
}

/// The datagram the platform delivered into `buf`, as the rest of dgram
/// sees it: timestamped (by the kernel where it can), its payload copied.
fn validated(got: &Received, buf: &[u8]) -> Datagram {
    Datagram {
        at: got.timestamp.unwrap_or_else(SystemTime::now),
        from: got.from,
        payload: buf[..got.len].to_vec(),
        truncated: got.truncated,
        original_len: got.original_len,
    }
}

#[cfg(test)]
mod tests {
    use super::DropCounter;

    /// New drops are the difference between readings; a stale reading
    /// counts nothing.
    #[test]
    fn drop_counter_counts_new_drops_only() {
        let mut drops = DropCounter::default();
        assert_eq!(drops.observe(0), 0);
        assert_eq!(drops.observe(5), 5);
        assert_eq!(drops.observe(3), 0, "a stale reading counts nothing");
        assert_eq!(drops.observe(5), 0);
        assert_eq!(drops.observe(9), 4);
        assert_eq!(drops.total(), 9);
    }

    /// The kernel's u32 counter wraps; the total does not.
    #[test]
    fn drop_counter_survives_wrapping() {
        let mut drops = DropCounter::default();
        assert_eq!(drops.observe(2_000_000_000), 2_000_000_000);
        assert_eq!(drops.observe(4_000_000_000), 2_000_000_000);
        // The kernel's u32 wrapped: 4e9 -> 2^32 + 5.
        assert_eq!(drops.observe(5), (1u64 << 32) + 5 - 4_000_000_000);
        assert_eq!(drops.total(), (1u64 << 32) + 5);
    }
}
