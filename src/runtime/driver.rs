//! Puts the protocol's [`Core`] on a socket: the [`Driver`] feeds it what
//! the chat's input sends (on the job's thread) and its [`ChatHandler`]
//! what the receiver thread receives, refusals and timeouts; both send
//! what the core polls out through the one send path ([`Outbox`]) and
//! hand its events to the display. Waiters (a pipe waiting for room or
//! for its receipts, a group waiting for its members) are woken when
//! something changes, through [`Driver::changes`], never by polling.
//!
//! The core sits behind one lock, taken by both threads. A message's first
//! datagram is sent while the lock is held, so that its `sent` event is
//! queued before its receipt can be handled.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use super::entropy;
use super::outbox::{Closed, Outbox};
use super::receiver::Handler;
use super::relay::Unwrapped;
use crate::Error;
use crate::model::SecureEvent;
use crate::model::{Datagram, Event};
use crate::net::limits::payload_limit;
use crate::proto::chat::SentKind;
use crate::proto::chat::{Incoming, Waiting};
use crate::proto::envelope::MAGIC;
use crate::proto::traverse::{self, Keeper, TraverseEvent};
use crate::proto::{ChatConfig, ChatEvent, Core, Entropy, Handover, Member, SendError, SentAs};

/// Sends chat messages and answers what arrives; cheap to clone (the
/// input thread and the receiver thread each hold one).
#[derive(Debug, Clone)]
pub struct Driver {
    core: Arc<Mutex<Core>>,
    outbox: Outbox,
    /// Told (without blocking, coalesced) whenever the core reported
    /// something: a waiter looks again.
    changed: Sender<()>,
    changes: Receiver<()>,
    /// Fixed for the run, so the receive path need not take the lock to
    /// ask.
    keyed: bool,
    in_group: bool,
    /// The core notes plain senders (a chat does; a listener does not):
    /// when it does not, a plain datagram need not reach the core at all.
    notes_plain: bool,
    /// After `chat --via`: answers the path search's late probes, which
    /// are not the core's.
    keeper: Option<Arc<Mutex<Keeper>>>,
}

impl Driver {
    /// A driver sending through `outbox`, its core set up with `config`.
    ///
    /// Fails only when the operating system gives no randomness for the
    /// seal's nonce prefix.
    pub fn new(outbox: Outbox, config: ChatConfig) -> Result<Driver, Error> {
        let prefix = match config.key {
            Some(_) => entropy::secret().map_err(|source| Error::Randomness { source })?,
            None => [0; 16],
        };
        let entropy = Entropy {
            seed: entropy::seed(),
            prefix,
            secret: entropy::secret().map_err(|source| Error::Randomness { source })?,
            crypto: entropy::secret().map_err(|source| Error::Randomness { source })?,
        };
        let keyed = config.key.is_some() || config.code.is_some();
        let in_group = config.group.is_some();
        let notes_plain = config.announce_kinds;
        let (changed, changes) = crossbeam_channel::bounded(1);
        Ok(Driver {
            core: Arc::new(Mutex::new(Core::new(config, entropy, Instant::now()))),
            outbox,
            changed,
            changes,
            keyed,
            in_group,
            notes_plain,
            keeper: None,
        })
    }

    /// While a relayed chat watches for a direct path: the addresses it
    /// probes and the probes sent so far.
    pub fn watching(&self) -> Option<(Vec<SocketAddr>, u32)> {
        self.keeper
            .as_ref()
            .and_then(|k| k.lock().unwrap_or_else(|e| e.into_inner()).watching())
    }

    /// True while the chat's path (after `--via`) goes through a relay.
    pub fn is_relayed(&self) -> bool {
        self.keeper
            .as_ref()
            .is_some_and(|k| k.lock().unwrap_or_else(|e| e.into_inner()).is_relayed())
    }

    /// Offers the session with `peer` the path to `via` (see
    /// [`Core::try_path`]).
    pub fn try_path(&self, peer: SocketAddr, via: SocketAddr) -> bool {
        let mut core = self.lock();
        let sent = core.try_path(Instant::now(), peer, via);
        let _ = self.flush(core);
        sent
    }

    /// Answers the path search's late probes with `keeper` (after `chat
    /// --via`).
    pub fn with_keeper(mut self, keeper: Option<Keeper>) -> Driver {
        self.keeper = keeper.map(|k| Arc::new(Mutex::new(k)));
        self
    }

    /// The handler to give the pipeline: it feeds the core what arrives,
    /// and hands plain datagrams to `plain` (show, echo).
    pub fn handler(&self, plain: Box<dyn Handler>) -> ChatHandler {
        ChatHandler {
            driver: self.clone(),
            plain,
        }
    }

    /// Ready (for `select!`) after the core reported something: a message
    /// settled, a member came or went. Look again at what is waited for.
    pub fn changes(&self) -> &Receiver<()> {
        &self.changes
    }

    /// Sends one chat message to `to`: in an envelope (and waiting for its
    /// receipt) unless `to` speaks plain UDP, then as the bytes given plus
    /// `--eol`.
    pub fn send(&self, payload: &[u8], to: SocketAddr) -> Result<SentAs, Error> {
        let mut core = self.lock();
        let (sent, first) = core
            .send(Instant::now(), payload, to, payload_limit(&to).bytes)
            .map_err(|e| match e {
                SendError::TooManyPending { limit } => Error::TooManyPending { limit },
                SendError::NoSession => Error::NoSecureSession { peer: to },
                SendError::TooLarge {
                    len,
                    limit,
                    overhead,
                } => Error::MessageTooLarge {
                    peer: to,
                    len,
                    limit,
                    overhead,
                },
            })?;
        if let Some(first) = first
            && let Err(error) = self.outbox.send_as(&first.bytes, first.to, first.kind)
        {
            core.cancel(to, sent);
            return Err(error);
        }
        let _ = self.flush(core);
        Ok(sent)
    }

    /// Runs `feed` on the core, then sends what it polled out and reports
    /// its events (events first: a receipt's `sent` follows the message
    /// it answers).
    fn with_core(&self, feed: impl FnOnce(&mut Core)) -> Result<(), Closed> {
        let mut core = self.lock();
        feed(&mut core);
        self.flush(core)
    }

    /// Drains the core: its events to the display, its datagrams to the
    /// socket. The lock is let go before anything is sent.
    fn flush(&self, mut core: MutexGuard<'_, Core>) -> Result<(), Closed> {
        let events: Vec<ChatEvent> = std::iter::from_fn(|| core.poll_event()).collect();
        let transmits: Vec<_> = std::iter::from_fn(|| core.poll_transmit()).collect();
        drop(core);
        if !events.is_empty() {
            // Full means a wake-up is already waiting to be taken: one is
            // enough, the waiter looks at everything again.
            let _ = self.changed.try_send(());
        }
        for event in events {
            self.outbox.emit_received(Event::from(event))?;
        }
        for transmit in transmits {
            // A datagram that cannot go out is like a lost one (a receipt:
            // the sender tries again; a retransmission: the schedule goes
            // on); its error has been reported by the outbox.
            let _ = self
                .outbox
                .send_as(&transmit.bytes, transmit.to, transmit.kind);
        }
        Ok(())
    }

    /// Begins the secure session with `peer` (a keyed chat, at its
    /// start); nothing happens without keys, or when one is open.
    pub fn connect(&self, peer: SocketAddr) {
        let _ = self.with_core(|core| core.connect(Instant::now(), peer));
    }

    /// The verification bytes of the secure session with `peer`.
    pub fn verify(&self, peer: SocketAddr) -> Option<[u8; 4]> {
        self.lock().verify(peer)
    }

    /// In a group, waits (at most `longest`) until the members present
    /// have answered this member's first hello: until one has been heard
    /// and then `settle` has passed without another, so that a pipe's
    /// first message is not sent to an empty room it just joined. Returns
    /// early, false, when `stop` is ready (a stop request).
    pub fn wait_for_members(
        &self,
        longest: Duration,
        settle: Duration,
        stop: &Receiver<()>,
    ) -> bool {
        if !self.in_group {
            return true;
        }
        let end = Instant::now() + longest;
        let (mut count, mut since) = (0, Instant::now());
        loop {
            let now = Instant::now();
            let members = self.lock().members().len();
            if members != count {
                (count, since) = (members, now);
            }
            if count > 0 && now >= since + settle {
                return true;
            }
            let until = if count > 0 {
                end.min(since + settle)
            } else {
                end
            };
            if now >= end {
                return true;
            }
            crossbeam_channel::select! {
                recv(stop) -> _ => return false,
                recv(self.changes) -> _ => {}
                default(until.saturating_duration_since(now)) => {}
            }
        }
    }

    /// How often this side says hello (a group member).
    pub fn hello_every(&self) -> Duration {
        self.lock().hello_every()
    }

    /// True when every envelope is sealed (`--key-file`).
    pub fn is_keyed(&self) -> bool {
        self.keyed
    }

    /// The group this side is a member of.
    pub fn group(&self) -> Option<SocketAddr> {
        self.lock().group()
    }

    /// The group's members as last heard (empty outside a group).
    pub fn members(&self) -> Vec<Member> {
        self.lock().members()
    }

    /// Marks `peer` as speaking plain UDP or dgram from now on, and says so
    /// in the events. The choice stands whatever the peer sends later.
    pub fn set_plain(&self, peer: SocketAddr, plain: bool) {
        let _ = self.with_core(|core| core.set_plain(Instant::now(), peer, plain));
    }

    /// Takes `peer` to speak plain UDP from the start (`--plain`: a peer such
    /// as `nc -u -l` cannot speak first).
    pub fn assume_plain(&self, peer: SocketAddr) {
        self.lock().assume_plain(Instant::now(), peer);
    }

    /// Messages waiting for their receipts.
    pub fn waiting(&self) -> Vec<Waiting> {
        self.lock().waiting(Instant::now())
    }

    /// True while message `seq` to `to` waits for its receipt.
    pub fn is_waiting(&self, to: SocketAddr, seq: u64) -> bool {
        self.lock().is_waiting(to, seq)
    }

    /// How many messages wait for their receipts.
    pub fn pending_count(&self) -> usize {
        self.lock().pending_count()
    }

    /// True when no more messages may wait for receipts.
    pub fn is_full(&self) -> bool {
        self.lock().is_full()
    }

    fn lock(&self) -> MutexGuard<'_, Core> {
        // A poisoned lock means a thread panicked mid-update; the state is
        // still the best there is.
        self.core.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The protocol's receive side, run by the receiver thread.
pub struct ChatHandler {
    driver: Driver,
    /// Shows (or echoes) what is not the protocol's.
    plain: Box<dyn Handler>,
}

impl Handler for ChatHandler {
    fn on_datagram(&mut self, mut datagram: Datagram, outbox: &Outbox) -> Result<(), Closed> {
        if let Some(relay) = outbox.relay()
            && datagram.from == relay.server()
        {
            // Through this side's TURN relay: the peer's datagram comes
            // out as the peer sent it, from the peer's address; the
            // relay's own answers are its business.
            match relay.unwrap(&datagram.payload) {
                Unwrapped::Data { from, payload } => {
                    datagram.from = from;
                    datagram.payload = payload;
                }
                Unwrapped::Taken => {
                    outbox.flush_relay();
                    return outbox.emit_received(Event::Secure(SecureEvent::Control {
                        from: datagram.from,
                        what: "relay",
                        len: datagram.payload.len(),
                    }));
                }
                Unwrapped::NotRelayed => {}
            }
        }
        let from = datagram.from;
        if let Some(keeper) = &self.driver.keeper
            && traverse::is_traversal(&datagram.payload)
        {
            // The path search's datagrams still in flight (probes, acks,
            // a late STUN or rendezvous answer): a probe is acked, so
            // that a nomination repeated after this side took the path
            // is answered; all are counted, none is the chat's.
            let mut keeper = keeper.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(ack) = keeper.answer(from, &datagram.payload, false) {
                let _ = outbox.send_as(&ack, from, SentKind::Control);
            }
            if let Some(direct) = keeper.on_ack(from, &datagram.payload, false) {
                // A direct path answered during a relayed chat: leave the
                // relay for it. Sending there directly moves the other
                // side (it checks the path first), and its answers from
                // there move this side.
                let peer = keeper.peer();
                drop(keeper);
                let _ = outbox.emit(Event::Path {
                    at: std::time::SystemTime::now(),
                    event: TraverseEvent::DirectAgain { to: direct },
                });
                // Through this side's relay, the peer's own address: stop
                // wrapping. Either way a keepalive goes there directly,
                // so that the other side hears this one from its own
                // address and moves (after its path check).
                if let Some(relay) = outbox.relay() {
                    relay.go_direct(direct);
                }
                self.driver.try_path(peer, direct);
            }
            return outbox.emit_received(Event::Secure(SecureEvent::Control {
                from,
                what: "path_probe",
                len: datagram.payload.len(),
            }));
        }
        if !self.driver.keyed
            && self.driver.in_group
            && datagram.payload.first() != Some(&MAGIC)
            && crate::net::addr::is_own(from, outbox.endpoint().local_addr())
        {
            // Our own plain datagram (`/empty`, `/burst`), looped back by
            // multicast: not news, and not a plain member.
            return Ok(());
        }
        if !self.driver.keyed
            && !self.driver.notes_plain
            && !datagram.truncated
            && datagram.payload.first() != Some(&MAGIC)
        {
            // Plain bytes at a listener: nothing for the protocol to note,
            // so straight to the echo (or the display).
            return self.plain.on_datagram(datagram, outbox);
        }
        let incoming = Incoming {
            at: datagram.at,
            from,
            payload: &datagram.payload,
            truncated: datagram.truncated,
        };
        let mut core = self.driver.lock();
        match core.handle_datagram(Instant::now(), incoming) {
            Handover::Taken => self.driver.flush(core),
            Handover::Plain => {
                drop(core);
                self.plain.on_datagram(datagram, outbox)?;
                self.driver.flush(self.driver.lock())
            }
            Handover::Malformed(why) => {
                drop(core);
                self.plain.on_malformed(datagram, why, outbox)
            }
        }
    }

    fn next_wake(&self) -> Option<Instant> {
        if self.driver.outbox.has_refusals() {
            return Some(Instant::now());
        }
        let core = self.driver.lock().poll_timeout();
        let watch = self
            .driver
            .keeper
            .as_ref()
            .and_then(|k| k.lock().unwrap_or_else(|e| e.into_inner()).poll_timeout());
        let core = match watch {
            Some(watch) => Some(core.map_or(watch, |c| c.min(watch))),
            None => core,
        };
        match self.driver.outbox.relay().and_then(|r| r.poll_timeout()) {
            Some(relay) => Some(core.map_or(relay, |c| c.min(relay))),
            None => core,
        }
    }

    fn on_wake(&mut self, outbox: &Outbox) -> Result<(), Closed> {
        if let Some(keeper) = &self.driver.keeper {
            let due = keeper
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .due(Instant::now());
            for (to, probe) in due {
                // Straight from the socket: the point is the direct path.
                let _ = outbox.send_direct_as(&probe, to, SentKind::Control);
            }
        }
        if let Some(relay) = outbox.relay() {
            relay.handle_timeout();
            outbox.flush_relay();
        }
        let refused = outbox.take_refusals();
        self.driver.with_core(|core| {
            let now = Instant::now();
            for peer in refused {
                core.handle_refused(now, peer);
            }
            core.handle_timeout(now);
        })
    }

    fn on_stop(&mut self, outbox: &Outbox) -> Result<(), Closed> {
        let closed = self.driver.with_core(|core| core.close(Instant::now()));
        if let Some(relay) = outbox.relay() {
            // The chat's last datagrams went out above: give the
            // allocation back rather than leave it to expire.
            relay.close();
            outbox.flush_relay();
        }
        closed
    }
}
