//! The one send path: every datagram dgram sends (messages, bursts, echo
//! replies, later receipts) goes through an [`Outbox`], which sends it,
//! reports the ICMP errors drained on the way, and emits a `Sent` event.
//!
//! Events keep their causal order: a send and its `Sent` event happen under
//! one lock, which the receiver takes too before it reports what it
//! received ([`Outbox::emit_received`]). So a reply, or the ICMP error a
//! send provoked, is never reported before the `Sent` event of the datagram
//! that caused it, whichever thread sent it.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};

use crossbeam_channel::Sender;

use super::relay::Relay;
use crate::Error;
use crate::model::{Datagram, Event, SentKind, Wrapped};
use crate::net::addr::port_state;
use crate::net::{Endpoint, PeerError};

/// The display has gone: nobody reads events any more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closed;

/// Sends datagrams and reports what happened, from any thread.
#[derive(Debug, Clone)]
pub struct Outbox {
    endpoint: Arc<Endpoint>,
    events: Sender<Event>,
    /// Held from a `sendto` until its `Sent` event is queued, and by the
    /// receiver while it queues what it received.
    order: Arc<Mutex<()>>,
    /// Peers that refused a datagram (ICMP port unreachable) since the
    /// protocol last looked: their pending messages fail at once.
    refused: Arc<Mutex<HashSet<SocketAddr>>>,
    /// After `chat --via --turn` chose a relayed path: datagrams to the
    /// peer go through this side's relay.
    relay: Arc<OnceLock<Relay>>,
}

/// The most refusing peers remembered between two looks.
const MAX_REFUSED: usize = 4096;

/// The event for an ICMP error about a peer; for a refusal, with what this
/// machine can tell about the port.
fn peer_event(error: &PeerError) -> Event {
    if error.is_refusal() {
        Event::Unreachable {
            peer: error.peer,
            port: port_state(error.peer),
        }
    } else {
        Event::PeerError {
            peer: error.peer,
            error: error.message(),
        }
    }
}

impl Outbox {
    /// An outbox sending through `endpoint` and reporting to `events`.
    pub fn new(endpoint: Arc<Endpoint>, events: Sender<Event>) -> Self {
        Outbox {
            endpoint,
            events,
            order: Arc::default(),
            refused: Arc::default(),
            relay: Arc::default(),
        }
    }

    /// Sends what goes to the relay's peer through the relay from now on
    /// (once; a second relay is ignored).
    pub fn set_relay(&self, relay: Relay) {
        let _ = self.relay.set(relay);
    }

    /// The relay, if the chat's path goes through one.
    pub fn relay(&self) -> Option<&Relay> {
        self.relay.get()
    }

    /// Sends the relay's own datagrams (requests, refreshes) to its server,
    /// each with its `sent` event (kind control), like every datagram.
    pub fn flush_relay(&self) {
        if let Some(relay) = self.relay.get() {
            for datagram in relay.take_transmits() {
                let _ = self.send_direct_as(&datagram, relay.server(), SentKind::Control);
            }
        }
    }

    /// Sends `payload` to `to`, through the relay when `to` is reached
    /// through it (then says how it went on the wire).
    fn send_to(
        &self,
        payload: &[u8],
        to: SocketAddr,
        drained: &mut Vec<PeerError>,
    ) -> Result<Option<Wrapped>, Error> {
        match self.relay.get() {
            Some(relay) if relay.routes(to) => {
                let wrapped = relay.wrap(payload).ok_or_else(|| Error::Send {
                    to,
                    len: payload.len(),
                    source: std::io::Error::other("the TURN relay cannot take it (its allocation is gone, or it is too large)"),
                })?;
                self.endpoint.send_to(&wrapped, relay.server(), drained)?;
                Ok(Some(Wrapped {
                    server: relay.server(),
                    len: wrapped.len(),
                }))
            }
            _ => self.endpoint.send_to(payload, to, drained).map(|()| None),
        }
    }

    /// Notes a refusal, and makes the event for an ICMP error.
    fn peer_event(&self, error: PeerError) -> Event {
        if error.is_refusal() {
            let mut refused = self.refused.lock().unwrap_or_else(|e| e.into_inner());
            if refused.len() < MAX_REFUSED {
                refused.insert(error.peer);
            }
        }
        peer_event(&error)
    }

    /// The peers that refused a datagram since the last call.
    pub fn take_refusals(&self) -> Vec<SocketAddr> {
        let mut refused = self.refused.lock().unwrap_or_else(|e| e.into_inner());
        refused.drain().collect()
    }

    /// True when a peer refused a datagram since the last
    /// [`Outbox::take_refusals`].
    pub fn has_refusals(&self) -> bool {
        !self
            .refused
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
    }

    /// The socket.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Sends one datagram to `to`.
    pub fn send(&self, payload: &[u8], to: SocketAddr) -> Result<(), Error> {
        self.send_as(payload, to, SentKind::Datagram)
    }

    /// Sends one datagram without a `sent` event (the caller counts it; see
    /// [`Event::SentBatch`]); ICMP errors drained on the way are reported.
    pub fn send_counted(&self, payload: &[u8], to: SocketAddr) -> Result<(), Error> {
        let mut drained = Vec::new();
        let sent = self.send_to(payload, to, &mut drained);
        if !drained.is_empty() {
            let _order = self.order.lock().unwrap_or_else(|e| e.into_inner());
            for error in drained {
                let _ = self.emit(self.peer_event(error));
            }
        }
        sent.map(drop)
    }

    /// Sends one datagram whose `sent` event says what it was (a message in
    /// its envelope, a receipt).
    pub fn send_as(&self, payload: &[u8], to: SocketAddr, kind: SentKind) -> Result<(), Error> {
        self.send_reported(payload, to, kind, |drained| {
            self.send_to(payload, to, drained)
        })
    }

    /// Sends one datagram from the socket itself, never through the relay
    /// (a relayed chat's watch for a direct path, the relay's own
    /// requests), with its `sent` event.
    pub fn send_direct_as(
        &self,
        payload: &[u8],
        to: SocketAddr,
        kind: SentKind,
    ) -> Result<(), Error> {
        self.send_reported(payload, to, kind, |drained| {
            self.endpoint.send_to(payload, to, drained).map(|()| None)
        })
    }

    /// Sends with `send` and reports, in order: the ICMP errors drained on
    /// the way (news whether or not the send went out: they are about
    /// earlier datagrams), then the datagram's `sent` event.
    fn send_reported(
        &self,
        payload: &[u8],
        to: SocketAddr,
        kind: SentKind,
        send: impl FnOnce(&mut Vec<PeerError>) -> Result<Option<Wrapped>, Error>,
    ) -> Result<(), Error> {
        let _order = self.order.lock().unwrap_or_else(|e| e.into_inner());
        let mut drained = Vec::new();
        let sent = send(&mut drained);
        for error in drained {
            let _ = self.emit(self.peer_event(error));
        }
        let relay = sent?;
        let _ = self.emit(Event::Sent {
            to,
            len: payload.len(),
            kind,
            relay,
        });
        Ok(())
    }

    /// Echoes `datagram` to its sender *before* reporting anything, so that
    /// nothing but `recvmsg` and `sendto` sits on a peer's round trip; then
    /// reports, in their causal order, the datagram, the ICMP errors the
    /// send drained and the reply's `sent` event. The inner error is the
    /// send's (the datagram is reported all the same).
    /// `received` makes the event that reports the datagram.
    pub fn echo_first(
        &self,
        datagram: Datagram,
        received: impl FnOnce(Datagram) -> Event,
    ) -> Result<Result<(), Error>, Closed> {
        let _order = self.order.lock().unwrap_or_else(|e| e.into_inner());
        let (to, len) = (datagram.from, datagram.len());
        let mut drained = Vec::new();
        let sent = self.endpoint.send_to(&datagram.payload, to, &mut drained);
        self.emit(received(datagram))?;
        for error in drained {
            self.emit(self.peer_event(error))?;
        }
        if let Err(error) = sent {
            return Ok(Err(error));
        }
        self.emit(Event::Sent {
            to,
            len,
            kind: SentKind::Echo,
            relay: None,
        })?;
        Ok(Ok(()))
    }

    /// Hands an event to the display.
    pub fn emit(&self, event: Event) -> Result<(), Closed> {
        self.events.send(event).map_err(|_| Closed)
    }

    /// Hands the display an event about something received (a datagram, an
    /// ICMP error, a drop), after any send in progress has reported itself.
    pub fn emit_received(&self, event: Event) -> Result<(), Closed> {
        let _order = self.order.lock().unwrap_or_else(|e| e.into_inner());
        self.emit(event)
    }

    /// Reports ICMP errors read by the receiver as events: a refusal as
    /// `Unreachable`, anything else as a `PeerError`.
    pub fn report(&self, errors: Vec<PeerError>) -> Result<(), Closed> {
        for error in errors {
            let event = self.peer_event(error);
            self.emit_received(event)?;
        }
        Ok(())
    }

    /// Drains the socket's error queue into events (for the last look
    /// before a command ends).
    pub fn report_pending(&self) -> Result<(), Closed> {
        self.report(self.endpoint.take_errors())
    }
}
