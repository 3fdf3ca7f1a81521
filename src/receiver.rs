//! The receiver thread: it owns `recv_from` (and `send_to` for echo
//! replies), sorts errors by kind, keeps the kernel drop count, and hands
//! everything to the display as [`Event`]s over a crossbeam channel.
//!
//! It stops within [`READ_TIMEOUT`](crate::socket::READ_TIMEOUT) of its
//! `stop` channel disconnecting (or receiving), when the event channel's
//! reader goes away, or after `limit` datagrams.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{Receiver, Sender, TryRecvError};

use crate::Error;
use crate::datagram::Datagram;
use crate::event::Event;
use crate::socket::{Endpoint, is_icmp_error};
use crate::sys::{PeerError, Scratch};

/// How often the drop counter is read while datagrams keep arriving (it is
/// also read whenever the socket goes idle, and once more before stopping).
const DROP_POLL_INTERVAL: Duration = Duration::from_millis(200);

/// How the receiver behaves.
#[derive(Debug, Clone, Copy)]
pub struct ReceiverConfig {
    /// The application's receive buffer (`--max-size`): longer datagrams are
    /// truncated by the kernel, and reported so.
    pub max_size: usize,
    /// Send every datagram back to its sender unchanged.
    pub echo: bool,
    /// Stop after this many datagrams.
    pub limit: Option<u64>,
}

/// Starts the receiver thread (named `dgram-receiver`).
///
/// The thread ends when `stop` receives or disconnects, when `events` has no
/// reader left, or after `config.limit` datagrams; dropping its end of
/// `events` then tells the reader that nothing more will come. It returns an
/// error only for a failure that is not about a peer.
pub fn spawn(
    endpoint: Arc<Endpoint>,
    config: ReceiverConfig,
    events: Sender<Event>,
    stop: Receiver<()>,
) -> Result<JoinHandle<Result<(), Error>>, Error> {
    thread::Builder::new()
        .name("dgram-receiver".into())
        .spawn(move || Receiving::new(&endpoint, config, events).run(&stop))
        .map_err(|source| Error::SpawnThread {
            name: "receiver",
            source,
        })
}

/// Forwards drained ICMP errors as events. Returns false when the event
/// channel has no reader left.
pub fn report_peer_errors(events: &Sender<Event>, errors: Vec<PeerError>) -> bool {
    errors.into_iter().all(|error| {
        let event = if error.is_refusal() {
            Event::Unreachable { peer: error.peer }
        } else {
            Event::PeerError {
                peer: error.peer,
                error: error.message(),
            }
        };
        events.send(event).is_ok()
    })
}

/// Sends one datagram and tells the display: the ICMP errors drained on the
/// way (see [`Endpoint::send_to`]) and a `Sent` event.
pub fn send_reported(
    endpoint: &Endpoint,
    events: &Sender<Event>,
    payload: &[u8],
    to: SocketAddr,
    echo: bool,
) -> Result<(), Error> {
    let report = endpoint.send_to(payload, to)?;
    report_peer_errors(events, report.peer_errors);
    let _ = events.send(Event::Sent {
        to,
        len: payload.len(),
        echo,
    });
    Ok(())
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

struct Receiving<'a> {
    endpoint: &'a Endpoint,
    config: ReceiverConfig,
    events: Sender<Event>,
    drops: DropCounter,
    last_drop_poll: Instant,
}

/// Why the loop stopped: the first three are normal ends.
enum Stop {
    /// The `stop` channel said so.
    Asked,
    /// Nobody reads the events any more.
    ReaderGone,
    /// `limit` datagrams were received.
    Limit,
    /// A failure that is not about a peer.
    Failed(Error),
}

impl<'a> Receiving<'a> {
    fn new(endpoint: &'a Endpoint, config: ReceiverConfig, events: Sender<Event>) -> Self {
        Receiving {
            endpoint,
            config,
            events,
            drops: DropCounter::default(),
            last_drop_poll: Instant::now(),
        }
    }

    fn run(mut self, stop: &Receiver<()>) -> Result<(), Error> {
        let end = self.receive_until_stopped(stop);
        // Drops that happened since the last reading are still news.
        let _ = self.poll_drops();
        match end {
            Stop::Asked | Stop::ReaderGone | Stop::Limit => Ok(()),
            Stop::Failed(error) => Err(error),
        }
    }

    fn receive_until_stopped(&mut self, stop: &Receiver<()>) -> Stop {
        let mut buf = vec![0u8; self.config.max_size];
        let mut scratch = Scratch::default();
        let mut received = 0u64;
        loop {
            match stop.try_recv() {
                Err(TryRecvError::Empty) => {}
                Ok(()) | Err(TryRecvError::Disconnected) => return Stop::Asked,
            }
            if self.config.limit.is_some_and(|limit| received >= limit) {
                return Stop::Limit;
            }
            let step = match self.endpoint.recv(&mut buf, &mut scratch) {
                Ok(got) => {
                    received += 1;
                    let datagram = Datagram {
                        at: SystemTime::now(),
                        from: got.from,
                        payload: buf[..got.len].to_vec(),
                        truncated: got.truncated,
                        original_len: got.original_len,
                    };
                    self.on_datagram(datagram, got.drop_counter)
                }
                Err(e) => match e.kind() {
                    io::ErrorKind::Interrupted => Ok(()),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => self.poll_drops(),
                    _ => self.on_error(e),
                },
            };
            if let Err(stop) = step {
                return stop;
            }
        }
    }

    fn on_datagram(&mut self, datagram: Datagram, drop_counter: Option<u32>) -> Result<(), Stop> {
        if let Some(raw) = drop_counter {
            // Drops counted before this datagram was queued come first.
            self.note_drops(raw)?;
        }
        let reply = self
            .config
            .echo
            .then(|| (datagram.payload.clone(), datagram.from));
        self.emit(Event::Datagram(datagram))?;
        if let Some((payload, to)) = reply {
            self.echo(&payload, to)?;
        }
        if self.last_drop_poll.elapsed() >= DROP_POLL_INTERVAL {
            self.poll_drops()?;
        }
        Ok(())
    }

    /// A receive failed. ICMP errors (a refusal, an unreachable host) fail
    /// whatever call comes next on the socket: they are reports about a
    /// peer, read from the error queue, and the loop goes on.
    fn on_error(&mut self, error: io::Error) -> Result<(), Stop> {
        let errors = self.endpoint.take_errors();
        // An empty queue with an ICMP error means the other thread drained
        // the report first: it has been shown already.
        if errors.is_empty() && !is_icmp_error(&error) {
            return Err(Stop::Failed(Error::Receive {
                local: self.endpoint.local_addr(),
                source: error,
            }));
        }
        self.report(errors)
    }

    /// Sends an echo reply: the same bytes back to the sender, so an echo
    /// never sends more than it received.
    fn echo(&mut self, payload: &[u8], to: SocketAddr) -> Result<(), Stop> {
        match send_reported(self.endpoint, &self.events, payload, to, true) {
            Ok(()) => Ok(()),
            // A reply that cannot go out is a report, not the end of the
            // listener: the next sender may well be reachable.
            Err(error) => self.emit(Event::PeerError {
                peer: to,
                error: format!("echo reply not sent: {}", crate::error::report(&error)),
            }),
        }
    }

    fn report(&mut self, errors: Vec<PeerError>) -> Result<(), Stop> {
        if report_peer_errors(&self.events, errors) {
            Ok(())
        } else {
            Err(Stop::ReaderGone)
        }
    }

    /// Reads the drop counter now (`SO_MEMINFO`): it is always current,
    /// while `SO_RXQ_OVFL` only rides on datagrams queued after a drop.
    fn poll_drops(&mut self) -> Result<(), Stop> {
        self.last_drop_poll = Instant::now();
        match self.endpoint.kernel_drops() {
            Some(raw) => self.note_drops(raw),
            None => Ok(()),
        }
    }

    fn note_drops(&mut self, raw: u32) -> Result<(), Stop> {
        let count = self.drops.observe(raw);
        if count == 0 {
            return Ok(());
        }
        self.emit(Event::Dropped {
            count,
            total: self.drops.total(),
        })
    }

    fn emit(&self, event: Event) -> Result<(), Stop> {
        self.events.send(event).map_err(|_| Stop::ReaderGone)
    }
}

#[cfg(test)]
mod tests {
    use super::DropCounter;

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
